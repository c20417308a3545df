// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"
#include "jsonx.h"

const char *const cni_supported_versions[CNI_N_SUPPORTED_VERSIONS] = { "0.4.0", "1.0.0", "1.1.0" };

void cni_set_error(struct cni_error *e, int code, const char *details, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	snprintf(e->details, sizeof(e->details), "%s", details ? details : "");
}

static const struct {
	const char *name;
	enum cni_cmd cmd;
} commands[] = {
	{ "ADD", CNI_ADD },	    { "DEL", CNI_DEL },	      { "CHECK", CNI_CHECK },
	{ "VERSION", CNI_VERSION }, { "STATUS", CNI_STATUS }, { "GC", CNI_GC },
};

static int copy_env(cni_getenv_fn get, const char *name, char *out, size_t cap, bool required,
		    struct cni_error *e)
{
	const char *v = get(name);

	if (!v || !*v) {
		if (!required)
			return 0;
		cni_set_error(e, CNI_ERR_INVALID_ENV, NULL, "%s is required", name);
		return -1;
	}
	if (strlen(v) >= cap) {
		cni_set_error(e, CNI_ERR_INVALID_ENV, NULL, "%s is too long", name);
		return -1;
	}
	strcpy(out, v);
	return 0;
}

/* CNI_ARGS: "K=V;K=V". Only the Kubernetes pod identity matters to berth. */
static int parse_cni_args(const char *args, struct cni_env *env, struct cni_error *e)
{
	char buf[CNI_MAX_ARGS], *item, *save = NULL;

	if (strlen(args) >= sizeof(buf)) {
		cni_set_error(e, CNI_ERR_INVALID_ENV, NULL, "CNI_ARGS is longer than %d bytes",
			      CNI_MAX_ARGS);
		return -1;
	}
	strcpy(buf, args);
	for (item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(item, '=');
		char *dst = NULL;
		size_t cap = 0;

		if (!eq) {
			cni_set_error(e, CNI_ERR_INVALID_ENV, item, "CNI_ARGS item is not KEY=VALUE");
			return -1;
		}
		*eq = '\0';
		if (strcmp(item, "K8S_POD_NAMESPACE") == 0) {
			dst = env->k8s_namespace;
			cap = sizeof(env->k8s_namespace);
		} else if (strcmp(item, "K8S_POD_NAME") == 0) {
			dst = env->pod;
			cap = sizeof(env->pod);
		}
		if (!dst)
			continue;
		if (!proto_valid_ident(eq + 1, cap)) {
			cni_set_error(e, CNI_ERR_INVALID_ENV, eq + 1, "CNI_ARGS %s is not a valid name", item);
			return -1;
		}
		strcpy(dst, eq + 1);
	}
	return 0;
}

int cni_parse_env(cni_getenv_fn get, struct cni_env *env, struct cni_error *e)
{
	const char *cmd = get("CNI_COMMAND"), *args;
	bool attach;
	size_t i;

	memset(env, 0, sizeof(*env));
	if (!cmd) {
		cni_set_error(e, CNI_ERR_INVALID_ENV, NULL, "CNI_COMMAND is required");
		return -1;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		cni_set_error(e, CNI_ERR_INVALID_ENV, cmd, "unknown CNI_COMMAND");
		return -1;
	}
	env->cmd = commands[i].cmd;
	attach = env->cmd == CNI_ADD || env->cmd == CNI_DEL || env->cmd == CNI_CHECK;
	if (!attach)
		return 0;
	/* DEL must work when the netns is already gone, so the runtime may omit it. */
	if (copy_env(get, "CNI_CONTAINERID", env->container_id, sizeof(env->container_id), true, e) ||
	    copy_env(get, "CNI_IFNAME", env->ifname, sizeof(env->ifname), true, e) ||
	    copy_env(get, "CNI_NETNS", env->netns, sizeof(env->netns), env->cmd != CNI_DEL, e))
		return -1;
	if (!proto_valid_ident(env->container_id, sizeof(env->container_id))) {
		cni_set_error(e, CNI_ERR_INVALID_ENV, env->container_id,
			      "CNI_CONTAINERID must be letters, digits, '_', '.', '-'");
		return -1;
	}
	if (!proto_valid_ifname(env->ifname)) {
		cni_set_error(e, CNI_ERR_INVALID_ENV, env->ifname, "CNI_IFNAME is not a valid interface name");
		return -1;
	}
	if (env->netns[0] && env->netns[0] != '/') {
		cni_set_error(e, CNI_ERR_INVALID_ENV, env->netns, "CNI_NETNS must be an absolute path");
		return -1;
	}
	args = get("CNI_ARGS");
	if (args && parse_cni_args(args, env, e) < 0)
		return -1;
	if (!env->k8s_namespace[0] || !env->pod[0]) {
		/* Not a Kubernetes pod (podman, tests): name the attachment by its container. */
		strcpy(env->k8s_namespace, "_");
		snprintf(env->pod, sizeof(env->pod), "%.*s", (int)sizeof(env->pod) - 1, env->container_id);
	}
	return 0;
}

static bool version_supported(const char *v)
{
	for (int i = 0; i < CNI_N_SUPPORTED_VERSIONS; i++)
		if (strcmp(v, cni_supported_versions[i]) == 0)
			return true;
	return false;
}

/* The address prevResult gives our interface (the CHECK/DEL inputs). */
static int parse_prev_result(struct cni_conf *conf, const struct cni_env *env, struct cni_error *e)
{
	json_t *ips = json_object_get(conf->prev_result, "ips");
	json_t *ifaces = json_object_get(conf->prev_result, "interfaces");
	json_t *ipo;
	size_t i;

	if (ips && !json_is_array(ips)) {
		cni_set_error(e, CNI_ERR_DECODE, NULL, "prevResult.ips is not an array");
		return -1;
	}
	json_array_foreach(ips, i, ipo) {
		char addr[INET_ADDRSTRLEN + 4];
		const char *ifname = NULL;
		struct in_addr a;
		unsigned int plen;
		uint64_t idx;

		if (!json_is_object(ipo) || jx_string(ipo, "address", addr, sizeof(addr)) < 0)
			continue; /* IPv6 or foreign entries are not ours */
		if (parse_ipv4_cidr(addr, &a, &plen, 1) < 0 || plen != 32)
			continue;
		if (jx_uint(ipo, "interface", 1024, &idx) == 0 && json_is_array(ifaces))
			jx_string_ref(json_array_get(ifaces, idx), "name", IFNAMSIZ, &ifname);
		if (ifname && strcmp(ifname, env->ifname) != 0)
			continue;
		conf->prev_ip = a;
		conf->has_prev_ip = true;
		return 0;
	}
	return 0;
}

static int parse_valid_attachments(const json_t *root, struct cni_conf *conf, struct cni_error *e)
{
	json_t *list = json_object_get(root, "cni.dev/valid-attachments"), *item;
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > PROTO_MAX_VALID) {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL,
			      "cni.dev/valid-attachments must be an array of at most %u", PROTO_MAX_VALID);
		return -1;
	}
	conf->valid = calloc(json_array_size(list) + 1, sizeof(*conf->valid));
	if (!conf->valid) {
		cni_set_error(e, CNI_ERR_IO, NULL, "out of memory");
		return -1;
	}
	json_array_foreach(list, i, item) {
		struct proto_attachment *a = &conf->valid[i];

		if (!json_is_object(item) ||
		    jx_string(item, "containerID", a->container_id, sizeof(a->container_id)) < 0 ||
		    !proto_valid_ident(a->container_id, sizeof(a->container_id)) ||
		    jx_string(item, "ifname", a->ifname, sizeof(a->ifname)) < 0 ||
		    !proto_valid_ifname(a->ifname)) {
			cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL,
				      "cni.dev/valid-attachments[%zu] needs containerID and ifname", i);
			return -1;
		}
	}
	conf->n_valid = json_array_size(list);
	return 0;
}

static int parse_fields(const json_t *root, const struct cni_env *env, struct cni_conf *conf,
			struct cni_error *e)
{
	const char *type;
	uint64_t mtu;
	int r;

	if (jx_string(root, "cniVersion", conf->version, sizeof(conf->version)) < 0) {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL, "cniVersion is missing or not a string");
		return -1;
	}
	if (!version_supported(conf->version)) {
		cni_set_error(e, CNI_ERR_INCOMPATIBLE_VERSION, conf->version,
			      "unsupported cniVersion; berth-cni supports 0.4.0, 1.0.0, 1.1.0");
		return -1;
	}
	if ((env->cmd == CNI_STATUS || env->cmd == CNI_GC) && strcmp(conf->version, "1.1.0") != 0) {
		cni_set_error(e, CNI_ERR_INCOMPATIBLE_VERSION, conf->version,
			      "STATUS and GC need cniVersion 1.1.0");
		return -1;
	}
	if (jx_string(root, "name", conf->name, sizeof(conf->name)) < 0 ||
	    !proto_valid_ident(conf->name, sizeof(conf->name))) {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL,
			      "name is missing or not letters, digits, '_', '.', '-'");
		return -1;
	}
	if (jx_string_ref(root, "type", 64, &type) < 0 || strcmp(type, "berth-cni") != 0) {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL, "type must be \"berth-cni\"");
		return -1;
	}
	strcpy(conf->agent_socket, CNI_DEFAULT_AGENT_SOCKET);
	r = jx_string(root, "agentSocket", conf->agent_socket, sizeof(conf->agent_socket));
	if (r == -EINVAL || conf->agent_socket[0] != '/') {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL,
			      "agentSocket must be an absolute path shorter than 108 bytes");
		return -1;
	}
	r = jx_uint(root, "mtu", 65535, &mtu);
	if (r == -EINVAL || (r == 0 && mtu < 576)) {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL, "mtu must be an integer 576..65535");
		return -1;
	}
	conf->mtu = r == 0 ? (unsigned int)mtu : 0;
	strcpy(conf->veth_prefix, VETH_PREFIX_DEFAULT);
	r = jx_string(root, "vethPrefix", conf->veth_prefix, sizeof(conf->veth_prefix));
	if (r == -EINVAL || !veth_prefix_valid(conf->veth_prefix)) {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL, "vethPrefix must be 1-4 of [a-z0-9]");
		return -1;
	}
	return 0;
}

int cni_parse_conf(const char *buf, size_t len, const struct cni_env *env, struct cni_conf *conf,
		   struct cni_error *e)
{
	json_t *root, *prev;
	char why[256];
	int r = -1;

	memset(conf, 0, sizeof(*conf));
	root = jx_loadb_object(buf, len, CNI_MAX_CONFIG, why, sizeof(why));
	if (!root) {
		cni_set_error(e, CNI_ERR_DECODE, why, "cannot decode the network configuration");
		return -1;
	}
	if (parse_fields(root, env, conf, e) < 0)
		goto out;
	prev = json_object_get(root, "prevResult");
	if (prev && !json_is_object(prev)) {
		cni_set_error(e, CNI_ERR_DECODE, NULL, "prevResult is not an object");
		goto out;
	}
	if (prev) {
		conf->prev_result = json_incref(prev);
		if (parse_prev_result(conf, env, e) < 0)
			goto out;
	}
	if (env->cmd == CNI_GC && parse_valid_attachments(root, conf, e) < 0)
		goto out;
	r = 0;
out:
	json_decref(root);
	if (r < 0)
		cni_conf_release(conf);
	return r;
}

void cni_conf_release(struct cni_conf *conf)
{
	json_decref(conf->prev_result);
	conf->prev_result = NULL;
	free(conf->valid);
	conf->valid = NULL;
	conf->n_valid = 0;
}
