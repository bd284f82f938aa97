/*
 * audit.h - the audit folder's whole interface: the record, the writer
 * thread with group commit, search and retention.
 *
 * Strict mode: a caller that grants something submits the record and
 * answers only after its done-callback reports 0 (the record is committed
 * in a transaction). A writer thread drains the queue and commits up to
 * cfg->audit_batch records per transaction, so many requests share one
 * fsync. If the database cannot be written, every record of the failed
 * batch gets GK_ERR_UNAVAILABLE and the caller answers 503 for grants.
 *
 * Backend: SQLite in WAL mode (synchronous=FULL). Schema in sqlite.c
 * (table audit, schema version in PRAGMA user_version). The writer
 * follows the configured path: after a failed batch it reopens the file,
 * so the log recovers when the disk comes back; if the file is moved or
 * replaced while open, it checkpoints the old file and reopens the path.
 */
#ifndef GK_AUDIT_H
#define GK_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include "util/util.h"

struct gk_config;

#define GK_REQID_LEN 32 /* hex chars */

/*
 * One decision. All strings may be NULL (stored as NULL; an empty
 * request_id or client_ip is stored as NULL too). audit_submit copies
 * everything, so the caller may free its strings right after. Each
 * string is cut to 8192 bytes on a UTF-8 boundary; bytes above INT64_MAX
 * are stored as INT64_MAX. If client_addr is all zero and client_ip
 * parses as an address, client_addr is filled from it.
 */
typedef struct {
	int64_t time_us;	/* request start, unix µs UTC */
	char request_id[GK_REQID_LEN + 1];
	char client_ip[46];	/* text form */
	uint8_t client_addr[16]; /* IPv4-mapped IPv6, for CIDR search */
	const char *user_agent;
	const char *origin;
	const char *protocol;	/* "v1", "data", "upload", ... */
	const char *operation;	/* "GET_Object", "PUT_Object", ... */
	const char *root;
	const char *path;	/* as requested (decoded) */
	int status;		/* HTTP status answered */
	const char *decision;	/* "allow", "deny" or "error" */
	const char *message;	/* the JSON msg or a short reason */
	uint64_t bytes;		/* body bytes moved (or planned) */
	int64_t duration_us;
	const char *country;	/* ISO 3166 code of the client, if known */
	const char *kid;	/* v2: the vendor key id */
	const char *sub;	/* v2: the vendor's user id */
	const char *jti;	/* v2: the token id */
	const char *token_sig;	/* v2: the vendor's signature (base64url) */
} gk_audit_record;

typedef struct gk_audit gk_audit;

/*
 * Opens (creating if needed: directory 0700, file 0600) the database at
 * cfg->audit_db and starts the writer thread, which commits up to
 * cfg->audit_batch records per transaction (0: 512). Prunes records older
 * than cfg->retention_days (0: keep forever) at start and then hourly, in
 * chunks of 500 rows between batches. Returns GK_ERR_CONFIG without a
 * path, GK_ERR_UNAVAILABLE (logged) when the database cannot be opened.
 */
int audit_open(const struct gk_config *cfg, gk_audit **out) GK_WUR;
/*
 * Refuses new submissions, commits everything already queued (done is
 * called for each), joins the writer and frees a; NULL ok. No other
 * thread may use a once this is called.
 */
void audit_close(gk_audit *a);

/*
 * Called exactly once per accepted submission, from the writer thread
 * with no audit lock held, with 0 when the record is committed or
 * GK_ERR_UNAVAILABLE when it could not be written (the whole batch was
 * rolled back). Must not block; may call audit_submit.
 */
typedef void (*gk_audit_done_fn)(void *arg, int result);

/*
 * Queues a copy of rec. Returns 0 (done will be called; done may be NULL
 * for fire-and-forget) or an error (GK_ERR_NOMEM, GK_ERR_UNAVAILABLE when
 * closing or the queue holds 65536 records); then done is never called.
 */
int audit_submit(gk_audit *a, const gk_audit_record *rec,
    gk_audit_done_fn done, void *arg) GK_WUR;
/* Submits and waits for the commit; returns its result (0 or
 * GK_ERR_UNAVAILABLE). Do not call from a done callback. */
int audit_write(gk_audit *a, const gk_audit_record *rec) GK_WUR;

/*
 * The v2 replay cache (token 'jti'), in the audit database so it holds
 * across restarts (and, with a shared database, instances). Records jti
 * as used until exp_s (unix seconds, the token's exp). Returns 0 on its
 * first use, GK_ERR_EXISTS when it was used before and exp has not passed
 * (a replay), GK_ERR_UNAVAILABLE when the database cannot be written (the
 * caller answers 503). Expired ids are pruned as it goes. Synchronous
 * (one commit on its own connection); thread safe; jti is 1..256 bytes.
 */
int audit_jti_use(gk_audit *a, const char *jti, int64_t exp_s) GK_WUR;

/* Filters for search; zero/NULL fields do not filter. */
typedef struct {
	int64_t from_us;	/* time >= from (0: none) */
	int64_t to_us;		/* time < to (0: none) */
	const char *ip;		/* address or CIDR, v4 or v6 (host bits
				 * ignored); matched on client_addr */
	const char *operation;
	int status;		/* 0: any */
	const char *decision;
	const char *path_prefix; /* byte prefix, no wildcards */
	unsigned limit;		/* 0: 100 */
} gk_audit_query;

/* A row as read back (strings valid only during the callback). */
typedef struct {
	int64_t id;
	gk_audit_record rec;
} gk_audit_row;

typedef int (*gk_audit_row_fn)(void *arg, const gk_audit_row *row);

/*
 * Searches the database at db_path (read-only connection; safe while a
 * writer runs), newest first (time, then id, descending). Returns 0,
 * GK_ERR_INVALID (bad filter: err says which, e.g. "bad --ip value"),
 * GK_ERR_IO (err says why; a missing file is not created). Stops early
 * and returns fn's value if fn returns non-zero. err may be NULL.
 */
int audit_search(const char *db_path, const gk_audit_query *q,
    gk_audit_row_fn fn, void *arg, char *err, size_t errlen) GK_WUR;

/*
 * Deletes records with time_us < before_us from an existing audit
 * database, 500 rows per transaction; *deleted (may be NULL) gets the
 * count, also of a partial run. GK_ERR_IO when the file is missing, not
 * an audit database of this version, or a deletion fails.
 */
int audit_prune(const char *db_path, int64_t before_us,
    uint64_t *deleted) GK_WUR;

#endif
