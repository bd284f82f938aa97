/*
 * orgcfg.c - the organisation's share config (JSON), its file location
 * and fetching a signed export over HTTPS (libcurl).
 */
#include "share/share.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

void
share_config_release(share_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_recipients; i++)
		free(c->recipients[i]);
	for (i = 0; i < c->n_senders; i++)
		free(c->senders[i]);
	free(c->recipients);
	free(c->senders);
	free(c->organisation);
	free(c->destination);
	memset(c, 0, sizeof(*c));
}

static int
fp_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n != 7 + 43 || strncmp(s, "SHA256:", 7) != 0)
		return 0;
	for (i = 7; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '+' || s[i] == '/'))
			return 0;
	return 1;
}

static int
str_list(json_t *a, char ***out, size_t *n, int (*ok)(const char *),
    const char *what, const char *want, char *err, size_t errlen)
{
	size_t i, k;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || (k = json_array_size(a)) > 4096) {
		snprintf(err, errlen, "config: %s must be a list", what);
		return GK_ERR_INVALID;
	}
	if (k > 0 && (*out = calloc(k, sizeof(**out))) == NULL)
		return GK_ERR_NOMEM;
	for (i = 0; i < k; i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (s == NULL || !ok(s)) {
			snprintf(err, errlen, "config: %s item %zu is not %s",
			    what, i + 1, want);
			return GK_ERR_INVALID;
		}
		if (((*out)[i] = strdup(s)) == NULL)
			return GK_ERR_NOMEM;
		*n = i + 1;
	}
	return 0;
}

static int
rcpt_ok(const char *s)
{
	uint8_t pk[AGE_KEY_LEN];

	return age_recipient_parse(gk_slice_str(s), pk) == 0;
}

static int
text_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n > 1024 || !gk_utf8_valid(gk_slice_of(s, n)))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return 0;
	return 1;
}

int
share_config_parse(gk_slice js, share_config *c, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *rc = NULL, *sd = NULL;
	const char *org = "", *dest = "";
	int r = GK_ERR_INVALID;

	memset(c, 0, sizeof(*c));
	if (js.len > SHARE_CONFIG_MAX) {
		snprintf(err, errlen, "config larger than 1 MiB");
		return GK_ERR_TOO_LARGE;
	}
	root = json_loadb((const char *)js.p, js.len, JSON_REJECT_DUPLICATES,
	    &je);
	if (root == NULL) {
		snprintf(err, errlen, "config is not JSON: %s", je.text);
		return GK_ERR_INVALID;
	}
	if (json_unpack_ex(root, &je, JSON_STRICT, "{s?s, s?s, s?o, s?o}",
	    "organisation", &org, "destination", &dest, "recipients", &rc,
	    "senders", &sd) != 0) {
		snprintf(err, errlen, "config: %s", je.text);
		goto out;
	}
	if (!text_ok(org) || !text_ok(dest)) {
		snprintf(err, errlen, "config: organisation or destination "
		    "holds control characters or is too long");
		goto out;
	}
	r = GK_ERR_NOMEM;
	if ((c->organisation = strdup(org)) == NULL ||
	    (c->destination = strdup(dest)) == NULL)
		goto out;
	if ((r = str_list(rc, &c->recipients, &c->n_recipients, rcpt_ok,
	    "recipients", "an age recipient (age1...)", err, errlen)) != 0 ||
	    (r = str_list(sd, &c->senders, &c->n_senders, fp_ok, "senders",
	    "a sender key fingerprint (SHA256:...)", err, errlen)) != 0)
		goto out;
	r = 0;
out:
	json_decref(root);
	if (r != 0)
		share_config_release(c);
	return r;
}

int
share_config_json(const share_config *c, gk_buf *out)
{
	json_t *root, *a, *b;
	char *s = NULL;
	size_t i;
	int r = GK_ERR_NOMEM;

	a = json_array();
	b = json_array();
	root = json_pack("{s:s, s:s}", "organisation",
	    c->organisation ? c->organisation : "", "destination",
	    c->destination ? c->destination : "");
	if (root == NULL || a == NULL || b == NULL)
		goto out;
	for (i = 0; i < c->n_recipients; i++)
		if (json_array_append_new(a, json_string(c->recipients[i])))
			goto out;
	for (i = 0; i < c->n_senders; i++)
		if (json_array_append_new(b, json_string(c->senders[i])))
			goto out;
	if (json_object_set(root, "recipients", a) != 0 ||
	    json_object_set(root, "senders", b) != 0)
		goto out;
	if ((s = json_dumps(root, JSON_INDENT(2))) == NULL)
		goto out;
	if ((r = gk_buf_append_str(out, s)) == 0)
		r = gk_buf_append_str(out, "\n");
out:
	free(s);
	json_decref(a);
	json_decref(b);
	json_decref(root);
	return r;
}

int
share_config_load(const char *path, share_config *c, char *err,
    size_t errlen)
{
	gk_buf b;
	int r;

	gk_buf_init(&b, SHARE_CONFIG_MAX);
	if ((r = gk_file_read(path, SHARE_CONFIG_MAX, &b)) != 0) {
		snprintf(err, errlen, "%s: %s", path, r == GK_ERR_NOT_FOUND ?
		    "no such file" : gk_err_str(r));
		gk_buf_release(&b);
		return r;
	}
	r = share_config_parse(gk_slice_of(b.data, b.len), c, err, errlen);
	gk_buf_release(&b);
	return r;
}

int
share_config_path(char *out, size_t outlen)
{
	const char *e = getenv("GATEKEEPER_SHARE_CONFIG");
	const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	int n;

	if (e != NULL && e[0] != '\0')
		n = snprintf(out, outlen, "%s", e);
	else if (x != NULL && x[0] == '/')
		n = snprintf(out, outlen, "%s/gatekeeper/share.json", x);
	else if (h != NULL && h[0] == '/')
		n = snprintf(out, outlen, "%s/.config/gatekeeper/share.json",
		    h);
	else
		return GK_ERR_NOT_FOUND;
	return n < 0 || (size_t)n >= outlen ? GK_ERR_TOO_LARGE : 0;
}

static size_t
fetch_body(char *p, size_t size, size_t n, void *ud)
{
	gk_buf *b = ud;

	if (gk_buf_append(b, p, size * n) != 0)
		return 0;
	return size * n;
}

int
share_fetch_https(const char *url, const char *cacert, size_t cap,
    gk_buf *out, char *err, size_t errlen)
{
	CURL *e;
	CURLcode cr;
	long status = 0;
	int r = GK_ERR_UNAVAILABLE;

	if (strncmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "only https:// URLs are fetched");
		return GK_ERR_INVALID;
	}
	gk_buf_init(out, cap);
	if ((e = curl_easy_init()) == NULL)
		return GK_ERR_NOMEM;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
	if (cacert != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, cacert);
	cr = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (cr != CURLE_OK)
		snprintf(err, errlen, "%s: %s", url, curl_easy_strerror(cr));
	else if (status != 200)
		snprintf(err, errlen, "%s: HTTP %ld", url, status);
	else
		r = 0;
	curl_easy_cleanup(e);
	if (r != 0)
		gk_buf_release(out);
	return r;
}
