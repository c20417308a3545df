// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables backend's adopt(): the record rebuilt from one dump of the
 * table at start (chains with the hash their first rule carries, sets,
 * elements, dispatch ranges and ids, the hairpin set), each object given
 * to the owner its name or comment tells.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h> /* before libnftnl: its headers use FILE */
#include <libnftnl/chain.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nft_state.h"

static const char *const global_sets[] = {
	M_SERVICE_IPS, M_SERVICE_NODEPORTS, M_NOEP_SERVICES, M_NOEP_NODEPORTS,
	M_FIREWALL_IPS, S_CLUSTER_IPS, S_NODEPORT_IPS, S_HAIRPIN,
};
#define N_GLOBAL (sizeof(global_sets) / sizeof(global_sets[0]))

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

int nft_adopt(void *state, struct proxy_apply_stats *stats, char *err, size_t errlen)
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
