/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's socket server: one JSON request and reply per connection on
 * any number of listening Unix sockets, non-blocking, in one epoll loop, so
 * a slow or stuck client never holds up another.
 *
 * Replies to requests that changed durable state are held until the commit
 * hook has persisted them: every round of requests that arrived together is
 * answered after one checkpoint write (group commit), so a burst of ADDs
 * costs one fsync, not one each.
 */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct server;

/*
 * Decode and serve one request. Sets *durable when the reply may be sent only
 * after a successful commit. Returns the reply (owned by the server).
 */
typedef json_t *(*server_handler_fn)(void *ctx, const char *buf, size_t len, bool *durable);
/* Persist what handlers changed; 0 or -errno. */
typedef int (*server_commit_fn)(void *ctx);

struct server *server_new(server_commit_fn commit, void *ctx);
void server_free(struct server *srv);

/* Listen at path (mode 0600): only peers with uid 0 are served. */
int server_listen(struct server *srv, const char *path, server_handler_fn handler);
/* Add another fd to wake the loop (signalfd, timerfd); its readiness makes server_run return it. */
int server_watch_fd(struct server *srv, int fd);

/*
 * Serve until an fd added with server_watch_fd is readable (returned) or
 * timeout_ms passes (0 returned). Negative errno on a fatal error.
 */
int server_run(struct server *srv, int timeout_ms);

#endif
