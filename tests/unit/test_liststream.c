// SPDX-License-Identifier: Apache-2.0
/* The incremental List decoder, fed in every possible split. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jarena.h"
#include "liststream.h"

struct seen {
	char names[512];
	int stop_after;
};

static int on_item(void *ctx, const json_t *item)
{
	struct seen *s = ctx;
	const char *n = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));

	strcat(s->names, n ? n : "?");
	strcat(s->names, ";");
	return s->stop_after && --s->stop_after == 0;
}

static const char LIST[] =
	"{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"42\","
	"\"continue\":\"tok\"},\"items\":[{\"metadata\":{\"name\":\"a\"}} , {\"metadata\":"
	"{\"name\":\"b\\u00e9\",\"x\":[1,2,{\"y\":\"]}\"}]}},\n{\"metadata\":{\"name\":\"c\"}}],"
	"\"count\":7}";

/* Every split of the body into two feeds gives the same items and metadata. */
static void test_every_split(void **state)
{
	struct jarena *arena = jarena_new();

	for (size_t cut = 0; cut <= sizeof(LIST) - 1; cut++) {
		struct seen s = { 0 };
		struct list_stream *ls = list_stream_new(on_item, &s, 1 << 20, cut % 2 ? arena : NULL);
		char err[128];

		if (list_stream_feed(ls, LIST, cut, err, sizeof(err)) != 0)
			fail_msg("cut %zu: %s", cut, err);
		assert_int_equal(list_stream_feed(ls, LIST + cut, sizeof(LIST) - 1 - cut, err, sizeof(err)), 0);
		assert_int_equal(list_stream_finish(ls, err, sizeof(err)), 0);
		assert_string_equal(s.names, "a;b\xc3\xa9;c;");
		assert_string_equal(json_string_value(json_object_get(list_stream_metadata(ls), "continue")),
				    "tok");
		assert_int_equal(list_stream_items(ls), 3);
		list_stream_free(ls);
	}
	jarena_free(arena);
}

/* One byte at a time, and metadata after the items (any key order works). */
static void test_byte_by_byte_metadata_last(void **state)
{
	static const char body[] = "{\"items\":[{\"metadata\":{\"name\":\"x\"}}],\"metadata\":"
				   "{\"resourceVersion\":\"9\"}}";
	struct seen s = { 0 };
	struct list_stream *ls = list_stream_new(on_item, &s, 1 << 20, NULL);
	char err[128];

	for (size_t i = 0; i < sizeof(body) - 1; i++)
		assert_int_equal(list_stream_feed(ls, body + i, 1, err, sizeof(err)), 0);
	assert_int_equal(list_stream_finish(ls, err, sizeof(err)), 0);
	assert_string_equal(s.names, "x;");
	assert_string_equal(json_string_value(json_object_get(list_stream_metadata(ls),
							      "resourceVersion")), "9");
	list_stream_free(ls);
}

static void test_empty_and_null_items(void **state)
{
	static const char *const bodies[] = { "{\"items\":[]}", "{\"items\":null}", "{}" };

	for (size_t i = 0; i < 3; i++) {
		struct seen s = { 0 };
		struct list_stream *ls = list_stream_new(on_item, &s, 1 << 20, NULL);
		char err[128];

		assert_int_equal(list_stream_feed(ls, bodies[i], strlen(bodies[i]), err, sizeof(err)), 0);
		assert_int_equal(list_stream_finish(ls, err, sizeof(err)), 0);
		assert_int_equal(list_stream_items(ls), 0);
		list_stream_free(ls);
	}
}

static void test_malformed_and_limits(void **state)
{
	static const char *const bad[] = {
		"[1,2]", "{\"items\":[{}}", "{\"items\":[{},]}", "{\"items\":{}}", "{\"a\" 1}",
		"{\"items\":[]} trailing", "{\"items\":[{\"a\":tru}]}",
	};
	struct seen s = { 0 };
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct list_stream *ls = list_stream_new(on_item, &s, 1 << 20, NULL);
		int r = list_stream_feed(ls, bad[i], strlen(bad[i]), err, sizeof(err));

		if (r == 0)
			r = list_stream_finish(ls, err, sizeof(err));
		if (r != -EINVAL)
			fail_msg("\"%s\" gave %d", bad[i], r);
		list_stream_free(ls);
	}
	/* Truncated: fine while feeding, an error at the end. */
	{
		struct list_stream *ls = list_stream_new(on_item, &s, 1 << 20, NULL);

		assert_int_equal(list_stream_feed(ls, LIST, 60, err, sizeof(err)), 0);
		assert_int_equal(list_stream_finish(ls, err, sizeof(err)), -EINVAL);
		list_stream_free(ls);
	}
	/* One item larger than the bound. */
	{
		struct list_stream *ls = list_stream_new(on_item, &s, 16, NULL);
		static const char big[] = "{\"items\":[{\"metadata\":{\"name\":\"aaaaaaaaaaaaaaaa";

		assert_int_equal(list_stream_feed(ls, big, sizeof(big) - 1, err, sizeof(err)), -EMSGSIZE);
		list_stream_free(ls);
	}
	/* The callback stops the stream. */
	{
		struct seen stop = { .stop_after = 1 };
		struct list_stream *ls = list_stream_new(on_item, &stop, 1 << 20, NULL);

		assert_int_equal(list_stream_feed(ls, LIST, sizeof(LIST) - 1, err, sizeof(err)), -ECANCELED);
		assert_string_equal(stop.names, "a;");
		list_stream_free(ls);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_byte_by_byte_metadata_last),
		cmocka_unit_test(test_empty_and_null_items),
		cmocka_unit_test(test_malformed_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
