/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contract between the proxy core and a datapath backend (nftables now,
 * eBPF next). The core computes plans (plan.h) and hands a backend the
 * services whose plan changed; the backend carries them out in the kernel.
 *
 * Rules every backend keeps:
 * - The backend's own record of what it programmed is the truth about the
 *   kernel. A change's `old` plan is a hint only (the nftables backend
 *   ignores it): after a restart the core knows no old plans, after a failed
 *   apply the core's idea of "old" may be wrong. So a change is "make the
 *   kernel carry `new` for this service", whatever is there now.
 * - adopt() reads what an earlier process programmed, once, at start, so the
 *   first apply after a restart changes only what differs (a restart with
 *   unchanged plans changes nothing and interrupts no connection). The hot
 *   path never reads the kernel back.
 * - apply() is atomic per batch: either all of a batch is in the kernel and
 *   in the backend's record, or none of it. A large apply (a cold start with
 *   thousands of services) may be split into several batches; each service
 *   is wholly in one batch, so the kernel never holds half a service.
 *   On failure the caller retries the same changes later (with backoff):
 *   applying a change twice is harmless.
 * - The rules stay when the process exits (a DaemonSet rollout must not
 *   blackhole traffic); only cleanup() removes them.
 * - Actions return 0 or a negative errno; `err` (may be NULL) receives the
 *   kernel's extended-ACK text and what was being programmed. Nothing prints.
 *   A state is not thread-safe.
 */
#ifndef BERTH_PROXY_BACKEND_H
#define BERTH_PROXY_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

#define PROXY_MAX_CIDRS 64

/* Pod egress SNAT: independent of the service proxy (runs with --proxy none too). */
struct proxy_snat_config {
	bool enabled;
	size_t n_pod_cidrs;                           /* sources that are pods */
	struct ipv4_cidr pod_cidrs[PROXY_MAX_CIDRS];
	size_t n_keep;                                /* VPC CIDRs and --snat-exclude: no SNAT */
	struct ipv4_cidr keep[PROXY_MAX_CIDRS];
	struct in_addr to;                            /* SNAT to this address; 0 = masquerade */
};

struct proxy_backend_config {
	const char *table;          /* NULL = "berth" (tests may use another name) */
	bool services;              /* program the service proxy (false: SNAT only) */
	/*
	 * Where NodePorts answer: these addresses, or when none is given every
	 * local address except 127/8 (`fib daddr type local`), as kube-proxy does.
	 */
	size_t n_nodeport_ips;
	struct in_addr nodeport_ips[PLAN_MAX_NODE_IPS];
	/* Traffic to an address here that is no live ClusterIP is dropped; len 0 = none. */
	size_t n_service_cidrs;
	struct ipv4_cidr service_cidrs[PROXY_MAX_CIDRS];
	/* Pod sources: ClusterIP traffic from elsewhere is masqueraded (kube-proxy's local detector). */
	size_t n_pod_cidrs;
	struct ipv4_cidr pod_cidrs[PROXY_MAX_CIDRS];
	bool masquerade_all;        /* masquerade all ClusterIP traffic */
	uint32_t masquerade_mark;   /* one bit; 0 = 0x4000, kube-proxy's default */
	/*
	 * Upper bound on netlink messages in one batch (0 = 20000): a cold start
	 * of 10k services is split so that no one transaction grows without
	 * bound (the kernel's transaction walk is not free, and the ACKs of one
	 * batch must fit in the socket's receive buffer).
	 */
	size_t max_batch_msgs;
	struct proxy_snat_config snat;
};

/* One service to reconcile: key "ns/name"; old NULL = new service, new NULL = removed. */
struct proxy_change {
	const char *key;
	const struct plan_service *old;
	const struct plan_service *new;
};

/* What one apply (or adopt) did: the scale test asserts on these. */
struct proxy_apply_stats {
	size_t batches;           /* transactions committed */
	size_t messages;          /* netlink messages sent, batch begin/end excluded */
	size_t services_changed;  /* services whose kernel state changed */
	size_t services_unchanged;
	size_t chains_added, chains_replaced, chains_deleted;
	size_t sets_added, sets_deleted;
	size_t elems_added, elems_deleted;
	size_t rules_added;
	uint64_t elapsed_ns;      /* wall time spent, including the kernel's */
};

/* apply() flags */
enum {
	/*
	 * The changes name every service that should exist: whatever the
	 * backend holds (adopted or applied) for a service not named is
	 * removed. The agent's first sync after a restart uses it, so that
	 * services deleted while it was down disappear.
	 */
	PROXY_APPLY_FULL = 1u << 0,
};

struct proxy_backend_ops {
	const char *name;
	/* Allocate a state; no kernel changes yet. */
	int (*init)(void **state, const struct proxy_backend_config *cfg, char *err, size_t errlen);
	/*
	 * Read what is programmed (once, at start) into the backend's record.
	 * Nothing is changed; a missing table is not an error.
	 */
	int (*adopt)(void *state, struct proxy_apply_stats *stats, char *err, size_t errlen);
	/*
	 * Make the kernel carry each change's new plan, touching only what
	 * differs from the backend's record. The first apply also installs the
	 * backend's fixed scaffolding (base chains, dispatch maps).
	 */
	int (*apply)(void *state, const struct proxy_change *changes, size_t n, unsigned flags,
		     struct proxy_apply_stats *stats, char *err, size_t errlen);
	/* Replace the pod egress SNAT configuration (enabled=false removes it). */
	int (*set_snat)(void *state, const struct proxy_snat_config *snat,
			struct proxy_apply_stats *stats, char *err, size_t errlen);
	/* Remove everything berth installed (berth-agent --cleanup). Missing is fine. */
	int (*cleanup)(void *state, char *err, size_t errlen);
	/* Free the state; the kernel keeps the rules. Accepts NULL. */
	void (*destroy)(void *state);
};

extern const struct proxy_backend_ops nft_backend_ops;

#endif
