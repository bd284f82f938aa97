/*
 * sigv4.c - AWS Signature Version 4 for S3: canonical requests, the
 * signing-key cache, and signing a request's headers.
 */
#include "s3_int.h"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#define MAX_PARAMS 64
#define MAX_HEADERS 64
#define CANON_CAP (64u * 1024)
#define URL_CAP (16u * 1024)

/* ---- small helpers ---------------------------------------------------- */

void
s3_amz_date(int64_t t, char out[S3_AMZ_DATE_LEN + 1])
{
	char iso[32];
	size_t i, j = 0;

	gk_time_iso(t, iso, sizeof(iso));	/* 2026-11-23T16:11:49Z */
	for (i = 0; iso[i] != '\0' && j < S3_AMZ_DATE_LEN; i++) {
		if (iso[i] != '-' && iso[i] != ':')
			out[j++] = iso[i];
	}
	out[j] = '\0';
}

/*
 * OpenSSL 3's one-shot HMAC() and SHA256() fetch their algorithm on every
 * call (microseconds each): fetch once, keep one MAC and one digest
 * context per thread (freed when the thread exits).
 */
struct tctx {
	EVP_MAC_CTX *mac;
	EVP_MD_CTX *md;
};

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static pthread_key_t tctx_key;
static int tctx_key_ok;
static EVP_MAC *hmac_alg;

static void
tctx_free(void *p)
{
	struct tctx *t = p;

	if (t == NULL)
		return;
	EVP_MAC_CTX_free(t->mac);
	EVP_MD_CTX_free(t->md);
	free(t);
}

static void
algs_init(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	tctx_key_ok = pthread_key_create(&tctx_key, tctx_free) == 0;
}

/* This thread's contexts, or NULL (then the slow paths are used). */
static struct tctx *
tctx_get(void)
{
	struct tctx *t;

	pthread_once(&algs_once, algs_init);
	if (!tctx_key_ok || hmac_alg == NULL || gk_sha256() == NULL)
		return NULL;
	if ((t = pthread_getspecific(tctx_key)) != NULL)
		return t;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->mac = EVP_MAC_CTX_new(hmac_alg);
	t->md = EVP_MD_CTX_new();
	if (t->mac == NULL || t->md == NULL ||
	    pthread_setspecific(tctx_key, t) != 0) {
		tctx_free(t);
		return NULL;
	}
	return t;
}

void
s3_sha256_hex(gk_slice in, char out[65])
{
	const uint8_t *p = in.p != NULL ? in.p : (const uint8_t *)"";
	uint8_t d[SHA256_DIGEST_LENGTH];
	struct tctx *t = tctx_get();
	unsigned int n = 0;

	if (t == NULL || EVP_DigestInit_ex(t->md, gk_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(t->md, p, in.len) != 1 ||
	    EVP_DigestFinal_ex(t->md, d, &n) != 1)
		SHA256(p, in.len, d);	/* the slow path, same answer */
	gk_hex_encode(d, sizeof(d), out);
}

static int
hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
    uint8_t out[32])
{
	OSSL_PARAM params[2];
	struct tctx *t = tctx_get();
	size_t n = 0;

	if (t == NULL)
		return GK_ERR_INTERNAL;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(t->mac, key, klen, params) != 1 ||
	    EVP_MAC_update(t->mac, msg, mlen) != 1 ||
	    EVP_MAC_final(t->mac, out, &n, 32) != 1 || n != 32)
		return GK_ERR_INTERNAL;
	return 0;
}

static int
is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- canonical request ------------------------------------------------ */

typedef struct {
	gk_buf name, value;
} pair;

static void
pairs_release(pair *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		gk_buf_release(&p[i].name);
		gk_buf_release(&p[i].value);
	}
}

static int
buf_cmp(const gk_buf *a, const gk_buf *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->data, b->data, n) : 0;

	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int
pair_cmp(const void *x, const void *y)
{
	const pair *a = x, *b = y;
	int c = buf_cmp(&a->name, &b->name);

	return c != 0 ? c : buf_cmp(&a->value, &b->value);
}

/* Decodes once and encodes again (unreserved kept, '/' encoded). */
static int
reencode(gk_slice in, gk_buf *out)
{
	gk_buf dec;
	int r;

	gk_buf_init(&dec, CANON_CAP);
	r = gk_pct_decode(in, &dec);
	if (r == 0)
		r = gk_buf_append(out, "", 0);
	if (r == 0)
		r = gk_pct_encode(gk_slice_of(dec.data, dec.len), 0, out);
	gk_buf_release(&dec);
	return r;
}

static int
canon_query(gk_slice q, gk_buf *out)
{
	pair ps[MAX_PARAMS];
	size_t n = 0, i, start = 0, end;
	int r = 0;

	while (start <= q.len && q.len > 0) {
		const uint8_t *amp = memchr(q.p + start, '&', q.len - start);
		const uint8_t *eq;
		gk_slice item;

		end = amp ? (size_t)(amp - q.p) : q.len;
		item = gk_slice_of(q.p + start, end - start);
		start = end + 1;
		if (item.len > 0) {
			if (n == MAX_PARAMS) {
				r = GK_ERR_TOO_LARGE;
				goto out;
			}
			gk_buf_init(&ps[n].name, CANON_CAP);
			gk_buf_init(&ps[n].value, CANON_CAP);
			n++;
			eq = memchr(item.p, '=', item.len);
			if (eq == NULL) {
				r = reencode(item, &ps[n - 1].name);
			} else {
				r = reencode(gk_slice_of(item.p,
				    (size_t)(eq - item.p)), &ps[n - 1].name);
				if (r == 0)
					r = reencode(gk_slice_of(eq + 1,
					    item.len - (size_t)(eq + 1 -
					    item.p)), &ps[n - 1].value);
			}
			if (r == 0)
				r = gk_buf_append(&ps[n - 1].value, "", 0);
			if (r != 0)
				goto out;
		}
		if (amp == NULL)
			break;
	}
	qsort(ps, n, sizeof(ps[0]), pair_cmp);
	for (i = 0; i < n; i++) {
		if ((i > 0 && (r = gk_buf_append(out, "&", 1)) != 0) ||
		    (r = gk_buf_append(out, ps[i].name.data,
		    ps[i].name.len)) != 0 ||
		    (r = gk_buf_append(out, "=", 1)) != 0 ||
		    (r = gk_buf_append(out, ps[i].value.data,
		    ps[i].value.len)) != 0)
			goto out;
	}
out:
	pairs_release(ps, n);
	return r;
}

/* Lower-cased name and trimmed, whitespace-collapsed value. */
static int
canon_header(const s3_header *h, pair *p)
{
	size_t i, end;
	int r, pending = 0;
	uint8_t c;

	if (h->name.len == 0)
		return GK_ERR_INVALID;
	for (i = 0; i < h->name.len; i++) {
		c = h->name.p[i];
		if (c <= ' ' || c == ':' || c >= 0x7f)
			return GK_ERR_INVALID;
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if ((r = gk_buf_append(&p->name, &c, 1)) != 0)
			return r;
	}
	end = h->value.len;
	while (end > 0 && is_ws(h->value.p[end - 1]))
		end--;
	for (i = 0; i < end && is_ws(h->value.p[i]); i++)
		;
	for (; i < end; i++) {
		c = h->value.p[i];
		if (c == '\0')
			return GK_ERR_INVALID;
		if (is_ws(c)) {
			pending = 1;
			continue;
		}
		if (pending && (r = gk_buf_append(&p->value, " ", 1)) != 0)
			return r;
		pending = 0;
		if ((r = gk_buf_append(&p->value, &c, 1)) != 0)
			return r;
	}
	return gk_buf_append(&p->value, "", 0);
}

int
s3_canonical_request(const s3_canon_in *in, gk_buf *creq, gk_buf *signed_h)
{
	pair hs[MAX_HEADERS];
	size_t order[MAX_HEADERS];
	size_t n = 0, i, j, k;
	gk_buf tmp_c, tmp_s;
	gk_buf *c = creq, *s = signed_h;
	int r = GK_ERR_INTERNAL;

	if (c == NULL) {
		gk_buf_init(&tmp_c, CANON_CAP);
		c = &tmp_c;
	}
	if (s == NULL) {
		gk_buf_init(&tmp_s, CANON_CAP);
		s = &tmp_s;
	}
	if (in->n_headers > MAX_HEADERS) {
		r = GK_ERR_TOO_LARGE;
		goto out;
	}
	for (n = 0; n < in->n_headers; n++) {
		gk_buf_init(&hs[n].name, 256);
		gk_buf_init(&hs[n].value, CANON_CAP);
		if ((r = canon_header(&in->headers[n], &hs[n])) != 0) {
			n++;
			goto out;
		}
	}
	/* stable sort by name: insertion sort over indexes */
	for (i = 0; i < n; i++) {
		order[i] = i;
		for (j = i; j > 0 && buf_cmp(&hs[order[j - 1]].name,
		    &hs[order[j]].name) > 0; j--) {
			k = order[j];
			order[j] = order[j - 1];
			order[j - 1] = k;
		}
	}
	if ((r = gk_buf_append_str(c, in->method)) != 0 ||
	    (r = gk_buf_append(c, "\n", 1)) != 0 ||
	    (r = gk_buf_append(c, in->path.p, in->path.len)) != 0 ||
	    (r = gk_buf_append(c, "\n", 1)) != 0 ||
	    (r = canon_query(in->query, c)) != 0 ||
	    (r = gk_buf_append(c, "\n", 1)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		const pair *h = &hs[order[i]];
		int same = i > 0 && buf_cmp(&hs[order[i - 1]].name,
		    &h->name) == 0;

		if (same) {
			/* a repeated name: its values joined with ',' */
			c->len--;	/* the '\n' */
			if ((r = gk_buf_append(c, ",", 1)) != 0)
				goto out;
		} else {
			if ((s->len > 0 && (r = gk_buf_append(s, ";", 1)) != 0) ||
			    (r = gk_buf_append(s, h->name.data,
			    h->name.len)) != 0 ||
			    (r = gk_buf_append(c, h->name.data,
			    h->name.len)) != 0 ||
			    (r = gk_buf_append(c, ":", 1)) != 0)
				goto out;
		}
		if ((r = gk_buf_append(c, h->value.data, h->value.len)) != 0 ||
		    (r = gk_buf_append(c, "\n", 1)) != 0)
			goto out;
	}
	if ((r = gk_buf_append(c, "\n", 1)) != 0 ||
	    (r = gk_buf_append(c, s->data, s->len)) != 0 ||
	    (r = gk_buf_append(c, "\n", 1)) != 0 ||
	    (r = gk_buf_append_str(c, in->payload_hash)) != 0)
		goto out;
	r = 0;
out:
	pairs_release(hs, n);
	if (c == &tmp_c)
		gk_buf_release(&tmp_c);
	if (s == &tmp_s)
		gk_buf_release(&tmp_s);
	return r;
}

int
s3_string_to_sign(const char *amz_date, const char *scope, gk_slice creq,
    gk_buf *out)
{
	char h[65];

	s3_sha256_hex(creq, h);
	return gk_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date,
	    scope, h);
}

/* ---- the signer ------------------------------------------------------- */

struct s3_signer {
	char *region, *service;
	pthread_mutex_t mu;
	char date8[9];
	uint64_t gen;
	uint8_t key[32];
	int valid;
};

int
s3_signer_new(const char *region, const char *service, s3_signer **out)
{
	s3_signer *sg;

	if ((sg = calloc(1, sizeof(*sg))) == NULL)
		return GK_ERR_NOMEM;
	sg->region = strdup(region);
	sg->service = strdup(service);
	if (sg->region == NULL || sg->service == NULL) {
		s3_signer_free(sg);
		return GK_ERR_NOMEM;
	}
	pthread_mutex_init(&sg->mu, NULL);
	*out = sg;
	return 0;
}

void
s3_signer_free(s3_signer *sg)
{
	if (sg == NULL)
		return;
	gk_wipe(sg->key, sizeof(sg->key));
	free(sg->region);
	free(sg->service);
	pthread_mutex_destroy(&sg->mu);
	free(sg);
}

const char *
s3_signer_region(const s3_signer *sg)
{
	return sg->region;
}

int
s3_signer_scope(const s3_signer *sg, const char *amz_date, gk_buf *out)
{
	return gk_buf_printf(out, "%.8s/%s/%s/aws4_request", amz_date,
	    sg->region, sg->service);
}

static int
derive(const s3_signer *sg, const s3_creds *c, const char *date8,
    uint8_t key[32])
{
	gk_buf k;
	uint8_t a[32], b[32];
	int r;

	gk_buf_init(&k, 4096);
	if ((r = gk_buf_printf(&k, "AWS4%s", c->secret_key)) != 0)
		goto out;
	if ((r = hmac(k.data, k.len, date8, 8, a)) != 0 ||
	    (r = hmac(a, 32, sg->region, strlen(sg->region), b)) != 0 ||
	    (r = hmac(b, 32, sg->service, strlen(sg->service), a)) != 0 ||
	    (r = hmac(a, 32, "aws4_request", 12, key)) != 0)
		goto out;
out:
	gk_wipe(k.data, k.len);
	gk_buf_release(&k);
	gk_wipe(a, sizeof(a));
	gk_wipe(b, sizeof(b));
	return r;
}

int
s3_signer_sign(s3_signer *sg, const s3_creds *c, const char *amz_date,
    gk_slice msg, char sig[S3_SIG_HEX_LEN + 1])
{
	uint8_t key[32], mac[32];
	int r;

	if (c->secret_key == NULL || strlen(amz_date) < 8)
		return GK_ERR_INVALID;
	pthread_mutex_lock(&sg->mu);
	if (c->gen != 0 && sg->valid && sg->gen == c->gen &&
	    memcmp(sg->date8, amz_date, 8) == 0) {
		memcpy(key, sg->key, 32);
		r = 0;
	} else {
		r = derive(sg, c, amz_date, key);
		if (r == 0 && c->gen != 0) {
			memcpy(sg->key, key, 32);
			memcpy(sg->date8, amz_date, 8);
			sg->date8[8] = '\0';
			sg->gen = c->gen;
			sg->valid = 1;
		}
	}
	pthread_mutex_unlock(&sg->mu);
	if (r == 0)
		r = hmac(key, 32, msg.p, msg.len, mac);
	if (r == 0)
		gk_hex_encode(mac, 32, sig);
	gk_wipe(key, sizeof(key));
	return r;
}

/* ---- header signing --------------------------------------------------- */

int
s3_sign_headers(s3_target *t, const s3_creds *c, const char *method,
    gk_slice path, gk_slice query, const s3_header *extra, size_t n_extra,
    const char *payload_hash, int64_t now, gk_buf *lines)
{
	char amz[S3_AMZ_DATE_LEN + 1], sig[S3_SIG_HEX_LEN + 1];
	s3_header hs[MAX_HEADERS];
	gk_buf host, scope, creq, sts, sh;
	s3_canon_in in;
	size_t n = 0, i;
	int r;

	if (n_extra + 4 > MAX_HEADERS || c->access_key_id == NULL)
		return GK_ERR_INVALID;
	gk_buf_init(&host, 512);
	gk_buf_init(&scope, 512);
	gk_buf_init(&creq, CANON_CAP);
	gk_buf_init(&sts, 1024);
	gk_buf_init(&sh, 4096);
	s3_amz_date(now, amz);
	if (t->path_style)
		r = gk_buf_append_str(&host, t->host);
	else
		r = gk_buf_printf(&host, "%s.%s", t->bucket, t->host);
	if (r != 0 || (r = s3_signer_scope(t->signer, amz, &scope)) != 0)
		goto out;
	hs[n].name = gk_slice_str("host");
	hs[n++].value = gk_slice_of(host.data, host.len);
	hs[n].name = gk_slice_str("x-amz-content-sha256");
	hs[n++].value = gk_slice_str(payload_hash);
	hs[n].name = gk_slice_str("x-amz-date");
	hs[n++].value = gk_slice_str(amz);
	if (c->session_token != NULL) {
		hs[n].name = gk_slice_str("x-amz-security-token");
		hs[n++].value = gk_slice_str(c->session_token);
	}
	for (i = 0; i < n_extra; i++)
		hs[n++] = extra[i];
	in.method = method;
	in.path = path;
	in.query = query;
	in.headers = hs;
	in.n_headers = n;
	in.payload_hash = payload_hash;
	if ((r = s3_canonical_request(&in, &creq, &sh)) != 0 ||
	    (r = s3_string_to_sign(amz, (const char *)scope.data,
	    gk_slice_of(creq.data, creq.len), &sts)) != 0 ||
	    (r = s3_signer_sign(t->signer, c, amz, gk_slice_of(sts.data,
	    sts.len), sig)) != 0)
		goto out;
	/* host is set by the transport from the URL */
	for (i = 1; i < n; i++) {
		if ((r = gk_buf_append(lines, hs[i].name.p, hs[i].name.len)) != 0 ||
		    (r = gk_buf_append_str(lines, ": ")) != 0 ||
		    (r = gk_buf_append(lines, hs[i].value.p,
		    hs[i].value.len)) != 0 ||
		    (r = gk_buf_append(lines, "\n", 1)) != 0)
			goto out;
	}
	r = gk_buf_printf(lines, "authorization: AWS4-HMAC-SHA256 "
	    "Credential=%s/%s, SignedHeaders=%s, Signature=%s\n",
	    c->access_key_id, scope.data, sh.data, sig);
out:
	gk_buf_release(&host);
	gk_buf_release(&scope);
	gk_buf_release(&creq);
	gk_buf_release(&sts);
	gk_buf_release(&sh);
	return r;
}
