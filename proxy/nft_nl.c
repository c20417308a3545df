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
#include <stdbool.h>
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
	int sndbuf;
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

/* Room in the kernel for the whole batch in one datagram. */
static void size_sndbuf(struct nft_sock *s, size_t len)
{
	int fd = mnl_socket_get_fd(s->nl);
	size_t want = len + 65536;

	if (want > (size_t)s->sndbuf && want < (1u << 30)) {
		int v = (int)want;

		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) == 0)
			s->sndbuf = v;
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

/* Whatever an earlier, failed exchange left queued must not be read as this batch's answer. */
static void drain(struct nft_sock *s)
{
	while (recv(mnl_socket_get_fd(s->nl), s->rx, s->rxlen, MSG_DONTWAIT) > 0 || errno == ENOBUFS)
		;
}

struct batch_rx {
	uint32_t first, last;   /* BEGIN's and the last message's sequence numbers */
	bool done;              /* the last message's ACK (or the batch's error) was read */
	int ret;
	size_t failed;
};

static void batch_rx_msg(const struct nlmsghdr *nlh, struct batch_rx *b, char *err, size_t errlen)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_seq < b->first || nlh->nlmsg_seq > b->last + 1)
		return; /* not ours */
	if (nlh->nlmsg_seq == b->first || nlh->nlmsg_seq == b->last + 1) {
		/* the batch as a whole was refused (e.g. the commit's validation) */
		if (!b->ret) {
			b->ret = e->error ? e->error : -EPROTO;
			ext_ack_text(nlh, err, errlen);
		}
		return; /* the last message's ACK may still follow: keep reading */
	}
	if (e->error && !b->ret) {
		b->ret = e->error;
		b->failed = nlh->nlmsg_seq - b->first - 1;
		ext_ack_text(nlh, err, errlen);
	}
	if (nlh->nlmsg_seq == b->last)
		b->done = true;
}

/* Number the messages (BEGIN is s->seq, message i follows at +1+i, END last); the last one is returned. */
static struct nlmsghdr *number(struct nft_sock *s, const struct iovec *iov, size_t niov, size_t nmsgs,
			       size_t *len)
{
	struct nlmsghdr *last = NULL;
	size_t i = 0;

	*len = 0;
	for (size_t v = 0; v < niov; v++) {
		for (size_t off = 0; off < iov[v].iov_len;) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)iov[v].iov_base + off);

			nlh->nlmsg_seq = s->seq++;
			nlh->nlmsg_flags &= ~NLM_F_ACK;
			if (i == nmsgs)
				last = nlh;
			off += NLMSG_ALIGN(nlh->nlmsg_len);
			i++;
		}
		*len += iov[v].iov_len;
	}
	return i == nmsgs + 2 ? last : NULL;
}

int nft_sock_batch(struct nft_sock *s, struct iovec *iov, size_t niov, size_t nmsgs,
		   size_t *failed_index, char *err, size_t errlen)
{
	struct batch_rx b = { .first = s->seq, .failed = SIZE_MAX };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct msghdr msg = { .msg_name = &kernel, .msg_namelen = sizeof(kernel),
			      .msg_iov = iov, .msg_iovlen = niov };
	struct nlmsghdr *last;
	size_t len;
	int flags = 0;

	*failed_index = SIZE_MAX;
	last = nmsgs ? number(s, iov, niov, nmsgs, &len) : NULL;
	if (!last)
		return -EINVAL;
	/*
	 * Only the last message asks for an ACK: the kernel reports every
	 * failing message anyway, and queues its reports (then that ACK) while
	 * our sendmsg runs. One ACK instead of one per message keeps a cold
	 * start of 10k services in one transaction without a receive buffer
	 * sized for 100k ACKs.
	 */
	last->nlmsg_flags |= NLM_F_ACK;
	b.last = last->nlmsg_seq;
	size_sndbuf(s, len);
	drain(s);
	/* the pieces are gathered into one datagram: no copy of the whole batch here */
	if (sendmsg(mnl_socket_get_fd(s->nl), &msg, 0) < 0)
		return -errno;
	while (!b.done) {
		/*
		 * The kernel answers within our sendmsg. Once it has reported a
		 * failure, some refusals (a malformed batch) come with no ACK for
		 * the last message: read only what is queued, never wait for it.
		 */
		ssize_t n = recv(mnl_socket_get_fd(s->nl), s->rx, s->rxlen, b.ret ? MSG_DONTWAIT : flags);
		const struct nlmsghdr *nlh;
		int left;

		if (n < 0 && errno == ENOBUFS) {
			/* reports were lost: the batch failed; what is left is already queued */
			b.ret = b.ret ? b.ret : -ENOBUFS;
			flags = MSG_DONTWAIT;
			continue;
		}
		if (n < 0)
			return b.ret ? b.ret : -errno; /* EAGAIN: timeout, or drained after ENOBUFS */
		left = (int)n;
		for (nlh = (const struct nlmsghdr *)s->rx; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type == NLMSG_ERROR && nlh->nlmsg_pid == s->portid)
				batch_rx_msg(nlh, &b, err, errlen);
		}
	}
	*failed_index = b.failed;
	return b.ret;
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
