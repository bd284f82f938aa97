/*
 * grant.c - what a grant hands the browser, shared by v1 and v2: the URL
 * that reads an object and the form that uploads one, either the
 * gatekeeper's own (/_data, /_upload) or presigned for the bucket.
 */
#include "gate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "verify/verify.h"

int
gate_read_url(gk_app *app, gk_slice key, const char *cip, gk_buf *url,
    int64_t *exp)
{
	char sig[GK_MAC_HEX_LEN + 1], num[24];
	int r, n;

	if (store_presigns(app->store)) {
		/* s3 redirect mode: a presigned GET to the bucket */
		*exp = gk_add_sat(gk_now_s(), app->cfg->s3_presign_ttl);
		return store_presign_get(app->store, key, 0, GK_SLICE_NULL, url);
	}
	*exp = gk_add_sat(gk_now_s(), app->cfg->data_url_ttl);
	/* (appends, not printf: this is every grant's hot path) */
	n = snprintf(num, sizeof(num), "%lld", (long long)*exp);
	if (n < 0 || (size_t)n >= sizeof(num))
		return GK_ERR_INTERNAL;
	if ((r = verify_data_sign_cip(app->internal_mac, key, *exp,
	    gk_slice_str(cip), sig)) != 0 ||
	    (r = gk_buf_append_str(url, app->cfg->public_url)) != 0 ||
	    (r = gk_buf_append_str(url, "/_data/")) != 0 ||
	    (r = gk_pct_encode(key, 1, url)) != 0 ||
	    (r = gk_buf_append_str(url, "?exp=")) != 0 ||
	    (r = gk_buf_append(url, num, (size_t)n)) != 0)
		goto out;
	if (cip != NULL && ((r = gk_buf_append_str(url, "&cip=")) != 0 ||
	    (r = gk_pct_encode(gk_slice_str(cip), 0, url)) != 0))
		goto out;
	if ((r = gk_buf_append_str(url, "&sig=")) != 0 ||
	    (r = gk_buf_append_str(url, sig)) != 0)
		goto out;
out:
	gk_wipe(sig, sizeof(sig));
	return r;
}

int
gate_upload_form(gk_app *app, gk_slice key, const char *cip, int once,
    gk_buf *out, int64_t *exp)
{
	char sig[GK_MAC_HEX_LEN + 1], id[2 * GATE_ONCE_LEN + 1];
	uint8_t rnd[GATE_ONCE_LEN];
	gk_buf pol;
	int r;

	if (store_presigns(app->store)) {
		/* s3 redirect mode: boto3's presigned POST shape */
		*exp = gk_add_sat(gk_now_s(), app->cfg->s3_presign_ttl);
		return store_presign_post(app->store, key,
		    app->cfg->max_upload_bytes, 0, out);
	}
	*exp = gk_add_sat(gk_now_s(), app->cfg->data_url_ttl);
	if (once) {
		/* the form's own id, random: the token's jti stays the
		 * token's, and ids of forms cannot be guessed ahead */
		if ((r = gk_random(rnd, sizeof(rnd))) != 0)
			return r;
		gk_hex_encode(rnd, sizeof(rnd), id);
	}
	gk_buf_init(&pol, 16384);
	if ((r = verify_policy_make_once(app->internal_mac, app->cfg->id, key,
	    *exp, app->cfg->max_upload_bytes, cip, once ? id : NULL, &pol,
	    sig)) != 0 ||
	    (r = gk_buf_printf(out, "{\"url\":\"%s/_upload\",\"fields\":"
	    "{\"key\":", app->cfg->public_url)) != 0 ||
	    (r = gk_json_str(out, key)) != 0 ||
	    (r = gk_buf_append_str(out, ",\"policy\":")) != 0 ||
	    (r = gk_json_str(out, gk_slice_of(pol.data, pol.len))) != 0 ||
	    (r = gk_buf_printf(out, ",\"x-gk-algorithm\":\"GK-HMAC-SHA256\","
	    "\"x-gk-signature\":\"%s\","
	    "\"x-amz-server-side-encryption\":\"AES256\"}}", sig)) != 0)
		goto out;
out:
	gk_wipe(sig, sizeof(sig));
	gk_buf_release(&pol);
	return r;
}
