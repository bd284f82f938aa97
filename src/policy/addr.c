/*
 * addr.c - client addresses and CIDR text: parsing, printing, socket
 * addresses. IPv4 lives in IPv4-mapped IPv6 space (::ffff:a.b.c.d) so one
 * 128-bit trie serves both families and a v4-mapped v6 peer counts as v4.
 */
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static void
addr_set_v4(gk_addr *out, const uint8_t v4[4])
{
	memcpy(out->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
	memcpy(out->b + 12, v4, 4);
}

int
policy_addr_from_sockaddr(const struct sockaddr *sa, gk_addr *out)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa == NULL || out == NULL)
		return GK_ERR_INVALID;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		addr_set_v4(out, (const uint8_t *)&sin->sin_addr);
		return 0;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(out->b, &sin6->sin6_addr, 16);
		return 0;
	}
	return GK_ERR_INVALID;
}

int
policy_addr_parse(gk_slice s, gk_addr *out)
{
	if (out == NULL)
		return GK_ERR_INVALID;
	return gk_ip_parse(s, out->b);
}

int
policy_addr_is_v4(const gk_addr *a)
{
	return a != NULL &&
	    memcmp(a->b, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

void
policy_addr_str(const gk_addr *a, char *out, size_t out_len)
{
	char tmp[GK_ADDR_STRLEN];

	if (out == NULL || out_len == 0)
		return;
	if (a == NULL) {
		tmp[0] = '\0';
	} else if (policy_addr_is_v4(a)) {
		snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", a->b[12], a->b[13],
		    a->b[14], a->b[15]);
	} else if (inet_ntop(AF_INET6, a->b, tmp, sizeof(tmp)) == NULL) {
		tmp[0] = '\0';
	}
	snprintf(out, out_len, "%s", tmp);
}

int
policy_cidr_parse(gk_slice s, gk_addr *net, unsigned *bits)
{
	gk_addr a;
	unsigned n, i;

	if (net == NULL || bits == NULL ||
	    gk_cidr_parse(s, a.b, &n) != 0)
		return GK_ERR_INVALID;
	/* Host bits below the prefix must be clear. */
	for (i = n; i < 128; i++)
		if (a.b[i / 8] & (0x80u >> (i % 8)))
			return GK_ERR_INVALID;
	*net = a;
	*bits = n;
	return 0;
}

void
policy_addr_key(const gk_addr *a, uint64_t *hi, uint64_t *lo)
{
	uint64_t h = 0, l = 0;
	int i;

	for (i = 0; i < 8; i++) {
		h = (h << 8) | a->b[i];
		l = (l << 8) | a->b[i + 8];
	}
	*hi = h;
	*lo = l;
}
