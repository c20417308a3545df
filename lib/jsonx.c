// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"

int jx_string_ref(const json_t *obj, const char *key, size_t maxlen, const char **out)
{
	json_t *v = json_object_get(obj, key);
	size_t len;

	if (!v)
		return -ENOENT;
	if (!json_is_string(v))
		return -EINVAL;
	len = json_string_length(v);
	/* jansson allows embedded NULs; C consumers would silently truncate them. */
	if (len >= maxlen || strlen(json_string_value(v)) != len)
		return -EINVAL;
	*out = json_string_value(v);
	return 0;
}

int jx_string(const json_t *obj, const char *key, char *out, size_t cap)
{
	const char *s;
	int r = jx_string_ref(obj, key, cap, &s);

	if (r < 0)
		return r;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int jx_uint(const json_t *obj, const char *key, uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	json_int_t i;

	if (!v)
		return -ENOENT;
	if (!json_is_integer(v))
		return -EINVAL;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max)
		return -EINVAL;
	*out = (uint64_t)i;
	return 0;
}

int jx_int64(const json_t *obj, const char *key, int64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return -ENOENT;
	if (!json_is_integer(v))
		return -EINVAL;
	*out = json_integer_value(v);
	return 0;
}

int jx_bool(const json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return -ENOENT;
	if (!json_is_boolean(v))
		return -EINVAL;
	*out = json_is_true(v);
	return 0;
}

int jx_ipv4(const json_t *obj, const char *key, struct in_addr *out)
{
	char buf[INET_ADDRSTRLEN];
	int r = jx_string(obj, key, buf, sizeof(buf));

	if (r < 0)
		return r;
	return inet_pton(AF_INET, buf, out) == 1 ? 0 : -EINVAL;
}

int parse_ipv4_cidr(const char *s, struct in_addr *addr, unsigned int *plen, int allow_host)
{
	char buf[INET_ADDRSTRLEN + 4];
	char *slash, *end;
	unsigned long len;
	uint32_t mask;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1)
		return -EINVAL;
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end || len > 32)
		return -EINVAL;
	mask = len ? htonl(~0u << (32 - len)) : 0;
	if (!allow_host && (addr->s_addr & ~mask))
		return -EINVAL;
	*plen = (unsigned int)len;
	return 0;
}

json_t *jx_loadb_object(const char *buf, size_t len, size_t max, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	if (len > max) {
		snprintf(err, errlen, "input of %zu bytes exceeds the %zu-byte limit", len, max);
		return NULL;
	}
	/* REJECT_DUPLICATES: a duplicated key is ambiguous, and ambiguity is hostile. */
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
			 jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "JSON top level is not an object");
		json_decref(root);
		return NULL;
	}
	return root;
}

void jx_put(json_t *obj, const char *key, json_t *v, bool *oom)
{
	if (json_object_set_new(obj, key, v) < 0)
		*oom = true;
}

void jx_append(json_t *arr, json_t *v, bool *oom)
{
	if (json_array_append_new(arr, v) < 0)
		*oom = true;
}

json_t *jx_ip_string(struct in_addr a)
{
	char buf[INET_ADDRSTRLEN];

	return json_string(inet_ntop(AF_INET, &a, buf, sizeof(buf)));
}
