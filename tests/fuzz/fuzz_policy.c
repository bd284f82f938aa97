/*
 * fuzz_policy.c - libFuzzer target for verify_policy_open's decoder and
 * parser.
 *
 * The signature is checked before anything is parsed, so the target signs
 * the input itself with a fixed key (the same construction as
 * verify_policy_make) to reach the base64 decoder and the JSON checks.
 * Byte 0 picks the mode:
 *   0: the rest is JSON text, base64-encoded and signed here;
 *   1: the rest is the base64 text itself, signed here;
 *   2: the rest is the base64 text with a wrong signature: never accepted.
 * Byte 1 moves "now" around the usual range. An accepted policy must
 * survive verify_policy_make and reopen with the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verify/verify.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static gk_mac *fuzz_mac;

static void
sign(gk_slice b64, char sig[GK_MAC_HEX_LEN + 1])
{
	static const uint8_t zero = 0;
	uint8_t mac[GK_MAC_LEN];
	gk_slice parts[3];

	parts[0] = gk_slice_str("gk-upload-v1");
	parts[1] = gk_slice_of(&zero, 1);
	parts[2] = b64;
	CHECK(verify_mac_compute(fuzz_mac, parts, 3, mac) == 0);
	gk_hex_encode(mac, GK_MAC_LEN, sig);
}

static int
is_reset(const gk_upload_policy *p)
{
	return p->bucket == NULL && p->key == NULL && p->expires == 0 &&
	    p->max_bytes == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char key[] = "fuzz-internal-key";
	gk_upload_policy p, q;
	gk_buf b64, again;
	gk_slice text;
	char sig[GK_MAC_HEX_LEN + 1], sig2[GK_MAC_HEX_LEN + 1];
	int64_t now;
	int mode, r, r2;

	if (fuzz_mac == NULL)
		CHECK(verify_mac_new((const uint8_t *)key, sizeof(key) - 1,
		    &fuzz_mac) == 0);
	if (size < 2)
		return 0;
	mode = data[0] % 3;
	/* 2001 .. 2133, so some policies are expired and some not */
	now = 1000000000 + (int64_t)data[1] * 16777216;
	text = gk_slice_of(data + 2, size - 2);
	gk_buf_init(&b64, 4 * GK_POLICY_MAX_B64);
	if (mode == 0) {
		if (gk_b64_encode(text.p, text.len, &b64) != 0) {
			gk_buf_release(&b64);
			return 0;
		}
		text = gk_slice_of(b64.data, b64.len);
	}
	sign(text, sig);
	if (mode == 2)
		sig[(size + data[1]) % GK_MAC_HEX_LEN] ^= 0x01;
	memset(&p, 0x5a, sizeof(p));	/* garbage: must be reset */
	r = verify_policy_open(fuzz_mac, text, gk_slice_str(sig), now, &p);
	CHECK(r == 0 || r == GK_ERR_INVALID || r == GK_ERR_AUTH ||
	    r == GK_ERR_EXPIRED);
	if (mode == 2)
		CHECK(r == GK_ERR_AUTH || r == GK_ERR_INVALID);
	else
		CHECK(r != GK_ERR_AUTH);
	if (r != 0) {
		CHECK(is_reset(&p));
		gk_buf_release(&b64);
		return 0;
	}
	CHECK(p.bucket != NULL && p.key != NULL && p.key[0] != '\0');
	CHECK(p.expires >= now && p.max_bytes <= (uint64_t)INT64_MAX);
	/* what was accepted can be made again, and reads back the same */
	gk_buf_init(&again, GK_POLICY_MAX_B64);
	r = verify_policy_make_once(fuzz_mac, p.bucket, gk_slice_str(p.key),
	    p.expires, p.max_bytes, p.cip, p.once, &again, sig2);
	CHECK(r == 0 || r == GK_ERR_TOO_LARGE);
	if (r == 0) {
		r2 = verify_policy_open(fuzz_mac, gk_slice_of(again.data,
		    again.len), gk_slice_str(sig2), now, &q);
		CHECK(r2 == 0);
		CHECK(strcmp(p.bucket, q.bucket) == 0);
		CHECK(strcmp(p.key, q.key) == 0);
		CHECK(p.expires == q.expires && p.max_bytes == q.max_bytes);
		CHECK((p.cip == NULL) == (q.cip == NULL) &&
		    (p.cip == NULL || strcmp(p.cip, q.cip) == 0));
		CHECK((p.once == NULL) == (q.once == NULL) &&
		    (p.once == NULL || strcmp(p.once, q.once) == 0));
		verify_policy_release(&q);
	}
	verify_policy_release(&p);
	CHECK(is_reset(&p));
	gk_buf_release(&again);
	gk_buf_release(&b64);
	return 0;
}
