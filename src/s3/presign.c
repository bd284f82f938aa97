/*
 * presign.c - what the browser takes to the bucket itself: presigned GET
 * URLs and POST policies (boto3's shape).
 */
#include "s3_int.h"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#define MAX_PARAMS 64
#define MAX_HEADERS 64
#define CANON_CAP (64u * 1024)
#define URL_CAP (16u * 1024)

/* ---- presigned GET ---------------------------------------------------- */

static int
append_enc(gk_buf *b, gk_slice s)
{
	return gk_pct_encode(s, 0, b);
}

int
s3_presign_get(s3_target *t, const s3_creds *c, gk_slice key, int64_t now,
    unsigned ttl, gk_slice disposition, gk_buf *url)
{
	char amz[S3_AMZ_DATE_LEN + 1], sig[S3_SIG_HEX_LEN + 1];
	gk_buf host, path, q, scope, cred, creq, sts;
	s3_header hh;
	s3_canon_in in;
	int r;

	if (ttl < 1 || ttl > 604800 || key.len == 0 || c->access_key_id == NULL)
		return GK_ERR_INVALID;
	gk_buf_init(&host, 512);
	gk_buf_init(&path, URL_CAP);
	gk_buf_init(&q, URL_CAP);
	gk_buf_init(&scope, 512);
	gk_buf_init(&cred, 1024);
	gk_buf_init(&creq, CANON_CAP);
	gk_buf_init(&sts, 1024);
	s3_amz_date(now, amz);
	if ((r = s3_object_url(t, key, url, &host, &path)) != 0 ||
	    (r = s3_signer_scope(t->signer, amz, &scope)) != 0 ||
	    (r = gk_buf_printf(&cred, "%s/%s", c->access_key_id,
	    scope.data)) != 0)
		goto out;
	if (disposition.len > 0 &&
	    ((r = gk_buf_append_str(&q, "response-content-disposition=")) != 0 ||
	    (r = append_enc(&q, disposition)) != 0 ||
	    (r = gk_buf_append(&q, "&", 1)) != 0))
		goto out;
	if ((r = gk_buf_append_str(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256"
	    "&X-Amz-Credential=")) != 0 ||
	    (r = append_enc(&q, gk_slice_of(cred.data, cred.len))) != 0 ||
	    (r = gk_buf_printf(&q, "&X-Amz-Date=%s&X-Amz-SignedHeaders=host"
	    "&X-Amz-Expires=%u", amz, ttl)) != 0)
		goto out;
	if (c->session_token != NULL &&
	    ((r = gk_buf_append_str(&q, "&X-Amz-Security-Token=")) != 0 ||
	    (r = append_enc(&q, gk_slice_str(c->session_token))) != 0))
		goto out;
	hh.name = gk_slice_str("host");
	hh.value = gk_slice_of(host.data, host.len);
	in.method = "GET";
	in.path = gk_slice_of(path.data, path.len);
	in.query = gk_slice_of(q.data, q.len);
	in.headers = &hh;
	in.n_headers = 1;
	in.payload_hash = S3_UNSIGNED_PAYLOAD;
	if ((r = s3_canonical_request(&in, &creq, NULL)) != 0 ||
	    (r = s3_string_to_sign(amz, (const char *)scope.data,
	    gk_slice_of(creq.data, creq.len), &sts)) != 0 ||
	    (r = s3_signer_sign(t->signer, c, amz, gk_slice_of(sts.data,
	    sts.len), sig)) != 0)
		goto out;
	r = gk_buf_printf(url, "?%s&X-Amz-Signature=%s", q.data, sig);
out:
	gk_buf_release(&host);
	gk_buf_release(&path);
	gk_buf_release(&q);
	gk_buf_release(&scope);
	gk_buf_release(&cred);
	gk_buf_release(&creq);
	gk_buf_release(&sts);
	return r;
}

/* ---- POST policy ------------------------------------------------------ */

/* A JSON string as Python's json.dumps writes it (ensure_ascii): every
 * non-ASCII character as \uXXXX (surrogate pairs past U+FFFF). The input
 * must be valid UTF-8. */
static int
json_ascii(gk_buf *b, gk_slice s)
{
	size_t i = 0;
	uint32_t cp;
	int r;

	if (!gk_utf8_valid(s))
		return GK_ERR_INVALID;
	if ((r = gk_buf_append(b, "\"", 1)) != 0)
		return r;
	while (i < s.len) {
		uint8_t c = s.p[i];

		if (c < 0x80) {
			i++;
			switch (c) {
			case '"': r = gk_buf_append_str(b, "\\\""); break;
			case '\\': r = gk_buf_append_str(b, "\\\\"); break;
			case '\n': r = gk_buf_append_str(b, "\\n"); break;
			case '\r': r = gk_buf_append_str(b, "\\r"); break;
			case '\t': r = gk_buf_append_str(b, "\\t"); break;
			case '\b': r = gk_buf_append_str(b, "\\b"); break;
			case '\f': r = gk_buf_append_str(b, "\\f"); break;
			default:
				if (c < 0x20 || c == 0x7f)
					r = gk_buf_printf(b, "\\u%04x", c);
				else
					r = gk_buf_append(b, &c, 1);
			}
			if (r != 0)
				return r;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			cp = (uint32_t)(c & 0x1f) << 6 | (s.p[i + 1] & 0x3f);
			i += 2;
		} else if ((c & 0xf0) == 0xe0) {
			cp = (uint32_t)(c & 0x0f) << 12 |
			    (uint32_t)(s.p[i + 1] & 0x3f) << 6 |
			    (s.p[i + 2] & 0x3f);
			i += 3;
		} else {
			cp = (uint32_t)(c & 0x07) << 18 |
			    (uint32_t)(s.p[i + 1] & 0x3f) << 12 |
			    (uint32_t)(s.p[i + 2] & 0x3f) << 6 |
			    (s.p[i + 3] & 0x3f);
			i += 4;
		}
		if (cp >= 0x10000) {
			/* Python writes a surrogate pair here; Ceph RGW's
			 * policy parser decodes pairs wrongly and refuses the
			 * key, so these go as raw UTF-8 (valid JSON, which S3
			 * accepts): the one place we differ from botocore */
			r = gk_buf_append(b, s.p + i - 4, 4);
		} else {
			r = gk_buf_printf(b, "\\u%04x", cp);
		}
		if (r != 0)
			return r;
	}
	return gk_buf_append(b, "\"", 1);
}

/* {"name": "value"} as a policy condition */
static int
cond(gk_buf *b, const char *name, gk_slice value)
{
	int r;

	if ((r = gk_buf_append_str(b, ", {")) != 0 ||
	    (r = json_ascii(b, gk_slice_str(name))) != 0 ||
	    (r = gk_buf_append_str(b, ": ")) != 0 ||
	    (r = json_ascii(b, value)) != 0)
		return r;
	return gk_buf_append_str(b, "}");
}

static int
field(gk_buf *b, int first, const char *name, gk_slice value)
{
	int r;

	if ((!first && (r = gk_buf_append_str(b, ", ")) != 0) ||
	    (r = json_ascii(b, gk_slice_str(name))) != 0 ||
	    (r = gk_buf_append_str(b, ": ")) != 0)
		return r;
	return json_ascii(b, value);
}

int
s3_presign_post(s3_target *t, const s3_creds *c, gk_slice key,
    uint64_t max_bytes, int64_t now, unsigned ttl, gk_buf *out)
{
	static const char fname[] = "${filename}";
	char amz[S3_AMZ_DATE_LEN + 1], sig[S3_SIG_HEX_LEN + 1], exp[32];
	gk_buf url, scope, cred, pol, b64;
	gk_slice credv;
	size_t i;
	int r;

	if (ttl < 1 || ttl > 604800 || key.len == 0 || c->access_key_id == NULL)
		return GK_ERR_INVALID;
	/* S3 expands ${filename} in a POST key: never let a key do that */
	for (i = 0; i + sizeof(fname) - 1 <= key.len; i++) {
		if (memcmp(key.p + i, fname, sizeof(fname) - 1) == 0)
			return GK_ERR_INVALID;
	}
	gk_buf_init(&url, URL_CAP);
	gk_buf_init(&scope, 512);
	gk_buf_init(&cred, 1024);
	gk_buf_init(&pol, CANON_CAP);
	gk_buf_init(&b64, 2 * CANON_CAP);
	s3_amz_date(now, amz);
	gk_time_iso(gk_add_sat(now, (int64_t)ttl), exp, sizeof(exp));
	if ((r = s3_object_url(t, GK_SLICE_NULL, &url, NULL, NULL)) != 0 ||
	    (r = s3_signer_scope(t->signer, amz, &scope)) != 0 ||
	    (r = gk_buf_printf(&cred, "%s/%s", c->access_key_id,
	    scope.data)) != 0)
		goto out;
	credv = gk_slice_of(cred.data, cred.len);
	if ((r = gk_buf_printf(&pol, "{\"expiration\": \"%s\", \"conditions\": "
	    "[{\"x-amz-server-side-encryption\": \"%s\"}, ", exp,
	    t->kms_key_id ? "aws:kms" : "AES256")) != 0 ||
	    (t->kms_key_id != NULL && ((r = gk_buf_append_str(&pol,
	    "{\"x-amz-server-side-encryption-aws-kms-key-id\": ")) != 0 ||
	    (r = json_ascii(&pol, gk_slice_str(t->kms_key_id))) != 0 ||
	    (r = gk_buf_append_str(&pol, "}, ")) != 0)) ||
	    (r = gk_buf_printf(&pol, "[\"content-length-range\", 0, %llu]",
	    (unsigned long long)max_bytes)) != 0 ||
	    (r = cond(&pol, "bucket", gk_slice_str(t->bucket))) != 0 ||
	    (r = cond(&pol, "key", key)) != 0 ||
	    (r = cond(&pol, "x-amz-algorithm",
	    gk_slice_str("AWS4-HMAC-SHA256"))) != 0 ||
	    (r = cond(&pol, "x-amz-credential", credv)) != 0 ||
	    (r = cond(&pol, "x-amz-date", gk_slice_str(amz))) != 0)
		goto out;
	if (c->session_token != NULL && (r = cond(&pol, "x-amz-security-token",
	    gk_slice_str(c->session_token))) != 0)
		goto out;
	if ((r = gk_buf_append_str(&pol, "]}")) != 0 ||
	    (r = gk_b64_encode(pol.data, pol.len, &b64)) != 0 ||
	    (r = s3_signer_sign(t->signer, c, amz, gk_slice_of(b64.data,
	    b64.len), sig)) != 0)
		goto out;
	if ((r = gk_buf_append_str(out, "{\"url\": ")) != 0 ||
	    (r = json_ascii(out, gk_slice_of(url.data, url.len))) != 0 ||
	    (r = gk_buf_append_str(out, ", \"fields\": {")) != 0 ||
	    (r = field(out, 1, "x-amz-server-side-encryption",
	    gk_slice_str(t->kms_key_id ? "aws:kms" : "AES256"))) != 0 ||
	    (t->kms_key_id != NULL && (r = field(out, 0,
	    "x-amz-server-side-encryption-aws-kms-key-id",
	    gk_slice_str(t->kms_key_id))) != 0) ||
	    (r = field(out, 0, "key", key)) != 0 ||
	    (r = field(out, 0, "x-amz-algorithm",
	    gk_slice_str("AWS4-HMAC-SHA256"))) != 0 ||
	    (r = field(out, 0, "x-amz-credential", credv)) != 0 ||
	    (r = field(out, 0, "x-amz-date", gk_slice_str(amz))) != 0)
		goto out;
	if (c->session_token != NULL && (r = field(out, 0,
	    "x-amz-security-token", gk_slice_str(c->session_token))) != 0)
		goto out;
	if ((r = field(out, 0, "policy", gk_slice_of(b64.data, b64.len))) != 0 ||
	    (r = field(out, 0, "x-amz-signature", gk_slice_str(sig))) != 0 ||
	    (r = gk_buf_append_str(out, "}}")) != 0)
		goto out;
out:
	gk_buf_release(&url);
	gk_buf_release(&scope);
	gk_buf_release(&cred);
	gk_buf_release(&pol);
	gk_buf_release(&b64);
	return r;
}

