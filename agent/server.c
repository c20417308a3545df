// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "proto.h"
#include "server.h"
#include "unixsock.h"

#define MAX_LISTENERS 4
#define MAX_CONNS 1024
/* A client that has not sent its whole request or read its reply by then is dropped. */
#define CONN_DEADLINE_MS 10000
#define CNI_TRY_AGAIN 11

enum conn_state { CONN_READING, CONN_HELD, CONN_WRITING };

/* Every epoll data pointer leads with its kind. */
enum item_kind { ITEM_LISTENER, ITEM_CONN, ITEM_FD };

struct conn {
	enum item_kind kind;
	int fd;
	enum conn_state state;
	server_handler_fn handler;
	long long deadline;
	char *buf; /* request while reading, reply while writing */
	size_t len, cap, off;
	json_t *held; /* reply waiting for the commit */
	bool refused; /* not root: read the request, answer "permission denied" */
	struct conn *next;
};

struct listener {
	enum item_kind kind;
	int fd;
	char *path;
	server_handler_fn handler;
};

struct server_fd {
	enum item_kind kind;
	int fd;
	server_fd_fn cb;
	void *arg;
	bool dead; /* deleted while its event batch is being dispatched */
	struct server_fd *next;
};

struct server {
	int epfd;
	struct listener listeners[MAX_LISTENERS];
	size_t n_listeners;
	struct server_fd *fds;
	struct conn *conns;
	size_t n_conns;
	server_commit_fn commit;
	void *ctx;
};

struct server *server_new(server_commit_fn commit, void *ctx)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		free(srv);
		return NULL;
	}
	srv->commit = commit;
	srv->ctx = ctx;
	return srv;
}

static void conn_close(struct server *srv, struct conn *c)
{
	struct conn **pp;

	for (pp = &srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	close(c->fd); /* also removes it from the epoll set */
	json_decref(c->held);
	free(c->buf);
	free(c);
	srv->n_conns--;
}

static void reap_fds(struct server *srv, bool all)
{
	struct server_fd **pp = &srv->fds;

	while (*pp) {
		struct server_fd *w = *pp;

		if (w->dead || all) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	while (srv->conns)
		conn_close(srv, srv->conns);
	reap_fds(srv, true);
	for (size_t i = 0; i < srv->n_listeners; i++) {
		close(srv->listeners[i].fd);
		unlink(srv->listeners[i].path);
		free(srv->listeners[i].path);
	}
	close(srv->epfd);
	free(srv);
}

int server_listen(struct server *srv, const char *path, server_handler_fn handler)
{
	struct listener *l;
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	if (srv->n_listeners == MAX_LISTENERS)
		return -ENOSPC;
	fd = usock_listen(path, 0600, 512);
	if (fd < 0)
		return fd;
	l = &srv->listeners[srv->n_listeners];
	*l = (struct listener){ .kind = ITEM_LISTENER, .fd = fd, .path = strdup(path), .handler = handler };
	ev.data.ptr = l;
	if (!l->path || epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(l->path);
		close(fd);
		return -ENOMEM;
	}
	srv->n_listeners++;
	return 0;
}

struct server_fd *server_fd_add(struct server *srv, int fd, uint32_t events, server_fd_fn cb,
				void *arg)
{
	struct server_fd *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = events };

	if (!w)
		return NULL;
	*w = (struct server_fd){ .kind = ITEM_FD, .fd = fd, .cb = cb, .arg = arg, .next = srv->fds };
	ev.data.ptr = w;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(w);
		return NULL;
	}
	srv->fds = w;
	return w;
}

int server_fd_mod(struct server *srv, struct server_fd *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(srv->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void server_fd_del(struct server *srv, struct server_fd *w)
{
	if (!w)
		return;
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	/* Freed after the current batch: a later event of it may still point here. */
	w->dead = true;
}

static void conn_set_reply(struct conn *c, json_t *reply)
{
	free(c->buf);
	c->buf = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	c->len = c->buf ? strlen(c->buf) : 0;
	c->off = 0;
	c->state = CONN_WRITING;
}

static bool peer_is_root(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0;
}

static void accept_all(struct server *srv, struct listener *l)
{
	/* Bounded by the backlog: accept4 returns EAGAIN once it is drained. */
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
		struct conn *c;
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (srv->n_conns >= MAX_CONNS) {
			close(fd); /* the client sees a reset and retries: better than unbounded memory */
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		*c = (struct conn){ .kind = ITEM_CONN, .fd = fd, .handler = l->handler,
				    .deadline = clock_mono_ms() + CONN_DEADLINE_MS };
		ev.data.ptr = c;
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->conns;
		srv->conns = c;
		srv->n_conns++;
		/*
		 * A refused peer still gets its request read before the answer: a
		 * reply and close before the client has written would reach it as
		 * EPIPE ("agent unreachable"), not as the reason.
		 */
		c->refused = !peer_is_root(fd);
	}
}

/* Read what is there; when the request is whole (EOF), serve it. */
static void conn_read(struct server *srv, struct conn *c)
{
	bool durable = false;
	json_t *reply;

	for (;;) {
		ssize_t n;

		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 4096;
			char *b;

			if (c->cap > PROTO_MAX_REQUEST) {
				conn_set_reply(c, proto_error_reply(6, "request exceeds %u bytes",
								    PROTO_MAX_REQUEST));
				shutdown(c->fd, SHUT_RD);
				return;
			}
			b = realloc(c->buf, cap);
			if (!b) {
				conn_close(srv, c);
				return;
			}
			c->buf = b;
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			conn_close(srv, c);
			return;
		}
		break; /* EOF: the request is complete */
	}
	if (c->refused) {
		conn_set_reply(c, proto_error_reply(4, "permission denied: only root may use this socket"));
		return;
	}
	reply = c->handler(srv->ctx, c->buf, c->len, &durable);
	if (!reply)
		reply = proto_error_reply(5, "out of memory");
	if (durable) {
		c->held = reply;
		c->state = CONN_HELD;
		return;
	}
	conn_set_reply(c, reply);
}

/* 0 when done (closed), 1 when the socket is full. */
static int conn_write(struct server *srv, struct conn *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n < 0)
			break;
		c->off += (size_t)n;
	}
	conn_close(srv, c);
	return 0;
}

static void conn_event(struct server *srv, struct conn *c)
{
	if (c->state == CONN_READING)
		conn_read(srv, c);
	/* conn_read may have closed c; only a connection in the list is still alive. */
	for (struct conn *p = srv->conns; p; p = p->next)
		if (p == c && c->state == CONN_WRITING) {
			conn_write(srv, c);
			break;
		}
}

/* Commit held replies as a group, then send them (or an error if the commit failed). */
static void release_held(struct server *srv)
{
	struct conn *c, *next;
	bool any = false;
	int r;

	for (c = srv->conns; c; c = c->next)
		any |= c->state == CONN_HELD;
	if (!any)
		return;
	r = srv->commit(srv->ctx);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (c->state != CONN_HELD)
			continue;
		if (r < 0) {
			json_decref(c->held);
			c->held = proto_error_reply(CNI_TRY_AGAIN, "cannot persist the address pool: %s",
						    strerror(-r));
		}
		conn_set_reply(c, c->held);
		c->held = NULL;
		conn_write(srv, c);
	}
}

static void expire_conns(struct server *srv)
{
	long long now = clock_mono_ms();
	struct conn *c, *next;

	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (c->state != CONN_HELD && now > c->deadline)
			conn_close(srv, c);
	}
}

int server_run(struct server *srv, int timeout_ms)
{
	struct epoll_event evs[64];
	int n;

	n = epoll_wait(srv->epfd, evs, 64, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		enum item_kind *kind = evs[i].data.ptr;

		switch (*kind) {
		case ITEM_LISTENER:
			accept_all(srv, evs[i].data.ptr);
			break;
		case ITEM_CONN:
			conn_event(srv, evs[i].data.ptr);
			break;
		case ITEM_FD: {
			struct server_fd *w = evs[i].data.ptr;

			if (!w->dead)
				w->cb(w->arg, w->fd, evs[i].events);
			break;
		}
		}
	}
	release_held(srv);
	expire_conns(srv);
	reap_fds(srv, false);
	return 0;
}
