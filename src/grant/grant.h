/*
 * grant.h - the grant folder's whole interface: scoped, revocable
 * credentials for the S3-compatible endpoint.
 *
 * A grant is one key prefix, a set of operations, an optional expiry,
 * optional client CIDRs and a request rate, and one access key id and
 * secret (SigV4). Grants are kept in the audit database (audit_grants_*),
 * so every instance sharing a PostgreSQL database sees the same grants and
 * a revocation holds on each at its next request (no cache). The secret is
 * stored encrypted: AES-256-GCM under the gatekeeper's grant key
 * ([s3api] key_file), a random 96-bit nonce per encryption, the grant id
 * and access key id as associated data, so a secret copied onto another
 * grant's row does not decrypt. A secret is never logged; it is shown
 * once, by create and rotate.
 */
#ifndef GK_GRANT_H
#define GK_GRANT_H

#include <stdint.h>

#include "util/util.h"

/* What the grants take from the config; config/ fills it
 * (cfg_grant_settings). */
typedef struct grant_settings {
	const char *audit_target;	/* the audit database holds them */
	gk_secret key;			/* AES-256-GCM key of the secrets */
	const char *key_file;		/* its file, for error messages */
} grant_settings;

/* Operations (bit set). */
#define GRANT_OP_GET 1u		/* GetObject, HeadObject */
#define GRANT_OP_LIST 2u	/* ListObjects(V2), ListParts, ... */
#define GRANT_OP_PUT 4u		/* PutObject, multipart, CopyObject dest */
#define GRANT_OP_DELETE 8u	/* DeleteObject(s), AbortMultipartUpload */
#define GRANT_OP_ALL 15u

#define GRANT_ID_LEN 14		/* "g-" + 12 hex */
#define GRANT_AKID_LEN 20	/* "GK" + 18 of A-Z2-7 */
#define GRANT_SECRET_LEN 40	/* base64 alphabet, as AWS's */
#define GRANT_NAME_MAX 128
#define GRANT_PREFIX_MAX 1024
/* The S3 endpoint keeps multipart uploads in progress under this prefix:
 * no client key starts with it, so no grant may be made for it. */
#define GRANT_RESERVED_PREFIX ".gatekeeper-mpu/"
#define GRANT_IPS_MAX 16	/* --ip CIDRs */
#define GRANT_CIDR_MAX 64

typedef struct {
	char id[GRANT_ID_LEN + 1];
	char name[GRANT_NAME_MAX + 1];
	char prefix[GRANT_PREFIX_MAX + 1]; /* "" = the whole bucket */
	unsigned ops;			/* GRANT_OP_* */
	int64_t created_s;
	int64_t expires_s;		/* 0: never */
	int64_t revoked_s;		/* 0: not revoked */
	int64_t rotated_s;		/* 0: never rotated */
	char ips[GRANT_IPS_MAX][GRANT_CIDR_MAX + 1];
	size_t n_ips;			/* 0: any address the policy allows */
	unsigned rate;			/* requests per second, 0: no own limit */
	char access_key[GRANT_AKID_LEN + 1];
	char secret[GRANT_SECRET_LEN + 1]; /* filled only where said */
} gk_grant;

typedef struct gk_grants gk_grants;

/*
 * Opens the grants of the audit database the config names, with
 * cfg->grant_key (GK_ERR_CONFIG with err "... run 'gatekeeper keygen'"
 * when there is none). GK_ERR_UNAVAILABLE when a SQLite file cannot be
 * opened (a PostgreSQL server that is down is retried per call).
 */
int grant_open(const grant_settings *s, gk_grants **out, char *err,
    size_t errlen) GK_WUR;
/* Wipes the key; NULL ok. */
void grant_close(gk_grants *gs);

/* How a caller names the fields in grant_create's errors: the CLI's
 * options, or the labels of the console's form. */
typedef struct {
	const char *name, *prefix, *ops, *ip;
} grant_field_names;
/* --name, --prefix, --ops, --ip */
extern const grant_field_names grant_cli_fields;

/*
 * Creates a grant from g's name, prefix, ops, expires_s, ips, n_ips and
 * rate (validated: name 1..128 printable, prefix "" or a valid key prefix
 * outside GRANT_RESERVED_PREFIX, ops not empty, CIDRs that parse); fills id, access_key, secret and
 * created_s. GK_ERR_INVALID (err says which field, named as in f),
 * GK_ERR_UNAVAILABLE.
 */
int grant_create(gk_grants *gs, gk_grant *g, const grant_field_names *f,
    char *err, size_t errlen) GK_WUR;
/* By id, without the secret: 0, GK_ERR_NOT_FOUND, GK_ERR_UNAVAILABLE,
 * GK_ERR_INTEGRITY (a stored document that does not parse). */
int grant_get(gk_grants *gs, const char *id, gk_grant *out) GK_WUR;
/* By access key id, with the secret decrypted (wipe it after use): 0,
 * GK_ERR_NOT_FOUND, GK_ERR_UNAVAILABLE, GK_ERR_INTEGRITY (a stored
 * document that does not parse), GK_ERR_AUTH (the secret does not decrypt
 * with the current grant key, e.g. after grant.key changed: out holds the
 * grant without its secret, and only rotating it helps). Expiry and
 * revocation are the caller's to check. */
int grant_by_key(gk_grants *gs, const char *access_key, gk_grant *out)
    GK_WUR;
/* Marks revoked now; out is the grant as stored afterwards (no secret).
 * GK_ERR_DENIED when it was revoked already (nothing is written);
 * GK_ERR_NOT_FOUND, GK_ERR_UNAVAILABLE, GK_ERR_INTEGRITY. Works without
 * decrypting the secret, so a grant the current key cannot open can be
 * revoked. */
int grant_revoke(gk_grants *gs, const char *id, gk_grant *out) GK_WUR;
/* A new access key id and secret (the old pair stops working at once);
 * out has the new secret. GK_ERR_DENIED for a revoked grant. */
int grant_rotate(gk_grants *gs, const char *id, gk_grant *out) GK_WUR;
/* Every grant (no secrets), ordered by id; fn's non-zero return stops. */
int grant_list(gk_grants *gs, int (*fn)(void *arg, const gk_grant *g),
    void *arg) GK_WUR;
/* Calls fn (no secret) for each grant neither revoked nor expired whose
 * secret does not decrypt with the current grant key: requests with it
 * are refused until it is rotated. fn's non-zero return stops. 0, or
 * GK_ERR_UNAVAILABLE / GK_ERR_INTEGRITY as grant_list. */
int grant_unusable(gk_grants *gs, int (*fn)(void *arg, const gk_grant *g),
    void *arg) GK_WUR;
/* The last failure's one-line cause (database message), per thread. */
const char *grant_error(void);

/* "get,list,put,delete" (any order, no repeats) to bits; GK_ERR_INVALID. */
int grant_ops_parse(const char *s, unsigned *ops) GK_WUR;
/* Bits to "get,list,put,delete" order (out >= 24 bytes). */
void grant_ops_str(unsigned ops, char *out, size_t outlen);
/* "90d", "12h", "30m", "45s" or plain seconds to seconds (at most 100
 * years); GK_ERR_INVALID. */
int grant_duration_parse(const char *s, int64_t *secs) GK_WUR;
/* 1 if key (decoded) lies under the grant's prefix. */
int grant_covers(const gk_grant *g, gk_slice key);
/* Appends g as a JSON object (no secret) to b. */
int grant_json(const gk_grant *g, gk_buf *b) GK_WUR;

#endif
