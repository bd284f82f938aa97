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

/* Longest textual address inet_pton accepts (INET6_ADDRSTRLEN - 1). */
#define ADDR_TEXT_MAX 45

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

/*
 * Parses an address; *is_v4_text tells whether it was written as a dotted
 * quad (no ':'), which decides how a CIDR prefix length is read.
 */
static int
addr_parse(gk_slice s, gk_addr *out, int *is_v4_text)
{
	char tmp[ADDR_TEXT_MAX + 1];
	uint8_t v4[4];
	struct in6_addr v6;

	if (s.len == 0 || s.len > ADDR_TEXT_MAX || s.p == NULL)
		return GK_ERR_INVALID;
	if (memchr(s.p, '\0', s.len) != NULL)
		return GK_ERR_INVALID;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	if (memchr(tmp, ':', s.len) == NULL) {
		/* glibc rejects leading zeros ("01.2.3.4"): ambiguous octal. */
		if (inet_pton(AF_INET, tmp, v4) != 1)
			return GK_ERR_INVALID;
		addr_set_v4(out, v4);
		*is_v4_text = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, &v6) != 1)
		return GK_ERR_INVALID;
	memcpy(out->b, &v6, 16);
	*is_v4_text = 0;
	return 0;
}

int
policy_addr_parse(gk_slice s, gk_addr *out)
{
	gk_addr a;
	int v4 = 0;
	int r;

	if (out == NULL)
		return GK_ERR_INVALID;
	if ((r = addr_parse(s, &a, &v4)) != 0)
		return r;
	*out = a;
	return 0;
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

/* Prefix length: 1-3 decimal digits, no sign, no leading zero, <= max. */
static int
parse_prefix_len(gk_slice s, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (s.len == 0 || s.len > 3)
		return GK_ERR_INVALID;
	if (s.len > 1 && s.p[0] == '0')
		return GK_ERR_INVALID;
	for (i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return GK_ERR_INVALID;
		v = v * 10 + (unsigned)(s.p[i] - '0');
	}
	if (v > max)
		return GK_ERR_INVALID;
	*out = v;
	return 0;
}

int
policy_cidr_parse(gk_slice s, gk_addr *net, unsigned *bits)
{
	const uint8_t *slash;
	gk_slice as, ps;
	gk_addr a;
	unsigned n = 128, i;
	int v4 = 0;
	int r = GK_ERR_INTERNAL;

	if (net == NULL || bits == NULL || s.p == NULL || s.len == 0)
		return GK_ERR_INVALID;
	slash = memchr(s.p, '/', s.len);
	as = s;
	if (slash != NULL) {
		as.len = (size_t)(slash - s.p);
		ps = gk_slice_of(slash + 1, s.len - as.len - 1);
	}
	if ((r = addr_parse(as, &a, &v4)) != 0)
		goto out;
	if (slash != NULL) {
		if ((r = parse_prefix_len(ps, v4 ? 32 : 128, &n)) != 0)
			goto out;
		if (v4)
			n += 96;
	}
	/* Host bits below the prefix must be clear. */
	for (i = n; i < 128; i++) {
		if (a.b[i / 8] & (0x80u >> (i % 8))) {
			r = GK_ERR_INVALID;
			goto out;
		}
	}
	*net = a;
	*bits = n;
	r = 0;
out:
	return r;
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
