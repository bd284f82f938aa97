/*
 * out_webhook.c - audit out to a webhook: each batch one POST of JSON
 * lines (application/x-ndjson) with libcurl, the receiver's certificate
 * and name verified over https://, an optional bearer token and client
 * certificate. A 2xx answer acknowledges the whole batch.
 */
#include "out_int.h"

#include <curl/curl.h>
#include <stdio.h>

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int
out_webhook_send(struct out_sink *s)
{
	struct curl_slist *h = NULL;
	char auth[600];
	long code = 0;
	CURLcode rc;
	CURL *c;
	int r = GK_ERR_UNAVAILABLE;

	if ((c = curl_easy_init()) == NULL)
		return GK_ERR_NOMEM;
	h = curl_slist_append(h, "Content-Type: application/x-ndjson");
	if (s->token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
		    s->token);
		h = curl_slist_append(h, auth);
		gk_wipe(auth, sizeof(auth));
	}
	curl_easy_setopt(c, CURLOPT_URL, s->cfg->out_webhook);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->batch.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)s->batch.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)IO_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 6L * IO_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->cfg->out_webhook_ca_file[0] != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO,
		    s->cfg->out_webhook_ca_file);
	if (s->cfg->out_webhook_cert_file[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_SSLCERT,
		    s->cfg->out_webhook_cert_file);
		curl_easy_setopt(c, CURLOPT_SSLKEY,
		    s->cfg->out_webhook_key_file);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK && code >= 200 && code < 300)
		r = 0;
	else if (rc != CURLE_OK)
		OUT_WARN(s, "audit out webhook: %s", curl_easy_strerror(rc));
	else
		OUT_WARN(s, "audit out webhook: answered %ld", code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return r;
}
