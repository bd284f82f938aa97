/*
 * test_multipart.c - the streaming multipart/form-data parser: the same
 * events whatever the chunking, the Content-Type header, malformed bodies,
 * limits and callbacks that abort.
 */
#include "t.h"
#include "http/http.h"

#include <stdlib.h>

/* ---- an event recorder ------------------------------------------------- */

#define MAX_REC_PARTS 80

struct rec_part {
	char name[128], filename[128], ctype[128];
	size_t name_len, filename_len, ctype_len;
	gk_buf data;
	int ended;
};

struct rec {
	struct rec_part part[MAX_REC_PARTS];
	int nparts;
	int open;		/* a part began and has not ended */
	int violations;		/* events out of order */
	size_t data_calls;
	size_t data_total;
	/* make a callback fail: which, and at which call */
	int fail_begin_at, fail_data_at, fail_end_at;
	int begins, ends;
};

static void
rec_init(struct rec *r)
{
	int i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < MAX_REC_PARTS; i++)
		gk_buf_init(&r->part[i].data, 1u << 20);
	r->fail_begin_at = r->fail_data_at = r->fail_end_at = -1;
}

static void
rec_release(struct rec *r)
{
	int i;

	for (i = 0; i < MAX_REC_PARTS; i++)
		gk_buf_release(&r->part[i].data);
}

static void
copy_field(char *dst, size_t *dlen, gk_slice s)
{
	size_t n = s.len < 127 ? s.len : 127;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
	*dlen = s.len;
}

static int
rec_begin(void *arg, gk_slice name, gk_slice filename, gk_slice ctype)
{
	struct rec *r = arg;
	struct rec_part *p;

	if (r->begins++ == r->fail_begin_at)
		return 42;
	if (r->open || r->nparts >= MAX_REC_PARTS) {
		r->violations++;
		return 0;
	}
	p = &r->part[r->nparts++];
	copy_field(p->name, &p->name_len, name);
	copy_field(p->filename, &p->filename_len, filename);
	copy_field(p->ctype, &p->ctype_len, ctype);
	r->open = 1;
	return 0;
}

static int
rec_data(void *arg, const uint8_t *d, size_t len)
{
	struct rec *r = arg;

	if ((int)r->data_calls++ == r->fail_data_at)
		return -99;
	if (!r->open || len == 0) {
		r->violations++;
		return 0;
	}
	r->data_total += len;
	if (gk_buf_append(&r->part[r->nparts - 1].data, d, len) != 0)
		r->violations++;
	return 0;
}

static int
rec_end(void *arg)
{
	struct rec *r = arg;

	if (r->ends++ == r->fail_end_at)
		return 7;
	if (!r->open) {
		r->violations++;
		return 0;
	}
	r->part[r->nparts - 1].ended = 1;
	r->open = 0;
	return 0;
}

static const gk_multipart_cb rec_cb = { rec_begin, rec_data, rec_end };

static int
rec_same(const struct rec *a, const struct rec *b)
{
	int i;

	if (a->nparts != b->nparts || a->open != b->open ||
	    a->violations != 0 || b->violations != 0)
		return 0;
	for (i = 0; i < a->nparts; i++) {
		const struct rec_part *x = &a->part[i], *y = &b->part[i];

		if (strcmp(x->name, y->name) != 0 ||
		    strcmp(x->filename, y->filename) != 0 ||
		    strcmp(x->ctype, y->ctype) != 0 ||
		    x->ended != y->ended || x->data.len != y->data.len ||
		    (x->data.len > 0 &&
		    memcmp(x->data.data, y->data.data, x->data.len) != 0))
			return 0;
	}
	return 1;
}

/* ---- feeding ----------------------------------------------------------- */

enum { CHUNK_WHOLE = 0, CHUNK_ONE = 1, CHUNK_RANDOM = 2 };

/* Feeds body in the given pattern, then finishes. Returns the first
 * non-zero result (feed or finish). */
static int
run(const char *ct, const uint8_t *body, size_t len, int pattern,
    unsigned int seed, struct rec *r)
{
	gk_multipart *m = NULL;
	size_t i = 0, n;
	int rc;

	if ((rc = http_multipart_new(gk_slice_str(ct), &rec_cb, r, &m)) != 0)
		return rc;
	while (i < len) {
		if (pattern == CHUNK_WHOLE)
			n = len - i;
		else if (pattern == CHUNK_ONE)
			n = 1;
		else {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 97;
			if (n > len - i)
				n = len - i;
		}
		/* each chunk in its own allocation, so reading past it
		 * would show under ASan */
		{
			uint8_t *c = malloc(n);

			if (c == NULL) {
				http_multipart_free(m);
				return GK_ERR_NOMEM;
			}
			memcpy(c, body + i, n);
			rc = http_multipart_feed(m, c, n);
			free(c);
		}
		if (rc != 0) {
			/* errors stick */
			if (http_multipart_feed(m, (const uint8_t *)"x", 1) !=
			    rc || http_multipart_finish(m) != rc)
				rc = 1000;
			http_multipart_free(m);
			return rc;
		}
		i += n;
	}
	rc = http_multipart_finish(m);
	http_multipart_free(m);
	return rc;
}

/* Runs the body whole, byte by byte and in random chunks; all must give
 * the same result and the same events. Returns the result; *out gets the
 * events of the whole delivery. */
static int
run_all(const char *ct, const uint8_t *body, size_t len, struct rec *out)
{
	struct rec *other = malloc(sizeof(*other));
	int rc, rc2, seed;

	rec_init(out);
	rc = run(ct, body, len, CHUNK_WHOLE, 0, out);
	if (other == NULL)
		return 2000;
	for (seed = 0; seed < 12; seed++) {
		rec_init(other);
		rc2 = run(ct, body, len, seed == 0 ? CHUNK_ONE : CHUNK_RANDOM,
		    (unsigned int)seed * 7777u, other);
		if (rc2 != rc || (rc == 0 && !rec_same(out, other))) {
			fprintf(stderr, "chunking %d differs: %d vs %d\n",
			    seed, rc2, rc);
			rc = 2001;
		}
		rec_release(other);
	}
	free(other);
	return rc;
}

/* ---- a normal form ----------------------------------------------------- */

#define BND "----WebKitFormBoundary7MA4YWxkTrZu0gW"
#define CT "multipart/form-data; boundary=" BND

static void
append(gk_buf *b, const void *p, size_t n)
{
	if (gk_buf_append(b, p, n) != 0)
		abort();
}

static void
appends(gk_buf *b, const char *s)
{
	append(b, s, strlen(s));
}

/* Binary file content full of near-delimiters. */
static void
file_content(gk_buf *b)
{
	static const char bnd[] = BND;
	uint8_t all[256];
	size_t k;
	int i;

	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	append(b, all, sizeof(all));
	appends(b, "\r\n--\r\n-\r\r\n--");
	/* every proper prefix of the delimiter, then something else */
	for (k = 0; k < sizeof(bnd) - 1; k++) {
		appends(b, "\r\n--");
		append(b, bnd, k);
		appends(b, k % 2 ? "\r" : "x");
	}
	appends(b, "--" BND);	/* no CRLF before it: data */
	appends(b, "\n--" BND);	/* LF only: data */
	appends(b, "\r--" BND);	/* CR only: data */
	append(b, "\0\0\r\0", 4);
	appends(b, "\r\n-");
	appends(b, "\r");	/* ends in CR: "\r\r\n--B" follows */
}

static void
build_form(gk_buf *body, gk_buf *file)
{
	gk_buf_init(file, 1u << 16);
	file_content(file);
	gk_buf_init(body, 1u << 16);
	appends(body, "This is the preamble. --" BND "x is not a boundary "
	    "line here\r\nneither is -- this\r\n");
	appends(body, "--" BND "\r\n"
	    "Content-Disposition: form-data; name=\"key\"\r\n\r\n"
	    "uploads/u1/photo.jpg\r\n");
	appends(body, "--" BND "\r\n"
	    "content-disposition:form-data;name=\"policy\"\r\n"
	    "X-Ignored: yes\r\n\r\n"
	    "eyJhIjoxfQ==\r\n");
	appends(body, "--" BND " \t\r\n"	/* transport padding */
	    "CONTENT-DISPOSITION: Form-Data ; NAME=token_name ; x=\"y\"\r\n"
	    "Content-Type:   text/plain ; charset=utf-8  \r\n\r\n"
	    "\r\n\r\n\r\n");
	appends(body, "--" BND "\r\n"
	    "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"
	    "\r\n");
	appends(body, "--" BND "\r\n"
	    "Content-Disposition: form-data; name=\"file\"; "
	    "filename=\"a \\\"q\\\" \\\\.bin\"\r\n"
	    "Content-Type: application/octet-stream\r\n\r\n");
	append(body, file->data, file->len);
	appends(body, "\r\n--" BND "--\r\nepilogue, ignored: --" BND
	    "\r\nContent-Disposition: junk\r\n\r\n");
}

static void
test_form(void)
{
	struct rec *r = malloc(sizeof(*r));
	gk_buf body, file;

	if (r == NULL)
		abort();
	build_form(&body, &file);
	T_EQ_INT(run_all(CT, body.data, body.len, r), 0);
	T_EQ_INT(r->violations, 0);
	T_EQ_INT(r->nparts, 5);
	T_EQ_INT(r->open, 0);
	T_EQ_STR(r->part[0].name, "key");
	T_EQ_STR(r->part[0].filename, "");
	T_EQ_STR(r->part[0].ctype, "");
	T_EQ_STR((char *)r->part[0].data.data, "uploads/u1/photo.jpg");
	T_EQ_STR(r->part[1].name, "policy");
	T_EQ_STR((char *)r->part[1].data.data, "eyJhIjoxfQ==");
	T_EQ_STR(r->part[2].name, "token_name");
	T_EQ_STR(r->part[2].ctype, "text/plain ; charset=utf-8");
	T_EQ_STR((char *)r->part[2].data.data, "\r\n\r\n");
	T_EQ_STR(r->part[3].name, "empty");
	T_EQ_INT(r->part[3].data.len, 0);
	T_EQ_STR(r->part[4].name, "file");
	T_EQ_STR(r->part[4].filename, "a \"q\" \\.bin");
	T_EQ_STR(r->part[4].ctype, "application/octet-stream");
	T_EQ_INT(r->part[4].data.len, file.len);
	T_CHECK(r->part[4].data.len == file.len &&
	    memcmp(r->part[4].data.data, file.data, file.len) == 0);
	T_CHECK(r->part[0].ended && r->part[4].ended);
	rec_release(r);
	free(r);
	gk_buf_release(&body);
	gk_buf_release(&file);
}

/* Data is passed on as soon as it cannot be part of a delimiter. */
static void
test_holdback(void)
{
	struct rec r;
	gk_multipart *m = NULL;
	const char *head = "--b\r\nContent-Disposition: form-data; "
	    "name=\"f\"\r\n\r\n";
	size_t i;

	rec_init(&r);
	T_EQ_INT(http_multipart_new(gk_slice_str("multipart/form-data; "
	    "boundary=b"), &rec_cb, &r, &m), 0);
	T_EQ_INT(http_multipart_feed(m, (const uint8_t *)head, strlen(head)),
	    0);
	T_EQ_INT(r.nparts, 1);
	for (i = 0; i < 5; i++) {
		T_EQ_INT(http_multipart_feed(m, (const uint8_t *)"hello" + i,
		    1), 0);
		T_EQ_INT(r.data_total, i + 1);
	}
	/* "\r\n--" could begin the delimiter "\r\n--b": held back */
	T_EQ_INT(http_multipart_feed(m, (const uint8_t *)"\r\n--", 4), 0);
	T_EQ_INT(r.data_total, 5);
	/* "x" proves it was data: all five bytes arrive */
	T_EQ_INT(http_multipart_feed(m, (const uint8_t *)"x", 1), 0);
	T_EQ_INT(r.data_total, 10);
	/* a held CR released by another CR, which is held in turn */
	T_EQ_INT(http_multipart_feed(m, (const uint8_t *)"\r", 1), 0);
	T_EQ_INT(r.data_total, 10);
	T_EQ_INT(http_multipart_feed(m, (const uint8_t *)"\r", 1), 0);
	T_EQ_INT(r.data_total, 11);
	T_EQ_INT(http_multipart_feed(m, (const uint8_t *)"\n--b", 4), 0);
	T_EQ_INT(r.data_total, 11);
	T_EQ_INT(r.part[0].ended, 1);
	T_EQ_INT(http_multipart_finish(m), GK_ERR_INVALID);
	T_CHECK(memcmp(r.part[0].data.data, "hello\r\n--x\r", 11) == 0);
	http_multipart_free(m);
	http_multipart_free(NULL);
	rec_release(&r);
}

/* ---- Content-Type ------------------------------------------------------- */

static int
ct_ok(const char *ct)
{
	gk_multipart *m = NULL;
	gk_multipart_cb cb = { NULL, NULL, NULL };
	int rc;

	rc = http_multipart_new(gk_slice_str(ct), &cb, NULL, &m);
	if (rc == 0 && m == NULL)
		rc = 1000;
	if (rc != 0 && m != NULL)
		rc = 1001;
	http_multipart_free(m);
	return rc;
}

/* A whole body with the given boundary as it must appear on the wire. */
static int
body_with(const char *ct, const char *wire_boundary, struct rec *r)
{
	gk_buf b;
	int rc;

	gk_buf_init(&b, 4096);
	appends(&b, "--");
	appends(&b, wire_boundary);
	appends(&b, "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
	    "value\r\n--");
	appends(&b, wire_boundary);
	appends(&b, "--");
	rc = run_all(ct, b.data, b.len, r);
	gk_buf_release(&b);
	return rc;
}

static void
test_content_type(void)
{
	static const char b70[] = "0123456789012345678901234567890123456789"
	    "012345678901234567890123456789";
	char ct[200];
	struct rec *r = malloc(sizeof(*r));
	gk_multipart *m = NULL;
	gk_multipart_cb cb = { NULL, NULL, NULL };
	const char *cut = "multipart/form-data; boundary=abcXYZ";

	if (r == NULL)
		abort();
	T_EQ_INT(ct_ok("multipart/form-data; boundary=abc"), 0);
	T_EQ_INT(ct_ok("Multipart/Form-Data; BOUNDARY=abc"), 0);
	T_EQ_INT(ct_ok("multipart/form-data;boundary=abc"), 0);
	T_EQ_INT(ct_ok("  multipart/form-data ;\tboundary=abc ; "), 0);
	T_EQ_INT(ct_ok("multipart/form-data; charset=utf-8; boundary=abc"), 0);
	T_EQ_INT(ct_ok("multipart/form-data; x=\"a;b=c\"; boundary=abc"), 0);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=\"a b:c?d\""), 0);
	snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%s", b70);
	T_EQ_INT(ct_ok(ct), 0);
	snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%sx", b70);
	T_EQ_INT(ct_ok(ct), GK_ERR_INVALID);
	snprintf(ct, sizeof(ct), "multipart/form-data; boundary=\"%sx\"", b70);
	T_EQ_INT(ct_ok(ct), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data;"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary="), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=\"\""), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=\"abc \""),
	    GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=\"a\\\"b\""),
	    GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=\"abc"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=a b"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=a; boundary=a"),
	    GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary = abc"),
	    GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=ab\x01"),
	    GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=\"a\rb\""),
	    GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/mixed; boundary=abc"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-datax; boundary=abc"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart /form-data; boundary=abc"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("text/plain; boundary=abc"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data boundary=abc"), GK_ERR_INVALID);
	T_EQ_INT(ct_ok(""), GK_ERR_INVALID);
	T_EQ_INT(ct_ok("multipart/form-data; boundary=abc; x"),
	    GK_ERR_INVALID);
	/* a NUL inside the slice is a byte like any other: invalid */
	T_EQ_INT(http_multipart_new(gk_slice_of("multipart/form-data; "
	    "boundary=ab\0c", 33), &cb, NULL, &m), GK_ERR_INVALID);
	T_CHECK(m == NULL);
	T_EQ_INT(http_multipart_new(GK_SLICE_NULL, &cb, NULL, &m),
	    GK_ERR_INVALID);
	/* the slice's length counts, not a NUL: boundary "abc" */
	rec_init(r);
	T_EQ_INT(http_multipart_new(gk_slice_of(cut, strlen(cut) - 3), &cb,
	    NULL, &m), 0);
	T_EQ_INT(http_multipart_feed(m, (const uint8_t *)"--abc--", 7), 0);
	T_EQ_INT(http_multipart_finish(m), 0);
	http_multipart_free(m);
	/* quoted boundaries, with characters a token cannot hold and with
	 * a quoted-pair */
	T_EQ_INT(body_with("multipart/form-data; boundary=\"a b:c?d\"",
	    "a b:c?d", r), 0);
	T_EQ_INT(r->nparts, 1);
	T_EQ_STR((char *)r->part[0].data.data, "value");
	rec_release(r);
	T_EQ_INT(body_with("multipart/form-data; boundary=\"x\\yz\"", "xyz", r),
	    0);
	T_EQ_INT(r->nparts, 1);
	rec_release(r);
	T_EQ_INT(body_with("multipart/form-data; boundary=\"x\\yz\"", "x\\yz",
	    r), GK_ERR_INVALID);
	rec_release(r);
	free(r);
}

/* ---- malformed bodies and limits ------------------------------------- */

#define MCT "multipart/form-data; boundary=XX"
#define CD "Content-Disposition: form-data; name=\"a\"\r\n"

static int
body_rc(const char *body)
{
	struct rec *r = malloc(sizeof(*r));
	int rc;

	if (r == NULL)
		abort();
	rc = run_all(MCT, (const uint8_t *)body, strlen(body), r);
	rec_release(r);
	free(r);
	return rc;
}

static int
body_rc_n(const char *body, size_t n)
{
	struct rec *r = malloc(sizeof(*r));
	int rc;

	if (r == NULL)
		abort();
	rc = run_all(MCT, (const uint8_t *)body, n, r);
	rec_release(r);
	free(r);
	return rc;
}

static void
test_malformed(void)
{
	/* sanity: valid forms */
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--XX--"), 0);
	T_EQ_INT(body_rc("\r\n--XX\r\n" CD "\r\nv\r\n--XX--\r\n"), 0);
	T_EQ_INT(body_rc("--XX--"), 0);		/* no parts at all */
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\n\r\n--XX--"), 0);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; name=\"\""
	    "\r\n\r\nv\r\n--XX--"), 0);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; name=a;\r\n"
	    "\r\nv\r\n--XX--"), 0);
	T_EQ_INT(body_rc("--XX\r\n" CD "Content-Type:\r\n\r\nv\r\n--XX--"), 0);
	/* missing or bad Content-Disposition */
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; "
	    "filename=\"f\"\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data\r\n\r\n"
	    "v\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Type: text/plain\r\n\r\nv\r\n"
	    "--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: attachment; "
	    "name=\"a\"\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD CD "\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; name=a; "
	    "name=b\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; "
	    "filename=x; name=a; FILENAME=y\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; "
	    "name=\"a\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; "
	    "name=\"a\"b\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; "
	    "name=\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; "
	    "name a\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "Content-Type: a\r\nContent-Type: b"
	    "\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	/* header syntax */
	T_EQ_INT(body_rc("--XX\r\n" CD "NoColonHere\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD ": empty name\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition : form-data; name=a"
	    "\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD " folded\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "X: a\nb\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "X: a\rb\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "X: a\x01" "b\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "X: a\x7f\r\n\r\nv\r\n--XX--"),
	    GK_ERR_INVALID);
	T_EQ_INT(body_rc_n("--XX\r\n" CD "X: a\0b\r\n\r\nv\r\n--XX--",
	    6 + strlen(CD) + 19), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\nContent-Disposition: form-data; name=\"a\n"
	    "\"\r\n\r\nv\r\n--XX--"), GK_ERR_INVALID);
	/* boundary lines */
	T_EQ_INT(body_rc("--XXy\r\n" CD "\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--XXy--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--XX-x"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--XX \t-- "), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\rx" CD "\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\n" CD "\r\nv\r\n--XX--"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX \r\n" CD "\r\nv\r\n--XX--"), 0);
	/* no closing delimiter at finish */
	T_EQ_INT(body_rc(""), GK_ERR_INVALID);
	T_EQ_INT(body_rc("just a preamble"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX-"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--X"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--XX"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--XX\r\n"), GK_ERR_INVALID);
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv\r\n--XX--XX"), 0);
	/* the boundary without its CRLF inside data is data */
	T_EQ_INT(body_rc("--XX\r\n" CD "\r\nv--XX\r\n--XX--"), 0);
}

static void
test_limits(void)
{
	gk_buf b;
	struct rec *r = malloc(sizeof(*r));
	size_t pad, i;
	int n;

	if (r == NULL)
		abort();
	/* GK_MP_MAX_PARTS parts, then one more */
	for (n = GK_MP_MAX_PARTS; n <= GK_MP_MAX_PARTS + 1; n++) {
		gk_buf_init(&b, 1u << 20);
		for (i = 0; i < (size_t)n; i++)
			appends(&b, "--XX\r\n" CD "\r\nv\r\n");
		appends(&b, "--XX--");
		T_EQ_INT(run_all(MCT, b.data, b.len, r),
		    n == GK_MP_MAX_PARTS ? 0 : GK_ERR_TOO_LARGE);
		if (n == GK_MP_MAX_PARTS)
			T_EQ_INT(r->nparts, GK_MP_MAX_PARTS);
		rec_release(r);
		gk_buf_release(&b);
	}
	/* a header block of exactly GK_MP_MAX_HEADER bytes, then one more */
	for (n = 0; n <= 1; n++) {
		gk_buf_init(&b, 1u << 20);
		appends(&b, "--XX\r\n" CD "X-Pad: ");
		pad = GK_MP_MAX_HEADER - strlen(CD) - strlen("X-Pad: ") - 4 +
		    (size_t)n;
		for (i = 0; i < pad; i++)
			appends(&b, "p");
		appends(&b, "\r\n\r\nv\r\n--XX--");
		T_EQ_INT(run_all(MCT, b.data, b.len, r),
		    n == 0 ? 0 : GK_ERR_TOO_LARGE);
		rec_release(r);
		gk_buf_release(&b);
	}
	/* a header block that never ends */
	gk_buf_init(&b, 1u << 20);
	appends(&b, "--XX\r\n");
	for (i = 0; i <= GK_MP_MAX_HEADER; i++)
		appends(&b, "\n");
	T_EQ_INT(run_all(MCT, b.data, b.len, r), GK_ERR_TOO_LARGE);
	rec_release(r);
	gk_buf_release(&b);
	/* endless transport padding */
	gk_buf_init(&b, 1u << 20);
	appends(&b, "--XX");
	for (i = 0; i < 1000; i++)
		appends(&b, " ");
	T_EQ_INT(run_all(MCT, b.data, b.len, r), GK_ERR_TOO_LARGE);
	rec_release(r);
	gk_buf_release(&b);
	/* issue 17: a preamble or epilogue without end is refused early,
	 * not read to the end of the body; a short one is still fine */
	for (n = 0; n <= 1; n++) {
		gk_buf_init(&b, 1u << 20);
		for (i = 0; i < (n ? 5000u : 100u); i++)
			appends(&b, "p");
		appends(&b, "\r\n--XX\r\n" CD "\r\nv\r\n--XX--\r\n");
		T_EQ_INT(run_all(MCT, b.data, b.len, r),
		    n == 0 ? 0 : GK_ERR_TOO_LARGE);
		rec_release(r);
		gk_buf_release(&b);
		gk_buf_init(&b, 1u << 20);
		appends(&b, "--XX\r\n" CD "\r\nv\r\n--XX--\r\n");
		for (i = 0; i < (n ? 5000u : 100u); i++)
			appends(&b, "e");
		T_EQ_INT(run_all(MCT, b.data, b.len, r),
		    n == 0 ? 0 : GK_ERR_TOO_LARGE);
		rec_release(r);
		gk_buf_release(&b);
	}
	/* a large part streams through in bounded memory */
	gk_buf_init(&b, 4u << 20);
	appends(&b, "--XX\r\n" CD "\r\n");
	for (i = 0; i < 100000; i++)
		appends(&b, "\r\n-X\r\n--X\r");
	appends(&b, "\r\n--XX--");
	rec_init(r);
	T_EQ_INT(run(MCT, b.data, b.len, CHUNK_RANDOM, 5, r), 0);
	T_EQ_INT(r->part[0].data.len, 1000000);
	rec_release(r);
	gk_buf_release(&b);
	free(r);
}

/* ---- callbacks that fail ------------------------------------------------ */

static void
test_callback_errors(void)
{
	const char *body = "--XX\r\n" CD "\r\nvalue one\r\n--XX\r\n" CD
	    "\r\nvalue two\r\n--XX--";
	struct rec *r = malloc(sizeof(*r));
	int pattern;

	if (r == NULL)
		abort();
	for (pattern = CHUNK_WHOLE; pattern <= CHUNK_RANDOM; pattern++) {
		rec_init(r);
		r->fail_begin_at = 1;
		T_EQ_INT(run(MCT, (const uint8_t *)body, strlen(body),
		    pattern, 3, r), 42);
		T_EQ_INT(r->nparts, 1);
		T_EQ_INT(r->begins, 2);
		rec_release(r);

		rec_init(r);
		r->fail_data_at = 0;
		T_EQ_INT(run(MCT, (const uint8_t *)body, strlen(body),
		    pattern, 3, r), -99);
		T_EQ_INT(r->nparts, 1);
		T_EQ_INT(r->ends, 0);
		rec_release(r);

		rec_init(r);
		r->fail_end_at = 0;
		T_EQ_INT(run(MCT, (const uint8_t *)body, strlen(body),
		    pattern, 3, r), 7);
		T_EQ_INT(r->nparts, 1);
		T_EQ_INT(r->begins, 1);
		rec_release(r);
	}
	free(r);
}

static void
test_null_callbacks(void)
{
	gk_multipart_cb none = { NULL, NULL, NULL };
	gk_multipart *m = NULL;
	gk_buf body, file;

	build_form(&body, &file);
	T_EQ_INT(http_multipart_new(gk_slice_str(CT), &none, NULL, &m), 0);
	T_EQ_INT(http_multipart_feed(m, body.data, body.len), 0);
	T_EQ_INT(http_multipart_feed(m, NULL, 0), 0);
	T_EQ_INT(http_multipart_finish(m), 0);
	T_EQ_INT(http_multipart_finish(m), 0);
	http_multipart_free(m);
	T_EQ_INT(http_multipart_new(gk_slice_str(CT), NULL, NULL, &m),
	    GK_ERR_INTERNAL);
	gk_buf_release(&body);
	gk_buf_release(&file);
}

int
main(void)
{
	test_form();
	test_holdback();
	test_content_type();
	test_malformed();
	test_limits();
	test_callback_errors();
	test_null_callbacks();
	return T_DONE();
}
