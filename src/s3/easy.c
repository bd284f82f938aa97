/*
 * easy.c - libcurl handles for the client and the credential fetchers:
 * the connection pool, the options every handle gets, header lists.
 */
#include "s3_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>

CURL *
s3_easy_get(s3_client *c)
{
	CURL *e = NULL;

	pthread_mutex_lock(&c->pool_mu);
	if (c->pool_n > 0)
		e = c->pool[--c->pool_n];
	pthread_mutex_unlock(&c->pool_mu);
	if (e == NULL)
		e = curl_easy_init();
	else
		curl_easy_reset(e);
	return e;
}

void
s3_easy_put(s3_client *c, CURL *e, int reusable)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&c->pool_mu);
	if (reusable && c->pool_n < S3_POOL_MAX) {
		c->pool[c->pool_n++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&c->pool_mu);
	if (e != NULL)
		curl_easy_cleanup(e);
}

/* Common transfer options: timeouts, no signals, http(s) only. */
void
s3_easy_setup(s3_client *c, CURL *e, long total_timeout)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)c->connect_timeout);
	if (total_timeout > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT, total_timeout);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "s3-gatekeeper/1");
}

/* Header lines from s3_sign_headers into a curl list. */
struct curl_slist *
s3_lines_to_slist(const gk_buf *lines, struct curl_slist *l)
{
	const char *p = (const char *)lines->data, *nl;
	char one[8192];
	struct curl_slist *n;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL || (size_t)(nl - p) >= sizeof(one))
			break;
		memcpy(one, p, (size_t)(nl - p));
		one[nl - p] = '\0';
		if ((n = curl_slist_append(l, one)) == NULL) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = n;
		p = nl + 1;
	}
	gk_wipe(one, sizeof(one));
	return l;
}
