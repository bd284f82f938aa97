/*
 * v1.c - the v1 request signature (compatible with the original
 * gatekeeper) and the gatekeeper's own data-URL signatures.
 */
#include "verify/verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char data_domain[] = "gk-data-v1";
static const char data_cip_domain[] = "gk-data-cip-v1";

/* Decodes the 64-digit hex signature (either case) into want. */
static int
sig_decode(gk_slice sig_hex, uint8_t want[GK_MAC_LEN])
{
	if (sig_hex.len != GK_MAC_HEX_LEN || sig_hex.p == NULL)
		return GK_ERR_INVALID;
	if (gk_hex_decode(sig_hex, want, GK_MAC_LEN) != 0)
		return GK_ERR_INVALID;
	return 0;
}

/* Compares the MAC of parts with want in constant time. */
static int
mac_check(const gk_mac *m, const gk_slice *parts, size_t nparts,
    const uint8_t want[GK_MAC_LEN])
{
	uint8_t got[GK_MAC_LEN];
	int r = GK_ERR_INTERNAL;

	if ((r = verify_mac_compute(m, parts, nparts, got)) != 0)
		goto out;
	r = gk_ct_eq(got, want, GK_MAC_LEN) ? 0 : GK_ERR_AUTH;
 out:
	gk_wipe(got, sizeof(got));
	return r;
}

static int
mac_hex(const gk_mac *m, const gk_slice *parts, size_t nparts,
    char hex_out[GK_MAC_HEX_LEN + 1])
{
	uint8_t mac[GK_MAC_LEN];
	int r = GK_ERR_INTERNAL;

	if (hex_out == NULL)
		return GK_ERR_INTERNAL;
	hex_out[0] = '\0';
	if ((r = verify_mac_compute(m, parts, nparts, mac)) != 0)
		goto out;
	gk_hex_encode(mac, GK_MAC_LEN, hex_out);
	r = 0;
 out:
	gk_wipe(mac, sizeof(mac));
	return r;
}

/* ---- v1 ---------------------------------------------------------------- */

int
verify_v1_sign(const gk_mac *m, gk_slice root, gk_slice sub, gk_slice op,
    gk_slice expires, char hex_out[GK_MAC_HEX_LEN + 1])
{
	gk_slice parts[4] = { root, sub, op, expires };

	return mac_hex(m, parts, GK_ARRAY_LEN(parts), hex_out);
}

int
verify_v1_check(const gk_mac *m, gk_slice root, gk_slice sub, gk_slice op,
    gk_slice expires, gk_slice hmac_hex)
{
	gk_slice parts[4] = { root, sub, op, expires };
	uint8_t want[GK_MAC_LEN];
	int r = GK_ERR_INTERNAL;

	if ((r = sig_decode(hmac_hex, want)) != 0)
		goto out;
	r = mac_check(m, parts, GK_ARRAY_LEN(parts), want);
 out:
	gk_wipe(want, sizeof(want));
	return r;
}

/* ---- data URLs --------------------------------------------------------- */

/* "gk-data-v1" 0 exp 0 key, or bound to a client address or CIDR:
 * "gk-data-cip-v1" 0 exp 0 cip 0 key (another domain: neither form can
 * pass for the other). */
static int
data_mac_parts(gk_slice key, gk_slice exp, gk_slice cip, gk_slice parts[7])
{
	static const uint8_t zero = 0;

	if (cip.len == 0) {
		parts[0] = gk_slice_of(data_domain, sizeof(data_domain) - 1);
		parts[1] = gk_slice_of(&zero, 1);
		parts[2] = exp;
		parts[3] = gk_slice_of(&zero, 1);
		parts[4] = key;
		return 5;
	}
	parts[0] = gk_slice_of(data_cip_domain, sizeof(data_cip_domain) - 1);
	parts[1] = gk_slice_of(&zero, 1);
	parts[2] = exp;
	parts[3] = gk_slice_of(&zero, 1);
	parts[4] = cip;
	parts[5] = gk_slice_of(&zero, 1);
	parts[6] = key;
	return 7;
}

int
verify_data_sign(const gk_mac *m, gk_slice key, int64_t exp,
    char hex_out[GK_MAC_HEX_LEN + 1])
{
	return verify_data_sign_cip(m, key, exp, GK_SLICE_NULL, hex_out);
}

int
verify_data_check(const gk_mac *m, gk_slice key, gk_slice exp,
    gk_slice sig_hex, int64_t now, int64_t *exp_out)
{
	return verify_data_check_cip(m, key, exp, GK_SLICE_NULL, sig_hex, now,
	    exp_out);
}

int
verify_data_sign_cip(const gk_mac *m, gk_slice key, int64_t exp,
    gk_slice cip, char hex_out[GK_MAC_HEX_LEN + 1])
{
	gk_slice parts[7];
	char num[24];
	int n;

	if (hex_out == NULL)
		return GK_ERR_INTERNAL;
	hex_out[0] = '\0';
	if (exp < 0 || (key.p == NULL && key.len > 0) ||
	    (cip.p == NULL && cip.len > 0) ||
	    (cip.len > 0 && memchr(cip.p, '\0', cip.len) != NULL))
		return GK_ERR_INVALID;
	n = snprintf(num, sizeof(num), "%" PRId64, exp);
	if (n <= 0 || (size_t)n >= sizeof(num))
		return GK_ERR_INTERNAL;
	n = data_mac_parts(key, gk_slice_of(num, (size_t)n), cip, parts);
	return mac_hex(m, parts, (size_t)n, hex_out);
}

int
verify_data_check_cip(const gk_mac *m, gk_slice key, gk_slice exp,
    gk_slice cip, gk_slice sig_hex, int64_t now, int64_t *exp_out)
{
	gk_slice parts[7];
	uint8_t want[GK_MAC_LEN];
	uint64_t e = 0;
	int n, r = GK_ERR_INTERNAL;

	if (exp_out != NULL)
		*exp_out = 0;
	if ((key.p == NULL && key.len > 0) || exp.p == NULL) {
		r = GK_ERR_INVALID;
		goto out;
	}
	if ((r = sig_decode(sig_hex, want)) != 0)
		goto out;
	if (gk_parse_u64(exp, INT64_MAX, &e) != 0) {
		r = GK_ERR_INVALID;
		goto out;
	}
	if (cip.p == NULL && cip.len > 0) {
		r = GK_ERR_INVALID;
		goto out;
	}
	n = data_mac_parts(key, exp, cip, parts);
	if ((r = mac_check(m, parts, (size_t)n, want)) != 0)
		goto out;
	/* only a genuine exp is reported or compared with the clock */
	if (exp_out != NULL)
		*exp_out = (int64_t)e;
	r = (int64_t)e < now ? GK_ERR_EXPIRED : 0;
 out:
	gk_wipe(want, sizeof(want));
	return r;
}
