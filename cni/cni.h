/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth-cni's view of one invocation: the CNI environment and the network
 * configuration, decoded and validated (pure, no I/O), and the error and
 * result documents it prints. CNI spec 1.1.
 */
#ifndef BERTH_CNI_H
#define BERTH_CNI_H

#include <jansson.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto.h"
#include "vethname.h"

#define CNI_MAX_CONFIG (1u << 20)
#define CNI_MAX_ARGS 4096

/* Error codes of the CNI spec, and berth's own (100+). */
enum cni_code {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_NOT_AVAILABLE = 50,
	CNI_ERR_LIMITED = 51,
	CNI_ERR_CHECK_FAILED = 100,
};

enum cni_cmd { CNI_ADD, CNI_DEL, CNI_CHECK, CNI_VERSION, CNI_STATUS, CNI_GC };

struct cni_error {
	int code;
	char msg[256];
	char details[512];
};

struct cni_env {
	enum cni_cmd cmd;
	char container_id[PROTO_CONTAINER_MAX];
	char netns[PATH_MAX];
	char ifname[IFNAMSIZ];
	/* From CNI_ARGS (K8S_POD_NAMESPACE / K8S_POD_NAME); "_" and the container ID without them. */
	char k8s_namespace[PROTO_K8S_NS_MAX];
	char pod[PROTO_POD_MAX];
};

struct cni_conf {
	char version[16];
	char name[PROTO_NETWORK_MAX];
	char agent_socket[108];
	unsigned int mtu;
	char veth_prefix[VETH_PREFIX_MAX + 1];
	/* From prevResult, when it names an address on our interface. */
	bool has_prev_ip;
	struct in_addr prev_ip;
	json_t *prev_result; /* owned; NULL when absent */
	struct proto_attachment *valid; /* GC: cni.dev/valid-attachments, malloc'd */
	size_t n_valid;
};

extern const char *const cni_supported_versions[];
#define CNI_N_SUPPORTED_VERSIONS 3
#define CNI_DEFAULT_AGENT_SOCKET "/run/berth/cni.sock"

typedef const char *(*cni_getenv_fn)(const char *name);

/* Decode the CNI_* environment for the command it names. 0 or -1 with *e set (code 4). */
int cni_parse_env(cni_getenv_fn get, struct cni_env *env, struct cni_error *e);
/* Decode the network configuration from stdin. 0 or -1 with *e set (codes 1, 6, 7). */
int cni_parse_conf(const char *buf, size_t len, const struct cni_env *env, struct cni_conf *conf,
		   struct cni_error *e);
void cni_conf_release(struct cni_conf *conf);

void cni_set_error(struct cni_error *e, int code, const char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* {"cniVersion","code","msg","details"} */
json_t *cni_error_json(const char *version, const struct cni_error *e);

struct dp_links;
/* The ADD result in the requested version's shape. */
json_t *cni_add_result(const struct cni_conf *conf, const struct cni_env *env,
		       const struct dp_links *links, struct in_addr ip);
json_t *cni_version_result(const char *version);

#endif
