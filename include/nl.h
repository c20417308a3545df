/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small rtnetlink helpers over libnl-3's core (messages, attributes, the
 * socket and its receive loop), shared by berth-cni and berth-agent. libnl
 * rather than libmnl here because Debian ships libnl-3 as a static archive
 * too: the plugin, exec'd once per pod, links it statically (see Makefile).
 *
 * A struct rtsock is one NETLINK_ROUTE socket with extended ACKs
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

#include <linux/netlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <stddef.h>
#include <stdint.h>

struct rtsock;

/* A NETLINK_ROUTE socket in the calling thread's netns. NULL + errno. */
struct rtsock *rtsock_open(void);

/*
 * A NETLINK_ROUTE socket living in the netns netns_fd refers to. The calling
 * thread enters that netns only to create the socket and is back in its own
 * before this returns (it aborts if it cannot get back: carrying on in the
 * wrong namespace would configure the wrong one). NULL + errno.
 */
struct rtsock *rtsock_open_netns(int netns_fd);

/* Accepts NULL. */
void rtsock_close(struct rtsock *nl);

/*
 * A request of this type and flags with its family header (struct rtmsg,
 * ifinfomsg, ...) copied in; add attributes with libnl's nla_put_*(). NULL
 * when out of memory, which nl_request() and nl_query() turn into -ENOMEM.
 */
struct nl_msg *nl_req_new(uint16_t type, uint16_t flags, const void *hdr, size_t hdrlen);

/*
 * Send one request and wait for its ACK; this sets NLM_F_REQUEST | NLM_F_ACK
 * and the sequence number, and frees msg. 0 or the kernel's -errno.
 */
int nl_request(struct rtsock *nl, struct nl_msg *msg, char *err, size_t errlen);

/*
 * Called for every message of a reply: 0 to go on, > 0 to ignore the rest of
 * the reply, -errno to fail the exchange with it.
 */
typedef int (*nl_msg_fn)(const struct nlmsghdr *nlh, void *data);

/*
 * Send a get or dump request (NLM_F_DUMP set in msg for a dump), call
 * cb(nlh, data) for every reply message and free msg. The rest of the reply
 * is read off the socket even when cb stops early. 0, the kernel's -errno,
 * the callback's -errno, or -EINTR when the kernel flagged the dump as
 * interrupted by a concurrent change (worth retrying).
 */
int nl_query(struct rtsock *nl, struct nl_msg *msg, nl_msg_fn cb, void *data, char *err,
	     size_t errlen);

/*
 * Validated attribute parsing into a table with libnl's policies:
 * tb[type] for every attribute up to max, each checked against pol[type]
 * (NLA_U32, NLA_STRING, or NLA_UNSPEC with minlen = maxlen = 4 for an IPv4
 * address, ...). tb has max + 1 entries. 0 or -EINVAL.
 */
int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nla_policy *pol,
		  unsigned int max, struct nlattr **tb);

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
int nl_link_dump(struct rtsock *nl, nl_link_cb cb, void *data, char *err, size_t errlen);

/* The link called name. 0, -ENODEV when there is none, or -errno. */
int nl_link_get(struct rtsock *nl, const char *name, struct nl_link *link, char *err,
		size_t errlen);

int nl_link_del(struct rtsock *nl, int ifindex, char *err, size_t errlen);

/* Set IFF_UP on the link. */
int nl_link_set_up(struct rtsock *nl, int ifindex, char *err, size_t errlen);

#endif
