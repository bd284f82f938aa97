/*
 * test_verify.c - HMAC keys and their per-thread cache, v1 signatures,
 * data URLs and upload policies. Known answers were computed outside this
 * code with `printf ... | openssl dgst -sha256 -hmac KEY` and base64(1).
 */
#include "t.h"
#include "verify/verify.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define INTERNAL_KEY "internal-key-0123456789"

static gk_mac *
mac_of(const char *key)
{
	gk_mac *m = NULL;

	if (verify_mac_new((const uint8_t *)key, strlen(key), &m) != 0)
		return NULL;
	return m;
}

static void
hex_of(const uint8_t mac[GK_MAC_LEN], char out[GK_MAC_HEX_LEN + 1])
{
	gk_hex_encode(mac, GK_MAC_LEN, out);
}

/* ---- the MAC itself ---------------------------------------------------- */

static void
test_mac_kat(void)
{
	/* RFC 4231 test cases 2 and 6 */
	static const char want2[] =
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	static const char want6[] =
	    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
	uint8_t key6[131], mac[GK_MAC_LEN];
	char hex[GK_MAC_HEX_LEN + 1];
	gk_slice parts[4];
	gk_mac *m = NULL, *m6 = NULL;
	int i;

	T_CHECK((m = mac_of("Jefe")) != NULL);
	parts[0] = gk_slice_str("what do ya want for nothing?");
	T_EQ_INT(verify_mac_compute(m, parts, 1, mac), 0);
	hex_of(mac, hex);
	T_EQ_STR(hex, want2);
	/* the same message split into parts, one of them empty, twice so
	 * the second run reuses the cached context */
	for (i = 0; i < 2; i++) {
		parts[0] = gk_slice_str("what do ");
		parts[1] = GK_SLICE_NULL;
		parts[2] = gk_slice_str("ya want for");
		parts[3] = gk_slice_str(" nothing?");
		T_EQ_INT(verify_mac_compute(m, parts, 4, mac), 0);
		hex_of(mac, hex);
		T_EQ_STR(hex, want2);
	}
	memset(key6, 0xaa, sizeof(key6));
	T_EQ_INT(verify_mac_new(key6, sizeof(key6), &m6), 0);
	parts[0] = gk_slice_str("Test Using Larger Than Block-Size Key - "
	    "Hash Key First");
	T_EQ_INT(verify_mac_compute(m6, parts, 1, mac), 0);
	hex_of(mac, hex);
	T_EQ_STR(hex, want6);
	/* and back to the first key */
	parts[0] = gk_slice_str("what do ya want for nothing?");
	T_EQ_INT(verify_mac_compute(m, parts, 1, mac), 0);
	hex_of(mac, hex);
	T_EQ_STR(hex, want2);
	verify_mac_free(m);
	verify_mac_free(m6);
	verify_mac_free(NULL);
}

static void
test_mac_args(void)
{
	uint8_t big[1025] = { 0 }, mac[GK_MAC_LEN];
	gk_slice bad = { NULL, 3 };
	gk_mac *m = NULL;

	T_EQ_INT(verify_mac_new((const uint8_t *)"", 0, &m), GK_ERR_INVALID);
	T_CHECK(m == NULL);
	T_EQ_INT(verify_mac_new(NULL, 4, &m), GK_ERR_INVALID);
	T_EQ_INT(verify_mac_new(big, sizeof(big), &m), GK_ERR_INVALID);
	T_EQ_INT(verify_mac_new(big, sizeof(big) - 1, &m), 0);
	T_EQ_INT(verify_mac_compute(m, &bad, 1, mac), GK_ERR_INTERNAL);
	T_EQ_INT(verify_mac_compute(NULL, NULL, 0, mac), GK_ERR_INTERNAL);
	T_EQ_INT(verify_mac_compute(m, NULL, 0, mac), 0);
	verify_mac_free(m);
}

/* More keys than cache slots, in a pattern that evicts constantly. */
static void
test_mac_eviction(void)
{
	gk_mac *m[20];
	uint8_t mac[GK_MAC_LEN], ref[GK_MAC_LEN];
	unsigned int rlen;
	char key[16];
	gk_slice part = gk_slice_str("message");
	int i, round, ok = 1;

	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		m[i] = mac_of(key);
		T_CHECK(m[i] != NULL);
	}
	for (round = 0; round < 5; round++) {
		for (i = 0; i < 20; i++) {
			int k = (i * 7 + round) % 20;

			snprintf(key, sizeof(key), "key-%d", k);
			if (verify_mac_compute(m[k], &part, 1, mac) != 0 ||
			    HMAC(EVP_sha256(), key, (int)strlen(key),
			    part.p, part.len, ref, &rlen) == NULL ||
			    memcmp(mac, ref, sizeof(ref)) != 0)
				ok = 0;
		}
	}
	T_CHECK(ok);
	for (i = 0; i < 20; i++)
		verify_mac_free(m[i]);
}

/* A gk_mac freed and another made (likely at the same address) must not
 * pick up the first one's cached context, in this thread or another. */
struct reuse_arg {
	gk_mac *m;
	const char *key;
	int ok;
};

static void *
reuse_thread(void *p)
{
	struct reuse_arg *a = p;
	uint8_t mac[GK_MAC_LEN], ref[GK_MAC_LEN];
	unsigned int rlen;
	gk_slice part = gk_slice_str("payload");

	a->ok = verify_mac_compute(a->m, &part, 1, mac) == 0 &&
	    HMAC(EVP_sha256(), a->key, (int)strlen(a->key), part.p, part.len,
	    ref, &rlen) != NULL && memcmp(mac, ref, sizeof(ref)) == 0;
	return NULL;
}

static void
test_mac_no_reuse(void)
{
	struct reuse_arg a;
	pthread_t th;
	gk_mac *m1, *m2;
	int i;

	for (i = 0; i < 50; i++) {
		m1 = mac_of("first key");
		a.m = m1;
		a.key = "first key";
		a.ok = 0;
		reuse_thread(&a);
		T_CHECK(a.ok);
		verify_mac_free(m1);
		m2 = mac_of("second key");
		a.m = m2;
		a.key = "second key";
		a.ok = 0;
		reuse_thread(&a);
		T_CHECK(a.ok);
		verify_mac_free(m2);
	}
	/* the same across threads: a long-lived thread would be ideal, but
	 * a thread per step with one shared key kept alive shows the cache
	 * of a live thread survives other keys' frees */
	m1 = mac_of("kept");
	a.m = m1;
	a.key = "kept";
	a.ok = 0;
	T_EQ_INT(pthread_create(&th, NULL, reuse_thread, &a), 0);
	pthread_join(th, NULL);
	T_CHECK(a.ok);
	m2 = mac_of("other");
	verify_mac_free(m2);
	a.ok = 0;
	reuse_thread(&a);
	T_CHECK(a.ok);
	verify_mac_free(m1);
}

/* 4 threads x 10k MACs over shared keys (more than the cache holds),
 * while each thread also makes and frees keys of its own, all checked
 * against one-shot HMAC(). */
#define NTHREADS 4
#define NITER 10000
#define NSHARED 10

static gk_mac *shared_mac[NSHARED];
static char shared_key[NSHARED][32];

struct thr_arg {
	unsigned int seed;
	int bad;
	int done;
};

static void *
mac_thread(void *p)
{
	struct thr_arg *a = p;
	uint8_t msg[200], mac[GK_MAC_LEN], ref[GK_MAC_LEN];
	unsigned int rlen, x = a->seed;
	gk_slice parts[3];
	size_t n, cut1, cut2, i;
	int it, k;

	for (it = 0; it < NITER; it++) {
		x = x * 1103515245u + 12345u;
		n = (x >> 8) % sizeof(msg);
		for (i = 0; i < n; i++)
			msg[i] = (uint8_t)(x >> (i % 24));
		cut1 = n ? (x >> 3) % (n + 1) : 0;
		cut2 = cut1 + (n - cut1) / 2;
		parts[0] = gk_slice_of(msg, cut1);
		parts[1] = gk_slice_of(msg + cut1, cut2 - cut1);
		parts[2] = gk_slice_of(msg + cut2, n - cut2);
		if (it % 1000 == 999) {
			/* a private key, made and freed: bumps the epoch
			 * every other thread then flushes on */
			gk_mac *own = mac_of("own key");

			if (own == NULL ||
			    verify_mac_compute(own, parts, 3, mac) != 0 ||
			    HMAC(EVP_sha256(), "own key", 7, msg, n, ref,
			    &rlen) == NULL || memcmp(mac, ref, sizeof(ref)))
				a->bad++;
			verify_mac_free(own);
			continue;
		}
		k = (int)((x >> 16) % NSHARED);
		if (verify_mac_compute(shared_mac[k], parts, 3, mac) != 0 ||
		    HMAC(EVP_sha256(), shared_key[k],
		    (int)strlen(shared_key[k]), msg, n, ref, &rlen) == NULL ||
		    memcmp(mac, ref, sizeof(ref)) != 0)
			a->bad++;
		a->done++;
	}
	return NULL;
}

static void
test_mac_threads(void)
{
	pthread_t th[NTHREADS];
	struct thr_arg arg[NTHREADS];
	int i, total = 0, bad = 0;

	for (i = 0; i < NSHARED; i++) {
		snprintf(shared_key[i], sizeof(shared_key[i]), "shared-%d-%s",
		    i, i % 2 ? "odd" : "even");
		shared_mac[i] = mac_of(shared_key[i]);
		T_CHECK(shared_mac[i] != NULL);
	}
	for (i = 0; i < NTHREADS; i++) {
		memset(&arg[i], 0, sizeof(arg[i]));
		arg[i].seed = 17u + (unsigned int)i * 7919u;
		T_EQ_INT(pthread_create(&th[i], NULL, mac_thread, &arg[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		total += arg[i].done;
		bad += arg[i].bad;
	}
	T_EQ_INT(bad, 0);
	T_EQ_INT(total, NTHREADS * (NITER - NITER / 1000));
	for (i = 0; i < NSHARED; i++)
		verify_mac_free(shared_mac[i]);
}

/* ---- v1 ---------------------------------------------------------------- */

static void
test_v1(void)
{
	/* printf '%s' 'bucket-rootfolderGET_Object1700000000' |
	 *   openssl dgst -sha256 -hmac 'secret-key' */
	static const char want[] =
	    "029c2864f09703fabe14292aa6cdb6363866ab457366812486721724407caf49";
	static const char want2[] =
	    "aaa834953c73b5afd6f9fb96799800570893f4bcf5d6cff4a10579f8c6e35806";
	gk_slice root = gk_slice_str("bucket-root"), sub = gk_slice_str(
	    "folder"), op = gk_slice_str("GET_Object"),
	    exp = gk_slice_str("1700000000");
	char hex[GK_MAC_HEX_LEN + 1], buf[80];
	gk_mac *m = mac_of("secret-key"), *k = mac_of("k");
	size_t i;

	T_EQ_INT(verify_v1_sign(m, root, sub, op, exp, hex), 0);
	T_EQ_STR(hex, want);
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp, gk_slice_str(want)), 0);
	/* an empty sub, as for a path "/" */
	T_EQ_INT(verify_v1_sign(k, gk_slice_str("root"), GK_SLICE_NULL,
	    gk_slice_str("GET_Bucket"), gk_slice_str("9999999999"), hex), 0);
	T_EQ_STR(hex, want2);
	/* upper case accepted */
	for (i = 0; i < GK_MAC_HEX_LEN; i++)
		buf[i] = (want[i] >= 'a' && want[i] <= 'f') ?
		    (char)(want[i] - 'a' + 'A') : want[i];
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp,
	    gk_slice_of(buf, GK_MAC_HEX_LEN)), 0);
	/* 63, 65 and 0 digits, non-hex */
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp,
	    gk_slice_of(want, 63)), GK_ERR_INVALID);
	memcpy(buf, want, 64);
	buf[64] = '0';
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp,
	    gk_slice_of(buf, 65)), GK_ERR_INVALID);
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp, GK_SLICE_NULL),
	    GK_ERR_INVALID);
	memcpy(buf, want, 64);
	buf[10] = 'g';
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp,
	    gk_slice_of(buf, 64)), GK_ERR_INVALID);
	buf[10] = '\0';
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp,
	    gk_slice_of(buf, 64)), GK_ERR_INVALID);
	/* one digit changed, first and last */
	memcpy(buf, want, 64);
	buf[0] = '1';
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp,
	    gk_slice_of(buf, 64)), GK_ERR_AUTH);
	memcpy(buf, want, 64);
	buf[63] = '8';
	T_EQ_INT(verify_v1_check(m, root, sub, op, exp,
	    gk_slice_of(buf, 64)), GK_ERR_AUTH);
	/* every field is covered */
	T_EQ_INT(verify_v1_check(m, gk_slice_str("bucket-roo"), sub, op, exp,
	    gk_slice_str(want)), GK_ERR_AUTH);
	T_EQ_INT(verify_v1_check(m, root, gk_slice_str("folder2"), op, exp,
	    gk_slice_str(want)), GK_ERR_AUTH);
	T_EQ_INT(verify_v1_check(m, root, sub, gk_slice_str("PUT_Object"), exp,
	    gk_slice_str(want)), GK_ERR_AUTH);
	T_EQ_INT(verify_v1_check(m, root, sub, op, gk_slice_str("1700000001"),
	    gk_slice_str(want)), GK_ERR_AUTH);
	T_EQ_INT(verify_v1_check(k, root, sub, op, exp, gk_slice_str(want)),
	    GK_ERR_AUTH);
	verify_mac_free(m);
	verify_mac_free(k);
}

/* ---- data URLs --------------------------------------------------------- */

static void
test_data(void)
{
	/* printf '%s\0%s\0%s' gk-data-v1 1700000000 'dir/a b.txt' |
	 *   openssl dgst -sha256 -hmac internal-key-0123456789 */
	static const char want[] =
	    "fba9b4db57bfa11cdb49655e3623b9917fcc8397e44cbeebe28672fc93032e51";
	gk_mac *m = mac_of(INTERNAL_KEY), *other = mac_of("other");
	gk_slice key = gk_slice_str("dir/a b.txt");
	gk_slice exp = gk_slice_str("1700000000");
	char hex[GK_MAC_HEX_LEN + 1], bad[GK_MAC_HEX_LEN + 1];
	int64_t e = -1;

	T_EQ_INT(verify_data_sign(m, key, 1700000000, hex), 0);
	T_EQ_STR(hex, want);
	/* issue 17: bound to a v2 token's cip, under its own domain:
	 * printf '%s\0%s\0%s\0%s' gk-data-cip-v1 1700000000 10.0.0.0/8
	 *   'dir/a b.txt' | openssl dgst -sha256 -hmac ... */
	T_EQ_INT(verify_data_sign_cip(m, key, 1700000000,
	    gk_slice_str("10.0.0.0/8"), bad), 0);
	T_EQ_STR(bad, "a2af8c21a1755619babe96827895e21918c09c00546d788e674080e"
	    "6035484c8");
	T_EQ_INT(verify_data_check_cip(m, key, exp, gk_slice_str("10.0.0.0/8"),
	    gk_slice_str(bad), 1600000000, NULL), 0);
	/* neither form passes for the other, nor for another cip */
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_str(bad), 1600000000,
	    NULL), GK_ERR_AUTH);
	T_EQ_INT(verify_data_check_cip(m, key, exp, gk_slice_str("10.0.0.0/8"),
	    gk_slice_str(hex), 1600000000, NULL), GK_ERR_AUTH);
	T_EQ_INT(verify_data_check_cip(m, key, exp, gk_slice_str("0.0.0.0/0"),
	    gk_slice_str(bad), 1600000000, NULL), GK_ERR_AUTH);
	/* an empty cip is the unbound form */
	T_EQ_INT(verify_data_check_cip(m, key, exp, gk_slice_str(""),
	    gk_slice_str(hex), 1600000000, NULL), 0);
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_str(hex), 1600000000,
	    &e), 0);
	T_EQ_INT(e, 1700000000);
	/* exactly at exp is still valid; a second later it is not */
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_str(hex), 1700000000,
	    NULL), 0);
	e = 0;
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_str(hex), 1700000001,
	    &e), GK_ERR_EXPIRED);
	T_EQ_INT(e, 1700000000);
	/* tampered key, exp, sig; another key */
	e = 5;
	T_EQ_INT(verify_data_check(m, gk_slice_str("dir/a b.txu"), exp,
	    gk_slice_str(hex), 0, &e), GK_ERR_AUTH);
	T_EQ_INT(e, 0);
	T_EQ_INT(verify_data_check(m, gk_slice_of("dir/a b.txt", 10), exp,
	    gk_slice_str(hex), 0, NULL), GK_ERR_AUTH);
	T_EQ_INT(verify_data_check(m, key, gk_slice_str("1700000001"),
	    gk_slice_str(hex), 0, NULL), GK_ERR_AUTH);
	T_EQ_INT(verify_data_check(m, key, gk_slice_str("01700000000"),
	    gk_slice_str(hex), 0, NULL), GK_ERR_AUTH);
	memcpy(bad, hex, sizeof(bad));
	bad[5] = bad[5] == '0' ? '1' : '0';
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_str(bad), 0, NULL),
	    GK_ERR_AUTH);
	T_EQ_INT(verify_data_check(other, key, exp, gk_slice_str(hex), 0,
	    NULL), GK_ERR_AUTH);
	/* malformed exp or sig; expired but forged is AUTH, not EXPIRED */
	T_EQ_INT(verify_data_check(m, key, gk_slice_str("17e8"),
	    gk_slice_str(hex), 0, NULL), GK_ERR_INVALID);
	T_EQ_INT(verify_data_check(m, key, gk_slice_str("-1"),
	    gk_slice_str(hex), 0, NULL), GK_ERR_INVALID);
	T_EQ_INT(verify_data_check(m, key, GK_SLICE_NULL,
	    gk_slice_str(hex), 0, NULL), GK_ERR_INVALID);
	T_EQ_INT(verify_data_check(m, key, gk_slice_str("9223372036854775808"),
	    gk_slice_str(hex), 0, NULL), GK_ERR_INVALID);
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_of(hex, 63), 0,
	    NULL), GK_ERR_INVALID);
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_str("zz"), 0, NULL),
	    GK_ERR_INVALID);
	T_EQ_INT(verify_data_check(m, key, exp, gk_slice_str(bad), INT64_MAX,
	    NULL), GK_ERR_AUTH);
	/* the largest exp, a key with NUL and binary bytes */
	T_EQ_INT(verify_data_sign(m, gk_slice_of("a\0b\xff", 4), INT64_MAX,
	    hex), 0);
	T_EQ_INT(verify_data_check(m, gk_slice_of("a\0b\xff", 4),
	    gk_slice_str("9223372036854775807"), gk_slice_str(hex), INT64_MAX,
	    &e), 0);
	T_EQ_INT(verify_data_check(m, gk_slice_of("a\0b\xfe", 4),
	    gk_slice_str("9223372036854775807"), gk_slice_str(hex), 0,
	    NULL), GK_ERR_AUTH);
	T_EQ_INT(verify_data_sign(m, key, -1, hex), GK_ERR_INVALID);
	T_EQ_STR(hex, "");
	verify_mac_free(m);
	verify_mac_free(other);
}

/* ---- upload policies --------------------------------------------------- */

/* base64 of the JSON, computed with base64(1) */
static const char kat_policy_b64[] =
    "eyJleHBpcmF0aW9uIjoiMjAzMC0wMS0wMVQwMDowMDowMFoiLCJjb25kaXRpb25zIjpb"
    "eyJidWNrZXQiOiJteS1idWNrZXQifSxbImVxIiwiJGtleSIsInVwbG9hZHMvdTEvcGhv"
    "dG8uanBnIl0sWyJjb250ZW50LWxlbmd0aC1yYW5nZSIsMCwxMDQ4NTc2MF0seyJ4LWFt"
    "ei1zZXJ2ZXItc2lkZS1lbmNyeXB0aW9uIjoiQUVTMjU2In1dfQ==";
static const char kat_policy_sig[] =
    "8629438c68e69897a0b4c9ee74e725845d3854e16a514baea24e33841c57b58e";

/* Signs arbitrary JSON text with the policy construction so that the
 * parser behind the signature check can be reached. */
static int
sign_raw(const gk_mac *m, const char *json, gk_buf *b64,
    char sig[GK_MAC_HEX_LEN + 1])
{
	static const uint8_t zero = 0;
	gk_slice parts[3];
	uint8_t mac[GK_MAC_LEN];

	gk_buf_reset(b64);
	if (gk_b64_encode((const uint8_t *)json, strlen(json), b64) != 0)
		return -1;
	parts[0] = gk_slice_str("gk-upload-v1");
	parts[1] = gk_slice_of(&zero, 1);
	parts[2] = gk_slice_of(b64->data, b64->len);
	if (verify_mac_compute(m, parts, 3, mac) != 0)
		return -1;
	gk_hex_encode(mac, GK_MAC_LEN, sig);
	return 0;
}

static int
open_raw(const gk_mac *m, const char *json, int64_t now)
{
	gk_upload_policy p;
	gk_buf b64;
	char sig[GK_MAC_HEX_LEN + 1];
	int r;

	gk_buf_init(&b64, GK_POLICY_MAX_B64 * 2);
	if (sign_raw(m, json, &b64, sig) != 0) {
		gk_buf_release(&b64);
		return 1000;
	}
	r = verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), now, &p);
	if (r == 0 && (p.key == NULL || p.bucket == NULL))
		r = 1001;
	if (r != 0 && (p.key != NULL || p.bucket != NULL))
		r = 1002;
	verify_policy_release(&p);
	gk_buf_release(&b64);
	return r;
}

#define COND_B "{\"bucket\":\"b\"}"
#define COND_K "[\"eq\",\"$key\",\"k\"]"
#define COND_L "[\"content-length-range\",0,5]"
#define COND_S "{\"x-amz-server-side-encryption\":\"AES256\"}"
#define EXP_OK "\"expiration\":\"2030-01-01T00:00:00Z\""
#define POL(exp, conds) "{" exp ",\"conditions\":[" conds "]}"
#define ALL COND_B "," COND_K "," COND_L "," COND_S

static void
test_policy_structure(gk_mac *m)
{
	int64_t now = 1800000000;

	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL), now), 0);
	/* whitespace is fine, member order of the top object too */
	T_EQ_INT(open_raw(m, "{ \"conditions\" : [" ALL "], " EXP_OK " }",
	    now), 0);
	/* duplicate members, anywhere */
	T_EQ_INT(open_raw(m, "{" EXP_OK "," EXP_OK ",\"conditions\":[" ALL
	    "]}", now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, "{" EXP_OK ",\"expiration\":"
	    "\"2040-01-01T00:00:00Z\",\"conditions\":[" ALL "]}", now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, "{\"bucket\":\"b\",\"bucket\":\"c\"},"
	    COND_K "," COND_L "," COND_S), now), GK_ERR_INVALID);
	/* extra or missing members and conditions, other order */
	T_EQ_INT(open_raw(m, "{" EXP_OK ",\"conditions\":[" ALL "],\"x\":1}",
	    now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, "{\"conditions\":[" ALL "]}", now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K "," COND_L), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_S), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_K "," COND_B "," COND_L ","
	    COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, "{\"bucket\":\"b\",\"x\":1},"
	    COND_K "," COND_L "," COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B ",[\"eq\",\"$key\",\"k\",1],"
	    COND_L "," COND_S), now), GK_ERR_INVALID);
	/* wrong literals and types */
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B ",[\"starts-with\",\"$key\","
	    "\"k\"]," COND_L "," COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B ",[\"eq\",\"$Key\",\"k\"],"
	    COND_L "," COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K ","
	    "[\"content-length-range\",1,5]," COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K ","
	    "[\"content-length-range\",0,-1]," COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K ","
	    "[\"content-length-range\",0,5.0]," COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K ","
	    "[\"content-length-range\",0,\"5\"]," COND_S), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K ","
	    "[\"content-length-range\",0,99999999999999999999]," COND_S), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K ","
	    "[\"content-length-range\",0,9223372036854775807]," COND_S), now),
	    0);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K "," COND_L ","
	    "{\"x-amz-server-side-encryption\":\"aws:kms\"}"), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, "{\"bucket\":1}," COND_K "," COND_L
	    "," COND_S), now), GK_ERR_INVALID);
	/* keys: empty, NUL, escaped NUL */
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B ",[\"eq\",\"$key\",\"\"],"
	    COND_L "," COND_S), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B
	    ",[\"eq\",\"$key\",\"a\\u0000b\"]," COND_L "," COND_S), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B
	    ",[\"eq\",\"$key\",\"a\\u00e9\"]," COND_L "," COND_S), now), 0);
	/* expiration formats */
	T_EQ_INT(open_raw(m, POL("\"expiration\":\"2030-02-31T00:00:00Z\"",
	    ALL), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL("\"expiration\":\"2030-01-01T00:00:00.5Z\"",
	    ALL), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL("\"expiration\":\"2030-01-01 00:00:00Z\"",
	    ALL), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL("\"expiration\":\"2030-01-01\"", ALL), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL("\"expiration\":\"1893456000\"", ALL), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL("\"expiration\":1893456000", ALL), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL("\"expiration\":\"2030-01-01T00:00:00z\"",
	    ALL), now), GK_ERR_INVALID);
	/* not JSON, not an object, trailing bytes, nothing */
	T_EQ_INT(open_raw(m, "[1]", now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, "\"x\"", now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL) " x", now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL) "{}", now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, "{", now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, "", now), GK_ERR_INVALID);
	/* the optional conditions: cip, then the single-use id, once each */
#define COND_C "{\"x-gk-cip\":\"10.0.0.1\"}"
#define COND_O "{\"x-gk-once\":\"0a\"}"
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_C), now), 0);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_O), now), 0);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_C "," COND_O), now), 0);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_O "," COND_C), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_O "," COND_O), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_C "," COND_C), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL "," COND_C "," COND_O ","
	    COND_O), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL ",{\"x-gk-once\":\"0a\","
	    "\"x\":1}"), now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL ",{\"x-gk-once\":\"0A\"}"),
	    now), GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL ",{\"x-gk-once\":\"\"}"), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL ",{\"x-gk-once\":1}"), now),
	    GK_ERR_INVALID);
	T_EQ_INT(open_raw(m, POL(EXP_OK, COND_B "," COND_K "," COND_L ","
	    COND_O), now), GK_ERR_INVALID);
#undef COND_C
#undef COND_O
	/* structurally fine but expired */
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL), 1893456001), GK_ERR_EXPIRED);
	T_EQ_INT(open_raw(m, POL(EXP_OK, ALL), 1893456000), 0);
}

static void
test_policy(void)
{
	gk_mac *m = mac_of(INTERNAL_KEY), *other = mac_of("other");
	gk_upload_policy p;
	gk_buf b64, small;
	char sig[GK_MAC_HEX_LEN + 1], bad[GK_MAC_HEX_LEN + 1];
	gk_slice key = gk_slice_str("uploads/u1/photo.jpg");
	uint8_t *t;
	size_t i, n;
	int ok;

	gk_buf_init(&b64, GK_POLICY_MAX_B64);
	T_EQ_INT(verify_policy_make(m, "my-bucket", key, 1893456000, 10485760,
	    &b64, sig), 0);
	T_EQ_STR((char *)b64.data, kat_policy_b64);
	T_EQ_STR(sig, kat_policy_sig);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 1800000000, &p), 0);
	T_EQ_STR(p.bucket, "my-bucket");
	T_EQ_STR(p.key, "uploads/u1/photo.jpg");
	T_EQ_INT(p.expires, 1893456000);
	T_EQ_INT(p.max_bytes, 10485760);
	T_CHECK(p.cip == NULL);
	verify_policy_release(&p);
	verify_policy_release(&p);
	verify_policy_release(NULL);
	/* issue 17: bound to a cip, a fifth condition read back */
	T_EQ_INT(verify_policy_make_cip(m, "my-bucket", key, 1893456000, 10,
	    "2001:db8::/48", &b64, sig), 0);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 1800000000, &p), 0);
	T_EQ_STR(p.cip, "2001:db8::/48");
	verify_policy_release(&p);
	T_EQ_INT(verify_policy_make_cip(m, "my-bucket", key, 1893456000, 10,
	    "", &b64, sig), GK_ERR_INVALID);
	/* a single-use form's id, alone or after the cip, read back */
	T_EQ_INT(verify_policy_make_once(m, "my-bucket", key, 1893456000, 10,
	    NULL, "0123abcd", &b64, sig), 0);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 1800000000, &p), 0);
	T_CHECK(p.cip == NULL);
	T_EQ_STR(p.once, "0123abcd");
	verify_policy_release(&p);
	T_EQ_INT(verify_policy_make_once(m, "my-bucket", key, 1893456000, 10,
	    "10.0.0.0/8", "ff", &b64, sig), 0);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 1800000000, &p), 0);
	T_EQ_STR(p.cip, "10.0.0.0/8");
	T_EQ_STR(p.once, "ff");
	verify_policy_release(&p);
	/* only lower-case hex, 1..64 digits */
	T_EQ_INT(verify_policy_make_once(m, "my-bucket", key, 1893456000, 10,
	    NULL, "", &b64, sig), GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make_once(m, "my-bucket", key, 1893456000, 10,
	    NULL, "AB", &b64, sig), GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make_once(m, "my-bucket", key, 1893456000, 10,
	    NULL, "0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0", &b64, sig), GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make(m, "my-bucket", key, 1893456000, 10485760,
	    &b64, sig), 0);
	/* the upper-case signature is the same signature */
	for (i = 0; i < GK_MAC_HEX_LEN; i++)
		bad[i] = (sig[i] >= 'a' && sig[i] <= 'f') ?
		    (char)(sig[i] - 32) : sig[i];
	bad[GK_MAC_HEX_LEN] = '\0';
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(bad), 1800000000, &p), 0);
	verify_policy_release(&p);
	/* expired (after the time, not at it) */
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 1893456001, &p), GK_ERR_EXPIRED);
	T_CHECK(p.key == NULL && p.bucket == NULL);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 1893456000, &p), 0);
	verify_policy_release(&p);
	/* every single base64 character changed: AUTH */
	t = malloc(b64.len);
	T_CHECK(t != NULL);
	ok = 1;
	for (i = 0; t != NULL && i < b64.len; i++) {
		memcpy(t, b64.data, b64.len);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		if (verify_policy_open(m, gk_slice_of(t, b64.len),
		    gk_slice_str(sig), 0, &p) != GK_ERR_AUTH)
			ok = 0;
	}
	T_CHECK(ok);
	free(t);
	/* truncated policy, signature changed, other key, malformed sig */
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len - 4),
	    gk_slice_str(sig), 0, &p), GK_ERR_AUTH);
	memcpy(bad, sig, sizeof(bad));
	bad[63] = bad[63] == 'e' ? 'f' : 'e';
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(bad), 0, &p), GK_ERR_AUTH);
	T_EQ_INT(verify_policy_open(other, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 0, &p), GK_ERR_AUTH);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_of(sig, 63), 0, &p), GK_ERR_INVALID);
	bad[0] = 'x';
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(bad), 0, &p), GK_ERR_INVALID);
	T_EQ_INT(verify_policy_open(m, GK_SLICE_NULL, gk_slice_str(sig), 0,
	    &p), GK_ERR_AUTH);
	/* make: argument checks */
	T_EQ_INT(verify_policy_make(m, "b", GK_SLICE_NULL, 1, 1, &b64, sig),
	    GK_ERR_INVALID);
	T_CHECK(b64.len == 0 && sig[0] == '\0');
	T_EQ_INT(verify_policy_make(m, "b", gk_slice_of("a\0b", 3), 1, 1,
	    &b64, sig), GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make(m, "b", gk_slice_str("\xc0\xaf"), 1, 1,
	    &b64, sig), GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make(m, NULL, key, 1, 1, &b64, sig),
	    GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make(m, "b", key, -1, 1, &b64, sig),
	    GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make(m, "b", key, 253402300800LL, 1, &b64,
	    sig), GK_ERR_INVALID);
	T_EQ_INT(verify_policy_make(m, "b", key, 1, (uint64_t)INT64_MAX + 1,
	    &b64, sig), GK_ERR_INVALID);
	/* extremes round-trip; escaping in the key survives */
	T_EQ_INT(verify_policy_make(m, "", gk_slice_str("a\"b\\c\n\x01/é"),
	    253402300799LL, (uint64_t)INT64_MAX, &b64, sig), 0);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 253402300799LL, &p), 0);
	T_EQ_STR(p.key, "a\"b\\c\n\x01/é");
	T_EQ_STR(p.bucket, "");
	T_CHECK(p.max_bytes == (uint64_t)INT64_MAX);
	T_EQ_INT(p.expires, 253402300799LL);
	verify_policy_release(&p);
	T_EQ_INT(verify_policy_make(m, "b", key, 0, 0, &b64, sig), 0);
	T_EQ_INT(verify_policy_open(m, gk_slice_of(b64.data, b64.len),
	    gk_slice_str(sig), 0, &p), 0);
	T_EQ_INT(p.expires, 0);
	verify_policy_release(&p);
	/* a too small buffer, too long a key */
	gk_buf_init(&small, 16);
	T_EQ_INT(verify_policy_make(m, "b", key, 1, 1, &small, sig),
	    GK_ERR_TOO_LARGE);
	gk_buf_release(&small);
	n = 13000;
	t = malloc(n);
	T_CHECK(t != NULL);
	if (t != NULL) {
		memset(t, 'k', n);
		T_EQ_INT(verify_policy_make(m, "b", gk_slice_of(t, n), 1, 1,
		    &b64, sig), GK_ERR_TOO_LARGE);
		T_EQ_INT(b64.len, 0);
		free(t);
	}
	/* over the cap: refused before the MAC */
	t = malloc(GK_POLICY_MAX_B64 + 4);
	if (t != NULL) {
		memset(t, 'A', GK_POLICY_MAX_B64 + 4);
		T_EQ_INT(verify_policy_open(m, gk_slice_of(t,
		    GK_POLICY_MAX_B64 + 4), gk_slice_str(sig), 0, &p),
		    GK_ERR_INVALID);
		free(t);
	}
	/* signed but not canonical base64 */
	{
		static const uint8_t zero = 0;
		gk_slice parts[3];
		uint8_t mac[GK_MAC_LEN];
		const char *nb = "e30=";	/* "{}" */
		const char *nc = "e31=";	/* "{}" with stray bits */

		parts[0] = gk_slice_str("gk-upload-v1");
		parts[1] = gk_slice_of(&zero, 1);
		parts[2] = gk_slice_str(nc);
		T_EQ_INT(verify_mac_compute(m, parts, 3, mac), 0);
		gk_hex_encode(mac, GK_MAC_LEN, sig);
		T_EQ_INT(verify_policy_open(m, gk_slice_str(nc),
		    gk_slice_str(sig), 0, &p), GK_ERR_INVALID);
		parts[2] = gk_slice_str(nb);
		T_EQ_INT(verify_mac_compute(m, parts, 3, mac), 0);
		gk_hex_encode(mac, GK_MAC_LEN, sig);
		T_EQ_INT(verify_policy_open(m, gk_slice_str(nb),
		    gk_slice_str(sig), 0, &p), GK_ERR_INVALID);
	}
	test_policy_structure(m);
	gk_buf_release(&b64);
	verify_mac_free(m);
	verify_mac_free(other);
}

int
main(void)
{
	test_mac_kat();
	test_mac_args();
	test_mac_eviction();
	test_mac_no_reuse();
	test_mac_threads();
	test_v1();
	test_data();
	test_policy();
	return T_DONE();
}
