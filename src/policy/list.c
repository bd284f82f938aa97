/*
 * list.c - the lists every policy setting and list file is written in
 * (items separated by commas, spaces and newlines; '#' comments), and
 * error messages that show a bad item safely.
 */
#include "policy/policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
is_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
policy_list_each(const char *list, item_fn fn, void *arg)
{
	const char *p = list, *start;
	int r;

	if (list == NULL)
		return 0;
	while (*p != '\0') {
		if (*p == '#') {
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (is_list_sep(*p)) {
			p++;
			continue;
		}
		start = p;
		while (*p != '\0' && *p != '#' && !is_list_sep(*p))
			p++;
		if ((r = fn(arg, gk_slice_of(start, (size_t)(p - start)))) != 0)
			return r;
	}
	return 0;
}

void
policy_show_item(gk_slice item, char out[POLICY_SHOW_MAX + 4])
{
	size_t i, n;

	n = item.len < POLICY_SHOW_MAX ? item.len : POLICY_SHOW_MAX;
	for (i = 0; i < n; i++) {
		uint8_t ch = item.p[i];

		out[i] = (ch >= 0x20 && ch < 0x7f && ch != '\'') ?
		    (char)ch : '?';
	}
	if (item.len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* Writes "bad WHAT 'ITEM'", the item shown safely. */
void
policy_item_err(char *err, size_t errlen, const char *what, gk_slice item)
{
	char shown[POLICY_SHOW_MAX + 4];

	if (err == NULL || errlen == 0)
		return;
	policy_show_item(item, shown);
	snprintf(err, errlen, "bad %s '%s'", what, shown);
}

void
policy_set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

