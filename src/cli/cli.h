/*
 * cli.h - the cli folder's whole interface: one cmd_<verb>() per
 * subcommand (src/cli/cmd_<verb>.c), registered in main.c's table, and the
 * few helpers they share.
 *
 * Each command takes argv with argv[0] = the verb, prints its own --help,
 * and returns the process exit status: 0 success, 1 failure, 2 usage.
 * Errors are one line on stderr: "gatekeeper VERB: problem".
 */
#ifndef GK_CLI_H
#define GK_CLI_H

#include "util/util.h"

struct gk_config;

int cmd_serve(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_audit(int argc, char **argv);
/* v2: 'sign v2' and 'keygen --vendor TYPE [--kid K] [--out D]' */
int cmd_sign_v2(int argc, char **argv);
int cmd_keygen_vendor(const char *type, const char *kid, const char *dir,
    const char *cfgpath);
int cmd_provision(int argc, char **argv);
/* grant create|list|show|revoke|rotate: the S3 endpoint's credentials */
int cmd_grant(int argc, char **argv);
/* share: encrypted sharing in the age format */
int cmd_share(int argc, char **argv);
/* --version: the version and the libraries' versions in use */
int cmd_version(int argc, char **argv);

/* Prints "gatekeeper VERB: message" on stderr. */
void cli_error(const char *verb, const char *fmt, ...) GK_PRINTF(2, 3);
/* 1 if argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* Reports getopt_long's complaint (c is ':' or '?') as one line for verb;
 * returns the usage status, 2. */
int cli_bad_option(const char *verb, int c, char **argv);
/*
 * Loads the config at path (NULL: $GATEKEEPER_CONFIG, else ./gatekeeper.ini
 * if it exists, else embedded defaults). Prints the error line itself.
 */
int cli_load_config(const char *verb, const char *path, int load_keys,
    struct gk_config **out) GK_WUR;

#endif
