/*
 * age.c - age v1 encryption and decryption: stanza unwrapping (X25519,
 * scrypt), the header MAC and the STREAM payload.
 */
#include "share/share.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "share/share_int.h"

#define ENC_CHUNK (AGE_CHUNK + 16)
#define X25519_INFO "age-encryption.org/v1/X25519"
#define SCRYPT_LABEL "age-encryption.org/v1/scrypt"

const char *
age_class_str(age_class c)
{
	switch (c) {
	case AGE_OK: return "success";
	case AGE_E_HEADER: return "header failure";
	case AGE_E_NO_MATCH: return "no match";
	case AGE_E_HMAC: return "HMAC failure";
	case AGE_E_PAYLOAD: return "payload failure";
	case AGE_E_ARMOR: return "armor failure";
	case AGE_E_IO: return "I/O failure";
	}
	return "failure";
}

static int
aead(int enc, const uint8_t key[32], const uint8_t nonce[12],
    const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c;
	int n = 0, r = enc ? GK_ERR_INTERNAL : GK_ERR_AUTH;
	uint8_t tag[16];

	if (len > INT32_MAX || (c = EVP_CIPHER_CTX_new()) == NULL)
		return GK_ERR_INTERNAL;
	if (EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, key, nonce,
	    enc) != 1)
		goto out;
	if (!enc) {
		memcpy(tag, in + len, 16);
		if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1)
			goto out;
	}
	if (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, out + n, &n) != 1) {
		if (!enc)
			gk_wipe(out, len);
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16,
	    out + len) != 1)
		goto out;
	r = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return r;
}

int
age_aead_seal(const uint8_t key[32], const uint8_t nonce[12],
    const uint8_t *in, size_t len, uint8_t *out)
{
	return aead(1, key, nonce, in, len, out);
}

/* in holds len bytes of ciphertext followed by the 16-byte tag. */
int
age_aead_open(const uint8_t key[32], const uint8_t nonce[12],
    const uint8_t *in, size_t len, uint8_t *out)
{
	return aead(0, key, nonce, in, len, out);
}

static void
seterr(age_error *e, age_class c, const char *msg)
{
	e->cls = c;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
}

/* ---- unwrapping -------------------------------------------------------- */

static int
unwrap_body(const uint8_t key[32], const age_stanza *st,
    uint8_t file_key[AGE_FILE_KEY_LEN])
{
	static const uint8_t zero_nonce[12];

	return age_aead_open(key, zero_nonce, st->body, AGE_FILE_KEY_LEN,
	    file_key);
}

/* 0 file key found, 1 not this stanza, <0 with e set. */
static int
try_x25519(const age_identity *id, const age_stanza *st,
    uint8_t file_key[AGE_FILE_KEY_LEN], age_error *e)
{
	uint8_t share[AGE_KEY_LEN], shared[AGE_KEY_LEN], salt[64], key[32];
	size_t got;
	int r;

	if (st->nargs != 2 || age_b64_decode(st->args[1], 0, share,
	    sizeof(share), &got) != 0 || got != AGE_KEY_LEN ||
	    st->body_len != AGE_FILE_KEY_LEN + 16) {
		seterr(e, AGE_E_HEADER, "malformed X25519 stanza");
		return GK_ERR_INVALID;
	}
	if (age_x25519(id->sk, share, shared) != 0) {
		seterr(e, AGE_E_HEADER, "X25519 stanza with a low-order share");
		return GK_ERR_INVALID;
	}
	memcpy(salt, share, 32);
	memcpy(salt + 32, id->pk, 32);
	r = age_hkdf(gk_slice_of(shared, 32), gk_slice_of(salt, 64),
	    X25519_INFO, key, sizeof(key));
	gk_wipe(shared, sizeof(shared));
	if (r != 0) {
		seterr(e, AGE_E_IO, "key derivation failed");
		return r;
	}
	r = unwrap_body(key, st, file_key) == 0 ? 0 : 1;
	gk_wipe(key, sizeof(key));
	return r;
}

static int
scrypt_log2(gk_slice a, unsigned max, unsigned *out)
{
	uint64_t v;
	size_t i;

	if (a.len == 0 || a.len > 2 || a.p[0] == '0')
		return GK_ERR_INVALID;
	for (i = 0; i < a.len; i++)
		if (a.p[i] < '0' || a.p[i] > '9')
			return GK_ERR_INVALID;
	if (gk_parse_u64(a, 64, &v) != 0 || v == 0 || v > max)
		return GK_ERR_INVALID;
	*out = (unsigned)v;
	return 0;
}

static int
try_scrypt(const age_keyring *kr, const age_stanza *st,
    uint8_t file_key[AGE_FILE_KEY_LEN], age_error *e)
{
	uint8_t salt[sizeof(SCRYPT_LABEL) - 1 + 16], key[32];
	size_t got, ll = sizeof(SCRYPT_LABEL) - 1;
	unsigned logn, max = kr->max_scrypt_log2 ? kr->max_scrypt_log2 : 22;
	uint64_t n;
	int r;

	if (st->nargs != 3 || age_b64_decode(st->args[1], 0, salt + ll, 16,
	    &got) != 0 || got != 16 || st->body_len != AGE_FILE_KEY_LEN + 16) {
		seterr(e, AGE_E_HEADER, "malformed scrypt stanza");
		return GK_ERR_INVALID;
	}
	if (scrypt_log2(st->args[2], max, &logn) != 0) {
		seterr(e, AGE_E_HEADER, "scrypt work factor invalid or too "
		    "large");
		return GK_ERR_INVALID;
	}
	memcpy(salt, SCRYPT_LABEL, ll);
	n = (uint64_t)1 << logn;
	if (EVP_PBE_scrypt(kr->passphrase, strlen(kr->passphrase), salt,
	    sizeof(salt), n, 8, 1, 128 * 8 * n + (16u << 20), key,
	    sizeof(key)) != 1) {
		seterr(e, AGE_E_IO, "scrypt failed (out of memory?)");
		return GK_ERR_NOMEM;
	}
	r = unwrap_body(key, st, file_key) == 0 ? 0 : 1;
	gk_wipe(key, sizeof(key));
	return r;
}

static int
find_file_key(const age_keyring *kr, const age_header *h,
    uint8_t file_key[AGE_FILE_KEY_LEN], age_error *e)
{
	size_t i, j;
	int r;

	for (i = 0; i < h->n; i++) {
		if (gk_slice_eq_str(h->st[i].args[0], "scrypt") && h->n != 1) {
			seterr(e, AGE_E_HEADER, "an scrypt stanza must be the "
			    "only one");
			return GK_ERR_INVALID;
		}
	}
	for (j = 0; j < kr->n_ids; j++) {
		for (i = 0; i < h->n; i++) {
			if (!gk_slice_eq_str(h->st[i].args[0], "X25519"))
				continue;
			r = try_x25519(&kr->ids[j], &h->st[i], file_key, e);
			if (r <= 0)
				return r;
		}
	}
	if (kr->passphrase != NULL) {
		for (i = 0; i < h->n; i++) {
			if (!gk_slice_eq_str(h->st[i].args[0], "scrypt"))
				continue;
			r = try_scrypt(kr, &h->st[i], file_key, e);
			if (r <= 0)
				return r;
		}
	}
	seterr(e, AGE_E_NO_MATCH, "no identity matches");
	return GK_ERR_DENIED;
}

/* ---- decryption -------------------------------------------------------- */

struct input {
	age_source_fn src;
	void *arg;
	gk_buf hdr;		/* header bytes, then leftover */
	size_t off;		/* leftover start in hdr */
};

/* Fills buf with up to want bytes: leftover first, then the source.
 * *got < want only at the end of the input. */
static int
input_read(struct input *in, uint8_t *buf, size_t want, size_t *got)
{
	size_t n = 0, k;
	int r;

	if (in->off < in->hdr.len) {
		k = in->hdr.len - in->off;
		if (k > want)
			k = want;
		memcpy(buf, in->hdr.data + in->off, k);
		in->off += k;
		n = k;
	}
	while (n < want) {
		if ((r = in->src(in->arg, buf + n, want - n, &k)) != 0)
			return r;
		if (k == 0)
			break;
		n += k;
	}
	*got = n;
	return 0;
}

static void
nonce_set(uint8_t nonce[12], uint64_t counter, int last)
{
	int i;

	memset(nonce, 0, 12);
	for (i = 0; i < 8; i++)
		nonce[10 - i] = (counter >> (8 * i)) & 0xff;
	nonce[11] = last ? 1 : 0;
}

static int
header_mac(const uint8_t fk[AGE_FILE_KEY_LEN], gk_slice hdr,
    uint8_t mac[32])
{
	uint8_t key[32];
	unsigned int n = 32;
	int r;

	if ((r = age_hkdf(gk_slice_of(fk, AGE_FILE_KEY_LEN), GK_SLICE_NULL,
	    "header", key, sizeof(key))) != 0)
		return r;
	r = HMAC(EVP_sha256(), key, sizeof(key), hdr.p, hdr.len, mac, &n) ?
	    0 : GK_ERR_INTERNAL;
	gk_wipe(key, sizeof(key));
	return r;
}

static int
payload(struct input *in, const uint8_t fk[AGE_FILE_KEY_LEN],
    age_sink_fn sink, void *sink_arg, age_error *e)
{
	uint8_t nonce16[16], key[32], nonce[12];
	uint8_t *buf = NULL, *pt = NULL;
	size_t got, peek;
	uint64_t counter = 0;
	int r, last;

	if ((r = input_read(in, nonce16, 16, &got)) != 0) {
		seterr(e, AGE_E_IO, "read failed");
		return r;
	}
	if (got != 16) {
		seterr(e, AGE_E_HEADER, "file truncated before the payload "
		    "nonce");
		return GK_ERR_INVALID;
	}
	if ((r = age_hkdf(gk_slice_of(fk, AGE_FILE_KEY_LEN),
	    gk_slice_of(nonce16, 16), "payload", key, sizeof(key))) != 0) {
		seterr(e, AGE_E_IO, "key derivation failed");
		return r;
	}
	/* as age does: a short chunk is the last; a full one is tried as
	 * a middle chunk, then as the last */
	if ((buf = malloc(ENC_CHUNK)) == NULL ||
	    (pt = malloc(ENC_CHUNK)) == NULL) {
		r = GK_ERR_NOMEM;
		seterr(e, AGE_E_IO, "out of memory");
		goto out;
	}
	for (;;) {
		if ((r = input_read(in, buf, ENC_CHUNK, &got)) != 0) {
			seterr(e, AGE_E_IO, "read failed");
			goto out;
		}
		r = GK_ERR_INTEGRITY;
		if (got == 0) {
			seterr(e, AGE_E_PAYLOAD, "payload truncated (no final "
			    "chunk)");
			goto out;
		}
		if (got < 16) {
			seterr(e, AGE_E_PAYLOAD, "payload chunk too short");
			goto out;
		}
		last = got < ENC_CHUNK;
		nonce_set(nonce, counter, last);
		if (age_aead_open(key, nonce, buf, got - 16, pt) != 0) {
			nonce_set(nonce, counter, 1);
			if (last || age_aead_open(key, nonce, buf, got - 16,
			    pt) != 0) {
				seterr(e, AGE_E_PAYLOAD, "payload chunk failed "
				    "authentication (tampered or truncated)");
				goto out;
			}
			last = 1;
		}
		if (last && got == 16 && counter > 0) {
			seterr(e, AGE_E_PAYLOAD, "empty final chunk");
			goto out;
		}
		if (got > 16 && (r = sink(sink_arg, pt, got - 16)) != 0) {
			seterr(e, AGE_E_IO, "writing the output failed");
			goto out;
		}
		if (last) {
			if ((r = input_read(in, buf, 1, &peek)) != 0) {
				seterr(e, AGE_E_IO, "read failed");
				goto out;
			}
			if (peek != 0) {
				r = GK_ERR_INTEGRITY;
				seterr(e, AGE_E_PAYLOAD, "trailing data after "
				    "the final chunk");
				goto out;
			}
			break;
		}
		if (++counter == 0) {
			r = GK_ERR_TOO_LARGE;
			seterr(e, AGE_E_PAYLOAD, "too many chunks");
			goto out;
		}
	}
	r = 0;
out:
	gk_wipe(key, sizeof(key));
	if (pt != NULL)
		gk_wipe(pt, ENC_CHUNK);
	free(pt);
	free(buf);
	return r;
}

static int
armor_src(void *arg, uint8_t *buf, size_t max, size_t *got)
{
	return age_armor_read(arg, buf, max, got);
}

static int
is_armored(const uint8_t *p, size_t n)
{
	static const char begin[] = "-----BEGIN AGE ENCRYPTED FILE-----";
	size_t i = 0;

	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
	    p[i] == '\n'))
		i++;
	return n - i >= sizeof(begin) - 1 &&
	    memcmp(p + i, begin, sizeof(begin) - 1) == 0;
}

int
age_decrypt(const age_keyring *kr, age_source_fn src, void *src_arg,
    age_sink_fn sink, void *sink_arg, age_error *e)
{
	struct input in = { src, src_arg, { 0 }, 0 };
	age_armor *ar = NULL;
	age_header h;
	uint8_t fk[AGE_FILE_KEY_LEN], mac[32], blk[4096];
	size_t got;
	int r = GK_ERR_INTERNAL, pr;

	memset(&h, 0, sizeof(h));
	e->cls = AGE_OK;
	e->msg[0] = '\0';
	gk_buf_init(&in.hdr, AGE_HEADER_MAX + sizeof(blk) + 64);
	/* the first block decides between binary and armor */
	if ((r = input_read(&in, blk, 1100, &got)) != 0) {
		seterr(e, AGE_E_IO, "read failed");
		goto out;
	}
	if (kr->armor == 1 || (kr->armor == 0 && is_armored(blk, got))) {
		if ((r = age_armor_new(src, src_arg, blk, got, &ar)) != 0) {
			seterr(e, AGE_E_IO, "out of memory");
			goto out;
		}
		in.src = armor_src;
		in.arg = ar;
		got = 0;
	}
	if ((r = gk_buf_append(&in.hdr, blk, got)) != 0)
		goto out;
	for (;;) {
		pr = age_header_parse(gk_slice_of(in.hdr.data, in.hdr.len), &h);
		if (pr == 0)
			break;
		if (pr != AGE_NEED_MORE || in.hdr.len > AGE_HEADER_MAX)
			goto bad_header;
		if ((r = in.src(in.arg, blk, sizeof(blk), &got)) != 0) {
			if (ar != NULL && age_armor_failed(ar))
				goto bad_armor;
			seterr(e, AGE_E_IO, "read failed");
			goto out;
		}
		if (got == 0)
			goto bad_header;
		if ((r = gk_buf_append(&in.hdr, blk, got)) != 0)
			goto bad_header;
	}
	in.off = h.len;
	if ((r = find_file_key(kr, &h, fk, e)) != 0)
		goto out;
	if ((r = header_mac(fk, gk_slice_of(in.hdr.data, h.mac_input_len),
	    mac)) != 0) {
		seterr(e, AGE_E_IO, "HMAC failed");
		goto out;
	}
	if (CRYPTO_memcmp(mac, h.mac, 32) != 0) {
		r = GK_ERR_AUTH;
		seterr(e, AGE_E_HMAC, "header MAC mismatch (tampered header)");
		goto out;
	}
	r = payload(&in, fk, sink, sink_arg, e);
	if (r != 0 && ar != NULL && age_armor_failed(ar))
		goto bad_armor;
	goto out;
bad_armor:
	r = GK_ERR_INVALID;
	seterr(e, AGE_E_ARMOR, age_armor_error(ar));
	goto out;
bad_header:
	if (ar != NULL && age_armor_failed(ar))
		goto bad_armor;
	r = GK_ERR_INVALID;
	seterr(e, AGE_E_HEADER, in.hdr.len == 0 ? "empty file, not an age "
	    "file" : "malformed or truncated age header");
out:
	gk_wipe(fk, sizeof(fk));
	age_header_release(&h);
	age_armor_free(ar);
	gk_buf_release(&in.hdr);
	return r;
}

/* ---- encryption -------------------------------------------------------- */

struct age_enc {
	age_sink_fn sink;
	void *arg;
	uint8_t key[32];
	uint64_t counter;
	uint8_t *buf;		/* one plaintext chunk */
	size_t have;
	uint8_t *ct;
	int done;
};

static int
emit_chunk(age_enc *e, int last)
{
	uint8_t nonce[12];
	int r;

	nonce_set(nonce, e->counter, last);
	if ((r = age_aead_seal(e->key, nonce, e->buf, e->have, e->ct)) != 0)
		return r;
	if ((r = e->sink(e->arg, e->ct, e->have + 16)) != 0)
		return r;
	e->counter++;
	e->have = 0;
	return 0;
}

static int
wrap_x25519(const uint8_t pk[AGE_KEY_LEN],
    const uint8_t fk[AGE_FILE_KEY_LEN], gk_buf *hdr)
{
	static const uint8_t zero_nonce[12];
	age_identity eph;
	uint8_t shared[32], salt[64], key[32], body[AGE_FILE_KEY_LEN + 16];
	char b64[64];
	int r;

	if ((r = age_identity_generate(&eph)) != 0)
		return r;
	if ((r = age_x25519(eph.sk, pk, shared)) != 0)
		goto out;
	memcpy(salt, eph.pk, 32);
	memcpy(salt + 32, pk, 32);
	if ((r = age_hkdf(gk_slice_of(shared, 32), gk_slice_of(salt, 64),
	    X25519_INFO, key, sizeof(key))) != 0 ||
	    (r = age_aead_seal(key, zero_nonce, fk, AGE_FILE_KEY_LEN,
	    body)) != 0)
		goto out;
	age_b64_raw(eph.pk, 32, b64, sizeof(b64));
	if ((r = gk_buf_printf(hdr, "-> X25519 %s\n", b64)) != 0)
		goto out;
	age_b64_raw(body, sizeof(body), b64, sizeof(b64));
	r = gk_buf_printf(hdr, "%s\n", b64);
out:
	gk_wipe(&eph, sizeof(eph));
	gk_wipe(shared, sizeof(shared));
	gk_wipe(key, sizeof(key));
	return r;
}

int
age_enc_new(const uint8_t (*pks)[AGE_KEY_LEN], size_t n,
    const uint8_t *file_key, age_sink_fn sink, void *arg, age_enc **out)
{
	age_enc *e;
	gk_buf hdr;
	uint8_t fk[AGE_FILE_KEY_LEN], mac[32], nonce[16];
	char b64[64];
	size_t i;
	int r = GK_ERR_INTERNAL;

	if (n == 0)
		return GK_ERR_INVALID;
	gk_buf_init(&hdr, AGE_HEADER_MAX);
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->buf = malloc(AGE_CHUNK)) == NULL ||
	    (e->ct = malloc(ENC_CHUNK)) == NULL) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	e->sink = sink;
	e->arg = arg;
	if (file_key != NULL)
		memcpy(fk, file_key, sizeof(fk));
	else if ((r = gk_random(fk, sizeof(fk))) != 0)
		goto out;
	if ((r = gk_buf_append_str(&hdr, "age-encryption.org/v1\n")) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if ((r = wrap_x25519(pks[i], fk, &hdr)) != 0)
			goto out;
	if ((r = gk_buf_append_str(&hdr, "---")) != 0 ||
	    (r = header_mac(fk, gk_slice_of(hdr.data, hdr.len), mac)) != 0)
		goto out;
	age_b64_raw(mac, sizeof(mac), b64, sizeof(b64));
	if ((r = gk_buf_printf(&hdr, " %s\n", b64)) != 0 ||
	    (r = gk_random(nonce, sizeof(nonce))) != 0 ||
	    (r = gk_buf_append(&hdr, nonce, sizeof(nonce))) != 0)
		goto out;
	if ((r = age_hkdf(gk_slice_of(fk, sizeof(fk)),
	    gk_slice_of(nonce, sizeof(nonce)), "payload", e->key,
	    sizeof(e->key))) != 0)
		goto out;
	if ((r = sink(arg, hdr.data, hdr.len)) != 0)
		goto out;
	*out = e;
	e = NULL; /* transferred */
out:
	gk_wipe(fk, sizeof(fk));
	gk_buf_release(&hdr);
	age_enc_free(e);
	return r;
}

int
age_enc_write(age_enc *e, const uint8_t *p, size_t len)
{
	size_t k;
	int r;

	if (e->done)
		return GK_ERR_INVALID;
	while (len > 0) {
		if (e->have == AGE_CHUNK && (r = emit_chunk(e, 0)) != 0)
			return r;
		k = AGE_CHUNK - e->have;
		if (k > len)
			k = len;
		memcpy(e->buf + e->have, p, k);
		e->have += k;
		p += k;
		len -= k;
	}
	return 0;
}

int
age_enc_finish(age_enc *e)
{
	int r;

	if (e->done)
		return GK_ERR_INVALID;
	e->done = 1;
	r = emit_chunk(e, 1);
	return r;
}

void
age_enc_free(age_enc *e)
{
	if (e == NULL)
		return;
	gk_wipe(e->key, sizeof(e->key));
	if (e->buf != NULL)
		gk_wipe(e->buf, AGE_CHUNK);
	free(e->buf);
	free(e->ct);
	free(e);
}
