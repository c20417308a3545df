/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod datapath: the kernel objects that wire one pod attachment
 * VPC-style (see DESIGN.md, "The pod datapath"). Only berth-cni calls this.
 *
 * All functions run in the host (node) network namespace and enter the pod's
 * namespace through sockets opened inside it; they return to the caller's
 * namespace before returning. On failure they fill err with a message a
 * person can act on (the kernel's extended ACK text when there is one).
 */
#ifndef BERTH_DATAPATH_H
#define BERTH_DATAPATH_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* The link-local next hop every pod routes through (as the Amazon VPC CNI). */
#define DP_GATEWAY "169.254.1.1"

/*
 * Routes and rules berth installs carry this protocol number (190: not
 * assigned in rtnetlink.h nor /etc/iproute2/rt_protos), so DEL removes only
 * berth's objects and `ip route show proto 190` lists them.
 */
#define DP_RTPROT 0xbe

/* ip rule priorities: "to pod lookup main" must win over "from pod lookup T". */
#define DP_RULE_PRIO_TO_POD 512
#define DP_RULE_PRIO_FROM_POD 1536

struct dp_pod {
	const char *netns_path;   /* the pod's netns (CNI_NETNS); may be NULL on DEL */
	char ifname[IFNAMSIZ];    /* pod-side interface (CNI_IFNAME) */
	char host_veth[IFNAMSIZ]; /* host-side veth name */
	struct in_addr ip;        /* pod address (as a /32); 0.0.0.0 = unknown (DEL only) */
	unsigned int mtu;         /* 0 = kernel default */
	uint32_t table;           /* policy-routing table for replies; 0 = none */
	/*
	 * With a table: the destinations the "from" rule is limited to, one rule
	 * each (pod egress SNAT on: only what keeps the pod's address leaves
	 * through the table's interface); none = one rule for all destinations.
	 */
	const struct proto_cidr *rule_to;
	size_t n_rule_to;
};

struct dp_links {
	int host_ifindex;
	unsigned char host_mac[6];
	int pod_ifindex;
	unsigned char pod_mac[6];
};

/*
 * Create the veth pair from inside the pod netns with the peer placed
 * directly in the host netns (IFLA_NET_NS_FD), then: pod address /32, route
 * to DP_GATEWAY scope link, default route via DP_GATEWAY, permanent neighbour
 * DP_GATEWAY -> host veth MAC; host side up, quiet sysctls, podIP/32 route in
 * main; when table != 0 the policy rules: "to ip lookup main" and one
 * "from ip [to rule_to[i]] lookup table" per destination, after removing any
 * berth "from ip" rule left by an earlier holder of the address. A host veth
 * of the same name left by an earlier sandbox of the same pod is deleted first.
 * On any failure everything created so far is removed. 0 or -errno.
 */
int dp_add(const struct dp_pod *pod, struct dp_links *out, char *err, size_t errlen);

/*
 * Remove the host route and policy rules for pod->ip (when known: every berth
 * "from ip" rule whatever its destination, table and rule_to) and, when
 * the pod netns still exists, the pod interface's address. Idempotent: an
 * object already gone is success; a missing netns is success. The veth is
 * left to vanish with the pod's netns. 0 or -errno.
 */
int dp_del(const struct dp_pod *pod, char *err, size_t errlen);

/*
 * Verify every object dp_add creates. On mismatch returns -ENOENT (or
 * another -errno) with err naming the missing or wrong object.
 */
int dp_check(const struct dp_pod *pod, char *err, size_t errlen);

/* true when a link of that name exists in the current netns. */
bool dp_link_exists(const char *name);

#endif
