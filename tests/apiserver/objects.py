# SPDX-License-Identifier: Apache-2.0
"""Realistic Kubernetes objects for the test API server.

Factories return plain dicts shaped exactly as kube-apiserver serves them
(defaults filled in: clusterIPs, ipFamilies, internalTrafficPolicy, ...).
The server adds uid, creationTimestamp and resourceVersion when an object
is stored. Addresses stay in 198.18.0.0/15: services in 198.18.128.0/17,
endpoints (pods) in 198.19.0.0/16.
"""
import hashlib
import ipaddress

SERVICE_NET = ipaddress.ip_network("198.18.128.0/17")
POD_NET = ipaddress.ip_network("198.19.0.0/16")
MANAGED_BY = "endpointslice-controller.k8s.io"


def _ip(n):
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"  # fast: bulk seeding


def service_ip(i):
    """The i-th service cluster IP (i >= 0): 198.18.128.10 upwards, never .0 of the range."""
    return _ip(int(SERVICE_NET.network_address) + 10 + i % (SERVICE_NET.num_addresses - 12))


def pod_ip(i):
    """The i-th pod address (i >= 0): 198.19.0.1 upwards; wraps after 65534."""
    return _ip(int(POD_NET.network_address) + 1 + i % (POD_NET.num_addresses - 2))


def port(port, name=None, protocol="TCP", target_port=None, node_port=None, app_protocol=None):
    """A ServicePort. target_port may be an int or a (named) string; default: port."""
    p = {}
    if name is not None:
        p["name"] = name
    p["protocol"] = protocol
    if app_protocol is not None:
        p["appProtocol"] = app_protocol
    p["port"] = port
    p["targetPort"] = port if target_port is None else target_port
    if node_port is not None:
        p["nodePort"] = node_port
    return p


def service(name, namespace="default", cluster_ip="198.18.128.10", ports=None, type="ClusterIP",
            selector=None, labels=None, session_affinity="None", affinity_timeout=10800,
            external_traffic_policy="Cluster", internal_traffic_policy="Cluster",
            external_ips=None, load_balancer_ips=None, load_balancer_source_ranges=None,
            health_check_node_port=None, external_name=None):
    """A core/v1 Service as the API server returns it, defaults included.

    ports: list of port(...) dicts (default: one "http" 80/TCP -> 8080).
    load_balancer_ips: status.loadBalancer.ingress addresses (type LoadBalancer).
    """
    spec = {}
    if ports is None:
        ports = [port(80, "http", target_port=8080)]
    if type != "ExternalName":
        spec["ports"] = ports
        spec["selector"] = selector if selector is not None else {"app": name}
        spec["clusterIP"] = cluster_ip
        spec["clusterIPs"] = [cluster_ip] if cluster_ip and cluster_ip != "None" else \
            (["None"] if cluster_ip == "None" else [])
    spec["type"] = type
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    spec["sessionAffinity"] = session_affinity
    if session_affinity == "ClientIP":
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity_timeout}}
    if type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = external_traffic_policy
        if health_check_node_port is not None:
            spec["healthCheckNodePort"] = health_check_node_port
    if load_balancer_source_ranges:
        spec["loadBalancerSourceRanges"] = list(load_balancer_source_ranges)
    if type == "ExternalName":
        spec["externalName"] = external_name or f"{name}.example.com"
    else:
        spec["ipFamilies"] = ["IPv4"]
        spec["ipFamilyPolicy"] = "SingleStack"
        spec["internalTrafficPolicy"] = internal_traffic_policy
    if type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = True
    status = {"loadBalancer": {}}
    if load_balancer_ips:
        status["loadBalancer"]["ingress"] = [{"ip": ip, "ipMode": "VIP"}
                                             for ip in load_balancer_ips]
    meta = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"kind": "Service", "apiVersion": "v1", "metadata": meta, "spec": spec,
            "status": status}


def endpoint(ip, node=None, ready=True, serving=None, terminating=False, zone="zone-a",
             pod=None, namespace="default", hostname=None):
    """One EndpointSlice endpoint (a pod). serving defaults to ready."""
    e = {"addresses": [ip],
         "conditions": {"ready": ready, "serving": ready if serving is None else serving,
                        "terminating": terminating}}
    if hostname:
        e["hostname"] = hostname
    if pod:
        e["targetRef"] = {"kind": "Pod", "namespace": namespace, "name": pod}
    if node:
        e["nodeName"] = node
    if zone:
        e["zone"] = zone
    return e


def slice_port(port, name="http", protocol="TCP", app_protocol=None):
    """An EndpointSlice port: the *target* port number, named like the service port."""
    p = {"name": name, "protocol": protocol, "port": port}
    if app_protocol:
        p["appProtocol"] = app_protocol
    return p


def endpointslice(service_name, namespace="default", endpoints=(), ports=None, name=None,
                  address_type="IPv4", managed_by=MANAGED_BY):
    """A discovery.k8s.io/v1 EndpointSlice for service_name.

    endpoints: endpoint(...) dicts; ports: slice_port(...) dicts (default http 8080/TCP).
    The name defaults to "<service>-<5 chars>" like the controller's generateName.
    """
    if name is None:
        h = hashlib.sha1(f"{namespace}/{service_name}".encode()).hexdigest()[:5]
        name = f"{service_name}-{h}"[:63]
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name,
                                    "endpointslice.kubernetes.io/managed-by": managed_by},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                              "name": service_name, "uid": "",
                                              "controller": True,
                                              "blockOwnerDeletion": True}]},
            "addressType": address_type,
            "endpoints": list(endpoints),
            "ports": [slice_port(8080)] if ports is None else list(ports)}


def pod(name, namespace="default", node=None, ip=None, phase="Running", labels=None,
        host_network=False):
    """A core/v1 Pod with one ready container (when Running)."""
    running = phase == "Running"
    spec = {"containers": [{"name": "app", "image": "busybox"}], "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "serviceAccountName": "default"}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    status = {"phase": phase,
              "conditions": [{"type": "Ready", "status": "True" if running else "False"}],
              "containerStatuses": [{"name": "app", "ready": running, "restartCount": 0,
                                     "image": "busybox", "imageID": "", "started": running,
                                     "state": {"running": {}} if running else
                                     {"waiting": {"reason": "ContainerCreating"}}}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    meta = {"name": name, "namespace": namespace, "labels": dict(labels or {"app": name})}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status}


def node(name, address="198.18.0.10", ready=True, pod_cidr=None, labels=None,
         kubelet_version="v1.32.4", unschedulable=False):
    """A core/v1 Node with an InternalIP and a Ready condition."""
    meta = {"name": name, "labels": dict(labels or {"kubernetes.io/hostname": name,
                                                    "kubernetes.io/os": "linux"})}
    spec = {}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    if unschedulable:
        spec["unschedulable"] = True
    status = {"addresses": [{"type": "InternalIP", "address": address},
                            {"type": "Hostname", "address": name}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                              "reason": "KubeletReady" if ready else "KubeletNotReady"}],
              "nodeInfo": {"kubeletVersion": kubelet_version, "osImage": "Debian GNU/Linux 12",
                           "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7",
                           "operatingSystem": "linux", "architecture": "amd64"}}
    return {"kind": "Node", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status}


def namespace(name):
    return {"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def malformed_service(name, namespace="default"):
    """Valid JSON that fails the Service schema: spec.ports is not a list."""
    return {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": "notalist", "clusterIP": "198.18.255.250", "type": "ClusterIP"}}


def seed_objects(services, endpoints_per_service=0, namespaces=1, nodes=3,
                 max_endpoints_per_slice=100):
    """Yield (resource, obj) for a bulk cluster: `services` services spread over
    `namespaces` namespaces (bench-0 ...), each with `endpoints_per_service` ready
    endpoints spread over node-0 ... node-{nodes-1} and split into slices of at
    most max_endpoints_per_slice, like the EndpointSlice controller does.

    Shapes vary like a real cluster: every 3rd service also has https 443 -> "https"
    (a named target port), every 10th is a NodePort, every 50th has ClientIP affinity.
    """
    node_names = [f"node-{i}" for i in range(nodes)]
    for i, n in enumerate(node_names):
        yield "nodes", node(n, address=f"198.18.0.{10 + i % 240}")
    ep = 0
    for i in range(services):
        ns = f"bench-{i % namespaces}"
        name = f"svc-{i:05d}"
        nodeport = i % 10 == 9
        ports = [port(80, "http", target_port=8080,
                      node_port=30000 + i % 2768 if nodeport else None)]
        sports = [slice_port(8080, "http")]
        if i % 3 == 0:
            ports.append(port(443, "https", target_port="https",
                              node_port=30000 + (i + 1) % 2768 if nodeport else None))
            sports.append(slice_port(8443, "https"))
        yield "services", service(
            name, ns, cluster_ip=service_ip(i), ports=ports,
            type="NodePort" if nodeport else "ClusterIP",
            session_affinity="ClientIP" if i % 50 == 49 else "None")
        left = endpoints_per_service
        part = 0
        while left > 0:
            count = min(left, max_endpoints_per_slice)
            eps = []
            for _ in range(count):
                eps.append(endpoint(pod_ip(ep), node=node_names[ep % nodes] if nodes else None,
                                    pod=f"{name}-pod-{ep}", namespace=ns))
                ep += 1
            yield "endpointslices", endpointslice(name, ns, eps, sports,
                                                  name=f"{name}-{part:05x}")
            left -= count
            part += 1
