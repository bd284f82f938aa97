/* util.c - slices, buffers, encodings, secrets, numbers. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

const char *
gk_err_str(int err)
{
	switch (err) {
	case GK_OK: return "success";
	case GK_ERR_INTERNAL: return "internal error";
	case GK_ERR_NOMEM: return "out of memory";
	case GK_ERR_INVALID: return "invalid input";
	case GK_ERR_TOO_LARGE: return "too large";
	case GK_ERR_NOT_FOUND: return "not found";
	case GK_ERR_IO: return "I/O error";
	case GK_ERR_AUTH: return "authentication failed";
	case GK_ERR_EXPIRED: return "expired";
	case GK_ERR_DENIED: return "denied";
	case GK_ERR_INTEGRITY: return "stored data failed its integrity check";
	case GK_ERR_UNAVAILABLE: return "unavailable";
	case GK_ERR_CONFIG: return "configuration error";
	case GK_ERR_EXISTS: return "already exists";
	case GK_ERR_RANGE: return "range not satisfiable";
	}
	return "unknown error";
}

/* ---- slices ---------------------------------------------------------- */

gk_slice
gk_slice_str(const char *s)
{
	return s ? gk_slice_of(s, strlen(s)) : GK_SLICE_NULL;
}

int
gk_slice_eq(gk_slice a, gk_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int
gk_slice_eq_str(gk_slice a, const char *s)
{
	return gk_slice_eq(a, gk_slice_str(s));
}

int
gk_slice_has_prefix(gk_slice a, gk_slice prefix)
{
	return a.len >= prefix.len &&
	    (prefix.len == 0 || memcmp(a.p, prefix.p, prefix.len) == 0);
}

char *
gk_slice_dup(gk_slice s)
{
	char *r;

	if (s.len > 0 && memchr(s.p, '\0', s.len) != NULL)
		return NULL;
	if (s.len == SIZE_MAX || (r = malloc(s.len + 1)) == NULL)
		return NULL;
	if (s.len > 0)
		memcpy(r, s.p, s.len);
	r[s.len] = '\0';
	return r;
}

/* ---- buffers --------------------------------------------------------- */

void
gk_buf_init(gk_buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
gk_buf_release(gk_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

void
gk_buf_reset(gk_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

static int
buf_reserve(gk_buf *b, size_t extra)
{
	size_t need, n;
	uint8_t *p;

	if (gk_add_size(b->len, extra, &need) != 0 || need > b->cap)
		return GK_ERR_TOO_LARGE;
	if (gk_add_size(need, 1, &need) != 0)
		return GK_ERR_TOO_LARGE;
	if (need <= b->alloc)
		return 0;
	n = b->alloc ? b->alloc : 64;
	while (n < need) {
		if (gk_mul_size(n, 2, &n) != 0)
			return GK_ERR_TOO_LARGE;
	}
	if (n > b->cap + 1)
		n = b->cap + 1;
	if ((p = realloc(b->data, n)) == NULL)
		return GK_ERR_NOMEM;
	b->data = p;
	b->alloc = n;
	return 0;
}

int
gk_buf_append(gk_buf *b, const void *p, size_t len)
{
	int r;

	if ((r = buf_reserve(b, len)) != 0)
		return r;
	if (len > 0)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
gk_buf_append_str(gk_buf *b, const char *s)
{
	return gk_buf_append(b, s, strlen(s));
}

int
gk_buf_printf(gk_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return GK_ERR_INTERNAL;
	if ((r = buf_reserve(b, (size_t)n)) != 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *
gk_buf_detach(gk_buf *b, size_t *len_out)
{
	char *r = (char *)b->data;

	if (len_out != NULL)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	return r;
}

/* ---- hex ------------------------------------------------------------- */

void
gk_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
gk_hex_val(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
gk_hex_decode(gk_slice in, uint8_t *out, size_t out_len)
{
	size_t i;
	int hi, lo;

	if (out_len > SIZE_MAX / 2 || in.len != out_len * 2)
		return GK_ERR_INVALID;
	for (i = 0; i < out_len; i++) {
		hi = gk_hex_val(in.p[2 * i]);
		lo = gk_hex_val(in.p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return GK_ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* ---- base64 ---------------------------------------------------------- */

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
b64_encode(const uint8_t *in, size_t n, gk_buf *out, const char *alpha,
    int pad)
{
	size_t i;
	char q[4];
	int r;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		q[0] = alpha[v >> 18 & 63];
		q[1] = alpha[v >> 12 & 63];
		q[2] = alpha[v >> 6 & 63];
		q[3] = alpha[v & 63];
		if ((r = gk_buf_append(out, q, 4)) != 0)
			return r;
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		q[0] = alpha[v >> 18 & 63];
		q[1] = alpha[v >> 12 & 63];
		q[2] = q[3] = '=';
		return gk_buf_append(out, q, pad ? 4 : 2);
	}
	if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		q[0] = alpha[v >> 18 & 63];
		q[1] = alpha[v >> 12 & 63];
		q[2] = alpha[v >> 6 & 63];
		q[3] = '=';
		return gk_buf_append(out, q, pad ? 4 : 3);
	}
	/* make sure an empty encoding is still a valid empty string */
	return gk_buf_append(out, "", 0);
}

int
gk_b64_encode(const uint8_t *in, size_t n, gk_buf *out)
{
	return b64_encode(in, n, out, b64_std, 1);
}

int
gk_b64url_encode(const uint8_t *in, size_t n, gk_buf *out)
{
	return b64_encode(in, n, out, b64_url, 0);
}

static int
b64_val(uint8_t c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static int
b64_decode(gk_slice in, gk_buf *out, int url)
{
	size_t n = in.len, i, rem;
	uint32_t v;
	uint8_t o[3];
	int a, b, c, d, r;

	if (!url) {
		if (n % 4 != 0)
			return GK_ERR_INVALID;
		if (n >= 1 && in.p[n - 1] == '=')
			n--;
		if (n >= 1 && in.p[n - 1] == '=')
			n--;
		if (in.len - n > 0 && n % 4 == 1)
			return GK_ERR_INVALID;
	}
	rem = n % 4;
	if (rem == 1)
		return GK_ERR_INVALID;
	for (i = 0; i + 4 <= n; i += 4) {
		a = b64_val(in.p[i], url);
		b = b64_val(in.p[i + 1], url);
		c = b64_val(in.p[i + 2], url);
		d = b64_val(in.p[i + 3], url);
		if ((a | b | c | d) < 0)
			return GK_ERR_INVALID;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 |
		    (uint32_t)d;
		o[0] = v >> 16 & 0xff;
		o[1] = v >> 8 & 0xff;
		o[2] = v & 0xff;
		if ((r = gk_buf_append(out, o, 3)) != 0)
			return r;
	}
	if (rem == 2) {
		a = b64_val(in.p[i], url);
		b = b64_val(in.p[i + 1], url);
		if ((a | b) < 0 || (b & 0xf) != 0)
			return GK_ERR_INVALID;
		o[0] = (uint8_t)(a << 2 | b >> 4);
		return gk_buf_append(out, o, 1);
	}
	if (rem == 3) {
		a = b64_val(in.p[i], url);
		b = b64_val(in.p[i + 1], url);
		c = b64_val(in.p[i + 2], url);
		if ((a | b | c) < 0 || (c & 0x3) != 0)
			return GK_ERR_INVALID;
		o[0] = (uint8_t)(a << 2 | b >> 4);
		o[1] = (uint8_t)((b & 0xf) << 4 | c >> 2);
		return gk_buf_append(out, o, 2);
	}
	return gk_buf_append(out, "", 0);
}

int
gk_b64_decode(gk_slice in, gk_buf *out)
{
	return b64_decode(in, out, 0);
}

int
gk_b64url_decode(gk_slice in, gk_buf *out)
{
	return b64_decode(in, out, 1);
}

/* ---- percent encoding ------------------------------------------------ */

/* The one percent-decoder: form adds '+' -> ' ' and refuses NUL. */
static int
pct_decode(gk_slice in, int form, gk_buf *out)
{
	size_t i;
	int hi, lo, r;
	uint8_t c;

	for (i = 0; i < in.len; i++) {
		c = in.p[i];
		if (form && c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (in.len - i < 3)
				return GK_ERR_INVALID;
			hi = gk_hex_val(in.p[i + 1]);
			lo = gk_hex_val(in.p[i + 2]);
			if (hi < 0 || lo < 0)
				return GK_ERR_INVALID;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		if (form && c == '\0')
			return GK_ERR_INVALID;
		if ((r = gk_buf_append(out, &c, 1)) != 0)
			return r;
	}
	return gk_buf_append(out, "", 0);
}

int
gk_pct_decode(gk_slice in, gk_buf *out)
{
	return pct_decode(in, 0, out);
}

int
gk_form_decode(gk_slice in, gk_buf *out)
{
	return pct_decode(in, 1, out);
}

static int
unreserved(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

int
gk_pct_encode(gk_slice in, int keep_slash, gk_buf *out)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;
	char e[3];
	int r;

	for (i = 0; i < in.len; i++) {
		uint8_t c = in.p[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			r = gk_buf_append(out, &c, 1);
		} else {
			e[0] = '%';
			e[1] = digits[c >> 4];
			e[2] = digits[c & 0xf];
			r = gk_buf_append(out, e, 3);
		}
		if (r != 0)
			return r;
	}
	return gk_buf_append(out, "", 0);
}

/* ---- UTF-8 ----------------------------------------------------------- */

int
gk_utf8_valid(gk_slice s)
{
	size_t i = 0, n, k;
	uint32_t cp, min;
	uint8_t c;

	while (i < s.len) {
		c = s.p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (s.len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s.p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s.p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

size_t
gk_utf8_seq(const uint8_t *p, size_t n)
{
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n || !gk_utf8_valid(gk_slice_of(p, len)))
		return 0;
	return len;
}

int
gk_utf8_sanitize(gk_slice s, gk_buf *out)
{
	size_t i = 0, k;
	int r;

	if (gk_utf8_valid(s))
		return gk_buf_append(out, s.p, s.len);
	while (i < s.len) {
		if ((k = gk_utf8_seq(s.p + i, s.len - i)) == 0) {
			if ((r = gk_buf_append(out, "\xef\xbf\xbd", 3)) != 0)
				return r;
			i++;
			continue;
		}
		if ((r = gk_buf_append(out, s.p + i, k)) != 0)
			return r;
		i += k;
	}
	return 0;
}

/* ---- numbers --------------------------------------------------------- */

int
gk_parse_u64(gk_slice s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s.len == 0 || s.len > 20)
		return GK_ERR_INVALID;
	for (i = 0; i < s.len; i++) {
		uint8_t c = s.p[i];

		if (c < '0' || c > '9')
			return GK_ERR_INVALID;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(c - '0'), &v))
			return GK_ERR_TOO_LARGE;
	}
	if (v > max)
		return GK_ERR_TOO_LARGE;
	*out = v;
	return 0;
}

/* ---- JSON strings ---------------------------------------------------- */

int
gk_json_str(gk_buf *out, gk_slice s)
{
	static const char digits[] = "0123456789abcdef";
	size_t i, start = 0;
	char esc[7];
	int r;

	if ((r = gk_buf_append(out, "\"", 1)) != 0)
		return r;
	for (i = 0; i < s.len; i++) {
		uint8_t c = s.p[i];
		const char *rep = NULL;
		size_t rlen = 2;

		switch (c) {
		case '"': rep = "\\\""; break;
		case '\\': rep = "\\\\"; break;
		case '\n': rep = "\\n"; break;
		case '\r': rep = "\\r"; break;
		case '\t': rep = "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				esc[0] = '\\';
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = digits[c >> 4];
				esc[5] = digits[c & 0xf];
				esc[6] = '\0';
				rep = esc;
				rlen = 6;
			}
		}
		if (rep == NULL)
			continue;
		if ((r = gk_buf_append(out, s.p + start, i - start)) != 0 ||
		    (r = gk_buf_append(out, rep, rlen)) != 0)
			return r;
		start = i + 1;
	}
	if ((r = gk_buf_append(out, s.p + start, s.len - start)) != 0)
		return r;
	return gk_buf_append(out, "\"", 1);
}

/* ---- secrets --------------------------------------------------------- */

int
gk_ct_eq(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void
gk_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

int
gk_random(void *p, size_t len)
{
	if (len > INT32_MAX)
		return GK_ERR_INVALID;
	return RAND_bytes(p, (int)len) == 1 ? 0 : GK_ERR_INTERNAL;
}

int
gk_list_each(const char *list, int (*fn)(void *arg, gk_slice item),
    void *arg)
{
	const char *p = list, *start;
	int r;

	if (list == NULL)
		return 0;
	while (*p != '\0') {
		while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t' &&
		    *p != '\n' && *p != '\r')
			p++;
		if ((r = fn(arg, gk_slice_of(start, (size_t)(p - start)))) != 0)
			return r;
	}
	return 0;
}

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

/* ---- big-endian integers, paths ----------------------------------------- */

void
gk_put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void
gk_put_u64be(uint8_t *p, uint64_t v)
{
	gk_put_u32be(p, (uint32_t)(v >> 32));
	gk_put_u32be(p + 4, (uint32_t)v);
}

uint32_t
gk_get_u32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t
gk_get_u64be(const uint8_t *p)
{
	return (uint64_t)gk_get_u32be(p) << 32 | gk_get_u32be(p + 4);
}

char *
gk_path_join(const char *a, const char *b)
{
	gk_buf p;

	gk_buf_init(&p, 4096);
	if (gk_buf_printf(&p, "%s/%s", a, b) != 0) {
		gk_buf_release(&p);
		return NULL;
	}
	return gk_buf_detach(&p, NULL);
}
