/*
 * fuzz_journal_scan.c - libFuzzer target for the reading of <db>.journal
 * at start (journal.c's recovery contract: unframed entries of older
 * journals, then frames with their epoch and CRC-32): a file a crash
 * may have cut, a disk damaged, or zeros and older batches follow.
 * Properties for any input:
 *   - nothing is read past the input, every entry handed on lies within
 *     the content, in order, and the content ends within the input;
 *   - the content alone reads the same: the same end and entries (what
 *     lies past it never changes what is put back).
 */
#include "audit/audit_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	const uint8_t *base;
	size_t len;
	size_t n;		/* entries */
	size_t last;		/* offset past the previous entry's bytes */
	uint64_t sum;		/* of their offsets and lengths */
};

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
on_entry(void *arg, const uint8_t *enc, size_t n, const uint8_t *hash,
    const audit_checkpoint *cp)
{
	struct seen *s = arg;
	size_t at;

	if (cp != NULL) {
		check(enc == NULL && hash == NULL);
		check(cp->instance[0] != '\0' &&
		    strlen(cp->instance) <= AUDIT_INSTANCE_MAX);
		s->sum += (uint64_t)cp->seq;
	} else {
		check(enc != NULL && hash != NULL && n > 0);
		check(hash >= s->base && enc == hash + AUDIT_HASH_LEN);
		at = (size_t)(hash - s->base);
		check(at >= s->last && at < s->len &&
		    n <= s->len - at - AUDIT_HASH_LEN);
		s->last = at + AUDIT_HASH_LEN + n;
		s->sum += at * 31 + n;
	}
	s->n++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a, b;
	uint8_t *copy;
	size_t end = 0, end2 = 0;
	int r, r2;

	/* an exact-size copy, so ASan sees any read past the input */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	memset(&a, 0, sizeof(a));
	a.base = copy;
	a.len = size;
	r = audit_journal_scan(copy, size, on_entry, &a, &end);
	check(end <= size);
	check(r == 0 || r == GK_ERR_INTEGRITY);
	if (r == 0) {
		check(a.last <= end);
		memset(&b, 0, sizeof(b));
		b.base = copy;
		b.len = end;
		r2 = audit_journal_scan(copy, end, on_entry, &b, &end2);
		check(r2 == 0 && end2 == end && b.n == a.n && b.sum == a.sum);
	}
	free(copy);
	return 0;
}
