// SPDX-License-Identifier: Apache-2.0
/*
 * The nftables backend's endpoint dispatch bookkeeping: the dispatch ids
 * of policy chains (each owns NFT_EP_SLOTS numgen values of its shard's
 * map) and the hairpin set, "a . a" for every endpoint address a dispatch
 * map refers to.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft_state.h"

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
int id_bind(struct nft_state *st, const char *chain, uint32_t id)
{
	if (map_put(st->ids, chain, (void *)(uintptr_t)(id + 1)))
		return -ENOMEM;
	id_mark(st, id, true);
	return 0;
}

void id_release(struct nft_state *st, const char *chain, int32_t id)
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
int32_t id_for(struct nft_state *st, const char *chain)
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
void ids_rollback(struct nft_state *st)
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

/* ---------------------------------------------------------------- hairpin */

/* One more (or one fewer) dispatch range refers to the endpoint address in data. */
int hp_touch(struct nft_state *st, const uint8_t *data, intptr_t d)
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
int hp_emit(struct nft_state *st)
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
void hp_apply(struct nft_state *st, bool was_dirty)
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
