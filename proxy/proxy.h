/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service proxy in the agent: turns the cache's changed services into
 * plans and hands the ones that differ to the backend, in batches, with
 * retries. It acts only on a synced cache and never removes rules because a
 * source went away: no change, no work.
 */
#ifndef BERTH_PROXY_H
#define BERTH_PROXY_H

#include <jansson.h>
#include <stdbool.h>

#include "backend.h"
#include "kcache.h"
#include "server.h"

struct proxy;

struct proxy_opts {
	const struct proxy_backend_ops *backend; /* NULL: SNAT only (--proxy none) */
	struct proxy_backend_config backend_cfg;
	const char *node_name;
	struct in_addr node_ip;                  /* the node's primary address */
	bool nodeport_ips_given;                 /* else: the Node's InternalIPs, or node_ip */
};

struct proxy *proxy_new(struct server *srv, struct kcache *kc, const struct proxy_opts *opts,
			char *err, size_t errlen);
void proxy_free(struct proxy *p);
/* Call after every round of the event loop: cheap when nothing changed. */
void proxy_kick(struct proxy *p);
/* {"backend","generation","lastSyncAt","lastError","services":[plan...]} */
json_t *proxy_status(const struct proxy *p);
/* Remove everything berth programmed (berth-agent --cleanup). */
int proxy_cleanup(const struct proxy_backend_config *cfg, char *err, size_t errlen);

#endif
