/*
 * sqlite.c - the SQLite backend of the audit log: schema and migrations,
 * batched inserts, search and retention.
 *
 * Schema (PRAGMA user_version = number of steps in schema_steps[]):
 *
 *   audit(id INTEGER PRIMARY KEY, time_us INTEGER NOT NULL,
 *         request_id TEXT, client_ip TEXT, client_addr BLOB,
 *         user_agent TEXT, origin TEXT, protocol TEXT, operation TEXT,
 *         root TEXT, path TEXT, status INTEGER, decision TEXT,
 *         message TEXT, bytes INTEGER, duration_us INTEGER)
 *
 *   jti(jti TEXT PRIMARY KEY, exp_us INTEGER NOT NULL)   (step 2: the v2
 *       replay cache; rows whose exp_us has passed are pruned)
 *
 *   grants(id TEXT PRIMARY KEY, access_key TEXT UNIQUE, doc TEXT)
 *       (step 4: S3 endpoint grants, an opaque document each)
 *
 *   indexes on audit (step 5): time_us; (client_addr, time_us);
 *       (instance_id, seq) unique
 *
 * client_addr is always 16 bytes (IPv4-mapped IPv6), so a CIDR is the
 * byte range client_addr BETWEEN lo AND hi. Every value reaches SQL as a
 * bound parameter; SQL text is assembled from constant fragments only.
 */
#include "audit/audit_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

struct sq_conn {
	audit_conn base;
	sqlite3 *db;
	sqlite3_stmt *ins;
	sqlite3_stmt *cp_ins;
	dev_t dev;	/* identity of the file opened, to notice a swap */
	ino_t ino;
};

#define SQ(c) ((struct sq_conn *)(c))

/*
 * Migrations: schema_steps[v] takes a database from version v to v + 1.
 * Append new steps; never edit a released one.
 */
static const char *const schema_steps[] = {
	/* 0 -> 1: the initial schema */
	"CREATE TABLE audit("
	"id INTEGER PRIMARY KEY,"
	"time_us INTEGER NOT NULL,"
	"request_id TEXT,"
	"client_ip TEXT,"
	"client_addr BLOB,"
	"user_agent TEXT,"
	"origin TEXT,"
	"protocol TEXT,"
	"operation TEXT,"
	"root TEXT,"
	"path TEXT,"
	"status INTEGER,"
	"decision TEXT,"
	"message TEXT,"
	"bytes INTEGER,"
	"duration_us INTEGER,"
	"country TEXT,"
	"kid TEXT,"
	"sub TEXT,"
	"jti TEXT,"
	"token_sig TEXT);"
	"CREATE INDEX audit_time ON audit(time_us);"
	"CREATE INDEX audit_addr_time ON audit(client_addr, time_us);"
	"CREATE INDEX audit_op_time ON audit(operation, time_us);"
	"CREATE INDEX audit_status_time ON audit(status, time_us);"
	"CREATE INDEX audit_decision_time ON audit(decision, time_us);"
	"CREATE INDEX audit_path ON audit(path);"
	"CREATE INDEX audit_kid_time ON audit(kid, time_us);"
	"CREATE INDEX audit_sub_time ON audit(sub, time_us);",
	/* 1 -> 2: hash chain, checkpoints, prune anchors, search indexes */
	"ALTER TABLE audit ADD COLUMN instance_id TEXT;"
	"ALTER TABLE audit ADD COLUMN seq INTEGER;"
	"ALTER TABLE audit ADD COLUMN prev_hash BLOB;"
	"ALTER TABLE audit ADD COLUMN hash BLOB;"
	"CREATE UNIQUE INDEX audit_chain ON audit(instance_id, seq);"
	"CREATE INDEX audit_country_time ON audit(country, time_us);"
	"CREATE INDEX audit_request_id ON audit(request_id);"
	"CREATE TABLE audit_checkpoint("
	"instance_id TEXT NOT NULL,"
	"seq INTEGER NOT NULL,"
	"hash BLOB NOT NULL,"
	"time_us INTEGER NOT NULL,"
	"sig BLOB NOT NULL,"
	"PRIMARY KEY(instance_id, seq));"
	"CREATE TABLE audit_anchor("
	"instance_id TEXT PRIMARY KEY,"
	"seq INTEGER NOT NULL,"
	"hash BLOB NOT NULL,"
	"time_us INTEGER NOT NULL);",
	/* 2 -> 3: the v2 replay cache (used token ids until they expire) */
	"CREATE TABLE jti(jti TEXT PRIMARY KEY, exp_us INTEGER NOT NULL);"
	"CREATE INDEX jti_exp ON jti(exp_us);",
	/* 3 -> 4: grants for the S3 endpoint (src/grant's documents) */
	"CREATE TABLE grants(id TEXT PRIMARY KEY,"
	"access_key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);",
	/*
	 * 4 -> 5: a narrow hot table. Each secondary index is another
	 * B-tree written per record, and together they were most of the
	 * writer's CPU; search is indexed by time, by address and time, and
	 * by chain position; other filters are checked while the time index
	 * is walked (bounded by --from/--to).
	 */
	"DROP INDEX IF EXISTS audit_op_time;"
	"DROP INDEX IF EXISTS audit_status_time;"
	"DROP INDEX IF EXISTS audit_decision_time;"
	"DROP INDEX IF EXISTS audit_path;"
	"DROP INDEX IF EXISTS audit_kid_time;"
	"DROP INDEX IF EXISTS audit_sub_time;"
	"DROP INDEX IF EXISTS audit_country_time;"
	"DROP INDEX IF EXISTS audit_request_id;",
};

#define SCHEMA_VERSION ((int64_t)GK_ARRAY_LEN(schema_steps))

static const char insert_sql[] =
    "INSERT INTO audit(time_us, request_id, client_ip, client_addr,"
    " user_agent, origin, protocol, operation, root, path, status,"
    " decision, message, bytes, duration_us, country, kid, sub, jti,"
    " token_sig, instance_id, seq, prev_hash, hash)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

static const char cp_insert_sql[] =
    "INSERT INTO audit_checkpoint(instance_id, seq, hash, time_us, sig)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";

static const char select_sql[] =
    AUDIT_SELECT_COLS
    " FROM audit WHERE 1";

static const char select_by_addr_sql[] =
    AUDIT_SELECT_COLS
    " FROM audit INDEXED BY audit_addr_time WHERE 1";

static int
exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
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
static int
query_int(sqlite3 *db, const char *sql, int64_t *out)
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

/* Creates the directory holding path (mode 0700) if it is missing. */
static int
make_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int r;

	if (slash == NULL || slash == path)
		return 0;
	if ((dir = strndup(path, (size_t)(slash - path))) == NULL)
		return GK_ERR_NOMEM;
	r = gk_mkdirs(dir, 0700);
	free(dir);
	return r;
}

/* Brings the schema to SCHEMA_VERSION inside one write transaction. */
static int
migrate(sqlite3 *db, char *err, size_t errlen)
{
	char sql[64];
	int64_t v = -1;
	int r = GK_ERR_UNAVAILABLE, in_tx = 0;

	if (query_int(db, "PRAGMA user_version", &v) != 0) {
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	if (v == SCHEMA_VERSION)
		return 0;
	if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen) != 0)
		goto out;
	in_tx = 1;
	/* again under the write lock: another process may have migrated */
	if (query_int(db, "PRAGMA user_version", &v) != 0) {
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	if (v < 0 || v > SCHEMA_VERSION) {
		audit_set_err(err, errlen, "schema version %" PRId64 " is not one "
		    "this program knows (%" PRId64 ")", v, SCHEMA_VERSION);
		goto out;
	}
	for (; v < SCHEMA_VERSION; v++) {
		if (exec_sql(db, schema_steps[v], err, errlen) != 0)
			goto out;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%" PRId64,
	    SCHEMA_VERSION);
	if (exec_sql(db, sql, err, errlen) != 0 ||
	    exec_sql(db, "COMMIT", err, errlen) != 0)
		goto out;
	in_tx = 0;
	r = 0;
out:
	if (in_tx && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static void
sq_close(audit_conn *base)
{
	struct sq_conn *c = SQ(base);

	if (c == NULL)
		return;
	sqlite3_finalize(c->ins);
	sqlite3_finalize(c->cp_ins);
	sqlite3_close(c->db);
	free(c);
}

static int
sq_open(const char *path, int create, audit_conn **out, char *err,
    size_t errlen)
{
	struct sq_conn *c = NULL;
	sqlite3_stmt *st = NULL;
	struct stat st_file;
	const unsigned char *mode;
	int64_t v = -1;
	int r = GK_ERR_INTERNAL, fd;

	*out = NULL;
	audit_set_err(err, errlen, "%s", "");
	if (path == NULL || path[0] == '\0') {
		audit_set_err(err, errlen, "no audit database configured");
		return GK_ERR_CONFIG;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->base.ops = &audit_sqlite_backend;
	r = GK_ERR_UNAVAILABLE;
	if (create) {
		if (make_parent(path) != 0) {
			audit_set_err(err, errlen, "cannot create the directory of "
			    "%s", path);
			goto out;
		}
		/*
		 * Made (0600) only when missing: closing any descriptor of
		 * the file drops every POSIX lock this process holds on it,
		 * the other connections' too (the replay cache's connection
		 * opens after the writer's), and another process could then
		 * take the database for unused, checkpoint it and delete the
		 * WAL the writer still appends to.
		 */
		fd = stat(path, &st_file) == 0 ? -1 :
		    open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST && stat(path, &st_file) != 0) {
			audit_set_err(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (fd >= 0)
			close(fd);
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		audit_set_err(err, errlen, "%s: %s", path, c->db != NULL ?
		    sqlite3_errmsg(c->db) : "out of memory");
		goto out;
	}
	if (stat(path, &st_file) != 0) {
		audit_set_err(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	c->dev = st_file.st_dev;
	c->ino = st_file.st_ino;
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, AUDIT_BUSY_MS);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	if (exec_sql(c->db, "PRAGMA trusted_schema=OFF", err, errlen) != 0)
		goto out;
	if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		audit_set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(c->db));
		goto out;
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		audit_set_err(err, errlen, "%s: cannot switch to WAL mode", path);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* the writer's working set: the B-tree pages it appends to */
	if (exec_sql(c->db, "PRAGMA synchronous=FULL", err, errlen) != 0 ||
	    exec_sql(c->db, "PRAGMA cache_size=-65536", err, errlen) != 0)
		goto out;
	if (create) {
		if (migrate(c->db, err, errlen) != 0)
			goto out;
	} else if (query_int(c->db, "PRAGMA user_version", &v) != 0 ||
	    v != SCHEMA_VERSION) {
		audit_set_err(err, errlen, "%s: not an audit database of schema "
		    "version %" PRId64, path, SCHEMA_VERSION);
		goto out;
	}
	if (sqlite3_prepare_v2(c->db, insert_sql, -1, &c->ins, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(c->db, cp_insert_sql, -1, &c->cp_ins, NULL) !=
	    SQLITE_OK) {
		audit_set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(c->db));
		goto out;
	}
	*out = &c->base;
	c = NULL; /* transferred */
	r = 0;
out:
	sqlite3_finalize(st);
	sq_close(c != NULL ? &c->base : NULL);
	return r;
}

static int
sq_same_target(const audit_conn *base, const char *path)
{
	const struct sq_conn *c = (const struct sq_conn *)base;
	struct stat st;

	return c != NULL && stat(path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino;
}

static int
sq_flush(audit_conn *base)
{
	struct sq_conn *c = SQ(base);
	int log = -1, done = -1;

	if (c == NULL)
		return GK_ERR_UNAVAILABLE;
	if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    &log, &done) != SQLITE_OK || log != 0)
		return GK_ERR_UNAVAILABLE;
	return 0;
}

/* Binds a string, NULL (or an empty fixed-size field) as SQL NULL. */
static int
bind_str(sqlite3_stmt *st, int i, const char *s, int empty_is_null)
{
	if (s == NULL || (empty_is_null && s[0] == '\0'))
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int
bind_record(sqlite3_stmt *st, const gk_audit_record *rec)
{
	int64_t bytes = rec->bytes > (uint64_t)INT64_MAX ? INT64_MAX :
	    (int64_t)rec->bytes;

	if (sqlite3_bind_int64(st, 1, rec->time_us) != SQLITE_OK ||
	    bind_str(st, 2, rec->request_id, 1) != SQLITE_OK ||
	    bind_str(st, 3, rec->client_ip, 1) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 4, rec->client_addr,
	    (int)sizeof(rec->client_addr), SQLITE_STATIC) != SQLITE_OK ||
	    bind_str(st, 5, rec->user_agent, 0) != SQLITE_OK ||
	    bind_str(st, 6, rec->origin, 0) != SQLITE_OK ||
	    bind_str(st, 7, rec->protocol, 0) != SQLITE_OK ||
	    bind_str(st, 8, rec->operation, 0) != SQLITE_OK ||
	    bind_str(st, 9, rec->root, 0) != SQLITE_OK ||
	    bind_str(st, 10, rec->path, 0) != SQLITE_OK ||
	    sqlite3_bind_int(st, 11, rec->status) != SQLITE_OK ||
	    bind_str(st, 12, rec->decision, 0) != SQLITE_OK ||
	    bind_str(st, 13, rec->message, 0) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 14, bytes) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 15, rec->duration_us) != SQLITE_OK ||
	    bind_str(st, 16, rec->country, 0) != SQLITE_OK ||
	    bind_str(st, 17, rec->kid, 0) != SQLITE_OK ||
	    bind_str(st, 18, rec->sub, 0) != SQLITE_OK ||
	    bind_str(st, 19, rec->jti, 0) != SQLITE_OK ||
	    bind_str(st, 20, rec->token_sig, 0) != SQLITE_OK)
		return GK_ERR_INTERNAL;
	return 0;
}

static int
bind_link(sqlite3_stmt *st, const char *instance, const audit_link *l)
{
	if (sqlite3_bind_text(st, 21, instance, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_int64(st, 22, l->seq) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 23, l->prev, AUDIT_HASH_LEN,
	    SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 24, l->hash, AUDIT_HASH_LEN,
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
	size_t i;
	int r = GK_ERR_UNAVAILABLE, rc;

	audit_set_err(err, errlen, "%s", "");
	if (c == NULL)
		return GK_ERR_UNAVAILABLE;
	if (sqlite3_get_autocommit(c->db) &&
	    exec_sql(c->db, "BEGIN IMMEDIATE", err, errlen) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		rc = bind_record(c->ins, recs[i]) == 0 &&
		    bind_link(c->ins, instance, &links[i]) == 0 ?
		    sqlite3_step(c->ins) : SQLITE_MISUSE;
		sqlite3_reset(c->ins);
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
	if (exec_sql(c->db, "COMMIT", err, errlen) != 0) {
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

static int
sq_insert(audit_conn *base, const char *instance,
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

int
audit_sqlite_set_full_sync(audit_conn *base, int full)
{
	return exec_sql(SQ(base)->db, full ? "PRAGMA synchronous=FULL" :
	    "PRAGMA synchronous=NORMAL", NULL, 0);
}

int
audit_sqlite_journaled(audit_conn *base)
{
	/* the journal holds every batch durably before it is answered;
	 * the commits themselves need not wait for the disk */
	return exec_sql(SQ(base)->db, "PRAGMA synchronous=NORMAL", NULL, 0);
}

int
audit_sqlite_durable(audit_conn *base)
{
	struct sq_conn *c = SQ(base);
	int log = -1, done = -1;

	if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log, &done) != SQLITE_OK || log < 0 || done != log)
		return GK_ERR_UNAVAILABLE;
	return 0;
}

static int
blob_hash(sqlite3_stmt *st, int i, uint8_t out[AUDIT_HASH_LEN])
{
	const void *p = sqlite3_column_blob(st, i);

	if (p == NULL || sqlite3_column_bytes(st, i) != AUDIT_HASH_LEN)
		return GK_ERR_INTEGRITY;
	memcpy(out, p, AUDIT_HASH_LEN);
	return 0;
}

static int
sq_tail(audit_conn *base, const char *instance, audit_tail *out, char *err,
    size_t errlen)
{
	static const char *const q[3] = {
		"SELECT seq, hash FROM audit WHERE instance_id = ?1"
		" ORDER BY seq DESC LIMIT 1",
		"SELECT seq, hash FROM audit_anchor WHERE instance_id = ?1",
		"SELECT seq, time_us FROM audit_checkpoint"
		" WHERE instance_id = ?1 ORDER BY seq DESC LIMIT 1",
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
				if (blob_hash(st, 1, out->hash) != 0) {
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

/* Reads a checkpoint row (instance_id, seq, hash, time_us) into cp. */
static int
sq_cp_row(sqlite3_stmt *st, audit_checkpoint *cp)
{
	const unsigned char *inst = sqlite3_column_text(st, 0);

	memset(cp, 0, sizeof(*cp));
	if (inst == NULL || (size_t)sqlite3_column_bytes(st, 0) >
	    AUDIT_INSTANCE_MAX || blob_hash(st, 2, cp->hash) != 0)
		return GK_ERR_INTEGRITY;
	memcpy(cp->instance, inst, (size_t)sqlite3_column_bytes(st, 0));
	cp->seq = sqlite3_column_int64(st, 1);
	cp->time_us = sqlite3_column_int64(st, 3);
	return 0;
}

static int
sq_prune_target(audit_conn *base, int64_t before_us, audit_checkpoint *out,
    int *found, char *err, size_t errlen)
{
	static const char sql[] =
	    "SELECT c.instance_id, c.seq, c.hash, c.time_us"
	    " FROM audit_checkpoint c LEFT JOIN audit_anchor a"
	    " ON a.instance_id = c.instance_id"
	    " WHERE c.time_us < ?1 AND c.seq > coalesce(a.seq, 0)"
	    " ORDER BY c.instance_id, c.seq DESC LIMIT 1";
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
		if (sq_cp_row(st, out) != 0) {
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

static int
sq_prune_span(audit_conn *base, const char *instance, int64_t upto,
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
	if (exec_sql(c->db, "BEGIN IMMEDIATE", err, errlen) != 0)
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
	if (sq_cp_row(st, &cp) != 0) {
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
	if (exec_sql(c->db, "COMMIT", err, errlen) != 0)
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

static int
sq_search(const char *db_path, const gk_audit_query *q,
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
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		audit_set_err(err, errlen, "cannot open %s: %s", db_path,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, AUDIT_BUSY_MS);
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

/* ---- the v2 replay cache ---------------------------------------------- */

/*
 * In ONE transaction: deletes a few expired ids (exp_us <= now_us), then
 * records jti until exp_us. 0 when new, GK_ERR_EXISTS when recorded and
 * not expired, GK_ERR_UNAVAILABLE when the database cannot be written.
 */
static int
sq_jti_run(sqlite3 *db, const char *jti, int64_t exp_us, int64_t now_us,
    char *err, size_t errlen)
{
	static const char prune_jti[] = "DELETE FROM jti WHERE jti IN "
	    "(SELECT jti FROM jti WHERE exp_us <= ?1 ORDER BY exp_us LIMIT 64)";
	static const char insert_jti[] = "INSERT INTO jti(jti, exp_us) "
	    "VALUES (?1, ?2) ON CONFLICT(jti) DO NOTHING";
	sqlite3_stmt *st = NULL;
	int r = GK_ERR_UNAVAILABLE, in_tx = 0, rc;

	audit_set_err(err, errlen, "%s", "");
	if (db == NULL)
		return GK_ERR_UNAVAILABLE;
	if (exec_sql(db, "BEGIN IMMEDIATE", err, errlen) != 0)
		goto out;
	in_tx = 1;
	/* expired ids first, a few at a time, so an expired id is free */
	if ((rc = sqlite3_prepare_v2(db, prune_jti, -1, &st, NULL)) !=
	    SQLITE_OK || (rc = sqlite3_bind_int64(st, 1, now_us)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		audit_set_err(err, errlen, "%s", sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = sqlite3_prepare_v2(db, "DELETE FROM jti WHERE jti = ?1 "
	    "AND exp_us <= ?2", -1, &st, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 1, jti, -1, SQLITE_STATIC)) !=
	    SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, now_us)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		audit_set_err(err, errlen, "%s", sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = sqlite3_prepare_v2(db, insert_jti, -1, &st, NULL)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 1, jti, -1, SQLITE_STATIC)) !=
	    SQLITE_OK || (rc = sqlite3_bind_int64(st, 2, exp_us)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		audit_set_err(err, errlen, "%s", sqlite3_errstr(rc));
		goto out;
	}
	if (sqlite3_changes(db) == 0) {
		/* used before and not expired: nothing to commit */
		r = GK_ERR_EXISTS;
		goto out;
	}
	if (exec_sql(db, "COMMIT", err, errlen) != 0)
		goto out;
	in_tx = 0;
	r = 0;
out:
	sqlite3_finalize(st);
	if (in_tx && !sqlite3_get_autocommit(db)) {
		if (r == GK_ERR_EXISTS) {
			/* keep the pruning */
			if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) !=
			    SQLITE_OK)
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		} else {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		}
	}
	return r;
}

static int
sq_jti_use(audit_conn *base, const char *jti, int64_t exp_s)
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

/* ---- grants ------------------------------------------------------------ */

static int
sq_grant_put(audit_conn *base, const char *id, const char *access_key,
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

static int
sq_grant_get(audit_conn *base, int by_key, const char *v, gk_buf *doc,
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

static int
sq_grant_list(audit_conn *base, gk_audit_doc_fn fn, void *arg, char *err,
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

/* ---- verify scan ----------------------------------------------------- */

static int
read_cp(sqlite3_stmt *st, audit_checkpoint *cp, int with_sig)
{
	const unsigned char *inst = sqlite3_column_text(st, 0);
	const void *sig;
	size_t n = (size_t)sqlite3_column_bytes(st, 0);

	memset(cp, 0, sizeof(*cp));
	if (inst == NULL || n == 0 || n > AUDIT_INSTANCE_MAX)
		return GK_ERR_INTEGRITY;
	memcpy(cp->instance, inst, n);
	cp->seq = sqlite3_column_int64(st, 1);
	/* a malformed hash or signature is left zero: verify reports it */
	(void)blob_hash(st, 2, cp->hash);
	cp->time_us = sqlite3_column_int64(st, 3);
	if (with_sig && (sig = sqlite3_column_blob(st, 4)) != NULL &&
	    sqlite3_column_bytes(st, 4) == AUDIT_SIG_LEN)
		memcpy(cp->sig, sig, AUDIT_SIG_LEN);
	return 0;
}

static int
sq_scan(const char *db_path, const audit_scan_cb *cb, void *arg, char *err,
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
	int64_t v;

	gk_buf_init(&sql, 4096);
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		audit_set_err(err, errlen, "cannot open %s: %s", db_path,
		    db != NULL ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, AUDIT_BUSY_MS);
	if (query_int(db, "PRAGMA user_version", &v) != 0 ||
	    v != SCHEMA_VERSION) {
		audit_set_err(err, errlen, "%s: not an audit database of schema "
		    "version %" PRId64, db_path, SCHEMA_VERSION);
		goto out;
	}
	/* one read transaction: a consistent snapshot while a writer runs */
	if (exec_sql(db, "BEGIN", err, errlen) != 0)
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
				if (read_cp(st, &cp, i == 1) != 0)
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

const audit_backend audit_sqlite_backend = {
	.name = "sqlite",
	.local = 1,
	.open = sq_open,
	.close = sq_close,
	.same_target = sq_same_target,
	.flush = sq_flush,
	.tail = sq_tail,
	.insert = sq_insert,
	.prune_target = sq_prune_target,
	.prune_span = sq_prune_span,
	.search = sq_search,
	.scan = sq_scan,
	.jti_use = sq_jti_use,
	.grant_put = sq_grant_put,
	.grant_get = sq_grant_get,
	.grant_list = sq_grant_list,
};
