// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "atomicfile.h"

/*
 * The kubelet takes the first conflist in the directory as the node's network
 * and reports the node Ready once one exists: so it is written only when the
 * agent serves, and never removed on shutdown (a rolling update must not make
 * the node NotReady).
 */
int agent_write_conflist(const struct agent *agent)
{
	json_t *plugins = json_array(), *doc;
	char *text;
	int r;

	json_array_append_new(plugins, json_pack("{s:s,s:s,s:i,s:s}", "type", "berth-cni",
						 "agentSocket", agent->cni_sock, "mtu",
						 (int)agent->cfg.mtu, "vethPrefix",
						 agent->cfg.veth_prefix));
	if (agent->cfg.chain_portmap)
		json_array_append_new(plugins, json_pack("{s:s,s:{s:b},s:b}", "type", "portmap",
							 "capabilities", "portMappings", 1, "snat", 1));
	doc = json_pack("{s:s,s:s,s:o}", "cniVersion", agent->cfg.conflist_version, "name", agent->cfg.network_name,
			"plugins", plugins);
	if (!doc)
		return -ENOMEM;
	text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	r = atomic_write_file(agent->conflist, text, strlen(text), 0644);
	free(text);
	return r;
}
