// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's view of the host: which pod veths and pod routes exist. The
 * checkpoint says what berth handed out; the host says what is in use. They
 * disagree after a crash, a DEL the agent never saw, or a lost checkpoint,
 * and the rules here settle it without ever handing out a live address:
 *   - a /32 route to a pool address over one of our veths with no
 *     allocation is adopted (the pod is alive; the checkpoint forgot it);
 *   - an allocation whose veth has been gone for the grace period is
 *     released (the pod is gone; its DEL never reached us);
 *   - a veth of ours that no allocation names is deleted (its DEL released
 *     the address but the netns outlived it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "datapath.h"
#include "log.h"
#include "nl.h"

#define MAX_VETHS 4096
#define MAX_COPIED_ROUTES 64

struct veth {
	int ifindex;
	char name[IFNAMSIZ];
	bool claimed;
};

struct host_view {
	const char *prefix;
	struct veth *veths;
	size_t n;
};

static int collect_veth(const struct nl_link *link, void *data)
{
	struct host_view *hv = data;

	if (strcmp(link->kind, "veth") != 0 ||
	    strncmp(link->name, hv->prefix, strlen(hv->prefix)) != 0)
		return 0;
	if (hv->n == MAX_VETHS)
		return -E2BIG;
	hv->veths[hv->n++] = (struct veth){ .ifindex = link->ifindex };
	strcpy(hv->veths[hv->n - 1].name, link->name);
	return 0;
}

static struct veth *find_veth_by_name(struct host_view *hv, const char *name)
{
	for (size_t i = 0; i < hv->n; i++)
		if (strcmp(hv->veths[i].name, name) == 0)
			return &hv->veths[i];
	return NULL;
}

static struct veth *find_veth_by_index(struct host_view *hv, int ifindex)
{
	for (size_t i = 0; i < hv->n; i++)
		if (hv->veths[i].ifindex == ifindex)
			return &hv->veths[i];
	return NULL;
}

/* ---- adopt pod routes the checkpoint does not know ---- */

struct adopt_ctx {
	struct agent *agent;
	struct host_view *hv;
};

static const struct nla_policy route_policy[RTA_MAX + 1] = {
	[RTA_DST] = { .minlen = 4, .maxlen = 4 },
	[RTA_OIF] = { .type = NLA_U32 },
	[RTA_TABLE] = { .type = NLA_U32 },
};

static int adopt_route(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = nlmsg_data(nlh);
	struct nlattr *tb[RTA_MAX + 1];
	struct adopt_ctx *ac = data;
	struct ipam_owner owner = { 0 };
	struct in_addr ip;
	struct veth *v;
	char ipbuf[INET_ADDRSTRLEN];

	if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len != 32 || rtm->rtm_table != RT_TABLE_MAIN ||
	    rtm->rtm_protocol != DP_RTPROT ||
	    nl_attr_parse(nlh, sizeof(*rtm), route_policy, RTA_MAX, tb) < 0 || !tb[RTA_DST] ||
	    !tb[RTA_OIF])
		return 0;
	v = find_veth_by_index(ac->hv, (int)nla_get_u32(tb[RTA_OIF]));
	if (!v)
		return 0;
	memcpy(&ip, nla_data(tb[RTA_DST]), 4);
	snprintf(owner.network, sizeof(owner.network), "%s", ac->agent->cfg.network_name);
	snprintf(owner.att.container_id, sizeof(owner.att.container_id), RECOVERED_PREFIX "%s", v->name);
	strcpy(owner.att.ifname, "eth0");
	strcpy(owner.k8s_namespace, "unknown");
	snprintf(owner.pod, sizeof(owner.pod), "%s", v->name);
	strcpy(owner.host_veth, v->name);
	/* -EEXIST: the address (or this veth) is already accounted for. */
	if (ipam_adopt(ac->agent->ipam, &owner, ip, clock_wall_ms()) == 0)
		log_warn("adopted %s on %s: a pod uses it but the checkpoint did not list it",
			 inet_ntop(AF_INET, &ip, ipbuf, sizeof(ipbuf)), v->name);
	return 0;
}

static void adopt_unknown_pods(struct agent *agent, struct rtsock *nl, struct host_view *hv)
{
	const struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN };
	struct adopt_ctx ac = { agent, hv };
	char err[256];
	int r;

	r = nl_query(nl, nl_req_new(RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof(rtm)), adopt_route, &ac,
		     err, sizeof(err));
	if (r < 0)
		log_warn("reconcile: route dump failed: %s %s", strerror(-r), err);
}

/* ---- release allocations whose veth is gone ---- */

struct stale_ctx {
	const struct agent *agent;
	struct host_view *hv;
	int64_t cutoff_ms;
	struct ipam_owner *stale;
	size_t n, cap;
};

/*
 * With a synced view of this node's Pods, a pod that still exists keeps its
 * address even without a veth (its sandbox is being recreated). Without one
 * (no source), the veth alone decides.
 */
static bool pod_still_here(const struct agent *agent, const struct ipam_owner *o)
{
	char key[PROTO_K8S_NS_MAX + PROTO_POD_MAX + 2];

	if (!agent->kc || agent->source == SOURCE_NONE || !kcache_synced(agent->kc, K8S_POD))
		return false;
	snprintf(key, sizeof(key), "%s/%s", o->k8s_namespace, o->pod);
	return kcache_get(agent->kc, K8S_POD, key) != NULL;
}

static int mark_claimed_or_stale(const struct ipam_alloc *a, void *data)
{
	struct stale_ctx *sc = data;
	struct veth *v = find_veth_by_name(sc->hv, a->owner.host_veth);

	if (v) {
		v->claimed = true;
		return 0;
	}
	/* Young allocations may belong to an ADD that has not created its veth yet. */
	if (a->allocated_at_ms > sc->cutoff_ms || sc->n == sc->cap)
		return 0;
	if (pod_still_here(sc->agent, &a->owner))
		return 0;
	sc->stale[sc->n++] = a->owner;
	return 0;
}

static void release_stale(struct agent *agent, struct stale_ctx *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		const struct ipam_owner *o = &sc->stale[i];

		log_info("reclaimed the address of %s/%s (%.12s %s): its host veth %s is gone%s",
			 o->k8s_namespace, o->pod, o->att.container_id, o->att.ifname, o->host_veth,
			 agent->source != SOURCE_NONE ? " and the pod is not on this node" : "");
		ipam_release(agent->ipam, o->network, &o->att, clock_wall_ms());
		agent->counters.reclaimed++;
	}
}

static void remove_orphan_veths(struct agent *agent, struct rtsock *nl, struct host_view *hv)
{
	char err[256];

	for (size_t i = 0; i < hv->n; i++) {
		int r;

		if (hv->veths[i].claimed)
			continue;
		/* By index, not name: a new veth of the same name belongs to a new sandbox. */
		r = nl_link_del(nl, hv->veths[i].ifindex, err, sizeof(err));
		if (r == 0) {
			log_info("removed host veth %s: no allocation names it", hv->veths[i].name);
			agent->counters.veths_removed++;
		} else if (r != -ENODEV) {
			log_warn("cannot remove host veth %s: %s %s", hv->veths[i].name, strerror(-r), err);
		}
	}
}

void agent_reconcile(struct agent *agent, bool at_start)
{
	struct host_view hv = { .prefix = agent->cfg.veth_prefix };
	struct stale_ctx sc = { .agent = agent, .hv = &hv };
	struct rtsock *nl = rtsock_open();
	char err[256];
	int r;

	hv.veths = calloc(MAX_VETHS, sizeof(*hv.veths));
	sc.cap = MAX_VETHS;
	sc.stale = calloc(sc.cap, sizeof(*sc.stale));
	if (!nl || !hv.veths || !sc.stale) {
		log_warn("reconcile: cannot open netlink or allocate");
		goto out;
	}
	r = nl_link_dump(nl, collect_veth, &hv, err, sizeof(err));
	if (r < 0) {
		/* Acting on a partial view could release live addresses: skip this round. */
		log_warn("reconcile: link dump failed: %s %s", strerror(-r), err);
		goto out;
	}
	adopt_unknown_pods(agent, nl, &hv);
	sc.cutoff_ms = clock_wall_ms() - agent->cfg.reclaim_grace_ms;
	ipam_foreach(agent->ipam, mark_claimed_or_stale, &sc);
	release_stale(agent, &sc);
	remove_orphan_veths(agent, nl, &hv);
	if (at_start)
		log_info("reconciled with the host: %zu pod veths", hv.n);
out:
	free(sc.stale);
	free(hv.veths);
	rtsock_close(nl);
}

/* ---- policy-routing tables for addresses owned by secondary interfaces ---- */

struct copy_ctx {
	int oif;
	char msgs[MAX_COPIED_ROUTES][512];
	size_t n;
};

static int collect_iface_route(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = nlmsg_data(nlh);
	struct nlattr *tb[RTA_MAX + 1];
	struct copy_ctx *cc = data;

	if (rtm->rtm_family != AF_INET || rtm->rtm_table != RT_TABLE_MAIN ||
	    nl_attr_parse(nlh, sizeof(*rtm), route_policy, RTA_MAX, tb) < 0 || !tb[RTA_OIF] ||
	    (int)nla_get_u32(tb[RTA_OIF]) != cc->oif || nlh->nlmsg_len > sizeof(cc->msgs[0]) ||
	    cc->n == MAX_COPIED_ROUTES)
		return 0;
	memcpy(cc->msgs[cc->n++], nlh, nlh->nlmsg_len);
	return 0;
}

struct gw_ctx {
	int ifindex;
	struct in_addr gw;
};

static const struct nla_policy addr_policy[IFA_MAX + 1] = {
	[IFA_LOCAL] = { .minlen = 4, .maxlen = 4 },
};

/* The subnet router sits at the subnet's first address, as in a VPC. */
static int find_gateway(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = nlmsg_data(nlh);
	struct nlattr *tb[IFA_MAX + 1];
	struct gw_ctx *gc = data;
	uint32_t a, mask;

	if (ifa->ifa_family != AF_INET || (int)ifa->ifa_index != gc->ifindex || gc->gw.s_addr ||
	    ifa->ifa_prefixlen == 0 || ifa->ifa_prefixlen >= 31 ||
	    nl_attr_parse(nlh, sizeof(*ifa), addr_policy, IFA_MAX, tb) < 0 || !tb[IFA_LOCAL])
		return 0;
	memcpy(&a, nla_data(tb[IFA_LOCAL]), 4);
	mask = htonl(~0u << (32 - ifa->ifa_prefixlen));
	gc->gw.s_addr = htonl(ntohl(a & mask) + 1);
	return 0;
}

static int add_default_route(struct rtsock *nl, const struct ipam_range *r, int ifindex)
{
	const struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_index = (uint32_t)ifindex };
	const struct rtmsg rtm = {
		.rtm_family = AF_INET,
		.rtm_table = RT_TABLE_UNSPEC,
		.rtm_protocol = RTPROT_STATIC,
		.rtm_scope = RT_SCOPE_UNIVERSE,
		.rtm_type = RTN_UNICAST,
	};
	char err[256], gwbuf[INET_ADDRSTRLEN];
	struct gw_ctx gc = { .ifindex = ifindex };
	struct nl_msg *msg;
	int ret;

	ret = nl_query(nl, nl_req_new(RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa)), find_gateway, &gc,
		       err, sizeof(err));
	if (ret < 0 || !gc.gw.s_addr) {
		log_warn("pool interface %s has no IPv4 subnet: table %u gets no default route",
			 r->iface, r->table);
		return ret;
	}
	msg = nl_req_new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rtm, sizeof(rtm));
	if (msg) {
		nla_put_u32(msg, RTA_TABLE, r->table);
		nla_put(msg, RTA_GATEWAY, 4, &gc.gw);
		nla_put_u32(msg, RTA_OIF, (uint32_t)ifindex);
	}
	ret = nl_request(nl, msg, err, sizeof(err));
	if (ret < 0)
		log_err("cannot add default via %s dev %s table %u: %s %s",
			inet_ntop(AF_INET, &gc.gw, gwbuf, sizeof(gwbuf)), r->iface, r->table,
			strerror(-ret), err);
	return ret;
}

/*
 * Replies from a secondary interface's addresses must leave through it, so its
 * table holds the interface's routes from main (its subnet) and a default
 * route via its subnet's router.
 */
static int fill_table(struct rtsock *nl, const struct ipam_range *r, int ifindex)
{
	const struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN };
	struct copy_ctx *cc = calloc(1, sizeof(*cc));
	char err[256];
	int ret;

	if (!cc)
		return -ENOMEM;
	cc->oif = ifindex;
	ret = nl_query(nl, nl_req_new(RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof(rtm)),
		       collect_iface_route, cc, err, sizeof(err));
	for (size_t i = 0; ret == 0 && i < cc->n; i++) {
		struct nlmsghdr *m = (struct nlmsghdr *)cc->msgs[i];
		struct rtmsg *rm = nlmsg_data(m);
		struct nlattr *a;
		int rem;

		m->nlmsg_type = RTM_NEWROUTE;
		m->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
		rm->rtm_table = RT_TABLE_UNSPEC;
		/* Rewrite RTA_TABLE in place; every dumped route carries one. */
		nlmsg_for_each_attr(a, m, sizeof(*rm), rem)
			if (nla_type(a) == RTA_TABLE && nla_len(a) == sizeof(uint32_t))
				*(uint32_t *)nla_data(a) = r->table;
		/* A copy as a request: exchange() gives it this socket's sequence number. */
		ret = nl_request(nl, nlmsg_convert(m), err, sizeof(err));
		if (ret < 0)
			log_err("cannot copy a route of %s into table %u: %s %s", r->iface, r->table,
				strerror(-ret), err);
	}
	free(cc);
	return ret < 0 ? ret : add_default_route(nl, r, ifindex);
}

int agent_resolve_tables(struct ipam_range *ranges, size_t n)
{
	struct rtsock *nl = NULL;
	struct nl_link link;
	char err[256];
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		if (!ranges[i].iface[0])
			continue;
		if (!nl && !(nl = rtsock_open()))
			return -errno;
		r = nl_link_get(nl, ranges[i].iface, &link, err, sizeof(err));
		if (r < 0) {
			log_err("pool interface %s: %s", ranges[i].iface, strerror(-r));
			break;
		}
		/* As the Amazon VPC CNI numbers tables per device; 100+ keeps clear of 253-255. */
		if (!ranges[i].table)
			ranges[i].table = 100 + (uint32_t)link.ifindex;
		r = fill_table(nl, &ranges[i], link.ifindex);
	}
	rtsock_close(nl);
	return r;
}
