/* cmd_sign_v2.c - gatekeeper sign v2: print a v2 token and a ready URL. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "gate/gate.h"
#include "gatekeeper/sign.h"
#include "policy/policy.h"

static const char usage_text[] =
    "usage: gatekeeper sign v2 --kid KID --key-file FILE --op get|list|put\n"
    "                          (--key KEY | --prefix PREFIX/) [--ttl S]\n"
    "                          [--cip CIDR] [--jti auto|ID] [--sub USER]\n"
    "                          [--aud ID] [--iat UNIX] [--nbf UNIX]\n"
    "                          [--url BASE] [--config FILE]\n"
    "\n"
    "Prints a protocol v2 token (a compact JWS, as any JWT library makes it)\n"
    "on the first line and a ready URL on the second, as a vendor's server\n"
    "would make them. --key-file is a PEM private key (Ed25519: EdDSA, P-256:\n"
    "ES256; 'gatekeeper keygen --vendor' writes one) or an HS256 secret file\n"
    "(its trimmed text, at least 32 bytes). --ttl is the lifetime in seconds\n"
    "(default 300); --jti auto makes the token single use with a random id.\n"
    "--aud defaults to the config's [gate] id, --url to its public_url.\n"
    "For --op put the URL is to be POSTed (it answers the upload form).\n"
    "A key, prefix or --cip the gatekeeper would refuse is refused here\n"
    "with the gatekeeper's message (exit 2).\n";

static int
num(const char *s, long long *out)
{
	uint64_t v;

	if (gk_parse_u64(gk_slice_str(s), INT64_MAX, &v) != 0)
		return -1;
	*out = (long long)v;
	return 0;
}

/* The signing key: a PEM private key, or else an HS256 secret. */
static int
load_key(const char *path, const char *kid, gk_sign_key **out)
{
	gk_buf b;
	size_t n;
	int r;

	if ((r = gk_file_read(path, 65536, &b)) != 0) {
		cli_error("sign", "%s: cannot read: %s", path,
		    gk_file_strerror(r));
		return -1;
	}
	n = b.len;
	if (memmem(b.data, b.len, "-----BEGIN", 10) != NULL) {
		r = gk_sign_key_pem((const char *)b.data, b.len, kid, out);
	} else {
		while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' ||
		    b.data[n - 1] == ' ' || b.data[n - 1] == '\t'))
			n--;
		r = gk_sign_key_hs256(b.data, n, kid, out);
	}
	gk_wipe(b.data, b.len);
	gk_buf_release(&b);
	if (r != 0) {
		cli_error("sign", "%s: %s", path, r == GK_SIGN_EINVAL ?
		    "not a PEM private key, nor a secret of at least 32 bytes "
		    "(or a bad --kid)" : gk_sign_strerror(r));
		return -1;
	}
	return 0;
}

int
cmd_sign_v2(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kid", required_argument, NULL, 'k' },
		{ "key-file", required_argument, NULL, 'f' },
		{ "op", required_argument, NULL, 'o' },
		{ "key", required_argument, NULL, 'K' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "ttl", required_argument, NULL, 't' },
		{ "cip", required_argument, NULL, 'i' },
		{ "jti", required_argument, NULL, 'j' },
		{ "sub", required_argument, NULL, 's' },
		{ "aud", required_argument, NULL, 'a' },
		{ "iat", required_argument, NULL, 'I' },
		{ "nbf", required_argument, NULL, 'n' },
		{ "url", required_argument, NULL, 'u' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kid = NULL, *file = NULL, *cfgpath = NULL, *base = NULL;
	gk_sign_claims c;
	gk_sign_key *k = NULL;
	gk_config *cfg = NULL;
	char *token = NULL, *url = NULL;
	int ch, r, rc = 1;

	memset(&c, 0, sizeof(c));
	optind = 2;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k': kid = optarg; break;
		case 'f': file = optarg; break;
		case 'o': c.op = optarg; break;
		case 'K': c.key = optarg; break;
		case 'p': c.prefix = optarg; break;
		case 'i': c.cip = optarg; break;
		case 'j': c.jti = optarg; break;
		case 's': c.sub = optarg; break;
		case 'a': c.aud = optarg; break;
		case 'u': base = optarg; break;
		case 'c': cfgpath = optarg; break;
		case 't':
			if (num(optarg, &c.ttl) != 0 || c.ttl == 0) {
				cli_error("sign", "--ttl must be a positive "
				    "number of seconds");
				return 2;
			}
			break;
		case 'I':
			if (num(optarg, &c.iat) != 0) {
				cli_error("sign", "--iat must be a unix time");
				return 2;
			}
			break;
		case 'n':
			if (num(optarg, &c.nbf) != 0) {
				cli_error("sign", "--nbf must be a unix time");
				return 2;
			}
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_bad_option("sign", ch, argv);
		}
	}
	if (optind != argc) {
		cli_error("sign", "unexpected argument '%s' (see --help)",
		    argv[optind]);
		return 2;
	}
	if (kid == NULL || file == NULL || c.op == NULL) {
		cli_error("sign", "--kid, --key-file and --op are required");
		return 2;
	}
	if (strcmp(c.op, "get") != 0 && strcmp(c.op, "list") != 0 &&
	    strcmp(c.op, "put") != 0) {
		cli_error("sign", "--op must be get, list or put");
		return 2;
	}
	if ((c.key == NULL) == (c.prefix == NULL)) {
		cli_error("sign", "give exactly one of --key or --prefix");
		return 2;
	}
	if (c.prefix != NULL && (c.prefix[0] == '\0' ||
	    c.prefix[strlen(c.prefix) - 1] != '/')) {
		cli_error("sign", "--prefix must end with '/'");
		return 2;
	}
	/* refuse what the gatekeeper would refuse, in its words (as v1) */
	if (c.key != NULL ? !gate_key_valid(gk_slice_str(c.key), 0) :
	    !gate_key_valid(gk_slice_str(c.prefix), 1)) {
		cli_error("sign", "the gatekeeper would answer 403 \"Forbidden: "
		    "the token's 'key' or 'prefix' is not a valid key\"");
		return 2;
	}
	if (c.cip != NULL) {
		gk_addr net;
		unsigned bits;

		if (policy_cidr_parse(gk_slice_str(c.cip), &net, &bits) != 0) {
			cli_error("sign", "the gatekeeper would answer 401 "
			    "\"Unauthorized: invalid 'cip' claim\" (--cip %s)",
			    c.cip);
			return 2;
		}
	}
	if (cli_load_config("sign", cfgpath, 0, &cfg) != 0)
		return 1;
	if (c.aud == NULL)
		c.aud = cfg->id;
	if (base == NULL)
		base = cfg->public_url;
	if (load_key(file, kid, &k) != 0)
		goto out;
	if ((token = malloc(8192)) == NULL || (url = malloc(16384)) == NULL) {
		cli_error("sign", "out of memory");
		goto out;
	}
	if ((r = gk_sign_v2_token(k, &c, token, 8192)) != 0 ||
	    (r = gk_sign_v2_url(base, c.op, c.key ? c.key : c.prefix, token,
	    url, 16384)) != 0) {
		cli_error("sign", "cannot sign: %s", gk_sign_strerror(r));
		goto out;
	}
	printf("%s\n%s\n", token, url);
	rc = 0;
out:
	free(token);
	free(url);
	gk_sign_key_free(k);
	cfg_free(cfg);
	return rc;
}
