/*
 * keys.c - key files: reading a secret (hex or text, mode checked),
 * wiping it, and generating every key file a config names (keygen).
 */
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"

static int
trim_len(const uint8_t *p, size_t len)
{
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' ||
	    p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	return (int)len;
}

/*
 * Reads a key file. hex32: the file holds 64 hex digits (32 bytes);
 * otherwise its trimmed text is the secret (at least 16 bytes).
 */
int
cfg_secret_load(const char *path, int kind, gk_secret *out, char *err,
    size_t errlen)
{
	struct stat st;
	gk_buf b;
	size_t n;
	int r;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
		    errno == ENOENT ? " (run 'gatekeeper keygen')" : "");
		return GK_ERR_CONFIG;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen,
		    "%s: key file is readable by group or others (chmod 600)",
		    path);
		return GK_ERR_CONFIG;
	}
	out->p = NULL;
	out->len = 0;
	if ((r = gk_file_read(path, 8192, &b)) != 0) {
		snprintf(err, errlen, "%s: cannot read key file: %s%s", path,
		    gk_file_strerror(r), r == GK_ERR_IO && errno == EACCES ?
		    " (the user running the gatekeeper must own it: run "
		    "keygen as that user)" : "");
		return GK_ERR_CONFIG;
	}
	n = (size_t)trim_len(b.data, b.len);
	if (kind == CFG_SECRET_HEX32) {
		out->p = malloc(GK_KEY_LEN);
		if (out->p == NULL ||
		    gk_hex_decode(gk_slice_of(b.data, n), out->p,
		    GK_KEY_LEN) != 0) {
			free(out->p);
			out->p = NULL;
			snprintf(err, errlen,
			    "%s: key file must hold 64 hex digits", path);
			r = GK_ERR_CONFIG;
			goto out;
		}
		out->len = GK_KEY_LEN;
	} else {
		if (n < (kind == CFG_SECRET_TEXT ? 16u : 1u) ||
		    memchr(b.data, '\0', n) != NULL) {
			snprintf(err, errlen, kind == CFG_SECRET_TEXT ?
			    "%s: secret must be at least 16 characters" :
			    "%s: the file is empty or holds a NUL byte", path);
			r = GK_ERR_CONFIG;
			goto out;
		}
		if ((out->p = malloc(n + 1)) == NULL) {
			r = GK_ERR_NOMEM;
			goto out;
		}
		memcpy(out->p, b.data, n);
		out->p[n] = '\0';	/* text secrets are also C strings */
		out->len = n;
	}
	r = 0;
out:
	gk_wipe(b.data, b.len);
	gk_buf_release(&b);
	return r;
}

void
cfg_secret_free(gk_secret *s)
{
	if (s->p != NULL) {
		gk_wipe(s->p, s->len);
		free(s->p);
	}
	s->p = NULL;
	s->len = 0;
}

/* Writes a new key file if absent. */
static int
keygen_one(const char *path, FILE *fp, const char *what)
{
	uint8_t raw[GK_KEY_LEN];
	char hex[2 * GK_KEY_LEN + 2];
	struct stat st;
	char *dir, *slash;
	int r;

	if (stat(path, &st) == 0)
		return 0;
	if ((dir = strdup(path)) == NULL)
		return GK_ERR_NOMEM;
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if ((r = gk_mkdirs(dir, 0700)) != 0) {
			free(dir);
			return r;
		}
	}
	free(dir);
	if ((r = gk_random(raw, sizeof(raw))) != 0)
		return r;
	gk_hex_encode(raw, sizeof(raw), hex);
	hex[2 * GK_KEY_LEN] = '\n';
	hex[2 * GK_KEY_LEN + 1] = '\0';
	r = gk_file_write_atomic(path, hex, strlen(hex), 0600);
	gk_wipe(raw, sizeof(raw));
	gk_wipe(hex, sizeof(hex));
	if (r == 0 && fp != NULL)
		fprintf(fp, "created %s (%s)\n", path, what);
	return r;
}

/* Writes the audit public key file (hex) from the key if it is absent. */
static int
keygen_audit_pub(const gk_config *cfg, FILE *fp)
{
	gk_secret seed = { NULL, 0 };
	uint8_t pub[32];
	char hex[2 * sizeof(pub) + 2], err[512];
	struct stat st;
	int r = GK_ERR_INTERNAL;

	if (stat(cfg->audit_pub_file, &st) == 0)
		return 0;
	if (cfg_secret_load(cfg->audit_key_file, CFG_SECRET_HEX32, &seed,
	    err, sizeof(err)) != 0) {
		r = GK_ERR_IO;
		goto out;
	}
	if (seed.len != sizeof(pub) || audit_key_public(seed.p, pub) != 0)
		goto out;
	gk_hex_encode(pub, sizeof(pub), hex);
	hex[2 * sizeof(pub)] = '\n';
	hex[2 * sizeof(pub) + 1] = '\0';
	if ((r = gk_file_write_atomic(cfg->audit_pub_file, hex, strlen(hex),
	    0644)) != 0)
		goto out;
	if (fp != NULL)
		fprintf(fp, "created %s (audit public key, for verifiers)\n",
		    cfg->audit_pub_file);
	r = 0;
out:
	cfg_secret_free(&seed);
	return r;
}

int
cfg_keygen(const gk_config *cfg, FILE *fp)
{
	int r;

	if ((r = keygen_one(cfg->v1_key_file, fp, "v1 shared secret")) != 0 ||
	    (r = keygen_one(cfg->internal_key_file, fp,
	    "data URL and upload policy key")) != 0 ||
	    (r = keygen_one(cfg->master_key_file, fp,
	    "at-rest master key")) != 0 ||
	    (r = keygen_one(cfg->admin_token_file, fp, "admin token")) != 0 ||
	    (r = keygen_one(cfg->audit_key_file, fp,
	    "audit checkpoint signing key, Ed25519")) != 0 ||
	    (r = keygen_one(cfg->grant_key_file, fp,
	    "grant secret encryption key")) != 0)
		return r;
	return keygen_audit_pub(cfg, fp);
}
