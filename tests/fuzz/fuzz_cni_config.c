// SPDX-License-Identifier: Apache-2.0
/*
 * The network configuration berth-cni reads on stdin, as ADD, DEL and GC
 * would see it; on success also build the result and error documents.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cni/cni.h"
#include "datapath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cni_env make_env(enum cni_cmd cmd)
{
	struct cni_env env = { .cmd = cmd };

	strcpy(env.container_id, "0123456789abcdef");
	strcpy(env.ifname, "eth0");
	if (cmd != CNI_DEL)
		strcpy(env.netns, "/var/run/netns/pod");
	strcpy(env.k8s_namespace, "default");
	strcpy(env.pod, "nginx");
	return env;
}

static void dump_and_free(json_t *o)
{
	char *s;

	if (!o)
		abort(); /* built from validated input: must never fail */
	s = json_dumps(o, JSON_COMPACT);
	if (!s)
		abort();
	free(s);
	json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum cni_cmd cmds[] = { CNI_ADD, CNI_DEL, CNI_GC };
	const struct dp_links links = { .host_ifindex = 3, .host_mac = { 2, 0, 0, 0, 0, 1 },
					.pod_ifindex = 2, .pod_mac = { 2, 0, 0, 0, 0, 2 } };

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct cni_env env = make_env(cmds[i]);
		struct cni_conf conf;
		struct cni_error e;

		if (cni_parse_conf((const char *)data, size, &env, &conf, &e) < 0) {
			/* The error document must be printable whatever went wrong. */
			if (e.code <= 0)
				abort();
			dump_and_free(cni_error_json(NULL, &e));
			continue;
		}
		if (cmds[i] == CNI_ADD) {
			struct in_addr ip = conf.has_prev_ip ? conf.prev_ip : (struct in_addr){ htonl(0xc6120005) };

			dump_and_free(cni_add_result(&conf, &env, &links, ip));
		}
		if (cmds[i] == CNI_GC && conf.n_valid && !conf.valid)
			abort();
		dump_and_free(cni_version_result(conf.version));
		cni_conf_release(&conf);
	}
	return 0;
}
