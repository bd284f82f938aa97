/*
 * stream.c - streaming transfers for proxy mode: a GET whose transfer is
 * paused while the reader is behind (memory: S3_STREAM_BUF), and uploads
 * as S3 multipart uploads (memory: two S3_PART_SIZE parts, one filling
 * while the other is sent), completed only when the caller commits.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_int.h"

#define ERR_CAP (64u * 1024)

/* ---- GET -------------------------------------------------------------- */

struct s3_get {
	s3_client *c;
	CURL *e;
	CURLM *m;
	struct curl_slist *hl;
	uint8_t *buf;
	size_t start, end;	/* unread bytes are buf[start..end) */
	int paused, done, headers_done;
	long status;
	CURLcode result;
	gk_buf err;
};

static size_t
get_body(char *p, size_t size, size_t n, void *ud)
{
	s3_get *g = ud;
	size_t len = size * n;

	if (g->status == 0)
		curl_easy_getinfo(g->e, CURLINFO_RESPONSE_CODE, &g->status);
	if (g->status < 200 || g->status >= 300) {
		(void)!gk_buf_append(&g->err, p, len);
		return len;
	}
	if (g->start > 0 && g->start == g->end)
		g->start = g->end = 0;
	if (S3_STREAM_BUF - g->end < len && g->start > 0) {
		memmove(g->buf, g->buf + g->start, g->end - g->start);
		g->end -= g->start;
		g->start = 0;
	}
	if (S3_STREAM_BUF - g->end < len) {
		g->paused = 1;
		return CURL_WRITEFUNC_PAUSE;	/* curl keeps the bytes */
	}
	memcpy(g->buf + g->end, p, len);
	g->end += len;
	return len;
}

static size_t
get_header(char *p, size_t size, size_t n, void *ud)
{
	s3_get *g = ud;
	size_t len = size * n;

	if (len == 2 && p[0] == '\r' && p[1] == '\n') {
		curl_easy_getinfo(g->e, CURLINFO_RESPONSE_CODE, &g->status);
		if (g->status >= 200)	/* not a 100 Continue */
			g->headers_done = 1;
	}
	return len;
}

/*
 * Runs the transfer until cond holds, it ends or it stalls; with a
 * deadline (monotonic us, 0: none) GK_ERR_AGAIN once it passed.
 */
static int
pump_until(s3_get *g, int want_data, int64_t deadline)
{
	CURLMsg *msg;
	int running, left, ms = 1000;

	for (;;) {
		if (g->done || (!want_data && g->headers_done) ||
		    (want_data && g->end > g->start))
			return 0;
		if (curl_multi_perform(g->m, &running) != CURLM_OK)
			return GK_ERR_UNAVAILABLE;
		while ((msg = curl_multi_info_read(g->m, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE) {
				g->done = 1;
				g->result = msg->data.result;
				curl_easy_getinfo(g->e, CURLINFO_RESPONSE_CODE,
				    &g->status);
			}
		}
		if (g->done || (!want_data && g->headers_done) ||
		    (want_data && g->end > g->start))
			return 0;
		if (deadline != 0) {
			int64_t left_us = deadline - gk_mono_us();

			if (left_us <= 0)
				return GK_ERR_AGAIN;
			ms = left_us < 1000000 ? (int)(left_us / 1000) + 1 :
			    1000;
		}
		if (curl_multi_poll(g->m, NULL, 0, ms, NULL) != CURLM_OK)
			return GK_ERR_UNAVAILABLE;
	}
}

static int
pump(s3_get *g, int want_data)
{
	return pump_until(g, want_data, 0);
}

/* Lets a transfer paused on a full buffer go on once half is read. */
static void
unpause(s3_get *g)
{
	if (g->paused && g->end - g->start < S3_STREAM_BUF / 2) {
		g->paused = 0;
		curl_easy_pause(g->e, CURLPAUSE_CONT);
	}
}

int
s3_get_ready(s3_get *g)
{
	CURLMsg *msg;
	int running, left;

	if (g->done || g->end > g->start)
		return 1;
	unpause(g);
	if (curl_multi_perform(g->m, &running) != CURLM_OK)
		return 1;	/* the read reports it */
	while ((msg = curl_multi_info_read(g->m, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			g->done = 1;
			g->result = msg->data.result;
			curl_easy_getinfo(g->e, CURLINFO_RESPONSE_CODE,
			    &g->status);
		}
	}
	return g->done || g->end > g->start;
}

int
s3_get_wait(s3_get *g, unsigned ms)
{
	unpause(g);
	return pump_until(g, 1, gk_mono_us() + (int64_t)ms * 1000);
}

int
s3_get_open(s3_client *c, gk_slice key, uint64_t off, uint64_t len,
    s3_get **out)
{
	char range[64];
	gk_buf url, path, lines;
	s3_header h;
	s3_creds cr;
	s3_get *g;
	int r = GK_ERR_INTERNAL, have = 0;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return GK_ERR_NOMEM;
	g->c = c;
	gk_buf_init(&g->err, ERR_CAP);
	gk_buf_init(&url, 16384);
	gk_buf_init(&path, 16384);
	gk_buf_init(&lines, 65536);
	if ((g->buf = malloc(S3_STREAM_BUF)) == NULL) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	if (len == UINT64_MAX)
		snprintf(range, sizeof(range), "bytes=%llu-",
		    (unsigned long long)off);
	else
		snprintf(range, sizeof(range), "bytes=%llu-%llu",
		    (unsigned long long)off, (unsigned long long)(off + len - 1));
	h.name = gk_slice_str("range");
	h.value = gk_slice_str(range);
	if ((r = s3_client_creds(c, &cr)) != 0)
		goto out;
	have = 1;
	if ((r = s3_object_url(s3_client_target(c), key, &url, NULL,
	    &path)) != 0 ||
	    (r = s3_sign_headers(s3_client_target(c), &cr, "GET",
	    gk_slice_of(path.data, path.len), GK_SLICE_NULL, &h, 1,
	    S3_EMPTY_SHA256, gk_now_s(), &lines)) != 0)
		goto out;
	r = GK_ERR_NOMEM;
	if ((g->hl = s3_lines_to_slist(&lines, NULL)) == NULL ||
	    (g->e = curl_easy_init()) == NULL || (g->m = curl_multi_init()) ==
	    NULL)
		goto out;
	s3_easy_setup(c, g->e, 0);
	curl_easy_setopt(g->e, CURLOPT_URL, (char *)url.data);
	curl_easy_setopt(g->e, CURLOPT_HTTPHEADER, g->hl);
	curl_easy_setopt(g->e, CURLOPT_WRITEFUNCTION, get_body);
	curl_easy_setopt(g->e, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(g->e, CURLOPT_HEADERFUNCTION, get_header);
	curl_easy_setopt(g->e, CURLOPT_HEADERDATA, g);
	/* a stalled upstream fails instead of hanging */
	curl_easy_setopt(g->e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(g->e, CURLOPT_LOW_SPEED_TIME, (long)c->timeout);
	curl_multi_add_handle(g->m, g->e);
	if ((r = pump(g, 0)) != 0)
		goto out;
	if (g->status < 200 || g->status >= 300) {
		if (g->done && g->result == CURLE_OK)
			curl_easy_getinfo(g->e, CURLINFO_RESPONSE_CODE,
			    &g->status);
		else if (!g->done)
			(void)pump(g, 1);
		r = s3_map_error(c, g->status, g->done ? g->result : CURLE_OK,
		    gk_slice_of(g->err.data, g->err.len), "GET");
		goto out;
	}
	*out = g;
	g = NULL; /* transferred */
	r = 0;
out:
	if (have)
		s3_creds_release(&cr);
	gk_wipe(lines.data, lines.len);
	gk_buf_release(&url);
	gk_buf_release(&path);
	gk_buf_release(&lines);
	s3_get_free(g);
	return r;
}

int
s3_get_read(s3_get *g, uint8_t *buf, size_t max, size_t *got)
{
	size_t n;
	int r;

	*got = 0;
	unpause(g);
	if ((r = pump(g, 1)) != 0)
		return r;
	n = g->end - g->start;
	if (n == 0) {
		if (g->result != CURLE_OK)
			return s3_map_error(g->c, g->status, g->result,
			    GK_SLICE_NULL, "GET");
		return 0;	/* the end */
	}
	if (n > max)
		n = max;
	memcpy(buf, g->buf + g->start, n);
	g->start += n;
	*got = n;
	return 0;
}

void
s3_get_free(s3_get *g)
{
	if (g == NULL)
		return;
	if (g->m != NULL && g->e != NULL)
		curl_multi_remove_handle(g->m, g->e);
	if (g->e != NULL)
		curl_easy_cleanup(g->e);	/* closes: aborts upstream */
	if (g->m != NULL)
		curl_multi_cleanup(g->m);
	if (g->hl != NULL)
		curl_slist_free_all(g->hl);
	gk_buf_release(&g->err);
	free(g->buf);
	free(g);
}

/* ---- multipart upload --------------------------------------------------- */

#define MAX_PARTS 10000

/*
 * A full part is sent by a thread of the upload's own (started with the
 * second part) while the next one fills: the caller's thread waits only
 * when the next part is full before the last one is sent, and the
 * caller can ask first (s3_put_ready, s3_put_wait). While a part is
 * being sent (busy) that thread alone touches upload_id, n_parts,
 * done_xml and sending; the caller waits for it (sender_idle) before
 * touching them.
 */
struct s3_put {
	s3_client *c;
	gk_buf key;
	char *upload_id;	/* NULL until a second part is needed */
	gk_buf part;		/* filling */
	gk_buf sending;		/* being sent by the sender */
	gk_buf done_xml;	/* <Part>..</Part> list */
	unsigned n_parts;
	int completed, failed;
	pthread_t sender;
	int sender_on;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int busy, quit, send_err;	/* under mu; send_err sticks */
	s3_err_state send_es;	/* why it failed, for the caller's thread */
};

/* The caller may write this much more without waiting while a part is
 * being sent (a body arrives in pieces far smaller). */
#define PUT_READY_ROOM (1024u * 1024)

static int
sse_headers(s3_client *c, s3_header h[2], size_t *n)
{
	const char *kms = s3_target_kms(s3_client_target(c));

	h[0].name = gk_slice_str("x-amz-server-side-encryption");
	h[0].value = gk_slice_str(kms ? "aws:kms" : "AES256");
	h[1].name = gk_slice_str("x-amz-server-side-encryption-aws-kms-key-id");
	h[1].value = gk_slice_str(kms);
	*n = kms ? 2 : 1;
	return 0;
}

/* "partNumber=N&uploadId=ID" or "uploadId=ID" (part 0) into q. */
static int
upload_query(gk_slice upload_id, unsigned part, gk_buf *q)
{
	int r;

	gk_buf_reset(q);
	if (part != 0 && (r = gk_buf_printf(q, "partNumber=%u&", part)) != 0)
		return r;
	if ((r = gk_buf_append_str(q, "uploadId=")) != 0 ||
	    (r = gk_pct_encode(upload_id, 0, q)) != 0)
		return r;
	return gk_buf_append(q, "", 1);
}

int
s3_mpu_create(s3_client *c, gk_slice key, char **upload_id)
{
	s3_header h[2];
	gk_buf resp;
	s3_call call;
	size_t nh;
	int r;

	*upload_id = NULL;
	(void)sse_headers(c, h, &nh);
	gk_buf_init(&resp, 65536);
	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.key = key;
	call.query = "uploads=";
	call.headers = h;
	call.n_headers = nh;
	call.resp = &resp;
	if ((r = s3_client_call(c, &call, NULL)) == 0 &&
	    (*upload_id = s3_xml_leaf(gk_slice_of(resp.data, resp.len), "UploadId")) == NULL)
		r = GK_ERR_UNAVAILABLE;
	gk_buf_release(&resp);
	return r;
}

int
s3_mpu_part(s3_client *c, gk_slice key, gk_slice upload_id, unsigned part,
    gk_slice body, char etag[S3_ETAG_MAX])
{
	gk_buf q;
	s3_call call;
	int r;

	if (part == 0 || part > MAX_PARTS)
		return GK_ERR_INVALID;
	gk_buf_init(&q, 4096);
	if ((r = upload_query(upload_id, part, &q)) != 0)
		goto out;
	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.key = key;
	call.query = (const char *)q.data;
	call.body = body;
	call.idempotent = 1;
	call.etag = etag;
	if ((r = s3_client_call(c, &call, NULL)) != 0)
		goto out;
	if (etag[0] == '\0' || strpbrk(etag, "<&\r\n") != NULL)
		r = GK_ERR_UNAVAILABLE;
out:
	gk_buf_release(&q);
	return r;
}

int
s3_mpu_complete(s3_client *c, gk_slice key, gk_slice upload_id,
    gk_slice parts_xml)
{
	gk_buf body, resp, q;
	s3_call call;
	int r;

	gk_buf_init(&body, 4u * 1024 * 1024);
	gk_buf_init(&resp, 65536);
	gk_buf_init(&q, 4096);
	if ((r = gk_buf_append_str(&body, "<CompleteMultipartUpload>")) != 0 ||
	    (r = gk_buf_append(&body, parts_xml.p, parts_xml.len)) != 0 ||
	    (r = gk_buf_append_str(&body, "</CompleteMultipartUpload>")) != 0 ||
	    (r = upload_query(upload_id, 0, &q)) != 0)
		goto out;
	memset(&call, 0, sizeof(call));
	call.method = "POST";
	call.key = key;
	call.query = (const char *)q.data;
	call.body = gk_slice_of(body.data, body.len);
	call.resp = &resp;
	if ((r = s3_client_call(c, &call, NULL)) != 0)
		goto out;
	/* a 200 can still carry an error */
	if (resp.data != NULL && strstr((char *)resp.data, "<Error>") != NULL)
		r = s3_map_error(c, 500, CURLE_OK, gk_slice_of(resp.data,
		    resp.len), "POST");
out:
	gk_buf_release(&body);
	gk_buf_release(&resp);
	gk_buf_release(&q);
	return r;
}

int
s3_mpu_abort(s3_client *c, gk_slice key, gk_slice upload_id)
{
	gk_buf q;
	s3_call call;
	int r;

	gk_buf_init(&q, 4096);
	if ((r = upload_query(upload_id, 0, &q)) == 0) {
		memset(&call, 0, sizeof(call));
		call.method = "DELETE";
		call.key = key;
		call.query = (const char *)q.data;
		call.idempotent = 1;
		r = s3_client_call(c, &call, NULL);
	}
	gk_buf_release(&q);
	return r;
}

int
s3_put_begin(s3_client *c, gk_slice key, s3_put **out)
{
	s3_put *p;
	int r;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return GK_ERR_NOMEM;
	p->c = c;
	gk_buf_init(&p->key, 4096);
	gk_buf_init(&p->part, S3_PART_SIZE);
	gk_buf_init(&p->sending, S3_PART_SIZE);
	gk_buf_init(&p->done_xml, 2u * 1024 * 1024);
	if ((r = gk_buf_append(&p->key, key.p, key.len)) != 0) {
		s3_put_free(p);
		return r;
	}
	/* the multipart upload is created only when a second part is
	 * needed: an object of one part is one PUT at s3_put_complete */
	*out = p;
	return 0;
}

/* Sends b as the next part (creating the multipart upload first). */
static int
upload_buf(s3_put *p, gk_buf *b)
{
	char etag[S3_ETAG_MAX];
	int r;

	if (p->n_parts == MAX_PARTS)
		return GK_ERR_TOO_LARGE;
	if (p->upload_id == NULL && (r = s3_mpu_create(p->c,
	    gk_slice_of(p->key.data, p->key.len), &p->upload_id)) != 0)
		return r;
	if ((r = s3_mpu_part(p->c, gk_slice_of(p->key.data, p->key.len),
	    gk_slice_str(p->upload_id), p->n_parts + 1,
	    gk_slice_of(b->data, b->len), etag)) != 0)
		return r;
	p->n_parts++;
	r = gk_buf_printf(&p->done_xml, "<Part><PartNumber>%u</PartNumber>"
	    "<ETag>%s</ETag></Part>", p->n_parts, etag);
	gk_buf_reset(b);
	return r;
}

static void *
sender_main(void *arg)
{
	s3_put *p = arg;
	int r;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->busy && !p->quit)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->busy)
			break;
		pthread_mutex_unlock(&p->mu);
		r = upload_buf(p, &p->sending);
		pthread_mutex_lock(&p->mu);
		if (r != 0 && p->send_err == 0) {
			p->send_err = r;
			s3_err_save(&p->send_es);
		}
		p->busy = 0;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Waits until no part is being sent; its failure (the caller's thread
 * then reports it as its own). */
static int
sender_idle(s3_put *p)
{
	int r;

	if (!p->sender_on)
		return 0;
	pthread_mutex_lock(&p->mu);
	while (p->busy)
		pthread_cond_wait(&p->cv, &p->mu);
	r = p->send_err;
	if (r != 0)
		s3_err_load(&p->send_es);
	pthread_mutex_unlock(&p->mu);
	return r;
}

/* The full part goes to the sender (started on first use; without one
 * it is sent here) and the next fills meanwhile. */
static int
hand_part(s3_put *p)
{
	gk_buf t;
	int r;

	if (!p->sender_on) {
		if (pthread_mutex_init(&p->mu, NULL) != 0)
			return upload_buf(p, &p->part);
		if (pthread_cond_init(&p->cv, NULL) != 0) {
			pthread_mutex_destroy(&p->mu);
			return upload_buf(p, &p->part);
		}
		if (pthread_create(&p->sender, NULL, sender_main, p) != 0) {
			pthread_cond_destroy(&p->cv);
			pthread_mutex_destroy(&p->mu);
			return upload_buf(p, &p->part);
		}
		p->sender_on = 1;
	}
	if ((r = sender_idle(p)) != 0)
		return r;
	t = p->sending;
	p->sending = p->part;
	p->part = t;
	gk_buf_reset(&p->part);
	pthread_mutex_lock(&p->mu);
	p->busy = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int
s3_put_ready(s3_put *p)
{
	int busy;

	if (!p->sender_on || p->part.len + PUT_READY_ROOM < S3_PART_SIZE)
		return 1;
	pthread_mutex_lock(&p->mu);
	busy = p->busy;
	pthread_mutex_unlock(&p->mu);
	return !busy;
}

int
s3_put_wait(s3_put *p, unsigned ms)
{
	struct timespec ts;
	int busy;

	if (!p->sender_on)
		return 0;
	gk_deadline_ts(CLOCK_REALTIME, (int64_t)ms * 1000, &ts);
	pthread_mutex_lock(&p->mu);
	while (p->busy && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
		;
	busy = p->busy;
	pthread_mutex_unlock(&p->mu);
	return busy ? GK_ERR_AGAIN : 0;
}

static void
sender_stop(s3_put *p)
{
	if (!p->sender_on)
		return;
	(void)sender_idle(p);
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->sender, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	p->sender_on = 0;
}

int
s3_put_write(s3_put *p, const uint8_t *data, size_t len)
{
	size_t n;
	int r;

	if (p->failed || p->completed)
		return GK_ERR_INVALID;
	while (len > 0) {
		/* a full part goes when more bytes follow it, so an object
		 * of exactly one part stays one PUT */
		if (p->part.len == S3_PART_SIZE && (r = hand_part(p)) != 0)
			goto fail;
		n = S3_PART_SIZE - p->part.len;
		if (n > len)
			n = len;
		if ((r = gk_buf_append(&p->part, data, n)) != 0)
			goto fail;
		data += n;
		len -= n;
	}
	return 0;
fail:
	p->failed = 1;
	return r;
}

int
s3_put_finish(s3_put *p)
{
	int r;

	if (p->failed || p->completed)
		return GK_ERR_INVALID;
	if ((r = sender_idle(p)) != 0) {
		p->failed = 1;
		return r;
	}
	/* a multipart upload sends its last part now; a single PUT waits
	 * for s3_put_complete, when the object may appear */
	if (p->upload_id != NULL && p->part.len > 0 &&
	    (r = upload_buf(p, &p->part)) != 0) {
		p->failed = 1;
		return r;
	}
	return 0;
}

int
s3_put_multipart(const s3_put *p)
{
	return p->upload_id != NULL;
}

/* The whole object in one PUT (it was at most one part). */
static int
single_put(s3_put *p)
{
	s3_header h[2];
	s3_call call;
	size_t nh;

	(void)sse_headers(p->c, h, &nh);
	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.key = gk_slice_of(p->key.data, p->key.len);
	call.headers = h;
	call.n_headers = nh;
	call.body = gk_slice_of(p->part.data, p->part.len);
	call.idempotent = 1;
	return s3_client_call(p->c, &call, NULL);
}

int
s3_put_complete(s3_put *p)
{
	int r;

	if (p->failed || p->completed)
		return GK_ERR_INVALID;
	if ((r = sender_idle(p)) != 0)
		goto out;
	if (p->upload_id == NULL) {
		r = single_put(p);
	} else {
		if (p->part.len > 0 && (r = upload_buf(p, &p->part)) != 0)
			goto out;
		r = s3_mpu_complete(p->c, gk_slice_of(p->key.data, p->key.len),
		    gk_slice_str(p->upload_id), gk_slice_of(p->done_xml.data,
		    p->done_xml.len));
	}
out:
	if (r == 0)
		p->completed = 1;
	else
		p->failed = 1;
	return r;
}

void
s3_put_free(s3_put *p)
{
	if (p == NULL)
		return;
	sender_stop(p);	/* a part being sent ends first */
	if (!p->completed && p->upload_id != NULL &&
	    s3_mpu_abort(p->c, gk_slice_of(p->key.data, p->key.len),
	    gk_slice_str(p->upload_id)) != 0)
		gk_warn("could not abort a multipart upload: %s",
		    s3_last_error());
	free(p->upload_id);
	gk_buf_release(&p->key);
	gk_buf_release(&p->part);
	gk_buf_release(&p->sending);
	gk_buf_release(&p->done_xml);
	free(p);
}
