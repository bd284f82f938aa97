/*
 * test_share.c - the share module's parsers and helpers: safe paths, the
 * signed envelope, the manifest and config JSON, destination URLs.
 */
#include <stdlib.h>
#include <string.h>

#include "share/share.h"
#include "share/share_int.h"
#include "t.h"

static void
test_paths(void)
{
	static const char *good[] = { "a", "a b/c.txt", "caf\xc3\xa9/x",
	    "d/e/f/g", "..a", "a..", ".hidden", "a/.b",
	    "nbsp\xc2\xa0x", "\xc2\xbd",
	    /* the neighbours of the bidi characters are fine */
	    "zwj\xe2\x80\x8d", "dash\xe2\x80\x90", "nnbsp\xe2\x80\xaf",
	    "wj\xe2\x81\xa0", "\xe2\x81\xaa", "arabic\xd8\x9b\xd8\x9f" };
	static const char *bad[] = { "", "/etc/passwd", "..", "../x", "a/..",
	    "a/../b", ".", "./a", "a/./b", "a//b", "a/", "back\\slash",
	    "nl\nx", "\xff\xfe", "tab\tx", "esc\x1b[31m", "del\x7f",
	    "csi\xc2\x9b" "31m", "osc\xc2\x9d" "0;t\xc2\x9c", "c1\xc2\x80",
	    /* bidi: RLO in "invoice<RLO>fdp.exe" shows "invoiceexe.pdf" */
	    "invoice\xe2\x80\xae" "fdp.exe", "lre\xe2\x80\xaa", "rle\xe2\x80\xab",
	    "pdf\xe2\x80\xac", "lro\xe2\x80\xad", "d/lri\xe2\x81\xa6",
	    "rli\xe2\x81\xa7", "fsi\xe2\x81\xa8", "pdi\xe2\x81\xa9",
	    "lrm\xe2\x80\x8e", "rlm\xe2\x80\x8f", "alm\xd8\x9c",
	    /* a line of output would end there */
	    "ls\xe2\x80\xa8x", "d/ps\xe2\x80\xa9", "nel\xc2\x85x" };
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(good); i++)
		T_CHECK(share_path_ok(gk_slice_str(good[i])));
	for (i = 0; i < GK_ARRAY_LEN(bad); i++)
		T_CHECK(!share_path_ok(gk_slice_str(bad[i])));
	T_CHECK(!share_path_ok(gk_slice_of("a\0b", 3)));
	{
		char t[] = "a\x1b]0;x\x07 caf\xc3\xa9 \xc2\x9b\xc2\xa0\xff\x7f.";

		share_text_safe(t);
		T_EQ_STR(t, "a?]0;x? caf\xc3\xa9 ?\xc2\xa0??.");
	}
	{
		char t[] = "invoice\xe2\x80\xae" "fdp.exe \xe2\x81\xa6x\xe2\x81\xa9"
		    "\xd8\x9c\xe2\x80\x8f";

		share_text_safe(t);
		T_EQ_STR(t, "invoice?fdp.exe ?x???");
	}
	{
		char t[] = "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xc2\x85" "d "
		    "\xe2\x80\x94";

		share_text_safe(t);
		T_EQ_STR(t, "a?b?c?d \xe2\x80\x94");
	}
	T_CHECK(share_id_ok("20261130-171328-a1b2c3d4e5f6"));
	T_CHECK(!share_id_ok("../x"));
	T_CHECK(!share_id_ok(""));
	T_CHECK(!share_id_ok("UPPER"));
}

static void
test_envelope(void)
{
	age_identity a, b;
	uint8_t pub[32], pa[32];
	gk_buf env;
	gk_slice body;
	const char *msg = "{\"x\":1}";

	T_EQ_INT(age_identity_generate(&a), 0);
	T_EQ_INT(age_identity_generate(&b), 0);
	T_EQ_INT(share_sign_pub(&a, pa), 0);
	gk_buf_init(&env, 1 << 20);
	T_EQ_INT(share_envelope_sign("manifest", &a, gk_slice_str(msg), &env),
	    0);
	T_EQ_INT(share_envelope_open("manifest", gk_slice_of(env.data,
	    env.len), pub, &body), 0);
	T_CHECK(memcmp(pub, pa, 32) == 0);
	T_CHECK(body.len == strlen(msg) && memcmp(body.p, msg, body.len) == 0);
	/* another kind, a flipped body byte, a truncated envelope */
	T_EQ_INT(share_envelope_open("config", gk_slice_of(env.data, env.len),
	    pub, &body), GK_ERR_INVALID);
	env.data[env.len - 2] ^= 1;
	T_EQ_INT(share_envelope_open("manifest", gk_slice_of(env.data,
	    env.len), pub, &body), GK_ERR_AUTH);
	env.data[env.len - 2] ^= 1;
	T_CHECK(share_envelope_open("manifest", gk_slice_of(env.data, 40),
	    pub, &body) != 0);
	/* in place: the same answers, the body where it was */
	{
		uint8_t *cp = malloc(env.len);

		T_CHECK(cp != NULL);
		memcpy(cp, env.data, env.len);
		memset(pub, 0, sizeof(pub));
		T_EQ_INT(share_envelope_open_inplace("manifest", cp, env.len,
		    pub, &body), 0);
		T_CHECK(memcmp(pub, pa, 32) == 0);
		T_CHECK(body.p == cp + env.len - strlen(msg) &&
		    body.len == strlen(msg) &&
		    memcmp(body.p, msg, body.len) == 0);
		memcpy(cp, env.data, env.len);
		cp[env.len - 2] ^= 1;
		T_EQ_INT(share_envelope_open_inplace("manifest", cp, env.len,
		    pub, &body), GK_ERR_AUTH);
		memcpy(cp, env.data, env.len);
		T_EQ_INT(share_envelope_open_inplace("config", cp, env.len, pub,
		    &body), GK_ERR_INVALID);
		memcpy(cp, env.data, env.len);
		T_CHECK(share_envelope_open_inplace("manifest", cp, 40, pub,
		    &body) != 0);
		free(cp);
	}
	gk_buf_release(&env);
}

static void
test_manifest(void)
{
	share_manifest m, p;
	share_file f[2];
	gk_buf js;
	char err[256];
	const char *dup;

	memset(&m, 0, sizeof(m));
	memset(f, 0, sizeof(f));
	f[0].path = (char *)"a b/\xc3\xa9.txt";
	f[0].size = 5;
	f[0].mode = 0640;
	f[0].mtime = 1700000000;
	f[0].mtime_ns = 123;
	f[0].sha256[0] = 0xab;
	snprintf(f[0].object, sizeof(f[0].object), "%s",
	    "files/0123456789abcdef0123456789abcdef.age");
	f[0].zstd = 1;
	f[1] = f[0];
	f[1].path = (char *)"z";
	f[1].zstd = 0;
	m.id = (char *)"20261130-000000-abc";
	m.sender = (char *)"s\"q";
	m.organisation = (char *)"Org";
	m.created = 5;
	m.files = f;
	m.n = 2;
	gk_buf_init(&js, 1 << 20);
	T_EQ_INT(share_manifest_json(&m, &js), 0);
	T_EQ_INT(share_manifest_parse(gk_slice_of(js.data, js.len), &p, err,
	    sizeof(err)), 0);
	T_EQ_INT(p.n, 2);
	T_EQ_STR(p.files[0].path, f[0].path);
	T_EQ_STR(p.sender, "s\"q");
	T_EQ_INT(p.files[0].mode, 0640);
	T_EQ_INT(p.files[0].mtime_ns, 123);
	T_EQ_INT(p.files[0].sha256[0], 0xab);
	T_EQ_INT(p.files[0].zstd, 1);
	T_EQ_INT(p.files[1].zstd, 0);
	share_manifest_release(&p);
	/* the same path twice, an unsafe path, an unknown field */
	f[1].path = f[0].path;
	gk_buf_reset(&js);
	T_EQ_INT(share_manifest_json(&m, &js), 0);
	T_EQ_INT(share_manifest_parse(gk_slice_of(js.data, js.len), &p, err,
	    sizeof(err)), GK_ERR_INVALID);
	T_CHECK(strstr(err, "twice") != NULL);
	f[1].path = (char *)"../x";
	gk_buf_reset(&js);
	T_EQ_INT(share_manifest_json(&m, &js), 0);
	T_EQ_INT(share_manifest_parse(gk_slice_of(js.data, js.len), &p, err,
	    sizeof(err)), GK_ERR_INVALID);
	T_CHECK(strstr(err, "unsafe path") != NULL);
	/* a file that is also a directory of another, not next to it in
	 * sorted order ("a" < "a-b" < "a/b/c") */
	{
		share_file g[3];

		g[0] = g[1] = g[2] = f[0];
		g[0].path = (char *)"a/b/c";
		g[1].path = (char *)"a-b";
		g[2].path = (char *)"a";
		m.files = g;
		m.n = 3;
		gk_buf_reset(&js);
		T_EQ_INT(share_manifest_json(&m, &js), 0);
		T_EQ_INT(share_manifest_parse(gk_slice_of(js.data, js.len), &p,
		    err, sizeof(err)), GK_ERR_INVALID);
		T_CHECK(strstr(err, "both as a file and as a directory") !=
		    NULL);
		g[2].path = (char *)"a/b/c/d";
		gk_buf_reset(&js);
		T_EQ_INT(share_manifest_json(&m, &js), 0);
		T_EQ_INT(share_manifest_parse(gk_slice_of(js.data, js.len), &p,
		    err, sizeof(err)), GK_ERR_INVALID);
		g[2].path = (char *)"a/b/cd";	/* a sibling, not a child */
		gk_buf_reset(&js);
		T_EQ_INT(share_manifest_json(&m, &js), 0);
		T_EQ_INT(share_manifest_parse(gk_slice_of(js.data, js.len), &p,
		    err, sizeof(err)), 0);
		share_manifest_release(&p);
		m.files = f;
		m.n = 2;
	}
	dup = "{\"version\":1,\"share\":\"a\",\"sender\":\"\",\"organisation\":"
	    "\"\",\"created\":1,\"files\":[],\"extra\":1}";
	T_EQ_INT(share_manifest_parse(gk_slice_str(dup), &p, err, sizeof(err)),
	    GK_ERR_INVALID);
	dup = "{\"version\":1,\"share\":\"a\",\"sender\":\"\",\"organisation\":"
	    "\"\",\"created\":1,\"files\":[{\"path\":\"a\\u0000b\",\"size\":1,"
	    "\"mode\":1,\"mtime\":1,\"mtime_ns\":0,\"sha256\":\"" 
	    "00000000000000000000000000000000000000000000000000000000000000"
	    "00\",\"object\":\"files/0123456789abcdef0123456789abcdef.age\","
	    "\"encoding\":\"none\"}]}";
	T_EQ_INT(share_manifest_parse(gk_slice_str(dup), &p, err, sizeof(err)),
	    GK_ERR_INVALID);
	gk_buf_release(&js);
}

/* The manifest parser reads "files" one entry at a time: the JSON around
 * it must still be judged as a whole. */
static void
test_manifest_split(void)
{
#define E "{\"path\":\"a\",\"size\":1,\"mode\":1,\"mtime\":1," \
	"\"mtime_ns\":0,\"sha256\":\"" \
	"0000000000000000000000000000000000000000000000000000000000000000" \
	"\",\"object\":\"files/0123456789abcdef0123456789abcdef.age\"," \
	"\"encoding\":\"none\"}"
#define E2 "{\"path\":\"b\",\"size\":2,\"mode\":1,\"mtime\":1," \
	"\"mtime_ns\":0,\"sha256\":\"" \
	"0000000000000000000000000000000000000000000000000000000000000000" \
	"\",\"object\":\"files/0123456789abcdef0123456789abcdef.age\"," \
	"\"encoding\":\"zstd\"}"
#define TOP "\"version\":1,\"share\":\"a\",\"sender\":\"x\"," \
	"\"organisation\":\"o\",\"created\":7"
	static const char *good[] = {
		"{" TOP ",\"files\":[" E "," E2 "]}",
		/* files first, whitespace everywhere, strings with brackets */
		" {\n \"files\" : [ " E " ,\n\t" E2 " ] , \"version\":1,"
		"\"share\":\"a\",\"sender\":\"x]}\\\"[{\",\"organisation\":"
		"\"o\",\"created\":7 }\r\n",
	};
	static const char *bad[] = {
		"",
		"[]",
		"{" TOP "}",				/* no files */
		"{" TOP ",\"files\":[]",			/* unterminated */
		"{" TOP ",\"files\":[" E "," E2 "]} x",	/* trailing */
		"{" TOP ",\"files\":[" E "," E2 "],}",	/* trailing comma */
		"{" TOP ",\"files\":[" E ",]}",
		"{" TOP ",\"files\":[" E " " E2 "]}",
		"{" TOP ",\"files\":[1]}",
		"{" TOP ",\"files\":{}}",
		"{" TOP ",\"files\":[" E "],\"files\":[]}",
		/* the same key spelt otherwise: still a duplicate */
		"{" TOP ",\"files\":[" E "],\"\\u0066iles\":[" E2 "]}",
		"{" TOP ",\"\\u0066iles\":[" E "]}",
		"{\"version\":1 \"share\":\"a\",\"files\":[]}",
		"{" TOP ",\"x\":{\"files\":[" E "]}}",
	};
	share_manifest m;
	char err[256];
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(good); i++) {
		T_EQ_INT(share_manifest_parse(gk_slice_str(good[i]), &m, err,
		    sizeof(err)), 0);
		T_EQ_INT(m.n, 2);
		T_EQ_STR(m.files[1].path, "b");
		T_EQ_INT(m.files[1].size, 2);
		T_EQ_INT(m.files[1].zstd, 1);
		T_EQ_INT(m.created, 7);
		share_manifest_release(&m);
	}
	for (i = 0; i < GK_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		T_EQ_INT(share_manifest_parse(gk_slice_str(bad[i]), &m, err,
		    sizeof(err)), GK_ERR_INVALID);
		T_CHECK(err[0] != '\0');
		T_CHECK(m.n == 0 && m.files == NULL);
	}
#undef E
#undef E2
#undef TOP
}

static void
test_config(void)
{
	share_config c;
	char err[256];

	T_EQ_INT(share_config_parse(gk_slice_str("{\"organisation\":\"O\","
	    "\"destination\":\"file:///x\",\"recipients\":[\"age1t8wqfe5dwja2y"
	    "42pdl343unq7rmwzpqdl962m9lcycfq9dhhnfxqt9xcds\"],\"senders\":[]}"),
	    &c, err, sizeof(err)), 0);
	T_EQ_INT(c.n_recipients, 1);
	share_config_release(&c);
	T_EQ_INT(share_config_parse(gk_slice_str("{\"recipients\":[\"age1x\"]}"),
	    &c, err, sizeof(err)), GK_ERR_INVALID);
	T_CHECK(strstr(err, "age recipient") != NULL);
	T_EQ_INT(share_config_parse(gk_slice_str("{\"senders\":[\"md5:x\"]}"),
	    &c, err, sizeof(err)), GK_ERR_INVALID);
	T_EQ_INT(share_config_parse(gk_slice_str("{\"organisation\":\"a\\nb\"}"),
	    &c, err, sizeof(err)), GK_ERR_INVALID);
}

static void
test_dest(void)
{
	share_dest *d = NULL;
	char err[256];

	T_EQ_INT(share_dest_open("ftp://x", &d, err, sizeof(err)),
	    GK_ERR_INVALID);
	T_EQ_INT(share_dest_open("file://relative", &d, err, sizeof(err)),
	    GK_ERR_INVALID);
	T_EQ_INT(share_dest_open("file:///nonexistent-gk-dir", &d, err,
	    sizeof(err)), GK_ERR_UNAVAILABLE);
	T_CHECK(strstr(err, "unreachable") != NULL);
	T_EQ_INT(share_dest_open("file:///tmp", &d, err, sizeof(err)), 0);
	T_EQ_STR(share_dest_name(d), "file:///tmp");
	share_dest_free(d);
	T_EQ_INT(share_dest_open("s3://", &d, err, sizeof(err)),
	    GK_ERR_INVALID);
}

/* The receiver's record (seen.c): read only as share_seen_format writes
 * it. */
static void
test_seen_record(void)
{
#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP "SHA256:TtoJQRmvkuLJIl+Yl8UVghAbCdEfGhIjKlMnOpQrStU"
	static const char *bad[] = { "", "v1 1 " HEX " " FP,
	    "v1 1 " HEX " " FP "\n\n", "v2 1 " HEX " " FP "\n",
	    "v1 +1 " HEX " " FP "\n", "v1 01 " HEX " " FP "\n",
	    "v1 -0 " HEX " " FP "\n", "v1  1 " HEX " " FP "\n",
	    "v1 1  " HEX " " FP "\n", "v1 1 " HEX "  " FP "\n",
	    "v1 1 " HEX " " FP " \n", "v1 1\t" HEX " " FP "\n",
	    "v1 9223372036854775808 " HEX " " FP "\n",
	    "v1 -9223372036854775809 " HEX " " FP "\n",
	    "v1 1 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789"
	    "abcdef " FP "\n", "v1 1 " HEX "0 " FP "\n",
	    "v1 1 " HEX " " FP "AAAAAA\n", "v1 1 " HEX " " FP "=\n",
	    "v1 1 " HEX " SHA256:\n", "v1 1 " HEX " sha256:TtoJQRmvkuLJIl+"
	    "Yl8UVghAbCdEfGhIjKlMnOpQrStU\n", "v1 1 " HEX " SHA256:TtoJQRmvk"
	    "uLJIl+Yl8UVghAbCdEfGhIjKlMnOpQrSt\x1b\n" };
	char fp[SHARE_FP_STR], line[256];
	uint8_t sha[32];
	int64_t c;
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(bad); i++)
		T_EQ_INT(share_seen_parse(gk_slice_str(bad[i]), &c, sha, fp),
		    GK_ERR_INVALID);
	T_EQ_INT(share_seen_parse(gk_slice_str("v1 1764600000 " HEX " " FP
	    "\n"), &c, sha, fp), 0);
	T_EQ_INT(c, 1764600000);
	T_EQ_STR(fp, FP);
	T_EQ_INT(sha[0], 0x01);
	T_EQ_INT(sha[31], 0xef);
	T_EQ_INT(share_seen_parse(gk_slice_str("v1 -9223372036854775808 " HEX
	    " " FP "\n"), &c, sha, fp), 0);
	T_CHECK(c == INT64_MIN);
	T_EQ_INT(share_seen_format(c, sha, fp, line, sizeof(line)),
	    (int)strlen("v1 -9223372036854775808 " HEX " " FP "\n"));
	T_EQ_STR(line, "v1 -9223372036854775808 " HEX " " FP "\n");
	T_EQ_INT(share_seen_parse(gk_slice_str("v1 0 " HEX " " FP "\n"), &c,
	    sha, fp), 0);
	T_EQ_INT(c, 0);
	T_EQ_INT(share_seen_format(c, sha, fp, line, 10), -1);
#undef HEX
#undef FP
}

int
main(void)
{
	test_paths();
	test_envelope();
	test_manifest();
	test_manifest_split();
	test_config();
	test_dest();
	test_seen_record();
	return T_DONE();
}
