/*
 * audit_int.h - private to src/audit: the hash chain (chain.c), the
 * backend table (sqlite.c, postgres.c), address parsing, and debug hooks
 * the unit tests use to make group commit observable without timing.
 *
 * Nothing outside src/audit and tests/unit/test_audit.c includes this.
 */
#ifndef GK_AUDIT_INT_H
#define GK_AUDIT_INT_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "util/util.h"

/* Bounded queue: audit_submit refuses with GK_ERR_UNAVAILABLE beyond. */
#define AUDIT_QUEUE_MAX 65536u
/* Records per transaction when cfg->audit_batch is 0, and the ceiling. */
#define AUDIT_BATCH_DEFAULT 4096u
#define AUDIT_BATCH_MAX 65536u
/* Each string field of a record is cut (on a UTF-8 boundary) to this;
 * what the client chooses freely (User-Agent, Origin) to the smaller
 * AUDIT_CLIENT_FIELD_MAX. A cut field ends in AUDIT_CUT_MARK. */
#define AUDIT_FIELD_MAX 8192u
#define AUDIT_CLIENT_FIELD_MAX 256u
#define AUDIT_CUT_MARK "\xe2\x80\xa6[cut]"
/* Rows deleted per retention transaction, so writes wait little. */
#define AUDIT_PRUNE_CHUNK 500u
/* How long a connection waits for another writer's lock (ms). */
#define AUDIT_BUSY_MS 5000

/* ---- chain.c: hash chain and checkpoints ----------------------------- */

#define AUDIT_HASH_LEN 32
#define AUDIT_SIG_LEN 64
#define AUDIT_KEY_LEN 32	/* Ed25519 seed and public key */
#define AUDIT_INSTANCE_MAX 128
/* The path of a prune record: the checkpoint it prunes to (seq, hash in
 * hex) and the cut-off (signed before, unix µs). */
#define AUDIT_PRUNE_PATH_FMT "prune:%" PRId64 ":%s:%" PRId64
/* Scratch buffer cap for one record's canonical encoding. */
#define AUDIT_ENC_CAP (16u * (AUDIT_FIELD_MAX + 8) + 4096)

/* A record's place in its instance's chain. */
typedef struct {
	int64_t seq;		/* 1, 2, ... per instance */
	uint8_t prev[AUDIT_HASH_LEN];
	uint8_t hash[AUDIT_HASH_LEN];
} audit_link;

/* A signed statement "instance's chain has hash at seq" (also used for
 * prune anchors, whose sig is not used). */
typedef struct {
	char instance[AUDIT_INSTANCE_MAX + 1];
	int64_t seq;
	uint8_t hash[AUDIT_HASH_LEN];
	int64_t time_us;
	uint8_t sig[AUDIT_SIG_LEN];
} audit_checkpoint;

/*
 * out = SHA-256 of prev and the canonical encoding of rec as stored
 * (see chain.c and README). scratch is reused between calls (cap
 * AUDIT_ENC_CAP).
 */
int audit_chain_hash(gk_buf *scratch, const char *instance, int64_t seq,
    const uint8_t prev[AUDIT_HASH_LEN], const gk_audit_record *rec,
    uint8_t out[AUDIT_HASH_LEN]) GK_WUR;
/* Fills cp->sig from the other fields with the Ed25519 seed. */
int audit_cp_sign(audit_checkpoint *cp, const uint8_t seed[AUDIT_KEY_LEN])
    GK_WUR;
/* 0 when cp->sig is valid for pub, GK_ERR_AUTH otherwise. */
int audit_cp_verify(const audit_checkpoint *cp,
    const uint8_t pub[AUDIT_KEY_LEN]) GK_WUR;
/* One checkpoint file line (JSON, '\n'-terminated) into out. */
int audit_cp_line(const audit_checkpoint *cp, gk_buf *out) GK_WUR;
/* Parses a line audit_cp_line wrote. GK_ERR_INVALID otherwise. */
int audit_cp_parse(const char *line, audit_checkpoint *cp) GK_WUR;
/* Appends cp's line to path (created 0644) and fsyncs. GK_ERR_IO. */
int audit_cp_append(const char *path, const audit_checkpoint *cp) GK_WUR;
/* 1 if s is 1-128 of A-Z a-z 0-9 - _ . : */
int audit_instance_valid(const char *s);
/*
 * The instance id: configured if set (GK_ERR_CONFIG if invalid), else
 * the content of keys_dir/instance.id, created with a random id on first
 * use; "default" when keys_dir is NULL (tests).
 */
int audit_instance_resolve(const char *configured, const char *keys_dir,
    char out[AUDIT_INSTANCE_MAX + 1]) GK_WUR;

/*
 * Decodes a canonical encoding (without the leading prev hash) back into
 * its instance, seq and record; the strings live in *block (malloc'd,
 * the caller frees it). GK_ERR_INTEGRITY when it is not one.
 */
int audit_chain_decode(const uint8_t *enc, size_t n,
    char instance[AUDIT_INSTANCE_MAX + 1], int64_t *seq,
    gk_audit_record *rec, char **block) GK_WUR;

/* ---- journal.c: the SQLite backend's durable record ------------------ */

/* Emptied once SQLite itself holds more than this durably. */
#define AUDIT_JOURNAL_FLUSH (4 * 1024 * 1024)
/* An idle writer makes SQLite durable this long after its last batch
 * (the journal is then empty: its loss while idle loses nothing). */
#define AUDIT_IDLE_DURABLE_US 1000000

typedef struct audit_journal audit_journal;

/* Opens (creating, 0600) <db_path>.journal, or with a chain suffix
 * (a command-line writer) <db_path>.<suffix>.journal locked for it. */
int audit_journal_open(const char *db_path, const char *suffix,
    audit_journal **out, char *err, size_t errlen) GK_WUR;
void audit_journal_close(audit_journal *j);
const char *audit_journal_path(const audit_journal *j);
/* Adds an entry to the batch being built. */
int audit_journal_add_record(audit_journal *j, const uint8_t *enc,
    size_t n, const uint8_t hash[AUDIT_HASH_LEN]) GK_WUR;
int audit_journal_add_cp(audit_journal *j, const audit_checkpoint *cp)
    GK_WUR;
/* Writes the batch and flushes it to the disk: 0 when it is there. */
int audit_journal_flush(audit_journal *j) GK_WUR;
/* Ends the batch: keeps it (keep: flushed) or cuts it off again. */
void audit_journal_end(audit_journal *j, int keep);
int64_t audit_journal_size(const audit_journal *j);
/* Empties the journal (everything in it is durable in SQLite): the
 * next batch goes to offset 0, the file kept for reuse, or with shrink
 * set truncated to 0 bytes. */
int audit_journal_reset(audit_journal *j, int shrink) GK_WUR;
/* What happened to the journal file since it was opened: 0 when it is
 * still the file at its path with every block written (one fstat and
 * one stat); else how it was lost. */
#define AUDIT_JOURNAL_DELETED 1
#define AUDIT_JOURNAL_REPLACED 2
#define AUDIT_JOURNAL_TRUNCATED 3
int audit_journal_check(const audit_journal *j);
const char *audit_journal_lost_name(int how);
/* After a loss (how, from _check), once SQLite holds every record
 * durably: an empty journal at the path again (truncated: the same file
 * emptied; deleted: a new one; replaced: the file found there moved to
 * <path>.replaced-<time> and a new one), locked like _open's and its
 * name synced; a batch being built is dropped (SQLite holds it). On
 * failure the old file stays in use (its descriptor can still be
 * replayed). */
int audit_journal_renew(audit_journal *j, int how, char *err,
    size_t errlen) GK_WUR;
/* One entry: a record (enc, n, hash) or a checkpoint (cp). */
typedef int (*audit_journal_entry_fn)(void *arg, const uint8_t *enc,
    size_t n, const uint8_t *hash, const audit_checkpoint *cp);
/* Calls fn for each entry of the content in order (journal.c's recovery
 * contract: a torn last batch, zeros or older batches past the end are
 * not read); stops at fn's first non-zero value and returns it;
 * GK_ERR_INTEGRITY for an altered journal. */
int audit_journal_replay(audit_journal *j, audit_journal_entry_fn fn,
    void *arg) GK_WUR;
/* The reading _replay does, on len bytes of a journal file in memory:
 * fn (may be NULL) gets each entry of the content; *end where the content
 * ends. Returns what _replay would (GK_ERR_INTEGRITY: altered). */
int audit_journal_scan(const uint8_t *data, size_t len,
    audit_journal_entry_fn fn, void *arg, size_t *end) GK_WUR;

/* ---- backends: sqlite.c, postgres.c --------------------------------- */

/*
 * A backend connection. Each backend's own struct starts with this
 * member and is cast back by the backend's functions.
 */
typedef struct audit_backend audit_backend;
typedef struct audit_conn {
	const audit_backend *ops;
} audit_conn;

/* Where an instance's chain ends, as stored. */
typedef struct {
	int64_t seq;		/* 0: empty chain */
	uint8_t hash[AUDIT_HASH_LEN]; /* zeros for an empty chain */
	int64_t cp_seq;		/* last checkpoint (0: none) */
	int64_t cp_time_us;
} audit_tail;

/* What verify reads: anchors and checkpoints first (each ordered by
 * instance, seq), then every record ordered by instance, seq, id. */
typedef struct {
	int (*anchor)(void *arg, const audit_checkpoint *cp);
	int (*checkpoint)(void *arg, const audit_checkpoint *cp);
	gk_audit_row_fn record;
} audit_scan_cb;

struct audit_backend {
	const char *name;
	/* 1: the target is a local file (a missing one is a setup error at
	 * start); 0: a server, which may come up after us */
	int local;
	/*
	 * Opens target read-write. With create set, creates and migrates
	 * the schema; without, it must be an audit store of the current
	 * version. GK_ERR_UNAVAILABLE (err says why; nothing logged).
	 */
	int (*open)(const char *target, int create, audit_conn **out,
	    char *err, size_t errlen);
	void (*close)(audit_conn *c);
	/* 1 if target still names what c has open (SQLite: same inode). */
	int (*same_target)(const audit_conn *c, const char *target);
	/* Makes everything written durable in the store itself (SQLite:
	 * WAL checkpoint); 0 where there is nothing to do. */
	int (*flush)(audit_conn *c);
	int (*tail)(audit_conn *c, const char *instance, audit_tail *out,
	    char *err, size_t errlen);
	/*
	 * Inserts n records with their links, and cp when not NULL, in ONE
	 * transaction. On failure none is stored: GK_ERR_UNAVAILABLE, or
	 * GK_ERR_EXISTS when a record's (instance, seq) is taken (another
	 * writer appended to the chain, e.g. a prune record: reread the
	 * tail and try again).
	 */
	int (*insert)(audit_conn *c, const char *instance,
	    const gk_audit_record *const *recs, const audit_link *links,
	    size_t n, const audit_checkpoint *cp, char *err, size_t errlen);
	/*
	 * Where retention may prune to: the newest checkpoint signed before
	 * before_us past its instance's anchor, for the first instance (by
	 * id) that has one; *found 0 when no instance has.
	 */
	int (*prune_target)(audit_conn *c, int64_t before_us,
	    audit_checkpoint *out, int *found, char *err, size_t errlen);
	/*
	 * Deletes the oldest whole span of instance's chain, up to its next
	 * checkpoint with seq <= upto, and moves the instance's anchor to
	 * that checkpoint, in one transaction. *deleted: records deleted;
	 * *more: 0 when no span is left.
	 */
	int (*prune_span)(audit_conn *c, const char *instance, int64_t upto,
	    uint64_t *deleted, int *more, char *err, size_t errlen);
	/* audit_search on target (own read connection). */
	int (*search)(const char *target, const gk_audit_query *q,
	    gk_audit_row_fn fn, void *arg, char *err, size_t errlen);
	/* Reads everything verify needs (own read connection). */
	int (*scan)(const char *target, const audit_scan_cb *cb, void *arg,
	    char *err, size_t errlen);
	/* Records a token id as used until exp_s: 0 first use,
	 * GK_ERR_EXISTS replay, GK_ERR_UNAVAILABLE failure. NULL: none. */
	int (*jti_use)(audit_conn *c, const char *jti, int64_t exp_s);
	/* Grants (table grants): inserts or replaces the document of id
	 * (access_key unique), GK_ERR_EXISTS when access_key belongs to
	 * another id, GK_ERR_UNAVAILABLE failure. */
	int (*grant_put)(audit_conn *c, const char *id, const char *access_key,
	    const char *doc, char *err, size_t errlen);
	/* The document of the grant whose id (by_key 0) or access key
	 * (by_key 1) is v into doc: 0, GK_ERR_NOT_FOUND, GK_ERR_UNAVAILABLE. */
	int (*grant_get)(audit_conn *c, int by_key, const char *v, gk_buf *doc,
	    char *err, size_t errlen);
	/* Every grant, ordered by id; fn's non-zero return stops. */
	int (*grant_list)(audit_conn *c, gk_audit_doc_fn fn, void *arg,
	    char *err, size_t errlen);
	/* Replaces id's access key and document only while the document
	 * is still old (one conditional UPDATE): 0, GK_ERR_DENIED when it
	 * changed or is gone, GK_ERR_EXISTS when access_key belongs to
	 * another id, GK_ERR_UNAVAILABLE failure. */
	int (*grant_swap)(audit_conn *c, const char *id,
	    const char *access_key, const char *old_doc, const char *new_doc,
	    char *err, size_t errlen);
};

extern const audit_backend audit_sqlite_backend;
extern const audit_backend audit_pg_backend;

/*
 * backend.c: the prune record, appended to the pruned instance's chain
 * with a checkpoint signed over it, in one transaction, before anything
 * is deleted (who, when, up to which checkpoint t, the cut-off). *cp gets
 * the checkpoint.
 */
int audit_prune_note(audit_conn *c, const uint8_t seed[AUDIT_KEY_LEN],
    const char *who, const audit_checkpoint *t, int64_t cutoff_us,
    gk_buf *scratch, audit_checkpoint *cp, char *err, size_t errlen)
    GK_WUR;

/*
 * SQLite with the journal: commits no longer wait for the disk
 * (synchronous=NORMAL); the caller makes every batch durable in the
 * journal before it answers.
 */
int audit_sqlite_journaled(audit_conn *c) GK_WUR;
/* SQLite: commits wait for the disk (1) or not (0, the journal's). */
int audit_sqlite_set_full_sync(audit_conn *c, int full) GK_WUR;
/* Inserts within the connection's open write transaction (opened if
 * none); on failure everything since BEGIN is rolled back. */
int audit_sqlite_insert_open(audit_conn *c, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen) GK_WUR;
/* Commits the open transaction (0 if none); rolls back on failure. */
int audit_sqlite_commit(audit_conn *c, char *err, size_t errlen) GK_WUR;
void audit_sqlite_rollback(audit_conn *c);
/* SQLite: audit_jti_use's work within the connection's open write
 * transaction (opened if none): 0, GK_ERR_EXISTS, or GK_ERR_UNAVAILABLE
 * with everything since BEGIN rolled back. */
int audit_sqlite_jti_open(audit_conn *c, const char *jti, int64_t exp_s,
    char *err, size_t errlen) GK_WUR;
/* SQLite: records jti as used for good (the replay cache row of a
 * grant put back from the journal: its token's exp is not recorded). */
int audit_sqlite_jti_restore(audit_conn *c, const char *jti) GK_WUR;
/* SQLite: 0 when every commit so far is durable in the database file
 * (a passive WAL checkpoint backfilled every frame). */
int audit_sqlite_durable(audit_conn *c) GK_WUR;
/* SQLite: 0 when every commit so far is durable, in the database file
 * or in the WAL (the connection's WAL file synced; nothing copied);
 * declines (GK_ERR_UNAVAILABLE) once the WAL is long, for
 * audit_sqlite_durable to copy it and let it start over. */
int audit_sqlite_wal_sync(audit_conn *c) GK_WUR;

/* The backend for a target: PostgreSQL for a postgres:// or
 * postgresql:// URI, else SQLite (a file path). */
const audit_backend *audit_backend_for(const char *target);
int audit_conn_open(const char *target, int create, audit_conn **out,
    char *err, size_t errlen) GK_WUR;
/* c may be NULL. */
void audit_conn_close(audit_conn *c);


/* ---- addresses ------------------------------------------------------ */

/*
 * Parses an IPv4 or IPv6 address, optionally with "/len", into the
 * 16-byte IPv4-mapped form and the inclusive range [lo, hi] it covers
 * (host bits of a CIDR are ignored). GK_ERR_INVALID when malformed.
 */
int audit_ip_range(const char *s, uint8_t lo[16], uint8_t hi[16]) GK_WUR;

/* ---- search (query.c) ----------------------------------------------- */

enum { AUDIT_Q_INT, AUDIT_Q_TEXT, AUDIT_Q_BLOB };
#define AUDIT_QUERY_MAX 24

/* One value to bind: an integer, or text/blob bytes (borrowed). */
typedef struct {
	int type;		/* AUDIT_Q_* */
	int64_t i;
	const char *s;
	size_t len;
} audit_qval;

/* A search as SQL and its values in placeholder order. */
typedef struct {
	gk_buf sql;
	audit_qval v[AUDIT_QUERY_MAX];
	int n;
	int dollar;		/* "$N" placeholders (PostgreSQL) */
	uint8_t lo[16], hi[16];	/* the ip filter's range */
	char *upper;		/* the path prefix's upper bound */
	size_t upper_len;
} audit_query;

/*
 * Builds q as SQL: select (or select_by_addr when q filters on an
 * address; both "... FROM audit WHERE <true>") followed by one condition
 * per filter, the cursor, the order and the limit. Values are borrowed
 * from q. GK_ERR_INVALID with err for a bad ip or status. Release b in
 * every case.
 */
int audit_query_build(const gk_audit_query *q, const char *select,
    const char *select_by_addr, int dollar, audit_query *b, char *err,
    size_t errlen) GK_WUR;
void audit_query_release(audit_query *b);

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

/* ---- the writer (audit.c, record.c, session.c, recover.c, writer.c,
 * retention.c): the state the facade and the writer thread share ------ */

#include <pthread.h>
#include <stdatomic.h>

#define HOUR_US (3600LL * 1000000)
#define DAY_US (86400LL * 1000000)

struct audit_node {
	struct audit_node *next;
	gk_audit_done_fn done;
	void *arg;
	gk_audit_record rec;	/* strings point into text[] */
	char text[];
};

/* A token id to record (audit_jti_use), waiting for the writer. */
struct audit_jti_req {
	struct audit_jti_req *next;
	const char *jti;
	int64_t exp_s;
	int result;
	int finished;		/* under wait_lock */
	pthread_cond_t cond;
};

struct gk_audit {
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* writer: work, close, unpause (monotonic) */
	pthread_cond_t idle;	/* debug waiters: progress */
	pthread_mutex_t wait_lock; /* audit_write waiters */
	pthread_t thread;
	int started;
	unsigned inited;	/* INIT_* bits: what audit_free destroys */

	/* under lock */
	struct audit_node *head, *tail;
	size_t count;
	struct audit_jti_req *jq_head, *jq_tail; /* token ids (SQLite) */
	size_t queue_max;
	int closing;
	int paused;
	int busy;		/* a batch is being written */
	int prune_pending;
	audit_stats stats;

	/* during audit_open only: where a failure's one line goes instead of
	 * the log (the caller prints it), else NULL */
	char *open_err;
	size_t open_errlen;

	/* set at open, read-only after */
	char *path;		/* the target: a file or a postgresql:// URI */
	char *suffix;		/* audit_open_as's chain suffix, or NULL */
	char *label;		/* path for logs, without a password */
	char *cp_path;		/* checkpoint file, NULL: none */
	gk_audit_cp_fn cp_fn;	/* after each checkpoint (under lock to set) */
	void *cp_arg;
	size_t batch_max;
	int64_t retention_us;	/* 0: keep forever */
	char instance[AUDIT_INSTANCE_MAX + 1];
	uint8_t seed[AUDIT_KEY_LEN]; /* audit signing key */
	int have_key;
	int64_t cp_records;
	int64_t cp_interval_us;
	int prune_have;		/* writer: a prune in progress, up to: */
	audit_checkpoint prune_to;
	char *space_dir;	/* SQLite: the directory whose file system
				 * must keep min_free for grants; NULL: off */
	uint64_t min_free;	/* bytes */

	/* counters and the low-space state (atomics) */
	_Atomic uint64_t fields_cut;
	_Atomic uint64_t refusals_dropped;
	_Atomic int low_space;
	_Atomic int64_t space_checked_mono;

	int jti_in_writer;	/* SQLite: the writer records token ids */
	/* else the replay cache's own connection, under jti_lock */
	pthread_mutex_t jti_lock;
	audit_conn *jti_conn;

	/* writer thread only */
	audit_conn *conn;
	audit_journal *journal;	/* SQLite: the durable record, journal.c */
	size_t tx_records;	/* journaled, in the open SQLite transaction */
	int64_t tx_mono;	/* when that transaction began */
	const gk_audit_record **recs; /* batch_max slots */
	audit_link *links;	/* batch_max slots */
	gk_buf scratch;		/* canonical encoding */
	int db_down;		/* last batch failed: log recovery once */
	/* the journal file was lost (AUDIT_JOURNAL_*) and no new one could
	 * be started yet: batches are refused until one is */
	int journal_lost;
	int64_t next_prune_mono;
	int chain_loaded;	/* tail read from the store since (re)open */
	/* the database file was deleted or replaced while serving: the
	 * chain goes on from here in the new file, not from its tail */
	int carry_chain;
	audit_tail carried;
	/* audit_fail_line: at most one line per FAIL_QUIET_US */
	int64_t fail_quiet_until;
	unsigned long long fail_suppressed;
	int cp_file_checked;	/* the checkpoint file was recovered */
	audit_tail chain;
	int64_t cp_mono;	/* last checkpoint (or chain load), monotonic */
	/* the last batch, monotonic: AUDIT_IDLE_DURABLE_US after it an
	 * idle writer makes SQLite durable and empties the journal */
	int64_t batch_mono;
};

/* record.c: one allocation holding rec and copies of its strings (cut
 * and made valid UTF-8); *ncut gets how many fields were cut. */
int audit_node_new(const gk_audit_record *rec, gk_audit_done_fn done,
    void *arg, struct audit_node **out, unsigned *ncut) GK_WUR;

/* session.c: the writer's connection and checkpoints. */
/* 1 when records after the last checkpoint wait for one. */
int writer_cp_pending(const gk_audit *a);
/* Signs a checkpoint of a's chain at seq/hash into cp. */
int writer_make_cp(gk_audit *a, int64_t seq,
    const uint8_t hash[AUDIT_HASH_LEN], audit_checkpoint *cp) GK_WUR;
/* After a checkpoint is committed: remember it, append it to the file,
 * tell the on-checkpoint callback. */
void writer_cp_committed(gk_audit *a, const audit_checkpoint *cp);
/* Opens a->conn; with SQLite also the journal. */
int writer_open_conn(gk_audit *a, char *err, size_t errlen) GK_WUR;
/* Empties the journal when it holds more than over bytes and SQLite
 * holds every record durably itself; shrink: truncates the file too
 * (else its blocks are kept for the next batches). */
void writer_journal_trim(gk_audit *a, int64_t over, int shrink);
/* Drops the connection (the next batch reopens it and re-reads the
 * chain, putting back from the journal what SQLite lost). */
void writer_drop_conn(gk_audit *a);
/* Commits the SQLite transaction journaled batches share. */
void writer_commit_open(gk_audit *a);
/* The journal file was lost (how: AUDIT_JOURNAL_*) or still is
 * (a->journal_lost): commits SQLite's open transaction, makes SQLite
 * durable itself (a checkpoint that syncs) and starts a new journal at
 * the path. 0 when all of it is done; else the batch is refused (503)
 * until it is. Logs once per loss. */
int writer_journal_renew(gk_audit *a, int how);

/* writer.c: answers each request of the list (result, finished,
 * cond signalled under wait_lock). */
void writer_jti_answer(gk_audit *a, struct audit_jti_req *q, int result);

/* recover.c: reads where a's chain ends and puts back what the journal
 * holds beyond it (once per connection). */
int writer_load_chain(gk_audit *a) GK_WUR;
/* A failure's line: into a->open_err while audit_open runs (its caller
 * prints it, once), else logged at level, at most one line per 30 s
 * (a full disk fails every batch: the next line counts the ones left
 * out). Writer thread only. */
void audit_fail_line(gk_audit *a, int level, const char *fmt, ...)
    GK_PRINTF(3, 4);

/* retention.c: one retention chunk; 1 while more rows may remain. */
int writer_prune_step(gk_audit *a, uint64_t *deleted);

/* writer.c: the writer thread (arg: the gk_audit). */
void *writer_main(void *p);

/* ---- debug hooks (tests) -------------------------------------------- */


void audit_debug_stats(gk_audit *a, audit_stats *out);
/* While paused the writer takes nothing (except when closing). */
void audit_debug_pause(gk_audit *a, int paused);
/* Blocks until at least n records are queued. */
void audit_debug_wait_queued(gk_audit *a, size_t n);
/* Blocks until the queue is empty, no batch is in flight and no
 * retention pass is pending. */
void audit_debug_wait_idle(gk_audit *a);
/* Every target opens with be from now on (NULL: the real backends). Set
 * before audit_open. */
void audit_debug_backend(const audit_backend *be);
/* Lowers the queue bound (0: AUDIT_QUEUE_MAX). */
void audit_debug_set_queue_max(gk_audit *a, size_t max);

/*
 * One result row as a backend exposes it, in AUDIT_SELECT_COLS order:
 * text (NULL for SQL NULL; *len its bytes), integers, and byte strings
 * (0 when the column holds exactly n bytes, copied to out).
 */
typedef struct {
	const char *(*text)(void *ctx, int col, size_t *len);
	int64_t (*num)(void *ctx, int col);
	int (*bytes)(void *ctx, int col, uint8_t *out, size_t n);
	void *ctx;
} audit_cols;
/* Fills row from the columns (format.c); strings point into the row. */
void audit_row_read(const audit_cols *c, gk_audit_row *row);

/* The columns every backend reads a record back with (read_row's order). */
#define AUDIT_SELECT_COLS						\
    "SELECT id, time_us, request_id, client_ip, client_addr, user_agent,"	\
    " origin, protocol, operation, root, path, status, decision, message,"	\
    " bytes, duration_us, country, kid, sub, jti, token_sig, instance_id,"	\
    " seq, prev_hash, hash"

/*
 * Retention, the same SQL for both backends ("$N" is a parameter to
 * SQLite too): where to prune to (prune_target: the newest checkpoint
 * signed before $1 past its instance's anchor); then per span
 * (prune_span) the oldest checkpoint of instance $1 up to seq $2 past its
 * anchor, that instance's records up to it, and the anchor moved there.
 */
#define AUDIT_PRUNE_FIND_SQL						\
    "SELECT c.instance_id, c.seq, c.hash, c.time_us"			\
    " FROM audit_checkpoint c LEFT JOIN audit_anchor a"			\
    " ON a.instance_id = c.instance_id"					\
    " WHERE c.instance_id = $1 AND c.seq <= $2"				\
    " AND c.seq > coalesce(a.seq, 0)"					\
    " ORDER BY c.seq LIMIT 1"
#define AUDIT_PRUNE_TARGET_SQL						\
    "SELECT c.instance_id, c.seq, c.hash, c.time_us"			\
    " FROM audit_checkpoint c LEFT JOIN audit_anchor a"			\
    " ON a.instance_id = c.instance_id"					\
    " WHERE c.time_us < $1 AND c.seq > coalesce(a.seq, 0)"		\
    " ORDER BY c.instance_id, c.seq DESC LIMIT 1"
#define AUDIT_PRUNE_DELETE_SQL						\
    "DELETE FROM audit WHERE instance_id = $1 AND seq <= $2"
#define AUDIT_ANCHOR_SET_SQL						\
    "INSERT INTO audit_anchor(instance_id, seq, hash, time_us)"		\
    " VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id) DO UPDATE"	\
    " SET seq = EXCLUDED.seq, hash = EXCLUDED.hash,"			\
    " time_us = EXCLUDED.time_us"

/* Where an instance's chain ends (tail), for both backends: its last
 * record, else its anchor; its last checkpoint. */
#define AUDIT_TAIL_LAST_SQL						\
    "SELECT seq, hash FROM audit WHERE instance_id = $1"		\
    " ORDER BY seq DESC LIMIT 1"
#define AUDIT_TAIL_ANCHOR_SQL						\
    "SELECT seq, hash FROM audit_anchor WHERE instance_id = $1"
#define AUDIT_TAIL_CP_SQL						\
    "SELECT seq, time_us FROM audit_checkpoint"				\
    " WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1"

/* Writes a message into err (err may be NULL or errlen 0: nothing). */
void audit_set_err(char *err, size_t errlen, const char *fmt, ...)
    GK_PRINTF(3, 4);

#endif
