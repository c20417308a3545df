// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "kcache.h"

struct entry {
	struct k8s_object *obj;
	uint64_t seen; /* relist generation that last saw it */
};

/* The slices of one service (an index over the EndpointSlice store). */
struct slice_set {
	size_t n, cap;
	const struct k8s_endpointslice **slices;
};

struct kind_store {
	struct hashmap *objs; /* key -> struct entry */
	uint64_t generation;
	bool relisting;
	struct kcache_kind_stats st;
};

struct kcache {
	struct kind_store kinds[K8S_NKINDS];
	struct hashmap *slices_by_service; /* "ns/svc" -> struct slice_set */
	struct hashmap *changed;           /* "ns/svc" -> (void *)1 */
};

static int free_entry(const char *key, void *value, void *ctx)
{
	struct entry *e = value;

	k8s_object_free(e->obj);
	free(e);
	return 0;
}

static int free_slice_set(const char *key, void *value, void *ctx)
{
	struct slice_set *s = value;

	free(s->slices);
	free(s);
	return 0;
}

void kcache_free(struct kcache *kc)
{
	if (!kc)
		return;
	for (int k = 0; k < K8S_NKINDS; k++) {
		if (kc->kinds[k].objs)
			hashmap_foreach(kc->kinds[k].objs, free_entry, NULL);
		hashmap_free(kc->kinds[k].objs);
	}
	if (kc->slices_by_service)
		hashmap_foreach(kc->slices_by_service, free_slice_set, NULL);
	hashmap_free(kc->slices_by_service);
	hashmap_free(kc->changed);
	free(kc);
}

struct kcache *kcache_new(void)
{
	struct kcache *kc = calloc(1, sizeof(*kc));

	if (!kc)
		return NULL;
	for (int k = 0; k < K8S_NKINDS; k++)
		if (!(kc->kinds[k].objs = hashmap_new()))
			goto fail;
	kc->slices_by_service = hashmap_new();
	kc->changed = hashmap_new();
	if (!kc->slices_by_service || !kc->changed)
		goto fail;
	return kc;
fail:
	kcache_free(kc);
	return NULL;
}

/* "ns/svc" of the service an object belongs to; false when none. */
static bool service_key_of(const struct k8s_object *o, char *out, size_t len)
{
	int n;

	if (o->kind == K8S_SERVICE)
		n = snprintf(out, len, "%s/%s", o->meta.ns, o->meta.name);
	else if (o->kind == K8S_ENDPOINTSLICE && o->eps.service)
		n = snprintf(out, len, "%s/%s", o->meta.ns, o->eps.service);
	else
		return false;
	return n > 0 && (size_t)n < len;
}

static void mark_changed(struct kcache *kc, const struct k8s_object *o)
{
	char key[K8S_NAMESPACE_MAX + K8S_NAME_MAX + 2];
	void *old;

	if (service_key_of(o, key, sizeof(key)))
		hashmap_put(kc->changed, key, (void *)1, &old);
}

static int slice_index_add(struct kcache *kc, const struct k8s_object *o)
{
	char key[K8S_NAMESPACE_MAX + K8S_NAME_MAX + 2];
	struct slice_set *s;
	void *old;

	if (!service_key_of(o, key, sizeof(key)))
		return 0;
	s = hashmap_get(kc->slices_by_service, key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || hashmap_put(kc->slices_by_service, key, s, &old) < 0) {
			free(s);
			return -ENOMEM;
		}
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 2;
		const struct k8s_endpointslice **v = realloc(s->slices, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->slices = v;
		s->cap = cap;
	}
	s->slices[s->n++] = &o->eps;
	return 0;
}

static void slice_index_remove(struct kcache *kc, const struct k8s_object *o)
{
	char key[K8S_NAMESPACE_MAX + K8S_NAME_MAX + 2];
	struct slice_set *s;

	if (!service_key_of(o, key, sizeof(key)))
		return;
	s = hashmap_get(kc->slices_by_service, key);
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->slices[i] == &o->eps) {
			s->slices[i] = s->slices[--s->n];
			break;
		}
	}
	if (s->n == 0)
		free_slice_set(key, hashmap_del(kc->slices_by_service, key), NULL);
}

int kcache_upsert(struct kcache *kc, struct k8s_object *obj)
{
	struct kind_store *ks = &kc->kinds[obj->kind];
	char *key = k8s_object_key(obj);
	bool changed = true;
	struct entry *e;
	void *old;

	if (!key) {
		k8s_object_free(obj);
		return -ENOMEM;
	}
	ks->st.events++;
	e = hashmap_get(ks->objs, key);
	if (e) {
		/* Only modelled fields count: a status or annotation write is no change. */
		changed = !k8s_object_equal(e->obj, obj);
		if (changed)
			mark_changed(kc, e->obj); /* the old service too, if the label moved */
		/* The index points into the object: drop the old pointer before freeing it. */
		if (e->obj->kind == K8S_ENDPOINTSLICE)
			slice_index_remove(kc, e->obj);
		k8s_object_free(e->obj);
	} else {
		e = calloc(1, sizeof(*e));
		if (!e || hashmap_put(ks->objs, key, e, &old) < 0) {
			free(e);
			free(key);
			k8s_object_free(obj);
			return -ENOMEM;
		}
	}
	free(key);
	*e = (struct entry){ .obj = obj, .seen = ks->generation };
	if (changed)
		mark_changed(kc, obj);
	if (obj->kind == K8S_ENDPOINTSLICE && slice_index_add(kc, obj) < 0)
		return -ENOMEM;
	return changed;
}

static void remove_entry(struct kcache *kc, struct kind_store *ks, const char *key)
{
	struct entry *e = hashmap_del(ks->objs, key);

	if (!e)
		return;
	mark_changed(kc, e->obj);
	if (e->obj->kind == K8S_ENDPOINTSLICE)
		slice_index_remove(kc, e->obj);
	free_entry(key, e, NULL);
}

int kcache_delete(struct kcache *kc, enum k8s_kind kind, const char *key)
{
	struct kind_store *ks = &kc->kinds[kind];

	ks->st.events++;
	if (!hashmap_get(ks->objs, key))
		return 0;
	remove_entry(kc, ks, key);
	return 1;
}

void kcache_relist_begin(struct kcache *kc, enum k8s_kind kind)
{
	struct kind_store *ks = &kc->kinds[kind];

	ks->generation++;
	ks->relisting = true;
}

struct unseen {
	uint64_t generation;
	char **keys;
	size_t n;
};

static int collect_unseen(const char *key, void *value, void *ctx)
{
	struct unseen *u = ctx;
	struct entry *e = value;

	if (e->seen != u->generation)
		u->keys[u->n++] = (char *)key;
	return 0;
}

void kcache_relist_end(struct kcache *kc, enum k8s_kind kind, const char *rv)
{
	struct kind_store *ks = &kc->kinds[kind];
	struct unseen u = { .generation = ks->generation };
	char **copies;

	u.keys = calloc(hashmap_size(ks->objs) + 1, sizeof(*u.keys));
	if (u.keys) {
		hashmap_foreach(ks->objs, collect_unseen, &u);
		/* Copy first: removing frees the map's own key strings. */
		copies = calloc(u.n + 1, sizeof(*copies));
		for (size_t i = 0; copies && i < u.n; i++)
			copies[i] = strdup(u.keys[i]);
		for (size_t i = 0; copies && i < u.n; i++) {
			if (copies[i])
				remove_entry(kc, ks, copies[i]);
			free(copies[i]);
		}
		free(copies);
		free(u.keys);
	}
	ks->relisting = false;
	ks->st.synced = true;
	kcache_set_rv(kc, kind, rv);
}

void kcache_set_rv(struct kcache *kc, enum k8s_kind kind, const char *rv)
{
	snprintf(kc->kinds[kind].st.rv, sizeof(kc->kinds[kind].st.rv), "%s", rv ? rv : "");
}

const struct k8s_object *kcache_get(const struct kcache *kc, enum k8s_kind kind, const char *key)
{
	struct entry *e = hashmap_get(kc->kinds[kind].objs, key);

	return e ? e->obj : NULL;
}

struct sorted {
	const struct k8s_object **objs;
	size_t n;
};

static int collect_obj(const char *key, void *value, void *ctx)
{
	struct sorted *s = ctx;

	s->objs[s->n++] = ((struct entry *)value)->obj;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	const struct k8s_object *x = *(const struct k8s_object *const *)a;
	const struct k8s_object *y = *(const struct k8s_object *const *)b;
	int r = strcmp(x->meta.ns, y->meta.ns);

	return r ? r : strcmp(x->meta.name, y->meta.name);
}

int kcache_foreach(const struct kcache *kc, enum k8s_kind kind,
		   int (*fn)(const struct k8s_object *o, void *ctx), void *ctx)
{
	const struct hashmap *m = kc->kinds[kind].objs;
	struct sorted s = { .objs = calloc(hashmap_size(m) + 1, sizeof(*s.objs)) };
	int r = 0;

	if (!s.objs)
		return -ENOMEM;
	hashmap_foreach(m, collect_obj, &s);
	qsort(s.objs, s.n, sizeof(*s.objs), cmp_obj);
	for (size_t i = 0; i < s.n && !r; i++)
		r = fn(s.objs[i], ctx);
	free(s.objs);
	return r;
}

int kcache_foreach_slice(const struct kcache *kc, const char *service_key,
			 int (*fn)(const struct k8s_endpointslice *e, void *ctx), void *ctx)
{
	const struct slice_set *s = hashmap_get(kc->slices_by_service, service_key);
	int r = 0;

	for (size_t i = 0; s && i < s->n && !r; i++)
		r = fn(s->slices[i], ctx);
	return r;
}

bool kcache_synced(const struct kcache *kc, enum k8s_kind kind)
{
	return kc->kinds[kind].st.synced;
}

const char *kcache_rv(const struct kcache *kc, enum k8s_kind kind)
{
	return kc->kinds[kind].st.rv;
}

bool kcache_all_synced(const struct kcache *kc)
{
	for (int k = 0; k < K8S_NKINDS; k++)
		if (!kc->kinds[k].st.synced)
			return false;
	return true;
}

void kcache_stats(const struct kcache *kc, enum k8s_kind kind, struct kcache_kind_stats *st)
{
	*st = kc->kinds[kind].st;
	st->count = hashmap_size(kc->kinds[kind].objs);
}

void kcache_note(struct kcache *kc, enum k8s_kind kind, bool decode_error, bool relist,
		 bool watch_restart)
{
	struct kcache_kind_stats *st = &kc->kinds[kind].st;

	st->decode_errors += decode_error;
	st->relists += relist;
	st->watch_restarts += watch_restart;
}

struct keylist {
	char **keys;
	size_t n;
};

static int collect_key(const char *key, void *value, void *ctx)
{
	struct keylist *u = ctx;

	u->keys[u->n] = strdup(key);
	if (!u->keys[u->n])
		return -ENOMEM;
	u->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool kcache_has_changes(const struct kcache *kc)
{
	return hashmap_size(kc->changed) > 0;
}

size_t kcache_take_changed(struct kcache *kc, char ***keys)
{
	struct keylist u = { .keys = calloc(hashmap_size(kc->changed) + 1, sizeof(char *)) };
	struct hashmap *fresh;

	*keys = NULL;
	if (!u.keys)
		return 0;
	hashmap_foreach(kc->changed, collect_key, &u);
	qsort(u.keys, u.n, sizeof(*u.keys), cmp_str);
	fresh = hashmap_new();
	if (fresh) {
		hashmap_free(kc->changed);
		kc->changed = fresh;
	}
	*keys = u.keys;
	return u.n;
}
