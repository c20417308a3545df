// SPDX-License-Identifier: Apache-2.0
/*
 * The proxy plan: the input is a golden-test case (tests/golden/plan/<shape>.in.json:
 * {"node": {...}, "service": {...}, "endpointslices": [...]}), decoded with
 * the agent's decoder and planned. Whatever the objects say, planning must
 * not crash or leak, must not depend on the order of the slices, and must
 * keep the plan's own promises (sorted, unique lists; external lists only
 * with external frontends; a rendering for every plan).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "k8s_model.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1 << 20)
#define MAX_SLICES 64

/* ------------------------------------------------------------ node facts */

static void node_addrs(const json_t *arr, struct in_addr *out, size_t max, size_t *n)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (*n == max)
			return;
		if (json_is_string(v) && inet_pton(AF_INET, json_string_value(v), &out[*n]) == 1)
			(*n)++;
	}
}

static void node_cidrs(const json_t *arr, struct ipv4_cidr *out, size_t max, size_t *n)
{
	unsigned int plen;
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (*n == max)
			return;
		if (json_is_string(v) &&
		    parse_ipv4_cidr(json_string_value(v), &out[*n].addr, &plen, 0) == 0) {
			out[*n].len = (uint8_t)plen;
			(*n)++;
		}
	}
}

/* Leniently: a field that does not parse keeps the default, so inputs stay interesting. */
static void parse_node(const json_t *j, struct plan_node *n)
{
	const json_t *v;

	*n = (struct plan_node){ .name = "node-a", .n_nodeport_ips = 1 };
	inet_pton(AF_INET, "198.18.0.1", &n->node_ip);
	n->nodeport_ips[0] = n->node_ip;
	if (!json_is_object(j))
		return;
	v = json_object_get(j, "name");
	if (json_is_string(v))
		n->name = json_string_value(v);
	v = json_object_get(j, "zone");
	if (json_is_string(v))
		n->zone = json_string_value(v);
	v = json_object_get(j, "node_ip");
	if (json_is_string(v))
		inet_pton(AF_INET, json_string_value(v), &n->node_ip);
	v = json_object_get(j, "nodeport_ips");
	if (json_is_array(v)) {
		n->n_nodeport_ips = 0;
		node_addrs(v, n->nodeport_ips, PLAN_MAX_NODE_IPS, &n->n_nodeport_ips);
	}
	node_cidrs(json_object_get(j, "pod_cidrs"), n->pod_cidrs, PLAN_MAX_CIDRS, &n->n_pod_cidrs);
	n->masquerade_all = json_is_true(json_object_get(j, "masquerade_all"));
}

/* ------------------------------------------------------------ invariants */

static int addr_cmp(struct in_addr a, struct in_addr b)
{
	uint32_t x = ntohl(a.s_addr), y = ntohl(b.s_addr);

	return (x > y) - (x < y);
}

/* Sorted by address then port, no duplicates: what the backends diff against. */
static void check_eps(const struct plan_endpoint *e, size_t n)
{
	if (n && !e)
		abort();
	for (size_t i = 1; i < n; i++) {
		int c = addr_cmp(e[i - 1].addr, e[i].addr);

		if (c > 0 || (c == 0 && e[i - 1].port >= e[i].port))
			abort();
	}
}

static void check_frontends(const struct plan_port *pp, bool *external)
{
	*external = false;
	for (size_t i = 0; i < pp->n_frontends; i++) {
		const struct plan_frontend *a = &pp->frontends[i];

		if (a->external != (a->kind != FE_CLUSTER_IP))
			abort();
		if (a->kind == FE_NODE_PORT && ntohl(a->addr.s_addr) >> 24 == 127)
			abort(); /* never a loopback NodePort */
		*external |= a->external;
		if (i && (pp->frontends[i - 1].kind > a->kind ||
			  (pp->frontends[i - 1].kind == a->kind &&
			   (addr_cmp(pp->frontends[i - 1].addr, a->addr) > 0 ||
			    (!addr_cmp(pp->frontends[i - 1].addr, a->addr) &&
			     pp->frontends[i - 1].port >= a->port)))))
			abort();
	}
}

static void check_port(const struct plan_port *pp)
{
	bool external;

	if (!pp->name)
		abort();
	check_frontends(pp, &external);
	check_eps(pp->cluster_eps, pp->n_cluster_eps);
	check_eps(pp->external_eps, pp->n_external_eps);
	check_eps(pp->short_circuit_eps, pp->n_short_circuit_eps);
	/* No external frontend: nothing external to decide. */
	if (!external && (pp->n_external_eps || pp->n_short_circuit_eps || pp->external_local ||
			  pp->masquerade_external))
		abort();
	/* The short-circuit exists only for the Local policy; Cluster never drops. */
	if (!pp->external_local && pp->n_short_circuit_eps)
		abort();
	/* No usable endpoint anywhere: every list is empty (reject). */
	if (!pp->has_endpoints &&
	    (pp->n_cluster_eps || pp->n_external_eps || pp->n_short_circuit_eps))
		abort();
	/* Cluster policies use every usable endpoint: empty only when there is none. */
	if (!pp->internal_local && pp->has_endpoints != (pp->n_cluster_eps > 0))
		abort();
	if (external && !pp->external_local && pp->has_endpoints != (pp->n_external_eps > 0))
		abort();
	/* Local lists hold only this node's endpoints. */
	for (size_t i = 0; pp->internal_local && i < pp->n_cluster_eps; i++)
		if (!pp->cluster_eps[i].local)
			abort();
	for (size_t i = 0; pp->external_local && i < pp->n_external_eps; i++)
		if (!pp->external_eps[i].local)
			abort();
	for (size_t i = 0; i < pp->n_source_ranges; i++)
		if (pp->source_ranges[i].len > 32)
			abort();
}

static void check_plan(const struct plan_service *p, const struct plan_service *rev)
{
	json_t *j1, *j2;
	char *text;

	if (!plan_equal(p, p) || !plan_equal(p, rev) || !plan_equal(rev, p))
		abort(); /* the slices' order must not matter */
	if (!p->health_check_node_port && p->n_local_endpoints)
		abort();
	for (size_t i = 0; i < p->n_ports; i++)
		check_port(&p->ports[i]);
	j1 = plan_to_json(p);
	j2 = plan_to_json(rev);
	if (!j1 || !j2 || !json_equal(j1, j2))
		abort();
	text = json_dumps(j1, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		abort();
	free(text);
	json_decref(j2);
	json_decref(j1);
}

/* ------------------------------------------------------------------ run */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct k8s_endpointslice *fwd[MAX_SLICES], *rev[MAX_SLICES];
	struct k8s_object *svc, *slices[MAX_SLICES];
	struct plan_service *p, *q;
	bool ignored, rev_ignored;
	struct plan_node node;
	const json_t *arr;
	size_t n = 0, i;
	char err[512];
	json_t *root, *v;

	root = jx_loadb_object((const char *)data, size, MAX_INPUT, err, sizeof(err));
	if (!root)
		return 0;
	svc = k8s_decode(K8S_SERVICE, json_object_get(root, "service"), err, sizeof(err));
	if (!svc)
		goto out_root;
	parse_node(json_object_get(root, "node"), &node);
	/* Slices that do not decode are left out, as the agent's cache leaves them out. */
	arr = json_object_get(root, "endpointslices");
	json_array_foreach(arr, i, v) {
		if (n == MAX_SLICES)
			break;
		slices[n] = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
		if (slices[n])
			n++;
	}
	for (i = 0; i < n; i++) {
		fwd[i] = &slices[i]->eps;
		rev[n - 1 - i] = &slices[i]->eps;
	}

	p = plan_build(&svc->svc, fwd, n, &node, &ignored);
	q = plan_build(&svc->svc, rev, n, &node, &rev_ignored);
	if (!p != !q || ignored != rev_ignored || (!p && !ignored) || (p && ignored))
		abort(); /* NULL only for ignored services: these inputs cannot exhaust memory */
	if (p)
		check_plan(p, q);
	plan_free(q);
	plan_free(p);

	for (i = 0; i < n; i++)
		k8s_object_free(slices[i]);
	k8s_object_free(svc);
out_root:
	json_decref(root);
	return 0;
}
