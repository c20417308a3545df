// SPDX-License-Identifier: Apache-2.0
/*
 * The proxy's plan: one Service and its EndpointSlices to the per-port state
 * the backends program. Every decision follows kube-proxy's nftables mode
 * (pkg/proxy/nftables/proxier.go syncProxyRules, pkg/proxy/serviceport.go,
 * pkg/proxy/endpointslicecache.go and pkg/proxy/topology.go
 * CategorizeEndpoints); the comments say which part.
 *
 * Pure and order-independent: the same service and the same set of slices,
 * in any order, give the same plan (the diff compares plans, so a plan that
 * depended on the cache's iteration order would churn rules).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "plan.h"

/* ------------------------------------------------------------- helpers */

static bool str_eq(const char *a, const char *b)
{
	return (!a || !b) ? a == b : !strcmp(a, b);
}

static uint32_t host_order(struct in_addr a)
{
	return ntohl(a.s_addr);
}

static int cmp_u32(uint32_t a, uint32_t b)
{
	return (a > b) - (a < b);
}

static bool cidr_contains(const struct ipv4_cidr *c, struct in_addr a)
{
	uint32_t mask = c->len ? ~0u << (32 - (c->len > 32 ? 32 : c->len)) : 0;

	return (host_order(a) & mask) == (host_order(c->addr) & mask);
}

/*
 * calloc that tolerates n == 0 (returns NULL, which is not an error then).
 * *out is NULL on failure too; callers check n && !*out.
 */
static int alloc_n(size_t n, size_t size, void **out)
{
	*out = n ? calloc(n, size) : NULL;
	return n && !*out ? -ENOMEM : 0;
}

/* ----------------------------------------------------------- frontends */

static int fe_cmp(const void *pa, const void *pb)
{
	const struct plan_frontend *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->addr.s_addr != b->addr.s_addr)
		return cmp_u32(host_order(a->addr), host_order(b->addr));
	return cmp_u32(a->port, b->port);
}

static void fe_add(struct plan_port *pp, enum frontend_kind kind, struct in_addr addr,
		   uint16_t port)
{
	pp->frontends[pp->n_frontends++] = (struct plan_frontend){
		.kind = kind,
		.addr = addr,
		.port = port,
		.external = kind != FE_CLUSTER_IP,
	};
}

static bool svc_has_node_ports(const struct k8s_service *svc)
{
	return svc->type == SVC_NODE_PORT || svc->type == SVC_LOAD_BALANCER;
}

/*
 * proxier.go setupNFTables leaves loopback addresses out of the NodePort
 * addresses ("localhost NodePorts are not supported": without
 * route_localnet a DNAT of 127/8 traffic cannot be routed). plan.h promises
 * the list never holds them, whatever the caller passed.
 */
static bool nodeport_addr_usable(struct in_addr a)
{
	return host_order(a) >> 24 != 127;
}

/*
 * serviceport.go: the IPv4 cluster IP(s); the nodePort on the node's
 * NodePort addresses; every external IP; every status.loadBalancer.ingress
 * IP except those with ipMode Proxy (the load balancer proxies, so the VIP
 * must not be short-cut on the node: KEP-1860).
 */
static int build_frontends(struct plan_port *pp, const struct k8s_service *svc,
			   const struct svc_port *sp, const struct plan_node *node)
{
	bool node_port = svc_has_node_ports(svc) && sp->node_port;
	size_t n_np = node_port ? node->n_nodeport_ips : 0, w = 0;
	int r;

	if (n_np > PLAN_MAX_NODE_IPS)
		n_np = PLAN_MAX_NODE_IPS;
	r = alloc_n(svc->n_cluster_ips + n_np + svc->n_external_ips + svc->n_lb_ingress,
		    sizeof(*pp->frontends), (void **)&pp->frontends);
	if (r < 0)
		return r;
	for (size_t i = 0; i < svc->n_cluster_ips; i++)
		fe_add(pp, FE_CLUSTER_IP, svc->cluster_ips[i], sp->port);
	for (size_t i = 0; i < n_np; i++)
		if (nodeport_addr_usable(node->nodeport_ips[i]))
			fe_add(pp, FE_NODE_PORT, node->nodeport_ips[i], sp->node_port);
	for (size_t i = 0; i < svc->n_external_ips; i++)
		fe_add(pp, FE_EXTERNAL_IP, svc->external_ips[i], sp->port);
	for (size_t i = 0; i < svc->n_lb_ingress; i++)
		if (!svc->lb_ingress[i].ip_mode_proxy)
			fe_add(pp, FE_LOAD_BALANCER, svc->lb_ingress[i].ip, sp->port);

	/* Sorted and unique: the same address listed twice is one map element. */
	if (pp->n_frontends)
		qsort(pp->frontends, pp->n_frontends, sizeof(*pp->frontends), fe_cmp);
	for (size_t i = 0; i < pp->n_frontends; i++)
		if (!w || fe_cmp(&pp->frontends[w - 1], &pp->frontends[i]))
			pp->frontends[w++] = pp->frontends[i];
	pp->n_frontends = w;
	return 0;
}

static size_t count_kind(const struct plan_port *pp, enum frontend_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < pp->n_frontends; i++)
		n += pp->frontends[i].kind == kind;
	return n;
}

/* ----------------------------------------------------------- endpoints */

/*
 * One endpoint as the slices state it, before the traffic policies. The hint
 * lists are reduced to what topology.go asks of them: are there any, and do
 * they name this node / this node's zone.
 */
struct cand {
	struct in_addr addr;
	uint16_t port;
	bool local, ready, serving, terminating;
	bool node_hinted, for_node; /* hints.forNodes non-empty; names this node */
	bool zone_hinted, for_zone; /* hints.forZones non-empty; names this node's zone */
};

/* kube-proxy keys endpoint slices by the service-name label within the namespace. */
static bool slice_of(const struct k8s_endpointslice *e, const struct k8s_service *svc)
{
	return e && e->ipv4 && e->service && str_eq(e->service, svc->meta.name) &&
	       str_eq(e->meta.ns, svc->meta.ns);
}

/*
 * endpointslicecache.go: a slice port serves the service port with the same
 * name and protocol (ServicePortName); that is how a named targetPort
 * resolves, per slice. A port without a number ("all ports") is skipped, as
 * kube-proxy skips it.
 */
static bool port_serves(const struct eps_port *ep, const struct svc_port *sp)
{
	return ep->port && ep->proto == sp->proto && str_eq(ep->name ? ep->name : "", sp->name);
}

static bool ep_local(const struct eps_endpoint *ep, const struct plan_node *node)
{
	return ep->node_name && node->name && !strcmp(ep->node_name, node->name);
}

/*
 * Does a hint list name want? An unknown (NULL or "") node name or zone
 * matches nothing: kube-proxy compares with "" there, which only an empty
 * hint name (valid for a zone, never produced by the EndpointSlice
 * controller) could match; berth reads "no zone label" as "no topology",
 * which is what kube-proxy's own log line for that case says it means.
 */
static bool hints_name(char *const *hints, size_t n, const char *want)
{
	if (!want || !*want || !hints)
		return false;
	for (size_t i = 0; i < n && i < K8S_MAX_HINTS; i++)
		if (hints[i] && !strcmp(hints[i], want))
			return true;
	return false;
}

/*
 * How much a duplicate is worth keeping. kube-proxy keeps the first copy of
 * an ip:port seen in Go map order, replaced by a later local copy; berth needs
 * an order-independent choice: local first (as kube-proxy), then the more
 * usable copy (ready, then serving-terminating), then the one whose hints
 * say more (an arbitrary but fixed order). The rank covers every field the
 * plan reads, so equal ranks give equal plans.
 */
static int cand_rank(const struct cand *c)
{
	return c->local << 6 | c->ready << 5 | (c->serving && c->terminating) << 4 |
	       c->for_node << 3 | c->node_hinted << 2 | c->for_zone << 1 | c->zone_hinted;
}

static int cand_cmp(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;

	if (a->addr.s_addr != b->addr.s_addr)
		return cmp_u32(host_order(a->addr), host_order(b->addr));
	if (a->port != b->port)
		return cmp_u32(a->port, b->port);
	return cand_rank(b) - cand_rank(a); /* best copy first */
}

/*
 * Every endpoint of the service port, one per address:port (kube-proxy's
 * dedupe key: an endpoint moving between slices shows up in both for a
 * while), sorted. Only addresses[0] counts, as in kube-proxy.
 */
static int gather(const struct k8s_service *svc, const struct svc_port *sp,
		  const struct k8s_endpointslice *const *slices, size_t n_slices,
		  const struct plan_node *node, struct cand **out, size_t *n_out)
{
	size_t n = 0, w = 0;
	struct cand *c;

	for (size_t s = 0; s < n_slices; s++) {
		if (!slice_of(slices[s], svc))
			continue;
		for (size_t p = 0; p < slices[s]->n_ports; p++)
			n += port_serves(&slices[s]->ports[p], sp) ? slices[s]->n_endpoints : 0;
	}
	*out = NULL;
	*n_out = 0;
	if (alloc_n(n, sizeof(*c), (void **)&c) < 0)
		return -ENOMEM;
	n = 0;
	for (size_t s = 0; s < n_slices; s++) {
		const struct k8s_endpointslice *e = slices[s];

		if (!slice_of(e, svc))
			continue;
		for (size_t p = 0; p < e->n_ports; p++) {
			if (!port_serves(&e->ports[p], sp))
				continue;
			for (size_t i = 0; i < e->n_endpoints; i++) {
				const struct eps_endpoint *ep = &e->endpoints[i];

				if (!ep->n_addrs)
					continue;
				c[n++] = (struct cand){
					.addr = ep->addrs[0],
					.port = e->ports[p].port,
					.local = ep_local(ep, node),
					.ready = ep->ready,
					.serving = ep->serving,
					.terminating = ep->terminating,
					.node_hinted = ep->n_node_hints > 0,
					.for_node = hints_name(ep->node_hints, ep->n_node_hints,
							       node->name),
					.zone_hinted = ep->n_zone_hints > 0,
					.for_zone = hints_name(ep->zone_hints, ep->n_zone_hints,
							       node->zone),
				};
			}
		}
	}
	if (n)
		qsort(c, n, sizeof(*c), cand_cmp);
	for (size_t i = 0; i < n; i++)
		if (!w || c[w - 1].addr.s_addr != c[i].addr.s_addr || c[w - 1].port != c[i].port)
			c[w++] = c[i];
	*out = c;
	*n_out = w;
	return 0;
}

typedef bool (*cand_pred)(const struct cand *c);

static bool is_ready(const struct cand *c)
{
	return c->ready;
}

/* topology.go: "serving and terminating" is the fallback when nothing is ready. */
static bool is_serving_terminating(const struct cand *c)
{
	return c->serving && c->terminating;
}

static bool is_local_ready(const struct cand *c)
{
	return c->local && is_ready(c);
}

static bool is_ready_for_node(const struct cand *c)
{
	return c->for_node && is_ready(c);
}

static bool is_ready_for_zone(const struct cand *c)
{
	return c->for_zone && is_ready(c);
}

static bool is_local_serving_terminating(const struct cand *c)
{
	return c->local && is_serving_terminating(c);
}

static size_t count_if(const struct cand *c, size_t n, cand_pred pred)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += pred(&c[i]);
	return k;
}

/* The candidates matching pred, in order; an empty list when none. */
static int select_eps(const struct cand *c, size_t n, cand_pred pred, size_t *n_out,
		      struct plan_endpoint **out)
{
	size_t k = count_if(c, n, pred);

	*n_out = 0;
	if (alloc_n(k, sizeof(**out), (void **)out) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (pred(&c[i]))
			(*out)[(*n_out)++] = (struct plan_endpoint){
				.addr = c[i].addr,
				.port = c[i].port,
				.local = c[i].local,
			};
	return 0;
}

/* The preferred set if it is not empty, else the fallback set. */
static int select_with_fallback(const struct cand *c, size_t n, cand_pred preferred,
				cand_pred fallback, size_t *n_out, struct plan_endpoint **out)
{
	return select_eps(c, n, count_if(c, n, preferred) ? preferred : fallback, n_out, out);
}

/*
 * topology.go topologyModeFromHints (topology-aware routing, KEP-2433, and
 * trafficDistribution PreferSameNode, KEP-3015, whose feature gate
 * PreferSameTrafficDistribution is GA and locked on since 1.35). Only ready
 * endpoints count. Same node when every ready endpoint has node hints and
 * one names this node; else same zone when every ready endpoint has zone
 * hints and one names this node's zone; else no topology. Any ready
 * endpoint without hints turns the mode off, so the EndpointSlice
 * controller's partial states never narrow traffic.
 */
enum topology { TOPO_NONE, TOPO_SAME_NODE, TOPO_SAME_ZONE };

static enum topology topology_mode(const struct cand *c, size_t n)
{
	bool any_ready = false, all_node = true, for_node = false, all_zone = true;
	bool for_zone = false;

	for (size_t i = 0; i < n; i++) {
		if (!c[i].ready)
			continue;
		any_ready = true;
		all_node &= c[i].node_hinted;
		for_node |= c[i].for_node;
		all_zone &= c[i].zone_hinted;
		for_zone |= c[i].for_zone;
	}
	if (any_ready && all_node && for_node)
		return TOPO_SAME_NODE;
	if (any_ready && all_zone && for_zone)
		return TOPO_SAME_ZONE;
	return TOPO_NONE;
}

/*
 * topology.go CategorizeEndpoints. Cluster endpoints: the ready ones the
 * topology mode admits (availableForTopology), or when none is ready the
 * serving-terminating ones, whatever their hints (KEP-1669; with a
 * topology mode on, a ready endpoint for it exists, so the fallback only
 * happens without one). Local endpoints: this node's ready ones, or its
 * serving-terminating ones; never remote ones, and hints play no part.
 */
static int build_cluster_eps(const struct cand *c, size_t n, enum topology mode,
			     size_t *n_out, struct plan_endpoint **out)
{
	cand_pred ready = mode == TOPO_SAME_NODE   ? is_ready_for_node
			  : mode == TOPO_SAME_ZONE ? is_ready_for_zone
						   : is_ready;

	return select_with_fallback(c, n, ready, is_serving_terminating, n_out, out);
}

static int build_local_eps(const struct cand *c, size_t n, size_t *n_out,
			   struct plan_endpoint **out)
{
	return select_with_fallback(c, n, is_local_ready, is_local_serving_terminating, n_out,
				    out);
}

/*
 * serviceport.go: externalTrafficPolicy only means something for services
 * reachable from outside (apiservice.ExternallyAccessible).
 */
static bool svc_external_local(const struct k8s_service *svc)
{
	return svc->external_local && (svc_has_node_ports(svc) || svc->n_external_ips);
}

/*
 * proxier.go: which list each kind of traffic uses. Internal traffic follows
 * internalTrafficPolicy (Local: the local list, Cluster: the cluster list);
 * external traffic follows externalTrafficPolicy; with policy Local, pods
 * and the node reaching an external frontend are short-circuited to the
 * cluster list. A port with no external frontend has no external lists.
 * Topology narrows every use of the cluster list (kube-proxy's cluster
 * policy chain: ITP Cluster, ETP Cluster, the short-circuit) and none of
 * the local list.
 */
static int build_endpoints(struct plan_port *pp, const struct cand *c, size_t n,
			   bool externally_accessible)
{
	enum topology mode = topology_mode(c, n);
	int r;

	pp->has_endpoints = count_if(c, n, is_ready) || count_if(c, n, is_serving_terminating);
	r = pp->internal_local
		    ? build_local_eps(c, n, &pp->n_cluster_eps, &pp->cluster_eps)
		    : build_cluster_eps(c, n, mode, &pp->n_cluster_eps, &pp->cluster_eps);
	if (r < 0 || !externally_accessible)
		return r;
	r = pp->external_local
		    ? build_local_eps(c, n, &pp->n_external_eps, &pp->external_eps)
		    : build_cluster_eps(c, n, mode, &pp->n_external_eps, &pp->external_eps);
	if (r < 0 || !pp->external_local)
		return r;
	return build_cluster_eps(c, n, mode, &pp->n_short_circuit_eps, &pp->short_circuit_eps);
}

/* -------------------------------------------------------- source ranges */

static int cidr_cmp(const void *pa, const void *pb)
{
	const struct ipv4_cidr *a = pa, *b = pb;

	if (a->addr.s_addr != b->addr.s_addr)
		return cmp_u32(host_order(a->addr), host_order(b->addr));
	return cmp_u32(a->len, b->len);
}

static bool allow_from_node(const struct k8s_service *svc, const struct plan_node *node)
{
	for (size_t i = 0; i < svc->n_source_ranges; i++)
		if (cidr_contains(&svc->source_ranges[i], node->node_ip))
			return true;
	return false;
}

/*
 * proxier.go: loadBalancerSourceRanges make a firewall on the LB VIPs only
 * (not on NodePorts or external IPs), and only when there are VIPs. If a
 * range admits the node's IP, the VIPs themselves are admitted too.
 */
static int build_source_ranges(struct plan_port *pp, const struct k8s_service *svc,
			       const struct plan_node *node)
{
	size_t n_lb = count_kind(pp, FE_LOAD_BALANCER), w = 0;
	bool from_node;
	int r;

	if (!n_lb || !svc->n_source_ranges)
		return 0;
	from_node = allow_from_node(svc, node);
	r = alloc_n(svc->n_source_ranges + (from_node ? n_lb : 0), sizeof(*pp->source_ranges),
		    (void **)&pp->source_ranges);
	if (r < 0)
		return r;
	for (size_t i = 0; i < svc->n_source_ranges; i++)
		pp->source_ranges[pp->n_source_ranges++] = svc->source_ranges[i];
	for (size_t i = 0; from_node && i < pp->n_frontends; i++)
		if (pp->frontends[i].kind == FE_LOAD_BALANCER)
			pp->source_ranges[pp->n_source_ranges++] =
				(struct ipv4_cidr){ .addr = pp->frontends[i].addr, .len = 32 };
	qsort(pp->source_ranges, pp->n_source_ranges, sizeof(*pp->source_ranges), cidr_cmp);
	for (size_t i = 0; i < pp->n_source_ranges; i++)
		if (!w || cidr_cmp(&pp->source_ranges[w - 1], &pp->source_ranges[i]))
			pp->source_ranges[w++] = pp->source_ranges[i];
	pp->n_source_ranges = w;
	return 0;
}

/* ---------------------------------------------------------------- ports */

static int build_port(struct plan_port *pp, const struct k8s_service *svc,
		      const struct svc_port *sp, const struct k8s_endpointslice *const *slices,
		      size_t n_slices, const struct plan_node *node)
{
	bool externally_accessible;
	struct cand *c = NULL;
	size_t n_c = 0;
	int r;

	pp->name = strdup(sp->name ? sp->name : "");
	if (!pp->name)
		return -ENOMEM;
	pp->proto = sp->proto;
	r = build_frontends(pp, svc, sp, node);
	if (r < 0)
		return r;
	/* BaseServicePortInfo.ExternallyAccessible: per port, from what it answers on. */
	externally_accessible = pp->n_frontends > count_kind(pp, FE_CLUSTER_IP);
	pp->internal_local = svc->internal_local;
	pp->external_local = externally_accessible && svc_external_local(svc);
	/* The EXT chain marks for masquerade unless the policy keeps the source. */
	pp->masquerade_external = externally_accessible && !pp->external_local;
	pp->masquerade_all = node->masquerade_all;
	pp->affinity_timeout_s = svc->affinity_client_ip ? svc->affinity_timeout_s : 0;

	r = gather(svc, sp, slices, n_slices, node, &c, &n_c);
	if (r == 0)
		r = build_endpoints(pp, c, n_c, externally_accessible);
	free(c);
	if (r < 0)
		return r;
	return build_source_ranges(pp, svc, node);
}

/* ----------------------------------------------------------- health check */

static int addr_cmp(const void *pa, const void *pb)
{
	return cmp_u32(host_order(*(const struct in_addr *)pa),
		       host_order(*(const struct in_addr *)pb));
}

static bool slice_port_valid(const struct k8s_endpointslice *e)
{
	for (size_t p = 0; p < e->n_ports; p++)
		if (e->ports[p].port)
			return true;
	return false;
}

/*
 * endpointsmap.go LocalReadyEndpoints: the number of distinct addresses of
 * this node's ready endpoints, over every port of the service's slices
 * (serving-terminating ones do not count: the load balancer should move
 * away from a node whose endpoints are all terminating).
 */
static int count_local_ready(const struct k8s_service *svc,
			     const struct k8s_endpointslice *const *slices, size_t n_slices,
			     const struct plan_node *node, size_t *out)
{
	struct in_addr *a;
	size_t n = 0, w = 0;

	for (size_t s = 0; s < n_slices; s++)
		if (slice_of(slices[s], svc))
			n += slices[s]->n_endpoints;
	*out = 0;
	if (alloc_n(n, sizeof(*a), (void **)&a) < 0)
		return -ENOMEM;
	n = 0;
	for (size_t s = 0; s < n_slices; s++) {
		const struct k8s_endpointslice *e = slices[s];

		if (!slice_of(e, svc) || !slice_port_valid(e))
			continue;
		for (size_t i = 0; i < e->n_endpoints; i++)
			if (e->endpoints[i].n_addrs && e->endpoints[i].ready &&
			    ep_local(&e->endpoints[i], node))
				a[n++] = e->endpoints[i].addrs[0];
	}
	if (n)
		qsort(a, n, sizeof(*a), addr_cmp);
	for (size_t i = 0; i < n; i++)
		w += !i || a[i].s_addr != a[i - 1].s_addr;
	free(a);
	*out = w;
	return 0;
}

/* ------------------------------------------------------------- service */

/*
 * serviceport.go / proxier.go: kube-proxy programs nothing for headless and
 * ExternalName services, nor for a service without a cluster IP of the
 * proxier's family (IPv4 here).
 */
static bool svc_ignored(const struct k8s_service *svc)
{
	return svc->headless || svc->type == SVC_EXTERNAL_NAME || !svc->n_cluster_ips;
}

static int build_service(struct plan_service *p, const struct k8s_service *svc,
			 const struct k8s_endpointslice *const *slices, size_t n_slices,
			 const struct plan_node *node)
{
	int r;

	p->ns = strdup(svc->meta.ns ? svc->meta.ns : "");
	p->name = strdup(svc->meta.name ? svc->meta.name : "");
	if (!p->ns || !p->name)
		return -ENOMEM;
	r = alloc_n(svc->n_ports, sizeof(*p->ports), (void **)&p->ports);
	if (r < 0)
		return r;
	for (size_t i = 0; i < svc->n_ports; i++) {
		/* Counted first: a half-built port is still freed. */
		r = build_port(&p->ports[p->n_ports++], svc, &svc->ports[i], slices, n_slices,
			       node);
		if (r < 0)
			return r;
	}
	/* apiservice.NeedsHealthCheck: LoadBalancer with externalTrafficPolicy Local. */
	if (svc->type == SVC_LOAD_BALANCER && svc_external_local(svc) &&
	    svc->health_check_node_port) {
		p->health_check_node_port = svc->health_check_node_port;
		return count_local_ready(svc, slices, n_slices, node, &p->n_local_endpoints);
	}
	return 0;
}

struct plan_service *plan_build(const struct k8s_service *svc,
				const struct k8s_endpointslice *const *slices, size_t n_slices,
				const struct plan_node *node, bool *ignored)
{
	struct plan_service *p;

	if (ignored)
		*ignored = false;
	if (!svc || !node || (n_slices && !slices))
		return NULL;
	if (svc_ignored(svc)) {
		if (ignored)
			*ignored = true;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (build_service(p, svc, slices, n_slices, node) < 0) {
		plan_free(p);
		return NULL;
	}
	return p;
}

static void port_free(struct plan_port *pp)
{
	free(pp->name);
	free(pp->frontends);
	free(pp->cluster_eps);
	free(pp->external_eps);
	free(pp->short_circuit_eps);
	free(pp->source_ranges);
}

void plan_free(struct plan_service *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_ports; i++)
		port_free(&p->ports[i]);
	free(p->ports);
	free(p->ns);
	free(p->name);
	free(p);
}

/* ------------------------------------------------------------ equality */

/* Field by field: the structs have padding, so memcmp would read garbage. */
static bool fe_eq(const struct plan_frontend *a, const struct plan_frontend *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].kind != b[i].kind || a[i].addr.s_addr != b[i].addr.s_addr ||
		    a[i].port != b[i].port || a[i].external != b[i].external)
			return false;
	return true;
}

static bool eps_eq(const struct plan_endpoint *a, size_t na, const struct plan_endpoint *b,
		   size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].addr.s_addr != b[i].addr.s_addr || a[i].port != b[i].port ||
		    a[i].local != b[i].local)
			return false;
	return true;
}

static bool ranges_eq(const struct ipv4_cidr *a, const struct ipv4_cidr *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].addr.s_addr != b[i].addr.s_addr || a[i].len != b[i].len)
			return false;
	return true;
}

static bool port_eq(const struct plan_port *a, const struct plan_port *b)
{
	return str_eq(a->name, b->name) && a->proto == b->proto &&
	       a->n_frontends == b->n_frontends &&
	       fe_eq(a->frontends, b->frontends, a->n_frontends) &&
	       eps_eq(a->cluster_eps, a->n_cluster_eps, b->cluster_eps, b->n_cluster_eps) &&
	       eps_eq(a->external_eps, a->n_external_eps, b->external_eps, b->n_external_eps) &&
	       eps_eq(a->short_circuit_eps, a->n_short_circuit_eps, b->short_circuit_eps,
		      b->n_short_circuit_eps) &&
	       a->has_endpoints == b->has_endpoints && a->internal_local == b->internal_local &&
	       a->external_local == b->external_local &&
	       a->masquerade_external == b->masquerade_external &&
	       a->masquerade_all == b->masquerade_all &&
	       a->affinity_timeout_s == b->affinity_timeout_s &&
	       a->n_source_ranges == b->n_source_ranges &&
	       ranges_eq(a->source_ranges, b->source_ranges, a->n_source_ranges);
}

bool plan_equal(const struct plan_service *a, const struct plan_service *b)
{
	if (!a || !b)
		return a == b;
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) || a->n_ports != b->n_ports ||
	    a->health_check_node_port != b->health_check_node_port ||
	    a->n_local_endpoints != b->n_local_endpoints)
		return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (!port_eq(&a->ports[i], &b->ports[i]))
			return false;
	return true;
}

/* ----------------------------------------------------------------- JSON */

static const char *fe_kind_name(enum frontend_kind k)
{
	switch (k) {
	case FE_CLUSTER_IP:
		return "ClusterIP";
	case FE_NODE_PORT:
		return "NodePort";
	case FE_EXTERNAL_IP:
		return "ExternalIP";
	case FE_LOAD_BALANCER:
		return "LoadBalancer";
	}
	return "?";
}

static json_t *frontends_json(const struct plan_port *pp, bool *oom)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < pp->n_frontends; i++) {
		const struct plan_frontend *f = &pp->frontends[i];
		json_t *o = json_object();

		jx_put(o, "kind", json_string(fe_kind_name(f->kind)), oom);
		jx_put(o, "addr", jx_ip_string(f->addr), oom);
		jx_put(o, "port", json_integer(f->port), oom);
		jx_put(o, "external", json_boolean(f->external), oom);
		jx_append(arr, o, oom);
	}
	return arr;
}

static json_t *eps_json(const struct plan_endpoint *e, size_t n, bool *oom)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		jx_put(o, "addr", jx_ip_string(e[i].addr), oom);
		jx_put(o, "port", json_integer(e[i].port), oom);
		jx_put(o, "local", json_boolean(e[i].local), oom);
		jx_append(arr, o, oom);
	}
	return arr;
}

static json_t *ranges_json(const struct ipv4_cidr *c, size_t n, bool *oom)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		char buf[INET_ADDRSTRLEN], text[INET_ADDRSTRLEN + 4];

		inet_ntop(AF_INET, &c[i].addr, buf, sizeof(buf));
		snprintf(text, sizeof(text), "%s/%u", buf, c[i].len);
		jx_append(arr, json_string(text), oom);
	}
	return arr;
}

static json_t *port_json(const struct plan_port *pp, bool *oom)
{
	json_t *o = json_object();

	jx_put(o, "name", json_string(pp->name ? pp->name : ""), oom);
	jx_put(o, "protocol", json_string(l4_proto_name(pp->proto)), oom);
	jx_put(o, "frontends", frontends_json(pp, oom), oom);
	jx_put(o, "has_endpoints", json_boolean(pp->has_endpoints), oom);
	jx_put(o, "cluster_endpoints", eps_json(pp->cluster_eps, pp->n_cluster_eps, oom), oom);
	jx_put(o, "external_endpoints", eps_json(pp->external_eps, pp->n_external_eps, oom), oom);
	jx_put(o, "short_circuit_endpoints",
	    eps_json(pp->short_circuit_eps, pp->n_short_circuit_eps, oom), oom);
	jx_put(o, "internal_local", json_boolean(pp->internal_local), oom);
	jx_put(o, "external_local", json_boolean(pp->external_local), oom);
	jx_put(o, "masquerade_external", json_boolean(pp->masquerade_external), oom);
	jx_put(o, "masquerade_all", json_boolean(pp->masquerade_all), oom);
	jx_put(o, "affinity_timeout_s", json_integer(pp->affinity_timeout_s), oom);
	jx_put(o, "source_ranges", ranges_json(pp->source_ranges, pp->n_source_ranges, oom), oom);
	return o;
}

json_t *plan_to_json(const struct plan_service *p)
{
	json_t *root, *ports;
	bool oom = false;

	if (!p)
		return NULL;
	root = json_object();
	ports = json_array();
	jx_put(root, "namespace", json_string(p->ns ? p->ns : ""), &oom);
	jx_put(root, "name", json_string(p->name ? p->name : ""), &oom);
	jx_put(root, "health_check_node_port", json_integer(p->health_check_node_port), &oom);
	jx_put(root, "local_endpoints", json_integer((json_int_t)p->n_local_endpoints), &oom);
	jx_put(root, "ports", ports, &oom);
	for (size_t i = 0; i < p->n_ports; i++)
		jx_append(ports, port_json(&p->ports[i], &oom), &oom);
	if (oom || !root) {
		json_decref(root);
		return NULL;
	}
	return root;
}
