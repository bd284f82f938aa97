#include "t.h"
#include "util/util.h"

#include <stdlib.h>

static void
test_b64(void)
{
	gk_buf b;

	gk_buf_init(&b, 1024);
	T_EQ_INT(gk_b64_encode((const uint8_t *)"foob", 4, &b), 0);
	T_EQ_STR((char *)b.data, "Zm9vYg==");
	gk_buf_reset(&b);
	T_EQ_INT(gk_b64url_encode((const uint8_t *)"\xfb\xff", 2, &b), 0);
	T_EQ_STR((char *)b.data, "-_8");
	gk_buf_reset(&b);
	T_EQ_INT(gk_b64_decode(gk_slice_str("Zm9vYg=="), &b), 0);
	T_EQ_STR((char *)b.data, "foob");
	gk_buf_reset(&b);
	T_EQ_INT(gk_b64_decode(gk_slice_str("Zm9vYg="), &b), GK_ERR_INVALID);
	T_EQ_INT(gk_b64_decode(gk_slice_str("Zm9vYh=="), &b), GK_ERR_INVALID);
	T_EQ_INT(gk_b64url_decode(gk_slice_str("Zm9vYg=="), &b), GK_ERR_INVALID);
	gk_buf_reset(&b);
	T_EQ_INT(gk_b64url_decode(gk_slice_str("-_8"), &b), 0);
	T_EQ_INT(b.len, 2);
	T_EQ_INT(gk_b64url_decode(gk_slice_str("-_9"), &b), GK_ERR_INVALID);
	gk_buf_release(&b);
}

static void
test_pct_utf8_num(void)
{
	gk_buf b;
	uint64_t v = 0;

	gk_buf_init(&b, 64);
	T_EQ_INT(gk_pct_decode(gk_slice_str("a%2Fb%e6%97%a5+"), &b), 0);
	T_EQ_STR((char *)b.data, "a/b\xe6\x97\xa5+");
	T_CHECK(gk_utf8_valid(gk_slice_of(b.data, b.len)));
	gk_buf_reset(&b);
	T_EQ_INT(gk_pct_decode(gk_slice_str("a%2"), &b), GK_ERR_INVALID);
	T_EQ_INT(gk_pct_decode(gk_slice_str("a%zz"), &b), GK_ERR_INVALID);
	T_EQ_INT(gk_pct_decode(gk_slice_str("%"), &b), GK_ERR_INVALID);
	gk_buf_reset(&b);
	T_EQ_INT(gk_pct_encode(gk_slice_str("a b/~é"), 1, &b), 0);
	T_EQ_STR((char *)b.data, "a%20b/~%C3%A9");
	T_CHECK(!gk_utf8_valid(gk_slice_str("\xc0\xaf")));
	T_CHECK(!gk_utf8_valid(gk_slice_str("\xed\xa0\x80")));
	T_CHECK(!gk_utf8_valid(gk_slice_str("\xe6\x97")));
	T_EQ_INT(gk_parse_u64(gk_slice_str("18446744073709551615"), UINT64_MAX,
	    &v), 0);
	T_CHECK(v == UINT64_MAX);
	T_EQ_INT(gk_parse_u64(gk_slice_str("18446744073709551616"), UINT64_MAX,
	    &v), GK_ERR_TOO_LARGE);
	T_EQ_INT(gk_parse_u64(gk_slice_str("-1"), 10, &v), GK_ERR_INVALID);
	T_EQ_INT(gk_parse_u64(gk_slice_str(""), 10, &v), GK_ERR_INVALID);
	T_EQ_INT(gk_parse_u64(gk_slice_str("11"), 10, &v), GK_ERR_TOO_LARGE);
	gk_buf_release(&b);
}

static void
test_buf_cap_json_time(void)
{
	gk_buf b;
	char ts[40];
	int64_t us = 0;

	gk_buf_init(&b, 4);
	T_EQ_INT(gk_buf_append_str(&b, "abcd"), 0);
	T_EQ_INT(gk_buf_append_str(&b, "e"), GK_ERR_TOO_LARGE);
	gk_buf_release(&b);
	gk_buf_init(&b, 64);
	T_EQ_INT(gk_json_str(&b, gk_slice_str("a\"\\\n\x01")), 0);
	T_EQ_STR((char *)b.data, "\"a\\\"\\\\\\n\\u0001\"");
	gk_buf_release(&b);
	T_EQ_INT(gk_utf8_control((const uint8_t *)"\x1b", 1), 1);
	T_EQ_INT(gk_utf8_control((const uint8_t *)"\x7f", 1), 1);
	T_EQ_INT(gk_utf8_control((const uint8_t *)"\xc2\x9b", 2), 1);
	T_EQ_INT(gk_utf8_control((const uint8_t *)"\xc2\xa0", 2), 0);
	T_EQ_INT(gk_utf8_control((const uint8_t *)"a", 1), 0);
	/* LS and PS end a line in log readers; their neighbours do not */
	T_EQ_INT(gk_utf8_linesep((const uint8_t *)"\xe2\x80\xa8", 3), 1);
	T_EQ_INT(gk_utf8_linesep((const uint8_t *)"\xe2\x80\xa9", 3), 1);
	T_EQ_INT(gk_utf8_linesep((const uint8_t *)"\xe2\x80\xa7", 3), 0);
	T_EQ_INT(gk_utf8_linesep((const uint8_t *)"\xe2\x80\xaa", 3), 0);
	T_EQ_INT(gk_utf8_unsafe((const uint8_t *)"\xe2\x80\xa8", 3), 1);
	T_EQ_INT(gk_utf8_unsafe((const uint8_t *)"\xe2\x80\xae", 3), 1);
	T_EQ_INT(gk_utf8_unsafe((const uint8_t *)"\xc2\x85", 2), 1);
	T_EQ_INT(gk_utf8_unsafe((const uint8_t *)"\xe2\x80\x94", 3), 0);
	T_EQ_INT(gk_utf8_unsafe((const uint8_t *)"\xc3\xa9", 2), 0);
	/* C1 controls and DEL escaped; other non-ASCII kept as UTF-8 */
	gk_buf_init(&b, 64);
	T_EQ_INT(gk_json_str(&b, gk_slice_str("x\xc2\x9b" "2J\x7f\xc2\xa0"
	    "\xc3\xa9")), 0);
	T_EQ_STR((char *)b.data, "\"x\\u009b2J\\u007f\xc2\xa0\xc3\xa9\"");
	gk_buf_release(&b);
	gk_time_iso(0, ts, sizeof(ts));
	T_EQ_STR(ts, "1970-01-01T00:00:00Z");
	T_EQ_INT(gk_time_parse("2026-11-23T16:11:49.5Z", &us), 0);
	gk_time_iso_us(us, ts, sizeof(ts));
	T_EQ_STR(ts, "2026-11-23T16:11:49.500000Z");
	T_EQ_INT(gk_time_parse("2026-13-01", &us), GK_ERR_INVALID);
	T_EQ_INT(gk_time_parse("2026-02-29", &us), GK_ERR_INVALID);
	T_EQ_INT(gk_time_parse("2026-02-30", &us), GK_ERR_INVALID);
	T_EQ_INT(gk_time_parse("2026-04-31T00:00:00Z", &us), GK_ERR_INVALID);
	T_EQ_INT(gk_time_parse("2100-02-29", &us), GK_ERR_INVALID);
	T_EQ_INT(gk_time_parse("2000-02-29", &us), 0);
	T_EQ_INT(gk_time_parse("2028-02-29", &us), 0);
	T_EQ_INT(us, 1835395200LL * 1000000);
	/* a leap second is the next second */
	T_EQ_INT(gk_time_parse("2026-12-31T23:59:60Z", &us), 0);
	T_EQ_INT(us, 1798761600LL * 1000000);
	gk_time_http(0, ts, sizeof(ts));
	T_EQ_STR(ts, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static void
test_utf8_sanitize(void)
{
	gk_buf b;

	gk_buf_init(&b, 64);
	T_EQ_INT(gk_utf8_sanitize(gk_slice_str("ok \xc3\xa9"), &b), 0);
	T_EQ_STR((char *)b.data, "ok \xc3\xa9");
	gk_buf_reset(&b);
	T_EQ_INT(gk_utf8_sanitize(gk_slice_str("a\xff" "b\xe6\x97"), &b), 0);
	T_EQ_STR((char *)b.data, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
	T_EQ_INT(gk_utf8_seq((const uint8_t *)"\xf0\x9f\x98\x80", 4), 4);
	T_EQ_INT(gk_utf8_seq((const uint8_t *)"\xf0\x9f\x98", 3), 0);
	T_EQ_INT(gk_utf8_seq((const uint8_t *)"\xc0\xaf", 2), 0);
	gk_buf_release(&b);
}

int
main(void)
{
	test_b64();
	test_pct_utf8_num();
	test_buf_cap_json_time();
	test_utf8_sanitize();
	return T_DONE();
}
