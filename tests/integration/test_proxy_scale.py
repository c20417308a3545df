# SPDX-License-Identifier: Apache-2.0
"""The proxy at cluster scale, through the whole agent: 10k services x 10
endpoints from the manifests source, then one endpoint changed. The second
sync must touch only that service: counted in netlink messages, as the agent
reports its last apply in `berthctl services -o json`.
"""
import json
import os

from lab import Node, wait_for

SERVICES, ENDPOINTS = 10000, 10


def objects(changed_ep=None):
    """Services 198.18.128.0/17 + i, endpoints in 198.19.0.0/16; one endpoint may differ."""
    items = []
    for i in range(SERVICES):
        name, ip = f"s{i}", f"198.18.{128 + i // 250}.{i % 250 + 1}"
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": name, "namespace": "scale"},
                      "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                               "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                          "protocol": "TCP"}]}})
        eps = [f"198.19.{(i * ENDPOINTS + j) // 250 % 256}.{(i * ENDPOINTS + j) % 250 + 1}"
               for j in range(ENDPOINTS)]
        if changed_ep is not None and i == changed_ep:
            eps[0] = "198.19.255.254"
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": f"{name}-1", "namespace": "scale",
                                   "labels": {"kubernetes.io/service-name": name}},
                      "addressType": "IPv4",
                      "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                      "endpoints": [{"addresses": [a], "nodeName": "elsewhere",
                                     "conditions": {"ready": True}} for a in eps]})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def write(mdir, doc):
    tmp = os.path.join(mdir, ".services.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, os.path.join(mdir, "services.json"))


def test_one_endpoint_change_touches_one_service(lab, fabric):
    node = Node(lab, fabric, "198.18.0.10", "198.18.1.0/28", fabric_addr="198.18.0.1")
    node.ns.run("ip", "route", "add", "default", "via", "198.18.0.1")
    mdir = os.path.join(lab.tmp, "manifests")
    os.makedirs(mdir)
    write(mdir, objects())
    node.start_agent("--manifests", mdir, "--proxy", "nftables",
                     "--service-cidr", "198.18.128.0/17")

    def proxy():
        r = node.berthctl("services", "-o", "json", check=False)
        return (json.loads(r.stdout).get("proxy") or {}) if r.returncode == 0 else {}

    wait_for(lambda: len(proxy().get("services", [])) == SERVICES, timeout=120, interval=1,
             what="10k services programmed")
    gen = proxy()["generation"]
    write(mdir, objects(changed_ep=4321))
    wait_for(lambda: proxy().get("generation", 0) > gen, timeout=30, interval=0.5,
             what="the change to be applied")
    p = proxy()
    last = p["lastApply"]
    assert last["services"] == 1, last
    # One service's worth of rules and elements: tens of messages, not thousands.
    assert 0 < last["messages"] <= 40, last
    chains = node.ns.run("nft", "list", "table", "ip", "berth").stdout
    assert "198.19.255.254" in chains
