// SPDX-License-Identifier: Apache-2.0
/*
 * YAML to jansson through libyaml's event parser. The document loader is
 * avoided on purpose: it expands aliases into a node graph and gives no hook
 * to bound nesting. Here each event is turned into JSON as it arrives, with
 * an explicit stack of open containers, so depth is bounded by YJ_MAX_DEPTH
 * and no recursion happens anywhere.
 *
 * Choices, so that manifests mean the same thing here as in kubectl as far as
 * JSON can say it:
 * - Plain scalars resolve by the YAML 1.2 core schema. YAML 1.1 words such
 *   as yes/no/on/off stay strings; a leading 0 is decimal, not octal.
 * - Integers that do not fit in json_int_t stay strings (their text is kept
 *   intact rather than rounded); floats that overflow to infinity and the
 *   .inf/.nan forms stay strings too, since JSON cannot hold them.
 * - Tags: !!str, !!int, !!bool, !!null, !!float, !!map, !!seq and the
 *   non-specific "!" are honoured; a value that does not fit its explicit
 *   tag, and every other tag, is an error: silently dropping a tag would
 *   change the meaning of the document.
 * - Anchors and aliases are refused: aliases allow exponential expansion
 *   (billion laughs), and an anchor without an alias has no use in JSON.
 *   "<<" is therefore an ordinary key, not a merge.
 * - Keys must be scalars and become their text ("1: a" → {"1": "a"});
 *   duplicates and keys with a NUL byte are refused.
 * - Documents whose root is null (empty, "~", "null") are skipped, as kubectl
 *   skips empty documents between "---" separators.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "yamljson.h"

struct yj_frame {
	json_t *v; /* borrowed: already owned by its parent or by ctx->root */
	char *key; /* mappings: the key waiting for its value, or NULL */
};

struct yj_ctx {
	struct yj_frame st[YJ_MAX_DEPTH];
	int depth;
	unsigned int ndocs;
	json_t *root; /* the current document's root */
	json_t *docs;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int yj_fail(struct yj_ctx *c, const yaml_mark_t *m,
							 const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%zu:%zu: %s", m->line + 1, m->column + 1, msg);
	return -EINVAL;
}

static int yj_oom(struct yj_ctx *c, const yaml_mark_t *m)
{
	yj_fail(c, m, "out of memory");
	return -ENOMEM;
}

/* ---- scalar resolution (YAML 1.2 core schema) ---- */

static bool eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static bool is_null_word(const char *s, size_t len)
{
	return len == 0 || eq(s, len, "~") || eq(s, len, "null") || eq(s, len, "Null") ||
	       eq(s, len, "NULL");
}

/* 1 and *b set when s is a core-schema boolean, else 0. */
static int parse_bool(const char *s, size_t len, bool *b)
{
	if (eq(s, len, "true") || eq(s, len, "True") || eq(s, len, "TRUE")) {
		*b = true;
		return 1;
	}
	if (eq(s, len, "false") || eq(s, len, "False") || eq(s, len, "FALSE")) {
		*b = false;
		return 1;
	}
	return 0;
}

static int digit_val(char ch, unsigned int base)
{
	int d;

	if (ch >= '0' && ch <= '9')
		d = ch - '0';
	else if (ch >= 'a' && ch <= 'f')
		d = ch - 'a' + 10;
	else if (ch >= 'A' && ch <= 'F')
		d = ch - 'A' + 10;
	else
		return -1;
	return (unsigned int)d < base ? d : -1;
}

/*
 * [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+. 1 with *v set; 0 when s is not an
 * integer; -ERANGE when it is one that json_int_t cannot hold. Parsed by hand:
 * strtoll would accept leading spaces, and the 0o form.
 */
static int parse_int(const char *s, size_t len, json_int_t *v)
{
	unsigned int base = 10;
	bool neg = false, big = false;
	uint64_t mag = 0, limit;
	size_t i = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
		base = s[1] == 'o' ? 8 : 16;
		i = 2;
	} else if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return 0;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		int d = digit_val(s[i], base);

		if (d < 0)
			return 0;
		/* Keep scanning after overflow: "123abc…" must still be "not an int". */
		if (big || mag > (limit - (uint64_t)d) / base)
			big = true;
		else
			mag = mag * base + (uint64_t)d;
	}
	if (big)
		return -ERANGE;
	/* mag may be INT64_MAX + 1 when negative: negate without signed overflow. */
	*v = neg && mag ? -(json_int_t)(mag - 1) - 1 : (json_int_t)mag;
	return 1;
}

static size_t skip_digits(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* True for [-+]?(\.inf|\.Inf|\.INF) and \.nan|\.NaN|\.NAN. */
static bool is_nonfinite_word(const char *s, size_t len)
{
	if (eq(s, len, ".nan") || eq(s, len, ".NaN") || eq(s, len, ".NAN"))
		return true;
	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		s++;
		len--;
	}
	return eq(s, len, ".inf") || eq(s, len, ".Inf") || eq(s, len, ".INF");
}

/*
 * [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?. 1 with *d set; 0 when
 * s is not a float; -ERANGE when it is one JSON cannot hold (overflow to
 * infinity, or the .inf/.nan words). s must be NUL-terminated at len.
 */
static int parse_float(const char *s, size_t len, double *d)
{
	size_t i = 0, j;
	char *end;

	if (is_nonfinite_word(s, len))
		return -ERANGE;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i < len && s[i] == '.') {
		j = skip_digits(s, i + 1, len);
		if (j == i + 1)
			return 0;
		i = j;
	} else {
		j = skip_digits(s, i, len);
		if (j == i)
			return 0;
		i = j;
		if (i < len && s[i] == '.')
			i = skip_digits(s, i + 1, len);
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		j = skip_digits(s, i, len);
		if (j == i)
			return 0;
		i = j;
	}
	if (i != len)
		return 0;
	/* The grammar above is a subset of strtod's, and the C locale is in force. */
	*d = strtod(s, &end);
	if (end != s + len)
		return 0;
	if (!isfinite(*d))
		return -ERANGE;
	return 1;
}

/* A plain, untagged scalar: the first core-schema type that matches, else a string. */
static json_t *resolve_plain(const char *s, size_t len)
{
	json_int_t i;
	double d;
	bool b;

	if (is_null_word(s, len))
		return json_null();
	if (parse_bool(s, len, &b))
		return json_boolean(b);
	switch (parse_int(s, len, &i)) {
	case 1:
		return json_integer(i);
	case -ERANGE:
		/* Not rounded into a float: an ID or a port list would change meaning. */
		return json_stringn(s, len);
	}
	if (parse_float(s, len, &d) == 1)
		return json_real(d);
	return json_stringn(s, len);
}

static int scalar_to_json(struct yj_ctx *c, const yaml_event_t *ev, json_t **out)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	const yaml_mark_t *m = &ev->start_mark;
	bool has_nul = memchr(s, '\0', len) != NULL;
	json_int_t i;
	double d;
	bool b;

	*out = NULL;
	if (!tag) {
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !has_nul)
			*out = resolve_plain(s, len);
		else
			*out = json_stringn(s, len);
	} else if (!strcmp(tag, "!") || !strcmp(tag, YAML_STR_TAG)) {
		*out = json_stringn(s, len);
	} else if (!strcmp(tag, YAML_NULL_TAG)) {
		if (has_nul || !is_null_word(s, len))
			return yj_fail(c, m, "!!null value is not null");
		*out = json_null();
	} else if (!strcmp(tag, YAML_BOOL_TAG)) {
		if (has_nul || !parse_bool(s, len, &b))
			return yj_fail(c, m, "!!bool value is not true or false");
		*out = json_boolean(b);
	} else if (!strcmp(tag, YAML_INT_TAG)) {
		if (has_nul || parse_int(s, len, &i) != 1)
			return yj_fail(c, m, "!!int value is not a 64-bit integer");
		*out = json_integer(i);
	} else if (!strcmp(tag, YAML_FLOAT_TAG)) {
		/* Integers are valid floats too ("!!float 1"). */
		if (!has_nul && parse_int(s, len, &i) == 1)
			*out = json_real((double)i);
		else if (!has_nul && parse_float(s, len, &d) == 1)
			*out = json_real(d);
		else
			return yj_fail(c, m, "!!float value is not a finite number");
	} else {
		return yj_fail(c, m, "unsupported tag \"%.64s\"", tag);
	}
	/* json_stringn refuses invalid UTF-8; libyaml emits valid UTF-8, but be sure. */
	if (!*out)
		return yj_fail(c, m, "cannot represent scalar as JSON");
	return 0;
}

/* ---- tree building ---- */

/* Give v (owned) to the innermost open container, or make it the document root. */
static int attach(struct yj_ctx *c, json_t *v, const yaml_mark_t *m)
{
	struct yj_frame *f;
	int r;

	if (c->depth == 0) {
		/* libyaml delivers exactly one root node per document. */
		json_decref(c->root);
		c->root = v;
		return 0;
	}
	f = &c->st[c->depth - 1];
	if (json_is_array(f->v)) {
		r = json_array_append_new(f->v, v); /* steals v even on failure */
	} else {
		r = json_object_set_new(f->v, f->key, v);
		free(f->key);
		f->key = NULL;
	}
	return r ? yj_oom(c, m) : 0;
}

/* Is the innermost container a mapping waiting for a key? */
static bool want_key(const struct yj_ctx *c)
{
	const struct yj_frame *f;

	if (c->depth == 0)
		return false;
	f = &c->st[c->depth - 1];
	return json_is_object(f->v) && !f->key;
}

static int on_key(struct yj_ctx *c, const yaml_event_t *ev)
{
	struct yj_frame *f = &c->st[c->depth - 1];
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;

	/*
	 * A key is its text whatever its core tag says (JSON keys are strings);
	 * other tags are refused here as on values.
	 */
	if (tag && strcmp(tag, "!") && strcmp(tag, YAML_STR_TAG) && strcmp(tag, YAML_INT_TAG) &&
	    strcmp(tag, YAML_BOOL_TAG) && strcmp(tag, YAML_NULL_TAG) && strcmp(tag, YAML_FLOAT_TAG))
		return yj_fail(c, &ev->start_mark, "unsupported tag \"%.64s\"", tag);
	if (memchr(s, '\0', len))
		return yj_fail(c, &ev->start_mark, "mapping key contains a NUL byte");
	if (json_object_get(f->v, s))
		return yj_fail(c, &ev->start_mark, "duplicate key \"%.64s\"", s);
	f->key = strdup(s);
	return f->key ? 0 : yj_oom(c, &ev->start_mark);
}

static int on_open(struct yj_ctx *c, const yaml_event_t *ev)
{
	bool is_map = ev->type == YAML_MAPPING_START_EVENT;
	const char *tag =
		(const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
	const yaml_mark_t *m = &ev->start_mark;
	json_t *v;
	int r;

	if (tag && strcmp(tag, "!") && strcmp(tag, is_map ? YAML_MAP_TAG : YAML_SEQ_TAG))
		return yj_fail(c, m, "unsupported tag \"%.64s\"", tag);
	if (want_key(c))
		return yj_fail(c, m, "mapping keys must be scalars");
	if (c->depth == YJ_MAX_DEPTH)
		return yj_fail(c, m, "nesting deeper than %d levels", YJ_MAX_DEPTH);
	v = is_map ? json_object() : json_array();
	if (!v)
		return yj_oom(c, m);
	/* Attach first, so that on error only the root needs freeing. */
	r = attach(c, v, m);
	if (r < 0)
		return r;
	c->st[c->depth++] = (struct yj_frame){ .v = v };
	return 0;
}

static int on_event(struct yj_ctx *c, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	json_t *v;
	int r;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++c->ndocs > YJ_MAX_DOCS)
			return yj_fail(c, m, "more than %d documents", YJ_MAX_DOCS);
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		v = c->root;
		c->root = NULL;
		if (!v || json_is_null(v)) {
			json_decref(v);
			return 0;
		}
		return json_array_append_new(c->docs, v) ? yj_oom(c, m) : 0;
	case YAML_ALIAS_EVENT:
		return yj_fail(c, m, "aliases are not supported");
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor)
			return yj_fail(c, m, "anchors are not supported");
		if (want_key(c))
			return on_key(c, ev);
		r = scalar_to_json(c, ev, &v);
		return r < 0 ? r : attach(c, v, m);
	case YAML_SEQUENCE_START_EVENT:
		if (ev->data.sequence_start.anchor)
			return yj_fail(c, m, "anchors are not supported");
		return on_open(c, ev);
	case YAML_MAPPING_START_EVENT:
		if (ev->data.mapping_start.anchor)
			return yj_fail(c, m, "anchors are not supported");
		return on_open(c, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		/* libyaml balances these, and a mapping always has a value per key. */
		if (c->depth > 0)
			c->depth--;
		return 0;
	default: /* stream start/end, no-op */
		return 0;
	}
}

/* libyaml's own errors: a mark for scanner/parser errors, a byte offset for reader errors. */
static void parser_error(struct yj_ctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";
	yaml_mark_t m = p->problem_mark;

	if (p->error == YAML_MEMORY_ERROR) {
		yj_oom(c, &m);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		size_t off = p->problem_offset < len ? p->problem_offset : len;

		m = (yaml_mark_t){ 0 };
		for (size_t i = 0; i < off; i++) {
			if (buf[i] == '\n') {
				m.line++;
				m.column = 0;
			} else {
				m.column++;
			}
		}
	}
	if (p->context)
		yj_fail(c, &m, "%s %s (at %zu:%zu)", problem, p->context, p->context_mark.line + 1,
			p->context_mark.column + 1);
	else
		yj_fail(c, &m, "%s", problem);
}

json_t *yaml_to_json_docs(const char *buf, size_t len, char *err, size_t errlen)
{
	struct yj_ctx c = { .err = err, .errlen = errlen };
	yaml_parser_t p;
	yaml_event_t ev;
	bool done = false;
	int r = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!buf) {
		buf = "";
		len = 0;
	}
	c.docs = json_array();
	if (!c.docs || !yaml_parser_initialize(&p)) {
		yj_oom(&c, &(yaml_mark_t){ 0 });
		json_decref(c.docs);
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			parser_error(&c, &p, buf, len);
			r = -EINVAL;
			break;
		}
		r = on_event(&c, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&p);
	if (r < 0) {
		for (int i = 0; i < c.depth; i++)
			free(c.st[i].key);
		json_decref(c.root);
		json_decref(c.docs);
		return NULL;
	}
	return c.docs;
}
