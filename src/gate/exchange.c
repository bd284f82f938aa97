/*
 * exchange.c - one request's life: the request as the gate sees it (from
 * what the adapter hands over), routing, the decision, the whole audit
 * record, the commit that must be durable before anything is granted,
 * and the reply's headers and body as the adapter renders them.
 */
#include "gate_int.h"
#include "exchange.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

/* A body no route reads is discarded up to this; beyond, the connection
 * is dropped. */
#define DISCARD_MAX (1024u * 1024)

enum { X_OPEN, X_WAIT, X_SETTLED };

struct gate_exchange {
	gk_app *app;
	gk_req req;
	gk_reply rep;
	const struct gate_route *route;
	gate_upload *up;
	int too_long;		/* the target was over the adapter's cap */
	size_t discarded;
	_Atomic int state;
	int audit_result;
	int granted;		/* settled: the grant's record is durable */
	void (*wake)(void *);
	void *wake_arg;
	gk_headers h;
	gk_buf fwd_hdr[2];	/* X-Forwarded-For, Forwarded: lines joined */
	int fwd_has[2], fwd_over[2];
};

/* ---- the request ------------------------------------------------------ */

static gk_slice
header(const gate_exchange *x, const char *name, int *present)
{
	const char *v = x->h.get(x->h.ctx, name);

	if (present != NULL)
		*present = v != NULL;
	return gk_slice_str(v);
}

/* Joins every line of X-Forwarded-For and of Forwarded with ", ". */
static void
fwd_line(void *arg, const char *name, const char *value)
{
	gate_exchange *x = arg;
	int i;

	if (name == NULL || value == NULL)
		return;
	if (strcasecmp(name, "X-Forwarded-For") == 0)
		i = 0;
	else if (strcasecmp(name, "Forwarded") == 0)
		i = 1;
	else
		return;
	if (x->fwd_hdr[i].cap == 0)
		gk_buf_init(&x->fwd_hdr[i], GK_CAP_LINE);
	if ((x->fwd_has[i] && gk_buf_append_str(&x->fwd_hdr[i], ", ") != 0) ||
	    gk_buf_append_str(&x->fwd_hdr[i], value) != 0)
		x->fwd_over[i] = 1;
	x->fwd_has[i] = 1;
}

/* The client address (behind trusted proxies too), its policy and
 * country. */
static void
resolve_client(gate_exchange *x, const gk_addr *peer)
{
	gk_slice v[2];
	int i;

	if (x->h.each != NULL)
		x->h.each(x->h.ctx, fwd_line, x);
	for (i = 0; i < 2; i++) {
		v[i] = gk_slice_of(x->fwd_hdr[i].data, x->fwd_hdr[i].len);
		if (x->fwd_over[i])	/* too long: a value that never parses */
			v[i] = gk_slice_str("\001");
	}
	gate_req_resolve(x->app, &x->req, peer, v[0], x->fwd_has[0], v[1],
	    x->fwd_has[1]);
}

static void
request_id(gk_app *app, char out[GK_REQID_LEN + 1])
{
	uint8_t id[16];
	uint64_t n;
	int i;

	memcpy(id, app->id_prefix, 8);
	n = atomic_fetch_add_explicit(&app->id_counter, 1,
	    memory_order_relaxed);
	for (i = 0; i < 8; i++)	/* big-endian: ids sort in arrival order */
		id[8 + i] = (uint8_t)(n >> (56 - 8 * i));
	gk_hex_encode(id, sizeof(id), out);
}

static void
fill_req(gate_exchange *x, const gk_req_in *in)
{
	gk_req *req = &x->req;
	gk_addr peer;
	const char *t = in->target != NULL ? in->target : "";
	const char *q;

	req->method = in->method;
	req->start_us = gk_now_us();
	req->start_mono_us = gk_mono_us();
	q = strchr(t, '?');
	if (q != NULL) {
		req->path = gk_slice_of(t, (size_t)(q - t));
		req->query = gk_slice_str(q + 1);
	} else {
		req->path = gk_slice_str(t);
	}
	req->origin = header(x, "Origin", &req->has_origin);
	req->sec_fetch_site = header(x, "Sec-Fetch-Site",
	    &req->has_sec_fetch_site);
	req->user_agent = header(x, "User-Agent", NULL);
	req->range = header(x, "Range", NULL);
	req->accept = header(x, "Accept", NULL);
	req->content_type = header(x, "Content-Type", NULL);
	req->authorization = header(x, "Authorization", NULL);
	if (in->peer == NULL || policy_addr_from_sockaddr(in->peer, &peer) != 0)
		/* unknown peer: the unspecified address, which no allow list
		 * with sense contains */
		memset(&peer, 0, sizeof(peer));
	resolve_client(x, &peer);
	request_id(x->app, req->request_id);
}

gate_exchange *
gate_begin(gk_app *app, const gk_req_in *in)
{
	gate_exchange *x;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->app = app;
	x->h = in->headers;
	x->too_long = in->target == NULL;
	gate_reply_init(&x->rep);
	fill_req(x, in);
	if (!x->too_long)
		x->route = gate_route_begin(app, &x->req, &x->up, &x->rep);
	return x;
}

const char *
gate_request_id(const gate_exchange *x)
{
	return x->req.request_id;
}

int
gate_body(gate_exchange *x, const uint8_t *p, size_t len)
{
	if (len == 0)
		return 0;
	if (x->up != NULL) {
		gate_upload_feed(x->up, p, len);
		return 0;
	}
	x->discarded += len;
	return x->discarded > DISCARD_MAX ? GK_ERR_TOO_LARGE : 0;
}

/* ---- the decision and the commit -------------------------------------- */

int
gate_decide(gate_exchange *x)
{
	if (x->too_long) {
		gate_reply_error(&x->rep, 414, "deny", "URI Too Long");
		x->rep.protocol = "http";
		gate_reply_finish(x->app, &x->req, &x->rep);
	} else {
		gate_route_end(x->app, x->route, &x->req, x->up, &x->rep);
	}
	if (!x->rep.audited) {
		atomic_store(&x->state, X_SETTLED);
		return GATE_READY;
	}
	return GATE_WAIT;
}

/* The durable-commit callback (the audit writer's thread). */
static void
committed(void *arg, int result)
{
	gate_exchange *x = arg;

	x->audit_result = result;
	atomic_store(&x->state, X_SETTLED);
	x->wake(x->wake_arg);
}

void
gate_commit(gate_exchange *x, void (*wake)(void *arg), void *arg)
{
	gk_audit_record rec;

	x->wake = wake;
	x->wake_arg = arg;
	atomic_store(&x->state, X_WAIT);
	gate_audit_record(&x->req, &x->rep, &rec);
	rec.user_agent = x->h.get(x->h.ctx, "User-Agent");
	rec.origin = x->h.get(x->h.ctx, "Origin");
	if (audit_submit(x->app->audit, &rec, committed, x) != 0)
		committed(x, GK_ERR_UNAVAILABLE);
}

void
gate_settle(gate_exchange *x)
{
	gk_app *app = x->app;

	if (atomic_load(&x->state) != X_SETTLED) {
		/* never woken: nothing may be granted */
		x->audit_result = GK_ERR_INTERNAL;
		atomic_store(&x->state, X_SETTLED);
	}
	if (x->audit_result != 0) {
		gate_count(app, GK_STAT_AUDIT_FAILURES);
		if (x->rep.grant) {
			gk_error("request %s: audit record not written; "
			    "refusing the grant", x->req.request_id);
			gate_reply_error(&x->rep, 503, "error",
			    "Service Unavailable: audit log unavailable");
		} else {
			gk_error("request %s: audit record of a refusal not "
			    "written", x->req.request_id);
		}
		return;
	}
	if (x->up != NULL && x->rep.grant)
		gate_upload_commit(x->up, &x->rep);
	x->granted = x->rep.grant;
}

/* ---- rendering -------------------------------------------------------- */

int
gate_reply_status(const gate_exchange *x)
{
	return x->rep.status;
}

void
gate_reply_headers(const gate_exchange *x, gk_header_fn fn, void *arg)
{
	const gk_reply *rep = &x->rep;
	char date[40], retry[16];

	if (rep->content_type != NULL)
		fn(arg, "Content-Type", rep->content_type);
	fn(arg, "Access-Control-Allow-Origin", rep->acao ? rep->acao : "null");
	fn(arg, "Vary", "Origin");
	fn(arg, "Cache-Control", "no-store, must-revalidate");
	fn(arg, "X-Content-Type-Options", "nosniff");
	fn(arg, "Access-Control-Expose-Headers",
	    "X-Request-Id, Content-Range, Content-Length, Location, "
	    "Retry-After");
	if (x->req.request_id[0] != '\0')
		fn(arg, "X-Request-Id", x->req.request_id);
	if (rep->location != NULL)
		fn(arg, "Location", rep->location);
	if (rep->allow != NULL)
		fn(arg, "Allow", rep->allow);
	if (rep->retry_after > 0) {
		snprintf(retry, sizeof(retry), "%u", rep->retry_after);
		fn(arg, "Retry-After", retry);
	}
	if (rep->content_range != NULL)
		fn(arg, "Content-Range", rep->content_range);
	if (rep->reader != NULL) {
		fn(arg, "Accept-Ranges", "bytes");
		gk_time_http(rep->mtime, date, sizeof(date));
		fn(arg, "Last-Modified", date);
	}
	if (rep->status == 204 && rep->audited == 0) {
		/* CORS preflight */
		fn(arg, "Access-Control-Allow-Methods",
		    "GET, HEAD, POST, PUT, OPTIONS");
		fn(arg, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type, Range");
		fn(arg, "Access-Control-Max-Age", "600");
	}
}

int
gate_reply_streams(const gate_exchange *x, uint64_t *len)
{
	const gk_reply *rep = &x->rep;

	if (rep->reader == NULL || (rep->status != 200 && rep->status != 206))
		return 0;
	*len = rep->len;
	return 1;
}

char *
gate_reply_body(gate_exchange *x, size_t *len)
{
	*len = 0;
	return gk_buf_detach(&x->rep.body, len);
}

int
gate_read(gate_exchange *x, uint64_t pos, uint8_t *buf, size_t max,
    size_t *got)
{
	gk_reply *rep = &x->rep;
	size_t want;
	int r;

	*got = 0;
	if (atomic_load(&x->state) != X_SETTLED || !x->granted ||
	    rep->reader == NULL)
		return GK_ERR_DENIED;
	if (pos >= rep->len)
		return 0;
	want = max;
	if (want > rep->len - pos)
		want = (size_t)(rep->len - pos);
	r = store_reader_read(rep->reader, rep->off + pos, buf, want, got);
	if (r != 0 || *got == 0) {
		gk_error("request %s: object read failed mid-stream: %s",
		    x->req.request_id, r ? gk_err_str(r) : "short object");
		return r ? r : GK_ERR_IO;
	}
	return 0;
}

void
gate_exchange_free(gate_exchange *x, int complete)
{
	if (x == NULL)
		return;
	if (!complete && x->rep.reader != NULL)
		gk_warn("request %s ended before the body was sent",
		    x->req.request_id);
	gate_upload_free(x->up);
	gate_reply_release(&x->rep);
	policy_free(x->req.policy);
	gk_buf_release(&x->fwd_hdr[0]);
	gk_buf_release(&x->fwd_hdr[1]);
	free(x);
}
