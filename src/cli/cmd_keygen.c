/* cmd_keygen.c - gatekeeper keygen: create missing key files. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

static const char usage_text[] =
    "usage: gatekeeper keygen [--config FILE]\n"
    "\n"
    "Creates every key file the configuration names that does not exist yet\n"
    "(mode 0600, directory 0700): the v1 shared secret, the data-URL key, the\n"
    "at-rest master key and the admin token. Existing files are never\n"
    "overwritten; to rotate a key, move its file away and run keygen again\n"
    "(see README, 'Rotating keys').\n";

int
cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	gk_config *cfg = NULL;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc) {
		cli_error("keygen", "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (cli_load_config("keygen", path, 0, &cfg) != 0)
		return 1;
	r = cfg_keygen(cfg, stdout);
	if (r != 0)
		cli_error("keygen", "cannot create key files under %s: %s",
		    cfg->keys_dir, gk_err_str(r));
	cfg_free(cfg);
	return r == 0 ? 0 : 1;
}
