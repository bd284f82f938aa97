/*
 * server.c - the HTTP server on GNU libmicrohttpd: a thread pool, limits,
 * one request state per connection, the audit commit before any grant
 * (the connection is suspended while the writer thread commits, so many
 * requests share one transaction), and rendering of gate replies.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "gate/gate.h"
#include "store/store.h"

#define STREAM_BLOCK (64u * 1024)
#define DISCARD_MAX (1024u * 1024)
/* What is still read of an upload's body once it is refused. */
#define REFUSED_BODY_MAX (64u * 1024)
/* At shutdown, how long a batch being written may still take (the audit
 * store's own lock wait is 5 s). */
#define STOP_AUDIT_WAIT_MS 7000

struct gk_http {
	struct MHD_Daemon *d;
	gk_app *app;
	unsigned port;
	http_tls *tls;		/* NULL: plain HTTP */
	char hsts[64];		/* Strict-Transport-Security value, or "" */
	struct MHD_Daemon *redir; /* plain listener redirecting to HTTPS */
	unsigned redir_port;
	uint8_t id_prefix[8];
	_Atomic uint64_t id_counter;
	_Atomic int inflight;	/* connections suspended for the audit */
	_Atomic int active;	/* requests begun and not yet completed */
	http_guard *guard;	/* slow-client watchdog */
	int stopping;		/* under tickets_lock: no more suspending */
	struct ticket *pending;	/* under tickets_lock: suspended requests */
};

/* Per connection (libmicrohttpd's socket context). */
struct sconn {
	http_conn *watch;	/* the watchdog's entry, or NULL */
	struct rq *rq;		/* the request under way, or NULL */
};

/*
 * A suspended request's claim on the audit's answer. The audit calls
 * audit_done exactly once per ticket, possibly after shutdown has
 * already answered the request and freed it (and the server): so the
 * ticket, not the request, is the callback's argument, rq is cleared when
 * the request is resumed, and tickets live under one static lock.
 */
struct ticket {
	struct ticket *prev, *next;
	struct rq *rq;		/* NULL once resumed */
};

static pthread_mutex_t tickets_lock = PTHREAD_MUTEX_INITIALIZER;

enum rq_state { RQ_NEW, RQ_BODY, RQ_WAIT, RQ_AUDITED, RQ_DONE };

struct rq {
	gk_http *h;
	struct MHD_Connection *conn;
	struct sconn *sc;
	_Atomic int state;
	int audit_result;
	char *uri;
	int refuse;		/* head refused: status to answer, then close */
	const char *refuse_why;
	size_t discarded;
	gk_req req;
	gk_reply rep;
	gate_upload *up;
	int is_upload;
	gk_buf fwd_hdr[2];	/* X-Forwarded-For, Forwarded: lines joined */
	int fwd_has[2], fwd_over[2];
};

static void
rq_free(struct rq *rq)
{
	if (rq == NULL)
		return;
	if (rq->sc != NULL && rq->sc->rq == rq)
		rq->sc->rq = NULL;
	atomic_fetch_sub(&rq->h->active, 1);
	gate_upload_free(rq->up);
	gate_reply_release(&rq->rep);
	policy_free(rq->req.policy);
	gk_buf_release(&rq->fwd_hdr[0]);
	gk_buf_release(&rq->fwd_hdr[1]);
	free(rq->uri);
	free(rq);
}

static struct sconn *
sconn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/*
 * MHD hands us the raw URI here, before any unescaping and before it
 * splits the query into arguments. A target we refuse is answered on the
 * handler's first call; its query is emptied first, in libmicrohttpd's
 * own buffer (the URI is NUL-terminated there and parsed right after this
 * call), so that thousands of parameters cannot exhaust the connection's
 * memory before we can answer.
 */
static void *
uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	gk_http *h = cls;
	struct sconn *sc = sconn_of(conn);
	struct rq *rq;
	size_t n = strlen(uri);
	char *q;

	if (sc == NULL || (rq = calloc(1, sizeof(*rq))) == NULL)
		return NULL;
	rq_free(sc->rq);	/* one that libmicrohttpd never completed */
	sc->rq = rq;
	rq->sc = sc;
	atomic_fetch_add(&h->active, 1);
	rq->h = h;
	rq->conn = conn;
	gate_reply_init(&rq->rep);
	rq->refuse = http_uri_check(gk_slice_of(uri, n), &rq->refuse_why);
	if (rq->refuse != 0) {
		if ((q = strchr(uri, '?')) != NULL && q[1] != '\0')
			q[1] = '\0';	/* (see above) */
		n = 0;
	}
	if ((rq->uri = malloc(n + 1)) == NULL) {
		rq_free(rq);
		return NULL;
	}
	memcpy(rq->uri, uri, n);
	rq->uri[n] = '\0';
	return rq;
}

/* libmicrohttpd's connection notifications: the watchdog's entries. */
static void
conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	gk_http *h = cls;
	struct sconn *sc;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((sc = calloc(1, sizeof(*sc))) == NULL)
			return;	/* uri_log refuses the connection */
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		sc->watch = http_guard_open(h->guard, ci != NULL ?
		    ci->connect_fd : -1);
		*socket_context = sc;
		return;
	}
	if ((sc = *socket_context) == NULL)
		return;
	rq_free(sc->rq);
	http_guard_close(h->guard, sc->watch);
	free(sc);
	*socket_context = NULL;
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	gk_http *h = cls;
	struct rq *rq = *con_cls;
	struct sconn *sc = sconn_of(conn);

	if (rq != NULL && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
	    rq->rep.reader != NULL)
		gk_warn("request %s ended before the body was sent (code %d)",
		    rq->req.request_id, (int)toe);
	if (sc != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		http_guard_request_done(h->guard, sc->watch);
	rq_free(rq);
	*con_cls = NULL;
}

/* Feeds each header field to the head checks, in the order received;
 * a field waits for the next one, which tells whether it was cut. */
struct head_walk {
	http_head head;
	gk_slice name, value;	/* the field waiting */
	int pending;
	int in_line;		/* its value lies in its own line */
};

/*
 * libmicrohttpd parses the head in place and cuts a field value at a NUL
 * byte without a word. Its line ends became NULs too, so the bytes after
 * a value's terminator up to the next field name (or, for the last field,
 * up to the next NUL, CR or LF: the empty line ends the head) are NUL, CR
 * or LF unless the value held a NUL. Only looked at when the value lies
 * where its own line is, after its name and before the next one.
 */
static int
value_was_cut(gk_slice value, const char *next_key)
{
	const char *p = (const char *)value.p + value.len + 1, *end;

	if (next_key != NULL) {
		if (next_key < p)
			return 0;
		end = next_key;
	} else {
		end = p + HTTP_FIELD_MAX;
	}
	for (; p < end; p++) {
		if (*p == '\0' || *p == '\r' || *p == '\n') {
			if (next_key == NULL)
				return 0;
			continue;
		}
		if (*p != ' ' && *p != '\t')
			return 1;
	}
	return 0;
}

static void
head_flush(struct head_walk *w, const char *next_key)
{
	if (!w->pending)
		return;
	http_head_field(&w->head, w->name, w->value, w->in_line &&
	    value_was_cut(w->value, next_key));
	w->pending = 0;
}

static enum MHD_Result
head_field_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct head_walk *w = cls;

	(void)kind;
	if (key == NULL)
		return MHD_YES;
	if (value == NULL)
		value = "";
	head_flush(w, key);
	w->name = gk_slice_of(key, key_size);
	w->value = gk_slice_of(value, value_size);
	w->in_line = value > key && (size_t)(value - key) <= HTTP_FIELD_MAX;
	w->pending = 1;
	return MHD_YES;
}

/* 0 if the head passes http_head_verdict, else the status to answer. */
static int
check_head(struct rq *rq, const char *version, const char **why)
{
	struct head_walk w;

	memset(&w, 0, sizeof(w));
	http_head_init(&w.head);
	MHD_get_connection_values_n(rq->conn, MHD_HEADER_KIND, head_field_cb,
	    &w);
	head_flush(&w, NULL);
	return http_head_verdict(&w.head, version != NULL &&
	    strcmp(version, "HTTP/1.1") == 0, why);
}

static gk_slice
header(struct MHD_Connection *conn, const char *name, int *present)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    name);

	if (present != NULL)
		*present = v != NULL;
	return gk_slice_str(v);
}

/* Joins every line of X-Forwarded-For and of Forwarded with ", ". */
static enum MHD_Result
fwd_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct rq *rq = cls;
	int i;

	(void)kind;
	if (key == NULL || value == NULL)
		return MHD_YES;
	if (strcasecmp(key, "X-Forwarded-For") == 0)
		i = 0;
	else if (strcasecmp(key, "Forwarded") == 0)
		i = 1;
	else
		return MHD_YES;
	if (rq->fwd_hdr[i].cap == 0)
		gk_buf_init(&rq->fwd_hdr[i], GK_CAP_LINE);
	if ((rq->fwd_has[i] && gk_buf_append_str(&rq->fwd_hdr[i], ", ") != 0) ||
	    gk_buf_append_str(&rq->fwd_hdr[i], value) != 0)
		rq->fwd_over[i] = 1;
	rq->fwd_has[i] = 1;
	return MHD_YES;
}

/* The client address, behind trusted proxies too, and its policy. */
static void
resolve_client(struct rq *rq, const gk_addr *peer)
{
	gk_slice v[2];
	int i;

	MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, fwd_header_cb,
	    rq);
	for (i = 0; i < 2; i++) {
		v[i] = gk_slice_of(rq->fwd_hdr[i].data, rq->fwd_hdr[i].len);
		if (rq->fwd_over[i])	/* too long: a value that never parses */
			v[i] = gk_slice_str("\001");
	}
	gate_req_resolve(rq->h->app, &rq->req, peer, v[0], rq->fwd_has[0],
	    v[1], rq->fwd_has[1]);
}

static void
fill_req(struct rq *rq, const char *method)
{
	gk_req *req = &rq->req;
	const union MHD_ConnectionInfo *ci;
	const char *q;
	uint8_t id[16];
	uint64_t n;
	int i;

	req->method = method;
	req->start_us = gk_now_us();
	req->start_mono_us = gk_mono_us();
	q = strchr(rq->uri, '?');
	if (q != NULL) {
		req->path = gk_slice_of(rq->uri, (size_t)(q - rq->uri));
		req->query = gk_slice_str(q + 1);
	} else {
		req->path = gk_slice_str(rq->uri);
	}
	req->origin = header(rq->conn, "Origin", &req->has_origin);
	req->sec_fetch_site = header(rq->conn, "Sec-Fetch-Site",
	    &req->has_sec_fetch_site);
	req->user_agent = header(rq->conn, "User-Agent", NULL);
	req->range = header(rq->conn, "Range", NULL);
	req->accept = header(rq->conn, "Accept", NULL);
	req->content_type = header(rq->conn, "Content-Type", NULL);
	req->content_length = header(rq->conn, "Content-Length",
	    &req->has_content_length);
	req->authorization = header(rq->conn, "Authorization", NULL);
	req->cookie = header(rq->conn, "Cookie", NULL);
	req->csrf = header(rq->conn, "X-CSRF-Token", NULL);
	ci = MHD_get_connection_info(rq->conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL ||
	    policy_addr_from_sockaddr(ci->client_addr, &req->client) != 0) {
		/* unknown peer: the unspecified address, which no allow list
		 * with sense contains */
		memset(&req->client, 0, sizeof(req->client));
	}
	resolve_client(rq, &req->client);
	memcpy(id, rq->h->id_prefix, 8);
	n = atomic_fetch_add_explicit(&rq->h->id_counter, 1,
	    memory_order_relaxed);
	for (i = 0; i < 8; i++)	/* big-endian: ids sort in arrival order */
		id[8 + i] = (uint8_t)(n >> (56 - 8 * i));
	gk_hex_encode(id, sizeof(id), req->request_id);
}

static int
add(struct MHD_Response *resp, const char *name, const char *value)
{
	return MHD_add_response_header(resp, name, value) == MHD_YES ? 0 :
	    GK_ERR_INTERNAL;
}

static ssize_t
stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct rq *rq = cls;
	gk_reply *rep = &rq->rep;
	size_t want, got = 0;
	int r;

	if (pos >= rep->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	want = max;
	if (want > rep->len - pos)
		want = (size_t)(rep->len - pos);
	r = store_reader_read(rep->reader, rep->off + pos, (uint8_t *)buf,
	    want, &got);
	if (r != 0 || got == 0) {
		gk_error("request %s: object read failed mid-stream: %s",
		    rq->req.request_id, r ? gk_err_str(r) : "short object");
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	return (ssize_t)got;
}

static enum MHD_Result
send_reply(struct rq *rq)
{
	gk_reply *rep = &rq->rep;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char date[40], retry[16];
	size_t blen = 0;
	char *body;
	int r = 0;

	if (rep->reader != NULL && (rep->status == 200 || rep->status == 206)) {
		resp = MHD_create_response_from_callback(rep->len,
		    STREAM_BLOCK, stream_cb, rq, NULL);
	} else {
		body = gk_buf_detach(&rep->body, &blen);
		resp = MHD_create_response_from_buffer(blen, body ? body : "",
		    body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			free(body);
	}
	if (resp == NULL)
		return MHD_NO;
	if (rep->content_type != NULL)
		r |= add(resp, "Content-Type", rep->content_type);
	if (rep->acao != NULL)	/* an allowed origin only, never "null" */
		r |= add(resp, "Access-Control-Allow-Origin", rep->acao);
	r |= add(resp, "Vary", "Origin");
	r |= add(resp, "Cache-Control", "no-store, must-revalidate");
	r |= add(resp, "X-Content-Type-Options", "nosniff");
	r |= add(resp, "Access-Control-Expose-Headers",
	    "X-Request-Id, Content-Range, Content-Length, Location, "
	    "Retry-After");
	if (rq->req.request_id[0] != '\0')
		r |= add(resp, "X-Request-Id", rq->req.request_id);
	if (rep->location != NULL)
		r |= add(resp, "Location", rep->location);
	if (rep->allow != NULL)
		r |= add(resp, "Allow", rep->allow);
	if (rep->retry_after > 0) {
		snprintf(retry, sizeof(retry), "%u", rep->retry_after);
		r |= add(resp, "Retry-After", retry);
	}
	if (rep->content_range != NULL)
		r |= add(resp, "Content-Range", rep->content_range);
	if (rep->set_cookie != NULL)
		r |= add(resp, "Set-Cookie", rep->set_cookie);
	if (rep->csp != NULL) {
		r |= add(resp, "Content-Security-Policy", rep->csp);
		r |= add(resp, "X-Frame-Options", "DENY");
		r |= add(resp, "Referrer-Policy", "no-referrer");
	}
	if (rq->h->hsts[0] != '\0')
		r |= add(resp, "Strict-Transport-Security", rq->h->hsts);
	if (rep->reader != NULL) {
		r |= add(resp, "Accept-Ranges", "bytes");
		gk_time_http(rep->mtime, date, sizeof(date));
		r |= add(resp, "Last-Modified", date);
	}
	if (rq->refuse != 0)	/* a refused head: the framing is unsure */
		r |= add(resp, "Connection", "close");
	if (rep->status == 204 && rep->audited == 0) {
		/* CORS preflight */
		r |= add(resp, "Access-Control-Allow-Methods",
		    "GET, HEAD, POST, PUT, OPTIONS");
		r |= add(resp, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type, Range");
		r |= add(resp, "Access-Control-Max-Age", "600");
	}
	if (r != 0) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(rq->conn, (unsigned)rep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Resumes t's request with result, once; tickets_lock held. */
static void
ticket_resume_locked(struct ticket *t, int result)
{
	struct rq *rq = t->rq;
	gk_http *h;

	if (rq == NULL)
		return;		/* answered already (shutdown) */
	h = rq->h;
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		h->pending = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->rq = NULL;
	rq->audit_result = result;
	atomic_store(&rq->state, RQ_AUDITED);
	atomic_fetch_sub(&h->inflight, 1);
	MHD_resume_connection(rq->conn);
}

static void
audit_done(void *arg, int result)
{
	struct ticket *t = arg;

	pthread_mutex_lock(&tickets_lock);
	ticket_resume_locked(t, result);
	pthread_mutex_unlock(&tickets_lock);
	free(t);
}

static enum MHD_Result answer(struct rq *rq);

static enum MHD_Result
decide(struct rq *rq)
{
	gk_http *h = rq->h;
	gk_app *app = h->app;
	gk_audit_record rec;
	struct ticket *t;
	const char *ua, *origin;
	int r;

	http_guard_body_done(rq->h->guard, rq->sc->watch);
	if (rq->is_upload) {
		if (rq->up != NULL)
			gate_upload_end(rq->up, &rq->rep);
		else
			gate_reply_finish(app, &rq->req, &rq->rep);
	} else {
		gate_handle(app, &rq->req, &rq->rep);
	}
	if (!rq->rep.audited)
		return send_reply(rq);
	ua = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
	    "User-Agent");
	origin = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
	    "Origin");
	gate_audit_record(&rq->req, &rq->rep, &rec);
	rec.user_agent = ua;
	rec.origin = origin;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		rq->audit_result = GK_ERR_UNAVAILABLE;
		return answer(rq);
	}
	pthread_mutex_lock(&tickets_lock);
	if (h->stopping) {
		/* shutting down: nothing waits on the audit any more; a
		 * grant becomes a 503 (recorded as such), a refusal is
		 * answered while its record is written */
		pthread_mutex_unlock(&tickets_lock);
		free(t);
		if (rq->rep.grant) {
			gate_reply_error(&rq->rep, 503, "error",
			    "Service Unavailable: shutting down");
			gate_audit_record(&rq->req, &rq->rep, &rec);
			rec.user_agent = ua;
			rec.origin = origin;
		}
		if ((r = audit_submit(app->audit, &rec, NULL, NULL)) != 0 &&
		    r != GK_ERR_TOO_LARGE)
			gk_debug("request %s: audit record of a refusal not "
			    "written", rq->req.request_id);
		return send_reply(rq);
	}
	t->rq = rq;
	t->next = h->pending;
	if (h->pending != NULL)
		h->pending->prev = t;
	h->pending = t;
	atomic_store(&rq->state, RQ_WAIT);
	atomic_fetch_add(&h->inflight, 1);
	MHD_suspend_connection(rq->conn);
	pthread_mutex_unlock(&tickets_lock);
	if ((r = audit_submit(app->audit, &rec, audit_done, t)) != 0) {
		/* a refusal dropped to keep room for grants is counted by
		 * the audit and answered as usual, without a log line */
		pthread_mutex_lock(&tickets_lock);
		ticket_resume_locked(t, r == GK_ERR_TOO_LARGE &&
		    !rq->rep.grant ? 0 : GK_ERR_UNAVAILABLE);
		pthread_mutex_unlock(&tickets_lock);
		free(t);
	}
	return MHD_YES;
}

/*
 * An upload refused in the middle of a body too long to read to its end:
 * its record is submitted without waiting (a refusal grants nothing) and
 * the connection is closed without an answer.
 */
static enum MHD_Result
refuse_and_close(struct rq *rq)
{
	gk_app *app = rq->h->app;
	gk_audit_record rec;
	int r;

	gate_upload_end(rq->up, &rq->rep);
	gate_audit_record(&rq->req, &rq->rep, &rec);
	rec.user_agent = MHD_lookup_connection_value(rq->conn,
	    MHD_HEADER_KIND, "User-Agent");
	rec.origin = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
	    "Origin");
	if ((r = audit_submit(app->audit, &rec, NULL, NULL)) != 0 &&
	    r != GK_ERR_TOO_LARGE) {
		gate_count(app, GK_STAT_AUDIT_FAILURES);
		gk_debug("request %s: audit record of a refusal not written",
		    rq->req.request_id);
	}
	gk_debug("request %s: upload refused (%d); the rest of its body is "
	    "not read, connection closed", rq->req.request_id,
	    rq->rep.status);
	return MHD_NO;
}

static enum MHD_Result
answer(struct rq *rq)
{
	gk_app *app = rq->h->app;


	if (rq->audit_result != 0) {
		gate_count(app, GK_STAT_AUDIT_FAILURES);
		if (rq->rep.grant) {
			gk_error("request %s: audit record not written; "
			    "refusing the grant", rq->req.request_id);
			gate_reply_error(&rq->rep, 503, "error",
			    "Service Unavailable: audit log unavailable");
		} else {
			/* the writer logs the outage once; a line per refusal
			 * would let a flood fill the log's disk instead */
			gk_debug("request %s: audit record of a refusal not "
			    "written", rq->req.request_id);
		}
	} else if (rq->up != NULL && rq->rep.grant) {
		gate_upload_commit(rq->up, &rq->rep);
	}
	return send_reply(rq);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct rq *rq = *con_cls;

	(void)cls;
	(void)url;
	if (rq == NULL)
		return MHD_NO;
	switch (atomic_load(&rq->state)) {
	case RQ_NEW:
		http_guard_head_done(rq->h->guard, rq->sc->watch);
		fill_req(rq, method);
		if (rq->refuse == 0)
			rq->refuse = check_head(rq, version, &rq->refuse_why);
		if (rq->refuse != 0) {
			/* answered now, before any body, and closed */
			http_guard_body_done(rq->h->guard, rq->sc->watch);
			gate_reply_error(&rq->rep, rq->refuse, "deny",
			    rq->refuse_why != NULL ? rq->refuse_why :
			    "Bad Request");
			rq->rep.protocol = "http";
			gate_reply_finish(rq->h->app, &rq->req, &rq->rep);
			atomic_store(&rq->state, RQ_DONE);
			return send_reply(rq);
		}
		rq->is_upload = gate_is_upload(&rq->req);
		if (rq->is_upload)
			gate_upload_begin(rq->h->app, &rq->req, &rq->up,
			    &rq->rep);
		atomic_store(&rq->state, RQ_BODY);
		if (rq->is_upload && (rq->up == NULL ||
		    gate_upload_refused(rq->up))) {
			/* refused before the body (rate, token, declared
			 * size): answered now, libmicrohttpd reads none of
			 * the body and closes after the answer */
			return decide(rq);
		}
		return MHD_YES;
	case RQ_BODY:
		if (*upload_data_size > 0 && rq->is_upload &&
		    gate_upload_refused(rq->up)) {
			/* refused in the middle: libmicrohttpd cannot answer
			 * before the body ends, so at most a small rest is
			 * read and dropped, then the connection closes */
			rq->discarded += *upload_data_size;
			*upload_data_size = 0;
			if (rq->discarded > REFUSED_BODY_MAX)
				return refuse_and_close(rq);
			return MHD_YES;
		}
		if (*upload_data_size > 0) {
			if (rq->up != NULL) {
				gate_upload_feed(rq->up,
				    (const uint8_t *)upload_data,
				    *upload_data_size);
			} else {
				rq->discarded += *upload_data_size;
				if (rq->discarded > DISCARD_MAX)
					return MHD_NO;
			}
			*upload_data_size = 0;
			return MHD_YES;
		}
		return decide(rq);
	case RQ_WAIT:
		return MHD_YES;
	case RQ_AUDITED:
		return answer(rq);
	case RQ_DONE:		/* answered early: the rest is dropped */
		*upload_data_size = 0;
		return MHD_YES;
	}
	return MHD_NO;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	gk_debug("libmicrohttpd: %s", msg);
}

/* ---- the plain listener that only redirects to HTTPS -------------------- */

static void *
redir_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)conn;
	if (strlen(uri) > HTTP_URI_MAX)
		return strdup("");	/* answered 414 */
	return strdup(uri);
}

static void
redir_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

/*
 * Every request gets 301 (GET, HEAD) or 308 (other methods, which keeps
 * the method and body) to public_url followed by the request's path and
 * query. The Host header is never used, so nothing here can redirect to a
 * foreign site. Not a decision: nothing is audited.
 */
static enum MHD_Result
redir_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	gk_http *h = cls;
	const char *uri = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status;
	gk_buf loc;

	(void)url;
	(void)version;
	(void)upload_data;
	if (uri == NULL)
		return MHD_NO;
	if (*upload_data_size > 0) {	/* a body is never read */
		*upload_data_size = 0;
		return MHD_YES;
	}
	resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	status = (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) ?
	    301 : 308;
	gk_buf_init(&loc, HTTP_URI_MAX + 2048);
	if (uri[0] != '/' ||
	    gk_buf_printf(&loc, "%s%s", h->app->cfg->public_url, uri) != 0) {
		status = uri[0] == '\0' ? 414 : 400;
	} else if (add(resp, "Location", (const char *)loc.data) != 0) {
		gk_buf_release(&loc);
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	gk_buf_release(&loc);
	(void)add(resp, "Cache-Control", "no-store");
	(void)add(resp, "Connection", "close");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int
redirect_start(gk_http *h, const struct sockaddr_storage *main_ss)
{
	const gk_config *cfg = h->app->cfg;
	struct sockaddr_storage ss = *main_ss;
	const union MHD_DaemonInfo *di;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
	    MHD_USE_ERROR_LOG;

	if (ss.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_port =
		    htons((uint16_t)cfg->redirect_port);
		flags |= MHD_USE_IPv6;
	} else {
		((struct sockaddr_in *)&ss)->sin_port =
		    htons((uint16_t)cfg->redirect_port);
	}
	h->redir = MHD_start_daemon(flags, (uint16_t)cfg->redirect_port, NULL,
	    NULL, redir_handler, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->conn_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip_conn_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->conn_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_URI_LOG_CALLBACK, redir_uri, h,
	    MHD_OPTION_NOTIFY_COMPLETED, redir_completed, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_END);
	if (h->redir == NULL) {
		gk_error("cannot listen on %s port %u (redirect_port)",
		    cfg->listen, cfg->redirect_port);
		return GK_ERR_IO;
	}
	di = MHD_get_daemon_info(h->redir, MHD_DAEMON_INFO_BIND_PORT);
	h->redir_port = di != NULL ? di->port : cfg->redirect_port;
	return 0;
}

int
http_server_start(gk_app *app, gk_http **out)
{
	const gk_config *cfg = app->cfg;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	const union MHD_DaemonInfo *di;
	unsigned threads = cfg->threads;
	unsigned flags;
	struct MHD_OptionItem tls_opts[3] = {
		{ MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	char err[512];
	gk_http *h;
	long ncpu;
	int r;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->listen, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)cfg->port);
		flags = 0;
	} else if (inet_pton(AF_INET6, cfg->listen, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)cfg->port);
		flags = MHD_USE_IPv6;
	} else {
		gk_error("listen address '%s' is not an IP address", cfg->listen);
		return GK_ERR_CONFIG;
	}
	if (threads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu > 0 ? (unsigned)ncpu : 1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return GK_ERR_NOMEM;
	h->app = app;
	if (gk_random(h->id_prefix, sizeof(h->id_prefix)) != 0 ||
	    http_guard_start(cfg->head_timeout, cfg->body_timeout,
	    cfg->body_min_rate, &h->guard) != 0) {
		free(h);
		return GK_ERR_INTERNAL;
	}
	if (cfg->tls_cert[0] != '\0') {
		if ((r = http_tls_new(cfg->tls_cert, cfg->tls_key,
		    cfg->tls_ocsp, &h->tls, err, sizeof(err))) != 0) {
			gk_error("%s", err);
			http_guard_stop(h->guard);
			free(h);
			return r;
		}
		flags |= MHD_USE_TLS;
		tls_opts[0] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_CERT_CALLBACK2, 0,
		    http_tls_cert_callback() };
		tls_opts[1] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_PRIORITIES, 0,
		    (void *)http_tls_priorities() };
		if (cfg->hsts_max_age > 0)
			snprintf(h->hsts, sizeof(h->hsts), "max-age=%u",
			    cfg->hsts_max_age);
	}
	flags |= MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL,
	    handler, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->conn_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip_conn_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->conn_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_URI_LOG_CALLBACK, uri_log, h,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_notify, h,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_ARRAY, tls_opts,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		http_guard_stop(h->guard);
		http_tls_free(h->tls);
		free(h);
		return GK_ERR_IO;
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di != NULL ? di->port : cfg->port;
	if (h->tls != NULL && cfg->redirect_port != 0 &&
	    (r = redirect_start(h, &ss)) != 0) {
		http_server_stop(h);
		return r;
	}
	*out = h;
	return 0;
}

int
http_server_reload_tls(gk_http *h, char *err, size_t errlen)
{
	if (h == NULL || h->tls == NULL)
		return 0;
	return http_tls_reload(h->tls, err, errlen);
}

int
http_server_is_tls(const gk_http *h)
{
	return h != NULL && h->tls != NULL;
}

unsigned
http_server_redirect_port(const gk_http *h)
{
	return h != NULL ? h->redir_port : 0;
}

unsigned
http_server_port(const gk_http *h)
{
	return h->port;
}

/* Waits until *n is 0 or ms have passed. */
static void
wait_zero(_Atomic int *n, int ms)
{
	int i;

	for (i = 0; i < ms / 10 && atomic_load(n) > 0; i++)
		usleep(10000);
}

void
http_server_stop(gk_http *h)
{
	MHD_socket lfd;

	if (h == NULL)
		return;
	if (h->d != NULL) {
		/*
		 * Stop accepting (new connections are refused); give
		 * suspended requests a moment to get their audit answer;
		 * then drop what the audit has not started (answered 503,
		 * never recorded) and wait for the batch being written
		 * (bounded by the store's lock wait); then answer whatever
		 * still waits 503 (libmicrohttpd aborts if stopped with a
		 * request suspended), and let the requests in flight finish
		 * (their answers, downloads included; bounded at 10 s; idle
		 * keep-alive connections are not waited for).
		 */
		lfd = MHD_quiesce_daemon(h->d);
		if (lfd != MHD_INVALID_SOCKET)
			close(lfd);
		pthread_mutex_lock(&tickets_lock);
		h->stopping = 1;
		pthread_mutex_unlock(&tickets_lock);
		wait_zero(&h->inflight, 1000);
		audit_abandon(h->app->audit);
		wait_zero(&h->inflight, STOP_AUDIT_WAIT_MS);
		pthread_mutex_lock(&tickets_lock);
		while (h->pending != NULL)
			ticket_resume_locked(h->pending, GK_ERR_UNAVAILABLE);
		pthread_mutex_unlock(&tickets_lock);
		wait_zero(&h->active, 10000);
		MHD_stop_daemon(h->d);
	}
	http_guard_stop(h->guard);	/* after: the daemon empties its list */
	if (h->redir != NULL)
		MHD_stop_daemon(h->redir);
	http_tls_free(h->tls);
	free(h);
}
