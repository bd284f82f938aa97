/*
 * store_int.h - private to the store folder: the s3 store (s3.c) behind
 * the store.h functions. fs.c's public functions hand over to these when
 * the store, reader or writer is an s3 one ([store] type = s3).
 */
#ifndef GK_STORE_INT_H
#define GK_STORE_INT_H

#include "store.h"

struct gk_config;
typedef struct s3_store s3_store;
typedef struct s3_store_reader s3_store_reader;
typedef struct s3_store_writer s3_store_writer;

int s3store_open(const struct gk_config *cfg, s3_store **out) GK_WUR;
void s3store_free(s3_store *s);
int s3store_get_open(s3_store *s, gk_slice key, s3_store_reader **out,
    uint64_t *size, int64_t *mtime) GK_WUR;
int s3store_reader_verify(s3_store_reader *r, uint64_t off, uint64_t len)
    GK_WUR;
int s3store_reader_read(s3_store_reader *r, uint64_t off, uint8_t *buf,
    size_t max, size_t *got) GK_WUR;
void s3store_reader_free(s3_store_reader *r);
int s3store_put_begin(s3_store *s, gk_slice key, uint64_t max_bytes,
    s3_store_writer **out) GK_WUR;
int s3store_writer_write(s3_store_writer *w, const uint8_t *p, size_t len)
    GK_WUR;
int s3store_writer_finish(s3_store_writer *w) GK_WUR;
int s3store_writer_commit(s3_store_writer *w) GK_WUR;
uint64_t s3store_writer_size(const s3_store_writer *w);
void s3store_writer_free(s3_store_writer *w);
int s3store_list(s3_store *s, gk_slice prefix, gk_slice start_after,
    unsigned max, gk_store_list_fn fn, void *arg) GK_WUR;
int s3store_delete(s3_store *s, gk_slice key) GK_WUR;
int s3store_retain(s3_store *s, gk_slice key, int64_t until) GK_WUR;
int s3store_presigns(const s3_store *s);
int s3store_presign_get(s3_store *s, gk_slice key, int64_t ttl,
    gk_slice disposition, gk_buf *url) GK_WUR;
int s3store_presign_post(s3_store *s, gk_slice key, uint64_t max_bytes,
    int64_t ttl, gk_buf *form) GK_WUR;
const char *s3store_bucket(const s3_store *s);

#endif
