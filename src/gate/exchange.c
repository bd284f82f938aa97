/*
 * exchange.c - one request's life: the request as the gate sees it (from
 * what the adapter hands over), routing, the decision, the whole audit
 * record, the commit that must be durable before anything is granted,
 * and the reply's headers and body as the adapter renders them.
 */
#include "gate_int.h"
#include "exchange.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

/* A body no route reads is discarded up to this; beyond, the connection
 * is dropped. */
#define DISCARD_MAX (1024u * 1024)
/* What is still read of an upload's body once it is refused. */
#define REFUSED_BODY_MAX (64u * 1024)

/*
 * An exchange's claim on its audit commit. The audit calls back exactly
 * once per ticket, possibly after shutdown has already answered the
 * exchange and freed it: so the ticket, not the exchange, is the
 * callback's argument, x is cleared once the exchange is settled or
 * freed, and tickets live under the app's wait_lock.
 */
struct gate_ticket {
	struct gate_ticket *prev, *next;
	gk_app *app;
	gate_exchange *x;	/* NULL once settled */
};

enum { X_OPEN, X_WAIT, X_SETTLED };
enum { IO_NONE, IO_READ, IO_WRITE };

struct gate_exchange {
	gk_app *app;
	gk_req req;
	gk_reply rep;
	const struct gate_route *route;
	gate_upload *up;
	int body_audited;	/* refused mid-body and recorded */
	int refuse;		/* the adapter refused the head: status */
	const char *refuse_why;
	size_t discarded;
	_Atomic int state;
	int audit_result;
	int granted;		/* settled: the grant's record is durable */
	struct gate_ticket *ticket;	/* while waiting, under wait_lock */
	void (*wake)(void *);
	void *wake_arg;
	int settled_off;	/* gate_settle's work done by a worker */
	/* the decision waits on a remote store: made by a gate worker
	 * (gate_commit queues it), not on the adapter's thread */
	int defer;
	/* queued for a worker to wait until the remote store can give the
	 * next streamed bytes (IO_READ: gate_read_wait) or take the body's
	 * (IO_WRITE: gate_body_wait); woken through io_wake */
	int io_wait;
	int io_inline;		/* no worker: the adapter's thread waits */
	int free_job;		/* queued to be freed (exchange_release) */
	void (*io_wake)(void *);
	void *io_wake_arg;
	struct gate_exchange *work_next;	/* in app's commit queue */
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

/* Counts the Range fields: a list of ranges is one field, several
 * fields are not a valid request (RFC 9110 14.2). */
static void
range_line(void *arg, const char *name, const char *value)
{
	gk_req *req = arg;

	if (name != NULL && strcasecmp(name, "Range") == 0 &&
	    req->range_fields < INT_MAX)
		req->range_fields++;
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

/* gk_req.header: every value of a header, joined by ','. */
struct hdr_find {
	const char *name;
	gk_buf *out;
	int found;
	int over;
};

static void
hdr_find_line(void *arg, const char *name, const char *value)
{
	struct hdr_find *f = arg;

	if (name == NULL || value == NULL || strcasecmp(name, f->name) != 0)
		return;
	if ((f->found && gk_buf_append(f->out, ",", 1) != 0) ||
	    gk_buf_append_str(f->out, value) != 0)
		f->over = 1;
	f->found = 1;
}

static int
hdr_lookup(void *ctx, const char *lname, gk_buf *out)
{
	const gate_exchange *x = ctx;
	struct hdr_find f = { lname, out, 0, 0 };

	if (x->h.each != NULL)
		x->h.each(x->h.ctx, hdr_find_line, &f);
	if (f.over)
		return GK_ERR_TOO_LARGE;
	return f.found ? 0 : GK_ERR_NOT_FOUND;
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
	if (req->range.p != NULL && x->h.each != NULL)
		x->h.each(x->h.ctx, range_line, req);	/* at least one */
	req->accept = header(x, "Accept", NULL);
	req->content_type = header(x, "Content-Type", NULL);
	req->content_length = header(x, "Content-Length",
	    &req->has_content_length);
	req->authorization = header(x, "Authorization", NULL);
	req->host = header(x, "Host", NULL);
	req->header = hdr_lookup;
	req->header_ctx = x;
	req->on_s3api_port = in->on_s3api_port;
	req->cookie = header(x, "Cookie", NULL);
	req->csrf = header(x, "X-CSRF-Token", NULL);
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
	x->refuse = in->refuse != 0 ? in->refuse :
	    in->target == NULL ? 414 : 0;
	x->refuse_why = in->refuse_why != NULL ? in->refuse_why :
	    x->refuse == 414 ? "URI Too Long" : "Bad Request";
	gate_reply_init(&x->rep);
	fill_req(x, in);
	if (x->refuse == 0)
		x->route = gate_route_begin(app, &x->req, &x->up, &x->rep);
	return x;
}

const char *
gate_request_id(const gate_exchange *x)
{
	return x->req.request_id;
}

int
gate_answer_now(const gate_exchange *x)
{
	if (x->refuse != 0)
		return 1;
	return x->route != NULL && gate_route_has_body(x->route) &&
	    (x->up == NULL || gate_upload_refused(x->up));
}

/* The whole audit record of x: the reply's fields, the user agent and the
 * origin as sent. */
static void
record_of(gate_exchange *x, gk_audit_record *rec)
{
	gate_audit_record(&x->req, &x->rep, rec);
	rec->user_agent = x->h.get(x->h.ctx, "User-Agent");
	rec->origin = x->h.get(x->h.ctx, "Origin");
}

/*
 * An upload refused in the middle of a body too long to read to its end:
 * its record is submitted without waiting (a refusal grants nothing) and
 * the adapter closes the connection without an answer.
 */
static void
refuse_and_close(gate_exchange *x)
{
	gk_app *app = x->app;
	gk_audit_record rec;
	int r;

	gate_upload_end(x->up, &x->rep);
	record_of(x, &rec);
	x->body_audited = 1;
	if ((r = audit_submit(app->audit, &rec, NULL, NULL)) != 0 &&
	    r != GK_ERR_TOO_LARGE) {
		gate_count(app, GK_STAT_AUDIT_FAILURES);
		gk_debug("request %s: audit record of a refusal not written",
		    x->req.request_id);
	}
	gk_debug("request %s: upload refused (%d); the rest of its body is "
	    "not read, connection closed", x->req.request_id, x->rep.status);
}

/*
 * An upload whose connection ended before its body did (the client went
 * away, or the body deadline closed it): no answer can be sent, but the
 * attempt is recorded with why, like any other refusal; its writer is
 * dropped by gate_upload_free, so nothing is stored.
 */
static void
abandoned(gate_exchange *x)
{
	gk_audit_record rec;
	int r;

	gate_upload_abandon(x->up);
	gate_upload_end(x->up, &x->rep);
	if (!x->rep.audited)
		return;
	record_of(x, &rec);
	if ((r = audit_submit(x->app->audit, &rec, NULL, NULL)) != 0 &&
	    r != GK_ERR_TOO_LARGE) {
		gate_count(x->app, GK_STAT_AUDIT_FAILURES);
		gk_debug("request %s: audit record of an abandoned upload not "
		    "written", x->req.request_id);
	}
}

int
gate_body(gate_exchange *x, const uint8_t *p, size_t len)
{
	if (len == 0)
		return 0;
	if (x->up != NULL && gate_upload_refused(x->up)) {
		/* refused in the middle: an answer can only follow the
		 * body, so at most a small rest is read and dropped, then
		 * the connection closes */
		x->discarded += len;
		if (x->discarded <= REFUSED_BODY_MAX)
			return 0;
		refuse_and_close(x);
		return GK_ERR_TOO_LARGE;
	}
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
	if (x->refuse != 0) {
		gate_reply_error(&x->rep, x->refuse, "deny", x->refuse_why);
		x->rep.protocol = "http";
		gate_reply_finish(x->app, &x->req, &x->rep);
		/* a protocol error, not a decision about data: counted (as
		 * denied), answered at once, not audited */
		x->rep.audited = 0;
	} else if (gate_route_defers(x->app, x->route)) {
		/* its handler may wait on the bucket: decided by a worker
		 * once the adapter has suspended the request (gate_commit) */
		x->defer = 1;
		return GATE_WAIT;
	} else {
		gate_route_end(x->app, x->route, &x->req, x->up, &x->rep);
	}
	if (!x->rep.audited) {
		atomic_store(&x->state, X_SETTLED);
		return GATE_READY;
	}
	return GATE_WAIT;
}

/* ---- the workers --------------------------------------------------
 *
 * An upload's store commit (the fs index, a bucket request) can wait: for
 * the index's lock held by another process (up to the store's busy wait),
 * for a slow bucket. On an HTTP thread that wait would hold every other
 * connection the thread serves, and libmicrohttpd would time out the ones
 * ready behind it. So a durable upload grant goes to one of a few threads
 * of the gate's own, which commit it (gate_settle's work) and only then
 * wake the exchange; the adapter's gate_settle finds it done.
 *
 * The same threads make the decisions that wait on a remote store (a
 * download's HEAD in proxy mode, check_exists, a listing: x->defer): the
 * route's handler runs there, then the record is submitted as on the
 * adapter's thread. And they wait for the bucket to give a download's
 * next bytes or take an upload's next part (x->io_wait), so that the
 * adapter's thread never does, and free an upload into a remote store,
 * which may abort a multipart upload (x->free_job).
 */
static void settle_work(gate_exchange *x);
static void decide_work(gate_exchange *x);
static void io_wait_work(gate_exchange *x);
static void exchange_release(gate_exchange *x);

static void *
worker_main(void *arg)
{
	gk_app *app = arg;
	gate_exchange *x;
	void (*wake)(void *);
	void *wake_arg;

	pthread_mutex_lock(&app->work_mu);
	for (;;) {
		while (app->work_head == NULL && !app->work_quit)
			pthread_cond_wait(&app->work_cv, &app->work_mu);
		if ((x = app->work_head) == NULL)
			break;	/* quit, and nothing left */
		if ((app->work_head = x->work_next) == NULL)
			app->work_tail = NULL;
		x->work_next = NULL;
		pthread_mutex_unlock(&app->work_mu);
		if (x->free_job) {
			exchange_release(x);
		} else if (x->defer) {
			decide_work(x);	/* x is not ours after it */
		} else if (x->io_wait != IO_NONE) {
			io_wait_work(x);	/* nor after this */
		} else {
			settle_work(x);
			x->settled_off = 1;
			/* once woken, x is the adapter's (may be freed) */
			wake = x->wake;
			wake_arg = x->wake_arg;
			wake(wake_arg);
		}
		pthread_mutex_lock(&app->work_mu);
		if (--app->work_busy == 0)
			pthread_cond_broadcast(&app->work_idle);
	}
	pthread_mutex_unlock(&app->work_mu);
	return NULL;
}

/* Queues x for a worker (started on first use). -1 when there is none
 * (stopped, or none could start): the caller wakes x as it is. */
static int
work_queue(gk_app *app, gate_exchange *x)
{
	pthread_mutex_lock(&app->work_mu);
	if (app->work_quit) {
		pthread_mutex_unlock(&app->work_mu);
		return -1;
	}
	while (app->workers < GATE_WORKERS &&
	    pthread_create(&app->worker[app->workers], NULL, worker_main,
	    app) == 0)
		app->workers++;
	if (app->workers == 0) {
		pthread_mutex_unlock(&app->work_mu);
		return -1;
	}
	x->work_next = NULL;
	if (app->work_tail != NULL)
		app->work_tail->work_next = x;
	else
		app->work_head = x;
	app->work_tail = x;
	app->work_busy++;
	pthread_cond_signal(&app->work_cv);
	pthread_mutex_unlock(&app->work_mu);
	return 0;
}

/* Waits until no commit is queued or running. */
static void
work_wait(gk_app *app)
{
	pthread_mutex_lock(&app->work_mu);
	while (app->work_busy > 0)
		pthread_cond_wait(&app->work_idle, &app->work_mu);
	pthread_mutex_unlock(&app->work_mu);
}

void
gate_workers_stop(gk_app *app)
{
	int i, n;

	pthread_mutex_lock(&app->work_mu);
	app->work_quit = 1;
	n = app->workers;
	pthread_cond_broadcast(&app->work_cv);
	pthread_mutex_unlock(&app->work_mu);
	for (i = 0; i < n; i++)
		(void)pthread_join(app->worker[i], NULL);
}

/* Settles t's exchange with result and wakes it, once; wait_lock held. */
static void
ticket_settle_locked(gk_app *app, struct gate_ticket *t, int result)
{
	gate_exchange *x = t->x;

	if (x == NULL)
		return;		/* settled already (shutdown) or freed */
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		app->waiting = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->x = NULL;
	x->ticket = NULL;
	x->audit_result = result;
	atomic_store(&x->state, X_SETTLED);
	/* a durable upload grant is committed to the store off the HTTP
	 * thread, then woken; otherwise (or with no worker) the adapter
	 * settles on its thread */
	if (result == 0 && x->up != NULL && x->rep.grant &&
	    work_queue(app, x) == 0)
		return;
	x->wake(x->wake_arg);
}

/* The durable-commit callback (the audit writer's thread). */
static void
committed(void *arg, int result)
{
	struct gate_ticket *t = arg;
	gk_app *app = t->app;

	/* the exchange may be gone, its app is not (audit_close runs the
	 * last callbacks before the app goes) */
	pthread_mutex_lock(&app->wait_lock);
	ticket_settle_locked(app, t, result);
	pthread_mutex_unlock(&app->wait_lock);
	free(t);
}

/* Settles x at once (no commit to wait for) and wakes it. */
static void
settle_now(gate_exchange *x, int result)
{
	x->audit_result = result;
	atomic_store(&x->state, X_SETTLED);
	x->wake(x->wake_arg);
}

static void commit_submit(gate_exchange *x);

/* A deferred decision (x->defer), on a worker or, without one, on the
 * adapter's thread; x is not the caller's after it (woken). */
static void
decide_work(gate_exchange *x)
{
	x->defer = 0;
	gate_route_end(x->app, x->route, &x->req, x->up, &x->rep);
	if (!x->rep.audited) {
		settle_now(x, 0);
		return;
	}
	commit_submit(x);
}

void
gate_commit(gate_exchange *x, void (*wake)(void *arg), void *arg)
{
	x->wake = wake;
	x->wake_arg = arg;
	atomic_store(&x->state, X_WAIT);
	if (x->defer) {
		if (work_queue(x->app, x) != 0)
			decide_work(x);	/* no worker: decided here */
		return;
	}
	commit_submit(x);
}

/* Submits x's record; x->wake is called once it is settled. */
static void
commit_submit(gate_exchange *x)
{
	gk_app *app = x->app;
	struct gate_ticket *t;
	gk_audit_record rec;
	int r;

	record_of(x, &rec);
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		settle_now(x, GK_ERR_UNAVAILABLE);
		return;
	}
	pthread_mutex_lock(&app->wait_lock);
	if (app->stopping) {
		/* shutting down: nothing waits on the audit any more; a
		 * grant becomes a 503 (recorded as such), a refusal is
		 * answered while its record is written */
		pthread_mutex_unlock(&app->wait_lock);
		free(t);
		if (x->rep.grant) {
			gate_reply_error(&x->rep, 503, "error",
			    "Service Unavailable: shutting down");
			record_of(x, &rec);
		}
		if ((r = audit_submit(app->audit, &rec, NULL, NULL)) != 0 &&
		    r != GK_ERR_TOO_LARGE)
			gk_debug("request %s: audit record of a refusal not "
			    "written", x->req.request_id);
		settle_now(x, 0);
		return;
	}
	t->app = app;
	t->x = x;
	t->next = app->waiting;
	if (app->waiting != NULL)
		app->waiting->prev = t;
	app->waiting = t;
	x->ticket = t;
	pthread_mutex_unlock(&app->wait_lock);
	if ((r = audit_submit(app->audit, &rec, committed, t)) != 0) {
		/* a refusal dropped to keep room for grants is counted by
		 * the audit and answered as usual */
		pthread_mutex_lock(&app->wait_lock);
		ticket_settle_locked(app, t, r == GK_ERR_TOO_LARGE &&
		    !x->rep.grant ? 0 : GK_ERR_UNAVAILABLE);
		pthread_mutex_unlock(&app->wait_lock);
		free(t);
	}
}

/* ---- shutdown ------------------------------------------------------------ */

void
gate_shutdown_begin(gk_app *app)
{
	pthread_mutex_lock(&app->wait_lock);
	app->stopping = 1;
	pthread_mutex_unlock(&app->wait_lock);
}

void
gate_shutdown_abandon(gk_app *app)
{
	audit_abandon(app->audit);
}

void
gate_shutdown_fail_waiting(gk_app *app)
{
	pthread_mutex_lock(&app->wait_lock);
	while (app->waiting != NULL)
		ticket_settle_locked(app, app->waiting, GK_ERR_UNAVAILABLE);
	pthread_mutex_unlock(&app->wait_lock);
	/* an upload being committed is woken once its commit ends (bounded
	 * by the store's own waits) */
	work_wait(app);
}

/*
 * A write whose store commit failed after its grant was recorded (the
 * disk, the index or the bucket failed in between): the client gets the
 * error, and a second record of the same request says so, so that the
 * audit never shows as done a write that did not happen.
 */
static void
commit_failed(gate_exchange *x)
{
	static const char note[] = " (the store failed after the grant was "
	    "recorded: the write did not complete)";
	gk_audit_record rec;

	gate_reply_message_append(&x->rep, note);
	gate_count(x->app, GK_STAT_ERRORS);
	record_of(x, &rec);
	if (audit_submit(x->app->audit, &rec, NULL, NULL) != 0) {
		gate_count(x->app, GK_STAT_AUDIT_FAILURES);
		gk_error("request %s: the record of its failed commit was not "
		    "written", x->req.request_id);
	}
}

void
gate_settle(gate_exchange *x)
{
	if (!x->settled_off)
		settle_work(x);
}

/* gate_settle's work: on the adapter's thread, or a worker's. */
static void
settle_work(gate_exchange *x)
{
	gk_app *app = x->app;

	if (atomic_load(&x->state) != X_SETTLED) {
		/* never woken: nothing may be granted */
		x->audit_result = GK_ERR_INTERNAL;
		atomic_store(&x->state, X_SETTLED);
	}
	if (x->rep.settled != NULL) {
		void (*fn)(void *, int) = x->rep.settled;

		x->rep.settled = NULL;
		fn(x->rep.settled_arg, x->audit_result == 0);
	}
	if (x->audit_result != 0) {
		gate_count(app, GK_STAT_AUDIT_FAILURES);
		if (x->rep.grant) {
			gk_error("request %s: audit record not written; "
			    "refusing the grant", x->req.request_id);
			gate_reply_error(&x->rep, 503, "error",
			    "Service Unavailable: audit log unavailable");
		} else {
			/* the writer logs the outage once; a line per
			 * refusal would let a flood fill the log's disk */
			gk_debug("request %s: audit record of a refusal not "
			    "written", x->req.request_id);
		}
		return;
	}
	if (x->up != NULL && x->rep.grant) {
		gate_upload_commit(x->up, &x->rep);
		if (!x->rep.grant)
			commit_failed(x);
	}
	x->granted = x->rep.grant;
}

/* ---- rendering -------------------------------------------------------- */

int
gate_reply_status(const gate_exchange *x)
{
	return x->rep.status;
}

/* Extra header lines "Name: value\n" (gk_reply.headers, the S3 API's). */
static void
extra_headers(const gk_buf *b, gk_header_fn fn, void *arg)
{
	const char *p = (const char *)b->data, *end, *nl, *colon;
	char name[128], value[2048];

	if (p == NULL)
		return;	/* no extra headers */
	end = p + b->len;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		colon = memchr(p, ':', (size_t)(nl - p));
		if (colon != NULL && (size_t)(colon - p) < sizeof(name) &&
		    (size_t)(nl - colon) < sizeof(value)) {
			memcpy(name, p, (size_t)(colon - p));
			name[colon - p] = '\0';
			colon++;
			while (colon < nl && *colon == ' ')
				colon++;
			memcpy(value, colon, (size_t)(nl - colon));
			value[nl - colon] = '\0';
			fn(arg, name, value);
		}
		p = nl + 1;
	}
}

void
gate_reply_headers(const gate_exchange *x, gk_header_fn fn, void *arg)
{
	const gk_reply *rep = &x->rep;
	char date[40], retry[16];

	if (rep->content_type != NULL)
		fn(arg, "Content-Type", rep->content_type);
	extra_headers(&rep->headers, fn, arg);
	if (!rep->no_default_headers) {	/* S3 API: no CORS or cache headers */
		if (rep->acao != NULL)	/* an allowed origin only, never "null" */
			fn(arg, "Access-Control-Allow-Origin", rep->acao);
		fn(arg, "Vary", "Origin");
		fn(arg, "Cache-Control", "no-store, must-revalidate");
		fn(arg, "X-Content-Type-Options", "nosniff");
		fn(arg, "Access-Control-Expose-Headers",
		    "X-Request-Id, Content-Range, Content-Length, Location, "
		    "Retry-After");
	}
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
	if (rep->set_cookie != NULL)
		fn(arg, "Set-Cookie", rep->set_cookie);
	if (rep->csp != NULL) {
		fn(arg, "Content-Security-Policy", rep->csp);
		fn(arg, "X-Frame-Options", "DENY");
		fn(arg, "Referrer-Policy", "no-referrer");
	}
	if (rep->reader != NULL && !rep->no_default_headers) {
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

/* 1 once shutdown began. */
static int
app_stopping(gk_app *app)
{
	int s;

	pthread_mutex_lock(&app->wait_lock);
	s = app->stopping;
	pthread_mutex_unlock(&app->wait_lock);
	return s;
}

int
gate_read_ready(gate_exchange *x)
{
	if (x->rep.reader == NULL || x->io_inline ||
	    store_reader_ready(x->rep.reader))
		return 1;
	/* shutting down: the read waits on the adapter's thread (bounded
	 * by the store's stall limit), so no request stays suspended */
	return app_stopping(x->app);
}

int
gate_body_ready(gate_exchange *x)
{
	gk_store_writer *w;

	if (x->up == NULL || x->io_inline ||
	    (w = gate_upload_writer(x->up)) == NULL ||
	    store_writer_ready(w))
		return 1;
	return app_stopping(x->app);	/* as for a read */
}

/*
 * One turn of a worker waiting for the store: at most IO_WAIT_TURN_MS,
 * then back to the end of the queue, so that slow transfers take turns
 * with the decisions and commits the workers owe.
 */
#define IO_WAIT_TURN_MS 200

static void
io_wait_work(gate_exchange *x)
{
	void (*wake)(void *) = x->io_wake;
	void *arg = x->io_wake_arg;
	gk_store_writer *w;
	int r = 0;

	if (x->io_wait == IO_READ)
		r = store_reader_wait(x->rep.reader, IO_WAIT_TURN_MS);
	else if ((w = gate_upload_writer(x->up)) != NULL)
		r = store_writer_wait(w, IO_WAIT_TURN_MS);
	if (r == GK_ERR_AGAIN && !app_stopping(x->app) &&
	    work_queue(x->app, x) == 0)
		return;		/* another turn */
	x->io_wait = IO_NONE;
	wake(arg);		/* x is the adapter's again */
}

static void
io_wait(gate_exchange *x, int kind, void (*wake)(void *arg), void *arg)
{
	x->io_wake = wake;
	x->io_wake_arg = arg;
	x->io_wait = kind;
	if (work_queue(x->app, x) != 0) {
		x->io_wait = IO_NONE;
		x->io_inline = 1;
		wake(arg);
	}
}

void
gate_read_wait(gate_exchange *x, void (*wake)(void *arg), void *arg)
{
	io_wait(x, IO_READ, wake, arg);
}

void
gate_body_wait(gate_exchange *x, void (*wake)(void *arg), void *arg)
{
	io_wait(x, IO_WRITE, wake, arg);
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
	/* still open: gate_decide never ran, the body never ended */
	if (!complete && x->up != NULL && !x->body_audited &&
	    atomic_load(&x->state) == X_OPEN)
		abandoned(x);
	if (x->ticket != NULL) {
		pthread_mutex_lock(&x->app->wait_lock);
		if (x->ticket != NULL) {
			struct gate_ticket *t = x->ticket;

			if (t->prev != NULL)
				t->prev->next = t->next;
			else
				x->app->waiting = t->next;
			if (t->next != NULL)
				t->next->prev = t->prev;
			t->prev = t->next = NULL;
			t->x = NULL;	/* the callback frees it */
			x->ticket = NULL;
		}
		pthread_mutex_unlock(&x->app->wait_lock);
	}
	/* an upload into a remote store may still have a multipart upload
	 * to abort (a bucket call, which can wait): a worker frees it; the
	 * rest of x is x's own memory, not the adapter's */
	if (x->up != NULL && store_remote(x->app->store)) {
		x->free_job = 1;
		if (work_queue(x->app, x) == 0)
			return;
		x->free_job = 0;
	}
	exchange_release(x);
}

/* What gate_exchange_free frees, on the adapter's thread or a worker. */
static void
exchange_release(gate_exchange *x)
{
	gate_upload_free(x->up);
	gate_reply_release(&x->rep);
	policy_free(x->req.policy);
	gk_buf_release(&x->fwd_hdr[0]);
	gk_buf_release(&x->fwd_hdr[1]);
	free(x);
}
