/*
 * gate.h - the gate folder's whole interface: the application (config,
 * policy, keys, audit, store held together), the request as the HTTP layer
 * hands it over, the reply the gate decides, and the pipeline:
 *
 *   extract (v1 query, data URL, upload form) -> verify (signature,
 *   lifetime) -> policy (origin, IP lists) -> reply + audit record.
 *
 * The HTTP layer commits the audit record before it sends any reply that
 * grants something (reply.grant), and answers 503 instead if the record
 * cannot be written. Nothing here knows about libmicrohttpd.
 */
#ifndef GK_GATE_H
#define GK_GATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "audit/audit.h"
#include "policy/policy.h"
#include "util/util.h"

struct gk_config;
struct gk_store;
struct gk_store_reader;
struct gk_mac;
struct gk_keyring;

/* Counters for /metrics: indexes into gk_stats.n, bumped with gate_count. */
enum {
	GK_STAT_REQUESTS,
	GK_STAT_GRANTED,
	GK_STAT_DENIED,
	GK_STAT_ERRORS,
	GK_STAT_AUDIT_FAILURES,
	GK_STAT_RATE_LIMITED,
	GK_STAT_RELOADS,
	GK_STAT_RELOAD_FAILURES,
	GK_STAT_AGGREGATED,	/* 429s counted into a summary record */
	GK_STAT_MAX
};

typedef struct {
	_Atomic uint64_t n[GK_STAT_MAX];
} gk_stats;

typedef struct gk_app {
	struct gk_config *cfg;
	struct gk_mac *v1_mac;		/* shared v1 secret */
	struct gk_mac *internal_mac;	/* data URLs, upload policies */
	gk_audit *audit;
	struct gk_store *store;
	gk_stats stats;
	int64_t started_us;
	/* issue 5: the policy in force (swapped by reloads; a request uses
	 * req->policy, never this directly) and the rate limit table */
	gk_policy_live *policy_live;
	gk_rate *rate;
	struct gk_keyring *keyring;	/* v2 vendor keys */
	struct gate_cpship *cpship;	/* checkpoints to the bucket, or NULL */
	audit_out *audit_out;		/* records to the SIEM, or NULL */
	struct gate_console *console;	/* /admin/ sessions and state */
	struct gate_refusals *refusals;	/* 429s summed up per client, or NULL */
} gk_app;

/*
 * Builds everything the config names (policy, keys, store, audit writer).
 * Takes ownership of cfg. On failure writes one line into err.
 */
int gate_app_open(struct gk_config *cfg, gk_app **out, char *err,
    size_t errlen) GK_WUR;
void gate_app_close(gk_app *app);
/* Once a second from the main thread: writes the summary records of
 * refusal intervals that ended. */
void gate_tick(gk_app *app);

/* What the HTTP layer saw. Slices point into connection memory. */
typedef struct {
	const char *method;	/* "GET", "HEAD", "POST", ... */
	gk_slice path;		/* raw (still percent-encoded) path */
	gk_slice query;		/* raw query string, without '?' */
	int has_origin;
	gk_slice origin;
	int has_sec_fetch_site;
	gk_slice sec_fetch_site;
	gk_slice user_agent;
	gk_slice range;		/* Range header, empty if absent */
	gk_slice accept;
	gk_slice content_type;
	int has_content_length;
	gk_slice content_length;	/* as sent, unparsed */
	gk_slice authorization;
	gk_slice cookie;	/* Cookie header (the console's session) */
	gk_slice csrf;		/* X-CSRF-Token header */
	gk_addr client;
	char client_ip[GK_ADDR_STRLEN];
	char request_id[GK_REQID_LEN + 1];
	int64_t start_us;	/* wall clock */
	int64_t start_mono_us;
	/* issue 5: the policy this request is judged by (a reference the
	 * HTTP layer takes at the start and drops at the end), the TCP peer
	 * (client differs behind a trusted proxy), how the client address
	 * was chosen (GK_FWD_*) and its country ("" if unknown or geo off) */
	gk_policy *policy;
	gk_addr peer;
	int fwd;
	char country[3];
} gk_req;

/* The decision. The HTTP layer renders it. */
typedef struct {
	int status;
	const char *content_type;	/* static string */
	gk_buf body;
	char *location;			/* Location header, or NULL */
	char *acao;			/* Access-Control-Allow-Origin: the
					 * allowed origin, or NULL (none) */
	const char *allow;		/* Allow header for 405, static */
	int grant;			/* 1: send only after audit commit */
	int audited;			/* 0: no audit record (preflight, ...) */
	/* streaming an object (status 200/206): */
	struct gk_store_reader *reader;
	uint64_t off, len, total;
	int64_t mtime;
	char *content_range;		/* 206 and 416 */
	/* audit fields */
	const char *protocol;
	char *operation;
	char *root;
	char *path;
	const char *decision;
	char *message;
	uint64_t bytes;
	unsigned retry_after;		/* 429: Retry-After seconds */
	char *set_cookie;		/* Set-Cookie value, or NULL */
	const char *csp;		/* Content-Security-Policy (static);
					 * also sends X-Frame-Options: DENY
					 * and Referrer-Policy: no-referrer */
	/* v2 audit fields (owned) */
	char *kid;
	char *sub;
	char *jti;
	char *token_sig;
} gk_reply;

void gate_reply_init(gk_reply *rep);
/* Frees everything the reply owns (closes a reader still attached). */
void gate_reply_release(gk_reply *rep);
/*
 * Replaces the reply by a JSON error {"msg": msg, "error": true} with the
 * given status and decision ("deny" or "error"). Keeps audit fields.
 */
void gate_reply_error(gk_reply *rep, int status, const char *decision,
    const char *msg);

/*
 * Last touches every reply gets: the Access-Control-Allow-Origin value
 * (the request's origin when allowed, else none),
 * the decision when unset, and the /metrics counters.
 */
void gate_reply_finish(gk_app *app, const gk_req *req, gk_reply *rep);
/* Adds one to a /metrics counter (GK_STAT_*). */
void gate_count(gk_app *app, int stat);

/* Fills an audit record from request and reply (strings borrowed). */
void gate_audit_record(const gk_req *req, const gk_reply *rep,
    gk_audit_record *rec);

/*
 * Handles a request without a body (GET/HEAD/other methods on every
 * route but the upload endpoint). Always fills rep (never fails).
 */
void gate_handle(gk_app *app, const gk_req *req, gk_reply *rep);

/*
 * Fills the policy-dependent parts of a request the HTTP layer has
 * started: takes a reference to the policy in force, chooses the client
 * address from the TCP peer and, behind a trusted proxy, the forwarded
 * header values (each header's lines joined by ", "), and looks up the
 * country. The HTTP layer drops req->policy with policy_free at the end.
 */
void gate_req_resolve(gk_app *app, gk_req *req, const gk_addr *peer,
    gk_slice xff, int has_xff, gk_slice fwd, int has_fwd);

/*
 * Live reload: re-reads the config file and every list file, builds and
 * validates a new policy and swaps it in (requests in flight keep theirs).
 * On any problem the old policy stays and msg says why in one line. The
 * reload is audited (protocol "admin", operation "reload") with by as the
 * client ("SIGHUP" or an address); the settings outside the policy (port,
 * store, keys, [rate] table_size) need a restart. Returns 0 or an error.
 */
int gate_app_reload(gk_app *app, const char *by, char *msg, size_t msglen);

/* 1 if the request's body becomes an object: the upload endpoint
 * (POST /_upload) or v2's PUT /v2/objects/{key}. */
int gate_is_upload(const gk_req *req);

/*
 * The upload endpoint: POST /_upload, multipart/form-data with the
 * fields the v1 PUT_Object answer gave, the file part last. The policy is
 * verified before the first file byte is written; the object becomes
 * visible only in gate_upload_commit, after the audit record is durable.
 */
typedef struct gate_upload gate_upload;

/* Starts; on a refusal *out is NULL and rep holds the answer. */
void gate_upload_begin(gk_app *app, const gk_req *req, gate_upload **out,
    gk_reply *rep);
/* Feeds body bytes; after the first failure it discards the rest. */
void gate_upload_feed(gate_upload *u, const uint8_t *p, size_t len);
/* 1 once the upload is refused (a malformed form, a bad policy, over the
 * size limit, ...): the rest of the body cannot change the answer, so the
 * HTTP layer answers at once and reads no more of it. */
int gate_upload_refused(const gate_upload *u);
/* End of body: fills rep with the decision (grant or refusal). */
void gate_upload_end(gate_upload *u, gk_reply *rep);
/* After the audit committed a grant: makes the object visible. On a
 * failure rep becomes a 500. */
void gate_upload_commit(gate_upload *u, gk_reply *rep);
void gate_upload_free(gate_upload *u);

/* ---- parsers of untrusted input (fuzzed) ----------------------------- */

#define GATE_MAX_PARAMS 16

typedef struct {
	gk_slice name;		/* raw name (decoded) */
	gk_buf value;		/* decoded value */
} gate_param;

typedef struct {
	gate_param p[GATE_MAX_PARAMS];
	size_t n;
} gate_params;

/*
 * Parses an application/x-www-form-urlencoded query ('+' is a space,
 * %XX decoded once). Names are matched literally. Returns 0,
 * GK_ERR_INVALID (malformed escape, NUL) or GK_ERR_EXISTS (a repeated
 * name; *dup names it) or GK_ERR_TOO_LARGE (too many parameters or too
 * long). Release with gate_params_release.
 */
int gate_params_parse(gk_slice query, gate_params *out, gk_slice *dup) GK_WUR;
void gate_params_release(gate_params *ps);
/* The decoded value of name, or NULL if absent. */
const gk_buf *gate_params_get(const gate_params *ps, const char *name);
/* The same as a C string ("" for an empty value; a value holding a NUL
 * never parses), or NULL if absent. */
const char *gate_params_str(const gate_params *ps, const char *name);

/*
 * The value of the cookie called name in a Cookie header ("a=1; b=2"):
 * a slice into h (the first pair with that name), or an empty slice
 * when absent (pairs with an empty value are skipped). Pairs are split
 * at ";" and leading spaces skipped; the value is not decoded.
 */
gk_slice gate_cookie_value(gk_slice h, const char *name);

/*
 * Object key validation: 1..1024 bytes of valid UTF-8, no NUL, control
 * characters or backslash, no empty, "." or ".." segment. A trailing '/'
 * is allowed only when allow_trailing_slash (listing prefixes).
 */
int gate_key_valid(gk_slice key, int allow_trailing_slash);
/* Root segment: [A-Za-z0-9._-]{1,63}, not "." or "..". */
int gate_root_valid(gk_slice root);
/*
 * [gate] v1_roots: v1's HMAC covers root || sub with no separator, so a
 * signature for root "a", folder "bc" also fits root "ab", folder "c".
 * When every listed root is valid and none is a prefix of another, a
 * signed string starts with one listed root only and splits one way.
 * Returns 0, or GK_ERR_CONFIG with one line in err naming the root.
 */
int gate_v1_roots_check(const char *list, char *err, size_t errlen);
/* 1 when root may be asked for: [gate] v1_roots is empty or lists it. */
int gate_v1_root_listed(const struct gk_config *cfg, gk_slice root);

/*
 * Protocol v1's rules for a request's root, path and operation, shared by
 * the server and 'gatekeeper sign v1' so the CLI refuses what the server
 * would. Each returns NULL when the request passes, else the server's
 * message (400). gate_v1_path_shape: GET_Bucket paths begin and end with
 * '/'. gate_v1_key: appends to key the object key (or listing prefix) the
 * request reaches, checked as cfg's validate_keys says.
 */
const char *gate_v1_path_shape(gk_slice op, gk_slice path);
const char *gate_v1_key(const struct gk_config *cfg, gk_slice root,
    gk_slice path, gk_slice op, gk_buf *key);
/* The "sub" the v1 HMAC covers: path.split('/')[1], "undefined" if none. */
gk_slice gate_v1_sub(gk_slice path);

/*
 * Range header ("bytes=a-b", "bytes=a-", "bytes=-n") against an object of
 * size total. Returns 0 with *off and *len set, GK_ERR_NOT_FOUND if the header
 * should be ignored (absent, multiple ranges, other units, malformed), or
 * GK_ERR_RANGE if unsatisfiable.
 */
int gate_range_parse(gk_slice h, uint64_t total, uint64_t *off,
    uint64_t *len) GK_WUR;

#endif
