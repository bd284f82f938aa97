/* cmd_check_config.c - gatekeeper check-config: validate, print. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "gate/gate.h"
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

/*
 * "FILE:LINE" of the setting a policy or vendor key error names: errors
 * start with the setting ("ip_allow: ...", "[geo] countries: ...") or
 * "vendor key 'KID': ...".
 */
static void
err_where(const gk_config *cfg, const char *err, char *at, size_t atlen)
{
	char sec[96] = "", name[64] = "";
	const char *sp = NULL, *np = NULL;
	size_t n;

	if (strncmp(err, "vendor key '", 12) == 0) {
		n = strcspn(err + 12, "'");
		snprintf(sec, sizeof(sec), "vendor_key %.*s", (int)(n < 64 ?
		    n : 64), err + 12);
		sp = sec;
	} else {
		if (err[0] == '[') {
			n = strcspn(err + 1, "]");
			snprintf(sec, sizeof(sec), "%.*s", (int)(n < 32 ? n : 32),
			    err + 1);
			sp = sec;
			err += 1 + n + (err[1 + n] == ']');
			err += strspn(err, " ");
		}
		n = strspn(err, "abcdefghijklmnopqrstuvwxyz_");
		if (n > 0 && n < sizeof(name)) {
			memcpy(name, err, n);
			np = name;
		}
	}
	cfg_where(cfg, sp, np, at, atlen);
}

/*
 * The certificate report; its warnings pass through, and when the files do
 * not load its "error: tls_cert FILE: ..." line becomes the one error line,
 * naming the config line of the setting.
 */
static int
tls_report(const gk_config *cfg, int quiet, int *warnings)
{
	FILE *warn_fp = quiet ? stderr : stdout, *mem;
	char *text = NULL, *line, *nl, at[4200];
	size_t len = 0;
	int r;

	if ((mem = open_memstream(&text, &len)) == NULL)
		return GK_ERR_NOMEM;
	r = http_tls_describe(cfg->tls_cert, cfg->tls_key, cfg->tls_ocsp,
	    quiet ? NULL : stdout, mem, warnings);
	if (fclose(mem) != 0) {
		free(text);
		return GK_ERR_NOMEM;
	}
	for (line = text; line != NULL && *line != '\0'; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		if (strncmp(line, "error: ", 7) == 0) {
			err_where(cfg, line + 7, at, sizeof(at));
			cli_error("check-config", "%s: %s", at, line + 7);
		} else {
			fprintf(warn_fp, "%s\n", line);
		}
	}
	free(text);
	return r;
}

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
	policy_settings ps;
	gk_keyring *kr = NULL;
	char err[512], at[4200];
	int c, quiet = 0, rc = 1, warnings = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_bad_option("check-config", c, argv);
		}
	}
	if (optind != argc) {
		cli_error("check-config", "unexpected argument '%s'",
		    argv[optind]);
		return 2;
	}
	if (cli_load_config("check-config", path, 1, &cfg) != 0)
		return 1;
	cfg_policy_settings(cfg, &ps);
	if (policy_new(&ps, &pol, err, sizeof(err)) != 0 ||
	    gate_v1_roots_check(cfg->v1_roots, err, sizeof(err)) != 0 ||
	    verify_keyring_new(cfg->vendor_keys, cfg->n_vendor_keys, &kr, err,
	    sizeof(err)) != 0) {
		err_where(cfg, err, at, sizeof(at));
		cli_error("check-config", "%s: %s", at, err);
		goto out;
	}
	/* the [s3] secret files, read as serve reads them for the s3 store
	 * (a group-readable one stopped serve, not check-config) */
	if (cfg->store_type != NULL && strcmp(cfg->store_type, "s3") == 0) {
		cfg_s3 s3c;

		if (cfg_s3_opts(cfg, &s3c, err, sizeof(err)) != 0) {
			err_where(cfg, err, at, sizeof(at));
			cli_error("check-config", "%s: %s", at, err);
			goto out;
		}
		cfg_s3_release(&s3c);
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
	if (cfg_v1_warning(cfg) != NULL)
		fprintf(quiet ? stderr : stdout, "warning: %s\n",
		    cfg_v1_warning(cfg));
	if (cfg->tls_cert[0] != '\0' && tls_report(cfg, quiet, &warnings) != 0)
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
