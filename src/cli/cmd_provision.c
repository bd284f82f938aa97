/* cmd_provision.c - gatekeeper provision: harden the customer's bucket. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "s3/s3.h"

static const char usage_text[] =
    "usage: gatekeeper provision [--config FILE] [--dry-run]\n"
    "\n"
    "Sets up the [s3] bucket through the S3 API, as the original installer\n"
    "did and more, reporting each call:\n"
    "  0. create the bucket if it is missing (in [s3] region; with Object\n"
    "     Lock when [audit] checkpoint_prefix is set)\n"
    "  1. block all public access (PutPublicAccessBlock)\n"
    "  2. default encryption: AES256, or aws:kms with [s3] kms_key_id\n"
    "  3. versioning (PutBucketVersioning)\n"
    "  4. Object Lock on, for COMPLIANCE retention of the checkpoint\n"
    "     copies (only with checkpoint_prefix and checkpoint_retention_days)\n"
    "  5. CORS: GET, HEAD, POST from the [acl] origins (PutBucketCors)\n"
    "  6. lifecycle: the uploads prefix to STANDARD_IA after\n"
    "     lifecycle_ia_days (30), ONEZONE_IA after lifecycle_onezone_days\n"
    "     (120), expired after lifecycle_expire_days (367); incomplete\n"
    "     multipart uploads aborted after lifecycle_abort_days (7)\n"
    "  7. bucket policy: refuse requests without TLS and uploads with another\n"
    "     encryption; with [s3] policy_source_ip, refuse object reads (and\n"
    "     uploads unless uploads_exempt_ip) from outside [acl] ip_allow and\n"
    "     [s3] source_ip_extra\n"
    "then prints the least-privilege IAM policy the gatekeeper's own keys\n"
    "need (this bucket only). Run it with the bucket owner's credentials\n"
    "(the same sources as the gatekeeper: [s3] keys, AWS_* variables, the\n"
    "shared credentials file, instance roles). Every call is idempotent:\n"
    "running it again changes nothing. Steps 1-7 replace the bucket's\n"
    "existing settings of the same kind (its bucket policy included).\n"
    "--dry-run prints the calls, headers and bodies without sending them.\n"
    "Exit 0 when every call succeeded or the server said it does not\n"
    "implement it (reported as 'not supported'), 1 otherwise.\n";

#define XMLNS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

struct step {
	const char *name;
	const char *query;	/* the subresource, "cors=", ... */
	gk_buf body;
	int skip;		/* nothing to do with this config */
	const char *why_skip;
};

enum { ST_PAB, ST_ENC, ST_VER, ST_LOCK, ST_CORS, ST_LC, ST_POLICY, ST_N };

static int
cors_origin(void *arg, gk_slice item)
{
	gk_buf *b = arg;
	int r;

	if ((r = gk_buf_append_str(b, "<AllowedOrigin>")) != 0)
		return r;
	/* ".example.com" (any subdomain) is S3's "https://" "*" ".example.com" */
	if (item.len > 1 && item.p[0] == '.' &&
	    ((r = gk_buf_append_str(b, "https://*")) != 0))
		return r;
	if ((r = s3_xml_escape(b, item)) != 0)
		return r;
	return gk_buf_append_str(b, "</AllowedOrigin>");
}

static int
build_lifecycle(const gk_config *cfg, gk_buf *b, int *rules)
{
	int r;

	*rules = 0;
	if ((r = gk_buf_append_str(b, "<LifecycleConfiguration " XMLNS
	    ">")) != 0)
		return r;
	if (cfg->uploads_prefix[0] != '\0' && (cfg->s3_lc_ia_days ||
	    cfg->s3_lc_onezone_days || cfg->s3_lc_expire_days)) {
		if ((r = gk_buf_append_str(b, "<Rule><ID>gatekeeper-uploads</ID>"
		    "<Filter><Prefix>")) != 0 ||
		    (r = s3_xml_escape(b, gk_slice_str(cfg->uploads_prefix))) != 0 ||
		    (r = gk_buf_append_str(b, "/</Prefix></Filter>"
		    "<Status>Enabled</Status>")) != 0)
			return r;
		if (cfg->s3_lc_ia_days && (r = gk_buf_printf(b, "<Transition>"
		    "<Days>%u</Days><StorageClass>STANDARD_IA</StorageClass>"
		    "</Transition>", cfg->s3_lc_ia_days)) != 0)
			return r;
		if (cfg->s3_lc_onezone_days && (r = gk_buf_printf(b,
		    "<Transition><Days>%u</Days><StorageClass>ONEZONE_IA"
		    "</StorageClass></Transition>",
		    cfg->s3_lc_onezone_days)) != 0)
			return r;
		if (cfg->s3_lc_expire_days && (r = gk_buf_printf(b,
		    "<Expiration><Days>%u</Days></Expiration>",
		    cfg->s3_lc_expire_days)) != 0)
			return r;
		if ((r = gk_buf_append_str(b, "</Rule>")) != 0)
			return r;
		(*rules)++;
	}
	if (cfg->s3_lc_abort_days) {
		if ((r = gk_buf_printf(b, "<Rule><ID>gatekeeper-abort-multipart"
		    "</ID><Filter><Prefix></Prefix></Filter><Status>Enabled"
		    "</Status><AbortIncompleteMultipartUpload>"
		    "<DaysAfterInitiation>%u</DaysAfterInitiation>"
		    "</AbortIncompleteMultipartUpload></Rule>",
		    cfg->s3_lc_abort_days)) != 0)
			return r;
		(*rules)++;
	}
	return gk_buf_append_str(b, "</LifecycleConfiguration>");
}

struct cidr_json {
	gk_buf *b;
	int n;
};

/* Appends one CIDR as a JSON string (a bare address gets /32 or /128). */
static int
cidr_item(void *arg, gk_slice item)
{
	struct cidr_json *cj = arg;
	size_t i;

	for (i = 0; i < item.len; i++) {	/* CIDR characters only */
		uint8_t ch = item.p[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		    (ch >= 'A' && ch <= 'F') || ch == '.' || ch == ':' ||
		    ch == '/'))
			return GK_ERR_INVALID;
	}
	return gk_buf_printf(cj->b, "%s\"%.*s%s\"", cj->n++ ? ", " : "",
	    (int)item.len, (const char *)item.p,
	    memchr(item.p, '/', item.len) != NULL ? "" :
	    memchr(item.p, ':', item.len) != NULL ? "/128" : "/32");
}

static int
count_item(void *arg, gk_slice item)
{
	(void)item;
	(*(int *)arg)++;
	return 0;
}

static int
build_policy(const gk_config *cfg, gk_buf *b)
{
	const char *bk = cfg->s3_bucket;
	const char *sse = cfg->s3_kms_key_id[0] ? "aws:kms" : "AES256";
	struct cidr_json cj = { b, 0 };
	int r, ndeny;

	if ((r = gk_buf_printf(b, "{\"Version\": \"2012-10-17\", "
	    "\"Statement\": [{\"Sid\": \"DenyInsecureTransport\", "
	    "\"Effect\": \"Deny\", \"Principal\": \"*\", \"Action\": \"s3:*\", "
	    "\"Resource\": [\"arn:aws:s3:::%s\", \"arn:aws:s3:::%s/*\"], "
	    "\"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"false\"}}}, "
	    "{\"Sid\": \"DenyOtherEncryption\", \"Effect\": \"Deny\", "
	    "\"Principal\": \"*\", \"Action\": \"s3:PutObject\", "
	    "\"Resource\": \"arn:aws:s3:::%s/*\", \"Condition\": "
	    "{\"StringNotEqualsIfExists\": "
	    "{\"s3:x-amz-server-side-encryption\": \"%s\"}}}", bk, bk, bk,
	    sse)) != 0)
		return r;
	if (cfg->s3_kms_key_id[0] != '\0' && (r = gk_buf_printf(b,
	    ", {\"Sid\": \"DenyOtherKmsKey\", \"Effect\": \"Deny\", "
	    "\"Principal\": \"*\", \"Action\": \"s3:PutObject\", "
	    "\"Resource\": \"arn:aws:s3:::%s/*\", \"Condition\": "
	    "{\"StringNotEqualsIfExists\": "
	    "{\"s3:x-amz-server-side-encryption-aws-kms-key-id\": \"%s\"}}}",
	    bk, cfg->s3_kms_key_id)) != 0)
		return r;
	if (cfg->s3_policy_source_ip) {
		if ((r = gk_buf_printf(b, ", {\"Sid\": \"DenyOutsideIpAllowList\", "
		    "\"Effect\": \"Deny\", \"Principal\": \"*\", \"Action\": "
		    "%s, \"Resource\": \"arn:aws:s3:::%s/*\", \"Condition\": "
		    "{\"NotIpAddress\": {\"aws:SourceIp\": [",
		    cfg->uploads_exempt_ip ? "\"s3:GetObject\"" :
		    "[\"s3:GetObject\", \"s3:PutObject\"]", bk)) != 0 ||
		    (r = gk_list_each(cfg->ip_allow, cidr_item, &cj)) != 0 ||
		    (r = gk_list_each(cfg->s3_source_ip_extra, cidr_item,
		    &cj)) != 0 ||
		    (r = gk_buf_append_str(b, "]}}}")) != 0)
			return r;
		/* deny wins, as at the gatekeeper: the inline deny list
		 * (list files can be too long for a bucket policy) for
		 * reads and uploads, uploads_exempt_ip or not */
		ndeny = 0;
		(void)gk_list_each(cfg->ip_deny, count_item, &ndeny);
		cj.n = 0;
		if (ndeny > 0 && ((r = gk_buf_printf(b,
		    ", {\"Sid\": \"DenyListedIps\", \"Effect\": \"Deny\", "
		    "\"Principal\": \"*\", \"Action\": [\"s3:GetObject\", "
		    "\"s3:PutObject\"], \"Resource\": \"arn:aws:s3:::%s/*\", "
		    "\"Condition\": {\"IpAddress\": {\"aws:SourceIp\": [",
		    bk)) != 0 ||
		    (r = gk_list_each(cfg->ip_deny, cidr_item, &cj)) != 0 ||
		    (r = gk_buf_append_str(b, "]}}}")) != 0))
			return r;
	}
	return gk_buf_append_str(b, "]}");
}

static int
build(const gk_config *cfg, struct step *st)
{
	gk_buf *b;
	int r, rules;

	st[ST_PAB].name = "block all public access";
	st[ST_PAB].query = "publicAccessBlock=";
	if ((r = gk_buf_append_str(&st[ST_PAB].body,
	    "<PublicAccessBlockConfiguration " XMLNS ">"
	    "<BlockPublicAcls>true</BlockPublicAcls>"
	    "<IgnorePublicAcls>true</IgnorePublicAcls>"
	    "<BlockPublicPolicy>true</BlockPublicPolicy>"
	    "<RestrictPublicBuckets>true</RestrictPublicBuckets>"
	    "</PublicAccessBlockConfiguration>")) != 0)
		return r;
	b = &st[ST_ENC].body;
	st[ST_ENC].query = "encryption=";
	if (cfg->s3_kms_key_id[0] != '\0') {
		st[ST_ENC].name = "default encryption aws:kms";
		if ((r = gk_buf_append_str(b, "<ServerSideEncryptionConfiguration "
		    XMLNS "><Rule><ApplyServerSideEncryptionByDefault>"
		    "<SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>")) != 0 ||
		    (r = s3_xml_escape(b, gk_slice_str(cfg->s3_kms_key_id))) != 0 ||
		    (r = gk_buf_append_str(b, "</KMSMasterKeyID>"
		    "</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true"
		    "</BucketKeyEnabled></Rule>"
		    "</ServerSideEncryptionConfiguration>")) != 0)
			return r;
	} else {
		st[ST_ENC].name = "default encryption AES256";
		if ((r = gk_buf_append_str(b, "<ServerSideEncryptionConfiguration "
		    XMLNS "><Rule><ApplyServerSideEncryptionByDefault>"
		    "<SSEAlgorithm>AES256</SSEAlgorithm>"
		    "</ApplyServerSideEncryptionByDefault></Rule>"
		    "</ServerSideEncryptionConfiguration>")) != 0)
			return r;
	}
	st[ST_VER].name = "versioning";
	st[ST_VER].query = "versioning=";
	if ((r = gk_buf_append_str(&st[ST_VER].body, "<VersioningConfiguration "
	    XMLNS "><Status>Enabled</Status></VersioningConfiguration>")) != 0)
		return r;
	st[ST_LOCK].name = "Object Lock (checkpoint copies kept in COMPLIANCE "
	    "mode)";
	st[ST_LOCK].query = "object-lock=";
	if (cfg->checkpoint_prefix[0] == '\0' ||
	    cfg->checkpoint_retention_days == 0) {
		st[ST_LOCK].skip = 1;
		st[ST_LOCK].why_skip = "no [audit] checkpoint_prefix or "
		    "checkpoint_retention_days";
	}
	if ((r = gk_buf_append_str(&st[ST_LOCK].body, "<ObjectLockConfiguration "
	    XMLNS "><ObjectLockEnabled>Enabled</ObjectLockEnabled>"
	    "</ObjectLockConfiguration>")) != 0)
		return r;
	st[ST_CORS].name = "CORS for GET, HEAD, POST from [acl] origins";
	st[ST_CORS].query = "cors=";
	b = &st[ST_CORS].body;
	if ((r = gk_buf_append_str(b, "<CORSConfiguration " XMLNS
	    "><CORSRule>")) != 0 ||
	    (r = gk_list_each(cfg->origins, cors_origin, b)) != 0 ||
	    (r = gk_buf_append_str(b, "<AllowedMethod>GET</AllowedMethod>"
	    "<AllowedMethod>HEAD</AllowedMethod>"
	    "<AllowedMethod>POST</AllowedMethod>"
	    "<AllowedHeader>*</AllowedHeader>"
	    "<ExposeHeader>ETag</ExposeHeader>"
	    "<MaxAgeSeconds>3000</MaxAgeSeconds>"
	    "</CORSRule></CORSConfiguration>")) != 0)
		return r;
	st[ST_LC].name = "lifecycle";
	st[ST_LC].query = "lifecycle=";
	if ((r = build_lifecycle(cfg, &st[ST_LC].body, &rules)) != 0)
		return r;
	if (rules == 0) {
		st[ST_LC].skip = 1;
		st[ST_LC].why_skip = "every lifecycle_*_days is 0";
	}
	st[ST_POLICY].name = cfg->s3_policy_source_ip ?
	    "bucket policy (TLS only, encrypted uploads, source IP)" :
	    "bucket policy (TLS only, encrypted uploads)";
	st[ST_POLICY].query = "policy=";
	return build_policy(cfg, &st[ST_POLICY].body);
}

/* One PUT of a bucket setting; prints its outcome. Returns 1 if failed. */
static int
apply(s3_client *c, int n, const struct step *st)
{
	s3_call call;
	long status = 0;
	int r;

	/* the client adds Content-MD5, which S3 requires on these PUTs */
	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.query = st->query;
	call.body = gk_slice_of(st->body.data, st->body.len);
	call.idempotent = 1;
	r = s3_client_call(c, &call, &status);
	if (r == 0) {
		printf("%d. %s: ok\n", n, st->name);
		return 0;
	}
	if (status == 501 || status == 405 || (status == 400 &&
	    strstr(s3_last_error(), "NotImplemented") != NULL)) {
		printf("%d. %s: not supported by this server (%s)\n", n,
		    st->name, s3_last_error());
		return 0;
	}
	printf("%d. %s: FAILED: %s\n", n, st->name, s3_last_error());
	return 1;
}

/* Step 0: HEAD the bucket; create it when it is missing. */
static int
ensure_bucket(const gk_config *cfg, s3_client *c, int dry)
{
	int lock = cfg->checkpoint_prefix[0] != '\0' &&
	    cfg->checkpoint_retention_days > 0;
	int other_region = strcmp(cfg->s3_region, "us-east-1") != 0;
	s3_header h[1] = { { gk_slice_str("x-amz-bucket-object-lock-enabled"),
		gk_slice_str("true") } };
	gk_buf body;
	s3_call call;
	long status = 0;
	int r, rc = 1;

	gk_buf_init(&body, 1024);
	if (other_region && ((r = gk_buf_append_str(&body,
	    "<CreateBucketConfiguration " XMLNS "><LocationConstraint>")) != 0 ||
	    (r = s3_xml_escape(&body, gk_slice_str(cfg->s3_region))) != 0 ||
	    (r = gk_buf_append_str(&body, "</LocationConstraint>"
	    "</CreateBucketConfiguration>")) != 0)) {
		printf("0. bucket %s: FAILED: internal error\n", cfg->s3_bucket);
		goto out;
	}
	if (dry) {
		printf("0. bucket %s: HEAD /; if missing: PUT /%s\n   %s\n",
		    cfg->s3_bucket, lock ?
		    " with x-amz-bucket-object-lock-enabled: true" : "",
		    body.len ? (char *)body.data : "(no body: us-east-1)");
		rc = 0;
		goto out;
	}
	memset(&call, 0, sizeof(call));
	call.method = "HEAD";
	call.idempotent = 1;
	r = s3_client_call(c, &call, &status);
	if (r == 0) {
		printf("0. bucket %s: exists\n", cfg->s3_bucket);
		rc = 0;
		goto out;
	}
	if (r != GK_ERR_NOT_FOUND) {
		printf("0. bucket %s: FAILED: HEAD answered %ld%s\n",
		    cfg->s3_bucket, status, status == 301 ?
		    " (the bucket is in another region than [s3] region)" :
		    status == 403 ? " (it belongs to someone else, or these "
		    "credentials may not see it)" : "");
		goto out;
	}
	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.body = gk_slice_of(body.data, body.len);
	call.headers = h;
	call.n_headers = lock ? 1 : 0;
	if (s3_client_call(c, &call, &status) != 0) {
		printf("0. bucket %s: FAILED: %s\n", cfg->s3_bucket,
		    s3_last_error());
		goto out;
	}
	printf("0. bucket %s: created in %s%s\n", cfg->s3_bucket,
	    cfg->s3_region, lock ? " with Object Lock" : "");
	rc = 0;
out:
	gk_buf_release(&body);
	return rc;
}

static void
print_policy(const gk_config *cfg, FILE *fp)
{
	const char *b = cfg->s3_bucket;

	fprintf(fp, "\nLeast-privilege IAM policy for the gatekeeper's own "
	    "keys (bucket %s only):\n", b);
	fprintf(fp, "{\n"
	    "  \"Version\": \"2012-10-17\",\n"
	    "  \"Statement\": [\n"
	    "    {\n"
	    "      \"Sid\": \"GatekeeperRead\",\n"
	    "      \"Effect\": \"Allow\",\n"
	    "      \"Action\": [\"s3:GetObject\"],\n"
	    "      \"Resource\": \"arn:aws:s3:::%s/*\"\n"
	    "    },\n"
	    "    {\n"
	    "      \"Sid\": \"GatekeeperUpload\",\n"
	    "      \"Effect\": \"Allow\",\n"
	    "      \"Action\": [\"s3:PutObject\", \"s3:AbortMultipartUpload\"],\n"
	    "      \"Resource\": \"arn:aws:s3:::%s/%s%s*\"\n"
	    "    },\n", b, b, cfg->uploads_prefix,
	    cfg->uploads_prefix[0] ? "/" : "");
	if (cfg->checkpoint_prefix[0] != '\0')
		fprintf(fp, "    {\n"
		    "      \"Sid\": \"GatekeeperCheckpoints\",\n"
		    "      \"Effect\": \"Allow\",\n"
		    "      \"Action\": [\"s3:PutObject\"%s],\n"
		    "      \"Resource\": \"arn:aws:s3:::%s/%s/*\"\n"
		    "    },\n", cfg->checkpoint_retention_days ?
		    ", \"s3:PutObjectRetention\"" : "", b,
		    cfg->checkpoint_prefix);
	if (cfg->s3_kms_key_id[0] != '\0')
		fprintf(fp, "    {\n"
		    "      \"Sid\": \"GatekeeperKms\",\n"
		    "      \"Effect\": \"Allow\",\n"
		    "      \"Action\": [\"kms:GenerateDataKey\", \"kms:Decrypt\"],\n"
		    "      \"Resource\": \"%s%s\"\n"
		    "    },\n", strncmp(cfg->s3_kms_key_id, "arn:", 4) == 0 ?
		    "" : "arn:aws:kms:*:*:key/", cfg->s3_kms_key_id);
	fprintf(fp, "    {\n"
	    "      \"Sid\": \"GatekeeperList\",\n"
	    "      \"Effect\": \"Allow\",\n"
	    "      \"Action\": [\"s3:ListBucket\"],\n"
	    "      \"Resource\": \"arn:aws:s3:::%s\"\n"
	    "    }\n"
	    "  ]\n"
	    "}\n", b);
}

int
cmd_provision(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct step st[ST_N];
	const char *path = NULL;
	gk_config *cfg = NULL;
	s3_client *c = NULL;
	char err[512];
	size_t i;
	int opt, dry = 0, rc = 1, failed = 0;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:nh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'n': dry = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return cli_bad_option("provision", opt, argv);
		}
	}
	if (optind != argc) {
		cli_error("provision", "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	memset(st, 0, sizeof(st));
	for (i = 0; i < GK_ARRAY_LEN(st); i++)
		gk_buf_init(&st[i].body, GK_CAP_SMALL);
	if (cli_load_config("provision", path, 0, &cfg) != 0)
		goto out;
	if (cfg->s3_bucket[0] == '\0') {
		cli_error("provision", "[s3] bucket is not set");
		goto out;
	}
	if (build(cfg, st) != 0) {
		cli_error("provision", "cannot build the requests");
		goto out;
	}
	if (!dry && cfg_s3_client(cfg, &c, err, sizeof(err)) != 0) {
		cli_error("provision", "%s", err);
		goto out;
	}
	/* the default endpoint as cfg_s3_opts makes it */
	if (cfg->s3_endpoint[0] != '\0')
		printf("provisioning bucket %s in %s at %s%s\n",
		    cfg->s3_bucket, cfg->s3_region, cfg->s3_endpoint,
		    dry ? " (dry run: nothing is sent)" : "");
	else
		printf("provisioning bucket %s in %s at "
		    "https://s3.%s.amazonaws.com%s\n", cfg->s3_bucket,
		    cfg->s3_region, cfg->s3_region,
		    dry ? " (dry run: nothing is sent)" : "");
	if (ensure_bucket(cfg, c, dry) != 0) {
		failed++;
		goto policy;	/* nothing to configure */
	}
	for (i = 0; i < GK_ARRAY_LEN(st); i++) {
		if (st[i].skip) {
			printf("%zu. %s: skipped (%s)\n", i + 1, st[i].name,
			    st[i].why_skip);
			continue;
		}
		if (dry) {
			printf("%zu. %s: PUT /?%.*s (Content-MD5)\n   %s\n",
			    i + 1, st[i].name,
			    (int)(strlen(st[i].query) - 1), st[i].query,
			    (char *)st[i].body.data);
			continue;
		}
		failed += apply(c, (int)(i + 1), &st[i]);
	}
policy:
	print_policy(cfg, stdout);
	rc = failed ? 1 : 0;
out:
	for (i = 0; i < GK_ARRAY_LEN(st); i++)
		gk_buf_release(&st[i].body);
	s3_client_free(c);
	cfg_free(cfg);
	return rc;
}
