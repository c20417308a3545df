// SPDX-License-Identifier: Apache-2.0
/*
 * kubeconfig parsing: success yields a usable server URL and consistent
 * credentials; failure names the problem and hands back nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kube_auth zero;
	struct kube_auth a;
	char err[256];
	int r;

	err[0] = '\0';
	r = kubeconfig_parse((const char *)data, size, "/nonexistent", &a, err, sizeof(err));
	if (r < 0) {
		if (!err[0] || memcmp(&a, &zero, sizeof(a)))
			abort();
		return 0;
	}
	if (r != 0 || !a.server || strncmp(a.server, "http", 4) ||
	    a.server[strlen(a.server) - 1] == '/')
		abort();
	/* At most one source per item, a key exactly when a certificate. */
	if ((a.ca_pem && a.ca_file) || (a.cert_pem && a.cert_file) || (a.key_pem && a.key_file) ||
	    (!!(a.cert_pem || a.cert_file) != !!(a.key_pem || a.key_file)) ||
	    (a.insecure && (a.ca_pem || a.ca_file)))
		abort();
	/* Relative paths were resolved against base_dir. */
	if ((a.ca_file && a.ca_file[0] != '/') || (a.token_file && a.token_file[0] != '/'))
		abort();
	kube_auth_release(&a);
	return 0;
}
