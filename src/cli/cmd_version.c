/*
 * cmd_version.c - gatekeeper --version: this program's version and the
 * versions of the libraries it runs with (as loaded, not as built).
 */
#include "cli.h"

#include <GeoIP.h>
#include <curl/curl.h>
#include <expat.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <maxminddb.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>

#ifndef GK_VERSION
#define GK_VERSION "0.1.0"
#endif

int
cmd_version(int argc, char **argv)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	XML_Expat_Version ev = XML_ExpatVersionInfo();
	int pq = PQlibVersion();

	if (cli_wants_help(argc, argv)) {
		fputs("usage: gatekeeper --version (or: gatekeeper version)\n\n"
		    "Prints the version, then one line per library with the\n"
		    "version loaded at run time.\n", stdout);
		return 0;
	}
	if (argc > 1) {
		cli_error("version", "unexpected argument '%s'", argv[1]);
		return 2;
	}
	printf("gatekeeper %s\n", GK_VERSION);
	printf("libmicrohttpd %s\n", MHD_get_version());
	printf("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
	printf("SQLite %s\n", sqlite3_libversion());
	printf("libcurl %s\n", cv != NULL ? cv->version : "?");
	/* PQlibVersion: major * 10000 + minor from PostgreSQL 10 on */
	printf("libpq %d.%d\n", pq / 10000, pq % 10000);
	printf("expat %d.%d.%d\n", ev.major, ev.minor, ev.micro);
	printf("libmaxminddb %s\n", MMDB_lib_version());
	printf("jansson %s\n", jansson_version_str());
	printf("GnuTLS %s\n", gnutls_check_version(NULL));
	printf("libGeoIP %s\n", GeoIP_lib_version());
	return 0;
}
