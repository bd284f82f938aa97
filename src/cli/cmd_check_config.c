/* cmd_check_config.c - gatekeeper check-config: validate, print. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "http/http.h"
#include "policy/policy.h"
#include "verify/verify.h"

static const char usage_text[] =
    "usage: gatekeeper check-config [--config FILE] [--quiet]\n"
    "\n"
    "Validates the configuration file, its key files and its access lists,\n"
    "then prints the effective settings (defaults filled in, secrets never\n"
    "shown) and the access policy: list sizes (list files included),\n"
    "countries per operation, trusted proxies, rate limits, and one\n"
    "'warning: ...' line per risky setting (with --quiet only the warnings,\n"
    "on stderr). A configured [geo] database must open. With tls_cert it\n"
    "loads the certificate and key as serve would and prints the\n"
    "certificate's names and expiry (a warning under 14 days); it warns\n"
    "when public_url is not https:// on a non-loopback address. Exit 0 when\n"
    "everything is valid; otherwise one line naming the file, the line and\n"
    "the problem, and exit 1.\n";

static int
listen_is_loopback(const char *a)
{
	return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 ||
	    strcmp(a, "localhost") == 0;
}

int
cmd_check_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	gk_config *cfg = NULL;
	gk_policy *pol = NULL;
	gk_keyring *kr = NULL;
	char err[512];
	int c, quiet = 0, rc = 1, warnings = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc) {
		cli_error("check-config", "unexpected argument '%s'",
		    argv[optind]);
		return 2;
	}
	if (cli_load_config("check-config", path, 1, &cfg) != 0)
		return 1;
	if (policy_new(cfg, &pol, err, sizeof(err)) != 0) {
		cli_error("check-config", "%s: %s",
		    cfg->path ? cfg->path : "(defaults)", err);
		goto out;
	}
	if (verify_keyring_new(cfg, &kr, err, sizeof(err)) != 0) {
		cli_error("check-config", "%s: %s",
		    cfg->path ? cfg->path : "(defaults)", err);
		goto out;
	}
	if (!quiet)
		cfg_print(cfg, stdout);
	/* the policy report: counts, countries, warnings (warnings go to
	 * stderr too, so --quiet still shows them) */
	if (!quiet) {
		fputc('\n', stdout);
		(void)policy_describe(pol, stdout, 1);
	} else {
		(void)policy_describe(pol, stderr, 0);
	}
	if (cfg->tls_cert[0] != '\0' && http_tls_describe(cfg->tls_cert,
	    cfg->tls_key, cfg->tls_ocsp, quiet ? NULL : stdout,
	    quiet ? stderr : stdout, &warnings) != 0)
		goto out;
	if (strncmp(cfg->public_url, "https://", 8) != 0 &&
	    !listen_is_loopback(cfg->listen))
		fprintf(quiet ? stderr : stdout, "warning: public_url %s is not "
		    "https:// and the server listens on %s: browsers would "
		    "send tokens in the clear\n", cfg->public_url, cfg->listen);
	rc = 0;
out:
	verify_keyring_free(kr);
	policy_free(pol);
	cfg_free(cfg);
	return rc;
}
