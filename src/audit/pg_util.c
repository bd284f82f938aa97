/*
 * pg_util.c - what the PostgreSQL backend's files share: connecting,
 * running a command with parameters, and reading columns.
 */
#include "audit/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpq's last message on one line. */
void
audit_pg_err(PGconn *db, char *err, size_t errlen)
{
	const char *m = db != NULL ? PQerrorMessage(db) : "out of memory";
	size_t n = strcspn(m, "\n");

	audit_set_err(err, errlen, "%.*s", (int)n, m);
}

int
audit_pg_exec(PGconn *db, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(db, sql);
	ExecStatusType s = PQresultStatus(res);
	int r = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 :
	    GK_ERR_UNAVAILABLE;

	if (r != 0)
		audit_pg_err(db, err, errlen);
	PQclear(res);
	return r;
}

void
audit_pg_rollback(PGconn *db)
{
	if (PQtransactionStatus(db) != PQTRANS_IDLE)
		PQclear(PQexec(db, "ROLLBACK"));
}

/* One integer from a one-row result; -1 when there is no row. */
int
audit_pg_query_int(PGconn *db, const char *sql, int64_t *out)
{
	PGresult *res = PQexec(db, sql);
	int r = GK_ERR_UNAVAILABLE;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto out;
	*out = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ?
	    strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
	r = 0;
out:
	PQclear(res);
	return r;
}

/* Server notices ("relation exists, skipping") are not for the log. */
static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int
audit_pg_connect(const char *target, PGconn **out, char *err, size_t errlen)
{
	static const char *const keys[] = { "dbname", "connect_timeout",
	    "client_encoding", "application_name", NULL };
	const char *values[] = { target, "5", "UTF8", "gatekeeper", NULL };
	PGconn *db;

	db = PQconnectdbParams(keys, values, 1);
	if (db == NULL || PQstatus(db) != CONNECTION_OK) {
		audit_pg_err(db, err, errlen);
		PQfinish(db);
		*out = NULL;
		return GK_ERR_UNAVAILABLE;
	}
	PQsetNoticeProcessor(db, quiet, NULL);
	*out = db;
	return 0;
}

/* Runs a command with parameters; 0 when it succeeded. */
int
audit_pg_run(PGconn *db, const char *name_or_sql, int prepared, int n,
    const char *const *v, const int *len, const int *fmt, PGresult **keep,
    char *err, size_t errlen)
{
	PGresult *res;
	ExecStatusType s;

	res = prepared ? PQexecPrepared(db, name_or_sql, n, v, len, fmt, 0) :
	    PQexecParams(db, name_or_sql, n, NULL, v, len, fmt, 0);
	s = PQresultStatus(res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res,
		    PG_DIAG_SQLSTATE);
		int dup = state != NULL && strcmp(state, "23505") == 0;

		audit_pg_err(db, err, errlen);
		PQclear(res);
		/* unique_violation: another writer took the (instance, seq) */
		return dup ? GK_ERR_EXISTS : GK_ERR_UNAVAILABLE;
	}
	if (keep != NULL)
		*keep = res;
	else
		PQclear(res);
	return 0;
}

/* A bytea column in text (hex) form into out[n]; GK_ERR_INTEGRITY. */
int
audit_pg_get_bytes(const PGresult *res, int row, int col, uint8_t *out, size_t n)
{
	const char *s;

	if (PQgetisnull(res, row, col))
		return GK_ERR_INTEGRITY;
	s = PQgetvalue(res, row, col);
	if (strncmp(s, "\\x", 2) != 0 ||
	    gk_hex_decode(gk_slice_str(s + 2), out, n) != 0)
		return GK_ERR_INTEGRITY;
	return 0;
}

int64_t
audit_pg_get_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 :
	    strtoll(PQgetvalue(res, row, col), NULL, 10);
}
