// SPDX-License-Identifier: Apache-2.0
/* The status socket: what berthctl shows. */
#include <arpa/inet.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "proto.h"

static const char *const source_names[] = {
	[SOURCE_NONE] = "none",
	[SOURCE_API] = "api",
	[SOURCE_MANIFESTS] = "manifests",
};

bool agent_is_ready(const struct agent *agent)
{
	return agent->ready && (agent->source == SOURCE_NONE || kcache_all_synced(agent->kc));
}

static json_t *resources_json(const struct agent *agent)
{
	json_t *res = json_object();

	for (int k = 0; k < K8S_NKINDS; k++) {
		struct kcache_kind_stats st;

		kcache_stats(agent->kc, (enum k8s_kind)k, &st);
		json_object_set_new(res, k8s_kind_name((enum k8s_kind)k),
				    json_pack("{s:b,s:s,s:I,s:I,s:I,s:I,s:I}", "synced", st.synced,
					      "resourceVersion", st.rv, "count", (json_int_t)st.count,
					      "events", (json_int_t)st.events, "decodeErrors",
					      (json_int_t)st.decode_errors, "relists", (json_int_t)st.relists,
					      "watchRestarts", (json_int_t)st.watch_restarts));
	}
	return res;
}

static json_t *source_json(const struct agent *agent)
{
	json_t *detail = NULL;

	if (agent->source == SOURCE_API)
		detail = kube_client_status(agent->kube);
	else if (agent->source == SOURCE_MANIFESTS)
		detail = manifests_status(agent->manifests);
	else
		detail = json_object();
	json_object_set_new(detail, "type", json_string(source_names[agent->source]));
	if (agent->source != SOURCE_NONE) {
		/* The cache's figures per resource, with the reflector's state when there is one. */
		json_t *res = resources_json(agent), *v;
		const char *kind;

		json_object_foreach(json_object_get(detail, "resources"), kind, v)
			json_object_update(json_object_get(res, kind), v);
		json_object_set_new(detail, "resources", res);
	}
	return detail;
}

static json_t *status_reply(const struct agent *agent)
{
	struct ipam_stats st;

	ipam_get_stats(agent->ipam, clock_wall_ms(), &st);
	return json_pack("{s:b,s:s,s:b,s:I,s:s,s:s,s:{s:s,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I},s:o}",
			 "ok", 1, "node", agent->cfg.node_name, "ready", agent_is_ready(agent),
			 "startedAt", (json_int_t)agent->started_at_ms, "network",
			 agent->cfg.network_name, "checkpoint", agent->checkpoint,
			 "pool", "ranges", agent->cfg.pool_spec, "size", (json_int_t)st.size,
			 "free", (json_int_t)st.free, "assigned", (json_int_t)st.assigned,
			 "cooling", (json_int_t)st.cooling,
			 "counters", "addOk", (json_int_t)agent->counters.add_ok,
			 "addErrors", (json_int_t)agent->counters.add_err,
			 "dels", (json_int_t)agent->counters.del_ok,
			 "reclaimed", (json_int_t)agent->counters.reclaimed,
			 "badRequests", (json_int_t)agent->counters.bad_requests,
			 "vethsRemoved", (json_int_t)agent->counters.veths_removed,
			 "source", source_json(agent));
}

static int append_pod(const struct ipam_alloc *a, void *ctx)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->ip, ip, sizeof(ip));
	json_array_append_new(ctx, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s?}",
					     "namespace", a->owner.k8s_namespace, "pod", a->owner.pod,
					     "containerID", a->owner.att.container_id,
					     "ifname", a->owner.att.ifname, "ip", ip,
					     "hostVeth", a->owner.host_veth,
					     "network", a->owner.network,
					     "allocatedAt", (json_int_t)a->allocated_at_ms,
					     "iface", a->range && a->range->iface[0] ? a->range->iface : NULL));
	return 0;
}

struct svc_ctx {
	const struct agent *agent;
	json_t *list;
};

static int append_slice(const struct k8s_endpointslice *e, void *ctx)
{
	json_array_append_new(ctx, k8s_endpointslice_to_json(e));
	return 0;
}

/* A service as the agent sees it: the service and its slices, in API shape. */
static int append_service(const struct k8s_object *o, void *data)
{
	struct svc_ctx *sc = data;
	json_t *slices = json_array();
	char key[K8S_NAMESPACE_MAX + K8S_NAME_MAX + 2];

	snprintf(key, sizeof(key), "%s/%s", o->meta.ns, o->meta.name);
	kcache_foreach_slice(sc->agent->kc, key, append_slice, slices);
	json_array_append_new(sc->list, json_pack("{s:o,s:o}", "service", k8s_service_to_json(&o->svc),
						  "endpointSlices", slices));
	return 0;
}

json_t *agent_handle_status(void *ctx, const char *buf, size_t len, bool *durable)
{
	struct agent *agent = ctx;
	struct proto_request req;
	struct svc_ctx sc = { .agent = agent };
	json_t *pods;
	char err[256];

	if (proto_decode_request(buf, len, &req, err, sizeof(err)) < 0) {
		agent->counters.bad_requests++;
		return proto_error_reply(6, "bad request: %s", err);
	}
	proto_request_release(&req);
	switch (req.op) {
	case OP_STATUS:
		return status_reply(agent);
	case OP_PODS:
		pods = json_array();
		ipam_foreach(agent->ipam, append_pod, pods);
		return json_pack("{s:b,s:o}", "ok", 1, "pods", pods);
	case OP_SERVICES:
		sc.list = json_array();
		kcache_foreach(agent->kc, K8S_SERVICE, append_service, &sc);
		return json_pack("{s:b,s:b,s:o,s:o?}", "ok", 1, "synced",
				 kcache_synced(agent->kc, K8S_SERVICE) &&
					 kcache_synced(agent->kc, K8S_ENDPOINTSLICE),
				 "services", sc.list, "proxy",
				 agent->proxy ? proxy_status(agent->proxy) : NULL);
	default:
		return proto_error_reply(6, "op not served on the status socket");
	}
}
