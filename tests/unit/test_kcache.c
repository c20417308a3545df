// SPDX-License-Identifier: Apache-2.0
/* The cluster cache: upserts, deletes, relists, the slice index and change tracking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../agent/kcache.h"

static struct k8s_object *svc(const char *name, const char *ip)
{
	char text[512], err[256];
	json_t *j;
	struct k8s_object *o;

	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"%s\",\"resourceVersion\":\"1\"},"
		 "\"spec\":{\"clusterIP\":\"%s\",\"ports\":[{\"port\":80}]}}",
		 name, ip);
	j = json_loads(text, 0, NULL);
	o = k8s_decode(K8S_SERVICE, j, err, sizeof(err));
	json_decref(j);
	assert_non_null(o);
	return o;
}

static struct k8s_object *slice(const char *name, const char *service, const char *addr)
{
	char text[512], err[256];
	json_t *j;
	struct k8s_object *o;

	snprintf(text, sizeof(text),
		 "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"%s\",\"labels\":"
		 "{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
		 "\"endpoints\":[{\"addresses\":[\"%s\"]}]}",
		 name, service, addr);
	j = json_loads(text, 0, NULL);
	o = k8s_decode(K8S_ENDPOINTSLICE, j, err, sizeof(err));
	json_decref(j);
	assert_non_null(o);
	return o;
}

static size_t take(struct kcache *kc, const char *expect_joined)
{
	char **keys, joined[512] = "";
	size_t n = kcache_take_changed(kc, &keys);

	for (size_t i = 0; i < n; i++) {
		strcat(joined, i ? "," : "");
		strcat(joined, keys[i]);
		free(keys[i]);
	}
	free(keys);
	assert_string_equal(joined, expect_joined);
	return n;
}

static int count_slices(const struct k8s_endpointslice *e, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static int slices_of(struct kcache *kc, const char *key)
{
	int n = 0;

	kcache_foreach_slice(kc, key, count_slices, &n);
	return n;
}

static void test_upsert_change_tracking(void **state)
{
	struct kcache *kc = kcache_new();

	assert_int_equal(kcache_upsert(kc, svc("a", "198.18.128.1")), 1);
	assert_int_equal(kcache_upsert(kc, svc("b", "198.18.128.2")), 1);
	take(kc, "ns/a,ns/b");
	/* The same object again (a resync): nothing to do for the consumers. */
	assert_int_equal(kcache_upsert(kc, svc("a", "198.18.128.1")), 0);
	take(kc, "");
	assert_int_equal(kcache_upsert(kc, svc("a", "198.18.128.9")), 1);
	take(kc, "ns/a");
	/* A slice change is a change of its service. */
	assert_int_equal(kcache_upsert(kc, slice("a-1", "a", "198.18.1.1")), 1);
	assert_int_equal(slices_of(kc, "ns/a"), 1);
	take(kc, "ns/a");
	/* A slice relabelled to another service changes both, and moves in the index. */
	assert_int_equal(kcache_upsert(kc, slice("a-1", "b", "198.18.1.1")), 1);
	assert_int_equal(slices_of(kc, "ns/a"), 0);
	assert_int_equal(slices_of(kc, "ns/b"), 1);
	take(kc, "ns/a,ns/b");
	assert_int_equal(kcache_delete(kc, K8S_ENDPOINTSLICE, "ns/a-1"), 1);
	assert_int_equal(kcache_delete(kc, K8S_ENDPOINTSLICE, "ns/a-1"), 0);
	assert_int_equal(slices_of(kc, "ns/b"), 0);
	take(kc, "ns/b");
	kcache_free(kc);
}

static void test_relist_removes_unseen(void **state)
{
	struct kcache *kc = kcache_new();
	struct kcache_kind_stats st;

	assert_false(kcache_synced(kc, K8S_SERVICE));
	kcache_relist_begin(kc, K8S_SERVICE);
	kcache_upsert(kc, svc("a", "198.18.128.1"));
	kcache_upsert(kc, svc("b", "198.18.128.2"));
	kcache_relist_end(kc, K8S_SERVICE, "100");
	assert_true(kcache_synced(kc, K8S_SERVICE));
	assert_false(kcache_all_synced(kc));
	assert_string_equal(kcache_rv(kc, K8S_SERVICE), "100");
	take(kc, "ns/a,ns/b");
	/* "b" was deleted while we were away: the relist notices. */
	kcache_relist_begin(kc, K8S_SERVICE);
	kcache_upsert(kc, svc("a", "198.18.128.1"));
	kcache_relist_end(kc, K8S_SERVICE, "200");
	assert_null(kcache_get(kc, K8S_SERVICE, "ns/b"));
	assert_non_null(kcache_get(kc, K8S_SERVICE, "ns/a"));
	take(kc, "ns/b");
	kcache_stats(kc, K8S_SERVICE, &st);
	assert_int_equal(st.count, 1);
	assert_int_equal(st.events, 3);
	kcache_free(kc);
}

static int collect_names(const struct k8s_object *o, void *ctx)
{
	strcat(ctx, o->meta.name);
	return 0;
}

static void test_foreach_sorted_and_many(void **state)
{
	struct kcache *kc = kcache_new();
	char names[64] = "", name[16], ip[32];

	kcache_upsert(kc, svc("c", "198.18.128.3"));
	kcache_upsert(kc, svc("a", "198.18.128.1"));
	kcache_upsert(kc, svc("b", "198.18.128.2"));
	kcache_foreach(kc, K8S_SERVICE, collect_names, names);
	assert_string_equal(names, "abc");
	/* Enough to grow the map through several resizes, with deletes in between. */
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(ip, sizeof(ip), "198.18.%d.%d", 130 + i / 250, i % 250 + 1);
		kcache_upsert(kc, svc(name, ip));
		if (i % 3 == 0) {
			char key[32];

			snprintf(key, sizeof(key), "ns/%s", name);
			assert_int_equal(kcache_delete(kc, K8S_SERVICE, key), 1);
		}
	}
	assert_non_null(kcache_get(kc, K8S_SERVICE, "ns/s4999"));
	assert_null(kcache_get(kc, K8S_SERVICE, "ns/s3"));
	kcache_free(kc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upsert_change_tracking),
		cmocka_unit_test(test_relist_removes_unseen),
		cmocka_unit_test(test_foreach_sorted_and_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
