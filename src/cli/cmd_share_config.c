/*
 * cmd_share_config.c - gatekeeper share config init|export|import: the
 * organisation's share settings (destination, organisation, recipients,
 * pinned sender keys), signed by the organisation's key for distribution
 * and verified against a pinned fingerprint on import.
 */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/share_cli.h"
#include "share/share.h"

static const char config_usage[] =
    "usage: gatekeeper share config init [--dest DEST] [--org NAME]\n"
    "           [--to age1...]... [--sender FINGERPRINT]... [-o FILE] "
    "[--force]\n"
    "       gatekeeper share config export [-c FILE] -i ORG-KEY [-o OUT]\n"
    "       gatekeeper share config import URL|FILE --pin FINGERPRINT\n"
    "           [-o FILE] [--cacert FILE] [--force]\n"
    "\n"
    "init writes the config (JSON): where senders send (DEST, as for\n"
    "'share send'), the organisation's name, the recipients every share\n"
    "is encrypted to, and the sender keys receivers accept. On a terminal\n"
    "it asks for what the flags did not give. export signs the config\n"
    "with the organisation's identity (fingerprint on stderr); import\n"
    "fetches an export (https:// with libcurl, or a file), refuses it\n"
    "unless it is signed by the key with the pinned fingerprint, and\n"
    "installs it. FILE defaults to $GATEKEEPER_SHARE_CONFIG or\n"
    "~/.config/gatekeeper/share.json.\n";

static int
default_path(const char *verb, const char **path, char *buf, size_t len)
{
	if (*path != NULL)
		return 0;
	if (share_config_path(buf, len) != 0) {
		cli_error(verb, "no config path: set HOME or use -o");
		return 1;
	}
	*path = buf;
	return 0;
}

static int
write_config(const char *verb, const char *path, gk_slice data, int force)
{
	char dir[PATH_MAX], *slash;

	if (!force && access(path, F_OK) == 0) {
		cli_error(verb, "%s exists (use --force to replace it)", path);
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (gk_mkdirs(dir, 0755) != 0) {
			cli_error(verb, "cannot create %s", dir);
			return 1;
		}
	}
	if (gk_file_write_atomic(path, data.p, data.len, 0644) != 0) {
		cli_error(verb, "cannot write %s", path);
		return 1;
	}
	return 0;
}

/* One answer from the terminal; empty keeps *val. */
static int
ask(const char *q, char *buf, size_t len)
{
	size_t n;

	fprintf(stderr, "%s: ", q);
	fflush(stderr);
	if (fgets(buf, (int)len, stdin) == NULL)
		return -1;
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return (int)n;
}

static int
add_str(char ***list, size_t *n, const char *s)
{
	char **nv = realloc(*list, (*n + 1) * sizeof(*nv));

	if (nv == NULL)
		return 1;
	*list = nv;
	if ((nv[*n] = strdup(s)) == NULL)
		return 1;
	(*n)++;
	return 0;
}

static int
init(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dest", required_argument, NULL, 'd' },
		{ "org", required_argument, NULL, 'O' },
		{ "to", required_argument, NULL, 'r' },
		{ "sender", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb = "share config init", *path = NULL;
	char pbuf[PATH_MAX], line[1024], err[512];
	share_config c, chk;
	gk_buf js;
	int ch, rc = 1, force = 0, tty = isatty(0);

	memset(&c, 0, sizeof(c));
	gk_buf_init(&js, SHARE_CONFIG_MAX);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":d:O:r:s:o:fh", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': free(c.destination); c.destination = strdup(optarg);
			break;
		case 'O': free(c.organisation); c.organisation = strdup(optarg);
			break;
		case 'r':
			if (add_str(&c.recipients, &c.n_recipients, optarg))
				goto out;
			break;
		case 's':
			if (add_str(&c.senders, &c.n_senders, optarg))
				goto out;
			break;
		case 'o': path = optarg; break;
		case 'f': force = 1; break;
		case 'h': fputs(config_usage, stdout); rc = 0; goto out;
		default: rc = cli_bad_option(verb, ch, argv); goto out;
		}
	}
	if (tty && c.destination == NULL && ask("Destination (file:///DIR or "
	    "s3://BUCKET/PREFIX?endpoint=...)", line, sizeof(line)) > 0)
		c.destination = strdup(line);
	if (tty && c.organisation == NULL && ask("Organisation name", line,
	    sizeof(line)) > 0)
		c.organisation = strdup(line);
	while (tty && c.n_recipients == 0) {
		if (ask("Recipient (age1...; empty line ends)", line,
		    sizeof(line)) <= 0)
			break;
		if (add_str(&c.recipients, &c.n_recipients, line))
			goto out;
		while (ask("Another recipient (empty line ends)", line,
		    sizeof(line)) > 0)
			if (add_str(&c.recipients, &c.n_recipients, line))
				goto out;
	}
	if (c.destination == NULL || c.organisation == NULL ||
	    c.n_recipients == 0) {
		cli_error(verb, "needs --dest, --org and at least one --to");
		rc = 2;
		goto out;
	}
	/* what is written is what the parser accepts */
	if (share_config_json(&c, &js) != 0 ||
	    share_config_parse(gk_slice_of(js.data, js.len), &chk, err,
	    sizeof(err)) != 0) {
		cli_error(verb, "%s", err);
		goto out;
	}
	share_config_release(&chk);
	if (default_path(verb, &path, pbuf, sizeof(pbuf)) != 0 ||
	    write_config(verb, path, gk_slice_of(js.data, js.len), force) != 0)
		goto out;
	fprintf(stderr, "wrote %s\n", path);
	rc = 0;
out:
	gk_buf_release(&js);
	share_config_release(&c);
	return rc;
}

static int
export(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "identity", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb = "share config export", *path = NULL, *out = NULL;
	char pbuf[PATH_MAX], err[512], fp[SHARE_FP_STR];
	struct share_keys k = { 0 };
	share_config c;
	gk_buf js, env;
	uint8_t pub[32];
	int ch, rc = 1;

	memset(&c, 0, sizeof(c));
	gk_buf_init(&js, SHARE_CONFIG_MAX);
	gk_buf_init(&env, SHARE_CONFIG_MAX + 4096);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:i:o:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'i':
			if (share_cli_identity(verb, optarg, &k) != 0)
				goto out;
			break;
		case 'o': out = optarg; break;
		case 'h': fputs(config_usage, stdout); rc = 0; goto out;
		default: rc = cli_bad_option(verb, ch, argv); goto out;
		}
	}
	if (k.n_ids == 0 || optind != argc) {
		cli_error(verb, "-i ORG-KEY is required");
		rc = 2;
		goto out;
	}
	if (default_path(verb, &path, pbuf, sizeof(pbuf)) != 0)
		goto out;
	if (share_config_load(path, &c, err, sizeof(err)) != 0) {
		cli_error(verb, "%s", err);
		goto out;
	}
	if (share_config_json(&c, &js) != 0 ||
	    share_envelope_sign("config", &k.ids[0], gk_slice_of(js.data,
	    js.len), &env) != 0 || share_sign_pub(&k.ids[0], pub) != 0) {
		cli_error(verb, "cannot sign the config");
		goto out;
	}
	share_fingerprint(pub, fp);
	if (out != NULL) {
		if (gk_file_write_atomic(out, env.data, env.len, 0644) != 0) {
			cli_error(verb, "cannot write %s", out);
			goto out;
		}
	} else
		fwrite(env.data, 1, env.len, stdout);
	fprintf(stderr, "signed by %s (importers pin it: --pin %s)\n", fp, fp);
	rc = 0;
out:
	gk_buf_release(&js);
	gk_buf_release(&env);
	share_config_release(&c);
	share_cli_keys_release(&k);
	return rc;
}

static int
import(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "cacert", required_argument, NULL, 'C' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb = "share config import", *path = NULL, *pin = NULL;
	const char *cacert = NULL, *src;
	char pbuf[PATH_MAX], err[512], fp[SHARE_FP_STR];
	share_config c;
	gk_buf raw, js;
	gk_slice body;
	uint8_t pub[32];
	int ch, rc = 1, force = 0, r;

	memset(&c, 0, sizeof(c));
	gk_buf_init(&raw, SHARE_CONFIG_MAX + 4096);
	gk_buf_init(&js, SHARE_CONFIG_MAX);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":p:o:C:fh", lo, NULL)) != -1) {
		switch (ch) {
		case 'p': pin = optarg; break;
		case 'o': path = optarg; break;
		case 'C': cacert = optarg; break;
		case 'f': force = 1; break;
		case 'h': fputs(config_usage, stdout); rc = 0; goto out;
		default: rc = cli_bad_option(verb, ch, argv); goto out;
		}
	}
	if (argc - optind != 1 || pin == NULL) {
		cli_error(verb, "needs URL|FILE and --pin FINGERPRINT");
		rc = 2;
		goto out;
	}
	src = argv[optind];
	if (strncmp(src, "https://", 8) == 0)
		r = share_fetch_https(src, cacert, SHARE_CONFIG_MAX + 4096,
		    &raw, err, sizeof(err));
	else if (strstr(src, "://") != NULL) {
		snprintf(err, sizeof(err), "%s: only https:// URLs or files",
		    src);
		r = GK_ERR_INVALID;
	} else {
		r = gk_file_read(src, SHARE_CONFIG_MAX + 4096, &raw);
		if (r != 0)
			snprintf(err, sizeof(err), "%s: %s", src, gk_err_str(r));
	}
	if (r != 0) {
		cli_error(verb, "%s", err);
		goto out;
	}
	if (share_envelope_open("config", gk_slice_of(raw.data, raw.len), pub,
	    &body) != 0) {
		cli_error(verb, "%s: not a signed config or signature mismatch",
		    src);
		goto out;
	}
	share_fingerprint(pub, fp);
	if (strcmp(fp, pin) != 0) {
		cli_error(verb, "%s: signed by %s, not the pinned %s", src, fp,
		    pin);
		goto out;
	}
	if (share_config_parse(body, &c, err, sizeof(err)) != 0) {
		cli_error(verb, "%s", err);
		goto out;
	}
	if (share_config_json(&c, &js) != 0 ||
	    default_path(verb, &path, pbuf, sizeof(pbuf)) != 0 ||
	    write_config(verb, path, gk_slice_of(js.data, js.len), force) != 0)
		goto out;
	fprintf(stderr, "imported the config of %s (signed by %s) to %s\n",
	    c.organisation, fp, path);
	rc = 0;
out:
	gk_buf_release(&raw);
	gk_buf_release(&js);
	share_config_release(&c);
	return rc;
}

int
cmd_share_config(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		fputs(config_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "init") == 0)
		return init(argc - 1, argv + 1);
	if (strcmp(argv[1], "export") == 0)
		return export(argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return import(argc - 1, argv + 1);
	cli_error("share config", "unknown verb '%s' (init, export, import)",
	    argv[1]);
	return 2;
}
