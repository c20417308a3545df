// SPDX-License-Identifier: Apache-2.0
/* The --pool option: CIDR[@IFACE[:TABLE]][,...], then the allocator over it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/ipam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipam_owner o = { .network = "n", .att = { .container_id = "c", .ifname = "eth0" },
				.host_veth = "v" };
	struct ipam_range *ranges = NULL;
	const struct ipam_alloc *a;
	struct ipam *ipam;
	char err[256], *spec;
	size_t n = 0;

	if (size > 4096)
		return 0;
	spec = malloc(size + 1);
	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (ipam_parse_pool(spec, &ranges, &n, err, sizeof(err)) == 0) {
		if (n == 0 || !ranges)
			abort();
		for (size_t i = 0; i < n; i++)
			if (ranges[i].plen < 16 || ranges[i].plen > 32 ||
			    (ranges[i].table && !ranges[i].iface[0]))
				abort();
		uint64_t total = 0;

		for (size_t i = 0; i < n; i++)
			total += 1ull << (32 - ranges[i].plen);
		/* Small pools only: a /16 per input would slow the fuzzer down. */
		ipam = total <= 4096 ? ipam_new(ranges, n, 1000, err, sizeof(err)) : NULL;
		if (ipam) {
			if (ipam_assign(ipam, &o, 1, &a) == 0 && !a->range)
				abort();
			ipam_free(ipam);
		}
		free(ranges);
	}
	free(spec);
	return 0;
}
