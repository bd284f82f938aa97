/*
 * cmd_share.c - gatekeeper share: encrypted sharing in the age format.
 * This file dispatches the share verbs and holds the key commands
 * (keygen, fingerprint) and the one-file commands (encrypt, decrypt).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/share_cli.h"
#include "share/share.h"

static const char usage_text[] =
    "usage: gatekeeper share VERB [OPTIONS]\n"
    "\n"
    "Encrypted sharing of a directory to receivers' public keys, in the\n"
    "age v1 format (age-encryption.org/v1, interoperable with age).\n"
    "\n"
    "  keygen [-o FILE]        new identity (AGE-SECRET-KEY-1...); prints\n"
    "                          its recipient (age1...)\n"
    "  keygen -y FILE          print the recipients of an identity file\n"
    "  fingerprint -i FILE     print the sender (signing) key fingerprint\n"
    "  send DIR --to R --dest DEST -i KEY   send a directory\n"
    "  receive SHARE -i KEY -o DIR          fetch, verify, decrypt a share\n"
    "  encrypt -r R [-o OUT] [FILE]         encrypt one file (like age -r)\n"
    "  decrypt -i KEY [-o OUT] FILE         decrypt one file (like age -d)\n"
    "  config init|export|import            the organisation's config\n"
    "\n"
    "Run 'gatekeeper share VERB --help' for a verb's options.\n";

/* ---- helpers shared by the share verbs --------------------------------- */

int
share_cli_identity(const char *verb, const char *path, struct share_keys *k)
{
	char err[512];

	if (age_identities_load(path, &k->ids, &k->n_ids, err,
	    sizeof(err)) != 0) {
		cli_error(verb, "%s", err);
		return 1;
	}
	return 0;
}

int
share_cli_recipient(const char *verb, const char *s, struct share_keys *k)
{
	uint8_t (*nv)[AGE_KEY_LEN];
	uint8_t pk[AGE_KEY_LEN];

	if (age_recipient_parse(gk_slice_str(s), pk) != 0) {
		cli_error(verb, "not an age recipient (age1...): %.80s", s);
		return 1;
	}
	if ((nv = realloc(k->pks, (k->n_pks + 1) * sizeof(*nv))) == NULL) {
		cli_error(verb, "out of memory");
		return 1;
	}
	memcpy(nv[k->n_pks++], pk, AGE_KEY_LEN);
	k->pks = nv;
	return 0;
}

int
share_cli_recipients_file(const char *verb, const char *path,
    struct share_keys *k)
{
	char err[512];

	if (age_recipients_load(path, &k->pks, &k->n_pks, err,
	    sizeof(err)) != 0) {
		cli_error(verb, "%s", err);
		return 1;
	}
	return 0;
}

void
share_cli_keys_release(struct share_keys *k)
{
	if (k->ids != NULL)
		gk_wipe(k->ids, k->n_ids * sizeof(*k->ids));
	free(k->ids);
	free(k->pks);
	memset(k, 0, sizeof(*k));
}

/* ---- keygen ------------------------------------------------------------- */

static const char keygen_usage[] =
    "usage: gatekeeper share keygen [-o FILE]\n"
    "       gatekeeper share keygen -y FILE\n"
    "\n"
    "Creates an age X25519 identity. With -o it is written to FILE (mode\n"
    "0600, never over an existing file) and the recipient (age1...) is\n"
    "printed; without, the identity goes to stdout as age-keygen writes it.\n"
    "The same file signs what you send (an Ed25519 key derived from it);\n"
    "its fingerprint is printed on stderr. -y prints the recipient of each\n"
    "identity in FILE. Identities made by age-keygen work the same.\n"
    "An identity file that group or others may access (mode & 077) is\n"
    "refused wherever -i takes one, as ssh refuses such a key: chmod 600.\n";

static int
keygen(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *out = NULL, *conv = NULL;
	char ids[AGE_IDENTITY_STR], rs[AGE_RECIPIENT_STR], t[64];
	char fp[SHARE_FP_STR];
	struct share_keys k = { 0 };
	age_identity id;
	uint8_t pub[32];
	gk_buf b;
	size_t i;
	int c, fd = -1, rc = 1;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:y:h", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'y': conv = optarg; break;
		case 'h': fputs(keygen_usage, stdout); return 0;
		default: return cli_bad_option("share keygen", c, argv);
		}
	}
	if (optind != argc) {
		cli_error("share keygen", "unexpected argument '%s' (see --help)",
		    argv[optind]);
		return 2;
	}
	if (conv != NULL) {
		if (share_cli_identity("share keygen", conv, &k) != 0)
			return 1;
		for (i = 0; i < k.n_ids; i++) {
			age_recipient_encode(k.ids[i].pk, rs);
			printf("%s\n", rs);
		}
		share_cli_keys_release(&k);
		return 0;
	}
	if (age_identity_generate(&id) != 0 || share_sign_pub(&id, pub) != 0) {
		cli_error("share keygen", "cannot generate a key");
		return 1;
	}
	age_identity_encode(&id, ids);
	age_recipient_encode(id.pk, rs);
	share_fingerprint(pub, fp);
	gk_time_iso(gk_now_s(), t, sizeof(t));
	gk_buf_init(&b, 4096);
	if (gk_buf_printf(&b, "# created: %s\n# public key: %s\n%s\n", t, rs,
	    ids) != 0)
		goto out;
	if (out == NULL) {
		struct stat st;

		/* "keygen > FILE" under umask 022: the key is refused later */
		if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
		    (st.st_mode & 077) != 0)
			fprintf(stderr, "share keygen: warning: writing the "
			    "secret key to a file others can read; chmod 600 "
			    "it (or use -o FILE)\n");
		fwrite(b.data, 1, b.len, stdout);
		fprintf(stderr, "Public key: %s\nsender key: %s\n", rs, fp);
		rc = 0;
		goto out;
	}
	if ((fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0) {
		cli_error("share keygen", "%s: %s", out, errno == EEXIST ?
		    "exists, not overwritten" : strerror(errno));
		goto out;
	}
	if (write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) != 0 ||
	    close(fd) != 0) {
		fd = -1;
		unlink(out);
		cli_error("share keygen", "%s: write failed", out);
		goto out;
	}
	fd = -1;
	printf("%s\n", rs);
	fprintf(stderr, "identity written to %s; sender key: %s\n", out, fp);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	gk_wipe(b.data, b.len);
	gk_buf_release(&b);
	gk_wipe(&id, sizeof(id));
	gk_wipe(ids, sizeof(ids));
	return rc;
}

static int
fingerprint(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	struct share_keys k = { 0 };
	char fp[SHARE_FP_STR];
	uint8_t pub[32];
	size_t i;
	int c, rc = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:h", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (share_cli_identity("share fingerprint", optarg,
			    &k) != 0) {
				share_cli_keys_release(&k);
				return 1;
			}
			break;
		case 'h':
			printf("usage: gatekeeper share fingerprint -i FILE\n\n"
			    "Prints the fingerprint of the sender key each "
			    "identity signs with;\nreceivers pin it with "
			    "'share receive --sender'.\n");
			return 0;
		default:
			share_cli_keys_release(&k);
			return cli_bad_option("share fingerprint", c, argv);
		}
	}
	if (k.n_ids == 0) {
		cli_error("share fingerprint", "-i FILE is required");
		return 2;
	}
	for (i = 0; i < k.n_ids; i++) {
		if (share_sign_pub(&k.ids[i], pub) != 0) {
			rc = 1;
			continue;
		}
		share_fingerprint(pub, fp);
		printf("%s\n", fp);
	}
	share_cli_keys_release(&k);
	return rc;
}

/* ---- encrypt and decrypt ------------------------------------------------ */

struct fdio {
	int fd;
};

static int
fd_read(void *arg, uint8_t *buf, size_t max, size_t *got)
{
	struct fdio *f = arg;
	ssize_t n;

	do {
		n = read(f->fd, buf, max);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return GK_ERR_IO;
	*got = (size_t)n;
	return 0;
}

static int
fd_write(void *arg, const uint8_t *p, size_t len)
{
	struct fdio *f = arg;
	ssize_t n;

	while (len > 0) {
		n = write(f->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return GK_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Output to a temporary name next to out, renamed on success. */
struct outfile {
	char tmp[PATH_MAX];
	const char *path;
	int fd;
};

/* FILE of encrypt and decrypt: a directory opens, but reading it fails
 * only after the output has begun, so it is refused first. */
static int
open_input(const char *verb, const char *path)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_error(verb, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_error(verb, "%s: %s", path, strerror(EISDIR));
		close(fd);
		return -1;
	}
	return fd;
}

static int
out_open(const char *verb, const char *path, struct outfile *o)
{
	struct stat st;

	o->path = path;
	o->fd = 1;
	o->tmp[0] = '\0';
	if (path == NULL || strcmp(path, "-") == 0) {
		o->path = NULL;
		return 0;
	}
	/*
	 * An existing OUT that is not a regular file (/dev/null, a fifo, a
	 * terminal) is written to as it is, like age -o does: renaming the
	 * temporary over it replaced /dev/null with a regular file.
	 */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			errno = EISDIR;
		else if ((o->fd = open(path, O_WRONLY | O_CLOEXEC)) >= 0)
			return 0;
		cli_error(verb, "%s: %s", path, strerror(errno));
		o->fd = -1;
		return 1;
	}
	if ((size_t)snprintf(o->tmp, sizeof(o->tmp), "%s.gk-part-%d", path,
	    (int)getpid()) >= sizeof(o->tmp) ||
	    (o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0) {
		cli_error(verb, "%s: %s", path, strerror(errno));
		o->tmp[0] = '\0';
		return 1;
	}
	return 0;
}

static int
out_close(const char *verb, struct outfile *o, int ok)
{
	if (o->path == NULL)
		return ok ? 0 : 1;
	if (close(o->fd) != 0)
		ok = 0;
	if (o->tmp[0] == '\0')		/* written in place */
		return ok ? 0 : 1;
	if (ok && rename(o->tmp, o->path) != 0) {
		cli_error(verb, "%s: %s", o->path, strerror(errno));
		ok = 0;
	}
	if (!ok)
		unlink(o->tmp);
	return ok ? 0 : 1;
}

static const char encrypt_usage[] =
    "usage: gatekeeper share encrypt (-r age1... | -R FILE)... [-o OUT] "
    "[FILE]\n"
    "\n"
    "Encrypts FILE (default stdin) to every recipient in the age v1\n"
    "binary format, to OUT (default stdout).\n";

static int
encrypt(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "recipient", required_argument, NULL, 'r' },
		{ "recipients-file", required_argument, NULL, 'R' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb = "share encrypt", *out = NULL;
	struct share_keys k = { 0 };
	struct outfile of;
	struct fdio in = { 0 }, wo;
	age_enc *enc = NULL;
	uint8_t buf[65536];
	size_t got;
	int c, rc = 1, ok = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:R:o:h", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (share_cli_recipient(verb, optarg, &k) != 0)
				goto done;
			break;
		case 'R':
			if (share_cli_recipients_file(verb, optarg, &k) != 0)
				goto done;
			break;
		case 'o': out = optarg; break;
		case 'h': fputs(encrypt_usage, stdout); rc = 0; goto done;
		default: rc = cli_bad_option(verb, c, argv); goto done;
		}
	}
	if (k.n_pks == 0 || argc - optind > 1) {
		cli_error(verb, k.n_pks == 0 ? "give a recipient: -r age1... or "
		    "-R FILE (see --help)" : "one FILE at most (see --help)");
		rc = 2;
		goto done;
	}
	if (optind < argc && strcmp(argv[optind], "-") != 0 &&
	    (in.fd = open_input(verb, argv[optind])) < 0)
		goto done;
	if (out_open(verb, out, &of) != 0)
		goto done;
	wo.fd = of.fd;
	if (age_enc_new((const uint8_t (*)[AGE_KEY_LEN])k.pks, k.n_pks, NULL,
	    fd_write, &wo, &enc) != 0) {
		cli_error(verb, "writing the output failed: %s", strerror(errno));
		goto fin;
	}
	for (;;) {
		if (fd_read(&in, buf, sizeof(buf), &got) != 0) {
			cli_error(verb, "read failed: %s", strerror(errno));
			goto fin;
		}
		if (got == 0)
			break;
		if (age_enc_write(enc, buf, got) != 0) {
			cli_error(verb, "writing the output failed: %s",
			    strerror(errno));
			goto fin;
		}
	}
	if (age_enc_finish(enc) != 0) {
		cli_error(verb, "writing the output failed: %s", strerror(errno));
		goto fin;
	}
	ok = 1;
fin:
	rc = out_close(verb, &of, ok);
done:
	if (in.fd > 0)
		close(in.fd);
	age_enc_free(enc);
	share_cli_keys_release(&k);
	return rc;
}

static const char decrypt_usage[] =
    "usage: gatekeeper share decrypt -i KEY... [-o OUT] [FILE]\n"
    "\n"
    "Decrypts one age file (binary or armored; FILE default stdin) with\n"
    "the identities in KEY, like 'age -d -i KEY'. With -o the output\n"
    "appears only when the whole file has been authenticated; on stdout\n"
    "only authenticated chunks are written. Share objects hold zstd data\n"
    "when the manifest says encoding zstd ('share receive' undoes it).\n";

static int
decrypt(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb = "share decrypt", *out = NULL, *name = "stdin";
	struct share_keys k = { 0 };
	struct outfile of;
	struct fdio in = { 0 }, wo;
	age_keyring kr;
	age_error e;
	int c, rc = 1, ok = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:o:dh", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (share_cli_identity(verb, optarg, &k) != 0)
				goto done;
			break;
		case 'o': out = optarg; break;
		case 'd': break;	/* accepted, as age -d */
		case 'h': fputs(decrypt_usage, stdout); rc = 0; goto done;
		default: rc = cli_bad_option(verb, c, argv); goto done;
		}
	}
	if (k.n_ids == 0 || argc - optind > 1) {
		cli_error(verb, k.n_ids == 0 ? "give an identity: -i KEY "
		    "(see --help)" : "one FILE at most (see --help)");
		rc = 2;
		goto done;
	}
	if (optind < argc && strcmp(argv[optind], "-") != 0) {
		name = argv[optind];
		if ((in.fd = open_input(verb, name)) < 0)
			goto done;
	}
	if (out_open(verb, out, &of) != 0)
		goto done;
	wo.fd = of.fd;
	memset(&kr, 0, sizeof(kr));
	kr.ids = k.ids;
	kr.n_ids = k.n_ids;
	if (age_decrypt(&kr, fd_read, &in, fd_write, &wo, &e) != 0)
		cli_error(verb, "%s: %s", name, e.msg);
	else
		ok = 1;
	rc = out_close(verb, &of, ok);
done:
	if (in.fd > 0)
		close(in.fd);
	share_cli_keys_release(&k);
	return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
} verbs[] = {
	{ "keygen", keygen },
	{ "fingerprint", fingerprint },
	{ "send", cmd_share_send },
	{ "receive", cmd_share_receive },
	{ "encrypt", encrypt },
	{ "decrypt", decrypt },
	{ "config", cmd_share_config },
};

int
cmd_share(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	for (i = 0; i < GK_ARRAY_LEN(verbs); i++)
		if (strcmp(argv[1], verbs[i].name) == 0)
			return verbs[i].fn(argc - 1, argv + 1);
	cli_error("share", "unknown verb '%s' (see --help)", argv[1]);
	return 2;
}
