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
 * key and re-initialises it per message (no re-keying cost). The key bytes
 * are copied; verify_mac_free wipes them.
 */
typedef struct gk_mac gk_mac;

int verify_mac_new(const uint8_t *key, size_t key_len, gk_mac **out) GK_WUR;
void verify_mac_free(gk_mac *m);
/* MAC over the concatenation of the parts. */
int verify_mac_compute(const gk_mac *m, const gk_slice *parts, size_t nparts,
    uint8_t out[GK_MAC_LEN]) GK_WUR;

/*
 * v1: hmac = hex(HMAC-SHA256(shared key, root || sub || op || expires)).
 * verify_v1_sign writes 64 lowercase hex digits + NUL into hex_out.
 * verify_v1_check returns 0, GK_ERR_INVALID (hmac is not 64 hex digits)
 * or GK_ERR_AUTH (mismatch), comparing in constant time.
 */
int verify_v1_sign(const gk_mac *m, gk_slice root, gk_slice sub, gk_slice op,
    gk_slice expires, char hex_out[GK_MAC_HEX_LEN + 1]) GK_WUR;
int verify_v1_check(const gk_mac *m, gk_slice root, gk_slice sub, gk_slice op,
    gk_slice expires, gk_slice hmac_hex) GK_WUR;

/*
 * Data URLs: /_data/{key}?exp=UNIX&sig=HEX, sig = hex(HMAC(internal key,
 * "gk-data-v1" 0x00 exp 0x00 key)). The key is the decoded object key.
 * verify_data_check returns 0, GK_ERR_INVALID, GK_ERR_AUTH or
 * GK_ERR_EXPIRED (exp < now), checking the MAC before the time.
 */
int verify_data_sign(const gk_mac *m, gk_slice key, int64_t exp,
    char hex_out[GK_MAC_HEX_LEN + 1]) GK_WUR;
int verify_data_check(const gk_mac *m, gk_slice key, gk_slice exp,
    gk_slice sig_hex, int64_t now, int64_t *exp_out) GK_WUR;

/*
 * Upload policies, shaped like S3's POST policy: the form carries
 * "policy" = base64(JSON) and "x-gk-signature" = hex(HMAC(internal key,
 * "gk-upload-v1" 0x00 policy_b64)). The JSON is
 *   {"expiration":"2026-11-23T16:11:49Z","conditions":[
 *     {"bucket":B},["eq","$key",K],["content-length-range",0,MAX],
 *     {"x-amz-server-side-encryption":"AES256"}]}
 */
typedef struct {
	char *bucket;
	char *key;		/* exact object key the upload must use */
	int64_t expires;	/* unix seconds */
	uint64_t max_bytes;	/* content-length-range upper bound */
} gk_upload_policy;

/* Builds the policy; policy_b64 receives the base64 text. */
int verify_policy_make(const gk_mac *m, const char *bucket, gk_slice key,
    int64_t expires, uint64_t max_bytes, gk_buf *policy_b64,
    char sig_hex[GK_MAC_HEX_LEN + 1]) GK_WUR;
/*
 * Checks the signature (constant time) before parsing anything, then
 * parses the JSON and checks expiry. Returns 0, GK_ERR_AUTH,
 * GK_ERR_INVALID or GK_ERR_EXPIRED. On success *out is filled (release
 * with verify_policy_release).
 */
int verify_policy_open(const gk_mac *m, gk_slice policy_b64, gk_slice sig_hex,
    int64_t now, gk_upload_policy *out) GK_WUR;
void verify_policy_release(gk_upload_policy *p);

#endif
