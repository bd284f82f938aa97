/*
 * fuzz_cp_line.c - libFuzzer target for checkpoint file lines, which
 * 'audit verify' reads from a file that may sit on shared storage.
 * Properties for any input:
 *   - parsing never reads past the NUL-terminated copy;
 *   - whatever parses has a valid instance id and re-encodes to a line
 *     that parses back to the same checkpoint (hash, sig, seq, time).
 */
#include "audit/audit_int.h"

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
	audit_checkpoint cp, back;
	gk_buf line;
	char *s;

	if (size > 8192 || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (audit_cp_parse(s, &cp) == 0) {
		check(audit_instance_valid(cp.instance));
		gk_buf_init(&line, 4096);
		check(audit_cp_line(&cp, &line) == 0);
		check(audit_cp_parse((const char *)line.data, &back) == 0);
		check(memcmp(&cp, &back, sizeof(cp)) == 0);
		gk_buf_release(&line);
	}
	free(s);
	return 0;
}
