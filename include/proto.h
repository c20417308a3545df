/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's socket protocol: one JSON request and one JSON reply per
 * connection. The client writes its request and shuts down its write side;
 * the agent answers and closes. Decoding is pure: no I/O, fuzzable.
 *
 *   {"op":"add","network":N,"containerID":C,"ifname":I,
 *    "namespace":NS,"pod":P,"hostVeth":V}          -> {"ok":true,"ip":A,"existing":B
 *                                                      [,"iface":D,"table":T
 *                                                       [,"ruleTo":["a.b.c.d/n",...]]]}
 *   {"op":"del", network, containerID, ifname[, "ip":A]} -> {"ok":true}
 *   {"op":"check", network, containerID, ifname}     -> {"ok":true,"ip":A,...}
 *   {"op":"gc","network":N,"valid":[{"containerID":C,"ifname":I},...]}
 *                                                    -> {"ok":true,"released":n}
 *   {"op":"ready"}                                   -> {"ok":true}
 *   {"op":"status"} / {"op":"pods"} / {"op":"services"} (status socket)
 *                                                    -> {"ok":true,...}
 *   errors                                           -> {"ok":false,"code":K,"error":"..."}
 * where K is a CNI error code the plugin passes on.
 */
#ifndef BERTH_PROTO_H
#define BERTH_PROTO_H

#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_REQUEST (1u << 20)
#define PROTO_MAX_REPLY (64u << 10)      /* CNI replies: an address and a table */
#define PROTO_MAX_STATUS_REPLY (512u << 20) /* berthctl: every service of a large cluster */
#define PROTO_MAX_VALID 16384
#define PROTO_NETWORK_MAX 128
#define PROTO_CONTAINER_MAX 256
#define PROTO_K8S_NS_MAX 64
#define PROTO_POD_MAX 254
#define PROTO_MAX_RULE_TO 64 /* as many as the agent's SNAT exclusions (PROXY_MAX_CIDRS) */

enum proto_op { OP_ADD, OP_DEL, OP_CHECK, OP_GC, OP_READY, OP_STATUS, OP_PODS, OP_SERVICES };

struct proto_attachment {
	char container_id[PROTO_CONTAINER_MAX];
	char ifname[IFNAMSIZ];
};

struct proto_request {
	enum proto_op op;
	char network[PROTO_NETWORK_MAX];
	struct proto_attachment att;
	char k8s_namespace[PROTO_K8S_NS_MAX];
	char pod[PROTO_POD_MAX];
	char host_veth[IFNAMSIZ];
	bool has_ip;
	struct in_addr ip;
	struct proto_attachment *valid; /* OP_GC: malloc'd, n_valid entries */
	size_t n_valid;
};

/* Ops with no arguments (readiness and the status socket's). */
bool proto_op_is_query(enum proto_op op);

/* The identifiers the CNI spec allows: [A-Za-z0-9_.-], non-empty, < cap. */
bool proto_valid_ident(const char *s, size_t cap);
/* An interface name the kernel accepts: 1..15 bytes, no '/', ':', space; not "." or "..". */
bool proto_valid_ifname(const char *s);

/* Decode a request; on error returns -EINVAL/-EMSGSIZE and sets err. */
int proto_decode_request(const char *buf, size_t len, struct proto_request *req, char *err,
			 size_t errlen);
void proto_request_release(struct proto_request *req);
/* Encode a request for the wire (malloc'd string). */
char *proto_encode_request(const struct proto_request *req);

/* Error reply object {"ok":false,"code":code,"error":msg}. */
json_t *proto_error_reply(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An IPv4 prefix, host bits clear. */
struct proto_cidr {
	struct in_addr addr;
	uint8_t len;
};

/* Reply to an add/check request as decoded by the plugin. */
struct proto_add_reply {
	struct in_addr ip;
	char iface[IFNAMSIZ]; /* "" when the address needs no policy routing */
	uint32_t table;
	bool existing; /* the attachment already held it: a failed ADD must not release it */
	/*
	 * "ruleTo": the destinations the "from ip lookup table" rule is limited
	 * to, one rule each. With pod egress SNAT on, only traffic that keeps the
	 * pod's address (VPC CIDRs, --snat-exclude) may leave through iface; the
	 * rest takes main, the primary interface, and is SNATed to its address
	 * (as aws-vpc-cni's UpdateRuleListBySrc). 0 = one unrestricted rule
	 * (SNAT off: an external NAT). Only with iface.
	 */
	size_t n_rule_to;
	struct proto_cidr rule_to[PROTO_MAX_RULE_TO];
};

/*
 * Decode a reply. Returns 0 when ok; a positive CNI code with err set when the
 * agent refused; -EINVAL when the reply itself is malformed.
 */
int proto_decode_reply(const char *buf, size_t len, json_t **out, char *err, size_t errlen);
int proto_decode_add_reply(const json_t *reply, struct proto_add_reply *out);
/* Set "ruleTo" on an add/check reply (nothing when n is 0). 0, -EINVAL (n too large) or -ENOMEM. */
int proto_reply_set_rule_to(json_t *reply, const struct proto_cidr *to, size_t n);

#endif
