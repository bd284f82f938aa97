/*
 * postgres.c - the PostgreSQL backend of the audit log (libpq): the same
 * tables and semantics as sqlite.c, for several gatekeeper instances
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
#include "audit/audit_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

struct pg_conn {
	audit_conn base;
	PGconn *db;
};

#define PG(c) ((struct pg_conn *)(c))
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

static const char select_sql[] =
    AUDIT_SELECT_COLS
    " FROM audit WHERE true";

/* libpq's last message on one line. */
static void
pg_err(PGconn *db, char *err, size_t errlen)
{
	const char *m = db != NULL ? PQerrorMessage(db) : "out of memory";
	size_t n = strcspn(m, "\n");

	audit_set_err(err, errlen, "%.*s", (int)n, m);
}

static int
exec_ok(PGconn *db, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(db, sql);
	ExecStatusType s = PQresultStatus(res);
	int r = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 :
	    GK_ERR_UNAVAILABLE;

	if (r != 0)
		pg_err(db, err, errlen);
	PQclear(res);
	return r;
}

static void
rollback(PGconn *db)
{
	if (PQtransactionStatus(db) != PQTRANS_IDLE)
		PQclear(PQexec(db, "ROLLBACK"));
}

/* One integer from a one-row result; -1 when there is no row. */
static int
query_int(PGconn *db, const char *sql, int64_t *out)
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

	if (exec_ok(db, "BEGIN", err, errlen) != 0 ||
	    exec_ok(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", err,
	    errlen) != 0 ||
	    exec_ok(db, "CREATE TABLE IF NOT EXISTS audit_schema("
	    "version INTEGER NOT NULL)", err, errlen) != 0)
		goto out;
	if (query_int(db, "SELECT version FROM audit_schema", &v) != 0) {
		pg_err(db, err, errlen);
		goto out;
	}
	if (v < 0) {
		if (exec_ok(db, "INSERT INTO audit_schema VALUES (0)", err,
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
		if (exec_ok(db, schema_steps[v], err, errlen) != 0)
			goto out;
	}
	snprintf(sql, sizeof(sql), "UPDATE audit_schema SET version = %d",
	    SCHEMA_VERSION);
	if (exec_ok(db, sql, err, errlen) != 0 ||
	    exec_ok(db, "COMMIT", err, errlen) != 0)
		goto out;
	r = 0;
out:
	rollback(db);
	return r;
}

static void
pg_close(audit_conn *base)
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

static int
connect_to(const char *target, PGconn **out, char *err, size_t errlen)
{
	static const char *const keys[] = { "dbname", "connect_timeout",
	    "client_encoding", "application_name", NULL };
	const char *values[] = { target, "5", "UTF8", "gatekeeper", NULL };
	PGconn *db;

	db = PQconnectdbParams(keys, values, 1);
	if (db == NULL || PQstatus(db) != CONNECTION_OK) {
		pg_err(db, err, errlen);
		PQfinish(db);
		*out = NULL;
		return GK_ERR_UNAVAILABLE;
	}
	PQsetNoticeProcessor(db, quiet, NULL);
	*out = db;
	return 0;
}

static int
pg_open(const char *target, int create, audit_conn **out, char *err,
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
	if (connect_to(target, &c->db, err, errlen) != 0)
		goto out;
	if (create) {
		if (migrate(c->db, err, errlen) != 0)
			goto out;
	} else if (query_int(c->db, "SELECT version FROM audit_schema",
	    &v) != 0 || v != SCHEMA_VERSION) {
		audit_set_err(err, errlen, "not an audit database of schema version "
		    "%d", SCHEMA_VERSION);
		goto out;
	}
	res = PQprepare(c->db, "cp_ins", cp_insert_sql, 5, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_err(c->db, err, errlen);
		goto out;
	}
	*out = &c->base;
	c = NULL; /* transferred */
	r = 0;
out:
	PQclear(res);
	pg_close(c != NULL ? &c->base : NULL);
	return r;
}

static int
pg_same_target(const audit_conn *c, const char *target)
{
	(void)target;
	return c != NULL;
}

static int
pg_flush(audit_conn *c)
{
	return c != NULL ? 0 : GK_ERR_UNAVAILABLE;
}

/* ---- writing --------------------------------------------------------- */

/* Runs a command with parameters; 0 when it succeeded. */
static int
run(PGconn *db, const char *name_or_sql, int prepared, int n,
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

		pg_err(db, err, errlen);
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
		if ((r = run(db, (const char *)sql.data, 0, (int)(k * PG_COLS),
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

static int
pg_insert(audit_conn *base, const char *instance,
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
	if (exec_ok(c->db, "BEGIN", err, errlen) != 0)
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
		if (run(c->db, "cp_ins", 1, 5, v, len, fmt, NULL, err,
		    errlen) != 0)
			goto out;
	}
	if (exec_ok(c->db, "COMMIT", err, errlen) != 0)
		goto out;
	r = 0;
out:
	rollback(c->db);
	return r;
}

/* A bytea column in text (hex) form into out[n]; GK_ERR_INTEGRITY. */
static int
get_bytes(const PGresult *res, int row, int col, uint8_t *out, size_t n)
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

static int64_t
get_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 :
	    strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int
pg_tail(audit_conn *base, const char *instance, audit_tail *out, char *err,
    size_t errlen)
{
	static const char *const q[3] = {
		"SELECT seq, hash FROM audit WHERE instance_id = $1"
		" ORDER BY seq DESC LIMIT 1",
		"SELECT seq, hash FROM audit_anchor WHERE instance_id = $1",
		"SELECT seq, time_us FROM audit_checkpoint"
		" WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1",
	};
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	const char *v[1] = { instance };
	int i, r = GK_ERR_UNAVAILABLE, have = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < 3; i++) {
		if (i == 1 && have)
			continue;
		if (run(c->db, q[i], 0, 1, v, NULL, NULL, &res, err,
		    errlen) != 0)
			goto out;
		if (PQntuples(res) > 0) {
			if (i < 2) {
				out->seq = get_int(res, 0, 0);
				if (get_bytes(res, 0, 1, out->hash,
				    AUDIT_HASH_LEN) != 0) {
					audit_set_err(err, errlen, "the stored chain "
					    "of %s ends in a bad hash",
					    instance);
					r = GK_ERR_INTEGRITY;
					goto out;
				}
				have = 1;
			} else {
				out->cp_seq = get_int(res, 0, 0);
				out->cp_time_us = get_int(res, 0, 1);
			}
		}
		PQclear(res);
		res = NULL;
	}
	r = 0;
out:
	PQclear(res);
	return r;
}

static int
pg_prune_target(audit_conn *base, int64_t before_us, audit_checkpoint *out,
    int *found, char *err, size_t errlen)
{
	static const char sql[] =
	    "SELECT c.instance_id, c.seq, c.hash, c.time_us"
	    " FROM audit_checkpoint c LEFT JOIN audit_anchor a"
	    " ON a.instance_id = c.instance_id"
	    " WHERE c.time_us < $1 AND c.seq > coalesce(a.seq, 0)"
	    " ORDER BY c.instance_id, c.seq DESC LIMIT 1";
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	char before[24];
	const char *v[1] = { before };
	int r = GK_ERR_UNAVAILABLE;

	*found = 0;
	memset(out, 0, sizeof(*out));
	snprintf(before, sizeof(before), "%" PRId64, before_us);
	if (run(c->db, sql, 0, 1, v, NULL, NULL, &res, err, errlen) != 0)
		goto out;
	if (PQntuples(res) > 0) {
		if (strlen(PQgetvalue(res, 0, 0)) > AUDIT_INSTANCE_MAX ||
		    get_bytes(res, 0, 2, out->hash, AUDIT_HASH_LEN) != 0) {
			audit_set_err(err, errlen, "a stored checkpoint is "
			    "malformed");
			goto out;
		}
		snprintf(out->instance, sizeof(out->instance), "%s",
		    PQgetvalue(res, 0, 0));
		out->seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		out->time_us = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		*found = 1;
	}
	r = 0;
out:
	PQclear(res);
	return r;
}

static int
pg_prune_span(audit_conn *base, const char *instance, int64_t upto,
    uint64_t *deleted, int *more, char *err, size_t errlen)
{
	static const char find_sql[] = AUDIT_PRUNE_FIND_SQL;
	static const char del_sql[] = AUDIT_PRUNE_DELETE_SQL;
	static const char anchor_sql[] = AUDIT_ANCHOR_SET_SQL;
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	char up[24], seq[24], t[24], inst[AUDIT_INSTANCE_MAX + 1];
	uint8_t hash[AUDIT_HASH_LEN];
	const char *v[4];
	int len[4] = { 0, 0, AUDIT_HASH_LEN, 0 }, fmt[4] = { 0, 0, 1, 0 };
	int r = GK_ERR_UNAVAILABLE;

	*deleted = 0;
	*more = 0;
	audit_set_err(err, errlen, "%s", "");
	snprintf(up, sizeof(up), "%" PRId64, upto);
	v[0] = instance;
	v[1] = up;
	if (exec_ok(c->db, "BEGIN", err, errlen) != 0 ||
	    run(c->db, find_sql, 0, 2, v, NULL, NULL, &res, err, errlen) != 0)
		goto out;
	if (PQntuples(res) == 0) {
		r = 0;
		goto out;
	}
	if (strlen(PQgetvalue(res, 0, 0)) > AUDIT_INSTANCE_MAX ||
	    get_bytes(res, 0, 2, hash, AUDIT_HASH_LEN) != 0) {
		audit_set_err(err, errlen, "a stored checkpoint is malformed");
		goto out;
	}
	snprintf(inst, sizeof(inst), "%s", PQgetvalue(res, 0, 0));
	snprintf(seq, sizeof(seq), "%s", PQgetvalue(res, 0, 1));
	snprintf(t, sizeof(t), "%s", PQgetvalue(res, 0, 3));
	PQclear(res);
	res = NULL;
	v[0] = inst;
	v[1] = seq;
	if (run(c->db, del_sql, 0, 2, v, NULL, NULL, &res, err, errlen) != 0)
		goto out;
	*deleted = strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	res = NULL;
	v[2] = (const char *)hash;
	v[3] = t;
	if (run(c->db, anchor_sql, 0, 4, v, len, fmt, NULL, err, errlen) != 0 ||
	    exec_ok(c->db, "COMMIT", err, errlen) != 0) {
		*deleted = 0;
		goto out;
	}
	*more = 1;
	r = 0;
out:
	PQclear(res);
	rollback(c->db);
	return r;
}

static int
pg_jti_use(audit_conn *base, const char *jti, int64_t exp_s)
{
	static const char sql[] =
	    "INSERT INTO jti(jti, exp_us) VALUES ($1, $2)"
	    " ON CONFLICT (jti) DO UPDATE SET exp_us = EXCLUDED.exp_us"
	    " WHERE jti.exp_us < $3";
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	char exp[24], now[24];
	const char *v[3] = { jti, exp, now };
	int64_t exp_us;
	int r;

	if (c == NULL || jti == NULL)
		return GK_ERR_UNAVAILABLE;
	if (__builtin_mul_overflow(exp_s, 1000000, &exp_us))
		exp_us = INT64_MAX;
	snprintf(exp, sizeof(exp), "%" PRId64, exp_us);
	snprintf(now, sizeof(now), "%" PRId64, gk_now_us());
	if (run(c->db, sql, 0, 3, v, NULL, NULL, &res, NULL, 0) != 0)
		return GK_ERR_UNAVAILABLE;
	/* 1: inserted, or an expired entry renewed; 0: still in use */
	r = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : GK_ERR_EXISTS;
	PQclear(res);
	return r;
}

/* ---- grants ------------------------------------------------------------ */

static int
pg_grant_put(audit_conn *base, const char *id, const char *access_key,
    const char *doc, char *err, size_t errlen)
{
	static const char sql[] = "INSERT INTO grants(id, access_key, doc)"
	    " VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET"
	    " access_key = EXCLUDED.access_key, doc = EXCLUDED.doc";
	const char *v[3] = { id, access_key, doc };
	PGresult *res;
	const char *state;
	int r;

	res = PQexecParams(PG(base)->db, sql, 3, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		r = 0;
	} else {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		r = state != NULL && strcmp(state, "23505") == 0 ?
		    GK_ERR_EXISTS : GK_ERR_UNAVAILABLE;
		pg_err(PG(base)->db, err, errlen);
	}
	PQclear(res);
	return r;
}

static int
pg_grant_get(audit_conn *base, int by_key, const char *v, gk_buf *doc,
    char *err, size_t errlen)
{
	PGresult *res = NULL;
	const char *vals[1] = { v };
	int r;

	if (run(PG(base)->db, by_key ?
	    "SELECT doc FROM grants WHERE access_key = $1" :
	    "SELECT doc FROM grants WHERE id = $1", 0, 1, vals, NULL, NULL,
	    &res, err, errlen) != 0)
		return GK_ERR_UNAVAILABLE;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return GK_ERR_NOT_FOUND;
	}
	gk_buf_reset(doc);
	r = gk_buf_append_str(doc, PQgetvalue(res, 0, 0));
	if (r == 0)
		r = gk_buf_append(doc, "", 1);
	if (r == 0)
		doc->len--;
	PQclear(res);
	return r;
}

static int
pg_grant_list(audit_conn *base, gk_audit_doc_fn fn, void *arg, char *err,
    size_t errlen)
{
	PGresult *res = NULL;
	int i, r = 0;

	if (run(PG(base)->db, "SELECT id, access_key, doc FROM grants"
	    " ORDER BY id", 0, 0, NULL, NULL, NULL, &res, err, errlen) != 0)
		return GK_ERR_UNAVAILABLE;
	for (i = 0; i < PQntuples(res) && r == 0; i++)
		r = fn(arg, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2));
	PQclear(res);
	return r;
}

/* ---- reading --------------------------------------------------------- */

struct pg_row {
	const PGresult *res;
	int row;
};

static const char *
pg_text(void *ctx, int col, size_t *len)
{
	struct pg_row *r = ctx;
	const char *s;

	*len = 0;
	if (PQgetisnull(r->res, r->row, col))
		return NULL;
	s = PQgetvalue(r->res, r->row, col);
	*len = strlen(s);
	return s;
}

static int64_t
pg_num(void *ctx, int col)
{
	struct pg_row *r = ctx;

	return get_int(r->res, r->row, col);
}

static int
pg_bytes(void *ctx, int col, uint8_t *out, size_t n)
{
	struct pg_row *r = ctx;

	return get_bytes(r->res, r->row, col, out, n);
}

static void
read_row(const PGresult *res, int i, gk_audit_row *row)
{
	struct pg_row r = { res, i };
	audit_cols c = { pg_text, pg_num, pg_bytes, &r };

	audit_row_read(&c, row);
}

/*
 * Streams the rows of a query one at a time (constant memory) to fn.
 * Returns 0, fn's non-zero value, or GK_ERR_IO.
 */
static int
stream(PGconn *db, const char *sql, int n, const char *const *v,
    const int *len, const int *fmt, gk_audit_row_fn fn, void *arg,
    char *err, size_t errlen)
{
	PGresult *res;
	gk_audit_row row;
	int r = 0, failed = 0;

	if (!PQsendQueryParams(db, sql, n, NULL, v, len, fmt, 0) ||
	    !PQsetSingleRowMode(db)) {
		pg_err(db, err, errlen);
		return GK_ERR_IO;
	}
	while ((res = PQgetResult(db)) != NULL) {
		ExecStatusType s = PQresultStatus(res);

		if (s == PGRES_SINGLE_TUPLE && r == 0) {
			read_row(res, 0, &row);
			r = fn(arg, &row);
		} else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK &&
		    !failed) {
			pg_err(db, err, errlen);
			failed = 1;
		}
		PQclear(res);
		/* after fn stopped, drain: libpq needs the rest read */
	}
	if (failed && r == 0)
		return GK_ERR_IO;
	return r;
}

/* The exclusive upper bound of strings starting with prefix (see
 * sqlite.c); NULL when there is none. */
static int
pg_search(const char *target, const gk_audit_query *q, gk_audit_row_fn fn,
    void *arg, char *err, size_t errlen)
{
	PGconn *db = NULL;
	audit_query b;
	const char *v[AUDIT_QUERY_MAX];
	int len[AUDIT_QUERY_MAX], fmt[AUDIT_QUERY_MAX], i;
	char num[AUDIT_QUERY_MAX][24];
	int r;

	audit_set_err(err, errlen, "%s", "");
	if ((r = audit_query_build(q, select_sql, select_sql, 1, &b, err,
	    errlen)) != 0)
		goto out;
	for (i = 0; i < b.n; i++) {
		len[i] = 0;
		fmt[i] = 0;
		if (b.v[i].type == AUDIT_Q_INT) {
			snprintf(num[i], sizeof(num[i]), "%" PRId64, b.v[i].i);
			v[i] = num[i];
		} else {
			v[i] = b.v[i].s;	/* text: NUL-terminated */
			if (b.v[i].type == AUDIT_Q_BLOB) {
				len[i] = (int)b.v[i].len;
				fmt[i] = 1;
			}
		}
	}
	r = GK_ERR_IO;
	if (connect_to(target, &db, err, errlen) != 0)
		goto out;
	r = stream(db, (const char *)b.sql.data, b.n, v, len, fmt, fn, arg,
	    err, errlen);
out:
	PQfinish(db);
	audit_query_release(&b);
	return r;
}

static int
read_cps(PGconn *db, const char *sql, int with_sig,
    int (*fn)(void *, const audit_checkpoint *), void *arg, char *err,
    size_t errlen)
{
	PGresult *res = NULL;
	audit_checkpoint cp;
	int i, r = GK_ERR_IO;

	if (run(db, sql, 0, 0, NULL, NULL, NULL, &res, err, errlen) != 0)
		return GK_ERR_IO;
	for (i = 0; i < PQntuples(res); i++) {
		memset(&cp, 0, sizeof(cp));
		if (strlen(PQgetvalue(res, i, 0)) > AUDIT_INSTANCE_MAX ||
		    PQgetvalue(res, i, 0)[0] == '\0')
			continue;
		snprintf(cp.instance, sizeof(cp.instance), "%s",
		    PQgetvalue(res, i, 0));
		cp.seq = get_int(res, i, 1);
		(void)get_bytes(res, i, 2, cp.hash, AUDIT_HASH_LEN);
		cp.time_us = get_int(res, i, 3);
		if (with_sig)
			(void)get_bytes(res, i, 4, cp.sig, AUDIT_SIG_LEN);
		if ((r = fn(arg, &cp)) != 0)
			goto out;
	}
	r = 0;
out:
	PQclear(res);
	return r;
}

static int
pg_scan(const char *target, const audit_scan_cb *cb, void *arg, char *err,
    size_t errlen)
{
	PGconn *db = NULL;
	gk_buf sql;
	int64_t v = -1;
	int r = GK_ERR_IO;

	gk_buf_init(&sql, 4096);
	if (connect_to(target, &db, err, errlen) != 0)
		goto out;
	if (query_int(db, "SELECT version FROM audit_schema", &v) != 0 ||
	    v != SCHEMA_VERSION) {
		audit_set_err(err, errlen, "not an audit database of schema version "
		    "%d", SCHEMA_VERSION);
		goto out;
	}
	/* one snapshot while writers run */
	if (exec_ok(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	    err, errlen) != 0)
		goto out;
	if ((r = read_cps(db, "SELECT instance_id, seq, hash, time_us FROM"
	    " audit_anchor ORDER BY instance_id COLLATE \"C\"", 0, cb->anchor,
	    arg, err, errlen)) != 0 ||
	    (r = read_cps(db, "SELECT instance_id, seq, hash, time_us, sig"
	    " FROM audit_checkpoint ORDER BY instance_id COLLATE \"C\", seq",
	    1, cb->checkpoint, arg, err, errlen)) != 0)
		goto out;
	r = GK_ERR_IO;
	if (gk_buf_append_str(&sql, select_sql) != 0 ||
	    gk_buf_append_str(&sql, " ORDER BY instance_id COLLATE \"C\","
	    " seq, id") != 0)
		goto out;
	r = stream(db, (const char *)sql.data, 0, NULL, NULL, NULL,
	    cb->record, arg, err, errlen);
out:
	PQfinish(db);
	gk_buf_release(&sql);
	return r;
}

const audit_backend audit_pg_backend = {
	.name = "postgres",
	.local = 0,
	.open = pg_open,
	.close = pg_close,
	.same_target = pg_same_target,
	.flush = pg_flush,
	.tail = pg_tail,
	.insert = pg_insert,
	.prune_target = pg_prune_target,
	.prune_span = pg_prune_span,
	.search = pg_search,
	.scan = pg_scan,
	.jti_use = pg_jti_use,
	.grant_put = pg_grant_put,
	.grant_get = pg_grant_get,
	.grant_list = pg_grant_list,
};
