/*
 * cmd_keygen_vendor.c - gatekeeper keygen --vendor: a v2 vendor key pair
 * (Ed25519 or P-256) or HS256 secret, and the config stanza to paste.
 */
#include "cli.h"

#include <getopt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"

/* Writes a PEM of pkey (private when priv) to path with mode. */
static int
write_pem(EVP_PKEY *pkey, int priv, const char *path, mode_t mode)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = 0;
	int r = GK_ERR_INTERNAL;

	if (bio == NULL)
		return GK_ERR_NOMEM;
	if ((priv ? PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0,
	    NULL, NULL) : PEM_write_bio_PUBKEY(bio, pkey)) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &p);
	if (n <= 0)
		goto out;
	r = gk_file_write_atomic(path, p, (size_t)n, mode);
out:
	if (p != NULL && n > 0)
		gk_wipe(p, (size_t)n);
	BIO_free(bio);
	return r;
}

static int
path_join(gk_buf *b, const char *dir, const char *kid, const char *ext)
{
	gk_buf_init(b, 8192);
	return gk_buf_printf(b, "%s/%s.%s", dir, kid, ext);
}

int
cmd_keygen_vendor(const char *type, const char *kid_arg, const char *dir_arg,
    const char *cfgpath)
{
	gk_config *cfg = NULL;
	EVP_PKEY *pkey = NULL;
	unsigned char *der = NULL;
	uint8_t rnd[32];
	char kid[80], hex[65];
	gk_buf priv, pub, b64;
	struct stat st;
	const char *dir;
	int der_len, rc = 1, is_hs;

	gk_buf_init(&priv, 16);
	gk_buf_init(&pub, 16);
	gk_buf_init(&b64, 4096);
	is_hs = strcmp(type, "hs256") == 0;
	if (strcmp(type, "ed25519") != 0 && strcmp(type, "p256") != 0 &&
	    !is_hs) {
		cli_error("keygen", "--vendor must be ed25519, p256 or hs256");
		return 2;
	}
	if (cli_load_config("keygen", cfgpath, 0, &cfg) != 0)
		return 1;
	/* the vendor's private key belongs to the vendor, not in the
	 * gatekeeper's key folder; an hs256 secret is held by both */
	dir = dir_arg != NULL ? dir_arg : is_hs ? cfg->keys_dir : ".";
	if (gk_random(rnd, 4) != 0)
		goto out;
	gk_hex_encode(rnd, 4, hex);
	if (kid_arg != NULL)
		snprintf(kid, sizeof(kid), "%s", kid_arg);
	else
		snprintf(kid, sizeof(kid), "%s-%s", type, hex);
	if (strlen(kid) > 64 || strspn(kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(kid) ||
	    kid[0] == '\0') {
		cli_error("keygen", "--kid must be 1 to 64 characters of "
		    "A-Z a-z 0-9 - _ .");
		rc = 2;
		goto out;
	}
	if (gk_mkdirs(dir, 0700) != 0 ||
	    path_join(&priv, dir, kid, is_hs ? "secret" : "key") != 0 ||
	    path_join(&pub, dir, kid, "pub") != 0) {
		cli_error("keygen", "cannot create %s", dir);
		goto out;
	}
	if (stat((char *)priv.data, &st) == 0) {
		cli_error("keygen", "%s exists; choose another --kid",
		    (char *)priv.data);
		goto out;
	}
	if (is_hs) {
		if (gk_random(rnd, sizeof(rnd)) != 0)
			goto out;
		gk_hex_encode(rnd, sizeof(rnd), hex);
		gk_wipe(rnd, sizeof(rnd));
		if (gk_file_write_atomic((char *)priv.data, hex, 64, 0600) != 0) {
			gk_wipe(hex, sizeof(hex));
			cli_error("keygen", "cannot write %s", (char *)priv.data);
			goto out;
		}
		gk_wipe(hex, sizeof(hex));
		printf("# created %s (HS256 secret: give the vendor a copy over "
		    "a safe channel)\n\n[vendor_key %s]\ntype = hs256\n"
		    "secret_file = %s\n", (char *)priv.data, kid,
		    (char *)priv.data);
		rc = 0;
		goto out;
	}
	pkey = strcmp(type, "ed25519") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL,
	    "ED25519") : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL || (der_len = i2d_PUBKEY(pkey, &der)) <= 0 ||
	    gk_b64_encode(der, (size_t)der_len, &b64) != 0) {
		cli_error("keygen", "cannot generate the key pair");
		goto out;
	}
	if (write_pem(pkey, 1, (char *)priv.data, 0600) != 0 ||
	    write_pem(pkey, 0, (char *)pub.data, 0644) != 0) {
		cli_error("keygen", "cannot write the key files under %s", dir);
		goto out;
	}
	printf("# created %s (private key, mode 0600: the vendor signs with "
	    "it; keep it off the gatekeeper)\n# created %s (public key)\n"
	    "# add to the gatekeeper's config:\n\n[vendor_key %s]\n"
	    "type = %s\npublic_key = %s\n", (char *)priv.data,
	    (char *)pub.data, kid, type, (char *)b64.data);
	rc = 0;
out:
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	gk_buf_release(&priv);
	gk_buf_release(&pub);
	gk_buf_release(&b64);
	cfg_free(cfg);
	return rc;
}
