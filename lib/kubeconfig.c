// SPDX-License-Identifier: Apache-2.0
/*
 * API server credentials from a kubeconfig or from the in-cluster service
 * account. The kubeconfig goes through yamljson like every other manifest;
 * only the current context's cluster and user are looked at.
 *
 * Decisions, following client-go where it is explicit:
 * - A field set to "" counts as absent (Go's zero value).
 * - Both a file and its *-data form for the same item is an error, as is
 *   insecure-skip-tls-verify together with a CA (client-go refuses both).
 * - A certificate without its key, or a key without its certificate, is an
 *   error. A token together with a client certificate is fine (both are sent).
 * - tokenFile wins over token once read (client-go: "the last successfully
 *   read value takes precedence"); kubeconfig_parse keeps both, the loaders
 *   read the file into ->token.
 * - exec, auth-provider and basic auth are refused rather than silently
 *   ignored, so that the error says why requests would be unauthorised.
 * - The server may be http:// as well as https://: tests and local
 *   proxies (kubectl proxy) use plain HTTP. No credentials are checked
 *   against the scheme here; the HTTP client decides what it sends.
 * - Tokens must be printable ASCII without spaces: they end up in an HTTP
 *   header, where a newline would inject headers.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nettle/base64.h>

#include "atomicfile.h"
#include "kubeconfig.h"
#include "yamljson.h"

__attribute__((format(printf, 4, 5))) static int kc_fail(char *err, size_t errlen, int r,
							 const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void kube_auth_release(struct kube_auth *a)
{
	if (!a)
		return;
	free(a->server);
	free(a->ca_pem);
	free(a->ca_file);
	free(a->cert_pem);
	free(a->cert_file);
	free_secret(a->key_pem);
	free(a->key_file);
	free_secret(a->token);
	free(a->token_file);
	*a = (struct kube_auth){ 0 };
}

/* ---- field access ---- */

/*
 * Borrow a string field: 0, -ENOENT when absent, null or "" (Go's zero
 * value), -EINVAL when of another type or holding a NUL byte.
 */
static int get_str(const json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return -ENOENT;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return -EINVAL;
	if (json_string_length(v) == 0)
		return -ENOENT;
	*out = json_string_value(v);
	return 0;
}

/* An optional string field; *out is NULL when absent. Errors name what and key. */
static int opt_str(const json_t *obj, const char *what, const char *key, const char **out,
		   char *err, size_t errlen)
{
	int r = get_str(obj, key, out);

	if (r == -EINVAL)
		return kc_fail(err, errlen, -EINVAL, "%s: \"%s\" must be a string", what, key);
	return 0;
}

/*
 * Find the entry called name in the list at root[list] (an array of
 * {name, <inner>: {...}}) and return its inner object.
 */
static int find_named(const json_t *root, const char *list, const char *inner, const char *kind,
		      const char *name, const json_t **out, char *err, size_t errlen)
{
	const json_t *arr = json_object_get(root, list), *found = NULL, *item;
	const char *n;
	size_t i;

	*out = NULL;
	if (arr && !json_is_null(arr) && !json_is_array(arr))
		return kc_fail(err, errlen, -EINVAL, "\"%s\" must be a list", list);
	json_array_foreach(arr, i, item) {
		if (!json_is_object(item))
			return kc_fail(err, errlen, -EINVAL, "\"%s\"[%zu] must be a mapping", list,
				       i);
		if (get_str(item, "name", &n) < 0 || strcmp(n, name))
			continue;
		/* Two entries with one name: which one kubectl uses is not obvious. */
		if (found)
			return kc_fail(err, errlen, -EINVAL, "%s \"%s\" is defined twice", kind,
				       name);
		found = item;
	}
	if (!found)
		return kc_fail(err, errlen, -EINVAL, "%s \"%s\" not found", kind, name);
	*out = json_object_get(found, inner);
	if (!json_is_object(*out))
		return kc_fail(err, errlen, -EINVAL, "%s \"%s\" has no \"%s\" mapping", kind, name,
			       inner);
	return 0;
}

/* Strict base64 (padding required, whitespace skipped) into a NUL-free C string. */
static int b64_decode(const char *s, char **out)
{
	struct base64_decode_ctx ctx;
	size_t len = strlen(s), n = 0;
	uint8_t *buf;

	*out = NULL;
	buf = malloc(BASE64_DECODE_LENGTH(len) + 1);
	if (!buf)
		return -ENOMEM;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, buf, len, s) || !base64_decode_final(&ctx) || n == 0 ||
	    memchr(buf, '\0', n)) {
		explicit_bzero(buf, n);
		free(buf);
		return -EINVAL;
	}
	buf[n] = '\0';
	*out = (char *)buf;
	return 0;
}

/* Absolute paths as they are; relative ones against base_dir when given. */
static int resolve_path(const char *base_dir, const char *path, char **out)
{
	if (path[0] == '/' || !base_dir || !base_dir[0])
		*out = strdup(path);
	else if (asprintf(out, "%s/%s", base_dir, path) < 0)
		*out = NULL;
	return *out ? 0 : -ENOMEM;
}

/*
 * One credential item given as a file (file_key) or inline (data_key).
 * Sets at most one of *file (resolved) and *pem (decoded).
 */
static int file_or_data(const json_t *obj, const char *what, const char *file_key,
			const char *data_key, const char *base_dir, char **file, char **pem,
			char *err, size_t errlen)
{
	const char *f, *d;
	int r;

	if ((r = opt_str(obj, what, file_key, &f, err, errlen)) < 0 ||
	    (r = opt_str(obj, what, data_key, &d, err, errlen)) < 0)
		return r;
	if (f && d)
		return kc_fail(err, errlen, -EINVAL, "%s: both \"%s\" and \"%s\" are set", what,
			       file_key, data_key);
	if (f) {
		r = resolve_path(base_dir, f, file);
		if (r < 0)
			return kc_fail(err, errlen, r, "out of memory");
	}
	if (d) {
		r = b64_decode(d, pem);
		if (r == -ENOMEM)
			return kc_fail(err, errlen, r, "out of memory");
		if (r < 0)
			return kc_fail(err, errlen, r,
				       "%s: \"%s\" is not valid base64 of a PEM text", what,
				       data_key);
	}
	return 0;
}

/* A bearer token goes into an HTTP header: visible ASCII only. */
static bool token_ok(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (*t < 0x21 || *t > 0x7e)
			return false;
	return true;
}

/* "http(s)://host[...]", no whitespace or control characters. */
static bool server_ok(const char *s)
{
	const char *host;

	if (!strncmp(s, "https://", 8))
		host = s + 8;
	else if (!strncmp(s, "http://", 7))
		host = s + 7;
	else
		return false;
	if (!*host || *host == '/')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int parse_cluster(const json_t *root, const char *name, const char *base_dir,
			 struct kube_auth *out, char *err, size_t errlen)
{
	const json_t *cl, *ins;
	const char *server;
	char what[128];
	size_t n;
	int r;

	r = find_named(root, "clusters", "cluster", "cluster", name, &cl, err, errlen);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "cluster \"%s\"", name);
	if ((r = opt_str(cl, what, "server", &server, err, errlen)) < 0)
		return r;
	if (!server)
		return kc_fail(err, errlen, -EINVAL, "%s has no server", what);
	if (!server_ok(server))
		return kc_fail(err, errlen, -EINVAL,
			       "%s: server \"%.128s\" is not an http(s):// URL", what, server);
	out->server = strdup(server);
	if (!out->server)
		return kc_fail(err, errlen, -ENOMEM, "out of memory");
	/* The API paths are appended with their own leading slash. */
	n = strlen(out->server);
	while (n > 0 && out->server[n - 1] == '/')
		out->server[--n] = '\0';

	r = file_or_data(cl, what, "certificate-authority", "certificate-authority-data", base_dir,
			 &out->ca_file, &out->ca_pem, err, errlen);
	if (r < 0)
		return r;
	ins = json_object_get(cl, "insecure-skip-tls-verify");
	if (ins && !json_is_null(ins) && !json_is_boolean(ins))
		return kc_fail(err, errlen, -EINVAL,
			       "%s: insecure-skip-tls-verify must be a boolean", what);
	out->insecure = json_is_true(ins);
	if (out->insecure && (out->ca_file || out->ca_pem))
		return kc_fail(err, errlen, -EINVAL,
			       "%s: insecure-skip-tls-verify together with a certificate authority",
			       what);
	return 0;
}

static int parse_user(const json_t *root, const char *name, const char *base_dir,
		      struct kube_auth *out, char *err, size_t errlen)
{
	static const char *const unsupported[] = { "exec", "auth-provider", "username",
						   "password" };
	const char *token, *token_file;
	const json_t *u, *v;
	char what[128];
	int r;

	r = find_named(root, "users", "user", "user", name, &u, err, errlen);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "user \"%s\"", name);
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		v = json_object_get(u, unsupported[i]);
		if (v && !json_is_null(v))
			return kc_fail(err, errlen, -EINVAL, "%s: \"%s\" is not supported", what,
				       unsupported[i]);
	}
	r = file_or_data(u, what, "client-certificate", "client-certificate-data", base_dir,
			 &out->cert_file, &out->cert_pem, err, errlen);
	if (r < 0)
		return r;
	r = file_or_data(u, what, "client-key", "client-key-data", base_dir, &out->key_file,
			 &out->key_pem, err, errlen);
	if (r < 0)
		return r;
	if ((out->cert_file || out->cert_pem) != (out->key_file || out->key_pem))
		return kc_fail(err, errlen, -EINVAL, "%s: client %s without client %s", what,
			       out->key_file || out->key_pem ? "key" : "certificate",
			       out->key_file || out->key_pem ? "certificate" : "key");

	if ((r = opt_str(u, what, "token", &token, err, errlen)) < 0 ||
	    (r = opt_str(u, what, "tokenFile", &token_file, err, errlen)) < 0)
		return r;
	if (token) {
		if (!token_ok(token))
			return kc_fail(err, errlen, -EINVAL, "%s: token has invalid characters",
				       what);
		out->token = strdup(token);
		if (!out->token)
			return kc_fail(err, errlen, -ENOMEM, "out of memory");
	}
	if (token_file) {
		r = resolve_path(base_dir, token_file, &out->token_file);
		if (r < 0)
			return kc_fail(err, errlen, r, "out of memory");
	}
	return 0;
}

int kubeconfig_parse(const char *text, size_t len, const char *base_dir, struct kube_auth *out,
		     char *err, size_t errlen)
{
	const char *cur, *cluster, *user;
	const json_t *root, *ctx;
	char yerr[256], what[128];
	json_t *docs;
	int r;

	*out = (struct kube_auth){ 0 };
	if (err && errlen)
		err[0] = '\0';
	if (len > KUBECONFIG_MAX_BYTES)
		return kc_fail(err, errlen, -EFBIG, "kubeconfig larger than %u bytes",
			       KUBECONFIG_MAX_BYTES);
	docs = yaml_to_json_docs(text, len, yerr, sizeof(yerr));
	if (!docs)
		return kc_fail(err, errlen, -EINVAL, "kubeconfig: %s", yerr);
	if (json_array_size(docs) != 1) {
		r = kc_fail(err, errlen, -EINVAL, "kubeconfig: %s",
			    json_array_size(docs) ? "more than one YAML document" : "empty");
		goto out_docs;
	}
	root = json_array_get(docs, 0);
	if (!json_is_object(root)) {
		r = kc_fail(err, errlen, -EINVAL, "kubeconfig: top level is not a mapping");
		goto out_docs;
	}

	if ((r = opt_str(root, "kubeconfig", "current-context", &cur, err, errlen)) < 0)
		goto out_docs;
	if (!cur) {
		r = kc_fail(err, errlen, -EINVAL, "kubeconfig: no current-context");
		goto out_docs;
	}
	r = find_named(root, "contexts", "context", "context", cur, &ctx, err, errlen);
	if (r < 0)
		goto out_docs;
	snprintf(what, sizeof(what), "context \"%s\"", cur);
	if ((r = opt_str(ctx, what, "cluster", &cluster, err, errlen)) < 0 ||
	    (r = opt_str(ctx, what, "user", &user, err, errlen)) < 0)
		goto out_docs;
	if (!cluster || !user) {
		r = kc_fail(err, errlen, -EINVAL, "%s has no %s", what,
			    cluster ? "user" : "cluster");
		goto out_docs;
	}
	r = parse_cluster(root, cluster, base_dir, out, err, errlen);
	if (r < 0)
		goto out_auth;
	r = parse_user(root, user, base_dir, out, err, errlen);
	if (r < 0)
		goto out_auth;
	r = 0;
	goto out_docs;

out_auth:
	kube_auth_release(out);
out_docs:
	json_decref(docs);
	return r;
}

/* ---- loaders: read what the kubeconfig or the service account refers to ---- */

/* Read a PEM file whole; it must be non-empty text. */
static int read_pem(const char *path, char **out, char *err, size_t errlen)
{
	size_t len;
	int r;

	r = read_file_bounded(path, KUBECONFIG_MAX_BYTES, out, &len);
	if (r < 0)
		return kc_fail(err, errlen, r, "%s: %s", path, strerror(-r));
	if (len == 0 || memchr(*out, '\0', len)) {
		free_secret(*out);
		*out = NULL;
		return kc_fail(err, errlen, -EINVAL, "%s: empty or not text", path);
	}
	return 0;
}

/* Read a token file, trimmed of surrounding whitespace (files end in newlines). */
static int read_token(const char *path, char **out, char *err, size_t errlen)
{
	size_t len, start = 0;
	char *buf;
	int r;

	*out = NULL;
	r = read_file_bounded(path, KUBECONFIG_MAX_BYTES, &buf, &len);
	if (r < 0)
		return kc_fail(err, errlen, r, "%s: %s", path, strerror(-r));
	while (len > 0 && strchr(" \t\r\n", buf[len - 1]) && buf[len - 1])
		buf[--len] = '\0';
	while (start < len && strchr(" \t\r\n", buf[start]) && buf[start])
		start++;
	memmove(buf, buf + start, len - start + 1);
	len -= start;
	if (strlen(buf) != len || !token_ok(buf)) {
		free_secret(buf);
		return kc_fail(err, errlen, -EINVAL, "%s: token is empty or has invalid characters",
			       path);
	}
	*out = buf;
	return 0;
}

/* Fill the PEM fields and the token from the files the parsed config names. */
static int load_refs(struct kube_auth *a, char *err, size_t errlen)
{
	char *tok;
	int r;

	if (a->ca_file && !a->ca_pem && (r = read_pem(a->ca_file, &a->ca_pem, err, errlen)) < 0)
		return r;
	if (a->cert_file && !a->cert_pem &&
	    (r = read_pem(a->cert_file, &a->cert_pem, err, errlen)) < 0)
		return r;
	if (a->key_file && !a->key_pem && (r = read_pem(a->key_file, &a->key_pem, err, errlen)) < 0)
		return r;
	if (a->token_file) {
		r = read_token(a->token_file, &tok, err, errlen);
		if (r < 0)
			return r;
		free_secret(a->token);
		a->token = tok;
	}
	return 0;
}

int kubeconfig_load(const char *path, struct kube_auth *out, char *err, size_t errlen)
{
	char *text = NULL, *base_dir = NULL, *slash;
	size_t len;
	int r;

	*out = (struct kube_auth){ 0 };
	r = read_file_bounded(path, KUBECONFIG_MAX_BYTES, &text, &len);
	if (r == -EFBIG)
		return kc_fail(err, errlen, r, "%s: larger than %u bytes", path,
			       KUBECONFIG_MAX_BYTES);
	if (r < 0)
		return kc_fail(err, errlen, r, "%s: %s", path, strerror(-r));
	/* Relative references are relative to the kubeconfig's directory, as in kubectl. */
	slash = strrchr(path, '/');
	if (!slash)
		base_dir = strdup(".");
	else if (slash == path)
		base_dir = strdup("/");
	else
		base_dir = strndup(path, (size_t)(slash - path));
	if (!base_dir) {
		r = kc_fail(err, errlen, -ENOMEM, "out of memory");
		goto out_text;
	}
	r = kubeconfig_parse(text, len, base_dir, out, err, errlen);
	if (r < 0)
		goto out_base;
	r = load_refs(out, err, errlen);
	if (r < 0)
		kube_auth_release(out);
out_base:
	free(base_dir);
out_text:
	explicit_bzero(text, len); /* may hold embedded keys and tokens */
	free(text);
	return r;
}

/* A hostname or IP literal: nothing that could change the URL's structure. */
static bool host_ok(const char *h)
{
	if (!*h)
		return false;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		      (*h >= '0' && *h <= '9') || strchr(".-:%_", *h)))
			return false;
	return true;
}

int kube_auth_in_cluster(const char *sa_dir, struct kube_auth *out, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *end;
	long p;
	int r;

	*out = (struct kube_auth){ 0 };
	if (!sa_dir)
		sa_dir = SA_DIR;
	if (!host || !*host || !port || !*port)
		return kc_fail(err, errlen, -ENOENT,
			       "not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
	if (!host_ok(host))
		return kc_fail(err, errlen, -EINVAL, "KUBERNETES_SERVICE_HOST \"%.64s\" is invalid",
			       host);
	errno = 0;
	p = strtol(port, &end, 10);
	if (*end || errno || p < 1 || p > 65535 || port[0] < '0' || port[0] > '9')
		return kc_fail(err, errlen, -EINVAL, "KUBERNETES_SERVICE_PORT \"%.16s\" is invalid",
			       port);
	/* An IPv6 literal needs brackets in a URL (the variable carries it bare). */
	if (asprintf(&out->server, strchr(host, ':') ? "https://[%s]:%ld" : "https://%s:%ld", host,
		     p) < 0) {
		out->server = NULL;
		r = kc_fail(err, errlen, -ENOMEM, "out of memory");
		goto out_release;
	}
	if (asprintf(&out->token_file, "%s/token", sa_dir) < 0) {
		out->token_file = NULL;
		r = kc_fail(err, errlen, -ENOMEM, "out of memory");
		goto out_release;
	}
	if (asprintf(&out->ca_file, "%s/ca.crt", sa_dir) < 0) {
		out->ca_file = NULL;
		r = kc_fail(err, errlen, -ENOMEM, "out of memory");
		goto out_release;
	}
	r = load_refs(out, err, errlen);
	if (r < 0)
		goto out_release;
	return 0;

out_release:
	kube_auth_release(out);
	return r;
}
