/*
 * journal.c - the durable record of the SQLite backend: an append-only
 * file beside the database (<db>.journal) that holds every record and
 * checkpoint of a batch, written with one pwrite and one fdatasync per
 * batch by a thread of its own, while the writer inserts the same batch
 * into SQLite (which then commits without waiting for the disk:
 * synchronous=NORMAL). A batch is answered only when both are done, so
 * the disk flush and the SQLite work overlap instead of adding up.
 *
 * Once SQLite has made everything durable itself (a WAL checkpoint that
 * backfilled every frame), the journal is emptied. After a power loss
 * that took SQLite's last commits, the writer re-inserts the records the
 * journal has beyond the stored chain (each checked against the chain:
 * seq and SHA-256), so nothing that was answered is lost.
 *
 * One journal per chain and writer: the server's is <db>.journal; a
 * command-line writer with its own chain (audit_open_as) keeps
 * <db>.<suffix>.journal, locked while open, so neither writes over nor
 * empties records the other answered and SQLite does not hold yet.
 *
 * Entry: type (1 byte) || length (4 bytes big-endian) || body.
 *   'R' record:     hash[32] || canonical encoding (chain.c)
 *   'C' checkpoint: len(1) || instance || seq(8) || hash[32] || time(8)
 *                   || sig[64]
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRY_HEAD 5u
/* Batch buffer kept between batches; a larger one is freed. */
#define JOURNAL_BUF_KEEP (64u * 1024)

struct audit_journal {
	int fd;
	char *path;
	off_t size;		/* length kept (entries of committed batches) */
	gk_buf buf;		/* the batch being built / written */
	int broken;		/* an undo failed: trim to size first */

	/* the flush thread, under mu */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int job;		/* 1: write buf at size, then fdatasync */
	int busy;		/* started and not waited for */
	int result;
	int stop;
	int started;
	unsigned inited;
};

static void
put_be(uint8_t *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t
get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Writes the whole batch at j->size and flushes it to the disk. */
static int
flush_batch(audit_journal *j)
{
	const uint8_t *p = j->buf.data;
	size_t left = j->buf.len;
	off_t at = j->size;
	ssize_t w;

	while (left > 0) {
		w = pwrite(j->fd, p, left, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return GK_ERR_UNAVAILABLE;
		p += w;
		at += w;
		left -= (size_t)w;
	}
	return fdatasync(j->fd) == 0 ? 0 : GK_ERR_UNAVAILABLE;
}

static void *
flush_main(void *arg)
{
	audit_journal *j = arg;
	int r;

	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (!j->job && !j->stop)
			pthread_cond_wait(&j->cv, &j->mu);
		if (!j->job)
			break;
		pthread_mutex_unlock(&j->mu);
		r = flush_batch(j);
		pthread_mutex_lock(&j->mu);
		j->result = r;
		j->job = 0;
		pthread_cond_broadcast(&j->cv);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* flock(LOCK_EX), waiting up to AUDIT_BUSY_MS. */
static int
lock_wait(int fd)
{
	int i;

	for (i = 0; i < AUDIT_BUSY_MS / 10; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return GK_ERR_UNAVAILABLE;
		usleep(10000);
	}
	return GK_ERR_UNAVAILABLE;
}

void
audit_journal_close(audit_journal *j)
{
	if (j == NULL)
		return;
	if (j->started) {
		pthread_mutex_lock(&j->mu);
		j->stop = 1;
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thread, NULL);
	}
	if (j->inited & 1u)
		pthread_mutex_destroy(&j->mu);
	if (j->inited & 2u)
		pthread_cond_destroy(&j->cv);
	if (j->fd >= 0)
		close(j->fd);
	gk_buf_release(&j->buf);
	free(j->path);
	free(j);
}

int
audit_journal_open(const char *db_path, const char *suffix,
    audit_journal **out, char *err, size_t errlen)
{
	audit_journal *j;
	struct stat st;
	size_t n = strlen(db_path) + sizeof(".journal") +
	    (suffix != NULL ? strlen(suffix) + 1 : 0);

	*out = NULL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return GK_ERR_NOMEM;
	j->fd = -1;
	gk_buf_init(&j->buf, (size_t)AUDIT_BATCH_MAX * 2048u + (1u << 20));
	if ((j->path = malloc(n)) == NULL)
		goto nomem;
	if (suffix != NULL)
		snprintf(j->path, n, "%s.%s.journal", db_path, suffix);
	else
		snprintf(j->path, n, "%s.journal", db_path);
	if (pthread_mutex_init(&j->mu, NULL) != 0)
		goto nomem;
	j->inited |= 1u;
	if (pthread_cond_init(&j->cv, NULL) != 0)
		goto nomem;
	j->inited |= 2u;
	j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	/* a chain's journal has one writer: two command-line writers of
	 * the same chain take turns (the size is read under the lock) */
	if (j->fd >= 0 && suffix != NULL && lock_wait(j->fd) != 0) {
		audit_set_err(err, errlen, "%s is held by another writer",
		    j->path);
		audit_journal_close(j);
		return GK_ERR_UNAVAILABLE;
	}
	if (j->fd < 0 || fstat(j->fd, &st) != 0) {
		audit_set_err(err, errlen, "%s: %s", j->path, strerror(errno));
		audit_journal_close(j);
		return GK_ERR_UNAVAILABLE;
	}
	j->size = st.st_size;
	if (pthread_create(&j->thread, NULL, flush_main, j) != 0)
		goto nomem;
	j->started = 1;
	*out = j;
	return 0;
nomem:
	audit_journal_close(j);
	return GK_ERR_NOMEM;
}

const char *
audit_journal_path(const audit_journal *j)
{
	return j->path;
}

static int
add_entry(audit_journal *j, uint8_t type, const void *a, size_t an,
    const void *b, size_t bn)
{
	uint8_t head[ENTRY_HEAD];

	if (an + bn > UINT32_MAX)
		return GK_ERR_TOO_LARGE;
	head[0] = type;
	put_be(head + 1, an + bn, 4);
	if (gk_buf_append(&j->buf, head, sizeof(head)) != 0 ||
	    gk_buf_append(&j->buf, a, an) != 0 ||
	    (bn > 0 && gk_buf_append(&j->buf, b, bn) != 0))
		return GK_ERR_TOO_LARGE;
	return 0;
}

int
audit_journal_add_record(audit_journal *j, const uint8_t *enc, size_t n,
    const uint8_t hash[AUDIT_HASH_LEN])
{
	return add_entry(j, 'R', hash, AUDIT_HASH_LEN, enc, n);
}

int
audit_journal_add_cp(audit_journal *j, const audit_checkpoint *cp)
{
	uint8_t b[1 + AUDIT_INSTANCE_MAX + 8 + AUDIT_HASH_LEN + 8 +
	    AUDIT_SIG_LEN], *p = b;
	size_t il = strlen(cp->instance);

	if (il == 0 || il > AUDIT_INSTANCE_MAX)
		return GK_ERR_INVALID;
	*p++ = (uint8_t)il;
	memcpy(p, cp->instance, il);
	p += il;
	put_be(p, (uint64_t)cp->seq, 8);
	p += 8;
	memcpy(p, cp->hash, AUDIT_HASH_LEN);
	p += AUDIT_HASH_LEN;
	put_be(p, (uint64_t)cp->time_us, 8);
	p += 8;
	memcpy(p, cp->sig, AUDIT_SIG_LEN);
	p += AUDIT_SIG_LEN;
	return add_entry(j, 'C', b, (size_t)(p - b), NULL, 0);
}

int
audit_journal_start(audit_journal *j)
{
	/* a failed undo left bytes past size: trim before writing after */
	if (j->broken) {
		if (ftruncate(j->fd, j->size) != 0)
			return GK_ERR_UNAVAILABLE;
		j->broken = 0;
	}
	pthread_mutex_lock(&j->mu);
	j->busy = 1;
	if (j->buf.len > 0) {
		j->job = 1;
		pthread_cond_broadcast(&j->cv);
	} else {
		j->result = 0;
	}
	pthread_mutex_unlock(&j->mu);
	return 0;
}

int
audit_journal_wait(audit_journal *j)
{
	int r;

	pthread_mutex_lock(&j->mu);
	while (j->job)
		pthread_cond_wait(&j->cv, &j->mu);
	r = j->busy ? j->result : 0;
	pthread_mutex_unlock(&j->mu);
	return r;
}

void
audit_journal_end(audit_journal *j, int keep)
{
	pthread_mutex_lock(&j->mu);
	while (j->job)
		pthread_cond_wait(&j->cv, &j->mu);
	if (j->busy && keep && j->result == 0)
		j->size += (off_t)j->buf.len;
	else if (j->busy && j->buf.len > 0 && ftruncate(j->fd, j->size) != 0)
		j->broken = 1;
	j->busy = 0;
	pthread_mutex_unlock(&j->mu);
	/* a large batch's buffer goes back (mmap'd: to the system), so a
	 * burst does not leave the process bigger */
	if (j->buf.alloc > JOURNAL_BUF_KEEP)
		gk_buf_release(&j->buf);
	else
		gk_buf_reset(&j->buf);
}

int64_t
audit_journal_size(const audit_journal *j)
{
	return (int64_t)j->size;
}

int
audit_journal_reset(audit_journal *j)
{
	if (ftruncate(j->fd, 0) != 0) {
		j->broken = 1;
		return GK_ERR_UNAVAILABLE;
	}
	j->size = 0;
	j->broken = 0;
	return 0;
}

int
audit_journal_replay(audit_journal *j, audit_journal_entry_fn fn,
    void *arg)
{
	uint8_t *data = NULL;
	size_t len = (size_t)j->size, off = 0, got = 0, blen;
	ssize_t r;
	audit_checkpoint cp;
	const uint8_t *p;
	int res = 0;

	if (len == 0)
		return 0;
	if ((data = malloc(len)) == NULL)
		return GK_ERR_NOMEM;
	while (got < len) {
		r = pread(j->fd, data + got, len - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(data);
			return GK_ERR_UNAVAILABLE;
		}
		got += (size_t)r;
	}
	while (res == 0 && len - off >= ENTRY_HEAD) {
		p = data + off;
		blen = (size_t)get_be(p + 1, 4);
		if (blen > len - off - ENTRY_HEAD)
			break;	/* torn by a crash: never answered */
		p += ENTRY_HEAD;
		if (data[off] == 'R' && blen > AUDIT_HASH_LEN) {
			res = fn(arg, p + AUDIT_HASH_LEN, blen - AUDIT_HASH_LEN,
			    p, NULL);
		} else if (data[off] == 'C' && blen >= 1 &&
		    blen == 1u + p[0] + 8 + AUDIT_HASH_LEN + 8 +
		    AUDIT_SIG_LEN && p[0] > 0) {
			memset(&cp, 0, sizeof(cp));
			memcpy(cp.instance, p + 1, p[0]);
			p += 1 + p[0];
			cp.seq = (int64_t)get_be(p, 8);
			memcpy(cp.hash, p + 8, AUDIT_HASH_LEN);
			cp.time_us = (int64_t)get_be(p + 8 + AUDIT_HASH_LEN, 8);
			memcpy(cp.sig, p + 16 + AUDIT_HASH_LEN, AUDIT_SIG_LEN);
			res = fn(arg, NULL, 0, NULL, &cp);
		} else {
			res = GK_ERR_INTEGRITY;
		}
		off += ENTRY_HEAD + blen;
	}
	free(data);
	return res;
}
