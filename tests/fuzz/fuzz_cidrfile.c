/*
 * fuzz_cidrfile.c - libFuzzer target for CIDR list files (one CIDR per
 * line, '#' comments). Invariants: never crashes; an error message names
 * the file and a line number within the input; on success every line
 * that holds a CIDR is contained in the set.
 */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160];
	gk_cidrs *c = NULL;
	size_t lines = 1, i, line;
	gk_addr net;
	unsigned bits;
	int r;

	if (policy_cidrs_new(&c) != 0)
		return 0;
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	memset(err, 'x', sizeof(err));
	r = policy_cidrs_add_text(c, "f.txt", gk_slice_of(data, size), err,
	    sizeof(err));
	check(r == 0 || r == GK_ERR_INVALID || r == GK_ERR_TOO_LARGE);
	if (r != 0) {
		check(memchr(err, '\0', sizeof(err)) != NULL);
		check(strncmp(err, "f.txt:", 6) == 0);
		line = strtoul(err + 6, NULL, 10);
		check(line >= 1 && line <= lines);
	} else {
		/* each line's entry, re-parsed here, is in the set */
		const uint8_t *p = data, *end = data + size, *nl, *hash;

		while (p < end) {
			size_t n;

			nl = memchr(p, '\n', (size_t)(end - p));
			n = (size_t)((nl ? nl : end) - p);
			hash = memchr(p, '#', n);
			if (hash != NULL)
				n = (size_t)(hash - p);
			while (n > 0 && (p[0] == ' ' || p[0] == '\t' ||
			    p[0] == '\r')) {
				p++;
				n--;
			}
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
			    p[n - 1] == '\r'))
				n--;
			if (n > 0) {
				check(policy_cidr_parse(gk_slice_of(p, n), &net,
				    &bits) == 0);
				check(policy_cidrs_contains(c, &net));
			}
			p = nl ? nl + 1 : end;
		}
	}
	policy_cidrs_free(c);
	return 0;
}
