/*
 * listfile.c - CIDR list files: one CIDR per line, '#' comments, so a
 * customer can load a 100,000-entry block list into a CIDR set.
 */
#include "policy/policy_int.h"

#include <stdio.h>
#include <string.h>

/* Named cap: the largest list file read (about 10 million lines). */
#define LIST_FILE_MAX (256u * 1024 * 1024)
/* How much of a bad line an error message shows. */

static int
is_blank(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* "NAME:LINE: bad CIDR 'x'" with the entry cut short and shown safely. */
static void
line_err(char *err, size_t errlen, const char *name, size_t line,
    gk_slice item, const char *what)
{
	char shown[POLICY_SHOW_MAX + 4];

	if (err == NULL || errlen == 0)
		return;
	policy_show_item(item, shown);
	snprintf(err, errlen, "%s:%zu: %s '%s'", name, line, what, shown);
}

int
policy_cidrs_add_text(gk_cidrs *c, const char *name, gk_slice text,
    char *err, size_t errlen)
{
	const uint8_t *p, *end, *nl, *e;
	size_t line = 0;
	gk_slice item;
	int r;

	if (c == NULL || (text.p == NULL && text.len > 0))
		return GK_ERR_INVALID;
	if (name == NULL)
		name = "(list)";
	p = text.p;
	end = text.p + text.len;
	while (p < end) {
		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		e = nl != NULL ? nl : end;
		item = gk_slice_of(p, (size_t)(e - p));
		p = nl != NULL ? nl + 1 : end;
		if (memchr(item.p, '\0', item.len) != NULL) {
			line_err(err, errlen, name, line, item,
			    "NUL byte in line");
			return GK_ERR_INVALID;
		}
		/* cut a comment, then the blanks around the entry */
		if ((e = memchr(item.p, '#', item.len)) != NULL)
			item.len = (size_t)(e - item.p);
		while (item.len > 0 && is_blank(item.p[0])) {
			item.p++;
			item.len--;
		}
		while (item.len > 0 && is_blank(item.p[item.len - 1]))
			item.len--;
		if (item.len == 0)
			continue;
		r = policy_cidrs_add(c, item);
		if (r == GK_ERR_INVALID) {
			line_err(err, errlen, name, line, item, "bad CIDR");
			return r;
		}
		if (r != 0) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "%s:%zu: %s", name, line,
				    gk_err_str(r));
			return r;
		}
	}
	return 0;
}

int
policy_cidrs_add_file(gk_cidrs *c, const char *path, char *err,
    size_t errlen)
{
	gk_buf b;
	int r;

	if (c == NULL || path == NULL)
		return GK_ERR_INVALID;
	gk_buf_init(&b, LIST_FILE_MAX);
	if ((r = gk_file_read(path, LIST_FILE_MAX, &b)) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: cannot read list file: %s",
			    path, gk_file_strerror(r));
		r = r == GK_ERR_TOO_LARGE ? r : GK_ERR_IO;
		goto out;
	}
	r = policy_cidrs_add_text(c, path, gk_slice_of(b.data, b.len), err,
	    errlen);
out:
	gk_buf_release(&b);
	return r;
}
