/*
 * http.h - the http folder's whole interface: the server (GNU
 * libmicrohttpd), the request as the gate sees it, replies, and the
 * streaming multipart/form-data parser used by the upload endpoint.
 */
#ifndef GK_HTTP_H
#define GK_HTTP_H

#include <stdint.h>
#include <stdio.h>

#include "util/util.h"

/* ---- multipart/form-data (RFC 7578), streaming ----------------------- */

/*
 * Limits: boundary 1..70 chars; a part's header block at most
 * GK_MP_MAX_HEADER bytes; at most GK_MP_MAX_PARTS parts; preamble and
 * epilogue at most 4096 bytes together (so a body that never reaches a
 * delimiter is refused early instead of read to its end). Anything
 * malformed or over a limit makes feed/finish return GK_ERR_INVALID (or
 * GK_ERR_TOO_LARGE); a callback's non-zero return aborts and is returned.
 * Memory use is bounded by the limits whatever the body size.
 */
#define GK_MP_MAX_HEADER 8192
#define GK_MP_MAX_PARTS 64

typedef struct {
	/* A part starts: name and filename from Content-Disposition
	 * (quoted-strings decoded; filename empty if absent; neither holds
	 * a control byte other than HTAB), content_type is the raw header
	 * value, trimmed, possibly empty. The slices are valid only during
	 * the call. */
	int (*part_begin)(void *arg, gk_slice name, gk_slice filename,
	    gk_slice content_type);
	/* Body bytes of the current part, in order, in any chunking (never
	 * empty). At most boundary length + 3 bytes are held back at a
	 * time, while they could still begin a delimiter. */
	int (*part_data)(void *arg, const uint8_t *p, size_t len);
	/* The current part ended (its delimiter was seen). */
	int (*part_end)(void *arg);
} gk_multipart_cb;

typedef struct gk_multipart gk_multipart;

/*
 * Creates a parser from the Content-Type header value
 * ("multipart/form-data; boundary=..."; quoted boundary allowed).
 * GK_ERR_INVALID if it is not multipart/form-data with a valid boundary.
 */
int http_multipart_new(gk_slice content_type, const gk_multipart_cb *cb,
    void *arg, gk_multipart **out) GK_WUR;
/*
 * Feeds the next bytes of the body (any chunking; len 0 is a no-op).
 * The preamble and the epilogue are ignored (within the limit). Headers: CRLF lines only, no
 * NUL or other control bytes but HTAB, no folding; Content-Disposition
 * form-data with a name is required, Content-Type optional, each at most
 * once; other headers ignored. After a delimiter only "--" or optional
 * spaces/tabs and CRLF may follow. Errors are sticky: every later call
 * returns the same code.
 */
int http_multipart_feed(gk_multipart *m, const uint8_t *p, size_t len) GK_WUR;
/* End of body: GK_ERR_INVALID unless the closing delimiter was seen.
 * A part left open then gets no part_end. free accepts NULL. */
int http_multipart_finish(gk_multipart *m) GK_WUR;
void http_multipart_free(gk_multipart *m);

/* ---- the request head, checked by the RFC (head.c) --------------------- */

/*
 * Limits on a request head, answered at once and the connection closed
 * (a v2 token of GK_JWS_MAX bytes fits in the query or in Authorization):
 * the request target (414), the number of query parameters (414), the
 * number of header fields, one field line and all of them together (431).
 * libmicrohttpd's own limit (its per-connection memory) lies above these.
 */
#define HTTP_URI_MAX (16u * 1024)
#define HTTP_QUERY_PARAMS_MAX 128
#define HTTP_FIELDS_MAX 100
#define HTTP_FIELD_MAX (16u * 1024)
#define HTTP_HEAD_MAX (32u * 1024)

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

struct gk_app;

/*
 * Starts listening on cfg->listen:cfg->port with a thread pool, connection
 * limits and timeouts, and serves app until http_server_stop.
 * Prints nothing; returns GK_ERR_IO if the port cannot be bound.
 */
typedef struct gk_http gk_http;

int http_server_start(struct gk_app *app, gk_http **out) GK_WUR;
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const gk_http *h);
/*
 * Graceful stop: stops accepting, lets requests waiting for their audit
 * commit get their answer (bounded, 5 s), then closes. Accepts NULL.
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
