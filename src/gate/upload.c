/*
 * upload.c - request bodies that become objects: the upload endpoint
 * (POST /_upload, multipart with a signed policy) and v2's
 * PUT /v2/objects/{key} (the raw body, authorised by a v2 token). Either
 * way the object becomes visible only after its audit record is durable.
 */
#include "gate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "store/store.h"
#include "verify/verify.h"

#define FIELD_MAX (16u * 1024)
/* Room for the form's fields and part headers around the file. */
#define UPLOAD_FORM_SLACK (256u * 1024)

enum part { P_NONE, P_KEY, P_POLICY, P_SIG, P_FILE, P_IGNORED, P_DONE };

struct gate_upload {
	gk_app *app;
	const gk_req *req;
	gk_multipart *mp;
	enum part part;
	gk_buf key, policy, sig;
	gk_upload_policy pol;
	int have_pol;
	gk_store_writer *w;
	int file_seen;
	int file_done;
	size_t ignored;		/* bytes of parts nobody reads (bounded) */
	/* the first refusal wins; the rest of the body is discarded */
	int status;
	const char *msg;
	const char *decision;
	int committed;
	char store_msg[320];	/* why the store failed, for the reply */
	char *raw_key;		/* PUT /v2/objects/{key}: the body is the object */
	gate_s3 *s3;		/* an S3 API request: all of it is s3api.c's */
};

static void
fail(gate_upload *u, int status, const char *msg)
{
	if (u->status != 0)
		return;
	u->status = status;
	u->msg = msg;
	u->decision = status >= 500 ? "error" : "deny";
}

/*
 * A store failure: the bucket refusing or failing (s3 proxy mode) is a
 * 502 (504 on a timeout) naming the cause; anything else a 500. Fills
 * status and msg (msg points into u).
 */
static void
store_status(gate_upload *u, int r, const char *what, int *status,
    const char **msg)
{
	const char *why = NULL;
	int st;

	if (r != GK_ERR_UNAVAILABLE && r != GK_ERR_DENIED) {
		gk_error("%s: %s", what, gk_err_str(r));
		*status = 500;
		*msg = "Internal Exception";
		return;
	}
	st = store_error(&why);
	snprintf(u->store_msg, sizeof(u->store_msg), "%s: %s",
	    st == 504 ? "Gateway Timeout" : "Bad Gateway", why);
	gk_warn("%s: %s", what, why);
	*status = st == 504 ? 504 : 502;
	*msg = u->store_msg;
}

/* Checks the policy and opens the object writer, before any file byte. */
static int
start_file(gate_upload *u)
{
	gk_app *app = u->app;
	int r;

	if (u->policy.len == 0 || u->sig.len == 0 || u->key.len == 0) {
		fail(u, 400, "Bad Request: missing 'key', 'policy' or "
		    "'x-gk-signature' field before the file");
		return GK_ERR_INVALID;
	}
	r = verify_policy_open(app->internal_mac,
	    gk_slice_of(u->policy.data, u->policy.len),
	    gk_slice_of(u->sig.data, u->sig.len), gk_now_s(), &u->pol);
	if (r == GK_ERR_EXPIRED) {
		fail(u, 410, "Expired");
		return r;
	}
	if (r == GK_ERR_AUTH) {
		fail(u, 403, "Forbidden: invalid policy signature");
		return r;
	}
	if (r != 0) {
		fail(u, 400, "Bad Request: invalid policy");
		return r;
	}
	u->have_pol = 1;
	if (!gk_slice_eq(gk_slice_of(u->key.data, u->key.len),
	    gk_slice_str(u->pol.key)) ||
	    strcmp(u->pol.bucket, app->cfg->id) != 0) {
		fail(u, 403, "Forbidden: key does not match the policy");
		return GK_ERR_DENIED;
	}
	if (!gate_key_valid(gk_slice_str(u->pol.key), 0)) {
		fail(u, 400, "Bad Request: invalid key");
		return GK_ERR_INVALID;
	}
	if (u->pol.cip != NULL && gate_cip_match(u->pol.cip,
	    &u->req->client) != 1) {
		/* the form of a v2 token bound to 'cip' */
		fail(u, 403, "Forbidden: client address outside the token's "
		    "'cip'");
		return GK_ERR_DENIED;
	}
	if (gate_acl_ok(u->req, GK_OP_PUT, 1) != 0) {
		fail(u, 403, "Forbidden: ACL");
		return GK_ERR_DENIED;
	}
	r = store_put_begin(app->store, gk_slice_str(u->pol.key),
	    u->pol.max_bytes, &u->w);
	if (r != 0) {
		int st;
		const char *m;

		store_status(u, r, "cannot start upload", &st, &m);
		fail(u, st, m);
		return r;
	}
	return 0;
}

static int
on_begin(void *arg, gk_slice name, gk_slice filename, gk_slice ctype)
{
	gate_upload *u = arg;

	(void)filename;
	(void)ctype;
	if (u->file_done) {
		u->part = P_IGNORED; /* fields after the file: ignored, as S3 */
		return 0;
	}
	if (gk_slice_eq_str(name, "file")) {
		u->file_seen = 1;
		u->part = P_FILE;
		return start_file(u);
	}
	if (gk_slice_eq_str(name, "key")) {
		u->part = P_KEY;
		gk_buf_reset(&u->key);
	} else if (gk_slice_eq_str(name, "policy")) {
		u->part = P_POLICY;
		gk_buf_reset(&u->policy);
	} else if (gk_slice_eq_str(name, "x-gk-signature")) {
		u->part = P_SIG;
		gk_buf_reset(&u->sig);
	} else {
		u->part = P_IGNORED;
	}
	return 0;
}

static int
on_data(void *arg, const uint8_t *p, size_t len)
{
	gate_upload *u = arg;
	gk_buf *b = NULL;
	int r;

	switch (u->part) {
	case P_KEY: b = &u->key; break;
	case P_POLICY: b = &u->policy; break;
	case P_SIG: b = &u->sig; break;
	case P_FILE:
		r = store_writer_write(u->w, p, len);
		if (r == GK_ERR_TOO_LARGE) {
			fail(u, 413, "Payload Too Large: the file exceeds the "
			    "policy's content-length-range");
			return r;
		}
		if (r != 0) {
			int st;
			const char *m;

			store_status(u, r, "upload write failed", &st, &m);
			fail(u, st, m);
		}
		return r;
	default:
		/* fields nobody reads (unknown, or after the file) are
		 * bounded like the others, not read without end */
		if (gk_add_size(u->ignored, len, &u->ignored) != 0 ||
		    u->ignored > FIELD_MAX) {
			fail(u, 400, "Bad Request: form field too long");
			return GK_ERR_TOO_LARGE;
		}
		return 0;
	}
	if (gk_buf_append(b, p, len) != 0) {
		fail(u, 400, "Bad Request: form field too long");
		return GK_ERR_TOO_LARGE;
	}
	return 0;
}

static int
on_end(void *arg)
{
	gate_upload *u = arg;

	if (u->part == P_FILE)
		u->file_done = 1;
	u->part = P_NONE;
	return 0;
}

static const gk_multipart_cb callbacks = { on_begin, on_data, on_end };

/* 1 when the request declares a body longer than max (refused before a
 * byte of it is read). */
static int
declared_over(const gk_req *req, uint64_t max)
{
	uint64_t n;

	return req->has_content_length && gk_parse_u64(req->content_length,
	    UINT64_MAX, &n) == 0 && n > max;
}

/* PUT /v2/objects/{key}: the v2 checks, then a writer for the body. */
void
gate_upload_put_begin(gk_app *app, const gk_req *req, gate_upload **out,
    gk_reply *rep)
{
	gate_upload *u;
	char *key = NULL;
	const char *m;
	int r, st;

	*out = NULL;
	if (gate_v2_put_authorize(app, req, rep, &key) != 0)
		return;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		free(key);
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return;
	}
	u->app = app;
	u->req = req;
	u->raw_key = key;
	u->part = P_FILE;
	u->file_seen = 1;
	gk_buf_init(&u->key, FIELD_MAX);
	gk_buf_init(&u->policy, FIELD_MAX);
	gk_buf_init(&u->sig, FIELD_MAX);
	if (declared_over(req, app->cfg->max_upload_bytes)) {
		fail(u, 413, "Payload Too Large: the body exceeds "
		    "max_upload_bytes");
		*out = u;
		return;
	}
	r = store_put_begin(app->store, gk_slice_str(key),
	    app->cfg->max_upload_bytes, &u->w);
	if (r != 0) {
		store_status(u, r, "cannot start upload", &st, &m);
		fail(u, st, m);
	}
	*out = u;
}

/* POST /_upload: the multipart form, its policy checked before the file. */
/* Every request to the S3 endpoint: all of it is s3api.c's,
 * its writes, copies and deletes done in gate_upload_commit after their
 * audit record. */
void
gate_upload_s3_begin(gk_app *app, const gk_req *req, gate_upload **out,
    gk_reply *rep)
{
	gate_s3 *s3 = NULL;
	gate_upload *u;

	*out = NULL;
	gate_s3api_begin(app, req, &s3, rep);
	if (s3 == NULL)
		return;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		gate_s3api_free(s3);
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return;
	}
	u->s3 = s3;
	*out = u;
}

void
gate_upload_form_begin(gk_app *app, const gk_req *req, gate_upload **out,
    gk_reply *rep)
{
	gate_upload *u;

	*out = NULL;
	rep->protocol = "upload";
	rep->operation = strdup("POST_Upload");
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return;
	}
	u->app = app;
	u->req = req;
	gk_buf_init(&u->key, FIELD_MAX);
	gk_buf_init(&u->policy, FIELD_MAX);
	gk_buf_init(&u->sig, FIELD_MAX);
	if (gate_multipart_new(req->content_type, &callbacks, u, &u->mp) != 0)
		fail(u, 400, "Bad Request: expected multipart/form-data with a "
		    "boundary");
	else if (declared_over(req, app->cfg->max_upload_bytes +
	    UPLOAD_FORM_SLACK))
		fail(u, 413, "Payload Too Large: the file exceeds the "
		    "policy's content-length-range");
	*out = u;
}

void
gate_upload_feed(gate_upload *u, const uint8_t *p, size_t len)
{
	int r;

	if (u->s3 != NULL) {
		gate_s3api_feed(u->s3, p, len);
		return;
	}
	if (u->status != 0)
		return;
	if (u->raw_key != NULL) {
		(void)on_data(u, p, len);	/* a failure is kept in u */
		return;
	}
	if (u->mp == NULL)
		return;
	r = gate_multipart_feed(u->mp, p, len);
	if (r != 0)
		fail(u, 400, "Bad Request: malformed multipart body");
}

void
gate_upload_abandon(gate_upload *u)
{
	if (u->s3 != NULL) {
		gate_s3api_abandon(u->s3);
		return;
	}
	fail(u, 400, "Bad Request: the connection closed before the end of "
	    "the body; nothing was stored");
}

gk_store_writer *
gate_upload_writer(const gate_upload *u)
{
	if (u->s3 != NULL)
		return gate_s3api_writer(u->s3);
	return u->status != 0 ? NULL : u->w;
}

int
gate_upload_refused(const gate_upload *u)
{
	if (u != NULL && u->s3 != NULL)
		return gate_s3api_refused(u->s3);
	return u != NULL && u->status != 0;
}

/*
 * The form of a single-use grant (its policy's "x-gk-once" id) takes one
 * upload: the first that arrived whole and is about to be stored uses it
 * up. An attempt that failed before its end (cut, too large, malformed,
 * the store refusing) does not, so the user can try again with the same
 * form until it expires; of two at once, the one to end first wins.
 */
static void
use_once(gate_upload *u)
{
	char id[80];
	int n, r;

	n = snprintf(id, sizeof(id), "gk-upload:%s", u->pol.once);
	if (n < 0 || (size_t)n >= sizeof(id)) {
		fail(u, 500, "Internal Exception");
		return;
	}
	r = audit_jti_use(u->app->audit, id, u->pol.expires);
	if (r == GK_ERR_EXISTS)
		fail(u, 403, "Forbidden: this upload form was used already "
		    "(single use)");
	else if (r != 0)
		fail(u, 503, "Service Unavailable: replay cache unavailable");
}

void
gate_upload_end(gate_upload *u, gk_reply *rep)
{
	char *k;
	int r;

	if (u->s3 != NULL) {
		gate_s3api_end(u->s3, rep);
		return;
	}
	if (u->status == 0 && u->raw_key == NULL &&
	    gate_multipart_finish(u->mp) != 0)
		fail(u, 400, "Bad Request: malformed multipart body");
	if (u->status == 0 && !u->file_seen)
		fail(u, 400, "Bad Request: missing 'file' field");
	if (u->status == 0 && (r = store_writer_finish(u->w)) != 0) {
		int st;
		const char *m;

		store_status(u, r, "cannot finish upload", &st, &m);
		fail(u, st, m);
	}
	if (u->status == 0 && u->have_pol && u->pol.once != NULL)
		use_once(u);
	if (u->raw_key != NULL)
		;	/* the v2 checks set path, kid, sub, jti */
	else if (u->have_pol)
		rep->path = strdup(u->pol.key);
	else if (u->key.len > 0)
		rep->path = gate_text_copy(gk_slice_of(u->key.data,
		    u->key.len), 2048);	/* a NUL shows, not cuts */
	if (u->status != 0) {
		gate_reply_error(rep, u->status, u->decision, u->msg);
		if (u->w != NULL)
			rep->bytes = store_writer_size(u->w);
		gate_reply_finish(u->app, u->req, rep);
		return;
	}
	rep->bytes = store_writer_size(u->w);
	k = u->raw_key != NULL ? u->raw_key : u->pol.key;
	gk_buf_reset(&rep->body);
	if (gk_buf_append_str(&rep->body, "{\"msg\":\"Success\",\"key\":") != 0 ||
	    gk_json_str(&rep->body, gk_slice_str(k)) != 0 ||
	    gk_buf_printf(&rep->body, ",\"size\":%llu,\"error\":false}",
	    (unsigned long long)rep->bytes) != 0) {
		gate_reply_error(rep, 500, "error", "Internal Exception");
		gate_reply_finish(u->app, u->req, rep);
		return;
	}
	rep->status = 201;
	gate_reply_allow(rep, "Success");
	gate_reply_finish(u->app, u->req, rep);
}

void
gate_upload_commit(gate_upload *u, gk_reply *rep)
{
	int r;

	if (u != NULL && u->s3 != NULL) {
		gate_s3api_commit(u->s3, rep);
		return;
	}
	if (u == NULL || u->w == NULL || u->committed)
		return;
	if ((r = store_writer_commit(u->w)) != 0) {
		int st;
		const char *m;

		store_status(u, r, "upload commit failed after its audit "
		    "record", &st, &m);
		gate_reply_error(rep, st, "error", m);
		return;
	}
	u->committed = 1;
}

void
gate_upload_free(gate_upload *u)
{
	if (u == NULL)
		return;
	gate_s3api_free(u->s3);
	gate_multipart_free(u->mp);
	store_writer_free(u->w);
	if (u->have_pol)
		verify_policy_release(&u->pol);
	gk_buf_release(&u->key);
	gk_buf_release(&u->policy);
	gk_wipe(u->sig.data, u->sig.len);
	gk_buf_release(&u->sig);
	free(u->raw_key);
	free(u);
}
