/*
 * fuzz_cidr.c - libFuzzer target for address and CIDR parsing and the CIDR
 * trie. The input is tried as an address, as a CIDR and as a list; then it
 * is read as binary records (16 address bytes + 1 prefix-length byte) that
 * are added as text and checked against a linear-scan reference.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 65536
#define MAX_RECORDS 256
#define RECORD_LEN 17

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
ref_match(const gk_addr *net, unsigned bits, const gk_addr *a)
{
	unsigned i;

	for (i = 0; i < bits; i++) {
		unsigned m = 0x80u >> (i % 8);

		if ((net->b[i / 8] & m) != (a->b[i / 8] & m))
			return 0;
	}
	return 1;
}

static void
clear_host_bits(gk_addr *a, unsigned bits)
{
	unsigned i;

	for (i = bits; i < 128; i++)
		a->b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

/* Parse, print, parse again: the same address. */
static void
fuzz_addr(const uint8_t *data, size_t size)
{
	char s[GK_ADDR_STRLEN];
	gk_addr a, b;

	if (policy_addr_parse(gk_slice_of(data, size), &a) != 0)
		return;
	check(size <= 45 && memchr(data, '\0', size) == NULL);
	policy_addr_str(&a, s, sizeof(s));
	check(strlen(s) > 0 && strlen(s) < sizeof(s));
	check((strchr(s, ':') == NULL) == policy_addr_is_v4(&a));
	check(policy_addr_parse(gk_slice_str(s), &b) == 0);
	check(memcmp(&a, &b, sizeof(a)) == 0);
}

/* A parsed CIDR has clear host bits, contains itself, and reprints. */
static void
fuzz_cidr_text(const uint8_t *data, size_t size)
{
	char s[GK_ADDR_STRLEN + 8], txt[GK_ADDR_STRLEN];
	gk_cidrs *c = NULL;
	gk_addr net, net2;
	unsigned bits, bits2, i;

	if (policy_cidr_parse(gk_slice_of(data, size), &net, &bits) != 0)
		return;
	check(bits <= 128);
	for (i = bits; i < 128; i++)
		check((net.b[i / 8] & (0x80u >> (i % 8))) == 0);
	check(inet_ntop(AF_INET6, net.b, txt, sizeof(txt)) != NULL);
	snprintf(s, sizeof(s), "%s/%u", txt, bits);
	check(policy_cidr_parse(gk_slice_str(s), &net2, &bits2) == 0);
	check(bits == bits2 && memcmp(&net, &net2, sizeof(net)) == 0);
	if (policy_cidrs_new(&c) != 0)
		return;
	check(policy_cidrs_add(c, gk_slice_of(data, size)) == 0);
	check(policy_cidrs_count(c) == 1);
	check(policy_cidrs_contains(c, &net));
	if (bits > 0) {
		/* Flip the last prefix bit: outside. */
		net.b[(bits - 1) / 8] ^= (uint8_t)(0x80u >> ((bits - 1) % 8));
		check(!policy_cidrs_contains(c, &net));
	}
	policy_cidrs_free(c);
}

/* The whole input as a list: never crashes, err always terminated. */
static void
fuzz_list(const uint8_t *data, size_t size)
{
	char *list, err[96];
	gk_cidrs *c = NULL;
	gk_addr a;
	size_t n = size < MAX_LIST ? size : MAX_LIST, i;
	int r;

	if ((list = malloc(n + 1)) == NULL)
		return;
	memcpy(list, data, n);
	list[n] = '\0';
	if (policy_cidrs_new(&c) != 0)
		goto out;
	memset(err, 'x', sizeof(err));
	r = policy_cidrs_add_list(c, list, err, sizeof(err));
	check(r == 0 || r == GK_ERR_INVALID || r == GK_ERR_TOO_LARGE);
	if (r != 0) {
		check(memchr(err, '\0', sizeof(err)) != NULL);
		check(r != GK_ERR_INVALID ||
		    strncmp(err, "bad CIDR '", 10) == 0);
	}
	for (i = 0; i + 16 <= n && i < 64 * 16; i += 16) {
		memcpy(a.b, data + i, 16);
		(void)policy_cidrs_contains(c, &a);
	}
out:
	policy_cidrs_free(c);
	free(list);
}

/* Binary records against a brute-force reference. */
static void
fuzz_trie(const uint8_t *data, size_t size)
{
	gk_addr net[MAX_RECORDS], a;
	unsigned bits[MAX_RECORDS], b;
	char txt[GK_ADDR_STRLEN], s[GK_ADDR_STRLEN + 8];
	gk_cidrs *c = NULL;
	size_t n = size / RECORD_LEN, i, j, k;
	int want;

	if (n > MAX_RECORDS)
		n = MAX_RECORDS;
	if (n == 0 || policy_cidrs_new(&c) != 0)
		return;
	for (i = 0; i < n; i++) {
		const uint8_t *p = data + i * RECORD_LEN;

		memcpy(net[i].b, p, 16);
		bits[i] = p[16] % 129u;
		clear_host_bits(&net[i], bits[i]);
		if (policy_addr_is_v4(&net[i]) && bits[i] >= 96 &&
		    (p[16] & 0x80) == 0) {
			policy_addr_str(&net[i], txt, sizeof(txt));
			snprintf(s, sizeof(s), "%s/%u", txt, bits[i] - 96);
		} else {
			check(inet_ntop(AF_INET6, net[i].b, txt,
			    sizeof(txt)) != NULL);
			snprintf(s, sizeof(s), "%s/%u", txt, bits[i]);
		}
		check(policy_cidrs_add(c, gk_slice_str(s)) == 0);
	}
	check(policy_cidrs_count(c) == n);
	/* Probe each record's raw address and one-bit variants of it. */
	for (i = 0; i < n; i++) {
		for (k = 0; k < 4; k++) {
			memcpy(a.b, data + i * RECORD_LEN, 16);
			if (k > 0) {
				b = (data[i * RECORD_LEN + 16] * (unsigned)k +
				    (unsigned)(i * 7)) % 128u;
				a.b[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
			}
			for (j = 0, want = 0; j < n && !want; j++)
				want = ref_match(&net[j], bits[j], &a);
			check(policy_cidrs_contains(c, &a) == want);
		}
	}
	policy_cidrs_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_addr(data, size);
	fuzz_cidr_text(data, size);
	fuzz_list(data, size);
	fuzz_trie(data, size);
	return 0;
}
