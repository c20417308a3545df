# SPDX-License-Identifier: Apache-2.0
"""berth-cni first in a conflist, followed by Debian's plugins, run as libcni runs them."""
import json
import os
import subprocess

import pytest

from lab import Pod, wait_for

PLUGINS = "/usr/lib/cni"


def serve_once(pod, port, reply):
    """A one-shot TCP server in the pod that names itself."""
    return pod.node.lab.track(pod.ns.popen(
        "/usr/bin/python3", "-c",
        "import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        f"s.bind(('0.0.0.0',{port}));s.listen(4);print('up',flush=True);c,a=s.accept();"
        f"c.sendall(b'{reply} '+a[0].encode());c.close()",
        stdout=subprocess.PIPE, text=True))


def fetch(ns, host, port):
    code = ("import socket,sys;s=socket.create_connection((sys.argv[1],int(sys.argv[2])),3);"
            "print(s.recv(256).decode())")
    return ns.run("/usr/bin/python3", "-c", code, host, str(port)).stdout.strip()


def test_portmap_hostport_reaches_pod(node, fabric):
    assert os.path.exists(f"{PLUGINS}/portmap")
    pod = Pod(node, "hostport")
    mappings = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    result = node.chain("ADD", pod.container_id, pod.ns.path, pod.args,
                        runtime_config={"portMappings": mappings})
    # portmap passes berth's result through: same address, both interfaces.
    assert len(result["interfaces"]) == 2 and result["ips"][0]["interface"] == 1
    pod.result = result
    srv = serve_once(pod, 80, "pod")
    assert srv.stdout.readline().strip() == "up"
    # From the fabric to the node's address: DNAT by portmap into the berth-wired pod.
    got = fetch(fabric, "198.18.0.10", 8080)
    assert got.startswith("pod "), got
    node.chain("DEL", pod.container_id, pod.ns.path, pod.args, prev=result,
               runtime_config={"portMappings": mappings})
    assert "8080" not in node.ns.run("iptables-save", "-t", "nat").stdout


def test_bandwidth_and_tuning_follow_berth(node):
    cl = node.conflist()
    cl["plugins"] = [cl["plugins"][0],
                     {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}},
                     {"type": "bandwidth", "ingressRate": 8000000, "ingressBurst": 1000000,
                      "egressRate": 8000000, "egressBurst": 1000000}]
    with open(os.path.join(node.conf_dir, "10-berth.conflist"), "w") as f:
        json.dump(cl, f)
    pod = Pod(node, "shaped")
    result = node.chain("ADD", pod.container_id, pod.ns.path, pod.args)
    pod.result = result
    assert pod.ns.run("sysctl", "-n", "net.ipv4.conf.eth0.rp_filter").stdout.strip() == "2"
    # bandwidth shapes the host veth berth named in the result.
    host_veth = result["interfaces"][0]["name"]
    assert "tbf" in node.ns.run("tc", "qdisc", "show", "dev", host_veth).stdout
    pod.ns.run("ping", "-c", "1", "-W", "2", "198.18.0.1")
    node.chain("DEL", pod.container_id, pod.ns.path, pod.args, prev=result)
    assert node.berthctl_json("pods")["pods"] == []
