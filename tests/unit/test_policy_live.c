/*
 * test_policy_live.c - list files, X-Forwarded-For / Forwarded parsing and
 * the rightmost-untrusted choice, country lists without a database, the
 * rate limit table (bounded, evicting), the refcounted live policy, and
 * the check-config report.
 */
#include "t.h"
#include "policy/policy.h"
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gk_addr
A(const char *s)
{
	gk_addr a;

	memset(&a, 0xee, sizeof(a));
	if (policy_addr_parse(gk_slice_str(s), &a) != 0)
		fprintf(stderr, "bad test address %s\n", s);
	return a;
}

static gk_config *
base_cfg(void)
{
	gk_config *cfg = calloc(1, sizeof(*cfg));

	cfg->ip_allow = (char *)"0.0.0.0/0, ::/0";
	cfg->ip_deny = (char *)"";
	cfg->admin_cidrs = (char *)"127.0.0.1";
	cfg->origins = (char *)"*";
	cfg->geo_countries = (char *)"US CA GB AU NZ IE NL";
	cfg->geo_unknown = (char *)"deny";
	cfg->forwarded_header = (char *)"x-forwarded-for";
	return cfg;
}

/* ---- list files ------------------------------------------------------ */

static void
test_list_text(void)
{
	static const char good[] =
	    "# block list\n"
	    "10.0.0.0/8\n"
	    "\n"
	    "   192.0.2.1   # one host\r\n"
	    "\t2001:db8::/32\n"
	    "10.0.0.0/8\n"			/* duplicate */
	    "10.1.0.0/16";			/* overlap, no final newline */
	gk_cidrs *c = NULL;
	char err[128];
	gk_addr a;

	T_EQ_INT(policy_cidrs_new(&c), 0);
	T_EQ_INT(policy_cidrs_add_text(c, "good.txt", gk_slice_str(good), err,
	    sizeof(err)), 0);
	T_EQ_INT(policy_cidrs_count(c), 5);
	a = A("10.9.9.9");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("192.0.2.1");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("192.0.2.2");
	T_CHECK(!policy_cidrs_contains(c, &a));
	a = A("2001:db8:1::5");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("::ffff:10.2.3.4");	/* IPv4-mapped counts as IPv4 */
	T_CHECK(policy_cidrs_contains(c, &a));
	policy_cidrs_free(c);

	T_EQ_INT(policy_cidrs_new(&c), 0);
	T_EQ_INT(policy_cidrs_add_text(c, "bad.txt",
	    gk_slice_str("10.0.0.0/8\n# c\n\n10.0.0.1/8\n"), err,
	    sizeof(err)), GK_ERR_INVALID);
	T_EQ_STR(err, "bad.txt:4: bad CIDR '10.0.0.1/8'");
	policy_cidrs_free(c);

	T_EQ_INT(policy_cidrs_new(&c), 0);
	T_EQ_INT(policy_cidrs_add_text(c, "nul.txt",
	    gk_slice_of("1.2.3.4\n1.2\0.3\n", 15), err, sizeof(err)),
	    GK_ERR_INVALID);
	T_EQ_STR(err, "nul.txt:2: NUL byte in line '1.2?.3'");
	T_EQ_INT(policy_cidrs_add_text(c, "x", gk_slice_str("1.2.3.4 5.6.7.8"),
	    err, sizeof(err)), GK_ERR_INVALID);	/* one CIDR per line */
	T_EQ_INT(policy_cidrs_add_file(c, "/nonexistent/list.txt", err,
	    sizeof(err)), GK_ERR_IO);
	T_CHECK(strstr(err, "/nonexistent/list.txt: cannot read") == err);
	policy_cidrs_free(c);
}

static void
test_list_files_in_policy(void)
{
	char dir[] = "/tmp/gk-unit-lists-XXXXXX", allow[128], deny[128],
	    both[300], err[512];
	gk_config *cfg = base_cfg();
	gk_policy *p = NULL;
	FILE *f;
	gk_addr a;

	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(allow, sizeof(allow), "%s/allow.txt", dir);
	snprintf(deny, sizeof(deny), "%s/deny.txt", dir);
	f = fopen(allow, "w");
	fputs("198.51.100.0/24\n", f);
	fclose(f);
	f = fopen(deny, "w");
	fputs("# bad hosts\n198.51.100.66\n", f);
	fclose(f);
	cfg->ip_allow = (char *)"";
	cfg->ip_allow_files = allow;
	cfg->ip_deny_files = deny;
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	a = A("198.51.100.7");
	T_EQ_INT(policy_check_ip(p, &a, 0), 0);
	a = A("198.51.100.66");
	T_EQ_INT(policy_check_ip(p, &a, 0), GK_ERR_DENIED);
	a = A("203.0.113.1");
	T_EQ_INT(policy_check_ip(p, &a, 0), GK_ERR_DENIED);
	policy_free(p);

	f = fopen(deny, "a");
	fputs("300.1.2.3\n", f);
	fclose(f);
	p = NULL;
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), GK_ERR_CONFIG);
	T_CHECK(p == NULL);
	snprintf(both, sizeof(both), "ip_deny_files: %s:3: bad CIDR "
	    "'300.1.2.3'", deny);
	T_EQ_STR(err, both);
	unlink(allow);
	unlink(deny);
	rmdir(dir);
	free(cfg);
}

/* ---- the /16 index of big sets --------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void
random_prefix(gk_addr *a, unsigned *bits)
{
	uint64_t r = rng(), r2 = rng();
	unsigned i;

	memset(a, 0, sizeof(*a));
	if (r & 1) {
		a->b[10] = a->b[11] = 0xff;
		memcpy(a->b + 12, &r2, 4);
		/* /8../15 too: they cover whole /16 blocks */
		*bits = 96 + 8 + (unsigned)((r >> 8) % 25);
	} else {
		memcpy(a->b, &r2, 8);
		r2 = rng();
		memcpy(a->b + 8, &r2, 8);
		a->b[0] |= 0x20;	/* outside ::/3, so not v4 space */
		if ((r >> 8) & 1)
			a->b[0] = 0x20;	/* crowd one /8 */
		*bits = 16 + (unsigned)((r >> 16) % 113);
	}
	for (i = *bits; i < 128; i++)
		a->b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

static void
test_index(void)
{
	enum { N = 3000, PROBES = 200000 };
	gk_cidrs *plain = NULL, *fast = NULL;
	static gk_addr net[N];
	char s[GK_ADDR_STRLEN + 8], t[GK_ADDR_STRLEN];
	unsigned bits, i, b, mismatch = 0, hits = 0;
	gk_addr a;

	T_EQ_INT(policy_cidrs_new(&plain), 0);
	T_EQ_INT(policy_cidrs_new(&fast), 0);
	for (i = 0; i < N; i++) {
		random_prefix(&net[i], &bits);
		policy_addr_str(&net[i], t, sizeof(t));
		if (policy_addr_is_v4(&net[i]))
			snprintf(s, sizeof(s), "%s/%u", t, bits - 96);
		else
			snprintf(s, sizeof(s), "%s/%u", t, bits);
		T_EQ_INT(policy_cidrs_add(plain, gk_slice_str(s)), 0);
		T_EQ_INT(policy_cidrs_add(fast, gk_slice_str(s)), 0);
	}
	T_EQ_INT(policy_cidrs_optimize(fast), 0);
	for (i = 0; i < PROBES; i++) {
		a = net[rng() % N];
		if (i % 3 == 1) {
			b = (unsigned)(rng() % 128);
			a.b[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
		} else if (i % 3 == 2) {
			uint64_t r = rng();

			memcpy(a.b + 8, &r, 8);	/* random host part */
		}
		hits += (unsigned)policy_cidrs_contains(plain, &a);
		if (policy_cidrs_contains(plain, &a) !=
		    policy_cidrs_contains(fast, &a))
			mismatch++;
	}
	T_EQ_INT(mismatch, 0);
	T_CHECK(hits > PROBES / 4 && hits < PROBES - PROBES / 4);
	/* adding after the index was built stays right */
	a = A("203.0.113.77");
	T_CHECK(!policy_cidrs_contains(fast, &a) ||
	    policy_cidrs_contains(plain, &a));
	T_EQ_INT(policy_cidrs_add(fast, gk_slice_str("203.0.113.77")), 0);
	T_CHECK(policy_cidrs_contains(fast, &a));
	T_EQ_INT(policy_cidrs_add(fast, gk_slice_str("0.0.0.0/0")), 0);
	T_EQ_INT(policy_cidrs_optimize(fast), 0);
	a = A("8.8.8.8");
	T_CHECK(policy_cidrs_contains(fast, &a));
	policy_cidrs_free(plain);
	policy_cidrs_free(fast);
}

/* ---- forwarded headers ----------------------------------------------- */

struct seen {
	int n;
	int ok[16];
	char s[16][GK_ADDR_STRLEN];
};

static int
seen_cb(void *arg, int ok, const gk_addr *a)
{
	struct seen *s = arg;

	if (s->n < 16) {
		s->ok[s->n] = ok;
		if (ok)
			policy_addr_str(a, s->s[s->n], GK_ADDR_STRLEN);
		else
			s->s[s->n][0] = '\0';
	}
	s->n++;
	return 0;
}

static void
test_xff_parse(void)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	T_EQ_INT(policy_xff_parse(gk_slice_str(" 203.0.113.9 ,10.0.0.1:8080,"
	    "[2001:db8::1]:443, 2001:db8::2,[2001:db8::3],garbage,,"
	    "unknown"), seen_cb, &s), 0);
	T_EQ_INT(s.n, 8);
	T_EQ_STR(s.s[0], "203.0.113.9");
	T_EQ_STR(s.s[1], "10.0.0.1");
	T_EQ_STR(s.s[2], "2001:db8::1");
	T_EQ_STR(s.s[3], "2001:db8::2");
	T_EQ_STR(s.s[4], "2001:db8::3");
	T_CHECK(!s.ok[5] && !s.ok[6] && !s.ok[7]);
	memset(&s, 0, sizeof(s));
	T_EQ_INT(policy_xff_parse(gk_slice_str("1.2.3.4:"), seen_cb, &s), 0);
	T_CHECK(s.n == 1 && !s.ok[0]);
	memset(&s, 0, sizeof(s));
	T_EQ_INT(policy_xff_parse(gk_slice_str("[1.2.3.4]"), seen_cb, &s), 0);
	T_CHECK(s.n == 1 && !s.ok[0]);
}

static void
test_forwarded_parse(void)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	T_EQ_INT(policy_forwarded_parse(gk_slice_str(
	    "for=192.0.2.60;proto=http;by=203.0.113.43, "
	    "For=\"[2001:db8:cafe::17]:4711\", for=unknown, "
	    "proto=https, for=\"198.51.100.7:80\"; host=a.example,"
	    "for=_hidden, for=\"\\1\\9\\8.51.100.8\""), seen_cb, &s), 0);
	T_EQ_INT(s.n, 7);
	T_EQ_STR(s.s[0], "192.0.2.60");
	T_EQ_STR(s.s[1], "2001:db8:cafe::17");
	T_CHECK(!s.ok[2]);	/* unknown */
	T_CHECK(!s.ok[3]);	/* no for= */
	T_EQ_STR(s.s[4], "198.51.100.7");
	T_CHECK(!s.ok[5]);	/* obfuscated */
	T_EQ_STR(s.s[6], "198.51.100.8");	/* quoted-pair */
	/* malformed: unterminated quote, missing '=', two for= */
	memset(&s, 0, sizeof(s));
	T_EQ_INT(policy_forwarded_parse(gk_slice_str("for=\"1.2.3.4"), seen_cb,
	    &s), GK_ERR_INVALID);
	memset(&s, 0, sizeof(s));
	T_EQ_INT(policy_forwarded_parse(gk_slice_str("for"), seen_cb, &s),
	    GK_ERR_INVALID);
	memset(&s, 0, sizeof(s));
	T_EQ_INT(policy_forwarded_parse(gk_slice_str(
	    "for=1.2.3.4;for=5.6.7.8"), seen_cb, &s), 0);
	T_CHECK(s.n == 1 && !s.ok[0]);
}

static void
test_client_addr(void)
{
	gk_config *cfg = base_cfg();
	gk_policy *p = NULL;
	char err[256], s[GK_ADDR_STRLEN];
	gk_addr peer, out;
	gk_slice none = GK_SLICE_NULL;

	cfg->trusted_proxies = (char *)"10.0.0.0/8, 127.0.0.1";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);

	/* an untrusted peer: headers ignored (and reported as such) */
	peer = A("198.51.100.1");
	T_EQ_INT(policy_client_addr(p, &peer, gk_slice_str("10.0.0.5"), 1,
	    none, 0, &out), GK_FWD_IGNORED);
	policy_addr_str(&out, s, sizeof(s));
	T_EQ_STR(s, "198.51.100.1");
	T_EQ_INT(policy_client_addr(p, &peer, none, 0, gk_slice_str(
	    "for=10.0.0.5"), 1, &out), GK_FWD_IGNORED);
	T_EQ_INT(policy_client_addr(p, &peer, none, 0, none, 0, &out),
	    GK_FWD_PEER);

	/* trusted: rightmost address that is not a trusted proxy */
	peer = A("10.1.1.1");
	T_EQ_INT(policy_client_addr(p, &peer, gk_slice_str(
	    "127.0.0.3, 203.0.113.9, 10.2.2.2, 127.0.0.1"), 1, none, 0, &out),
	    GK_FWD_HEADER);
	policy_addr_str(&out, s, sizeof(s));
	T_EQ_STR(s, "203.0.113.9");
	/* all trusted: the leftmost */
	T_EQ_INT(policy_client_addr(p, &peer, gk_slice_str("10.3.3.3, "
	    "10.2.2.2"), 1, none, 0, &out), GK_FWD_HEADER);
	policy_addr_str(&out, s, sizeof(s));
	T_EQ_STR(s, "10.3.3.3");
	/* garbage reached on the walk: unknown client (::) */
	T_EQ_INT(policy_client_addr(p, &peer, gk_slice_str("203.0.113.9, "
	    "evil"), 1, none, 0, &out), GK_FWD_BAD);
	policy_addr_str(&out, s, sizeof(s));
	T_EQ_STR(s, "::");
	/* garbage left of the client does not matter */
	T_EQ_INT(policy_client_addr(p, &peer, gk_slice_str("evil, "
	    "203.0.113.9"), 1, none, 0, &out), GK_FWD_HEADER);
	/* Forwarded is not read when X-Forwarded-For is the header */
	T_EQ_INT(policy_client_addr(p, &peer, none, 0, gk_slice_str(
	    "for=203.0.113.9"), 1, &out), GK_FWD_PEER);
	policy_addr_str(&out, s, sizeof(s));
	T_EQ_STR(s, "10.1.1.1");
	policy_free(p);

	cfg->forwarded_header = (char *)"forwarded";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_EQ_INT(policy_client_addr(p, &peer, gk_slice_str("203.0.113.7"), 1,
	    gk_slice_str("for=\"[2001:db8::9]:1\", for=10.9.9.9"), 1, &out),
	    GK_FWD_HEADER);
	policy_addr_str(&out, s, sizeof(s));
	T_EQ_STR(s, "2001:db8::9");
	policy_free(p);

	cfg->forwarded_header = (char *)"via";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), GK_ERR_CONFIG);
	free(cfg);
}

/* ---- countries without a database ------------------------------------ */

static void
test_countries_config(void)
{
	gk_config *cfg = base_cfg();
	gk_policy *p = NULL;
	char err[256], cc[3];
	gk_addr a = A("203.0.113.9");

	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_CHECK(!policy_geo_enabled(p));
	T_EQ_INT(policy_country(p, &a, cc), 0);
	T_EQ_STR(cc, "");
	/* geo off: the country check passes */
	T_EQ_INT(policy_check_country(p, &a, "", GK_OP_GET), 0);
	policy_free(p);

	cfg->geo_countries = (char *)"US, usa";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), GK_ERR_CONFIG);
	T_EQ_STR(err, "[geo] countries: bad country code 'usa' (two letters, "
	    "ISO 3166, or *)");
	cfg->geo_countries = (char *)"US";
	cfg->geo_countries_put = (char *)"1X";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), GK_ERR_CONFIG);
	cfg->geo_countries_put = (char *)"*";
	cfg->geo_unknown = (char *)"maybe";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), GK_ERR_CONFIG);
	T_EQ_STR(err, "[geo] unknown must be deny or allow");
	cfg->geo_unknown = (char *)"deny";
	cfg->geo_database = (char *)"/nonexistent/GeoLite2-Country.mmdb";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), GK_ERR_CONFIG);
	T_CHECK(strstr(err, "[geo] database /nonexistent/GeoLite2-Country."
	    "mmdb: cannot open") == err);
	T_CHECK(p == NULL);
	free(cfg);

	a = A("10.1.2.3");
	T_CHECK(policy_addr_is_private(&a));
	a = A("172.31.0.1");
	T_CHECK(policy_addr_is_private(&a));
	a = A("172.32.0.1");
	T_CHECK(!policy_addr_is_private(&a));
	a = A("::1");
	T_CHECK(policy_addr_is_private(&a));
	a = A("fd00::1");
	T_CHECK(policy_addr_is_private(&a));
	a = A("2001:db8::1");
	T_CHECK(!policy_addr_is_private(&a));
	a = A("100.64.0.1");
	T_CHECK(policy_addr_is_private(&a));
}

/* ---- rate limits ------------------------------------------------------ */

static void
test_rate(void)
{
	gk_config *cfg = base_cfg();
	gk_policy *p = NULL;
	gk_rate *r = NULL;
	char err[256], ip[64];
	unsigned retry = 0;
	int64_t t = 1000000;
	gk_addr a, b;
	int i, limited;

	cfg->rate_rps = 2;
	cfg->rate_burst = 3;
	cfg->rate_denied_per_min = 6;
	cfg->rate_denied_burst = 2;
	cfg->rate_v6_48_factor = 4;
	cfg->rate_exempt = (char *)"192.0.2.0/24";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_EQ_INT(policy_rate_new(1024, &r), 0);
	a = A("198.51.100.1");
	b = A("198.51.100.2");
	for (i = 0; i < 3; i++)
		T_EQ_INT(policy_rate_check(r, p, &a, t, &retry), 0);
	T_EQ_INT(policy_rate_check(r, p, &a, t, &retry), GK_ERR_TOO_LARGE);
	T_EQ_INT(retry, 1);
	/* another address is not affected */
	T_EQ_INT(policy_rate_check(r, p, &b, t, &retry), 0);
	/* half a second later: one token back */
	T_EQ_INT(policy_rate_check(r, p, &a, t + 500000, &retry), 0);
	T_EQ_INT(policy_rate_check(r, p, &a, t + 500000, &retry),
	    GK_ERR_TOO_LARGE);
	/* denials: two allowed, then 429 for 10 s (6 a minute) */
	policy_rate_denied(r, p, &b, t);
	policy_rate_denied(r, p, &b, t);
	T_EQ_INT(policy_rate_check(r, p, &b, t, &retry), GK_ERR_TOO_LARGE);
	T_EQ_INT(retry, 10);
	T_EQ_INT(policy_rate_check(r, p, &b, t + 10000000, &retry), 0);
	/* an IPv6 host counts by its /64 */
	a = A("2001:db8:1:2::1");
	b = A("2001:db8:1:2:ffff::9");
	for (i = 0; i < 3; i++)
		T_EQ_INT(policy_rate_check(r, p, &a, t, &retry), 0);
	T_EQ_INT(policy_rate_check(r, p, &b, t, &retry), GK_ERR_TOO_LARGE);
	/* issue 17: rotating through the /64s of one /48 gains only the
	 * factor (4 here): 3 + 9 more requests of burst, then 429 for
	 * every /64 of it; another /48 is not affected */
	for (i = 0, limited = 0; i < 64; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:1:%x::1", 0x100 + i);
		b = A(ip);
		limited += policy_rate_check(r, p, &b, t, &retry) != 0;
	}
	T_EQ_INT(64 - limited, 4 * 3 - 3);
	b = A("2001:db8:1:ffff::1");
	T_EQ_INT(policy_rate_check(r, p, &b, t, &retry), GK_ERR_TOO_LARGE);
	b = A("2001:db8:2:1::1");
	T_EQ_INT(policy_rate_check(r, p, &b, t, &retry), 0);
	/* exempt */
	a = A("192.0.2.9");
	for (i = 0; i < 50; i++)
		T_EQ_INT(policy_rate_check(r, p, &a, t, &retry), 0);
	/* a flood of addresses: memory stays at the table size */
	for (i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255,
		    (i >> 8) & 255, i & 255);
		a = A(ip);
		(void)policy_rate_check(r, p, &a, t + 20000000, &retry);
	}
	T_CHECK(policy_rate_used(r) <= 1024);
	T_CHECK(policy_rate_used(r) >= 1000);
	/* a fresh address in the flood still gets its burst */
	a = A("203.0.113.200");
	for (i = 0, limited = 0; i < 3; i++)
		limited |= policy_rate_check(r, p, &a, t + 20000000, &retry);
	T_EQ_INT(limited, 0);
	policy_rate_free(r);
	policy_free(p);

	/* limits of 0: off */
	cfg->rate_rps = 0;
	cfg->rate_denied_per_min = 0;
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_EQ_INT(policy_rate_new(1, &r), 0);
	a = A("198.51.100.1");
	for (i = 0; i < 100; i++) {
		policy_rate_denied(r, p, &a, t);
		T_EQ_INT(policy_rate_check(r, p, &a, t, &retry), 0);
	}
	policy_rate_free(r);
	policy_free(p);
	free(cfg);
}

/* ---- the live policy -------------------------------------------------- */

static void
test_live(void)
{
	gk_config *cfg = base_cfg();
	gk_policy *p1 = NULL, *p2 = NULL, *held, *now;
	gk_policy_live *l = NULL;
	char err[256];
	gk_addr a = A("198.51.100.1");

	T_EQ_INT(policy_new(cfg, &p1, err, sizeof(err)), 0);
	cfg->ip_deny = (char *)"198.51.100.0/24";
	T_EQ_INT(policy_new(cfg, &p2, err, sizeof(err)), 0);
	T_EQ_INT(policy_live_new(p1, &l), 0);
	held = policy_live_get(l);	/* a request in flight */
	T_CHECK(held == p1);
	T_EQ_INT(policy_live_swap(l, p2), 1);
	/* the request in flight keeps its rules, new ones get the new */
	T_EQ_INT(policy_check_ip(held, &a, 0), 0);
	now = policy_live_get(l);
	T_CHECK(now == p2);
	T_EQ_INT(policy_check_ip(now, &a, 0), GK_ERR_DENIED);
	policy_free(now);
	policy_free(held);	/* frees p1 (ASan would see a leak or UAF) */
	policy_live_free(l);
	free(cfg);
}

/* ---- the report -------------------------------------------------------- */

static void
test_describe(void)
{
	gk_config *cfg = base_cfg();
	gk_policy *p = NULL;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *f;
	int w;

	cfg->trusted_proxies = (char *)"0.0.0.0/0";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	f = open_memstream(&buf, &len);
	w = policy_describe(p, f, 1);
	fclose(f);
	T_EQ_INT(w, 3);
	T_CHECK(strstr(buf, "# policy: ip_allow 2 CIDRs") != NULL);
	T_CHECK(strstr(buf, "# policy: countries: off") != NULL);
	T_CHECK(strstr(buf, "warning: no [geo] database") != NULL);
	T_CHECK(strstr(buf, "warning: ip_allow covers every IPv4 address and "
	    "there is no country limit") != NULL);
	T_CHECK(strstr(buf, "warning: trusted_proxies covers every") != NULL);
	free(buf);
	policy_free(p);
	free(cfg);
}

int
main(void)
{
	test_list_text();
	test_list_files_in_policy();
	test_index();
	test_xff_parse();
	test_forwarded_parse();
	test_client_addr();
	test_countries_config();
	test_rate();
	test_live();
	test_describe();
	return T_DONE();
}
