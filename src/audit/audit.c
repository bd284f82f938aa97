/*
 * audit.c - the record queue and the writer thread (group commit).
 *
 * audit_submit() deep-copies a record into one allocation and appends it
 * to a bounded FIFO. One writer thread takes up to batch_max records at a
 * time, inserts them in ONE transaction (one fsync for all), then calls
 * each record's done callback with 0, or with GK_ERR_UNAVAILABLE for
 * every record of a batch whose transaction failed. After a failure the
 * connection is dropped and reopened for the next batch, so the log
 * recovers by itself when the disk comes back. Between batches the writer
 * deletes expired rows in small chunks (retention), at start and hourly.
 *
 * Locking: a->lock guards the queue and the state flags; done callbacks
 * run with no lock held. audit_write() waits on its own condition
 * variable under a->wait_lock.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define HOUR_US (3600LL * 1000000)
#define INIT_LOCK 1u
#define INIT_WAIT_LOCK 2u
#define INIT_WAKE 4u
#define INIT_IDLE 8u
#define INIT_JTI_LOCK 16u
#define DAY_US (86400LL * 1000000)

struct audit_node {
	struct audit_node *next;
	gk_audit_done_fn done;
	void *arg;
	gk_audit_record rec;	/* strings point into text[] */
	char text[];
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
	size_t queue_max;
	int closing;
	int paused;
	int busy;		/* a batch is being written */
	int prune_pending;
	audit_stats stats;

	/* set at open, read-only after */
	char *path;		/* the target: a file or a postgresql:// URI */
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

	/* the replay cache's own connection, under jti_lock */
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
	int64_t next_prune_mono;
	int chain_loaded;	/* tail read from the store since (re)open */
	int cp_file_checked;	/* the checkpoint file was recovered */
	audit_tail chain;
	int64_t cp_mono;	/* last checkpoint (or chain load), monotonic */
};

/* ---- records --------------------------------------------------------- */

/* Length of s cut to max on a UTF-8 character boundary; *cut says
 * whether it was. */
static size_t
field_len(const char *s, size_t max, int *cut)
{
	size_t n;

	*cut = 0;
	if (s == NULL)
		return 0;
	n = strnlen(s, max);
	if (n == max && s[n] != '\0') {
		*cut = 1;
		while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

/* The length of n bytes of s once invalid bytes become U+FFFD. */
static size_t
fixed_len(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, k, out = 0;

	while (i < n) {
		k = gk_utf8_seq(p + i, n - i);
		out += k == 0 ? 3 : k;
		i += k == 0 ? 1 : k;
	}
	return out;
}

/*
 * Copies n bytes of s to the cursor with invalid UTF-8 replaced by U+FFFD
 * (so every backend stores the same valid text, and the hash covers it);
 * the destination has room for fixed_len(s, n) + 1 bytes.
 */
static const char *
put_field(char **cursor, const char *s, size_t n, int cut)
{
	const uint8_t *p = (const uint8_t *)s;
	char *dst = *cursor, *o = dst;
	size_t i = 0, k;

	if (s == NULL)
		return NULL;
	while (i < n) {
		if ((k = gk_utf8_seq(p + i, n - i)) == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(o, p + i, k);
		o += k;
		i += k;
	}
	if (cut) {
		memcpy(o, AUDIT_CUT_MARK, sizeof(AUDIT_CUT_MARK) - 1);
		o += sizeof(AUDIT_CUT_MARK) - 1;
	}
	*o = '\0';
	*cursor = o + 1;
	return dst;
}

/* One allocation holding the record and copies of all its strings;
 * *ncut gets how many fields were cut. */
static int
node_new(const gk_audit_record *rec, gk_audit_done_fn done, void *arg,
    struct audit_node **out, unsigned *ncut)
{
	/* the first two are the client's own text: the smaller cap */
	const char *src[12] = { rec->user_agent, rec->origin, rec->protocol,
	    rec->operation, rec->root, rec->path, rec->message, rec->country,
	    rec->kid, rec->sub, rec->jti, rec->token_sig };
	size_t len[12], size = sizeof(struct audit_node), i;
	int cut[12];
	struct audit_node *n;
	char *cursor;
	uint8_t lo[16], hi[16];
	static const uint8_t zero[16];

	*ncut = 0;
	for (i = 0; i < GK_ARRAY_LEN(src); i++) {
		len[i] = field_len(src[i], i < 2 ? AUDIT_CLIENT_FIELD_MAX :
		    AUDIT_FIELD_MAX, &cut[i]);
		*ncut += (unsigned)cut[i];
		if (src[i] != NULL && (gk_add_size(size,
		    fixed_len(src[i], len[i]), &size) != 0 ||
		    gk_add_size(size, 1 + (cut[i] ?
		    sizeof(AUDIT_CUT_MARK) - 1 : 0), &size) != 0))
			return GK_ERR_TOO_LARGE;
	}
	if ((n = malloc(size)) == NULL)
		return GK_ERR_NOMEM;
	n->next = NULL;
	n->done = done;
	n->arg = arg;
	n->rec = *rec;
	n->rec.request_id[sizeof(n->rec.request_id) - 1] = '\0';
	n->rec.client_ip[sizeof(n->rec.client_ip) - 1] = '\0';
	/* callers that set only the text address still get CIDR search */
	if (memcmp(n->rec.client_addr, zero, sizeof(zero)) == 0 &&
	    n->rec.client_ip[0] != '\0' &&
	    strchr(n->rec.client_ip, '/') == NULL &&
	    audit_ip_range(n->rec.client_ip, lo, hi) == 0)
		memcpy(n->rec.client_addr, lo, sizeof(lo));
	cursor = n->text;
	n->rec.user_agent = put_field(&cursor, src[0], len[0], cut[0]);
	n->rec.origin = put_field(&cursor, src[1], len[1], cut[1]);
	n->rec.protocol = put_field(&cursor, src[2], len[2], cut[2]);
	n->rec.operation = put_field(&cursor, src[3], len[3], cut[3]);
	n->rec.root = put_field(&cursor, src[4], len[4], cut[4]);
	n->rec.path = put_field(&cursor, src[5], len[5], cut[5]);
	n->rec.message = put_field(&cursor, src[6], len[6], cut[6]);
	n->rec.country = put_field(&cursor, src[7], len[7], cut[7]);
	n->rec.kid = put_field(&cursor, src[8], len[8], cut[8]);
	n->rec.sub = put_field(&cursor, src[9], len[9], cut[9]);
	n->rec.jti = put_field(&cursor, src[10], len[10], cut[10]);
	n->rec.token_sig = put_field(&cursor, src[11], len[11], cut[11]);
	*out = n;
	return 0;
}

/* ---- writer ---------------------------------------------------------- */

/* 1 when records after the last checkpoint wait for one. */
static int
cp_pending(const gk_audit *a)
{
	return a->have_key && a->conn != NULL && a->chain_loaded &&
	    a->chain.seq > a->chain.cp_seq;
}

static int
make_cp(gk_audit *a, int64_t seq, const uint8_t hash[AUDIT_HASH_LEN],
    audit_checkpoint *cp)
{
	memset(cp, 0, sizeof(*cp));
	snprintf(cp->instance, sizeof(cp->instance), "%s", a->instance);
	cp->seq = seq;
	memcpy(cp->hash, hash, AUDIT_HASH_LEN);
	cp->time_us = gk_now_us();
	return audit_cp_sign(cp, a->seed);
}

/* After a checkpoint is committed: remember it, append it to the file. */
static void
cp_committed(gk_audit *a, const audit_checkpoint *cp)
{
	gk_audit_cp_fn fn;
	void *arg;
	gk_buf line;

	a->chain.cp_seq = cp->seq;
	a->chain.cp_time_us = cp->time_us;
	a->cp_mono = gk_mono_us();
	if (a->cp_path != NULL && audit_cp_append(a->cp_path, cp) != 0)
		gk_error("audit: cannot append checkpoint %" PRId64 " to %s "
		    "(it is in the database)", cp->seq, a->cp_path);
	pthread_mutex_lock(&a->lock);
	fn = a->cp_fn;
	arg = a->cp_arg;
	pthread_mutex_unlock(&a->lock);
	if (fn == NULL)
		return;
	gk_buf_init(&line, 4096);
	if (audit_cp_line(cp, &line) == 0 && line.len > 0) {
		if (line.data[line.len - 1] == '\n')
			line.data[--line.len] = '\0';
		fn(arg, cp->instance, cp->seq, (const char *)line.data);
	}
	gk_buf_release(&line);
}

void
audit_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
audit_on_checkpoint(gk_audit *a, gk_audit_cp_fn fn, void *arg)
{
	pthread_mutex_lock(&a->lock);
	a->cp_fn = fn;
	a->cp_arg = arg;
	pthread_mutex_unlock(&a->lock);
}

/* ---- the journal (SQLite) -------------------------------------------- */

/*
 * Opens a->conn; with SQLite also the journal, flushed before each
 * COMMIT (so the commit itself does not wait for the disk).
 */
static int
open_conn(gk_audit *a, char *err, size_t errlen)
{
	int r;

	a->chain_loaded = 0;
	if ((r = audit_conn_open(a->path, 1, &a->conn, err, errlen)) != 0)
		return r;
	/* the journal is SQLite's (not PostgreSQL's, nor a test backend's) */
	if (audit_backend_for(a->path) != &audit_sqlite_backend)
		return 0;
	if (a->journal == NULL && (r = audit_journal_open(a->path,
	    &a->journal, err, errlen)) != 0)
		goto fail;
	if (audit_sqlite_journaled(a->conn) != 0) {
		audit_set_err(err, errlen, "cannot set up the journal");
		r = GK_ERR_UNAVAILABLE;
		goto fail;
	}
	return 0;
fail:
	audit_conn_close(a->conn);
	a->conn = NULL;
	return r;
}

/* Empties the journal when SQLite holds everything durably itself. */
static void
journal_trim(gk_audit *a, int64_t over)
{
	/* never before the journal was put back (load_chain) */
	if (a->journal == NULL || a->conn == NULL || !a->chain_loaded ||
	    audit_journal_size(a->journal) <= over)
		return;
	if (audit_sqlite_durable(a->conn) == 0 &&
	    audit_journal_reset(a->journal) != 0)
		gk_warn("audit: cannot empty %s (it is kept; its records "
		    "are stored)", audit_journal_path(a->journal));
}

#define REPLAY_BATCH 256

struct replay {
	gk_audit *a;
	const gk_audit_record *recs[REPLAY_BATCH];
	gk_audit_record store[REPLAY_BATCH];
	char *blocks[REPLAY_BATCH];
	audit_link links[REPLAY_BATCH];
	size_t n;
	uint64_t added;
	int64_t seq;		/* the chain's end, pending records included */
	uint8_t hash[AUDIT_HASH_LEN];
	char err[256];
};

/* Inserts the pending records (and cp) in one transaction. */
static int
replay_flush(struct replay *rp, const audit_checkpoint *cp)
{
	gk_audit *a = rp->a;
	size_t i;
	int r;

	if (rp->n == 0 && cp == NULL)
		return 0;
	r = a->conn->ops->insert(a->conn, a->instance, rp->recs, rp->links,
	    rp->n, cp, rp->err, sizeof(rp->err));
	if (r == 0) {
		rp->added += rp->n;
		a->chain.seq = rp->seq;
		memcpy(a->chain.hash, rp->hash, AUDIT_HASH_LEN);
		if (cp != NULL) {
			a->chain.cp_seq = cp->seq;
			a->chain.cp_time_us = cp->time_us;
		}
	}
	for (i = 0; i < rp->n; i++)
		free(rp->blocks[i]);
	rp->n = 0;
	return r == 0 ? 0 : GK_ERR_UNAVAILABLE;
}

static int
replay_entry(void *arg, const uint8_t *enc, size_t n, const uint8_t *hash,
    const audit_checkpoint *cp)
{
	struct replay *rp = arg;
	gk_audit *a = rp->a;
	char inst[AUDIT_INSTANCE_MAX + 1];
	int64_t seq;
	size_t k = rp->n;

	if (cp != NULL) {
		/* a checkpoint of this chain not stored yet */
		if (strcmp(cp->instance, a->instance) != 0 ||
		    cp->seq <= a->chain.cp_seq || cp->seq > rp->seq)
			return 0;
		return replay_flush(rp, cp);
	}
	if (audit_chain_decode(enc, n, inst, &seq, &rp->store[k],
	    &rp->blocks[k]) != 0) {
		snprintf(rp->err, sizeof(rp->err), "an entry is not a record");
		return GK_ERR_INTEGRITY;
	}
	if (strcmp(inst, a->instance) != 0 || seq <= rp->seq) {
		free(rp->blocks[k]);
		return 0;	/* another chain, or stored already */
	}
	rp->links[k].seq = seq;
	memcpy(rp->links[k].prev, rp->hash, AUDIT_HASH_LEN);
	if (seq != rp->seq + 1 || audit_chain_hash(&a->scratch, a->instance,
	    seq, rp->hash, &rp->store[k], rp->links[k].hash) != 0 ||
	    memcmp(rp->links[k].hash, hash, AUDIT_HASH_LEN) != 0) {
		free(rp->blocks[k]);
		snprintf(rp->err, sizeof(rp->err), "record %lld does not "
		    "continue the stored chain (at %lld)", (long long)seq,
		    (long long)rp->seq);
		return GK_ERR_INTEGRITY;
	}
	rp->recs[k] = &rp->store[k];
	rp->n++;
	rp->seq = seq;
	memcpy(rp->hash, hash, AUDIT_HASH_LEN);
	return rp->n == REPLAY_BATCH ? replay_flush(rp, NULL) : 0;
}

/*
 * Puts back what the journal holds beyond the stored chain (commits a
 * power loss took from SQLite), then empties the journal once SQLite
 * holds it durably. A journal that does not continue the chain is moved
 * aside (kept for inspection) and logged.
 */
static int
replay_journal(gk_audit *a)
{
	struct replay *rp;
	char aside[4096];
	int r;

	if (a->journal == NULL || audit_journal_size(a->journal) == 0)
		return 0;
	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		return GK_ERR_UNAVAILABLE;
	rp->a = a;
	rp->seq = a->chain.seq;
	memcpy(rp->hash, a->chain.hash, AUDIT_HASH_LEN);
	r = audit_journal_replay(a->journal, replay_entry, rp);
	if (r == 0)
		r = replay_flush(rp, NULL);
	else
		(void)replay_flush(rp, NULL);
	if (rp->added > 0)
		gk_warn("audit: %llu records put back from %s (the database "
		    "had lost them)", (unsigned long long)rp->added,
		    audit_journal_path(a->journal));
	if (r == GK_ERR_INTEGRITY) {
		snprintf(aside, sizeof(aside), "%s.unmatched-%lld",
		    audit_journal_path(a->journal), (long long)gk_now_us());
		gk_error("audit: %s: %s; moved to %s", audit_journal_path(
		    a->journal), rp->err, aside);
		if (rename(audit_journal_path(a->journal), aside) != 0) {
			free(rp);
			return GK_ERR_UNAVAILABLE;
		}
		audit_journal_close(a->journal);
		a->journal = NULL;
		r = audit_journal_open(a->path, &a->journal, rp->err,
		    sizeof(rp->err));
		if (r != 0)
			gk_error("audit: %s", rp->err);
	} else if (r != 0) {
		gk_error("audit: cannot put back the journal's records (%s)",
		    rp->err);
	} else {
		journal_trim(a, 0);
	}
	free(rp);
	return r == 0 ? 0 : GK_ERR_UNAVAILABLE;
}

/*
 * Checkpoint file recovery. The file gets a checkpoint's line after the
 * database committed it, so a crash in between (or a failed append)
 * leaves a signed checkpoint in the database only, and a crash inside
 * the append a partial last line. Once per run, when the chain is first
 * loaded: a partial last line is cut off, and every checkpoint of this
 * instance the database holds and the file lacks is appended, in order.
 */
struct cp_recover {
	const char *instance;
	int64_t *have;		/* seqs in the file, sorted */
	size_t nhave;
	audit_checkpoint *add;	/* in the database only */
	size_t nadd, capadd;
	int failed;
};

static int
seq_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int
cp_recover_anchor(void *arg, const audit_checkpoint *cp)
{
	(void)arg;
	(void)cp;
	return 0;
}

static int
cp_recover_cp(void *arg, const audit_checkpoint *cp)
{
	struct cp_recover *rc = arg;
	audit_checkpoint *grow;

	if (strcmp(cp->instance, rc->instance) != 0 || (rc->nhave > 0 &&
	    bsearch(&cp->seq, rc->have, rc->nhave, sizeof(int64_t),
	    seq_cmp) != NULL))
		return 0;
	if (rc->nadd == rc->capadd) {
		size_t cap = rc->capadd ? 2 * rc->capadd : 16;

		if (cap > SIZE_MAX / sizeof(*grow) ||
		    (grow = realloc(rc->add, cap * sizeof(*grow))) == NULL) {
			rc->failed = 1;
			return GK_ERR_NOMEM;
		}
		rc->add = grow;
		rc->capadd = cap;
	}
	rc->add[rc->nadd++] = *cp;
	return 0;
}

/* Stops the scan at the first record: only checkpoints are wanted. */
static int
cp_recover_stop(void *arg, const gk_audit_row *row)
{
	(void)arg;
	(void)row;
	return GK_ERR_EXISTS;
}

/* Reads the seqs of this instance in the file; cuts a partial line. */
static int
cp_file_load(gk_audit *a, struct cp_recover *rc)
{
	audit_checkpoint cp;
	char *line = NULL;
	size_t cap = 0, capseq = 0;
	off_t good = 0;
	ssize_t n;
	int64_t *grow;
	FILE *f;
	int r = 0;

	if ((f = fopen(a->cp_path, "r+e")) == NULL)
		return errno == ENOENT ? 0 : GK_ERR_IO;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break;		/* a partial last line */
		good += n;
		if (audit_cp_parse(line, &cp) != 0 ||
		    strcmp(cp.instance, a->instance) != 0)
			continue;
		if (rc->nhave == capseq) {
			capseq = capseq ? 2 * capseq : 256;
			if (capseq > SIZE_MAX / sizeof(*grow) ||
			    (grow = realloc(rc->have, capseq *
			    sizeof(*grow))) == NULL) {
				r = GK_ERR_NOMEM;
				goto out;
			}
			rc->have = grow;
		}
		rc->have[rc->nhave++] = cp.seq;
	}
	if (ferror(f)) {
		r = GK_ERR_IO;
		goto out;
	}
	if (n > 0 && ftruncate(fileno(f), good) == 0) {
		(void)fsync(fileno(f));
		gk_warn("audit: cut a partial last line (%zd bytes) off %s",
		    n, a->cp_path);
	}
	if (rc->nhave > 1)
		qsort(rc->have, rc->nhave, sizeof(int64_t), seq_cmp);
out:
	free(line);
	fclose(f);
	return r;
}

static void
cp_file_recover(gk_audit *a)
{
	audit_scan_cb cb = { cp_recover_anchor, cp_recover_cp,
	    cp_recover_stop };
	struct cp_recover rc;
	char err[256];
	size_t i;
	int r;

	if (a->cp_file_checked || a->cp_path == NULL || a->conn == NULL)
		return;
	a->cp_file_checked = 1;
	memset(&rc, 0, sizeof(rc));
	rc.instance = a->instance;
	if ((r = cp_file_load(a, &rc)) != 0) {
		gk_error("audit: cannot read the checkpoint file %s: %s",
		    a->cp_path, gk_err_str(r));
		goto out;
	}
	err[0] = '\0';
	r = a->conn->ops->scan(a->path, &cb, &rc, err, sizeof(err));
	if ((r != 0 && r != GK_ERR_EXISTS) || rc.failed) {
		gk_error("audit: cannot read the checkpoints to recover %s (%s)",
		    a->cp_path, err[0] ? err : gk_err_str(r));
		goto out;
	}
	for (i = 0; i < rc.nadd; i++) {	/* the scan gives them by seq */
		if (audit_cp_append(a->cp_path, &rc.add[i]) != 0) {
			gk_error("audit: cannot append checkpoint %" PRId64
			    " to %s", rc.add[i].seq, a->cp_path);
			goto out;
		}
	}
	if (rc.nadd > 0)
		gk_warn("audit: %zu signed checkpoint(s) were in the database "
		    "but not in %s (an earlier crash): appended", rc.nadd,
		    a->cp_path);
out:
	free(rc.have);
	free(rc.add);
}

/* Reads where this instance's chain ends (once per connection). */
static int
load_chain(gk_audit *a)
{
	char err[256];

	if (a->chain_loaded)
		return 0;
	if (a->conn->ops->tail(a->conn, a->instance, &a->chain, err,
	    sizeof(err)) != 0) {
		if (!a->db_down)
			gk_error("audit: cannot read the chain of %s (%s); "
			    "answering 503", a->instance, err);
		return GK_ERR_UNAVAILABLE;
	}
	if (replay_journal(a) != 0)
		return GK_ERR_UNAVAILABLE;
	a->chain_loaded = 1;
	a->cp_mono = gk_mono_us();
	cp_file_recover(a);
	return 0;
}

/* Drops the connection (the next batch reopens it and re-reads the
 * chain, putting back from the journal what SQLite lost). */
static void
drop_conn(gk_audit *a)
{
	if (a->conn != NULL && a->journal != NULL)
		audit_sqlite_rollback(a->conn);
	audit_conn_close(a->conn);
	a->conn = NULL;
	a->chain_loaded = 0;
	a->tx_records = 0;
}

/*
 * Commits the SQLite transaction that journaled batches share. A
 * failure loses nothing answered (it is in the journal): the connection
 * is dropped, and reopening puts the records back.
 */
static void
commit_open(gk_audit *a)
{
	char err[256];

	if (a->journal == NULL || a->conn == NULL || a->tx_records == 0)
		return;
	a->tx_records = 0;
	if (audit_sqlite_commit(a->conn, err, sizeof(err)) != 0) {
		gk_warn("audit: cannot commit to %s (%s); its records are in "
		    "the journal, putting them back", a->label, err);
		drop_conn(a);
		return;
	}
	journal_trim(a, AUDIT_JOURNAL_FLUSH);
}

/* Records per SQLite transaction behind the journal, and its age. */
#define TX_RECORDS_MAX 8192u
#define TX_AGE_US 20000

/*
 * Stores n records (and cp). Without the journal: one transaction.
 * With it: the entries are flushed to the journal (one write, one
 * fdatasync) while the same rows go into SQLite's open transaction; the
 * batch counts when both worked. The transaction is committed when no
 * more records wait (so an idle log is searchable before the answer),
 * else after TX_RECORDS_MAX records or TX_AGE_US: under load many
 * batches share one commit, and the records are durable meanwhile in
 * the journal.
 */
static int
store_batch(gk_audit *a, size_t n, const audit_checkpoint *cp, char *err,
    size_t errlen)
{
	int r, more;

	if (a->journal == NULL)
		return a->conn->ops->insert(a->conn, a->instance, a->recs,
		    a->links, n, cp, err, errlen);
	if ((cp != NULL && audit_journal_add_cp(a->journal, cp) != 0) ||
	    audit_journal_start(a->journal) != 0) {
		audit_journal_end(a->journal, 0);
		audit_set_err(err, errlen, "%s cannot be written",
		    audit_journal_path(a->journal));
		return GK_ERR_UNAVAILABLE;
	}
	r = audit_sqlite_insert_open(a->conn, a->instance, a->recs, a->links,
	    n, cp, err, errlen);
	if (audit_journal_wait(a->journal) != 0 && r == 0) {
		audit_set_err(err, errlen, "%s cannot be written",
		    audit_journal_path(a->journal));
		r = GK_ERR_UNAVAILABLE;
	}
	audit_journal_end(a->journal, r == 0);
	if (r != 0) {
		/* the transaction is gone, with batches already answered:
		 * the caller drops the connection, reopening puts them back
		 * (GK_ERR_EXISTS: another writer got the lock between two
		 * transactions, so none was answered: reread the tail) */
		a->tx_records = 0;
		return r == GK_ERR_EXISTS ? r : GK_ERR_UNAVAILABLE;
	}
	if (a->tx_records == 0)
		a->tx_mono = gk_mono_us();
	a->tx_records += n + 1;
	pthread_mutex_lock(&a->lock);
	more = a->count > 0 && !a->closing;
	pthread_mutex_unlock(&a->lock);
	/* a checkpoint is committed before it goes to the checkpoint file,
	 * so a verify never sees one ahead of the stored chain */
	if (!more || cp != NULL || a->tx_records >= TX_RECORDS_MAX ||
	    gk_mono_us() - a->tx_mono >= TX_AGE_US)
		commit_open(a);
	return 0;
}

/* Signs and stores a checkpoint for records committed since the last. */
static void
write_checkpoint(gk_audit *a)
{
	audit_checkpoint cp;
	char err[256];

	if (!cp_pending(a))
		return;
	if (make_cp(a, a->chain.seq, a->chain.hash, &cp) != 0) {
		gk_error("audit: cannot sign a checkpoint");
		a->cp_mono = gk_mono_us();
		return;
	}
	if (store_batch(a, 0, &cp, err, sizeof(err)) != 0) {
		gk_warn("audit: cannot store checkpoint %" PRId64 " (%s)",
		    cp.seq, err);
		drop_conn(a);
		return;
	}
	cp_committed(a, &cp);
}

/* Commits a batch; reopens the database first if it was dropped. */
static int
write_batch(gk_audit *a, struct audit_node *batch, size_t k)
{
	struct audit_node *n;
	audit_checkpoint cp;
	char err[256];
	size_t i = 0, j;
	int64_t last;
	int cp_due, r, retried = 0;

	for (n = batch; n != NULL && i < k; n = n->next)
		a->recs[i++] = &n->rec;
	if (a->conn != NULL && !a->conn->ops->same_target(a->conn, a->path)) {
		commit_open(a);
	}
	if (a->conn != NULL && !a->conn->ops->same_target(a->conn, a->path)) {
		/*
		 * Deleted or replaced under us. Move the WAL into the old
		 * file first: reopening at the path would discard a WAL left
		 * behind. Until that works, fail closed.
		 */
		if (a->conn->ops->flush(a->conn) != 0) {
			if (!a->db_down)
				gk_error("audit: %s was moved or replaced and "
				    "its WAL cannot be checkpointed yet; "
				    "answering 503", a->label);
			a->db_down = 1;
			return GK_ERR_UNAVAILABLE;
		}
		/* all of it is durable in the old file now */
		if (a->journal != NULL &&
		    audit_journal_reset(a->journal) != 0) {
			a->db_down = 1;
			return GK_ERR_UNAVAILABLE;
		}
		gk_warn("audit: %s was moved or replaced; reopening", a->label);
		drop_conn(a);
	}
	if (a->conn == NULL && open_conn(a, err, sizeof(err)) != 0) {
		if (!a->db_down)
			gk_error("audit: cannot open the database (%s); "
			    "answering 503 until it can be written", err);
		a->db_down = 1;
		return GK_ERR_UNAVAILABLE;
	}
again:
	if (load_chain(a) != 0)
		goto fail;
	for (j = 0; j < i; j++) {
		a->links[j].seq = a->chain.seq + 1 + (int64_t)j;
		memcpy(a->links[j].prev, j == 0 ? a->chain.hash :
		    a->links[j - 1].hash, AUDIT_HASH_LEN);
		if (audit_chain_hash(&a->scratch, a->instance,
		    a->links[j].seq, a->links[j].prev, a->recs[j],
		    a->links[j].hash) != 0 || (a->journal != NULL &&
		    audit_journal_add_record(a->journal, a->scratch.data +
		    AUDIT_HASH_LEN, a->scratch.len - AUDIT_HASH_LEN,
		    a->links[j].hash) != 0)) {
			gk_error("audit: cannot hash a record");
			if (a->journal != NULL)
				audit_journal_end(a->journal, 0);
			return GK_ERR_UNAVAILABLE;
		}
	}
	last = i > 0 ? a->links[i - 1].seq : a->chain.seq;
	cp_due = a->have_key && i > 0 &&
	    (last - a->chain.cp_seq >= a->cp_records ||
	    gk_mono_us() - a->cp_mono >= a->cp_interval_us);
	if (cp_due && make_cp(a, last, a->links[i - 1].hash, &cp) != 0) {
		gk_error("audit: cannot sign a checkpoint");
		cp_due = 0;
	}
	if ((r = store_batch(a, i, cp_due ? &cp : NULL, err,
	    sizeof(err))) != 0) {
		if (r == GK_ERR_EXISTS && !retried) {
			/* another writer appended to our chain (a prune
			 * record from `audit prune`): reread its tail */
			retried = 1;
			a->chain_loaded = 0;
			goto again;
		}
		if (!a->db_down)
			gk_error("audit: cannot write to %s (%s); answering "
			    "503 until it can be written", a->label, err);
		goto fail;
	}
	if (i > 0) {
		a->chain.seq = last;
		memcpy(a->chain.hash, a->links[i - 1].hash, AUDIT_HASH_LEN);
	}
	if (cp_due)
		cp_committed(a, &cp);
	if (a->db_down)
		gk_info("audit: %s is writable again", a->label);
	a->db_down = 0;
	return 0;
fail:
	a->db_down = 1;
	/* start from a fresh connection (and re-read the chain) next time */
	drop_conn(a);
	return GK_ERR_UNAVAILABLE;
}

/* One retention chunk; returns 1 while more rows may remain. The first
 * chunk for an instance writes its prune record (prune_note). */
static int
prune_step_run(gk_audit *a, uint64_t *deleted)
{
	int64_t before = gk_sub_sat(gk_now_us(), a->retention_us);
	audit_checkpoint cp;
	char err[256];
	int more = 0, found = 0;

	*deleted = 0;
	commit_open(a);
	if (a->conn == NULL) {
		if (open_conn(a, err, sizeof(err)) != 0)
			return 0; /* the next batch reports it; retry */
	}
	if (!a->prune_have) {
		if (!a->have_key)
			return 0;	/* a prune must be signed */
		if (a->conn->ops->prune_target(a->conn, before, &a->prune_to,
		    &found, err, sizeof(err)) != 0)
			goto failed;
		if (!found)
			return 0;
		if (audit_prune_note(a->conn, a->seed, "retention", &a->prune_to,
		    before, &a->scratch, &cp, err, sizeof(err)) != 0)
			goto failed;
		if (strcmp(cp.instance, a->instance) == 0) {
			/* our own chain grew by the prune record */
			cp_committed(a, &cp);
			a->chain_loaded = 0;
		}
		a->prune_have = 1;
		return 1;
	}
	if (a->conn->ops->prune_span(a->conn, a->prune_to.instance,
	    a->prune_to.seq, deleted, &more, err, sizeof(err)) != 0)
		goto failed;
	if (!more)
		a->prune_have = 0;	/* next: another instance, or done */
	return 1;
failed:
	gk_warn("audit: retention on %s failed (%s); retrying in an hour",
	    a->label, err);
	a->prune_have = 0;
	return 0;
}

/*
 * With the journal, SQLite's commits do not wait for the disk; a prune
 * record and the deletions are not in the journal, so they commit with
 * a full sync (which also makes every earlier commit durable).
 */
static int
prune_step(gk_audit *a, uint64_t *deleted)
{
	char err[256];
	int more;

	*deleted = 0;
	commit_open(a);
	if (a->conn == NULL && open_conn(a, err, sizeof(err)) != 0)
		return 0; /* the next batch reports it; retry */
	if (a->journal != NULL && audit_sqlite_set_full_sync(a->conn, 1) != 0)
		return 0;
	more = prune_step_run(a, deleted);
	if (a->journal != NULL && a->conn != NULL &&
	    audit_sqlite_set_full_sync(a->conn, 0) != 0)
		drop_conn(a);	/* reopened with the journal's setting */
	return more;
}

static void
mono_deadline(int64_t mono_us, struct timespec *ts)
{
	ts->tv_sec = (time_t)(mono_us / 1000000);
	ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
}

static void *
writer_main(void *p)
{
	gk_audit *a = p;
	struct audit_node *batch, *n, *next;
	struct timespec ts;
	uint64_t deleted;
	int64_t deadline;
	size_t k;
	int res, more, did;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		/* writes first, then one retention chunk, then sleep */
		did = 0;
		if (a->count > 0 && (!a->paused || a->closing)) {
			/* take up to batch_max records off the head */
			batch = a->head;
			n = batch;
			for (k = 1; k < a->batch_max && n->next != NULL; k++)
				n = n->next;
			a->head = n->next;
			if (a->head == NULL)
				a->tail = NULL;
			n->next = NULL;
			a->count -= k;
			a->busy = 1;
			if (k > a->stats.max_batch)
				a->stats.max_batch = k;
			pthread_mutex_unlock(&a->lock);

			res = write_batch(a, batch, k);
			for (n = batch; n != NULL; n = next) {
				next = n->next;
				if (n->done != NULL)
					n->done(n->arg, res);
				free(n);
			}

			pthread_mutex_lock(&a->lock);
			a->busy = 0;
			if (res == 0) {
				a->stats.commits++;
				a->stats.committed += k;
			} else {
				a->stats.failed_batches++;
				a->stats.failed += k;
			}
			pthread_cond_broadcast(&a->idle);
			did = 1;
		}
		/* one retention chunk per batch, so neither starves */
		if (a->prune_pending && !a->paused && !a->closing) {
			pthread_mutex_unlock(&a->lock);
			more = prune_step(a, &deleted);
			pthread_mutex_lock(&a->lock);
			a->stats.pruned += deleted;
			if (!more) {
				a->prune_pending = 0;
				a->stats.prune_passes++;
				a->next_prune_mono = gk_mono_us() + HOUR_US;
				pthread_cond_broadcast(&a->idle);
			}
			did = 1;
		}
		if (did)
			continue;
		if (a->closing) {
			/* sign the tail so a cut after shutdown is seen (also
			 * after a failed batch dropped the connection) */
			char err[256];

			pthread_mutex_unlock(&a->lock);
			if (a->have_key && a->conn == NULL &&
			    audit_conn_open(a->path, 1, &a->conn, err,
			    sizeof(err)) != 0)
				gk_error("audit: cannot open %s (%s); no final "
				    "checkpoint", a->label, err);
			if (a->conn != NULL && load_chain(a) == 0)
				write_checkpoint(a);
			pthread_mutex_lock(&a->lock);
			break;
		}
		deadline = INT64_MAX;
		if (a->retention_us > 0 && !a->prune_pending) {
			if (gk_mono_us() >= a->next_prune_mono) {
				a->prune_pending = 1;
				continue;
			}
			deadline = a->next_prune_mono;
		}
		if (cp_pending(a) && !a->paused) {
			if (gk_mono_us() >= a->cp_mono + a->cp_interval_us) {
				pthread_mutex_unlock(&a->lock);
				write_checkpoint(a);
				pthread_mutex_lock(&a->lock);
				continue;
			}
			if (a->cp_mono + a->cp_interval_us < deadline)
				deadline = a->cp_mono + a->cp_interval_us;
		}
		if (deadline != INT64_MAX) {
			mono_deadline(deadline, &ts);
			pthread_cond_timedwait(&a->wake, &a->lock, &ts);
		} else {
			pthread_cond_wait(&a->wake, &a->lock);
		}
	}
	pthread_mutex_unlock(&a->lock);
	/* a clean stop leaves an empty journal when SQLite holds it all */
	commit_open(a);
	journal_trim(a, 0);
	audit_conn_close(a->conn);
	a->conn = NULL;
	return NULL;
}

/* ---- open / close ---------------------------------------------------- */

static void
audit_free(gk_audit *a)
{
	struct audit_node *n, *next;

	if (a == NULL)
		return;
	for (n = a->head; n != NULL; n = next) {
		next = n->next;
		free(n);
	}
	audit_conn_close(a->conn);
	audit_journal_close(a->journal);
	audit_conn_close(a->jti_conn);
	if (a->inited & INIT_JTI_LOCK)
		pthread_mutex_destroy(&a->jti_lock);
	if (a->inited & INIT_WAKE)
		pthread_cond_destroy(&a->wake);
	if (a->inited & INIT_IDLE)
		pthread_cond_destroy(&a->idle);
	if (a->inited & INIT_LOCK)
		pthread_mutex_destroy(&a->lock);
	if (a->inited & INIT_WAIT_LOCK)
		pthread_mutex_destroy(&a->wait_lock);
	free(a->recs);
	free(a->links);
	free(a->path);
	free(a->label);
	free(a->cp_path);
	free(a->space_dir);
	gk_buf_release(&a->scratch);
	gk_wipe(a->seed, sizeof(a->seed));
	free(a);
}

int
audit_open(const audit_settings *cfg, gk_audit **out)
{
	return audit_open_as(cfg, NULL, out);
}

int
audit_open_as(const audit_settings *cfg, const char *suffix,
    gk_audit **out)
{
	gk_audit *a = NULL;
	pthread_condattr_t attr;
	char err[256];
	int64_t keep;
	size_t slots;
	int r = GK_ERR_INTERNAL, attr_ok = 0;
	const char *target = cfg != NULL ? cfg->target : NULL;

	*out = NULL;
	if (target == NULL || target[0] == '\0')
		return GK_ERR_CONFIG;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return GK_ERR_NOMEM;
	gk_buf_init(&a->scratch, AUDIT_ENC_CAP);
	if (pthread_condattr_init(&attr) != 0)
		goto out;
	attr_ok = 1;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0)
		goto out;
	if (pthread_mutex_init(&a->lock, NULL) != 0)
		goto out;
	a->inited |= INIT_LOCK;
	if (pthread_mutex_init(&a->wait_lock, NULL) != 0)
		goto out;
	a->inited |= INIT_WAIT_LOCK;
	if (pthread_cond_init(&a->wake, &attr) != 0)
		goto out;
	a->inited |= INIT_WAKE;
	if (pthread_cond_init(&a->idle, NULL) != 0)
		goto out;
	a->inited |= INIT_IDLE;
	if (pthread_mutex_init(&a->jti_lock, NULL) != 0)
		goto out;
	a->inited |= INIT_JTI_LOCK;

	a->queue_max = AUDIT_QUEUE_MAX;
	a->batch_max = cfg->batch == 0 ? AUDIT_BATCH_DEFAULT : cfg->batch;
	if (a->batch_max > AUDIT_BATCH_MAX)
		a->batch_max = AUDIT_BATCH_MAX;
	if (__builtin_mul_overflow((int64_t)cfg->retention_days, DAY_US,
	    &keep))
		keep = 0; /* beyond any clock: the same as keeping forever */
	a->retention_us = keep;
	a->prune_pending = keep > 0;
	if ((a->path = strdup(target)) == NULL ||
	    (a->label = strdup(audit_label(target))) == NULL ||
	    gk_mul_size(a->batch_max, sizeof(*a->recs), &slots) != 0 ||
	    (a->recs = malloc(slots)) == NULL ||
	    gk_mul_size(a->batch_max, sizeof(*a->links), &slots) != 0 ||
	    (a->links = malloc(slots)) == NULL ||
	    (cfg->checkpoint_file != NULL &&
	    cfg->checkpoint_file[0] != '\0' &&
	    (a->cp_path = strdup(cfg->checkpoint_file)) == NULL)) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	if (cfg->min_free_mb > 0 && audit_backend_is_file(a->path)) {
		char *copy = strdup(a->path);

		if (copy == NULL || (a->space_dir = strdup(dirname(copy))) ==
		    NULL) {
			free(copy);
			r = GK_ERR_NOMEM;
			goto out;
		}
		free(copy);
		a->min_free = (uint64_t)cfg->min_free_mb << 20;
	}
	a->cp_records = cfg->checkpoint_records != 0 ?
	    cfg->checkpoint_records : 1000;
	a->cp_interval_us = (int64_t)(cfg->checkpoint_seconds != 0 ?
	    cfg->checkpoint_seconds : 60) * 1000000;
	if (cfg->key != NULL && cfg->key_len == AUDIT_KEY_LEN) {
		memcpy(a->seed, cfg->key, AUDIT_KEY_LEN);
		a->have_key = 1;
	}
	if ((r = audit_instance_resolve(cfg->instance_id,
	    cfg->keys_dir, a->instance)) != 0) {
		gk_error("audit: cannot set up the instance id under %s: %s",
		    cfg->keys_dir != NULL ? cfg->keys_dir : "?",
		    gk_err_str(r));
		goto out;
	}
	if (suffix != NULL) {
		size_t n = strlen(a->instance);

		if (n + 1 + strlen(suffix) > AUDIT_INSTANCE_MAX) {
			r = GK_ERR_CONFIG;
			goto out;
		}
		snprintf(a->instance + n, sizeof(a->instance) - n, ".%s",
		    suffix);
		if (!audit_instance_valid(a->instance)) {
			r = GK_ERR_CONFIG;
			goto out;
		}
	}
	if (open_conn(a, err, sizeof(err)) != 0) {
		if (audit_backend_is_file(a->path)) {
			/* a local file that cannot be opened is a setup error */
			gk_error("audit: cannot open the database (%s)", err);
			r = GK_ERR_UNAVAILABLE;
			goto out;
		}
		/*
		 * A database server may come up after us: start, answer
		 * grants 503, and connect on each batch until it works.
		 */
		gk_error("audit: cannot connect to %s (%s); answering 503 "
		    "until it can be written", a->label, err);
		a->db_down = 1;
	} else if (a->journal != NULL && load_chain(a) != 0) {
		/* the journal's records could not be put back */
		r = GK_ERR_UNAVAILABLE;
		goto out;
	}
	if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	a->started = 1;
	*out = a;
	a = NULL; /* transferred */
	r = 0;
out:
	audit_free(a);
	if (attr_ok)
		pthread_condattr_destroy(&attr);
	return r;
}

void
audit_close(gk_audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->closing = 1;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	audit_free(a);
}

void
audit_abandon(gk_audit *a)
{
	struct audit_node *n, *next;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	n = a->head;
	a->head = a->tail = NULL;
	a->count = 0;
	pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
	for (; n != NULL; n = next) {
		next = n->next;
		if (n->done != NULL)
			n->done(n->arg, GK_ERR_UNAVAILABLE);
		free(n);
	}
}

/* ---- submit / write -------------------------------------------------- */

/*
 * 1 while the audit's file system has less than min_free bytes free,
 * looked at no more than once a second (by whoever submits).
 */
static int
low_space(gk_audit *a)
{
	struct statvfs sv;
	int64_t now = gk_mono_us(), last;
	int low;

	if (a->space_dir == NULL)
		return 0;
	last = atomic_load(&a->space_checked_mono);
	if (now - last < 1000000 ||
	    !atomic_compare_exchange_strong(&a->space_checked_mono, &last,
	    now))
		return atomic_load(&a->low_space);
	low = statvfs(a->space_dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < a->min_free;
	if (low != atomic_exchange(&a->low_space, low))
		gk_warn("audit: %s has %s %llu MiB free: refusal records %s",
		    a->space_dir, low ? "less than" : "again",
		    (unsigned long long)(a->min_free >> 20), low ?
		    "are dropped (counted), grants still recorded" :
		    "are written again");
	return low;
}

static int
is_refusal(const gk_audit_record *rec)
{
	return rec->decision == NULL || strcmp(rec->decision, "allow") != 0;
}

void
audit_counters(gk_audit *a, gk_audit_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (a == NULL)
		return;
	out->fields_cut = atomic_load(&a->fields_cut);
	out->refusals_dropped = atomic_load(&a->refusals_dropped);
	out->low_space = atomic_load(&a->low_space);
}

int
audit_submit(gk_audit *a, const gk_audit_record *rec,
    gk_audit_done_fn done, void *arg)
{
	struct audit_node *n = NULL;
	unsigned ncut = 0;
	int r = GK_ERR_INTERNAL, refusal;

	if (a == NULL || rec == NULL)
		return GK_ERR_UNAVAILABLE;
	refusal = is_refusal(rec);
	if (refusal && low_space(a)) {
		atomic_fetch_add(&a->refusals_dropped, 1);
		return GK_ERR_TOO_LARGE;
	}
	if ((r = node_new(rec, done, arg, &n, &ncut)) != 0)
		return r;
	if (ncut > 0)
		atomic_fetch_add(&a->fields_cut, ncut);
	pthread_mutex_lock(&a->lock);
	if (refusal && !a->closing && a->count >= a->queue_max / 2) {
		/* the other half of the queue is kept for grants */
		pthread_mutex_unlock(&a->lock);
		free(n);
		atomic_fetch_add(&a->refusals_dropped, 1);
		return GK_ERR_TOO_LARGE;
	}
	if (a->closing || a->count >= a->queue_max) {
		pthread_mutex_unlock(&a->lock);
		free(n);
		return GK_ERR_UNAVAILABLE;
	}
	if (a->tail != NULL)
		a->tail->next = n;
	else
		a->head = n;
	a->tail = n;
	a->count++;
	pthread_cond_signal(&a->wake);
	pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

int
audit_jti_use(gk_audit *a, const char *jti, int64_t exp_s)
{
	char err[256];
	int r;

	if (a == NULL || jti == NULL || jti[0] == '\0' || strlen(jti) > 256)
		return GK_ERR_INVALID;
	pthread_mutex_lock(&a->jti_lock);
	if (a->jti_conn == NULL &&
	    audit_conn_open(a->path, 1, &a->jti_conn, err, sizeof(err)) != 0) {
		pthread_mutex_unlock(&a->jti_lock);
		gk_error("audit: replay cache unavailable (%s)", err);
		return GK_ERR_UNAVAILABLE;
	}
	r = a->jti_conn->ops->jti_use != NULL ?
	    a->jti_conn->ops->jti_use(a->jti_conn, jti, exp_s) :
	    GK_ERR_UNAVAILABLE;
	if (r == GK_ERR_UNAVAILABLE) {
		/* a fresh connection next time, as the writer does */
		audit_conn_close(a->jti_conn);
		a->jti_conn = NULL;
	}
	pthread_mutex_unlock(&a->jti_lock);
	return r;
}

struct waiter {
	gk_audit *a;
	pthread_cond_t cond;
	int finished;
	int result;
};

static void
write_done(void *arg, int result)
{
	struct waiter *w = arg;
	gk_audit *a = w->a;

	pthread_mutex_lock(&a->wait_lock);
	w->result = result;
	w->finished = 1;
	pthread_cond_signal(&w->cond);
	/* w may be gone as soon as the lock is released */
	pthread_mutex_unlock(&a->wait_lock);
}

int
audit_write(gk_audit *a, const gk_audit_record *rec)
{
	struct waiter w;
	int r = GK_ERR_INTERNAL;

	if (a == NULL)
		return GK_ERR_UNAVAILABLE;
	memset(&w, 0, sizeof(w));
	w.a = a;
	if (pthread_cond_init(&w.cond, NULL) != 0)
		return GK_ERR_INTERNAL;
	if ((r = audit_submit(a, rec, write_done, &w)) != 0)
		goto out;
	pthread_mutex_lock(&a->wait_lock);
	while (!w.finished)
		pthread_cond_wait(&w.cond, &a->wait_lock);
	r = w.result;
	pthread_mutex_unlock(&a->wait_lock);
out:
	pthread_cond_destroy(&w.cond);
	return r;
}

/* ---- debug hooks ----------------------------------------------------- */

void
audit_debug_stats(gk_audit *a, audit_stats *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->stats;
	out->queued = a->count;
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_pause(gk_audit *a, int paused)
{
	pthread_mutex_lock(&a->lock);
	a->paused = paused;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_wait_queued(gk_audit *a, size_t n)
{
	pthread_mutex_lock(&a->lock);
	while (a->count < n)
		pthread_cond_wait(&a->idle, &a->lock);
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_wait_idle(gk_audit *a)
{
	pthread_mutex_lock(&a->lock);
	while (a->count > 0 || a->busy || a->prune_pending)
		pthread_cond_wait(&a->idle, &a->lock);
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_set_queue_max(gk_audit *a, size_t max)
{
	pthread_mutex_lock(&a->lock);
	a->queue_max = max != 0 ? max : AUDIT_QUEUE_MAX;
	pthread_mutex_unlock(&a->lock);
}

const char *
audit_instance(const gk_audit *a)
{
	return a->instance;
}
