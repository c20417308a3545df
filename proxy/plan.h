/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The proxy's plan: a pure function from one Service and its EndpointSlices
 * (plus facts about this node) to what the kernel must do for each of the
 * service's ports. kube-proxy's nftables mode is the reference for every
 * decision here; backends (nftables, eBPF) only carry the plan out.
 *
 * No I/O, no globals: the same inputs give the same plan, byte for byte, so
 * that plans are compared (diff) and printed (golden tests).
 */
#ifndef BERTH_PROXY_PLAN_H
#define BERTH_PROXY_PLAN_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s_model.h"

#define PLAN_MAX_NODE_IPS 16
#define PLAN_MAX_CIDRS 64

/* Facts about this node and the proxy's configuration. */
struct plan_node {
	const char *name;                       /* this node (endpoints' nodeName) */
	const char *zone;                       /* this node's zone, or NULL */
	struct in_addr node_ip;                 /* primary address (kube-proxy's nodeIP) */
	size_t n_nodeport_ips;
	struct in_addr nodeport_ips[PLAN_MAX_NODE_IPS]; /* where NodePorts answer (never 127/8) */
	size_t n_pod_cidrs;
	struct ipv4_cidr pod_cidrs[PLAN_MAX_CIDRS]; /* "is this source a pod?" (no masquerade) */
	bool masquerade_all;                    /* kube-proxy --masquerade-all */
};

enum frontend_kind { FE_CLUSTER_IP, FE_NODE_PORT, FE_EXTERNAL_IP, FE_LOAD_BALANCER };

struct plan_frontend {
	enum frontend_kind kind;
	struct in_addr addr;  /* for FE_NODE_PORT: one of the node's NodePort addresses */
	uint16_t port;        /* the service port, or the nodePort */
	bool external;        /* traffic to it is "external" for the traffic policy */
};

struct plan_endpoint {
	struct in_addr addr;
	uint16_t port;        /* the resolved target port */
	bool local;           /* on this node */
};

/* One service port, fully decided. */
struct plan_port {
	char *name;           /* the service port's name ("" if unnamed) */
	enum l4_proto proto;
	size_t n_frontends;
	struct plan_frontend *frontends; /* sorted by kind, address, port; no duplicates */
	/*
	 * Who answers, by where the traffic comes from (all lists sorted by
	 * address, port). Internal traffic (pods, the node) to a ClusterIP uses
	 * cluster_eps (after internalTrafficPolicy and the terminating
	 * fallback); external traffic (NodePort, LB, external IPs from outside)
	 * uses external_eps (after externalTrafficPolicy). An empty list means
	 * reject when the service has no usable endpoint anywhere (!has_endpoints),
	 * else drop (a Local policy with none on this node), as kube-proxy does.
	 */
	size_t n_cluster_eps;
	struct plan_endpoint *cluster_eps;
	size_t n_external_eps;
	struct plan_endpoint *external_eps;
	/*
	 * externalTrafficPolicy Local only (empty otherwise): pods and the node
	 * reaching an external frontend bypass the policy, kube-proxy's
	 * "short-circuit" rules to the Cluster policy chain: they get all usable
	 * endpoints whatever the internal policy (node-sourced traffic is
	 * masqueraded, pod traffic is not). With policy Cluster such traffic
	 * uses external_eps, masqueraded like the rest.
	 */
	size_t n_short_circuit_eps;
	struct plan_endpoint *short_circuit_eps;
	bool has_endpoints;       /* a ready or serving-terminating endpoint exists, anywhere */
	bool internal_local;      /* internalTrafficPolicy Local */
	bool external_local;      /* externalTrafficPolicy Local: no masquerade, drop when none */
	bool masquerade_external; /* masquerade traffic to external frontends (policy Cluster) */
	bool masquerade_all;      /* kube-proxy --masquerade-all: masquerade every service flow */
	uint32_t affinity_timeout_s; /* ClientIP affinity; 0 = none */
	/*
	 * loadBalancerSourceRanges, only on ports with LB frontends: only these
	 * sources reach the LB frontends. When a range holds node_ip, the LB
	 * addresses are added as /32s (kube-proxy's allowFromNode: the node's own
	 * requests to a VIP bound locally arrive from the VIP). Sorted, unique.
	 */
	size_t n_source_ranges;
	struct ipv4_cidr *source_ranges;
};

struct plan_service {
	char *ns, *name;
	size_t n_ports;
	struct plan_port *ports;
	uint16_t health_check_node_port; /* ETP Local LoadBalancer: served by the agent */
	size_t n_local_endpoints;        /* what it reports (0 when there is none to serve) */
};

/*
 * Plan one service. Returns NULL for services the proxy ignores (headless,
 * ExternalName, no IPv4 cluster IP) with *ignored set, or on ENOMEM.
 */
struct plan_service *plan_build(const struct k8s_service *svc,
				const struct k8s_endpointslice *const *slices, size_t n_slices,
				const struct plan_node *node, bool *ignored);
void plan_free(struct plan_service *p);
bool plan_equal(const struct plan_service *a, const struct plan_service *b);
/* A stable, sorted JSON rendering (golden tests, berthctl). */
json_t *plan_to_json(const struct plan_service *p);

#endif
