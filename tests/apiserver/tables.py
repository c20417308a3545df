# SPDX-License-Identifier: Apache-2.0
"""Server-side printing: meta.k8s.io/v1 Table rows, as kube-apiserver makes them.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and
prints the cells it gets. The columns and cell formats below follow
kubernetes/pkg/printers/internalversion/printers.go; priority-1 columns are
the ones kubectl shows only with -o wide.
"""
import calendar
import time


def _col(name, type="string", fmt="", priority=0, description=""):
    return {"name": name, "type": type, "format": fmt, "description": description,
            "priority": priority}


NAME_COL = _col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE_COL = _col("Age", description="CreationTimestamp is a timestamp representing the server "
                                  "time when this object was created.")


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(obj, now=None):
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    try:
        created = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<unknown>"
    return human_duration((now or time.time()) - created)


def _labels(d):
    """labels.FormatLabels: sorted k=v pairs or <none>."""
    if not isinstance(d, dict) or not d:
        return "<none>"
    return ",".join(f"{k}={d[k]}" for k in sorted(d))


def _list(v):
    return v if isinstance(v, list) else []


def _dict(v):
    return v if isinstance(v, dict) else {}


# ---- services ----
SERVICE_COLS = [NAME_COL,
                _col("Type", description="Type of the service."),
                _col("Cluster-IP", description="ClusterIP of the service."),
                _col("External-IP", description="External IPs of the service."),
                _col("Port(s)", description="Port(s) exposed by the service."),
                AGE_COL,
                _col("Selector", priority=1, description="Selector of the service.")]


def _lb_ingress(status):
    ing = _list(_dict(_dict(status).get("loadBalancer")).get("ingress"))
    return ",".join(i.get("ip") or i.get("hostname") or "" for i in ing if isinstance(i, dict))


def _service_external_ip(spec, status):
    t = spec.get("type")
    ext = [str(x) for x in _list(spec.get("externalIPs"))]
    if t in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else "<none>"
    if t == "LoadBalancer":
        lb = _lb_ingress(status)
        if ext:
            return ",".join((lb.split(",") if lb else []) + ext)
        return lb or "<pending>"
    if t == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_ports(ports):
    out = []
    for p in _list(ports):
        if not isinstance(p, dict):
            continue
        proto = p.get("protocol", "TCP")
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) or "<none>"


def service_row(obj, now=None):
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    ips = _list(spec.get("clusterIPs"))
    return [obj["metadata"]["name"], str(spec.get("type", "")), ips[0] if ips else "<none>",
            _service_external_ip(spec, status), _service_ports(spec.get("ports")),
            age(obj, now), _labels(spec.get("selector"))]


# ---- endpointslices ----
ENDPOINTSLICE_COLS = [NAME_COL,
                      _col("AddressType", description="Type of address carried by this "
                                                      "EndpointSlice."),
                      _col("Ports", description="Ports of the EndpointSlice."),
                      _col("Endpoints", description="Endpoints of the EndpointSlice."),
                      AGE_COL]


def _more(items, count, limit=3):
    """listWithMoreString: the first 3, then ' + N more...'; empty is <unset>."""
    s = ",".join(items)
    if count > limit:
        return f"{s} + {count - limit} more..."
    return s or "<unset>"


def endpointslice_row(obj, now=None):
    ports = [p for p in _list(obj.get("ports")) if isinstance(p, dict)]
    pnames = []
    for p in ports[:3]:
        if p.get("port") is not None:
            pnames.append(str(p["port"]))
        elif p.get("name") is not None:
            pnames.append(str(p["name"]))
        else:
            pnames.append("*")
    addrs = [a for e in _list(obj.get("endpoints")) if isinstance(e, dict)
             for a in _list(e.get("addresses"))]
    return [obj["metadata"]["name"], str(obj.get("addressType", "")), _more(pnames, len(ports)),
            _more([str(a) for a in addrs[:3]], len(addrs)), age(obj, now)]


# ---- pods ----
POD_COLS = [NAME_COL,
            _col("Ready", description="The aggregate readiness state of this pod for "
                                      "accepting traffic."),
            _col("Status", description="The aggregate status of the containers in this pod."),
            _col("Restarts", description="The number of times the containers in this pod "
                                         "have been restarted and when the last container "
                                         "in this pod has restarted."),
            AGE_COL,
            _col("IP", priority=1, description="IP address allocated to the pod."),
            _col("Node", priority=1, description="Name of the node where the pod is running."),
            _col("Nominated Node", priority=1, description="Name of the node where the pod "
                                                            "is nominated to run."),
            _col("Readiness Gates", priority=1, description="Pod readiness gates.")]


def pod_row(obj, now=None):
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    cs = [c for c in _list(status.get("containerStatuses")) if isinstance(c, dict)]
    total = len(_list(spec.get("containers")))
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in cs)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in cs:
        waiting = _dict(_dict(c.get("state")).get("waiting"))
        if waiting.get("reason"):
            reason = waiting["reason"]
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [obj["metadata"]["name"], f"{ready}/{total}", reason, str(restarts), age(obj, now),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", "<none>"]


# ---- nodes ----
NODE_COLS = [NAME_COL,
             _col("Status", description="The status of the node"),
             _col("Roles", description="The roles of the node"),
             AGE_COL,
             _col("Version", description="Kubelet Version reported by the node."),
             _col("Internal-IP", priority=1, description="List of internal IPs."),
             _col("External-IP", priority=1, description="List of external IPs."),
             _col("OS-Image", priority=1, description="OS Image reported by the node."),
             _col("Kernel-Version", priority=1, description="Kernel Version reported by "
                                                            "the node."),
             _col("Container-Runtime", priority=1, description="Container Runtime Version "
                                                               "reported by the node.")]


def node_row(obj, now=None):
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    ready = "Unknown"
    for c in _list(status.get("conditions")):
        if isinstance(c, dict) and c.get("type") == "Ready":
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        ready += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in _dict(obj["metadata"].get("labels"))
                   if k.startswith("node-role.kubernetes.io/"))
    info = _dict(status.get("nodeInfo"))

    def addr(kind):
        a = [x.get("address") for x in _list(status.get("addresses"))
             if isinstance(x, dict) and x.get("type") == kind]
        return a[0] if a else "<none>"
    return [obj["metadata"]["name"], ready, ",".join(roles) or "<none>", age(obj, now),
            info.get("kubeletVersion", ""), addr("InternalIP"), addr("ExternalIP"),
            info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"),
            info.get("containerRuntimeVersion", "<unknown>")]


# ---- namespaces ----
NAMESPACE_COLS = [NAME_COL,
                  _col("Status", description="The status of the namespace"),
                  AGE_COL]


def namespace_row(obj, now=None):
    return [obj["metadata"]["name"], _dict(obj.get("status")).get("phase", ""), age(obj, now)]


PRINTERS = {
    "services": (SERVICE_COLS, service_row),
    "endpointslices": (ENDPOINTSLICE_COLS, endpointslice_row),
    "pods": (POD_COLS, pod_row),
    "nodes": (NODE_COLS, node_row),
    "namespaces": (NAMESPACE_COLS, namespace_row),
}


def row(resource, obj, include_object="Metadata", now=None):
    """One Table row for obj. include_object: None | Metadata | Object (the query param)."""
    fn = PRINTERS[resource][1]
    try:
        cells = fn(obj, now)
    except (KeyError, TypeError, ValueError, AttributeError):
        # A schema-breaking object (fault injection) still gets a row, as far as it goes.
        cells = [obj.get("metadata", {}).get("name", "")] + \
            ["<unknown>"] * (len(PRINTERS[resource][0]) - 1)
    r = {"cells": cells}
    if include_object == "Object":
        r["object"] = obj
    elif include_object != "None":
        r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj.get("metadata", {})}
    return r


def table(resource, objs, list_meta, include_object="Metadata", columns=True):
    """A meta.k8s.io/v1 Table; columns=False omits columnDefinitions (later watch events)."""
    now = time.time()
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": PRINTERS[resource][0] if columns else None,
            "rows": [row(resource, o, include_object, now) for o in objs]}
