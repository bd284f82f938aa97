/*
 * chunked.c - the aws-chunked body decoder of the S3-compatible endpoint:
 * chunk sizes and extensions, each chunk's signature chained from the
 * request's (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) or the trailing checksum
 * (STREAMING-UNSIGNED-PAYLOAD-TRAILER, checked by checksum.c).
 */
#include "s3_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_LEN 512
#define TRAILER_MAX 4096
#define CHUNK_MAX (1ull << 40)

enum { CK_SIZE, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_DONE };

struct s3_chunked {
	int payload;
	int state;
	int err;
	uint8_t line[LINE_MAX_LEN];
	size_t line_len;
	uint64_t left;			/* data bytes left in this chunk */
	uint64_t decoded;
	int last;			/* the 0-size chunk was seen */
	/* signed mode */
	s3_signer *sg;
	char *secret;
	char amz_date[S3_AMZ_DATE_LEN + 1];
	char scope[160];
	char prev_sig[S3_SIG_HEX_LEN + 1];
	char chunk_sig[S3_SIG_HEX_LEN + 1];
	EVP_MD_CTX *chunk_md;
	/* trailer mode */
	s3_sum *sum;
	char trailer[64];
	uint8_t tbuf[TRAILER_MAX];
	size_t tlen;
	s3_chunk_out_fn out;
	void *arg;
};


int
s3_chunked_new(int payload, const s3_auth *a, s3_signer *sg,
    const char *secret, const char *trailer, s3_chunk_out_fn out, void *arg,
    s3_chunked **outp)
{
	s3_chunked *c;

	*outp = NULL;
	if (payload != S3_PAYLOAD_STREAM_SIGNED &&
	    payload != S3_PAYLOAD_STREAM_TRAILER)
		return GK_ERR_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->payload = payload;
	c->out = out;
	c->arg = arg;
	if (payload == S3_PAYLOAD_STREAM_SIGNED) {
		c->sg = sg;
		if ((c->secret = strdup(secret)) == NULL ||
		    (c->chunk_md = EVP_MD_CTX_new()) == NULL)
			goto nomem;
		memcpy(c->amz_date, a->amz_date, sizeof(c->amz_date));
		memcpy(c->scope, a->scope, sizeof(c->scope));
		memcpy(c->prev_sig, a->signature, sizeof(c->prev_sig));
	} else {
		if (s3_sum_new(gk_slice_str(trailer), &c->sum) != 0) {
			s3_chunked_free(c);
			return GK_ERR_INVALID;
		}
		snprintf(c->trailer, sizeof(c->trailer), "%s", trailer);
	}
	*outp = c;
	return 0;
nomem:
	s3_chunked_free(c);
	return GK_ERR_NOMEM;
}

void
s3_chunked_free(s3_chunked *c)
{
	if (c == NULL)
		return;
	if (c->secret != NULL) {
		OPENSSL_cleanse(c->secret, strlen(c->secret));
		free(c->secret);
	}
	EVP_MD_CTX_free(c->chunk_md);
	s3_sum_free(c->sum);
	free(c);
}

uint64_t
s3_chunked_decoded(const s3_chunked *c)
{
	return c->decoded;
}

/* A size line: "hex[;chunk-signature=sig]" (line without CRLF). */
static int
size_line(s3_chunked *c)
{
	gk_slice l = gk_slice_of(c->line, c->line_len);
	size_t i = 0;
	uint64_t n = 0;
	int v;

	while (i < l.len && (v = gk_hex_val(l.p[i])) >= 0) {
		if (i >= 11)	/* < 2^44 */
			return GK_ERR_INVALID;
		n = n << 4 | (uint64_t)v;
		i++;
	}
	if (i == 0 || n > CHUNK_MAX)
		return GK_ERR_INVALID;
	if (c->payload == S3_PAYLOAD_STREAM_SIGNED) {
		static const char ext[] = ";chunk-signature=";

		if (l.len - i != sizeof(ext) - 1 + S3_SIG_HEX_LEN ||
		    memcmp(l.p + i, ext, sizeof(ext) - 1) != 0)
			return GK_ERR_INVALID;
		memcpy(c->chunk_sig, l.p + i + sizeof(ext) - 1,
		    S3_SIG_HEX_LEN);
		c->chunk_sig[S3_SIG_HEX_LEN] = '\0';
		if (EVP_DigestInit_ex(c->chunk_md, EVP_sha256(), NULL) != 1)
			return GK_ERR_INTERNAL;
	} else if (i != l.len) {
		return GK_ERR_INVALID;
	}
	c->left = n;
	c->last = n == 0;
	return 0;
}

/* End of a chunk's data (signed mode): its signature. */
static int
chunk_check(s3_chunked *c)
{
	uint8_t d[32];
	char hex[65], sig[S3_SIG_HEX_LEN + 1];
	unsigned dn = 0;
	gk_buf sts;
	s3_creds cr;
	int r;

	if (c->payload != S3_PAYLOAD_STREAM_SIGNED)
		return 0;
	if (EVP_DigestFinal_ex(c->chunk_md, d, &dn) != 1)
		return GK_ERR_INTERNAL;
	gk_hex_encode(d, 32, hex);
	gk_buf_init(&sts, 1024);
	memset(&cr, 0, sizeof(cr));
	cr.secret_key = c->secret;
	r = gk_buf_printf(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s",
	    c->amz_date, c->scope, c->prev_sig, S3_EMPTY_SHA256, hex);
	if (r == 0)
		r = s3_signer_sign(c->sg, &cr, c->amz_date,
		    gk_slice_of(sts.data, sts.len), sig);
	gk_buf_release(&sts);
	if (r != 0)
		return r;
	if (CRYPTO_memcmp(sig, c->chunk_sig, S3_SIG_HEX_LEN) != 0)
		return GK_ERR_AUTH;
	memcpy(c->prev_sig, c->chunk_sig, sizeof(c->prev_sig));
	return 0;
}

static int
data(s3_chunked *c, const uint8_t *p, size_t n)
{
	if (c->payload == S3_PAYLOAD_STREAM_SIGNED) {
		if (EVP_DigestUpdate(c->chunk_md, p, n) != 1)
			return GK_ERR_INTERNAL;
	} else if (s3_sum_update(c->sum, p, n) != 0) {
		return GK_ERR_INTERNAL;
	}
	c->decoded += n;
	return c->out(c->arg, p, n);
}

int
s3_chunked_feed(s3_chunked *c, const uint8_t *p, size_t len)
{
	size_t i = 0, k;
	int r;

	if (c->err != 0)
		return c->err;
	while (i < len) {
		switch (c->state) {
		case CK_SIZE:
			if (p[i] == '\n') {
				if (c->line_len == 0 ||
				    c->line[c->line_len - 1] != '\r') {
					r = GK_ERR_INVALID;
					goto fail;
				}
				c->line_len--;
				if ((r = size_line(c)) != 0)
					goto fail;
				c->line_len = 0;
				i++;
				if (c->last) {
					if ((r = chunk_check(c)) != 0)
						goto fail;
					c->state = CK_TRAILER;
				} else {
					c->state = CK_DATA;
				}
				break;
			}
			if (c->line_len == sizeof(c->line)) {
				r = GK_ERR_INVALID;
				goto fail;
			}
			c->line[c->line_len++] = p[i++];
			break;
		case CK_DATA:
			k = len - i;
			if (k > c->left)
				k = (size_t)c->left;
			if ((r = data(c, p + i, k)) != 0)
				goto fail;
			c->left -= k;
			i += k;
			if (c->left == 0)
				c->state = CK_DATA_CR;
			break;
		case CK_DATA_CR:
			if (p[i++] != '\r') {
				r = GK_ERR_INVALID;
				goto fail;
			}
			c->state = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (p[i++] != '\n') {
				r = GK_ERR_INVALID;
				goto fail;
			}
			if ((r = chunk_check(c)) != 0)
				goto fail;
			c->state = CK_SIZE;
			break;
		case CK_TRAILER:
			if (c->tlen == sizeof(c->tbuf)) {
				r = GK_ERR_INVALID;
				goto fail;
			}
			c->tbuf[c->tlen++] = p[i++];
			/* ends with an empty line */
			if ((c->tlen == 2 && memcmp(c->tbuf, "\r\n", 2) == 0) ||
			    (c->tlen >= 4 && memcmp(c->tbuf + c->tlen - 4,
			    "\r\n\r\n", 4) == 0))
				c->state = CK_DONE;
			break;
		case CK_DONE:
			/* nothing may follow but (tolerated) line ends */
			if (p[i] != '\r' && p[i] != '\n') {
				r = GK_ERR_INVALID;
				goto fail;
			}
			i++;
			break;
		}
	}
	return 0;
fail:
	c->err = r;
	return r;
}

/* The trailer's value for our checksum (base64), compared. */
static int
trailer_check(s3_chunked *c)
{
	gk_slice t = gk_slice_of(c->tbuf, c->tlen), line, val = GK_SLICE_NULL;
	size_t i = 0, e, nl = strlen(c->trailer);
	int found = 0;

	while (i < t.len) {
		const uint8_t *lf = memchr(t.p + i, '\n', t.len - i);

		e = lf ? (size_t)(lf - t.p) : t.len;
		line = gk_slice_of(t.p + i, e - i);
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		i = e + 1;
		/* other trailers (x-amz-trailer-signature) are ignored */
		if (line.len > nl && strncasecmp((const char *)line.p,
		    c->trailer, nl) == 0 && line.p[nl] == ':') {
			if (found)
				return GK_ERR_INVALID;
			val = gk_slice_of(line.p + nl + 1, line.len - nl - 1);
			while (val.len > 0 && (val.p[0] == ' ' ||
			    val.p[0] == '\t')) {
				val.p++;
				val.len--;
			}
			found = 1;
		}
	}
	if (!found)
		return GK_ERR_INVALID;
	return s3_sum_check(c->sum, val);
}

int
s3_chunked_finish(s3_chunked *c)
{
	if (c->err != 0)
		return c->err;
	/* a signed stream may end right after the final chunk's CRLF */
	if (c->state != CK_DONE && !(c->state == CK_TRAILER &&
	    c->payload == S3_PAYLOAD_STREAM_SIGNED && (c->tlen == 0 ||
	    (c->tlen == 2 && memcmp(c->tbuf, "\r\n", 2) == 0))))
		return c->err = GK_ERR_INVALID;
	if (c->payload == S3_PAYLOAD_STREAM_TRAILER)
		return c->err = trailer_check(c);
	return 0;
}
