/*
 * where.c - where a setting came from, for error messages: the line of
 * the config file that sets it ("FILE:LINE: message").
 */
#include "config_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* "[vendor_key:K]" and "[vendor_key   K]" name the same section. */
static int
section_is(gk_slice got, const char *want)
{
	size_t n = strlen("vendor_key"), i;

	if (strncmp(want, "vendor_key ", n + 1) != 0 || got.len <= n ||
	    memcmp(got.p, want, n) != 0 || (got.p[n] != ' ' &&
	    got.p[n] != ':'))
		return gk_slice_eq_str(got, want);
	for (i = n + 1; i < got.len && got.p[i] == ' '; i++)
		;
	return gk_slice_eq_str(gk_slice_of(got.p + i, got.len - i),
	    want + n + 1);
}

/* The line of cfg's file that sets [section] name, 0 if none. */
static int
setting_line(const gk_config *cfg, const char *section, const char *name)
{
	gk_slice sec = GK_SLICE_NULL;
	const uint8_t *p, *end, *nl;
	gk_buf b;
	int line = 0, found = 0;

	if (cfg->path == NULL || gk_file_read(cfg->path, 1u << 20, &b) != 0)
		return 0;
	p = b.data;
	end = p + b.len;
	for (; p < end && !found; p = nl + 1) {
		const uint8_t *q, *e;

		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		for (q = p; q < nl && (*q == ' ' || *q == '\t'); q++)
			;
		if (q == nl || *q == ';' || *q == '#')
			continue;
		if (*q == '[') {
			e = memchr(q, ']', (size_t)(nl - q));
			sec = e ? gk_slice_of(q + 1, (size_t)(e - q - 1)) :
			    (gk_slice)GK_SLICE_NULL;
			found = name == NULL && section != NULL && e != NULL &&
			    section_is(sec, section);
			continue;
		}
		if (name == NULL || (section != NULL && (sec.p == NULL ||
		    !section_is(sec, section))))
			continue;
		for (e = q; e < nl && *e != '=' && *e != ':'; e++)
			;
		while (e > q && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		found = gk_slice_eq_str(gk_slice_of(q, (size_t)(e - q)), name);
	}
	gk_buf_release(&b);
	return found ? line : 0;
}

void
cfg_where(const gk_config *cfg, const char *section, const char *name,
    char *out, size_t outlen)
{
	int line;

	if (cfg->path == NULL) {
		snprintf(out, outlen, "(defaults)");
		return;
	}
	line = setting_line(cfg, section, name);
	if (line > 0)
		snprintf(out, outlen, "%s:%d", cfg->path, line);
	else
		snprintf(out, outlen, "%s", cfg->path);
}

/* Writes "FILE:LINE: message" for [section] name into err. */
int
cfg_setting_error(const gk_config *cfg, char *err, size_t errlen,
    const char *section, const char *name, const char *fmt, ...)
{
	char at[4200];
	va_list ap;
	int n;

	cfg_where(cfg, section, name, at, sizeof(at));
	n = snprintf(err, errlen, "%s: ", at);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return GK_ERR_CONFIG;
}
