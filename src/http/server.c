/*
 * server.c - the HTTP server on GNU libmicrohttpd: a thread pool, limits,
 * and a thin adapter between a connection and the gate's request
 * lifecycle (gate/exchange.h). The connection is suspended while the
 * gate waits for its audit commit (many requests share one transaction)
 * and resumed when the gate wakes it; the gate decides everything.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate/exchange.h"

#define URI_MAX (16u * 1024)
#define STREAM_BLOCK (64u * 1024)

struct gk_http {
	struct MHD_Daemon *d;
	struct gk_app *app;
	unsigned port;
	_Atomic int inflight;	/* connections suspended for the audit */
};

enum rq_state { RQ_NEW, RQ_BODY, RQ_WAIT, RQ_AUDITED };

struct rq {
	gk_http *h;
	struct MHD_Connection *conn;
	_Atomic int state;
	char *uri;
	int uri_too_long;
	gate_exchange *x;
};

static void
rq_free(struct rq *rq, int complete)
{
	if (rq == NULL)
		return;
	gate_exchange_free(rq->x, complete);
	free(rq->uri);
	free(rq);
}

/* MHD hands us the raw URI here, before any unescaping. */
static void *
uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	gk_http *h = cls;
	struct rq *rq;
	size_t n = strlen(uri);

	if ((rq = calloc(1, sizeof(*rq))) == NULL)
		return NULL;
	rq->h = h;
	rq->conn = conn;
	if (n > URI_MAX) {
		rq->uri_too_long = 1;
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

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct rq *rq = *con_cls;

	(void)cls;
	(void)conn;
	rq_free(rq, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	*con_cls = NULL;
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
begin(struct rq *rq, const char *method)
{
	const union MHD_ConnectionInfo *ci;
	gk_req_in in;

	memset(&in, 0, sizeof(in));
	in.method = method;
	in.target = rq->uri_too_long ? NULL : rq->uri;
	ci = MHD_get_connection_info(rq->conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL)
		in.peer = ci->client_addr;
	in.headers.get = header_get;
	in.headers.each = header_each;
	in.headers.ctx = rq->conn;
	rq->x = gate_begin(rq->h->app, &in);
	return rq->x != NULL ? 0 : GK_ERR_NOMEM;
}

/* ---- the reply ---------------------------------------------------------- */

static ssize_t
stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct rq *rq = cls;
	uint64_t len = 0;
	size_t got = 0;

	if (!gate_reply_streams(rq->x, &len) || pos >= len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (gate_read(rq->x, pos, (uint8_t *)buf, max, &got) != 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)got;
}

struct hdr_ctx {
	struct MHD_Response *resp;
	int failed;
};

static void
add_header(void *arg, const char *name, const char *value)
{
	struct hdr_ctx *c = arg;

	if (MHD_add_response_header(c->resp, name, value) != MHD_YES)
		c->failed = 1;
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
	gate_reply_headers(rq->x, add_header, &hc);
	if (hc.failed) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(rq->conn,
	    (unsigned)gate_reply_status(rq->x), resp);
	MHD_destroy_response(resp);
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

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct rq *rq = *con_cls;

	(void)cls;
	(void)conn;
	(void)url;
	(void)version;
	if (rq == NULL)
		return MHD_NO;
	switch (atomic_load(&rq->state)) {
	case RQ_NEW:
		if (begin(rq, method) != 0)
			return MHD_NO;
		atomic_store(&rq->state, RQ_BODY);
		return MHD_YES;
	case RQ_BODY:
		if (*upload_data_size > 0) {
			if (gate_body(rq->x, (const uint8_t *)upload_data,
			    *upload_data_size) != 0)
				return MHD_NO;
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (gate_decide(rq->x) == GATE_READY)
			return send_reply(rq);
		atomic_store(&rq->state, RQ_WAIT);
		atomic_fetch_add(&rq->h->inflight, 1);
		MHD_suspend_connection(rq->conn);
		gate_commit(rq->x, wake, rq);
		return MHD_YES;
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

int
http_server_start(struct gk_app *app, const http_settings *cfg,
    gk_http **out)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	const union MHD_DaemonInfo *di;
	unsigned threads = cfg->threads;
	unsigned flags;
	gk_http *h;
	long ncpu;

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
	    MHD_OPTION_NOTIFY_COMPLETED, completed, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		free(h);
		return GK_ERR_IO;
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di != NULL ? di->port : cfg->port;
	*out = h;
	return 0;
}

unsigned
http_server_port(const gk_http *h)
{
	return h->port;
}

void
http_server_stop(gk_http *h)
{
	int i;

	if (h == NULL)
		return;
	if (h->d != NULL) {
		/* stop accepting, let suspended requests get their audit
		 * answer (bounded), then stop */
		MHD_quiesce_daemon(h->d);
		for (i = 0; i < 500 && atomic_load(&h->inflight) > 0; i++)
			usleep(10000);
		MHD_stop_daemon(h->d);
	}
	free(h);
}
