/*
 * fs_index.c - the fs store's listing index: index.db (SQLite, WAL) maps
 * each key to its size and mtime for byte-ordered listings, is updated
 * under the per-key stripe lock with each commit and delete, and is
 * rebuilt from the object headers when it is missing, reconciled with
 * the object files at start otherwise.
 */
#include "fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int
slice_cmp(gk_slice a, gk_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n > 0 ? memcmp(a.p, b.p, n) : 0;

	if (c != 0)
		return c;
	return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

static int
db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		gk_error("index: %s", msg != NULL ? msg : "failed");
		sqlite3_free(msg);
		return GK_ERR_IO;
	}
	return 0;
}

static int
db_bind_blob(sqlite3_stmt *st, int i, gk_slice v)
{
	static const uint8_t empty[1];

	if (v.len > INT32_MAX)
		return GK_ERR_TOO_LARGE;
	return sqlite3_bind_blob(st, i, v.len > 0 ? v.p : empty, (int)v.len,
	    SQLITE_TRANSIENT) == SQLITE_OK ? 0 : GK_ERR_INTERNAL;
}

static int
db_put_locked(fs_store *s, gk_slice key, uint64_t size, int64_t mtime)
{
	sqlite3_stmt *st = NULL;
	int r = GK_ERR_INTERNAL;

	if (size > INT64_MAX)
		goto out;
	r = GK_ERR_IO;
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO objects"
	    "(key, size, mtime) VALUES (?1, ?2, ?3)", -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	if ((r = db_bind_blob(st, 1, key)) != 0)
		goto out;
	r = GK_ERR_IO;
	if (sqlite3_bind_int64(st, 2, (sqlite3_int64)size) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, mtime) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		goto out;
	r = 0;
out:
	if (r != 0)
		gk_error("index update failed: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return r;
}

int
fs_index_put(fs_store *s, gk_slice key, uint64_t size, int64_t mtime)
{
	int r;

	pthread_mutex_lock(&s->db_lock);
	r = db_put_locked(s, key, size, mtime);
	pthread_mutex_unlock(&s->db_lock);
	return r;
}

int
fs_index_del(fs_store *s, gk_slice key)
{
	sqlite3_stmt *st = NULL;
	int r = GK_ERR_IO;

	pthread_mutex_lock(&s->db_lock);
	if (sqlite3_prepare_v2(s->db, "DELETE FROM objects WHERE key = ?1",
	    -1, &st, NULL) != SQLITE_OK)
		goto out;
	if ((r = db_bind_blob(st, 1, key)) != 0)
		goto out;
	r = GK_ERR_IO;
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	r = 0;
out:
	if (r != 0)
		gk_error("index delete failed: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->db_lock);
	return r;
}

typedef struct {
	uint8_t *key;
	size_t len;
	uint64_t size;
	int64_t mtime;
} list_row;

static void
rows_free(list_row *rows, size_t n)
{
	size_t i;

	if (rows == NULL)
		return;
	for (i = 0; i < n; i++)
		free(rows[i].key);
	free(rows);
}

static int
db_list_batch(fs_store *s, gk_slice lower, int inclusive, gk_slice upper,
    int has_upper, unsigned limit, int64_t min_size, list_row **rows_out,
    size_t *n_out)
{
	static const char *const sql[2][2] = {
		{ "SELECT key, size, mtime FROM objects WHERE key > ?1 "
		  "AND size >= ?4 ORDER BY key LIMIT ?3",
		  "SELECT key, size, mtime FROM objects WHERE key > ?1 "
		  "AND key < ?2 AND size >= ?4 ORDER BY key LIMIT ?3" },
		{ "SELECT key, size, mtime FROM objects WHERE key >= ?1 "
		  "AND size >= ?4 ORDER BY key LIMIT ?3",
		  "SELECT key, size, mtime FROM objects WHERE key >= ?1 "
		  "AND key < ?2 AND size >= ?4 ORDER BY key LIMIT ?3" },
	};
	sqlite3_stmt *st = NULL;
	list_row *rows = NULL;
	size_t n = 0;
	const void *p;
	int rc = SQLITE_DONE, len, r = GK_ERR_INTERNAL;

	*rows_out = NULL;
	*n_out = 0;
	if ((rows = calloc(limit, sizeof(*rows))) == NULL)
		return GK_ERR_NOMEM;
	pthread_mutex_lock(&s->db_lock);
	r = GK_ERR_IO;
	if (sqlite3_prepare_v2(s->db, sql[!!inclusive][!!has_upper], -1, &st,
	    NULL) != SQLITE_OK)
		goto out;
	if ((r = db_bind_blob(st, 1, lower)) != 0 ||
	    (has_upper && (r = db_bind_blob(st, 2, upper)) != 0))
		goto out;
	r = GK_ERR_IO;
	if (sqlite3_bind_int64(st, 3, limit) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, min_size) != SQLITE_OK)
		goto out;
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		p = sqlite3_column_blob(st, 0);
		len = sqlite3_column_bytes(st, 0);
		if (sqlite3_column_int64(st, 1) < min_size || len <= 0 ||
		    p == NULL)
			continue;
		r = GK_ERR_NOMEM;
		if ((rows[n].key = malloc((size_t)len)) == NULL)
			goto out;
		memcpy(rows[n].key, p, (size_t)len);
		rows[n].len = (size_t)len;
		rows[n].size = (uint64_t)sqlite3_column_int64(st, 1);
		rows[n].mtime = sqlite3_column_int64(st, 2);
		n++;
		r = GK_ERR_IO;
	}
	if (n < limit && rc != SQLITE_DONE)
		goto out;
	*rows_out = rows;
	*n_out = n;
	rows = NULL;	/* transferred */
	r = 0;
out:
	if (r != 0)
		gk_error("index query failed: %s", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->db_lock);
	rows_free(rows, n);
	return r;
}

int
fs_list(fs_store *s, gk_slice prefix, gk_slice start_after, unsigned max,
    unsigned flags, gk_store_list_fn fn, void *arg)
{
	uint8_t *upper = NULL, *lower = NULL;
	size_t upper_len = prefix.len, n = 0, i;
	list_row *rows = NULL;
	unsigned left = max, limit;
	gk_slice lo;
	int inclusive, has_upper, stop = 0, r = GK_ERR_INTERNAL;

	/* upper bound: prefix without trailing 0xff bytes, last byte + 1 */
	if (prefix.len > 0) {
		r = GK_ERR_NOMEM;
		if ((upper = malloc(prefix.len)) == NULL)
			goto out;
		memcpy(upper, prefix.p, prefix.len);
		while (upper_len > 0 && upper[upper_len - 1] == 0xff)
			upper_len--;
		if (upper_len > 0)
			upper[upper_len - 1]++;
	}
	has_upper = upper_len > 0;
	if (start_after.len > 0 && slice_cmp(start_after, prefix) >= 0) {
		lo = start_after;
		inclusive = 0;
	} else {
		lo = prefix;
		inclusive = 1;
	}
	while (!stop) {
		limit = LIST_BATCH;
		if (max != 0 && left < limit)
			limit = left;
		if (limit == 0)
			break;
		if ((r = db_list_batch(s, lo, inclusive,
		    gk_slice_of(upper, upper_len), has_upper, limit,
		    (flags & STORE_LIST_EMPTY) ? 0 : 1, &rows, &n)) != 0)
			goto out;
		for (i = 0; i < n && !stop; i++) {
			gk_slice k = gk_slice_of(rows[i].key, rows[i].len);

			if (!gk_slice_has_prefix(k, prefix))
				continue;
			r = fn(arg, k, rows[i].size, rows[i].mtime);
			if (r != 0) {
				if (r > 0)
					r = 0;
				goto out;
			}
			if (max != 0)
				left--;
		}
		if (n < limit)
			break;
		/* next batch after the last key seen */
		free(lower);
		if ((lower = malloc(rows[n - 1].len)) == NULL) {
			r = GK_ERR_NOMEM;
			goto out;
		}
		memcpy(lower, rows[n - 1].key, rows[n - 1].len);
		lo = gk_slice_of(lower, rows[n - 1].len);
		inclusive = 0;
		rows_free(rows, n);
		rows = NULL;
		n = 0;
	}
	r = 0;
out:
	rows_free(rows, n);
	free(upper);
	free(lower);
	return r;
}

static int
rebuild_one(fs_store *s, const char *path, const char *hex)
{
	uint8_t hash[HASH_LEN], want[HASH_LEN];
	fs_reader *rd = NULL;
	gk_slice name;
	int fd, r = GK_ERR_INTERNAL;

	if (gk_hex_decode(gk_slice_of(hex, HASH_HEX_LEN), want,
	    sizeof(want)) != 0) {
		r = 0;
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		gk_warn("index rebuild: cannot open %s: %s", path,
		    strerror(errno));
		r = 0;
		goto out;
	}
	if ((r = fs_reader_setup(s, fd, GK_SLICE_NULL, want, &rd)) != 0) {
		if (r == GK_ERR_NOMEM)
			goto out;
		gk_warn("index rebuild: skipping %s: %s", path, gk_err_str(r));
		r = 0;
		goto out;
	}
	name = gk_slice_of(rd->hdr + OBJ_FIXED_LEN, rd->h.name_len);
	if ((r = fs_sha256(name, hash)) != 0)
		goto out;
	if (memcmp(hash, want, HASH_LEN) != 0) {
		gk_warn("index rebuild: skipping %s: name does not match",
		    path);
		r = 0;
		goto out;
	}
	r = db_put_locked(s, name, rd->h.size, rd->h.mtime);
out:
	fs_reader_free(rd);
	return r;
}

/* Calls fn for each entry of dir whose name is want_len hex digits
 * followed by suffix. */

static int
scan_dir(fs_store *s, const char *dir, size_t want_len, const char *suffix,
    int (*fn)(fs_store *s, const char *path, const char *hex))
{
	size_t slen = strlen(suffix), nlen;
	struct dirent *de;
	char *path = NULL;
	DIR *d = NULL;
	int r = GK_ERR_INTERNAL;

	if ((d = opendir(dir)) == NULL) {
		r = errno == ENOENT ? 0 : GK_ERR_IO;
		goto out;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			r = errno != 0 ? GK_ERR_IO : 0;
			break;
		}
		nlen = strlen(de->d_name);
		if (nlen != want_len + slen || !fs_is_hex(de->d_name, want_len) ||
		    strcmp(de->d_name + want_len, suffix) != 0)
			continue;
		r = GK_ERR_NOMEM;
		if ((path = gk_path_join(dir, de->d_name)) == NULL)
			goto out;
		if ((r = fn(s, path, de->d_name)) != 0)
			goto out;
		free(path);
		path = NULL;
	}
out:
	free(path);
	if (d != NULL)
		closedir(d);
	return r;
}

/* Every object file, through s->walk_one (fs_index_open only). */
static int
walk_leaf(fs_store *s, const char *path, const char *hex)
{
	(void)hex;
	return scan_dir(s, path, HASH_HEX_LEN, ".obj", s->walk_one);
}

static int
walk_mid(fs_store *s, const char *path, const char *hex)
{
	(void)hex;
	return scan_dir(s, path, 2, "", walk_leaf);
}

static int
walk_objects(fs_store *s, int (*fn)(fs_store *s, const char *path,
    const char *hex))
{
	int r;

	s->walk_one = fn;
	r = scan_dir(s, s->objdir, 2, "", walk_mid);
	s->walk_one = NULL;
	return r;
}

static int
db_rebuild(fs_store *s)
{
	int r = GK_ERR_INTERNAL;

	if ((r = db_exec(s->db, "BEGIN IMMEDIATE")) != 0)
		goto out;
	if ((r = db_exec(s->db, "CREATE TABLE objects(key BLOB PRIMARY KEY, "
	    "size INTEGER NOT NULL, mtime INTEGER NOT NULL) WITHOUT ROWID")) !=
	    0 ||
	    (r = walk_objects(s, rebuild_one)) != 0 ||
	    (r = db_exec(s->db, "COMMIT")) != 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	gk_info("store index %s built from the object files", s->dbpath);
	r = 0;
out:
	return r;
}

/*
 * Reconciliation at start: the index must list exactly the objects that
 * can be read. A crash can leave a file renamed into place whose row was
 * never written (or a row still describing the file it replaced), or a
 * row whose file was unlinked. Every index row is matched with the object
 * files by name hash (a directory scan, no decryption); a file without a
 * row, or whose size disagrees with its row, is read and (re)indexed, and
 * a row without a file is dropped. One transaction.
 */
typedef struct {
	uint8_t hash[HASH_LEN];
	uint8_t *key;
	size_t len;
	uint64_t size;
	int seen;
} rec_row;

struct reconcile {
	rec_row *rows;
	size_t n;
	size_t added, dropped;
};

static int
rec_cmp(const void *a, const void *b)
{
	return memcmp(((const rec_row *)a)->hash, ((const rec_row *)b)->hash,
	    HASH_LEN);
}

/* The file size an object of key length n and size S has on disk. */
static uint64_t
obj_file_size(size_t n, uint64_t size)
{
	uint64_t chunks = size / OBJ_CHUNK + (size % OBJ_CHUNK != 0);

	if (chunks == 0)
		chunks = 1;
	return OBJ_FIXED_LEN + n + size + OBJ_TAG_LEN * chunks;
}

static int
reconcile_one(fs_store *s, const char *path, const char *hex)
{
	struct reconcile *rc = s->rec;
	rec_row want, *row;
	struct stat st;

	if (gk_hex_decode(gk_slice_of(hex, HASH_HEX_LEN), want.hash,
	    HASH_LEN) != 0)
		return 0;
	row = rc->n > 0 ? bsearch(&want, rc->rows, rc->n, sizeof(*row),
	    rec_cmp) : NULL;
	if (row != NULL) {
		row->seen = 1;
		/* sizes in the index are at most INT64_MAX: no overflow */
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    row->size <= INT64_MAX && row->len <= OBJ_NAME_MAX &&
		    (uint64_t)st.st_size == obj_file_size(row->len,
		    row->size))
			return 0;
	}
	rc->added++;
	return rebuild_one(s, path, hex);
}

static int
db_reconcile(fs_store *s)
{
	struct reconcile rc;
	sqlite3_stmt *st = NULL;
	const void *k;
	rec_row *grow;
	size_t cap = 0, i;
	int rc_step, r = GK_ERR_INTERNAL;

	memset(&rc, 0, sizeof(rc));
	if ((r = db_exec(s->db, "BEGIN IMMEDIATE")) != 0)
		return r;
	r = GK_ERR_IO;
	if (sqlite3_prepare_v2(s->db, "SELECT key, size FROM objects", -1,
	    &st, NULL) != SQLITE_OK)
		goto out;
	while ((rc_step = sqlite3_step(st)) == SQLITE_ROW) {
		rec_row *row;
		int len = sqlite3_column_bytes(st, 0);

		k = sqlite3_column_blob(st, 0);
		if (rc.n == cap) {
			r = GK_ERR_NOMEM;
			cap = cap ? 2 * cap : 1024;
			if (cap > SIZE_MAX / sizeof(*grow) || (grow =
			    realloc(rc.rows, cap * sizeof(*grow))) == NULL)
				goto out;
			rc.rows = grow;
		}
		row = &rc.rows[rc.n];
		memset(row, 0, sizeof(*row));
		row->len = len > 0 ? (size_t)len : 0;
		row->size = (uint64_t)sqlite3_column_int64(st, 1);
		r = GK_ERR_NOMEM;
		if ((row->key = malloc(row->len + 1)) == NULL)
			goto out;
		if (row->len > 0)
			memcpy(row->key, k, row->len);
		rc.n++;
		if ((r = fs_sha256(gk_slice_of(row->key, row->len),
		    row->hash)) != 0)
			goto out;
	}
	r = GK_ERR_IO;
	if (rc_step != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if (rc.n > 0)
		qsort(rc.rows, rc.n, sizeof(*rc.rows), rec_cmp);
	s->rec = &rc;
	r = walk_objects(s, reconcile_one);
	s->rec = NULL;
	if (r != 0)
		goto out;
	r = GK_ERR_IO;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM objects WHERE key = ?1",
	    -1, &st, NULL) != SQLITE_OK)
		goto out;
	for (i = 0; i < rc.n; i++) {
		if (rc.rows[i].seen)
			continue;
		sqlite3_reset(st);
		if ((r = db_bind_blob(st, 1, gk_slice_of(rc.rows[i].key,
		    rc.rows[i].len))) != 0)
			goto out;
		r = GK_ERR_IO;
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		rc.dropped++;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((r = db_exec(s->db, "COMMIT")) != 0)
		goto out;
	if (rc.added > 0 || rc.dropped > 0)
		gk_info("store index reconciled with the object files: %zu "
		    "(re)indexed, %zu without a file dropped", rc.added,
		    rc.dropped);
	r = 0;
out:
	if (r != 0) {
		gk_error("store index reconciliation failed: %s",
		    gk_err_str(r));
		sqlite3_finalize(st);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	for (i = 0; i < rc.n; i++)
		free(rc.rows[i].key);
	free(rc.rows);
	return r;
}

int
fs_index_open(fs_store *s)
{
	sqlite3_stmt *st = NULL;
	int fd, rc, r = GK_ERR_INTERNAL;

	/* create it ourselves so it (and its -wal/-shm) get mode 0600 */
	if ((fd = open(s->dbpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		gk_error("%s: %s", s->dbpath, strerror(errno));
		r = GK_ERR_IO;
		goto out;
	}
	close(fd);
	r = GK_ERR_IO;
	if (sqlite3_open_v2(s->dbpath, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		gk_error("%s: %s", s->dbpath, s->db != NULL ?
		    sqlite3_errmsg(s->db) : "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(s->db, DB_BUSY_MS);
	if ((r = db_exec(s->db, "PRAGMA journal_mode=WAL")) != 0 ||
	    (r = db_exec(s->db, "PRAGMA synchronous=FULL")) != 0)
		goto out;
	r = GK_ERR_IO;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'objects'", -1, &st, NULL) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	/* no table: a new store, a deleted index.db or a crashed rebuild;
	 * a table: reconciled with the object files (a crash between a
	 * rename and its row) */
	if (rc == SQLITE_DONE)
		r = db_rebuild(s);
	else
		r = db_reconcile(s);
	if (r != 0)
		goto out;
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}
