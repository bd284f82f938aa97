/*
 * audit_int.h - private to src/audit: the SQLite backend used by the
 * writer thread (sqlite.c), address parsing, and debug hooks the unit
 * tests use to make group commit observable without timing.
 *
 * Nothing outside src/audit and tests/unit/test_audit.c includes this.
 */
#ifndef GK_AUDIT_INT_H
#define GK_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "util/util.h"

/* Bounded queue: audit_submit refuses with GK_ERR_UNAVAILABLE beyond. */
#define AUDIT_QUEUE_MAX 65536u
/* Records per transaction when cfg->audit_batch is 0, and the ceiling. */
#define AUDIT_BATCH_DEFAULT 512u
#define AUDIT_BATCH_MAX 65536u
/* Each string field of a record is cut (on a UTF-8 boundary) to this. */
#define AUDIT_FIELD_MAX 8192u
/* Rows deleted per retention transaction, so writes wait little. */
#define AUDIT_PRUNE_CHUNK 500u
/* How long a connection waits for another writer's lock (ms). */
#define AUDIT_BUSY_MS 5000

/* ---- sqlite.c: one read-write connection ---------------------------- */

typedef struct audit_conn audit_conn;

/*
 * Opens path read-write with WAL and synchronous=FULL. With create set,
 * creates the directory (0700) and the file (0600) when missing and
 * migrates the schema to the current version; without, the file must be
 * an audit database of the current version. GK_ERR_UNAVAILABLE when the
 * database cannot be opened; err (may be NULL) says why. Nothing logged.
 */
int audit_conn_open(const char *path, int create, audit_conn **out,
    char *err, size_t errlen) GK_WUR;
/*
 * 1 if path still names the file c has open (0 when it was deleted,
 * renamed or replaced: the connection would write to a ghost file).
 */
int audit_conn_same_file(const audit_conn *c, const char *path);
/*
 * Copies the whole WAL into the database file c has open and truncates
 * the WAL (waits up to AUDIT_BUSY_MS for readers). SQLite skips this on
 * close when the file was moved, so call it before closing a connection
 * whose path changed, or its last records stay behind in PATH-wal.
 */
int audit_conn_checkpoint(audit_conn *c) GK_WUR;
/* Closes; c may be NULL. */
void audit_conn_close(audit_conn *c);
/*
 * Inserts n records in ONE transaction (one fsync). On any failure rolls
 * back and returns GK_ERR_UNAVAILABLE: none of them is stored.
 */
int audit_conn_insert(audit_conn *c, const gk_audit_record *const *recs,
    size_t n, char *err, size_t errlen) GK_WUR;
/*
 * Deletes at most max_rows of the oldest rows with time_us < before_us in
 * one transaction; *deleted gets how many (fewer than max_rows: done).
 */
int audit_conn_prune_chunk(audit_conn *c, int64_t before_us,
    unsigned max_rows, uint64_t *deleted, char *err, size_t errlen) GK_WUR;

/*
 * The v2 replay cache: in ONE transaction, deletes a few expired ids
 * (exp_us <= now_us), then records jti until exp_us. 0 when new,
 * GK_ERR_EXISTS when jti is recorded and not expired, GK_ERR_UNAVAILABLE
 * when the database cannot be written.
 */
int audit_conn_jti_use(audit_conn *c, const char *jti, int64_t exp_us,
    int64_t now_us, char *err, size_t errlen) GK_WUR;

/* ---- addresses ------------------------------------------------------ */

/*
 * Parses an IPv4 or IPv6 address, optionally with "/len", into the
 * 16-byte IPv4-mapped form and the inclusive range [lo, hi] it covers
 * (host bits of a CIDR are ignored). GK_ERR_INVALID when malformed.
 */
int audit_ip_range(const char *s, uint8_t lo[16], uint8_t hi[16]) GK_WUR;

/* ---- debug hooks (tests) -------------------------------------------- */

typedef struct {
	uint64_t commits;	/* transactions committed */
	uint64_t committed;	/* records in them */
	uint64_t failed_batches;
	uint64_t failed;	/* records answered GK_ERR_UNAVAILABLE */
	uint64_t max_batch;	/* largest batch taken */
	uint64_t pruned;	/* rows deleted by retention */
	uint64_t prune_passes;	/* completed retention passes */
	size_t queued;		/* records waiting now */
} audit_stats;

void audit_debug_stats(gk_audit *a, audit_stats *out);
/* While paused the writer takes nothing (except when closing). */
void audit_debug_pause(gk_audit *a, int paused);
/* Blocks until at least n records are queued. */
void audit_debug_wait_queued(gk_audit *a, size_t n);
/* Blocks until the queue is empty, no batch is in flight and no
 * retention pass is pending. */
void audit_debug_wait_idle(gk_audit *a);
/* Lowers the queue bound (0: AUDIT_QUEUE_MAX). */
void audit_debug_set_queue_max(gk_audit *a, size_t max);

#endif
