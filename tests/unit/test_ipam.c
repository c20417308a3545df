// SPDX-License-Identifier: Apache-2.0
/* The address allocator: pool parsing, assignment, cooldown, gc, adopt. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../agent/ipam.h"

#define COOLDOWN_MS 30000
#define T0 1700000000000LL /* wall-clock ms; never 0, which means "never released" */

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void assert_ip(struct in_addr a, const char *want)
{
	char buf[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static struct ipam_owner owner(const char *network, const char *cid, const char *ifname,
			       const char *veth)
{
	struct ipam_owner o = { 0 };

	snprintf(o.network, sizeof(o.network), "%s", network);
	snprintf(o.att.container_id, sizeof(o.att.container_id), "%s", cid);
	snprintf(o.att.ifname, sizeof(o.att.ifname), "%s", ifname);
	snprintf(o.k8s_namespace, sizeof(o.k8s_namespace), "default");
	snprintf(o.pod, sizeof(o.pod), "pod-%s", cid);
	snprintf(o.host_veth, sizeof(o.host_veth), "%s", veth);
	return o;
}

static struct proto_attachment att(const char *cid, const char *ifname)
{
	struct proto_attachment a = { 0 };

	snprintf(a.container_id, sizeof(a.container_id), "%s", cid);
	snprintf(a.ifname, sizeof(a.ifname), "%s", ifname);
	return a;
}

/* An ipam over a pool spec; fails the test when the spec or the pool is refused. */
static struct ipam *mk(const char *spec, int64_t cooldown)
{
	struct ipam_range *ranges = NULL;
	char err[256] = "";
	struct ipam *ipam;
	size_t n = 0;

	assert_int_equal(ipam_parse_pool(spec, &ranges, &n, err, sizeof(err)), 0);
	ipam = ipam_new(ranges, n, cooldown, err, sizeof(err));
	free(ranges);
	if (!ipam)
		fail_msg("ipam_new(%s): %s", spec, err);
	return ipam;
}

/* Assign and return the address as a string in out. */
static int assign(struct ipam *ipam, const char *cid, int64_t now, char out[INET_ADDRSTRLEN])
{
	struct ipam_owner o = owner("net", cid, "eth0", "vh0");
	const struct ipam_alloc *a = NULL;
	int r = ipam_assign(ipam, &o, now, &a);

	if (r >= 0) {
		assert_non_null(a);
		inet_ntop(AF_INET, &a->ip, out, INET_ADDRSTRLEN);
	} else {
		out[0] = '\0';
	}
	return r;
}

/* ---- pool parsing ---- */

static void test_pool_cidrs_and_bare(void **state)
{
	struct ipam_range *r = NULL;
	char err[256] = "";
	size_t n = 0;

	assert_int_equal(ipam_parse_pool("10.0.0.0/30,10.0.1.7,10.0.2.0/24@eth1:100", &r, &n, err,
					 sizeof(err)),
			 0);
	assert_int_equal(n, 3);
	assert_ip(r[0].net, "10.0.0.0");
	assert_int_equal(r[0].plen, 30);
	assert_string_equal(r[0].iface, "");
	assert_int_equal(r[0].table, 0);
	assert_ip(r[1].net, "10.0.1.7");
	assert_int_equal(r[1].plen, 32);
	assert_ip(r[2].net, "10.0.2.0");
	assert_int_equal(r[2].plen, 24);
	assert_string_equal(r[2].iface, "eth1");
	assert_int_equal(r[2].table, 100);
	free(r);
}

static void test_pool_iface_without_table(void **state)
{
	struct ipam_range *r = NULL;
	char err[256] = "";
	size_t n = 0;

	assert_int_equal(ipam_parse_pool("198.18.0.5@ens6", &r, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].iface, "ens6");
	assert_int_equal(r[0].table, 0);
	assert_int_equal(r[0].plen, 32);
	free(r);

	/* Largest table that is not reserved. */
	assert_int_equal(ipam_parse_pool("198.18.0.5@ens6:4294967295", &r, &n, err, sizeof(err)), 0);
	assert_int_equal(r[0].table, 4294967295u);
	free(r);
	assert_int_equal(ipam_parse_pool("198.18.0.5@ens6:252", &r, &n, err, sizeof(err)), 0);
	assert_int_equal(r[0].table, 252);
	free(r);
}

static void test_pool_bad(void **state)
{
	static const char *const bad[] = {
		"",
		",",
		"10.0.0.0/33",
		"10.0.0.1/24",	/* host bits set */
		"10.0.0.0/",
		"10.0.0.0/x",
		"10.0.0",
		"300.0.0.1",
		"fd00::1",
		"10.0.0.0/15",	/* larger than a /16 */
		"10.0.0.0/0",
		"0.0.0.0/0",
		"10.0.0.0/16x",
		"10.0.0.1@",
		"10.0.0.1@eth/0",
		"10.0.0.1@this-name-is-too-long",
		"10.0.0.1@eth1:",
		"10.0.0.1@eth1:0",
		"10.0.0.1@eth1:253",
		"10.0.0.1@eth1:254",
		"10.0.0.1@eth1:255",
		"10.0.0.1@eth1:4294967296",
		"10.0.0.1@eth1:12x",
		"10.0.0.1@eth1:-1",
		"10.0.0.1@eth1: 5",
		"10.0.0.1@eth1:+5",
		"10.0.0.1@eth1:-18446744073709551615",
		"10.0.0.1,,10.0.0.2", /* an empty entry is a typo, not nothing */
		"10.0.0.1,",
		",10.0.0.1",
		"@eth1",
		"10.0.0.1,bogus",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ipam_range *r = NULL;
		char err[256] = "";
		size_t n = 0;

		if (ipam_parse_pool(bad[i], &r, &n, err, sizeof(err)) != -EINVAL)
			fail_msg("pool \"%s\" was accepted", bad[i]);
		assert_null(r);
		assert_true(err[0] != '\0');
	}
}

static void test_pool_error_messages(void **state)
{
	struct ipam_range *r = NULL;
	char err[256] = "";
	size_t n = 0;

	assert_int_equal(ipam_parse_pool("10.0.0.1@eth1:254", &r, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad table"));
	assert_int_equal(ipam_parse_pool("10.0.0.0/8", &r, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/16"));
	assert_int_equal(ipam_parse_pool("nope", &r, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nope"));
	assert_int_equal(ipam_parse_pool("10.0.0.1/24", &r, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "10.0.0.0/24"));
	/* /0 once shifted a 32-bit value by 32 (UBSan); it is just too short. */
	assert_int_equal(ipam_parse_pool("10.0.0.0/0", &r, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/16"));
	assert_int_equal(ipam_parse_pool("0.0.0.0/0", &r, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/16"));
}

static void test_pool_max_entries(void **state)
{
	char *spec = malloc(257 * 20);
	struct ipam_range *r = NULL;
	char err[256] = "";
	size_t n = 0, off = 0;

	assert_non_null(spec);
	for (int i = 0; i < 256; i++)
		off += (size_t)sprintf(spec + off, "%s10.1.%d.1", i ? "," : "", i);
	assert_int_equal(ipam_parse_pool(spec, &r, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 256);
	free(r);
	r = NULL;
	sprintf(spec + off, ",10.2.0.1");
	assert_int_equal(ipam_parse_pool(spec, &r, &n, err, sizeof(err)), -EINVAL);
	assert_null(r);
	assert_non_null(strstr(err, "256"));
	free(spec);
}

static void test_new_overlap_rejected(void **state)
{
	struct ipam_range *r = NULL;
	char err[256] = "";
	size_t n = 0;

	assert_int_equal(ipam_parse_pool("10.0.0.0/24,10.0.0.128/25", &r, &n, err, sizeof(err)), 0);
	assert_null(ipam_new(r, n, COOLDOWN_MS, err, sizeof(err)));
	assert_non_null(strstr(err, "overlap"));
	assert_non_null(strstr(err, "10.0.0.128"));
	free(r);

	assert_int_equal(ipam_parse_pool("10.0.0.9,10.0.0.9", &r, &n, err, sizeof(err)), 0);
	assert_null(ipam_new(r, n, COOLDOWN_MS, err, sizeof(err)));
	free(r);
}

static void test_new_size_limit(void **state)
{
	struct ipam_range *r = NULL;
	struct ipam_stats st;
	struct ipam *ipam;
	char err[256] = "";
	size_t n = 0;

	/* Exactly IPAM_MAX_ADDRESSES is fine ... */
	assert_int_equal(ipam_parse_pool("10.0.0.0/16", &r, &n, err, sizeof(err)), 0);
	ipam = ipam_new(r, n, COOLDOWN_MS, err, sizeof(err));
	assert_non_null(ipam);
	ipam_get_stats(ipam, T0, &st);
	assert_int_equal(st.size, IPAM_MAX_ADDRESSES);
	assert_int_equal(st.free, IPAM_MAX_ADDRESSES);
	ipam_free(ipam);
	free(r);

	/* ... one more is not. */
	assert_int_equal(ipam_parse_pool("10.0.0.0/16,10.1.0.0/32", &r, &n, err, sizeof(err)), 0);
	assert_null(ipam_new(r, n, COOLDOWN_MS, err, sizeof(err)));
	assert_non_null(strstr(err, "65537"));
	free(r);
}

/* ---- assignment ---- */

static void test_assign_idempotent(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/30", COOLDOWN_MS);
	struct ipam_owner o = owner("net", "c1", "eth0", "vh1");
	const struct ipam_alloc *a = NULL, *b = NULL;
	uint64_t gen;

	assert_int_equal(ipam_assign(ipam, &o, T0, &a), 0);
	assert_ip(a->ip, "10.0.0.0");
	assert_string_equal(a->owner.att.container_id, "c1");
	assert_int_equal(a->allocated_at_ms, T0);
	assert_non_null(a->range);
	gen = ipam_generation(ipam);
	assert_int_equal(ipam_assign(ipam, &o, T0 + 5, &b), 1);
	assert_ptr_equal(a, b);
	assert_ip(b->ip, "10.0.0.0");
	assert_int_equal(b->allocated_at_ms, T0);
	/* A repeated ADD changes nothing, so nothing needs persisting. */
	assert_int_equal(ipam_generation(ipam), gen);
	ipam_free(ipam);
}

static void test_assign_distinct_and_exhaust(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/30", COOLDOWN_MS);
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], c[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN],
		e[INET_ADDRSTRLEN];
	struct ipam_stats st;

	assert_int_equal(assign(ipam, "c1", T0, a), 0);
	assert_int_equal(assign(ipam, "c2", T0, b), 0);
	assert_int_equal(assign(ipam, "c3", T0, c), 0);
	assert_int_equal(assign(ipam, "c4", T0, d), 0);
	/* Fresh addresses go out in address order. */
	assert_string_equal(a, "10.0.0.0");
	assert_string_equal(b, "10.0.0.1");
	assert_string_equal(c, "10.0.0.2");
	assert_string_equal(d, "10.0.0.3");
	assert_int_equal(assign(ipam, "c5", T0, e), -ENOSPC);
	/* The existing owners still get theirs back when full. */
	assert_int_equal(assign(ipam, "c3", T0, e), 1);
	assert_string_equal(e, "10.0.0.2");
	ipam_get_stats(ipam, T0, &st);
	assert_int_equal(st.size, 4);
	assert_int_equal(st.assigned, 4);
	assert_int_equal(st.free, 0);
	assert_int_equal(st.cooling, 0);
	ipam_free(ipam);
}

static void test_same_key_parts_differ(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/29", COOLDOWN_MS);
	struct ipam_owner o1 = owner("net", "c1", "eth0", "vh1");
	struct ipam_owner o2 = owner("net", "c1", "eth1", "vh2");  /* other ifname */
	struct ipam_owner o3 = owner("net2", "c1", "eth0", "vh3"); /* other network */
	const struct ipam_alloc *a1, *a2, *a3;

	assert_int_equal(ipam_assign(ipam, &o1, T0, &a1), 0);
	assert_int_equal(ipam_assign(ipam, &o2, T0, &a2), 0);
	assert_int_equal(ipam_assign(ipam, &o3, T0, &a3), 0);
	assert_int_not_equal(a1->ip.s_addr, a2->ip.s_addr);
	assert_int_not_equal(a1->ip.s_addr, a3->ip.s_addr);
	assert_int_not_equal(a2->ip.s_addr, a3->ip.s_addr);
	ipam_free(ipam);
}

static void test_assign_eexist_other_veth(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/30", COOLDOWN_MS);
	struct ipam_owner o = owner("net", "c1", "eth0", "vh1");
	const struct ipam_alloc *a = NULL, *b = NULL;

	assert_int_equal(ipam_assign(ipam, &o, T0, &a), 0);
	snprintf(o.host_veth, sizeof(o.host_veth), "vh2");
	assert_int_equal(ipam_assign(ipam, &o, T0, &b), -EEXIST);
	/* The original assignment is untouched. */
	assert_string_equal(ipam_lookup(ipam, "net", &o.att)->owner.host_veth, "vh1");
	ipam_free(ipam);
}

static void test_release_cooldown(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/31", COOLDOWN_MS);
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], c[INET_ADDRSTRLEN];
	struct proto_attachment k1 = att("c1", "eth0");
	struct ipam_stats st;

	assert_int_equal(assign(ipam, "c1", T0, a), 0);
	assert_int_equal(assign(ipam, "c2", T0, b), 0);
	assert_string_equal(a, "10.0.0.0");
	assert_int_equal(ipam_release(ipam, "net", &k1, T0 + 1000), 0);
	assert_null(ipam_lookup(ipam, "net", &k1));
	assert_int_equal(ipam_release(ipam, "net", &k1, T0 + 1000), -ENOENT);

	ipam_get_stats(ipam, T0 + 1000, &st);
	assert_int_equal(st.assigned, 1);
	assert_int_equal(st.cooling, 1);
	assert_int_equal(st.free, 0);

	/* One millisecond before the cooldown ends the address is still held back. */
	assert_int_equal(assign(ipam, "c3", T0 + 1000 + COOLDOWN_MS - 1, c), -ENOSPC);
	ipam_get_stats(ipam, T0 + 1000 + COOLDOWN_MS - 1, &st);
	assert_int_equal(st.cooling, 1);
	ipam_get_stats(ipam, T0 + 1000 + COOLDOWN_MS, &st);
	assert_int_equal(st.cooling, 0);
	assert_int_equal(st.free, 1);
	assert_int_equal(assign(ipam, "c3", T0 + 1000 + COOLDOWN_MS, c), 0);
	assert_string_equal(c, "10.0.0.0");
	ipam_free(ipam);
}

static void test_never_used_before_released(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/30", COOLDOWN_MS);
	struct proto_attachment k1 = att("c1", "eth0");
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	assert_int_equal(assign(ipam, "c1", T0, a), 0);
	assert_string_equal(a, "10.0.0.0");
	assert_int_equal(ipam_release(ipam, "net", &k1, T0 + 1), 0);
	/* Long after the cooldown, untouched addresses still come first. */
	assert_int_equal(assign(ipam, "c2", T0 + 10 * COOLDOWN_MS, b), 0);
	assert_string_equal(b, "10.0.0.1");
	ipam_free(ipam);
}

static void test_least_recently_released_first(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/30", COOLDOWN_MS);
	struct proto_attachment k;
	char s[INET_ADDRSTRLEN];
	const char *cids[] = { "c0", "c1", "c2", "c3" };
	int64_t later = T0 + 100 * COOLDOWN_MS;

	for (int i = 0; i < 4; i++)
		assert_int_equal(assign(ipam, cids[i], T0, s), 0);
	/* Release in the order .2, .0, .3, .1 at increasing times. */
	k = att("c2", "eth0");
	assert_int_equal(ipam_release(ipam, "net", &k, T0 + 10), 0);
	k = att("c0", "eth0");
	assert_int_equal(ipam_release(ipam, "net", &k, T0 + 20), 0);
	k = att("c3", "eth0");
	assert_int_equal(ipam_release(ipam, "net", &k, T0 + 30), 0);
	k = att("c1", "eth0");
	assert_int_equal(ipam_release(ipam, "net", &k, T0 + 40), 0);

	assert_int_equal(assign(ipam, "n1", later, s), 0);
	assert_string_equal(s, "10.0.0.2");
	assert_int_equal(assign(ipam, "n2", later, s), 0);
	assert_string_equal(s, "10.0.0.0");
	assert_int_equal(assign(ipam, "n3", later, s), 0);
	assert_string_equal(s, "10.0.0.3");
	assert_int_equal(assign(ipam, "n4", later, s), 0);
	assert_string_equal(s, "10.0.0.1");
	ipam_free(ipam);
}

static void test_lookup_ip_release_ip(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/30,10.0.5.9", COOLDOWN_MS);
	const struct ipam_alloc *a;
	char s[INET_ADDRSTRLEN];
	struct proto_attachment k = att("c1", "eth0");

	assert_int_equal(assign(ipam, "c1", T0, s), 0);
	a = ipam_lookup_ip(ipam, ip4("10.0.0.0"));
	assert_non_null(a);
	assert_string_equal(a->owner.att.container_id, "c1");
	assert_ptr_equal(ipam_lookup(ipam, "net", &k), a);
	assert_null(ipam_lookup_ip(ipam, ip4("10.0.0.1")));  /* in pool, free */
	assert_null(ipam_lookup_ip(ipam, ip4("192.0.2.1"))); /* not in pool */
	assert_null(ipam_lookup(ipam, "other", &k));

	assert_int_equal(ipam_release_ip(ipam, ip4("10.0.0.1"), T0 + 1), -ENOENT);
	assert_int_equal(ipam_release_ip(ipam, ip4("192.0.2.1"), T0 + 1), -ENOENT);
	assert_int_equal(ipam_release_ip(ipam, ip4("10.0.0.0"), T0 + 1), 0);
	assert_null(ipam_lookup_ip(ipam, ip4("10.0.0.0")));
	assert_null(ipam_lookup(ipam, "net", &k));
	assert_int_equal(ipam_release_ip(ipam, ip4("10.0.0.0"), T0 + 2), -ENOENT);
	ipam_free(ipam);
}

static void test_range_carried(void **state)
{
	struct ipam *ipam = mk("10.0.0.7@eth1:100", COOLDOWN_MS);
	char s[INET_ADDRSTRLEN];
	const struct ipam_alloc *a;

	assert_int_equal(assign(ipam, "c1", T0, s), 0);
	a = ipam_lookup_ip(ipam, ip4("10.0.0.7"));
	assert_non_null(a);
	assert_non_null(a->range);
	assert_string_equal(a->range->iface, "eth1");
	assert_int_equal(a->range->table, 100);
	ipam_free(ipam);
}

static void test_gc(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/29", COOLDOWN_MS);
	struct ipam_owner o;
	const struct ipam_alloc *a;
	struct proto_attachment valid[2];
	struct proto_attachment k;
	struct ipam_stats st;
	uint64_t gen;

	o = owner("net", "keep", "eth0", "v1");
	assert_int_equal(ipam_assign(ipam, &o, T0, &a), 0);
	o = owner("net", "drop1", "eth0", "v2");
	assert_int_equal(ipam_assign(ipam, &o, T0, &a), 0);
	o = owner("net", "keep", "eth1", "v3"); /* same container, other ifname: not valid */
	assert_int_equal(ipam_assign(ipam, &o, T0, &a), 0);
	o = owner("other", "drop2", "eth0", "v4"); /* other network: untouched */
	assert_int_equal(ipam_assign(ipam, &o, T0, &a), 0);
	o = owner("net", "also", "eth0", "v5");
	assert_int_equal(ipam_assign(ipam, &o, T0, &a), 0);

	valid[0] = att("keep", "eth0");
	valid[1] = att("also", "eth0");
	gen = ipam_generation(ipam);
	assert_int_equal(ipam_gc(ipam, "net", valid, 2, T0 + 1), 2);
	assert_true(ipam_generation(ipam) > gen);
	assert_non_null(ipam_lookup(ipam, "net", &valid[0]));
	assert_non_null(ipam_lookup(ipam, "net", &valid[1]));
	k = att("drop1", "eth0");
	assert_null(ipam_lookup(ipam, "net", &k));
	k = att("keep", "eth1");
	assert_null(ipam_lookup(ipam, "net", &k));
	k = att("drop2", "eth0");
	assert_non_null(ipam_lookup(ipam, "other", &k));
	ipam_get_stats(ipam, T0 + 1, &st);
	assert_int_equal(st.assigned, 3);
	assert_int_equal(st.cooling, 2);
	assert_int_equal(st.free, 3);

	/* A second pass finds nothing more; an empty list drops the rest of net. */
	assert_int_equal(ipam_gc(ipam, "net", valid, 2, T0 + 2), 0);
	assert_int_equal(ipam_gc(ipam, "net", NULL, 0, T0 + 3), 2);
	assert_int_equal(ipam_gc(ipam, "nonexistent", NULL, 0, T0 + 3), 0);
	k = att("drop2", "eth0");
	assert_non_null(ipam_lookup(ipam, "other", &k));
	ipam_free(ipam);
}

static void test_stats_and_generation(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/28", COOLDOWN_MS);
	struct proto_attachment k = att("c1", "eth0");
	char s[INET_ADDRSTRLEN];
	struct ipam_stats st;
	uint64_t g0 = ipam_generation(ipam);

	ipam_get_stats(ipam, T0, &st);
	assert_int_equal(st.size, 16);
	assert_int_equal(st.free, 16);
	assert_int_equal(st.assigned, 0);
	assert_int_equal(st.cooling, 0);
	assert_int_equal(assign(ipam, "c1", T0, s), 0);
	assert_int_equal(assign(ipam, "c2", T0, s), 0);
	assert_true(ipam_generation(ipam) == g0 + 2);
	assert_int_equal(ipam_release(ipam, "net", &k, T0 + 5), 0);
	assert_true(ipam_generation(ipam) == g0 + 3);
	ipam_get_stats(ipam, T0 + 5, &st);
	assert_int_equal(st.size, 16);
	assert_int_equal(st.free, 14);
	assert_int_equal(st.assigned, 1);
	assert_int_equal(st.cooling, 1);
	ipam_free(ipam);
}

static int count_cb(const struct ipam_alloc *a, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static int stop_cb(const struct ipam_alloc *a, void *ctx)
{
	(*(int *)ctx)++;
	return 7;
}

/* Released out-of-pool slots are reused: adopt/release cycles never run out of room. */
static void test_adopt_out_of_pool_cycles(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/31", COOLDOWN_MS);

	for (int i = 0; i < 10; i++) {
		char cid[16], ip[32];
		struct ipam_owner o;

		snprintf(cid, sizeof(cid), "c%d", i);
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		o = owner("net", cid, "eth0", "v1");
		assert_int_equal(ipam_adopt(ipam, &o, ip4(ip), T0), 0);
		assert_int_equal(ipam_release_ip(ipam, ip4(ip), T0 + 1), 0);
	}
	ipam_free(ipam);
}

static void test_adopt(void **state)
{
	struct ipam *ipam = mk("10.0.0.0/30", COOLDOWN_MS);
	struct ipam_owner o = owner("net", "c1", "eth0", "v1");
	struct ipam_owner o2 = owner("net", "c2", "eth0", "v2");
	struct ipam_owner o3 = owner("net", "c3", "eth0", "v3");
	const struct ipam_alloc *a;
	char s[INET_ADDRSTRLEN];
	struct ipam_stats st;
	int count = 0;

	/* An address found in use on the host: it is recorded and not handed out again. */
	assert_int_equal(ipam_adopt(ipam, &o, ip4("10.0.0.0"), T0), 0);
	a = ipam_lookup_ip(ipam, ip4("10.0.0.0"));
	assert_non_null(a);
	assert_string_equal(a->owner.att.container_id, "c1");
	assert_int_equal(a->allocated_at_ms, T0);
	assert_non_null(a->range);
	assert_int_equal(assign(ipam, "c9", T0, s), 0);
	assert_string_equal(s, "10.0.0.1");
	/* Already taken address, or an owner that already holds one. */
	assert_int_equal(ipam_adopt(ipam, &o2, ip4("10.0.0.0"), T0), -EEXIST);
	assert_int_equal(ipam_adopt(ipam, &o, ip4("10.0.0.2"), T0), -EEXIST);
	/* Outside the pool: kept, with no range, and never offered. */
	assert_int_equal(ipam_adopt(ipam, &o3, ip4("192.0.2.77"), T0), 0);
	a = ipam_lookup_ip(ipam, ip4("192.0.2.77"));
	assert_non_null(a);
	assert_null(a->range);
	ipam_get_stats(ipam, T0, &st);
	assert_int_equal(st.size, 4);
	/* The out-of-pool allocation is listed but not part of the pool's arithmetic. */
	assert_int_equal(st.assigned, 2);
	assert_int_equal(st.free, 2);
	assert_int_equal(ipam_foreach(ipam, count_cb, &count), 0);
	assert_int_equal(count, 3);
	count = 0;
	assert_int_equal(ipam_foreach(ipam, stop_cb, &count), 7);
	assert_int_equal(count, 1);
	/* The out-of-pool address can be released like any other. */
	assert_int_equal(ipam_release_ip(ipam, ip4("192.0.2.77"), T0 + 1), 0);
	assert_null(ipam_lookup_ip(ipam, ip4("192.0.2.77")));
	ipam_get_stats(ipam, T0 + 1, &st);
	assert_int_equal(st.assigned, 2);
	assert_int_equal(st.free, 2);
	ipam_free(ipam);
}

static void test_free_null(void **state)
{
	ipam_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_cidrs_and_bare),
		cmocka_unit_test(test_pool_iface_without_table),
		cmocka_unit_test(test_pool_bad),
		cmocka_unit_test(test_pool_error_messages),
		cmocka_unit_test(test_pool_max_entries),
		cmocka_unit_test(test_new_overlap_rejected),
		cmocka_unit_test(test_new_size_limit),
		cmocka_unit_test(test_assign_idempotent),
		cmocka_unit_test(test_assign_distinct_and_exhaust),
		cmocka_unit_test(test_same_key_parts_differ),
		cmocka_unit_test(test_assign_eexist_other_veth),
		cmocka_unit_test(test_release_cooldown),
		cmocka_unit_test(test_never_used_before_released),
		cmocka_unit_test(test_least_recently_released_first),
		cmocka_unit_test(test_lookup_ip_release_ip),
		cmocka_unit_test(test_range_carried),
		cmocka_unit_test(test_gc),
		cmocka_unit_test(test_stats_and_generation),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_adopt_out_of_pool_cycles),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
