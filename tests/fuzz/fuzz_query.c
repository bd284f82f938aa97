/*
 * fuzz_query.c - the v1 request parsers on untrusted bytes: the query
 * string, object keys and roots, and the Range header; and the time
 * parameters (from, to) of the audit search and the console.
 */
#include <stdint.h>
#include <string.h>

#include "gate/gate.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A time that parses is the instant it names: its calendar date, printed
 * back, is the date that was written (no 2026-02-30 moved into March). */
static void
fuzz_time(const uint8_t *data, size_t size)
{
	char s[64], iso[40];
	int64_t us;

	if (size >= sizeof(s) || memchr(data, '\0', size) != NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (gk_time_parse(s, &us) != 0 || size < 10 || s[4] != '-' ||
	    s[0] == '0')
		return;
	gk_time_iso_us(us, iso, sizeof(iso));
	if (memcmp(iso, s, 10) != 0 && !(size >= 19 && s[17] == '6'))
		__builtin_trap();	/* a leap second may roll the day */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gate_params ps;
	gk_slice in = gk_slice_of(data, size), dup;
	uint64_t off = 0, len = 0, total;
	size_t i;

	if (gate_params_parse(in, &ps, &dup) == 0) {
		for (i = 0; i < ps.n; i++) {
			const gk_buf *v = &ps.p[i].value;

			/* decoded values never hold a NUL and never grow */
			if (v->len > size || (v->len &&
			    memchr(v->data, '\0', v->len) != NULL))
				__builtin_trap();
			(void)gate_key_valid(gk_slice_of(v->data, v->len), 1);
		}
		(void)gate_params_get(&ps, "path");
		gate_params_release(&ps);
	}
	(void)gate_key_valid(in, 0);
	(void)gate_root_valid(in);
	total = size > 8 ? (uint64_t)data[0] << 32 | data[1] << 8 | data[2] :
	    1000;
	if (gate_range_parse(in, total, &off, &len) == 0) {
		if (len == 0 || off >= total || len > total - off)
			__builtin_trap();
	}
	fuzz_time(data, size);
	return 0;
}
