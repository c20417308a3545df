/* SPDX-License-Identifier: Apache-2.0 */
#ifndef BERTH_VETHNAME_H
#define BERTH_VETHNAME_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#define VETH_PREFIX_DEFAULT "brt"
#define VETH_PREFIX_MAX 4

/* true when prefix is 1..4 chars of [a-z0-9] */
bool veth_prefix_valid(const char *prefix);

/* "<prefix><first 11 hex of sha1("<namespace>.<pod>")>" into out[IFNAMSIZ]. 0 or -EINVAL. */
int veth_host_name(const char *prefix, const char *k8s_namespace, const char *pod, char out[IFNAMSIZ]);

#endif
