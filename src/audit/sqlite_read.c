/*
 * sqlite_read.c - the SQLite backend's reads: where a chain ends, search
 * (own read-only connection) and the verify scan (one read transaction).
 */
#include "audit/sqlite_int.h"

#include <inttypes.h>
#include <string.h>

static const char select_sql[] =
    AUDIT_SELECT_COLS
    " FROM audit WHERE 1";

static const char select_by_addr_sql[] =
    AUDIT_SELECT_COLS
    " FROM audit INDEXED BY audit_addr_time WHERE 1";

int
audit_sq_tail(audit_conn *base, const char *instance, audit_tail *out, char *err,
    size_t errlen)
{
	static const char *const q[3] = {
		AUDIT_TAIL_LAST_SQL, AUDIT_TAIL_ANCHOR_SQL, AUDIT_TAIL_CP_SQL,
	};
	struct sq_conn *c = SQ(base);
	sqlite3_stmt *st = NULL;
	int i, rc, r = GK_ERR_UNAVAILABLE, have = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < 3; i++) {
		if (i == 1 && have)
			continue;
		if (sqlite3_prepare_v2(c->db, q[i], -1, &st, NULL) !=
		    SQLITE_OK || sqlite3_bind_text(st, 1, instance, -1,
		    SQLITE_STATIC) != SQLITE_OK) {
			audit_set_err(err, errlen, "%s", sqlite3_errmsg(c->db));
			goto out;
		}
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			if (i < 2) {
				out->seq = sqlite3_column_int64(st, 0);
				if (audit_sq_blob_hash(st, 1, out->hash) != 0) {
					audit_set_err(err, errlen, "the stored chain "
					    "of %s ends in a bad hash",
					    instance);
					r = GK_ERR_INTEGRITY;
					goto out;
				}
				have = 1;
			} else {
				out->cp_seq = sqlite3_column_int64(st, 0);
				out->cp_time_us = sqlite3_column_int64(st, 1);
			}
		} else if (rc != SQLITE_DONE) {
			audit_set_err(err, errlen, "%s", sqlite3_errmsg(c->db));
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/* ---- search ---------------------------------------------------------- */

static const char *
sq_text(void *ctx, int col, size_t *len)
{
	sqlite3_stmt *st = ctx;
	const char *t;

	*len = 0;
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	t = (const char *)sqlite3_column_text(st, col);
	if (t != NULL)
		*len = (size_t)sqlite3_column_bytes(st, col);
	return t;
}

static int64_t
sq_num(void *ctx, int col)
{
	return sqlite3_column_int64(ctx, col);
}

static int
sq_bytes(void *ctx, int col, uint8_t *out, size_t n)
{
	const void *blob = sqlite3_column_blob(ctx, col);

	if (blob == NULL || (size_t)sqlite3_column_bytes(ctx, col) != n)
		return GK_ERR_INVALID;
	memcpy(out, blob, n);
	return 0;
}

static void
read_row(sqlite3_stmt *st, gk_audit_row *row)
{
	audit_cols c = { sq_text, sq_num, sq_bytes, st };

	audit_row_read(&c, row);
}

int
audit_sq_search(const char *db_path, const gk_audit_query *q,
    gk_audit_row_fn fn, void *arg, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	audit_query b;
	gk_audit_row row;
	const audit_qval *v;
	int i, rc, r = GK_ERR_INTERNAL;

	audit_set_err(err, errlen, "%s", "");
	memset(&b, 0, sizeof(b));
	if (db_path == NULL || q == NULL || fn == NULL) {
		audit_set_err(err, errlen, "missing argument");
		return GK_ERR_INVALID;
	}
	if ((r = audit_query_build(q, select_sql, select_by_addr_sql, 0, &b,
	    err, errlen)) != 0)
		goto out;
	r = GK_ERR_IO;
	if (audit_sq_open_read(db_path, &db, err, errlen) != 0)
		goto out;
	if (sqlite3_prepare_v2(db, (const char *)b.sql.data, -1, &st, NULL) !=
	    SQLITE_OK) {
		audit_set_err(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
		goto out;
	}
	rc = SQLITE_OK;
	for (i = 0; i < b.n && rc == SQLITE_OK; i++) {
		v = &b.v[i];
		if (v->type == AUDIT_Q_INT)
			rc = sqlite3_bind_int64(st, i + 1, v->i);
		else if (v->type == AUDIT_Q_BLOB)
			rc = sqlite3_bind_blob(st, i + 1, v->s, (int)v->len,
			    SQLITE_STATIC);
		else
			rc = sqlite3_bind_text(st, i + 1, v->s, (int)v->len,
			    SQLITE_STATIC);
	}
	if (rc != SQLITE_OK) {
		audit_set_err(err, errlen, "%s: %s", db_path, sqlite3_errstr(rc));
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int fr;

		read_row(st, &row);
		if ((fr = fn(arg, &row)) != 0) {
			r = fr;
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		audit_set_err(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	audit_query_release(&b);
	return r;
}

/* ---- verify scan ----------------------------------------------------- */

int
audit_sq_scan(const char *db_path, const audit_scan_cb *cb, void *arg, char *err,
    size_t errlen)
{
	static const char *const q[3] = {
		"SELECT instance_id, seq, hash, time_us FROM audit_anchor"
		" ORDER BY instance_id",
		"SELECT instance_id, seq, hash, time_us, sig"
		" FROM audit_checkpoint ORDER BY instance_id, seq",
		NULL,
	};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	gk_buf sql;
	audit_checkpoint cp;
	gk_audit_row row;
	int i, rc, fr, r = GK_ERR_IO;

	gk_buf_init(&sql, 4096);
	if (audit_sq_open_read(db_path, &db, err, errlen) != 0)
		goto out;
	if (!audit_sq_current(db)) {
		int64_t v;

		/* a file SQLite cannot read says so ("file is not a
		 * database", "database disk image is malformed") */
		if (audit_sq_query_int(db, "PRAGMA user_version", &v) != 0)
			audit_set_err(err, errlen, "%s: %s", db_path,
			    sqlite3_errmsg(db));
		else
			audit_set_err(err, errlen, "%s: not an audit database "
			    "of schema version %" PRId64, db_path,
			    (int64_t)AUDIT_SQ_SCHEMA_VERSION);
		goto out;
	}
	/* one read transaction: a consistent snapshot while a writer runs */
	if (audit_sq_exec(db, "BEGIN", err, errlen) != 0)
		goto out;
	if (gk_buf_append_str(&sql, select_sql) != 0 ||
	    gk_buf_append_str(&sql,
	    " ORDER BY instance_id, seq, id") != 0)
		goto out;
	for (i = 0; i < 3; i++) {
		if (sqlite3_prepare_v2(db, i < 2 ? q[i] :
		    (const char *)sql.data, -1, &st, NULL) != SQLITE_OK) {
			audit_set_err(err, errlen, "%s: %s", db_path,
			    sqlite3_errmsg(db));
			goto out;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (i == 2) {
				read_row(st, &row);
				fr = cb->record(arg, &row);
			} else {
				if (audit_sq_cp_row(st, &cp, i == 1, 0) != 0)
					continue;
				fr = i == 0 ? cb->anchor(arg, &cp) :
				    cb->checkpoint(arg, &cp);
			}
			if (fr != 0) {
				r = fr;
				goto out;
			}
		}
		if (rc != SQLITE_DONE) {
			audit_set_err(err, errlen, "%s: %s", db_path,
			    sqlite3_errmsg(db));
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	gk_buf_release(&sql);
	return r;
}
