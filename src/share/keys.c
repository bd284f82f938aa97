/*
 * keys.c - age identities and recipients (bech32, X25519) and the
 * sender's Ed25519 signing key derived from an identity.
 */
#include "share/share.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>

#include "share/share_int.h"

static const char B32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t
polymod_step(uint32_t chk, unsigned v)
{
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
	    0x3d4233dd, 0x2a1462b3 };
	uint32_t b = chk >> 25;
	int i;

	chk = ((chk & 0x1ffffff) << 5) ^ v;
	for (i = 0; i < 5; i++)
		if ((b >> i) & 1)
			chk ^= gen[i];
	return chk;
}

static uint32_t
hrp_chk(const char *hrp)
{
	uint32_t chk = 1;
	size_t i, n = strlen(hrp);

	for (i = 0; i < n; i++)
		chk = polymod_step(chk, (unsigned char)hrp[i] >> 5);
	chk = polymod_step(chk, 0);
	for (i = 0; i < n; i++)
		chk = polymod_step(chk, (unsigned char)hrp[i] & 31);
	return chk;
}

/* bech32 of 32 bytes with lower-case hrp; upper-cased if upper. */
static void
bech32_encode(const char *hrp, const uint8_t in[32], int upper, char *out,
    size_t outlen)
{
	uint8_t v[64];
	size_t nv = 0, i, o = 0, hl = strlen(hrp);
	uint32_t acc = 0, chk;
	int bits = 0;

	for (i = 0; i < 32; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			v[nv++] = (acc >> bits) & 31;
		}
	}
	if (bits > 0)
		v[nv++] = (acc << (5 - bits)) & 31;
	chk = hrp_chk(hrp);
	for (i = 0; i < nv; i++)
		chk = polymod_step(chk, v[i]);
	for (i = 0; i < 6; i++)
		chk = polymod_step(chk, 0);
	chk ^= 1;
	if (hl + 1 + nv + 6 + 1 > outlen) {
		out[0] = '\0';
		return;
	}
	for (i = 0; i < hl; i++)
		out[o++] = upper ? (char)toupper((unsigned char)hrp[i]) : hrp[i];
	out[o++] = '1';
	for (i = 0; i < nv; i++)
		out[o++] = upper ? (char)toupper((unsigned char)B32[v[i]]) :
		    B32[v[i]];
	for (i = 0; i < 6; i++) {
		char c = B32[(chk >> (5 * (5 - i))) & 31];
		out[o++] = upper ? (char)toupper((unsigned char)c) : c;
	}
	out[o] = '\0';
}

/* Decodes bech32 with exactly hrp (lower case) into 32 bytes. */
static int
bech32_decode(const char *hrp, gk_slice s, uint8_t out[32])
{
	char low[128];
	size_t i, sep, hl = strlen(hrp), nd, no = 0;
	int has_lower = 0, has_upper = 0, bits = 0;
	uint32_t chk, acc = 0;

	if (s.len < hl + 8 || s.len >= sizeof(low))
		return GK_ERR_INVALID;
	for (i = 0; i < s.len; i++) {
		uint8_t c = s.p[i];

		if (c < 33 || c > 126)
			return GK_ERR_INVALID;
		if (islower(c))
			has_lower = 1;
		if (isupper(c))
			has_upper = 1;
		low[i] = (char)tolower(c);
	}
	low[s.len] = '\0';
	if (has_lower && has_upper)
		return GK_ERR_INVALID;
	sep = s.len;
	while (sep > 0 && low[sep - 1] != '1')
		sep--;
	if (sep == 0 || sep - 1 != hl || memcmp(low, hrp, hl) != 0)
		return GK_ERR_INVALID;
	nd = s.len - sep;
	if (nd < 6)
		return GK_ERR_INVALID;
	chk = hrp_chk(hrp);
	for (i = 0; i < nd; i++) {
		const char *q = strchr(B32, low[sep + i]);
		unsigned v;

		if (q == NULL || low[sep + i] == '\0')
			return GK_ERR_INVALID;
		v = (unsigned)(q - B32);
		chk = polymod_step(chk, v);
		if (i < nd - 6) {
			acc = (acc << 5) | v;
			bits += 5;
			if (bits >= 8) {
				bits -= 8;
				if (no >= 32)
					return GK_ERR_INVALID;
				out[no++] = (acc >> bits) & 0xff;
			}
		}
	}
	if (chk != 1 || no != 32 || bits >= 5 ||
	    (acc & ((1u << bits) - 1)) != 0)
		return GK_ERR_INVALID;
	return 0;
}

int
age_x25519_pub(const uint8_t sk[AGE_KEY_LEN], uint8_t pk[AGE_KEY_LEN])
{
	EVP_PKEY *k;
	size_t n = AGE_KEY_LEN;
	int r = GK_ERR_INTERNAL;

	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk,
	    AGE_KEY_LEN);
	if (k != NULL && EVP_PKEY_get_raw_public_key(k, pk, &n) == 1 &&
	    n == AGE_KEY_LEN)
		r = 0;
	EVP_PKEY_free(k);
	return r;
}

int
age_x25519(const uint8_t sk[AGE_KEY_LEN], const uint8_t peer[AGE_KEY_LEN],
    uint8_t out[AGE_KEY_LEN])
{
	static const uint8_t zero[AGE_KEY_LEN];
	EVP_PKEY *k = NULL, *p = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = AGE_KEY_LEN;
	int r = GK_ERR_INVALID;

	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk,
	    AGE_KEY_LEN);
	p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer,
	    AGE_KEY_LEN);
	if (k == NULL || p == NULL) {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	/* OpenSSL refuses an all-zero result (low-order points) itself */
	if ((ctx = EVP_PKEY_CTX_new(k, NULL)) == NULL ||
	    EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, p) != 1 ||
	    EVP_PKEY_derive(ctx, out, &n) != 1 || n != AGE_KEY_LEN)
		goto out;
	if (CRYPTO_memcmp(out, zero, AGE_KEY_LEN) == 0)
		goto out;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	EVP_PKEY_free(p);
	return r;
}

int
age_hkdf(gk_slice ikm, gk_slice salt, const char *info, uint8_t *out,
    size_t outlen)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM ps[5], *p = ps;
	int r = GK_ERR_INTERNAL;

	if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
		return r;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return r;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)(ikm.p ? ikm.p : (const uint8_t *)""), ikm.len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)(salt.p ? salt.p : (const uint8_t *)""), salt.len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, ps) == 1)
		r = 0;
	EVP_KDF_CTX_free(ctx);
	return r;
}

int
age_identity_from_secret(const uint8_t sk[AGE_KEY_LEN], age_identity *out)
{
	memcpy(out->sk, sk, AGE_KEY_LEN);
	return age_x25519_pub(out->sk, out->pk);
}

int
age_identity_generate(age_identity *out)
{
	uint8_t sk[AGE_KEY_LEN];
	int r;

	if ((r = gk_random(sk, sizeof(sk))) == 0)
		r = age_identity_from_secret(sk, out);
	gk_wipe(sk, sizeof(sk));
	return r;
}

int
age_identity_parse(gk_slice s, age_identity *out)
{
	uint8_t sk[AGE_KEY_LEN];
	int r;

	if ((r = bech32_decode("age-secret-key-", s, sk)) == 0)
		r = age_identity_from_secret(sk, out);
	gk_wipe(sk, sizeof(sk));
	return r;
}

void
age_identity_encode(const age_identity *id, char out[AGE_IDENTITY_STR])
{
	bech32_encode("age-secret-key-", id->sk, 1, out, AGE_IDENTITY_STR);
}

int
age_recipient_parse(gk_slice s, uint8_t pk[AGE_KEY_LEN])
{
	static const uint8_t probe[AGE_KEY_LEN] = { 1 };
	uint8_t shared[AGE_KEY_LEN];
	size_t i;
	int r;

	/* recipients are lower case only, as age requires */
	for (i = 0; i < s.len; i++)
		if (isupper(s.p[i]))
			return GK_ERR_INVALID;
	if ((r = bech32_decode("age", s, pk)) != 0)
		return r;
	/*
	 * A low-order point (all zero, for one) gives the all-zero shared
	 * secret with every scalar, so nothing could be wrapped to it; say
	 * so here rather than fail later in the middle of a send.
	 */
	r = age_x25519(probe, pk, shared);
	gk_wipe(shared, sizeof(shared));
	return r == 0 ? 0 : GK_ERR_INVALID;
}

void
age_recipient_encode(const uint8_t pk[AGE_KEY_LEN], char out[AGE_RECIPIENT_STR])
{
	bech32_encode("age", pk, 0, out, AGE_RECIPIENT_STR);
}

/* Calls fn for each non-comment, non-empty, trimmed line of path. */
static int
each_line(const char *path, int (*fn)(void *, gk_slice, size_t), void *arg,
    char *err, size_t errlen)
{
	gk_buf b;
	size_t i = 0, lineno = 0;
	int r;

	gk_buf_init(&b, GK_CAP_SMALL);
	if ((r = gk_file_read(path, GK_CAP_SMALL, &b)) != 0) {
		snprintf(err, errlen, "%s: %s", path,
		    r == GK_ERR_TOO_LARGE ? "larger than 64 KiB" :
		    r == GK_ERR_NOT_FOUND ? "no such file" : "cannot read");
		goto out;
	}
	while (i < b.len) {
		const uint8_t *nl = memchr(b.data + i, '\n', b.len - i);
		size_t end = nl ? (size_t)(nl - b.data) : b.len, s = i, e = end;

		lineno++;
		while (s < e && isspace(b.data[s]))
			s++;
		while (e > s && isspace(b.data[e - 1]))
			e--;
		i = end + 1;
		if (s == e || b.data[s] == '#')
			continue;
		if ((r = fn(arg, gk_slice_of(b.data + s, e - s), lineno)) != 0) {
			snprintf(err, errlen, "%s: line %zu is not %s", path,
			    lineno, r == GK_ERR_TOO_LARGE ? "within limits" :
			    "a valid key");
			goto out;
		}
	}
	r = 0;
out:
	gk_wipe(b.data, b.len);
	gk_buf_release(&b);
	return r;
}

struct idlist {
	age_identity **ids;
	size_t *n;
};

static int
add_identity(void *arg, gk_slice line, size_t lineno)
{
	struct idlist *l = arg;
	age_identity id, *nv;

	if (*l->n >= 1024)
		return GK_ERR_TOO_LARGE;
	if (age_identity_parse(line, &id) != 0)
		return GK_ERR_INVALID;
	if ((nv = realloc(*l->ids, (*l->n + 1) * sizeof(*nv))) == NULL) {
		gk_wipe(&id, sizeof(id));
		return GK_ERR_NOMEM;
	}
	nv[(*l->n)++] = id;
	*l->ids = nv;
	gk_wipe(&id, sizeof(id));
	return 0;
}

int
age_identities_load(const char *path, age_identity **ids, size_t *n,
    char *err, size_t errlen)
{
	struct idlist l = { ids, n };
	size_t before = *n;
	struct stat st;
	int r;

	/*
	 * A private key others can read is refused, as ssh refuses one
	 * (a pipe, such as -i <(pass show key), has no such bits to check)
	 */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: permissions %04o are too open: the "
		    "identity is a private key; chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		return GK_ERR_DENIED;
	}
	if ((r = each_line(path, add_identity, &l, err, errlen)) != 0)
		return r;
	if (*n == before) {
		snprintf(err, errlen, "%s: no identity in the file", path);
		return GK_ERR_INVALID;
	}
	return 0;
}

struct pklist {
	uint8_t (**pks)[AGE_KEY_LEN];
	size_t *n;
};

static int
add_recipient(void *arg, gk_slice line, size_t lineno)
{
	struct pklist *l = arg;
	uint8_t pk[AGE_KEY_LEN], (*nv)[AGE_KEY_LEN];

	if (*l->n >= 4096)
		return GK_ERR_TOO_LARGE;
	if (age_recipient_parse(line, pk) != 0)
		return GK_ERR_INVALID;
	if ((nv = realloc(*l->pks, (*l->n + 1) * sizeof(*nv))) == NULL)
		return GK_ERR_NOMEM;
	memcpy(nv[(*l->n)++], pk, AGE_KEY_LEN);
	*l->pks = nv;
	return 0;
}

int
age_recipients_load(const char *path, uint8_t (**pks)[AGE_KEY_LEN],
    size_t *n, char *err, size_t errlen)
{
	struct pklist l = { pks, n };
	size_t before = *n;
	int r;

	if ((r = each_line(path, add_recipient, &l, err, errlen)) != 0)
		return r;
	if (*n == before) {
		snprintf(err, errlen, "%s: no recipient in the file", path);
		return GK_ERR_INVALID;
	}
	return 0;
}

/* ---- the signing key --------------------------------------------------- */

#define SIGN_INFO "gatekeeper.share/v1 ed25519 signing key"

static EVP_PKEY *
sign_key(const age_identity *id)
{
	uint8_t seed[32];
	EVP_PKEY *k = NULL;

	if (age_hkdf(gk_slice_of(id->sk, AGE_KEY_LEN), GK_SLICE_NULL,
	    SIGN_INFO, seed, sizeof(seed)) == 0)
		k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
		    sizeof(seed));
	gk_wipe(seed, sizeof(seed));
	return k;
}

int
share_sign_pub(const age_identity *id, uint8_t pub[32])
{
	EVP_PKEY *k = sign_key(id);
	size_t n = 32;
	int r = GK_ERR_INTERNAL;

	if (k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 &&
	    n == 32)
		r = 0;
	EVP_PKEY_free(k);
	return r;
}

int
share_sign(const age_identity *id, gk_slice msg, uint8_t sig[64])
{
	EVP_PKEY *k = sign_key(id);
	EVP_MD_CTX *md = NULL;
	size_t n = 64;
	int r = GK_ERR_INTERNAL;

	if (k != NULL && (md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(md, sig, &n, msg.p ? msg.p : (const uint8_t *)"",
	    msg.len) == 1 && n == 64)
		r = 0;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return r;
}

int
share_verify(const uint8_t pub[32], gk_slice msg, const uint8_t sig[64])
{
	EVP_PKEY *k;
	EVP_MD_CTX *md = NULL;
	int r = GK_ERR_AUTH;

	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	if (k != NULL && (md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestVerify(md, sig, 64, msg.p ? msg.p : (const uint8_t *)"",
	    msg.len) == 1)
		r = 0;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return r;
}

void
share_fingerprint(const uint8_t pub[32], char out[SHARE_FP_STR])
{
	uint8_t d[32];

	SHA256(pub, 32, d);
	memcpy(out, "SHA256:", 7);
	age_b64_raw(d, sizeof(d), out + 7, SHARE_FP_STR - 7);
}
