/*
 * fuzz_age_header.c - the age decoder on untrusted bytes.
 *
 * The input goes to the header parser alone, then to the whole decryptor
 * (binary or armor, detected) with two fixed X25519 identities, one of
 * which is the test kit's, so stanzas, the header MAC and STREAM chunks
 * are reached. Invariants: a parsed header has at least one stanza, a
 * MAC-covered length inside it and owned bodies; a failure has a class
 * and a message; a success released at most the input's length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "share/share.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static age_identity ids[2];
static int ready;

struct src {
	const uint8_t *p;
	size_t len, off;
};

static int
src_read(void *arg, uint8_t *buf, size_t max, size_t *got)
{
	struct src *s = arg;
	size_t k = s->len - s->off;

	if (k > max)
		k = max;
	if (k > 1000)	/* uneven reads */
		k = 1000;
	memcpy(buf, s->p + s->off, k);
	s->off += k;
	*got = k;
	return 0;
}

static int
count_sink(void *arg, const uint8_t *p, size_t len)
{
	*(size_t *)arg += len;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	age_header h;
	age_keyring kr;
	age_error e;
	struct src s = { data, size, 0 };
	size_t out = 0, i;
	int r;

	if (!ready) {
		if (age_identity_parse(gk_slice_str("AGE-SECRET-KEY-1EGTZVFFV2"
		    "0835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"),
		    &ids[0]) != 0 || age_identity_generate(&ids[1]) != 0)
			abort();
		ready = 1;
	}
	r = age_header_parse(gk_slice_of(data, size), &h);
	if (r == 0) {
		if (h.n == 0 || h.mac_input_len >= h.len || h.len > size)
			__builtin_trap();
		for (i = 0; i < h.n; i++)
			if (h.st[i].nargs == 0 || h.st[i].args[0].len == 0)
				__builtin_trap();
		age_header_release(&h);
	} else if (r != AGE_NEED_MORE && r != GK_ERR_INVALID &&
	    r != GK_ERR_TOO_LARGE && r != GK_ERR_NOMEM)
		__builtin_trap();
	memset(&kr, 0, sizeof(kr));
	kr.ids = ids;
	kr.n_ids = 2;
	kr.passphrase = size > 0 && (data[0] & 1) ? "password" : NULL;
	kr.max_scrypt_log2 = 12;	/* keep the fuzzer fast */
	r = age_decrypt(&kr, src_read, &s, count_sink, &out, &e);
	if (r == 0 && (e.cls != AGE_OK || out > size))
		__builtin_trap();
	if (r != 0 && (e.cls == AGE_OK || e.msg[0] == '\0'))
		__builtin_trap();
	return 0;
}
