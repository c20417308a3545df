// SPDX-License-Identifier: Apache-2.0
/* berthctl: read berth-agent's status socket. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonx.h"
#include "proto.h"
#include "unixsock.h"

#define TIMEOUT_MS 5000

static void usage(FILE *f)
{
	fprintf(f, "usage: berthctl [--run-dir DIR] status|pods|services [-o json|table]\n"
		   "  --run-dir DIR   the agent's run dir (env BERTH_RUN_DIR; default /run/berth)\n");
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static long long num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void format_age(long long since_ms, char *out, size_t len)
{
	long long s = ((long long)time(NULL) * 1000 - since_ms) / 1000;

	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, len, "%llds", s);
	else if (s < 7200)
		snprintf(out, len, "%lldm", s / 60);
	else if (s < 172800)
		snprintf(out, len, "%lldh", s / 3600);
	else
		snprintf(out, len, "%lldd", s / 86400);
}

static void print_source(const json_t *src)
{
	const json_t *res = json_object_get(src, "resources"), *v;
	const char *type = str(src, "type"), *kind;

	if (strcmp(type, "api") == 0) {
		printf("Source:      API server %s (%s)\n", str(src, "server"),
		       json_is_true(json_object_get(src, "connected")) ? "connected" : "disconnected");
	} else if (strcmp(type, "manifests") == 0) {
		printf("Source:      manifests in %s (%lld files, %lld objects)\n", str(src, "dir"),
		       num(src, "files"), num(src, "objects"));
	} else {
		printf("Source:      none (IPAM only)\n");
		return;
	}
	if (*str(src, "lastError") && strcmp(str(src, "lastError"), "-")) {
		char age[32];

		format_age(num(src, "lastErrorAt"), age, sizeof(age));
		printf("Last error:  %s (%s ago)\n", str(src, "lastError"), age);
	}
	printf("  %-14s %-7s %-10s %-16s %8s %8s %7s %8s %6s\n", "RESOURCE", "SYNCED", "STATE",
	       "RESOURCEVERSION", "OBJECTS", "EVENTS", "ERRORS", "RELISTS", "WATCH");
	json_object_foreach((json_t *)res, kind, v) {
		printf("  %-14s %-7s %-10s %-16s %8lld %8lld %7lld %8lld %6lld\n", kind,
		       json_is_true(json_object_get(v, "synced")) ? "yes" : "no",
		       str(v, "state"), str(v, "resourceVersion"), num(v, "count"), num(v, "events"),
		       num(v, "decodeErrors"), num(v, "relists"), num(v, "watchRestarts"));
	}
}

static void print_status(const json_t *r)
{
	const json_t *pool = json_object_get(r, "pool"), *c = json_object_get(r, "counters");
	char age[32];

	format_age(num(r, "startedAt"), age, sizeof(age));
	printf("Node:        %s\n", str(r, "node"));
	printf("Ready:       %s\n", json_is_true(json_object_get(r, "ready")) ? "yes" : "no");
	printf("Uptime:      %s\n", age);
	printf("Network:     %s\n", str(r, "network"));
	printf("Checkpoint:  %s\n", str(r, "checkpoint"));
	printf("Pool:        %s\n", str(pool, "ranges"));
	printf("  size %lld  free %lld  assigned %lld  cooling %lld\n", num(pool, "size"),
	       num(pool, "free"), num(pool, "assigned"), num(pool, "cooling"));
	printf("Requests:    add ok %lld, add failed %lld, del %lld, bad %lld\n", num(c, "addOk"),
	       num(c, "addErrors"), num(c, "dels"), num(c, "badRequests"));
	printf("Reclaimed:   %lld addresses, %lld stale veths removed\n", num(c, "reclaimed"),
	       num(c, "vethsRemoved"));
	print_source(json_object_get(r, "source"));
}

static void print_pods(const json_t *r)
{
	const json_t *pods = json_object_get(r, "pods"), *p;
	size_t i;

	printf("%-16s %-24s %-15s %-12s %-6s %-15s %-8s %s\n", "NAMESPACE", "POD", "IP", "CONTAINER",
	       "IFACE", "HOST-VETH", "VIA", "AGE");
	json_array_foreach(pods, i, p) {
		char age[32];

		format_age(num(p, "allocatedAt"), age, sizeof(age));
		printf("%-16s %-24s %-15s %-12.12s %-6s %-15s %-8s %s\n", str(p, "namespace"),
		       str(p, "pod"), str(p, "ip"), str(p, "containerID"), str(p, "ifname"),
		       str(p, "hostVeth"), str(p, "iface"), age);
	}
}

/* "80/TCP->8080,443/TCP->https" */
static void format_ports(const json_t *svc, char *out, size_t len)
{
	const json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports"), *p;
	size_t i, off = 0;

	out[0] = '\0';
	json_array_foreach(ports, i, p) {
		const json_t *tp = json_object_get(p, "targetPort");
		char target[32];
		int n;

		if (json_is_integer(tp))
			snprintf(target, sizeof(target), "%lld", (long long)json_integer_value(tp));
		else
			snprintf(target, sizeof(target), "%s", json_string_value(tp) ?: "?");
		n = snprintf(out + off, len - off, "%s%lld/%s", i ? "," : "", num(p, "port"),
			     str(p, "protocol"));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
		if (json_integer_value(json_object_get(p, "nodePort"))) {
			n = snprintf(out + off, len - off, ":%lld", num(p, "nodePort"));
			if (n < 0 || (size_t)n >= len - off)
				break;
			off += (size_t)n;
		}
	}
}

static void print_services(const json_t *r)
{
	const json_t *list = json_object_get(r, "services"), *item;
	size_t i;

	if (!json_is_true(json_object_get(r, "synced")))
		printf("(the cache has not synced yet: this list may be incomplete)\n");
	printf("%-16s %-28s %-12s %-15s %-24s %s\n", "NAMESPACE", "NAME", "TYPE", "CLUSTER-IP",
	       "PORT(S)", "ENDPOINTS (ready/total)");
	json_array_foreach(list, i, item) {
		const json_t *svc = json_object_get(item, "service");
		const json_t *spec = json_object_get(svc, "spec"), *meta = json_object_get(svc, "metadata");
		const json_t *slices = json_object_get(item, "endpointSlices"), *sl, *ep;
		char ports[256], eps[512];
		size_t j, k, off = 0;
		int ready = 0, total = 0;

		format_ports(svc, ports, sizeof(ports));
		eps[0] = '\0';
		json_array_foreach(slices, j, sl) {
			json_array_foreach(json_object_get(sl, "endpoints"), k, ep) {
				const json_t *cond = json_object_get(ep, "conditions");
				const char *addr = json_string_value(json_array_get(json_object_get(ep, "addresses"), 0));
				bool ok = json_is_true(json_object_get(cond, "ready"));
				int n;

				total++;
				ready += ok;
				if (!addr || off >= sizeof(eps) - 32)
					continue;
				n = snprintf(eps + off, sizeof(eps) - off, "%s%s%s", off ? "," : "", addr,
					     ok ? "" : "(not ready)");
				if (n > 0 && (size_t)n < sizeof(eps) - off)
					off += (size_t)n;
			}
		}
		printf("%-16s %-28s %-12s %-15s %-24s %d/%d %s\n", str(meta, "namespace"),
		       str(meta, "name"), str(spec, "type"),
		       json_string_value(json_array_get(json_object_get(spec, "clusterIPs"), 0)) ?: "None",
		       ports, ready, total, eps);
	}
}

/* Append "text" to a bounded line; a line that does not fit ends in "...". */
static void append(char *out, size_t len, size_t *off, const char *text)
{
	int n;

	if (*off >= len - 1)
		return;
	n = snprintf(out + *off, len - *off, "%s%s", *off ? "," : "", text);
	if (n < 0 || (size_t)n >= len - *off) {
		snprintf(out + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
		*off = len - 1;
		return;
	}
	*off += (size_t)n;
}

/* "198.18.128.10:80,198.18.0.10:30080(NodePort)" */
static void format_frontends(const json_t *port, char *out, size_t len)
{
	const json_t *fe;
	size_t i, off = 0;

	out[0] = '\0';
	json_array_foreach(json_object_get(port, "frontends"), i, fe) {
		char one[64];
		const char *kind = str(fe, "kind");

		snprintf(one, sizeof(one), "%s:%lld%s%s%s", str(fe, "addr"), num(fe, "port"),
			 strcmp(kind, "ClusterIP") ? "(" : "", strcmp(kind, "ClusterIP") ? kind : "",
			 strcmp(kind, "ClusterIP") ? ")" : "");
		append(out, len, &off, one);
	}
}

/* An endpoint list as programmed; an empty one says what the rules do instead. */
static void format_endpoints(const json_t *port, const char *which, char *out, size_t len)
{
	const json_t *ep;
	size_t i, off = 0;

	out[0] = '\0';
	json_array_foreach(json_object_get(port, which), i, ep) {
		char one[40];

		snprintf(one, sizeof(one), "%s:%lld", str(ep, "addr"), num(ep, "port"));
		append(out, len, &off, one);
	}
	if (!off)
		snprintf(out, len, "%s", json_is_true(json_object_get(port, "has_endpoints"))
						 ? "none here: drop" : "none: reject");
}

static bool has_external_frontend(const json_t *port)
{
	const json_t *fe;
	size_t i;

	json_array_foreach(json_object_get(port, "frontends"), i, fe) {
		if (json_is_true(json_object_get(fe, "external")))
			return true;
	}
	return false;
}

/* What the proxy programmed: per service port, frontends and endpoints. */
static void print_programmed(const json_t *proxy)
{
	const json_t *svc, *port;
	size_t i, j;
	char age[16] = "never";

	if (!proxy)
		return;
	if (num(proxy, "lastSyncAt"))
		format_age(num(proxy, "lastSyncAt"), age, sizeof(age));
	printf("\nProxy: %s, generation %lld, last sync %s%s\n", str(proxy, "backend"),
	       num(proxy, "generation"), age, num(proxy, "lastSyncAt") ? " ago" : "");
	if (*str(proxy, "lastError") && strcmp(str(proxy, "lastError"), "-"))
		printf("Last error: %s\n", str(proxy, "lastError"));
	printf("%-32s %-5s %-5s %-6s %-44s %s\n", "SERVICE", "PROTO", "GEN", "AGE", "FRONTENDS",
	       "ENDPOINTS (internal | external, when they differ)");
	json_array_foreach(json_object_get(proxy, "services"), i, svc) {
		char name[300], gen[24], since[16] = "-", fronts[512], in[512], ext[512];

		snprintf(name, sizeof(name), "%s/%s", str(svc, "namespace"), str(svc, "name"));
		snprintf(gen, sizeof(gen), "%lld", num(svc, "generation"));
		if (num(svc, "programmedAt"))
			format_age(num(svc, "programmedAt"), since, sizeof(since));
		json_array_foreach(json_object_get(svc, "ports"), j, port) {
			format_frontends(port, fronts, sizeof(fronts));
			format_endpoints(port, "cluster_endpoints", in, sizeof(in));
			if (has_external_frontend(port))
				format_endpoints(port, "external_endpoints", ext, sizeof(ext));
			else
				snprintf(ext, sizeof(ext), "%s", in);
			printf("%-32s %-5s %-5s %-6s %-44s %s%s%s\n", j ? "" : name,
			       str(port, "protocol"), j ? "" : gen, j ? "" : since, fronts, in,
			       strcmp(in, ext) ? " | " : "", strcmp(in, ext) ? ext : "");
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "run-dir", required_argument, NULL, 'r' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *run_dir = getenv("BERTH_RUN_DIR"), *output = "table", *cmd;
	struct proto_request req = { 0 };
	char path[PATH_MAX], *wire, *text = NULL, why[512];
	json_t *reply = NULL;
	size_t len;
	int c, r;

	if (!run_dir || !*run_dir)
		run_dir = "/run/berth";
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': run_dir = optarg; break;
		case 'o': output = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || (strcmp(output, "json") && strcmp(output, "table"))) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "status") == 0) {
		req.op = OP_STATUS;
	} else if (strcmp(cmd, "pods") == 0) {
		req.op = OP_PODS;
	} else if (strcmp(cmd, "services") == 0) {
		req.op = OP_SERVICES;
	} else {
		fprintf(stderr, "berthctl: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	if (snprintf(path, sizeof(path), "%s/status.sock", run_dir) >= (int)sizeof(path)) {
		fprintf(stderr, "berthctl: --run-dir is too long\n");
		return 2;
	}
	wire = proto_encode_request(&req);
	r = wire ? usock_exchange(path, wire, strlen(wire), PROTO_MAX_STATUS_REPLY, TIMEOUT_MS, &text, &len)
		 : -ENOMEM;
	free(wire);
	if (r < 0) {
		fprintf(stderr, "berthctl: cannot reach berth-agent at %s: %s\n", path, strerror(-r));
		return 1;
	}
	r = proto_decode_reply(text, len, &reply, why, sizeof(why));
	free(text);
	if (r != 0) {
		fprintf(stderr, "berthctl: %s\n", why);
		return 1;
	}
	json_object_del(reply, "ok");
	if (strcmp(output, "json") == 0)
		json_dumpf(reply, stdout, JSON_INDENT(2)), putchar('\n');
	else if (req.op == OP_STATUS)
		print_status(reply);
	else if (req.op == OP_PODS)
		print_pods(reply);
	else
		print_services(reply), print_programmed(json_object_get(reply, "proxy"));
	json_decref(reply);
	return 0;
}
