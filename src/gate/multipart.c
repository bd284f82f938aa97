/*
 * multipart.c - streaming multipart/form-data parser (RFC 7578, RFC 2046).
 *
 * The body is scanned for the delimiter CRLF "--" boundary, as if it
 * started with a CRLF so that a first boundary line at offset 0 matches.
 * Part data is handed to the callback straight from the caller's chunk;
 * the only bytes held back across chunks are a partial delimiter match,
 * and since the delimiter's only CR is its first byte, those held bytes
 * are always a prefix of the delimiter itself: nothing is copied, and a
 * mismatch releases them from the delimiter string.
 *
 * Strict where RFC 2046 is: the delimiter must be followed by "--" (close)
 * or by optional spaces/tabs and CRLF, anything else is malformed (the
 * boundary must not occur inside a part). The epilogue is ignored.
 *
 * Part headers (at most GK_MP_MAX_HEADER bytes) are collected, then
 * parsed: CRLF lines only, no NUL or other control bytes but HTAB, no
 * folded lines, "name: value" with a token name. Content-Disposition
 * (required, once) must be form-data with a name parameter; filename is
 * optional; Content-Type is optional, once; other headers are ignored.
 */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>

#define MP_MAX_BOUNDARY 70
#define MP_MAX_PAD 256		/* spaces/tabs after a boundary */
/* Preamble and epilogue together (browsers send none but a CRLF): a body
 * that never reaches its first delimiter is refused, not read to the end */
#define MP_MAX_SKIP 4096

enum mp_state {
	MP_PREAMBLE,		/* scanning for the first delimiter */
	MP_AFTER_DELIM,		/* "--" close, or [LWSP] CRLF */
	MP_CLOSE_DASH,		/* second '-' of the close delimiter */
	MP_DELIM_LF,		/* LF after the boundary line's CR */
	MP_HEADERS,		/* collecting a part's header block */
	MP_DATA,		/* part data, scanning for the delimiter */
	MP_EPILOGUE,		/* after the close delimiter: ignored */
};

struct gk_multipart {
	gk_multipart_cb cb;
	void *arg;
	enum mp_state state;
	int err;		/* sticky: once set, every call returns it */
	unsigned nparts;
	size_t match;		/* delimiter bytes matched (held back) */
	size_t pad;
	size_t skipped;		/* preamble and epilogue bytes */
	size_t dlen;
	uint8_t delim[4 + MP_MAX_BOUNDARY];	/* CR LF '-' '-' boundary */
	size_t hlen;
	uint8_t hdr[GK_MP_MAX_HEADER];
	uint8_t vals[GK_MP_MAX_HEADER];	/* decoded parameter values */
};

/* ---- lexical helpers ---------------------------------------------------- */

/* RFC 2046 bcharsnospace, plus space */
static int
is_bchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}


static uint8_t
lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

/* 1 if s equals the lowercase literal lit, ignoring ASCII case. */
static int
eq_ci(gk_slice s, const char *lit)
{
	size_t i, n = strlen(lit);

	if (s.len != n)
		return 0;
	for (i = 0; i < n; i++) {
		if (lower(s.p[i]) != (uint8_t)lit[i])
			return 0;
	}
	return 1;
}

static void
skip_ows(gk_slice s, size_t *pos)
{
	while (*pos < s.len && gk_http_is_ows(s.p[*pos]))
		(*pos)++;
}

/* A token at *pos (possibly empty). */
static gk_slice
take_token(gk_slice s, size_t *pos)
{
	size_t start = *pos;

	while (*pos < s.len && gk_http_is_tchar(s.p[*pos]))
		(*pos)++;
	return gk_slice_of(s.p + start, *pos - start);
}

/*
 * The next ";" name "=" value parameter of s at *pos: 1 with *name and the
 * raw value (a token, or a quoted-string with its quotes) in *raw, 0 at
 * the end, GK_ERR_INVALID if malformed. A trailing ";" is tolerated.
 */
static int
next_param(gk_slice s, size_t *pos, gk_slice *name, gk_slice *raw)
{
	size_t start;
	uint8_t c;

	skip_ows(s, pos);
	if (*pos == s.len)
		return 0;
	if (s.p[*pos] != ';')
		return GK_ERR_INVALID;
	(*pos)++;
	skip_ows(s, pos);
	if (*pos == s.len)
		return 0;
	*name = take_token(s, pos);
	if (name->len == 0 || *pos == s.len || s.p[*pos] != '=')
		return GK_ERR_INVALID;
	start = ++(*pos);
	if (*pos < s.len && s.p[*pos] == '"') {
		(*pos)++;
		for (;;) {
			if (*pos == s.len)
				return GK_ERR_INVALID;	/* unterminated */
			c = s.p[(*pos)++];
			if (c == '"')
				break;
			if (c == '\\') {
				if (*pos == s.len)
					return GK_ERR_INVALID;
				c = s.p[(*pos)++];
			}
			/* qdtext / quoted-pair: HTAB, SP, VCHAR, obs-text */
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return GK_ERR_INVALID;
		}
	} else if (take_token(s, pos).len == 0) {
		return GK_ERR_INVALID;
	}
	*raw = gk_slice_of(s.p + start, *pos - start);
	return 1;
}

/* Decodes a raw value next_param accepted into out[0..cap): *val.
 * GK_ERR_INVALID if it does not fit. */
static int
param_value(gk_slice raw, uint8_t *out, size_t cap, gk_slice *val)
{
	size_t i, n = 0;

	if (raw.len == 0 || raw.p[0] != '"') {
		if (raw.len > cap)
			return GK_ERR_INVALID;
		memcpy(out, raw.p, raw.len);
		*val = gk_slice_of(out, raw.len);
		return 0;
	}
	/* between the quotes; a backslash takes the next byte literally */
	for (i = 1; i + 1 < raw.len; i++) {
		if (raw.p[i] == '\\')
			i++;
		if (n == cap)
			return GK_ERR_INVALID;
		out[n++] = raw.p[i];
	}
	*val = gk_slice_of(out, n);
	return 0;
}

/* ---- Content-Type of the request --------------------------------------- */

static int
parse_content_type(gk_slice ct, uint8_t *boundary, size_t *blen)
{
	gk_slice type, sub, name, raw, v;
	size_t pos = 0, i;
	int have = 0, r;

	if (ct.p == NULL || ct.len == 0)
		return GK_ERR_INVALID;
	ct = gk_http_trim_ows(ct);
	type = take_token(ct, &pos);
	if (pos == ct.len || ct.p[pos] != '/')
		return GK_ERR_INVALID;
	pos++;
	sub = take_token(ct, &pos);
	if (!eq_ci(type, "multipart") || !eq_ci(sub, "form-data"))
		return GK_ERR_INVALID;
	while ((r = next_param(ct, &pos, &name, &raw)) == 1) {
		if (!eq_ci(name, "boundary"))
			continue;
		if (have || param_value(raw, boundary, MP_MAX_BOUNDARY,
		    &v) != 0 || v.len < 1)
			return GK_ERR_INVALID;
		for (i = 0; i < v.len; i++) {
			if (!is_bchar(v.p[i]))
				return GK_ERR_INVALID;
		}
		if (v.p[v.len - 1] == ' ')
			return GK_ERR_INVALID;
		*blen = v.len;
		have = 1;
	}
	if (r != 0 || !have)
		return GK_ERR_INVALID;
	return 0;
}

int
gate_multipart_new(gk_slice content_type, const gk_multipart_cb *cb,
    void *arg, gk_multipart **out)
{
	gk_multipart *m = NULL;
	uint8_t boundary[MP_MAX_BOUNDARY];
	size_t blen = 0;
	int r = GK_ERR_INTERNAL;

	if (out == NULL || cb == NULL)
		return GK_ERR_INTERNAL;
	*out = NULL;
	if ((r = parse_content_type(content_type, boundary, &blen)) != 0)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	m->cb = *cb;
	m->arg = arg;
	memcpy(m->delim, "\r\n--", 4);
	memcpy(m->delim + 4, boundary, blen);
	m->dlen = 4 + blen;
	m->state = MP_PREAMBLE;
	m->match = 2;		/* the virtual CRLF before the body */
	*out = m;
	m = NULL; /* transferred */
	r = 0;
 out:
	gate_multipart_free(m);
	return r;
}

void
gate_multipart_free(gk_multipart *m)
{
	free(m);
}

/* ---- part headers ------------------------------------------------------ */

static int
parse_disposition(gk_multipart *m, gk_slice v, gk_slice *name,
    gk_slice *filename)
{
	gk_slice pname, raw, type, *dst;
	size_t pos = 0, used = 0;
	int have_name = 0, have_file = 0, r;

	type = take_token(v, &pos);
	if (!eq_ci(type, "form-data"))
		return GK_ERR_INVALID;
	while ((r = next_param(v, &pos, &pname, &raw)) == 1) {
		if (eq_ci(pname, "name")) {
			if (have_name++)
				return GK_ERR_INVALID;
			dst = name;
		} else if (eq_ci(pname, "filename")) {
			if (have_file++)
				return GK_ERR_INVALID;
			dst = filename;
		} else {
			continue;	/* other parameters are ignored */
		}
		/* decoded values are no longer than the raw header block,
		 * so they always fit in vals */
		if ((r = param_value(raw, m->vals + used,
		    sizeof(m->vals) - used, dst)) != 0)
			return r;
		used += dst->len;
	}
	if (r != 0)
		return r;
	return have_name ? 0 : GK_ERR_INVALID;
}

/* Parses the complete header block in m->hdr and starts the part. */
static int
parse_headers(gk_multipart *m)
{
	gk_slice blk = gk_slice_of(m->hdr, m->hlen), line, hname, value;
	gk_slice name = GK_SLICE_NULL, filename = GK_SLICE_NULL;
	gk_slice ctype = GK_SLICE_NULL;
	const uint8_t *colon;
	size_t pos = 0, i, end;
	int have_cd = 0, have_ct = 0, r;
	uint8_t c;

	/* bytes: CR only before LF, LF only after CR, no other controls */
	for (i = 0; i < blk.len; i++) {
		c = blk.p[i];
		if (c == '\r') {
			if (i + 1 >= blk.len || blk.p[i + 1] != '\n')
				return GK_ERR_INVALID;
		} else if (c == '\n') {
			if (i == 0 || blk.p[i - 1] != '\r')
				return GK_ERR_INVALID;
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return GK_ERR_INVALID;
		}
	}
	for (;;) {
		/* each line ends in CRLF; the block in an empty line */
		end = pos;
		while (end < blk.len && blk.p[end] != '\r')
			end++;
		if (end == blk.len)
			return GK_ERR_INVALID;
		line = gk_slice_of(blk.p + pos, end - pos);
		pos = end + 2;
		if (line.len == 0)
			break;
		if (gk_http_is_ows(line.p[0]))
			return GK_ERR_INVALID;	/* obsolete line folding */
		if ((colon = memchr(line.p, ':', line.len)) == NULL)
			return GK_ERR_INVALID;
		hname = gk_slice_of(line.p, (size_t)(colon - line.p));
		for (i = 0; i < hname.len; i++) {
			if (!gk_http_is_tchar(hname.p[i]))
				return GK_ERR_INVALID;
		}
		if (hname.len == 0)
			return GK_ERR_INVALID;
		value = gk_http_trim_ows(gk_slice_of(colon + 1,
		    line.len - hname.len - 1));
		if (eq_ci(hname, "content-disposition")) {
			if (have_cd)
				return GK_ERR_INVALID;
			have_cd = 1;
			if ((r = parse_disposition(m, value, &name,
			    &filename)) != 0)
				return r;
		} else if (eq_ci(hname, "content-type")) {
			if (have_ct)
				return GK_ERR_INVALID;
			have_ct = 1;
			ctype = value;
		}
	}
	if (!have_cd)
		return GK_ERR_INVALID;
	if (m->cb.part_begin != NULL)
		return m->cb.part_begin(m->arg, name, filename, ctype);
	return 0;
}

/* ---- the body ------------------------------------------------------------ */

static int
emit(gk_multipart *m, const uint8_t *p, size_t len)
{
	if (len == 0 || m->state != MP_DATA || m->cb.part_data == NULL)
		return 0;
	return m->cb.part_data(m->arg, p, len);
}

/*
 * Scans p[*ip..len) for the delimiter, emitting part data (in MP_DATA)
 * and holding back a partial match at the end. Returns with *ip just past
 * a delimiter (state changed) or at len.
 */
static int
scan(gk_multipart *m, const uint8_t *p, size_t len, size_t *ip)
{
	size_t i = *ip, from = i, held_prev = m->match, held_here;
	const uint8_t *cr;
	const void *d;
	int r, was_part;

	while (i < len) {
		if (m->match == 0) {
			/* a delimiter wholly inside the rest is found by
			 * memmem, which skips ahead by most of its length;
			 * only one that starts in the last dlen - 1 bytes
			 * can go on in the next chunk: that tail is scanned
			 * a CR at a time */
			if (len - i >= m->dlen) {
				d = memmem(p + i, len - i, m->delim, m->dlen);
				if (d != NULL) {
					i = (size_t)((const uint8_t *)d - p) + 1;
					m->match = 1;
					continue;
				}
				i = len - (m->dlen - 1);
			}
			cr = memchr(p + i, '\r', len - i);
			if (cr == NULL) {
				i = len;
				break;
			}
			i = (size_t)(cr - p) + 1;
			m->match = 1;
			continue;
		}
		if (p[i] == m->delim[m->match]) {
			i++;
			if (++m->match < m->dlen)
				continue;
			/* a delimiter: what preceded it in this chunk is
			 * data; held bytes from earlier chunks were its
			 * start, and are dropped */
			held_here = m->dlen - held_prev;
			if ((r = emit(m, p + from, i - held_here - from)) != 0)
				return r;
			*ip = i;
			was_part = m->state == MP_DATA;
			m->match = 0;
			m->pad = 0;
			m->state = MP_AFTER_DELIM;
			if (was_part && m->cb.part_end != NULL)
				return m->cb.part_end(m->arg);
			return 0;
		}
		/* mismatch: the held bytes were data after all. Those
		 * from earlier chunks come first (nothing of this chunk
		 * was emitted since: all of it was held too); those from
		 * this chunk stay in the pending run p[from..i). */
		if (held_prev > 0) {
			if ((r = emit(m, m->delim, held_prev)) != 0)
				return r;
			held_prev = 0;
		}
		m->match = 0;
		/* p[i] is looked at again: it may start a delimiter */
	}
	held_here = m->match - held_prev;
	if ((r = emit(m, p + from, len - held_here - from)) != 0)
		return r;
	*ip = len;
	return 0;
}

static int
header_byte(gk_multipart *m, uint8_t c)
{
	if (m->hlen == sizeof(m->hdr))
		return GK_ERR_TOO_LARGE;
	m->hdr[m->hlen++] = c;
	if (c != '\n')
		return 0;
	/* the block ends with an empty line: CRLF alone or CRLF CRLF */
	if ((m->hlen == 2 && m->hdr[0] == '\r') || (m->hlen >= 4 &&
	    memcmp(m->hdr + m->hlen - 4, "\r\n\r\n", 4) == 0)) {
		m->state = MP_DATA;
		m->match = 0;
		return parse_headers(m);
	}
	return 0;
}

int
gate_multipart_feed(gk_multipart *m, const uint8_t *p, size_t len)
{
	size_t i = 0, from;
	uint8_t c;
	int r = 0;

	if (m == NULL || (p == NULL && len > 0))
		return GK_ERR_INTERNAL;
	if (m->err != 0)
		return m->err;
	while (i < len && r == 0) {
		switch (m->state) {
		case MP_PREAMBLE:
			from = i;
			r = scan(m, p, len, &i);
			m->skipped += i - from;
			if (r == 0 && m->skipped > MP_MAX_SKIP)
				r = GK_ERR_TOO_LARGE;
			break;
		case MP_DATA:
			r = scan(m, p, len, &i);
			break;
		case MP_AFTER_DELIM:
			c = p[i++];
			if (c == '-' && m->pad == 0)
				m->state = MP_CLOSE_DASH;
			else if (c == '\r')
				m->state = MP_DELIM_LF;
			else if (!gk_http_is_ows(c))
				r = GK_ERR_INVALID;
			else if (++m->pad > MP_MAX_PAD)
				r = GK_ERR_TOO_LARGE;
			break;
		case MP_CLOSE_DASH:
			if (p[i++] == '-')
				m->state = MP_EPILOGUE;
			else
				r = GK_ERR_INVALID;
			break;
		case MP_DELIM_LF:
			if (p[i++] != '\n') {
				r = GK_ERR_INVALID;
			} else if (m->nparts >= GK_MP_MAX_PARTS) {
				r = GK_ERR_TOO_LARGE;
			} else {
				m->nparts++;
				m->hlen = 0;
				m->state = MP_HEADERS;
			}
			break;
		case MP_HEADERS:
			while (i < len && m->state == MP_HEADERS && r == 0)
				r = header_byte(m, p[i++]);
			break;
		case MP_EPILOGUE:
			m->skipped += len - i;
			i = len;
			if (m->skipped > MP_MAX_SKIP)
				r = GK_ERR_TOO_LARGE;
			break;
		default:
			r = GK_ERR_INTERNAL;
			break;
		}
	}
	if (r != 0)
		m->err = r;
	return r;
}

int
gate_multipart_finish(gk_multipart *m)
{
	if (m == NULL)
		return GK_ERR_INTERNAL;
	if (m->err != 0)
		return m->err;
	if (m->state != MP_EPILOGUE)
		m->err = GK_ERR_INVALID;
	return m->err;
}
