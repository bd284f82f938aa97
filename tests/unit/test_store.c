/* test_store.c - the "fs" store: round trips, ranges, atomic writes,
 * listing, tamper detection, index rebuild and concurrent use. */
#include "rng.h"
#include "t.h"
#include "config/config.h"
#include "store/store.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHUNK 65536u
#define TAG 16u
#define FIXED 68u

static char root[64];
static gk_config *cfg;

/* ---- helpers --------------------------------------------------------- */


/* The store as the gate opens it: settings filled from cfg. */
static int
store_from(const gk_config *c, gk_store **out)
{
	char err[512];

	return cfg_store_open(c, out, err, sizeof(err));
}

static gk_config *
mk_cfg(const char *dir, uint8_t fill)
{
	gk_config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->store_dir = strdup(dir);
	c->master_key.p = malloc(GK_KEY_LEN);
	if (c->store_dir == NULL || c->master_key.p == NULL)
		abort();
	memset(c->master_key.p, fill, GK_KEY_LEN);
	c->master_key.len = GK_KEY_LEN;
	return c;
}

static void
free_cfg(gk_config *c)
{
	if (c == NULL)
		return;
	free(c->store_dir);
	free(c->master_key.p);
	free(c);
}

static uint8_t *
rand_bytes(size_t n)
{
	uint8_t *p = malloc(n > 0 ? n : 1);

	if (p == NULL || gk_random(p, n) != 0)
		abort();
	return p;
}

/* Writes data in pieces of varying size (to exercise chunk buffering). */
static int
put(gk_store *s, const char *key, const uint8_t *data, size_t len)
{
	gk_store_writer *w = NULL;
	size_t off = 0, n;
	uint64_t seed = len * 2654435761u + 1;
	int r;

	if ((r = store_put_begin(s, gk_slice_str(key), UINT64_MAX, &w)) != 0)
		return r;
	while (off < len) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		n = (size_t)(seed >> 33) % 100000 + 1;
		if (n > len - off)
			n = len - off;
		if ((r = store_writer_write(w, data + off, n)) != 0)
			goto out;
		off += n;
	}
	if (store_writer_size(w) != len) {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	if ((r = store_writer_finish(w)) != 0)
		goto out;
	r = store_writer_commit(w);
out:
	store_writer_free(w);
	return r;
}

/*
 * Opens the object and reads all of it: with blk 0 after verifying it
 * all, in odd-sized pieces; else in blocks of blk bytes without verifying
 * first, as the HTTP layer does (whole chunks straight into the caller's
 * buffer). Returns the first error. *out gets the bytes read (caller
 * frees).
 */
static int
get_blocks(gk_store *s, const char *key, size_t blk, uint8_t **out,
    size_t *len)
{
	gk_store_reader *rd = NULL;
	uint8_t *buf = NULL;
	uint64_t size = 0;
	int64_t mtime = 0;
	size_t off = 0, got;
	int r;

	*out = NULL;
	*len = 0;
	if ((r = store_get_open(s, gk_slice_str(key), &rd, &size,
	    &mtime)) != 0)
		return r;
	if (blk == 0 && (r = store_reader_verify(rd, 0, size)) != 0)
		goto out;
	if ((buf = malloc(size + (blk > 0 ? blk : 7003))) == NULL)
		abort();
	for (;;) {
		if ((r = store_reader_read(rd, off, buf + off,
		    blk > 0 ? blk : 7001 + off % 3, &got)) != 0)
			goto out;
		if (got == 0)
			break;
		off += got;
		if (off > size) {
			r = GK_ERR_INTERNAL;
			goto out;
		}
	}
	if (off != size) {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	*out = buf;
	*len = off;
	buf = NULL;
out:
	free(buf);
	store_reader_free(rd);
	return r;
}

static int
get(gk_store *s, const char *key, uint8_t **out, size_t *len)
{
	return get_blocks(s, key, 0, out, len);
}

/* In blocks of 1 MiB and a bit. */
static int
get_big(gk_store *s, const char *key, uint8_t **out, size_t *len)
{
	return get_blocks(s, key, 1024 * 1024 + 7, out, len);
}

static char *
obj_path(const char *key)
{
	uint8_t md[32];
	char hex[65];
	gk_buf b;

	if (EVP_Digest(key, strlen(key), md, NULL, EVP_sha256(), NULL) != 1)
		abort();
	gk_hex_encode(md, 32, hex);
	gk_buf_init(&b, 4096);
	if (gk_buf_printf(&b, "%s/objects/%.2s/%.2s/%s.obj", root, hex,
	    hex + 2, hex) != 0)
		abort();
	return gk_buf_detach(&b, NULL);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static int
count_dir(const char *sub)
{
	char path[256];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* ---- round trips ----------------------------------------------------- */

static void
test_roundtrip(gk_store *s)
{
	/* around the writer's 16-chunk slots and the reader's 16-chunk
	 * direct reads too */
	static const size_t sizes[] = { 0, 1, 65535, 65536, 65537,
		3 * 65536 + 5, 16 * 65536, 16 * 65536 + 1, 32 * 65536 + 3,
		5u * 1024 * 1024 };
	size_t i, len, n;
	uint8_t *data, *back;
	char key[64];
	int64_t before = gk_now_s();

	for (i = 0; i < GK_ARRAY_LEN(sizes); i++) {
		gk_store_reader *rd = NULL;
		uint64_t size = 99;
		int64_t mtime = 0;
		char *path;

		snprintf(key, sizeof(key), "rt/%zu", sizes[i]);
		data = rand_bytes(sizes[i]);
		T_EQ_INT(put(s, key, data, sizes[i]), 0);
		T_EQ_INT(get(s, key, &back, &len), 0);
		T_EQ_INT(len, sizes[i]);
		T_CHECK(back != NULL && (len == 0 ||
		    memcmp(back, data, len) == 0));
		free(back);
		T_EQ_INT(get_big(s, key, &back, &len), 0);
		T_EQ_INT(len, sizes[i]);
		T_CHECK(back != NULL && (len == 0 ||
		    memcmp(back, data, len) == 0));
		T_EQ_INT(store_get_open(s, gk_slice_str(key), &rd, &size,
		    &mtime), 0);
		T_EQ_INT(size, sizes[i]);
		T_CHECK(mtime >= before && mtime <= gk_now_s());
		store_reader_free(rd);
		/* the on-disk size is what the format says */
		n = sizes[i] == 0 ? 1 : (sizes[i] + CHUNK - 1) / CHUNK;
		path = obj_path(key);
		T_EQ_INT(file_size(path), FIXED + strlen(key) + sizes[i] +
		    TAG * n);
		free(path);
		free(data);
		free(back);
	}
	/* unicode key */
	data = rand_bytes(1000);
	T_EQ_INT(put(s, "r\xc3\xa9sum\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt",
	    data, 1000), 0);
	T_EQ_INT(get(s, "r\xc3\xa9sum\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt",
	    &back, &len), 0);
	T_CHECK(len == 1000 && memcmp(back, data, 1000) == 0);
	free(back);
	free(data);
	T_EQ_INT(get(s, "rt/missing", &back, &len), GK_ERR_NOT_FOUND);
	T_EQ_INT(store_delete(s, gk_slice_str("rt/missing")),
	    GK_ERR_NOT_FOUND);
}

static void
test_ranges(gk_store *s)
{
	static const uint64_t edges[][2] = {
		{ 0, 1 }, { 65535, 1 }, { 65535, 2 }, { 65536, 65536 },
		{ 65530, 131080 }, { 131071, 65542 }, { 196608, 5 },
		{ 196612, 1 }, { 0, 196613 }, { 196613, 0 }, { 100, 0 },
	};
	const size_t size = 3 * 65536 + 5;
	gk_store_reader *rd = NULL;
	uint8_t *data = rand_bytes(size), *buf = malloc(size);
	uint64_t osize;
	size_t i, got, total;
	int bad = 0, r;

	T_EQ_INT(put(s, "range", data, size), 0);
	T_EQ_INT(store_get_open(s, gk_slice_str("range"), &rd, &osize, NULL),
	    0);
	if (rd == NULL || buf == NULL)
		goto out;
	for (i = 0; i < GK_ARRAY_LEN(edges); i++) {
		uint64_t off = edges[i][0], len = edges[i][1];

		T_EQ_INT(store_reader_verify(rd, off, len), 0);
		total = 0;
		while (total < len) {
			r = store_reader_read(rd, off + total, buf + total,
			    len - total, &got);
			if (r != 0 || got == 0)
				break;
			total += got;
		}
		T_EQ_INT(total, len);
		T_CHECK(len == 0 || memcmp(buf, data + off, len) == 0);
	}
	/* random offsets and lengths, one call each */
	for (i = 0; i < 2000; i++) {
		uint64_t off = rng() % size;
		size_t max = (size_t)(rng() % 150000) + 1;

		if (store_reader_read(rd, off, buf, max, &got) != 0 ||
		    got == 0 || got > max || off + got > size ||
		    memcmp(buf, data + off, got) != 0)
			bad++;
		if (store_reader_verify(rd, off, max) != 0)
			bad++;
	}
	T_EQ_INT(bad, 0);
	/* a single call may cross chunk boundaries and fill the buffer */
	T_EQ_INT(store_reader_read(rd, 1000, buf, size, &got), 0);
	T_EQ_INT(got, size - 1000);
	T_CHECK(memcmp(buf, data + 1000, size - 1000) == 0);
	/* end of object */
	T_EQ_INT(store_reader_read(rd, size, buf, 10, &got), 0);
	T_EQ_INT(got, 0);
	T_EQ_INT(store_reader_read(rd, size + 100, buf, 10, &got), 0);
	T_EQ_INT(got, 0);
	T_EQ_INT(store_reader_verify(rd, size, 0), 0);
	T_EQ_INT(store_reader_verify(rd, size + 1, 1), GK_ERR_RANGE);
	T_EQ_INT(store_reader_verify(rd, 5, UINT64_MAX), 0);
out:
	store_reader_free(rd);
	free(buf);
	free(data);
}

/* ---- writer semantics ------------------------------------------------ */

static void
test_writer(gk_store *s)
{
	gk_store_writer *w = NULL;
	uint8_t *data = rand_bytes(200000), *back = NULL;
	size_t len;

	/* over max */
	T_EQ_INT(store_put_begin(s, gk_slice_str("big"), 100000, &w), 0);
	T_EQ_INT(store_writer_write(w, data, 60000), 0);
	T_EQ_INT(store_writer_write(w, data, 40001), GK_ERR_TOO_LARGE);
	T_CHECK(store_writer_finish(w) != 0);
	T_CHECK(store_writer_commit(w) != 0);
	store_writer_free(w);
	w = NULL;
	T_EQ_INT(get(s, "big", &back, &len), GK_ERR_NOT_FOUND);
	T_EQ_INT(count_dir("tmp"), 0);
	/* exactly max is fine */
	T_EQ_INT(store_put_begin(s, gk_slice_str("big"), 100000, &w), 0);
	T_EQ_INT(store_writer_write(w, data, 100000), 0);
	T_EQ_INT(store_writer_write(w, data, 0), 0);
	T_EQ_INT(store_writer_write(w, data, 1), GK_ERR_TOO_LARGE);
	store_writer_free(w);
	w = NULL;
	T_EQ_INT(store_put_begin(s, gk_slice_str("big"), 100000, &w), 0);
	T_EQ_INT(store_writer_write(w, data, 100000), 0);
	T_EQ_INT(store_writer_commit(w), 0);	/* commit implies finish */
	store_writer_free(w);
	w = NULL;
	T_EQ_INT(get(s, "big", &back, &len), 0);
	T_CHECK(len == 100000 && memcmp(back, data, len) == 0);
	free(back);

	/* overwrite replaces */
	T_EQ_INT(put(s, "ow", data, 150000), 0);
	T_EQ_INT(put(s, "ow", data + 7, 3), 0);
	T_EQ_INT(get(s, "ow", &back, &len), 0);
	T_CHECK(len == 3 && memcmp(back, data + 7, 3) == 0);
	free(back);

	/* abandoned writer: temp file exists meanwhile, gone after free,
	 * object never visible; the old version stays */
	T_EQ_INT(store_put_begin(s, gk_slice_str("ow"), UINT64_MAX, &w), 0);
	T_EQ_INT(store_writer_write(w, data, 200000), 0);
	T_EQ_INT(count_dir("tmp"), 1);
	T_EQ_INT(get(s, "ow", &back, &len), 0);
	T_EQ_INT(len, 3);
	free(back);
	T_EQ_INT(store_writer_finish(w), 0);
	T_EQ_INT(count_dir("tmp"), 1);
	store_writer_free(w);
	w = NULL;
	T_EQ_INT(count_dir("tmp"), 0);
	T_EQ_INT(get(s, "ow", &back, &len), 0);
	T_EQ_INT(len, 3);
	free(back);
	T_EQ_INT(store_put_begin(s, gk_slice_str("never"), 10, &w), 0);
	store_writer_free(w);
	w = NULL;
	T_EQ_INT(count_dir("tmp"), 0);
	T_EQ_INT(get(s, "never", &back, &len), GK_ERR_NOT_FOUND);
	store_writer_free(NULL);
	store_reader_free(NULL);

	/* delete */
	T_EQ_INT(store_delete(s, gk_slice_str("ow")), 0);
	T_EQ_INT(get(s, "ow", &back, &len), GK_ERR_NOT_FOUND);
	T_EQ_INT(store_delete(s, gk_slice_str("ow")), GK_ERR_NOT_FOUND);
	/* a reader opened before an overwrite keeps its version */
	{
		gk_store_reader *rd = NULL;
		uint8_t b[8];
		size_t got = 0;

		T_EQ_INT(put(s, "keep", data, 5), 0);
		T_EQ_INT(store_get_open(s, gk_slice_str("keep"), &rd, NULL,
		    NULL), 0);
		T_EQ_INT(put(s, "keep", data + 100, 5), 0);
		T_EQ_INT(store_delete(s, gk_slice_str("keep")), 0);
		if (rd != NULL)
			T_EQ_INT(store_reader_read(rd, 0, b, sizeof(b), &got),
			    0);
		T_CHECK(got == 5 && memcmp(b, data, 5) == 0);
		store_reader_free(rd);
	}
	free(data);
}

/* ---- listing --------------------------------------------------------- */

static int
collect(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	gk_buf *b = arg;

	if (gk_buf_append(b, key.p, key.len) != 0 ||
	    gk_buf_printf(b, "=%llu|", (unsigned long long)size) != 0)
		return -1;
	return 0;
}

static int
stop_after_two(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	int *n = arg;

	return ++*n >= 2;
}

static int
fail_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	return GK_ERR_TOO_LARGE;
}

static const char *
list(gk_store *s, gk_buf *b, const char *prefix, const char *after,
    unsigned max)
{
	gk_buf_reset(b);
	if (gk_buf_append(b, "", 0) != 0 ||
	    store_list(s, gk_slice_str(prefix), gk_slice_str(after), max,
	    collect, b) != 0)
		return "(error)";
	return (const char *)b->data;
}

static void
test_list(gk_store *s)
{
	static const char *keys[] = { "l/b", "l/a/y", "l/a", "l/ab", "l/a/x",
		"l/\xe6\x97\xa5", "l/\xc3\xa9", "l/Z", "l/empty", "l/a/empty",
		"l0", "l", "l/\xff\xff", "l/\xff" };
	gk_buf b;
	size_t i;
	int n = 0;
	char key[32];

	gk_buf_init(&b, 1 << 20);
	for (i = 0; i < GK_ARRAY_LEN(keys); i++) {
		size_t len = strstr(keys[i], "empty") != NULL ? 0 :
		    strlen(keys[i]);

		T_EQ_INT(put(s, keys[i], (const uint8_t *)keys[i], len), 0);
	}
	T_EQ_STR(list(s, &b, "l/", "", 0), "l/Z=3|l/a=3|l/a/x=5|l/a/y=5|"
	    "l/ab=4|l/b=3|l/\xc3\xa9=4|l/\xe6\x97\xa5=5|l/\xff=3|"
	    "l/\xff\xff=4|");
	T_EQ_STR(list(s, &b, "l", "", 0), "l=1|l/Z=3|l/a=3|l/a/x=5|l/a/y=5|"
	    "l/ab=4|l/b=3|l/\xc3\xa9=4|l/\xe6\x97\xa5=5|l/\xff=3|"
	    "l/\xff\xff=4|l0=2|");
	T_EQ_STR(list(s, &b, "l/a", "", 0), "l/a=3|l/a/x=5|l/a/y=5|l/ab=4|");
	T_EQ_STR(list(s, &b, "l/a/", "", 0), "l/a/x=5|l/a/y=5|");
	T_EQ_STR(list(s, &b, "l/a", "l/a", 0), "l/a/x=5|l/a/y=5|l/ab=4|");
	T_EQ_STR(list(s, &b, "l/a", "l/a/x", 0), "l/a/y=5|l/ab=4|");
	T_EQ_STR(list(s, &b, "l/a", "a", 0), "l/a=3|l/a/x=5|l/a/y=5|l/ab=4|");
	T_EQ_STR(list(s, &b, "l/a", "l/b", 0), "");
	T_EQ_STR(list(s, &b, "l/", "l/b", 2), "l/\xc3\xa9=4|"
	    "l/\xe6\x97\xa5=5|");
	T_EQ_STR(list(s, &b, "l/", "", 3), "l/Z=3|l/a=3|l/a/x=5|");
	T_EQ_STR(list(s, &b, "l/\xff", "", 0), "l/\xff=3|l/\xff\xff=4|");
	T_EQ_STR(list(s, &b, "l/\xff", "l/\xff", 0), "l/\xff\xff=4|");
	T_EQ_STR(list(s, &b, "l/\xe6", "", 0), "l/\xe6\x97\xa5=5|");
	T_EQ_STR(list(s, &b, "l/empty", "", 0), "");
	T_EQ_STR(list(s, &b, "nothing", "", 0), "");
	T_EQ_INT(store_list(s, gk_slice_str("l/"), GK_SLICE_NULL, 0,
	    stop_after_two, &n), 0);
	T_EQ_INT(n, 2);
	T_EQ_INT(store_list(s, gk_slice_str("l/"), GK_SLICE_NULL, 0, fail_cb,
	    NULL), GK_ERR_TOO_LARGE);
	/* more than one internal batch, and paging through it */
	for (i = 0; i < 600; i++) {
		snprintf(key, sizeof(key), "m/%04zu", i);
		T_EQ_INT(put(s, key, (const uint8_t *)"x", 1), 0);
	}
	list(s, &b, "m/", "", 0);
	T_EQ_INT(b.len, 600 * strlen("m/0000=1|"));
	T_CHECK(strncmp((char *)b.data, "m/0000=1|m/0001=1|", 18) == 0);
	T_CHECK(strcmp((char *)b.data + b.len - 9, "m/0599=1|") == 0);
	list(s, &b, "m/", "m/0299", 257);
	T_EQ_INT(b.len, 257 * strlen("m/0000=1|"));
	T_CHECK(strncmp((char *)b.data, "m/0300=1|", 9) == 0);
	T_CHECK(strcmp((char *)b.data + b.len - 9, "m/0556=1|") == 0);
	/* deleted and emptied objects drop out */
	T_EQ_INT(store_delete(s, gk_slice_str("l/a/x")), 0);
	T_EQ_INT(put(s, "l/a/y", NULL, 0), 0);
	T_EQ_STR(list(s, &b, "l/a/", "", 0), "");
	gk_buf_release(&b);
}

/* ---- tampering ------------------------------------------------------- */

static void
flip(const char *path, off_t off)
{
	uint8_t c;
	int fd = open(path, O_RDWR);

	if (fd < 0 || pread(fd, &c, 1, off) != 1)
		abort();
	c ^= 0x01;
	if (pwrite(fd, &c, 1, off) != 1)
		abort();
	close(fd);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	gk_buf b;

	if (gk_file_read(path, 64u << 20, &b) != 0)
		abort();
	return (uint8_t *)gk_buf_detach(&b, len);
}

static void
spit(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	if (fd < 0 || (len > 0 && write(fd, p, len) != (ssize_t)len))
		abort();
	close(fd);
}

/*
 * Opens the object and reads it chunk by chunk with read() alone, then
 * again with verify(); every byte returned must be the original. Returns
 * the error seen (0 if the whole object read back fine).
 */
static int fail_at_open;	/* set by tamper_result */

static int
tamper_result(gk_store *s, const char *key, const uint8_t *orig,
    size_t olen)
{
	gk_store_reader *rd = NULL;
	uint8_t *buf = malloc(CHUNK);
	uint64_t size, off = 0;
	size_t got;
	int r, r2;

	if (buf == NULL)
		abort();
	fail_at_open = 1;
	if ((r = store_get_open(s, gk_slice_str(key), &rd, &size, NULL)) != 0)
		goto out;
	fail_at_open = 0;
	for (;;) {
		if ((r = store_reader_read(rd, off, buf, CHUNK, &got)) != 0)
			break;
		if (got == 0)
			break;
		if (off + got > olen || memcmp(buf, orig + off, got) != 0) {
			r = 1000;	/* wrong bytes returned */
			goto out;
		}
		off += got;
	}
	if (r == 0 && off != olen)
		r = 1001;
	store_reader_free(rd);
	rd = NULL;
	if ((r2 = store_get_open(s, gk_slice_str(key), &rd, &size,
	    NULL)) == 0)
		r2 = store_reader_verify(rd, 0, size);
	if (r2 != r)
		r = 1002;	/* read and verify disagree */
	store_reader_free(rd);
	rd = NULL;
	if (r == 0 || r == GK_ERR_INTEGRITY) {
		/* whole chunks at a time, as a download reads: the same
		 * verdict, and never a wrong byte */
		uint8_t *big = NULL;
		size_t blen = 0;

		r2 = get_big(s, key, &big, &blen);
		if (r2 != r || (r2 == 0 && (blen != olen ||
		    memcmp(big, orig, olen) != 0)))
			r = 1003;
		free(big);
	}
out:
	store_reader_free(rd);
	free(buf);
	return r;
}

enum { T_FLIP, T_TRUNC, T_CUT_MID, T_CUT_LAST_FIX, T_SWAP, T_APPEND,
	T_COPY, T_COPY_RENAME };

/* at_open: the damage must already be caught by store_get_open (the
 * header, the final chunk and the file size are checked there). */
static void
tamper_case(gk_store *s, const char *key, const uint8_t *data, size_t size,
    int kind, off_t at, int at_open)
{
	char *path = obj_path(key), *other;
	size_t hl = FIXED + strlen(key), per = CHUNK + TAG, len;
	uint8_t *f, *g, tmp[CHUNK + TAG];

	T_EQ_INT(put(s, key, data, size), 0);
	T_EQ_INT(tamper_result(s, key, data, size), 0);
	switch (kind) {
	case T_FLIP:
		flip(path, at);
		break;
	case T_TRUNC:
		T_EQ_INT(truncate(path, file_size(path) - 1), 0);
		break;
	case T_CUT_MID:	/* drop chunk 1, header unchanged */
		f = slurp(path, &len);
		memmove(f + hl + per, f + hl + 2 * per, len - hl - 2 * per);
		spit(path, f, len - per);
		free(f);
		break;
	case T_CUT_LAST_FIX:	/* drop the last chunk, fix the size */
		f = slurp(path, &len);
		f[16 + 7] = 0;
		f[16 + 6] = 0;
		f[16 + 5] = 3;	/* size = 3 * 65536 */
		f[16 + 4] = 0;
		spit(path, f, len - (size - 3 * CHUNK) - TAG);
		free(f);
		break;
	case T_SWAP:	/* chunks 0 and 1 */
		f = slurp(path, &len);
		memcpy(tmp, f + hl, per);
		memcpy(f + hl, f + hl + per, per);
		memcpy(f + hl + per, tmp, per);
		spit(path, f, len);
		free(f);
		break;
	case T_APPEND:
		f = slurp(path, &len);
		g = realloc(f, len + 1);
		if (g == NULL)
			abort();
		g[len] = 0;
		spit(path, g, len + 1);
		free(g);
		break;
	case T_COPY:	/* another key's (valid) file over this one */
	case T_COPY_RENAME:	/* ... with the name in its header edited */
		T_EQ_INT(put(s, "tamper/other", data, size), 0);
		other = obj_path("tamper/other");
		f = slurp(other, &len);
		if (kind == T_COPY_RENAME) {
			/* same length names: "tamper/other" -> key */
			T_EQ_INT(strlen(key), strlen("tamper/other"));
			memcpy(f + FIXED, key, strlen(key));
		}
		spit(path, f, len);
		free(f);
		free(other);
		T_EQ_INT(tamper_result(s, "tamper/other", data, size), 0);
		break;
	}
	T_EQ_INT(tamper_result(s, key, data, size), GK_ERR_INTEGRITY);
	T_EQ_INT(fail_at_open, at_open);
	free(path);
}

static void
test_tamper(gk_store *s)
{
	const size_t size = 3 * 65536 + 5;	/* chunks 0..3, last short */
	const size_t hl = FIXED + strlen("tamper/a");
	const size_t per = CHUNK + TAG;
	uint8_t *data = rand_bytes(size), *back;
	gk_config *c2;
	gk_store *s2 = NULL;
	size_t len;

	/* header: magic, version, chunk size, size, mtime, salt, name
	 * length, name */
	tamper_case(s, "tamper/a", data, size, T_FLIP, 0, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, 11, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, 13, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, 23, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, 31, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, 40, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, 67, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, FIXED + 3, 1);
	/* first chunk ciphertext, first chunk tag, middle chunk tag */
	tamper_case(s, "tamper/a", data, size, T_FLIP, hl + 10, 0);
	tamper_case(s, "tamper/a", data, size, T_FLIP, hl + per - 1, 0);
	tamper_case(s, "tamper/a", data, size, T_FLIP, hl + 2 * per - 3,
	    0);
	tamper_case(s, "tamper/a", data, size, T_FLIP, hl + 2 * per + 100,
	    0);
	/* final chunk: data and tag */
	tamper_case(s, "tamper/a", data, size, T_FLIP, hl + 3 * per + 2, 1);
	tamper_case(s, "tamper/a", data, size, T_FLIP, hl + 3 * per + 20,
	    1);
	tamper_case(s, "tamper/a", data, size, T_TRUNC, 0, 1);
	tamper_case(s, "tamper/a", data, size, T_CUT_MID, 0, 1);
	tamper_case(s, "tamper/a", data, size, T_CUT_LAST_FIX, 0, 1);
	tamper_case(s, "tamper/a", data, size, T_SWAP, 0, 0);
	tamper_case(s, "tamper/a", data, size, T_APPEND, 0, 1);
	tamper_case(s, "tamper/a", data, size, T_COPY, 0, 1);
	tamper_case(s, "tamper/abcde", data, size, T_COPY_RENAME, 0, 1);
	/* an empty object still has an authenticated header */
	tamper_case(s, "tamper/a", data, 0, T_FLIP, 25, 1);
	tamper_case(s, "tamper/a", data, 0, T_FLIP, FIXED + 8 + 3, 1);
	tamper_case(s, "tamper/a", data, 0, T_TRUNC, 0, 1);
	tamper_case(s, "tamper/a", data, 0, T_APPEND, 0, 1);
	/* a file that is not an object at all */
	{
		char *path = obj_path("tamper/a");

		spit(path, (const uint8_t *)"hello", 5);
		T_EQ_INT(tamper_result(s, "tamper/a", data, 0),
		    GK_ERR_INTEGRITY);
		spit(path, NULL, 0);
		T_EQ_INT(tamper_result(s, "tamper/a", data, 0),
		    GK_ERR_INTEGRITY);
		free(path);
	}
	/* a different master key reads nothing */
	T_EQ_INT(put(s, "tamper/a", data, 1000), 0);
	c2 = mk_cfg(root, 0x77);
	T_EQ_INT(store_from(c2, &s2), 0);
	if (s2 != NULL)
		T_EQ_INT(get(s2, "tamper/a", &back, &len), GK_ERR_INTEGRITY);
	store_free(s2);
	free_cfg(c2);
	free(data);
}

/* The plaintext is not on disk and no two chunks share a keystream. */
static void
test_ciphertext(gk_store *s)
{
	uint8_t *zeros = calloc(1, 2 * CHUNK), *f = NULL;
	char *path = obj_path("ct/zeros");
	size_t len = 0, hl = FIXED + strlen("ct/zeros"), i, nz = 0;

	if (zeros == NULL)
		abort();
	T_EQ_INT(put(s, "ct/zeros", zeros, 2 * CHUNK), 0);
	f = slurp(path, &len);
	T_EQ_INT(len, hl + 2 * (CHUNK + TAG));
	if (len == hl + 2 * (CHUNK + TAG)) {
		for (i = hl; i < hl + CHUNK; i++)
			nz += f[i] == 0;
		T_CHECK(nz < CHUNK / 128);
		T_CHECK(memcmp(f + hl, f + hl + CHUNK + TAG, CHUNK) != 0);
		T_CHECK(memmem(f, len, "ct/zeros", 8) == f + FIXED);
	}
	free(f);
	f = NULL;
	/* the same bytes stored again use a fresh salt, so a fresh key */
	T_EQ_INT(put(s, "ct/zeros2", zeros, 16), 0);
	T_EQ_INT(put(s, "ct/zeros3", zeros, 16), 0);
	{
		char *p2 = obj_path("ct/zeros2"), *p3 = obj_path("ct/zeros3");
		size_t l2, l3;
		uint8_t *f2 = slurp(p2, &l2), *f3 = slurp(p3, &l3);

		T_CHECK(l2 == l3 && memcmp(f2 + 32, f3 + 32, 32) != 0 &&
		    memcmp(f2 + l2 - 32, f3 + l3 - 32, 32) != 0);
		free(f2);
		free(f3);
		free(p2);
		free(p3);
	}
	free(path);
	free(zeros);
}

/* ---- index rebuild --------------------------------------------------- */

static void
test_rebuild(gk_store **sp)
{
	char path[256], before[1 << 15];
	gk_buf b;
	int fd;

	gk_buf_init(&b, 1 << 20);
	/* tampered objects would (rightly) be left out of a rebuild */
	T_EQ_INT(store_delete(*sp, gk_slice_str("tamper/abcde")), 0);
	/* a stray file and an object under the wrong name are skipped */
	snprintf(path, sizeof(path), "%s/objects/zz", root);
	T_EQ_INT(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/objects/ab/cd", root);
	T_EQ_INT(gk_mkdirs(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/objects/ab/cd/%s.obj", root,
	    "abcd000000000000000000000000000000000000000000000000000000000000");
	{
		char *src;
		size_t len;
		uint8_t *f;

		T_EQ_INT(put(*sp, "l/ghost", (const uint8_t *)"boo", 3), 0);
		src = obj_path("l/ghost");
		f = slurp(src, &len);
		if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) < 0 ||
		    write(fd, f, len) != (ssize_t)len)
			abort();
		close(fd);
		free(f);
		free(src);
		T_EQ_INT(store_delete(*sp, gk_slice_str("l/ghost")), 0);
	}
	snprintf(before, sizeof(before), "%s", list(*sp, &b, "", "", 0));
	T_CHECK(strstr(before, "l/b=3|") != NULL);
	T_CHECK(strstr(before, "ghost") == NULL);
	store_free(*sp);
	*sp = NULL;
	/* reopen with the index intact */
	T_EQ_INT(store_from(cfg, sp), 0);
	if (*sp == NULL)
		goto out;
	T_EQ_STR(list(*sp, &b, "", "", 0), before);
	store_free(*sp);
	*sp = NULL;
	snprintf(path, sizeof(path), "%s/index.db", root);
	T_EQ_INT(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/index.db-wal", root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/index.db-shm", root);
	unlink(path);
	T_EQ_INT(store_from(cfg, sp), 0);
	if (*sp == NULL)
		goto out;
	T_EQ_STR(list(*sp, &b, "", "", 0), before);
	T_EQ_STR(list(*sp, &b, "l/a", "", 0), "l/a=3|l/ab=4|");
	/* the rebuilt index keeps working */
	T_EQ_INT(put(*sp, "l/a/z", (const uint8_t *)"z", 1), 0);
	T_EQ_STR(list(*sp, &b, "l/a", "", 0), "l/a=3|l/a/z=1|l/ab=4|");
out:
	gk_buf_release(&b);
}

/* ---- concurrency ----------------------------------------------------- */

#define THREADS 4
#define ROUNDS 25

typedef struct {
	gk_store *s;
	int id;
	int errors;
} worker;

static void *
work(void *arg)
{
	worker *wk = arg;
	uint8_t *data, *back = NULL;
	size_t size, len;
	char key[64];
	int i;

	for (i = 0; i < ROUNDS; i++) {
		size = (size_t)(i * 7919 + wk->id * 104729) % 300000;
		data = rand_bytes(size);
		snprintf(key, sizeof(key), "conc/%d/%03d", wk->id, i);
		if (put(wk->s, key, data, size) != 0)
			wk->errors++;
		if (get(wk->s, key, &back, &len) != 0 || len != size ||
		    (size > 0 && memcmp(back, data, size) != 0))
			wk->errors++;
		free(back);
		back = NULL;
		/* overwrite every few rounds */
		if (i % 5 == 0) {
			if (put(wk->s, key, data, size / 2) != 0 ||
			    get(wk->s, key, &back, &len) != 0 ||
			    len != size / 2 ||
			    (len > 0 && memcmp(back, data, len) != 0))
				wk->errors++;
			free(back);
			back = NULL;
		}
		free(data);
	}
	return NULL;
}

static int
count_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_concurrent(gk_store *s)
{
	pthread_t th[THREADS];
	worker wk[THREADS];
	int i, n = 0, errors = 0, started = 0;

	for (i = 0; i < THREADS; i++) {
		wk[i].s = s;
		wk[i].id = i;
		wk[i].errors = 0;
		if (pthread_create(&th[i], NULL, work, &wk[i]) == 0)
			started++;
	}
	T_EQ_INT(started, THREADS);
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		errors += wk[i].errors;
	}
	T_EQ_INT(errors, 0);
	T_EQ_INT(store_list(s, gk_slice_str("conc/"), GK_SLICE_NULL, 0,
	    count_cb, &n), 0);
	/* sizes that came out 0 (or 0 after halving) are left out */
	{
		int want = 0, t, k;

		for (t = 0; t < THREADS; t++) {
			for (k = 0; k < ROUNDS; k++) {
				size_t sz = (size_t)(k * 7919 + t * 104729) %
				    300000;

				if (k % 5 == 0)
					sz /= 2;
				want += sz > 0;
			}
		}
		T_EQ_INT(n, want);
	}
	T_EQ_INT(count_dir("tmp"), 0);
}

/* ---- large reads with the decrypt helpers ----------------------------- */

#define RA_BLOCK (1024u * 1024)
#define RA_SIZE (6u * RA_BLOCK + 100)
#define RA_THREADS 6

/* Reads key in RA_BLOCK blocks from block `from`, as a download does (so
 * the store's decrypt helper takes the second half of each block); 0 and
 * the whole rest matching data, or the first error with how far it got. */
static int
ra_read(gk_store *s, const char *key, const uint8_t *data, size_t from,
    size_t *done)
{
	gk_store_reader *rd = NULL;
	uint8_t *buf = malloc(RA_BLOCK);
	uint64_t size, off = (uint64_t)from * RA_BLOCK;
	size_t got;
	int r;

	*done = 0;
	if (buf == NULL)
		abort();
	if ((r = store_get_open(s, gk_slice_str(key), &rd, &size, NULL)) != 0)
		goto out;
	for (;;) {
		memset(buf, 0xee, RA_BLOCK);
		r = store_reader_read(rd, off, buf, RA_BLOCK, &got);
		if (r != 0 || got == 0)
			break;
		if (off + got > size || memcmp(buf, data + off, got) != 0) {
			r = 1000;	/* a wrong byte */
			break;
		}
		off += got;
		*done = (size_t)off;
	}
	if (r == 0 && off != size)
		r = 1001;
out:
	store_reader_free(rd);
	free(buf);
	return r;
}

/* Threads of this process named as the store's decrypt helpers. */
static int
helpers(void)
{
	char path[300], name[64];
	struct dirent *de;
	DIR *d;
	FILE *f;
	int n = 0;

	if ((d = opendir("/proc/self/task")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
		    de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(name, sizeof(name), f) != NULL &&
		    strcmp(name, "gk-decrypt\n") == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

struct ra_arg {
	gk_store *s;
	const uint8_t *data;
	int r;
};

static void *
ra_thread(void *arg)
{
	struct ra_arg *a = arg;
	size_t done;

	a->r = ra_read(a->s, "ra/big", a->data, 0, &done);
	return NULL;
}

/* Flips the byte at off in ra/big's chunk c (off < 0: from its end, into
 * the tag). */
static void
flip_chunk(const char *path, size_t hl, size_t c, long off)
{
	flip(path, (off_t)(hl + (c + (off < 0)) * (CHUNK + TAG)) + off);
}

static void
test_large_reads(gk_store *s)
{
	/* chunks tampered: the reader's half of block 4, the helper's half
	 * of block 4 (data, then tag), the helper's half of block 5 */
	static const struct { size_t chunk; long off; size_t done; } bad[] = {
		{ 4 * 16 + 3, 77, 4 * RA_BLOCK },
		{ 4 * 16 + 11, 77, 4 * RA_BLOCK },
		{ 4 * 16 + 11, -3, 4 * RA_BLOCK },
		{ 5 * 16 + 15, 5, 5 * RA_BLOCK },
	};
	uint8_t *data = rand_bytes(RA_SIZE), *buf = malloc(RA_BLOCK);
	char *path = obj_path("ra/big");
	const size_t hl = FIXED + strlen("ra/big");
	gk_store_reader *rd = NULL;
	struct ra_arg a[RA_THREADS];
	pthread_t th[RA_THREADS];
	size_t done, got, i;
	uint64_t size;
	int started = 0;

	if (buf == NULL)
		abort();
	T_EQ_INT(put(s, "ra/big", data, RA_SIZE), 0);
	/* whole object, and from the middle */
	T_EQ_INT(ra_read(s, "ra/big", data, 0, &done), 0);
	T_EQ_INT(done, RA_SIZE);
	T_EQ_INT(ra_read(s, "ra/big", data, 3, &done), 0);
	/* blocks in any order, and one not starting at a block boundary */
	T_EQ_INT(store_get_open(s, gk_slice_str("ra/big"), &rd, &size, NULL),
	    0);
	if (rd != NULL) {
		static const size_t order[] = { 0, 1, 2, 5, 1, 2, 3, 0, 6 };

		for (i = 0; i < GK_ARRAY_LEN(order); i++) {
			uint64_t off = (uint64_t)order[i] * RA_BLOCK;
			size_t want = off + RA_BLOCK > RA_SIZE ?
			    RA_SIZE - (size_t)off : RA_BLOCK;

			T_EQ_INT(store_reader_read(rd, off, buf, RA_BLOCK,
			    &got), 0);
			T_EQ_INT(got, want);
			T_CHECK(memcmp(buf, data + off, want) == 0);
		}
		T_EQ_INT(store_reader_read(rd, CHUNK + 1, buf, RA_BLOCK, &got),
		    0);
		T_EQ_INT(got, RA_BLOCK);
		T_CHECK(memcmp(buf, data + CHUNK + 1, RA_BLOCK) == 0);
	}
	store_reader_free(rd);
	/* with a second core, a helper was started for that */
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		T_CHECK(helpers() > 0);
	/* more readers at once than helpers */
	for (i = 0; i < RA_THREADS; i++) {
		a[i].s = s;
		a[i].data = data;
		a[i].r = -1;
		if (pthread_create(&th[i], NULL, ra_thread, &a[i]) == 0)
			started++;
	}
	T_EQ_INT(started, RA_THREADS);
	for (i = 0; i < (size_t)started; i++) {
		pthread_join(th[i], NULL);
		T_EQ_INT(a[i].r, 0);
	}
	/* a tampered chunk, whichever thread authenticates it: the blocks
	 * before it come back right, its block is an error and not one byte
	 * of it is returned (ra_read checks every byte it gets) */
	for (i = 0; i < GK_ARRAY_LEN(bad); i++) {
		flip_chunk(path, hl, bad[i].chunk, bad[i].off);
		T_EQ_INT(ra_read(s, "ra/big", data, 0, &done),
		    GK_ERR_INTEGRITY);
		T_EQ_INT(done, bad[i].done);
		flip_chunk(path, hl, bad[i].chunk, bad[i].off);
	}
	T_EQ_INT(ra_read(s, "ra/big", data, 0, &done), 0);
	free(path);
	free(buf);
	free(data);
}

/* ---- main ------------------------------------------------------------ */

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
main(void)
{
	gk_store *s = NULL;

	gk_log_set_level(GK_LOG_ERROR);
	snprintf(root, sizeof(root), "/tmp/gk-store-XXXXXX");
	if (mkdtemp(root) == NULL)
		return 1;
	cfg = mk_cfg(root, 0x42);
	T_EQ_INT(store_from(cfg, &s), 0);
	if (s == NULL)
		return T_DONE();
	{
		gk_config *bad = mk_cfg(root, 0);
		gk_store *s2 = (gk_store *)1;

		bad->master_key.len = 16;
		T_EQ_INT(store_from(bad, &s2), GK_ERR_CONFIG);
		T_CHECK(s2 == NULL);
		free_cfg(bad);
	}
	test_roundtrip(s);
	test_ranges(s);
	test_writer(s);
	test_list(s);
	test_tamper(s);
	test_ciphertext(s);
	test_large_reads(s);
	test_rebuild(&s);
	if (s != NULL)
		test_concurrent(s);
	store_free(s);
	store_free(NULL);
	free_cfg(cfg);
	nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return T_DONE();
}
