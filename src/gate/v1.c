/*
 * v1.c - protocol v1: GET /{root}?path=&operation=&expires=&hmac= signed
 * with the shared secret; GET_Object answers a read URL, GET_Bucket a
 * listing, PUT_Object an upload form.
 */
#include "gate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "verify/verify.h"

#define LIST_MAX_KEYS 100000
#define JSON_LIST_CAP (64u * 1024 * 1024)

static char *
buf_copy(const gk_buf *b, size_t max)
{
	return gate_text_copy(gk_slice_of(b->data, b->len), max);
}

static int
json_begin_ok(gk_buf *b)
{
	return gk_buf_append_str(b, "{\"msg\":\"Success\",");
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
	    (r = gate_upload_form(app, key, NULL, 0, b, &exp)) != 0 ||
	    (r = gk_buf_append_str(b, ",\"bucket\":")) != 0 ||
	    (r = gk_json_str(b, gk_slice_str(store_presigns(app->store) ?
	    store_bucket(app->store) : app->cfg->id))) != 0 ||
	    (r = gk_buf_append_str(b,
	    ",\"msg\":\"Success\",\"error\":false}")) != 0)
		return r;
	rep->status = 200;
	return 0;
}

void
gate_v1_handle(gk_app *app, const gk_req *req, gk_slice root, gk_reply *rep)
{
	const gate_settings *cfg = app->cfg;
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
		gate_deny(rep, 400, msg);
		return;
	}
	if (r != 0) {
		gate_deny(rep, 400, "Bad Request: malformed query string");
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
		gate_deny(rep, 400, "Bad Request: missing 'path' param");
		goto out;
	}
	if (!known_op) {
		gate_deny(rep, 400, "Bad Request: invalid 'operation' param");
		goto out;
	}
	if (expires == NULL) {
		gate_deny(rep, 400, "Bad Request: missing 'expires' param");
		goto out;
	}
	if (hmac == NULL) {
		gate_deny(rep, 400, "Bad Request: missing 'hmac' param");
		goto out;
	}
	pathv = gk_slice_of(path->data, path->len);
	if ((why = gate_v1_path_shape(opv, pathv)) != NULL) {
		gate_deny(rep, 400, why);
		goto out;
	}
	if (gk_parse_u64(gk_slice_of(expires->data, expires->len), INT64_MAX,
	    &exp) != 0) {
		gate_deny(rep, 400, "Bad Request: invalid 'expires' param");
		goto out;
	}
	if ((why = gate_v1_key(cfg->uploads_prefix, cfg->validate_keys, root,
	    pathv, opv, &key)) != NULL) {
		gate_deny(rep, 400, why);
		goto out;
	}
	if (!gate_v1_root_listed(cfg->v1_roots, root)) {
		/* only listed roots, so that root || sub splits one way
		 * (see [gate] v1_roots) */
		gate_deny(rep, 403, "Forbidden: unknown root");
		goto out;
	}
	sub = gate_v1_sub(pathv);
	r = verify_v1_check(app->v1_mac, root, sub, opv,
	    gk_slice_of(expires->data, expires->len),
	    gk_slice_of(hmac->data, hmac->len));
	if (r != 0) {
		gate_deny(rep, 401, "Unauthorized: invalid 'hmac' param");
		goto out;
	}
	if (gk_add_sat((int64_t)exp, 60) < now) {
		gate_deny(rep, 410, "Expired");
		goto out;
	}
	if (cfg->max_token_lifetime > 0 &&
	    gk_sub_sat((int64_t)exp, now) > cfg->max_token_lifetime) {
		gate_deny(rep, 401, "Unauthorized: 'expires' is further away than "
		    "the maximum token lifetime");
		goto out;
	}
	has_origin = gate_effective_origin(app, req, &origin);
	if (policy_check_origin(req->policy, origin, has_origin) != 0) {
		gate_deny(rep, 403, gate_origin_refusal(req, has_origin));
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
	gate_reply_allow(rep, "Success");
out:
	gk_buf_release(&key);
	gate_params_release(&ps);
}

