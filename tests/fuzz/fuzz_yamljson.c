// SPDX-License-Identifier: Apache-2.0
/*
 * YAML to JSON: any input either decodes to an array of non-null documents
 * or is refused with a positioned error, never leaking. A decoded result,
 * dumped as JSON and decoded again (JSON is YAML), must come back equal:
 * that catches typing slips such as a string re-read as a number.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const json_t *docs)
{
	char err[256];
	/*
	 * ASCII only: libyaml reads YAML 1.1, where raw U+0085/U+2028/U+2029
	 * are line breaks and fold to spaces inside quotes; escaped they are kept.
	 */
	char *s = json_dumps(docs, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_t *again;

	if (!s)
		return; /* e.g. a string jansson will not encode; nothing to compare */
	again = yaml_to_json_docs(s, strlen(s), err, sizeof(err));
	/*
	 * YAML cannot read back every JSON text (keys over 1024 characters,
	 * surrogate-pair escapes, which libyaml refuses), so only a success is
	 * compared.
	 * One document per array element: a top-level array is one document.
	 */
	if (again && !json_equal(json_array_get(again, 0), docs))
		abort();
	json_decref(again);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *docs, *d;
	size_t i;

	err[0] = '\0';
	docs = yaml_to_json_docs((const char *)data, size, err, sizeof(err));
	if (!docs) {
		/* Every refusal says where: "line:column: ...". */
		if (!err[0] || !strchr(err, ':'))
			abort();
		return 0;
	}
	if (!json_is_array(docs) || json_array_size(docs) > YJ_MAX_DOCS)
		abort();
	json_array_foreach(docs, i, d) {
		if (json_is_null(d))
			abort();
	}
	check_roundtrip(docs);
	json_decref(docs);
	return 0;
}
