// SPDX-License-Identifier: Apache-2.0
/*
 * UDP conntrack cleanup over ctnetlink; see conntrack.h for the contract.
 */
#include "conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "nl.h"

/*
 * CTA_FILTER_ORIG_FLAGS bit "filter on the L4 protocol number": defined in
 * the kernel's net/netfilter/nf_internals.h, not exported, but ABI.
 */
#define CT_FILTER_PROTO_NUM (1u << 3)

/* The kernel sizes each dump part from the reader's buffer, up to 32 KiB. */
#define CT_RECV_SIZE 32768
/* recv() calls one dump may take: a safety net far above any real table. */
#define CT_MAX_RECV (1u << 20)
/*
 * Deletes sent in one sendmsg before their ACKs are read: the ACKs of one
 * batch must fit in the socket's receive buffer, or the kernel drops them.
 */
#define CT_DEL_BATCH 64
/* A kernel that stops answering must not hang the agent's event loop. */
#define CT_RECV_TIMEOUT_S 5

#define CT_MSG(type) ((NFNL_SUBSYS_CTNETLINK << 8) | (type))

/* ---- entries: parse and delete request ---- */

static const struct nla_policy ct_policy[CTA_MAX + 1] = {
	[CTA_TUPLE_ORIG] = { .type = NLA_NESTED },
	[CTA_TUPLE_REPLY] = { .type = NLA_NESTED },
	[CTA_ID] = { .type = NLA_U32 },
	[CTA_ZONE] = { .type = NLA_U16 },
};

static const struct nla_policy tuple_policy[CTA_TUPLE_MAX + 1] = {
	[CTA_TUPLE_IP] = { .type = NLA_NESTED },
	[CTA_TUPLE_PROTO] = { .type = NLA_NESTED },
};

static const struct nla_policy ip_policy[CTA_IP_MAX + 1] = {
	[CTA_IP_V4_SRC] = { .minlen = 4, .maxlen = 4 },
	[CTA_IP_V4_DST] = { .minlen = 4, .maxlen = 4 },
};

static const struct nla_policy proto_policy[CTA_PROTO_MAX + 1] = {
	[CTA_PROTO_NUM] = { .type = NLA_U8 },
	[CTA_PROTO_SRC_PORT] = { .type = NLA_U16 },
	[CTA_PROTO_DST_PORT] = { .type = NLA_U16 },
};

/* One direction's tuple: addresses, protocol and ports. */
static int parse_tuple(struct nlattr *nest, uint8_t *l4proto, struct ct_addr_port *src,
		       struct ct_addr_port *dst)
{
	struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1], *pr[CTA_PROTO_MAX + 1];

	if (nla_parse_nested(tb, CTA_TUPLE_MAX, nest, tuple_policy) < 0 || !tb[CTA_TUPLE_IP] ||
	    !tb[CTA_TUPLE_PROTO] || nla_parse_nested(ip, CTA_IP_MAX, tb[CTA_TUPLE_IP], ip_policy) < 0 ||
	    nla_parse_nested(pr, CTA_PROTO_MAX, tb[CTA_TUPLE_PROTO], proto_policy) < 0 ||
	    !pr[CTA_PROTO_NUM])
		return -EINVAL;
	if (!ip[CTA_IP_V4_SRC] || !ip[CTA_IP_V4_DST])
		return -EAFNOSUPPORT;
	*l4proto = nla_get_u8(pr[CTA_PROTO_NUM]);
	/* ICMP and friends carry an id instead of ports: not ours to clean. */
	if (!pr[CTA_PROTO_SRC_PORT] || !pr[CTA_PROTO_DST_PORT])
		return -EPROTONOSUPPORT;
	memcpy(&src->addr, nla_data(ip[CTA_IP_V4_SRC]), 4);
	memcpy(&dst->addr, nla_data(ip[CTA_IP_V4_DST]), 4);
	src->port = ntohs(nla_get_u16(pr[CTA_PROTO_SRC_PORT]));
	dst->port = ntohs(nla_get_u16(pr[CTA_PROTO_DST_PORT]));
	return 0;
}

int ct_entry_parse(const struct nlmsghdr *nlh, struct ct_entry *e)
{
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	struct nlattr *tb[CTA_MAX + 1];
	struct ct_addr_port reply_dst;
	uint8_t reply_proto;
	int r;

	if (nlh->nlmsg_type != CT_MSG(IPCTNL_MSG_CT_NEW) ||
	    nl_attr_parse(nlh, sizeof(*nfg), ct_policy, CTA_MAX, tb))
		return -EINVAL;
	if (nfg->nfgen_family != AF_INET)
		return -EAFNOSUPPORT;
	if (!tb[CTA_TUPLE_ORIG] || !tb[CTA_TUPLE_REPLY])
		return -EINVAL;
	*e = (struct ct_entry){ 0 };
	r = parse_tuple(tb[CTA_TUPLE_ORIG], &e->l4proto, &e->orig_src, &e->orig_dst);
	if (r < 0)
		return r;
	r = parse_tuple(tb[CTA_TUPLE_REPLY], &reply_proto, &e->reply_src, &reply_dst);
	if (r < 0)
		return r;
	if (tb[CTA_ID]) {
		e->id = ntohl(nla_get_u32(tb[CTA_ID]));
		e->has_id = true;
	}
	if (tb[CTA_ZONE])
		e->zone = ntohs(nla_get_u16(tb[CTA_ZONE]));
	return 0;
}

static struct nlmsghdr *ct_req(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = CT_MSG(type);
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	*nfg = (struct nfgenmsg){ .nfgen_family = AF_INET, .version = NFNETLINK_V0 };
	return nlh;
}

struct nlmsghdr *ct_build_delete(char *buf, const struct ct_entry *e)
{
	struct nlmsghdr *nlh = ct_req(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK);
	struct nlattr *tuple, *nest;

	/* The original tuple finds the entry, the zone says in which table. */
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, &e->orig_src.addr);
	mnl_attr_put(nlh, CTA_IP_V4_DST, 4, &e->orig_dst.addr);
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, e->l4proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(e->orig_src.port));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(e->orig_dst.port));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
	if (e->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(e->zone));
	/*
	 * The id makes the delete miss (ENOENT) a newer entry with the same
	 * tuple: one the current rules made after the stale one expired.
	 */
	if (e->has_id)
		mnl_attr_put_u32(nlh, CTA_ID, htonl(e->id));
	return nlh;
}

/* The dump request: IPv4 entries, UDP only when the kernel filters (5.8+). */
static struct nlmsghdr *ct_build_dump(char *buf, bool filter_udp)
{
	struct nlmsghdr *nlh = ct_req(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP);
	struct nlattr *tuple, *nest;

	if (!filter_udp)
		return nlh;
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
	nest = mnl_attr_nest_start(nlh, CTA_FILTER);
	mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, CT_FILTER_PROTO_NUM);
	mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS, 0);
	mnl_attr_nest_end(nlh, nest);
	return nlh;
}

/* ---- rules from plans ---- */

/* A sorted, duplicate-free set of endpoints. */
struct ct_set {
	size_t n;
	struct ct_addr_port *v;
};

static const struct ct_set no_endpoints;

struct ct_rule {
	struct ct_addr_port frontend;
	bool live;                 /* the frontend is in a new plan (else it went away) */
	size_t owner;
	const struct ct_set *keep; /* entries DNATed elsewhere are stale */
};

struct ct_cleanup {
	size_t n_rules, cap_rules;
	struct ct_rule *rules;
	size_t n_sets, cap_sets;
	struct ct_set **sets;      /* the keep sets, owned */
	size_t n_owners;
	size_t *deleted;           /* per owner */
	bool prepared;
};

static int ap_cmp(const void *pa, const void *pb)
{
	const struct ct_addr_port *a = pa, *b = pb;
	uint32_t x = ntohl(a->addr.s_addr), y = ntohl(b->addr.s_addr);

	if (x != y)
		return x < y ? -1 : 1;
	return (a->port > b->port) - (a->port < b->port);
}

static bool ap_eq(const struct ct_addr_port *a, const struct ct_addr_port *b)
{
	return a->addr.s_addr == b->addr.s_addr && a->port == b->port;
}

static bool set_has(const struct ct_set *s, const struct ct_addr_port *ap)
{
	return s->n && bsearch(ap, s->v, s->n, sizeof(*s->v), ap_cmp);
}

/* Is every element of a in b? Both sorted. */
static bool set_subset(const struct ct_set *a, const struct ct_set *b)
{
	size_t j = 0;

	for (size_t i = 0; i < a->n; i++) {
		while (j < b->n && ap_cmp(&b->v[j], &a->v[i]) < 0)
			j++;
		if (j == b->n || !ap_eq(&b->v[j], &a->v[i]))
			return false;
	}
	return true;
}

static void set_free(struct ct_set *s)
{
	if (!s)
		return;
	free(s->v);
	free(s);
}

static void put_eps(struct ct_set *s, const struct plan_endpoint *eps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s->v[s->n++] = (struct ct_addr_port){ .addr = eps[i].addr, .port = eps[i].port };
}

/*
 * Every endpoint of the port, whichever traffic may use it: like kube-proxy,
 * flows are not cut for traffic-policy or topology reasons alone.
 */
static struct ct_set *port_endpoints(const struct plan_port *pp)
{
	struct ct_set *s = calloc(1, sizeof(*s));
	size_t n, w = 0;

	if (!s)
		return NULL;
	if (!pp)
		return s;
	n = pp->n_cluster_eps + pp->n_external_eps + pp->n_short_circuit_eps;
	if (!n)
		return s;
	s->v = calloc(n, sizeof(*s->v));
	if (!s->v) {
		free(s);
		return NULL;
	}
	put_eps(s, pp->cluster_eps, pp->n_cluster_eps);
	put_eps(s, pp->external_eps, pp->n_external_eps);
	put_eps(s, pp->short_circuit_eps, pp->n_short_circuit_eps);
	qsort(s->v, s->n, sizeof(*s->v), ap_cmp);
	for (size_t i = 0; i < s->n; i++)
		if (!w || !ap_eq(&s->v[w - 1], &s->v[i]))
			s->v[w++] = s->v[i];
	s->n = w;
	return s;
}

static bool has_frontend(const struct plan_port *pp, const struct plan_frontend *fe)
{
	if (!pp)
		return false;
	for (size_t i = 0; i < pp->n_frontends; i++)
		if (pp->frontends[i].addr.s_addr == fe->addr.s_addr &&
		    pp->frontends[i].port == fe->port)
			return true;
	return false;
}

/* The port of p with this name and protocol (names are unique per protocol). */
static const struct plan_port *find_port(const struct plan_service *p, const struct plan_port *like)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_ports; i++)
		if (p->ports[i].proto == like->proto && !strcmp(p->ports[i].name, like->name))
			return &p->ports[i];
	return NULL;
}

static int add_rule(struct ct_cleanup *c, const struct plan_frontend *fe, bool live,
		    const struct ct_set *keep, size_t owner)
{
	if (c->n_rules == c->cap_rules) {
		size_t cap = c->cap_rules ? c->cap_rules * 2 : 16;
		struct ct_rule *v = realloc(c->rules, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->rules = v;
		c->cap_rules = cap;
	}
	c->rules[c->n_rules++] = (struct ct_rule){
		.frontend = { .addr = fe->addr, .port = fe->port },
		.live = live, .owner = owner, .keep = keep,
	};
	c->prepared = false;
	return 0;
}

/* Hand a keep set to c (freed with it); on failure it is freed now. */
static int own_set(struct ct_cleanup *c, struct ct_set *s)
{
	if (c->n_sets == c->cap_sets) {
		size_t cap = c->cap_sets ? c->cap_sets * 2 : 16;
		struct ct_set **v = realloc(c->sets, cap * sizeof(*v));

		if (!v) {
			set_free(s);
			return -ENOMEM;
		}
		c->sets = v;
		c->cap_sets = cap;
	}
	c->sets[c->n_sets++] = s;
	return 0;
}

/* One UDP port: op/np the old and new versions, either may be NULL. */
static int add_port(struct ct_cleanup *c, const struct plan_port *op, const struct plan_port *np,
		    size_t owner)
{
	struct ct_set *olds = port_endpoints(op), *news = port_endpoints(np);
	bool removed;
	int r = -ENOMEM;

	if (!olds || !news)
		goto out_free;
	r = own_set(c, news);
	news = NULL; /* c's now, even on failure */
	if (r < 0)
		goto out_free;
	removed = !set_subset(olds, c->sets[c->n_sets - 1]);
	for (size_t i = 0; np && i < np->n_frontends && r == 0; i++) {
		const struct ct_set *keep = c->sets[c->n_sets - 1];
		bool was = has_frontend(op, &np->frontends[i]);

		/* Endpoints went away, or the frontend gains its first ones. */
		if ((was && removed) || ((!was || !olds->n) && keep->n))
			r = add_rule(c, &np->frontends[i], true, keep, owner);
	}
	/* A frontend that goes away: nothing may keep flowing through it. */
	for (size_t i = 0; op && olds->n && i < op->n_frontends && r == 0; i++)
		if (!has_frontend(np, &op->frontends[i]))
			r = add_rule(c, &op->frontends[i], false, &no_endpoints, owner);
out_free:
	set_free(olds);
	set_free(news);
	return r;
}

static int grow_owners(struct ct_cleanup *c, size_t owner)
{
	size_t *v;

	if (owner < c->n_owners)
		return 0;
	v = realloc(c->deleted, (owner + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(v + c->n_owners, 0, (owner + 1 - c->n_owners) * sizeof(*v));
	c->deleted = v;
	c->n_owners = owner + 1;
	return 0;
}

int ct_cleanup_add(struct ct_cleanup *c, const struct plan_service *old,
		   const struct plan_service *new, size_t owner)
{
	int r = grow_owners(c, owner);

	for (size_t i = 0; new && i < new->n_ports && r == 0; i++)
		if (new->ports[i].proto == L4_UDP)
			r = add_port(c, find_port(old, &new->ports[i]), &new->ports[i], owner);
	for (size_t i = 0; old && i < old->n_ports && r == 0; i++)
		if (old->ports[i].proto == L4_UDP && !find_port(new, &old->ports[i]))
			r = add_port(c, &old->ports[i], NULL, owner);
	return r;
}

struct ct_cleanup *ct_cleanup_new(void)
{
	return calloc(1, sizeof(struct ct_cleanup));
}

void ct_cleanup_free(struct ct_cleanup *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_sets; i++)
		set_free(c->sets[i]);
	free(c->sets);
	free(c->rules);
	free(c->deleted);
	free(c);
}

size_t ct_cleanup_rules(const struct ct_cleanup *c)
{
	return c->n_rules;
}

size_t ct_cleanup_deleted(const struct ct_cleanup *c, size_t owner)
{
	return owner < c->n_owners ? c->deleted[owner] : 0;
}

/* ---- matching ---- */

/*
 * By frontend; for one frontend, rules from new plans first: a frontend
 * that moved to another service in the same sync keeps the new owner's
 * endpoints rather than being cleared for the old owner.
 */
static int rule_cmp(const void *pa, const void *pb)
{
	const struct ct_rule *a = pa, *b = pb;
	int r = ap_cmp(&a->frontend, &b->frontend);

	return r ? r : (int)b->live - (int)a->live;
}

void ct_cleanup_prepare(struct ct_cleanup *c)
{
	if (c->n_rules)
		qsort(c->rules, c->n_rules, sizeof(*c->rules), rule_cmp);
	c->prepared = true;
}

/* The first rule for frontend, or NULL. */
static const struct ct_rule *find_rule(const struct ct_cleanup *c,
				       const struct ct_addr_port *frontend)
{
	size_t lo = 0, hi = c->n_rules;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ap_cmp(&c->rules[mid].frontend, frontend) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_rules && ap_eq(&c->rules[lo].frontend, frontend) ? &c->rules[lo] : NULL;
}

static const struct ct_rule *match(const struct ct_cleanup *c, const struct ct_entry *e)
{
	const struct ct_rule *rule;

	if (!c->prepared || e->l4proto != IPPROTO_UDP)
		return NULL;
	rule = find_rule(c, &e->orig_dst);
	return rule && !set_has(rule->keep, &e->reply_src) ? rule : NULL;
}

bool ct_cleanup_matches(const struct ct_cleanup *c, const struct ct_entry *e)
{
	return match(c, e) != NULL;
}

/* ---- the pass over the table ---- */

struct run {
	struct ct_cleanup *c;
	struct mnl_socket *dump, *del;
	char *buf;                        /* CT_RECV_SIZE, for the dump */
	char *batch;                      /* CT_DEL_BATCH requests */
	size_t batch_len, batch_n;
	size_t batch_owner[CT_DEL_BATCH];
	uint32_t seq;
	int first_err;
	char *err;
	size_t errlen;
};

static void fail(struct run *x, int r, const char *what, const char *kernel_msg)
{
	if (x->first_err)
		return;
	x->first_err = r;
	if (x->err && x->errlen)
		snprintf(x->err, x->errlen, "%s: %s", what,
			 kernel_msg && *kernel_msg ? kernel_msg : strerror(-r));
}

static struct mnl_socket *ct_open(void)
{
	static const int opts[] = { NETLINK_EXT_ACK, NETLINK_CAP_ACK };
	struct timeval tv = { .tv_sec = CT_RECV_TIMEOUT_S };
	struct mnl_socket *s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	int one = 1, saved;

	if (!s)
		return NULL;
	for (size_t i = 0; i < MNL_ARRAY_SIZE(opts); i++)
		if (mnl_socket_setsockopt(s, opts[i], &one, sizeof(one)) < 0)
			goto out_close;
	if (setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out_close;
	return s;
out_close:
	saved = errno;
	mnl_socket_close(s);
	errno = saved;
	return NULL;
}

/* A timed-out recv() is EAGAIN; say what it means. */
static int recv_errno(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
}

/* The extended-ACK text of an NLMSG_ERROR (the socket caps ACKs), or NULL. */
static const char *ack_text(const struct nlmsghdr *nlh)
{
	const struct nlattr *attr;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || !(nlh->nlmsg_flags & NLM_F_CAPPED))
		return NULL;
	mnl_attr_for_each(attr, nlh, sizeof(struct nlmsgerr))
		if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(attr);
	return NULL;
}

/* Account one delete's ACK; false when it is not one of this batch's. */
static bool take_ack(struct run *x, const struct nlmsghdr *nlh, uint32_t first)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	uint32_t i = nlh->nlmsg_seq - first;

	if (nlh->nlmsg_type != NLMSG_ERROR || i >= x->batch_n ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
		return false;
	if (e->error == 0)
		x->c->deleted[x->batch_owner[i]]++;
	else if (e->error != -ENOENT) /* ENOENT: expired, or a duplicate in the dump */
		fail(x, e->error < 0 ? e->error : -EPROTO, "deleting a conntrack entry",
		     ack_text(nlh));
	return true;
}

/* Send the queued deletes in one sendmsg and read their ACKs. */
static void flush(struct run *x)
{
	uint32_t first = x->seq - (uint32_t)x->batch_n;
	char ack[8192];
	size_t acked = 0;

	if (!x->batch_n)
		return;
	if (mnl_socket_sendto(x->del, x->batch, x->batch_len) < 0) {
		fail(x, -errno, "sending conntrack deletes", NULL);
		goto out;
	}
	/* Each recv() brings at least one ACK: n + 1 calls are plenty. */
	for (size_t tries = 0; acked < x->batch_n && tries <= x->batch_n; tries++) {
		ssize_t len = mnl_socket_recvfrom(x->del, ack, sizeof(ack));
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)ack;
		int left = (int)len;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			fail(x, recv_errno(), "reading conntrack delete ACKs", NULL);
			break;
		}
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
			acked += take_ack(x, nlh, first);
	}
out:
	x->batch_len = x->batch_n = 0;
}

static void queue_delete(struct run *x, const struct ct_entry *e, size_t owner)
{
	struct nlmsghdr *nlh;

	if (x->batch_n == CT_DEL_BATCH)
		flush(x);
	nlh = ct_build_delete(x->batch + x->batch_len, e);
	nlh->nlmsg_seq = x->seq++;
	x->batch_owner[x->batch_n++] = owner;
	x->batch_len += nlh->nlmsg_len;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct run *x = data;
	const struct ct_rule *rule;
	struct ct_entry e;

	/* Entries we cannot describe (IPv6 sneaking in, ICMP) are not ours. */
	if (ct_entry_parse(nlh, &e) == 0 && (rule = match(x->c, &e)))
		queue_delete(x, &e, rule->owner);
	/* Never stop early: the rest of the dump must still be read off the socket. */
	return MNL_CB_OK;
}

/* One dump, deleting as it streams. 0, or the kernel's -errno for the dump itself. */
static int dump(struct run *x, bool filter_udp)
{
	char req[CT_REQ_SIZE];
	struct nlmsghdr *nlh = ct_build_dump(req, filter_udp);
	unsigned int portid = mnl_socket_get_portid(x->dump);
	uint32_t seq = nlh->nlmsg_seq = x->seq++;

	if (mnl_socket_sendto(x->dump, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (unsigned int i = 0; i < CT_MAX_RECV; i++) {
		ssize_t len = mnl_socket_recvfrom(x->dump, x->buf, CT_RECV_SIZE);
		int ret;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			return recv_errno();
		}
		errno = 0;
		ret = mnl_cb_run(x->buf, (size_t)len, seq, portid, dump_cb, x);
		/* Delete what this part matched before asking for the next one. */
		flush(x);
		if (ret == MNL_CB_STOP)
			return 0; /* NLMSG_DONE */
		if (ret == MNL_CB_ERROR)
			return errno ? -errno : -EPROTO;
	}
	return -E2BIG;
}

int ct_cleanup_run(struct ct_cleanup *c, char *err, size_t errlen)
{
	struct run x = { .c = c, .err = err, .errlen = errlen, .seq = 1 };
	int r = -ENOMEM;

	if (err && errlen)
		err[0] = '\0';
	if (!c->n_rules)
		return 0;
	ct_cleanup_prepare(c);
	x.buf = malloc(CT_RECV_SIZE);
	x.batch = malloc(CT_DEL_BATCH * CT_REQ_SIZE);
	if (!x.buf || !x.batch)
		goto out_free;
	/* Two sockets: deletes are sent while the dump is still being read. */
	x.dump = ct_open();
	x.del = x.dump ? ct_open() : NULL;
	if (!x.del) {
		r = -errno;
		fail(&x, r, "opening a ctnetlink socket", NULL);
		goto out_close;
	}
	r = dump(&x, true);
	/* Kernels before 5.8 refuse CTA_FILTER: dump everything, match UDP here. */
	if (r == -EINVAL || r == -EOPNOTSUPP)
		r = dump(&x, false);
	if (r < 0)
		fail(&x, r, "dumping the conntrack table", NULL);
	r = x.first_err;
out_close:
	if (x.del)
		mnl_socket_close(x.del);
	if (x.dump)
		mnl_socket_close(x.dump);
out_free:
	free(x.batch);
	free(x.buf);
	return r;
}
