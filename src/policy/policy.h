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

/* The v1 ACL: built from the config, immutable once built. */
typedef struct gk_policy gk_policy;

struct gk_config;
/*
 * Reads cfg->ip_allow, ip_deny, admin_cidrs, origins (NULL = empty list),
 * uploads_exempt_ip and allow_missing_origin; keeps no pointer into cfg.
 * A bad setting returns GK_ERR_CONFIG with err naming it, e.g.
 * "ip_allow: bad CIDR '10.0.0.1/8'" or "origins: bad origin 'a.com'";
 * a NULL cfg is GK_ERR_INVALID. *out is NULL on failure.
 */
int policy_new(const struct gk_config *cfg, gk_policy **out, char *err,
    size_t errlen) GK_WUR;
void policy_free(gk_policy *p);

/*
 * IP lists: deny wins; an address outside the allow list is denied (an
 * empty allow list denies everyone). Uploads skip both IP lists when the
 * config exempts them (uploads_exempt_ip). Returns 0 (allowed) or
 * GK_ERR_DENIED, also for a NULL p or a.
 */
int policy_check_ip(const gk_policy *p, const gk_addr *a, int is_upload);
/*
 * Origin: origin is the Origin header (present = 0 when absent). An absent
 * origin is refused unless the config allows it. Returns 0 or GK_ERR_DENIED.
 */
int policy_check_origin(const gk_policy *p, gk_slice origin, int present);
/* Admin CIDRs only (for /healthz, /metrics, /admin): neither the allow
 * nor the deny list plays a part. 0 or GK_ERR_DENIED. */
int policy_check_admin(const gk_policy *p, const gk_addr *a);

#endif
