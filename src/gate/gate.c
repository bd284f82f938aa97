/*
 * gate.c - the application: the parts it holds (policy, keys, store,
 * audit writer) for its whole life, the /metrics counters, and live
 * reload (SIGHUP and POST /admin/reload).
 */
#include "gate_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant/grant.h"
#include "s3/s3.h"
#include "store/store.h"
#include "verify/verify.h"

/* ---- the application ------------------------------------------------- */

int
gate_app_open(const gate_settings *gs, gate_parts *parts, gk_app **out,
    char *err, size_t errlen)
{
	gk_app *app;
	int r = GK_ERR_INTERNAL;

	*out = NULL;
	if ((app = calloc(1, sizeof(*app))) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = GK_ERR_NOMEM;
		goto fail;
	}
	pthread_mutex_init(&app->wait_lock, NULL);
	pthread_mutex_init(&app->work_mu, NULL);
	pthread_cond_init(&app->work_cv, NULL);
	pthread_cond_init(&app->work_idle, NULL);
	app->settings = *gs;
	app->cfg = &app->settings;
	app->parts = *parts;
	app->keyring = parts->keyring;
	app->audit_out = parts->audit_out;
	app->store = parts->store;
	app->audit = parts->audit;
	app->grants = parts->grants;
	memset(parts, 0, sizeof(*parts));	/* transferred */
	app->started_us = gk_now_us();
	if (gk_random(app->id_prefix, sizeof(app->id_prefix)) != 0) {
		snprintf(err, errlen, "no randomness for request ids");
		goto out;
	}
	if ((r = policy_live_new(app->parts.policy, &app->policy_live)) != 0 ||
	    (r = policy_rate_new(gs->rate_table_size, &app->rate)) != 0) {
		snprintf(err, errlen, "cannot set up the policy: %s",
		    gk_err_str(r));
		goto out;
	}
	app->parts.policy = NULL;	/* the live policy holds it */
	if ((r = verify_mac_new(gs->v1_key.p, gs->v1_key.len,
	    &app->v1_mac)) != 0 ||
	    (r = verify_mac_new(gs->internal_key.p, gs->internal_key.len,
	    &app->internal_mac)) != 0) {
		snprintf(err, errlen, "cannot set up keys: %s", gk_err_str(r));
		goto out;
	}
	if ((r = gate_v1_roots_check(gs->v1_roots, err, errlen)) != 0)
		goto out;
	if (gs->s3api_enabled && app->grants == NULL) {
		snprintf(err, errlen, "cannot start the S3 endpoint: no grants");
		r = GK_ERR_CONFIG;
		goto out;
	}
	if (gs->s3api_enabled && (r = s3_signer_new(gs->s3api_region, "s3",
	    &app->s3api_signer)) != 0) {
		snprintf(err, errlen, "cannot start the S3 endpoint: %s",
		    gk_err_str(r));
		goto out;
	}
	if ((r = gate_refusals_new(gs->audit_aggregate_s,
	    &app->refusals)) != 0) {
		snprintf(err, errlen, "cannot set up refusal summaries: %s",
		    gk_err_str(r));
		goto out;
	}
	if ((r = gate_sessions_new(&app->sessions)) != 0 ||
	    (r = gate_console_new(app, &app->console)) != 0) {
		snprintf(err, errlen, "cannot set up the console: %s",
		    gk_err_str(r));
		goto out;
	}
	if ((r = gate_cpship_start(app, &app->cpship)) != 0) {
		snprintf(err, errlen, "cannot start putting checkpoints to the "
		    "bucket: %s", gk_err_str(r));
		goto out;
	}
	*out = app;
	return 0;
out:
	gate_app_close(app);
	return r;
fail:
	audit_out_stop(parts->audit_out);
	policy_free(parts->policy);
	verify_keyring_free(parts->keyring);
	store_free(parts->store);
	audit_close(parts->audit);
	grant_close(parts->grants);
	if (parts->release != NULL)
		parts->release(parts->arg);
	memset(parts, 0, sizeof(*parts));
	return r;
}

void
gate_app_close(gk_app *app)
{
	if (app == NULL)
		return;
	gate_console_stop(app->console);
	gate_workers_stop(app);	/* their failures are recorded */
	audit_out_stop(app->audit_out);
	if (app->audit != NULL)
		gate_refusals_flush(app, 1);	/* before the last checkpoint */
	audit_close(app->audit);	/* its last checkpoint may still ship */
	gate_refusals_free(app->refusals);
	gate_cpship_stop(app->cpship);
	store_free(app->store);
	grant_close(app->grants);
	s3_signer_free(app->s3api_signer);
	verify_mac_free(app->v1_mac);
	verify_mac_free(app->internal_mac);
	policy_live_free(app->policy_live);
	policy_rate_free(app->rate);
	verify_keyring_free(app->keyring);
	gate_console_free(app->console);
	gate_sessions_free(app->sessions);
	policy_free(app->parts.policy);
	if (app->parts.release != NULL)
		app->parts.release(app->parts.arg);
	pthread_mutex_destroy(&app->wait_lock);
	pthread_cond_destroy(&app->work_idle);
	pthread_cond_destroy(&app->work_cv);
	pthread_mutex_destroy(&app->work_mu);
	free(app);
}

void
gate_app_policy_loaded(gk_app *app, const policy_settings *ps,
    const gk_policy *p)
{
	gate_console_policy_loaded(app->console, ps, p);
}

void
gate_tick(gk_app *app)
{
	gate_refusals_flush(app, 0);
}

/* ---- live reload ------------------------------------------------------ */

struct reload_note {
	char by[64];
};

static void
reload_audited(void *arg, int result)
{
	struct reload_note *n = arg;

	if (result != 0)
		gk_error("reload by %s: audit record not written: %s", n->by,
		    gk_err_str(result));
	free(n);
}

/* Audits a reload that did not come through an HTTP request. */
static void
audit_reload(gk_app *app, const char *by, int ok, const char *msg)
{
	struct reload_note *n;
	gk_audit_record rec;
	char text[2048];

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return;
	snprintf(n->by, sizeof(n->by), "%s", by);
	memset(&rec, 0, sizeof(rec));
	rec.time_us = gk_now_us();
	rec.protocol = "admin";
	rec.operation = "reload";
	rec.status = ok ? 200 : 500;
	rec.decision = ok ? "allow" : "error";
	snprintf(text, sizeof(text), "%s: %s", by, msg);
	rec.message = text;
	if (audit_submit(app->audit, &rec, reload_audited, n) != 0) {
		gk_error("reload by %s: audit record not written", by);
		free(n);
	}
}

int
gate_app_reload(gk_app *app, const char *by, char *msg, size_t msglen)
{
	char sum[1200], why[700];
	gk_policy *p = NULL;
	uint64_t n;
	int r;

	why[0] = '\0';
	r = GK_ERR_INVALID;
	snprintf(why, sizeof(why), "nothing to reload from");
	if (app->parts.reload != NULL)
		r = app->parts.reload(app->parts.arg, app, &p, why,
		    sizeof(why));
	if (r != 0) {
		snprintf(msg, msglen, "reload failed, the old policy stays in "
		    "force: %s", why);
		gk_error("%s", msg);
		gate_count(app, GK_STAT_RELOAD_FAILURES);
		if (by != NULL)
			audit_reload(app, by, 0, msg);
		return r;
	}
	policy_summary(p, sum, sizeof(sum));
	n = policy_live_swap(app->policy_live, p);
	snprintf(msg, msglen, "policy reloaded (#%llu): %s",
	    (unsigned long long)n, sum);
	gk_info("reload by %s: %s", by ? by : "HTTP", msg);
	gate_count(app, GK_STAT_RELOADS);
	if (by != NULL)
		audit_reload(app, by, 1, msg);
	return 0;
}
