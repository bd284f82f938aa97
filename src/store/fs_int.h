/*
 * fs_int.h - private to the fs store: its structs and what fs.c (objects),
 * fs_format.c (the encrypted chunk format) and fs_index.c (the listing
 * index) share. The format itself is described in fs_format.c.
 */
#ifndef GK_FS_INT_H
#define GK_FS_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "store_int.h"

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

typedef struct fs_store fs_store;
typedef struct fs_reader fs_reader;
typedef struct fs_writer fs_writer;
typedef struct fs_pool fs_pool;
typedef struct fs_job fs_job;

/* Decrypt helpers per store (at most; cores - 1), and so also the most
 * parts a read is split into besides the reader's own. */
#define FS_POOL_MAX 3

/* A piece of work for a decrypt helper; owned by whoever submits it. */
struct fs_job {
	fs_job *next;		/* the pool's queue */
	int (*fn)(fs_job *j);	/* the work; its return is the job's */
	int state;		/* the pool's */
	int r;			/* fn's result once done */
	/* a run of whole chunks of a read (fs_format.c) */
	fs_reader *rd;
	EVP_CIPHER_CTX *ctx;
	uint64_t idx;
	size_t k;
	uint8_t *buf;
	int short_read;
};


struct fs_store {
	gk_store base;			/* first: the handle store.c hands out */
	char *dir;
	char *objdir;
	char *tmpdir;
	char *dbpath;
	uint8_t master[GK_KEY_LEN];
	EVP_KDF *kdf;
	EVP_CIPHER *aead;
	fs_pool *pool;			/* decrypt helpers for large reads */
	sqlite3 *db;
	pthread_mutex_t db_lock;	/* one statement sequence at a time */
	/* serialise rename/unlink + index update per key, so the index
	 * always ends up describing the file that won */
	pthread_mutex_t stripes[STORE_STRIPES];
	int nlocks;			/* stripes initialised */
	int db_lock_ok;
	/* during fs_index_open only: the index rebuild or reconciliation */
	struct reconcile *rec;
	int (*walk_one)(fs_store *s, const char *path, const char *hex);
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

struct fs_reader {
	gk_store_reader base;	/* first */
	int fd;
	EVP_CIPHER_CTX *ctx;
	uint8_t *hdr;		/* header bytes as on disk (AAD) */
	obj_hdr h;
	uint8_t *buf;		/* chunk + tag; plaintext after decrypt */
	uint64_t cached;	/* chunk held in buf, if have_cached */
	size_t cached_len;
	int have_cached;
	char hash_hex[HASH_HEX_LEN + 1];
	/* large reads: parts for the store's decrypt helpers, each with a
	 * copy of ctx (made at the first split) */
	fs_pool *pool;
	fs_job job[FS_POOL_MAX];
	EVP_CIPHER_CTX *jctx[FS_POOL_MAX];
};

/*
 * Plaintext chunks per write: the writer stages them as they lie on disk
 * (chunk, tag, chunk, tag...), so a full slot is one pwrite.
 */
#define WRITE_SLOT_CHUNKS 16
#define WRITE_SLOT_PLAIN ((size_t)WRITE_SLOT_CHUNKS * OBJ_CHUNK)
#define WRITE_SLOT_BYTES ((size_t)WRITE_SLOT_CHUNKS * (OBJ_CHUNK + OBJ_TAG_LEN))

struct fs_writer {
	gk_store_writer base;	/* first */
	fs_store *s;
	int fd;
	char *tmp_path;
	uint8_t hash[HASH_LEN];
	uint8_t *hdr;
	size_t hdr_len;
	uint8_t *name;
	size_t name_len;
	EVP_CIPHER_CTX *ctx;
	/*
	 * Two staging slots: the caller fills one while the sealer thread
	 * (started with the second slot, so small objects never start one)
	 * encrypts and writes the other. A slot is handed over only once
	 * more data shows its last chunk is not the object's last.
	 */
	uint8_t *slot[2];
	int cur;		/* the slot being filled */
	size_t fill;		/* plaintext bytes in it */
	uint64_t slot_idx;	/* index of its first chunk */
	pthread_t sealer;
	int sealer_on;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int mu_ok;
	int busy;		/* the other slot is with the sealer */
	int quit;
	uint64_t job_idx;	/* the handed-over slot's first chunk */
	int job_err;		/* the sealer's first failure, sticky */
	uint64_t total;
	uint64_t max;
	int finished;
	int committed;
	int failed;
};

/* fs_format.c */
int fs_is_hex(const char *s, size_t n);
int fs_pwrite_full(int fd, const uint8_t *p, size_t len, uint64_t off);
int fs_sha256(gk_slice in, uint8_t out[HASH_LEN]);
int fs_aead_ctx(const fs_store *s, const uint8_t *salt, gk_slice name, int enc,
    EVP_CIPHER_CTX **out);
/* The same with the tag elsewhere than right after the data. */
int fs_chunk_crypt_tag(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *hdr,
    size_t hdr_len, uint64_t idx, int final, uint8_t *buf, size_t len,
    uint8_t *tag);
int fs_chunk_crypt(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *hdr,
    size_t hdr_len, uint64_t idx, int final, uint8_t *buf, size_t len);
void fs_hdr_build(uint8_t *b, uint32_t chunk, uint64_t size, int64_t mtime,
    const uint8_t *salt, gk_slice name);
void fs_reader_free(fs_reader *r);
int fs_reader_setup(const fs_store *s, int fd, gk_slice expect,
    const uint8_t hash[HASH_LEN], fs_reader **out);
int fs_reader_verify(fs_reader *rd, uint64_t off, uint64_t len);
int fs_reader_read(fs_reader *rd, uint64_t off, uint8_t *buf, size_t max,
    size_t *got);

/* fs_pool.c */
int fs_pool_new(fs_pool **out);
void fs_pool_free(fs_pool *p);
/* Helpers running (starts them at the first call); 0: do it all alone. */
int fs_pool_helpers(fs_pool *p);
/* Queues j (p has helpers); the caller then must fs_pool_wait it. */
void fs_pool_submit(fs_pool *p, fs_job *j);
/* j's result: runs it in the caller if no helper has started it yet, else
 * waits for the helper to finish it. */
int fs_pool_wait(fs_pool *p, fs_job *j);

/* fs_index.c */
int fs_index_put(fs_store *s, gk_slice key, uint64_t size, int64_t mtime);
int fs_index_del(fs_store *s, gk_slice key);
int fs_list(fs_store *s, gk_slice prefix, gk_slice start_after, unsigned max,
    unsigned flags, gk_store_list_fn fn, void *arg);
int fs_index_open(fs_store *s);

/* fs.c */

#endif
