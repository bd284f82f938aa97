/*
 * s3.c - the [s3] settings as the S3 client takes them (reading the secret
 * files), and the store's settings, which include them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_int.h"
#include "s3/s3.h"
#include "store/store.h"

/* A secret from a 0600 file, trimmed; no path: none. */
static int
read_secret(const char *path, gk_secret *out, char *err, size_t errlen)
{
	out->p = NULL;
	out->len = 0;
	if (path == NULL || path[0] == '\0')
		return 0;
	return cfg_secret_load(path, CFG_SECRET_ANY, out, err, errlen);
}

void
cfg_s3_release(cfg_s3 *c)
{
	cfg_secret_free(&c->secret_key);
	cfg_secret_free(&c->session_token);
	gk_buf_release(&c->endpoint);
	memset(c, 0, sizeof(*c));
}

int
cfg_s3_opts(const gk_config *cfg, cfg_s3 *c, char *err, size_t errlen)
{
	s3_client_opts *o = &c->o;
	char why[512];
	int r;

	memset(c, 0, sizeof(*c));
	gk_buf_init(&c->endpoint, 4096);
	if ((r = read_secret(cfg->s3_secret_key_file, &c->secret_key, why,
	    sizeof(why))) != 0 ||
	    (r = read_secret(cfg->s3_session_token_file, &c->session_token,
	    why, sizeof(why))) != 0) {
		snprintf(err, errlen, "[s3] cannot read the secret key or "
		    "session token file (must exist, mode 0600, not empty): "
		    "%s", why);
		goto out;
	}
	if (cfg->s3_endpoint[0] != '\0')
		r = gk_buf_append_str(&c->endpoint, cfg->s3_endpoint);
	else
		r = gk_buf_printf(&c->endpoint, "https://s3.%s.amazonaws.com",
		    cfg->s3_region);
	if (r != 0) {
		snprintf(err, errlen, "[s3] endpoint: %s", gk_err_str(r));
		goto out;
	}
	o->endpoint = (const char *)c->endpoint.data;
	o->bucket = cfg->s3_bucket;
	o->region = cfg->s3_region;
	o->path_style = cfg->s3_path_style;
	o->connect_timeout = cfg->s3_connect_timeout;
	o->timeout = cfg->s3_timeout;
	o->retries = cfg->s3_retries;
	o->access_key_id = cfg->s3_access_key_id[0] ? cfg->s3_access_key_id :
	    NULL;
	o->secret_key = (const char *)c->secret_key.p;
	o->session_token = (const char *)c->session_token.p;
	o->use_env = cfg->s3_use_env;
	o->shared_file = cfg->s3_credentials_file[0] ?
	    cfg->s3_credentials_file : NULL;
	o->profile = cfg->s3_profile[0] ? cfg->s3_profile : NULL;
	o->use_container = cfg->s3_container_credentials;
	o->use_imds = cfg->s3_imds;
	o->imds_endpoint = cfg->s3_imds_endpoint;
	o->kms_key_id = cfg->s3_kms_key_id;
	return 0;
out:
	cfg_s3_release(c);
	return r;
}

int
cfg_s3_client(const gk_config *cfg, s3_client **out, char *err,
    size_t errlen)
{
	cfg_s3 c;
	int r;

	if ((r = cfg_s3_opts(cfg, &c, err, errlen)) != 0)
		return r;
	r = s3_client_new(&c.o, out, err, errlen);
	cfg_s3_release(&c);
	return r;
}

int
cfg_store_open(const gk_config *cfg, gk_store **out, char *err,
    size_t errlen)
{
	store_settings ss;
	cfg_s3 c;
	int s3, r;

	*out = NULL;
	memset(&ss, 0, sizeof(ss));
	memset(&c, 0, sizeof(c));
	ss.store_type = cfg->store_type;
	ss.store_dir = cfg->store_dir;
	ss.master_key = cfg->master_key;
	ss.s3_bucket = cfg->s3_bucket;
	ss.s3_mode = cfg->s3_mode;
	ss.s3_presign_ttl = cfg->s3_presign_ttl;
	ss.s3_check_exists = cfg->s3_check_exists;
	s3 = cfg->store_type != NULL && strcmp(cfg->store_type, "s3") == 0;
	if (s3) {
		if ((r = cfg_s3_opts(cfg, &c, err, errlen)) != 0)
			return r;
		ss.s3_client = &c.o;
	}
	if ((r = store_open(&ss, out)) != 0)
		snprintf(err, errlen, "cannot open the %s store at %s: %s",
		    cfg->store_type, cfg->store_dir, gk_err_str(r));
	if (s3)
		cfg_s3_release(&c);
	return r;
}
