/* SPDX-License-Identifier: Apache-2.0 */
#ifndef BERTH_UNIXSOCK_H
#define BERTH_UNIXSOCK_H

#include <stddef.h>
#include <sys/types.h>

/*
 * One request/reply exchange on a stream Unix socket: connect, write req,
 * shut down the write side, read the reply until EOF (at most max bytes),
 * all within timeout_ms. The reply is malloc'd and NUL-terminated.
 * -ENOENT/-ECONNREFUSED mean nobody is listening, -ECONNRESET that the peer
 * closed without replying; -ETIMEDOUT; -EMSGSIZE.
 */
int usock_exchange(const char *path, const char *req, size_t req_len, size_t max, int timeout_ms,
		   char **reply, size_t *reply_len);

/* Bind a listening socket at path with the given mode (replacing a stale one). */
int usock_listen(const char *path, mode_t mode, int backlog);

#endif
