/*
 * fuzz_grant_form.c - libFuzzer target for the console's grant form
 * (POST /admin/api/grants's query: gate_params_parse, then
 * console_grant_parse). Properties for any input:
 *   - a refusal carries a "Bad Request: " message;
 *   - an accepted form has a name of 1..128 bytes, a prefix of at most
 *     1024, operations within get/list/put/delete and not none, at most
 *     16 client CIDRs, each 1..64 bytes without ',' or an outer space,
 *     a rate of at most 1,000,000, and every string NUL-terminated
 *     inside its field.
 */
#include "gate/console_int.h"

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
	gate_params ps;
	gk_slice dup;
	const char *why = NULL;
	gk_grant g;
	size_t i, n;

	memset(&ps, 0, sizeof(ps));
	if (gate_params_parse(gk_slice_of(data, size), &ps, &dup) != 0) {
		gate_params_release(&ps);
		return 0;
	}
	if (console_grant_parse(&ps, &g, &why) != 0) {
		check(why != NULL && strncmp(why, "Bad Request: ", 13) == 0);
	} else {
		check(why == NULL);
		n = strnlen(g.name, sizeof(g.name));
		check(n >= 1 && n <= GRANT_NAME_MAX);
		check(strnlen(g.prefix, sizeof(g.prefix)) <= GRANT_PREFIX_MAX);
		check(g.ops != 0 && (g.ops & ~GRANT_OP_ALL) == 0);
		check(g.n_ips <= GRANT_IPS_MAX);
		for (i = 0; i < g.n_ips; i++) {
			n = strnlen(g.ips[i], sizeof(g.ips[i]));
			check(n >= 1 && n <= GRANT_CIDR_MAX);
			check(strchr(g.ips[i], ',') == NULL);
			check(g.ips[i][0] != ' ' && g.ips[i][n - 1] != ' ');
		}
		check(g.rate <= 1000000u);
	}
	gate_params_release(&ps);
	return 0;
}
