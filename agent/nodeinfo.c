// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jsonx.h"
#include "nodeinfo.h"

struct in_addr node_primary_address(void)
{
	/* TEST-NET-3: only a route lookup happens, no packet leaves. */
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct sockaddr_in src = { 0 };
	socklen_t len = sizeof(src);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "203.0.113.1", &dst.sin_addr);
	if (fd < 0)
		return (struct in_addr){ 0 };
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&src, &len) < 0)
		src.sin_addr.s_addr = 0;
	close(fd);
	return src.sin_addr;
}

static uint32_t mask_of(unsigned int len)
{
	return len ? htonl(~0u << (32 - len)) : 0;
}

static bool node_iface(const struct ifaddrs *ifa, const char *veth_prefix)
{
	return ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET && ifa->ifa_netmask &&
	       !(ifa->ifa_flags & IFF_LOOPBACK) &&
	       !(veth_prefix && strncmp(ifa->ifa_name, veth_prefix, strlen(veth_prefix)) == 0);
}

size_t node_networks(const char *veth_prefix, struct ipv4_cidr *out, size_t max)
{
	struct ifaddrs *all, *ifa;
	size_t n = 0;

	if (getifaddrs(&all) < 0)
		return 0;
	for (ifa = all; ifa && n < max; ifa = ifa->ifa_next) {
		uint32_t a, m;
		unsigned int len;

		if (!node_iface(ifa, veth_prefix))
			continue;
		a = ((struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr;
		m = ((struct sockaddr_in *)ifa->ifa_netmask)->sin_addr.s_addr;
		len = (unsigned int)__builtin_popcount(m);
		out[n++] = (struct ipv4_cidr){ .addr = { .s_addr = a & m }, .len = (uint8_t)len };
	}
	freeifaddrs(all);
	return n;
}

size_t node_addresses_in(const struct ipv4_cidr *cidrs, size_t n_cidrs, struct in_addr *out,
			 size_t max)
{
	struct ifaddrs *all, *ifa;
	size_t n = 0;

	if (getifaddrs(&all) < 0)
		return 0;
	for (ifa = all; ifa && n < max; ifa = ifa->ifa_next) {
		struct in_addr a;

		if (!node_iface(ifa, NULL))
			continue;
		a = ((struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
		for (size_t i = 0; i < n_cidrs; i++) {
			if ((a.s_addr & mask_of(cidrs[i].len)) == cidrs[i].addr.s_addr) {
				out[n++] = a;
				break;
			}
		}
	}
	freeifaddrs(all);
	return n;
}

int parse_cidr_list(const char *s, struct ipv4_cidr *out, size_t max, size_t *n, char *err,
		    size_t errlen)
{
	char *copy = strdup(s), *item, *save = NULL;
	int r = 0;

	*n = 0;
	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		struct in_addr a;
		unsigned int len;

		if (*n == max) {
			snprintf(err, errlen, "more than %zu CIDRs", max);
			r = -EINVAL;
			break;
		}
		if (parse_ipv4_cidr(item, &a, &len, 1) < 0) {
			snprintf(err, errlen, "\"%s\" is not an IPv4 CIDR", item);
			r = -EINVAL;
			break;
		}
		out[(*n)++] = (struct ipv4_cidr){ .addr = { .s_addr = a.s_addr & mask_of(len) },
						  .len = (uint8_t)len };
	}
	free(copy);
	return r;
}
