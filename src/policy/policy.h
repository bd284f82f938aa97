/*
 * policy.h - the policy folder's whole interface: client addresses, CIDR
 * sets (a binary prefix trie over 128-bit addresses, IPv4 held as
 * IPv4-mapped IPv6), origin allow lists, and the v1 ACL decision.
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

/* From a socket address (AF_INET or AF_INET6). GK_ERR_INVALID otherwise. */
int policy_addr_from_sockaddr(const struct sockaddr *sa, gk_addr *out) GK_WUR;
/* Parses "1.2.3.4" or an IPv6 literal (no brackets, no zone). */
int policy_addr_parse(gk_slice s, gk_addr *out) GK_WUR;
/* 1 if the address is IPv4 (IPv4-mapped). */
int policy_addr_is_v4(const gk_addr *a);
/* Text form: dotted quad for IPv4, RFC 5952 for IPv6. out >= 46 bytes. */
void policy_addr_str(const gk_addr *a, char *out, size_t out_len);

/*
 * Parses a CIDR ("10.0.0.0/8", "2001:db8::/32") or a bare address (a /32 or
 * /128). IPv4 prefixes become /96+n over IPv4-mapped space. Host bits set
 * below the prefix are an error (GK_ERR_INVALID), so typos are caught.
 */
int policy_cidr_parse(gk_slice s, gk_addr *net, unsigned *bits) GK_WUR;

/* A set of CIDR prefixes. Lookup costs O(128) whatever the size. */
typedef struct gk_cidrs gk_cidrs;

int policy_cidrs_new(gk_cidrs **out) GK_WUR;
void policy_cidrs_free(gk_cidrs *c);
/* Adds one CIDR; duplicates and overlaps are fine. */
int policy_cidrs_add(gk_cidrs *c, gk_slice cidr) GK_WUR;
/*
 * Adds every item of a comma/space/newline separated list. On a bad item
 * returns GK_ERR_INVALID and writes "bad CIDR 'x'" into err.
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
 * host) or domain suffixes written ".example.com", which match any origin
 * whose host ends with that suffix on a dot boundary (a.example.com, not
 * badexample.com, not example.com itself), any scheme and port. "*" allows
 * every origin.
 */
typedef struct gk_origins gk_origins;

int policy_origins_new(const char *list, gk_origins **out, char *err,
    size_t errlen) GK_WUR;
void policy_origins_free(gk_origins *o);
/* 1 if the Origin header value is allowed. "null" is never allowed. */
int policy_origins_allowed(const gk_origins *o, gk_slice origin);
size_t policy_origins_count(const gk_origins *o);

/* The v1 ACL: built from the config, immutable once built. */
typedef struct gk_policy gk_policy;

struct gk_config;
int policy_new(const struct gk_config *cfg, gk_policy **out, char *err,
    size_t errlen) GK_WUR;
void policy_free(gk_policy *p);

/*
 * IP lists: deny wins; an address outside the allow list is denied.
 * Uploads skip the IP lists when the config exempts them.
 * Returns 0 (allowed) or GK_ERR_DENIED.
 */
int policy_check_ip(const gk_policy *p, const gk_addr *a, int is_upload);
/*
 * Origin: origin is the Origin header (present = 0 when absent). An absent
 * origin is refused unless the config allows it. Returns 0 or GK_ERR_DENIED.
 */
int policy_check_origin(const gk_policy *p, gk_slice origin, int present);
/* Admin CIDRs (for /healthz, /metrics, /admin). 0 or GK_ERR_DENIED. */
int policy_check_admin(const gk_policy *p, const gk_addr *a);

#endif
