/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bump allocator for jansson's short-lived trees. Decoding a page of a
 * 10k-service list builds and frees hundreds of thousands of small nodes;
 * with malloc that is a third of the sync's CPU time. Between jarena_begin
 * and jarena_end jansson allocates from the arena and frees nothing; end
 * drops it all at once.
 *
 * Every json_t made inside the window must be released inside it, and
 * nothing else may use jansson meanwhile: the agent is single-threaded, and
 * the window covers one parse-decode-release sequence.
 */
#ifndef BERTH_JARENA_H
#define BERTH_JARENA_H

#include <stddef.h>

struct jarena;

struct jarena *jarena_new(void);
void jarena_free(struct jarena *a);
void jarena_begin(struct jarena *a);
/* Restore malloc; the arena's memory is reused by the next window. */
void jarena_end(struct jarena *a);

#endif
