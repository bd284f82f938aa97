/*
 * settings.c - the settings each module takes, filled from the config:
 * modules see their own struct, never gk_config.
 */
#include "config.h"

#include <string.h>

#include "audit/audit.h"
#include "http/http.h"

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
}
