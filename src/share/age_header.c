/*
 * age_header.c - the age v1 header: strict base64, stanza parsing and
 * header writing helpers.
 */
#include "share/share.h"

#include <stdlib.h>
#include <string.h>

#include "share/share_int.h"

/* age's base64 is the standard alphabet without padding; the armor's is
 * padded. Both are util's strict decoder (canonical bits, alphabet). */
size_t
age_b64_raw(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	gk_buf b;
	size_t len = 0;

	gk_buf_init(&b, (n / 3 + 1) * 4 + 1);
	if (gk_b64_encode(in, n, &b) == 0) {
		len = b.len;
		while (len > 0 && b.data[len - 1] == '=')
			len--;
	}
	if (len + 1 > outlen || (len == 0 && n > 0))
		len = 0;
	else
		memcpy(out, b.data ? (const char *)b.data : "", len);
	if (outlen > 0)
		out[len] = '\0';
	gk_buf_release(&b);
	return len;
}

int
age_b64_decode(gk_slice in, int padded, uint8_t *out, size_t max,
    size_t *outlen)
{
	gk_buf padin, dec;
	int r;

	if (!padded && (memchr(in.p, '=', in.len) != NULL || in.len % 4 == 1))
		return GK_ERR_INVALID;
	if (padded && in.len % 4 != 0)
		return GK_ERR_INVALID;
	gk_buf_init(&padin, in.len + 4);
	gk_buf_init(&dec, max + 3);
	if ((r = gk_buf_append(&padin, in.p, in.len)) != 0)
		goto out;
	while (padin.len % 4 != 0)
		if ((r = gk_buf_append(&padin, "=", 1)) != 0)
			goto out;
	if ((r = gk_b64_decode(gk_slice_of(padin.data, padin.len), &dec)) != 0)
		goto out;
	if (dec.len > max) {
		r = GK_ERR_TOO_LARGE;
		goto out;
	}
	if (dec.len > 0)
		memcpy(out, dec.data, dec.len);
	*outlen = dec.len;
out:
	gk_buf_release(&padin);
	gk_buf_release(&dec);
	return r == GK_ERR_TOO_LARGE || r == 0 ? r : GK_ERR_INVALID;
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
