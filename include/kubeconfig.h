/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How to reach the API server: from a kubeconfig file (its current context)
 * or from the in-cluster service account. Parsing is pure where it can be
 * (kubeconfig_parse takes the file's text); file references are read by the
 * caller-facing loaders.
 */
#ifndef BERTH_KUBECONFIG_H
#define BERTH_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define KUBECONFIG_MAX_BYTES (1u << 20)
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kube_auth {
	char *server;        /* "https://host:port" (no trailing slash) */
	/* PEM blobs, or NULL. A *_file is kept when the kubeconfig names a file. */
	char *ca_pem;
	char *ca_file;
	char *cert_pem;
	char *cert_file;
	char *key_pem;
	char *key_file;
	char *token;         /* bearer token, or NULL */
	char *token_file;    /* re-read when it changes (bound tokens rotate) */
	bool insecure;       /* insecure-skip-tls-verify: allowed only if no CA is given */
};

/*
 * Parse a kubeconfig's text: the current-context's cluster and user.
 * *-data fields are base64-decoded into *_pem; file fields are only resolved
 * (relative paths against base_dir, used as given when base_dir is NULL),
 * not read. Both token and token_file are kept when both are set. server may
 * be https:// or http:// (tests, kubectl proxy). exec, auth-provider and basic
 * auth are refused. 0, or -EINVAL (-ENOMEM, -EFBIG beyond
 * KUBECONFIG_MAX_BYTES) with err set and *out left zeroed.
 */
int kubeconfig_parse(const char *text, size_t len, const char *base_dir, struct kube_auth *out,
		     char *err, size_t errlen);
/*
 * Read and parse a kubeconfig file (base_dir: its directory), then read the
 * files it names: ca_file/cert_file/key_file into the *_pem fields (the
 * names are kept), token_file into token (trimmed; it replaces an inline
 * token, as in client-go). 0 or -errno with err set and *out left zeroed.
 */
int kubeconfig_load(const char *path, struct kube_auth *out, char *err, size_t errlen);
/*
 * In-cluster: server "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
 * (an IPv6 host is bracketed), token_file = sa_dir/token read into token
 * (trimmed), ca_file = sa_dir/ca.crt read into ca_pem (must exist). sa_dir
 * NULL means SA_DIR. 0; -ENOENT when the variables are unset (not in a
 * cluster); other -errno with err set.
 */
int kube_auth_in_cluster(const char *sa_dir, struct kube_auth *out, char *err, size_t errlen);
/* Free everything (secrets are wiped first) and zero *a. Accepts NULL and a zeroed struct. */
void kube_auth_release(struct kube_auth *a);

#endif
