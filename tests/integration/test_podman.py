# SPDX-License-Identifier: Apache-2.0
"""A real runtime: podman runs busybox containers on the CNI network berth-agent writes.

podman reads the agent's 10-berth.conflist (berth-cni chained with portmap,
cniVersion 1.0.0) from the node's conf dir, calls berth-cni ADD when a
container starts and DEL when it is removed, and the container is reachable
natively from the VPC fabric, through a host port, and from another container.

How podman is set up and cleaned up: tests/podman.py.
"""
import hashlib
import ipaddress
import json
import os
import subprocess
import sys

import pytest

from conftest import FABRIC_ADDR, NODE_ADDR, POOL
from lab import wait_for
from podman import PAGE, PODMAN, Podman

pytestmark = pytest.mark.skipif(PODMAN is None, reason="podman is not installed")

HOST_PORT = 8080

# An HTTP GET with a deadline, run inside a namespace (busybox wget -T segfaults here).
HTTP_GET = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end="")
"""


def host_veth(k8s_ns, pod, prefix="brt"):
    return prefix + hashlib.sha1(f"{k8s_ns}.{pod}".encode()).hexdigest()[:11]


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
