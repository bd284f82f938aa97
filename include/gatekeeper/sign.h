/*
 * gatekeeper/sign.h - libgatekeeper: make S3 Gatekeeper requests from a
 * vendor's C code. v1 URLs (HMAC-SHA256 shared secret) and v2 tokens
 * (compact JWS: EdDSA, ES256 or HS256). Depends only on OpenSSL 3; link
 * with -lgatekeeper -lcrypto. Thread safe: a loaded key may be shared.
 *
 * Every function returns GK_SIGN_OK (0) or a negative GK_SIGN_E* code and
 * writes NUL-terminated text into out (at most out_size bytes, NUL
 * included); on an error out is "" when out_size > 0.
 */
#ifndef GATEKEEPER_SIGN_H
#define GATEKEEPER_SIGN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GK_SIGN_OK 0
#define GK_SIGN_EINVAL (-1)	/* a missing or malformed argument */
#define GK_SIGN_ESPACE (-2)	/* out is too small */
#define GK_SIGN_EKEY (-3)	/* key unreadable or of an unsupported type */
#define GK_SIGN_ECRYPTO (-4)	/* OpenSSL failed */

/* Static English text for a GK_SIGN_* code. */
const char *gk_sign_strerror(int err);

/*
 * v1: base_url "/" root "?path=" path "&operation=" op "&expires="
 * expires "&hmac=" hex(HMAC-SHA256(secret, root || sub || op || expires))
 * with sub = the first segment of path. op: GET_Object, GET_Bucket or
 * PUT_Object; path starts with '/'.
 */
int gk_sign_v1_url(const char *base_url, const void *secret,
    size_t secret_len, const char *root, const char *path, const char *op,
    long long expires, char *out, size_t out_size);

/* A v2 signing key with its kid. */
typedef struct gk_sign_key gk_sign_key;

/* An Ed25519 (EdDSA) or P-256 (ES256) private key in PEM (PKCS#8 or
 * traditional), from a file or from memory. */
int gk_sign_key_load(const char *pem_path, const char *kid,
    gk_sign_key **out);
int gk_sign_key_pem(const char *pem, size_t pem_len, const char *kid,
    gk_sign_key **out);
/* An HS256 secret (at least 32 bytes). */
int gk_sign_key_hs256(const void *secret, size_t secret_len, const char *kid,
    gk_sign_key **out);
/* "EdDSA", "ES256" or "HS256". */
const char *gk_sign_key_alg(const gk_sign_key *k);
/* Wipes and frees; NULL allowed. */
void gk_sign_key_free(gk_sign_key *k);

/* v2 claims. Strings are UTF-8; optional ones may be NULL. */
typedef struct {
	const char *aud;	/* the gatekeeper's id ([gate] id) */
	const char *op;		/* "get", "list" or "put" */
	const char *key;	/* exactly one of key and prefix */
	const char *prefix;	/* ends in '/' */
	const char *sub;	/* optional: your user id, for the audit */
	const char *cip;	/* optional: client IP or CIDR */
	const char *jti;	/* optional: single use; "auto" = random */
	long long iat;		/* issued at, unix s; 0 = now */
	long long ttl;		/* exp = iat + ttl; 0 = 300 s */
	long long nbf;		/* optional not-before; 0 = none */
} gk_sign_claims;

/* A compact JWS token: header {"alg","kid","typ":"JWT"}. */
int gk_sign_v2_token(const gk_sign_key *k, const gk_sign_claims *c,
    char *out, size_t out_size);
/*
 * The ready URL for a token: base_url + "/v2/objects/" (op "get"),
 * "/v2/list/" ("list") or "/v2/uploads/" ("put", to POST) + the
 * percent-encoded key or prefix + "?token=" token.
 */
int gk_sign_v2_url(const char *base_url, const char *op, const char *key,
    const char *token, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif
