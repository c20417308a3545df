// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "proto.h"

static const char *const op_names[] = {
	[OP_ADD] = "add",   [OP_DEL] = "del",       [OP_CHECK] = "check", [OP_GC] = "gc",
	[OP_READY] = "ready", [OP_STATUS] = "status", [OP_PODS] = "pods", [OP_SERVICES] = "services",
};

bool proto_op_is_query(enum proto_op op)
{
	return op == OP_READY || op == OP_STATUS || op == OP_PODS || op == OP_SERVICES;
}

bool proto_valid_ident(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool proto_valid_ifname(const char *s)
{
	size_t n = strnlen(s, IFNAMSIZ);

	if (n == 0 || n >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* Kubernetes names: DNS labels/subdomains; we only need them to be safe to log and hash. */
static bool valid_k8s_name(const char *s, size_t cap)
{
	return proto_valid_ident(s, cap);
}

static int decode_attachment(const json_t *obj, struct proto_attachment *att, char *err,
			     size_t errlen)
{
	if (jx_string(obj, "containerID", att->container_id, sizeof(att->container_id)) < 0 ||
	    !proto_valid_ident(att->container_id, sizeof(att->container_id))) {
		snprintf(err, errlen, "containerID missing or invalid");
		return -EINVAL;
	}
	if (jx_string(obj, "ifname", att->ifname, sizeof(att->ifname)) < 0 ||
	    !proto_valid_ifname(att->ifname)) {
		snprintf(err, errlen, "ifname missing or invalid");
		return -EINVAL;
	}
	return 0;
}

static int decode_valid_list(const json_t *root, struct proto_request *req, char *err,
			     size_t errlen)
{
	json_t *list = json_object_get(root, "valid"), *item;
	size_t i;

	if (!json_is_array(list)) {
		snprintf(err, errlen, "gc: \"valid\" must be an array");
		return -EINVAL;
	}
	if (json_array_size(list) > PROTO_MAX_VALID) {
		snprintf(err, errlen, "gc: more than %u valid attachments", PROTO_MAX_VALID);
		return -EINVAL;
	}
	req->n_valid = json_array_size(list);
	req->valid = calloc(req->n_valid ? req->n_valid : 1, sizeof(*req->valid));
	if (!req->valid)
		return -ENOMEM;
	json_array_foreach(list, i, item) {
		if (!json_is_object(item)) {
			snprintf(err, errlen, "gc: valid[%zu] is not an object", i);
			return -EINVAL;
		}
		if (decode_attachment(item, &req->valid[i], err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

static int decode_body(const json_t *root, struct proto_request *req, char *err, size_t errlen)
{
	const char *op;
	size_t i;
	int r;

	if (jx_string_ref(root, "op", 16, &op) < 0) {
		snprintf(err, errlen, "\"op\" missing or not a string");
		return -EINVAL;
	}
	for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strcmp(op, op_names[i]) == 0)
			break;
	if (i == sizeof(op_names) / sizeof(op_names[0])) {
		snprintf(err, errlen, "unknown op \"%s\"", op);
		return -EINVAL;
	}
	req->op = (enum proto_op)i;
	if (proto_op_is_query(req->op))
		return 0;

	if (jx_string(root, "network", req->network, sizeof(req->network)) < 0 ||
	    !proto_valid_ident(req->network, sizeof(req->network))) {
		snprintf(err, errlen, "network missing or invalid");
		return -EINVAL;
	}
	if (req->op == OP_GC)
		return decode_valid_list(root, req, err, errlen);

	r = decode_attachment(root, &req->att, err, errlen);
	if (r < 0)
		return r;
	r = jx_ipv4(root, "ip", &req->ip);
	if (r == -EINVAL) {
		snprintf(err, errlen, "ip is not an IPv4 address");
		return r;
	}
	req->has_ip = r == 0;
	if (req->op != OP_ADD)
		return 0;

	if (jx_string(root, "namespace", req->k8s_namespace, sizeof(req->k8s_namespace)) < 0 ||
	    !valid_k8s_name(req->k8s_namespace, sizeof(req->k8s_namespace)) ||
	    jx_string(root, "pod", req->pod, sizeof(req->pod)) < 0 ||
	    !valid_k8s_name(req->pod, sizeof(req->pod))) {
		snprintf(err, errlen, "add: namespace/pod missing or invalid");
		return -EINVAL;
	}
	if (jx_string(root, "hostVeth", req->host_veth, sizeof(req->host_veth)) < 0 ||
	    !proto_valid_ifname(req->host_veth)) {
		snprintf(err, errlen, "add: hostVeth missing or invalid");
		return -EINVAL;
	}
	return 0;
}

int proto_decode_request(const char *buf, size_t len, struct proto_request *req, char *err,
			 size_t errlen)
{
	json_t *root;
	int r;

	memset(req, 0, sizeof(*req));
	root = jx_loadb_object(buf, len, PROTO_MAX_REQUEST, err, errlen);
	if (!root)
		return len > PROTO_MAX_REQUEST ? -EMSGSIZE : -EINVAL;
	r = decode_body(root, req, err, errlen);
	json_decref(root);
	if (r < 0)
		proto_request_release(req);
	return r;
}

void proto_request_release(struct proto_request *req)
{
	if (!req)
		return;
	free(req->valid);
	req->valid = NULL;
	req->n_valid = 0;
}

char *proto_encode_request(const struct proto_request *req)
{
	char ip[INET_ADDRSTRLEN];
	json_t *o = json_object(), *list;
	char *s = NULL;

	if (!o)
		return NULL;
	json_object_set_new(o, "op", json_string(op_names[req->op]));
	if (proto_op_is_query(req->op))
		goto out_dump;
	json_object_set_new(o, "network", json_string(req->network));
	if (req->op == OP_GC) {
		list = json_array();
		for (size_t i = 0; i < req->n_valid; i++)
			json_array_append_new(list, json_pack("{s:s,s:s}", "containerID",
							      req->valid[i].container_id, "ifname",
							      req->valid[i].ifname));
		json_object_set_new(o, "valid", list);
		goto out_dump;
	}
	json_object_set_new(o, "containerID", json_string(req->att.container_id));
	json_object_set_new(o, "ifname", json_string(req->att.ifname));
	if (req->has_ip && inet_ntop(AF_INET, &req->ip, ip, sizeof(ip)))
		json_object_set_new(o, "ip", json_string(ip));
	if (req->op == OP_ADD) {
		json_object_set_new(o, "namespace", json_string(req->k8s_namespace));
		json_object_set_new(o, "pod", json_string(req->pod));
		json_object_set_new(o, "hostVeth", json_string(req->host_veth));
	}
out_dump:
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

json_t *proto_error_reply(int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b,s:i,s:s}", "ok", 0, "code", code, "error", msg);
}

int proto_decode_reply(const char *buf, size_t len, json_t **out, char *err, size_t errlen)
{
	json_t *root = jx_loadb_object(buf, len, PROTO_MAX_STATUS_REPLY, err, errlen);
	uint64_t code;
	const char *msg;
	int ok;

	if (!root)
		return -EINVAL;
	if (jx_bool(root, "ok", &ok) < 0) {
		snprintf(err, errlen, "agent reply has no \"ok\"");
		json_decref(root);
		return -EINVAL;
	}
	if (!ok) {
		if (jx_uint(root, "code", 999, &code) < 0 || code == 0)
			code = 999;
		if (jx_string_ref(root, "error", 1024, &msg) < 0)
			msg = "agent gave no reason";
		snprintf(err, errlen, "%s", msg);
		json_decref(root);
		return (int)code;
	}
	*out = root;
	return 0;
}

/*
 * "a.b.c.d/n" with its host bits clear, as the agent sends it. Not /0: every
 * destination is the unrestricted rule, which an empty list says (and the
 * kernel takes a rule to /0 for a duplicate of the pod's other rules).
 */
static int decode_cidr(const json_t *item, struct proto_cidr *out)
{
	const char *s = json_string_value(item);
	unsigned int len;

	if (!s || json_string_length(item) != strlen(s) ||
	    parse_ipv4_cidr(s, &out->addr, &len, 0) < 0 || len == 0)
		return -EINVAL;
	out->len = (uint8_t)len;
	return 0;
}

/* Optional "ruleTo": an array of at most PROTO_MAX_RULE_TO CIDRs, only with an iface. */
static int decode_rule_to(const json_t *reply, struct proto_add_reply *out)
{
	const json_t *list = json_object_get(reply, "ruleTo"), *item;
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > PROTO_MAX_RULE_TO)
		return -EINVAL;
	if (json_array_size(list) && !out->iface[0])
		return -EINVAL; /* restricts a rule that does not exist */
	json_array_foreach(list, i, item)
		if (decode_cidr(item, &out->rule_to[i]) < 0)
			return -EINVAL;
	out->n_rule_to = json_array_size(list);
	return 0;
}

int proto_reply_set_rule_to(json_t *reply, const struct proto_cidr *to, size_t n)
{
	char ip[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN + 4];
	json_t *list;

	if (n > PROTO_MAX_RULE_TO)
		return -EINVAL;
	if (!n)
		return 0;
	list = json_array();
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		inet_ntop(AF_INET, &to[i].addr, ip, sizeof(ip));
		snprintf(cidr, sizeof(cidr), "%s/%u", ip, to[i].len);
		if (json_array_append_new(list, json_string(cidr)) < 0) {
			json_decref(list);
			return -ENOMEM;
		}
	}
	return json_object_set_new(reply, "ruleTo", list) < 0 ? -ENOMEM : 0;
}

int proto_decode_add_reply(const json_t *reply, struct proto_add_reply *out)
{
	uint64_t table = 0;
	int r, existing;

	memset(out, 0, sizeof(*out));
	if (jx_ipv4(reply, "ip", &out->ip) < 0)
		return -EINVAL;
	r = jx_string(reply, "iface", out->iface, sizeof(out->iface));
	if (r == -EINVAL || (r == 0 && !proto_valid_ifname(out->iface)))
		return -EINVAL;
	r = jx_uint(reply, "table", UINT32_MAX, &table);
	if (r == -EINVAL || (out->iface[0] && (r < 0 || table == 0)))
		return -EINVAL;
	out->table = (uint32_t)table;
	r = jx_bool(reply, "existing", &existing);
	if (r == -EINVAL)
		return -EINVAL;
	out->existing = r == 0 && existing;
	return decode_rule_to(reply, out);
}
