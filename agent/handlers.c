// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "checkpoint.h"
#include "log.h"
#include "proto.h"

/* CNI error codes the agent hands back through the plugin. */
enum {
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_NOT_AVAILABLE = 50,
};

static bool rule_to_has(const struct agent *agent, struct proto_cidr c)
{
	for (size_t i = 0; i < agent->n_rule_to; i++)
		if (agent->rule_to[i].addr.s_addr == c.addr.s_addr && agent->rule_to[i].len == c.len)
			return true;
	return false;
}

/*
 * Traffic SNATed to the primary address must leave through the primary
 * interface, or the VPC drops it (source/dest check): so with SNAT on, an
 * address on a secondary interface uses that interface's table only
 * towards the destinations that are not SNATed.
 */
void agent_set_rule_to(struct agent *agent, const struct proxy_snat_config *snat)
{
	agent->n_rule_to = 0;
	if (!snat->enabled)
		return;
	for (size_t i = 0; i < snat->n_keep && agent->n_rule_to < PROTO_MAX_RULE_TO; i++) {
		uint8_t len = snat->keep[i].len > 32 ? 32 : snat->keep[i].len;
		struct proto_cidr c = {
			.addr.s_addr = snat->keep[i].addr.s_addr & (len ? htonl(~0u << (32 - len)) : 0),
			.len = len,
		};

		/*
		 * Nothing is SNATed: one unrestricted rule. (The kernel would also
		 * take a rule to /0 for a duplicate of any other rule of the pod.)
		 */
		if (!len) {
			agent->n_rule_to = 0;
			return;
		}
		/* Two rules alike would be one rule to the kernel. */
		if (!rule_to_has(agent, c))
			agent->rule_to[agent->n_rule_to++] = c;
	}
}

static json_t *alloc_reply(const struct agent *agent, const struct ipam_alloc *a, bool existing)
{
	char ip[INET_ADDRSTRLEN];
	json_t *o;

	inet_ntop(AF_INET, &a->ip, ip, sizeof(ip));
	o = json_pack("{s:b,s:s,s:b}", "ok", 1, "ip", ip, "existing", existing);
	if (o && a->range && a->range->iface[0]) {
		json_object_set_new(o, "iface", json_string(a->range->iface));
		json_object_set_new(o, "table", json_integer(a->range->table));
		if (proto_reply_set_rule_to(o, agent->rule_to, agent->n_rule_to) < 0) {
			json_decref(o);
			return proto_error_reply(CNI_ERR_TRY_AGAIN, "out of memory");
		}
	}
	return o;
}

static json_t *handle_add(struct agent *agent, const struct proto_request *req, bool *durable)
{
	struct ipam_owner owner = { .att = req->att };
	const struct ipam_alloc *a;
	int r;

	strcpy(owner.network, req->network);
	strcpy(owner.k8s_namespace, req->k8s_namespace);
	strcpy(owner.pod, req->pod);
	strcpy(owner.host_veth, req->host_veth);
	r = ipam_assign(agent->ipam, &owner, clock_wall_ms(), &a);
	if (r == -ENOSPC) {
		struct ipam_stats st;

		agent->counters.add_err++;
		ipam_get_stats(agent->ipam, clock_wall_ms(), &st);
		log_warn("add %s/%s: pool exhausted (%zu assigned, %zu cooling)", req->k8s_namespace,
			 req->pod, st.assigned, st.cooling);
		return proto_error_reply(CNI_ERR_TRY_AGAIN,
					 "no free address: %zu of %zu assigned, %zu cooling down",
					 st.assigned, st.size, st.cooling);
	}
	if (r == -EEXIST) {
		agent->counters.add_err++;
		return proto_error_reply(CNI_ERR_INVALID_CONFIG,
					 "attachment %s/%s already holds an address for another host veth",
					 req->att.container_id, req->att.ifname);
	}
	if (r < 0) {
		agent->counters.add_err++;
		return proto_error_reply(CNI_ERR_TRY_AGAIN, "cannot assign: %s", strerror(-r));
	}
	agent->counters.add_ok++;
	/*
	 * Held even for a repeated ADD: the first may still be waiting for this
	 * round's commit, and no reply may name an address before it is on disk.
	 */
	*durable = true;
	if (r == 0) {
		char ip[INET_ADDRSTRLEN];

		log_info("assigned %s to %s/%s (%.12s %s)", inet_ntop(AF_INET, &a->ip, ip, sizeof(ip)),
			 req->k8s_namespace, req->pod, req->att.container_id, req->att.ifname);
	}
	return alloc_reply(agent, a, r == 1);
}

static json_t *handle_del(struct agent *agent, const struct proto_request *req, bool *durable)
{
	const struct ipam_alloc *a = ipam_lookup(agent->ipam, req->network, &req->att);
	char ip[INET_ADDRSTRLEN] = "-";

	agent->counters.del_ok++;
	/*
	 * An allocation rebuilt from the host (recovery) has no container ID; the
	 * runtime's DEL still names its address through prevResult.
	 */
	if (!a && req->has_ip) {
		a = ipam_lookup_ip(agent->ipam, req->ip);
		if (a && strncmp(a->owner.att.container_id, RECOVERED_PREFIX, strlen(RECOVERED_PREFIX)) != 0)
			a = NULL;
		if (a) {
			log_info("released recovered %s (%s) on DEL of %.12s", inet_ntop(AF_INET, &a->ip, ip, sizeof(ip)),
				 a->owner.host_veth, req->att.container_id);
			ipam_release_ip(agent->ipam, req->ip, clock_wall_ms());
			*durable = true;
			return json_pack("{s:b}", "ok", 1);
		}
	}
	if (!a)
		return json_pack("{s:b}", "ok", 1); /* never added, or already released */
	inet_ntop(AF_INET, &a->ip, ip, sizeof(ip));
	log_info("released %s from %s/%s (%.12s %s)", ip, a->owner.k8s_namespace, a->owner.pod,
		 req->att.container_id, req->att.ifname);
	ipam_release(agent->ipam, req->network, &req->att, clock_wall_ms());
	*durable = true;
	return json_pack("{s:b}", "ok", 1);
}

static json_t *handle_check(struct agent *agent, const struct proto_request *req)
{
	const struct ipam_alloc *a = ipam_lookup(agent->ipam, req->network, &req->att);
	char ip[INET_ADDRSTRLEN];

	if (!a) {
		agent->counters.check_err++;
		return proto_error_reply(CNI_ERR_UNKNOWN_CONTAINER,
					 "no address is allocated to %s/%s in network %s",
					 req->att.container_id, req->att.ifname, req->network);
	}
	if (req->has_ip && req->ip.s_addr != a->ip.s_addr) {
		agent->counters.check_err++;
		return proto_error_reply(CNI_ERR_UNKNOWN_CONTAINER,
					 "%s/%s holds %s, not the address in prevResult",
					 req->att.container_id, req->att.ifname,
					 inet_ntop(AF_INET, &a->ip, ip, sizeof(ip)));
	}
	agent->counters.check_ok++;
	return alloc_reply(agent, a, true);
}

static json_t *handle_gc(struct agent *agent, const struct proto_request *req, bool *durable)
{
	size_t n = ipam_gc(agent->ipam, req->network, req->valid, req->n_valid, clock_wall_ms());

	if (n) {
		log_info("gc of network %s released %zu addresses", req->network, n);
		*durable = true;
	}
	agent->counters.gc_released += n;
	return json_pack("{s:b,s:I}", "ok", 1, "released", (json_int_t)n);
}

json_t *agent_handle_cni(void *ctx, const char *buf, size_t len, bool *durable)
{
	struct agent *agent = ctx;
	struct proto_request req;
	json_t *reply;
	char err[256];

	if (proto_decode_request(buf, len, &req, err, sizeof(err)) < 0) {
		agent->counters.bad_requests++;
		log_warn("cni.sock: bad request: %s", err);
		return proto_error_reply(CNI_ERR_DECODE, "bad request: %s", err);
	}
	if (!agent->ready) {
		reply = proto_error_reply(CNI_ERR_NOT_AVAILABLE, "agent is not ready");
		goto out;
	}
	switch (req.op) {
	case OP_ADD:
		reply = handle_add(agent, &req, durable);
		break;
	case OP_DEL:
		reply = handle_del(agent, &req, durable);
		break;
	case OP_CHECK:
		reply = handle_check(agent, &req);
		break;
	case OP_GC:
		reply = handle_gc(agent, &req, durable);
		break;
	case OP_READY:
		reply = json_pack("{s:b}", "ok", 1);
		break;
	default:
		reply = proto_error_reply(CNI_ERR_DECODE, "op not served on this socket");
		break;
	}
out:
	proto_request_release(&req);
	return reply;
}

int agent_commit(void *ctx)
{
	struct agent *agent = ctx;
	uint64_t gen = ipam_generation(agent->ipam);
	int r;

	if (gen == agent->committed_generation)
		return 0;
	r = checkpoint_save(agent->ipam, agent->checkpoint);
	if (r < 0) {
		agent->counters.commit_errors++;
		log_err("cannot write %s: %s", agent->checkpoint, strerror(-r));
		return r;
	}
	agent->counters.commits++;
	agent->committed_generation = gen;
	return 0;
}
