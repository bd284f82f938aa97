/*
 * sqlite.c - the SQLite backend of the audit log: its table of functions.
 * sqlite_db.c (connection, schema), sqlite_insert.c, sqlite_read.c
 * (tail, search, verify scan), sqlite_prune.c, sqlite_kv.c (replay cache,
 * grants).
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
	.grant_list = audit_sq_grant_list,
};
