/* config.c - the settings table and INI loading (libinih); the checks
 * across settings are in check.c. */
#include "config_int.h"

#include <errno.h>
#include <ini.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define O(f) offsetof(gk_config, f)
#define MIB (1024ull * 1024)

const struct keyword cfg_keywords[] = {
	{ "server", "listen", K_STR, O(listen), 0, 0, "127.0.0.1", 0,
	    "address to bind" },
	{ "server", "port", K_UINT, O(port), 0, 65535, "8080", 0,
	    "TCP port (0 = any free port)" },
	{ "server", "threads", K_UINT, O(threads), 0, 1024, "0",
	    0, "worker threads (0 = number of cores)" },
	{ "server", "conn_limit", K_UINT, O(conn_limit), 1, 1000000, "4096", 0,
	    "total connections" },
	{ "server", "per_ip_conn_limit", K_UINT, O(per_ip_conn_limit), 0, 100000,
	    "64", 0, "connections per client address (0 = no limit)" },
	{ "server", "conn_timeout", K_UINT, O(conn_timeout), 1, 3600, "15", 0,
	    "idle connection timeout, seconds" },
	{ "server", "head_timeout", K_UINT, O(head_timeout), 0, 3600, "10", 0,
	    "seconds a client has to send a whole request head, from its first "
	    "byte (0 = off)" },
	{ "server", "body_timeout", K_UINT, O(body_timeout), 1, 3600, "10", 0,
	    "seconds a request body may take, plus one per body_min_rate bytes" },
	{ "server", "body_min_rate", K_UINT, O(body_min_rate), 0, 1u << 30,
	    "1024", 0, "slowest accepted request body, bytes per second "
	    "(0 = no body deadline at all)" },
	{ "server", "public_url", K_STR, O(public_url), 0, 0, "", 0,
	    "URL browsers use to reach the gatekeeper (default http://listen:port)" },
	{ "server", "demo", K_BOOL, O(demo), 0, 1, "false", 0,
	    "serve the demo page at /demo (signs requests: never in production)" },
	{ "server", "log_level", K_LEVEL, O(log_level), 0, 3, "info", 0,
	    "error, warn, info or debug" },
	{ "server", "tls_cert", K_STR, O(tls_cert), 0, 0, "", 0,
	    "PEM certificate chain, leaf first (empty: plain HTTP)" },
	{ "server", "tls_key", K_STR, O(tls_key), 0, 0, "", 1,
	    "PEM private key of tls_cert" },
	{ "server", "tls_ocsp", K_STR, O(tls_ocsp), 0, 0, "", 0,
	    "DER OCSP response stapled to handshakes (empty: none)" },
	{ "server", "redirect_port", K_UINT, O(redirect_port), 0, 65535, "0",
	    0, "plain HTTP port that only redirects to public_url (0 = none)" },
	{ "server", "hsts_max_age", K_UINT, O(hsts_max_age), 0, 63072000,
	    "31536000", 0, "Strict-Transport-Security max-age on HTTPS (0 = off)" },

	{ "gate", "id", K_STR, O(id), 0, 0, "gatekeeper", 0,
	    "this gatekeeper's id" },
	{ "gate", "data_dir", K_STR, O(data_dir), 0, 0, "./data", 0,
	    "where data, keys and the audit live" },
	{ "gate", "keys_dir", K_STR, O(keys_dir), 0, 0, "", 0,
	    "key files (default <data_dir>/keys)" },
	{ "gate", "v1_key_file", K_STR, O(v1_key_file), 0, 0, "", 1,
	    "v1 shared HMAC secret (default <keys_dir>/v1.key)" },
	{ "gate", "max_token_lifetime", K_I64, O(max_token_lifetime), 0,
	    10ull * 365 * 86400, "900", 0,
	    "longest accepted expires - now, seconds (0 = unlimited, as the original)" },
	{ "gate", "v1", K_BOOL, O(v1), 0, 1, "true", 0,
	    "serve protocol v1 (/{root}?path=...); false: v2 only" },
	{ "gate", "v1_roots", K_STR, O(v1_roots), 0, 0, "", 0,
	    "the v1 roots that exist; others refused (none of them a prefix of another)" },
	{ "gate", "validate_keys", K_BOOL, O(validate_keys), 0, 1, "true", 0,
	    "key and path validation beyond the original" },
	{ "gate", "uploads_prefix", K_STR, O(uploads_prefix), 0, 0, "uploads", 0,
	    "key prefix uploads go under" },
	{ "gate", "max_upload_bytes", K_U64, O(max_upload_bytes), 1,
	    1024ull * 1024 * MIB, "104857600", 0, "largest upload, bytes" },
	{ "gate", "data_url_ttl", K_I64, O(data_url_ttl), 1, 86400, "60", 0,
	    "lifetime of data URLs and upload policies, seconds" },
	{ "gate", "internal_key_file", K_STR, O(internal_key_file), 0, 0, "", 1,
	    "HMAC key for data URLs and upload policies (default <keys_dir>/internal.key)" },
	{ "gate", "v2_max_lifetime", K_I64, O(v2_max_lifetime), 1,
	    7ull * 86400, "900", 0,
	    "v2: longest accepted token lifetime exp - iat, seconds" },
	{ "gate", "v2_clock_skew", K_I64, O(v2_clock_skew), 0, 3600, "30", 0,
	    "v2: how far iat and nbf may lie in the future, seconds" },
	{ "gate", "v2_verify_cache", K_I64, O(v2_verify_cache), 0, 1048576,
	    "16384", 0,
	    "v2: verified tokens each thread remembers to skip re-checking "
	    "their signature (0 = off)" },

	{ "store", "type", K_STR, O(store_type), 0, 0, "fs", 0,
	    "object store: fs or s3 (see [s3])" },
	{ "store", "dir", K_STR, O(store_dir), 0, 0, "", 0,
	    "fs store directory (default <data_dir>/objects)" },
	{ "store", "master_key_file", K_STR, O(master_key_file), 0, 0, "", 1,
	    "AES-256 master key for data at rest (default <keys_dir>/master.key)" },

	{ "acl", "ip_allow", K_STR, O(ip_allow), 0, 0, "127.0.0.0/8, ::1/128", 0,
	    "CIDRs allowed (outside them: denied)" },
	{ "acl", "ip_deny", K_STR, O(ip_deny), 0, 0, "", 0,
	    "CIDRs denied (deny wins)" },
	{ "acl", "uploads_exempt_ip", K_BOOL, O(uploads_exempt_ip), 0, 1, "true",
	    0, "uploads skip the allow list (never the deny list)" },
	{ "acl", "origins", K_STR, O(origins), 0, 0,
	    "http://127.0.0.1:8080, http://localhost:8080", 0,
	    "allowed origins: exact, or .domain.suffix, or *" },
	{ "acl", "allow_missing_origin", K_BOOL, O(allow_missing_origin), 0, 1,
	    "false", 0, "accept requests without an Origin header" },
	/* list files, trusted proxies, countries, rate limits */
	{ "acl", "ip_allow_files", K_STR, O(ip_allow_files), 0, 0, "", 0,
	    "files of CIDRs added to ip_allow (one a line, # comments)" },
	{ "acl", "ip_deny_files", K_STR, O(ip_deny_files), 0, 0, "", 0,
	    "files of CIDRs added to ip_deny (one a line, # comments)" },
	{ "acl", "trusted_proxies", K_STR, O(trusted_proxies), 0, 0, "", 0,
	    "CIDRs of proxies whose X-Forwarded-For / Forwarded are read" },
	{ "acl", "forwarded_header", K_STR, O(forwarded_header), 0, 0,
	    "x-forwarded-for", 0, "the header trusted proxies set: "
	    "x-forwarded-for or forwarded (RFC 7239); the other is ignored" },
	{ "geo", "database", K_STR, O(geo_database), 0, 0, "", 0,
	    "country database: .mmdb (MaxMind format) or legacy GeoIP.dat "
	    "(empty: the first found under /var/lib/GeoIP or /usr/share/GeoIP; "
	    "off: no country checks)" },
	{ "geo", "countries", K_STR, O(geo_countries), 0, 0,
	    "US CA GB AU NZ IE NL", 0,
	    "ISO 3166 country codes allowed, or * for every country" },
	{ "geo", "countries_get", K_STR, O(geo_countries_get), 0, 0, "", 0,
	    "override for GET_Object and data URLs (empty: countries)" },
	{ "geo", "countries_list", K_STR, O(geo_countries_list), 0, 0, "", 0,
	    "override for GET_Bucket (empty: countries)" },
	{ "geo", "countries_put", K_STR, O(geo_countries_put), 0, 0, "", 0,
	    "override for PUT_Object and uploads (empty: countries)" },
	{ "geo", "unknown", K_STR, O(geo_unknown), 0, 0, "deny", 0,
	    "addresses the database does not place: deny or allow "
	    "(loopback and private ranges: the IP lists decide)" },
	{ "rate", "requests_per_second", K_UINT, O(rate_rps), 0, 1000000,
	    "100", 0, "requests per second per client address (0 = no limit)" },
	{ "rate", "burst", K_UINT, O(rate_burst), 1, 10000000, "200", 0,
	    "requests a client may make at once before the rate applies" },
	{ "rate", "denied_per_minute", K_UINT, O(rate_denied_per_min), 0,
	    1000000, "30", 0,
	    "denied requests per minute per client address (0 = no limit)" },
	{ "rate", "denied_burst", K_UINT, O(rate_denied_burst), 1, 10000000,
	    "20", 0, "denied requests a client may make at once" },
	{ "rate", "ipv6_48_factor", K_UINT, O(rate_v6_48_factor), 0, 65536,
	    "8", 0, "IPv6: a /48 together gets this many times a /64's "
	    "rate, burst and denials (0 = no /48 bucket)" },
	{ "rate", "table_size", K_UINT, O(rate_table_size), 1024, 16777216,
	    "65536", 0, "client addresses tracked (oldest evicted; restart "
	    "to change)" },
	{ "rate", "exempt", K_STR, O(rate_exempt), 0, 0,
	    "127.0.0.0/8, ::1/128", 0, "CIDRs never rate limited" },

	{ "audit", "backend", K_STR, O(audit_backend), 0, 0, "sqlite", 0,
	    "audit store: sqlite" },
	{ "audit", "db", K_STR, O(audit_db), 0, 0, "", 0,
	    "SQLite audit database (default <data_dir>/audit.db)" },
	{ "audit", "retention_days", K_UINT, O(retention_days), 0, 36500, "180",
	    0, "prune records older than this (0 = keep forever)" },
	{ "audit", "batch", K_UINT, O(audit_batch), 1, 100000, "4096", 0,
	    "most records committed in one transaction" },
	{ "audit", "dsn", K_STR, O(audit_dsn), 0, 0, "", 2,
	    "postgres backend: postgresql://user@host:port/db?... URI" },
	{ "audit", "instance_id", K_STR, O(audit_instance_id), 0, 0, "", 0,
	    "this instance's hash chain id (default: made once, <keys_dir>/instance.id)" },
	{ "audit", "key_file", K_STR, O(audit_key_file), 0, 0, "", 1,
	    "Ed25519 key signing checkpoints (default <keys_dir>/audit_ed25519.key)" },
	{ "audit", "pubkey_file", K_STR, O(audit_pub_file), 0, 0, "", 0,
	    "its public key, for verify (default <keys_dir>/audit_ed25519.pub)" },
	{ "audit", "checkpoint_file", K_STR, O(audit_checkpoint_file), 0, 0, "",
	    0, "signed checkpoints are appended here (default <data_dir>/audit-checkpoints.log)" },
	{ "audit", "checkpoint_records", K_UINT, O(checkpoint_records), 1,
	    10000000, "1000", 0, "sign a checkpoint after this many records" },
	{ "audit", "checkpoint_seconds", K_UINT, O(checkpoint_seconds), 1,
	    86400, "60", 0, "or after this many seconds with new records" },
	{ "audit", "min_free_mb", K_UINT, O(audit_min_free_mb), 0, 1000000,
	    "128", 0, "below this much free space (SQLite's file system) "
	    "refusal records are dropped; grants keep theirs (0 = off)" },
	{ "audit", "aggregate_seconds", K_UINT, O(audit_aggregate_s), 0, 3600,
	    "60", 0, "repeated refusals of one client: one record, then one "
	    "summary per this many seconds (0 = a record each)" },
	{ "audit", "checkpoint_prefix", K_STR, O(checkpoint_prefix), 0, 0, "",
	    0, "s3 store: also put each checkpoint to the bucket under this "
	    "prefix (empty: off)" },
	{ "audit", "checkpoint_retention_days", K_UINT,
	    O(checkpoint_retention_days), 0, 36500, "2557", 0,
	    "s3: Object Lock COMPLIANCE retention of checkpoint copies, days "
	    "(0 = none)" },

	{ "audit_out", "syslog", K_STR, O(out_syslog), 0, 0, "", 0,
	    "stream audit records to syslog (RFC 5424, octet-counted): "
	    "tcp://host:port or tls://host:port (empty: off)" },
	{ "audit_out", "syslog_ca_file", K_STR, O(out_syslog_ca_file), 0, 0,
	    "", 0, "tls:// syslog: CA certificates to verify the receiver "
	    "(empty: the system's)" },
	{ "audit_out", "syslog_cert_file", K_STR, O(out_syslog_cert_file), 0, 0,
	    "", 0, "tls:// syslog: this gatekeeper's client certificate (PEM, "
	    "chain after it) for receivers that require one (empty: none)" },
	{ "audit_out", "syslog_key_file", K_STR, O(out_syslog_key_file), 0, 0,
	    "", 1, "tls:// syslog: the client certificate's private key "
	    "(PEM)" },
	{ "audit_out", "webhook", K_STR, O(out_webhook), 0, 0, "", 2,
	    "POST audit records as JSON lines to this http(s):// URL "
	    "(empty: off)" },
	{ "audit_out", "webhook_token_file", K_STR, O(out_webhook_token_file),
	    0, 0, "", 1, "file holding a bearer token for the webhook "
	    "(mode 0600; empty: none)" },
	{ "audit_out", "webhook_ca_file", K_STR, O(out_webhook_ca_file), 0, 0,
	    "", 0, "https webhook: CA certificates (empty: the system's)" },
	{ "audit_out", "webhook_cert_file", K_STR, O(out_webhook_cert_file), 0,
	    0, "", 0, "https webhook: this gatekeeper's client certificate "
	    "(PEM) for receivers that require one (empty: none)" },
	{ "audit_out", "webhook_key_file", K_STR, O(out_webhook_key_file), 0,
	    0, "", 1, "https webhook: the client certificate's private key "
	    "(PEM)" },
	{ "audit_out", "state_dir", K_STR, O(out_state_dir), 0, 0, "", 0,
	    "where the last acknowledged sequence of each output is kept "
	    "(default <data_dir>)" },
	{ "audit_out", "batch", K_UINT, O(out_batch), 1, 10000, "500", 0,
	    "most records per send" },
	{ "audit_out", "retry_seconds", K_UINT, O(out_retry_seconds), 1, 3600,
	    "5", 0, "wait after a failed send or connection" },

	{ "admin", "token_file", K_STR, O(admin_token_file), 0, 0, "", 1,
	    "admin bearer token (default <keys_dir>/admin.token)" },
	{ "admin", "cidrs", K_STR, O(admin_cidrs), 0, 0, "127.0.0.1/32, ::1/128",
	    0, "addresses allowed to reach /admin, /healthz, /metrics" },

	{ "s3api", "enabled", K_BOOL, O(s3api_enabled), 0, 1, "false", 0,
	    "serve the S3-compatible endpoint for grants (gatekeeper grant)" },
	{ "s3api", "port", K_UINT, O(s3api_port), 0, 65535, "0", 0,
	    "its own TCP port on [server] listen (0: none; use host)" },
	{ "s3api", "host", K_STR, O(s3api_host), 0, 0, "", 0,
	    "requests to this host name (or BUCKET.host) on the main port "
	    "are S3 API requests" },
	{ "s3api", "bucket", K_STR, O(s3api_bucket), 0, 0, "gatekeeper", 0,
	    "the one bucket name clients see" },
	{ "s3api", "region", K_STR, O(s3api_region), 0, 0, "us-east-1", 0,
	    "region clients sign for" },
	{ "s3api", "key_file", K_STR, O(grant_key_file), 0, 0, "", 1,
	    "AES-256 key encrypting grant secrets (default <keys_dir>/grant.key)" },
	{ "s3api", "max_object_bytes", K_U64, O(s3api_max_object_bytes), 1,
	    5ull * 1024 * 1024 * MIB, "5368709120", 0,
	    "largest single PUT or upload part, bytes" },

	{ "s3", "bucket", K_STR, O(s3_bucket), 0, 0, "", 0,
	    "bucket name (store type s3)" },
	{ "s3", "region", K_STR, O(s3_region), 0, 0, "us-east-1", 0,
	    "bucket region (signed into every request)" },
	{ "s3", "endpoint", K_STR, O(s3_endpoint), 0, 0, "", 0,
	    "S3 URL, http(s)://host[:port] (default https://s3.<region>.amazonaws.com)" },
	{ "s3", "path_style", K_BOOL, O(s3_path_style), 0, 1, "false", 0,
	    "path-style URLs (endpoint/bucket/key) instead of bucket.endpoint/key" },
	{ "s3", "mode", K_STR, O(s3_mode), 0, 0, "redirect", 0,
	    "redirect (presigned URLs to the bucket) or proxy (the gatekeeper streams)" },
	{ "s3", "presign_ttl", K_I64, O(s3_presign_ttl), 1, 604800, "60", 0,
	    "lifetime of presigned GET URLs and POST policies, seconds" },
	{ "s3", "check_exists", K_BOOL, O(s3_check_exists), 0, 1, "true", 0,
	    "HEAD the object before redirecting, so a missing key is a 404 here" },
	{ "s3", "access_key_id", K_STR, O(s3_access_key_id), 0, 0, "", 0,
	    "access key id (with secret_key_file; else the other sources)" },
	{ "s3", "secret_key_file", K_STR, O(s3_secret_key_file), 0, 0, "", 1,
	    "file holding the secret access key (mode 0600)" },
	{ "s3", "session_token_file", K_STR, O(s3_session_token_file), 0, 0,
	    "", 1, "file holding a session token, for temporary keys" },
	{ "s3", "use_env", K_BOOL, O(s3_use_env), 0, 1, "true", 0,
	    "read AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN" },
	{ "s3", "credentials_file", K_STR, O(s3_credentials_file), 0, 0, "", 0,
	    "shared credentials file (default $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)" },
	{ "s3", "profile", K_STR, O(s3_profile), 0, 0, "", 0,
	    "profile in the credentials file (default $AWS_PROFILE or default)" },
	{ "s3", "container_credentials", K_BOOL, O(s3_container_credentials), 0,
	    1, "true", 0, "ECS container credential endpoint (AWS_CONTAINER_CREDENTIALS_*)" },
	{ "s3", "imds", K_BOOL, O(s3_imds), 0, 1, "true", 0,
	    "EC2 instance metadata (IMDSv2) credentials" },
	{ "s3", "imds_endpoint", K_STR, O(s3_imds_endpoint), 0, 0,
	    "http://169.254.169.254", 0, "instance metadata service URL" },
	{ "s3", "connect_timeout", K_UINT, O(s3_connect_timeout), 1, 300, "5", 0,
	    "seconds to connect to the endpoint" },
	{ "s3", "timeout", K_UINT, O(s3_timeout), 1, 3600, "30", 0,
	    "seconds for one S3 call (streams: longest stall)" },
	{ "s3", "retries", K_UINT, O(s3_retries), 0, 10, "2", 0,
	    "extra tries of idempotent calls after 5xx or network errors" },
	{ "s3", "kms_key_id", K_STR, O(s3_kms_key_id), 0, 0, "", 0,
	    "KMS key (id or ARN) for SSE-KMS; empty: SSE-S3 (AES256)" },
	{ "s3", "lifecycle_ia_days", K_UINT, O(s3_lc_ia_days), 0, 36500, "30",
	    0, "provision: uploads to STANDARD_IA after N days (0 = no)" },
	{ "s3", "lifecycle_onezone_days", K_UINT, O(s3_lc_onezone_days), 0,
	    36500, "120", 0,
	    "provision: uploads to ONEZONE_IA after N days (0 = no)" },
	{ "s3", "lifecycle_expire_days", K_UINT, O(s3_lc_expire_days), 0,
	    36500, "367", 0, "provision: uploads expire after N days (0 = never)" },
	{ "s3", "lifecycle_abort_days", K_UINT, O(s3_lc_abort_days), 0, 36500,
	    "7", 0, "provision: abort incomplete multipart uploads after N days "
	    "(0 = never)" },
	{ "s3", "policy_source_ip", K_BOOL, O(s3_policy_source_ip), 0, 1,
	    "false", 0, "provision: the bucket policy refuses object reads "
	    "(and uploads unless uploads_exempt_ip) from outside [acl] ip_allow" },
	{ "s3", "source_ip_extra", K_STR, O(s3_source_ip_extra), 0, 0, "", 0,
	    "provision: CIDRs the source-IP rule also allows (the gatekeepers' "
	    "own addresses)" },
};

const char *const cfg_levels[] = { "error", "warn", "info", "debug" };
const size_t cfg_nkeywords = GK_ARRAY_LEN(cfg_keywords);

struct load_ctx {
	gk_config *cfg;
	uint8_t seen[GK_ARRAY_LEN(cfg_keywords)];
	char msg[256];
	FILE *fp;
	int line;		/* of the line being parsed */
	int at_start;		/* the next read begins a line */
	int err_line;		/* of the first refused setting (0: none) */
};

static int
parse_bool(const char *v, int *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
	    strcmp(v, "on") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
	    strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else
		return GK_ERR_INVALID;
	return 0;
}

/* Sets one keyword from text; writes the problem into msg. */
static int
set_value(gk_config *cfg, const struct keyword *k, const char *v, char *msg,
    size_t msglen)
{
	char *p = (char *)cfg + k->off;
	uint64_t n;
	int b, i;

	switch (k->type) {
	case K_STR: {
		char *copy;

		if (strlen(v) > 4096) {
			snprintf(msg, msglen, "%s is too long", k->name);
			return GK_ERR_CONFIG;
		}
		if ((copy = strdup(v)) == NULL)
			return GK_ERR_NOMEM;
		free(*(char **)p);
		*(char **)p = copy;
		return 0;
	}
	case K_BOOL:
		if (parse_bool(v, &b) != 0) {
			snprintf(msg, msglen, "%s must be true or false", k->name);
			return GK_ERR_CONFIG;
		}
		*(int *)p = b;
		return 0;
	case K_LEVEL:
		for (i = 0; i < (int)GK_ARRAY_LEN(cfg_levels); i++) {
			if (strcmp(v, cfg_levels[i]) == 0) {
				*(int *)p = i;
				return 0;
			}
		}
		snprintf(msg, msglen, "%s must be error, warn, info or debug",
		    k->name);
		return GK_ERR_CONFIG;
	case K_UINT:
	case K_I64:
	case K_U64:
		if (gk_parse_u64(gk_slice_str(v), k->max, &n) != 0 ||
		    n < k->min) {
			snprintf(msg, msglen,
			    "%s must be a whole number from %llu to %llu", k->name,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
			return GK_ERR_CONFIG;
		}
		if (k->type == K_UINT)
			*(unsigned *)p = (unsigned)n;
		else if (k->type == K_I64)
			*(int64_t *)p = (int64_t)n;
		else
			*(uint64_t *)p = n;
		return 0;
	}
	return GK_ERR_INTERNAL;
}

static int
ini_setting(struct load_ctx *ctx, const char *section, const char *name,
    const char *value)
{
	const char *h;
	size_t i;

	/* inih ends a value at " ;" only: "port = 80  # note" would keep
	 * the note as part of the value */
	for (h = strchr(value, '#'); h != NULL; h = strchr(h + 1, '#')) {
		if (h > value && (h[-1] == ' ' || h[-1] == '\t')) {
			snprintf(ctx->msg, sizeof(ctx->msg), "[%s] %s: a "
			    "comment after a value starts with ';' ('#' only "
			    "starts a whole comment line)", section, name);
			return 0;
		}
	}
	if (strncmp(section, "vendor_key", 10) == 0)
		return cfg_vendor_line(ctx->cfg, section, name, value,
		    ctx->msg, sizeof(ctx->msg));
	for (i = 0; i < GK_ARRAY_LEN(cfg_keywords); i++) {
		if (strcmp(cfg_keywords[i].section, section) != 0 ||
		    strcmp(cfg_keywords[i].name, name) != 0)
			continue;
		if (ctx->seen[i]) {
			snprintf(ctx->msg, sizeof(ctx->msg),
			    "[%s] %s is set twice", section, name);
			return 0;
		}
		ctx->seen[i] = 1;
		if (set_value(ctx->cfg, &cfg_keywords[i], value, ctx->msg,
		    sizeof(ctx->msg)) != 0) {
			if (ctx->msg[0] == '\0')
				snprintf(ctx->msg, sizeof(ctx->msg),
				    "out of memory");
			return 0;
		}
		return 1;
	}
	snprintf(ctx->msg, sizeof(ctx->msg), "unknown setting [%s] %s",
	    section, name);
	return 0;
}

/*
 * inih goes on after a refused line and returns the first bad line's
 * number: the message kept is the one of that line, and a later line
 * must not replace it (nor stand in for an earlier syntax error).
 */
static int
on_ini_line(void *user, const char *section, const char *name,
    const char *value)
{
	struct load_ctx *ctx = user;

	if (ctx->err_line != 0)
		return 1;
	if (ini_setting(ctx, section, name, value))
		return 1;
	ctx->err_line = ctx->line;
	return 0;
}

/* inih's reader: fgets, counting lines for on_ini_line. */
static char *
read_line(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	char *r = fgets(str, num, ctx->fp);

	if (r != NULL) {
		if (ctx->at_start)
			ctx->line++;
		ctx->at_start = strchr(r, '\n') != NULL;
	}
	return r;
}

/* Fills an empty path setting with dir + "/" + leaf. */
static int
default_path(char **field, const char *dir, const char *leaf)
{
	gk_buf b;
	int r;

	if (*field != NULL && (*field)[0] != '\0')
		return 0;
	gk_buf_init(&b, 8192);
	if ((r = gk_buf_printf(&b, "%s/%s", dir, leaf)) != 0) {
		gk_buf_release(&b);
		return r;
	}
	free(*field);
	*field = gk_buf_detach(&b, NULL);
	return 0;
}

/*
 * ini_parse() opens a directory without complaint and reads nothing from
 * it, so a directory given as the config would mean the embedded
 * defaults: it is refused, like a file that cannot be read to its end.
 * -1 with errno set when the file cannot be opened or read.
 */
static int
parse_file(const char *path, struct load_ctx *ctx)
{
	struct stat st;
	FILE *fp;
	int line, e = 0;

	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	if (fstat(fileno(fp), &st) != 0)
		st.st_mode = 0;
	if (S_ISDIR(st.st_mode)) {
		line = -1;
		e = EISDIR;
	} else {
		ctx->fp = fp;
		ctx->line = 0;
		ctx->at_start = 1;
		line = ini_parse_stream(read_line, ctx, on_ini_line, ctx);
		if (line == 0 && ferror(fp)) {
			line = -1;
			e = EIO;
		} else if (line > 0 && line != ctx->err_line) {
			/* inih's own: a line that is no section nor setting */
			ctx->msg[0] = '\0';
		}
	}
	fclose(fp);
	if (line == -1)
		errno = e;
	return line;
}

int
cfg_load(const char *path, int load_keys, gk_config **out, char *err,
    size_t errlen)
{
	struct load_ctx ctx;
	gk_config *cfg;
	gk_buf url;
	size_t i;
	int r = GK_ERR_CONFIG, line;

	err[0] = '\0';
	memset(&ctx, 0, sizeof(ctx));
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return GK_ERR_NOMEM;
	}
	ctx.cfg = cfg;
	for (i = 0; i < GK_ARRAY_LEN(cfg_keywords); i++) {
		if (set_value(cfg, &cfg_keywords[i], cfg_keywords[i].def, ctx.msg,
		    sizeof(ctx.msg)) != 0) {
			snprintf(err, errlen, "internal: bad default for %s",
			    cfg_keywords[i].name);
			r = GK_ERR_INTERNAL;
			goto out;
		}
	}
	if (path != NULL) {
		if ((cfg->path = strdup(path)) == NULL)
			goto nomem;
		if ((line = parse_file(path, &ctx)) == -1) {
			snprintf(err, errlen, "%s: cannot open: %s", path,
			    strerror(errno));
			goto out;
		}
		if (line == -2)
			goto nomem;
		if (line != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, line,
			    ctx.msg[0] ? ctx.msg : "syntax error");
			goto out;
		}
	}
	if (default_path(&cfg->keys_dir, cfg->data_dir, "keys") != 0 ||
	    default_path(&cfg->v1_key_file, cfg->keys_dir, "v1.key") != 0 ||
	    default_path(&cfg->internal_key_file, cfg->keys_dir,
	    "internal.key") != 0 ||
	    default_path(&cfg->master_key_file, cfg->keys_dir,
	    "master.key") != 0 ||
	    default_path(&cfg->grant_key_file, cfg->keys_dir,
	    "grant.key") != 0 ||
	    default_path(&cfg->admin_token_file, cfg->keys_dir,
	    "admin.token") != 0 ||
	    default_path(&cfg->store_dir, cfg->data_dir, "objects") != 0 ||
	    default_path(&cfg->audit_db, cfg->data_dir, "audit.db") != 0 ||
	    default_path(&cfg->audit_key_file, cfg->keys_dir,
	    "audit_ed25519.key") != 0 ||
	    default_path(&cfg->audit_pub_file, cfg->keys_dir,
	    "audit_ed25519.pub") != 0 ||
	    default_path(&cfg->audit_checkpoint_file, cfg->data_dir,
	    "audit-checkpoints.log") != 0)
		goto nomem;
	if (cfg->public_url[0] == '\0') {
		gk_buf_init(&url, 1024);
		if (gk_buf_printf(&url, strchr(cfg->listen, ':') ?
		    "%s://[%s]:%u" : "%s://%s:%u",
		    cfg->tls_cert[0] != '\0' ? "https" : "http", cfg->listen,
		    cfg->port) != 0) {
			gk_buf_release(&url);
			goto nomem;
		}
		free(cfg->public_url);
		cfg->public_url = gk_buf_detach(&url, NULL);
	}
	if ((r = cfg_geo_default(cfg, err, errlen)) != 0)
		goto out;
	if ((r = cfg_validate(cfg, err, errlen)) != 0)
		goto out;
	if (load_keys) {
		if ((r = cfg_secret_load(cfg->v1_key_file, CFG_SECRET_TEXT,
		    &cfg->v1_key, err, errlen)) != 0 ||
		    (r = cfg_secret_load(cfg->internal_key_file,
		    CFG_SECRET_HEX32, &cfg->internal_key, err, errlen)) != 0 ||
		    (r = cfg_secret_load(cfg->master_key_file, CFG_SECRET_HEX32,
		    &cfg->master_key, err, errlen)) != 0 ||
		    (r = cfg_secret_load(cfg->admin_token_file,
		    CFG_SECRET_TEXT, &cfg->admin_token, err, errlen)) != 0 ||
		    (r = cfg_vendor_load(cfg, err, errlen)) != 0 ||
		    (r = cfg_secret_load(cfg->audit_key_file, CFG_SECRET_HEX32,
		    &cfg->audit_key, err, errlen)) != 0)
			goto out;
		/* needed with the endpoint on; else only if made (grant) */
		if ((cfg->s3api_enabled ||
		    access(cfg->grant_key_file, F_OK) == 0) &&
		    (r = cfg_secret_load(cfg->grant_key_file, CFG_SECRET_HEX32,
		    &cfg->grant_key, err, errlen)) != 0)
			goto out;
	}
	*out = cfg;
	cfg = NULL; /* transferred */
	r = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
	r = GK_ERR_NOMEM;
out:
	cfg_free(cfg);
	return r;
}

void
cfg_free(gk_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < GK_ARRAY_LEN(cfg_keywords); i++) {
		if (cfg_keywords[i].type == K_STR)
			free(*(char **)((char *)cfg + cfg_keywords[i].off));
	}
	free(cfg->path);
	cfg_secret_free(&cfg->v1_key);
	cfg_secret_free(&cfg->internal_key);
	cfg_secret_free(&cfg->master_key);
	cfg_secret_free(&cfg->admin_token);
	for (i = 0; i < cfg->n_vendor_keys; i++) {
		free(cfg->vendor_keys[i].kid);
		free(cfg->vendor_keys[i].public_key);
		free(cfg->vendor_keys[i].public_key_file);
		free(cfg->vendor_keys[i].public_pem);
		free(cfg->vendor_keys[i].secret_file);
		cfg_secret_free(&cfg->vendor_keys[i].secret);
	}
	free(cfg->vendor_keys);
	cfg_secret_free(&cfg->audit_key);
	cfg_secret_free(&cfg->grant_key);
	free(cfg);
}

const char *
cfg_v1_warning(const gk_config *cfg)
{
	if (!cfg->v1 || cfg->v1_roots[0] != '\0')
		return NULL;
	return "protocol v1 is on and [gate] v1_roots is empty: a v1 "
	    "signature for root 'a', folder 'bc' also opens root 'ab', "
	    "folder 'c' (v1 signs root and folder with no separator); list "
	    "the roots in v1_roots, or use v2 and set v1 = false";
}
