# SPDX-License-Identifier: Apache-2.0
"""Addresses owned by a secondary interface: replies leave through that interface."""
from lab import Node, Pod, veth_pair


def test_secondary_interface_addresses_use_its_table(lab, fabric):
    fabric2, outside = lab.netns("g"), lab.netns("o")
    node = Node(lab, fabric, "198.18.0.10", "198.19.0.32/28@eth1", fabric_addr="198.18.0.1")
    node.ns.run("ip", "route", "add", "default", "via", "198.18.0.1")
    # eth1: the node's second interface, in its own subnet whose router is .1.
    veth_pair(node.ns, "eth1", fabric2, "n1")
    node.ns.run("ip", "addr", "add", "198.19.0.10/24", "dev", "eth1")
    fabric2.run("ip", "addr", "add", "198.19.0.1/24", "dev", "n1")
    fabric2.run("ip", "route", "add", "198.19.0.32/28", "via", "198.19.0.10")
    fabric2.sysctl("net.ipv4.ip_forward", 1)
    # An outside host reachable only through eth1's subnet router.
    veth_pair(fabric2, "o1", outside, "eth0")
    fabric2.run("ip", "addr", "add", "203.0.113.1/24", "dev", "o1")
    outside.run("ip", "addr", "add", "203.0.113.5/24", "dev", "eth0")
    outside.run("ip", "route", "add", "default", "via", "203.0.113.1")
    node.start_agent()

    pod = Pod(node, "multi")
    pod.add()
    ip = pod.ip
    assert ip.startswith("198.19.0.")
    table = 100 + int(node.ns.json("ip", "-j", "link", "show", "eth1")[0]["ifindex"])
    rules = node.ns.json("ip", "-j", "rule", "show")
    assert {"priority": 512, "dst": ip, "table": "main"}.items() <= \
        next(r for r in rules if r.get("dst") == ip).items()
    assert {"priority": 1536, "src": ip, "table": str(table)}.items() <= \
        next(r for r in rules if r.get("src") == ip).items()
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
