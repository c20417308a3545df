// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "cni.h"
#include "datapath.h"

json_t *cni_error_json(const char *version, const struct cni_error *e)
{
	json_t *o = json_pack("{s:s,s:i,s:s}", "cniVersion", version && *version ? version : "1.1.0",
			      "code", e->code, "msg", e->msg);

	if (o && e->details[0])
		json_object_set_new(o, "details", json_string(e->details));
	return o;
}

json_t *cni_version_result(const char *version)
{
	json_t *list = json_array();

	for (int i = 0; i < CNI_N_SUPPORTED_VERSIONS; i++)
		json_array_append_new(list, json_string(cni_supported_versions[i]));
	return json_pack("{s:s,s:o}", "cniVersion", version && *version ? version : "1.1.0",
			 "supportedVersions", list);
}

static void format_mac(const unsigned char *mac, char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/*
 * interfaces[0] is the host veth (no sandbox), interfaces[1] the pod's; the
 * address points at the pod's. 0.4.0 still wants "version" on each address.
 */
json_t *cni_add_result(const struct cni_conf *conf, const struct cni_env *env,
		       const struct dp_links *links, struct in_addr ip)
{
	bool v040 = strcmp(conf->version, "0.4.0") == 0;
	bool v110 = strcmp(conf->version, "1.1.0") == 0;
	char host_mac[18], pod_mac[18], addr[INET_ADDRSTRLEN + 3], ipbuf[INET_ADDRSTRLEN];
	char host_veth[IFNAMSIZ];
	json_t *ifaces, *ipo, *res;

	format_mac(links->host_mac, host_mac);
	format_mac(links->pod_mac, pod_mac);
	inet_ntop(AF_INET, &ip, ipbuf, sizeof(ipbuf));
	snprintf(addr, sizeof(addr), "%s/32", ipbuf);
	veth_host_name(conf->veth_prefix, env->k8s_namespace, env->pod, host_veth);

	ifaces = json_pack("[{s:s,s:s},{s:s,s:s,s:s}]", "name", host_veth, "mac", host_mac, "name",
			   env->ifname, "mac", pod_mac, "sandbox", env->netns);
	if (ifaces && v110 && conf->mtu) {
		json_object_set_new(json_array_get(ifaces, 0), "mtu", json_integer(conf->mtu));
		json_object_set_new(json_array_get(ifaces, 1), "mtu", json_integer(conf->mtu));
	}
	ipo = json_pack("{s:s,s:s,s:i}", "address", addr, "gateway", DP_GATEWAY, "interface", 1);
	if (ipo && v040)
		json_object_set_new(ipo, "version", json_string("4"));
	res = json_pack("{s:s,s:o,s:[o],s:[{s:s},{s:s,s:s}],s:{}}", "cniVersion", conf->version,
			"interfaces", ifaces, "ips", ipo, "routes", "dst", DP_GATEWAY "/32", "dst",
			"0.0.0.0/0", "gw", DP_GATEWAY, "dns");
	return res;
}
