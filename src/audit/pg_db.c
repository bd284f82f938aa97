/*
 * pg_db.c - the PostgreSQL backend's connection: schema and migrations
 * (one transaction under an advisory lock), connecting, and the helpers
 * its other files share (commands with parameters, column readers).
 */
#include "audit/pg_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK "7204126006"

/* Append new steps; never edit a released one. */
static const char *const schema_steps[] = {
	/* 0 -> 1: the schema of SQLite version 2 */
	"CREATE TABLE audit("
	"id BIGSERIAL PRIMARY KEY,"
	"time_us BIGINT NOT NULL,"
	"request_id TEXT,"
	"client_ip TEXT,"
	"client_addr BYTEA,"
	"user_agent TEXT,"
	"origin TEXT,"
	"protocol TEXT,"
	"operation TEXT,"
	"root TEXT,"
	"path TEXT COLLATE \"C\","
	"status INTEGER,"
	"decision TEXT,"
	"message TEXT,"
	"bytes BIGINT,"
	"duration_us BIGINT,"
	"country TEXT,"
	"kid TEXT,"
	"sub TEXT,"
	"jti TEXT,"
	"token_sig TEXT,"
	"instance_id TEXT,"
	"seq BIGINT,"
	"prev_hash BYTEA,"
	"hash BYTEA);"
	"CREATE UNIQUE INDEX audit_chain ON audit(instance_id, seq);"
	"CREATE INDEX audit_time ON audit(time_us);"
	"CREATE INDEX audit_addr_time ON audit(client_addr, time_us);"
	"CREATE INDEX audit_op_time ON audit(operation, time_us);"
	"CREATE INDEX audit_status_time ON audit(status, time_us);"
	"CREATE INDEX audit_decision_time ON audit(decision, time_us);"
	"CREATE INDEX audit_path ON audit(path);"
	"CREATE INDEX audit_kid_time ON audit(kid, time_us);"
	"CREATE INDEX audit_sub_time ON audit(sub, time_us);"
	"CREATE INDEX audit_country_time ON audit(country, time_us);"
	"CREATE INDEX audit_request_id ON audit(request_id);"
	"CREATE TABLE audit_checkpoint("
	"instance_id TEXT NOT NULL,"
	"seq BIGINT NOT NULL,"
	"hash BYTEA NOT NULL,"
	"time_us BIGINT NOT NULL,"
	"sig BYTEA NOT NULL,"
	"PRIMARY KEY(instance_id, seq));"
	"CREATE TABLE audit_anchor("
	"instance_id TEXT PRIMARY KEY,"
	"seq BIGINT NOT NULL,"
	"hash BYTEA NOT NULL,"
	"time_us BIGINT NOT NULL);"
	"CREATE TABLE jti("
	"jti TEXT PRIMARY KEY,"
	"exp_us BIGINT NOT NULL);",
	/* 1 -> 2: grants for the S3 endpoint (src/grant's documents) */
	"CREATE TABLE grants(id TEXT PRIMARY KEY,"
	"access_key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);",
};

#define SCHEMA_VERSION ((int)GK_ARRAY_LEN(schema_steps))

static const char cp_insert_sql[] =
    "INSERT INTO audit_checkpoint(instance_id, seq, hash, time_us, sig)"
    " VALUES ($1, $2, $3, $4, $5)";

int
audit_pg_version(void)
{
	return SCHEMA_VERSION;
}

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

static int
migrate(PGconn *db, char *err, size_t errlen)
{
	char sql[96];
	int64_t v = -1;
	int r = GK_ERR_UNAVAILABLE;

	if (audit_pg_exec(db, "BEGIN", err, errlen) != 0 ||
	    audit_pg_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", err,
	    errlen) != 0 ||
	    audit_pg_exec(db, "CREATE TABLE IF NOT EXISTS audit_schema("
	    "version INTEGER NOT NULL)", err, errlen) != 0)
		goto out;
	if (audit_pg_query_int(db, "SELECT version FROM audit_schema", &v) != 0) {
		audit_pg_err(db, err, errlen);
		goto out;
	}
	if (v < 0) {
		if (audit_pg_exec(db, "INSERT INTO audit_schema VALUES (0)", err,
		    errlen) != 0)
			goto out;
		v = 0;
	}
	if (v > SCHEMA_VERSION) {
		audit_set_err(err, errlen, "schema version %" PRId64 " is not one "
		    "this program knows (%d)", v, SCHEMA_VERSION);
		goto out;
	}
	for (; v < SCHEMA_VERSION; v++) {
		if (audit_pg_exec(db, schema_steps[v], err, errlen) != 0)
			goto out;
	}
	snprintf(sql, sizeof(sql), "UPDATE audit_schema SET version = %d",
	    SCHEMA_VERSION);
	if (audit_pg_exec(db, sql, err, errlen) != 0 ||
	    audit_pg_exec(db, "COMMIT", err, errlen) != 0)
		goto out;
	r = 0;
out:
	audit_pg_rollback(db);
	return r;
}

void
audit_pg_close(audit_conn *base)
{
	struct pg_conn *c = PG(base);

	if (c == NULL)
		return;
	PQfinish(c->db);
	free(c);
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

int
audit_pg_open(const char *target, int create, audit_conn **out, char *err,
    size_t errlen)
{
	struct pg_conn *c = NULL;
	PGresult *res = NULL;
	int64_t v = -1;
	int r = GK_ERR_UNAVAILABLE;

	*out = NULL;
	audit_set_err(err, errlen, "%s", "");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->base.ops = &audit_pg_backend;
	if (audit_pg_connect(target, &c->db, err, errlen) != 0)
		goto out;
	if (create) {
		if (migrate(c->db, err, errlen) != 0)
			goto out;
	} else if (audit_pg_query_int(c->db, "SELECT version FROM audit_schema",
	    &v) != 0 || v != SCHEMA_VERSION) {
		audit_set_err(err, errlen, "not an audit database of schema version "
		    "%d", SCHEMA_VERSION);
		goto out;
	}
	res = PQprepare(c->db, "cp_ins", cp_insert_sql, 5, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		audit_pg_err(c->db, err, errlen);
		goto out;
	}
	*out = &c->base;
	c = NULL; /* transferred */
	r = 0;
out:
	PQclear(res);
	audit_pg_close(c != NULL ? &c->base : NULL);
	return r;
}

int
audit_pg_same_target(const audit_conn *c, const char *target)
{
	(void)target;
	return c != NULL;
}

int
audit_pg_flush(audit_conn *c)
{
	return c != NULL ? 0 : GK_ERR_UNAVAILABLE;
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
