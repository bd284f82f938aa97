/* common.c - helpers shared by the subcommands. */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

void
cli_error(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gatekeeper %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

int
cli_load_config(const char *verb, const char *path, int load_keys,
    gk_config **out)
{
	char err[512];
	int r;

	/* an empty $GATEKEEPER_CONFIG is an unset one */
	if (path == NULL && (path = getenv("GATEKEEPER_CONFIG")) != NULL &&
	    path[0] == '\0')
		path = NULL;
	if (path == NULL && access("gatekeeper.ini", F_OK) == 0)
		path = "gatekeeper.ini";
	if ((r = cfg_load(path, load_keys, out, err, sizeof(err))) != 0) {
		cli_error(verb, "%s", err);
		return r;
	}
	return 0;
}

int
cli_bad_option(const char *verb, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		cli_error(verb, "option %s needs a value", arg);
	else
		cli_error(verb, "unknown option %s (see --help)", arg);
	return 2;
}
