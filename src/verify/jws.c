/*
 * jws.c - protocol v2: the vendor keyring and compact JWS verification
 * (EdDSA, ES256, HS256) with the claim checks of DESIGN.md.
 *
 * Order: size, shape, strict base64url, header (allow list), kid, alg
 * against the key's type, signature; only then are the claims parsed.
 *
 * Ed25519 signatures are checked with libsodium (about 50 us here against
 * OpenSSL's 83, and the largest part of a v2 request's CPU); it is also
 * the stricter of the two: non-canonical and small-order public keys and
 * R values are refused. Keys are still parsed (PEM, SPKI) by OpenSSL.
 */
#include "verify.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


struct vkey {
	uint64_t id;		/* names its per-thread contexts; never reused */
	char *kid;
	int type;		/* GK_VKEY_* */
	EVP_PKEY *pkey;		/* ed25519, p256 */
	uint8_t ed_pub[32];	/* ed25519: the raw key, for libsodium */
	gk_mac *mac;		/* hs256 */
	int64_t not_before, not_after;
};

struct gk_keyring {
	struct vkey *keys;
	size_t n;
};

/* ---- per-thread verification contexts ---------------------------------
 *
 * EVP_DigestVerifyInit looks the signature algorithm (and for ES256 the
 * digest) up in OpenSSL's method store on every call, under a lock all
 * worker threads share. So each thread keeps, per vendor key, a context
 * initialised once (the template) and verifies each message on a copy of
 * it (EVP_MD_CTX_copy_ex duplicates the provider's context, no lookup).
 *
 * Every public vendor key gets an id from a monotonic counter; ids are
 * never reused, so a template made for a freed keyring's key is never
 * picked up for a later key. A template holds its own reference to the
 * key, so one outliving its keyring stays valid; verify_keyring_free
 * bumps an epoch that makes each thread drop its templates at its next
 * verification (or at its exit).
 */
#define VCTX_SLOTS 8

struct vctx_slot {
	uint64_t id;		/* 0: empty */
	uint64_t used;		/* LRU tick */
	EVP_MD_CTX *tpl;
};

/* A verified token: SHA-256(key id || signing input || signature) and
 * the token's exp (0: empty). See sig_cache_find. */
struct sig_entry {
	uint8_t d[32];
	int64_t exp;
};

#define SIG_WAYS 4

struct vctx_cache {
	uint64_t tick;
	uint64_t epoch;
	EVP_MD_CTX *work;	/* the copy a message is verified on */
	struct vctx_slot slot[VCTX_SLOTS];
	EVP_MD_CTX *sha;	/* the token digest of the signature cache */
	struct sig_entry *sig;	/* sig_sets * SIG_WAYS entries, or NULL */
	size_t sig_sets;	/* a power of two */
	unsigned sig_next;	/* round-robin victim within a full set */
};

static pthread_once_t vctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t vctx_tls_key;
static int vctx_init_ok;
static _Atomic uint64_t vctx_next_id = 1;
static _Atomic uint64_t vctx_free_epoch;
static _Atomic uint64_t sig_verified, sig_cached;

static void
vctx_cache_flush(struct vctx_cache *c)
{
	size_t i;

	for (i = 0; i < VCTX_SLOTS; i++) {
		EVP_MD_CTX_free(c->slot[i].tpl);
		memset(&c->slot[i], 0, sizeof(c->slot[i]));
	}
	EVP_MD_CTX_free(c->work);
	c->work = NULL;
	EVP_MD_CTX_free(c->sha);
	c->sha = NULL;
	free(c->sig);
	c->sig = NULL;
	c->sig_sets = 0;
}

/* pthread key destructor: at the exit of each thread that verified. */
static void
vctx_cache_destroy(void *arg)
{
	struct vctx_cache *c = arg;

	if (c == NULL)
		return;
	vctx_cache_flush(c);
	free(c);
}

static void
vctx_global_init(void)
{
	if (pthread_key_create(&vctx_tls_key, vctx_cache_destroy) == 0)
		vctx_init_ok = 1;
}

/* The calling thread's cache, created on first use; NULL on failure. */
static struct vctx_cache *
vctx_cache_get(void)
{
	struct vctx_cache *c;
	uint64_t epoch;

	if (pthread_once(&vctx_once, vctx_global_init) != 0 || !vctx_init_ok)
		return NULL;
	epoch = atomic_load_explicit(&vctx_free_epoch, memory_order_acquire);
	if ((c = pthread_getspecific(vctx_tls_key)) != NULL) {
		if (c->epoch != epoch) {
			vctx_cache_flush(c);
			c->epoch = epoch;
		}
		return c;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->epoch = epoch;
	if (pthread_setspecific(vctx_tls_key, c) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

/* A context initialised for verifying with k (ES256: Ed25519 goes to
 * libsodium, see verify_eddsa). */
static EVP_MD_CTX *
vctx_new(EVP_PKEY *k, const EVP_MD *md)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/*
 * The calling thread's context ready to verify one message with key id
 * (made from pkey on first use), or NULL: the caller then makes its own
 * with vctx_new. The context is only good until the next call.
 */
static EVP_MD_CTX *
vctx_get(uint64_t id, EVP_PKEY *pkey, const EVP_MD *md)
{
	struct vctx_cache *c;
	struct vctx_slot *s = NULL, *victim;
	size_t i;

	if (id == 0 || (c = vctx_cache_get()) == NULL)
		return NULL;
	c->tick++;
	victim = &c->slot[0];
	for (i = 0; i < VCTX_SLOTS; i++) {
		if (c->slot[i].id == id) {
			s = &c->slot[i];
			break;
		}
		if (c->slot[i].used < victim->used)
			victim = &c->slot[i];
	}
	if (s == NULL) {
		/* least recently used (or empty: used == 0) slot */
		s = victim;
		EVP_MD_CTX_free(s->tpl);
		memset(s, 0, sizeof(*s));
		if ((s->tpl = vctx_new(pkey, md)) == NULL)
			return NULL;
		s->id = id;
	}
	s->used = c->tick;
	if (c->work == NULL && (c->work = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (EVP_MD_CTX_copy_ex(c->work, s->tpl) != 1)
		return NULL;
	return c->work;
}

/* A fresh id for a public key; 0 when the counter is spent (the key then
 * verifies without cached contexts). */
static uint64_t
vctx_id_new(void)
{
	uint64_t id = atomic_load(&vctx_next_id);

	do {
		if (id == UINT64_MAX)
			return 0;
	} while (!atomic_compare_exchange_weak(&vctx_next_id, &id, id + 1));
	return id;
}

/* ---- the keyring ------------------------------------------------------ */

/* DER SubjectPublicKeyInfo prefix of a P-256 key, before the 65-byte
 * uncompressed point. */
static const uint8_t p256_spki_prefix[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00,
};

static EVP_PKEY *
pkey_from_der(const uint8_t *p, size_t len)
{
	const unsigned char *q = p;
	EVP_PKEY *k;

	if (len > 4096)
		return NULL;
	k = d2i_PUBKEY(NULL, &q, (long)len);
	if (k != NULL && q != p + len) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

/* From base64 (standard or url alphabet) of the raw key or of SPKI DER. */
static EVP_PKEY *
pkey_from_b64(int type, const char *text)
{
	uint8_t der[sizeof(p256_spki_prefix) + 65];
	EVP_PKEY *k = NULL;
	gk_buf b;

	gk_buf_init(&b, 4096);
	if (gk_b64_decode(gk_slice_str(text), &b) != 0) {
		gk_buf_reset(&b);
		if (gk_b64url_decode(gk_slice_str(text), &b) != 0)
			goto out;
	}
	if (type == GK_VKEY_ED25519 && b.len == 32) {
		k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, b.data,
		    32);
	} else if (type == GK_VKEY_P256 && b.len == 65 && b.data[0] == 4) {
		memcpy(der, p256_spki_prefix, sizeof(p256_spki_prefix));
		memcpy(der + sizeof(p256_spki_prefix), b.data, 65);
		k = pkey_from_der(der, sizeof(der));
	} else {
		k = pkey_from_der(b.data, b.len);
	}
out:
	gk_buf_release(&b);
	return k;
}

static EVP_PKEY *
pkey_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k;

	if (bio == NULL)
		return NULL;
	k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

/* 1 if k is of the configured type (Ed25519, or EC on P-256). */
static int
pkey_is(EVP_PKEY *k, int type)
{
	char group[64];
	size_t glen = 0;

	if (type == GK_VKEY_ED25519)
		return EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
		return 0;
	if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), &glen) != 1)
		return 0;
	return strcmp(group, "prime256v1") == 0 ||
	    strcmp(group, "P-256") == 0;
}

static int sodium_ok;

static void
sodium_start(void)
{
	sodium_ok = sodium_init() >= 0;
}

/* Copies k's raw Ed25519 key for libsodium: 0 unless it is a point of
 * the prime-order subgroup in canonical form (a small-order key would
 * let one signature pass for many messages). */
static int
ed_raw(struct vkey *k)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	size_t len = sizeof(k->ed_pub);

	if (pthread_once(&once, sodium_start) != 0 || !sodium_ok)
		return 0;
	return EVP_PKEY_get_raw_public_key(k->pkey, k->ed_pub, &len) == 1 &&
	    len == sizeof(k->ed_pub) &&
	    crypto_core_ed25519_is_valid_point(k->ed_pub) == 1;
}

int
verify_keyring_new(const gk_vendor_key *keys, size_t n, gk_keyring **out,
    char *err, size_t errlen)
{
	gk_keyring *kr;
	const gk_vendor_key *v;
	struct vkey *k;
	size_t i;
	int r = GK_ERR_INTERNAL;

	*out = NULL;
	if ((kr = calloc(1, sizeof(*kr))) == NULL)
		return GK_ERR_NOMEM;
	if (n > 0 && (kr->keys = calloc(n, sizeof(*kr->keys))) == NULL) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		v = &keys[i];
		k = &kr->keys[kr->n];
		if ((k->kid = strdup(v->kid)) == NULL) {
			r = GK_ERR_NOMEM;
			goto out;
		}
		kr->n++;
		k->type = v->type;
		k->not_before = v->not_before;
		k->not_after = v->not_after;
		if (v->type == GK_VKEY_HS256) {
			if (v->secret.len < 32 || verify_mac_new(v->secret.p,
			    v->secret.len, &k->mac) != 0) {
				snprintf(err, errlen, "vendor key '%s': the hs256 "
				    "secret is missing or shorter than 32 bytes",
				    v->kid);
				r = GK_ERR_CONFIG;
				goto out;
			}
			continue;
		}
		if (v->public_key != NULL)
			k->pkey = pkey_from_b64(v->type, v->public_key);
		else if (v->public_pem != NULL)
			k->pkey = pkey_from_pem(v->public_pem);
		if (k->pkey == NULL || !pkey_is(k->pkey, v->type) ||
		    (v->type == GK_VKEY_ED25519 && !ed_raw(k))) {
			snprintf(err, errlen, "vendor key '%s': not a valid %s "
			    "public key", v->kid, v->type == GK_VKEY_ED25519 ?
			    "Ed25519" : "P-256");
			r = GK_ERR_CONFIG;
			goto out;
		}
		k->id = vctx_id_new();
	}
	*out = kr;
	kr = NULL; /* transferred */
	r = 0;
out:
	verify_keyring_free(kr);
	return r;
}

void
verify_keyring_free(gk_keyring *kr)
{
	size_t i;

	if (kr == NULL)
		return;
	/* every thread drops its contexts for these keys at its next use */
	atomic_fetch_add_explicit(&vctx_free_epoch, 1, memory_order_release);
	for (i = 0; i < kr->n; i++) {
		free(kr->keys[i].kid);
		EVP_PKEY_free(kr->keys[i].pkey);
		verify_mac_free(kr->keys[i].mac);
	}
	free(kr->keys);
	free(kr);
}

static const struct vkey *
keyring_find(const gk_keyring *kr, const char *kid, size_t kid_len)
{
	size_t i;

	for (i = 0; kr != NULL && i < kr->n; i++) {
		if (gk_slice_eq_str(gk_slice_of(kid, kid_len), kr->keys[i].kid))
			return &kr->keys[i];
	}
	return NULL;
}

/* ---- the verified-signature cache --------------------------------------
 *
 * An Ed25519 verification costs about 100 µs on a small server (ES256
 * more), the rest of a v2 request a few. Pages reuse their tokens (each
 * thumbnail of a listing, a retry, the range requests of a video), so each
 * thread remembers the tokens whose signature it verified and that then
 * passed every check: the same bytes under the same key verify the same
 * way. An entry is SHA-256(key id || signing input || "." || signature)
 * and the token's exp; on a hit only the signature check is skipped:
 * header, key validity window, algorithm, every claim (exp, nbf, aud, op,
 * cip) and the jti replay check still run on every use. Refused tokens
 * are never entered. Key ids are never reused and a keyring change
 * empties every thread's cache (the epoch above), so an entry cannot
 * outlive its key. Digests are compared in constant time. HS256 is not
 * cached (its HMAC costs less than the lookup).
 *
 * [gate] v2_verify_cache sets the entries per thread (0: off).
 */

/* The digest of a token under key id into d; 0 on success. */
static int
sig_digest(struct vctx_cache *c, uint64_t id, gk_slice signed_part,
    gk_slice sig, uint8_t d[32])
{
	uint8_t idb[8];
	unsigned len = 0;
	int i;

	if (gk_sha256() == NULL)
		return -1;
	if (c->sha == NULL && (c->sha = EVP_MD_CTX_new()) == NULL)
		return -1;
	for (i = 0; i < 8; i++)
		idb[i] = (uint8_t)(id >> (56 - 8 * i));
	if (EVP_DigestInit_ex(c->sha, gk_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c->sha, idb, sizeof(idb)) != 1 ||
	    EVP_DigestUpdate(c->sha, signed_part.p, signed_part.len) != 1 ||
	    EVP_DigestUpdate(c->sha, ".", 1) != 1 ||
	    EVP_DigestUpdate(c->sha, sig.p, sig.len) != 1 ||
	    EVP_DigestFinal_ex(c->sha, d, &len) != 1 || len != 32)
		return -1;
	return 0;
}

/* The set d falls in, after sizing the thread's cache to entries (rounded
 * down to a power of two sets); NULL when off or out of memory. */
static struct sig_entry *
sig_set(struct vctx_cache *c, size_t entries, const uint8_t d[32])
{
	size_t sets = 1, at = 0;
	int i;

	if (entries < SIG_WAYS)
		return NULL;
	while (sets <= entries / SIG_WAYS / 2)
		sets *= 2;
	if (c->sig_sets != sets) {
		free(c->sig);
		c->sig_sets = 0;
		if ((c->sig = calloc(sets * SIG_WAYS, sizeof(*c->sig))) == NULL)
			return NULL;
		c->sig_sets = sets;
	}
	for (i = 0; i < 8; i++)
		at = at << 8 | d[i];
	return &c->sig[(at & (sets - 1)) * SIG_WAYS];
}

/* 1 if the thread verified this token before (and it has not expired). */
static int
sig_cache_find(struct sig_entry *set, const uint8_t d[32], int64_t now)
{
	int i, hit = 0;

	for (i = 0; i < SIG_WAYS; i++)
		hit |= set[i].exp > now && gk_ct_eq(set[i].d, d, 32);
	return hit;
}

static void
sig_cache_add(struct vctx_cache *c, struct sig_entry *set,
    const uint8_t d[32], int64_t exp, int64_t now)
{
	struct sig_entry *e = NULL;
	int i;

	for (i = 0; i < SIG_WAYS && e == NULL; i++) {
		if (set[i].exp <= now)
			e = &set[i];
	}
	if (e == NULL)
		e = &set[c->sig_next++ % SIG_WAYS];
	memcpy(e->d, d, 32);
	e->exp = exp;
}

void
verify_jws_counters(uint64_t *verified, uint64_t *cached)
{
	*verified = atomic_load_explicit(&sig_verified, memory_order_relaxed);
	*cached = atomic_load_explicit(&sig_cached, memory_order_relaxed);
}

/* ---- signatures ------------------------------------------------------- */

/* One DigestVerify with k's per-thread context (or a fresh one). */
static int
digest_verify(const struct vkey *k, const EVP_MD *md, gk_slice msg,
    const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx, *own = NULL;
	int ok;

	if ((ctx = vctx_get(k->id, k->pkey, md)) == NULL &&
	    (ctx = own = vctx_new(k->pkey, md)) == NULL)
		return 0;
	ok = EVP_DigestVerify(ctx, sig, sig_len, msg.p, msg.len) == 1;
	EVP_MD_CTX_free(own);
	return ok;
}

static int
verify_eddsa(const struct vkey *k, gk_slice msg, const uint8_t *sig,
    size_t sig_len)
{
	if (sig_len != 64)
		return 0;
	return crypto_sign_verify_detached(sig, msg.len > 0 ? msg.p :
	    (const uint8_t *)"", msg.len, k->ed_pub) == 0;
}

/* The order n of P-256's group and n / 2, big-endian. */
static const uint8_t p256_n[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};
static const uint8_t p256_half_n[32] = {
	0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00,
	0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
	0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
};

/*
 * ES256 is malleable: (r, s) and (r, n - s) both verify. A verified
 * signature (64 bytes, r || s) with s above n / 2 is rewritten in place
 * to its low-s twin, so the signature recorded in the audit is the same
 * whichever twin was sent (and still verifies). Common JWT libraries
 * (jose, WebCrypto) sign high-s half of the time, so both are accepted.
 */
static void
es256_low_s(uint8_t *sig)
{
	int i, d, borrow = 0;

	if (memcmp(sig + 32, p256_half_n, 32) <= 0)
		return;
	for (i = 31; i >= 0; i--) {
		d = p256_n[i] - sig[32 + i] - borrow;
		borrow = d < 0;
		sig[32 + i] = (uint8_t)(borrow ? d + 256 : d);
	}
}

/* ES256: the JWS signature is r || s (32 bytes each); OpenSSL wants DER. */
static int
verify_es256(const struct vkey *k, gk_slice msg, const uint8_t *sig,
    size_t sig_len)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int der_len, ok = 0;

	if (sig_len != 64)
		return 0;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by es */
	if ((der_len = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	ok = digest_verify(k, EVP_sha256(), msg, der, (size_t)der_len);
out:
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ok;
}

static int
verify_hs256(const gk_mac *m, gk_slice msg, const uint8_t *sig,
    size_t sig_len)
{
	uint8_t want[GK_MAC_LEN];
	int ok;

	if (sig_len != GK_MAC_LEN || verify_mac_compute(m, &msg, 1, want) != 0)
		return 0;
	ok = gk_ct_eq(want, sig, GK_MAC_LEN);
	gk_wipe(want, sizeof(want));
	return ok;
}

/* ---- parsing ----------------------------------------------------------- */

static const char *const alg_of_type[] = { "", "EdDSA", "ES256", "HS256" };

/* 0 if every byte is in the base64url alphabet; else the message. */
static const char *
b64url_chars(gk_slice s)
{
	size_t i;
	int pad = 0, bad = 0;

	for (i = 0; i < s.len; i++) {
		uint8_t c = s.p[i];

		if (c == '=')
			pad = 1;
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			bad = 1;
	}
	if (pad)
		return "Unauthorized: base64url padding is not allowed in the "
		    "token";
	if (bad)
		return "Unauthorized: token is not base64url";
	return NULL;
}

/* Why load_object failed. */
enum { LOAD_SYNTAX, LOAD_DUP, LOAD_RANGE };

/*
 * The member whose number jansson found out of range (a real that
 * overflows a double, an integer beyond int64), from the text before the
 * number: pos is the offset just past it. "" when the number is not a
 * member's value (an array element) or the name is not plain ASCII.
 */
static void
range_member(const gk_buf *b, size_t pos, char *name, size_t namelen)
{
	const char *t = (const char *)b->data;
	size_t i = pos > b->len ? b->len : pos, end, n;

	name[0] = '\0';
	while (i > 0 && strchr("0123456789+-.eE", t[i - 1]) != NULL)
		i--;
	while (i > 0 && strchr(" \t\r\n", t[i - 1]) != NULL)
		i--;
	if (i == 0 || t[--i] != ':')
		return;
	while (i > 0 && strchr(" \t\r\n", t[i - 1]) != NULL)
		i--;
	if (i == 0 || t[--i] != '"')
		return;
	end = i;
	while (i > 0 && t[i - 1] != '"') {
		char ch = t[i - 1];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return;
		i--;
	}
	n = end - i;
	if (i == 0 || n == 0 || n >= namelen)
		return;
	memcpy(name, t + i, n);
	name[n] = '\0';
}

/*
 * Parses a decoded JSON object with duplicate members refused. NULL with
 * *why LOAD_DUP, LOAD_RANGE (a number out of range: name, at most namelen
 * bytes, the member holding it, or "") or LOAD_SYNTAX.
 */
static json_t *
load_object(const gk_buf *b, int *why, char *name, size_t namelen)
{
	json_error_t jerr;
	json_t *j;

	*why = LOAD_SYNTAX;
	name[0] = '\0';
	j = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (j == NULL) {
		if (strstr(jerr.text, "duplicate") != NULL) {
			*why = LOAD_DUP;
		} else if (strstr(jerr.text, "overflow") != NULL ||
		    strstr(jerr.text, "too big") != NULL) {
			*why = LOAD_RANGE;
			if (jerr.position > 0)
				range_member(b, (size_t)jerr.position, name,
				    namelen);
		}
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A string member as a NUL-free copy of at most max bytes. 0 if absent
 * (*out NULL), GK_ERR_INVALID if not such a string. */
static int
get_str(json_t *o, const char *name, size_t min, size_t max, char **out)
{
	json_t *v = json_object_get(o, name);
	const char *s;
	size_t n;

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return GK_ERR_INVALID;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n < min || n > max || memchr(s, '\0', n) != NULL)
		return GK_ERR_INVALID;
	if ((*out = gk_slice_dup(gk_slice_of(s, n))) == NULL)
		return GK_ERR_NOMEM;
	return 0;
}

/* An integer time claim: 0 (present, *out set), GK_ERR_NOT_FOUND, or
 * GK_ERR_INVALID (not an integer, or negative). */
static int
get_time(json_t *o, const char *name, int64_t *out)
{
	json_t *v = json_object_get(o, name);

	if (v == NULL)
		return GK_ERR_NOT_FOUND;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return GK_ERR_INVALID;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

/* The refusal of a claim whose number is out of range, naming it when
 * it is one the gatekeeper reads (the messages are static sentences). */
static const char *
range_claim_msg(const char *name)
{
	static const struct {
		const char *name, *msg;
	} known[] = {
		{ "exp", "Unauthorized: claim 'exp' is out of range" },
		{ "iat", "Unauthorized: claim 'iat' is out of range" },
		{ "nbf", "Unauthorized: claim 'nbf' is out of range" },
		{ "aud", "Unauthorized: claim 'aud' is out of range" },
		{ "op", "Unauthorized: claim 'op' is out of range" },
		{ "key", "Unauthorized: claim 'key' is out of range" },
		{ "prefix", "Unauthorized: claim 'prefix' is out of range" },
		{ "sub", "Unauthorized: claim 'sub' is out of range" },
		{ "jti", "Unauthorized: claim 'jti' is out of range" },
		{ "cip", "Unauthorized: claim 'cip' is out of range" },
	};
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(known); i++)
		if (strcmp(name, known[i].name) == 0)
			return known[i].msg;
	return "Unauthorized: a number in the token claims is out of range";
}

#define REFUSE(code, text) do {						\
	r = (code);							\
	*msg = (text);							\
	goto out;							\
} while (0)

/* The claims of a token whose signature matched. */
static int
check_claims(json_t *c, const gk_jws_rules *rules, gk_jws_claims *out,
    const char **msg)
{
	const char *op, *aud;
	int64_t life;
	int r = GK_ERR_INTERNAL, t;

	if ((t = get_time(c, "exp", &out->exp)) == GK_ERR_NOT_FOUND)
		REFUSE(GK_ERR_DENIED, "Unauthorized: missing 'exp' claim");
	if (t != 0)
		REFUSE(GK_ERR_INVALID, "Unauthorized: 'exp' must be an "
		    "integer number of seconds");
	if ((t = get_time(c, "iat", &out->iat)) == GK_ERR_NOT_FOUND)
		REFUSE(GK_ERR_DENIED, "Unauthorized: missing 'iat' claim");
	if (t != 0)
		REFUSE(GK_ERR_INVALID, "Unauthorized: 'iat' must be an "
		    "integer number of seconds");
	t = get_time(c, "nbf", &out->nbf);
	if (t != 0 && t != GK_ERR_NOT_FOUND)
		REFUSE(GK_ERR_INVALID, "Unauthorized: 'nbf' must be an "
		    "integer number of seconds");
	if (t == GK_ERR_NOT_FOUND)
		out->nbf = 0;
	if (rules->now >= out->exp)
		REFUSE(GK_ERR_EXPIRED, "Unauthorized: token expired");
	if (out->iat > gk_add_sat(rules->now, rules->skew))
		REFUSE(GK_ERR_DENIED, "Unauthorized: 'iat' is in the future");
	if (out->nbf > gk_add_sat(rules->now, rules->skew))
		REFUSE(GK_ERR_DENIED, "Unauthorized: token not yet valid "
		    "('nbf')");
	if (__builtin_sub_overflow(out->exp, out->iat, &life) || life <= 0 ||
	    life > rules->max_lifetime)
		REFUSE(GK_ERR_DENIED, "Unauthorized: token lifetime (exp - iat) "
		    "exceeds the maximum");
	aud = json_string_value(json_object_get(c, "aud"));
	if (aud == NULL || rules->aud == NULL || strcmp(aud, rules->aud) != 0 ||
	    strlen(aud) != json_string_length(json_object_get(c, "aud")))
		REFUSE(GK_ERR_DENIED, "Unauthorized: wrong audience ('aud')");
	op = json_string_value(json_object_get(c, "op"));
	if (op != NULL && strcmp(op, "get") == 0)
		out->op = GK_V2_GET;
	else if (op != NULL && strcmp(op, "list") == 0)
		out->op = GK_V2_LIST;
	else if (op != NULL && strcmp(op, "put") == 0)
		out->op = GK_V2_PUT;
	else
		REFUSE(GK_ERR_DENIED, "Unauthorized: 'op' must be get, list or "
		    "put");
	if ((json_object_get(c, "key") != NULL) ==
	    (json_object_get(c, "prefix") != NULL))
		REFUSE(GK_ERR_DENIED, "Unauthorized: exactly one of 'key' or "
		    "'prefix' is required");
	if (get_str(c, "key", 1, GK_JWS_MAX_STR, &out->key) != 0)
		REFUSE(GK_ERR_DENIED, "Unauthorized: invalid 'key' claim");
	if (get_str(c, "prefix", 1, GK_JWS_MAX_STR, &out->prefix) != 0)
		REFUSE(GK_ERR_DENIED, "Unauthorized: invalid 'prefix' claim");
	if (out->prefix != NULL &&
	    out->prefix[strlen(out->prefix) - 1] != '/')
		REFUSE(GK_ERR_DENIED, "Unauthorized: 'prefix' must end with "
		    "'/'");
	if (get_str(c, "sub", 0, GK_JWS_MAX_STR, &out->sub) != 0)
		REFUSE(GK_ERR_DENIED, "Unauthorized: invalid 'sub' claim");
	if (get_str(c, "jti", 1, 256, &out->jti) != 0)
		REFUSE(GK_ERR_DENIED, "Unauthorized: invalid 'jti' claim");
	if (get_str(c, "cip", 1, 64, &out->cip) != 0)
		REFUSE(GK_ERR_DENIED, "Unauthorized: invalid 'cip' claim");
	r = 0;
out:
	return r;
}

int
verify_jws_check(const gk_keyring *kr, gk_slice token,
    const gk_jws_rules *rules, gk_jws_claims *out, int *status,
    const char **msg)
{
	const uint8_t *d1, *d2;
	gk_slice hs, cs, ss, signed_part;
	gk_buf hb, cb, sb;
	json_t *h = NULL, *c = NULL, *v;
	const char *name, *alg = NULL, *why;
	const struct vkey *k = NULL;
	struct vctx_cache *vc = NULL;
	struct sig_entry *set = NULL;
	uint8_t digest[32];
	char member[16];
	int r = GK_ERR_INTERNAL, why_load, ok, cached = 0;

	memset(out, 0, sizeof(*out));
	*status = 401;
	*msg = "Unauthorized: invalid token";
	gk_buf_init(&hb, GK_JWS_MAX);
	gk_buf_init(&cb, GK_JWS_MAX);
	gk_buf_init(&sb, GK_JWS_MAX);
	if (token.len > GK_JWS_MAX)
		REFUSE(GK_ERR_TOO_LARGE, "Unauthorized: token too large");
	if (token.len == 0 || token.p == NULL)
		REFUSE(GK_ERR_INVALID, "Unauthorized: missing token");
	d1 = memchr(token.p, '.', token.len);
	d2 = d1 ? memchr(d1 + 1, '.', token.len - (size_t)(d1 + 1 - token.p)) :
	    NULL;
	if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.',
	    token.len - (size_t)(d2 + 1 - token.p)) != NULL)
		REFUSE(GK_ERR_INVALID, "Unauthorized: malformed token "
		    "(expected header.claims.signature)");
	hs = gk_slice_of(token.p, (size_t)(d1 - token.p));
	cs = gk_slice_of(d1 + 1, (size_t)(d2 - d1 - 1));
	ss = gk_slice_of(d2 + 1, token.len - (size_t)(d2 + 1 - token.p));
	signed_part = gk_slice_of(token.p, (size_t)(d2 - token.p));
	if ((why = b64url_chars(hs)) == NULL &&
	    (why = b64url_chars(cs)) == NULL)
		why = b64url_chars(ss);
	if (why != NULL)
		REFUSE(GK_ERR_INVALID, why);
	if (hs.len == 0 || cs.len == 0 ||
	    gk_b64url_decode(hs, &hb) != 0 || gk_b64url_decode(cs, &cb) != 0 ||
	    gk_b64url_decode(ss, &sb) != 0)
		REFUSE(GK_ERR_INVALID, "Unauthorized: token is not base64url");

	/* the header: alg, kid and typ only */
	if ((h = load_object(&hb, &why_load, member, sizeof(member))) == NULL)
		REFUSE(GK_ERR_INVALID, why_load == LOAD_DUP ? "Unauthorized: "
		    "duplicate member in the token header" :
		    why_load == LOAD_RANGE ? "Unauthorized: a number in the "
		    "token header is out of range" : "Unauthorized: token "
		    "header is not a JSON object");
	json_object_foreach(h, name, v) {
		if (strcmp(name, "crit") == 0)
			REFUSE(GK_ERR_INVALID, "Unauthorized: 'crit' header is "
			    "not supported");
		if ((strcmp(name, "alg") != 0 && strcmp(name, "kid") != 0 &&
		    strcmp(name, "typ") != 0) || !json_is_string(v))
			REFUSE(GK_ERR_INVALID, "Unauthorized: unsupported token "
			    "header member");
	}
	if ((alg = json_string_value(json_object_get(h, "alg"))) == NULL)
		REFUSE(GK_ERR_INVALID, "Unauthorized: missing 'alg' header");
	if (strcasecmp(alg, "none") == 0)
		REFUSE(GK_ERR_AUTH, "Unauthorized: alg 'none' is not accepted");
	if (strcmp(alg, "EdDSA") != 0 && strcmp(alg, "ES256") != 0 &&
	    strcmp(alg, "HS256") != 0)
		REFUSE(GK_ERR_AUTH, "Unauthorized: unsupported 'alg'");
	v = json_object_get(h, "kid");
	if (v == NULL)
		REFUSE(GK_ERR_INVALID, "Unauthorized: missing 'kid' header");
	if (json_string_length(v) <= 64 && memchr(json_string_value(v), '\0',
	    json_string_length(v)) == NULL)
		out->kid = strdup(json_string_value(v));
	k = keyring_find(kr, json_string_value(v), json_string_length(v));
	if (k == NULL)
		REFUSE(GK_ERR_AUTH, "Unauthorized: unknown 'kid'");
	if ((k->not_before != 0 && rules->now < k->not_before) ||
	    (k->not_after != 0 && rules->now >= k->not_after))
		REFUSE(GK_ERR_AUTH, "Unauthorized: the vendor key is not valid "
		    "at this time");
	if (strcmp(alg, alg_of_type[k->type]) != 0)
		REFUSE(GK_ERR_AUTH, "Unauthorized: 'alg' does not match the "
		    "key's type");

	/* the signature, before anything reads the claims */
	if (k->type != GK_VKEY_HS256 && k->id != 0 && rules->sig_cache > 0 &&
	    (vc = vctx_cache_get()) != NULL &&
	    sig_digest(vc, k->id, signed_part, ss, digest) == 0)
		set = sig_set(vc, rules->sig_cache, digest);
	if (set != NULL && sig_cache_find(set, digest, rules->now)) {
		ok = 1;
		cached = 1;
	} else if (k->type == GK_VKEY_ED25519)
		ok = verify_eddsa(k, signed_part, sb.data, sb.len);
	else if (k->type == GK_VKEY_P256)
		ok = verify_es256(k, signed_part, sb.data, sb.len);
	else
		ok = verify_hs256(k->mac, signed_part, sb.data, sb.len);
	if (!ok)
		REFUSE(GK_ERR_AUTH, "Unauthorized: invalid signature");
	atomic_fetch_add_explicit(cached ? &sig_cached : &sig_verified, 1,
	    memory_order_relaxed);

	if ((c = load_object(&cb, &why_load, member, sizeof(member))) == NULL)
		REFUSE(GK_ERR_INVALID, why_load == LOAD_DUP ?
		    "Unauthorized: duplicate claim" : why_load == LOAD_RANGE ?
		    range_claim_msg(member) : "Unauthorized: token claims are "
		    "not a JSON object");
	if ((r = check_claims(c, rules, out, msg)) != 0)
		goto out;
	/* the set again: a keyring change while verifying empties the cache */
	if (set != NULL && !cached && (vc = vctx_cache_get()) != NULL &&
	    (set = sig_set(vc, rules->sig_cache, digest)) != NULL)
		sig_cache_add(vc, set, digest, out->exp, rules->now);
	if (k->type == GK_VKEY_P256 && sb.len == 64) {
		/* the audit records one form of a malleable signature (hb,
		 * the header already parsed, holds its base64url) */
		es256_low_s(sb.data);
		gk_buf_reset(&hb);
		if (gk_b64url_encode(sb.data, sb.len, &hb) != 0 ||
		    gk_buf_append(&hb, "", 0) != 0) {
			r = GK_ERR_NOMEM;
			*msg = "Unauthorized: invalid token";
			goto out;
		}
		ss = gk_slice_of(hb.data, hb.len);
	}
	if ((out->sig = gk_slice_dup(ss)) == NULL) {
		r = GK_ERR_NOMEM;
		*msg = "Unauthorized: invalid token";
		goto out;
	}
	*msg = NULL;
	*status = 0;
	r = 0;
out:
	if (r != 0) {
		char *kid = out->kid;

		out->kid = NULL;
		verify_jws_release(out);
		out->kid = kid;
	}
	json_decref(h);
	json_decref(c);
	gk_buf_release(&hb);
	gk_buf_release(&cb);
	gk_buf_release(&sb);
	return r;
}

void
verify_jws_release(gk_jws_claims *c)
{
	if (c == NULL)
		return;
	free(c->kid);
	free(c->sig);
	free(c->key);
	free(c->prefix);
	free(c->sub);
	free(c->jti);
	free(c->cip);
	memset(c, 0, sizeof(*c));
}
