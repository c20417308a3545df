# SPDX-License-Identifier: Apache-2.0
"""podman as a real runtime for berth's tests, with state private to one lab.

podman reads the agent's 10-berth.conflist (berth-cni chained with portmap)
from the node's conf dir and calls berth-cni as any runtime does. It runs
inside the node namespace (nsenter --net, never "ip netns exec", which
remounts /sys and hides the cgroup mounts podman needs). Its state is private:
containers.conf via CONTAINERS_CONF, --root/--runroot/--tmpdir under the lab's
temp dir, file locks instead of the /dev/shm/libpod_lock segment, its own
cgroup parent, no events log. Two things cannot be redirected and are cleaned
up by hand: the container netns podman bind-mounts at /run/netns/netns-<uuid>
(removed by podman rm; deleted by name if not: callers add them to
`sandboxes`) and libcni's result cache under /var/lib/cni (its entries for
our containers, and the directories if we created them).
Used by tests/integration/test_podman.py and tests/vpclab.py.
"""
import json
import os
import shutil
import subprocess

from lab import wait_for

PODMAN = shutil.which("podman")
BUSYBOX = "/bin/busybox"  # Debian's busybox-static: a rootfs needs no shared libraries
APPLETS = ("sh", "ping", "nc", "httpd", "ip", "wget", "sleep", "cat", "echo", "ls")
CNI_CACHE = "/var/lib/cni"  # libcni's result cache; podman 4 has no setting to move it
PAGE = "hello from a berth pod\n"  # the rootfs's /www/index.html


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

    def __init__(self, node, name="podman"):
        self.node = node
        self.dir = os.path.join(node.lab.tmp, name)  # short: podman's runroot limit is 50
        self.rootfs = os.path.join(self.dir, "rootfs")
        # runc, not crun: crun refuses these machines' hybrid cgroup v1 + unified setup.
        # cgroupfs: there is no systemd to ask. A cgroup parent of our own keeps the
        # container's and conmon's cgroups out of the shared libpod_parent and lets
        # close() remove them.
        self.cgroup_parent = f"/berth-test-{node.ns.name}"
        self.containers = []     # ids, for the CNI cache cleanup
        self.sandboxes = []      # /run/netns/netns-<uuid> podman made for them
        self.cni_cache_existed = os.path.isdir(CNI_CACHE)
        for sub in ("root", "runroot", "tmp", "cni-bin"):
            os.makedirs(os.path.join(self.dir, sub))
        self._make_rootfs()
        # podman looks a plugin up by its "type" in cni_plugin_dirs: berth-cni from the
        # build, portmap (the conflist's second plugin) from Debian's CNI plugins.
        os.symlink(os.path.join(node.lab.bin_dir, "berth-cni"),
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

    def ip(self, name):
        """The container's berth address."""
        return self.inspect(name)["NetworkSettings"]["Networks"]["berth"]["IPAddress"]

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
