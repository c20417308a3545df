/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An incremental decoder for a Kubernetes List response
 * ({"kind":..,"metadata":{..},"items":[..]}): fed the body as it arrives,
 * it hands over each item as soon as its last byte is in, so decoding
 * overlaps the transfer, and only one item's tree (not the page's) exists at
 * a time. Values are parsed by jansson; this only walks the top level.
 */
#ifndef BERTH_LISTSTREAM_H
#define BERTH_LISTSTREAM_H

#include <jansson.h>
#include <stddef.h>

struct list_stream;
struct jarena;

/* Called once per element of "items", in order; non-zero aborts the stream. */
typedef int (*list_item_fn)(void *ctx, const json_t *item);

/* max_value bounds one item (or other top-level value); arena may be NULL. */
struct list_stream *list_stream_new(list_item_fn fn, void *ctx, size_t max_value,
				    struct jarena *arena);
void list_stream_free(struct list_stream *ls);
/* Start over for a new response. */
void list_stream_reset(struct list_stream *ls);

/* 0, or -EINVAL (malformed), -EMSGSIZE (a value over max_value), -ECANCELED (fn said stop). */
int list_stream_feed(struct list_stream *ls, const char *data, size_t len, char *err,
		     size_t errlen);
/* The response is complete: 0 when the document was whole, else -EINVAL with err. */
int list_stream_finish(struct list_stream *ls, char *err, size_t errlen);
/* The top-level "metadata" (resourceVersion, continue), once seen; NULL before. */
const json_t *list_stream_metadata(const struct list_stream *ls);
size_t list_stream_items(const struct list_stream *ls);

#endif
