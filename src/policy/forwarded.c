/*
 * forwarded.c - the client address behind trusted proxies: parsers for
 * X-Forwarded-For and Forwarded (RFC 7239) and the rightmost-untrusted
 * selection. Both headers are untrusted input (fuzzed).
 */
#include "policy/policy_int.h"

#include <string.h>


/* Named caps: elements per header, bytes of one node value. */
#define FWD_MAX_ELEMENTS 256
#define FWD_NODE_MAX 64

static int
port_ok(gk_slice s)
{
	size_t i;

	if (s.len == 0 || s.len > 5)
		return 0;
	for (i = 0; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return 0;
	return 1;
}

/*
 * A node: "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]",
 * "[2001:db8::1]:80". 0 on success.
 */
static int
node_parse(gk_slice s, gk_addr *out)
{
	const uint8_t *rb, *colon;
	size_t colons = 0, i;

	if (s.len == 0)
		return GK_ERR_INVALID;
	if (s.p[0] == '[') {
		rb = memchr(s.p, ']', s.len);
		if (rb == NULL)
			return GK_ERR_INVALID;
		i = (size_t)(rb - s.p) + 1;
		if (i < s.len && !(s.p[i] == ':' &&
		    port_ok(gk_slice_of(s.p + i + 1, s.len - i - 1))))
			return GK_ERR_INVALID;
		s = gk_slice_of(s.p + 1, (size_t)(rb - s.p) - 1);
		if (memchr(s.p, ':', s.len) == NULL)
			return GK_ERR_INVALID;	/* brackets are for v6 */
		return policy_addr_parse(s, out);
	}
	for (i = 0; i < s.len; i++)
		colons += s.p[i] == ':';
	if (colons == 1) {
		colon = memchr(s.p, ':', s.len);
		i = (size_t)(colon - s.p);
		if (!port_ok(gk_slice_of(colon + 1, s.len - i - 1)))
			return GK_ERR_INVALID;
		s.len = i;
		if (memchr(s.p, '.', s.len) == NULL)
			return GK_ERR_INVALID;
	}
	return policy_addr_parse(s, out);
}

static int
emit(policy_fwd_fn fn, void *arg, size_t *n, gk_slice node)
{
	gk_addr a;
	int ok;

	if (++*n > FWD_MAX_ELEMENTS)
		return GK_ERR_INVALID;
	memset(&a, 0, sizeof(a));
	ok = node_parse(node, &a) == 0;
	return fn(arg, ok, ok ? &a : NULL);
}

int
policy_xff_parse(gk_slice v, policy_fwd_fn fn, void *arg)
{
	const uint8_t *p, *end, *comma;
	size_t n = 0;
	int r;

	if (fn == NULL || (v.p == NULL && v.len > 0))
		return GK_ERR_INVALID;
	if (v.len == 0) {
		r = emit(fn, arg, &n, GK_SLICE_NULL);
		return r < 0 ? r : 0;
	}
	p = v.p;
	end = v.p + v.len;
	for (;;) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		r = emit(fn, arg, &n, gk_http_trim_ows(gk_slice_of(p,
		    (size_t)(comma - p))));
		if (r != 0)
			return r < 0 ? r : 0;
		if (comma == end)
			break;
		p = comma + 1;
	}
	return 0;
}

/*
 * Forwarded: element *("," element); element = [pair] *(";" [pair]);
 * pair = token "=" (token / quoted-string). OWS is allowed around ',' and
 * ';'. For each element fn gets its for= node (ok = 0 when it has none,
 * two, or one that is not an address).
 */
int
policy_forwarded_parse(gk_slice v, policy_fwd_fn fn, void *arg)
{
	uint8_t node[FWD_NODE_MAX];
	size_t i = 0, n = 0, nlen, name_start, name_len, vlen;
	int fors = 0, node_bad = 0, is_for, r;
	gk_addr a;

	if (fn == NULL || (v.p == NULL && v.len > 0))
		return GK_ERR_INVALID;
	nlen = 0;
	for (;;) {
		/* at the start of a pair (or an empty one) */
		while (i < v.len && gk_http_is_ows(v.p[i]))
			i++;
		if (i < v.len && v.p[i] != ',' && v.p[i] != ';') {
			name_start = i;
			while (i < v.len && gk_http_is_tchar(v.p[i]))
				i++;
			name_len = i - name_start;
			if (name_len == 0 || i >= v.len || v.p[i] != '=')
				return GK_ERR_INVALID;
			i++;
			is_for = name_len == 3 &&
			    strncasecmp((const char *)v.p + name_start, "for",
			    3) == 0;
			vlen = 0;
			if (i < v.len && v.p[i] == '"') {
				i++;
				for (;;) {
					uint8_t c;

					if (i >= v.len)
						return GK_ERR_INVALID;
					c = v.p[i++];
					if (c == '"')
						break;
					if (c == '\\') {
						if (i >= v.len)
							return GK_ERR_INVALID;
						c = v.p[i++];
					}
					if ((c < 0x20 && c != '\t') ||
					    c == 0x7f)
						return GK_ERR_INVALID;
					if (is_for && vlen < sizeof(node))
						node[vlen] = c;
					vlen++;
				}
			} else {
				while (i < v.len && (gk_http_is_tchar(v.p[i]) ||
				    v.p[i] == ':' || v.p[i] == '[' ||
				    v.p[i] == ']')) {
					if (is_for && vlen < sizeof(node))
						node[vlen] = v.p[i];
					vlen++;
					i++;
				}
				if (vlen == 0)
					return GK_ERR_INVALID;
			}
			if (is_for) {
				fors++;
				nlen = vlen;
				node_bad = vlen > sizeof(node);
			}
			while (i < v.len && gk_http_is_ows(v.p[i]))
				i++;
		}
		if (i < v.len && v.p[i] == ';') {
			i++;
			continue;
		}
		if (i < v.len && v.p[i] != ',')
			return GK_ERR_INVALID;
		/* the element ends */
		if (++n > FWD_MAX_ELEMENTS)
			return GK_ERR_INVALID;
		memset(&a, 0, sizeof(a));
		if (fors == 1 && !node_bad &&
		    node_parse(gk_slice_of(node, nlen), &a) == 0)
			r = fn(arg, 1, &a);
		else
			r = fn(arg, 0, NULL);
		if (r != 0)
			return r < 0 ? r : 0;
		fors = 0;
		node_bad = 0;
		nlen = 0;
		if (i >= v.len)
			break;
		i++;	/* ',' */
	}
	return 0;
}

struct collect {
	size_t n;
	uint8_t ok[FWD_MAX_ELEMENTS];
	gk_addr a[FWD_MAX_ELEMENTS];
};

static int
collect_cb(void *arg, int ok, const gk_addr *a)
{
	struct collect *c = arg;

	if (c->n >= FWD_MAX_ELEMENTS)
		return GK_ERR_INVALID;
	c->ok[c->n] = (uint8_t)ok;
	if (ok)
		c->a[c->n] = *a;
	c->n++;
	return 0;
}

int
policy_is_trusted_proxy(const gk_policy *p, const gk_addr *a)
{
	return p != NULL && policy_cidrs_contains(p->trusted, a);
}

int
policy_client_addr(const gk_policy *p, const gk_addr *peer, gk_slice xff,
    int has_xff, gk_slice fwd, int has_fwd, gk_addr *out)
{
	struct collect c;
	size_t i;
	int r, use_fwd;

	*out = *peer;
	if (p == NULL)
		return GK_FWD_PEER;
	if (!policy_is_trusted_proxy(p, peer))
		return (has_xff || has_fwd) ? GK_FWD_IGNORED : GK_FWD_PEER;
	use_fwd = p->use_forwarded;
	if (use_fwd ? !has_fwd : !has_xff)
		return GK_FWD_PEER;
	c.n = 0;
	r = use_fwd ? policy_forwarded_parse(fwd, collect_cb, &c) :
	    policy_xff_parse(xff, collect_cb, &c);
	memset(out, 0, sizeof(*out));
	if (r != 0 || c.n == 0)
		return GK_FWD_BAD;
	for (i = c.n; i-- > 0;) {
		if (!c.ok[i])
			return GK_FWD_BAD;
		if (!policy_is_trusted_proxy(p, &c.a[i]) || i == 0) {
			*out = c.a[i];
			return GK_FWD_HEADER;
		}
	}
	return GK_FWD_BAD;
}
