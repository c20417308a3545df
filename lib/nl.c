// SPDX-License-Identifier: Apache-2.0
/*
 * rtnetlink helpers over libmnl; see include/nl.h for the contract.
 */
#include "nl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The kernel sizes each dump part from the reader's buffer, up to 32 KiB;
 * a smaller buffer would truncate parts (MSG_TRUNC) on large links.
 */
#define NL_RECV_SIZE 32768

/* recv() calls one exchange may take: 64 Ki parts of up to 32 KiB is 2 GiB. */
#define NL_MAX_RECV 65536

struct nl_sock {
	struct mnl_socket *mnl;
	unsigned int portid;
	unsigned int seq;
	char buf[NL_RECV_SIZE];
};

struct nl_sock *nl_open(void)
{
	static const int opts[] = { NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK };
	struct nl_sock *nl = calloc(1, sizeof(*nl));
	int one = 1, saved;
	size_t i;

	if (!nl)
		return NULL;
	nl->mnl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->mnl)
		goto out_free;
	for (i = 0; i < MNL_ARRAY_SIZE(opts); i++)
		if (mnl_socket_setsockopt(nl->mnl, opts[i], &one, sizeof(one)) < 0)
			goto out_close;
	if (mnl_socket_bind(nl->mnl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out_close;
	nl->portid = mnl_socket_get_portid(nl->mnl);
	return nl;

out_close:
	saved = errno;
	mnl_socket_close(nl->mnl);
	errno = saved;
out_free:
	saved = errno;
	free(nl);
	errno = saved;
	return NULL;
}

struct nl_sock *nl_open_netns(int netns_fd)
{
	struct nl_sock *nl = NULL;
	int self, saved;

	/* thread-self: setns() moves only this thread, so remember this thread's netns. */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return NULL;
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		goto out_close;
	nl = nl_open();
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

void nl_close(struct nl_sock *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->mnl);
	free(nl);
}

/* State of one request/reply exchange. */
struct exchange {
	mnl_cb_t cb;
	void *data;
	int cb_err;     /* first -errno a data callback reported */
	int kernel_err; /* -errno from the closing NLMSG_ERROR / NLMSG_DONE */
	bool stopped;   /* the data callback wants no more messages */
	bool done;      /* the closing message was seen */
	char *err;
	size_t errlen;
};

static int ext_ack_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **msg = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		*msg = attr;
	return MNL_CB_OK;
}

/* Copy the extended-ACK text that follows offset in nlh's payload, if any. */
static void ext_ack(const struct nlmsghdr *nlh, unsigned int offset, struct exchange *x)
{
	const struct nlattr *msg = NULL;

	if (!x->err || !x->errlen || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (offset > mnl_nlmsg_get_payload_len(nlh))
		return;
	mnl_attr_parse(nlh, offset, ext_ack_cb, &msg);
	if (msg)
		snprintf(x->err, x->errlen, "%s", mnl_attr_get_str(msg));
}

static int error_cb(const struct nlmsghdr *nlh, void *data)
{
	struct exchange *x = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	unsigned int offset = sizeof(*e);

	x->done = true;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		x->kernel_err = -EBADMSG;
		return MNL_CB_STOP;
	}
	/* An ACK (error 0) ends a request; a warning on success is not worth reporting. */
	x->kernel_err = e->error > 0 ? -EPROTO : e->error;
	if (e->error) {
		/* Without NLM_F_CAPPED the kernel echoed our request before the TLVs. */
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			offset += e->msg.nlmsg_len - sizeof(e->msg);
		ext_ack(nlh, offset, x);
	}
	return MNL_CB_STOP;
}

static int done_cb(const struct nlmsghdr *nlh, void *data)
{
	struct exchange *x = data;
	int e = 0;

	x->done = true;
	/* A dump that failed part-way carries the error (and TLVs) in NLMSG_DONE. */
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(e))
		memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
	if (e < 0) {
		x->kernel_err = e;
		ext_ack(nlh, sizeof(e), x);
	}
	return MNL_CB_STOP;
}

static int data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct exchange *x = data;
	int ret;

	/*
	 * Never hand MNL_CB_STOP/ERROR back to libmnl for data: the rest of the
	 * reply must still be read, or it would be taken for the next one's.
	 */
	if (x->stopped || !x->cb)
		return MNL_CB_OK;
	errno = 0;
	ret = x->cb(nlh, x->data);
	if (ret == MNL_CB_ERROR) {
		x->cb_err = errno > 0 ? -errno : -EINVAL;
		x->stopped = true;
	} else if (ret == MNL_CB_STOP) {
		x->stopped = true;
	}
	return MNL_CB_OK;
}

/* After libmnl gave up on a reply (bad sequence, interrupted dump), skip to its end. */
static void drain(struct nl_sock *nl, unsigned int seq, ssize_t len)
{
	const struct nlmsghdr *nlh;
	int i, left;

	for (i = 0; i < NL_MAX_RECV; i++) {
		left = (int)len;
		for (nlh = (const struct nlmsghdr *)nl->buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left))
			if (nlh->nlmsg_seq == seq &&
			    (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR))
				return;
		len = mnl_socket_recvfrom(nl->mnl, nl->buf, sizeof(nl->buf));
		if (len <= 0)
			return;
	}
}

static int exchange(struct nl_sock *nl, struct nlmsghdr *nlh, struct exchange *x)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = error_cb,
		[NLMSG_DONE] = done_cb,
	};
	unsigned int seq;
	ssize_t len;
	int i, ret;

	if (x->err && x->errlen)
		x->err[0] = '\0';
	/* Sequence 0 would switch off libmnl's check that a reply is ours. */
	if (++nl->seq == 0)
		nl->seq = 1;
	seq = nlh->nlmsg_seq = nl->seq;
	nlh->nlmsg_flags |= NLM_F_REQUEST;
	/* A dump ends with NLMSG_DONE; anything else ends with the ACK we ask for. */
	if ((nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
		nlh->nlmsg_flags |= NLM_F_ACK;

	if (mnl_socket_sendto(nl->mnl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (i = 0; i < NL_MAX_RECV && !x->done; i++) {
		len = mnl_socket_recvfrom(nl->mnl, nl->buf, sizeof(nl->buf));
		if (len < 0) {
			if (errno == EINTR)
				continue;
			/* ENOBUFS: the kernel dropped part of the reply; the socket is unusable. */
			return -errno;
		}
		ret = mnl_cb_run2(nl->buf, (size_t)len, seq, nl->portid, data_cb, x, ctl,
				  MNL_ARRAY_SIZE(ctl));
		if (ret == MNL_CB_ERROR && !x->done) {
			ret = errno ? -errno : -EPROTO;
			drain(nl, seq, len);
			return ret;
		}
	}
	if (!x->done)
		return -EPROTO;
	return x->kernel_err ? x->kernel_err : x->cb_err;
}

int nl_request(struct nl_sock *nl, struct nlmsghdr *nlh, char *err, size_t errlen)
{
	struct exchange x = { .err = err, .errlen = errlen };

	return exchange(nl, nlh, &x);
}

int nl_query(struct nl_sock *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, char *err,
	     size_t errlen)
{
	struct exchange x = { .cb = cb, .data = data, .err = err, .errlen = errlen };

	return exchange(nl, nlh, &x);
}

struct parse {
	const struct nl_policy *pol;
	unsigned int max;
	const struct nlattr **tb;
};

static int parse_cb(const struct nlattr *attr, void *data)
{
	const struct parse *p = data;
	unsigned int type = mnl_attr_get_type(attr);
	const struct nl_policy *pol;

	if (type > p->max || p->pol[type].type == MNL_TYPE_UNSPEC)
		return MNL_CB_OK;
	pol = &p->pol[type];
	if ((pol->len ? mnl_attr_validate2(attr, pol->type, pol->len)
		      : mnl_attr_validate(attr, pol->type)) < 0)
		return MNL_CB_ERROR;
	p->tb[type] = attr;
	return MNL_CB_OK;
}

int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nl_policy *pol,
		  unsigned int max, const struct nlattr **tb)
{
	struct parse p = { .pol = pol, .max = max, .tb = tb };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (mnl_nlmsg_get_payload_len(nlh) < hdrlen)
		return -EINVAL;
	return mnl_attr_parse(nlh, hdrlen, parse_cb, &p) == MNL_CB_ERROR ? -EINVAL : 0;
}

int nl_attr_parse_nested(const struct nlattr *nest, const struct nl_policy *pol, unsigned int max,
			 const struct nlattr **tb)
{
	struct parse p = { .pol = pol, .max = max, .tb = tb };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	return mnl_attr_parse_nested(nest, parse_cb, &p) == MNL_CB_ERROR ? -EINVAL : 0;
}

static const struct nl_policy link_policy[IFLA_MAX + 1] = {
	[IFLA_IFNAME] = { .type = MNL_TYPE_NUL_STRING },
	[IFLA_ADDRESS] = { .type = MNL_TYPE_BINARY },
	[IFLA_MTU] = { .type = MNL_TYPE_U32 },
	[IFLA_LINKINFO] = { .type = MNL_TYPE_NESTED },
};

static const struct nl_policy linkinfo_policy[IFLA_INFO_MAX + 1] = {
	[IFLA_INFO_KIND] = { .type = MNL_TYPE_NUL_STRING },
};

int nl_link_parse(const struct nlmsghdr *nlh, struct nl_link *link)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	const char *s;

	if (nlh->nlmsg_type != RTM_NEWLINK || nl_attr_parse(nlh, sizeof(*ifi), link_policy, IFLA_MAX, tb))
		return -EINVAL;
	*link = (struct nl_link){ .ifindex = ifi->ifi_index, .flags = ifi->ifi_flags };
	if (!tb[IFLA_IFNAME])
		return -EINVAL;
	s = mnl_attr_get_str(tb[IFLA_IFNAME]);
	if (strlen(s) >= sizeof(link->name))
		return -EINVAL;
	memcpy(link->name, s, strlen(s) + 1);
	if (tb[IFLA_MTU])
		link->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == sizeof(link->mac))
		memcpy(link->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), sizeof(link->mac));
	if (!tb[IFLA_LINKINFO] ||
	    nl_attr_parse_nested(tb[IFLA_LINKINFO], linkinfo_policy, IFLA_INFO_MAX, info) ||
	    !info[IFLA_INFO_KIND])
		return 0;
	s = mnl_attr_get_str(info[IFLA_INFO_KIND]);
	if (strlen(s) < sizeof(link->kind))
		memcpy(link->kind, s, strlen(s) + 1);
	return 0;
}

/* A link request with its ifinfomsg header. */
static struct nlmsghdr *link_req(char *buf, uint16_t type, uint16_t flags, int ifindex)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	*ifi = (struct ifinfomsg){ .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	return nlh;
}

struct link_dump {
	nl_link_cb cb;
	void *data;
};

static int link_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct link_dump *d = data;
	struct nl_link link;
	int ret;

	if (nl_link_parse(nlh, &link))
		return MNL_CB_OK; /* not a link we can describe: skip it */
	ret = d->cb(&link, d->data);
	if (ret < 0) {
		errno = -ret;
		return MNL_CB_ERROR;
	}
	return ret > 0 ? MNL_CB_STOP : MNL_CB_OK;
}

int nl_link_dump(struct nl_sock *nl, nl_link_cb cb, void *data, char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *nlh = link_req(buf, RTM_GETLINK, NLM_F_DUMP, 0);
	struct link_dump d = { .cb = cb, .data = data };

	/* Nothing here reads the statistics, which are most of a link's size. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return nl_query(nl, nlh, link_dump_cb, &d, err, errlen);
}

static int link_get_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nl_link_parse(nlh, data)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

int nl_link_get(struct nl_sock *nl, const char *name, struct nl_link *link, char *err,
		size_t errlen)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *nlh = link_req(buf, RTM_GETLINK, 0, 0);

	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	return nl_query(nl, nlh, link_get_cb, link, err, errlen);
}

int nl_link_del(struct nl_sock *nl, int ifindex, char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE];

	return nl_request(nl, link_req(buf, RTM_DELLINK, 0, ifindex), err, errlen);
}

int nl_link_set_up(struct nl_sock *nl, int ifindex, char *err, size_t errlen)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *nlh = link_req(buf, RTM_NEWLINK, 0, ifindex);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return nl_request(nl, nlh, err, errlen);
}
