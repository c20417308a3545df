# SPDX-License-Identifier: Apache-2.0
"""berth-cni driven exactly as a runtime drives it, every kernel object checked."""
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from lab import Pod


def host_veth(k8s_ns, pod, prefix="brt"):
    return prefix + hashlib.sha1(f"{k8s_ns}.{pod}".encode()).hexdigest()[:11]


def links(ns):
    return {l["ifname"]: l for l in ns.json("ip", "-j", "-d", "link", "show")}


def assert_wired(node, pod, mtu=None):
    """Every object DESIGN.md's datapath names, on both sides."""
    veth = host_veth(pod.k8s_ns, pod.name)
    ip = pod.ip
    hl = links(node.ns)
    assert veth in hl, f"host veth {veth} missing"
    assert hl[veth]["linkinfo"]["info_kind"] == "veth"
    assert "UP" in hl[veth]["flags"]
    routes = node.ns.json("ip", "-j", "route", "show", "table", "main")
    r = [r for r in routes if r["dst"] == ip]
    assert r and r[0]["dev"] == veth and r[0].get("scope") == "link", routes
    assert node.ns.run("cat", f"/proc/sys/net/ipv6/conf/{veth}/accept_ra").stdout.strip() == "0"

    pl = links(pod.ns)
    assert pod.ifname in pl
    assert "UP" in pl[pod.ifname]["flags"]
    if mtu:
        assert pl[pod.ifname]["mtu"] == mtu and hl[veth]["mtu"] == mtu
    addrs = pod.ns.json("ip", "-j", "-4", "addr", "show", "dev", pod.ifname)
    assert [(a["local"], a["prefixlen"]) for a in addrs[0]["addr_info"]] == [(ip, 32)]
    proutes = pod.ns.json("ip", "-j", "route", "show")
    assert {"dst": "169.254.1.1", "dev": pod.ifname, "scope": "link"}.items() <= \
        next(r for r in proutes if r["dst"] == "169.254.1.1").items()
    d = next(r for r in proutes if r["dst"] == "default")
    assert d["gateway"] == "169.254.1.1" and d["dev"] == pod.ifname
    neigh = pod.ns.json("ip", "-j", "neigh", "show", "dev", pod.ifname)
    gw = next(n for n in neigh if n["dst"] == "169.254.1.1")
    assert gw["lladdr"] == hl[veth]["address"] and "PERMANENT" in gw["state"]
    return veth


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del_every_object(node, version):
    pod = Pod(node, "web-0")
    conf = node.plugin_conf(cniVersion=version, mtu=1400)
    res = pod.add(conf)
    assert res["cniVersion"] == version
    ip = pod.ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("198.18.1.0/28")
    veth = assert_wired(node, pod, mtu=1400)

    # The result: host interface without sandbox, pod interface with it, IP on the pod's.
    host_if, pod_if = res["interfaces"]
    assert host_if["name"] == veth and "sandbox" not in host_if
    assert pod_if == {**pod_if, "name": "eth0", "sandbox": pod.ns.path}
    assert pod_if["mac"] == links(pod.ns)["eth0"]["address"]
    assert res["ips"][0]["interface"] == 1 and res["ips"][0]["address"] == f"{ip}/32"
    assert ("version" in res["ips"][0]) == (version == "0.4.0")
    assert {"dst": "0.0.0.0/0", "gw": "169.254.1.1"} in res["routes"]

    code, out, _ = pod.cni("CHECK", conf)
    assert code == 0, out

    pods = node.berthctl_json("pods")["pods"]
    assert [(p["pod"], p["ip"], p["hostVeth"]) for p in pods] == [("web-0", ip, veth)]

    code, out, _ = pod.cni("DEL", conf)
    assert code == 0, out
    assert not [r for r in node.ns.json("ip", "-j", "route") if r["dst"] == ip]
    assert node.berthctl_json("pods")["pods"] == []
    # Repeated DEL: still success.
    assert pod.cni("DEL", conf)[0] == 0


def test_repeated_add_returns_same_address(node):
    pod = Pod(node, "again")
    first = pod.add()
    code, out, _ = node.cni("ADD", node.plugin_conf(), pod.container_id, pod.ns.path, "eth0",
                            pod.args)
    # Out of spec (no DEL between): the pod's interface exists, so ADD fails clearly...
    assert code == 1 and "already exists" in out["details"], out
    # ...and the pod keeps its address and its wiring.
    assert pod.cni("CHECK")[0] == 0
    st = node.berthctl_json("pods")["pods"]
    assert len(st) == 1 and st[0]["ip"] == first["ips"][0]["address"].split("/")[0]


def test_check_names_what_is_missing(node):
    pod = Pod(node, "checked")
    pod.add()
    node.ns.run("ip", "route", "del", f"{pod.ip}/32")
    code, out, _ = pod.cni("CHECK")
    assert code == 1 and out["code"] == 100
    assert pod.ip in out["msg"] and "route" in out["msg"], out

    pod2 = Pod(node, "checked2")
    pod2.add()
    pod2.ns.run("ip", "neigh", "del", "169.254.1.1", "dev", "eth0")
    code, out, _ = pod2.cni("CHECK")
    assert code == 1 and "neigh" in out["msg"].lower(), out


def test_check_fails_when_address_released(node):
    pod = Pod(node, "released")
    pod.add()
    conf = node.plugin_conf()
    code, out, _ = node.cni("GC", dict(conf, cniVersion="1.1.0", **{"cni.dev/valid-attachments": []}))
    assert code == 0, out
    code, out, _ = pod.cni("CHECK")
    assert code == 1 and out["code"] == 3, out


def test_pod_to_pod_on_one_node(node):
    a, b = Pod(node, "a"), Pod(node, "b")
    a.add()
    b.add()
    a.ns.run("ping", "-c", "2", "-W", "2", "-i", "0.2", b.ip)
    b.ns.run("ping", "-c", "2", "-W", "2", "-i", "0.2", a.ip)
    # And to the node's fabric peer: routed natively, no NAT.
    a.ns.run("ping", "-c", "1", "-W", "2", "198.18.0.1")


def test_failed_add_leaves_nothing(node):
    pod = Pod(node, "clash")
    # An interface already named eth0 that is not ours (a bridge) makes ADD fail.
    pod.ns.run("ip", "link", "add", "eth0", "type", "bridge")
    before_links = set(links(node.ns))
    code, out, _ = node.cni("ADD", node.plugin_conf(), pod.container_id, pod.ns.path, "eth0",
                            pod.args)
    assert code == 1 and out["code"] == 5 and "already exists" in out["details"], out
    assert set(links(node.ns)) == before_links
    assert node.berthctl_json("pods")["pods"] == []
    assert not [r for r in node.ns.json("ip", "-j", "route") if r["dst"].startswith("198.18.1.")]


def test_del_idempotent_cases(node):
    conf = node.plugin_conf()
    # Never added.
    pod = Pod(node, "ghost")
    assert pod.cni("DEL", conf, prev=False)[0] == 0
    # Netns gone.
    pod = Pod(node, "gone")
    pod.add()
    ip = pod.ip
    pod.ns.delete()
    code, out, _ = pod.cni("DEL")
    assert code == 0, out
    assert not [r for r in node.ns.json("ip", "-j", "route") if r["dst"] == ip]
    assert ip not in [p["ip"] for p in node.berthctl_json("pods")["pods"]]
    # Agent down: tear down from prevResult, succeed; the agent reclaims later.
    pod = Pod(node, "orphan")
    pod.add()
    ip = pod.ip
    node.stop_agent()
    code, out, _ = pod.cni("DEL")
    assert code == 0, out
    assert not [r for r in node.ns.json("ip", "-j", "route") if r["dst"] == ip]


def test_errors_have_spec_codes(node):
    conf = node.plugin_conf()
    pod = Pod(node, "err")
    run = lambda c, **kw: node.cni("ADD", c, pod.container_id, pod.ns.path, "eth0", pod.args, **kw)
    assert run(dict(conf, cniVersion="0.3.1"))[1]["code"] == 1
    assert run(dict(conf, type="bridge"))[1]["code"] == 7
    assert run(dict(conf, mtu="big"))[1]["code"] == 7
    assert run(dict(conf, vethPrefix="toolong"))[1]["code"] == 7
    code, out, _ = node.cni("ADD", conf, None, pod.ns.path, "eth0")
    assert code == 1 and out["code"] == 4 and "CNI_CONTAINERID" in out["msg"]
    code, out, _ = node.ns.run(  # undecodable config
        "true") and (None, None, None)
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x", "CNI_NETNS": pod.ns.path,
           "CNI_IFNAME": "eth0", "PATH": "/usr/bin:/bin"}
    r = node.ns.run(f"{node.lab.bin_dir}/berth-cni", input="{not json", env=env, check=False)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == 6
    # Agent unreachable during ADD: try again later.
    code, out, _ = run(dict(conf, agentSocket="/nonexistent/cni.sock"))
    assert code == 1 and out["code"] == 11, out
    assert not links(pod.ns).get("eth0")


def test_version_and_status(node):
    conf = node.plugin_conf(cniVersion="1.1.0")
    code, out, _ = node.cni("VERSION", conf)
    assert code == 0 and out["supportedVersions"] == ["0.4.0", "1.0.0", "1.1.0"]
    assert node.cni("STATUS", conf)[0] == 0
    node.stop_agent()
    code, out, _ = node.cni("STATUS", conf)
    assert code == 1 and out["code"] == 50, out


def test_plugin_needs_no_library_of_the_host(node, tmp_path):
    """The DaemonSet copies berth-cni into the host's /opt/cni/bin, next to the
    host's libraries, not the agent image's: in a root holding nothing but the
    plugin it must still run."""
    if "san" in os.path.basename(os.path.normpath(node.lab.bin_dir)):
        pytest.skip("the sanitizer build links the plugin dynamically")
    root = tmp_path / "bare-host"
    root.mkdir()
    shutil.copy(os.path.join(node.lab.bin_dir, "berth-cni"), root / "berth-cni")
    r = subprocess.run(["/usr/sbin/chroot", str(root), "/berth-cni"],
                       input=json.dumps(node.plugin_conf(cniVersion="1.1.0")),
                       env={"CNI_COMMAND": "VERSION"}, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["supportedVersions"] == ["0.4.0", "1.0.0", "1.1.0"]


def test_gc_releases_only_invalid_attachments(node):
    keep, drop = Pod(node, "keep"), Pod(node, "drop")
    keep.add()
    drop.add()
    conf = node.plugin_conf(cniVersion="1.1.0", **{"cni.dev/valid-attachments": [
        {"containerID": keep.container_id, "ifname": "eth0"}]})
    code, out, _ = node.cni("GC", conf)
    assert code == 0, out
    assert [p["pod"] for p in node.berthctl_json("pods")["pods"]] == ["keep"]
