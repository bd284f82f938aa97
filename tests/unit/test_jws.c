/*
 * test_jws.c - protocol v2: the keyring (every accepted public key form,
 * wrong types refused), tokens made by libgatekeeper verified by
 * verify_jws_check for each algorithm, tampering, key validity windows,
 * and libgatekeeper's v1 URL against the gatekeeper's own v1 signature.
 */
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "gatekeeper/sign.h"
#include "t.h"
#include "verify/verify.h"

static const uint8_t hs_secret[40] = "0123456789abcdef0123456789abcdef-secret";

struct pair {
	EVP_PKEY *pkey;
	char *pem;		/* private, PEM */
	gk_buf raw_b64;		/* raw public key, base64 */
	gk_buf spki_b64;	/* DER SubjectPublicKeyInfo, base64 */
	char *pub_pem;
};

static void
make_pair(struct pair *p, int ed)
{
	unsigned char raw[80], *der = NULL;
	size_t raw_len = sizeof(raw);
	BIO *b;
	char *m;
	long n;
	int dl;

	memset(p, 0, sizeof(*p));
	gk_buf_init(&p->raw_b64, 4096);
	gk_buf_init(&p->spki_b64, 4096);
	p->pkey = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	T_CHECK(p->pkey != NULL);
	if (ed)
		T_EQ_INT(EVP_PKEY_get_raw_public_key(p->pkey, raw, &raw_len), 1);
	else
		T_EQ_INT(EVP_PKEY_get_octet_string_param(p->pkey,
		    OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof(raw), &raw_len), 1);
	T_EQ_INT(raw_len, ed ? 32 : 65);
	T_EQ_INT(gk_b64_encode(raw, raw_len, &p->raw_b64), 0);
	dl = i2d_PUBKEY(p->pkey, &der);
	T_CHECK(dl > 0);
	T_EQ_INT(gk_b64_encode(der, (size_t)dl, &p->spki_b64), 0);
	OPENSSL_free(der);
	b = BIO_new(BIO_s_mem());
	T_EQ_INT(PEM_write_bio_PrivateKey(b, p->pkey, NULL, NULL, 0, NULL,
	    NULL), 1);
	n = BIO_get_mem_data(b, &m);
	p->pem = strndup(m, (size_t)n);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	T_EQ_INT(PEM_write_bio_PUBKEY(b, p->pkey), 1);
	n = BIO_get_mem_data(b, &m);
	p->pub_pem = strndup(m, (size_t)n);
	BIO_free(b);
}

static void
free_pair(struct pair *p)
{
	EVP_PKEY_free(p->pkey);
	free(p->pem);
	free(p->pub_pem);
	gk_buf_release(&p->raw_b64);
	gk_buf_release(&p->spki_b64);
}

static gk_keyring *
ring(gk_vendor_key *keys, size_t n, int want)
{
	gk_keyring *kr = NULL;
	char err[256] = "";

	T_EQ_INT(verify_keyring_new(keys, n, &kr, err, sizeof(err)), want);
	if (want != 0)
		T_CHECK(strstr(err, "vendor key") != NULL);
	return kr;
}

static const gk_jws_rules *
rules_now(void)
{
	static gk_jws_rules r;

	r.aud = "gk";
	r.now = gk_now_s();
	r.skew = 30;
	r.max_lifetime = 900;
	return &r;
}

/* Signs with libgatekeeper and verifies; returns verify's result. */
static int
roundtrip(const gk_keyring *kr, const gk_sign_key *sk, const char *op,
    const char *key, const char **msg, gk_jws_claims *c, char *tok)
{
	gk_sign_claims sc = { .aud = "gk", .op = op, .key = key, .sub = "u-1",
	    .jti = "auto", .ttl = 120 };
	int status = 0, r;

	T_EQ_INT(gk_sign_v2_token(sk, &sc, tok, 8192), GK_SIGN_OK);
	r = verify_jws_check(kr, gk_slice_str(tok), rules_now(), c, &status,
	    msg);
	if (r != 0)
		T_EQ_INT(status, 401);
	return r;
}

static void
test_algorithms(void)
{
	struct pair ed, p256, other;
	gk_vendor_key vk[5];
	gk_keyring *kr;
	gk_sign_key *ske = NULL, *skp = NULL, *skh = NULL, *wrong = NULL;
	gk_jws_claims c;
	const char *msg = NULL;
	char *tok = malloc(8192);
	int status;

	make_pair(&ed, 1);
	make_pair(&p256, 0);
	memset(vk, 0, sizeof(vk));
	vk[0] = (gk_vendor_key){ .kid = (char *)"ed", .type = GK_VKEY_ED25519,
	    .public_key = (char *)ed.raw_b64.data };
	vk[1] = (gk_vendor_key){ .kid = (char *)"p", .type = GK_VKEY_P256,
	    .public_key = (char *)p256.raw_b64.data };
	vk[2] = (gk_vendor_key){ .kid = (char *)"h", .type = GK_VKEY_HS256,
	    .secret = { (uint8_t *)hs_secret, sizeof(hs_secret) } };
	vk[3] = (gk_vendor_key){ .kid = (char *)"ed-spki",
	    .type = GK_VKEY_ED25519, .public_key = (char *)ed.spki_b64.data };
	vk[4] = (gk_vendor_key){ .kid = (char *)"p-pem", .type = GK_VKEY_P256,
	    .public_pem = p256.pub_pem };
	kr = ring(vk, 5, 0);
	T_EQ_INT(gk_sign_key_pem(ed.pem, strlen(ed.pem), "ed", &ske), 0);
	T_EQ_INT(gk_sign_key_pem(p256.pem, strlen(p256.pem), "p", &skp), 0);
	T_EQ_INT(gk_sign_key_hs256(hs_secret, sizeof(hs_secret), "h", &skh),
	    0);
	T_EQ_STR(gk_sign_key_alg(ske), "EdDSA");
	T_EQ_STR(gk_sign_key_alg(skp), "ES256");
	T_EQ_STR(gk_sign_key_alg(skh), "HS256");

	T_EQ_INT(roundtrip(kr, ske, "get", "a/b.txt", &msg, &c, tok), 0);
	T_EQ_STR(c.kid, "ed");
	T_EQ_STR(c.key, "a/b.txt");
	T_EQ_STR(c.sub, "u-1");
	T_EQ_INT(c.op, GK_V2_GET);
	T_EQ_INT(c.exp - c.iat, 120);
	T_EQ_INT(strlen(c.jti), 32);
	T_EQ_STR(c.sig, strrchr(tok, '.') + 1);
	verify_jws_release(&c);
	T_EQ_INT(roundtrip(kr, skp, "list", "a/", &msg, &c, tok), 0);
	T_EQ_INT(c.op, GK_V2_LIST);
	verify_jws_release(&c);
	T_EQ_INT(roundtrip(kr, skh, "put", "x", &msg, &c, tok), 0);
	T_EQ_INT(c.op, GK_V2_PUT);
	verify_jws_release(&c);

	/* the SPKI and PEM forms of the same keys */
	gk_sign_key_free(ske);
	gk_sign_key_free(skp);
	T_EQ_INT(gk_sign_key_pem(ed.pem, strlen(ed.pem), "ed-spki", &ske), 0);
	T_EQ_INT(gk_sign_key_pem(p256.pem, strlen(p256.pem), "p-pem", &skp),
	    0);
	T_EQ_INT(roundtrip(kr, ske, "get", "k", &msg, &c, tok), 0);
	verify_jws_release(&c);
	T_EQ_INT(roundtrip(kr, skp, "get", "k", &msg, &c, tok), 0);
	verify_jws_release(&c);

	/* a flipped signature bit, for every algorithm */
	T_EQ_INT(roundtrip(kr, skp, "get", "k", &msg, &c, tok), 0);
	verify_jws_release(&c);
	tok[strlen(tok) - 5] ^= 1;
	T_CHECK(verify_jws_check(kr, gk_slice_str(tok), rules_now(), &c,
	    &status, &msg) != 0);
	T_CHECK(msg != NULL && (strcmp(msg, "Unauthorized: invalid signature")
	    == 0 || strcmp(msg, "Unauthorized: token is not base64url") == 0));
	verify_jws_release(&c);

	/* the right kid, the wrong key */
	make_pair(&other, 1);
	T_EQ_INT(gk_sign_key_pem(other.pem, strlen(other.pem), "ed", &wrong),
	    0);
	T_EQ_INT(roundtrip(kr, wrong, "get", "k", &msg, &c, tok),
	    GK_ERR_AUTH);
	T_EQ_STR(msg, "Unauthorized: invalid signature");
	T_EQ_STR(c.kid, "ed");
	T_CHECK(c.sig == NULL && c.key == NULL);
	verify_jws_release(&c);
	/* the kid of a P-256 key with an Ed25519 signer */
	gk_sign_key_free(wrong);
	T_EQ_INT(gk_sign_key_pem(ed.pem, strlen(ed.pem), "p", &wrong), 0);
	T_EQ_INT(roundtrip(kr, wrong, "get", "k", &msg, &c, tok),
	    GK_ERR_AUTH);
	T_EQ_STR(msg, "Unauthorized: 'alg' does not match the key's type");
	verify_jws_release(&c);

	gk_sign_key_free(wrong);
	gk_sign_key_free(ske);
	gk_sign_key_free(skp);
	gk_sign_key_free(skh);
	verify_keyring_free(kr);
	free_pair(&ed);
	free_pair(&p256);
	free_pair(&other);
	free(tok);
}

/* issue 17: ES256's (r, s) and (r, n - s) both verify; both are
 * accepted (JWT libraries make either) but the recorded signature is
 * always the low-s one, so the audited token_sig is unique; libgatekeeper
 * makes only low-s signatures. */
static void
test_es256_high_s(void)
{
	static const uint8_t n[32] = {
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
		0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
	};
	static const uint8_t half[32] = {
		0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00,
		0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
		0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
	};
	struct pair p256;
	gk_vendor_key vk;
	gk_keyring *kr;
	gk_sign_key *skp = NULL;
	gk_jws_claims c;
	const char *msg = NULL;
	char *tok = malloc(8192), *dot;
	gk_buf sig, forged;
	int status, i, j, borrow;

	make_pair(&p256, 0);
	vk = (gk_vendor_key){ .kid = (char *)"p", .type = GK_VKEY_P256,
	    .public_key = (char *)p256.raw_b64.data };
	kr = ring(&vk, 1, 0);
	T_EQ_INT(gk_sign_key_pem(p256.pem, strlen(p256.pem), "p", &skp), 0);
	for (i = 0; i < 16; i++) {
		T_EQ_INT(roundtrip(kr, skp, "get", "k", &msg, &c, tok), 0);
		verify_jws_release(&c);
		dot = strrchr(tok, '.');
		gk_buf_init(&sig, 128);
		T_EQ_INT(gk_b64url_decode(gk_slice_str(dot + 1), &sig), 0);
		T_EQ_INT((int)sig.len, 64);
		/* the signer's s is low */
		T_CHECK(memcmp(sig.data + 32, half, 32) <= 0);
		/* its twin n - s verifies too, and is recorded as s */
		for (j = 31, borrow = 0; j >= 0; j--) {
			int d = n[j] - sig.data[32 + j] - borrow;

			borrow = d < 0;
			sig.data[32 + j] = (uint8_t)(d + (borrow ? 256 : 0));
		}
		gk_buf_init(&forged, 8192);
		T_EQ_INT(gk_buf_append(&forged, tok, (size_t)(dot + 1 - tok)),
		    0);
		T_EQ_INT(gk_b64url_encode(sig.data, sig.len, &forged), 0);
		T_EQ_INT(gk_buf_append(&forged, "", 0), 0);
		T_CHECK(strcmp((char *)forged.data, tok) != 0);
		T_EQ_INT(verify_jws_check(kr, gk_slice_of(forged.data,
		    forged.len), rules_now(), &c, &status, &msg), 0);
		T_EQ_STR(c.sig, dot + 1);
		verify_jws_release(&c);
		/* and a flipped bit of the high twin is still refused */
		forged.data[forged.len - 3] ^= 1;
		T_CHECK(verify_jws_check(kr, gk_slice_of(forged.data,
		    forged.len), rules_now(), &c, &status, &msg) != 0);
		verify_jws_release(&c);
		gk_buf_release(&forged);
		gk_buf_release(&sig);
	}
	gk_sign_key_free(skp);
	verify_keyring_free(kr);
	free_pair(&p256);
	free(tok);
}

static void
test_keyring_refusals(void)
{
	struct pair ed, p256;
	gk_vendor_key vk;
	static uint8_t short_secret[31];

	make_pair(&ed, 1);
	make_pair(&p256, 0);
	/* a P-256 key configured as ed25519, and the other way round */
	vk = (gk_vendor_key){ .kid = (char *)"x", .type = GK_VKEY_ED25519,
	    .public_key = (char *)p256.spki_b64.data };
	verify_keyring_free(ring(&vk, 1, GK_ERR_CONFIG));
	vk = (gk_vendor_key){ .kid = (char *)"x", .type = GK_VKEY_P256,
	    .public_key = (char *)ed.raw_b64.data };
	verify_keyring_free(ring(&vk, 1, GK_ERR_CONFIG));
	vk = (gk_vendor_key){ .kid = (char *)"x", .type = GK_VKEY_ED25519,
	    .public_key = (char *)"not base64!" };
	verify_keyring_free(ring(&vk, 1, GK_ERR_CONFIG));
	vk = (gk_vendor_key){ .kid = (char *)"x", .type = GK_VKEY_HS256,
	    .secret = { short_secret, sizeof(short_secret) } };
	verify_keyring_free(ring(&vk, 1, GK_ERR_CONFIG));
	vk = (gk_vendor_key){ .kid = (char *)"x", .type = GK_VKEY_P256,
	    .public_pem = (char *)"-----BEGIN PUBLIC KEY-----\nAAAA\n" };
	verify_keyring_free(ring(&vk, 1, GK_ERR_CONFIG));
	/* Ed25519 keys that are not a point of the prime-order subgroup
	 * in canonical form: the identity (small order: its signatures
	 * would not bind the message) and y = p (non-canonical) */
	vk = (gk_vendor_key){ .kid = (char *)"x", .type = GK_VKEY_ED25519,
	    .public_key = (char *)
	    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" };
	verify_keyring_free(ring(&vk, 1, GK_ERR_CONFIG));
	vk = (gk_vendor_key){ .kid = (char *)"x", .type = GK_VKEY_ED25519,
	    .public_key = (char *)
	    "7f///////////////////////////////////////38=" };
	verify_keyring_free(ring(&vk, 1, GK_ERR_CONFIG));
	/* an empty keyring refuses every token */
	verify_keyring_free(ring(NULL, 0, 0));
	free_pair(&ed);
	free_pair(&p256);
}

static void
test_windows_and_limits(void)
{
	gk_vendor_key vk[2];
	gk_keyring *kr;
	gk_sign_key *sk = NULL;
	gk_jws_claims c;
	const char *msg;
	char *tok = malloc(8192), *big = malloc(GK_JWS_MAX + 2);
	int status;

	memset(vk, 0, sizeof(vk));
	vk[0] = (gk_vendor_key){ .kid = (char *)"old", .type = GK_VKEY_HS256,
	    .secret = { (uint8_t *)hs_secret, sizeof(hs_secret) },
	    .not_after = gk_now_s() - 1 };
	vk[1] = (gk_vendor_key){ .kid = (char *)"new", .type = GK_VKEY_HS256,
	    .secret = { (uint8_t *)hs_secret, sizeof(hs_secret) },
	    .not_before = gk_now_s() - 10 };
	kr = ring(vk, 2, 0);
	T_EQ_INT(gk_sign_key_hs256(hs_secret, sizeof(hs_secret), "old", &sk),
	    0);
	T_EQ_INT(roundtrip(kr, sk, "get", "k", &msg, &c, tok), GK_ERR_AUTH);
	T_EQ_STR(msg, "Unauthorized: the vendor key is not valid at this "
	    "time");
	verify_jws_release(&c);
	gk_sign_key_free(sk);
	T_EQ_INT(gk_sign_key_hs256(hs_secret, sizeof(hs_secret), "new", &sk),
	    0);
	T_EQ_INT(roundtrip(kr, sk, "get", "k", &msg, &c, tok), 0);
	verify_jws_release(&c);

	memset(big, 'A', GK_JWS_MAX + 1);
	big[GK_JWS_MAX + 1] = '\0';
	T_EQ_INT(verify_jws_check(kr, gk_slice_str(big), rules_now(), &c,
	    &status, &msg), GK_ERR_TOO_LARGE);
	T_EQ_STR(msg, "Unauthorized: token too large");
	verify_jws_release(&c);
	T_EQ_INT(verify_jws_check(kr, gk_slice_str("a.b.c.d"), rules_now(), &c,
	    &status, &msg), GK_ERR_INVALID);
	verify_jws_release(&c);
	T_EQ_INT(verify_jws_check(kr, GK_SLICE_NULL, rules_now(), &c, &status,
	    &msg), GK_ERR_INVALID);
	T_EQ_STR(msg, "Unauthorized: missing token");
	verify_jws_release(&c);
	/* NUL inside a token */
	T_EQ_INT(verify_jws_check(kr, gk_slice_of("eyJ\0.x.y", 8),
	    rules_now(), &c, &status, &msg), GK_ERR_INVALID);
	verify_jws_release(&c);
	verify_jws_release(NULL);

	gk_sign_key_free(sk);
	verify_keyring_free(kr);
	free(tok);
	free(big);
}

/* libgatekeeper's v1 URL carries the signature the gatekeeper expects. */
static void
test_lib_v1(void)
{
	const uint8_t key[] = "a-shared-v1-secret-of-some-length";
	char url[1024], hex[GK_MAC_HEX_LEN + 1], want[512];
	gk_mac *m = NULL;

	T_EQ_INT(gk_sign_v1_url("http://gk", key, sizeof(key) - 1, "app",
	    "/clinic 7/a.pdf", "GET_Object", 1800000000, url, sizeof(url)), 0);
	T_EQ_INT(verify_mac_new(key, sizeof(key) - 1, &m), 0);
	T_EQ_INT(verify_v1_sign(m, gk_slice_str("app"),
	    gk_slice_str("clinic 7"), gk_slice_str("GET_Object"),
	    gk_slice_str("1800000000"), hex), 0);
	snprintf(want, sizeof(want), "http://gk/app?path=/clinic%%207/a.pdf"
	    "&operation=GET_Object&expires=1800000000&hmac=%s", hex);
	T_EQ_STR(url, want);
	T_EQ_INT(gk_sign_v1_url("http://gk", key, sizeof(key) - 1, "app",
	    "/a", "DELETE", 1, url, sizeof(url)), GK_SIGN_EINVAL);
	T_EQ_STR(url, "");
	T_EQ_INT(gk_sign_v1_url("http://gk", key, sizeof(key) - 1, "app",
	    "/a", "GET_Object", 1, url, 20), GK_SIGN_ESPACE);
	T_EQ_STR(url, "");
	T_EQ_INT(gk_sign_v2_url("http://gk", "get", "a b/c", "T", url,
	    sizeof(url)), 0);
	T_EQ_STR(url, "http://gk/v2/objects/a%20b/c?token=T");
	verify_mac_free(m);
}

/* A reload: a new keyring with the same kids and other keys. Each thread
 * keeps verification contexts per key; none made for the old keyring may
 * verify for the new one, and many keys (more than the per-thread cache
 * holds) keep verifying. */
static void
test_reload(void)
{
	struct pair a[2], b[2];
	gk_vendor_key vk[2];
	gk_sign_key *sa[2], *sb[2], *w;
	gk_keyring *kr1, *kr2, *many;
	gk_vendor_key mk[20];
	struct pair mp[20];
	gk_sign_key *ms[20];
	gk_jws_claims c;
	const char *msg = NULL;
	char *tok = malloc(8192);
	static const char *const kids[2] = { "ed", "p" };
	char kidbuf[20][16];
	int i, round;

	for (i = 0; i < 2; i++) {
		make_pair(&a[i], i == 0);
		make_pair(&b[i], i == 0);
		T_EQ_INT(gk_sign_key_pem(a[i].pem, strlen(a[i].pem), kids[i],
		    &sa[i]), 0);
		T_EQ_INT(gk_sign_key_pem(b[i].pem, strlen(b[i].pem), kids[i],
		    &sb[i]), 0);
	}
	memset(vk, 0, sizeof(vk));
	for (i = 0; i < 2; i++)
		vk[i] = (gk_vendor_key){ .kid = (char *)kids[i],
		    .type = i == 0 ? GK_VKEY_ED25519 : GK_VKEY_P256,
		    .public_key = (char *)a[i].raw_b64.data };
	kr1 = ring(vk, 2, 0);
	for (i = 0; i < 2; i++) {
		/* twice: the second runs on this thread's cached context */
		for (round = 0; round < 2; round++) {
			T_EQ_INT(roundtrip(kr1, sa[i], "get", "k", &msg, &c,
			    tok), 0);
			verify_jws_release(&c);
		}
		T_EQ_INT(roundtrip(kr1, sb[i], "get", "k", &msg, &c, tok),
		    GK_ERR_AUTH);
		verify_jws_release(&c);
	}
	for (i = 0; i < 2; i++)
		vk[i].public_key = (char *)b[i].raw_b64.data;
	kr2 = ring(vk, 2, 0);
	verify_keyring_free(kr1);
	for (i = 0; i < 2; i++) {
		for (round = 0; round < 2; round++) {
			T_EQ_INT(roundtrip(kr2, sa[i], "get", "k", &msg, &c,
			    tok), GK_ERR_AUTH);
			T_EQ_STR(msg, "Unauthorized: invalid signature");
			verify_jws_release(&c);
			T_EQ_INT(roundtrip(kr2, sb[i], "get", "k", &msg, &c,
			    tok), 0);
			verify_jws_release(&c);
		}
	}

	/* more keys than a thread caches contexts for, used in turn */
	memset(mk, 0, sizeof(mk));
	for (i = 0; i < 20; i++) {
		make_pair(&mp[i], i % 2 == 0);
		snprintf(kidbuf[i], sizeof(kidbuf[i]), "k%d", i);
		mk[i] = (gk_vendor_key){ .kid = kidbuf[i],
		    .type = i % 2 == 0 ? GK_VKEY_ED25519 : GK_VKEY_P256,
		    .public_key = (char *)mp[i].spki_b64.data };
		T_EQ_INT(gk_sign_key_pem(mp[i].pem, strlen(mp[i].pem),
		    kidbuf[i], &ms[i]), 0);
	}
	many = ring(mk, 20, 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 20; i++) {
			T_EQ_INT(roundtrip(many, ms[i], "get", "k", &msg, &c,
			    tok), 0);
			verify_jws_release(&c);
			/* another key's signer under this kid */
			T_EQ_INT(gk_sign_key_pem(mp[(i + 2) % 20].pem,
			    strlen(mp[(i + 2) % 20].pem), kidbuf[i], &w), 0);
			T_EQ_INT(roundtrip(many, w, "get", "k", &msg, &c,
			    tok), GK_ERR_AUTH);
			verify_jws_release(&c);
			gk_sign_key_free(w);
		}
	}
	verify_keyring_free(many);
	for (i = 0; i < 20; i++) {
		gk_sign_key_free(ms[i]);
		free_pair(&mp[i]);
	}
	verify_keyring_free(kr2);
	for (i = 0; i < 2; i++) {
		gk_sign_key_free(sa[i]);
		gk_sign_key_free(sb[i]);
		free_pair(&a[i]);
		free_pair(&b[i]);
	}
	free(tok);
}

/*
 * The verified-signature cache: a token verified once is accepted again
 * without the public-key check, and nothing else is skipped: its claims
 * against the rules of each use, its key (a reload starts over, another
 * key under the same kid refuses it), and a token differing in any byte.
 */
static uint64_t
pk_checks(void)
{
	uint64_t pk, cached;

	verify_jws_counters(&pk, &cached);
	return pk;
}

static uint64_t
cache_hits(void)
{
	uint64_t pk, cached;

	verify_jws_counters(&pk, &cached);
	return cached;
}

static int
check_with(const gk_keyring *kr, const char *tok, gk_jws_rules *r,
    gk_jws_claims *c, const char **msg)
{
	int status = 0;

	memset(c, 0, sizeof(*c));
	return verify_jws_check(kr, gk_slice_str(tok), r, c, &status, msg);
}

static void
test_sig_cache(void)
{
	struct pair ed, p256, other;
	gk_vendor_key vk[2];
	gk_keyring *kr, *kr2;
	gk_sign_key *ske = NULL, *skp = NULL, *sko = NULL;
	gk_sign_claims sc = { .aud = "gk", .op = "get", .key = "a/b",
	    .sub = "u-1", .ttl = 120 };
	gk_jws_rules r = *rules_now();
	gk_jws_claims c;
	const char *msg = NULL;
	char *tok = malloc(8192), *tok2 = malloc(8192), *ptok = malloc(8192);
	char *sig1;
	uint64_t pk0, hit0;
	int i;

	make_pair(&ed, 1);
	make_pair(&p256, 0);
	make_pair(&other, 1);
	memset(vk, 0, sizeof(vk));
	vk[0] = (gk_vendor_key){ .kid = (char *)"ed", .type = GK_VKEY_ED25519,
	    .public_key = (char *)ed.raw_b64.data };
	vk[1] = (gk_vendor_key){ .kid = (char *)"p", .type = GK_VKEY_P256,
	    .public_key = (char *)p256.raw_b64.data };
	kr = ring(vk, 2, 0);
	T_EQ_INT(gk_sign_key_pem(ed.pem, strlen(ed.pem), "ed", &ske), 0);
	T_EQ_INT(gk_sign_key_pem(p256.pem, strlen(p256.pem), "p", &skp), 0);
	T_EQ_INT(gk_sign_key_pem(other.pem, strlen(other.pem), "ed", &sko), 0);
	T_EQ_INT(gk_sign_v2_token(ske, &sc, tok, 8192), GK_SIGN_OK);
	r.sig_cache = 64;

	/* first use: the public key; second: the cache, same claims */
	pk0 = pk_checks();
	hit0 = cache_hits();
	T_EQ_INT(check_with(kr, tok, &r, &c, &msg), 0);
	T_EQ_INT(pk_checks() - pk0, 1);
	T_EQ_INT(cache_hits() - hit0, 0);
	verify_jws_release(&c);
	T_EQ_INT(check_with(kr, tok, &r, &c, &msg), 0);
	T_EQ_INT(pk_checks() - pk0, 1);
	T_EQ_INT(cache_hits() - hit0, 1);
	T_EQ_STR(c.key, "a/b");
	T_EQ_STR(c.sub, "u-1");
	T_EQ_STR(c.sig, strrchr(tok, '.') + 1);
	verify_jws_release(&c);

	/* the claims are checked on every use: another audience, later
	 * than exp */
	r.aud = "other-gk";
	T_EQ_INT(check_with(kr, tok, &r, &c, &msg), GK_ERR_DENIED);
	T_EQ_STR(msg, "Unauthorized: wrong audience ('aud')");
	verify_jws_release(&c);
	r.aud = "gk";
	r.now += 121;
	T_EQ_INT(check_with(kr, tok, &r, &c, &msg), GK_ERR_EXPIRED);
	T_EQ_STR(msg, "Unauthorized: token expired");
	verify_jws_release(&c);
	r.now -= 121;

	/* the same signing input under another key's signature, and a
	 * signature with one bit changed, are refused */
	sc.key = "a/b";
	T_EQ_INT(gk_sign_v2_token(sko, &sc, tok2, 8192), GK_SIGN_OK);
	T_EQ_INT(check_with(kr, tok2, &r, &c, &msg), GK_ERR_AUTH);
	T_EQ_STR(msg, "Unauthorized: invalid signature");
	verify_jws_release(&c);
	strcpy(tok2, tok);
	tok2[strlen(tok2) - 10] ^= 0x01;
	T_CHECK(check_with(kr, tok2, &r, &c, &msg) != 0);
	verify_jws_release(&c);

	/* a reload: the same key starts over; another key under the kid
	 * refuses the token the old key's cache held */
	kr2 = ring(vk, 2, 0);
	verify_keyring_free(kr);
	pk0 = pk_checks();
	T_EQ_INT(check_with(kr2, tok, &r, &c, &msg), 0);
	T_EQ_INT(pk_checks() - pk0, 1);
	verify_jws_release(&c);
	verify_keyring_free(kr2);
	vk[0].public_key = (char *)other.raw_b64.data;
	kr = ring(vk, 2, 0);
	T_EQ_INT(check_with(kr, tok, &r, &c, &msg), GK_ERR_AUTH);
	T_EQ_STR(msg, "Unauthorized: invalid signature");
	verify_jws_release(&c);
	vk[0].public_key = (char *)ed.raw_b64.data;
	verify_keyring_free(kr);
	kr = ring(vk, 2, 0);

	/* ES256: the cached use records the same (low-s) signature */
	T_EQ_INT(gk_sign_v2_token(skp, &sc, ptok, 8192), GK_SIGN_OK);
	T_EQ_INT(check_with(kr, ptok, &r, &c, &msg), 0);
	sig1 = strdup(c.sig);
	verify_jws_release(&c);
	hit0 = cache_hits();
	T_EQ_INT(check_with(kr, ptok, &r, &c, &msg), 0);
	T_EQ_INT(cache_hits() - hit0, 1);
	T_EQ_STR(c.sig, sig1);
	verify_jws_release(&c);
	free(sig1);

	/* off: every use is checked by the public key */
	r.sig_cache = 0;
	pk0 = pk_checks();
	for (i = 0; i < 3; i++) {
		T_EQ_INT(check_with(kr, tok, &r, &c, &msg), 0);
		verify_jws_release(&c);
	}
	T_EQ_INT(pk_checks() - pk0, 3);

	/* a full cache (one set of four) forgets the oldest entry */
	r.sig_cache = 4;
	T_EQ_INT(check_with(kr, tok, &r, &c, &msg), 0);
	verify_jws_release(&c);
	for (i = 0; i < 4; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		sc.key = key;
		T_EQ_INT(gk_sign_v2_token(ske, &sc, tok2, 8192), GK_SIGN_OK);
		T_EQ_INT(check_with(kr, tok2, &r, &c, &msg), 0);
		verify_jws_release(&c);
	}
	pk0 = pk_checks();
	T_EQ_INT(check_with(kr, tok, &r, &c, &msg), 0);
	T_EQ_INT(pk_checks() - pk0, 1);
	verify_jws_release(&c);

	verify_keyring_free(kr);
	gk_sign_key_free(ske);
	gk_sign_key_free(skp);
	gk_sign_key_free(sko);
	free_pair(&ed);
	free_pair(&p256);
	free_pair(&other);
	free(tok);
	free(tok2);
	free(ptok);
}

int
main(void)
{
	test_algorithms();
	test_reload();
	test_sig_cache();
	test_es256_high_s();
	test_keyring_refusals();
	test_windows_and_limits();
	test_lib_v1();
	return T_DONE();
}
