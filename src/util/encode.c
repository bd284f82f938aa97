/* encode.c - hex, base64(url), percent and form encoding, UTF-8, JSON
 * strings. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The one percent-decoder: form adds '+' -> ' ' and refuses NUL. Runs of
 * plain bytes are copied whole. */
static int
pct_decode(gk_slice in, int form, gk_buf *out)
{
	size_t i, start = 0;
	int hi, lo, r;
	uint8_t c;

	/* the decoded text is never longer: one allocation (past the cap
	 * the appends below decide) */
	if ((r = gk_buf_reserve(out, in.len)) != 0 && r != GK_ERR_TOO_LARGE)
		return r;
	for (i = 0; i < in.len; i++) {
		c = in.p[i];
		if (c != '%' && !(form && (c == '+' || c == '\0')))
			continue;
		if (i > start &&
		    (r = gk_buf_append(out, in.p + start, i - start)) != 0)
			return r;
		if (c == '+') {
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
		start = i + 1;
	}
	/* (no pointer arithmetic on an empty slice's NULL) */
	return start < in.len ? gk_buf_append(out, in.p + start,
	    in.len - start) : gk_buf_append(out, "", 0);
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
	size_t i, start = 0;
	char e[3];
	int r;

	for (i = 0; i < in.len; i++) {
		uint8_t c = in.p[i];

		if (unreserved(c) || (keep_slash && c == '/'))
			continue;
		e[0] = '%';
		e[1] = digits[c >> 4];
		e[2] = digits[c & 0xf];
		if ((i > start && (r = gk_buf_append(out, in.p + start,
		    i - start)) != 0) || (r = gk_buf_append(out, e, 3)) != 0)
			return r;
		start = i + 1;
	}
	/* (no pointer arithmetic on an empty slice's NULL) */
	return start < in.len ? gk_buf_append(out, in.p + start,
	    in.len - start) : gk_buf_append(out, "", 0);
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

int
gk_utf8_control(const uint8_t *p, size_t k)
{
	return (k == 1 && (p[0] < 0x20 || p[0] == 0x7f)) ||
	    (k == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

int
gk_utf8_bidi(const uint8_t *p, size_t k)
{
	/* U+061C ALM; U+200E LRM, U+200F RLM; U+202A..U+202E LRE, RLE,
	 * PDF, LRO, RLO; U+2066..U+2069 LRI, RLI, FSI, PDI */
	if (k == 2)
		return p[0] == 0xd8 && p[1] == 0x9c;
	if (k != 3 || p[0] != 0xe2)
		return 0;
	return (p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f ||
	    (p[2] >= 0xaa && p[2] <= 0xae))) ||
	    (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9);
}

int
gk_utf8_linesep(const uint8_t *p, size_t k)
{
	/* U+2028 LS, U+2029 PS */
	return k == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
	    (p[2] == 0xa8 || p[2] == 0xa9);
}

int
gk_utf8_unsafe(const uint8_t *p, size_t k)
{
	return gk_utf8_control(p, k) || gk_utf8_bidi(p, k) ||
	    gk_utf8_linesep(p, k);
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
		size_t rlen = 2, n = 1;

		/* a C1 control (U+0080-U+009F, 0xc2 0x80-0x9f) is escaped
		 * too: some terminals act on it, as on C0 and DEL */
		if (c == 0xc2 && i + 1 < s.len && s.p[i + 1] >= 0x80 &&
		    s.p[i + 1] <= 0x9f) {
			c = s.p[i + 1];
			n = 2;
		}
		switch (c) {
		case '"': rep = "\\\""; break;
		case '\\': rep = "\\\\"; break;
		case '\n': rep = "\\n"; break;
		case '\r': rep = "\\r"; break;
		case '\t': rep = "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7f || n == 2) {
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
		i += n - 1;
		start = i + 1;
	}
	if ((r = gk_buf_append(out, s.p + start, s.len - start)) != 0)
		return r;
	return gk_buf_append(out, "\"", 1);
}
