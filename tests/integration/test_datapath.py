# SPDX-License-Identifier: Apache-2.0
"""cni/datapath.c against the kernel, below the plugin: every object, the
rollback of a failed ADD, what DEL may and may not remove, and CHECK's words.

A tiny driver around dp_add/dp_del/dp_check is compiled from the sources
(with ASan/UBSan when the build under test is a sanitizer build) and run
inside a node namespace, as berth-cni would be.
"""
import os
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from lab import veth_pair

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.environ.get("BERTH_BIN_DIR", os.path.join(ROOT, "build"))
PROTO = "190"  # DP_RTPROT: berth's routes and rules

DRIVER = textwrap.dedent(r"""
    #include "datapath.h"
    #include <arpa/inet.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>

    /* driver add|del|check NETNS|- IFNAME HOSTVETH IP|0 MTU TABLE: ret, err, links */
    int main(int argc, char **argv)
    {
        struct dp_pod pod = { 0 };
        struct dp_links l = { 0 };
        char err[512] = "";
        int ret;

        if (argc != 8)
            return 2;
        pod.netns_path = strcmp(argv[2], "-") ? argv[2] : NULL;
        snprintf(pod.ifname, sizeof(pod.ifname), "%s", argv[3]);
        snprintf(pod.host_veth, sizeof(pod.host_veth), "%s", argv[4]);
        if (strcmp(argv[5], "0") && inet_pton(AF_INET, argv[5], &pod.ip) != 1)
            return 2;
        pod.mtu = (unsigned)atoi(argv[6]);
        pod.table = (uint32_t)atoi(argv[7]);
        if (!strcmp(argv[1], "add"))
            ret = dp_add(&pod, &l, err, sizeof(err));
        else if (!strcmp(argv[1], "del"))
            ret = dp_del(&pod, err, sizeof(err));
        else
            ret = dp_check(&pod, err, sizeof(err));
        printf("%d\n%s\n%d %02x:%02x:%02x:%02x:%02x:%02x %d\n", ret, err, l.host_ifindex,
               l.host_mac[0], l.host_mac[1], l.host_mac[2], l.host_mac[3], l.host_mac[4],
               l.host_mac[5], l.pod_ifindex);
        return 0;
    }
""")


NL_DRIVER = textwrap.dedent(r"""
    #include "nl.h"
    #include <arpa/inet.h>
    #include <linux/rtnetlink.h>
    #include <stdio.h>

    static int first_only(const struct nl_link *link, void *data)
    {
        *(int *)data += 1;
        return 1;
    }

    /* A refused request, a dump stopped at its first link, then a lookup. */
    int main(void)
    {
        const struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_dst_len = 24,
                                   .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_STATIC,
                                   .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
        struct rtsock *nl = rtsock_open();
        struct nl_msg *msg = nl_req_new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof(rtm));
        struct in_addr dst, gw;
        struct nl_link lo;
        char err[256];
        int ret, seen = 0;

        if (!nl || !msg)
            return 2;
        inet_pton(AF_INET, "198.18.77.0", &dst);
        inet_pton(AF_INET, "198.18.78.1", &gw); /* no link reaches it */
        nla_put(msg, RTA_DST, 4, &dst);
        nla_put(msg, RTA_GATEWAY, 4, &gw);
        ret = nl_request(nl, msg, err, sizeof(err));
        printf("%d\n%s\n", ret, err);
        ret = nl_link_dump(nl, first_only, &seen, err, sizeof(err));
        printf("%d %d\n", ret, seen);
        ret = nl_link_get(nl, "lo", &lo, err, sizeof(err));
        printf("%d %d\n", ret, lo.ifindex);
        rtsock_close(nl);
        return 0;
    }
""")


def build(tmp_path_factory, name, source, sources):
    """Compile a driver with the given berth sources (sanitized like the build under test)."""
    d = tmp_path_factory.mktemp(name)
    (d / "driver.c").write_text(source)
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] \
        if "san" in os.path.basename(os.path.normpath(BIN_DIR)) else []
    nl = subprocess.run(["pkg-config", "--cflags", "--libs", "libnl-3.0"], check=True,
                        capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-std=gnu11", "-g", "-O1", "-D_GNU_SOURCE", *san,
                    "-I", os.path.join(ROOT, "include"), "-o", str(d / "driver"),
                    str(d / "driver.c"), *[os.path.join(ROOT, s) for s in sources], *nl],
                   check=True)
    return str(d / "driver")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build(tmp_path_factory, "dp", DRIVER, ["cni/datapath.c", "lib/nl.c"])


@pytest.fixture(scope="module")
def nl_driver(tmp_path_factory):
    return build(tmp_path_factory, "nl", NL_DRIVER, ["lib/nl.c"])


class Dp:
    """dp_* calls made from inside the node namespace."""

    def __init__(self, driver, node):
        self.driver, self.node = driver, node

    def call(self, op, netns, ifname, veth, ip, mtu=0, table=0):
        path = netns.path if hasattr(netns, "path") else netns
        out = self.node.run(self.driver, op, path or "-", ifname, veth, ip or "0", str(mtu),
                            str(table)).stdout.split("\n")
        ret, err, links = int(out[0]), out[1], out[2].split()
        return ret, err, {"host_ifindex": int(links[0]), "host_mac": links[1],
                          "pod_ifindex": int(links[2])}

    def ok(self, op, *args, **kw):
        ret, err, links = self.call(op, *args, **kw)
        assert ret == 0, f"{op}: {ret} {err}"
        return links


@pytest.fixture
def node(lab):
    n = lab.netns("n")
    n.sysctl("net.ipv4.ip_forward", 1)
    n.run("ip", "addr", "add", "198.18.0.10/32", "dev", "lo")
    return n


@pytest.fixture
def dp(driver, node):
    return Dp(driver, node)


def links(ns):
    return {l["ifname"]: l for l in ns.json("ip", "-j", "-d", "link", "show")}


def berth_state(node):
    """Every berth route and rule on the node, and its veths."""
    routes = node.json("ip", "-j", "route", "show", "table", "all", "proto", PROTO)
    rules = [r for r in node.json("ip", "-j", "rule", "show") if r.get("protocol") == PROTO]
    veths = sorted(n for n, l in links(node).items()
                   if l.get("linkinfo", {}).get("info_kind") == "veth")
    return routes, rules, veths


def test_add_wires_every_object_and_pods_talk(lab, node, dp):
    p1, p2 = lab.netns("p"), lab.netns("p")
    l1 = dp.ok("add", p1, "eth0", "brtdp1", "198.18.1.5", mtu=1400, table=100)
    dp.ok("add", p2, "eth0", "brtdp2", "198.18.1.6")

    hl = links(node)
    assert hl["brtdp1"]["linkinfo"]["info_kind"] == "veth"
    assert hl["brtdp1"]["mtu"] == 1400 and "UP" in hl["brtdp1"]["flags"]
    assert hl["brtdp1"]["ifindex"] == l1["host_ifindex"]
    assert hl["brtdp1"]["address"] == l1["host_mac"]
    for key in ("accept_ra", "accept_redirects"):
        assert node.run("cat", f"/proc/sys/net/ipv6/conf/brtdp1/{key}").stdout.strip() == "0"
    routes = node.json("ip", "-j", "route", "show", "198.18.1.5/32")
    assert routes == [{"dst": "198.18.1.5", "dev": "brtdp1", "protocol": PROTO,
                       "scope": "link", "flags": []}]
    rules = {r["priority"]: r for r in node.json("ip", "-j", "rule", "show")}
    assert rules[512]["dst"] == "198.18.1.5" and rules[512]["table"] == "main"
    assert rules[1536]["src"] == "198.18.1.5" and rules[1536]["table"] == "100"
    assert not any(r.get("src") == "198.18.1.6" for r in rules.values())

    pl = links(p1)
    assert pl["eth0"]["mtu"] == 1400 and pl["eth0"]["ifindex"] == l1["pod_ifindex"]
    assert "UP" in pl["lo"]["flags"] and "UP" in pl["eth0"]["flags"]
    addrs = p1.json("ip", "-j", "-4", "addr", "show", "dev", "eth0")[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs] == [("198.18.1.5", 32)]
    proutes = {r["dst"]: r for r in p1.json("ip", "-j", "route", "show")}
    assert proutes["169.254.1.1"]["scope"] == "link" and proutes["169.254.1.1"]["dev"] == "eth0"
    assert proutes["default"]["gateway"] == "169.254.1.1"
    gw = p1.json("ip", "-j", "neigh", "show", "dev", "eth0")[0]
    assert gw["dst"] == "169.254.1.1" and gw["lladdr"] == l1["host_mac"]
    assert "PERMANENT" in gw["state"]

    p1.run("ping", "-c1", "-W2", "198.18.1.6")
    p1.run("ping", "-c1", "-W2", "198.18.0.10")
    node.run("ping", "-c1", "-W2", "198.18.1.5")
    dp.ok("check", p1, "eth0", "brtdp1", "198.18.1.5", mtu=1400, table=100)
    dp.ok("check", p2, "eth0", "brtdp2", "198.18.1.6")


def test_del_is_idempotent_and_leaves_the_veth(lab, node, dp):
    p = lab.netns("p")
    dp.ok("add", p, "eth0", "brtdp1", "198.18.1.5", table=100)
    for _ in range(2):
        dp.ok("del", p, "eth0", "brtdp1", "198.18.1.5", table=100)
        routes, rules, veths = berth_state(node)
        assert routes == [] and rules == [] and veths == ["brtdp1"]
        assert not [a for i in p.json("ip", "-j", "-4", "addr", "show", "dev", "eth0")
                    for a in i["addr_info"]]
        assert "eth0" in links(p)
    p.delete()
    dp.ok("del", p, "eth0", "brtdp1", "198.18.1.5", table=100)  # netns gone
    dp.ok("del", None, "eth0", "brtdp1", "198.18.1.5")           # no netns given
    dp.ok("del", None, "eth0", "brtdp1", None)                   # address unknown


def test_del_without_table_still_removes_rules(lab, node, dp):
    p = lab.netns("p")
    dp.ok("add", p, "eth0", "brtdp1", "198.18.1.5", table=100)
    dp.ok("del", p, "eth0", "brtdp1", "198.18.1.5", table=0)
    assert berth_state(node)[:2] == ([], [])


def test_del_removes_only_berth_objects(lab, node, dp):
    p = lab.netns("p")
    dp.ok("add", p, "eth0", "brtdp1", "198.18.1.5", table=100)
    # Someone else's rule and route for the same address.
    node.run("ip", "rule", "add", "from", "198.18.1.5", "lookup", "100", "priority", "1536")
    node.run("ip", "route", "add", "198.18.1.5/32", "dev", "lo", "table", "7")
    dp.ok("del", p, "eth0", "brtdp1", "198.18.1.5", table=100)
    assert berth_state(node)[:2] == ([], [])
    assert any(r["priority"] == 1536 for r in node.json("ip", "-j", "rule", "show"))
    assert node.json("ip", "-j", "route", "show", "table", "7")


def test_del_leaves_the_route_of_an_address_now_elsewhere(lab, node, dp):
    """The old host veth is gone: a berth route for the address is another attachment's."""
    p = lab.netns("p")
    dp.ok("add", p, "eth0", "brtnew", "198.18.1.5")
    dp.ok("del", None, "eth0", "brtold", "198.18.1.5")
    dp.ok("check", p, "eth0", "brtnew", "198.18.1.5")
    # With the host veth name unknown, any berth link route to the address is ours.
    dp.ok("del", None, "eth0", "", "198.18.1.5")
    assert berth_state(node)[0] == []


@pytest.mark.parametrize("conflict", ["host-route", "pod-default-route", "rule-ok"])
def test_failed_add_leaves_nothing(lab, node, dp, conflict):
    p = lab.netns("p")
    if conflict == "host-route":
        node.run("ip", "route", "add", "198.18.1.5/32", "dev", "lo")
    elif conflict == "pod-default-route":
        p.run("ip", "route", "add", "default", "dev", "lo")
    else:
        # A rule berth left for this address earlier is adopted, not a conflict.
        node.run("ip", "rule", "add", "from", "198.18.1.5", "lookup", "100", "priority",
                 "1536", "protocol", PROTO)
    ret, err, _ = dp.call("add", p, "eth0", "brtdp1", "198.18.1.5", table=100)
    if conflict == "rule-ok":
        assert ret == 0, err
        return
    assert ret == -17, err
    assert {"host-route": "add host route 198.18.1.5/32 dev brtdp1",
            "pod-default-route": "add default route via 169.254.1.1 dev eth0"}[conflict] in err
    routes, rules, veths = berth_state(node)
    assert (routes, rules, veths) == ([], [], [])
    assert "eth0" not in links(p)


def test_netlink_exchanges_keep_the_kernel_words_and_stay_in_step(lab, nl_driver):
    """lib/nl.c: a refusal carries the kernel's extended-ACK text, and a dump
    the caller stops at its first link is still read to its end, so the next
    request on the socket gets its own answer."""
    n = lab.netns("n")
    for i in range(20):  # a dump of several parts
        n.run("ip", "link", "add", f"va{i}", "type", "veth", "peer", "name", f"vb{i}")
    out = n.run(nl_driver).stdout.split("\n")
    assert out[0] == "-101" and out[1] == "Nexthop has invalid gateway", out
    assert out[2] == "0 1", out
    assert out[3] == "0 1", out


def test_existing_pod_interface_is_eexist_and_untouched(lab, node, dp):
    p = lab.netns("p")
    dp.ok("add", p, "eth0", "brtdp1", "198.18.1.5", table=100)
    before = berth_state(node)
    ret, err, _ = dp.call("add", p, "eth0", "brtdp1", "198.18.1.5", table=100)
    assert ret == -17 and "interface eth0 already exists in pod netns" in err
    assert berth_state(node) == before
    dp.ok("check", p, "eth0", "brtdp1", "198.18.1.5", table=100)


def test_stale_host_veth_is_replaced_but_not_a_foreign_link(lab, node, dp):
    old, new = lab.netns("p"), lab.netns("p")
    veth_pair(old, "eth0", node, "brtdp1")
    dp.ok("add", new, "eth0", "brtdp1", "198.18.1.5")
    assert "eth0" not in links(old)
    dp.ok("check", new, "eth0", "brtdp1", "198.18.1.5")

    node.run("ip", "link", "add", "brtdp2", "type", "bridge")
    ret, err, _ = dp.call("add", lab.netns("p"), "eth0", "brtdp2", "198.18.1.6")
    assert ret == -17 and "brtdp2 exists and is not a veth" in err
    assert links(node)["brtdp2"]["linkinfo"]["info_kind"] == "bridge"


def test_check_names_what_is_wrong(lab, node, dp):
    p = lab.netns("p")
    l = dp.ok("add", p, "eth0", "brtdp1", "198.18.1.5", mtu=1400, table=100)
    args = (p, "eth0", "brtdp1", "198.18.1.5")

    def expect(text, code=-2):
        ret, err, _ = dp.call("check", *args, mtu=1400, table=100)
        assert (ret, err) == (code, text)

    node.run("ip", "route", "del", "198.18.1.5/32")
    expect("host route 198.18.1.5/32 dev brtdp1 missing")
    node.run("ip", "route", "add", "198.18.1.5/32", "dev", "brtdp1", "scope", "link")
    node.run("ip", "rule", "del", "priority", "1536")
    expect("rule from 198.18.1.5/32 lookup 100 priority 1536 missing")
    node.run("ip", "rule", "add", "from", "198.18.1.5", "lookup", "100", "priority", "1536")
    node.run("ip", "rule", "del", "priority", "512")
    expect("rule to 198.18.1.5/32 lookup main priority 512 missing")
    node.run("ip", "rule", "add", "to", "198.18.1.5", "lookup", "main", "priority", "512")
    dp.ok("check", *args, mtu=1400, table=100)

    p.run("ip", "neigh", "replace", "169.254.1.1", "dev", "eth0", "lladdr",
          "02:00:00:00:00:01", "nud", "permanent")
    expect("pod neighbour 169.254.1.1 dev eth0 has lladdr 02:00:00:00:00:01, "
           f"want the host veth's {l['host_mac']}", -22)
    p.run("ip", "neigh", "del", "169.254.1.1", "dev", "eth0")
    expect("pod neighbour 169.254.1.1 dev eth0 missing")
    p.run("ip", "route", "del", "default")
    expect("pod default route via 169.254.1.1 dev eth0 missing")
    p.run("ip", "route", "del", "169.254.1.1/32")
    expect("pod route 169.254.1.1/32 dev eth0 missing")
    p.run("ip", "addr", "flush", "dev", "eth0")
    expect("address 198.18.1.5/32 on eth0 missing")
    p.run("ip", "link", "set", "eth0", "mtu", "1300")
    expect("pod interface eth0 has mtu 1300, want 1400", -22)
    node.run("ip", "link", "set", "brtdp1", "down")
    expect("host interface brtdp1 is down", -22)
    node.run("ip", "link", "del", "brtdp1")
    expect("host interface brtdp1 missing")


def test_parallel_adds(lab, node, dp):
    pods = [lab.netns("p") for _ in range(16)]

    def add(i):
        return dp.call("add", pods[i], "eth0", f"brtdp{i}", f"198.18.2.{i + 10}", table=200)

    with ThreadPoolExecutor(len(pods)) as ex:
        results = list(ex.map(add, range(len(pods))))
    assert [r[:2] for r in results] == [(0, "")] * len(pods)
    routes, rules, veths = berth_state(node)
    assert len(routes) == len(pods) and len(rules) == 2 * len(pods)
    pods[0].run("ping", "-c1", "-W2", "198.18.2.25")
