/*
 * fuzz_chunked.c - the aws-chunked body decoder on untrusted bytes, in
 * both modes (signed chunks; unsigned chunks with a checksum trailer of
 * each kind), fed in pieces of varying size. The decoded bytes never exceed the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
sink(void *arg, const uint8_t *p, size_t len)
{
	(void)p;
	*(uint64_t *)arg += len;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const sums[] = { "x-amz-checksum-crc32",
	    "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
	    "x-amz-checksum-sha256", "x-amz-checksum-sha1" };
	static s3_signer *sg;
	s3_chunked *c;
	s3_auth a;
	uint64_t n;
	size_t off, step;
	int mode;

	if (sg == NULL && s3_signer_new("us-east-1", "s3", &sg) != 0)
		abort();
	if (size < 1)
		return 0;
	mode = data[0] & 1 ? S3_PAYLOAD_STREAM_SIGNED :
	    S3_PAYLOAD_STREAM_TRAILER;
	step = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	memset(&a, 0, sizeof(a));
	memcpy(a.amz_date, "20261130T000000Z", 17);
	memcpy(a.scope, "20261130/us-east-1/s3/aws4_request", 35);
	memset(a.signature, 'a', 64);
	n = 0;
	if (s3_chunked_new(mode, &a, sg, "secret", sums[size % 5], sink, &n,
	    &c) != 0)
		abort();
	for (off = 0; off < size; off += step) {
		if (s3_chunked_feed(c, data + off, size - off < step ?
		    size - off : step) != 0)
			break;
	}
	(void)s3_chunked_finish(c);
	if (n > size || s3_chunked_decoded(c) != n)
		__builtin_trap();
	s3_chunked_free(c);
	return 0;
}
