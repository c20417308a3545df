/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's state, passed as a context to its handlers (no globals). */
#ifndef BERTH_AGENT_H
#define BERTH_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "clock.h"
#include "httpd.h"
#include "ipam.h"
#include "kcache.h"
#include "kubeclient.h"
#include "manifests.h"
#include "proto.h"
#include "proxy.h"
#include "server.h"

/* Container ID of an allocation rebuilt from the host: "recovered-<host veth>". */
#define RECOVERED_PREFIX "recovered-"

struct agent_config {
	const char *node_name;
	const char *run_dir;
	const char *cni_conf_dir;
	const char *network_name;
	const char *veth_prefix;
	const char *pool_spec;
	const char *conflist_version;
	const char *kubeconfig;
	const char *manifests_dir;
	const char *metrics_addr;
	int watch_stall_timeout_s;
	const char *proxy_mode;       /* "nftables" | "none" */
	bool cleanup;                 /* --cleanup: remove what berth programmed, exit */
	const char *nodeport_cidrs;   /* --nodeport-addresses */
	const char *service_cidrs;    /* --service-cidr */
	const char *vpc_cidrs;        /* --vpc-cidrs */
	const char *snat_exclude;     /* --snat-exclude */
	bool snat;                    /* --snat on|off */
	bool masquerade_all;
	int api_page_size;
	unsigned int mtu;
	bool chain_portmap;
	bool recover_ipam;
	int64_t cooldown_ms;
	int64_t reclaim_grace_ms;
	int64_t reconcile_interval_ms;
};

struct agent_counters {
	uint64_t add_ok, add_err, del_ok, check_ok, check_err, gc_released, reclaimed, bad_requests,
		veths_removed, commits, commit_errors;
};

enum agent_source { SOURCE_NONE, SOURCE_API, SOURCE_MANIFESTS };

struct agent {
	struct agent_config cfg;
	char cni_sock[PATH_MAX], status_sock[PATH_MAX], checkpoint[PATH_MAX], conflist[PATH_MAX];
	struct ipam *ipam;
	struct server *srv;
	enum agent_source source;
	struct kcache *kc;
	struct kube_client *kube;
	struct manifests *manifests;
	struct httpd *metrics;
	struct proxy *proxy;
	uint64_t committed_generation;
	bool ready;
	bool stopping;
	int64_t started_at_ms;
	struct agent_counters counters;
	/*
	 * With pod egress SNAT on: the destinations that keep a pod's address
	 * (VPC CIDRs, --snat-exclude), to which an address on a secondary
	 * interface routes through that interface's table ("ruleTo" in add
	 * replies). Empty with SNAT off: one unrestricted rule.
	 */
	size_t n_rule_to;
	struct proto_cidr rule_to[PROTO_MAX_RULE_TO];
};


/* server_handler_fn for cni.sock (handlers.c) and status.sock (status.c). */
json_t *agent_handle_cni(void *ctx, const char *buf, size_t len, bool *durable);
json_t *agent_handle_status(void *ctx, const char *buf, size_t len, bool *durable);
/* httpd_handler_fn for --metrics-addr: /metrics, /healthz, /readyz (metrics.c). */
void agent_handle_http(void *ctx, const char *path, struct http_reply *reply);
/* Ready: IPAM serving and, when there is a source, every resource synced. */
bool agent_is_ready(const struct agent *agent);
/* server_commit_fn: persist the pool when it changed. */
int agent_commit(void *ctx);
/* handlers.c: take the policy-rule destinations from the SNAT configuration. */
void agent_set_rule_to(struct agent *agent, const struct proxy_snat_config *snat);

/* reconcile.c: compare allocations with the host's veths and routes. */
void agent_reconcile(struct agent *agent, bool at_start);

/* reconcile.c: give interface-owned ranges a table and fill it from main. */
int agent_resolve_tables(struct ipam_range *ranges, size_t n);

/* conflist.c: write <cni-conf-dir>/10-berth.conflist (atomically). */
int agent_write_conflist(const struct agent *agent);

#endif
