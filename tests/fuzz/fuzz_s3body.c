/*
 * fuzz_s3body.c - the XML request bodies of the S3 endpoint
 * (DeleteObjects, CompleteMultipartUpload; expat) on untrusted bytes.
 */
#include <stdint.h>
#include <string.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
on_key(void *arg, gk_slice key)
{
	if (key.len > 4096)
		__builtin_trap();
	(*(size_t *)arg)++;
	return 0;
}

static int
on_part(void *arg, unsigned part, gk_slice etag)
{
	if (part == 0 || part > 10000 || etag.len > 4096)
		__builtin_trap();
	(*(size_t *)arg)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gk_slice in = gk_slice_of(data, size);
	size_t n = 0;
	int quiet = 0;

	(void)s3_delete_parse(in, on_key, &n, &quiet);
	if (n > S3_DELETE_KEYS_MAX)
		__builtin_trap();
	n = 0;
	(void)s3_complete_parse(in, on_part, &n);
	if (n > S3_BODY_ITEMS_MAX)
		__builtin_trap();
	return 0;
}
