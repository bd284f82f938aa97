/*
 * store.h - the store folder's whole interface: where object bytes live.
 *
 * "fs" (fs.c, the embedded default) keeps each object encrypted at rest
 * with AES-256-GCM in fixed-size chunks under the data directory:
 *   - a per-object key derived (HKDF-SHA256) from the master key, a random
 *     per-object salt and the object key name;
 *   - each chunk's nonce holds its index and its AAD binds the file header
 *     and a final-chunk flag, so a flipped, dropped, reordered or truncated
 *     chunk fails authentication (GK_ERR_INTEGRITY) instead of returning
 *     altered bytes (the size and mtime header fields, known only at the
 *     end of a write, are bound by the final chunk, which store_get_open
 *     always authenticates; fs.c documents the exact format);
 *   - writes go to a temp file, are fsynced, and become visible only by an
 *     atomic rename in store_writer_commit, so a crash never shows a half
 *     object.
 * Thread safe: any number of readers and writers at once.
 *
 * "s3" (s3.c, [store] type = s3) keeps objects in the customer's bucket
 * (server-side encryption AES256). In redirect mode (store_presigns() is
 * 1) the gate hands the browser presigned S3 URLs and POST forms; in proxy
 * mode the functions below stream to and from the bucket (reads: ranged
 * GETs with bounded buffering; writes: a multipart upload completed only
 * by store_writer_commit, aborted by store_writer_free). Failures talking
 * to the bucket are GK_ERR_UNAVAILABLE or GK_ERR_DENIED with the reason in
 * store_error(); a missing key is GK_ERR_NOT_FOUND.
 */
#ifndef GK_STORE_H
#define GK_STORE_H

#include <stdint.h>

#include "util/util.h"

struct s3_client_opts;

/* What the store takes from the config ([store], [s3]; config/ fills it).
 * Borrowed for the call to store_open. */
typedef struct store_settings {
	const char *store_type;		/* "fs" (default) or "s3" */
	/* fs */
	const char *store_dir;
	gk_secret master_key;		/* exactly 32 bytes */
	/* s3 */
	const struct s3_client_opts *s3_client;	/* the bucket's client */
	const char *s3_bucket;
	const char *s3_mode;		/* "redirect" or "proxy" */
	int64_t s3_presign_ttl;		/* seconds */
	int s3_check_exists;		/* HEAD before a redirect */
} store_settings;

typedef struct gk_store gk_store;
typedef struct gk_store_reader gk_store_reader;
typedef struct gk_store_writer gk_store_writer;

/*
 * Opens the store the settings name. fs: s->store_dir (created 0700, with
 * objects/, tmp/ and index.db inside) and s->master_key (exactly 32
 * bytes, else GK_ERR_CONFIG; copied, so s may be freed afterwards).
 * Rebuilds index.db from the object headers if it is missing. Removes temp
 * files older than a day (left by a crash).
 */
int store_open(const store_settings *s, gk_store **out) GK_WUR;
void store_free(gk_store *s);

/* ---- reading --------------------------------------------------------- */

/*
 * Opens an object for reading. *size is the plaintext size, *mtime the
 * unix seconds it was written (size and mtime may be NULL). GK_ERR_NOT_FOUND,
 * GK_ERR_INTEGRITY (the header or size does not authenticate, or the file
 * holds another key's object), GK_ERR_IO. The reader sees the version that
 * was current when it was opened, even if it is overwritten or deleted
 * later. A reader is used by one thread at a time; memory is O(chunk).
 */
int store_get_open(gk_store *s, gk_slice key, gk_store_reader **out,
    uint64_t *size, int64_t *mtime) GK_WUR;
/*
 * Authenticates the chunks overlapping the first STORE_VERIFY_AHEAD bytes
 * of [off, off+len) without returning bytes: lets the caller answer 5xx
 * before sending a status line (the s3 store opens the transfer of the
 * whole range). The rest is authenticated by store_reader_read as it is
 * read, so each chunk is decrypted once past the window. len is clipped at
 * the end of the object (UINT64_MAX: to the end); off > size is
 * GK_ERR_RANGE. GK_ERR_INTEGRITY if any chunk fails.
 */
#define STORE_VERIFY_AHEAD (4u * 1024 * 1024)
int store_reader_verify(gk_store_reader *r, uint64_t off, uint64_t len) GK_WUR;
/*
 * Reads up to max plaintext bytes at off into buf (may cross chunks); *got
 * is 0 only at or past the end of the object (or when max is 0). Every
 * byte returned has been authenticated; on error (GK_ERR_INTEGRITY,
 * GK_ERR_IO) *got is 0 and buf must be ignored.
 */
int store_reader_read(gk_store_reader *r, uint64_t off, uint8_t *buf,
    size_t max, size_t *got) GK_WUR;
/*
 * A remote store's reader may have to wait for the next bytes: 1 when
 * the next sequential read returns without waiting on the network (always
 * for fs); store_reader_wait waits up to ms for that (0, GK_ERR_AGAIN,
 * or the failure the read would report, which it then does).
 */
int store_reader_ready(gk_store_reader *r);
int store_reader_wait(gk_store_reader *r, unsigned ms) GK_WUR;
void store_reader_free(gk_store_reader *r);

/* ---- writing --------------------------------------------------------- */

/*
 * Starts a new object (temp file). Writes beyond max_bytes fail. key must
 * be 1..1024 bytes (GK_ERR_INVALID). A writer is used by one thread.
 */
int store_put_begin(gk_store *s, gk_slice key, uint64_t max_bytes,
    gk_store_writer **out) GK_WUR;
/*
 * Appends bytes; GK_ERR_TOO_LARGE past max_bytes. Memory stays bounded (one
 * chunk). After any error the writer is dead: finish/commit fail, so a short
 * object can never be committed.
 */
int store_writer_write(gk_store_writer *w, const uint8_t *p, size_t len) GK_WUR;
/*
 * A remote store's writer may have to wait for the bucket to take a part:
 * store_writer_ready is 1 when a write of a body's piece will not (always
 * for fs); store_writer_wait waits up to ms for that (0 or GK_ERR_AGAIN;
 * a failure is reported by the next write or finish).
 */
int store_writer_ready(gk_store_writer *w);
int store_writer_wait(gk_store_writer *w, unsigned ms) GK_WUR;
/* Seals the last chunk and fsyncs the temp file; not yet visible. */
int store_writer_finish(gk_store_writer *w) GK_WUR;
/*
 * Atomically replaces/creates the object (rename + dir fsync), then updates
 * the listing index. Calls store_writer_finish first if needed.
 */
int store_writer_commit(gk_store_writer *w) GK_WUR;
/* Bytes written so far. */
uint64_t store_writer_size(const gk_store_writer *w);
/* Frees; removes the temp file unless committed. NULL ok. */
void store_writer_free(gk_store_writer *w);

/* ---- listing --------------------------------------------------------- */

/* Called per object; return non-zero to stop: a negative GK_ERR_* is
 * returned by store_list, a positive value stops with 0. */
typedef int (*gk_store_list_fn)(void *arg, gk_slice key, uint64_t size,
    int64_t mtime);

/*
 * Lists objects whose key starts with prefix and sorts after start_after
 * (empty: from the start), in byte order, at most max (0: no limit).
 * Empty (0-byte) objects are left out (the browser protocols never list
 * them). Served from index.db; fn runs with no store lock held (it may
 * call into the store).
 */
int store_list(gk_store *s, gk_slice prefix, gk_slice start_after,
    unsigned max, gk_store_list_fn fn, void *arg) GK_WUR;
/* As store_list; with STORE_LIST_EMPTY in flags empty objects are listed
 * too (as S3 lists them). */
#define STORE_LIST_EMPTY 1u
int store_list_flags(gk_store *s, gk_slice prefix, gk_slice start_after,
    unsigned max, unsigned flags, gk_store_list_fn fn, void *arg) GK_WUR;

/* Removes an object. GK_ERR_NOT_FOUND if absent (fs; S3 does not say). */
int store_delete(gk_store *s, gk_slice key) GK_WUR;
/*
 * s3 only: puts S3 Object Lock retention on an object, COMPLIANCE mode,
 * until the unix time given (PutObjectRetention; the bucket needs Object
 * Lock, see gatekeeper provision). GK_ERR_INVALID on the fs store;
 * otherwise as store_delete.
 */
int store_retain(gk_store *s, gk_slice key, int64_t until) GK_WUR;

/* ---- multipart uploads of the store itself (s3 in proxy mode) ---------- */

/*
 * 1 if the store_mpu_* calls work: the s3 store in proxy mode maps a
 * client's multipart upload onto one of the bucket's own, so the parts
 * never pass through the gatekeeper again and completing it is one call.
 * 0 for fs (and s3 in redirect mode): the caller keeps parts as objects.
 */
int store_mpu_native(const gk_store *s);
/* Starts a multipart upload of key; its id (printable ASCII) is appended
 * to id. Nothing is visible until store_mpu_complete. */
int store_mpu_create(gk_store *s, gk_slice key, gk_buf *id) GK_WUR;
/*
 * A writer for part 1..10000 of upload id of key: the bytes are held in
 * memory (at most STORE_MPU_PART_MAX, else GK_ERR_TOO_LARGE) and sent by
 * store_writer_finish; store_writer_commit does nothing more. The part's
 * ETag (as the store sends it, quoted) is then store_writer_etag's.
 */
#define STORE_MPU_PART_MAX (64u * 1024 * 1024)
int store_mpu_part_begin(gk_store *s, gk_slice key, gk_slice id,
    unsigned part, uint64_t max_bytes, gk_store_writer **out) GK_WUR;
/* The ETag of a part written by store_mpu_part_begin's writer after a
 * successful finish; "" otherwise. */
const char *store_writer_etag(const gk_store_writer *w);
/*
 * Completes the upload from parts_xml, the "<Part><PartNumber>N
 * </PartNumber><ETag>..</ETag></Part>" list (XML-escaped): the object
 * appears. When the store refuses, store_error's message names S3's code
 * (InvalidPart, EntityTooSmall, ...).
 */
int store_mpu_complete(gk_store *s, gk_slice key, gk_slice id,
    gk_slice parts_xml) GK_WUR;
/* Aborts the upload: its parts are freed. */
int store_mpu_abort(gk_store *s, gk_slice key, gk_slice id) GK_WUR;

/* ---- redirect mode (s3) ----------------------------------------------- */

/*
 * 1 if the browser should talk to the bucket directly: the gate then uses
 * store_presign_get / store_presign_post instead of its own /_data URLs
 * and /_upload endpoint. 0 for fs and for s3 in proxy mode.
 */
int store_presigns(const gk_store *s);

/*
 * A presigned GET URL for key into url (appended), valid ttl seconds
 * (0: the configured [s3] presign_ttl). disposition (may be empty) sets
 * response-content-disposition, e.g. "attachment; filename=\"a.pdf\"".
 * With [s3] check_exists the object is looked up first: GK_ERR_NOT_FOUND
 * if absent. GK_ERR_INVALID if the store does not presign.
 */
int store_presign_get(gk_store *s, gk_slice key, int64_t ttl,
    gk_slice disposition, gk_buf *url) GK_WUR;

/*
 * A browser POST upload of exactly key, at most max_bytes, valid ttl
 * seconds (0: [s3] presign_ttl): appends the JSON object
 * {"url": ..., "fields": {...}} that boto3's generate_presigned_post
 * returns (fields: x-amz-server-side-encryption, key, x-amz-algorithm,
 * x-amz-credential, x-amz-date, [x-amz-security-token,] policy,
 * x-amz-signature; the file goes last, as "file"). GK_ERR_INVALID for a
 * key S3 would rewrite (holding "${filename}") or a store that does not
 * presign.
 */
int store_presign_post(gk_store *s, gk_slice key, uint64_t max_bytes,
    int64_t ttl, gk_buf *form) GK_WUR;

/* The bucket name (s3) or the store type ("fs"). */
const char *store_bucket(const gk_store *s);

/*
 * 1 when a call may wait on the network (s3: every call but a presign
 * without [s3] check_exists), 0 when it only touches local files (fs).
 */
int store_remote(const gk_store *s);

/*
 * Why the last store call on this thread failed, for the reply: the HTTP
 * status to answer (404, 502 or 504) and a one-line cause naming S3's
 * error code (never S3's body, never a secret). For fs: 500 and the
 * error's text.
 */
int store_error(const char **msg);

#endif
