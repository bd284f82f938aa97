/*
 * test_policy.c - addresses, CIDR parsing, the CIDR trie (against a
 * brute-force reference), origin lists and the v1 ACL truth tables.
 */
#include "t.h"
#include "policy/policy.h"
#include "config/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* ---- helpers --------------------------------------------------------- */

/* xorshift64*: fixed seed, same sequence on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned
rng_below(unsigned n)
{
	return (unsigned)(rng() % n);
}

static gk_addr
A(const char *s)
{
	gk_addr a;

	memset(&a, 0xee, sizeof(a));
	if (policy_addr_parse(gk_slice_str(s), &a) != 0)
		fprintf(stderr, "test bug: cannot parse %s\n", s);
	return a;
}

/* Parses s and prints it back; "ERR" when it does not parse. */
static const char *
roundtrip(const char *s, char *out, size_t out_len)
{
	gk_addr a;

	if (policy_addr_parse(gk_slice_str(s), &a) != 0)
		return "ERR";
	policy_addr_str(&a, out, out_len);
	return out;
}

/* ---- addresses ------------------------------------------------------- */

static void
test_addr(void)
{
	static const struct {
		const char *in, *out;
		int v4;
	} ok[] = {
		{ "1.2.3.4", "1.2.3.4", 1 },
		{ "0.0.0.0", "0.0.0.0", 1 },
		{ "255.255.255.255", "255.255.255.255", 1 },
		{ "::ffff:1.2.3.4", "1.2.3.4", 1 },
		{ "::FFFF:102:304", "1.2.3.4", 1 },
		{ "0:0:0:0:0:ffff:a00:1", "10.0.0.1", 1 },
		{ "::", "::", 0 },
		{ "::1", "::1", 0 },
		{ "2001:DB8:0:0:0:0:0:1", "2001:db8::1", 0 },
		{ "2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1", 0 },
		{ "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 0 },
		{ "1:0:0:0:1:0:0:1", "1::1:0:0:1", 0 },
		{ "fe80::", "fe80::", 0 },
		{ "::fffe:1.2.3.4", "::fffe:102:304", 0 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0 },
		{ "0000:0000:0000:0000:0000:ffff:255.255.255.255",
		    "255.255.255.255", 1 },	/* 45 bytes, the longest */
	};
	static const char *bad[] = {
		"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "256.1.1.1",
		"1.2.3.4 ", " 1.2.3.4", "1.2.3.4/32", "[::1]", "fe80::1%eth0",
		"::g", ":::", "1::2::3", "0x1.2.3.4", "1.2.3.-4",
		"::ffff:01.2.3.4",
		"1:2:3:4:5:6:7:8:9", "abcd", "-1.2.3.4",
		"0000:0000:0000:0000:0000:ffff:255.255.255.2555",
		"11111111111111111111111111111111111111111111111111111111111",
	};
	char buf[GK_ADDR_STRLEN], small[5];
	gk_addr a, b;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(ok); i++) {
		T_EQ_STR(roundtrip(ok[i].in, buf, sizeof(buf)), ok[i].out);
		a = A(ok[i].in);
		T_EQ_INT(policy_addr_is_v4(&a), ok[i].v4);
	}
	for (i = 0; i < GK_ARRAY_LEN(bad); i++) {
		T_EQ_STR(roundtrip(bad[i], buf, sizeof(buf)), "ERR");
		if (strcmp(roundtrip(bad[i], buf, sizeof(buf)), "ERR") != 0)
			fprintf(stderr, "  accepted: '%s'\n", bad[i]);
	}
	/* Embedded NUL, NULL pointer, overlong. */
	T_EQ_INT(policy_addr_parse(gk_slice_of("1.2.3.4\0", 8), &a),
	    GK_ERR_INVALID);
	T_EQ_INT(policy_addr_parse(gk_slice_of("1.2\0.3.4", 8), &a),
	    GK_ERR_INVALID);
	T_EQ_INT(policy_addr_parse(GK_SLICE_NULL, &a), GK_ERR_INVALID);
	/* A slice is bounded: the bytes after it are not read. */
	T_EQ_INT(policy_addr_parse(gk_slice_of("10.0.0.12", 8), &a), 0);
	policy_addr_str(&a, buf, sizeof(buf));
	T_EQ_STR(buf, "10.0.0.1");
	/* v4 and its mapped v6 spelling are the same address. */
	a = A("10.9.8.7");
	b = A("::ffff:10.9.8.7");
	T_CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	T_EQ_INT(a.b[10], 0xff);
	T_EQ_INT(a.b[12], 10);
	/* Truncated output stays terminated. */
	policy_addr_str(&a, small, sizeof(small));
	T_EQ_STR(small, "10.9");
	b = A("2001:db8::1");
	policy_addr_str(&b, small, sizeof(small));
	T_EQ_STR(small, "2001");
	policy_addr_str(&b, small, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x0a010203);
	T_EQ_INT(policy_addr_from_sockaddr((struct sockaddr *)&sin, &a), 0);
	policy_addr_str(&a, buf, sizeof(buf));
	T_EQ_STR(buf, "10.1.2.3");
	T_CHECK(policy_addr_is_v4(&a));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	T_EQ_INT(inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr), 1);
	T_EQ_INT(policy_addr_from_sockaddr((struct sockaddr *)&sin6, &b), 0);
	T_CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	T_EQ_INT(inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr), 1);
	T_EQ_INT(policy_addr_from_sockaddr((struct sockaddr *)&sin6, &b), 0);
	policy_addr_str(&b, buf, sizeof(buf));
	T_EQ_STR(buf, "2001:db8::7");
	T_CHECK(!policy_addr_is_v4(&b));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	T_EQ_INT(policy_addr_from_sockaddr((struct sockaddr *)&sun, &a),
	    GK_ERR_INVALID);
	T_EQ_INT(policy_addr_from_sockaddr(NULL, &a), GK_ERR_INVALID);
}

/* ---- CIDR text ------------------------------------------------------- */

static void
test_cidr_parse(void)
{
	static const struct {
		const char *in, *net;
		unsigned bits;
	} ok[] = {
		{ "10.0.0.0/8", "10.0.0.0", 104 },
		{ "1.2.3.4", "1.2.3.4", 128 },
		{ "1.2.3.4/32", "1.2.3.4", 128 },
		{ "0.0.0.0/0", "0.0.0.0", 96 },
		{ "192.168.0.0/16", "192.168.0.0", 112 },
		{ "2001:db8::/32", "2001:db8::", 32 },
		{ "::/0", "::", 0 },
		{ "::1", "::1", 128 },
		{ "::/128", "::", 128 },
		{ "::ffff:10.0.0.0/104", "10.0.0.0", 104 },
		{ "::ffff:0:0/96", "0.0.0.0", 96 },
		{ "8000::/1", "8000::", 1 },
		{ "2001:db8::1/128", "2001:db8::1", 128 },
	};
	static const char *bad[] = {
		"1.2.3.4/33", "10.0.0.1/8", "::1/129", "1.2.3", "01.2.3.4",
		"1.2.3.4/", "/8", "", "/", "10.0.0.0/08", "10.0.0.0/+8",
		"10.0.0.0/-8", "10.0.0.0/ 8", "10.0.0.0 /8", "10.0.0.0/8 ",
		" 10.0.0.0/8", "10.0.0.0/8/8", "2001:db8::1/32",
		"10.0.0.0/0008", "1.2.3.4/32x", "10.0.0.0/1000", "::/0x10",
		"1.2.3.4/4294967328", "192.168.1.0/23", "::ffff:10.0.0.1/104",
		"::1/127", "8000::/0", "[::1]/128", "1.2.3.4/8.0",
	};
	char buf[GK_ADDR_STRLEN];
	gk_addr net;
	unsigned bits;
	size_t i;
	int r;

	for (i = 0; i < GK_ARRAY_LEN(ok); i++) {
		bits = 999;
		r = policy_cidr_parse(gk_slice_str(ok[i].in), &net, &bits);
		T_EQ_INT(r, 0);
		if (r != 0) {
			fprintf(stderr, "  rejected: '%s'\n", ok[i].in);
			continue;
		}
		policy_addr_str(&net, buf, sizeof(buf));
		T_EQ_STR(buf, ok[i].net);
		T_EQ_INT(bits, ok[i].bits);
	}
	for (i = 0; i < GK_ARRAY_LEN(bad); i++) {
		r = policy_cidr_parse(gk_slice_str(bad[i]), &net, &bits);
		T_EQ_INT(r, GK_ERR_INVALID);
		if (r != GK_ERR_INVALID)
			fprintf(stderr, "  accepted: '%s'\n", bad[i]);
	}
	T_EQ_INT(policy_cidr_parse(gk_slice_of("10.0.0.0/8\0", 11), &net,
	    &bits), GK_ERR_INVALID);
	T_EQ_INT(policy_cidr_parse(gk_slice_of("10.0.0.0/8", 9), &net, &bits),
	    GK_ERR_INVALID); /* "10.0.0.0/" */
	T_EQ_INT(policy_cidr_parse(gk_slice_of("0.0.0.0/24", 9), &net,
	    &bits), 0); /* "0.0.0.0/2" */
	T_EQ_INT(bits, 98);
}

/* ---- trie vs brute force --------------------------------------------- */

struct ref_prefix {
	gk_addr net;
	unsigned bits;
};

static int
ref_match(const struct ref_prefix *p, const gk_addr *a)
{
	unsigned i;

	for (i = 0; i < p->bits; i++) {
		unsigned m = 0x80u >> (i % 8);

		if ((p->net.b[i / 8] & m) != (a->b[i / 8] & m))
			return 0;
	}
	return 1;
}

static int
ref_contains(const struct ref_prefix *p, size_t n, const gk_addr *a)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (ref_match(&p[i], a))
			return 1;
	}
	return 0;
}

static void
clear_host_bits(gk_addr *a, unsigned bits)
{
	unsigned i;

	for (i = bits; i < 128; i++)
		a->b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

/* Random addresses concentrated in a few regions so prefixes overlap and
 * many lookups hit. */
static void
rand_addr(gk_addr *a, int v4)
{
	static const uint8_t first[] = { 10, 172, 192, 100 };
	unsigned i;

	for (i = 0; i < 16; i++)
		a->b[i] = (uint8_t)rng();
	if (v4) {
		memset(a->b, 0, 10);
		a->b[10] = a->b[11] = 0xff;
		if (rng_below(4) != 0) {
			a->b[12] = first[rng_below(4)];
			if (rng_below(2))
				a->b[13] = (uint8_t)rng_below(4);
		}
	} else if (rng_below(8) != 0) {
		a->b[0] = 0x20;
		a->b[1] = 0x01;
		a->b[2] = 0x0d;
		a->b[3] = rng_below(2) ? 0xb8 : (uint8_t)rng_below(4);
		if (rng_below(2))
			a->b[4] = (uint8_t)rng_below(4);
	}
}

/* Writes the prefix as text in one of its spellings. */
static void
prefix_text(const struct ref_prefix *p, char *out, size_t len)
{
	char s[INET6_ADDRSTRLEN];

	if (policy_addr_is_v4(&p->net) && p->bits >= 96 && rng_below(4) != 0) {
		if (p->bits == 128 && rng_below(2))
			snprintf(out, len, "%u.%u.%u.%u", p->net.b[12],
			    p->net.b[13], p->net.b[14], p->net.b[15]);
		else
			snprintf(out, len, "%u.%u.%u.%u/%u", p->net.b[12],
			    p->net.b[13], p->net.b[14], p->net.b[15],
			    p->bits - 96);
		return;
	}
	if (inet_ntop(AF_INET6, p->net.b, s, sizeof(s)) == NULL)
		s[0] = '\0';
	snprintf(out, len, "%s/%u", s, p->bits);
}

#define REF_PREFIXES 2000
#define REF_LOOKUPS 100000

static void
test_trie_vs_ref(void)
{
	struct ref_prefix *p;
	gk_cidrs *c = NULL;
	gk_addr a;
	char txt[80];
	size_t i, hits = 0, mism = 0, v4hits = 0, v6hits = 0, v4n = 0;
	int v4, want, got;

	p = calloc(REF_PREFIXES, sizeof(*p));
	T_CHECK(p != NULL);
	T_EQ_INT(policy_cidrs_new(&c), 0);
	if (p == NULL || c == NULL)
		goto out;
	for (i = 0; i < REF_PREFIXES; i++) {
		v4 = rng_below(2);
		rand_addr(&p[i].net, v4);
		if (v4)
			p[i].bits = 96 + 12 + rng_below(21);	/* /12../32 */
		else
			p[i].bits = 40 + rng_below(89);	/* /40../128 */
		clear_host_bits(&p[i].net, p[i].bits);
		prefix_text(&p[i], txt, sizeof(txt));
		if (policy_cidrs_add(c, gk_slice_str(txt)) != 0) {
			T_CHECK(!"prefix text rejected");
			fprintf(stderr, "  rejected: '%s'\n", txt);
		}
	}
	T_EQ_INT(policy_cidrs_count(c), REF_PREFIXES);
	for (i = 0; i < REF_LOOKUPS; i++) {
		v4 = rng_below(2);
		if (rng_below(3) == 0) {
			/* Inside (or next to) a known prefix. */
			const struct ref_prefix *q;
			unsigned b;

			q = &p[rng_below(REF_PREFIXES)];
			rand_addr(&a, policy_addr_is_v4(&q->net));
			for (b = 0; b < q->bits; b++) {
				unsigned m = 0x80u >> (b % 8);

				a.b[b / 8] = (uint8_t)((a.b[b / 8] & ~m) |
				    (q->net.b[b / 8] & m));
			}
			if (rng_below(4) == 0 && q->bits > 0) {
				b = rng_below(q->bits);
				a.b[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
			}
		} else {
			rand_addr(&a, v4);
		}
		want = ref_contains(p, REF_PREFIXES, &a);
		got = policy_cidrs_contains(c, &a);
		if (want != got) {
			if (mism++ < 5) {
				policy_addr_str(&a, txt, sizeof(txt));
				fprintf(stderr, "  mismatch %s: want %d "
				    "got %d\n", txt, want, got);
			}
		}
		hits += (size_t)want;
		if (policy_addr_is_v4(&a)) {
			v4n++;
			v4hits += (size_t)want;
		} else {
			v6hits += (size_t)want;
		}
	}
	T_EQ_INT(mism, 0);
	/* The data must exercise both outcomes in both families. */
	T_CHECK(hits > REF_LOOKUPS / 10 && hits < REF_LOOKUPS * 9 / 10);
	T_CHECK(v4hits > 1000 && v4hits < v4n - 1000);
	T_CHECK(v6hits > 1000 && v6hits < (REF_LOOKUPS - v4n) - 1000);
	/* Every prefix's own network address is inside. */
	for (i = 0, mism = 0; i < REF_PREFIXES; i++)
		mism += policy_cidrs_contains(c, &p[i].net) ? 0 : 1;
	T_EQ_INT(mism, 0);
out:
	policy_cidrs_free(c);
	free(p);
}

/* Insertion orders that exercise every trie case: covering, covered,
 * duplicate, diverging, a /0 last. */
static void
test_trie_cases(void)
{
	gk_cidrs *c = NULL;
	gk_addr a;

	T_EQ_INT(policy_cidrs_new(&c), 0);
	a = A("10.1.2.3");
	T_CHECK(!policy_cidrs_contains(c, &a));	/* empty set */
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("10.1.2.0/24")), 0);
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("10.1.3.0/24")), 0);
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("10.1.2.0/24")), 0);
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("10.1.2.128/25")), 0);
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("10.1.4.1");
	T_CHECK(!policy_cidrs_contains(c, &a));
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("10.1.0.0/16")), 0);
	T_CHECK(policy_cidrs_contains(c, &a));
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("10.1.9.9")), 0);
	a = A("10.2.0.0");
	T_CHECK(!policy_cidrs_contains(c, &a));
	a = A("::ffff:10.1.200.1");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("::a01:c801");	/* IPv4-compatible, not mapped: v6 */
	T_CHECK(!policy_cidrs_contains(c, &a));
	T_EQ_INT(policy_cidrs_count(c), 6);
	/* 0.0.0.0/0 covers all of IPv4, none of IPv6. */
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("0.0.0.0/0")), 0);
	a = A("203.0.113.9");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("2001:db8::1");
	T_CHECK(!policy_cidrs_contains(c, &a));
	/* ::/0 covers everything. */
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("::/0")), 0);
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("::");
	T_CHECK(policy_cidrs_contains(c, &a));
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("2001:db8::/32")), 0);
	T_EQ_INT(policy_cidrs_count(c), 9);
	policy_cidrs_free(c);
	c = NULL;

	/* Host routes at both ends of the space. */
	T_EQ_INT(policy_cidrs_new(&c), 0);
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("::")), 0);
	T_EQ_INT(policy_cidrs_add(c,
	    gk_slice_str("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), 0);
	a = A("::");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("::1");
	T_CHECK(!policy_cidrs_contains(c, &a));
	a = A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	T_CHECK(!policy_cidrs_contains(c, &a));
	a = A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	T_CHECK(policy_cidrs_contains(c, &a));
	T_EQ_INT(policy_cidrs_add(c, gk_slice_str("bad")), GK_ERR_INVALID);
	T_EQ_INT(policy_cidrs_count(c), 2);
	policy_cidrs_free(c);

	policy_cidrs_free(NULL);
	T_CHECK(!policy_cidrs_contains(NULL, &a));
	T_EQ_INT(policy_cidrs_count(NULL), 0);
	T_EQ_INT(policy_cidrs_add(NULL, gk_slice_str("::")), GK_ERR_INVALID);
}

/* ---- lists ----------------------------------------------------------- */

static void
test_cidr_list(void)
{
	gk_cidrs *c = NULL;
	gk_addr a;
	char err[128], tiny[8], longitem[300];
	size_t i;

	T_EQ_INT(policy_cidrs_new(&c), 0);
	T_EQ_INT(policy_cidrs_add_list(c,
	    "  10.0.0.0/8,192.168.0.0/16 \t,,  # office\n"
	    "2001:db8::/32#lab\r\n"
	    "# 172.16.0.0/12, all commented\n"
	    "\n203.0.113.7\n# trailing comment", err, sizeof(err)), 0);
	T_EQ_INT(policy_cidrs_count(c), 4);
	a = A("192.168.9.9");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("2001:db8:1::1");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("203.0.113.7");
	T_CHECK(policy_cidrs_contains(c, &a));
	a = A("172.16.0.1");
	T_CHECK(!policy_cidrs_contains(c, &a));
	T_EQ_INT(policy_cidrs_add_list(c, NULL, err, sizeof(err)), 0);
	T_EQ_INT(policy_cidrs_add_list(c, "", err, sizeof(err)), 0);
	T_EQ_INT(policy_cidrs_add_list(c, " ,\n#x", err, sizeof(err)), 0);
	T_EQ_INT(policy_cidrs_count(c), 4);

	err[0] = '\0';
	T_EQ_INT(policy_cidrs_add_list(c, "10.0.0.0/8, 10.0.0.1/8, 1.1.1.1",
	    err, sizeof(err)), GK_ERR_INVALID);
	T_EQ_STR(err, "bad CIDR '10.0.0.1/8'");
	T_EQ_INT(policy_cidrs_add_list(c, "1.2.3.4/33", err, sizeof(err)),
	    GK_ERR_INVALID);
	T_EQ_STR(err, "bad CIDR '1.2.3.4/33'");
	T_EQ_INT(policy_cidrs_add_list(c, "1.2.3.4;5.6.7.8", err,
	    sizeof(err)), GK_ERR_INVALID);
	T_EQ_STR(err, "bad CIDR '1.2.3.4;5.6.7.8'");
	/* Non-printable bytes and quotes are masked. */
	T_EQ_INT(policy_cidrs_add_list(c, "1.2.3.4\x01'\x7f", err,
	    sizeof(err)), GK_ERR_INVALID);
	T_EQ_STR(err, "bad CIDR '1.2.3.4?\?\?'");
	/* A long item is cut short; a tiny buffer stays terminated. */
	for (i = 0; i < sizeof(longitem) - 1; i++)
		longitem[i] = (char)('a' + i % 26);
	longitem[sizeof(longitem) - 1] = '\0';
	T_EQ_INT(policy_cidrs_add_list(c, longitem, err, sizeof(err)),
	    GK_ERR_INVALID);
	T_CHECK(strlen(err) < 90);
	T_CHECK(strstr(err, "...'") != NULL);
	T_CHECK(strncmp(err, "bad CIDR 'abcdefghij", 20) == 0);
	T_EQ_INT(policy_cidrs_add_list(c, longitem, tiny, sizeof(tiny)),
	    GK_ERR_INVALID);
	T_EQ_STR(tiny, "bad CID");
	T_EQ_INT(policy_cidrs_add_list(c, "x", NULL, 0), GK_ERR_INVALID);
	/* Items before the bad one were added (the caller discards). */
	T_EQ_INT(policy_cidrs_count(c), 5);
	policy_cidrs_free(c);
}

#define BIG_LIST 100000

static void
test_big_list(void)
{
	gk_cidrs *c = NULL;
	gk_buf b;
	gk_addr *want;
	char txt[64], err[128];
	size_t i, miss = 0;
	int r;

	gk_buf_init(&b, 8u * 1024 * 1024);
	want = calloc(BIG_LIST, sizeof(*want));
	T_CHECK(want != NULL);
	if (want == NULL)
		goto out;
	for (i = 0, r = 0; i < BIG_LIST && r == 0; i++) {
		struct ref_prefix p;

		rand_addr(&p.net, i % 2 == 0);
		p.bits = i % 2 == 0 ? 120 + rng_below(9) : 48 + rng_below(81);
		clear_host_bits(&p.net, p.bits);
		want[i] = p.net;
		prefix_text(&p, txt, sizeof(txt));
		r = gk_buf_printf(&b, "%s%s", txt, i % 7 == 0 ? "\n" : ", ");
	}
	T_EQ_INT(r, 0);
	T_EQ_INT(policy_cidrs_new(&c), 0);
	T_EQ_INT(policy_cidrs_add_list(c, (const char *)b.data, err,
	    sizeof(err)), 0);
	T_EQ_INT(policy_cidrs_count(c), BIG_LIST);
	for (i = 0; i < BIG_LIST; i++)
		miss += policy_cidrs_contains(c, &want[i]) ? 0 : 1;
	T_EQ_INT(miss, 0);
out:
	policy_cidrs_free(c);
	free(want);
	gk_buf_release(&b);
}

/* ---- origins --------------------------------------------------------- */

static int
allowed(const gk_origins *o, const char *s)
{
	return policy_origins_allowed(o, gk_slice_str(s));
}

static void
test_origins(void)
{
	static const struct {
		const char *origin;
		int want;
	} tab[] = {
		{ "https://app.example.com", 1 },
		{ "HTTPS://APP.Example.COM", 1 },
		{ "https://app.example.com:443", 1 },
		{ "http://app.example.com", 0 },
		{ "https://app.example.com:8443", 0 },
		{ "https://app.example.com/", 0 },
		{ "https://app.example.com/x", 0 },
		{ "https://app.example.com?x", 0 },
		{ "https://app.example.com#x", 0 },
		{ "https://user@app.example.com", 0 },
		{ "https://app.example.com ", 0 },
		{ " https://app.example.com", 0 },
		{ "https://app.example.com\r", 0 },
		{ "https://app.example.com\n", 0 },
		{ "https://app.example.com.", 0 },
		{ "https://app.example.com:", 0 },
		{ "https://app.example.com:0443", 0 },
		{ "https://app.example.com:443:443", 0 },
		{ "https:/app.example.com", 0 },
		{ "https//app.example.com", 0 },
		{ "app.example.com", 0 },
		{ "https://app..example.com", 0 },
		{ "https://app%2eexample.com", 0 },
		{ "https://", 0 },
		{ "", 0 },
		{ "null", 0 },
		{ "http://localhost:8080", 1 },
		{ "http://LOCALHOST:8080", 1 },
		{ "http://localhost", 0 },
		{ "http://localhost:80", 0 },
		{ "http://localhost:8081", 0 },
		{ "https://a.com", 1 },
		{ "https://a.com:443", 1 },
		{ "http://a.com", 0 },
		{ "http://b.com", 1 },
		{ "http://b.com:80", 1 },
		{ "https://b.com", 0 },
		{ "https://x.example.org", 1 },
		{ "http://x.y.example.org:9000", 1 },
		{ "wss://x.example.org", 1 },
		{ "https://example.org", 0 },
		{ "https://badexample.org", 0 },
		{ "https://example.org.evil.com", 0 },
		{ "https://x.example.org.evil.com", 0 },
		{ "https://x.example.org/", 0 },
		{ "https://x.example.org:0", 0 },
		{ "https://x.example.org:65536", 0 },
		{ "https://x.example.org:65535", 1 },
		{ "http://[::1]:8080", 1 },
		{ "http://[0:0::1]:8080", 1 },
		{ "http://[::2]:8080", 0 },
		{ "http://[::1]", 0 },
		{ "http://[::1:8080", 0 },
		{ "http://[1.2.3.4]:8080", 0 },
		{ "http://10.0.0.1", 1 },
		{ "http://10.0.0.01", 0 },
		{ "http://10.0.1", 0 },
		{ "http://1.2.3.4", 0 },
	};
	const char *list = "https://app.example.com, http://localhost:8080,\n"
	    ".example.org # partner sites\n"
	    "https://a.com:443 HTTP://B.COM:80 http://[::1]:8080 "
	    "http://10.0.0.1";
	gk_origins *o = NULL;
	char err[128];
	size_t i;
	int got;

	T_EQ_INT(policy_origins_new(list, &o, err, sizeof(err)), 0);
	T_EQ_INT(policy_origins_count(o), 7);
	for (i = 0; i < GK_ARRAY_LEN(tab); i++) {
		got = allowed(o, tab[i].origin);
		T_EQ_INT(got, tab[i].want);
		if (got != tab[i].want)
			fprintf(stderr, "  origin '%s'\n", tab[i].origin);
	}
	T_EQ_INT(policy_origins_allowed(o,
	    gk_slice_of("https://a.com\0", 14)), 0);
	T_EQ_INT(policy_origins_allowed(o, gk_slice_of("https://a.comx", 13)),
	    1);
	T_EQ_INT(policy_origins_allowed(o, GK_SLICE_NULL), 0);
	policy_origins_free(o);
	o = NULL;

	/* "*": everything well-formed but "null". */
	T_EQ_INT(policy_origins_new("*", &o, err, sizeof(err)), 0);
	T_EQ_INT(policy_origins_count(o), 1);
	T_CHECK(allowed(o, "https://anything.test"));
	T_CHECK(allowed(o, "chrome-extension://abcdef"));
	T_CHECK(!allowed(o, "null"));
	T_CHECK(!allowed(o, "https://a.com/x"));
	T_CHECK(!allowed(o, "garbage"));
	T_CHECK(!allowed(o, "https://a.com\t"));
	T_CHECK(!allowed(o, "https://a%2eb.com"));
	T_CHECK(!allowed(o, "https://a b.com"));
	T_CHECK(!allowed(o, "https://a\x01.com"));
	T_CHECK(!allowed(o, "https://\xc3\xa9.com"));
	T_CHECK(!allowed(o, "https://a.com\\@b.com"));
	T_CHECK(!allowed(o, "ht~tp://a.com"));
	T_CHECK(allowed(o, "git+ssh://a.com"));
	policy_origins_free(o);
	o = NULL;

	/* Suffixes never match IP hosts. */
	T_EQ_INT(policy_origins_new(".example.com", &o, err, sizeof(err)), 0);
	T_CHECK(allowed(o, "https://a.example.com"));
	T_CHECK(!allowed(o, "https://example.com"));
	T_CHECK(!allowed(o, "https://.example.com"));
	T_CHECK(!allowed(o, "http://1.2.3.4"));
	policy_origins_free(o);
	o = NULL;

	/* Empty and NULL lists allow nothing. */
	T_EQ_INT(policy_origins_new(NULL, &o, err, sizeof(err)), 0);
	T_EQ_INT(policy_origins_count(o), 0);
	T_CHECK(!allowed(o, "https://a.com"));
	policy_origins_free(o);
	o = NULL;
	T_EQ_INT(policy_origins_new(" # nothing\n", &o, err, sizeof(err)), 0);
	T_CHECK(!allowed(o, "https://a.com"));
	policy_origins_free(o);
	o = NULL;
	T_CHECK(!allowed(NULL, "https://a.com"));
	T_EQ_INT(policy_origins_count(NULL), 0);
	policy_origins_free(NULL);
}

static void
test_origins_bad(void)
{
	static const char *bad[] = {
		"https://a.com/", "example.com", ".", ".a..b", "*.example.com",
		"https://", "https://a.com:99999", "http://[::1", "null", "**",
		"https://a.com:", "ftp//a.com", "https://a_b.com/x", ".1.2",
		"https://user@a.com", "1https://a.com", "https://a.com.",
		"..example.com", ".example.com.",
	};
	gk_origins *o;
	char err[128], want[128], big[300], hdr[320];
	size_t i;
	int r;

	for (i = 0; i < GK_ARRAY_LEN(bad); i++) {
		o = (gk_origins *)&o;	/* must be reset to NULL */
		err[0] = '\0';
		r = policy_origins_new(bad[i], &o, err, sizeof(err));
		T_EQ_INT(r, GK_ERR_INVALID);
		T_CHECK(o == NULL);
		snprintf(want, sizeof(want), "bad origin '%s'", bad[i]);
		T_EQ_STR(err, want);
		if (r == 0)
			policy_origins_free(o);
	}
	/* A suffix must leave room for one more label (hosts <= 253). */
	memset(big, 'a', sizeof(big));
	big[0] = '.';
	for (i = 60; i < 250; i += 60)
		big[i] = '.';
	big[252] = '\0';
	o = NULL;
	T_EQ_INT(policy_origins_new(big, &o, err, sizeof(err)), 0);
	snprintf(hdr, sizeof(hdr), "https://b%s", big);
	T_EQ_INT(strlen(hdr), 8 + 253);
	T_CHECK(policy_origins_allowed(o, gk_slice_str(hdr)));
	policy_origins_free(o);
	big[252] = 'a';
	big[253] = '\0';
	T_EQ_INT(policy_origins_new(big, &o, err, sizeof(err)),
	    GK_ERR_INVALID);
	T_CHECK(o == NULL);
	/* Schemes of 32 bytes at most. */
	T_EQ_INT(policy_origins_new("abcdefghijklmnopqrstuvwxyz012345://a",
	    &o, err, sizeof(err)), 0);
	policy_origins_free(o);
	o = NULL;
	T_EQ_INT(policy_origins_new("abcdefghijklmnopqrstuvwxyz0123456://a",
	    &o, err, sizeof(err)), GK_ERR_INVALID);
	T_EQ_INT(policy_origins_new("https://ok.com, https://bad.com/", &o,
	    err, sizeof(err)), GK_ERR_INVALID);
	T_EQ_STR(err, "bad origin 'https://bad.com/'");
	T_CHECK(o == NULL);
}

/* ---- the v1 ACL ------------------------------------------------------ */

static int
check_ip(const gk_policy *p, const char *addr, int upload)
{
	gk_addr a = A(addr);

	return policy_check_ip(p, &a, upload);
}

static int
check_admin(const gk_policy *p, const char *addr)
{
	gk_addr a = A(addr);

	return policy_check_admin(p, &a);
}

static void
test_policy_ip(void)
{
	static const struct {
		const char *addr;
		int dl;		/* download / list */
		int up_exempt;	/* upload, uploads_exempt_ip = 1: the allow
				 * list is skipped, the deny list is not */
		int up_strict;	/* upload, uploads_exempt_ip = 0 */
	} tab[] = {
		{ "10.2.3.4", 0, 0, 0 },
		{ "::ffff:10.2.3.4", 0, 0, 0 },
		{ "10.1.2.3", GK_ERR_DENIED, GK_ERR_DENIED, GK_ERR_DENIED },
		{ "10.1.255.255", GK_ERR_DENIED, GK_ERR_DENIED,
		    GK_ERR_DENIED },
		{ "192.168.1.1", GK_ERR_DENIED, 0, GK_ERR_DENIED },
		{ "2001:db8::5", 0, 0, 0 },
		{ "2001:db8:bad::1", GK_ERR_DENIED, GK_ERR_DENIED,
		    GK_ERR_DENIED },
		{ "2001:db9::", GK_ERR_DENIED, 0, GK_ERR_DENIED },
		{ "::1", GK_ERR_DENIED, 0, GK_ERR_DENIED },
		{ "127.0.0.1", GK_ERR_DENIED, 0, GK_ERR_DENIED },
	};
	gk_config *cfg;
	gk_policy *p = NULL;
	char err[128];
	size_t i;

	cfg = calloc(1, sizeof(*cfg));
	T_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	cfg->ip_allow = (char *)"10.0.0.0/8, 2001:db8::/32";
	cfg->ip_deny = (char *)"10.1.0.0/16\n2001:db8:bad::/48";
	cfg->admin_cidrs = (char *)"127.0.0.1/32, ::1/128";
	cfg->origins = (char *)"https://app.example.com";

	cfg->uploads_exempt_ip = 1;
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	for (i = 0; i < GK_ARRAY_LEN(tab); i++) {
		T_EQ_INT(check_ip(p, tab[i].addr, 0), tab[i].dl);
		T_EQ_INT(check_ip(p, tab[i].addr, 1), tab[i].up_exempt);
	}
	/* Admin CIDRs only: the allow list does not make an admin. */
	T_EQ_INT(check_admin(p, "127.0.0.1"), 0);
	T_EQ_INT(check_admin(p, "::ffff:127.0.0.1"), 0);
	T_EQ_INT(check_admin(p, "::1"), 0);
	T_EQ_INT(check_admin(p, "127.0.0.2"), GK_ERR_DENIED);
	T_EQ_INT(check_admin(p, "10.2.3.4"), GK_ERR_DENIED);
	T_EQ_INT(check_admin(p, "::2"), GK_ERR_DENIED);
	policy_free(p);
	p = NULL;

	cfg->uploads_exempt_ip = 0;
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	for (i = 0; i < GK_ARRAY_LEN(tab); i++) {
		T_EQ_INT(check_ip(p, tab[i].addr, 0), tab[i].dl);
		T_EQ_INT(check_ip(p, tab[i].addr, 1), tab[i].up_strict);
	}
	policy_free(p);
	p = NULL;

	/* An empty allow list denies everything; deny still wins. */
	cfg->ip_allow = (char *)" # none yet";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_EQ_INT(check_ip(p, "10.2.3.4", 0), GK_ERR_DENIED);
	T_EQ_INT(check_ip(p, "2001:db8::5", 1), GK_ERR_DENIED);
	policy_free(p);
	p = NULL;
	cfg->ip_allow = (char *)"::/0";
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_EQ_INT(check_ip(p, "192.0.2.1", 0), 0);
	T_EQ_INT(check_ip(p, "10.1.0.1", 0), GK_ERR_DENIED);
	T_EQ_INT(check_ip(p, "2001:db8:bad::1", 0), GK_ERR_DENIED);
	policy_free(p);
	p = NULL;

	/* NULL settings are empty lists. */
	memset(cfg, 0, sizeof(*cfg));
	cfg->uploads_exempt_ip = 1;
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_EQ_INT(check_ip(p, "10.2.3.4", 0), GK_ERR_DENIED);
	T_EQ_INT(check_ip(p, "10.2.3.4", 1), 0);
	T_EQ_INT(check_admin(p, "127.0.0.1"), GK_ERR_DENIED);
	T_EQ_INT(policy_check_origin(p, gk_slice_str("https://a.com"), 1),
	    GK_ERR_DENIED);
	policy_free(p);
	p = NULL;

	/* Fail closed on NULL. */
	T_EQ_INT(check_ip(NULL, "10.2.3.4", 1), GK_ERR_DENIED);
	T_EQ_INT(check_admin(NULL, "127.0.0.1"), GK_ERR_DENIED);
	T_EQ_INT(policy_check_origin(NULL, GK_SLICE_NULL, 0), GK_ERR_DENIED);
	policy_free(NULL);
	free(cfg);
}

static void
test_policy_origin(void)
{
	static const struct {
		const char *origin;	/* NULL: no Origin header */
		int strict;		/* allow_missing_origin = 0 */
		int lax;		/* allow_missing_origin = 1 */
	} tab[] = {
		{ NULL, GK_ERR_DENIED, 0 },
		{ "https://app.example.com", 0, 0 },
		{ "https://x.partner.net", 0, 0 },
		{ "https://evil.com", GK_ERR_DENIED, GK_ERR_DENIED },
		{ "null", GK_ERR_DENIED, GK_ERR_DENIED },
		{ "", GK_ERR_DENIED, GK_ERR_DENIED },
		{ "https://app.example.com/", GK_ERR_DENIED, GK_ERR_DENIED },
	};
	gk_config *cfg;
	gk_policy *p = NULL;
	char err[128];
	size_t i;
	int lax;

	cfg = calloc(1, sizeof(*cfg));
	T_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	cfg->origins = (char *)"https://app.example.com .partner.net";
	for (lax = 0; lax <= 1; lax++) {
		cfg->allow_missing_origin = lax;
		T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
		for (i = 0; i < GK_ARRAY_LEN(tab); i++) {
			gk_slice s = gk_slice_str(tab[i].origin);

			T_EQ_INT(policy_check_origin(p, s,
			    tab[i].origin != NULL),
			    lax ? tab[i].lax : tab[i].strict);
		}
		policy_free(p);
		p = NULL;
	}
	/* "*" still refuses "null" and a missing header (strict). */
	cfg->origins = (char *)"*";
	cfg->allow_missing_origin = 0;
	T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), 0);
	T_EQ_INT(policy_check_origin(p, gk_slice_str("https://evil.com"), 1),
	    0);
	T_EQ_INT(policy_check_origin(p, gk_slice_str("null"), 1),
	    GK_ERR_DENIED);
	T_EQ_INT(policy_check_origin(p, GK_SLICE_NULL, 0), GK_ERR_DENIED);
	policy_free(p);
	free(cfg);
}

static void
test_policy_errors(void)
{
	static const struct {
		const char *allow, *deny, *admin, *origins, *err;
	} tab[] = {
		{ "10.0.0.1/8", NULL, NULL, NULL,
		    "ip_allow: bad CIDR '10.0.0.1/8'" },
		{ "10.0.0.0/8", "::1/129", NULL, NULL,
		    "ip_deny: bad CIDR '::1/129'" },
		{ NULL, NULL, "127.0.0.1/32, localhost", NULL,
		    "admin_cidrs: bad CIDR 'localhost'" },
		{ NULL, NULL, NULL, "https://a.com, a.com",
		    "origins: bad origin 'a.com'" },
	};
	gk_config *cfg;
	gk_policy *p;
	char err[128], tiny[10];
	size_t i;

	cfg = calloc(1, sizeof(*cfg));
	T_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	for (i = 0; i < GK_ARRAY_LEN(tab); i++) {
		cfg->ip_allow = (char *)tab[i].allow;
		cfg->ip_deny = (char *)tab[i].deny;
		cfg->admin_cidrs = (char *)tab[i].admin;
		cfg->origins = (char *)tab[i].origins;
		p = (gk_policy *)&p;
		err[0] = '\0';
		T_EQ_INT(policy_new(cfg, &p, err, sizeof(err)), GK_ERR_CONFIG);
		T_CHECK(p == NULL);
		T_EQ_STR(err, tab[i].err);
		T_EQ_INT(policy_new(cfg, &p, tiny, sizeof(tiny)),
		    GK_ERR_CONFIG);
		T_EQ_INT(strlen(tiny), sizeof(tiny) - 1);
		T_EQ_INT(policy_new(cfg, &p, NULL, 0), GK_ERR_CONFIG);
	}
	p = (gk_policy *)&p;
	T_EQ_INT(policy_new(NULL, &p, err, sizeof(err)), GK_ERR_INVALID);
	T_CHECK(p == NULL);
	free(cfg);
}

int
main(void)
{
	test_addr();
	test_cidr_parse();
	test_trie_vs_ref();
	test_trie_cases();
	test_cidr_list();
	test_big_list();
	test_origins();
	test_origins_bad();
	test_policy_ip();
	test_policy_origin();
	test_policy_errors();
	return T_DONE();
}
