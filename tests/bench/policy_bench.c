/*
 * policy_bench.c - the CIDR trie at scale: loading a list file of 10 and
 * of 100,000 random CIDRs (IPv4 and IPv6 mixed), and the cost of a lookup
 * in each, for random addresses and for addresses inside listed
 * prefixes (the deep paths). Prints a table; no thresholds (make bench).
 */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"

#define LOOKUPS 4000000u
#define PROBES 65536u

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A random CIDR as text, host bits clear; its network into *net. */
static void
random_cidr(gk_buf *b, gk_addr *net)
{
	char s[GK_ADDR_STRLEN];
	unsigned bits, i;
	uint64_t r = rng();
	int v4 = (r & 3) != 0;	/* three in four are IPv4 */

	memset(net, 0, sizeof(*net));
	if (v4) {
		net->b[10] = net->b[11] = 0xff;
		r = rng();
		memcpy(net->b + 12, &r, 4);
		bits = 96 + 8 + (unsigned)(rng() % 25);	/* /8../32 */
	} else {
		net->b[0] = 0x20;
		r = rng();
		memcpy(net->b + 1, &r, 8);
		r = rng();
		memcpy(net->b + 9, &r, 7);
		bits = 16 + (unsigned)(rng() % 113);	/* /16../128 */
	}
	for (i = bits; i < 128; i++)
		net->b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
	policy_addr_str(net, s, sizeof(s));
	if (gk_buf_printf(b, "%s/%u\n", s, v4 ? bits - 96 : bits) != 0)
		abort();
}

static void
run(size_t n, gk_addr *rand_probe, FILE *out)
{
	gk_buf text;
	gk_addr *inside;
	gk_cidrs *c = NULL;
	double t0, t_load, t_rand, t_in;
	volatile unsigned hits = 0;
	char err[160];
	size_t i;

	inside = calloc(PROBES, sizeof(*inside));
	gk_buf_init(&text, 64u * 1024 * 1024);
	for (i = 0; i < n; i++) {
		gk_addr net;

		random_cidr(&text, &net);
		if (i < PROBES)
			inside[i] = net;
	}
	for (i = n; i < PROBES; i++)
		inside[i] = inside[i % n];
	if (policy_cidrs_new(&c) != 0)
		abort();
	t0 = now_s();
	if (policy_cidrs_add_text(c, "bench.txt", gk_slice_of(text.data,
	    text.len), err, sizeof(err)) != 0) {
		fprintf(stderr, "policy_bench: %s\n", err);
		exit(1);
	}
	if (policy_cidrs_optimize(c) != 0)
		abort();
	t_load = now_s() - t0;
	t0 = now_s();
	for (i = 0; i < LOOKUPS; i++)
		hits += (unsigned)policy_cidrs_contains(c,
		    &rand_probe[i & (PROBES - 1)]);
	t_rand = now_s() - t0;
	t0 = now_s();
	for (i = 0; i < LOOKUPS; i++)
		hits += (unsigned)policy_cidrs_contains(c,
		    &inside[i & (PROBES - 1)]);
	t_in = now_s() - t0;
	fprintf(out, "| %zu | %.1f | %.1f | %.1f |\n", n, t_load * 1e3,
	    t_rand * 1e9 / LOOKUPS, t_in * 1e9 / LOOKUPS);
	(void)hits;
	policy_cidrs_free(c);
	gk_buf_release(&text);
	free(inside);
}

int
main(void)
{
	gk_addr *probe = calloc(PROBES, sizeof(*probe));
	gk_buf dummy;
	size_t i;

	for (i = 0; i < PROBES; i++) {
		gk_buf_init(&dummy, 256);
		random_cidr(&dummy, &probe[i]);
		gk_buf_release(&dummy);
		/* random host bits too */
		probe[i].b[15] ^= (uint8_t)rng();
	}
	printf("CIDR trie (list file of random IPv4/IPv6 CIDRs, %u lookups "
	    "each)\n\n", LOOKUPS);
	printf("| entries | load (ms) | lookup, random address (ns) | "
	    "lookup, inside a listed prefix (ns) |\n");
	printf("|---:|---:|---:|---:|\n");
	run(10, probe, stdout);
	run(100000, probe, stdout);
	free(probe);
	return 0;
}
