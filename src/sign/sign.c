/*
 * sign.c - libgatekeeper (include/gatekeeper/sign.h): v1 URLs and v2
 * tokens for vendors. Self-contained: only OpenSSL and the public header,
 * so it builds into libgatekeeper.a/.so without the gatekeeper's
 * internals (the gatekeeper's own 'sign v2' command uses it too).
 */
#include "gatekeeper/sign.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_MAX 8192

enum { T_EDDSA = 1, T_ES256, T_HS256 };

struct gk_sign_key {
	int type;
	EVP_PKEY *pkey;
	unsigned char *secret;
	size_t secret_len;
	char kid[65];
};

/* A bounded string builder: overflow is sticky. */
typedef struct {
	char *p;
	size_t len, cap;
	int over;
} sb;

static void
sb_init(sb *b, char *p, size_t cap)
{
	b->p = p;
	b->len = 0;
	b->cap = cap;
	b->over = cap == 0;
	if (cap > 0)
		p[0] = '\0';
}

static void
sb_add(sb *b, const void *s, size_t n)
{
	if (b->over || n >= b->cap - b->len) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_num(sb *b, long long v)
{
	char t[32];

	snprintf(t, sizeof(t), "%lld", v);
	sb_str(b, t);
}

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
sb_b64url(sb *b, const unsigned char *in, size_t n)
{
	size_t i;
	char o[4];

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];

		o[0] = b64url_alpha[v >> 18 & 63];
		o[1] = b64url_alpha[v >> 12 & 63];
		o[2] = b64url_alpha[v >> 6 & 63];
		o[3] = b64url_alpha[v & 63];
		sb_add(b, o, 4);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		o[0] = b64url_alpha[v >> 18 & 63];
		o[1] = b64url_alpha[v >> 12 & 63];
		sb_add(b, o, 2);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		o[0] = b64url_alpha[v >> 18 & 63];
		o[1] = b64url_alpha[v >> 12 & 63];
		o[2] = b64url_alpha[v >> 6 & 63];
		sb_add(b, o, 3);
	}
}

/* A JSON string literal; control characters escaped. */
static void
sb_json(sb *b, const char *s)
{
	char t[8];

	sb_add(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			t[0] = '\\';
			t[1] = (char)c;
			sb_add(b, t, 2);
		} else if (c < 0x20) {
			snprintf(t, sizeof(t), "\\u%04x", c);
			sb_str(b, t);
		} else {
			sb_add(b, s, 1);
		}
	}
	sb_add(b, "\"", 1);
}

/* Percent-encodes all but unreserved characters (and '/' if keep). */
static void
sb_pct(sb *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char t[3];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~' || (keep_slash && c == '/')) {
			sb_add(b, s, 1);
		} else {
			t[0] = '%';
			t[1] = hex[c >> 4];
			t[2] = hex[c & 15];
			sb_add(b, t, 3);
		}
	}
}

static int
sb_done(sb *b)
{
	if (b->over) {
		if (b->cap > 0)
			b->p[0] = '\0';
		return GK_SIGN_ESPACE;
	}
	return GK_SIGN_OK;
}

static void
clear_out(char *out, size_t out_size)
{
	if (out != NULL && out_size > 0)
		out[0] = '\0';
}

const char *
gk_sign_strerror(int err)
{
	switch (err) {
	case GK_SIGN_OK: return "success";
	case GK_SIGN_EINVAL: return "missing or malformed argument";
	case GK_SIGN_ESPACE: return "output buffer too small";
	case GK_SIGN_EKEY: return "key unreadable or of an unsupported type";
	case GK_SIGN_ECRYPTO: return "cryptographic library failure";
	}
	return "unknown error";
}

/* ---- v1 ---------------------------------------------------------------- */

int
gk_sign_v1_url(const char *base_url, const void *secret, size_t secret_len,
    const char *root, const char *path, const char *op, long long expires,
    char *out, size_t out_size)
{
	unsigned char mac[32];
	unsigned int mac_len = 0;
	char exp[32], hex[65];
	const char *sub, *end;
	size_t sub_len, i;
	EVP_MAC *m = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t got = 0;
	sb b;
	int r = GK_SIGN_EINVAL;

	clear_out(out, out_size);
	if (base_url == NULL || secret == NULL || secret_len == 0 ||
	    root == NULL || path == NULL || op == NULL || out == NULL ||
	    expires < 0 || (strcmp(op, "GET_Object") != 0 &&
	    strcmp(op, "GET_Bucket") != 0 && strcmp(op, "PUT_Object") != 0))
		return GK_SIGN_EINVAL;
	snprintf(exp, sizeof(exp), "%lld", expires);
	/* sub = path.split('/')[1] */
	sub = strchr(path, '/');
	if (sub == NULL) {
		sub = "undefined";
		sub_len = strlen(sub);
	} else {
		sub++;
		end = strchr(sub, '/');
		sub_len = end != NULL ? (size_t)(end - sub) : strlen(sub);
	}
	r = GK_SIGN_ECRYPTO;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(m)) == NULL ||
	    EVP_MAC_init(ctx, secret, secret_len, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)root, strlen(root)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)sub, sub_len) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)op, strlen(op)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)exp, strlen(exp)) != 1 ||
	    EVP_MAC_final(ctx, mac, &got, sizeof(mac)) != 1 || got != 32)
		goto out;
	mac_len = (unsigned int)got;
	for (i = 0; i < mac_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	sb_init(&b, out, out_size);
	sb_str(&b, base_url);
	sb_str(&b, "/");
	sb_pct(&b, root, 0);
	sb_str(&b, "?path=");
	sb_pct(&b, path, 1);
	sb_str(&b, "&operation=");
	sb_str(&b, op);
	sb_str(&b, "&expires=");
	sb_str(&b, exp);
	sb_str(&b, "&hmac=");
	sb_str(&b, hex);
	r = sb_done(&b);
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return r;
}

/* ---- keys -------------------------------------------------------------- */

static int
kid_ok(const char *kid)
{
	size_t n;

	return kid != NULL && (n = strlen(kid)) > 0 && n <= 64;
}

int
gk_sign_key_pem(const char *pem, size_t pem_len, const char *kid,
    gk_sign_key **out)
{
	gk_sign_key *k;
	BIO *bio;
	EVP_PKEY *p;
	char group[64];
	size_t glen = 0;
	int type = 0;

	if (out == NULL)
		return GK_SIGN_EINVAL;
	*out = NULL;
	if (pem == NULL || pem_len == 0 || pem_len > 65536 || !kid_ok(kid))
		return GK_SIGN_EINVAL;
	if ((bio = BIO_new_mem_buf(pem, (int)pem_len)) == NULL)
		return GK_SIGN_ECRYPTO;
	p = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (p == NULL)
		return GK_SIGN_EKEY;
	if (EVP_PKEY_get_base_id(p) == EVP_PKEY_ED25519)
		type = T_EDDSA;
	else if (EVP_PKEY_get_base_id(p) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param(p, "group", group, sizeof(group),
	    &glen) == 1 && (strcmp(group, "prime256v1") == 0 ||
	    strcmp(group, "P-256") == 0))
		type = T_ES256;
	if (type == 0 || (k = calloc(1, sizeof(*k))) == NULL) {
		EVP_PKEY_free(p);
		return type == 0 ? GK_SIGN_EKEY : GK_SIGN_ECRYPTO;
	}
	k->type = type;
	k->pkey = p;
	memcpy(k->kid, kid, strlen(kid) + 1);
	*out = k;
	return GK_SIGN_OK;
}

int
gk_sign_key_load(const char *pem_path, const char *kid, gk_sign_key **out)
{
	char buf[65536];
	size_t n;
	FILE *fp;
	int r;

	if (out == NULL)
		return GK_SIGN_EINVAL;
	*out = NULL;
	if (pem_path == NULL)
		return GK_SIGN_EINVAL;
	if ((fp = fopen(pem_path, "rb")) == NULL)
		return GK_SIGN_EKEY;
	n = fread(buf, 1, sizeof(buf), fp);
	if (ferror(fp) || n == sizeof(buf)) {
		fclose(fp);
		OPENSSL_cleanse(buf, sizeof(buf));
		return GK_SIGN_EKEY;
	}
	fclose(fp);
	r = gk_sign_key_pem(buf, n, kid, out);
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

int
gk_sign_key_hs256(const void *secret, size_t secret_len, const char *kid,
    gk_sign_key **out)
{
	gk_sign_key *k;

	if (out == NULL)
		return GK_SIGN_EINVAL;
	*out = NULL;
	if (secret == NULL || secret_len < 32 || secret_len > 4096 ||
	    !kid_ok(kid))
		return GK_SIGN_EINVAL;
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->secret = malloc(secret_len)) == NULL) {
		free(k);
		return GK_SIGN_ECRYPTO;
	}
	memcpy(k->secret, secret, secret_len);
	k->secret_len = secret_len;
	k->type = T_HS256;
	memcpy(k->kid, kid, strlen(kid) + 1);
	*out = k;
	return GK_SIGN_OK;
}

const char *
gk_sign_key_alg(const gk_sign_key *k)
{
	if (k == NULL)
		return "";
	return k->type == T_EDDSA ? "EdDSA" : k->type == T_ES256 ? "ES256" :
	    "HS256";
}

void
gk_sign_key_free(gk_sign_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	if (k->secret != NULL) {
		OPENSSL_cleanse(k->secret, k->secret_len);
		free(k->secret);
	}
	free(k);
}

/* ---- v2 tokens --------------------------------------------------------- */

/* The order of P-256's group, big-endian. */
static const unsigned char p256_n[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* s, or n - s when s is above n / 2, as 32 big-endian bytes: the
 * gatekeeper accepts only the low-s form (no second valid signature). */
static int
es256_low_s(const BIGNUM *s, unsigned char out[32])
{
	BIGNUM *n = NULL, *half = NULL, *t = NULL;
	int r = GK_SIGN_ECRYPTO;

	if ((n = BN_bin2bn(p256_n, 32, NULL)) == NULL ||
	    (half = BN_new()) == NULL || (t = BN_new()) == NULL ||
	    BN_rshift1(half, n) != 1)
		goto out;
	if (BN_cmp(s, half) > 0) {
		if (BN_sub(t, n, s) != 1 || BN_bn2binpad(t, out, 32) != 32)
			goto out;
	} else if (BN_bn2binpad(s, out, 32) != 32) {
		goto out;
	}
	r = GK_SIGN_OK;
out:
	BN_free(n);
	BN_free(half);
	BN_free(t);
	return r;
}

/* Signs msg; sig gets the JWS form (ES256: r || s, s in the low half). */
static int
sign_bytes(const gk_sign_key *k, const unsigned char *msg, size_t len,
    unsigned char sig[64], size_t *sig_len)
{
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	unsigned char der[128];
	const unsigned char *q = der;
	size_t der_len = sizeof(der);
	unsigned int hl = 0;
	int r = GK_SIGN_ECRYPTO;

	if (k->type == T_HS256) {
		if (HMAC(EVP_sha256(), k->secret, (int)k->secret_len, msg, len,
		    sig, &hl) == NULL || hl != 32)
			return GK_SIGN_ECRYPTO;
		*sig_len = 32;
		return GK_SIGN_OK;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (k->type == T_EDDSA) {
		*sig_len = 64;
		if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
		    EVP_DigestSign(ctx, sig, sig_len, msg, len) != 1 ||
		    *sig_len != 64)
			goto out;
		r = GK_SIGN_OK;
		goto out;
	}
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, der, &der_len, msg, len) != 1 ||
	    (es = d2i_ECDSA_SIG(NULL, &q, (long)der_len)) == NULL ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
	    es256_low_s(ECDSA_SIG_get0_s(es), sig + 32) != GK_SIGN_OK)
		goto out;
	*sig_len = 64;
	r = GK_SIGN_OK;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return r;
}

int
gk_sign_v2_token(const gk_sign_key *k, const gk_sign_claims *c, char *out,
    size_t out_size)
{
	char hdr[256], cl[4096], body[TOKEN_MAX], jti[33];
	unsigned char sig[64], rnd[16];
	size_t sig_len = 0, i;
	long long iat, ttl;
	sb h, p, t;
	int r;

	clear_out(out, out_size);
	if (k == NULL || c == NULL || out == NULL || c->aud == NULL ||
	    c->op == NULL || (strcmp(c->op, "get") != 0 &&
	    strcmp(c->op, "list") != 0 && strcmp(c->op, "put") != 0) ||
	    (c->key == NULL) == (c->prefix == NULL) || c->ttl < 0 ||
	    (c->prefix != NULL && (c->prefix[0] == '\0' ||
	    c->prefix[strlen(c->prefix) - 1] != '/')))
		return GK_SIGN_EINVAL;
	iat = c->iat != 0 ? c->iat : (long long)time(NULL);
	ttl = c->ttl != 0 ? c->ttl : 300;
	sb_init(&h, hdr, sizeof(hdr));
	sb_str(&h, "{\"alg\":\"");
	sb_str(&h, gk_sign_key_alg(k));
	sb_str(&h, "\",\"kid\":");
	sb_json(&h, k->kid);
	sb_str(&h, ",\"typ\":\"JWT\"}");
	sb_init(&p, cl, sizeof(cl));
	sb_str(&p, "{\"aud\":");
	sb_json(&p, c->aud);
	sb_str(&p, ",\"op\":");
	sb_json(&p, c->op);
	sb_str(&p, c->key != NULL ? ",\"key\":" : ",\"prefix\":");
	sb_json(&p, c->key != NULL ? c->key : c->prefix);
	if (c->sub != NULL) {
		sb_str(&p, ",\"sub\":");
		sb_json(&p, c->sub);
	}
	if (c->cip != NULL) {
		sb_str(&p, ",\"cip\":");
		sb_json(&p, c->cip);
	}
	if (c->jti != NULL) {
		if (strcmp(c->jti, "auto") == 0) {
			if (RAND_bytes(rnd, sizeof(rnd)) != 1)
				return GK_SIGN_ECRYPTO;
			for (i = 0; i < sizeof(rnd); i++)
				snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
		}
		sb_str(&p, ",\"jti\":");
		sb_json(&p, strcmp(c->jti, "auto") == 0 ? jti : c->jti);
	}
	sb_str(&p, ",\"iat\":");
	sb_num(&p, iat);
	sb_str(&p, ",\"exp\":");
	sb_num(&p, iat + ttl);
	if (c->nbf != 0) {
		sb_str(&p, ",\"nbf\":");
		sb_num(&p, c->nbf);
	}
	sb_str(&p, "}");
	if (h.over || p.over)
		return GK_SIGN_EINVAL;
	sb_init(&t, body, sizeof(body));
	sb_b64url(&t, (const unsigned char *)hdr, h.len);
	sb_str(&t, ".");
	sb_b64url(&t, (const unsigned char *)cl, p.len);
	if (t.over)
		return GK_SIGN_EINVAL;
	if ((r = sign_bytes(k, (const unsigned char *)body, t.len, sig,
	    &sig_len)) != 0)
		return r;
	sb_str(&t, ".");
	sb_b64url(&t, sig, sig_len);
	if (t.over)
		return GK_SIGN_EINVAL;
	sb_init(&h, out, out_size);
	sb_add(&h, body, t.len);
	return sb_done(&h);
}

int
gk_sign_v2_url(const char *base_url, const char *op, const char *key,
    const char *token, char *out, size_t out_size)
{
	const char *route;
	sb b;

	clear_out(out, out_size);
	if (base_url == NULL || op == NULL || key == NULL || token == NULL ||
	    out == NULL)
		return GK_SIGN_EINVAL;
	if (strcmp(op, "get") == 0)
		route = "/v2/objects/";
	else if (strcmp(op, "list") == 0)
		route = "/v2/list/";
	else if (strcmp(op, "put") == 0)
		route = "/v2/uploads/";
	else
		return GK_SIGN_EINVAL;
	sb_init(&b, out, out_size);
	sb_str(&b, base_url);
	sb_str(&b, route);
	sb_pct(&b, key, 1);
	sb_str(&b, "?token=");
	sb_str(&b, token);
	return sb_done(&b);
}
