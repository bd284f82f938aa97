/*
 * gate.h - the gate folder's whole interface: the application (config,
 * policy, keys, audit, store held together), the request as the HTTP layer
 * hands it over, the reply the gate decides, and the pipeline:
 *
 *   extract (v1 query, data URL, upload form) -> verify (signature,
 *   lifetime) -> policy (origin, IP lists) -> reply + audit record.
 *
 * A request's life (exchange.h, exchange.c) commits the audit record
 * before any reply that grants something (reply.grant) is rendered, and
 * answers 503 instead if the record cannot be written. Nothing here knows
 * about libmicrohttpd.
 */
#ifndef GK_GATE_H
#define GK_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "audit/audit.h"
#include "policy/policy.h"
#include "util/util.h"

struct gk_app;
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

/* What the gate takes from the config ([server], [gate], [admin], ...);
 * config/ fills it. Strings and secrets are borrowed from what
 * gate_parts.release frees, so they live as long as the app. */
typedef struct gate_settings {
	const char *id;			/* this gatekeeper's id (v1 bucket) */
	const char *public_url;		/* how browsers reach us */
	int demo;			/* serve /demo and /demo/sign */
	int validate_keys;		/* key/path validation beyond v1's */
	int v1;				/* serve protocol v1 */
	const char *v1_roots;		/* the v1 roots that exist, "": any */
	const char *uploads_prefix;	/* v1 PUT_Object keys */
	uint64_t max_upload_bytes;
	int64_t max_token_lifetime;	/* v1, seconds, 0 = unlimited */
	int64_t data_url_ttl;		/* seconds */
	int64_t s3_presign_ttl;		/* seconds */
	int64_t v2_max_lifetime;	/* seconds */
	int64_t v2_clock_skew;		/* seconds */
	size_t v2_verify_cache;		/* entries per thread, 0 = off */
	unsigned rate_table_size;
	unsigned audit_aggregate_s;	/* 429 summary interval, 0: off */
	const char *checkpoint_prefix;	/* s3: checkpoints put here, "" off */
	unsigned checkpoint_retention_days; /* Object Lock days, 0: none */
	const char *audit_target;	/* searched by GET /admin/audit */
	const char *audit_checkpoint_file;	/* the console's verify */
	const char *audit_pub_file;
	gk_secret v1_key;
	gk_secret internal_key;
	gk_secret admin_token;
	/* [s3api] the S3-compatible endpoint for grants (issue 13) */
	int s3api_enabled;
	unsigned s3api_port;		/* own listener, 0 = none */
	const char *s3api_host;		/* host name on the main port, "" */
	const char *s3api_bucket;	/* the bucket clients see */
	const char *s3api_region;
	uint64_t s3api_max_object_bytes;
} gate_settings;

/*
 * The parts the gate holds, built from the config by config/ (the gate
 * never reads the config itself). gate_app_open takes them over, also on
 * failure.
 */
typedef struct gate_parts {
	gk_policy *policy;
	struct audit_out *audit_out;	/* records to the SIEM, or NULL */
	struct gk_keyring *keyring;
	struct gk_store *store;
	gk_audit *audit;
	struct gk_grants *grants;	/* [s3api] enabled: the grants, else NULL */
	/* rebuilds the policy from the configuration for a live reload
	 * (and tells the app its settings, gate_app_policy_loaded): 0, or
	 * an error with a one-line reason in msg */
	int (*reload)(void *arg, struct gk_app *app, gk_policy **out,
	    char *msg, size_t msglen);
	/* frees what the settings borrow from, at gate_app_close */
	void (*release)(void *arg);
	void *arg;			/* for reload and release */
} gate_parts;

#define GATE_WORKERS 8

typedef struct gk_app {
	gate_settings settings;
	const gate_settings *cfg;	/* &settings */
	gate_parts parts;
	struct gk_mac *v1_mac;		/* shared v1 secret */
	struct gk_mac *internal_mac;	/* data URLs, upload policies */
	gk_audit *audit;
	struct gk_store *store;
	gk_stats stats;
	int64_t started_us;
	/* the policy in force (swapped by reloads; a request uses
	 * req->policy, never this directly) and the rate limit table */
	gk_policy_live *policy_live;
	gk_rate *rate;
	struct gk_keyring *keyring;	/* v2 vendor keys */
	struct gate_cpship *cpship;	/* checkpoints to the bucket, or NULL */
	uint8_t id_prefix[8];		/* request ids: random prefix, */
	_Atomic uint64_t id_counter;	/* then a counter */
	/* exchanges waiting for their audit commit (exchange.c) */
	pthread_mutex_t wait_lock;
	struct gate_ticket *waiting;	/* under wait_lock */
	int stopping;			/* under wait_lock: commits no longer
					 * waited for (shutdown) */
	/* the gate's workers (exchange.c): a few threads of its own that
	 * do what may wait on the store, so that no HTTP thread does:
	 * committing a durable upload grant (its index lock, the bucket)
	 * and, with a remote store, the decisions that call it, the waits
	 * for a transfer's next bytes and freeing an upload */
	pthread_mutex_t work_mu;
	pthread_cond_t work_cv;	/* queued, or quit */
	pthread_cond_t work_idle;	/* work_busy reached 0 */
	struct gate_exchange *work_head, *work_tail;
	pthread_t worker[GATE_WORKERS];
	int workers;			/* started */
	int work_busy;		/* queued or running */
	int work_quit;
	audit_out *audit_out;		/* records to the SIEM, or NULL */
	struct gate_console *console;	/* /admin/ state */
	struct gate_sessions *sessions;	/* the console's sessions */
	struct gate_refusals *refusals;	/* 429s summed up per client, or NULL */
	/* issue 13: the S3 endpoint ([s3api] enabled), else NULL */
	struct gk_grants *grants;
	struct s3_signer *s3api_signer;
} gk_app;

/*
 * Builds the application around its parts (see gate_parts; config/'s
 * cfg_gate_open makes them from a config file). On failure writes one
 * line into err.
 */
int gate_app_open(const gate_settings *s, gate_parts *parts, gk_app **out,
    char *err, size_t errlen) GK_WUR;
void gate_app_close(gk_app *app);
/* The settings a policy was just built from (at start and on a reload),
 * for the console's view of the effective policy and its changes. */
void gate_app_policy_loaded(gk_app *app, const policy_settings *ps,
    const gk_policy *p);
/* Once a second from the main thread: writes the summary records of
 * refusal intervals that ended. */
void gate_tick(gk_app *app);

/* The request as the gate judges it (exchange.c fills it from what the
 * adapter saw). Slices point into the adapter's memory. */
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
	int range_fields;	/* how many Range fields were sent (RFC 9110
				 * allows one: more is refused) */
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
	/* the policy this request is judged by (a reference taken at the
	 * start and dropped at the end), the TCP peer (client differs behind
	 * a trusted proxy), how the client address was chosen (GK_FWD_*) and
	 * its country ("" if unknown or geo off) */
	gk_policy *policy;
	gk_addr peer;
	int fwd;
	char country[3];
	/* for the S3 endpoint: whether the request came to the [s3api]
	 * listener (route.c matches its rows by that or by host); header
	 * looks up any request header by lower-case name, every value joined
	 * by ',' (0, or GK_ERR_NOT_FOUND) */
	int on_s3api_port;
	gk_slice host;
	int (*header)(void *ctx, const char *lname, gk_buf *out);
	void *header_ctx;
} gk_req;

/* The decision, as the adapter renders it (exchange.h). */
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
	/* issue 13: extra response header lines "Name: value\n" (S3's ETag,
	 * x-amz-request-id, ...); cap 0 when none */
	gk_buf headers;
	int no_default_headers;	/* S3 API: no CORS or cache headers */
	/* when set, called exactly once: durable = 1 once the reply's audit
	 * record is durable (gate_settle), 0 when it failed or the reply
	 * ends without one (gate_reply_release); it frees settled_arg. An
	 * action done before its record (a grant made from the console)
	 * undoes itself here when durable is 0. */
	void (*settled)(void *arg, int durable);
	void *settled_arg;
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
 * Live reload: rebuilds the policy (parts.reload: the config file and
 * every list file re-read), validates it and swaps it in (requests in flight keep theirs).
 * On any problem the old policy stays and msg says why in one line. The
 * reload is audited (protocol "admin", operation "reload") with by as the
 * client ("SIGHUP" or an address); the settings outside the policy (port,
 * store, keys, [rate] table_size) need a restart. Returns 0 or an error.
 */
int gate_app_reload(gk_app *app, const char *by, char *msg, size_t msglen);

/* ---- parsers of untrusted input (fuzzed) ----------------------------- */

#define GATE_MAX_PARAMS 16

typedef struct {
	gk_slice name;		/* raw name (decoded) */
	gk_buf value;		/* decoded value (read-only: in the arena) */
} gate_param;

typedef struct {
	gate_param p[GATE_MAX_PARAMS];
	size_t n;
	gk_buf arena;		/* every decoded value, each NUL-terminated */
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
int gate_v1_root_listed(const char *v1_roots, gk_slice root);

/*
 * Protocol v1's rules for a request's root, path and operation, shared by
 * the server and 'gatekeeper sign v1' so the CLI refuses what the server
 * would. Each returns NULL when the request passes, else the server's
 * message (400). gate_v1_path_shape: GET_Bucket paths begin and end with
 * '/'. gate_v1_key: appends to key the object key (or listing prefix) the
 * request reaches ([gate] uploads_prefix for PUT_Object), checked as
 * validate_keys says.
 */
const char *gate_v1_path_shape(gk_slice op, gk_slice path);
const char *gate_v1_key(const char *uploads_prefix, int validate_keys,
    gk_slice root, gk_slice path, gk_slice op, gk_buf *key);
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
