/*
 * target.c - where a bucket is: endpoint, virtual-hosted or path-style
 * addressing, object URLs, and the SSE-KMS key uploads ask for.
 */
#include "s3_int.h"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#define MAX_PARAMS 64
#define MAX_HEADERS 64
#define CANON_CAP (64u * 1024)
#define URL_CAP (16u * 1024)

static int
host_is_ip(const char *hostport)
{
	char h[256];
	size_t n;
	struct in6_addr a6;
	struct in_addr a4;
	const char *colon;

	if (hostport[0] == '[')
		return 1;
	colon = strrchr(hostport, ':');
	n = colon ? (size_t)(colon - hostport) : strlen(hostport);
	if (n >= sizeof(h))
		return 0;
	memcpy(h, hostport, n);
	h[n] = '\0';
	return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h,
	    &a6) == 1;
}

static int
dns_bucket(const char *b)
{
	size_t i, n = strlen(b);

	if (n < 3 || n > 63)
		return 0;
	for (i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.'))
			return 0;
	}
	return b[0] != '-' && b[n - 1] != '-' && b[0] != '.' &&
	    b[n - 1] != '.';
}

int
s3_target_set_kms(s3_target *t, const char *key_id)
{
	char *k = NULL;
	size_t i, n = key_id != NULL ? strlen(key_id) : 0;

	for (i = 0; i < n; i++) {
		if (key_id[i] <= 0x20 || key_id[i] >= 0x7f || key_id[i] == '"' ||
		    key_id[i] == '\\')
			return GK_ERR_INVALID;
	}
	if (n > 2048)
		return GK_ERR_INVALID;
	if (n > 0 && (k = strdup(key_id)) == NULL)
		return GK_ERR_NOMEM;
	free(t->kms_key_id);
	t->kms_key_id = k;
	return 0;
}

const char *
s3_target_kms(const s3_target *t)
{
	return t->kms_key_id;
}

int
s3_target_new(const char *endpoint, const char *bucket, const char *region,
    int path_style, s3_target **out)
{
	s3_target *t;
	const char *rest, *slash, *colon;
	size_t hl;
	int r = GK_ERR_INVALID;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return GK_ERR_NOMEM;
	if (strncmp(endpoint, "https://", 8) == 0) {
		t->scheme = strdup("https");
		rest = endpoint + 8;
	} else if (strncmp(endpoint, "http://", 7) == 0) {
		t->scheme = strdup("http");
		rest = endpoint + 7;
	} else {
		goto out;
	}
	slash = strchr(rest, '/');
	hl = slash ? (size_t)(slash - rest) : strlen(rest);
	if (hl == 0 || hl > 255 || (slash != NULL && slash[1] != '\0'))
		goto out;
	if ((t->host = strndup(rest, hl)) == NULL)
		goto nomem;
	/* drop the scheme's default port, as the Host header does */
	colon = strrchr(t->host, ':');
	if (colon != NULL && strchr(colon, ']') == NULL &&
	    ((strcmp(colon, ":443") == 0 && strcmp(t->scheme, "https") == 0) ||
	    (strcmp(colon, ":80") == 0 && strcmp(t->scheme, "http") == 0)))
		t->host[colon - t->host] = '\0';
	if (strpbrk(t->host, " /?#@") != NULL || bucket[0] == '\0' ||
	    strpbrk(bucket, "/?#% ") != NULL)
		goto out;
	if ((t->bucket = strdup(bucket)) == NULL || t->scheme == NULL)
		goto nomem;
	t->path_style = path_style || host_is_ip(t->host) || !dns_bucket(bucket);
	if ((r = s3_signer_new(region, "s3", &t->signer)) != 0)
		goto out;
	*out = t;
	t = NULL; /* transferred */
	r = 0;
	goto out;
nomem:
	r = GK_ERR_NOMEM;
out:
	s3_target_free(t);
	return r;
}

void
s3_target_free(s3_target *t)
{
	if (t == NULL)
		return;
	free(t->scheme);
	free(t->host);
	free(t->kms_key_id);
	free(t->bucket);
	s3_signer_free(t->signer);
	free(t);
}

const char *
s3_target_bucket(const s3_target *t)
{
	return t->bucket;
}

s3_signer *
s3_target_signer(s3_target *t)
{
	return t->signer;
}

int
s3_object_url(const s3_target *t, gk_slice key, gk_buf *url, gk_buf *host,
    gk_buf *path)
{
	gk_buf h, p;
	int r;

	gk_buf_init(&h, 512);
	gk_buf_init(&p, URL_CAP);
	if (t->path_style) {
		r = gk_buf_append_str(&h, t->host);
		if (r == 0)
			r = gk_buf_printf(&p, "/%s", t->bucket);
		if (r == 0 && key.len > 0)
			r = gk_buf_append(&p, "/", 1);
	} else {
		r = gk_buf_printf(&h, "%s.%s", t->bucket, t->host);
		if (r == 0)
			r = gk_buf_append(&p, "/", 1);
	}
	if (r == 0 && key.len > 0)
		r = gk_pct_encode(key, 1, &p);
	if (r == 0 && url != NULL)
		r = gk_buf_printf(url, "%s://%s%s", t->scheme, h.data, p.data);
	if (r == 0 && host != NULL)
		r = gk_buf_append(host, h.data, h.len);
	if (r == 0 && path != NULL)
		r = gk_buf_append(path, p.data, p.len);
	gk_buf_release(&h);
	gk_buf_release(&p);
	return r;
}

