/* cmd_audit_prune.c - gatekeeper audit prune: retention by hand. */
#include "cmd_audit.h"

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

static const char prune_usage[] =
    "usage: gatekeeper audit prune [--config FILE] [--db PATH] [--days N]\n"
    "           [--before T]\n"
    "\n"
    "Deletes audit records older than N days (default: the config's\n"
    "retention_days; 0 there means keep forever), in whole spans of the\n"
    "hash chain up to the newest checkpoint signed before that time, one\n"
    "span per transaction, so it is safe while the server runs. The last\n"
    "checkpoint deleted stays as the chain's anchor: the rest still\n"
    "verifies. Records after the last checkpoint are never deleted.\n"
    "First it appends a prune record to each chain it prunes (who, when,\n"
    "up to which checkpoint, the cut-off) with a checkpoint signed over\n"
    "it with the audit key, so 'audit verify' can tell this prune from\n"
    "records deleted by hand: the config's keys must be readable.\n"
    "\n"
    "  --config FILE    config file (default: $GATEKEEPER_CONFIG, else\n"
    "                   ./gatekeeper.ini, else the built-in defaults)\n"
    "  --db PATH|URI    audit database (a SQLite path or a postgresql://\n"
    "                   URI); overrides the config\n"
    "  --days N         keep the last N days (1-100000)\n"
    "  --before T       delete spans signed before T instead (YYYY-MM-DD,\n"
    "                   YYYY-MM-DDTHH:MM:SSZ or unix seconds)\n";

int
cmd_audit_prune(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "db", required_argument, NULL, OPT_DB },
		{ "days", required_argument, NULL, OPT_DAYS },
		{ "before", required_argument, NULL, OPT_BEFORE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *db = NULL, *days_s = NULL;
	const char *before_s = NULL;
	gk_config *cfg = NULL;
	struct stat st;
	uint64_t days = 0, deleted = 0;
	int64_t keep_us, before_us = 0;
	struct passwd *pw;
	char ts[32], who[80];
	int c, r, rc = 1;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG: cfgpath = optarg; break;
		case OPT_DB: db = optarg; break;
		case OPT_DAYS: days_s = optarg; break;
		case OPT_BEFORE:
			before_s = optarg;
			if (gk_time_parse(optarg, &before_us) != 0) {
				cli_error(VERB, "bad --before value (want "
				    "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or unix "
				    "seconds)");
				return 2;
			}
			break;
		case 'h':
			fputs(prune_usage, stdout);
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
	if (days_s != NULL && (gk_parse_u64(gk_slice_str(days_s), DAYS_MAX,
	    &days) != 0 || days == 0)) {
		cli_error(VERB, "bad --days value (1-%u)", DAYS_MAX);
		return 2;
	}
	if (days_s != NULL && before_s != NULL) {
		cli_error(VERB, "give --days or --before, not both");
		return 2;
	}
	if (before_s != NULL)
		days_s = "";
	/* the config's keys too: a prune is signed with the audit key */
	if (cli_load_config(VERB, cfgpath, 1, &cfg) != 0)
		goto out;
	if (db == NULL)
		db = cfg_audit_target(cfg);
	if (days_s == NULL)
		days = cfg->retention_days;
	if (db == NULL || db[0] == '\0') {
		cli_error(VERB, "no audit database (set [audit] db or dsn, "
		    "or --db)");
		goto out;
	}
	if (days == 0 && before_s == NULL) {
		printf("retention_days is 0 (keep forever): nothing pruned\n");
		rc = 0;
		goto out;
	}
	if (audit_backend_is_file(db) &&
	    (stat(db, &st) != 0 || !S_ISREG(st.st_mode))) {
		cli_error(VERB, "no audit database at %s", db);
		goto out;
	}
	if (before_s == NULL && (__builtin_mul_overflow((int64_t)days,
	    86400LL * 1000000, &keep_us) ||
	    __builtin_sub_overflow(gk_now_us(), keep_us, &before_us))) {
		cli_error(VERB, "bad --days value");
		goto out;
	}
	if (cfg->audit_key.p == NULL || cfg->audit_key.len != 32) {
		cli_error(VERB, "no audit key (%s): a prune is signed with it",
		    cfg->audit_key_file);
		goto out;
	}
	pw = getpwuid(getuid());
	snprintf(who, sizeof(who), "cli:%s", pw != NULL && pw->pw_name !=
	    NULL ? pw->pw_name : "?");
	if ((r = audit_prune(db, before_us, cfg->audit_key.p, who,
	    &deleted)) != 0) {
		cli_error(VERB, "cannot prune %s: %s%s", audit_label(db),
		    gk_err_str(r),
		    deleted > 0 ? " (some records were deleted)" : "");
		goto out;
	}
	gk_time_iso(before_us / 1000000, ts, sizeof(ts));
	printf("pruned %" PRIu64 " record%s older than %s from %s\n", deleted,
	    deleted == 1 ? "" : "s", ts, audit_label(db));
	rc = 0;
out:
	cfg_free(cfg);
	return rc;
}
