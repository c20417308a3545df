// SPDX-License-Identifier: Apache-2.0
/* Prometheus text metrics, /healthz and /readyz for --metrics-addr. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

struct text {
	FILE *f;
	char *buf;
	size_t len;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(t->f, fmt, ap);
	va_end(ap);
}

static void help(struct text *t, const char *name, const char *type, const char *what)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, what, name, type);
}

static char *metrics_text(const struct agent *a)
{
	const struct agent_counters *c = &a->counters;
	struct text t = { 0 };
	struct ipam_stats st;

	t.f = open_memstream(&t.buf, &t.len);
	if (!t.f)
		return NULL;
	ipam_get_stats(a->ipam, clock_wall_ms(), &st);
	help(&t, "berth_ipam_addresses", "gauge", "Pool addresses by state.");
	put(&t, "berth_ipam_addresses{state=\"free\"} %zu\n", st.free);
	put(&t, "berth_ipam_addresses{state=\"assigned\"} %zu\n", st.assigned);
	put(&t, "berth_ipam_addresses{state=\"cooling\"} %zu\n", st.cooling);
	help(&t, "berth_ipam_pool_size", "gauge", "Addresses in the pool.");
	put(&t, "berth_ipam_pool_size %zu\n", st.size);
	help(&t, "berth_cni_requests_total", "counter", "CNI requests served, by op and result.");
	put(&t, "berth_cni_requests_total{op=\"add\",result=\"ok\"} %llu\n", (unsigned long long)c->add_ok);
	put(&t, "berth_cni_requests_total{op=\"add\",result=\"error\"} %llu\n", (unsigned long long)c->add_err);
	put(&t, "berth_cni_requests_total{op=\"del\",result=\"ok\"} %llu\n", (unsigned long long)c->del_ok);
	put(&t, "berth_cni_requests_total{op=\"check\",result=\"ok\"} %llu\n", (unsigned long long)c->check_ok);
	put(&t, "berth_cni_requests_total{op=\"check\",result=\"error\"} %llu\n", (unsigned long long)c->check_err);
	put(&t, "berth_cni_requests_total{op=\"malformed\",result=\"error\"} %llu\n",
	    (unsigned long long)c->bad_requests);
	help(&t, "berth_ipam_reclaimed_total", "counter", "Addresses released because their pod is gone.");
	put(&t, "berth_ipam_reclaimed_total %llu\n", (unsigned long long)c->reclaimed);
	help(&t, "berth_ipam_gc_released_total", "counter", "Addresses released by CNI GC.");
	put(&t, "berth_ipam_gc_released_total %llu\n", (unsigned long long)c->gc_released);
	help(&t, "berth_checkpoint_writes_total", "counter", "IPAM checkpoint writes, by result.");
	put(&t, "berth_checkpoint_writes_total{result=\"ok\"} %llu\n", (unsigned long long)c->commits);
	put(&t, "berth_checkpoint_writes_total{result=\"error\"} %llu\n", (unsigned long long)c->commit_errors);

	static const struct {
		const char *name, *type, *what;
	} per_kind[] = {
		{ "berth_cache_objects", "gauge", "Objects in the agent's cache." },
		{ "berth_cache_synced", "gauge", "1 once the initial list has completed." },
		{ "berth_sync_events_total", "counter", "Objects and events applied to the cache." },
		{ "berth_sync_decode_errors_total", "counter", "Objects or events that failed to decode." },
		{ "berth_sync_relists_total", "counter", "Relists after 410 Gone or an expired continue." },
		{ "berth_sync_watch_restarts_total", "counter", "Watches that ended or broke and resumed." },
	};
	for (size_t m = 0; a->source != SOURCE_NONE && m < sizeof(per_kind) / sizeof(per_kind[0]); m++) {
		help(&t, per_kind[m].name, per_kind[m].type, per_kind[m].what);
		for (int k = 0; k < K8S_NKINDS; k++) {
			struct kcache_kind_stats ks;
			unsigned long long v;

			kcache_stats(a->kc, (enum k8s_kind)k, &ks);
			switch (m) {
			case 0: v = ks.count; break;
			case 1: v = ks.synced; break;
			case 2: v = ks.events; break;
			case 3: v = ks.decode_errors; break;
			case 4: v = ks.relists; break;
			default: v = ks.watch_restarts; break;
			}
			put(&t, "%s{resource=\"%s\"} %llu\n", per_kind[m].name,
			    k8s_kind_name((enum k8s_kind)k), v);
		}
	}
	fclose(t.f);
	return t.buf;
}

void agent_handle_http(void *ctx, const char *path, struct http_reply *reply)
{
	const struct agent *agent = ctx;

	reply->status = 200;
	if (strcmp(path, "/metrics") == 0) {
		reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
		reply->body = metrics_text(agent);
	} else if (strcmp(path, "/healthz") == 0) {
		reply->body = strdup("ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		bool ready = agent_is_ready(agent);

		reply->status = ready ? 200 : 503;
		reply->body = strdup(ready ? "ok\n" : !agent->ready ? "ipam not serving\n"
								  : "caches not synced\n");
	} else {
		reply->status = 404;
		reply->body = strdup("not found\n");
	}
}
