// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables backend's batch: the netlink messages of one transaction,
 * kept per phase (the order the kernel needs), and the emitters that turn
 * tables, chains, rules, sets and elements into them. Element changes are
 * encoded directly, ELEMS_PER_MSG to a message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h> /* before libnftnl: its headers use FILE */
#include <libnftnl/chain.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>

#include "nft_state.h"

#define ELEMS_PER_MSG 512

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

struct nlmsghdr *mb_begin(struct batch *b, enum phase p, uint16_t type, uint16_t flags,
				 size_t room)
{
	struct msgbuf *m = &b->ph[p];

	if (mb_reserve(m, room))
		return NULL;
	return nftnl_nlmsg_build_hdr(m->data + m->len, type, NFPROTO_IPV4, flags | NLM_F_ACK, 0);
}

int mb_end(struct batch *b, enum phase p, struct nlmsghdr *nlh, const char *what,
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

void batch_reset(struct batch *b)
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

void batch_free(struct batch *b)
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

size_t batch_msgs(const struct batch *b)
{
	size_t n = 0;

	for (int p = 0; p < N_PHASES; p++)
		n += b->ph[p].n;
	for (size_t i = 0; i < b->n_agg; i++)
		n += (b->agg[i]->m[0].count > 0) + (b->agg[i]->m[1].count > 0);
	return n;
}

int journal(struct batch *b, const char *id, struct obj *o)
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

int emit_table(struct nft_state *st)
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

int emit_chain_op(struct nft_state *st, enum phase p, uint16_t type, const char *name,
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
int emit_flush(struct nft_state *st, const char *chain)
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

int emit_delset(struct nft_state *st, const char *name)
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

int emit_newset(struct nft_state *st, struct nftnl_set *s)
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

int agg_elem(struct nft_state *st, const char *map, bool add, const struct elem_desc *d)
{
	int ret = agg_put(st, map, add, d);

	if (!ret && add)
		st->b.st.elems_added++;
	else if (!ret)
		st->b.st.elems_deleted++;
	return ret;
}

/* An element with a key only: of a set, or one to delete. */
int agg_key(struct nft_state *st, const char *map, bool add, const uint8_t *key, size_t klen)
{
	struct elem_desc d = { .key = key, .klen = klen, .verdict = INT32_MIN };

	return agg_elem(st, map, add, &d);
}

/*
 * A range [key, kend) of an interval map, as nft sends one: its start
 * element (with the data when adding) and an end element flagged so.
 */
int agg_range(struct nft_state *st, const char *map, bool add, const uint8_t *key,
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

int agg_flush(struct nft_state *st)
{
	int ret = 0;

	for (size_t i = 0; i < st->b.n_agg && !ret; i++)
		ret = elemsg_flush(st, st->b.agg[i], 0) ?: elemsg_flush(st, st->b.agg[i], 1);
	return ret;
}

int emit_chain_rules(struct nft_state *st, struct want_chain *c, uint64_t hash)
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

int emit_chain_map(struct nft_state *st, struct want_chain *c)
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

int emit_newchain(struct nft_state *st, struct want_chain *c)
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
