/* config.c - an S3 client from the gatekeeper's [s3] settings. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "s3.h"

/* A secret from a 0600 file, trimmed; NULL path: none. */
static int
read_secret(const char *path, char **out)
{
	struct stat st;
	gk_buf b;
	size_t n;
	int r;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return 0;
	if (stat(path, &st) != 0) {
		gk_error("[s3] cannot read %s", path);
		return GK_ERR_CONFIG;
	}
	if ((st.st_mode & 077) != 0) {
		gk_error("[s3] %s is readable by group or others (chmod 600)",
		    path);
		return GK_ERR_CONFIG;
	}
	if ((r = gk_file_read(path, 8192, &b)) != 0)
		return GK_ERR_CONFIG;
	n = b.len;
	while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' ||
	    b.data[n - 1] == ' ' || b.data[n - 1] == '\t'))
		n--;
	if (n == 0 || memchr(b.data, '\0', n) != NULL)
		r = GK_ERR_CONFIG;
	else if ((*out = strndup((const char *)b.data, n)) == NULL)
		r = GK_ERR_NOMEM;
	gk_wipe(b.data, b.len);
	gk_buf_release(&b);
	return r;
}

static void
free_secret(char *s)
{
	if (s != NULL) {
		gk_wipe(s, strlen(s));
		free(s);
	}
}

int
s3_client_from_config(const struct gk_config *cfg, s3_client **out,
    char *err, size_t errlen)
{
	s3_client_opts o;
	char *sk = NULL, *tok = NULL;
	gk_buf ep;
	int r;

	gk_buf_init(&ep, 4096);
	if ((r = read_secret(cfg->s3_secret_key_file, &sk)) != 0 ||
	    (r = read_secret(cfg->s3_session_token_file, &tok)) != 0) {
		snprintf(err, errlen, "[s3] cannot read the secret key or "
		    "session token file (must exist, mode 0600, not empty)");
		goto out;
	}
	if (cfg->s3_endpoint[0] != '\0')
		r = gk_buf_append_str(&ep, cfg->s3_endpoint);
	else
		r = gk_buf_printf(&ep, "https://s3.%s.amazonaws.com",
		    cfg->s3_region);
	if (r != 0)
		goto out;
	memset(&o, 0, sizeof(o));
	o.endpoint = (const char *)ep.data;
	o.bucket = cfg->s3_bucket;
	o.region = cfg->s3_region;
	o.path_style = cfg->s3_path_style;
	o.connect_timeout = cfg->s3_connect_timeout;
	o.timeout = cfg->s3_timeout;
	o.retries = cfg->s3_retries;
	o.access_key_id = cfg->s3_access_key_id[0] ? cfg->s3_access_key_id :
	    NULL;
	o.secret_key = sk;
	o.session_token = tok;
	o.use_env = cfg->s3_use_env;
	o.shared_file = cfg->s3_credentials_file[0] ?
	    cfg->s3_credentials_file : NULL;
	o.profile = cfg->s3_profile[0] ? cfg->s3_profile : NULL;
	o.use_container = cfg->s3_container_credentials;
	o.use_imds = cfg->s3_imds;
	o.imds_endpoint = cfg->s3_imds_endpoint;
	o.kms_key_id = cfg->s3_kms_key_id;
	r = s3_client_new(&o, out, err, errlen);
out:
	free_secret(sk);
	free_secret(tok);
	gk_buf_release(&ep);
	return r;
}
