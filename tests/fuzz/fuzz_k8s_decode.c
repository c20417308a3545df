// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes API objects: the input is decoded as every kind (the decoders
 * must refuse what is not theirs without crashing or leaking). A decoded
 * Service or EndpointSlice must survive encode -> text -> decode unchanged,
 * and encoding must be stable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "k8s_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1 << 20)

static json_t *encode(const struct k8s_object *o)
{
	return o->kind == K8S_SERVICE ? k8s_service_to_json(&o->svc)
				      : k8s_endpointslice_to_json(&o->eps);
}

static void check_roundtrip(const struct k8s_object *a)
{
	json_t *j1 = encode(a), *j2, *reread;
	struct k8s_object *b;
	char err[512];
	char *text;

	if (!j1)
		abort();
	text = json_dumps(j1, JSON_COMPACT);
	if (!text)
		abort();
	reread = jx_loadb_object(text, strlen(text), MAX_INPUT * 4, err, sizeof(err));
	if (!reread)
		abort();
	b = k8s_decode(a->kind, reread, err, sizeof(err));
	if (!b)
		abort(); /* what berth prints, berth must read */
	if (!k8s_object_equal(a, b) || strcmp(a->meta.rv, b->meta.rv))
		abort();
	j2 = encode(b);
	if (!j2 || !json_equal(j1, j2))
		abort();
	json_decref(j2);
	k8s_object_free(b);
	json_decref(reread);
	free(text);
	json_decref(j1);
}

static void check_key(const struct k8s_object *o)
{
	char *key = k8s_object_key(o);
	size_t ns = strlen(o->meta.ns);

	if (!key)
		abort();
	/* Names are validated, so "ns/name" is unambiguous. */
	if (ns ? strncmp(key, o->meta.ns, ns) || key[ns] != '/' || strcmp(key + ns + 1, o->meta.name)
	       : strcmp(key, o->meta.name))
		abort();
	if (strchr(o->meta.name, '/'))
		abort();
	free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	json_t *root = jx_loadb_object((const char *)data, size, MAX_INPUT, err, sizeof(err));

	if (!root)
		return 0;
	for (int kind = 0; kind < K8S_NKINDS; kind++) {
		struct k8s_object *o = k8s_decode(kind, root, err, sizeof(err));

		if (!o) {
			if (!err[0])
				abort(); /* every refusal says why */
			continue;
		}
		if ((int)o->kind != kind || !k8s_object_equal(o, o))
			abort();
		check_key(o);
		if (kind == K8S_SERVICE || kind == K8S_ENDPOINTSLICE)
			check_roundtrip(o);
		k8s_object_free(o);
	}
	json_decref(root);
	return 0;
}
