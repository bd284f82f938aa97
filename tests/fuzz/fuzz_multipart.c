/*
 * fuzz_multipart.c - libFuzzer target for the streaming multipart parser.
 *
 * Input: byte 0 picks the Content-Type (one of a few boundaries, or, with
 * the high bit set, a Content-Type taken from the input itself), byte 1
 * the chunking, byte 2 an optional callback failure; the rest is the body.
 * The body is parsed twice, whole and in chunks: both runs must give the
 * same result and the same events. The callbacks check the invariants:
 * data only inside a part, never empty, never holding a delimiter; parts
 * begin and end in turn; at most GK_MP_MAX_PARTS of them; names without
 * control bytes; errors stick.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gate/multipart.h"

#define B70 "0123456789012345678901234567890123456789" \
	"012345678901234567890123456789"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

struct run {
	gk_buf log;		/* begin/end events, unambiguous encoding */
	gk_buf data;		/* all part data, in order */
	const uint8_t *delim;	/* CRLF "--" boundary, when known */
	size_t dlen;
	size_t part_start;	/* data.len when the current part began */
	int open;
	int events;
	int fail_at;		/* fail the n-th begin/end event (-1: never) */
	unsigned nparts;
};

static int
is_ctl(uint8_t c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int
log_slice(gk_buf *b, gk_slice s)
{
	size_t i;

	CHECK(s.len <= GK_MP_MAX_HEADER);
	CHECK(s.len == 0 || s.p != NULL);
	for (i = 0; i < s.len; i++)
		CHECK(s.p[i] != '\r' && s.p[i] != '\n' && s.p[i] != '\0');
	CHECK(gk_buf_append(b, &s.len, sizeof(s.len)) == 0);
	if (s.len > 0)
		CHECK(gk_buf_append(b, s.p, s.len) == 0);
	return 0;
}

static int
on_begin(void *arg, gk_slice name, gk_slice filename, gk_slice ctype)
{
	struct run *r = arg;
	size_t i;

	CHECK(!r->open);
	CHECK(++r->nparts <= GK_MP_MAX_PARTS);
	for (i = 0; i < name.len; i++)
		CHECK(!is_ctl(name.p[i]));
	for (i = 0; i < filename.len; i++)
		CHECK(!is_ctl(filename.p[i]));
	CHECK(gk_buf_append(&r->log, "B", 1) == 0);
	log_slice(&r->log, name);
	log_slice(&r->log, filename);
	log_slice(&r->log, ctype);
	r->open = 1;
	r->part_start = r->data.len;
	if (r->events++ == r->fail_at)
		return 4242;
	return 0;
}

static int
on_data(void *arg, const uint8_t *p, size_t len)
{
	struct run *r = arg;

	CHECK(r->open);
	CHECK(p != NULL && len > 0);
	CHECK(gk_buf_append(&r->data, p, len) == 0);
	return 0;
}

static int
on_end(void *arg)
{
	struct run *r = arg;
	size_t n;

	CHECK(r->open);
	r->open = 0;
	n = r->data.len - r->part_start;
	/* the part's data never holds its own delimiter */
	if (r->delim != NULL && n >= r->dlen)
		CHECK(memmem(r->data.data + r->part_start, n, r->delim,
		    r->dlen) == NULL);
	CHECK(gk_buf_append(&r->log, "E", 1) == 0);
	CHECK(gk_buf_append(&r->log, &n, sizeof(n)) == 0);
	if (r->events++ == r->fail_at)
		return -4343;
	return 0;
}

static const gk_multipart_cb cbs = { on_begin, on_data, on_end };

/* Parses body in chunks (pattern 0: whole), returns the result. */
static int
parse(gk_slice ct, const uint8_t *body, size_t len, unsigned pattern,
    struct run *r)
{
	gk_multipart *m = NULL;
	size_t i = 0, n;
	uint32_t x = pattern * 2654435761u + 1;
	int rc;

	if ((rc = gate_multipart_new(ct, &cbs, r, &m)) != 0) {
		CHECK(m == NULL);
		CHECK(rc == GK_ERR_INVALID);
		return rc;
	}
	while (i < len) {
		if (pattern == 0) {
			n = len - i;
		} else if (pattern == 1) {
			n = 1;
		} else {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			n = 1 + x % (pattern < 128 ? 8 : 300);
			if (n > len - i)
				n = len - i;
		}
		/* a copy exactly n bytes long: reading past it shows */
		{
			uint8_t *c = malloc(n);

			CHECK(c != NULL);
			memcpy(c, body + i, n);
			rc = gate_multipart_feed(m, c, n);
			free(c);
		}
		i += n;
		if (rc != 0) {
			CHECK(gate_multipart_feed(m, body, len) == rc);
			CHECK(gate_multipart_finish(m) == rc);
			gate_multipart_free(m);
			return rc;
		}
		CHECK(gate_multipart_feed(m, NULL, 0) == 0);
	}
	rc = gate_multipart_finish(m);
	CHECK(gate_multipart_finish(m) == rc);
	if (rc == 0)
		CHECK(!r->open);
	gate_multipart_free(m);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cts[] = {
		"multipart/form-data; boundary=XX",
		"multipart/form-data; boundary=a",
		"Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b:c\"",
		"multipart/form-data; boundary="
		    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
		"multipart/form-data; boundary=\"x\\yz\"",
		"multipart/form-data; boundary=" B70,
	};
	static const char *const wire[] = {
		"XX", "a", "a b:c", "----WebKitFormBoundary7MA4YWxkTrZu0gW",
		"xyz", B70,
	};
	struct run a, b;
	gk_slice ct;
	uint8_t delim[4 + 70];
	const uint8_t *body;
	size_t blen, ctlen;
	unsigned pattern;
	int fail_at, ra, rb, sel;

	if (size < 3)
		return 0;
	pattern = data[1];
	fail_at = data[2] < 16 ? data[2] : -1;
	memset(&a, 0, sizeof(a));
	a.delim = NULL;
	if (data[0] & 0x80) {
		/* the Content-Type itself from the input */
		ctlen = data[0] & 0x7f;
		if (ctlen > size - 3)
			ctlen = size - 3;
		ct = gk_slice_of(data + 3, ctlen);
		body = data + 3 + ctlen;
		blen = size - 3 - ctlen;
	} else {
		sel = data[0] % (int)(sizeof(cts) / sizeof(cts[0]));
		ct = gk_slice_str(cts[sel]);
		memcpy(delim, "\r\n--", 4);
		memcpy(delim + 4, wire[sel], strlen(wire[sel]));
		a.delim = delim;
		a.dlen = 4 + strlen(wire[sel]);
		body = data + 3;
		blen = size - 3;
	}
	a.fail_at = fail_at;
	gk_buf_init(&a.log, 1u << 22);
	gk_buf_init(&a.data, 1u << 22);
	b = a;
	ra = parse(ct, body, blen, 0, &a);
	rb = parse(ct, body, blen, pattern == 0 ? 1 : pattern, &b);
	CHECK(ra == rb);
	CHECK(a.log.len == b.log.len);
	CHECK(a.log.len == 0 || memcmp(a.log.data, b.log.data, a.log.len) == 0);
	CHECK(a.data.len == b.data.len);
	CHECK(a.data.len == 0 ||
	    memcmp(a.data.data, b.data.data, a.data.len) == 0);
	CHECK(ra == 0 || ra == GK_ERR_INVALID || ra == GK_ERR_TOO_LARGE ||
	    ra == 4242 || ra == -4343);
	gk_buf_release(&a.log);
	gk_buf_release(&a.data);
	gk_buf_release(&b.log);
	gk_buf_release(&b.data);
	return 0;
}
