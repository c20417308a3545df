// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables backend's wanted state: the chains, rules, sets and
 * elements the kernel should hold for the scaffolding, the pod egress SNAT
 * and each service's plan (kube-proxy's layout, endpoints dispatched by
 * map), built into a struct want that nft.c reconciles with the record.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>

#include "nft_state.h"

/* ---------------------------------------------------------------- wanted state */

/* Empty w for the next owner; its arrays stay allocated (one service after another). */
void want_clear(struct want *w)
{
	for (size_t i = 0; i < w->n_chains; i++) {
		for (size_t r = 0; r < w->chains[i]->n_rules; r++)
			nftnl_rule_free(w->chains[i]->rules[r]);
		free(w->chains[i]->rules);
		free(w->chains[i]->map_targets);
		free(w->chains[i]->ranges);
		free(w->chains[i]);
	}
	for (size_t i = 0; i < w->n_sets; i++)
		nfree_set_free(w->sets[i].set);
	for (size_t i = 0; i < w->n_elems; i++) {
		free(w->elems[i].chain);
		free(w->elems[i].comment);
	}
	w->n_chains = w->n_sets = w->n_elems = 0;
	w->err = 0;
}

void want_free(struct want *w)
{
	want_clear(w);
	free(w->chains);
	free(w->sets);
	free(w->elems);
	memset(w, 0, sizeof(*w));
}

/* A map's name into a want_elem (every map name berth uses fits). */
static void set_map_name(struct want_elem *e, const char *map)
{
	size_t n = strnlen(map, sizeof(e->map) - 1);

	memcpy(e->map, map, n);
	e->map[n] = '\0';
}

static struct want_chain *want_chain(struct want *w, const char *name)
{
	struct want_chain *c;

	for (size_t i = 0; i < w->n_chains; i++)
		if (!strcmp(w->chains[i]->name, name))
			return w->chains[i];
	c = calloc(1, sizeof(*c));
	if (!c || !GROW(w->chains, w->n_chains, w->cap_chains)) {
		free(c);
		w->err = -ENOMEM;
		return NULL;
	}
	w->chains[w->n_chains++] = c;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->ng_id = -1;
	return c;
}

static struct want_chain *want_base(struct want *w, const char *name, const char *type,
				    uint32_t hook, int32_t prio)
{
	struct want_chain *c = want_chain(w, name);

	if (c) {
		c->base = true;
		c->type = type;
		c->hook = hook;
		c->prio = prio;
	}
	return c;
}

/* A new rule appended to chain c; NULL (and w->err) on failure. */
static struct nftnl_rule *want_rule(struct want *w, const char *table, struct want_chain *c)
{
	struct nftnl_rule *r;

	if (!c || !GROW(c->rules, c->n_rules, c->cap_rules)) {
		w->err = -ENOMEM;
		return NULL;
	}
	r = nr_new(table, c->name);
	if (!r) {
		w->err = -ENOMEM;
		return NULL;
	}
	c->rules[c->n_rules++] = r;
	return r;
}

static void want_set(struct want *w, struct nftnl_set *s)
{
	if (!s || !GROW(w->sets, w->n_sets, w->cap_sets)) {
		nfree_set_free(s);
		w->err = -ENOMEM;
		return;
	}
	w->sets[w->n_sets++].set = s;
}

static void want_elem(struct want *w, const char *map, const uint8_t *key, size_t klen,
		      int verdict, const char *chain, const char *comment)
{
	struct want_elem *e;

	for (size_t i = 0; i < w->n_elems; i++)
		if (!strcmp(w->elems[i].map, map) && w->elems[i].klen == klen &&
		    !memcmp(w->elems[i].key, key, klen))
			return; /* one NodePort or ClusterIP listed for several addresses/ports */
	if (!GROW(w->elems, w->n_elems, w->cap_elems)) {
		w->err = -ENOMEM;
		return;
	}
	e = &w->elems[w->n_elems++];
	*e = (struct want_elem){ .klen = (uint8_t)klen, .verdict = verdict };
	set_map_name(e, map);
	memcpy(e->key, key, klen);
	e->chain = chain ? strdup(chain) : NULL;
	e->comment = comment ? strdup(comment) : NULL;
	if ((chain && !e->chain) || (comment && !e->comment))
		w->err = -ENOMEM;
}

/* ---------------------------------------------------------------- building */

static void rule_or_fail(struct want *w, int ret)
{
	if (ret && !w->err)
		w->err = ret;
}

/* one rule: jump/goto/verdict after a matcher chosen by the caller */
#define RULE(w, st, c, body)                                                           \
	do {                                                                           \
		struct nftnl_rule *r_ = want_rule((w), (st)->table, (c));              \
		if (r_)                                                                \
			rule_or_fail((w), (body));                                     \
	} while (0)

void build_scaffold(struct nft_state *st, struct want *w)
{
	const struct proxy_backend_config *cfg = &st->cfg;
	const char *T = st->table;
	struct want_chain *c;
	bool npset = cfg->n_nodeport_ips > 0;

	/*
	 * Every check lives in the nat base chains, which the kernel runs for a
	 * connection's first packet only. kube-proxy's layout puts them in five
	 * filter base chains behind `ct state new`, which every packet of every
	 * connection on the node walks; here established traffic meets no berth
	 * rule at all. The checks keep kube-proxy's order relative to the DNAT:
	 * the firewall before it, the rest where it did not happen (dnat ends the
	 * chain). Reject from prerouting needs Linux 5.9 or later.
	 */
	struct want_chain *npre = want_base(w, "nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100);
	struct want_chain *nout = want_base(w, "nat-output", "nat", NF_INET_LOCAL_OUT, -100);
	struct want_chain *npost = want_base(w, "nat-postrouting", "nat", NF_INET_POST_ROUTING, 100);

	want_set(w, ns_new(T, S_CLUSTER_IPS, NFT_SET_ADDR, 0, "Active ClusterIPs"));
	if (npset)
		want_set(w, ns_new(T, S_NODEPORT_IPS, NFT_SET_ADDR, 0, "IPs that accept NodePort traffic"));
	want_set(w, ns_new(T, M_NOEP_SERVICES, NFT_MAP_ADDR_PROTO_PORT, 0,
			   "vmap to drop or reject packets to services with no endpoints"));
	want_set(w, ns_new(T, M_NOEP_NODEPORTS, NFT_MAP_PROTO_PORT, 0,
			   "vmap to drop or reject packets to service nodeports with no endpoints"));
	want_set(w, ns_new(T, M_FIREWALL_IPS, NFT_MAP_ADDR_PROTO_PORT, 0,
			   "destinations that are subject to LoadBalancerSourceRanges"));
	want_set(w, ns_new(T, M_SERVICE_IPS, NFT_MAP_ADDR_PROTO_PORT, 0,
			   "ClusterIP, ExternalIP and LoadBalancer IP traffic"));
	want_set(w, ns_new(T, M_SERVICE_NODEPORTS, NFT_MAP_PROTO_PORT, 0, "NodePort traffic"));
	want_set(w, ns_new(T, S_HAIRPIN, NFT_SET_ADDR_PAIR, 0, "endpoints reaching themselves"));
	for (size_t i = 0; i < cfg->n_nodeport_ips; i++) {
		uint8_t key[4];

		want_elem(w, S_NODEPORT_IPS, key, nk_addr(key, cfg->nodeport_ips[i]), INT32_MIN, NULL, NULL);
	}

	/* helper chains first: the base chains' rules jump to them */
	c = want_chain(w, CH_MARK_MASQ);
	RULE(w, st, c, nr_mark_or(r_, st->mark));
	c = want_chain(w, CH_MASQUERADING);
	/*
	 * hairpin: a pod that reaches itself through a service must see the
	 * node as its peer. kube-proxy marks this in each endpoint's chain
	 * (ip saddr <endpoint>); with endpoints chosen by a map, the test is
	 * here, after DNAT: source == destination == a dispatched endpoint.
	 */
	RULE(w, st, c, nr_match_hairpin(r_, S_HAIRPIN) ?: nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
	RULE(w, st, c, nr_match_mark_clear(r_, st->mark) ?: nr_verdict(r_, NFT_RETURN, NULL));
	RULE(w, st, c, nr_mark_xor(r_, st->mark));
	RULE(w, st, c, nr_masquerade(r_, NF_NAT_RANGE_PROTO_RANDOM_FULLY));
	if (cfg->n_pod_cidrs > 1) {
		c = want_chain(w, CH_MASQ_NON_POD);
		for (size_t i = 0; i < cfg->n_pod_cidrs; i++)
			RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, cfg->pod_cidrs[i], false) ?:
				       nr_verdict(r_, NFT_RETURN, NULL));
		RULE(w, st, c, nr_verdict(r_, NFT_GOTO, CH_MARK_MASQ));
	}
	c = want_chain(w, CH_REJECT);
	RULE(w, st, c, nr_reject_tcp_reset(r_));
	RULE(w, st, c, nr_reject_icmp(r_));

	c = want_chain(w, CH_ENDPOINTS_CHECK);
	RULE(w, st, c, nr_vmap_addr_proto_port(r_, M_NOEP_SERVICES));
	if (npset)
		RULE(w, st, c, nr_match_addr_in_set(r_, NFT_DADDR, S_NODEPORT_IPS) ?:
			       nr_vmap_proto_port(r_, M_NOEP_NODEPORTS));
	else
		RULE(w, st, c, nr_match_fib_local(r_, true) ?: nr_match_not_loopback(r_) ?:
			       nr_vmap_proto_port(r_, M_NOEP_NODEPORTS));
	c = want_chain(w, CH_FIREWALL_CHECK);
	RULE(w, st, c, nr_vmap_addr_proto_port(r_, M_FIREWALL_IPS));
	/* a live ClusterIP on a wrong port is rejected; the rest of the service CIDR dropped */
	c = want_chain(w, CH_CLUSTER_IPS_CHECK);
	RULE(w, st, c, nr_match_addr_in_set(r_, NFT_DADDR, S_CLUSTER_IPS) ?:
		       nr_verdict(r_, NFT_GOTO, CH_REJECT));
	for (size_t i = 0; i < cfg->n_service_cidrs; i++)
		RULE(w, st, c, nr_match_cidr(r_, NFT_DADDR, cfg->service_cidrs[i], false) ?:
			       nr_verdict(r_, NF_DROP, NULL));
	c = want_chain(w, CH_SERVICES);
	RULE(w, st, c, nr_vmap_addr_proto_port(r_, M_SERVICE_IPS));
	if (npset)
		RULE(w, st, c, nr_match_addr_in_set(r_, NFT_DADDR, S_NODEPORT_IPS) ?:
			       nr_vmap_proto_port(r_, M_SERVICE_NODEPORTS));
	else
		RULE(w, st, c, nr_match_fib_local(r_, true) ?: nr_match_not_loopback(r_) ?:
			       nr_vmap_proto_port(r_, M_SERVICE_NODEPORTS));

	for (struct want_chain **b = (struct want_chain *[]){ npre, nout, NULL }; *b; b++) {
		RULE(w, st, *b, nr_verdict(r_, NFT_JUMP, CH_FIREWALL_CHECK));
		RULE(w, st, *b, nr_verdict(r_, NFT_JUMP, CH_SERVICES));
		RULE(w, st, *b, nr_verdict(r_, NFT_JUMP, CH_ENDPOINTS_CHECK));
		RULE(w, st, *b, nr_verdict(r_, NFT_JUMP, CH_CLUSTER_IPS_CHECK));
	}
	RULE(w, st, npost, nr_verdict(r_, NFT_JUMP, CH_MASQUERADING));
}

void build_snat(struct nft_state *st, struct want *w)
{
	const struct proxy_snat_config *s = &st->cfg.snat;
	struct want_chain *c;

	if (!s->enabled || !s->n_pod_cidrs)
		return;
	c = want_base(w, SNAT_CHAIN, "nat", NF_INET_POST_ROUTING, 100);
	for (size_t i = 0; i < s->n_keep; i++)
		RULE(w, st, c, nr_match_cidr(r_, NFT_DADDR, s->keep[i], false) ?:
			       nr_verdict(r_, NFT_RETURN, NULL));
	for (size_t i = 0; i < s->n_pod_cidrs; i++)
		RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, s->pod_cidrs[i], false) ?:
			       (s->to.s_addr ? nr_snat(r_, s->to, NF_NAT_RANGE_PROTO_RANDOM_FULLY)
					     : nr_masquerade(r_, NF_NAT_RANGE_PROTO_RANDOM_FULLY)));
}

static bool eps_equal(const struct plan_endpoint *a, size_t na, const struct plan_endpoint *b,
		      size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].addr.s_addr != b[i].addr.s_addr || a[i].port != b[i].port)
			return false;
	return true;
}

static void ep_names(const char *base, const struct plan_endpoint *ep, char chain[NFT_NAME_MAX],
		     char aff[NFT_NAME_MAX])
{
	char epbase[NFT_NAME_MAX], ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ep->addr, ip, sizeof(ip));
	snprintf(epbase, sizeof(epbase), "%s__%s/%u", base, ip, ep->port);
	nft_hashed_name(chain, "endpoint-", epbase);
	nft_hashed_name(aff, "affinity-", epbase);
}

/*
 * A port dispatches through the global endpoint maps unless it needs
 * per-endpoint chains: session affinity records the chosen endpoint per
 * client (an update in the endpoint's chain), and a map range per endpoint
 * needs at least one numgen value each.
 */
static bool chains_per_endpoint(const struct plan_port *pp)
{
	return pp->affinity_timeout_s || pp->n_cluster_eps > NFT_EP_SLOTS ||
	       pp->n_external_eps > NFT_EP_SLOTS;
}

/*
 * The dispatch map of id's shard for the protocol, created in this batch
 * when neither the record nor the batch has it. It stays when it empties:
 * ids are reused lowest first, so a shard's map is needed again soon.
 */
static int dispatch_map(struct nft_state *st, enum l4_proto p, int32_t id, char out[NFT_NAME_MAX])
{
	char oid[NFT_NAME_MAX + 4];
	struct nftnl_set *set;
	struct obj *o;
	int ret;

	snprintf(out, NFT_NAME_MAX, M_EP_PREFIX "%s-%u", nft_proto_name(p), (uint32_t)id / NFT_EP_SHARD);
	snprintf(oid, sizeof(oid), "s/%s", out);
	if (hashmap_get(st->objs, oid) || (st->b.new_maps && hashmap_get(st->b.new_maps, out)))
		return 0;
	if (!st->b.new_maps && !(st->b.new_maps = hashmap_new()))
		return -ENOMEM;
	set = ns_new(st->table, out, NFT_MAP_ENDPOINTS, nft_ipproto(p), NULL);
	if (!set)
		return -ENOMEM;
	o = obj_new(OBJ_SET, OWNER_DISPATCH, out, set_hash(set));
	ret = o ? emit_newset(st, set) : -ENOMEM;
	nftnl_set_free(set);
	if (!ret)
		ret = map_put(st->b.new_maps, out, (void *)1);
	if (!ret)
		return journal(&st->b, oid, o);
	obj_free(o);
	return ret;
}

/*
 * dnat ip to numgen random mod NFT_EP_SLOTS offset <id's first> map
 * @endpoints-<proto>-<shard>, the chain's slots split into one range per endpoint. An endpoint replaced,
 * added or removed changes map elements only: elements that carry no verdict
 * need no validation of the table's chain graph at commit, which a new rule
 * or a jump/goto element would (a walk of every chain, ~0.1 s at 10k services).
 */
static void build_dispatch(struct nft_state *st, struct want *w, struct want_chain *c,
			   const struct plan_port *pp, const struct plan_endpoint *eps, size_t n)
{
	int32_t id = id_for(st, c->name);
	char map[NFT_NAME_MAX];
	uint32_t base;
	int ret = id < 0 ? id : dispatch_map(st, pp->proto, id, map);

	if (ret) {
		w->err = ret;
		return;
	}
	c->ng_id = id;
	memcpy(c->ep_map, map, strnlen(map, sizeof(c->ep_map) - 1));
	base = (uint32_t)id % NFT_EP_SHARD * NFT_EP_SLOTS;
	RULE(w, st, c, nr_dnat_numgen_map(r_, nft_ipproto(pp->proto), NFT_EP_SLOTS, base, map));
	c->ranges = calloc(n ? n : 1, sizeof(*c->ranges));
	if (!c->ranges) {
		w->err = -ENOMEM;
		return;
	}
	c->n_ranges = n;
	for (size_t i = 0; i < n; i++) {
		struct range *r = &c->ranges[i];

		r->start = base + (uint32_t)((uint64_t)i * NFT_EP_SLOTS / n);
		r->end = base + (uint32_t)((uint64_t)(i + 1) * NFT_EP_SLOTS / n);
		nd_addr_port(r->data, eps[i].addr, eps[i].port);
	}
}

/* The "service-"/"local-" chain: masquerade, affinity, then the choice of an endpoint. */
static void build_policy_chain(struct nft_state *st, struct want *w, const char *name,
			       const char *base, const struct plan_port *pp,
			       const struct plan_endpoint *eps, size_t n, bool cluster_ip_masq)
{
	const struct proxy_backend_config *cfg = &st->cfg;
	struct want_chain *c = want_chain(w, name);
	char chain[NFT_NAME_MAX], aff[NFT_NAME_MAX];

	if (!c)
		return;
	if (cluster_ip_masq && (cfg->masquerade_all || cfg->n_pod_cidrs)) {
		/* kube-proxy: masquerade ClusterIP traffic that comes from outside the pod network */
		for (size_t f = 0; f < pp->n_frontends; f++) {
			const struct plan_frontend *fe = &pp->frontends[f];
			struct ipv4_cidr host = { .addr = fe->addr, .len = 32 };

			if (fe->kind != FE_CLUSTER_IP)
				continue;
			RULE(w, st, c, nr_match_cidr(r_, NFT_DADDR, host, false) ?:
				       nr_match_dport(r_, nft_ipproto(pp->proto), fe->port) ?:
				       (cfg->masquerade_all
						? nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ)
						: cfg->n_pod_cidrs == 1
						? nr_match_cidr(r_, NFT_SADDR, cfg->pod_cidrs[0], true) ?:
							  nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ)
						: nr_verdict(r_, NFT_JUMP, CH_MASQ_NON_POD)));
		}
	}
	if (!chains_per_endpoint(pp)) {
		build_dispatch(st, w, c, pp, eps, n);
		return;
	}
	if (pp->affinity_timeout_s) {
		for (size_t i = 0; i < n; i++) {
			ep_names(base, &eps[i], chain, aff);
			RULE(w, st, c, nr_match_addr_in_set(r_, NFT_SADDR, aff) ?:
				       nr_verdict(r_, NFT_GOTO, chain));
		}
		c->salt = pp->affinity_timeout_s;
	}
	c->map_targets = calloc(n, sizeof(*c->map_targets));
	if (!c->map_targets) {
		w->err = -ENOMEM;
		return;
	}
	c->map_n = n;
	for (size_t i = 0; i < n; i++)
		ep_names(base, &eps[i], c->map_targets[i], aff);
	RULE(w, st, c, nr_vmap_numgen(r_, (uint32_t)n, name));
}

static void build_endpoint(struct nft_state *st, struct want *w, const char *base,
			   const struct plan_port *pp, const struct plan_endpoint *ep)
{
	char chain[NFT_NAME_MAX], aff[NFT_NAME_MAX];
	struct ipv4_cidr host = { .addr = ep->addr, .len = 32 };
	struct want_chain *c;

	ep_names(base, ep, chain, aff);
	for (size_t i = 0; i < w->n_chains; i++)
		if (!strcmp(w->chains[i]->name, chain))
			return; /* in both the cluster and the external list */
	c = want_chain(w, chain);
	/* hairpin: a pod reaching itself through the service must see the node as peer */
	RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, host, false) ?:
		       nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
	if (pp->affinity_timeout_s) {
		want_set(w, ns_new(st->table, aff, NFT_SET_ADDR_TIMEOUT, pp->affinity_timeout_s, NULL));
		RULE(w, st, c, nr_update_saddr(r_, aff));
		if (c)
			c->salt = pp->affinity_timeout_s;
	}
	RULE(w, st, c, nr_dnat(r_, nft_ipproto(pp->proto), ep->addr, ep->port));
}

static void build_port(struct nft_state *st, struct want *w, const struct plan_service *ps,
		       const struct plan_port *pp)
{
	const struct proxy_backend_config *cfg = &st->cfg;
	char base[NFT_NAME_MAX], svc[NFT_NAME_MAX], local[NFT_NAME_MAX], ext[NFT_NAME_MAX],
		fw[NFT_NAME_MAX];
	const char *policy = NULL; /* the chain external traffic ends up in */
	bool has_ext_fe = false, has_lb_fw = false, has_ext_chain = false;
	uint8_t proto = nft_ipproto(pp->proto);
	size_t ncl = pp->n_cluster_eps, nex = pp->n_external_eps;
	struct want_chain *c;

	snprintf(base, sizeof(base), "%s/%s/%s/%s", ps->ns, ps->name, nft_proto_name(pp->proto),
		 pp->name ? pp->name : "");
	nft_hashed_name(svc, "service-", base);
	nft_hashed_name(local, "local-", base);
	nft_hashed_name(ext, "external-", base);
	nft_hashed_name(fw, "firewall-", base);

	for (size_t f = 0; f < pp->n_frontends; f++) {
		has_ext_fe |= pp->frontends[f].external;
		has_lb_fw |= pp->frontends[f].kind == FE_LOAD_BALANCER && pp->n_source_ranges;
	}
	for (size_t i = 0; chains_per_endpoint(pp) && i < ncl; i++)
		build_endpoint(st, w, base, pp, &pp->cluster_eps[i]);
	for (size_t i = 0; chains_per_endpoint(pp) && i < nex; i++)
		build_endpoint(st, w, base, pp, &pp->external_eps[i]);
	if (ncl)
		build_policy_chain(st, w, svc, base, pp, pp->cluster_eps, ncl, true);
	if (nex) {
		if (ncl && eps_equal(pp->cluster_eps, ncl, pp->external_eps, nex)) {
			policy = svc;
		} else {
			build_policy_chain(st, w, local, base, pp, pp->external_eps, nex, false);
			policy = local;
		}
	}
	if (has_ext_fe && (ncl || nex)) {
		bool masq = !pp->external_local && pp->masquerade_external;

		/* only when it would hold a rule: a chain with no rule carries no hash */
		if (masq || nex || pp->external_local) {
			c = want_chain(w, ext);
			has_ext_chain = true;
			if (masq)
				RULE(w, st, c, nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
			if (pp->external_local) {
				/* pods and the node itself are not subject to the external policy */
				for (size_t i = 0; ncl && i < cfg->n_pod_cidrs; i++)
					RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, cfg->pod_cidrs[i], false) ?:
						       nr_verdict(r_, NFT_GOTO, svc));
				RULE(w, st, c, nr_match_fib_local(r_, false) ?:
					       nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
				if (ncl)
					RULE(w, st, c, nr_match_fib_local(r_, false) ?:
						       nr_verdict(r_, NFT_GOTO, svc));
			}
			if (nex)
				RULE(w, st, c, nr_verdict(r_, NFT_GOTO, policy));
		}
	}
	if (has_lb_fw) {
		c = want_chain(w, fw);
		for (size_t i = 0; i < pp->n_source_ranges; i++)
			RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, pp->source_ranges[i], false) ?:
				       nr_verdict(r_, NFT_RETURN, NULL));
		RULE(w, st, c, nr_verdict(r_, NF_DROP, NULL));
	}

	for (size_t f = 0; f < pp->n_frontends; f++) {
		const struct plan_frontend *fe = &pp->frontends[f];
		bool np = fe->kind == FE_NODE_PORT;
		const char *map = np ? M_SERVICE_NODEPORTS : M_SERVICE_IPS;
		const char *noep = np ? M_NOEP_NODEPORTS : M_NOEP_SERVICES;
		uint8_t key[12];
		size_t klen = np ? nk_proto_port(key, proto, fe->port)
				 : nk_addr_proto_port(key, fe->addr, proto, fe->port);
		/*
		 * kube-proxy: no usable endpoint anywhere -> reject; endpoints exist but
		 * none this traffic may use (a Local policy, none on this node) -> drop.
		 */
		int noverdict = pp->has_endpoints ? NF_DROP : NFT_GOTO;

		if (fe->kind == FE_CLUSTER_IP) {
			uint8_t ak[4];
			char owner[NFT_NAME_MAX];

			snprintf(owner, sizeof(owner), "%s/%s", ps->ns, ps->name);
			want_elem(w, S_CLUSTER_IPS, ak, nk_addr(ak, fe->addr), INT32_MIN, NULL, owner);
		}
		if (!fe->external) {
			if (ncl)
				want_elem(w, map, key, klen, NFT_GOTO, svc, NULL);
			else
				want_elem(w, noep, key, klen, noverdict,
					  noverdict == NFT_GOTO ? CH_REJECT : NULL, base);
			continue;
		}
		if (has_ext_chain)
			want_elem(w, map, key, klen, NFT_GOTO, ext, NULL);
		if (!nex)
			want_elem(w, noep, key, klen, noverdict,
				  noverdict == NFT_GOTO ? CH_REJECT : NULL, base);
		if (fe->kind == FE_LOAD_BALANCER && has_lb_fw)
			want_elem(w, M_FIREWALL_IPS, key, klen, NFT_GOTO, fw, base);
	}
}

void want_service(struct nft_state *st, struct want *w, const struct plan_service *ps)
{
	for (size_t i = 0; ps && i < ps->n_ports; i++)
		build_port(st, w, ps, &ps->ports[i]);
}
