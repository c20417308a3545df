// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"
#include "jsonx.h"

#define IPAM_MAX_RANGES 256

struct slot {
	uint32_t ip;              /* host order */
	int range;                /* index into ranges, -1 = not in the pool */
	int64_t released_at_ms;   /* 0 = never used */
	struct ipam_alloc *alloc; /* NULL = free */
};

struct ipam {
	struct ipam_range *ranges;
	size_t n_ranges;
	struct slot *slots;
	size_t n_slots, n_pool; /* the first n_pool slots are the pool */
	int64_t cooldown_ms;
	uint64_t generation;
};

static uint32_t range_first(const struct ipam_range *r)
{
	return ntohl(r->net.s_addr);
}

static uint64_t range_size(const struct ipam_range *r)
{
	return 1ull << (32 - r->plen);
}

static int parse_one_range(char *item, struct ipam_range *r, char *err, size_t errlen)
{
	char *at = strchr(item, '@'), *colon;
	unsigned long table = 0;

	*r = (struct ipam_range){ 0 };
	if (at) {
		*at++ = '\0';
		colon = strchr(at, ':');
		if (colon) {
			char *end;

			*colon++ = '\0';
			/* strtoul would take " 5", "+5" and wrap "-1": digits only. */
			if (*colon < '0' || *colon > '9') {
				snprintf(err, errlen, "pool entry \"%s\": bad table \"%s\"", item, colon);
				return -EINVAL;
			}
			errno = 0;
			table = strtoul(colon, &end, 10);
			/* 253-255 are the kernel's default/main/local tables. */
			if (errno || end == colon || *end || table == 0 || table > UINT32_MAX ||
			    (table >= 253 && table <= 255)) {
				snprintf(err, errlen, "pool entry \"%s\": bad table \"%s\"", item, colon);
				return -EINVAL;
			}
		}
		if (!proto_valid_ifname(at)) {
			snprintf(err, errlen, "pool entry \"%s\": bad interface name", item);
			return -EINVAL;
		}
		strcpy(r->iface, at);
		r->table = (uint32_t)table;
	}
	if (!strchr(item, '/')) {
		if (inet_pton(AF_INET, item, &r->net) != 1)
			goto bad;
		r->plen = 32;
	} else if (parse_ipv4_cidr(item, &r->net, &r->plen, 1) < 0) {
		goto bad;
	} else if (r->plen > 0 && r->plen < 32 &&
		   (ntohl(r->net.s_addr) & ~(~0u << (32 - r->plen)))) {
		/* plen 0 would shift by 32 (UB); the /16 check below refuses it anyway. */
		struct in_addr base = { .s_addr = htonl(ntohl(r->net.s_addr) & (~0u << (32 - r->plen))) };

		snprintf(err, errlen, "pool entry \"%s\" has host bits set (did you mean %s/%u?)", item,
			 inet_ntoa(base), r->plen);
		return -EINVAL;
	}
	if (r->plen < 16) {
		snprintf(err, errlen, "pool entry \"%s\": prefix shorter than /16", item);
		return -EINVAL;
	}
	return 0;
bad:
	snprintf(err, errlen, "pool entry \"%s\" is not an IPv4 address or CIDR", item);
	return -EINVAL;
}

int ipam_parse_pool(const char *spec, struct ipam_range **ranges, size_t *n, char *err,
		    size_t errlen)
{
	char *copy = strdup(spec), *item, *save = NULL;
	struct ipam_range *out = NULL;
	size_t count = 0;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	out = calloc(IPAM_MAX_RANGES, sizeof(*out));
	if (!out) {
		r = -ENOMEM;
		goto out_free;
	}
	/* strtok would skip empty entries: "a,,b" is a typo to report, not two entries. */
	if (copy[0] == ',' || strstr(copy, ",,") || (copy[0] && copy[strlen(copy) - 1] == ',')) {
		snprintf(err, errlen, "the pool has an empty entry");
		r = -EINVAL;
		goto out_free;
	}
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (count == IPAM_MAX_RANGES) {
			snprintf(err, errlen, "more than %d pool entries", IPAM_MAX_RANGES);
			r = -EINVAL;
			goto out_free;
		}
		r = parse_one_range(item, &out[count], err, errlen);
		if (r < 0)
			goto out_free;
		count++;
	}
	if (count == 0) {
		snprintf(err, errlen, "the pool is empty");
		r = -EINVAL;
		goto out_free;
	}
	*ranges = out;
	*n = count;
	out = NULL;
out_free:
	free(out);
	free(copy);
	return r;
}

static int cmp_slot(const void *a, const void *b)
{
	uint32_t x = ((const struct slot *)a)->ip, y = ((const struct slot *)b)->ip;

	return x < y ? -1 : x > y;
}

struct ipam *ipam_new(const struct ipam_range *ranges, size_t n, int64_t cooldown_ms, char *err,
		      size_t errlen)
{
	struct ipam *ipam = calloc(1, sizeof(*ipam));
	uint64_t total = 0;

	if (!ipam)
		return NULL;
	for (size_t i = 0; i < n; i++)
		total += range_size(&ranges[i]);
	if (total > IPAM_MAX_ADDRESSES) {
		snprintf(err, errlen, "the pool holds %llu addresses; at most %d are supported",
			 (unsigned long long)total, IPAM_MAX_ADDRESSES);
		goto out_free;
	}
	ipam->ranges = calloc(n, sizeof(*ipam->ranges));
	/* Room for the pool plus as many restored out-of-pool allocations. */
	ipam->slots = calloc(2 * total, sizeof(*ipam->slots));
	if (!ipam->ranges || !ipam->slots) {
		snprintf(err, errlen, "out of memory");
		goto out_free;
	}
	memcpy(ipam->ranges, ranges, n * sizeof(*ranges));
	ipam->n_ranges = n;
	ipam->cooldown_ms = cooldown_ms;
	for (size_t i = 0; i < n; i++)
		for (uint64_t k = 0; k < range_size(&ranges[i]); k++)
			ipam->slots[ipam->n_slots++] =
				(struct slot){ .ip = range_first(&ranges[i]) + (uint32_t)k, .range = (int)i };
	qsort(ipam->slots, ipam->n_slots, sizeof(*ipam->slots), cmp_slot);
	for (size_t i = 1; i < ipam->n_slots; i++) {
		if (ipam->slots[i].ip == ipam->slots[i - 1].ip) {
			struct in_addr a = { .s_addr = htonl(ipam->slots[i].ip) };

			snprintf(err, errlen, "pool entries overlap at %s", inet_ntoa(a));
			goto out_free;
		}
	}
	ipam->n_pool = ipam->n_slots;
	return ipam;
out_free:
	ipam_free(ipam);
	return NULL;
}

void ipam_free(struct ipam *ipam)
{
	if (!ipam)
		return;
	for (size_t i = 0; i < ipam->n_slots; i++)
		free(ipam->slots[i].alloc);
	free(ipam->slots);
	free(ipam->ranges);
	free(ipam);
}

static bool owner_matches(const struct ipam_owner *o, const char *network,
			  const struct proto_attachment *att)
{
	return strcmp(o->network, network) == 0 &&
	       strcmp(o->att.container_id, att->container_id) == 0 &&
	       strcmp(o->att.ifname, att->ifname) == 0;
}

/*
 * A linear scan: pools are a node's worth of addresses (tens to a few
 * thousand), and the caller batches a round of requests per checkpoint write,
 * so this never dominates an ADD.
 */
static struct slot *find_owner(const struct ipam *ipam, const char *network,
			       const struct proto_attachment *att)
{
	for (size_t i = 0; i < ipam->n_slots; i++)
		if (ipam->slots[i].alloc && owner_matches(&ipam->slots[i].alloc->owner, network, att))
			return &ipam->slots[i];
	return NULL;
}

static struct slot *find_ip(const struct ipam *ipam, uint32_t ip)
{
	struct slot key = { .ip = ip };
	struct slot *s = bsearch(&key, ipam->slots, ipam->n_pool, sizeof(key), cmp_slot);

	if (s)
		return s;
	for (size_t i = ipam->n_pool; i < ipam->n_slots; i++)
		if (ipam->slots[i].ip == ip)
			return &ipam->slots[i];
	return NULL;
}

static bool cooling(const struct ipam *ipam, const struct slot *s, int64_t now_ms)
{
	return s->released_at_ms && now_ms - s->released_at_ms < ipam->cooldown_ms;
}

static void fill_alloc(const struct ipam *ipam, struct slot *s, struct ipam_alloc *a)
{
	a->ip.s_addr = htonl(s->ip);
	a->range = s->range >= 0 ? &ipam->ranges[s->range] : NULL;
}

int ipam_assign(struct ipam *ipam, const struct ipam_owner *owner, int64_t now_ms,
		const struct ipam_alloc **out)
{
	struct slot *s = find_owner(ipam, owner->network, &owner->att), *best = NULL;

	if (s) {
		if (strcmp(s->alloc->owner.host_veth, owner->host_veth) != 0)
			return -EEXIST;
		*out = s->alloc;
		return 1;
	}
	/* Least recently released first: the longest possible time before reuse. */
	for (size_t i = 0; i < ipam->n_pool; i++) {
		s = &ipam->slots[i];
		if (s->alloc || cooling(ipam, s, now_ms))
			continue;
		if (!best || s->released_at_ms < best->released_at_ms)
			best = s;
	}
	if (!best)
		return -ENOSPC;
	best->alloc = calloc(1, sizeof(*best->alloc));
	if (!best->alloc)
		return -ENOMEM;
	best->alloc->owner = *owner;
	best->alloc->allocated_at_ms = now_ms;
	fill_alloc(ipam, best, best->alloc);
	ipam->generation++;
	*out = best->alloc;
	return 0;
}

static void release_slot(struct ipam *ipam, struct slot *s, int64_t now_ms)
{
	free(s->alloc);
	s->alloc = NULL;
	s->released_at_ms = now_ms;
	ipam->generation++;
}

int ipam_release(struct ipam *ipam, const char *network, const struct proto_attachment *att,
		 int64_t now_ms)
{
	struct slot *s = find_owner(ipam, network, att);

	if (!s)
		return -ENOENT;
	release_slot(ipam, s, now_ms);
	return 0;
}

const struct ipam_alloc *ipam_lookup(const struct ipam *ipam, const char *network,
				     const struct proto_attachment *att)
{
	struct slot *s = find_owner(ipam, network, att);

	return s ? s->alloc : NULL;
}

const struct ipam_alloc *ipam_lookup_ip(const struct ipam *ipam, struct in_addr ip)
{
	struct slot *s = find_ip(ipam, ntohl(ip.s_addr));

	return s ? s->alloc : NULL;
}

int ipam_release_ip(struct ipam *ipam, struct in_addr ip, int64_t now_ms)
{
	struct slot *s = find_ip(ipam, ntohl(ip.s_addr));

	if (!s || !s->alloc)
		return -ENOENT;
	release_slot(ipam, s, now_ms);
	return 0;
}

static bool in_valid(const struct ipam_owner *o, const struct proto_attachment *valid,
		     size_t n_valid)
{
	for (size_t i = 0; i < n_valid; i++)
		if (strcmp(o->att.container_id, valid[i].container_id) == 0 &&
		    strcmp(o->att.ifname, valid[i].ifname) == 0)
			return true;
	return false;
}

size_t ipam_gc(struct ipam *ipam, const char *network, const struct proto_attachment *valid,
	       size_t n_valid, int64_t now_ms)
{
	size_t released = 0;

	for (size_t i = 0; i < ipam->n_slots; i++) {
		struct slot *s = &ipam->slots[i];

		if (!s->alloc || strcmp(s->alloc->owner.network, network) != 0 ||
		    in_valid(&s->alloc->owner, valid, n_valid))
			continue;
		release_slot(ipam, s, now_ms);
		released++;
	}
	return released;
}

int ipam_foreach(const struct ipam *ipam, int (*fn)(const struct ipam_alloc *a, void *ctx),
		 void *ctx)
{
	for (size_t i = 0; i < ipam->n_slots; i++) {
		int r;

		if (!ipam->slots[i].alloc)
			continue;
		r = fn(ipam->slots[i].alloc, ctx);
		if (r)
			return r;
	}
	return 0;
}

void ipam_get_stats(const struct ipam *ipam, int64_t now_ms, struct ipam_stats *st)
{
	*st = (struct ipam_stats){ .size = ipam->n_pool };
	for (size_t i = 0; i < ipam->n_slots; i++) {
		const struct slot *s = &ipam->slots[i];

		/* Out-of-pool allocations are not part of the pool's arithmetic. */
		if (s->alloc && i < ipam->n_pool)
			st->assigned++;
		else if (i < ipam->n_pool && cooling(ipam, s, now_ms))
			st->cooling++;
		else if (i < ipam->n_pool)
			st->free++;
	}
}

uint64_t ipam_generation(const struct ipam *ipam)
{
	return ipam->generation;
}

/* ---- checkpoint body ---- */

static json_t *owner_to_json(const struct ipam_alloc *a)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->ip, ip, sizeof(ip));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "ip", ip, "network",
			 a->owner.network, "containerID", a->owner.att.container_id, "ifname",
			 a->owner.att.ifname, "namespace", a->owner.k8s_namespace, "pod",
			 a->owner.pod, "hostVeth", a->owner.host_veth, "allocatedAt",
			 (json_int_t)a->allocated_at_ms);
}

json_t *ipam_to_json(const struct ipam *ipam)
{
	json_t *allocs = json_array(), *cool = json_array();
	char ip[INET_ADDRSTRLEN];

	for (size_t i = 0; i < ipam->n_slots; i++) {
		const struct slot *s = &ipam->slots[i];
		struct in_addr a = { .s_addr = htonl(s->ip) };

		if (s->alloc) {
			json_array_append_new(allocs, owner_to_json(s->alloc));
		} else if (s->released_at_ms) {
			/* Every release time is kept, not just live cooldowns: it orders reuse. */
			inet_ntop(AF_INET, &a, ip, sizeof(ip));
			json_array_append_new(cool, json_pack("{s:s,s:I}", "ip", ip, "releasedAt",
							      (json_int_t)s->released_at_ms));
		}
	}
	return json_pack("{s:o,s:o}", "allocations", allocs, "released", cool);
}

static int owner_from_json(const json_t *o, struct ipam_owner *owner, struct in_addr *ip,
			   int64_t *at)
{
	*owner = (struct ipam_owner){ 0 };
	if (!json_is_object(o) || jx_ipv4(o, "ip", ip) < 0 ||
	    jx_string(o, "network", owner->network, sizeof(owner->network)) < 0 ||
	    !proto_valid_ident(owner->network, sizeof(owner->network)) ||
	    jx_string(o, "containerID", owner->att.container_id, sizeof(owner->att.container_id)) < 0 ||
	    !proto_valid_ident(owner->att.container_id, sizeof(owner->att.container_id)) ||
	    jx_string(o, "ifname", owner->att.ifname, sizeof(owner->att.ifname)) < 0 ||
	    !proto_valid_ifname(owner->att.ifname) ||
	    jx_string(o, "namespace", owner->k8s_namespace, sizeof(owner->k8s_namespace)) < 0 ||
	    jx_string(o, "pod", owner->pod, sizeof(owner->pod)) < 0 ||
	    jx_string(o, "hostVeth", owner->host_veth, sizeof(owner->host_veth)) < 0 ||
	    !proto_valid_ifname(owner->host_veth) || jx_int64(o, "allocatedAt", at) < 0)
		return -EINVAL;
	return 0;
}

static int place(struct ipam *ipam, const struct ipam_owner *owner, struct in_addr ip,
		 int64_t at_ms)
{
	uint32_t h = ntohl(ip.s_addr);
	struct slot *s = find_ip(ipam, h);

	if (s && s->alloc)
		return -EEXIST;
	if (find_owner(ipam, owner->network, &owner->att))
		return -EEXIST;
	if (!s) {
		/* Pool shrank under a live pod: keep its address, never hand it out. */
		for (size_t i = ipam->n_pool; i < ipam->n_slots && !s; i++)
			if (!ipam->slots[i].alloc)
				s = &ipam->slots[i]; /* a released out-of-pool slot is reusable */
		if (!s && ipam->n_slots == 2 * ipam->n_pool)
			return -ENOSPC;
		if (!s)
			s = &ipam->slots[ipam->n_slots++];
		*s = (struct slot){ .ip = h, .range = -1 };
	}
	s->alloc = calloc(1, sizeof(*s->alloc));
	if (!s->alloc)
		return -ENOMEM;
	s->alloc->owner = *owner;
	s->alloc->allocated_at_ms = at_ms;
	fill_alloc(ipam, s, s->alloc);
	ipam->generation++;
	return 0;
}

int ipam_adopt(struct ipam *ipam, const struct ipam_owner *owner, struct in_addr ip,
	       int64_t now_ms)
{
	return place(ipam, owner, ip, now_ms);
}

int ipam_restore(struct ipam *ipam, const json_t *body, char *err, size_t errlen)
{
	json_t *allocs = json_object_get(body, "allocations");
	json_t *released = json_object_get(body, "released");
	char ipbuf[INET_ADDRSTRLEN];
	size_t i;
	json_t *o;

	if (!json_is_array(allocs) || !json_is_array(released)) {
		snprintf(err, errlen, "\"allocations\" and \"released\" must be arrays");
		return -EINVAL;
	}
	json_array_foreach(allocs, i, o) {
		struct ipam_owner owner;
		struct in_addr ip;
		int64_t at;
		int r;

		if (owner_from_json(o, &owner, &ip, &at) < 0) {
			snprintf(err, errlen, "allocations[%zu] is malformed", i);
			return -EINVAL;
		}
		r = place(ipam, &owner, ip, at);
		if (r < 0) {
			inet_ntop(AF_INET, &ip, ipbuf, sizeof(ipbuf));
			snprintf(err, errlen, "allocations[%zu] (%s): %s", i, ipbuf,
				 r == -EEXIST ? "address or attachment listed twice" : strerror(-r));
			return r;
		}
	}
	json_array_foreach(released, i, o) {
		struct in_addr ip;
		int64_t at;
		struct slot *s;

		if (!json_is_object(o) || jx_ipv4(o, "ip", &ip) < 0 ||
		    jx_int64(o, "releasedAt", &at) < 0 || at <= 0) {
			snprintf(err, errlen, "released[%zu] is malformed", i);
			return -EINVAL;
		}
		s = find_ip(ipam, ntohl(ip.s_addr));
		if (s && !s->alloc)
			s->released_at_ms = at;
	}
	return 0;
}
