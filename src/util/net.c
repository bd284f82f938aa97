/* net.c - IP addresses and CIDR text, HTTP lexical classes. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

/* ---- addresses ---------------------------------------------------------- */

/* Longest textual address inet_pton accepts (INET6_ADDRSTRLEN - 1). */
#define ADDR_TEXT_MAX 45

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0xff, 0xff };

/*
 * Parses an address; *is_v4_text tells whether it was written as a dotted
 * quad (no ':'), which decides how a CIDR prefix length is read.
 */
static int
ip_parse(gk_slice s, uint8_t out[16], int *is_v4_text)
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
		memcpy(out, v4_mapped, sizeof(v4_mapped));
		memcpy(out + 12, v4, 4);
		*is_v4_text = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, &v6) != 1)
		return GK_ERR_INVALID;
	memcpy(out, &v6, 16);
	*is_v4_text = 0;
	return 0;
}

int
gk_ip_parse(gk_slice s, uint8_t out[16])
{
	uint8_t a[16];
	int v4 = 0;

	if (ip_parse(s, a, &v4) != 0)
		return GK_ERR_INVALID;
	memcpy(out, a, 16);
	return 0;
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
gk_cidr_parse(gk_slice s, uint8_t addr[16], unsigned *bits)
{
	const uint8_t *slash;
	gk_slice as = s;
	uint8_t a[16];
	unsigned n = 128;
	int v4 = 0;

	if (s.p == NULL || s.len == 0)
		return GK_ERR_INVALID;
	slash = memchr(s.p, '/', s.len);
	if (slash != NULL)
		as.len = (size_t)(slash - s.p);
	if (ip_parse(as, a, &v4) != 0)
		return GK_ERR_INVALID;
	if (slash != NULL) {
		if (parse_prefix_len(gk_slice_of(slash + 1, s.len - as.len - 1),
		    v4 ? 32 : 128, &n) != 0)
			return GK_ERR_INVALID;
		if (v4)
			n += 96;
	}
	memcpy(addr, a, 16);
	*bits = n;
	return 0;
}

/* ---- HTTP lexical classes ----------------------------------------------- */

int
gk_http_is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
gk_http_is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

gk_slice
gk_http_trim_ows(gk_slice s)
{
	while (s.len > 0 && gk_http_is_ows(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && gk_http_is_ows(s.p[s.len - 1]))
		s.len--;
	return s;
}
