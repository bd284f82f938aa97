/*
 * test_s3.c - SigV4 against AWS's SigV4 test suite (the cases that apply
 * to S3), AWS's documented S3 examples, the POST policy encoder, the
 * ListObjectsV2 parser and the error parser.
 *
 * With arguments it is a signing tool for tests/e2e/test_s3_oracle.py,
 * which compares its output with botocore's byte for byte:
 *   test_s3 presign-get  ENDPOINT BUCKET KEY TTL PATHSTYLE REGION AK SK TOKEN|- AMZDATE [DISPOSITION]
 *   test_s3 presign-post ENDPOINT BUCKET KEY TTL PATHSTYLE REGION AK SK TOKEN|- AMZDATE MAXBYTES
 *   test_s3 sign-headers METHOD URL HEADERS-JSON PAYLOAD-HASH REGION AK SK TOKEN|- AMZDATE
 *   test_s3 bench N      (presign cost, for tests/bench/s3.sh)
 */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"
#include "t.h"

/* tests/data in this repository; the Makefile passes its absolute path */
#ifndef TESTDATA
#define TESTDATA "tests/data"
#endif

static const char *testdata = TESTDATA;

static int64_t
amz_to_unix(const char *amz)
{
	char iso[32];
	int64_t us = 0;

	snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", amz,
	    amz + 4, amz + 6, amz + 9, amz + 11, amz + 13);
	if (gk_time_parse(iso, &us) != 0)
		return -1;
	return us / 1000000;
}

static char *
slurp(const char *path)
{
	gk_buf b;

	if (gk_file_read(path, 1u << 20, &b) != 0)
		return NULL;
	if (gk_buf_append(&b, "", 0) != 0) {
		gk_buf_release(&b);
		return NULL;
	}
	return gk_buf_detach(&b, NULL);
}

/* ---- the generic suite ----------------------------------------------- */

static const char *const not_for_s3[] = {
	"get-relative", "get-relative-relative", "get-slash",
	"get-slash-dot-slash", "get-slash-pointless-dot", "get-slashes",
	"post-sts-header-after",
};

#define SUITE_TOKEN_SESSION \
	"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

static int suite_ran;

static void
suite_case(const char *dir, const char *name, s3_signer *sg,
    const s3_creds *cr)
{
	char path[1024], sig[S3_SIG_HEX_LEN + 1], phash[65];
	char *req, *creq_want, *sts_want, *authz_want, *p, *line, *nl;
	s3_header hs[32];
	gk_buf val[32], creq, sts, sh, enc, authz, scope;
	size_t n = 0, i;
	char *body = NULL, *method, *target, *q, *proto;
	s3_canon_in in;

	if (snprintf(path, sizeof(path), "%s/%s.req", dir, name) >= (int)sizeof(path))
		return;
	req = slurp(path);
	if (snprintf(path, sizeof(path), "%s/%s.creq", dir, name) >= (int)sizeof(path))
		return;
	creq_want = slurp(path);
	if (snprintf(path, sizeof(path), "%s/%s.sts", dir, name) >= (int)sizeof(path))
		return;
	sts_want = slurp(path);
	if (snprintf(path, sizeof(path), "%s/%s.authz", dir, name) >= (int)sizeof(path))
		return;
	authz_want = slurp(path);
	T_CHECK(req && creq_want && sts_want && authz_want);
	if (!(req && creq_want && sts_want && authz_want))
		goto done;
	suite_ran++;
	/* request line: METHOD SP TARGET SP HTTP/1.1 (target may hold
	 * spaces) */
	nl = strchr(req, '\n');
	if (nl != NULL)
		*nl = '\0';
	method = req;
	target = strchr(req, ' ');
	*target++ = '\0';
	proto = strstr(target, " HTTP/");
	*proto = '\0';
	p = nl ? nl + 1 : NULL;
	while (p != NULL && *p != '\0') {
		line = p;
		nl = strchr(p, '\n');
		if (nl != NULL) {
			*nl = '\0';
			p = nl + 1;
		} else {
			p = NULL;
		}
		if (*line == '\0') {	/* blank line: the body follows */
			body = p;
			break;
		}
		if ((*line == ' ' || *line == '\t') && n > 0) {
			/* folded line: continues the previous value */
			T_CHECK(gk_buf_append(&val[n - 1], " ", 1) == 0);
			T_CHECK(gk_buf_append_str(&val[n - 1], line) == 0);
			hs[n - 1].value = gk_slice_of(val[n - 1].data,
			    val[n - 1].len);
			continue;
		}
		char *colon = strchr(line, ':');

		T_CHECK(colon != NULL && n < 31);
		if (colon == NULL || n >= 31)
			break;
		gk_buf_init(&val[n], 8192);
		T_CHECK(gk_buf_append_str(&val[n], colon + 1) == 0);
		hs[n].name = gk_slice_of(line, (size_t)(colon - line));
		hs[n].value = gk_slice_of(val[n].data, val[n].len);
		n++;
	}
	if (strcmp(name, "get-vanilla-with-session-token") == 0) {
		gk_buf_init(&val[n], 8192);
		T_CHECK(gk_buf_append_str(&val[n], SUITE_TOKEN_SESSION) == 0);
		hs[n].name = gk_slice_str("X-Amz-Security-Token");
		hs[n].value = gk_slice_of(val[n].data, val[n].len);
		n++;
	}
	{
		uint8_t d[32];
		extern unsigned char *SHA256(const unsigned char *, size_t,
		    unsigned char *);

		SHA256((const unsigned char *)(body ? body : ""),
		    body ? strlen(body) : 0, d);
		gk_hex_encode(d, 32, phash);
	}
	q = strchr(target, '?');
	if (q != NULL)
		*q++ = '\0';
	gk_buf_init(&enc, 8192);
	gk_buf_init(&creq, 65536);
	gk_buf_init(&sts, 8192);
	gk_buf_init(&sh, 8192);
	gk_buf_init(&authz, 8192);
	gk_buf_init(&scope, 8192);
	/* S3 rule: the (decoded) path is UriEncoded once, '/' kept */
	T_CHECK(gk_pct_encode(gk_slice_str(target), 1, &enc) == 0);
	in.method = method;
	in.path = gk_slice_of(enc.data, enc.len);
	in.query = gk_slice_str(q);
	in.headers = hs;
	in.n_headers = n;
	in.payload_hash = phash;
	T_EQ_INT(s3_canonical_request(&in, &creq, &sh), 0);
	if (creq.data == NULL || strcmp((char *)creq.data, creq_want) != 0) {
		fprintf(stderr, "suite %s: canonical request differs:\n%s\n"
		    "want:\n%s\n", name, creq.data ? (char *)creq.data : "",
		    creq_want);
		t_fail++;
		goto rel;
	}
	t_pass++;
	T_CHECK(s3_signer_scope(sg, "20150830T123600Z", &scope) == 0);
	T_CHECK(s3_string_to_sign("20150830T123600Z", (char *)scope.data,
	    gk_slice_of(creq.data, creq.len), &sts) == 0);
	T_EQ_STR((char *)sts.data, sts_want);
	T_CHECK(s3_signer_sign(sg, cr, "20150830T123600Z",
	    gk_slice_of(sts.data, sts.len), sig) == 0);
	T_CHECK(gk_buf_printf(&authz, "AWS4-HMAC-SHA256 Credential=%s/%s, "
	    "SignedHeaders=%s, Signature=%s", cr->access_key_id, scope.data,
	    sh.data, sig) == 0);
	if (strcmp((char *)authz.data, authz_want) != 0)
		fprintf(stderr, "suite %s: authorization differs\n", name);
	T_EQ_STR((char *)authz.data, authz_want);
rel:
	gk_buf_release(&enc);
	gk_buf_release(&creq);
	gk_buf_release(&sts);
	gk_buf_release(&sh);
	gk_buf_release(&authz);
	gk_buf_release(&scope);
	for (i = 0; i < n; i++)
		gk_buf_release(&val[i]);
done:
	free(req);
	free(creq_want);
	free(sts_want);
	free(authz_want);
}

static void
suite_dir(const char *dir, s3_signer *sg, const s3_creds *cr)
{
	char path[1024], probe[1100];
	struct dirent *de;
	DIR *d;
	size_t i;
	FILE *f;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int skip = 0;

		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < GK_ARRAY_LEN(not_for_s3); i++)
			skip |= strcmp(de->d_name, not_for_s3[i]) == 0;
		if (skip)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			return;
		if (snprintf(probe, sizeof(probe), "%s/%s.req", path, de->d_name) >= (int)sizeof(probe))
			return;
		if ((f = fopen(probe, "r")) != NULL) {
			fclose(f);
			suite_case(path, de->d_name, sg, cr);
		} else {
			suite_dir(path, sg, cr);	/* a group folder */
		}
	}
	closedir(d);
}

static void
test_suite(void)
{
	char dir[512];
	s3_signer *sg;
	s3_creds cr = { "AKIDEXAMPLE",
		"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, 0, 7 };

	snprintf(dir, sizeof(dir), "%s/sigv4-suite", testdata);
	T_EQ_INT(s3_signer_new("us-east-1", "service", &sg), 0);
	suite_dir(dir, sg, &cr);
	/* 34 cases minus the 7 that do not apply to S3 */
	T_EQ_INT(suite_ran, 27);
	s3_signer_free(sg);
}

/* ---- AWS's S3 examples ------------------------------------------------ */

static void
test_examples(void)
{
	char path[512], sig[S3_SIG_HEX_LEN + 1];
	json_error_t je;
	json_t *all, *c;
	size_t i, j, ran = 0;

	if (snprintf(path, sizeof(path), "%s/s3-sigv4-examples.json", testdata) >= (int)sizeof(path))
		return;
	all = json_load_file(path, 0, &je);
	T_CHECK(all != NULL && json_is_array(all));
	if (all == NULL)
		return;
	json_array_foreach(all, i, c) {
		const char *kind = json_string_value(json_object_get(c, "kind"));
		const char *amz = json_string_value(json_object_get(c,
		    "amz_date"));
		json_t *cj = json_object_get(c, "credentials");
		json_t *exp = json_object_get(c, "expected");
		s3_creds cr = { (char *)json_string_value(json_object_get(cj,
		    "access_key_id")), (char *)json_string_value(
		    json_object_get(cj, "secret_access_key")), NULL, 0, 0 };
		s3_signer *sg = NULL;
		gk_buf a, b, sc;

		gk_buf_init(&a, 65536);
		gk_buf_init(&b, 65536);
		gk_buf_init(&sc, 1024);
		T_EQ_INT(s3_signer_new(json_string_value(json_object_get(c,
		    "region")), "s3", &sg), 0);
		if (strcmp(kind, "header-auth") == 0) {
			json_t *hj = json_object_get(c, "headers"), *h;
			s3_header hs[16];
			s3_canon_in in;

			json_array_foreach(hj, j, h) {
				hs[j].name = gk_slice_str(json_string_value(
				    json_array_get(h, 0)));
				hs[j].value = gk_slice_str(json_string_value(
				    json_array_get(h, 1)));
			}
			in.method = json_string_value(json_object_get(c,
			    "method"));
			in.path = gk_slice_str(json_string_value(
			    json_object_get(c, "path")));
			in.query = gk_slice_str(json_string_value(
			    json_object_get(c, "query")));
			in.headers = hs;
			in.n_headers = json_array_size(hj);
			in.payload_hash = json_string_value(json_object_get(c,
			    "payload_sha256"));
			T_EQ_INT(s3_canonical_request(&in, &a, NULL), 0);
			T_EQ_STR((char *)a.data, json_string_value(
			    json_object_get(exp, "canonical_request")));
			T_CHECK(s3_signer_scope(sg, amz, &sc) == 0);
			T_CHECK(s3_string_to_sign(amz, (char *)sc.data,
			    gk_slice_of(a.data, a.len), &b) == 0);
			T_EQ_STR((char *)b.data, json_string_value(
			    json_object_get(exp, "string_to_sign")));
			T_CHECK(s3_signer_sign(sg, &cr, amz, gk_slice_of(
			    b.data, b.len), sig) == 0);
			T_EQ_STR(sig, json_string_value(json_object_get(exp,
			    "signature")));
			ran++;
		} else if (strcmp(kind, "presigned-url") == 0) {
			s3_target *t = NULL;

			T_EQ_INT(s3_target_new("https://s3.amazonaws.com",
			    json_string_value(json_object_get(c, "bucket")),
			    "us-east-1", 0, &t), 0);
			T_EQ_INT(s3_presign_get(t, &cr, gk_slice_str(
			    json_string_value(json_object_get(c, "key"))),
			    amz_to_unix(amz), (unsigned)json_integer_value(
			    json_object_get(c, "expires")), GK_SLICE_NULL,
			    &a), 0);
			/* AWS's page orders X-Amz-Expires before
			 * X-Amz-SignedHeaders, botocore after: compare the
			 * signature, which covers the sorted query */
			T_CHECK(a.data != NULL && strstr((char *)a.data,
			    json_string_value(json_object_get(exp,
			    "signature"))) != NULL);
			T_CHECK(a.data != NULL && strncmp((char *)a.data,
			    "https://examplebucket.s3.amazonaws.com/test.txt?",
			    48) == 0);
			s3_target_free(t);
			ran++;
		} else {
			const char *pol = json_string_value(json_object_get(c,
			    "policy_base64"));

			T_CHECK(s3_signer_sign(sg, &cr, amz, gk_slice_str(pol),
			    sig) == 0);
			T_EQ_STR(sig, json_string_value(json_object_get(exp,
			    "signature")));
			ran++;
		}
		s3_signer_free(sg);
		gk_buf_release(&a);
		gk_buf_release(&b);
		gk_buf_release(&sc);
	}
	T_EQ_INT(ran, 6);
	json_decref(all);
}

/* ---- the signing key cache ------------------------------------------- */

static void
test_cache(void)
{
	s3_signer *sg;
	s3_creds a = { "AK", "secret-one", NULL, 0, 1 };
	s3_creds b = { "AK", "secret-two", NULL, 0, 2 };
	char s1[65], s2[65], s3[65], s4[65];

	T_EQ_INT(s3_signer_new("us-east-1", "s3", &sg), 0);
	T_EQ_INT(s3_signer_sign(sg, &a, "20261123T000000Z",
	    gk_slice_str("m"), s1), 0);
	T_EQ_INT(s3_signer_sign(sg, &a, "20261123T000000Z",
	    gk_slice_str("m"), s2), 0);
	T_EQ_STR(s1, s2);
	/* new keys (another gen) and another day must not reuse it */
	T_EQ_INT(s3_signer_sign(sg, &b, "20261123T000000Z",
	    gk_slice_str("m"), s3), 0);
	T_CHECK(strcmp(s1, s3) != 0);
	T_EQ_INT(s3_signer_sign(sg, &a, "20261124T000000Z",
	    gk_slice_str("m"), s4), 0);
	T_CHECK(strcmp(s1, s4) != 0);
	s3_signer_free(sg);
}

/* ---- addressing and policies ----------------------------------------- */

static void
test_urls(void)
{
	s3_target *t;
	gk_buf u;
	s3_creds cr = { "AK", "SK", NULL, 0, 0 };

	gk_buf_init(&u, 65536);
	T_EQ_INT(s3_target_new("https://s3.eu-west-1.amazonaws.com:443",
	    "my-bucket", "eu-west-1", 0, &t), 0);
	T_EQ_INT(s3_object_url(t, gk_slice_str("a b/é+~"), &u, NULL, NULL), 0);
	T_EQ_STR((char *)u.data,
	    "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/%C3%A9%2B~");
	s3_target_free(t);
	gk_buf_reset(&u);
	T_EQ_INT(s3_target_new("http://127.0.0.1:7480", "bk", "us-east-1", 0,
	    &t), 0);
	T_EQ_INT(s3_object_url(t, gk_slice_str("k"), &u, NULL, NULL), 0);
	T_EQ_STR((char *)u.data, "http://127.0.0.1:7480/bk/k");
	gk_buf_reset(&u);
	/* S3 would expand ${filename} in a POST key */
	T_EQ_INT(s3_presign_post(t, &cr, gk_slice_str("a/${filename}"), 10,
	    1700000000, 60, &u), GK_ERR_INVALID);
	s3_target_free(t);
	T_CHECK(s3_target_new("ftp://x", "b", "r", 0, &t) != 0);
	T_CHECK(s3_target_new("http://h/path", "b", "r", 0, &t) != 0);
	gk_buf_release(&u);
}

/* ---- XML -------------------------------------------------------------- */

struct seen {
	char keys[8][64];
	uint64_t sizes[8];
	int64_t mtimes[8];
	int n;
};

static int
on_key(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct seen *s = arg;

	if (s->n < 8 && key.len < 64) {
		memcpy(s->keys[s->n], key.p, key.len);
		s->keys[s->n][key.len] = '\0';
		s->sizes[s->n] = size;
		s->mtimes[s->n] = mtime;
	}
	s->n++;
	return 0;
}

static void
test_xml(void)
{
	static const char page[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	    "<Name>b</Name><Prefix>a/</Prefix><KeyCount>2</KeyCount>"
	    "<IsTruncated>true</IsTruncated>"
	    "<NextContinuationToken>tok&amp;1</NextContinuationToken>"
	    "<Contents><Key>a/x &amp; y &lt;&#233;&gt;</Key>"
	    "<LastModified>2026-11-23T10:00:00.000Z</LastModified>"
	    "<ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>"
	    "<Contents><Key>a/\xe6\x97\xa5\xe6\x9c\xac</Key>"
	    "<LastModified>2026-11-23T10:00:01.000Z</LastModified>"
	    "<Size>0</Size></Contents></ListBucketResult>";
	static const char err[] = "<?xml version=\"1.0\"?><Error>"
	    "<Code>NoSuchKey</Code><Message>gone</Message></Error>";
	struct seen s;
	gk_buf next, code, msg;
	int trunc = 0;

	memset(&s, 0, sizeof(s));
	gk_buf_init(&next, 4096);
	gk_buf_init(&code, 256);
	gk_buf_init(&msg, 1024);
	T_EQ_INT(s3_list_parse(gk_slice_str(page), on_key, &s, &trunc, &next),
	    0);
	T_EQ_INT(s.n, 2);
	T_EQ_STR(s.keys[0], "a/x & y <\xc3\xa9>");
	T_EQ_INT(s.sizes[0], 12);
	T_EQ_INT(s.mtimes[1], s.mtimes[0] + 1);
	T_EQ_STR(s.keys[1], "a/\xe6\x97\xa5\xe6\x9c\xac");
	T_EQ_INT(trunc, 1);
	T_EQ_STR((char *)next.data, "tok&1");
	T_CHECK(s3_list_parse(gk_slice_str("<ListBucketResult><Contents>"),
	    on_key, &s, &trunc, &next) != 0);
	T_CHECK(s3_list_parse(gk_slice_str("<Error/>"), on_key, &s, &trunc,
	    &next) != 0);
	T_EQ_INT(s3_error_parse(gk_slice_str(err), &code, &msg), 0);
	T_EQ_STR((char *)code.data, "NoSuchKey");
	T_EQ_STR((char *)msg.data, "gone");
	gk_buf_release(&next);
	gk_buf_release(&code);
	gk_buf_release(&msg);
}

/* ---- the tool mode ---------------------------------------------------- */

/* ns per presigned GET URL and per POST form, signing key cached */
static int
bench(unsigned long n)
{
	s3_target *t = NULL;
	s3_creds cr = { "AKIAIOSFODNN7EXAMPLE",
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL, 0, 1 };
	gk_buf out;
	char key[64];
	unsigned long i;
	int64_t t0, t1, t2, now = gk_now_s();

	if (n == 0 || s3_target_new("https://s3.eu-west-1.amazonaws.com",
	    "bench-bucket", "eu-west-1", 0, &t) != 0)
		return 1;
	gk_buf_init(&out, 65536);
	t0 = gk_mono_us();
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "app/d%lu/obj-%lu.bin", i, i);
		gk_buf_reset(&out);
		if (s3_presign_get(t, &cr, gk_slice_str(key), now, 60,
		    GK_SLICE_NULL, &out) != 0)
			return 1;
	}
	t1 = gk_mono_us();
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "uploads/d%lu/obj-%lu.bin", i, i);
		gk_buf_reset(&out);
		if (s3_presign_post(t, &cr, gk_slice_str(key), 104857600, now,
		    60, &out) != 0)
			return 1;
	}
	t2 = gk_mono_us();
	printf("presign_get_ns %.0f\npresign_post_ns %.0f\n",
	    (double)(t1 - t0) * 1000.0 / (double)n,
	    (double)(t2 - t1) * 1000.0 / (double)n);
	gk_buf_release(&out);
	s3_target_free(t);
	return 0;
}

static int
tool(int argc, char **argv)
{
	gk_buf out;
	s3_target *t = NULL;
	s3_creds cr;
	int r = 2;

	if (strcmp(argv[1], "bench") == 0 && argc == 3)
		return bench(strtoul(argv[2], NULL, 10));
	gk_buf_init(&out, 1u << 20);
	if ((strcmp(argv[1], "presign-get") == 0 && (argc == 12 ||
	    argc == 13)) ||
	    (strcmp(argv[1], "presign-post") == 0 && argc == 13)) {
		cr.access_key_id = argv[8];
		cr.secret_key = argv[9];
		cr.session_token = strcmp(argv[10], "-") ? argv[10] : NULL;
		cr.expires = 0;
		cr.gen = 0;
		if (s3_target_new(argv[2], argv[3], argv[7],
		    strcmp(argv[6], "1") == 0, &t) != 0)
			goto out;
		if (strcmp(argv[1], "presign-get") == 0)
			r = s3_presign_get(t, &cr, gk_slice_str(argv[4]),
			    amz_to_unix(argv[11]), (unsigned)strtoul(argv[5],
			    NULL, 10), argc == 13 ? gk_slice_str(argv[12]) :
			    GK_SLICE_NULL, &out);
		else
			r = s3_presign_post(t, &cr, gk_slice_str(argv[4]),
			    strtoull(argv[12], NULL, 10),
			    amz_to_unix(argv[11]), (unsigned)strtoul(argv[5],
			    NULL, 10), &out);
	} else if (strcmp(argv[1], "sign-headers") == 0 && argc == 11) {
		/* URL: scheme://host/path?query */
		char *url = argv[3], *hs = strstr(url, "://"), *path, *q;
		char ep[512];
		json_t *hj = json_loads(argv[4], 0, NULL), *v;
		s3_header h[32];
		const char *k;
		size_t n = 0;

		if (hs == NULL || hj == NULL)
			goto out;
		path = strchr(hs + 3, '/');
		snprintf(ep, sizeof(ep), "%.*s", (int)(path - url), url);
		q = strchr(path, '?');
		cr.access_key_id = argv[7];
		cr.secret_key = argv[8];
		cr.session_token = strcmp(argv[9], "-") ? argv[9] : NULL;
		cr.expires = 0;
		cr.gen = 0;
		json_object_foreach(hj, k, v) {
			if (n < 32) {
				h[n].name = gk_slice_str(k);
				h[n++].value = gk_slice_str(
				    json_string_value(v));
			}
		}
		if (s3_target_new(ep, "unused", argv[6], 1, &t) != 0) {
			json_decref(hj);
			goto out;
		}
		r = s3_sign_headers(t, &cr, argv[2], gk_slice_of(path,
		    q ? (size_t)(q - path) : strlen(path)),
		    gk_slice_str(q ? q + 1 : ""), h, n, argv[5],
		    amz_to_unix(argv[10]), &out);
		json_decref(hj);
	}
out:
	if (r == 0)
		printf("%s\n", (char *)out.data);
	else
		fprintf(stderr, "test_s3: %s\n", r == 2 ? "usage" :
		    gk_err_str(r));
	s3_target_free(t);
	gk_buf_release(&out);
	return r == 0 ? 0 : 1;
}

/* The vectors are part of the repository: missing ones are a loud failure
 * that says where they were looked for, never a silent zero-case pass. */
static int
have_testdata(void)
{
	const char *need[] = { "sigv4-suite/get-vanilla/get-vanilla.req",
		"s3-sigv4-examples.json" };
	char path[1024];
	size_t i;
	FILE *f;

	for (i = 0; i < GK_ARRAY_LEN(need); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", testdata, need[i]) >=
		    (int)sizeof(path) || (f = fopen(path, "r")) == NULL) {
			fprintf(stderr, "test_s3: test vectors missing: %s "
			    "(they live in the repository's tests/data; "
			    "set GK_TESTDATA to that folder)\n", path);
			printf("%s: 0 passed, 1 failed\n", __FILE__);
			return 0;
		}
		fclose(f);
	}
	return 1;
}

int
main(int argc, char **argv)
{
	const char *td = getenv("GK_TESTDATA");

	if (argc > 1)
		return tool(argc, argv);
	if (td != NULL)
		testdata = td;
	if (!have_testdata())
		return 1;
	test_suite();
	test_examples();
	test_cache();
	test_urls();
	test_xml();
	return T_DONE();
}
