/* test_http_head.c - the request head checks (src/http/head.c) and the
 * saturating time arithmetic (issue 10). */
#include <stdint.h>

#include "http/http.h"
#include "t.h"

struct f {
	const char *name, *value;
	int cut;
};

static int
verdict(const struct f *fs, int http11)
{
	http_head h;
	const char *why;
	int i, r;

	http_head_init(&h);
	for (i = 0; fs[i].name != NULL; i++)
		http_head_field(&h, gk_slice_str(fs[i].name),
		    gk_slice_str(fs[i].value), fs[i].cut);
	r = http_head_verdict(&h, http11, &why);
	if (r != 0 && (why == NULL || why[0] == '\0'))
		return -1;	/* every refusal says why */
	return r;
}

static void
test_fields(void)
{
	struct f ok[] = { { "Host", "a.example:8080", 0 },
	    { "Origin", "https://x", 0 }, { NULL, NULL, 0 } };
	struct f host0[] = { { "Origin", "x", 0 }, { NULL, NULL, 0 } };
	struct f host2[] = { { "Host", "a", 0 }, { "host", "a", 0 },
	    { NULL, NULL, 0 } };
	struct f hostbad[] = { { "Host", "a b", 0 }, { NULL, NULL, 0 } };
	struct f hostempty[] = { { "Host", "", 0 }, { NULL, NULL, 0 } };
	struct f clte[] = { { "Host", "a", 0 }, { "Content-Length", "5", 0 },
	    { "Transfer-Encoding", "chunked", 0 }, { NULL, NULL, 0 } };
	struct f cl2[] = { { "Host", "a", 0 }, { "Content-Length", "5", 0 },
	    { "content-length", "6", 0 }, { NULL, NULL, 0 } };
	struct f cllist[] = { { "Host", "a", 0 },
	    { "Content-Length", "5, 5", 0 }, { NULL, NULL, 0 } };
	struct f clneg[] = { { "Host", "a", 0 },
	    { "Content-Length", "-1", 0 }, { NULL, NULL, 0 } };
	struct f clbig[] = { { "Host", "a", 0 },
	    { "Content-Length", "99999999999999999999", 0 },
	    { NULL, NULL, 0 } };
	struct f clok[] = { { "Host", "a", 0 },
	    { "Content-Length", " 18446744073709551615 ", 0 },
	    { NULL, NULL, 0 } };
	struct f tegzip[] = { { "Host", "a", 0 },
	    { "Transfer-Encoding", "gzip", 0 }, { NULL, NULL, 0 } };
	struct f te2[] = { { "Host", "a", 0 },
	    { "Transfer-Encoding", "chunked", 0 },
	    { "Transfer-Encoding", "chunked", 0 }, { NULL, NULL, 0 } };
	struct f teok[] = { { "Host", "a", 0 },
	    { "Transfer-Encoding", "Chunked", 0 }, { NULL, NULL, 0 } };
	struct f space[] = { { "Host", "a", 0 }, { "X-A ", "b", 0 },
	    { NULL, NULL, 0 } };
	struct f empty[] = { { "Host", "a", 0 }, { "", "b", 0 },
	    { NULL, NULL, 0 } };
	struct f cut[] = { { "Host", "a", 0 }, { "Origin", "https://x", 1 },
	    { NULL, NULL, 0 } };
	struct f ctl[] = { { "Host", "a", 0 }, { "X", "a\001b", 0 },
	    { NULL, NULL, 0 } };
	struct f tab[] = { { "Host", "a", 0 }, { "X", "a\tb \xff", 0 },
	    { NULL, NULL, 0 } };

	T_EQ_INT(verdict(ok, 1), 0);
	T_EQ_INT(verdict(host0, 1), 400);
	T_EQ_INT(verdict(host0, 0), 0);		/* HTTP/1.0 */
	T_EQ_INT(verdict(host2, 1), 400);
	T_EQ_INT(verdict(host2, 0), 400);
	T_EQ_INT(verdict(hostbad, 1), 400);
	T_EQ_INT(verdict(hostempty, 1), 0);
	T_EQ_INT(verdict(clte, 1), 400);
	T_EQ_INT(verdict(cl2, 1), 400);
	T_EQ_INT(verdict(cllist, 1), 400);
	T_EQ_INT(verdict(clneg, 1), 400);
	T_EQ_INT(verdict(clbig, 1), 400);
	T_EQ_INT(verdict(clok, 1), 0);
	T_EQ_INT(verdict(tegzip, 1), 501);
	T_EQ_INT(verdict(te2, 1), 400);
	T_EQ_INT(verdict(teok, 1), 0);
	T_EQ_INT(verdict(teok, 0), 400);	/* TE in HTTP/1.0 */
	T_EQ_INT(verdict(space, 1), 400);
	T_EQ_INT(verdict(empty, 1), 400);
	T_EQ_INT(verdict(cut, 1), 400);
	T_EQ_INT(verdict(ctl, 1), 400);
	T_EQ_INT(verdict(tab, 1), 0);	/* HTAB and obs-text are fine */
}

static void
test_limits(void)
{
	http_head h;
	const char *why;
	char big[HTTP_FIELD_MAX + 1];
	int i;

	http_head_init(&h);
	http_head_field(&h, gk_slice_str("Host"), gk_slice_str("a"), 0);
	for (i = 1; i < HTTP_FIELDS_MAX; i++)
		http_head_field(&h, gk_slice_str("X"), gk_slice_str("v"), 0);
	T_EQ_INT(http_head_verdict(&h, 1, &why), 0);
	http_head_field(&h, gk_slice_str("X"), gk_slice_str("v"), 0);
	T_EQ_INT(http_head_verdict(&h, 1, &why), 431);

	memset(big, 'a', sizeof(big));
	http_head_init(&h);
	http_head_field(&h, gk_slice_str("Host"), gk_slice_str("a"), 0);
	http_head_field(&h, gk_slice_str("X"), gk_slice_of(big,
	    HTTP_FIELD_MAX - 8), 0);
	T_EQ_INT(http_head_verdict(&h, 1, &why), 0);
	http_head_field(&h, gk_slice_str("Y"), gk_slice_of(big,
	    sizeof(big)), 0);
	T_EQ_INT(http_head_verdict(&h, 1, &why), 431);
}

static void
test_uri(void)
{
	char uri[HTTP_URI_MAX + 2];
	const char *why;
	size_t n;
	int i;

	T_EQ_INT(http_uri_check(gk_slice_str("/a?b=c&d=e"), &why), 0);
	T_EQ_INT(http_uri_check(gk_slice_str("*"), &why), 0);
	T_EQ_INT(http_uri_check(gk_slice_str("http://a/b"), &why), 400);
	T_EQ_INT(http_uri_check(gk_slice_str(""), &why), 400);
	T_EQ_INT(http_uri_check(gk_slice_str("/a b"), &why), 400);
	T_EQ_INT(http_uri_check(gk_slice_str("/caf\xc3\xa9"), &why), 400);
	T_EQ_INT(http_uri_check(gk_slice_of("/a\0b", 4), &why), 400);
	T_EQ_INT(http_uri_check(gk_slice_str("/a\x7f"), &why), 400);
	memset(uri, 'a', sizeof(uri));
	uri[0] = '/';
	T_EQ_INT(http_uri_check(gk_slice_of(uri, HTTP_URI_MAX), &why), 0);
	T_EQ_INT(http_uri_check(gk_slice_of(uri, HTTP_URI_MAX + 1), &why),
	    414);
	/* parameters: 128 pass, 129 do not, whatever the separator */
	n = 0;
	uri[n++] = '/';
	uri[n++] = '?';
	for (i = 0; i < HTTP_QUERY_PARAMS_MAX - 1; i++)
		uri[n++] = i % 2 ? '&' : ';';
	T_EQ_INT(http_uri_check(gk_slice_of(uri, n), &why), 0);
	uri[n++] = '&';
	T_EQ_INT(http_uri_check(gk_slice_of(uri, n), &why), 414);
	T_CHECK(why != NULL);
}

static void
test_saturating(void)
{
	T_EQ_INT(gk_add_sat(INT64_MAX, 60), INT64_MAX);
	T_EQ_INT(gk_add_sat(INT64_MIN, -1), INT64_MIN);
	T_EQ_INT(gk_add_sat(1, 2), 3);
	T_EQ_INT(gk_sub_sat(INT64_MIN, 1), INT64_MIN);
	T_EQ_INT(gk_sub_sat(INT64_MAX, -1), INT64_MAX);
	T_EQ_INT(gk_sub_sat(0, INT64_MIN), INT64_MAX);
	T_EQ_INT(gk_sub_sat(5, 7), -2);
	/* the v1 check: an expiry near 2^63 is far away, not in the past */
	T_CHECK(!(gk_add_sat(INT64_MAX - 1, 60) < 1700000000));
}

int
main(void)
{
	test_fields();
	test_limits();
	test_uri();
	test_saturating();
	return T_DONE();
}
