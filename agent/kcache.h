/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's picture of the cluster: Services, EndpointSlices, this node's
 * Pods and this Node, fed by one source (the API server's list/watch, or a
 * manifests directory) through the same calls. Per kind it records whether
 * the initial list has completed and the last resourceVersion; it tracks
 * which services changed so that a consumer (the proxy) does work in
 * proportion to the change.
 */
#ifndef BERTH_KCACHE_H
#define BERTH_KCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s_model.h"

struct kcache;

struct kcache_kind_stats {
	bool synced;
	char rv[K8S_RV_MAX];
	size_t count;
	uint64_t events, decode_errors, relists, watch_restarts;
};

struct kcache *kcache_new(void);
void kcache_free(struct kcache *kc);

/*
 * Add or replace an object (ADDED, MODIFIED, or an item of a list); takes
 * ownership. Returns 1 when the cache changed, 0 when the object equals the
 * one held (a resync), -ENOMEM.
 */
int kcache_upsert(struct kcache *kc, struct k8s_object *obj);
/* Remove by kind and key ("ns/name"); 1 when removed, 0 when absent. */
int kcache_delete(struct kcache *kc, enum k8s_kind kind, const char *key);

/*
 * A relist replaces a kind's whole content: between begin and end, every
 * upserted key is marked seen; end removes the unseen ones (deletions missed
 * while disconnected), records rv and marks the kind synced.
 */
void kcache_relist_begin(struct kcache *kc, enum k8s_kind kind);
void kcache_relist_end(struct kcache *kc, enum k8s_kind kind, const char *rv);
void kcache_set_rv(struct kcache *kc, enum k8s_kind kind, const char *rv);

const struct k8s_object *kcache_get(const struct kcache *kc, enum k8s_kind kind, const char *key);
/* Visit every object of kind, ordered by key; stop when fn returns non-zero. */
int kcache_foreach(const struct kcache *kc, enum k8s_kind kind,
		   int (*fn)(const struct k8s_object *o, void *ctx), void *ctx);
/* The EndpointSlices of service key "ns/name", via their service-name label. */
int kcache_foreach_slice(const struct kcache *kc, const char *service_key,
			 int (*fn)(const struct k8s_endpointslice *e, void *ctx), void *ctx);

bool kcache_synced(const struct kcache *kc, enum k8s_kind kind);
/* The last resourceVersion seen for kind ("" before the first list). */
const char *kcache_rv(const struct kcache *kc, enum k8s_kind kind);
bool kcache_all_synced(const struct kcache *kc);
void kcache_stats(const struct kcache *kc, enum k8s_kind kind, struct kcache_kind_stats *st);
/* Counters the sources bump. */
void kcache_note(struct kcache *kc, enum k8s_kind kind, bool decode_error, bool relist,
		 bool watch_restart);

/* Whether any service changed since the last kcache_take_changed. */
bool kcache_has_changes(const struct kcache *kc);
/*
 * Service keys changed since the last call (service or any of its slices
 * added, changed or removed), sorted; the caller frees the array and keys.
 */
size_t kcache_take_changed(struct kcache *kc, char ***keys);

#endif
