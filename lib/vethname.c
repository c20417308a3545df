// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nettle/sha1.h>

#include "vethname.h"

bool veth_prefix_valid(const char *prefix)
{
	size_t n = strlen(prefix);

	if (n == 0 || n > VETH_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = prefix[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* Same scheme as the Amazon VPC CNI, so operators' tooling keeps working. */
int veth_host_name(const char *prefix, const char *k8s_namespace, const char *pod, char out[IFNAMSIZ])
{
	unsigned char digest[SHA1_DIGEST_SIZE];
	struct sha1_ctx sha;
	char key[512];
	int n;

	if (!veth_prefix_valid(prefix))
		return -EINVAL;
	n = snprintf(key, sizeof(key), "%s.%s", k8s_namespace, pod);
	if (n < 0 || (size_t)n >= sizeof(key))
		return -EINVAL;
	/* nettle, not libcrypto: loading libcrypto costs every plugin run ~3 ms. */
	sha1_init(&sha);
	sha1_update(&sha, (size_t)n, (const uint8_t *)key);
	sha1_digest(&sha, sizeof(digest), digest);
	n = snprintf(out, IFNAMSIZ, "%s", prefix);
	for (int i = 0; i < 6; i++)
		snprintf(out + n + 2 * i, IFNAMSIZ - n - 2 * i, "%02x", digest[i]);
	out[n + 11] = '\0'; /* 11 hex chars: prefix (<=4) + 11 < IFNAMSIZ */
	return 0;
}
