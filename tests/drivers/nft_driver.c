// SPDX-License-Identifier: Apache-2.0
/*
 * Test driver for the nftables backend (proxy/nft*.c): reads a JSON script
 * on stdin, builds plans by hand (no plan.c), runs the backend's ops in the
 * calling netns and prints one JSON line per step.
 *
 * {"config": {"table": "berth", "nodeport_ips": [...], "service_cidrs": [...],
 *             "pod_cidrs": [...], "max_batch_msgs": N,
 *             "snat": {"pod_cidrs": [...], "keep": [...], "to": "a.b.c.d"}},
 *  "steps": [{"op": "adopt"}, {"op": "apply", "full": bool, "services": [SVC...],
 *             "remove": ["ns/name"]}, {"op": "gen", "count": N, "eps": M},
 *            {"op": "gen_change", "index": I, "ep": J}, {"op": "gen_resize", "index": I,
 *             "eps": M}, {"op": "cleanup"}]}
 * gen_change moves endpoint J of generated service I to a fresh address;
 * gen_resize gives it M endpoints (its first ones kept, new ones fresh).
 * SVC: {"ns", "name", "ports": [{"name", "proto", "frontends": [{"kind": "cluster|
 *       nodeport|external|lb", "addr", "port", "external"}], "cluster_eps": [{"addr",
 *       "port"}], "external_eps": [...], "external_local", "masquerade_external",
 *       "affinity", "source_ranges": [...]}]}
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../../proxy/backend.h"

static int cidr(const char *s, struct ipv4_cidr *c)
{
	char buf[64];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	c->len = 32;
	if (slash) {
		*slash = '\0';
		c->len = (uint8_t)atoi(slash + 1);
	}
	return inet_pton(AF_INET, buf, &c->addr) == 1 ? 0 : -EINVAL;
}

static size_t cidrs(json_t *a, struct ipv4_cidr *out, size_t max)
{
	size_t i, n = 0;
	json_t *v;

	json_array_foreach(a, i, v) {
		if (n < max && !cidr(json_string_value(v), &out[n]))
			n++;
	}
	return n;
}

static void eps(json_t *a, struct plan_endpoint **out, size_t *n)
{
	size_t i;
	json_t *v;

	*n = json_array_size(a);
	*out = calloc(*n ? *n : 1, sizeof(**out));
	json_array_foreach(a, i, v) {
		inet_pton(AF_INET, json_string_value(json_object_get(v, "addr")), &(*out)[i].addr);
		(*out)[i].port = (uint16_t)json_integer_value(json_object_get(v, "port"));
		(*out)[i].local = json_is_true(json_object_get(v, "local"));
	}
}

static void free_service(struct plan_service *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_ports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].frontends);
		free(s->ports[i].cluster_eps);
		free(s->ports[i].external_eps);
		free(s->ports[i].source_ranges);
	}
	free(s->ports);
	free(s->ns);
	free(s->name);
	free(s);
}

static struct plan_service *parse_service(json_t *j)
{
	struct plan_service *s = calloc(1, sizeof(*s));
	json_t *ports = json_object_get(j, "ports"), *p;
	size_t i;

	s->ns = strdup(json_string_value(json_object_get(j, "ns")));
	s->name = strdup(json_string_value(json_object_get(j, "name")));
	s->n_ports = json_array_size(ports);
	s->ports = calloc(s->n_ports ? s->n_ports : 1, sizeof(*s->ports));
	json_array_foreach(ports, i, p) {
		struct plan_port *pp = &s->ports[i];
		const char *proto = json_string_value(json_object_get(p, "proto"));
		json_t *fes = json_object_get(p, "frontends"), *f;
		size_t k;

		pp->name = strdup(json_string_value(json_object_get(p, "name")) ?: "");
		pp->proto = !strcmp(proto, "udp") ? L4_UDP : !strcmp(proto, "sctp") ? L4_SCTP : L4_TCP;
		pp->n_frontends = json_array_size(fes);
		pp->frontends = calloc(pp->n_frontends ? pp->n_frontends : 1, sizeof(*pp->frontends));
		json_array_foreach(fes, k, f) {
			const char *kind = json_string_value(json_object_get(f, "kind"));
			struct plan_frontend *fe = &pp->frontends[k];

			fe->kind = !strcmp(kind, "nodeport") ? FE_NODE_PORT
				   : !strcmp(kind, "external") ? FE_EXTERNAL_IP
				   : !strcmp(kind, "lb") ? FE_LOAD_BALANCER : FE_CLUSTER_IP;
			if (json_object_get(f, "addr"))
				inet_pton(AF_INET, json_string_value(json_object_get(f, "addr")), &fe->addr);
			fe->port = (uint16_t)json_integer_value(json_object_get(f, "port"));
			fe->external = fe->kind != FE_CLUSTER_IP;
		}
		eps(json_object_get(p, "cluster_eps"), &pp->cluster_eps, &pp->n_cluster_eps);
		if (json_object_get(p, "external_eps"))
			eps(json_object_get(p, "external_eps"), &pp->external_eps, &pp->n_external_eps);
		else
			eps(json_object_get(p, "cluster_eps"), &pp->external_eps, &pp->n_external_eps);
		pp->external_local = json_is_true(json_object_get(p, "external_local"));
		pp->masquerade_external = !json_is_false(json_object_get(p, "masquerade_external"));
		pp->affinity_timeout_s = (uint32_t)json_integer_value(json_object_get(p, "affinity"));
		pp->source_ranges = calloc(PROXY_MAX_CIDRS, sizeof(*pp->source_ranges));
		pp->n_source_ranges = cidrs(json_object_get(p, "source_ranges"), pp->source_ranges,
					    PROXY_MAX_CIDRS);
	}
	return s;
}

/* Service i of a generated cluster: ClusterIP 198.19.x.y:80 -> eps endpoints in 198.18.128.0/17. */
static struct plan_service *gen_service(size_t i, size_t n_eps, size_t bump)
{
	struct plan_service *s = calloc(1, sizeof(*s));
	struct plan_port *pp;

	if (asprintf(&s->ns, "ns%zu", i % 100) < 0 || asprintf(&s->name, "svc%zu", i) < 0)
		abort();
	s->n_ports = 1;
	s->ports = pp = calloc(1, sizeof(*pp));
	pp->name = strdup("http");
	pp->proto = L4_TCP;
	pp->n_frontends = 1;
	pp->frontends = calloc(1, sizeof(*pp->frontends));
	pp->frontends[0] = (struct plan_frontend){
		.kind = FE_CLUSTER_IP,
		.addr.s_addr = htonl(0xc6130000u + 1 + (uint32_t)i), /* 198.19.0.1 + i */
		.port = 80,
	};
	pp->n_cluster_eps = pp->n_external_eps = n_eps;
	pp->cluster_eps = calloc(n_eps, sizeof(*pp->cluster_eps));
	pp->external_eps = calloc(n_eps, sizeof(*pp->external_eps));
	for (size_t e = 0; e < n_eps; e++) {
		uint32_t a = 0xc6128000u + (uint32_t)((i * n_eps + e + bump) % 32000); /* 198.18.128.0/17 */

		pp->cluster_eps[e] = (struct plan_endpoint){ .addr.s_addr = htonl(a), .port = 8080 };
		pp->external_eps[e] = pp->cluster_eps[e];
	}
	pp->masquerade_external = true;
	return s;
}

/* Generated service p with m endpoints: the first ones kept, the others at fresh addresses (198.18.254.x). */
static int resize(struct plan_service *p, size_t m, struct proxy_apply_stats *s, void *st,
		  const struct proxy_backend_ops *ops, char *err, size_t errlen)
{
	struct plan_port *pp = &p->ports[0];
	struct plan_endpoint *c = calloc(m ? m : 1, sizeof(*c)), *e = calloc(m ? m : 1, sizeof(*e));
	struct proxy_change ch;
	char key[128];

	for (size_t i = 0; i < m; i++) {
		c[i] = i < pp->n_cluster_eps ? pp->cluster_eps[i]
					     : (struct plan_endpoint){ .addr.s_addr = htonl(0xc612fe00u + (uint32_t)i),
								       .port = 8080 };
		e[i] = c[i];
	}
	free(pp->cluster_eps);
	free(pp->external_eps);
	pp->cluster_eps = c;
	pp->external_eps = e;
	pp->n_cluster_eps = pp->n_external_eps = m;
	pp->has_endpoints = m > 0;
	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	ch = (struct proxy_change){ .key = key, .old = p, .new = p };
	return ops->apply(st, &ch, 1, 0, s, err, errlen);
}

static json_t *stats_json(const struct proxy_apply_stats *s)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "batches",
			 (json_int_t)s->batches, "messages", (json_int_t)s->messages, "services_changed",
			 (json_int_t)s->services_changed, "services_unchanged",
			 (json_int_t)s->services_unchanged, "chains_added", (json_int_t)s->chains_added,
			 "chains_replaced", (json_int_t)s->chains_replaced, "chains_deleted",
			 (json_int_t)s->chains_deleted, "sets_added", (json_int_t)s->sets_added,
			 "elems_added", (json_int_t)s->elems_added, "elems_deleted",
			 (json_int_t)s->elems_deleted, "rules_added", (json_int_t)s->rules_added,
			 "seconds", (double)s->elapsed_ns / 1e9);
}

/* CPU time of this process (ours and the kernel's work in our syscalls), in seconds */
static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * One line per step. "cpu_seconds" (user + system time of the step) is
 * what the step costs on an idle machine; "seconds" is wall time, which
 * other load on a shared machine inflates.
 */
static void report(const char *op, int ret, const char *err, const struct proxy_apply_stats *s,
		   double cpu)
{
	json_t *o = json_pack("{s:s,s:i,s:s}", "op", op, "ret", ret, "err", err);

	if (s) {
		json_t *js = stats_json(s);

		json_object_set_new(js, "cpu_seconds", json_real(cpu));
		json_object_set_new(o, "stats", js);
	}
	json_dumpf(o, stdout, JSON_COMPACT);
	printf("\n");
	fflush(stdout);
	json_decref(o);
}

int main(void)
{
	const struct proxy_backend_ops *ops = &nft_backend_ops;
	struct proxy_backend_config cfg = { .services = true };
	struct plan_service **gen = NULL;
	size_t n_gen = 0, gen_eps = 0;
	json_error_t jerr;
	json_t *root = json_loadf(stdin, 0, &jerr), *c, *steps, *step, *snat;
	void *st = NULL;
	char err[1024] = "";
	size_t i;
	int ret, rc = 0;

	if (!root) {
		fprintf(stderr, "bad script: %s\n", jerr.text);
		return 2;
	}
	c = json_object_get(root, "config");
	cfg.table = json_string_value(json_object_get(c, "table"));
	{
		struct ipv4_cidr tmp[PLAN_MAX_NODE_IPS];

		cfg.n_nodeport_ips = cidrs(json_object_get(c, "nodeport_ips"), tmp, PLAN_MAX_NODE_IPS);
		for (size_t k = 0; k < cfg.n_nodeport_ips; k++)
			cfg.nodeport_ips[k] = tmp[k].addr;
	}
	cfg.n_service_cidrs = cidrs(json_object_get(c, "service_cidrs"), cfg.service_cidrs, PROXY_MAX_CIDRS);
	cfg.n_pod_cidrs = cidrs(json_object_get(c, "pod_cidrs"), cfg.pod_cidrs, PROXY_MAX_CIDRS);
	cfg.max_batch_msgs = (size_t)json_integer_value(json_object_get(c, "max_batch_msgs"));
	if (json_is_false(json_object_get(c, "services")))
		cfg.services = false;
	snat = json_object_get(c, "snat");
	if (snat) {
		cfg.snat.enabled = true;
		cfg.snat.n_pod_cidrs = cidrs(json_object_get(snat, "pod_cidrs"), cfg.snat.pod_cidrs, PROXY_MAX_CIDRS);
		cfg.snat.n_keep = cidrs(json_object_get(snat, "keep"), cfg.snat.keep, PROXY_MAX_CIDRS);
		if (json_object_get(snat, "to"))
			inet_pton(AF_INET, json_string_value(json_object_get(snat, "to")), &cfg.snat.to);
	}
	ret = ops->init(&st, &cfg, err, sizeof(err));
	report("init", ret, err, NULL, 0);
	if (ret)
		goto out;
	steps = json_object_get(root, "steps");
	json_array_foreach(steps, i, step) {
		const char *op = json_string_value(json_object_get(step, "op"));
		struct proxy_apply_stats s = { 0 };
		double cpu0 = cpu_now();

		err[0] = '\0';
		if (!strcmp(op, "adopt")) {
			ret = ops->adopt(st, &s, err, sizeof(err));
		} else if (!strcmp(op, "apply")) {
			json_t *svcs = json_object_get(step, "services"), *rm = json_object_get(step, "remove"), *v;
			size_t n = json_array_size(svcs) + json_array_size(rm), k, m = 0;
			struct proxy_change *ch = calloc(n ? n : 1, sizeof(*ch));
			struct plan_service **plans = calloc(n ? n : 1, sizeof(*plans));
			char **keys = calloc(n ? n : 1, sizeof(*keys));

			json_array_foreach(svcs, k, v) {
				plans[m] = parse_service(v);
				if (asprintf(&keys[m], "%s/%s", plans[m]->ns, plans[m]->name) < 0)
					abort();
				ch[m] = (struct proxy_change){ .key = keys[m], .new = plans[m] };
				m++;
			}
			json_array_foreach(rm, k, v) {
				keys[m] = strdup(json_string_value(v));
				ch[m] = (struct proxy_change){ .key = keys[m] };
				m++;
			}
			ret = ops->apply(st, ch, m, json_is_true(json_object_get(step, "full")) ? PROXY_APPLY_FULL : 0,
					 &s, err, sizeof(err));
			for (k = 0; k < m; k++) {
				free_service(plans[k]);
				free(keys[k]);
			}
			free(plans);
			free(keys);
			free(ch);
		} else if (!strcmp(op, "gen")) {
			size_t n = (size_t)json_integer_value(json_object_get(step, "count"));
			struct proxy_change *ch = calloc(n, sizeof(*ch));
			char **keys = calloc(n, sizeof(*keys));

			for (size_t k = 0; k < n_gen; k++)
				free_service(gen[k]);
			free(gen);
			gen_eps = (size_t)json_integer_value(json_object_get(step, "eps"));
			gen = calloc(n, sizeof(*gen));
			n_gen = n;
			for (size_t k = 0; k < n; k++) {
				gen[k] = gen_service(k, gen_eps, 0);
				if (asprintf(&keys[k], "%s/%s", gen[k]->ns, gen[k]->name) < 0)
					abort();
				ch[k] = (struct proxy_change){ .key = keys[k], .new = gen[k] };
			}
			ret = ops->apply(st, ch, n, json_is_true(json_object_get(step, "full")) ? PROXY_APPLY_FULL : 0,
					 &s, err, sizeof(err));
			for (size_t k = 0; k < n; k++)
				free(keys[k]);
			free(keys);
			free(ch);
		} else if (!strcmp(op, "gen_change")) {
			size_t k = (size_t)json_integer_value(json_object_get(step, "index"));
			size_t e = (size_t)json_integer_value(json_object_get(step, "ep"));
			char key[128];
			struct proxy_change ch;

			if (k >= n_gen || e >= gen_eps) {
				ret = -EINVAL;
			} else {
				struct plan_port *pp = &gen[k]->ports[0];

				/* move one endpoint to a fresh address (198.18.255.x) */
				pp->cluster_eps[e].addr.s_addr = htonl(0xc612ff00u + (uint32_t)(e + 1));
				pp->external_eps[e] = pp->cluster_eps[e];
				snprintf(key, sizeof(key), "%s/%s", gen[k]->ns, gen[k]->name);
				ch = (struct proxy_change){ .key = key, .old = gen[k], .new = gen[k] };
				ret = ops->apply(st, &ch, 1, 0, &s, err, sizeof(err));
			}
		} else if (!strcmp(op, "gen_resize")) {
			size_t k = (size_t)json_integer_value(json_object_get(step, "index"));
			size_t m = (size_t)json_integer_value(json_object_get(step, "eps"));

			ret = k < n_gen ? resize(gen[k], m, &s, st, ops, err, sizeof(err)) : -EINVAL;
		} else if (!strcmp(op, "cleanup")) {
			ret = ops->cleanup(st, err, sizeof(err));
		} else if (!strcmp(op, "snat_off")) {
			struct proxy_snat_config off = { .enabled = false };

			ret = ops->set_snat(st, &off, &s, err, sizeof(err));
		} else {
			ret = -EINVAL;
		}
		report(op, ret, err, &s, cpu_now() - cpu0);
		if (ret && !json_is_true(json_object_get(step, "may_fail")))
			rc = 1;
	}
out:
	ops->destroy(st);
	for (size_t k = 0; k < n_gen; k++)
		free_service(gen[k]);
	free(gen);
	json_decref(root);
	return rc;
}
