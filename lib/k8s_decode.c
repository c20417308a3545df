// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes API objects (core/v1 Service, Pod, Node; discovery.k8s.io/v1
 * EndpointSlice) into the model structs of k8s_model.h, and Services and
 * EndpointSlices back into API-shaped JSON.
 *
 * Everything here is pure: a jansson tree in, a heap object or an error
 * string out. The input comes from the API server or from manifest files, so
 * nothing is trusted: every string is bounded, and character-checked where
 * the API defines a syntax (names become cache keys "ns/name" and log text);
 * every array is bounded before anything is allocated for it; a wrong JSON
 * type anywhere is an error, never a crash or a silent default. JSON null is
 * read as "absent", as Go's decoder (and so the API server) reads it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "k8s_model.h"

/* Bounds on strings the API leaves open, or whose syntax is checked here. */
#define UID_MAX 128           /* a UUID is 36 bytes */
#define LABEL_VALUE_MAX 63    /* the API's limit on label values */
#define PORT_NAME_MAX 63      /* service and endpoint port names are DNS labels */
#define IANA_SVC_NAME_MAX 15  /* a named targetPort */
#define SHORT_MAX 32          /* enum-like strings: type, protocol, phase, ... */
#define ADDR_TEXT_MAX 64      /* an address or CIDR as text, with some whitespace */
#define NODE_ADDR_MAX 253     /* node addresses may be host names */

#define AFFINITY_TIMEOUT_DEFAULT 10800
#define AFFINITY_TIMEOUT_MAX 86400

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define LABEL_ZONE "topology.kubernetes.io/zone"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- names */

static const char *const kind_names[K8S_NKINDS] = {
	[K8S_SERVICE] = "Service",
	[K8S_ENDPOINTSLICE] = "EndpointSlice",
	[K8S_POD] = "Pod",
	[K8S_NODE] = "Node",
};

const char *k8s_kind_name(enum k8s_kind kind)
{
	return (unsigned int)kind < K8S_NKINDS ? kind_names[kind] : "?";
}

int k8s_kind_from_name(const char *name)
{
	for (int i = 0; name && i < K8S_NKINDS; i++)
		if (!strcmp(name, kind_names[i]))
			return i;
	return -1;
}

/* A string-valued enum of the API and the model value each spelling maps to. */
struct enum_name {
	const char *name;
	int val;
};

static const struct enum_name proto_names[] = {
	{ "TCP", L4_TCP },
	{ "UDP", L4_UDP },
	{ "SCTP", L4_SCTP },
};

static const struct enum_name svc_type_names[] = {
	{ "ClusterIP", SVC_CLUSTER_IP },
	{ "NodePort", SVC_NODE_PORT },
	{ "LoadBalancer", SVC_LOAD_BALANCER },
	{ "ExternalName", SVC_EXTERNAL_NAME },
};

/* Model value 1 = the non-default spelling; also used to encode booleans. */
static const struct enum_name affinity_names[] = { { "None", 0 }, { "ClientIP", 1 } };
static const struct enum_name policy_names[] = { { "Cluster", 0 }, { "Local", 1 } };
static const struct enum_name ip_mode_names[] = { { "VIP", 0 }, { "Proxy", 1 } };

/* Only IPv4 slices carry endpoints; the other two are recognised and kept empty. */
enum addr_type { ADDR_IPV4, ADDR_IPV6, ADDR_FQDN };
static const struct enum_name addr_type_names[] = {
	{ "IPv4", ADDR_IPV4 },
	{ "IPv6", ADDR_IPV6 },
	{ "FQDN", ADDR_FQDN },
};

static int enum_lookup(const struct enum_name *t, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, s))
			return t[i].val;
	return -1;
}

static const char *enum_text(const struct enum_name *t, size_t n, int val)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].val == val)
			return t[i].name;
	return "?";
}

const char *l4_proto_name(enum l4_proto p)
{
	return enum_text(proto_names, ARRAY_SIZE(proto_names), (int)p);
}

/* ------------------------------------------------------- syntax checks */

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
	return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, 1..63 bytes. */
static bool dns_label(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !lower_alnum(s[0]) || !lower_alnum(s[len - 1]))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 1123 subdomain: dot-separated labels, 1..253 bytes. */
static bool dns_subdomain(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > K8S_NAME_MAX)
		return false;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);

		if (!dns_label(s, l))
			return false;
		if (!dot)
			return true;
		s = dot + 1;
	}
}

/* IANA_SVC_NAME: 1..15 of [a-z0-9-], a letter somewhere, no "--", no '-' at either end. */
static bool iana_svc_name(const char *s)
{
	size_t len = strlen(s);
	bool letter = false;

	if (len == 0 || len > IANA_SVC_NAME_MAX || s[0] == '-' || s[len - 1] == '-' ||
	    strstr(s, "--"))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
		letter |= s[i] >= 'a' && s[i] <= 'z';
	}
	return letter;
}

/* A label value: empty, or alphanumerics at both ends with [-_.A-Za-z0-9] between. */
static bool label_value(const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return true;
	if (len > LABEL_VALUE_MAX || !alnum(s[0]) || !alnum(s[len - 1]))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!alnum(*s))
			return false;
	return true;
}

/* ------------------------------------------------------------ decoding */

struct dec {
	char *err;
	size_t errlen;
	/* "ns/name: " once the name is known, so every message names the object. */
	char who[K8S_NAMESPACE_MAX + K8S_NAME_MAX + 4];
};

static int __attribute__((format(printf, 2, 3))) fail(struct dec *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!d->errlen)
		return -EINVAL;
	n = snprintf(d->err, d->errlen, "%s", d->who);
	if (n < 0 || (size_t)n >= d->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int nomem(struct dec *d)
{
	fail(d, "out of memory");
	return -ENOMEM;
}

/*
 * A field name for messages, "path.key". Paths are built by the caller
 * ("spec.ports[3]"); the buffer is per call site, so two can coexist.
 */
struct field {
	char s[96];
};

static const char *field(struct field *f, const char *path, const char *key)
{
	snprintf(f->s, sizeof(f->s), "%s%s%s", path, *path ? "." : "", key);
	return f->s;
}

/* A string value quoted for a message: bounded, with unprintable bytes as '?'. */
struct quoted {
	char s[52];
};

static const char *quote(struct quoted *q, const char *s)
{
	size_t i = 0, o = 0;

	q->s[o++] = '"';
	for (; s[i] && i < 40; i++)
		q->s[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
	if (s[i]) {
		memcpy(q->s + o, "...", 3);
		o += 3;
	}
	q->s[o++] = '"';
	q->s[o] = '\0';
	return q->s;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* obj[key], or NULL when absent or null (Go decodes null as the zero value). */
static json_t *member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/* An optional (or required) object member; *out is NULL when absent. */
static int get_obj(struct dec *d, const json_t *obj, const char *path, const char *key,
		   bool required, const json_t **out)
{
	json_t *v = member(obj, key);
	struct field f;

	*out = NULL;
	if (!v)
		return required ? fail(d, "%s is missing", field(&f, path, key)) : 0;
	if (!json_is_object(v))
		return fail(d, "%s is %s, not an object", field(&f, path, key), type_name(v));
	*out = v;
	return 0;
}

/* An optional array member of at most max entries; *out is NULL when absent. */
static int get_arr(struct dec *d, const json_t *obj, const char *path, const char *key,
		   size_t max, const json_t **out)
{
	json_t *v = member(obj, key);
	struct field f;

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return fail(d, "%s is %s, not an array", field(&f, path, key), type_name(v));
	if (json_array_size(v) > max)
		return fail(d, "%s has %zu entries, more than the limit of %zu",
			    field(&f, path, key), json_array_size(v), max);
	*out = v;
	return 0;
}

/* A string member of at most maxlen bytes: 0, -ENOENT when absent, or an error. */
static int get_str(struct dec *d, const json_t *obj, const char *path, const char *key,
		   size_t maxlen, const char **out)
{
	json_t *v = member(obj, key);
	struct field f;

	if (!v)
		return -ENOENT;
	if (!json_is_string(v))
		return fail(d, "%s is %s, not a string", field(&f, path, key), type_name(v));
	if (jx_string_ref(obj, key, maxlen + 1, out) < 0)
		return json_string_length(v) > maxlen
			       ? fail(d, "%s is longer than %zu bytes", field(&f, path, key), maxlen)
			       : fail(d, "%s contains a NUL byte", field(&f, path, key));
	return 0;
}

static int req_str(struct dec *d, const json_t *obj, const char *path, const char *key,
		   size_t maxlen, const char **out)
{
	struct field f;
	int r = get_str(d, obj, path, key, maxlen, out);

	return r == -ENOENT ? fail(d, "%s is missing", field(&f, path, key)) : r;
}

/* An array entry that must be a string of at most maxlen bytes. */
static int elem_str(struct dec *d, const json_t *arr, size_t i, const char *path, size_t maxlen,
		    const char **out)
{
	json_t *v = json_array_get(arr, i);

	if (!json_is_string(v))
		return fail(d, "%s[%zu] is %s, not a string", path, i, type_name(v));
	if (json_string_length(v) > maxlen)
		return fail(d, "%s[%zu] is longer than %zu bytes", path, i, maxlen);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return fail(d, "%s[%zu] contains a NUL byte", path, i);
	*out = json_string_value(v);
	return 0;
}

/* An integer member in min..max: 0, -ENOENT when absent, or an error. */
static int get_uint(struct dec *d, const json_t *obj, const char *path, const char *key,
		    uint64_t min, uint64_t max, uint64_t *out)
{
	json_t *v = member(obj, key);
	struct field f;

	if (!v)
		return -ENOENT;
	if (!json_is_integer(v))
		return fail(d, "%s is %s, not an integer", field(&f, path, key), type_name(v));
	if (jx_uint(obj, key, max, out) < 0 || *out < min)
		return fail(d, "%s %" JSON_INTEGER_FORMAT " is out of range %ju..%ju",
			    field(&f, path, key), json_integer_value(v), (uintmax_t)min,
			    (uintmax_t)max);
	return 0;
}

/* A boolean member: 0, -ENOENT when absent (the caller's default stands), or an error. */
static int get_bool(struct dec *d, const json_t *obj, const char *path, const char *key,
		    bool *out)
{
	json_t *v = member(obj, key);
	struct field f;
	int b;

	if (!v)
		return -ENOENT;
	if (jx_bool(obj, key, &b) < 0)
		return fail(d, "%s is %s, not a boolean", field(&f, path, key), type_name(v));
	*out = b;
	return 0;
}

/* A string enum member; *out keeps the caller's default when absent. */
static int get_enum(struct dec *d, const json_t *obj, const char *path, const char *key,
		    const struct enum_name *t, size_t n, const char *expected, int *out)
{
	struct quoted q;
	struct field f;
	const char *s;
	int r = get_str(d, obj, path, key, SHORT_MAX, &s), val;

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	val = enum_lookup(t, n, s);
	if (val < 0)
		return fail(d, "%s %s is not %s", field(&f, path, key), quote(&q, s), expected);
	*out = val;
	return 0;
}

static int dup_str(struct dec *d, const char *s, char **out)
{
	*out = strdup(s);
	return *out ? 0 : nomem(d);
}

/* An optional string member copied to the heap; NULL when absent or empty. */
static int get_opt_dup(struct dec *d, const json_t *obj, const char *path, const char *key,
		       size_t maxlen, bool (*valid)(const char *), const char *syntax,
		       char **out)
{
	struct quoted q;
	struct field f;
	const char *s;
	int r = get_str(d, obj, path, key, maxlen, &s);

	*out = NULL;
	if (r == -ENOENT || (r == 0 && !*s))
		return 0;
	if (r < 0)
		return r;
	if (valid && !valid(s))
		return fail(d, "%s %s is not %s", field(&f, path, key), quote(&q, s), syntax);
	return dup_str(d, s, out);
}

/* A port name: "" (unnamed) or a DNS label; always a heap string. */
static int get_port_name(struct dec *d, const json_t *obj, const char *path, char **out)
{
	struct quoted q;
	const char *s = "";
	int r = get_str(d, obj, path, "name", PORT_NAME_MAX, &s);

	if (r < 0 && r != -ENOENT)
		return r;
	if (r == -ENOENT)
		s = "";
	if (*s && !dns_label(s, strlen(s)))
		return fail(d, "%s.name %s is not a DNS label", path, quote(&q, s));
	return dup_str(d, s, out);
}

/*
 * An address as text: 1 with *out set for IPv4, 0 for IPv6 (berth keeps IPv4
 * only; the API allows dual stack, so these are skipped), or an error.
 */
static int parse_ip(struct dec *d, const char *s, const char *what, struct in_addr *out)
{
	struct in6_addr a6;
	struct quoted q;

	if (inet_pton(AF_INET, s, out) == 1)
		return 1;
	if (inet_pton(AF_INET6, s, &a6) == 1)
		return 0;
	return fail(d, "%s %s is not an IP address", what, quote(&q, s));
}

/* Give back the unused tail of an array sized for the JSON input. */
static void *shrink(void *p, size_t n, size_t size)
{
	void *q;

	if (n == 0) {
		free(p);
		return NULL;
	}
	q = realloc(p, n * size);
	return q ? q : p;
}

/* calloc of n entries, NULL (and no error) when n is 0. */
static int alloc_array(struct dec *d, size_t n, size_t size, void **out)
{
	*out = NULL;
	if (n == 0)
		return 0;
	*out = calloc(n, size);
	return *out ? 0 : nomem(d);
}

/*
 * The IPv4 entries of a string array of addresses (already bounded by
 * get_arr). *none, when given, is set by a sole "None" entry (headless).
 */
static int ip_list(struct dec *d, const json_t *arr, const char *path, bool *none,
		   struct in_addr **out, size_t *n)
{
	size_t len = json_array_size(arr);
	char what[96];
	int r;

	r = alloc_array(d, len, sizeof(**out), (void **)out);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++) {
		const char *s;

		r = elem_str(d, arr, i, path, ADDR_TEXT_MAX, &s);
		if (r < 0)
			return r;
		if (none && !strcmp(s, "None")) {
			if (len != 1)
				return fail(d, "%s: \"None\" must be the only entry", path);
			*none = true;
			break;
		}
		snprintf(what, sizeof(what), "%s[%zu]", path, i);
		r = parse_ip(d, s, what, &(*out)[*n]);
		if (r < 0)
			return r;
		*n += (size_t)r;
	}
	*out = shrink(*out, *n, sizeof(**out));
	return 0;
}

/* "ns/name: " (or "name: ") prefix from here on; both are checked printable by now. */
static void set_who(struct dec *d, const char *ns, const char *name)
{
	snprintf(d->who, sizeof(d->who), "%s%s%s: ", ns ? ns : "", ns ? "/" : "", name);
}

/* metadata: name always, namespace for namespaced kinds, uid and resourceVersion if any. */
static int decode_meta(struct dec *d, const json_t *obj, bool namespaced, struct k8s_meta *m,
		       const json_t **meta_out)
{
	const json_t *meta;
	const char *name, *ns = "", *s;
	struct quoted q;
	int r;

	r = get_obj(d, obj, "", "metadata", true, &meta);
	if (r < 0)
		return r;
	*meta_out = meta;
	r = req_str(d, meta, "metadata", "name", K8S_NAME_MAX, &name);
	if (r < 0)
		return r;
	if (!dns_subdomain(name))
		return fail(d, "metadata.name %s is not a DNS subdomain", quote(&q, name));
	if (namespaced) {
		set_who(d, NULL, name);
		r = req_str(d, meta, "metadata", "namespace", K8S_NAMESPACE_MAX, &ns);
		if (r < 0)
			return r;
		if (!dns_label(ns, strlen(ns)))
			return fail(d, "metadata.namespace %s is not a DNS label", quote(&q, ns));
		set_who(d, ns, name);
	} else {
		set_who(d, NULL, name);
	}
	r = dup_str(d, name, &m->name);
	if (r == 0)
		r = dup_str(d, ns, &m->ns);
	if (r < 0)
		return r;

	r = get_str(d, meta, "metadata", "uid", UID_MAX, &s);
	if (r == -ENOENT)
		s = "";
	else if (r < 0)
		return r;
	r = dup_str(d, s, &m->uid);
	if (r < 0)
		return r;
	r = get_str(d, meta, "metadata", "resourceVersion", K8S_RV_MAX, &s);
	if (r == -ENOENT)
		s = "";
	else if (r < 0)
		return r;
	return dup_str(d, s, &m->rv);
}

/* metadata.labels[key] as a heap string, NULL when absent or empty. */
static int get_label(struct dec *d, const json_t *meta, const char *key, char **out)
{
	const json_t *labels;
	struct quoted q;
	const char *s;
	json_t *v;
	int r;

	*out = NULL;
	r = get_obj(d, meta, "metadata", "labels", false, &labels);
	if (r < 0 || !labels)
		return r;
	v = member(labels, key);
	if (!v)
		return 0;
	/* The key has dots in it: say metadata.labels["a.b/c"], not metadata.labels.a.b/c. */
	if (!json_is_string(v))
		return fail(d, "metadata.labels[\"%s\"] is %s, not a string", key, type_name(v));
	if (jx_string_ref(labels, key, LABEL_VALUE_MAX + 1, &s) < 0 || !label_value(s))
		return fail(d, "metadata.labels[\"%s\"] %s is not a label value", key,
			    quote(&q, json_string_value(v)));
	return *s ? dup_str(d, s, out) : 0;
}

/* --- Service --- */

static int decode_target_port(struct dec *d, const json_t *p, const char *path,
			      struct svc_port *sp)
{
	json_t *v = member(p, "targetPort");
	struct quoted q;
	uint64_t u;
	const char *s;
	int r;

	/* The API defaults an absent, 0 or "" targetPort to port. */
	sp->target_port = sp->port;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		r = get_uint(d, p, path, "targetPort", 0, 65535, &u);
		if (r < 0)
			return r;
		if (u)
			sp->target_port = (uint16_t)u;
		return 0;
	}
	if (!json_is_string(v))
		return fail(d, "%s.targetPort is %s, not an integer or a string", path, type_name(v));
	r = get_str(d, p, path, "targetPort", IANA_SVC_NAME_MAX, &s);
	if (r < 0)
		return r;
	if (!*s)
		return 0;
	if (!iana_svc_name(s))
		return fail(d, "%s.targetPort %s is not a port name", path, quote(&q, s));
	sp->target_port = 0;
	return dup_str(d, s, &sp->target_port_name);
}

/* What a Service port and an EndpointSlice port share: an object, a name, a protocol. */
static int decode_port_head(struct dec *d, const json_t *p, const char *path, char **name,
			    enum l4_proto *proto)
{
	int v = L4_TCP;
	int r;

	if (!json_is_object(p))
		return fail(d, "%s is %s, not an object", path, type_name(p));
	r = get_port_name(d, p, path, name);
	if (r < 0)
		return r;
	r = get_enum(d, p, path, "protocol", proto_names, ARRAY_SIZE(proto_names),
		     "TCP, UDP or SCTP", &v);
	if (r < 0)
		return r;
	*proto = (enum l4_proto)v;
	return 0;
}

static int decode_svc_port(struct dec *d, const json_t *p, const char *path, struct svc_port *sp)
{
	uint64_t u;
	int r;

	r = decode_port_head(d, p, path, &sp->name, &sp->proto);
	if (r < 0)
		return r;
	r = get_uint(d, p, path, "port", 1, 65535, &u);
	if (r == -ENOENT)
		return fail(d, "%s.port is missing", path);
	if (r < 0)
		return r;
	sp->port = (uint16_t)u;
	/* 0 is how a manifest asks for allocation; the cluster's range is its own business. */
	r = get_uint(d, p, path, "nodePort", 0, 65535, &u);
	if (r < 0 && r != -ENOENT)
		return r;
	sp->node_port = r == 0 ? (uint16_t)u : 0;
	return decode_target_port(d, p, path, sp);
}

static int decode_cluster_ips(struct dec *d, const json_t *spec, struct k8s_service *s)
{
	const json_t *arr;
	const char *ip;
	int r;

	/* clusterIPs (dual stack) supersedes clusterIP, which is its first entry. */
	r = get_arr(d, spec, "spec", "clusterIPs", K8S_MAX_IPS, &arr);
	if (r < 0)
		return r;
	if (arr && json_array_size(arr))
		return ip_list(d, arr, "spec.clusterIPs", &s->headless, &s->cluster_ips,
			       &s->n_cluster_ips);
	r = get_str(d, spec, "spec", "clusterIP", ADDR_TEXT_MAX, &ip);
	if (r == -ENOENT || (r == 0 && !*ip))
		return 0;
	if (r < 0)
		return r;
	if (!strcmp(ip, "None")) {
		s->headless = true;
		return 0;
	}
	s->cluster_ips = calloc(1, sizeof(*s->cluster_ips));
	if (!s->cluster_ips)
		return nomem(d);
	r = parse_ip(d, ip, "spec.clusterIP", s->cluster_ips);
	if (r < 0)
		return r;
	s->n_cluster_ips = (size_t)r;
	if (!r) {
		free(s->cluster_ips);
		s->cluster_ips = NULL;
	}
	return 0;
}

/* "a.b.c.d/len" with host bits masked off, as kube-proxy's ParseCIDR does; IPv6 skipped. */
static int parse_source_range(struct dec *d, const char *text, size_t i, struct ipv4_cidr *out)
{
	char buf[ADDR_TEXT_MAX + 1], *s = buf, *end, *slash;
	struct in6_addr a6;
	unsigned int plen;
	struct quoted q;
	unsigned long l;

	/* kube-proxy trims whitespace around each entry. */
	snprintf(buf, sizeof(buf), "%s", text);
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	if (parse_ipv4_cidr(s, &out->addr, &plen, 1) == 0) {
		out->len = (uint8_t)plen;
		out->addr.s_addr &= plen ? htonl(~0u << (32 - plen)) : 0;
		return 1;
	}
	slash = strchr(s, '/');
	if (slash && slash[1] >= '0' && slash[1] <= '9') {
		*slash = '\0';
		l = strtoul(slash + 1, &end, 10);
		if (!*end && l <= 128 && inet_pton(AF_INET6, s, &a6) == 1)
			return 0;
	}
	return fail(d, "spec.loadBalancerSourceRanges[%zu] %s is not a CIDR", i, quote(&q, text));
}

static int decode_source_ranges(struct dec *d, const json_t *spec, struct k8s_service *s)
{
	const char *path = "spec.loadBalancerSourceRanges";
	const json_t *arr;
	size_t len;
	int r;

	r = get_arr(d, spec, "spec", "loadBalancerSourceRanges", K8S_MAX_SOURCE_RANGES, &arr);
	if (r < 0 || !arr)
		return r;
	len = json_array_size(arr);
	r = alloc_array(d, len, sizeof(*s->source_ranges), (void **)&s->source_ranges);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++) {
		const char *text;

		r = elem_str(d, arr, i, path, ADDR_TEXT_MAX, &text);
		if (r < 0)
			return r;
		r = parse_source_range(d, text, i, &s->source_ranges[s->n_source_ranges]);
		if (r < 0)
			return r;
		s->n_source_ranges += (size_t)r;
	}
	s->source_ranges = shrink(s->source_ranges, s->n_source_ranges, sizeof(*s->source_ranges));
	return 0;
}

static int decode_affinity(struct dec *d, const json_t *spec, struct k8s_service *s)
{
	const json_t *cfg, *cip;
	int client_ip = 0;
	uint64_t u;
	int r;

	s->affinity_timeout_s = AFFINITY_TIMEOUT_DEFAULT;
	r = get_enum(d, spec, "spec", "sessionAffinity", affinity_names, ARRAY_SIZE(affinity_names),
		     "None or ClientIP", &client_ip);
	if (r < 0)
		return r;
	s->affinity_client_ip = client_ip;
	/* The API clears sessionAffinityConfig unless the affinity is ClientIP. */
	if (!client_ip)
		return 0;
	r = get_obj(d, spec, "spec", "sessionAffinityConfig", false, &cfg);
	if (r < 0 || !cfg)
		return r;
	r = get_obj(d, cfg, "spec.sessionAffinityConfig", "clientIP", false, &cip);
	if (r < 0 || !cip)
		return r;
	r = get_uint(d, cip, "spec.sessionAffinityConfig.clientIP", "timeoutSeconds", 1,
		     AFFINITY_TIMEOUT_MAX, &u);
	if (r == 0)
		s->affinity_timeout_s = (uint32_t)u;
	return r == -ENOENT ? 0 : r;
}

static int decode_lb_ingress(struct dec *d, const json_t *obj, struct k8s_service *s)
{
	const json_t *status, *lb, *arr;
	char path[64], what[96];
	size_t len;
	int r;

	r = get_obj(d, obj, "", "status", false, &status);
	if (r < 0 || !status)
		return r;
	r = get_obj(d, status, "status", "loadBalancer", false, &lb);
	if (r < 0 || !lb)
		return r;
	r = get_arr(d, lb, "status.loadBalancer", "ingress", K8S_MAX_IPS, &arr);
	if (r < 0 || !arr)
		return r;
	len = json_array_size(arr);
	r = alloc_array(d, len, sizeof(*s->lb_ingress), (void **)&s->lb_ingress);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++) {
		const json_t *ing = json_array_get(arr, i);
		struct lb_ingress *li = &s->lb_ingress[s->n_lb_ingress];
		int proxy = 0;
		const char *ip;

		snprintf(path, sizeof(path), "status.loadBalancer.ingress[%zu]", i);
		if (!json_is_object(ing))
			return fail(d, "%s is %s, not an object", path, type_name(ing));
		r = get_enum(d, ing, path, "ipMode", ip_mode_names, ARRAY_SIZE(ip_mode_names),
			     "VIP or Proxy", &proxy);
		if (r < 0)
			return r;
		/* Entries with only a hostname (some cloud load balancers) carry no VIP. */
		r = get_str(d, ing, path, "ip", ADDR_TEXT_MAX, &ip);
		if (r == -ENOENT || (r == 0 && !*ip))
			continue;
		if (r < 0)
			return r;
		snprintf(what, sizeof(what), "%s.ip", path);
		r = parse_ip(d, ip, what, &li->ip);
		if (r < 0)
			return r;
		li->ip_mode_proxy = proxy;
		s->n_lb_ingress += (size_t)r;
	}
	s->lb_ingress = shrink(s->lb_ingress, s->n_lb_ingress, sizeof(*s->lb_ingress));
	return 0;
}

static int decode_service(struct dec *d, const json_t *obj, struct k8s_service *s)
{
	const json_t *meta, *spec, *arr;
	int type = SVC_CLUSTER_IP, etp = 0, itp = 0;
	char path[64];
	uint64_t u;
	size_t len;
	int r;

	r = decode_meta(d, obj, true, &s->meta, &meta);
	if (r < 0)
		return r;
	r = get_obj(d, obj, "", "spec", true, &spec);
	if (r < 0)
		return r;
	r = get_enum(d, spec, "spec", "type", svc_type_names, ARRAY_SIZE(svc_type_names),
		     "ClusterIP, NodePort, LoadBalancer or ExternalName", &type);
	if (r < 0)
		return r;
	s->type = (enum svc_type)type;

	r = get_arr(d, spec, "spec", "ports", K8S_MAX_PORTS, &arr);
	if (r < 0)
		return r;
	len = json_array_size(arr);
	r = alloc_array(d, len, sizeof(*s->ports), (void **)&s->ports);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++) {
		snprintf(path, sizeof(path), "spec.ports[%zu]", i);
		/* Counted before it is filled: a half-built entry is still freed. */
		r = decode_svc_port(d, json_array_get(arr, i), path, &s->ports[s->n_ports++]);
		if (r < 0)
			return r;
	}

	r = decode_cluster_ips(d, spec, s);
	if (r < 0)
		return r;
	r = get_arr(d, spec, "spec", "externalIPs", K8S_MAX_IPS, &arr);
	if (r == 0 && arr)
		r = ip_list(d, arr, "spec.externalIPs", NULL, &s->external_ips, &s->n_external_ips);
	if (r < 0)
		return r;
	r = decode_source_ranges(d, spec, s);
	if (r < 0)
		return r;
	r = decode_affinity(d, spec, s);
	if (r < 0)
		return r;
	r = get_enum(d, spec, "spec", "externalTrafficPolicy", policy_names,
		     ARRAY_SIZE(policy_names), "Cluster or Local", &etp);
	if (r < 0)
		return r;
	s->external_local = etp;
	r = get_enum(d, spec, "spec", "internalTrafficPolicy", policy_names,
		     ARRAY_SIZE(policy_names), "Cluster or Local", &itp);
	if (r < 0)
		return r;
	s->internal_local = itp;
	r = get_uint(d, spec, "spec", "healthCheckNodePort", 0, 65535, &u);
	if (r < 0 && r != -ENOENT)
		return r;
	s->health_check_node_port = r == 0 ? (uint16_t)u : 0;
	return decode_lb_ingress(d, obj, s);
}

/* --- EndpointSlice --- */

static int decode_eps_port(struct dec *d, const json_t *p, const char *path, struct eps_port *ep)
{
	uint64_t u;
	int r;

	r = decode_port_head(d, p, path, &ep->name, &ep->proto);
	if (r < 0)
		return r;
	/* An absent port means "all ports" (0 in the model). */
	r = get_uint(d, p, path, "port", 1, 65535, &u);
	if (r < 0 && r != -ENOENT)
		return r;
	ep->port = r == 0 ? (uint16_t)u : 0;
	return 0;
}

/*
 * One hints list (hints.forZones or hints.forNodes): entries {"name": ...},
 * each name of the given syntax and distinct, as the API validates them
 * (validateHints: at most 8, no duplicates). A malformed list fails the
 * whole slice, like any other malformed field: half a hint set would steer
 * traffic on a guess.
 */
static int hint_list(struct dec *d, const json_t *hints, const char *path, const char *key,
		     size_t maxlen, bool (*valid)(const char *), const char *syntax,
		     char ***out, uint8_t *n)
{
	char epath[160], lpath[128];
	const json_t *arr;
	struct quoted q;
	size_t len;
	int r;

	r = get_arr(d, hints, path, key, K8S_MAX_HINTS, &arr);
	if (r < 0 || !arr || !json_array_size(arr))
		return r;
	len = json_array_size(arr);
	r = alloc_array(d, len, sizeof(**out), (void **)out);
	if (r < 0)
		return r;
	snprintf(lpath, sizeof(lpath), "%s.%s", path, key);
	for (size_t i = 0; i < len; i++) {
		const json_t *h = json_array_get(arr, i);
		const char *s;

		snprintf(epath, sizeof(epath), "%s[%zu]", lpath, i);
		if (!json_is_object(h))
			return fail(d, "%s is %s, not an object", epath, type_name(h));
		r = req_str(d, h, epath, "name", maxlen, &s);
		if (r < 0)
			return r;
		if (!valid(s))
			return fail(d, "%s.name %s is not %s", epath, quote(&q, s), syntax);
		for (size_t j = 0; j < i; j++)
			if (!strcmp((*out)[j], s))
				return fail(d, "%s.name %s is a duplicate", epath, quote(&q, s));
		r = dup_str(d, s, &(*out)[i]);
		if (r < 0)
			return r;
		(*n)++; /* counted once filled: the free path walks n entries */
	}
	return 0;
}

/* hints (topology-aware routing): absent, or forZones and/or forNodes. */
static int decode_hints(struct dec *d, const json_t *e, const char *path,
			struct eps_endpoint *ep)
{
	const json_t *hints;
	char hpath[96];
	int r;

	r = get_obj(d, e, path, "hints", false, &hints);
	if (r < 0 || !hints)
		return r;
	snprintf(hpath, sizeof(hpath), "%s.hints", path);
	r = hint_list(d, hints, hpath, "forZones", LABEL_VALUE_MAX, label_value, "a label value",
		      &ep->zone_hints, &ep->n_zone_hints);
	if (r < 0)
		return r;
	return hint_list(d, hints, hpath, "forNodes", K8S_NAME_MAX, dns_subdomain,
			 "a DNS subdomain", &ep->node_hints, &ep->n_node_hints);
}

static int decode_endpoint(struct dec *d, const json_t *e, const char *path,
			   struct eps_endpoint *ep)
{
	const json_t *addrs, *cond, *ref;
	char apath[80], cpath[80], what[80];
	const char *kind, *other;
	size_t len;
	int r;

	if (!json_is_object(e))
		return fail(d, "%s is %s, not an object", path, type_name(e));
	r = get_arr(d, e, path, "addresses", K8S_MAX_ADDRS_PER_ENDPOINT, &addrs);
	if (r < 0)
		return r;
	if (!addrs || !json_array_size(addrs))
		return fail(d, "%s.addresses is missing or empty", path);
	len = json_array_size(addrs);
	r = alloc_array(d, len, sizeof(*ep->addrs), (void **)&ep->addrs);
	if (r < 0)
		return r;
	snprintf(apath, sizeof(apath), "%s.addresses", path);
	for (size_t i = 0; i < len; i++) {
		struct quoted q;
		const char *s;

		r = elem_str(d, addrs, i, apath, ADDR_TEXT_MAX, &s);
		if (r < 0)
			return r;
		if (inet_pton(AF_INET, s, &ep->addrs[i]) != 1)
			return fail(d, "%s[%zu] %s is not an IPv4 address", apath, i, quote(&q, s));
		ep->n_addrs++;
	}

	/* The API's defaults: ready unknown = ready, serving unknown = ready, terminating unknown = not. */
	ep->ready = true;
	ep->terminating = false;
	r = get_obj(d, e, path, "conditions", false, &cond);
	if (r < 0)
		return r;
	snprintf(cpath, sizeof(cpath), "%s.conditions", path);
	if (cond) {
		r = get_bool(d, cond, cpath, "ready", &ep->ready);
		if (r < 0 && r != -ENOENT)
			return r;
		r = get_bool(d, cond, cpath, "terminating", &ep->terminating);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	ep->serving = ep->ready;
	if (cond) {
		r = get_bool(d, cond, cpath, "serving", &ep->serving);
		if (r < 0 && r != -ENOENT)
			return r;
	}

	r = get_opt_dup(d, e, path, "nodeName", K8S_NAME_MAX, dns_subdomain, "a DNS subdomain",
			&ep->node_name);
	if (r < 0)
		return r;
	r = get_opt_dup(d, e, path, "zone", LABEL_VALUE_MAX, label_value, "a label value",
			&ep->zone);
	if (r < 0)
		return r;
	r = decode_hints(d, e, path, ep);
	if (r < 0)
		return r;
	r = get_obj(d, e, path, "targetRef", false, &ref);
	if (r < 0 || !ref)
		return r;
	snprintf(what, sizeof(what), "%s.targetRef", path);
	r = get_str(d, ref, what, "kind", SHORT_MAX, &kind);
	if (r == -ENOENT)
		kind = "";
	else if (r < 0)
		return r;
	if (!strcmp(kind, "Pod"))
		return get_opt_dup(d, ref, what, "name", K8S_NAME_MAX, dns_subdomain,
				   "a DNS subdomain", &ep->target_pod);
	/* Other kinds' names are of no use to the proxy and their syntax is theirs: type only. */
	r = get_str(d, ref, what, "name", K8S_NAME_MAX, &other);
	return r == -ENOENT ? 0 : r;
}

static int decode_endpointslice(struct dec *d, const json_t *obj, struct k8s_endpointslice *e)
{
	const json_t *meta, *arr;
	int at = ADDR_IPV4;
	const char *s;
	char path[64];
	size_t len;
	int r;

	r = decode_meta(d, obj, true, &e->meta, &meta);
	if (r < 0)
		return r;
	r = get_label(d, meta, LABEL_SERVICE_NAME, &e->service);
	if (r < 0)
		return r;
	r = req_str(d, obj, "", "addressType", SHORT_MAX, &s);
	if (r < 0)
		return r;
	r = get_enum(d, obj, "", "addressType", addr_type_names, ARRAY_SIZE(addr_type_names),
		     "IPv4, IPv6 or FQDN", &at);
	if (r < 0)
		return r;
	e->ipv4 = at == ADDR_IPV4;

	r = get_arr(d, obj, "", "ports", K8S_MAX_PORTS, &arr);
	if (r < 0)
		return r;
	len = json_array_size(arr);
	r = alloc_array(d, len, sizeof(*e->ports), (void **)&e->ports);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++) {
		snprintf(path, sizeof(path), "ports[%zu]", i);
		r = decode_eps_port(d, json_array_get(arr, i), path, &e->ports[e->n_ports++]);
		if (r < 0)
			return r;
	}

	r = get_arr(d, obj, "", "endpoints", K8S_MAX_ENDPOINTS, &arr);
	if (r < 0)
		return r;
	/* Non-IPv4 slices hold nothing berth can program. */
	if (!e->ipv4)
		return 0;
	len = json_array_size(arr);
	r = alloc_array(d, len, sizeof(*e->endpoints), (void **)&e->endpoints);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++) {
		snprintf(path, sizeof(path), "endpoints[%zu]", i);
		r = decode_endpoint(d, json_array_get(arr, i), path,
				    &e->endpoints[e->n_endpoints++]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- Pod --- */

static int decode_pod(struct dec *d, const json_t *obj, struct k8s_pod *p)
{
	const json_t *meta, *spec, *status, *arr;
	char path[64], what[96];
	const char *ip;
	size_t len;
	int r;

	r = decode_meta(d, obj, true, &p->meta, &meta);
	if (r < 0)
		return r;
	r = get_obj(d, obj, "", "spec", false, &spec);
	if (r < 0)
		return r;
	if (spec) {
		r = get_opt_dup(d, spec, "spec", "nodeName", K8S_NAME_MAX, dns_subdomain,
				"a DNS subdomain", &p->node_name);
		if (r < 0)
			return r;
		r = get_bool(d, spec, "spec", "hostNetwork", &p->host_network);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	r = get_obj(d, obj, "", "status", false, &status);
	if (r < 0 || !status)
		return r;
	r = get_opt_dup(d, status, "status", "phase", SHORT_MAX, word, "a phase", &p->phase);
	if (r < 0)
		return r;

	/* podIPs (dual stack) supersedes podIP, which is its first entry. */
	r = get_arr(d, status, "status", "podIPs", K8S_MAX_IPS, &arr);
	if (r < 0)
		return r;
	len = json_array_size(arr);
	if (len) {
		r = alloc_array(d, len, sizeof(*p->ips), (void **)&p->ips);
		if (r < 0)
			return r;
		for (size_t i = 0; i < len; i++) {
			const json_t *e = json_array_get(arr, i);

			snprintf(path, sizeof(path), "status.podIPs[%zu]", i);
			if (!json_is_object(e))
				return fail(d, "%s is %s, not an object", path, type_name(e));
			r = req_str(d, e, path, "ip", ADDR_TEXT_MAX, &ip);
			if (r < 0)
				return r;
			snprintf(what, sizeof(what), "%s.ip", path);
			r = parse_ip(d, ip, what, &p->ips[p->n_ips]);
			if (r < 0)
				return r;
			p->n_ips += (size_t)r;
		}
		p->ips = shrink(p->ips, p->n_ips, sizeof(*p->ips));
		return 0;
	}
	r = get_str(d, status, "status", "podIP", ADDR_TEXT_MAX, &ip);
	if (r == -ENOENT || (r == 0 && !*ip))
		return 0;
	if (r < 0)
		return r;
	p->ips = calloc(1, sizeof(*p->ips));
	if (!p->ips)
		return nomem(d);
	r = parse_ip(d, ip, "status.podIP", p->ips);
	if (r < 0)
		return r;
	p->n_ips = (size_t)r;
	p->ips = shrink(p->ips, p->n_ips, sizeof(*p->ips));
	return 0;
}

/* --- Node --- */

static int decode_node(struct dec *d, const json_t *obj, struct k8s_node *n)
{
	const json_t *meta, *status, *arr;
	char path[64], what[96];
	size_t len;
	int r;

	r = decode_meta(d, obj, false, &n->meta, &meta);
	if (r < 0)
		return r;
	r = get_label(d, meta, LABEL_ZONE, &n->zone);
	if (r < 0)
		return r;
	r = get_obj(d, obj, "", "status", false, &status);
	if (r < 0 || !status)
		return r;
	r = get_arr(d, status, "status", "addresses", K8S_MAX_NODE_ADDRS, &arr);
	if (r < 0 || !arr)
		return r;
	len = json_array_size(arr);
	r = alloc_array(d, len, sizeof(*n->internal_ips), (void **)&n->internal_ips);
	if (r == 0)
		r = alloc_array(d, len, sizeof(*n->external_ips), (void **)&n->external_ips);
	if (r < 0)
		return r;
	for (size_t i = 0; i < len; i++) {
		const json_t *a = json_array_get(arr, i);
		const char *type, *addr;
		struct in_addr *ip;
		size_t *count;

		snprintf(path, sizeof(path), "status.addresses[%zu]", i);
		if (!json_is_object(a))
			return fail(d, "%s is %s, not an object", path, type_name(a));
		r = req_str(d, a, path, "type", SHORT_MAX, &type);
		if (r == 0)
			r = req_str(d, a, path, "address", NODE_ADDR_MAX, &addr);
		if (r < 0)
			return r;
		/* Hostname, InternalDNS and ExternalDNS are names, not addresses. */
		if (!strcmp(type, "InternalIP")) {
			ip = &n->internal_ips[n->n_internal_ips];
			count = &n->n_internal_ips;
		} else if (!strcmp(type, "ExternalIP")) {
			ip = &n->external_ips[n->n_external_ips];
			count = &n->n_external_ips;
		} else {
			continue;
		}
		snprintf(what, sizeof(what), "%s.address", path);
		r = parse_ip(d, addr, what, ip);
		if (r < 0)
			return r;
		*count += (size_t)r;
	}
	n->internal_ips = shrink(n->internal_ips, n->n_internal_ips, sizeof(*n->internal_ips));
	n->external_ips = shrink(n->external_ips, n->n_external_ips, sizeof(*n->external_ips));
	return 0;
}

/* -------------------------------------------------------------- packing */

/*
 * As separate allocations, an endpoint's few short strings and its address
 * array cost ~200 bytes (malloc's smallest chunk is 32 bytes), and node
 * names and zones repeat in every endpoint of a node: 100k endpoints would
 * take ~20 MiB. Once an object is decoded, its strings and the endpoints'
 * address arrays move into one block, each distinct string stored once.
 *
 * Two passes over the same fields in the same order: the first gives each
 * distinct string its offset in the block, the second copies and repoints.
 */
struct pack_slot {
	const char *s; /* the first occurrence; its copy in the block once copied */
	size_t off;
};

struct pack {
	struct pack_slot *slots;
	size_t mask;
	char *block; /* NULL in the first pass */
	size_t size;
};

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static void pack_str(struct pack *p, char **field)
{
	char *s = *field;
	struct pack_slot *slot;
	size_t i;

	if (!s)
		return;
	for (i = str_hash(s) & p->mask; p->slots[i].s; i = (i + 1) & p->mask)
		if (!strcmp(p->slots[i].s, s))
			break;
	slot = &p->slots[i];
	if (!p->block) {
		if (!slot->s) {
			slot->s = s;
			slot->off = p->size;
			p->size += strlen(s) + 1;
		}
		return;
	}
	if (slot->s != p->block + slot->off) {
		memcpy(p->block + slot->off, s, strlen(s) + 1);
		slot->s = p->block + slot->off;
	}
	*field = p->block + slot->off;
	free(s); /* every field was its own allocation until now */
}

/* Every string field of o, in a fixed order. Returns how many there are. */
static size_t visit_strings(struct k8s_object *o, struct pack *p)
{
	size_t n = 4;

	if (p) {
		pack_str(p, &o->meta.ns);
		pack_str(p, &o->meta.name);
		pack_str(p, &o->meta.uid);
		pack_str(p, &o->meta.rv);
	}
	switch (o->kind) {
	case K8S_SERVICE:
		for (size_t i = 0; p && i < o->svc.n_ports; i++) {
			pack_str(p, &o->svc.ports[i].name);
			pack_str(p, &o->svc.ports[i].target_port_name);
		}
		return n + 2 * o->svc.n_ports;
	case K8S_ENDPOINTSLICE:
		if (p) {
			pack_str(p, &o->eps.service);
			for (size_t i = 0; i < o->eps.n_ports; i++)
				pack_str(p, &o->eps.ports[i].name);
			for (size_t i = 0; i < o->eps.n_endpoints; i++) {
				struct eps_endpoint *e = &o->eps.endpoints[i];

				pack_str(p, &e->node_name);
				pack_str(p, &e->zone);
				pack_str(p, &e->target_pod);
				for (size_t h = 0; h < e->n_zone_hints; h++)
					pack_str(p, &e->zone_hints[h]);
				for (size_t h = 0; h < e->n_node_hints; h++)
					pack_str(p, &e->node_hints[h]);
			}
		}
		n += 1 + o->eps.n_ports + 3 * o->eps.n_endpoints;
		for (size_t i = 0; i < o->eps.n_endpoints; i++)
			n += o->eps.endpoints[i].n_zone_hints + o->eps.endpoints[i].n_node_hints;
		return n;
	case K8S_POD:
		if (p) {
			pack_str(p, &o->pod.node_name);
			pack_str(p, &o->pod.phase);
		}
		return n + 2;
	default:
		if (p)
			pack_str(p, &o->node.zone);
		return n + 1;
	}
}

/* Move an endpoint's array (n entries of size bytes) to *at, which advances. */
static void *pack_array(void *arr, size_t n, size_t size, char **at)
{
	void *dst = *at;

	if (!n)
		return arr;
	memcpy(dst, arr, n * size);
	free(arr);
	*at += n * size;
	return dst;
}

/* The endpoints' address arrays, then their hint arrays (pointer-aligned). */
static void pack_arrays(struct k8s_endpointslice *eps, char *block, size_t hints_off)
{
	char *at = block, *hat = block + hints_off;

	for (size_t i = 0; i < eps->n_endpoints; i++) {
		struct eps_endpoint *e = &eps->endpoints[i];

		e->addrs = pack_array(e->addrs, e->n_addrs, sizeof(*e->addrs), &at);
		e->zone_hints = pack_array(e->zone_hints, e->n_zone_hints, sizeof(char *), &hat);
		e->node_hints = pack_array(e->node_hints, e->n_node_hints, sizeof(char *), &hat);
	}
}

/* Best effort: without memory for the block, o stays as it is, and valid. */
static void pack_object(struct k8s_object *o)
{
	size_t nfields = visit_strings(o, NULL), nslots = 8, addr_bytes = 0, hint_ptrs = 0;
	size_t hints_off;
	struct pack p = { 0 };

	while (nslots < 2 * nfields)
		nslots *= 2;
	p.slots = calloc(nslots, sizeof(*p.slots));
	if (!p.slots)
		return;
	p.mask = nslots - 1;
	/*
	 * Address arrays first: the block is malloc-aligned, so they are too;
	 * then the hint pointer arrays, at the next pointer-aligned offset.
	 */
	if (o->kind == K8S_ENDPOINTSLICE)
		for (size_t i = 0; i < o->eps.n_endpoints; i++) {
			addr_bytes += o->eps.endpoints[i].n_addrs * sizeof(struct in_addr);
			hint_ptrs += o->eps.endpoints[i].n_zone_hints +
				     o->eps.endpoints[i].n_node_hints;
		}
	hints_off = (addr_bytes + sizeof(char *) - 1) / sizeof(char *) * sizeof(char *);
	p.size = hints_off + hint_ptrs * sizeof(char *);
	visit_strings(o, &p);
	p.block = malloc(p.size);
	if (!p.block) {
		free(p.slots);
		return;
	}
	visit_strings(o, &p);
	if (o->kind == K8S_ENDPOINTSLICE)
		pack_arrays(&o->eps, p.block, hints_off);
	o->meta.pool = p.block;
	free(p.slots);
}

struct k8s_object *k8s_decode(enum k8s_kind kind, const json_t *obj, char *err, size_t errlen)
{
	struct dec d = { .err = err, .errlen = errlen };
	struct k8s_object *o;
	int r;

	if (errlen)
		err[0] = '\0';
	if ((unsigned int)kind >= K8S_NKINDS) {
		fail(&d, "unknown kind %d", (int)kind);
		return NULL;
	}
	if (!json_is_object(obj)) {
		fail(&d, "%s is %s, not an object", kind_names[kind], obj ? type_name(obj) : "missing");
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		nomem(&d);
		return NULL;
	}
	o->kind = kind;
	switch (kind) {
	case K8S_SERVICE:
		r = decode_service(&d, obj, &o->svc);
		break;
	case K8S_ENDPOINTSLICE:
		r = decode_endpointslice(&d, obj, &o->eps);
		break;
	case K8S_POD:
		r = decode_pod(&d, obj, &o->pod);
		break;
	default:
		r = decode_node(&d, obj, &o->node);
		break;
	}
	if (r < 0) {
		k8s_object_free(o);
		return NULL;
	}
	pack_object(o);
	return o;
}

/* ------------------------------------------------------- free, key, equal */

/* A string or endpoint address array: the pool's, or its own allocation. */
static void release(const struct k8s_object *o, void *p)
{
	if (!o->meta.pool)
		free(p);
}

void k8s_object_free(struct k8s_object *o)
{
	if (!o)
		return;
	release(o, o->meta.ns);
	release(o, o->meta.name);
	release(o, o->meta.uid);
	release(o, o->meta.rv);
	switch (o->kind) {
	case K8S_SERVICE:
		for (size_t i = 0; i < o->svc.n_ports; i++) {
			release(o, o->svc.ports[i].name);
			release(o, o->svc.ports[i].target_port_name);
		}
		free(o->svc.ports);
		free(o->svc.cluster_ips);
		free(o->svc.external_ips);
		free(o->svc.lb_ingress);
		free(o->svc.source_ranges);
		break;
	case K8S_ENDPOINTSLICE:
		release(o, o->eps.service);
		for (size_t i = 0; i < o->eps.n_ports; i++)
			release(o, o->eps.ports[i].name);
		free(o->eps.ports);
		for (size_t i = 0; i < o->eps.n_endpoints; i++) {
			struct eps_endpoint *e = &o->eps.endpoints[i];

			release(o, e->addrs);
			release(o, e->node_name);
			release(o, e->zone);
			release(o, e->target_pod);
			for (size_t h = 0; e->zone_hints && h < e->n_zone_hints; h++)
				release(o, e->zone_hints[h]);
			for (size_t h = 0; e->node_hints && h < e->n_node_hints; h++)
				release(o, e->node_hints[h]);
			release(o, e->zone_hints);
			release(o, e->node_hints);
		}
		free(o->eps.endpoints);
		break;
	case K8S_POD:
		release(o, o->pod.node_name);
		release(o, o->pod.phase);
		free(o->pod.ips);
		break;
	case K8S_NODE:
		free(o->node.internal_ips);
		free(o->node.external_ips);
		release(o, o->node.zone);
		break;
	default:
		break;
	}
	free(o->meta.pool);
	free(o);
}

char *k8s_object_key(const struct k8s_object *o)
{
	char *key;

	if (!o || !o->meta.name)
		return NULL;
	if (!o->meta.ns || !*o->meta.ns)
		return strdup(o->meta.name);
	if (asprintf(&key, "%s/%s", o->meta.ns, o->meta.name) < 0)
		return NULL;
	return key;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* n entries of size bytes each at a and b are the same (no padding in these types). */
static bool mem_eq(const void *a, const void *b, size_t n, size_t size)
{
	return n == 0 || !memcmp(a, b, n * size);
}

static bool meta_eq(const struct k8s_meta *a, const struct k8s_meta *b)
{
	return str_eq(a->ns, b->ns) && str_eq(a->name, b->name) && str_eq(a->uid, b->uid);
}

static bool svc_eq(const struct k8s_service *a, const struct k8s_service *b)
{
	if (a->type != b->type || a->headless != b->headless ||
	    a->n_cluster_ips != b->n_cluster_ips || a->n_ports != b->n_ports ||
	    a->n_external_ips != b->n_external_ips || a->n_lb_ingress != b->n_lb_ingress ||
	    a->n_source_ranges != b->n_source_ranges ||
	    a->affinity_client_ip != b->affinity_client_ip ||
	    a->affinity_timeout_s != b->affinity_timeout_s ||
	    a->external_local != b->external_local || a->internal_local != b->internal_local ||
	    a->health_check_node_port != b->health_check_node_port ||
	    !mem_eq(a->cluster_ips, b->cluster_ips, a->n_cluster_ips, sizeof(struct in_addr)) ||
	    !mem_eq(a->external_ips, b->external_ips, a->n_external_ips, sizeof(struct in_addr)))
		return false;
	for (size_t i = 0; i < a->n_ports; i++) {
		const struct svc_port *p = &a->ports[i], *q = &b->ports[i];

		if (!str_eq(p->name, q->name) || p->proto != q->proto || p->port != q->port ||
		    p->node_port != q->node_port || p->target_port != q->target_port ||
		    !str_eq(p->target_port_name, q->target_port_name))
			return false;
	}
	for (size_t i = 0; i < a->n_lb_ingress; i++)
		if (a->lb_ingress[i].ip.s_addr != b->lb_ingress[i].ip.s_addr ||
		    a->lb_ingress[i].ip_mode_proxy != b->lb_ingress[i].ip_mode_proxy)
			return false;
	for (size_t i = 0; i < a->n_source_ranges; i++)
		if (a->source_ranges[i].addr.s_addr != b->source_ranges[i].addr.s_addr ||
		    a->source_ranges[i].len != b->source_ranges[i].len)
			return false;
	return true;
}

/* Two string lists, in order (a reordered hint list is a change, if a harmless one). */
static bool strs_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return false;
	return true;
}

static bool eps_eq(const struct k8s_endpointslice *a, const struct k8s_endpointslice *b)
{
	if (!str_eq(a->service, b->service) || a->ipv4 != b->ipv4 || a->n_ports != b->n_ports ||
	    a->n_endpoints != b->n_endpoints)
		return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (!str_eq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].proto != b->ports[i].proto || a->ports[i].port != b->ports[i].port)
			return false;
	for (size_t i = 0; i < a->n_endpoints; i++) {
		const struct eps_endpoint *p = &a->endpoints[i], *q = &b->endpoints[i];

		if (p->n_addrs != q->n_addrs ||
		    !mem_eq(p->addrs, q->addrs, p->n_addrs, sizeof(struct in_addr)) ||
		    p->ready != q->ready || p->serving != q->serving ||
		    p->terminating != q->terminating || !str_eq(p->node_name, q->node_name) ||
		    !str_eq(p->zone, q->zone) || !str_eq(p->target_pod, q->target_pod) ||
		    !strs_eq(p->zone_hints, p->n_zone_hints, q->zone_hints, q->n_zone_hints) ||
		    !strs_eq(p->node_hints, p->n_node_hints, q->node_hints, q->n_node_hints))
			return false;
	}
	return true;
}

bool k8s_object_equal(const struct k8s_object *a, const struct k8s_object *b)
{
	if (!a || !b)
		return a == b;
	if (a->kind != b->kind || !meta_eq(&a->meta, &b->meta))
		return false;
	switch (a->kind) {
	case K8S_SERVICE:
		return svc_eq(&a->svc, &b->svc);
	case K8S_ENDPOINTSLICE:
		return eps_eq(&a->eps, &b->eps);
	case K8S_POD:
		return str_eq(a->pod.node_name, b->pod.node_name) &&
		       a->pod.host_network == b->pod.host_network &&
		       str_eq(a->pod.phase, b->pod.phase) && a->pod.n_ips == b->pod.n_ips &&
		       mem_eq(a->pod.ips, b->pod.ips, a->pod.n_ips, sizeof(struct in_addr));
	case K8S_NODE:
		return str_eq(a->node.zone, b->node.zone) &&
		       a->node.n_internal_ips == b->node.n_internal_ips &&
		       a->node.n_external_ips == b->node.n_external_ips &&
		       mem_eq(a->node.internal_ips, b->node.internal_ips, a->node.n_internal_ips,
			      sizeof(struct in_addr)) &&
		       mem_eq(a->node.external_ips, b->node.external_ips, a->node.n_external_ips,
			      sizeof(struct in_addr));
	default:
		return false;
	}
}

/* ------------------------------------------------------------- encoding */

static json_t *ip_array_json(const struct in_addr *ips, size_t n, bool *oom)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		jx_append(arr, jx_ip_string(ips[i]), oom);
	return arr;
}

static json_t *meta_json(const struct k8s_meta *m, const char *label_key, const char *label,
			 bool *oom)
{
	json_t *o = json_object();

	jx_put(o, "name", json_string(m->name ? m->name : ""), oom);
	if (m->ns && *m->ns)
		jx_put(o, "namespace", json_string(m->ns), oom);
	if (m->uid && *m->uid)
		jx_put(o, "uid", json_string(m->uid), oom);
	if (m->rv && *m->rv)
		jx_put(o, "resourceVersion", json_string(m->rv), oom);
	if (label) {
		json_t *labels = json_object();

		jx_put(labels, label_key, json_string(label), oom);
		jx_put(o, "labels", labels, oom);
	}
	return o;
}

static json_t *finish(json_t *root, bool oom)
{
	if (oom || !root) {
		json_decref(root);
		return NULL;
	}
	return root;
}

json_t *k8s_service_to_json(const struct k8s_service *s)
{
	json_t *root, *spec, *ports, *status, *lb, *ingress;
	bool oom = false;

	if (!s)
		return NULL;
	root = json_object();
	spec = json_object();
	ports = json_array();
	status = json_object();
	lb = json_object();
	jx_put(root, "apiVersion", json_string("v1"), &oom);
	jx_put(root, "kind", json_string("Service"), &oom);
	jx_put(root, "metadata", meta_json(&s->meta, NULL, NULL, &oom), &oom);
	jx_put(root, "spec", spec, &oom);
	jx_put(root, "status", status, &oom);
	jx_put(status, "loadBalancer", lb, &oom);

	jx_put(spec, "type", json_string(enum_text(svc_type_names, ARRAY_SIZE(svc_type_names), (int)s->type)),
	    &oom);
	if (s->headless) {
		jx_put(spec, "clusterIP", json_string("None"), &oom);
		jx_put(spec, "clusterIPs", json_pack("[s]", "None"), &oom);
	} else if (s->n_cluster_ips) {
		jx_put(spec, "clusterIP", jx_ip_string(s->cluster_ips[0]), &oom);
		jx_put(spec, "clusterIPs", ip_array_json(s->cluster_ips, s->n_cluster_ips, &oom), &oom);
	}
	jx_put(spec, "ports", ports, &oom);
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct svc_port *p = &s->ports[i];
		json_t *jp = json_object();

		if (p->name && *p->name)
			jx_put(jp, "name", json_string(p->name), &oom);
		jx_put(jp, "protocol", json_string(l4_proto_name(p->proto)), &oom);
		jx_put(jp, "port", json_integer(p->port), &oom);
		jx_put(jp, "targetPort",
		    p->target_port_name ? json_string(p->target_port_name)
					: json_integer(p->target_port),
		    &oom);
		if (p->node_port)
			jx_put(jp, "nodePort", json_integer(p->node_port), &oom);
		jx_append(ports, jp, &oom);
	}
	if (s->n_external_ips)
		jx_put(spec, "externalIPs", ip_array_json(s->external_ips, s->n_external_ips, &oom),
		    &oom);
	if (s->n_source_ranges) {
		json_t *ranges = json_array();

		for (size_t i = 0; i < s->n_source_ranges; i++) {
			char buf[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN + 4];

			inet_ntop(AF_INET, &s->source_ranges[i].addr, buf, sizeof(buf));
			snprintf(cidr, sizeof(cidr), "%s/%u", buf, s->source_ranges[i].len);
			jx_append(ranges, json_string(cidr), &oom);
		}
		jx_put(spec, "loadBalancerSourceRanges", ranges, &oom);
	}
	jx_put(spec, "sessionAffinity",
	    json_string(enum_text(affinity_names, ARRAY_SIZE(affinity_names), s->affinity_client_ip)),
	    &oom);
	if (s->affinity_client_ip)
		jx_put(spec, "sessionAffinityConfig",
		    json_pack("{s:{s:I}}", "clientIP", "timeoutSeconds",
			      (json_int_t)s->affinity_timeout_s),
		    &oom);
	jx_put(spec, "externalTrafficPolicy",
	    json_string(enum_text(policy_names, ARRAY_SIZE(policy_names), s->external_local)), &oom);
	jx_put(spec, "internalTrafficPolicy",
	    json_string(enum_text(policy_names, ARRAY_SIZE(policy_names), s->internal_local)), &oom);
	if (s->health_check_node_port)
		jx_put(spec, "healthCheckNodePort", json_integer(s->health_check_node_port), &oom);

	if (s->n_lb_ingress) {
		ingress = json_array();
		for (size_t i = 0; i < s->n_lb_ingress; i++) {
			json_t *ji = json_object();

			jx_put(ji, "ip", jx_ip_string(s->lb_ingress[i].ip), &oom);
			jx_put(ji, "ipMode",
			    json_string(enum_text(ip_mode_names, ARRAY_SIZE(ip_mode_names),
						  s->lb_ingress[i].ip_mode_proxy)),
			    &oom);
			jx_append(ingress, ji, &oom);
		}
		jx_put(lb, "ingress", ingress, &oom);
	}
	return finish(root, oom);
}

/* [{"name": s}, ...]: the API's ForZone / ForNode lists. */
static json_t *hint_names_json(char *const *names, size_t n, bool *oom)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		jx_append(arr, json_pack("{s:s}", "name", names[i]), oom);
	return arr;
}

static json_t *hints_json(const struct eps_endpoint *ep, bool *oom)
{
	json_t *h = json_object();

	if (ep->n_zone_hints)
		jx_put(h, "forZones", hint_names_json(ep->zone_hints, ep->n_zone_hints, oom), oom);
	if (ep->n_node_hints)
		jx_put(h, "forNodes", hint_names_json(ep->node_hints, ep->n_node_hints, oom), oom);
	return h;
}

json_t *k8s_endpointslice_to_json(const struct k8s_endpointslice *e)
{
	json_t *root, *ports, *eps;
	bool oom = false;

	if (!e)
		return NULL;
	root = json_object();
	ports = json_array();
	eps = json_array();
	jx_put(root, "apiVersion", json_string("discovery.k8s.io/v1"), &oom);
	jx_put(root, "kind", json_string("EndpointSlice"), &oom);
	jx_put(root, "metadata", meta_json(&e->meta, LABEL_SERVICE_NAME, e->service, &oom), &oom);
	/* The model keeps only "IPv4 or not": non-IPv4 slices come back as IPv6, and empty. */
	jx_put(root, "addressType", json_string(e->ipv4 ? "IPv4" : "IPv6"), &oom);
	jx_put(root, "ports", ports, &oom);
	jx_put(root, "endpoints", eps, &oom);
	for (size_t i = 0; i < e->n_ports; i++) {
		const struct eps_port *p = &e->ports[i];
		json_t *jp = json_object();

		/* The API shape: name is a pointer the controller sets to "" for unnamed ports. */
		jx_put(jp, "name", json_string(p->name ? p->name : ""), &oom);
		jx_put(jp, "protocol", json_string(l4_proto_name(p->proto)), &oom);
		if (p->port)
			jx_put(jp, "port", json_integer(p->port), &oom);
		jx_append(ports, jp, &oom);
	}
	for (size_t i = 0; i < e->n_endpoints; i++) {
		const struct eps_endpoint *ep = &e->endpoints[i];
		json_t *je = json_object();

		jx_put(je, "addresses", ip_array_json(ep->addrs, ep->n_addrs, &oom), &oom);
		jx_put(je, "conditions",
		    json_pack("{s:b,s:b,s:b}", "ready", ep->ready, "serving", ep->serving,
			      "terminating", ep->terminating),
		    &oom);
		if (ep->node_name)
			jx_put(je, "nodeName", json_string(ep->node_name), &oom);
		if (ep->zone)
			jx_put(je, "zone", json_string(ep->zone), &oom);
		if (ep->n_zone_hints || ep->n_node_hints)
			jx_put(je, "hints", hints_json(ep, &oom), &oom);
		if (ep->target_pod)
			jx_put(je, "targetRef",
			    json_pack("{s:s,s:s,s:s}", "kind", "Pod", "namespace",
				      e->meta.ns ? e->meta.ns : "", "name", ep->target_pod),
			    &oom);
		jx_append(eps, je, &oom);
	}
	return finish(root, oom);
}
