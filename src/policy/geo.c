/*
 * geo.c - countries: the client's ISO 3166 code from a country database
 * (a MaxMind-format .mmdb through libmaxminddb: GeoLite2-Country, DB-IP
 * Lite, ...; or the legacy GeoIP.dat, geo_legacy.c), and the
 * per-operation country allow lists.
 */
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"

static int
up(uint8_t c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	return -1;
}

/* Index of a two-letter code, or -1. */
static int
code_index(gk_slice s)
{
	int a, b;

	if (s.len != 2 || (a = up(s.p[0])) < 0 || (b = up(s.p[1])) < 0)
		return -1;
	return a * 26 + b;
}

struct cs_arg {
	struct country_set *cs;
	gk_slice *bad;
};

static int
cs_item(void *arg, gk_slice item)
{
	struct cs_arg *a = arg;
	int i;

	if (item.len == 1 && item.p[0] == '*') {
		a->cs->any = 1;
		return 0;
	}
	if ((i = code_index(item)) < 0) {
		if (a->bad != NULL)
			*a->bad = item;
		return GK_ERR_INVALID;
	}
	if (!(a->cs->bit[i / 8] & (1u << (i % 8)))) {
		a->cs->bit[i / 8] |= (uint8_t)(1u << (i % 8));
		a->cs->n++;
	}
	return 0;
}

int
policy_country_set_parse(const char *list, struct country_set *out,
    gk_slice *bad)
{
	struct cs_arg a = { out, bad };

	memset(out, 0, sizeof(*out));
	return policy_list_each(list, cs_item, &a);
}

static int
cs_has(const struct country_set *cs, const char *code)
{
	int i = code_index(gk_slice_str(code));

	if (cs->any)
		return 1;
	return i >= 0 && (cs->bit[i / 8] & (1u << (i % 8))) != 0;
}

static int
mmdb_open(gk_policy *p, const char *path, char *err, size_t errlen)
{
	int s;

	errno = 0;
	s = MMDB_open(path, MMDB_MODE_MMAP, &p->mmdb);
	if (s != MMDB_SUCCESS) {
		snprintf(err, errlen, "[geo] database %s: cannot open: %s%s%s",
		    path, MMDB_strerror(s),
		    s == MMDB_IO_ERROR && errno != 0 ? ": " : "",
		    s == MMDB_IO_ERROR && errno != 0 ? strerror(errno) : "");
		return GK_ERR_CONFIG;
	}
	p->geo_built = (int64_t)p->mmdb.metadata.build_epoch;
	snprintf(p->geo_format, sizeof(p->geo_format), "MaxMind DB");
	return 0;
}

static void
mmdb_close(gk_policy *p)
{
	MMDB_close(&p->mmdb);
}

static int mmdb_country(const gk_policy *p, const gk_addr *a, char out[3]);

/* The formats, chosen by the file name: ".dat" is legacy GeoIP. */
struct geo_backend {
	const char *suffix;	/* NULL: any other name */
	int (*open)(gk_policy *p, const char *path, char *err,
	    size_t errlen);
	int (*country)(const gk_policy *p, const gk_addr *a, char out[3]);
	void (*close)(gk_policy *p);
};

static const struct geo_backend geo_backends[] = {
	{ ".dat", policy_geo_legacy_open, policy_geo_legacy_country,
	    policy_geo_legacy_close },
	{ NULL, mmdb_open, mmdb_country, mmdb_close },
};

static const struct geo_backend *
backend_for(const char *path)
{
	size_t i, n = strlen(path), k;

	for (i = 0; i < GK_ARRAY_LEN(geo_backends); i++) {
		if (geo_backends[i].suffix == NULL)
			return &geo_backends[i];
		k = strlen(geo_backends[i].suffix);
		if (n >= k && strcmp(path + n - k, geo_backends[i].suffix) == 0)
			return &geo_backends[i];
	}
	return NULL;
}

int
policy_geo_load(gk_policy *p, const struct gk_config *cfg, char *err,
    size_t errlen)
{
	static const char *const names[3] = { "countries_get",
		"countries_list", "countries_put" };
	const char *lists[3];
	gk_slice bad = GK_SLICE_NULL;
	struct country_set base;
	const struct geo_backend *be;
	int i;

	lists[0] = cfg->geo_countries_get;
	lists[1] = cfg->geo_countries_list;
	lists[2] = cfg->geo_countries_put;
	if (policy_country_set_parse(cfg->geo_countries, &base, &bad) != 0) {
		snprintf(err, errlen, "[geo] countries: bad country code "
		    "'%.*s' (two letters, ISO 3166, or *)",
		    (int)(bad.len > 16 ? 16 : bad.len), (const char *)bad.p);
		return GK_ERR_CONFIG;
	}
	for (i = 0; i < 3; i++) {
		p->countries[i] = base;
		if (lists[i] == NULL || lists[i][0] == '\0')
			continue;
		if (policy_country_set_parse(lists[i], &p->countries[i],
		    &bad) != 0) {
			snprintf(err, errlen, "[geo] %s: bad country code "
			    "'%.*s' (two letters, ISO 3166, or *)", names[i],
			    (int)(bad.len > 16 ? 16 : bad.len),
			    (const char *)bad.p);
			return GK_ERR_CONFIG;
		}
		p->countries_override[i] = 1;
	}
	if (cfg->geo_unknown == NULL || strcmp(cfg->geo_unknown, "deny") == 0) {
		p->unknown_allow = 0;
	} else if (strcmp(cfg->geo_unknown, "allow") == 0) {
		p->unknown_allow = 1;
	} else {
		snprintf(err, errlen, "[geo] unknown must be deny or allow");
		return GK_ERR_CONFIG;
	}
	if (cfg->geo_database == NULL || cfg->geo_database[0] == '\0')
		return 0;
	if ((p->geo_path = strdup(cfg->geo_database)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return GK_ERR_NOMEM;
	}
	be = backend_for(cfg->geo_database);
	if (be == NULL || (i = be->open(p, cfg->geo_database, err,
	    errlen)) != 0)
		return GK_ERR_CONFIG;
	p->geo = be;
	p->geo_on = 1;
	return 0;
}

void
policy_geo_release(gk_policy *p)
{
	if (p->geo_on && p->geo != NULL)
		p->geo->close(p);
	p->geo_on = 0;
	p->geo = NULL;
	free(p->geo_path);
	p->geo_path = NULL;
}

int
policy_geo_enabled(const gk_policy *p)
{
	return p != NULL && p->geo_on;
}

/* Copies the two-letter code at path into out if there is one. */
static int
iso_at(MMDB_entry_s *e, const char *const *path, char out[3])
{
	MMDB_entry_data_s d;

	if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data ||
	    d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2 ||
	    up((uint8_t)d.utf8_string[0]) < 0 ||
	    up((uint8_t)d.utf8_string[1]) < 0)
		return 0;
	out[0] = (char)('A' + up((uint8_t)d.utf8_string[0]));
	out[1] = (char)('A' + up((uint8_t)d.utf8_string[1]));
	out[2] = '\0';
	return 1;
}

int
policy_country(const gk_policy *p, const gk_addr *a, char out[3])
{
	out[0] = '\0';
	if (p == NULL || a == NULL || !p->geo_on || p->geo == NULL)
		return 0;
	if (p->geo->country(p, a, out))
		return 1;
	out[0] = '\0';
	return 0;
}

int
policy_geo_info(const gk_policy *p, const char **path, const char **format,
    int64_t *built)
{
	if (p == NULL || !p->geo_on)
		return 0;
	*path = p->geo_path;
	*format = p->geo_format;
	*built = p->geo_built;
	return 1;
}

int
policy_geo_stale(const gk_policy *p, int64_t now)
{
	return p != NULL && p->geo_on && p->geo_built > 0 &&
	    now - p->geo_built > (int64_t)GK_GEO_STALE_DAYS * 86400;
}

static int
mmdb_country(const gk_policy *p, const gk_addr *a, char out[3])
{
	static const char *const country[] = { "country", "iso_code", NULL };
	static const char *const registered[] = { "registered_country",
		"iso_code", NULL };
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	const struct sockaddr *sa;
	MMDB_lookup_result_s res;
	int mmerr = 0;

	if (policy_addr_is_v4(a)) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, a->b + 12, 4);
		sa = (const struct sockaddr *)&sin;
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, a->b, 16);
		sa = (const struct sockaddr *)&sin6;
	}
	res = MMDB_lookup_sockaddr((MMDB_s *)&p->mmdb, sa, &mmerr);
	if (mmerr != MMDB_SUCCESS || !res.found_entry)
		return 0;
	return iso_at(&res.entry, country, out) ||
	    iso_at(&res.entry, registered, out);
}

int
policy_addr_is_private(const gk_addr *a)
{
	static const uint8_t zero[16] = { 0 };
	const uint8_t *v4 = a->b + 12;

	if (policy_addr_is_v4(a)) {
		return v4[0] == 127 || v4[0] == 10 || v4[0] == 0 ||
		    (v4[0] == 172 && (v4[1] & 0xf0) == 16) ||
		    (v4[0] == 192 && v4[1] == 168) ||
		    (v4[0] == 169 && v4[1] == 254) ||
		    (v4[0] == 100 && (v4[1] & 0xc0) == 64);
	}
	if (memcmp(a->b, zero, 15) == 0 && (a->b[15] == 1 || a->b[15] == 0))
		return 1;	/* ::1 and :: */
	return (a->b[0] & 0xfe) == 0xfc ||			/* fc00::/7 */
	    (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80);	/* fe80::/10 */
}

int
policy_check_country(const gk_policy *p, const gk_addr *a,
    const char *country, int op)
{
	if (p == NULL || a == NULL || op < 0 || op > 2)
		return GK_ERR_DENIED;
	if (!p->geo_on)
		return 0;
	if (country != NULL && country[0] != '\0')
		return cs_has(&p->countries[op], country) ? 0 : GK_ERR_DENIED;
	if (policy_addr_is_private(a) || p->unknown_allow)
		return 0;
	return GK_ERR_DENIED;
}

/* Appends the codes of a set ("*", "US CA ...", or "none"). */
static void
cs_str(const struct country_set *cs, char *out, size_t out_len)
{
	size_t n = 0;
	int i;

	out[0] = '\0';
	if (cs->any) {
		snprintf(out, out_len, "*");
		return;
	}
	if (cs->n == 0) {
		snprintf(out, out_len, "none");
		return;
	}
	for (i = 0; i < 26 * 26 && n + 4 < out_len; i++) {
		if (!(cs->bit[i / 8] & (1u << (i % 8))))
			continue;
		if (n > 0)
			out[n++] = ' ';
		out[n++] = (char)('A' + i / 26);
		out[n++] = (char)('A' + i % 26);
		out[n] = '\0';
	}
}

/* 1 if the set is every address (0.0.0.0/0 and ::/0 both, or ::/0). */
static int
covers_all(const gk_cidrs *c, int v6)
{
	gk_addr a;

	memset(&a, 0, sizeof(a));
	a.b[0] = 0x20;	/* 2000:: */
	if (v6)
		return policy_cidrs_contains(c, &a);
	memset(&a, 0, sizeof(a));
	a.b[10] = a.b[11] = 0xff;
	a.b[12] = 8;	/* 8.0.0.0 */
	if (!policy_cidrs_contains(c, &a))
		return 0;
	a.b[12] = 200;
	return policy_cidrs_contains(c, &a);
}

void
policy_summary(const gk_policy *p, char *out, size_t out_len)
{
	char cs[1024];

	if (p == NULL) {
		snprintf(out, out_len, "no policy");
		return;
	}
	if (p->geo_on)
		cs_str(&p->countries[GK_OP_GET], cs, sizeof(cs));
	snprintf(out, out_len, "allow %zu, deny %zu, proxies %zu, "
	    "countries %s", policy_cidrs_count(p->allow),
	    policy_cidrs_count(p->deny), policy_cidrs_count(p->trusted),
	    p->geo_on ? cs : "off (no [geo] database)");
}

static void
describe_summary(const gk_policy *p, FILE *fp)
{
	static const char *const ops[3] = { "get", "list", "put" };
	char cs[1024];
	int i;

	fprintf(fp, "# policy: ip_allow %zu CIDRs (%zu list files), "
	    "ip_deny %zu CIDRs (%zu list files)\n",
	    policy_cidrs_count(p->allow), p->allow_files,
	    policy_cidrs_count(p->deny), p->deny_files);
	fprintf(fp, "# policy: admin_cidrs %zu, trusted_proxies %zu, "
	    "origins %zu\n", policy_cidrs_count(p->admin),
	    policy_cidrs_count(p->trusted), policy_origins_count(p->origins));
	if (p->geo_on) {
		char when[32] = "unknown";

		if (p->geo_built > 0)
			gk_time_iso(p->geo_built, when, sizeof(when));
		fprintf(fp, "# policy: countries from %s (%s, built %s)\n",
		    p->geo_path, p->geo_format, when);
		for (i = 0; i < 3; i++) {
			cs_str(&p->countries[i], cs, sizeof(cs));
			fprintf(fp, "# policy: countries %s: %s%s\n", ops[i],
			    cs, p->countries_override[i] ? " (override)" : "");
		}
		fprintf(fp, "# policy: unknown addresses: %s (loopback and "
		    "private: the IP lists decide)\n",
		    p->unknown_allow ? "allow" : "deny");
	} else {
		fprintf(fp, "# policy: countries: off\n");
	}
	if (p->rate_rps > 0)
		fprintf(fp, "# policy: rate %u/s (burst %u)", p->rate_rps,
		    p->rate_burst);
	else
		fprintf(fp, "# policy: rate unlimited");
	if (p->rate_denied_pm > 0)
		fprintf(fp, ", denied %u/min (burst %u)", p->rate_denied_pm,
		    p->rate_denied_burst);
	else
		fprintf(fp, ", denied unlimited");
	if (p->rate_v6_48_factor > 0)
		fprintf(fp, ", IPv6 /48 x%u", p->rate_v6_48_factor);
	fprintf(fp, ", exempt %zu CIDRs\n", policy_cidrs_count(p->rate_exempt));
}

int
policy_describe(const gk_policy *p, FILE *fp, int summary)
{
	static const char *const ops[3] = { "get", "list", "put" };
	int warnings = 0, i, open_ip;

	if (p == NULL)
		return 0;
	if (summary)
		describe_summary(p, fp);
	open_ip = covers_all(p->allow, 0) || covers_all(p->allow, 1);
	if (!p->geo_on) {
		fprintf(fp, "warning: no [geo] database: country checks are "
		    "off, only the IP lists limit access\n");
		warnings++;
	}
	if (open_ip && (!p->geo_on || p->countries[GK_OP_GET].any ||
	    p->countries[GK_OP_LIST].any)) {
		fprintf(fp, "warning: ip_allow covers every %s address and "
		    "there is no country limit: open to the whole internet\n",
		    covers_all(p->allow, 0) ? "IPv4" : "IPv6");
		warnings++;
	}
	if (policy_geo_stale(p, (int64_t)time(NULL))) {
		fprintf(fp, "warning: the country database %s is more than "
		    "%d days old: update it (see the README)\n", p->geo_path,
		    GK_GEO_STALE_DAYS);
		warnings++;
	}
	if (p->geo_on && p->unknown_allow) {
		fprintf(fp, "warning: [geo] unknown = allow: addresses the "
		    "database does not place pass the country check\n");
		warnings++;
	}
	for (i = 0; i < 3 && p->geo_on; i++) {
		if (!p->countries[i].any && p->countries[i].n == 0) {
			fprintf(fp, "warning: country list for %s is empty: "
			    "every located client is denied\n", ops[i]);
			warnings++;
		}
	}
	if (covers_all(p->trusted, 0) || covers_all(p->trusted, 1)) {
		fprintf(fp, "warning: trusted_proxies covers every address: "
		    "any client can choose its address with "
		    "X-Forwarded-For\n");
		warnings++;
	}
	if (policy_cidrs_count(p->allow) == 0) {
		fprintf(fp, "warning: ip_allow is empty: every request is "
		    "denied\n");
		warnings++;
	}
	return warnings;
}
