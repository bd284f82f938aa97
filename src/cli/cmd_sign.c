/* cmd_sign.c - gatekeeper sign: print a signed request URL. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "gate/gate.h"
#include "verify/verify.h"

static const char usage_text[] =
    "usage: gatekeeper sign v1 --root ROOT --path PATH --op OP [--ttl S]\n"
    "                          [--config FILE] [--url BASE] [--expires UNIX]\n"
    "       gatekeeper sign v2 --kid KID --key-file FILE --op get|list|put ...\n"
    "                          (see 'gatekeeper sign v2 --help')\n"
    "\n"
    "Prints a ready v1 URL signed with the v1 shared secret, as a vendor's\n"
    "server would make it. OP is GET_Object, GET_Bucket or PUT_Object.\n"
    "--ttl is the lifetime in seconds (default 300); --expires sets the\n"
    "expiry time directly (for tests). --url overrides the base URL (default\n"
    "the config's public_url). PATH starts with '/'; for GET_Bucket it also\n"
    "ends with '/'. A root, path or operation the gatekeeper would refuse\n"
    "is refused here with the gatekeeper's message (exit 2). Protocol v1\n"
    "and its statuses: README, 'Protocol v1'.\n";

int
cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "path", required_argument, NULL, 'P' },
		{ "op", required_argument, NULL, 'o' },
		{ "ttl", required_argument, NULL, 't' },
		{ "expires", required_argument, NULL, 'e' },
		{ "config", required_argument, NULL, 'c' },
		{ "url", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = NULL, *path = NULL, *op = NULL, *cfgpath = NULL;
	const char *base = NULL, *ttl_s = NULL, *exp_s = NULL;
	char hex[GK_MAC_HEX_LEN + 1], expires[24];
	gk_config *cfg = NULL;
	gk_mac *mac = NULL;
	uint64_t ttl = 300, exp;
	gk_slice sub;
	gk_buf url, key;
	const char *why;
	int c, rc = 1;

	if (argc >= 2 && strcmp(argv[1], "v2") == 0)
		return cmd_sign_v2(argc, argv);
	if (argc < 2 || strcmp(argv[1], "v1") != 0) {
		if (cli_wants_help(argc, argv)) {
			fputs(usage_text, stdout);
			return 0;
		}
		cli_error("sign", "expected 'v1' or 'v2' (see --help)");
		return 2;
	}
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': root = optarg; break;
		case 'P': path = optarg; break;
		case 'o': op = optarg; break;
		case 't': ttl_s = optarg; break;
		case 'e': exp_s = optarg; break;
		case 'c': cfgpath = optarg; break;
		case 'u': base = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_bad_option("sign", c, argv);
		}
	}
	if (optind != argc) {
		cli_error("sign", "unexpected argument '%s' (see --help)",
		    argv[optind]);
		return 2;
	}
	if (root == NULL || path == NULL || op == NULL) {
		cli_error("sign", "--root, --path and --op are required");
		return 2;
	}
	if (strcmp(op, "GET_Object") != 0 && strcmp(op, "GET_Bucket") != 0 &&
	    strcmp(op, "PUT_Object") != 0) {
		cli_error("sign", "--op must be GET_Object, GET_Bucket or "
		    "PUT_Object");
		return 2;
	}
	if (ttl_s != NULL && gk_parse_u64(gk_slice_str(ttl_s), 10ull * 365 *
	    86400, &ttl) != 0) {
		cli_error("sign", "--ttl must be a number of seconds");
		return 2;
	}
	exp = (uint64_t)gk_now_s() + ttl;
	if (exp_s != NULL && gk_parse_u64(gk_slice_str(exp_s), INT64_MAX,
	    &exp) != 0) {
		cli_error("sign", "--expires must be a unix time");
		return 2;
	}
	if (cli_load_config("sign", cfgpath, 1, &cfg) != 0)
		return 1;
	/* refuse what the server would refuse, in its words */
	gk_buf_init(&key, 4096);
	why = gate_v1_path_shape(gk_slice_str(op), gk_slice_str(path));
	if (why == NULL)
		why = gate_v1_key(cfg->uploads_prefix, cfg->validate_keys,
		    gk_slice_str(root), gk_slice_str(path), gk_slice_str(op),
		    &key);
	gk_buf_release(&key);
	if (why != NULL) {
		cli_error("sign", "the gatekeeper would answer 400 \"%s\" "
		    "(root '%s', path '%s')", why, root, path);
		cfg_free(cfg);
		return 2;
	}
	if (!gate_v1_root_listed(cfg->v1_roots, gk_slice_str(root))) {
		cli_error("sign", "the gatekeeper would answer 403 \"Forbidden: "
		    "unknown root\" (root '%s' is not in [gate] v1_roots)",
		    root);
		cfg_free(cfg);
		return 2;
	}
	snprintf(expires, sizeof(expires), "%llu", (unsigned long long)exp);
	sub = gate_v1_sub(gk_slice_str(path));
	gk_buf_init(&url, 64 * 1024);
	if (verify_mac_new(cfg->v1_key.p, cfg->v1_key.len, &mac) != 0 ||
	    verify_v1_sign(mac, gk_slice_str(root), sub, gk_slice_str(op),
	    gk_slice_str(expires), hex) != 0 ||
	    gk_buf_printf(&url, "%s/", base ? base : cfg->public_url) != 0 ||
	    gk_pct_encode(gk_slice_str(root), 0, &url) != 0 ||
	    gk_buf_append_str(&url, "?path=") != 0 ||
	    gk_pct_encode(gk_slice_str(path), 1, &url) != 0 ||
	    gk_buf_printf(&url, "&operation=%s&expires=%s&hmac=%s", op,
	    expires, hex) != 0) {
		cli_error("sign", "cannot sign (arguments too long?)");
		goto out;
	}
	printf("%s\n", (char *)url.data);
	rc = 0;
out:
	gk_wipe(hex, sizeof(hex));
	gk_buf_release(&url);
	verify_mac_free(mac);
	cfg_free(cfg);
	return rc;
}
