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

/*
 * Starts the plain listener on cfg->redirect_port (the address family and
 * address of main_ss, the main listener's): 301/308 to public_url + the
 * request's path and query, libmicrohttpd's errors to log. *port: the
 * port it bound. 0 or GK_ERR_IO.
 * public_url must outlive the daemon.
 */
int http_redirect_start(const char *public_url, const http_settings *cfg,
    const struct sockaddr_storage *main_ss, http_log_fn log,
    struct MHD_Daemon **out, unsigned *port) GK_WUR;

#endif
