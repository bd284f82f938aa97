/*
 * fuzz_origin.c - libFuzzer target for origin lists and Origin headers.
 * The input up to its first NUL is a list; the whole input is also an
 * Origin header, matched against that list and a few fixed ones, with
 * properties that must hold for any input:
 *   - a header any list allows is well-formed, so "*" allows it too;
 *   - "*" never allows "null" or a header with spaces, control bytes,
 *     '/', '@', '?', '#', '%' or '\' after "://";
 *   - case does not matter;
 *   - a one-item list allows its own item; ".x" allows "https://a.x" but
 *     neither "https://x" nor "https://ax".
 */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 65536
#define MAX_HEADER 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gk_origins *fixed[3];
static gk_origins *star;

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
setup(void)
{
	static const char *lists[] = {
		"https://app.example.com, http://localhost:8080, .example.org",
		"http://[::1]:8080 https://a.com:443 http://10.0.0.1",
		".a.b .c-d.e_f, wss://x.y:1",
	};
	char err[128];
	size_t i;

	if (star != NULL)
		return;
	check(policy_origins_new("*", &star, err, sizeof(err)) == 0);
	for (i = 0; i < 3; i++)
		check(policy_origins_new(lists[i], &fixed[i], err,
		    sizeof(err)) == 0);
}

/* What "*" must refuse: nothing allowed may contain these. */
static int
plainly_bad(gk_slice h)
{
	const uint8_t *sep;
	size_t i, start;

	if (gk_slice_eq_str(h, "null") || h.len < 4)
		return 1;
	sep = memmem(h.p, h.len, "://", 3);
	if (sep == NULL)
		return 1;
	start = (size_t)(sep - h.p) + 3;
	for (i = 0; i < h.len; i++) {
		uint8_t c = h.p[i];

		if (c <= 0x20 || c >= 0x7f)
			return 1;
		if (i >= start && (c == '/' || c == '@' || c == '?' ||
		    c == '#' || c == '%' || c == '\\'))
			return 1;
	}
	return 0;
}

static int
is_sep(uint8_t c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '#' || c == '\0';
}

/* One item alone: a list of it accepts itself, or its suffix rules. */
static void
fuzz_item(const uint8_t *data, size_t size)
{
	char item[300], hdr[320], err[128];
	gk_origins *o = NULL;
	size_t n;
	int r;

	for (n = 0; n < size && n < sizeof(item) - 1 && !is_sep(data[n]); n++)
		item[n] = (char)data[n];
	if (n == 0 || n == sizeof(item) - 1)
		return;
	item[n] = '\0';
	r = policy_origins_new(item, &o, err, sizeof(err));
	if (r != 0) {
		check(o == NULL && strncmp(err, "bad origin '", 12) == 0);
		return;
	}
	check(policy_origins_count(o) == 1);
	if (strcmp(item, "*") == 0) {
		policy_origins_free(o);
		return;
	}
	if (item[0] == '.') {
		snprintf(hdr, sizeof(hdr), "https://a%s", item);
		check(policy_origins_allowed(o, gk_slice_str(hdr)));
		snprintf(hdr, sizeof(hdr), "https://%s", item + 1);
		check(!policy_origins_allowed(o, gk_slice_str(hdr)));
		snprintf(hdr, sizeof(hdr), "https://a%s", item + 1);
		check(!policy_origins_allowed(o, gk_slice_str(hdr)));
	} else {
		check(policy_origins_allowed(o, gk_slice_of(item, n)));
		check(policy_origins_allowed(star, gk_slice_of(item, n)));
	}
	policy_origins_free(o);
}

static int
allowed_by_any(gk_origins *own, gk_slice h)
{
	size_t i;
	int any = own != NULL && policy_origins_allowed(own, h);

	for (i = 0; i < 3; i++)
		any |= policy_origins_allowed(fixed[i], h);
	return any;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gk_origins *own = NULL;
	char *list = NULL, err[96];
	uint8_t flip[MAX_HEADER];
	gk_slice h = gk_slice_of(data, size > MAX_HEADER ? MAX_HEADER : size);
	size_t n, i;
	int r, any, st;

	setup();
	n = size < MAX_LIST ? size : MAX_LIST;
	if ((list = malloc(n + 1)) == NULL)
		return 0;
	memcpy(list, data, n);
	list[n] = '\0';
	memset(err, 'x', sizeof(err));
	r = policy_origins_new(list, &own, err, sizeof(err));
	check(r == 0 || r == GK_ERR_INVALID || r == GK_ERR_TOO_LARGE);
	if (r != 0)
		check(own == NULL && memchr(err, '\0', sizeof(err)) != NULL);

	any = allowed_by_any(own, h);
	st = policy_origins_allowed(star, h);
	check(!any || st);
	check(!st || !plainly_bad(h));
	/* Flip the case of every letter: same answers. */
	for (i = 0; i < h.len; i++) {
		uint8_t c = h.p[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			c ^= 0x20;
		flip[i] = c;
	}
	check(allowed_by_any(own, gk_slice_of(flip, h.len)) == any);
	check(policy_origins_allowed(star, gk_slice_of(flip, h.len)) == st);

	fuzz_item(data, size);
	policy_origins_free(own);
	free(list);
	return 0;
}
