/*
 * reply.c - the reply a handler fills: errors, the store's failures as the
 * browser should see them, the audit record built from request and reply,
 * and the touches every reply gets (CORS origin, decision, counters).
 */
#include "gate_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

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
	if (rep->settled != NULL)
		rep->settled(rep->settled_arg, 0);
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

void
gate_reply_message(gk_reply *rep, const char *msg)
{
	char *m = strdup(msg);

	if (m != NULL) {	/* out of memory: the old message stays */
		free(rep->message);
		rep->message = m;
	}
}

void
gate_reply_message_append(gk_reply *rep, const char *note)
{
	size_t n = rep->message != NULL ? strlen(rep->message) : 0;
	size_t k = strlen(note);
	char *m;

	if ((m = malloc(n + k + 1)) == NULL)
		return;	/* out of memory: the message stays as it was */
	if (n > 0)
		memcpy(m, rep->message, n);
	memcpy(m + n, note, k + 1);
	free(rep->message);
	rep->message = m;
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
	gate_reply_message(rep, msg);
}

void
gate_reply_allow(gk_reply *rep, const char *msg)
{
	rep->grant = 1;
	rep->decision = "allow";
	gate_reply_message(rep, msg);
}

void
gate_deny(gk_reply *rep, int status, const char *msg)
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
		gate_deny(rep, 404, "Not Found");
		return;
	}
	if (r == GK_ERR_INVALID) {
		/* a key the bucket cannot take as is (S3 rewrites
		 * "${filename}" in POST uploads) */
		gate_deny(rep, 400, "Bad Request: invalid 'path' param");
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
	size_t i, n = s.len < max ? s.len : max;
	char *t;

	if ((t = malloc(n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(t, s.p, n);
	t[n] = '\0';
	for (i = 0; i < n; i++) {
		if (t[i] == '\0')
			t[i] = '?';
	}
	return t;
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

/* After a reply is decided: a denial costs a token of the denied bucket; a
 * forwarded header ignored from an untrusted peer is noted in the audit
 * message. */
static void
policy_finish(gk_app *app, const gk_req *req, gk_reply *rep)
{
	static const char note[] =
	    " [forwarded header from an untrusted peer ignored]";

	if (rep->audited && rep->decision != NULL &&
	    strcmp(rep->decision, "deny") == 0 && rep->status != 429)
		policy_rate_denied(app->rate, req->policy, &req->client,
		    gk_mono_us());
	if (req->fwd == GK_FWD_IGNORED && rep->audited)
		gate_reply_message_append(rep, note);
	if (req->fwd == GK_FWD_BAD)
		gk_debug("request %s: malformed forwarded header from trusted "
		    "proxy %s: client is unknown", req->request_id,
		    req->client_ip);
}

void
gate_reply_finish(gk_app *app, const gk_req *req, gk_reply *rep)
{
	if (rep->decision == NULL)
		rep->decision = rep->grant ? "allow" : "deny";
	set_acao(app, req, rep);
	policy_finish(app, req, rep);
	count(app, rep);
}
