/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the nftables backend: rule and set builders that emit exactly the
 * bytecode and userdata nft 1.0.x emits for the same statement (so that
 * `nft list ruleset` and `nft -j list ruleset` decompile berth's table), and
 * the names of berth's objects (kube-proxy's nftables names).
 */
#ifndef BERTH_PROXY_NFT_INTERNAL_H
#define BERTH_PROXY_NFT_INTERNAL_H

#include <stdio.h> /* before libnftnl: its headers use FILE */
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s_model.h"

/* nftables object names are at most 256 bytes with the NUL. */
#define NFT_NAME_MAX 256

/* Which header field an address match is on. */
enum nft_addr_field { NFT_SADDR = 12, NFT_DADDR = 16 };

/* ---- rule building (nft_expr.c); every builder returns 0 or -ENOMEM ---- */
struct nftnl_rule *nr_new(const char *table, const char *chain);
/* ip saddr|daddr [!=] CIDR, the way nft encodes prefixes (whole bytes when aligned). */
int nr_match_cidr(struct nftnl_rule *r, enum nft_addr_field f, struct ipv4_cidr c, bool neq);
/* meta l4proto <p> */
int nr_match_l4proto(struct nftnl_rule *r, uint8_t proto);
/* <proto> dport <port> (meta l4proto dependency + th dport) */
int nr_match_dport(struct nftnl_rule *r, uint8_t proto, uint16_t port);
/* fib saddr|daddr type local */
int nr_match_fib_local(struct nftnl_rule *r, bool daddr);
/* ip daddr != 127.0.0.0/8 */
int nr_match_not_loopback(struct nftnl_rule *r);
/* ip saddr|daddr @set */
int nr_match_addr_in_set(struct nftnl_rule *r, enum nft_addr_field f, const char *set);
/* meta mark & mark == 0 */
int nr_match_mark_clear(struct nftnl_rule *r, uint32_t mark);
/* meta mark set meta mark | mark (or: ^ mark) */
int nr_mark_or(struct nftnl_rule *r, uint32_t mark);
int nr_mark_xor(struct nftnl_rule *r, uint32_t mark);
/* NF_ACCEPT/NF_DROP/NFT_RETURN, or NFT_JUMP/NFT_GOTO chain */
int nr_verdict(struct nftnl_rule *r, int verdict, const char *chain);
/* ip daddr . meta l4proto . th dport vmap @map */
int nr_vmap_addr_proto_port(struct nftnl_rule *r, const char *map);
/* [ip daddr @set] meta l4proto . th dport vmap @map */
int nr_vmap_proto_port(struct nftnl_rule *r, const char *map);
/* numgen random mod n vmap @map */
int nr_vmap_numgen(struct nftnl_rule *r, uint32_t mod, const char *map);
/*
 * meta l4proto <p> dnat ip to numgen random mod <mod> offset <offset> map @map
 * (map: an interval map from the numgen result to address . port)
 */
int nr_dnat_numgen_map(struct nftnl_rule *r, uint8_t proto, uint32_t mod, uint32_t offset,
		       const char *map);
/* ct status dnat ip saddr . ip daddr @set */
int nr_match_hairpin(struct nftnl_rule *r, const char *set);
/* update @set { ip saddr } */
int nr_update_saddr(struct nftnl_rule *r, const char *set);
/* meta l4proto <p> dnat to addr:port */
int nr_dnat(struct nftnl_rule *r, uint8_t proto, struct in_addr a, uint16_t port);
/* masquerade [random|fully-random] (NF_NAT_RANGE_PROTO_RANDOM* flags) */
int nr_masquerade(struct nftnl_rule *r, uint32_t flags);
/* snat to addr fully-random */
int nr_snat(struct nftnl_rule *r, struct in_addr a, uint32_t flags);
/* reject (ICMP port unreachable) / reject with tcp reset */
int nr_reject_icmp(struct nftnl_rule *r);
int nr_reject_tcp_reset(struct nftnl_rule *r);
/* comment "text" on a rule, as nft stores it */
int nr_comment(struct nftnl_rule *r, const char *text);

/* ---- sets, as nft declares them ---- */
enum nft_set_kind {
	NFT_SET_ADDR,            /* type ipv4_addr */
	NFT_SET_ADDR_TIMEOUT,    /* type ipv4_addr; flags dynamic,timeout; timeout T */
	NFT_MAP_ADDR_PROTO_PORT, /* type ipv4_addr . inet_proto . inet_service : verdict */
	NFT_MAP_PROTO_PORT,      /* type inet_proto . inet_service : verdict */
	NFT_MAP_NUMGEN,          /* typeof numgen random mod N : verdict */
	/* typeof numgen random mod NFT_EP_SLOTS : ip daddr . <arg: IPPROTO_*> dport; flags interval */
	NFT_MAP_ENDPOINTS,
	NFT_SET_ADDR_PAIR,       /* typeof ip saddr . ip daddr */
};

/*
 * Endpoint dispatch: a policy chain (its dispatch id) owns NFT_EP_SLOTS
 * consecutive numgen values of its shard's map, split into one range per
 * endpoint. 12252240 = lcm(1..18): up to 18 endpoints (and any count
 * dividing it) split exactly evenly, N endpoints otherwise within
 * N/12252240 of it (1e-5 at 100). A map is
 * shared by NFT_EP_SHARD chains only: the kernel checks each new map
 * element against every rule that uses the map, and every new rule
 * against every element of its map.
 */
#define NFT_EP_SLOTS 12252240u
#define NFT_EP_SHARD 32u
#define NFT_EP_MAX_IDS (1u << 20)
_Static_assert((uint64_t)NFT_EP_SHARD * NFT_EP_SLOTS <= UINT32_MAX, "a shard's keys fit 32 bits");
struct nftnl_set *ns_new(const char *table, const char *name, enum nft_set_kind kind,
			 uint32_t arg, const char *comment);

/* Element keys, in the kernel's layout (4-byte aligned fields). */
size_t nk_addr_proto_port(uint8_t key[12], struct in_addr a, uint8_t proto, uint16_t port);
size_t nk_proto_port(uint8_t key[8], uint8_t proto, uint16_t port);
size_t nk_addr(uint8_t key[4], struct in_addr a);
size_t nk_u32(uint8_t key[4], uint32_t v);
/* a numgen value as an interval map's key (big endian) */
size_t nk_be32(uint8_t key[4], uint32_t v);
/* ip saddr . ip daddr, both a */
size_t nk_addr_pair(uint8_t key[8], struct in_addr a);
/* map data: address . port (the port padded to 4 bytes) */
size_t nd_addr_port(uint8_t data[8], struct in_addr a, uint16_t port);
/* An element comment's userdata, as nft stores it; returns its length. */
size_t nu_comment(uint8_t *buf, size_t size, const char *text);

/* ---- names (kube-proxy's): "<prefix><8 base32 of sha256>-<base>" ---- */
void nft_hashed_name(char out[NFT_NAME_MAX], const char *prefix, const char *base);

uint8_t nft_ipproto(enum l4_proto p);
const char *nft_proto_name(enum l4_proto p);

/* libnftnl's destructors do not accept NULL; ours do. */
#include <libnftnl/chain.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
static inline void nfree_set_free(struct nftnl_set *s) { if (s) nftnl_set_free(s); }
static inline void nfree_set_elem_free(struct nftnl_set_elem *e) { if (e) nftnl_set_elem_free(e); }
static inline void nfree_set_elems_iter_destroy(struct nftnl_set_elems_iter *i) { if (i) nftnl_set_elems_iter_destroy(i); }
static inline void nfree_table_free(struct nftnl_table *t) { if (t) nftnl_table_free(t); }
static inline void nfree_chain_free(struct nftnl_chain *c) { if (c) nftnl_chain_free(c); }
static inline void nfree_udata_buf_free(struct nftnl_udata_buf *u) { if (u) nftnl_udata_buf_free(u); }

#endif
