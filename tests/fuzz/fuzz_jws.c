/*
 * fuzz_jws.c - the v2 token verifier on untrusted bytes.
 *
 * First byte even: the rest is a token, verified as it comes (header
 * parsing, kid and alg checks, signature). First byte odd: the rest is
 * "header.claims" in base64url that the harness signs with the HS256 test
 * key, so the fuzzer also reaches the claim parser behind the signature.
 * Invariants: a success has exactly one of key/prefix, a known op, a
 * non-empty signature and exp > now; a refusal has a 401 and a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verify/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gk_keyring *kr;
static gk_mac *hs_mac;
static uint8_t hs_secret[32] = "fuzz-secret-fuzz-secret-fuzz-sec";
static gk_vendor_key vkeys[2];

static void
setup(void)
{
	char err[256];

	/* Ed25519 public key from RFC 8037, A.1 */
	vkeys[0].kid = (char *)"ed";
	vkeys[0].type = GK_VKEY_ED25519;
	vkeys[0].public_key =
	    (char *)"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
	vkeys[1].kid = (char *)"hs";
	vkeys[1].type = GK_VKEY_HS256;
	vkeys[1].secret.p = hs_secret;
	vkeys[1].secret.len = sizeof(hs_secret);
	if (verify_keyring_new(vkeys, 2, &kr, err, sizeof(err)) != 0 ||
	    verify_mac_new(hs_secret, sizeof(hs_secret), &hs_mac) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gk_jws_rules rules = { "gk", 1700000000, 30, 900 };
	gk_jws_claims c;
	uint8_t mac[GK_MAC_LEN];
	gk_slice part;
	gk_buf tok;
	const char *msg = NULL;
	int status = 0, r;

	if (kr == NULL)
		setup();
	if (size == 0)
		return 0;
	gk_buf_init(&tok, 2 * GK_JWS_MAX);
	if (gk_buf_append(&tok, data + 1, size - 1) != 0)
		goto out;
	if (data[0] & 1) {
		part = gk_slice_of(tok.data, tok.len);
		if (verify_mac_compute(hs_mac, &part, 1, mac) != 0 ||
		    gk_buf_append(&tok, ".", 1) != 0 ||
		    gk_b64url_encode(mac, sizeof(mac), &tok) != 0)
			goto out;
	}
	r = verify_jws_check(kr, gk_slice_of(tok.data, tok.len), &rules, &c,
	    &status, &msg);
	if (r == 0) {
		if ((c.key == NULL) == (c.prefix == NULL) || c.op < GK_V2_GET ||
		    c.op > GK_V2_PUT || c.sig == NULL || c.sig[0] == '\0' ||
		    c.exp <= rules.now || c.kid == NULL)
			__builtin_trap();
		if (c.prefix != NULL && c.prefix[strlen(c.prefix) - 1] != '/')
			__builtin_trap();
	} else if (status != 401 || msg == NULL || strlen(msg) == 0) {
		__builtin_trap();
	}
	verify_jws_release(&c);
out:
	gk_buf_release(&tok);
	return 0;
}
