/*
 * demo.c - static answers: /favicon.ico, /robots.txt, the browser client
 * (assets.c) and, in demo mode only, the
 * demo page (/demo) with its signing endpoint (/demo/sign), which stands in
 * for a vendor's server. The web files are built into the binary.
 */
#include "gate_int.h"
#include "asset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "verify/verify.h"

GATE_ASSET(demo_html, "web/demo.html");

static int
asset(gk_reply *rep, const char *start, const char *end, const char *type)
{
	rep->status = 200;
	rep->content_type = type;
	rep->audited = 0;
	if (gk_buf_append(&rep->body, start, (size_t)(end - start)) != 0)
		gate_reply_error(rep, 500, "error", "Internal Exception");
	return 1;
}

/* /demo/sign?root=R&path=P&op=OP -> {"url": signed v1 URL} */
static int
demo_sign(gk_app *app, const gk_req *req, gk_reply *rep)
{
	char hex[GK_MAC_HEX_LEN + 1], expires[24];
	const gk_buf *root, *path, *op;
	gate_params ps;
	gk_slice dup, sub, p;
	const uint8_t *slash, *end;
	gk_buf url;

	rep->audited = 0;
	/* a signing oracle: only for the admin addresses, even in demo mode */
	if (policy_check_admin(req->policy, &req->client) != 0) {
		gate_reply_error(rep, 403, "deny", "Forbidden");
		rep->audited = 0;
		return 1;
	}
	if (gate_params_parse(req->query, &ps, &dup) != 0) {
		gate_reply_error(rep, 400, "deny", "Bad Request");
		rep->audited = 0;
		return 1;
	}
	root = gate_params_get(&ps, "root");
	path = gate_params_get(&ps, "path");
	op = gate_params_get(&ps, "op");
	gk_buf_init(&url, 16384);
	if (root == NULL || path == NULL || op == NULL || path->len == 0 ||
	    path->data[0] != '/') {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: root, path and op are required");
		goto out;
	}
	p = gk_slice_of(path->data, path->len);
	slash = p.p;
	end = memchr(slash + 1, '/', p.len - 1);
	sub = gk_slice_of(slash + 1, end ? (size_t)(end - slash - 1) :
	    p.len - 1);
	snprintf(expires, sizeof(expires), "%lld",
	    (long long)(gk_now_s() + 300));
	if (verify_v1_sign(app->v1_mac, gk_slice_of(root->data, root->len),
	    sub, gk_slice_of(op->data, op->len), gk_slice_str(expires),
	    hex) != 0 ||
	    gk_buf_printf(&url, "%s/", app->cfg->public_url) != 0 ||
	    gk_pct_encode(gk_slice_of(root->data, root->len), 0, &url) != 0 ||
	    gk_buf_append_str(&url, "?path=") != 0 ||
	    gk_pct_encode(p, 1, &url) != 0 ||
	    gk_buf_append_str(&url, "&operation=") != 0 ||
	    gk_pct_encode(gk_slice_of(op->data, op->len), 0, &url) != 0 ||
	    gk_buf_printf(&url, "&expires=%s&hmac=%s", expires, hex) != 0 ||
	    gk_buf_append_str(&rep->body, "{\"url\":") != 0 ||
	    gk_json_str(&rep->body, gk_slice_of(url.data, url.len)) != 0 ||
	    gk_buf_append_str(&rep->body, "}") != 0) {
		gate_reply_error(rep, 400, "deny", "Bad Request");
		goto out;
	}
	rep->status = 200;
out:
	rep->audited = 0;
	gk_wipe(hex, sizeof(hex));
	gk_buf_release(&url);
	gate_params_release(&ps);
	return 1;
}

int
gate_static_handle(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gk_slice path = req->path;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
		return 0;
	/* browsers ask for these on their own: not decisions, not audited */
	if (gk_slice_eq_str(path, "/favicon.ico")) {
		rep->status = 204;
		rep->content_type = NULL;
		rep->audited = 0;
		return 1;
	}
	if (gk_slice_eq_str(path, "/robots.txt")) {
		static const char robots[] = "User-agent: *\nDisallow: /\n";

		return asset(rep, robots, robots + sizeof(robots) - 1,
		    "text/plain; charset=utf-8");
	}
	if (gate_assets_handle(app, req, rep))
		return 1;
	if (!app->cfg->demo)
		return 0;
	if (gk_slice_eq_str(path, "/demo") || gk_slice_eq_str(path, "/demo/"))
		return asset(rep, gk_asset_demo_html, gk_asset_demo_html_end,
		    "text/html; charset=utf-8");
	if (gk_slice_eq_str(path, "/demo/sign"))
		return demo_sign(app, req, rep);
	return 0;
}
