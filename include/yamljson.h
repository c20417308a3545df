/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML to jansson, through libyaml: mappings become objects, sequences
 * arrays, and plain scalars take the YAML 1.2 core schema's types (null,
 * true/false, integers, floats); quoted scalars stay strings. Anchors and
 * aliases are refused (billion-laughs), as are non-scalar keys, duplicate
 * keys, unknown tags, and more than YJ_MAX_DEPTH levels. Integers beyond 64
 * bits and non-finite floats stay strings. JSON text is YAML, so JSON
 * manifests take the same path, with libyaml's limits on it: a key (from its
 * start to the ':') may be at most 1024 characters, "\uD83D\uDE00"-style
 * surrogate escapes are refused (write the character itself), and raw
 * U+0085/U+2028/U+2029 inside a string are YAML 1.1 line breaks (escape
 * them). Details in lib/yamljson.c.
 */
#ifndef BERTH_YAMLJSON_H
#define BERTH_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#define YJ_MAX_DEPTH 64
#define YJ_MAX_DOCS 10000

/*
 * Decode every document of buf into a JSON array (one element per document;
 * empty documents, and documents that are just null, are skipped). At most
 * YJ_MAX_DOCS documents; callers bound len. NULL with err set to
 * "line:column: problem" (1-based) on error.
 */
json_t *yaml_to_json_docs(const char *buf, size_t len, char *err, size_t errlen);

#endif
