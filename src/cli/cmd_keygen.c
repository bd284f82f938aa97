/* cmd_keygen.c - gatekeeper keygen: create missing key files. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

static const char usage_text[] =
    "usage: gatekeeper keygen [--config FILE]\n"
    "       gatekeeper keygen --vendor ed25519|p256|hs256 [--kid KID]\n"
    "                         [--out DIR] [--config FILE]\n"
    "\n"
    "Creates every key file the configuration names that does not exist yet\n"
    "(mode 0600, directory 0700): the v1 shared secret, the data-URL key, the\n"
    "at-rest master key, the admin token, the audit signing key and the\n"
    "grant key (seals grant secrets). Existing files are never\n"
    "overwritten; to rotate a key, move its file away and run keygen again\n"
    "(see README, 'Keys and rotating them').\n"
    "\n"
    "With --vendor, makes a protocol v2 vendor key instead: DIR/KID.key\n"
    "(PEM private key, mode 0600, for the vendor's signer: 'gatekeeper sign\n"
    "v2 --kid KID --key-file DIR/KID.key') and DIR/KID.pub, then prints the\n"
    "[vendor_key KID] stanza (the public key) for the gatekeeper's config.\n"
    "DIR defaults to the current directory: the private key stays with the\n"
    "vendor, never in the gatekeeper's key folder. For hs256 the shared\n"
    "secret DIR/KID.secret is made, DIR defaulting to the keys directory\n"
    "(the gatekeeper reads it; give the vendor a copy). KID defaults to\n"
    "TYPE-<random hex>. Rotation: README, 'Keys and rotating them'.\n";

int
cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "vendor", required_argument, NULL, 'V' },
		{ "kid", required_argument, NULL, 'k' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *vendor = NULL, *kid = NULL, *dir = NULL;
	gk_config *cfg = NULL;
	int c, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'V': vendor = optarg; break;
		case 'k': kid = optarg; break;
		case 'o': dir = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_bad_option("keygen", c, argv);
		}
	}
	if (optind != argc) {
		cli_error("keygen", "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (vendor != NULL)
		return cmd_keygen_vendor(vendor, kid, dir, path);
	if (kid != NULL || dir != NULL) {
		cli_error("keygen", "--kid and --out go with --vendor");
		return 2;
	}
	if (cli_load_config("keygen", path, 0, &cfg) != 0)
		return 1;
	r = cfg_keygen(cfg, stdout);
	if (r != 0)
		cli_error("keygen", "cannot create key files under %s: %s",
		    cfg->keys_dir, gk_file_strerror(r));
	cfg_free(cfg);
	return r == 0 ? 0 : 1;
}
