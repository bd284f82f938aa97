/* gate_int.h - private to the gate folder. */
#ifndef GK_GATE_INT_H
#define GK_GATE_INT_H

#include "gate.h"

/*
 * Static pages (/gatekeeper.js always; /demo and /demo/sign in demo
 * mode). Returns 1 if it answered the path (rep filled, not audited),
 * 0 if the path is not one of them.
 */
int gate_static_handle(gk_app *app, const gk_req *req, gk_reply *rep);
/* The browser client (assets.c): /gatekeeper.js, /gatekeeper.classic.js,
 * /gatekeeper.d.ts. Same contract as gate_static_handle. */
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
/* After a reply is decided: a denial costs a token of the denied bucket;
 * a forwarded header ignored from an untrusted peer is noted in the
 * audit message. */
void gate_policy_finish(gk_app *app, const gk_req *req, gk_reply *rep);
/*
 * The admin gate: the client in the admin CIDRs (else 403) with
 * "Authorization: Bearer <admin token>", compared in constant time (else
 * 401). Returns 1 when allowed; otherwise fills rep and returns 0.
 */
int gate_admin_allowed(gk_app *app, const gk_req *req, gk_reply *rep);
/* POST /admin/reload: 1 if it answered the path. */
int gate_admin_reload(gk_app *app, const gk_req *req, gk_reply *rep);

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
 * when not NULL as gate_read_url. *exp gets its expiry.
 */
int gate_upload_form(gk_app *app, gk_slice key, const char *cip,
    gk_buf *out, int64_t *exp);
/* 1 if the client lies in cip (an address or CIDR), 0 if not, -1 if cip
 * is malformed. */
int gate_cip_match(const char *cip, const gk_addr *client);

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
 * Protocol v2 (v2.c): every path under /v2/. Always fills rep; the
 * caller finishes it (gate_reply_finish).
 */
void gate_v2_handle(gk_app *app, const gk_req *req, gk_reply *rep);
/*
 * PUT /v2/objects/{key} with the object as the body (stores that take a
 * body: fs, s3 in proxy mode): every v2 check for op "put". Returns 0 and
 * the decoded key in *key (caller frees), or -1 with the refusal in rep.
 */
int gate_v2_put_authorize(gk_app *app, const gk_req *req, gk_reply *rep,
    char **key);

/*
 * The customer's console (console.c): /admin/ (the page, its script and
 * style), /admin/api/... (login, logout, session, tail, stats,
 * integrity, verify, policy, policy tester). Returns 1 if it answered
 * the path.
 */
typedef struct gate_console gate_console;
int gate_console_new(gk_app *app, gate_console **out) GK_WUR;
void gate_console_free(gate_console *c);
int gate_console_handle(gk_app *app, const gk_req *req, gk_reply *rep);
/* 1 if the request carries a live console session cookie (and, for a
 * method other than GET/HEAD, its CSRF token and no foreign Origin). */
int gate_console_session_ok(gate_console *c, const gk_req *req);
/* After a reload built a new policy from cfg: the effective settings and
 * what changed since the last ones. */
void gate_console_policy_loaded(gate_console *c, const struct gk_config *cfg,
    const gk_policy *p);
/* The admin audit search (admin.c) on parsed query parameters; fills
 * rep with the JSON answer or a 400/503. */
void gate_admin_search(gk_app *app, const gate_params *ps, gk_reply *rep);

/*
 * GET /admin/audit (admin.c). Returns 1 if it answered the path (rep
 * filled and audited as protocol "admin"), 0 otherwise.
 */
int gate_admin_handle(gk_app *app, const gk_req *req, gk_reply *rep);

#endif
