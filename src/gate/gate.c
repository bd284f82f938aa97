/* gate.c - the application and the request pipeline for v1 and data URLs. */
#include "gate_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "grant/grant.h"
#include "s3/s3.h"
#include "store/store.h"
#include "verify/verify.h"

#define LIST_MAX_KEYS 100000
#define JSON_LIST_CAP (64u * 1024 * 1024)

/* ---- the application ------------------------------------------------- */

int
gate_app_open(gk_config *cfg, gk_app **out, char *err, size_t errlen)
{
	gk_app *app;
	gk_policy *pol = NULL;
	int r = GK_ERR_INTERNAL;

	if ((app = calloc(1, sizeof(*app))) == NULL) {
		cfg_free(cfg);
		snprintf(err, errlen, "out of memory");
		return GK_ERR_NOMEM;
	}
	app->cfg = cfg;
	app->started_us = gk_now_us();
	if ((r = gate_v1_roots_check(cfg->v1_roots, err, errlen)) != 0)
		goto out;
	if ((r = policy_new(cfg, &pol, err, errlen)) != 0)
		goto out;
	if ((r = policy_live_new(pol, &app->policy_live)) != 0 ||
	    (r = policy_rate_new(cfg->rate_table_size, &app->rate)) != 0) {
		snprintf(err, errlen, "cannot set up the policy: %s",
		    gk_err_str(r));
		goto out;
	}
	pol = NULL; /* transferred */
	if ((r = verify_mac_new(cfg->v1_key.p, cfg->v1_key.len,
	    &app->v1_mac)) != 0 ||
	    (r = verify_mac_new(cfg->internal_key.p, cfg->internal_key.len,
	    &app->internal_mac)) != 0) {
		snprintf(err, errlen, "cannot set up keys: %s", gk_err_str(r));
		goto out;
	}
	if ((r = verify_keyring_new(cfg, &app->keyring, err, errlen)) != 0)
		goto out;
	if ((r = store_open(cfg, &app->store)) != 0) {
		snprintf(err, errlen, "cannot open the %s store at %s: %s",
		    cfg->store_type, cfg->store_dir, gk_err_str(r));
		goto out;
	}
	if ((r = audit_open(cfg, &app->audit)) != 0) {
		snprintf(err, errlen, "cannot open the audit log %s: %s",
		    audit_label(audit_target(cfg)), gk_err_str(r));
		goto out;
	}
	if (errlen > 0)
		err[0] = '\0';
	if (cfg->s3api_enabled &&
	    ((r = grant_open(cfg, &app->grants, err, errlen)) != 0 ||
	    (r = s3_signer_new(cfg->s3api_region, "s3",
	    &app->s3api_signer)) != 0)) {
		if (err[0] == '\0')
			snprintf(err, errlen, "cannot start the S3 endpoint: "
			    "%s", gk_err_str(r));
		goto out;
	}
	if ((r = gate_refusals_new(cfg->audit_aggregate_s,
	    &app->refusals)) != 0) {
		snprintf(err, errlen, "cannot set up refusal summaries: %s",
		    gk_err_str(r));
		goto out;
	}
	if ((r = gate_console_new(app, &app->console)) != 0) {
		snprintf(err, errlen, "cannot set up the console: %s",
		    gk_err_str(r));
		goto out;
	}
	if ((r = audit_out_start(cfg, audit_instance(app->audit),
	    &app->audit_out)) != 0) {
		snprintf(err, errlen, "cannot start [audit_out]: %s",
		    gk_err_str(r));
		goto out;
	}
	if ((r = gate_cpship_start(app, &app->cpship)) != 0) {
		snprintf(err, errlen, "cannot start putting checkpoints to the "
		    "bucket: %s", gk_err_str(r));
		goto out;
	}
	*out = app;
	app = NULL; /* transferred */
	r = 0;
out:
	policy_free(pol);
	gate_app_close(app);
	return r;
}

void
gate_app_close(gk_app *app)
{
	if (app == NULL)
		return;
	audit_out_stop(app->audit_out);
	if (app->audit != NULL)
		gate_refusals_flush(app, 1);	/* before the last checkpoint */
	audit_close(app->audit);	/* its last checkpoint may still ship */
	gate_refusals_free(app->refusals);
	gate_cpship_stop(app->cpship);
	store_free(app->store);
	grant_close(app->grants);
	s3_signer_free(app->s3api_signer);
	verify_mac_free(app->v1_mac);
	verify_mac_free(app->internal_mac);
	policy_live_free(app->policy_live);
	policy_rate_free(app->rate);
	verify_keyring_free(app->keyring);
	gate_console_free(app->console);
	cfg_free(app->cfg);
	free(app);
}

void
gate_tick(gk_app *app)
{
	gate_refusals_flush(app, 0);
}

/* ---- replies ---------------------------------------------------------- */

void
gate_reply_init(gk_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	gk_buf_init(&rep->body, GK_CAP_JSON_REPLY);
	rep->content_type = "application/json";
	rep->audited = 1;
}

void
gate_reply_release(gk_reply *rep)
{
	gk_buf_release(&rep->body);
	free(rep->location);
	free(rep->acao);
	free(rep->content_range);
	free(rep->operation);
	free(rep->root);
	free(rep->path);
	free(rep->message);
	free(rep->kid);
	free(rep->sub);
	free(rep->jti);
	free(rep->token_sig);
	gk_buf_release(&rep->headers);
	free(rep->set_cookie);
	store_reader_free(rep->reader);
	memset(rep, 0, sizeof(*rep));
}

static void
set_message(gk_reply *rep, const char *msg)
{
	free(rep->message);
	rep->message = strdup(msg);
}

void
gate_reply_error(gk_reply *rep, int status, const char *decision,
    const char *msg)
{
	gk_buf_reset(&rep->body);
	if (rep->body.cap < GK_CAP_SMALL)
		gk_buf_init(&rep->body, GK_CAP_SMALL);
	if (gk_buf_append_str(&rep->body, "{\"msg\":") != 0 ||
	    gk_json_str(&rep->body, gk_slice_str(msg)) != 0 ||
	    gk_buf_append_str(&rep->body, ",\"error\":true}") != 0)
		gk_buf_reset(&rep->body);
	rep->status = status;
	rep->content_type = "application/json";
	rep->decision = decision;
	rep->grant = 0;
	free(rep->location);
	rep->location = NULL;
	store_reader_free(rep->reader);
	rep->reader = NULL;
	set_message(rep, msg);
}

static void
deny(gk_reply *rep, int status, const char *msg)
{
	gate_reply_error(rep, status, "deny", msg);
}

static void
internal(gk_reply *rep, const char *why)
{
	gk_error("internal exception: %s", why);
	gate_reply_error(rep, 500, "error", "Internal Exception");
}

/* A store failure as the browser should see it: a missing key 404, the
 * bucket refusing or failing 502 (504 on a timeout) naming the cause. */
void
gate_store_failed(gk_reply *rep, int r)
{
	const char *why = NULL;
	char msg[320];
	int status;

	if (r == GK_ERR_NOT_FOUND) {
		deny(rep, 404, "Not Found");
		return;
	}
	if (r == GK_ERR_INVALID) {
		/* a key the bucket cannot take as is (S3 rewrites
		 * "${filename}" in POST uploads) */
		deny(rep, 400, "Bad Request: invalid 'path' param");
		return;
	}
	if (r != GK_ERR_UNAVAILABLE && r != GK_ERR_DENIED) {
		internal(rep, gk_err_str(r));
		return;
	}
	status = store_error(&why);
	if (status != 504)
		status = 502;
	snprintf(msg, sizeof(msg), "%s: %s", status == 504 ?
	    "Gateway Timeout" : "Bad Gateway", why);
	gk_warn("store: %s", why);
	gate_reply_error(rep, status, "error", msg);
}

void
gate_audit_record(const gk_req *req, const gk_reply *rep,
    gk_audit_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->time_us = req->start_us;
	memcpy(rec->request_id, req->request_id, sizeof(rec->request_id));
	memcpy(rec->client_ip, req->client_ip, sizeof(rec->client_ip));
	memcpy(rec->client_addr, req->client.b, sizeof(rec->client_addr));
	rec->protocol = rep->protocol;
	rec->operation = rep->operation;
	rec->root = rep->root;
	rec->path = rep->path;
	rec->status = rep->status;
	rec->decision = rep->decision;
	rec->message = rep->message;
	rec->bytes = rep->bytes;
	rec->kid = rep->kid;
	rec->sub = rep->sub;
	rec->jti = rep->jti;
	rec->token_sig = rep->token_sig;
	rec->duration_us = gk_mono_us() - req->start_mono_us;
	rec->country = req->country[0] != '\0' ? req->country : NULL;
}

/* ---- shared pieces ---------------------------------------------------- */

/* A bounded, NUL-free copy of untrusted text for the audit record. */
char *
gate_text_copy(gk_slice s, size_t max)
{
	gk_buf b;
	size_t i;

	gk_buf_init(&b, max + 8);
	for (i = 0; i < s.len && i < max; i++) {
		uint8_t c = s.p[i] == '\0' ? '?' : s.p[i];

		if (gk_buf_append(&b, &c, 1) != 0)
			break;
	}
	if (gk_buf_append(&b, "", 0) != 0) {
		gk_buf_release(&b);
		return NULL;
	}
	return gk_buf_detach(&b, NULL);
}

static char *
buf_copy(const gk_buf *b, size_t max)
{
	return gate_text_copy(gk_slice_of(b->data, b->len), max);
}

/* The origin the request is judged by: the Origin header, or for a
 * same-origin browser request (no Origin, Sec-Fetch-Site: same-origin)
 * our own public URL. */
int
gate_effective_origin(const gk_app *app, const gk_req *req, gk_slice *origin)
{
	if (req->has_origin) {
		*origin = req->origin;
		return 1;
	}
	if (req->has_sec_fetch_site &&
	    gk_slice_eq_str(req->sec_fetch_site, "same-origin")) {
		*origin = gk_slice_str(app->cfg->public_url);
		return 1;
	}
	return 0;
}

const char *
gate_origin_refusal(const gk_req *req, int has_origin)
{
	if (has_origin)
		return "Forbidden: bad origin";
	if (req->has_sec_fetch_site &&
	    gk_slice_eq_str(req->sec_fetch_site, "none"))
		return "Forbidden: no Origin header (the URL was opened "
		    "directly; it must be requested by a page of an allowed "
		    "origin)";
	return "Forbidden: no Origin header (send the Origin of an allowed "
	    "site)";
}

static void
set_acao(const gk_app *app, const gk_req *req, gk_reply *rep)
{
	free(rep->acao);
	/* only an allowed origin may read the answer: no header otherwise
	 * ("null" would let any sandboxed page read it) */
	rep->acao = NULL;
	if (req->has_origin &&
	    policy_check_origin(req->policy, req->origin, 1) == 0)
		rep->acao = gk_slice_dup(req->origin);
}

static int
json_begin_ok(gk_buf *b)
{
	return gk_buf_append_str(b, "{\"msg\":\"Success\",");
}

void
gate_count(gk_app *app, int stat)
{
	if (stat >= 0 && stat < GK_STAT_MAX)
		atomic_fetch_add_explicit(&app->stats.n[stat], 1,
		    memory_order_relaxed);
}

static void
count(gk_app *app, const gk_reply *rep)
{
	gate_count(app, GK_STAT_REQUESTS);
	if (!rep->audited)
		return;
	gate_count(app, rep->grant ? GK_STAT_GRANTED : rep->status >= 500 ?
	    GK_STAT_ERRORS : GK_STAT_DENIED);
}

/* ---- v1 --------------------------------------------------------------- */

static const char *const v1_ops[] = { "GET_Object", "GET_Bucket",
	"PUT_Object" };

struct list_ctx {
	gk_buf *out;
	gk_slice prefix;	/* root + path: every key starts with it */
	size_t strip;		/* the root's length, <= prefix.len */
	size_t n;
	int r;
};

static int
list_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct list_ctx *lc = arg;

	(void)size;
	(void)mtime;
	if (lc->n == LIST_MAX_KEYS)
		return 1;
	if (!gk_slice_has_prefix(key, lc->prefix))
		return 0;	/* never shown, never cut short */
	if ((lc->n > 0 && (lc->r = gk_buf_append(lc->out, ",", 1)) != 0) ||
	    (lc->r = gk_json_str(lc->out, gk_slice_of(key.p + lc->strip,
	    key.len - lc->strip))) != 0)
		return 1;
	lc->n++;
	return 0;
}

int
gate_read_url(gk_app *app, gk_slice key, const char *cip, gk_buf *url,
    int64_t *exp)
{
	char sig[GK_MAC_HEX_LEN + 1];
	int r;

	if (store_presigns(app->store)) {
		/* s3 redirect mode: a presigned GET to the bucket */
		*exp = gk_add_sat(gk_now_s(), app->cfg->s3_presign_ttl);
		return store_presign_get(app->store, key, 0, GK_SLICE_NULL, url);
	}
	*exp = gk_add_sat(gk_now_s(), app->cfg->data_url_ttl);
	if ((r = verify_data_sign_cip(app->internal_mac, key, *exp,
	    gk_slice_str(cip), sig)) != 0 ||
	    (r = gk_buf_printf(url, "%s/_data/", app->cfg->public_url)) != 0 ||
	    (r = gk_pct_encode(key, 1, url)) != 0 ||
	    (r = gk_buf_printf(url, "?exp=%lld", (long long)*exp)) != 0)
		goto out;
	if (cip != NULL && ((r = gk_buf_append_str(url, "&cip=")) != 0 ||
	    (r = gk_pct_encode(gk_slice_str(cip), 0, url)) != 0))
		goto out;
	if ((r = gk_buf_printf(url, "&sig=%s", sig)) != 0)
		goto out;
out:
	gk_wipe(sig, sizeof(sig));
	return r;
}

int
gate_upload_form(gk_app *app, gk_slice key, const char *cip, gk_buf *out,
    int64_t *exp)
{
	char sig[GK_MAC_HEX_LEN + 1];
	gk_buf pol;
	int r;

	if (store_presigns(app->store)) {
		/* s3 redirect mode: boto3's presigned POST shape */
		*exp = gk_add_sat(gk_now_s(), app->cfg->s3_presign_ttl);
		return store_presign_post(app->store, key,
		    app->cfg->max_upload_bytes, 0, out);
	}
	*exp = gk_add_sat(gk_now_s(), app->cfg->data_url_ttl);
	gk_buf_init(&pol, 16384);
	if ((r = verify_policy_make_cip(app->internal_mac, app->cfg->id, key,
	    *exp, app->cfg->max_upload_bytes, cip, &pol, sig)) != 0 ||
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

static int
v1_get_object(gk_app *app, gk_slice key, gk_reply *rep)
{
	gk_buf url;
	int64_t exp;
	int r;

	gk_buf_init(&url, 16384);
	if ((r = gate_read_url(app, key, NULL, &url, &exp)) != 0)
		goto out;
	if ((r = json_begin_ok(&rep->body)) != 0 ||
	    (r = gk_buf_append_str(&rep->body, "\"url\":")) != 0 ||
	    (r = gk_json_str(&rep->body, gk_slice_of(url.data, url.len))) != 0 ||
	    (r = gk_buf_append_str(&rep->body, ",\"error\":false}")) != 0)
		goto out;
	rep->status = 302;
	rep->location = gk_buf_detach(&url, NULL);
out:
	gk_buf_release(&url);
	return r;
}

static int
v1_get_bucket(gk_app *app, gk_slice root, gk_slice prefix, gk_reply *rep)
{
	struct list_ctx lc;
	int r;

	rep->body.cap = JSON_LIST_CAP;
	lc.out = &rep->body;
	lc.prefix = prefix;
	lc.strip = root.len;
	lc.n = 0;
	lc.r = 0;
	if ((r = json_begin_ok(&rep->body)) != 0 ||
	    (r = gk_buf_append_str(&rep->body, "\"contents\":[")) != 0)
		return r;
	r = store_list(app->store, prefix, GK_SLICE_NULL, 0, list_cb, &lc);
	if (r < 0)
		return r;
	if (lc.r != 0)
		return lc.r;
	if ((r = gk_buf_append_str(&rep->body, "],\"error\":false}")) != 0)
		return r;
	rep->status = 200;
	return 0;
}

static int
v1_put_object(gk_app *app, gk_slice key, gk_reply *rep)
{
	gk_buf *b = &rep->body;
	int64_t exp;
	int r;

	if ((r = gk_buf_append_str(b, "{\"clientReturn\":")) != 0 ||
	    (r = gate_upload_form(app, key, NULL, b, &exp)) != 0 ||
	    (r = gk_buf_append_str(b, ",\"bucket\":")) != 0 ||
	    (r = gk_json_str(b, gk_slice_str(store_presigns(app->store) ?
	    store_bucket(app->store) : app->cfg->id))) != 0 ||
	    (r = gk_buf_append_str(b,
	    ",\"msg\":\"Success\",\"error\":false}")) != 0)
		return r;
	rep->status = 200;
	return 0;
}

static void
v1_handle(gk_app *app, const gk_req *req, gk_slice root, gk_reply *rep)
{
	const gk_config *cfg = app->cfg;
	const gk_buf *path, *op, *expires, *hmac;
	gate_params ps;
	gk_slice dup, origin, pathv, opv = GK_SLICE_NULL, sub;
	gk_buf key;
	uint64_t exp = 0;
	int64_t now = gk_now_s();
	size_t i;
	int r, has_origin, known_op = 0;
	const char *why;
	char msg[128];

	rep->protocol = "v1";
	rep->root = gate_text_copy(root, 64);
	gk_buf_init(&key, 4096);
	r = gate_params_parse(req->query, &ps, &dup);
	if (r == GK_ERR_EXISTS) {
		snprintf(msg, sizeof(msg), "Bad Request: repeated '%.*s' param",
		    (int)(dup.len > 32 ? 32 : dup.len), (const char *)dup.p);
		deny(rep, 400, msg);
		return;
	}
	if (r != 0) {
		deny(rep, 400, "Bad Request: malformed query string");
		return;
	}
	path = gate_params_get(&ps, "path");
	op = gate_params_get(&ps, "operation");
	expires = gate_params_get(&ps, "expires");
	hmac = gate_params_get(&ps, "hmac");
	if (op != NULL) {
		opv = gk_slice_of(op->data, op->len);
		rep->operation = buf_copy(op, 32);
		for (i = 0; i < GK_ARRAY_LEN(v1_ops); i++)
			known_op |= gk_slice_eq_str(opv, v1_ops[i]);
	}
	if (path != NULL)
		rep->path = buf_copy(path, 2048);
	if (path == NULL) {
		deny(rep, 400, "Bad Request: missing 'path' param");
		goto out;
	}
	if (!known_op) {
		deny(rep, 400, "Bad Request: invalid 'operation' param");
		goto out;
	}
	if (expires == NULL) {
		deny(rep, 400, "Bad Request: missing 'expires' param");
		goto out;
	}
	if (hmac == NULL) {
		deny(rep, 400, "Bad Request: missing 'hmac' param");
		goto out;
	}
	pathv = gk_slice_of(path->data, path->len);
	if ((why = gate_v1_path_shape(opv, pathv)) != NULL) {
		deny(rep, 400, why);
		goto out;
	}
	if (gk_parse_u64(gk_slice_of(expires->data, expires->len), INT64_MAX,
	    &exp) != 0) {
		deny(rep, 400, "Bad Request: invalid 'expires' param");
		goto out;
	}
	if ((why = gate_v1_key(cfg, root, pathv, opv, &key)) != NULL) {
		deny(rep, 400, why);
		goto out;
	}
	if (!gate_v1_root_listed(cfg, root)) {
		/* issue 17: only listed roots, so that root || sub splits
		 * one way (see [gate] v1_roots) */
		deny(rep, 403, "Forbidden: unknown root");
		goto out;
	}
	sub = gate_v1_sub(pathv);
	r = verify_v1_check(app->v1_mac, root, sub, opv,
	    gk_slice_of(expires->data, expires->len),
	    gk_slice_of(hmac->data, hmac->len));
	if (r != 0) {
		deny(rep, 401, "Unauthorized: invalid 'hmac' param");
		goto out;
	}
	if (gk_add_sat((int64_t)exp, 60) < now) {
		deny(rep, 410, "Expired");
		goto out;
	}
	if (cfg->max_token_lifetime > 0 &&
	    gk_sub_sat((int64_t)exp, now) > cfg->max_token_lifetime) {
		deny(rep, 401, "Unauthorized: 'expires' is further away than "
		    "the maximum token lifetime");
		goto out;
	}
	has_origin = gate_effective_origin(app, req, &origin);
	if (policy_check_origin(req->policy, origin, has_origin) != 0) {
		deny(rep, 403, gate_origin_refusal(req, has_origin));
		goto out;
	}
	if (gate_acl_check(req, gk_slice_eq_str(opv, "PUT_Object") ? GK_OP_PUT :
	    gk_slice_eq_str(opv, "GET_Bucket") ? GK_OP_LIST : GK_OP_GET,
	    gk_slice_eq_str(opv, "PUT_Object"), rep) != 0)
		goto out;
	if (gk_slice_eq_str(opv, "GET_Object"))
		r = v1_get_object(app, gk_slice_of(key.data, key.len), rep);
	else if (gk_slice_eq_str(opv, "GET_Bucket"))
		r = v1_get_bucket(app, root, gk_slice_of(key.data, key.len),
		    rep);
	else
		r = v1_put_object(app, gk_slice_of(key.data, key.len), rep);
	if (r != 0) {
		gate_store_failed(rep, r);
		goto out;
	}
	rep->grant = 1;
	rep->decision = "allow";
	set_message(rep, "Success");
out:
	gk_buf_release(&key);
	gate_params_release(&ps);
}

/* ---- data URLs -------------------------------------------------------- */

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

static void
data_handle(gk_app *app, const gk_req *req, gk_slice enc_key, gk_reply *rep)
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
		deny(rep, 400, "Bad Request: invalid key");
		goto out;
	}
	k = gk_slice_of(key.data, key.len);
	rep->path = gate_text_copy(k, 2048);
	if (!gate_key_valid(k, 0)) {
		deny(rep, 400, "Bad Request: invalid key");
		goto out;
	}
	if (gate_params_parse(req->query, &ps, &dup) != 0) {
		deny(rep, 400, "Bad Request: malformed query string");
		goto out;
	}
	exp = gate_params_get(&ps, "exp");
	sig = gate_params_get(&ps, "sig");
	cip = gate_params_get(&ps, "cip");
	if (exp == NULL || sig == NULL) {
		deny(rep, 400, "Bad Request: missing 'exp' or 'sig' param");
		goto out;
	}
	r = verify_data_check_cip(app->internal_mac, k,
	    gk_slice_of(exp->data, exp->len), cip != NULL ?
	    gk_slice_of(cip->data, cip->len) : GK_SLICE_NULL,
	    gk_slice_of(sig->data, sig->len), gk_now_s(), &expv);
	if (r == GK_ERR_EXPIRED) {
		deny(rep, 410, "Expired");
		goto out;
	}
	if (r != 0) {
		deny(rep, 403, "Forbidden: invalid signature");
		goto out;
	}
	/* bound to the v2 token's 'cip': only from there (the signature
	 * covers cip, so it is ours and NUL-free) */
	if (cip != NULL && cip->len > 0 && gate_cip_match((const char *)
	    cip->data, &req->client) != 1) {
		deny(rep, 403, "Forbidden: client address outside the token's "
		    "'cip'");
		goto out;
	}
	if (gate_acl_check(req, GK_OP_GET, 0, rep) != 0)
		goto out;
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
	if (r == GK_ERR_RANGE) {
		snprintf(cr, sizeof(cr), "bytes */%llu",
		    (unsigned long long)size);
		deny(rep, 416, "Range Not Satisfiable");
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
	/* authenticate (the first window of) what we will send before the
	 * status line goes out */
	if ((r = store_reader_verify(rep->reader, off, len)) != 0)
		goto fail;
	rep->off = off;
	rep->len = len;
	rep->bytes = len;
	rep->content_type = data_type(k);
	rep->grant = 1;
	rep->decision = "allow";
	set_message(rep, "Success");
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

/* ---- routing ---------------------------------------------------------- */

static int
method_is(const gk_req *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

static void
preflight(gk_reply *rep)
{
	rep->status = 204;
	rep->audited = 0;
	rep->content_type = NULL;
}

static void
not_allowed(gk_reply *rep, const char *allow)
{
	deny(rep, 405, "Method Not Allowed");
	rep->allow = allow;
}

static void
admin_handle(gk_app *app, const gk_req *req, gk_slice path, gk_reply *rep)
{
	const gk_stats *s = &app->stats;
	gk_audit_counters ac;
	int r;

	rep->audited = 0;
	if (policy_check_admin(req->policy, &req->client) != 0) {
		deny(rep, 403, "Forbidden");
		return;
	}
	if (gk_slice_eq_str(path, "/healthz")) {
		r = gk_buf_append_str(&rep->body, "{\"ok\":true,\"id\":");
		if (r == 0)
			r = gk_json_str(&rep->body, gk_slice_str(app->cfg->id));
		if (r == 0)
			r = gk_buf_printf(&rep->body, ",\"uptime_s\":%lld}",
			    (long long)((gk_now_us() - app->started_us) /
			    1000000));
		rep->status = r == 0 ? 200 : 500;
		return;
	}
	rep->content_type = "text/plain; version=0.0.4";
	audit_counters(app->audit, &ac);
#define STAT(i) ((unsigned long long)atomic_load_explicit(&s->n[i], \
	memory_order_relaxed))
	r = gk_buf_printf(&rep->body,
	    "# TYPE gatekeeper_requests_total counter\n"
	    "gatekeeper_requests_total %llu\n"
	    "# TYPE gatekeeper_decisions_total counter\n"
	    "gatekeeper_decisions_total{decision=\"allow\"} %llu\n"
	    "gatekeeper_decisions_total{decision=\"deny\"} %llu\n"
	    "gatekeeper_decisions_total{decision=\"error\"} %llu\n"
	    "# TYPE gatekeeper_audit_failures_total counter\n"
	    "gatekeeper_audit_failures_total %llu\n"
	    "# TYPE gatekeeper_rate_limited_total counter\n"
	    "gatekeeper_rate_limited_total %llu\n"
	    "# TYPE gatekeeper_reloads_total counter\n"
	    "gatekeeper_reloads_total{result=\"ok\"} %llu\n"
	    "gatekeeper_reloads_total{result=\"failed\"} %llu\n"
	    "# TYPE gatekeeper_audit_fields_cut_total counter\n"
	    "gatekeeper_audit_fields_cut_total %llu\n"
	    "# TYPE gatekeeper_audit_refusals_aggregated_total counter\n"
	    "gatekeeper_audit_refusals_aggregated_total %llu\n"
	    "# TYPE gatekeeper_audit_refusals_dropped_total counter\n"
	    "gatekeeper_audit_refusals_dropped_total %llu\n"
	    "# TYPE gatekeeper_audit_low_space gauge\n"
	    "gatekeeper_audit_low_space %d\n",
	    STAT(GK_STAT_REQUESTS), STAT(GK_STAT_GRANTED),
	    STAT(GK_STAT_DENIED), STAT(GK_STAT_ERRORS),
	    STAT(GK_STAT_AUDIT_FAILURES), STAT(GK_STAT_RATE_LIMITED),
	    STAT(GK_STAT_RELOADS), STAT(GK_STAT_RELOAD_FAILURES),
	    (unsigned long long)ac.fields_cut, STAT(GK_STAT_AGGREGATED),
	    (unsigned long long)ac.refusals_dropped, ac.low_space);
#undef STAT
	rep->status = r == 0 ? 200 : 500;
}

void
gate_handle(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gk_slice path = req->path, first;
	const uint8_t *slash;
	int read_method = method_is(req, "GET") || method_is(req, "HEAD");

	if (method_is(req, "OPTIONS")) {
		preflight(rep);
		goto done;
	}
	if (gate_static_handle(app, req, rep))
		goto done;
	if (gate_rate_limit(app, req, rep))
		goto done;
	if (gate_console_handle(app, req, rep))
		goto done;
	if (gate_admin_reload(app, req, rep))
		goto done;
	if (gate_admin_handle(app, req, rep))
		goto done;
	if (gk_slice_eq_str(path, "/healthz") ||
	    gk_slice_eq_str(path, "/metrics")) {
		if (!read_method)
			not_allowed(rep, "GET, HEAD, OPTIONS");
		else
			admin_handle(app, req, path, rep);
		rep->audited = 0;
		goto done;
	}
	if (gk_slice_has_prefix(path, gk_slice_str("/_data/"))) {
		if (!read_method) {
			rep->protocol = "data";
			not_allowed(rep, "GET, HEAD, OPTIONS");
		} else {
			data_handle(app, req, gk_slice_of(path.p + 7,
			    path.len - 7), rep);
		}
		goto done;
	}
	if (gk_slice_has_prefix(path, gk_slice_str("/v2/"))) {
		gate_v2_handle(app, req, rep);
		goto done;
	}
	if (gk_slice_eq_str(path, "/_upload")) {
		rep->protocol = "upload";
		not_allowed(rep, "POST, OPTIONS");
		goto done;
	}
	/* v1: /{root} */
	first = path.len > 0 ? gk_slice_of(path.p + 1, path.len - 1) :
	    GK_SLICE_NULL;
	slash = first.len ? memchr(first.p, '/', first.len) : NULL;
	if (path.len < 2 || path.p[0] != '/' || slash != NULL) {
		rep->protocol = "http";
		rep->path = gate_text_copy(path, 2048);
		deny(rep, 404, "Not Found");
		goto done;
	}
	if (!app->cfg->v1) {
		/* [gate] v1 = false: a v2-only gatekeeper */
		rep->protocol = "v1";
		rep->root = gate_text_copy(first, 64);
		deny(rep, 404, "Not Found");
		goto done;
	}
	if (!read_method) {
		rep->protocol = "v1";
		rep->root = gate_text_copy(first, 64);
		not_allowed(rep, "GET, HEAD, OPTIONS");
		goto done;
	}
	v1_handle(app, req, first, rep);
done:
	gate_reply_finish(app, req, rep);
}

void
gate_reply_finish(gk_app *app, const gk_req *req, gk_reply *rep)
{
	if (rep->decision == NULL)
		rep->decision = rep->grant ? "allow" : "deny";
	set_acao(app, req, rep);
	gate_policy_finish(app, req, rep);
	count(app, rep);
}

int
gate_is_upload(const gk_req *req)
{
	return req->s3api || (method_is(req, "POST") &&
	    gk_slice_eq_str(req->path, "/_upload")) ||
	    (method_is(req, "PUT") &&
	    gk_slice_has_prefix(req->path, gk_slice_str("/v2/objects/")));
}
