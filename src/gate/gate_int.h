/* gate_int.h - private to the gate folder. */
#ifndef GK_GATE_INT_H
#define GK_GATE_INT_H

#include "gate.h"
#include "store/store.h"

/* ---- routes (route.c): the table and its handlers -------------------- */

/*
 * A route handler: fills rep for req (always; never fails). rest is the
 * part of the path the route's pattern leaves open (under /_data/: the
 * encoded key; "/{}": the segment), empty otherwise. The router labels
 * the reply, rate limits and finishes it (gate_reply_finish).
 */
#define GATE_HANDLER(name)						\
	void name(gk_app *app, const gk_req *req, gk_slice rest,	\
	    gk_reply *rep)

struct gate_route;
typedef struct gate_upload gate_upload;

/*
 * Routes a request that has just begun. A body route (an upload) is rate
 * limited and started now: *up is its upload, or NULL with the refusal in
 * rep. Never returns NULL.
 */
const struct gate_route *gate_route_begin(gk_app *app, const gk_req *req,
    gate_upload **up, gk_reply *rep);
/* 1 for a body route (an upload). */
int gate_route_has_body(const struct gate_route *rt);
/* End of the body: runs the route's handler (or ends the upload) and
 * finishes the reply. */
void gate_route_end(gk_app *app, const struct gate_route *rt,
    const gk_req *req, gate_upload *up, gk_reply *rep);
/* 1 when rt's handler may wait on the store's network (a remote store):
 * gate_route_end then runs on a gate worker, not the HTTP thread. */
int gate_route_defers(const gk_app *app, const struct gate_route *rt);

/* static files (demo.c): not decisions, not audited */
GATE_HANDLER(gate_static_favicon);
GATE_HANDLER(gate_static_robots);
GATE_HANDLER(gate_static_assets);	/* the browser client (assets.c) */
GATE_HANDLER(gate_static_demo);
/* /demo/sign (demo mode, admin addresses): a signed v1 URL */
GATE_HANDLER(gate_demo_sign);
/* v1: /{root}?path=&operation=&expires=&hmac= */
GATE_HANDLER(gate_v1_handle);
/* data URLs: /_data/{key}?exp=&sig=, the object streamed after the grant */
GATE_HANDLER(gate_data_handle);
/* protocol v2 (v2.c): every path under /v2/ but the PUT body uploads */
GATE_HANDLER(gate_v2_handle);
/* admin: /admin/reload, /admin/audit (audited), /healthz, /metrics (not) */
GATE_HANDLER(gate_admin_reload);
GATE_HANDLER(gate_admin_reload_405);
GATE_HANDLER(gate_admin_audit);
GATE_HANDLER(gate_admin_audit_405);
GATE_HANDLER(gate_admin_health);
GATE_HANDLER(gate_admin_metrics);

/* ---- uploads (upload.c) ----------------------------------------------- */

/*
 * Request bodies that become objects: POST /_upload (multipart with the
 * fields the v1 PUT_Object answer gave, the file part last; the policy is
 * verified before the first file byte is written) and PUT /v2/objects/{key}
 * (the raw body). The object becomes visible only in gate_upload_commit,
 * after its audit record is durable. begin: on a refusal *out is NULL
 * and rep holds the answer.
 */
void gate_upload_form_begin(gk_app *app, const gk_req *req,
    gate_upload **out, gk_reply *rep);
void gate_upload_put_begin(gk_app *app, const gk_req *req,
    gate_upload **out, gk_reply *rep);
/* Every request to the S3 endpoint (route.c's R_S3 rows): s3api.c's
 * protocol below, run as an upload (its writes after their audit record). */
void gate_upload_s3_begin(gk_app *app, const gk_req *req,
    gate_upload **out, gk_reply *rep);
/* Feeds body bytes; after the first failure it discards the rest. */
void gate_upload_feed(gate_upload *u, const uint8_t *p, size_t len);
/* 1 once the upload is refused (a malformed form, a bad policy, over the
 * size limit, ...): the rest of the body cannot change the answer, so it
 * is answered at once and no more of it is read. */
int gate_upload_refused(const gate_upload *u);
/* The store writer the body goes into (NULL: none, or not yet). */
gk_store_writer *gate_upload_writer(const gate_upload *u);
/* End of body: fills rep with the decision (grant or refusal) and
 * finishes it. */
void gate_upload_end(gate_upload *u, gk_reply *rep);
/* The connection ended before the body did (the client went away or was
 * too slow): refuses the upload, so that gate_upload_end records why and
 * nothing is stored. */
void gate_upload_abandon(gate_upload *u);
/* After the audit committed a grant: makes the object visible. On a
 * failure rep becomes a 500 (502/504 for the bucket). */
void gate_upload_commit(gate_upload *u, gk_reply *rep);
/* Stops the commit threads (exchange.c) after they have done what is
 * queued; at gate_app_close, before the audit closes. */
void gate_workers_stop(gk_app *app);
void gate_upload_free(gate_upload *u);

/*
 * Fills the policy-dependent parts of a request: takes a reference to the
 * policy in force, chooses the client address from the TCP peer and,
 * behind a trusted proxy, the forwarded header values (each header's
 * lines joined by ", "), and looks up the country. The exchange drops
 * req->policy with policy_free at the end.
 */
void gate_req_resolve(gk_app *app, gk_req *req, const gk_addr *peer,
    gk_slice xff, int has_xff, gk_slice fwd, int has_fwd);
/* The browser client (assets.c): /gatekeeper.js, /gatekeeper.classic.js,
 * /gatekeeper.d.ts, /gatekeeper.json. 1 if it answered the path (not
 * audited). */
int gate_assets_handle(gk_app *app, const gk_req *req, gk_reply *rep);

/*
 * The ACL for op (GK_OP_*): IP lists (uploads exempt when configured),
 * then the country. On a refusal fills rep with 403 "Forbidden: ACL"
 * (the audit message says which check) and returns GK_ERR_DENIED.
 */
int gate_acl_check(const gk_req *req, int op, int is_upload, gk_reply *rep);
/* The same check for the upload endpoint: 0 or GK_ERR_DENIED. */
int gate_acl_ok(const gk_req *req, int op, int is_upload);
/*
 * Rate limits at the start of a request: 1 if it answered 429 (rep
 * filled, audited), 0 to go on.
 */
int gate_rate_limit(gk_app *app, const gk_req *req, gk_reply *rep);
/*
 * The admin gate (admin_gate.c): the client in the admin CIDRs (else 403)
 * with "Authorization: Bearer <admin token>", compared in constant time,
 * or a live console session (for a method other than GET/HEAD with its
 * CSRF token in X-CSRF-Token and no foreign Origin); else 401. Returns 1
 * when allowed; otherwise fills rep and returns 0.
 */
int gate_admin_allowed(gk_app *app, const gk_req *req, gk_reply *rep);
/* The console's sessions (admin_gate.c), app->sessions. */
#define GATE_SESSION_HEX 64
#define GATE_SESSION_COOKIE "gk_console"
typedef struct gate_sessions gate_sessions;
int gate_sessions_new(gate_sessions **out) GK_WUR;
void gate_sessions_free(gate_sessions *ss);
/* A new session: its id (the cookie's value) and CSRF token. The least
 * recently used session goes when all slots are taken. */
int gate_sessions_open(gate_sessions *ss, char id[GATE_SESSION_HEX + 1],
    char csrf[GATE_SESSION_HEX + 1]) GK_WUR;
/* Ends the session the request's cookie names, if any. */
void gate_sessions_close(gate_sessions *ss, const gk_req *req);
/* The CSRF token of the request's session: 1, or 0 and "" without one. */
int gate_sessions_csrf(gate_sessions *ss, const gk_req *req,
    char csrf[GATE_SESSION_HEX + 1]);
/* 1 when the request has no Origin, our own (public_url's origin), or
 * the browser marks it same-origin. */
int gate_origin_is_ours(const gk_app *app, const gk_req *req);
/* 1 for GET and HEAD. */
int gate_is_read(const gk_req *req);

/*
 * The URL that grants a read of key, appended to url: a presigned bucket
 * URL (s3 in redirect mode) or the gatekeeper's own /_data URL, bound to
 * the client address or CIDR cip when not NULL (a v2 token's 'cip'; S3's
 * presigned URLs cannot carry it). *exp gets its expiry (unix seconds).
 * Store errors as store_presign_get.
 */
int gate_read_url(gk_app *app, gk_slice key, const char *cip, gk_buf *url,
    int64_t *exp);
/*
 * The browser upload form for exactly key, appended to out as a JSON
 * object {"url": ..., "fields": {...}}: a presigned S3 POST (redirect
 * mode) or a signed policy for the gatekeeper's /_upload, bound to cip
 * when not NULL as gate_read_url. *exp gets its expiry. once: the grant
 * is single use (a v2 token with 'jti'), so is the form: /_upload takes
 * one complete upload with it (the policy's "x-gk-once" id, recorded in
 * the replay cache). A presigned S3 POST cannot be limited so: the bucket
 * takes it until it expires.
 */
#define GATE_ONCE_LEN 16	/* random bytes of a single-use form's id */
int gate_upload_form(gk_app *app, gk_slice key, const char *cip, int once,
    gk_buf *out, int64_t *exp);
/* 1 if the client lies in cip (an address or CIDR), 0 if not, -1 if cip
 * is malformed. */
int gate_cip_match(const char *cip, const gk_addr *client);

/* The reply's message for the audit record (kept on out of memory). */
void gate_reply_message(gk_reply *rep, const char *msg);
/* Appends note to the reply's audit message (kept on out of memory). */
void gate_reply_message_append(gk_reply *rep, const char *note);
/* A grant (status and body set by the caller): decision "allow", msg
 * for the audit record; rendered only once the record is durable. */
void gate_reply_allow(gk_reply *rep, const char *msg);
/* A refusal: gate_reply_error with decision "deny". */
void gate_deny(gk_reply *rep, int status, const char *msg);

/* A bounded, NUL-free heap copy of untrusted text for the audit record
 * (NULL on allocation failure). */
char *gate_text_copy(gk_slice s, size_t max);
/*
 * The origin a request is judged by: the Origin header, or for a
 * same-origin browser request (no Origin, Sec-Fetch-Site: same-origin) our
 * own public URL. Returns 0 when there is none.
 */
int gate_effective_origin(const gk_app *app, const gk_req *req,
    gk_slice *origin);
/*
 * The 403 message for a refused origin: "Forbidden: bad origin" when there
 * was one, else a message saying there was none (and, for a URL a browser
 * opened directly, Sec-Fetch-Site: none, that this is why).
 */
const char *gate_origin_refusal(const gk_req *req, int has_origin);

/*
 * Turns a failed store call into the reply: 404 for a missing object, 400
 * for a key the bucket cannot take, 502/504 naming the bucket's error,
 * else 500.
 */
void gate_store_failed(gk_reply *rep, int r);

/*
 * Checkpoints to the bucket (cpship.c): with [audit] checkpoint_prefix set
 * (s3 store only), puts every signed checkpoint to
 * <prefix>/<instance>/<seq>.json from its own thread. *out is NULL when
 * off. Stop after audit_close (the last checkpoint is then queued):
 * drains the queue, joins.
 */
typedef struct gate_cpship gate_cpship;
int gate_cpship_start(gk_app *app, gate_cpship **out);
void gate_cpship_stop(gate_cpship *s);

/*
 * Repeated 429s of one client (refusals.c): the first of an interval
 * ([audit] aggregate_seconds) has its own record, the rest are counted
 * and summed up in one record when the interval ends (gate_refusals_flush
 * with all = 0, from gate_tick) or the client's slot is taken (at once).
 * *out is NULL when interval_s is 0 (off).
 */
typedef struct gate_refusals gate_refusals;
int gate_refusals_new(unsigned interval_s, gate_refusals **out);
void gate_refusals_free(gate_refusals *t);
/* 1 when this 429 is counted into its client's summary (no own record),
 * 0 when it gets its own record. */
int gate_refusals_absorb(gk_app *app, const gk_req *req);
/* Writes the summaries of ended intervals, or of all with all = 1. */
void gate_refusals_flush(gk_app *app, int all);

/*
 * PUT /v2/objects/{key} with the object as the body (stores that take a
 * body: fs, s3 in proxy mode): every v2 check for op "put". Returns 0 and
 * the decoded key in *key (caller frees), or -1 with the refusal in rep.
 */
int gate_v2_put_authorize(gk_app *app, const gk_req *req, gk_reply *rep,
    char **key);

/*
 * The customer's console (console*.c): /admin/ (the page, its script and
 * style), /admin/api/... (login, logout, session, tail, stats,
 * integrity, verify, policy, policy tester, grants). Returns 1 if it
 * answered the path.
 */
typedef struct gate_console gate_console;
int gate_console_new(gk_app *app, gate_console **out) GK_WUR;
/* Waits for a verification still running (before the audit closes: its
 * outcome is a record). */
void gate_console_stop(gate_console *c);
void gate_console_free(gate_console *c);
int gate_console_handle(gk_app *app, const gk_req *req, gk_reply *rep);
/* the console's paths as a route (its handler answers them all) */
GATE_HANDLER(gate_console_route);
/* After a policy was built from ps (at start, on a reload): the
 * effective settings and what changed since the last ones. */
void gate_console_policy_loaded(gate_console *c, const policy_settings *ps,
    const gk_policy *p);
/* The admin audit search (admin_search.c) on parsed query parameters;
 * fills rep with the JSON answer or a 400/503. */
void gate_admin_search(gk_app *app, const gate_params *ps, gk_reply *rep);

/*
 * The S3-compatible endpoint (s3api*.c). match: 1 when the
 * request is for it ([s3api] enabled and it came to the s3api port or to
 * the s3api host or a subdomain of it). The rest is the upload protocol
 * above: begin always gives a state (or answers in rep), feed takes
 * the body, end decides (rep), commit performs a write after its audit
 * record is durable.
 */
typedef struct gate_s3 gate_s3;
int gate_s3api_match(const gk_app *app, const gk_req *req);
void gate_s3api_begin(gk_app *app, const gk_req *req, gate_s3 **out,
    gk_reply *rep);
void gate_s3api_feed(gate_s3 *s, const uint8_t *p, size_t len);
/* The store writer of its write (NULL: none). */
gk_store_writer *gate_s3api_writer(const gate_s3 *s);
/* 1 once the request is refused: the rest of its body is not needed
 * (refused at its head, it is answered at once and its body not read). */
int gate_s3api_refused(const gate_s3 *s);
/* The body ended early (gate_upload_abandon): 400 IncompleteBody. */
void gate_s3api_abandon(gate_s3 *s);
void gate_s3api_end(gate_s3 *s, gk_reply *rep);
void gate_s3api_commit(gate_s3 *s, gk_reply *rep);
void gate_s3api_free(gate_s3 *s);

#endif
