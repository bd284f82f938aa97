/*
 * test_s3verify.c - SigV4 verification for the S3 endpoint against AWS's
 * published S3 examples (GET with the Authorization header, a presigned
 * GET, and the STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload with its chunk
 * signatures), tampering, clock skew, and the aws-chunked trailer mode.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "s3/s3.h"
#include "t.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T0 1369353600	/* 20130524T000000Z */

struct hdrs {
	const char *const *kv;	/* name, value, ..., NULL */
};

static int
lookup(void *arg, const char *lname, gk_buf *out)
{
	struct hdrs *h = arg;
	size_t i;

	for (i = 0; h->kv[i] != NULL; i += 2) {
		if (strcasecmp(h->kv[i], lname) == 0)
			return gk_buf_append_str(out, h->kv[i + 1]);
	}
	return GK_ERR_NOT_FOUND;
}

static s3_signer *sg;

static int
check(const char *const *kv, const char *method, const char *path,
    const char *query, int64_t now, const char *secret)
{
	struct hdrs h = { kv };
	const char *why;
	s3_auth a;
	int r;

	r = s3_auth_parse(gk_slice_str(query), lookup, &h, &a, &why);
	if (r != 0)
		return r;
	return s3_auth_verify(&a, sg, secret, method, gk_slice_str(path),
	    gk_slice_str(query), lookup, &h, now, &why);
}

static void
test_get_header(void)
{
	const char *kv[] = {
		"Host", "examplebucket.s3.amazonaws.com",
		"Range", "bytes=0-9",
		"x-amz-content-sha256", S3_EMPTY_SHA256,
		"x-amz-date", "20130524T000000Z",
		"Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
		    "20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;"
		    "x-amz-content-sha256;x-amz-date,Signature="
		    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		NULL };
	const char *bad_range[] = {
		"Host", "examplebucket.s3.amazonaws.com",
		"Range", "bytes=0-99",
		"x-amz-content-sha256", S3_EMPTY_SHA256,
		"x-amz-date", "20130524T000000Z",
		"Authorization", kv[9], NULL };

	T_EQ_INT(check(kv, "GET", "/test.txt", "", T0 + 60, SECRET), 0);
	T_EQ_INT(check(kv, "GET", "/test.txt", "", T0 + 60, "wrong"),
	    GK_ERR_AUTH);
	T_EQ_INT(check(kv, "HEAD", "/test.txt", "", T0 + 60, SECRET),
	    GK_ERR_AUTH);
	T_EQ_INT(check(kv, "GET", "/test.txt2", "", T0 + 60, SECRET),
	    GK_ERR_AUTH);
	T_EQ_INT(check(bad_range, "GET", "/test.txt", "", T0, SECRET),
	    GK_ERR_AUTH);
	/* 15 minutes of skew either way, not more */
	T_EQ_INT(check(kv, "GET", "/test.txt", "", T0 + 900, SECRET), 0);
	T_EQ_INT(check(kv, "GET", "/test.txt", "", T0 - 900, SECRET), 0);
	T_EQ_INT(check(kv, "GET", "/test.txt", "", T0 + 901, SECRET),
	    GK_ERR_EXPIRED);
	T_EQ_INT(check(kv, "GET", "/test.txt", "", T0 - 901, SECRET),
	    GK_ERR_EXPIRED);
}

static void
test_presigned(void)
{
	const char *kv[] = { "Host", "examplebucket.s3.amazonaws.com", NULL };
	const char *q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
	    "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
	    "X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
	    "X-Amz-SignedHeaders=host&X-Amz-Signature="
	    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

	T_EQ_INT(check(kv, "GET", "/test.txt", q, T0 + 3600, SECRET), 0);
	T_EQ_INT(check(kv, "GET", "/test.txt", q, T0 + 86401, SECRET),
	    GK_ERR_EXPIRED);
	T_EQ_INT(check(kv, "GET", "/test.txt", q, T0 - 901, SECRET),
	    GK_ERR_EXPIRED);
	T_EQ_INT(check(kv, "GET", "/other.txt", q, T0 + 1, SECRET),
	    GK_ERR_AUTH);
}

struct sink {
	uint64_t n;
	int bad;
};

static int
sink(void *arg, const uint8_t *p, size_t len)
{
	struct sink *s = arg;
	size_t i;

	for (i = 0; i < len; i++)
		s->bad |= p[i] != 'a';
	s->n += len;
	return 0;
}

/* AWS's example: 64 KiB + 1 KiB of 'a' in three signed chunks. */
static int
streaming(int flip, size_t step, uint64_t *decoded)
{
	static const char *sigs[3] = {
	    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
	    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
	    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9" };
	static const size_t lens[3] = { 65536, 1024, 0 };
	const char *kv[] = {
		"Host", "s3.amazonaws.com",
		"x-amz-date", "20130524T000000Z",
		"x-amz-storage-class", "REDUCED_REDUNDANCY",
		"Content-Encoding", "aws-chunked",
		"x-amz-decoded-content-length", "66560",
		"Content-Length", "66824",
		"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		"Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
		    "20130524/us-east-1/s3/aws4_request,SignedHeaders="
		    "content-encoding;content-length;host;x-amz-content-sha256;"
		    "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
		    "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f"
		    "7db9fa80a0a9",
		NULL };
	struct hdrs h = { kv };
	struct sink sk = { 0, 0 };
	s3_chunked *c;
	s3_auth a;
	gk_buf body;
	const char *why;
	size_t i, off;
	int r;

	if ((r = s3_auth_parse(GK_SLICE_NULL, lookup, &h, &a, &why)) != 0 ||
	    (r = s3_auth_verify(&a, sg, SECRET, "PUT",
	    gk_slice_str("/examplebucket/chunkObject.txt"), GK_SLICE_NULL,
	    lookup, &h, T0, &why)) != 0)
		return r;
	if (a.payload != S3_PAYLOAD_STREAM_SIGNED)
		return GK_ERR_INTERNAL;
	gk_buf_init(&body, 1u << 20);
	for (i = 0; i < 3; i++) {
		if (gk_buf_printf(&body, "%zx;chunk-signature=%s\r\n", lens[i],
		    sigs[i]) != 0)
			return GK_ERR_NOMEM;
		for (off = 0; off < lens[i]; off++) {
			if (gk_buf_append(&body, "a", 1) != 0)
				return GK_ERR_NOMEM;
		}
		if (gk_buf_append(&body, "\r\n", 2) != 0)
			return GK_ERR_NOMEM;
	}
	if (body.len != 66824)
		return GK_ERR_INTERNAL;
	if (flip)
		body.data[70000 % body.len] ^= 1;
	if (s3_chunked_new(a.payload, &a, sg, SECRET, NULL, sink, &sk,
	    &c) != 0)
		return GK_ERR_INTERNAL;
	for (off = 0, r = 0; off < body.len && r == 0; off += step)
		r = s3_chunked_feed(c, body.data + off, body.len - off < step ?
		    body.len - off : step);
	if (r == 0)
		r = s3_chunked_finish(c);
	*decoded = sk.n;
	if (r == 0 && sk.bad)
		r = GK_ERR_INTEGRITY;
	s3_chunked_free(c);
	gk_buf_release(&body);
	return r;
}

static void
test_streaming(void)
{
	uint64_t n = 0;

	T_EQ_INT(streaming(0, 1u << 20, &n), 0);
	T_EQ_INT(n, 66560);
	T_EQ_INT(streaming(0, 1, &n), 0);	/* byte by byte */
	T_EQ_INT(streaming(0, 4097, &n), 0);
	T_EQ_INT(streaming(1, 4096, &n), GK_ERR_AUTH);
}

static int
trailer_run(const char *body, size_t len, const char *trailer)
{
	struct sink sk = { 0, 0 };
	s3_chunked *c;
	s3_auth a;
	int r;

	memset(&a, 0, sizeof(a));
	if (s3_chunked_new(S3_PAYLOAD_STREAM_TRAILER, &a, sg, NULL, trailer,
	    sink, &sk, &c) != 0)
		return GK_ERR_INTERNAL;
	r = s3_chunked_feed(c, (const uint8_t *)body, len);
	if (r == 0)
		r = s3_chunked_finish(c);
	s3_chunked_free(c);
	return r;
}

static void
test_trailer(void)
{
	char body[256], b64[16];
	uint32_t crc = (uint32_t)crc32(0, (const uint8_t *)"aaaaa", 5);
	uint8_t be[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
	    (uint8_t)(crc >> 8), (uint8_t)crc };
	gk_buf b;
	int n;

	gk_buf_init(&b, 64);
	T_EQ_INT(gk_b64_encode(be, 4, &b), 0);
	snprintf(b64, sizeof(b64), "%.*s", (int)b.len, (const char *)b.data);
	gk_buf_release(&b);
	n = snprintf(body, sizeof(body), "5\r\naaaaa\r\n0\r\n"
	    "x-amz-checksum-crc32:%s\r\n\r\n", b64);
	T_EQ_INT(trailer_run(body, (size_t)n, "x-amz-checksum-crc32"), 0);
	n = snprintf(body, sizeof(body), "5\r\naaaab\r\n0\r\n"
	    "x-amz-checksum-crc32:%s\r\n\r\n", b64);
	T_EQ_INT(trailer_run(body, (size_t)n, "x-amz-checksum-crc32"),
	    GK_ERR_AUTH);
	/* a missing trailer, a truncated body, a bad size line */
	T_EQ_INT(trailer_run("5\r\naaaaa\r\n0\r\n\r\n", 17,
	    "x-amz-checksum-crc32"), GK_ERR_INVALID);
	T_EQ_INT(trailer_run("5\r\naaa", 6, "x-amz-checksum-crc32"),
	    GK_ERR_INVALID);
	T_EQ_INT(trailer_run("zz\r\n", 4, "x-amz-checksum-crc32"),
	    GK_ERR_INVALID);
	T_CHECK(!s3_checksum_supported(gk_slice_str("x-amz-checksum-md5")));
}

/* Each flexible checksum's standard check value (over "123456789"), and
 * the same bytes fed in two pieces; one bit off is GK_ERR_AUTH. */
static void
test_sums(void)
{
	static const struct {
		const char *name, *b64;
	} v[] = {
		{ "x-amz-checksum-crc32", "y/Q5Jg==" },		/* cbf43926 */
		{ "x-amz-checksum-crc32c", "4waSgw==" },	/* e3069283 */
		{ "x-amz-checksum-crc64nvme", "rosUhgp5mIg=" },	/* ae8b14860a799888 */
		{ "x-amz-checksum-sha1", "98O8HYCOBHMq32eZZczDTKeuNEE=" },
	};
	s3_sum *c;
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(v); i++) {
		T_EQ_INT(s3_sum_new(gk_slice_str(v[i].name), &c), 0);
		T_EQ_INT(s3_sum_update(c, (const uint8_t *)"1234", 4), 0);
		T_EQ_INT(s3_sum_update(c, (const uint8_t *)"56789", 5), 0);
		T_EQ_INT(s3_sum_check(c, gk_slice_str(v[i].b64)), 0);
		s3_sum_free(c);
		T_EQ_INT(s3_sum_new(gk_slice_str(v[i].name), &c), 0);
		T_EQ_INT(s3_sum_update(c, (const uint8_t *)"123456788", 9), 0);
		T_EQ_INT(s3_sum_check(c, gk_slice_str(v[i].b64)), GK_ERR_AUTH);
		s3_sum_free(c);
	}
	T_EQ_INT(s3_checksum_supported(gk_slice_str(
	    "x-amz-checksum-crc64nvme")), 1);
	T_EQ_INT(s3_sum_new(gk_slice_str("x-amz-checksum-md5"), &c),
	    GK_ERR_INVALID);
}

static void
test_malformed(void)
{
	const char *kv1[] = { "Authorization", "AWS AKID:sig", NULL };
	const char *kv2[] = { "Authorization", "AWS4-HMAC-SHA256 Credential=x",
	    "x-amz-date", "20130524T000000Z", NULL };
	const char *kv3[] = { NULL };
	struct hdrs h;
	const char *why;
	s3_auth a;

	h.kv = kv1;
	T_EQ_INT(s3_auth_parse(GK_SLICE_NULL, lookup, &h, &a, &why),
	    GK_ERR_DENIED);
	h.kv = kv2;
	T_EQ_INT(s3_auth_parse(GK_SLICE_NULL, lookup, &h, &a, &why),
	    GK_ERR_INVALID);
	h.kv = kv3;
	T_EQ_INT(s3_auth_parse(GK_SLICE_NULL, lookup, &h, &a, &why),
	    GK_ERR_NOT_FOUND);
	T_EQ_INT(s3_auth_parse(gk_slice_str("X-Amz-Algorithm=AWS4-HMAC-SHA256"
	    "&X-Amz-Expires=0"), lookup, &h, &a, &why), GK_ERR_INVALID);
}

int
main(void)
{
	if (s3_signer_new("us-east-1", "s3", &sg) != 0)
		return 1;
	test_get_header();
	test_presigned();
	test_streaming();
	test_trailer();
	test_malformed();
	test_sums();
	s3_signer_free(sg);
	return T_DONE();
}
