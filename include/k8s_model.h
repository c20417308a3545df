/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The slice of the Kubernetes API berth needs, as C structs: Services,
 * EndpointSlices (discovery.k8s.io/v1), Pods and Nodes. Only IPv4 is kept.
 *
 * Decoding (k8s_decode.c) is a pure function from a jansson object to one of
 * these: unknown fields are ignored, required fields are checked, every
 * string and array is bounded. Strings are heap copies (names are short but
 * there are 100k endpoints: fixed 254-byte buffers would cost tens of MiB).
 */
#ifndef BERTH_K8S_MODEL_H
#define BERTH_K8S_MODEL_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds applied by the decoders (Kubernetes' own limits, or generous ones). */
#define K8S_NAME_MAX 253      /* DNS subdomain */
#define K8S_NAMESPACE_MAX 63  /* DNS label */
#define K8S_RV_MAX 64
#define K8S_MAX_PORTS 256
#define K8S_MAX_IPS 16        /* clusterIPs, externalIPs, LB ingress, pod IPs */
#define K8S_MAX_SOURCE_RANGES 256
#define K8S_MAX_ENDPOINTS 1000 /* per EndpointSlice (the API server caps at 1000) */
#define K8S_MAX_ADDRS_PER_ENDPOINT 100
#define K8S_MAX_NODE_ADDRS 64  /* Node status.addresses, names (Hostname, *DNS) included */
#define K8S_MAX_HINTS 8        /* hints.forZones, hints.forNodes per endpoint (the API caps each at 8) */

enum k8s_kind { K8S_SERVICE, K8S_ENDPOINTSLICE, K8S_POD, K8S_NODE, K8S_NKINDS };

enum l4_proto { L4_TCP, L4_UDP, L4_SCTP };

struct k8s_meta {
	char *ns;   /* "" for cluster-scoped objects (Node) */
	char *name;
	char *uid;  /* may be "" */
	char *rv;   /* resourceVersion, may be "" in manifests */
	/*
	 * Set by k8s_decode: one block that owns every string of the object and
	 * the endpoints' address and hint arrays, equal strings stored once (so treat
	 * them as read-only). NULL in objects built by hand, whose strings and
	 * arrays are separate allocations; k8s_object_free handles both.
	 */
	void *pool;
};

enum svc_type { SVC_CLUSTER_IP, SVC_NODE_PORT, SVC_LOAD_BALANCER, SVC_EXTERNAL_NAME };

struct svc_port {
	char *name;              /* "" when unnamed */
	enum l4_proto proto;
	uint16_t port;
	uint16_t node_port;      /* 0 = none */
	uint16_t target_port;    /* numeric targetPort (= port when absent, 0 or ""); 0 when named */
	char *target_port_name;  /* named targetPort, or NULL */
};

struct lb_ingress {
	struct in_addr ip;
	bool ip_mode_proxy;      /* status.loadBalancer.ingress[].ipMode == "Proxy" */
};

struct ipv4_cidr {
	struct in_addr addr;
	uint8_t len;
};

struct k8s_service {
	struct k8s_meta meta;
	enum svc_type type;
	bool headless;           /* clusterIP "None" */
	size_t n_cluster_ips;
	struct in_addr *cluster_ips; /* IPv4 entries of spec.clusterIPs (or clusterIP) */
	size_t n_ports;
	struct svc_port *ports;
	size_t n_external_ips;
	struct in_addr *external_ips;
	size_t n_lb_ingress;
	struct lb_ingress *lb_ingress;
	size_t n_source_ranges;
	struct ipv4_cidr *source_ranges; /* spec.loadBalancerSourceRanges */
	bool affinity_client_ip;
	uint32_t affinity_timeout_s;     /* default 10800 */
	bool external_local;             /* externalTrafficPolicy: Local */
	bool internal_local;             /* internalTrafficPolicy: Local */
	uint16_t health_check_node_port;
};

struct eps_port {
	char *name;              /* "" when unnamed */
	enum l4_proto proto;
	uint16_t port;           /* 0 = all ports (absent) */
};

struct eps_endpoint {
	size_t n_addrs;
	struct in_addr *addrs;
	/* Conditions with the API's defaults for absent ones: ready = true,
	 * serving = ready, terminating = false. */
	bool ready, serving, terminating;
	/*
	 * Topology hints (hints.forZones[].name, hints.forNodes[].name), in API
	 * order, distinct, at most K8S_MAX_HINTS each; the array is NULL when
	 * the count is 0 (absent and empty lists are the same to kube-proxy).
	 * A zone hint may be "" (a valid label value); a node hint never is.
	 */
	uint8_t n_zone_hints, n_node_hints;
	char *node_name;         /* NULL when absent */
	char *zone;              /* NULL when absent */
	char *target_pod;        /* targetRef.name when targetRef.kind is Pod, else NULL */
	char **zone_hints;
	char **node_hints;
};

struct k8s_endpointslice {
	struct k8s_meta meta;
	char *service;           /* label kubernetes.io/service-name; NULL = not a service's */
	bool ipv4;               /* addressType IPv4 (others are decoded but hold no endpoints) */
	size_t n_ports;
	struct eps_port *ports;
	size_t n_endpoints;
	struct eps_endpoint *endpoints;
};

struct k8s_pod {
	struct k8s_meta meta;
	char *node_name;         /* spec.nodeName, NULL before scheduling */
	bool host_network;
	char *phase;             /* status.phase, may be NULL */
	size_t n_ips;
	struct in_addr *ips;     /* status.podIPs (IPv4) */
};

struct k8s_node {
	struct k8s_meta meta;
	size_t n_internal_ips;
	struct in_addr *internal_ips;
	size_t n_external_ips;
	struct in_addr *external_ips;
	char *zone;              /* label topology.kubernetes.io/zone */
};

struct k8s_object {
	enum k8s_kind kind;
	union {
		struct k8s_meta meta; /* first member of each: valid for every kind */
		struct k8s_service svc;
		struct k8s_endpointslice eps;
		struct k8s_pod pod;
		struct k8s_node node;
	};
};

/* "Service", "EndpointSlice", "Pod", "Node" */
const char *k8s_kind_name(enum k8s_kind kind);
/* From a "kind" string; -1 when not one of ours. */
int k8s_kind_from_name(const char *name);
const char *l4_proto_name(enum l4_proto p);

/*
 * Decode obj as kind. On failure returns NULL and fills err with the reason,
 * prefixed by "<namespace>/<name>: " when those could be read, so that the
 * caller's log line names the object.
 */
struct k8s_object *k8s_decode(enum k8s_kind kind, const json_t *obj, char *err, size_t errlen);
void k8s_object_free(struct k8s_object *o);

/*
 * Same kind and same modelled content, resourceVersion aside (it changes on
 * every write, including writes to fields berth does not model): a watch
 * event whose decoded object is equal to the cached one changes nothing.
 */
bool k8s_object_equal(const struct k8s_object *a, const struct k8s_object *b);

/* The cache key "<namespace>/<name>" (or "<name>" for cluster-scoped), malloc'd. */
char *k8s_object_key(const struct k8s_object *o);

/* Encoders for berthctl and tests (the fields berth uses, in API shape). */
json_t *k8s_service_to_json(const struct k8s_service *s);
json_t *k8s_endpointslice_to_json(const struct k8s_endpointslice *e);

#endif
