# SPDX-License-Identifier: Apache-2.0
"""A small lab of network namespaces for berth's tests, demo and benchmarks.

Everything it creates carries a per-process prefix and is removed by
Lab.close(), which the tests call even on failure; Lab.sweep() removes what
a killed earlier run left behind. Traffic stays inside the namespaces:
198.18.0.0/15 for the VPC, pods and services, 203.0.113.0/24 for "outside".
"""
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

NETNS_DIR = "/var/run/netns"
CLONE_NEWNET = 0x40000000
LAB_TAG = "bt"  # every namespace of ours starts with this
OWNER_FILE = ".owner"  # in a lab's temp dir: the pid of the process that made it


def _run(cmd, check=True, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    r = subprocess.run(cmd, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Netns:
    def __init__(self, name):
        self.name = name
        self.path = os.path.join(NETNS_DIR, name)
        _run(["ip", "netns", "add", name])
        self.run("ip", "link", "set", "lo", "up")

    def argv(self, *cmd):
        # nsenter, not "ip netns exec": the latter remounts /sys, which podman needs intact.
        return ["nsenter", f"--net={self.path}", "--", *cmd]

    def run(self, *cmd, check=True, **kw):
        return _run(self.argv(*cmd), check=check, **kw)

    def popen(self, *cmd, **kw):
        return subprocess.Popen(self.argv(*cmd), **kw)

    def json(self, *cmd):
        out = self.run(*cmd).stdout
        return json.loads(out) if out.strip() else []

    @contextlib.contextmanager
    def entered(self):
        """Run the block with this thread in the namespace: sockets made there stay there.

        That is how a test's in-process server listens inside a node namespace.
        """
        libc = ctypes.CDLL(None, use_errno=True)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(self.path, os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.name}")
            try:
                yield self
            finally:
                if libc.setns(own, CLONE_NEWNET) != 0:
                    os.abort()  # carrying on in the wrong namespace would be worse
        finally:
            os.close(target)
            os.close(own)

    def sysctl(self, key, value):
        self.run("sysctl", "-qw", f"{key}={value}")

    def exists(self):
        return os.path.exists(self.path)

    def delete(self):
        if self.exists():
            _run(["ip", "netns", "del", self.name], check=False)


class Lab:
    """Owns namespaces, processes and temp dirs; close() undoes all of it."""

    def __init__(self, bin_dir, tag=None):
        self.bin_dir = bin_dir
        self.tag = tag or f"{LAB_TAG}{os.getpid()}x"
        self.count = 0
        self.namespaces = []
        self.procs = []
        self.cleanups = []  # callables run by close(), e.g. an in-process API server's stop
        self.tmp = tempfile.mkdtemp(prefix="berth-lab-")
        # Whose it is, so that sweep() can remove it once that process is gone.
        with open(os.path.join(self.tmp, OWNER_FILE), "w") as f:
            f.write(str(os.getpid()))

    def name(self, kind):
        self.count += 1
        return f"{self.tag}{self.count}{kind}"[:32]

    def netns(self, kind):
        ns = Netns(self.name(kind))
        self.namespaces.append(ns)
        return ns

    def track(self, proc):
        self.procs.append(proc)
        return proc

    def close(self):
        # SIGTERM first: a clean exit is when LeakSanitizer reports, in a SAN build.
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for fn in reversed(self.cleanups):
            fn()
        for ns in reversed(self.namespaces):
            ns.delete()
        self.reports = self.sanitizer_reports()
        shutil.rmtree(self.tmp, ignore_errors=True)

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def sanitizer_reports(self):
        """Sanitizer reports in the logs of the daemons this lab ran."""
        found = []
        for root, _, files in os.walk(self.tmp):
            for name in files:
                if name.endswith(".log"):
                    with open(os.path.join(root, name), errors="replace") as f:
                        text = f.read()
                    if any(m in text for m in self.SANITIZER_MARKS):
                        found.append(f"{name}:\n{text[-4000:]}")
        return found

    @staticmethod
    def sweep():
        """Remove what a killed earlier run left behind (its pid is gone): its namespaces,
        the processes it started in them (agents, servers: they would keep a deleted
        namespace alive), and its temp dir."""
        if os.path.isdir(NETNS_DIR):
            dead = []
            for name in os.listdir(NETNS_DIR):
                rest = name[len(LAB_TAG):]
                pid = rest.split("x", 1)[0]
                if not name.startswith(LAB_TAG) or not pid.isdigit() or "x" not in rest:
                    continue
                if not os.path.exists(f"/proc/{pid}"):
                    dead.append(name)
            for name in dead:
                pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
                for p in pids:
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(p), signal.SIGKILL)
            for name in dead:
                _run(["ip", "netns", "del", name], check=False)
        Lab._sweep_cgroups()
        tmp = tempfile.gettempdir()
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for d in sorted(os.listdir(tmp)):
            if not d.startswith("berth-lab-"):
                continue
            try:
                with open(os.path.join(tmp, d, OWNER_FILE)) as f:
                    pid = f.read().strip()
            except OSError:
                continue
            path = os.path.join(tmp, d)
            if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
                continue
            Lab._sweep_podman_sandboxes(path)
            # What podman mounted in it (a container's /dev/shm), deepest first.
            for m in sorted((m for m in mounts if m.startswith(path + "/")), key=len,
                            reverse=True):
                _run(["umount", "-l", m], check=False)
            with open("/proc/self/mountinfo") as f:
                if any(line.split()[4].startswith(path + "/") for line in f):
                    continue  # still mounted: never cut through a mount
            shutil.rmtree(path, ignore_errors=True)


    @staticmethod
    def _sweep_podman_sandboxes(path):
        """The netns podman made for containers of a dead run (/run/netns/netns-<uuid>):
        named in each container's OCI config under the run's temp dir."""
        for root, _, files in os.walk(path):
            if "config.json" not in files or not root.endswith("/userdata"):
                continue
            try:
                with open(os.path.join(root, "config.json")) as f:
                    spaces = json.load(f)["linux"]["namespaces"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            for ns in spaces:
                p = ns.get("path", "") if isinstance(ns, dict) else ""
                name = os.path.basename(p)
                if ns.get("type") == "network" and name.startswith("netns-") and \
                        os.path.dirname(os.path.realpath(p)) == os.path.realpath(NETNS_DIR):
                    _run(["ip", "netns", "del", name], check=False)

    CGROUP_ROOT = "/sys/fs/cgroup"
    CGROUP_PREFIX = "berth-test-"  # + a lab tag (or a namespace name): podman's cgroup parent

    @staticmethod
    def _sweep_cgroups():
        """Kill what a dead run's podman left in its cgroups (conmon, containers), then
        remove them: top-level cgroups named berth-test-<tag> whose owner pid is gone."""
        if not os.path.isdir(Lab.CGROUP_ROOT):
            return
        for h in sorted(os.listdir(Lab.CGROUP_ROOT)):
            root = os.path.join(Lab.CGROUP_ROOT, h)
            if os.path.islink(root) or not os.path.isdir(root):
                continue
            for d in os.listdir(root):
                rest = d[len(Lab.CGROUP_PREFIX) + len(LAB_TAG):]
                pid = rest.split("x", 1)[0]
                if not d.startswith(Lab.CGROUP_PREFIX + LAB_TAG) or not pid.isdigit() or \
                        os.path.exists(f"/proc/{pid}"):
                    continue
                top = os.path.join(root, d)
                for sub, _, _ in os.walk(top):
                    with contextlib.suppress(OSError):
                        with open(os.path.join(sub, "cgroup.procs")) as f:
                            for p in f.read().split():
                                with contextlib.suppress(ProcessLookupError):
                                    os.kill(int(p), signal.SIGKILL)
                for _ in range(50):  # killed tasks leave their cgroup asynchronously
                    for sub, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                        with contextlib.suppress(OSError):
                            os.rmdir(sub)
                    if not os.path.exists(top):
                        break
                    time.sleep(0.05)


def veth_pair(a, a_name, b, b_name):
    """A veth pair between namespaces a and b, created in a with the peer placed in b."""
    a.run("ip", "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b.path)
    a.run("ip", "link", "set", a_name, "up")
    b.run("ip", "link", "set", b_name, "up")


class Node:
    """A node namespace with an uplink to a fabric namespace and, once started, a berth-agent."""

    def __init__(self, lab, fabric, addr, pool, fabric_addr=None, prefix_len=24, name="node"):
        self.lab = lab
        self.ns = lab.netns(name)
        self.addr = addr
        self.pool = pool
        self.run_dir = os.path.join(lab.tmp, self.ns.name, "run")
        self.conf_dir = os.path.join(lab.tmp, self.ns.name, "net.d")
        os.makedirs(self.conf_dir)
        self.agent = None
        self.agent_log = os.path.join(lab.tmp, self.ns.name, "agent.log")
        self.fabric = fabric
        up = self.ns.name[-8:] + "u"
        veth_pair(self.ns, "eth0", fabric, up) if fabric else None
        if fabric:
            self.ns.run("ip", "addr", "add", f"{addr}/{prefix_len}", "dev", "eth0")
            if fabric_addr:
                fabric.run("ip", "addr", "add", f"{fabric_addr}/{prefix_len}", "dev", up)
        self.ns.sysctl("net.ipv4.ip_forward", 1)
        self.pods = {}

    # ---- the agent ----
    def start_agent(self, *extra, wait=True, env=None):
        conflist = os.path.join(self.conf_dir, "10-berth.conflist")
        if os.path.exists(conflist):
            os.unlink(conflist)
        log = open(self.agent_log, "a")
        cmd = [os.path.join(self.lab.bin_dir, "berth-agent"), "--node-name", self.ns.name,
               "--pool", self.pool, "--run-dir", self.run_dir, "--cni-conf-dir", self.conf_dir,
               *extra]
        self.agent = self.lab.track(self.ns.popen(*cmd, stdout=log, stderr=log, env=env))
        log.close()
        if wait:
            self.wait_ready()
        return self.agent

    def wait_ready(self, timeout=10):
        conflist = os.path.join(self.conf_dir, "10-berth.conflist")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(conflist):
                return
            if self.agent.poll() is not None:
                raise RuntimeError(f"agent exited {self.agent.returncode}: {self.log()}")
            time.sleep(0.02)
        raise RuntimeError(f"agent not ready in {timeout}s: {self.log()}")

    def stop_agent(self, sig=signal.SIGTERM):
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(sig)
            self.agent.wait(timeout=10)
        return self.agent.returncode

    def log(self):
        with open(self.agent_log) as f:
            return f.read()

    def conflist(self):
        with open(os.path.join(self.conf_dir, "10-berth.conflist")) as f:
            return json.load(f)

    def berthctl(self, *args, check=True):
        return self.ns.run(os.path.join(self.lab.bin_dir, "berthctl"), "--run-dir", self.run_dir,
                           *args, check=check)

    def berthctl_json(self, what):
        return json.loads(self.berthctl(what, "-o", "json").stdout)

    # ---- the plugin, driven as a runtime drives it ----
    def plugin_conf(self, plugin=0, conflist=None, **overrides):
        """One plugin's config as libcni hands it over: name and cniVersion injected."""
        cl = conflist or self.conflist()
        conf = dict(cl["plugins"][plugin])
        conf["name"] = cl["name"]
        conf["cniVersion"] = cl["cniVersion"]
        conf.update(overrides)
        return conf

    def cni(self, command, conf, container_id=None, netns=None, ifname="eth0", args=None,
            plugin="berth-cni", env_extra=None, timeout=30):
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": command,
               "CNI_PATH": f"{self.lab.bin_dir}:/usr/lib/cni"}
        if container_id is not None:
            env["CNI_CONTAINERID"] = container_id
        if netns is not None:
            env["CNI_NETNS"] = netns
        if ifname is not None:
            env["CNI_IFNAME"] = ifname
        if args is not None:
            env["CNI_ARGS"] = args
        env.update(env_extra or {})
        exe = os.path.join(self.lab.bin_dir, plugin) if plugin == "berth-cni" else \
            os.path.join("/usr/lib/cni", plugin)
        r = self.ns.run(exe, check=False, input=json.dumps(conf), env=env, timeout=timeout)
        out = json.loads(r.stdout) if r.stdout.strip() else None
        return r.returncode, out, r.stderr

    def chain(self, command, container_id, netns, args, prev=None, runtime_config=None,
              ifname="eth0"):
        """Run the whole conflist as libcni does: ADD in order, DEL/CHECK in reverse."""
        cl = self.conflist()
        order = list(range(len(cl["plugins"])))
        if command == "DEL":
            order.reverse()
        result = prev
        for i in order:
            conf = self.plugin_conf(i, cl)
            caps = conf.pop("capabilities", {})
            rc = {k: v for k, v in (runtime_config or {}).items() if caps.get(k)}
            if rc:
                conf["runtimeConfig"] = rc
            if result is not None:
                conf["prevResult"] = result
            code, out, err = self.cni(command, conf, container_id, netns, ifname, args,
                                      plugin=conf["type"])
            if code != 0:
                raise RuntimeError(f"{conf['type']} {command} failed: {out} {err}")
            if command == "ADD":
                result = out
        return result


class Pod:
    """A pod sandbox: its own netns, wired by the real plugin."""

    def __init__(self, node, name, k8s_ns="default", container_id=None, ifname="eth0"):
        self.node = node
        self.name = name
        self.k8s_ns = k8s_ns
        self.ns = node.lab.netns("p")
        self.container_id = container_id or os.urandom(32).hex()
        self.ifname = ifname
        self.args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE={k8s_ns};K8S_POD_NAME={name}"
        self.result = None

    @property
    def ip(self):
        return self.result["ips"][0]["address"].split("/")[0]

    def add(self, conf=None):
        conf = conf or self.node.plugin_conf()
        code, out, err = self.node.cni("ADD", conf, self.container_id, self.ns.path,
                                       self.ifname, self.args)
        if code != 0:
            raise RuntimeError(f"ADD {self.name} failed: {out} {err}")
        self.result = out
        return out

    def cni(self, command, conf=None, prev=True):
        conf = dict(conf or self.node.plugin_conf())
        if prev and self.result:
            conf["prevResult"] = self.result
        return self.node.cni(command, conf, self.container_id, self.ns.path, self.ifname,
                             self.args)


def wait_for(pred, timeout=10, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
