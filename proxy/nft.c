// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables backend: berth's services as kube-proxy's nftables mode lays
 * them out (table ip berth, same chain/map names and priorities), programmed
 * over netlink with libnftnl, one atomic batch per apply.
 *
 * Two departures from kube-proxy's layout. For the data path: its filter
 * checks (no endpoints -> reject, source ranges, ClusterIP ports) run from
 * the nat base chains, which the kernel consults for a connection's first
 * packet only, instead of from five filter base chains that every packet on
 * the node walks (build_scaffold() says more). For the cost of a change: the
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
 *
 * The backend's files: nft.c (this one: the record, hashing, diff,
 * commit, the backend's ops and life cycle), nft_batch.c (a batch's
 * netlink messages), nft_build.c (the wanted state of a service),
 * nft_dispatch.c (dispatch ids and the hairpin set), nft_adopt.c (reading
 * the table back at start), nft_expr.c (rule and set bytecode), nft_nl.c
 * (the socket); nft_state.h is what they share.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h> /* before libnftnl: its headers use FILE */
#include <libnftnl/batch.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nft_state.h"

#define DEFAULT_TABLE "berth"
#define DEFAULT_MARK 0x4000u
#define DEFAULT_MAX_MSGS 20000

#define SCRATCH_SIZE (64 * 1024)

/* ---------------------------------------------------------------- record */

void obj_free(struct obj *o)
{
	if (!o)
		return;
	free(o->owner);
	free(o->name);
	free(o->ranges);
	free(o);
}

void owned_clear(struct owned *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	l->ids = NULL;
	l->n = 0;
}

void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
struct obj *obj_new(enum obj_kind kind, const char *owner, const char *name, uint64_t hash)
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

/* ---------------------------------------------------------------- hashing */

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

uint64_t set_hash(const struct nftnl_set *s)
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

uint64_t elem_hash(const char *map, const uint8_t *key, size_t klen, int verdict,
			  const char *chain)
{
	uint64_t h = fnv_str(FNV0, map);

	h = fnv(h, key, klen);
	h = fnv(h, &verdict, sizeof(verdict));
	return fnv_str(h, verdict == NFT_JUMP || verdict == NFT_GOTO ? chain : "");
}

/* A chain's ranges: what the kernel holds is each range's start, end and data. */
uint64_t ranges_hash(const char *map, const struct range *r, size_t n)
{
	uint64_t h = fnv_str(FNV0, map);

	for (size_t i = 0; i < n; i++) {
		h = fnv(h, &r[i].start, sizeof(r[i].start));
		h = fnv(h, &r[i].end, sizeof(r[i].end));
		h = fnv(h, r[i].data, sizeof(r[i].data));
	}
	return h ? h : 1;
}

void elem_id(char *out, size_t outlen, const char *map, const uint8_t *key, size_t klen)
{
	size_t n = (size_t)snprintf(out, outlen, "e/%s/", map);

	if (n + 2 * klen < outlen)
		hex(out + n, key, klen);
}

/* ---------------------------------------------------------------- diff + emit */

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

/* Note that this service still wants object id (what it no longer names is removed). */
static int own_id(struct owned *ids, const char *id)
{
	ids->ids[ids->n] = strdup(id);
	return ids->ids[ids->n++] ? 0 : -ENOMEM;
}

static int reconcile_chain(struct nft_state *st, const char *owner, struct want_chain *c,
			   struct owned *ids)
{
	char id[NFT_NAME_MAX + 4];
	uint64_t h = chain_hash(st, c);
	struct obj *o, *n;
	int ret = 0;

	snprintf(id, sizeof(id), "c/%s", c->name);
	if (own_id(ids, id) < 0)
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
	if (own_id(ids, id) < 0)
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
	if (own_id(ids, id) < 0)
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
	if (own_id(ids, id) < 0)
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
			want_service(st, &w, changes[i].new);
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
int forget_all(struct nft_state *st)
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
