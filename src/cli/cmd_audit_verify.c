/* cmd_audit_verify.c - gatekeeper audit verify: proves the hash chains
 * and checkpoints. */
#include "cmd_audit.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "config/config.h"

static const char verify_usage[] =
    "usage: gatekeeper audit verify [--config FILE] [--db PATH|URI]\n"
    "           [--pubkey FILE] [--checkpoints FILE | --no-checkpoints-file]\n"
    "           [--retention-days N]\n"
    "\n"
    "Recomputes the hash chain of every instance and checks every signed\n"
    "checkpoint, in the database and in the checkpoint file, against the\n"
    "audit public key. Prints one line per problem (a modified, deleted or\n"
    "inserted record with its seq and row id, a tail cut up to the last\n"
    "checkpoint, a forged or deleted checkpoint, a bad prune anchor, records\n"
    "deleted from the start without a signed prune record allowing it) and\n"
    "a summary. Exit status 0 only when everything holds, 1 otherwise.\n"
    "\n"
    "  --config FILE      config file (default: $GATEKEEPER_CONFIG, else\n"
    "                     ./gatekeeper.ini, else the built-in defaults)\n"
    "  --db PATH|URI      audit database (a SQLite path or a postgresql://\n"
    "                     URI); overrides the config\n"
    "  --pubkey FILE      audit public key, 64 hex digits (default: the\n"
    "                     config's [audit] pubkey_file); repeat it (up to\n"
    "                     8) to accept checkpoints of earlier keys too\n"
    "  --checkpoints FILE checkpoint file, which must exist (default: the\n"
    "                     config's [audit] checkpoint_file, if one was\n"
    "                     written yet)\n"
    "  --no-checkpoints-file  check the database's checkpoints only\n"
    "  --retention-days N also report prunes of records younger than N\n"
    "                     days when pruned (default: each prune record's\n"
    "                     own cut-off is checked only)\n"
    "\n"
    "Records written after the last checkpoint are chained but not yet\n"
    "signed: deleting them from the tail is only seen once a later\n"
    "checkpoint exists (one is signed every checkpoint_records records,\n"
    "checkpoint_seconds seconds, and at shutdown).\n";

static void
on_problem(void *arg, const char *msg)
{
	(void)arg;
	printf("PROBLEM: %s\n", msg);
}

int
cmd_audit_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "db", required_argument, NULL, OPT_DB },
		{ "pubkey", required_argument, NULL, OPT_PUBKEY },
		{ "checkpoints", required_argument, NULL, OPT_CPFILE },
		{ "no-checkpoints-file", no_argument, NULL, OPT_NO_CPFILE },
		{ "retention-days", required_argument, NULL, OPT_RETENTION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *db = NULL, *cpfile = NULL;
	const char *pubfiles[PUBKEYS_MAX];
	gk_config *cfg = NULL;
	gk_audit_verify_stats st;
	uint8_t pubs[PUBKEYS_MAX * 32];
	char err[512];
	size_t npub = 0, i;
	uint64_t keep_days = 0;
	int c, r, rc = 1, no_cpfile = 0, cpfile_arg = 0;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG: cfgpath = optarg; break;
		case OPT_DB: db = optarg; break;
		case OPT_PUBKEY:
			if (npub == PUBKEYS_MAX) {
				cli_error(VERB, "at most %d --pubkey",
				    PUBKEYS_MAX);
				return 2;
			}
			pubfiles[npub++] = optarg;
			break;
		case OPT_CPFILE:
			cpfile = optarg;
			cpfile_arg = 1;
			break;
		case OPT_NO_CPFILE: no_cpfile = 1; break;
		case OPT_RETENTION:
			if (gk_parse_u64(gk_slice_str(optarg), DAYS_MAX,
			    &keep_days) != 0) {
				cli_error(VERB, "bad --retention-days value "
				    "(0-%u)", DAYS_MAX);
				return 2;
			}
			break;
		case 'h':
			fputs(verify_usage, stdout);
			return 0;
		default:
			return cli_bad_option(VERB, c, argv);
		}
	}
	if (optind != argc) {
		cli_error(VERB, "unexpected argument %s (see --help)",
		    argv[optind]);
		return 2;
	}
	if (db == NULL || npub == 0 || (cpfile == NULL && !no_cpfile) ||
	    cfgpath != NULL) {
		if (cli_load_config(VERB, cfgpath, 0, &cfg) != 0)
			goto out;
		if (db == NULL)
			db = cfg_audit_target(cfg);
		if (npub == 0)
			pubfiles[npub++] = cfg->audit_pub_file;
		if (cpfile == NULL)
			cpfile = cfg->audit_checkpoint_file;
	}
	if (no_cpfile)
		cpfile = NULL;
	/* the config's file may not exist yet (no checkpoint signed), but a
	 * file named on the command line that is not there is a typo, and
	 * skipping it would report a check that was never made */
	if (cpfile_arg && !no_cpfile && access(cpfile, R_OK) != 0) {
		cli_error(VERB, "cannot read the checkpoint file %s: %s",
		    cpfile, strerror(errno));
		goto out;
	}
	if (db == NULL || db[0] == '\0') {
		cli_error(VERB, "no audit database (set [audit] db or dsn, "
		    "or --db)");
		goto out;
	}
	for (i = 0; i < npub; i++) {
		if (audit_read_pubkey(pubfiles[i], pubs + 32 * i) != 0) {
			cli_error(VERB, "cannot read the audit public key %s "
			    "(64 hex digits; 'gatekeeper keygen' writes it)",
			    pubfiles[i]);
			goto out;
		}
	}
	if (audit_backend_is_file(db) && access(db, R_OK) != 0) {
		cli_error(VERB, "no audit database at %s", db);
		goto out;
	}
	r = audit_verify(db, pubs, npub, cpfile, (int64_t)keep_days *
	    86400LL * 1000000, on_problem, NULL, &st, err, sizeof(err));
	if (r != 0) {
		cli_error(VERB, "cannot verify: %s", err[0] != '\0' ? err :
		    gk_err_str(r));
		goto out;
	}
	printf("%s: %" PRIu64 " record%s, %" PRIu64 " instance%s, %" PRIu64
	    " signed checkpoint%s: %s\n", audit_label(db), st.records,
	    st.records == 1 ? "" : "s", st.instances,
	    st.instances == 1 ? "" : "s", st.checkpoints,
	    st.checkpoints == 1 ? "" : "s",
	    st.problems == 0 ? "OK, the chain verifies" : "NOT OK");
	if (st.problems != 0)
		printf("%" PRIu64 " problem%s found\n", st.problems,
		    st.problems == 1 ? "" : "s");
	fflush(stdout);
	rc = st.problems == 0 ? 0 : 1;
out:
	cfg_free(cfg);
	return rc;
}
