/*
 * acl.c - the gate's side of the customer's policy: the per-request
 * policy reference and client address, the IP and country checks, rate
 * limits (429 with Retry-After), and live reload (SIGHUP and
 * POST /admin/reload).
 */
#include "gate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

void
gate_req_resolve(gk_app *app, gk_req *req, const gk_addr *peer,
    gk_slice xff, int has_xff, gk_slice fwd, int has_fwd)
{
	req->policy = policy_live_get(app->policy_live);
	req->peer = *peer;
	req->fwd = policy_client_addr(req->policy, &req->peer, xff, has_xff,
	    fwd, has_fwd, &req->client);
	policy_addr_str(&req->client, req->client_ip, sizeof(req->client_ip));
	policy_country(req->policy, &req->client, req->country);
}

static void
set_msg(gk_reply *rep, const char *msg)
{
	char *m = strdup(msg);

	if (m != NULL) {
		free(rep->message);
		rep->message = m;
	}
}

/* 1 if the client lies in cip (an address or CIDR), 0 if not, -1 if cip
 * is malformed. */
int
gate_cip_match(const char *cip, const gk_addr *client)
{
	gk_addr net;
	unsigned bits, i, whole, rest;

	if (policy_cidr_parse(gk_slice_str(cip), &net, &bits) != 0 ||
	    bits > 128)
		return -1;
	whole = bits / 8;
	rest = bits % 8;
	for (i = 0; i < whole; i++) {
		if (client->b[i] != net.b[i])
			return 0;
	}
	if (rest != 0 && ((client->b[whole] ^ net.b[whole]) &
	    (uint8_t)(0xff << (8 - rest))) != 0)
		return 0;
	return 1;
}

int
gate_acl_ok(const gk_req *req, int op, int is_upload)
{
	if (policy_check_ip(req->policy, &req->client, is_upload) != 0 ||
	    policy_check_country(req->policy, &req->client, req->country,
	    op) != 0)
		return GK_ERR_DENIED;
	return 0;
}

int
gate_acl_check(const gk_req *req, int op, int is_upload, gk_reply *rep)
{
	char msg[96];

	if (policy_check_ip(req->policy, &req->client, is_upload) != 0) {
		gate_reply_error(rep, 403, "deny", "Forbidden: ACL");
		set_msg(rep, "Forbidden: ACL (IP lists)");
		return GK_ERR_DENIED;
	}
	if (policy_check_country(req->policy, &req->client, req->country,
	    op) != 0) {
		gate_reply_error(rep, 403, "deny", "Forbidden: ACL");
		snprintf(msg, sizeof(msg), "Forbidden: ACL (country %s)",
		    req->country[0] ? req->country : "unknown");
		set_msg(rep, msg);
		return GK_ERR_DENIED;
	}
	return 0;
}

int
gate_rate_limit(gk_app *app, const gk_req *req, gk_reply *rep)
{
	unsigned retry = 0;

	if (policy_rate_check(app->rate, req->policy, &req->client,
	    gk_mono_us(), &retry) == 0)
		return 0;
	if (rep->protocol == NULL)
		rep->protocol = "http";
	gate_reply_error(rep, 429, "deny", "Too Many Requests");
	rep->retry_after = retry;
	gate_count(app, GK_STAT_RATE_LIMITED);
	if (gate_refusals_absorb(app, req)) {
		/* counted into the client's summary record instead */
		rep->audited = 0;
		gate_count(app, GK_STAT_DENIED);
	}
	return 1;
}

void
gate_policy_finish(gk_app *app, const gk_req *req, gk_reply *rep)
{
	char *m;
	size_t n;
	static const char note[] =
	    " [forwarded header from an untrusted peer ignored]";

	if (rep->audited && rep->decision != NULL &&
	    strcmp(rep->decision, "deny") == 0 && rep->status != 429)
		policy_rate_denied(app->rate, req->policy, &req->client,
		    gk_mono_us());
	if (req->fwd == GK_FWD_IGNORED && rep->audited) {
		n = rep->message ? strlen(rep->message) : 0;
		if ((m = malloc(n + sizeof(note))) != NULL) {
			if (n > 0)
				memcpy(m, rep->message, n);
			memcpy(m + n, note, sizeof(note));
			free(rep->message);
			rep->message = m;
		}
	}
	if (req->fwd == GK_FWD_BAD)
		gk_debug("request %s: malformed forwarded header from trusted "
		    "proxy %s: client is unknown", req->request_id,
		    req->client_ip);
}

/* ---- live reload ------------------------------------------------------ */

struct reload_note {
	char by[64];
};

static void
reload_audited(void *arg, int result)
{
	struct reload_note *n = arg;

	if (result != 0)
		gk_error("reload by %s: audit record not written: %s", n->by,
		    gk_err_str(result));
	free(n);
}

/* Audits a reload that did not come through an HTTP request. */
static void
audit_reload(gk_app *app, const char *by, int ok, const char *msg)
{
	struct reload_note *n;
	gk_audit_record rec;
	char text[2048];

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return;
	snprintf(n->by, sizeof(n->by), "%s", by);
	memset(&rec, 0, sizeof(rec));
	rec.time_us = gk_now_us();
	rec.protocol = "admin";
	rec.operation = "reload";
	rec.status = ok ? 200 : 500;
	rec.decision = ok ? "allow" : "error";
	snprintf(text, sizeof(text), "%s: %s", by, msg);
	rec.message = text;
	if (audit_submit(app->audit, &rec, reload_audited, n) != 0) {
		gk_error("reload by %s: audit record not written", by);
		free(n);
	}
}

/* Builds the new policy; msg gets the one-line reason on failure. */
static int
reload_build(gk_app *app, gk_policy **out, char *msg, size_t msglen)
{
	gk_config *cfg = NULL;
	char err[512];
	int r;

	*out = NULL;
	err[0] = '\0';
	if ((r = cfg_load(app->cfg->path, 0, &cfg, err, sizeof(err))) != 0) {
		snprintf(msg, msglen, "%s", err);
		return r;
	}
	if ((r = policy_new(cfg, out, err, sizeof(err))) != 0)
		snprintf(msg, msglen, "%s: %s",
		    cfg->path ? cfg->path : "(defaults)", err);
	else
		gate_console_policy_loaded(app->console, cfg, *out);
	cfg_free(cfg);
	return r;
}

int
gate_app_reload(gk_app *app, const char *by, char *msg, size_t msglen)
{
	char sum[1200], why[700];
	gk_policy *p = NULL;
	uint64_t n;
	int r;

	why[0] = '\0';
	if ((r = reload_build(app, &p, why, sizeof(why))) != 0) {
		snprintf(msg, msglen, "reload failed, the old policy stays in "
		    "force: %s", why);
		gk_error("%s", msg);
		gate_count(app, GK_STAT_RELOAD_FAILURES);
		if (by != NULL)
			audit_reload(app, by, 0, msg);
		return r;
	}
	policy_summary(p, sum, sizeof(sum));
	n = policy_live_swap(app->policy_live, p);
	snprintf(msg, msglen, "policy reloaded (#%llu): %s",
	    (unsigned long long)n, sum);
	gk_info("reload by %s: %s", by ? by : "HTTP", msg);
	gate_count(app, GK_STAT_RELOADS);
	if (by != NULL)
		audit_reload(app, by, 1, msg);
	return 0;
}

/* The Authorization header holds "Bearer <admin token>". */
static int
admin_token_ok(const gk_app *app, const gk_req *req)
{
	const gk_secret *t = &app->cfg->admin_token;
	gk_slice a = req->authorization;

	if (t->p == NULL || t->len == 0 || a.len < 7 ||
	    strncasecmp((const char *)a.p, "Bearer ", 7) != 0)
		return 0;
	a.p += 7;
	a.len -= 7;
	while (a.len > 0 && a.p[0] == ' ') {
		a.p++;
		a.len--;
	}
	return a.len == t->len && gk_ct_eq(a.p, t->p, t->len);
}

int
gate_admin_allowed(gk_app *app, const gk_req *req, gk_reply *rep)
{
	if (policy_check_admin(req->policy, &req->client) != 0) {
		gate_reply_error(rep, 403, "deny", "Forbidden");
		return 0;
	}
	if (!admin_token_ok(app, req) &&
	    !gate_console_session_ok(app->console, req)) {
		gate_reply_error(rep, 401, "deny",
		    "Unauthorized: admin token required");
		return 0;
	}
	return 1;
}

int
gate_admin_reload(gk_app *app, const gk_req *req, gk_reply *rep)
{
	char msg[2048];
	gk_buf *b = &rep->body;

	if (!gk_slice_eq_str(req->path, "/admin/reload"))
		return 0;
	rep->protocol = "admin";
	rep->operation = strdup("reload");
	if (strcmp(req->method, "POST") != 0) {
		gate_reply_error(rep, 405, "deny", "Method Not Allowed");
		rep->allow = "POST";
		return 1;
	}
	if (!gate_admin_allowed(app, req, rep))
		return 1;
	if (gate_app_reload(app, NULL, msg, sizeof(msg)) != 0) {
		gate_reply_error(rep, 422, "error", msg);
		return 1;
	}
	gk_buf_reset(b);
	if (gk_buf_append_str(b, "{\"msg\":") != 0 ||
	    gk_json_str(b, gk_slice_str(msg)) != 0 ||
	    gk_buf_append_str(b, ",\"error\":false}") != 0) {
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return 1;
	}
	rep->status = 200;
	rep->grant = 1;	/* answered only once the record is durable */
	rep->decision = "allow";
	set_msg(rep, msg);
	return 1;
}
