/*
 * admin_search.c - the audit search that GET /admin/audit and the
 * console's table and tail share. The filters are those of 'gatekeeper
 * audit search', as query parameters: from, to, ip, op, status, decision,
 * path_prefix, country, kid, sub, request_id, limit (1-1000, default 100)
 * and cursor. Answers {"records":[...],"next_cursor":"T.ID"|null,
 * "error":false}, newest first; pass next_cursor back as cursor for the
 * next page. Unknown or malformed parameters are refused (400), so a typo
 * never widens a search.
 */
#include "gate_int.h"

#include <inttypes.h>
#include <stdio.h>
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
	if ((v = gate_params_str(ps, "to")) != NULL) {
		if (gk_time_parse(v, &q.to_us) != 0)
			return bad_param(rep, "to");
		if (q.to_us == 0)	/* 0 is "no bound": the epoch is not */
			q.to_us = -1;
	}
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
