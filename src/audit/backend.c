/*
 * backend.c - the backend table: which backend a target names (SQLite
 * file or PostgreSQL URI), opening a connection, how to name a target in
 * messages, and the read-side entry points (search, prune) that open
 * their own connection.
 */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Tests: a backend every target opens with (NULL: the real ones). */
static const audit_backend *debug_backend;

void
audit_debug_backend(const audit_backend *be)
{
	debug_backend = be;
}

static const audit_backend *
named_backend(const char *target)
{
	if (target != NULL && (strncmp(target, "postgres://", 11) == 0 ||
	    strncmp(target, "postgresql://", 13) == 0))
		return &audit_pg_backend;
	return &audit_sqlite_backend;
}

const audit_backend *
audit_backend_for(const char *target)
{
	return debug_backend != NULL ? debug_backend : named_backend(target);
}

int
audit_conn_open(const char *target, int create, audit_conn **out,
    char *err, size_t errlen)
{
	return audit_backend_for(target)->open(target, create, out, err,
	    errlen);
}

void
audit_conn_close(audit_conn *c)
{
	if (c != NULL)
		c->ops->close(c);
}

int
audit_backend_is_file(const char *db_path)
{
	return named_backend(db_path)->local;
}

const char *
audit_label(const char *db_path)
{
	static char buf[300];
	const char *host, *at, *end;

	if (audit_backend_is_file(db_path))
		return db_path;
	/* postgresql://[user[:password]@]host[:port][/db][?...] */
	host = strstr(db_path, "://") + 3;
	end = host + strcspn(host, "?");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		host = at + 1;
	snprintf(buf, sizeof(buf), "PostgreSQL %.*s", (int)(end - host) > 200 ?
	    200 : (int)(end - host), host);
	return buf;
}

int
audit_search(const char *db_path, const gk_audit_query *q,
    gk_audit_row_fn fn, void *arg, char *err, size_t errlen)
{
	return audit_backend_for(db_path)->search(db_path, q, fn, arg, err,
	    errlen);
}

/*
 * The prune record: appended to the pruned instance's chain, with a
 * checkpoint signed over it, in one transaction, before anything is
 * deleted: who pruned, when, up to which checkpoint (seq and hash) and
 * the cut-off. verify accepts a prune anchor only when such a record,
 * covered by a signed checkpoint, allows it (README "Proving the audit
 * log"). A concurrent writer of that chain makes the insert fail on
 * (instance, seq): the tail is read again, three times at most. *cp gets
 * the checkpoint.
 */
int
audit_prune_note(audit_conn *c, const uint8_t seed[AUDIT_KEY_LEN], const char *who,
    const audit_checkpoint *t, int64_t cutoff_us, gk_buf *scratch,
    audit_checkpoint *cp, char *err, size_t errlen)
{
	const gk_audit_record *recs[1];
	gk_audit_record rec;
	audit_tail tail;
	audit_link link;
	char path[160], hex[2 * AUDIT_HASH_LEN + 1], msg[400], when[40];
	char cut[40];
	int i, r = GK_ERR_UNAVAILABLE;

	gk_hex_encode(t->hash, AUDIT_HASH_LEN, hex);
	snprintf(path, sizeof(path), AUDIT_PRUNE_PATH_FMT, t->seq, hex,
	    cutoff_us);
	gk_time_iso_us(t->time_us, when, sizeof(when));
	gk_time_iso_us(cutoff_us, cut, sizeof(cut));
	snprintf(msg, sizeof(msg), "records of %s up to seq %" PRId64
	    " (its checkpoint of %s) pruned: signed before %s", t->instance,
	    t->seq, when, cut);
	for (i = 0; i < 3; i++) {
		if ((r = c->ops->tail(c, t->instance, &tail, err,
		    errlen)) != 0)
			return r;
		memset(&rec, 0, sizeof(rec));
		rec.time_us = gk_now_us();
		rec.protocol = "audit";
		rec.operation = "prune";
		rec.path = path;
		rec.status = 200;
		rec.decision = "allow";
		rec.message = msg;
		rec.sub = who;
		link.seq = tail.seq + 1;
		memcpy(link.prev, tail.hash, AUDIT_HASH_LEN);
		if ((r = audit_chain_hash(scratch, t->instance, link.seq,
		    link.prev, &rec, link.hash)) != 0)
			return r;
		memset(cp, 0, sizeof(*cp));
		memcpy(cp->instance, t->instance, sizeof(cp->instance));
		cp->seq = link.seq;
		memcpy(cp->hash, link.hash, AUDIT_HASH_LEN);
		cp->time_us = gk_now_us();
		if ((r = audit_cp_sign(cp, seed)) != 0)
			return r;
		recs[0] = &rec;
		r = c->ops->insert(c, t->instance, recs, &link, 1, cp, err,
		    errlen);
		if (r != GK_ERR_EXISTS)
			return r;
	}
	return r;
}

int
audit_prune(const char *db_path, int64_t before_us,
    const uint8_t seed[32], const char *who, uint64_t *deleted)
{
	audit_conn *c = NULL;
	audit_checkpoint t, cp;
	uint64_t total = 0, n = 0;
	gk_buf scratch;
	int64_t now = gk_now_us();
	int r = GK_ERR_INTERNAL, more, found;
	char err[256];

	if (deleted != NULL)
		*deleted = 0;
	gk_buf_init(&scratch, AUDIT_ENC_CAP);
	if (seed == NULL || who == NULL) {
		r = GK_ERR_CONFIG;
		goto out;
	}
	/* checkpoints signed from now on (the prune records' own) are
	 * never pruned by this run */
	if (before_us > now)
		before_us = now;
	if (audit_conn_open(db_path, 0, &c, NULL, 0) != 0) {
		r = GK_ERR_IO;
		goto out;
	}
	for (;;) {
		if (c->ops->prune_target(c, before_us, &t, &found, err,
		    sizeof(err)) != 0) {
			r = GK_ERR_IO;
			goto out;
		}
		if (!found)
			break;
		if (audit_prune_note(c, seed, who, &t, before_us, &scratch, &cp,
		    err, sizeof(err)) != 0) {
			r = GK_ERR_IO;
			goto out;
		}
		do {
			if (c->ops->prune_span(c, t.instance, t.seq, &n,
			    &more, err, sizeof(err)) != 0) {
				r = GK_ERR_IO;
				goto out;
			}
			total += n;
		} while (more);
	}
	r = 0;
out:
	if (deleted != NULL)
		*deleted = total;
	gk_buf_release(&scratch);
	audit_conn_close(c);
	return r;
}

