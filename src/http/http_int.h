/*
 * http_int.h - inside the http folder only: the slow-client watchdog
 * (guard.c) that server.c drives from libmicrohttpd's callbacks, and the
 * HTTP-to-HTTPS redirect listener (redirect.c).
 */
#ifndef GK_HTTP_INT_H
#define GK_HTTP_INT_H

#include "http.h"

#include <stdarg.h>
#include <sys/socket.h>

struct MHD_Daemon;
struct MHD_Connection;

typedef struct http_guard http_guard;
typedef struct http_conn http_conn;

/*
 * Starts the watchdog: a connection must deliver a complete request head
 * within head_timeout_s seconds of its first byte (of accept, for the
 * first request), and a body must arrive within body_timeout_s seconds
 * plus one second per body_min_rate bytes received. 0 turns a check off.
 * Offending connections are shut down (the server then closes them).
 */
int http_guard_start(unsigned head_timeout_s, unsigned body_timeout_s,
    unsigned body_min_rate, http_guard **out) GK_WUR;
/* Stops the thread and frees every entry left. Accepts NULL. */
void http_guard_stop(http_guard *g);
/* Connections the watchdog has shut down so far. */
uint64_t http_guard_closed(const http_guard *g);

/* A connection was accepted on fd: its entry, or NULL (unwatched: the
 * watchdog is off or out of memory). */
http_conn *http_guard_open(http_guard *g, int fd);
/* The connection is closing, before its socket is: forget it (frees c).
 * Accepts NULL. */
void http_guard_close(http_guard *g, http_conn *c);
/* The head arrived; body: 1 when one follows (its clock begins), 0 when
 * the request is answered now (no clock). */
void http_guard_head_done(http_guard *g, http_conn *c, int body);
/* The body arrived (the request is being answered: no clock). */
void http_guard_body_done(http_guard *g, http_conn *c);
/* The request ended; the connection is kept alive for the next one. */
void http_guard_request_done(http_guard *g, http_conn *c);

/* libmicrohttpd's error logger (server.c's). */
typedef void (*http_log_fn)(void *cls, const char *fmt, va_list ap);

/* 1 when the head announces a body: a transfer coding (then *unknown,
 * when given, is 1: its length on the wire is not known) or a length
 * other than 0 (a malformed one is refused with the head). */
int http_announces_body(struct MHD_Connection *conn, int *unknown);

/* What the redirect listener's callbacks read; it must outlive the
 * daemon (and the guard be stopped after it). */
typedef struct {
	const char *public_url;
	http_guard *guard;	/* the main listener's watchdog */
} http_redirect_ctx;

/*
 * Starts the plain listener on cfg->redirect_port (the address family and
 * address of main_ss, the main listener's): 301/308 to ctx->public_url +
 * the request's path and query, its connections watched by ctx->guard,
 * libmicrohttpd's errors to log. *port: the port it bound. 0 or
 * GK_ERR_IO.
 */
int http_redirect_start(const http_redirect_ctx *ctx, const http_settings *cfg,
    const struct sockaddr_storage *main_ss, http_log_fn log,
    struct MHD_Daemon **out, unsigned *port) GK_WUR;

/* ---- a client's TCP connection as the kernel sees it (tcp.c) -------- */

/* tcpi_state values (the kernel's include/net/tcp_states.h; not in the
 * exported headers) */
#define HTTP_TCP_ESTABLISHED 1
#define HTTP_TCP_CLOSE_WAIT 8	/* the peer has sent its FIN */

typedef struct {
	uint64_t received;	/* bytes received so far */
	int64_t last_recv_ms;	/* gk_mono_us() / 1000 when data last came
				 * (the kernel keeps it in jiffies) */
	int state;		/* HTTP_TCP_* or another tcpi_state */
} http_tcp_state;

/* 0, or -1 when the socket has no (recent enough) TCP_INFO. */
int http_tcp_state_of(int fd, http_tcp_state *out) GK_WUR;
/* Bytes received and not yet read; -1 if unknown. */
int http_tcp_unread(int fd);

/* ---- idle keep-alive connections held outside libmicrohttpd (park.c) ----
 *
 * On the plain HTTP daemons (main and [s3api]), a connection that idles
 * after an answer that keeps it open is taken back (socket and a small
 * record only) and handed over again when its next bytes arrive: at once
 * after its first answer and after one to a client that idles between
 * requests (http_park_request_done), else after libmicrohttpd's own
 * timeout (server.c's idle_arm). Limits count connections from their
 * start to their last close, parked or not. The daemons run with
 * MHD_USE_TURBO.
 */
#define HTTP_PARK_LISTENERS 2	/* the main port, the [s3api] port */
#define HTTP_PARK_PAUSE_MS 1000	/* see http_park_request_done */

typedef struct http_park http_park;
/* One client connection, from its start to its last close. */
typedef struct http_client http_client;

/* The limits (conn_limit in all, per_ip_conn_limit per address, 0 none)
 * and the idle timeout (seconds, counted from the last answer). */
int http_park_new(unsigned conn_limit, unsigned per_ip_conn_limit,
    unsigned idle_timeout_s, http_park **out) GK_WUR;
/* Starts the thread; woken connections of listener i go to d[i] (NULL:
 * none). */
int http_park_run(http_park *p, struct MHD_Daemon *const *d) GK_WUR;
/* Closes every parked connection; nothing is parked from then on.
 * Accepts NULL. */
void http_park_quiesce(http_park *p);
/* After the daemons have stopped. Accepts NULL. */
void http_park_free(http_park *p);

/*
 * libmicrohttpd started serving fd (listener: which daemon), the client
 * at sa: its record, the one it had if it was handed over again, or a
 * new one counted against the limits. NULL with *refused = 1 when over a
 * limit (or out of memory): the connection must serve no request and be
 * closed. NULL with *refused = 0: not tracked (an address of another
 * family).
 */
http_client *http_park_adopt(http_park *p, int fd, const struct sockaddr *sa,
    unsigned listener, int *refused);
/*
 * A request on c completed at now_ms (monotonic), consuming bytes of the
 * stream (its head and body); known = 0 when they are not known (a
 * chunked body): c is then never taken back. 1 if c is to be taken back
 * at once (http_park_now): it was the connection's first answered
 * request, or the client had idled before it (more than
 * HTTP_PARK_PAUSE_MS from its previous answer to this one's; a client
 * sending requests one after the other is left alone). Accepts NULL.
 */
int http_park_request_done(http_client *c, uint64_t bytes, int known,
    int64_t now_ms);
/*
 * Takes c back at once, in the completed notification of a request
 * (libmicrohttpd's thread; conn on descriptor fd; the answer keeps the
 * connection open), when libmicrohttpd holds no byte of a next request:
 * 1 if done (c is then no longer the caller's, and libmicrohttpd frees
 * the connection in its next round), 0 if not (all as it was). A client
 * that sends one request and idles costs no pool while it idles.
 */
int http_park_now(http_park *p, http_client *c, struct MHD_Connection *conn,
    int fd);
/*
 * libmicrohttpd is closing c's connection (its closed notification,
 * before it closes fd). idle_since_ms: the monotonic ms at which server.c
 * armed the idle take-back (its last answer), 0 if it did not (or a
 * request began since).
 * Returns 1 if the connection was taken back (parked on a dup of fd),
 * 0 if it ends here (fd shut down for writing, c released). Either way
 * c is no longer the caller's.
 */
int http_park_closing(http_park *p, http_client *c, int fd,
    int64_t idle_since_ms);

#endif
