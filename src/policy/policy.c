/*
 * policy.c - CIDR sets (a path-compressed binary trie over 128-bit
 * addresses), origin allow lists and the v1 ACL decision.
 *
 * The trie: every node holds a prefix (key + length). A node is terminal
 * when the prefix itself was added; a non-terminal node only exists where
 * two subtrees diverge, so a set of n prefixes has at most 2n nodes and the
 * depth is at most 129 (lengths strictly grow on the way down). Nodes live
 * in one array and link by 32-bit index (0 = none); lookup compares a
 * node's prefix with two masked 64-bit XORs, so a lookup is O(128) steps of
 * O(1) whatever the set size.
 */
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

/* ---- lists ----------------------------------------------------------- */

/* How much of a bad item an error message shows. */

typedef int (*item_fn)(void *arg, gk_slice item);

static int
is_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Calls fn for each item of a list separated by commas, spaces, tabs and
 * newlines (CR counts as a newline). Empty items are skipped; '#' starts a
 * comment that runs to the end of the line, wherever it appears. A NULL
 * list is empty. Stops at and returns fn's first non-zero result.
 */
static int
list_each(const char *list, item_fn fn, void *arg)
{
	const char *p = list, *start;
	int r;

	if (list == NULL)
		return 0;
	while (*p != '\0') {
		if (*p == '#') {
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (is_list_sep(*p)) {
			p++;
			continue;
		}
		start = p;
		while (*p != '\0' && *p != '#' && !is_list_sep(*p))
			p++;
		if ((r = fn(arg, gk_slice_of(start, (size_t)(p - start)))) != 0)
			return r;
	}
	return 0;
}

int
policy_list_each(const char *list, int (*fn)(void *arg, gk_slice item),
    void *arg)
{
	return list_each(list, fn, arg);
}

void
policy_show_item(gk_slice item, char out[POLICY_SHOW_MAX + 4])
{
	size_t i, n;

	n = item.len < POLICY_SHOW_MAX ? item.len : POLICY_SHOW_MAX;
	for (i = 0; i < n; i++) {
		uint8_t ch = item.p[i];

		out[i] = (ch >= 0x20 && ch < 0x7f && ch != '\'') ?
		    (char)ch : '?';
	}
	if (item.len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* Writes "bad WHAT 'ITEM'", the item shown safely. */
static void
set_item_err(char *err, size_t errlen, const char *what, gk_slice item)
{
	char shown[POLICY_SHOW_MAX + 4];

	if (err == NULL || errlen == 0)
		return;
	policy_show_item(item, shown);
	snprintf(err, errlen, "bad %s '%s'", what, shown);
}

static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* ---- CIDR trie ------------------------------------------------------- */

/* Named caps: at most this many prefixes per set (each adds <= 2 nodes). */
#define CIDRS_MAX_ENTRIES (1u << 22)
#define CIDRS_MAX_NODES (2u * CIDRS_MAX_ENTRIES + 2u)
#define CIDRS_FIRST_ALLOC 64u

struct cidr_node {
	uint64_t hi, lo;	/* prefix, host bits clear */
	uint32_t child[2];	/* by the bit just below the prefix */
	uint8_t bits;		/* prefix length 0..128 */
	uint8_t term;		/* this prefix was added */
};

/*
 * The optional index (policy_cidrs_optimize): for each /16 block of IPv4
 * and of IPv6 space, where a lookup in that block may start: INDEX_COVERED
 * when a listed prefix covers the whole block, 0 when nothing in the set
 * can match it, else the deepest node every address of the block passes.
 * It skips the first ~16 levels of a big set, so a lookup in 100,000
 * entries costs about what it costs in 10.
 */
#define INDEX_BITS 16u
#define INDEX_SIZE (1u << INDEX_BITS)
#define INDEX_MIN_ENTRIES 256u
#define INDEX_COVERED 0x80000000u

struct gk_cidrs {
	struct cidr_node *node;	/* node[0] unused: index 0 means none */
	uint32_t used;		/* nodes in use, counting node[0] */
	uint32_t alloc;
	uint32_t root;
	size_t count;		/* prefixes added */
	uint32_t *index4;	/* by IPv4 bits 0..15 (bits 96..111) */
	uint32_t *index6;	/* by bits 0..15 */
};

static void
key_of(const gk_addr *a, uint64_t *hi, uint64_t *lo)
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

/* Top n bits of a 64-bit word set, n in 0..64. */
static uint64_t
mask64(unsigned n)
{
	if (n == 0)
		return 0;
	if (n >= 64)
		return ~(uint64_t)0;
	return ~(uint64_t)0 << (64 - n);
}

/* 1 if the first n bits of (h1,l1) and (h2,l2) agree. */
static int
prefix_eq(uint64_t h1, uint64_t l1, uint64_t h2, uint64_t l2, unsigned n)
{
	return ((h1 ^ h2) & mask64(n)) == 0 &&
	    ((l1 ^ l2) & mask64(n > 64 ? n - 64 : 0)) == 0;
}

/* Number of leading bits on which two keys agree, 0..128. */
static unsigned
common_bits(uint64_t h1, uint64_t l1, uint64_t h2, uint64_t l2)
{
	if (h1 != h2)
		return (unsigned)__builtin_clzll(h1 ^ h2);
	if (l1 != l2)
		return 64u + (unsigned)__builtin_clzll(l1 ^ l2);
	return 128;
}

/* Bit i (0 = most significant), i in 0..127. */
static unsigned
bit_at(uint64_t hi, uint64_t lo, unsigned i)
{
	if (i < 64)
		return (unsigned)(hi >> (63 - i)) & 1u;
	return (unsigned)(lo >> (127 - i)) & 1u;
}

int
policy_cidrs_new(gk_cidrs **out)
{
	gk_cidrs *c;

	if (out == NULL)
		return GK_ERR_INVALID;
	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->used = 1;
	*out = c;
	return 0;
}

void
policy_cidrs_free(gk_cidrs *c)
{
	if (c == NULL)
		return;
	free(c->index4);
	free(c->index6);
	free(c->node);
	free(c);
}

/* Makes room for extra more nodes. */
static int
cidrs_reserve(gk_cidrs *c, uint32_t extra)
{
	struct cidr_node *n;
	size_t want, bytes;
	uint32_t na;

	want = (size_t)c->used + extra;
	if (want <= c->alloc)
		return 0;
	if (want > CIDRS_MAX_NODES)
		return GK_ERR_TOO_LARGE;
	na = c->alloc == 0 ? CIDRS_FIRST_ALLOC : c->alloc;
	while (na < want)
		na = na > CIDRS_MAX_NODES / 2 ? CIDRS_MAX_NODES : na * 2;
	if (gk_mul_size(na, sizeof(*n), &bytes) != 0)
		return GK_ERR_TOO_LARGE;
	if ((n = realloc(c->node, bytes)) == NULL)
		return GK_ERR_NOMEM;
	c->node = n;
	c->alloc = na;
	return 0;
}

/* Takes a node from the reserved room. */
static uint32_t
cidrs_node(gk_cidrs *c, uint64_t hi, uint64_t lo, unsigned bits, int term)
{
	uint32_t i = c->used++;
	struct cidr_node *n = &c->node[i];

	n->hi = hi & mask64(bits);
	n->lo = lo & mask64(bits > 64 ? bits - 64 : 0);
	n->child[0] = n->child[1] = 0;
	n->bits = (uint8_t)bits;
	n->term = term ? 1 : 0;
	return i;
}

/* Inserts a prefix whose host bits are clear. */
static int
cidrs_insert(gk_cidrs *c, uint64_t hi, uint64_t lo, unsigned bits)
{
	uint32_t *link, s, leaf;
	struct cidr_node *n;
	unsigned cl, lim;
	int r = GK_ERR_INTERNAL;

	if (bits > 128)
		return GK_ERR_INVALID;
	if (c->count >= CIDRS_MAX_ENTRIES)
		return GK_ERR_TOO_LARGE;
	/* the index describes the set as it was: drop it */
	free(c->index4);
	free(c->index6);
	c->index4 = c->index6 = NULL;
	/* At most two new nodes: no reallocation while links are held. */
	if ((r = cidrs_reserve(c, 2)) != 0)
		goto out;
	link = &c->root;
	for (;;) {
		if (*link == 0) {
			*link = cidrs_node(c, hi, lo, bits, 1);
			break;
		}
		n = &c->node[*link];
		lim = n->bits < bits ? n->bits : bits;
		cl = common_bits(hi, lo, n->hi, n->lo);
		if (cl > lim)
			cl = lim;
		if (cl == n->bits) {
			/* n's prefix covers the new one. */
			if (n->term)
				break;	/* already covered */
			if (n->bits == bits) {
				n->term = 1;
				/* Everything below is now covered. */
				n->child[0] = n->child[1] = 0;
				break;
			}
			link = &n->child[bit_at(hi, lo, n->bits)];
			continue;
		}
		if (cl == bits) {
			/* The new prefix covers n: it takes n's place. */
			s = cidrs_node(c, hi, lo, bits, 1);
			*link = s;
			break;
		}
		/* They diverge at bit cl: a branch node over both. */
		s = cidrs_node(c, hi, lo, cl, 0);
		leaf = cidrs_node(c, hi, lo, bits, 1);
		c->node[s].child[bit_at(hi, lo, cl)] = leaf;
		c->node[s].child[bit_at(n->hi, n->lo, cl)] = *link;
		*link = s;
		break;
	}
	c->count++;
	r = 0;
out:
	return r;
}

int
policy_cidrs_add(gk_cidrs *c, gk_slice cidr)
{
	gk_addr net;
	unsigned bits;
	uint64_t hi, lo;
	int r = GK_ERR_INTERNAL;

	if (c == NULL)
		return GK_ERR_INVALID;
	if ((r = policy_cidr_parse(cidr, &net, &bits)) != 0)
		goto out;
	key_of(&net, &hi, &lo);
	r = cidrs_insert(c, hi, lo, bits);
out:
	return r;
}

struct cidr_list_arg {
	gk_cidrs *c;
	char *err;
	size_t errlen;
};

static int
cidr_list_item(void *arg, gk_slice item)
{
	struct cidr_list_arg *a = arg;
	int r;

	if ((r = policy_cidrs_add(a->c, item)) == GK_ERR_INVALID)
		set_item_err(a->err, a->errlen, "CIDR", item);
	else if (r != 0)
		set_err(a->err, a->errlen, gk_err_str(r));
	return r;
}

int
policy_cidrs_add_list(gk_cidrs *c, const char *list, char *err,
    size_t errlen)
{
	struct cidr_list_arg a = { c, err, errlen };

	if (c == NULL)
		return GK_ERR_INVALID;
	return list_each(list, cidr_list_item, &a);
}

/* Where a lookup of any address whose first len bits are (hi, lo) may
 * start (see INDEX_COVERED above). */
static uint32_t
index_start(const gk_cidrs *c, uint64_t hi, uint64_t lo, unsigned len)
{
	const struct cidr_node *n;
	uint32_t i = c->root;

	while (i != 0) {
		n = &c->node[i];
		if (n->bits > len)
			return prefix_eq(hi, lo, n->hi, n->lo, len) ? i : 0;
		if (!prefix_eq(hi, lo, n->hi, n->lo, n->bits))
			return 0;
		if (n->term)
			return INDEX_COVERED;
		if (n->bits == len)
			return i;
		i = n->child[bit_at(hi, lo, n->bits)];
	}
	return 0;
}

int
policy_cidrs_optimize(gk_cidrs *c)
{
	uint32_t *i4 = NULL, *i6 = NULL, k;

	if (c == NULL)
		return GK_ERR_INVALID;
	if (c->count < INDEX_MIN_ENTRIES || c->index4 != NULL)
		return 0;
	if ((i4 = malloc(INDEX_SIZE * sizeof(*i4))) == NULL ||
	    (i6 = malloc(INDEX_SIZE * sizeof(*i6))) == NULL) {
		free(i4);
		return GK_ERR_NOMEM;
	}
	for (k = 0; k < INDEX_SIZE; k++) {
		/* ::ffff:k.k.0.0 and k::, with the block's 16 bits */
		i4[k] = index_start(c, 0, 0x0000ffff00000000ull |
		    ((uint64_t)k << 16), 96 + INDEX_BITS);
		i6[k] = index_start(c, (uint64_t)k << 48, 0, INDEX_BITS);
	}
	c->index4 = i4;
	c->index6 = i6;
	return 0;
}

int
policy_cidrs_contains(const gk_cidrs *c, const gk_addr *a)
{
	const struct cidr_node *n;
	uint64_t hi, lo;
	uint32_t i;

	if (c == NULL || a == NULL)
		return 0;
	key_of(a, &hi, &lo);
	i = c->root;
	if (c->index4 != NULL) {
		if (hi == 0 && (lo >> 32) == 0xffffu)
			i = c->index4[(lo >> 16) & 0xffffu];
		else
			i = c->index6[hi >> 48];
		if (i == INDEX_COVERED)
			return 1;
	}
	for (; i != 0; i = n->child[bit_at(hi, lo, n->bits)]) {
		n = &c->node[i];
		if (!prefix_eq(hi, lo, n->hi, n->lo, n->bits))
			return 0;
		if (n->term)
			return 1;
		if (n->bits >= 128)
			return 0;
	}
	return 0;
}

size_t
policy_cidrs_count(const gk_cidrs *c)
{
	return c == NULL ? 0 : c->count;
}

/* ---- origins --------------------------------------------------------- */

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
		set_err(a->err, a->errlen, "too many origins");
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
			set_item_err(a->err, a->errlen, "origin", item);
			goto out;
		}
		if ((r = origins_push(a->o, &it)) != 0) {
			set_err(a->err, a->errlen, gk_err_str(r));
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
		set_err(err, errlen, gk_err_str(r));
		goto out;
	}
	a.o = o;
	a.err = err;
	a.errlen = errlen;
	if ((r = list_each(list, origin_list_item, &a)) != 0)
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

/* ---- the v1 ACL ------------------------------------------------------ */

/* struct gk_policy is in policy_int.h */

/* Builds one CIDR set from a setting; err gets "NAME: problem". */
static int
policy_load_cidrs(const char *name, const char *list, gk_cidrs **out,
    char *err, size_t errlen)
{
	char e[160];
	gk_cidrs *c = NULL;
	int r = GK_ERR_INTERNAL;

	e[0] = '\0';
	if ((r = policy_cidrs_new(&c)) != 0) {
		set_err(e, sizeof(e), gk_err_str(r));
		goto out;
	}
	if ((r = policy_cidrs_add_list(c, list, e, sizeof(e))) != 0)
		goto out;
	*out = c;
	c = NULL; /* transferred */
	r = 0;
out:
	if (r != 0 && err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", name, e);
	policy_cidrs_free(c);
	return r;
}

struct file_arg {
	gk_cidrs *c;
	size_t *n;
	char *err;
	size_t errlen;
};

static int
file_item(void *arg, gk_slice item)
{
	struct file_arg *a = arg;
	char path[4097];

	if (item.len >= sizeof(path) || memchr(item.p, '\0', item.len)) {
		set_item_err(a->err, a->errlen, "file name", item);
		return GK_ERR_INVALID;
	}
	memcpy(path, item.p, item.len);
	path[item.len] = '\0';
	(*a->n)++;
	return policy_cidrs_add_file(a->c, path, a->err, a->errlen);
}

/* Adds the list files to the allow and deny sets. */
static int
policy_load_files(gk_policy *p, const struct gk_config *cfg, char *err,
    size_t errlen)
{
	struct file_arg a;
	char e[512];
	int r;

	e[0] = '\0';
	a.err = e;
	a.errlen = sizeof(e);
	a.c = p->allow;
	a.n = &p->allow_files;
	if ((r = cfg_list_each(cfg->ip_allow_files, file_item, &a)) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "ip_allow_files: %s", e);
		return r == GK_ERR_INVALID ? GK_ERR_CONFIG : r;
	}
	a.c = p->deny;
	a.n = &p->deny_files;
	if ((r = cfg_list_each(cfg->ip_deny_files, file_item, &a)) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "ip_deny_files: %s", e);
		return r == GK_ERR_INVALID ? GK_ERR_CONFIG : r;
	}
	return 0;
}

int
policy_new(const struct gk_config *cfg, gk_policy **out, char *err,
    size_t errlen)
{
	gk_policy *p = NULL;
	char e[160];
	int r = GK_ERR_INTERNAL;

	if (out == NULL)
		return GK_ERR_INVALID;
	*out = NULL;
	if (cfg == NULL) {
		r = GK_ERR_INVALID;
		set_err(err, errlen, "no configuration");
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		r = GK_ERR_NOMEM;
		set_err(err, errlen, gk_err_str(r));
		goto out;
	}
	atomic_init(&p->refs, 1);
	p->uploads_exempt_ip = cfg->uploads_exempt_ip != 0;
	p->allow_missing_origin = cfg->allow_missing_origin != 0;
	if ((r = policy_load_cidrs("ip_allow", cfg->ip_allow, &p->allow, err,
	    errlen)) != 0 ||
	    (r = policy_load_cidrs("ip_deny", cfg->ip_deny, &p->deny, err,
	    errlen)) != 0 ||
	    (r = policy_load_cidrs("admin_cidrs", cfg->admin_cidrs, &p->admin,
	    err, errlen)) != 0)
		goto out;
	e[0] = '\0';
	if ((r = policy_origins_new(cfg->origins, &p->origins, e,
	    sizeof(e))) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "origins: %s", e);
		goto out;
	}
	if ((r = policy_load_files(p, cfg, err, errlen)) != 0 ||
	    (r = policy_load_cidrs("trusted_proxies", cfg->trusted_proxies,
	    &p->trusted, err, errlen)) != 0 ||
	    (r = policy_load_cidrs("[rate] exempt", cfg->rate_exempt,
	    &p->rate_exempt, err, errlen)) != 0 ||
	    (r = policy_geo_load(p, cfg, err, errlen)) != 0)
		goto out;
	if ((r = policy_cidrs_optimize(p->allow)) != 0 ||
	    (r = policy_cidrs_optimize(p->deny)) != 0) {
		set_err(err, errlen, gk_err_str(r));
		goto out;
	}
	if (cfg->forwarded_header == NULL ||
	    strcasecmp(cfg->forwarded_header, "x-forwarded-for") == 0) {
		p->use_forwarded = 0;
	} else if (strcasecmp(cfg->forwarded_header, "forwarded") == 0) {
		p->use_forwarded = 1;
	} else {
		r = GK_ERR_CONFIG;
		set_err(err, errlen, "forwarded_header must be x-forwarded-for "
		    "or forwarded");
		goto out;
	}
	p->rate_rps = cfg->rate_rps;
	p->rate_burst = cfg->rate_burst;
	p->rate_denied_pm = cfg->rate_denied_per_min;
	p->rate_denied_burst = cfg->rate_denied_burst;
	p->rate_v6_48_factor = cfg->rate_v6_48_factor;
	*out = p;
	p = NULL; /* transferred */
	r = 0;
out:
	policy_free(p);
	if (r == GK_ERR_INVALID && cfg != NULL)
		r = GK_ERR_CONFIG;
	return r;
}

void
policy_free(gk_policy *p)
{
	if (p == NULL)
		return;
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	policy_geo_release(p);
	policy_cidrs_free(p->trusted);
	policy_cidrs_free(p->rate_exempt);
	policy_cidrs_free(p->allow);
	policy_cidrs_free(p->deny);
	policy_cidrs_free(p->admin);
	policy_origins_free(p->origins);
	free(p);
}

gk_policy *
policy_ref(gk_policy *p)
{
	if (p != NULL)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

int
policy_check_ip(const gk_policy *p, const gk_addr *a, int is_upload)
{
	const char *rule;

	return policy_check_ip_rule(p, a, is_upload, &rule);
}

int
policy_check_ip_rule(const gk_policy *p, const gk_addr *a, int is_upload,
    const char **rule)
{
	*rule = "no policy";
	if (p == NULL || a == NULL)
		return GK_ERR_DENIED;
	/* deny wins, also for uploads: they skip only the allow list */
	if (policy_cidrs_contains(p->deny, a)) {
		*rule = "ip_deny";
		return GK_ERR_DENIED;
	}
	if (is_upload && p->uploads_exempt_ip) {
		*rule = "uploads exempt from ip_allow";
		return 0;
	}
	if (!policy_cidrs_contains(p->allow, a)) {
		*rule = "not in ip_allow";
		return GK_ERR_DENIED;
	}
	*rule = "ip_allow";
	return 0;
}

int
policy_check_origin(const gk_policy *p, gk_slice origin, int present)
{
	if (p == NULL)
		return GK_ERR_DENIED;
	if (!present)
		return p->allow_missing_origin ? 0 : GK_ERR_DENIED;
	return policy_origins_allowed(p->origins, origin) ? 0 : GK_ERR_DENIED;
}

int
policy_check_admin(const gk_policy *p, const gk_addr *a)
{
	if (p == NULL || a == NULL)
		return GK_ERR_DENIED;
	return policy_cidrs_contains(p->admin, a) ? 0 : GK_ERR_DENIED;
}
