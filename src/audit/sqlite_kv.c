/*
 * sqlite_kv.c - the tables beside the log in the SQLite backend: the v2
 * replay cache (used token ids) and the S3 endpoint's grants.
 */
#include "audit/sqlite_int.h"

#include <string.h>

/* ---- the v2 replay cache ---------------------------------------------- */

/*
 * Inside the open transaction: deletes a few expired ids (exp_us <=
 * now_us), then records jti until exp_us. 0 when new, GK_ERR_EXISTS when
 * recorded and not expired, GK_ERR_UNAVAILABLE (err says why) when a
 * statement failed.
 */
static int
jti_stmts(sqlite3 *db, const char *jti, int64_t exp_us, int64_t now_us,
    char *err, size_t errlen)
{
	static const char prune_jti[] = "DELETE FROM jti WHERE jti IN "
	    "(SELECT jti FROM jti WHERE exp_us <= ?1 ORDER BY exp_us LIMIT 64)";
	static const char insert_jti[] = "INSERT INTO jti(jti, exp_us) "
	    "VALUES (?1, ?2) ON CONFLICT(jti) DO NOTHING";
	sqlite3_stmt *st = NULL;
	int r = GK_ERR_UNAVAILABLE, rc;

	/* expired ids first, a few at a time, so an expired id is free */
	if ((rc = sqlite3_prepare_v2(db, prune_jti, -1, &st, NULL)) !=
	    SQLITE_OK || (rc = sqlite3_bind_int64(st, 1, now_us)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = sqlite3_prepare_v2(db, "DELETE FROM jti WHERE jti = ?1 "
	    "AND exp_us <= ?2", -1, &st, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 1, jti, -1, SQLITE_STATIC)) !=
	    SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, now_us)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = sqlite3_prepare_v2(db, insert_jti, -1, &st, NULL)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 1, jti, -1, SQLITE_STATIC)) !=
	    SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, exp_us)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE)
		goto out;
	/* 0 changes: used before and not expired */
	r = sqlite3_changes(db) == 0 ? GK_ERR_EXISTS : 0;
out:
	if (r == GK_ERR_UNAVAILABLE)
		audit_set_err(err, errlen, "%s", sqlite3_errstr(rc));
	sqlite3_finalize(st);
	return r;
}

/* The same in ONE transaction of its own (a replay keeps the pruning). */
static int
sq_jti_run(sqlite3 *db, const char *jti, int64_t exp_us, int64_t now_us,
    char *err, size_t errlen)
{
	int r;

	audit_set_err(err, errlen, "%s", "");
	if (db == NULL)
		return GK_ERR_UNAVAILABLE;
	if (audit_sq_exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
		return GK_ERR_UNAVAILABLE;
	r = jti_stmts(db, jti, exp_us, now_us, err, errlen);
	if (r != GK_ERR_UNAVAILABLE &&
	    audit_sq_exec(db, "COMMIT", err, errlen) != 0)
		r = GK_ERR_UNAVAILABLE;
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int
audit_sqlite_jti_open(audit_conn *base, const char *jti, int64_t exp_s,
    char *err, size_t errlen)
{
	sqlite3 *db = SQ(base)->db;
	int64_t exp_us;
	int r;

	if (__builtin_mul_overflow(exp_s, (int64_t)1000000, &exp_us))
		exp_us = INT64_MAX;
	if (sqlite3_get_autocommit(db) &&
	    audit_sq_exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
		return GK_ERR_UNAVAILABLE;
	r = jti_stmts(db, jti, exp_us, gk_now_us(), err, errlen);
	if (r == GK_ERR_UNAVAILABLE && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int
audit_sq_jti_use(audit_conn *base, const char *jti, int64_t exp_s)
{
	char err[256];
	int64_t exp_us;
	int r;

	if (__builtin_mul_overflow(exp_s, (int64_t)1000000, &exp_us))
		exp_us = INT64_MAX;
	r = sq_jti_run(SQ(base)->db, jti, exp_us, gk_now_us(), err,
	    sizeof(err));
	if (r == GK_ERR_UNAVAILABLE)
		gk_error("audit: cannot record a token id (%s)", err);
	return r;
}

int
audit_sqlite_jti_restore(audit_conn *base, const char *jti)
{
	static const char sql[] = "INSERT INTO jti(jti, exp_us) VALUES (?1, ?2)"
	    " ON CONFLICT(jti) DO NOTHING";
	sqlite3 *db = SQ(base)->db;
	sqlite3_stmt *st = NULL;
	int r = GK_ERR_UNAVAILABLE;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, jti, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_int64(st, 2, INT64_MAX) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_DONE)
		r = 0;
	sqlite3_finalize(st);
	return r;
}

/* ---- grants ------------------------------------------------------------ */

int
audit_sq_grant_put(audit_conn *base, const char *id, const char *access_key,
    const char *doc, char *err, size_t errlen)
{
	static const char sql[] = "INSERT INTO grants(id, access_key, doc)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET"
	    " access_key = excluded.access_key, doc = excluded.doc";
	sqlite3 *db = SQ(base)->db;
	sqlite3_stmt *st = NULL;
	int rc, r = GK_ERR_UNAVAILABLE;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 2, access_key, -1, SQLITE_STATIC)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 3, doc, -1, SQLITE_STATIC)) !=
	    SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		r = GK_ERR_EXISTS;
		goto out;
	}
	if (rc == SQLITE_DONE)
		r = 0;
out:
	if (r == GK_ERR_UNAVAILABLE)
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}

/* One statement: SQLite's write lock makes the test and the change one
 * step for every process sharing the file. */
int
audit_sq_grant_swap(audit_conn *base, const char *id,
    const char *access_key, const char *old_doc, const char *new_doc,
    char *err, size_t errlen)
{
	static const char sql[] = "UPDATE grants SET doc = ?3,"
	    " access_key = ?4 WHERE id = ?1 AND doc = ?2";
	sqlite3 *db = SQ(base)->db;
	sqlite3_stmt *st = NULL;
	int rc, r = GK_ERR_UNAVAILABLE;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, old_doc, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(st, 3, new_doc, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(st, 4, access_key, -1, SQLITE_STATIC) !=
	    SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		r = GK_ERR_EXISTS;
		goto out;
	}
	if (rc != SQLITE_DONE)
		goto out;
	r = sqlite3_changes(db) == 1 ? 0 : GK_ERR_DENIED;
out:
	if (r == GK_ERR_UNAVAILABLE)
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}

int
audit_sq_grant_get(audit_conn *base, int by_key, const char *v, gk_buf *doc,
    char *err, size_t errlen)
{
	sqlite3 *db = SQ(base)->db;
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	int rc, r = GK_ERR_UNAVAILABLE;

	if ((rc = sqlite3_prepare_v2(db, by_key ?
	    "SELECT doc FROM grants WHERE access_key = ?1" :
	    "SELECT doc FROM grants WHERE id = ?1", -1, &st, NULL)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 1, v, -1, SQLITE_STATIC)) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW || (t = sqlite3_column_text(st, 0)) == NULL)
		goto out;
	gk_buf_reset(doc);
	r = gk_buf_append(doc, t, (size_t)sqlite3_column_bytes(st, 0));
	if (r == 0)
		r = gk_buf_append(doc, "", 1);
	if (r == 0)
		doc->len--;
out:
	if (r == GK_ERR_UNAVAILABLE)
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}

int
audit_sq_grant_list(audit_conn *base, gk_audit_doc_fn fn, void *arg, char *err,
    size_t errlen)
{
	sqlite3 *db = SQ(base)->db;
	sqlite3_stmt *st = NULL;
	int rc, r = GK_ERR_UNAVAILABLE;

	if (sqlite3_prepare_v2(db, "SELECT id, access_key, doc FROM grants"
	    " ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = fn(arg, (const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2))) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : GK_ERR_UNAVAILABLE;
out:
	if (r == GK_ERR_UNAVAILABLE)
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return r;
}
