/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small rtnetlink helpers over libmnl, shared by berth-cni and berth-agent.
 *
 * A struct nl_sock is one NETLINK_ROUTE socket with extended ACKs
 * (NETLINK_EXT_ACK), capped ACKs (NETLINK_CAP_ACK: the kernel does not echo
 * our request back) and strict dump checking (NETLINK_GET_STRICT_CHK: the
 * kernel filters dumps by the header fields and attributes we set). A socket
 * belongs to the netns it was opened in for its whole life, whichever netns
 * the calling thread is in later; that is how the CNI plugin works on a pod's
 * namespace without staying inside it. A socket is not thread-safe.
 *
 * Every exchange reads the kernel's reply to its end (ACK or NLMSG_DONE)
 * before returning, so a socket is always ready for the next request.
 * Actions return 0 or -errno. Wherever an `err` buffer is taken it may be
 * NULL; on failure it receives the kernel's extended-ACK text
 * (NLMSGERR_ATTR_MSG), or "" when the kernel sent none: the caller adds the
 * context. Nothing here prints.
 */
#ifndef BERTH_NL_H
#define BERTH_NL_H

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <stddef.h>

struct nl_sock;

/* Room for any one request berth builds: a header and a handful of attributes. */
#define NL_REQ_SIZE 1024

/* A NETLINK_ROUTE socket in the calling thread's netns. NULL + errno. */
struct nl_sock *nl_open(void);

/*
 * A NETLINK_ROUTE socket living in the netns netns_fd refers to. The calling
 * thread enters that netns only to create the socket and is back in its own
 * before this returns (it aborts if it cannot get back: carrying on in the
 * wrong namespace would configure the wrong one). NULL + errno.
 */
struct nl_sock *nl_open_netns(int netns_fd);

/* Accepts NULL. */
void nl_close(struct nl_sock *nl);

/*
 * Send one request and wait for its ACK. The request is built by the caller
 * (mnl_nlmsg_put_header into a buffer of NL_REQ_SIZE); this sets
 * NLM_F_REQUEST | NLM_F_ACK and the sequence number. 0 or the kernel's -errno.
 */
int nl_request(struct nl_sock *nl, struct nlmsghdr *nlh, char *err, size_t errlen);

/*
 * Send a get or dump request (NLM_F_DUMP set by the caller for a dump) and
 * call cb(nlh, data) for every reply message, libmnl style: return MNL_CB_OK
 * to go on, MNL_CB_STOP to ignore the rest of the reply, MNL_CB_ERROR with
 * errno set to fail. The rest of the reply is still read off the socket.
 * 0, the kernel's -errno, the callback's -errno, or -EINTR when the kernel
 * flagged the dump as interrupted by a concurrent change (worth retrying).
 */
int nl_query(struct nl_sock *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, char *err,
	     size_t errlen);

/*
 * Validated attribute parsing into a table: tb[type] for every attribute the
 * policy lists, after checking it against pol[type] (a libmnl data type, and
 * an exact payload length when len != 0, e.g. 4 for an IPv4 address in
 * MNL_TYPE_BINARY). Unlisted types (MNL_TYPE_UNSPEC) are skipped. tb has
 * max + 1 entries and is cleared first. 0 or -EINVAL.
 */
struct nl_policy {
	enum mnl_attr_data_type type;
	size_t len;
};
int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nl_policy *pol,
		  unsigned int max, const struct nlattr **tb);
int nl_attr_parse_nested(const struct nlattr *nest, const struct nl_policy *pol, unsigned int max,
			 const struct nlattr **tb);

/* Links. */
struct nl_link {
	int ifindex;
	char name[IFNAMSIZ];
	char kind[16];            /* IFLA_INFO_KIND, "" for links without one (lo, physical) */
	unsigned char mac[6];     /* all zero when the link has no 6-byte address */
	unsigned int flags;       /* IFF_* */
	unsigned int mtu;
};

/* Fill *link from an RTM_NEWLINK message. 0 or -EINVAL. */
int nl_link_parse(const struct nlmsghdr *nlh, struct nl_link *link);

/* cb returns 0 to go on, > 0 to stop early (nl_link_dump then returns 0), -errno to fail. */
typedef int (*nl_link_cb)(const struct nl_link *link, void *data);
int nl_link_dump(struct nl_sock *nl, nl_link_cb cb, void *data, char *err, size_t errlen);

/* The link called name. 0, -ENODEV when there is none, or -errno. */
int nl_link_get(struct nl_sock *nl, const char *name, struct nl_link *link, char *err,
		size_t errlen);

int nl_link_del(struct nl_sock *nl, int ifindex, char *err, size_t errlen);

/* Set IFF_UP on the link. */
int nl_link_set_up(struct nl_sock *nl, int ifindex, char *err, size_t errlen);

#endif
