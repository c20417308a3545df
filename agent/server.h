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
#include <stdint.h>

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
/*
 * Any other fd the agent's single thread waits on (signalfd, timerfd,
 * inotify, libcurl's sockets, the metrics listener): cb runs when it is
 * ready. EPOLLIN/EPOLLOUT in events; level-triggered. Returns a watch handle
 * or NULL; server_fd_del removes it (before the fd is closed).
 */
typedef void (*server_fd_fn)(void *arg, int fd, uint32_t revents);
struct server_fd;
struct server_fd *server_fd_add(struct server *srv, int fd, uint32_t events, server_fd_fn cb,
				void *arg);
int server_fd_mod(struct server *srv, struct server_fd *w, uint32_t events);
void server_fd_del(struct server *srv, struct server_fd *w);

/* Wait up to timeout_ms and serve what is ready. 0 or negative errno on a fatal error. */
int server_run(struct server *srv, int timeout_ms);

#endif
