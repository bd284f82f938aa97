/*
 * verify.h - the verify folder's whole interface: keyed HMAC-SHA256 with a
 * per-thread EVP_MAC_CTX, the v1 request signature, the gatekeeper's own
 * data-URL signatures and signed upload policies.
 *
 * Every comparison of a MAC is constant time. No function here logs a
 * secret or a signature.
 */
#ifndef GK_VERIFY_H
#define GK_VERIFY_H

#include <stdint.h>

#include "util/util.h"

#define GK_MAC_LEN 32
#define GK_MAC_HEX_LEN 64

/*
 * A HMAC-SHA256 key. Each thread keeps its own keyed EVP_MAC_CTX for the
 * key (a small per-thread cache, least recently used out) and
 * re-initialises it per message (no re-keying cost). A gk_mac is immutable
 * once made and may be shared by any number of threads.
 *
 * verify_mac_new copies the key (1..1024 bytes, else GK_ERR_INVALID).
 * verify_mac_free (NULL allowed) wipes the copy and drops the calling
 * thread's context at once; other threads drop theirs at their next MAC
 * or when they exit. It must not race with a MAC using the same key.
 */
typedef struct gk_mac gk_mac;

int verify_mac_new(const uint8_t *key, size_t key_len, gk_mac **out) GK_WUR;
void verify_mac_free(gk_mac *m);
/* MAC over the concatenation of the parts (a part may be empty).
 * GK_ERR_INTERNAL if OpenSSL fails; out is then zeroed. */
int verify_mac_compute(const gk_mac *m, const gk_slice *parts, size_t nparts,
    uint8_t out[GK_MAC_LEN]) GK_WUR;

/*
 * v1: hmac = hex(HMAC-SHA256(shared key, root || sub || op || expires)),
 * a plain concatenation as the original protocol defines it (the caller
 * validates each field, since the concatenation has no separators).
 * verify_v1_sign writes 64 lowercase hex digits + NUL into hex_out.
 * verify_v1_check returns 0, GK_ERR_INVALID (hmac is not exactly 64 hex
 * digits; either case is accepted) or GK_ERR_AUTH (mismatch), comparing
 * the 32 decoded bytes in constant time.
 */
int verify_v1_sign(const gk_mac *m, gk_slice root, gk_slice sub, gk_slice op,
    gk_slice expires, char hex_out[GK_MAC_HEX_LEN + 1]) GK_WUR;
int verify_v1_check(const gk_mac *m, gk_slice root, gk_slice sub, gk_slice op,
    gk_slice expires, gk_slice hmac_hex) GK_WUR;

/*
 * Data URLs: /_data/{key}?exp=UNIX&sig=HEX, sig = hex(HMAC(internal key,
 * "gk-data-v1" 0x00 exp 0x00 key)), exp in decimal as it appears in the
 * URL. The key is the decoded object key (any bytes).
 * verify_data_sign: exp >= 0 (else GK_ERR_INVALID).
 * verify_data_check returns 0, GK_ERR_INVALID (sig not 64 hex digits, exp
 * not a decimal integer <= INT64_MAX), GK_ERR_AUTH or GK_ERR_EXPIRED
 * (exp < now), checking the MAC before the time. exp_out (may be NULL)
 * receives exp once the MAC has matched (also when expired), else 0.
 */
int verify_data_sign(const gk_mac *m, gk_slice key, int64_t exp,
    char hex_out[GK_MAC_HEX_LEN + 1]) GK_WUR;
int verify_data_check(const gk_mac *m, gk_slice key, gk_slice exp,
    gk_slice sig_hex, int64_t now, int64_t *exp_out) GK_WUR;
/*
 * The same bound to a client address or CIDR (a v2 token's 'cip'): sig =
 * hex(HMAC("gk-data-cip-v1" 0x00 exp 0x00 cip 0x00 key)), the URL carries
 * &cip=; an empty cip is the unbound form above. The caller checks the
 * client against cip once the signature holds.
 */
int verify_data_sign_cip(const gk_mac *m, gk_slice key, int64_t exp,
    gk_slice cip, char hex_out[GK_MAC_HEX_LEN + 1]) GK_WUR;
int verify_data_check_cip(const gk_mac *m, gk_slice key, gk_slice exp,
    gk_slice cip, gk_slice sig_hex, int64_t now, int64_t *exp_out) GK_WUR;

/*
 * Upload policies, shaped like S3's POST policy: the form carries
 * "policy" = base64(JSON) and "x-gk-signature" = hex(HMAC(internal key,
 * "gk-upload-v1" 0x00 policy_b64)). The JSON is
 *   {"expiration":"2026-11-23T16:11:49Z","conditions":[
 *     {"bucket":B},["eq","$key",K],["content-length-range",0,MAX],
 *     {"x-amz-server-side-encryption":"AES256"}]}
 * exactly: these members and conditions in this order, nothing more.
 * The base64 text is at most GK_POLICY_MAX_B64 bytes.
 */
#define GK_POLICY_MAX_B64 16384

typedef struct {
	char *bucket;
	char *key;		/* exact object key the upload must use */
	int64_t expires;	/* unix seconds */
	uint64_t max_bytes;	/* content-length-range upper bound */
	char *cip;		/* client address or CIDR it is bound to, or
				 * NULL (a condition {"x-gk-cip": C}) */
	char *once;		/* single use: the form's own id, or NULL (a
				 * last condition {"x-gk-once": ID}) */
} gk_upload_policy;

/*
 * Builds the policy. policy_b64 (initialised by the caller, with a cap of
 * at least the text's size) is reset and receives the base64 text, NUL
 * terminated; sig_hex the 64 hex digits. bucket: UTF-8 (may be empty);
 * key: non-empty UTF-8 without NUL; 0 <= expires <= 9999-12-31T23:59:59Z;
 * max_bytes <= INT64_MAX. GK_ERR_INVALID otherwise, GK_ERR_TOO_LARGE if
 * the text would exceed GK_POLICY_MAX_B64 or the buffer's cap. On error
 * policy_b64 is left empty and sig_hex "".
 */
int verify_policy_make(const gk_mac *m, const char *bucket, gk_slice key,
    int64_t expires, uint64_t max_bytes, gk_buf *policy_b64,
    char sig_hex[GK_MAC_HEX_LEN + 1]) GK_WUR;
/* The same with a fifth condition {"x-gk-cip": cip} when cip is not NULL
 * (a v2 token's 'cip': the upload must come from there). */
int verify_policy_make_cip(const gk_mac *m, const char *bucket, gk_slice key,
    int64_t expires, uint64_t max_bytes, const char *cip, gk_buf *policy_b64,
    char sig_hex[GK_MAC_HEX_LEN + 1]) GK_WUR;
/* The same with, after it, a condition {"x-gk-once": once} when once is
 * not NULL (1..64 bytes of [0-9a-f]): the form of a single-use v2 token,
 * which the upload endpoint accepts for one upload. */
int verify_policy_make_once(const gk_mac *m, const char *bucket,
    gk_slice key, int64_t expires, uint64_t max_bytes, const char *cip,
    const char *once, gk_buf *policy_b64,
    char sig_hex[GK_MAC_HEX_LEN + 1]) GK_WUR;
/*
 * Checks the size and the signature (constant time) before decoding or
 * parsing anything, then decodes (strict base64), parses (duplicate
 * members rejected), validates the exact structure, and checks expiry
 * (expired if expiration < now). Returns 0, GK_ERR_AUTH, GK_ERR_INVALID
 * (too large, signature not 64 hex digits, malformed) or GK_ERR_EXPIRED.
 * *out is always reset; on success only it is filled (bucket and key
 * allocated, NUL-free; release with verify_policy_release, NULL allowed).
 */
int verify_policy_open(const gk_mac *m, gk_slice policy_b64, gk_slice sig_hex,
    int64_t now, gk_upload_policy *out) GK_WUR;
void verify_policy_release(gk_upload_policy *p);

/* ---- protocol v2: compact JWS tokens (jws.c) --------------------------
 *
 * The vendor signs a compact JWS (RFC 7515): base64url(header) "."
 * base64url(claims) "." base64url(signature), no padding. The header holds
 * "alg" and "kid" (and optionally "typ"); nothing else ("crit" included).
 * The kid names a [vendor_key] whose type dictates the algorithm:
 * ed25519 -> EdDSA, p256 -> ES256 (signature r||s, 64 bytes), hs256 ->
 * HS256. The signature is verified before the claims are parsed.
 */
#define GK_JWS_MAX 8192		/* longest token accepted, bytes */
#define GK_JWS_MAX_STR 1024	/* longest key/prefix/sub/jti/cip claim */


/* The vendor keys of a config as OpenSSL keys; immutable, shared. */
/*
 * A v2 vendor key: one [vendor_key KID] section (see README). type is
 * "ed25519", "p256" or "hs256". Public keys are kept as text (base64 of
 * the raw key or of a DER SubjectPublicKeyInfo, or a PEM file's content)
 * and turned into OpenSSL keys by verify_keyring_new. config/ fills these
 * from the INI.
 */
#define GK_VKEY_ED25519 1
#define GK_VKEY_P256 2
#define GK_VKEY_HS256 3
#define GK_VKEY_MAX 64

typedef struct {
	char *kid;		/* [A-Za-z0-9._-]{1,64} */
	int type;		/* GK_VKEY_* */
	char *public_key;	/* base64 (raw key or SPKI DER), or NULL */
	char *public_key_file;	/* PEM path, or NULL */
	char *public_pem;	/* the PEM file's content once loaded */
	char *secret_file;	/* hs256: secret file path */
	gk_secret secret;	/* hs256: the secret (>= 32 bytes) */
	int64_t not_before;	/* unix seconds, 0 = none */
	int64_t not_after;	/* unix seconds, 0 = none */
	unsigned seen;		/* settings given (config.c) */
} gk_vendor_key;

typedef struct gk_keyring gk_keyring;

/*
 * Builds the keyring from the n vendor keys (their files already read by
 * config/). A key that does not parse, or has the wrong type or size, is
 * GK_ERR_CONFIG with one line in err naming its kid. An empty keyring is
 * fine (every v2 token is then refused).
 */
int verify_keyring_new(const gk_vendor_key *keys, size_t n, gk_keyring **out,
    char *err, size_t errlen) GK_WUR;
void verify_keyring_free(gk_keyring *kr);

enum { GK_V2_GET = 1, GK_V2_LIST, GK_V2_PUT };

/* A verified token's claims. Strings are NUL-free heap copies (NULL when
 * the claim is absent); release with verify_jws_release (NULL ok). */
typedef struct {
	char *kid;		/* set as soon as the header parsed */
	char *sig;		/* the signature part, base64url, as sent */
	int op;			/* GK_V2_* */
	char *key;		/* exactly one of key and prefix is set */
	char *prefix;		/* ends in '/' */
	char *sub;
	char *jti;
	char *cip;		/* unparsed: the caller checks it */
	int64_t exp, iat, nbf;	/* nbf 0 when absent */
} gk_jws_claims;

/* Checks beyond the signature. */
typedef struct {
	const char *aud;	/* this gatekeeper's id */
	int64_t now;		/* unix seconds */
	int64_t skew;		/* iat/nbf may be this far in the future */
	int64_t max_lifetime;	/* exp - iat at most this */
	size_t sig_cache;	/* verified tokens remembered per thread (0:
				 * off); see jws.c */
} gk_jws_rules;

/*
 * Verifies token and fills out. Returns 0, or a negative GK_ERR_* with
 * *status (401) and *msg (a static English sentence for the JSON body,
 * never containing token bytes) saying why: each refusal its own message.
 * out->kid is filled once the header parsed, the rest only on success;
 * out is always to be released.
 */
int verify_jws_check(const gk_keyring *kr, gk_slice token,
    const gk_jws_rules *rules, gk_jws_claims *out, int *status,
    const char **msg) GK_WUR;
void verify_jws_release(gk_jws_claims *c);

/* Accepted signatures since start: checked by the public key, and taken
 * from a thread's cache of tokens it verified before. */
void verify_jws_counters(uint64_t *verified, uint64_t *cached);

#endif
