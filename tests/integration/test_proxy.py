# SPDX-License-Identifier: Apache-2.0
"""The service proxy, judged by packets: a table of flows, each with who may
answer (or that it is refused, or dropped) and whose address the backend saw.

The table is backend-neutral: it runs against every backend in BACKENDS.

    fabric (198.18.0.1, the VPC router) ── node-a (198.18.0.10, berth-agent)
       │                                     ├─ pod be-a, pod be-b   (servers)
       ├─ remote (198.18.0.20, a server      ├─ pod client
       │   on another node: node-b)           └─ the node itself
       └─ outside (203.0.113.5)
"""
import json
import os
import signal
import sys
import time

import pytest

from apiserver import objects
from apiserver.kubeapi import KubeAPIServer
from lab import Node, Pod, veth_pair, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "..", "netprobe.py")
BACKENDS = ["nftables"]

NODE, NODE_IP, REMOTE_IP, OUTSIDE_IP = "node-a", "198.18.0.10", "198.18.0.20", "203.0.113.5"
SVC_CIDR = "198.18.128.0/17"
WEB, NOEP, AFF, LOCAL, ILOCAL, LB, HAIR, TERM = (
    "198.18.128.10", "198.18.128.11", "198.18.128.12", "198.18.128.13", "198.18.128.14",
    "198.18.128.15", "198.18.128.16", "198.18.128.17")
LB_IP, EXT_IP = "198.18.129.1", "198.18.129.2"


def svc(name, ip, ports, type="ClusterIP", **extra):
    spec = {"type": type, "clusterIP": ip, "clusterIPs": [ip], "ports": ports}
    spec.update({k: v for k, v in extra.items() if k != "status"})
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "test"}, "spec": spec}
    if "status" in extra:
        obj["status"] = extra["status"]
    return obj


def port(p, target, proto="TCP", name=None, node_port=None):
    d = {"name": name or f"{proto.lower()}-{p}", "port": p, "targetPort": target, "protocol": proto}
    if node_port:
        d["nodePort"] = node_port
    return d


def eps(name, endpoints, ports):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-1", "namespace": "test",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports],
            "endpoints": [{"addresses": [ip], "nodeName": node,
                           "conditions": {"ready": ready, "serving": True,
                                          "terminating": not ready}}
                          for ip, node, ready in endpoints]}


class ProxyLab:
    """source: "manifests" (a directory the agent follows) or "api" (the test API server)."""

    def __init__(self, lab, backend, source="manifests"):
        self.lab = lab
        fabric, outside, remote = lab.netns("f"), lab.netns("o"), lab.netns("r")
        self.fabric, self.outside, self.remote = fabric, outside, remote
        self.node = Node(lab, fabric, NODE_IP, "198.18.1.0/28", fabric_addr="198.18.0.1")
        self.node.ns.run("ip", "route", "add", "default", "via", "198.18.0.1")
        fabric.sysctl("net.ipv4.ip_forward", 1)
        # The VPC answers for addresses it routes elsewhere (the remote node's), as a VPC does.
        fabric.sysctl("net.ipv4.conf.all.proxy_arp", 1)
        for cidr in ("198.18.1.0/28", LB_IP, EXT_IP):
            fabric.run("ip", "route", "add", cidr, "via", NODE_IP)
        veth_pair(fabric, "rem", remote, "eth0")
        fabric.run("ip", "addr", "add", "198.18.0.2/32", "dev", "rem")
        fabric.run("ip", "route", "add", REMOTE_IP, "dev", "rem")
        # Another node's pod network, one routed hop away: everything goes via the fabric.
        remote.run("ip", "addr", "add", f"{REMOTE_IP}/32", "dev", "eth0")
        remote.run("ip", "route", "add", "198.18.0.2", "dev", "eth0")
        remote.run("ip", "route", "add", "default", "via", "198.18.0.2")
        veth_pair(fabric, "out", outside, "eth0")
        fabric.run("ip", "addr", "add", "203.0.113.1/24", "dev", "out")
        outside.run("ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        outside.run("ip", "route", "add", "default", "via", "203.0.113.1")
        self.mdir = os.path.join(lab.tmp, "manifests")
        os.makedirs(self.mdir)
        self.backend = backend
        self.api = None
        src = ("--manifests", self.mdir)
        if source == "api":
            self.api = KubeAPIServer(netns=self.node.ns.path, bookmark_interval=0.5).start()
            lab.cleanups.append(self.api.stop)
            src = ("--kubeconfig", self.api.kubeconfig(os.path.join(lab.tmp, "kubeconfig")),
                   "--watch-stall-timeout", "2")
        self.agent_args = ("--node-name", NODE, *src, "--proxy", backend,
                           "--service-cidr", SVC_CIDR, "--nodeport-addresses", "198.18.0.0/24",
                           "--metrics-addr", "127.0.0.1:0")
        self.node.start_agent(*self.agent_args)
        self.pods = {n: Pod(self.node, n, k8s_ns="test") for n in ("be-a", "be-b", "client")}
        for p in self.pods.values():
            p.add()
        for name in ("be-a", "be-b"):
            self.serve(self.pods[name].ns, name)
        self.serve(remote, "remote")
        self.write_services()

    def serve(self, ns, name):
        p = self.lab.track(ns.popen(sys.executable, PROBE, "serve", name, "8080", "5353",
                                    stdout=__import__("subprocess").PIPE, text=True))
        assert p.stdout.readline().strip() == "ready"

    def ip(self, name):
        return self.pods[name].ip

    def write_services(self):
        a, b = self.ip("be-a"), self.ip("be-b")
        # SCTP: programmed like the others; this kernel has no SCTP sockets to send with.
        web_ports = [port(80, 8080, name="http", node_port=30080), port(53, 5353, "UDP", name="dns"),
                     port(9, 9000, "SCTP", name="sctp")]
        slice_ports = [("http", 8080, "TCP"), ("dns", 5353, "UDP"), ("sctp", 9000, "SCTP")]
        objs = [
            svc("web", WEB, web_ports, type="NodePort"),
            eps("web", [(a, NODE, True), (b, NODE, True), (REMOTE_IP, "node-b", True)], slice_ports),
            svc("noep", NOEP, [port(80, 8080, name="http", node_port=30084),
                               port(53, 5353, "UDP", name="dns", node_port=30084)],
                type="NodePort"),
            svc("aff", AFF, [port(80, 8080, name="http")], sessionAffinity="ClientIP"),
            eps("aff", [(a, NODE, True), (b, NODE, True), (REMOTE_IP, "node-b", True)],
                [("http", 8080, "TCP")]),
            svc("local", LOCAL, [port(80, 8080, name="http", node_port=30081)],
                type="LoadBalancer", externalTrafficPolicy="Local", externalIPs=[EXT_IP]),
            eps("local", [(a, NODE, True), (REMOTE_IP, "node-b", True)], [("http", 8080, "TCP")]),
            svc("remoteonly", ILOCAL, [port(80, 8080, name="http", node_port=30082)],
                type="LoadBalancer", externalTrafficPolicy="Local", internalTrafficPolicy="Local"),
            eps("remoteonly", [(REMOTE_IP, "node-b", True)], [("http", 8080, "TCP")]),
            svc("lb", LB, [port(80, 8080, name="http", node_port=30083)], type="LoadBalancer",
                loadBalancerSourceRanges=["203.0.113.0/28"],
                status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}}),
            eps("lb", [(b, NODE, True)], [("http", 8080, "TCP")]),
            svc("hairpin", HAIR, [port(80, 8080, name="http")]),
            eps("hairpin", [(a, NODE, True)], [("http", 8080, "TCP")]),
            svc("terminating", TERM, [port(80, 8080, name="http")]),
            eps("terminating", [(b, NODE, False)], [("http", 8080, "TCP")]),
        ]
        if self.api:
            for o in objs:
                self.api.apply("services" if o["kind"] == "Service" else "endpointslices", o)
        else:
            with open(os.path.join(self.mdir, "services.json.tmp"), "w") as f:
                json.dump({"apiVersion": "v1", "kind": "List", "items": objs}, f)
            os.rename(os.path.join(self.mdir, "services.json.tmp"),
                      os.path.join(self.mdir, "services.json"))
        wait_for(self.programmed, timeout=10, what="the proxy to program the services")

    def programmed(self):
        out = self.node.berthctl_json("services")
        return len(out.get("proxy", {}).get("services", [])) == 8

    def probe(self, where, proto, host, port, count=1, timeout=1.0):
        ns = {"client": self.pods["client"].ns, "be-a": self.pods["be-a"].ns,
              "node": self.node.ns, "outside": self.outside, "remote": self.remote}[where]
        r = ns.run(sys.executable, PROBE, "probe", proto, host, str(port), "--count", str(count),
                   "--timeout", str(timeout), timeout=60)
        return r.stdout.split("\n")[:-1]


@pytest.fixture(params=BACKENDS)
def plab(request, lab):
    return ProxyLab(lab, request.param)


def answers(lines):
    """{(backend, seen source)} of the replies; other outcomes as themselves."""
    out = set()
    for line in lines:
        parts = line.split()
        out.add((parts[1], parts[2]) if parts[0] == "reply" else (parts[0],))
    return out


def test_flow_table(plab):
    a, b, c = plab.ip("be-a"), plab.ip("be-b"), plab.ip("client")
    anyone = {"be-a", "be-b", "remote"}
    # (who, proto, host, port, tries, may answer, seen source: "client" | "node" | an IP)
    flows = [
        # ClusterIP from a pod: any endpoint, the pod's own address (no masquerade).
        ("client", "tcp", WEB, 80, 12, anyone, c),
        ("client", "udp", WEB, 53, 12, anyone, c),
        # From the node itself: masqueraded (kube-proxy's local-detector rule).
        ("node", "tcp", WEB, 80, 6, anyone, NODE_IP),
        # NodePort from outside, policy Cluster: masqueraded to the node.
        ("outside", "tcp", NODE_IP, 30080, 6, anyone, NODE_IP),
        # NodePort with externalTrafficPolicy Local: the local endpoint only, client address kept.
        ("outside", "tcp", NODE_IP, 30081, 4, {"be-a"}, OUTSIDE_IP),
        ("outside", "tcp", EXT_IP, 80, 4, {"be-a"}, OUTSIDE_IP),
        # ...while internal traffic to the same service may use any endpoint.
        ("client", "tcp", LOCAL, 80, 10, {"be-a", "remote"}, c),
        # LoadBalancer IP: inside the source ranges only.
        ("outside", "tcp", LB_IP, 80, 3, {"be-b"}, NODE_IP),
        # Hairpin: a pod reaching itself through the service is masqueraded.
        ("be-a", "tcp", HAIR, 80, 2, {"be-a"}, NODE_IP),
        # Terminating but serving endpoints are used when none is ready.
        ("client", "tcp", TERM, 80, 2, {"be-b"}, c),
    ]
    for who, proto, host, port_, tries, may, seen in flows:
        got = answers(plab.probe(who, proto, host, port_, count=tries))
        backends = {g[0] for g in got}
        assert backends <= may and backends, f"{who} -> {host}:{port_}/{proto}: {got}"
        assert {g[1] for g in got} == {seen}, f"{who} -> {host}:{port_}/{proto}: {got}"
    # With 12 tries over 3 endpoints, spread is all but certain (p of missing one < 0.02).
    spread = answers(plab.probe("client", "tcp", WEB, 80, count=30))
    assert {g[0] for g in spread} == anyone

    refused_or_dropped = [
        # No endpoints: rejected, for TCP (reset) and UDP (ICMP port unreachable), on
        # every path: forwarded (a pod), local delivery (outside to a NodePort) and the
        # node's own output.
        ("client", "tcp", NOEP, 80, "refused"),
        ("client", "udp", NOEP, 53, "refused"),
        ("outside", "tcp", NODE_IP, 30084, "refused"),
        ("outside", "udp", NODE_IP, 30084, "refused"),
        ("node", "tcp", NOEP, 80, "refused"),
        # (a reject in output drops the datagram, so the node's own send fails with
        # EPERM before any ICMP: the same under kube-proxy's filter-output chain)
        ("node", "udp", NOEP, 53, "error 1"),
        ("node", "tcp", NODE_IP, 30084, "refused"),
        # A live ClusterIP on a port it does not serve: rejected.
        ("client", "tcp", WEB, 81, "refused"),
        ("node", "tcp", WEB, 81, "refused"),
        # An unallocated address in the service CIDR: dropped.
        ("client", "tcp", "198.18.200.1", 80, "timeout"),
        ("node", "tcp", "198.18.200.1", 80, "timeout"),
        # externalTrafficPolicy Local with no local endpoint: dropped for outside traffic,
        # and internalTrafficPolicy Local likewise for pods (endpoints exist, elsewhere).
        ("outside", "tcp", NODE_IP, 30082, "timeout"),
        ("client", "tcp", ILOCAL, 80, "timeout"),
        # LoadBalancer IP from outside the source ranges: dropped.
        ("remote", "tcp", LB_IP, 80, "timeout"),
    ]
    for who, proto, host, port_, outcome in refused_or_dropped:
        got = plab.probe(who, proto, host, port_, count=1, timeout=1.0)
        assert got == [outcome], f"{who} -> {host}:{port_}/{proto}: {got}, want {outcome}"


def test_session_affinity(plab):
    got = answers(plab.probe("client", "tcp", AFF, 80, count=8))
    assert len(got) == 1, f"ClientIP affinity: one backend for one client, got {got}"


def test_pod_egress_snat(plab):
    c = plab.ip("client")
    # Outside the VPC: from the node's address. Inside: the pod's own.
    plab.serve(plab.outside, "outside")
    assert answers(plab.probe("client", "tcp", OUTSIDE_IP, 8080)) == {("outside", NODE_IP)}
    assert answers(plab.probe("client", "tcp", REMOTE_IP, 8080)) == {("remote", c)}


def test_health_check_node_port(plab):
    objs = json.load(open(os.path.join(plab.mdir, "services.json")))
    for o in objs["items"]:
        if o["kind"] == "Service" and o["metadata"]["name"] in ("local", "remoteonly"):
            o["spec"]["healthCheckNodePort"] = 32000 if o["metadata"]["name"] == "local" else 32001
    with open(os.path.join(plab.mdir, "services.json"), "w") as f:
        json.dump(objs, f)

    def get(port_):
        r = plab.fabric.run("curl", "-s", "-w", " %{http_code}", f"http://{NODE_IP}:{port_}/healthz",
                            check=False)
        return r.stdout
    wait_for(lambda: get(32000).endswith(" 200"), timeout=10, what="the health check")
    assert json.loads(get(32000).rsplit(" ", 1)[0])["localEndpoints"] == 1
    assert get(32001).endswith(" 503")


def test_restart_under_traffic_keeps_connections(plab):
    ns = plab.pods["client"].ns
    p = plab.lab.track(ns.popen(sys.executable, PROBE, "stream", WEB, "80", "4",
                                stdout=__import__("subprocess").PIPE, text=True))
    time.sleep(0.5)
    plab.node.agent.send_signal(signal.SIGKILL)
    plab.node.agent.wait()
    plab.node.start_agent(*plab.agent_args)
    wait_for(plab.programmed, timeout=10, what="the restarted proxy")
    out = p.stdout.read().strip()
    p.wait()
    assert out.startswith("ok "), out
    # The restart adopted the table: its first sync changed nothing.
    assert plab.node.berthctl_json("services")["proxy"]["lastApply"]["messages"] == 0


def test_rules_stay_on_exit_and_cleanup_removes_them(plab):
    plab.node.stop_agent()
    assert "table ip berth" in plab.node.ns.run("nft", "list", "tables").stdout
    # With no agent running, services still answer: the rules are the kernel's now.
    got = answers(plab.probe("client", "tcp", WEB, 80, count=4))
    assert got and {g[0] for g in got} <= {"be-a", "be-b", "remote"}, got
    r = plab.node.ns.run(os.path.join(plab.lab.bin_dir, "berth-agent"), "--cleanup")
    assert r.returncode == 0
    assert "table ip berth" not in plab.node.ns.run("nft", "list", "tables").stdout


def test_berthctl_shows_programmed_services(plab):
    a, b = plab.ip("be-a"), plab.ip("be-b")
    out = plab.node.berthctl("services").stdout
    lines = {line.split()[0]: line for line in out.split("Proxy: ", 1)[1].splitlines()[2:]
             if line.strip() and not line.startswith(" ")}
    assert out.split("Proxy: ", 1)[1].startswith("nftables, generation "), out
    web = lines["test/web"]
    for text in (f"{WEB}:80", f"{NODE_IP}:30080(NodePort)", f"{a}:8080", f"{b}:8080",
                 f"{REMOTE_IP}:8080"):
        assert text in web, web
    assert "none: reject" in lines["test/noep"], lines["test/noep"]
    # Local policies: internal side has nothing here, the outside side neither.
    assert "none here: drop" in lines["test/remoteonly"], lines["test/remoteonly"]
    # externalTrafficPolicy Local: external traffic only to the local endpoint.
    assert lines["test/local"].endswith(f"| {a}:8080"), lines["test/local"]
    # Each service's generation is the apply that last changed it.
    programmed = {f"{s['namespace']}/{s['name']}": s
                  for s in plab.node.berthctl_json("services")["proxy"]["services"]}
    gen = programmed["test/web"]["generation"]
    assert gen >= 1 and programmed["test/web"]["programmedAt"] > 0
    objs = json.load(open(os.path.join(plab.mdir, "services.json")))
    for o in objs["items"]:
        if o["kind"] == "EndpointSlice" and o["metadata"]["name"] == "web-1":
            o["endpoints"] = o["endpoints"][:2]
    with open(os.path.join(plab.mdir, "services.json"), "w") as f:
        json.dump(objs, f)

    def reprogrammed():
        now = {f"{s['namespace']}/{s['name']}": s
               for s in plab.node.berthctl_json("services")["proxy"]["services"]}
        return now["test/web"]["generation"] > gen and now
    now = wait_for(reprogrammed, timeout=10, what="web to be reprogrammed")
    assert REMOTE_IP not in json.dumps(now["test/web"]["ports"])
    # ...and only web: the other services keep the generation they had.
    assert now["test/noep"]["generation"] == programmed["test/noep"]["generation"]


def test_api_server_trouble_never_flushes_rules(lab):
    plab = ProxyLab(lab, BACKENDS[0], source="api")
    before = plab.node.ns.run("nft", "list", "table", "ip", "berth").stdout
    # Every list and watch fails and open watches drop: the agent retries, the rules stay.
    plab.api.fail_requests(code=500, times=1000)
    plab.api.drop_watches()
    time.sleep(3)
    assert plab.node.ns.run("nft", "list", "table", "ip", "berth").stdout == before
    got = answers(plab.probe("client", "tcp", WEB, 80, count=4))
    assert got and {g[0] for g in got} <= {"be-a", "be-b", "remote"}, got
    # The server comes back having compacted its history: the agent relists (410) and,
    # finding the same services, changes nothing in the kernel.
    gen = plab.node.berthctl_json("services")["proxy"]["generation"]
    # Something unrelated happens first, so that what the agent saw is older than the
    # compaction point (a watch from exactly that point would still be served).
    plab.api.create("namespaces", objects.namespace("elsewhere"))
    plab.api.compact()
    plab.api._faults.clear()
    plab.api.drop_watches()
    def relists():
        res = plab.node.berthctl_json("status")["source"]["resources"]
        return res["Service"]["relists"] > 0 and res["Service"]["synced"]
    wait_for(relists, timeout=45, interval=0.5, what="a relist")
    time.sleep(1)
    assert plab.node.ns.run("nft", "list", "table", "ip", "berth").stdout == before
    p = plab.node.berthctl_json("services")["proxy"]
    assert p["generation"] == gen or p["lastApply"]["messages"] == 0, p


def test_nft_decompiles(plab):
    # nft itself must be able to read back every rule berth wrote.
    text = plab.node.ns.run("nft", "list", "table", "ip", "berth").stdout
    assert "numgen random mod" in text and "dnat" in text
    # The SCTP port of web: dispatched by address . protocol . port like TCP and UDP.
    assert f"{WEB} . sctp . 9 : goto service-" in text, text
    assert "meta l4proto sctp dnat ip to numgen random" in text, text
    doc = json.loads(plab.node.ns.run("nft", "-j", "list", "ruleset").stdout)
    assert any("rule" in item for item in doc["nftables"])
