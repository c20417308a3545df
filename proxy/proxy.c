// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "conntrack.h"
#include "hashmap.h"
#include "httpd.h"
#include "log.h"
#include "proxy.h"

/* Changes that arrive together are applied together: wait this long after the first. */
#define COALESCE_MS 10
#define RETRY_BASE_MS 500
#define RETRY_CAP_MS 30000

/* When a service's current kernel state was applied: berthctl shows it per service. */
struct programmed {
	uint64_t generation;
	int64_t at; /* wall ms */
};

struct health_server {
	uint16_t port;
	struct httpd *httpd;
	struct proxy *proxy;
	char *service; /* "ns/name" */
};

struct proxy {
	struct server *srv;
	struct kcache *kc;
	struct proxy_opts opts;
	const struct proxy_backend_ops *ops;
	void *state;
	int timer_fd;
	struct server_fd *timer_w;
	bool timer_armed;
	bool first_sync_done;       /* the first apply is a full one (after adopt) */
	struct hashmap *pending;    /* service keys to reconcile -> (void *)1 */
	struct hashmap *applied;    /* service key -> struct plan_service (what the kernel has) */
	struct hashmap *programmed; /* service key -> struct programmed (when it got there) */
	struct hashmap *health;     /* "port" -> struct health_server */
	int failures;
	uint64_t generation;        /* successful applies */
	int64_t last_sync_at;       /* wall ms */
	struct proxy_apply_stats last_stats;
	char last_error[512];
	int64_t last_error_at;
};

static void arm(struct proxy *p, int64_t delay_ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = delay_ms / 1000,
						.tv_nsec = (delay_ms % 1000) * 1000000 + 1 } };

	timerfd_settime(p->timer_fd, 0, &its, NULL);
	p->timer_armed = true;
}

/* ---- node facts ---- */

static void node_facts(const struct proxy *p, struct plan_node *n)
{
	const struct k8s_object *node = kcache_get(p->kc, K8S_NODE, p->opts.node_name);

	*n = (struct plan_node){
		.name = p->opts.node_name,
		.node_ip = p->opts.node_ip,
		.masquerade_all = p->opts.backend_cfg.masquerade_all,
		.n_pod_cidrs = p->opts.backend_cfg.n_pod_cidrs,
	};
	memcpy(n->pod_cidrs, p->opts.backend_cfg.pod_cidrs,
	       n->n_pod_cidrs * sizeof(n->pod_cidrs[0]));
	if (node)
		n->zone = node->node.zone;
	if (p->opts.nodeport_ips_given) {
		n->n_nodeport_ips = p->opts.backend_cfg.n_nodeport_ips;
		memcpy(n->nodeport_ips, p->opts.backend_cfg.nodeport_ips,
		       n->n_nodeport_ips * sizeof(n->nodeport_ips[0]));
	} else if (node && node->node.n_internal_ips) {
		for (size_t i = 0; i < node->node.n_internal_ips && i < PLAN_MAX_NODE_IPS; i++)
			n->nodeport_ips[n->n_nodeport_ips++] = node->node.internal_ips[i];
	} else if (p->opts.node_ip.s_addr) {
		n->nodeport_ips[n->n_nodeport_ips++] = p->opts.node_ip;
	}
}

/* ---- health-check node ports (externalTrafficPolicy Local) ---- */

static void on_health(void *ctx, const char *path, struct http_reply *reply)
{
	struct health_server *h = ctx;
	const struct plan_service *plan = hashmap_get(h->proxy->applied, h->service);
	size_t local = plan ? plan->n_local_endpoints : 0;
	const char *slash = strchr(h->service, '/');

	/* kube-proxy's answer: 200 with the local endpoint count, 503 when there is none. */
	reply->status = local ? 200 : 503;
	reply->content_type = "application/json";
	if (asprintf(&reply->body,
		     "{\"service\":{\"namespace\":\"%.*s\",\"name\":\"%s\"},\"localEndpoints\":%zu}\n",
		     (int)(slash - h->service), h->service, slash + 1, local) < 0)
		reply->body = NULL;
}

static void health_stop(struct health_server *h)
{
	httpd_free(h->httpd);
	free(h->service);
	free(h);
}

static void health_sync(struct proxy *p, const char *key, const struct plan_service *plan)
{
	char port[8], err[256];
	struct health_server *h;
	void *old;

	/* Servers this service no longer has are stopped by health_gc. */
	if (!plan || !plan->health_check_node_port)
		return;
	snprintf(port, sizeof(port), "%u", plan->health_check_node_port);
	h = hashmap_get(p->health, port);
	if (h) {
		if (strcmp(h->service, key) != 0)
			log_warn("proxy: healthCheckNodePort %s is claimed by %s and %s", port, h->service,
				 key);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return;
	*h = (struct health_server){ .port = plan->health_check_node_port, .proxy = p,
				     .service = strdup(key) };
	{
		char addr[32];

		snprintf(addr, sizeof(addr), "0.0.0.0:%u", plan->health_check_node_port);
		h->httpd = httpd_new(p->srv, addr, on_health, h, err, sizeof(err));
	}
	if (!h->httpd || !h->service || hashmap_put(p->health, port, h, &old) < 0) {
		log_warn("proxy: health check for %s on port %s: %s", key, port,
			 h->httpd ? "out of memory" : err);
		health_stop(h);
		return;
	}
	log_info("proxy: serving the health check of %s on port %s", key, port);
}

struct health_gc {
	struct proxy *p;
	char *dead[64];
	size_t n;
};

static int find_dead_health(const char *port, void *value, void *ctx)
{
	struct health_gc *g = ctx;
	struct health_server *h = value;
	const struct plan_service *plan = hashmap_get(g->p->applied, h->service);

	if ((!plan || plan->health_check_node_port != h->port) && g->n < 64)
		g->dead[g->n++] = strdup(port);
	return 0;
}

static void health_gc(struct proxy *p)
{
	struct health_gc g = { .p = p };

	hashmap_foreach(p->health, find_dead_health, &g);
	for (size_t i = 0; i < g.n; i++) {
		if (g.dead[i])
			health_stop(hashmap_del(p->health, g.dead[i]));
		free(g.dead[i]);
	}
}

/* ---- planning and applying ---- */

struct slices {
	const struct k8s_endpointslice **v;
	size_t n, cap;
};

static int collect_slice(const struct k8s_endpointslice *e, void *ctx)
{
	struct slices *s = ctx;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		const struct k8s_endpointslice **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = e;
	return 0;
}

/* The plan the cache implies for key; NULL when the service is gone or ignored. */
static struct plan_service *plan_for(struct proxy *p, const char *key, const struct plan_node *n)
{
	const struct k8s_object *svc = kcache_get(p->kc, K8S_SERVICE, key);
	struct slices s = { 0 };
	struct plan_service *plan;
	bool ignored = false;

	if (!svc)
		return NULL;
	kcache_foreach_slice(p->kc, key, collect_slice, &s);
	plan = plan_build(&svc->svc, s.v, s.n, n, &ignored);
	free(s.v);
	return plan;
}

static int add_key(const char *key, void *value, void *ctx)
{
	void *old;

	return hashmap_put(ctx, key, (void *)1, &old);
}

static void take_changes(struct proxy *p)
{
	char **keys;
	size_t n = kcache_take_changed(p->kc, &keys);

	for (size_t i = 0; i < n; i++) {
		add_key(keys[i], NULL, p->pending);
		free(keys[i]);
	}
	free(keys);
}

struct batch {
	struct proxy *p;
	const struct plan_node *node;
	struct proxy_change *changes;
	struct plan_service **fresh; /* new plans, parallel to changes */
	size_t n, cap;
};

static int plan_one(const char *key, void *value, void *ctx)
{
	struct batch *b = ctx;
	const struct plan_service *old = hashmap_get(b->p->applied, key);
	struct plan_service *fresh = plan_for(b->p, key, b->node);

	if (old && fresh && plan_equal(old, fresh)) {
		plan_free(fresh);
		return 0;
	}
	if (!old && !fresh)
		return 0;
	b->changes[b->n] = (struct proxy_change){ .key = key, .old = old, .new = fresh };
	b->fresh[b->n++] = fresh;
	return 0;
}

static void note_programmed(struct proxy *p, const char *key, bool present, uint64_t generation,
			    int64_t at)
{
	struct programmed *pr = hashmap_get(p->programmed, key), *old = NULL;

	if (!present) {
		free(hashmap_del(p->programmed, key));
		return;
	}
	if (!pr) {
		pr = malloc(sizeof(*pr));
		if (!pr || hashmap_put(p->programmed, key, pr, (void **)&old) < 0) {
			free(pr); /* only berthctl's view loses the timestamp */
			return;
		}
	}
	*pr = (struct programmed){ .generation = generation, .at = at };
}

static void record(struct proxy *p, const struct batch *b)
{
	int64_t now = clock_wall_ms();

	for (size_t i = 0; i < b->n; i++) {
		struct plan_service *old = NULL;

		if (b->fresh[i])
			hashmap_put(p->applied, b->changes[i].key, b->fresh[i], (void **)&old);
		else
			old = hashmap_del(p->applied, b->changes[i].key);
		plan_free(old);
		note_programmed(p, b->changes[i].key, b->fresh[i], p->generation + 1, now);
		health_sync(p, b->changes[i].key, b->fresh[i]);
	}
	health_gc(p);
}

static int all_services(const struct k8s_object *o, void *ctx)
{
	char key[K8S_NAMESPACE_MAX + K8S_NAME_MAX + 2];

	snprintf(key, sizeof(key), "%s/%s", o->meta.ns, o->meta.name);
	return add_key(key, NULL, ctx);
}

/*
 * UDP flows outlive the rules that steered them: conntrack keeps a flow's
 * first DNAT. After an apply, delete the entries that still lead to
 * endpoints the new plans dropped, or that were made while a frontend had
 * none (kube-proxy's conntrack cleanup). Runs before record(), while the old
 * plans are alive. Best effort: the rules are in; a failure only delays
 * clients until their entries time out.
 */
static void clear_stale_udp(const struct batch *b)
{
	struct ct_cleanup *c = ct_cleanup_new();
	char err[256] = "";
	int r = c ? 0 : -ENOMEM;

	for (size_t i = 0; i < b->n && r == 0; i++)
		r = ct_cleanup_add(c, b->changes[i].old, b->changes[i].new, i);
	if (r == 0 && ct_cleanup_rules(c))
		r = ct_cleanup_run(c, err, sizeof(err));
	if (r < 0)
		log_warn("proxy: UDP conntrack cleanup failed: %s", err[0] ? err : strerror(-r));
	for (size_t i = 0; c && i < b->n; i++)
		if (ct_cleanup_deleted(c, i))
			log_info("proxy: %s: deleted %zu stale UDP conntrack entries",
				 b->changes[i].key, ct_cleanup_deleted(c, i));
	ct_cleanup_free(c);
}

static void sync_now(struct proxy *p)
{
	struct plan_node node;
	struct batch b = { .p = p, .node = &node };
	struct proxy_apply_stats stats = { 0 };
	unsigned flags = 0;
	char err[512] = "";
	struct hashmap *todo;
	int r;

	if (!kcache_synced(p->kc, K8S_SERVICE) || !kcache_synced(p->kc, K8S_ENDPOINTSLICE))
		return; /* acting on half a picture would delete what is not listed yet */
	take_changes(p);
	if (!p->first_sync_done) {
		/* After adopt: name every service, so what was deleted while we were down goes. */
		kcache_foreach(p->kc, K8S_SERVICE, all_services, p->pending);
		flags |= PROXY_APPLY_FULL;
	}
	if (!hashmap_size(p->pending) && p->first_sync_done)
		return;
	node_facts(p, &node);
	todo = p->pending;
	b.cap = hashmap_size(todo) + 1;
	b.changes = calloc(b.cap, sizeof(*b.changes));
	b.fresh = calloc(b.cap, sizeof(*b.fresh));
	if (!b.changes || !b.fresh)
		goto out;
	hashmap_foreach(todo, plan_one, &b);
	r = p->ops->apply(p->state, b.changes, b.n, flags, &stats, err, sizeof(err));
	if (r < 0) {
		snprintf(p->last_error, sizeof(p->last_error), "%s", err[0] ? err : strerror(-r));
		p->last_error_at = clock_wall_ms();
		log_warn("proxy: apply of %zu services failed (%s); retrying", b.n, p->last_error);
		for (size_t i = 0; i < b.n; i++)
			plan_free(b.fresh[i]);
		p->failures++;
		{
			int64_t delay = RETRY_BASE_MS;

			for (int i = 1; i < p->failures && delay < RETRY_CAP_MS; i++)
				delay *= 2;
			arm(p, delay < RETRY_CAP_MS ? delay : RETRY_CAP_MS);
		}
		goto out; /* pending keeps the keys: the retry recomputes them */
	}
	clear_stale_udp(&b);
	record(p, &b);
	p->failures = 0;
	p->first_sync_done = true;
	p->generation++;
	p->last_sync_at = clock_wall_ms();
	p->last_stats = stats;
	if (b.n)
		log_info("proxy: applied %zu service changes in %zu batches, %zu messages, %.2f ms",
			 b.n, stats.batches, stats.messages, stats.elapsed_ns / 1e6);
	/* The keys were borrowed from the pending map: only now may it go. */
	p->pending = hashmap_new();
	if (!p->pending) {
		p->pending = todo; /* keep the old one rather than lose track */
		todo = NULL;
	}
	hashmap_free(todo);
out:
	free(b.changes);
	free(b.fresh);
}

static void on_timer(void *arg, int fd, uint32_t revents)
{
	struct proxy *p = arg;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	p->timer_armed = false;
	sync_now(p);
}

void proxy_kick(struct proxy *p)
{
	if (!p || p->timer_armed || !p->ops)
		return;
	if (!kcache_has_changes(p->kc) && p->first_sync_done)
		return;
	if (!kcache_synced(p->kc, K8S_SERVICE) || !kcache_synced(p->kc, K8S_ENDPOINTSLICE))
		return;
	arm(p, COALESCE_MS);
}

/* ---- lifecycle ---- */

static int free_plan(const char *key, void *value, void *ctx)
{
	plan_free(value);
	return 0;
}

static int free_value(const char *key, void *value, void *ctx)
{
	free(value);
	return 0;
}

static int free_health(const char *key, void *value, void *ctx)
{
	health_stop(value);
	return 0;
}

struct proxy *proxy_new(struct server *srv, struct kcache *kc, const struct proxy_opts *opts,
			char *err, size_t errlen)
{
	struct proxy *p = calloc(1, sizeof(*p));
	struct proxy_apply_stats stats = { 0 };
	const struct proxy_backend_ops *ops = opts->backend ? opts->backend : &nft_backend_ops;
	int r;

	if (!p)
		return NULL;
	*p = (struct proxy){ .srv = srv, .kc = kc, .opts = *opts, .ops = ops, .timer_fd = -1 };
	p->opts.backend_cfg.services = opts->backend != NULL;
	p->pending = hashmap_new();
	p->applied = hashmap_new();
	p->programmed = hashmap_new();
	p->health = hashmap_new();
	p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!p->pending || !p->applied || !p->programmed || !p->health || p->timer_fd < 0 ||
	    !(p->timer_w = server_fd_add(srv, p->timer_fd, EPOLLIN, on_timer, p))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = ops->init(&p->state, &p->opts.backend_cfg, err, errlen);
	if (r < 0)
		goto fail;
	r = ops->adopt(p->state, &stats, err, errlen);
	if (r < 0)
		goto fail;
	r = ops->set_snat(p->state, &p->opts.backend_cfg.snat, &stats, err, errlen);
	if (r < 0)
		goto fail;
	if (!opts->backend)
		p->ops = NULL; /* SNAT only: nothing to sync */
	else
		p->ops = ops;
	return p;
fail:
	p->ops = ops;
	proxy_free(p);
	return NULL;
}

void proxy_free(struct proxy *p)
{
	const struct proxy_backend_ops *ops;

	if (!p)
		return;
	ops = p->ops ? p->ops : &nft_backend_ops;
	if (p->state)
		ops->destroy(p->state); /* the kernel keeps the rules */
	server_fd_del(p->srv, p->timer_w);
	if (p->timer_fd >= 0)
		close(p->timer_fd);
	if (p->applied) {
		hashmap_foreach(p->applied, free_plan, NULL);
		hashmap_free(p->applied);
	}
	if (p->programmed) {
		hashmap_foreach(p->programmed, free_value, NULL);
		hashmap_free(p->programmed);
	}
	if (p->health) {
		hashmap_foreach(p->health, free_health, NULL);
		hashmap_free(p->health);
	}
	hashmap_free(p->pending);
	free(p);
}

struct status_ctx {
	const struct proxy *p;
	json_t *list;
};

static int append_plan(const struct k8s_object *o, void *ctx)
{
	struct status_ctx *sc = ctx;
	char key[K8S_NAMESPACE_MAX + K8S_NAME_MAX + 2];
	const struct plan_service *plan;
	const struct programmed *pr;
	json_t *j;

	snprintf(key, sizeof(key), "%s/%s", o->meta.ns, o->meta.name);
	plan = hashmap_get(sc->p->applied, key);
	pr = hashmap_get(sc->p->programmed, key);
	if (plan && (j = plan_to_json(plan))) {
		if (pr) {
			json_object_set_new(j, "generation", json_integer((json_int_t)pr->generation));
			json_object_set_new(j, "programmedAt", json_integer(pr->at));
		}
		json_array_append_new(sc->list, j);
	}
	return 0;
}

json_t *proxy_status(const struct proxy *p)
{
	struct status_ctx sc = { .p = p, .list = json_array() };

	/* In the cache's order (sorted); a service just deleted is gone from both. */
	kcache_foreach(p->kc, K8S_SERVICE, append_plan, &sc);
	return json_pack("{s:s,s:I,s:I,s:s,s:I,s:{s:I,s:I},s:o}", "backend",
			 p->ops ? p->ops->name : "none", "generation", (json_int_t)p->generation,
			 "lastSyncAt", (json_int_t)p->last_sync_at, "lastError", p->last_error,
			 "lastErrorAt", (json_int_t)p->last_error_at, "lastApply", "services",
			 (json_int_t)p->last_stats.services_changed, "messages",
			 (json_int_t)p->last_stats.messages, "services", sc.list);
}

int proxy_cleanup(const struct proxy_backend_config *cfg, char *err, size_t errlen)
{
	void *state = NULL;
	int r = nft_backend_ops.init(&state, cfg, err, errlen);

	if (r == 0)
		r = nft_backend_ops.cleanup(state, err, errlen);
	nft_backend_ops.destroy(state);
	return r;
}
