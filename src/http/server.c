/*
 * server.c - the HTTP server on GNU libmicrohttpd: a thread pool, limits,
 * and a thin adapter between a connection and the gate's request
 * lifecycle (gate/exchange.h). The connection is suspended while the
 * gate waits for its audit commit (many requests share one transaction)
 * and resumed when the gate wakes it; the gate decides everything.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gate/exchange.h"

/*
 * A streamed body is produced in blocks of this size: the store reads and
 * decrypts whole chunks straight into libmicrohttpd's buffer, and each
 * block is one send() (fewer wake-ups than 64 KiB at gigabytes a second).
 */
#define STREAM_BLOCK (1024u * 1024)
/*
 * libmicrohttpd's memory per connection: the whole request head is read
 * into it (HTTP_HEAD_MAX, plus a header entry per field taken from its end
 * and the reply's status line and headers), and it stays allocated, fully
 * touched (libmicrohttpd zeroes all of it after every request), while the
 * connection idles: it is the price of an idle keep-alive connection, and
 * zeroing it the price of every request. Above 32 KiB libmicrohttpd maps
 * it on its own (given back when the connection closes) instead of taking
 * it from malloc, whose heap a churn of connections fragments.
 */
#define CONN_POOL (40u * 1024)
/* At shutdown, how long a batch being written may still take (the audit
 * store's own lock wait is 5 s). */
#define STOP_AUDIT_WAIT_MS 7000

struct gk_http {
	struct MHD_Daemon *d;
	struct MHD_Daemon *d_s3;	/* [s3api] port, or NULL */
	unsigned port_s3;
	struct gk_app *app;
	unsigned port;
	char *public_url;	/* where the redirect listener sends to */
	http_tls *tls;		/* NULL: plain HTTP */
	char hsts[64];		/* Strict-Transport-Security value, or "" */
	struct MHD_Daemon *redir; /* plain listener redirecting to HTTPS */
	http_redirect_ctx redir_ctx;	/* what its callbacks read */
	unsigned redir_port;
	_Atomic int inflight;	/* connections suspended for the audit or
				 * a remote store's next bytes */
	_Atomic int active;	/* requests begun and not yet completed */
	http_guard *guard;	/* slow-client watchdog */
	http_park *park;	/* idle connections, plain HTTP (park.c) */
	unsigned conn_timeout;
	unsigned take_back_s;	/* idle seconds after an answer before the
				 * take-back (park.c), 0: none */
};

/* Per connection (libmicrohttpd's socket context). */
struct sconn {
	http_conn *watch;	/* the watchdog's entry, or NULL */
	struct rq *rq;		/* the request under way, or NULL */
	http_client *cl;	/* park.c's record (plain HTTP), or NULL */
	int64_t idle_armed_ms;	/* take-back armed then (0: not) */
};

enum rq_state { RQ_NEW, RQ_BODY, RQ_WAIT, RQ_AUDITED };

struct rq {
	gk_http *h;
	struct MHD_Connection *conn;
	struct sconn *sc;
	_Atomic int state;
	char *uri;
	int refuse;		/* head refused: status to answer, then close */
	const char *refuse_why;
	int on_s3;		/* came to the [s3api] port */
	int early;		/* answered before its body (then closed) */
	int keep;		/* its answer surely keeps the connection */
	int body_unknown;	/* a chunked body: its bytes on the wire */
	uint64_t body;		/* body bytes received */
	gate_exchange *x;
};

static void
rq_free(struct rq *rq, int complete)
{
	if (rq == NULL)
		return;
	if (rq->sc != NULL && rq->sc->rq == rq)
		rq->sc->rq = NULL;
	atomic_fetch_sub(&rq->h->active, 1);
	gate_exchange_free(rq->x, complete);
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

/* ---- idle connections taken back (park.c) ----------------------------- */

/*
 * On the plain HTTP daemons a connection has the configured conn_timeout
 * from its start and while a request is under way; after an answer that
 * keeps it open it is taken back from libmicrohttpd (park.c) at once, or
 * after take_back_s idle seconds (libmicrohttpd's own timeout, its
 * default on these daemons: it keeps connections whose timeout is its
 * default in a list sorted by activity and walks every other one in each
 * round of its event loop; the many idle ones are the former).
 *
 * take_back_s is head_timeout (when below conn_timeout), not shorter:
 * libmicrohttpd reads the start of a next request line into its buffer
 * and calls us only once the whole line is in (uri_log), so a connection
 * whose timeout expires may hold part of a request, which cannot be
 * handed on (park.c sees the bytes and closes it). With take_back_s =
 * head_timeout such a connection is closed no sooner than the watchdog
 * (guard.c) would close it for its head, which is the semantics of a
 * daemon without the take-back.
 */
static void
idle_disarm(gk_http *h, struct MHD_Connection *conn, struct sconn *sc)
{
	if (sc->idle_armed_ms == 0)
		return;
	sc->idle_armed_ms = 0;
	(void)MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    h->conn_timeout);
}

/*
 * A request completed (libmicrohttpd's thread): its bytes are counted,
 * and when its answer surely keeps the connection open the connection is
 * taken back at once if this was its first answer or one to a client
 * that idles between requests (http_park_request_done), else the
 * take-back after take_back_s is armed: when that expires libmicrohttpd
 * closes the connection and notify() lets park.c take it back
 * (http_park_closing). A client sending requests one after the other
 * pays for neither. The guess errs towards not arming (then the
 * configured timeout stays): libmicrohttpd keeps a connection after an
 * answer we queued once the whole request was read, to an HTTP/1.1
 * request without "Connection: close" (keepalive_possible in its
 * connection.c), answered without a Connection header of ours.
 */
static void
idle_arm(gk_http *h, struct MHD_Connection *conn, struct sconn *sc,
    const struct rq *rq)
{
	const union MHD_ConnectionInfo *ci;
	int64_t now;
	int at_once;

	if (sc->cl == NULL)
		return;
	now = gk_mono_us() / 1000;
	ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	at_once = http_park_request_done(sc->cl, (ci != NULL ?
	    ci->header_size : 0) + (rq != NULL ? rq->body : 0), ci != NULL &&
	    rq != NULL && !rq->body_unknown, now);
	if (rq == NULL || !rq->keep)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (at_once && ci != NULL && http_park_now(h->park, sc->cl, conn,
	    ci->connect_fd)) {
		sc->cl = NULL;	/* parked; this libmicrohttpd connection ends */
		return;
	}
	if (h->take_back_s > 0 && MHD_set_connection_option(conn,
	    MHD_CONNECTION_OPTION_TIMEOUT, h->take_back_s) == MHD_YES)
		sc->idle_armed_ms = now;
}

/* The request's framing allows keeping the connection (begin()). */
static int
keeps_alive(struct MHD_Connection *conn, const char *version)
{
	const char *c = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Connection");

	return version != NULL && strcmp(version, "HTTP/1.1") == 0 &&
	    (c == NULL || strcasecmp(c, "keep-alive") == 0);
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
	rq_free(sc->rq, 0);	/* one that libmicrohttpd never completed */
	idle_disarm(h, conn, sc);
	sc->rq = rq;
	rq->sc = sc;
	atomic_fetch_add(&h->active, 1);
	rq->h = h;
	rq->conn = conn;
	rq->refuse = http_uri_check(gk_slice_of(uri, n), &rq->refuse_why);
	if (rq->refuse != 0) {
		if ((q = strchr(uri, '?')) != NULL && q[1] != '\0')
			q[1] = '\0';	/* (see above) */
		n = 0;
	}
	if ((rq->uri = malloc(n + 1)) == NULL) {
		rq_free(rq, 1);
		return NULL;
	}
	memcpy(rq->uri, uri, n);
	rq->uri[n] = '\0';
	return rq;
}

/* The same for the [s3api] port's socket. */
static void *
uri_log_s3(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct rq *rq = uri_log(cls, uri, conn);

	if (rq != NULL)
		rq->on_s3 = 1;
	return rq;
}

/*
 * libmicrohttpd's connection notifications: the watchdog's entries, and
 * park.c's records (the limits: a connection over one serves nothing and
 * is closed at once).
 */
static void
notify(gk_http *h, unsigned listener, struct MHD_Connection *conn,
    void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	struct sconn *sc;
	const union MHD_ConnectionInfo *ci, *ca;
	int fd, refused = 0;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((sc = calloc(1, sizeof(*sc))) == NULL)
			return;	/* uri_log refuses the connection */
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		fd = ci != NULL ? ci->connect_fd : -1;
		if (h->park != NULL) {
			ca = MHD_get_connection_info(conn,
			    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
			sc->cl = http_park_adopt(h->park, fd, ca != NULL ?
			    ca->client_addr : NULL, listener, &refused);
			if (refused) {
				free(sc);	/* uri_log refuses it */
				if (fd >= 0)
					(void)shutdown(fd, SHUT_RDWR);
				return;
			}
		}
		sc->watch = http_guard_open(h->guard, fd);
		*socket_context = sc;
		if (h->park != NULL)	/* see idle_disarm */
			(void)MHD_set_connection_option(conn,
			    MHD_CONNECTION_OPTION_TIMEOUT, h->conn_timeout);
		return;
	}
	if ((sc = *socket_context) == NULL)
		return;
	if (sc->cl != NULL) {	/* taken back, or its socket shut down */
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		(void)http_park_closing(h->park, sc->cl, ci != NULL ?
		    ci->connect_fd : -1, sc->idle_armed_ms);
	}
	rq_free(sc->rq, 0);
	http_guard_close(h->guard, sc->watch);
	free(sc);
	*socket_context = NULL;
}

static void
conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	notify(cls, 0, conn, socket_context, toe);
}

/* The same for the [s3api] port's daemon. */
static void
conn_notify_s3(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	notify(cls, 1, conn, socket_context, toe);
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	gk_http *h = cls;
	struct rq *rq = *con_cls;
	struct sconn *sc = sconn_of(conn);

	if (sc != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		http_guard_request_done(h->guard, sc->watch);
		idle_arm(h, conn, sc, rq);
	}
	rq_free(rq, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	*con_cls = NULL;
}

/* ---- the request head, checked by the RFC (head.c) --------------------- */

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

/* ---- the request's headers, as the gate reads them -------------------- */

static const char *
header_get(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

struct each_ctx {
	gk_header_fn fn;
	void *arg;
};

static enum MHD_Result
each_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct each_ctx *e = cls;

	(void)kind;
	e->fn(e->arg, key, value);
	return MHD_YES;
}

static void
header_each(void *ctx, gk_header_fn fn, void *arg)
{
	struct each_ctx e = { fn, arg };

	MHD_get_connection_values(ctx, MHD_HEADER_KIND, each_cb, &e);
}

static int
begin(struct rq *rq, const char *method, const char *version)
{
	const union MHD_ConnectionInfo *ci;
	gk_req_in in;

	if (rq->refuse == 0)
		rq->refuse = check_head(rq, version, &rq->refuse_why);
	memset(&in, 0, sizeof(in));
	in.method = method;
	in.target = rq->refuse != 0 ? NULL : rq->uri;
	in.refuse = rq->refuse;
	in.refuse_why = rq->refuse_why;
	ci = MHD_get_connection_info(rq->conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL)
		in.peer = ci->client_addr;
	in.headers.get = header_get;
	in.headers.each = header_each;
	in.headers.ctx = rq->conn;
	in.on_s3api_port = rq->on_s3;
	rq->keep = rq->h->park != NULL && keeps_alive(rq->conn, version);
	rq->x = gate_begin(rq->h->app, &in);
	return rq->x != NULL ? 0 : GK_ERR_NOMEM;
}

/* ---- the reply ---------------------------------------------------------- */

/* The gate's wake-up: the remote store can give a streamed body's next
 * bytes or take the request body's next piece (any thread). */
static void
io_wake(void *arg)
{
	struct rq *rq = arg;
	gk_http *h = rq->h;

	MHD_resume_connection(rq->conn);
	atomic_fetch_sub(&h->inflight, 1);
}

static ssize_t
stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct rq *rq = cls;
	uint64_t len = 0;
	size_t got = 0;

	if (!gate_reply_streams(rq->x, &len) || pos >= len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (!gate_read_ready(rq->x)) {
		/* the bucket is behind: suspended until a gate worker has
		 * the next bytes (0 with a suspension is not a busy wait) */
		atomic_fetch_add(&rq->h->inflight, 1);
		MHD_suspend_connection(rq->conn);
		gate_read_wait(rq->x, io_wake, rq);
		return 0;
	}
	if (gate_read(rq->x, pos, (uint8_t *)buf, max, &got) != 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)got;
}

struct hdr_ctx {
	struct MHD_Response *resp;
	int failed;
	int connection;		/* a Connection header was added */
};

static void
add_header(void *arg, const char *name, const char *value)
{
	struct hdr_ctx *c = arg;

	if (MHD_add_response_header(c->resp, name, value) != MHD_YES)
		c->failed = 1;
	if (strcasecmp(name, "Connection") == 0)
		c->connection = 1;
}

static enum MHD_Result
send_reply(struct rq *rq)
{
	struct MHD_Response *resp;
	struct hdr_ctx hc;
	enum MHD_Result ret;
	uint64_t len = 0;
	size_t blen = 0;
	char *body;

	if (gate_reply_streams(rq->x, &len)) {
		resp = MHD_create_response_from_callback(len, STREAM_BLOCK,
		    stream_cb, rq, NULL);
	} else {
		body = gate_reply_body(rq->x, &blen);
		resp = MHD_create_response_from_buffer(blen, body ? body : "",
		    body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			free(body);
	}
	if (resp == NULL)
		return MHD_NO;
	hc.resp = resp;
	hc.failed = 0;
	hc.connection = 0;
	gate_reply_headers(rq->x, add_header, &hc);
	if (rq->h->hsts[0] != '\0')	/* the transport's own header */
		add_header(&hc, "Strict-Transport-Security", rq->h->hsts);
	if (rq->refuse != 0)	/* a refused head: the framing is unsure */
		add_header(&hc, "Connection", "close");
	if (hc.failed) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(rq->conn,
	    (unsigned)gate_reply_status(rq->x), resp);
	MHD_destroy_response(resp);
	rq->keep = ret == MHD_YES && rq->keep && !rq->early &&
	    rq->refuse == 0 && !hc.connection;
	return ret;
}

/* The gate's wake-up: its audit commit is settled (any thread). */
static void
wake(void *arg)
{
	struct rq *rq = arg;
	gk_http *h = rq->h;

	atomic_store(&rq->state, RQ_AUDITED);
	MHD_resume_connection(rq->conn);
	atomic_fetch_sub(&h->inflight, 1);
}

/* The gate decides; the connection waits (suspended) for the audit commit
 * when the answer depends on it. */
static enum MHD_Result
decide(struct rq *rq)
{
	http_guard_body_done(rq->h->guard, rq->sc->watch);
	if (gate_decide(rq->x) == GATE_READY)
		return send_reply(rq);
	atomic_store(&rq->state, RQ_WAIT);
	atomic_fetch_add(&rq->h->inflight, 1);
	MHD_suspend_connection(rq->conn);
	gate_commit(rq->x, wake, rq);
	return MHD_YES;
}

int
http_announces_body(struct MHD_Connection *conn, int *unknown)
{
	const char *cl;
	int te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;

	if (unknown != NULL)
		*unknown = te;
	if (te)
		return 1;
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	return cl != NULL && strcmp(cl, "0") != 0;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct rq *rq = *con_cls;

	(void)cls;
	(void)conn;
	(void)url;
	if (rq == NULL)
		return MHD_NO;
	switch (atomic_load(&rq->state)) {
	case RQ_NEW:
		http_guard_head_done(rq->h->guard, rq->sc->watch,
		    http_announces_body(rq->conn, &rq->body_unknown));
		if (begin(rq, method, version) != 0)
			return MHD_NO;
		atomic_store(&rq->state, RQ_BODY);
		if (gate_answer_now(rq->x)) {
			/* refused before the body (its head, or an upload
			 * refused): answered now, and libmicrohttpd reads
			 * none of the body and closes after the answer */
			rq->early = 1;
			return decide(rq);
		}
		return MHD_YES;
	case RQ_BODY:
		if (*upload_data_size > 0) {
			if (!gate_body_ready(rq->x)) {
				/* the bucket is behind: the piece stays with
				 * libmicrohttpd, offered again on resume */
				atomic_fetch_add(&rq->h->inflight, 1);
				MHD_suspend_connection(rq->conn);
				gate_body_wait(rq->x, io_wake, rq);
				return MHD_YES;
			}
			if (gate_body(rq->x, (const uint8_t *)upload_data,
			    *upload_data_size) != 0)
				return MHD_NO;
			rq->body += *upload_data_size;
			*upload_data_size = 0;
			return MHD_YES;
		}
		return decide(rq);
	case RQ_WAIT:
		return MHD_YES;
	case RQ_AUDITED:
		gate_settle(rq->x);
		return send_reply(rq);
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

/* http_server_start failed before the main daemon ran. */
static void
start_abort(gk_http *h)
{
	http_park_free(h->park);
	http_guard_stop(h->guard);
	http_tls_free(h->tls);
	free(h->public_url);
	free(h);
}

int
http_server_start(struct gk_app *app, const http_settings *cfg,
    gk_http **out, char *errout, size_t errlen)
{
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
	gk_http *h;
	long ncpu;
	int r;
	struct MHD_Daemon *pd[HTTP_PARK_LISTENERS];
	unsigned mhd_limit = cfg->conn_limit, mhd_per_ip =
	    cfg->per_ip_conn_limit, idle_to = cfg->conn_timeout;

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
		snprintf(errout, errlen, "listen address '%s' is not an IP "
		    "address", cfg->listen);
		return GK_ERR_CONFIG;
	}
	if (threads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu > 0 ? (unsigned)ncpu : 1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return GK_ERR_NOMEM;
	h->app = app;
	if ((h->public_url = strdup(cfg->public_url != NULL ?
	    cfg->public_url : "")) == NULL) {
		free(h);
		return GK_ERR_NOMEM;
	}
	if (http_guard_start(cfg->head_timeout, cfg->body_timeout,
	    cfg->body_min_rate, &h->guard) != 0) {
		free(h->public_url);
		free(h);
		return GK_ERR_INTERNAL;
	}
	if (cfg->tls_cert != NULL && cfg->tls_cert[0] != '\0') {
		if ((r = http_tls_new(cfg->tls_cert, cfg->tls_key,
		    cfg->tls_ocsp, &h->tls, errout, errlen)) != 0) {
			http_guard_stop(h->guard);
			free(h->public_url);
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
	h->conn_timeout = cfg->conn_timeout;
	if (h->tls == NULL) {
		/*
		 * Plain HTTP: park.c holds idle connections (MHD_USE_TURBO:
		 * libmicrohttpd closes without shutting the socket down,
		 * park.c does that or keeps it) and counts the limits;
		 * libmicrohttpd's own are wider, as a connection just taken
		 * back may still be counted there for a moment. Its timeout
		 * is the take-back's (see idle_arm).
		 */
		if ((r = http_park_new(cfg->conn_limit, cfg->per_ip_conn_limit,
		    cfg->conn_timeout, &h->park)) != 0) {
			start_abort(h);
			return r;
		}
		flags |= MHD_USE_TURBO;
		if (cfg->head_timeout > 0 &&
		    cfg->head_timeout < cfg->conn_timeout) {
			idle_to = cfg->head_timeout;
			h->take_back_s = idle_to;
		}
		mhd_limit = cfg->conn_limit > UINT_MAX / 2 ? UINT_MAX :
		    cfg->conn_limit * 2;
		mhd_per_ip = 0;
	}
	h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL,
	    handler, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, mhd_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, idle_to,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_log, h,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_notify, h,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_ARRAY, tls_opts,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		start_abort(h);
		return GK_ERR_IO;
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di != NULL ? di->port : cfg->port;
	if (cfg->s3api_port != 0) {
		/* the S3 endpoint's own port: the same server, another socket */
		if (ss.ss_family == AF_INET)
			sin->sin_port = htons((uint16_t)cfg->s3api_port);
		else
			sin6->sin6_port = htons((uint16_t)cfg->s3api_port);
		h->d_s3 = MHD_start_daemon(flags, (uint16_t)cfg->s3api_port,
		    NULL, NULL, handler, h,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		    MHD_OPTION_THREAD_POOL_SIZE, threads,
		    MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT, mhd_per_ip,
		    MHD_OPTION_CONNECTION_TIMEOUT, idle_to,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL,
		    MHD_OPTION_URI_LOG_CALLBACK, uri_log_s3, h,
		    MHD_OPTION_NOTIFY_CONNECTION, conn_notify_s3, h,
		    MHD_OPTION_NOTIFY_COMPLETED, completed, h,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_ARRAY, tls_opts,
		    MHD_OPTION_END);
		if (h->d_s3 == NULL) {
			http_server_stop(h);
			return GK_ERR_IO;
		}
		di = MHD_get_daemon_info(h->d_s3, MHD_DAEMON_INFO_BIND_PORT);
		h->port_s3 = di != NULL ? di->port : cfg->s3api_port;
	}
	if (h->park != NULL) {
		pd[0] = h->d;
		pd[1] = h->d_s3;
		if ((r = http_park_run(h->park, pd)) != 0) {
			http_server_stop(h);
			return r;
		}
	}
	h->redir_ctx.public_url = h->public_url;
	h->redir_ctx.guard = h->guard;
	if (h->tls != NULL && cfg->redirect_port != 0 &&
	    (r = http_redirect_start(&h->redir_ctx, cfg, &ss, mhd_log,
	    &h->redir, &h->redir_port)) != 0) {
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

unsigned
http_server_s3api_port(const gk_http *h)
{
	return h != NULL ? h->port_s3 : 0;
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
		 * then the audit drops what it has not started (answered
		 * 503, never recorded) and the batch being written ends
		 * (bounded by the store's lock wait); then whatever still
		 * waits is answered 503 (libmicrohttpd aborts if stopped
		 * with a request suspended), and the requests in flight
		 * finish (their answers, downloads included; bounded at
		 * 10 s; idle keep-alive connections are not waited for).
		 */
		http_park_quiesce(h->park);	/* closes the idle ones */
		lfd = MHD_quiesce_daemon(h->d);
		if (lfd != MHD_INVALID_SOCKET)
			close(lfd);
		if (h->d_s3 != NULL &&
		    (lfd = MHD_quiesce_daemon(h->d_s3)) != MHD_INVALID_SOCKET)
			close(lfd);
		gate_shutdown_begin(h->app);
		wait_zero(&h->inflight, 1000);
		gate_shutdown_abandon(h->app);
		wait_zero(&h->inflight, STOP_AUDIT_WAIT_MS);
		gate_shutdown_fail_waiting(h->app);
		wait_zero(&h->active, 10000);
		MHD_stop_daemon(h->d);
		if (h->d_s3 != NULL)
			MHD_stop_daemon(h->d_s3);
	}
	if (h->redir != NULL)	/* before the guard: it watches its sockets */
		MHD_stop_daemon(h->redir);
	http_park_free(h->park);	/* after: the daemons adopt records */
	http_guard_stop(h->guard);	/* after: the daemon empties its list */
	http_tls_free(h->tls);
	free(h->public_url);
	free(h);
}
