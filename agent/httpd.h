/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal HTTP/1.1 GET responder on the agent's event loop, for
 * /metrics, /healthz and /readyz (and the proxy's health-check ports later).
 * One request per connection, bounded in size and time; no keep-alive.
 */
#ifndef BERTH_HTTPD_H
#define BERTH_HTTPD_H

#include "server.h"

struct httpd;

struct http_reply {
	int status;               /* 200, 404, 503 ... */
	const char *content_type; /* static string */
	char *body;               /* malloc'd, owned by the server */
};

/* path is the request target without the query string. */
typedef void (*httpd_handler_fn)(void *ctx, const char *path, struct http_reply *reply);

/* addr is "HOST:PORT" (IPv4 or a name that resolves to one; port 0 picks one). */
struct httpd *httpd_new(struct server *srv, const char *addr, httpd_handler_fn handler, void *ctx,
			char *err, size_t errlen);
void httpd_free(struct httpd *h);
/* Drop clients past their deadline (call periodically: an idle client sends no event). */
void httpd_expire(struct httpd *h);
/* The port actually bound. */
int httpd_port(const struct httpd *h);

#endif
