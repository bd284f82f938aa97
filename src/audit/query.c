/*
 * query.c - one search as SQL for either backend: the conditions of a
 * gk_audit_query in a fixed order, every value a placeholder ("?" for
 * SQLite, "$N" for PostgreSQL) with its typed value listed for binding,
 * the keyset cursor, the order and the limit. Only constant fragments go
 * into the text.
 */
#include "audit/audit_int.h"

#include <stdlib.h>
#include <string.h>

/* The smallest string above every string starting with prefix, and its
 * length; NULL (and *n 0) when there is none (all 0xff bytes). */
static char *
prefix_upper(const char *prefix, size_t *n)
{
	size_t len = strlen(prefix);
	char *u;

	while (len > 0 && (uint8_t)prefix[len - 1] == 0xff)
		len--;
	*n = len;
	if (len == 0 || (u = strndup(prefix, len)) == NULL)
		return NULL;
	u[len - 1] = (char)((uint8_t)u[len - 1] + 1);
	return u;
}

/* Appends before, a placeholder for the next value, and after. */
static int
param(audit_query *b, const char *before, const char *after)
{
	if (b->n >= AUDIT_QUERY_MAX)
		return GK_ERR_TOO_LARGE;
	b->n++;
	if (b->dollar)
		return gk_buf_printf(&b->sql, "%s$%d%s", before, b->n, after);
	return gk_buf_printf(&b->sql, "%s?%s", before, after);
}

static int
int_param(audit_query *b, const char *before, int64_t v, const char *after)
{
	b->v[b->n].type = AUDIT_Q_INT;
	b->v[b->n].i = v;
	return param(b, before, after);
}

static int
text_param(audit_query *b, const char *before, const char *s, size_t len,
    const char *after)
{
	b->v[b->n].type = AUDIT_Q_TEXT;
	b->v[b->n].s = s;
	b->v[b->n].len = len;
	return param(b, before, after);
}

static int
blob_param(audit_query *b, const char *before, const uint8_t *p,
    const char *after)
{
	b->v[b->n].type = AUDIT_Q_BLOB;
	b->v[b->n].s = (const char *)p;
	b->v[b->n].len = 16;
	return param(b, before, after);
}

#define TEXT(b, before, s) text_param(b, before, s, strlen(s), "")

int
audit_query_build(const gk_audit_query *q, const char *select,
    const char *select_by_addr, int dollar, audit_query *b, char *err,
    size_t errlen)
{
	int have_ip, e = 0;

	memset(b, 0, sizeof(*b));
	b->dollar = dollar;
	gk_buf_init(&b->sql, GK_CAP_SMALL);
	have_ip = q->ip != NULL && q->ip[0] != '\0';
	if (have_ip && audit_ip_range(q->ip, b->lo, b->hi) != 0) {
		audit_set_err(err, errlen, "bad --ip value");
		return GK_ERR_INVALID;
	}
	if (q->status < 0) {
		audit_set_err(err, errlen, "bad --status value");
		return GK_ERR_INVALID;
	}
	/*
	 * With an address the (client_addr, time_us) index is the one to
	 * use: a planner would rather walk the time index to save the sort,
	 * which on a big log reads every record in the time range.
	 */
	e |= gk_buf_append_str(&b->sql, have_ip ? select_by_addr : select);
	if (q->from_us != 0)
		e |= int_param(b, " AND time_us >= ", q->from_us, "");
	if (q->to_us != 0)
		e |= int_param(b, " AND time_us < ", q->to_us, "");
	if (have_ip) {
		e |= blob_param(b, " AND client_addr BETWEEN ", b->lo, "");
		e |= blob_param(b, " AND ", b->hi, "");
	}
	if (q->operation != NULL)
		e |= TEXT(b, " AND operation = ", q->operation);
	if (q->status != 0)
		e |= int_param(b, " AND status = ", q->status, "");
	if (q->decision != NULL)
		e |= TEXT(b, " AND decision = ", q->decision);
	if (q->path_prefix != NULL && q->path_prefix[0] != '\0') {
		e |= TEXT(b, " AND path >= ", q->path_prefix);
		b->upper = prefix_upper(q->path_prefix, &b->upper_len);
		if (b->upper == NULL && b->upper_len != 0)
			return GK_ERR_NOMEM;
		if (b->upper != NULL)
			e |= text_param(b, " AND path < ", b->upper,
			    b->upper_len, "");
	}
	if (q->country != NULL)
		e |= TEXT(b, " AND country = ", q->country);
	if (q->kid != NULL)
		e |= TEXT(b, " AND kid = ", q->kid);
	if (q->sub != NULL)
		e |= TEXT(b, " AND sub = ", q->sub);
	if (q->request_id != NULL)
		e |= TEXT(b, " AND request_id = ", q->request_id);
	if (q->instance_id != NULL) {
		/* one chain in seq order (audit out) */
		e |= TEXT(b, " AND instance_id = ", q->instance_id);
		e |= int_param(b, " AND seq > ", q->after_seq, "");
	} else if (q->before_id != 0 && dollar) {
		/* rows strictly older than (before_time_us, before_id); a row
		 * comparison is what PostgreSQL's planner takes to the index */
		e |= int_param(b, " AND (time_us, id) < (", q->before_time_us,
		    "");
		e |= int_param(b, ", ", q->before_id, ")");
	} else if (q->before_id != 0) {
		e |= int_param(b, " AND (time_us < ", q->before_time_us, "");
		e |= int_param(b, " OR (time_us = ", q->before_time_us, "");
		e |= int_param(b, " AND id < ", q->before_id, "))");
	}
	e |= int_param(b, q->instance_id != NULL ? " ORDER BY seq LIMIT " :
	    q->oldest_first ? " ORDER BY time_us, id LIMIT " :
	    " ORDER BY time_us DESC, id DESC LIMIT ",
	    q->limit != 0 ? (int64_t)q->limit : 100, "");
	return e != 0 ? GK_ERR_NOMEM : 0;
}

void
audit_query_release(audit_query *b)
{
	free(b->upper);
	gk_buf_release(&b->sql);
	memset(b, 0, sizeof(*b));
}
