// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "atomicfile.h"
#include "hashmap.h"
#include "log.h"
#include "manifests.h"
#include "yamljson.h"

/* Editors write a file in several steps: wait for quiet before reloading. */
#define DEBOUNCE_MS 50

struct manifests {
	struct server *srv;
	struct kcache *kc;
	char *dir;
	char *node_name;
	int inotify_fd, timer_fd;
	struct server_fd *inotify_w, *timer_w;
	struct hashmap *last_good; /* file name -> json_t array of documents */
	size_t files, objects;
	unsigned long long loads;
	long long last_load_at, last_error_at;
	char last_error[512];
};

__attribute__((format(printf, 2, 3))) static void set_error(struct manifests *m, const char *fmt,
							    ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->last_error, sizeof(m->last_error), fmt, ap);
	va_end(ap);
	m->last_error_at = clock_wall_ms();
	log_warn("manifests: %s", m->last_error);
}

static bool wanted_file(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.' || name[n - 1] == '~')
		return false; /* hidden, editor backups and swap files */
	return (n > 5 && strcmp(name + n - 5, ".json") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* Only this node's Pods and this Node, as the API source's field selectors give. */
static bool for_this_node(const struct manifests *m, const struct k8s_object *o)
{
	if (o->kind == K8S_POD)
		return o->pod.node_name && strcmp(o->pod.node_name, m->node_name) == 0;
	if (o->kind == K8S_NODE)
		return strcmp(o->meta.name, m->node_name) == 0;
	return true;
}

/* As kubectl apply does, a namespaced object without a namespace goes to "default". */
static struct k8s_object *decode_manifest(enum k8s_kind kind, const json_t *doc, char *err,
					  size_t errlen)
{
	json_t *meta = json_object_get(doc, "metadata"), *copy;
	struct k8s_object *o;

	if (kind == K8S_NODE || !json_is_object(meta) || json_object_get(meta, "namespace"))
		return k8s_decode(kind, doc, err, errlen);
	copy = json_deep_copy(doc);
	if (!copy)
		return NULL;
	json_object_set_new(json_object_get(copy, "metadata"), "namespace", json_string("default"));
	o = k8s_decode(kind, copy, err, errlen);
	json_decref(copy);
	return o;
}

static void apply_doc(struct manifests *m, const char *file, const json_t *doc, size_t depth)
{
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	struct k8s_object *o;
	char err[512];
	int k;

	if (!json_is_object(doc) || !kind)
		return;
	if (strcmp(kind, "List") == 0 || (strlen(kind) > 4 && strcmp(kind + strlen(kind) - 4, "List") == 0)) {
		const json_t *item;
		size_t i;

		if (depth == 0)
			json_array_foreach(json_object_get(doc, "items"), i, item)
				apply_doc(m, file, item, depth + 1);
		return;
	}
	k = k8s_kind_from_name(kind);
	if (k < 0)
		return; /* Deployments and the like: not ours */
	o = decode_manifest((enum k8s_kind)k, doc, err, sizeof(err));
	if (!o) {
		kcache_note(m->kc, (enum k8s_kind)k, true, false, false);
		set_error(m, "%s: skipping %s %s", file, kind, err);
		return;
	}
	if (!for_this_node(m, o)) {
		k8s_object_free(o);
		return;
	}
	m->objects++;
	kcache_upsert(m->kc, o);
}

static bool is_json(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/*
 * A .json file goes to jansson, not through the YAML path: libyaml refuses
 * surrogate-pair escapes, which JSON writers (Python's json.dumps) emit.
 */
static json_t *json_document(const char *text, size_t len, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!doc) {
		snprintf(why, whylen, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	return json_pack("[o]", doc);
}

/* Parse one file; on failure fall back to its last good content. */
static json_t *load_file(struct manifests *m, const char *name)
{
	char path[PATH_MAX], *text = NULL, why[256];
	json_t *docs = NULL, *prev = hashmap_get(m->last_good, name);
	size_t len;
	void *old;
	int r;

	if (snprintf(path, sizeof(path), "%s/%s", m->dir, name) >= (int)sizeof(path))
		return NULL;
	r = read_file_bounded(path, MANIFEST_MAX_FILE, &text, &len);
	if (r < 0) {
		set_error(m, "%s: %s", name, strerror(-r));
		return prev ? json_incref(prev) : NULL;
	}
	docs = is_json(name) ? json_document(text, len, why, sizeof(why))
			     : yaml_to_json_docs(text, len, why, sizeof(why));
	free(text);
	if (!docs) {
		set_error(m, "%s: %s%s", name, why, prev ? " (keeping its previous content)" : "");
		return prev ? json_incref(prev) : NULL;
	}
	if (hashmap_put(m->last_good, name, json_incref(docs), &old) < 0)
		json_decref(docs);
	json_decref(old);
	return docs;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int drop_json(const char *key, void *value, void *ctx)
{
	json_decref(value);
	return 0;
}

static void reload(struct manifests *m)
{
	struct hashmap *still = hashmap_new();
	char **names = NULL;
	size_t n = 0, i;
	struct dirent *de;
	DIR *d = opendir(m->dir);

	if (!d || !still) {
		set_error(m, "cannot read %s: %s", m->dir, strerror(errno));
		goto out;
	}
	names = calloc(MANIFEST_MAX_FILES, sizeof(*names));
	while (names && (de = readdir(d)) && n < MANIFEST_MAX_FILES)
		if (wanted_file(de->d_name))
			names[n++] = strdup(de->d_name);
	if (n == MANIFEST_MAX_FILES)
		set_error(m, "more than %d files in %s: the rest are ignored", MANIFEST_MAX_FILES, m->dir);
	qsort(names, n, sizeof(*names), cmp_names);
	for (int k = 0; k < K8S_NKINDS; k++)
		kcache_relist_begin(m->kc, (enum k8s_kind)k);
	m->objects = 0;
	for (i = 0; i < n; i++) {
		json_t *docs, *doc;
		size_t j;
		void *old;

		if (!names[i] || !(docs = load_file(m, names[i])))
			continue;
		json_array_foreach(docs, j, doc)
			apply_doc(m, names[i], doc, 0);
		hashmap_put(still, names[i], (void *)1, &old);
		json_decref(docs);
	}
	for (int k = 0; k < K8S_NKINDS; k++)
		kcache_relist_end(m->kc, (enum k8s_kind)k, "");
	m->files = n;
	m->loads++;
	m->last_load_at = clock_wall_ms();
	log_debug("manifests: loaded %zu objects from %zu files", m->objects, n);
out:
	/* Forget the last good content of files that are gone. */
	if (still) {
		struct hashmap *kept = hashmap_new();

		for (i = 0; kept && i < n; i++) {
			json_t *v = names[i] ? hashmap_del(m->last_good, names[i]) : NULL;
			void *old;

			if (v && hashmap_put(kept, names[i], v, &old) < 0)
				json_decref(v);
		}
		if (kept) {
			hashmap_foreach(m->last_good, drop_json, NULL);
			hashmap_free(m->last_good);
			m->last_good = kept;
		}
	}
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	hashmap_free(still);
	if (d)
		closedir(d);
}

static void on_inotify(void *arg, int fd, uint32_t revents)
{
	struct manifests *m = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct itimerspec its = { .it_value = { .tv_nsec = DEBOUNCE_MS * 1000000 } };

	/* Drain; what changed does not matter, a reload reads the whole directory. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	timerfd_settime(m->timer_fd, 0, &its, NULL);
}

static void on_debounced(void *arg, int fd, uint32_t revents)
{
	struct manifests *m = arg;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) == sizeof(expirations))
		reload(m);
}

struct manifests *manifests_new(struct server *srv, struct kcache *kc, const char *dir,
				const char *node_name, char *err, size_t errlen)
{
	struct manifests *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	*m = (struct manifests){ .srv = srv, .kc = kc, .inotify_fd = -1, .timer_fd = -1 };
	m->dir = strdup(dir);
	m->node_name = strdup(node_name);
	m->last_good = hashmap_new();
	m->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!m->dir || !m->node_name || !m->last_good || m->inotify_fd < 0 || m->timer_fd < 0) {
		snprintf(err, errlen, "cannot set up inotify: %s", strerror(errno));
		goto fail;
	}
	if (inotify_add_watch(m->inotify_fd, dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
				      IN_MODIFY | IN_ONLYDIR) < 0) {
		snprintf(err, errlen, "cannot watch %s: %s", dir, strerror(errno));
		goto fail;
	}
	m->inotify_w = server_fd_add(srv, m->inotify_fd, EPOLLIN, on_inotify, m);
	m->timer_w = server_fd_add(srv, m->timer_fd, EPOLLIN, on_debounced, m);
	if (!m->inotify_w || !m->timer_w) {
		snprintf(err, errlen, "cannot watch %s", dir);
		goto fail;
	}
	reload(m);
	return m;
fail:
	manifests_free(m);
	return NULL;
}

void manifests_free(struct manifests *m)
{
	if (!m)
		return;
	server_fd_del(m->srv, m->inotify_w);
	server_fd_del(m->srv, m->timer_w);
	if (m->inotify_fd >= 0)
		close(m->inotify_fd);
	if (m->timer_fd >= 0)
		close(m->timer_fd);
	if (m->last_good) {
		hashmap_foreach(m->last_good, drop_json, NULL);
		hashmap_free(m->last_good);
	}
	free(m->dir);
	free(m->node_name);
	free(m);
}

json_t *manifests_status(const struct manifests *m)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:s,s:I,s:I}", "dir", m->dir, "files", (json_int_t)m->files,
			 "objects", (json_int_t)m->objects, "loads", (json_int_t)m->loads, "lastError",
			 m->last_error, "lastErrorAt", (json_int_t)m->last_error_at, "lastLoadAt",
			 (json_int_t)m->last_load_at);
}
