// SPDX-License-Identifier: Apache-2.0
/*
 * New-connection rate and latency, for the proxy data-path benchmark.
 *
 *   connrate -s PORT                 server: epoll, accept, read the request,
 *                                    answer one byte, close; runs until killed
 *   connrate ADDR PORT SECONDS       client: socket, connect, send one byte,
 *                                    read the answer, close, for SECONDS; prints
 *                                    {"conns","errors","seconds","rate","p50_us","p99_us"}
 *
 * The client closes with SO_LINGER 0 (a RST, no TIME_WAIT) so a long run does
 * not exhaust its ports; a connection that gets no answer in 2 s counts as an
 * error. Latency is socket() to the answer's arrival.
 * Built by bench/proxy_bench.py with gcc; no dependencies.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (8u << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int serve(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct epoll_event ev, evs[256];
	int one = 1, lfd, ep;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096)) {
		perror("listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = lfd };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) {
		perror("epoll");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				int c;

				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = c };
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev))
						close(c);
				}
			} else {
				char buf[64];
				ssize_t r = read(fd, buf, sizeof(buf));

				if (r < 0 && errno == EAGAIN)
					continue;
				if (r > 0 && write(fd, "y", 1) < 0) {
					/* the client is gone: nothing to answer */
				}
				close(fd); /* also leaves the epoll set */
			}
		}
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int client(const char *addr, int port, double seconds)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct timeval tmo = { .tv_sec = 2 }; /* a dropped SYN fails in 2 s, not after 2 minutes */
	uint32_t *lat = malloc(MAX_SAMPLES * sizeof(*lat));
	uint64_t start, end, conns = 0, errors = 0, slow = 0;
	size_t n = 0;
	double el;

	if (!lat || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", addr);
		return 2;
	}
	start = now_ns();
	end = start + (uint64_t)(seconds * 1e9);
	for (;;) {
		uint64_t t0 = now_ns(), t1;
		char c;
		int fd;

		if (t0 >= end)
			break;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			errors++;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) || write(fd, "x", 1) != 1 ||
		    read(fd, &c, 1) != 1) {
			errors++;
			close(fd);
			continue;
		}
		t1 = now_ns();
		close(fd);
		conns++;
		slow += t1 - t0 > 100000000u;
		if (n < MAX_SAMPLES)
			lat[n++] = (uint32_t)((t1 - t0) / 1000 > UINT32_MAX ? UINT32_MAX : (t1 - t0) / 1000);
	}
	el = (double)(now_ns() - start) / 1e9;
	qsort(lat, n, sizeof(*lat), cmp_u32);
	printf("{\"conns\": %llu, \"errors\": %llu, \"seconds\": %.3f, \"rate\": %.1f, "
	       "\"p50_us\": %u, \"p99_us\": %u, \"max_us\": %u, \"over_100ms\": %llu}\n",
	       (unsigned long long)conns, (unsigned long long)errors, el, (double)conns / el,
	       n ? lat[n / 2] : 0, n ? lat[(size_t)((double)n * 0.99)] : 0, n ? lat[n - 1] : 0,
	       (unsigned long long)slow);
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "-s"))
		return serve(atoi(argv[2]));
	if (argc == 4)
		return client(argv[1], atoi(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: connrate -s PORT | connrate ADDR PORT SECONDS\n");
	return 2;
}
