// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables backend's netlink side: a NETLINK_NETFILTER socket with
 * extended ACKs, batches sent in one sendmsg with every ACK read, and the
 * dumps adopt() needs.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libnftnl/batch.h>
#include <libnftnl/common.h>

#include "nft_nl.h"

struct nft_sock {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	int sndbuf, rcvbuf;
	char *rx;
	size_t rxlen;
};

#define RX_SIZE (256 * 1024)

struct nft_sock *nft_sock_open(void)
{
	struct nft_sock *s = calloc(1, sizeof(*s));
	struct timeval tv = { .tv_sec = 30 }; /* a kernel that never answers must not hang the agent */
	int one = 1;

	if (!s)
		return NULL;
	s->rxlen = RX_SIZE;
	s->rx = malloc(s->rxlen);
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->rx || !s->nl)
		goto out_fail;
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out_fail;
	/* the kernel's reason in text, and no echo of our (large) requests in its errors */
	mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	return s;
out_fail:
	nft_sock_close(s);
	return NULL;
}

void nft_sock_close(struct nft_sock *s)
{
	if (!s)
		return;
	if (s->nl)
		mnl_socket_close(s->nl);
	free(s->rx);
	free(s);
}

/* Room in the kernel for the whole batch in one datagram, and for all its ACKs. */
static void size_buffers(struct nft_sock *s, size_t len, size_t nmsgs)
{
	int fd = mnl_socket_get_fd(s->nl);
	size_t want_snd = len + 65536, want_rcv = nmsgs * 2048 + (1 << 20);

	if (want_snd > (size_t)s->sndbuf && want_snd < (1u << 30)) {
		int v = (int)want_snd;

		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) == 0)
			s->sndbuf = v;
	}
	if (want_rcv > (size_t)s->rcvbuf && want_rcv < (1u << 30)) {
		int v = (int)want_rcv;

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) == 0)
			s->rcvbuf = v;
	}
}

static void ext_ack_text(const struct nlmsghdr *nlh, char *out, size_t outlen)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e);
	const struct nlattr *a;

	if (!out || !outlen)
		return;
	out[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += mnl_nlmsg_get_payload_len(&e->msg) + sizeof(struct nlmsghdr) - sizeof(e->msg);
	mnl_attr_for_each(a, nlh, off) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
			snprintf(out, outlen, "%s", mnl_attr_get_str(a));
			return;
		}
	}
}

int nft_sock_batch(struct nft_sock *s, char *buf, size_t len, size_t nmsgs,
		   size_t *failed_index, char *err, size_t errlen)
{
	uint32_t first = s->seq;
	size_t acks = 0, i = 0;
	int ret = 0;

	*failed_index = SIZE_MAX;
	/* number the messages: BEGIN is `first`, message i is first + 1 + i, END last */
	for (size_t off = 0; off < len;) {
		struct nlmsghdr *nlh = (struct nlmsghdr *)(buf + off);

		nlh->nlmsg_seq = s->seq++;
		off += NLMSG_ALIGN(nlh->nlmsg_len);
		i++;
	}
	if (i != nmsgs + 2)
		return -EINVAL;
	size_buffers(s, len, nmsgs);
	if (mnl_socket_sendto(s->nl, buf, len) < 0)
		return -errno;
	while (acks < nmsgs) {
		ssize_t n = mnl_socket_recvfrom(s->nl, s->rx, s->rxlen);
		const struct nlmsghdr *nlh;
		int left;

		if (n < 0)
			return ret ? ret : -errno; /* ENOBUFS: lost ACKs; EAGAIN: timeout */
		left = (int)n;
		for (nlh = (const struct nlmsghdr *)s->rx; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;

			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != s->portid)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (nlh->nlmsg_seq == first || nlh->nlmsg_seq == first + nmsgs + 1) {
				/* the batch as a whole was refused: no per-message ACKs follow */
				if (!ret) {
					ret = e->error ? e->error : -EPROTO;
					ext_ack_text(nlh, err, errlen);
				}
				return ret;
			}
			acks++;
			if (e->error && !ret) {
				ret = e->error;
				*failed_index = nlh->nlmsg_seq - first - 1;
				ext_ack_text(nlh, err, errlen);
			}
		}
	}
	return ret;
}

int nft_sock_dump(struct nft_sock *s, struct nlmsghdr *req, nft_dump_cb cb, void *data)
{
	uint32_t seq = s->seq++;
	int ret;

	req->nlmsg_seq = seq;
	if (mnl_socket_sendto(s->nl, req, req->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(s->nl, s->rx, s->rxlen);

		if (n < 0)
			return -errno;
		ret = mnl_cb_run(s->rx, (size_t)n, seq, s->portid, cb, data);
		if (ret < 0)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}
