/*
 * age_header.c - the age v1 header: strict base64, stanza parsing and
 * header writing helpers.
 */
#include "share/share.h"

#include <stdlib.h>
#include <string.h>

#include "share/share_int.h"

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64v(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t
age_b64_raw(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0, need = (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);

	if (need + 1 > outlen) {
		if (outlen > 0)
			out[0] = '\0';
		return 0;
	}
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = B64[v >> 18];
		out[o++] = B64[(v >> 12) & 63];
		out[o++] = B64[(v >> 6) & 63];
		out[o++] = B64[v & 63];
	}
	if (n - i == 1) {
		out[o++] = B64[in[i] >> 2];
		out[o++] = B64[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		out[o++] = B64[v >> 10];
		out[o++] = B64[(v >> 4) & 63];
		out[o++] = B64[(v & 15) << 2];
	}
	out[o] = '\0';
	return o;
}

int
age_b64_decode(gk_slice in, int padded, uint8_t *out, size_t max,
    size_t *outlen)
{
	size_t len = in.len, i, o = 0, rem;
	uint32_t acc = 0;
	int bits = 0, v;

	if (padded) {
		if (len % 4 != 0)
			return GK_ERR_INVALID;
		if (len > 0 && in.p[len - 1] == '=')
			len--;
		if (len > 0 && in.p[len - 1] == '=' && len % 4 == 3)
			len--;
	}
	rem = len % 4;
	if (rem == 1)
		return GK_ERR_INVALID;
	if (padded && in.len != len && (in.len - len) != (4 - rem) % 4)
		return GK_ERR_INVALID;
	for (i = 0; i < len; i++) {
		if ((v = b64v(in.p[i])) < 0)
			return GK_ERR_INVALID;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= max)
				return GK_ERR_TOO_LARGE;
			out[o++] = (acc >> bits) & 0xff;
		}
	}
	/* canonical: the unused low bits must be zero */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return GK_ERR_INVALID;
	*outlen = o;
	return 0;
}

void
age_header_release(age_header *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->n; i++) {
		if (h->st[i].body != NULL)
			gk_wipe(h->st[i].body, h->st[i].body_len);
		free(h->st[i].body);
	}
	free(h->st);
	memset(h, 0, sizeof(*h));
}

#define AGE_VERSION_LINE "age-encryption.org/v1\n"
#define MAX_STANZAS 1024

static int
arg_ok(gk_slice a)
{
	size_t i;

	if (a.len == 0)
		return 0;
	for (i = 0; i < a.len; i++)
		if (a.p[i] < 33 || a.p[i] > 126)
			return 0;
	return 1;
}

/* The next line [pos, *end) ending at '\n' (excluded). */
static int
next_line(gk_slice in, size_t pos, size_t *end)
{
	const uint8_t *nl;

	if (pos >= in.len)
		return AGE_NEED_MORE;
	nl = memchr(in.p + pos, '\n', in.len - pos);
	if (nl == NULL)
		return AGE_NEED_MORE;
	*end = (size_t)(nl - in.p);
	return 0;
}

static int
parse_stanza(gk_slice in, size_t *pos, age_stanza *st)
{
	size_t end, s, i, got;
	gk_slice line;
	int r;

	if ((r = next_line(in, *pos, &end)) != 0)
		return r;
	line = gk_slice_of(in.p + *pos + 3, end - *pos - 3);
	/* arguments separated by exactly one space */
	s = 0;
	for (i = 0; i <= line.len; i++) {
		if (i < line.len && line.p[i] != ' ')
			continue;
		if (st->nargs >= AGE_MAX_ARGS)
			return GK_ERR_INVALID;
		st->args[st->nargs] = gk_slice_of(line.p + s, i - s);
		if (!arg_ok(st->args[st->nargs]))
			return GK_ERR_INVALID;
		st->nargs++;
		s = i + 1;
	}
	*pos = end + 1;
	/* body: full 64-column lines, then one shorter line (maybe empty) */
	for (;;) {
		uint8_t *nb;

		if ((r = next_line(in, *pos, &end)) != 0)
			return r;
		line = gk_slice_of(in.p + *pos, end - *pos);
		if (line.len > 64)
			return GK_ERR_INVALID;
		if ((nb = realloc(st->body, st->body_len + 48 + 1)) == NULL)
			return GK_ERR_NOMEM;
		st->body = nb;
		if (age_b64_decode(line, 0, st->body + st->body_len, 48,
		    &got) != 0)
			return GK_ERR_INVALID;
		st->body_len += got;
		*pos = end + 1;
		if (line.len < 64)
			return 0;
	}
}

int
age_header_parse(gk_slice in, age_header *h)
{
	size_t vl = strlen(AGE_VERSION_LINE), pos, end, got;
	int r = GK_ERR_INVALID;

	memset(h, 0, sizeof(*h));
	if (in.len < vl)
		return memcmp(in.p, AGE_VERSION_LINE, in.len) == 0 ?
		    AGE_NEED_MORE : GK_ERR_INVALID;
	if (memcmp(in.p, AGE_VERSION_LINE, vl) != 0)
		return GK_ERR_INVALID;
	pos = vl;
	for (;;) {
		if (pos > AGE_HEADER_MAX) {
			r = GK_ERR_TOO_LARGE;
			goto fail;
		}
		if (in.len - pos < 3) {
			/* could still become "-> " or "---" */
			r = GK_ERR_INVALID;
			if (in.len > pos && in.p[pos] != '-')
				goto fail;
			r = AGE_NEED_MORE;
			goto fail;
		}
		if (memcmp(in.p + pos, "-> ", 3) == 0) {
			age_stanza *ns;

			if (h->n >= MAX_STANZAS) {
				r = GK_ERR_TOO_LARGE;
				goto fail;
			}
			ns = realloc(h->st, (h->n + 1) * sizeof(*ns));
			if (ns == NULL) {
				r = GK_ERR_NOMEM;
				goto fail;
			}
			h->st = ns;
			memset(&h->st[h->n], 0, sizeof(h->st[h->n]));
			h->n++;
			if ((r = parse_stanza(in, &pos, &h->st[h->n - 1])) != 0)
				goto fail;
			continue;
		}
		r = GK_ERR_INVALID;
		if (memcmp(in.p + pos, "---", 3) != 0)
			goto fail;
		if ((r = next_line(in, pos, &end)) != 0) {
			if (in.len - pos > 3 + 1 + 43)
				r = GK_ERR_INVALID;
			goto fail;
		}
		r = GK_ERR_INVALID;
		if (h->n == 0 || end - pos != 3 + 1 + 43 || in.p[pos + 3] != ' ')
			goto fail;
		if (age_b64_decode(gk_slice_of(in.p + pos + 4, 43), 0, h->mac,
		    sizeof(h->mac), &got) != 0 || got != 32)
			goto fail;
		h->mac_input_len = pos + 3;
		h->len = end + 1;
		return 0;
	}
fail:
	age_header_release(h);
	return r;
}
