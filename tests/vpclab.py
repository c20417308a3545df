# SPDX-License-Identifier: Apache-2.0
"""A simulated VPC on one machine, for berth's end-to-end tests, demo and benchmarks.

    outside 203.0.113.10 ── router ──┐ 198.18.0.1/24: the subnet's gateway, an internet
                    (203.0.113.1)    │ gateway that knows only the node subnet
                                     │
      VPC namespace: bridge br0 ═════╪═════════════════╤══════════ ... (198.18.0.0/16)
      198.18.0.2 (control plane:     │                 │
      the test API server listens)   node-a            node-b
                                     eth0 198.18.0.11  eth0 198.18.0.12
                                     pool 198.18.1.0/28 pool 198.18.2.0/28
                                     berth-agent       berth-agent
                                     ├─ pod 198.18.1.x ├─ pod 198.18.2.x

How pods are reached: pod addresses are VPC addresses, in the same /16 as the
nodes, and each node answers ARP on its fabric interface for the pods it hosts
(proxy ARP: the kernel answers for addresses routed out of another interface,
here a pod's /32 behind its host veth). That is what a VPC does for a
secondary address: it delivers it to the interface that owns it. Pod to pod
across nodes is therefore one L2 hop on the bridge, natively routed, with no
overlay, no tunnel and no NAT.

The outside host is reachable only through the nodes' SNAT and NodePort rules:
the router routes only the node subnet (198.18.0.0/24) into the VPC, so pod
addresses are unreachable from outside, and it drops (strict reverse-path
filter) anything from the VPC whose source is not a node address, i.e. pod
egress that was not SNATed.

Services come from a manifests directory shared by all agents (default:
source="manifests"), or from the project's test API server listening in the
VPC namespace (source="api"): VpcLab.apply()/delete() write either.

Usage:

    with VpcLab.open(bin_dir, nodes=2) as vpc:      # sweeps a killed run's leftovers first
        a, b = vpc.nodes
        pa, pb = vpc.pod(a, "web-a"), vpc.pod(b, "web-b")
        vpc.serve(pa), vpc.serve(pb)
        vpc.service("web", [pa, pb], type="NodePort", node_port=30080)
        vpc.probe(vpc.outside, "tcp", a.addr, 30080, count=4)

or, inside a test that already owns a lab.Lab: VpcLab(lab, ...), then vpc.close(); or by
hand: python3 tests/vpclab.py --bin-dir build [--nodes 3] [--source api] (until Ctrl-C).
Everything lives in namespaces the Lab creates and is removed by close() (which
the context manager calls on exit, Ctrl-C and failure); Lab.sweep() removes
what a killed run left behind.
"""
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver import objects  # noqa: E402
from lab import LAB_TAG, Lab, Node, Pod, veth_pair, wait_for  # noqa: E402
from podman import BUSYBOX, Podman  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "netprobe.py")

VPC_CIDR = "198.18.0.0/16"
NODE_SUBNET = "198.18.0.0/24"      # where node primary addresses live
GATEWAY = "198.18.0.1"             # the router's leg on the fabric
CONTROL_PLANE = "198.18.0.2"       # the VPC namespace's own address (API server)
SERVICE_CIDR = "198.19.0.0/16"     # ClusterIPs: outside the VPC, as in EKS
OUTSIDE_NET = "203.0.113.0/24"
ROUTER_OUT = "203.0.113.1"
OUTSIDE_IP = "203.0.113.10"


def node_addr(i):
    """Node i's (0-based) primary address: 198.18.0.11, .12, ..."""
    return f"198.18.0.{11 + i}"


def node_pool(i, prefix_len=28):
    """Node i's pod addresses: 198.18.1.0/28, 198.18.2.0/28, ..."""
    return f"198.18.{1 + i}.0/{prefix_len}"


def k8s_node_name(i):
    return f"node-{chr(ord('a') + i)}"


class VpcNode(Node):
    """A node on the VPC fabric: eth0 with its primary address, proxy ARP for its pods,
    default route via the VPC gateway, and (once started) its own berth-agent."""

    def __init__(self, vpc, index, pool):
        self.index = index
        self.k8s_name = k8s_node_name(index)
        super().__init__(vpc.lab, vpc.vpc, node_addr(index), pool, prefix_len=16,
                         name=f"n{chr(ord('a') + index)}")
        # The fabric end of the uplink (named by Node) becomes a port of the bridge.
        self.port = self.ns.name[-8:] + "u"
        vpc.vpc.run("ip", "link", "set", self.port, "master", "br0")
        self.ns.run("ip", "route", "add", "default", "via", GATEWAY)
        # Answer on the fabric for the pods this node hosts (their /32s are behind veths).
        self.ns.sysctl("net.ipv4.conf.eth0.proxy_arp", 1)
        self.ns.sysctl("net.ipv4.neigh.eth0.proxy_delay", 0)  # default: up to 0.8 s late
        self.agent_args = ()

    def start(self, *agent_args):
        self.agent_args = tuple(agent_args)
        return self.start_agent(*self.agent_args)

    def restart_agent(self, sig=signal.SIGKILL):
        """Stop the agent (SIGKILL: as if it crashed) and start it again, same flags."""
        self.stop_agent(sig)
        return self.start_agent(*self.agent_args)

    def pod_ips(self):
        return {p["ip"] for p in self.berthctl_json("pods")["pods"]}

    def programmed(self):
        """{namespace/name: proxy status entry} of what this node's proxy has applied."""
        out = self.berthctl_json("services").get("proxy") or {}
        return {f"{s['namespace']}/{s['name']}": s for s in out.get("services", [])}

    def nft(self):
        return self.ns.run("nft", "list", "table", "ip", "berth").stdout


class VpcLab:
    """The VPC, its router and outside host, n nodes with agents; pods and services on demand.

    lab          a lab.Lab: owns every namespace, process and temp file (close() it)
    nodes        how many nodes (node-a, node-b, ...)
    source       "manifests" (one directory all agents read) or "api" (the test API server)
    agent_args   extra berth-agent flags for every node
    pool_len     prefix length of each node's pool (28: 16 pod addresses)
    start        start the agents now (else: call start_agents())
    """

    def __init__(self, lab, nodes=2, source="manifests", agent_args=(), pool_len=28,
                 cooldown=30, start=True):
        assert source in ("manifests", "api")
        self.lab = lab
        self.source = source
        self.api = None
        self.cooldown = cooldown
        self.extra_args = tuple(agent_args)
        self.pods = []
        self._servers = {}
        self._podmen = []
        try:
            self._build(nodes, pool_len, start)
        except BaseException:
            if self.api:  # the rest is the lab's to remove, by its owner's close()
                self.api.stop()
                self.api = None
            raise

    def _build(self, nodes, pool_len, start):
        lab = self.lab
        # The subnet: a bridge in the VPC namespace, with the control plane's address on it.
        self.vpc = lab.netns("vpc")
        self.vpc.run("ip", "link", "add", "br0", "type", "bridge")
        self.vpc.run("ip", "link", "set", "br0", "up")
        self.vpc.run("ip", "addr", "add", f"{CONTROL_PLANE}/16", "dev", "br0")
        # The router: the subnet's gateway and the way out, for node addresses only.
        self.router = lab.netns("rtr")
        veth_pair(self.router, "eth0", self.vpc, "rtr0")
        self.vpc.run("ip", "link", "set", "rtr0", "master", "br0")
        self.router.run("ip", "addr", "add", f"{GATEWAY}/24", "dev", "eth0")
        self.router.sysctl("net.ipv4.ip_forward", 1)
        for conf in ("all", "eth0"):
            self.router.sysctl(f"net.ipv4.conf.{conf}.rp_filter", 1)
        # The outside host, on the router's other leg.
        self.outside = lab.netns("out")
        veth_pair(self.router, "eth1", self.outside, "eth0")
        self.router.run("ip", "addr", "add", f"{ROUTER_OUT}/24", "dev", "eth1")
        self.outside.run("ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        self.outside.run("ip", "route", "add", "default", "via", ROUTER_OUT)
        self.nodes = [VpcNode(self, i, node_pool(i, pool_len)) for i in range(nodes)]
        # Services and nodes: one manifests directory for every agent, or the API server.
        self.mdir = os.path.join(lab.tmp, "manifests")
        os.makedirs(self.mdir)
        if self.source == "api":
            from apiserver.kubeapi import KubeAPIServer
            self.api = KubeAPIServer(host=CONTROL_PLANE, netns=self.vpc.path,
                                     bookmark_interval=0.5,
                                     tls_dir=os.path.join(lab.tmp, "pki")).start()
            self.kubeconfig = self.api.kubeconfig(os.path.join(lab.tmp, "kubeconfig"))
        for n in self.nodes:
            self.apply("nodes", objects.node(n.k8s_name, address=n.addr))
        if start:
            self.start_agents()

    # ---- lifecycle ----
    _opened = 0

    @classmethod
    @contextlib.contextmanager
    def open(cls, bin_dir, **kw):
        """A lab of its own, swept before and closed after (even on Ctrl-C or failure)."""
        Lab.sweep()
        # A tag of its own: another Lab of this process may be alive (LAB_TAG<pid>x...).
        cls._opened += 1
        lab = Lab(os.path.abspath(bin_dir), tag=f"{LAB_TAG}{os.getpid()}x{cls._opened}v")
        vpc = None
        try:
            vpc = cls(lab, **kw)
            yield vpc
        finally:
            if vpc:
                vpc.close()
            else:
                lab.close()

    def close(self):
        """Stop podman's containers and the API server, then everything the lab owns.
        Sanitizer reports of the agents are left in self.lab.reports."""
        try:
            for pm in reversed(self._podmen):
                with contextlib.suppress(Exception):  # best effort: the lab must still go
                    pm.close()
            self._podmen = []
            if self.api:
                self.api.stop()
                self.api = None
        finally:
            self.lab.close()

    def agent_args(self, node):
        src = ("--kubeconfig", self.kubeconfig) if self.source == "api" else \
            ("--manifests", self.mdir)
        return ("--node-name", node.k8s_name, *src, "--proxy", "nftables",
                "--service-cidr", SERVICE_CIDR, "--cooldown", str(self.cooldown),
                *self.extra_args)

    def start_agents(self):
        for n in self.nodes:
            n.start(*self.agent_args(n))
        if self.source == "api":
            for n in self.nodes:
                wait_for(lambda: n.berthctl_json("status").get("ready"), timeout=20,
                         what=f"{n.k8s_name}'s caches to sync")

    # ---- pods ----
    def pod(self, node, name, k8s_ns="default"):
        """A pod sandbox on node, wired by berth-cni ADD as a runtime calls it."""
        p = Pod(node, name, k8s_ns=k8s_ns)
        p.add()
        node.pods[name] = p
        self.pods.append(p)
        return p

    def delete_pod(self, pod):
        """CNI DEL as the runtime runs it, then the sandbox goes (and its veth with it)."""
        self.stop_serving(pod)
        code, out, err = pod.cni("DEL")
        if code != 0:
            raise RuntimeError(f"DEL {pod.name} failed: {out} {err}")
        pod.ns.delete()
        pod.node.pods.pop(pod.name, None)
        if pod in self.pods:
            self.pods.remove(pod)

    def podman(self, node):
        """podman running containers on node's berth CNI network (see Podman), or None when
        podman is not installed. The lab closes it (before the agents stop)."""
        if not shutil.which("podman") or not os.path.exists(BUSYBOX):
            return None
        pm = Podman(node, f"podman{len(self._podmen)}")
        self._podmen.append(pm)
        return pm

    def close_podman(self, pm):
        """Remove podman's containers (CNI DEL) and state now, not at close()."""
        self._podmen.remove(pm)
        pm.close()

    # ---- traffic ----
    def serve(self, where, name=None, ports=(8080, 5353)):
        """netprobe's server (TCP and UDP on each port) in a pod or a namespace."""
        ns = where.ns if isinstance(where, Pod) else where
        name = name or (where.name if isinstance(where, Pod) else ns.name)
        p = self.lab.track(ns.popen(sys.executable, PROBE, "serve", name,
                                    *[str(x) for x in ports], stdout=subprocess.PIPE, text=True))
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"netprobe server {name} did not start")
        self._servers.setdefault(ns.name, []).append(p)
        return p

    def stop_serving(self, where):
        ns = where.ns if isinstance(where, Pod) else where
        for p in self._servers.pop(ns.name, []):
            if p.poll() is None:
                p.kill()
                p.wait()

    def probe(self, where, proto, host, port, count=1, timeout=1.0):
        """netprobe from a pod or namespace: one line per attempt (see netprobe.py)."""
        ns = where.ns if isinstance(where, Pod) else where
        r = ns.run(sys.executable, PROBE, "probe", proto, host, str(port), "--count",
                   str(count), "--timeout", str(timeout), timeout=count * timeout + 30)
        return r.stdout.split("\n")[:-1]

    def stream(self, where, host, port, seconds):
        """A long-lived TCP connection in the background (netprobe stream): the returned
        process prints "ok N" at the end if no message was lost."""
        ns = where.ns if isinstance(where, Pod) else where
        return self.lab.track(ns.popen(sys.executable, PROBE, "stream", host, str(port),
                                       str(seconds), stdout=subprocess.PIPE, text=True))

    # ---- cluster objects: the same calls for both sources ----
    def apply(self, resource, obj):
        """Create or replace an object (resource: services, endpointslices, nodes, pods)."""
        if self.api:
            self.api.apply(resource, obj)
            return
        meta = obj["metadata"]
        path = os.path.join(self.mdir, f"{resource}-{meta.get('namespace', '_')}-"
                                       f"{meta['name']}.json")
        tmp = os.path.join(self.mdir, "." + os.path.basename(path))  # hidden: not read
        with open(tmp, "w") as f:
            json.dump(obj, f)
        os.rename(tmp, path)

    def delete(self, resource, name, namespace="default"):
        if self.api:
            self.api.delete(resource, name, namespace)
            return
        path = os.path.join(self.mdir, f"{resource}-{namespace if resource != 'nodes' else '_'}"
                                       f"-{name}.json")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def service(self, name, pods, port=80, target_port=8080, protocol="TCP", udp_port=None,
                type="ClusterIP", node_port=None, cluster_ip=None, namespace="default",
                wait=True, **spec):
        """A Service over these pods and its EndpointSlice (each endpoint on its pod's node).

        udp_port: also serve UDP udp_port -> 5353 ("dns"). spec: objects.service() keywords
        (external_traffic_policy="Local", session_affinity="ClientIP", ...).
        Returns the cluster IP; waits until every node's proxy has programmed it.
        """
        cluster_ip = cluster_ip or self.next_cluster_ip()
        ports = [objects.port(port, "http", protocol, target_port, node_port=node_port)]
        sports = [objects.slice_port(target_port, "http", protocol)]
        if udp_port:
            ports.append(objects.port(udp_port, "dns", "UDP", 5353))
            sports.append(objects.slice_port(5353, "dns", "UDP"))
        svc = objects.service(name, namespace, cluster_ip=cluster_ip, ports=ports, type=type,
                              **spec)
        eps = [objects.endpoint(p.ip, node=p.node.k8s_name, pod=p.name, namespace=namespace)
               for p in pods]
        self.apply("services", svc)
        self.apply("endpointslices",
                   objects.endpointslice(name, namespace, eps, sports, name=f"{name}-1"))
        if wait:
            self.wait_programmed(f"{namespace}/{name}", {p.ip for p in pods})
        return cluster_ip

    def set_endpoints(self, name, pods, target_port=8080, namespace="default", wait=True):
        """Replace a service's endpoints (one slice, as service() made it)."""
        eps = [objects.endpoint(p.ip, node=p.node.k8s_name, pod=p.name, namespace=namespace)
               for p in pods]
        self.apply("endpointslices", objects.endpointslice(
            name, namespace, eps, [objects.slice_port(target_port, "http")], name=f"{name}-1"))
        if wait:
            self.wait_programmed(f"{namespace}/{name}", {p.ip for p in pods})

    _next_ip = 10

    def next_cluster_ip(self):
        net = ipaddress.ip_network(SERVICE_CIDR)
        ip = str(net.network_address + self._next_ip)
        self._next_ip += 1
        return ip

    def wait_programmed(self, key, endpoint_ips=None, timeout=15):
        """Until every node's proxy has applied service key ("ns/name") with exactly these
        endpoint addresses (None: any)."""
        def done(node):
            s = node.programmed().get(key)
            if not s:
                return False
            if endpoint_ips is None:
                return True
            have = {e["addr"] for p in s.get("ports", []) for e in p.get("cluster_endpoints", [])}
            return have == set(endpoint_ips)
        for n in self.nodes:
            wait_for(lambda: done(n), timeout=timeout,
                     what=f"{n.k8s_name} to program {key}")


def answers(lines):
    """{(who answered, the source address it saw)} of netprobe replies; other outcomes
    ("refused", "timeout") as 1-tuples."""
    out = set()
    for line in lines:
        parts = line.split()
        out.add((parts[1], parts[2]) if parts[0] == "reply" else (parts[0],))
    return out


def main():
    """python3 tests/vpclab.py [--bin-dir build] [--nodes N] [--source api]: bring a lab up
    and keep it until Ctrl-C, to poke at by hand (nsenter --net=/var/run/netns/NAME ...)."""
    import argparse
    import time
    ap = argparse.ArgumentParser(description="a simulated VPC with berth nodes, until Ctrl-C")
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--source", choices=("manifests", "api"), default="manifests")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    try:
        with VpcLab.open(args.bin_dir, nodes=args.nodes, source=args.source) as vpc:
            print(f"vpc {vpc.vpc.name}  router {vpc.router.name}  outside {vpc.outside.name} "
                  f"({OUTSIDE_IP})")
            for n in vpc.nodes:
                print(f"{n.k8s_name} {n.ns.name} {n.addr} pool {n.pool}  "
                      f"berthctl --run-dir {n.run_dir}")
            print(f"manifests: {vpc.mdir}" if vpc.source == "manifests" else
                  f"API server: {vpc.api.url} (kubeconfig {vpc.kubeconfig})")
            print("Ctrl-C to tear it down", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
