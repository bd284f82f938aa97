/*
 * config.h - the config folder's whole interface: the settings, their
 * embedded defaults, loading an INI file (libinih), validation and printing
 * the effective settings with secrets masked.
 *
 * The struct is plain data: every other module reads it, nobody but this
 * folder writes it. Strings are heap copies owned by the config; secrets
 * (loaded from key files) are wiped by cfg_free().
 */
#ifndef GK_CONFIG_H
#define GK_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "util/util.h"
#include "s3/s3.h"
#include "verify/verify.h"



typedef struct gk_config {
	char *path;		/* file loaded, or NULL for embedded defaults */

	/* [server] */
	char *listen;		/* address to bind, default 127.0.0.1 */
	unsigned port;		/* default 8080 */
	unsigned threads;	/* 0 = number of cores */
	unsigned conn_limit;	/* total connections, default 4096 */
	unsigned per_ip_conn_limit; /* default 64 */
	unsigned conn_timeout;	/* idle seconds, default 15 */
	unsigned head_timeout;	/* seconds to send a request head, 10 */
	unsigned body_timeout;	/* seconds a body may take, plus */
	unsigned body_min_rate;	/* one more per this many bytes, 1024 */
	char *public_url;	/* how browsers reach us, default http://listen:port */
	int demo;		/* serve /demo and /demo/sign (default off) */
	int log_level;		/* GK_LOG_* */
	/* [server] HTTPS */
	char *tls_cert;		/* PEM chain, leaf first; "" = plain HTTP */
	char *tls_key;		/* its PEM private key */
	char *tls_ocsp;		/* DER OCSP response to staple, "" = none */
	unsigned redirect_port;	/* plain listener redirecting, 0 = none */
	unsigned hsts_max_age;	/* Strict-Transport-Security, 0 = not sent */

	/* [gate] */
	char *id;		/* this gatekeeper's id, default "gatekeeper" */
	char *data_dir;		/* default ./data */
	char *keys_dir;		/* default <data_dir>/keys */
	char *v1_key_file;	/* default <keys_dir>/v1.key */
	gk_secret v1_key;	/* the shared HMAC secret (file bytes, trimmed) */
	int64_t max_token_lifetime; /* seconds, default 900, 0 = unlimited */
	int validate_keys;	/* key/path validation beyond the original, 1 */
	int v1;			/* serve protocol v1, default 1 */
	char *v1_roots;		/* the v1 roots that exist ("": any) */
	char *uploads_prefix;	/* default "uploads" */
	uint64_t max_upload_bytes; /* default 100 MiB */
	int64_t data_url_ttl;	/* seconds, default 60 */
	char *internal_key_file; /* default <keys_dir>/internal.key */
	gk_secret internal_key;	/* HMAC key for data URLs and upload policies */
	/* [gate] protocol v2 */
	int64_t v2_max_lifetime; /* longest exp - iat, seconds, default 900 */
	int64_t v2_clock_skew;	/* iat/nbf may be this far ahead, default 30 */
	int64_t v2_verify_cache; /* verified tokens per thread, default 16384 */

	/* [store] */
	char *store_type;	/* "fs" (default) */
	char *store_dir;	/* default <data_dir>/objects */
	char *master_key_file;	/* default <keys_dir>/master.key */
	gk_secret master_key;	/* AES-256-GCM at-rest master key */

	/* [acl] */
	char *ip_allow;		/* comma/space separated CIDRs */
	char *ip_deny;
	int uploads_exempt_ip;	/* default 1 */
	char *origins;		/* exact origins and ".suffix" domains */
	int allow_missing_origin; /* default 0 */
	/* list files, trusted proxies, countries, rate limits */
	char *ip_allow_files;	/* files of CIDRs, one per line */
	char *ip_deny_files;
	char *trusted_proxies;	/* CIDRs whose forwarded headers count */
	char *forwarded_header;	/* "x-forwarded-for" or "forwarded" */
	char *geo_database;	/* [geo] database: .mmdb or GeoIP.dat, "" =
				 * no countries (after loading: "" in the
				 * file means the first one found in
				 * GK_GEO_DIRS, "off" means none) */
	int geo_database_found;	/* 1: found in a standard place */
	char *geo_countries;	/* [geo] countries: ISO codes or "*" */
	char *geo_countries_get; /* per-operation overrides, "" = countries */
	char *geo_countries_list;
	char *geo_countries_put;
	char *geo_unknown;	/* [geo] unknown: "deny" or "allow" */
	unsigned rate_rps;	/* [rate] requests_per_second, 0 = off */
	unsigned rate_burst;
	unsigned rate_denied_per_min; /* [rate] denied_per_minute, 0 = off */
	unsigned rate_denied_burst;
	unsigned rate_v6_48_factor; /* [rate] ipv6_48_factor, default 8 */
	unsigned rate_table_size; /* [rate] table_size (fixed at start) */
	char *rate_exempt;	/* [rate] exempt: CIDRs never limited */

	/* [audit] */
	char *audit_backend;	/* "sqlite" */
	char *audit_db;		/* default <data_dir>/audit.db */
	unsigned retention_days; /* default 180, 0 = keep forever */
	unsigned audit_batch;	/* max records per transaction, default 4096 */
	char *audit_dsn;	/* postgres backend: postgresql://... URI */
	char *audit_instance_id; /* "" = <keys_dir>/instance.id, made once */
	char *audit_key_file;	/* default <keys_dir>/audit_ed25519.key */
	gk_secret audit_key;	/* Ed25519 seed signing checkpoints */
	char *audit_pub_file;	/* default <keys_dir>/audit_ed25519.pub */
	char *audit_checkpoint_file; /* default <data_dir>/audit-checkpoints.log */
	unsigned checkpoint_records; /* default 1000 */
	unsigned checkpoint_seconds; /* default 60 */
	char *checkpoint_prefix; /* s3: checkpoints also put here ("": off) */
	unsigned checkpoint_retention_days; /* Object Lock COMPLIANCE days */
	/* a flood of refusals cannot fill the audit's disk */
	unsigned audit_min_free_mb; /* refusals dropped below it, default 128 */
	unsigned audit_aggregate_s; /* refusal summary interval, default 60 */

	/* [audit_out]: audit records streamed to a SIEM */
	char *out_syslog;	/* tcp://host:port or tls://host:port, "" off */
	char *out_syslog_ca_file; /* tls: CA file ("" = system store) */
	char *out_syslog_cert_file; /* tls: client certificate, "" none */
	char *out_syslog_key_file; /* its private key */
	char *out_webhook;	/* http(s):// URL for JSON lines, "" off */
	char *out_webhook_token_file; /* bearer token file, "" none */
	char *out_webhook_ca_file; /* https: CA file ("" = system store) */
	char *out_webhook_cert_file; /* https: client certificate, "" none */
	char *out_webhook_key_file; /* its private key */
	char *out_state_dir;	/* acknowledged positions, default data_dir */
	unsigned out_batch;	/* records per send, default 500 */
	unsigned out_retry_seconds; /* wait after a failure, default 5 */

	/* [admin] */
	char *admin_token_file;	/* default <keys_dir>/admin.token */
	gk_secret admin_token;
	char *admin_cidrs;	/* default "127.0.0.1/32, ::1/128" */

	/* [vendor_key KID] sections, in file order */
	gk_vendor_key *vendor_keys;
	size_t n_vendor_keys;
	/* [s3api] the S3-compatible endpoint for grants */
	int s3api_enabled;
	unsigned s3api_port;	/* own listener, 0 = none */
	char *s3api_host;	/* host name on the main port, "" = none */
	char *s3api_bucket;	/* the bucket clients see */
	char *s3api_region;
	uint64_t s3api_max_object_bytes;
	char *grant_key_file;	/* default <keys_dir>/grant.key */
	gk_secret grant_key;	/* AES-256-GCM key of grant secrets */
	/* [s3] (store type s3) */
	char *s3_bucket;
	char *s3_region;	/* default us-east-1 */
	char *s3_endpoint;	/* default https://s3.<region>.amazonaws.com */
	int s3_path_style;	/* default 0: virtual-hosted */
	char *s3_mode;		/* "redirect" (default) or "proxy" */
	int64_t s3_presign_ttl;	/* seconds, default 60 */
	int s3_check_exists;	/* HEAD before a redirect, default 1 */
	char *s3_access_key_id;
	char *s3_secret_key_file;
	char *s3_session_token_file;
	int s3_use_env;		/* AWS_* variables, default 1 */
	char *s3_credentials_file; /* default ~/.aws/credentials */
	char *s3_profile;	/* default $AWS_PROFILE or "default" */
	int s3_container_credentials; /* ECS endpoint, default 1 */
	int s3_imds;		/* EC2 IMDSv2, default 1 */
	char *s3_imds_endpoint;
	unsigned s3_connect_timeout; /* seconds, default 5 */
	unsigned s3_timeout;	/* seconds, default 30 */
	unsigned s3_retries;	/* default 2 */
	/* provisioning */
	char *s3_kms_key_id;	/* "": SSE AES256; else aws:kms with this key */
	unsigned s3_lc_ia_days;	/* uploads/ -> STANDARD_IA (0: no rule) */
	unsigned s3_lc_onezone_days; /* -> ONEZONE_IA (0: none) */
	unsigned s3_lc_expire_days; /* expire (0: never) */
	unsigned s3_lc_abort_days; /* abort incomplete multipart (0: never) */
	int s3_policy_source_ip; /* bucket policy mirrors [acl] ip_allow */
	char *s3_source_ip_extra; /* CIDRs also allowed (the gatekeepers) */
} gk_config;

/* Where a country database is looked for when [geo] database is empty:
 * these directories, these names, in this order (the .mmdb of geoipupdate
 * first, Debian's geoip-database last). */
#define GK_GEO_DIRS "/var/lib/GeoIP", "/usr/share/GeoIP"
#define GK_GEO_NAMES "GeoIP2-Country.mmdb", "GeoLite2-Country.mmdb", \
	"dbip-country-lite.mmdb", "dbip-country.mmdb", "GeoIP2-City.mmdb", \
	"GeoLite2-City.mmdb", "dbip-city-lite.mmdb", "GeoIP.dat"

/*
 * Loads the embedded defaults, then the INI file at path (NULL: defaults
 * only), then the key files. On failure returns GK_ERR_CONFIG and writes
 * one line "FILE:LINE: problem" (or "FILE: problem") into err.
 * Set load_keys to 0 to skip reading key files (for keygen/check-config of
 * a file whose keys do not exist yet).
 */
int cfg_load(const char *path, int load_keys, gk_config **out, char *err,
    size_t errlen) GK_WUR;
/* Frees everything and wipes secrets; cfg may be NULL. */
void cfg_free(gk_config *cfg);
/*
 * Where a setting came from, for error messages: writes "FILE:LINE" when
 * cfg's file sets [section] name (section NULL: any section; name NULL:
 * the section's header line), else "FILE", or "(defaults)" without a file.
 */
void cfg_where(const gk_config *cfg, const char *section, const char *name,
    char *out, size_t outlen);
/* Writes the effective settings as an INI file, secrets masked. */
void cfg_print(const gk_config *cfg, FILE *fp);

/*
 * Creates any missing key file the config names (v1 key, internal key,
 * master key, admin token, audit Ed25519 key), mode 0600, directories
 * 0700, and the audit public key file (0644) from the audit key. Prints one line
 * per created file to fp (may be NULL). Existing files are kept.
 */
int cfg_keygen(const gk_config *cfg, FILE *fp) GK_WUR;


/*
 * Per-module settings, filled from the config (settings.c): each module
 * takes its own struct, never gk_config. Strings and keys are borrowed
 * from cfg, which must outlive them.
 */
struct http_settings;
struct audit_settings;
struct policy_settings;
struct audit_out_settings;
void cfg_audit_out_settings(const gk_config *cfg,
    struct audit_out_settings *out);
void cfg_http_settings(const gk_config *cfg, struct http_settings *out);
/* The grants' settings ([s3api] key_file, the audit database). */
struct grant_settings;
void cfg_grant_settings(const gk_config *cfg, struct grant_settings *out);
void cfg_audit_settings(const gk_config *cfg, struct audit_settings *out);
void cfg_policy_settings(const gk_config *cfg, struct policy_settings *out);
/*
 * The [s3] settings as the S3 client takes them (s3.c): reads the secret
 * and session token files (must exist, mode 0600, not empty); the
 * endpoint defaults to https://s3.<region>.amazonaws.com. One line in err
 * on failure. Release with cfg_s3_release (wipes the secrets).
 */
typedef struct {
	s3_client_opts o;
	gk_secret secret_key;
	gk_secret session_token;
	gk_buf endpoint;
} cfg_s3;
int cfg_s3_opts(const gk_config *cfg, cfg_s3 *out, char *err,
    size_t errlen) GK_WUR;
void cfg_s3_release(cfg_s3 *c);
/* An S3 client from the [s3] settings. */
int cfg_s3_client(const gk_config *cfg, s3_client **out, char *err,
    size_t errlen) GK_WUR;
/* Opens the store the config names ([store], and [s3] for type s3).
 * One line in err on failure. */
struct gk_store;
int cfg_store_open(const gk_config *cfg, struct gk_store **out, char *err,
    size_t errlen) GK_WUR;
/*
 * The gate built from cfg (app.c): its settings, policy, vendor keys,
 * store and audit writer, reloading the policy from cfg->path. Takes
 * ownership of cfg (freed at gate_app_close, or here on failure). One
 * line in err on failure.
 */
struct gk_app;
int cfg_gate_open(gk_config *cfg, struct gk_app **out, char *err,
    size_t errlen) GK_WUR;
/* Where the audit log is: the SQLite file ([audit] db) or, with
 * backend = postgres, the dsn. */
const char *cfg_audit_target(const gk_config *cfg);
/*
 * The warning for protocol v1 on without [gate] v1_roots (static text,
 * one line, no "warning: " prefix), or NULL when there is none.
 */
const char *cfg_v1_warning(const gk_config *cfg);

#endif
