/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's VPC address pool. Pure: no I/O, time is passed in (wall-clock
 * milliseconds, because cooldowns are persisted and must survive restarts).
 *
 * An address is assigned to one attachment, keyed by (network, container ID,
 * interface). A released address cools down before reuse so that packets and
 * conntrack entries addressed to the old pod never reach a new one; among
 * the addresses that are free, the one released longest ago is chosen.
 */
#ifndef BERTH_IPAM_H
#define BERTH_IPAM_H

#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define IPAM_MAX_ADDRESSES 65536

struct ipam;

/* One --pool entry: a CIDR of node addresses, optionally owned by a secondary interface. */
struct ipam_range {
	struct in_addr net;
	unsigned int plen;
	char iface[IFNAMSIZ]; /* "" = primary: no policy routing */
	uint32_t table;       /* routing table for replies when iface is set */
};

struct ipam_owner {
	char network[PROTO_NETWORK_MAX];
	struct proto_attachment att;
	char k8s_namespace[PROTO_K8S_NS_MAX];
	char pod[PROTO_POD_MAX];
	char host_veth[IFNAMSIZ];
};

struct ipam_alloc {
	struct ipam_owner owner;
	struct in_addr ip;
	int64_t allocated_at_ms;
	const struct ipam_range *range; /* NULL when the pool no longer holds the address */
};

struct ipam_stats {
	size_t size, free, assigned, cooling;
};

/* Parse "CIDR[@IFACE[:TABLE]][,...]" (a bare address means /32). */
int ipam_parse_pool(const char *spec, struct ipam_range **ranges, size_t *n, char *err,
		    size_t errlen);

struct ipam *ipam_new(const struct ipam_range *ranges, size_t n, int64_t cooldown_ms, char *err,
		      size_t errlen);
void ipam_free(struct ipam *ipam);

/*
 * Assign an address to owner, or return the one it already has (a repeated
 * ADD). 0 on a new assignment, 1 when it already existed, -ENOSPC when no
 * address is free (some may be cooling), -EEXIST when owner's hostVeth
 * differs from the existing assignment's.
 */
int ipam_assign(struct ipam *ipam, const struct ipam_owner *owner, int64_t now_ms,
		const struct ipam_alloc **out);
/* Release the attachment's address; -ENOENT if it holds none. */
int ipam_release(struct ipam *ipam, const char *network, const struct proto_attachment *att,
		 int64_t now_ms);
const struct ipam_alloc *ipam_lookup(const struct ipam *ipam, const char *network,
				     const struct proto_attachment *att);
/* The allocation holding ip, if any. */
const struct ipam_alloc *ipam_lookup_ip(const struct ipam *ipam, struct in_addr ip);
/* Release the allocation holding ip; -ENOENT if none. */
int ipam_release_ip(struct ipam *ipam, struct in_addr ip, int64_t now_ms);
/* Release every allocation of network whose attachment is not in valid[]; returns how many. */
size_t ipam_gc(struct ipam *ipam, const char *network, const struct proto_attachment *valid,
	       size_t n_valid, int64_t now_ms);

/* Visit allocations in address order; stop early when fn returns non-zero. */
int ipam_foreach(const struct ipam *ipam, int (*fn)(const struct ipam_alloc *a, void *ctx),
		 void *ctx);
void ipam_get_stats(const struct ipam *ipam, int64_t now_ms, struct ipam_stats *st);
/* Incremented by every change; the agent persists when it moves. */
uint64_t ipam_generation(const struct ipam *ipam);

/* Checkpoint body (see checkpoint.c for the file around it). */
json_t *ipam_to_json(const struct ipam *ipam);
/*
 * Restore allocations and cooldowns from a checkpoint body into a fresh
 * ipam. Allocations of addresses no longer in the pool are kept (the pod
 * still uses them) but never reassigned. -EINVAL with err on any bad entry,
 * after which the ipam is partly filled and must be discarded.
 */
int ipam_restore(struct ipam *ipam, const json_t *body, char *err, size_t errlen);
/* Record an address found in use on the host with no allocation (recovery). */
int ipam_adopt(struct ipam *ipam, const struct ipam_owner *owner, struct in_addr ip,
	       int64_t now_ms);

#endif
