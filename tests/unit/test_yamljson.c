// SPDX-License-Identifier: Apache-2.0
/* YAML to JSON: core-schema typing, structure, refusals and error positions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "yamljson.h"

static json_t *decode(const char *yaml, char *err, size_t errlen)
{
	return yaml_to_json_docs(yaml, strlen(yaml), err, errlen);
}

/* yaml must decode to exactly the documents in want_json (a JSON array). */
static void decodes_to(const char *yaml, const char *want_json)
{
	json_error_t jerr;
	char err[256];
	json_t *got = decode(yaml, err, sizeof(err));
	json_t *want = json_loads(want_json, JSON_DECODE_ANY, &jerr);

	if (!want)
		fail_msg("bad expected JSON %s: %s", want_json, jerr.text);
	if (!got)
		fail_msg("%s: refused: %s", yaml, err);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);

		fail_msg("%s:\n got  %s\n want %s", yaml, g, want_json);
	}
	json_decref(got);
	json_decref(want);
}

/* The single document of yaml must equal want_json. */
static void doc_is(const char *yaml, const char *want_json)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "[%s]", want_json);
	decodes_to(yaml, buf);
}

/* yaml must be refused with an error containing want. */
static void refused(const char *yaml, const char *want)
{
	char err[256] = "";
	json_t *got = decode(yaml, err, sizeof(err));

	if (got) {
		char *g = json_dumps(got, JSON_ENCODE_ANY);

		fail_msg("%s: accepted as %s", yaml, g);
	}
	if (!strstr(err, want))
		fail_msg("%s: err \"%s\" lacks \"%s\"", yaml, err, want);
}

/* ---- scalars ---- */

static void test_plain_null_bool(void **state)
{
	doc_is("a: null\nb: Null\nc: NULL\nd: ~\ne:\nf: true\ng: True\nh: TRUE\n"
	       "i: false\nj: False\nk: FALSE\n",
	       "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null,\"f\":true,\"g\":true,"
	       "\"h\":true,\"i\":false,\"j\":false,\"k\":false}");
	/* YAML 1.1 words and odd capitalisations are strings in the core schema. */
	doc_is("[yes, no, on, off, y, n, nULL, tRUE, none]",
	       "[\"yes\",\"no\",\"on\",\"off\",\"y\",\"n\",\"nULL\",\"tRUE\",\"none\"]");
}

static void test_plain_int(void **state)
{
	doc_is("[0, 7, -7, +7, 0777, 0o17, 0x1F, 0xff, 007]", "[0,7,-7,7,777,15,31,255,7]");
	doc_is("[9223372036854775807, -9223372036854775808]",
	       "[9223372036854775807,-9223372036854775808]");
	/* Beyond 64 bits: kept as text rather than rounded or refused. */
	doc_is("[9223372036854775808, -9223372036854775809, 0x8000000000000000, "
	       "0o1777777777777777777777,"
	       " 123456789012345678901234567890]",
	       "[\"9223372036854775808\",\"-9223372036854775809\",\"0x8000000000000000\","
	       "\"0o1777777777777777777777\",\"123456789012345678901234567890\"]");
	/* Not integers in the core schema. */
	doc_is("[1_000, 0x, 0o, 0o8, 0xg, -0x1, +0o1, 1a, 0b101, '-', +]",
	       "[\"1_000\",\"0x\",\"0o\",\"0o8\",\"0xg\",\"-0x1\",\"+0o1\",\"1a\",\"0b101\","
	       "\"-\",\"+\"]");
}

static void test_plain_float(void **state)
{
	doc_is("[1.5, -0.25, .5, +.5, 1., 1e3, 1E-2, -2.5e+2, 0.0]",
	       "[1.5,-0.25,0.5,0.5,1.0,1000.0,0.01,-250.0,0.0]");
	/* JSON cannot hold non-finite numbers: they stay text. */
	doc_is("[.inf, -.Inf, +.INF, .nan, .NaN, .NAN, 1e999, -1e999]",
	       "[\".inf\",\"-.Inf\",\"+.INF\",\".nan\",\".NaN\",\".NAN\",\"1e999\",\"-1e999\"]");
	doc_is("[1.2.3, ., 1e, e5, .e5, 1.5x, 0x1p3, inf, nan]",
	       "[\"1.2.3\",\".\",\"1e\",\"e5\",\".e5\",\"1.5x\",\"0x1p3\",\"inf\",\"nan\"]");
}

static void test_quoted_are_strings(void **state)
{
	doc_is("a: 'true'\nb: \"1\"\nc: 'null'\nd: \"\"\ne: ''\nf: \"0x10\"\ng: '1.5'\n",
	       "{\"a\":\"true\",\"b\":\"1\",\"c\":\"null\",\"d\":\"\",\"e\":\"\",\"f\":\"0x10\","
	       "\"g\":\"1.5\"}");
	doc_is("lit: |\n  line1\n  42\nfold: >\n  a\n  b\nkeep: |+\n  x\n\nstrip: |-\n  7\n",
	       "{\"lit\":\"line1\\n42\\n\",\"fold\":\"a "
	       "b\\n\",\"keep\":\"x\\n\\n\",\"strip\":\"7\"}");
	doc_is("[\"tab\\there\", \"\\u00e9\", 'it''s']", "[\"tab\\there\",\"\\u00e9\",\"it's\"]");
	doc_is("plain text with spaces", "\"plain text with spaces\"");
}

static void test_nul_bytes(void **state)
{
	char err[256];
	json_t *d = decode("a: \"x\\0y\"", err, sizeof(err));

	/* A NUL inside a value is kept (JSON can hold it; consumers check). */
	assert_non_null(d);
	assert_int_equal(json_string_length(json_object_get(json_array_get(d, 0), "a")), 3);
	json_decref(d);
	/* In a key it would be truncated by jansson's C-string keys. */
	refused("\"a\\0b\": 1", "NUL");
}

static void test_tags(void **state)
{
	doc_is("[!!str 1, !!str true, !!int \"42\", !!int 0x10, !!bool 'false', !!null '', "
	       "!!null ~, !!float 1, !!float '2.5', ! 12]",
	       "[\"1\",\"true\",42,16,false,null,null,1.0,2.5,\"12\"]");
	doc_is("!!map {a: !!seq [1]}", "{\"a\":[1]}");
	refused("a: !!int abc", "!!int");
	refused("a: !!int 99999999999999999999", "!!int");
	refused("a: !!bool yes", "!!bool");
	refused("a: !!null x", "!!null");
	refused("a: !!float .inf", "!!float");
	refused("a: !!binary aGk=", "unsupported tag");
	refused("a: !custom x", "unsupported tag");
	refused("!!seq {a: 1}", "unsupported tag");
	refused("a: !!map [1]", "unsupported tag");
	/* Keys keep their text under a core tag; other tags are refused there too. */
	doc_is("{!!int 1: a, !!str b: c}", "{\"1\":\"a\",\"b\":\"c\"}");
	refused("!!binary k: v", "unsupported tag");
}

/* ---- structure ---- */

static void test_nested_and_flow(void **state)
{
	doc_is("a:\n  b:\n    - 1\n    - c: [x, {d: e}]\n      f: {}\n  g: []\n",
	       "{\"a\":{\"b\":[1,{\"c\":[\"x\",{\"d\":\"e\"}],\"f\":{}}],\"g\":[]}}");
	doc_is("- - - deep\n- {k: v, n: 1}\n", "[[[\"deep\"]],{\"k\":\"v\",\"n\":1}]");
	/* Keys are their text, whatever the scalar would type to. */
	doc_is("{1: a, true: b, null: c, 1.5: d, '': e}",
	       "{\"1\":\"a\",\"true\":\"b\",\"null\":\"c\",\"1.5\":\"d\",\"\":\"e\"}");
	/* No merge: "<<" is an ordinary key. */
	doc_is("<<: {a: 1}", "{\"<<\":{\"a\":1}}");
}

static void test_json_as_yaml(void **state)
{
	doc_is("{\"a\": [1, 2]}", "{\"a\":[1,2]}");
	doc_is("{\n\t\"kind\": \"Service\",\n\t\"n\": -1.5e3,\n\t\"t\": true,\n\t\"z\": null,\n"
	       "\t\"s\": \"x\\\"y\\u0041\",\n\t\"e\": {}, \"l\": [[], {\"x\": [0]}]\n}\n",
	       "{\"kind\":\"Service\",\"n\":-1500.0,\"t\":true,\"z\":null,\"s\":\"x\\\"yA\","
	       "\"e\":{},\"l\":[[],{\"x\":[0]}]}");
	doc_is("[1, \"2\", 3.0]", "[1,\"2\",3.0]");
}

static void test_multi_doc(void **state)
{
	decodes_to("", "[]");
	decodes_to("# only a comment\n", "[]");
	decodes_to("---\n", "[]");
	decodes_to("---\n---\na: 1\n---\n# nothing\n---\n- x\n...\n---\n~\n--- null\n--- 0\n",
		   "[{\"a\":1},[\"x\"],0]");
	decodes_to("a: 1\n---\nb: 2\n", "[{\"a\":1},{\"b\":2}]");
}

static void test_max_docs(void **state)
{
	size_t n = YJ_MAX_DOCS + 1, len = n * 4;
	char err[256];
	char *buf = malloc(len + 1);
	json_t *d;

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + i * 4, "---\n", 4);
	buf[len] = '\0';
	assert_null(yaml_to_json_docs(buf, len, err, sizeof(err)));
	assert_non_null(strstr(err, "documents"));
	/* Exactly the maximum is fine. */
	d = yaml_to_json_docs(buf, len - 4, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(json_array_size(d), 0);
	json_decref(d);
	free(buf);
}

static void test_duplicate_keys(void **state)
{
	refused("a: 1\nb: 2\na: 3\n", "duplicate key \"a\"");
	refused("{x: 1, x: 2}", "duplicate key \"x\"");
	refused("o:\n  k: 1\n  k: 1\n", "duplicate key \"k\"");
	/* The same key in sibling mappings is not a duplicate. */
	doc_is("- k: 1\n- k: 2\n", "[{\"k\":1},{\"k\":2}]");
	/* Keys compare by text: 1 and '1' are the same JSON key. */
	refused("{1: a, '1': b}", "duplicate key");
}

static void test_aliases_refused(void **state)
{
	refused("a: &x 1\nb: *x\n", "anchors are not supported");
	refused("b: *x\n", "aliases are not supported");
	refused("a: &x [1]\n", "anchors");
	refused("a: &x {k: v}\n", "anchors");
	refused("&x k: v\n", "anchors");
	/* The billion-laughs shape never gets to expand. */
	refused("a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n", "not supported");
}

static void test_non_scalar_keys(void **state)
{
	refused("? [a]\n: b\n", "mapping keys must be scalars");
	refused("? {a: 1}\n: b\n", "mapping keys must be scalars");
	refused("{[a]: b}", "mapping keys must be scalars");
}

static void nest(char *buf, int n)
{
	for (int i = 0; i < n; i++)
		buf[i] = '[';
	for (int i = 0; i < n; i++)
		buf[n + i] = ']';
	buf[2 * n] = '\0';
}

static void test_depth_limit(void **state)
{
	char buf[2 * (YJ_MAX_DEPTH + 2) + 1], err[256];
	json_t *d;

	nest(buf, YJ_MAX_DEPTH);
	d = decode(buf, err, sizeof(err));
	assert_non_null(d);
	json_decref(d);
	nest(buf, YJ_MAX_DEPTH + 1);
	refused(buf, "nesting deeper than");

	/* Block style counts the same way: 64 mappings deep is the limit. */
	{
		char yaml[16384];
		size_t o = 0;

		for (int i = 0; i <= YJ_MAX_DEPTH; i++)
			o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "%*sk:\n", 2 * i, "");
		refused(yaml, "nesting deeper than");
	}
	/* A huge nesting fails early and cleanly. */
	{
		size_t n = 100000;
		char *big = malloc(n + 1);

		assert_non_null(big);
		memset(big, '[', n);
		big[n] = '\0';
		refused(big, "nesting deeper than");
		free(big);
	}
}

/* ---- Kubernetes manifests ---- */

static const char service_yaml[] = "# A Service, as kubectl would apply it.\n"
				   "apiVersion: v1\n"
				   "kind: Service\n"
				   "metadata:\n"
				   "  name: web\n"
				   "  namespace: default\n"
				   "  labels:\n"
				   "    app.kubernetes.io/name: web\n"
				   "    tier: \"1\"\n"
				   "  annotations:\n"
				   "    note: |\n"
				   "      multi\n"
				   "      line\n"
				   "spec:\n"
				   "  type: ClusterIP\n"
				   "  clusterIP: 10.96.0.10\n"
				   "  clusterIPs: [10.96.0.10]\n"
				   "  ipFamilies:\n"
				   "  - IPv4\n"
				   "  selector:\n"
				   "    app: web\n"
				   "  sessionAffinity: None\n"
				   "  publishNotReadyAddresses: false\n"
				   "  ports:\n"
				   "  - name: http\n"
				   "    protocol: TCP\n"
				   "    port: 80\n"
				   "    targetPort: 8080\n"
				   "  - name: dns\n"
				   "    protocol: UDP\n"
				   "    port: 53\n"
				   "    targetPort: dns\n"
				   "status:\n"
				   "  loadBalancer: {}\n";

static const char service_json[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\","
	"\"metadata\":{\"name\":\"web\",\"namespace\":\"default\","
	"\"labels\":{\"app.kubernetes.io/name\":\"web\",\"tier\":\"1\"},"
	"\"annotations\":{\"note\":\"multi\\nline\\n\"}},"
	"\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.10\","
	"\"clusterIPs\":[\"10.96.0.10\"],\"ipFamilies\":[\"IPv4\"],"
	"\"selector\":{\"app\":\"web\"},\"sessionAffinity\":\"None\","
	"\"publishNotReadyAddresses\":false,"
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080},"
	"{\"name\":\"dns\",\"protocol\":\"UDP\",\"port\":53,\"targetPort\":\"dns\"}]},"
	"\"status\":{\"loadBalancer\":{}}}";

static void test_service_manifest(void **state)
{
	doc_is(service_yaml, service_json);
}

static void test_list_manifest(void **state)
{
	doc_is("apiVersion: v1\n"
	       "kind: List\n"
	       "items:\n"
	       "- apiVersion: v1\n"
	       "  kind: Namespace\n"
	       "  metadata: {name: demo}\n"
	       "- apiVersion: discovery.k8s.io/v1\n"
	       "  kind: EndpointSlice\n"
	       "  metadata:\n"
	       "    name: web-abc\n"
	       "    namespace: demo\n"
	       "    labels: {kubernetes.io/service-name: web}\n"
	       "  addressType: IPv4\n"
	       "  endpoints:\n"
	       "  - addresses: [\"198.18.0.5\"]\n"
	       "    conditions: {ready: true, serving: true, terminating: false}\n"
	       "    nodeName: node-1\n"
	       "  ports:\n"
	       "  - {name: http, port: 8080, protocol: TCP}\n"
	       "metadata:\n"
	       "  resourceVersion: \"\"\n",
	       "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
	       "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"demo\"}},"
	       "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
	       "\"metadata\":{\"name\":\"web-abc\",\"namespace\":\"demo\","
	       "\"labels\":{\"kubernetes.io/service-name\":\"web\"}},"
	       "\"addressType\":\"IPv4\","
	       "\"endpoints\":[{\"addresses\":[\"198.18.0.5\"],"
	       "\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},"
	       "\"nodeName\":\"node-1\"}],"
	       "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}],"
	       "\"metadata\":{\"resourceVersion\":\"\"}}");
}

/* ---- error positions ---- */

static void test_error_positions(void **state)
{
	/* Ours, at the offending event. */
	refused("a: 1\nb: 2\na: 3\n", "3:1: duplicate key");
	refused("a: 1\nb:\n  c: *x\n", "3:6: aliases");
	refused("x:\n  - !!int no\n", "2:5: !!int");
	/* libyaml's scanner and parser errors. */
	refused("a: [1, 2\nb: 3\n", "2:2: did not find expected ',' or ']'");
	refused("a: b: c\n", "1:5:");
	refused("a:\n\tb: 1\n", "2:1:");
	refused("key: \"unterminated\n", "2:1:");
	/* Reader errors come as an offset: turned into a position too. */
	refused("a: 1\nb: \xff\n", "2:4:");
}

static void test_null_buffer(void **state)
{
	char err[64];
	json_t *d = yaml_to_json_docs(NULL, 0, err, sizeof(err));

	assert_non_null(d);
	assert_int_equal(json_array_size(d), 0);
	json_decref(d);
	/* A zero-sized error buffer is never written. */
	assert_null(yaml_to_json_docs("a: *x", 5, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_null_bool),
		cmocka_unit_test(test_plain_int),
		cmocka_unit_test(test_plain_float),
		cmocka_unit_test(test_quoted_are_strings),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_nested_and_flow),
		cmocka_unit_test(test_json_as_yaml),
		cmocka_unit_test(test_multi_doc),
		cmocka_unit_test(test_max_docs),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_aliases_refused),
		cmocka_unit_test(test_non_scalar_keys),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_service_manifest),
		cmocka_unit_test(test_list_manifest),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_null_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
