/*
 * check.c - what a setting cannot say alone: the checks across settings
 * (pairs that go together, listeners that must differ, names S3 accepts)
 * and the defaults that depend on the machine (the geo database).
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

static int
bucket_name_ok(const char *b)
{
	size_t i, n = strlen(b);

	if (n < 3 || n > 63)
		return 0;
	for (i = 0; i < n; i++) {
		if (!((b[i] >= 'a' && b[i] <= 'z') ||
		    (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-'))
			return 0;
	}
	return 1;
}

int
cfg_validate(gk_config *cfg, char *err, size_t errlen)
{
	struct in6_addr a6;
	size_t i;

	/* what serve binds: check-config must refuse what serve cannot use */
	if (inet_pton(AF_INET, cfg->listen, &a6) != 1 &&
	    inet_pton(AF_INET6, cfg->listen, &a6) != 1) {
		(void)cfg_setting_error(cfg, err, errlen, "server", "listen",
		    "[server] listen '%s' is not an IPv4 or IPv6 address",
		    cfg->listen);
		return GK_ERR_CONFIG;
	}
	if (strncmp(cfg->public_url, "http://", 7) != 0 &&
	    strncmp(cfg->public_url, "https://", 8) != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "server",
		    "public_url", "[server] public_url must be an http:// or "
		    "https:// URL");
		return GK_ERR_CONFIG;
	}
	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
		(void)cfg_setting_error(cfg, err, errlen, "server",
		    cfg->tls_cert[0] != '\0' ? "tls_cert" : "tls_key",
		    "[server] tls_cert and tls_key go together");
		return GK_ERR_CONFIG;
	}
	if (cfg->tls_cert[0] == '\0' && (cfg->tls_ocsp[0] != '\0' ||
	    cfg->redirect_port != 0)) {
		const char *what = cfg->tls_ocsp[0] != '\0' ? "tls_ocsp" :
		    "redirect_port";

		(void)cfg_setting_error(cfg, err, errlen, "server", what,
		    "[server] %s needs tls_cert and tls_key", what);
		return GK_ERR_CONFIG;
	}
	if (cfg->redirect_port != 0 && cfg->redirect_port == cfg->port) {
		(void)cfg_setting_error(cfg, err, errlen, "server", "redirect_port",
		    "[server] redirect_port must differ from port");
		return GK_ERR_CONFIG;
	}
	if (strcmp(cfg->store_type, "fs") != 0 &&
	    strcmp(cfg->store_type, "s3") != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "store",
		    "type", "[store] type '%s' is not supported "
		    "(supported: fs, s3)", cfg->store_type);
		return GK_ERR_CONFIG;
	}
	if (cfg->checkpoint_prefix[0] != '\0') {
		const char *c;

		if (strcmp(cfg->store_type, "s3") != 0) {
			(void)cfg_setting_error(cfg, err, errlen, "audit",
			    "checkpoint_prefix", "[audit] checkpoint_prefix needs "
			    "[store] type = s3");
			return GK_ERR_CONFIG;
		}
		for (c = cfg->checkpoint_prefix; *c != '\0'; c++) {
			if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' &&
			    *c <= 'z') || (*c >= '0' && *c <= '9') ||
			    *c == '-' || *c == '_' || *c == '.' || *c == '/') ||
			    (*c == '/' && (c == cfg->checkpoint_prefix ||
			    c[1] == '/' || c[1] == '\0'))) {
				(void)cfg_setting_error(cfg, err, errlen, "audit",
				    "checkpoint_prefix", "[audit] "
				    "checkpoint_prefix may hold only A-Z a-z "
				    "0-9 - _ . and inner single '/'");
				return GK_ERR_CONFIG;
			}
		}
	}
	if (cfg->out_syslog[0] != '\0' &&
	    strncmp(cfg->out_syslog, "tcp://", 6) != 0 &&
	    strncmp(cfg->out_syslog, "tls://", 6) != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "audit_out", "syslog",
		    "[audit_out] syslog must be tcp://host:port or "
		    "tls://host:port");
		return GK_ERR_CONFIG;
	}
	if ((cfg->out_syslog_cert_file[0] == '\0') !=
	    (cfg->out_syslog_key_file[0] == '\0') ||
	    (cfg->out_webhook_cert_file[0] == '\0') !=
	    (cfg->out_webhook_key_file[0] == '\0')) {
		int sys = (cfg->out_syslog_cert_file[0] == '\0') !=
		    (cfg->out_syslog_key_file[0] == '\0');

		(void)cfg_setting_error(cfg, err, errlen, "audit_out", sys ?
		    "syslog_cert_file" : "webhook_cert_file", sys ?
		    "[audit_out] syslog_cert_file and syslog_key_file go "
		    "together" : "[audit_out] webhook_cert_file and "
		    "webhook_key_file go together");
		return GK_ERR_CONFIG;
	}
	if (cfg->out_syslog_cert_file[0] != '\0' &&
	    strncmp(cfg->out_syslog, "tls://", 6) != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "audit_out",
		    "syslog_cert_file", "[audit_out] syslog_cert_file needs "
		    "a tls:// syslog");
		return GK_ERR_CONFIG;
	}
	if (cfg->out_webhook_cert_file[0] != '\0' &&
	    strncmp(cfg->out_webhook, "https://", 8) != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "audit_out",
		    "webhook_cert_file", "[audit_out] webhook_cert_file needs "
		    "an https:// webhook");
		return GK_ERR_CONFIG;
	}
	if (cfg->out_webhook[0] != '\0' &&
	    strncmp(cfg->out_webhook, "http://", 7) != 0 &&
	    strncmp(cfg->out_webhook, "https://", 8) != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "audit_out", "webhook",
		    "[audit_out] webhook must be an http:// or https:// URL");
		return GK_ERR_CONFIG;
	}
	if (strcmp(cfg->store_type, "s3") == 0 && cfg->s3_bucket[0] == '\0') {
		(void)cfg_setting_error(cfg, err, errlen, "store",
		    "type", "[s3] bucket must be set for [store] "
		    "type s3");
		return GK_ERR_CONFIG;
	}
	if (strcmp(cfg->s3_mode, "redirect") != 0 &&
	    strcmp(cfg->s3_mode, "proxy") != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "s3",
		    "mode", "[s3] mode must be redirect or proxy");
		return GK_ERR_CONFIG;
	}
	if (cfg->s3api_enabled && cfg->s3api_port == 0 &&
	    cfg->s3api_host[0] == '\0') {
		(void)cfg_setting_error(cfg, err, errlen, "s3api", "enabled",
		    "[s3api] needs a port or a host");
		return GK_ERR_CONFIG;
	}
	if (cfg->s3api_enabled && strcmp(cfg->store_type, "s3") == 0 &&
	    strcmp(cfg->s3_mode, "proxy") != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "s3api", "enabled",
		    "[s3api] needs [s3] mode = proxy (the gatekeeper streams "
		    "every byte)");
		return GK_ERR_CONFIG;
	}
	if (!bucket_name_ok(cfg->s3api_bucket)) {
		(void)cfg_setting_error(cfg, err, errlen, "s3api", "bucket",
		    "[s3api] bucket must be 3-63 of a-z, 0-9, '.' and '-'");
		return GK_ERR_CONFIG;
	}
	if (strcmp(cfg->audit_backend, "sqlite") != 0 &&
	    strcmp(cfg->audit_backend, "postgres") != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "audit",
		    "backend", "[audit] backend '%s' is not supported "
		    "(supported: sqlite, postgres)", cfg->audit_backend);
		return GK_ERR_CONFIG;
	}
	if (strcmp(cfg->audit_backend, "postgres") == 0 &&
	    strncmp(cfg->audit_dsn, "postgres://", 11) != 0 &&
	    strncmp(cfg->audit_dsn, "postgresql://", 13) != 0) {
		(void)cfg_setting_error(cfg, err, errlen, "audit",
		    cfg->audit_dsn[0] != '\0' ? "dsn" : "backend",
		    "[audit] backend postgres needs dsn = "
		    "postgresql://...");
		return GK_ERR_CONFIG;
	}
	for (i = 0; cfg->audit_instance_id[i] != '\0'; i++) {
		char c = cfg->audit_instance_id[i];

		if (i >= 128 || !((c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == ':')) {
			(void)cfg_setting_error(cfg, err, errlen, "audit",
			    "instance_id", "[audit] instance_id must be 1 "
			    "to 128 of A-Z a-z 0-9 - _ . :");
			return GK_ERR_CONFIG;
		}
	}
	if (cfg->id[0] == '\0' || strlen(cfg->id) > 128) {
		(void)cfg_setting_error(cfg, err, errlen, "gate",
		    "id", "[gate] id must be 1 to 128 characters");
		return GK_ERR_CONFIG;
	}
	for (i = 0; cfg->uploads_prefix[i] != '\0'; i++) {
		char c = cfg->uploads_prefix[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '/')) {
			(void)cfg_setting_error(cfg, err, errlen, "gate",
			    "uploads_prefix", "[gate] uploads_prefix may hold "
			    "only A-Z a-z 0-9 - _ . /");
			return GK_ERR_CONFIG;
		}
	}
	if (cfg->data_dir[0] == '\0') {
		(void)cfg_setting_error(cfg, err, errlen, "gate",
		    "data_dir", "[gate] data_dir must not be empty");
		return GK_ERR_CONFIG;
	}
	return cfg_vendor_validate(cfg, err, errlen);
}

/*
 * [geo] database: "off" turns country checks off; empty picks the first
 * readable GK_GEO_NAMES file in GK_GEO_DIRS (the names first, then the
 * directories), or none.
 */
int
cfg_geo_default(gk_config *cfg, char *err, size_t errlen)
{
	static const char *const dirs[] = { GK_GEO_DIRS };
	static const char *const names[] = { GK_GEO_NAMES };
	char path[512];
	size_t i, j;

	if (strcmp(cfg->geo_database, "off") == 0) {
		cfg->geo_database[0] = '\0';
		return 0;
	}
	if (cfg->geo_database[0] != '\0')
		return 0;
	for (i = 0; i < GK_ARRAY_LEN(names); i++) {
		for (j = 0; j < GK_ARRAY_LEN(dirs); j++) {
			snprintf(path, sizeof(path), "%s/%s", dirs[j], names[i]);
			if (access(path, R_OK) != 0)
				continue;
			free(cfg->geo_database);
			if ((cfg->geo_database = strdup(path)) == NULL) {
				snprintf(err, errlen, "out of memory");
				return GK_ERR_NOMEM;
			}
			cfg->geo_database_found = 1;
			return 0;
		}
	}
	return 0;
}
