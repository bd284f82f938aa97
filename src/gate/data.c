/*
 * data.c - data URLs: GET /_data/{key}?exp=&sig=, signed with the internal
 * key, answered with the object (ranges too), streamed only after the
 * grant's audit record is durable.
 */
#include "gate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"
#include "verify/verify.h"

static const struct {
	const char *ext;
	const char *type;
} mime_types[] = {
	{ ".pdf", "application/pdf" },
	{ ".png", "image/png" },
	{ ".jpg", "image/jpeg" },
	{ ".jpeg", "image/jpeg" },
	{ ".gif", "image/gif" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".csv", "text/csv; charset=utf-8" },
	{ ".json", "application/json" },
};

/* Content-Type by extension, for a fixed set of types that cannot run
 * script in our origin; everything else is a download. */
static const char *
data_type(gk_slice key)
{
	size_t i, n;

	for (i = 0; i < GK_ARRAY_LEN(mime_types); i++) {
		n = strlen(mime_types[i].ext);
		if (key.len > n && strncasecmp((const char *)key.p + key.len -
		    n, mime_types[i].ext, n) == 0)
			return mime_types[i].type;
	}
	return "application/octet-stream";
}

/* If-Range (RFC 9110 13.1.5): a range is sent only for the object the
 * client holds part of. We send no entity tag, so only the exact
 * Last-Modified date matches, and only while it is a strong validator (a
 * second or more before now: an object replaced within the same second
 * would carry the same date). Anything else means the whole object, so a
 * resumed download is never spliced from two objects. */
static int
if_range_holds(const gk_req *req, int64_t mtime)
{
	char date[64];
	gk_buf v;
	int r, ok;

	if (req->header == NULL)
		return 1;
	gk_buf_init(&v, 256);
	r = req->header(req->header_ctx, "if-range", &v);
	if (r == GK_ERR_NOT_FOUND) {
		gk_buf_release(&v);
		return 1;
	}
	gk_time_http(mtime, date, sizeof(date));
	ok = r == 0 && v.len == strlen(date) &&
	    memcmp(v.data, date, v.len) == 0 &&
	    mtime < req->start_us / 1000000;
	gk_buf_release(&v);
	return ok;
}

void
gate_data_handle(gk_app *app, const gk_req *req, gk_slice enc_key,
    gk_reply *rep)
{
	gate_params ps;
	const gk_buf *exp, *sig, *cip;
	gk_buf key;
	gk_slice dup, k;
	uint64_t size = 0, off = 0, len = 0;
	int64_t mtime = 0, expv = 0;
	char cr[96];
	int r;

	rep->protocol = "data";
	rep->operation = strdup("GET_Object");
	gk_buf_init(&key, 4096);
	memset(&ps, 0, sizeof(ps));
	if (gk_pct_decode(enc_key, &key) != 0) {
		gate_deny(rep, 400, "Bad Request: invalid key");
		goto out;
	}
	k = gk_slice_of(key.data, key.len);
	rep->path = gate_text_copy(k, 2048);
	if (!gate_key_valid(k, 0)) {
		gate_deny(rep, 400, "Bad Request: invalid key");
		goto out;
	}
	if (gate_params_parse(req->query, &ps, &dup) != 0) {
		gate_deny(rep, 400, "Bad Request: malformed query string");
		goto out;
	}
	exp = gate_params_get(&ps, "exp");
	sig = gate_params_get(&ps, "sig");
	cip = gate_params_get(&ps, "cip");
	if (exp == NULL || sig == NULL) {
		gate_deny(rep, 400, "Bad Request: missing 'exp' or 'sig' param");
		goto out;
	}
	r = verify_data_check_cip(app->internal_mac, k,
	    gk_slice_of(exp->data, exp->len), cip != NULL ?
	    gk_slice_of(cip->data, cip->len) : GK_SLICE_NULL,
	    gk_slice_of(sig->data, sig->len), gk_now_s(), &expv);
	if (r == GK_ERR_EXPIRED) {
		gate_deny(rep, 410, "Expired");
		goto out;
	}
	if (r != 0) {
		gate_deny(rep, 403, "Forbidden: invalid signature");
		goto out;
	}
	/* bound to the v2 token's 'cip': only from there (the signature
	 * covers cip, so it is ours and NUL-free) */
	if (cip != NULL && cip->len > 0 && gate_cip_match((const char *)
	    cip->data, &req->client) != 1) {
		gate_deny(rep, 403, "Forbidden: client address outside the "
		    "token's 'cip'");
		goto out;
	}
	if (gate_acl_check(req, GK_OP_GET, 0, rep) != 0)
		goto out;
	if (req->range_fields > 1) {
		gate_deny(rep, 400, "Bad Request: several Range header "
		    "fields (send one, with a list of ranges if need be)");
		goto out;
	}
	r = store_get_open(app->store, k, &rep->reader, &size, &mtime);
	if (r == GK_ERR_NOT_FOUND || r == GK_ERR_UNAVAILABLE ||
	    r == GK_ERR_DENIED) {
		gate_store_failed(rep, r);
		goto out;
	}
	if (r != 0)
		goto fail;
	rep->total = size;
	rep->mtime = mtime;
	r = gate_range_parse(req->range, size, &off, &len);
	if (r != GK_ERR_NOT_FOUND && !if_range_holds(req, mtime))
		r = GK_ERR_NOT_FOUND;	/* the whole object, 200 */
	if (r == GK_ERR_RANGE) {
		snprintf(cr, sizeof(cr), "bytes */%llu",
		    (unsigned long long)size);
		gate_deny(rep, 416, "Range Not Satisfiable");
		rep->content_range = strdup(cr);
		goto out;
	}
	if (r == 0) {
		rep->status = 206;
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
		    (unsigned long long)off, (unsigned long long)(off + len - 1),
		    (unsigned long long)size);
		if ((rep->content_range = strdup(cr)) == NULL) {
			r = GK_ERR_NOMEM;
			goto fail;
		}
	} else {
		rep->status = 200;
		off = 0;
		len = size;
	}
	/* authenticate what we will send before the status line goes out */
	if ((r = store_reader_verify(rep->reader, off, len)) != 0)
		goto fail;
	rep->off = off;
	rep->len = len;
	rep->bytes = len;
	rep->content_type = data_type(k);
	gate_reply_allow(rep, "Success");
	goto out;
fail:
	if (r == GK_ERR_INTEGRITY) {
		gk_error("object failed its integrity check (request %s)",
		    req->request_id);
		gate_reply_error(rep, 500, "error",
		    "Internal Exception: stored object failed its integrity "
		    "check");
	} else {
		gate_store_failed(rep, r);
	}
out:
	gate_params_release(&ps);
	gk_buf_release(&key);
}

