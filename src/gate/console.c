/*
 * console.c - the customer's console at /admin/: the page, its script and
 * style (built in, web/console/), and the JSON it reads:
 *
 *   POST /admin/api/login      Authorization: Bearer <admin token> ->
 *                              a session cookie (Secure, HttpOnly,
 *                              SameSite=Strict, Path=/admin/) and
 *                              {"csrf": ...}
 *   POST /admin/api/logout     ends the session
 *   GET  /admin/api/session    {"csrf", "id", "instance"} or 401
 *   GET  /admin/api/tail       the audit search (GET /admin/audit's
 *                              parameters), not itself audited
 *   GET  /admin/api/stats      from, to, buckets: requests over time by
 *                              decision, top addresses and countries,
 *                              denials by reason
 *   GET  /admin/api/integrity  the chain, the last signed checkpoint,
 *                              the last verification
 *   POST /admin/api/verify     starts what 'gatekeeper audit verify'
 *                              runs (202; the page polls integrity)
 *   GET  /admin/api/policy     the effective settings, the last reload's
 *                              changes
 *   GET  /admin/api/policy/test  ip, origin, op -> the decision and the
 *                              rule that decided
 *   GET  /admin/api/grants     the S3 endpoint's grants (no secrets)
 *   POST /admin/api/grants     name, prefix, ops, expires, ip, rate (as
 *                              'gatekeeper grant create') -> the grant
 *                              and its secret, shown this once
 *   POST /admin/api/grants/revoke  id -> the grant, revoked
 *
 * Every path under /admin/ is for the admin CIDRs only (else 403). The
 * API needs the admin token or a session; a session's requests other
 * than GET carry its CSRF token in X-CSRF-Token and no foreign Origin.
 * Pages are served with a strict Content-Security-Policy (everything
 * from the gatekeeper itself, no inline script or style).
 *
 * This file: the page and its assets, login/logout/session, the API's
 * routing and the console's lifetime; the rest in console_*.c (see
 * console_int.h), the admin gate and sessions below in admin_gate.c.
 */
#include "console_int.h"
#include "asset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


GATE_ASSET(console_html, "web/console/index.html");
GATE_ASSET(console_js, "web/console/console.js");
GATE_ASSET(console_css, "web/console/console.css");

#define CONSOLE_CSP "default-src 'none'; script-src 'self'; " \
	"style-src 'self'; img-src 'self'; connect-src 'self'; " \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
#define SESSION_MAX_S (12LL * 3600)

/* ---- replies ---------------------------------------------------------- */

static int
page(gk_reply *rep, const char *start, const char *end, const char *type)
{
	rep->status = 200;
	rep->content_type = type;
	rep->csp = CONSOLE_CSP;
	if (gk_buf_append(&rep->body, start, (size_t)(end - start)) != 0)
		gate_reply_error(rep, 500, "error", "Internal Exception");
	rep->audited = 0;
	return 1;
}

/* ---- login, logout, session ------------------------------------------ */

static void
login(gk_app *app, const gk_req *req, gk_reply *rep)
{
	char id[GATE_SESSION_HEX + 1], csrf[GATE_SESSION_HEX + 1], cookie[160];
	gk_req bare;

	console_set_op(rep, "login", req->path);
	if (!gate_origin_is_ours(app, req)) {
		gate_reply_error(rep, 403, "deny", "Forbidden: bad origin");
		return;
	}
	if (req->authorization.len == 0) {
		gate_reply_error(rep, 401, "deny",
		    "Unauthorized: admin token required");
		return;
	}
	/* the token alone decides: a session cookie never renews itself */
	bare = *req;
	bare.cookie = GK_SLICE_NULL;
	if (!gate_admin_allowed(app, &bare, rep))
		return;
	if (gate_sessions_open(app->sessions, id, csrf) != 0)
		return console_oom(rep);
	snprintf(cookie, sizeof(cookie), GATE_SESSION_COOKIE "=%s; Path=/admin/; "
	    "Max-Age=%lld; Secure; HttpOnly; SameSite=Strict", id,
	    (long long)SESSION_MAX_S);
	gk_wipe(id, sizeof(id));
	free(rep->set_cookie);
	rep->set_cookie = NULL;
	if (gk_buf_printf(&rep->body, "{\"msg\":\"Success\",\"csrf\":\"%s\","
	    "\"error\":false}", csrf) != 0 ||
	    (rep->set_cookie = strdup(cookie)) == NULL) {
		gk_wipe(cookie, sizeof(cookie));
		gk_wipe(csrf, sizeof(csrf));
		return console_oom(rep);
	}
	gk_wipe(cookie, sizeof(cookie));
	gk_wipe(csrf, sizeof(csrf));
	console_ok_json(rep, 1);
	rep->grant = 1;	/* the session exists once its record is durable */
}

static void
logout(gk_app *app, const gk_req *req, gk_reply *rep)
{
	console_set_op(rep, "logout", req->path);
	if (!gate_admin_allowed(app, req, rep))
		return;
	gate_sessions_close(app->sessions, req);
	free(rep->set_cookie);
	rep->set_cookie = strdup(GATE_SESSION_COOKIE "=; Path=/admin/; Max-Age=0; "
	    "Secure; HttpOnly; SameSite=Strict");
	if (gk_buf_append_str(&rep->body, "{\"msg\":\"Success\","
	    "\"error\":false}") != 0)
		return console_oom(rep);
	console_ok_json(rep, 1);
}

static void
session_info(gk_app *app, const gk_req *req, gk_reply *rep)
{
	char csrf[GATE_SESSION_HEX + 1];
	int r;

	if (!gate_admin_allowed(app, req, rep))
		return;
	(void)gate_sessions_csrf(app->sessions, req, csrf);
	r = gk_buf_printf(&rep->body, "{\"csrf\":\"%s\",\"id\":", csrf);
	if (r == 0)
		r = gk_json_str(&rep->body, gk_slice_str(app->cfg->id));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"instance\":");
	if (r == 0)
		r = gk_json_str(&rep->body,
		    gk_slice_str(audit_instance(app->audit)));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"error\":false}");
	gk_wipe(csrf, sizeof(csrf));
	if (r != 0)
		return console_oom(rep);
	console_ok_json(rep, 0);
}

/* ---- routing ------------------------------------------------------------ */

struct api_route {
	const char *method;
	const char *path;
	int params;	/* parses the query */
	int need_auth;
};

enum { R_LOGIN, R_LOGOUT, R_SESSION, R_TAIL, R_STATS, R_INTEGRITY,
	R_VERIFY, R_POLICY, R_POLICY_TEST, R_GRANTS, R_GRANT_CREATE,
	R_GRANT_REVOKE };

static const struct api_route routes[] = {
	[R_LOGIN] = { "POST", "/admin/api/login", 0, 0 },
	[R_LOGOUT] = { "POST", "/admin/api/logout", 0, 0 },
	[R_SESSION] = { "GET", "/admin/api/session", 0, 0 },
	[R_TAIL] = { "GET", "/admin/api/tail", 1, 1 },
	[R_STATS] = { "GET", "/admin/api/stats", 1, 1 },
	[R_INTEGRITY] = { "GET", "/admin/api/integrity", 0, 1 },
	[R_VERIFY] = { "POST", "/admin/api/verify", 0, 1 },
	[R_POLICY] = { "GET", "/admin/api/policy", 0, 1 },
	[R_POLICY_TEST] = { "GET", "/admin/api/policy/test", 1, 1 },
	[R_GRANTS] = { "GET", "/admin/api/grants", 0, 1 },
	[R_GRANT_CREATE] = { "POST", "/admin/api/grants", 1, 1 },
	[R_GRANT_REVOKE] = { "POST", "/admin/api/grants/revoke", 1, 1 },
};

static void
api(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gate_params ps;
	gk_slice dup;
	size_t i, first = GK_ARRAY_LEN(routes);
	int r, read = gate_is_read(req);

	/* the first row of the path whose method fits, else its first row */
	for (i = 0; i < GK_ARRAY_LEN(routes); i++) {
		if (!gk_slice_eq_str(req->path, routes[i].path))
			continue;
		if (strcmp(routes[i].method, req->method) == 0 ||
		    (read && strcmp(routes[i].method, "GET") == 0))
			break;
		if (first == GK_ARRAY_LEN(routes))
			first = i;
	}
	if (i == GK_ARRAY_LEN(routes))
		i = first;
	console_set_op(rep, "console", req->path);
	if (i == GK_ARRAY_LEN(routes)) {
		gate_reply_error(rep, 404, "deny", "Not Found");
		return;
	}
	if (strcmp(routes[i].method, "GET") == 0 ? !read :
	    strcmp(req->method, routes[i].method) != 0) {
		gate_reply_error(rep, 405, "deny", "Method Not Allowed");
		rep->allow = i == R_GRANTS ? "GET, HEAD, POST" :
		    strcmp(routes[i].method, "GET") == 0 ? "GET, HEAD" : "POST";
		return;
	}
	if (routes[i].need_auth && !gate_admin_allowed(app, req, rep))
		return;
	memset(&ps, 0, sizeof(ps));
	if (routes[i].params &&
	    (r = gate_params_parse(req->query, &ps, &dup)) != 0) {
		gate_reply_error(rep, 400, "deny", r == GK_ERR_EXISTS ?
		    "Bad Request: repeated param" :
		    "Bad Request: malformed query string");
		return;
	}
	switch (i) {
	case R_LOGIN: login(app, req, rep); break;
	case R_LOGOUT: logout(app, req, rep); break;
	case R_SESSION: session_info(app, req, rep); break;
	case R_TAIL:
		console_set_op(rep, "GET_Audit", req->path);
		gate_admin_search(app, &ps, rep);
		rep->audited = 0;	/* a poll: its reads are not news */
		break;
	case R_STATS:
		console_set_op(rep, "GET_Stats", req->path);
		console_stats(app, &ps, rep);
		break;
	case R_INTEGRITY: console_integrity(app, rep); break;
	case R_VERIFY:
		console_set_op(rep, "verify", req->path);
		console_verify(app, rep);
		break;
	case R_POLICY: console_policy_view(app, rep); break;
	case R_POLICY_TEST: console_policy_test(app, req, &ps, rep); break;
	case R_GRANTS: console_grants_list(app, rep); break;
	case R_GRANT_CREATE: console_grant_create(app, req, &ps, rep); break;
	case R_GRANT_REVOKE: console_grant_revoke(app, req, &ps, rep); break;
	}
	gate_params_release(&ps);
}

int
gate_console_handle(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gk_slice path = req->path;
	int read = gate_is_read(req);

	if (!gk_slice_eq_str(path, "/admin") &&
	    !gk_slice_has_prefix(path, gk_slice_str("/admin/")))
		return 0;
	if (gk_slice_eq_str(path, "/admin/audit") ||
	    gk_slice_eq_str(path, "/admin/reload"))
		return 0;	/* admin.c, acl.c: the same gate */
	rep->csp = CONSOLE_CSP;
	if (policy_check_admin(req->policy, &req->client) != 0) {
		console_set_op(rep, "console", path);
		gate_reply_error(rep, 403, "deny", "Forbidden");
		rep->audited = !read || gk_slice_has_prefix(path,
		    gk_slice_str("/admin/api/"));
		return 1;
	}
	if (gk_slice_has_prefix(path, gk_slice_str("/admin/api/"))) {
		api(app, req, rep);
		return 1;
	}
	if (!read) {
		console_set_op(rep, "console", path);
		gate_reply_error(rep, 405, "deny", "Method Not Allowed");
		rep->allow = "GET, HEAD";
		return 1;
	}
	if (gk_slice_eq_str(path, "/admin") ||
	    gk_slice_eq_str(path, "/admin/"))
		return page(rep, gk_asset_console_html,
		    gk_asset_console_html_end, "text/html; charset=utf-8");
	if (gk_slice_eq_str(path, "/admin/console.js"))
		return page(rep, gk_asset_console_js, gk_asset_console_js_end,
		    "text/javascript; charset=utf-8");
	if (gk_slice_eq_str(path, "/admin/console.css"))
		return page(rep, gk_asset_console_css,
		    gk_asset_console_css_end, "text/css; charset=utf-8");
	console_set_op(rep, "console", path);
	gate_reply_error(rep, 404, "deny", "Not Found");
	rep->audited = 0;
	return 1;
}

void
gate_console_route(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	if (!gate_console_handle(app, req, rep))
		gate_reply_error(rep, 404, "deny", "Not Found");
}

/* ---- lifetime ------------------------------------------------------------ */

int
gate_console_new(gk_app *app, gate_console **out)
{
	gate_console *c;
	gk_policy *p;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->app = app;
	pthread_mutex_init(&c->lock, NULL);
	p = policy_live_get(app->policy_live);
	policy_summary(p, c->summary, sizeof(c->summary));
	policy_free(p);
	c->loaded_us = gk_now_us();
	*out = c;
	return 0;
}

void
gate_console_free(gate_console *c)
{
	if (c == NULL)
		return;
	console_settings_clear(c->cur, &c->ncur);
	console_settings_clear(c->prev, &c->nprev);
	free(c->last_verify);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void
gate_console_stop(gate_console *c)
{
	if (c != NULL)
		console_verify_join(c);
}
