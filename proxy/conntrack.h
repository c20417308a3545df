/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UDP conntrack cleanup over ctnetlink (libmnl; no conntrack process, no
 * libnetfilter_conntrack). kube-proxy's pkg/proxy/conntrack is the reference.
 *
 * Why: UDP has no connection to close. A client that keeps sending from the
 * same source port keeps matching its conntrack entry, and the entry keeps
 * the DNAT it got on its first packet: to an endpoint that was removed, or
 * to nothing at all (the packet arrived while the frontend had no endpoint,
 * or before the service existed, and was delivered un-NATed). nftables
 * rules are never consulted again for that flow, so the client never moves
 * on. Deleting the entry makes the next packet a new flow that the current
 * rules DNAT.
 *
 * The rule, per frontend (an original-direction destination addr:port of a
 * UDP service port): an entry to the frontend whose reply source (where it
 * was DNATed to) is not one of the port's current endpoints is stale. A
 * frontend that lost its endpoints, or that went away, keeps none.
 *
 * Two layers: ct_cleanup_add() turns one service's old and new plans into
 * such rules (pure); ct_cleanup_run() dumps the UDP entries of the calling
 * thread's netns once, as they stream, and deletes the stale ones by their
 * original tuple and id. The entry parser and the delete request builder are
 * exposed for unit tests. Actions return 0 or -errno; nothing prints.
 */
#ifndef BERTH_PROXY_CONNTRACK_H
#define BERTH_PROXY_CONNTRACK_H

#include <libmnl/libmnl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

/* An IPv4 address (network order) and a port (host order). */
struct ct_addr_port {
	struct in_addr addr;
	uint16_t port;
};

/* One conntrack entry, as far as the cleanup looks at it. */
struct ct_entry {
	uint8_t l4proto;              /* IPPROTO_* */
	struct ct_addr_port orig_src, orig_dst;
	struct ct_addr_port reply_src; /* the DNAT target, or orig_dst when not DNATed */
	uint32_t id;                  /* CTA_ID: a delete names exactly this entry */
	bool has_id;
	uint16_t zone;                /* CTA_ZONE, 0 = default */
};

/*
 * Parse an IPCTNL_MSG_CT_NEW message (a dump reply) into *e. IPv4 entries
 * with ports only: -EAFNOSUPPORT / -EPROTONOSUPPORT for others, -EINVAL for
 * malformed ones.
 */
int ct_entry_parse(const struct nlmsghdr *nlh, struct ct_entry *e);

/*
 * Build the IPCTNL_MSG_CT_DELETE request for e into buf (room for
 * CT_REQ_SIZE bytes): its original tuple, zone and id.
 */
#define CT_REQ_SIZE 256
struct nlmsghdr *ct_build_delete(char *buf, const struct ct_entry *e);

/* Rules from plans, then one pass over the table. */
struct ct_cleanup;

struct ct_cleanup *ct_cleanup_new(void);
/* Accepts NULL. */
void ct_cleanup_free(struct ct_cleanup *c);

/*
 * Add the rules one service's change calls for (old NULL: new or unknown,
 * e.g. after a restart; new NULL: removed). `owner` is the caller's dense
 * index of the change, for ct_cleanup_deleted(). For each UDP port:
 * - endpoints removed (in old, not in new): every frontend gets a rule;
 * - a frontend gaining endpoints from none (the port or frontend is new, or
 *   had no endpoint before): it gets a rule;
 * - a frontend that goes away while it had endpoints: rule keeping none.
 * 0 or -ENOMEM.
 */
int ct_cleanup_add(struct ct_cleanup *c, const struct plan_service *old,
		   const struct plan_service *new, size_t owner);
/* Number of rules added so far (0: ct_cleanup_run() has nothing to do). */
size_t ct_cleanup_rules(const struct ct_cleanup *c);

/*
 * Index the rules for matching (ct_cleanup_run() does it itself), then:
 * would a rule delete e? The very test ct_cleanup_run() applies; pure.
 * false for everything until prepared.
 */
void ct_cleanup_prepare(struct ct_cleanup *c);
bool ct_cleanup_matches(const struct ct_cleanup *c, const struct ct_entry *e);

/*
 * Dump the UDP conntrack entries of the calling thread's netns and delete
 * each one a rule matches. An entry already gone (ENOENT) is not an error.
 * Deletion goes on after a failed delete; the first error is returned. err
 * (may be NULL) receives the kernel's extended-ACK text or what failed.
 */
int ct_cleanup_run(struct ct_cleanup *c, char *err, size_t errlen);

/* Entries deleted for owner's rules by ct_cleanup_run(). */
size_t ct_cleanup_deleted(const struct ct_cleanup *c, size_t owner);

#endif
