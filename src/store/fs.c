/*
 * fs.c - the "fs" store: encrypted objects under the store directory.
 *
 * Layout under store_dir:
 *   objects/<h0>/<h1>/<h>.obj   one file per object, h = hex sha256(key),
 *                               h0/h1 its first two bytes (fan-out)
 *   tmp/<random>.tmp            objects being written (same filesystem)
 *   index.db                    the listing index (fs_index.c)
 *
 * The object file format is in fs_format.c. This file opens the store,
 * reads, writes (temp file, fsync, atomic rename) and deletes objects,
 * and is the "fs" entry of the backend table.
 */
#include "fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void fs_free(fs_store *s);
static void fs_writer_free(fs_writer *w);
static int fs_writer_finish(fs_writer *w);

/* Byte-order comparison of two slices (shorter first on a tie). */

/* Reads exactly len bytes at off; GK_ERR_INTEGRITY if the file is short. */

/* "<objdir>/h0/h1" and "<objdir>/h0/h1/<h>.obj"; either out may be NULL. */

static int
obj_paths(const fs_store *s, const uint8_t hash[HASH_LEN], char **dir,
    char **file)
{
	char hex[HASH_HEX_LEN + 1];
	gk_buf d, f;
	int r = GK_ERR_INTERNAL;

	gk_buf_init(&d, STORE_PATH_CAP);
	gk_buf_init(&f, STORE_PATH_CAP);
	gk_hex_encode(hash, HASH_LEN, hex);
	if ((r = gk_buf_printf(&d, "%s/%.2s/%.2s", s->objdir, hex,
	    hex + 2)) != 0 ||
	    (r = gk_buf_printf(&f, "%s/%s.obj", (char *)d.data, hex)) != 0)
		goto out;
	if (dir != NULL)
		*dir = gk_buf_detach(&d, NULL);	/* transferred */
	if (file != NULL)
		*file = gk_buf_detach(&f, NULL);	/* transferred */
	r = 0;
out:
	gk_buf_release(&d);
	gk_buf_release(&f);
	return r;
}

/* A cipher context keyed with the object's key (the key is wiped). */

/*
 * Seals (enc) or opens chunk idx in place: buf holds len bytes followed by
 * the 16-byte tag (written when sealing, checked when opening).
 */

/* Fills the derived fields; GK_ERR_INTEGRITY if the size cannot be real. */

/*
 * Reads and parses the (not yet authenticated) header of an open object
 * file and checks the file size against it. *hdr_out gets the raw bytes.
 */

/* Authenticates chunk idx into rd->buf (no-op if it is already there). */

/*
 * Sets up a reader on an open object file (fd is taken over, even on
 * error). expect: the key the caller asked for, or an empty slice to take
 * whatever name the header holds (index rebuild). Authenticates the header
 * by opening the final chunk.
 */

static int
fs_get_open(fs_store *s, gk_slice key, fs_reader **out,
    uint64_t *size, int64_t *mtime)
{
	uint8_t hash[HASH_LEN];
	fs_reader *rd = NULL;
	char *path = NULL;
	int fd, r = GK_ERR_INTERNAL;

	*out = NULL;
	if (key.len == 0 || key.len > OBJ_NAME_MAX) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = fs_sha256(key, hash)) != 0 ||
	    (r = obj_paths(s, hash, NULL, &path)) != 0)
		goto out;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = (errno == ENOENT || errno == ENOTDIR) ? GK_ERR_NOT_FOUND :
		    GK_ERR_IO;
		if (r == GK_ERR_IO)
			gk_error("open object: %s", strerror(errno));
		goto out;
	}
	if ((r = fs_reader_setup(s, fd, key, hash, &rd)) != 0)
		goto out;
	if (size != NULL)
		*size = rd->h.size;
	if (mtime != NULL)
		*mtime = rd->h.mtime;
	*out = rd;
	rd = NULL;	/* transferred */
	r = 0;
out:
	fs_reader_free(rd);
	free(path);
	return r;
}

/* Binds a slice as a BLOB (never NULL, even when empty). */

/* Caller holds db_lock (or is the only user, at open). */

/*
 * Up to limit rows with key > lower (or >= if inclusive) and key < upper
 * (if has_upper), size >= min_size, in key order. Callbacks run outside the lock,
 * so rows are copied out.
 */

/* Adds one object file to the index being rebuilt; skips bad files. */

/* Creates the table and fills it from the object headers, atomically. */

/*
 * Removes the temp files a crash left behind: every *.tmp no live writer
 * holds. A writer keeps an exclusive flock(2) on its temp file until it
 * is renamed or removed, and the kernel drops it when the process dies,
 * so a file we can lock belongs to no one (another process sharing the
 * store keeps its own).
 */
static void
tmp_cleanup(const fs_store *s)
{
	struct dirent *de;
	struct stat st;
	size_t n, removed = 0;
	int fd;
	DIR *d;

	if ((d = opendir(s->tmpdir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".tmp") != 0)
			continue;
		if ((fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC |
		    O_NOFOLLOW | O_NONBLOCK)) < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
		close(fd);
	}
	closedir(d);
	if (removed > 0)
		gk_info("removed %zu temp files left by an earlier run",
		    removed);
}

static int
fs_open(const store_settings *cfg, fs_store **out)
{
	fs_store *s = NULL;
	int i, r = GK_ERR_INTERNAL;

	*out = NULL;
	if (cfg == NULL || cfg->store_dir == NULL ||
	    cfg->store_dir[0] == '\0' || cfg->master_key.p == NULL ||
	    cfg->master_key.len != GK_KEY_LEN) {
		gk_error("store: store_dir and a %d-byte master key are needed",
		    GK_KEY_LEN);
		r = GK_ERR_CONFIG;
		goto out;
	}
	r = GK_ERR_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	memcpy(s->master, cfg->master_key.p, GK_KEY_LEN);
	r = GK_ERR_INTERNAL;
	if (pthread_mutex_init(&s->db_lock, NULL) != 0)
		goto out;
	s->db_lock_ok = 1;
	for (i = 0; i < STORE_STRIPES; i++) {
		if (pthread_mutex_init(&s->stripes[i], NULL) != 0)
			goto out;
		s->nlocks = i + 1;
	}
	r = GK_ERR_NOMEM;
	if ((s->dir = strdup(cfg->store_dir)) == NULL ||
	    (s->objdir = gk_path_join(s->dir, "objects")) == NULL ||
	    (s->tmpdir = gk_path_join(s->dir, "tmp")) == NULL ||
	    (s->dbpath = gk_path_join(s->dir, "index.db")) == NULL)
		goto out;
	r = GK_ERR_INTERNAL;
	if ((s->kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
	    (s->aead = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL ||
	    gk_sha256() == NULL) {
		gk_error("store: OpenSSL lacks HKDF, AES-256-GCM or SHA256");
		goto out;
	}
	if ((r = gk_mkdirs(s->dir, 0700)) != 0 ||
	    (r = gk_mkdirs(s->objdir, 0700)) != 0 ||
	    (r = gk_mkdirs(s->tmpdir, 0700)) != 0) {
		gk_error("store: cannot create %s: %s", s->dir,
		    strerror(errno));
		goto out;
	}
	if ((r = fs_pool_new(&s->pool)) != 0)
		goto out;
	tmp_cleanup(s);
	if ((r = fs_index_open(s)) != 0)
		goto out;
	*out = s;
	s = NULL;	/* transferred */
	r = 0;
out:
	fs_free(s);
	return r;
}

static void
fs_free(fs_store *s)
{
	int i;

	if (s == NULL)
		return;
	if (s->db != NULL)
		sqlite3_close_v2(s->db);
	fs_pool_free(s->pool);
	EVP_KDF_free(s->kdf);
	EVP_CIPHER_free(s->aead);
	if (s->db_lock_ok)
		pthread_mutex_destroy(&s->db_lock);
	for (i = 0; i < s->nlocks; i++)
		pthread_mutex_destroy(&s->stripes[i]);
	gk_wipe(s->master, sizeof(s->master));
	free(s->dir);
	free(s->objdir);
	free(s->tmpdir);
	free(s->dbpath);
	free(s);
}

static int
fs_put_begin(fs_store *s, gk_slice key, uint64_t max_bytes,
    fs_writer **out)
{
	fs_writer *w = NULL;
	uint8_t salt[OBJ_SALT_LEN], rnd[16];
	char hex[2 * sizeof(rnd) + 1];
	gk_buf path;
	int r = GK_ERR_INTERNAL;

	*out = NULL;
	gk_buf_init(&path, STORE_PATH_CAP);
	if (key.len == 0 || key.len > OBJ_NAME_MAX) {
		r = GK_ERR_INVALID;
		goto out;
	}
	r = GK_ERR_NOMEM;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto out;
	w->s = s;
	w->fd = -1;
	w->max = max_bytes;
	w->name_len = key.len;
	w->hdr_len = OBJ_FIXED_LEN + key.len;
	if ((w->name = malloc(key.len)) == NULL ||
	    (w->hdr = malloc(w->hdr_len)) == NULL ||
	    (w->slot[0] = malloc(WRITE_SLOT_BYTES)) == NULL)
		goto out;
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		goto out;
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		goto out;
	}
	w->mu_ok = 1;
	memcpy(w->name, key.p, key.len);
	if ((r = fs_sha256(key, w->hash)) != 0 ||
	    (r = gk_random(salt, sizeof(salt))) != 0 ||
	    (r = gk_random(rnd, sizeof(rnd))) != 0)
		goto out;
	/* placeholder: size and mtime are filled in by finish */
	fs_hdr_build(w->hdr, OBJ_CHUNK, 0, 0, salt, key);
	if ((r = fs_aead_ctx(s, salt, key, 1, &w->ctx)) != 0)
		goto out;
	gk_hex_encode(rnd, sizeof(rnd), hex);
	if ((r = gk_buf_printf(&path, "%s/%s.tmp", s->tmpdir, hex)) != 0)
		goto out;
	if ((w->fd = open((char *)path.data, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		gk_error("store: cannot create temp file: %s", strerror(errno));
		r = GK_ERR_IO;
		goto out;
	}
	w->tmp_path = gk_buf_detach(&path, NULL);
	/* ours while we live (tmp_cleanup leaves locked files alone) */
	if (flock(w->fd, LOCK_EX | LOCK_NB) != 0)
		gk_warn("store: cannot lock the temp file: %s",
		    strerror(errno));
	if ((r = fs_pwrite_full(w->fd, w->hdr, w->hdr_len, 0)) != 0)
		goto out;
	*out = w;
	w = NULL;	/* transferred */
	r = 0;
out:
	gk_wipe(salt, sizeof(salt));
	gk_buf_release(&path);
	fs_writer_free(w);
	return r;
}

/*
 * Encrypts the first n chunks staged in slot (chunk idx first; the last
 * one holds last_len bytes and is the object's final chunk if final) and
 * writes them at their place with one pwrite.
 */
static int
seal_slot(fs_writer *w, uint8_t *slot, uint64_t idx, size_t n,
    size_t last_len, int final)
{
	const size_t step = (size_t)OBJ_CHUNK + OBJ_TAG_LEN;
	uint64_t off;
	size_t i, len;
	int r;

	if (__builtin_mul_overflow(idx, (uint64_t)step, &off) ||
	    __builtin_add_overflow(off, (uint64_t)w->hdr_len, &off))
		return GK_ERR_TOO_LARGE;
	for (i = 0; i < n; i++) {
		len = i + 1 == n ? last_len : OBJ_CHUNK;
		if ((r = fs_chunk_crypt(w->ctx, 1, w->hdr, w->hdr_len, idx + i,
		    final && i + 1 == n, slot + i * step, len)) != 0)
			return r;
	}
	len = (n - 1) * step + last_len + OBJ_TAG_LEN;
	if ((r = fs_pwrite_full(w->fd, slot, len, off)) != 0) {
		gk_error("store: write temp file: %s", strerror(errno));
		return r;
	}
	/* start writing it out now, so that the fsync at the end finds
	 * little left to wait for */
	(void)sync_file_range(w->fd, (off_t)off, (off_t)len,
	    SYNC_FILE_RANGE_WRITE);
	return 0;
}

/* The sealer thread: seals each full slot handed over, in order. */
static void *
sealer_main(void *arg)
{
	fs_writer *w = arg;
	uint8_t *slot;
	uint64_t idx;
	int r;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->busy && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->busy)
			break;
		slot = w->slot[1 - w->cur];
		idx = w->job_idx;
		pthread_mutex_unlock(&w->mu);
		r = w->job_err != 0 ? w->job_err :
		    seal_slot(w, slot, idx, WRITE_SLOT_CHUNKS, OBJ_CHUNK, 0);
		pthread_mutex_lock(&w->mu);
		if (r != 0 && w->job_err == 0)
			w->job_err = r;
		w->busy = 0;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Waits until the sealer has no slot; returns its sticky failure. */
static int
sealer_idle(fs_writer *w)
{
	int r;

	if (!w->sealer_on)
		return 0;
	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
	r = w->job_err;
	pthread_mutex_unlock(&w->mu);
	return r;
}

static void
sealer_stop(fs_writer *w)
{
	if (!w->sealer_on)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->sealer, NULL);
	w->sealer_on = 0;
}

/*
 * The current slot is full and more data follows: hands it to the sealer
 * (started on the first call) and continues in the other slot. Without a
 * second slot or thread (none could be had) the slot is sealed here.
 */
static int
slot_hand_over(fs_writer *w)
{
	int r;

	if (!w->sealer_on && w->slot[1] == NULL &&
	    (w->slot[1] = malloc(WRITE_SLOT_BYTES)) != NULL &&
	    pthread_create(&w->sealer, NULL, sealer_main, w) == 0)
		w->sealer_on = 1;
	if (!w->sealer_on) {
		/* no second slot or thread: sealed here, the slot reused */
		if ((r = seal_slot(w, w->slot[w->cur], w->slot_idx,
		    WRITE_SLOT_CHUNKS, OBJ_CHUNK, 0)) != 0)
			return r;
	} else {
		if ((r = sealer_idle(w)) != 0)
			return r;
		pthread_mutex_lock(&w->mu);
		w->job_idx = w->slot_idx;
		w->busy = 1;
		w->cur = 1 - w->cur;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	w->slot_idx += WRITE_SLOT_CHUNKS;
	w->fill = 0;
	return 0;
}

static int
fs_writer_write(fs_writer *w, const uint8_t *p, size_t len)
{
	const size_t step = (size_t)OBJ_CHUNK + OBJ_TAG_LEN;
	uint64_t total;
	size_t n, in;
	int r = GK_ERR_INTERNAL;

	if (w->failed || w->finished)
		return GK_ERR_INVALID;
	if (__builtin_add_overflow(w->total, (uint64_t)len, &total) ||
	    total > w->max) {
		r = GK_ERR_TOO_LARGE;
		goto out;
	}
	while (len > 0) {
		if (w->fill == WRITE_SLOT_PLAIN &&
		    (r = slot_hand_over(w)) != 0)
			goto out;
		in = w->fill % OBJ_CHUNK;
		n = OBJ_CHUNK - in;
		if (n > len)
			n = len;
		memcpy(w->slot[w->cur] + (w->fill / OBJ_CHUNK) * step + in, p,
		    n);
		w->fill += n;
		w->total += n;
		p += n;
		len -= n;
	}
	r = 0;
out:
	if (r != 0)
		w->failed = 1;	/* never commit a short object */
	return r;
}

static int
fs_writer_finish(fs_writer *w)
{
	int r = GK_ERR_INTERNAL;
	size_t n, last;

	if (w->failed || w->finished || w->fd < 0)
		return GK_ERR_INVALID;
	if ((r = sealer_idle(w)) != 0)
		goto out;
	sealer_stop(w);
	gk_put_u64be(w->hdr + OFF_SIZE, w->total);
	gk_put_u64be(w->hdr + OFF_MTIME, (uint64_t)gk_now_s());
	/* what is staged: at least one chunk (the empty object has one) */
	n = w->fill == 0 ? 1 : (w->fill + OBJ_CHUNK - 1) / OBJ_CHUNK;
	last = w->fill - (n - 1) * OBJ_CHUNK;
	if ((r = seal_slot(w, w->slot[w->cur], w->slot_idx, n, last, 1)) != 0)
		goto out;
	if ((r = fs_pwrite_full(w->fd, w->hdr, w->hdr_len, 0)) != 0)
		goto out;
	r = GK_ERR_IO;
	if (fsync(w->fd) != 0) {
		gk_error("store: fsync temp file: %s", strerror(errno));
		goto out;
	}
	if (close(w->fd) != 0) {
		w->fd = -1;
		gk_error("store: close temp file: %s", strerror(errno));
		goto out;
	}
	w->fd = -1;
	w->finished = 1;
	r = 0;
out:
	if (r != 0)
		w->failed = 1;
	return r;
}

/* Creates <objdir>/h0/h1 if needed, fsyncing the parents it changed. */

static int
ensure_fanout(const fs_store *s, const char *dir)
{
	struct stat st;
	char *mid = NULL;
	int r = GK_ERR_INTERNAL;

	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if ((r = gk_mkdirs(dir, 0700)) != 0)
		goto out;
	r = GK_ERR_NOMEM;
	if ((mid = strdup(dir)) == NULL)
		goto out;
	mid[strlen(mid) - 3] = '\0';	/* strip "/h1" */
	if ((r = gk_fsync_dir(mid)) != 0 ||
	    (r = gk_fsync_dir(s->objdir)) != 0)
		goto out;
	r = 0;
out:
	free(mid);
	return r;
}

static int
fs_writer_commit(fs_writer *w)
{
	pthread_mutex_t *lock;
	char *dir = NULL, *file = NULL;
	int r = GK_ERR_INTERNAL;

	if (w->committed || w->failed)
		return GK_ERR_INVALID;
	if (!w->finished && (r = fs_writer_finish(w)) != 0)
		return r;
	if ((r = obj_paths(w->s, w->hash, &dir, &file)) != 0)
		goto out;
	lock = &w->s->stripes[w->hash[0] % STORE_STRIPES];
	pthread_mutex_lock(lock);
	/*
	 * The index row first, then the rename: an index that cannot be
	 * written (busy, full) fails the commit before anything changed,
	 * rather than after the object became readable, so a failed commit
	 * never leaves an object that GET serves and listings miss. A rename
	 * that then fails leaves a row that start-up reconciliation drops
	 * (or corrects, when it describes a file that is still there).
	 */
	r = GK_ERR_IO;
	if (ensure_fanout(w->s, dir) != 0) {
		gk_error("store: cannot create %s: %s", dir, strerror(errno));
	} else if ((r = fs_index_put(w->s, gk_slice_of(w->name, w->name_len),
	    w->total, (int64_t)gk_get_u64be(w->hdr + OFF_MTIME))) != 0) {
		/* nothing changed: the temp file goes with the writer */
	} else if (rename(w->tmp_path, file) != 0) {
		r = GK_ERR_IO;
		gk_error("store: rename into place: %s", strerror(errno));
		if (access(file, F_OK) != 0)	/* a new key: no row for it */
			(void)fs_index_del(w->s, gk_slice_of(w->name,
			    w->name_len));
	} else {
		w->committed = 1;
		if (gk_fsync_dir(dir) != 0) {
			r = GK_ERR_IO;
			gk_error("store: fsync %s: %s", dir, strerror(errno));
		}
	}
	pthread_mutex_unlock(lock);
out:
	if (r != 0)
		w->failed = 1;
	free(dir);
	free(file);
	return r;
}

static uint64_t
fs_writer_size(const fs_writer *w)
{
	return w != NULL ? w->total : 0;
}

static void
fs_writer_free(fs_writer *w)
{
	int i;

	if (w == NULL)
		return;
	sealer_stop(w);
	if (w->mu_ok) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
	}
	if (w->fd >= 0)
		close(w->fd);
	if (!w->committed && w->tmp_path != NULL && unlink(w->tmp_path) != 0)
		gk_warn("store: cannot remove temp file: %s", strerror(errno));
	EVP_CIPHER_CTX_free(w->ctx);
	for (i = 0; i < 2; i++) {
		if (w->slot[i] != NULL) {
			gk_wipe(w->slot[i], WRITE_SLOT_BYTES);
			free(w->slot[i]);
		}
	}
	free(w->tmp_path);
	free(w->hdr);
	free(w->name);
	free(w);
}

static int
fs_delete(fs_store *s, gk_slice key)
{
	uint8_t hash[HASH_LEN];
	pthread_mutex_t *lock;
	char *dir = NULL, *file = NULL;
	int r = GK_ERR_INTERNAL, e;

	if (key.len == 0 || key.len > OBJ_NAME_MAX)
		return GK_ERR_NOT_FOUND;
	if ((r = fs_sha256(key, hash)) != 0 ||
	    (r = obj_paths(s, hash, &dir, &file)) != 0)
		goto out;
	lock = &s->stripes[hash[0] % STORE_STRIPES];
	pthread_mutex_lock(lock);
	r = 0;
	if (unlink(file) != 0) {
		e = errno;
		r = (e == ENOENT || e == ENOTDIR) ? GK_ERR_NOT_FOUND :
		    GK_ERR_IO;
		if (r == GK_ERR_IO)
			gk_error("store: unlink: %s", strerror(e));
	} else if (gk_fsync_dir(dir) != 0) {
		gk_error("store: fsync %s: %s", dir, strerror(errno));
		r = GK_ERR_IO;
	}
	/* drop the row even when the file was already gone */
	if (r != GK_ERR_IO) {
		int r2 = fs_index_del(s, key);

		if (r == 0)
			r = r2;
	}
	pthread_mutex_unlock(lock);
out:
	free(dir);
	free(file);
	return r;
}

static int
be_open(const store_settings *cfg, gk_store **out)
{
	fs_store *s;
	int r = fs_open(cfg, &s);

	*out = r == 0 ? &s->base : NULL;
	return r;
}

static void
be_free(gk_store *s)
{
	fs_free((fs_store *)s);
}

static int
be_get_open(gk_store *s, gk_slice key, gk_store_reader **out, uint64_t *size,
    int64_t *mtime)
{
	fs_reader *rd;
	int r = fs_get_open((fs_store *)s, key, &rd, size, mtime);

	*out = r == 0 ? &rd->base : NULL;
	return r;
}

static int
be_reader_verify(gk_store_reader *rd, uint64_t off, uint64_t len)
{
	return fs_reader_verify((fs_reader *)rd, off, len);
}

static int
be_reader_read(gk_store_reader *rd, uint64_t off, uint8_t *buf, size_t max,
    size_t *got)
{
	return fs_reader_read((fs_reader *)rd, off, buf, max, got);
}

static void
be_reader_free(gk_store_reader *rd)
{
	fs_reader_free((fs_reader *)rd);
}

static int
be_put_begin(gk_store *s, gk_slice key, uint64_t max_bytes,
    gk_store_writer **out)
{
	fs_writer *w;
	int r = fs_put_begin((fs_store *)s, key, max_bytes, &w);

	*out = r == 0 ? &w->base : NULL;
	return r;
}

static int
be_writer_write(gk_store_writer *w, const uint8_t *p, size_t len)
{
	return fs_writer_write((fs_writer *)w, p, len);
}

static int
be_writer_finish(gk_store_writer *w)
{
	return fs_writer_finish((fs_writer *)w);
}

static int
be_writer_commit(gk_store_writer *w)
{
	return fs_writer_commit((fs_writer *)w);
}

static uint64_t
be_writer_size(const gk_store_writer *w)
{
	return fs_writer_size((const fs_writer *)w);
}

static void
be_writer_free(gk_store_writer *w)
{
	fs_writer_free((fs_writer *)w);
}

static int
be_list(gk_store *s, gk_slice prefix, gk_slice start_after, unsigned max,
    unsigned flags, gk_store_list_fn fn, void *arg)
{
	return fs_list((fs_store *)s, prefix, start_after, max, flags, fn,
	    arg);
}

static int
be_delete(gk_store *s, gk_slice key)
{
	return fs_delete((fs_store *)s, key);
}

static const char *
be_bucket(const gk_store *s)
{
	return "fs";
}

/* A failure here is ours: a missing key 404, anything else 500, with the
 * error's text. */

static int
be_error(int r, const char **msg)
{
	*msg = gk_err_str(r);
	return r == GK_ERR_NOT_FOUND ? 404 : 500;
}

const store_backend store_fs_backend = {
	.name = "fs",
	.open = be_open,
	.free = be_free,
	.get_open = be_get_open,
	.reader_verify = be_reader_verify,
	.reader_read = be_reader_read,
	.reader_free = be_reader_free,
	.put_begin = be_put_begin,
	.writer_write = be_writer_write,
	.writer_finish = be_writer_finish,
	.writer_commit = be_writer_commit,
	.writer_size = be_writer_size,
	.writer_free = be_writer_free,
	.list = be_list,
	.delete = be_delete,
	.bucket = be_bucket,
	.error = be_error,
};
