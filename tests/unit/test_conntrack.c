// SPDX-License-Identifier: Apache-2.0
/* UDP conntrack cleanup: entry parsing, the delete request, and which entries the rules pick. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conntrack.h"

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static struct ct_addr_port ap(const char *s, uint16_t port)
{
	return (struct ct_addr_port){ .addr = ip(s), .port = port };
}

/* ---- messages ---- */

static void put_tuple(struct nlmsghdr *nlh, int type, uint8_t proto, struct ct_addr_port src,
		      struct ct_addr_port dst)
{
	struct nlattr *t = mnl_attr_nest_start(nlh, type), *n;

	n = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, &src.addr);
	mnl_attr_put(nlh, CTA_IP_V4_DST, 4, &dst.addr);
	mnl_attr_nest_end(nlh, n);
	n = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(src.port));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dst.port));
	mnl_attr_nest_end(nlh, n);
	mnl_attr_nest_end(nlh, t);
}

/* A dump reply as the kernel sends it: a client's flow to a ClusterIP, DNATed to a pod. */
static struct nlmsghdr *dumped(char *buf, uint8_t family, uint16_t zone)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	*nfg = (struct nfgenmsg){ .nfgen_family = family, .version = NFNETLINK_V0 };
	put_tuple(nlh, CTA_TUPLE_ORIG, IPPROTO_UDP, ap("198.18.1.3", 40053),
		  ap("198.18.128.10", 53));
	put_tuple(nlh, CTA_TUPLE_REPLY, IPPROTO_UDP, ap("198.18.1.2", 5353),
		  ap("198.18.1.3", 40053));
	mnl_attr_put_u32(nlh, CTA_ID, htonl(0xdeadbeef));
	if (zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(zone));
	return nlh;
}

static void test_parse_entry(void **state)
{
	char buf[1024];
	struct ct_entry e;

	assert_int_equal(ct_entry_parse(dumped(buf, AF_INET, 7), &e), 0);
	assert_int_equal(e.l4proto, IPPROTO_UDP);
	assert_int_equal(e.orig_src.addr.s_addr, ip("198.18.1.3").s_addr);
	assert_int_equal(e.orig_src.port, 40053);
	assert_int_equal(e.orig_dst.addr.s_addr, ip("198.18.128.10").s_addr);
	assert_int_equal(e.orig_dst.port, 53);
	assert_int_equal(e.reply_src.addr.s_addr, ip("198.18.1.2").s_addr);
	assert_int_equal(e.reply_src.port, 5353);
	assert_true(e.has_id);
	assert_int_equal(e.id, 0xdeadbeef);
	assert_int_equal(e.zone, 7);
	assert_int_equal(ct_entry_parse(dumped(buf, AF_INET6, 0), &e), -EAFNOSUPPORT);
}

static void test_parse_rejects(void **state)
{
	char buf[1024];
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct ct_entry e;

	/* Not a conntrack entry message. */
	nlh = dumped(buf, AF_INET, 0);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	assert_int_equal(ct_entry_parse(nlh, &e), -EINVAL);
	/* No reply tuple. */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	*nfg = (struct nfgenmsg){ .nfgen_family = AF_INET };
	put_tuple(nlh, CTA_TUPLE_ORIG, IPPROTO_UDP, ap("198.18.1.3", 1), ap("198.18.1.4", 2));
	assert_int_equal(ct_entry_parse(nlh, &e), -EINVAL);
	/* A truncated address. */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	*nfg = (struct nfgenmsg){ .nfgen_family = AF_INET };
	{
		struct nlattr *t = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
		struct nlattr *n = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);

		mnl_attr_put(nlh, CTA_IP_V4_SRC, 3, "abc");
		mnl_attr_nest_end(nlh, n);
		mnl_attr_nest_end(nlh, t);
	}
	put_tuple(nlh, CTA_TUPLE_REPLY, IPPROTO_UDP, ap("198.18.1.3", 1), ap("198.18.1.4", 2));
	assert_int_equal(ct_entry_parse(nlh, &e), -EINVAL);
}

struct tuple_seen {
	struct ct_addr_port src, dst;
	uint8_t proto;
	int nests;
};

static int tuple_cb(const struct nlattr *a, void *data);

static int nested_cb(const struct nlattr *a, void *data)
{
	struct tuple_seen *t = data;

	switch (mnl_attr_get_type(a)) {
	case CTA_TUPLE_IP:
	case CTA_TUPLE_PROTO:
		t->nests++;
		return mnl_attr_parse_nested(a, tuple_cb, t);
	}
	return MNL_CB_OK;
}

/* Inside CTA_TUPLE_IP / CTA_TUPLE_PROTO (their attribute numbers do not collide). */
static int tuple_cb(const struct nlattr *a, void *data)
{
	struct tuple_seen *t = data;

	switch (mnl_attr_get_type(a)) {
	case CTA_IP_V4_SRC: /* == CTA_PROTO_NUM */
		if (mnl_attr_get_payload_len(a) == 4)
			memcpy(&t->src.addr, mnl_attr_get_payload(a), 4);
		else
			t->proto = mnl_attr_get_u8(a);
		break;
	case CTA_IP_V4_DST: /* == CTA_PROTO_SRC_PORT */
		if (mnl_attr_get_payload_len(a) == 4)
			memcpy(&t->dst.addr, mnl_attr_get_payload(a), 4);
		else
			t->src.port = ntohs(mnl_attr_get_u16(a));
		break;
	case CTA_PROTO_DST_PORT:
		t->dst.port = ntohs(mnl_attr_get_u16(a));
		break;
	}
	return MNL_CB_OK;
}

static void test_build_delete(void **state)
{
	char in[1024], out[CT_REQ_SIZE];
	const struct nlattr *a, *tuple = NULL, *id = NULL, *zone = NULL;
	struct tuple_seen t = { 0 };
	struct nlmsghdr *nlh;
	struct ct_entry e;

	assert_int_equal(ct_entry_parse(dumped(in, AF_INET, 7), &e), 0);
	nlh = ct_build_delete(out, &e);
	assert_true(nlh->nlmsg_len <= CT_REQ_SIZE);
	assert_int_equal(nlh->nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE);
	assert_true(nlh->nlmsg_flags & NLM_F_REQUEST);
	assert_true(nlh->nlmsg_flags & NLM_F_ACK);
	assert_int_equal(((struct nfgenmsg *)mnl_nlmsg_get_payload(nlh))->nfgen_family, AF_INET);
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(a)) {
		case CTA_TUPLE_ORIG: tuple = a; break;
		case CTA_ID: id = a; break;
		case CTA_ZONE: zone = a; break;
		default: fail_msg("unexpected attribute %u", mnl_attr_get_type(a));
		}
	}
	/* The original tuple, not the reply: that is the key the kernel looks up. */
	assert_non_null(tuple);
	assert_true(mnl_attr_get_type(tuple) == CTA_TUPLE_ORIG &&
		    (tuple->nla_type & NLA_F_NESTED));
	mnl_attr_parse_nested(tuple, nested_cb, &t);
	assert_int_equal(t.nests, 2);
	assert_int_equal(t.proto, IPPROTO_UDP);
	assert_int_equal(t.src.addr.s_addr, ip("198.18.1.3").s_addr);
	assert_int_equal(t.src.port, 40053);
	assert_int_equal(t.dst.addr.s_addr, ip("198.18.128.10").s_addr);
	assert_int_equal(t.dst.port, 53);
	assert_non_null(id);
	assert_int_equal(ntohl(mnl_attr_get_u32(id)), 0xdeadbeef);
	assert_non_null(zone);
	assert_int_equal(ntohs(mnl_attr_get_u16(zone)), 7);

	/* Default zone, no id: neither attribute. */
	e.zone = 0;
	e.has_id = false;
	nlh = ct_build_delete(out, &e);
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		assert_int_equal(mnl_attr_get_type(a), CTA_TUPLE_ORIG);
}

/* ---- rules from plans ---- */

#define CIP "198.18.128.10"
#define EXT "198.18.129.2"
#define NODE "198.18.0.10"
#define A "198.18.1.2"
#define B "198.18.1.3"
#define C "198.18.1.4"

struct svc_fixture {
	struct plan_frontend fe[3];
	struct plan_endpoint ep[3];
	struct plan_port port;
	struct plan_service svc;
};

/* A UDP service port 53 -> 5353 on CIP (and EXT, NODE:30053 when ext) with endpoints eps. */
static struct plan_service *mk(struct svc_fixture *f, const char *const *eps, size_t n_eps,
			       bool ext)
{
	*f = (struct svc_fixture){ 0 };
	f->fe[0] = (struct plan_frontend){ .kind = FE_CLUSTER_IP, .addr = ip(CIP), .port = 53 };
	if (ext) {
		f->fe[1] = (struct plan_frontend){ .kind = FE_NODE_PORT, .addr = ip(NODE),
						   .port = 30053, .external = true };
		f->fe[2] = (struct plan_frontend){ .kind = FE_EXTERNAL_IP, .addr = ip(EXT),
						   .port = 53, .external = true };
	}
	for (size_t i = 0; i < n_eps; i++)
		f->ep[i] = (struct plan_endpoint){ .addr = ip(eps[i]), .port = 5353, .local = true };
	f->port = (struct plan_port){
		.name = "dns", .proto = L4_UDP, .n_frontends = ext ? 3 : 1, .frontends = f->fe,
		.n_cluster_eps = n_eps, .cluster_eps = f->ep,
		.n_external_eps = n_eps, .external_eps = f->ep,
		.has_endpoints = n_eps > 0,
	};
	f->svc = (struct plan_service){ .ns = "test", .name = "dns", .n_ports = 1,
					.ports = &f->port };
	return &f->svc;
}

/* A UDP entry from a client to frontend fe, answered by reply. */
static struct ct_entry flow(struct ct_addr_port fe, struct ct_addr_port reply)
{
	return (struct ct_entry){ .l4proto = IPPROTO_UDP, .orig_src = ap("198.18.1.9", 40000),
				  .orig_dst = fe, .reply_src = reply };
}

static bool picks(struct ct_cleanup *c, struct ct_addr_port fe, struct ct_addr_port reply)
{
	struct ct_entry e = flow(fe, reply);

	return ct_cleanup_matches(c, &e);
}

static struct ct_cleanup *cleanup_for(const struct plan_service *old,
				      const struct plan_service *new)
{
	struct ct_cleanup *c = ct_cleanup_new();

	assert_non_null(c);
	assert_int_equal(ct_cleanup_add(c, old, new, 0), 0);
	ct_cleanup_prepare(c);
	return c;
}

static void test_endpoint_removed(void **state)
{
	static const char *const ab[] = { A, B }, *const b[] = { B };
	struct svc_fixture fo, fn;
	struct ct_cleanup *c = cleanup_for(mk(&fo, ab, 2, true), mk(&fn, b, 1, true));

	assert_int_equal(ct_cleanup_rules(c), 3);
	/* To the removed endpoint, through every frontend: gone. */
	assert_true(picks(c, ap(CIP, 53), ap(A, 5353)));
	assert_true(picks(c, ap(NODE, 30053), ap(A, 5353)));
	assert_true(picks(c, ap(EXT, 53), ap(A, 5353)));
	/* To the endpoint that stays: kept. */
	assert_false(picks(c, ap(CIP, 53), ap(B, 5353)));
	assert_false(picks(c, ap(NODE, 30053), ap(B, 5353)));
	/* The same address on another port is another endpoint. */
	assert_true(picks(c, ap(CIP, 53), ap(B, 5354)));
	/* Other destinations, other protocols: not ours. */
	assert_false(picks(c, ap(CIP, 54), ap(A, 5353)));
	assert_false(picks(c, ap(A, 5353), ap(A, 5353)));
	{
		struct ct_entry e = flow(ap(CIP, 53), ap(A, 5353));

		e.l4proto = IPPROTO_TCP;
		assert_false(ct_cleanup_matches(c, &e));
	}
	assert_int_equal(ct_cleanup_deleted(c, 0), 0);
	ct_cleanup_free(c);
}

static void test_no_removal_no_rules(void **state)
{
	static const char *const a[] = { A }, *const ab[] = { A, B };
	struct svc_fixture fo, fn;
	struct ct_cleanup *c;

	/* An endpoint added to a port that had one: existing flows stay as they are. */
	c = cleanup_for(mk(&fo, a, 1, false), mk(&fn, ab, 2, false));
	assert_int_equal(ct_cleanup_rules(c), 0);
	ct_cleanup_free(c);
	/* No endpoints before or after: nothing was DNATed. */
	c = cleanup_for(mk(&fo, NULL, 0, false), mk(&fn, NULL, 0, false));
	assert_int_equal(ct_cleanup_rules(c), 0);
	ct_cleanup_free(c);
	/* A TCP port is never cleaned. */
	mk(&fo, ab, 2, false);
	mk(&fn, a, 1, false);
	fo.port.proto = fn.port.proto = L4_TCP;
	c = cleanup_for(&fo.svc, &fn.svc);
	assert_int_equal(ct_cleanup_rules(c), 0);
	ct_cleanup_free(c);
}

static void test_gaining_first_endpoints(void **state)
{
	static const char *const a[] = { A };
	struct svc_fixture fo, fn;
	struct ct_cleanup *c;

	/* From none: a flow left un-NATed (its reply comes from the frontend itself) goes. */
	c = cleanup_for(mk(&fo, NULL, 0, true), mk(&fn, a, 1, true));
	assert_int_equal(ct_cleanup_rules(c), 3);
	assert_true(picks(c, ap(NODE, 30053), ap(NODE, 30053)));
	assert_true(picks(c, ap(CIP, 53), ap(CIP, 53)));
	assert_false(picks(c, ap(CIP, 53), ap(A, 5353)));
	ct_cleanup_free(c);
	/* A new service (or the first sync after a restart): the same. */
	c = cleanup_for(NULL, mk(&fn, a, 1, true));
	assert_int_equal(ct_cleanup_rules(c), 3);
	assert_true(picks(c, ap(EXT, 53), ap(EXT, 53)));
	assert_true(picks(c, ap(EXT, 53), ap(B, 5353)));
	assert_false(picks(c, ap(EXT, 53), ap(A, 5353)));
	ct_cleanup_free(c);
	/* A frontend added to a port with endpoints: only that frontend. */
	c = cleanup_for(mk(&fo, a, 1, false), mk(&fn, a, 1, true));
	assert_int_equal(ct_cleanup_rules(c), 2);
	assert_true(picks(c, ap(NODE, 30053), ap(NODE, 30053)));
	assert_false(picks(c, ap(CIP, 53), ap(CIP, 53)));
	ct_cleanup_free(c);
}

static void test_losing_everything(void **state)
{
	static const char *const a[] = { A };
	struct svc_fixture fo, fn;
	struct ct_cleanup *c;

	/* The last endpoint goes: every flow through the port goes (then rejected). */
	c = cleanup_for(mk(&fo, a, 1, true), mk(&fn, NULL, 0, true));
	assert_true(picks(c, ap(CIP, 53), ap(A, 5353)));
	assert_true(picks(c, ap(NODE, 30053), ap(A, 5353)));
	ct_cleanup_free(c);
	/* The service goes. */
	c = cleanup_for(mk(&fo, a, 1, true), NULL);
	assert_int_equal(ct_cleanup_rules(c), 3);
	assert_true(picks(c, ap(EXT, 53), ap(A, 5353)));
	ct_cleanup_free(c);
	/* A frontend goes (the external IP and NodePort), the endpoints stay. */
	c = cleanup_for(mk(&fo, a, 1, true), mk(&fn, a, 1, false));
	assert_int_equal(ct_cleanup_rules(c), 2);
	assert_true(picks(c, ap(EXT, 53), ap(A, 5353)));
	assert_false(picks(c, ap(CIP, 53), ap(A, 5353)));
	ct_cleanup_free(c);
}

static void test_frontend_moves_between_services(void **state)
{
	static const char *const a[] = { A }, *const cc[] = { C };
	struct svc_fixture fo, fn;
	struct ct_cleanup *c = ct_cleanup_new();

	/* Owner 0 loses the external IP; owner 1 gains it, with endpoint C. */
	assert_int_equal(ct_cleanup_add(c, mk(&fo, a, 1, true), mk(&fn, a, 1, false), 0), 0);
	{
		struct svc_fixture g;

		assert_int_equal(ct_cleanup_add(c, NULL, mk(&g, cc, 1, true), 1), 0);
	}
	ct_cleanup_prepare(c);
	/* The new owner's flows survive the old owner's "keep nothing". */
	assert_false(picks(c, ap(EXT, 53), ap(C, 5353)));
	assert_true(picks(c, ap(EXT, 53), ap(A, 5353)));
	assert_int_equal(ct_cleanup_deleted(c, 1), 0);
	assert_int_equal(ct_cleanup_deleted(c, 7), 0);
	ct_cleanup_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_entry),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_build_delete),
		cmocka_unit_test(test_endpoint_removed),
		cmocka_unit_test(test_no_removal_no_rules),
		cmocka_unit_test(test_gaining_first_endpoints),
		cmocka_unit_test(test_losing_everything),
		cmocka_unit_test(test_frontend_moves_between_services),
	};

	ct_cleanup_free(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
