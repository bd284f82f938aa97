/*
 * test_age.c - the age v1 implementation against the C2SP age test kit
 * (tests/data/age-testkit: every vector's outcome class and the SHA-256
 * of exactly the plaintext released), plus encryption round trips,
 * bech32 keys and the signing key.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "share/share.h"
#include "t.h"

struct mem {
	const uint8_t *p;
	size_t len, off;
};

static int
mem_read(void *arg, uint8_t *buf, size_t max, size_t *got)
{
	struct mem *m = arg;
	size_t k = m->len - m->off;

	/* odd sizes exercise the readers' buffering */
	if (k > max)
		k = max;
	if (k > 7777)
		k = 7777;
	memcpy(buf, m->p + m->off, k);
	m->off += k;
	*got = k;
	return 0;
}

static int
sha_sink(void *arg, const uint8_t *p, size_t len)
{
	EVP_DigestUpdate(arg, p, len);
	return 0;
}

struct cap {
	gk_buf b;
};

static int
buf_sink(void *arg, const uint8_t *p, size_t len)
{
	return gk_buf_append(arg, p, len);
}

static int
inflate_all(const uint8_t *in, size_t n, gk_buf *out)
{
	z_stream z;
	uint8_t tmp[65536];
	int zr, r = 0;

	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return -1;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)n;
	do {
		z.next_out = tmp;
		z.avail_out = sizeof(tmp);
		zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END) {
			r = -1;
			break;
		}
		if (gk_buf_append(out, tmp, sizeof(tmp) - z.avail_out) != 0) {
			r = -1;
			break;
		}
	} while (zr != Z_STREAM_END);
	inflateEnd(&z);
	return r;
}

static int n_vectors, n_skipped;

static void
run_vector(const char *dir, const char *name)
{
	char path[1024], expect[512] = "", payload[512] = "", pass[512] = "";
	char got_hex[65];
	gk_buf file, body;
	age_identity ids[8];
	size_t nids = 0, i = 0;
	int armored = 0, zlib = 0, pq = 0, r;
	age_keyring kr;
	age_error e;
	struct mem m;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	uint8_t d[32];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	gk_buf_init(&file, 64u << 20);
	gk_buf_init(&body, 64u << 20);
	if (gk_file_read(path, 64u << 20, &file) != 0) {
		T_CHECK(!"vector readable");
		goto out;
	}
	/* "key: value" lines up to an empty line */
	while (i < file.len) {
		uint8_t *nl = memchr(file.data + i, '\n', file.len - i);
		size_t end = nl ? (size_t)(nl - file.data) : file.len;
		char line[512];

		if (end == i) {
			i++;
			break;
		}
		snprintf(line, sizeof(line), "%.*s", (int)(end - i),
		    file.data + i);
		i = end + 1;
		if (strncmp(line, "expect: ", 8) == 0)
			snprintf(expect, sizeof(expect), "%s", line + 8);
		else if (strncmp(line, "payload: ", 9) == 0)
			snprintf(payload, sizeof(payload), "%s", line + 9);
		else if (strncmp(line, "passphrase: ", 12) == 0)
			snprintf(pass, sizeof(pass), "%s", line + 12);
		else if (strcmp(line, "armored: yes") == 0)
			armored = 1;
		else if (strcmp(line, "compressed: zlib") == 0)
			zlib = 1;
		else if (strncmp(line, "identity: AGE-SECRET-KEY-PQ-", 28) == 0)
			pq = 1;
		else if (strncmp(line, "identity: ", 10) == 0 && nids < 8) {
			r = age_identity_parse(gk_slice_str(line + 10),
			    &ids[nids++]);
			T_EQ_INT(r, 0);
		}
	}
	if (pq) {
		n_skipped++;
		printf("skip %s: hybrid ML-KEM-768+X25519 identity; OpenSSL "
		    "3.0 has no ML-KEM\n", name);
		goto out;
	}
	if (zlib) {
		if (inflate_all(file.data + i, file.len - i, &body) != 0) {
			T_CHECK(!"zlib vector inflates");
			goto out;
		}
	} else if (gk_buf_append(&body, file.data + i, file.len - i) != 0)
		goto out;
	memset(&kr, 0, sizeof(kr));
	kr.ids = ids;
	kr.n_ids = nids;
	kr.passphrase = pass[0] ? pass : NULL;
	kr.armor = armored ? 1 : 2;
	m.p = body.data;
	m.len = body.len;
	m.off = 0;
	EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
	r = age_decrypt(&kr, mem_read, &m, sha_sink, sha, &e);
	EVP_DigestFinal_ex(sha, d, NULL);
	gk_hex_encode(d, 32, got_hex);
	n_vectors++;
	if (strcmp(age_class_str(e.cls), expect) != 0 ||
	    (r == 0) != (e.cls == AGE_OK)) {
		t_fail++;
		fprintf(stderr, "FAIL %s: got \"%s\" (%s), want \"%s\"\n",
		    name, age_class_str(e.cls), e.msg, expect);
	} else
		t_pass++;
	/* no payload line: nothing may be released */
	if (payload[0] == '\0')
		snprintf(payload, sizeof(payload), "%s", "e3b0c44298fc1c149afb"
		    "f4c8996fb92427ae41e4649b934ca495991b7852b855");
	if (strcmp(got_hex, payload) != 0) {
		t_fail++;
		fprintf(stderr, "FAIL %s: released plaintext %s, want %s\n",
		    name, got_hex, payload);
	} else
		t_pass++;
out:
	EVP_MD_CTX_free(sha);
	gk_wipe(ids, sizeof(ids));
	gk_buf_release(&file);
	gk_buf_release(&body);
}

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_vectors(void)
{
	const char *dir = getenv("GK_AGE_TESTKIT");
	char *names[512];
	size_t n = 0, i;
	struct dirent *de;
	DIR *dp;

	if (dir == NULL)
		dir = "tests/data/age-testkit";
	if ((dp = opendir(dir)) == NULL) {
		T_CHECK(!"tests/data/age-testkit exists (run from the repo)");
		return;
	}
	while ((de = readdir(dp)) != NULL && n < 512) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "README.md") == 0)
			continue;
		names[n++] = strdup(de->d_name);
	}
	closedir(dp);
	qsort(names, n, sizeof(names[0]), cmp);
	for (i = 0; i < n; i++) {
		run_vector(dir, names[i]);
		free(names[i]);
	}
	printf("age test kit: %d vectors checked, %d skipped (hybrid "
	    "post-quantum)\n", n_vectors, n_skipped);
	T_EQ_INT(n_vectors + n_skipped, 143);
	T_CHECK(n_vectors >= 124);
}

static void
roundtrip(size_t size)
{
	age_identity a, b, c;
	uint8_t pks[2][AGE_KEY_LEN];
	gk_buf ct, pt;
	uint8_t *data = malloc(size + 1);
	age_enc *enc = NULL;
	age_keyring kr;
	age_error e;
	struct mem m;
	size_t i;

	for (i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 8));
	T_EQ_INT(age_identity_generate(&a), 0);
	T_EQ_INT(age_identity_generate(&b), 0);
	T_EQ_INT(age_identity_generate(&c), 0);
	memcpy(pks[0], a.pk, 32);
	memcpy(pks[1], b.pk, 32);
	gk_buf_init(&ct, 64u << 20);
	gk_buf_init(&pt, 64u << 20);
	T_EQ_INT(age_enc_new((const uint8_t (*)[32])pks, 2, NULL, buf_sink,
	    &ct, &enc), 0);
	/* written in uneven pieces */
	for (i = 0; i < size; i += 1000)
		T_EQ_INT(age_enc_write(enc, data + i, size - i < 1000 ?
		    size - i : 1000), 0);
	T_EQ_INT(age_enc_finish(enc), 0);
	age_enc_free(enc);
	memset(&kr, 0, sizeof(kr));
	kr.ids = &b;
	kr.n_ids = 1;
	m.p = ct.data;
	m.len = ct.len;
	m.off = 0;
	T_EQ_INT(age_decrypt(&kr, mem_read, &m, buf_sink, &pt, &e), 0);
	T_EQ_INT(pt.len, size);
	T_CHECK(size == 0 || memcmp(pt.data, data, size) == 0);
	/* a third identity: no match */
	kr.ids = &c;
	m.off = 0;
	gk_buf_reset(&pt);
	T_CHECK(age_decrypt(&kr, mem_read, &m, buf_sink, &pt, &e) != 0);
	T_EQ_INT(e.cls, AGE_E_NO_MATCH);
	T_EQ_STR(e.msg, "no identity matches");
	T_EQ_INT(pt.len, 0);
	/* one flipped bit in the last byte: the last chunk is withheld */
	if (size > 0) {
		kr.ids = &a;
		ct.data[ct.len - 1] ^= 1;
		m.off = 0;
		gk_buf_reset(&pt);
		T_CHECK(age_decrypt(&kr, mem_read, &m, buf_sink, &pt, &e) != 0);
		T_EQ_INT(e.cls, AGE_E_PAYLOAD);
		T_EQ_INT(pt.len, (size - 1) / AGE_CHUNK * AGE_CHUNK);
		/* truncated by one chunk's tail */
		ct.data[ct.len - 1] ^= 1;
		m.len = ct.len - 17;
		m.off = 0;
		gk_buf_reset(&pt);
		T_CHECK(age_decrypt(&kr, mem_read, &m, buf_sink, &pt, &e) != 0);
		T_EQ_INT(e.cls, AGE_E_PAYLOAD);
	}
	gk_buf_release(&ct);
	gk_buf_release(&pt);
	free(data);
}

static void
test_keys(void)
{
	/* from the test kit's x25519 vector */
	const char *id_s = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMD"
	    "KWYKLMGR48UAWX40Q2P2LM0";
	age_identity id, id2;
	char s[AGE_IDENTITY_STR], rs[AGE_RECIPIENT_STR], low[128];
	uint8_t pk[32], pub[32], sig[64];
	size_t i;

	T_EQ_INT(age_identity_parse(gk_slice_str(id_s), &id), 0);
	age_identity_encode(&id, s);
	T_EQ_STR(s, id_s);
	for (i = 0; id_s[i]; i++)
		low[i] = (char)(id_s[i] >= 'A' && id_s[i] <= 'Z' ?
		    id_s[i] + 32 : id_s[i]);
	low[i] = '\0';
	T_EQ_INT(age_identity_parse(gk_slice_str(low), &id2), 0);
	T_CHECK(memcmp(id.sk, id2.sk, 32) == 0);
	low[3] = 'E'; /* mixed case */
	T_CHECK(age_identity_parse(gk_slice_str(low), &id2) != 0);
	age_recipient_encode(id.pk, rs);
	T_CHECK(strncmp(rs, "age1", 4) == 0 && strlen(rs) == 62);
	T_EQ_INT(age_recipient_parse(gk_slice_str(rs), pk), 0);
	T_CHECK(memcmp(pk, id.pk, 32) == 0);
	rs[10] = rs[10] == 'q' ? 'p' : 'q'; /* checksum breaks */
	T_CHECK(age_recipient_parse(gk_slice_str(rs), pk) != 0);
	T_CHECK(age_recipient_parse(gk_slice_str(id_s), pk) != 0);
	/* low-order points (0, 1, one of order 8): well-formed bech32, but
	 * nothing can be wrapped to them (age: "low order point") */
	{
		static const uint8_t order8[32] = { 0xe0, 0xeb, 0x7a, 0x7c,
		    0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
		    0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd,
		    0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 };
		uint8_t lo[32];

		memset(lo, 0, sizeof(lo));
		age_recipient_encode(lo, rs);
		T_EQ_STR(rs, "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
		    "qqqqqqq5cu47z");
		T_EQ_INT(age_recipient_parse(gk_slice_str(rs), pk),
		    GK_ERR_INVALID);
		lo[0] = 1;
		age_recipient_encode(lo, rs);
		T_EQ_INT(age_recipient_parse(gk_slice_str(rs), pk),
		    GK_ERR_INVALID);
		age_recipient_encode(order8, rs);
		T_EQ_INT(age_recipient_parse(gk_slice_str(rs), pk),
		    GK_ERR_INVALID);
		lo[0] = 9;	/* the base point is fine */
		age_recipient_encode(lo, rs);
		T_EQ_INT(age_recipient_parse(gk_slice_str(rs), pk), 0);
	}
	T_EQ_INT(share_sign_pub(&id, pub), 0);
	T_EQ_INT(share_sign(&id, gk_slice_str("msg"), sig), 0);
	T_EQ_INT(share_verify(pub, gk_slice_str("msg"), sig), 0);
	T_CHECK(share_verify(pub, gk_slice_str("msh"), sig) != 0);
}

int
main(void)
{
	test_vectors();
	test_keys();
	roundtrip(0);
	roundtrip(1);
	roundtrip(AGE_CHUNK - 1);
	roundtrip(AGE_CHUNK);
	roundtrip(AGE_CHUNK + 1);
	roundtrip(3 * AGE_CHUNK);
	roundtrip(5 * AGE_CHUNK + 12345);
	return T_DONE();
}
