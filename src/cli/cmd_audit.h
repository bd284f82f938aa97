/* cmd_audit.h - what the 'gatekeeper audit' sub-verbs share. */
#ifndef GK_CMD_AUDIT_H
#define GK_CMD_AUDIT_H

#include "cli.h"

#define VERB "audit"
#define DAYS_MAX 100000u
#define PUBKEYS_MAX 8			/* verify --pubkey */

/* Option codes for getopt_long. */
enum {
	OPT_CONFIG = 256, OPT_DB, OPT_FROM, OPT_TO, OPT_IP, OPT_OP, OPT_STATUS,
	OPT_DECISION, OPT_PREFIX, OPT_LIMIT, OPT_FORMAT, OPT_DAYS,
	OPT_COUNTRY, OPT_KID, OPT_SUB, OPT_REQID, OPT_BEFORE, OPT_PUBKEY,
	OPT_CPFILE, OPT_NO_CPFILE, OPT_RETENTION,
};

/* gatekeeper audit prune / verify (argv[0] is the sub-verb) */
int cmd_audit_prune(int argc, char **argv);
int cmd_audit_verify(int argc, char **argv);

#endif
