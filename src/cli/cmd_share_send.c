/*
 * cmd_share_send.c - gatekeeper share send and share receive.
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

/* The organisation config, if there is one (explicit path: must exist). */
static int
load_config(const char *verb, const char *path, share_config *c, int *have)
{
	char def[PATH_MAX], err[512];
	int r;

	*have = 0;
	if (path == NULL) {
		if (share_config_path(def, sizeof(def)) != 0 ||
		    access(def, F_OK) != 0)
			return 0;
		path = def;
	}
	if ((r = share_config_load(path, c, err, sizeof(err))) != 0) {
		cli_error(verb, "%s", err);
		return 1;
	}
	*have = 1;
	return 0;
}

static unsigned
parse_workers(const char *verb, const char *s)
{
	uint64_t v;

	if (gk_parse_u64(gk_slice_str(s), 64, &v) != 0 || v == 0) {
		cli_error(verb, "--workers must be 1..64");
		return 0;
	}
	return (unsigned)v;
}

/* $XDG_STATE_HOME/gatekeeper/<leaf>, ~/.local/state/gatekeeper/<leaf>,
 * or /tmp/gatekeeper-<leaf>-UID. */
static void
default_state_dir(const char *leaf, char *out, size_t outlen)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (x != NULL && x[0] == '/')
		snprintf(out, outlen, "%s/gatekeeper/%s", x, leaf);
	else if (home != NULL && home[0] == '/')
		snprintf(out, outlen, "%s/.local/state/gatekeeper/%s", home,
		    leaf);
	else
		snprintf(out, outlen, "/tmp/gatekeeper-%s-%d", leaf,
		    (int)getuid());
}

static const char send_usage[] =
    "usage: gatekeeper share send DIR (--to age1... | --to-file FILE)...\n"
    "           --dest DEST -i IDENTITY [--sender NAME] [--org NAME]\n"
    "           [--resume SHARE-ID] [--workers N] [--state-dir DIR]\n"
    "           [--no-progress] [--config FILE]\n"
    "\n"
    "Sends the regular files under DIR (symlinks and special files are\n"
    "reported and skipped): each is compressed with zstd (unless already\n"
    "compressed), encrypted in the age format to every recipient and\n"
    "uploaded to DEST under shares/<share-id>/ by N parallel workers\n"
    "(default: the number of cores). Then the manifest (path, size, mode,\n"
    "mtime and SHA-256 of each file; share id, sender, organisation,\n"
    "time), signed with the sender key derived from IDENTITY and\n"
    "encrypted to the recipients. Prints the SHARE to give the receiver.\n"
    "\n"
    "DEST: file:///DIR (a local or mounted directory), or\n"
    "      s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=1]\n"
    "      (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the\n"
    "      shared credentials file, AWS_PROFILE).\n"
    "Without --to/--dest/--org the organisation config gives them\n"
    "(share config init/import). An interrupted send continues with\n"
    "--resume SHARE-ID: files already uploaded whole and unchanged are not\n"
    "sent again (the journal is in --state-dir, default\n"
    "~/.local/state/gatekeeper/shares). An id with no journal there is\n"
    "refused: nothing is uploaded.\n";

int
cmd_share_send(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 'r' },
		{ "to-file", required_argument, NULL, 'R' },
		{ "dest", required_argument, NULL, 'd' },
		{ "identity", required_argument, NULL, 'i' },
		{ "sender", required_argument, NULL, 's' },
		{ "org", required_argument, NULL, 'O' },
		{ "resume", required_argument, NULL, 'u' },
		{ "workers", required_argument, NULL, 'w' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "no-progress", no_argument, NULL, 'q' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb = "share send", *cfgpath = NULL;
	struct share_keys k = { 0 }, signer = { 0 };
	share_send_opts o;
	share_config cfg;
	char err[1024], state[PATH_MAX], host[256], sender[320];
	int c, rc = 1, have_cfg = 0;
	size_t i;

	memset(&o, 0, sizeof(o));
	memset(&cfg, 0, sizeof(cfg));
	o.progress = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:R:d:i:s:O:u:w:S:qc:h", lo,
	    NULL)) != -1) {
		switch (c) {
		case 'r':
			if (share_cli_recipient(verb, optarg, &k) != 0)
				goto out;
			break;
		case 'R':
			if (share_cli_recipients_file(verb, optarg, &k) != 0)
				goto out;
			break;
		case 'd': o.dest = optarg; break;
		case 'i':
			if (share_cli_identity(verb, optarg, &signer) != 0)
				goto out;
			break;
		case 's': o.sender = optarg; break;
		case 'O': o.organisation = optarg; break;
		case 'u': o.resume_id = optarg; break;
		case 'w':
			if ((o.workers = parse_workers(verb, optarg)) == 0) {
				rc = 2;
				goto out;
			}
			break;
		case 'S': o.state_dir = optarg; break;
		case 'q': o.progress = 0; break;
		case 'c': cfgpath = optarg; break;
		case 'h': fputs(send_usage, stdout); rc = 0; goto out;
		default: rc = cli_bad_option(verb, c, argv); goto out;
		}
	}
	if (argc - optind != 1) {
		if (argc == optind)
			cli_error(verb, "give the DIR to send (see --help)");
		else
			cli_error(verb, "one DIR at a time; unexpected '%s' "
			    "(see --help)", argv[argc - 1]);
		rc = 2;
		goto out;
	}
	o.dir = argv[optind];
	if (load_config(verb, cfgpath, &cfg, &have_cfg) != 0)
		goto out;
	if (k.n_pks == 0 && have_cfg) {
		for (i = 0; i < cfg.n_recipients; i++)
			if (share_cli_recipient(verb, cfg.recipients[i], &k))
				goto out;
	}
	if (o.dest == NULL && have_cfg && cfg.destination[0] != '\0')
		o.dest = cfg.destination;
	if (o.organisation == NULL && have_cfg)
		o.organisation = cfg.organisation;
	if (k.n_pks == 0 || o.dest == NULL || signer.n_ids == 0) {
		cli_error(verb, "needs recipients (--to/--to-file), --dest and "
		    "-i IDENTITY (or an organisation config with them)");
		rc = 2;
		goto out;
	}
	if (o.sender == NULL) {
		const char *u = getenv("USER");

		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		snprintf(sender, sizeof(sender), "%.60s@%.250s",
		    u ? u : "sender", host);
		o.sender = sender;
	}
	if (o.state_dir == NULL) {
		default_state_dir("shares", state, sizeof(state));
		o.state_dir = state;
	}
	o.pks = (const uint8_t (*)[AGE_KEY_LEN])k.pks;
	o.n_pks = k.n_pks;
	o.signer = &signer.ids[0];
	if (share_send(&o, err, sizeof(err)) != 0) {
		/* names and causes from a manifest or a server */
		share_text_safe(err);
		cli_error(verb, "%s", err);
		goto out;
	}
	{
		uint8_t pub[32];
		char fp[SHARE_FP_STR];

		if (share_sign_pub(o.signer, pub) == 0) {
			share_fingerprint(pub, fp);
			fprintf(stderr, "sent share %s, signed by sender key "
			    "%s\n", o.share_id, fp);
		}
	}
	printf("%s\n", o.share_url);
	rc = 0;
out:
	share_config_release(&cfg);
	share_cli_keys_release(&k);
	share_cli_keys_release(&signer);
	return rc;
}

static const char receive_usage[] =
    "usage: gatekeeper share receive SHARE -i IDENTITY... -o DIR\n"
    "           [--sender FINGERPRINT]... [--trust] [--force] [--list]\n"
    "           [--workers N] [--no-progress] [--config FILE]\n"
    "           [--state-dir DIR]\n"
    "\n"
    "SHARE is what 'share send' printed: DEST/shares/SHARE-ID. Fetches\n"
    "and decrypts the manifest and checks its signature: the sender key\n"
    "must be pinned (--sender, or the config's senders) unless --trust\n"
    "is given (its fingerprint is shown). Then every file is downloaded,\n"
    "decrypted, decompressed and its SHA-256 verified before it is\n"
    "renamed into place under DIR with its mode and mtime. Paths with\n"
    "'..', absolute paths and paths through a symlink are refused; an\n"
    "existing file is never overwritten without --force. A file already\n"
    "there whose size and SHA-256 are the manifest's is kept and not\n"
    "fetched again, so a receive that failed part-way is run again as it\n"
    "was; one that differs is refused before anything is written.\n"
    "--list prints the manifest instead.\n"
    "\n"
    "Replays: --state-dir (default ~/.local/state/gatekeeper/received)\n"
    "records, per share id, the signed creation time, hash and sender key\n"
    "of the manifest received. A manifest older than that one (replayed\n"
    "by whoever can write DEST), another with the same time, or one from\n"
    "another sender key is refused, by --list too.\n";

int
cmd_share_receive(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "sender", required_argument, NULL, 's' },
		{ "trust", no_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "list", no_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "no-progress", no_argument, NULL, 'q' },
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb = "share receive", *cfgpath = NULL, **pins = NULL;
	struct share_keys k = { 0 };
	share_receive_opts o;
	share_config cfg;
	char err[1024], state[PATH_MAX];
	size_t npins = 0, i;
	int c, rc = 1, have_cfg = 0;

	memset(&o, 0, sizeof(o));
	memset(&cfg, 0, sizeof(cfg));
	o.progress = -1;
	if ((pins = calloc((size_t)argc + 4096, sizeof(*pins))) == NULL)
		return 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:o:s:tflw:qc:S:h", lo, NULL))
	    != -1) {
		switch (c) {
		case 'i':
			if (share_cli_identity(verb, optarg, &k) != 0)
				goto out;
			break;
		case 'o': o.out_dir = optarg; break;
		case 's': pins[npins++] = optarg; break;
		case 't': o.trust = 1; break;
		case 'f': o.force = 1; break;
		case 'l': o.list_only = 1; break;
		case 'w':
			if ((o.workers = parse_workers(verb, optarg)) == 0) {
				rc = 2;
				goto out;
			}
			break;
		case 'q': o.progress = 0; break;
		case 'c': cfgpath = optarg; break;
		case 'S': o.state_dir = optarg; break;
		case 'h': fputs(receive_usage, stdout); rc = 0; goto out;
		default: rc = cli_bad_option(verb, c, argv); goto out;
		}
	}
	if (argc - optind != 1 || k.n_ids == 0 ||
	    (o.out_dir == NULL && !o.list_only)) {
		cli_error(verb, "needs one SHARE, -i IDENTITY and -o DIR "
		    "(or --list) (see --help)");
		rc = 2;
		goto out;
	}
	if (load_config(verb, cfgpath, &cfg, &have_cfg) != 0)
		goto out;
	for (i = 0; have_cfg && i < cfg.n_senders && i < 4096; i++)
		pins[npins++] = cfg.senders[i];
	if (o.state_dir == NULL) {
		default_state_dir("received", state, sizeof(state));
		o.state_dir = state;
	}
	o.share = argv[optind];
	o.ids = k.ids;
	o.n_ids = k.n_ids;
	o.pins = pins;
	o.n_pins = npins;
	if (share_receive(&o, err, sizeof(err)) != 0) {
		/* names and causes from a manifest or a server */
		share_text_safe(err);
		cli_error(verb, "%s", err);
		goto out;
	}
	rc = 0;
out:
	free(pins);
	share_config_release(&cfg);
	share_cli_keys_release(&k);
	return rc;
}
