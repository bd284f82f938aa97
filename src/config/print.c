/*
 * print.c - the effective configuration as an INI file, secrets masked
 * (check-config --print).
 */
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
print_masked_uri(FILE *fp, const char *u)
{
	const char *auth = strstr(u, "://"), *at, *colon, *p, *q;

	if (auth == NULL) {
		fprintf(fp, "%s", u[0] != '\0' ? "****" : "");
		return;
	}
	auth += 3;
	at = strchr(auth, '@');
	colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	p = u;
	if (colon != NULL) {
		fprintf(fp, "%.*s****", (int)(colon + 1 - u), u);
		p = at;
	}
	while ((q = strstr(p, "password=")) != NULL) {
		fprintf(fp, "%.*spassword=****", (int)(q - p), p);
		p = q + 9;
		while (*p != '\0' && *p != '&')
			p++;
	}
	fprintf(fp, "%s", p);
}

void
cfg_print(const gk_config *cfg, FILE *fp)
{
	const char *section = "";
	const char *p;
	size_t i;

	fprintf(fp, "# effective configuration (%s); secrets are never "
	    "printed\n", cfg->path ? cfg->path : "embedded defaults");
	for (i = 0; i < cfg_nkeywords; i++) {
		const struct keyword *k = &cfg_keywords[i];

		p = (const char *)cfg + k->off;
		if (strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(fp, "\n[%s]\n", section);
		}
		fprintf(fp, "# %s%s\n%s = ", k->doc, k->secret_path == 1 ?
		    " [a secret: its content is never printed]" : "", k->name);
		switch (k->type) {
		case K_STR:
			if (k->secret_path == 2)
				print_masked_uri(fp, *(char *const *)p);
			else if (k->off == offsetof(gk_config, geo_database))
				fprintf(fp, "%s", cfg->geo_database[0] ?
				    cfg->geo_database : "off");
			else
				fprintf(fp, "%s", *(char *const *)p);
			break;
		case K_BOOL:
			fprintf(fp, "%s", *(const int *)p ? "true" : "false");
			break;
		case K_LEVEL:
			fprintf(fp, "%s", cfg_levels[*(const int *)p]);
			break;
		case K_UINT:
			fprintf(fp, "%u", *(const unsigned *)p);
			break;
		case K_I64:
			fprintf(fp, "%lld", (long long)*(const int64_t *)p);
			break;
		case K_U64:
			fprintf(fp, "%llu",
			    (unsigned long long)*(const uint64_t *)p);
			break;
		}
		fputc('\n', fp);
	}
	for (i = 0; i < cfg->n_vendor_keys; i++)
		cfg_vendor_print(&cfg->vendor_keys[i], fp);
}
