/*
 * tls.c - HTTPS for the server: the certificate chain, key and optional
 * stapled OCSP response loaded with GnuTLS (the library Debian's
 * libmicrohttpd is built on), handed to each handshake by a certificate
 * callback, and swapped atomically on reload so open connections and
 * handshakes in flight keep the credentials they started with.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TLS_MAX_CHAIN 16

/*
 * TLS 1.3 and 1.2 only; AEAD ciphers only (AES-GCM, ChaCha20-Poly1305);
 * forward-secret ECDHE key exchange only (no RSA key transport, no
 * finite-field DHE); the server's order wins. About Mozilla's
 * "intermediate" profile.
 */
static const char tls_priorities[] =
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
    "-SIGN-RSA-SHA1:-SIGN-DSA-SHA1:-SIGN-ECDSA-SHA1:%SERVER_PRECEDENCE";

/* One loaded generation of credentials. Never freed while the server
 * runs: a TLS session may point at it until it ends. */
struct tls_gen {
	gnutls_pcert_st pcert[TLS_MAX_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
	gnutls_ocsp_data_st ocsp;
	int has_ocsp;
	time_t not_after;
	struct tls_gen *older;
};

struct http_tls {
	char *cert_file, *key_file, *ocsp_file;
	pthread_mutex_t lock;		/* reloads, one at a time */
	struct tls_gen *gens;		/* every generation, newest first */
};

/* The process's current credentials, read by the handshake callback
 * (GnuTLS gives the callback no user pointer of ours). */
static _Atomic(struct tls_gen *) tls_current;

static void
gen_free(struct tls_gen *g)
{
	unsigned i;

	if (g == NULL)
		return;
	for (i = 0; i < g->n; i++)
		gnutls_pcert_deinit(&g->pcert[i]);
	if (g->key != NULL)
		gnutls_privkey_deinit(g->key);
	gnutls_free(g->ocsp.response.data);
	free(g);
}

/* Why gnutls_load_file could not read path (its own message does not
 * say): "No such file or directory", "Permission denied", ... */
static const char *
unreadable(const char *path, int e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return strerror(errno);
	close(fd);
	return gnutls_strerror(e);
}

static int
key_id(gnutls_pubkey_t pk, unsigned char *id, size_t *len)
{
	return gnutls_pubkey_get_key_id(pk, GNUTLS_KEYID_USE_SHA256, id, len);
}

/* 0 when the private key belongs to the first certificate. */
static int
key_matches(gnutls_privkey_t key, gnutls_pcert_st *leaf)
{
	gnutls_pubkey_t pk = NULL;
	unsigned char a[64], b[64];
	size_t al = sizeof(a), bl = sizeof(b);
	int r = -1;

	if (gnutls_pubkey_init(&pk) < 0)
		return -1;
	if (gnutls_pubkey_import_privkey(pk, key, 0, 0) < 0 ||
	    key_id(pk, a, &al) < 0 || key_id(leaf->pubkey, b, &bl) < 0)
		goto out;
	r = (al == bl && memcmp(a, b, al) == 0) ? 0 : -1;
out:
	gnutls_pubkey_deinit(pk);
	return r;
}

/* Reads a DER OCSP response, checks it is for the leaf certificate, and
 * keeps it with its nextUpdate as the expiry. */
static int
load_ocsp(struct tls_gen *g, const char *file, const gnutls_datum_t *leaf_der,
    char *err, size_t errlen)
{
	gnutls_datum_t der = { NULL, 0 };
	gnutls_ocsp_resp_t resp = NULL;
	gnutls_x509_crt_t crt = NULL;
	time_t next = 0;
	unsigned st;
	int r = -1, e;

	if ((e = gnutls_load_file(file, &der)) < 0) {
		snprintf(err, errlen, "tls_ocsp %s: cannot read: %s", file,
		    unreadable(file, e));
		return -1;
	}
	if (gnutls_ocsp_resp_init(&resp) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, leaf_der, GNUTLS_X509_FMT_DER) < 0)
		goto bad;
	if ((e = gnutls_ocsp_resp_import(resp, &der)) < 0) {
		snprintf(err, errlen, "tls_ocsp %s: not a DER OCSP response: %s",
		    file, gnutls_strerror(e));
		goto out;
	}
	if (gnutls_ocsp_resp_check_crt(resp, 0, crt) < 0) {
		snprintf(err, errlen, "tls_ocsp %s: the response is not for "
		    "tls_cert's certificate", file);
		goto out;
	}
	if (gnutls_ocsp_resp_get_single(resp, 0, NULL, NULL, NULL, NULL,
	    &st, NULL, &next, NULL, NULL) < 0 || st != GNUTLS_OCSP_CERT_GOOD) {
		snprintf(err, errlen, "tls_ocsp %s: the response does not say "
		    "the certificate is good", file);
		goto out;
	}
	if (next != (time_t)-1 && next != 0 && next < time(NULL)) {
		snprintf(err, errlen, "tls_ocsp %s: the response expired "
		    "(nextUpdate passed)", file);
		goto out;
	}
	g->ocsp.version = 0;
	g->ocsp.response = der;
	g->ocsp.exptime = (next == (time_t)-1 || next == 0) ? 0 : next;
	der.data = NULL;	/* transferred */
	g->has_ocsp = 1;
	r = 0;
	goto out;
bad:
	snprintf(err, errlen, "tls_ocsp %s: cannot be parsed", file);
out:
	gnutls_free(der.data);
	gnutls_ocsp_resp_deinit(resp);
	gnutls_x509_crt_deinit(crt);
	return r;
}

static int
gen_load(const http_tls *t, struct tls_gen **out, char *err, size_t errlen)
{
	gnutls_datum_t cert = { NULL, 0 }, key = { NULL, 0 };
	struct tls_gen *g;
	int e, r = -1;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((e = gnutls_load_file(t->cert_file, &cert)) < 0) {
		snprintf(err, errlen, "tls_cert %s: cannot read: %s",
		    t->cert_file, unreadable(t->cert_file, e));
		goto out;
	}
	g->n = TLS_MAX_CHAIN;
	if ((e = gnutls_pcert_list_import_x509_raw(g->pcert, &g->n, &cert,
	    GNUTLS_X509_FMT_PEM, GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED)) < 0) {
		g->n = 0;
		snprintf(err, errlen, "tls_cert %s: not a PEM certificate chain "
		    "(leaf first, at most %d): %s", t->cert_file,
		    TLS_MAX_CHAIN, gnutls_strerror(e));
		goto out;
	}
	if ((e = gnutls_load_file(t->key_file, &key)) < 0) {
		snprintf(err, errlen, "tls_key %s: cannot read: %s",
		    t->key_file, unreadable(t->key_file, e));
		goto out;
	}
	if (gnutls_privkey_init(&g->key) < 0 ||
	    (e = gnutls_privkey_import_x509_raw(g->key, &key,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "tls_key %s: not an unencrypted PEM "
		    "private key", t->key_file);
		goto out;
	}
	if (key_matches(g->key, &g->pcert[0]) != 0) {
		snprintf(err, errlen, "tls_key %s does not belong to the first "
		    "certificate of tls_cert %s", t->key_file, t->cert_file);
		goto out;
	}
	{
		gnutls_x509_crt_t crt;

		if (gnutls_pcert_export_x509(&g->pcert[0], &crt) >= 0) {
			g->not_after = gnutls_x509_crt_get_expiration_time(crt);
			gnutls_x509_crt_deinit(crt);
		}
	}
	if (g->not_after != (time_t)-1 && g->not_after < time(NULL)) {
		snprintf(err, errlen, "tls_cert %s: the certificate has expired",
		    t->cert_file);
		goto out;
	}
	if (t->ocsp_file != NULL && load_ocsp(g, t->ocsp_file,
	    &g->pcert[0].cert, err, errlen) != 0)
		goto out;
	*out = g;
	g = NULL;	/* transferred */
	r = 0;
out:
	if (key.data != NULL) {
		gnutls_memset(key.data, 0, key.size);
		gnutls_free(key.data);
	}
	gnutls_free(cert.data);
	gen_free(g);
	return r;
}

static int
cert_callback(gnutls_session_t session, const struct gnutls_cert_retr_st *info,
    gnutls_pcert_st **certs, unsigned int *certs_length,
    gnutls_ocsp_data_st **ocsp, unsigned int *ocsp_length,
    gnutls_privkey_t *privkey, unsigned int *flags)
{
	struct tls_gen *g = atomic_load(&tls_current);

	(void)session;
	(void)info;
	if (g == NULL)
		return -1;
	*certs = g->pcert;
	*certs_length = g->n;
	*privkey = g->key;
	*ocsp = g->has_ocsp ? &g->ocsp : NULL;
	*ocsp_length = g->has_ocsp ? 1 : 0;
	*flags = 0;	/* ours: kept until http_tls_free */
	return 0;
}

static char *
dup_or_null(const char *s)
{
	return (s != NULL && s[0] != '\0') ? strdup(s) : NULL;
}

int
http_tls_new(const char *cert_file, const char *key_file,
    const char *ocsp_file, http_tls **out, char *err, size_t errlen)
{
	http_tls *t;
	struct tls_gen *g = NULL;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->cert_file = strdup(cert_file)) == NULL ||
	    (t->key_file = strdup(key_file)) == NULL ||
	    (ocsp_file != NULL && ocsp_file[0] != '\0' &&
	    (t->ocsp_file = dup_or_null(ocsp_file)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		http_tls_free(t);
		return GK_ERR_NOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	if (gen_load(t, &g, err, errlen) != 0) {
		http_tls_free(t);
		return GK_ERR_CONFIG;
	}
	t->gens = g;
	atomic_store(&tls_current, g);
	*out = t;
	return 0;
}

int
http_tls_reload(http_tls *t, char *err, size_t errlen)
{
	struct tls_gen *g = NULL;

	if (t == NULL)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (gen_load(t, &g, err, errlen) != 0) {
		pthread_mutex_unlock(&t->lock);
		return GK_ERR_CONFIG;
	}
	g->older = t->gens;
	t->gens = g;
	atomic_store(&tls_current, g);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void
http_tls_free(http_tls *t)
{
	struct tls_gen *g, *next;

	if (t == NULL)
		return;
	if (t->gens != NULL &&
	    atomic_load(&tls_current) == t->gens)
		atomic_store(&tls_current, NULL);
	for (g = t->gens; g != NULL; g = next) {
		next = g->older;
		gen_free(g);
	}
	if (t->cert_file != NULL)
		pthread_mutex_destroy(&t->lock);
	free(t->cert_file);
	free(t->key_file);
	free(t->ocsp_file);
	free(t);
}

const char *
http_tls_priorities(void)
{
	return tls_priorities;
}

void *
http_tls_cert_callback(void)
{
	return (void *)cert_callback;
}

int64_t
http_tls_not_after(void)
{
	struct tls_gen *g = atomic_load(&tls_current);

	return g != NULL && g->not_after != (time_t)-1 ?
	    (int64_t)g->not_after : 0;
}

int
http_tls_has_ocsp(const http_tls *t)
{
	return t != NULL && t->gens != NULL && t->gens->has_ocsp;
}

/* ---- check-config's report ------------------------------------------- */

int
http_tls_describe(const char *cert_file, const char *key_file,
    const char *ocsp_file, FILE *fp, FILE *warn_fp, int *warnings)
{
	http_tls *t = NULL;
	gnutls_x509_crt_t crt = NULL;
	char err[512], buf[1024], when[32];
	size_t len;
	unsigned i;
	time_t exp;
	int r;

	if (http_tls_new(cert_file, key_file, ocsp_file, &t, err,
	    sizeof(err)) != 0) {
		fprintf(warn_fp, "error: %s\n", err);
		return GK_ERR_CONFIG;
	}
	/* check-config is not a server: the global stays unset */
	atomic_store(&tls_current, NULL);
	if (gnutls_pcert_export_x509(&t->gens->pcert[0], &crt) < 0) {
		http_tls_free(t);
		return GK_ERR_INTERNAL;
	}
	len = sizeof(buf);
	if (gnutls_x509_crt_get_dn(crt, buf, &len) >= 0 && fp != NULL)
		fprintf(fp, "tls certificate: subject %s\n", buf);
	if (fp != NULL)
		fprintf(fp, "tls certificate: names");
	for (i = 0;; i++) {
		len = sizeof(buf);
		r = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len,
		    NULL);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r < 0)
			continue;
		if (fp == NULL)
			continue;
		if (r == GNUTLS_SAN_DNSNAME)
			fprintf(fp, " %s", buf);
		else if (r == GNUTLS_SAN_IPADDRESS && len == 4)
			fprintf(fp, " %u.%u.%u.%u", (unsigned char)buf[0],
			    (unsigned char)buf[1], (unsigned char)buf[2],
			    (unsigned char)buf[3]);
		else if (r == GNUTLS_SAN_IPADDRESS)
			fprintf(fp, " (IPv6 address)");
	}
	if (fp != NULL)
		fprintf(fp, "%s\n", i == 0 ? " (none: no subjectAltName)" : "");
	if (i == 0) {
		fprintf(warn_fp, "warning: tls_cert %s has no subjectAltName; "
		    "browsers will refuse it\n", cert_file);
		(*warnings)++;
	}
	exp = gnutls_x509_crt_get_expiration_time(crt);
	gk_time_iso((int64_t)exp, when, sizeof(when));
	if (fp != NULL)
		fprintf(fp, "tls certificate: %u in chain, expires %s%s\n",
		    t->gens->n, when, t->gens->has_ocsp ?
		    ", OCSP response stapled" : "");
	if (exp != (time_t)-1 && exp - time(NULL) < 14 * 86400) {
		fprintf(warn_fp, "warning: tls_cert %s expires in less than 14 "
		    "days (%s)\n", cert_file, when);
		(*warnings)++;
	}
	gnutls_x509_crt_deinit(crt);
	http_tls_free(t);
	return 0;
}
