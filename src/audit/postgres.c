/*
 * postgres.c - the PostgreSQL backend of the audit log (libpq): its table
 * of functions, schema and migrations, and the writing connection. The
 * rest: pg_insert.c, pg_read.c, pg_prune.c, pg_kv.c, on top of pg_util.c.
 * The same tables and semantics as SQLite, for several gatekeeper instances
 * sharing one database (one hash chain per instance), and the v2 replay
 * cache (table jti) that makes a token id single-use across instances.
 *
 * Schema version in table audit_schema; migrations run in one
 * transaction under an advisory lock, so instances starting together do
 * not race. Text comparisons for search use COLLATE "C" (byte order), as
 * SQLite does. Every value reaches SQL as a parameter. Connections use
 * connect_timeout=5 and client_encoding UTF8; the target (a
 * postgresql:// URI) may hold a password, so it is never logged: errors
 * carry libpq's message, which does not include it.
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
_Static_assert(GK_ARRAY_LEN(schema_steps) == AUDIT_PG_SCHEMA_VERSION,
    "AUDIT_PG_SCHEMA_VERSION: one more schema step");

static const char cp_insert_sql[] =
    "INSERT INTO audit_checkpoint(instance_id, seq, hash, time_us, sig)"
    " VALUES ($1, $2, $3, $4, $5)";


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

const audit_backend audit_pg_backend = {
	.name = "postgres",
	.local = 0,
	.open = audit_pg_open,
	.close = audit_pg_close,
	.same_target = audit_pg_same_target,
	.flush = audit_pg_flush,
	.tail = audit_pg_tail,
	.insert = audit_pg_insert,
	.prune_target = audit_pg_prune_target,
	.prune_span = audit_pg_prune_span,
	.search = audit_pg_search,
	.scan = audit_pg_scan,
	.jti_use = audit_pg_jti_use,
	.grant_put = audit_pg_grant_put,
	.grant_get = audit_pg_grant_get,
	.grant_swap = audit_pg_grant_swap,
	.grant_list = audit_pg_grant_list,
};

