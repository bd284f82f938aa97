/* policy_int.h - private to the policy folder. */
#ifndef GK_POLICY_INT_H
#define GK_POLICY_INT_H

#include <GeoIP.h>
#include <maxminddb.h>
#include <stdatomic.h>

#include "policy.h"

/* A set of ISO 3166 alpha-2 codes: one bit per "AA".."ZZ". */
struct country_set {
	uint8_t bit[(26 * 26 + 7) / 8];
	unsigned n;		/* codes in the set */
	int any;		/* "*" */
};

struct gk_policy {
	_Atomic unsigned refs;
	gk_cidrs *allow;
	gk_cidrs *deny;
	gk_cidrs *admin;
	gk_origins *origins;
	int uploads_exempt_ip;
	int allow_missing_origin;
	/* issue 5 */
	gk_cidrs *trusted;
	int use_forwarded;	/* read Forwarded, not X-Forwarded-For */
	gk_cidrs *rate_exempt;
	size_t allow_files, deny_files;	/* list files read */
	int geo_on;
	const struct geo_backend *geo;	/* geo.c's table, when on */
	MMDB_s mmdb;			/* .mmdb */
	GeoIP *gi4, *gi6;		/* legacy GeoIP.dat, GeoIPv6.dat */
	int64_t geo_built;		/* the database's build date, 0 unknown */
	char geo_format[24];
	char *geo_path;
	struct country_set countries[3];	/* by GK_OP_* */
	int countries_override[3];		/* set by countries_OP */
	int unknown_allow;
	unsigned rate_rps, rate_burst, rate_denied_pm, rate_denied_burst;
	unsigned rate_v6_48_factor;	/* 0: no /48 bucket */
};

/* geo.c */
int policy_geo_load(gk_policy *p, const struct gk_config *cfg, char *err,
    size_t errlen);
void policy_geo_release(gk_policy *p);
int policy_country_set_parse(const char *list, struct country_set *out,
    gk_slice *bad);

/* geo_legacy.c: GeoIP.dat through libGeoIP */
int policy_geo_legacy_open(gk_policy *p, const char *path, char *err,
    size_t errlen);
int policy_geo_legacy_country(const gk_policy *p, const gk_addr *a,
    char out[3]);
void policy_geo_legacy_close(gk_policy *p);

/* policy.c */
int policy_list_each(const char *list, int (*fn)(void *arg, gk_slice item),
    void *arg);

/* Bytes of an item shown in an error message. */
#define POLICY_SHOW_MAX 64
/*
 * A bad list item made safe to show: at most POLICY_SHOW_MAX bytes
 * ("..." after a cut), non-printable bytes and quotes as '?'.
 */
void policy_show_item(gk_slice item, char out[POLICY_SHOW_MAX + 4]);

#endif
