/*
 * app.c - the gate assembled from a config file: its settings, the
 * policy, vendor keys, store and audit writer it holds, and the policy
 * rebuilt from the file on a live reload. The gate reads no config.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "gate/gate.h"
#include "grant/grant.h"
#include "policy/policy.h"
#include "store/store.h"
#include "verify/verify.h"

static void
gate_settings_fill(const gk_config *cfg, gate_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->id = cfg->id;
	out->public_url = cfg->public_url;
	out->demo = cfg->demo;
	out->validate_keys = cfg->validate_keys;
	out->v1 = cfg->v1;
	out->v1_roots = cfg->v1_roots;
	out->uploads_prefix = cfg->uploads_prefix;
	out->max_upload_bytes = cfg->max_upload_bytes;
	out->max_token_lifetime = cfg->max_token_lifetime;
	out->data_url_ttl = cfg->data_url_ttl;
	out->s3_presign_ttl = cfg->s3_presign_ttl;
	out->v2_max_lifetime = cfg->v2_max_lifetime;
	out->v2_clock_skew = cfg->v2_clock_skew;
	out->v2_verify_cache = (size_t)cfg->v2_verify_cache;
	out->rate_table_size = cfg->rate_table_size;
	out->audit_aggregate_s = cfg->audit_aggregate_s;
	out->checkpoint_prefix = cfg->checkpoint_prefix;
	out->checkpoint_retention_days = cfg->checkpoint_retention_days;
	out->audit_target = cfg_audit_target(cfg);
	out->audit_checkpoint_file = cfg->audit_checkpoint_file;
	out->audit_pub_file = cfg->audit_pub_file;
	out->v1_key = cfg->v1_key;
	out->internal_key = cfg->internal_key;
	out->admin_token = cfg->admin_token;
	out->s3api_enabled = cfg->s3api_enabled;
	out->s3api_port = cfg->s3api_port;
	out->s3api_host = cfg->s3api_host;
	out->s3api_bucket = cfg->s3api_bucket;
	out->s3api_region = cfg->s3api_region;
	out->s3api_max_object_bytes = cfg->s3api_max_object_bytes;
}

/* A live reload: the file (and its list files) read again. */
static int
reload(void *arg, gk_app *app, gk_policy **out, char *msg, size_t msglen)
{
	const gk_config *cur = arg;
	policy_settings ps;
	gk_config *cfg = NULL;
	char err[512];
	int r;

	*out = NULL;
	err[0] = '\0';
	if ((r = cfg_load(cur->path, 0, &cfg, err, sizeof(err))) != 0) {
		snprintf(msg, msglen, "%s", err);
		return r;
	}
	cfg_policy_settings(cfg, &ps);
	if ((r = policy_new(&ps, out, err, sizeof(err))) != 0)
		snprintf(msg, msglen, "%s: %s",
		    cfg->path ? cfg->path : "(defaults)", err);
	else
		gate_app_policy_loaded(app, &ps, *out);
	cfg_free(cfg);
	return r;
}

static void
release(void *arg)
{
	cfg_free(arg);
}

int
cfg_gate_open(gk_config *cfg, gk_app **out, char *err, size_t errlen)
{
	gate_settings gs;
	gate_parts parts;
	policy_settings ps;
	audit_settings as;
	audit_out_settings aos;
	char aerr[512];
	int r;

	*out = NULL;
	memset(&parts, 0, sizeof(parts));
	parts.reload = reload;
	parts.release = release;
	parts.arg = cfg;
	cfg_policy_settings(cfg, &ps);
	if ((r = policy_new(&ps, &parts.policy, err, errlen)) != 0 ||
	    (r = verify_keyring_new(cfg->vendor_keys, cfg->n_vendor_keys,
	    &parts.keyring, err, errlen)) != 0 ||
	    (r = cfg_store_open(cfg, &parts.store, err, errlen)) != 0)
		goto out;
	cfg_audit_settings(cfg, &as);
	if ((r = audit_open(&as, &parts.audit, aerr, sizeof(aerr))) != 0) {
		snprintf(err, errlen, "cannot open the audit log %s: %s",
		    audit_label(as.target), aerr);
		goto out;
	}
	if (cfg->s3api_enabled) {
		grant_settings grs;

		err[0] = '\0';
		cfg_grant_settings(cfg, &grs);
		if ((r = grant_open(&grs, &parts.grants, err, errlen)) != 0) {
			if (err[0] == '\0')
				snprintf(err, errlen, "cannot start the S3 "
				    "endpoint: %s", gk_err_str(r));
			audit_close(parts.audit);
			goto out;
		}
	}
	cfg_audit_out_settings(cfg, &aos);
	if ((r = audit_out_start(&aos, audit_instance(parts.audit),
	    &parts.audit_out)) != 0) {
		snprintf(err, errlen, "cannot start [audit_out]: %s",
		    gk_err_str(r));
		audit_close(parts.audit);
		grant_close(parts.grants);
		goto out;
	}
	gate_settings_fill(cfg, &gs);
	if ((r = gate_app_open(&gs, &parts, out, err, errlen)) != 0)
		return r;
	/* the console's view of the policy in force */
	gate_app_policy_loaded(*out, &ps, NULL);
	return 0;
out:
	policy_free(parts.policy);
	verify_keyring_free(parts.keyring);
	store_free(parts.store);
	cfg_free(cfg);
	return r;
}
