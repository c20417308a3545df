// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jarena.h"
#include "liststream.h"

/* Where the walk of the top-level object is. */
enum state {
	ST_OPEN,       /* before '{' */
	ST_KEY,        /* a key or '}' (ST_KEY_NEXT: a key after ',') */
	ST_KEY_NEXT,
	ST_COLON,
	ST_VALUE,      /* the value of a key other than "items" */
	ST_ITEMS_OPEN, /* '[' of "items" */
	ST_ITEM,       /* an item or ']' (ST_ITEM_NEXT: an item after ',') */
	ST_ITEM_NEXT,
	ST_ITEM_SEP,   /* ',' or ']' */
	ST_MEMBER_SEP, /* ',' or '}' */
	ST_DONE,
};

struct list_stream {
	list_item_fn fn;
	void *ctx;
	size_t max_value;
	struct jarena *arena;
	enum state st;
	char *buf;
	size_t len, cap, off; /* unconsumed bytes are buf[off..len) */
	char key[64];         /* the current top-level key (truncated: only short ones matter) */
	json_t *metadata;
	size_t items;
};

struct list_stream *list_stream_new(list_item_fn fn, void *ctx, size_t max_value,
				    struct jarena *arena)
{
	struct list_stream *ls = calloc(1, sizeof(*ls));

	if (!ls)
		return NULL;
	*ls = (struct list_stream){ .fn = fn, .ctx = ctx, .max_value = max_value, .arena = arena };
	return ls;
}

void list_stream_reset(struct list_stream *ls)
{
	json_decref(ls->metadata);
	ls->metadata = NULL;
	ls->st = ST_OPEN;
	ls->len = ls->off = 0;
	ls->items = 0;
	ls->key[0] = '\0';
}

void list_stream_free(struct list_stream *ls)
{
	if (!ls)
		return;
	json_decref(ls->metadata);
	free(ls->buf);
	free(ls);
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The next non-blank byte, or 0 when the buffer is exhausted. */
static char peek(struct list_stream *ls)
{
	while (ls->off < ls->len && is_ws(ls->buf[ls->off]))
		ls->off++;
	return ls->off < ls->len ? ls->buf[ls->off] : 0;
}

enum parsed { P_VALUE, P_MORE, P_ERROR };

/* The longest token tail that can look malformed when cut: "\ud83d\ude0" and the like. */
#define CUT_SLACK 16

/*
 * Parse one JSON value at buf[off]. P_MORE when it may continue past the
 * bytes we have: jansson says the input ended early, or the value is a
 * number or literal that more digits or letters could still extend.
 */
static enum parsed parse_value(struct list_stream *ls, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	size_t avail = ls->len - ls->off;
	json_t *v;

	v = json_loadb(ls->buf + ls->off, avail, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &jerr);
	if (!v) {
		/*
		 * A value cut at the end of what has arrived can look malformed (half an
		 * escape, half a UTF-8 sequence, half a literal): an error this close to
		 * the end waits for more bytes. Were it real, it recurs further from
		 * the end once they come, or the list never finishes.
		 */
		if (json_error_code(&jerr) == json_error_premature_end_of_input ||
		    (size_t)jerr.position + CUT_SLACK >= avail)
			return P_MORE;
		snprintf(err, errlen, "%s", jerr.text);
		return P_ERROR;
	}
	if (!json_is_object(v) && !json_is_array(v) && !json_is_string(v) &&
	    (size_t)jerr.position >= avail) {
		json_decref(v);
		return P_MORE;
	}
	ls->off += (size_t)jerr.position;
	*out = v;
	return P_VALUE;
}

/* An item, inside the arena window when there is one. */
static int take_item(struct list_stream *ls, char *err, size_t errlen)
{
	enum parsed p;
	json_t *item = NULL;
	int r = 0;

	if (ls->arena)
		jarena_begin(ls->arena);
	p = parse_value(ls, &item, err, errlen);
	if (p == P_VALUE) {
		ls->items++;
		if (ls->fn(ls->ctx, item) != 0)
			r = -ECANCELED;
		json_decref(item);
	}
	if (ls->arena)
		jarena_end(ls->arena);
	if (p == P_ERROR)
		return -EINVAL;
	return p == P_MORE ? 1 : r;
}

static int expect(struct list_stream *ls, char want, char *err, size_t errlen)
{
	char c = peek(ls);

	if (!c)
		return 1;
	if (c != want) {
		snprintf(err, errlen, "expected '%c', found '%c'", want, c);
		return -EINVAL;
	}
	ls->off++;
	return 0;
}

/* One step of the walk: 0 = progressed, 1 = needs more input, < 0 = error. */
static int step(struct list_stream *ls, char *err, size_t errlen)
{
	json_t *v = NULL;
	enum parsed p;
	char c;
	int r;

	switch (ls->st) {
	case ST_OPEN:
		r = expect(ls, '{', err, errlen);
		if (r == 0)
			ls->st = ST_KEY;
		return r;
	case ST_KEY:
	case ST_KEY_NEXT:
		c = peek(ls);
		if (!c)
			return 1;
		if (c == '}' && ls->st == ST_KEY) {
			ls->off++;
			ls->st = ST_DONE;
			return 0;
		}
		if (c != '"') {
			snprintf(err, errlen, "expected a key, found '%c'", c);
			return -EINVAL;
		}
		p = parse_value(ls, &v, err, errlen);
		if (p != P_VALUE)
			return p == P_MORE ? 1 : -EINVAL;
		snprintf(ls->key, sizeof(ls->key), "%s", json_string_value(v));
		json_decref(v);
		ls->st = ST_COLON;
		return 0;
	case ST_COLON:
		r = expect(ls, ':', err, errlen);
		if (r == 0)
			ls->st = strcmp(ls->key, "items") == 0 ? ST_ITEMS_OPEN : ST_VALUE;
		return r;
	case ST_VALUE:
		if (!peek(ls))
			return 1;
		p = parse_value(ls, &v, err, errlen);
		if (p != P_VALUE)
			return p == P_MORE ? 1 : -EINVAL;
		if (strcmp(ls->key, "metadata") == 0) {
			json_decref(ls->metadata);
			ls->metadata = v;
		} else {
			json_decref(v);
		}
		ls->st = ST_MEMBER_SEP;
		return 0;
	case ST_ITEMS_OPEN:
		c = peek(ls);
		if (c == 'n') { /* "items": null, as Go encodes an empty list */
			p = parse_value(ls, &v, err, errlen);
			if (p != P_VALUE)
				return p == P_MORE ? 1 : -EINVAL;
			json_decref(v);
			ls->st = ST_MEMBER_SEP;
			return 0;
		}
		r = expect(ls, '[', err, errlen);
		if (r == 0)
			ls->st = ST_ITEM;
		return r;
	case ST_ITEM:
	case ST_ITEM_NEXT:
		c = peek(ls);
		if (!c)
			return 1;
		if (c == ']' && ls->st == ST_ITEM) {
			ls->off++;
			ls->st = ST_MEMBER_SEP;
			return 0;
		}
		r = take_item(ls, err, errlen);
		if (r == 0)
			ls->st = ST_ITEM_SEP;
		return r;
	case ST_ITEM_SEP:
		c = peek(ls);
		if (!c)
			return 1;
		ls->off++;
		if (c == ',') {
			ls->st = ST_ITEM_NEXT;
			return 0;
		}
		if (c == ']') {
			ls->st = ST_MEMBER_SEP;
			return 0;
		}
		snprintf(err, errlen, "expected ',' or ']' in items, found '%c'", c);
		return -EINVAL;
	case ST_MEMBER_SEP:
		c = peek(ls);
		if (!c)
			return 1;
		ls->off++;
		if (c == ',') {
			ls->st = ST_KEY_NEXT;
			return 0;
		}
		if (c == '}') {
			ls->st = ST_DONE;
			return 0;
		}
		snprintf(err, errlen, "expected ',' or '}', found '%c'", c);
		return -EINVAL;
	case ST_DONE:
		if (peek(ls)) {
			snprintf(err, errlen, "data after the end of the list");
			return -EINVAL;
		}
		return 1;
	}
	return -EINVAL;
}

static int append(struct list_stream *ls, const char *data, size_t len)
{
	if (!len)
		return 0;
	/* Drop what was consumed before growing. */
	if (ls->off) {
		memmove(ls->buf, ls->buf + ls->off, ls->len - ls->off);
		ls->len -= ls->off;
		ls->off = 0;
	}
	if (ls->len + len > ls->cap) {
		size_t cap = ls->cap ? ls->cap : 65536;
		char *b;

		while (cap < ls->len + len)
			cap *= 2;
		b = realloc(ls->buf, cap);
		if (!b)
			return -ENOMEM;
		ls->buf = b;
		ls->cap = cap;
	}
	memcpy(ls->buf + ls->len, data, len);
	ls->len += len;
	return 0;
}

int list_stream_feed(struct list_stream *ls, const char *data, size_t len, char *err,
		     size_t errlen)
{
	int r = append(ls, data, len);

	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	for (;;) {
		r = step(ls, err, errlen);
		if (r < 0)
			return r;
		if (r == 1)
			break;
	}
	/* Whatever is left is one incomplete value: bound it. */
	if (ls->len - ls->off > ls->max_value) {
		snprintf(err, errlen, "a value of the list exceeds %zu bytes", ls->max_value);
		return -EMSGSIZE;
	}
	return 0;
}

int list_stream_finish(struct list_stream *ls, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v;

	if (ls->st == ST_DONE)
		return 0;
	/* No more bytes are coming: say what is wrong with the rest, if it is not just short. */
	v = json_loadb(ls->buf + ls->off, ls->len - ls->off, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK,
		       &jerr);
	if (!v && ls->len > ls->off && json_error_code(&jerr) != json_error_premature_end_of_input)
		snprintf(err, errlen, "%s", jerr.text);
	else
		snprintf(err, errlen, "the list ended early");
	json_decref(v);
	return -EINVAL;
}

const json_t *list_stream_metadata(const struct list_stream *ls)
{
	return ls->metadata;
}

size_t list_stream_items(const struct list_stream *ls)
{
	return ls->items;
}
