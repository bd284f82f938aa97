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
 * Backends: SQLite in WAL mode, schema in sqlite.c, with its journal
 * (journal.c: the durable record; every batch is flushed to it while
 * SQLite commits without waiting for the disk, several batches per
 * commit under load);
 * PostgreSQL (cfg->audit_backend "postgres", cfg->audit_dsn), schema in
 * postgres.c. After a failed batch the writer reopens the store, so the
 * log recovers when the disk or database comes back; a SQLite file moved
 * or replaced while open is checkpointed and the path reopened.
 *
 * Hash chain: the writer gives each record of its instance the next
 * sequence number, prev_hash (the previous record's hash) and hash =
 * SHA-256(prev_hash || canonical encoding), in commit order (chain.c,
 * README "Proving the audit log"). Every cfg->checkpoint_records records
 * or cfg->checkpoint_seconds seconds (and at close) it signs a checkpoint
 * (instance, seq, hash, time) with the Ed25519 audit key, stores it in
 * the same transaction and appends it to cfg->audit_checkpoint_file.
 */
#ifndef GK_AUDIT_H
#define GK_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include "util/util.h"


#define GK_REQID_LEN 32 /* hex chars */

/*
 * One decision. All strings may be NULL (stored as NULL; an empty
 * request_id or client_ip is stored as NULL too). audit_submit copies
 * everything, so the caller may free its strings right after. Each
 * string is cut on a UTF-8 boundary to 8192 bytes (user_agent and
 * origin, which the client chooses, to 256) and then ends in "...[cut]"
 * (U+2026); then any invalid UTF-8 is replaced by U+FFFD (stored text is
 * valid UTF-8 on every backend, and the hash covers what is stored);
 * bytes above INT64_MAX
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

/* What the audit writer takes from the config ([audit]; config/ fills
 * it). Strings and the key are borrowed for the call to audit_open. */
typedef struct audit_settings {
	const char *target;	/* SQLite file or postgres:// URI */
	unsigned batch;		/* records per transaction, 0: 4096 */
	unsigned retention_days; /* 0: keep forever */
	const char *checkpoint_file;	/* NULL or "": none */
	unsigned checkpoint_records;	/* 0: 1000 */
	unsigned checkpoint_seconds;	/* 0: 60 */
	const uint8_t *key;	/* Ed25519 seed signing checkpoints, or NULL */
	size_t key_len;
	const char *instance_id;	/* NULL or "": from keys_dir */
	unsigned min_free_mb;	/* SQLite: refusals dropped below it, 0 off */
	const char *keys_dir;
} audit_settings;

/*
 * Opens (creating if needed: directory 0700, file 0600) the database at
 * s->target and starts the writer thread, which commits up to s->batch
 * records per transaction (0: 4096). Prunes whole checkpointed spans
 * signed before s->retention_days (0: keep forever) at start and then
 * hourly, one span per transaction between batches. The instance id is
 * s->instance_id or <keys_dir>/instance.id (made on first use);
 * checkpoints are signed only with s->key.
 * Returns GK_ERR_CONFIG without a target or with a bad instance id,
 * GK_ERR_UNAVAILABLE when a SQLite file cannot be opened (or its chain or
 * journal read); on failure err holds the cause in one line (not logged:
 * the caller reports it). A PostgreSQL server that cannot be reached is
 * not an error: the writer answers every batch GK_ERR_UNAVAILABLE until
 * it connects.
 */
int audit_open(const audit_settings *s, gk_audit **out, char *err,
    size_t errlen) GK_WUR;
/*
 * The same with its own hash chain "<instance>.<suffix>" (1-128 of the
 * instance characters in all), for a command-line tool writing next to a
 * running server (whose chain it must not extend).
 */
int audit_open_as(const audit_settings *s, const char *suffix,
    gk_audit **out, char *err, size_t errlen) GK_WUR;
/*
 * Refuses new submissions, commits everything already queued (done is
 * called for each), joins the writer and frees a; NULL ok. No other
 * thread may use a once this is called.
 */
void audit_close(gk_audit *a);

/*
 * For shutdown: every record queued and not yet taken by the writer is
 * dropped and its done is called now with GK_ERR_UNAVAILABLE (so nothing
 * is recorded that its caller then refuses). A batch being written still
 * ends as usual. New submissions are taken as before.
 */
void audit_abandon(gk_audit *a);

/*
 * Called from the writer thread after each checkpoint is committed and
 * appended to the checkpoint file: line is the checkpoint file's line
 * (JSON, no newline), valid during the call. Must not block: hand the
 * work to another thread. Set once, before traffic.
 */
typedef void (*gk_audit_cp_fn)(void *arg, const char *instance, int64_t seq,
    const char *line);
void audit_on_checkpoint(gk_audit *a, gk_audit_cp_fn fn, void *arg);

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
 * A refusal (decision other than "allow") is not queued, GK_ERR_TOO_LARGE,
 * while the queue is half full or the SQLite file system has less than
 * min_free_mb free: a flood of refusals cannot take the room
 * grants need (counted in refusals_dropped).
 */
int audit_submit(gk_audit *a, const gk_audit_record *rec,
    gk_audit_done_fn done, void *arg) GK_WUR;
/* This writer's instance id (its hash chain); valid until audit_close. */
const char *audit_instance(const gk_audit *a);
/* Counters for /metrics, since audit_open. */
typedef struct {
	uint64_t fields_cut;	/* text fields cut to their cap */
	uint64_t refusals_dropped; /* refusal records not written (room) */
	int low_space;		/* 1 while below min_free_mb */
} gk_audit_counters;
void audit_counters(gk_audit *a, gk_audit_counters *out);

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

/*
 * Grants (src/grant) live in the audit database, so instances sharing a
 * PostgreSQL database share them. The audit folder stores each grant as an
 * opaque document (src/grant's JSON, its secret already encrypted) under
 * its id and access key id; it never reads it. A handle keeps one
 * connection (reopened after a failure) and is thread safe.
 */
typedef struct gk_audit_grants gk_audit_grants;
/* fn gets id, access key id and document (valid during the call). */
typedef int (*gk_audit_doc_fn)(void *arg, const char *id,
    const char *access_key, const char *doc);

/* Opens target (creating/migrating the schema). GK_ERR_UNAVAILABLE with
 * err saying why (a PostgreSQL server that is down is not an error: each
 * call then tries to connect). */
int audit_grants_open(const char *target, gk_audit_grants **out, char *err,
    size_t errlen) GK_WUR;
void audit_grants_close(gk_audit_grants *g);
/* Inserts or replaces id's document: 0, GK_ERR_EXISTS (access key taken
 * by another grant), GK_ERR_UNAVAILABLE (err says why). */
int audit_grants_put(gk_audit_grants *g, const char *id,
    const char *access_key, const char *doc, char *err, size_t errlen) GK_WUR;
/* The document of a grant by id (by_key 0) or access key id (1), replacing
 * doc's content: 0, GK_ERR_NOT_FOUND, GK_ERR_UNAVAILABLE. */
int audit_grants_get(gk_audit_grants *g, int by_key, const char *v,
    gk_buf *doc, char *err, size_t errlen) GK_WUR;
/*
 * Replaces id's access key and document with new_doc only if the document
 * is still old_doc, in one conditional UPDATE, so that of two processes
 * changing the same grant at once (two revokes) exactly one succeeds: 0,
 * GK_ERR_DENIED (someone else changed or removed it since old_doc was
 * read), GK_ERR_EXISTS (access key taken by another grant),
 * GK_ERR_UNAVAILABLE.
 */
int audit_grants_swap(gk_audit_grants *g, const char *id,
    const char *access_key, const char *old_doc, const char *new_doc,
    char *err, size_t errlen) GK_WUR;
/* Every grant ordered by id: 0, fn's non-zero value, GK_ERR_UNAVAILABLE. */
int audit_grants_list(gk_audit_grants *g, gk_audit_doc_fn fn, void *arg,
    char *err, size_t errlen) GK_WUR;

/* Filters for search; zero/NULL fields do not filter. */
typedef struct {
	const char *country;	/* exact */
	const char *kid;
	const char *sub;
	const char *request_id;
	/* cursor: only rows strictly older than (before_time_us, before_id)
	 * in the (time_us, id) order; before_id 0: no cursor */
	int64_t before_time_us;
	int64_t before_id;
	int64_t from_us;	/* time >= from (0: none) */
	int64_t to_us;		/* time < to (0: none) */
	const char *ip;		/* address or CIDR, v4 or v6 (host bits
				 * ignored); matched on client_addr */
	const char *operation;
	int status;		/* 0: any */
	const char *decision;
	const char *path_prefix; /* byte prefix, no wildcards */
	unsigned limit;		/* 0: 100 */
	int oldest_first;	/* order by time, id ascending (export) */
	/* one instance's chain in order (audit out): with instance_id set,
	 * only its records with seq > after_seq, ordered by seq ascending
	 * (the time order and the cursor above are then ignored) */
	const char *instance_id;
	int64_t after_seq;
} gk_audit_query;

/* A row as read back (strings valid only during the callback). */
typedef struct {
	int64_t id;
	gk_audit_record rec;
	/* the hash chain; chained is 0 for a row without one */
	int chained;
	int altered;	/* a stored value does not fit the record's form
			 * (over-long request id, address): not as written */
	char instance_id[129];
	int64_t seq;
	uint8_t prev_hash[32];
	uint8_t hash[32];
} gk_audit_row;

typedef int (*gk_audit_row_fn)(void *arg, const gk_audit_row *row);

/* 1 when db_path names a SQLite file (not a URI). */
int audit_backend_is_file(const char *db_path);
/* How to name db_path in messages: the path, or "PostgreSQL host/db"
 * without user or password. Static storage: one thread at a time. */
const char *audit_label(const char *db_path);

/*
 * Searches the database at db_path (read-only connection; safe while a
 * writer runs), newest first (time, then id, descending) unless
 * q->oldest_first. Rows stream to fn one at a time (constant memory).
 * Returns 0, GK_ERR_INVALID (bad filter: err says which, e.g. "bad --ip
 * value"),
 * GK_ERR_IO (err says why; a missing file is not created). Stops early
 * and returns fn's value if fn returns non-zero. err may be NULL.
 */
int audit_search(const char *db_path, const gk_audit_query *q,
    gk_audit_row_fn fn, void *arg, char *err, size_t errlen) GK_WUR;

/*
 * Deletes whole spans of each chain, from its start up to the newest
 * checkpoint signed before before_us (at most now), one span (between
 * two checkpoints) per transaction, and records the last checkpoint
 * deleted as the chain's anchor so the rest still verifies. First, per
 * chain, it appends a prune record to it (protocol "audit", operation
 * "prune", sub who, path "prune:SEQ:HASH:CUTOFF_US") with a checkpoint
 * signed over it with seed (the Ed25519 audit key): verify accepts an
 * anchor only when such a record allows it. Records after the last
 * checkpoint are never deleted. *deleted (may be NULL) gets the count,
 * also of a partial run. GK_ERR_CONFIG without seed or who; GK_ERR_IO
 * when the file is missing, not an audit database of this version, or a
 * write fails.
 */
int audit_prune(const char *db_path, int64_t before_us,
    const uint8_t seed[32], const char *who, uint64_t *deleted) GK_WUR;

/*
 * Appends row as one JSON object (no newline): id, time (ISO 8601),
 * time_us, the record's fields (invalid UTF-8 shown as U+FFFD), and
 * instance_id, seq, hash (hex) of the chain (null when unchained).
 */
int audit_row_json(gk_buf *b, const gk_audit_row *row) GK_WUR;

/*
 * Audit out (export_out.c): with [audit_out] syslog and/or webhook set,
 * one thread per output streams the committed records of instance's
 * chain, in seq order, to the customer's SIEM, resuming after the last
 * acknowledged seq (kept in <state_dir>/audit-out-<output>.seq). Reads
 * the audit store, never the request path. *out is NULL when no output
 * is configured. GK_ERR_CONFIG (logged) for a bad setting.
 */
typedef struct audit_out audit_out;
/* What audit out takes from the config ([audit_out]; config/ fills it).
 * Copied by audit_out_start; the strings must outlive the outputs. */
typedef struct audit_out_settings {
	const char *target;		/* the audit store read from */
	const char *data_dir;
	const char *out_syslog;		/* tcp:// or tls://host:port, "" off */
	const char *out_syslog_ca_file;
	const char *out_syslog_cert_file;	/* client certificate, "" none */
	const char *out_syslog_key_file;
	const char *out_webhook;	/* http(s):// URL, "" off */
	const char *out_webhook_token_file;
	const char *out_webhook_ca_file;
	const char *out_webhook_cert_file;	/* client certificate, "" none */
	const char *out_webhook_key_file;
	const char *out_state_dir;	/* acknowledged positions */
	unsigned out_batch;
	unsigned out_retry_seconds;
} audit_out_settings;
int audit_out_start(const audit_out_settings *cfg, const char *instance,
    audit_out **out) GK_WUR;
/* Stops and joins the threads (a send in progress finishes or times
 * out); o may be NULL. */
void audit_out_stop(audit_out *o);

/* One problem verify found: a full sentence naming the record (seq and
 * row id) or checkpoint. */
typedef void (*gk_audit_problem_fn)(void *arg, const char *msg);

typedef struct {
	uint64_t records;
	uint64_t checkpoints;	/* distinct, database and file */
	uint64_t instances;
	uint64_t problems;
} gk_audit_verify_stats;

/*
 * Recomputes every chain in db_path and checks every checkpoint
 * (database, and cp_file when not NULL) against the Ed25519 public keys
 * pubs (npub keys of 32 bytes; a checkpoint any of them verifies is
 * good, so logs signed before a key rotation still verify); calls fn
 * for each problem: a modified record, a deleted or
 * inserted one, a cut tail up to the last checkpoint, a forged or
 * deleted checkpoint, a bad prune anchor, an anchor no prune record
 * allows (records deleted by hand), a prune record whose cut-off lies
 * less than min_prune_age_us before it (younger than the retention; 0:
 * not checked). Returns 0 when the check ran (st->problems says whether
 * all holds), GK_ERR_IO (err says why) when the store or cp_file cannot
 * be read.
 */
int audit_verify(const char *db_path, const uint8_t *pubs, size_t npub,
    const char *cp_file, int64_t min_prune_age_us, gk_audit_problem_fn fn,
    void *arg, gk_audit_verify_stats *st, char *err, size_t errlen) GK_WUR;

/* The Ed25519 public key of a checkpoint-signing seed (32 bytes each). */
int audit_key_public(const uint8_t seed[32], uint8_t pub[32]) GK_WUR;
/* Reads a 64-hex-digit Ed25519 public key file. GK_ERR_IO/INVALID. */
int audit_read_pubkey(const char *path, uint8_t pub[32]) GK_WUR;

#endif
