/*
 * v2.c - protocol v2 routes (DESIGN.md, "v2: native, public-key signed"):
 *
 *   GET  /v2/objects/{key}    302 to a data URL (JSON with Accept:
 *                             application/json)
 *   GET  /v2/list/{prefix}    JSON {items:[{key,size,last_modified}],next}
 *                             (?start_after=KEY&limit=N, N <= 1000)
 *   POST /v2/uploads/{key}    JSON {url, fields} for a browser POST to the
 *                             upload endpoint (/_upload)
 *
 * Token in "Authorization: Bearer T" or "?token=T". Pipeline: key
 * validation -> token (verify_jws_check) -> op and scope -> cip -> origin
 * -> IP ACL -> single use (jti) -> grant. The audit record carries the
 * kid, sub, jti and the vendor's signature.
 */
#include "gate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"
#include "verify/verify.h"

#define V2_LIST_DEFAULT 1000u
#define V2_LIST_MAX 1000u

static const char *const op_names[] = { "", "GET_Object", "GET_Bucket",
	"PUT_Object" };

/*
 * The token: "Authorization: Bearer T" (scheme case-insensitive) or the
 * query's token. 0, GK_ERR_NOT_FOUND (none), GK_ERR_EXISTS (both) or
 * GK_ERR_INVALID (another Authorization scheme).
 */
static int
find_token(const gk_req *req, const gate_params *ps, gk_slice *tok)
{
	const gk_buf *q = gate_params_get(ps, "token");
	gk_slice a = req->authorization;
	int has_auth = a.len > 0;

	if (has_auth) {
		if (a.len < 7 || strncasecmp((const char *)a.p, "Bearer ", 7) != 0)
			return GK_ERR_INVALID;
		a = gk_slice_of(a.p + 7, a.len - 7);
		while (a.len > 0 && a.p[0] == ' ')
			a = gk_slice_of(a.p + 1, a.len - 1);
		while (a.len > 0 && a.p[a.len - 1] == ' ')
			a.len--;
	}
	if (has_auth && q != NULL)
		return GK_ERR_EXISTS;
	if (has_auth) {
		*tok = a;
		return 0;
	}
	if (q != NULL) {
		*tok = gk_slice_of(q->data, q->len);
		return 0;
	}
	return GK_ERR_NOT_FOUND;
}

/* ---- the three answers ------------------------------------------------ */

static int
answer_get(gk_app *app, const gk_req *req, gk_slice key, const char *cip,
    gk_reply *rep)
{
	int64_t exp;
	gk_buf url;
	int r, json;

	gk_buf_init(&url, 16384);
	if ((r = gate_read_url(app, key, cip, &url, &exp)) != 0)
		goto out;
	if ((r = gk_buf_append_str(&rep->body,
	    "{\"msg\":\"Success\",\"url\":")) != 0 ||
	    (r = gk_json_str(&rep->body, gk_slice_of(url.data, url.len))) != 0 ||
	    (r = gk_buf_printf(&rep->body, ",\"expires\":%lld,\"error\":false}",
	    (long long)exp)) != 0)
		goto out;
	json = req->accept.len > 0 && memmem(req->accept.p, req->accept.len,
	    "application/json", 16) != NULL;
	if (json) {
		rep->status = 200;
	} else {
		rep->status = 302;
		rep->location = gk_buf_detach(&url, NULL);
	}
out:
	gk_buf_release(&url);
	return r;
}

struct list_ctx {
	gk_buf *out;
	gk_slice prefix;	/* every key listed starts with it */
	unsigned n, limit;
	int stopped_early;
	char *next;
	int r;
};

static int
list_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct list_ctx *lc = arg;
	char when[32];

	if (!gk_slice_has_prefix(key, lc->prefix))
		return 0;	/* outside the token's scope: never shown */
	if (lc->n == lc->limit) {
		/* one more exists: the page ends at the previous key */
		lc->stopped_early = 1;
		return 1;
	}
	gk_time_iso(mtime, when, sizeof(when));
	if ((lc->n > 0 && (lc->r = gk_buf_append(lc->out, ",", 1)) != 0) ||
	    (lc->r = gk_buf_append_str(lc->out, "{\"key\":")) != 0 ||
	    (lc->r = gk_json_str(lc->out, key)) != 0 ||
	    (lc->r = gk_buf_printf(lc->out, ",\"size\":%llu,"
	    "\"last_modified\":\"%s\"}", (unsigned long long)size,
	    when)) != 0)
		return lc->r;
	free(lc->next);
	if ((lc->next = gk_slice_dup(key)) == NULL)
		return lc->r = GK_ERR_NOMEM;
	lc->n++;
	return 0;
}

/* The list paging parameters; a message when malformed. */
static const char *
list_params(const gate_params *ps, gk_slice *after, unsigned *limit)
{
	const gk_buf *sa = gate_params_get(ps, "start_after");
	const gk_buf *lim = gate_params_get(ps, "limit");
	uint64_t n = V2_LIST_DEFAULT;

	*after = GK_SLICE_NULL;
	if (lim != NULL && (gk_parse_u64(gk_slice_of(lim->data, lim->len),
	    V2_LIST_MAX, &n) != 0 || n == 0))
		return "Bad Request: 'limit' must be 1 to 1000";
	*limit = (unsigned)n;
	if (sa != NULL) {
		*after = gk_slice_of(sa->data, sa->len);
		if (after->len > 1024)
			return "Bad Request: invalid 'start_after' param";
	}
	return NULL;
}

static int
answer_list(gk_app *app, gk_slice prefix, gk_slice after, unsigned limit,
    gk_reply *rep)
{
	struct list_ctx lc;
	int r;

	memset(&lc, 0, sizeof(lc));
	lc.limit = limit;
	lc.out = &rep->body;
	lc.prefix = prefix;
	if ((r = gk_buf_append_str(&rep->body,
	    "{\"msg\":\"Success\",\"items\":[")) != 0)
		goto out;
	r = store_list(app->store, prefix, after, lc.limit + 1, list_cb, &lc);
	if (r < 0)
		goto out;
	if ((r = lc.r) != 0)
		goto out;
	if ((r = gk_buf_append_str(&rep->body, "],\"next\":")) != 0)
		goto out;
	/* a full page that stopped early has more after its last key */
	if (lc.n == lc.limit && lc.next != NULL && lc.stopped_early)
		r = gk_json_str(&rep->body, gk_slice_str(lc.next));
	else
		r = gk_buf_append_str(&rep->body, "null");
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"error\":false}");
	if (r == 0)
		rep->status = 200;
out:
	free(lc.next);
	return r;
}

static int
answer_put(gk_app *app, gk_slice key, const char *cip, int once,
    gk_reply *rep)
{
	gk_buf form, *b = &rep->body;
	int64_t exp;
	int r;

	gk_buf_init(&form, 65536);
	if ((r = gate_upload_form(app, key, cip, once, &form, &exp)) != 0)
		goto out;
	if (form.len < 2 || form.data[0] != '{') {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	/* the form's members, then v2's own */
	if ((r = gk_buf_append_str(b, "{\"msg\":\"Success\",")) != 0 ||
	    (r = gk_buf_append(b, form.data + 1, form.len - 2)) != 0 ||
	    (r = gk_buf_printf(b, ",\"expires\":%lld,\"max_bytes\":%llu,"
	    "\"error\":false}", (long long)exp,
	    (unsigned long long)app->cfg->max_upload_bytes)) != 0)
		goto out;
	rep->status = 200;
out:
	gk_buf_release(&form);
	return r;
}

/* ---- the pipeline ------------------------------------------------------ */

static void
take(char **dst, char **src)
{
	free(*dst);
	*dst = *src;
	*src = NULL;
}

/* What v2_authorize hands on to the answer. */
struct v2_grant {
	int op;			/* GK_V2_* */
	gk_buf key;		/* the decoded key or prefix */
	gate_params ps;
	gk_slice after;		/* list: start_after */
	unsigned limit;		/* list: page size */
	char *cip;		/* the token's 'cip' (owned), or NULL: the
				 * data URL or upload form is bound to it */
};

static void
v2_grant_release(struct v2_grant *g)
{
	gate_params_release(&g->ps);
	gk_buf_release(&g->key);
	free(g->cip);
	g->cip = NULL;
}

/* 1 if the store takes a request body itself (fs, s3 in proxy mode). */
static int
body_put_allowed(const gk_app *app)
{
	return !store_presigns(app->store);
}

/*
 * Everything v2 checks before it grants: the route and method, the key,
 * the token (signature, claims, op, scope, cip), origin, ACL and single
 * use. Returns 0 with g filled, or -1 with the refusal in rep. body_put:
 * the request is PUT /v2/objects/{key} with its body (proxy mode).
 */
static int
v2_authorize(gk_app *app, const gk_req *req, int body_put, gk_reply *rep,
    struct v2_grant *g)
{
	const gate_settings *cfg = app->cfg;
	gk_slice path = gk_slice_of(req->path.p + 4, req->path.len - 4);
	gk_slice enc, k, tok = GK_SLICE_NULL, origin, dup;
	gk_jws_claims cl;
	gk_jws_rules rules;
	const char *msg = NULL, *allow;
	int op, status = 0, r, m, read_method, has_origin, ok = -1;

	memset(&cl, 0, sizeof(cl));
	memset(g, 0, sizeof(*g));
	gk_buf_init(&g->key, 4096);
	g->limit = V2_LIST_DEFAULT;
	rep->protocol = "v2";
	read_method = strcmp(req->method, "GET") == 0 ||
	    strcmp(req->method, "HEAD") == 0;
	if (gk_slice_has_prefix(path, gk_slice_str("objects/"))) {
		op = body_put ? GK_V2_PUT : GK_V2_GET;
		enc = gk_slice_of(path.p + 8, path.len - 8);
		m = read_method || (body_put && body_put_allowed(app));
		allow = body_put_allowed(app) ? "GET, HEAD, PUT, OPTIONS" :
		    "GET, HEAD, OPTIONS";
	} else if (gk_slice_has_prefix(path, gk_slice_str("list/"))) {
		op = GK_V2_LIST;
		enc = gk_slice_of(path.p + 5, path.len - 5);
		m = read_method;
		allow = "GET, HEAD, OPTIONS";
	} else if (gk_slice_has_prefix(path, gk_slice_str("uploads/"))) {
		op = GK_V2_PUT;
		enc = gk_slice_of(path.p + 8, path.len - 8);
		m = strcmp(req->method, "POST") == 0;
		allow = "POST, OPTIONS";
	} else {
		rep->path = gate_text_copy(req->path, 2048);
		gate_deny(rep, 404, "Not Found");
		goto out;
	}
	g->op = op;
	rep->operation = strdup(op_names[op]);
	if (!m) {
		/* PUT with a body needs a store that takes it (not s3 in
		 * redirect mode: there the browser posts to the bucket) */
		rep->path = gate_text_copy(enc, 2048);
		gate_deny(rep, 405, "Method Not Allowed");
		rep->allow = allow;
		goto out;
	}
	if (gk_pct_decode(enc, &g->key) != 0) {
		rep->path = gate_text_copy(enc, 2048);
		gate_deny(rep, 400, "Bad Request: invalid key");
		goto out;
	}
	k = gk_slice_of(g->key.data, g->key.len);
	rep->path = gate_text_copy(k, 2048);
	if (!gate_key_valid(k, op == GK_V2_LIST)) {
		gate_deny(rep, 400, "Bad Request: invalid key");
		goto out;
	}
	if (gate_params_parse(req->query, &g->ps, &dup) != 0) {
		gate_deny(rep, 400, "Bad Request: malformed query string");
		goto out;
	}
	if (op == GK_V2_LIST && (msg = list_params(&g->ps, &g->after,
	    &g->limit)) != NULL) {
		gate_deny(rep, 400, msg);
		goto out;
	}
	r = find_token(req, &g->ps, &tok);
	if (r == GK_ERR_NOT_FOUND) {
		gate_deny(rep, 401, "Unauthorized: missing token");
		goto out;
	}
	if (r == GK_ERR_EXISTS) {
		gate_deny(rep, 400, "Bad Request: token given both in the "
		    "Authorization header and the query");
		goto out;
	}
	if (r != 0) {
		gate_deny(rep, 401, "Unauthorized: Authorization must be 'Bearer "
		    "TOKEN'");
		goto out;
	}
	rules.aud = cfg->id;
	rules.now = gk_now_s();
	rules.skew = cfg->v2_clock_skew;
	rules.sig_cache = cfg->v2_verify_cache;
	rules.max_lifetime = cfg->v2_max_lifetime;
	r = verify_jws_check(app->keyring, tok, &rules, &cl, &status, &msg);
	take(&rep->kid, &cl.kid);
	if (r != 0) {
		gate_deny(rep, status ? status : 401, msg ? msg :
		    "Unauthorized: invalid token");
		goto out;
	}
	/* the vendor authorised this: record who and the proof */
	take(&rep->sub, &cl.sub);
	take(&rep->jti, &cl.jti);
	take(&rep->token_sig, &cl.sig);
	if (cl.op != op) {
		gate_deny(rep, 403, "Forbidden: the token's 'op' does not allow "
		    "this request");
		goto out;
	}
	if (op == GK_V2_LIST && cl.key != NULL) {
		/* a list names a prefix ending in '/': a 'key' would list
		 * every key that merely starts with it ("ab" -> "ab-x/") */
		gate_deny(rep, 403, "Forbidden: a list token must carry 'prefix', "
		    "not 'key'");
		goto out;
	}
	if ((cl.key != NULL && !gate_key_valid(gk_slice_str(cl.key), 0)) ||
	    (cl.prefix != NULL && !gate_key_valid(gk_slice_str(cl.prefix),
	    1))) {
		gate_deny(rep, 403, "Forbidden: the token's 'key' or 'prefix' is not "
		    "a valid key");
		goto out;
	}
	if (cl.key != NULL ? !gk_slice_eq_str(k, cl.key) :
	    !gk_slice_has_prefix(k, gk_slice_str(cl.prefix))) {
		gate_deny(rep, 403, "Forbidden: key outside the token's scope");
		goto out;
	}
	if (cl.cip != NULL) {
		r = gate_cip_match(cl.cip, &req->client);
		if (r < 0) {
			gate_deny(rep, 401, "Unauthorized: invalid 'cip' claim");
			goto out;
		}
		if (r == 0) {
			gate_deny(rep, 403, "Forbidden: client address outside the "
			    "token's 'cip'");
			goto out;
		}
	}
	has_origin = gate_effective_origin(app, req, &origin);
	if (policy_check_origin(req->policy, origin, has_origin) != 0) {
		gate_deny(rep, 403, gate_origin_refusal(req, has_origin));
		goto out;
	}
	if (gate_acl_check(req, op == GK_V2_PUT ? GK_OP_PUT :
	    op == GK_V2_LIST ? GK_OP_LIST : GK_OP_GET, op == GK_V2_PUT,
	    rep) != 0)
		goto out;
	if (rep->jti != NULL) {
		r = audit_jti_use(app->audit, rep->jti, cl.exp);
		if (r == GK_ERR_EXISTS) {
			gate_deny(rep, 403, "Forbidden: token already used ('jti')");
			goto out;
		}
		if (r != 0) {
			gate_reply_error(rep, 503, "error", "Service "
			    "Unavailable: replay cache unavailable");
			goto out;
		}
	}
	g->cip = cl.cip;	/* transferred: what it grants stays bound */
	cl.cip = NULL;
	ok = 0;
out:
	verify_jws_release(&cl);
	if (ok != 0)
		v2_grant_release(g);
	return ok;
}

void
gate_v2_handle(gk_app *app, const gk_req *req, gk_slice rest, gk_reply *rep)
{
	struct v2_grant g;
	gk_slice k;
	int r;

	if (v2_authorize(app, req, 0, rep, &g) != 0)
		return;
	k = gk_slice_of(g.key.data, g.key.len);
	if (g.op == GK_V2_GET)
		r = answer_get(app, req, k, g.cip, rep);
	else if (g.op == GK_V2_LIST)
		r = answer_list(app, k, g.after, g.limit, rep);
	else
		/* a single-use token buys a single-use form */
		r = answer_put(app, k, g.cip, rep->jti != NULL, rep);
	if (r != 0) {
		gate_store_failed(rep, r);
		goto out;
	}
	gate_reply_allow(rep, "Success");
out:
	v2_grant_release(&g);
}

int
gate_v2_put_authorize(gk_app *app, const gk_req *req, gk_reply *rep,
    char **key)
{
	struct v2_grant g;

	*key = NULL;
	if (v2_authorize(app, req, 1, rep, &g) != 0)
		return -1;
	*key = gk_slice_dup(gk_slice_of(g.key.data, g.key.len));
	v2_grant_release(&g);
	if (*key == NULL) {
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return -1;
	}
	return 0;
}
