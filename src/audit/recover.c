/*
 * recover.c - what the writer does when it (re)opens the store: reads
 * where its chain ends, puts back from the journal the records SQLite
 * lost, and appends to the checkpoint file the signed checkpoints an
 * earlier crash left only in the database.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	/* the token ids these grants used: their replay-cache rows were
	 * committed without waiting for the disk, the grants' records are
	 * what made them durable (audit_jti_use) */
	for (i = 0, r = 0; i < rp->n && r == 0; i++)
		if (rp->recs[i]->jti != NULL && rp->recs[i]->decision != NULL &&
		    strcmp(rp->recs[i]->decision, "allow") == 0)
			r = audit_sqlite_jti_restore(a->conn, rp->recs[i]->jti);
	if (r == 0)
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
	if (rp->added > 0)	/* once per failed commit: limited */
		audit_fail_line(a, GK_LOG_WARN, "%llu records put back from "
		    "%s (the database had lost them)",
		    (unsigned long long)rp->added,
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
		r = audit_journal_open(a->path, a->suffix, &a->journal,
		    rp->err, sizeof(rp->err));
		if (r != 0)
			audit_fail_line(a, GK_LOG_ERROR, "%s",
			    rp->err);
	} else if (r != 0) {
		audit_fail_line(a, GK_LOG_ERROR, "cannot put back the "
		    "journal's records (%s)", rp->err);
	} else {
		writer_journal_trim(a, 0, 1);
	}
	free(rp);
	return r == 0 ? 0 : GK_ERR_UNAVAILABLE;
}

/*
 * Checkpoint file recovery. The file gets a checkpoint's line after the
 * database committed it, so a crash in between (or a failed append)
 * leaves a signed checkpoint in the database only, and a crash inside
 * the append a partial last line. Once per run, when the chain is first

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
int
writer_load_chain(gk_audit *a)
{
	char err[256];

	if (a->chain_loaded)
		return 0;
	if (a->conn->ops->tail(a->conn, a->instance, &a->chain, err,
	    sizeof(err)) != 0) {
		if (!a->db_down)
			audit_fail_line(a, GK_LOG_ERROR, "cannot read the "
			    "chain of %s (%s)%s", a->instance, err,
			    a->open_err != NULL ? "" : "; answering 503");
		return GK_ERR_UNAVAILABLE;
	}
	if (a->carry_chain) {
		/*
		 * A file deleted or replaced while serving does not restart
		 * the chain: it goes on where it was, so that audit verify
		 * shows the records the new file lacks as deleted.
		 */
		a->carry_chain = 0;
		if (a->chain.seq < a->carried.seq) {
			gk_error("audit: %s was deleted or replaced while "
			    "serving: records up to seq %lld of %s are not in "
			    "it (audit verify reports them deleted: restore "
			    "them from a backup); the chain goes on at seq "
			    "%lld", a->label, (long long)a->carried.seq,
			    a->instance, (long long)a->carried.seq + 1);
			a->chain = a->carried;
		} else {
			gk_warn("audit: %s was moved or replaced; reopened",
			    a->label);
		}
	}
	if (replay_journal(a) != 0)
		return GK_ERR_UNAVAILABLE;
	a->chain_loaded = 1;
	a->cp_mono = gk_mono_us();
	cp_file_recover(a);
	return 0;
}
