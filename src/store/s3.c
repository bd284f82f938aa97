/*
 * s3.c - the store on the customer's S3 bucket ([store] type = s3).
 *
 * Redirect mode (default): the gate asks for presigned GET URLs and POST
 * forms (store_presign_get / store_presign_post) and the browser talks to
 * the bucket. Proxy mode: the gate keeps its own /_data URLs and /_upload
 * endpoint and this file streams to and from the bucket (ranged GETs with
 * bounded buffering, multipart uploads completed only at commit).
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "s3/s3.h"
#include "store_int.h"

struct s3_store {
	s3_client *c;
	int proxy;
	int check_exists;
	int64_t ttl;
};

struct s3_store_reader {
	s3_store *s;
	gk_buf key;
	uint64_t size, pos;
	s3_get *g;
};

struct s3_store_writer {
	s3_put *p;
	uint64_t total, max;
	int dead;
};

int
s3store_open(const struct gk_config *cfg, s3_store **out)
{
	s3_store *s;
	char err[256];
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return GK_ERR_NOMEM;
	s->proxy = strcmp(cfg->s3_mode, "proxy") == 0;
	s->check_exists = cfg->s3_check_exists;
	s->ttl = cfg->s3_presign_ttl;
	if ((r = s3_client_from_config(cfg, &s->c, err, sizeof(err))) != 0) {
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

void
s3store_free(s3_store *s)
{
	if (s == NULL)
		return;
	s3_client_free(s->c);
	free(s);
}

int
s3store_presigns(const s3_store *s)
{
	return !s->proxy;
}

const char *
s3store_bucket(const s3_store *s)
{
	return s3_target_bucket(s3_client_target(s->c));
}

int
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

int
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

int
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

int
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

int
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

void
s3store_reader_free(s3_store_reader *rd)
{
	if (rd == NULL)
		return;
	s3_get_free(rd->g);
	gk_buf_release(&rd->key);
	free(rd);
}

/* ---- writing (proxy mode) ------------------------------------------- */

int
s3store_put_begin(s3_store *s, gk_slice key, uint64_t max_bytes,
    s3_store_writer **out)
{
	s3_store_writer *w;
	int r;

	if (key.len == 0 || key.len > 1024)
		return GK_ERR_INVALID;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return GK_ERR_NOMEM;
	w->max = max_bytes;
	if ((r = s3_put_begin(s->c, key, &w->p)) != 0) {
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

int
s3store_writer_write(s3_store_writer *w, const uint8_t *p, size_t len)
{
	int r;

	if (w->dead)
		return GK_ERR_INVALID;
	if (len > w->max - w->total) {
		w->dead = 1;
		return GK_ERR_TOO_LARGE;
	}
	if ((r = s3_put_write(w->p, p, len)) != 0) {
		w->dead = 1;
		return r;
	}
	w->total += len;
	return 0;
}

int
s3store_writer_finish(s3_store_writer *w)
{
	int r;

	if (w->dead)
		return GK_ERR_INVALID;
	/* the last part goes now, before the audit record: only the
	 * completion is left for store_writer_commit */
	if ((r = s3_put_finish(w->p)) != 0)
		w->dead = 1;
	return r;
}

int
s3store_writer_commit(s3_store_writer *w)
{
	int r;

	if (w->dead)
		return GK_ERR_INVALID;
	if ((r = s3_put_complete(w->p)) != 0)
		w->dead = 1;
	return r;
}

uint64_t
s3store_writer_size(const s3_store_writer *w)
{
	return w->total;
}

void
s3store_writer_free(s3_store_writer *w)
{
	if (w == NULL)
		return;
	s3_put_free(w->p);	/* aborts an upload not completed */
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
};

static int
on_obj(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct list_ctx *lc = arg;
	int r;

	if (size == 0)
		return 0;	/* as the fs store: empty objects left out */
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

int
s3store_list(s3_store *s, gk_slice prefix, gk_slice start_after,
    unsigned max, gk_store_list_fn fn, void *arg)
{
	struct list_ctx lc = { fn, arg, max, 0, 0, prefix, 0 };
	int r;

	r = s3_client_list(s->c, prefix, start_after, on_obj, &lc);
	if (r != 0)
		return r;
	return lc.r;
}

int
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

int
s3store_delete(s3_store *s, gk_slice key)
{
	s3_call call;

	memset(&call, 0, sizeof(call));
	call.method = "DELETE";
	call.key = key;
	call.idempotent = 1;
	return s3_client_call(s->c, &call, NULL);
}

/* ---- errors --------------------------------------------------------- */

int
store_error(const char **msg)
{
	*msg = s3_last_error();
	return s3_last_status();
}
