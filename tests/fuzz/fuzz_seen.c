/*
 * fuzz_seen.c - the receiver's record of the manifest it last received
 * per share (seen.c), read back from <state>/<id>: a file that another
 * local process, or a crash, could have left with any bytes in it.
 * Properties for any input:
 *   - nothing is written past the fields handed in (the fingerprint fits
 *     its SHARE_FP_STR buffer, NUL-terminated, "SHA256:...");
 *   - only what share_seen_format writes is read: a record accepted is
 *     written back byte for byte, so a record is never read otherwise
 *     than it was meant (no leading spaces, no "+", no upper-case hex).
 */
#include "share/share_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char canary[8] = { 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
	    0x55, 0x55 };
	char fp[SHARE_FP_STR + 8], line[512], t[64];
	uint8_t sha[32];
	int64_t created;
	int n;

	/* a canary past the buffer the parser is given */
	memset(fp, 0x55, sizeof(fp));
	if (share_seen_parse(gk_slice_of(data, size), &created, sha, fp) != 0) {
		if (memcmp(fp + SHARE_FP_STR, canary, 8) != 0)
			__builtin_trap();
		return 0;
	}
	if (memcmp(fp + SHARE_FP_STR, canary, 8) != 0 ||
	    memchr(fp, '\0', SHARE_FP_STR) == NULL ||
	    strncmp(fp, "SHA256:", 7) != 0)
		__builtin_trap();
	n = share_seen_format(created, sha, fp, line, sizeof(line));
	if (n < 0 || (size_t)n != size || memcmp(line, data, size) != 0)
		__builtin_trap();
	/* as share_seen_check shows it in a refusal */
	gk_time_iso(created, t, sizeof(t));
	return 0;
}
