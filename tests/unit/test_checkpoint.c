// SPDX-License-Identifier: Apache-2.0
/* The IPAM checkpoint file: round trips, corrupt files, atomic writes. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../agent/checkpoint.h"
#include "atomicfile.h"

#define COOLDOWN_MS 30000
#define T0 1700000000000LL

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-ckpt-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/ipam.json", f->dir);
	*state = f;
	return 0;
}

/* Remove everything the test left in its directory (it is flat, but may hold one subdir). */
static int teardown(void **state)
{
	struct fixture *f = *state;
	struct dirent *de;
	DIR *d = opendir(f->dir);
	char p[512];

	if (d) {
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
			if (unlink(p) < 0)
				rmdir(p);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static struct ipam *mk(const char *spec)
{
	struct ipam_range *ranges = NULL;
	char err[256] = "";
	struct ipam *ipam;
	size_t n = 0;

	assert_int_equal(ipam_parse_pool(spec, &ranges, &n, err, sizeof(err)), 0);
	ipam = ipam_new(ranges, n, COOLDOWN_MS, err, sizeof(err));
	free(ranges);
	assert_non_null(ipam);
	return ipam;
}

static struct ipam_owner owner(const char *cid)
{
	struct ipam_owner o = { 0 };

	snprintf(o.network, sizeof(o.network), "net");
	snprintf(o.att.container_id, sizeof(o.att.container_id), "%s", cid);
	snprintf(o.att.ifname, sizeof(o.att.ifname), "eth0");
	snprintf(o.k8s_namespace, sizeof(o.k8s_namespace), "default");
	snprintf(o.pod, sizeof(o.pod), "pod-%s", cid);
	snprintf(o.host_veth, sizeof(o.host_veth), "brt%s", cid);
	return o;
}

static void assign_ok(struct ipam *ipam, const char *cid, int64_t now, const char *want_ip)
{
	struct ipam_owner o = owner(cid);
	const struct ipam_alloc *a = NULL;
	char buf[INET_ADDRSTRLEN];

	assert_int_equal(ipam_assign(ipam, &o, now, &a), 0);
	inet_ntop(AF_INET, &a->ip, buf, sizeof(buf));
	assert_string_equal(buf, want_ip);
}

static void release_ok(struct ipam *ipam, const char *cid, int64_t now)
{
	struct proto_attachment k = { 0 };

	snprintf(k.container_id, sizeof(k.container_id), "%s", cid);
	snprintf(k.ifname, sizeof(k.ifname), "eth0");
	assert_int_equal(ipam_release(ipam, "net", &k, now), 0);
}

static void write_raw(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Load len bytes of text as a checkpoint into a fresh ipam; err gets the message. */
static int load_text(const struct fixture *f, const char *text, size_t len, char *err,
		     size_t errlen)
{
	struct ipam *ipam = mk("10.0.0.0/29");
	int r;

	write_raw(f->path, text, len);
	err[0] = '\0';
	r = checkpoint_load(ipam, f->path, err, errlen);
	ipam_free(ipam);
	return r;
}

static char *slurp(const char *path, size_t *len)
{
	char *text = NULL;

	assert_int_equal(read_file_bounded(path, 1 << 20, &text, len), 0);
	return text;
}

/* ---- round trips ---- */

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct ipam *a = mk("10.0.0.0/30@eth1:100"), *b;
	const struct ipam_alloc *x;
	struct proto_attachment k = { .container_id = "c2", .ifname = "eth0" };
	struct ipam_stats st;
	char err[512] = "";

	assign_ok(a, "c1", T0, "10.0.0.0");
	assign_ok(a, "c2", T0 + 1, "10.0.0.1");
	assign_ok(a, "c3", T0 + 2, "10.0.0.2");
	release_ok(a, "c1", T0 + 100);
	assert_int_equal(checkpoint_save(a, f->path), 0);

	b = mk("10.0.0.0/30@eth1:100");
	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), 0);
	x = ipam_lookup(b, "net", &k);
	assert_non_null(x);
	assert_int_equal(x->ip.s_addr, ip4("10.0.0.1").s_addr);
	assert_string_equal(x->owner.k8s_namespace, "default");
	assert_string_equal(x->owner.pod, "pod-c2");
	assert_string_equal(x->owner.host_veth, "brtc2");
	assert_int_equal(x->allocated_at_ms, T0 + 1);
	assert_non_null(x->range);
	assert_string_equal(x->range->iface, "eth1");
	assert_int_equal(x->range->table, 100);
	assert_null(ipam_lookup_ip(b, ip4("10.0.0.0")));

	ipam_get_stats(b, T0 + 100, &st);
	assert_int_equal(st.assigned, 2);
	assert_int_equal(st.cooling, 1);
	assert_int_equal(st.free, 1);

	/* Saving what was loaded gives the same bytes. */
	{
		char p2[160], *t1, *t2;
		size_t l1, l2;

		snprintf(p2, sizeof(p2), "%s/again.json", f->dir);
		assert_int_equal(checkpoint_save(b, p2), 0);
		t1 = slurp(f->path, &l1);
		t2 = slurp(p2, &l2);
		assert_int_equal(l1, l2);
		assert_memory_equal(t1, t2, l1);
		free(t1);
		free(t2);
	}
	ipam_free(a);
	ipam_free(b);
}

static void test_cooldown_survives_reload(void **state)
{
	struct fixture *f = *state;
	struct ipam *a = mk("10.0.0.0/31"), *b;
	struct ipam_owner o = owner("c3");
	const struct ipam_alloc *x;
	char err[512] = "";

	assign_ok(a, "c1", T0, "10.0.0.0");
	assign_ok(a, "c2", T0, "10.0.0.1");
	release_ok(a, "c1", T0 + 10);
	assert_int_equal(checkpoint_save(a, f->path), 0);
	ipam_free(a);

	b = mk("10.0.0.0/31");
	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), 0);
	assert_int_equal(ipam_assign(b, &o, T0 + 10 + COOLDOWN_MS - 1, &x), -ENOSPC);
	assert_int_equal(ipam_assign(b, &o, T0 + 10 + COOLDOWN_MS, &x), 0);
	assert_int_equal(x->ip.s_addr, ip4("10.0.0.0").s_addr);
	ipam_free(b);
}

static void test_release_order_survives_reload(void **state)
{
	struct fixture *f = *state;
	struct ipam *a = mk("10.0.0.0/30"), *b;
	int64_t later = T0 + 100 * COOLDOWN_MS;
	char err[512] = "";

	assign_ok(a, "c0", T0, "10.0.0.0");
	assign_ok(a, "c1", T0, "10.0.0.1");
	assign_ok(a, "c2", T0, "10.0.0.2");
	assign_ok(a, "c3", T0, "10.0.0.3");
	release_ok(a, "c3", T0 + 1);
	release_ok(a, "c1", T0 + 2);
	release_ok(a, "c2", T0 + 3);
	release_ok(a, "c0", T0 + 4);
	assert_int_equal(checkpoint_save(a, f->path), 0);
	ipam_free(a);

	b = mk("10.0.0.0/30");
	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), 0);
	assign_ok(b, "n0", later, "10.0.0.3");
	assign_ok(b, "n1", later, "10.0.0.1");
	assign_ok(b, "n2", later, "10.0.0.2");
	assign_ok(b, "n3", later, "10.0.0.0");
	ipam_free(b);
}

static void test_out_of_pool_kept(void **state)
{
	struct fixture *f = *state;
	static const char doc[] =
		"{\"version\":1,\"ipam\":{\"allocations\":[{\"ip\":\"192.0.2.5\",\"network\":\"net\","
		"\"containerID\":\"old\",\"ifname\":\"eth0\",\"namespace\":\"default\",\"pod\":\"p\","
		"\"hostVeth\":\"brtold\",\"allocatedAt\":5}],"
		"\"released\":[{\"ip\":\"192.0.2.9\",\"releasedAt\":7}]}}";
	struct ipam *b = mk("10.0.0.0/31"), *c;
	struct ipam_owner o = owner("c9");
	const struct ipam_alloc *x;
	struct ipam_stats st;
	char err[512] = "";

	write_raw(f->path, doc, strlen(doc));
	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), 0);
	x = ipam_lookup_ip(b, ip4("192.0.2.5"));
	assert_non_null(x);
	assert_null(x->range);
	assert_string_equal(x->owner.att.container_id, "old");
	assert_int_equal(x->allocated_at_ms, 5);
	ipam_get_stats(b, T0, &st);
	assert_int_equal(st.size, 2);
	assert_int_equal(st.free, 2);
	assert_int_equal(st.assigned, 0); /* size = free + assigned + cooling, pool only */
	/* Only pool addresses are handed out. */
	assign_ok(b, "c1", T0, "10.0.0.0");
	assign_ok(b, "c2", T0, "10.0.0.1");
	assert_int_equal(ipam_assign(b, &o, T0, &x), -ENOSPC);

	/* And it is still there after another save and load. */
	assert_int_equal(checkpoint_save(b, f->path), 0);
	c = mk("10.0.0.0/31");
	assert_int_equal(checkpoint_load(c, f->path, err, sizeof(err)), 0);
	x = ipam_lookup_ip(c, ip4("192.0.2.5"));
	assert_non_null(x);
	assert_null(x->range);
	ipam_free(b);
	ipam_free(c);
}

static void test_empty_ipam_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct ipam *a = mk("10.0.0.0/30"), *b = mk("10.0.0.0/30");
	struct ipam_stats st;
	char err[512] = "";
	char *text;
	size_t len;

	assert_int_equal(checkpoint_save(a, f->path), 0);
	text = slurp(f->path, &len);
	assert_string_equal(text, "{\"version\":1,\"ipam\":{\"allocations\":[],\"released\":[]}}");
	free(text);
	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), 0);
	ipam_get_stats(b, T0, &st);
	assert_int_equal(st.free, 4);
	ipam_free(a);
	ipam_free(b);
}

/* ---- missing and corrupt files ---- */

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	struct ipam *b = mk("10.0.0.0/30");
	char err[512] = "";

	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), -ENOENT);
	ipam_free(b);
}

static void test_directory(void **state)
{
	struct fixture *f = *state;
	struct ipam *b = mk("10.0.0.0/30");
	char err[512] = "";

	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, f->path));
	ipam_free(b);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	struct ipam *a = mk("10.0.0.0/29");
	char err[512], *text;
	size_t len;

	assign_ok(a, "c1", T0, "10.0.0.0");
	assign_ok(a, "c2", T0, "10.0.0.1");
	release_ok(a, "c1", T0 + 1);
	assert_int_equal(checkpoint_save(a, f->path), 0);
	ipam_free(a);
	text = slurp(f->path, &len);
	/* Every proper prefix of a valid file is refused, never half-loaded. */
	for (size_t cut = 0; cut < len; cut++) {
		int r = load_text(f, text, cut, err, sizeof(err));

		if (r != -EINVAL)
			fail_msg("prefix of %zu/%zu bytes gave %d", cut, len, r);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(load_text(f, text, len, err, sizeof(err)), 0);
	load_text(f, text, len / 2, err, sizeof(err));
	assert_non_null(strstr(err, "corrupt or truncated"));
	free(text);
}

static void test_corrupt_top_level(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *doc, *want;
	} cases[] = {
		{ "hello", "corrupt" },
		{ "[]", "not an object" },
		{ "{\"version\":1,\"ipam\":{\"allocations\":[],\"released\":[]}} x", "corrupt" },
		{ "{\"ipam\":{\"allocations\":[],\"released\":[]}}", "version" },
		{ "{\"version\":2,\"ipam\":{\"allocations\":[],\"released\":[]}}", "version" },
		{ "{\"version\":0,\"ipam\":{\"allocations\":[],\"released\":[]}}", "version" },
		{ "{\"version\":\"1\",\"ipam\":{\"allocations\":[],\"released\":[]}}", "version" },
		{ "{\"version\":-1,\"ipam\":{\"allocations\":[],\"released\":[]}}", "version" },
		{ "{\"version\":1}", "arrays" },
		{ "{\"version\":1,\"ipam\":[]}", "arrays" },
		{ "{\"version\":1,\"ipam\":{\"allocations\":[]}}", "arrays" },
		{ "{\"version\":1,\"ipam\":{\"released\":[]}}", "arrays" },
		{ "{\"version\":1,\"ipam\":{\"allocations\":{},\"released\":[]}}", "arrays" },
		/* A duplicated key is ambiguous: which one did the writer mean? */
		{ "{\"version\":1,\"version\":1,\"ipam\":{\"allocations\":[],\"released\":[]}}",
		  "duplicate" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = load_text(f, cases[i].doc, strlen(cases[i].doc), err, sizeof(err));

		if (r != -EINVAL)
			fail_msg("case %zu (%s) gave %d", i, cases[i].doc, r);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: err \"%s\" lacks \"%s\"", i, err, cases[i].want);
		assert_non_null(strstr(err, f->path));
	}
}

static void test_corrupt_nul_byte(void **state)
{
	struct fixture *f = *state;
	static const char doc[] = "{\"version\":1,\0\"ipam\":{\"allocations\":[],\"released\":[]}}";
	char err[512];

	assert_int_equal(load_text(f, doc, sizeof(doc) - 1, err, sizeof(err)), -EINVAL);
}

#define ALLOC(ip, cid, rest)                                                                    \
	"{\"ip\":\"" ip "\",\"network\":\"net\",\"containerID\":\"" cid "\",\"ifname\":\"eth0\"," \
	"\"namespace\":\"default\",\"pod\":\"p\",\"hostVeth\":\"brt1\",\"allocatedAt\":1" rest "}"
#define DOC(allocs, released)                                                                   \
	"{\"version\":1,\"ipam\":{\"allocations\":[" allocs "],\"released\":[" released "]}}"

static void test_corrupt_entries(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *doc, *want;
	} cases[] = {
		{ DOC(ALLOC("10.0.0.1", "c1", "") "," ALLOC("10.0.0.2", "c1", ""), ""),
		  "listed twice" },
		{ DOC(ALLOC("10.0.0.1", "c1", "") "," ALLOC("10.0.0.1", "c2", ""), ""),
		  "listed twice" },
		{ DOC(ALLOC("192.0.2.1", "c1", "") "," ALLOC("192.0.2.1", "c2", ""), ""),
		  "listed twice" },
		{ DOC(ALLOC("10.0.0.1", "c1", "") "," ALLOC("10.0.0.300", "c2", ""), ""),
		  "allocations[1] is malformed" },
		{ DOC(ALLOC("10.0.0.1/32", "c1", ""), ""), "allocations[0] is malformed" },
		/* jansson itself refuses \u0000 unless JSON_ALLOW_NUL. */
		{ DOC(ALLOC("10.0.0.1", "c\\u00001", ""), ""), "corrupt" },
		{ DOC(ALLOC("10.0.0.1", "c/1", ""), ""), "allocations[0] is malformed" },
		{ DOC(ALLOC("10.0.0.1", "", ""), ""), "allocations[0] is malformed" },
		{ DOC("1", ""), "allocations[0] is malformed" },
		{ DOC("{}", ""), "allocations[0] is malformed" },
		{ DOC("{\"ip\":5}", ""), "allocations[0] is malformed" },
		{ DOC("", "{\"ip\":\"10.0.0.1\",\"releasedAt\":0}"), "released[0] is malformed" },
		{ DOC("", "{\"ip\":\"10.0.0.1\",\"releasedAt\":-5}"), "released[0] is malformed" },
		{ DOC("", "{\"ip\":\"10.0.0.1\",\"releasedAt\":\"5\"}"), "released[0] is malformed" },
		{ DOC("", "{\"ip\":\"10.0.0.1\",\"releasedAt\":1.5}"), "released[0] is malformed" },
		{ DOC("", "{\"ip\":\"10.0.0.1\"}"), "released[0] is malformed" },
		{ DOC("", "{\"releasedAt\":5}"), "released[0] is malformed" },
		{ DOC("", "{\"ip\":\"10.0.0.1\",\"releasedAt\":5},[]"), "released[1] is malformed" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = load_text(f, cases[i].doc, strlen(cases[i].doc), err, sizeof(err));

		if (r != -EINVAL)
			fail_msg("case %zu (%s) gave %d", i, cases[i].doc, r);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: err \"%s\" lacks \"%s\"", i, err, cases[i].want);
	}
}

/* Each field of an allocation: dropped, and given the wrong type. */
static void test_corrupt_fields(void **state)
{
	struct fixture *f = *state;
	static const char *const fields[] = { "ip",	   "network", "containerID", "ifname",
					      "namespace", "pod",     "hostVeth",    "allocatedAt" };
	char err[512];

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "ip", "10.0.0.1", "network",
				      "net", "containerID", "c1", "ifname", "eth0", "namespace",
				      "default", "pod", "p", "hostVeth", "brt1", "allocatedAt",
				      (json_int_t)1);
		json_t *doc;
		char *text;

		assert_non_null(o);
		doc = json_pack("{s:i,s:{s:[o],s:[]}}", "version", 1, "ipam", "allocations",
				json_incref(o), "released");
		assert_non_null(doc);
		/* The intact entry loads... */
		text = json_dumps(doc, JSON_COMPACT);
		assert_int_equal(load_text(f, text, strlen(text), err, sizeof(err)), 0);
		free(text);
		/* ... missing the field it does not ... */
		json_object_del(o, fields[i]);
		text = json_dumps(doc, JSON_COMPACT);
		if (load_text(f, text, strlen(text), err, sizeof(err)) != -EINVAL)
			fail_msg("missing %s accepted", fields[i]);
		assert_non_null(strstr(err, "allocations[0]"));
		free(text);
		/* ... nor with the wrong type. */
		json_object_set_new(o, fields[i], strcmp(fields[i], "allocatedAt") == 0 ?
								json_string("1") :
								json_integer(1));
		text = json_dumps(doc, JSON_COMPACT);
		if (load_text(f, text, strlen(text), err, sizeof(err)) != -EINVAL)
			fail_msg("wrong type for %s accepted", fields[i]);
		free(text);
		json_decref(o);
		json_decref(doc);
	}
}

static void test_released_for_assigned_ignored(void **state)
{
	struct fixture *f = *state;
	/* A release time for an address that is assigned, or unknown, is harmless. */
	static const char doc[] = DOC(ALLOC("10.0.0.1", "c1", ""),
				      "{\"ip\":\"10.0.0.1\",\"releasedAt\":5},"
				      "{\"ip\":\"203.0.113.1\",\"releasedAt\":5}");
	struct ipam *b = mk("10.0.0.0/29");
	char err[512] = "";

	write_raw(f->path, doc, strlen(doc));
	assert_int_equal(checkpoint_load(b, f->path, err, sizeof(err)), 0);
	assert_non_null(ipam_lookup_ip(b, ip4("10.0.0.1")));
	ipam_free(b);
}

/* ---- atomic_write_file ---- */

static size_t count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_atomic_write_no_tmp(void **state)
{
	struct fixture *f = *state;
	char tmp[160], bad[192], *text;
	struct ipam *a = mk("10.0.0.0/30");
	struct stat st;
	size_t len;

	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	assert_int_equal(atomic_write_file(f->path, "one", 3, 0600), 0);
	assert_int_equal(atomic_write_file(f->path, "second", 6, 0600), 0);
	assert_int_equal(stat(tmp, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_entries(f->dir), 1);
	text = slurp(f->path, &len);
	assert_int_equal(len, 6);
	assert_string_equal(text, "second");
	free(text);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assign_ok(a, "c1", T0, "10.0.0.0");
	assert_int_equal(checkpoint_save(a, f->path), 0);
	assert_int_equal(count_entries(f->dir), 1);
	ipam_free(a);

	/* A failed write leaves nothing behind either. */
	snprintf(bad, sizeof(bad), "%s/nodir/ipam.json", f->dir);
	assert_int_equal(atomic_write_file(bad, "x", 1, 0600), -ENOENT);
	assert_int_equal(count_entries(f->dir), 1);
}

static void test_read_file_bounded(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	size_t len = 0;

	write_raw(f->path, "abcdef", 6);
	assert_int_equal(read_file_bounded(f->path, 5, &text, &len), -EFBIG);
	assert_null(text);
	assert_int_equal(read_file_bounded(f->path, 6, &text, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal(text, "abcdef");
	free(text);
	assert_int_equal(read_file_bounded(f->dir, 100, &text, &len), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cooldown_survives_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_order_survives_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_pool_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_ipam_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_top_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_nul_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_released_for_assigned_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_write_no_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_file_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
