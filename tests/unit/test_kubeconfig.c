// SPDX-License-Identifier: Apache-2.0
/* kubeconfig parsing and loading, and in-cluster service-account credentials. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nettle/base64.h>

#include "kubeconfig.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN EC PRIVATE KEY-----\nMHcCAQ\n-----END EC PRIVATE KEY-----\n"

/* base64 of s, in a static rotating buffer: good for a few per format call. */
static const char *b64(const char *s)
{
	static char bufs[4][512];
	static unsigned int n;
	char *out = bufs[n++ % 4];
	size_t len = strlen(s);

	assert_true(BASE64_ENCODE_RAW_LENGTH(len) < sizeof(bufs[0]));
	base64_encode_raw(out, len, (const uint8_t *)s);
	out[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return out;
}

static int parse(const char *text, const char *base_dir, struct kube_auth *a, char *err,
		 size_t errlen)
{
	err[0] = '\0';
	return kubeconfig_parse(text, strlen(text), base_dir, a, err, errlen);
}

static void assert_zeroed(const struct kube_auth *a)
{
	static const struct kube_auth zero;

	assert_memory_equal(a, &zero, sizeof(zero));
}

/* text must be refused with err mentioning want, leaving *out zeroed. */
static void refused(const char *text, const char *want)
{
	struct kube_auth a;
	char err[256];
	int r = parse(text, "/base", &a, err, sizeof(err));

	if (r != -EINVAL)
		fail_msg("got %d (err \"%s\") for:\n%s", r, err, text);
	if (!strstr(err, want))
		fail_msg("err \"%s\" lacks \"%s\" for:\n%s", err, want, text);
	assert_zeroed(&a);
}

/* A kubeconfig whose one context "c" uses cluster "k" and user "u" with the given bodies. */
static char *one(const char *cluster_body, const char *user_body)
{
	char *s;

	assert_true(asprintf(&s,
			     "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
			     "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
			     "clusters:\n- name: k\n  cluster:\n%s\n"
			     "users:\n- name: u\n  user:\n%s\n",
			     cluster_body, user_body) > 0);
	return s;
}

static void refused_one(const char *cluster_body, const char *user_body, const char *want)
{
	char *s = one(cluster_body, user_body);

	refused(s, want);
	free(s);
}

#define SERVER "    server: https://k.example:6443\n"

/* ---- parsing ---- */

static void test_typical_embedded(void **state)
{
	struct kube_auth a;
	char err[256], *text;

	assert_true(asprintf(&text,
			     "apiVersion: v1\n"
			     "kind: Config\n"
			     "preferences: {}\n"
			     "clusters:\n"
			     "- name: other\n"
			     "  cluster:\n"
			     "    server: https://other:443\n"
			     "- name: kind-berth\n"
			     "  cluster:\n"
			     "    certificate-authority-data: %s\n"
			     "    server: https://127.0.0.1:36443/\n"
			     "contexts:\n"
			     "- context:\n"
			     "    cluster: other\n"
			     "    user: other\n"
			     "  name: other\n"
			     "- context:\n"
			     "    cluster: kind-berth\n"
			     "    user: kind-berth\n"
			     "    namespace: kube-system\n"
			     "  name: kind-berth\n"
			     "current-context: kind-berth\n"
			     "users:\n"
			     "- name: other\n"
			     "  user: {exec: {command: nope}}\n"
			     "- name: kind-berth\n"
			     "  user:\n"
			     "    client-certificate-data: %s\n"
			     "    client-key-data: %s\n",
			     b64(CA_PEM), b64(CERT_PEM), b64(KEY_PEM)) > 0);
	assert_int_equal(parse(text, "/home/me/.kube", &a, err, sizeof(err)), 0);
	assert_string_equal(a.server, "https://127.0.0.1:36443");
	assert_string_equal(a.ca_pem, CA_PEM);
	assert_string_equal(a.cert_pem, CERT_PEM);
	assert_string_equal(a.key_pem, KEY_PEM);
	assert_null(a.ca_file);
	assert_null(a.cert_file);
	assert_null(a.key_file);
	assert_null(a.token);
	assert_null(a.token_file);
	assert_false(a.insecure);
	kube_auth_release(&a);
	assert_zeroed(&a);
	free(text);
}

static void test_base64_folded_and_json(void **state)
{
	struct kube_auth a;
	char err[256], *text, folded[512];
	const char *enc = b64(CA_PEM);
	size_t n = strlen(enc), o = 0;

	/* Long data fields are sometimes wrapped; base64 whitespace is skipped. */
	for (size_t i = 0; i < n; i++) {
		if (i && i % 16 == 0) {
			memcpy(folded + o, "\n      ", 7);
			o += 7;
		}
		folded[o++] = enc[i];
	}
	folded[o] = '\0';
	assert_true(asprintf(&text,
			     "current-context: c\n"
			     "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
			     "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
			     "    certificate-authority-data: |\n      %s\n"
			     "users: [{name: u, user: {token: abc.def-ghi}}]\n",
			     folded) > 0);
	assert_int_equal(parse(text, NULL, &a, err, sizeof(err)), 0);
	assert_string_equal(a.ca_pem, CA_PEM);
	assert_string_equal(a.token, "abc.def-ghi");
	kube_auth_release(&a);
	free(text);

	/* A kubeconfig in JSON is YAML too. */
	assert_int_equal(
		parse("{\"current-context\": \"c\", \"contexts\": [{\"name\": \"c\", "
		      "\"context\": {\"cluster\": \"k\", \"user\": \"u\"}}], \"clusters\": "
		      "[{\"name\": \"k\", \"cluster\": {\"server\": \"http://127.0.0.1:8001\", "
		      "\"insecure-skip-tls-verify\": true}}], \"users\": [{\"name\": \"u\", "
		      "\"user\": {}}]}",
		      NULL, &a, err, sizeof(err)),
		0);
	assert_string_equal(a.server, "http://127.0.0.1:8001");
	assert_true(a.insecure);
	assert_null(a.token);
	assert_null(a.cert_pem);
	kube_auth_release(&a);
}

static void test_file_refs(void **state)
{
	struct kube_auth a;
	char err[256];
	char *text = one(SERVER "    certificate-authority: pki/ca.crt\n",
			 "    client-certificate: /abs/client.crt\n"
			 "    client-key: client.key\n"
			 "    token: inline\n"
			 "    tokenFile: ../tok\n");

	assert_int_equal(parse(text, "/etc/kc", &a, err, sizeof(err)), 0);
	assert_string_equal(a.ca_file, "/etc/kc/pki/ca.crt");
	assert_string_equal(a.cert_file, "/abs/client.crt");
	assert_string_equal(a.key_file, "/etc/kc/client.key");
	assert_string_equal(a.token_file, "/etc/kc/../tok");
	/* Parsing reads no file: the inline token stays until a loader reads tokenFile. */
	assert_string_equal(a.token, "inline");
	assert_null(a.ca_pem);
	assert_null(a.cert_pem);
	assert_null(a.key_pem);
	kube_auth_release(&a);

	/* Without a base_dir, relative paths stay as written. */
	assert_int_equal(parse(text, NULL, &a, err, sizeof(err)), 0);
	assert_string_equal(a.ca_file, "pki/ca.crt");
	assert_string_equal(a.key_file, "client.key");
	kube_auth_release(&a);
	free(text);
}

static void test_token_and_cert_together(void **state)
{
	struct kube_auth a;
	char err[256], *text, body[512];

	snprintf(body, sizeof(body),
		 "    client-certificate-data: %s\n    client-key-data: %s\n    token: t0k\n",
		 b64(CERT_PEM), b64(KEY_PEM));
	text = one(SERVER, body);
	assert_int_equal(parse(text, NULL, &a, err, sizeof(err)), 0);
	assert_string_equal(a.token, "t0k");
	assert_string_equal(a.cert_pem, CERT_PEM);
	assert_string_equal(a.key_pem, KEY_PEM);
	kube_auth_release(&a);
	free(text);
}

static void test_errors(void **state)
{
	char body[512];

	refused("", "empty");
	refused("---\n# nothing\n", "empty");
	refused("a: 1\n---\nb: 2\n", "more than one");
	refused("- a\n", "not a mapping");
	refused("a: [1\n", "kubeconfig: 2:1:");
	refused("apiVersion: v1\nclusters: []\n", "no current-context");
	refused("current-context: \"\"\n", "no current-context");
	refused("current-context: 7\n", "\"current-context\" must be a string");
	refused("current-context: x\n", "context \"x\" not found");
	refused("current-context: x\ncontexts: {x: 1}\n", "\"contexts\" must be a list");
	refused("current-context: x\ncontexts: [7]\n", "\"contexts\"[0] must be a mapping");
	refused("current-context: x\ncontexts: [{name: x}]\n", "context \"x\" has no \"context\"");
	refused("current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}, "
		"{name: x, context: {}}]\n",
		"context \"x\" is defined twice");
	refused("current-context: x\ncontexts: [{name: x, context: {user: u}}]\n",
		"context \"x\" has no cluster");
	refused("current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n",
		"context \"x\" has no user");
	refused("current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n",
		"cluster \"k\" not found");
	refused("current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
		"clusters: [{name: k, cluster: {server: 'https://k'}}]\n",
		"user \"u\" not found");

	refused_one("    insecure-skip-tls-verify: false\n", "", "cluster \"k\" has no server");
	refused_one("    server: k.example:6443\n", "", "not an http(s):// URL");
	refused_one("    server: ftp://k\n", "", "not an http(s):// URL");
	refused_one("    server: https://\n", "", "not an http(s):// URL");
	refused_one("    server: \"https://k\\n/x\"\n", "", "not an http(s):// URL");
	refused_one("    server: 6443\n", "", "\"server\" must be a string");
	refused_one(SERVER "    certificate-authority: ca.crt\n"
			   "    certificate-authority-data: QUJD\n",
		    "", "both \"certificate-authority\" and \"certificate-authority-data\"");
	refused_one(SERVER "    certificate-authority-data: '!!!'\n", "", "not valid base64");
	refused_one(SERVER "    certificate-authority-data: QUJ\n", "", "not valid base64");
	refused_one(SERVER "    certificate-authority-data: AAAA\n", "", "not valid base64");
	refused_one(SERVER "    insecure-skip-tls-verify: \"true\"\n", "", "must be a boolean");
	snprintf(body, sizeof(body),
		 SERVER "    insecure-skip-tls-verify: true\n    certificate-authority-data: %s\n",
		 b64(CA_PEM));
	refused_one(body, "", "insecure-skip-tls-verify together with a certificate authority");

	snprintf(body, sizeof(body), "    client-certificate-data: %s\n", b64(CERT_PEM));
	refused_one(SERVER, body, "user \"u\": client certificate without client key");
	refused_one(SERVER, "    client-key: k.pem\n", "client key without client certificate");
	refused_one(SERVER, "    client-key: k.pem\n    client-key-data: QUJD\n",
		    "both \"client-key\" and \"client-key-data\"");
	refused_one(SERVER, "    exec: {command: aws}\n", "\"exec\" is not supported");
	refused_one(SERVER, "    auth-provider: {name: gcp}\n",
		    "\"auth-provider\" is not supported");
	refused_one(SERVER, "    username: admin\n    password: x\n",
		    "\"username\" is not supported");
	refused_one(SERVER, "    token: \"abc\\r\\nX-Evil: 1\"\n", "token has invalid characters");
	refused_one(SERVER, "    token: [abc]\n", "\"token\" must be a string");
	refused_one(SERVER, "    token: \"a\\0b\"\n", "\"token\" must be a string");
	refused_one(SERVER, "    tokenFile: 1\n", "\"tokenFile\" must be a string");
}

static void test_empty_means_absent(void **state)
{
	struct kube_auth a;
	char err[256];
	char *text =
		one(SERVER "    certificate-authority: \"\"\n    insecure-skip-tls-verify: null\n",
		    "    token: \"\"\n    client-key: ~\n");

	assert_int_equal(parse(text, "/b", &a, err, sizeof(err)), 0);
	assert_null(a.ca_file);
	assert_null(a.token);
	assert_null(a.key_file);
	assert_false(a.insecure);
	kube_auth_release(&a);
	free(text);
}

/* ---- loading from files ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *dir, const char *name, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

static void test_load(void **state)
{
	char dir[] = "/tmp/berth-kc-XXXXXX", path[512], err[256], *text;
	struct kube_auth a;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(mkdir(strcat(strcpy(path, dir), "/pki"), 0700), 0);
	write_file(dir, "pki/ca.crt", CA_PEM);
	write_file(dir, "client.crt", CERT_PEM);
	write_file(dir, "client.key", KEY_PEM);
	write_file(dir, "token", "  from-file.tok\n\n");
	text = one("    server: https://k\n    certificate-authority: pki/ca.crt\n",
		   "    client-certificate: client.crt\n    client-key: client.key\n"
		   "    token: inline\n    tokenFile: token\n");
	write_file(dir, "config", text);
	free(text);
	snprintf(path, sizeof(path), "%s/config", dir);

	assert_int_equal(kubeconfig_load(path, &a, err, sizeof(err)), 0);
	assert_string_equal(a.server, "https://k");
	assert_string_equal(a.ca_pem, CA_PEM);
	assert_string_equal(a.cert_pem, CERT_PEM);
	assert_string_equal(a.key_pem, KEY_PEM);
	/* tokenFile wins over the inline token, trimmed. */
	assert_string_equal(a.token, "from-file.tok");
	/* The file names are kept (tokens rotate; certificates may too). */
	assert_non_null(strstr(a.ca_file, "/pki/ca.crt"));
	assert_int_equal(strncmp(a.token_file, dir, strlen(dir)), 0);
	kube_auth_release(&a);

	/* A referenced file that is missing is named in the error. */
	snprintf(path, sizeof(path), "%s/client.key", dir);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/config", dir);
	assert_int_equal(kubeconfig_load(path, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "client.key"));
	assert_zeroed(&a);

	/* An empty token file. */
	write_file(dir, "client.key", KEY_PEM);
	write_file(dir, "token", "\n");
	assert_int_equal(kubeconfig_load(path, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "token is empty"));
	assert_zeroed(&a);

	/* Parse errors come through with the problem named. */
	write_file(dir, "config", "current-context: nope\n");
	assert_int_equal(kubeconfig_load(path, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "context \"nope\" not found"));

	/* Missing and oversized kubeconfigs. */
	snprintf(path, sizeof(path), "%s/absent", dir);
	assert_int_equal(kubeconfig_load(path, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "absent"));
	snprintf(path, sizeof(path), "%s/big", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, KUBECONFIG_MAX_BYTES + 1), 0);
		close(fd);
	}
	assert_int_equal(kubeconfig_load(path, &a, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "larger than"));
	assert_zeroed(&a);
	rm_tree(dir);
}

/* ---- in-cluster ---- */

static void test_in_cluster(void **state)
{
	char dir[] = "/tmp/berth-sa-XXXXXX", err[256], path[512];
	struct kube_auth a;

	assert_non_null(mkdtemp(dir));
	write_file(dir, "token", "eyJhbGciOi.payload.sig\n");
	write_file(dir, "ca.crt", CA_PEM);

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), 0);
	assert_string_equal(a.server, "https://10.96.0.1:443");
	assert_string_equal(a.token, "eyJhbGciOi.payload.sig");
	assert_string_equal(a.ca_pem, CA_PEM);
	snprintf(path, sizeof(path), "%s/token", dir);
	assert_string_equal(a.token_file, path);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	assert_string_equal(a.ca_file, path);
	assert_false(a.insecure);
	kube_auth_release(&a);

	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), 0);
	assert_string_equal(a.server, "https://[fd00:10:96::1]:443");
	kube_auth_release(&a);

	setenv("KUBERNETES_SERVICE_PORT", "0", 1);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_PORT"));
	setenv("KUBERNETES_SERVICE_PORT", "443x", 1);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -EINVAL);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("KUBERNETES_SERVICE_HOST", "evil/path@x", 1);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	assert_zeroed(&a);

	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "not in a cluster"));
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);

	/* ca.crt must exist. */
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "ca.crt"));
	assert_zeroed(&a);
	write_file(dir, "ca.crt", CA_PEM);

	/* A token with a newline inside is refused, as is an empty one. */
	write_file(dir, "token", "abc\ndef\n");
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -EINVAL);
	write_file(dir, "token", "");
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -EINVAL);
	snprintf(path, sizeof(path), "%s/token", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "token"));
	assert_zeroed(&a);

	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	rm_tree(dir);
}

static void test_release_zeroed(void **state)
{
	struct kube_auth a = { 0 };

	kube_auth_release(&a);
	kube_auth_release(&a);
	kube_auth_release(NULL);
	assert_zeroed(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_typical_embedded),
		cmocka_unit_test(test_base64_folded_and_json),
		cmocka_unit_test(test_file_refs),
		cmocka_unit_test(test_token_and_cert_together),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_empty_means_absent),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_release_zeroed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
