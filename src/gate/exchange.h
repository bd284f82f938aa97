/*
 * exchange.h - one request's life, owned by the gate. The HTTP adapter
 * hands over what it saw (method, target, headers, peer), feeds the body,
 * and renders the reply the gate settles; it decides nothing.
 *
 *   gate_begin -> gate_body* -> gate_decide
 *     READY: render now (refusals and answers that grant nothing)
 *     WAIT:  the adapter gets ready to wait, gate_commit submits the whole
 *            audit record, wake() comes once it is durable (an upload's
 *            store commit done by then, on a thread of the gate's, so
 *            that a slow store holds no adapter thread), then
 *            gate_settle on the adapter's thread: a grant whose record
 *            failed becomes a 503.
 *   render: gate_reply_status, gate_reply_headers, gate_reply_body or
 *           gate_read (which refuses until the grant is settled).
 *
 * This header pulls in no store, audit, policy or config header: it is
 * all an adapter (src/http) needs.
 */
#ifndef GK_GATE_EXCHANGE_H
#define GK_GATE_EXCHANGE_H

#include <stdint.h>
#include <sys/socket.h>

#include "util/util.h"

struct gk_app;
typedef struct gate_exchange gate_exchange;

typedef void (*gk_header_fn)(void *arg, const char *name, const char *value);

/* The request headers as the adapter keeps them. The strings must stay
 * valid until gate_exchange_free (the gate keeps pointers into them). */
typedef struct {
	/* the first value of a header (name case-insensitive), or NULL */
	const char *(*get)(void *ctx, const char *name);
	/* calls fn for every header line, in order */
	void (*each)(void *ctx, gk_header_fn fn, void *arg);
	void *ctx;
} gk_headers;

/* What the adapter saw of a request. */
typedef struct {
	const char *method;	/* "GET", "HEAD", "POST", ... */
	const char *target;	/* raw request-target (path?query), or NULL
				 * when the head was refused */
	/* the adapter refused the request head (its target, its fields):
	 * the status to answer (414, 431, 400, 501) and a static one-line
	 * reason; 0 = none. A NULL target without a status is a 414. */
	int refuse;
	const char *refuse_why;
	const struct sockaddr *peer;	/* TCP peer, NULL if unknown */
	gk_headers headers;
	int on_s3api_port;	/* came to the [s3api] listener */
} gk_req_in;

/* Starts an exchange (routes it; a body route starts its upload).
 * NULL only when out of memory. */
gate_exchange *gate_begin(struct gk_app *app, const gk_req_in *in) GK_WUR;
/* The request id (32 hex digits), for the adapter's log lines. */
const char *gate_request_id(const gate_exchange *x);
/*
 * 1 when the request is refused before its body (its head refused by the
 * adapter, or an upload refused for its rate, token or declared size):
 * decide now, read none of the body.
 */
int gate_answer_now(const gate_exchange *x);
/*
 * The next body bytes, in order. 0 to go on; GK_ERR_TOO_LARGE to drop the
 * connection without an answer: a body nobody reads grew past what the
 * gate discards, or an upload refused mid-body went on past a small rest
 * (its refusal is recorded without waiting).
 */
int gate_body(gate_exchange *x, const uint8_t *p, size_t len) GK_WUR;
/*
 * An upload into a remote store may have to wait for the bucket to take
 * a part. gate_body_ready: 1 when gate_body takes the next piece without
 * waiting on the network (always for fs, and once shutdown began).
 * Otherwise the adapter keeps the piece, suspends the request and calls
 * gate_body_wait: wake(arg) is called exactly once, from any thread and
 * possibly before it returns, when the store can take it (or failed: the
 * upload then says so), or shutdown began, or no worker could wait.
 */
int gate_body_ready(gate_exchange *x);
void gate_body_wait(gate_exchange *x, void (*wake)(void *arg), void *arg);

enum { GATE_READY = 0, GATE_WAIT = 1 };
/*
 * End of the body: the gate decides. GATE_READY: render the reply now.
 * GATE_WAIT: the reply depends on the audit record's commit; get ready to
 * be woken (suspend) and call gate_commit.
 */
int gate_decide(gate_exchange *x);
/*
 * Submits the whole audit record. wake(arg) is called exactly once, from
 * any thread and possibly before gate_commit returns, once the record is
 * durable (and an upload it grants committed to the store) or has failed;
 * the adapter then calls gate_settle.
 */
void gate_commit(gate_exchange *x, void (*wake)(void *arg), void *arg);
/* On the adapter's thread after wake: a grant without a durable record
 * becomes a 503; an upload with one is committed (made visible) unless
 * that was done before the wake. */
void gate_settle(gate_exchange *x);

/*
 * Shutdown, in this order while the adapter waits for its suspended
 * requests: gate_shutdown_begin (commits are no longer waited for: a
 * grant becomes a 503, recorded as such; a refusal is answered while its
 * record is written), gate_shutdown_abandon (the audit drops the records
 * it has not started; their exchanges are woken with a failed commit),
 * gate_shutdown_fail_waiting (every exchange still waiting is woken with a
 * failed commit, and an upload being committed once its commit ends, so
 * none stays suspended).
 */
void gate_shutdown_begin(struct gk_app *app);
void gate_shutdown_abandon(struct gk_app *app);
void gate_shutdown_fail_waiting(struct gk_app *app);

/* ---- rendering the reply ---------------------------------------------- */

int gate_reply_status(const gate_exchange *x);
/* Calls fn for every response header. */
void gate_reply_headers(const gate_exchange *x, gk_header_fn fn, void *arg);
/*
 * 1 when the body is streamed: *len bytes read with gate_read. 0 when it
 * is a buffer: gate_reply_body hands it over (malloc'ed, may be NULL when
 * empty; the caller frees).
 */
int gate_reply_streams(const gate_exchange *x, uint64_t *len);
char *gate_reply_body(gate_exchange *x, size_t *len);
/*
 * A body streamed from a remote store may have to wait for the bucket.
 * gate_read_ready: 1 when the next gate_read returns without waiting on
 * the network (always for fs, and once shutdown began). Otherwise the
 * adapter suspends the request and calls gate_read_wait: wake(arg) is
 * called exactly once, from any thread and possibly before it returns,
 * when a read is ready (or failed: gate_read says so), or shutdown began,
 * or no worker could wait (the read then waits on the adapter's thread).
 */
int gate_read_ready(gate_exchange *x);
void gate_read_wait(gate_exchange *x, void (*wake)(void *arg), void *arg);
/*
 * Reads streamed body bytes from pos (relative to the reply's body).
 * GK_ERR_DENIED unless the grant is settled (its record durable): no byte
 * of an object leaves before that. Store errors otherwise.
 */
int gate_read(gate_exchange *x, uint64_t pos, uint8_t *buf, size_t max,
    size_t *got) GK_WUR;
/* Ends the exchange; complete is 0 when the connection ended before the
 * reply was sent (logged for a streamed body). x may be NULL. */
void gate_exchange_free(gate_exchange *x, int complete);

#endif
