/*
 * route.c - the route table: method and path pattern to handler. The
 * first row whose method and pattern match a request handles it; a row
 * with methods "*" after the rows of a path answers the other methods
 * (405). A new endpoint is a row here and a handler in its own file.
 *
 * Patterns: "*" any path; a pattern ending in '*' a prefix (the handler
 * gets the rest); "/{}" exactly one segment (the handler gets it); else the exact
 * path. Every row but those flagged R_NO_RATE is rate limited first; a
 * body row (R_BODY) starts an upload that receives the request body.
 *
 * Rows flagged R_S3 serve the S3-compatible endpoint: requests that came
 * to its listener or host name (gate_s3api_match). They see only those
 * requests, and the other rows never see them.
 */
#include "gate_int.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>


enum {
	R_NO_RATE = 1,	/* not rate limited (preflight, static files) */
	R_BODY = 2,	/* the body becomes an object (route->body) */
	R_DEMO = 4,	/* only with [server] demo on */
	R_V1_OFF = 8,	/* only with [gate] v1 = false */
	R_S3 = 16,	/* the S3 endpoint's listener or host */
	/* the handler calls the store: with a remote one (s3) it may wait
	 * on the bucket, so a gate worker decides (gate_route_defers) */
	R_STORE = 32,
};

typedef void (*route_fn)(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep);
typedef void (*route_body_fn)(gk_app *app, const gk_req *req,
    gate_upload **out, gk_reply *rep);

struct gate_route {
	const char *methods;	/* space-separated, or "*" */
	const char *pattern;
	unsigned flags;
	const char *protocol;	/* audit label set before the handler runs */
	route_fn handle;
	route_body_fn body;
	const char *allow;	/* for the 405 rows: the Allow header */
};

static void
preflight(gk_app *app, const gk_req *req, gk_slice rest, gk_reply *rep)
{
	rep->status = 204;
	rep->audited = 0;
	rep->content_type = NULL;
}

static void
not_found(gk_app *app, const gk_req *req, gk_slice rest, gk_reply *rep)
{
	rep->protocol = "http";
	rep->path = gate_text_copy(req->path, 2048);
	gate_reply_error(rep, 404, "deny", "Not Found");
}

/* 405 with the Allow header of the row (set by the router). */
static void
not_allowed(gk_app *app, const gk_req *req, gk_slice rest, gk_reply *rep)
{
	gate_reply_error(rep, 405, "deny", "Method Not Allowed");
}

/* 405 for /healthz and /metrics: like the pages, not audited. */
static void
probe_not_allowed(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	not_allowed(app, req, rest, rep);
	rep->audited = 0;
}

static void
v1_not_allowed(gk_app *app, const gk_req *req, gk_slice root, gk_reply *rep)
{
	rep->root = gate_text_copy(root, 64);
	not_allowed(app, req, root, rep);
}

/* [gate] v1 = false: a v2-only gatekeeper knows no roots */
static void
v1_off(gk_app *app, const gk_req *req, gk_slice root, gk_reply *rep)
{
	rep->root = gate_text_copy(root, 64);
	gate_reply_error(rep, 404, "deny", "Not Found");
}

#define READ "GET HEAD"
#define READ_ALLOW "GET, HEAD, OPTIONS"

static const struct gate_route routes[] = {
	/*
	 * The S3 endpoint. s3api.c tells the operation from the method, the
	 * path (path style: /BUCKET/KEY), the host (virtual-host style:
	 * BUCKET.host/KEY) and the query, and answers anything it does not
	 * implement in S3's XML. Body rows, so a write, copy or delete
	 * happens after its record, like an upload's; rate limited by
	 * s3api.c (SlowDown, in S3's XML).
	 */
	{ "*", "*", R_S3 | R_NO_RATE | R_BODY | R_STORE, "s3api", NULL,
	    gate_upload_s3_begin, NULL },
	{ "OPTIONS", "*", R_NO_RATE, NULL, preflight, NULL, NULL },
	{ READ, "/favicon.ico", R_NO_RATE, NULL, gate_static_favicon, NULL,
	    NULL },
	{ READ, "/robots.txt", R_NO_RATE, NULL, gate_static_robots, NULL,
	    NULL },
	{ READ, "/gatekeeper.js", R_NO_RATE, NULL, gate_static_assets, NULL,
	    NULL },
	{ READ, "/gatekeeper.classic.js", R_NO_RATE, NULL, gate_static_assets,
	    NULL, NULL },
	{ READ, "/gatekeeper.d.ts", R_NO_RATE, NULL, gate_static_assets, NULL,
	    NULL },
	{ READ, "/gatekeeper.json", R_NO_RATE, NULL, gate_static_assets, NULL,
	    NULL },
	{ READ, "/demo", R_NO_RATE | R_DEMO, NULL, gate_static_demo, NULL,
	    NULL },
	{ READ, "/demo/", R_NO_RATE | R_DEMO, NULL, gate_static_demo, NULL,
	    NULL },
	{ READ, "/demo/sign", R_NO_RATE | R_DEMO, NULL, gate_demo_sign, NULL,
	    NULL },
	{ "POST", "/admin/reload", 0, "admin", gate_admin_reload, NULL,
	    NULL },
	{ "*", "/admin/reload", 0, "admin", gate_admin_reload_405, NULL,
	    "POST" },
	{ READ, "/admin/audit", 0, "admin", gate_admin_audit, NULL, NULL },
	{ "*", "/admin/audit", 0, "admin", gate_admin_audit_405, NULL,
	    READ_ALLOW },
	{ "*", "/admin", 0, NULL, gate_console_route, NULL, NULL },
	{ "*", "/admin/*", 0, NULL, gate_console_route, NULL, NULL },
	{ READ, "/healthz", 0, NULL, gate_admin_health, NULL, NULL },
	{ "*", "/healthz", 0, NULL, probe_not_allowed, NULL, READ_ALLOW },
	{ READ, "/metrics", 0, NULL, gate_admin_metrics, NULL, NULL },
	{ "*", "/metrics", 0, NULL, probe_not_allowed, NULL, READ_ALLOW },
	{ READ, "/_data/*", R_STORE, "data", gate_data_handle, NULL, NULL },
	{ "*", "/_data/*", 0, "data", not_allowed, NULL, READ_ALLOW },
	{ "POST", "/_upload", R_BODY | R_STORE, "upload", NULL,
	    gate_upload_form_begin, NULL },
	{ "*", "/_upload", 0, "upload", not_allowed, NULL, "POST, OPTIONS" },
	{ "PUT", "/v2/objects/*", R_BODY | R_STORE, NULL, NULL,
	    gate_upload_put_begin, NULL },
	{ "*", "/v2/*", R_STORE, NULL, gate_v2_handle, NULL, NULL },
	{ "*", "/{}", R_V1_OFF, "v1", v1_off, NULL, NULL },
	{ READ, "/{}", R_STORE, "v1", gate_v1_handle, NULL, NULL },
	{ "*", "/{}", 0, "v1", v1_not_allowed, NULL, READ_ALLOW },
	{ "*", "*", 0, NULL, not_found, NULL, NULL },
};


static int
method_matches(const char *methods, const char *m)
{
	size_t n = strlen(m);
	const char *p = methods;

	if (strcmp(methods, "*") == 0)
		return 1;
	while (*p != '\0') {
		if (strncmp(p, m, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
			return 1;
		p = strchr(p, ' ');
		if (p == NULL)
			break;
		p++;
	}
	return 0;
}

/* 1 when path matches; *rest gets the part the pattern leaves open. */
static int
path_matches(const char *pattern, gk_slice path, gk_slice *rest)
{
	size_t n = strlen(pattern);

	*rest = GK_SLICE_NULL;
	if (strcmp(pattern, "*") == 0)
		return 1;
	if (strcmp(pattern, "/{}") == 0) {
		if (path.len < 2 || path.p[0] != '/' ||
		    memchr(path.p + 1, '/', path.len - 1) != NULL)
			return 0;
		*rest = gk_slice_of(path.p + 1, path.len - 1);
		return 1;
	}
	if (n > 0 && pattern[n - 1] == '*') {
		if (!gk_slice_has_prefix(path, gk_slice_of(pattern, n - 1)))
			return 0;
		*rest = gk_slice_of(path.p + n - 1, path.len - (n - 1));
		return 1;
	}
	return gk_slice_eq_str(path, pattern);
}

static const struct gate_route *
route_find(const gk_app *app, const gk_req *req, gk_slice *rest)
{
	size_t i;
	int s3 = gate_s3api_match(app, req);

	for (i = 0; i < GK_ARRAY_LEN(routes); i++) {
		if (!(routes[i].flags & R_S3) != !s3)
			continue;
		if ((routes[i].flags & R_DEMO) && !app->cfg->demo)
			continue;
		if ((routes[i].flags & R_V1_OFF) && app->cfg->v1)
			continue;
		if (method_matches(routes[i].methods, req->method) &&
		    path_matches(routes[i].pattern, req->path, rest))
			return &routes[i];
	}
	return &routes[GK_ARRAY_LEN(routes) - 1];	/* not reached */
}

/* Labels the reply by the route and applies the rate limit. 1 when the
 * request was refused (429 in rep). */
static int
route_enter(gk_app *app, const struct gate_route *rt, const gk_req *req,
    gk_reply *rep)
{
	if (rt->protocol != NULL)
		rep->protocol = rt->protocol;
	if (rt->allow != NULL)
		rep->allow = rt->allow;
	if (rt->flags & R_NO_RATE)
		return 0;
	return gate_rate_limit(app, req, rep);
}

int
gate_route_has_body(const struct gate_route *rt)
{
	return (rt->flags & R_BODY) != 0;
}

const struct gate_route *
gate_route_begin(gk_app *app, const gk_req *req, gate_upload **up,
    gk_reply *rep)
{
	const struct gate_route *rt;
	gk_slice rest;

	*up = NULL;
	rt = route_find(app, req, &rest);
	if (!(rt->flags & R_BODY))
		return rt;
	if (!route_enter(app, rt, req, rep))
		rt->body(app, req, up, rep);
	return rt;
}

int
gate_route_defers(const gk_app *app, const struct gate_route *rt)
{
	return rt != NULL && (rt->flags & R_STORE) && store_remote(app->store);
}

void
gate_route_end(gk_app *app, const struct gate_route *rt, const gk_req *req,
    gate_upload *up, gk_reply *rep)
{
	gk_slice rest;

	if (rt->flags & R_BODY) {
		if (up != NULL)
			gate_upload_end(up, rep);
		else
			gate_reply_finish(app, req, rep);
		return;
	}
	(void)path_matches(rt->pattern, req->path, &rest);
	if (!route_enter(app, rt, req, rep))
		rt->handle(app, req, rest, rep);
	gate_reply_finish(app, req, rep);
}
