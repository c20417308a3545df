// SPDX-License-Identifier: Apache-2.0
/*
 * The pod datapath over rtnetlink; see include/datapath.h and DESIGN.md
 * ("The pod datapath").
 *
 * Two sockets per operation: `host`, opened in the caller's (node) netns, and
 * `pod`, opened inside the pod's netns. A netlink socket keeps the netns it
 * was created in, so after rtsock_open_netns() has returned this thread to the
 * node netns everything, pod side included, is done from here: no code runs
 * inside the pod's namespace, and no error path can leave us stranded there.
 */
#include "datapath.h"
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The kernel gives loopback this index in every netns (LOOPBACK_IFINDEX). */
#define DP_LOOPBACK_IFINDEX 1

#define MAC_FMT "%02x:%02x:%02x:%02x:%02x:%02x"
#define MAC_ARGS(m) (m)[0], (m)[1], (m)[2], (m)[3], (m)[4], (m)[5]

struct dp {
	const struct dp_pod *pod;
	int host_ns;            /* the caller's netns: where the host veth goes */
	struct rtsock *host;    /* lives in host_ns */
	struct rtsock *pod_nl;  /* lives in the pod's netns; NULL when it is gone (DEL) */
	struct in_addr gw;      /* DP_GATEWAY */
	char ip[INET_ADDRSTRLEN];
	char kmsg[256];         /* the kernel's extended ACK for the last failed request */
	char *err;
	size_t errlen;
};

/* An IPv4 route in one table. */
struct route {
	uint32_t table;
	struct in_addr dst;
	uint8_t dst_len;
	struct in_addr gw; /* INADDR_ANY: no gateway */
	int oif;           /* 0: any (deleting) */
	uint8_t scope;
};

/* An IPv4 "[from address/32] [to prefix] lookup table" rule. */
struct rule {
	uint32_t prio;
	uint32_t table;      /* 0: any (deleting) */
	struct in_addr src;  /* a /32; INADDR_ANY: not part of the selector */
	struct in_addr dst;
	uint8_t dst_len;     /* 0: dst is not part of the selector */
};

/*
 * Bounds DEL's loop over the "from" rules of an address: every rule an ADD
 * makes, with room for leftovers of earlier ones.
 */
#define DP_MAX_FROM_RULES (4 * PROTO_MAX_RULE_TO)

/* An IPv4 /32 address on a link; INADDR_ANY: any IPv4 address. */
struct addr {
	int ifindex;
	struct in_addr ip;
};

static int addr_find(struct dp *dp, const struct addr *want);

/* What dp_add has created so far, for its rollback. */
struct undo {
	bool veth;
	bool rule_to;
	bool rule_from; /* at least one of the "from" rules */
};

/* Report "<what>: <strerror>[ (kernel: <extended ACK>)]" and return ret. */
__attribute__((format(printf, 3, 4))) static int fail(struct dp *dp, int ret, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (dp->err && dp->errlen) {
		va_start(ap, fmt);
		vsnprintf(dp->err, dp->errlen, fmt, ap);
		va_end(ap);
		n = strlen(dp->err);
		snprintf(dp->err + n, dp->errlen - n, ": %s%s%s%s", strerror(-ret),
			 dp->kmsg[0] ? " (kernel: " : "", dp->kmsg, dp->kmsg[0] ? ")" : "");
	}
	dp->kmsg[0] = '\0';
	return ret;
}

/* Report a CHECK finding verbatim and return ret. */
__attribute__((format(printf, 3, 4))) static int mismatch(struct dp *dp, int ret, const char *fmt,
							  ...)
{
	va_list ap;

	if (dp->err && dp->errlen) {
		va_start(ap, fmt);
		vsnprintf(dp->err, dp->errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static bool name_ok(const char *name)
{
	return name[0] && strnlen(name, IFNAMSIZ) < IFNAMSIZ;
}

static void dp_close(struct dp *dp)
{
	rtsock_close(dp->pod_nl);
	rtsock_close(dp->host);
	if (dp->host_ns >= 0)
		close(dp->host_ns);
}

/*
 * Open both sockets. A pod netns that no longer exists (a missing path, or the
 * empty file a runtime's unmounted bind mount leaves) is an error unless
 * pod_optional, when dp->pod_nl is simply left NULL.
 */
static int dp_open(struct dp *dp, const struct dp_pod *pod, bool pod_optional, char *err,
		   size_t errlen)
{
	int pod_ns, ret;

	*dp = (struct dp){ .pod = pod, .host_ns = -1, .err = err, .errlen = errlen };
	if (err && errlen)
		err[0] = '\0';
	inet_pton(AF_INET, DP_GATEWAY, &dp->gw);
	inet_ntop(AF_INET, &pod->ip, dp->ip, sizeof(dp->ip));

	dp->host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (dp->host_ns < 0)
		return fail(dp, -errno, "open host netns");
	dp->host = rtsock_open();
	if (!dp->host) {
		ret = fail(dp, -errno, "open netlink socket");
		goto out_close;
	}
	if (!pod->netns_path) {
		if (pod_optional)
			return 0;
		ret = fail(dp, -EINVAL, "no pod netns given");
		goto out_close;
	}
	pod_ns = open(pod->netns_path, O_RDONLY | O_CLOEXEC);
	if (pod_ns < 0) {
		ret = -errno;
		if (ret == -ENOENT && pod_optional)
			return 0;
		fail(dp, ret, "open pod netns %s", pod->netns_path);
		goto out_close;
	}
	dp->pod_nl = rtsock_open_netns(pod_ns);
	ret = dp->pod_nl ? 0 : -errno;
	close(pod_ns);
	if (ret == -EINVAL && pod_optional)
		return 0;
	if (ret) {
		fail(dp, ret, "open netlink socket in pod netns %s", pod->netns_path);
		goto out_close;
	}
	return 0;

out_close:
	dp_close(dp);
	return ret;
}

/* --- request builders --- */

static void put_in4(struct nl_msg *msg, int type, struct in_addr a)
{
	nla_put(msg, type, sizeof(a), &a);
}

static int route_req(struct dp *dp, struct rtsock *nl, uint16_t type, uint16_t flags,
		     const struct route *r)
{
	const struct rtmsg rtm = {
		.rtm_family = AF_INET,
		.rtm_dst_len = r->dst_len,
		.rtm_table = r->table < 256 ? r->table : RT_TABLE_UNSPEC,
		.rtm_protocol = DP_RTPROT,
		.rtm_scope = r->scope,
		.rtm_type = RTN_UNICAST,
	};
	struct nl_msg *msg = nl_req_new(type, flags, &rtm, sizeof(rtm));

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, RTA_TABLE, r->table);
	if (r->dst_len)
		put_in4(msg, RTA_DST, r->dst);
	if (r->gw.s_addr)
		put_in4(msg, RTA_GATEWAY, r->gw);
	if (r->oif)
		nla_put_u32(msg, RTA_OIF, r->oif);
	return nl_request(nl, msg, dp->kmsg, sizeof(dp->kmsg));
}

static int rule_req(struct dp *dp, uint16_t type, uint16_t flags, const struct rule *r)
{
	const struct fib_rule_hdr frh = {
		.family = AF_INET,
		.dst_len = r->dst_len,
		.src_len = r->src.s_addr ? 32 : 0,
		.table = r->table < 256 ? r->table : RT_TABLE_UNSPEC,
		/* Deleting with FR_ACT_UNSPEC matches any action, as `ip rule del` does. */
		.action = type == RTM_NEWRULE ? FR_ACT_TO_TBL : FR_ACT_UNSPEC,
	};
	struct nl_msg *msg = nl_req_new(type, flags, &frh, sizeof(frh));

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, FRA_PRIORITY, r->prio);
	if (r->table)
		nla_put_u32(msg, FRA_TABLE, r->table);
	if (r->src.s_addr)
		put_in4(msg, FRA_SRC, r->src);
	if (r->dst_len)
		put_in4(msg, FRA_DST, r->dst);
	nla_put_u8(msg, FRA_PROTOCOL, DP_RTPROT);
	return nl_request(dp->host, msg, dp->kmsg, sizeof(dp->kmsg));
}

static int addr_req(struct dp *dp, uint16_t type, uint16_t flags, int ifindex)
{
	const struct ifaddrmsg ifa = {
		.ifa_family = AF_INET,
		.ifa_prefixlen = 32,
		.ifa_scope = RT_SCOPE_UNIVERSE,
		.ifa_index = ifindex,
	};
	struct nl_msg *msg = nl_req_new(type, flags, &ifa, sizeof(ifa));

	if (!msg)
		return -ENOMEM;
	put_in4(msg, IFA_LOCAL, dp->pod->ip);
	put_in4(msg, IFA_ADDRESS, dp->pod->ip);
	return nl_request(dp->pod_nl, msg, dp->kmsg, sizeof(dp->kmsg));
}

/* A description of a rule long enough for rule_str(). */
#define RULE_STR_MAX 128

/*
 * "from 198.19.0.33/32 to 198.18.0.0/15 lookup 101 priority 1536", as
 * `ip rule` would put it. The source is always the pod's address.
 */
static const char *rule_str(const struct dp *dp, const struct rule *r, char *buf, size_t len)
{
	char table[16] = "main", dst[INET_ADDRSTRLEN], to[INET_ADDRSTRLEN + 8] = "";

	if (r->table != RT_TABLE_MAIN)
		snprintf(table, sizeof(table), "%u", r->table);
	if (r->dst_len)
		snprintf(to, sizeof(to), " to %s/%u", inet_ntop(AF_INET, &r->dst, dst, sizeof(dst)),
			 r->dst_len);
	if (r->src.s_addr)
		snprintf(buf, len, "from %s/32%s lookup %s priority %u", dp->ip, to, table, r->prio);
	else
		snprintf(buf, len, "%s lookup %s priority %u", to + 1, table, r->prio);
	return buf;
}

/*
 * The policy rules when the pod has a table; "to" has the higher priority
 * so that traffic to the pod is never diverted from main.
 */
static struct rule rule_to(const struct dp_pod *pod)
{
	return (struct rule){ .prio = DP_RULE_PRIO_TO_POD, .table = RT_TABLE_MAIN, .dst = pod->ip,
			      .dst_len = 32 };
}

/*
 * One "from" rule per destination the agent named: traffic elsewhere is
 * SNATed to the primary address and must take main to the primary
 * interface. Named none, one rule for every destination.
 */
static size_t n_rules_from(const struct dp_pod *pod)
{
	return pod->n_rule_to ? pod->n_rule_to : 1;
}

static struct rule rule_from(const struct dp_pod *pod, size_t i)
{
	struct rule r = { .prio = DP_RULE_PRIO_FROM_POD, .table = pod->table, .src = pod->ip };

	if (pod->n_rule_to) {
		r.dst = pod->rule_to[i].addr;
		r.dst_len = pod->rule_to[i].len;
	}
	return r;
}

static bool gone(int ret)
{
	return ret == -ENOENT || ret == -ESRCH;
}

/*
 * Delete every berth "from <pod>/32" rule at DP_RULE_PRIO_FROM_POD whatever
 * its destination and table: DEL does not know what ADD was told, and an
 * earlier holder of the address may have been told otherwise. A request
 * without dst and table matches any of them and deletes the first, so
 * repeat until none is left (bounded: the kernel must not keep us here).
 */
static int rules_from_flush(struct dp *dp)
{
	const struct rule any = { .prio = DP_RULE_PRIO_FROM_POD, .src = dp->pod->ip };
	int ret;

	for (int i = 0; i < DP_MAX_FROM_RULES; i++) {
		ret = rule_req(dp, RTM_DELRULE, 0, &any);
		if (gone(ret))
			return 0;
		if (ret)
			return fail(dp, ret, "delete rules from %s/32", dp->ip);
	}
	return fail(dp, -ELOOP, "delete rules from %s/32: still more after %d", dp->ip,
		    DP_MAX_FROM_RULES);
}

static struct route host_route(const struct dp_pod *pod, int oif)
{
	return (struct route){ .table = RT_TABLE_MAIN, .dst = pod->ip, .dst_len = 32,
			       .oif = oif, .scope = RT_SCOPE_LINK };
}

static struct route gw_route(const struct dp *dp, int oif)
{
	return (struct route){ .table = RT_TABLE_MAIN, .dst = dp->gw, .dst_len = 32,
			       .oif = oif, .scope = RT_SCOPE_LINK };
}

static struct route default_route(const struct dp *dp, int oif)
{
	return (struct route){ .table = RT_TABLE_MAIN, .gw = dp->gw, .oif = oif,
			       .scope = RT_SCOPE_UNIVERSE };
}

/* --- ADD --- */

/*
 * Create the pair from inside the pod netns (the socket lives there) with
 * the peer born in the host netns: no netns move, whose rcu_barrier under
 * the rtnl lock would serialise parallel ADDs.
 */
static int veth_create(struct dp *dp)
{
	const struct dp_pod *pod = dp->pod;
	const struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_msg *msg = nl_req_new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	struct nlattr *linkinfo, *data, *peer;

	if (!msg)
		return -ENOMEM;
	nla_put_string(msg, IFLA_IFNAME, pod->ifname);
	if (pod->mtu)
		nla_put_u32(msg, IFLA_MTU, pod->mtu);
	linkinfo = nla_nest_start(msg, IFLA_LINKINFO);
	nla_put_string(msg, IFLA_INFO_KIND, "veth");
	data = nla_nest_start(msg, IFLA_INFO_DATA);
	peer = nla_nest_start(msg, VETH_INFO_PEER);
	nlmsg_append(msg, (void *)&ifi, sizeof(ifi), NLMSG_ALIGNTO);
	nla_put_string(msg, IFLA_IFNAME, pod->host_veth);
	if (pod->mtu)
		nla_put_u32(msg, IFLA_MTU, pod->mtu);
	nla_put_u32(msg, IFLA_NET_NS_FD, (uint32_t)dp->host_ns);
	nla_nest_end(msg, peer);
	nla_nest_end(msg, data);
	nla_nest_end(msg, linkinfo);
	return nl_request(dp->pod_nl, msg, dp->kmsg, sizeof(dp->kmsg));
}

/* A host veth of this name can only be an earlier sandbox's of the same pod: remove it. */
static int host_veth_clear(struct dp *dp)
{
	const char *name = dp->pod->host_veth;
	struct nl_link link;
	int ret;

	ret = nl_link_get(dp->host, name, &link, dp->kmsg, sizeof(dp->kmsg));
	if (ret == -ENODEV)
		return 0;
	if (ret)
		return fail(dp, ret, "look up host interface %s", name);
	/* Never delete what berth cannot have made. */
	if (strcmp(link.kind, "veth"))
		return fail(dp, -EEXIST, "host interface %s exists and is not a veth", name);
	ret = nl_link_del(dp->host, link.ifindex, dp->kmsg, sizeof(dp->kmsg));
	if (ret && ret != -ENODEV)
		return fail(dp, ret, "delete stale host interface %s", name);
	return 0;
}

/* Write "0" to a per-interface IPv6 sysctl of the host veth; no IPv6 at all is fine. */
static int host_sysctl_off(struct dp *dp, const char *key)
{
	char path[96];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", dp->pod->host_veth, key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(dp, -errno, "open %s", path);
	if (write(fd, "0", 1) != 1)
		ret = fail(dp, errno ? -errno : -EIO, "write %s", path);
	close(fd);
	return ret;
}

/* A rule that already exists for our address is a leftover we adopt, not a conflict. */
static int rule_add(struct dp *dp, const struct rule *r, bool *added)
{
	int ret = rule_req(dp, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, r);
	char desc[RULE_STR_MAX];

	if (ret && ret != -EEXIST)
		return fail(dp, ret, "add rule %s", rule_str(dp, r, desc, sizeof(desc)));
	*added = true;
	return 0;
}

/* "to pod lookup main", then one "from pod [to D] lookup table" per destination. */
static int rules_add(struct dp *dp, struct undo *u)
{
	const struct dp_pod *pod = dp->pod;
	struct rule rule = rule_to(pod);
	int ret;

	ret = rule_add(dp, &rule, &u->rule_to);
	if (ret)
		return ret;
	/* A leftover unrestricted rule would send SNATed traffic out the wrong interface. */
	ret = rules_from_flush(dp);
	if (ret)
		return ret;
	for (size_t i = 0; i < n_rules_from(pod); i++) {
		rule = rule_from(pod, i);
		ret = rule_add(dp, &rule, &u->rule_from);
		if (ret)
			return ret;
	}
	return 0;
}

static int host_setup(struct dp *dp, const struct dp_links *l, struct undo *u)
{
	const struct dp_pod *pod = dp->pod;
	const struct route r = host_route(pod, l->host_ifindex);
	int ret;

	/* The host veth has no address and routes nothing: it must not learn routes either. */
	ret = host_sysctl_off(dp, "accept_ra");
	if (!ret)
		ret = host_sysctl_off(dp, "accept_redirects");
	if (ret)
		return ret;
	ret = nl_link_set_up(dp->host, l->host_ifindex, dp->kmsg, sizeof(dp->kmsg));
	if (ret)
		return fail(dp, ret, "set host interface %s up", pod->host_veth);
	ret = route_req(dp, dp->host, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &r);
	if (ret)
		return fail(dp, ret, "add host route %s/32 dev %s", dp->ip, pod->host_veth);
	if (!pod->table)
		return 0;
	return rules_add(dp, u);
}

static int neigh_add(struct dp *dp, int ifindex, const unsigned char mac[6])
{
	const struct ndmsg ndm = {
		.ndm_family = AF_INET,
		.ndm_ifindex = ifindex,
		.ndm_state = NUD_PERMANENT,
		.ndm_type = RTN_UNICAST,
	};
	struct nl_msg *msg = nl_req_new(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &ndm, sizeof(ndm));

	if (!msg)
		return -ENOMEM;
	put_in4(msg, NDA_DST, dp->gw);
	nla_put(msg, NDA_LLADDR, 6, mac);
	return nl_request(dp->pod_nl, msg, dp->kmsg, sizeof(dp->kmsg));
}

static int pod_setup(struct dp *dp, const struct dp_links *l)
{
	const char *ifname = dp->pod->ifname;
	const struct route gw = gw_route(dp, l->pod_ifindex);
	const struct route def = default_route(dp, l->pod_ifindex);
	int ret;

	ret = addr_req(dp, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, l->pod_ifindex);
	if (ret)
		return fail(dp, ret, "add address %s/32 to %s", dp->ip, ifname);
	ret = nl_link_set_up(dp->pod_nl, DP_LOOPBACK_IFINDEX, dp->kmsg, sizeof(dp->kmsg));
	if (ret)
		return fail(dp, ret, "set lo up in pod netns");
	/* Before the routes: the kernel refuses a route through a link that is down. */
	ret = nl_link_set_up(dp->pod_nl, l->pod_ifindex, dp->kmsg, sizeof(dp->kmsg));
	if (ret)
		return fail(dp, ret, "set %s up", ifname);
	ret = route_req(dp, dp->pod_nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &gw);
	if (ret)
		return fail(dp, ret, "add route %s/32 dev %s", DP_GATEWAY, ifname);
	/* No onlink needed: the /32 link route above makes the gateway reachable. */
	ret = route_req(dp, dp->pod_nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &def);
	if (ret)
		return fail(dp, ret, "add default route via %s dev %s", DP_GATEWAY, ifname);
	/* The gateway's MAC is known: no ARP for it, and no proxy_arp on the host. */
	ret = neigh_add(dp, l->pod_ifindex, l->host_mac);
	if (ret)
		return fail(dp, ret, "add neighbour %s lladdr " MAC_FMT " dev %s", DP_GATEWAY,
			    MAC_ARGS(l->host_mac), ifname);
	return 0;
}

/*
 * Take back what dp_add created. Deleting either end of the veth deletes the
 * pair and with it every address, route and neighbour on it; rules are not
 * tied to a link and go one by one. Errors are ignored: there is nothing
 * better to do, and the original failure is the one to report.
 */
static void dp_undo(struct dp *dp, const struct undo *u)
{
	struct rule r;
	struct nl_link link;

	/* Every "from" rule of the address is this ADD's: it flushed the others. */
	if (u->rule_from)
		rules_from_flush(dp);
	if (u->rule_to) {
		r = rule_to(dp->pod);
		rule_req(dp, RTM_DELRULE, 0, &r);
	}
	if (!u->veth)
		return;
	if (nl_link_get(dp->host, dp->pod->host_veth, &link, NULL, 0) == 0)
		nl_link_del(dp->host, link.ifindex, NULL, 0);
	else if (nl_link_get(dp->pod_nl, dp->pod->ifname, &link, NULL, 0) == 0)
		nl_link_del(dp->pod_nl, link.ifindex, NULL, 0);
}

/*
 * The pod already has an interface of that name. A veth with no IPv4 address
 * is what our DEL leaves in a netns the runtime keeps (podman's network
 * reload, disconnect/connect): remove it, -ENODEV. Anything else is a live
 * attachment or not ours: -EEXIST.
 */
static int pod_link_reclaim(struct dp *dp, const struct nl_link *link)
{
	int ret = strcmp(link->kind, "veth") == 0 ? addr_find(dp, &(struct addr){ .ifindex = link->ifindex, .ip = { 0 } }) : 1;

	if (ret < 0)
		return fail(dp, ret, "look up addresses of %s in pod netns %s", link->name,
			    dp->pod->netns_path);
	if (ret > 0)
		return fail(dp, -EEXIST, "interface %s already exists in pod netns %s",
			    dp->pod->ifname, dp->pod->netns_path);
	ret = nl_link_del(dp->pod_nl, link->ifindex, dp->kmsg, sizeof(dp->kmsg));
	if (ret && ret != -ENODEV)
		return fail(dp, ret, "remove stale %s from pod netns %s", link->name,
			    dp->pod->netns_path);
	return -ENODEV;
}

int dp_add(const struct dp_pod *pod, struct dp_links *out, char *err, size_t errlen)
{
	struct undo u = { 0 };
	struct nl_link link;
	struct dp dp;
	int ret;

	*out = (struct dp_links){ 0 };
	ret = dp_open(&dp, pod, false, err, errlen);
	if (ret)
		return ret;
	if (!name_ok(pod->ifname) || !name_ok(pod->host_veth) || !pod->ip.s_addr) {
		ret = fail(&dp, -EINVAL, "invalid pod interface name, host veth name or address");
		goto out_close;
	}
	/* First, so that a repeated ADD of a live attachment cannot tear down its host veth. */
	ret = nl_link_get(dp.pod_nl, pod->ifname, &link, dp.kmsg, sizeof(dp.kmsg));
	if (ret == 0) {
		ret = pod_link_reclaim(&dp, &link);
		if (ret != -ENODEV)
			goto out_close;
	}
	if (ret != -ENODEV) {
		ret = fail(&dp, ret, "look up %s in pod netns %s", pod->ifname, pod->netns_path);
		goto out_close;
	}
	ret = host_veth_clear(&dp);
	if (ret)
		goto out_close;

	ret = veth_create(&dp);
	if (ret) {
		fail(&dp, ret, "create veth %s with peer %s in the host netns", pod->ifname,
		     pod->host_veth);
		goto out_close;
	}
	u.veth = true;
	ret = nl_link_get(dp.host, pod->host_veth, &link, dp.kmsg, sizeof(dp.kmsg));
	if (ret) {
		fail(&dp, ret, "look up new host interface %s", pod->host_veth);
		goto out_undo;
	}
	out->host_ifindex = link.ifindex;
	memcpy(out->host_mac, link.mac, sizeof(out->host_mac));
	ret = nl_link_get(dp.pod_nl, pod->ifname, &link, dp.kmsg, sizeof(dp.kmsg));
	if (ret) {
		fail(&dp, ret, "look up new interface %s in pod netns", pod->ifname);
		goto out_undo;
	}
	out->pod_ifindex = link.ifindex;
	memcpy(out->pod_mac, link.mac, sizeof(out->pod_mac));

	ret = host_setup(&dp, out, &u);
	if (ret)
		goto out_undo;
	ret = pod_setup(&dp, out);
	if (ret)
		goto out_undo;
	goto out_close;

out_undo:
	dp_undo(&dp, &u);
	*out = (struct dp_links){ 0 };
out_close:
	dp_close(&dp);
	return ret;
}

/* --- DEL --- */

static int host_del(struct dp *dp)
{
	const struct dp_pod *pod = dp->pod;
	struct nl_link link;
	struct route route;
	struct rule rule;
	int ret = -ENODEV;

	if (pod->host_veth[0]) {
		ret = nl_link_get(dp->host, pod->host_veth, &link, dp->kmsg, sizeof(dp->kmsg));
		if (ret && ret != -ENODEV)
			return fail(dp, ret, "look up host interface %s", pod->host_veth);
	}
	/*
	 * With the host veth known, only its route is ours. With the veth gone,
	 * the kernel took its routes along, and a berth route left for this
	 * address belongs to whichever attachment has it now: leave it alone.
	 * Only when the name is unknown is any berth link route to the address
	 * (DP_RTPROT, scope link, main) taken to be this attachment's.
	 */
	if (ret == 0 || !pod->host_veth[0]) {
		route = host_route(pod, ret == 0 ? link.ifindex : 0);
		ret = route_req(dp, dp->host, RTM_DELROUTE, 0, &route);
		if (ret && !gone(ret))
			return fail(dp, ret, "delete host route %s/32", dp->ip);
	}
	ret = rules_from_flush(dp);
	if (ret)
		return ret;
	rule = rule_to(pod);
	ret = rule_req(dp, RTM_DELRULE, 0, &rule);
	if (ret && !gone(ret))
		return fail(dp, ret, "delete rule to %s/32", dp->ip);
	return 0;
}

/* Take the address off the pod's interface: the pod must not keep using it once released. */
static int pod_del(struct dp *dp)
{
	struct nl_link link;
	int ret;

	if (!name_ok(dp->pod->ifname))
		return 0;
	ret = nl_link_get(dp->pod_nl, dp->pod->ifname, &link, dp->kmsg, sizeof(dp->kmsg));
	if (ret == -ENODEV)
		return 0;
	if (ret)
		return fail(dp, ret, "look up %s in pod netns", dp->pod->ifname);
	ret = addr_req(dp, RTM_DELADDR, 0, link.ifindex);
	if (ret && ret != -EADDRNOTAVAIL && ret != -ENODEV)
		return fail(dp, ret, "delete address %s/32 from %s", dp->ip, dp->pod->ifname);
	return 0;
}

int dp_del(const struct dp_pod *pod, char *err, size_t errlen)
{
	struct dp dp;
	int ret;

	ret = dp_open(&dp, pod, true, err, errlen);
	if (ret)
		return ret;
	/* Without the address there is nothing of this attachment's to tell apart. */
	if (!pod->ip.s_addr)
		goto out_close;
	ret = host_del(&dp);
	if (ret)
		goto out_close;
	if (dp.pod_nl)
		ret = pod_del(&dp);
out_close:
	dp_close(&dp);
	return ret;
}

/* --- CHECK --- */

static struct in_addr attr_in4(const struct nlattr *attr)
{
	struct in_addr a = { 0 };

	if (attr)
		memcpy(&a, nla_data(attr), sizeof(a));
	return a;
}

static const struct nla_policy route_policy[RTA_MAX + 1] = {
	[RTA_DST] = { .minlen = 4, .maxlen = 4 },
	[RTA_GATEWAY] = { .minlen = 4, .maxlen = 4 },
	[RTA_OIF] = { .type = NLA_U32 },
	[RTA_TABLE] = { .type = NLA_U32 },
};

struct find {
	const void *want;
	bool found;
};

static int route_find_cb(const struct nlmsghdr *nlh, void *data)
{
	struct find *f = data;
	const struct route *w = f->want;
	const struct rtmsg *rtm = nlmsg_data(nlh);
	struct nlattr *tb[RTA_MAX + 1];

	if (nl_attr_parse(nlh, sizeof(*rtm), route_policy, RTA_MAX, tb) ||
	    rtm->rtm_family != AF_INET || rtm->rtm_type != RTN_UNICAST ||
	    rtm->rtm_dst_len != w->dst_len || rtm->rtm_scope != w->scope)
		return 0;
	if ((tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table) != w->table ||
	    attr_in4(tb[RTA_DST]).s_addr != w->dst.s_addr ||
	    attr_in4(tb[RTA_GATEWAY]).s_addr != w->gw.s_addr ||
	    !tb[RTA_OIF] || (int)nla_get_u32(tb[RTA_OIF]) != w->oif)
		return 0;
	f->found = true;
	return 1;
}

/* 1 when the route exists, 0 when not, or -errno. */
static int route_find(struct dp *dp, struct rtsock *nl, const struct route *want)
{
	/* Strict checking lets the kernel filter the dump by table and device. */
	const struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_UNSPEC };
	struct nl_msg *msg = nl_req_new(RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof(rtm));
	struct find f = { .want = want };
	int ret;

	if (!msg)
		return -ENOMEM;
	nla_put_u32(msg, RTA_TABLE, want->table);
	if (want->oif)
		nla_put_u32(msg, RTA_OIF, want->oif);
	ret = nl_query(nl, msg, route_find_cb, &f, dp->kmsg, sizeof(dp->kmsg));
	return ret ? ret : f.found;
}

static const struct nla_policy rule_policy[FRA_MAX + 1] = {
	[FRA_SRC] = { .minlen = 4, .maxlen = 4 },
	[FRA_DST] = { .minlen = 4, .maxlen = 4 },
	[FRA_PRIORITY] = { .type = NLA_U32 },
	[FRA_TABLE] = { .type = NLA_U32 },
	[FRA_PROTOCOL] = { .type = NLA_U8 },
};

static int rule_find_cb(const struct nlmsghdr *nlh, void *data)
{
	struct find *f = data;
	const struct rule *w = f->want;
	const struct fib_rule_hdr *frh = nlmsg_data(nlh);
	struct nlattr *tb[FRA_MAX + 1];

	if (nl_attr_parse(nlh, sizeof(*frh), rule_policy, FRA_MAX, tb) ||
	    frh->family != AF_INET || frh->action != FR_ACT_TO_TBL ||
	    frh->src_len != (w->src.s_addr ? 32 : 0) || frh->dst_len != w->dst_len)
		return 0;
	if (!tb[FRA_PRIORITY] || nla_get_u32(tb[FRA_PRIORITY]) != w->prio ||
	    (tb[FRA_TABLE] ? nla_get_u32(tb[FRA_TABLE]) : frh->table) != w->table ||
	    attr_in4(tb[FRA_SRC]).s_addr != w->src.s_addr ||
	    attr_in4(tb[FRA_DST]).s_addr != w->dst.s_addr)
		return 0;
	f->found = true;
	return 1;
}

static int rule_find(struct dp *dp, const struct rule *want)
{
	const struct fib_rule_hdr frh = { .family = AF_INET };
	struct nl_msg *msg = nl_req_new(RTM_GETRULE, NLM_F_DUMP, &frh, sizeof(frh));
	struct find f = { .want = want };
	int ret;

	ret = nl_query(dp->host, msg, rule_find_cb, &f, dp->kmsg, sizeof(dp->kmsg));
	return ret ? ret : f.found;
}

static bool rule_is_from(const struct dp_pod *pod, const struct rule *r)
{
	for (size_t i = 0; i < n_rules_from(pod); i++) {
		struct rule w = rule_from(pod, i);

		if (w.table == r->table && w.dst_len == r->dst_len && w.dst.s_addr == r->dst.s_addr)
			return true;
	}
	return false;
}

/* Collects a berth "from pod" rule that is none of the expected ones. */
struct stray {
	const struct dp_pod *pod;
	bool found;
	struct rule rule;
};

static int rule_stray_cb(const struct nlmsghdr *nlh, void *data)
{
	struct stray *st = data;
	const struct fib_rule_hdr *frh = nlmsg_data(nlh);
	struct nlattr *tb[FRA_MAX + 1];
	struct rule r;

	if (nl_attr_parse(nlh, sizeof(*frh), rule_policy, FRA_MAX, tb) ||
	    frh->family != AF_INET || frh->src_len != 32 || !tb[FRA_PRIORITY] ||
	    !tb[FRA_PROTOCOL] || nla_get_u8(tb[FRA_PROTOCOL]) != DP_RTPROT)
		return 0;
	r = (struct rule){
		.prio = nla_get_u32(tb[FRA_PRIORITY]),
		.table = tb[FRA_TABLE] ? nla_get_u32(tb[FRA_TABLE]) : frh->table,
		.src = attr_in4(tb[FRA_SRC]),
		.dst = attr_in4(tb[FRA_DST]),
		.dst_len = frh->dst_len,
	};
	if (r.prio != DP_RULE_PRIO_FROM_POD || r.src.s_addr != st->pod->ip.s_addr ||
	    (frh->action == FR_ACT_TO_TBL && rule_is_from(st->pod, &r)))
		return 0;
	st->found = true;
	st->rule = r;
	return 1;
}

/*
 * A berth "from pod" rule ADD would not make now (an earlier holder's, or
 * one from before the agent's SNAT settings changed) routes some traffic
 * past the restriction: CHECK reports it. 1 with *stray set, 0, or -errno.
 */
static int rule_find_stray(struct dp *dp, struct stray *st)
{
	const struct fib_rule_hdr frh = { .family = AF_INET };
	struct nl_msg *msg = nl_req_new(RTM_GETRULE, NLM_F_DUMP, &frh, sizeof(frh));
	int ret;

	*st = (struct stray){ .pod = dp->pod };
	ret = nl_query(dp->host, msg, rule_stray_cb, st, dp->kmsg, sizeof(dp->kmsg));
	return ret ? ret : st->found;
}

static const struct nla_policy addr_policy[IFA_MAX + 1] = {
	[IFA_LOCAL] = { .minlen = 4, .maxlen = 4 },
};


static int addr_find_cb(const struct nlmsghdr *nlh, void *data)
{
	struct find *f = data;
	const struct addr *w = f->want;
	const struct ifaddrmsg *ifa = nlmsg_data(nlh);
	struct nlattr *tb[IFA_MAX + 1];

	if (nl_attr_parse(nlh, sizeof(*ifa), addr_policy, IFA_MAX, tb) ||
	    ifa->ifa_family != AF_INET || (int)ifa->ifa_index != w->ifindex)
		return 0;
	/* INADDR_ANY wants any IPv4 address at all. */
	if (w->ip.s_addr &&
	    (ifa->ifa_prefixlen != 32 || attr_in4(tb[IFA_LOCAL]).s_addr != w->ip.s_addr))
		return 0;
	f->found = true;
	return 1;
}

static int addr_find(struct dp *dp, const struct addr *want)
{
	/* Strict checking lets the kernel filter the dump by ifa_index. */
	const struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_index = want->ifindex };
	struct nl_msg *msg = nl_req_new(RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa));
	struct find f = { .want = want };
	int ret;

	ret = nl_query(dp->pod_nl, msg, addr_find_cb, &f, dp->kmsg, sizeof(dp->kmsg));
	return ret ? ret : f.found;
}

struct neigh {
	uint16_t state;
	unsigned char mac[6];
	bool has_mac;
};

static const struct nla_policy neigh_policy[NDA_MAX + 1] = {
	[NDA_LLADDR] = { .minlen = 6, .maxlen = 6 },
};

static int neigh_get_cb(const struct nlmsghdr *nlh, void *data)
{
	struct neigh *n = data;
	const struct ndmsg *ndm = nlmsg_data(nlh);
	struct nlattr *tb[NDA_MAX + 1];

	if (nl_attr_parse(nlh, sizeof(*ndm), neigh_policy, NDA_MAX, tb))
		return -EBADMSG;
	n->state = ndm->ndm_state;
	n->has_mac = tb[NDA_LLADDR] != NULL;
	if (n->has_mac)
		memcpy(n->mac, nla_data(tb[NDA_LLADDR]), sizeof(n->mac));
	return 0;
}

/* The gateway's neighbour entry on ifindex. 0, -ENOENT when there is none, or -errno. */
static int neigh_get(struct dp *dp, int ifindex, struct neigh *n)
{
	const struct ndmsg ndm = { .ndm_family = AF_INET, .ndm_ifindex = ifindex };
	struct nl_msg *msg = nl_req_new(RTM_GETNEIGH, 0, &ndm, sizeof(ndm));

	if (!msg)
		return -ENOMEM;
	put_in4(msg, NDA_DST, dp->gw);
	return nl_query(dp->pod_nl, msg, neigh_get_cb, n, dp->kmsg, sizeof(dp->kmsg));
}

/* Verify a link: present, of the right kind, up, with the configured MTU. */
static int link_check(struct dp *dp, struct rtsock *nl, const char *name, const char *where,
		      const char *kind, struct nl_link *link)
{
	int ret = nl_link_get(nl, name, link, dp->kmsg, sizeof(dp->kmsg));

	if (ret == -ENODEV)
		return mismatch(dp, -ENOENT, "%s %s missing", where, name);
	if (ret)
		return fail(dp, ret, "look up %s %s", where, name);
	if (kind && strcmp(link->kind, kind))
		return mismatch(dp, -EINVAL, "%s %s is not a %s (kind \"%s\")", where, name, kind,
				link->kind);
	if (!(link->flags & IFF_UP))
		return mismatch(dp, -EINVAL, "%s %s is down", where, name);
	if (dp->pod->mtu && link->mtu != dp->pod->mtu)
		return mismatch(dp, -EINVAL, "%s %s has mtu %u, want %u", where, name, link->mtu,
				dp->pod->mtu);
	return 0;
}

static int rule_check(struct dp *dp, const struct rule *r)
{
	int ret = rule_find(dp, r);
	char desc[RULE_STR_MAX];

	if (ret < 0)
		return fail(dp, ret, "dump rules");
	if (!ret)
		return mismatch(dp, -ENOENT, "rule %s missing", rule_str(dp, r, desc, sizeof(desc)));
	return 0;
}

static int rules_from_no_stray(struct dp *dp)
{
	struct stray st;
	char desc[RULE_STR_MAX];
	int ret = rule_find_stray(dp, &st);

	if (ret < 0)
		return fail(dp, ret, "dump rules");
	if (ret)
		return mismatch(dp, -EEXIST, "unexpected rule %s",
				rule_str(dp, &st.rule, desc, sizeof(desc)));
	return 0;
}

static int host_check(struct dp *dp, struct nl_link *veth)
{
	const struct dp_pod *pod = dp->pod;
	struct route route;
	struct rule rule;
	int ret;

	ret = link_check(dp, dp->host, pod->host_veth, "host interface", "veth", veth);
	if (ret)
		return ret;
	route = host_route(pod, veth->ifindex);
	ret = route_find(dp, dp->host, &route);
	if (ret < 0)
		return fail(dp, ret, "dump host routes");
	if (!ret)
		return mismatch(dp, -ENOENT, "host route %s/32 dev %s missing", dp->ip,
				pod->host_veth);
	if (!pod->table)
		return 0;
	rule = rule_to(pod);
	ret = rule_check(dp, &rule);
	for (size_t i = 0; !ret && i < n_rules_from(pod); i++) {
		rule = rule_from(pod, i);
		ret = rule_check(dp, &rule);
	}
	return ret ? ret : rules_from_no_stray(dp);
}

static int pod_check(struct dp *dp, const struct nl_link *veth)
{
	const char *ifname = dp->pod->ifname;
	struct nl_link link;
	struct route route;
	struct neigh n = { 0 };
	int ret;

	ret = link_check(dp, dp->pod_nl, ifname, "pod interface", NULL, &link);
	if (ret)
		return ret;
	ret = addr_find(dp, &(struct addr){ .ifindex = link.ifindex, .ip = dp->pod->ip });
	if (ret < 0)
		return fail(dp, ret, "dump addresses in pod netns");
	if (!ret)
		return mismatch(dp, -ENOENT, "address %s/32 on %s missing", dp->ip, ifname);
	route = gw_route(dp, link.ifindex);
	ret = route_find(dp, dp->pod_nl, &route);
	if (ret < 0)
		return fail(dp, ret, "dump routes in pod netns");
	if (!ret)
		return mismatch(dp, -ENOENT, "pod route %s/32 dev %s missing", DP_GATEWAY, ifname);
	route = default_route(dp, link.ifindex);
	ret = route_find(dp, dp->pod_nl, &route);
	if (ret < 0)
		return fail(dp, ret, "dump routes in pod netns");
	if (!ret)
		return mismatch(dp, -ENOENT, "pod default route via %s dev %s missing", DP_GATEWAY,
				ifname);
	ret = neigh_get(dp, link.ifindex, &n);
	if (ret == -ENOENT)
		return mismatch(dp, -ENOENT, "pod neighbour %s dev %s missing", DP_GATEWAY, ifname);
	if (ret)
		return fail(dp, ret, "get neighbour %s dev %s", DP_GATEWAY, ifname);
	if (!(n.state & NUD_PERMANENT))
		return mismatch(dp, -EINVAL, "pod neighbour %s dev %s is not permanent", DP_GATEWAY,
				ifname);
	if (!n.has_mac || memcmp(n.mac, veth->mac, sizeof(n.mac)))
		return mismatch(dp, -EINVAL,
				"pod neighbour %s dev %s has lladdr " MAC_FMT
				", want the host veth's " MAC_FMT,
				DP_GATEWAY, ifname, MAC_ARGS(n.mac), MAC_ARGS(veth->mac));
	return 0;
}

int dp_check(const struct dp_pod *pod, char *err, size_t errlen)
{
	struct nl_link veth;
	struct dp dp;
	int ret;

	ret = dp_open(&dp, pod, false, err, errlen);
	if (ret)
		return ret;
	ret = host_check(&dp, &veth);
	if (!ret)
		ret = pod_check(&dp, &veth);
	dp_close(&dp);
	return ret;
}

bool dp_link_exists(const char *name)
{
	struct rtsock *nl = rtsock_open();
	struct nl_link link;
	bool found;

	if (!nl)
		return false;
	found = nl_link_get(nl, name, &link, NULL, 0) == 0;
	rtsock_close(nl);
	return found;
}
