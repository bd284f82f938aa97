/*
 * pg_insert.c - the PostgreSQL backend's insert path: a batch as
 * multi-row INSERTs of PG_ROWS records, and its checkpoint, in one
 * transaction.
 */
#include "audit/pg_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
fixed_or_null(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

/* Rows per multi-row INSERT (24 parameters each, under libpq's 65535). */
#define PG_ROWS 256
#define PG_COLS 24

/* One row's parameters; num holds its 5 numbers as text. */
static void
row_params(const char *instance, const gk_audit_record *rec,
    const audit_link *l, char num[5][24], const char **v, int *len,
    int *fmt)
{
	int64_t bytes = rec->bytes > (uint64_t)INT64_MAX ? INT64_MAX :
	    (int64_t)rec->bytes;

	snprintf(num[0], 24, "%" PRId64, rec->time_us);
	snprintf(num[1], 24, "%d", rec->status);
	snprintf(num[2], 24, "%" PRId64, bytes);
	snprintf(num[3], 24, "%" PRId64, rec->duration_us);
	snprintf(num[4], 24, "%" PRId64, l->seq);
	memset(len, 0, PG_COLS * sizeof(*len));
	memset(fmt, 0, PG_COLS * sizeof(*fmt));
	v[0] = num[0];
	v[1] = fixed_or_null(rec->request_id);
	v[2] = fixed_or_null(rec->client_ip);
	v[3] = (const char *)rec->client_addr;
	len[3] = (int)sizeof(rec->client_addr);
	fmt[3] = 1;
	v[4] = rec->user_agent;
	v[5] = rec->origin;
	v[6] = rec->protocol;
	v[7] = rec->operation;
	v[8] = rec->root;
	v[9] = rec->path;
	v[10] = num[1];
	v[11] = rec->decision;
	v[12] = rec->message;
	v[13] = num[2];
	v[14] = num[3];
	v[15] = rec->country;
	v[16] = rec->kid;
	v[17] = rec->sub;
	v[18] = rec->jti;
	v[19] = rec->token_sig;
	v[20] = instance;
	v[21] = num[4];
	v[22] = (const char *)l->prev;
	len[22] = AUDIT_HASH_LEN;
	fmt[22] = 1;
	v[23] = (const char *)l->hash;
	len[23] = AUDIT_HASH_LEN;
	fmt[23] = 1;
}

/* The statement for n rows: the audit columns, then n value lists
 * of numbered parameters (constant fragments and numbers only). */
static int
multi_sql(gk_buf *sql, size_t n)
{
	static const char head[] =
	    "INSERT INTO audit(time_us, request_id, client_ip, client_addr,"
	    " user_agent, origin, protocol, operation, root, path, status,"
	    " decision, message, bytes, duration_us, country, kid, sub, jti,"
	    " token_sig, instance_id, seq, prev_hash, hash) VALUES ";
	size_t i, k;

	gk_buf_reset(sql);
	if (gk_buf_append_str(sql, head) != 0)
		return GK_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		for (k = 0; k < PG_COLS; k++)
			if (gk_buf_printf(sql, "%s$%zu", k == 0 ? (i == 0 ?
			    "(" : ",(") : ",", i * PG_COLS + k + 1) != 0)
				return GK_ERR_NOMEM;
		if (gk_buf_append_str(sql, ")") != 0)
			return GK_ERR_NOMEM;
	}
	return 0;
}

/*
 * Inserts n records with as few statements as it can: one multi-row
 * INSERT per PG_ROWS records (one round trip each instead of one per
 * record).
 */
static int
insert_rows(PGconn *db, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    char *err, size_t errlen)
{
	char (*num)[5][24] = NULL;
	const char **v = NULL;
	int *len = NULL, *fmt = NULL, r = GK_ERR_UNAVAILABLE;
	size_t i, at, k;
	gk_buf sql;

	gk_buf_init(&sql, GK_CAP_SMALL * 4);
	if ((num = calloc(PG_ROWS, sizeof(*num))) == NULL ||
	    (v = calloc(PG_ROWS * PG_COLS, sizeof(*v))) == NULL ||
	    (len = calloc(PG_ROWS * PG_COLS, sizeof(*len))) == NULL ||
	    (fmt = calloc(PG_ROWS * PG_COLS, sizeof(*fmt))) == NULL) {
		audit_set_err(err, errlen, "out of memory");
		goto out;
	}
	for (at = 0; at < n; at += k) {
		k = n - at < PG_ROWS ? n - at : PG_ROWS;
		for (i = 0; i < k; i++)
			row_params(instance, recs[at + i], &links[at + i],
			    num[i], v + i * PG_COLS, len + i * PG_COLS,
			    fmt + i * PG_COLS);
		if (multi_sql(&sql, k) != 0) {
			audit_set_err(err, errlen, "out of memory");
			goto out;
		}
		if ((r = audit_pg_run(db, (const char *)sql.data, 0, (int)(k * PG_COLS),
		    v, len, fmt, NULL, err, errlen)) != 0)
			goto out;
	}
	r = 0;
out:
	free(num);
	free(v);
	free(len);
	free(fmt);
	gk_buf_release(&sql);
	return r;
}

int
audit_pg_insert(audit_conn *base, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen)
{
	struct pg_conn *c = PG(base);
	char seq[24], t[24];
	const char *v[5];
	int len[5] = { 0 }, fmt[5] = { 0, 0, 1, 0, 1 };
	int r = GK_ERR_UNAVAILABLE, rr;

	audit_set_err(err, errlen, "%s", "");
	if (c == NULL)
		return GK_ERR_UNAVAILABLE;
	if (audit_pg_exec(c->db, "BEGIN", err, errlen) != 0)
		goto out;
	if (n > 0 && (rr = insert_rows(c->db, instance, recs, links, n, err,
	    errlen)) != 0) {
		/* GK_ERR_EXISTS: another writer took the (instance, seq) */
		if (rr == GK_ERR_EXISTS)
			r = GK_ERR_EXISTS;
		goto out;
	}
	if (cp != NULL) {
		snprintf(seq, sizeof(seq), "%" PRId64, cp->seq);
		snprintf(t, sizeof(t), "%" PRId64, cp->time_us);
		v[0] = cp->instance;
		v[1] = seq;
		v[2] = (const char *)cp->hash;
		len[2] = AUDIT_HASH_LEN;
		v[3] = t;
		v[4] = (const char *)cp->sig;
		len[4] = AUDIT_SIG_LEN;
		if (audit_pg_run(c->db, "cp_ins", 1, 5, v, len, fmt, NULL, err,
		    errlen) != 0)
			goto out;
	}
	if (audit_pg_exec(c->db, "COMMIT", err, errlen) != 0)
		goto out;
	r = 0;
out:
	audit_pg_rollback(c->db);
	return r;
}
