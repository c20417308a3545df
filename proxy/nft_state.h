/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the nftables backend: the state its files share (the record of
 * what the kernel holds, the batch being built, the wanted state of an
 * owner) and the functions one file offers another. nft.c's header
 * comment explains the design.
 */
#ifndef BERTH_PROXY_NFT_STATE_H
#define BERTH_PROXY_NFT_STATE_H

#include <stdio.h> /* before libnftnl: its headers use FILE */
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend.h"
#include "hashmap.h"
#include "nft_internal.h"
#include "nft_nl.h"

#define OWNER_SCAFFOLD ""
#define OWNER_SNAT "#snat"
#define SNAT_CHAIN "pod-egress"

/* kube-proxy's names for the fixed chains and maps */
#define CH_SERVICES "services"
#define CH_MASQUERADING "masquerading"
#define CH_MARK_MASQ "mark-for-masquerade"
#define CH_MASQ_NON_POD "mark-for-masquerade-non-pod"
#define CH_REJECT "reject-chain"
#define CH_ENDPOINTS_CHECK "endpoints-check"
#define CH_FIREWALL_CHECK "firewall-check"
#define CH_CLUSTER_IPS_CHECK "cluster-ips-check"
#define M_SERVICE_IPS "service-ips"
#define M_SERVICE_NODEPORTS "service-nodeports"
#define M_NOEP_SERVICES "no-endpoint-services"
#define M_NOEP_NODEPORTS "no-endpoint-nodeports"
#define M_FIREWALL_IPS "firewall-ips"
#define S_CLUSTER_IPS "cluster-ips"
#define S_NODEPORT_IPS "nodeport-ips"
/*
 * berth's own: endpoint dispatch maps "endpoints-<proto>-<shard>" (nft
 * types a map's data by protocol), each shared by NFT_EP_SHARD policy
 * chains, created on first use and owned by OWNER_DISPATCH; and the
 * hairpin set.
 */
#define M_EP_PREFIX "endpoints-"
#define OWNER_DISPATCH "#dispatch"
#define S_HAIRPIN "hairpin-endpoints"

/* ---------------------------------------------------------------- record */

enum obj_kind { OBJ_CHAIN = 'c', OBJ_SET = 's', OBJ_ELEM = 'e', OBJ_RANGES = 'r' };

/* [start, end) of a dispatch map's numgen values -> data (address . port) */
struct range {
	uint32_t start, end;
	uint8_t data[8];
};

struct obj {
	enum obj_kind kind;
	uint64_t hash;
	char *owner;
	char *name;        /* chain or set name; for an element, its map */
	uint8_t key[12];
	uint8_t klen;
	bool has_map;      /* chain: its numgen map goes with it */
	bool rule_seen;    /* adopt: first rule of the chain read */
	int32_t ng_id;     /* chain: its endpoint dispatch id, or -1 */
	struct range *ranges; /* ranges: sorted by start; name is their map */
	size_t n_ranges;
};

struct owned {
	size_t n;
	char **ids;
};

/* ---------------------------------------------------------------- batch */

enum phase {
	P_DELELEM, P_FLUSH, P_DELSET, P_DELCHAIN, P_NEWCHAIN, P_NEWSET, P_RULE, P_NEWELEM,
	N_PHASES
};

struct msgbuf {
	char *data;
	size_t len, cap;
	size_t n;
	char **desc;   /* what each message programs, for error reports */
	size_t desc_cap;
};

struct elemagg; /* nft_batch.c: a map's pending element messages */

/* One element as the kernel reads it. */
struct elem_desc {
	const uint8_t *key;
	size_t klen;
	uint32_t flags;        /* NFT_SET_ELEM_INTERVAL_END */
	int verdict;           /* INT32_MIN: none */
	const char *chain;     /* of a jump/goto verdict */
	const uint8_t *data;   /* map data, dlen bytes */
	size_t dlen;
	const char *comment;
};

struct jent {
	char *id;
	struct obj *obj;   /* NULL: delete id */
};

struct jowner {
	char *owner;
	struct owned list;
};

struct batch {
	struct msgbuf ph[N_PHASES];
	struct elemagg **agg;      /* element changes, per map */
	size_t n_agg, cap_agg;
	struct hashmap *agg_idx;   /* map name -> its struct elemagg */
	struct hashmap *new_maps;  /* dispatch maps this batch creates */
	struct jent *j;
	size_t nj, capj;
	struct jowner *jo;
	size_t njo, capjo;
	struct hashmap *hp_delta;  /* endpoint address -> change of its reference count */
	char **new_ids;            /* chains given a dispatch id for this batch */
	size_t n_new_ids, cap_new_ids;
	bool new_table;
	struct proxy_apply_stats st; /* counted here, added on commit */
};

struct nft_state {
	struct proxy_backend_config cfg;
	char table[64];
	uint32_t mark;
	size_t max_msgs;
	struct nft_sock *sock;
	struct hashmap *objs;    /* id -> struct obj */
	struct hashmap *owners;  /* owner -> struct owned */
	bool adopted, table_exists, scaffold_done, snat_done;
	/* dispatch ids: chain name -> id + 1, and which ids are taken */
	struct hashmap *ids;
	uint8_t *id_bits;
	uint32_t id_low;         /* no id below is free: allocation keeps shards dense */
	/*
	 * The hairpin set holds "a . a" for every endpoint address a that a
	 * dispatch map refers to: hp_want counts the references in the record,
	 * hp_have is what the kernel holds. After adopt() the two are compared
	 * in full once (hp_dirty); afterwards only addresses a batch touches.
	 */
	struct hashmap *hp_want, *hp_have;
	bool hp_dirty;
	uint8_t *scratch;        /* for hashing a rule's encoding */
	uint32_t set_id;
	struct batch b;
};

/* ---------------------------------------------------------------- helpers */

/* Room for one more in a growing array; false when out of memory. */
#define GROW(arr, n, cap)                                                              \
	({                                                                             \
		bool ok_ = true;                                                       \
		if ((n) == (cap)) {                                                    \
			size_t c_ = (cap) ? (cap) * 2 : 8;                             \
			void *p_ = realloc((arr), c_ * sizeof(*(arr)));                \
			if (p_) {                                                      \
				(arr) = p_;                                            \
				(cap) = c_;                                            \
			} else {                                                       \
				ok_ = false;                                           \
			}                                                              \
		}                                                                      \
		ok_;                                                                   \
	})

/* lib/hashmap.c wants somewhere to put the replaced value */
static inline int map_put(struct hashmap *m, const char *key, void *value)
{
	void *old;

	return hashmap_put(m, key, value, &old);
}

/* Counters kept in a hashmap: biased so that no count is a NULL value; 0 is no entry. */
#define CNT_BIAS ((intptr_t)1 << 30)

static inline intptr_t cnt_get(const struct hashmap *m, const char *key)
{
	void *v = m ? hashmap_get(m, key) : NULL;

	return v ? (intptr_t)v - CNT_BIAS : 0;
}

static inline int cnt_set(struct hashmap *m, const char *key, intptr_t n)
{
	if (!n) {
		hashmap_del(m, key);
		return 0;
	}
	return map_put(m, key, (void *)(n + CNT_BIAS));
}

/* n bytes as 2n hex digits and a NUL (printf is the hot path's cost at 10k services) */
static inline void hex(char *out, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static inline void addr_key(char out[16], const uint8_t *addr)
{
	hex(out, addr, 4);
}

/* ---------------------------------------------------------------- wanted state */

struct want_chain {
	char name[NFT_NAME_MAX];
	bool base;
	const char *type;
	uint32_t hook;
	int32_t prio;
	struct nftnl_rule **rules;
	size_t n_rules, cap_rules;
	size_t map_n;             /* numgen map: element i -> goto map_targets[i] */
	char (*map_targets)[NFT_NAME_MAX];
	uint64_t salt;            /* what the rules refer to but do not encode (set timeouts) */
	int32_t ng_id;            /* endpoint dispatch id, or -1 */
	char ep_map[48];          /* with an id: its dispatch map and ranges there */
	struct range *ranges;
	size_t n_ranges;
};

struct want_set {
	struct nftnl_set *set;
};

struct want_elem {
	char map[48];             /* one of global_sets */
	uint8_t key[12];
	uint8_t klen;
	int verdict;              /* INT32_MIN: a set element, no data */
	char *chain;              /* owned, or NULL */
	char *comment;            /* owned, or NULL */
};

struct want {
	struct want_chain **chains; /* pointers: callers hold them while more are added */
	size_t n_chains, cap_chains;
	struct want_set *sets;
	size_t n_sets, cap_sets;
	struct want_elem *elems;
	size_t n_elems, cap_elems;
	int err;                  /* first allocation failure while building */
};

/* ---------------------------------------------------------------- nft.c */

/* Free a record object; accepts NULL. */
void obj_free(struct obj *o);
/* Empty an owner's id list. */
void owned_clear(struct owned *l);
/* printf into err (may be NULL). */
void fmt_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A new record object (no dispatch id); NULL when out of memory. */
struct obj *obj_new(enum obj_kind kind, const char *owner, const char *name, uint64_t hash);
/* A set's content hash (its declaration, as a dump returns it). */
uint64_t set_hash(const struct nftnl_set *s);
/* An element's content hash (map, key and verdict). */
uint64_t elem_hash(const char *map, const uint8_t *key, size_t klen, int verdict,
		   const char *chain);
/* A chain's dispatch ranges' content hash. */
uint64_t ranges_hash(const char *map, const struct range *r, size_t n);
/* An element's record id, "e/<map>/<hex key>". */
void elem_id(char *out, size_t outlen, const char *map, const uint8_t *key, size_t klen);
/* An empty record (nothing known about the kernel). 0 or -ENOMEM. */
int forget_all(struct nft_state *st);

/* ---------------------------------------------------------------- nft_batch.c */

/* Start a message in phase p with room bytes; NULL when out of memory. */
struct nlmsghdr *mb_begin(struct batch *b, enum phase p, uint16_t type, uint16_t flags,
			  size_t room);
/* Close a message begun by mb_begin, described "<what> <name>" for error reports. */
int mb_end(struct batch *b, enum phase p, struct nlmsghdr *nlh, const char *what,
	   const char *name);
/* Empty the batch for the next one (its buffers stay allocated). */
void batch_reset(struct batch *b);
/* Free everything the batch holds. */
void batch_free(struct batch *b);
/* Netlink messages in the batch, element messages being filled included. */
size_t batch_msgs(const struct batch *b);
/* Record id's new object (o, owned from now on; NULL: deleted) for when the batch commits. */
int journal(struct batch *b, const char *id, struct obj *o);
/* Create the table (first in the batch). */
int emit_table(struct nft_state *st);
/* A chain message naming only the chain (e.g. NFT_MSG_DELCHAIN) in phase p. */
int emit_chain_op(struct nft_state *st, enum phase p, uint16_t type, const char *name,
		  const char *what);
/* Flush a chain's rules. */
int emit_flush(struct nft_state *st, const char *chain);
/* Delete a set. */
int emit_delset(struct nft_state *st, const char *name);
/* Create a set (given its transaction id here). */
int emit_newset(struct nft_state *st, struct nftnl_set *s);
/* Add or delete one element of a map. */
int agg_elem(struct nft_state *st, const char *map, bool add, const struct elem_desc *d);
/* Add or delete an element with a key only. */
int agg_key(struct nft_state *st, const char *map, bool add, const uint8_t *key, size_t klen);
/* Add or delete a range [key, kend) of an interval map. */
int agg_range(struct nft_state *st, const char *map, bool add, const uint8_t *key,
	      const uint8_t *kend, const uint8_t *data, size_t dlen);
/* Close every element message being filled into its phase. */
int agg_flush(struct nft_state *st);
/* A wanted chain's rules, the first carrying the hash as its comment. */
int emit_chain_rules(struct nft_state *st, struct want_chain *c, uint64_t hash);
/* A wanted chain's numgen map and its elements. */
int emit_chain_map(struct nft_state *st, struct want_chain *c);
/* Create a wanted chain (a base chain with its hook). */
int emit_newchain(struct nft_state *st, struct want_chain *c);

/* ---------------------------------------------------------------- nft_build.c */

/* Empty w for the next owner; its arrays stay allocated. */
void want_clear(struct want *w);
/* Free everything w holds. */
void want_free(struct want *w);
/* The fixed scaffolding: base chains, helper chains, dispatch maps and sets. */
void build_scaffold(struct nft_state *st, struct want *w);
/* The pod egress SNAT chain (nothing when disabled). */
void build_snat(struct nft_state *st, struct want *w);
/* A service's chains, sets and elements from its plan (nothing for NULL). */
void want_service(struct nft_state *st, struct want *w, const struct plan_service *ps);

/* ---------------------------------------------------------------- nft_dispatch.c */

/* Record that chain uses dispatch id (adopt, or a new allocation). */
int id_bind(struct nft_state *st, const char *chain, uint32_t id);
/* Give a chain's dispatch id back (id < 0: none). */
void id_release(struct nft_state *st, const char *chain, int32_t id);
/* A policy chain's dispatch id: the one it has, else the next free one. */
int32_t id_for(struct nft_state *st, const char *chain);
/* A failed batch: ids given to chains that did not come to exist are free again. */
void ids_rollback(struct nft_state *st);
/* One more (d = 1) or one fewer (d = -1) dispatch range refers to the endpoint in data. */
int hp_touch(struct nft_state *st, const uint8_t *data, intptr_t d);
/* Queue the hairpin set's changes for this batch. */
int hp_emit(struct nft_state *st);
/* The batch is in the kernel: the hairpin references and set follow it. */
void hp_apply(struct nft_state *st, bool was_dirty);

/* ---------------------------------------------------------------- nft_adopt.c */

/* The backend's adopt(): rebuild the record from one dump of the table. */
int nft_adopt(void *state, struct proxy_apply_stats *stats, char *err, size_t errlen);

#endif
