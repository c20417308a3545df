// SPDX-License-Identifier: Apache-2.0
/*
 * Bytecode builders for the nftables backend. Each one emits what
 * `nft --debug=netlink add rule ...` shows for the statement in its comment
 * (nftables 1.0.6), so that nft decompiles berth's rules back to that text.
 * Where nft strips a dependency when listing (the `meta l4proto` before
 * `th dport`), we emit the dependency too, as nft does.
 */
#include <arpa/inet.h>
#include <stdio.h> /* before libnftnl: its headers use FILE */
#include <errno.h>
#include <libnftnl/expr.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

#include "nft_internal.h"

/* nft's register choices: reg 1 (128-bit), then 32-bit registers for concatenations. */
#define REG1 NFT_REG_1
#define REG32_1 NFT_REG32_01
#define REG32_2 NFT_REG32_02

/* Expression type ids nft writes into a typeof set's userdata (nftables enum expr_types). */
#define NFT_EXPR_TYPE_VERDICT 1
#define NFT_EXPR_TYPE_NUMGEN 23

struct nftnl_rule *nr_new(const char *table, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	if (nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table) < 0 ||
	    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain) < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

static struct nftnl_expr *add(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (e)
		nftnl_rule_add_expr(r, e);
	return e;
}

static int payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = add(r, "payload");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	return 0;
}

static int cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = add(r, "cmp");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	return 0;
}

static int bitwise(struct nftnl_rule *r, uint32_t mask, uint32_t xor)
{
	struct nftnl_expr *e = add(r, "bitwise");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, sizeof(xor));
	return 0;
}

static int meta_load(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = add(r, "meta");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	return 0;
}

/* NFT_REG_VERDICT is register 0: "no destination" needs its own value */
#define NO_DREG UINT32_MAX

/* lookup in set; dreg: NFT_REG_VERDICT (vmap), a data register (map), or NO_DREG (set) */
static int lookup_into(struct nftnl_rule *r, const char *set, uint32_t dreg)
{
	struct nftnl_expr *e = add(r, "lookup");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, REG1);
	if (dreg != NO_DREG)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	return 0;
}

static int lookup(struct nftnl_rule *r, const char *set, bool verdict)
{
	return lookup_into(r, set, verdict ? NFT_REG_VERDICT : NO_DREG);
}

/*
 * nft matches a prefix on whole bytes when it is byte-aligned (payload of
 * len/8 bytes, no bitwise) and otherwise loads the 4 bytes, masks and compares.
 */
int nr_match_cidr(struct nftnl_rule *r, enum nft_addr_field f, struct ipv4_cidr c, bool neq)
{
	uint32_t op = neq ? NFT_CMP_NEQ : NFT_CMP_EQ;
	uint32_t mask = c.len ? htonl(~0u << (32 - c.len)) : 0;
	uint32_t addr = c.addr.s_addr & mask;

	if (c.len % 8 == 0 && c.len) {
		if (payload(r, NFT_PAYLOAD_NETWORK_HEADER, f, c.len / 8, REG1))
			return -ENOMEM;
		return cmp(r, op, &addr, c.len / 8);
	}
	if (payload(r, NFT_PAYLOAD_NETWORK_HEADER, f, 4, REG1) || bitwise(r, mask, 0))
		return -ENOMEM;
	return cmp(r, op, &addr, sizeof(addr));
}

int nr_match_l4proto(struct nftnl_rule *r, uint8_t proto)
{
	if (meta_load(r, NFT_META_L4PROTO, REG1))
		return -ENOMEM;
	return cmp(r, NFT_CMP_EQ, &proto, sizeof(proto));
}

int nr_match_dport(struct nftnl_rule *r, uint8_t proto, uint16_t port)
{
	uint16_t p = htons(port);

	if (nr_match_l4proto(r, proto) ||
	    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, sizeof(p), REG1))
		return -ENOMEM;
	return cmp(r, NFT_CMP_EQ, &p, sizeof(p));
}

int nr_match_fib_local(struct nftnl_rule *r, bool daddr)
{
	struct nftnl_expr *e = add(r, "fib");
	uint32_t local = 2; /* RTN_LOCAL */

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, daddr ? NFTA_FIB_F_DADDR : NFTA_FIB_F_SADDR);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, REG1);
	return cmp(r, NFT_CMP_EQ, &local, sizeof(local));
}

int nr_match_not_loopback(struct nftnl_rule *r)
{
	struct ipv4_cidr lo = { .addr.s_addr = htonl(0x7f000000), .len = 8 };

	return nr_match_cidr(r, NFT_DADDR, lo, true);
}

int nr_match_addr_in_set(struct nftnl_rule *r, enum nft_addr_field f, const char *set)
{
	if (payload(r, NFT_PAYLOAD_NETWORK_HEADER, f, 4, REG1))
		return -ENOMEM;
	return lookup(r, set, false);
}

int nr_match_mark_clear(struct nftnl_rule *r, uint32_t mark)
{
	uint32_t zero = 0;

	if (meta_load(r, NFT_META_MARK, REG1) || bitwise(r, mark, 0))
		return -ENOMEM;
	return cmp(r, NFT_CMP_EQ, &zero, sizeof(zero));
}

static int mark_set(struct nftnl_rule *r, uint32_t mask, uint32_t xor)
{
	struct nftnl_expr *e;

	if (meta_load(r, NFT_META_MARK, REG1) || bitwise(r, mask, xor))
		return -ENOMEM;
	e = add(r, "meta");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, REG1);
	return 0;
}

/* mark | m is encoded as (mark & ~m) ^ m; mark ^ m as (mark & ~0) ^ m. */
int nr_mark_or(struct nftnl_rule *r, uint32_t mark)
{
	return mark_set(r, ~mark, mark);
}

int nr_mark_xor(struct nftnl_rule *r, uint32_t mark)
{
	return mark_set(r, ~0u, mark);
}

int nr_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = add(r, "immediate");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain && nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain) < 0)
		return -ENOMEM;
	return 0;
}

int nr_vmap_addr_proto_port(struct nftnl_rule *r, const char *map)
{
	if (payload(r, NFT_PAYLOAD_NETWORK_HEADER, NFT_DADDR, 4, REG1) ||
	    meta_load(r, NFT_META_L4PROTO, REG32_1) ||
	    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, REG32_2))
		return -ENOMEM;
	return lookup(r, map, true);
}

int nr_vmap_proto_port(struct nftnl_rule *r, const char *map)
{
	if (meta_load(r, NFT_META_L4PROTO, REG1) ||
	    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, REG32_1))
		return -ENOMEM;
	return lookup(r, map, true);
}

int nr_vmap_numgen(struct nftnl_rule *r, uint32_t mod, const char *map)
{
	struct nftnl_expr *e = add(r, "numgen");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, mod);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, 0);
	return lookup(r, map, true);
}

int nr_update_saddr(struct nftnl_rule *r, const char *set)
{
	struct nftnl_expr *e;

	if (payload(r, NFT_PAYLOAD_NETWORK_HEADER, NFT_SADDR, 4, REG1))
		return -ENOMEM;
	e = add(r, "dynset");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
	return 0;
}

int nr_dnat(struct nftnl_rule *r, uint8_t proto, struct in_addr a, uint16_t port)
{
	struct nftnl_expr *e;
	uint16_t p = htons(port);

	if (nr_match_l4proto(r, proto))
		return -ENOMEM;
	e = add(r, "immediate");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &a.s_addr, sizeof(a.s_addr));
	e = add(r, "immediate");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_2);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &p, sizeof(p));
	e = add(r, "nat");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	return 0;
}

/* nft: the numgen result is a host-order integer; an interval map's keys are big endian */
static int byteorder_hton32(struct nftnl_rule *r)
{
	struct nftnl_expr *e = add(r, "byteorder");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, sizeof(uint32_t));
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, sizeof(uint32_t));
	return 0;
}

int nr_dnat_numgen_map(struct nftnl_rule *r, uint8_t proto, uint32_t mod, uint32_t offset,
		       const char *map)
{
	struct nftnl_expr *e;

	if (nr_match_l4proto(r, proto))
		return -ENOMEM;
	e = add(r, "numgen");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, mod);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, offset);
	/* the map's data (address . port) lands in reg 1's first two 32-bit words */
	if (byteorder_hton32(r) || lookup_into(r, map, REG1))
		return -ENOMEM;
	e = add(r, "nat");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, REG1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, REG32_1);
	return 0;
}

int nr_match_hairpin(struct nftnl_rule *r, const char *set)
{
	struct nftnl_expr *e = add(r, "ct");
	uint32_t zero = 0;

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, REG1);
	if (bitwise(r, IPS_DST_NAT, 0) || cmp(r, NFT_CMP_NEQ, &zero, sizeof(zero)) ||
	    payload(r, NFT_PAYLOAD_NETWORK_HEADER, NFT_SADDR, 4, REG1) ||
	    payload(r, NFT_PAYLOAD_NETWORK_HEADER, NFT_DADDR, 4, REG32_1))
		return -ENOMEM;
	return lookup(r, set, false);
}

int nr_masquerade(struct nftnl_rule *r, uint32_t flags)
{
	struct nftnl_expr *e = add(r, "masq");

	if (!e)
		return -ENOMEM;
	if (flags)
		nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, flags);
	return 0;
}

int nr_snat(struct nftnl_rule *r, struct in_addr a, uint32_t flags)
{
	struct nftnl_expr *e = add(r, "immediate");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &a.s_addr, sizeof(a.s_addr));
	e = add(r, "nat");
	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	if (flags)
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, flags);
	return 0;
}

static int reject(struct nftnl_rule *r, uint32_t type, uint8_t code)
{
	struct nftnl_expr *e = add(r, "reject");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
	return 0;
}

int nr_reject_icmp(struct nftnl_rule *r)
{
	return reject(r, NFT_REJECT_ICMP_UNREACH, 3 /* ICMP_PORT_UNREACH */);
}

int nr_reject_tcp_reset(struct nftnl_rule *r)
{
	if (nr_match_l4proto(r, IPPROTO_TCP))
		return -ENOMEM;
	return reject(r, NFT_REJECT_TCP_RST, 0);
}

int nr_comment(struct nftnl_rule *r, const char *text)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_NAME_MAX + 8);
	int ret = -ENOMEM;

	if (!u)
		return -ENOMEM;
	if (nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, text) &&
	    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u),
				nftnl_udata_buf_len(u)) == 0)
		ret = 0;
	nfree_udata_buf_free(u);
	return ret;
}

/* ---- sets ---- */

/* nft's datatype ids: ipv4_addr 7, inet_proto 12, inet_service 13; a concatenation packs them 6 bits each. */
#define DT_IPV4 7u
#define DT_PROTO 12u
#define DT_SERVICE 13u
#define DT_INTEGER 4u
#define DT_VERDICT 0xffffff00u
#define CONCAT(a, b) (((a) << 6) | (b))

/* nft's protocol descriptions (enum proto_desc_id) and header fields, for typeof userdata */
#define NFT_EXPR_TYPE_PAYLOAD 7
#define NFT_EXPR_TYPE_CONCAT 13
#define PROTO_DESC_UDP 6
#define PROTO_DESC_TCP 8
#define PROTO_DESC_SCTP 10
#define PROTO_DESC_IP 12
#define IPHDR_SADDR 11
#define IPHDR_DADDR 12
#define THDR_DPORT 2

/* One payload field of a typeof concatenation: element idx is { expr payload, { desc, field } }. */
static int typeof_payload(struct nftnl_udata_buf *u, int idx, uint32_t desc, uint32_t field)
{
	struct nftnl_udata *el = nftnl_udata_nest_start(u, idx), *d;

	if (!el || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, NFT_EXPR_TYPE_PAYLOAD))
		return -ENOMEM;
	d = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	if (!d || !nftnl_udata_put_u32(u, 0, desc) || !nftnl_udata_put_u32(u, 1, field))
		return -ENOMEM;
	nftnl_udata_nest_end(u, d);
	nftnl_udata_nest_end(u, el);
	return 0;
}

/* typeof a . b where both are payload fields (type: NFTNL_UDATA_SET_KEY_TYPEOF or _DATA_TYPEOF) */
static int typeof_concat2(struct nftnl_udata_buf *u, int type, uint32_t desc0, uint32_t field0,
			  uint32_t desc1, uint32_t field1)
{
	struct nftnl_udata *t = nftnl_udata_nest_start(u, type), *d;

	if (!t || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, NFT_EXPR_TYPE_CONCAT))
		return -ENOMEM;
	d = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	if (!d || typeof_payload(u, 0, desc0, field0) || typeof_payload(u, 1, desc1, field1))
		return -ENOMEM;
	nftnl_udata_nest_end(u, d);
	nftnl_udata_nest_end(u, t);
	return 0;
}

/* typeof numgen random mod <mod> */
static int typeof_numgen(struct nftnl_udata_buf *u, uint32_t mod)
{
	struct nftnl_udata *key = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_KEY_TYPEOF), *ng;

	if (!key || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, NFT_EXPR_TYPE_NUMGEN))
		return -ENOMEM;
	ng = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	if (!ng || !nftnl_udata_put_u32(u, 0, NFT_NG_RANDOM) || !nftnl_udata_put_u32(u, 1, mod) ||
	    !nftnl_udata_put_u32(u, 2, 0))
		return -ENOMEM;
	nftnl_udata_nest_end(u, ng);
	nftnl_udata_nest_end(u, key);
	return 0;
}

static uint32_t proto_desc(uint8_t ipproto)
{
	return ipproto == IPPROTO_UDP ? PROTO_DESC_UDP : ipproto == IPPROTO_SCTP ? PROTO_DESC_SCTP
										: PROTO_DESC_TCP;
}

/* Userdata nft 1.0.6 writes for each kind of set (checked against nft's own). */
static int set_udata(struct nftnl_udata_buf *u, enum nft_set_kind kind, uint32_t arg)
{
	struct nftnl_udata *key, *data, *ng;

	switch (kind) {
	case NFT_MAP_ENDPOINTS:
		/* typeof numgen random mod M : ip daddr . <proto> dport; flags interval */
		if (!nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 1 /* host */) ||
		    !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, 0) ||
		    typeof_numgen(u, NFT_EP_SLOTS) ||
		    typeof_concat2(u, NFTNL_UDATA_SET_DATA_TYPEOF, PROTO_DESC_IP, IPHDR_DADDR,
				   proto_desc((uint8_t)arg), THDR_DPORT))
			return -ENOMEM;
		return nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0) ? 0 : -ENOMEM;
	case NFT_SET_ADDR_PAIR:
		/* typeof ip saddr . ip daddr */
		if (!nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 0))
			return -ENOMEM;
		return typeof_concat2(u, NFTNL_UDATA_SET_KEY_TYPEOF, PROTO_DESC_IP, IPHDR_SADDR,
				      PROTO_DESC_IP, IPHDR_DADDR);
	case NFT_SET_ADDR:
	case NFT_SET_ADDR_TIMEOUT:
		return nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 2 /* big endian */) ? 0 : -ENOMEM;
	case NFT_MAP_ADDR_PROTO_PORT:
	case NFT_MAP_PROTO_PORT:
		/* a concatenation has no single byte order; the verdict data "typeof" is written as nft does */
		if (!nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 0) ||
		    !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, 0))
			return -ENOMEM;
		key = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_KEY_TYPEOF);
		if (!key || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, 13) ||
		    !nftnl_udata_put(u, NFTNL_UDATA_SET_TYPEOF_DATA, 0, NULL))
			return -ENOMEM;
		nftnl_udata_nest_end(u, key);
		return nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0) ? 0 : -ENOMEM;
	case NFT_MAP_NUMGEN:
		if (!nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 1 /* host */) ||
		    !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, 0))
			return -ENOMEM;
		key = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_KEY_TYPEOF);
		if (!key || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, NFT_EXPR_TYPE_NUMGEN))
			return -ENOMEM;
		ng = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
		if (!ng || !nftnl_udata_put_u32(u, 0, NFT_NG_RANDOM) || !nftnl_udata_put_u32(u, 1, arg) ||
		    !nftnl_udata_put_u32(u, 2, 0))
			return -ENOMEM;
		nftnl_udata_nest_end(u, ng);
		nftnl_udata_nest_end(u, key);
		data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_DATA_TYPEOF);
		if (!data || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, NFT_EXPR_TYPE_VERDICT) ||
		    !nftnl_udata_put(u, NFTNL_UDATA_SET_TYPEOF_DATA, 0, NULL))
			return -ENOMEM;
		nftnl_udata_nest_end(u, data);
		return nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0) ? 0 : -ENOMEM;
	}
	return -EINVAL;
}

struct nftnl_set *ns_new(const char *table, const char *name, enum nft_set_kind kind,
			 uint32_t arg, const char *comment)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_NAME_MAX + 128);
	uint32_t flags = 0;

	if (!s || !u)
		goto out_fail;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	if (nftnl_set_set_str(s, NFTNL_SET_TABLE, table) < 0 ||
	    nftnl_set_set_str(s, NFTNL_SET_NAME, name) < 0)
		goto out_fail;
	switch (kind) {
	case NFT_SET_ADDR:
	case NFT_SET_ADDR_TIMEOUT:
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, DT_IPV4);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 4);
		if (kind == NFT_SET_ADDR_TIMEOUT) {
			flags = NFT_SET_TIMEOUT | NFT_SET_EVAL;
			nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, (uint64_t)arg * 1000);
			/* nft gives dynamic sets this size when none is declared */
			nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, 65535);
		}
		break;
	case NFT_MAP_ADDR_PROTO_PORT:
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, CONCAT(CONCAT(DT_IPV4, DT_PROTO), DT_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 12);
		flags = NFT_SET_MAP;
		break;
	case NFT_MAP_PROTO_PORT:
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, CONCAT(DT_PROTO, DT_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 8);
		flags = NFT_SET_MAP;
		break;
	case NFT_MAP_NUMGEN:
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, DT_INTEGER);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 4);
		flags = NFT_SET_MAP;
		break;
	case NFT_MAP_ENDPOINTS:
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, DT_INTEGER);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 4);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, CONCAT(DT_IPV4, DT_SERVICE));
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 8);
		flags = NFT_SET_MAP | NFT_SET_INTERVAL;
		break;
	case NFT_SET_ADDR_PAIR:
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, CONCAT(DT_IPV4, DT_IPV4));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 8);
		break;
	}
	if ((flags & NFT_SET_MAP) && kind != NFT_MAP_ENDPOINTS) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, DT_VERDICT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 16);
	}
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
	if (set_udata(u, kind, arg))
		goto out_fail;
	if (comment && !nftnl_udata_put_strz(u, NFTNL_UDATA_SET_COMMENT, comment))
		goto out_fail;
	if (nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u),
			       nftnl_udata_buf_len(u)) < 0)
		goto out_fail;
	nfree_udata_buf_free(u);
	return s;
out_fail:
	nfree_udata_buf_free(u);
	nfree_set_free(s);
	return NULL;
}

size_t nk_addr_proto_port(uint8_t key[12], struct in_addr a, uint8_t proto, uint16_t port)
{
	uint16_t p = htons(port);

	memset(key, 0, 12);
	memcpy(key, &a.s_addr, 4);
	key[4] = proto;
	memcpy(key + 8, &p, 2);
	return 12;
}

size_t nk_proto_port(uint8_t key[8], uint8_t proto, uint16_t port)
{
	uint16_t p = htons(port);

	memset(key, 0, 8);
	key[0] = proto;
	memcpy(key + 4, &p, 2);
	return 8;
}

size_t nk_addr(uint8_t key[4], struct in_addr a)
{
	memcpy(key, &a.s_addr, 4);
	return 4;
}

size_t nk_be32(uint8_t key[4], uint32_t v)
{
	uint32_t be = htonl(v);

	memcpy(key, &be, 4);
	return 4;
}

size_t nd_addr_port(uint8_t data[8], struct in_addr a, uint16_t port)
{
	uint16_t p = htons(port);

	memset(data, 0, 8);
	memcpy(data, &a.s_addr, 4);
	memcpy(data + 4, &p, 2);
	return 8;
}

size_t nk_addr_pair(uint8_t key[8], struct in_addr a)
{
	memcpy(key, &a.s_addr, 4);
	memcpy(key + 4, &a.s_addr, 4);
	return 8;
}

size_t nk_u32(uint8_t key[4], uint32_t v)
{
	memcpy(key, &v, 4); /* numgen's result is in host order */
	return 4;
}

size_t nu_comment(uint8_t *buf, size_t size, const char *text)
{
	size_t n = strlen(text) + 1;

	if (n > 255 || n + 2 > size)
		return 0;
	buf[0] = NFTNL_UDATA_SET_ELEM_COMMENT;
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, text, n);
	return n + 2;
}

/* ---- names ---- */

/*
 * kube-proxy's hashAndTruncate: base32(sha256(base))[:8] + "-" + base, cut
 * to fit. The hash keeps names unique when cut and tells apart chains whose
 * names differ in one digit.
 */
void nft_hashed_name(char out[NFT_NAME_MAX], const char *prefix, const char *base)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint8_t d[SHA256_DIGEST_SIZE];
	struct sha256_ctx c;
	char h[9];
	uint64_t bits = 0;
	/* the chain name prefix (<= 16) plus the hashed base must stay under 256 */
	const size_t max_base = NFT_NAME_MAX - 1 - 16;
	size_t n;

	sha256_init(&c);
	sha256_update(&c, strlen(base), (const uint8_t *)base);
	sha256_digest(&c, sizeof(d), d);
	/* 8 base32 characters are the first 40 bits */
	for (int i = 0; i < 5; i++)
		bits = bits << 8 | d[i];
	for (int i = 0; i < 8; i++)
		h[i] = b32[(bits >> (35 - 5 * i)) & 31];
	h[8] = '\0';
	n = (size_t)snprintf(out, NFT_NAME_MAX, "%s%s-%s", prefix, h, base);
	if (n - strlen(prefix) > max_base)
		memcpy(out + strlen(prefix) + max_base - 3, "...", 4);
}

uint8_t nft_ipproto(enum l4_proto p)
{
	switch (p) {
	case L4_TCP:
		return IPPROTO_TCP;
	case L4_UDP:
		return IPPROTO_UDP;
	case L4_SCTP:
		return IPPROTO_SCTP;
	}
	return 0;
}

const char *nft_proto_name(enum l4_proto p)
{
	switch (p) {
	case L4_TCP:
		return "tcp";
	case L4_UDP:
		return "udp";
	case L4_SCTP:
		return "sctp";
	}
	return "?";
}
