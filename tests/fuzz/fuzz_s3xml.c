/*
 * fuzz_s3xml.c - the S3 answers the gatekeeper parses (ListObjectsV2 pages
 * and error documents, expat) and the SigV4 query canonicalization, on
 * untrusted bytes.
 */
#include <stdint.h>
#include <string.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
on_key(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	size_t *n = arg;

	(void)size;
	(void)mtime;
	if (key.len > 4096)
		__builtin_trap();	/* bounded by the text cap */
	(*n)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gk_slice in = gk_slice_of(data, size);
	gk_buf next, code, msg, creq;
	s3_header h = { { (const uint8_t *)"host", 4 }, { data, size } };
	s3_canon_in ci;
	size_t n = 0;
	int trunc = 0;

	gk_buf_init(&next, 16384);
	gk_buf_init(&code, 256);
	gk_buf_init(&msg, 4096);
	gk_buf_init(&creq, 1u << 20);
	(void)s3_list_parse(in, on_key, &n, &trunc, &next);
	(void)s3_error_parse(in, &code, &msg);
	ci.method = "GET";
	ci.path = gk_slice_of("/", 1);
	ci.query = in;
	ci.headers = &h;
	ci.n_headers = 1;
	ci.payload_hash = S3_UNSIGNED_PAYLOAD;
	(void)s3_canonical_request(&ci, &creq, NULL);
	gk_buf_release(&next);
	gk_buf_release(&code);
	gk_buf_release(&msg);
	gk_buf_release(&creq);
	return 0;
}
