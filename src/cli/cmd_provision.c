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
    "Applies to the [s3] bucket, through the S3 API, what the original\n"
    "installer did, and reports each call:\n"
    "  1. block all public access (PutPublicAccessBlock)\n"
    "  2. default encryption AES256 (PutBucketEncryption)\n"
    "  3. CORS: GET, HEAD, POST from the [acl] origins (PutBucketCors)\n"
    "  4. lifecycle (PutBucketLifecycleConfiguration): the uploads prefix\n"
    "     to STANDARD_IA after 30 days, ONEZONE_IA after 120, expired after\n"
    "     367; incomplete multipart uploads aborted after 7 days\n"
    "then prints the least-privilege IAM policy the gatekeeper's own keys\n"
    "need (this bucket only). Run it with the bucket owner's credentials\n"
    "(the same sources as the gatekeeper: [s3] keys, AWS_* variables, the\n"
    "shared credentials file, instance roles).\n"
    "--dry-run prints the calls and their bodies without sending them.\n"
    "Exit 0 when every call succeeded or the server said it does not\n"
    "implement it (reported as 'not supported'), 1 otherwise.\n";

#define XMLNS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

struct step {
	const char *name;
	const char *query;
	gk_buf body;
};

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
build(const gk_config *cfg, struct step *st)
{
	gk_buf *b;
	int r;

	st[0].name = "block all public access";
	st[0].query = "publicAccessBlock=";
	if ((r = gk_buf_append_str(&st[0].body,
	    "<PublicAccessBlockConfiguration " XMLNS ">"
	    "<BlockPublicAcls>true</BlockPublicAcls>"
	    "<IgnorePublicAcls>true</IgnorePublicAcls>"
	    "<BlockPublicPolicy>true</BlockPublicPolicy>"
	    "<RestrictPublicBuckets>true</RestrictPublicBuckets>"
	    "</PublicAccessBlockConfiguration>")) != 0)
		return r;
	st[1].name = "default encryption AES256";
	st[1].query = "encryption=";
	if ((r = gk_buf_append_str(&st[1].body,
	    "<ServerSideEncryptionConfiguration " XMLNS "><Rule>"
	    "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256"
	    "</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
	    "</ServerSideEncryptionConfiguration>")) != 0)
		return r;
	st[2].name = "CORS for GET, HEAD, POST from [acl] origins";
	st[2].query = "cors=";
	b = &st[2].body;
	if ((r = gk_buf_append_str(b, "<CORSConfiguration " XMLNS
	    "><CORSRule>")) != 0 ||
	    (r = cfg_list_each(cfg->origins, cors_origin, b)) != 0 ||
	    (r = gk_buf_append_str(b, "<AllowedMethod>GET</AllowedMethod>"
	    "<AllowedMethod>HEAD</AllowedMethod>"
	    "<AllowedMethod>POST</AllowedMethod>"
	    "<AllowedHeader>*</AllowedHeader>"
	    "<ExposeHeader>ETag</ExposeHeader>"
	    "<MaxAgeSeconds>3000</MaxAgeSeconds>"
	    "</CORSRule></CORSConfiguration>")) != 0)
		return r;
	st[3].name = "lifecycle (uploads: IA 30 d, One Zone-IA 120 d, "
	    "expire 367 d; abort multipart 7 d)";
	st[3].query = "lifecycle=";
	b = &st[3].body;
	if ((r = gk_buf_append_str(b, "<LifecycleConfiguration " XMLNS
	    ">")) != 0)
		return r;
	if (cfg->uploads_prefix[0] != '\0' &&
	    ((r = gk_buf_append_str(b, "<Rule><ID>gatekeeper-uploads</ID>"
	    "<Filter><Prefix>")) != 0 ||
	    (r = s3_xml_escape(b, gk_slice_str(cfg->uploads_prefix))) != 0 ||
	    (r = gk_buf_append_str(b, "/</Prefix></Filter>"
	    "<Status>Enabled</Status>"
	    "<Transition><Days>30</Days><StorageClass>STANDARD_IA"
	    "</StorageClass></Transition>"
	    "<Transition><Days>120</Days><StorageClass>ONEZONE_IA"
	    "</StorageClass></Transition>"
	    "<Expiration><Days>367</Days></Expiration></Rule>")) != 0))
		return r;
	return gk_buf_append_str(b, "<Rule><ID>gatekeeper-abort-multipart</ID>"
	    "<Filter><Prefix></Prefix></Filter><Status>Enabled</Status>"
	    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7"
	    "</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
	    "</LifecycleConfiguration>");
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
	    "    },\n"
	    "    {\n"
	    "      \"Sid\": \"GatekeeperList\",\n"
	    "      \"Effect\": \"Allow\",\n"
	    "      \"Action\": [\"s3:ListBucket\"],\n"
	    "      \"Resource\": \"arn:aws:s3:::%s\"\n"
	    "    }\n"
	    "  ]\n"
	    "}\n", b, b, cfg->uploads_prefix, cfg->uploads_prefix[0] ? "/" :
	    "", b);
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
	struct step st[4];
	const char *path = NULL;
	gk_config *cfg = NULL;
	s3_client *c = NULL;
	char err[512];
	size_t i;
	int opt, dry = 0, rc = 1, failed = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:nh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'n': dry = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
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
	if (!dry && s3_client_from_config(cfg, &c, err, sizeof(err)) != 0) {
		cli_error("provision", "%s", err);
		goto out;
	}
	printf("provisioning bucket %s%s\n", cfg->s3_bucket,
	    dry ? " (dry run: nothing is sent)" : "");
	for (i = 0; i < GK_ARRAY_LEN(st); i++) {
		s3_call call;
		long status = 0;
		int r;

		if (dry) {
			printf("%zu. %s: PUT /?%.*s\n   %s\n", i + 1, st[i].name,
			    (int)(strlen(st[i].query) - 1), st[i].query,
			    (char *)st[i].body.data);
			continue;
		}
		memset(&call, 0, sizeof(call));
		call.method = "PUT";
		call.query = st[i].query;
		call.body = gk_slice_of(st[i].body.data, st[i].body.len);
		call.idempotent = 1;
		r = s3_client_call(c, &call, &status);
		if (r == 0) {
			printf("%zu. %s: ok\n", i + 1, st[i].name);
		} else if (status == 501 || status == 405 || (status == 400 &&
		    strstr(s3_last_error(), "NotImplemented") != NULL)) {
			printf("%zu. %s: not supported by this server (%s)\n",
			    i + 1, st[i].name, s3_last_error());
		} else {
			printf("%zu. %s: FAILED: %s\n", i + 1, st[i].name,
			    s3_last_error());
			failed++;
		}
	}
	print_policy(cfg, stdout);
	rc = failed ? 1 : 0;
out:
	for (i = 0; i < GK_ARRAY_LEN(st); i++)
		gk_buf_release(&st[i].body);
	s3_client_free(c);
	cfg_free(cfg);
	return rc;
}
