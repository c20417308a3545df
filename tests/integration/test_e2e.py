# SPDX-License-Identifier: Apache-2.0
"""End to end on a simulated VPC (tests/vpclab.py): two nodes, each with its own
berth-agent (static pool, nftables proxy), pods wired by the real plugin, Services
from a shared manifests directory (and, in one test, from the test API server),
and an outside host behind a router that knows only the node subnet.

    outside 203.0.113.10 ── router 198.18.0.1 ── VPC bridge 198.18.0.0/16
                          ├─ node-a 198.18.0.11: be-a, client-a (pool 198.18.1.0/28)
                          └─ node-b 198.18.0.12: be-b, client-b (pool 198.18.2.0/28)

Most tests share one lab (module scope) and only read it; the ones that change it
(podman, agent restart, pool exhaustion) come after them and leave what the others
need intact. The API-server test builds a lab of its own.
"""
import ipaddress
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from conftest import BIN_DIR  # noqa: E402
from lab import Lab, Pod, wait_for  # noqa: E402
from vpclab import OUTSIDE_IP, VpcLab, answers  # noqa: E402

WEB_NODEPORT, LOCAL_NODEPORT = 30080, 30081
HTTP_GET = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=2).read()" \
    ".decode(), end='')"


class World:
    """The shared lab: pods, servers and services every test reads."""

    def __init__(self, vpc):
        self.vpc = vpc
        self.a, self.b = vpc.nodes
        self.be_a, self.be_b = vpc.pod(self.a, "be-a"), vpc.pod(self.b, "be-b")
        self.client_a, self.client_b = vpc.pod(self.a, "client-a"), vpc.pod(self.b, "client-b")
        for p in (self.be_a, self.be_b):
            vpc.serve(p)
        vpc.serve(vpc.outside, "outside")
        self.web = vpc.service("web", [self.be_a, self.be_b], type="NodePort",
                               node_port=WEB_NODEPORT, udp_port=53)
        self.local = vpc.service("local", [self.be_a, self.be_b], type="NodePort",
                                 node_port=LOCAL_NODEPORT, external_traffic_policy="Local")

    def probe(self, where, proto, host, port, count=1, timeout=1.0):
        return answers(self.vpc.probe(where, proto, host, port, count=count, timeout=timeout))


def close_checked(vpc):
    vpc.close()
    if vpc.lab.reports:
        pytest.fail("sanitizer report from a berth daemon:\n" + "\n".join(vpc.lab.reports))


@pytest.fixture(scope="module")
def world():
    Lab.sweep()
    lab = Lab(os.path.abspath(BIN_DIR))
    vpc = None
    try:
        vpc = VpcLab(lab, nodes=2)
        yield World(vpc)
    finally:
        if vpc:
            close_checked(vpc)
        else:
            lab.close()


def in_pool(pod):
    return ipaddress.ip_address(pod.ip) in ipaddress.ip_network(pod.node.pool)


def test_pods_get_vpc_addresses_routed_natively(world):
    w = world
    for p in (w.be_a, w.be_b, w.client_a, w.client_b):
        assert in_pool(p), (p.name, p.ip, p.node.pool)
    # node-a reaches node-b's pod straight out of its fabric interface: on-link in the
    # VPC (node-b answers ARP for it), no gateway, no tunnel device anywhere.
    route = w.a.ns.json("ip", "-j", "route", "get", w.be_b.ip)[0]
    assert route["dev"] == "eth0" and "gateway" not in route, route
    for n in w.vpc.nodes:
        kinds = {l.get("linkinfo", {}).get("info_kind")
                 for l in n.ns.json("ip", "-j", "-d", "link", "show")}
        assert not kinds & {"vxlan", "geneve", "ipip", "gre", "wireguard"}, kinds


@pytest.mark.parametrize("proto,port", [("tcp", 8080), ("udp", 5353)])
def test_cross_node_pod_to_pod(world, proto, port):
    w = world
    # Both directions, and the server sees the client pod's own address: no NAT.
    assert w.probe(w.client_a, proto, w.be_b.ip, port, count=3) == {("be-b", w.client_a.ip)}
    assert w.probe(w.client_b, proto, w.be_a.ip, port, count=3) == {("be-a", w.client_b.ip)}


@pytest.mark.parametrize("proto,port", [("tcp", 80), ("udp", 53)])
def test_cluster_ip_reaches_backends_on_both_nodes(world, proto, port):
    w = world
    # 16 tries over 2 endpoints: missing one has p = 2^-15.
    for client in (w.client_a, w.client_b):
        got = w.probe(client, proto, w.web, port, count=16)
        assert got == {("be-a", client.ip), ("be-b", client.ip)}, (client.name, got)


def test_node_port_from_outside_reaches_backends_on_both_nodes(world):
    w = world
    for node in (w.a, w.b):
        got = w.probe(w.vpc.outside, "tcp", node.addr, WEB_NODEPORT, count=16)
        # externalTrafficPolicy Cluster: masqueraded to the node that took the request.
        assert got == {("be-a", node.addr), ("be-b", node.addr)}, (node.k8s_name, got)


def test_external_traffic_policy_local_from_outside(world):
    w = world
    # Only the entry node's own backend answers, and it sees the real client address.
    for node, local in ((w.a, "be-a"), (w.b, "be-b")):
        got = w.probe(w.vpc.outside, "tcp", node.addr, LOCAL_NODEPORT, count=8)
        assert got == {(local, OUTSIDE_IP)}, (node.k8s_name, got)


def test_egress_snat_outside_only(world):
    w = world
    # Leaving the VPC: the node's address. Pod addresses are unroutable outside.
    assert w.probe(w.client_a, "tcp", OUTSIDE_IP, 8080) == {("outside", w.a.addr)}
    assert w.probe(w.client_b, "udp", OUTSIDE_IP, 5353) == {("outside", w.b.addr)}
    # Inside the VPC, to a pod on the other node: the pod's own address.
    assert w.probe(w.client_a, "tcp", w.be_b.ip, 8080) == {("be-b", w.client_a.ip)}
    # The outside cannot reach a pod address: only NodePorts (and SNAT replies) get in.
    assert w.vpc.probe(w.vpc.outside, "tcp", w.be_a.ip, 8080, timeout=0.5) in \
        (["error 101"], ["timeout"])  # the router: network unreachable


def test_podman_container_across_nodes(world):
    """A real runtime on node-a: podman runs a container on berth's CNI network."""
    w = world
    pm = w.vpc.podman(w.a)
    if pm is None:
        pytest.skip("podman (or busybox-static) is not installed")
    try:
        os.makedirs(os.path.join(pm.rootfs, "www"), exist_ok=True)
        with open(os.path.join(pm.rootfs, "www", "index.html"), "w") as f:
            f.write("hello from podman\n")
        # On start the container calls be-b on node-b (the answer lands in the rootfs we
        # share with it: no "podman exec", which sometimes stalls for ~25 s here), then serves.
        pm.run("-d", "--name", "web", cmd=[
            "/bin/sh", "-c", f"echo hi | nc -w 3 {w.be_b.ip} 8080 >/www/be-b.txt; "
            "exec httpd -f -p 80 -h /www"])
        ip = pm.ip("web")
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(w.a.pool), ip
        # A pod on node-b fetches from the container by its VPC address...
        get = [sys.executable, "-c", HTTP_GET, f"http://{ip}/"]
        assert wait_for(lambda: w.client_b.ns.run(*get, check=False).stdout,
                        timeout=10, what="the container's httpd") == "hello from podman\n"
        # ...and the container reaches be-b on node-b with its own address (no NAT).
        with open(os.path.join(pm.rootfs, "www", "be-b.txt")) as f:
            assert f.read().split() == ["be-b", ip]
    finally:
        w.vpc.close_podman(pm)


def test_agent_restart_under_traffic(world):
    w, vpc, a = world, world.vpc, world.a
    # A pod that comes and goes before the crash: its address must not come back.
    gone = vpc.pod(a, "gone")
    gone_ip = gone.ip
    vpc.delete_pod(gone)
    before = a.berthctl_json("pods")["pods"]
    # Long-lived connections through the ClusterIP from both nodes, backends on both.
    streams = [vpc.stream(c, w.web, 80, 4) for c in (w.client_a, w.client_b) for _ in range(2)]
    # node-a's two through its ClusterIP rules, established before the crash.
    wait_for(lambda: len(a.ns.run("conntrack", "-L", "-p", "tcp", "-d", w.web, "--state",
                                  "ESTABLISHED", check=False).stdout.splitlines()) >= 2,
             timeout=3, what="the streams to connect")
    a.restart_agent(signal.SIGKILL)
    wait_for(lambda: "default/web" in a.programmed(), timeout=10, what="the restarted proxy")
    outs = [s.communicate(timeout=30)[0].strip() for s in streams]
    assert all(o.startswith("ok ") for o in outs), outs
    # The restart adopted the kernel's table as it was: its first sync changed nothing.
    assert a.berthctl_json("services")["proxy"]["lastApply"]["messages"] == 0
    # Pods keep their addresses, the released one is still cooling down (the checkpoint
    # kept it), and a new pod gets an address nobody had.
    assert a.berthctl_json("status")["pool"]["cooling"] >= 1
    after = a.berthctl_json("pods")["pods"]
    key = lambda p: (p["containerID"], p["ip"])  # noqa: E731
    assert sorted(map(key, after)) == sorted(map(key, before))
    fresh = vpc.pod(a, "fresh")
    assert fresh.ip not in {p["ip"] for p in before} | {gone_ip}, fresh.ip
    assert in_pool(fresh)
    # ...and the restarted node still serves: the new pod through the ClusterIP.
    assert {g[0] for g in w.probe(fresh, "tcp", w.web, 80, count=12)} == {"be-a", "be-b"}
    vpc.delete_pod(fresh)


def test_deleted_pod_address_not_reused_in_cooldown(world):
    vpc, b = world.vpc, world.b
    victim = vpc.pod(b, "victim")
    released = victim.ip
    vpc.delete_pod(victim)
    assert b.berthctl_json("status")["pool"]["cooling"] >= 1
    # Fill the pool: every free address is handed out, never the cooling one, and
    # then ADD says "try again later" instead of reusing it.
    made, code, out = [], 0, None
    for i in range(20):
        p = Pod(b, f"filler-{i}")
        code, out, _ = p.cni("ADD", prev=False)
        if code != 0:
            break
        p.result = out
        made.append(p)
    assert code != 0 and out["code"] == 11, out
    ips = [p.ip for p in made]
    assert released not in ips and len(set(ips)) == len(ips), (released, ips)
    assert len(made) >= 10  # a /28 minus the pods already there and the cooling one
    for p in made:
        vpc.pods.append(p)
        vpc.delete_pod(p)


def test_services_from_the_api_server():
    # The same lab with the test API server as the source: services reach both nodes.
    with VpcLab.open(BIN_DIR, nodes=2, source="api") as vpc:
        a, b = vpc.nodes
        be_a, be_b, client = vpc.pod(a, "be-a"), vpc.pod(b, "be-b"), vpc.pod(b, "client")
        vpc.serve(be_a), vpc.serve(be_b)
        ip = vpc.service("web", [be_a, be_b], type="NodePort", node_port=WEB_NODEPORT)
        assert answers(vpc.probe(client, "tcp", ip, 80, count=16)) == \
            {("be-a", client.ip), ("be-b", client.ip)}
        got = answers(vpc.probe(vpc.outside, "tcp", a.addr, WEB_NODEPORT, count=16))
        assert got == {("be-a", a.addr), ("be-b", a.addr)}, got
        # An endpoint change is a watch event: both nodes follow it.
        vpc.set_endpoints("web", [be_b])
        assert answers(vpc.probe(client, "tcp", ip, 80, count=6)) == {("be-b", client.ip)}
    if vpc.lab.reports:
        pytest.fail("sanitizer report from a berth daemon:\n" + "\n".join(vpc.lab.reports))
