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
	fprintf(f, "usage: berthctl [--run-dir DIR] status|pods [-o json|table]\n"
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
	r = wire ? usock_exchange(path, wire, strlen(wire), PROTO_MAX_REPLY, TIMEOUT_MS, &text, &len)
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
	else
		print_pods(reply);
	json_decref(reply);
	return 0;
}
