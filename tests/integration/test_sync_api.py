# SPDX-License-Identifier: Apache-2.0
"""berth-agent against the project's test API server: list, watch, resume, relist.

The server runs in this process but listens inside the node's namespace, so
the agent reaches it over TLS (test CA, bearer token) as it would reach a
real API server, and the test can inject faults while it runs.
"""
import json
import os
import random
import time

import pytest

from apiserver import objects
from apiserver.kubeapi import KubeAPIServer
from lab import Pod, wait_for

NODE = "node-a"


@pytest.fixture
def bare_node(make_node):
    """The node, made before its agent starts so that the API server can listen in it."""
    return make_node(start=False)


@pytest.fixture
def api(bare_node):
    srv = KubeAPIServer(netns=bare_node.ns.path, bookmark_interval=0.5)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def synced_node(api, lab, bare_node):
    node = bare_node
    kubeconfig = api.kubeconfig(os.path.join(lab.tmp, "kubeconfig"))
    node.start_agent("--node-name", NODE, "--kubeconfig", kubeconfig,
                     "--watch-stall-timeout", "2", "--reclaim-grace", "1",
                     "--reconcile-interval", "1")
    wait_for(lambda: node.berthctl_json("status")["ready"], timeout=20, what="caches to sync")
    return node


def server_state(api):
    """What the agent must end up with: services and their slices' endpoints."""
    want = {}
    for s in api.list("services"):
        key = f"{s['metadata']['namespace']}/{s['metadata']['name']}"
        want[key] = {"ips": [ip for ip in s["spec"].get("clusterIPs", []) if ":" not in ip],
                     "ports": sorted(p["port"] for p in s["spec"].get("ports", [])),
                     "endpoints": set()}
    for e in api.list("endpointslices"):
        svc = e["metadata"].get("labels", {}).get("kubernetes.io/service-name")
        key = f"{e['metadata']['namespace']}/{svc}"
        if key in want:
            for ep in e["endpoints"]:
                want[key]["endpoints"].update(ep["addresses"])
    return want


def agent_state(node):
    got = {}
    for item in node.berthctl_json("services")["services"]:
        s = item["service"]
        key = f"{s['metadata']['namespace']}/{s['metadata']['name']}"
        eps = set()
        for sl in item["endpointSlices"]:
            for ep in sl["endpoints"]:
                eps.update(ep["addresses"])
        got[key] = {"ips": s["spec"].get("clusterIPs", []),
                    "ports": sorted(p["port"] for p in s["spec"].get("ports", [])),
                    "endpoints": eps}
    return got


def converged(api, node, timeout=10):
    wait_for(lambda: agent_state(node) == server_state(api), timeout=timeout,
             what="the agent's cache to equal the server's state")


def resource(node, kind):
    return node.berthctl_json("status")["source"]["resources"][kind]


def test_initial_list_10k_services_50k_endpoints(api, lab, bare_node):
    api.seed(services=10000, endpoints_per_service=5)
    node = bare_node
    kubeconfig = api.kubeconfig(os.path.join(lab.tmp, "kubeconfig"))
    node.start_agent("--node-name", NODE, "--kubeconfig", kubeconfig)
    wait_for(lambda: node.berthctl_json("status")["ready"], timeout=60, what="sync")
    converged(api, node, timeout=30)
    st = node.berthctl_json("status")["source"]
    assert st["type"] == "api" and st["connected"] and st["server"] == api.url
    assert resource(node, "Service")["count"] == 10000
    assert sum(len(s["endpoints"]) for s in agent_state(node).values()) == 50000
    # 10k services at 500 a page: 20 pages, each a LIST request.
    assert api.count(verb="list", resource="services") == 20
    assert resource(node, "Service")["resourceVersion"] != ""
    text = node.berthctl("status").stdout
    assert f"API server {api.url} (connected)" in text


def test_watch_events_and_resume_without_relist(api, synced_node):
    node = synced_node
    api.create("services", objects.service("web", cluster_ip="198.18.128.20"))
    api.create("endpointslices", objects.endpointslice(
        "web", endpoints=[objects.endpoint("198.18.1.7", node=NODE)]))
    converged(api, node)
    lists = api.count(verb="list")
    api.drop_watches()
    api.modify("services", "web", lambda s: s["spec"]["ports"].append(objects.port(443, "https")))
    api.delete("endpointslices", objects.endpointslice("web")["metadata"]["name"])
    converged(api, node)
    assert api.count(verb="list") == lists, "a dropped watch resumes from its resourceVersion"
    assert resource(node, "Service")["watchRestarts"] >= 1


def test_relist_after_410(api, synced_node):
    node = synced_node
    api.create("services", objects.service("keep", cluster_ip="198.18.128.30"))
    api.create("services", objects.service("gone", cluster_ip="198.18.128.31"))
    converged(api, node)
    relists = resource(node, "Service")["relists"]
    api.stall_watches()
    api.delete("services", "gone")
    api.create("services", objects.service("new", cluster_ip="198.18.128.32"))
    api.compact()  # the agent's resourceVersion is now too old
    api.drop_watches()
    api.release_watches()
    converged(api, node)
    assert resource(node, "Service")["relists"] > relists
    assert "default/gone" not in agent_state(node)


def test_stalled_watch_is_resumed(api, synced_node):
    node = synced_node
    api.stall_watches()  # connections stay open but silent: not even bookmarks
    time.sleep(0.2)
    api.create("services", objects.service("late", cluster_ip="198.18.128.40"))
    api.release_watches()
    # The agent gives up on the silent stream after --watch-stall-timeout (2 s) and resumes.
    converged(api, node, timeout=15)


def test_malformed_object_is_skipped(api, lab, bare_node):
    api.create("services", objects.service("good-1", cluster_ip="198.18.128.50"))
    api.create("services", objects.malformed_service("bad"))
    api.create("services", objects.service("good-2", cluster_ip="198.18.128.51"))
    node = bare_node
    node.start_agent("--node-name", NODE, "--kubeconfig",
                     api.kubeconfig(os.path.join(lab.tmp, "kubeconfig")))
    wait_for(lambda: node.berthctl_json("status")["ready"], timeout=20, what="sync")
    got = agent_state(node)
    assert set(got) == {"default/good-1", "default/good-2"}
    assert "default/bad" in node.log()
    assert resource(node, "Service")["decodeErrors"] == 1
    # A garbage line in the stream: resumed from the last good event, nothing lost.
    api.inject_watch_garbage(resource="services")
    api.create("services", objects.service("good-3", cluster_ip="198.18.128.52"))
    wait_for(lambda: "default/good-3" in agent_state(node), timeout=10, what="good-3")


def test_token_rotation(api, lab, bare_node):
    token_file = os.path.join(lab.tmp, "token")
    with open(token_file, "w") as f:
        f.write(api.token + "\n")
    kubeconfig = api.kubeconfig(os.path.join(lab.tmp, "kubeconfig"), token="")
    with open(kubeconfig) as f:
        cfg = json.load(f)
    cfg["users"][0]["user"] = {"tokenFile": token_file}
    with open(kubeconfig, "w") as f:
        json.dump(cfg, f)
    node = bare_node
    node.start_agent("--node-name", NODE, "--kubeconfig", kubeconfig)
    wait_for(lambda: node.berthctl_json("status")["ready"], timeout=20, what="sync")
    # The bound token rotates: the old one stops working, the file holds the new one.
    api.set_token("rotated-token-2")
    with open(token_file + ".new", "w") as f:
        f.write("rotated-token-2\n")
    os.rename(token_file + ".new", token_file)
    api.drop_watches()
    api.create("services", objects.service("after-rotation", cluster_ip="198.18.128.60"))
    wait_for(lambda: "default/after-rotation" in agent_state(node), timeout=15,
             what="the agent to reconnect with the rotated token")


def test_pods_feed_ipam_reclaim(api, synced_node):
    node = synced_node
    pod = Pod(node, "web-0")
    pod.add()
    api.create("pods", objects.pod("web-0", node=NODE, ip=pod.ip))
    wait_for(lambda: resource(node, "Pod")["count"] == 1, timeout=10, what="the pod")
    # Its sandbox is gone but the pod still exists on this node: keep the address.
    pod.ns.delete()
    time.sleep(2.5)
    assert [p["pod"] for p in node.berthctl_json("pods")["pods"]] == ["web-0"]
    # The pod is deleted: reclaimed after the grace period, with a log line and a counter.
    api.delete("pods", "web-0")
    wait_for(lambda: node.berthctl_json("pods")["pods"] == [], timeout=10, what="reclaim")
    assert node.berthctl_json("status")["counters"]["reclaimed"] == 1
    assert "the pod is not on this node" in node.log()


def test_randomized_sequence_converges(api, synced_node):
    seed = int(os.environ.get("BERTH_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    node = synced_node
    live = {}
    try:
        for step in range(120):
            op = rng.choices(["add", "modify", "delete", "slice", "drop", "gone"],
                             weights=[30, 25, 15, 20, 6, 4])[0]
            if op == "add" or not live:
                name = f"s{step}"
                ip = f"198.18.{129 + step // 250}.{step % 250 + 1}"
                api.create("services", objects.service(name, cluster_ip=ip))
                live[name] = ip
            elif op == "modify":
                name = rng.choice(sorted(live))
                p = rng.randrange(1, 65535)
                api.modify("services", name, lambda s: s["spec"].__setitem__(
                    "ports", [objects.port(p, "http")]))
            elif op == "delete":
                name = rng.choice(sorted(live))
                api.delete("services", name)
                del live[name]
            elif op == "slice":
                name = rng.choice(sorted(live))
                eps = [objects.endpoint(f"198.19.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                                        node=NODE) for _ in range(rng.randrange(0, 4))]
                api.apply("endpointslices", objects.endpointslice(name, endpoints=eps))
            elif op == "drop":
                api.drop_watches()
            else:
                api.compact()
                api.drop_watches()
            if rng.random() < 0.1:
                time.sleep(0.05)
        converged(api, node, timeout=20)
    except AssertionError as e:
        raise AssertionError(f"randomized sequence failed with BERTH_TEST_SEED={seed}: {e}")


def test_readyz_waits_for_synced_caches(api, lab, bare_node):
    api.create("services", objects.service("web", cluster_ip="198.18.128.70"))
    api.list_delay = 1.5  # every LIST takes this long
    node = bare_node
    node.start_agent("--node-name", NODE, "--kubeconfig",
                     api.kubeconfig(os.path.join(lab.tmp, "kubeconfig")),
                     "--metrics-addr", "127.0.0.1:0")
    port = next(int(l.rsplit(":", 1)[1]) for l in node.log().splitlines() if "metrics on" in l)

    def get(path):
        r = node.ns.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        f"http://127.0.0.1:{port}{path}", check=False)
        return r.stdout
    # IPAM serves pods at once (the conflist is written); services are not synced yet.
    assert get("/healthz") == "200"
    assert get("/readyz") == "503"
    wait_for(lambda: get("/readyz") == "200", timeout=15, what="readyz after sync")
    metrics = node.ns.run("curl", "-sf", f"http://127.0.0.1:{port}/metrics").stdout
    assert 'berth_cache_synced{resource="Service"} 1' in metrics
    assert 'berth_cache_objects{resource="Service"} 1' in metrics
    assert "berth_ipam_pool_size 16" in metrics
