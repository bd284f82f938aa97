/*
 * fs_format.c - the fs store's object file format: encrypted chunks, the
 * header they authenticate, and reading an object back.
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
#include "fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

/* Chunks read by one preadv straight into the caller's buffer. */
#define READ_DIRECT_CHUNKS 16
/* The fewest chunks worth handing to a decrypt helper (fs_pool.c). */
#define READ_PART_CHUNKS 4

static const char hkdf_label[] = "gatekeeper store v1 object key";

int
fs_is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

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

int
fs_pwrite_full(int fd, const uint8_t *p, size_t len, uint64_t off)
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

int
fs_sha256(gk_slice in, uint8_t out[HASH_LEN])
{
	static const uint8_t empty[1];

	if (EVP_Digest(in.len > 0 ? in.p : empty, in.len, out, NULL,
	    gk_sha256(), NULL) != 1)
		return GK_ERR_INTERNAL;
	return 0;
}

static int
derive_key(const fs_store *s, const uint8_t *salt, gk_slice name,
    uint8_t out[OBJ_KEY_LEN])
{
	uint8_t info[sizeof(hkdf_label) + HASH_LEN];
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	int r = GK_ERR_INTERNAL;

	/* the label with its NUL, then the name's hash: the name is bound
	 * whatever its length (HKDF info is capped in some providers) */
	memcpy(info, hkdf_label, sizeof(hkdf_label));
	if ((r = fs_sha256(name, info + sizeof(hkdf_label))) != 0)
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

int
fs_aead_ctx(const fs_store *s, const uint8_t *salt, gk_slice name, int enc,
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

int
fs_chunk_crypt_tag(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *hdr,
    size_t hdr_len, uint64_t idx, int final, uint8_t *buf, size_t len,
    uint8_t *tag)
{
	static const uint8_t zeros[OFF_SALT - OFF_SIZE];
	uint8_t nonce[OBJ_NONCE_LEN], tail[9], dummy[OBJ_TAG_LEN];
	int outl;

	if (len > OBJ_CHUNK_MAX || hdr_len < OBJ_FIXED_LEN)
		return GK_ERR_INTERNAL;
	memset(nonce, 0, sizeof(nonce));
	gk_put_u64be(nonce + 4, idx);
	gk_put_u64be(tail, idx);
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
	    tag) != 1)
		return GK_ERR_INTERNAL;
	if (len > 0 && (EVP_CipherUpdate(ctx, buf, &outl, buf, (int)len) != 1 ||
	    (size_t)outl != len))
		return enc ? GK_ERR_INTERNAL : GK_ERR_INTEGRITY;
	if (EVP_CipherFinal_ex(ctx, dummy, &outl) != 1)
		return enc ? GK_ERR_INTERNAL : GK_ERR_INTEGRITY;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, OBJ_TAG_LEN,
	    tag) != 1)
		return GK_ERR_INTERNAL;
	return 0;
}

int
fs_chunk_crypt(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *hdr, size_t hdr_len,
    uint64_t idx, int final, uint8_t *buf, size_t len)
{
	return fs_chunk_crypt_tag(ctx, enc, hdr, hdr_len, idx, final, buf, len,
	    buf + len);
}

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

void
fs_hdr_build(uint8_t *b, uint32_t chunk, uint64_t size, int64_t mtime,
    const uint8_t *salt, gk_slice name)
{
	memcpy(b, OBJ_MAGIC, OBJ_MAGIC_LEN);
	gk_put_u32be(b + OFF_VERSION, OBJ_VERSION);
	gk_put_u32be(b + OFF_CHUNK, chunk);
	gk_put_u64be(b + OFF_SIZE, size);
	gk_put_u64be(b + OFF_MTIME, (uint64_t)mtime);
	memcpy(b + OFF_SALT, salt, OBJ_SALT_LEN);
	gk_put_u32be(b + OFF_NAMELEN, (uint32_t)name.len);
	memcpy(b + OBJ_FIXED_LEN, name.p, name.len);
}

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
	h->chunk = gk_get_u32be(fixed + OFF_CHUNK);
	h->size = gk_get_u64be(fixed + OFF_SIZE);
	h->mtime = (int64_t)gk_get_u64be(fixed + OFF_MTIME);
	h->name_len = gk_get_u32be(fixed + OFF_NAMELEN);
	if (memcmp(fixed, OBJ_MAGIC, OBJ_MAGIC_LEN) != 0 ||
	    gk_get_u32be(fixed + OFF_VERSION) != OBJ_VERSION ||
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

void
fs_reader_free(fs_reader *r)
{
	int i;

	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	EVP_CIPHER_CTX_free(r->ctx);
	for (i = 0; i < FS_POOL_MAX; i++)
		EVP_CIPHER_CTX_free(r->jctx[i]);
	free(r->hdr);
	if (r->buf != NULL) {
		gk_wipe(r->buf, (size_t)r->h.chunk + OBJ_TAG_LEN);
		free(r->buf);
	}
	free(r);
}

static int
reader_load(fs_reader *rd, uint64_t idx)
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
	if ((r = fs_chunk_crypt(rd->ctx, 0, rd->hdr, rd->h.hdr_len, idx, final,
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

int
fs_reader_setup(const fs_store *s, int fd, gk_slice expect,
    const uint8_t hash[HASH_LEN], fs_reader **out)
{
	fs_reader *rd = NULL;
	gk_slice name;
	int r = GK_ERR_INTERNAL;

	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		close(fd);
		r = GK_ERR_NOMEM;
		goto out;
	}
	rd->fd = fd;
	rd->pool = s->pool;
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
	if ((r = fs_aead_ctx(s, rd->hdr + OFF_SALT, name, 0, &rd->ctx)) != 0)
		goto out;
	if ((r = reader_load(rd, rd->h.nchunks - 1)) != 0)
		goto out;
	*out = rd;
	rd = NULL;	/* transferred */
	r = 0;
out:
	fs_reader_free(rd);
	return r;
}

int
fs_reader_verify(fs_reader *rd, uint64_t off, uint64_t len)
{
	uint64_t i, last;
	int r;

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

/*
 * k whole chunks from chunk idx straight into buf: one preadv of their
 * ciphertexts (into buf, back to back) and tags, then each decrypted and
 * authenticated in place with ctx. The caller checked that they fit.
 * A short read (a truncated file, or a read cut by a signal) sets
 * *short_read and returns 0: the chunk-at-a-time path tells them apart.
 */
static int
read_chunks(fs_reader *rd, EVP_CIPHER_CTX *ctx, uint64_t idx, size_t k,
    uint8_t *buf, int *short_read)
{
	uint8_t tags[READ_DIRECT_CHUNKS][OBJ_TAG_LEN];
	struct iovec iov[2 * READ_DIRECT_CHUNKS];
	size_t len[READ_DIRECT_CHUNKS], total = 0, want = 0, i;
	uint64_t off;
	ssize_t n;
	int r;

	*short_read = 0;
	if (k == 0 || k > READ_DIRECT_CHUNKS || idx + k > rd->h.nchunks)
		return GK_ERR_INTERNAL;
	for (i = 0; i < k; i++) {
		len[i] = idx + i == rd->h.nchunks - 1 ? rd->h.last_len :
		    rd->h.chunk;
		iov[2 * i].iov_base = buf + total;
		iov[2 * i].iov_len = len[i];
		iov[2 * i + 1].iov_base = tags[i];
		iov[2 * i + 1].iov_len = OBJ_TAG_LEN;
		total += len[i];
		want += len[i] + OBJ_TAG_LEN;
	}
	/* idx < nchunks: the offset is below the checked file size */
	off = (uint64_t)rd->h.hdr_len + idx * ((uint64_t)rd->h.chunk +
	    OBJ_TAG_LEN);
	do
		n = preadv(rd->fd, iov, (int)(2 * k), (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != want) {
		*short_read = 1;
		return 0;
	}
	total = 0;
	for (i = 0; i < k; i++) {
		r = fs_chunk_crypt_tag(ctx, 0, rd->hdr, rd->h.hdr_len, idx + i,
		    idx + i == rd->h.nchunks - 1, buf + total, len[i], tags[i]);
		if (r != 0) {
			if (r == GK_ERR_INTEGRITY)
				gk_warn("object %s chunk %llu failed "
				    "authentication", rd->hash_hex,
				    (unsigned long long)(idx + i));
			return r;
		}
		total += len[i];
	}
	return 0;
}

static int
read_job(fs_job *j)
{
	return read_chunks(j->rd, j->ctx, j->idx, j->k, j->buf,
	    &j->short_read);
}

/*
 * Whole chunks from chunk idx straight into buf (room: max bytes), up to
 * READ_DIRECT_CHUNKS of them. With the store's decrypt helpers running, the
 * run is cut into parts: the helpers take the later ones while this thread
 * reads the first, and a part no helper has started by then is done here
 * too. Nothing is returned unless every part authenticated; what was
 * decrypted is wiped before an error returns. *got = 0 when not even one
 * whole chunk fits, or a read came back short.
 *
 * Measured and left out: reading the next block ahead on a helper while
 * the caller sends (it must then be copied into the caller's buffer: more
 * CPU per GiB, and on 2 cores shared with the client that ate the gain);
 * decrypting straight from an mmap of the file (GCM would read ciphertext
 * that someone writing the file could change between the tag check and
 * the decryption, and a truncation would be SIGBUS, not an error).
 */
static int
reader_direct(fs_reader *rd, uint64_t idx, uint8_t *buf, size_t max,
    size_t *got)
{
	size_t total = 0, k = 0, len, per, at[FS_POOL_MAX], i, parts = 0;
	int r, r2, short_read = 0, nhelp;

	*got = 0;
	while (k < READ_DIRECT_CHUNKS && idx + k < rd->h.nchunks) {
		len = idx + k == rd->h.nchunks - 1 ? rd->h.last_len :
		    rd->h.chunk;
		if (len > max - total)
			break;
		total += len;
		k++;
	}
	if (k == 0)
		return 0;
	/* parts of at least READ_PART_CHUNKS chunks, the first one here */
	if (k >= 2 * READ_PART_CHUNKS &&
	    (nhelp = fs_pool_helpers(rd->pool)) > 0) {
		parts = k / READ_PART_CHUNKS - 1;
		if (parts > (size_t)nhelp)
			parts = (size_t)nhelp;
		for (i = 0; i < parts; i++) {
			if (rd->jctx[i] == NULL) {
				if ((rd->jctx[i] = EVP_CIPHER_CTX_new()) ==
				    NULL)
					break;
				if (EVP_CIPHER_CTX_copy(rd->jctx[i], rd->ctx)
				    != 1) {
					EVP_CIPHER_CTX_free(rd->jctx[i]);
					rd->jctx[i] = NULL;
					break;
				}
			}
		}
		parts = i;
	}
	per = k / (parts + 1);
	for (i = 0; i < parts; i++) {
		/* part i + 1: chunks [per * (i + 1), per * (i + 2)), the last
		 * part up to k; whole chunks, so the offset is i * chunk */
		at[i] = per * (i + 1);
		rd->job[i].fn = read_job;
		rd->job[i].rd = rd;
		rd->job[i].ctx = rd->jctx[i];
		rd->job[i].idx = idx + at[i];
		rd->job[i].k = (i + 1 == parts ? k : at[i] + per) - at[i];
		rd->job[i].buf = buf + at[i] * rd->h.chunk;
		rd->job[i].short_read = 0;
		fs_pool_submit(rd->pool, &rd->job[i]);
	}
	r = read_chunks(rd, rd->ctx, idx, parts > 0 ? per : k, buf,
	    &short_read);
	for (i = 0; i < parts; i++) {
		/* every part is waited for: the jobs live in rd */
		r2 = fs_pool_wait(rd->pool, &rd->job[i]);
		if (r == 0)
			r = r2;
		if (rd->job[i].short_read)
			short_read = 1;
	}
	if (r != 0) {
		gk_wipe(buf, total);
		return r;
	}
	if (short_read)
		return 0;
	*got = total;
	return 0;
}

int
fs_reader_read(fs_reader *rd, uint64_t off, uint8_t *buf,
    size_t max, size_t *got)
{
	size_t n = 0, in, take, d;
	int r;

	*got = 0;
	while (n < max && off < rd->h.size) {
		if (off % rd->h.chunk == 0 && !(rd->have_cached &&
		    rd->cached == off / rd->h.chunk)) {
			if ((r = reader_direct(rd, off / rd->h.chunk, buf + n,
			    max - n, &d)) != 0)
				return r;
			if (d > 0) {
				n += d;
				off += d;
				continue;
			}
		}
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
