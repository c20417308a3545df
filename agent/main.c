// SPDX-License-Identifier: Apache-2.0
/*
 * berth-agent: the node agent. Owns the node's VPC address pool and serves
 * berth-cni (cni.sock) and berthctl (status.sock).
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "checkpoint.h"
#include "log.h"
#include "nodeinfo.h"
#include "server.h"
#include "vethname.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: berth-agent --pool CIDR[@IFACE[:TABLE]][,...] [options]\n"
		"  --node-name NAME        this node (env BERTH_NODE_NAME or NODE_NAME; default: hostname)\n"
		"  --pool SPEC             the node's VPC addresses (env BERTH_POOL)\n"
		"  --run-dir DIR           sockets and checkpoint (env BERTH_RUN_DIR; default /run/berth)\n"
		"  --cni-conf-dir DIR      where 10-berth.conflist goes (env BERTH_CNI_CONF_DIR;\n"
		"                          default /etc/cni/net.d)\n"
		"  --network-name NAME     CNI network name (default berth)\n"
		"  --veth-prefix P         host veth prefix, 1-4 of [a-z0-9] (default brt)\n"
		"  --mtu N                 pod MTU (default 1500)\n"
		"  --cooldown SECONDS      before a released address is reused (default 30)\n"
		"  --reclaim-grace SECONDS before an allocation whose veth is gone is released (default 60)\n"
		"  --reconcile-interval SECONDS  how often the host is compared with the pool (default 5)\n"
		"  --no-portmap            do not chain portmap in the written conflist\n"
		"  --conflist-version V    cniVersion of the conflist (default 1.0.0: Debian's portmap\n"
		"                          does not speak 1.1.0; use 1.1.0 for STATUS and GC)\n"
		"  --recover-ipam          set a corrupt checkpoint aside and rebuild from the host\n"
		"  --kubeconfig FILE       API server from a kubeconfig (env BERTH_KUBECONFIG); without it\n"
		"                          and without --manifests, in-cluster config when\n"
		"                          KUBERNETES_SERVICE_HOST is set\n"
		"  --manifests DIR         standalone: Services, EndpointSlices, Pods, Node from files\n"
		"                          (env BERTH_MANIFESTS)\n"
		"  --metrics-addr H:P      serve /metrics, /healthz, /readyz (env BERTH_METRICS_ADDR)\n"
		"  --watch-stall-timeout S drop and resume a watch silent this long (default 90)\n"
		"  --api-page-size N       objects per LIST page (default 500, as client-go)\n"
		"  --proxy MODE            nftables | none (env BERTH_PROXY; default none)\n"
		"  --cleanup               remove every rule berth programmed, then exit\n"
		"  --nodeport-addresses C  NodePorts answer on node addresses in these CIDRs\n"
		"                          (default: the Node's InternalIPs, else the primary address)\n"
		"  --service-cidr C        traffic to an unallocated address here is dropped\n"
		"  --vpc-cidrs C           no SNAT towards these (default: the pool's and the node\n"
		"                          interfaces' networks)\n"
		"  --snat-exclude C        no SNAT towards these either\n"
		"  --snat on|off           SNAT pod egress leaving the VPC (default on)\n"
		"  --masquerade-all        masquerade all service traffic (kube-proxy's flag)\n"
		"  --log-level LEVEL       error|warn|info|debug (env BERTH_LOG_LEVEL; default info)\n");
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && *v ? v : fallback;
}

static int parse_seconds(const char *s, int64_t *out_ms)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 86400)
		return -EINVAL;
	*out_ms = v * 1000;
	return 0;
}

static int parse_args(int argc, char **argv, struct agent_config *cfg)
{
	static const struct option opts[] = {
		{ "node-name", required_argument, NULL, 'n' },
		{ "pool", required_argument, NULL, 'p' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "cni-conf-dir", required_argument, NULL, 'c' },
		{ "network-name", required_argument, NULL, 'N' },
		{ "veth-prefix", required_argument, NULL, 'v' },
		{ "mtu", required_argument, NULL, 'm' },
		{ "cooldown", required_argument, NULL, 'C' },
		{ "reclaim-grace", required_argument, NULL, 'g' },
		{ "reconcile-interval", required_argument, NULL, 'i' },
		{ "no-portmap", no_argument, NULL, 'P' },
		{ "recover-ipam", no_argument, NULL, 'R' },
		{ "conflist-version", required_argument, NULL, 'V' },
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "manifests", required_argument, NULL, 'M' },
		{ "metrics-addr", required_argument, NULL, 'x' },
		{ "watch-stall-timeout", required_argument, NULL, 'S' },
		{ "api-page-size", required_argument, NULL, 'L' },
		{ "proxy", required_argument, NULL, 'X' },
		{ "cleanup", no_argument, NULL, 'Z' },
		{ "nodeport-addresses", required_argument, NULL, 'A' },
		{ "service-cidr", required_argument, NULL, 'E' },
		{ "vpc-cidrs", required_argument, NULL, 'Y' },
		{ "snat-exclude", required_argument, NULL, 'W' },
		{ "snat", required_argument, NULL, 'T' },
		{ "masquerade-all", no_argument, NULL, 'Q' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static char hostname[256];
	enum log_level level;
	const char *lvl = env_or("BERTH_LOG_LEVEL", "info");
	char *end;
	int c;

	gethostname(hostname, sizeof(hostname) - 1);
	*cfg = (struct agent_config){
		.node_name = env_or("BERTH_NODE_NAME", env_or("NODE_NAME", hostname)),
		.pool_spec = env_or("BERTH_POOL", NULL),
		.run_dir = env_or("BERTH_RUN_DIR", "/run/berth"),
		.cni_conf_dir = env_or("BERTH_CNI_CONF_DIR", "/etc/cni/net.d"),
		.network_name = "berth",
		.veth_prefix = VETH_PREFIX_DEFAULT,
		.mtu = 1500,
		.chain_portmap = true,
		.conflist_version = "1.0.0",
		.kubeconfig = env_or("BERTH_KUBECONFIG", NULL),
		.manifests_dir = env_or("BERTH_MANIFESTS", NULL),
		.metrics_addr = env_or("BERTH_METRICS_ADDR", NULL),
		.proxy_mode = env_or("BERTH_PROXY", "none"),
		.snat = true,
		.cooldown_ms = 30000,
		.reclaim_grace_ms = 60000,
		.reconcile_interval_ms = 5000,
	};
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': cfg->node_name = optarg; break;
		case 'p': cfg->pool_spec = optarg; break;
		case 'r': cfg->run_dir = optarg; break;
		case 'c': cfg->cni_conf_dir = optarg; break;
		case 'N': cfg->network_name = optarg; break;
		case 'v': cfg->veth_prefix = optarg; break;
		case 'P': cfg->chain_portmap = false; break;
		case 'R': cfg->recover_ipam = true; break;
		case 'V': cfg->conflist_version = optarg; break;
		case 'k': cfg->kubeconfig = optarg; break;
		case 'M': cfg->manifests_dir = optarg; break;
		case 'x': cfg->metrics_addr = optarg; break;
		case 'X': cfg->proxy_mode = optarg; break;
		case 'Z': cfg->cleanup = true; break;
		case 'A': cfg->nodeport_cidrs = optarg; break;
		case 'E': cfg->service_cidrs = optarg; break;
		case 'Y': cfg->vpc_cidrs = optarg; break;
		case 'W': cfg->snat_exclude = optarg; break;
		case 'Q': cfg->masquerade_all = true; break;
		case 'T':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "berth-agent: --snat must be on or off\n");
				return -EINVAL;
			}
			cfg->snat = strcmp(optarg, "on") == 0;
			break;
		case 'L':
			errno = 0;
			cfg->api_page_size = (int)strtol(optarg, &end, 10);
			if (errno || *end || cfg->api_page_size < 1 || cfg->api_page_size > 100000) {
				fprintf(stderr, "berth-agent: --api-page-size must be 1..100000\n");
				return -EINVAL;
			}
			break;
		case 'S': {
			int64_t ms;

			if (parse_seconds(optarg, &ms) < 0 || ms == 0) {
				fprintf(stderr, "berth-agent: --watch-stall-timeout must be 1..86400 seconds\n");
				return -EINVAL;
			}
			cfg->watch_stall_timeout_s = (int)(ms / 1000);
			break;
		}
		case 'l': lvl = optarg; break;
		case 'm':
			errno = 0;
			cfg->mtu = (unsigned int)strtoul(optarg, &end, 10);
			if (errno || *end || cfg->mtu < 576 || cfg->mtu > 65535) {
				fprintf(stderr, "berth-agent: --mtu must be 576..65535\n");
				return -EINVAL;
			}
			break;
		case 'C':
			if (parse_seconds(optarg, &cfg->cooldown_ms) < 0) {
				fprintf(stderr, "berth-agent: --cooldown must be 0..86400 seconds\n");
				return -EINVAL;
			}
			break;
		case 'g':
			if (parse_seconds(optarg, &cfg->reclaim_grace_ms) < 0) {
				fprintf(stderr, "berth-agent: --reclaim-grace must be 0..86400 seconds\n");
				return -EINVAL;
			}
			break;
		case 'i':
			if (parse_seconds(optarg, &cfg->reconcile_interval_ms) < 0 ||
			    cfg->reconcile_interval_ms == 0) {
				fprintf(stderr, "berth-agent: --reconcile-interval must be 1..86400 seconds\n");
				return -EINVAL;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (cfg->kubeconfig && cfg->manifests_dir) {
		fprintf(stderr, "berth-agent: --kubeconfig and --manifests are exclusive\n");
		return -EINVAL;
	}
	if (strcmp(cfg->proxy_mode, "nftables") && strcmp(cfg->proxy_mode, "none")) {
		fprintf(stderr, "berth-agent: --proxy must be nftables or none%s\n",
			strcmp(cfg->proxy_mode, "ebpf") == 0 ? " (the eBPF backend is not built yet)" : "");
		return -EINVAL;
	}
	if (cfg->cleanup)
		return 0; /* needs nothing else */
	if (optind != argc || !cfg->pool_spec) {
		usage(stderr);
		return -EINVAL;
	}
	if (log_parse_level(lvl, &level) < 0) {
		fprintf(stderr, "berth-agent: bad log level \"%s\"\n", lvl);
		return -EINVAL;
	}
	log_set_level(level);
	if (!veth_prefix_valid(cfg->veth_prefix)) {
		fprintf(stderr, "berth-agent: --veth-prefix must be 1-4 of [a-z0-9]\n");
		return -EINVAL;
	}
	if (strcmp(cfg->conflist_version, "0.4.0") && strcmp(cfg->conflist_version, "1.0.0") &&
	    strcmp(cfg->conflist_version, "1.1.0")) {
		fprintf(stderr, "berth-agent: --conflist-version must be 0.4.0, 1.0.0 or 1.1.0\n");
		return -EINVAL;
	}
	if (!proto_valid_ident(cfg->network_name, PROTO_NETWORK_MAX)) {
		fprintf(stderr, "berth-agent: bad --network-name\n");
		return -EINVAL;
	}
	return 0;
}

static int join_path(char *out, const char *dir, const char *name)
{
	return snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Load the checkpoint; a corrupt one stops the agent unless recovery was asked for. */
static int load_pool(struct agent *agent, const struct ipam_range *ranges, size_t n)
{
	char err[512], aside[PATH_MAX + 32];
	int r;

	agent->ipam = ipam_new(ranges, n, agent->cfg.cooldown_ms, err, sizeof(err));
	if (!agent->ipam) {
		log_err("bad --pool: %s", err);
		return -EINVAL;
	}
	r = checkpoint_load(agent->ipam, agent->checkpoint, err, sizeof(err));
	if (r == 0 || r == -ENOENT) {
		if (r == -ENOENT)
			log_info("no checkpoint at %s: starting with an empty pool", agent->checkpoint);
		return 0;
	}
	if (!agent->cfg.recover_ipam) {
		log_err("%s", err);
		log_err("refusing to start: an empty pool could hand out addresses pods still use. "
			"To recover, restart with --recover-ipam: the file is kept as %s.corrupt-<time> "
			"and allocations are rebuilt from the pods' host routes",
			agent->checkpoint);
		return -EINVAL;
	}
	snprintf(aside, sizeof(aside), "%s.corrupt-%lld", agent->checkpoint,
		 (long long)(clock_wall_ms() / 1000));
	if (rename(agent->checkpoint, aside) < 0) {
		log_err("cannot move %s aside: %s", agent->checkpoint, strerror(errno));
		return -errno;
	}
	log_warn("%s; kept as %s, rebuilding allocations from the host", err, aside);
	ipam_free(agent->ipam);
	agent->ipam = ipam_new(ranges, n, agent->cfg.cooldown_ms, err, sizeof(err));
	return agent->ipam ? 0 : -ENOMEM;
}

/* The cluster picture: the API server, a manifests directory, or nothing (IPAM only). */
static int start_source(struct agent *agent)
{
	struct kube_client_opts opts = {
		.node_name = agent->cfg.node_name,
		.stall_timeout_s = agent->cfg.watch_stall_timeout_s,
		.page_size = agent->cfg.api_page_size,
	};
	struct kube_auth auth = { 0 };
	char err[512];
	int r;

	agent->kc = kcache_new();
	if (!agent->kc)
		return -ENOMEM;
	if (agent->cfg.manifests_dir) {
		agent->manifests = manifests_new(agent->srv, agent->kc, agent->cfg.manifests_dir,
						 agent->cfg.node_name, err, sizeof(err));
		if (!agent->manifests) {
			log_err("--manifests: %s", err);
			return -EINVAL;
		}
		agent->source = SOURCE_MANIFESTS;
		log_info("source: manifests in %s", agent->cfg.manifests_dir);
		return 0;
	}
	if (agent->cfg.kubeconfig)
		r = kubeconfig_load(agent->cfg.kubeconfig, &auth, err, sizeof(err));
	else if (getenv("KUBERNETES_SERVICE_HOST"))
		r = kube_auth_in_cluster(SA_DIR, &auth, err, sizeof(err));
	else
		return 0;
	if (r < 0) {
		log_err("%s: %s", agent->cfg.kubeconfig ? agent->cfg.kubeconfig : "in-cluster config", err);
		kube_auth_release(&auth);
		return r;
	}
	log_info("source: API server %s", auth.server);
	agent->kube = kube_client_new(agent->srv, agent->kc, &auth, &opts, err, sizeof(err));
	kube_auth_release(&auth);
	if (!agent->kube) {
		log_err("API client: %s", err);
		return -EINVAL;
	}
	agent->source = SOURCE_API;
	return 0;
}

/* Build the proxy's configuration from the flags, the pool and the node's interfaces. */
static int proxy_config(const struct agent *agent, const struct ipam_range *ranges, size_t n,
			struct proxy_opts *o)
{
	const struct agent_config *cfg = &agent->cfg;
	struct proxy_backend_config *b = &o->backend_cfg;
	struct proxy_snat_config *sn = &b->snat;
	struct ipv4_cidr cidrs[PROXY_MAX_CIDRS];
	char err[256];
	size_t k;

	*o = (struct proxy_opts){
		.backend = strcmp(cfg->proxy_mode, "nftables") == 0 ? &nft_backend_ops : NULL,
		.node_name = cfg->node_name,
		.node_ip = node_primary_address(),
	};
	b->masquerade_all = cfg->masquerade_all;
	/* The pool's ranges are where pods live. */
	for (size_t i = 0; i < n && b->n_pod_cidrs < PROXY_MAX_CIDRS; i++)
		b->pod_cidrs[b->n_pod_cidrs++] = (struct ipv4_cidr){ ranges[i].net, (uint8_t)ranges[i].plen };
	if (cfg->service_cidrs &&
	    parse_cidr_list(cfg->service_cidrs, b->service_cidrs, PROXY_MAX_CIDRS, &b->n_service_cidrs,
			    err, sizeof(err)) < 0)
		goto bad;
	if (cfg->nodeport_cidrs) {
		if (parse_cidr_list(cfg->nodeport_cidrs, cidrs, PROXY_MAX_CIDRS, &k, err, sizeof(err)) < 0)
			goto bad;
		b->n_nodeport_ips = node_addresses_in(cidrs, k, b->nodeport_ips, PLAN_MAX_NODE_IPS);
		o->nodeport_ips_given = true;
	}
	sn->enabled = cfg->snat;
	sn->to = o->node_ip;
	sn->n_pod_cidrs = b->n_pod_cidrs;
	memcpy(sn->pod_cidrs, b->pod_cidrs, sizeof(sn->pod_cidrs));
	if (cfg->vpc_cidrs) {
		if (parse_cidr_list(cfg->vpc_cidrs, sn->keep, PROXY_MAX_CIDRS, &sn->n_keep, err,
				    sizeof(err)) < 0)
			goto bad;
	} else {
		/* Inside the VPC: the pool's ranges and the node interfaces' networks. */
		memcpy(sn->keep, b->pod_cidrs, b->n_pod_cidrs * sizeof(sn->keep[0]));
		sn->n_keep = b->n_pod_cidrs;
		sn->n_keep += node_networks(cfg->veth_prefix, sn->keep + sn->n_keep,
					    PROXY_MAX_CIDRS - sn->n_keep);
	}
	if (cfg->snat_exclude) {
		if (parse_cidr_list(cfg->snat_exclude, cidrs, PROXY_MAX_CIDRS - sn->n_keep, &k, err,
				    sizeof(err)) < 0)
			goto bad;
		memcpy(sn->keep + sn->n_keep, cidrs, k * sizeof(cidrs[0]));
		sn->n_keep += k;
	}
	if (sn->enabled && !sn->to.s_addr) {
		log_warn("no primary address (no default route): pod egress is masqueraded to the "
			 "outgoing interface's address");
	}
	return 0;
bad:
	log_err("%s", err);
	return -EINVAL;
}

static int start_proxy(struct agent *agent, const struct ipam_range *ranges, size_t n)
{
	struct proxy_opts opts;
	char err[512];
	int r;

	r = proxy_config(agent, ranges, n, &opts);
	if (r < 0)
		return r;
	agent_set_rule_to(agent, &opts.backend_cfg.snat);
	if (!opts.backend && !opts.backend_cfg.snat.enabled)
		return 0;
	agent->proxy = proxy_new(agent->srv, agent->kc, &opts, err, sizeof(err));
	if (!agent->proxy) {
		log_err("proxy: %s", err);
		return -EINVAL;
	}
	log_info("proxy: %s; pod egress SNAT %s", opts.backend ? opts.backend->name : "off",
		 opts.backend_cfg.snat.enabled ? "on" : "off");
	return 0;
}

static int setup(struct agent *agent, struct server *srv)
{
	struct ipam_range *ranges = NULL;
	char err[512];
	size_t n = 0;
	int r;

	if (join_path(agent->cni_sock, agent->cfg.run_dir, "cni.sock") < 0 ||
	    join_path(agent->status_sock, agent->cfg.run_dir, "status.sock") < 0 ||
	    join_path(agent->checkpoint, agent->cfg.run_dir, "ipam.json") < 0 ||
	    join_path(agent->conflist, agent->cfg.cni_conf_dir, "10-berth.conflist") < 0) {
		log_err("--run-dir or --cni-conf-dir is too long");
		return -ENAMETOOLONG;
	}
	if (mkdir(agent->cfg.run_dir, 0700) < 0 && errno != EEXIST) {
		log_err("cannot create %s: %s", agent->cfg.run_dir, strerror(errno));
		return -errno;
	}
	r = ipam_parse_pool(agent->cfg.pool_spec, &ranges, &n, err, sizeof(err));
	if (r < 0) {
		log_err("bad --pool: %s", err);
		return r;
	}
	r = agent_resolve_tables(ranges, n);
	if (r == 0)
		r = load_pool(agent, ranges, n);
	if (r < 0)
		goto out;
	agent_reconcile(agent, true);
	r = agent_commit(agent);
	if (r < 0)
		goto out;
	r = server_listen(srv, agent->cni_sock, agent_handle_cni);
	if (r == 0)
		r = server_listen(srv, agent->status_sock, agent_handle_status);
	if (r < 0) {
		log_err("cannot listen in %s: %s", agent->cfg.run_dir, strerror(-r));
		goto out;
	}
	r = start_source(agent);
	if (r == 0)
		r = start_proxy(agent, ranges, n);
	if (r < 0)
		goto out;
	if (agent->cfg.metrics_addr) {
		agent->metrics = httpd_new(srv, agent->cfg.metrics_addr, agent_handle_http, agent, err,
					   sizeof(err));
		if (!agent->metrics) {
			log_err("--metrics-addr: %s", err);
			r = -EINVAL;
			goto out;
		}
		log_info("serving /metrics, /healthz and /readyz: metrics on %.*s:%d",
			 (int)(strrchr(agent->cfg.metrics_addr, ':') - agent->cfg.metrics_addr),
			 agent->cfg.metrics_addr, httpd_port(agent->metrics));
	}
	agent->ready = true;
	r = agent_write_conflist(agent);
	if (r < 0)
		log_err("cannot write %s: %s", agent->conflist, strerror(-r));
out:
	free(ranges);
	return r;
}

static int make_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void on_signal(void *arg, int fd, uint32_t revents)
{
	struct agent *agent = arg;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: shutting down (pods keep their networking)", si.ssi_signo);
		agent->stopping = true;
	}
}

static void on_reconcile_timer(void *arg, int fd, uint32_t revents)
{
	struct agent *agent = arg;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	agent_reconcile(agent, false);
	agent_commit(agent);
}

static int make_timerfd(int64_t interval_ms)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = interval_ms / 1000, .tv_nsec = interval_ms % 1000 * 1000000 },
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	its.it_value = its.it_interval;
	if (fd >= 0 && timerfd_settime(fd, 0, &its, NULL) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct agent agent = { 0 };
	struct server *srv = NULL;
	int sfd = -1, tfd = -1, r, status = 1;

	if (parse_args(argc, argv, &agent.cfg) < 0)
		return 2;
	if (agent.cfg.cleanup) {
		struct proxy_backend_config cfg = { .services = true };
		char err[512];

		if (proxy_cleanup(&cfg, err, sizeof(err)) < 0) {
			log_err("cleanup: %s", err);
			return 1;
		}
		log_info("cleanup: removed berth's nftables table");
		return 0;
	}
	agent.started_at_ms = clock_wall_ms();
	/* Before anything else: libcurl's global set-up is not thread-safe. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_err("cannot initialise libcurl");
		return 1;
	}
	sfd = make_signalfd();
	tfd = make_timerfd(agent.cfg.reconcile_interval_ms);
	srv = server_new(agent_commit, &agent);
	agent.srv = srv;
	if (sfd < 0 || tfd < 0 || !srv || !server_fd_add(srv, sfd, EPOLLIN, on_signal, &agent) ||
	    !server_fd_add(srv, tfd, EPOLLIN, on_reconcile_timer, &agent)) {
		log_err("cannot set up the event loop");
		goto out;
	}
	if (setup(&agent, srv) < 0)
		goto out;
	log_info("serving node %s: pool %s, %s and %s, conflist %s", agent.cfg.node_name,
		 agent.cfg.pool_spec, agent.cni_sock, agent.status_sock, agent.conflist);
	while (!agent.stopping) {
		r = server_run(srv, 1000);
		if (r < 0) {
			log_err("event loop: %s", strerror(-r));
			goto out;
		}
		httpd_expire(agent.metrics);
		proxy_kick(agent.proxy);
	}
	status = agent_commit(&agent) < 0;
out:
	proxy_free(agent.proxy);
	httpd_free(agent.metrics);
	kube_client_free(agent.kube);
	manifests_free(agent.manifests);
	server_free(srv);
	kcache_free(agent.kc);
	ipam_free(agent.ipam);
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	curl_global_cleanup();
	return status;
}
