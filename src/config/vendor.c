/*
 * vendor.c - [vendor_key KID] sections (protocol v2): parsing, checking
 * each key's settings fit its type, loading their files, printing.
 */
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- [vendor_key KID] sections (protocol v2) -------------------------- */

enum { VK_TYPE = 1, VK_PUB = 2, VK_PUB_FILE = 4, VK_SECRET = 8, VK_NBF = 16,
	VK_NAF = 32 };

static int
kid_valid(const char *kid)
{
	size_t i, n = strlen(kid);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = kid[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* The entry for kid, appended if new. */
static gk_vendor_key *
vendor_key_get(gk_config *cfg, const char *kid)
{
	gk_vendor_key *v;
	size_t i;

	for (i = 0; i < cfg->n_vendor_keys; i++) {
		if (strcmp(cfg->vendor_keys[i].kid, kid) == 0)
			return &cfg->vendor_keys[i];
	}
	if (cfg->n_vendor_keys == GK_VKEY_MAX)
		return NULL;
	v = realloc(cfg->vendor_keys, (cfg->n_vendor_keys + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	cfg->vendor_keys = v;
	v = &cfg->vendor_keys[cfg->n_vendor_keys];
	memset(v, 0, sizeof(*v));
	if ((v->kid = strdup(kid)) == NULL)
		return NULL;
	cfg->n_vendor_keys++;
	return v;
}

/* "[vendor_key KID]" (or "[vendor_key:KID]") settings. */
int
cfg_vendor_line(gk_config *cfg, const char *section, const char *name,
    const char *value, char *msg, size_t msglen)
{
	const char *kid = section + 10;
	gk_vendor_key *v;
	unsigned bit;
	char **field = NULL;
	int64_t *when = NULL, us;

	if (*kid != ' ' && *kid != ':') {
		snprintf(msg, msglen, "unknown section [%.40s] (vendor keys are "
		    "[vendor_key KID])", section);
		return 0;
	}
	kid++;
	while (*kid == ' ')
		kid++;
	if (!kid_valid(kid)) {
		snprintf(msg, msglen, "[vendor_key KID]: KID must be 1 to 64 "
		    "characters of A-Z a-z 0-9 - _ .");
		return 0;
	}
	if ((v = vendor_key_get(cfg, kid)) == NULL) {
		snprintf(msg, msglen, "too many vendor keys (at most %d) or out "
		    "of memory", GK_VKEY_MAX);
		return 0;
	}
	if (strcmp(name, "type") == 0)
		bit = VK_TYPE;
	else if (strcmp(name, "public_key") == 0)
		bit = VK_PUB, field = &v->public_key;
	else if (strcmp(name, "public_key_file") == 0)
		bit = VK_PUB_FILE, field = &v->public_key_file;
	else if (strcmp(name, "secret_file") == 0)
		bit = VK_SECRET, field = &v->secret_file;
	else if (strcmp(name, "not_before") == 0)
		bit = VK_NBF, when = &v->not_before;
	else if (strcmp(name, "not_after") == 0)
		bit = VK_NAF, when = &v->not_after;
	else {
		snprintf(msg, msglen, "unknown setting [vendor_key %s] %s", kid,
		    name);
		return 0;
	}
	if (v->seen & bit) {
		snprintf(msg, msglen, "[vendor_key %s] %s is set twice", kid,
		    name);
		return 0;
	}
	v->seen |= bit;
	if (bit == VK_TYPE) {
		if (strcmp(value, "ed25519") == 0)
			v->type = GK_VKEY_ED25519;
		else if (strcmp(value, "p256") == 0)
			v->type = GK_VKEY_P256;
		else if (strcmp(value, "hs256") == 0)
			v->type = GK_VKEY_HS256;
		else {
			snprintf(msg, msglen, "[vendor_key %s] type must be "
			    "ed25519, p256 or hs256", kid);
			return 0;
		}
		return 1;
	}
	if (when != NULL) {
		if (gk_time_parse(value, &us) != 0 || us < 0) {
			snprintf(msg, msglen, "[vendor_key %s] %s must be a date "
			    "(YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ) or unix seconds",
			    kid, name);
			return 0;
		}
		*when = us / 1000000;
		return 1;
	}
	if (strlen(value) == 0 || strlen(value) > 4096) {
		snprintf(msg, msglen, "[vendor_key %s] %s must be 1 to 4096 "
		    "characters", kid, name);
		return 0;
	}
	if ((*field = strdup(value)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return 0;
	}
	return 1;
}

/* Each vendor key's settings fit its type. */
int
cfg_vendor_validate(const gk_config *cfg, char *err, size_t errlen)
{
	const gk_vendor_key *v;
	char vsec[96];
	size_t i;

	for (i = 0; i < cfg->n_vendor_keys; i++) {
		v = &cfg->vendor_keys[i];
		snprintf(vsec, sizeof(vsec), "vendor_key %s", v->kid);
		if (v->type == 0) {
			(void)cfg_setting_error(cfg, err, errlen, vsec, NULL,
			    "[vendor_key %s] needs a type "
			    "(ed25519, p256 or hs256)", v->kid);
			return GK_ERR_CONFIG;
		}
		if (v->type == GK_VKEY_HS256 && (v->secret_file == NULL ||
		    v->public_key != NULL || v->public_key_file != NULL)) {
			(void)cfg_setting_error(cfg, err, errlen, vsec,
			    "type", "[vendor_key %s] of type hs256 "
			    "takes secret_file (and no public key)",
			    v->kid);
			return GK_ERR_CONFIG;
		}
		if (v->type != GK_VKEY_HS256 && (v->secret_file != NULL ||
		    (v->public_key == NULL) == (v->public_key_file == NULL))) {
			(void)cfg_setting_error(cfg, err, errlen, vsec,
			    "type", "[vendor_key %s] takes exactly "
			    "one of public_key or public_key_file (and no "
			    "secret_file)", v->kid);
			return GK_ERR_CONFIG;
		}
		if (v->not_before != 0 && v->not_after != 0 &&
		    v->not_after <= v->not_before) {
			(void)cfg_setting_error(cfg, err, errlen, vsec,
			    "not_after", "[vendor_key %s] not_after must "
			    "be later than not_before", v->kid);
			return GK_ERR_CONFIG;
		}
	}
	return 0;
}

/* Reads the vendor keys' files: PEM public keys and hs256 secrets. */
int
cfg_vendor_load(gk_config *cfg, char *err, size_t errlen)
{
	gk_vendor_key *v;
	gk_buf b;
	size_t i;
	int r;

	for (i = 0; i < cfg->n_vendor_keys; i++) {
		v = &cfg->vendor_keys[i];
		if (v->secret_file != NULL) {
			if ((r = cfg_secret_load(v->secret_file,
			    CFG_SECRET_TEXT, &v->secret, err, errlen)) != 0)
				return r;
			if (v->secret.len < 32) {
				snprintf(err, errlen, "%s: an hs256 secret must "
				    "be at least 32 bytes", v->secret_file);
				return GK_ERR_CONFIG;
			}
		}
		if (v->public_key_file != NULL) {
			if ((r = gk_file_read(v->public_key_file, 16384,
			    &b)) != 0) {
				snprintf(err, errlen, "%s: cannot read public key "
				    "file: %s", v->public_key_file,
				    gk_file_strerror(r));
				return GK_ERR_CONFIG;
			}
			v->public_pem = gk_buf_detach(&b, NULL);
			if (v->public_pem == NULL) {
				snprintf(err, errlen, "%s: empty public key file",
				    v->public_key_file);
				return GK_ERR_CONFIG;
			}
		}
	}
	return 0;
}

void
cfg_vendor_print(const gk_vendor_key *v, FILE *fp)
{
	static const char *const types[] = { "?", "ed25519", "p256", "hs256" };
	char when[32];

	fprintf(fp, "\n[vendor_key %s]\ntype = %s\n", v->kid,
	    types[v->type >= 0 && v->type <= 3 ? v->type : 0]);
	if (v->public_key != NULL)
		fprintf(fp, "public_key = %s\n", v->public_key);
	if (v->public_key_file != NULL)
		fprintf(fp, "public_key_file = %s\n", v->public_key_file);
	if (v->secret_file != NULL)
		fprintf(fp, "# [a secret: its content is never printed]\n"
		    "secret_file = %s\n", v->secret_file);
	if (v->not_before != 0) {
		gk_time_iso(v->not_before, when, sizeof(when));
		fprintf(fp, "not_before = %s\n", when);
	}
	if (v->not_after != 0) {
		gk_time_iso(v->not_after, when, sizeof(when));
		fprintf(fp, "not_after = %s\n", when);
	}
}

/*
 * Prints a URI with any password replaced by "****": the part after
 * "user:" in the authority and the value of password=... parameters.
 */
