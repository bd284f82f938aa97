/*
 * admin.c - GET /admin/audit: the audit search for programs.
 *
 * Open to the admin CIDRs only (403 elsewhere) and to the admin token
 * (Authorization: Bearer <token>, compared in constant time; 401). The
 * filters are those of 'gatekeeper audit search', as query parameters:
 * from, to, ip, op, status, decision, path_prefix, country, kid, sub,
 * request_id, limit (1-1000, default 100) and cursor. Answers
 * {"records":[...],"next_cursor":"T.ID"|null,"error":false}, newest
 * first; pass next_cursor back as cursor for the next page. Unknown or
 * malformed parameters are refused (400), so a typo never widens a
 * search. Each call is itself audited (protocol "admin").
 */
#include "gate_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


#define PAGE_MAX 1000u
#define PAGE_DEFAULT 100u
/* the body stops short of the reply cap; the cursor resumes there */
#define BODY_SOFT_CAP (GK_CAP_JSON_REPLY - 64 * 1024)
#define PAGE_FULL 1

struct page {
	gk_buf *body;
	unsigned n;
	int64_t last_time, last_id;
	int full;
};

static int
on_row(void *arg, const gk_audit_row *row)
{
	struct page *pg = arg;
	size_t mark = pg->body->len;

	if ((pg->n > 0 && gk_buf_append(pg->body, ",", 1) != 0) ||
	    audit_row_json(pg->body, row) != 0 ||
	    pg->body->len > BODY_SOFT_CAP) {
		pg->body->len = mark;
		if (pg->body->data != NULL)
			pg->body->data[mark] = '\0';
		pg->full = 1;
		return PAGE_FULL;
	}
	pg->n++;
	pg->last_time = row->rec.time_us;
	pg->last_id = row->id;
	return 0;
}

static const char *const names[] = { "from", "to", "ip", "op", "status",
    "decision", "path_prefix", "country", "kid", "sub", "request_id",
    "limit", "cursor" };

static int
known(gk_slice name)
{
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(names); i++)
		if (gk_slice_eq_str(name, names[i]))
			return 1;
	return 0;
}

static void
bad_param(gk_reply *rep, const char *name)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Bad Request: invalid '%s' param", name);
	gate_reply_error(rep, 400, "deny", msg);
}

/* Parses "T.ID" (both decimal, ID > 0). */
static int
parse_cursor(const char *s, int64_t *t, int64_t *id)
{
	const char *dot = strchr(s, '.');
	uint64_t a, b;

	if (dot == NULL ||
	    gk_parse_u64(gk_slice_of(s, (size_t)(dot - s)), INT64_MAX, &a) !=
	    0 || gk_parse_u64(gk_slice_str(dot + 1), INT64_MAX, &b) != 0 ||
	    b == 0)
		return GK_ERR_INVALID;
	*t = (int64_t)a;
	*id = (int64_t)b;
	return 0;
}

void
gate_admin_search(gk_app *app, const gate_params *ps, gk_reply *rep)
{
	gk_audit_query q;
	struct page pg;
	const char *v;
	char err[256];
	uint64_t n;
	size_t i;
	int r;

	memset(&q, 0, sizeof(q));
	for (i = 0; i < ps->n; i++) {
		if (!known(ps->p[i].name)) {
			gate_reply_error(rep, 400, "deny",
			    "Bad Request: unknown param");
			return;
		}
	}
	if ((v = gate_params_str(ps, "from")) != NULL &&
	    gk_time_parse(v, &q.from_us) != 0)
		return bad_param(rep, "from");
	if ((v = gate_params_str(ps, "to")) != NULL &&
	    gk_time_parse(v, &q.to_us) != 0)
		return bad_param(rep, "to");
	q.ip = gate_params_str(ps, "ip"); /* audit_search refuses a bad one */
	q.operation = gate_params_str(ps, "op");
	if ((v = gate_params_str(ps, "status")) != NULL) {
		if (gk_parse_u64(gk_slice_str(v), 599, &n) != 0 || n < 100)
			return bad_param(rep, "status");
		q.status = (int)n;
	}
	if ((v = gate_params_str(ps, "decision")) != NULL) {
		if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0 &&
		    strcmp(v, "error") != 0)
			return bad_param(rep, "decision");
		q.decision = v;
	}
	q.path_prefix = gate_params_str(ps, "path_prefix");
	q.country = gate_params_str(ps, "country");
	q.kid = gate_params_str(ps, "kid");
	q.sub = gate_params_str(ps, "sub");
	q.request_id = gate_params_str(ps, "request_id");
	q.limit = PAGE_DEFAULT;
	if ((v = gate_params_str(ps, "limit")) != NULL) {
		if (gk_parse_u64(gk_slice_str(v), PAGE_MAX, &n) != 0 || n == 0)
			return bad_param(rep, "limit");
		q.limit = (unsigned)n;
	}
	if ((v = gate_params_str(ps, "cursor")) != NULL &&
	    parse_cursor(v, &q.before_time_us, &q.before_id) != 0)
		return bad_param(rep, "cursor");

	memset(&pg, 0, sizeof(pg));
	pg.body = &rep->body;
	gk_buf_reset(&rep->body);
	if (gk_buf_append_str(&rep->body, "{\"records\":[") != 0)
		goto fail;
	r = audit_search(app->cfg->audit_target, &q, on_row, &pg, err,
	    sizeof(err));
	if (r == GK_ERR_INVALID) {
		bad_param(rep, "ip");
		return;
	}
	if (r != 0 && r != PAGE_FULL) {
		gk_error("admin audit search failed: %s", err);
		gate_reply_error(rep, 503, "error",
		    "Service Unavailable: audit log unavailable");
		return;
	}
	if (gk_buf_append_str(&rep->body, "],\"next_cursor\":") != 0)
		goto fail;
	if ((pg.full || pg.n == q.limit) && pg.n > 0)
		r = gk_buf_printf(&rep->body, "\"%" PRId64 ".%" PRId64 "\"",
		    pg.last_time, pg.last_id);
	else
		r = gk_buf_append_str(&rep->body, "null");
	if (r != 0 || gk_buf_append_str(&rep->body, ",\"error\":false}") != 0)
		goto fail;
	rep->status = 200;
	rep->decision = "allow";
	return;
fail:
	gate_reply_error(rep, 500, "error", "Internal Exception");
}

static void
audit_labels(gk_reply *rep)
{
	rep->protocol = "admin";
	free(rep->operation);
	rep->operation = strdup("GET_Audit");
	free(rep->path);
	rep->path = strdup("/admin/audit");
}

void
gate_admin_audit_405(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	audit_labels(rep);
	gate_reply_error(rep, 405, "deny", "Method Not Allowed");
}

void
gate_admin_audit(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	gate_params ps;
	gk_slice dup;
	int r;

	audit_labels(rep);
	if (!gate_admin_allowed(app, req, rep))
		return;
	memset(&ps, 0, sizeof(ps));
	r = gate_params_parse(req->query, &ps, &dup);
	if (r != 0)
		gate_reply_error(rep, 400, "deny", r == GK_ERR_EXISTS ?
		    "Bad Request: repeated param" :
		    "Bad Request: malformed query string");
	else
		gate_admin_search(app, &ps, rep);
	gate_params_release(&ps);
}

/* ---- the admin gate, reload ------------------------------------------ */

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

void
gate_admin_reload(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	char msg[2048];
	gk_buf *b = &rep->body;

	rep->protocol = "admin";
	rep->operation = strdup("reload");
	if (!gate_admin_allowed(app, req, rep))
		return;
	if (gate_app_reload(app, NULL, msg, sizeof(msg)) != 0) {
		gate_reply_error(rep, 422, "error", msg);
		return;
	}
	gk_buf_reset(b);
	if (gk_buf_append_str(b, "{\"msg\":") != 0 ||
	    gk_json_str(b, gk_slice_str(msg)) != 0 ||
	    gk_buf_append_str(b, ",\"error\":false}") != 0) {
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return;
	}
	rep->status = 200;
	gate_reply_allow(rep, msg);	/* answered once the record is durable */
}

void
gate_admin_reload_405(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	rep->protocol = "admin";
	rep->operation = strdup("reload");
	gate_reply_error(rep, 405, "deny", "Method Not Allowed");
}

/* ---- health and metrics ------------------------------------------------ */

/* /healthz and /metrics: the admin addresses only; not audited either way. */
static int
probe_allowed(const gk_req *req, gk_reply *rep)
{
	rep->audited = 0;
	if (policy_check_admin(req->policy, &req->client) == 0)
		return 1;
	gate_reply_error(rep, 403, "deny", "Forbidden");
	rep->audited = 0;
	return 0;
}

void
gate_admin_health(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	int r;

	if (!probe_allowed(req, rep))
		return;
	r = gk_buf_append_str(&rep->body, "{\"ok\":true,\"id\":");
	if (r == 0)
		r = gk_json_str(&rep->body, gk_slice_str(app->cfg->id));
	if (r == 0)
		r = gk_buf_printf(&rep->body, ",\"uptime_s\":%lld}",
		    (long long)((gk_now_us() - app->started_us) / 1000000));
	rep->status = r == 0 ? 200 : 500;
}

void
gate_admin_metrics(gk_app *app, const gk_req *req, gk_slice rest,
    gk_reply *rep)
{
	const gk_stats *s = &app->stats;
	gk_audit_counters ac;
	int r;

	if (!probe_allowed(req, rep))
		return;
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
