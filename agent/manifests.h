/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The standalone source: Service, EndpointSlice, Pod and Node objects from
 * files in a directory (JSON or YAML, one or several documents per file,
 * List kinds too), followed with inotify. It feeds the cache through the
 * same decoders and calls as the API watch: a reload is a relist.
 */
#ifndef BERTH_MANIFESTS_H
#define BERTH_MANIFESTS_H

#include <jansson.h>

#include "kcache.h"
#include "server.h"

#define MANIFEST_MAX_FILE (64u << 20)
#define MANIFEST_MAX_FILES 10000

struct manifests;

/* Loads the directory at once (the cache is synced when this returns). */
struct manifests *manifests_new(struct server *srv, struct kcache *kc, const char *dir,
				const char *node_name, char *err, size_t errlen);
void manifests_free(struct manifests *m);
/* {"dir","files","objects","loads","lastError","lastErrorAt","lastLoadAt"} */
json_t *manifests_status(const struct manifests *m);

#endif
