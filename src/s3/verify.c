/*
 * verify.c - SigV4 verification for the S3-compatible endpoint: the
 * credentials of a request (Authorization header or presigned query), the
 * signature recomputed with the signer of sigv4.c, and the aws-chunked
 * body decoder (chunk signatures, trailing checksums).
 */
#include "s3_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SKEW_S 900
#define LINE_MAX_LEN 512
#define TRAILER_MAX 4096
#define CHUNK_MAX (1ull << 40)

/* ---- small parsers ------------------------------------------------------ */

/* Copies s into dst (cap bytes with NUL); GK_ERR_INVALID when too long
 * or holding a control byte. */
static int
copy_field(char *dst, size_t cap, gk_slice s)
{
	size_t i;

	if (s.len >= cap)
		return GK_ERR_INVALID;
	for (i = 0; i < s.len; i++) {
		if (s.p[i] < 0x21 || s.p[i] == 0x7f)
			return GK_ERR_INVALID;
	}
	memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return 0;
}

static int
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < S3_SIG_HEX_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'f')))
			return 0;
	}
	return s[S3_SIG_HEX_LEN] == '\0';
}

/* "YYYYMMDDTHHMMSSZ" to unix seconds. */
static int
parse_amz_date(const char *s, int64_t *out)
{
	char iso[32];
	int64_t us;
	size_t i;

	if (strlen(s) != S3_AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
		return GK_ERR_INVALID;
	for (i = 0; i < 15; i++) {
		if (i != 8 && (s[i] < '0' || s[i] > '9'))
			return GK_ERR_INVALID;
	}
	snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", s, s + 4,
	    s + 6, s + 9, s + 11, s + 13);
	if (gk_time_parse(iso, &us) != 0)
		return GK_ERR_INVALID;
	*out = us / 1000000;
	return 0;
}

/* RFC 7231 date ("Sun, 06 Nov 1994 08:49:37 GMT") to an amz date. */
static int
http_date_to_amz(const char *s, char out[S3_AMZ_DATE_LEN + 1])
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char m[4], tz[4];
	int d, y, hh, mm, ss, i;

	if (sscanf(s, "%*3s, %2d %3s %4d %2d:%2d:%2d %3s", &d, m, &y, &hh,
	    &mm, &ss, tz) != 7 || strcmp(tz, "GMT") != 0)
		return GK_ERR_INVALID;
	for (i = 0; i < 12; i++) {
		if (strcmp(m, mon[i]) == 0)
			break;
	}
	if (i == 12 || d < 1 || d > 31 || y < 1970 || y > 9999 || hh > 23 ||
	    mm > 59 || ss > 60)
		return GK_ERR_INVALID;
	{
		char tmp[64];

		snprintf(tmp, sizeof(tmp), "%04d%02d%02dT%02d%02d%02dZ", y,
		    i + 1, d, hh, mm, ss);
		memcpy(out, tmp, S3_AMZ_DATE_LEN);
		out[S3_AMZ_DATE_LEN] = '\0';
	}
	return 0;
}

/* "AK/date8/region/service/aws4_request" */
static int
parse_credential(gk_slice cred, s3_auth *a)
{
	const uint8_t *p = cred.p, *end = cred.p + cred.len, *slash;
	gk_slice parts[5];
	int i;

	for (i = 0; i < 5; i++) {
		slash = i < 4 ? memchr(p, '/', (size_t)(end - p)) : end;
		if (slash == NULL)
			return GK_ERR_INVALID;
		parts[i] = gk_slice_of(p, (size_t)(slash - p));
		p = slash + (i < 4 ? 1 : 0);
	}
	if (parts[0].len == 0 || parts[1].len != 8 ||
	    !gk_slice_eq_str(parts[4], "aws4_request") ||
	    copy_field(a->access_key, sizeof(a->access_key), parts[0]) != 0 ||
	    copy_field(a->region, sizeof(a->region), parts[2]) != 0 ||
	    copy_field(a->service, sizeof(a->service), parts[3]) != 0 ||
	    parts[2].len == 0)
		return GK_ERR_INVALID;
	return copy_field(a->scope, sizeof(a->scope),
	    gk_slice_of(parts[1].p, cred.len - parts[0].len - 1));
}

/* The decoded value of query parameter name (first), or GK_ERR_NOT_FOUND. */
static int
query_get(gk_slice q, const char *name, gk_buf *out)
{
	size_t start = 0, end, nlen = strlen(name);

	while (start < q.len) {
		const uint8_t *amp = memchr(q.p + start, '&', q.len - start);

		end = amp ? (size_t)(amp - q.p) : q.len;
		if (end - start > nlen && q.p[start + nlen] == '=' &&
		    memcmp(q.p + start, name, nlen) == 0) {
			gk_buf_reset(out);
			return gk_pct_decode(gk_slice_of(q.p + start + nlen + 1,
			    end - start - nlen - 1), out) != 0 ?
			    GK_ERR_INVALID : 0;
		}
		start = end + 1;
	}
	return GK_ERR_NOT_FOUND;
}

static int
payload_mode(const char *v, s3_auth *a)
{
	if (strcmp(v, S3_UNSIGNED_PAYLOAD) == 0)
		a->payload = S3_PAYLOAD_UNSIGNED;
	else if (strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0)
		a->payload = S3_PAYLOAD_STREAM_SIGNED;
	else if (strcmp(v, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") == 0)
		a->payload = S3_PAYLOAD_STREAM_TRAILER;
	else if (strlen(v) == S3_SIG_HEX_LEN && is_hex64(v)) {
		a->payload = S3_PAYLOAD_HASH;
		memcpy(a->payload_hash, v, S3_SIG_HEX_LEN + 1);
	} else if (strncmp(v, "STREAMING-", 10) == 0)
		return GK_ERR_DENIED;
	else
		return GK_ERR_INVALID;
	return 0;
}

static int
parse_presigned(gk_slice q, s3_auth *a, const char **why)
{
	gk_buf v;
	uint64_t exp;
	int r = GK_ERR_INVALID;

	gk_buf_init(&v, 2048);
	a->presigned = 1;
	a->payload = S3_PAYLOAD_UNSIGNED;
	*why = "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"";
	if (query_get(q, "X-Amz-Algorithm", &v) != 0 ||
	    !gk_slice_eq_str(gk_slice_of(v.data, v.len), "AWS4-HMAC-SHA256"))
		goto out;
	*why = "Query-string authentication version 4 requires the "
	    "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
	    "X-Amz-SignedHeaders, and X-Amz-Expires parameters.";
	if (query_get(q, "X-Amz-Credential", &v) != 0 ||
	    parse_credential(gk_slice_of(v.data, v.len), a) != 0 ||
	    query_get(q, "X-Amz-Date", &v) != 0 ||
	    copy_field(a->amz_date, sizeof(a->amz_date),
	    gk_slice_of(v.data, v.len)) != 0 ||
	    parse_amz_date(a->amz_date, &a->time) != 0 ||
	    query_get(q, "X-Amz-SignedHeaders", &v) != 0 ||
	    copy_field(a->signed_headers, sizeof(a->signed_headers),
	    gk_slice_of(v.data, v.len)) != 0 ||
	    query_get(q, "X-Amz-Signature", &v) != 0 ||
	    copy_field(a->signature, sizeof(a->signature),
	    gk_slice_of(v.data, v.len)) != 0 || !is_hex64(a->signature) ||
	    query_get(q, "X-Amz-Expires", &v) != 0)
		goto out;
	*why = "X-Amz-Expires must be between 1 and 604800 seconds";
	if (gk_parse_u64(gk_slice_of(v.data, v.len), 604800, &exp) != 0 ||
	    exp == 0)
		goto out;
	a->expires = (int64_t)exp;
	r = 0;
out:
	gk_buf_release(&v);
	return r;
}

/* Finds "name=" in the Authorization parameters; value up to ',' */
static int
auth_param(gk_slice h, const char *name, gk_slice *val)
{
	size_t i = 0, n = strlen(name);

	while (i < h.len) {
		while (i < h.len && (h.p[i] == ' ' || h.p[i] == ','))
			i++;
		if (h.len - i > n && memcmp(h.p + i, name, n) == 0 &&
		    h.p[i + n] == '=') {
			size_t s = i + n + 1, e = s;

			while (e < h.len && h.p[e] != ',' && h.p[e] != ' ')
				e++;
			*val = gk_slice_of(h.p + s, e - s);
			return 0;
		}
		while (i < h.len && h.p[i] != ',')
			i++;
	}
	return GK_ERR_NOT_FOUND;
}

int
s3_auth_parse(gk_slice query, s3_header_fn hdr, void *arg, s3_auth *a,
    const char **why)
{
	static const char alg[] = "AWS4-HMAC-SHA256 ";
	gk_buf h, v;
	gk_slice rest, cred, sh, sig;
	int r = GK_ERR_INVALID;

	memset(a, 0, sizeof(*a));
	*why = "";
	gk_buf_init(&h, 8192);
	gk_buf_init(&v, 2048);
	if (query_get(query, "X-Amz-Algorithm", &v) == 0 ||
	    query_get(query, "X-Amz-Signature", &v) == 0) {
		r = parse_presigned(query, a, why);
		goto out;
	}
	if (query_get(query, "Signature", &v) == 0 ||
	    query_get(query, "AWSAccessKeyId", &v) == 0) {
		*why = "Signature Version 2 is not supported; use SigV4";
		r = GK_ERR_DENIED;
		goto out;
	}
	if (hdr(arg, "authorization", &h) != 0) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	if (h.len >= 4 && memcmp(h.data, "AWS ", 4) == 0) {
		*why = "Signature Version 2 is not supported; use SigV4";
		r = GK_ERR_DENIED;
		goto out;
	}
	*why = "The authorization header is malformed";
	if (h.len <= sizeof(alg) - 1 || memcmp(h.data, alg,
	    sizeof(alg) - 1) != 0)
		goto out;
	rest = gk_slice_of(h.data + sizeof(alg) - 1, h.len - sizeof(alg) + 1);
	if (auth_param(rest, "Credential", &cred) != 0 ||
	    auth_param(rest, "SignedHeaders", &sh) != 0 ||
	    auth_param(rest, "Signature", &sig) != 0 ||
	    parse_credential(cred, a) != 0 ||
	    copy_field(a->signed_headers, sizeof(a->signed_headers), sh) != 0 ||
	    copy_field(a->signature, sizeof(a->signature), sig) != 0 ||
	    !is_hex64(a->signature))
		goto out;
	gk_buf_reset(&v);
	if (hdr(arg, "x-amz-date", &v) == 0) {
		if (copy_field(a->amz_date, sizeof(a->amz_date),
		    gk_slice_of(v.data, v.len)) != 0 ||
		    parse_amz_date(a->amz_date, &a->time) != 0) {
			*why = "x-amz-date is not a valid date";
			goto out;
		}
	} else {
		gk_buf_reset(&v);
		if (hdr(arg, "date", &v) != 0 ||
		    gk_buf_append(&v, "", 1) != 0 ||
		    http_date_to_amz((const char *)v.data, a->amz_date) != 0 ||
		    parse_amz_date(a->amz_date, &a->time) != 0) {
			*why = "AWS authentication requires a valid Date or "
			    "x-amz-date header";
			goto out;
		}
	}
	gk_buf_reset(&v);
	if (hdr(arg, "x-amz-content-sha256", &v) != 0) {
		*why = "Missing required header for this request: "
		    "x-amz-content-sha256";
		goto out;
	}
	if (gk_buf_append(&v, "", 1) != 0)
		goto out;
	r = payload_mode((const char *)v.data, a);
	if (r == GK_ERR_DENIED)
		*why = "This x-amz-content-sha256 streaming mode is not "
		    "supported";
	else if (r != 0)
		*why = "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
		    "STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
		    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 "
		    "value.";
out:
	gk_buf_release(&h);
	gk_buf_release(&v);
	return r;
}

/* The raw query without the X-Amz-Signature parameter. */
static int
query_without_sig(gk_slice q, gk_buf *out)
{
	size_t start = 0, end;
	int first = 1, r;

	while (start < q.len) {
		const uint8_t *amp = memchr(q.p + start, '&', q.len - start);

		end = amp ? (size_t)(amp - q.p) : q.len;
		if (!(end - start >= 16 && memcmp(q.p + start,
		    "X-Amz-Signature=", 16) == 0) &&
		    !(end - start == 15 && memcmp(q.p + start,
		    "X-Amz-Signature", 15) == 0)) {
			if ((!first && (r = gk_buf_append(out, "&", 1)) != 0) ||
			    (r = gk_buf_append(out, q.p + start,
			    end - start)) != 0)
				return r;
			first = 0;
		}
		start = end + 1;
	}
	return gk_buf_append(out, "", 0);
}

int
s3_auth_verify(const s3_auth *a, s3_signer *sg, const char *secret,
    const char *method, gk_slice raw_path, gk_slice raw_query,
    s3_header_fn hdr, void *arg, int64_t now, const char **why)
{
	s3_header hs[64];
	gk_buf vals[64], path, dec, q, creq, sts;
	char sig[S3_SIG_HEX_LEN + 1], scope_want[160];
	const char *p, *e;
	size_t n = 0, i;
	int r = GK_ERR_INVALID, has_host = 0;
	s3_creds c;

	*why = "";
	gk_buf_init(&path, 16384);
	gk_buf_init(&dec, 16384);
	gk_buf_init(&q, 16384);
	gk_buf_init(&creq, 64 * 1024);
	gk_buf_init(&sts, 4096);
	snprintf(scope_want, sizeof(scope_want), "%.8s/%s/s3/aws4_request",
	    a->amz_date, s3_signer_region(sg));
	if (strcmp(a->scope, scope_want) != 0) {
		*why = strcmp(a->region, s3_signer_region(sg)) != 0 ?
		    "region" : strcmp(a->service, "s3") != 0 ? "service" :
		    "date";
		goto out;
	}
	if (a->presigned) {
		if (a->time - now > SKEW_S) {
			r = GK_ERR_EXPIRED;
			*why = "not yet valid";
			goto out;
		}
		if (now > a->time + a->expires) {
			r = GK_ERR_EXPIRED;
			*why = "expired";
			goto out;
		}
	} else if (a->time - now > SKEW_S || now - a->time > SKEW_S) {
		r = GK_ERR_EXPIRED;
		*why = "skew";
		goto out;
	}
	/* the signed headers, in the order given (must be sorted) */
	for (p = a->signed_headers; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, ';');
		if (e == NULL)
			e = p + strlen(p);
		if (e == p || n == GK_ARRAY_LEN(hs) || e - p > 128) {
			*why = "signed headers";
			goto out_vals;
		}
		{
			char name[129];

			memcpy(name, p, (size_t)(e - p));
			name[e - p] = '\0';
			for (i = 0; name[i] != '\0'; i++) {
				if (name[i] >= 'A' && name[i] <= 'Z') {
					*why = "signed headers";
					goto out_vals;
				}
			}
			if (strcmp(name, "host") == 0)
				has_host = 1;
			gk_buf_init(&vals[n], 16384);
			hs[n].name = gk_slice_of(p, (size_t)(e - p));
			if (hdr(arg, name, &vals[n]) != 0) {
				n++;
				*why = "a signed header is missing";
				goto out_vals;
			}
			hs[n].value = gk_slice_of(vals[n].data, vals[n].len);
			n++;
		}
	}
	if (!has_host) {
		*why = "host must be signed";
		goto out_vals;
	}
	if ((r = gk_pct_decode(raw_path, &dec)) != 0 ||
	    (r = gk_pct_encode(gk_slice_of(dec.data, dec.len), 1,
	    &path)) != 0 ||
	    (r = query_without_sig(raw_query, &q)) != 0) {
		r = GK_ERR_INVALID;
		*why = "malformed path or query";
		goto out_vals;
	}
	{
		s3_canon_in in;

		memset(&in, 0, sizeof(in));
		in.method = method;
		in.path = gk_slice_of(path.data, path.len);
		in.query = gk_slice_of(q.data, q.len);
		in.headers = hs;
		in.n_headers = n;
		in.payload_hash = a->presigned ? S3_UNSIGNED_PAYLOAD :
		    a->payload == S3_PAYLOAD_HASH ? a->payload_hash :
		    a->payload == S3_PAYLOAD_UNSIGNED ? S3_UNSIGNED_PAYLOAD :
		    a->payload == S3_PAYLOAD_STREAM_SIGNED ?
		    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" :
		    "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
		if ((r = s3_canonical_request(&in, &creq, NULL)) != 0) {
			r = GK_ERR_INVALID;
			*why = "malformed request";
			goto out_vals;
		}
	}
	memset(&c, 0, sizeof(c));
	c.access_key_id = (char *)a->access_key;
	c.secret_key = (char *)secret;
	if ((r = s3_string_to_sign(a->amz_date, a->scope,
	    gk_slice_of(creq.data, creq.len), &sts)) != 0 ||
	    (r = s3_signer_sign(sg, &c, a->amz_date,
	    gk_slice_of(sts.data, sts.len), sig)) != 0)
		goto out_vals;
	r = CRYPTO_memcmp(sig, a->signature, S3_SIG_HEX_LEN) == 0 ? 0 :
	    GK_ERR_AUTH;
	gk_wipe(sig, sizeof(sig));
out_vals:
	for (i = 0; i < n; i++)
		gk_buf_release(&vals[i]);
out:
	gk_buf_release(&path);
	gk_buf_release(&dec);
	gk_buf_release(&q);
	gk_buf_release(&creq);
	gk_buf_release(&sts);
	return r;
}

/* ---- aws-chunked ------------------------------------------------------------ */

enum { CK_SIZE, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_DONE };
enum { SUM_NONE, SUM_CRC32, SUM_CRC32C, SUM_SHA256, SUM_SHA1 };

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

/* CRC-32C (Castagnoli), reflected, table-driven. */
static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void
crc32c_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc32c_table[i] = c;
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

static int
sum_kind(gk_slice t)
{
	if (gk_slice_eq_str(t, "x-amz-checksum-crc32"))
		return SUM_CRC32;
	if (gk_slice_eq_str(t, "x-amz-checksum-crc32c"))
		return SUM_CRC32C;
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
	EVP_MD_CTX *md;
};

int
s3_sum_new(gk_slice name, s3_sum **out)
{
	s3_sum *c;

	*out = NULL;
	pthread_once(&crc32c_once, crc32c_init);
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
	pthread_once(&crc32c_once, crc32c_init);
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
