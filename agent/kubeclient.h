/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API-server source: one reflector per resource (Services,
 * EndpointSlices, this node's Pods, this Node) doing what client-go's
 * reflector does: paginated LIST, then WATCH from the list's
 * resourceVersion with bookmarks; resume after a dropped or stalled stream
 * from the last resourceVersion with capped exponential backoff and jitter;
 * relist on 410 Gone. All transfers share one libcurl multi handle driven by
 * the agent's epoll loop (no threads), over HTTP/2 where the server offers it.
 */
#ifndef BERTH_KUBECLIENT_H
#define BERTH_KUBECLIENT_H

#include <jansson.h>

#include "kcache.h"
#include "kubeconfig.h"
#include "server.h"

struct kube_client;

struct kube_client_opts {
	const char *node_name;
	int page_size;          /* LIST limit (default 500) */
	int watch_timeout_s;    /* server-side timeoutSeconds (default 300..600, jittered) */
	int stall_timeout_s;    /* a watch silent this long is dropped and resumed (default 90) */
};

/* Starts listing at once. Takes ownership of *auth (zeroed on success). */
struct kube_client *kube_client_new(struct server *srv, struct kcache *kc, struct kube_auth *auth,
				    const struct kube_client_opts *opts, char *err, size_t errlen);
void kube_client_free(struct kube_client *c);

/* {"server":..,"connected":bool,"lastError":..,"lastErrorAt":ms,"resources":{kind:{state,..}}} */
json_t *kube_client_status(const struct kube_client *c);

#endif
