// SPDX-License-Identifier: Apache-2.0
/* The agent socket protocol: request decoding/encoding and reply decoding. */
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

#include "proto.h"

static int decode(const char *text, struct proto_request *req, char *err, size_t errlen)
{
	err[0] = '\0';
	return proto_decode_request(text, strlen(text), req, err, errlen);
}

/* Expect text to be refused with -EINVAL and an error mentioning want. */
static void refused(const char *text, const char *want)
{
	struct proto_request req;
	char err[256];
	int r = decode(text, &req, err, sizeof(err));

	if (r != -EINVAL)
		fail_msg("%s: got %d", text, r);
	if (want && !strstr(err, want))
		fail_msg("%s: err \"%s\" lacks \"%s\"", text, err, want);
	assert_true(err[0] != '\0');
	/* Nothing left allocated on failure. */
	assert_null(req.valid);
	assert_int_equal(req.n_valid, 0);
}

static void assert_ip(struct in_addr a, const char *want)
{
	char buf[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

#define ADD_REQ(rest)                                                                       \
	"{\"op\":\"add\",\"network\":\"berth\",\"containerID\":\"abc123\",\"ifname\":\"eth0\"," \
	"\"namespace\":\"default\",\"pod\":\"nginx\",\"hostVeth\":\"brtc440f455693\"" rest "}"

/* ---- each op ---- */

static void test_decode_add(void **state)
{
	struct proto_request req;
	char err[256];

	assert_int_equal(decode(ADD_REQ(""), &req, err, sizeof(err)), 0);
	assert_int_equal(req.op, OP_ADD);
	assert_string_equal(req.network, "berth");
	assert_string_equal(req.att.container_id, "abc123");
	assert_string_equal(req.att.ifname, "eth0");
	assert_string_equal(req.k8s_namespace, "default");
	assert_string_equal(req.pod, "nginx");
	assert_string_equal(req.host_veth, "brtc440f455693");
	assert_false(req.has_ip);
	assert_null(req.valid);
	proto_request_release(&req);

	assert_int_equal(decode(ADD_REQ(",\"ip\":\"198.18.0.5\""), &req, err, sizeof(err)), 0);
	assert_true(req.has_ip);
	assert_ip(req.ip, "198.18.0.5");
	proto_request_release(&req);
}

static void test_decode_del_check(void **state)
{
	struct proto_request req;
	char err[256];

	assert_int_equal(decode("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\"}",
				&req, err, sizeof(err)),
			 0);
	assert_int_equal(req.op, OP_DEL);
	assert_string_equal(req.network, "n");
	assert_string_equal(req.att.container_id, "c");
	assert_string_equal(req.att.ifname, "eth0");
	assert_false(req.has_ip);
	/* DEL and CHECK do not need a pod identity. */
	assert_string_equal(req.pod, "");
	proto_request_release(&req);

	assert_int_equal(decode("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
				"\"ip\":\"10.1.2.3\"}",
				&req, err, sizeof(err)),
			 0);
	assert_true(req.has_ip);
	assert_ip(req.ip, "10.1.2.3");
	proto_request_release(&req);

	assert_int_equal(decode("{\"op\":\"check\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\"}",
				&req, err, sizeof(err)),
			 0);
	assert_int_equal(req.op, OP_CHECK);
	proto_request_release(&req);
}

static void test_decode_gc(void **state)
{
	struct proto_request req;
	char err[256];

	assert_int_equal(decode("{\"op\":\"gc\",\"network\":\"n\",\"valid\":["
				"{\"containerID\":\"c1\",\"ifname\":\"eth0\"},"
				"{\"containerID\":\"c2\",\"ifname\":\"net1\"}]}",
				&req, err, sizeof(err)),
			 0);
	assert_int_equal(req.op, OP_GC);
	assert_string_equal(req.network, "n");
	assert_int_equal(req.n_valid, 2);
	assert_non_null(req.valid);
	assert_string_equal(req.valid[0].container_id, "c1");
	assert_string_equal(req.valid[0].ifname, "eth0");
	assert_string_equal(req.valid[1].container_id, "c2");
	assert_string_equal(req.valid[1].ifname, "net1");
	proto_request_release(&req);
	assert_null(req.valid);
	assert_int_equal(req.n_valid, 0);
	proto_request_release(&req); /* idempotent */
	proto_request_release(NULL);

	assert_int_equal(decode("{\"op\":\"gc\",\"network\":\"n\",\"valid\":[]}", &req, err, sizeof(err)), 0);
	assert_int_equal(req.n_valid, 0);
	proto_request_release(&req);
}

static void test_decode_simple_ops(void **state)
{
	static const struct {
		const char *text;
		enum proto_op op;
	} cases[] = {
		{ "{\"op\":\"ready\"}", OP_READY },
		{ "{\"op\":\"status\"}", OP_STATUS },
		{ "{\"op\":\"pods\"}", OP_PODS },
		/* Extra fields on field-less ops are ignored. */
		{ "{\"op\":\"ready\",\"network\":5}", OP_READY },
	};
	struct proto_request req;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(decode(cases[i].text, &req, err, sizeof(err)), 0);
		assert_int_equal(req.op, cases[i].op);
		proto_request_release(&req);
	}
}

/* ---- malformed requests ---- */

static void test_decode_op_errors(void **state)
{
	refused("{}", "\"op\"");
	refused("{\"op\":5}", "\"op\"");
	refused("{\"op\":null}", "\"op\"");
	refused("{\"op\":\"ADD\"}", "unknown op");
	refused("{\"op\":\"frobnicate\"}", "unknown op");
	refused("{\"op\":\"\"}", "unknown op");
	refused("{\"op\":\"add-and-a-very-long-name\"}", "\"op\"");
	refused("{\"op\":\"add\\u0000x\"}", NULL);
}

static void test_decode_missing_fields(void **state)
{
	refused("{\"op\":\"add\",\"containerID\":\"c\",\"ifname\":\"eth0\",\"namespace\":\"d\","
		"\"pod\":\"p\",\"hostVeth\":\"v\"}",
		"network");
	refused("{\"op\":\"add\",\"network\":\"n\",\"ifname\":\"eth0\",\"namespace\":\"d\","
		"\"pod\":\"p\",\"hostVeth\":\"v\"}",
		"containerID");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"namespace\":\"d\","
		"\"pod\":\"p\",\"hostVeth\":\"v\"}",
		"ifname");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"pod\":\"p\",\"hostVeth\":\"v\"}",
		"namespace/pod");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"namespace\":\"d\",\"hostVeth\":\"v\"}",
		"namespace/pod");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"namespace\":\"d\",\"pod\":\"p\"}",
		"hostVeth");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\"}", "ifname");
	refused("{\"op\":\"check\",\"network\":\"n\",\"ifname\":\"eth0\"}", "containerID");
	refused("{\"op\":\"gc\",\"network\":\"n\"}", "valid");
	refused("{\"op\":\"gc\",\"valid\":[]}", "network");
	refused("{\"op\":\"gc\",\"network\":\"n\",\"valid\":[{\"containerID\":\"c\"}]}", "ifname");
	refused("{\"op\":\"gc\",\"network\":\"n\",\"valid\":[{\"ifname\":\"eth0\"}]}", "containerID");
}

static void test_decode_wrong_types(void **state)
{
	refused(ADD_REQ(",\"ip\":5"), "ip");
	refused(ADD_REQ(",\"ip\":\"10.0.0.1/32\""), "ip");
	refused(ADD_REQ(",\"ip\":\"10.0.0.256\""), "ip");
	refused(ADD_REQ(",\"ip\":\"fd00::1\""), "ip");
	refused(ADD_REQ(",\"ip\":null"), "ip");
	refused("{\"op\":\"del\",\"network\":5,\"containerID\":\"c\",\"ifname\":\"eth0\"}", "network");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":[],\"ifname\":\"eth0\"}",
		"containerID");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":true}", "ifname");
	refused("{\"op\":\"gc\",\"network\":\"n\",\"valid\":{}}", "valid");
	refused("{\"op\":\"gc\",\"network\":\"n\",\"valid\":\"x\"}", "valid");
	refused("{\"op\":\"gc\",\"network\":\"n\",\"valid\":[{\"containerID\":\"c\",\"ifname\":\"eth0\"},7]}",
		"valid[1]");
	refused("{\"op\":\"gc\",\"network\":\"n\",\"valid\":[[]]}", "valid[0]");
}

static void test_decode_bad_identifiers(void **state)
{
	char text[1024], big[300];

	refused("{\"op\":\"del\",\"network\":\"a b\",\"containerID\":\"c\",\"ifname\":\"eth0\"}", "network");
	refused("{\"op\":\"del\",\"network\":\"\",\"containerID\":\"c\",\"ifname\":\"eth0\"}", "network");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"../x\",\"ifname\":\"eth0\"}",
		"containerID");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\\n\",\"ifname\":\"eth0\"}",
		"containerID");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"a/b\"}", "ifname");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"..\"}", "ifname");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"\"}", "ifname");
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"sixteen-chars-xx\"}",
		"ifname");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"namespace\":\"d d\",\"pod\":\"p\",\"hostVeth\":\"v\"}",
		"namespace/pod");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"namespace\":\"\",\"pod\":\"p\",\"hostVeth\":\"v\"}",
		"namespace/pod");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"namespace\":\"d\",\"pod\":\"p;rm\",\"hostVeth\":\"v\"}",
		"namespace/pod");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"namespace\":\"d\",\"pod\":\"p\",\"hostVeth\":\"v:1\"}",
		"hostVeth");
	refused("{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		"\"namespace\":\"d\",\"pod\":\"p\",\"hostVeth\":\"sixteen-chars-xx\"}",
		"hostVeth");
	/* A NUL inside a string would silently truncate it for C consumers. */
	refused("{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\\u0000d\",\"ifname\":\"eth0\"}",
		NULL);

	/* Length limits: cap-1 bytes pass, cap bytes do not. */
	memset(big, 'c', sizeof(big));
	big[PROTO_CONTAINER_MAX - 1] = '\0';
	snprintf(text, sizeof(text),
		 "{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"%s\",\"ifname\":\"eth0\"}", big);
	{
		struct proto_request req;
		char err[256];

		assert_int_equal(decode(text, &req, err, sizeof(err)), 0);
		assert_int_equal(strlen(req.att.container_id), PROTO_CONTAINER_MAX - 1);
		proto_request_release(&req);
	}
	big[PROTO_CONTAINER_MAX - 1] = 'c';
	big[PROTO_CONTAINER_MAX] = '\0';
	snprintf(text, sizeof(text),
		 "{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"%s\",\"ifname\":\"eth0\"}", big);
	refused(text, "containerID");
	big[PROTO_NETWORK_MAX] = '\0';
	snprintf(text, sizeof(text),
		 "{\"op\":\"del\",\"network\":\"%s\",\"containerID\":\"c\",\"ifname\":\"eth0\"}", big);
	refused(text, "network");
	big[PROTO_K8S_NS_MAX] = '\0';
	snprintf(text, sizeof(text),
		 "{\"op\":\"add\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\","
		 "\"namespace\":\"%s\",\"pod\":\"p\",\"hostVeth\":\"v\"}",
		 big);
	refused(text, "namespace/pod");
}

static void test_decode_syntax(void **state)
{
	static const char nul[] = "{\"op\":\"ready\"}\0";
	static const char nul_inside[] = "{\"op\":\0\"ready\"}";
	struct proto_request req;
	char err[256];

	refused("", NULL);
	refused("not json", "invalid JSON");
	refused("[]", "not an object");
	refused("\"ready\"", NULL); /* jansson wants an object or array at the top */
	refused("{\"op\":\"ready\"} {}", "invalid JSON");
	refused("{\"op\":\"ready\"}x", "invalid JSON");
	refused("{\"op\":\"ready\"", "invalid JSON");
	/* Duplicated keys are ambiguous: which network did the client mean? */
	refused("{\"op\":\"del\",\"network\":\"a\",\"network\":\"b\",\"containerID\":\"c\",\"ifname\":\"e\"}",
		"duplicate");
	refused("{\"op\":\"ready\",\"op\":\"ready\"}", "duplicate");
	/* Raw NUL bytes, trailing or inside. */
	assert_int_equal(proto_decode_request(nul, sizeof(nul) - 1, &req, err, sizeof(err)), -EINVAL);
	assert_int_equal(proto_decode_request(nul_inside, sizeof(nul_inside) - 1, &req, err,
					      sizeof(err)),
			 -EINVAL);
	/* Leading and trailing whitespace is fine. */
	assert_int_equal(decode(" \n{\"op\":\"ready\"}\n\t ", &req, err, sizeof(err)), 0);
	proto_request_release(&req);
}

static void test_decode_size_limit(void **state)
{
	static const char body[] = "{\"op\":\"ready\"}";
	char *buf = malloc(PROTO_MAX_REQUEST + 1);
	struct proto_request req;
	char err[256] = "";

	assert_non_null(buf);
	memset(buf, ' ', PROTO_MAX_REQUEST + 1);
	memcpy(buf, body, strlen(body));
	/* Exactly the limit decodes ... */
	assert_int_equal(proto_decode_request(buf, PROTO_MAX_REQUEST, &req, err, sizeof(err)), 0);
	assert_int_equal(req.op, OP_READY);
	proto_request_release(&req);
	/* ... one more byte is refused before parsing. */
	assert_int_equal(proto_decode_request(buf, PROTO_MAX_REQUEST + 1, &req, err, sizeof(err)),
			 -EMSGSIZE);
	assert_non_null(strstr(err, "limit"));
	free(buf);
}

static char *gc_request(size_t n)
{
	json_t *list = json_array(), *o;
	char *s;

	for (size_t i = 0; i < n; i++) {
		char cid[32];

		snprintf(cid, sizeof(cid), "c%zu", i);
		json_array_append_new(list, json_pack("{s:s,s:s}", "containerID", cid, "ifname", "eth0"));
	}
	o = json_pack("{s:s,s:s,s:o}", "op", "gc", "network", "n", "valid", list);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_non_null(s);
	return s;
}

static void test_decode_valid_limit(void **state)
{
	struct proto_request req;
	char err[256];
	char *s = gc_request(PROTO_MAX_VALID);

	assert_int_equal(decode(s, &req, err, sizeof(err)), 0);
	assert_int_equal(req.n_valid, PROTO_MAX_VALID);
	assert_string_equal(req.valid[PROTO_MAX_VALID - 1].container_id, "c16383");
	proto_request_release(&req);
	free(s);
	s = gc_request(PROTO_MAX_VALID + 1);
	refused(s, "more than");
	free(s);
}

/* ---- encode/decode round trip ---- */

static void roundtrip(const struct proto_request *in)
{
	struct proto_request out;
	char err[256] = "";
	char *s = proto_encode_request(in);

	assert_non_null(s);
	if (decode(s, &out, err, sizeof(err)) != 0)
		fail_msg("%s: %s", s, err);
	assert_int_equal(out.op, in->op);
	assert_string_equal(out.network, in->network);
	assert_string_equal(out.att.container_id, in->att.container_id);
	assert_string_equal(out.att.ifname, in->att.ifname);
	assert_string_equal(out.k8s_namespace, in->k8s_namespace);
	assert_string_equal(out.pod, in->pod);
	assert_string_equal(out.host_veth, in->host_veth);
	assert_int_equal(out.has_ip, in->has_ip);
	if (in->has_ip)
		assert_int_equal(out.ip.s_addr, in->ip.s_addr);
	assert_int_equal(out.n_valid, in->n_valid);
	for (size_t i = 0; i < in->n_valid; i++) {
		assert_string_equal(out.valid[i].container_id, in->valid[i].container_id);
		assert_string_equal(out.valid[i].ifname, in->valid[i].ifname);
	}
	proto_request_release(&out);
	free(s);
}

static void test_roundtrip(void **state)
{
	struct proto_attachment valid[3] = {
		{ .container_id = "c1", .ifname = "eth0" },
		{ .container_id = "c2", .ifname = "eth0" },
		{ .container_id = "c1", .ifname = "net1" },
	};
	struct proto_request add = {
		.op = OP_ADD,
		.network = "berth",
		.att = { .container_id = "0123456789abcdef", .ifname = "eth0" },
		.k8s_namespace = "kube-system",
		.pod = "coredns-5d78c9869d-abcde",
		.host_veth = "brt0123456789a",
	};
	struct proto_request del = {
		.op = OP_DEL, .network = "n.1", .att = { .container_id = "c_1", .ifname = "net1" },
	};
	struct proto_request gc = { .op = OP_GC, .network = "n", .valid = valid, .n_valid = 3 };
	struct proto_request gc0 = { .op = OP_GC, .network = "n" };

	roundtrip(&add);
	inet_pton(AF_INET, "198.18.3.4", &add.ip);
	add.has_ip = true;
	roundtrip(&add);
	roundtrip(&del);
	inet_pton(AF_INET, "10.0.0.1", &del.ip);
	del.has_ip = true;
	roundtrip(&del);
	del.op = OP_CHECK;
	roundtrip(&del);
	roundtrip(&gc);
	roundtrip(&gc0);
	for (int op = OP_READY; op <= OP_PODS; op++) {
		struct proto_request r = { .op = (enum proto_op)op };

		roundtrip(&r);
	}
}

static void test_encode_exact(void **state)
{
	struct proto_request del = {
		.op = OP_DEL, .network = "n", .att = { .container_id = "c", .ifname = "eth0" },
	};
	struct proto_request ready = { .op = OP_READY, .network = "ignored" };
	char *s;

	s = proto_encode_request(&del);
	assert_string_equal(s, "{\"op\":\"del\",\"network\":\"n\",\"containerID\":\"c\",\"ifname\":\"eth0\"}");
	free(s);
	s = proto_encode_request(&ready);
	assert_string_equal(s, "{\"op\":\"ready\"}");
	free(s);
}

/* ---- replies ---- */

static int reply(const char *text, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	err[0] = '\0';
	return proto_decode_reply(text, strlen(text), out, err, errlen);
}

static void test_decode_reply(void **state)
{
	json_t *out;
	char err[256];

	assert_int_equal(reply("{\"ok\":true,\"ip\":\"10.0.0.1\"}", &out, err, sizeof(err)), 0);
	assert_non_null(out);
	assert_string_equal(json_string_value(json_object_get(out, "ip")), "10.0.0.1");
	json_decref(out);

	/* Refusals carry the agent's CNI code and message. */
	assert_int_equal(reply("{\"ok\":false,\"code\":7,\"error\":\"bad network\"}", &out, err,
			       sizeof(err)),
			 7);
	assert_null(out);
	assert_string_equal(err, "bad network");
	assert_int_equal(reply("{\"ok\":false,\"code\":11,\"error\":\"x\"}", &out, err, sizeof(err)),
			 11);
	/* A refusal without a usable code is still a refusal (999). */
	assert_int_equal(reply("{\"ok\":false}", &out, err, sizeof(err)), 999);
	assert_string_equal(err, "agent gave no reason");
	assert_int_equal(reply("{\"ok\":false,\"code\":0,\"error\":\"e\"}", &out, err, sizeof(err)),
			 999);
	assert_int_equal(reply("{\"ok\":false,\"code\":1000,\"error\":\"e\"}", &out, err, sizeof(err)),
			 999);
	assert_int_equal(reply("{\"ok\":false,\"code\":-3,\"error\":\"e\"}", &out, err, sizeof(err)),
			 999);
	assert_int_equal(reply("{\"ok\":false,\"code\":\"7\",\"error\":\"e\"}", &out, err, sizeof(err)),
			 999);
	assert_int_equal(reply("{\"ok\":false,\"code\":7,\"error\":5}", &out, err, sizeof(err)), 7);
	assert_string_equal(err, "agent gave no reason");
	assert_null(out);
}

static void test_decode_reply_malformed(void **state)
{
	static const char *const bad[] = {
		"", "nope", "[]", "{}", "{\"ok\":1}", "{\"ok\":\"true\"}", "{\"ok\":null}",
		"{\"ok\":true} x", "{\"ok\":true,\"ok\":false}", "{\"ok\":true",
	};
	json_t *out;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (reply(bad[i], &out, err, sizeof(err)) != -EINVAL)
			fail_msg("reply \"%s\" accepted", bad[i]);
		assert_null(out);
		assert_true(err[0] != '\0');
	}
}

static int add_reply(const char *text, struct proto_add_reply *out)
{
	json_t *o = json_loads(text, 0, NULL);
	int r;

	assert_non_null(o);
	r = proto_decode_add_reply(o, out);
	json_decref(o);
	return r;
}

static void test_decode_add_reply(void **state)
{
	struct proto_add_reply ar;

	assert_int_equal(add_reply("{\"ok\":true,\"ip\":\"198.18.0.5\"}", &ar), 0);
	assert_ip(ar.ip, "198.18.0.5");
	assert_string_equal(ar.iface, "");
	assert_int_equal(ar.table, 0);

	assert_int_equal(add_reply("{\"ok\":true,\"ip\":\"198.18.0.5\",\"iface\":\"ens6\",\"table\":101}",
				   &ar),
			 0);
	assert_string_equal(ar.iface, "ens6");
	assert_int_equal(ar.table, 101);
	assert_int_equal(add_reply("{\"ip\":\"1.2.3.4\",\"iface\":\"ens6\",\"table\":4294967295}", &ar),
			 0);
	assert_int_equal(ar.table, 4294967295u);

	/* Policy routing needs both halves. */
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"ens6\"}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"ens6\",\"table\":0}", &ar),
			 -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"\",\"table\":5}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"a/b\",\"table\":5}", &ar),
			 -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"sixteen-chars-xx\",\"table\":5}",
				   &ar),
			 -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":5,\"table\":5}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"ens6\",\"table\":\"5\"}", &ar),
			 -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"ens6\",\"table\":-1}", &ar),
			 -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"iface\":\"ens6\",\"table\":4294967296}",
				   &ar),
			 -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5\",\"table\":\"x\"}", &ar), -EINVAL);
	/* Bad or missing address. */
	assert_int_equal(add_reply("{\"ok\":true}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":5}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0.5/32\"}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"198.18.0\"}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"::1\"}", &ar), -EINVAL);
	assert_int_equal(add_reply("{\"ip\":\"\"}", &ar), -EINVAL);
}

#define ADD_REPLY_ETH1 "{\"ok\":true,\"ip\":\"198.19.0.33\",\"iface\":\"eth1\",\"table\":103"

static void assert_cidr(struct proto_cidr c, const char *addr, unsigned int len)
{
	assert_ip(c.addr, addr);
	assert_int_equal(c.len, len);
}

static void test_decode_add_reply_rule_to(void **state)
{
	struct proto_add_reply ar;

	assert_int_equal(add_reply(ADD_REPLY_ETH1 "}", &ar), 0);
	assert_int_equal(ar.n_rule_to, 0);
	/* Empty: the single unrestricted rule, as absent. */
	assert_int_equal(add_reply(ADD_REPLY_ETH1 ",\"ruleTo\":[]}", &ar), 0);
	assert_int_equal(ar.n_rule_to, 0);
	assert_int_equal(add_reply(ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/15\",\"10.0.0.0/8\","
				   "\"128.0.0.0/1\",\"192.0.2.7/32\"]}", &ar),
			 0);
	assert_int_equal(ar.n_rule_to, 4);
	assert_cidr(ar.rule_to[0], "198.18.0.0", 15);
	assert_cidr(ar.rule_to[1], "10.0.0.0", 8);
	assert_cidr(ar.rule_to[2], "128.0.0.0", 1);
	assert_cidr(ar.rule_to[3], "192.0.2.7", 32);
	assert_string_equal(ar.iface, "eth1");
	assert_int_equal(ar.table, 103);
}

static void test_decode_add_reply_rule_to_malformed(void **state)
{
	static const char *const bad[] = {
		/* Not an array of strings. */
		ADD_REPLY_ETH1 ",\"ruleTo\":\"198.18.0.0/15\"}",
		ADD_REPLY_ETH1 ",\"ruleTo\":{}}",
		ADD_REPLY_ETH1 ",\"ruleTo\":null}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[5]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[[\"198.18.0.0/15\"]]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/15\",null]}",
		/* Not a CIDR. */
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/33\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/1x\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0/15\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"256.18.0.0/15\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"::/0\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/15 \"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/15/16\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0.0/15\"]}",
		/* Host bits set: the agent sends prefixes, not addresses. */
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.1/15\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.19.0.0/15\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"1.0.0.0/0\"]}",
		/* Every destination is the unrestricted rule: an empty list says so. */
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"0.0.0.0/0\"]}",
		ADD_REPLY_ETH1 ",\"ruleTo\":[\"10.0.0.0/8\",\"0.0.0.0/0\"]}",
		/* A restriction of a rule that does not exist. */
		"{\"ok\":true,\"ip\":\"198.18.1.5\",\"ruleTo\":[\"198.18.0.0/15\"]}",
	};
	struct proto_add_reply ar;
	json_t *o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (add_reply(bad[i], &ar) != -EINVAL)
			fail_msg("add reply \"%s\" accepted", bad[i]);
	/* A NUL inside: the C string would end before what jansson holds. */
	o = json_loads(ADD_REPLY_ETH1 ",\"ruleTo\":[\"198.18.0.0/15\\u0000x\"]}", JSON_ALLOW_NUL,
		       NULL);
	assert_non_null(o);
	assert_int_equal(proto_decode_add_reply(o, &ar), -EINVAL);
	json_decref(o);
}

/* A JSON array of n distinct /32s: "10.0.0.0/32", "10.0.0.1/32", ... */
static char *rule_to_list(size_t n)
{
	char *text = malloc(64 + n * 20), *p;

	assert_non_null(text);
	p = text + sprintf(text, ADD_REPLY_ETH1 ",\"ruleTo\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s\"10.0.%zu.%zu/32\"", i ? "," : "", i / 256, i % 256);
	strcpy(p, "]}");
	return text;
}

static void test_decode_add_reply_rule_to_limit(void **state)
{
	struct proto_add_reply ar;
	char *text;

	text = rule_to_list(PROTO_MAX_RULE_TO);
	assert_int_equal(add_reply(text, &ar), 0);
	assert_int_equal(ar.n_rule_to, PROTO_MAX_RULE_TO);
	assert_cidr(ar.rule_to[PROTO_MAX_RULE_TO - 1], "10.0.0.63", 32);
	free(text);
	text = rule_to_list(PROTO_MAX_RULE_TO + 1);
	assert_int_equal(add_reply(text, &ar), -EINVAL);
	free(text);
	text = rule_to_list(10000);
	assert_int_equal(add_reply(text, &ar), -EINVAL);
	free(text);
}

/* What the agent sets, the plugin reads back. */
static void test_rule_to_roundtrip(void **state)
{
	struct proto_cidr to[PROTO_MAX_RULE_TO + 1];
	struct proto_add_reply ar;
	json_t *o = json_pack("{s:b,s:s,s:s,s:i}", "ok", 1, "ip", "198.19.0.33", "iface", "eth1",
			      "table", 103);

	assert_non_null(o);
	assert_int_equal(proto_reply_set_rule_to(o, to, 0), 0);
	assert_null(json_object_get(o, "ruleTo"));
	for (size_t i = 0; i < PROTO_MAX_RULE_TO + 1; i++)
		to[i] = (struct proto_cidr){ .addr.s_addr = htonl(0x0a000000u + ((uint32_t)i << 8)),
					     .len = 24 };
	to[1] = (struct proto_cidr){ .len = 32 };
	inet_pton(AF_INET, "198.18.0.0", &to[2].addr);
	to[2].len = 15;
	assert_int_equal(proto_reply_set_rule_to(o, to, PROTO_MAX_RULE_TO + 1), -EINVAL);
	assert_null(json_object_get(o, "ruleTo"));
	assert_int_equal(proto_reply_set_rule_to(o, to, 3), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "ruleTo"), 2)),
			    "198.18.0.0/15");
	assert_int_equal(proto_decode_add_reply(o, &ar), 0);
	assert_int_equal(ar.n_rule_to, 3);
	assert_cidr(ar.rule_to[0], "10.0.0.0", 24);
	assert_cidr(ar.rule_to[1], "0.0.0.0", 32);
	assert_cidr(ar.rule_to[2], "198.18.0.0", 15);
	assert_int_equal(proto_reply_set_rule_to(o, to, PROTO_MAX_RULE_TO), 0);
	assert_int_equal(proto_decode_add_reply(o, &ar), 0);
	assert_int_equal(ar.n_rule_to, PROTO_MAX_RULE_TO);
	json_decref(o);
}

static void test_error_reply(void **state)
{
	json_t *r = proto_error_reply(11, "pool %s is %d%% used", "main", 100);
	json_t *want = json_pack("{s:b,s:i,s:s}", "ok", 0, "code", 11, "error", "pool main is 100% used");
	char *text, err[256];
	json_t *out;

	assert_non_null(r);
	assert_true(json_equal(r, want));
	/* And the plugin reads it back as a refusal. */
	text = json_dumps(r, JSON_COMPACT);
	assert_int_equal(proto_decode_reply(text, strlen(text), &out, err, sizeof(err)), 11);
	assert_string_equal(err, "pool main is 100% used");
	free(text);
	json_decref(r);
	json_decref(want);
}

static void test_valid_ident_ifname(void **state)
{
	assert_true(proto_valid_ident("a", 2));
	assert_false(proto_valid_ident("ab", 2));
	assert_false(proto_valid_ident("", 10));
	assert_true(proto_valid_ident("A-z_0.9", 10));
	assert_false(proto_valid_ident("a+b", 10));
	assert_false(proto_valid_ident("\xc3\xa9", 10));

	assert_true(proto_valid_ifname("eth0"));
	assert_true(proto_valid_ifname("fifteen-chars-x"));
	assert_true(proto_valid_ifname("a.b"));
	assert_true(proto_valid_ifname("..."));
	assert_false(proto_valid_ifname(""));
	assert_false(proto_valid_ifname("."));
	assert_false(proto_valid_ifname(".."));
	assert_false(proto_valid_ifname("sixteen-chars-xx"));
	assert_false(proto_valid_ifname("a b"));
	assert_false(proto_valid_ifname("a\tb"));
	assert_false(proto_valid_ifname("a:b"));
	assert_false(proto_valid_ifname("a/b"));
	assert_false(proto_valid_ifname("a\x7f"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_add),
		cmocka_unit_test(test_decode_del_check),
		cmocka_unit_test(test_decode_gc),
		cmocka_unit_test(test_decode_simple_ops),
		cmocka_unit_test(test_decode_op_errors),
		cmocka_unit_test(test_decode_missing_fields),
		cmocka_unit_test(test_decode_wrong_types),
		cmocka_unit_test(test_decode_bad_identifiers),
		cmocka_unit_test(test_decode_syntax),
		cmocka_unit_test(test_decode_size_limit),
		cmocka_unit_test(test_decode_valid_limit),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_encode_exact),
		cmocka_unit_test(test_decode_reply),
		cmocka_unit_test(test_decode_reply_malformed),
		cmocka_unit_test(test_decode_add_reply),
		cmocka_unit_test(test_decode_add_reply_rule_to),
		cmocka_unit_test(test_decode_add_reply_rule_to_malformed),
		cmocka_unit_test(test_decode_add_reply_rule_to_limit),
		cmocka_unit_test(test_rule_to_roundtrip),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_valid_ident_ifname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
