/*
 * fuzz_cookie.c - libFuzzer target for the Cookie header parser the
 * console's sessions use (gate_cookie_value). Properties for any input:
 *   - a found value lies inside the header, is not empty, holds no ';',
 *     and is preceded by "name=" at the start of the header or after a
 *     ';' and spaces;
 *   - the same header with "; name=x" appended still finds a value;
 *   - a header without "name=" finds nothing.
 */
#include "gate/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char name[] = "gk_console";

static void
check(int cond)
{
	if (!cond)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gk_slice h = gk_slice_of(data, size), v;
	size_t nl = sizeof(name) - 1, off, i;
	uint8_t *more;
	int has = 0;

	v = gate_cookie_value(h, name);
	if (v.len > 0) {
		check(v.p > data + nl && v.p + v.len <= data + size);
		check(memchr(v.p, ';', v.len) == NULL);
		off = (size_t)(v.p - data) - nl - 1;
		check(memcmp(data + off, name, nl) == 0 &&
		    data[off + nl] == '=');
		for (i = off; i > 0 && data[i - 1] == ' '; i--)
			;
		check(i == 0 || data[i - 1] == ';');
	}
	for (i = 0; i + nl < size && !has; i++)
		has = memcmp(data + i, name, nl) == 0 && data[i + nl] == '=';
	if (!has)
		check(v.len == 0);
	if (size > 4096)
		return 0;
	more = malloc(size + nl + 4);
	if (more == NULL)
		return 0;
	memcpy(more, data, size);
	memcpy(more + size, "; ", 2);
	memcpy(more + size + 2, name, nl);
	memcpy(more + size + 2 + nl, "=x", 2);
	v = gate_cookie_value(gk_slice_of(more, size + nl + 4), name);
	check(v.len > 0);
	free(more);
	return 0;
}
