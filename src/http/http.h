/*
 * http.h - the http folder's whole interface: the HTTP server on GNU
 * libmicrohttpd, a thin adapter between connections and the gate's
 * request lifecycle (gate/exchange.h). It decides nothing.
 */
#ifndef GK_HTTP_H
#define GK_HTTP_H

#include <stdint.h>
#include <stdio.h>

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
	const char *public_url;	/* where the redirect listener points */
	const char *tls_cert;	/* PEM chain, leaf first; "" or NULL: HTTP */
	const char *tls_key;	/* its PEM private key */
	const char *tls_ocsp;	/* DER OCSP response to staple, "": none */
	unsigned redirect_port;	/* plain listener redirecting, 0: none */
	unsigned hsts_max_age;	/* Strict-Transport-Security, 0: not sent */
} http_settings;

/*
 * Starts listening on s->listen:s->port (HTTPS with s->tls_cert) with a
 * thread pool, connection limits and timeouts, and hands every request to
 * the gate (app) until http_server_stop; with s->redirect_port also a
 * plain listener that redirects to s->public_url. Prints nothing; returns GK_ERR_IO if the port cannot
 * be bound, GK_ERR_CONFIG if listen is not an address.
 */
typedef struct gk_http gk_http;

int http_server_start(struct gk_app *app, const http_settings *s,
    gk_http **out) GK_WUR;
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const gk_http *h);
/*
 * Graceful stop: stops accepting, lets the requests in flight finish
 * (their audit commit and answer, downloads included; bounded, 10 s),
 * then closes. Accepts NULL.
 */
void http_server_stop(gk_http *h);
/*
 * Re-reads [server] tls_cert, tls_key and tls_ocsp (the files named at
 * start) and swaps them in for new handshakes; connections already open
 * keep theirs. A file that does not load keeps the old credentials and
 * returns GK_ERR_CONFIG with one line in err. 0 without TLS.
 */
int http_server_reload_tls(gk_http *h, char *err, size_t errlen) GK_WUR;
/* 1 when the server speaks HTTPS. */
int http_server_is_tls(const gk_http *h);
/* The port of the plain listener that redirects to HTTPS, 0 if none. */
unsigned http_server_redirect_port(const gk_http *h);

/* ---- TLS (tls.c) --------------------------------------------------------
 *
 * GnuTLS credentials for libmicrohttpd's certificate callback: a PEM chain
 * (leaf first), its unencrypted PEM key (must match the leaf), and
 * optionally a DER OCSP response for the leaf, stapled to every handshake.
 * One TLS context per process (the handshake callback reads a global).
 * Retired credentials are kept until http_tls_free, since sessions may
 * still point at them (a few KiB per reload).
 */
typedef struct http_tls http_tls;

/* Loads the files; GK_ERR_CONFIG with one line in err when one is
 * missing, malformed, expired, or the key does not match. */
int http_tls_new(const char *cert_file, const char *key_file,
    const char *ocsp_file, http_tls **out, char *err, size_t errlen) GK_WUR;
/* Loads the same files again and makes them current; on failure the old
 * ones stay. */
int http_tls_reload(http_tls *t, char *err, size_t errlen) GK_WUR;
void http_tls_free(http_tls *t);
/* The GnuTLS priority string: TLS 1.2/1.3, AEAD ciphers, ECDHE only. */
const char *http_tls_priorities(void);
/* The gnutls_certificate_retrieve_function3 for
 * MHD_OPTION_HTTPS_CERT_CALLBACK2. */
void *http_tls_cert_callback(void);
int http_tls_has_ocsp(const http_tls *t);
/*
 * check-config's report: loads the files as the server would, prints the
 * subject, the names (subjectAltName), the chain length, the expiry and
 * OCSP state to fp (may be NULL), and 'warning: ...' lines to warn_fp
 * (no names; expiry within 14 days), counting them in *warnings. Returns
 * GK_ERR_CONFIG (an 'error: ...' line on warn_fp) when it does not load.
 */
int http_tls_describe(const char *cert_file, const char *key_file,
    const char *ocsp_file, FILE *fp, FILE *warn_fp, int *warnings) GK_WUR;

#endif
