// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "checkpoint.h"
#include "jsonx.h"

int checkpoint_save(const struct ipam *ipam, const char *path)
{
	json_t *doc = json_pack("{s:i,s:o}", "version", CHECKPOINT_VERSION, "ipam", ipam_to_json(ipam));
	char *text;
	int r;

	if (!doc)
		return -ENOMEM;
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	r = atomic_write_file(path, text, strlen(text), 0600);
	free(text);
	return r;
}

int checkpoint_load(struct ipam *ipam, const char *path, char *err, size_t errlen)
{
	char *text = NULL, why[256];
	json_t *doc = NULL;
	uint64_t version;
	size_t len;
	int r;

	r = read_file_bounded(path, CHECKPOINT_MAX_BYTES, &text, &len);
	if (r == -ENOENT)
		return r;
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r == -EFBIG ? -EINVAL : r;
	}
	doc = jx_loadb_object(text, len, CHECKPOINT_MAX_BYTES, why, sizeof(why));
	if (!doc) {
		snprintf(err, errlen, "%s is corrupt or truncated (%s)", path, why);
		r = -EINVAL;
		goto out_free;
	}
	if (jx_uint(doc, "version", UINT32_MAX, &version) < 0 || version != CHECKPOINT_VERSION) {
		snprintf(err, errlen, "%s has no or an unknown \"version\" (expected %d)", path,
			 CHECKPOINT_VERSION);
		r = -EINVAL;
		goto out_free;
	}
	r = ipam_restore(ipam, json_object_get(doc, "ipam"), why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "%s is inconsistent: %s", path, why);
		r = -EINVAL;
	}
out_free:
	json_decref(doc);
	free(text);
	return r;
}
