# SPDX-License-Identifier: Apache-2.0
"""The standalone source: a manifests directory followed with inotify."""
import json
import os
import time

from lab import wait_for

SVC = """apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: shop}}
spec:
  type: ClusterIP
  clusterIP: {ip}
  ports:
  - {{name: http, port: 80, targetPort: 8080, protocol: TCP}}
"""

SLICE = {
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "web-1", "namespace": "shop",
                 "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    "endpoints": [{"addresses": ["198.18.1.5"], "conditions": {"ready": True}}],
}


def services(node):
    out = node.berthctl_json("services")
    return {f"{s['service']['metadata']['namespace']}/{s['service']['metadata']['name']}": s
            for s in out["services"]}


def within_a_second(pred, what):
    t = time.monotonic()
    wait_for(pred, timeout=1.0, interval=0.02, what=what)
    return time.monotonic() - t


def test_manifests_follow_directory(make_node, lab):
    mdir = os.path.join(lab.tmp, "manifests")
    os.makedirs(mdir)
    with open(os.path.join(mdir, "web.yaml"), "w") as f:
        f.write(SVC.format(name="web", ip="198.18.128.10"))
    with open(os.path.join(mdir, "slice.json"), "w") as f:
        json.dump(SLICE, f)
    node = make_node(agent_args=("--manifests", mdir, "--metrics-addr", "127.0.0.1:0"))
    s = services(node)
    assert set(s) == {"shop/web"}
    assert s["shop/web"]["service"]["spec"]["clusterIPs"] == ["198.18.128.10"]
    eps = s["shop/web"]["endpointSlices"][0]["endpoints"]
    assert [e["addresses"] for e in eps] == [["198.18.1.5"]]
    st = node.berthctl_json("status")
    assert st["source"]["type"] == "manifests" and st["ready"]
    assert all(r["synced"] for r in st["source"]["resources"].values())

    # Added: a List of two services in one file.
    with open(os.path.join(mdir, "more.yaml"), "w") as f:
        f.write("apiVersion: v1\nkind: List\nitems:\n")
        for name, ip in (("api", "198.18.128.11"), ("db", "198.18.128.12")):
            f.write("- " + SVC.format(name=name, ip=ip).replace("\n", "\n  ").rstrip() + "\n")
    within_a_second(lambda: set(services(node)) == {"shop/web", "shop/api", "shop/db"}, "add")

    # Edited: the endpoint moves.
    SLICE["endpoints"][0]["addresses"] = ["198.18.1.6"]
    with open(os.path.join(mdir, "slice.json.tmp"), "w") as f:
        json.dump(SLICE, f)
    os.rename(os.path.join(mdir, "slice.json.tmp"), os.path.join(mdir, "slice.json"))
    within_a_second(lambda: services(node)["shop/web"]["endpointSlices"][0]["endpoints"][0]
                    ["addresses"] == ["198.18.1.6"], "edit")

    # A broken edit keeps the file's last good content and says why.
    with open(os.path.join(mdir, "more.yaml"), "a") as f:
        f.write("  - [unbalanced\n")
    time.sleep(0.3)
    assert set(services(node)) == {"shop/web", "shop/api", "shop/db"}
    assert "more.yaml" in node.berthctl_json("status")["source"]["lastError"]

    # Removed.
    os.unlink(os.path.join(mdir, "more.yaml"))
    within_a_second(lambda: set(services(node)) == {"shop/web"}, "removal")

    # A malformed object among good ones is skipped, named in the log, and counted.
    with open(os.path.join(mdir, "bad.yaml"), "w") as f:
        f.write("apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: shop}\n"
                "spec: {ports: notalist}\n---\n" + SVC.format(name="fine", ip="198.18.128.13"))
    within_a_second(lambda: "shop/fine" in services(node), "the good object next to a bad one")
    assert "shop/broken" not in services(node)
    assert "shop/broken" in node.log()
    metrics = node.ns.run("curl", "-sf", f"http://127.0.0.1:{metrics_port(node)}/metrics").stdout
    assert 'berth_sync_decode_errors_total{resource="Service"} ' in metrics
    table = node.berthctl("services").stdout
    assert "shop             web" in table and "80/TCP" in table


def metrics_port(node):
    for line in node.log().splitlines():
        if "metrics on" in line:
            return int(line.rsplit(":", 1)[1])
    raise AssertionError("the agent did not log its metrics port")
