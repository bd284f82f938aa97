/*
 * upload.c - the gatekeeper's signed upload policies (the same shape as an
 * S3 POST policy, signed with the internal key instead of SigV4).
 *
 * The signature covers the base64 text exactly as sent, so nothing is
 * decoded or parsed before it has been checked. The JSON must then be
 * exactly what verify_policy_make writes: the two members, the four
 * conditions in order, nothing else.
 */
#include "verify/verify.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* "YYYY-MM-DDTHH:MM:SSZ" can only express years 0000..9999; keep clear of
 * the years before 1970 as well. */
#define POLICY_MAX_EXPIRES 253402300799LL /* 9999-12-31T23:59:59Z */
#define ISO_LEN 20
#define ONCE_MAX 64	/* longest "x-gk-once" form id */

static const char upload_domain[] = "gk-upload-v1";

static void
upload_parts(gk_slice policy_b64, gk_slice parts[3])
{
	static const uint8_t zero = 0;

	parts[0] = gk_slice_of(upload_domain, sizeof(upload_domain) - 1);
	parts[1] = gk_slice_of(&zero, 1);
	parts[2] = policy_b64;
}

void
verify_policy_release(gk_upload_policy *p)
{
	if (p == NULL)
		return;
	free(p->bucket);
	free(p->key);
	free(p->cip);
	free(p->once);
	memset(p, 0, sizeof(*p));
}

int
verify_policy_make(const gk_mac *m, const char *bucket, gk_slice key,
    int64_t expires, uint64_t max_bytes, gk_buf *policy_b64,
    char sig_hex[GK_MAC_HEX_LEN + 1])
{
	return verify_policy_make_cip(m, bucket, key, expires, max_bytes, NULL,
	    policy_b64, sig_hex);
}

int
verify_policy_make_cip(const gk_mac *m, const char *bucket, gk_slice key,
    int64_t expires, uint64_t max_bytes, const char *cip, gk_buf *policy_b64,
    char sig_hex[GK_MAC_HEX_LEN + 1])
{
	return verify_policy_make_once(m, bucket, key, expires, max_bytes, cip,
	    NULL, policy_b64, sig_hex);
}

/* 1 if s is a form id: 1..ONCE_MAX lower-case hex digits. */
static int
once_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > ONCE_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

int
verify_policy_make_once(const gk_mac *m, const char *bucket, gk_slice key,
    int64_t expires, uint64_t max_bytes, const char *cip, const char *once,
    gk_buf *policy_b64, char sig_hex[GK_MAC_HEX_LEN + 1])
{
	json_t *root = NULL;
	char *text = NULL, iso[32];
	gk_slice parts[3];
	uint8_t mac[GK_MAC_LEN];
	int r = GK_ERR_INTERNAL;

	if (policy_b64 == NULL || sig_hex == NULL || m == NULL)
		return GK_ERR_INTERNAL;
	gk_buf_reset(policy_b64);
	sig_hex[0] = '\0';
	r = GK_ERR_INVALID;
	if (bucket == NULL || !gk_utf8_valid(gk_slice_str(bucket)) ||
	    key.p == NULL || key.len == 0 ||
	    memchr(key.p, '\0', key.len) != NULL || !gk_utf8_valid(key) ||
	    expires < 0 || expires > POLICY_MAX_EXPIRES ||
	    max_bytes > (uint64_t)INT64_MAX ||
	    (cip != NULL && (cip[0] == '\0' ||
	    !gk_utf8_valid(gk_slice_str(cip)))) ||
	    (once != NULL && !once_ok(once, strlen(once))))
		goto out;
	gk_time_iso(expires, iso, sizeof(iso));
	if (strlen(iso) != ISO_LEN) {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	r = GK_ERR_NOMEM;
	root = json_pack("{s:s, s:[{s:s}, [s, s, s%], [s, i, I], {s:s}]}",
	    "expiration", iso,
	    "conditions",
	    "bucket", bucket,
	    "eq", "$key", (const char *)key.p, key.len,
	    "content-length-range", 0, (json_int_t)max_bytes,
	    "x-amz-server-side-encryption", "AES256");
	if (root != NULL && cip != NULL &&
	    json_array_append_new(json_object_get(root, "conditions"),
	    json_pack("{s:s}", "x-gk-cip", cip)) != 0) {
		json_decref(root);
		root = NULL;
	}
	if (root != NULL && once != NULL &&
	    json_array_append_new(json_object_get(root, "conditions"),
	    json_pack("{s:s}", "x-gk-once", once)) != 0) {
		json_decref(root);
		root = NULL;
	}
	if (root == NULL ||
	    (text = json_dumps(root, JSON_COMPACT)) == NULL)
		goto out;
	if ((r = gk_b64_encode((const uint8_t *)text, strlen(text),
	    policy_b64)) != 0)
		goto out;
	if (policy_b64->len > GK_POLICY_MAX_B64) {
		r = GK_ERR_TOO_LARGE;
		goto out;
	}
	upload_parts(gk_slice_of(policy_b64->data, policy_b64->len), parts);
	if ((r = verify_mac_compute(m, parts, GK_ARRAY_LEN(parts), mac)) != 0)
		goto out;
	gk_hex_encode(mac, GK_MAC_LEN, sig_hex);
	r = 0;
 out:
	if (r != 0) {
		gk_buf_reset(policy_b64);
		sig_hex[0] = '\0';
	}
	gk_wipe(mac, sizeof(mac));
	free(text);
	json_decref(root);
	return r;
}

/* Checks sig_hex against policy_b64 in constant time. */
static int
policy_auth(const gk_mac *m, gk_slice policy_b64, gk_slice sig_hex)
{
	gk_slice parts[3];
	uint8_t want[GK_MAC_LEN], got[GK_MAC_LEN];
	int r = GK_ERR_INTERNAL;

	if (sig_hex.p == NULL || sig_hex.len != GK_MAC_HEX_LEN ||
	    gk_hex_decode(sig_hex, want, GK_MAC_LEN) != 0) {
		r = GK_ERR_INVALID;
		goto out;
	}
	upload_parts(policy_b64, parts);
	if ((r = verify_mac_compute(m, parts, GK_ARRAY_LEN(parts), got)) != 0)
		goto out;
	r = gk_ct_eq(got, want, GK_MAC_LEN) ? 0 : GK_ERR_AUTH;
 out:
	gk_wipe(want, sizeof(want));
	gk_wipe(got, sizeof(got));
	return r;
}

/* 1 if the jansson string (s, len) equals lit exactly. */
static int
str_is(const char *s, size_t len, const char *lit)
{
	return gk_slice_eq_str(gk_slice_of(s, len), lit);
}

/* Strict "YYYY-MM-DDTHH:MM:SSZ", canonical (what gk_time_iso writes). */
static int
parse_expiration(const char *s, size_t len, int64_t *out)
{
	char again[32];
	int64_t us;

	if (len != ISO_LEN || memchr(s, '\0', len) != NULL || s[10] != 'T')
		return GK_ERR_INVALID;
	if (gk_time_parse(s, &us) != 0 || us % 1000000 != 0)
		return GK_ERR_INVALID;
	us /= 1000000;
	if (us < 0 || us > POLICY_MAX_EXPIRES)
		return GK_ERR_INVALID;
	/* rejects dates timegm() normalised, such as 2026-02-31 */
	gk_time_iso(us, again, sizeof(again));
	if (strlen(again) != len || memcmp(again, s, len) != 0)
		return GK_ERR_INVALID;
	*out = us;
	return 0;
}

int
verify_policy_open(const gk_mac *m, gk_slice policy_b64, gk_slice sig_hex,
    int64_t now, gk_upload_policy *out)
{
	gk_buf json;
	json_t *root = NULL;
	json_error_t jerr;
	json_t *conds;
	const char *exp_s, *bucket, *eq, *dkey, *key, *clr, *sse, *cip = NULL,
	    *once = NULL;
	size_t exp_len, bucket_len, eq_len, dkey_len, key_len, clr_len,
	    sse_len, cip_len = 0, once_len = 0, n, i;
	json_int_t lo, hi;
	int64_t expires = 0;
	int r = GK_ERR_INTERNAL;

	gk_buf_init(&json, GK_POLICY_MAX_B64);
	if (out == NULL || m == NULL)
		return GK_ERR_INTERNAL;
	memset(out, 0, sizeof(*out));
	if (policy_b64.len > GK_POLICY_MAX_B64 ||
	    (policy_b64.p == NULL && policy_b64.len > 0)) {
		r = GK_ERR_INVALID;
		goto out;
	}
	/* the signature first: nothing unauthenticated reaches a parser */
	if ((r = policy_auth(m, policy_b64, sig_hex)) != 0)
		goto out;
	r = GK_ERR_INVALID;
	if (gk_b64_decode(policy_b64, &json) != 0 || json.len == 0)
		goto out;
	root = json_loadb((const char *)json.data, json.len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		goto out;
	/* the four conditions, then the client binding and the single-use
	 * id, each optional, in that order */
	if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s:s%, s:o}",
	    "expiration", &exp_s, &exp_len, "conditions", &conds) != 0 ||
	    !json_is_array(conds) || (n = json_array_size(conds)) < 4 ||
	    n > 6)
		goto out;
	if (json_unpack_ex(json_array_get(conds, 0), &jerr, JSON_STRICT,
	    "{s:s%}", "bucket", &bucket, &bucket_len) != 0 ||
	    json_unpack_ex(json_array_get(conds, 1), &jerr, JSON_STRICT,
	    "[s%, s%, s%]", &eq, &eq_len, &dkey, &dkey_len, &key,
	    &key_len) != 0 ||
	    json_unpack_ex(json_array_get(conds, 2), &jerr, JSON_STRICT,
	    "[s%, I, I]", &clr, &clr_len, &lo, &hi) != 0 ||
	    json_unpack_ex(json_array_get(conds, 3), &jerr, JSON_STRICT,
	    "{s:s%}", "x-amz-server-side-encryption", &sse, &sse_len) != 0)
		goto out;
	i = 4;
	if (i < n && json_unpack_ex(json_array_get(conds, i), &jerr,
	    JSON_STRICT, "{s:s%}", "x-gk-cip", &cip, &cip_len) == 0)
		i++;
	if (i < n && json_unpack_ex(json_array_get(conds, i), &jerr,
	    JSON_STRICT, "{s:s%}", "x-gk-once", &once, &once_len) == 0)
		i++;
	if (i != n)
		goto out;	/* something else, or out of order */
	if (cip != NULL && (cip_len == 0 ||
	    memchr(cip, '\0', cip_len) != NULL))
		goto out;
	if (once != NULL && !once_ok(once, once_len))
		goto out;
	if (!str_is(eq, eq_len, "eq") || !str_is(dkey, dkey_len, "$key") ||
	    !str_is(clr, clr_len, "content-length-range") ||
	    !str_is(sse, sse_len, "AES256") ||
	    lo != 0 || hi < 0 ||
	    key_len == 0 || memchr(key, '\0', key_len) != NULL ||
	    memchr(bucket, '\0', bucket_len) != NULL)
		goto out;
	if ((r = parse_expiration(exp_s, exp_len, &expires)) != 0)
		goto out;
	r = GK_ERR_NOMEM;
	if ((out->bucket = gk_slice_dup(gk_slice_of(bucket,
	    bucket_len))) == NULL ||
	    (out->key = gk_slice_dup(gk_slice_of(key, key_len))) == NULL ||
	    (cip != NULL && (out->cip = gk_slice_dup(gk_slice_of(cip,
	    cip_len))) == NULL) ||
	    (once != NULL && (out->once = gk_slice_dup(gk_slice_of(once,
	    once_len))) == NULL))
		goto out;
	out->expires = expires;
	out->max_bytes = (uint64_t)hi;
	r = expires < now ? GK_ERR_EXPIRED : 0;
 out:
	if (r != 0)
		verify_policy_release(out);
	json_decref(root);
	gk_buf_release(&json);
	return r;
}
