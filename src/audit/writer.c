/*
 * writer.c - the writer thread (group commit): takes up to batch_max
 * queued records, chains and stores them (journal and SQLite, or one
 * PostgreSQL transaction), answers each record's done callback, signs
 * checkpoints, and runs one retention chunk between batches.
 */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Records per SQLite transaction behind the journal, and its age. */
#define TX_RECORDS_MAX 8192u
#define TX_AGE_US 20000

/*
 * Stores n records (and cp). Without the journal: one transaction.
 * With it: the rows go into SQLite's open transaction (which finds a
 * clash with another writer of the chain before anything is on the
 * disk), then the entries into the journal (one write, one fdatasync);
 * the batch counts when both worked. The transaction is committed before
 * the answer when the batch is a lone record and no more wait (so a
 * request on an idle log finds its record searchable once answered), or
 * carries a checkpoint, or after TX_RECORDS_MAX records or TX_AGE_US.
 * A batch of several records (concurrent requests) is answered first
 * and committed right after it when nothing else waits (writer_main):
 * the commit then costs no request any latency, and under load many
 * batches share one commit; the records are durable meanwhile in the
 * journal.
 *
 * Such a batch, when the transaction is already open, is even answered
 * before its rows go in: the journal's fdatasync is what makes it
 * durable, and the clash the insert would find first cannot happen, as
 * SQLite's write lock (BEGIN IMMEDIATE) has been ours since an earlier
 * batch of this transaction went in after the chain's tail was read.
 * The requests then do not wait for the insert (a few us a record), and
 * their next ones queue while it runs. Should the insert fail after all,
 * the records are answered and in the journal: the connection is
 * dropped and reopening puts them back, as after a failed commit. A lone
 * record keeps the order above: inserted and committed, then answered,
 * and so does a batch whose journal was found lost after its flush.
 * *answered tells whether the batch (the list at batch) was answered.
 */
static int
store_batch(gk_audit *a, size_t n, const audit_checkpoint *cp,
    struct audit_node *batch, int *answered, char *err, size_t errlen)
{
	struct audit_node *e;
	int r, more, how = 0, early;

	if (a->journal == NULL)
		return a->conn->ops->insert(a->conn, a->instance, a->recs,
		    a->links, n, cp, err, errlen);
	if (cp != NULL && audit_journal_add_cp(a->journal, cp) != 0) {
		audit_journal_end(a->journal, 0);
		audit_set_err(err, errlen, "%s cannot be written",
		    audit_journal_path(a->journal));
		return GK_ERR_UNAVAILABLE;
	}
	early = batch != NULL && n > 1 && a->tx_records > 0;
	r = early ? 0 : audit_sqlite_insert_open(a->conn, a->instance,
	    a->recs, a->links, n, cp, err, errlen);
	if (r == 0 && audit_journal_flush(a->journal) != 0) {
		audit_set_err(err, errlen, "%s cannot be written",
		    audit_journal_path(a->journal));
		r = GK_ERR_UNAVAILABLE;
	}
	/* the file flushed is no longer the journal (deleted, replaced,
	 * truncated: one fstat and one stat): the batch counts only once
	 * SQLite holds it durably itself (writer_journal_renew) */
	if (r == 0)
		how = audit_journal_check(a->journal);
	if (r == 0 && early && how == 0) {
		audit_journal_end(a->journal, 1);
		for (e = batch; e != NULL; e = e->next) {
			if (e->done != NULL)
				e->done(e->arg, 0);
			e->done = NULL;
		}
		*answered = 1;
		r = audit_sqlite_insert_open(a->conn, a->instance, a->recs,
		    a->links, n, cp, err, errlen);
	} else {
		if (r == 0 && early)	/* the journal lost: rows first */
			r = audit_sqlite_insert_open(a->conn, a->instance,
			    a->recs, a->links, n, cp, err, errlen);
		if (r == 0 && how != 0) {
			if (writer_journal_renew(a, how) == 0)
				return 0;	/* durable in SQLite */
			audit_set_err(err, errlen, "%s was %s",
			    audit_journal_path(a->journal),
			    audit_journal_lost_name(how));
			r = GK_ERR_UNAVAILABLE;
		}
		audit_journal_end(a->journal, r == 0);
	}
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
	if ((!more && n <= 1) || cp != NULL ||
	    a->tx_records >= TX_RECORDS_MAX ||
	    gk_mono_us() - a->tx_mono >= TX_AGE_US)
		writer_commit_open(a);
	return 0;
}

/* Signs and stores a checkpoint for records committed since the last. */
static void
write_checkpoint(gk_audit *a)
{
	audit_checkpoint cp;
	char err[256];

	if (!writer_cp_pending(a))
		return;
	if (writer_make_cp(a, a->chain.seq, a->chain.hash, &cp) != 0) {
		gk_error("audit: cannot sign a checkpoint");
		a->cp_mono = gk_mono_us();
		return;
	}
	if (store_batch(a, 0, &cp, NULL, NULL, err, sizeof(err)) != 0) {
		gk_warn("audit: cannot store checkpoint %" PRId64 " (%s)",
		    cp.seq, err);
		writer_drop_conn(a);
		return;
	}
	writer_cp_committed(a, &cp);
}

/*
 * Commits a batch; reopens the database first if it was dropped.
 * *answered: its records were answered (durable) even if it then failed.
 */
static int
write_batch(gk_audit *a, struct audit_node *batch, size_t k, int *answered)
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
		writer_commit_open(a);
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
		    audit_journal_reset(a->journal, 1) != 0) {
			a->db_down = 1;
			return GK_ERR_UNAVAILABLE;
		}
		if (a->chain_loaded) {
			a->carried = a->chain;
			a->carry_chain = 1;
		}
		writer_drop_conn(a);
	}
	if (a->conn == NULL && writer_open_conn(a, err, sizeof(err)) != 0) {
		if (!a->db_down)
			gk_error("audit: cannot open the database (%s); "
			    "answering 503 until it can be written", err);
		a->db_down = 1;
		return GK_ERR_UNAVAILABLE;
	}
again:
	if (writer_load_chain(a) != 0)
		goto fail;
	/* the journal was lost and no new one started yet: nothing is
	 * answered until it is (logged once by writer_journal_renew) */
	if (a->journal_lost != 0 && a->journal != NULL &&
	    writer_journal_renew(a, audit_journal_check(a->journal) != 0 ?
	    audit_journal_check(a->journal) : a->journal_lost) != 0) {
		a->db_down = 1;
		writer_drop_conn(a);
		return GK_ERR_UNAVAILABLE;
	}
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
	if (cp_due && writer_make_cp(a, last, a->links[i - 1].hash, &cp) != 0) {
		gk_error("audit: cannot sign a checkpoint");
		cp_due = 0;
	}
	if ((r = store_batch(a, i, cp_due ? &cp : NULL, batch, answered, err,
	    sizeof(err))) != 0) {
		if (r == GK_ERR_EXISTS && !retried && !*answered) {
			/* another writer appended to our chain (a prune
			 * record from `audit prune`): reread its tail */
			retried = 1;
			a->chain_loaded = 0;
			goto again;
		}
		/* a lost journal has said so (writer_journal_renew) */
		if (!a->db_down && !a->journal_lost)
			gk_error("audit: cannot write to %s (%s); answering "
			    "503 until it can be written", a->label, err);
		goto fail;
	}
	if (i > 0) {
		a->chain.seq = last;
		memcpy(a->chain.hash, a->links[i - 1].hash, AUDIT_HASH_LEN);
	}
	if (cp_due)
		writer_cp_committed(a, &cp);
	if (a->db_down)
		gk_info("audit: %s is writable again", a->label);
	a->db_down = 0;
	return 0;
fail:
	a->db_down = 1;
	/* start from a fresh connection (and re-read the chain) next time */
	writer_drop_conn(a);
	return GK_ERR_UNAVAILABLE;
}

void
writer_jti_answer(gk_audit *a, struct audit_jti_req *q, int result)
{
	struct audit_jti_req *next;

	pthread_mutex_lock(&a->wait_lock);
	for (; q != NULL; q = next) {
		next = q->next;	/* q may be gone once signalled */
		q->result = result != 0 ? result : q->result;
		q->finished = 1;
		pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&a->wait_lock);
}

/*
 * Records the token ids of list in the open SQLite transaction the
 * batches share (no commit of their own: the grants' records, which
 * carry them, are made durable by the journal; recover.c puts back the
 * ids of grants SQLite lost). SQLite's one write lock keeps a token
 * single-use for every writer of the file.
 */
static void
jti_batch(gk_audit *a, struct audit_jti_req *list)
{
	struct audit_jti_req *q;
	char err[256] = "";
	size_t done = 0;
	int r = 0, more;

	if (a->conn == NULL && writer_open_conn(a, err, sizeof(err)) != 0)
		r = GK_ERR_UNAVAILABLE;
	else if (writer_load_chain(a) != 0)
		r = GK_ERR_UNAVAILABLE;
	for (q = list; q != NULL && r == 0; q = q->next) {
		q->result = audit_sqlite_jti_open(a->conn, q->jti, q->exp_s,
		    err, sizeof(err));
		if (q->result == GK_ERR_UNAVAILABLE) {
			/* rolled back, with batches already answered: they are
			 * in the journal, reopening puts them back */
			r = GK_ERR_UNAVAILABLE;
			writer_drop_conn(a);
			break;
		}
		done++;
	}
	if (r != 0) {
		gk_error("audit: cannot record a token id (%s)", err[0] ? err :
		    "the database cannot be opened");
	} else if (done > 0) {
		if (a->tx_records == 0)
			a->tx_mono = gk_mono_us();
		a->tx_records += done;
		pthread_mutex_lock(&a->lock);
		more = a->count > 0 && !a->closing;
		pthread_mutex_unlock(&a->lock);
		if (!more)
			writer_commit_open(a);
	}
	writer_jti_answer(a, list, r);
}

static void
mono_deadline(int64_t mono_us, struct timespec *ts)
{
	ts->tv_sec = (time_t)(mono_us / 1000000);
	ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
}

void *
writer_main(void *p)
{
	gk_audit *a = p;
	struct audit_node *batch, *n, *next;
	struct timespec ts;
	uint64_t deleted;
	int64_t deadline;
	size_t k;
	int res, more, did, answered;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		/* token ids first (a v2 request waits for its id before its
		 * record), then writes, one retention chunk, then sleep */
		did = 0;
		if (a->jq_head != NULL && (!a->paused || a->closing)) {
			struct audit_jti_req *jq = a->jq_head;

			a->jq_head = a->jq_tail = NULL;
			pthread_mutex_unlock(&a->lock);
			jti_batch(a, jq);
			pthread_mutex_lock(&a->lock);
			did = 1;
		}
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

			answered = 0;
			res = write_batch(a, batch, k, &answered);
			for (n = batch; n != NULL; n = next) {
				next = n->next;
				if (n->done != NULL)
					n->done(n->arg, res);
				free(n);
			}
			/* answered before their commit (store_batch): commit
			 * now unless the answers brought more records */
			pthread_mutex_lock(&a->lock);
			more = a->count > 0 && !a->closing;
			pthread_mutex_unlock(&a->lock);
			if (!more)
				writer_commit_open(a);

			pthread_mutex_lock(&a->lock);
			a->busy = 0;
			a->batch_mono = gk_mono_us();
			if (res == 0 || answered) {
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
			more = writer_prune_step(a, &deleted);
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
			if (a->conn != NULL && writer_load_chain(a) == 0)
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
		if (writer_cp_pending(a) && !a->paused) {
			if (gk_mono_us() >= a->cp_mono + a->cp_interval_us) {
				pthread_mutex_unlock(&a->lock);
				write_checkpoint(a);
				pthread_mutex_lock(&a->lock);
				continue;
			}
			if (a->cp_mono + a->cp_interval_us < deadline)
				deadline = a->cp_mono + a->cp_interval_us;
		}
		/* idle with records only the journal holds durably: SQLite
		 * is made durable and the journal emptied a second later, so
		 * the journal lost while idle (deleted, replaced) loses
		 * nothing; tried again a second later if it could not be
		 * (a reader's snapshot holds the WAL) */
		if (a->journal != NULL && a->conn != NULL && !a->paused &&
		    audit_journal_size(a->journal) > 0) {
			int64_t due = a->batch_mono + AUDIT_IDLE_DURABLE_US;

			if (gk_mono_us() >= due) {
				a->batch_mono = gk_mono_us();
				pthread_mutex_unlock(&a->lock);
				writer_commit_open(a);
				writer_journal_trim(a, 0, 0);
				pthread_mutex_lock(&a->lock);
				continue;
			}
			if (due < deadline)
				deadline = due;
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
	writer_commit_open(a);
	writer_journal_trim(a, 0, 1);
	audit_conn_close(a->conn);
	a->conn = NULL;
	return NULL;
}
