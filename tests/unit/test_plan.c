// SPDX-License-Identifier: Apache-2.0
/*
 * Golden tests of the proxy plan: for every tests/golden/plan/<shape>.in.json
 * (a Service, its EndpointSlices and facts about the node), decode the
 * objects with the agent's own decoder, plan them, and compare the plan's
 * JSON (sorted keys, indented) with <shape>.out.json byte for byte. Each
 * shape is also planned with its slices in reverse order: the plan must not
 * depend on the cache's iteration order.
 *
 * BERTH_UPDATE_GOLDEN=1 rewrites the .out.json files instead of comparing.
 * Regenerated files are a proposal, not a verdict: review each one against
 * kube-proxy's nftables mode before committing it.
 * BERTH_GOLDEN_DIR overrides the directory (default: run from the tree's root).
 *
 * The second half checks plan_equal directly: equal inputs give equal
 * plans, and any single change the backends care about makes them differ.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonx.h"
#include "k8s_model.h"
#include "plan.h"

#define GOLDEN_DIR_DEFAULT "tests/golden/plan"
#define IN_SUFFIX ".in.json"
#define OUT_SUFFIX ".out.json"
#define MAX_SLICES 64

/* ------------------------------------------------------------ one case */

/* A case's decoded inputs; node.name and node.zone point into root. */
struct loaded {
	json_t *root;
	struct plan_node node;
	struct k8s_object *svc;
	size_t n_slices;
	struct k8s_object *slices[MAX_SLICES];
};

static void loaded_free(struct loaded *l)
{
	k8s_object_free(l->svc);
	for (size_t i = 0; i < l->n_slices; i++)
		k8s_object_free(l->slices[i]);
	json_decref(l->root);
	memset(l, 0, sizeof(*l));
}

static void parse_addr(const json_t *v, const char *what, struct in_addr *out)
{
	if (!json_is_string(v) || inet_pton(AF_INET, json_string_value(v), out) != 1)
		fail_msg("node.%s: not an IPv4 address", what);
}

static void parse_cidr(const json_t *v, struct ipv4_cidr *out)
{
	unsigned int plen;

	if (!json_is_string(v) || parse_ipv4_cidr(json_string_value(v), &out->addr, &plen, 0) < 0)
		fail_msg("node.pod_cidrs: not a CIDR");
	out->len = (uint8_t)plen;
}

/* The node facts as the agent would fill them; unknown keys are typos, so they fail. */
static void parse_node(const json_t *j, struct plan_node *n)
{
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_object(j))
		fail_msg("case: \"node\" is missing or not an object");
	json_object_foreach((json_t *)j, key, v) {
		if (!strcmp(key, "name") && json_is_string(v)) {
			n->name = json_string_value(v);
		} else if (!strcmp(key, "zone") && (json_is_string(v) || json_is_null(v))) {
			n->zone = json_string_value(v);
		} else if (!strcmp(key, "node_ip")) {
			parse_addr(v, key, &n->node_ip);
		} else if (!strcmp(key, "nodeport_ips") && json_is_array(v) &&
			   json_array_size(v) <= PLAN_MAX_NODE_IPS) {
			json_t *e;

			json_array_foreach(v, i, e)
				parse_addr(e, key, &n->nodeport_ips[n->n_nodeport_ips++]);
		} else if (!strcmp(key, "pod_cidrs") && json_is_array(v) &&
			   json_array_size(v) <= PLAN_MAX_CIDRS) {
			json_t *e;

			json_array_foreach(v, i, e)
				parse_cidr(e, &n->pod_cidrs[n->n_pod_cidrs++]);
		} else if (!strcmp(key, "masquerade_all") && json_is_boolean(v)) {
			n->masquerade_all = json_is_true(v);
		} else {
			fail_msg("case: node.%s is unknown or of the wrong type", key);
		}
	}
	if (!n->name)
		fail_msg("case: node.name is missing");
}

static struct k8s_object *decode(enum k8s_kind kind, const json_t *j, const char *what)
{
	char err[512];
	struct k8s_object *o = k8s_decode(kind, j, err, sizeof(err));

	if (!o)
		fail_msg("case: %s does not decode: %s", what, err);
	return o;
}

/*
 * A case document: {"description": text, "node": {...}, "service": {...},
 * "endpointslices": [...]}. Takes root.
 */
static void load_case(json_t *root, struct loaded *l)
{
	const json_t *slices;
	const char *key;
	json_t *v;
	size_t i;

	memset(l, 0, sizeof(*l));
	l->root = root;
	json_object_foreach(root, key, v)
		if (strcmp(key, "description") && strcmp(key, "node") && strcmp(key, "service") &&
		    strcmp(key, "endpointslices"))
			fail_msg("case: unknown key \"%s\"", key);
	parse_node(json_object_get(root, "node"), &l->node);
	l->svc = decode(K8S_SERVICE, json_object_get(root, "service"), "service");
	slices = json_object_get(root, "endpointslices");
	if (slices && (!json_is_array(slices) || json_array_size(slices) > MAX_SLICES))
		fail_msg("case: endpointslices is not an array of at most %d", MAX_SLICES);
	json_array_foreach(slices, i, v)
		l->slices[l->n_slices++] = decode(K8S_ENDPOINTSLICE, v, "an endpointslice");
}

static json_t *load_json_file(const char *path)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

	if (!root || !json_is_object(root))
		fail_msg("%s:%d:%d: %s", path, jerr.line, jerr.column,
			 root ? "not an object" : jerr.text);
	return root;
}

/* The slices in the given order or reversed, as the cache might hand them over. */
static struct plan_service *build(const struct loaded *l, bool reverse, bool *ignored)
{
	const struct k8s_endpointslice *eps[MAX_SLICES];

	for (size_t i = 0; i < l->n_slices; i++)
		eps[i] = &l->slices[reverse ? l->n_slices - 1 - i : i]->eps;
	return plan_build(&l->svc->svc, eps, l->n_slices, &l->node, ignored);
}

/* The golden text: the plan, or {"ignored": true}, pretty-printed with sorted keys. */
static char *render(const struct plan_service *p, bool ignored)
{
	json_t *j = p ? plan_to_json(p) : json_pack("{s:b}", "ignored", ignored);
	char *text, *nl;

	assert_non_null(j);
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	assert_non_null(text);
	assert_true(asprintf(&nl, "%s\n", text) > 0);
	free(text);
	return nl;
}

/* ---------------------------------------------------------------- diff */

/* Split text into lines (the array points into text, which is modified). */
static size_t split_lines(char *text, char ***out)
{
	size_t n = 0, cap = 16;
	char **v = malloc(cap * sizeof(*v));

	assert_non_null(v);
	for (char *s = text; *s;) {
		char *nl = strchr(s, '\n');

		if (n == cap) {
			v = realloc(v, (cap *= 2) * sizeof(*v));
			assert_non_null(v);
		}
		v[n++] = s;
		if (!nl)
			break;
		*nl = '\0';
		s = nl + 1;
	}
	*out = v;
	return n;
}

/*
 * A unified-style line diff (longest common subsequence; golden files are
 * a few hundred lines, so the quadratic table is fine), showing changed
 * lines with up to CONTEXT lines around them.
 */
#define CONTEXT 3

struct diff_pos {
	size_t a, b; /* 1-based line numbers in expected and actual */
};

static void print_diff(const char *name, const char *expected, const char *actual)
{
	char *a = strdup(expected), *b = strdup(actual), **la, **lb;
	size_t na = split_lines(a, &la), nb = split_lines(b, &lb), i = 0, j = 0, k = 0;
	unsigned *t = calloc((na + 1) * (nb + 1), sizeof(*t));
	char *op = malloc(na + nb + 1);
	const char **line = malloc((na + nb + 1) * sizeof(*line));
	struct diff_pos *at = malloc((na + nb + 1) * sizeof(*at));

	assert_true(t && op && line && at);
#define T(x, y) t[(x) * (nb + 1) + (y)]
	for (size_t x = na; x-- > 0;)
		for (size_t y = nb; y-- > 0;)
			T(x, y) = !strcmp(la[x], lb[y]) ? T(x + 1, y + 1) + 1
			          : T(x + 1, y) > T(x, y + 1) ? T(x + 1, y) : T(x, y + 1);
	/* Walk the table: removals before additions, as diff -u prints them. */
	while (i < na || j < nb) {
		at[k] = (struct diff_pos){ i + 1, j + 1 };
		if (i < na && j < nb && !strcmp(la[i], lb[j]))
			op[k] = ' ', line[k++] = la[i++], j++;
		else if (i < na && (j == nb || T(i + 1, j) >= T(i, j + 1)))
			op[k] = '-', line[k++] = la[i++];
		else
			op[k] = '+', line[k++] = lb[j++];
	}
#undef T
	fprintf(stderr, "--- %s (expected)\n+++ %s (actual)\n", name, name);
	for (size_t x = 0, last = (size_t)-1; x < k; x++) {
		bool near = false;

		for (size_t y = x >= CONTEXT ? x - CONTEXT : 0; y < k && y <= x + CONTEXT; y++)
			near |= op[y] != ' ';
		if (!near)
			continue;
		if (last == (size_t)-1 || x != last + 1)
			fprintf(stderr, "@@ -%zu +%zu @@\n", at[x].a, at[x].b);
		fprintf(stderr, "%c%s\n", op[x], line[x]);
		last = x;
	}
	free(at);
	free(line);
	free(op);
	free(t);
	free(la);
	free(lb);
	free(a);
	free(b);
}

/* -------------------------------------------------------------- golden */

struct golden {
	char name[NAME_MAX + 1];
	char in_path[PATH_MAX], out_path[PATH_MAX];
};

static const char *golden_dir(void)
{
	const char *d = getenv("BERTH_GOLDEN_DIR");

	return d && *d ? d : GOLDEN_DIR_DEFAULT;
}

static bool updating(void)
{
	const char *u = getenv("BERTH_UPDATE_GOLDEN");

	return u && *u && strcmp(u, "0");
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		fail_msg("%s: cannot write", path);
}

static void check_against_golden(const struct golden *g, const char *actual)
{
	char *expected = read_file(g->out_path);

	/* Rewrite only what changed, so the list printed is the list to review. */
	if (updating()) {
		if (!expected || strcmp(expected, actual)) {
			write_file(g->out_path, actual);
			print_message("updated %s: review it against kube-proxy before committing\n",
				      g->out_path);
		}
		free(expected);
		return;
	}
	if (!expected)
		fail_msg("%s is missing: run with BERTH_UPDATE_GOLDEN=1, then review it",
			 g->out_path);
	if (strcmp(expected, actual)) {
		print_diff(g->out_path, expected, actual);
		free(expected);
		fail_msg("%s: the plan differs from the golden file (diff above)", g->name);
	}
	free(expected);
}

static void test_golden(void **state)
{
	const struct golden *g = *state;
	struct plan_service *p, *rev;
	bool ignored, rev_ignored;
	char *text, *rev_text;
	struct loaded l;

	load_case(load_json_file(g->in_path), &l);
	p = build(&l, false, &ignored);
	assert_true(p || ignored); /* NULL without ignored is an allocation failure */
	text = render(p, ignored);
	check_against_golden(g, text);

	/* Same inputs in another order: the same plan, by plan_equal and by text. */
	rev = build(&l, true, &rev_ignored);
	assert_int_equal(ignored, rev_ignored);
	assert_true(plan_equal(p, rev));
	assert_true(plan_equal(p, p));
	rev_text = render(rev, rev_ignored);
	assert_string_equal(text, rev_text);

	free(rev_text);
	free(text);
	plan_free(rev);
	plan_free(p);
	loaded_free(&l);
}

/* Every golden output has its input: a renamed or deleted shape leaves no stale file. */
static void test_golden_no_orphans(void **state)
{
	char pattern[PATH_MAX], in[PATH_MAX];
	glob_t gl;

	snprintf(pattern, sizeof(pattern), "%s/*" OUT_SUFFIX, golden_dir());
	if (glob(pattern, 0, NULL, &gl) != 0)
		return;
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		size_t len = strlen(gl.gl_pathv[i]) - strlen(OUT_SUFFIX);
		FILE *f;

		snprintf(in, sizeof(in), "%.*s" IN_SUFFIX, (int)len, gl.gl_pathv[i]);
		f = fopen(in, "r");
		if (!f)
			fail_msg("%s has no %s", gl.gl_pathv[i], in);
		fclose(f);
	}
	globfree(&gl);
}

static size_t find_goldens(struct golden **out)
{
	char pattern[PATH_MAX];
	struct golden *g;
	glob_t gl;
	size_t n;

	snprintf(pattern, sizeof(pattern), "%s/*" IN_SUFFIX, golden_dir());
	if (glob(pattern, 0, NULL, &gl) != 0 || !gl.gl_pathc) {
		fprintf(stderr, "no %s: run from the tree's root or set BERTH_GOLDEN_DIR\n",
			pattern);
		exit(1);
	}
	g = calloc(gl.gl_pathc, sizeof(*g));
	if (!g)
		exit(1);
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		const char *base = strrchr(gl.gl_pathv[i], '/') + 1;
		size_t len = strlen(base) - strlen(IN_SUFFIX);

		snprintf(g[i].name, sizeof(g[i].name), "golden:%.*s", (int)len, base);
		snprintf(g[i].in_path, sizeof(g[i].in_path), "%s", gl.gl_pathv[i]);
		snprintf(g[i].out_path, sizeof(g[i].out_path), "%.*s" OUT_SUFFIX,
			 (int)(strlen(gl.gl_pathv[i]) - strlen(IN_SUFFIX)), gl.gl_pathv[i]);
	}
	*out = g;
	n = gl.gl_pathc;
	globfree(&gl);
	return n;
}

/* ---------------------------------------------------------- plan_equal */

/* A LoadBalancer with every feature the plan models, one local and one remote endpoint. */
static const char base_case[] =
	"{'node': {'name': 'node-a', 'node_ip': '198.18.0.1', 'nodeport_ips': ['198.18.0.1'],"
	"          'pod_cidrs': ['198.18.64.0/18']},"
	" 'service': {'metadata': {'namespace': 'default', 'name': 'web', 'resourceVersion': '1'},"
	"   'spec': {'type': 'LoadBalancer', 'clusterIP': '198.18.128.10',"
	"     'externalTrafficPolicy': 'Local', 'healthCheckNodePort': 32000,"
	"     'sessionAffinity': 'ClientIP', 'loadBalancerSourceRanges': ['203.0.113.0/24'],"
	"     'ports': [{'name': 'http', 'port': 80, 'targetPort': 8080, 'nodePort': 30080}]},"
	"   'status': {'loadBalancer': {'ingress': [{'ip': '198.19.0.10'}]}}},"
	" 'endpointslices': [{'metadata': {'namespace': 'default', 'name': 'web-1',"
	"     'labels': {'kubernetes.io/service-name': 'web'}},"
	"   'addressType': 'IPv4', 'ports': [{'name': 'http', 'port': 8080, 'protocol': 'TCP'}],"
	"   'endpoints': [{'addresses': ['198.18.1.10'], 'nodeName': 'node-a'},"
	"                 {'addresses': ['198.18.1.11'], 'nodeName': 'node-b'}]}]}";

/* JSON with single quotes, so the fixture stays readable. */
static json_t *J(const char *text)
{
	char *s = strdup(text);
	json_error_t jerr;
	json_t *v;

	assert_non_null(s);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	v = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	free(s);
	if (!v)
		fail_msg("fixture: %s at %d:%d", jerr.text, jerr.line, jerr.column);
	return v;
}

static json_t *spec(json_t *root)
{
	return json_object_get(json_object_get(root, "service"), "spec");
}

static json_t *slice0(json_t *root)
{
	return json_array_get(json_object_get(root, "endpointslices"), 0);
}

static json_t *endpoint(json_t *root, size_t i)
{
	return json_array_get(json_object_get(slice0(root), "endpoints"), i);
}

static void set(json_t *obj, const char *key, json_t *v)
{
	assert_non_null(obj);
	assert_int_equal(json_object_set_new(obj, key, v), 0);
}

/* Changes every one of which the backends must see. */
static void ep_address(json_t *r)
{
	set(endpoint(r, 1), "addresses", J("['198.18.1.12']"));
}

static void ep_not_ready(json_t *r)
{
	set(endpoint(r, 1), "conditions", J("{'ready': false}"));
}

static void ep_terminating(json_t *r)
{
	set(endpoint(r, 0), "conditions",
	    J("{'ready': false, 'serving': true, 'terminating': true}"));
}

static void ep_moves_here(json_t *r)
{
	set(endpoint(r, 1), "nodeName", json_string("node-a"));
}

static void ep_added(json_t *r)
{
	json_array_append_new(json_object_get(slice0(r), "endpoints"),
			      J("{'addresses': ['198.18.1.13'], 'nodeName': 'node-c'}"));
}

static void slice_port(json_t *r)
{
	set(json_array_get(json_object_get(slice0(r), "ports"), 0), "port", json_integer(8081));
}

static void svc_affinity_timeout(json_t *r)
{
	set(spec(r), "sessionAffinityConfig", J("{'clientIP': {'timeoutSeconds': 60}}"));
}

static void svc_source_range(json_t *r)
{
	set(spec(r), "loadBalancerSourceRanges", J("['203.0.113.0/25']"));
}

static void svc_lb_ip(json_t *r)
{
	set(json_object_get(json_object_get(r, "service"), "status"), "loadBalancer",
	    J("{'ingress': [{'ip': '198.19.0.11'}]}"));
}

static void svc_node_port(json_t *r)
{
	set(json_array_get(json_object_get(spec(r), "ports"), 0), "nodePort", json_integer(30081));
}

static void svc_itp_local(json_t *r)
{
	set(spec(r), "internalTrafficPolicy", json_string("Local"));
}

static void svc_etp_cluster(json_t *r)
{
	set(spec(r), "externalTrafficPolicy", json_string("Cluster"));
}

static void svc_hc_port(json_t *r)
{
	set(spec(r), "healthCheckNodePort", json_integer(32001));
}

static void node_masquerade_all(json_t *r)
{
	set(json_object_get(r, "node"), "masquerade_all", json_true());
}

static void node_nodeport_ip(json_t *r)
{
	set(json_object_get(r, "node"), "nodeport_ips", J("['198.18.0.1', '198.18.0.2']"));
}

/* This node in zone-1, endpoint i hinted for zone zi and (when ni) for node ni. */
static void hint(json_t *r, size_t i, const char *zi, const char *ni)
{
	json_t *h = json_pack("{s:[{s:s}]}", "forZones", "name", zi);

	set(json_object_get(r, "node"), "zone", json_string("zone-1"));
	if (ni)
		set(h, "forNodes", json_pack("[{s:s}]", "name", ni));
	set(endpoint(r, i), "hints", h);
}

static void ep_zone_hints(json_t *r)
{
	hint(r, 0, "zone-1", NULL);
	hint(r, 1, "zone-2", NULL);
}

static void ep_node_hints(json_t *r)
{
	hint(r, 0, "zone-1", "node-a");
	hint(r, 1, "zone-1", "node-b");
}

/* Changes to what the plan does not model: the plan stays the same. */
static void svc_resource_version(json_t *r)
{
	set(json_object_get(json_object_get(r, "service"), "metadata"), "resourceVersion",
	    json_string("2"));
}

static void ep_target_ref(json_t *r)
{
	set(endpoint(r, 1), "targetRef", J("{'kind': 'Pod', 'name': 'web-7d9f'}"));
}

static void other_service_slice(json_t *r)
{
	json_array_append_new(json_object_get(r, "endpointslices"),
		J("{'metadata': {'namespace': 'default', 'name': 'api-1',"
		  "   'labels': {'kubernetes.io/service-name': 'api'}},"
		  " 'addressType': 'IPv4', 'ports': [{'name': 'http', 'port': 8080}],"
		  " 'endpoints': [{'addresses': ['198.18.1.99'], 'nodeName': 'node-a'}]}"));
}

/* Hints that select no subset: every endpoint for this zone, or none. */
static void ep_zone_hints_all_here(json_t *r)
{
	hint(r, 0, "zone-1", NULL);
	hint(r, 1, "zone-1", NULL);
}

static void ep_zone_hints_elsewhere(json_t *r)
{
	hint(r, 0, "zone-2", NULL);
	hint(r, 1, "zone-3", NULL);
}

/* One endpoint without hints turns topology off. */
static void ep_zone_hints_partial(json_t *r)
{
	hint(r, 0, "zone-1", NULL);
}

static void ep_duplicated_in_new_slice(json_t *r)
{
	json_t *copy = json_deep_copy(slice0(r));

	set(json_object_get(copy, "metadata"), "name", json_string("web-2"));
	json_array_append_new(json_object_get(r, "endpointslices"), copy);
}

struct mutation {
	const char *what;
	void (*apply)(json_t *root);
};

static struct plan_service *plan_of(void (*apply)(json_t *root), struct loaded *l)
{
	json_t *root = J(base_case);
	struct plan_service *p;
	bool ignored;

	if (apply)
		apply(root);
	load_case(root, l);
	p = build(l, false, &ignored);
	assert_non_null(p);
	return p;
}

static void check_mutations(const struct mutation *m, size_t n, bool expect_equal)
{
	struct loaded lb, lm;
	struct plan_service *base = plan_of(NULL, &lb);

	for (size_t i = 0; i < n; i++) {
		struct plan_service *p = plan_of(m[i].apply, &lm);

		if (plan_equal(base, p) != expect_equal || plan_equal(p, base) != expect_equal)
			fail_msg("%s: plan_equal says %s", m[i].what,
				 expect_equal ? "different" : "equal");
		plan_free(p);
		loaded_free(&lm);
	}
	plan_free(base);
	loaded_free(&lb);
}

static void test_equal_same_inputs(void **state)
{
	struct loaded la, lb;
	struct plan_service *a = plan_of(NULL, &la), *b = plan_of(NULL, &lb);
	char *ta = render(a, false), *tb = render(b, false);

	/* Two builds from two decodes: separate allocations, equal content. */
	assert_ptr_not_equal(a, b);
	assert_true(plan_equal(a, b));
	assert_true(plan_equal(b, a));
	assert_string_equal(ta, tb);
	assert_true(plan_equal(NULL, NULL));
	assert_false(plan_equal(a, NULL));
	assert_false(plan_equal(NULL, a));
	free(ta);
	free(tb);
	plan_free(a);
	plan_free(b);
	loaded_free(&la);
	loaded_free(&lb);
}

static void test_equal_detects_changes(void **state)
{
	static const struct mutation m[] = {
		{ "endpoint address", ep_address },
		{ "endpoint not ready", ep_not_ready },
		{ "local endpoint terminating", ep_terminating },
		{ "endpoint moved to this node", ep_moves_here },
		{ "endpoint added", ep_added },
		{ "slice port number", slice_port },
		{ "affinity timeout", svc_affinity_timeout },
		{ "source range", svc_source_range },
		{ "load balancer IP", svc_lb_ip },
		{ "nodePort", svc_node_port },
		{ "internalTrafficPolicy", svc_itp_local },
		{ "externalTrafficPolicy", svc_etp_cluster },
		{ "healthCheckNodePort", svc_hc_port },
		{ "masquerade-all", node_masquerade_all },
		{ "NodePort addresses", node_nodeport_ip },
		{ "zone hints narrowing to this zone", ep_zone_hints },
		{ "node hints narrowing to this node", ep_node_hints },
	};

	check_mutations(m, sizeof(m) / sizeof(m[0]), false);
}

static void test_equal_ignores_unmodelled(void **state)
{
	static const struct mutation m[] = {
		{ "resourceVersion", svc_resource_version },
		{ "targetRef", ep_target_ref },
		{ "another service's slice", other_service_slice },
		{ "the same endpoints in a second slice", ep_duplicated_in_new_slice },
		{ "zone hints all for this zone", ep_zone_hints_all_here },
		{ "zone hints all for other zones", ep_zone_hints_elsewhere },
		{ "zone hints on some endpoints only", ep_zone_hints_partial },
	};

	check_mutations(m, sizeof(m) / sizeof(m[0]), true);
}

/* The API's contract around plan_build: ignored services, NULLs. */
static void test_build_contract(void **state)
{
	struct loaded l;
	json_t *root = J(base_case);
	struct plan_service *p;
	bool ignored = false;

	set(spec(root), "clusterIP", json_string("None"));
	load_case(root, &l);
	assert_null(build(&l, false, &ignored));
	assert_true(ignored);
	/* ignored may be NULL; a headless service is still refused. */
	assert_null(plan_build(&l.svc->svc, NULL, 0, &l.node, NULL));
	assert_null(plan_build(NULL, NULL, 0, &l.node, &ignored));
	assert_false(ignored);
	assert_null(plan_build(&l.svc->svc, NULL, 1, &l.node, &ignored));
	loaded_free(&l);

	/* No slices at all: a plan with no endpoints (reject), not a failure. */
	root = J(base_case);
	json_object_del(root, "endpointslices");
	load_case(root, &l);
	p = plan_build(&l.svc->svc, NULL, 0, &l.node, &ignored);
	assert_non_null(p);
	assert_false(ignored);
	assert_int_equal(p->n_ports, 1);
	assert_false(p->ports[0].has_endpoints);
	assert_int_equal(p->ports[0].n_cluster_eps + p->ports[0].n_external_eps, 0);
	plan_free(p);
	loaded_free(&l);

	plan_free(NULL);
	assert_null(plan_to_json(NULL));
}

/* ---------------------------------------------------------------- main */

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_golden_no_orphans),
		cmocka_unit_test(test_equal_same_inputs),
		cmocka_unit_test(test_equal_detects_changes),
		cmocka_unit_test(test_equal_ignores_unmodelled),
		cmocka_unit_test(test_build_contract),
	};
	size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]), n_golden, n;
	struct CMUnitTest *tests;
	struct golden *g;
	int r;

	/* One cmocka test per shape, so a failure names the shape. */
	n_golden = find_goldens(&g);
	n = n_golden + n_fixed;
	tests = calloc(n, sizeof(*tests));
	if (!tests)
		return 1;
	for (size_t i = 0; i < n_golden; i++)
		tests[i] = (struct CMUnitTest){ .name = g[i].name, .test_func = test_golden,
						.initial_state = &g[i] };
	memcpy(tests + n_golden, fixed, sizeof(fixed));
	r = _cmocka_run_group_tests("plan", tests, n, NULL, NULL);
	free(tests);
	free(g);
	return r;
}
