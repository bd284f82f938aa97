/*
 * console_int.h - private to the console's files:
 *   console.c            the page and its assets, login/logout/session,
 *                        the API's routing, the console's lifetime
 *   console_stats.c      the charts' JSON (requests over time, top
 *                        addresses and countries, denials by reason)
 *   console_integrity.c  the chain's status and "verify now" (a job on
 *                        its own thread that the page polls)
 *   console_policy.c     the effective settings, the last reload's
 *                        changes, the "would this be allowed?" tester
 *   console_grants.c     the S3 endpoint's grants: list, create, revoke
 * The admin gate and the sessions are below, in admin_gate.c.
 */
#ifndef GK_GATE_CONSOLE_INT_H
#define GK_GATE_CONSOLE_INT_H

#include "gate_int.h"

#include <pthread.h>

#include "grant/grant.h"

#define CONSOLE_SNAP_MAX 32

struct console_setting {
	char *name;
	char *value;
};

struct gate_console {
	gk_app *app;
	pthread_mutex_t lock;
	/* effective settings, the previous ones, and when */
	struct console_setting cur[CONSOLE_SNAP_MAX], prev[CONSOLE_SNAP_MAX];
	size_t ncur, nprev;
	char summary[1200], prev_summary[1200];
	int64_t loaded_us;
	unsigned reloads;
	/* verification: the last result as JSON, the job running */
	char *last_verify;
	pthread_t verify_thread;
	int verify_started;	/* a thread to join */
	int verify_running;
	uint64_t verify_job;	/* the number of the last job started */
	char verify_since[40];	/* when the running job started */
};

/* console_reply.c: labels the reply for the audit record: protocol
 * admin, op, path */
void console_set_op(gk_reply *rep, const char *op, gk_slice path);
/* a 200 JSON answer, audited or not */
void console_ok_json(gk_reply *rep, int audited);
/* the 500 of an allocation that failed */
void console_oom(gk_reply *rep);

/* the API's handlers */
void console_stats(gk_app *app, const gate_params *ps, gk_reply *rep);
void console_integrity(gk_app *app, gk_reply *rep);
void console_verify(gk_app *app, gk_reply *rep);
void console_policy_view(gk_app *app, gk_reply *rep);
void console_policy_test(gk_app *app, const gk_req *req,
    const gate_params *ps, gk_reply *rep);
void console_grants_list(gk_app *app, gk_reply *rep);
void console_grant_create(gk_app *app, const gk_req *req,
    const gate_params *ps, gk_reply *rep);
void console_grant_revoke(gk_app *app, const gk_req *req,
    const gate_params *ps, gk_reply *rep);

/* console_grants.c: the grant that POST /admin/api/grants's parameters
 * describe (name, prefix, ops, expires, ip as a comma list, rate),
 * validated as 'gatekeeper grant create' validates its options: 0, or
 * GK_ERR_INVALID with *why a static "Bad Request: ..." naming the field.
 * The CIDRs themselves and the prefix are checked by grant_create. */
int console_grant_parse(const gate_params *ps, gk_grant *g,
    const char **why) GK_WUR;

/* console_policy.c: the settings of the lifetime */
void console_settings_clear(struct console_setting *s, size_t *n);
/* console_integrity.c: waits for a running verification */
void console_verify_join(gate_console *c);

#endif
