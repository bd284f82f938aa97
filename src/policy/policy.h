/*
 * policy.h - the policy folder's whole interface: client addresses, CIDR
 * sets (a path-compressed binary trie over 128-bit addresses, IPv4 held as
 * IPv4-mapped IPv6), origin allow lists, and the v1 ACL decision.
 *
 * Lists (CIDR sets, origins) are separated by commas, spaces, tabs and
 * newlines; empty items are skipped and '#' starts a comment that runs to
 * the end of the line wherever it appears. A NULL list is empty.
 * Built objects are immutable after construction and safe to read from
 * many threads at once.
 */
#ifndef GK_POLICY_H
#define GK_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "util/util.h"

/* An address normalised to 16 bytes; IPv4 is ::ffff:a.b.c.d. */
typedef struct {
	uint8_t b[16];
} gk_addr;

#define GK_ADDR_STRLEN 46

/* From a socket address (AF_INET or AF_INET6; an IPv4-mapped IPv6 peer
 * thus counts as IPv4). GK_ERR_INVALID otherwise. */
int policy_addr_from_sockaddr(const struct sockaddr *sa, gk_addr *out) GK_WUR;
/*
 * Parses "1.2.3.4" or an IPv6 literal (no brackets, no zone, no spaces),
 * at most 45 bytes, no NUL inside. IPv4 is strict dotted-quad: four
 * decimal parts, no leading zeros ("01.2.3.4" is GK_ERR_INVALID, being
 * ambiguous octal), no shorthand ("1.2.3"). "::ffff:1.2.3.4" is IPv4.
 */
int policy_addr_parse(gk_slice s, gk_addr *out) GK_WUR;
/* 1 if the address is IPv4 (IPv4-mapped). */
int policy_addr_is_v4(const gk_addr *a);
/* Text form: dotted quad for IPv4, RFC 5952 for IPv6. out >= 46 bytes
 * (GK_ADDR_STRLEN); a shorter out gets a truncated, terminated string. */
void policy_addr_str(const gk_addr *a, char *out, size_t out_len);

/*
 * Parses a CIDR ("10.0.0.0/8", "2001:db8::/32") or a bare address (a /32 or
 * /128). IPv4 prefixes become /96+n over IPv4-mapped space; an IPv6 literal
 * keeps its length as written (so "::ffff:10.0.0.0/104" = "10.0.0.0/8").
 * The length is 1-3 digits, no sign, no leading zero, <= 32 or <= 128.
 * Host bits set below the prefix are an error (GK_ERR_INVALID), so typos
 * are caught. *bits is 0..128 over the 128-bit space.
 */
int policy_cidr_parse(gk_slice s, gk_addr *net, unsigned *bits) GK_WUR;

/*
 * A set of CIDR prefixes. Lookup costs O(128) whatever the size. At most
 * 4 Mi prefixes per set (GK_ERR_TOO_LARGE beyond); memory is at most two
 * 32-byte nodes per prefix (about 6.4 MB of nodes for 100,000).
 * "0.0.0.0/0" matches all of IPv4, "::/0" everything.
 */
typedef struct gk_cidrs gk_cidrs;

int policy_cidrs_new(gk_cidrs **out) GK_WUR;
void policy_cidrs_free(gk_cidrs *c);
/* Adds one CIDR; duplicates and overlaps are fine. */
int policy_cidrs_add(gk_cidrs *c, gk_slice cidr) GK_WUR;
/*
 * Adds every item of a list (see the top of this file). On a bad item
 * returns GK_ERR_INVALID and writes "bad CIDR 'x'" into err (the item cut
 * to 64 bytes, unprintable bytes and quotes shown as '?'); the items
 * before it stay added, so discard the set. err may be NULL.
 */
int policy_cidrs_add_list(gk_cidrs *c, const char *list, char *err,
    size_t errlen) GK_WUR;
/* 1 if a lies inside any prefix of the set. */
int policy_cidrs_contains(const gk_cidrs *c, const gk_addr *a);
/* Number of prefixes added. */
size_t policy_cidrs_count(const gk_cidrs *c);
/*
 * Builds a lookup index (512 KiB: where a lookup starts for each /16 of
 * IPv4 and of IPv6) for a set of at least 256 prefixes, so a lookup in a
 * 100,000-entry list skips the first ~16 levels and costs about what it
 * costs in a small one. Adding a prefix afterwards drops the index (the
 * results stay right). policy_new does this for ip_allow and ip_deny.
 */
int policy_cidrs_optimize(gk_cidrs *c) GK_WUR;
/*
 * Adds the CIDRs of a list file's content: one CIDR per line, blank lines
 * and lines or line ends starting with '#' ignored, spaces and tabs around
 * an entry ignored, CRLF accepted. A NUL byte or a malformed line is
 * GK_ERR_INVALID with "NAME:LINE: bad CIDR 'x'" in err (name is how the
 * file is called in messages). Entries before it stay added.
 */
int policy_cidrs_add_text(gk_cidrs *c, const char *name, gk_slice text,
    char *err, size_t errlen) GK_WUR;
/* Reads the file at path (at most 256 MiB) and adds it as above; a file
 * that cannot be read is GK_ERR_IO with "PATH: reason" in err. */
int policy_cidrs_add_file(gk_cidrs *c, const char *path, char *err,
    size_t errlen) GK_WUR;

/*
 * Origin allow list. Items are exact origins ("https://app.example.com",
 * scheme + host + optional port, compared case-insensitively on scheme and
 * host; the default port is the same as none: 80 for http/ws, 443 for
 * https/wss) or domain suffixes written ".example.com", which match any
 * origin whose host ends with that suffix on a dot boundary (a.example.com,
 * not badexample.com, not example.com itself), any scheme and port, never
 * an IP-literal host. "*" allows every well-formed origin.
 *
 * A well-formed origin is scheme "://" host [":" port]: an RFC 3986 scheme
 * of at most 32 bytes; a host of letters, digits, '-', '_' in non-empty
 * dot-separated labels (<= 253 bytes, no trailing dot), a dotted quad, or
 * a bracketed IPv6 literal (compared in canonical form); a port 1..65535
 * without leading zeros. Paths, userinfo, spaces, control bytes,
 * percent-escapes and non-ASCII never match.
 */
typedef struct gk_origins gk_origins;

/* A malformed item is GK_ERR_INVALID with "bad origin 'x'" in err (err
 * may be NULL); *out is NULL on failure. At most 10,000 items. */
int policy_origins_new(const char *list, gk_origins **out, char *err,
    size_t errlen) GK_WUR;
void policy_origins_free(gk_origins *o);
/* 1 if the Origin header value is allowed; 0 for a malformed value.
 * "null" is never allowed, not even by "*". o may be NULL (nothing). */
int policy_origins_allowed(const gk_origins *o, gk_slice origin);
/* Number of items in the list, "*" included. */
size_t policy_origins_count(const gk_origins *o);

/*
 * The ACL: built from the config, immutable once built, reference
 * counted. policy_new returns it with one reference; policy_ref adds one
 * and policy_free drops one (the last frees it). A policy is what a
 * request is judged by from start to end, so a live reload never changes
 * the rules under a request in flight.
 */
typedef struct gk_policy gk_policy;

struct gk_config;
/*
 * Reads cfg->ip_allow, ip_deny, admin_cidrs, origins (NULL = empty list),
 * uploads_exempt_ip and allow_missing_origin, the list files
 * (ip_allow_files, ip_deny_files), trusted_proxies, the [geo] settings
 * (opening the database: a missing or unreadable one is an error) and the
 * [rate] settings; keeps no pointer into cfg.
 * A bad setting returns GK_ERR_CONFIG with err naming it, e.g.
 * "ip_allow: bad CIDR '10.0.0.1/8'" or "origins: bad origin 'a.com'";
 * a NULL cfg is GK_ERR_INVALID. *out is NULL on failure.
 */
int policy_new(const struct gk_config *cfg, gk_policy **out, char *err,
    size_t errlen) GK_WUR;
/* Drops one reference; the last one frees. p may be NULL. */
void policy_free(gk_policy *p);
/* Adds a reference and returns p (NULL stays NULL). */
gk_policy *policy_ref(gk_policy *p);

/*
 * IP lists: deny wins; an address outside the allow list is denied (an
 * empty allow list denies everyone). Uploads skip the allow list (never
 * the deny list) when the config exempts them (uploads_exempt_ip).
 * Returns 0 (allowed) or
 * GK_ERR_DENIED, also for a NULL p or a.
 */
int policy_check_ip(const gk_policy *p, const gk_addr *a, int is_upload);
/*
 * Origin: origin is the Origin header (present = 0 when absent). An absent
 * origin is refused unless the config allows it. Returns 0 or GK_ERR_DENIED.
 */
int policy_check_origin(const gk_policy *p, gk_slice origin, int present);
/* policy_check_ip, with *rule naming what decided: "ip_deny", "uploads
 * exempt from ip_allow", "not in ip_allow" or "ip_allow". */
int policy_check_ip_rule(const gk_policy *p, const gk_addr *a, int is_upload,
    const char **rule);
/* Admin CIDRs only (for /healthz, /metrics, /admin): neither the allow
 * nor the deny list plays a part. 0 or GK_ERR_DENIED. */
int policy_check_admin(const gk_policy *p, const gk_addr *a);


/* ---- the live policy: swapped atomically on reload ------------------ */

typedef struct gk_policy_live gk_policy_live;

/* Takes over p's reference. */
int policy_live_new(gk_policy *p, gk_policy_live **out) GK_WUR;
void policy_live_free(gk_policy_live *l);
/* The current policy with a new reference for the caller (policy_free it
 * when done); never NULL for a live object built from a policy. */
gk_policy *policy_live_get(gk_policy_live *l);
/* Installs p (taking over its reference); the old policy is freed when
 * its last request drops it. Returns the number of swaps so far. */
uint64_t policy_live_swap(gk_policy_live *l, gk_policy *p);

/* ---- countries -------------------------------------------------------- */

/* The operations a per-operation country list can name. */
enum { GK_OP_GET = 0, GK_OP_LIST = 1, GK_OP_PUT = 2 };

/* 1 if a [geo] database is configured (country checks on). */
int policy_geo_enabled(const gk_policy *p);
/*
 * The database in use: its path, its format ("MaxMind DB" or "GeoIP
 * legacy") and build date (unix seconds, 0 unknown), valid while p is.
 * Returns 0 when geo is off.
 */
int policy_geo_info(const gk_policy *p, const char **path,
    const char **format, int64_t *built);
/* A country database older than this is reported (check-config, serve). */
#define GK_GEO_STALE_DAYS 60
/* 1 when the database's build date is over GK_GEO_STALE_DAYS before now. */
int policy_geo_stale(const gk_policy *p, int64_t now);
/*
 * Looks the client up: out (3 bytes) gets the ISO code in upper case, or
 * "" when the database has no country for it or geo is off. Returns 1 if
 * a country was found.
 */
int policy_country(const gk_policy *p, const gk_addr *a, char out[3]);
/*
 * The country check for op (GK_OP_*), country as policy_country gave it.
 * Geo off: always 0. A known country: 0 if the operation's list holds it
 * (or is "*"). Unknown: loopback, private, link-local and CGNAT addresses
 * pass (the IP lists decide); others pass only with [geo] unknown = allow.
 * Returns 0 or GK_ERR_DENIED.
 */
int policy_check_country(const gk_policy *p, const gk_addr *a,
    const char *country, int op);
/* 1 if a is loopback, RFC 1918, link-local, CGNAT, ULA or unspecified. */
int policy_addr_is_private(const gk_addr *a);

/* ---- trusted proxies: X-Forwarded-For and Forwarded ------------------ */

/* Where the client address came from. */
enum {
	GK_FWD_PEER = 0,	/* the TCP peer (no proxy involved) */
	GK_FWD_HEADER = 1,	/* taken from a forwarded header */
	GK_FWD_IGNORED = 2,	/* the peer is not trusted but sent one */
	GK_FWD_BAD = 3,		/* trusted peer, malformed header: the
				 * unspecified address, which no list holds */
};

/*
 * Chooses the client address. Only when peer is a trusted proxy is the
 * configured header read ([acl] forwarded_header: X-Forwarded-For, or
 * Forwarded (RFC 7239, its for= parameters)); the other header is never
 * read. Several lines of a header must be joined by ", " first. The
 * list is walked from the right; the first address that is not itself a
 * trusted proxy is the client. If every address is a trusted proxy the
 * leftmost is the client. An element that is not an address (garbage,
 * "unknown", an obfuscated identifier, a missing for=) reached on that
 * walk stops it with GK_FWD_BAD and the unspecified address (::).
 * Returns one of GK_FWD_*; *out is always set.
 */
int policy_client_addr(const gk_policy *p, const gk_addr *peer,
    gk_slice xff, int has_xff, gk_slice fwd, int has_fwd, gk_addr *out);
/* 1 if a is one of the trusted proxies. */
int policy_is_trusted_proxy(const gk_policy *p, const gk_addr *a);

/*
 * The parsers, exposed for tests and fuzzing. Each calls fn for every
 * element from the LEFT, with the parsed address or ok = 0 for an
 * element that is not one; fn returns non-zero to stop. Return 0, or
 * GK_ERR_INVALID when the header itself is malformed (bad quoting or
 * syntax, more than 256 elements) after the elements before it.
 * X-Forwarded-For items: "1.2.3.4", "1.2.3.4:80", "2001:db8::1",
 * "[2001:db8::1]", "[2001:db8::1]:80". Forwarded for= values likewise,
 * quoted or not (a bare v6 or any port must be quoted per RFC 7239; both
 * are accepted).
 */
typedef int (*policy_fwd_fn)(void *arg, int ok, const gk_addr *a);
int policy_xff_parse(gk_slice v, policy_fwd_fn fn, void *arg) GK_WUR;
int policy_forwarded_parse(gk_slice v, policy_fwd_fn fn, void *arg) GK_WUR;

/* ---- rate limits ------------------------------------------------------ */

/*
 * A fixed-size table of token buckets keyed by client address (IPv6 by
 * its /64, since one host owns a whole /64). Memory is bounded by the
 * size given at creation; when a set of the table is full the entry seen
 * least recently is evicted (a forgotten client starts with a full
 * bucket). Each entry holds two buckets: every request, and denied
 * requests. The rates come from the policy in force, so a reload changes
 * them; the table survives reloads. Thread-safe.
 */
typedef struct gk_rate gk_rate;

int policy_rate_new(unsigned entries, gk_rate **out) GK_WUR;
void policy_rate_free(gk_rate *r);
/*
 * Called at the start of a request (now_us monotonic). Takes a token from
 * the request bucket, and checks the denied bucket is not empty. Returns
 * 0, or GK_ERR_TOO_LARGE with *retry_s (>= 1) seconds to wait. Exempt
 * addresses (policy [rate] exempt) and limits of 0 always pass.
 */
int policy_rate_check(gk_rate *r, const gk_policy *p, const gk_addr *a,
    int64_t now_us, unsigned *retry_s);
/* Takes a token from the denied bucket after a denial. */
void policy_rate_denied(gk_rate *r, const gk_policy *p, const gk_addr *a,
    int64_t now_us);
/* Entries in use (for tests and /metrics). */
size_t policy_rate_used(const gk_rate *r);

/* ---- reporting -------------------------------------------------------- */

/*
 * Prints a summary of the policy (list counts, countries, proxies, rate
 * limits) as "# " comment lines when summary is set, and one
 * "warning: ..." line per risky setting (an allow list covering every
 * address with no country limit, geo off, a trusted proxy list of
 * everything, ...). Returns the number of warnings.
 */
int policy_describe(const gk_policy *p, FILE *fp, int summary);
/* One short line: "allow N, deny N, proxies N, countries A B C | off". */
void policy_summary(const gk_policy *p, char *out, size_t out_len);

#endif
