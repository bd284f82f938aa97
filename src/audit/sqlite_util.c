/*
 * sqlite_util.c - what the SQLite backend's files share: running a
 * statement, reading an integer, a hash or a checkpoint row, and opening
 * a database read-only.
 */
#include "audit/sqlite_int.h"

#include <string.h>

int
audit_sq_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		audit_set_err(err, errlen, "%s", msg != NULL ? msg :
		    sqlite3_errstr(rc));
		sqlite3_free(msg);
		return GK_ERR_UNAVAILABLE;
	}
	return 0;
}

/* Runs a statement that returns one integer (PRAGMA user_version). */
int
audit_sq_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int r = GK_ERR_UNAVAILABLE;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*out = sqlite3_column_int64(st, 0);
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

int
audit_sq_blob_hash(sqlite3_stmt *st, int i, uint8_t out[AUDIT_HASH_LEN])
{
	const void *p = sqlite3_column_blob(st, i);

	if (p == NULL || sqlite3_column_bytes(st, i) != AUDIT_HASH_LEN)
		return GK_ERR_INTEGRITY;
	memcpy(out, p, AUDIT_HASH_LEN);
	return 0;
}

/*
 * Reads a checkpoint row (instance_id, seq, hash, time_us[, sig]) into
 * cp. strict: a malformed hash is GK_ERR_INTEGRITY; else it is left zero
 * (verify reports it). An empty or over-long instance is an error.
 */
int
audit_sq_cp_row(sqlite3_stmt *st, audit_checkpoint *cp, int with_sig,
    int strict)
{
	const unsigned char *inst = sqlite3_column_text(st, 0);
	const void *sig;
	size_t n = (size_t)sqlite3_column_bytes(st, 0);

	memset(cp, 0, sizeof(*cp));
	if (inst == NULL || n == 0 || n > AUDIT_INSTANCE_MAX)
		return GK_ERR_INTEGRITY;
	if (audit_sq_blob_hash(st, 2, cp->hash) != 0 && strict)
		return GK_ERR_INTEGRITY;
	memcpy(cp->instance, inst, n);
	cp->seq = sqlite3_column_int64(st, 1);
	cp->time_us = sqlite3_column_int64(st, 3);
	if (with_sig && (sig = sqlite3_column_blob(st, 4)) != NULL &&
	    sqlite3_column_bytes(st, 4) == AUDIT_SIG_LEN)
		memcpy(cp->sig, sig, AUDIT_SIG_LEN);
	return 0;
}

/* Opens path read-only (never creating it) for search and verify. */
int
audit_sq_open_read(const char *path, sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;

	*out = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		audit_set_err(err, errlen, "cannot open %s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return GK_ERR_IO;
	}
	sqlite3_busy_timeout(db, AUDIT_BUSY_MS);
	*out = db;
	return 0;
}

/* 1 when db has the schema version this build writes. */
int
audit_sq_current(sqlite3 *db)
{
	int64_t v;

	return audit_sq_query_int(db, "PRAGMA user_version", &v) == 0 &&
	    v == AUDIT_SQ_SCHEMA_VERSION;
}
