/*
 * fuzz_forwarded.c - libFuzzer target for the X-Forwarded-For and
 * Forwarded (RFC 7239) parsers and the trusted-proxy choice of the client
 * address. Invariants: never crashes; every element reported as an
 * address prints and parses back to itself; the chosen client is the
 * peer for an untrusted peer, and behind a trusted one either an address
 * the header named or :: (GK_FWD_BAD).
 */
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

struct names {
	size_t n;
	gk_addr a[300];
};

static int
elem_cb(void *arg, int ok, const gk_addr *a)
{
	struct names *ns = arg;
	char s[GK_ADDR_STRLEN];
	gk_addr b;

	check(ns->n < 256);
	if (ok) {
		check(a != NULL);
		policy_addr_str(a, s, sizeof(s));
		check(policy_addr_parse(gk_slice_str(s), &b) == 0);
		check(memcmp(a, &b, sizeof(b)) == 0);
		ns->a[ns->n] = *a;
	} else {
		memset(&ns->a[ns->n], 0, sizeof(gk_addr));
	}
	ns->n++;
	return 0;
}

static gk_policy *pol_xff, *pol_fwd;

static gk_policy *
make_policy(const char *header)
{
	policy_settings cfg;
	gk_policy *p = NULL;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ip_allow = (char *)"0.0.0.0/0";
	cfg.trusted_proxies = (char *)"10.0.0.0/8, 127.0.0.1, 2001:db8::/32";
	cfg.forwarded_header = (char *)header;
	check(policy_new(&cfg, &p, NULL, 0) == 0);
	return p;
}

static void
choose(gk_policy *p, gk_slice v, int fwd, const struct names *ns)
{
	gk_addr peer, out;
	static const uint8_t zero[16];
	size_t i;
	int r, found = 0;

	check(policy_addr_parse(gk_slice_str("10.1.2.3"), &peer) == 0);
	r = policy_client_addr(p, &peer, fwd ? GK_SLICE_NULL : v, !fwd,
	    fwd ? v : GK_SLICE_NULL, fwd, &out);
	check(r == GK_FWD_HEADER || r == GK_FWD_BAD);
	if (r == GK_FWD_BAD) {
		check(memcmp(out.b, zero, 16) == 0);
		return;
	}
	for (i = 0; i < ns->n && !found; i++)
		found = memcmp(&ns->a[i], &out, sizeof(out)) == 0;
	check(found);
	/* an untrusted peer: always itself */
	check(policy_addr_parse(gk_slice_str("198.51.100.1"), &peer) == 0);
	check(policy_client_addr(p, &peer, v, 1, v, 1, &out) ==
	    GK_FWD_IGNORED);
	check(memcmp(&peer, &out, sizeof(out)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct names ns;
	gk_slice v = gk_slice_of(data, size);
	int r;

	if (pol_xff == NULL) {
		pol_xff = make_policy("x-forwarded-for");
		pol_fwd = make_policy("forwarded");
	}
	ns.n = 0;
	r = policy_xff_parse(v, elem_cb, &ns);
	check(r == 0 || r == GK_ERR_INVALID);
	if (r == 0)
		choose(pol_xff, v, 0, &ns);
	ns.n = 0;
	r = policy_forwarded_parse(v, elem_cb, &ns);
	check(r == 0 || r == GK_ERR_INVALID);
	if (r == 0)
		choose(pol_fwd, v, 1, &ns);
	return 0;
}
