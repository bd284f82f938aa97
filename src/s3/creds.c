/*
 * creds.c - where the gatekeeper's S3 keys come from, in order: the
 * config, the AWS_* environment variables, the shared credentials file
 * (profile), the ECS container endpoint, the EC2 instance metadata
 * service (IMDSv2). Temporary keys are refreshed 5 minutes before expiry.
 */
#include <ini.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"

#define REFRESH_BEFORE 300
#define META_TIMEOUT 2L
#define META_CAP (64u * 1024)

static char *
dupn(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

int
s3_creds_init(s3_client *c, const s3_client_opts *o, char *err,
    size_t errlen)
{
	s3_creds tmp;
	int r;

	c->static_ak = dupn(o->access_key_id);
	c->static_sk = dupn(o->secret_key);
	c->static_tok = dupn(o->session_token);
	c->use_env = o->use_env;
	c->use_container = o->use_container;
	c->use_imds = o->use_imds;
	c->shared_file = dupn(o->shared_file);
	c->profile = dupn(o->profile);
	c->imds_endpoint = dupn(o->imds_endpoint ? o->imds_endpoint :
	    "http://169.254.169.254");
	if ((c->static_ak != NULL) != (c->static_sk != NULL)) {
		snprintf(err, errlen, "[s3] access_key_id and the secret key "
		    "must be given together");
		return GK_ERR_CONFIG;
	}
	if ((r = s3_client_creds(c, &tmp)) != 0) {
		snprintf(err, errlen, "no S3 credentials found (tried: config, "
		    "%s%s%s%s)", c->use_env ? "environment, " : "",
		    "shared credentials file", c->use_container ?
		    ", container endpoint" : "", c->use_imds ?
		    ", instance metadata" : "");
		return GK_ERR_CONFIG;
	}
	s3_creds_release(&tmp);
	return 0;
}

static void
wipe_str(char *s)
{
	if (s != NULL) {
		gk_wipe(s, strlen(s));
		free(s);
	}
}

void
s3_creds_fini(s3_client *c)
{
	s3_creds_release(&c->cur);
	free(c->static_ak);
	wipe_str(c->static_sk);
	wipe_str(c->static_tok);
	free(c->shared_file);
	free(c->profile);
	free(c->imds_endpoint);
}

static int
set3(s3_creds *o, const char *ak, const char *sk, const char *tok,
    int64_t exp)
{
	s3_creds in = { (char *)ak, (char *)sk, (char *)tok, exp, 0 };

	if (ak == NULL || sk == NULL || ak[0] == '\0' || sk[0] == '\0')
		return GK_ERR_NOT_FOUND;
	if (tok != NULL && tok[0] == '\0')
		in.session_token = NULL;
	return s3_creds_copy(&in, o);
}

/* ---- shared credentials file ------------------------------------------ */

struct ini_ctx {
	const char *profile;
	char *ak, *sk, *tok;
};

static int
on_ini(void *ud, const char *section, const char *name, const char *value)
{
	struct ini_ctx *x = ud;
	char **dst = NULL;

	if (strcmp(section, x->profile) != 0)
		return 1;
	if (strcmp(name, "aws_access_key_id") == 0)
		dst = &x->ak;
	else if (strcmp(name, "aws_secret_access_key") == 0)
		dst = &x->sk;
	else if (strcmp(name, "aws_session_token") == 0)
		dst = &x->tok;
	if (dst != NULL) {
		wipe_str(*dst);
		*dst = strdup(value);
	}
	return 1;
}

static int
from_file(s3_client *c, s3_creds *o)
{
	struct ini_ctx x;
	gk_buf path;
	const char *home = getenv("HOME"), *env = getenv(
	    "AWS_SHARED_CREDENTIALS_FILE");
	int r = GK_ERR_NOT_FOUND;

	memset(&x, 0, sizeof(x));
	x.profile = c->profile ? c->profile : getenv("AWS_PROFILE");
	if (x.profile == NULL || x.profile[0] == '\0')
		x.profile = "default";
	gk_buf_init(&path, 4096);
	if (c->shared_file != NULL)
		r = gk_buf_append_str(&path, c->shared_file);
	else if (env != NULL && env[0] != '\0')
		r = gk_buf_append_str(&path, env);
	else if (home != NULL)
		r = gk_buf_printf(&path, "%s/.aws/credentials", home);
	if (r != 0 || path.len == 0) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	if (ini_parse((const char *)path.data, on_ini, &x) != 0) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	r = set3(o, x.ak, x.sk, x.tok, 0);
out:
	free(x.ak);
	wipe_str(x.sk);
	wipe_str(x.tok);
	gk_buf_release(&path);
	return r;
}

/* ---- metadata endpoints ------------------------------------------------ */

static size_t
on_meta(char *p, size_t size, size_t n, void *ud)
{
	return gk_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* A small HTTP exchange with a metadata endpoint; 0 only for 200. */
static int
fetch(s3_client *c, const char *method, const char *url, const char *hdr,
    gk_buf *out)
{
	struct curl_slist *hl = NULL;
	long st = 0;
	CURLcode cr;
	CURL *e;

	if ((e = curl_easy_init()) == NULL)
		return GK_ERR_NOMEM;
	gk_buf_reset(out);
	s3_easy_setup(c, e, META_TIMEOUT);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 1L);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_meta);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (hdr != NULL)
		hl = curl_slist_append(NULL, hdr);
	if (hl != NULL)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	cr = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_cleanup(e);
	if (hl != NULL) {
		/* the list may hold a token */
		curl_slist_free_all(hl);
	}
	if (cr != CURLE_OK || st != 200)
		return GK_ERR_UNAVAILABLE;
	return gk_buf_append(out, "", 0);
}

/* {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} */
static int
from_json(const gk_buf *b, s3_creds *o)
{
	json_t *j = json_loadb((const char *)b->data, b->len, 0, NULL);
	const char *exp;
	int64_t us = 0;
	int r;

	if (j == NULL)
		return GK_ERR_INVALID;
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (exp != NULL && gk_time_parse(exp, &us) != 0)
		us = 0;
	r = set3(o, json_string_value(json_object_get(j, "AccessKeyId")),
	    json_string_value(json_object_get(j, "SecretAccessKey")),
	    json_string_value(json_object_get(j, "Token")), us / 1000000);
	json_decref(j);
	return r;
}

static int
from_container(s3_client *c, s3_creds *o)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	gk_buf url, hdr, body;
	int r = GK_ERR_NOT_FOUND;

	gk_buf_init(&url, 4096);
	gk_buf_init(&hdr, 8192);
	gk_buf_init(&body, META_CAP);
	if (rel != NULL && rel[0] == '/')
		r = gk_buf_printf(&url, "http://169.254.170.2%s", rel);
	else if (full != NULL && (strncmp(full, "http://", 7) == 0 ||
	    strncmp(full, "https://", 8) == 0))
		r = gk_buf_append_str(&url, full);
	if (r != 0)
		goto out;
	if (tok != NULL && tok[0] != '\0' &&
	    (r = gk_buf_printf(&hdr, "Authorization: %s", tok)) != 0)
		goto out;
	if ((r = fetch(c, "GET", (const char *)url.data,
	    hdr.len ? (const char *)hdr.data : NULL, &body)) != 0)
		goto out;
	r = from_json(&body, o);
out:
	gk_wipe(hdr.data, hdr.len);
	gk_wipe(body.data, body.len);
	gk_buf_release(&url);
	gk_buf_release(&hdr);
	gk_buf_release(&body);
	return r;
}

static int
from_imds(s3_client *c, s3_creds *o)
{
	gk_buf url, hdr, body, role;
	size_t n;
	int r;

	gk_buf_init(&url, 4096);
	gk_buf_init(&hdr, 8192);
	gk_buf_init(&body, META_CAP);
	gk_buf_init(&role, 1024);
	if ((r = gk_buf_printf(&url, "%s/latest/api/token",
	    c->imds_endpoint)) != 0 ||
	    (r = fetch(c, "PUT", (const char *)url.data,
	    "X-aws-ec2-metadata-token-ttl-seconds: 21600", &body)) != 0 ||
	    (r = gk_buf_printf(&hdr, "X-aws-ec2-metadata-token: %s",
	    (const char *)body.data)) != 0)
		goto out;
	gk_buf_reset(&url);
	if ((r = gk_buf_printf(&url, "%s/latest/meta-data/iam/"
	    "security-credentials/", c->imds_endpoint)) != 0 ||
	    (r = fetch(c, "GET", (const char *)url.data,
	    (const char *)hdr.data, &body)) != 0)
		goto out;
	for (n = 0; n < body.len && body.data[n] != '\n' &&
	    body.data[n] != '\r'; n++)
		;
	if (n == 0 || (r = gk_pct_encode(gk_slice_of(body.data, n), 0,
	    &role)) != 0) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	gk_buf_reset(&url);
	if ((r = gk_buf_printf(&url, "%s/latest/meta-data/iam/"
	    "security-credentials/%s", c->imds_endpoint,
	    (const char *)role.data)) != 0 ||
	    (r = fetch(c, "GET", (const char *)url.data,
	    (const char *)hdr.data, &body)) != 0)
		goto out;
	r = from_json(&body, o);
out:
	gk_wipe(hdr.data, hdr.len);
	gk_wipe(body.data, body.len);
	gk_buf_release(&url);
	gk_buf_release(&hdr);
	gk_buf_release(&body);
	gk_buf_release(&role);
	return r;
}

/* The first source that has keys. */
static int
load(s3_client *c, s3_creds *o, const char **source)
{
	if (c->static_ak != NULL &&
	    set3(o, c->static_ak, c->static_sk, c->static_tok, 0) == 0) {
		*source = "config";
		return 0;
	}
	if (c->use_env && set3(o, getenv("AWS_ACCESS_KEY_ID"),
	    getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"),
	    0) == 0) {
		*source = "environment";
		return 0;
	}
	if (from_file(c, o) == 0) {
		*source = "shared credentials file";
		return 0;
	}
	if (c->use_container && from_container(c, o) == 0) {
		*source = "container endpoint";
		return 0;
	}
	if (c->use_imds && from_imds(c, o) == 0) {
		*source = "instance metadata (IMDSv2)";
		return 0;
	}
	return GK_ERR_UNAVAILABLE;
}

int
s3_client_creds(s3_client *c, s3_creds *out)
{
	int64_t now = gk_now_s();
	s3_creds fresh;
	const char *src = NULL;
	int r = 0;

	pthread_mutex_lock(&c->cred_mu);
	if (!c->have || (c->cur.expires != 0 &&
	    gk_sub_sat(c->cur.expires, now) < REFRESH_BEFORE)) {
		memset(&fresh, 0, sizeof(fresh));
		r = load(c, &fresh, &src);
		if (r == 0) {
			s3_creds_release(&c->cur);
			c->cur = fresh;
			c->cur.gen = ++c->gen;
			c->source = src;
			c->have = 1;
		} else if (c->have && c->cur.expires > now) {
			/* keep the old keys while they last */
			gk_warn("S3 credential refresh failed; keeping the "
			    "current keys until they expire");
			r = 0;
		} else {
			gk_error("no S3 credentials available");
		}
	}
	if (r == 0)
		r = s3_creds_copy(&c->cur, out);
	pthread_mutex_unlock(&c->cred_mu);
	return r;
}

const char *
s3_client_creds_source(s3_client *c)
{
	const char *s;

	pthread_mutex_lock(&c->cred_mu);
	s = c->source ? c->source : "none";
	pthread_mutex_unlock(&c->cred_mu);
	return s;
}
