// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables backend: berth's services as kube-proxy's nftables mode lays
 * them out (table ip berth, same chain/map names and priorities), programmed
 * over netlink with libnftnl, one atomic batch per apply.
 *
 * One departure from kube-proxy's layout, for the cost of a change: the
 * kernel re-validates every chain of the table at commit (a walk of the
 * whole chain graph, ~0.1-0.2 s at 10k services) whenever a batch adds a
 * rule with a nat/lookup/immediate expression or a map element that jumps.
 * kube-proxy's endpoint chains make every endpoint change such a batch.
 * Here a policy chain ("service-"/"local-") ends in
 *   meta l4proto P dnat ip to numgen random mod M offset O map @endpoints-P-S
 * and its endpoints are ranges of numgen values in that map: an endpoint
 * replaced, added or removed changes map elements with plain data only,
 * which the kernel checks without a walk. The hairpin masquerade that
 * kube-proxy's endpoint chains do (ip saddr <endpoint>) is one rule in
 * masquerading, after DNAT: ct status dnat and saddr . daddr in the set of
 * endpoint pairs "a . a". Services with session affinity keep kube-proxy's
 * endpoint chains (the affinity update names the endpoint).
 *
 * What the kernel holds is modelled as objects, each owned by one service
 * key ("ns/name"), by "" (the fixed scaffolding), by "#snat" or by
 * "#dispatch" (the dispatch maps, created on first use and kept):
 *   c/<chain>        a chain and its rules (and the chain's numgen map of
 *                    the same name, if it has one)
 *   s/<set>          a named set (affinity sets, the scaffolding's maps)
 *   e/<map>/<key>    an element of one of the scaffolding's dispatch maps
 *   r/<chain>        the ranges a policy chain owns in its endpoint dispatch
 *                    map (numgen value range -> endpoint address . port)
 * Each object has a content hash. For a chain it is carried in the kernel
 * as the comment of its first rule ("berth:<hash>"), for sets and elements
 * it is recomputed from what a dump returns, so adopt() rebuilds the
 * record from one dump of the table and an unchanged restart changes
 * nothing. apply() builds a service's wanted objects, compares hashes with
 * the record and emits only the differences, in the order the kernel needs
 * within one batch (element deletions, chain flushes, set deletions, chain
 * deletions, then creations, rules, element additions). The record is
 * updated from a journal only once the kernel has ACKed the whole batch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h> /* before libnftnl: its headers use FILE */
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "hashmap.h"
#include "nft_internal.h"
#include "nft_nl.h"

#define DEFAULT_TABLE "berth"
#define DEFAULT_MARK 0x4000u
#define DEFAULT_MAX_MSGS 20000
#define ELEMS_PER_MSG 512
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

static const char *const global_sets[] = {
	M_SERVICE_IPS, M_SERVICE_NODEPORTS, M_NOEP_SERVICES, M_NOEP_NODEPORTS,
	M_FIREWALL_IPS, S_CLUSTER_IPS, S_NODEPORT_IPS, S_HAIRPIN,
};
#define N_GLOBAL (sizeof(global_sets) / sizeof(global_sets[0]))

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

/* A NEWSETELEM/DELSETELEM message being filled, encoded as it grows (no libnftnl objects). */
struct elemsg {
	char *buf;         /* the message (header first) */
	size_t cap;
	size_t count;      /* elements in it; 0: not started */
	size_t nest_off;   /* its NFTA_SET_ELEM_LIST_ELEMENTS nest */
};

struct elemagg {
	char *map;
	struct elemsg m[2]; /* [0] deletions, [1] additions, up to ELEMS_PER_MSG each */
};

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

#define SCRATCH_SIZE (64 * 1024)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

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
static int map_put(struct hashmap *m, const char *key, void *value)
{
	void *old;

	return hashmap_put(m, key, value, &old);
}

/* Counters kept in a hashmap: biased so that no count is a NULL value; 0 is no entry. */
#define CNT_BIAS ((intptr_t)1 << 30)

static intptr_t cnt_get(const struct hashmap *m, const char *key)
{
	void *v = m ? hashmap_get(m, key) : NULL;

	return v ? (intptr_t)v - CNT_BIAS : 0;
}

static int cnt_set(struct hashmap *m, const char *key, intptr_t n)
{
	if (!n) {
		hashmap_del(m, key);
		return 0;
	}
	return map_put(m, key, (void *)(n + CNT_BIAS));
}

/* n bytes as 2n hex digits and a NUL (printf is the hot path's cost at 10k services) */
static void hex(char *out, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void addr_key(char out[16], const uint8_t *addr)
{
	hex(out, addr, 4);
}

static void obj_free(struct obj *o)
{
	if (!o)
		return;
	free(o->owner);
	free(o->name);
	free(o->ranges);
	free(o);
}

static void owned_clear(struct owned *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	l->ids = NULL;
	l->n = 0;
}

static void fmt_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- messages */

static int mb_reserve(struct msgbuf *m, size_t room)
{
	if (m->len + room > m->cap) {
		size_t cap = m->cap ? m->cap : 65536;
		char *p;

		while (cap < m->len + room)
			cap *= 2;
		p = realloc(m->data, cap);
		if (!p)
			return -ENOMEM;
		m->data = p;
		m->cap = cap;
	}
	if (m->n + 1 > m->desc_cap) {
		size_t cap = m->desc_cap ? m->desc_cap * 2 : 256;
		char **d = realloc(m->desc, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		m->desc = d;
		m->desc_cap = cap;
	}
	return 0;
}

static struct nlmsghdr *mb_begin(struct batch *b, enum phase p, uint16_t type, uint16_t flags,
				 size_t room)
{
	struct msgbuf *m = &b->ph[p];

	if (mb_reserve(m, room))
		return NULL;
	return nftnl_nlmsg_build_hdr(m->data + m->len, type, NFPROTO_IPV4, flags | NLM_F_ACK, 0);
}

static int mb_end(struct batch *b, enum phase p, struct nlmsghdr *nlh, const char *what,
		  const char *name)
{
	struct msgbuf *m = &b->ph[p];
	char *d;

	if (asprintf(&d, "%s %s", what, name) < 0)
		return -ENOMEM;
	m->len += NLMSG_ALIGN(nlh->nlmsg_len);
	m->desc[m->n++] = d;
	return 0;
}

static void batch_reset(struct batch *b)
{
	for (int p = 0; p < N_PHASES; p++) {
		for (size_t i = 0; i < b->ph[p].n; i++)
			free(b->ph[p].desc[i]);
		b->ph[p].n = 0;
		b->ph[p].len = 0;
	}
	for (size_t i = 0; i < b->n_agg; i++) {
		for (int k = 0; k < 2; k++)
			free(b->agg[i]->m[k].buf);
		free(b->agg[i]->map);
		free(b->agg[i]);
	}
	b->n_agg = 0;
	hashmap_free(b->agg_idx);
	hashmap_free(b->new_maps);
	b->agg_idx = b->new_maps = NULL;
	for (size_t i = 0; i < b->nj; i++) {
		free(b->j[i].id);
		obj_free(b->j[i].obj);
	}
	b->nj = 0;
	for (size_t i = 0; i < b->njo; i++) {
		free(b->jo[i].owner);
		owned_clear(&b->jo[i].list);
	}
	b->njo = 0;
	hashmap_free(b->hp_delta);
	b->hp_delta = NULL;
	for (size_t i = 0; i < b->n_new_ids; i++)
		free(b->new_ids[i]);
	b->n_new_ids = 0;
	b->new_table = false;
	memset(&b->st, 0, sizeof(b->st));
}

static void batch_free(struct batch *b)
{
	batch_reset(b);
	for (int p = 0; p < N_PHASES; p++) {
		free(b->ph[p].data);
		free(b->ph[p].desc);
	}
	free(b->j);
	free(b->jo);
	free(b->new_ids);
	free(b->agg);
}

static size_t batch_msgs(const struct batch *b)
{
	size_t n = 0;

	for (int p = 0; p < N_PHASES; p++)
		n += b->ph[p].n;
	for (size_t i = 0; i < b->n_agg; i++)
		n += (b->agg[i]->m[0].count > 0) + (b->agg[i]->m[1].count > 0);
	return n;
}

static int journal(struct batch *b, const char *id, struct obj *o)
{
	if (b->nj == b->capj) {
		size_t cap = b->capj ? b->capj * 2 : 256;
		struct jent *j = realloc(b->j, cap * sizeof(*j));

		if (!j)
			return -ENOMEM;
		b->j = j;
		b->capj = cap;
	}
	b->j[b->nj].id = strdup(id);
	if (!b->j[b->nj].id)
		return -ENOMEM;
	b->j[b->nj++].obj = o;
	return 0;
}

/* ---------------------------------------------------------------- emitting */

static int emit_table(struct nft_state *st)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(64);
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!t || !u)
		goto out;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_IPV4);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, st->table);
	if (!nftnl_udata_put_strz(u, NFTNL_UDATA_TABLE_COMMENT, "rules for berth"))
		goto out;
	nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	/* first in the batch: NEWCHAIN is the first phase that needs it */
	nlh = mb_begin(&st->b, P_DELELEM, NFT_MSG_NEWTABLE, NLM_F_CREATE, 4096);
	if (!nlh)
		goto out;
	nftnl_table_nlmsg_build_payload(nlh, t);
	ret = mb_end(&st->b, P_DELELEM, nlh, "table", st->table);
	st->b.new_table = true;
out:
	nfree_udata_buf_free(u);
	nfree_table_free(t);
	return ret;
}

static int emit_chain_op(struct nft_state *st, enum phase p, uint16_t type, const char *name,
			 const char *what)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_IPV4);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, st->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nlh = mb_begin(&st->b, p, type, 0, 4096);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		ret = mb_end(&st->b, p, nlh, what, name);
	}
	nfree_chain_free(c);
	return ret;
}

/* "flush chain": a rule deletion naming only the chain */
static int emit_flush(struct nft_state *st, const char *chain)
{
	struct nftnl_rule *r = nr_new(st->table, chain);
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!r)
		return -ENOMEM;
	nlh = mb_begin(&st->b, P_FLUSH, NFT_MSG_DELRULE, 0, 4096);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		ret = mb_end(&st->b, P_FLUSH, nlh, "flush chain", chain);
	}
	nftnl_rule_free(r);
	return ret;
}

static int emit_delset(struct nft_state *st, const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, st->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nlh = mb_begin(&st->b, P_DELSET, NFT_MSG_DELSET, 0, 4096);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		ret = mb_end(&st->b, P_DELSET, nlh, "delete set", name);
	}
	nfree_set_free(s);
	st->b.st.sets_deleted++;
	return ret;
}

static int emit_newset(struct nft_state *st, struct nftnl_set *s)
{
	struct nlmsghdr *nlh = mb_begin(&st->b, P_NEWSET, NFT_MSG_NEWSET, NLM_F_CREATE, 8192);

	if (!nlh)
		return -ENOMEM;
	/* the kernel requires a transaction-unique id (for references within the batch) */
	nftnl_set_set_u32(s, NFTNL_SET_ID, ++st->set_id);
	nftnl_set_nlmsg_build_payload(nlh, s);
	st->b.st.sets_added++;
	return mb_end(&st->b, P_NEWSET, nlh, "add set", nftnl_set_get_str(s, NFTNL_SET_NAME));
}

/* Elements of a set already holding them (s carries table, name and elements). */
static int emit_elems(struct nft_state *st, enum phase p, uint16_t type, struct nftnl_set *s,
		      size_t n)
{
	struct nlmsghdr *nlh = mb_begin(&st->b, p, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
					n * 700 + 4096);

	if (!nlh)
		return -ENOMEM;
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	return mb_end(&st->b, p, nlh, type == NFT_MSG_NEWSETELEM ? "add elements to" : "delete elements from",
		      nftnl_set_get_str(s, NFTNL_SET_NAME));
}

/* The batch's pending element changes of a map. */
static struct elemagg *agg_of(struct batch *b, const char *map)
{
	struct elemagg *a;

	if (!b->agg_idx && !(b->agg_idx = hashmap_new()))
		return NULL;
	a = hashmap_get(b->agg_idx, map);
	if (a)
		return a;
	if (!GROW(b->agg, b->n_agg, b->cap_agg))
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->map = strdup(map)) || map_put(b->agg_idx, map, a)) {
		if (a)
			free(a->map);
		free(a);
		return NULL;
	}
	b->agg[b->n_agg++] = a;
	return a;
}

/* Room for one more element (the largest: a 256-byte chain name and a comment). */
#define ELEM_ROOM 1024

static int elemsg_reserve(struct elemsg *m)
{
	size_t used = m->count ? ((struct nlmsghdr *)m->buf)->nlmsg_len : 0;
	size_t cap = m->cap ? m->cap : 65536;
	char *p;

	while (cap - used < ELEM_ROOM + 512)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	p = realloc(m->buf, cap);
	if (!p)
		return -ENOMEM;
	m->buf = p;
	m->cap = cap;
	return 0;
}

static void elemsg_start(struct nft_state *st, struct elemsg *m, const char *map, bool add)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(m->buf, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
						     NFPROTO_IPV4, add ? NLM_F_CREATE : 0, 0);

	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, map);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, st->table);
	m->nest_off = (size_t)((char *)mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS) - m->buf);
}

/* One element, as libnftnl encodes it (nftnl_set_elem_nlmsg_build_payload). */
static void elemsg_put(struct elemsg *m, const struct elem_desc *d)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)m->buf;
	struct nlattr *e = mnl_attr_nest_start(nlh, (uint16_t)(m->count + 1)), *n, *v;
	uint8_t ud[260];
	size_t udlen;

	if (d->flags)
		mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(d->flags));
	n = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
	mnl_attr_put(nlh, NFTA_DATA_VALUE, d->klen, d->key);
	mnl_attr_nest_end(nlh, n);
	if (d->verdict != INT32_MIN) {
		n = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
		v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
		mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl((uint32_t)d->verdict));
		if (d->chain)
			mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, d->chain);
		mnl_attr_nest_end(nlh, v);
		mnl_attr_nest_end(nlh, n);
	} else if (d->dlen) {
		n = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
		mnl_attr_put(nlh, NFTA_DATA_VALUE, d->dlen, d->data);
		mnl_attr_nest_end(nlh, n);
	}
	if (d->comment && (udlen = nu_comment(ud, sizeof(ud), d->comment)))
		mnl_attr_put(nlh, NFTA_SET_ELEM_USERDATA, udlen, ud);
	mnl_attr_nest_end(nlh, e);
	m->count++;
}

/* The message is complete: into its phase of the batch, and a new one may start. */
static int elemsg_flush(struct nft_state *st, struct elemagg *a, int k)
{
	struct elemsg *m = &a->m[k];
	enum phase p = k ? P_NEWELEM : P_DELELEM;
	struct nlmsghdr *nlh = (struct nlmsghdr *)m->buf, *to;

	if (!m->count)
		return 0;
	mnl_attr_nest_end(nlh, (struct nlattr *)(m->buf + m->nest_off));
	m->count = 0;
	if (mb_reserve(&st->b.ph[p], NLMSG_ALIGN(nlh->nlmsg_len)))
		return -ENOMEM;
	to = (struct nlmsghdr *)(st->b.ph[p].data + st->b.ph[p].len);
	memcpy(to, nlh, nlh->nlmsg_len);
	return mb_end(&st->b, p, to, k ? "add elements to" : "delete elements from", a->map);
}

/* Queue one element of a map; flushed to its phase every ELEMS_PER_MSG. */
static int agg_put(struct nft_state *st, const char *map, bool add, const struct elem_desc *d)
{
	struct elemagg *a = agg_of(&st->b, map);
	int k = add ? 1 : 0;

	if (!a || elemsg_reserve(&a->m[k]))
		return -ENOMEM;
	if (!a->m[k].count)
		elemsg_start(st, &a->m[k], map, add);
	elemsg_put(&a->m[k], d);
	return a->m[k].count >= ELEMS_PER_MSG ? elemsg_flush(st, a, k) : 0;
}

static int agg_elem(struct nft_state *st, const char *map, bool add, const struct elem_desc *d)
{
	int ret = agg_put(st, map, add, d);

	if (!ret && add)
		st->b.st.elems_added++;
	else if (!ret)
		st->b.st.elems_deleted++;
	return ret;
}

/* An element with a key only: of a set, or one to delete. */
static int agg_key(struct nft_state *st, const char *map, bool add, const uint8_t *key, size_t klen)
{
	struct elem_desc d = { .key = key, .klen = klen, .verdict = INT32_MIN };

	return agg_elem(st, map, add, &d);
}

/*
 * A range [key, kend) of an interval map, as nft sends one: its start
 * element (with the data when adding) and an end element flagged so.
 */
static int agg_range(struct nft_state *st, const char *map, bool add, const uint8_t *key,
		     const uint8_t *kend, const uint8_t *data, size_t dlen)
{
	struct elem_desc s = { .key = key, .klen = 4, .verdict = INT32_MIN,
			       .data = data, .dlen = add ? dlen : 0 };
	struct elem_desc e = { .key = kend, .klen = 4, .verdict = INT32_MIN,
			       .flags = NFT_SET_ELEM_INTERVAL_END };
	int ret = agg_put(st, map, add, &s) ?: agg_put(st, map, add, &e);

	if (!ret && add)
		st->b.st.elems_added++;
	else if (!ret)
		st->b.st.elems_deleted++;
	return ret;
}

static int agg_flush(struct nft_state *st)
{
	int ret = 0;

	for (size_t i = 0; i < st->b.n_agg && !ret; i++)
		ret = elemsg_flush(st, st->b.agg[i], 0) ?: elemsg_flush(st, st->b.agg[i], 1);
	return ret;
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

/* Empty w for the next owner; its arrays stay allocated (one service after another). */
static void want_clear(struct want *w)
{
	for (size_t i = 0; i < w->n_chains; i++) {
		for (size_t r = 0; r < w->chains[i]->n_rules; r++)
			nftnl_rule_free(w->chains[i]->rules[r]);
		free(w->chains[i]->rules);
		free(w->chains[i]->map_targets);
		free(w->chains[i]->ranges);
		free(w->chains[i]);
	}
	for (size_t i = 0; i < w->n_sets; i++)
		nfree_set_free(w->sets[i].set);
	for (size_t i = 0; i < w->n_elems; i++) {
		free(w->elems[i].chain);
		free(w->elems[i].comment);
	}
	w->n_chains = w->n_sets = w->n_elems = 0;
	w->err = 0;
}

static void want_free(struct want *w)
{
	want_clear(w);
	free(w->chains);
	free(w->sets);
	free(w->elems);
	memset(w, 0, sizeof(*w));
}

/* A map's name into a want_elem (every map name berth uses fits). */
static void set_map_name(struct want_elem *e, const char *map)
{
	size_t n = strnlen(map, sizeof(e->map) - 1);

	memcpy(e->map, map, n);
	e->map[n] = '\0';
}


static struct want_chain *want_chain(struct want *w, const char *name)
{
	struct want_chain *c;

	for (size_t i = 0; i < w->n_chains; i++)
		if (!strcmp(w->chains[i]->name, name))
			return w->chains[i];
	c = calloc(1, sizeof(*c));
	if (!c || !GROW(w->chains, w->n_chains, w->cap_chains)) {
		free(c);
		w->err = -ENOMEM;
		return NULL;
	}
	w->chains[w->n_chains++] = c;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->ng_id = -1;
	return c;
}

static struct want_chain *want_base(struct want *w, const char *name, const char *type,
				    uint32_t hook, int32_t prio)
{
	struct want_chain *c = want_chain(w, name);

	if (c) {
		c->base = true;
		c->type = type;
		c->hook = hook;
		c->prio = prio;
	}
	return c;
}

/* A new rule appended to chain c; NULL (and w->err) on failure. */
static struct nftnl_rule *want_rule(struct want *w, const char *table, struct want_chain *c)
{
	struct nftnl_rule *r;

	if (!c || !GROW(c->rules, c->n_rules, c->cap_rules)) {
		w->err = -ENOMEM;
		return NULL;
	}
	r = nr_new(table, c->name);
	if (!r) {
		w->err = -ENOMEM;
		return NULL;
	}
	c->rules[c->n_rules++] = r;
	return r;
}

static void want_set(struct want *w, struct nftnl_set *s)
{
	if (!s || !GROW(w->sets, w->n_sets, w->cap_sets)) {
		nfree_set_free(s);
		w->err = -ENOMEM;
		return;
	}
	w->sets[w->n_sets++].set = s;
}

static void want_elem(struct want *w, const char *map, const uint8_t *key, size_t klen,
		      int verdict, const char *chain, const char *comment)
{
	struct want_elem *e;

	for (size_t i = 0; i < w->n_elems; i++)
		if (!strcmp(w->elems[i].map, map) && w->elems[i].klen == klen &&
		    !memcmp(w->elems[i].key, key, klen))
			return; /* one NodePort or ClusterIP listed for several addresses/ports */
	if (!GROW(w->elems, w->n_elems, w->cap_elems)) {
		w->err = -ENOMEM;
		return;
	}
	e = &w->elems[w->n_elems++];
	*e = (struct want_elem){ .klen = (uint8_t)klen, .verdict = verdict };
	set_map_name(e, map);
	memcpy(e->key, key, klen);
	e->chain = chain ? strdup(chain) : NULL;
	e->comment = comment ? strdup(comment) : NULL;
	if ((chain && !e->chain) || (comment && !e->comment))
		w->err = -ENOMEM;
}

/* ---------------------------------------------------------------- hashing */

static uint64_t rule_hash(struct nft_state *st, uint64_t h, struct nftnl_rule *r)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr((char *)st->scratch, NFT_MSG_NEWRULE,
						     NFPROTO_IPV4, 0, 0);

	nftnl_rule_nlmsg_build_payload(nlh, r);
	h = fnv(h, mnl_nlmsg_get_payload(nlh), mnl_nlmsg_get_payload_len(nlh));
	/*
	 * libmnl leaves attribute padding as it finds it: zero what we used so
	 * that the next encoding hashes the same bytes whatever came before.
	 */
	memset(st->scratch, 0, nlh->nlmsg_len);
	return h;
}

static uint64_t chain_hash(struct nft_state *st, const struct want_chain *c)
{
	uint64_t h = fnv_str(FNV0, c->name);

	if (c->base) {
		h = fnv_str(h, c->type);
		h = fnv(h, &c->hook, sizeof(c->hook));
		h = fnv(h, &c->prio, sizeof(c->prio));
	}
	for (size_t i = 0; i < c->n_rules; i++)
		h = rule_hash(st, h, c->rules[i]);
	h = fnv(h, &c->map_n, sizeof(c->map_n));
	for (size_t i = 0; i < c->map_n; i++)
		h = fnv_str(h, c->map_targets[i]);
	h = fnv(h, &c->salt, sizeof(c->salt));
	return h ? h : 1; /* 0 means "unknown" in an adopted record */
}

static uint64_t set_hash(const struct nftnl_set *s)
{
	static const uint16_t u32s[] = { NFTNL_SET_KEY_TYPE, NFTNL_SET_KEY_LEN, NFTNL_SET_FLAGS,
					 NFTNL_SET_DATA_TYPE, NFTNL_SET_DATA_LEN };
	uint64_t h = fnv_str(FNV0, nftnl_set_get_str(s, NFTNL_SET_NAME));
	const void *ud;
	uint32_t len = 0;

	for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++) {
		uint32_t v = nftnl_set_is_set(s, u32s[i]) ? nftnl_set_get_u32(s, u32s[i]) : 0;

		h = fnv(h, &v, sizeof(v));
	}
	if (nftnl_set_is_set(s, NFTNL_SET_TIMEOUT)) {
		uint64_t t = nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT);

		h = fnv(h, &t, sizeof(t));
	}
	ud = nftnl_set_is_set(s, NFTNL_SET_USERDATA) ? nftnl_set_get_data(s, NFTNL_SET_USERDATA, &len) : NULL;
	if (ud)
		h = fnv(h, ud, len);
	return h ? h : 1;
}

static uint64_t elem_hash(const char *map, const uint8_t *key, size_t klen, int verdict,
			  const char *chain)
{
	uint64_t h = fnv_str(FNV0, map);

	h = fnv(h, key, klen);
	h = fnv(h, &verdict, sizeof(verdict));
	return fnv_str(h, verdict == NFT_JUMP || verdict == NFT_GOTO ? chain : "");
}

/* A chain's ranges: what the kernel holds is each range's start, end and data. */
static uint64_t ranges_hash(const char *map, const struct range *r, size_t n)
{
	uint64_t h = fnv_str(FNV0, map);

	for (size_t i = 0; i < n; i++) {
		h = fnv(h, &r[i].start, sizeof(r[i].start));
		h = fnv(h, &r[i].end, sizeof(r[i].end));
		h = fnv(h, r[i].data, sizeof(r[i].data));
	}
	return h ? h : 1;
}

static void elem_id(char *out, size_t outlen, const char *map, const uint8_t *key, size_t klen)
{
	size_t n = (size_t)snprintf(out, outlen, "e/%s/", map);

	if (n + 2 * klen < outlen)
		hex(out + n, key, klen);
}

/* ---------------------------------------------------------------- owners */

static bool is_ep_map(const char *map)
{
	return !strncmp(map, M_EP_PREFIX, strlen(M_EP_PREFIX));
}

/* The service key a kube-proxy-style name belongs to: "<prefix>-<HASH8>-ns/name/..." */
static const char *owner_of_name(const char *name, char *buf, size_t buflen)
{
	const char *dash, *base, *slash, *end;

	if (!strcmp(name, SNAT_CHAIN))
		return OWNER_SNAT;
	if (is_ep_map(name))
		return OWNER_DISPATCH;
	slash = strchr(name, '/');
	dash = strchr(name, '-');
	if (!slash || !dash || (size_t)(slash - dash) < 10)
		return OWNER_SCAFFOLD;
	base = dash + 10;
	end = strchr(slash + 1, '/');
	snprintf(buf, buflen, "%.*s", (int)(end ? (size_t)(end - base) : strlen(base)), base);
	return buf;
}

/* "ns/name/proto/port" (an element comment) -> "ns/name" */
static const char *owner_of_comment(const char *c, char *buf, size_t buflen)
{
	const char *s = strchr(c, '/'), *end = s ? strchr(s + 1, '/') : NULL;

	if (!s)
		return OWNER_SCAFFOLD;
	snprintf(buf, buflen, "%.*s", (int)(end ? (size_t)(end - c) : strlen(c)), c);
	return buf;
}

static struct obj *obj_new(enum obj_kind kind, const char *owner, const char *name, uint64_t hash)
{
	struct obj *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->kind = kind;
	o->hash = hash;
	o->ng_id = -1;
	o->owner = strdup(owner);
	o->name = strdup(name);
	if (!o->owner || !o->name) {
		obj_free(o);
		return NULL;
	}
	return o;
}

/* ---------------------------------------------------------------- dispatch ids */

static bool id_taken(const struct nft_state *st, uint32_t id)
{
	return st->id_bits[id / 8] & (1u << (id % 8));
}

static void id_mark(struct nft_state *st, uint32_t id, bool taken)
{
	if (taken)
		st->id_bits[id / 8] |= (uint8_t)(1u << (id % 8));
	else
		st->id_bits[id / 8] &= (uint8_t)~(1u << (id % 8));
}

/* Record that chain uses id (adopt, or a new allocation). */
static int id_bind(struct nft_state *st, const char *chain, uint32_t id)
{
	if (map_put(st->ids, chain, (void *)(uintptr_t)(id + 1)))
		return -ENOMEM;
	id_mark(st, id, true);
	return 0;
}

static void id_release(struct nft_state *st, const char *chain, int32_t id)
{
	if (id < 0)
		return;
	if ((uintptr_t)hashmap_get(st->ids, chain) == (uintptr_t)id + 1)
		hashmap_del(st->ids, chain);
	id_mark(st, (uint32_t)id, false);
	if ((uint32_t)id < st->id_low)
		st->id_low = (uint32_t)id;
}

/*
 * The dispatch id of a policy chain: the one it has (the record's, so that
 * an unchanged chain hashes the same), else the next free one. A new id is
 * remembered in the batch so that a failed batch gives it back.
 */
static int32_t id_for(struct nft_state *st, const char *chain)
{
	uintptr_t v = (uintptr_t)hashmap_get(st->ids, chain);
	struct batch *b = &st->b;

	if (v)
		return (int32_t)(v - 1);
	for (uint32_t id = st->id_low; id < NFT_EP_MAX_IDS; id++) {
		if (st->id_bits[id / 8] == 0xff) {
			id |= 7;
			continue;
		}
		if (id_taken(st, id))
			continue;
		if (!GROW(b->new_ids, b->n_new_ids, b->cap_new_ids))
			return -ENOMEM;
		b->new_ids[b->n_new_ids] = strdup(chain);
		if (!b->new_ids[b->n_new_ids] || id_bind(st, chain, id)) {
			free(b->new_ids[b->n_new_ids]);
			return -ENOMEM;
		}
		b->n_new_ids++;
		st->id_low = id + 1;
		return (int32_t)id;
	}
	return -ENOSPC;
}

/* A failed batch: ids given to chains that did not come to exist are free again. */
static void ids_rollback(struct nft_state *st)
{
	struct batch *b = &st->b;

	for (size_t i = 0; i < b->n_new_ids; i++) {
		int32_t given = (int32_t)((uintptr_t)hashmap_get(st->ids, b->new_ids[i]) - 1);
		char id[NFT_NAME_MAX + 4];
		struct obj *o;

		snprintf(id, sizeof(id), "c/%s", b->new_ids[i]);
		o = hashmap_get(st->objs, id);
		if (!o || o->ng_id != given)
			id_release(st, b->new_ids[i], given);
	}
}

/* "endpoints-<proto>-<shard>" -> shard, or -1 */
static int64_t ep_map_shard(const char *map)
{
	const char *dash = strrchr(map, '-');
	char *end;
	unsigned long v;

	if (!is_ep_map(map) || !dash)
		return -1;
	v = strtoul(dash + 1, &end, 10);
	return *end || end == dash + 1 || v >= NFT_EP_MAX_IDS / NFT_EP_SHARD ? -1 : (int64_t)v;
}

/* ---------------------------------------------------------------- hairpin */

/* One more (or one fewer) dispatch range refers to the endpoint address in data. */
static int hp_touch(struct nft_state *st, const uint8_t *data, intptr_t d)
{
	char k[16];

	if (!st->b.hp_delta && !(st->b.hp_delta = hashmap_new()))
		return -ENOMEM;
	addr_key(k, data);
	return cnt_set(st->b.hp_delta, k, cnt_get(st->b.hp_delta, k) + d);
}

/* Add or delete "a . a" where the kernel's set and the references (with this batch's) differ. */
static int hp_check(struct nft_state *st, const char *addr)
{
	intptr_t want = cnt_get(st->hp_want, addr) + cnt_get(st->b.hp_delta, addr);
	bool have = cnt_get(st->hp_have, addr) > 0;
	struct in_addr a;
	uint8_t key[8];

	if ((want > 0) == have)
		return 0;
	a.s_addr = htonl((uint32_t)strtoul(addr, NULL, 16));
	return agg_key(st, S_HAIRPIN, want > 0, key, nk_addr_pair(key, a));
}

static int hp_check_delta(const char *addr, void *value, void *ctx)
{
	(void)value;
	return hp_check(ctx, addr);
}

/* after adopt: the referenced addresses the batch did not touch */
static int hp_check_want(const char *addr, void *value, void *ctx)
{
	struct nft_state *st = ctx;

	(void)value;
	return st->b.hp_delta && hashmap_get(st->b.hp_delta, addr) ? 0 : hp_check(st, addr);
}

/* after adopt: what the kernel holds and nothing refers to */
static int hp_check_have(const char *addr, void *value, void *ctx)
{
	struct nft_state *st = ctx;

	(void)value;
	if ((st->b.hp_delta && hashmap_get(st->b.hp_delta, addr)) || hashmap_get(st->hp_want, addr))
		return 0;
	return hp_check(st, addr);
}

/* Queue the hairpin set's changes for this batch (all of it once after adopt). */
static int hp_emit(struct nft_state *st)
{
	int ret = 0;

	if (st->b.hp_delta)
		ret = hashmap_foreach(st->b.hp_delta, hp_check_delta, st);
	if (!ret && st->hp_dirty)
		ret = hashmap_foreach(st->hp_want, hp_check_want, st) ?:
		      hashmap_foreach(st->hp_have, hp_check_have, st);
	return ret;
}

static int hp_apply_one(const char *addr, void *value, void *ctx)
{
	struct nft_state *st = ctx;
	intptr_t want = cnt_get(st->hp_want, addr) + (intptr_t)value - CNT_BIAS;

	if (cnt_set(st->hp_want, addr, want) || cnt_set(st->hp_have, addr, want > 0 ? 1 : 0))
		st->hp_dirty = true; /* out of memory: compare everything next time */
	return 0;
}

static int hp_copy_one(const char *addr, void *value, void *ctx)
{
	(void)value;
	return cnt_set(ctx, addr, 1);
}

/* The batch is in the kernel: the references and the set now match for what it touched. */
static void hp_apply(struct nft_state *st, bool was_dirty)
{
	if (st->b.hp_delta)
		hashmap_foreach(st->b.hp_delta, hp_apply_one, st);
	if (was_dirty) {
		/* every address was checked: the kernel's set is what the references want */
		hashmap_free(st->hp_have);
		st->hp_have = hashmap_new();
		st->hp_dirty = st->hp_dirty || !st->hp_have ||
			       hashmap_foreach(st->hp_want, hp_copy_one, st->hp_have);
	}
}

/* ---------------------------------------------------------------- diff + emit */

static int emit_chain_rules(struct nft_state *st, struct want_chain *c, uint64_t hash)
{
	char comment[32];
	int ret = 0;

	snprintf(comment, sizeof(comment), "berth:%016" PRIx64, hash);
	for (size_t i = 0; i < c->n_rules && !ret; i++) {
		struct nlmsghdr *nlh;

		if (i == 0 && nr_comment(c->rules[i], comment))
			return -ENOMEM;
		nlh = mb_begin(&st->b, P_RULE, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, 16384);
		if (!nlh)
			return -ENOMEM;
		nftnl_rule_nlmsg_build_payload(nlh, c->rules[i]);
		ret = mb_end(&st->b, P_RULE, nlh, "add rule to", c->name);
		st->b.st.rules_added++;
	}
	return ret;
}

static int emit_chain_map(struct nft_state *st, struct want_chain *c)
{
	struct nftnl_set *s = ns_new(st->table, c->name, NFT_MAP_NUMGEN, (uint32_t)c->map_n, NULL);
	int ret;

	if (!s)
		return -ENOMEM;
	ret = emit_newset(st, s);
	for (size_t i = 0; i < c->map_n && !ret; i++) {
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		uint8_t key[4];

		if (!e) {
			ret = -ENOMEM;
			break;
		}
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)nk_u32(key, (uint32_t)i));
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
		nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, c->map_targets[i]);
		nftnl_set_elem_add(s, e);
	}
	if (!ret)
		ret = emit_elems(st, P_NEWSET, NFT_MSG_NEWSETELEM, s, c->map_n);
	nfree_set_free(s);
	return ret;
}

static int emit_newchain(struct nft_state *st, struct want_chain *c)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!ch)
		return -ENOMEM;
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, NFPROTO_IPV4);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, st->table);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c->name);
	if (c->base) {
		nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, c->type);
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, c->hook);
		nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c->prio);
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = mb_begin(&st->b, P_NEWCHAIN, NFT_MSG_NEWCHAIN, NLM_F_CREATE, 4096);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, ch);
		ret = mb_end(&st->b, P_NEWCHAIN, nlh, "add chain", c->name);
	}
	nfree_chain_free(ch);
	return ret;
}

/* Delete an element of the record from its map. */
static int remove_elem(struct nft_state *st, const struct obj *o)
{
	return agg_key(st, o->name, false, o->key, o->klen);
}

/* Add (or delete) one dispatch range, and count its endpoint for the hairpin set. */
static int range_op(struct nft_state *st, const char *map, const struct range *r, bool add)
{
	uint8_t key[4], kend[4];
	int ret;

	nk_be32(key, r->start);
	nk_be32(kend, r->end);
	ret = agg_range(st, map, add, key, kend, r->data, sizeof(r->data));
	return ret ? ret : hp_touch(st, r->data, add ? 1 : -1);
}

static int remove_ranges(struct nft_state *st, const struct obj *o)
{
	int ret = 0;

	for (size_t i = 0; i < o->n_ranges && !ret; i++)
		ret = range_op(st, o->name, &o->ranges[i], false);
	return ret;
}

/* Remove an object of the record (it is not wanted any more). */
static int emit_remove(struct nft_state *st, const char *id, const struct obj *o)
{
	int ret = 0;

	switch (o->kind) {
	case OBJ_CHAIN:
		ret = emit_flush(st, o->name);
		if (!ret && o->has_map)
			ret = emit_delset(st, o->name);
		if (!ret)
			ret = emit_chain_op(st, P_DELCHAIN, NFT_MSG_DELCHAIN, o->name, "delete chain");
		st->b.st.chains_deleted++;
		break;
	case OBJ_SET:
		ret = emit_delset(st, o->name);
		break;
	case OBJ_ELEM:
		ret = remove_elem(st, o);
		break;
	case OBJ_RANGES:
		ret = remove_ranges(st, o);
		break;
	}
	return ret ? ret : journal(&st->b, id, NULL);
}

struct idset {
	struct hashmap *m;
};

static int reconcile_chain(struct nft_state *st, const char *owner, struct want_chain *c,
			   struct owned *ids)
{
	char id[NFT_NAME_MAX + 4];
	uint64_t h = chain_hash(st, c);
	struct obj *o, *n;
	int ret = 0;

	snprintf(id, sizeof(id), "c/%s", c->name);
	ids->ids[ids->n] = strdup(id);
	if (!ids->ids[ids->n++])
		return -ENOMEM;
	o = hashmap_get(st->objs, id);
	if (o && o->hash == h && o->kind == OBJ_CHAIN)
		return 0;
	if (o) {
		/* same chain, new content: rebuild its rules in place (it stays referenced) */
		ret = emit_flush(st, c->name);
		if (!ret && o->has_map)
			ret = emit_delset(st, c->name);
		st->b.st.chains_replaced++;
	} else {
		ret = emit_newchain(st, c);
		st->b.st.chains_added++;
	}
	if (!ret && c->map_n)
		ret = emit_chain_map(st, c);
	if (!ret)
		ret = emit_chain_rules(st, c, h);
	if (ret)
		return ret;
	n = obj_new(OBJ_CHAIN, owner, c->name, h);
	if (!n)
		return -ENOMEM;
	n->has_map = c->map_n > 0;
	n->ng_id = c->ng_id;
	return journal(&st->b, id, n);
}

static int reconcile_set(struct nft_state *st, const char *owner, struct nftnl_set *s,
			 struct owned *ids)
{
	const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	char id[NFT_NAME_MAX + 4];
	uint64_t h = set_hash(s);
	struct obj *o, *n;
	int ret = 0;

	snprintf(id, sizeof(id), "s/%s", name);
	ids->ids[ids->n] = strdup(id);
	if (!ids->ids[ids->n++])
		return -ENOMEM;
	o = hashmap_get(st->objs, id);
	if (o && o->hash == h)
		return 0;
	if (o)
		ret = emit_delset(st, name); /* whoever refers to it changed too (chain salt) */
	if (!ret)
		ret = emit_newset(st, s);
	if (ret)
		return ret;
	n = obj_new(OBJ_SET, owner, name, h);
	return n ? journal(&st->b, id, n) : -ENOMEM;
}

static int reconcile_elem(struct nft_state *st, const char *owner, const struct want_elem *e,
			  struct owned *ids)
{
	char id[64];
	uint64_t h = elem_hash(e->map, e->key, e->klen, e->verdict, e->chain);
	struct obj *o, *n;
	int ret = 0;

	elem_id(id, sizeof(id), e->map, e->key, e->klen);
	ids->ids[ids->n] = strdup(id);
	if (!ids->ids[ids->n++])
		return -ENOMEM;
	o = hashmap_get(st->objs, id);
	if (o && o->hash == h)
		return 0;
	if (o)
		ret = remove_elem(st, o);
	if (!ret)
		ret = agg_elem(st, e->map, true,
			       &(struct elem_desc){ .key = e->key, .klen = e->klen, .verdict = e->verdict,
						    .chain = e->chain, .comment = e->comment });
	if (ret)
		return ret;
	n = obj_new(OBJ_ELEM, owner, e->map, h);
	if (!n)
		return -ENOMEM;
	memcpy(n->key, e->key, e->klen);
	n->klen = e->klen;
	return journal(&st->b, id, n);
}

static bool range_eq(const struct range *a, const struct range *b)
{
	return a->start == b->start && a->end == b->end && !memcmp(a->data, b->data, sizeof(a->data));
}

/*
 * A policy chain's dispatch ranges: only the ranges that differ are
 * deleted and added (both lists are sorted by start). An endpoint moved
 * is one range out and one in, a changed count the chain's ranges only.
 */
static int diff_ranges(struct nft_state *st, const struct obj *o, const struct want_chain *c)
{
	size_t i = 0, k = 0, n_old = o && !strcmp(o->name, c->ep_map) ? o->n_ranges : 0;
	int ret = 0;

	if (o && !n_old)
		ret = remove_ranges(st, o); /* another map (a new id): all out */
	while (!ret && (i < n_old || k < c->n_ranges)) {
		const struct range *a = i < n_old ? &o->ranges[i] : NULL;
		const struct range *b = k < c->n_ranges ? &c->ranges[k] : NULL;

		if (a && b && range_eq(a, b)) {
			i++;
			k++;
		} else if (a && (!b || a->start <= b->start)) {
			ret = range_op(st, o->name, a, false);
			i++;
		} else {
			ret = range_op(st, c->ep_map, b, true);
			k++;
		}
	}
	return ret;
}

static int reconcile_ranges(struct nft_state *st, const char *owner, const struct want_chain *c,
			    struct owned *ids)
{
	char id[NFT_NAME_MAX + 4];
	uint64_t h = ranges_hash(c->ep_map, c->ranges, c->n_ranges);
	struct obj *o, *n;
	int ret;

	snprintf(id, sizeof(id), "r/%s", c->name);
	ids->ids[ids->n] = strdup(id);
	if (!ids->ids[ids->n++])
		return -ENOMEM;
	o = hashmap_get(st->objs, id);
	if (o && o->hash == h)
		return 0;
	ret = diff_ranges(st, o, c);
	if (ret)
		return ret;
	n = obj_new(OBJ_RANGES, owner, c->ep_map, h);
	if (n && c->n_ranges && !(n->ranges = malloc(c->n_ranges * sizeof(*n->ranges)))) {
		obj_free(n);
		n = NULL;
	}
	if (!n)
		return -ENOMEM;
	if (c->n_ranges)
		memcpy(n->ranges, c->ranges, c->n_ranges * sizeof(*n->ranges));
	n->n_ranges = c->n_ranges;
	return journal(&st->b, id, n);
}

/* Make the kernel hold exactly w for owner; only differences are emitted. */
static int reconcile(struct nft_state *st, const char *owner, struct want *w, bool *changed)
{
	struct owned *old = hashmap_get(st->owners, owner);
	struct jowner *jo;
	struct owned ids = { 0 };
	struct hashmap *keep = NULL;
	size_t before = batch_msgs(&st->b) + st->b.nj;
	int ret = 0;

	if (w->err)
		return w->err;
	ids.ids = calloc(2 * w->n_chains + w->n_sets + w->n_elems + 1, sizeof(char *));
	if (!ids.ids)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_chains && !ret; i++) {
		ret = reconcile_chain(st, owner, w->chains[i], &ids);
		if (!ret && w->chains[i]->ng_id >= 0)
			ret = reconcile_ranges(st, owner, w->chains[i], &ids);
	}
	for (size_t i = 0; i < w->n_sets && !ret; i++)
		ret = reconcile_set(st, owner, w->sets[i].set, &ids);
	for (size_t i = 0; i < w->n_elems && !ret; i++)
		ret = reconcile_elem(st, owner, &w->elems[i], &ids);
	if (ret)
		goto out_ids;
	if (old && old->n) {
		keep = hashmap_new();
		if (!keep) {
			ret = -ENOMEM;
			goto out_ids;
		}
		for (size_t i = 0; i < ids.n && !ret; i++)
			ret = map_put(keep, ids.ids[i], (void *)1);
		for (size_t i = 0; i < old->n && !ret; i++) {
			struct obj *o = hashmap_get(st->objs, old->ids[i]);

			if (o && !hashmap_get(keep, old->ids[i]))
				ret = emit_remove(st, old->ids[i], o);
		}
		if (ret)
			goto out_ids;
	}
	if (!GROW(st->b.jo, st->b.njo, st->b.capjo)) {
		ret = -ENOMEM;
		goto out_ids;
	}
	jo = &st->b.jo[st->b.njo];
	jo->owner = strdup(owner);
	if (!jo->owner) {
		ret = -ENOMEM;
		goto out_ids;
	}
	jo->list = ids;
	st->b.njo++;
	*changed = batch_msgs(&st->b) + st->b.nj != before;
	hashmap_free(keep);
	return 0;
out_ids:
	hashmap_free(keep);
	owned_clear(&ids);
	return ret;
}

/* ---------------------------------------------------------------- building */

static void rule_or_fail(struct want *w, int ret)
{
	if (ret && !w->err)
		w->err = ret;
}

/* one rule: jump/goto/verdict after a matcher chosen by the caller */
#define RULE(w, st, c, body)                                                           \
	do {                                                                           \
		struct nftnl_rule *r_ = want_rule((w), (st)->table, (c));              \
		if (r_)                                                                \
			rule_or_fail((w), (body));                                     \
	} while (0)

static void build_scaffold(struct nft_state *st, struct want *w)
{
	const struct proxy_backend_config *cfg = &st->cfg;
	const char *T = st->table;
	struct want_chain *c;
	bool npset = cfg->n_nodeport_ips > 0;

	/* filter chains see pre-DNAT addresses (dstnat - 10), as kube-proxy's */
	struct want_chain *fpre = want_base(w, "filter-prerouting", "filter", NF_INET_PRE_ROUTING, -110);
	struct want_chain *fin = want_base(w, "filter-input", "filter", NF_INET_LOCAL_IN, -110);
	struct want_chain *ffwd = want_base(w, "filter-forward", "filter", NF_INET_FORWARD, -110);
	struct want_chain *fout = want_base(w, "filter-output", "filter", NF_INET_LOCAL_OUT, -110);
	/* The node's own traffic is DNATed in nat-output: check ClusterIP ports after that. */
	struct want_chain *fout_post = want_base(w, "filter-output-post-dnat", "filter",
						 NF_INET_LOCAL_OUT, -90);
	struct want_chain *npre = want_base(w, "nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100);
	struct want_chain *nout = want_base(w, "nat-output", "nat", NF_INET_LOCAL_OUT, -100);
	struct want_chain *npost = want_base(w, "nat-postrouting", "nat", NF_INET_POST_ROUTING, 100);

	want_set(w, ns_new(T, S_CLUSTER_IPS, NFT_SET_ADDR, 0, "Active ClusterIPs"));
	if (npset)
		want_set(w, ns_new(T, S_NODEPORT_IPS, NFT_SET_ADDR, 0, "IPs that accept NodePort traffic"));
	want_set(w, ns_new(T, M_NOEP_SERVICES, NFT_MAP_ADDR_PROTO_PORT, 0,
			   "vmap to drop or reject packets to services with no endpoints"));
	want_set(w, ns_new(T, M_NOEP_NODEPORTS, NFT_MAP_PROTO_PORT, 0,
			   "vmap to drop or reject packets to service nodeports with no endpoints"));
	want_set(w, ns_new(T, M_FIREWALL_IPS, NFT_MAP_ADDR_PROTO_PORT, 0,
			   "destinations that are subject to LoadBalancerSourceRanges"));
	want_set(w, ns_new(T, M_SERVICE_IPS, NFT_MAP_ADDR_PROTO_PORT, 0,
			   "ClusterIP, ExternalIP and LoadBalancer IP traffic"));
	want_set(w, ns_new(T, M_SERVICE_NODEPORTS, NFT_MAP_PROTO_PORT, 0, "NodePort traffic"));
	want_set(w, ns_new(T, S_HAIRPIN, NFT_SET_ADDR_PAIR, 0, "endpoints reaching themselves"));
	for (size_t i = 0; i < cfg->n_nodeport_ips; i++) {
		uint8_t key[4];

		want_elem(w, S_NODEPORT_IPS, key, nk_addr(key, cfg->nodeport_ips[i]), INT32_MIN, NULL, NULL);
	}

	/* helper chains first: the base chains' rules jump to them */
	c = want_chain(w, CH_MARK_MASQ);
	RULE(w, st, c, nr_mark_or(r_, st->mark));
	c = want_chain(w, CH_MASQUERADING);
	/*
	 * hairpin: a pod that reaches itself through a service must see the
	 * node as its peer. kube-proxy marks this in each endpoint's chain
	 * (ip saddr <endpoint>); with endpoints chosen by a map, the test is
	 * here, after DNAT: source == destination == a dispatched endpoint.
	 */
	RULE(w, st, c, nr_match_hairpin(r_, S_HAIRPIN) ?: nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
	RULE(w, st, c, nr_match_mark_clear(r_, st->mark) ?: nr_verdict(r_, NFT_RETURN, NULL));
	RULE(w, st, c, nr_mark_xor(r_, st->mark));
	RULE(w, st, c, nr_masquerade(r_, NF_NAT_RANGE_PROTO_RANDOM_FULLY));
	if (cfg->n_pod_cidrs > 1) {
		c = want_chain(w, CH_MASQ_NON_POD);
		for (size_t i = 0; i < cfg->n_pod_cidrs; i++)
			RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, cfg->pod_cidrs[i], false) ?:
				       nr_verdict(r_, NFT_RETURN, NULL));
		RULE(w, st, c, nr_verdict(r_, NFT_GOTO, CH_MARK_MASQ));
	}
	c = want_chain(w, CH_REJECT);
	RULE(w, st, c, nr_reject_tcp_reset(r_));
	RULE(w, st, c, nr_reject_icmp(r_));

	c = want_chain(w, CH_ENDPOINTS_CHECK);
	RULE(w, st, c, nr_vmap_addr_proto_port(r_, M_NOEP_SERVICES));
	if (npset)
		RULE(w, st, c, nr_match_addr_in_set(r_, NFT_DADDR, S_NODEPORT_IPS) ?:
			       nr_vmap_proto_port(r_, M_NOEP_NODEPORTS));
	else
		RULE(w, st, c, nr_match_fib_local(r_, true) ?: nr_match_not_loopback(r_) ?:
			       nr_vmap_proto_port(r_, M_NOEP_NODEPORTS));
	c = want_chain(w, CH_FIREWALL_CHECK);
	RULE(w, st, c, nr_vmap_addr_proto_port(r_, M_FIREWALL_IPS));
	/* a live ClusterIP on a wrong port is rejected; the rest of the service CIDR dropped */
	c = want_chain(w, CH_CLUSTER_IPS_CHECK);
	RULE(w, st, c, nr_match_addr_in_set(r_, NFT_DADDR, S_CLUSTER_IPS) ?:
		       nr_verdict(r_, NFT_GOTO, CH_REJECT));
	for (size_t i = 0; i < cfg->n_service_cidrs; i++)
		RULE(w, st, c, nr_match_cidr(r_, NFT_DADDR, cfg->service_cidrs[i], false) ?:
			       nr_verdict(r_, NF_DROP, NULL));
	c = want_chain(w, CH_SERVICES);
	RULE(w, st, c, nr_vmap_addr_proto_port(r_, M_SERVICE_IPS));
	if (npset)
		RULE(w, st, c, nr_match_addr_in_set(r_, NFT_DADDR, S_NODEPORT_IPS) ?:
			       nr_vmap_proto_port(r_, M_SERVICE_NODEPORTS));
	else
		RULE(w, st, c, nr_match_fib_local(r_, true) ?: nr_match_not_loopback(r_) ?:
			       nr_vmap_proto_port(r_, M_SERVICE_NODEPORTS));

	/* reject is valid only in input/forward/output: endpoints-check is not in prerouting */
	RULE(w, st, fin, nr_match_ct_new(r_) ?: nr_verdict(r_, NFT_JUMP, CH_ENDPOINTS_CHECK));
	RULE(w, st, ffwd, nr_match_ct_new(r_) ?: nr_verdict(r_, NFT_JUMP, CH_ENDPOINTS_CHECK));
	RULE(w, st, ffwd, nr_match_ct_new(r_) ?: nr_verdict(r_, NFT_JUMP, CH_CLUSTER_IPS_CHECK));
	RULE(w, st, fout, nr_match_ct_new(r_) ?: nr_verdict(r_, NFT_JUMP, CH_ENDPOINTS_CHECK));
	RULE(w, st, fout_post, nr_match_ct_new(r_) ?: nr_verdict(r_, NFT_JUMP, CH_CLUSTER_IPS_CHECK));
	RULE(w, st, fout, nr_match_ct_new(r_) ?: nr_verdict(r_, NFT_JUMP, CH_FIREWALL_CHECK));
	RULE(w, st, fpre, nr_match_ct_new(r_) ?: nr_verdict(r_, NFT_JUMP, CH_FIREWALL_CHECK));
	RULE(w, st, npre, nr_verdict(r_, NFT_JUMP, CH_SERVICES));
	RULE(w, st, nout, nr_verdict(r_, NFT_JUMP, CH_SERVICES));
	RULE(w, st, npost, nr_verdict(r_, NFT_JUMP, CH_MASQUERADING));
}

static void build_snat(struct nft_state *st, struct want *w)
{
	const struct proxy_snat_config *s = &st->cfg.snat;
	struct want_chain *c;

	if (!s->enabled || !s->n_pod_cidrs)
		return;
	c = want_base(w, SNAT_CHAIN, "nat", NF_INET_POST_ROUTING, 100);
	for (size_t i = 0; i < s->n_keep; i++)
		RULE(w, st, c, nr_match_cidr(r_, NFT_DADDR, s->keep[i], false) ?:
			       nr_verdict(r_, NFT_RETURN, NULL));
	for (size_t i = 0; i < s->n_pod_cidrs; i++)
		RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, s->pod_cidrs[i], false) ?:
			       (s->to.s_addr ? nr_snat(r_, s->to, NF_NAT_RANGE_PROTO_RANDOM_FULLY)
					     : nr_masquerade(r_, NF_NAT_RANGE_PROTO_RANDOM_FULLY)));
}

static bool eps_equal(const struct plan_endpoint *a, size_t na, const struct plan_endpoint *b,
		      size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].addr.s_addr != b[i].addr.s_addr || a[i].port != b[i].port)
			return false;
	return true;
}

static void ep_names(const char *base, const struct plan_endpoint *ep, char chain[NFT_NAME_MAX],
		     char aff[NFT_NAME_MAX])
{
	char epbase[NFT_NAME_MAX], ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ep->addr, ip, sizeof(ip));
	snprintf(epbase, sizeof(epbase), "%s__%s/%u", base, ip, ep->port);
	nft_hashed_name(chain, "endpoint-", epbase);
	nft_hashed_name(aff, "affinity-", epbase);
}

/*
 * A port dispatches through the global endpoint maps unless it needs
 * per-endpoint chains: session affinity records the chosen endpoint per
 * client (an update in the endpoint's chain), and a map range per endpoint
 * needs at least one numgen value each.
 */
static bool chains_per_endpoint(const struct plan_port *pp)
{
	return pp->affinity_timeout_s || pp->n_cluster_eps > NFT_EP_SLOTS ||
	       pp->n_external_eps > NFT_EP_SLOTS;
}

/*
 * The dispatch map of id's shard for the protocol, created in this batch
 * when neither the record nor the batch has it. It stays when it empties:
 * ids are reused lowest first, so a shard's map is needed again soon.
 */
static int dispatch_map(struct nft_state *st, enum l4_proto p, int32_t id, char out[NFT_NAME_MAX])
{
	char oid[NFT_NAME_MAX + 4];
	struct nftnl_set *set;
	struct obj *o;
	int ret;

	snprintf(out, NFT_NAME_MAX, M_EP_PREFIX "%s-%u", nft_proto_name(p), (uint32_t)id / NFT_EP_SHARD);
	snprintf(oid, sizeof(oid), "s/%s", out);
	if (hashmap_get(st->objs, oid) || (st->b.new_maps && hashmap_get(st->b.new_maps, out)))
		return 0;
	if (!st->b.new_maps && !(st->b.new_maps = hashmap_new()))
		return -ENOMEM;
	set = ns_new(st->table, out, NFT_MAP_ENDPOINTS, nft_ipproto(p), NULL);
	if (!set)
		return -ENOMEM;
	o = obj_new(OBJ_SET, OWNER_DISPATCH, out, set_hash(set));
	ret = o ? emit_newset(st, set) : -ENOMEM;
	nftnl_set_free(set);
	if (!ret)
		ret = map_put(st->b.new_maps, out, (void *)1);
	if (!ret)
		return journal(&st->b, oid, o);
	obj_free(o);
	return ret;
}

/*
 * dnat ip to numgen random mod NFT_EP_SLOTS offset <id's first> map
 * @endpoints-<proto>-<shard>, the chain's slots split into one range per endpoint. An endpoint replaced,
 * added or removed changes map elements only: elements that carry no verdict
 * need no validation of the table's chain graph at commit, which a new rule
 * or a jump/goto element would (a walk of every chain, ~0.1 s at 10k services).
 */
static void build_dispatch(struct nft_state *st, struct want *w, struct want_chain *c,
			   const struct plan_port *pp, const struct plan_endpoint *eps, size_t n)
{
	int32_t id = id_for(st, c->name);
	char map[NFT_NAME_MAX];
	uint32_t base;
	int ret = id < 0 ? id : dispatch_map(st, pp->proto, id, map);

	if (ret) {
		w->err = ret;
		return;
	}
	c->ng_id = id;
	memcpy(c->ep_map, map, strnlen(map, sizeof(c->ep_map) - 1));
	base = (uint32_t)id % NFT_EP_SHARD * NFT_EP_SLOTS;
	RULE(w, st, c, nr_dnat_numgen_map(r_, nft_ipproto(pp->proto), NFT_EP_SLOTS, base, map));
	c->ranges = calloc(n ? n : 1, sizeof(*c->ranges));
	if (!c->ranges) {
		w->err = -ENOMEM;
		return;
	}
	c->n_ranges = n;
	for (size_t i = 0; i < n; i++) {
		struct range *r = &c->ranges[i];

		r->start = base + (uint32_t)((uint64_t)i * NFT_EP_SLOTS / n);
		r->end = base + (uint32_t)((uint64_t)(i + 1) * NFT_EP_SLOTS / n);
		nd_addr_port(r->data, eps[i].addr, eps[i].port);
	}
}

/* The "service-"/"local-" chain: masquerade, affinity, then the choice of an endpoint. */
static void build_policy_chain(struct nft_state *st, struct want *w, const char *name,
			       const char *base, const struct plan_port *pp,
			       const struct plan_endpoint *eps, size_t n, bool cluster_ip_masq)
{
	const struct proxy_backend_config *cfg = &st->cfg;
	struct want_chain *c = want_chain(w, name);
	char chain[NFT_NAME_MAX], aff[NFT_NAME_MAX];

	if (!c)
		return;
	if (cluster_ip_masq && (cfg->masquerade_all || cfg->n_pod_cidrs)) {
		/* kube-proxy: masquerade ClusterIP traffic that comes from outside the pod network */
		for (size_t f = 0; f < pp->n_frontends; f++) {
			const struct plan_frontend *fe = &pp->frontends[f];
			struct ipv4_cidr host = { .addr = fe->addr, .len = 32 };

			if (fe->kind != FE_CLUSTER_IP)
				continue;
			RULE(w, st, c, nr_match_cidr(r_, NFT_DADDR, host, false) ?:
				       nr_match_dport(r_, nft_ipproto(pp->proto), fe->port) ?:
				       (cfg->masquerade_all
						? nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ)
						: cfg->n_pod_cidrs == 1
						? nr_match_cidr(r_, NFT_SADDR, cfg->pod_cidrs[0], true) ?:
							  nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ)
						: nr_verdict(r_, NFT_JUMP, CH_MASQ_NON_POD)));
		}
	}
	if (!chains_per_endpoint(pp)) {
		build_dispatch(st, w, c, pp, eps, n);
		return;
	}
	if (pp->affinity_timeout_s) {
		for (size_t i = 0; i < n; i++) {
			ep_names(base, &eps[i], chain, aff);
			RULE(w, st, c, nr_match_addr_in_set(r_, NFT_SADDR, aff) ?:
				       nr_verdict(r_, NFT_GOTO, chain));
		}
		c->salt = pp->affinity_timeout_s;
	}
	c->map_targets = calloc(n, sizeof(*c->map_targets));
	if (!c->map_targets) {
		w->err = -ENOMEM;
		return;
	}
	c->map_n = n;
	for (size_t i = 0; i < n; i++)
		ep_names(base, &eps[i], c->map_targets[i], aff);
	RULE(w, st, c, nr_vmap_numgen(r_, (uint32_t)n, name));
}

static void build_endpoint(struct nft_state *st, struct want *w, const char *base,
			   const struct plan_port *pp, const struct plan_endpoint *ep)
{
	char chain[NFT_NAME_MAX], aff[NFT_NAME_MAX];
	struct ipv4_cidr host = { .addr = ep->addr, .len = 32 };
	struct want_chain *c;

	ep_names(base, ep, chain, aff);
	for (size_t i = 0; i < w->n_chains; i++)
		if (!strcmp(w->chains[i]->name, chain))
			return; /* in both the cluster and the external list */
	c = want_chain(w, chain);
	/* hairpin: a pod reaching itself through the service must see the node as peer */
	RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, host, false) ?:
		       nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
	if (pp->affinity_timeout_s) {
		want_set(w, ns_new(st->table, aff, NFT_SET_ADDR_TIMEOUT, pp->affinity_timeout_s, NULL));
		RULE(w, st, c, nr_update_saddr(r_, aff));
		if (c)
			c->salt = pp->affinity_timeout_s;
	}
	RULE(w, st, c, nr_dnat(r_, nft_ipproto(pp->proto), ep->addr, ep->port));
}

static void build_port(struct nft_state *st, struct want *w, const struct plan_service *ps,
		       const struct plan_port *pp)
{
	const struct proxy_backend_config *cfg = &st->cfg;
	char base[NFT_NAME_MAX], svc[NFT_NAME_MAX], local[NFT_NAME_MAX], ext[NFT_NAME_MAX],
		fw[NFT_NAME_MAX];
	const char *policy = NULL; /* the chain external traffic ends up in */
	bool has_ext_fe = false, has_lb_fw = false, has_ext_chain = false;
	uint8_t proto = nft_ipproto(pp->proto);
	size_t ncl = pp->n_cluster_eps, nex = pp->n_external_eps;
	struct want_chain *c;

	snprintf(base, sizeof(base), "%s/%s/%s/%s", ps->ns, ps->name, nft_proto_name(pp->proto),
		 pp->name ? pp->name : "");
	nft_hashed_name(svc, "service-", base);
	nft_hashed_name(local, "local-", base);
	nft_hashed_name(ext, "external-", base);
	nft_hashed_name(fw, "firewall-", base);

	for (size_t f = 0; f < pp->n_frontends; f++) {
		has_ext_fe |= pp->frontends[f].external;
		has_lb_fw |= pp->frontends[f].kind == FE_LOAD_BALANCER && pp->n_source_ranges;
	}
	for (size_t i = 0; chains_per_endpoint(pp) && i < ncl; i++)
		build_endpoint(st, w, base, pp, &pp->cluster_eps[i]);
	for (size_t i = 0; chains_per_endpoint(pp) && i < nex; i++)
		build_endpoint(st, w, base, pp, &pp->external_eps[i]);
	if (ncl)
		build_policy_chain(st, w, svc, base, pp, pp->cluster_eps, ncl, true);
	if (nex) {
		if (ncl && eps_equal(pp->cluster_eps, ncl, pp->external_eps, nex)) {
			policy = svc;
		} else {
			build_policy_chain(st, w, local, base, pp, pp->external_eps, nex, false);
			policy = local;
		}
	}
	if (has_ext_fe && (ncl || nex)) {
		bool masq = !pp->external_local && pp->masquerade_external;

		/* only when it would hold a rule: a chain with no rule carries no hash */
		if (masq || nex || pp->external_local) {
			c = want_chain(w, ext);
			has_ext_chain = true;
			if (masq)
				RULE(w, st, c, nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
			if (pp->external_local) {
				/* pods and the node itself are not subject to the external policy */
				for (size_t i = 0; ncl && i < cfg->n_pod_cidrs; i++)
					RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, cfg->pod_cidrs[i], false) ?:
						       nr_verdict(r_, NFT_GOTO, svc));
				RULE(w, st, c, nr_match_fib_local(r_, false) ?:
					       nr_verdict(r_, NFT_JUMP, CH_MARK_MASQ));
				if (ncl)
					RULE(w, st, c, nr_match_fib_local(r_, false) ?:
						       nr_verdict(r_, NFT_GOTO, svc));
			}
			if (nex)
				RULE(w, st, c, nr_verdict(r_, NFT_GOTO, policy));
		}
	}
	if (has_lb_fw) {
		c = want_chain(w, fw);
		for (size_t i = 0; i < pp->n_source_ranges; i++)
			RULE(w, st, c, nr_match_cidr(r_, NFT_SADDR, pp->source_ranges[i], false) ?:
				       nr_verdict(r_, NFT_RETURN, NULL));
		RULE(w, st, c, nr_verdict(r_, NF_DROP, NULL));
	}

	for (size_t f = 0; f < pp->n_frontends; f++) {
		const struct plan_frontend *fe = &pp->frontends[f];
		bool np = fe->kind == FE_NODE_PORT;
		const char *map = np ? M_SERVICE_NODEPORTS : M_SERVICE_IPS;
		const char *noep = np ? M_NOEP_NODEPORTS : M_NOEP_SERVICES;
		uint8_t key[12];
		size_t klen = np ? nk_proto_port(key, proto, fe->port)
				 : nk_addr_proto_port(key, fe->addr, proto, fe->port);
		/*
		 * kube-proxy: no usable endpoint anywhere -> reject; endpoints exist but
		 * none this traffic may use (a Local policy, none on this node) -> drop.
		 */
		int noverdict = pp->has_endpoints ? NF_DROP : NFT_GOTO;

		if (fe->kind == FE_CLUSTER_IP) {
			uint8_t ak[4];
			char owner[NFT_NAME_MAX];

			snprintf(owner, sizeof(owner), "%s/%s", ps->ns, ps->name);
			want_elem(w, S_CLUSTER_IPS, ak, nk_addr(ak, fe->addr), INT32_MIN, NULL, owner);
		}
		if (!fe->external) {
			if (ncl)
				want_elem(w, map, key, klen, NFT_GOTO, svc, NULL);
			else
				want_elem(w, noep, key, klen, noverdict,
					  noverdict == NFT_GOTO ? CH_REJECT : NULL, base);
			continue;
		}
		if (has_ext_chain)
			want_elem(w, map, key, klen, NFT_GOTO, ext, NULL);
		if (!nex)
			want_elem(w, noep, key, klen, noverdict,
				  noverdict == NFT_GOTO ? CH_REJECT : NULL, base);
		if (fe->kind == FE_LOAD_BALANCER && has_lb_fw)
			want_elem(w, M_FIREWALL_IPS, key, klen, NFT_GOTO, fw, base);
	}
}

static void build_service(struct nft_state *st, struct want *w, const struct plan_service *ps)
{
	for (size_t i = 0; ps && i < ps->n_ports; i++)
		build_port(st, w, ps, &ps->ports[i]);
}

/* ---------------------------------------------------------------- commit */

static void stats_add(struct proxy_apply_stats *t, const struct proxy_apply_stats *s)
{
	t->batches += s->batches;
	t->messages += s->messages;
	t->chains_added += s->chains_added;
	t->chains_replaced += s->chains_replaced;
	t->chains_deleted += s->chains_deleted;
	t->sets_added += s->sets_added;
	t->sets_deleted += s->sets_deleted;
	t->elems_added += s->elems_added;
	t->elems_deleted += s->elems_deleted;
	t->rules_added += s->rules_added;
}

static void journal_apply(struct nft_state *st)
{
	struct batch *b = &st->b;

	for (size_t i = 0; i < b->nj; i++) {
		struct obj *old = NULL, *now = b->j[i].obj;

		if (now) {
			if (hashmap_put(st->objs, b->j[i].id, now, (void **)&old) == 0)
				b->j[i].obj = NULL;
		} else {
			old = hashmap_del(st->objs, b->j[i].id);
		}
		/* a chain that is gone, or dispatches no more, gives its id back */
		if (old && old->kind == OBJ_CHAIN && old->ng_id >= 0 && (!now || now->ng_id != old->ng_id))
			id_release(st, old->name, old->ng_id);
		obj_free(old);
	}
	for (size_t i = 0; i < b->njo; i++) {
		struct owned *l = hashmap_get(st->owners, b->jo[i].owner);

		if (!b->jo[i].list.n) {
			l = hashmap_del(st->owners, b->jo[i].owner);
			if (l) {
				owned_clear(l);
				free(l);
			}
			continue;
		}
		if (!l) {
			l = calloc(1, sizeof(*l));
			if (!l || map_put(st->owners, b->jo[i].owner, l)) {
				free(l);
				continue; /* out of memory: the next full apply rebuilds it */
			}
		}
		owned_clear(l);
		*l = b->jo[i].list;
		b->jo[i].list = (struct owned){ 0 };
	}
}

static int commit(struct nft_state *st, struct proxy_apply_stats *stats, char *err, size_t errlen)
{
	struct batch *b = &st->b;
	uint64_t begin[16], end[16]; /* BEGIN and END: aligned room for a header each */
	struct iovec iov[N_PHASES + 2];
	size_t n, niov = 0, failed;
	char kerr[512] = "";
	bool hp_was_dirty = st->hp_dirty;
	int ret;

	ret = hp_emit(st) ?: agg_flush(st);
	if (ret)
		goto out;
	n = batch_msgs(b);
	if (!n) {
		journal_apply(st); /* owner lists may still change (nothing to send) */
		st->hp_dirty = false;
		hp_apply(st, hp_was_dirty);
		goto out;
	}
	iov[niov++] = (struct iovec){ begin, NLMSG_ALIGN(nftnl_batch_begin((char *)begin, 0)->nlmsg_len) };
	for (int p = 0; p < N_PHASES; p++) {
		if (b->ph[p].len) /* a phase never used has no buffer */
			iov[niov++] = (struct iovec){ b->ph[p].data, b->ph[p].len };
	}
	iov[niov++] = (struct iovec){ end, NLMSG_ALIGN(nftnl_batch_end((char *)end, 0)->nlmsg_len) };
	ret = nft_sock_batch(st->sock, iov, niov, n, &failed, kerr, sizeof(kerr));
	if (ret) {
		const char *what = "the batch";

		for (int p = 0; p < N_PHASES && failed != SIZE_MAX; p++) {
			if (failed < b->ph[p].n) {
				what = b->ph[p].desc[failed];
				break;
			}
			failed -= b->ph[p].n;
		}
		fmt_err(err, errlen, "nftables: %s: %s%s%s", what, strerror(-ret), kerr[0] ? ": " : "",
			kerr);
		goto out;
	}
	if (b->new_table)
		st->table_exists = true;
	b->st.batches = 1;
	b->st.messages = n;
	stats_add(stats, &b->st);
	journal_apply(st);
	st->hp_dirty = false;
	hp_apply(st, hp_was_dirty);
out:
	if (ret)
		ids_rollback(st);
	batch_reset(b);
	return ret;
}

/* ---------------------------------------------------------------- ops */

static int owner_step(struct nft_state *st, const char *owner, struct want *w,
		      struct proxy_apply_stats *stats, char *err, size_t errlen)
{
	bool changed = false;
	int ret;

	if (w->err) {
		fmt_err(err, errlen, "nftables: building %s: %s", owner, strerror(-w->err));
		return w->err;
	}
	if (!st->table_exists && !st->b.new_table) {
		ret = emit_table(st);
		if (ret)
			return ret;
	}
	ret = reconcile(st, owner, w, &changed);
	if (ret) {
		fmt_err(err, errlen, "nftables: %s: %s", owner, strerror(-ret));
		return ret;
	}
	if (changed)
		stats->services_changed++;
	else
		stats->services_unchanged++;
	if (batch_msgs(&st->b) >= st->max_msgs)
		return commit(st, stats, err, errlen);
	return 0;
}

struct prune_ctx {
	struct hashmap *named;
	char **list;
	size_t n, cap;
};

static int collect_unnamed(const char *key, void *value, void *ctx)
{
	struct prune_ctx *p = ctx;

	(void)value;
	if (!strcmp(key, OWNER_SCAFFOLD) || !strcmp(key, OWNER_SNAT) || !strcmp(key, OWNER_DISPATCH) ||
	    hashmap_get(p->named, key))
		return 0;
	if (!GROW(p->list, p->n, p->cap))
		return -ENOMEM;
	p->list[p->n] = strdup(key);
	return p->list[p->n++] ? 0 : -ENOMEM;
}

static int nft_adopt(void *state, struct proxy_apply_stats *stats, char *err, size_t errlen);

static int nft_apply(void *state, const struct proxy_change *changes, size_t n, unsigned flags,
		     struct proxy_apply_stats *stats, char *err, size_t errlen)
{
	struct nft_state *st = state;
	struct proxy_apply_stats local = { 0 };
	struct prune_ctx prune = { 0 };
	struct timespec t0, t1;
	struct want w = { 0 };
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!stats)
		stats = &local;
	*stats = (struct proxy_apply_stats){ 0 };
	if (!st->adopted) {
		/* never append to a table we have not read: rules would be doubled */
		ret = nft_adopt(st, NULL, err, errlen);
		if (ret)
			goto out;
	}
	batch_reset(&st->b);
	if (!st->scaffold_done) {
		if (st->cfg.services)
			build_scaffold(st, &w);
		ret = owner_step(st, OWNER_SCAFFOLD, &w, stats, err, errlen);
		want_clear(&w);
		if (ret)
			goto out;
	}
	if (!st->snat_done) {
		build_snat(st, &w);
		ret = owner_step(st, OWNER_SNAT, &w, stats, err, errlen);
		want_clear(&w);
		if (ret)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (st->cfg.services)
			build_service(st, &w, changes[i].new);
		ret = owner_step(st, changes[i].key, &w, stats, err, errlen);
		want_clear(&w);
		if (ret)
			goto out;
	}
	if (flags & PROXY_APPLY_FULL) {
		prune.named = hashmap_new();
		ret = prune.named ? 0 : -ENOMEM;
		for (size_t i = 0; i < n && !ret; i++)
			ret = map_put(prune.named, changes[i].key, (void *)1);
		if (!ret)
			ret = hashmap_foreach(st->owners, collect_unnamed, &prune);
		for (size_t i = 0; i < prune.n && !ret; i++)
			ret = owner_step(st, prune.list[i], &w, stats, err, errlen);
		if (ret)
			goto out;
	}
	ret = commit(st, stats, err, errlen);
	if (!ret) {
		st->scaffold_done = true;
		st->snat_done = true;
	}
out:
	want_free(&w);
	if (ret)
		ids_rollback(st); /* ids given to chains of a batch never sent */
	batch_reset(&st->b);
	for (size_t i = 0; i < prune.n; i++)
		free(prune.list[i]);
	free(prune.list);
	hashmap_free(prune.named);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	stats->elapsed_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
			    (uint64_t)(t1.tv_nsec - t0.tv_nsec);
	return ret;
}

static int nft_set_snat(void *state, const struct proxy_snat_config *snat,
			struct proxy_apply_stats *stats, char *err, size_t errlen)
{
	struct nft_state *st = state;

	st->cfg.snat = *snat;
	st->snat_done = false;
	return nft_apply(st, NULL, 0, 0, stats, err, errlen);
}

/* ---------------------------------------------------------------- adopt */

/* A dispatch map's elements as dumped: range starts (with data) and range ends. */
struct adopt_start {
	uint32_t start;
	uint8_t data[8];
	uint8_t dlen;
};

struct adopt_ctx {
	struct nft_state *st;
	int err;
	size_t n;
	struct hashmap *id_chain;   /* dispatch id (decimal) -> its chain's struct obj */
	struct adopt_start *starts;
	size_t n_starts, cap_starts;
	uint32_t *ends;
	size_t n_ends, cap_ends;
};

static int record(struct nft_state *st, const char *id, struct obj *o)
{
	void *old = NULL;

	if (!o)
		return -ENOMEM;
	if (hashmap_put(st->objs, id, o, &old)) {
		obj_free(o);
		return -ENOMEM;
	}
	obj_free(old);
	return 0;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct adopt_ctx *a = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	char id[NFT_NAME_MAX + 4], ob[NFT_NAME_MAX];
	const char *name;

	if (!c || nftnl_chain_nlmsg_parse(nlh, c) < 0) {
		nfree_chain_free(c);
		a->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (!strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), a->st->table)) {
		name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
		snprintf(id, sizeof(id), "c/%s", name);
		a->err = record(a->st, id, obj_new(OBJ_CHAIN, owner_of_name(name, ob, sizeof(ob)), name, 0));
		a->n++;
	}
	nfree_chain_free(c);
	return a->err ? MNL_CB_ERROR : MNL_CB_OK;
}

/* Only the chain name and the first rule's comment matter: parse just those. */
static int rule_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type <= NFTA_RULE_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int udata_comment_cb(const struct nftnl_udata *attr, void *data)
{
	if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT)
		*(const char **)data = nftnl_udata_get(attr);
	return 0;
}

static int expr_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type <= NFTA_EXPR_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

/* The dispatch id of a rule "numgen ... offset O ... lookup @endpoints-<proto>-<shard>", or -1. */
static int64_t dispatch_id(const struct nlattr *exprs)
{
	const struct nlattr *el, *d;
	int64_t off = -1, shard = -1;
	bool ng = false;

	mnl_attr_for_each_nested(el, exprs) {
		const struct nlattr *tb[NFTA_EXPR_MAX + 1] = { 0 };
		const char *name;

		if (mnl_attr_parse_nested(el, expr_attr_cb, tb) < 0 || !tb[NFTA_EXPR_NAME] ||
		    !tb[NFTA_EXPR_DATA])
			continue;
		name = mnl_attr_get_str(tb[NFTA_EXPR_NAME]);
		ng |= !strcmp(name, "numgen");
		mnl_attr_for_each_nested(d, tb[NFTA_EXPR_DATA]) {
			if (!strcmp(name, "numgen") && mnl_attr_get_type(d) == NFTA_NG_OFFSET &&
			    mnl_attr_get_payload_len(d) == 4)
				off = ntohl(mnl_attr_get_u32(d));
			if (!strcmp(name, "lookup") && mnl_attr_get_type(d) == NFTA_LOOKUP_SET &&
			    mnl_attr_validate(d, MNL_TYPE_NUL_STRING) == 0)
				shard = ep_map_shard(mnl_attr_get_str(d));
		}
	}
	if (ng && off < 0)
		off = 0; /* no offset attribute: none */
	if (off < 0 || shard < 0 || off % NFT_EP_SLOTS || off / NFT_EP_SLOTS >= NFT_EP_SHARD)
		return -1;
	return shard * NFT_EP_SHARD + off / NFT_EP_SLOTS;
}

/* A policy chain's dispatch rule tells its id. */
static int adopt_dispatch(struct adopt_ctx *a, struct obj *o, const struct nlattr *exprs)
{
	int64_t id;

	if (o->ng_id >= 0 || (strncmp(o->name, "service-", 8) && strncmp(o->name, "local-", 6)))
		return 0;
	id = dispatch_id(exprs);
	if (id < 0)
		return 0;
	o->ng_id = (int32_t)id;
	return id_bind(a->st, o->name, (uint32_t)id);
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct adopt_ctx *a = data;
	const struct nlattr *tb[NFTA_RULE_MAX + 1] = { 0 };
	char id[NFT_NAME_MAX + 4];
	const char *comment = NULL;
	struct obj *o;

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), rule_attr_cb, tb) < 0 ||
	    !tb[NFTA_RULE_TABLE] || !tb[NFTA_RULE_CHAIN])
		return MNL_CB_OK;
	if (strcmp(mnl_attr_get_str(tb[NFTA_RULE_TABLE]), a->st->table))
		return MNL_CB_OK;
	snprintf(id, sizeof(id), "c/%s", mnl_attr_get_str(tb[NFTA_RULE_CHAIN]));
	o = hashmap_get(a->st->objs, id);
	if (o && tb[NFTA_RULE_EXPRESSIONS] && adopt_dispatch(a, o, tb[NFTA_RULE_EXPRESSIONS])) {
		a->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (!o || o->rule_seen)
		return MNL_CB_OK;
	o->rule_seen = true;
	if (tb[NFTA_RULE_USERDATA]) {
		nftnl_udata_parse(mnl_attr_get_payload(tb[NFTA_RULE_USERDATA]),
				  mnl_attr_get_payload_len(tb[NFTA_RULE_USERDATA]), udata_comment_cb,
				  &comment);
		if (comment && !strncmp(comment, "berth:", 6))
			o->hash = strtoull(comment + 6, NULL, 16);
	}
	a->n++;
	return MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct adopt_ctx *a = data;
	struct nftnl_set *s = nftnl_set_alloc();
	char id[NFT_NAME_MAX + 4], ob[NFT_NAME_MAX];
	const char *name;
	struct obj *chain;

	if (!s || nftnl_set_nlmsg_parse(nlh, s) < 0) {
		nfree_set_free(s);
		a->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (strcmp(nftnl_set_get_str(s, NFTNL_SET_TABLE), a->st->table))
		goto out;
	name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	snprintf(id, sizeof(id), "c/%s", name);
	chain = hashmap_get(a->st->objs, id);
	if (chain) {
		chain->has_map = true; /* a chain's numgen map: it goes with the chain */
	} else {
		snprintf(id, sizeof(id), "s/%s", name);
		a->err = record(a->st, id, obj_new(OBJ_SET, owner_of_name(name, ob, sizeof(ob)), name,
						   set_hash(s)));
	}
	a->n++;
out:
	nfree_set_free(s);
	return a->err ? MNL_CB_ERROR : MNL_CB_OK;
}

static int adopt_hairpin(struct adopt_ctx *a, struct nftnl_set_elem *e)
{
	uint32_t klen = 0;
	const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
	char k[16];

	if (!key || klen != 8)
		return 0;
	addr_key(k, key);
	a->n++;
	return cnt_set(a->st->hp_have, k, 1);
}

/* An element of an endpoint map: a range's start (with data) or its end. */
static int adopt_range_elem(struct adopt_ctx *a, struct nftnl_set_elem *e)
{
	uint32_t klen = 0, dlen = 0, key;
	const void *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
	const void *d = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)
				? nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen) : NULL;
	bool end = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
		   (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END);

	if (!k || klen != 4)
		return 0;
	memcpy(&key, k, 4);
	key = ntohl(key);
	if (end) {
		if (!GROW(a->ends, a->n_ends, a->cap_ends))
			return -ENOMEM;
		a->ends[a->n_ends++] = key;
		return 0;
	}
	if (!d || dlen > 8)
		return 0;
	if (!GROW(a->starts, a->n_starts, a->cap_starts))
		return -ENOMEM;
	a->starts[a->n_starts] = (struct adopt_start){ .start = key, .dlen = (uint8_t)dlen };
	memcpy(a->starts[a->n_starts++].data, d, dlen);
	return 0;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* Each range ends at the first end element after its start (ranges never overlap). */
static int cmp_start(const void *x, const void *y)
{
	uint32_t a = ((const struct adopt_start *)x)->start, b = ((const struct adopt_start *)y)->start;

	return a < b ? -1 : a > b;
}

/* The end of the range starting at start: the first end element after it (ranges never overlap). */
static bool range_end(const struct adopt_ctx *a, uint32_t start, uint32_t *end)
{
	size_t lo = 0, hi = a->n_ends;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (a->ends[mid] <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == a->n_ends)
		return false;
	*end = a->ends[lo];
	return true;
}

/*
 * Record the ranges of dispatch id: they belong to the chain whose rule
 * names the id; ranges no chain names belong to the scaffolding, whose
 * next reconcile removes them.
 */
static int adopt_id_ranges(struct adopt_ctx *a, const char *map, uint32_t id, struct range *r, size_t n)
{
	char key[32], oid[NFT_NAME_MAX + 64];
	struct obj *chain, *o;

	snprintf(key, sizeof(key), "%u", id);
	chain = hashmap_get(a->id_chain, key);
	if (chain)
		snprintf(oid, sizeof(oid), "r/%s", chain->name);
	else
		snprintf(oid, sizeof(oid), "r/#%s/%u", map, id);
	o = obj_new(OBJ_RANGES, chain ? chain->owner : OWNER_SCAFFOLD, map, ranges_hash(map, r, n));
	if (!o) {
		free(r);
		return -ENOMEM;
	}
	o->ranges = r;
	o->n_ranges = n;
	for (size_t i = 0; i < n; i++) {
		char k[16];

		addr_key(k, r[i].data);
		if (cnt_set(a->st->hp_want, k, cnt_get(a->st->hp_want, k) + 1)) {
			obj_free(o);
			return -ENOMEM;
		}
	}
	a->n += n;
	return record(a->st, oid, o);
}

/* A dispatch map's dump, grouped by dispatch id (each id owns NFT_EP_SLOTS values). */
static int adopt_ranges(struct adopt_ctx *a, const char *map)
{
	uint32_t base = (uint32_t)ep_map_shard(map) * NFT_EP_SHARD;
	size_t i = 0;
	int ret = 0;

	if (!a->n_starts)
		goto out; /* an empty map: its chains are gone, it stays for the next ones */
	if (a->n_ends) /* qsort must not see NULL, even for nothing */
		qsort(a->ends, a->n_ends, sizeof(*a->ends), cmp_u32);
	qsort(a->starts, a->n_starts, sizeof(*a->starts), cmp_start);
	while (i < a->n_starts && !ret) {
		uint32_t slot = a->starts[i].start / NFT_EP_SLOTS;
		size_t k = i, n = 0;
		struct range *r;

		while (k < a->n_starts && a->starts[k].start / NFT_EP_SLOTS == slot)
			k++;
		r = calloc(k - i, sizeof(*r));
		if (!r)
			return -ENOMEM;
		for (; i < k; i++) {
			if (!range_end(a, a->starts[i].start, &r[n].end))
				continue; /* no end: not a range berth wrote */
			r[n].start = a->starts[i].start;
			memcpy(r[n++].data, a->starts[i].data, a->starts[i].dlen);
		}
		ret = adopt_id_ranges(a, map, base + slot, r, n);
	}
out:
	a->n_starts = a->n_ends = 0;
	return ret;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct adopt_ctx *a = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *e;
	const char *map;

	if (!s || nftnl_set_elems_nlmsg_parse(nlh, s) < 0)
		goto out_nomem;
	map = nftnl_set_get_str(s, NFTNL_SET_NAME);
	if (!is_ep_map(map)) {
		const char *g = NULL;

		for (size_t i = 0; i < N_GLOBAL; i++)
			if (!strcmp(global_sets[i], map))
				g = global_sets[i];
		map = g;
	}
	if (!map)
		goto out;
	it = nftnl_set_elems_iter_create(s);
	if (!it)
		goto out_nomem;
	if (!strcmp(map, S_HAIRPIN) || is_ep_map(map)) {
		for (e = nftnl_set_elems_iter_next(it); e && !a->err; e = nftnl_set_elems_iter_next(it))
			a->err = !strcmp(map, S_HAIRPIN) ? adopt_hairpin(a, e) : adopt_range_elem(a, e);
		goto out;
	}
	for (e = nftnl_set_elems_iter_next(it); e && !a->err; e = nftnl_set_elems_iter_next(it)) {
		uint32_t klen = 0, udlen = 0;
		const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
		int verdict = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT)
				      ? (int)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)
				      : INT32_MIN;
		const char *chain = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)
					    ? nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN)
					    : NULL;
		const uint8_t *ud = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_USERDATA)
					    ? nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &udlen)
					    : NULL;
		char id[64], ob[NFT_NAME_MAX], comment[NFT_NAME_MAX] = "";
		const char *owner = OWNER_SCAFFOLD;
		struct obj *o;

		if (!key || klen > 12)
			continue;
		if (ud && udlen > 2 && ud[0] == NFTNL_UDATA_SET_ELEM_COMMENT && ud[1] <= udlen - 2)
			snprintf(comment, sizeof(comment), "%.*s", ud[1], (const char *)ud + 2);
		if (chain)
			owner = owner_of_name(chain, ob, sizeof(ob));
		if ((!strcmp(owner, OWNER_SCAFFOLD)) && comment[0])
			owner = owner_of_comment(comment, ob, sizeof(ob));
		o = obj_new(OBJ_ELEM, owner, map, elem_hash(map, key, klen, verdict, chain));
		if (o) {
			memcpy(o->key, key, klen);
			o->klen = (uint8_t)klen;
		}
		elem_id(id, sizeof(id), map, key, klen);
		a->err = record(a->st, id, o);
		a->n++;
	}
out:
	nfree_set_elems_iter_destroy(it);
	nfree_set_free(s);
	return a->err ? MNL_CB_ERROR : MNL_CB_OK;
out_nomem:
	a->err = -ENOMEM;
	nfree_set_elems_iter_destroy(it);
	nfree_set_free(s);
	return MNL_CB_ERROR;
}

static int index_owner(const char *id, void *value, void *ctx)
{
	struct nft_state *st = ctx;
	struct obj *o = value;
	struct owned *l = hashmap_get(st->owners, o->owner);
	char **ids;

	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l || map_put(st->owners, o->owner, l)) {
			free(l);
			return -ENOMEM;
		}
	}
	ids = realloc(l->ids, (l->n + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	l->ids = ids;
	l->ids[l->n] = strdup(id);
	return l->ids[l->n++] ? 0 : -ENOMEM;
}

static int dump(struct nft_state *st, uint16_t type, nft_dump_cb cb, struct adopt_ctx *a,
		const char *set_or_chain)
{
	char buf[4096] = { 0 };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_IPV4, NLM_F_DUMP, 0);
	int ret;

	/* the kernel filters dumps by the table attribute */
	switch (type) {
	case NFT_MSG_GETCHAIN:
		mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, st->table);
		break;
	case NFT_MSG_GETRULE:
		mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, st->table);
		mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, set_or_chain);
		break;
	case NFT_MSG_GETSET:
		mnl_attr_put_strz(nlh, NFTA_SET_TABLE, st->table);
		break;
	case NFT_MSG_GETSETELEM:
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, st->table);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set_or_chain);
		break;
	}
	ret = nft_sock_dump(st->sock, nlh, cb, a);
	if (a->err)
		return a->err;
	return ret == -ENOENT ? 0 : ret;
}

static int forget_all(struct nft_state *st);

struct names {
	char **v;
	size_t n, cap;
};

static int collect_chain(const char *key, void *value, void *ctx)
{
	struct names *c = ctx;
	struct obj *o = value;

	if (o->kind != OBJ_CHAIN)
		return 0;
	if (!GROW(c->v, c->n, c->cap))
		return -ENOMEM;
	c->v[c->n] = strdup(o->name);
	(void)key;
	return c->v[c->n++] ? 0 : -ENOMEM;
}

/*
 * The first rule of every chain, one chain at a time: the kernel resumes a
 * table-wide rule dump by skipping every rule already sent, so one dump of
 * 10k services' rules is quadratic (seconds); per-chain dumps are linear.
 */
static int dump_first_rules(struct nft_state *st, struct adopt_ctx *a)
{
	struct names c = { 0 };
	int ret = hashmap_foreach(st->objs, collect_chain, &c);

	for (size_t i = 0; i < c.n && !ret; i++)
		ret = dump(st, NFT_MSG_GETRULE, rule_cb, a, c.v[i]);
	for (size_t i = 0; i < c.n; i++)
		free(c.v[i]);
	free(c.v);
	return ret;
}

static int collect_id_chain(const char *key, void *value, void *ctx)
{
	struct obj *o = value;
	char id[16];

	(void)key;
	if (o->kind != OBJ_CHAIN || o->ng_id < 0)
		return 0;
	snprintf(id, sizeof(id), "%d", o->ng_id);
	return map_put(ctx, id, o); /* chains stay in the record while their ranges are read */
}

static int collect_ep_map(const char *key, void *value, void *ctx)
{
	struct names *c = ctx;
	struct obj *o = value;

	(void)key;
	if (o->kind != OBJ_SET || !is_ep_map(o->name))
		return 0;
	if (!GROW(c->v, c->n, c->cap))
		return -ENOMEM;
	c->v[c->n] = strdup(o->name);
	return c->v[c->n++] ? 0 : -ENOMEM;
}

/* The elements of the global maps and of every dispatch map. */
static int dump_elems(struct nft_state *st, struct adopt_ctx *a)
{
	struct names maps = { 0 };
	int ret = 0;

	a->id_chain = hashmap_new();
	if (!a->id_chain)
		return -ENOMEM;
	ret = hashmap_foreach(st->objs, collect_id_chain, a->id_chain);
	for (size_t i = 0; i < N_GLOBAL && !ret; i++) {
		char id[NFT_NAME_MAX + 4];

		snprintf(id, sizeof(id), "s/%s", global_sets[i]);
		if (hashmap_get(st->objs, id))
			ret = dump(st, NFT_MSG_GETSETELEM, elem_cb, a, global_sets[i]);
	}
	if (!ret)
		ret = hashmap_foreach(st->objs, collect_ep_map, &maps);
	for (size_t i = 0; i < maps.n && !ret; i++) {
		ret = dump(st, NFT_MSG_GETSETELEM, elem_cb, a, maps.v[i]);
		if (!ret)
			ret = adopt_ranges(a, maps.v[i]);
	}
	for (size_t i = 0; i < maps.n; i++)
		free(maps.v[i]);
	free(maps.v);
	hashmap_free(a->id_chain);
	free(a->starts);
	free(a->ends);
	return ret;
}

static int nft_adopt(void *state, struct proxy_apply_stats *stats, char *err, size_t errlen)
{
	struct nft_state *st = state;
	struct adopt_ctx a = { .st = st };
	struct timespec t0, t1;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = forget_all(st);
	if (!ret)
		ret = dump(st, NFT_MSG_GETCHAIN, chain_cb, &a, NULL);
	if (!ret && a.n) {
		st->table_exists = true;
		ret = dump_first_rules(st, &a);
	}
	if (!ret)
		ret = dump(st, NFT_MSG_GETSET, set_cb, &a, NULL);
	if (!ret && a.n)
		st->table_exists = true;
	if (!ret && st->table_exists)
		ret = dump_elems(st, &a);
	if (!ret)
		ret = hashmap_foreach(st->objs, index_owner, st);
	/* the hairpin set is compared with the adopted ranges in full at the next apply */
	st->hp_dirty = true;
	if (ret) {
		fmt_err(err, errlen, "nftables: reading table ip %s: %s", st->table, strerror(-ret));
		forget_all(st);
	} else {
		st->adopted = true;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (stats) {
		*stats = (struct proxy_apply_stats){
			.services_unchanged = hashmap_size(st->owners),
			.elapsed_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
				      (uint64_t)(t1.tv_nsec - t0.tv_nsec),
		};
	}
	return ret;
}

/* ---------------------------------------------------------------- life cycle */

static int free_obj_cb(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	obj_free(value);
	return 0;
}

static int free_owned_cb(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	owned_clear(value);
	free(value);
	return 0;
}

static void free_record(struct nft_state *st)
{
	if (st->objs)
		hashmap_foreach(st->objs, free_obj_cb, NULL);
	if (st->owners)
		hashmap_foreach(st->owners, free_owned_cb, NULL);
	hashmap_free(st->objs);
	hashmap_free(st->owners);
	hashmap_free(st->ids);
	hashmap_free(st->hp_want);
	hashmap_free(st->hp_have);
	st->objs = st->owners = st->ids = st->hp_want = st->hp_have = NULL;
}

/* An empty record (nothing known about the kernel). 0 or -ENOMEM. */
static int forget_all(struct nft_state *st)
{
	free_record(st);
	st->objs = hashmap_new();
	st->owners = hashmap_new();
	st->ids = hashmap_new();
	st->hp_want = hashmap_new();
	st->hp_have = hashmap_new();
	memset(st->id_bits, 0, NFT_EP_MAX_IDS / 8 + 1);
	st->id_low = 0;
	st->hp_dirty = false;
	st->table_exists = st->scaffold_done = st->snat_done = false;
	return st->objs && st->owners && st->ids && st->hp_want && st->hp_have ? 0 : -ENOMEM;
}

static void nft_destroy(void *state)
{
	struct nft_state *st = state;

	if (!st)
		return;
	batch_free(&st->b);
	free_record(st);
	free(st->id_bits);
	nft_sock_close(st->sock);
	free(st->scratch);
	free(st);
}

static int nft_init(void **state, const struct proxy_backend_config *cfg, char *err, size_t errlen)
{
	struct nft_state *st = calloc(1, sizeof(*st));

	*state = NULL;
	if (!st)
		return -ENOMEM;
	st->cfg = *cfg;
	snprintf(st->table, sizeof(st->table), "%s", cfg->table ? cfg->table : DEFAULT_TABLE);
	st->cfg.table = NULL; /* the copy must not point into the caller's memory */
	st->mark = cfg->masquerade_mark ? cfg->masquerade_mark : DEFAULT_MARK;
	st->max_msgs = cfg->max_batch_msgs ? cfg->max_batch_msgs : DEFAULT_MAX_MSGS;
	st->scratch = calloc(1, SCRATCH_SIZE);
	st->id_bits = calloc(1, NFT_EP_MAX_IDS / 8 + 1);
	st->sock = nft_sock_open();
	if (!st->scratch || !st->id_bits || forget_all(st) || !st->sock) {
		int ret = st->sock ? -ENOMEM : -errno;

		fmt_err(err, errlen, "nftables: netlink socket: %s", strerror(-ret));
		nft_destroy(st);
		return ret;
	}
	*state = st;
	return 0;
}

static int nft_cleanup(void *state, char *err, size_t errlen)
{
	struct nft_state *st = state;
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;
	struct proxy_apply_stats s = { 0 };

	if (!t)
		return -ENOMEM;
	batch_reset(&st->b);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_IPV4);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, st->table);
	nlh = mb_begin(&st->b, P_DELCHAIN, NFT_MSG_DELTABLE, 0, 4096);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		ret = mb_end(&st->b, P_DELCHAIN, nlh, "delete table", st->table);
	}
	nfree_table_free(t);
	if (!ret)
		ret = commit(st, &s, err, errlen);
	if (ret == -ENOENT)
		ret = 0;
	if (!ret) {
		forget_all(st);
		st->adopted = true; /* nothing left to read */
	}
	return ret;
}

const struct proxy_backend_ops nft_backend_ops = {
	.name = "nftables",
	.init = nft_init,
	.adopt = nft_adopt,
	.apply = nft_apply,
	.set_snat = nft_set_snat,
	.cleanup = nft_cleanup,
	.destroy = nft_destroy,
};
