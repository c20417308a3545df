# SPDX-License-Identifier: Apache-2.0
"""Addresses owned by a secondary interface: replies leave through that interface.

With pod egress SNAT on (the default), only traffic that keeps the pod's address
(the VPC CIDRs, --snat-exclude) may leave through it: what is SNATed to the primary
address must leave through the primary interface, or a VPC drops it (source/dest
check). So the pod's "from" rule is then one rule per such destination, as the
Amazon VPC CNI's UpdateRuleListBySrc does.
"""
import os
import subprocess
import sys

from lab import Node, Pod, veth_pair

PROBE = os.path.join(os.path.dirname(__file__), "..", "netprobe.py")
NODE_ADDR = "198.18.0.10"


def secondary_node(lab, fabric):
    """A node with eth0 on the fabric (198.18.0.0/24, its default route) and eth1 on
    198.19.0.0/24, whose router (fabric2, 198.19.0.1) delivers the pool to it."""
    fabric2 = lab.netns("g")
    node = Node(lab, fabric, NODE_ADDR, "198.19.0.32/28@eth1", fabric_addr="198.18.0.1")
    node.ns.run("ip", "route", "add", "default", "via", "198.18.0.1")
    # eth1: the node's second interface, in its own subnet whose router is .1.
    veth_pair(node.ns, "eth1", fabric2, "n1")
    node.ns.run("ip", "addr", "add", "198.19.0.10/24", "dev", "eth1")
    fabric2.run("ip", "addr", "add", "198.19.0.1/24", "dev", "n1")
    fabric2.run("ip", "route", "add", "198.19.0.32/28", "via", "198.19.0.10")
    fabric2.sysctl("net.ipv4.ip_forward", 1)
    return node, fabric2


def outside_host(lab, router, name):
    """203.0.113.5, reachable only through router (203.0.113.1)."""
    outside = lab.netns("o")
    veth_pair(router, name, outside, "eth0")
    router.run("ip", "addr", "add", "203.0.113.1/24", "dev", name)
    router.sysctl("net.ipv4.ip_forward", 1)
    outside.run("ip", "addr", "add", "203.0.113.5/24", "dev", "eth0")
    outside.run("ip", "route", "add", "default", "via", "203.0.113.1")
    return outside


def eth1_table(node):
    return 100 + int(node.ns.json("ip", "-j", "link", "show", "eth1")[0]["ifindex"])


def from_rules(node, ip):
    return [r for r in node.ns.json("ip", "-j", "rule", "show")
            if r.get("src") == ip and r.get("priority") == 1536]


def serve(lab, ns, name, port):
    p = lab.track(ns.popen(sys.executable, PROBE, "serve", name, str(port),
                           stdout=subprocess.PIPE, text=True))
    assert p.stdout.readline().strip() == "ready"


def probe(ns, proto, host, port):
    r = ns.run(sys.executable, PROBE, "probe", proto, host, str(port), "--timeout", "2")
    return r.stdout.strip()


def test_secondary_interface_addresses_use_its_table(lab, fabric):
    """An external NAT (--snat off): everything from the pod leaves through eth1."""
    node, fabric2 = secondary_node(lab, fabric)
    # An outside host reachable only through eth1's subnet router.
    outside_host(lab, fabric2, "o1")
    node.start_agent("--snat", "off")

    pod = Pod(node, "multi")
    pod.add()
    ip = pod.ip
    assert ip.startswith("198.19.0.")
    table = eth1_table(node)
    rules = node.ns.json("ip", "-j", "rule", "show")
    assert {"priority": 512, "dst": ip, "table": "main"}.items() <= \
        next(r for r in rules if r.get("dst") == ip).items()
    # One rule, for every destination.
    [rule] = from_rules(node, ip)
    assert {"priority": 1536, "src": ip, "table": str(table)}.items() <= rule.items()
    assert "dst" not in rule
    routes = node.ns.json("ip", "-j", "route", "show", "table", str(table))
    assert {"dst": "default", "gateway": "198.19.0.1", "dev": "eth1"}.items() <= routes[0].items()
    # The main table's default goes out eth0, where 203.0.113.0/24 is unknown: only the
    # policy rule gets the reply out of eth1.
    pod.ns.run("ping", "-c", "1", "-W", "2", "203.0.113.5")
    assert pod.cni("CHECK")[0] == 0
    assert node.berthctl_json("pods")["pods"][0]["iface"] == "eth1"

    assert pod.cni("DEL")[0] == 0
    rules = node.ns.json("ip", "-j", "rule", "show")
    assert not [r for r in rules if ip in (r.get("src"), r.get("dst"))]


def test_snat_excluding_everything_keeps_one_rule(lab, fabric):
    """--snat-exclude 0.0.0.0/0: nothing is SNATed, so everything may leave through eth1."""
    node, fabric2 = secondary_node(lab, fabric)
    outside = outside_host(lab, fabric2, "o1")
    serve(lab, outside, "outside", 8080)
    node.start_agent("--snat-exclude", "0.0.0.0/0")
    pod = Pod(node, "multi")
    pod.add()
    [rule] = from_rules(node, pod.ip)
    assert rule["table"] == str(eth1_table(node)) and "dst" not in rule
    assert probe(pod.ns, "tcp", "203.0.113.5", 8080) == f"reply outside {pod.ip}"
    assert pod.cni("CHECK")[0] == 0
    assert pod.cni("DEL")[0] == 0
    assert not from_rules(node, pod.ip)


def test_snat_limits_the_secondary_table_to_the_vpc(lab, fabric):
    """SNAT on: the internet through eth0 as the primary address, the VPC through eth1
    from the pod's own address."""
    node, fabric2 = secondary_node(lab, fabric)
    # The internet is behind the primary interface's fabric only.
    outside = outside_host(lab, fabric, "o1")
    serve(lab, outside, "outside", 8080)
    serve(lab, fabric2, "vpc", 8080)
    node.start_agent("--snat-exclude", "192.0.2.0/24")

    pod = Pod(node, "multi")
    pod.add()
    ip = pod.ip
    assert ip.startswith("198.19.0.")
    table = str(eth1_table(node))
    rules = node.ns.json("ip", "-j", "rule", "show")
    assert {"priority": 512, "dst": ip, "table": "main"}.items() <= \
        next(r for r in rules if r.get("dst") == ip).items()
    # One rule per destination that is not SNATed: the pool, the node's subnets, the
    # exclusion; nothing unrestricted.
    got = {(r["dst"], r.get("dstlen", 32)) for r in from_rules(node, ip)
           if r.get("table") == table}
    assert got == {("198.19.0.32", 28), ("198.18.0.0", 24), ("198.19.0.0", 24),
                   ("192.0.2.0", 24)}
    assert len(from_rules(node, ip)) == 4

    # Outside the VPC: out of eth0, SNATed to the node's primary address.
    for proto in ("tcp", "udp"):
        assert probe(pod.ns, proto, "203.0.113.5", 8080) == f"reply outside {NODE_ADDR}"
    # Inside the VPC, on eth1's subnet: out of eth1 from the pod's own address.
    for proto in ("tcp", "udp"):
        assert probe(pod.ns, proto, "198.19.0.1", 8080) == f"reply vpc {ip}"
    assert pod.cni("CHECK")[0] == 0

    # CHECK names a rule that would route past the restriction...
    node.ns.run("ip", "rule", "add", "from", ip, "to", "10.0.0.0/8", "lookup", table,
                "priority", "1536", "protocol", "190")
    code, out, _ = pod.cni("CHECK")
    assert code != 0
    assert f"unexpected rule from {ip}/32 to 10.0.0.0/8 lookup {table} priority 1536" \
        in out["msg"]
    # ...and a missing restricted one.
    node.ns.run("ip", "rule", "del", "from", ip, "to", "198.18.0.0/24", "priority", "1536")
    code, out, _ = pod.cni("CHECK")
    assert code != 0
    assert f"from {ip}/32 to 198.18.0.0/24 lookup {table} priority 1536 missing" in out["msg"]

    assert pod.cni("DEL")[0] == 0
    assert not from_rules(node, ip)
    rules = node.ns.json("ip", "-j", "rule", "show")
    assert not [r for r in rules if ip in (r.get("src"), r.get("dst"))]


def test_add_replaces_leftover_rules_of_the_address(lab, fabric):
    """An unrestricted rule an earlier holder of the address left (a DEL that never
    ran, SNAT since turned on) would send SNATed traffic out of eth1: ADD removes it."""
    node, _ = secondary_node(lab, fabric)
    node.start_agent()
    table = str(eth1_table(node))
    pool = [f"198.19.0.{i}" for i in range(32, 48)]
    batch = "".join(f"rule add from {a} lookup {table} priority 1536 protocol 190\n"
                    f"rule add from {a} to 10.0.0.0/8 lookup {table} priority 1536 protocol 190\n"
                    for a in pool)
    node.ns.run("ip", "-batch", "-", input=batch)
    pod = Pod(node, "multi")
    pod.add()
    ip = pod.ip
    rules = from_rules(node, ip)
    assert rules and all("dst" in r for r in rules)
    assert ("10.0.0.0", 8) not in {(r["dst"], r.get("dstlen", 32)) for r in rules}
    assert pod.cni("CHECK")[0] == 0
    # Another address's leftovers are not this pod's to touch.
    other = next(a for a in pool if a != ip)
    assert len(from_rules(node, other)) == 2
    assert pod.cni("DEL")[0] == 0
    assert not from_rules(node, ip)
