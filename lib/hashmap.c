// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

#define TOMBSTONE ((char *)1)

struct entry {
	char *key; /* NULL = empty, TOMBSTONE = deleted */
	void *value;
	uint64_t hash;
};

struct hashmap {
	struct entry *slots;
	size_t cap; /* a power of two */
	size_t size, used; /* live entries; live + tombstones */
};

/* FNV-1a: keys are short namespace/name strings. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return h;
}

struct hashmap *hashmap_new(void)
{
	struct hashmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->cap = 16;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return NULL;
	}
	return m;
}

void hashmap_free(struct hashmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
			free(m->slots[i].key);
	free(m->slots);
	free(m);
}

static struct entry *find(const struct hashmap *m, const char *key, uint64_t h)
{
	for (size_t i = h & (m->cap - 1), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
		struct entry *e = &m->slots[i];

		if (!e->key)
			return NULL;
		if (e->key != TOMBSTONE && e->hash == h && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

static int grow(struct hashmap *m)
{
	size_t cap = m->size * 4 > m->cap ? m->cap * 2 : m->cap; /* else: only rehash tombstones */
	struct entry *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct entry *e = &m->slots[i];
		size_t j;

		if (!e->key || e->key == TOMBSTONE)
			continue;
		for (j = e->hash & (cap - 1); slots[j].key; j = (j + 1) & (cap - 1))
			;
		slots[j] = *e;
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	m->used = m->size;
	return 0;
}

void *hashmap_get(const struct hashmap *m, const char *key)
{
	struct entry *e = find(m, key, hash_str(key));

	return e ? e->value : NULL;
}

int hashmap_put(struct hashmap *m, const char *key, void *value, void **old)
{
	uint64_t h = hash_str(key);
	struct entry *e = find(m, key, h);
	size_t i;

	*old = NULL;
	if (e) {
		*old = e->value;
		e->value = value;
		return 0;
	}
	/* Keep the load (tombstones included) under 3/4 so probes stay short. */
	if ((m->used + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return -ENOMEM;
	for (i = h & (m->cap - 1); m->slots[i].key && m->slots[i].key != TOMBSTONE;
	     i = (i + 1) & (m->cap - 1))
		;
	if (!m->slots[i].key)
		m->used++;
	m->slots[i].key = strdup(key);
	if (!m->slots[i].key) {
		m->slots[i].key = TOMBSTONE;
		return -ENOMEM;
	}
	m->slots[i].value = value;
	m->slots[i].hash = h;
	m->size++;
	return 0;
}

void *hashmap_del(struct hashmap *m, const char *key)
{
	struct entry *e = find(m, key, hash_str(key));
	void *v;

	if (!e)
		return NULL;
	v = e->value;
	free(e->key);
	e->key = TOMBSTONE;
	e->value = NULL;
	m->size--;
	return v;
}

size_t hashmap_size(const struct hashmap *m)
{
	return m->size;
}

int hashmap_foreach(const struct hashmap *m, int (*fn)(const char *key, void *value, void *ctx),
		    void *ctx)
{
	for (size_t i = 0; i < m->cap; i++) {
		const struct entry *e = &m->slots[i];
		int r;

		if (!e->key || e->key == TOMBSTONE)
			continue;
		r = fn(e->key, e->value, ctx);
		if (r)
			return r;
	}
	return 0;
}
