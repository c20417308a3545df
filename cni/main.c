// SPDX-License-Identifier: Apache-2.0
/*
 * berth-cni: the CNI plugin. The runtime runs it once per ADD, DEL, CHECK,
 * VERSION, STATUS or GC with the network configuration on stdin; it gets the
 * pod's address from berth-agent and wires the pod (datapath.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni.h"
#include "datapath.h"
#include "proto.h"
#include "unixsock.h"

#define AGENT_TIMEOUT_MS 10000

struct invocation {
	struct cni_env env;
	struct cni_conf conf;
	char host_veth[IFNAMSIZ];
};

static const char *real_getenv(const char *name)
{
	return getenv(name);
}

static int read_stdin(char **out, size_t *len, struct cni_error *e)
{
	size_t cap = 4096, got = 0;
	char *buf = malloc(cap);

	if (!buf)
		goto oom;
	for (;;) {
		ssize_t n;

		if (got == cap) {
			char *b;

			if (cap > CNI_MAX_CONFIG) {
				free(buf);
				cni_set_error(e, CNI_ERR_DECODE, NULL,
					      "network configuration exceeds %u bytes", CNI_MAX_CONFIG);
				return -1;
			}
			b = realloc(buf, cap * 2);
			if (!b)
				goto oom;
			buf = b;
			cap *= 2;
		}
		n = read(STDIN_FILENO, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			cni_set_error(e, CNI_ERR_IO, strerror(errno), "cannot read stdin");
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	return 0;
oom:
	free(buf);
	cni_set_error(e, CNI_ERR_IO, NULL, "out of memory");
	return -1;
}

static void print_json(json_t *o)
{
	if (o)
		json_dumpf(o, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(o);
}

/*
 * One exchange with the agent. Returns 0 with *reply set, or -1 with *e set:
 * agent unreachable -> unreachable_code, agent refused -> the agent's code.
 */
static int ask_agent(const struct invocation *inv, const struct proto_request *req,
		     int unreachable_code, json_t **reply, struct cni_error *e)
{
	char *wire = proto_encode_request(req), *text = NULL, why[512];
	size_t len;
	int r;

	if (!wire) {
		cni_set_error(e, CNI_ERR_IO, NULL, "out of memory");
		return -1;
	}
	r = usock_exchange(inv->conf.agent_socket, wire, strlen(wire), PROTO_MAX_REPLY,
			   AGENT_TIMEOUT_MS, &text, &len);
	free(wire);
	if (r < 0) {
		cni_set_error(e, unreachable_code, strerror(-r), "berth-agent is not reachable at %s",
			      inv->conf.agent_socket);
		return -1;
	}
	r = proto_decode_reply(text, len, reply, why, sizeof(why));
	free(text);
	if (r < 0) {
		cni_set_error(e, CNI_ERR_IO, why, "berth-agent sent a malformed reply");
		return -1;
	}
	if (r > 0) {
		cni_set_error(e, r, NULL, "berth-agent: %s", why);
		return -1;
	}
	return 0;
}

static void fill_request(const struct invocation *inv, enum proto_op op, struct proto_request *req)
{
	*req = (struct proto_request){ .op = op };
	strcpy(req->network, inv->conf.name);
	strcpy(req->att.container_id, inv->env.container_id);
	strcpy(req->att.ifname, inv->env.ifname);
}

static void fill_pod(const struct invocation *inv, struct in_addr ip, uint32_t table,
		     struct dp_pod *pod)
{
	*pod = (struct dp_pod){
		.netns_path = inv->env.netns[0] ? inv->env.netns : NULL,
		.ip = ip,
		.mtu = inv->conf.mtu,
		.table = table,
	};
	strcpy(pod->ifname, inv->env.ifname);
	strcpy(pod->host_veth, inv->host_veth);
}

/* The pod as the agent's add/check reply describes it; pod borrows from held. */
static void fill_pod_held(const struct invocation *inv, const struct proto_add_reply *held,
			  struct dp_pod *pod)
{
	fill_pod(inv, held->ip, held->table, pod);
	pod->rule_to = held->rule_to;
	pod->n_rule_to = held->n_rule_to;
}

/* Give an address back after a failed ADD; the agent reclaims it later if this fails too. */
static void release_quietly(const struct invocation *inv)
{
	struct proto_request req;
	struct cni_error ignored;
	json_t *reply = NULL;

	fill_request(inv, OP_DEL, &req);
	if (ask_agent(inv, &req, CNI_ERR_TRY_AGAIN, &reply, &ignored) == 0)
		json_decref(reply);
}

static int cmd_add(struct invocation *inv, struct cni_error *e)
{
	struct proto_add_reply granted;
	struct proto_request req;
	struct dp_links links;
	struct dp_pod pod;
	json_t *reply = NULL;
	char why[512];

	fill_request(inv, OP_ADD, &req);
	strcpy(req.k8s_namespace, inv->env.k8s_namespace);
	strcpy(req.pod, inv->env.pod);
	strcpy(req.host_veth, inv->host_veth);
	/* The kubelet retries an ADD that says "try again later" (11). */
	if (ask_agent(inv, &req, CNI_ERR_TRY_AGAIN, &reply, e) < 0)
		return -1;
	if (proto_decode_add_reply(reply, &granted) < 0) {
		json_decref(reply);
		release_quietly(inv);
		cni_set_error(e, CNI_ERR_IO, NULL, "berth-agent sent a malformed address reply");
		return -1;
	}
	json_decref(reply);
	fill_pod_held(inv, &granted, &pod);
	if (dp_add(&pod, &links, why, sizeof(why)) < 0) {
		/* A repeated ADD must not take the address from the pod that has it. */
		if (!granted.existing)
			release_quietly(inv);
		cni_set_error(e, CNI_ERR_IO, why, "cannot wire the pod");
		return -1;
	}
	print_json(cni_add_result(&inv->conf, &inv->env, &links, granted.ip));
	return 0;
}

/*
 * Tear down first, then release: the agent adopts any pod route it finds
 * without an allocation, so the route must be gone before the address is.
 */
static int cmd_del(struct invocation *inv, struct cni_error *e)
{
	struct proto_request req;
	struct cni_error ignored;
	struct dp_pod pod;
	json_t *reply = NULL;
	struct in_addr ip = inv->conf.prev_ip;
	char why[512];

	fill_request(inv, OP_CHECK, &req);
	if (!inv->conf.has_prev_ip && ask_agent(inv, &req, CNI_ERR_TRY_AGAIN, &reply, &ignored) == 0) {
		struct proto_add_reply held;

		if (proto_decode_add_reply(reply, &held) == 0)
			ip = held.ip;
		json_decref(reply);
		reply = NULL;
	}
	fill_pod(inv, ip, 0, &pod);
	if (dp_del(&pod, why, sizeof(why)) < 0) {
		cni_set_error(e, CNI_ERR_IO, why, "cannot remove the pod's host routes");
		return -1;
	}
	fill_request(inv, OP_DEL, &req);
	req.has_ip = ip.s_addr != 0;
	req.ip = ip;
	/* An unreachable agent does not fail DEL: it reclaims the address itself later. */
	if (ask_agent(inv, &req, CNI_ERR_TRY_AGAIN, &reply, e) < 0 && e->code != CNI_ERR_TRY_AGAIN)
		return -1;
	json_decref(reply);
	return 0;
}

static int cmd_check(struct invocation *inv, struct cni_error *e)
{
	struct proto_add_reply held;
	struct proto_request req;
	struct dp_pod pod;
	json_t *reply = NULL;
	char why[512];

	if (!inv->conf.prev_result || !inv->conf.has_prev_ip) {
		cni_set_error(e, CNI_ERR_INVALID_CONFIG, NULL,
			      "CHECK needs a prevResult naming the address of %s", inv->env.ifname);
		return -1;
	}
	fill_request(inv, OP_CHECK, &req);
	req.has_ip = true;
	req.ip = inv->conf.prev_ip;
	if (ask_agent(inv, &req, CNI_ERR_TRY_AGAIN, &reply, e) < 0)
		return -1;
	if (proto_decode_add_reply(reply, &held) < 0) {
		json_decref(reply);
		cni_set_error(e, CNI_ERR_IO, NULL, "berth-agent sent a malformed reply");
		return -1;
	}
	json_decref(reply);
	fill_pod_held(inv, &held, &pod);
	if (dp_check(&pod, why, sizeof(why)) < 0) {
		cni_set_error(e, CNI_ERR_CHECK_FAILED, NULL, "%s", why);
		return -1;
	}
	return 0;
}

static int cmd_gc(struct invocation *inv, struct cni_error *e)
{
	struct proto_request req = { .op = OP_GC, .valid = inv->conf.valid, .n_valid = inv->conf.n_valid };
	json_t *reply = NULL;

	strcpy(req.network, inv->conf.name);
	if (ask_agent(inv, &req, CNI_ERR_TRY_AGAIN, &reply, e) < 0)
		return -1;
	json_decref(reply);
	return 0;
}

static int cmd_status(struct invocation *inv, struct cni_error *e)
{
	struct proto_request req = { .op = OP_READY };
	json_t *reply = NULL;

	if (ask_agent(inv, &req, CNI_ERR_NOT_AVAILABLE, &reply, e) < 0) {
		/* Whatever the agent said, the network is not available to new pods. */
		e->code = CNI_ERR_NOT_AVAILABLE;
		return -1;
	}
	json_decref(reply);
	return 0;
}

int main(void)
{
	struct invocation inv = { 0 };
	struct cni_error e = { 0 };
	char *input = NULL;
	size_t len = 0;
	int r = -1;

	if (cni_parse_env(real_getenv, &inv.env, &e) < 0)
		goto out;
	if (read_stdin(&input, &len, &e) < 0)
		goto out;
	if (inv.env.cmd == CNI_VERSION) {
		/* VERSION answers whatever the config says, even an unsupported version. */
		json_t *root = json_loadb(input, len, 0, NULL);
		const char *v = json_string_value(json_object_get(root, "cniVersion"));

		print_json(cni_version_result(v && strlen(v) < 16 ? v : "1.1.0"));
		json_decref(root);
		r = 0;
		goto out;
	}
	if (cni_parse_conf(input, len, &inv.env, &inv.conf, &e) < 0)
		goto out;
	veth_host_name(inv.conf.veth_prefix, inv.env.k8s_namespace, inv.env.pod, inv.host_veth);
	switch (inv.env.cmd) {
	case CNI_ADD: r = cmd_add(&inv, &e); break;
	case CNI_DEL: r = cmd_del(&inv, &e); break;
	case CNI_CHECK: r = cmd_check(&inv, &e); break;
	case CNI_GC: r = cmd_gc(&inv, &e); break;
	case CNI_STATUS: r = cmd_status(&inv, &e); break;
	case CNI_VERSION: break;
	}
out:
	if (r < 0)
		print_json(cni_error_json(inv.conf.version, &e));
	cni_conf_release(&inv.conf);
	free(input);
	return r < 0 ? 1 : 0;
}
