// SPDX-License-Identifier: Apache-2.0
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "atomicfile.h"
#include "jarena.h"
#include "jsonx.h"
#include "liststream.h"
#include "kubeclient.h"
#include "log.h"

#define EVENT_MAX_BYTES (16u << 20)   /* one watch event line */
#define ERROR_BODY_MAX 4096
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 30000
#define TOKEN_MAX 16384

enum phase { PHASE_IDLE, PHASE_LISTING, PHASE_WATCHING, PHASE_BACKOFF };

static const char *const phase_names[] = {
	[PHASE_IDLE] = "idle",
	[PHASE_LISTING] = "listing",
	[PHASE_WATCHING] = "watching",
	[PHASE_BACKOFF] = "backoff",
};

struct reflector {
	struct kube_client *client;
	enum k8s_kind kind;
	const char *path;        /* collection path */
	char *selector;          /* fieldSelector value, or NULL */
	enum phase phase;
	CURL *easy;
	struct curl_slist *headers;
	struct list_stream *ls;  /* decodes list pages as they arrive */
	char list_error[256];    /* why the list stream stopped */
	char *buf;               /* the partial watch line, or an error body */
	size_t len, cap;
	long status;             /* HTTP status of the transfer */
	char cont[4096];         /* continue token of the list in progress */
	bool need_list;          /* no complete list since the start or the last 410 */
	bool relist_open;        /* kcache_relist_begin called for this list */
	bool want_relist;        /* the watch saw 410: list again */
	bool got_event;          /* the watch delivered something: reset backoff */
	int failures;            /* consecutive, for the backoff */
	long long retry_at;      /* monotonic ms, in PHASE_BACKOFF */
};

struct kube_client {
	struct server *srv;
	struct kcache *kc;
	struct kube_auth auth;
	struct kube_client_opts opts;
	CURLM *multi;
	int timer_fd;
	struct server_fd *timer_w;
	long long curl_deadline; /* monotonic ms, 0 = none */
	struct reflector refl[K8S_NKINDS];
	struct timespec token_mtime;
	char last_error[512];
	long long last_error_at; /* wall ms */
	unsigned int seed;
	bool announced_sync;
	struct jarena *arena; /* jansson's allocator while a list page is decoded */
};

__attribute__((format(printf, 2, 3))) static void set_error(struct kube_client *c, const char *fmt,
							    ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
	c->last_error_at = clock_wall_ms();
	log_warn("api: %s", c->last_error);
}

/* ---- timers: libcurl's timeout and the reflectors' backoffs share one timerfd ---- */

static void arm_timer(struct kube_client *c)
{
	long long next = c->curl_deadline;
	struct itimerspec its = { 0 };

	for (int k = 0; k < K8S_NKINDS; k++)
		if (c->refl[k].phase == PHASE_BACKOFF && (!next || c->refl[k].retry_at < next))
			next = c->refl[k].retry_at;
	if (next) {
		long long delta = next - clock_mono_ms();

		if (delta < 1)
			delta = 1; /* 0 would disarm */
		its.it_value.tv_sec = delta / 1000;
		its.it_value.tv_nsec = delta % 1000 * 1000000;
	}
	timerfd_settime(c->timer_fd, 0, &its, NULL);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct kube_client *c = arg;

	c->curl_deadline = timeout_ms < 0 ? 0 : clock_mono_ms() + timeout_ms;
	arm_timer(c);
	return 0;
}

static void drive(struct kube_client *c, curl_socket_t fd, int ev_bitmask);

static void on_socket_event(void *arg, int fd, uint32_t revents)
{
	int ev = 0;

	if (revents & EPOLLIN)
		ev |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		ev |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		ev |= CURL_CSELECT_ERR;
	drive(arg, fd, ev);
}

/* libcurl tells which sockets to wait on; they join the agent's epoll set. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct kube_client *c = arg;
	struct server_fd *w = sockp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		server_fd_del(c->srv, w);
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (w)
		return server_fd_mod(c->srv, w, events) < 0 ? -1 : 0;
	w = server_fd_add(c->srv, fd, events, on_socket_event, c);
	if (!w)
		return -1;
	curl_multi_assign(c->multi, fd, w);
	return 0;
}

/* ---- requests ---- */

/* Bound service-account tokens rotate: re-read the file whenever it changed. */
static void refresh_token(struct kube_client *c, bool force)
{
	struct stat st;
	char *text = NULL;
	size_t len;

	if (!c->auth.token_file || stat(c->auth.token_file, &st) < 0)
		return;
	if (!force && st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
		return;
	if (read_file_bounded(c->auth.token_file, TOKEN_MAX, &text, &len) < 0)
		return;
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		text[--len] = '\0';
	free(c->auth.token);
	c->auth.token = text;
	c->token_mtime = st.st_mtim;
	log_info("api: read the bearer token from %s", c->auth.token_file);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg);

static void configure_tls(struct kube_client *c, CURL *e)
{
	struct curl_blob blob = { .flags = CURL_BLOB_COPY };

	if (c->auth.ca_pem) {
		blob.data = c->auth.ca_pem;
		blob.len = strlen(c->auth.ca_pem);
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	} else if (c->auth.ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->auth.ca_file);
	}
	if (c->auth.cert_pem) {
		blob.data = c->auth.cert_pem;
		blob.len = strlen(c->auth.cert_pem);
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (c->auth.cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->auth.cert_file);
	}
	if (c->auth.key_pem) {
		blob.data = c->auth.key_pem;
		blob.len = strlen(c->auth.key_pem);
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (c->auth.key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->auth.key_file);
	}
	if (c->auth.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

static int build_url(struct reflector *r, bool watch, char *url, size_t len)
{
	struct kube_client *c = r->client;
	char *sel = r->selector ? curl_easy_escape(NULL, r->selector, 0) : NULL;
	char *cont = r->cont[0] ? curl_easy_escape(NULL, r->cont, 0) : NULL;
	char *rv = curl_easy_escape(NULL, kcache_rv(c->kc, r->kind), 0);
	int n;

	if (watch) {
		/* Jitter the server-side timeout so the four watches do not end in step. */
		int timeout = c->opts.watch_timeout_s + (int)(rand_r(&c->seed) % (unsigned)(c->opts.watch_timeout_s + 1));

		n = snprintf(url, len, "%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d%s%s",
			     c->auth.server, r->path, rv ? rv : "", timeout, sel ? "&fieldSelector=" : "",
			     sel ? sel : "");
	} else {
		n = snprintf(url, len, "%s%s?limit=%d%s%s%s%s", c->auth.server, r->path, c->opts.page_size,
			     cont ? "&continue=" : "", cont ? cont : "", sel ? "&fieldSelector=" : "",
			     sel ? sel : "");
	}
	curl_free(sel);
	curl_free(cont);
	curl_free(rv);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static void start(struct reflector *r, enum phase phase)
{
	struct kube_client *c = r->client;
	char url[8192], auth[TOKEN_MAX + 32];
	CURL *e;

	r->phase = phase;
	r->len = 0;
	r->status = 0;
	r->got_event = false;
	r->list_error[0] = '\0';
	list_stream_reset(r->ls);
	if (build_url(r, phase == PHASE_WATCHING, url, sizeof(url)) < 0 || !(e = curl_easy_init())) {
		set_error(c, "%s: cannot build the request", k8s_kind_name(r->kind));
		return;
	}
	refresh_token(c, false);
	r->headers = curl_slist_append(NULL, "Accept: application/json");
	if (c->auth.token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->auth.token);
		r->headers = curl_slist_append(r->headers, auth);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "berth-agent/0.1");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when the server offers it */
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	if (phase == PHASE_WATCHING) {
		/* A stream silent for this long (not even a bookmark) is dead: resume it. */
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)c->opts.stall_timeout_s);
	} else {
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
	}
	configure_tls(c, e);
	r->easy = e;
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		set_error(c, "%s: cannot start a transfer", k8s_kind_name(r->kind));
		curl_easy_cleanup(e);
		r->easy = NULL;
	}
}

static void backoff(struct reflector *r)
{
	struct kube_client *c = r->client;
	long long delay = BACKOFF_BASE_MS;

	for (int i = 0; i < r->failures && delay < BACKOFF_CAP_MS; i++)
		delay *= 2;
	if (delay > BACKOFF_CAP_MS)
		delay = BACKOFF_CAP_MS;
	/* Full jitter on the upper half: many agents must not retry in lockstep. */
	delay = delay / 2 + (long long)(rand_r(&c->seed) % (unsigned)(delay / 2 + 1));
	r->failures++;
	r->phase = PHASE_BACKOFF;
	r->retry_at = clock_mono_ms() + delay;
	arm_timer(c);
}

/* ---- responses ---- */

static bool grow(struct reflector *r, size_t need, size_t max)
{
	size_t cap = r->cap ? r->cap : 65536;
	char *b;

	if (need > max)
		return false;
	while (cap < need)
		cap *= 2;
	if (cap == r->cap)
		return true;
	b = realloc(r->buf, cap);
	if (!b)
		return false;
	r->buf = b;
	r->cap = cap;
	return true;
}

/* Read ns/name straight from metadata: enough to delete, even if the rest is bad. */
static char *meta_key(const json_t *obj)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	char *key;

	if (!name || strlen(name) > K8S_NAME_MAX || (ns && strlen(ns) > K8S_NAMESPACE_MAX))
		return NULL;
	if (asprintf(&key, "%s%s%s", ns && *ns ? ns : "", ns && *ns ? "/" : "", name) < 0)
		return NULL;
	return key;
}

/* Decode one object and put it in the cache; a bad one is logged by name and skipped. */
static void apply_object(struct reflector *r, const json_t *obj)
{
	struct kube_client *c = r->client;
	char err[512];
	struct k8s_object *o = k8s_decode(r->kind, obj, err, sizeof(err));

	if (!o) {
		kcache_note(c->kc, r->kind, true, false, false);
		log_warn("api: skipping %s %s", k8s_kind_name(r->kind), err);
		return;
	}
	if (kcache_upsert(c->kc, o) > 0)
		log_debug("api: %s %s/%s changed", k8s_kind_name(r->kind), o->meta.ns, o->meta.name);
}

static const char *object_rv(const json_t *obj)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* One watch event line. false = stop the stream (relist or resume). */
static bool apply_event(struct reflector *r, const char *line, size_t len)
{
	struct kube_client *c = r->client;
	json_t *ev, *obj;
	const char *type, *rv;
	char why[256];
	bool go_on = true;

	ev = jx_loadb_object(line, len, EVENT_MAX_BYTES, why, sizeof(why));
	if (!ev) {
		/* We cannot know what we missed: resume from the last event we applied. */
		kcache_note(c->kc, r->kind, true, false, false);
		set_error(c, "%s watch: malformed event (%s); resuming", k8s_kind_name(r->kind), why);
		return false;
	}
	type = json_string_value(json_object_get(ev, "type"));
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		kcache_note(c->kc, r->kind, true, false, false);
		set_error(c, "%s watch: event without type or object; resuming", k8s_kind_name(r->kind));
		go_on = false;
		goto out;
	}
	rv = object_rv(obj);
	r->got_event = true;
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
		apply_object(r, obj);
	} else if (strcmp(type, "DELETED") == 0) {
		char *key = meta_key(obj);

		if (key && kcache_delete(c->kc, r->kind, key) > 0)
			log_debug("api: %s %s deleted", k8s_kind_name(r->kind), key);
		free(key);
	} else if (strcmp(type, "BOOKMARK") == 0) {
		/* Only the resourceVersion matters. */
	} else if (strcmp(type, "ERROR") == 0) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));

		if (code == 410) {
			r->want_relist = true;
			log_info("api: %s watch expired (410 Gone): relisting", k8s_kind_name(r->kind));
		} else {
			set_error(c, "%s watch: error event %lld: %s", k8s_kind_name(r->kind), (long long)code,
				  json_string_value(json_object_get(obj, "message")) ?: "");
		}
		go_on = false;
		goto out;
	} else {
		set_error(c, "%s watch: unknown event type \"%.32s\"", k8s_kind_name(r->kind), type);
		goto out;
	}
	if (rv && strlen(rv) < K8S_RV_MAX)
		kcache_set_rv(c->kc, r->kind, rv);
out:
	json_decref(ev);
	return go_on;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct reflector *r = arg;
	size_t len = size * n, start = 0;

	if (!r->status)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status != 200) {
		/* Keep the head of an error body for the log. */
		if (r->len + len > ERROR_BODY_MAX)
			len = r->len < ERROR_BODY_MAX ? ERROR_BODY_MAX - r->len : 0;
		if (!grow(r, r->len + len + 1, ERROR_BODY_MAX + 1))
			return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
		memcpy(r->buf + r->len, data, len);
		r->len += len;
		return size * n;
	}
	if (r->phase == PHASE_LISTING) {
		/* Items are decoded as they arrive, overlapping the transfer. */
		if (list_stream_feed(r->ls, data, len, r->list_error, sizeof(r->list_error)) < 0)
			return 0;
		return size * n;
	}
	/* Watch: newline-delimited events, applied as they arrive. */
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (!grow(r, r->len + i - start + 1, EVENT_MAX_BYTES))
			return 0;
		memcpy(r->buf + r->len, data + start, i - start);
		r->len += i - start;
		if (r->len && !apply_event(r, r->buf, r->len))
			return 0;
		r->len = 0;
		start = i + 1;
	}
	if (!grow(r, r->len + len - start + 1, EVENT_MAX_BYTES))
		return 0;
	memcpy(r->buf + r->len, data + start, len - start);
	r->len += len - start;
	return size * n;
}

static int list_item(void *ctx, const json_t *item)
{
	struct reflector *r = ctx;

	if (!r->relist_open) {
		kcache_relist_begin(r->client->kc, r->kind);
		r->relist_open = true;
	}
	apply_object(r, item);
	return 0;
}

static void list_done(struct reflector *r)
{
	struct kube_client *c = r->client;
	const json_t *meta;
	const char *next, *rv;
	char why[256];

	if (list_stream_finish(r->ls, why, sizeof(why)) < 0) {
		set_error(c, "%s list: malformed response (%s)", k8s_kind_name(r->kind), why);
		backoff(r);
		return;
	}
	meta = list_stream_metadata(r->ls);
	next = json_string_value(json_object_get(meta, "continue"));
	rv = json_string_value(json_object_get(meta, "resourceVersion"));
	if (next && *next && strlen(next) < sizeof(r->cont)) {
		strcpy(r->cont, next);
		start(r, PHASE_LISTING);
		return;
	}
	if (!r->relist_open)
		kcache_relist_begin(c->kc, r->kind); /* an empty list still replaces the content */
	kcache_relist_end(c->kc, r->kind, rv && strlen(rv) < K8S_RV_MAX ? rv : "");
	r->relist_open = false;
	r->need_list = false;
	r->cont[0] = '\0';
	r->failures = 0;
	log_info("api: %s synced at resourceVersion %s", k8s_kind_name(r->kind),
		 kcache_rv(c->kc, r->kind));
	if (kcache_all_synced(c->kc) && !c->announced_sync) {
		struct kcache_kind_stats svc, eps;

		kcache_stats(c->kc, K8S_SERVICE, &svc);
		kcache_stats(c->kc, K8S_ENDPOINTSLICE, &eps);
		log_info("api: all resources synced: %zu services, %zu endpoint slices", svc.count,
			 eps.count);
		c->announced_sync = true;
	}
	start(r, PHASE_WATCHING);
}

static void relist(struct reflector *r)
{
	kcache_note(r->client->kc, r->kind, false, true, false);
	r->cont[0] = '\0';
	r->relist_open = false;
	r->need_list = true;
	start(r, PHASE_LISTING);
}

static void transfer_done(struct reflector *r, CURLcode result)
{
	struct kube_client *c = r->client;
	enum phase was = r->phase;

	curl_multi_remove_handle(c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	r->easy = NULL;
	r->headers = NULL;
	if (was == PHASE_WATCHING && r->want_relist) {
		r->want_relist = false;
		relist(r);
		return;
	}
	if (r->status == 410) {
		/* An expired continue token or resourceVersion: only a fresh list helps. */
		log_info("api: %s: 410 Gone, relisting", k8s_kind_name(r->kind));
		relist(r);
		return;
	}
	if (r->status == 401 || r->status == 403)
		refresh_token(c, true);
	if (result == CURLE_OK && r->status == 200) {
		if (was == PHASE_LISTING) {
			list_done(r);
		} else {
			/* The server ended the watch (timeoutSeconds): carry on from where we are. */
			r->failures = 0;
			kcache_note(c->kc, r->kind, false, false, true);
			start(r, PHASE_WATCHING);
		}
		return;
	}
	if (r->status && r->status != 200) {
		if (r->len && r->buf)
			r->buf[r->len < ERROR_BODY_MAX ? r->len : ERROR_BODY_MAX] = '\0';
		set_error(c, "%s %s: HTTP %ld %.200s", k8s_kind_name(r->kind),
			  was == PHASE_LISTING ? "list" : "watch", r->status, r->len ? r->buf : "");
	} else if (r->list_error[0]) {
		set_error(c, "%s list: %s", k8s_kind_name(r->kind), r->list_error);
	} else if (result != CURLE_OK && !(was == PHASE_WATCHING && result == CURLE_WRITE_ERROR)) {
		set_error(c, "%s %s: %s", k8s_kind_name(r->kind), was == PHASE_LISTING ? "list" : "watch",
			  curl_easy_strerror(result));
	}
	if (was == PHASE_WATCHING) {
		kcache_note(c->kc, r->kind, false, false, true);
		if (r->got_event)
			r->failures = 0;
	}
	/* A list keeps its continue token: the next attempt picks up the same page. */
	backoff(r);
}

static void check_done(struct kube_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct reflector *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			transfer_done(r, m->data.result);
	}
}

static void drive(struct kube_client *c, curl_socket_t fd, int ev_bitmask)
{
	int running;

	curl_multi_socket_action(c->multi, fd, ev_bitmask, &running);
	check_done(c);
}

static void on_timer(void *arg, int fd, uint32_t revents)
{
	struct kube_client *c = arg;
	long long now = clock_mono_ms();
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	for (int k = 0; k < K8S_NKINDS; k++) {
		struct reflector *r = &c->refl[k];

		if (r->phase == PHASE_BACKOFF && r->retry_at <= now)
			start(r, r->need_list ? PHASE_LISTING : PHASE_WATCHING);
	}
	if (c->curl_deadline && c->curl_deadline <= now) {
		c->curl_deadline = 0;
		drive(c, CURL_SOCKET_TIMEOUT, 0);
	}
	arm_timer(c);
}

/* ---- lifecycle ---- */

static const char *const collection_paths[K8S_NKINDS] = {
	[K8S_SERVICE] = "/api/v1/services",
	[K8S_ENDPOINTSLICE] = "/apis/discovery.k8s.io/v1/endpointslices",
	[K8S_POD] = "/api/v1/pods",
	[K8S_NODE] = "/api/v1/nodes",
};

struct kube_client *kube_client_new(struct server *srv, struct kcache *kc, struct kube_auth *auth,
				    const struct kube_client_opts *opts, char *err, size_t errlen)
{
	struct kube_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->kc = kc;
	c->opts = *opts;
	if (c->opts.page_size <= 0)
		c->opts.page_size = 500;
	if (c->opts.watch_timeout_s <= 0)
		c->opts.watch_timeout_s = 300;
	if (c->opts.stall_timeout_s <= 0)
		c->opts.stall_timeout_s = 90;
	c->seed = (unsigned int)(clock_mono_ms() ^ getpid());
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	c->multi = curl_multi_init();
	c->arena = jarena_new();
	if (c->timer_fd < 0 || !c->multi || !c->arena ||
	    !(c->timer_w = server_fd_add(srv, c->timer_fd, EPOLLIN, on_timer, c))) {
		snprintf(err, errlen, "cannot set up libcurl");
		goto fail;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	/* The four watches share one HTTP/2 connection when the server speaks it. */
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	c->auth = *auth;
	memset(auth, 0, sizeof(*auth));
	for (int k = 0; k < K8S_NKINDS; k++) {
		struct reflector *r = &c->refl[k];

		*r = (struct reflector){ .client = c, .kind = (enum k8s_kind)k, .path = collection_paths[k],
					 .need_list = true };
		r->ls = list_stream_new(list_item, r, EVENT_MAX_BYTES, c->arena);
		if (!r->ls)
			goto fail_oom;
		if (k == K8S_POD && asprintf(&r->selector, "spec.nodeName=%s", opts->node_name) < 0)
			goto fail_oom;
		if (k == K8S_NODE && asprintf(&r->selector, "metadata.name=%s", opts->node_name) < 0)
			goto fail_oom;
	}
	for (int k = 0; k < K8S_NKINDS; k++)
		start(&c->refl[k], PHASE_LISTING);
	return c;
fail_oom:
	snprintf(err, errlen, "out of memory");
fail:
	kube_client_free(c);
	return NULL;
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	for (int k = 0; k < K8S_NKINDS; k++) {
		struct reflector *r = &c->refl[k];

		if (r->easy) {
			curl_multi_remove_handle(c->multi, r->easy);
			curl_easy_cleanup(r->easy);
		}
		curl_slist_free_all(r->headers);
		list_stream_free(r->ls);
		free(r->buf);
		free(r->selector);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	server_fd_del(c->srv, c->timer_w);
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	kube_auth_release(&c->auth);
	jarena_free(c->arena);
	free(c);
}

json_t *kube_client_status(const struct kube_client *c)
{
	json_t *res = json_object();
	bool connected = true;

	for (int k = 0; k < K8S_NKINDS; k++) {
		const struct reflector *r = &c->refl[k];

		connected &= r->phase == PHASE_WATCHING || r->phase == PHASE_LISTING;
		json_object_set_new(res, k8s_kind_name(r->kind),
				    json_pack("{s:s,s:i}", "state", phase_names[r->phase],
					      "consecutiveFailures", r->failures));
	}
	return json_pack("{s:s,s:b,s:s,s:I,s:o}", "server", c->auth.server, "connected", connected,
			 "lastError", c->last_error, "lastErrorAt", (json_int_t)c->last_error_at,
			 "resources", res);
}
