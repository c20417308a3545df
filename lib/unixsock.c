// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "unixsock.h"

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	strcpy(sa->sun_path, path);
	return 0;
}

/* Wait for events on fd until the deadline; -ETIMEDOUT when it passes. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - clock_mono_ms();
		struct pollfd p = { .fd = fd, .events = events };
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int usock_exchange(const char *path, const char *req, size_t req_len, size_t max, int timeout_ms,
		   char **reply, size_t *reply_len)
{
	long long deadline = clock_mono_ms() + timeout_ms;
	struct sockaddr_un sa;
	size_t sent = 0, got = 0, cap = 4096;
	char *buf = NULL;
	int fd, r;

	r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* A full backlog on a Unix socket is EAGAIN: treat it as busy. */
		r = -errno;
		goto out_close;
	}
	while (sent < req_len) {
		ssize_t n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				goto out_close;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto out_close;
		}
		sent += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t n;

		if (got + 1 >= cap) {
			char *bigger;

			if (cap > max) {
				r = -EMSGSIZE;
				goto out_free;
			}
			bigger = realloc(buf, cap * 2);
			if (!bigger) {
				r = -ENOMEM;
				goto out_free;
			}
			buf = bigger;
			cap *= 2;
		}
		n = recv(fd, buf + got, cap - got - 1, 0);
		if (n == 0)
			break;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = wait_fd(fd, POLLIN, deadline);
			if (r < 0)
				goto out_free;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto out_free;
		}
		got += (size_t)n;
		if (got > max) {
			r = -EMSGSIZE;
			goto out_free;
		}
	}
	if (got == 0) {
		/* Closed without a word: the peer died mid-request, as unreachable as not listening. */
		r = -ECONNRESET;
		goto out_free;
	}
	buf[got] = '\0';
	*reply = buf;
	*reply_len = got;
	buf = NULL;
	r = 0;
out_free:
	free(buf);
out_close:
	close(fd);
	return r;
}

int usock_listen(const char *path, mode_t mode, int backlog)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, r;

	r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path); /* a socket left by a previous agent that died */
	/* The umask makes the socket private from the moment it exists, not after a chmod. */
	old = umask(~mode & 0777);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, backlog) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}
