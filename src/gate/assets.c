/*
 * assets.c - the browser client, always served (not audited, no state):
 *
 *   /gatekeeper.js          the ES module (web/gatekeeper.js)
 *   /gatekeeper.classic.js  the same text as a classic script: the module
 *                           without its closing export line, wrapped in a
 *                           function that sets window.Gatekeeper and
 *                           window.GatekeeperError
 *   /gatekeeper.d.ts        its TypeScript declarations
 *   /gatekeeper.json        what the client adapts to: {"v2_put": the
 *                           store takes PUT /v2/objects bodies (fs, s3
 *                           proxy mode) or not (s3 redirect mode: the
 *                           browser posts the form to the bucket),
 *                           "max_upload_bytes": N}
 */
#include "gate_int.h"
#include "asset.h"

#include <inttypes.h>
#include <string.h>

#include "config/config.h"
#include "store/store.h"

GATE_ASSET(client_js, "web/gatekeeper.js");
GATE_ASSET(client_dts, "web/gatekeeper.d.ts");

#define JS_TYPE "text/javascript; charset=utf-8"
#define EXPORT_LINE "\nexport { Gatekeeper, GatekeeperError };"

static const char classic_head[] =
    "/* gatekeeper.classic.js: built from /gatekeeper.js */\n"
    "(function () {\n\"use strict\";\n";
static const char classic_tail[] =
    "\nglobalThis.Gatekeeper = Gatekeeper;\n"
    "globalThis.GatekeeperError = GatekeeperError;\n})();\n";

static int
reply(gk_reply *rep, const char *type, const char *a, size_t alen,
    const char *b, size_t blen, const char *c, size_t clen)
{
	rep->status = 200;
	rep->content_type = type;
	rep->audited = 0;
	if (gk_buf_append(&rep->body, a, alen) != 0 ||
	    gk_buf_append(&rep->body, b, blen) != 0 ||
	    gk_buf_append(&rep->body, c, clen) != 0)
		gate_reply_error(rep, 500, "error", "Internal Exception");
	rep->audited = 0;
	return 1;
}

/* The module's text before its export line (all of it if none). */
static size_t
module_body_len(void)
{
	size_t n = (size_t)(gk_asset_client_js_end - gk_asset_client_js);
	size_t m = sizeof(EXPORT_LINE) - 1, i;

	for (i = n >= m ? n - m + 1 : 0; i-- > 0;)
		if (memcmp(gk_asset_client_js + i, EXPORT_LINE, m) == 0)
			return i + 1;
	return n;
}

int
gate_assets_handle(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gk_slice path = req->path;

	if (gk_slice_eq_str(path, "/gatekeeper.json")) {
		rep->status = 200;
		rep->audited = 0;
		if (gk_buf_printf(&rep->body, "{\"v2_put\":%s,"
		    "\"max_upload_bytes\":%" PRIu64 "}",
		    store_presigns(app->store) ? "false" : "true",
		    app->cfg->max_upload_bytes) != 0)
			gate_reply_error(rep, 500, "error",
			    "Internal Exception");
		rep->audited = 0;
		return 1;
	}
	if (gk_slice_eq_str(path, "/gatekeeper.js"))
		return reply(rep, JS_TYPE, gk_asset_client_js,
		    (size_t)(gk_asset_client_js_end - gk_asset_client_js),
		    "", 0, "", 0);
	if (gk_slice_eq_str(path, "/gatekeeper.classic.js"))
		return reply(rep, JS_TYPE, classic_head,
		    sizeof(classic_head) - 1, gk_asset_client_js,
		    module_body_len(), classic_tail, sizeof(classic_tail) - 1);
	if (gk_slice_eq_str(path, "/gatekeeper.d.ts"))
		return reply(rep, "text/plain; charset=utf-8",
		    gk_asset_client_dts,
		    (size_t)(gk_asset_client_dts_end - gk_asset_client_dts),
		    "", 0, "", 0);
	return 0;
}
