/*
 * sqlite_prune.c - the SQLite backend's retention: where to prune to,
 * and one span of a chain deleted with its anchor moved, per transaction.
 */
#include "audit/sqlite_int.h"

#include <string.h>

int
audit_sq_prune_target(audit_conn *base, int64_t before_us, audit_checkpoint *out,
    int *found, char *err, size_t errlen)
{
	static const char sql[] = AUDIT_PRUNE_TARGET_SQL;
	struct sq_conn *c = SQ(base);
	sqlite3_stmt *st = NULL;
	int rc, r = GK_ERR_UNAVAILABLE;

	*found = 0;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, before_us) != SQLITE_OK) {
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(c->db));
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (audit_sq_cp_row(st, out, 0, 1) != 0) {
			audit_set_err(err, errlen, "a stored checkpoint is "
			    "malformed");
			goto out;
		}
		*found = 1;
	} else if (rc != SQLITE_DONE) {
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(c->db));
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

int
audit_sq_prune_span(audit_conn *base, const char *instance, int64_t upto,
    uint64_t *deleted, int *more, char *err, size_t errlen)
{
	static const char find_sql[] = AUDIT_PRUNE_FIND_SQL;
	static const char del_sql[] = AUDIT_PRUNE_DELETE_SQL;
	static const char anchor_sql[] = AUDIT_ANCHOR_SET_SQL;
	struct sq_conn *c = SQ(base);
	sqlite3_stmt *st = NULL;
	audit_checkpoint cp;
	int r = GK_ERR_UNAVAILABLE, in_tx = 0, rc;

	*deleted = 0;
	*more = 0;
	audit_set_err(err, errlen, "%s", "");
	if (audit_sq_exec(c->db, "BEGIN IMMEDIATE", err, errlen) != 0)
		goto out;
	in_tx = 1;
	if (sqlite3_prepare_v2(c->db, find_sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, instance, -1, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_bind_int64(st, 2, upto) != SQLITE_OK)
		goto sqlerr;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = 0;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto sqlerr;
	if (audit_sq_cp_row(st, &cp, 0, 1) != 0) {
		audit_set_err(err, errlen, "a stored checkpoint is malformed");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(c->db, del_sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, cp.instance, -1, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_bind_int64(st, 2, cp.seq) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	*deleted = (uint64_t)sqlite3_changes64(c->db);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(c->db, anchor_sql, -1, &st, NULL) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(st, 1, cp.instance, -1, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_bind_int64(st, 2, cp.seq) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, cp.hash, AUDIT_HASH_LEN, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_bind_int64(st, 4, cp.time_us) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		goto sqlerr;
	sqlite3_finalize(st);
	st = NULL;
	if (audit_sq_exec(c->db, "COMMIT", err, errlen) != 0)
		goto out;
	in_tx = 0;
	*more = 1;
	r = 0;
	goto out;
sqlerr:
	audit_set_err(err, errlen, "%s", sqlite3_errmsg(c->db));
	*deleted = 0;
out:
	sqlite3_finalize(st);
	if (in_tx && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}
