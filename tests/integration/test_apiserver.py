# SPDX-License-Identifier: Apache-2.0
"""The test API server (tests/apiserver) is faithful to kube-apiserver.

Real kubectl runs against it (TLS, bearer token, client certs, discovery,
server-side printing, watch); raw HTTP checks pin down the wire protocol
berth-agent's client depends on: list pagination, watch from a
resourceVersion, bookmarks, 410 Expired, and the fault-injection controls.
"""
import json
import os
import queue
import re
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from apiserver import objects
from apiserver.client import END, TIMEOUT, ApiClient, RawWatch
from apiserver.kubeapi import DEFAULT_GARBAGE, KubeAPIServer
from lab import wait_for

KUBECTL = shutil.which("kubectl")
KUBEAPI_PY = os.path.join(os.path.dirname(__file__), "..", "apiserver", "kubeapi.py")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="berth-apitest-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_api():
    """make_api(**KubeAPIServer kwargs): started servers, all stopped at teardown."""
    servers = []

    def make(**kw):
        kw.setdefault("bookmark_interval", 0.2)
        api = KubeAPIServer(**kw)
        servers.append(api)
        return api.start()
    try:
        yield make
    finally:
        for api in servers:
            api.stop()
    errors = [e for api in servers for e in api.errors]
    assert not errors, "the test apiserver hit a bug:\n" + "\n".join(errors)


@pytest.fixture
def api(make_api):
    return make_api()


WEB_ENDPOINTS = ["198.19.1.1", "198.19.1.2", "198.19.1.3", "198.19.1.4"]


@pytest.fixture
def cluster(api):
    """A few realistic services and slices in two namespaces."""
    api.create("services", objects.service(
        "dns", "kube-system", cluster_ip="198.18.128.10", selector={"k8s-app": "kube-dns"},
        ports=[objects.port(53, "dns", "UDP"), objects.port(53, "dns-tcp", "TCP")]))
    api.create("endpointslices", objects.endpointslice(
        "dns", "kube-system",
        [objects.endpoint("198.19.0.2", "node-0", pod="coredns-a", namespace="kube-system"),
         objects.endpoint("198.19.0.3", "node-1", pod="coredns-b", namespace="kube-system")],
        [objects.slice_port(53, "dns", "UDP"), objects.slice_port(53, "dns-tcp", "TCP")]))
    api.create("services", objects.service(
        "web", "shop", cluster_ip="198.18.128.20", type="NodePort",
        ports=[objects.port(80, "http", target_port=8080, node_port=30080),
               objects.port(443, "https", target_port="https", node_port=30443)]))
    eps = [objects.endpoint(ip, f"node-{i % 2}", pod=f"web-{i}", namespace="shop")
           for i, ip in enumerate(WEB_ENDPOINTS)]
    eps[3]["conditions"] = {"ready": False, "serving": True, "terminating": True}
    api.create("endpointslices", objects.endpointslice(
        "web", "shop", eps, [objects.slice_port(8080, "http"), objects.slice_port(8443, "https")],
        name="web-x7k2p"))
    api.create("services", objects.service(
        "lb", "shop", cluster_ip="198.18.128.30", type="LoadBalancer",
        ports=[objects.port(80, "http", node_port=31080)], load_balancer_ips=["198.18.200.1"]))
    for i in range(2):
        api.create("nodes", objects.node(f"node-{i}", address=f"198.18.0.{10 + i}"))
    return api


def run_kubectl(api, workdir, *args, token=None, client_cert=False, timeout=60):
    kc = api.kubeconfig(os.path.join(workdir, "kubeconfig"), token=token,
                        client_cert=client_cert)
    return subprocess.run(kubectl_argv(workdir, kc, *args), capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, HOME=workdir))


def kubectl_argv(workdir, kubeconfig, *args):
    return [KUBECTL, "--kubeconfig", kubeconfig, "--cache-dir", os.path.join(workdir, "cache"),
            *args]


def table_blocks(text):
    """kubectl's printed tables -> [[cells of each line]] per block (blank-line separated).
    Columns are separated by 3+ spaces; cells never contain two."""
    blocks = []
    for block in text.strip().split("\n\n"):
        blocks.append([re.split(r"\s{2,}", line.strip()) for line in block.splitlines()])
    return blocks


AGE = re.compile(r"^\d+s$")


# ---------------------------------------------------------------- kubectl
@needs_kubectl
def test_kubectl_get_services_and_endpointslices(cluster, workdir):
    r = run_kubectl(cluster, workdir, "get", "services,endpointslices", "-A")
    assert r.returncode == 0, r.stderr
    svc, eps = table_blocks(r.stdout)
    assert svc[0] == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    rows = {row[1]: row for row in svc[1:]}
    assert rows["service/dns"][:6] == ["kube-system", "service/dns", "ClusterIP",
                                       "198.18.128.10", "<none>", "53/UDP,53/TCP"]
    assert rows["service/web"][:6] == ["shop", "service/web", "NodePort", "198.18.128.20",
                                       "<none>", "80:30080/TCP,443:30443/TCP"]
    assert rows["service/lb"][:6] == ["shop", "service/lb", "LoadBalancer", "198.18.128.30",
                                      "198.18.200.1", "80:31080/TCP"]
    assert all(AGE.match(row[6]) for row in svc[1:])
    assert [row[1] for row in svc[1:]] == ["service/dns", "service/lb", "service/web"]

    assert eps[0] == ["NAMESPACE", "NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    rows = {row[1].split("/", 1)[1]: row for row in eps[1:]}
    assert eps[1][1].startswith("endpointslice.discovery.k8s.io/")
    assert rows["web-x7k2p"][:5] == ["shop", "endpointslice.discovery.k8s.io/web-x7k2p", "IPv4",
                                     "8080,8443", "198.19.1.1,198.19.1.2,198.19.1.3 + 1 more..."]
    dns = [row for name, row in rows.items() if name.startswith("dns-")]
    assert dns[0][2:5] == ["IPv4", "53,53", "198.19.0.2,198.19.0.3"]
    # kubectl went through aggregated discovery, then asked for tables
    assert cluster.count("discovery") >= 1
    lists = cluster.requests("list", "services")
    assert lists and lists[-1].code == 200


@needs_kubectl
def test_kubectl_get_json_equals_stored_object(cluster, workdir):
    r = run_kubectl(cluster, workdir, "get", "svc", "-n", "shop", "web", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == cluster.get("services", "web", "shop")
    r = run_kubectl(cluster, workdir, "get", "endpointslices", "-n", "shop", "web-x7k2p",
                    "-o", "json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == cluster.get("endpointslices", "web-x7k2p", "shop")
    # the owner reference points at the stored service
    assert got["metadata"]["ownerReferences"][0]["uid"] == \
        cluster.get("services", "web", "shop")["metadata"]["uid"]
    r = run_kubectl(cluster, workdir, "get", "nodes", "-o", "wide")
    assert r.returncode == 0, r.stderr
    (nodes,) = table_blocks(r.stdout)
    assert nodes[0][:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    assert nodes[1][:2] == ["node-0", "Ready"] and nodes[1][5] == "198.18.0.10"
    r = run_kubectl(cluster, workdir, "get", "svc", "-n", "shop", "nope")
    assert r.returncode != 0 and 'services "nope" not found' in r.stderr


@needs_kubectl
def test_kubectl_watch_sees_later_add(cluster, workdir):
    kc = cluster.kubeconfig(os.path.join(workdir, "kubeconfig"))
    p = subprocess.Popen(kubectl_argv(workdir, kc, "get", "services", "-A", "--watch",
                                      "--output-watch-events"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, HOME=workdir))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in p.stdout], daemon=True).start()
    try:
        assert cluster.wait_for_watches(1, "services", timeout=20), "kubectl never watched"
        cluster.create("services", objects.service("late", "shop", cluster_ip="198.18.128.99",
                                                   ports=[objects.port(8080, "alt")]))
        deadline = time.time() + 10
        seen = []
        while time.time() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if " late " in line:
                break
        else:
            raise AssertionError(f"kubectl did not print the add: {seen}")
        cells = re.split(r"\s{2,}", line.strip())
        assert cells[:7] == ["ADDED", "shop", "late", "ClusterIP", "198.18.128.99", "<none>",
                             "8080/TCP"]
        # the initial list was printed first, with the header
        assert seen[0].split()[:3] == ["EVENT", "NAMESPACE", "NAME"]
        assert any(" web " in s for s in seen)
    finally:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@needs_kubectl
def test_kubectl_wrong_token_is_unauthorized(cluster, workdir):
    r = run_kubectl(cluster, workdir, "get", "services", "-A", token="not-the-token")
    assert r.returncode != 0
    assert "You must be logged in to the server" in r.stderr
    assert all(req.code == 401 for req in cluster.requests() if req.verb != "version")
    # a right token after rotation works; the old one no longer does
    cluster.set_token("rotated")
    assert run_kubectl(cluster, workdir, "get", "ns", token="rotated").returncode == 0
    r = run_kubectl(cluster, workdir, "get", "ns", token="berth-test-token")
    assert r.returncode != 0 and "You must be logged in" in r.stderr


@needs_kubectl
def test_kubectl_client_certificate(make_api, workdir):
    api = make_api(token="only-for-others", client_auth="optional")
    api.create("services", objects.service("web"))
    r = run_kubectl(api, workdir, "get", "svc", "web", "-o", "name", token="",
                    client_cert=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "service/web"
    r = run_kubectl(api, workdir, "get", "svc", token="")  # neither cert nor token
    assert r.returncode != 0


# ---------------------------------------------------------------- raw protocol
def test_discovery_documents(api):
    c = ApiClient(api)
    assert c.json("/version")["gitVersion"].startswith("v1.")
    assert c.json("/api") ["versions"] == ["v1"]
    core = {r["name"]: r for r in c.json("/api/v1")["resources"]}
    assert set(core) == {"services", "pods", "nodes", "namespaces"}
    assert core["services"]["shortNames"] == ["svc"] and core["services"]["namespaced"]
    assert not core["nodes"]["namespaced"] and core["nodes"]["kind"] == "Node"
    assert set(core["pods"]["verbs"]) >= {"get", "list", "watch"}
    groups = c.json("/apis")["groups"]
    assert groups[0]["preferredVersion"]["groupVersion"] == "discovery.k8s.io/v1"
    disc = c.json("/apis/discovery.k8s.io/v1")
    assert disc["groupVersion"] == "discovery.k8s.io/v1"
    assert disc["resources"][0]["name"] == "endpointslices" and \
        disc["resources"][0]["kind"] == "EndpointSlice"
    # aggregated discovery when asked for, with its media type
    status, headers, body = c.request(
        "/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                 "application/json")
    assert status == 200 and "as=APIGroupDiscoveryList" in headers["content-type"]
    agg = json.loads(body)
    assert agg["kind"] == "APIGroupDiscoveryList"
    assert agg["items"][0]["versions"][0]["resources"][0]["responseKind"]["kind"] == \
        "EndpointSlice"


def test_auth_token_rotation_and_anonymous(api):
    assert ApiClient(api).request("/api/v1/services")[0] == 200
    for token in (None, "wrong"):
        status, headers, body = ApiClient(api, token=token).request("/api/v1/services")
        assert status == 401
        assert json.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                    "status": "Failure", "message": "Unauthorized",
                                    "reason": "Unauthorized", "code": 401}
    assert ApiClient(api, token=None).request("/version")[0] == 200  # anonymous
    assert ApiClient(api, token="wrong").request("/version")[0] == 401
    api.set_token("second", keep_old=True)
    assert ApiClient(api, token="berth-test-token").request("/api")[0] == 200
    assert ApiClient(api, token="second").request("/api")[0] == 200
    api.set_token("third")
    assert ApiClient(api, token="second").request("/api")[0] == 401
    assert ApiClient(api).request("/api")[0] == 200  # api.token follows the rotation


def test_client_cert_required(make_api):
    api = make_api(client_auth="required")
    assert ApiClient(api, token=None, client_cert=True).request("/api/v1/nodes")[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ApiClient(api).request("/api/v1/nodes")


def test_list_shape_get_and_not_found(cluster):
    c = ApiClient(cluster)
    lst = c.json("/apis/discovery.k8s.io/v1/endpointslices")
    assert lst["kind"] == "EndpointSliceList" and lst["apiVersion"] == "discovery.k8s.io/v1"
    assert lst["metadata"]["resourceVersion"] == str(cluster.resource_version)
    assert lst["items"] == cluster.list("endpointslices")
    ns_list = c.json("/api/v1/namespaces/shop/services")
    assert [s["metadata"]["name"] for s in ns_list["items"]] == ["lb", "web"]
    svc = c.json("/api/v1/namespaces/shop/services/web")
    assert svc == cluster.get("services", "web", "shop")
    meta = svc["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and \
        int(meta["resourceVersion"]) > 0
    assert c.json("/api/v1/nodes/node-1")["status"]["addresses"][0]["address"] == "198.18.0.11"
    assert c.json("/api/v1/namespaces/shop")["kind"] == "Namespace"  # created on demand
    err = c.json("/api/v1/namespaces/shop/services/nope", expect=404)
    assert (err["kind"], err["reason"], err["code"]) == ("Status", "NotFound", 404)
    assert c.request("/api/v1/widgets")[0] == 404
    # a schema-breaking object is served as-is among good ones
    cluster.create("services", objects.malformed_service("broken", "shop"))
    items = c.json("/api/v1/namespaces/shop/services")["items"]
    assert [s["metadata"]["name"] for s in items] == ["broken", "lb", "web"]
    assert items[0]["spec"]["ports"] == "notalist"


def test_pagination_reassembles_a_consistent_list(api):
    api.seed(25, 2, namespaces=2, nodes=2)
    c = ApiClient(api)
    full = c.json("/api/v1/services")
    pages, items = c.list_all("/api/v1/services", 7)
    assert items == full["items"] and len(items) == 25
    assert [len(p["items"]) for p in pages] == [7, 7, 7, 4]
    assert {p["metadata"]["resourceVersion"] for p in pages} == \
        {full["metadata"]["resourceVersion"]}
    assert [p["metadata"].get("remainingItemCount") for p in pages] == [18, 11, 4, None]
    # namespaced pagination
    _, items = c.list_all("/api/v1/namespaces/bench-1/services", 4)
    assert items == api.list("services", "bench-1") and len(items) == 12
    # pages after the first come from the first page's snapshot, like etcd's revision
    first = c.json("/api/v1/services?limit=10")
    api.delete("services", "svc-00020", "bench-0")
    api.create("services", objects.service("svc-00099", "bench-1"))
    rest = c.json(f"/api/v1/services?limit=100&continue={first['metadata']['continue']}")
    assert first["items"] + rest["items"] == full["items"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_expired_continue_token_is_410(api):
    api.seed(12, 1)
    c = ApiClient(api)
    first = c.json("/apis/discovery.k8s.io/v1/endpointslices?limit=5")
    api.expire_continue_tokens()
    status, _, body = c.request("/apis/discovery.k8s.io/v1/endpointslices?limit=5&continue=" +
                                first["metadata"]["continue"])
    assert status == 410
    st = json.loads(body)
    assert (st["kind"], st["reason"], st["code"]) == ("Status", "Expired", 410)
    # the Status carries an "inconsistent" token that continues on current data
    more = c.json("/apis/discovery.k8s.io/v1/endpointslices?limit=100&continue=" +
                  st["metadata"]["continue"])
    assert first["items"] + more["items"] == api.list("endpointslices")
    # compaction past a token's revision expires it too
    first = c.json("/api/v1/services?limit=5")
    api.create("services", objects.service("newer"))
    api.compact()
    assert c.request("/api/v1/services?limit=5&continue=" +
                     first["metadata"]["continue"])[0] == 410
    assert c.request("/api/v1/services?limit=5&continue=bm90LWEtdG9rZW4")[0] == 400


def test_field_and_label_selectors(api):
    for i, node in enumerate(["node-a", "node-b", "node-a"]):
        api.create("pods", objects.pod(f"p{i}", "shop", node, f"198.19.2.{i + 1}"))
    api.create("pods", objects.pod("pending", "shop"))
    for n in ("node-a", "node-b"):
        api.create("nodes", objects.node(n))
    api.create("endpointslices", objects.endpointslice("web", "shop", name="web-1"))
    api.create("endpointslices", objects.endpointslice("db", "shop", name="db-1"))
    c = ApiClient(api)

    def names(path):
        return [o["metadata"]["name"] for o in c.json(path)["items"]]
    assert names("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a") == ["p0", "p2"]
    assert names("/api/v1/namespaces/shop/pods?fieldSelector=spec.nodeName%3D") == ["pending"]
    assert names("/api/v1/nodes?fieldSelector=metadata.name%3Dnode-b") == ["node-b"]
    assert names("/apis/discovery.k8s.io/v1/endpointslices?labelSelector="
                 "kubernetes.io%2Fservice-name%3Dweb") == ["web-1"]
    assert names("/apis/discovery.k8s.io/v1/endpointslices?labelSelector="
                 "kubernetes.io%2Fservice-name%20in%20(db,x)") == ["db-1"]
    assert c.request("/api/v1/pods?fieldSelector=spec.bogus%3D1")[0] == 400
    # a filtered watch sees only what matches
    rv = api.resource_version
    api.create("pods", objects.pod("p9", "shop", "node-b"))
    api.create("pods", objects.pod("p8", "shop", "node-a"))
    with RawWatch(api, "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-a"
                       f"&resourceVersion={rv}&timeoutSeconds=1") as w:
        evs = w.events_until_end()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "p8")]


def test_watch_from_rv_gets_exactly_the_later_events_in_order(cluster):
    rv0 = cluster.resource_version
    a = cluster.create("services", objects.service("w1", "shop", cluster_ip="198.18.128.41"))
    cluster.create("endpointslices", objects.endpointslice("w1", "shop"))  # other resource
    b = cluster.modify("services", "w1",
                       lambda o: o["spec"]["ports"][0].update(port=81), namespace="shop")
    c = cluster.delete("services", "web", namespace="shop")
    cluster.create("services", objects.service("other", "kube-system"))
    with RawWatch(cluster, f"/api/v1/namespaces/shop/services?watch=1&resourceVersion={rv0}"
                           "&timeoutSeconds=1") as w:
        assert w.status == 200
        assert w.headers["transfer-encoding"] == "chunked"
        assert w.headers["content-type"] == "application/json"
        evs = w.events_until_end()
        assert w.end == "clean"  # terminating chunk at timeoutSeconds
    got = [(e["type"], e["object"]["metadata"]["name"],
            e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert got == [("ADDED", "w1", a["metadata"]["resourceVersion"]),
                   ("MODIFIED", "w1", b["metadata"]["resourceVersion"]),
                   ("DELETED", "web", c["metadata"]["resourceVersion"])]
    assert evs[1]["object"] == b and evs[1]["object"]["spec"]["ports"][0]["port"] == 81
    # the deleted object carries the deletion's resourceVersion
    assert int(c["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    # one object's watch
    with RawWatch(cluster, f"/api/v1/namespaces/shop/services/web?watch=1&resourceVersion={rv0}"
                           "&timeoutSeconds=1") as w:
        assert [e["type"] for e in w.events_until_end()] == ["DELETED"]
    # without a resourceVersion: synthetic ADDED events for what exists, then live ones
    with RawWatch(cluster, "/api/v1/namespaces/shop/services?watch=1") as w:
        first = [w.event(), w.event()]
        cluster.create("services", objects.service("w2", "shop"))
        evs = first + [w.event()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == \
        [("ADDED", "lb"), ("ADDED", "w1"), ("ADDED", "w2")]


def test_watch_bookmarks(api):
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={api.resource_version}"
                       "&allowWatchBookmarks=true&timeoutSeconds=1") as w:
        time.sleep(0.3)
        added = api.create("services", objects.service("web"))
        evs = w.events_until_end()
    types = [e["type"] for e in evs]
    assert "ADDED" in types and types.count("BOOKMARK") >= 3, types
    marks = [e["object"] for e in evs if e["type"] == "BOOKMARK"]
    assert all(m["kind"] == "Service" and m["apiVersion"] == "v1" for m in marks)
    assert int(marks[-1]["metadata"]["resourceVersion"]) >= \
        int(added["metadata"]["resourceVersion"])
    # bookmark rvs never go backwards, and a bookmark after the ADDED covers it
    rvs = [int(m["metadata"]["resourceVersion"]) for m in marks]
    assert rvs == sorted(rvs)
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={api.resource_version}"
                       "&timeoutSeconds=1") as w:
        assert w.events_until_end() == []  # not asked for: none


def test_watch_from_compacted_rv_is_expired(api):
    rv0 = api.resource_version
    api.create("services", objects.service("a"))
    api.create("services", objects.service("b"))
    api.compact()
    assert api.compacted_rv == api.resource_version
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={rv0}") as w:
        assert w.status == 200
        evs = w.events_until_end(timeout=5)
        assert w.end == "clean"
    assert len(evs) == 1 and evs[0]["type"] == "ERROR"
    st = evs[0]["object"]
    assert (st["kind"], st["status"], st["reason"], st["code"]) == \
        ("Status", "Failure", "Expired", 410)
    assert st["message"].startswith(f"too old resource version: {rv0} (")
    # from the compaction point on it works
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={api.compacted_rv}"
                       "&timeoutSeconds=1") as w:
        assert w.events_until_end() == []
    api.watch_expired = "http"
    status, _, body = ApiClient(api).request(f"/api/v1/services?watch=1&resourceVersion={rv0}")
    assert status == 410 and json.loads(body)["reason"] == "Expired"


def test_drop_watches_cuts_the_stream(api):
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={api.resource_version}") as w:
        assert api.wait_for_watches(1, "services")
        api.create("services", objects.service("a"))
        assert w.event()["type"] == "ADDED"
        assert api.drop_watches() == 1
        assert w.next(5) is END
        assert w.end == "cut"  # no terminating chunk
    wait_for(lambda: api.open_watches() == 0, 5, what="watch unregistered")
    # the client can resume from its last rv without relisting; the server counts that
    before = api.count("list", "services")
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={api.resource_version}"
                       "&timeoutSeconds=1") as w:
        assert w.events_until_end() == []
    assert api.count("list", "services") == before
    assert api.count("watch", "services") == 2


def test_stall_watches_sends_nothing_until_released(api):
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={api.resource_version}"
                       "&allowWatchBookmarks=true&timeoutSeconds=1") as w:
        assert w.event()["type"] == "BOOKMARK"  # alive: bookmarks every 0.2 s
        api.stall_watches()
        while w.next(0.4) is not TIMEOUT:  # drain whatever was already on its way
            pass
        added = api.create("services", objects.service("during-stall"))
        assert w.next(1.0) is TIMEOUT  # no event, no bookmark, no end at timeoutSeconds
        assert w.end is None and api.open_watches() == 1
        api.release_watches()
        ev = w.event()
        assert ev["type"] == "ADDED" and ev["object"] == added
        w.events_until_end()
        assert w.end == "clean"


def test_inject_garbage_into_watch(api):
    with RawWatch(api, f"/api/v1/services?watch=1&resourceVersion={api.resource_version}"
                       "&timeoutSeconds=2") as w:
        assert api.wait_for_watches(1)
        assert api.inject_watch_garbage() == 1
        line = w.next()
        assert line == DEFAULT_GARBAGE.rstrip(b"\n")
        with pytest.raises(ValueError):
            json.loads(line)
        api.create("services", objects.service("after"))
        assert w.event()["object"]["metadata"]["name"] == "after"  # the stream goes on


def test_fail_requests_and_request_log(api):
    api.fail_requests(429, verb="list", resource="services", retry_after=1)
    c = ApiClient(api)
    status, headers, body = c.request("/api/v1/services")
    assert status == 429 and headers["retry-after"] == "1"
    assert json.loads(body)["reason"] == "TooManyRequests"
    assert c.request("/api/v1/services")[0] == 200
    assert c.request("/api/v1/pods")[0] == 200
    lists = api.requests("list", "services")
    assert [r.code for r in lists] == [429, 200]
    assert api.count("list") == 3 and api.count(path="/api/v1/pods") == 1
    api.reset_requests()
    assert api.count() == 0


def test_server_in_a_network_namespace(lab, make_api, workdir):
    ns = lab.netns("api")
    ns.run("ip", "addr", "add", "198.18.250.1/32", "dev", "lo")
    api = make_api(netns=ns.path, host="198.18.250.1")
    api.create("services", objects.service("web", cluster_ip="198.18.128.77"))
    r = ns.run("curl", "-sS", "--cacert", api.ca_file, "-H", f"Authorization: Bearer {api.token}",
               f"{api.url}/api/v1/namespaces/default/services/web")
    assert json.loads(r.stdout)["spec"]["clusterIP"] == "198.18.128.77"
    # not reachable from the machine's namespace
    r = subprocess.run(["curl", "-sS", "--max-time", "2", "--cacert", api.ca_file, api.url],
                       capture_output=True, text=True)
    assert r.returncode != 0


def test_cli_process_seeds_and_serves_curl(workdir):
    tls_dir = os.path.join(workdir, "pki")
    kc = os.path.join(workdir, "kubeconfig")
    p = subprocess.Popen([sys.executable, KUBEAPI_PY, "--port", "0", "--tls-dir", tls_dir,
                          "--token", "bench", "--seed-services", "300",
                          "--seed-endpoints-per-service", "150", "--kubeconfig", kc],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        assert ready, "no READY line"
        line = p.stdout.readline()
        assert line.startswith("READY https://127.0.0.1:"), line + p.stderr.read()
        url = line.split()[1]

        def curl(path):
            r = subprocess.run(["curl", "-sS", "--fail", "--cacert", f"{tls_dir}/ca.crt", "-H",
                                "Authorization: Bearer bench", url + path],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)
        assert len(curl("/api/v1/services")["items"]) == 300
        slices = curl("/apis/discovery.k8s.io/v1/endpointslices")["items"]
        assert len(slices) == 600  # 150 endpoints: split 100 + 50 like the controller
        assert sum(len(s["endpoints"]) for s in slices) == 300 * 150
        assert json.load(open(kc))["clusters"][0]["cluster"]["server"] == url
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            assert p.wait(timeout=10) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
