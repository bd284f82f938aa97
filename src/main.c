/* main.c - command dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "serve", cmd_serve, "run the gatekeeper HTTP server" },
	{ "sign", cmd_sign, "print a signed request URL (for vendors and tests)" },
	{ "keygen", cmd_keygen, "create the key files the config names" },
	{ "check-config", cmd_check_config,
	    "validate the config and print the effective settings" },
	{ "audit", cmd_audit, "search and maintain the audit log" },
	{ "provision", cmd_provision,
	    "harden the S3 bucket, print the gatekeeper's IAM policy" },
	{ "grant", cmd_grant,
	    "scoped, revocable credentials for the S3 endpoint" },
	{ "share", cmd_share,
	    "send and receive directories encrypted to public keys (age)" },
	{ "version", cmd_version,
	    "print the version and the libraries' versions (also --version)" },
};

static void
usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: gatekeeper COMMAND [OPTIONS]\n\n"
	    "S3 Gatekeeper: the only path into and out of a customer's bucket.\n\n"
	    "Commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %-13s %s\n", commands[i].name,
		    commands[i].summary);
	fprintf(fp, "\nRun 'gatekeeper COMMAND --help' for a command's options.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "gatekeeper: unknown command '%s' (see --help)\n",
	    argv[1]);
	return 2;
}
