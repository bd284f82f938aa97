/*
 * journal.c - the durable record of the SQLite backend: a file beside the
 * database (<db>.journal) that holds every record and checkpoint of a
 * batch, written by the writer thread with one pwrite and one fdatasync
 * per batch beside its insert of the same batch into SQLite (which
 * then commits without waiting for the disk: synchronous=NORMAL). A batch
 * is answered only when both are done, or, while SQLite's transaction is
 * open, once its frame is durable and before its insert (writer.c's
 * store_batch). (A thread of its own for the
 * flush, overlapping it with the inserts, cost more CPU in its wake-ups
 * than the overlap saved: two more context switches a batch.)
 *
 * Once SQLite holds everything durably itself (its WAL synced, or a
 * checkpoint that backfilled every frame: writer_journal_trim), the
 * journal is emptied by starting over at offset 0 with a new epoch, the
 * file kept (past AUDIT_JOURNAL_FLUSH bytes, and AUDIT_IDLE_DURABLE_US
 * after the last batch of a writer gone idle: writer.c); a clean stop
 * truncates it to 0 bytes. Before a batch that would reach past the
 * blocks the file has, zeros are written ahead (JOURNAL_AHEAD past its
 * end, in JOURNAL_STEP steps), so batches overwrite blocks the file
 * already has and their fdatasync commits no metadata (size, extents);
 * as the file is reused, that happens while it first grows after a
 * start, not in the steady state.
 *
 * Format. A batch is one frame:
 *   'B' || length (4 bytes big-endian: what follows this field)
 *       || epoch (8) || CRC-32 of the entries (4) || entries
 * and an entry is: type (1 byte) || length (4 bytes big-endian) || body:
 *   'R' record:     hash[32] || canonical encoding (chain.c)
 *   'C' checkpoint: len(1) || instance || seq(8) || hash[32] || time(8)
 *                   || sig[64]
 * A journal written before frames existed holds the entries themselves
 * one after the other from offset 0; it is read the same way (below) and
 * new frames go after its last whole entry.
 *
 * Recovery contract (audit_journal_open finds the end, _replay reads to
 * it). From offset 0, the journal's content is:
 *   - unframed entries ('R', 'C') up to the first frame: each is used;
 *     one that runs past the end of the file is torn (never answered)
 *     and ends the content; another type byte there is an altered
 *     journal (GK_ERR_INTEGRITY);
 *   - then frames, each with the epoch of the first frame: a frame whose
 *     length fits, whose CRC matches and whose entries parse exactly is
 *     used. The content ends at the first thing that is not such a frame:
 *     a zero byte (the pre-written zeros), a frame of another epoch (left
 *     from before the journal was last emptied) or one whose CRC does not
 *     match (torn by a crash before its fdatasync returned: never
 *     answered). One exception: a frame that fails its CRC but is
 *     followed by a whole frame of its own epoch was not torn (a batch
 *     is written only after the previous one is durable) but altered:
 *     GK_ERR_INTEGRITY. Records replayed are also checked against the
 *     chain (seq and SHA-256, recover.c).
 * So a batch counts only when it is entirely on the disk, and what lies
 * past the end (zeros, older batches, a torn one) is never read as ours.
 *
 * The file must stay the one flushed: a journal deleted, replaced or
 * truncated under the writer no longer holds what it answered. After
 * each flush the writer asks audit_journal_check (one statx of the file:
 * fewer bytes than written = truncated; one of the path: gone or
 * another inode; neither asks for times, see stat_fields); on a loss it
 * makes SQLite durable itself and starts over with audit_journal_renew
 * (session.c, writer_journal_renew).
 *
 * One journal per chain and writer: the server's is <db>.journal; a
 * command-line writer with its own chain (audit_open_as) keeps
 * <db>.<suffix>.journal, locked while open, so neither writes over nor
 * empties records the other answered and SQLite does not hold yet.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

#define ENTRY_HEAD 5u
/* A frame's head: 'B', length, epoch, CRC-32. */
#define FRAME_HEAD (ENTRY_HEAD + 8u + 4u)
/* Batch buffer kept between batches; a larger one is freed. */
#define JOURNAL_BUF_KEEP (64u * 1024)
/* Zeros are written this far past the end of the last batch, ... */
#define JOURNAL_AHEAD (256u * 1024)
/* ... in steps of this many bytes (one pwrite and fdatasync each). */
#define JOURNAL_STEP (256u * 1024)

static int sync_dir(const char *path);

struct audit_journal {
	int fd;
	char *path;
	off_t size;		/* end of the content (committed batches) */
	uint64_t epoch;		/* of every frame since the last emptying */
	gk_buf buf;		/* the batch being built / written (a frame) */
	int broken;		/* an undo failed: redo it before writing */
	off_t written;		/* the file has blocks (zeros or data) up
				 * to here */
	int shared;		/* a command-line writer's: lock_wait */
	dev_t dev;		/* the file at path when it was opened, */
	ino_t ino;		/* to see it deleted or replaced */
};

static int
pwrite_all(int fd, const uint8_t *p, size_t left, off_t at)
{
	ssize_t w;

	while (left > 0) {
		w = pwrite(fd, p, left, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return GK_ERR_UNAVAILABLE;
		p += w;
		at += w;
		left -= (size_t)w;
	}
	return 0;
}

/*
 * Writes zeros from j->written on, JOURNAL_STEP at a time, until the file
 * reaches JOURNAL_AHEAD past end, so that this batch and the next ones
 * overwrite blocks the file has. On an error it stops: the batch then
 * appends (slower, as correct).
 */
static void
write_ahead(audit_journal *j, off_t end)
{
	static const uint8_t zeros[64 * 1024];
	off_t at = j->written, stop;

	while (at < end + (off_t)JOURNAL_AHEAD) {
		for (stop = at + JOURNAL_STEP; at < stop;
		    at += (off_t)sizeof(zeros))
			if (pwrite_all(j->fd, zeros, sizeof(zeros), at) != 0)
				return;
		if (fdatasync(j->fd) != 0)
			return;
		j->written = at;
	}
}

/* Writes the whole batch at j->size and flushes it to the disk. */
static int
flush_batch(audit_journal *j)
{
	off_t end = j->size + (off_t)j->buf.len;

	if (end > j->written)
		write_ahead(j, end);
	if (pwrite_all(j->fd, j->buf.data, j->buf.len, j->size) != 0 ||
	    fdatasync(j->fd) != 0)
		return GK_ERR_UNAVAILABLE;
	if (end > j->written)
		j->written = end;
	return 0;
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

/* ---- reading: the recovery contract of the head comment ------------- */

/* Where a scan stopped and what it found. */
struct scan {
	size_t end;		/* end of the content */
	uint64_t epoch;		/* of its frames */
	int have_epoch;
};

static int scan_journal(const uint8_t *data, size_t len,
    audit_journal_entry_fn fn, void *arg, struct scan *sc);

int
audit_journal_scan(const uint8_t *data, size_t len,
    audit_journal_entry_fn fn, void *arg, size_t *end)
{
	struct scan sc;
	int r;

	r = scan_journal(data, len, fn, arg, &sc);
	*end = sc.end;
	return r;
}

/* The checkpoint body of an entry: 0, or GK_ERR_INTEGRITY. */
static int
parse_cp(const uint8_t *p, size_t blen, audit_checkpoint *cp)
{
	if (blen < 1 || p[0] == 0 || blen != 1u + p[0] + 8 + AUDIT_HASH_LEN +
	    8 + AUDIT_SIG_LEN || p[0] > AUDIT_INSTANCE_MAX ||
	    memchr(p + 1, 0, p[0]) != NULL)
		return GK_ERR_INTEGRITY;
	memset(cp, 0, sizeof(*cp));
	memcpy(cp->instance, p + 1, p[0]);
	p += 1 + p[0];
	cp->seq = (int64_t)gk_get_u64be(p);
	memcpy(cp->hash, p + 8, AUDIT_HASH_LEN);
	cp->time_us = (int64_t)gk_get_u64be(p + 8 + AUDIT_HASH_LEN);
	memcpy(cp->sig, p + 16 + AUDIT_HASH_LEN, AUDIT_SIG_LEN);
	return 0;
}

/*
 * The entries of p[0..len): each passed to fn (when not NULL). With
 * whole set, every entry must fit exactly (a frame's); else one running
 * past len is torn and ends them (*used: the bytes before it). Returns
 * fn's first non-zero value, or GK_ERR_INTEGRITY for an entry that is not
 * one (stopping with *used at it); GK_ERR_NOT_FOUND when p starts with a
 * frame or a zero byte (unframed: the entries end there).
 */
static int
scan_entries(const uint8_t *p, size_t len, int whole,
    audit_journal_entry_fn fn, void *arg, size_t *used)
{
	audit_checkpoint cp;
	size_t off = 0, blen;
	const uint8_t *b;
	int r;

	*used = 0;
	while (off < len) {
		if (!whole && (p[off] == 'B' || p[off] == 0)) {
			*used = off;
			return GK_ERR_NOT_FOUND;
		}
		if (len - off < ENTRY_HEAD) {
			if (whole)
				return GK_ERR_INTEGRITY;
			break;	/* torn by a crash: never answered */
		}
		blen = (size_t)gk_get_u32be(p + off + 1);
		if (blen > len - off - ENTRY_HEAD) {
			if (whole)
				return GK_ERR_INTEGRITY;
			break;
		}
		b = p + off + ENTRY_HEAD;
		r = 0;
		if (p[off] == 'R' && blen > AUDIT_HASH_LEN) {
			if (fn != NULL)
				r = fn(arg, b + AUDIT_HASH_LEN,
				    blen - AUDIT_HASH_LEN, b, NULL);
		} else if (p[off] == 'C' && parse_cp(b, blen, &cp) == 0) {
			if (fn != NULL)
				r = fn(arg, NULL, 0, NULL, &cp);
		} else {
			*used = off;
			return GK_ERR_INTEGRITY;
		}
		if (r != 0) {
			*used = off;
			return r;
		}
		off += ENTRY_HEAD + blen;
		*used = off;
	}
	return 0;
}

/*
 * 1 when data[off..len) starts with a whole frame (length fits, CRC
 * matches) of epoch (any epoch when any is set; *epoch gets it); *flen
 * its length with the head.
 */
static int
frame_ok(const uint8_t *data, size_t len, size_t off, int any,
    uint64_t *epoch, size_t *flen)
{
	const uint8_t *p = data + off;
	size_t blen;
	uint64_t e;

	if (len - off < FRAME_HEAD || p[0] != 'B')
		return 0;
	blen = (size_t)gk_get_u32be(p + 1);
	if (blen < FRAME_HEAD - ENTRY_HEAD || blen > len - off - ENTRY_HEAD)
		return 0;
	e = gk_get_u64be(p + ENTRY_HEAD);
	if (!any && e != *epoch)
		return 0;
	*flen = ENTRY_HEAD + blen;
	if (crc32(0L, p + FRAME_HEAD, (uInt)(*flen - FRAME_HEAD)) !=
	    gk_get_u32be(p + ENTRY_HEAD + 8))
		return 0;
	*epoch = e;
	return 1;
}

/*
 * Reads data[0..len) by the recovery contract: fn (may be NULL) gets
 * every entry of the content in order; sc gets where it ends and its
 * epoch. Returns 0, fn's first non-zero value, or GK_ERR_INTEGRITY (an
 * altered journal; sc->end at the first bad entry or frame).
 */
static int
scan_journal(const uint8_t *data, size_t len, audit_journal_entry_fn fn,
    void *arg, struct scan *sc)
{
	size_t off, used, flen, blen, next;
	uint64_t e;
	int r;

	memset(sc, 0, sizeof(*sc));
	r = scan_entries(data, len, 0, fn, arg, &used);
	sc->end = used;
	if (r != GK_ERR_NOT_FOUND)
		return r;	/* unframed to the end (or stopped) */
	for (off = used; off < len && data[off] == 'B'; off += flen) {
		e = sc->epoch;
		if (!frame_ok(data, len, off, !sc->have_epoch, &e, &flen)) {
			/* the end, unless a whole frame of the same epoch
			 * follows this one: then it was altered, not torn */
			if (len - off >= FRAME_HEAD) {
				blen = (size_t)gk_get_u32be(data + off + 1);
				e = gk_get_u64be(data + off + ENTRY_HEAD);
				next = off + ENTRY_HEAD + blen;
				if (blen <= len - off - ENTRY_HEAD &&
				    (!sc->have_epoch || e == sc->epoch) &&
				    next < len &&
				    frame_ok(data, len, next, 0, &e, &flen))
					return GK_ERR_INTEGRITY;
			}
			break;
		}
		if ((r = scan_entries(data + off + FRAME_HEAD, flen -
		    FRAME_HEAD, 1, fn, arg, &used)) != 0)
			return r;
		sc->epoch = e;
		sc->have_epoch = 1;
		sc->end = off + flen;
	}
	return 0;
}

/* Reads the whole file into *out (malloc'd; NULL when empty). */
static int
read_file(int fd, uint8_t **out, size_t *n)
{
	struct stat st;
	uint8_t *data;
	size_t len, got = 0;
	ssize_t r;

	*out = NULL;
	*n = 0;
	if (fstat(fd, &st) != 0 || st.st_size < 0)
		return GK_ERR_UNAVAILABLE;
	if ((uint64_t)st.st_size > SIZE_MAX)
		return GK_ERR_TOO_LARGE;
	if ((len = (size_t)st.st_size) == 0)
		return 0;
	if ((data = malloc(len)) == NULL)
		return GK_ERR_NOMEM;
	while (got < len) {
		r = pread(fd, data + got, len - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;	/* shrunk meanwhile: read what is there */
		got += (size_t)r;
	}
	*out = data;
	*n = got;
	return 0;
}

static uint64_t
new_epoch(uint64_t old)
{
	uint8_t b[8];
	uint64_t e;

	/* random, so no earlier emptying's frames can match */
	if (gk_random(b, sizeof(b)) == 0)
		e = gk_get_u64be(b);
	else
		e = old + (uint64_t)gk_now_us();
	return e == old ? e + 1 : e;
}

/* ---- open, close ------------------------------------------------------ */

void
audit_journal_close(audit_journal *j)
{
	if (j == NULL)
		return;
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
	struct scan sc;
	struct stat st;
	uint8_t *data = NULL;
	size_t n = strlen(db_path) + sizeof(".journal") +
	    (suffix != NULL ? strlen(suffix) + 1 : 0), len;
	int r;

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
	j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	/* a chain's journal has one writer: two command-line writers of
	 * the same chain take turns (the content is read under the lock) */
	if (j->fd >= 0 && suffix != NULL && lock_wait(j->fd) != 0) {
		audit_set_err(err, errlen, "%s is held by another writer",
		    j->path);
		audit_journal_close(j);
		return GK_ERR_UNAVAILABLE;
	}
	/* the server's journal has one server: a second one started on the
	 * same database (a port already taken, a second copy by hand) would
	 * sign checkpoints into the first one's chain and empty its journal
	 * at its stop; it is refused before it reads anything. The lock
	 * lives as long as the descriptor. */
	if (j->fd >= 0 && suffix == NULL &&
	    flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
		audit_set_err(err, errlen, "%s is held by another gatekeeper "
		    "serving this audit database%s", j->path,
		    errno == EWOULDBLOCK ? "" : " (cannot lock it)");
		audit_journal_close(j);
		return GK_ERR_UNAVAILABLE;
	}
	if (j->fd < 0 || (r = read_file(j->fd, &data, &len)) != 0) {
		audit_set_err(err, errlen, "%s: %s", j->path, j->fd < 0 ?
		    strerror(errno) : "cannot be read");
		audit_journal_close(j);
		return GK_ERR_UNAVAILABLE;
	}
	/*
	 * Where the content ends. An altered journal keeps its whole
	 * length, so that _replay reports it (and the writer sets it aside)
	 * rather than writing over it.
	 */
	if (scan_journal(data, len, NULL, NULL, &sc) == GK_ERR_INTEGRITY)
		sc.end = len;
	free(data);
	/* its name durable before a batch counts on it (the file may
	 * have been created just now) */
	if (fstat(j->fd, &st) != 0 || sync_dir(j->path) != 0) {
		audit_set_err(err, errlen, "%s: %s", j->path, strerror(errno));
		audit_journal_close(j);
		return GK_ERR_UNAVAILABLE;
	}
	j->dev = st.st_dev;
	j->ino = st.st_ino;
	j->shared = suffix != NULL;
	j->size = (off_t)sc.end;
	j->written = (off_t)len;
	j->epoch = sc.have_epoch ? sc.epoch : new_epoch(0);
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

/* ---- writing ---------------------------------------------------------- */

static int
add_entry(audit_journal *j, uint8_t type, const void *a, size_t an,
    const void *b, size_t bn)
{
	uint8_t head[FRAME_HEAD];

	if (an + bn > UINT32_MAX)
		return GK_ERR_TOO_LARGE;
	/* the frame's head first (filled in by audit_journal_flush) */
	if (j->buf.len == 0) {
		memset(head, 0, sizeof(head));
		if (gk_buf_append(&j->buf, head, FRAME_HEAD) != 0)
			return GK_ERR_TOO_LARGE;
	}
	head[0] = type;
	gk_put_u32be(head + 1, (uint32_t)(an + bn));
	if (gk_buf_append(&j->buf, head, ENTRY_HEAD) != 0 ||
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
	gk_put_u64be(p, (uint64_t)cp->seq);
	p += 8;
	memcpy(p, cp->hash, AUDIT_HASH_LEN);
	p += AUDIT_HASH_LEN;
	gk_put_u64be(p, (uint64_t)cp->time_us);
	p += 8;
	memcpy(p, cp->sig, AUDIT_SIG_LEN);
	p += AUDIT_SIG_LEN;
	return add_entry(j, 'C', b, (size_t)(p - b), NULL, 0);
}

/* A zero byte at size: what may lie there (a batch that failed) is not
 * read as content. */
static int
mark_end(audit_journal *j)
{
	static const uint8_t zero;

	if (pwrite_all(j->fd, &zero, 1, j->size) != 0) {
		j->broken = 1;
		return GK_ERR_UNAVAILABLE;
	}
	j->broken = 0;
	return 0;
}

int
audit_journal_flush(audit_journal *j)
{
	uint8_t *h = j->buf.data;

	/* a failed undo left a batch past size: mark the end first */
	if (j->broken && mark_end(j) != 0)
		return GK_ERR_UNAVAILABLE;
	if (j->buf.len == 0)
		return 0;
	if (j->buf.len - ENTRY_HEAD > UINT32_MAX)
		return GK_ERR_TOO_LARGE;
	h[0] = 'B';
	gk_put_u32be(h + 1, (uint32_t)(j->buf.len - ENTRY_HEAD));
	gk_put_u64be(h + ENTRY_HEAD, j->epoch);
	gk_put_u32be(h + ENTRY_HEAD + 8, (uint32_t)crc32(0L, h + FRAME_HEAD,
	    (uInt)(j->buf.len - FRAME_HEAD)));
	return flush_batch(j);
}

void
audit_journal_end(audit_journal *j, int keep)
{
	/* not kept: a zero byte over its frame's head, if it was written */
	if (keep)
		j->size += (off_t)j->buf.len;
	else if (j->buf.len > 0)
		(void)mark_end(j);
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
audit_journal_reset(audit_journal *j, int shrink)
{
	off_t size = j->size;

	/* start over at 0 with a new epoch: the frames there now are of
	 * the old one, and a zero byte ends the content until the next */
	j->size = 0;
	j->epoch = new_epoch(j->epoch);
	if (shrink) {
		if (ftruncate(j->fd, 0) != 0) {
			j->size = size;
			return GK_ERR_UNAVAILABLE;
		}
		j->written = 0;
		j->broken = 0;
		return 0;
	}
	return mark_end(j);
}

int
audit_journal_replay(audit_journal *j, audit_journal_entry_fn fn,
    void *arg)
{
	struct scan sc;
	uint8_t *data = NULL;
	size_t len;
	int r;

	if (j->size == 0)
		return 0;
	if ((r = read_file(j->fd, &data, &len)) != 0)
		return r == GK_ERR_NOMEM ? r : GK_ERR_UNAVAILABLE;
	if (len > (size_t)j->size)
		len = (size_t)j->size;
	r = scan_journal(data, len, fn, arg, &sc);
	free(data);
	return r;
}

/* ---- the file at the path --------------------------------------------- */

/*
 * What audit_journal_check asks of a file: mask names the fields wanted
 * (statx), never its times. On a file system with fine-grained
 * timestamps on demand (Linux 6.13 and later: ext4, XFS, btrfs, tmpfs)
 * asking for a file's ctime or mtime, as fstat and stat do, makes the
 * next write stamp it with a fresh fine-grained time, and the batch's
 * fdatasync then writes the inode too (measured here on ext4: a third
 * more disk writes and 30-50 % longer flushes). Without statx (ENOSYS,
 * or EPERM from a seccomp filter that predates it): fstat or stat, so
 * the check never goes blind.
 */
static int
stat_fields(int fd, const char *path, unsigned mask, struct statx *sx)
{
	struct stat st;
	int r;

	r = path == NULL ? statx(fd, "", AT_EMPTY_PATH, mask, sx) :
	    statx(AT_FDCWD, path, 0, mask, sx);
	if (r == 0 || (errno != ENOSYS && errno != EPERM))
		return r;
	if ((path == NULL ? fstat(fd, &st) : stat(path, &st)) != 0)
		return -1;
	memset(sx, 0, sizeof(*sx));
	sx->stx_mask = STATX_NLINK | STATX_INO | STATX_SIZE;
	sx->stx_nlink = (uint32_t)st.st_nlink;
	sx->stx_ino = (uint64_t)st.st_ino;
	sx->stx_size = (uint64_t)st.st_size;
	sx->stx_dev_major = major(st.st_dev);
	sx->stx_dev_minor = minor(st.st_dev);
	return 0;
}

int
audit_journal_check(const audit_journal *j)
{
	struct statx sx;

	/* what is ours: size never shrinks below written but by our own
	 * ftruncate (audit_journal_reset) */
	if (stat_fields(j->fd, NULL, STATX_NLINK | STATX_SIZE, &sx) == 0 &&
	    (sx.stx_mask & (STATX_NLINK | STATX_SIZE)) ==
	    (STATX_NLINK | STATX_SIZE) && sx.stx_nlink > 0 &&
	    sx.stx_size < (uint64_t)j->written)
		return AUDIT_JOURNAL_TRUNCATED;
	if (stat_fields(-1, j->path, STATX_INO, &sx) != 0)
		return errno == ENOENT || errno == ENOTDIR ?
		    AUDIT_JOURNAL_DELETED : 0;	/* else: cannot tell */
	if (makedev(sx.stx_dev_major, sx.stx_dev_minor) != j->dev ||
	    ((sx.stx_mask & STATX_INO) != 0 && (ino_t)sx.stx_ino != j->ino))
		return AUDIT_JOURNAL_REPLACED;
	return 0;
}

const char *
audit_journal_lost_name(int how)
{
	switch (how) {
	case AUDIT_JOURNAL_DELETED:
		return "deleted (or moved away)";
	case AUDIT_JOURNAL_REPLACED:
		return "replaced";
	case AUDIT_JOURNAL_TRUNCATED:
		return "truncated";
	}
	return "intact";
}

/* fsync of the directory holding path: a new file's name is durable. */
static int
sync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, r;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return GK_ERR_UNAVAILABLE;
	r = fsync(fd) == 0 ? 0 : GK_ERR_UNAVAILABLE;
	close(fd);
	return r;
}

/* The batch being built is durable in SQLite: not written here. */
static void
drop_batch(audit_journal *j)
{
	if (j->buf.alloc > JOURNAL_BUF_KEEP)
		gk_buf_release(&j->buf);
	else
		gk_buf_reset(&j->buf);
}

int
audit_journal_renew(audit_journal *j, int how, char *err, size_t errlen)
{
	char aside[4096];
	struct stat st;
	int fd;

	if (how == AUDIT_JOURNAL_TRUNCATED) {
		/* still the file at the path: empty it, as at a start */
		if (audit_journal_reset(j, 1) != 0 || fdatasync(j->fd) != 0) {
			audit_set_err(err, errlen, "%s cannot be emptied: %s",
			    j->path, strerror(errno));
			return GK_ERR_UNAVAILABLE;
		}
		drop_batch(j);
		return 0;
	}
	if (how == AUDIT_JOURNAL_REPLACED) {
		/* not ours: kept for inspection, not written over; unless
		 * another server started meanwhile holds it as its own */
		if ((fd = open(j->path, O_RDONLY | O_CLOEXEC)) >= 0) {
			if (flock(fd, LOCK_EX | LOCK_NB) != 0 &&
			    errno == EWOULDBLOCK) {
				close(fd);
				audit_set_err(err, errlen, "%s is held by "
				    "another gatekeeper", j->path);
				return GK_ERR_UNAVAILABLE;
			}
			close(fd);
		}
		snprintf(aside, sizeof(aside), "%s.replaced-%lld", j->path,
		    (long long)gk_now_us());
		if (rename(j->path, aside) != 0 && errno != ENOENT) {
			audit_set_err(err, errlen, "%s cannot be moved aside: "
			    "%s", j->path, strerror(errno));
			return GK_ERR_UNAVAILABLE;
		}
	}
	fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		audit_set_err(err, errlen, "%s cannot be created: %s",
		    j->path, strerror(errno));
		return GK_ERR_UNAVAILABLE;
	}
	/* locked as audit_journal_open locks it: a second server started
	 * meanwhile on the database holds the new one, then we stop */
	if ((j->shared ? lock_wait(fd) : flock(fd, LOCK_EX | LOCK_NB)) !=
	    0) {
		audit_set_err(err, errlen, "%s is held by another writer",
		    j->path);
		close(fd);
		return GK_ERR_UNAVAILABLE;
	}
	if (fstat(fd, &st) != 0 || sync_dir(j->path) != 0) {
		audit_set_err(err, errlen, "%s cannot be made durable: %s",
		    j->path, strerror(errno));
		close(fd);
		(void)unlink(j->path);
		return GK_ERR_UNAVAILABLE;
	}
	close(j->fd);
	j->fd = fd;
	j->dev = st.st_dev;
	j->ino = st.st_ino;
	j->size = 0;
	j->written = 0;
	j->broken = 0;
	j->epoch = new_epoch(j->epoch);
	drop_batch(j);
	return 0;
}
