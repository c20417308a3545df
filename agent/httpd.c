// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "httpd.h"

#define MAX_REQUEST 8192
#define MAX_CLIENTS 64
#define CLIENT_DEADLINE_MS 5000

struct client {
	struct httpd *h;
	int fd;
	struct server_fd *w;
	char req[MAX_REQUEST + 1];
	size_t len;
	char *out;
	size_t out_len, out_off;
	long long deadline;
	struct client *next;
};

struct httpd {
	struct server *srv;
	int fd, port;
	struct server_fd *w;
	httpd_handler_fn handler;
	void *ctx;
	struct client *clients;
	size_t n_clients;
};

static void client_close(struct client *c)
{
	struct httpd *h = c->h;

	for (struct client **pp = &h->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	server_fd_del(h->srv, c->w);
	close(c->fd);
	free(c->out);
	free(c);
	h->n_clients--;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

static void respond(struct client *c)
{
	struct http_reply r = { .status = 400, .content_type = "text/plain; charset=utf-8" };
	char method[8], target[1024], *q;
	size_t body_len;

	if (sscanf(c->req, "%7s %1023s HTTP/1.", method, target) != 2) {
		r.body = strdup("bad request\n");
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		r.status = 405;
		r.body = strdup("only GET\n");
	} else {
		q = strchr(target, '?');
		if (q)
			*q = '\0';
		c->h->handler(c->h->ctx, target, &r);
	}
	body_len = r.body ? strlen(r.body) : 0;
	if (asprintf(&c->out,
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     r.status, reason(r.status), r.content_type, body_len,
		     strcmp(method, "HEAD") == 0 || !r.body ? "" : r.body) < 0)
		c->out = NULL;
	free(r.body);
	c->out_len = c->out ? strlen(c->out) : 0;
	server_fd_mod(c->h->srv, c->w, EPOLLOUT);
}

static void on_client(void *arg, int fd, uint32_t revents)
{
	struct client *c = arg;

	if (clock_mono_ms() > c->deadline || (revents & (EPOLLERR | EPOLLHUP) && !c->out)) {
		client_close(c);
		return;
	}
	if (!c->out) {
		ssize_t n = recv(fd, c->req + c->len, MAX_REQUEST - c->len, 0);

		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				client_close(c);
			return;
		}
		c->len += (size_t)n;
		c->req[c->len] = '\0';
		/* Only the request line and headers are read; a GET has no body. */
		if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n") || c->len == MAX_REQUEST)
			respond(c);
		return;
	}
	while (c->out_off < c->out_len) {
		ssize_t n = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	client_close(c);
}

static void on_accept(void *arg, int fd, uint32_t revents)
{
	struct httpd *h = arg;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c;

		if (cfd < 0)
			return;
		if (h->n_clients >= MAX_CLIENTS) {
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		*c = (struct client){ .h = h, .fd = cfd, .deadline = clock_mono_ms() + CLIENT_DEADLINE_MS };
		c->w = server_fd_add(h->srv, cfd, EPOLLIN, on_client, c);
		if (!c->w) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = h->clients;
		h->clients = c;
		h->n_clients++;
	}
}

static int bind_addr(const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo *ai = NULL;
	int fd = -1, one = 1, r;

	if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
		snprintf(err, errlen, "\"%s\" is not HOST:PORT", addr);
		return -EINVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	r = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "\"%s\": %s", addr, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -EADDRINUSE;
	}
	freeaddrinfo(ai);
	return fd;
}

struct httpd *httpd_new(struct server *srv, const char *addr, httpd_handler_fn handler, void *ctx,
			char *err, size_t errlen)
{
	struct httpd *h = calloc(1, sizeof(*h));
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (!h)
		return NULL;
	*h = (struct httpd){ .srv = srv, .handler = handler, .ctx = ctx };
	h->fd = bind_addr(addr, err, errlen);
	if (h->fd < 0) {
		free(h);
		return NULL;
	}
	if (getsockname(h->fd, (struct sockaddr *)&sa, &len) == 0)
		h->port = ntohs(sa.sin_port);
	h->w = server_fd_add(srv, h->fd, EPOLLIN, on_accept, h);
	if (!h->w) {
		snprintf(err, errlen, "cannot watch the listener");
		httpd_free(h);
		return NULL;
	}
	return h;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	while (h->clients)
		client_close(h->clients);
	server_fd_del(h->srv, h->w);
	if (h->fd >= 0)
		close(h->fd);
	free(h);
}

void httpd_expire(struct httpd *h)
{
	long long now = clock_mono_ms();
	struct client *c, *next;

	for (c = h ? h->clients : NULL; c; c = next) {
		next = c->next;
		if (now > c->deadline)
			client_close(c);
	}
}

int httpd_port(const struct httpd *h)
{
	return h->port;
}
