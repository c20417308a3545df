/* SPDX-License-Identifier: Apache-2.0 */
/*
 * <run-dir>/ipam.json: {"version":1,"ipam":{...ipam_to_json...}}.
 * Written with atomic_write_file before any reply that depends on it.
 */
#ifndef BERTH_CHECKPOINT_H
#define BERTH_CHECKPOINT_H

#include <stddef.h>

#include "ipam.h"

#define CHECKPOINT_VERSION 1
#define CHECKPOINT_MAX_BYTES (64u << 20)

int checkpoint_save(const struct ipam *ipam, const char *path);
/*
 * Load path into a fresh ipam. -ENOENT when there is no checkpoint (first
 * start); -EINVAL with err explaining what is wrong for a corrupt or
 * truncated file, in which case ipam must be discarded.
 */
int checkpoint_load(struct ipam *ipam, const char *path, char *err, size_t errlen);

#endif
