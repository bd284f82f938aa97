/*
 * fuzz_journal.c - libFuzzer target for the audit journal's record
 * decoder (audit_chain_decode), which reads <db>.journal back at start:
 * a file a crash may have cut or a disk may have damaged. Properties for
 * any input:
 *   - decoding never reads past the input;
 *   - whatever decodes re-encodes (the chain's canonical encoding) to
 *     exactly the input, so the hash check at replay covers every byte.
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
	static const uint8_t zero[AUDIT_HASH_LEN];
	char inst[AUDIT_INSTANCE_MAX + 1];
	gk_audit_record rec;
	uint8_t hash[AUDIT_HASH_LEN];
	uint8_t *copy;
	char *block = NULL;
	int64_t seq;
	gk_buf scratch;

	/* an exact-size copy, so ASan sees any read past the input */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	if (audit_chain_decode(copy, size, inst, &seq, &rec, &block) == 0) {
		check(strlen(inst) > 0);
		gk_buf_init(&scratch, AUDIT_ENC_CAP);
		if (audit_chain_hash(&scratch, inst, seq, zero, &rec,
		    hash) == 0) {
			check(scratch.len == AUDIT_HASH_LEN + size);
			check(memcmp(scratch.data + AUDIT_HASH_LEN, copy,
			    size) == 0);
		}
		gk_buf_release(&scratch);
	}
	free(block);
	free(copy);
	return 0;
}
