# SPDX-License-Identifier: Apache-2.0
"""A real runtime: podman runs busybox containers on the CNI network berth-agent writes.

podman reads the agent's 10-berth.conflist (berth-cni chained with portmap,
cniVersion 1.0.0) from the node's conf dir, calls berth-cni ADD when a
container starts and DEL when it is removed, and the container is reachable
natively from the VPC fabric, through a host port, and from another container.

podman runs inside the node namespace (nsenter --net, never "ip netns exec",
which remounts /sys and hides the cgroup mounts podman needs), so the host
side of every pod lands in the node namespace. Its state is private to the
test: containers.conf via CONTAINERS_CONF, --root/--runroot/--tmpdir under the
lab's temp dir, file locks instead of the /dev/shm/libpod_lock segment, its
own cgroup parent, no events log. Two things cannot be redirected and are
cleaned up by hand: the container netns podman bind-mounts at
/run/netns/netns-<uuid> (removed by podman rm; deleted by name if not) and
libcni's result cache under /var/lib/cni (its entries for our containers,
and the directories if this test created them).
"""
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FABRIC_ADDR, NODE_ADDR, POOL
from lab import wait_for

PODMAN = shutil.which("podman")
pytestmark = pytest.mark.skipif(PODMAN is None, reason="podman is not installed")

BUSYBOX = "/bin/busybox"  # Debian's busybox-static: a rootfs needs no shared libraries
APPLETS = ("sh", "ping", "nc", "httpd", "ip", "wget", "sleep", "cat", "echo", "ls")
CNI_CACHE = "/var/lib/cni"  # libcni's result cache; podman 4 has no setting to move it
PAGE = "hello from a berth pod\n"
HOST_PORT = 8080

# An HTTP GET with a deadline, run inside a namespace (busybox wget -T segfaults here).
HTTP_GET = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end="")
"""


def host_veth(k8s_ns, pod, prefix="brt"):
    return prefix + hashlib.sha1(f"{k8s_ns}.{pod}".encode()).hexdigest()[:11]


def cgroup_dirs(rel):
    """Our cgroup in every mounted hierarchy (v1 controllers plus the unified one)."""
    root = "/sys/fs/cgroup"
    out = []
    for h in sorted(os.listdir(root)):
        d = os.path.join(root, h, rel.lstrip("/"))
        if os.path.isdir(d) and not os.path.islink(os.path.join(root, h)):
            out.append(d)
    return out


class Podman:
    """podman with isolated state, run in the node namespace."""

    def __init__(self, node):
        self.node = node
        lab = node.lab
        self.dir = os.path.join(lab.tmp, "podman")
        self.rootfs = os.path.join(self.dir, "rootfs")
        # runc, not crun: crun refuses these machines' hybrid cgroup v1 + unified setup.
        # cgroupfs: there is no systemd to ask. A cgroup parent of our own keeps the
        # container's and conmon's cgroups out of the shared libpod_parent and lets
        # close() remove them.
        self.cgroup_parent = f"/berth-test-{lab.tag}"
        self.containers = []     # ids, for the CNI cache cleanup
        self.sandboxes = []      # /run/netns/netns-<uuid> podman made for them
        self.cni_cache_existed = os.path.isdir(CNI_CACHE)
        for sub in ("root", "runroot", "tmp", "cni-bin"):
            os.makedirs(os.path.join(self.dir, sub))
        self._make_rootfs()
        # podman looks a plugin up by its "type" in cni_plugin_dirs: berth-cni from the
        # build, portmap (the conflist's second plugin) from Debian's CNI plugins.
        os.symlink(os.path.join(lab.bin_dir, "berth-cni"),
                   os.path.join(self.dir, "cni-bin", "berth-cni"))
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            f.write(f"""\
[containers]
# The default nofile/nproc limits exceed what this root (no CAP_SYS_RESOURCE) may set.
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{self.dir}/cni-bin", "/usr/lib/cni"]
network_config_dir = "{node.conf_dir}"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
lock_type = "file"
tmp_dir = "{self.dir}/tmp"
""")
        self.env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "HOME": self.dir, "TMPDIR": os.path.join(self.dir, "tmp"),
                    "CONTAINERS_CONF": conf}
        self.base = [PODMAN, "--root", f"{self.dir}/root", "--runroot", f"{self.dir}/runroot",
                     "--tmpdir", f"{self.dir}/tmp", "--storage-driver", "vfs",
                     "--cgroup-manager", "cgroupfs", "--runtime", "runc"]

    def _make_rootfs(self):
        if not os.path.exists(BUSYBOX):
            raise RuntimeError(f"{BUSYBOX} missing: install busybox-static")
        for sub in ("bin", "etc", "proc", "sys", "dev", "tmp", "www"):
            os.makedirs(os.path.join(self.rootfs, sub))
        shutil.copy(BUSYBOX, os.path.join(self.rootfs, "bin", "busybox"))
        for a in APPLETS:
            os.symlink("busybox", os.path.join(self.rootfs, "bin", a))
        with open(os.path.join(self.rootfs, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\n")
        with open(os.path.join(self.rootfs, "etc", "group"), "w") as f:
            f.write("root:x:0:\n")
        with open(os.path.join(self.rootfs, "www", "index.html"), "w") as f:
            f.write(PAGE)

    def __call__(self, *args, check=True, timeout=30):
        r = self.node.ns.run(*self.base, *args, env=self.env, check=False, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}): "
                                 f"{r.stderr.strip()}\nagent log:\n{self.node.log()}")
        return r

    def run(self, *opts, cmd):
        """podman run on the berth network; returns (container id, podman's result)."""
        cidfile = os.path.join(self.dir, f"cid{len(self.containers)}")
        try:
            r = self("run", "--network", "berth", "--cgroup-parent", self.cgroup_parent,
                     "--cidfile", cidfile, *opts, "--rootfs", self.rootfs, *cmd)
        finally:
            cid = None
            if os.path.exists(cidfile):  # "run --rm" removes it again
                with open(cidfile) as f:
                    cid = f.read().strip()
                self.containers.append(cid)
        return cid, r

    def inspect(self, name):
        return json.loads(self("inspect", "--format", "json", name).stdout)[0]

    def close(self):
        """Undo everything, each step even when an earlier one failed; report what did not go."""
        errors = []
        for step in (self._remove_containers, self._remove_cgroups, self._remove_sandboxes,
                     self._remove_state, self._remove_cni_cache):
            try:
                step()
            except Exception as e:  # keep cleaning up; report at the end
                errors.append(f"{step.__name__}: {e!r}")
        if errors:
            raise RuntimeError("podman cleanup: " + "; ".join(errors))

    def _remove_containers(self):
        # This is what runs CNI DEL for whatever is left (the agent is still up).
        self("rm", "--all", "--force", "--time", "0", check=False)

    def _remove_cgroups(self):
        # Anything still in our cgroup was started by this podman (conmon, a container).
        for d in cgroup_dirs(self.cgroup_parent):
            for sub, _, _ in os.walk(d):
                try:
                    with open(os.path.join(sub, "cgroup.procs")) as f:
                        pids = [int(p) for p in f.read().split()]
                except OSError:
                    continue
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
        for d in cgroup_dirs(self.cgroup_parent):
            for sub, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):
                wait_for(lambda: _rmdir(sub), timeout=5, what=f"rmdir {sub}")

    def _remove_sandboxes(self):
        # Container netns podman failed to remove: only the ones it made for us.
        for path in self.sandboxes:
            if os.path.exists(path):
                subprocess.run(["ip", "netns", "del", os.path.basename(path)],
                               capture_output=True, timeout=10)

    def _remove_state(self):
        # Mounts podman may have left under our state (a container's /dev/shm), then the rest.
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in sorted((m for m in mounts if m.startswith(self.dir + "/")), key=len,
                        reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True, timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _remove_cni_cache(self):
        # libcni's result cache: our entries (DEL normally removed them already), and the
        # directories if this test created them. Two overlapping runs may leave them empty.
        results = os.path.join(CNI_CACHE, "results")
        if os.path.isdir(results):
            for e in os.listdir(results):
                if any(cid in e for cid in self.containers):
                    os.unlink(os.path.join(results, e))
        if not self.cni_cache_existed:
            for d in (results, CNI_CACHE):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def _rmdir(path):
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


@pytest.fixture
def podman(node):
    pm = Podman(node)
    try:
        yield pm
    finally:
        pm.close()


def http_get(ns, url):
    r = ns.run(sys.executable, "-c", HTTP_GET, url, check=False, timeout=10)
    return r.stdout if r.returncode == 0 else None


def links(ns):
    return {l["ifname"] for l in ns.json("ip", "-j", "link", "show")}


def pod_routes(node, ip):
    return [r for r in node.ns.json("ip", "-j", "route", "show", "table", "all")
            if r.get("dst") == ip]


def test_podman_container_on_berth_network(node, podman):
    fabric = node.fabric
    # podman sees the agent's conflist as a network named after its "name".
    nets = json.loads(podman("network", "inspect", "berth").stdout)
    assert nets[0]["name"] == "berth" and nets[0]["driver"] == "berth-cni", nets

    # A web server container with a host port: ADD runs berth-cni, then portmap
    # with berth's result as prevResult.
    cid, _ = podman.run("-d", "--name", "web", "-p", f"{HOST_PORT}:80",
                        cmd=["/bin/httpd", "-f", "-p", "80", "-h", "/www"])
    info = podman.inspect("web")
    podman.sandboxes.append(info["NetworkSettings"]["SandboxKey"])
    assert info["State"]["Running"], info["State"]
    net = info["NetworkSettings"]["Networks"]["berth"]
    ip = net["IPAddress"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(POOL), net
    assert net["IPPrefixLen"] == 32 and net["Gateway"] == "169.254.1.1", net

    # The agent lists it. podman passes CNI_ARGS "IgnoreUnknown=1;K8S_POD_NAME=web" and
    # no K8S_POD_NAMESPACE, so berth names the attachment after the container ("_/<id>").
    pods = node.berthctl_json("pods")["pods"]
    assert len(pods) == 1, pods
    p = pods[0]
    assert (p["ip"], p["containerID"], p["ifname"], p["network"]) == (ip, cid, "eth0", "berth"), p
    assert (p["namespace"], p["pod"]) == ("_", cid), p
    veth = p["hostVeth"]
    assert veth == host_veth("_", cid), p
    # The host side is in the node namespace, never in the machine's root namespace.
    assert veth in links(node.ns)
    assert subprocess.run(["ip", "link", "show", "dev", veth], capture_output=True).returncode != 0
    assert [r["dev"] for r in pod_routes(node, ip)] == [veth]

    # Inside the container: the /32 and the default route through the link-local gateway.
    out = podman("exec", "web", "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    assert f"inet {ip}/32 " in out, out
    out = podman("exec", "web", "ip", "route", "show", "default").stdout
    assert "default via 169.254.1.1 dev eth0" in out, out

    # Reachable natively from the VPC fabric (no NAT): ICMP and the web server...
    fabric.run("ping", "-c", "1", "-W", "2", ip)
    assert wait_for(lambda: http_get(fabric, f"http://{ip}/"), timeout=10,
                    what="httpd in the container") == PAGE
    # ...through the node's host port (portmap DNAT, chained after berth-cni)...
    assert http_get(fabric, f"http://{NODE_ADDR}:{HOST_PORT}/") == PAGE
    # ...and the container reaches out: the fabric peer, through the node.
    podman("exec", "web", "ping", "-c", "1", "-W", "2", FABRIC_ADDR)

    # A second, short-lived container: its own address, pod to pod on the node, and
    # "run --rm" does ADD and DEL in one go.
    _, r = podman.run("--rm", "--name", "client", cmd=[
        "/bin/sh", "-c", f"ip -4 -o addr show dev eth0 && wget -qO- http://{ip}/"])
    out = r.stdout
    assert PAGE in out, out
    client_ip = out.split("inet ")[1].split("/")[0]
    assert client_ip != ip and ipaddress.ip_address(client_ip) in ipaddress.ip_network(POOL)
    assert [q["ip"] for q in node.berthctl_json("pods")["pods"]] == [ip]

    # podman rm: CNI DEL releases the address and the host side goes.
    podman("rm", "--force", "--time", "0", "web")
    assert node.berthctl_json("pods")["pods"] == []
    wait_for(lambda: veth not in links(node.ns), what=f"host veth {veth} to go")
    wait_for(lambda: not pod_routes(node, ip), what=f"route to {ip} to go")
    assert not os.path.exists(podman.sandboxes[0]), "podman left the container's netns"


def attached(node, podman, cid):
    """The container's berth attachment as berthctl lists it, once it answers from the fabric."""
    pods = [p for p in node.berthctl_json("pods")["pods"] if p["containerID"] == cid]
    if len(pods) != 1:
        return None
    ip = pods[0]["ip"]
    out = podman("exec", cid, "ip", "-4", "-o", "addr", "show", "dev", "eth0", check=False).stdout
    ok = f"inet {ip}/32 " in out and \
        node.fabric.run("ping", "-c", "1", "-W", "2", ip, check=False).returncode == 0
    return ip if ok else None


def test_podman_network_disconnect_connect_reload(node, podman):
    cid, _ = podman.run("-d", "--name", "idle", cmd=["/bin/sleep", "300"])
    podman.sandboxes.append(podman.inspect("idle")["NetworkSettings"]["SandboxKey"])
    assert attached(node, podman, cid)

    # Disconnect runs DEL with the container (and its netns) alive.
    podman("network", "disconnect", "berth", "idle")
    assert node.berthctl_json("pods")["pods"] == []
    # Connect runs ADD into that same netns: the container must be on the network again.
    podman("network", "connect", "berth", "idle")
    assert attached(node, podman, cid), node.berthctl_json("pods")
    # Reload (what podman does after a firewall reload) is DEL + ADD on the same netns too.
    podman("network", "reload", "idle")
    assert attached(node, podman, cid), node.berthctl_json("pods")
