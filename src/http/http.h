/*
 * http.h - the http folder's whole interface: the HTTP server on GNU
 * libmicrohttpd, a thin adapter between connections and the gate's
 * request lifecycle (gate/exchange.h). It decides nothing.
 */
#ifndef GK_HTTP_H
#define GK_HTTP_H

#include <stdint.h>

#include "util/util.h"

/* ---- the server -------------------------------------------------------- */

struct gk_app;

/* What the server takes from the config ([server] settings). */
typedef struct http_settings {
	const char *listen;	/* IPv4 or IPv6 address to bind */
	unsigned port;		/* 0: any free port */
	unsigned threads;	/* 0: one per core */
	unsigned conn_limit;
	unsigned per_ip_conn_limit;
	unsigned conn_timeout;	/* idle seconds */
} http_settings;

/*
 * Starts listening on s->listen:s->port with a thread pool, connection
 * limits and timeouts, and hands every request to the gate (app) until
 * http_server_stop. Prints nothing; returns GK_ERR_IO if the port cannot
 * be bound, GK_ERR_CONFIG if listen is not an address.
 */
typedef struct gk_http gk_http;

int http_server_start(struct gk_app *app, const http_settings *s,
    gk_http **out) GK_WUR;
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const gk_http *h);
void http_server_stop(gk_http *h);

#endif
