/* SPDX-License-Identifier: Apache-2.0 */
/* Facts about the node the agent reads from the kernel: its addresses and networks. */
#ifndef BERTH_NODEINFO_H
#define BERTH_NODEINFO_H

#include <netinet/in.h>
#include <stddef.h>

#include "k8s_model.h"

/*
 * The node's primary address: the source the kernel picks towards the
 * outside (a UDP connect: nothing is sent). 0.0.0.0 without a default route.
 */
struct in_addr node_primary_address(void);

/*
 * The IPv4 networks of the node's interfaces (global scope, not lo, not
 * berth's pod veths): the default "inside the VPC" set. Returns how many.
 */
size_t node_networks(const char *veth_prefix, struct ipv4_cidr *out, size_t max);

/* Addresses of the node inside any of cidrs (for --nodeport-addresses). */
size_t node_addresses_in(const struct ipv4_cidr *cidrs, size_t n_cidrs, struct in_addr *out,
			 size_t max);

/* Parse "CIDR[,CIDR...]" (host bits masked). 0 or -EINVAL with err. */
int parse_cidr_list(const char *s, struct ipv4_cidr *out, size_t max, size_t *n, char *err,
		    size_t errlen);

#endif
