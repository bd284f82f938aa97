/*
 * settings.c - the settings each module takes, filled from the config:
 * modules see their own struct, never gk_config.
 */
#include "config.h"

#include <string.h>

#include "audit/audit.h"
#include "grant/grant.h"
#include "http/http.h"
#include "policy/policy.h"

void
cfg_http_settings(const gk_config *cfg, http_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->listen = cfg->listen;
	out->port = cfg->port;
	out->threads = cfg->threads;
	out->conn_limit = cfg->conn_limit;
	out->per_ip_conn_limit = cfg->per_ip_conn_limit;
	out->conn_timeout = cfg->conn_timeout;
	out->public_url = cfg->public_url;
	out->tls_cert = cfg->tls_cert;
	out->tls_key = cfg->tls_key;
	out->tls_ocsp = cfg->tls_ocsp;
	out->redirect_port = cfg->redirect_port;
	out->hsts_max_age = cfg->hsts_max_age;
	out->head_timeout = cfg->head_timeout;
	out->body_timeout = cfg->body_timeout;
	out->body_min_rate = cfg->body_min_rate;
	out->s3api_port = cfg->s3api_enabled ? cfg->s3api_port : 0;
}

void
cfg_grant_settings(const gk_config *cfg, grant_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->audit_target = cfg_audit_target(cfg);
	out->key = cfg->grant_key;
	out->key_file = cfg->grant_key_file;
}

const char *
cfg_audit_target(const gk_config *cfg)
{
	if (cfg->audit_backend != NULL &&
	    strcmp(cfg->audit_backend, "postgres") == 0)
		return cfg->audit_dsn;
	return cfg->audit_db;
}

void
cfg_audit_settings(const gk_config *cfg, audit_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->target = cfg_audit_target(cfg);
	out->batch = cfg->audit_batch;
	out->retention_days = cfg->retention_days;
	out->checkpoint_file = cfg->audit_checkpoint_file;
	out->checkpoint_records = cfg->checkpoint_records;
	out->checkpoint_seconds = cfg->checkpoint_seconds;
	out->key = cfg->audit_key.p;
	out->key_len = cfg->audit_key.len;
	out->instance_id = cfg->audit_instance_id;
	out->keys_dir = cfg->keys_dir;
	out->min_free_mb = cfg->audit_min_free_mb;
}

void
cfg_policy_settings(const gk_config *cfg, policy_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->ip_allow = cfg->ip_allow;
	out->ip_deny = cfg->ip_deny;
	out->admin_cidrs = cfg->admin_cidrs;
	out->origins = cfg->origins;
	out->uploads_exempt_ip = cfg->uploads_exempt_ip;
	out->allow_missing_origin = cfg->allow_missing_origin;
	out->ip_allow_files = cfg->ip_allow_files;
	out->ip_deny_files = cfg->ip_deny_files;
	out->trusted_proxies = cfg->trusted_proxies;
	out->forwarded_header = cfg->forwarded_header;
	out->geo_database = cfg->geo_database;
	out->geo_countries = cfg->geo_countries;
	out->geo_countries_get = cfg->geo_countries_get;
	out->geo_countries_list = cfg->geo_countries_list;
	out->geo_countries_put = cfg->geo_countries_put;
	out->geo_unknown = cfg->geo_unknown;
	out->rate_rps = cfg->rate_rps;
	out->rate_burst = cfg->rate_burst;
	out->rate_denied_per_min = cfg->rate_denied_per_min;
	out->rate_denied_burst = cfg->rate_denied_burst;
	out->rate_v6_48_factor = cfg->rate_v6_48_factor;
	out->rate_exempt = cfg->rate_exempt;
}

void
cfg_audit_out_settings(const gk_config *cfg, audit_out_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->target = cfg_audit_target(cfg);
	out->data_dir = cfg->data_dir;
	out->out_syslog = cfg->out_syslog;
	out->out_syslog_ca_file = cfg->out_syslog_ca_file;
	out->out_syslog_cert_file = cfg->out_syslog_cert_file;
	out->out_syslog_key_file = cfg->out_syslog_key_file;
	out->out_webhook = cfg->out_webhook;
	out->out_webhook_token_file = cfg->out_webhook_token_file;
	out->out_webhook_ca_file = cfg->out_webhook_ca_file;
	out->out_webhook_cert_file = cfg->out_webhook_cert_file;
	out->out_webhook_key_file = cfg->out_webhook_key_file;
	out->out_state_dir = cfg->out_state_dir;
	out->out_batch = cfg->out_batch;
	out->out_retry_seconds = cfg->out_retry_seconds;
}
