/*
 * fuzz_s3parts.c - names and answers the S3 endpoint reads back from the
 * store on untrusted bytes: a multipart part's name in the bucket
 * ("pNNNNN" or "pNNNNN.<size>.<hex ETag>") and the leaf of a bucket's
 * small XML answer (the upload id of CreateMultipartUpload).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gate/s3api_int.h"
#include "s3/s3_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char etag[S3_ETAG_MAX];
	uint64_t psize;
	unsigned part;
	char *leaf;
	size_t i;

	if (s3api_part_name_parse(gk_slice_of(data, size), &part, &psize,
	    etag) == 0) {
		if (part == 0 || part > S3API_MAX_PARTS ||
		    strlen(etag) >= S3_ETAG_MAX)
			__builtin_trap();
		for (i = 0; etag[i] != '\0'; i++)
			if ((unsigned char)etag[i] < 0x20 ||
			    (unsigned char)etag[i] > 0x7e)
				__builtin_trap();
	}
	leaf = s3_xml_leaf(gk_slice_of(data, size), "UploadId");
	if (leaf != NULL && (strlen(leaf) == 0 || strlen(leaf) > 1024))
		__builtin_trap();
	free(leaf);
	return 0;
}
