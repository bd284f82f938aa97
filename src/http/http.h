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

/* ---- the request head, checked by the RFC (head.c) --------------------- */

/*
 * Limits on a request head, answered at once and the connection closed
 * (a v2 token of GK_JWS_MAX bytes fits in the query or in Authorization):
 * the request target (414), the number of query parameters (414), the
 * number of header fields, one field line and all of them together (431).
 * libmicrohttpd's own limit (its per-connection memory, 40 KiB in
 * server.c) lies above these.
 */
#define HTTP_URI_MAX (16u * 1024)
#define HTTP_QUERY_PARAMS_MAX 128
#define HTTP_FIELDS_MAX 100
#define HTTP_FIELD_MAX (16u * 1024)
#define HTTP_HEAD_MAX (24u * 1024)

/*
 * The raw request target (path and query, as received): 0 if acceptable,
 * else the status to answer (414 too long or too many parameters, 400 a
 * byte outside visible ASCII or not a path) with *why a static message.
 */
int http_uri_check(gk_slice uri, const char **why);

/* Header fields, fed one by one in the order received. */
typedef struct {
	size_t fields;
	size_t bytes;
	unsigned hosts, content_lengths, transfer_encodings;
	int te_unknown;
	int status;		/* first problem seen, 0 = none */
	const char *why;
} http_head;

void http_head_init(http_head *h);
/*
 * One field: its name and value as parsed (value without the line end);
 * value_cut is 1 if the value held a NUL (the parser cut it there).
 * Records the first problem: a name that is not a token (whitespace
 * before the colon), a control byte or NUL in a value, a malformed
 * Host or Content-Length, a count or size over the limits.
 */
void http_head_field(http_head *h, gk_slice name, gk_slice value,
    int value_cut);
/*
 * After the last field: 0 if the head is acceptable, else the status to
 * answer (400, 431, 501) and *why a static one-line message. Besides the
 * fields themselves: HTTP/1.1 needs exactly one Host (1.0 at most one);
 * Content-Length twice, Content-Length with Transfer-Encoding, or
 * Transfer-Encoding in HTTP/1.0 is ambiguous framing (400); a transfer
 * coding other than "chunked" is 501 (RFC 9112 §6.1, §6.3).
 */
int http_head_verdict(http_head *h, int http11, const char **why);

/* ---- the server -------------------------------------------------------- */

/* Idle keep-alive connections the plain HTTP server held outside
 * libmicrohttpd (park.c), since the process started: for /metrics. */
typedef struct {
	uint64_t now;		/* held at this moment */
	uint64_t parked;	/* taken back */
	uint64_t woken;		/* handed back on their next bytes */
	uint64_t idle_closed;	/* closed while held: the idle timeout */
	uint64_t peer_closed;	/* closed while held: by the client */
} http_park_figures;

void http_park_counters(http_park_figures *out);

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
	unsigned head_timeout;	/* seconds for a whole request head, 0: off */
	unsigned body_timeout;	/* seconds for a body, plus body_min_rate */
	unsigned body_min_rate;	/* bytes a second a body earns, 0: none */
	unsigned s3api_port;	/* [s3api] listener (issue 13), 0: none */
} http_settings;

/*
 * Starts listening on s->listen:s->port (HTTPS with s->tls_cert) with a
 * thread pool, connection limits and timeouts, and hands every request to
 * the gate (app) until http_server_stop; with s->redirect_port also a
 * plain listener that redirects to s->public_url. Prints nothing;
 * returns GK_ERR_IO if the port cannot be bound, GK_ERR_CONFIG (the cause
 * in one line in err) if listen is not an address or a TLS file does not
 * load.
 */
typedef struct gk_http gk_http;

int http_server_start(struct gk_app *app, const http_settings *s,
    gk_http **out, char *err, size_t errlen) GK_WUR;
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const gk_http *h);
/* The [s3api] port bound (0 when it has none). */
unsigned http_server_s3api_port(const gk_http *h);
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
/* The expiry (notAfter, Unix seconds) of the certificate new handshakes
 * get now; 0 without TLS. For /metrics and the serve loop's warning. */
int64_t http_tls_not_after(void);
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
