// SPDX-License-Identifier: Apache-2.0
/* berth-cni's inputs (environment, network config) and outputs (result, error). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cni/cni.h"
#include "datapath.h"

/* ---- a fake environment: getenv has no context argument, so a test-only static ---- */

struct kv {
	const char *k, *v;
};

static const struct kv *fake_env;

static const char *fake_getenv(const char *name)
{
	for (const struct kv *p = fake_env; p && p->k; p++)
		if (strcmp(p->k, name) == 0)
			return p->v;
	return NULL;
}

static int parse_env(const struct kv *vars, struct cni_env *env, struct cni_error *e)
{
	memset(e, 0, sizeof(*e));
	fake_env = vars;
	return cni_parse_env(fake_getenv, env, e);
}

/* Expect cni_parse_env to refuse with code 4. */
#define ENV_REFUSED(...)                                                         \
	do {                                                                     \
		const struct kv v_[] = { __VA_ARGS__, { NULL, NULL } };          \
		struct cni_env env_;                                             \
		struct cni_error e_;                                             \
		assert_int_equal(parse_env(v_, &env_, &e_), -1);                 \
		assert_int_equal(e_.code, CNI_ERR_INVALID_ENV);                  \
		assert_true(e_.msg[0] != '\0');                                  \
	} while (0)

#define ADD_BASE                                                                         \
	{ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc123" }, { "CNI_IFNAME", "eth0" }, \
	{ "CNI_NETNS", "/var/run/netns/pod1" }

static void test_env_add_k8s(void **state)
{
	const struct kv vars[] = {
		ADD_BASE,
		{ "CNI_ARGS",
		  "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;"
		  "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=x/y z" },
		{ "CNI_PATH", "/opt/cni/bin" },
		{ NULL, NULL },
	};
	struct cni_env env;
	struct cni_error e;

	assert_int_equal(parse_env(vars, &env, &e), 0);
	assert_int_equal(env.cmd, CNI_ADD);
	assert_string_equal(env.container_id, "abc123");
	assert_string_equal(env.ifname, "eth0");
	assert_string_equal(env.netns, "/var/run/netns/pod1");
	assert_string_equal(env.k8s_namespace, "default");
	assert_string_equal(env.pod, "nginx");
}

static void test_env_no_k8s_args(void **state)
{
	const struct kv plain[] = { ADD_BASE, { NULL, NULL } };
	const struct kv half[] = { ADD_BASE, { "CNI_ARGS", "K8S_POD_NAMESPACE=kube-system" },
				   { NULL, NULL } };
	const struct kv empty[] = { ADD_BASE, { "CNI_ARGS", ";;" }, { NULL, NULL } };
	struct cni_env env;
	struct cni_error e;

	/* Not a Kubernetes pod: the container ID names it. */
	assert_int_equal(parse_env(plain, &env, &e), 0);
	assert_string_equal(env.k8s_namespace, "_");
	assert_string_equal(env.pod, "abc123");
	/* Half an identity is no identity. */
	assert_int_equal(parse_env(half, &env, &e), 0);
	assert_string_equal(env.k8s_namespace, "_");
	assert_string_equal(env.pod, "abc123");
	assert_int_equal(parse_env(empty, &env, &e), 0);
	assert_string_equal(env.pod, "abc123");
}

static void test_env_commands(void **state)
{
	static const struct {
		const char *name;
		enum cni_cmd cmd;
	} cmds[] = { { "VERSION", CNI_VERSION }, { "STATUS", CNI_STATUS }, { "GC", CNI_GC } };
	const struct kv del[] = { { "CNI_COMMAND", "DEL" },
				  { "CNI_CONTAINERID", "abc123" },
				  { "CNI_IFNAME", "eth0" },
				  { NULL, NULL } };
	const struct kv del_empty_ns[] = { { "CNI_COMMAND", "DEL" },
					   { "CNI_CONTAINERID", "abc123" },
					   { "CNI_IFNAME", "eth0" },
					   { "CNI_NETNS", "" },
					   { NULL, NULL } };
	struct cni_env env;
	struct cni_error e;

	/* These carry no attachment, so need no other variable. */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct kv v[] = { { "CNI_COMMAND", cmds[i].name }, { NULL, NULL } };

		assert_int_equal(parse_env(v, &env, &e), 0);
		assert_int_equal(env.cmd, cmds[i].cmd);
	}
	/* DEL must work after the netns is gone. */
	assert_int_equal(parse_env(del, &env, &e), 0);
	assert_int_equal(env.cmd, CNI_DEL);
	assert_string_equal(env.netns, "");
	assert_int_equal(parse_env(del_empty_ns, &env, &e), 0);
	assert_string_equal(env.netns, "");
}

static void test_env_missing(void **state)
{
	ENV_REFUSED({ "CNI_CONTAINERID", "abc" });
	ENV_REFUSED({ "CNI_COMMAND", "FROB" });
	ENV_REFUSED({ "CNI_COMMAND", "add" });
	ENV_REFUSED({ "CNI_COMMAND", "" });
	for (int c = 0; c < 3; c++) {
		const char *cmd = c == 0 ? "ADD" : c == 1 ? "CHECK" : "DEL";

		ENV_REFUSED({ "CNI_COMMAND", cmd }, { "CNI_IFNAME", "eth0" },
			    { "CNI_NETNS", "/proc/1/ns/net" });
		ENV_REFUSED({ "CNI_COMMAND", cmd }, { "CNI_CONTAINERID", "" },
			    { "CNI_IFNAME", "eth0" }, { "CNI_NETNS", "/proc/1/ns/net" });
		ENV_REFUSED({ "CNI_COMMAND", cmd }, { "CNI_CONTAINERID", "abc" },
			    { "CNI_NETNS", "/proc/1/ns/net" });
	}
	/* ADD and CHECK need the netns. */
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "eth0" });
	ENV_REFUSED({ "CNI_COMMAND", "CHECK" }, { "CNI_CONTAINERID", "abc" },
		    { "CNI_IFNAME", "eth0" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "eth0" },
		    { "CNI_NETNS", "" });
}

static void test_env_bad_values(void **state)
{
	char long_id[300];

	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';

	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc/def" }, { "CNI_IFNAME", "eth0" },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc def" }, { "CNI_IFNAME", "eth0" },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc;x" }, { "CNI_IFNAME", "eth0" },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", long_id }, { "CNI_IFNAME", "eth0" },
		    { "CNI_NETNS", "/n" });
	/* Interface names the kernel would refuse. */
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "a/b" },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "a:b" },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "a b" },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "." },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", ".." },
		    { "CNI_NETNS", "/n" });
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" },
		    { "CNI_IFNAME", "sixteen-chars-xx" }, { "CNI_NETNS", "/n" });
	/* Relative netns paths depend on the runtime's cwd. */
	ENV_REFUSED({ "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "eth0" },
		    { "CNI_NETNS", "proc/1/ns/net" });
	ENV_REFUSED({ "CNI_COMMAND", "DEL" }, { "CNI_CONTAINERID", "abc" }, { "CNI_IFNAME", "eth0" },
		    { "CNI_NETNS", "./ns" });
}

static void test_env_limits_accepted(void **state)
{
	char id[PROTO_CONTAINER_MAX];
	struct cni_env env;
	struct cni_error e;

	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	{
		const struct kv v[] = { { "CNI_COMMAND", "ADD" }, { "CNI_CONTAINERID", id },
					{ "CNI_IFNAME", "fifteen-chars-x" }, { "CNI_NETNS", "/n" },
					{ NULL, NULL } };

		assert_int_equal(parse_env(v, &env, &e), 0);
		assert_string_equal(env.container_id, id);
		assert_string_equal(env.ifname, "fifteen-chars-x");
		/* The fallback pod name is the ID cut to fit. */
		assert_int_equal(strlen(env.pod), PROTO_POD_MAX - 1);
		assert_memory_equal(env.pod, id, PROTO_POD_MAX - 1);
	}
}

static void test_env_cni_args(void **state)
{
	char *args = malloc(CNI_MAX_ARGS + 1), name[PROTO_POD_MAX + 1], buf[400];
	struct cni_env env;
	struct cni_error e;

	assert_non_null(args);
	/* CNI_MAX_ARGS - 1 bytes is fine, CNI_MAX_ARGS is not. */
	memset(args, 'x', CNI_MAX_ARGS);
	memcpy(args, "A=", 2);
	args[CNI_MAX_ARGS - 1] = '\0';
	{
		const struct kv v[] = { ADD_BASE, { "CNI_ARGS", args }, { NULL, NULL } };

		assert_int_equal(parse_env(v, &env, &e), 0);
	}
	args[CNI_MAX_ARGS - 1] = 'x';
	args[CNI_MAX_ARGS] = '\0';
	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", args });
	free(args);

	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", "K8S_POD_NAME" });
	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", "IgnoreUnknown=1;garbage" });
	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=a/b" });
	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", "K8S_POD_NAMESPACE=de fault;K8S_POD_NAME=nginx" });
	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", "K8S_POD_NAMESPACE=;K8S_POD_NAME=nginx" });

	/* Pod names up to 253 bytes (a DNS subdomain), namespaces up to 63. */
	memset(name, 'p', sizeof(name));
	name[PROTO_POD_MAX - 1] = '\0';
	snprintf(buf, sizeof(buf), "K8S_POD_NAMESPACE=default;K8S_POD_NAME=%s", name);
	{
		const struct kv v[] = { ADD_BASE, { "CNI_ARGS", buf }, { NULL, NULL } };

		assert_int_equal(parse_env(v, &env, &e), 0);
		assert_string_equal(env.pod, name);
	}
	name[PROTO_POD_MAX - 1] = 'p';
	name[PROTO_POD_MAX] = '\0';
	snprintf(buf, sizeof(buf), "K8S_POD_NAMESPACE=default;K8S_POD_NAME=%s", name);
	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", buf });
	snprintf(buf, sizeof(buf), "K8S_POD_NAME=x;K8S_POD_NAMESPACE=%.64s", name);
	ENV_REFUSED(ADD_BASE, { "CNI_ARGS", buf });
	snprintf(buf, sizeof(buf), "K8S_POD_NAME=x;K8S_POD_NAMESPACE=%.63s", name);
	{
		const struct kv v[] = { ADD_BASE, { "CNI_ARGS", buf }, { NULL, NULL } };

		assert_int_equal(parse_env(v, &env, &e), 0);
		assert_int_equal(strlen(env.k8s_namespace), 63);
		assert_string_equal(env.pod, "x");
	}
}

/* ---- network configuration ---- */

static struct cni_env mkenv(enum cni_cmd cmd, const char *ifname)
{
	struct cni_env env = { .cmd = cmd };

	snprintf(env.container_id, sizeof(env.container_id), "abc123");
	snprintf(env.ifname, sizeof(env.ifname), "%s", ifname);
	snprintf(env.netns, sizeof(env.netns), "/var/run/netns/pod1");
	snprintf(env.k8s_namespace, sizeof(env.k8s_namespace), "default");
	snprintf(env.pod, sizeof(env.pod), "nginx");
	return env;
}

/* Parse conf text for cmd; 0 on success (conf released), else the CNI error code. */
static int conf_code(enum cni_cmd cmd, const char *text)
{
	struct cni_env env = mkenv(cmd, "eth0");
	struct cni_conf conf;
	struct cni_error e = { 0 };

	if (cni_parse_conf(text, strlen(text), &env, &conf, &e) == 0) {
		cni_conf_release(&conf);
		return 0;
	}
	assert_true(e.msg[0] != '\0');
	/* A failed parse leaves nothing to release. */
	assert_null(conf.prev_result);
	assert_null(conf.valid);
	return e.code;
}

#define CONF(rest) "{\"cniVersion\":\"1.1.0\",\"name\":\"berth\",\"type\":\"berth-cni\"" rest "}"

static void test_conf_minimal(void **state)
{
	struct cni_env env = mkenv(CNI_ADD, "eth0");
	struct cni_conf conf;
	struct cni_error e;
	const char *text = CONF("");

	assert_int_equal(cni_parse_conf(text, strlen(text), &env, &conf, &e), 0);
	assert_string_equal(conf.version, "1.1.0");
	assert_string_equal(conf.name, "berth");
	assert_string_equal(conf.agent_socket, CNI_DEFAULT_AGENT_SOCKET);
	assert_int_equal(conf.mtu, 0);
	assert_string_equal(conf.veth_prefix, "brt");
	assert_false(conf.has_prev_ip);
	assert_null(conf.prev_result);
	assert_null(conf.valid);
	cni_conf_release(&conf);
	cni_conf_release(&conf); /* idempotent */
}

static void test_conf_all_fields(void **state)
{
	struct cni_env env = mkenv(CNI_ADD, "eth0");
	struct cni_conf conf;
	struct cni_error e;
	const char *text = CONF(",\"agentSocket\":\"/tmp/x.sock\",\"mtu\":9001,\"vethPrefix\":\"eni\","
				"\"ipam\":{},\"dns\":{},\"unknownField\":[1,2]");

	assert_int_equal(cni_parse_conf(text, strlen(text), &env, &conf, &e), 0);
	assert_string_equal(conf.agent_socket, "/tmp/x.sock");
	assert_int_equal(conf.mtu, 9001);
	assert_string_equal(conf.veth_prefix, "eni");
	cni_conf_release(&conf);
}

static void test_conf_decode_errors(void **state)
{
	assert_int_equal(conf_code(CNI_ADD, ""), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, "{"), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, "nope"), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, CONF("") " {}"), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, "[]"), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, "\"1.1.0\""), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, "42"), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"name\":\"other\"")), CNI_ERR_DECODE);
}

static void test_conf_embedded_nul(void **state)
{
	static const char text[] = "{\"cniVersion\":\"1.1.0\",\0\"name\":\"berth\"}";
	struct cni_env env = mkenv(CNI_ADD, "eth0");
	struct cni_conf conf;
	struct cni_error e;

	assert_int_equal(cni_parse_conf(text, sizeof(text) - 1, &env, &conf, &e), -1);
	assert_int_equal(e.code, CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"a\\u0000b\"")), CNI_ERR_DECODE);
}

static void test_conf_version(void **state)
{
	struct cni_env env = mkenv(CNI_ADD, "eth0");
	struct cni_conf conf;
	struct cni_error e;
	const char *v031 = "{\"cniVersion\":\"0.3.1\",\"name\":\"berth\",\"type\":\"berth-cni\"}";

	assert_int_equal(conf_code(CNI_ADD, "{\"name\":\"berth\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":1,\"name\":\"b\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(cni_parse_conf(v031, strlen(v031), &env, &conf, &e), -1);
	assert_int_equal(e.code, CNI_ERR_INCOMPATIBLE_VERSION);
	assert_string_equal(e.details, "0.3.1");
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"2.0.0\",\"name\":\"b\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INCOMPATIBLE_VERSION);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"\",\"name\":\"b\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INCOMPATIBLE_VERSION);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0 \",\"name\":\"b\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INCOMPATIBLE_VERSION);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"0.4.0\",\"name\":\"b\",\"type\":\"berth-cni\"}"),
			 0);
	assert_int_equal(conf_code(CNI_DEL, "{\"cniVersion\":\"1.0.0\",\"name\":\"b\",\"type\":\"berth-cni\"}"),
			 0);
	/* STATUS and GC came with 1.1.0. */
	for (int c = 0; c < 2; c++) {
		enum cni_cmd cmd = c ? CNI_GC : CNI_STATUS;

		assert_int_equal(conf_code(cmd, "{\"cniVersion\":\"0.4.0\",\"name\":\"b\",\"type\":\"berth-cni\"}"),
				 CNI_ERR_INCOMPATIBLE_VERSION);
		assert_int_equal(conf_code(cmd, "{\"cniVersion\":\"1.0.0\",\"name\":\"b\",\"type\":\"berth-cni\"}"),
				 CNI_ERR_INCOMPATIBLE_VERSION);
		assert_int_equal(conf_code(cmd, CONF("")), 0);
	}
}

static void test_conf_type_name(void **state)
{
	char text[512], name[PROTO_NETWORK_MAX + 1];

	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":\"b\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":\"b\",\"type\":\"bridge\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":\"b\",\"type\":5}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":\"b\",\"type\":\"berth-cni2\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":\"\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":\"a b\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":\"../x\",\"type\":\"berth-cni\"}"),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, "{\"cniVersion\":\"1.1.0\",\"name\":7,\"type\":\"berth-cni\"}"),
			 CNI_ERR_INVALID_CONFIG);
	memset(name, 'n', sizeof(name));
	name[PROTO_NETWORK_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "{\"cniVersion\":\"1.1.0\",\"name\":\"%s\",\"type\":\"berth-cni\"}",
		 name);
	assert_int_equal(conf_code(CNI_ADD, text), 0);
	name[PROTO_NETWORK_MAX - 1] = 'n';
	name[PROTO_NETWORK_MAX] = '\0';
	snprintf(text, sizeof(text), "{\"cniVersion\":\"1.1.0\",\"name\":\"%s\",\"type\":\"berth-cni\"}",
		 name);
	assert_int_equal(conf_code(CNI_ADD, text), CNI_ERR_INVALID_CONFIG);
}

static void test_conf_mtu(void **state)
{
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":\"1500\"")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":-1")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":100000")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":65536")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":0")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":575")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":1500.0")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":null")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":576")), 0);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"mtu\":65535")), 0);
}

static void test_conf_veth_prefix(void **state)
{
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"\"")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"ABC\"")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"abcde\"")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"a-b\"")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"a/\"")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":4")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"abcd\"")), 0);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"vethPrefix\":\"0\"")), 0);
}

static void test_conf_agent_socket(void **state)
{
	char text[512], path[120];

	assert_int_equal(conf_code(CNI_ADD, CONF(",\"agentSocket\":\"run/berth.sock\"")),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"agentSocket\":\"\"")), CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_ADD, CONF(",\"agentSocket\":true")), CNI_ERR_INVALID_CONFIG);
	/* sun_path holds 107 bytes and a NUL. */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(text, sizeof(text), CONF(",\"agentSocket\":\"%s\""), path);
	assert_int_equal(conf_code(CNI_ADD, text), 0);
	path[107] = 'a';
	path[108] = '\0';
	snprintf(text, sizeof(text), CONF(",\"agentSocket\":\"%s\""), path);
	assert_int_equal(conf_code(CNI_ADD, text), CNI_ERR_INVALID_CONFIG);
}

/* Parse conf for cmd/ifname and return the prevResult address ("" when none). */
static void prev_ip(const char *text, const char *ifname, char out[INET_ADDRSTRLEN])
{
	struct cni_env env = mkenv(CNI_CHECK, ifname);
	struct cni_conf conf;
	struct cni_error e;

	if (cni_parse_conf(text, strlen(text), &env, &conf, &e) != 0)
		fail_msg("parse failed: %s (%s)", e.msg, e.details);
	assert_non_null(conf.prev_result);
	if (conf.has_prev_ip)
		inet_ntop(AF_INET, &conf.prev_ip, out, INET_ADDRSTRLEN);
	else
		out[0] = '\0';
	cni_conf_release(&conf);
	assert_null(conf.prev_result);
}

static void test_conf_prev_result(void **state)
{
	/* 1.0.0 shape: our own result with host veth first, the pod's interface second. */
	static const char v100[] =
		"{\"cniVersion\":\"1.0.0\",\"name\":\"berth\",\"type\":\"berth-cni\","
		"\"prevResult\":{\"cniVersion\":\"1.0.0\","
		"\"interfaces\":[{\"name\":\"brt0123\",\"mac\":\"02:00:00:00:00:01\"},"
		"{\"name\":\"eth0\",\"mac\":\"02:00:00:00:00:02\",\"sandbox\":\"/n\"},"
		"{\"name\":\"net1\",\"sandbox\":\"/n\"}],"
		"\"ips\":[{\"address\":\"fd00::5/128\",\"interface\":1},"
		"{\"address\":\"10.9.9.9/32\",\"interface\":0},"
		"{\"address\":\"10.1.1.0/24\",\"interface\":1},"
		"{\"address\":\"198.18.0.7/32\",\"gateway\":\"169.254.1.1\",\"interface\":1},"
		"{\"address\":\"198.18.0.8/32\",\"interface\":2}]}}";
	/* 0.4.0 shape: "version" on each address. */
	static const char v040[] =
		"{\"cniVersion\":\"0.4.0\",\"name\":\"berth\",\"type\":\"berth-cni\","
		"\"prevResult\":{\"cniVersion\":\"0.4.0\","
		"\"interfaces\":[{\"name\":\"brt0123\"},{\"name\":\"eth0\",\"sandbox\":\"/n\"}],"
		"\"ips\":[{\"version\":\"4\",\"address\":\"198.18.0.9/32\",\"interface\":1}]}}";
	/* No interface index: the address is taken as ours. */
	static const char noidx[] =
		"{\"cniVersion\":\"1.1.0\",\"name\":\"berth\",\"type\":\"berth-cni\","
		"\"prevResult\":{\"ips\":[{\"address\":\"198.18.0.10/32\"}]}}";
	static const char empty[] =
		"{\"cniVersion\":\"1.1.0\",\"name\":\"berth\",\"type\":\"berth-cni\",\"prevResult\":{}}";
	char ip[INET_ADDRSTRLEN];

	prev_ip(v100, "eth0", ip);
	assert_string_equal(ip, "198.18.0.7");
	prev_ip(v100, "net1", ip);
	assert_string_equal(ip, "198.18.0.8");
	prev_ip(v100, "eth9", ip);
	assert_string_equal(ip, "");
	prev_ip(v040, "eth0", ip);
	assert_string_equal(ip, "198.18.0.9");
	prev_ip(noidx, "eth0", ip);
	assert_string_equal(ip, "198.18.0.10");
	prev_ip(empty, "eth0", ip);
	assert_string_equal(ip, "");

	assert_int_equal(conf_code(CNI_CHECK, CONF(",\"prevResult\":[]")), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_CHECK, CONF(",\"prevResult\":\"x\"")), CNI_ERR_DECODE);
	assert_int_equal(conf_code(CNI_CHECK, CONF(",\"prevResult\":{\"ips\":{}}")), CNI_ERR_DECODE);
	/* Foreign shapes inside ips are skipped, not fatal. */
	assert_int_equal(conf_code(CNI_CHECK, CONF(",\"prevResult\":{\"ips\":[1,{},{\"address\":5}],"
						  "\"interfaces\":7}")),
			 0);
}

static void test_conf_valid_attachments(void **state)
{
	static const char gc[] = CONF(",\"cni.dev/valid-attachments\":["
				      "{\"containerID\":\"c1\",\"ifname\":\"eth0\"},"
				      "{\"containerID\":\"c2\",\"ifname\":\"net1\",\"extra\":1}]");
	struct cni_env env = mkenv(CNI_GC, "eth0");
	struct cni_conf conf;
	struct cni_error e;

	assert_int_equal(cni_parse_conf(gc, strlen(gc), &env, &conf, &e), 0);
	assert_int_equal(conf.n_valid, 2);
	assert_string_equal(conf.valid[0].container_id, "c1");
	assert_string_equal(conf.valid[0].ifname, "eth0");
	assert_string_equal(conf.valid[1].container_id, "c2");
	assert_string_equal(conf.valid[1].ifname, "net1");
	cni_conf_release(&conf);
	assert_null(conf.valid);
	assert_int_equal(conf.n_valid, 0);

	/* Only GC reads them. */
	env.cmd = CNI_ADD;
	assert_int_equal(cni_parse_conf(gc, strlen(gc), &env, &conf, &e), 0);
	assert_null(conf.valid);
	cni_conf_release(&conf);

	assert_int_equal(conf_code(CNI_GC, CONF(",\"cni.dev/valid-attachments\":[]")), 0);
	assert_int_equal(conf_code(CNI_GC, CONF(",\"cni.dev/valid-attachments\":{}")),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_GC, CONF(",\"cni.dev/valid-attachments\":[1]")),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_GC, CONF(",\"cni.dev/valid-attachments\":[{\"containerID\":\"c1\"}]")),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_GC, CONF(",\"cni.dev/valid-attachments\":[{\"ifname\":\"eth0\"}]")),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_GC, CONF(",\"cni.dev/valid-attachments\":"
					       "[{\"containerID\":\"c 1\",\"ifname\":\"eth0\"}]")),
			 CNI_ERR_INVALID_CONFIG);
	assert_int_equal(conf_code(CNI_GC, CONF(",\"cni.dev/valid-attachments\":"
					       "[{\"containerID\":\"c1\",\"ifname\":\"e/0\"}]")),
			 CNI_ERR_INVALID_CONFIG);
}

static void test_conf_valid_attachments_limit(void **state)
{
	json_t *doc = json_pack("{s:s,s:s,s:s}", "cniVersion", "1.1.0", "name", "b", "type", "berth-cni");
	json_t *list = json_array();
	char *text;

	for (int i = 0; i < PROTO_MAX_VALID; i++)
		json_array_append_new(list, json_pack("{s:s,s:s}", "containerID", "c", "ifname", "eth0"));
	json_object_set_new(doc, "cni.dev/valid-attachments", list);
	text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(conf_code(CNI_GC, text), 0);
	free(text);
	json_array_append_new(list, json_pack("{s:s,s:s}", "containerID", "c", "ifname", "eth0"));
	text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(conf_code(CNI_GC, text), CNI_ERR_INVALID_CONFIG);
	free(text);
	json_decref(doc);
}

static void test_conf_too_big(void **state)
{
	struct cni_env env = mkenv(CNI_ADD, "eth0");
	size_t n = CNI_MAX_CONFIG + 1;
	char *big = malloc(n);
	struct cni_conf conf;
	struct cni_error e;

	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, CONF(""), strlen(CONF("")));
	assert_int_equal(cni_parse_conf(big, n, &env, &conf, &e), -1);
	assert_int_equal(e.code, CNI_ERR_DECODE);
	/* The same bytes within the limit are fine (trailing blanks are allowed). */
	assert_int_equal(cni_parse_conf(big, n - 1, &env, &conf, &e), 0);
	cni_conf_release(&conf);
	free(big);
}

/* ---- results ---- */

static json_t *result_for(const char *version, const char *extra)
{
	struct cni_env env = mkenv(CNI_ADD, "eth0");
	struct dp_links links = {
		.host_ifindex = 7,
		.host_mac = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 },
		.pod_ifindex = 2,
		.pod_mac = { 0xee, 0xff, 0x0a, 0x0b, 0x0c, 0xdd },
	};
	char text[512];
	struct cni_conf conf;
	struct cni_error e;
	struct in_addr ip;
	json_t *res;

	snprintf(text, sizeof(text),
		 "{\"cniVersion\":\"%s\",\"name\":\"berth\",\"type\":\"berth-cni\"%s}", version, extra);
	assert_int_equal(cni_parse_conf(text, strlen(text), &env, &conf, &e), 0);
	inet_pton(AF_INET, "198.18.0.5", &ip);
	res = cni_add_result(&conf, &env, &links, ip);
	cni_conf_release(&conf);
	assert_non_null(res);
	return res;
}

static void assert_json_eq(json_t *got, json_t *want)
{
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);

		fail_msg("got  %s\nwant %s", g, w);
	}
}

/* sha1("default.nginx") = c440f455693b..., so the host veth is <prefix>c440f455693. */
static json_t *want_result(const char *version, const char *veth, int mtu, bool v4tag)
{
	json_t *w = json_pack(
		"{s:s,s:[{s:s,s:s},{s:s,s:s,s:s}],s:[{s:s,s:s,s:i}],s:[{s:s},{s:s,s:s}],s:{}}",
		"cniVersion", version, "interfaces", "name", veth, "mac", "02:00:00:00:00:01", "name",
		"eth0", "mac", "ee:ff:0a:0b:0c:dd", "sandbox", "/var/run/netns/pod1", "ips", "address",
		"198.18.0.5/32", "gateway", "169.254.1.1", "interface", 1, "routes", "dst",
		"169.254.1.1/32", "dst", "0.0.0.0/0", "gw", "169.254.1.1", "dns");

	assert_non_null(w);
	if (mtu) {
		json_object_set_new(json_array_get(json_object_get(w, "interfaces"), 0), "mtu",
				    json_integer(mtu));
		json_object_set_new(json_array_get(json_object_get(w, "interfaces"), 1), "mtu",
				    json_integer(mtu));
	}
	if (v4tag)
		json_object_set_new(json_array_get(json_object_get(w, "ips"), 0), "version",
				    json_string("4"));
	return w;
}

static void test_add_result_shapes(void **state)
{
	static const struct {
		const char *version, *extra, *veth;
		int mtu;
		bool v4tag;
	} cases[] = {
		{ "0.4.0", "", "brtc440f455693", 0, true },
		/* mtu on interfaces is a 1.1.0 field; older results do not carry it. */
		{ "0.4.0", ",\"mtu\":9001", "brtc440f455693", 0, true },
		{ "1.0.0", ",\"mtu\":9001", "brtc440f455693", 0, false },
		{ "1.1.0", "", "brtc440f455693", 0, false },
		{ "1.1.0", ",\"mtu\":9001,\"vethPrefix\":\"eni\"", "enic440f455693", 9001, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *got = result_for(cases[i].version, cases[i].extra);
		json_t *want = want_result(cases[i].version, cases[i].veth, cases[i].mtu, cases[i].v4tag);

		assert_json_eq(got, want);
		json_decref(got);
		json_decref(want);
	}
}

static void test_error_json(void **state)
{
	struct cni_error e;
	json_t *got, *want;

	cni_set_error(&e, CNI_ERR_INVALID_CONFIG, "mtu=5", "bad %s %d", "mtu", 5);
	assert_int_equal(e.code, 7);
	assert_string_equal(e.msg, "bad mtu 5");
	got = cni_error_json("1.0.0", &e);
	want = json_pack("{s:s,s:i,s:s,s:s}", "cniVersion", "1.0.0", "code", 7, "msg", "bad mtu 5",
			 "details", "mtu=5");
	assert_json_eq(got, want);
	json_decref(got);
	json_decref(want);

	/* No details key when there are none; the newest version when unknown. */
	cni_set_error(&e, CNI_ERR_TRY_AGAIN, NULL, "busy");
	got = cni_error_json(NULL, &e);
	want = json_pack("{s:s,s:i,s:s}", "cniVersion", "1.1.0", "code", 11, "msg", "busy");
	assert_json_eq(got, want);
	json_decref(got);
	got = cni_error_json("", &e);
	assert_json_eq(got, want);
	json_decref(got);
	json_decref(want);
}

static void test_set_error_truncates(void **state)
{
	char big[2000];
	struct cni_error e;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cni_set_error(&e, 5, big, "%s", big);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_int_equal(strlen(e.details), sizeof(e.details) - 1);
}

static void test_version_result(void **state)
{
	json_t *got = cni_version_result("0.4.0");
	json_t *want = json_pack("{s:s,s:[s,s,s]}", "cniVersion", "0.4.0", "supportedVersions",
				 "0.4.0", "1.0.0", "1.1.0");

	assert_json_eq(got, want);
	json_decref(got);
	json_decref(want);
}

/* ---- host veth names ---- */

static void test_veth_name(void **state)
{
	char out[IFNAMSIZ];

	/* printf %s default.nginx | sha1sum -> c440f455693b69cd... */
	assert_int_equal(veth_host_name("brt", "default", "nginx", out), 0);
	assert_string_equal(out, "brtc440f455693");
	assert_int_equal(veth_host_name("eni", "default", "nginx", out), 0);
	assert_string_equal(out, "enic440f455693");
	/* A 4-char prefix fills IFNAMSIZ-1 exactly. */
	assert_int_equal(veth_host_name("abcd", "default", "nginx", out), 0);
	assert_string_equal(out, "abcdc440f455693");
	assert_int_equal(strlen(out), IFNAMSIZ - 1);
	/* printf %s _.abc123 | sha1sum -> 55f28292677a... */
	assert_int_equal(veth_host_name("brt", "_", "abc123", out), 0);
	assert_string_equal(out, "brt55f28292677");
	/* Different pods, different names. */
	assert_int_equal(veth_host_name("brt", "default", "nginy", out), 0);
	assert_string_not_equal(out, "brtc440f455693");
}

static void test_veth_prefix(void **state)
{
	char out[IFNAMSIZ];

	assert_true(veth_prefix_valid("brt"));
	assert_true(veth_prefix_valid("a"));
	assert_true(veth_prefix_valid("a0z9"));
	assert_false(veth_prefix_valid(""));
	assert_false(veth_prefix_valid("abcde"));
	assert_false(veth_prefix_valid("Brt"));
	assert_false(veth_prefix_valid("b-t"));
	assert_false(veth_prefix_valid("b t"));
	assert_false(veth_prefix_valid("b/"));
	assert_int_equal(veth_host_name("", "default", "nginx", out), -EINVAL);
	assert_int_equal(veth_host_name("abcde", "default", "nginx", out), -EINVAL);
	assert_int_equal(veth_host_name("A", "default", "nginx", out), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_add_k8s),
		cmocka_unit_test(test_env_no_k8s_args),
		cmocka_unit_test(test_env_commands),
		cmocka_unit_test(test_env_missing),
		cmocka_unit_test(test_env_bad_values),
		cmocka_unit_test(test_env_limits_accepted),
		cmocka_unit_test(test_env_cni_args),
		cmocka_unit_test(test_conf_minimal),
		cmocka_unit_test(test_conf_all_fields),
		cmocka_unit_test(test_conf_decode_errors),
		cmocka_unit_test(test_conf_embedded_nul),
		cmocka_unit_test(test_conf_version),
		cmocka_unit_test(test_conf_type_name),
		cmocka_unit_test(test_conf_mtu),
		cmocka_unit_test(test_conf_veth_prefix),
		cmocka_unit_test(test_conf_agent_socket),
		cmocka_unit_test(test_conf_prev_result),
		cmocka_unit_test(test_conf_valid_attachments),
		cmocka_unit_test(test_conf_valid_attachments_limit),
		cmocka_unit_test(test_conf_too_big),
		cmocka_unit_test(test_add_result_shapes),
		cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_set_error_truncates),
		cmocka_unit_test(test_version_result),
		cmocka_unit_test(test_veth_name),
		cmocka_unit_test(test_veth_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
