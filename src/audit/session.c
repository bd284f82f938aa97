/*
 * session.c - the writer's connection to the store: opening it (with the
 * SQLite journal), committing the transaction journaled batches share,
 * emptying the journal once SQLite holds its records durably, dropping
 * the connection after a failure, and signing checkpoints.
 */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- writer ---------------------------------------------------------- */

/* 1 when records after the last checkpoint wait for one. */
int
writer_cp_pending(const gk_audit *a)
{
	return a->have_key && a->conn != NULL && a->chain_loaded &&
	    a->chain.seq > a->chain.cp_seq;
}

int
writer_make_cp(gk_audit *a, int64_t seq, const uint8_t hash[AUDIT_HASH_LEN],
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
void
writer_cp_committed(gk_audit *a, const audit_checkpoint *cp)
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

/* ---- the journal (SQLite) -------------------------------------------- */

/*
 * Opens a->conn; with SQLite also the journal, flushed before each
 * COMMIT (so the commit itself does not wait for the disk).
 */
int
writer_open_conn(gk_audit *a, char *err, size_t errlen)
{
	int r;

	a->chain_loaded = 0;
	if ((r = audit_conn_open(a->path, 1, &a->conn, err, errlen)) != 0)
		return r;
	/* the journal is SQLite's (not PostgreSQL's, nor a test backend's) */
	if (audit_backend_for(a->path) != &audit_sqlite_backend)
		return 0;
	if (a->journal == NULL && (r = audit_journal_open(a->path,
	    a->suffix, &a->journal, err, errlen)) != 0)
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


/*
 * Empties the journal when SQLite holds everything durably itself. A
 * full journal (over > 0, while serving) needs only SQLite's WAL synced,
 * one fdatasync that holds the writer briefly; at start, at a stop and
 * when idle (over 0) the WAL is copied into the database and that synced
 * too, so that the database file alone holds every record.
 */
void
writer_journal_trim(gk_audit *a, int64_t over, int shrink)
{
	int durable;

	/* never before the journal was put back (writer_load_chain) */
	if (a->journal == NULL || a->conn == NULL || !a->chain_loaded ||
	    audit_journal_size(a->journal) <= over)
		return;
	/* kept for reuse while running (its blocks are written: a batch
	 * then commits no metadata), truncated at start and at a clean
	 * stop */
	durable = (over > 0 && audit_sqlite_wal_sync(a->conn) == 0) ||
	    audit_sqlite_durable(a->conn) == 0;
	if (durable && audit_journal_reset(a->journal, shrink) != 0)
		gk_warn("audit: cannot empty %s (it is kept; its records "
		    "are stored)", audit_journal_path(a->journal));
}

/* Drops the connection (the next batch reopens it and re-reads the
 * chain, putting back from the journal what SQLite lost). */
void
writer_drop_conn(gk_audit *a)
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
void
writer_commit_open(gk_audit *a)
{
	char err[256];

	if (a->journal == NULL || a->conn == NULL || a->tx_records == 0)
		return;
	a->tx_records = 0;
	if (audit_sqlite_commit(a->conn, err, sizeof(err)) != 0) {
		audit_fail_line(a, GK_LOG_ERROR, "cannot commit to %s (%s); "
		    "its records are in the journal, putting them back",
		    a->label, err);
		writer_drop_conn(a);
		return;
	}
	writer_journal_trim(a, AUDIT_JOURNAL_FLUSH, 0);
}

/*
 * The journal's fdatasync is what makes an answered batch durable (SQLite
 * commits without waiting for the disk), so a journal deleted, replaced
 * or truncated under the writer no longer holds what it answered: a
 * crash before SQLite's next checkpoint would lose it. SQLite is made
 * durable itself first (the batches answered on the lost file, and the
 * batch in hand, which then counts), then the journal starts over at its
 * path. While that fails, batches are refused.
 */
int
writer_journal_renew(gk_audit *a, int how)
{
	const char *path = audit_journal_path(a->journal);
	char err[256] = "";
	int first = a->journal_lost == 0, durable = 0;

	a->journal_lost = how;
	a->tx_records = 0;
	if (audit_sqlite_commit(a->conn, err, sizeof(err)) == 0) {
		/* PASSIVE, or (readers on older snapshots) TRUNCATE, which
		 * waits for them; either syncs the WAL and the database */
		durable = audit_sqlite_durable(a->conn) == 0 ||
		    a->conn->ops->flush(a->conn) == 0;
		if (!durable)
			snprintf(err, sizeof(err), "its WAL cannot be "
			    "checkpointed");
	}
	if (!durable) {
		if (first)
			gk_error("audit: %s was %s while serving and %s cannot "
			    "be made durable without it (%s); answering 503 "
			    "until it can", path, audit_journal_lost_name(how),
			    a->label, err);
		return GK_ERR_UNAVAILABLE;
	}
	if (audit_journal_renew(a->journal, how, err, sizeof(err)) != 0) {
		if (first)
			gk_error("audit: %s was %s while serving; its records "
			    "are durable in %s, but a new journal cannot be "
			    "started (%s); answering 503 until it can", path,
			    audit_journal_lost_name(how), a->label, err);
		return GK_ERR_UNAVAILABLE;
	}
	if (first)
		gk_error("audit: %s was %s while serving; its records are "
		    "durable in %s, a new journal goes on at its path", path,
		    audit_journal_lost_name(how), a->label);
	else
		gk_info("audit: a new journal is started at %s; answering "
		    "again", path);
	a->journal_lost = 0;
	return 0;
}
