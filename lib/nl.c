// SPDX-License-Identifier: Apache-2.0
/*
 * rtnetlink helpers over libnl-3; see include/nl.h for the contract.
 *
 * libnl's nl_recvmsgs() runs the receive loop; berth's callbacks decide when
 * an exchange is over (its ACK, error or NLMSG_DONE), which messages are its
 * own (sequence and port), and keep reading after the caller has what it
 * wanted, so that a socket always starts the next exchange clean.
 */
#include "nl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Receive rounds one exchange may take: a dump of 64 Ki parts is far beyond any table. */
#define NL_MAX_RECV 65536

struct rtsock {
	struct nl_sock *sk;
	struct nl_cb *cb; /* berth's callbacks; their argument is the exchange in progress */
	uint32_t portid;
	uint32_t seq;
};

/* errno after a failed libnl call that wraps a system call, or EIO when it set none. */
static int sys_errno(void)
{
	return errno ? errno : EIO;
}

struct rtsock *rtsock_open(void)
{
	static const int opts[] = { NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK };
	struct rtsock *nl = calloc(1, sizeof(*nl));
	int one = 1, saved = ENOMEM;
	size_t i;

	if (!nl)
		return NULL;
	nl->sk = nl_socket_alloc();
	nl->cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!nl->sk || !nl->cb)
		goto fail;
	errno = 0;
	if (nl_connect(nl->sk, NETLINK_ROUTE) < 0) {
		saved = sys_errno();
		goto fail;
	}
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, opts[i], &one, sizeof(one)) < 0) {
			saved = errno;
			goto fail;
		}
	}
	nl->portid = nl_socket_get_local_port(nl->sk);
	return nl;

fail:
	rtsock_close(nl);
	errno = saved;
	return NULL;
}

struct rtsock *rtsock_open_netns(int netns_fd)
{
	struct rtsock *nl = NULL;
	int self, saved;

	/* thread-self: setns() moves only this thread, so remember this thread's netns. */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return NULL;
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		goto out_close;
	nl = rtsock_open();
	saved = errno;
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
	errno = saved;
out_close:
	saved = errno;
	close(self);
	errno = saved;
	return nl;
}

void rtsock_close(struct rtsock *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk); /* closes the socket */
	nl_cb_put(nl->cb);
	free(nl);
}

struct nl_msg *nl_req_new(uint16_t type, uint16_t flags, const void *hdr, size_t hdrlen)
{
	struct nl_msg *msg = nlmsg_alloc_simple(type, flags);

	if (msg && nlmsg_append(msg, (void *)hdr, hdrlen, NLMSG_ALIGNTO) < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nla_policy *pol,
		  unsigned int max, struct nlattr **tb)
{
	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (hdrlen > INT_MAX || max > INT_MAX || nlmsg_datalen(nlh) < (int)hdrlen)
		return -EINVAL;
	return nlmsg_parse((struct nlmsghdr *)nlh, (int)hdrlen, tb, (int)max, pol) < 0 ? -EINVAL : 0;
}

/* State of one request/reply exchange. */
struct exchange {
	uint32_t seq, portid;
	nl_msg_fn cb;
	void *data;
	int cb_err;       /* first -errno a data callback reported */
	int kernel_err;   /* -errno from the closing NLMSG_ERROR / NLMSG_DONE */
	bool stopped;     /* the data callback wants no more messages */
	bool done;        /* the closing message was seen */
	bool interrupted; /* the kernel flagged the dump NLM_F_DUMP_INTR */
	char *err;
	size_t errlen;
};

/* Copy the extended-ACK text that follows offset in nlh's payload, if any. */
static void ext_ack(const struct nlmsghdr *nlh, size_t offset, struct exchange *x)
{
	static const struct nla_policy pol[NLMSGERR_ATTR_MAX + 1] = {
		[NLMSGERR_ATTR_MSG] = { .type = NLA_STRING },
	};
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	if (!x->err || !x->errlen || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (nl_attr_parse(nlh, offset, pol, NLMSGERR_ATTR_MAX, tb) == 0 && tb[NLMSGERR_ATTR_MSG])
		snprintf(x->err, x->errlen, "%s", nla_get_string(tb[NLMSGERR_ATTR_MSG]));
}

/* A leftover of an exchange that failed part-way is not this one's: skip it. */
static int on_seq_check(struct nl_msg *msg, void *arg)
{
	const struct exchange *x = arg;
	const struct nlmsghdr *nlh = nlmsg_hdr(msg);

	return nlh->nlmsg_seq == x->seq && nlh->nlmsg_pid == x->portid ? NL_OK : NL_SKIP;
}

static int on_dump_intr(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;

	x->interrupted = true;
	return NL_OK;
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;
	int ret;

	/*
	 * Never stop libnl for the caller: the rest of the reply must still be
	 * read, or the next exchange would have to wade through it.
	 */
	if (x->stopped || !x->cb)
		return NL_OK;
	ret = x->cb(nlmsg_hdr(msg), x->data);
	if (ret < 0)
		x->cb_err = ret;
	if (ret)
		x->stopped = true;
	return NL_OK;
}

/* An ACK (error 0) ends a request; a warning on success is not worth reporting. */
static int on_ack(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;

	x->done = true;
	return NL_STOP;
}

static int on_error(struct sockaddr_nl *from, struct nlmsgerr *e, void *arg)
{
	struct exchange *x = arg;
	/* libnl hands over the payload of a message it has checked is long enough. */
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
	size_t offset = sizeof(*e);

	x->done = true;
	x->kernel_err = e->error > 0 ? -EPROTO : e->error;
	/* Without NLM_F_CAPPED the kernel echoed our request before the TLVs. */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		offset += e->msg.nlmsg_len - sizeof(e->msg);
	ext_ack(nlh, offset, x);
	return NL_STOP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;
	const struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int e = 0;

	x->done = true;
	/* A dump that failed part-way carries the error (and TLVs) in NLMSG_DONE. */
	if (nlmsg_datalen(nlh) >= (int)sizeof(e))
		memcpy(&e, nlmsg_data(nlh), sizeof(e));
	if (e < 0) {
		x->kernel_err = e;
		ext_ack(nlh, sizeof(e), x);
	}
	return NL_STOP;
}

static int exchange(struct rtsock *nl, struct nl_msg *msg, struct exchange *x)
{
	struct nlmsghdr *nlh;
	int i, ret;

	if (x->err && x->errlen)
		x->err[0] = '\0';
	if (!msg)
		return -ENOMEM;
	nlh = nlmsg_hdr(msg);
	if (++nl->seq == 0)
		nl->seq = 1;
	x->seq = nlh->nlmsg_seq = nl->seq;
	x->portid = nl->portid;
	nlh->nlmsg_flags |= NLM_F_REQUEST;
	/* A dump ends with NLMSG_DONE; anything else ends with the ACK we ask for. */
	if ((nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
		nlh->nlmsg_flags |= NLM_F_ACK;

	nl_cb_set(nl->cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, on_seq_check, x);
	nl_cb_set(nl->cb, NL_CB_DUMP_INTR, NL_CB_CUSTOM, on_dump_intr, x);
	nl_cb_set(nl->cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, x);
	nl_cb_set(nl->cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, x);
	nl_cb_set(nl->cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, x);
	nl_cb_err(nl->cb, NL_CB_CUSTOM, on_error, x);

	errno = 0;
	ret = nl_send(nl->sk, msg);
	nlmsg_free(msg);
	if (ret < 0)
		return -sys_errno();
	for (i = 0; i < NL_MAX_RECV && !x->done; i++) {
		errno = 0;
		ret = nl_recvmsgs(nl->sk, nl->cb);
		/* ENOBUFS: the kernel dropped part of the reply; the exchange is lost. */
		if (ret < 0 && !x->done)
			return ret == -NLE_NOMEM && !errno ? -ENOMEM : -sys_errno();
	}
	if (!x->done)
		return -EPROTO;
	if (x->interrupted)
		return -EINTR;
	return x->kernel_err ? x->kernel_err : x->cb_err;
}

int nl_request(struct rtsock *nl, struct nl_msg *msg, char *err, size_t errlen)
{
	struct exchange x = { .err = err, .errlen = errlen };

	return exchange(nl, msg, &x);
}

int nl_query(struct rtsock *nl, struct nl_msg *msg, nl_msg_fn cb, void *data, char *err,
	     size_t errlen)
{
	struct exchange x = { .cb = cb, .data = data, .err = err, .errlen = errlen };

	return exchange(nl, msg, &x);
}

static const struct nla_policy link_policy[IFLA_MAX + 1] = {
	[IFLA_IFNAME] = { .type = NLA_STRING },
	[IFLA_MTU] = { .type = NLA_U32 },
	[IFLA_LINKINFO] = { .type = NLA_NESTED },
};

static const struct nla_policy linkinfo_policy[IFLA_INFO_MAX + 1] = {
	[IFLA_INFO_KIND] = { .type = NLA_STRING },
};

int nl_link_parse(const struct nlmsghdr *nlh, struct nl_link *link)
{
	const struct ifinfomsg *ifi = nlmsg_data(nlh);
	struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	const char *s;

	if (nlh->nlmsg_type != RTM_NEWLINK || nl_attr_parse(nlh, sizeof(*ifi), link_policy, IFLA_MAX, tb))
		return -EINVAL;
	*link = (struct nl_link){ .ifindex = ifi->ifi_index, .flags = ifi->ifi_flags };
	if (!tb[IFLA_IFNAME])
		return -EINVAL;
	s = nla_get_string(tb[IFLA_IFNAME]);
	if (strlen(s) >= sizeof(link->name))
		return -EINVAL;
	memcpy(link->name, s, strlen(s) + 1);
	if (tb[IFLA_MTU])
		link->mtu = nla_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == sizeof(link->mac))
		memcpy(link->mac, nla_data(tb[IFLA_ADDRESS]), sizeof(link->mac));
	if (!tb[IFLA_LINKINFO] ||
	    nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], linkinfo_policy) < 0 ||
	    !info[IFLA_INFO_KIND])
		return 0;
	s = nla_get_string(info[IFLA_INFO_KIND]);
	if (strlen(s) < sizeof(link->kind))
		memcpy(link->kind, s, strlen(s) + 1);
	return 0;
}

/* A link request with its ifinfomsg header. */
static struct nl_msg *link_req(uint16_t type, uint16_t flags, int ifindex, unsigned int up)
{
	const struct ifinfomsg ifi = {
		.ifi_family = AF_UNSPEC,
		.ifi_index = ifindex,
		.ifi_flags = up,
		.ifi_change = up,
	};

	return nl_req_new(type, flags, &ifi, sizeof(ifi));
}

struct link_dump {
	nl_link_cb cb;
	void *data;
};

static int link_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct link_dump *d = data;
	struct nl_link link;

	if (nl_link_parse(nlh, &link))
		return 0; /* not a link we can describe: skip it */
	return d->cb(&link, d->data);
}

int nl_link_dump(struct rtsock *nl, nl_link_cb cb, void *data, char *err, size_t errlen)
{
	struct nl_msg *msg = link_req(RTM_GETLINK, NLM_F_DUMP, 0, 0);
	struct link_dump d = { .cb = cb, .data = data };

	/* Nothing here reads the statistics, which are most of a link's size. */
	if (msg)
		nla_put_u32(msg, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return nl_query(nl, msg, link_dump_cb, &d, err, errlen);
}

static int link_get_cb(const struct nlmsghdr *nlh, void *data)
{
	return nl_link_parse(nlh, data) ? -EBADMSG : 0;
}

int nl_link_get(struct rtsock *nl, const char *name, struct nl_link *link, char *err,
		size_t errlen)
{
	struct nl_msg *msg;

	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	msg = link_req(RTM_GETLINK, 0, 0, 0);
	if (msg) {
		nla_put_string(msg, IFLA_IFNAME, name);
		nla_put_u32(msg, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	}
	return nl_query(nl, msg, link_get_cb, link, err, errlen);
}

int nl_link_del(struct rtsock *nl, int ifindex, char *err, size_t errlen)
{
	return nl_request(nl, link_req(RTM_DELLINK, 0, ifindex, 0), err, errlen);
}

int nl_link_set_up(struct rtsock *nl, int ifindex, char *err, size_t errlen)
{
	return nl_request(nl, link_req(RTM_NEWLINK, 0, ifindex, IFF_UP), err, errlen);
}
