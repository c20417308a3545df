/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed, bounded getters over jansson objects. Each returns 0, -ENOENT when
 * the key is absent (optional fields), or -EINVAL when present but of the
 * wrong type, too long or out of range.
 */
#ifndef BERTH_JSONX_H
#define BERTH_JSONX_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy a string of at most cap-1 bytes with no NUL inside into out[cap]. */
int jx_string(const json_t *obj, const char *key, char *out, size_t cap);
/* Borrow a string (valid while obj lives); its length must be < maxlen. */
int jx_string_ref(const json_t *obj, const char *key, size_t maxlen, const char **out);
int jx_uint(const json_t *obj, const char *key, uint64_t max, uint64_t *out);
int jx_int64(const json_t *obj, const char *key, int64_t *out);
int jx_bool(const json_t *obj, const char *key, int *out);
/* A dotted-quad IPv4 address (no prefix). */
int jx_ipv4(const json_t *obj, const char *key, struct in_addr *out);

/* Parse "a.b.c.d/len" (len 0..32, host bits must be zero unless allow_host). */
int parse_ipv4_cidr(const char *s, struct in_addr *addr, unsigned int *plen, int allow_host);

/*
 * Builders that remember an allocation failure instead of checking each
 * call: json_object_set_new and json_array_append_new take ownership of the
 * value even when they fail, and accept a NULL value (they fail then), so
 * the caller checks *oom once at the end.
 */
void jx_put(json_t *obj, const char *key, json_t *v, bool *oom);
void jx_append(json_t *arr, json_t *v, bool *oom);
/* A dotted-quad string (NULL on ENOMEM). */
json_t *jx_ip_string(struct in_addr a);

/* Decode at most max bytes of JSON text into an object; -EMSGSIZE when larger. */
json_t *jx_loadb_object(const char *buf, size_t len, size_t max, char *err, size_t errlen);

#endif
