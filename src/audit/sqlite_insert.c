/*
 * sqlite_insert.c - the SQLite backend's insert path: records and
 * checkpoints bound to the connection's prepared statements, inside one
 * write transaction (the journaled writer keeps it open across batches).
 */
#include "audit/sqlite_int.h"

#include <string.h>

/* Binds a string, NULL (or an empty fixed-size field) as SQL NULL. */
static int
bind_str(sqlite3_stmt *st, int i, const char *s, int empty_is_null)
{
	if (s == NULL || (empty_is_null && s[0] == '\0'))
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Binds rec to parameters o + 1 .. o + 20 (o: the row's first - 1). */
static int
bind_record(sqlite3_stmt *st, int o, const gk_audit_record *rec)
{
	int64_t bytes = rec->bytes > (uint64_t)INT64_MAX ? INT64_MAX :
	    (int64_t)rec->bytes;

	if (sqlite3_bind_int64(st, o + 1, rec->time_us) != SQLITE_OK ||
	    bind_str(st, o + 2, rec->request_id, 1) != SQLITE_OK ||
	    bind_str(st, o + 3, rec->client_ip, 1) != SQLITE_OK ||
	    sqlite3_bind_blob(st, o + 4, rec->client_addr,
	    (int)sizeof(rec->client_addr), SQLITE_STATIC) != SQLITE_OK ||
	    bind_str(st, o + 5, rec->user_agent, 0) != SQLITE_OK ||
	    bind_str(st, o + 6, rec->origin, 0) != SQLITE_OK ||
	    bind_str(st, o + 7, rec->protocol, 0) != SQLITE_OK ||
	    bind_str(st, o + 8, rec->operation, 0) != SQLITE_OK ||
	    bind_str(st, o + 9, rec->root, 0) != SQLITE_OK ||
	    bind_str(st, o + 10, rec->path, 0) != SQLITE_OK ||
	    sqlite3_bind_int(st, o + 11, rec->status) != SQLITE_OK ||
	    bind_str(st, o + 12, rec->decision, 0) != SQLITE_OK ||
	    bind_str(st, o + 13, rec->message, 0) != SQLITE_OK ||
	    sqlite3_bind_int64(st, o + 14, bytes) != SQLITE_OK ||
	    sqlite3_bind_int64(st, o + 15, rec->duration_us) != SQLITE_OK ||
	    bind_str(st, o + 16, rec->country, 0) != SQLITE_OK ||
	    bind_str(st, o + 17, rec->kid, 0) != SQLITE_OK ||
	    bind_str(st, o + 18, rec->sub, 0) != SQLITE_OK ||
	    bind_str(st, o + 19, rec->jti, 0) != SQLITE_OK ||
	    bind_str(st, o + 20, rec->token_sig, 0) != SQLITE_OK)
		return GK_ERR_INTERNAL;
	return 0;
}

/* ... and its chain link to o + 21 .. o + 24. */
static int
bind_link(sqlite3_stmt *st, int o, const char *instance,
    const audit_link *l)
{
	if (sqlite3_bind_text(st, o + 21, instance, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_int64(st, o + 22, l->seq) != SQLITE_OK ||
	    sqlite3_bind_blob(st, o + 23, l->prev, AUDIT_HASH_LEN,
	    SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, o + 24, l->hash, AUDIT_HASH_LEN,
	    SQLITE_STATIC) != SQLITE_OK)
		return GK_ERR_INTERNAL;
	return 0;
}

/*
 * Inserts n records and cp inside the connection's write transaction,
 * starting one if none is open; on failure the whole transaction is
 * rolled back.
 */
static int
insert_rows(struct sq_conn *c, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	size_t i, j, k;
	int r = GK_ERR_UNAVAILABLE, rc, o;

	audit_set_err(err, errlen, "%s", "");
	if (c == NULL)
		return GK_ERR_UNAVAILABLE;
	if (sqlite3_get_autocommit(c->db) &&
	    audit_sq_exec(c->db, "BEGIN IMMEDIATE", err, errlen) != 0)
		goto out;
	/* AUDIT_SQ_INSERT_ROWS rows per statement while there are as many,
	 * then one at a time */
	for (i = 0; i < n; i += k) {
		st = n - i >= AUDIT_SQ_INSERT_ROWS ? c->ins_rows : c->ins;
		k = st == c->ins ? 1 : AUDIT_SQ_INSERT_ROWS;
		for (j = 0, rc = SQLITE_OK; j < k && rc == SQLITE_OK; j++) {
			o = (int)j * AUDIT_SQ_INSERT_COLS;
			if (bind_record(st, o, recs[i + j]) != 0 ||
			    bind_link(st, o, instance, &links[i + j]) != 0)
				rc = SQLITE_MISUSE;
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			audit_set_err(err, errlen, "%s", sqlite3_errstr(rc));
			/* another writer took the (instance, seq) */
			if ((rc & 0xff) == SQLITE_CONSTRAINT)
				r = GK_ERR_EXISTS;
			goto out;
		}
	}
	if (cp != NULL) {
		st = c->cp_ins;
		rc = sqlite3_bind_text(st, 1, cp->instance, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 2, cp->seq);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_blob(st, 3, cp->hash, AUDIT_HASH_LEN,
			    SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 4, cp->time_us);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_blob(st, 5, cp->sig, AUDIT_SIG_LEN,
			    SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			audit_set_err(err, errlen, "%s", sqlite3_errstr(rc));
			goto out;
		}
	}
	r = 0;
out:
	if (r != 0 && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int
audit_sqlite_commit(audit_conn *base, char *err, size_t errlen)
{
	struct sq_conn *c = SQ(base);

	if (sqlite3_get_autocommit(c->db))
		return 0;
	if (audit_sq_exec(c->db, "COMMIT", err, errlen) != 0) {
		if (!sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return GK_ERR_UNAVAILABLE;
	}
	return 0;
}

void
audit_sqlite_rollback(audit_conn *base)
{
	struct sq_conn *c = SQ(base);

	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

int
audit_sqlite_insert_open(audit_conn *base, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen)
{
	return insert_rows(SQ(base), instance, recs, links, n, cp, err,
	    errlen);
}

int
audit_sq_insert(audit_conn *base, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen)
{
	struct sq_conn *c = SQ(base);
	int r;

	if (c == NULL)
		return GK_ERR_UNAVAILABLE;
	if (!sqlite3_get_autocommit(c->db)) {
		audit_set_err(err, errlen, "a transaction is open");
		return GK_ERR_UNAVAILABLE;
	}
	/* GK_ERR_EXISTS: another writer took the (instance, seq) */
	if ((r = insert_rows(c, instance, recs, links, n, cp, err,
	    errlen)) != 0)
		return r == GK_ERR_EXISTS ? r : GK_ERR_UNAVAILABLE;
	return audit_sqlite_commit(base, err, errlen);
}
