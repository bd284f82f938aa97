/*
 * store_int.h - private to the store folder: the backend table. store.c
 * dispatches every store.h call through the backend the config names;
 * fs.c and s3.c each provide one entry. A new backend is a file with a
 * const store_backend and a line in store.c's table.
 */
#ifndef GK_STORE_INT_H
#define GK_STORE_INT_H

#include "store.h"

typedef struct store_backend store_backend;

/* The handles store.c hands out. Each backend's own store, reader and
 * writer struct starts with one of these and is cast back by the
 * backend's functions; store.c fills in be. */
struct gk_store {
	const store_backend *be;
};
struct gk_store_reader {
	const store_backend *be;
};
struct gk_store_writer {
	const store_backend *be;
};

/*
 * One backend. Each function has the contract of the store.h function of
 * the same name. retain, presigns, presign_get, presign_post,
 * reader_ready, reader_wait, writer_ready and writer_wait may be NULL (a
 * backend without Object Lock, one that never presigns, one whose reads
 * and writes never wait).
 */
struct store_backend {
	const char *name;	/* [store] type */
	int (*open)(const store_settings *cfg, gk_store **out);
	void (*free)(gk_store *s);
	int (*get_open)(gk_store *s, gk_slice key, gk_store_reader **out,
	    uint64_t *size, int64_t *mtime);
	int (*reader_verify)(gk_store_reader *r, uint64_t off, uint64_t len);
	int (*reader_read)(gk_store_reader *r, uint64_t off, uint8_t *buf,
	    size_t max, size_t *got);
	void (*reader_free)(gk_store_reader *r);
	/* NULL: reads never wait on the network (store_reader_ready) */
	int (*reader_ready)(gk_store_reader *r);
	int (*reader_wait)(gk_store_reader *r, unsigned ms);
	/* NULL: writes never wait on the network (store_writer_ready) */
	int (*writer_ready)(gk_store_writer *w);
	int (*writer_wait)(gk_store_writer *w, unsigned ms);
	int (*put_begin)(gk_store *s, gk_slice key, uint64_t max_bytes,
	    gk_store_writer **out);
	int (*writer_write)(gk_store_writer *w, const uint8_t *p, size_t len);
	int (*writer_finish)(gk_store_writer *w);
	int (*writer_commit)(gk_store_writer *w);
	uint64_t (*writer_size)(const gk_store_writer *w);
	void (*writer_free)(gk_store_writer *w);
	int (*list)(gk_store *s, gk_slice prefix, gk_slice start_after,
	    unsigned max, unsigned flags, gk_store_list_fn fn, void *arg);
	int (*delete)(gk_store *s, gk_slice key);
	int (*retain)(gk_store *s, gk_slice key, int64_t until);
	int (*presigns)(const gk_store *s);
	int (*presign_get)(gk_store *s, gk_slice key, int64_t ttl,
	    gk_slice disposition, gk_buf *url);
	int (*presign_post)(gk_store *s, gk_slice key, uint64_t max_bytes,
	    int64_t ttl, gk_buf *form);
	const char *(*bucket)(const gk_store *s);
	/* multipart uploads of the store's own (all NULL: not native) */
	int (*mpu_native)(const gk_store *s);
	int (*mpu_create)(gk_store *s, gk_slice key, gk_buf *id);
	int (*mpu_part_begin)(gk_store *s, gk_slice key, gk_slice id,
	    unsigned part, uint64_t max_bytes, gk_store_writer **out);
	const char *(*writer_etag)(const gk_store_writer *w);
	int (*mpu_complete)(gk_store *s, gk_slice key, gk_slice id,
	    gk_slice parts_xml);
	int (*mpu_abort)(gk_store *s, gk_slice key, gk_slice id);
	/* Why the call that just returned r on this thread failed: the
	 * status for the reply and a one-line cause (store_error). */
	int (*error)(int r, const char **msg);
};

extern const store_backend store_fs_backend;
extern const store_backend store_s3_backend;

#endif
