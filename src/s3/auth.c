/*
 * auth.c - the SigV4 credentials of a request to the S3-compatible
 * endpoint: the Authorization header ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") or the presigned query (X-Amz-*), and
 * the payload mode (x-amz-content-sha256). verify.c checks them.
 */
#include "s3_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
