/*
 * s3.c - the store on the customer's S3 bucket ([store] type = s3).
 *
 * Redirect mode (default): the gate asks for presigned GET URLs and POST
 * forms (store_presign_get / store_presign_post) and the browser talks to
 * the bucket. Proxy mode: the gate keeps its own /_data URLs and /_upload
 * endpoint and this file streams to and from the bucket (ranged GETs with
 * bounded buffering, multipart uploads completed only at commit).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"
#include "store_int.h"

typedef struct s3_store s3_store;
typedef struct s3_store_reader s3_store_reader;
typedef struct s3_store_writer s3_store_writer;

static void s3store_reader_free(s3_store_reader *rd);

/* A write is checked against the bucket before its audit record unless
 * one succeeded this recently (seconds). */
#define WRITE_OK_FOR 10

struct s3_store {
	gk_store base;		/* first: the handle store.c hands out */
	s3_client *c;
	int proxy;
	int check_exists;
	int64_t ttl;
	_Atomic int64_t write_ok;	/* monotonic s of the last good write */
};

struct s3_store_reader {
	gk_store_reader base;	/* first */
	s3_store *s;
	gk_buf key;
	uint64_t size, pos;
	s3_get *g;
};

struct s3_store_writer {
	gk_store_writer base;	/* first */
	s3_put *p;		/* an object; NULL for a part */
	gk_buf key;		/* the object's key */
	uint64_t total, max;
	int dead;
	/* a part of the bucket's own multipart upload: held, then sent */
	s3_store *s;
	unsigned part;
	gk_buf held, id;
	char etag[S3_ETAG_MAX];
};

static int
s3store_open(const store_settings *cfg, s3_store **out)
{
	s3_store *s;
	char err[256];
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return GK_ERR_NOMEM;
	s->proxy = strcmp(cfg->s3_mode, "proxy") == 0;
	s->check_exists = cfg->s3_check_exists;
	s->ttl = cfg->s3_presign_ttl;
	if ((r = s3_client_new(cfg->s3_client, &s->c, err, sizeof(err))) != 0) {
		gk_error("%s", err);
		free(s);
		return r;
	}
	gk_info("s3 store: bucket %s, %s mode, credentials from %s",
	    cfg->s3_bucket, s->proxy ? "proxy" : "redirect",
	    s3_client_creds_source(s->c));
	*out = s;
	return 0;
}

static void
s3store_free(s3_store *s)
{
	if (s == NULL)
		return;
	s3_client_free(s->c);
	free(s);
}

static int
s3store_presigns(const s3_store *s)
{
	return !s->proxy;
}

static const char *
s3store_bucket(const s3_store *s)
{
	return s3_target_bucket(s3_client_target(s->c));
}

static int
s3store_presign_get(s3_store *s, gk_slice key, int64_t ttl,
    gk_slice disposition, gk_buf *url)
{
	s3_creds cr;
	int r;

	if (s->check_exists &&
	    (r = s3_client_head(s->c, key, NULL, NULL)) != 0)
		return r;
	if ((r = s3_client_creds(s->c, &cr)) != 0)
		return r;
	r = s3_presign_get(s3_client_target(s->c), &cr, key, gk_now_s(),
	    (unsigned)(ttl > 0 ? ttl : s->ttl), disposition, url);
	s3_creds_release(&cr);
	return r;
}

static int
s3store_presign_post(s3_store *s, gk_slice key, uint64_t max_bytes,
    int64_t ttl, gk_buf *form)
{
	s3_creds cr;
	int r;

	if ((r = s3_client_creds(s->c, &cr)) != 0)
		return r;
	r = s3_presign_post(s3_client_target(s->c), &cr, key, max_bytes,
	    gk_now_s(), (unsigned)(ttl > 0 ? ttl : s->ttl), form);
	s3_creds_release(&cr);
	return r;
}

/* ---- reading (proxy mode) ------------------------------------------- */

static int
s3store_get_open(s3_store *s, gk_slice key, s3_store_reader **out,
    uint64_t *size, int64_t *mtime)
{
	s3_store_reader *rd;
	uint64_t sz = 0;
	int64_t mt = 0;
	int r;

	if ((r = s3_client_head(s->c, key, &sz, &mt)) != 0)
		return r;
	if ((rd = calloc(1, sizeof(*rd))) == NULL)
		return GK_ERR_NOMEM;
	rd->s = s;
	rd->size = sz;
	gk_buf_init(&rd->key, 4096);
	if ((r = gk_buf_append(&rd->key, key.p, key.len)) != 0) {
		s3store_reader_free(rd);
		return r;
	}
	if (size != NULL)
		*size = sz;
	if (mtime != NULL)
		*mtime = mt;
	*out = rd;
	return 0;
}

static int
reopen(s3_store_reader *rd, uint64_t off, uint64_t len)
{
	s3_get_free(rd->g);
	rd->g = NULL;
	rd->pos = off;
	if (off >= rd->size)
		return 0;
	return s3_get_open(rd->s->c, gk_slice_of(rd->key.data, rd->key.len),
	    off, len, &rd->g);
}

static int
s3store_reader_verify(s3_store_reader *rd, uint64_t off, uint64_t len)
{
	if (off > rd->size)
		return GK_ERR_RANGE;
	if (len > rd->size - off)
		len = rd->size - off;
	if (len == 0)
		return 0;
	/* opens the transfer now, so S3's refusal can still be answered
	 * with a status */
	return reopen(rd, off, len);
}

static int
s3store_reader_read(s3_store_reader *rd, uint64_t off, uint8_t *buf,
    size_t max, size_t *got)
{
	int r;

	*got = 0;
	if (off >= rd->size || max == 0)
		return 0;
	if ((rd->g == NULL || off != rd->pos) &&
	    (r = reopen(rd, off, UINT64_MAX)) != 0)
		return r;
	if ((r = s3_get_read(rd->g, buf, max, got)) != 0)
		return r;
	rd->pos += *got;
	return 0;
}

/* The next sequential read (at rd->pos) returns without waiting. */
static int
s3store_reader_ready(s3_store_reader *rd)
{
	if (rd->pos >= rd->size)
		return 1;
	return rd->g != NULL && s3_get_ready(rd->g);
}

static int
s3store_reader_wait(s3_store_reader *rd, unsigned ms)
{
	int r;

	if (rd->pos >= rd->size)
		return 0;
	if (rd->g == NULL && (r = reopen(rd, rd->pos, UINT64_MAX)) != 0)
		return r;
	return s3_get_wait(rd->g, ms);
}

static void
s3store_reader_free(s3_store_reader *rd)
{
	if (rd == NULL)
		return;
	s3_get_free(rd->g);
	gk_buf_release(&rd->key);
	free(rd);
}

/* ---- writing (proxy mode) ------------------------------------------- */

/*
 * An object of one part is one PUT at commit, after its audit record: so
 * that a bucket refusing the gatekeeper's writes (keys, policy, a missing
 * bucket) is still answered 502 before the record, a write is first
 * checked (a multipart upload created and aborted, which needs exactly
 * s3:PutObject) unless a write succeeded in the last WRITE_OK_FOR s. The
 * check runs at the end of the body (writer_finish), which the gate runs
 * on a worker for a remote store, not at its start on an HTTP thread; a
 * larger object's multipart upload, created when its second part is
 * needed, is its own check.
 */
static void
write_ok(s3_store *s, int ok)
{
	atomic_store(&s->write_ok, ok ? gk_mono_us() / 1000000 + 1 : 0);
}

static int
write_check(s3_store *s, gk_slice key)
{
	int64_t last = atomic_load(&s->write_ok);
	char *up = NULL;
	int r;

	if (last != 0 && gk_mono_us() / 1000000 + 1 - last < WRITE_OK_FOR)
		return 0;
	if ((r = s3_mpu_create(s->c, key, &up)) != 0) {
		write_ok(s, 0);
		return r;
	}
	if (s3_mpu_abort(s->c, key, gk_slice_str(up)) != 0)
		gk_warn("s3 store: could not abort a check upload: %s",
		    s3_last_error());
	free(up);
	write_ok(s, 1);
	return 0;
}

static int
s3store_put_begin(s3_store *s, gk_slice key, uint64_t max_bytes,
    s3_store_writer **out)
{
	s3_store_writer *w;
	int r;

	if (key.len == 0 || key.len > 1024)
		return GK_ERR_INVALID;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return GK_ERR_NOMEM;
	w->s = s;
	w->max = max_bytes;
	gk_buf_init(&w->key, 1024);	/* for the write check (finish) */
	if ((r = gk_buf_append(&w->key, key.p, key.len)) != 0 ||
	    (r = s3_put_begin(s->c, key, &w->p)) != 0) {
		gk_buf_release(&w->key);
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

static int
s3store_part_begin(s3_store *s, gk_slice key, gk_slice id, unsigned part,
    uint64_t max_bytes, s3_store_writer **out)
{
	s3_store_writer *w;

	if (key.len == 0 || key.len > 1024 || id.len == 0 || id.len > 1024 ||
	    part == 0 || part > 10000)
		return GK_ERR_INVALID;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return GK_ERR_NOMEM;
	w->s = s;
	w->part = part;
	w->max = max_bytes < STORE_MPU_PART_MAX ? max_bytes :
	    STORE_MPU_PART_MAX;
	gk_buf_init(&w->held, (size_t)w->max);
	gk_buf_init(&w->key, 1024);
	gk_buf_init(&w->id, 1024);
	if (gk_buf_append(&w->key, key.p, key.len) != 0 ||
	    gk_buf_append(&w->id, id.p, id.len) != 0) {
		gk_buf_release(&w->key);
		gk_buf_release(&w->id);
		free(w);
		return GK_ERR_NOMEM;
	}
	*out = w;
	return 0;
}

static int
s3store_writer_write(s3_store_writer *w, const uint8_t *p, size_t len)
{
	int r;

	if (w->dead)
		return GK_ERR_INVALID;
	if (len > w->max - w->total) {
		w->dead = 1;
		return GK_ERR_TOO_LARGE;
	}
	if (w->p == NULL) {	/* a part: held until finish */
		if ((r = gk_buf_append(&w->held, p, len)) != 0) {
			w->dead = 1;
			return r;
		}
		w->total += len;
		return 0;
	}
	if ((r = s3_put_write(w->p, p, len)) != 0) {
		w->dead = 1;
		return r;
	}
	w->total += len;
	return 0;
}

static int
s3store_writer_finish(s3_store_writer *w)
{
	int r;

	if (w->dead)
		return GK_ERR_INVALID;
	if (w->p == NULL) {
		if (w->etag[0] != '\0')
			return 0;	/* sent */
		r = s3_mpu_part(w->s->c, gk_slice_of(w->key.data, w->key.len),
		    gk_slice_of(w->id.data, w->id.len), w->part,
		    gk_slice_of(w->held.data, w->held.len), w->etag);
		gk_buf_release(&w->held);
		if (r != 0) {
			w->etag[0] = '\0';
			w->dead = 1;
		}
		return r;
	}
	/* the last part goes now, before the audit record: only the
	 * completion is left for store_writer_commit */
	if ((r = s3_put_finish(w->p)) != 0)
		w->dead = 1;
	else if (!s3_put_multipart(w->p) && (r = write_check(w->s,
	    gk_slice_of(w->key.data, w->key.len))) != 0)
		w->dead = 1;
	return r;
}

static int
s3store_writer_commit(s3_store_writer *w)
{
	int r;

	if (w->dead)
		return GK_ERR_INVALID;
	if (w->p == NULL)	/* a part: sent by finish */
		return s3store_writer_finish(w);
	r = s3_put_complete(w->p);
	if (r == 0 || r == GK_ERR_DENIED)
		write_ok(w->s, r == 0);
	if (r != 0)
		w->dead = 1;
	return r;
}

static uint64_t
s3store_writer_size(const s3_store_writer *w)
{
	return w->total;
}

static void
s3store_writer_free(s3_store_writer *w)
{
	if (w == NULL)
		return;
	s3_put_free(w->p);	/* aborts an upload not completed */
	gk_buf_release(&w->held);
	gk_buf_release(&w->key);
	gk_buf_release(&w->id);
	free(w);
}

/* ---- listing -------------------------------------------------------- */

struct list_ctx {
	gk_store_list_fn fn;
	void *arg;
	unsigned max, n;
	int r;
	gk_slice prefix;
	int warned;
	int empty;		/* list 0-byte objects too */
};

static int
on_obj(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct list_ctx *lc = arg;
	int r;

	if (size == 0 && !lc->empty)
		return 0;	/* as the fs store: left out unless asked */
	if (!gk_slice_has_prefix(key, lc->prefix)) {
		/* a misbehaving server or a man in the middle: the caller
		 * relies on the prefix (and shows keys relative to it) */
		if (!lc->warned)
			gk_warn("s3 store: the bucket listed a key outside "
			    "the requested prefix; left out");
		lc->warned = 1;
		return 0;
	}
	if (lc->max != 0 && lc->n == lc->max)
		return 1;
	lc->n++;
	if ((r = lc->fn(lc->arg, key, size, mtime)) != 0) {
		lc->r = r < 0 ? r : 0;
		return 1;
	}
	return 0;
}

static int
s3store_list(s3_store *s, gk_slice prefix, gk_slice start_after,
    unsigned max, unsigned flags, gk_store_list_fn fn, void *arg)
{
	struct list_ctx lc = { fn, arg, max, 0, 0, prefix, 0,
	    (flags & STORE_LIST_EMPTY) != 0 };
	int r;

	r = s3_client_list(s->c, prefix, start_after, on_obj, &lc);
	if (r != 0)
		return r;
	return lc.r;
}

static int
s3store_retain(s3_store *s, gk_slice key, int64_t until)
{
	char when[32];
	gk_buf body;
	s3_call call;
	int r;

	gk_time_iso(until, when, sizeof(when));
	gk_buf_init(&body, 512);
	if ((r = gk_buf_printf(&body, "<Retention xmlns=\"http://s3.amazonaws."
	    "com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>"
	    "%s</RetainUntilDate></Retention>", when)) != 0) {
		gk_buf_release(&body);
		return r;
	}
	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.key = key;
	call.query = "retention=";
	call.body = gk_slice_of(body.data, body.len);	/* Content-MD5 added */
	call.idempotent = 1;
	r = s3_client_call(s->c, &call, NULL);
	gk_buf_release(&body);
	return r;
}

static int
s3store_delete(s3_store *s, gk_slice key)
{
	s3_call call;

	memset(&call, 0, sizeof(call));
	call.method = "DELETE";
	call.key = key;
	call.idempotent = 1;
	return s3_client_call(s->c, &call, NULL);
}

/* ---- the bucket's own multipart uploads --------------------------------- */

static int
s3store_mpu_create(s3_store *s, gk_slice key, gk_buf *id)
{
	char *up = NULL;
	int r;

	if ((r = s3_mpu_create(s->c, key, &up)) != 0)
		return r;
	r = gk_buf_append_str(id, up);
	free(up);
	return r;
}

/* ---- the backend table entry ------------------------------------------ */

static int
be_open(const store_settings *cfg, gk_store **out)
{
	s3_store *s;
	int r = s3store_open(cfg, &s);

	*out = r == 0 ? &s->base : NULL;
	return r;
}

static void
be_free(gk_store *s)
{
	s3store_free((s3_store *)s);
}

static int
be_get_open(gk_store *s, gk_slice key, gk_store_reader **out, uint64_t *size,
    int64_t *mtime)
{
	s3_store_reader *rd;
	int r = s3store_get_open((s3_store *)s, key, &rd, size, mtime);

	*out = r == 0 ? &rd->base : NULL;
	return r;
}

static int
be_reader_verify(gk_store_reader *rd, uint64_t off, uint64_t len)
{
	return s3store_reader_verify((s3_store_reader *)rd, off, len);
}

static int
be_reader_read(gk_store_reader *rd, uint64_t off, uint8_t *buf, size_t max,
    size_t *got)
{
	return s3store_reader_read((s3_store_reader *)rd, off, buf, max, got);
}

static void
be_reader_free(gk_store_reader *rd)
{
	s3store_reader_free((s3_store_reader *)rd);
}

static int
be_writer_ready(gk_store_writer *gw)
{
	s3_store_writer *w = (s3_store_writer *)gw;

	return w->p == NULL || w->dead || s3_put_ready(w->p);
}

static int
be_writer_wait(gk_store_writer *gw, unsigned ms)
{
	s3_store_writer *w = (s3_store_writer *)gw;

	if (w->p == NULL || w->dead)
		return 0;
	return s3_put_wait(w->p, ms);
}

static int
be_reader_ready(gk_store_reader *rd)
{
	return s3store_reader_ready((s3_store_reader *)rd);
}

static int
be_reader_wait(gk_store_reader *rd, unsigned ms)
{
	return s3store_reader_wait((s3_store_reader *)rd, ms);
}

static int
be_put_begin(gk_store *s, gk_slice key, uint64_t max_bytes,
    gk_store_writer **out)
{
	s3_store_writer *w;
	int r = s3store_put_begin((s3_store *)s, key, max_bytes, &w);

	*out = r == 0 ? &w->base : NULL;
	return r;
}

static int
be_writer_write(gk_store_writer *w, const uint8_t *p, size_t len)
{
	return s3store_writer_write((s3_store_writer *)w, p, len);
}

static int
be_writer_finish(gk_store_writer *w)
{
	return s3store_writer_finish((s3_store_writer *)w);
}

static int
be_writer_commit(gk_store_writer *w)
{
	return s3store_writer_commit((s3_store_writer *)w);
}

static uint64_t
be_writer_size(const gk_store_writer *w)
{
	return s3store_writer_size((const s3_store_writer *)w);
}

static void
be_writer_free(gk_store_writer *w)
{
	s3store_writer_free((s3_store_writer *)w);
}

static int
be_list(gk_store *s, gk_slice prefix, gk_slice start_after, unsigned max,
    unsigned flags, gk_store_list_fn fn, void *arg)
{
	return s3store_list((s3_store *)s, prefix, start_after, max, flags, fn,
	    arg);
}

static int
be_delete(gk_store *s, gk_slice key)
{
	return s3store_delete((s3_store *)s, key);
}

static int
be_retain(gk_store *s, gk_slice key, int64_t until)
{
	return s3store_retain((s3_store *)s, key, until);
}

static const char *
be_bucket(const gk_store *s)
{
	return s3store_bucket((const s3_store *)s);
}

static int
be_presigns(const gk_store *s)
{
	return s3store_presigns((const s3_store *)s);
}

static int
be_presign_get(gk_store *s, gk_slice key, int64_t ttl, gk_slice disposition,
    gk_buf *url)
{
	return s3store_presign_get((s3_store *)s, key, ttl, disposition, url);
}

static int
be_presign_post(gk_store *s, gk_slice key, uint64_t max_bytes, int64_t ttl,
    gk_buf *form)
{
	return s3store_presign_post((s3_store *)s, key, max_bytes, ttl, form);
}

/* The bucket's answer to the last request on this thread (S3's error
 * code, never its body); the library's own failures are 500s. */
static int
be_error(int r, const char **msg)
{
	if (r != GK_ERR_UNAVAILABLE && r != GK_ERR_DENIED &&
	    r != GK_ERR_NOT_FOUND) {
		*msg = gk_err_str(r);
		return 500;
	}
	*msg = s3_last_error();
	return s3_last_status();
}

static int
be_mpu_native(const gk_store *s)
{
	return ((const s3_store *)s)->proxy;
}

static int
be_mpu_create(gk_store *s, gk_slice key, gk_buf *id)
{
	return s3store_mpu_create((s3_store *)s, key, id);
}

static int
be_mpu_part_begin(gk_store *s, gk_slice key, gk_slice id, unsigned part,
    uint64_t max_bytes, gk_store_writer **out)
{
	s3_store_writer *w;
	int r = s3store_part_begin((s3_store *)s, key, id, part, max_bytes,
	    &w);

	*out = r == 0 ? &w->base : NULL;
	return r;
}

static const char *
be_writer_etag(const gk_store_writer *w)
{
	return ((const s3_store_writer *)w)->etag;
}

static int
be_mpu_complete(gk_store *s, gk_slice key, gk_slice id, gk_slice parts_xml)
{
	return s3_mpu_complete(((s3_store *)s)->c, key, id, parts_xml);
}

static int
be_mpu_abort(gk_store *s, gk_slice key, gk_slice id)
{
	return s3_mpu_abort(((s3_store *)s)->c, key, id);
}

const store_backend store_s3_backend = {
	.name = "s3",
	.open = be_open,
	.free = be_free,
	.get_open = be_get_open,
	.reader_verify = be_reader_verify,
	.reader_read = be_reader_read,
	.reader_free = be_reader_free,
	.reader_ready = be_reader_ready,
	.reader_wait = be_reader_wait,
	.writer_ready = be_writer_ready,
	.writer_wait = be_writer_wait,
	.put_begin = be_put_begin,
	.writer_write = be_writer_write,
	.writer_finish = be_writer_finish,
	.writer_commit = be_writer_commit,
	.writer_size = be_writer_size,
	.writer_free = be_writer_free,
	.list = be_list,
	.delete = be_delete,
	.retain = be_retain,
	.presigns = be_presigns,
	.presign_get = be_presign_get,
	.presign_post = be_presign_post,
	.bucket = be_bucket,
	.error = be_error,
	.mpu_native = be_mpu_native,
	.mpu_create = be_mpu_create,
	.mpu_part_begin = be_mpu_part_begin,
	.writer_etag = be_writer_etag,
	.mpu_complete = be_mpu_complete,
	.mpu_abort = be_mpu_abort,
};
