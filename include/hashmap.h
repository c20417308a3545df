/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A string-keyed hash map (open addressing, linear probing, tombstones).
 * Keys are owned by the map (copied on insert); values are the caller's.
 */
#ifndef BERTH_HASHMAP_H
#define BERTH_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>

struct hashmap;

struct hashmap *hashmap_new(void);
/* Frees the map and its keys; values are the caller's to free first (hashmap_foreach). */
void hashmap_free(struct hashmap *m);

void *hashmap_get(const struct hashmap *m, const char *key);
/* Insert or replace; *old gets the replaced value (or NULL). 0 or -ENOMEM. */
int hashmap_put(struct hashmap *m, const char *key, void *value, void **old);
/* Remove; returns the value, or NULL when absent. */
void *hashmap_del(struct hashmap *m, const char *key);
size_t hashmap_size(const struct hashmap *m);

/*
 * Visit every entry (in no particular order); fn returns non-zero to stop,
 * which hashmap_foreach returns. The map must not change during the visit.
 */
int hashmap_foreach(const struct hashmap *m, int (*fn)(const char *key, void *value, void *ctx),
		    void *ctx);

#endif
