/*
 * sqlite.c - the SQLite backend of the audit log: its table of functions,
 * schema and migrations, and the writing connection (WAL, page cache, the
 * file's identity, durability settings). The rest: sqlite_insert.c,
 * sqlite_read.c (tail, search, verify scan), sqlite_prune.c, sqlite_kv.c
 * (replay cache, grants), on top of sqlite_util.c.
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
#include "audit/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
_Static_assert(GK_ARRAY_LEN(schema_steps) == AUDIT_SQ_SCHEMA_VERSION,
    "AUDIT_SQ_SCHEMA_VERSION: one more schema step");

/* The statements each writing connection prepares once. */
static const char insert_sql[] =
    "INSERT INTO audit(time_us, request_id, client_ip, client_addr,"
    " user_agent, origin, protocol, operation, root, path, status,"
    " decision, message, bytes, duration_us, country, kid, sub, jti,"
    " token_sig, instance_id, seq, prev_hash, hash)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

/* insert_sql's columns with AUDIT_SQ_INSERT_ROWS rows of values. */
static int
prepare_rows(struct sq_conn *c)
{
	gk_buf sql;
	int r = 0, i, k;

	gk_buf_init(&sql, 16384);
	r |= gk_buf_append(&sql, insert_sql, (size_t)(strstr(insert_sql,
	    " VALUES") - insert_sql));
	r |= gk_buf_append_str(&sql, " VALUES ");
	for (i = 0; i < AUDIT_SQ_INSERT_ROWS; i++) {
		r |= gk_buf_append_str(&sql, i > 0 ? ",(" : "(");
		for (k = 1; k <= AUDIT_SQ_INSERT_COLS; k++)
			r |= gk_buf_printf(&sql, k > 1 ? ",?%d" : "?%d",
			    i * AUDIT_SQ_INSERT_COLS + k);
		r |= gk_buf_append_str(&sql, ")");
	}
	if (r == 0 && sqlite3_prepare_v2(c->db, (const char *)sql.data, -1,
	    &c->ins_rows, NULL) != SQLITE_OK)
		r = -1;
	gk_buf_release(&sql);
	return r;
}

static const char cp_insert_sql[] =
    "INSERT INTO audit_checkpoint(instance_id, seq, hash, time_us, sig)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";


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

	if (audit_sq_query_int(db, "PRAGMA user_version", &v) != 0) {
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	if (v == SCHEMA_VERSION)
		return 0;
	if (audit_sq_exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
		goto out;
	in_tx = 1;
	/* again under the write lock: another process may have migrated */
	if (audit_sq_query_int(db, "PRAGMA user_version", &v) != 0) {
		audit_set_err(err, errlen, "%s", sqlite3_errmsg(db));
		goto out;
	}
	if (v < 0 || v > SCHEMA_VERSION) {
		audit_set_err(err, errlen, "schema version %" PRId64 " is not one "
		    "this program knows (%" PRId64 ")", v, SCHEMA_VERSION);
		goto out;
	}
	for (; v < SCHEMA_VERSION; v++) {
		if (audit_sq_exec(db, schema_steps[v], err, errlen) != 0)
			goto out;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%" PRId64,
	    SCHEMA_VERSION);
	if (audit_sq_exec(db, sql, err, errlen) != 0 ||
	    audit_sq_exec(db, "COMMIT", err, errlen) != 0)
		goto out;
	in_tx = 0;
	r = 0;
out:
	if (in_tx && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

void
audit_sq_close(audit_conn *base)
{
	struct sq_conn *c = SQ(base);

	if (c == NULL)
		return;
	audit_sq_ckpt_stop(c);
	free(c->path);
	sqlite3_finalize(c->ins);
	sqlite3_finalize(c->ins_rows);
	sqlite3_finalize(c->cp_ins);
	sqlite3_close(c->db);
	free(c);
}

int
audit_sq_open(const char *path, int create, audit_conn **out, char *err,
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
	if ((c->path = strdup(path)) == NULL) {
		audit_set_err(err, errlen, "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, AUDIT_BUSY_MS);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	if (audit_sq_exec(c->db, "PRAGMA trusted_schema=OFF", err, errlen) != 0)
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
	if (audit_sq_exec(c->db, "PRAGMA synchronous=FULL", err, errlen) != 0)
		goto out;
	if (create) {
		if (migrate(c->db, err, errlen) != 0)
			goto out;
	} else if (audit_sq_query_int(c->db, "PRAGMA user_version", &v) != 0 ||
	    v != SCHEMA_VERSION) {
		audit_set_err(err, errlen, "%s: not an audit database of schema "
		    "version %" PRId64, path, SCHEMA_VERSION);
		goto out;
	}
	if (sqlite3_prepare_v2(c->db, insert_sql, -1, &c->ins, NULL) !=
	    SQLITE_OK || prepare_rows(c) != 0 ||
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
	audit_sq_close(c != NULL ? &c->base : NULL);
	return r;
}

int
audit_sq_same_target(const audit_conn *base, const char *path)
{
	const struct sq_conn *c = (const struct sq_conn *)base;
	struct stat st;

	return c != NULL && stat(path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino;
}

int
audit_sq_flush(audit_conn *base)
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

int
audit_sqlite_set_full_sync(audit_conn *base, int full)
{
	return audit_sq_exec(SQ(base)->db, full ? "PRAGMA synchronous=FULL" :
	    "PRAGMA synchronous=NORMAL", NULL, 0);
}

int
audit_sqlite_journaled(audit_conn *base)
{
	/* the journal holds every batch durably before it is answered;
	 * the commits themselves need not wait for the disk, nor copy the
	 * WAL into the database (sqlite_ckpt.c; without its thread SQLite
	 * checkpoints as before) */
	if (audit_sq_exec(SQ(base)->db, "PRAGMA synchronous=NORMAL", NULL,
	    0) != 0)
		return GK_ERR_UNAVAILABLE;
	if (audit_sq_ckpt_start(SQ(base)) != 0)
		gk_warn("audit: no checkpoint thread; the writer checkpoints");
	return 0;
}

int
audit_sqlite_durable(audit_conn *base)
{
	struct sq_conn *c = SQ(base);
	int log = -1, done = -1;

	/* not BUSY because the checkpoint thread runs one just now */
	audit_sq_ckpt_idle(c);
	if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log, &done) != SQLITE_OK || log < 0 || done != log)
		return GK_ERR_UNAVAILABLE;
	return 0;
}

/*
 * A commit in the WAL is durable once the WAL is synced: recovery replays
 * every committed frame; a checkpoint syncs the database before it counts
 * frames as copied, and only then may a new transaction write the WAL
 * from its start again. So one sync of the WAL (what synchronous=FULL
 * does at each commit) makes every commit so far durable, without the
 * copy into the database and its sync that audit_sqlite_durable waits
 * for. The file synced is the one this connection writes (SQLite's own
 * handle, not a name looked up again).
 *
 * But the WAL starts over only after a checkpoint has copied all of it,
 * and under steady load the checkpoint thread never catches up with the
 * writer's commits: once the WAL holds WAL_SYNC_FRAMES_MAX frames this
 * declines, and the caller's audit_sqlite_durable copies
 * the rest on the writer's own connection, so the WAL starts over at the
 * next transaction (without it, measured: 350 MB of WAL after 10 s).
 */
#define WAL_SYNC_FRAMES_MAX (4 * 1024)

int
audit_sqlite_wal_sync(audit_conn *base)
{
	struct sq_conn *c = SQ(base);
	sqlite3_file *f = NULL;

	if (c->ckpt == NULL || audit_sq_ckpt_frames(c) > WAL_SYNC_FRAMES_MAX)
		return GK_ERR_UNAVAILABLE;
	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_JOURNAL_POINTER,
	    &f) != SQLITE_OK || f == NULL || f->pMethods == NULL ||
	    f->pMethods->xSync == NULL)
		return GK_ERR_UNAVAILABLE;
	return f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) == SQLITE_OK ? 0 :
	    GK_ERR_UNAVAILABLE;
}

const audit_backend audit_sqlite_backend = {
	.name = "sqlite",
	.local = 1,
	.open = audit_sq_open,
	.close = audit_sq_close,
	.same_target = audit_sq_same_target,
	.flush = audit_sq_flush,
	.tail = audit_sq_tail,
	.insert = audit_sq_insert,
	.prune_target = audit_sq_prune_target,
	.prune_span = audit_sq_prune_span,
	.search = audit_sq_search,
	.scan = audit_sq_scan,
	.jti_use = audit_sq_jti_use,
	.grant_put = audit_sq_grant_put,
	.grant_get = audit_sq_grant_get,
	.grant_swap = audit_sq_grant_swap,
	.grant_list = audit_sq_grant_list,
};
