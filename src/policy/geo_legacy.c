/*
 * geo_legacy.c - countries from the legacy GeoIP country format
 * (GeoIP.dat, and GeoIPv6.dat beside it), read with Debian's libGeoIP: the
 * format of Debian's geoip-database package, so the default country rule
 * is live on a fresh Debian install without an account anywhere.
 */
#include "policy/policy_int.h"

#include <GeoIP.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* "GEO-106FREE 20191224 Build 1 Copyright ..." -> unix seconds, or 0. */
static int64_t
info_date(GeoIP *gi)
{
	char *info = GeoIP_database_info(gi);
	const char *p;
	struct tm tm;
	int64_t t = 0;
	unsigned y, m, d;

	if (info == NULL)
		return 0;
	p = strchr(info, ' ');
	if (p != NULL && sscanf(p + 1, "%4u%2u%2u", &y, &m, &d) == 3 &&
	    y >= 1990 && y < 3000 && m >= 1 && m <= 12 && d >= 1 && d <= 31) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = (int)y - 1900;
		tm.tm_mon = (int)m - 1;
		tm.tm_mday = (int)d;
		t = (int64_t)timegm(&tm);
	}
	free(info);
	return t;
}

static GeoIP *
open_country(const char *path, int want_edition, char *err, size_t errlen)
{
	GeoIP *gi;

	if (access(path, R_OK) != 0) {
		snprintf(err, errlen, "[geo] database %s: cannot open", path);
		return NULL;
	}
	gi = GeoIP_open(path, GEOIP_MEMORY_CACHE | GEOIP_SILENCE);
	if (gi == NULL) {
		snprintf(err, errlen, "[geo] database %s: not a GeoIP database",
		    path);
		return NULL;
	}
	if (GeoIP_database_edition(gi) != want_edition) {
		snprintf(err, errlen, "[geo] database %s: not a GeoIP %s "
		    "country database", path,
		    want_edition == GEOIP_COUNTRY_EDITION ? "IPv4" : "IPv6");
		GeoIP_delete(gi);
		return NULL;
	}
	return gi;
}

int
policy_geo_legacy_open(gk_policy *p, const char *path, char *err,
    size_t errlen)
{
	const char *slash = strrchr(path, '/');
	size_t dir = slash != NULL ? (size_t)(slash - path) + 1 : 0;
	char v6[4096], e6[256];

	if ((p->gi4 = open_country(path, GEOIP_COUNTRY_EDITION, err,
	    errlen)) == NULL)
		return GK_ERR_CONFIG;
	p->geo_built = info_date(p->gi4);
	snprintf(p->geo_format, sizeof(p->geo_format), "GeoIP legacy");
	/* IPv6 from GeoIPv6.dat in the same directory, when there */
	if (dir + sizeof("GeoIPv6.dat") <= sizeof(v6)) {
		memcpy(v6, path, dir);
		memcpy(v6 + dir, "GeoIPv6.dat", sizeof("GeoIPv6.dat"));
		if (strcmp(v6, path) != 0 && access(v6, R_OK) == 0)
			p->gi6 = open_country(v6, GEOIP_COUNTRY_EDITION_V6, e6,
			    sizeof(e6));
	}
	return 0;
}

int
policy_geo_legacy_country(const gk_policy *p, const gk_addr *a, char out[3])
{
	GeoIPLookup gl;
	const char *code;
	geoipv6_t v6;
	int id;

	memset(&gl, 0, sizeof(gl));
	if (policy_addr_is_v4(a)) {
		if (p->gi4 == NULL)
			return 0;
		id = GeoIP_id_by_ipnum_gl(p->gi4, (unsigned long)a->b[12] << 24 |
		    (unsigned long)a->b[13] << 16 |
		    (unsigned long)a->b[14] << 8 | a->b[15], &gl);
	} else {
		if (p->gi6 == NULL)
			return 0;
		memcpy(&v6, a->b, 16);
		id = GeoIP_id_by_ipnum_v6_gl(p->gi6, v6, &gl);
	}
	if (id <= 0 || (code = GeoIP_code_by_id(id)) == NULL ||
	    strlen(code) != 2)
		return 0;
	/* A1 anonymous proxy, A2 satellite, O1 other, AP/EU regions: not a
	 * country, so "unknown" */
	if (code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' ||
	    strcmp(code, "AP") == 0 || strcmp(code, "EU") == 0)
		return 0;
	memcpy(out, code, 3);
	return 1;
}

void
policy_geo_legacy_close(gk_policy *p)
{
	if (p->gi4 != NULL)
		GeoIP_delete(p->gi4);
	if (p->gi6 != NULL)
		GeoIP_delete(p->gi6);
	p->gi4 = p->gi6 = NULL;
}
