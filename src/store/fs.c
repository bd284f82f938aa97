/*
 * fs.c - the "fs" store: encrypted objects under the store directory.
 *
 * Layout under cfg->store_dir:
 *   objects/<h0>/<h1>/<h>.obj   one file per object, h = hex sha256(key),
 *                               h0/h1 its first two bytes (fan-out)
 *   tmp/<random>.tmp            objects being written (same filesystem)
 *   index.db                    SQLite listing index (WAL)
 *
 * Object file, version 1 (all integers big-endian):
 *   off  len
 *     0    8  magic "GKOBJ001"
 *     8    4  version (1)
 *    12    4  chunk size C (plaintext bytes per chunk, 65536 when written)
 *    16    8  plaintext size S
 *    24    8  mtime (unix seconds, signed)
 *    32   32  salt (random per object)
 *    64    4  key name length N (1..1024)
 *    68    N  key name bytes
 *   then n = max(1, ceil(S / C)) chunks, each ciphertext || 16-byte tag;
 *   every chunk holds C plaintext bytes but the last, which holds the rest
 *   (0 bytes only for the empty object). File size = 68 + N + S + 16 n.
 *
 * Crypto: AES-256-GCM. Object key = HKDF-SHA256(ikm = master key,
 * salt = header salt, info = "gatekeeper store v1 object key" NUL
 * sha256(key name)). Chunk i: nonce = 4 zero bytes || u64 i; AAD = header
 * bytes || u64 i || final flag (1 for the last chunk, else 0). The plaintext
 * size and mtime are only known once the whole object has been written, so
 * in the AAD of non-final chunks those 16 header bytes (offsets 16..31) are
 * zero (the placeholder the writer puts down first); the final chunk binds
 * the complete header. Opening an object always authenticates the final
 * chunk, so no byte is returned before the whole header (and with it the
 * size, hence the chunk count) has been authenticated.
 */
#include "store.h"
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sqlite3.h>

#include "config/config.h"

#define OBJ_MAGIC "GKOBJ001"
#define OBJ_MAGIC_LEN 8
#define OBJ_VERSION 1
#define OBJ_CHUNK (64u * 1024)
#define OBJ_CHUNK_MIN 1024u
#define OBJ_CHUNK_MAX (1024u * 1024)
#define OBJ_SALT_LEN 32
#define OBJ_TAG_LEN 16
#define OBJ_NONCE_LEN 12
#define OBJ_KEY_LEN 32
#define OBJ_NAME_MAX 1024u
#define OBJ_FIXED_LEN 68
#define OFF_VERSION 8
#define OFF_CHUNK 12
#define OFF_SIZE 16
#define OFF_MTIME 24
#define OFF_SALT 32
#define OFF_NAMELEN 64

#define HASH_LEN 32
#define HASH_HEX_LEN (2 * HASH_LEN)
#define STORE_STRIPES 64
#define STORE_PATH_CAP 4096u
#define LIST_BATCH 256
#define DB_BUSY_MS 10000

static const char hkdf_label[] = "gatekeeper store v1 object key";

struct gk_store {
	char *dir;
	char *objdir;
	char *tmpdir;
	char *dbpath;
	uint8_t master[GK_KEY_LEN];
	EVP_KDF *kdf;
	EVP_CIPHER *aead;
	EVP_MD *sha256;
	sqlite3 *db;
	pthread_mutex_t db_lock;	/* one statement sequence at a time */
	/* serialise rename/unlink + index update per key, so the index
	 * always ends up describing the file that won */
	pthread_mutex_t stripes[STORE_STRIPES];
	int nlocks;			/* stripes initialised */
	int db_lock_ok;
	s3_store *s3;			/* [store] type = s3: all goes there */
	/* during store_open only: the index rebuild or reconciliation */
	struct reconcile *rec;
	int (*walk_one)(gk_store *s, const char *path, const char *hex);
};

typedef struct {
	uint32_t chunk;
	uint64_t size;
	int64_t mtime;
	uint32_t name_len;
	size_t hdr_len;
	uint64_t nchunks;
	uint32_t last_len;
	uint64_t file_size;
} obj_hdr;

struct gk_store_reader {
	s3_store_reader *s3;		/* an s3 store's reader */
	int fd;
	EVP_CIPHER_CTX *ctx;
	uint8_t *hdr;		/* header bytes as on disk (AAD) */
	obj_hdr h;
	uint8_t *buf;		/* chunk + tag; plaintext after decrypt */
	uint64_t cached;	/* chunk held in buf, if have_cached */
	size_t cached_len;
	int have_cached;
	char hash_hex[HASH_HEX_LEN + 1];
};

struct gk_store_writer {
	s3_store_writer *s3;		/* an s3 store's writer */
	gk_store *s;
	int fd;
	char *tmp_path;
	uint8_t hash[HASH_LEN];
	uint8_t *hdr;
	size_t hdr_len;
	uint8_t *name;
	size_t name_len;
	EVP_CIPHER_CTX *ctx;
	uint8_t *buf;		/* one chunk + tag */
	size_t buf_len;
	uint64_t idx;		/* index of the chunk being filled */
	uint64_t total;
	uint64_t max;
	int finished;
	int committed;
	int failed;
};

/* ---- small helpers --------------------------------------------------- */

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* Byte-order comparison of two slices (shorter first on a tie). */
static int
slice_cmp(gk_slice a, gk_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n > 0 ? memcmp(a.p, b.p, n) : 0;

	if (c != 0)
		return c;
	return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

static char *
path_join(const char *a, const char *b)
{
	gk_buf p;

	gk_buf_init(&p, STORE_PATH_CAP);
	if (gk_buf_printf(&p, "%s/%s", a, b) != 0) {
		gk_buf_release(&p);
		return NULL;
	}
	return gk_buf_detach(&p, NULL);
}

/* Reads exactly len bytes at off; GK_ERR_INTEGRITY if the file is short. */
static int
pread_full(int fd, uint8_t *p, size_t len, uint64_t off)
{
	ssize_t n;

	while (len > 0) {
		if (off > INT64_MAX)
			return GK_ERR_INTEGRITY;
		n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return GK_ERR_IO;
		if (n == 0)
			return GK_ERR_INTEGRITY;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int
pwrite_full(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	ssize_t n;

	while (len > 0) {
		if (off > INT64_MAX)
			return GK_ERR_TOO_LARGE;
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return GK_ERR_IO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int
sha256(const gk_store *s, gk_slice in, uint8_t out[HASH_LEN])
{
	static const uint8_t empty[1];

	if (EVP_Digest(in.len > 0 ? in.p : empty, in.len, out, NULL,
	    s->sha256, NULL) != 1)
		return GK_ERR_INTERNAL;
	return 0;
}

/* "<objdir>/h0/h1" and "<objdir>/h0/h1/<h>.obj"; either out may be NULL. */
static int
obj_paths(const gk_store *s, const uint8_t hash[HASH_LEN], char **dir,
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

/* ---- crypto ---------------------------------------------------------- */

static int
derive_key(const gk_store *s, const uint8_t *salt, gk_slice name,
    uint8_t out[OBJ_KEY_LEN])
{
	uint8_t info[sizeof(hkdf_label) + HASH_LEN];
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	int r = GK_ERR_INTERNAL;

	/* the label with its NUL, then the name's hash: the name is bound
	 * whatever its length (HKDF info is capped in some providers) */
	memcpy(info, hkdf_label, sizeof(hkdf_label));
	if ((r = sha256(s, name, info + sizeof(hkdf_label))) != 0)
		goto out;
	r = GK_ERR_INTERNAL;
	if ((kctx = EVP_KDF_CTX_new(s->kdf)) == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)s->master, sizeof(s->master));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)salt, OBJ_SALT_LEN);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    info, sizeof(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, OBJ_KEY_LEN, params) != 1)
		goto out;
	r = 0;
out:
	EVP_KDF_CTX_free(kctx);
	return r;
}

/* A cipher context keyed with the object's key (the key is wiped). */
static int
aead_ctx(const gk_store *s, const uint8_t *salt, gk_slice name, int enc,
    EVP_CIPHER_CTX **out)
{
	uint8_t key[OBJ_KEY_LEN];
	EVP_CIPHER_CTX *ctx = NULL;
	int r = GK_ERR_INTERNAL;

	if ((r = derive_key(s, salt, name, key)) != 0)
		goto out;
	r = GK_ERR_NOMEM;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		goto out;
	r = GK_ERR_INTERNAL;
	if (EVP_CipherInit_ex2(ctx, s->aead, key, NULL, enc, NULL) != 1)
		goto out;
	*out = ctx;
	ctx = NULL;	/* transferred */
	r = 0;
out:
	gk_wipe(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

/*
 * Seals (enc) or opens chunk idx in place: buf holds len bytes followed by
 * the 16-byte tag (written when sealing, checked when opening).
 */
static int
chunk_crypt(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *hdr, size_t hdr_len,
    uint64_t idx, int final, uint8_t *buf, size_t len)
{
	static const uint8_t zeros[OFF_SALT - OFF_SIZE];
	uint8_t nonce[OBJ_NONCE_LEN], tail[9], dummy[OBJ_TAG_LEN];
	int outl;

	if (len > OBJ_CHUNK_MAX || hdr_len < OBJ_FIXED_LEN)
		return GK_ERR_INTERNAL;
	memset(nonce, 0, sizeof(nonce));
	put_u64(nonce + 4, idx);
	put_u64(tail, idx);
	tail[8] = final ? 1 : 0;
	if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, enc, NULL) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, hdr, OFF_SIZE) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, final ? hdr + OFF_SIZE : zeros,
	    (int)sizeof(zeros)) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, hdr + OFF_SALT,
	    (int)(hdr_len - OFF_SALT)) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &outl, tail, (int)sizeof(tail)) != 1)
		return GK_ERR_INTERNAL;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, OBJ_TAG_LEN,
	    buf + len) != 1)
		return GK_ERR_INTERNAL;
	if (len > 0 && (EVP_CipherUpdate(ctx, buf, &outl, buf, (int)len) != 1 ||
	    (size_t)outl != len))
		return enc ? GK_ERR_INTERNAL : GK_ERR_INTEGRITY;
	if (EVP_CipherFinal_ex(ctx, dummy, &outl) != 1)
		return enc ? GK_ERR_INTERNAL : GK_ERR_INTEGRITY;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, OBJ_TAG_LEN,
	    buf + len) != 1)
		return GK_ERR_INTERNAL;
	return 0;
}

/* ---- header ---------------------------------------------------------- */

/* Fills the derived fields; GK_ERR_INTEGRITY if the size cannot be real. */
static int
hdr_geometry(obj_hdr *h)
{
	uint64_t rem, tags, body;

	h->hdr_len = OBJ_FIXED_LEN + (size_t)h->name_len;
	rem = h->size % h->chunk;
	if (h->size == 0) {
		h->nchunks = 1;
		h->last_len = 0;
	} else if (rem == 0) {
		h->nchunks = h->size / h->chunk;
		h->last_len = h->chunk;
	} else {
		h->nchunks = h->size / h->chunk + 1;
		h->last_len = (uint32_t)rem;
	}
	if (__builtin_mul_overflow(h->nchunks, (uint64_t)OBJ_TAG_LEN, &tags) ||
	    __builtin_add_overflow(h->size, tags, &body) ||
	    __builtin_add_overflow(body, (uint64_t)h->hdr_len, &h->file_size) ||
	    h->file_size > INT64_MAX)
		return GK_ERR_INTEGRITY;
	return 0;
}

static void
hdr_build(uint8_t *b, uint32_t chunk, uint64_t size, int64_t mtime,
    const uint8_t *salt, gk_slice name)
{
	memcpy(b, OBJ_MAGIC, OBJ_MAGIC_LEN);
	put_u32(b + OFF_VERSION, OBJ_VERSION);
	put_u32(b + OFF_CHUNK, chunk);
	put_u64(b + OFF_SIZE, size);
	put_u64(b + OFF_MTIME, (uint64_t)mtime);
	memcpy(b + OFF_SALT, salt, OBJ_SALT_LEN);
	put_u32(b + OFF_NAMELEN, (uint32_t)name.len);
	memcpy(b + OBJ_FIXED_LEN, name.p, name.len);
}

/*
 * Reads and parses the (not yet authenticated) header of an open object
 * file and checks the file size against it. *hdr_out gets the raw bytes.
 */
static int
hdr_read(int fd, obj_hdr *h, uint8_t **hdr_out)
{
	uint8_t fixed[OBJ_FIXED_LEN], *hdr = NULL;
	struct stat st;
	int r = GK_ERR_INTERNAL;

	if (fstat(fd, &st) != 0) {
		r = GK_ERR_IO;
		goto out;
	}
	r = GK_ERR_INTEGRITY;
	if (!S_ISREG(st.st_mode))
		goto out;
	if ((r = pread_full(fd, fixed, sizeof(fixed), 0)) != 0)
		goto out;
	r = GK_ERR_INTEGRITY;
	memset(h, 0, sizeof(*h));
	h->chunk = get_u32(fixed + OFF_CHUNK);
	h->size = get_u64(fixed + OFF_SIZE);
	h->mtime = (int64_t)get_u64(fixed + OFF_MTIME);
	h->name_len = get_u32(fixed + OFF_NAMELEN);
	if (memcmp(fixed, OBJ_MAGIC, OBJ_MAGIC_LEN) != 0 ||
	    get_u32(fixed + OFF_VERSION) != OBJ_VERSION ||
	    h->chunk < OBJ_CHUNK_MIN || h->chunk > OBJ_CHUNK_MAX ||
	    h->name_len == 0 || h->name_len > OBJ_NAME_MAX)
		goto out;
	if ((r = hdr_geometry(h)) != 0)
		goto out;
	r = GK_ERR_INTEGRITY;
	if ((uint64_t)st.st_size != h->file_size)
		goto out;
	r = GK_ERR_NOMEM;
	if ((hdr = malloc(h->hdr_len)) == NULL)
		goto out;
	memcpy(hdr, fixed, sizeof(fixed));
	if ((r = pread_full(fd, hdr + OBJ_FIXED_LEN, h->name_len,
	    OBJ_FIXED_LEN)) != 0)
		goto out;
	*hdr_out = hdr;
	hdr = NULL;	/* transferred */
	r = 0;
out:
	free(hdr);
	return r;
}

/* ---- reading --------------------------------------------------------- */

void
store_reader_free(gk_store_reader *r)
{
	if (r != NULL && r->s3 != NULL) {
		s3store_reader_free(r->s3);
		free(r);
		return;
	}
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	EVP_CIPHER_CTX_free(r->ctx);
	free(r->hdr);
	if (r->buf != NULL) {
		gk_wipe(r->buf, (size_t)r->h.chunk + OBJ_TAG_LEN);
		free(r->buf);
	}
	free(r);
}

/* Authenticates chunk idx into rd->buf (no-op if it is already there). */
static int
reader_load(gk_store_reader *rd, uint64_t idx)
{
	uint64_t off;
	size_t len;
	int final, r = GK_ERR_INTERNAL;

	if (rd->have_cached && rd->cached == idx)
		return 0;
	rd->have_cached = 0;
	if (idx >= rd->h.nchunks)
		return GK_ERR_INTERNAL;
	final = idx == rd->h.nchunks - 1;
	len = final ? rd->h.last_len : rd->h.chunk;
	/* idx < nchunks: the offset is below the checked file size */
	off = (uint64_t)rd->h.hdr_len + idx * ((uint64_t)rd->h.chunk +
	    OBJ_TAG_LEN);
	if ((r = pread_full(rd->fd, rd->buf, len + OBJ_TAG_LEN, off)) != 0)
		goto out;
	if ((r = chunk_crypt(rd->ctx, 0, rd->hdr, rd->h.hdr_len, idx, final,
	    rd->buf, len)) != 0)
		goto out;
	rd->cached = idx;
	rd->cached_len = len;
	rd->have_cached = 1;
	r = 0;
out:
	if (r == GK_ERR_INTEGRITY)
		gk_warn("object %s chunk %llu failed authentication",
		    rd->hash_hex, (unsigned long long)idx);
	else if (r != 0)
		gk_error("object %s chunk %llu: %s", rd->hash_hex,
		    (unsigned long long)idx, gk_err_str(r));
	return r;
}

/*
 * Sets up a reader on an open object file (fd is taken over, even on
 * error). expect: the key the caller asked for, or an empty slice to take
 * whatever name the header holds (index rebuild). Authenticates the header
 * by opening the final chunk.
 */
static int
reader_setup(const gk_store *s, int fd, gk_slice expect,
    const uint8_t hash[HASH_LEN], gk_store_reader **out)
{
	gk_store_reader *rd = NULL;
	gk_slice name;
	int r = GK_ERR_INTERNAL;

	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		close(fd);
		r = GK_ERR_NOMEM;
		goto out;
	}
	rd->fd = fd;
	gk_hex_encode(hash, HASH_LEN, rd->hash_hex);
	if ((r = hdr_read(fd, &rd->h, &rd->hdr)) != 0) {
		if (r == GK_ERR_INTEGRITY)
			gk_warn("object %s: bad header or size", rd->hash_hex);
		goto out;
	}
	name = gk_slice_of(rd->hdr + OBJ_FIXED_LEN, rd->h.name_len);
	r = GK_ERR_INTEGRITY;
	if (expect.len > 0 && !gk_slice_eq(name, expect)) {
		gk_warn("object %s holds another key's data", rd->hash_hex);
		goto out;
	}
	r = GK_ERR_NOMEM;
	if ((rd->buf = malloc((size_t)rd->h.chunk + OBJ_TAG_LEN)) == NULL)
		goto out;
	if ((r = aead_ctx(s, rd->hdr + OFF_SALT, name, 0, &rd->ctx)) != 0)
		goto out;
	if ((r = reader_load(rd, rd->h.nchunks - 1)) != 0)
		goto out;
	*out = rd;
	rd = NULL;	/* transferred */
	r = 0;
out:
	store_reader_free(rd);
	return r;
}

int
store_get_open(gk_store *s, gk_slice key, gk_store_reader **out,
    uint64_t *size, int64_t *mtime)
{
	uint8_t hash[HASH_LEN];
	gk_store_reader *rd = NULL;
	char *path = NULL;
	int fd, r = GK_ERR_INTERNAL;

	*out = NULL;
	if (s->s3 != NULL) {
		s3_store_reader *s3r;

		if ((r = s3store_get_open(s->s3, key, &s3r, size, mtime)) != 0)
			return r;
		if ((rd = calloc(1, sizeof(*rd))) == NULL) {
			s3store_reader_free(s3r);
			return GK_ERR_NOMEM;
		}
		rd->s3 = s3r;
		*out = rd;
		return 0;
	}
	if (key.len == 0 || key.len > OBJ_NAME_MAX) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = sha256(s, key, hash)) != 0 ||
	    (r = obj_paths(s, hash, NULL, &path)) != 0)
		goto out;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = (errno == ENOENT || errno == ENOTDIR) ? GK_ERR_NOT_FOUND :
		    GK_ERR_IO;
		if (r == GK_ERR_IO)
			gk_error("open object: %s", strerror(errno));
		goto out;
	}
	if ((r = reader_setup(s, fd, key, hash, &rd)) != 0)
		goto out;
	if (size != NULL)
		*size = rd->h.size;
	if (mtime != NULL)
		*mtime = rd->h.mtime;
	*out = rd;
	rd = NULL;	/* transferred */
	r = 0;
out:
	store_reader_free(rd);
	free(path);
	return r;
}

int
store_reader_verify(gk_store_reader *rd, uint64_t off, uint64_t len)
{
	uint64_t i, last;
	int r;

	if (rd->s3 != NULL)
		return s3store_reader_verify(rd->s3, off, len);
	if (off > rd->h.size)
		return GK_ERR_RANGE;
	if (len > rd->h.size - off)
		len = rd->h.size - off;
	/* past the window each chunk is authenticated as it is read:
	 * verifying it all first decrypted every chunk twice (issue 12) */
	if (len > STORE_VERIFY_AHEAD)
		len = STORE_VERIFY_AHEAD;
	if (len == 0)
		return 0;
	last = (off + len - 1) / rd->h.chunk;
	for (i = off / rd->h.chunk; i <= last; i++) {
		if ((r = reader_load(rd, i)) != 0)
			return r;
	}
	return 0;
}

int
store_reader_read(gk_store_reader *rd, uint64_t off, uint8_t *buf,
    size_t max, size_t *got)
{
	size_t n = 0, in, take;
	int r;

	if (rd->s3 != NULL)
		return s3store_reader_read(rd->s3, off, buf, max, got);
	*got = 0;
	while (n < max && off < rd->h.size) {
		if ((r = reader_load(rd, off / rd->h.chunk)) != 0)
			return r;
		in = (size_t)(off % rd->h.chunk);
		if (in >= rd->cached_len)
			return GK_ERR_INTERNAL;
		take = rd->cached_len - in;
		if (take > max - n)
			take = max - n;
		memcpy(buf + n, rd->buf + in, take);
		n += take;
		off += take;
	}
	*got = n;
	return 0;
}

/* ---- index ----------------------------------------------------------- */

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

/* Binds a slice as a BLOB (never NULL, even when empty). */
static int
db_bind_blob(sqlite3_stmt *st, int i, gk_slice v)
{
	static const uint8_t empty[1];

	if (v.len > INT32_MAX)
		return GK_ERR_TOO_LARGE;
	return sqlite3_bind_blob(st, i, v.len > 0 ? v.p : empty, (int)v.len,
	    SQLITE_TRANSIENT) == SQLITE_OK ? 0 : GK_ERR_INTERNAL;
}

/* Caller holds db_lock (or is the only user, at open). */
static int
db_put_locked(gk_store *s, gk_slice key, uint64_t size, int64_t mtime)
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

static int
db_put(gk_store *s, gk_slice key, uint64_t size, int64_t mtime)
{
	int r;

	pthread_mutex_lock(&s->db_lock);
	r = db_put_locked(s, key, size, mtime);
	pthread_mutex_unlock(&s->db_lock);
	return r;
}

static int
db_del(gk_store *s, gk_slice key)
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

/*
 * Up to limit rows with key > lower (or >= if inclusive) and key < upper
 * (if has_upper), size > 0, in key order. Callbacks run outside the lock,
 * so rows are copied out.
 */
static int
db_list_batch(gk_store *s, gk_slice lower, int inclusive, gk_slice upper,
    int has_upper, unsigned limit, list_row **rows_out, size_t *n_out)
{
	static const char *const sql[2][2] = {
		{ "SELECT key, size, mtime FROM objects WHERE key > ?1 "
		  "AND size > 0 ORDER BY key LIMIT ?3",
		  "SELECT key, size, mtime FROM objects WHERE key > ?1 "
		  "AND key < ?2 AND size > 0 ORDER BY key LIMIT ?3" },
		{ "SELECT key, size, mtime FROM objects WHERE key >= ?1 "
		  "AND size > 0 ORDER BY key LIMIT ?3",
		  "SELECT key, size, mtime FROM objects WHERE key >= ?1 "
		  "AND key < ?2 AND size > 0 ORDER BY key LIMIT ?3" },
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
	if (sqlite3_bind_int64(st, 3, limit) != SQLITE_OK)
		goto out;
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		p = sqlite3_column_blob(st, 0);
		len = sqlite3_column_bytes(st, 0);
		if (sqlite3_column_int64(st, 1) <= 0 || len <= 0 || p == NULL)
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
store_list(gk_store *s, gk_slice prefix, gk_slice start_after, unsigned max,
    gk_store_list_fn fn, void *arg)
{
	uint8_t *upper = NULL, *lower = NULL;
	size_t upper_len = prefix.len, n = 0, i;
	list_row *rows = NULL;
	unsigned left = max, limit;
	gk_slice lo;
	int inclusive, has_upper, stop = 0, r = GK_ERR_INTERNAL;

	if (s->s3 != NULL)
		return s3store_list(s->s3, prefix, start_after, max, fn, arg);
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
		    gk_slice_of(upper, upper_len), has_upper, limit, &rows,
		    &n)) != 0)
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

/* Adds one object file to the index being rebuilt; skips bad files. */
static int
rebuild_one(gk_store *s, const char *path, const char *hex)
{
	uint8_t hash[HASH_LEN], want[HASH_LEN];
	gk_store_reader *rd = NULL;
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
	if ((r = reader_setup(s, fd, GK_SLICE_NULL, want, &rd)) != 0) {
		if (r == GK_ERR_NOMEM)
			goto out;
		gk_warn("index rebuild: skipping %s: %s", path, gk_err_str(r));
		r = 0;
		goto out;
	}
	name = gk_slice_of(rd->hdr + OBJ_FIXED_LEN, rd->h.name_len);
	if ((r = sha256(s, name, hash)) != 0)
		goto out;
	if (memcmp(hash, want, HASH_LEN) != 0) {
		gk_warn("index rebuild: skipping %s: name does not match",
		    path);
		r = 0;
		goto out;
	}
	r = db_put_locked(s, name, rd->h.size, rd->h.mtime);
out:
	store_reader_free(rd);
	return r;
}

/* Calls fn for each entry of dir whose name is want_len hex digits
 * followed by suffix. */
static int
scan_dir(gk_store *s, const char *dir, size_t want_len, const char *suffix,
    int (*fn)(gk_store *s, const char *path, const char *hex))
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
		if (nlen != want_len + slen || !is_hex(de->d_name, want_len) ||
		    strcmp(de->d_name + want_len, suffix) != 0)
			continue;
		r = GK_ERR_NOMEM;
		if ((path = path_join(dir, de->d_name)) == NULL)
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

/* Every object file, through s->walk_one (store_open only). */
static int
walk_leaf(gk_store *s, const char *path, const char *hex)
{
	return scan_dir(s, path, HASH_HEX_LEN, ".obj", s->walk_one);
}

static int
walk_mid(gk_store *s, const char *path, const char *hex)
{
	return scan_dir(s, path, 2, "", walk_leaf);
}

static int
walk_objects(gk_store *s, int (*fn)(gk_store *s, const char *path,
    const char *hex))
{
	int r;

	s->walk_one = fn;
	r = scan_dir(s, s->objdir, 2, "", walk_mid);
	s->walk_one = NULL;
	return r;
}

/* Creates the table and fills it from the object headers, atomically. */
static int
db_rebuild(gk_store *s)
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
reconcile_one(gk_store *s, const char *path, const char *hex)
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
db_reconcile(gk_store *s)
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
		if ((r = sha256(s, gk_slice_of(row->key, row->len),
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

static int
db_open(gk_store *s)
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
	/* no table: a new store, a deleted index.db or a crashed rebuild */
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

/* ---- store ----------------------------------------------------------- */

/*
 * Removes the temp files a crash left behind: every *.tmp no live writer
 * holds. A writer keeps an exclusive flock(2) on its temp file until it
 * is renamed or removed, and the kernel drops it when the process dies,
 * so a file we can lock belongs to no one (another process sharing the
 * store keeps its own).
 */
static void
tmp_cleanup(const gk_store *s)
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

int
store_open(const struct gk_config *cfg, gk_store **out)
{
	gk_store *s = NULL;
	int i, r = GK_ERR_INTERNAL;

	if (cfg != NULL && cfg->store_type != NULL &&
	    strcmp(cfg->store_type, "s3") == 0) {
		*out = NULL;
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return GK_ERR_NOMEM;
		if ((r = s3store_open(cfg, &s->s3)) != 0) {
			free(s);
			return r;
		}
		*out = s;
		return 0;
	}
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
	    (s->objdir = path_join(s->dir, "objects")) == NULL ||
	    (s->tmpdir = path_join(s->dir, "tmp")) == NULL ||
	    (s->dbpath = path_join(s->dir, "index.db")) == NULL)
		goto out;
	r = GK_ERR_INTERNAL;
	if ((s->kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
	    (s->aead = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL ||
	    (s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
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
	tmp_cleanup(s);
	if ((r = db_open(s)) != 0)
		goto out;
	*out = s;
	s = NULL;	/* transferred */
	r = 0;
out:
	store_free(s);
	return r;
}

void
store_free(gk_store *s)
{
	int i;

	if (s != NULL && s->s3 != NULL) {
		s3store_free(s->s3);
		free(s);
		return;
	}
	if (s == NULL)
		return;
	if (s->db != NULL)
		sqlite3_close_v2(s->db);
	EVP_KDF_free(s->kdf);
	EVP_CIPHER_free(s->aead);
	EVP_MD_free(s->sha256);
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

/* ---- writing --------------------------------------------------------- */

int
store_put_begin(gk_store *s, gk_slice key, uint64_t max_bytes,
    gk_store_writer **out)
{
	gk_store_writer *w = NULL;
	uint8_t salt[OBJ_SALT_LEN], rnd[16];
	char hex[2 * sizeof(rnd) + 1];
	gk_buf path;
	int r = GK_ERR_INTERNAL;

	if (s->s3 != NULL) {
		s3_store_writer *s3w;

		*out = NULL;
		if ((r = s3store_put_begin(s->s3, key, max_bytes, &s3w)) != 0)
			return r;
		if ((w = calloc(1, sizeof(*w))) == NULL) {
			s3store_writer_free(s3w);
			return GK_ERR_NOMEM;
		}
		w->s3 = s3w;
		w->fd = -1;
		*out = w;
		return 0;
	}
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
	    (w->buf = malloc((size_t)OBJ_CHUNK + OBJ_TAG_LEN)) == NULL)
		goto out;
	memcpy(w->name, key.p, key.len);
	if ((r = sha256(s, key, w->hash)) != 0 ||
	    (r = gk_random(salt, sizeof(salt))) != 0 ||
	    (r = gk_random(rnd, sizeof(rnd))) != 0)
		goto out;
	/* placeholder: size and mtime are filled in by finish */
	hdr_build(w->hdr, OBJ_CHUNK, 0, 0, salt, key);
	if ((r = aead_ctx(s, salt, key, 1, &w->ctx)) != 0)
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
	if ((r = pwrite_full(w->fd, w->hdr, w->hdr_len, 0)) != 0)
		goto out;
	*out = w;
	w = NULL;	/* transferred */
	r = 0;
out:
	gk_wipe(salt, sizeof(salt));
	gk_buf_release(&path);
	store_writer_free(w);
	return r;
}

/* Encrypts the buffered chunk and writes it at its place. */
static int
writer_seal(gk_store_writer *w, int final)
{
	uint64_t off;
	int r;

	if (__builtin_mul_overflow(w->idx, (uint64_t)OBJ_CHUNK + OBJ_TAG_LEN,
	    &off) || __builtin_add_overflow(off, (uint64_t)w->hdr_len, &off))
		return GK_ERR_TOO_LARGE;
	if ((r = chunk_crypt(w->ctx, 1, w->hdr, w->hdr_len, w->idx, final,
	    w->buf, w->buf_len)) != 0)
		return r;
	if ((r = pwrite_full(w->fd, w->buf, w->buf_len + OBJ_TAG_LEN,
	    off)) != 0) {
		gk_error("store: write temp file: %s", strerror(errno));
		return r;
	}
	return 0;
}

int
store_writer_write(gk_store_writer *w, const uint8_t *p, size_t len)
{
	uint64_t total;
	size_t n;
	int r = GK_ERR_INTERNAL;

	if (w->s3 != NULL)
		return s3store_writer_write(w->s3, p, len);
	if (w->failed || w->finished)
		return GK_ERR_INVALID;
	if (__builtin_add_overflow(w->total, (uint64_t)len, &total) ||
	    total > w->max) {
		r = GK_ERR_TOO_LARGE;
		goto out;
	}
	while (len > 0) {
		/* a full chunk is sealed only once more data shows it is
		 * not the last one */
		if (w->buf_len == OBJ_CHUNK) {
			if ((r = writer_seal(w, 0)) != 0)
				goto out;
			w->buf_len = 0;
			w->idx++;
		}
		n = OBJ_CHUNK - w->buf_len;
		if (n > len)
			n = len;
		memcpy(w->buf + w->buf_len, p, n);
		w->buf_len += n;
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

int
store_writer_finish(gk_store_writer *w)
{
	int r = GK_ERR_INTERNAL;

	if (w->s3 != NULL)
		return s3store_writer_finish(w->s3);
	if (w->failed || w->finished || w->fd < 0)
		return GK_ERR_INVALID;
	put_u64(w->hdr + OFF_SIZE, w->total);
	put_u64(w->hdr + OFF_MTIME, (uint64_t)gk_now_s());
	if ((r = writer_seal(w, 1)) != 0)
		goto out;
	if ((r = pwrite_full(w->fd, w->hdr, w->hdr_len, 0)) != 0)
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
	gk_wipe(w->buf, (size_t)OBJ_CHUNK + OBJ_TAG_LEN);
	w->finished = 1;
	r = 0;
out:
	if (r != 0)
		w->failed = 1;
	return r;
}

/* Creates <objdir>/h0/h1 if needed, fsyncing the parents it changed. */
static int
ensure_fanout(const gk_store *s, const char *dir)
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

int
store_writer_commit(gk_store_writer *w)
{
	pthread_mutex_t *lock;
	char *dir = NULL, *file = NULL;
	int r = GK_ERR_INTERNAL;

	if (w->s3 != NULL)
		return s3store_writer_commit(w->s3);
	if (w->committed || w->failed)
		return GK_ERR_INVALID;
	if (!w->finished && (r = store_writer_finish(w)) != 0)
		return r;
	if ((r = obj_paths(w->s, w->hash, &dir, &file)) != 0)
		goto out;
	lock = &w->s->stripes[w->hash[0] % STORE_STRIPES];
	pthread_mutex_lock(lock);
	r = GK_ERR_IO;
	if (ensure_fanout(w->s, dir) != 0) {
		gk_error("store: cannot create %s: %s", dir, strerror(errno));
	} else if (rename(w->tmp_path, file) != 0) {
		gk_error("store: rename into place: %s", strerror(errno));
	} else {
		w->committed = 1;
		if (gk_fsync_dir(dir) != 0)
			gk_error("store: fsync %s: %s", dir, strerror(errno));
		else
			r = db_put(w->s, gk_slice_of(w->name, w->name_len),
			    w->total, (int64_t)get_u64(w->hdr + OFF_MTIME));
	}
	pthread_mutex_unlock(lock);
out:
	if (r != 0)
		w->failed = 1;
	free(dir);
	free(file);
	return r;
}

uint64_t
store_writer_size(const gk_store_writer *w)
{
	if (w->s3 != NULL)
		return s3store_writer_size(w->s3);
	return w != NULL ? w->total : 0;
}

void
store_writer_free(gk_store_writer *w)
{
	if (w != NULL && w->s3 != NULL) {
		s3store_writer_free(w->s3);
		free(w);
		return;
	}
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (!w->committed && w->tmp_path != NULL && unlink(w->tmp_path) != 0)
		gk_warn("store: cannot remove temp file: %s", strerror(errno));
	EVP_CIPHER_CTX_free(w->ctx);
	if (w->buf != NULL) {
		gk_wipe(w->buf, (size_t)OBJ_CHUNK + OBJ_TAG_LEN);
		free(w->buf);
	}
	free(w->tmp_path);
	free(w->hdr);
	free(w->name);
	free(w);
}

/* ---- deleting -------------------------------------------------------- */

int
store_retain(gk_store *s, gk_slice key, int64_t until)
{
	if (s->s3 == NULL)
		return GK_ERR_INVALID;
	return s3store_retain(s->s3, key, until);
}

int
store_delete(gk_store *s, gk_slice key)
{
	uint8_t hash[HASH_LEN];
	pthread_mutex_t *lock;
	char *dir = NULL, *file = NULL;
	int r = GK_ERR_INTERNAL, e;

	if (s->s3 != NULL)
		return s3store_delete(s->s3, key);
	if (key.len == 0 || key.len > OBJ_NAME_MAX)
		return GK_ERR_NOT_FOUND;
	if ((r = sha256(s, key, hash)) != 0 ||
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
		int r2 = db_del(s, key);

		if (r == 0)
			r = r2;
	}
	pthread_mutex_unlock(lock);
out:
	free(dir);
	free(file);
	return r;
}

/* ---- other store types, redirect mode ---------------------------------- */

int
store_presigns(const gk_store *s)
{
	return s->s3 != NULL && s3store_presigns(s->s3);
}

int
store_presign_get(gk_store *s, gk_slice key, int64_t ttl,
    gk_slice disposition, gk_buf *url)
{
	if (!store_presigns(s))
		return GK_ERR_INVALID;
	return s3store_presign_get(s->s3, key, ttl, disposition, url);
}

int
store_presign_post(gk_store *s, gk_slice key, uint64_t max_bytes,
    int64_t ttl, gk_buf *form)
{
	if (!store_presigns(s))
		return GK_ERR_INVALID;
	return s3store_presign_post(s->s3, key, max_bytes, ttl, form);
}

const char *
store_bucket(const gk_store *s)
{
	return s->s3 != NULL ? s3store_bucket(s->s3) : "fs";
}
