/* config_int.h - private to src/config: the settings table and the
 * helpers the files here share. */
#ifndef GK_CONFIG_INT_H
#define GK_CONFIG_INT_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

enum ktype { K_STR, K_UINT, K_I64, K_U64, K_BOOL, K_LEVEL };

struct keyword {
	const char *section;
	const char *name;
	enum ktype type;
	size_t off;
	uint64_t min, max;	/* numbers */
	const char *def;	/* embedded default, as text */
	/* 1: a key-file path (printed, never its content); 2: a URI
	 * printed with its password masked */
	int secret_path;
	const char *doc;
};

/* config.c: the settings table, in print order, and log level names */
extern const struct keyword cfg_keywords[];
extern const size_t cfg_nkeywords;
extern const char *const cfg_levels[];

/* config.c: writes "FILE:LINE: message" for [section] name (cfg_where)
 * into err; returns GK_ERR_CONFIG. */
int cfg_setting_error(const gk_config *cfg, char *err, size_t errlen,
    const char *section, const char *name, const char *fmt, ...)
    GK_PRINTF(6, 7);

/* check.c: the checks across settings, after the INI is read (one line,
 * "FILE:LINE: ...", in err); and [geo] database's default. */
int cfg_validate(gk_config *cfg, char *err, size_t errlen);
int cfg_geo_default(gk_config *cfg, char *err, size_t errlen);

/*
 * keys.c: reads a key file (mode 0600 or stricter, else refused).
 * HEX32: it holds 64 hex digits (32 bytes); TEXT: its trimmed text, at
 * least 16 bytes; ANY: its trimmed text, not empty. Text secrets are also
 * NUL-terminated (p[len] == 0). One line in err on failure.
 */
enum { CFG_SECRET_TEXT, CFG_SECRET_HEX32, CFG_SECRET_ANY };
int cfg_secret_load(const char *path, int kind, gk_secret *out, char *err,
    size_t errlen) GK_WUR;
/* Wipes and frees a secret; s is left empty. */
void cfg_secret_free(gk_secret *s);

/* vendor.c: one line of a [vendor_key KID] section (0: error in msg, as
 * inih wants), the keys' settings checked, their files read, printed. */
int cfg_vendor_line(gk_config *cfg, const char *section, const char *name,
    const char *value, char *msg, size_t msglen);
int cfg_vendor_validate(const gk_config *cfg, char *err, size_t errlen);
int cfg_vendor_load(gk_config *cfg, char *err, size_t errlen);
void cfg_vendor_print(const gk_vendor_key *v, FILE *fp);

#endif
