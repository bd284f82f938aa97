/*
 * client.c - the S3 client on libcurl: signed calls with retries, a pool
 * of easy handles (each keeps its connections alive), error mapping,
 * listing, streaming GETs (paused while the reader is behind) and
 * multipart uploads.
 */
#include "s3.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "s3_int.h"

#define ERR_BODY_CAP (64u * 1024)
#define LIST_PAGE_CAP (16u * 1024 * 1024)
#define SMALL_RESP_CAP (1024u * 1024)

static __thread int last_status;
static __thread char last_err[256];
static __thread char last_code[64];

int
s3_last_status(void)
{
	return last_status ? last_status : 502;
}

const char *
s3_last_error(void)
{
	return last_err[0] ? last_err : "storage error";
}

const char *
s3_last_code(void)
{
	return last_code;
}

void
s3_err_save(s3_err_state *e)
{
	e->status = last_status;
	memcpy(e->err, last_err, sizeof(e->err));
	memcpy(e->code, last_code, sizeof(e->code));
}

void
s3_err_load(const s3_err_state *e)
{
	last_status = e->status;
	memcpy(last_err, e->err, sizeof(last_err));
	memcpy(last_code, e->code, sizeof(last_code));
}

static void set_err(int status, const char *fmt, ...) GK_PRINTF(2, 3);

static void
set_err(int status, const char *fmt, ...)
{
	va_list ap;

	last_status = status;
	last_code[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(last_err, sizeof(last_err), fmt, ap);
	va_end(ap);
}

/* ---- the client ------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
s3_client_new(const s3_client_opts *o, s3_client **out, char *err,
    size_t errlen)
{
	s3_client *c;
	int r;

	pthread_once(&curl_once, curl_init_once);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	pthread_mutex_init(&c->pool_mu, NULL);
	pthread_mutex_init(&c->cred_mu, NULL);
	c->connect_timeout = o->connect_timeout ? o->connect_timeout : 5;
	c->timeout = o->timeout ? o->timeout : 30;
	c->retries = o->retries;
	if ((r = s3_target_new(o->endpoint, o->bucket, o->region, o->path_style,
	    &c->t)) != 0) {
		snprintf(err, errlen, "[s3] endpoint must be http(s)://host[:port] "
		    "and bucket a bucket name");
		s3_client_free(c);
		return GK_ERR_CONFIG;
	}
	if ((r = s3_target_set_kms(c->t, o->kms_key_id)) != 0) {
		snprintf(err, errlen, "[s3] kms_key_id must be printable ASCII "
		    "without spaces or quotes, at most 2048 characters");
		s3_client_free(c);
		return GK_ERR_CONFIG;
	}
	if ((r = s3_creds_init(c, o, err, errlen)) != 0) {
		s3_client_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void
s3_client_free(s3_client *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < c->pool_n; i++)
		curl_easy_cleanup(c->pool[i]);
	s3_creds_fini(c);
	s3_target_free(c->t);
	pthread_mutex_destroy(&c->pool_mu);
	pthread_mutex_destroy(&c->cred_mu);
	free(c);
}

s3_target *
s3_client_target(s3_client *c)
{
	return c->t;
}

/* ---- one call --------------------------------------------------------- */

struct sink {
	gk_buf *resp;
	gk_buf err;
	long status;
	char *etag;
	int overflow;
	CURL *e;
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t len = size * n;

	if (s->status == 0)
		curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status >= 200 && s->status < 300) {
		if (s->resp != NULL && gk_buf_append(s->resp, p, len) != 0) {
			s->overflow = 1;
			return 0;
		}
		return len;
	}
	if (gk_buf_append(&s->err, p, len) != 0)
		s->overflow = 1;	/* keep going: the head is enough */
	return len;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t len = size * n, vl;

	if (s->etag != NULL && len > 5 && strncasecmp(p, "etag:", 5) == 0) {
		const char *v = p + 5;

		while (v < p + len && (*v == ' ' || *v == '\t'))
			v++;
		vl = (size_t)(p + len - v);
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
		    v[vl - 1] == ' '))
			vl--;
		if (vl < 127) {
			memcpy(s->etag, v, vl);
			s->etag[vl] = '\0';
		}
	}
	return len;
}

/* Sets last_status/last_err from a failed response; returns the code. */
int
s3_map_error(s3_client *c, long status, CURLcode cr, gk_slice body,
    const char *what)
{
	gk_buf code, msg;
	char st[16];
	int r;

	if (cr != CURLE_OK) {
		if (cr == CURLE_OPERATION_TIMEDOUT) {
			snprintf(st, sizeof(st), "%u", c->timeout);
			set_err(504, "the bucket endpoint did not answer in "
			    "time (%s s): %s", st, what);
		} else {
			set_err(502, "cannot reach the bucket endpoint: %s (%s)",
			    curl_easy_strerror(cr), what);
		}
		return GK_ERR_UNAVAILABLE;
	}
	gk_buf_init(&code, 256);
	gk_buf_init(&msg, 512);
	if (body.len > 0 && s3_error_parse(body, &code, &msg) == 0 &&
	    code.len > 0) {
		/* only S3's error code: an identifier, never raw XML */
		size_t i;

		for (i = 0; i < code.len; i++) {
			if (!((code.data[i] >= 'A' && code.data[i] <= 'Z') ||
			    (code.data[i] >= 'a' && code.data[i] <= 'z') ||
			    (code.data[i] >= '0' && code.data[i] <= '9')))
				code.data[i] = '?';
		}
	} else {
		gk_buf_reset(&code);
		if (gk_buf_printf(&code, "HTTP %ld", status) != 0)
			gk_buf_reset(&code);
	}
	if (status == 404) {
		set_err(404, "%s (%s)", code.len ? (char *)code.data : "Not Found",
		    what);
		r = GK_ERR_NOT_FOUND;
	} else if (status == 403 || status == 401) {
		set_err(502, "the bucket refused the gatekeeper's request: %s "
		    "(%s); check the gatekeeper's S3 credentials and bucket "
		    "policy", code.len ? (char *)code.data : "AccessDenied",
		    what);
		r = GK_ERR_DENIED;
	} else {
		set_err(502, "the bucket answered an error: %s (%s)",
		    code.len ? (char *)code.data : "?", what);
		r = GK_ERR_UNAVAILABLE;
	}
	if (code.len > 0 && code.data[0] != 'H')	/* not "HTTP n" */
		snprintf(last_code, sizeof(last_code), "%.*s",
		    (int)code.len, (const char *)code.data);
	gk_buf_release(&code);
	gk_buf_release(&msg);
	return r;
}

static void
backoff(unsigned attempt)
{
	useconds_t us = 100000u << (attempt > 5 ? 5 : attempt);

	usleep(us);
}

int
s3_client_call(s3_client *c, const s3_call *call, long *status_out)
{
	char phash[65], md5b64[32];
	gk_buf url, path, lines, md5buf;
	s3_header hs[24];
	size_t nh = 0, i;
	s3_creds cr;
	struct sink s;
	CURLcode cres = CURLE_OK;
	unsigned attempt;
	int r = GK_ERR_INTERNAL, have_creds = 0;

	memset(&s, 0, sizeof(s));
	gk_buf_init(&url, 16384);
	gk_buf_init(&path, 16384);
	gk_buf_init(&lines, 65536);
	gk_buf_init(&md5buf, 64);
	gk_buf_init(&s.err, ERR_BODY_CAP);
	s.resp = call->resp;
	s.etag = call->etag;
	if (s.etag != NULL)
		s.etag[0] = '\0';
	if (status_out != NULL)
		*status_out = 0;
	if (call->n_headers > 20) {
		r = GK_ERR_INVALID;
		goto out;
	}
	if ((r = s3_client_creds(c, &cr)) != 0) {
		set_err(502, "no S3 credentials available");
		goto out;
	}
	have_creds = 1;
	if ((r = s3_object_url(c->t, call->key, &url, NULL, &path)) != 0 ||
	    (call->query != NULL && call->query[0] != '\0' &&
	    (r = gk_buf_printf(&url, "?%s", call->query)) != 0))
		goto out;
	for (i = 0; i < call->n_headers; i++)
		hs[nh++] = call->headers[i];
	if (call->body.len > 0 && call->body.len <= SMALL_RESP_CAP) {
		uint8_t d[16];
		unsigned int dl = 0;

		if (EVP_Digest(call->body.p, call->body.len, d, &dl, EVP_md5(),
		    NULL) != 1 || gk_b64_encode(d, dl, &md5buf) != 0) {
			r = GK_ERR_INTERNAL;
			goto out;
		}
		snprintf(md5b64, sizeof(md5b64), "%s", (char *)md5buf.data);
		hs[nh].name = gk_slice_str("content-md5");
		hs[nh++].value = gk_slice_str(md5b64);
		s3_sha256_hex(call->body, phash);
	} else if (call->body.len > 0) {
		snprintf(phash, sizeof(phash), "%s", S3_UNSIGNED_PAYLOAD);
	} else {
		snprintf(phash, sizeof(phash), "%s", S3_EMPTY_SHA256);
	}
	for (attempt = 0;; attempt++) {
		CURL *e;
		struct curl_slist *hl;
		int reusable;

		gk_buf_reset(&lines);
		gk_buf_reset(&s.err);
		if (s.resp != NULL)
			gk_buf_reset(s.resp);
		s.status = 0;
		s.overflow = 0;
		if ((r = s3_sign_headers(c->t, &cr, call->method,
		    gk_slice_of(path.data, path.len),
		    gk_slice_str(call->query), hs, nh, phash, gk_now_s(),
		    &lines)) != 0)
			goto out;
		if ((hl = s3_lines_to_slist(&lines, NULL)) == NULL ||
		    (hl = curl_slist_append(hl, "Expect:")) == NULL ||
		    (hl = curl_slist_append(hl, "Content-Type:")) == NULL) {
			r = GK_ERR_NOMEM;
			goto out;
		}
		if ((e = s3_easy_get(c)) == NULL) {
			curl_slist_free_all(hl);
			r = GK_ERR_NOMEM;
			goto out;
		}
		s.e = e;
		s3_easy_setup(c, e, (long)c->timeout);
		curl_easy_setopt(e, CURLOPT_URL, (char *)url.data);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, &s);
		if (strcmp(call->method, "HEAD") == 0) {
			curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		} else if (strcmp(call->method, "GET") != 0) {
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, call->method);
			if (call->body.len > 0 || strcmp(call->method, "POST") == 0 ||
			    strcmp(call->method, "PUT") == 0) {
				curl_easy_setopt(e, CURLOPT_POSTFIELDS,
				    call->body.p ? (const char *)call->body.p : "");
				curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				    (curl_off_t)call->body.len);
			}
		}
		if (call->mtime != NULL)
			curl_easy_setopt(e, CURLOPT_FILETIME, 1L);
		cres = curl_easy_perform(e);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &s.status);
		if (cres == CURLE_OK && call->length != NULL) {
			curl_off_t cl = -1;

			curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
			    &cl);
			*call->length = cl > 0 ? (uint64_t)cl : 0;
		}
		if (cres == CURLE_OK && call->mtime != NULL) {
			curl_off_t ft = -1;

			curl_easy_getinfo(e, CURLINFO_FILETIME_T, &ft);
			*call->mtime = ft > 0 ? (int64_t)ft : 0;
		}
		reusable = cres == CURLE_OK;
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
		s3_easy_put(c, e, reusable);
		curl_slist_free_all(hl);
		gk_wipe(lines.data, lines.len);
		if (status_out != NULL)
			*status_out = s.status;
		if (cres == CURLE_OK && s.status >= 200 && s.status < 300) {
			if (s.overflow) {
				set_err(502, "the bucket's answer is too "
				    "large");
				r = GK_ERR_TOO_LARGE;
				goto out;
			}
			r = 0;
			goto out;
		}
		if (call->idempotent && attempt < c->retries &&
		    (cres != CURLE_OK || s.status >= 500)) {
			gk_debug("S3 %s: retrying (attempt %u): %s / %ld",
			    call->method, attempt + 1, curl_easy_strerror(cres),
			    s.status);
			backoff(attempt);
			continue;
		}
		r = s3_map_error(c, s.status, cres,
		    gk_slice_of(s.err.data, s.err.len), call->method);
		goto out;
	}
out:
	if (have_creds)
		s3_creds_release(&cr);
	gk_buf_release(&url);
	gk_buf_release(&path);
	gk_buf_release(&lines);
	gk_buf_release(&md5buf);
	gk_buf_release(&s.err);
	return r;
}

/* ---- HEAD ----------------------------------------------------------- */

int
s3_client_head(s3_client *c, gk_slice key, uint64_t *size, int64_t *mtime)
{
	gk_buf resp;
	s3_header h = { gk_slice_str("range"), gk_slice_str("bytes=0-0") };
	s3_call call;
	long st = 0;
	int r;

	memset(&call, 0, sizeof(call));
	call.method = "HEAD";
	call.key = key;
	call.idempotent = 1;
	call.length = size;
	call.mtime = mtime;
	r = s3_client_call(c, &call, &st);
	if (r == 0 || st == 404 || st == 0)
		return r;
	/* a failed HEAD has no body: a one-byte GET tells S3's reason */
	gk_buf_init(&resp, 4096);
	memset(&call, 0, sizeof(call));
	call.method = "GET";
	call.key = key;
	call.headers = &h;
	call.n_headers = 1;
	call.resp = &resp;
	r = s3_client_call(c, &call, &st);
	gk_buf_release(&resp);
	if (r == 0) {
		set_err(502, "the bucket refused HEAD but allowed GET");
		r = GK_ERR_UNAVAILABLE;
	}
	return r;
}

/* ---- listing ---------------------------------------------------------- */

int
s3_client_list(s3_client *c, gk_slice prefix, gk_slice start_after,
    s3_list_fn fn, void *arg)
{
	gk_buf q, page, next;
	s3_call call;
	int r = 0, truncated = 1, pages = 0;

	gk_buf_init(&q, 16384);
	gk_buf_init(&page, LIST_PAGE_CAP);
	gk_buf_init(&next, 16384);
	while (truncated) {
		gk_buf_reset(&q);
		/* the canonical order, so the wire query is the signed one */
		if (next.len > 0 &&
		    ((r = gk_buf_append_str(&q, "continuation-token=")) != 0 ||
		    (r = gk_pct_encode(gk_slice_of(next.data, next.len), 0,
		    &q)) != 0 || (r = gk_buf_append(&q, "&", 1)) != 0))
			goto out;
		if ((r = gk_buf_append_str(&q, "list-type=2&prefix=")) != 0 ||
		    (r = gk_pct_encode(prefix, 0, &q)) != 0)
			goto out;
		if (next.len == 0 && start_after.len > 0 &&
		    ((r = gk_buf_append_str(&q, "&start-after=")) != 0 ||
		    (r = gk_pct_encode(start_after, 0, &q)) != 0))
			goto out;
		memset(&call, 0, sizeof(call));
		call.method = "GET";
		call.query = (const char *)q.data;
		call.idempotent = 1;
		call.resp = &page;
		if ((r = s3_client_call(c, &call, NULL)) != 0)
			goto out;
		r = s3_list_parse(gk_slice_of(page.data, page.len), fn, arg,
		    &truncated, &next);
		if (r == GK_ERR_INVALID)
			set_err(502, "the bucket's listing is not valid XML");
		if (r != 0)
			goto out;
		if (truncated && next.len == 0) {
			set_err(502, "the bucket's listing is truncated without "
			    "a continuation token");
			r = GK_ERR_UNAVAILABLE;
			goto out;
		}
		if (++pages > 100000) {
			r = GK_ERR_TOO_LARGE;
			goto out;
		}
	}
out:
	gk_buf_release(&q);
	gk_buf_release(&page);
	gk_buf_release(&next);
	return r;
}
