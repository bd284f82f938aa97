/*
 * checksum.c - the flexible checksums S3 clients send (x-amz-checksum-crc32,
 * -crc32c, -crc64nvme, -sha256, -sha1), as a header or as an aws-chunked
 * trailer: computed over the body and compared with the base64 value given.
 * zlib has CRC-32 only; the other two CRCs are table-driven here.
 */
#include "s3_int.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { SUM_NONE, SUM_CRC32, SUM_CRC32C, SUM_CRC64NVME, SUM_SHA256, SUM_SHA1 };

/*
 * CRC-32C (Castagnoli) and CRC-64/NVME (polynomial 0xad93d23594c93659),
 * both reflected with all-ones init and final xor: the polynomials below
 * are the bit-reversed ones.
 */
static uint32_t crc32c_table[256];
static uint64_t crc64_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	uint32_t i, j, c;
	uint64_t d;

	for (i = 0; i < 256; i++) {
		c = i;
		d = i;
		for (j = 0; j < 8; j++) {
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			d = d & 1 ? (d >> 1) ^ 0x9a6c9329ac4bc9b5u : d >> 1;
		}
		crc32c_table[i] = c;
		crc64_table[i] = d;
	}
}

static uint32_t
crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n-- > 0)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint64_t
crc64_update(uint64_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n-- > 0)
		crc = crc64_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static int
sum_kind(gk_slice t)
{
	if (gk_slice_eq_str(t, "x-amz-checksum-crc32"))
		return SUM_CRC32;
	if (gk_slice_eq_str(t, "x-amz-checksum-crc32c"))
		return SUM_CRC32C;
	if (gk_slice_eq_str(t, "x-amz-checksum-crc64nvme"))
		return SUM_CRC64NVME;
	if (gk_slice_eq_str(t, "x-amz-checksum-sha256"))
		return SUM_SHA256;
	if (gk_slice_eq_str(t, "x-amz-checksum-sha1"))
		return SUM_SHA1;
	return SUM_NONE;
}

int
s3_checksum_supported(gk_slice trailer)
{
	return sum_kind(trailer) != SUM_NONE;
}

struct s3_sum {
	int kind;
	uLong crc;
	uint32_t crc32c;
	uint64_t crc64;
	EVP_MD_CTX *md;
};

int
s3_sum_new(gk_slice name, s3_sum **out)
{
	s3_sum *c;

	*out = NULL;
	pthread_once(&crc_once, crc_init);
	if (sum_kind(name) == SUM_NONE)
		return GK_ERR_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->kind = sum_kind(name);
	c->crc = crc32(0L, Z_NULL, 0);
	if ((c->kind == SUM_SHA256 || c->kind == SUM_SHA1) &&
	    ((c->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c->md, c->kind == SUM_SHA256 ? EVP_sha256() :
	    EVP_sha1(), NULL) != 1)) {
		s3_sum_free(c);
		return GK_ERR_NOMEM;
	}
	*out = c;
	return 0;
}

int
s3_sum_update(s3_sum *c, const uint8_t *p, size_t len)
{
	switch (c->kind) {
	case SUM_CRC32:
		while (len > 0) {
			uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

			c->crc = crc32(c->crc, p, n);
			p += n;
			len -= n;
		}
		return 0;
	case SUM_CRC32C:
		c->crc32c = crc32c_update(c->crc32c, p, len);
		return 0;
	case SUM_CRC64NVME:
		c->crc64 = crc64_update(c->crc64, p, len);
		return 0;
	default:
		return EVP_DigestUpdate(c->md, p, len) == 1 ? 0 :
		    GK_ERR_INTERNAL;
	}
}

int
s3_sum_check(s3_sum *c, gk_slice b64)
{
	uint8_t d[32];
	unsigned dn = 0;
	uint32_t v;
	int i;
	gk_buf want;
	int r;

	switch (c->kind) {
	case SUM_CRC32:
	case SUM_CRC32C:
		v = c->kind == SUM_CRC32 ? (uint32_t)c->crc : c->crc32c;
		d[0] = (uint8_t)(v >> 24);
		d[1] = (uint8_t)(v >> 16);
		d[2] = (uint8_t)(v >> 8);
		d[3] = (uint8_t)v;
		dn = 4;
		break;
	case SUM_CRC64NVME:
		for (i = 0; i < 8; i++)
			d[i] = (uint8_t)(c->crc64 >> (56 - 8 * i));
		dn = 8;
		break;
	default:
		if (EVP_DigestFinal_ex(c->md, d, &dn) != 1)
			return GK_ERR_INTERNAL;
	}
	gk_buf_init(&want, 128);
	if ((r = gk_b64_encode(d, dn, &want)) == 0)
		r = want.len == b64.len && CRYPTO_memcmp(want.data, b64.p,
		    b64.len) == 0 ? 0 : GK_ERR_AUTH;
	gk_buf_release(&want);
	return r;
}

void
s3_sum_free(s3_sum *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	free(c);
}
