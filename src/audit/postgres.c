/*
 * postgres.c - the PostgreSQL backend of the audit log (libpq): its table
 * of functions (pg_db.c, pg_insert.c, pg_read.c, pg_prune.c, pg_kv.c).
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
	.grant_list = audit_pg_grant_list,
};

