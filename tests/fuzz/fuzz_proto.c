// SPDX-License-Identifier: Apache-2.0
/*
 * The agent socket protocol, both directions: requests as the agent decodes
 * them (and re-encodes: a decoded request must survive a round trip), and
 * replies as the plugin decodes them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const struct proto_request *a)
{
	struct proto_request b;
	char err[256];
	char *s = proto_encode_request(a);

	if (!s)
		abort();
	if (proto_decode_request(s, strlen(s), &b, err, sizeof(err)) != 0)
		abort();
	if (a->op != b.op || strcmp(a->network, b.network) ||
	    strcmp(a->att.container_id, b.att.container_id) || strcmp(a->att.ifname, b.att.ifname) ||
	    strcmp(a->k8s_namespace, b.k8s_namespace) || strcmp(a->pod, b.pod) ||
	    strcmp(a->host_veth, b.host_veth) || a->has_ip != b.has_ip ||
	    (a->has_ip && a->ip.s_addr != b.ip.s_addr) || a->n_valid != b.n_valid)
		abort();
	for (size_t i = 0; i < a->n_valid; i++)
		if (strcmp(a->valid[i].container_id, b.valid[i].container_id) ||
		    strcmp(a->valid[i].ifname, b.valid[i].ifname))
			abort();
	proto_request_release(&b);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request req;
	struct proto_add_reply ar;
	json_t *reply = NULL;
	char err[256];
	int r;

	r = proto_decode_request((const char *)data, size, &req, err, sizeof(err));
	if (r == 0) {
		check_roundtrip(&req);
		proto_request_release(&req);
	} else if (req.valid) {
		abort(); /* a failed decode must not hand back memory */
	}

	r = proto_decode_reply((const char *)data, size, &reply, err, sizeof(err));
	if (r == 0) {
		if (!reply)
			abort();
		proto_decode_add_reply(reply, &ar);
		json_decref(reply);
	} else if (r > 999) {
		abort(); /* CNI codes the plugin passes on are bounded */
	}
	return 0;
}
