/*
 * store.c - the store.h functions: open the backend the config names and
 * dispatch every call through its table entry (store_int.h). The last
 * failure on each thread is kept so store_error explains it in the
 * backend's own terms.
 */
#include "store_int.h"

#include <string.h>

static const store_backend *const backends[] = {
	&store_fs_backend,
	&store_s3_backend,
};

/* The last failed call on this thread: its backend and result. */
static _Thread_local const store_backend *last_be;
static _Thread_local int last_r;

static int
noted(const store_backend *be, int r)
{
	if (r != 0) {
		last_be = be;
		last_r = r;
	}
	return r;
}

int
store_open(const store_settings *cfg, gk_store **out)
{
	const char *type = cfg != NULL && cfg->store_type != NULL &&
	    cfg->store_type[0] != '\0' ? cfg->store_type : "fs";
	size_t i;
	int r;

	*out = NULL;
	for (i = 0; i < GK_ARRAY_LEN(backends); i++) {
		if (strcmp(backends[i]->name, type) != 0)
			continue;
		if ((r = backends[i]->open(cfg, out)) != 0)
			return noted(backends[i], r);
		(*out)->be = backends[i];
		return 0;
	}
	gk_error("store: unknown type '%s'", type);
	return GK_ERR_CONFIG;
}

void
store_free(gk_store *s)
{
	if (s != NULL)
		s->be->free(s);
}

int
store_get_open(gk_store *s, gk_slice key, gk_store_reader **out,
    uint64_t *size, int64_t *mtime)
{
	int r = s->be->get_open(s, key, out, size, mtime);

	if (r != 0)
		return noted(s->be, r);
	(*out)->be = s->be;
	return 0;
}

int
store_reader_verify(gk_store_reader *r, uint64_t off, uint64_t len)
{
	return noted(r->be, r->be->reader_verify(r, off, len));
}

int
store_reader_read(gk_store_reader *r, uint64_t off, uint8_t *buf, size_t max,
    size_t *got)
{
	return noted(r->be, r->be->reader_read(r, off, buf, max, got));
}

int
store_writer_ready(gk_store_writer *w)
{
	return w->be->writer_ready == NULL || w->be->writer_ready(w);
}

int
store_writer_wait(gk_store_writer *w, unsigned ms)
{
	if (w->be->writer_wait == NULL)
		return 0;
	return w->be->writer_wait(w, ms);
}

int
store_reader_ready(gk_store_reader *r)
{
	return r->be->reader_ready == NULL || r->be->reader_ready(r);
}

int
store_reader_wait(gk_store_reader *r, unsigned ms)
{
	if (r->be->reader_wait == NULL)
		return 0;
	return r->be->reader_wait(r, ms);
}

void
store_reader_free(gk_store_reader *r)
{
	if (r != NULL)
		r->be->reader_free(r);
}

int
store_put_begin(gk_store *s, gk_slice key, uint64_t max_bytes,
    gk_store_writer **out)
{
	int r = s->be->put_begin(s, key, max_bytes, out);

	if (r != 0)
		return noted(s->be, r);
	(*out)->be = s->be;
	return 0;
}

int
store_writer_write(gk_store_writer *w, const uint8_t *p, size_t len)
{
	return noted(w->be, w->be->writer_write(w, p, len));
}

int
store_writer_finish(gk_store_writer *w)
{
	return noted(w->be, w->be->writer_finish(w));
}

int
store_writer_commit(gk_store_writer *w)
{
	return noted(w->be, w->be->writer_commit(w));
}

uint64_t
store_writer_size(const gk_store_writer *w)
{
	return w->be->writer_size(w);
}

void
store_writer_free(gk_store_writer *w)
{
	if (w != NULL)
		w->be->writer_free(w);
}

int
store_list_flags(gk_store *s, gk_slice prefix, gk_slice start_after,
    unsigned max, unsigned flags, gk_store_list_fn fn, void *arg)
{
	int r = s->be->list(s, prefix, start_after, max, flags, fn, arg);

	return r < 0 ? noted(s->be, r) : r;
}

int
store_list(gk_store *s, gk_slice prefix, gk_slice start_after, unsigned max,
    gk_store_list_fn fn, void *arg)
{
	return store_list_flags(s, prefix, start_after, max, 0, fn, arg);
}

int
store_delete(gk_store *s, gk_slice key)
{
	return noted(s->be, s->be->delete(s, key));
}

int
store_retain(gk_store *s, gk_slice key, int64_t until)
{
	if (s->be->retain == NULL)
		return GK_ERR_INVALID;
	return noted(s->be, s->be->retain(s, key, until));
}

int
store_presigns(const gk_store *s)
{
	return s->be->presigns != NULL && s->be->presigns(s);
}

int
store_presign_get(gk_store *s, gk_slice key, int64_t ttl,
    gk_slice disposition, gk_buf *url)
{
	if (!store_presigns(s) || s->be->presign_get == NULL)
		return GK_ERR_INVALID;
	return noted(s->be, s->be->presign_get(s, key, ttl, disposition, url));
}

int
store_presign_post(gk_store *s, gk_slice key, uint64_t max_bytes,
    int64_t ttl, gk_buf *form)
{
	if (!store_presigns(s) || s->be->presign_post == NULL)
		return GK_ERR_INVALID;
	return noted(s->be, s->be->presign_post(s, key, max_bytes, ttl,
	    form));
}

int
store_mpu_native(const gk_store *s)
{
	return s->be->mpu_native != NULL && s->be->mpu_native(s);
}

int
store_mpu_create(gk_store *s, gk_slice key, gk_buf *id)
{
	if (!store_mpu_native(s))
		return GK_ERR_INVALID;
	return noted(s->be, s->be->mpu_create(s, key, id));
}

int
store_mpu_part_begin(gk_store *s, gk_slice key, gk_slice id, unsigned part,
    uint64_t max_bytes, gk_store_writer **out)
{
	int r;

	*out = NULL;
	if (!store_mpu_native(s))
		return GK_ERR_INVALID;
	r = s->be->mpu_part_begin(s, key, id, part, max_bytes, out);
	if (r == 0)
		(*out)->be = s->be;
	return noted(s->be, r);
}

const char *
store_writer_etag(const gk_store_writer *w)
{
	return w->be->writer_etag != NULL ? w->be->writer_etag(w) : "";
}

int
store_mpu_complete(gk_store *s, gk_slice key, gk_slice id,
    gk_slice parts_xml)
{
	if (!store_mpu_native(s))
		return GK_ERR_INVALID;
	return noted(s->be, s->be->mpu_complete(s, key, id, parts_xml));
}

int
store_mpu_abort(gk_store *s, gk_slice key, gk_slice id)
{
	if (!store_mpu_native(s))
		return GK_ERR_INVALID;
	return noted(s->be, s->be->mpu_abort(s, key, id));
}

const char *
store_bucket(const gk_store *s)
{
	return s->be->bucket(s);
}

int
store_remote(const gk_store *s)
{
	return s->be != &store_fs_backend;
}

int
store_error(const char **msg)
{
	if (last_be == NULL) {
		*msg = "no store error";
		return 500;
	}
	return last_be->error(last_r, msg);
}
