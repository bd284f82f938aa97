/*
 * origins.c - origin allow lists: exact origins (scheme, host, port) and
 * ".suffix" domains, and the check of a request's Origin against them.
 */
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ORIGIN_SCHEME_MAX 32
#define ORIGIN_HOST_MAX 253	/* DNS name limit; "[v6]" is shorter */
#define ORIGINS_MAX_ITEMS 10000u

enum { ORIGIN_EXACT = 0, ORIGIN_SUFFIX = 1 };

/* One parsed origin, or one list item: scheme and host lower-cased, a
 * default port (80 for http/ws, 443 for https/wss) dropped to 0. */
struct origin {
	uint8_t kind;
	uint8_t host_is_ip;	/* IPv4 / [IPv6] host: no suffix matching */
	uint16_t port;		/* 0 = default / none */
	uint8_t scheme_len;
	uint16_t host_len;
	char scheme[ORIGIN_SCHEME_MAX + 1];
	char host[ORIGIN_HOST_MAX + 1];
};

struct gk_origins {
	struct origin *item;
	size_t n, alloc;
	size_t count;		/* items in the list, "*" included */
	int any;		/* "*" was listed */
};

static int
is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static char
lower(uint8_t c)
{
	return (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
}

/*
 * Checks a DNS-style host name (letters, digits, '-', '_', dots between
 * non-empty labels, 1..253 bytes) and copies it lower-cased. *numeric is
 * set when the last label is all digits (an IPv4-looking host).
 */
static int
host_name_parse(gk_slice h, char *out, int *numeric)
{
	size_t i, label = 0;
	int digits_only = 1;

	if (h.len == 0 || h.len > ORIGIN_HOST_MAX)
		return GK_ERR_INVALID;
	for (i = 0; i < h.len; i++) {
		uint8_t c = h.p[i];

		if (c == '.') {
			if (label == 0)
				return GK_ERR_INVALID;
			label = 0;
			digits_only = 1;
		} else if (is_alpha(c) || is_digit(c) || c == '-' ||
		    c == '_') {
			label++;
			if (!is_digit(c))
				digits_only = 0;
		} else {
			return GK_ERR_INVALID;
		}
		out[i] = lower(c);
	}
	if (label == 0)
		return GK_ERR_INVALID;	/* trailing dot */
	out[h.len] = '\0';
	*numeric = digits_only;
	return 0;
}

/* Port: 1..5 digits, no leading zero, 1..65535. */
static int
port_parse(gk_slice s, uint16_t *out)
{
	unsigned v = 0;
	size_t i;

	if (s.len == 0 || s.len > 5 || s.p[0] == '0')
		return GK_ERR_INVALID;
	for (i = 0; i < s.len; i++) {
		if (!is_digit(s.p[i]))
			return GK_ERR_INVALID;
		v = v * 10 + (unsigned)(s.p[i] - '0');
	}
	if (v > 65535)
		return GK_ERR_INVALID;
	*out = (uint16_t)v;
	return 0;
}

static unsigned
default_port(const char *scheme)
{
	if (strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0)
		return 80;
	if (strcmp(scheme, "https") == 0 || strcmp(scheme, "wss") == 0)
		return 443;
	return 0;
}

/*
 * Parses a serialized origin "scheme://host[:port]": scheme per RFC 3986
 * (1..32 bytes), host a DNS-style name, dotted quad or [IPv6] literal.
 * Anything else (path, query, userinfo, spaces, control bytes, empty port,
 * port 0 or with a leading zero) is GK_ERR_INVALID.
 */
static int
origin_parse(gk_slice s, struct origin *o)
{
	char tmp[INET6_ADDRSTRLEN];
	struct in6_addr v6;
	size_t i, n;
	gk_slice h;
	int numeric = 0;

	memset(o, 0, sizeof(*o));
	o->kind = ORIGIN_EXACT;
	if (s.p == NULL || s.len == 0)
		return GK_ERR_INVALID;
	/* scheme */
	for (i = 0; i < s.len && s.p[i] != ':'; i++) {
		uint8_t c = s.p[i];

		if (i >= ORIGIN_SCHEME_MAX)
			return GK_ERR_INVALID;
		if (!is_alpha(c) && (i == 0 || (!is_digit(c) && c != '+' &&
		    c != '-' && c != '.')))
			return GK_ERR_INVALID;
		o->scheme[i] = lower(c);
	}
	if (i == 0 || s.len - i < 3 || memcmp(s.p + i, "://", 3) != 0)
		return GK_ERR_INVALID;
	o->scheme_len = (uint8_t)i;
	o->scheme[i] = '\0';
	s = gk_slice_of(s.p + i + 3, s.len - i - 3);
	/* host */
	if (s.len > 0 && s.p[0] == '[') {
		const uint8_t *end = memchr(s.p, ']', s.len);

		if (end == NULL)
			return GK_ERR_INVALID;
		n = (size_t)(end - s.p) - 1;
		if (n == 0 || n >= sizeof(tmp))
			return GK_ERR_INVALID;
		for (i = 0; i < n; i++) {
			uint8_t c = s.p[1 + i];

			if (!is_digit(c) && !(lower(c) >= 'a' &&
			    lower(c) <= 'f') && c != ':' && c != '.')
				return GK_ERR_INVALID;
			tmp[i] = (char)c;
		}
		tmp[n] = '\0';
		if (inet_pton(AF_INET6, tmp, &v6) != 1 ||
		    inet_ntop(AF_INET6, &v6, tmp, sizeof(tmp)) == NULL)
			return GK_ERR_INVALID;
		o->host_len = (uint16_t)snprintf(o->host, sizeof(o->host),
		    "[%s]", tmp);
		o->host_is_ip = 1;
		n += 2;
	} else {
		for (n = 0; n < s.len && s.p[n] != ':'; n++)
			;
		h = gk_slice_of(s.p, n);
		if (host_name_parse(h, o->host, &numeric) != 0)
			return GK_ERR_INVALID;
		o->host_len = (uint16_t)n;
		if (numeric) {
			/* Browsers serialize IPv4 hosts as dotted quads. */
			uint8_t v4[4];

			if (n >= sizeof(tmp))
				return GK_ERR_INVALID;
			memcpy(tmp, o->host, n + 1);
			if (inet_pton(AF_INET, tmp, v4) != 1)
				return GK_ERR_INVALID;
			o->host_is_ip = 1;
		}
	}
	s = gk_slice_of(s.p + n, s.len - n);
	/* port */
	if (s.len > 0) {
		if (s.p[0] != ':' ||
		    port_parse(gk_slice_of(s.p + 1, s.len - 1), &o->port) != 0)
			return GK_ERR_INVALID;
		if (o->port == default_port(o->scheme))
			o->port = 0;
	}
	return 0;
}

/*
 * ".example.com": a leading dot, then a host name that is not numeric. At
 * most ORIGIN_HOST_MAX - 1 bytes, so that some host ("a.example.com") can
 * still match it.
 */
static int
suffix_parse(gk_slice s, struct origin *o)
{
	int numeric = 0;

	memset(o, 0, sizeof(*o));
	o->kind = ORIGIN_SUFFIX;
	if (s.len < 2 || s.p[0] != '.' || s.len > ORIGIN_HOST_MAX - 1)
		return GK_ERR_INVALID;
	o->host[0] = '.';
	if (host_name_parse(gk_slice_of(s.p + 1, s.len - 1), o->host + 1,
	    &numeric) != 0 || numeric)
		return GK_ERR_INVALID;
	o->host_len = (uint16_t)s.len;
	return 0;
}

static int
origins_push(gk_origins *o, const struct origin *it)
{
	struct origin *n;
	size_t na, bytes;

	if (o->n == o->alloc) {
		if (o->alloc >= ORIGINS_MAX_ITEMS)
			return GK_ERR_TOO_LARGE;
		na = o->alloc == 0 ? 8 : o->alloc * 2;
		if (na > ORIGINS_MAX_ITEMS)
			na = ORIGINS_MAX_ITEMS;
		if (gk_mul_size(na, sizeof(*n), &bytes) != 0)
			return GK_ERR_TOO_LARGE;
		if ((n = realloc(o->item, bytes)) == NULL)
			return GK_ERR_NOMEM;
		o->item = n;
		o->alloc = na;
	}
	o->item[o->n++] = *it;
	return 0;
}

struct origin_list_arg {
	gk_origins *o;
	char *err;
	size_t errlen;
};

static int
origin_list_item(void *arg, gk_slice item)
{
	struct origin_list_arg *a = arg;
	struct origin it;
	int r = GK_ERR_INTERNAL;

	if (a->o->count >= ORIGINS_MAX_ITEMS) {
		r = GK_ERR_TOO_LARGE;
		policy_set_err(a->err, a->errlen, "too many origins");
		goto out;
	}
	if (item.len == 1 && item.p[0] == '*') {
		a->o->any = 1;
	} else {
		if (item.p[0] == '.')
			r = suffix_parse(item, &it);
		else
			r = origin_parse(item, &it);
		if (r != 0) {
			r = GK_ERR_INVALID;
			policy_item_err(a->err, a->errlen, "origin", item);
			goto out;
		}
		if ((r = origins_push(a->o, &it)) != 0) {
			policy_set_err(a->err, a->errlen, gk_err_str(r));
			goto out;
		}
	}
	a->o->count++;
	r = 0;
out:
	return r;
}

int
policy_origins_new(const char *list, gk_origins **out, char *err,
    size_t errlen)
{
	struct origin_list_arg a;
	gk_origins *o = NULL;
	int r = GK_ERR_INTERNAL;

	if (out == NULL)
		return GK_ERR_INVALID;
	*out = NULL;
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		r = GK_ERR_NOMEM;
		policy_set_err(err, errlen, gk_err_str(r));
		goto out;
	}
	a.o = o;
	a.err = err;
	a.errlen = errlen;
	if ((r = policy_list_each(list, origin_list_item, &a)) != 0)
		goto out;
	*out = o;
	o = NULL; /* transferred */
	r = 0;
out:
	policy_origins_free(o);
	return r;
}

void
policy_origins_free(gk_origins *o)
{
	if (o == NULL)
		return;
	free(o->item);
	free(o);
}

int
policy_origins_allowed(const gk_origins *o, gk_slice origin)
{
	struct origin got;
	const struct origin *it;
	size_t i;

	if (o == NULL || gk_slice_eq_str(origin, "null"))
		return 0;
	if (origin_parse(origin, &got) != 0)
		return 0;
	if (o->any)
		return 1;
	for (i = 0; i < o->n; i++) {
		it = &o->item[i];
		if (it->kind == ORIGIN_SUFFIX) {
			if (!got.host_is_ip && got.host_len > it->host_len &&
			    memcmp(got.host + got.host_len - it->host_len,
			    it->host, it->host_len) == 0)
				return 1;
		} else if (it->port == got.port &&
		    it->scheme_len == got.scheme_len &&
		    it->host_len == got.host_len &&
		    memcmp(it->scheme, got.scheme, got.scheme_len) == 0 &&
		    memcmp(it->host, got.host, got.host_len) == 0) {
			return 1;
		}
	}
	return 0;
}

size_t
policy_origins_count(const gk_origins *o)
{
	return o == NULL ? 0 : o->count;
}

