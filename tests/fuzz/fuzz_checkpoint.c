// SPDX-License-Identifier: Apache-2.0
/*
 * The checkpoint body, through the same decoder checkpoint_load uses
 * (jx_loadb_object), restored into a fresh ipam over a small pool. A
 * restored ipam must keep working and its own checkpoint must restore.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/checkpoint.h"
#include "jsonx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define POOL "10.0.0.0/29,10.0.1.5@eth1:100"
#define NOW 1700000000000LL

static struct ipam *fresh(void)
{
	struct ipam_range *ranges = NULL;
	struct ipam *ipam;
	char err[256];
	size_t n;

	if (ipam_parse_pool(POOL, &ranges, &n, err, sizeof(err)) < 0)
		abort();
	ipam = ipam_new(ranges, n, 30000, err, sizeof(err));
	free(ranges);
	if (!ipam)
		abort();
	return ipam;
}

/* Use the restored state: assign, release, gc, and persist. */
static void exercise(struct ipam *ipam)
{
	struct ipam_owner o = { .network = "net", .att = { .container_id = "fuzz", .ifname = "eth0" },
				.k8s_namespace = "default", .pod = "p", .host_veth = "brtfuzz" };
	const struct ipam_alloc *a;
	struct ipam_stats st;
	struct ipam *again;
	char err[256];
	json_t *body;
	int r;

	r = ipam_assign(ipam, &o, NOW, &a);
	if (r >= 0 && (!a || !ipam_lookup_ip(ipam, a->ip)))
		abort();
	ipam_get_stats(ipam, NOW, &st);
	if (st.free + st.cooling > st.size)
		abort();
	body = ipam_to_json(ipam);
	if (!body)
		abort();
	/* What we write, we must be able to read back. */
	again = fresh();
	if (ipam_restore(again, body, err, sizeof(err)) != 0)
		abort();
	ipam_free(again);
	json_decref(body);
	ipam_release(ipam, "net", &o.att, NOW + 1);
	ipam_gc(ipam, "net", NULL, 0, NOW + 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipam *ipam;
	json_t *doc, *body;
	char err[256];

	doc = jx_loadb_object((const char *)data, size, CHECKPOINT_MAX_BYTES, err, sizeof(err));
	if (!doc)
		return 0;
	/* Accept both a whole checkpoint file and a bare body. */
	body = json_object_get(doc, "ipam");
	if (!body)
		body = doc;
	ipam = fresh();
	if (ipam_restore(ipam, body, err, sizeof(err)) == 0)
		exercise(ipam);
	else if (!err[0])
		abort(); /* refusals must explain themselves */
	ipam_free(ipam);
	json_decref(doc);
	return 0;
}
