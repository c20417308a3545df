# SPDX-License-Identifier: Apache-2.0
"""berth's test Kubernetes API server: Python stdlib, the real wire protocol.

A test double for berth-agent's API client (libcurl) that real kubectl also
works against. It serves, over HTTP/1.1 with optional TLS:

  discovery   /version /api /apis /api/v1 /apis/discovery.k8s.io[/v1]
              (legacy and aggregated apidiscovery.k8s.io/v2 forms)
  resources   core/v1 services pods nodes namespaces,
              discovery.k8s.io/v1 endpointslices: get, list, watch
  printing    meta.k8s.io/v1 Table (kubectl's server-side printing)

with list pagination (limit/continue over a consistent snapshot), field
and label selectors, watches from a resourceVersion out of an event history,
bookmarks, 410 Expired for compacted history and stale continue tokens,
bearer tokens and client certificates, and fault injection for the tests.

In-process (pytest):

    with KubeAPIServer() as api:              # TLS + token "berth-test-token"
        api.create("services", objects.service("web", cluster_ip="198.18.128.10"))
        api.kubeconfig(path)                  # for kubectl / berth-agent
        api.drop_watches()

As a process (benchmarks):

    python3 tests/apiserver/kubeapi.py --port 0 --tls-dir DIR --token T \\
        --seed-services 10000 --seed-endpoints-per-service 10

prints "READY <url>" on stdout once it serves, and stops on SIGTERM/SIGINT.

Controls for tests (methods of KubeAPIServer, thread-safe):

  objects     create/update/apply/modify/delete/get/list, seed (bulk)
  history     compact(rv), history_limit=, compacted_rv, resource_version
  lists       expire_continue_tokens(), list_delay (seconds, attribute)
  watches     drop_watches(), stall_watches()/release_watches(),
              inject_watch_garbage(line), open_watches(), wait_for_watches(n)
  auth        set_token(t, keep_old=False)
  failures    fail_requests(code, verb, resource, times, retry_after)
  observing   requests(verb, resource, path, namespace), count(...), reset_requests(),
              errors (tracebacks of server bugs)

Not implemented (on purpose): writes over HTTP (405), protobuf, gzip,
sendInitialEvents / resourceVersionMatch, subresources, OpenAPI.
"""
import argparse
import base64
import bisect
import copy
import ctypes
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qsl, urlsplit

if __package__:
    from . import objects, tables, tls
else:  # run as a script: python3 tests/apiserver/kubeapi.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import objects  # noqa: E402
    import tables  # noqa: E402
    import tls  # noqa: E402

DEFAULT_TOKEN = "berth-test-token"
FIRST_RV = 1000  # resourceVersions are opaque to clients; real ones are etcd revisions
SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4",
                  "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
                  "gitTreeState": "clean", "buildDate": "2025-04-22T16:03:58Z",
                  "goVersion": "go1.23.6", "compiler": "gc", "platform": "linux/amd64"}
# Paths a request without credentials may read (kube-apiserver's default RBAC for
# system:unauthenticated). Wrong credentials are always 401.
ANONYMOUS_PATHS = ("/version", "/healthz", "/livez", "/readyz")
TABLE_MEDIA = "as=Table"
AGGREGATED_MEDIA = "as=APIGroupDiscoveryList"
AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
DEFAULT_GARBAGE = b'{"type":"MODIFIED","object":{"kind":"Service",}\n'


class Resource:
    """One API resource: what discovery says about it and how it is keyed."""

    def __init__(self, name, group, version, kind, namespaced, short_names, singular,
                 categories=(), fields=()):
        self.name = name
        self.group = group
        self.version = version
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.singular = singular
        self.categories = list(categories)
        # Field selectors the resource supports besides metadata.name/namespace.
        self.fields = ("metadata.name", "metadata.namespace") + tuple(fields)

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self):
        return self.kind + "List"


VERBS = ["get", "list", "watch"]  # what this server implements
RESOURCES = {r.name: r for r in (
    Resource("services", "", "v1", "Service", True, ["svc"], "service", ["all"],
             ["spec.clusterIP", "spec.type"]),
    Resource("pods", "", "v1", "Pod", True, ["po"], "pod", ["all"],
             ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
              "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
              "status.nominatedNodeName"]),
    Resource("nodes", "", "v1", "Node", False, ["no"], "node", [], ["spec.unschedulable"]),
    Resource("namespaces", "", "v1", "Namespace", False, ["ns"], "namespace", [],
             ["status.phase"]),
    Resource("endpointslices", "discovery.k8s.io", "v1", "EndpointSlice", True, [],
             "endpointslice", [], ["addressType"]),
)}
GROUPS = {"discovery.k8s.io": ["v1"]}


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def status_body(code, reason, message, details=None, meta=None):
    """A meta/v1 Status object, as every API error body is."""
    s = {"kind": "Status", "apiVersion": "v1", "metadata": meta or {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, meta=None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, reason, message, details, meta)


# ---------------------------------------------------------------- selectors
def _field_value(obj, path):
    v = obj
    for part in path.split("."):
        if not isinstance(v, dict):
            return ""
        v = v.get(part, "")
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def parse_field_selector(res, text):
    """fieldSelector terms a=b, a==b, a!=b (comma = AND) -> predicate(obj), or None."""
    if not text:
        return None
    terms = []
    for t in text.split(","):
        if "!=" in t:
            k, v = t.split("!=", 1)
            neg = True
        elif "==" in t or "=" in t:
            k, v = t.split("==", 1) if "==" in t else t.split("=", 1)
            neg = False
        else:
            raise ApiError(400, "BadRequest", f"invalid selector: '{text}'; can't understand "
                                              f"'{t}'")
        k = k.strip()
        if k not in res.fields:
            raise ApiError(400, "BadRequest", f'field label not supported: {k}')
        terms.append((k, v.strip(), neg))
    return lambda o: all((_field_value(o, k) == v) != neg for k, v, neg in terms)


def _split_top(text):
    """Split a label selector on commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t.strip() for t in out if t.strip()]


def parse_label_selector(text):
    """labelSelector: k=v k==v k!=v k !k 'k in (a,b)' 'k notin (a,b)' -> predicate, or None."""
    if not text:
        return None
    terms = []
    for t in _split_top(text):
        words = t.split(None, 1)
        if len(words) == 2 and words[1].startswith(("in ", "in(", "notin ", "notin(")):
            op, rest = words[1].split("(", 1) if "(" in words[1] else (words[1], "")
            vals = {v.strip() for v in rest.rstrip(")").split(",")}
            op = op.strip()
            if op == "in":
                terms.append(lambda lb, k=words[0], s=vals: lb.get(k) in s)
            else:
                terms.append(lambda lb, k=words[0], s=vals: lb.get(k) not in s)
        elif "!=" in t:
            k, v = (x.strip() for x in t.split("!=", 1))
            terms.append(lambda lb, k=k, v=v: lb.get(k) != v)
        elif "=" in t:
            k, v = (x.strip() for x in (t.split("==", 1) if "==" in t else t.split("=", 1)))
            terms.append(lambda lb, k=k, v=v: lb.get(k) == v)
        elif t.startswith("!"):
            terms.append(lambda lb, k=t[1:].strip(): k not in lb)
        else:
            terms.append(lambda lb, k=t: k in lb)

    def pred(obj):
        lb = obj.get("metadata", {}).get("labels") or {}
        return all(f(lb) for f in terms)
    return pred


# ---------------------------------------------------------------- continue tokens
def encode_continue(rv, start_key):
    """The same shape kube-apiserver uses: base64url(JSON{v, rv, start}), no padding."""
    raw = _dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_key + "\x00"})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = json.loads(raw)
        if d.get("v") != "meta.k8s.io/v1" or not isinstance(d.get("rv"), int) or \
                not isinstance(d.get("start"), str):
            raise ValueError("unknown continue token version")
        return d["rv"], d["start"]
    except (ValueError, TypeError, AttributeError) as e:
        raise ApiError(400, "BadRequest", f"continue key is not valid: {e}")


# ---------------------------------------------------------------- the store
class _Rec:
    """A stored object version: the dict and its serialised bytes (served as-is)."""
    __slots__ = ("obj", "raw", "rv", "key", "ns")

    def __init__(self, obj, rv, key, ns):
        self.obj = obj
        self.raw = _dumps(obj)
        self.rv = rv
        self.key = key
        self.ns = ns


class _Bucket:
    """All objects of one resource: by key "ns/name" (or "name"), keys kept sorted
    (etcd's order, which list pagination walks)."""

    def __init__(self):
        self.objs = {}
        self.keys = []

    def ns_range(self, ns):
        if ns is None:
            return 0, len(self.keys)
        return (bisect.bisect_left(self.keys, ns + "/"),
                bisect.bisect_left(self.keys, ns + "0"))  # "0" sorts right after "/"


class _Event:
    __slots__ = ("rv", "type", "res", "rec", "old")

    def __init__(self, rv, type, res, rec, old):
        self.rv, self.type, self.res, self.rec, self.old = rv, type, res, rec, old


class _Watch:
    """An open watch stream, for the fault-injection controls."""

    def __init__(self, handler, res):
        self.handler = handler
        self.res = res
        self.dropped = False
        self.garbage = []


class RequestRecord:
    """One request as the server saw it (see KubeAPIServer.requests)."""
    __slots__ = ("time", "method", "path", "query", "verb", "resource", "namespace", "name",
                 "code")

    def __init__(self, method, path, query, verb, resource, namespace, name):
        self.time = time.time()
        self.method, self.path, self.query = method, path, query
        self.verb, self.resource, self.namespace, self.name = verb, resource, namespace, name
        self.code = None

    def __repr__(self):
        return (f"<{self.method} {self.path} {self.query} verb={self.verb} "
                f"resource={self.resource} code={self.code}>")


# ---------------------------------------------------------------- HTTP
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "berth-test-apiserver"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # quiet; the request log is KubeAPIServer.requests
        pass

    @property
    def api(self):
        return self.server.api

    def setup(self):
        super().setup()
        self.api._conn_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.api._conn_closed(self.connection)

    # ---- responses ----
    def _send(self, code, body, content_type="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        if self.record:
            self.record.code = code

    def _send_obj(self, obj, code=200, content_type="application/json"):
        self._send(code, _dumps(obj), content_type)

    def _send_error(self, e, headers=()):
        self._send(e.code, _dumps(e.body), headers=headers)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    # ---- entry points ----
    def do_GET(self):
        self.record = None
        try:
            self._do_get()
        except ApiError as e:
            self._send_error(e)
        except OSError:  # includes ssl.SSLError: the client went away or we dropped it
            self.close_connection = True
        except Exception:  # a bug here: keep it visible to the tests (KubeAPIServer.errors)
            self.api._internal_error(traceback.format_exc())
            self.close_connection = True
            try:
                self._send_error(ApiError(500, "InternalError", "test apiserver bug"))
            except (OSError, ValueError):
                pass

    def _method_not_allowed(self):
        self.record = None
        self.close_connection = True  # the request body, if any, is left unread
        self._send_error(ApiError(405, "MethodNotAllowed",
                                  "the server does not allow this method on the requested "
                                  "resource (this test server is read-only over HTTP)"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _method_not_allowed

    def _accepts(self, marker):
        return marker in self.headers.get("Accept", "")

    def _do_get(self):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = dict(parse_qsl(url.query, keep_blank_values=True))
        route = _route(path, q)
        self.record = self.api._record(self.command, path, url.query, *route)
        self._authenticate(path)
        fault = self.api._take_fault(route[0], route[1])
        if fault:
            code, retry_after = fault
            hdrs = [("Retry-After", str(retry_after))] if retry_after is not None else []
            reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                      504: "Timeout"}.get(code, "InternalError")
            err = ApiError(code, reason, f"injected failure {code}",
                           {"retryAfterSeconds": retry_after} if retry_after else None)
            return self._send_error(err, hdrs)
        verb, res, ns, name = route
        if verb == "version":
            return self._send_obj(SERVER_VERSION)
        if verb == "health":
            return self._send(200, b"ok", "text/plain; charset=utf-8")
        if verb == "discovery":
            return self._discovery(path)
        if verb is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        res = RESOURCES[res]
        as_table = self._accepts(TABLE_MEDIA)
        if verb == "get":
            return self._get(res, ns, name, q, as_table)
        delay = self.api.list_delay
        if verb == "list" and delay:
            time.sleep(delay)
        if verb == "list":
            return self._list(res, ns, q, as_table)
        return self._watch(res, ns, name, q, as_table)

    def _authenticate(self, path):
        api = self.api
        if api.client_auth != "none" and isinstance(self.connection, ssl.SSLSocket) and \
                self.connection.getpeercert():
            return  # a certificate signed by our CA (verified in the handshake)
        auth = self.headers.get("Authorization")
        if auth is None:
            if path in ANONYMOUS_PATHS or api.open_access:
                return
        elif auth.startswith("Bearer ") and auth[7:].strip() in api._tokens:
            return
        raise ApiError(401, "Unauthorized", "Unauthorized")

    # ---- discovery ----
    def _discovery(self, path):
        api = self.api
        aggregated = self._accepts(AGGREGATED_MEDIA)
        if path == "/api":
            if aggregated:
                return self._send_obj(_aggregated(""), content_type=AGGREGATED_CT)
            return self._send_obj({"kind": "APIVersions", "versions": ["v1"],
                                   "serverAddressByClientCIDRs": [
                                       {"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": f"{api.host}:{api.port}"}]})
        if path == "/apis":
            if aggregated:
                return self._send_obj(_aggregated(None), content_type=AGGREGATED_CT)
            return self._send_obj({"kind": "APIGroupList", "apiVersion": "v1",
                                   "groups": [_api_group(g) for g in GROUPS]})
        if path == "/api/v1":
            return self._send_obj(_resource_list("", "v1"))
        parts = path.split("/")  # /apis/<group>[/<version>]
        if len(parts) == 3:
            return self._send_obj(dict(_api_group(parts[2]), kind="APIGroup", apiVersion="v1"))
        return self._send_obj(_resource_list(parts[2], parts[3]))

    # ---- get ----
    def _get(self, res, ns, name, q, as_table):
        rec = self.api._get_rec(res, ns, name)
        if rec is None:
            raise ApiError(404, "NotFound", f'{res.name}{"." + res.group if res.group else ""}'
                                            f' "{name}" not found',
                           {"name": name, "group": res.group, "kind": res.name})
        if as_table:
            return self._send_obj(tables.table(res.name, [rec.obj],
                                               {"resourceVersion": str(rec.rv)},
                                               q.get("includeObject", "Metadata")))
        self._send(200, rec.raw)

    # ---- list ----
    def _list(self, res, ns, q, as_table):
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid limit: {q.get('limit')}")
        fsel = parse_field_selector(res, q.get("fieldSelector"))
        lsel = parse_label_selector(q.get("labelSelector"))
        cont = decode_continue(q["continue"]) if q.get("continue") else None
        recs, list_rv, next_start, remaining = self.api._list_page(res, ns, limit, cont,
                                                                   fsel, lsel)
        meta = {"resourceVersion": str(list_rv)}
        if next_start is not None:
            meta["continue"] = encode_continue(list_rv if not (cont and cont[0] == -1)
                                               else -1, next_start)
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        if as_table:
            return self._send_obj(tables.table(res.name, [r.obj for r in recs], meta,
                                               q.get("includeObject", "Metadata")))
        head = b'{"kind":"%s","apiVersion":"%s","metadata":%s,"items":[' % (
            res.list_kind.encode(), res.group_version.encode(), _dumps(meta))
        self._send(200, b"".join((head, b",".join(r.raw for r in recs), b"]}")))

    # ---- watch ----
    def _watch(self, res, ns, name, q, as_table):
        api = self.api
        if name is not None:  # /.../services/NAME?watch=1 is metadata.name=NAME
            q["fieldSelector"] = ",".join(filter(None, (q.get("fieldSelector"),
                                                        f"metadata.name={name}")))
        fsel = parse_field_selector(res, q.get("fieldSelector"))
        lsel = parse_label_selector(q.get("labelSelector"))
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else \
                api.default_watch_timeout
            rv_param = q.get("resourceVersion", "")
            start_rv = int(rv_param) if rv_param not in ("", "0") else None
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid resourceVersion or timeoutSeconds")
        if timeout <= 0:  # kube-apiserver: 0 means its default
            timeout = api.default_watch_timeout
        include = q.get("includeObject", "Metadata")
        deadline = time.monotonic() + timeout

        def matches(rec):
            return (ns is None or rec.ns == ns) and (fsel is None or fsel(rec.obj)) and \
                (lsel is None or lsel(rec.obj))

        first = [True]

        def line(type, rec):
            if as_table:
                obj = tables.table(res.name, [rec.obj], {"resourceVersion": str(rec.rv)},
                                   include, columns=first[0])
                first[0] = False
                return _dumps({"type": type, "object": obj}) + b"\n"
            return b'{"type":"%s","object":%s}\n' % (type.encode(), rec.raw)

        initial, pos, expired = api._watch_start(res, start_rv, matches)
        if expired and api.watch_expired == "http":
            raise ApiError(410, "Expired", expired)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.record.code = 200
        if expired:
            self._chunk(_dumps({"type": "ERROR",
                                "object": status_body(410, "Expired", expired)}) + b"\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        w = api._watch_register(self, res.name)
        try:
            if initial and not api._wait_unstalled(w):
                if w.dropped:
                    self.close_connection = True
                    return  # abrupt: no terminating chunk
                initial = []  # stopping: the loop below ends the stream
            for rec in initial:
                self._chunk(line("ADDED", rec))
            next_bookmark = time.monotonic() + api.bookmark_interval
            while True:
                batch, garbage, end, err, upto = api._watch_wait(
                    w, res.name, pos, deadline, next_bookmark if bookmarks else None)
                if w.dropped:
                    self.close_connection = True
                    return  # abrupt: no terminating chunk
                for g in garbage:
                    self._chunk(g)
                if err:
                    self._chunk(_dumps({"type": "ERROR",
                                        "object": status_body(410, "Expired", err)}) + b"\n")
                    break
                for ev in batch:
                    pos = ev.rv
                    new_ok = matches(ev.rec)
                    old_ok = ev.old is not None and matches(ev.old)
                    if ev.type == "MODIFIED" and new_ok != old_ok:
                        # A change that moves the object into / out of the selection.
                        self._chunk(line("ADDED" if new_ok else "DELETED", ev.rec))
                    elif new_ok or (ev.type == "DELETED" and old_ok):
                        self._chunk(line(ev.type, ev.rec))
                # Every event of this resource up to `upto` has now been sent.
                pos = max(pos, upto)
                if end:
                    break
                now = time.monotonic()
                if bookmarks and now >= next_bookmark:
                    self._chunk(_dumps({"type": "BOOKMARK", "object": {
                        "kind": "Table" if as_table else res.kind,
                        "apiVersion": "meta.k8s.io/v1" if as_table else res.group_version,
                        "metadata": {"resourceVersion": str(pos)}}}) + b"\n")
                    next_bookmark = now + api.bookmark_interval
            self.wfile.write(b"0\r\n\r\n")
        finally:
            api._watch_unregister(w)


def _route(path, q):
    """(verb, resource, namespace, name) for a path; verb None when nothing matches."""
    if path == "/version":
        return "version", None, None, None
    if path in ("/healthz", "/livez", "/readyz"):
        return "health", None, None, None
    if path in ("/api", "/apis", "/api/v1") or \
            (path.startswith("/apis/") and path.count("/") in (2, 3) and
             path.split("/")[2] in GROUPS and
             (path.count("/") == 2 or path.split("/")[3] in GROUPS[path.split("/")[2]])):
        return "discovery", None, None, None
    parts = path.split("/")[1:]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3 and parts[2] in GROUPS.get(parts[1], ()):
        group, rest = parts[1], parts[3:]
    else:
        return None, None, None, None
    ns = name = None
    if len(rest) in (3, 4) and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest or len(rest) > 2:
        return None, None, None, None
    res = RESOURCES.get(rest[0])
    if res is None or res.group != group or (ns is not None and not res.namespaced):
        return None, None, None, None
    watch = q.get("watch") in ("true", "1")
    if len(rest) == 2:
        name = rest[1]
        if res.namespaced and ns is None:
            return None, None, None, None
        return ("watch" if watch else "get"), res.name, ns, name  # watch one object
    return ("watch" if watch else "list"), res.name, ns, None


def _api_group(group):
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in GROUPS[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def _resource_list(group, version):
    gv = f"{group}/{version}" if group else version
    out = {"kind": "APIResourceList", "groupVersion": gv, "resources": []}
    if group:
        out["apiVersion"] = "v1"
    for r in RESOURCES.values():
        if r.group == group and r.version == version:
            d = {"name": r.name, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": VERBS}
            if r.short_names:
                d["shortNames"] = r.short_names
            if r.categories:
                d["categories"] = r.categories
            out["resources"].append(d)
    return out


def _aggregated(group):
    """apidiscovery.k8s.io/v2 APIGroupDiscoveryList: "" for /api, None for /apis."""
    items = []
    groups = [""] if group == "" else list(GROUPS)
    for g in groups:
        versions = []
        for v in (["v1"] if g == "" else GROUPS[g]):
            rs = []
            for r in RESOURCES.values():
                if r.group == g and r.version == v:
                    d = {"resource": r.name,
                         "responseKind": {"group": g, "version": v, "kind": r.kind},
                         "scope": "Namespaced" if r.namespaced else "Cluster",
                         "singularResource": r.singular, "verbs": VERBS}
                    if r.short_names:
                        d["shortNames"] = r.short_names
                    if r.categories:
                        d["categories"] = r.categories
                    rs.append(d)
            versions.append({"version": v, "resources": rs, "freshness": "Current"})
        meta = {"name": g} if g else {}
        meta["creationTimestamp"] = None
        items.append({"metadata": meta, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, api, addr, family):
        self.address_family = family
        self.api = api
        super().__init__(addr, _Handler, bind_and_activate=False)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn): skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        ctx = self.api._ssl_context
        if ctx is None:
            return super().finish_request(request, client_address)
        # The TLS handshake runs here, in the connection's own thread (and stop()
        # can cut it short: the connection is known to the server from now on).
        conn = ctx.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        self.api._conn_opened(conn)
        try:
            conn.settimeout(10)
            conn.do_handshake()
            conn.settimeout(None)
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            self.api._conn_closed(conn)
            try:
                conn.close()
            except OSError:
                pass


def _socket_in_netns(netns, family, addr):
    """A listening socket created inside the network namespace at path netns."""
    result = {}

    def work():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns, os.O_RDONLY)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET; this thread only
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
            result["sock"] = s
        except Exception as e:  # reported to the caller below
            result["err"] = e
    t = threading.Thread(target=work)  # a throwaway thread: its netns dies with it
    t.start()
    t.join()
    if "err" in result:
        raise result["err"]
    return result["sock"]


# ---------------------------------------------------------------- the server
class KubeAPIServer:
    """The test API server. All public methods are thread-safe.

    host, port     where to listen (port 0: ephemeral; see .port/.url after start())
    netns          path of a network namespace (/var/run/netns/X) to listen in
    tls            serve HTTPS with a test CA (tls_dir: where the PKI lives; generated
                   there if missing, else in a temp dir removed by stop())
    san_ips        extra IP SANs for the server cert (e.g. the address in a netns)
    token          accepted bearer token (None: no token auth)
    client_auth    "none" | "optional" | "required": client certificates signed by the
                   test CA authenticate (required: the handshake demands one)
    bookmark_interval  seconds between BOOKMARK events (watches that allow them)
    watch_expired  "event" (200 + ERROR event 410, what kube-apiserver does) | "http" (410)
    history_limit  keep at most this many events (older RVs -> 410), None: unbounded
    default_watch_timeout  seconds a watch without timeoutSeconds lasts
    """

    def __init__(self, host="127.0.0.1", port=0, netns=None, tls=True, tls_dir=None,
                 san_ips=(), token=DEFAULT_TOKEN, client_auth="none", bookmark_interval=1.0,
                 watch_expired="event", history_limit=None, default_watch_timeout=1800.0,
                 max_snapshots=16):
        assert client_auth in ("none", "optional", "required")
        assert watch_expired in ("event", "http")
        self.host = host
        self.port = port
        self.netns = netns
        self.tls = tls
        self.tls_dir = tls_dir
        self.san_ips = tuple(san_ips) + ((host,) if host not in ("127.0.0.1", "0.0.0.0", "::")
                                         else ())
        self._tokens = {token} if token else set()
        self._last_token = token
        self.client_auth = client_auth
        self.bookmark_interval = bookmark_interval
        self.watch_expired = watch_expired
        self.history_limit = history_limit
        self.default_watch_timeout = default_watch_timeout
        self.max_snapshots = max_snapshots
        self.list_delay = 0.0
        self._ssl_context = None
        self._own_tls_dir = False
        self._httpd = None
        self._thread = None
        # store
        self._cond = threading.Condition()
        self._buckets = {name: _Bucket() for name in RESOURCES}
        self._rv = FIRST_RV
        self._history = []          # _Event, consecutive rvs: _history[i].rv == _hist_first + i
        self._hist_first = FIRST_RV + 1
        self._compacted = FIRST_RV  # watching from an rv below this is 410 Expired
        self._snapshots = {}        # (resource, rv) -> (keys, recs) for paginated lists
        # connections, watches, faults, request log
        self._conns = set()
        self._watches = set()
        self._stalled = False
        self._faults = []
        self._log = []
        self._stopping = False
        self.errors = []            # tracebacks of server bugs hit while serving
        for ns in ("default", "kube-system", "kube-public"):
            self.create("namespaces", objects.namespace(ns))

    # ---- lifecycle ----
    def start(self):
        """Listen and serve in a background thread; returns self."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        if self.tls:
            if self.tls_dir is None:
                self.tls_dir = tempfile.mkdtemp(prefix="berth-kubeapi-")
                self._own_tls_dir = True
            tls.make_pki(self.tls_dir, ips=self.san_ips)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.server_cert, self.server_key)
            ctx.set_alpn_protocols(["http/1.1"])  # no h2: watches are HTTP/1.1 chunked
            if self.client_auth != "none":
                ctx.load_verify_locations(self.ca_file)
                ctx.verify_mode = ssl.CERT_REQUIRED if self.client_auth == "required" else \
                    ssl.CERT_OPTIONAL
            self._ssl_context = ctx
        httpd = _HTTPServer(self, (self.host, self.port), family)
        try:
            if self.netns:
                httpd.socket.close()
                httpd.socket = _socket_in_netns(self.netns, family, (self.host, self.port))
                httpd.server_address = httpd.socket.getsockname()
            else:
                httpd.server_bind()
            httpd.server_activate()
        except BaseException:
            httpd.server_close()
            raise
        self._httpd = httpd
        self.port = httpd.socket.getsockname()[1]
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="kubeapi",
                                        daemon=True)
        self._thread.start()

    def stop(self):
        """Stop serving, end every connection (watches included), remove temp files."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            _abort(conn)
        deadline = time.monotonic() + 5
        with self._cond:
            while self._conns and time.monotonic() < deadline:
                self._cond.wait(0.05)
        if self._own_tls_dir and self.tls_dir:
            shutil.rmtree(self.tls_dir, ignore_errors=True)
            self.tls_dir = None
            self._own_tls_dir = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- where and how to connect ----
    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    ca_file = property(lambda self: os.path.join(self.tls_dir, "ca.crt"))
    server_cert = property(lambda self: os.path.join(self.tls_dir, "server.crt"))
    server_key = property(lambda self: os.path.join(self.tls_dir, "server.key"))
    client_cert = property(lambda self: os.path.join(self.tls_dir, "client.crt"))
    client_key = property(lambda self: os.path.join(self.tls_dir, "client.key"))

    @property
    def token(self):
        """One accepted token (the most recently set), or None."""
        return self._last_token if self._tokens else None

    @property
    def open_access(self):
        return not self._tokens and self.client_auth == "none"

    def set_token(self, token, keep_old=False):
        """Rotate the accepted bearer token (keep_old: accept both for a transition).
        None disables token auth."""
        with self._cond:
            if not keep_old:
                self._tokens = set()
            if token:
                self._tokens.add(token)
            self._last_token = token

    def kubeconfig(self, path, token=None, client_cert=False, server=None):
        """Write a kubeconfig (JSON, which kubectl and YAML readers accept) for this server:
        CA file, bearer token (default: the accepted one) and optionally the client cert."""
        user = {}
        tok = token if token is not None else self.token
        if tok:
            user["token"] = tok
        if client_cert:
            user["client-certificate"] = self.client_cert
            user["client-key"] = self.client_key
        cluster = {"server": server or self.url}
        if self.tls:
            cluster["certificate-authority"] = self.ca_file
        cfg = {"apiVersion": "v1", "kind": "Config", "preferences": {},
               "clusters": [{"name": "berth-test", "cluster": cluster}],
               "users": [{"name": "berth-test", "user": user}],
               "contexts": [{"name": "berth-test",
                             "context": {"cluster": "berth-test", "user": "berth-test",
                                         "namespace": "default"}}],
               "current-context": "berth-test"}
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return path

    # ---- objects ----
    @staticmethod
    def _res(resource):
        if resource not in RESOURCES:
            raise KeyError(f"unknown resource {resource!r} (one of {sorted(RESOURCES)})")
        return RESOURCES[resource]

    @property
    def resource_version(self):
        """The current (latest) resourceVersion, as an int."""
        with self._cond:
            return self._rv

    def _key(self, res, ns, name):
        return f"{ns}/{name}" if res.namespaced else name

    def _put_locked(self, res, obj, must_exist=None, sort=True):
        """Store obj (create or replace) with the next rv and record its event."""
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ValueError("object without metadata.name")
        ns = None
        if res.namespaced:
            ns = meta.setdefault("namespace", "default")
            if ns not in self._buckets["namespaces"].objs:
                self._put_locked(RESOURCES["namespaces"], objects.namespace(ns))
        else:
            meta.pop("namespace", None)
        bucket = self._buckets[res.name]
        key = self._key(res, ns, name)
        old = bucket.objs.get(key)
        if must_exist is True and old is None:
            raise KeyError(f"{res.name} {key} does not exist")
        if must_exist is False and old is not None:
            raise KeyError(f"{res.name} {key} already exists")
        obj.setdefault("kind", res.kind)
        obj.setdefault("apiVersion", res.group_version)
        if old is not None:
            meta["uid"] = old.obj["metadata"]["uid"]
            meta["creationTimestamp"] = old.obj["metadata"]["creationTimestamp"]
        else:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if res.name == "endpointslices":
            self._fill_owner_uid(obj, ns)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        rec = _Rec(obj, self._rv, key, ns)
        bucket.objs[key] = rec
        if old is None:
            if sort:
                bisect.insort(bucket.keys, key)
            else:
                bucket.keys.append(key)
        self._append_event(_Event(self._rv, "MODIFIED" if old else "ADDED", res.name, rec, old))
        return rec

    def _fill_owner_uid(self, obj, ns):
        svc_name = obj["metadata"].get("labels", {}).get("kubernetes.io/service-name")
        svc = self._buckets["services"].objs.get(f"{ns}/{svc_name}")
        for ref in obj["metadata"].get("ownerReferences", []):
            if ref.get("kind") == "Service" and not ref.get("uid") and svc is not None:
                ref["uid"] = svc.obj["metadata"]["uid"]

    def _append_event(self, ev):
        self._history.append(ev)
        if self.history_limit is not None and len(self._history) > self.history_limit:
            self._compact_locked(self._history[-self.history_limit].rv - 1)
        self._cond.notify_all()

    def create(self, resource, obj):
        """Add obj (a dict, e.g. from objects.py); returns the stored copy. The server
        fills kind/apiVersion, metadata.uid/creationTimestamp/resourceVersion and
        creates the namespace if needed. Objects are not validated: a schema-breaking
        one (objects.malformed_service) is served as-is."""
        res = self._res(resource)
        with self._cond:
            return copy.deepcopy(self._put_locked(res, copy.deepcopy(obj), must_exist=False).obj)

    def update(self, resource, obj):
        """Replace an existing object (MODIFIED event); uid and creationTimestamp are kept."""
        res = self._res(resource)
        with self._cond:
            return copy.deepcopy(self._put_locked(res, copy.deepcopy(obj), must_exist=True).obj)

    def apply(self, resource, obj):
        """Create or replace."""
        res = self._res(resource)
        with self._cond:
            return copy.deepcopy(self._put_locked(res, copy.deepcopy(obj)).obj)

    def modify(self, resource, name, fn, namespace="default"):
        """Read-modify-write: fn(obj) mutates a copy of the stored object in place."""
        res = self._res(resource)
        with self._cond:
            rec = self._buckets[res.name].objs.get(self._key(res, namespace, name))
            if rec is None:
                raise KeyError(f"{resource} {namespace}/{name} does not exist")
            obj = copy.deepcopy(rec.obj)
            fn(obj)
            return copy.deepcopy(self._put_locked(res, obj, must_exist=True).obj)

    def delete(self, resource, name, namespace="default"):
        """Delete (DELETED event carrying the last state at the deletion's rv)."""
        res = self._res(resource)
        with self._cond:
            bucket = self._buckets[res.name]
            key = self._key(res, namespace, name)
            old = bucket.objs.pop(key, None)
            if old is None:
                raise KeyError(f"{resource} {key} does not exist")
            del bucket.keys[bisect.bisect_left(bucket.keys, key)]
            self._rv += 1
            obj = copy.deepcopy(old.obj)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            rec = _Rec(obj, self._rv, key, old.ns)
            self._append_event(_Event(self._rv, "DELETED", res.name, rec, old))
            return copy.deepcopy(obj)

    def get(self, resource, name, namespace="default"):
        """A copy of the stored object, or None."""
        res = self._res(resource)
        with self._cond:
            rec = self._buckets[res.name].objs.get(self._key(res, namespace, name))
            return copy.deepcopy(rec.obj) if rec else None

    def list(self, resource, namespace=None):
        """Copies of the stored objects, in list order."""
        res = self._res(resource)
        with self._cond:
            b = self._buckets[res.name]
            lo, hi = b.ns_range(namespace if res.namespaced else None)
            return [copy.deepcopy(b.objs[k].obj) for k in b.keys[lo:hi]]

    def seed(self, services, endpoints_per_service=0, namespaces=1, nodes=3,
             max_endpoints_per_slice=100):
        """Bulk-add a cluster (objects.seed_objects): 10k services with 10 endpoints
        each take a few seconds. Returns the number of objects added."""
        n = 0
        with self._cond:
            touched = set()
            for resource, obj in objects.seed_objects(services, endpoints_per_service,
                                                      namespaces, nodes,
                                                      max_endpoints_per_slice):
                self._put_locked(RESOURCES[resource], obj, sort=False)
                touched.add(resource)
                n += 1
            for r in touched | {"namespaces"}:
                b = self._buckets[r]
                b.keys = sorted(set(b.keys))
        return n

    # ---- fault injection and observation ----
    def compact(self, rv=None):
        """Forget the event history up to rv (default: all of it). A watch from an
        older rv, or a continue token from before rv, then gets 410 Expired."""
        with self._cond:
            self._compact_locked(self._rv if rv is None else rv)
            self._cond.notify_all()

    def _compact_locked(self, rv):
        rv = min(rv, self._rv)
        if rv <= self._compacted:
            return
        del self._history[:max(0, rv - self._hist_first + 1)]
        self._hist_first = rv + 1
        self._compacted = rv
        for k in [k for k in self._snapshots if k[1] < rv]:
            del self._snapshots[k]

    @property
    def compacted_rv(self):
        """Watches must start at or after this rv."""
        with self._cond:
            return self._compacted

    def expire_continue_tokens(self):
        """Every continue token handed out so far now gets 410 Expired."""
        with self._cond:
            self._snapshots.clear()

    def drop_watches(self, resource=None):
        """Abruptly close open watch connections (no terminating chunk; the client
        sees the stream cut mid-body). Returns how many were dropped."""
        with self._cond:
            ws = [w for w in self._watches if resource in (None, w.res)]
            for w in ws:
                w.dropped = True
            self._cond.notify_all()
        for w in ws:
            _abort(w.handler.connection)
        return len(ws)

    def stall_watches(self):
        """Watch streams (open and new) send nothing at all, not even bookmarks or the
        end at timeoutSeconds, until release_watches(). The connections stay open."""
        with self._cond:
            self._stalled = True

    def release_watches(self):
        with self._cond:
            self._stalled = False
            self._cond.notify_all()

    def inject_watch_garbage(self, line=DEFAULT_GARBAGE, resource=None):
        """Send `line` (bytes; default a JSON syntax error + newline) as one chunk on
        every open watch stream. Returns how many streams got it."""
        with self._cond:
            ws = [w for w in self._watches if resource in (None, w.res)]
            for w in ws:
                w.garbage.append(line)
            self._cond.notify_all()
        return len(ws)

    def fail_requests(self, code=500, verb=None, resource=None, times=1, retry_after=None):
        """The next `times` requests matching verb ("list", "watch", "get", ...) and
        resource answer `code` with a Status body (and Retry-After if given)."""
        with self._cond:
            self._faults.append([verb, resource, code, times, retry_after])

    def _take_fault(self, verb, resource):
        with self._cond:
            for f in self._faults:
                if f[0] in (None, verb) and f[1] in (None, resource) and f[3] > 0:
                    f[3] -= 1
                    if f[3] == 0:
                        self._faults.remove(f)
                    return f[2], f[4]
        return None

    def open_watches(self, resource=None):
        """How many watch streams are open now (for resource, or all)."""
        with self._cond:
            return sum(1 for w in self._watches if resource in (None, w.res))

    def wait_for_watches(self, n=1, resource=None, timeout=10):
        """Block until at least n watches (for resource) are open; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for w in self._watches if resource in (None, w.res)) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def requests(self, verb=None, resource=None, path=None, namespace=None):
        """RequestRecords seen (every request, authenticated or not), in order, filtered:
        verb in version|health|discovery|get|list|watch|None (unmatched path)."""
        with self._cond:
            return [r for r in self._log
                    if verb in (None, r.verb) and resource in (None, r.resource) and
                    path in (None, r.path) and namespace in (None, r.namespace)]

    def count(self, verb=None, resource=None, path=None, namespace=None):
        return len(self.requests(verb, resource, path, namespace))

    def reset_requests(self):
        with self._cond:
            self._log.clear()

    # ---- internals used by the handler ----
    def _record(self, method, path, query, verb, resource, namespace, name):
        r = RequestRecord(method, path, query, verb, resource, namespace, name)
        with self._cond:
            self._log.append(r)
        return r

    def _internal_error(self, tb):
        with self._cond:
            self.errors.append(tb)

    def _conn_opened(self, conn):
        with self._cond:
            self._conns.add(conn)

    def _conn_closed(self, conn):
        with self._cond:
            self._conns.discard(conn)
            self._cond.notify_all()

    def _get_rec(self, res, ns, name):
        with self._cond:
            return self._buckets[res.name].objs.get(self._key(res, ns, name))

    def _list_page(self, res, ns, limit, cont, fsel, lsel):
        """(records, list rv, next start key or None, remainingItemCount or None).

        A first page with a limit snapshots the resource at the current rv; its
        continue tokens page through that snapshot (etcd serves them at the list's
        revision). rv -1 in a token means "inconsistent continue" on current data.
        """
        with self._cond:
            bucket = self._buckets[res.name]
            if cont and cont[0] != -1:
                rv = cont[0]
                snap = self._snapshots.get((res.name, rv))
                if rv < self._compacted or snap is None:
                    raise ApiError(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue "
                        "parameter, or use the continue token in this response to retrieve "
                        "the remainder of the results. Continuing with the provided token "
                        "results in an inconsistent list - objects that were created, "
                        "modified, or deleted between the time the first chunk was returned "
                        "and now may show up in the list.",
                        meta={"continue": encode_continue(-1, cont[1].rstrip("\x00"))})
                keys, recs = snap
            elif limit > 0 and not cont:
                rv = self._rv
                snap = self._snapshots.get((res.name, rv))
                if snap is None:
                    snap = (list(bucket.keys), [bucket.objs[k] for k in bucket.keys])
                    self._snapshots[(res.name, rv)] = snap
                    while len(self._snapshots) > self.max_snapshots:
                        del self._snapshots[next(iter(self._snapshots))]
                keys, recs = snap
            else:
                rv = self._rv
                keys, recs = bucket.keys, None
            lo, hi = _ns_range(keys, ns)
            if cont:
                lo = max(lo, bisect.bisect_left(keys, cont[1]))
            get = (lambda i: recs[i]) if recs is not None else (lambda i: bucket.objs[keys[i]])
            out = []
            selecting = fsel is not None or lsel is not None
            i = lo
            while i < hi and (limit <= 0 or len(out) < limit):
                rec = get(i)
                if not selecting or ((fsel is None or fsel(rec.obj)) and
                                     (lsel is None or lsel(rec.obj))):
                    out.append(rec)
                i += 1
            next_start = remaining = None
            if limit > 0 and out:
                more = i < hi
                if selecting:
                    more = any((fsel is None or fsel(get(j).obj)) and
                               (lsel is None or lsel(get(j).obj)) for j in range(i, hi))
                if more:
                    next_start = out[-1].key
                    remaining = None if selecting else hi - i
            return out, rv, next_start, remaining

    def _watch_start(self, res, start_rv, matches):
        """(initial records, start position, expired message or None)."""
        with self._cond:
            if start_rv is None:
                b = self._buckets[res.name]
                return [r for r in (b.objs[k] for k in b.keys) if matches(r)], self._rv, None
            if start_rv < self._compacted:
                return [], start_rv, (f"too old resource version: {start_rv} "
                                      f"({self._compacted})")
            return [], start_rv, None

    def _watch_register(self, handler, res):
        w = _Watch(handler, res)
        with self._cond:
            self._watches.add(w)
            self._cond.notify_all()
        return w

    def _watch_unregister(self, w):
        with self._cond:
            self._watches.discard(w)

    def _wait_unstalled(self, w):
        """Wait while watches are stalled; False if the watch was dropped or we stop."""
        with self._cond:
            while self._stalled and not (w.dropped or self._stopping):
                self._cond.wait()
            return not (w.dropped or self._stopping)

    def _watch_wait(self, w, res, pos, deadline, next_bookmark):
        """Wait until the watch has something to do.
        Returns (events after pos for res, garbage lines, end of stream?, 410 message,
        the rv up to which the returned events are complete)."""
        with self._cond:
            while True:
                if w.dropped or self._stopping:
                    return [], [], True, None, pos
                now = time.monotonic()
                if not self._stalled:
                    garbage, w.garbage = w.garbage, []
                    if pos < self._compacted:
                        return [], garbage, True, (f"too old resource version: {pos} "
                                                   f"({self._compacted})"), pos
                    start = max(0, pos + 1 - self._hist_first)
                    batch = [e for e in self._history[start:] if e.res == res]
                    end = now >= deadline
                    if batch or garbage or end or (next_bookmark and now >= next_bookmark):
                        return batch, garbage, end, None, max(pos, self._rv)
                    wake = min(deadline, next_bookmark or deadline)
                    self._cond.wait(max(0.001, wake - now))
                else:
                    self._cond.wait()


def _ns_range(keys, ns):
    if ns is None:
        return 0, len(keys)
    return bisect.bisect_left(keys, ns + "/"), bisect.bisect_left(keys, ns + "0")


def _abort(conn):
    """Cut a connection from another thread: shut the TCP socket down under any TLS
    layer (no close_notify, no terminating chunk)."""
    try:
        socket.socket.shutdown(conn, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass


# ---------------------------------------------------------------- CLI
def main(argv=None):
    p = argparse.ArgumentParser(description="berth's test Kubernetes API server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: ephemeral (see the READY line)")
    p.add_argument("--tls-dir", help="PKI directory (generated if missing); default: temp dir")
    p.add_argument("--no-tls", action="store_true", help="plain HTTP")
    p.add_argument("--san-ip", action="append", default=[], help="extra server cert IP SAN")
    p.add_argument("--token", default=DEFAULT_TOKEN, help="accepted bearer token ('' = none)")
    p.add_argument("--client-auth", choices=("none", "optional", "required"), default="none")
    p.add_argument("--bookmark-interval", type=float, default=1.0)
    p.add_argument("--seed-services", type=int, default=0)
    p.add_argument("--seed-endpoints-per-service", type=int, default=0)
    p.add_argument("--seed-namespaces", type=int, default=1)
    p.add_argument("--seed-nodes", type=int, default=3)
    p.add_argument("--kubeconfig", help="write a kubeconfig for this server to this file")
    a = p.parse_args(argv)
    api = KubeAPIServer(host=a.host, port=a.port, tls=not a.no_tls, tls_dir=a.tls_dir,
                        san_ips=a.san_ip, token=a.token or None, client_auth=a.client_auth,
                        bookmark_interval=a.bookmark_interval)
    if a.seed_services:
        t = time.monotonic()
        n = api.seed(a.seed_services, a.seed_endpoints_per_service, a.seed_namespaces,
                     a.seed_nodes)
        print(f"seeded {n} objects in {time.monotonic() - t:.2f}s", file=sys.stderr, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    api.start()
    try:
        if a.kubeconfig:
            api.kubeconfig(a.kubeconfig)
        print(f"READY {api.url}", flush=True)
        while not done.wait(1):
            pass
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
