/*
 * dest_s3.c - a share destination on any S3 endpoint through the
 * project's own client (SigV4, retries with backoff):
 * s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=0|1].
 * Credentials come from the AWS_* variables or the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials; AWS_PROFILE),
 * never from the URL. Small objects are one PUT; larger ones a multipart
 * upload (memory: one 8 MiB part), visible only when complete.
 */
#include "share/share.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3/s3.h"
#include "share/dest_int.h"

struct s3_dest {
	share_dest base;
	s3_client *c;
	char prefix[512];
};

struct s3_wr {
	share_wr base;
	char key[1024];
	gk_buf buf;		/* up to one part before switching to multipart */
	s3_put *put;
};

struct s3_rd {
	share_rd base;
	s3_get *g;
};

static int
qparam(const char *q, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	const char *p = q, *end;
	gk_buf b;
	int r;

	while (p != NULL && *p != '\0') {
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 &&
		    p[nl] == '=') {
			gk_buf_init(&b, outlen);
			r = gk_pct_decode(gk_slice_of(p + nl + 1,
			    (size_t)(end - p) - nl - 1), &b);
			if (r == 0 && b.len < outlen)
				memcpy(out, b.data ? (char *)b.data : "",
				    b.len + 1);
			gk_buf_release(&b);
			return r == 0 ? 1 : -1;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

static int
s3d_open(const char *rest, share_dest **out, char *err, size_t errlen)
{
	struct s3_dest *d;
	char bucket[128], endpoint[512] = "", region[64] = "us-east-1";
	char ps[8] = "", credfile[PATH_MAX] = "";
	const char *q, *slash, *home;
	s3_client_opts o;
	size_t bl;
	int r;

	q = strchr(rest, '?');
	slash = strchr(rest, '/');
	if (slash != NULL && q != NULL && slash > q)
		slash = NULL;
	bl = slash ? (size_t)(slash - rest) : q ? (size_t)(q - rest) :
	    strlen(rest);
	if (bl == 0 || bl >= sizeof(bucket)) {
		snprintf(err, errlen, "s3 destination needs a bucket: "
		    "s3://BUCKET[/PREFIX]");
		return GK_ERR_INVALID;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return GK_ERR_NOMEM;
	d->base.ops = &dest_s3_ops;
	memcpy(bucket, rest, bl);
	bucket[bl] = '\0';
	if (slash != NULL) {
		size_t pl = q ? (size_t)(q - slash - 1) : strlen(slash + 1);

		if (pl + 2 >= sizeof(d->prefix)) {
			snprintf(err, errlen, "s3 prefix too long");
			free(d);
			return GK_ERR_INVALID;
		}
		memcpy(d->prefix, slash + 1, pl);
		d->prefix[pl] = '\0';
		while (pl > 0 && d->prefix[pl - 1] == '/')
			d->prefix[--pl] = '\0';
		if (pl > 0)
			d->prefix[pl++] = '/';
		d->prefix[pl] = '\0';
	}
	if (q != NULL && (qparam(q + 1, "endpoint", endpoint,
	    sizeof(endpoint)) < 0 || qparam(q + 1, "region", region,
	    sizeof(region)) < 0 || qparam(q + 1, "path_style", ps,
	    sizeof(ps)) < 0)) {
		snprintf(err, errlen, "s3 destination: bad query parameter");
		free(d);
		return GK_ERR_INVALID;
	}
	if (endpoint[0] == '\0')
		snprintf(endpoint, sizeof(endpoint), "https://s3.%s.amazonaws.com",
		    region);
	snprintf(d->base.name, sizeof(d->base.name), "s3://%s/%.200s (%.160s)",
	    bucket, d->prefix, endpoint);
	memset(&o, 0, sizeof(o));
	o.endpoint = endpoint;
	o.bucket = bucket;
	o.region = region;
	o.path_style = strcmp(ps, "0") != 0 && strcmp(ps, "false") != 0;
	o.connect_timeout = 5;
	o.timeout = 300;
	o.retries = 4;
	o.use_env = 1;
	if (getenv("AWS_SHARED_CREDENTIALS_FILE") != NULL)
		snprintf(credfile, sizeof(credfile), "%s",
		    getenv("AWS_SHARED_CREDENTIALS_FILE"));
	else if ((home = getenv("HOME")) != NULL)
		snprintf(credfile, sizeof(credfile), "%s/.aws/credentials",
		    home);
	if (credfile[0] != '\0' && access(credfile, R_OK) == 0)
		o.shared_file = credfile;
	o.profile = getenv("AWS_PROFILE");
	if ((r = s3_client_new(&o, &d->c, err, errlen)) != 0) {
		free(d);
		return r;
	}
	*out = &d->base;
	return 0;
}

static void
s3d_free(share_dest *base)
{
	struct s3_dest *d = (struct s3_dest *)base;

	s3_client_free(d->c);
	free(d);
}

static int
full_key(share_dest *base, const char *key, char *out, size_t outlen)
{
	struct s3_dest *d = (struct s3_dest *)base;

	if ((size_t)snprintf(out, outlen, "%s%s", d->prefix, key) >= outlen) {
		dest_set_error("object name too long");
		return GK_ERR_INVALID;
	}
	return 0;
}

static int
s3_fail(int r)
{
	dest_set_error("%s", s3_last_error());
	return r;
}

static int
s3d_put(share_dest *base, const char *key, share_wr **out)
{
	struct s3_wr *w;
	int r;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return GK_ERR_NOMEM;
	w->base.d = base;
	if ((r = full_key(base, key, w->key, sizeof(w->key))) != 0) {
		free(w);
		return r;
	}
	gk_buf_init(&w->buf, S3_PART_SIZE);
	*out = &w->base;
	return 0;
}

static int
s3d_wr_write(share_wr *base, const uint8_t *p, size_t len)
{
	struct s3_wr *w = (struct s3_wr *)base;
	struct s3_dest *d = (struct s3_dest *)base->d;
	int r;

	if (w->put == NULL && w->buf.len + len <= S3_PART_SIZE)
		return gk_buf_append(&w->buf, p, len);
	if (w->put == NULL) {
		if ((r = s3_put_begin(d->c, gk_slice_str(w->key), &w->put)) != 0)
			return s3_fail(r);
		if (w->buf.len > 0 && (r = s3_put_write(w->put, w->buf.data,
		    w->buf.len)) != 0)
			return s3_fail(r);
		gk_buf_release(&w->buf);
	}
	if ((r = s3_put_write(w->put, p, len)) != 0)
		return s3_fail(r);
	return 0;
}

static int
s3d_wr_commit(share_wr *base)
{
	struct s3_wr *w = (struct s3_wr *)base;
	struct s3_dest *d = (struct s3_dest *)base->d;
	s3_call call;
	long status;
	int r;

	if (w->put != NULL) {
		if ((r = s3_put_complete(w->put)) != 0)
			return s3_fail(r);
		return 0;
	}
	memset(&call, 0, sizeof(call));
	call.method = "PUT";
	call.key = gk_slice_str(w->key);
	call.body = gk_slice_of(w->buf.data, w->buf.len);
	call.idempotent = 1;
	if ((r = s3_client_call(d->c, &call, &status)) != 0)
		return s3_fail(r);
	return 0;
}

static void
s3d_wr_free(share_wr *base)
{
	struct s3_wr *w = (struct s3_wr *)base;

	s3_put_free(w->put);
	gk_buf_release(&w->buf);
	free(w);
}

static int
s3d_get(share_dest *base, const char *key, share_rd **out)
{
	struct s3_dest *d = (struct s3_dest *)base;
	struct s3_rd *rd;
	char k[1024];
	int r;

	if ((r = full_key(base, key, k, sizeof(k))) != 0)
		return r;
	if ((rd = calloc(1, sizeof(*rd))) == NULL)
		return GK_ERR_NOMEM;
	rd->base.d = base;
	if ((r = s3_get_open(d->c, gk_slice_str(k), 0, UINT64_MAX,
	    &rd->g)) != 0) {
		free(rd);
		return s3_fail(r);
	}
	*out = &rd->base;
	return 0;
}

static int
s3d_rd_read(share_rd *base, uint8_t *buf, size_t max, size_t *got)
{
	struct s3_rd *rd = (struct s3_rd *)base;
	int r;

	if ((r = s3_get_read(rd->g, buf, max, got)) != 0)
		return s3_fail(r);
	return 0;
}

static void
s3d_rd_free(share_rd *base)
{
	struct s3_rd *rd = (struct s3_rd *)base;

	s3_get_free(rd->g);
	free(rd);
}

static int
s3d_stat(share_dest *base, const char *key, uint64_t *size)
{
	struct s3_dest *d = (struct s3_dest *)base;
	char k[1024];
	int64_t mtime;
	int r;

	if ((r = full_key(base, key, k, sizeof(k))) != 0)
		return r;
	if ((r = s3_client_head(d->c, gk_slice_str(k), size, &mtime)) != 0)
		return s3_fail(r);
	return 0;
}

const struct dest_ops dest_s3_ops = {
	"s3://", s3d_open, s3d_free, s3d_put, s3d_wr_write, s3d_wr_commit,
	s3d_wr_free, s3d_get, s3d_rd_read, s3d_rd_free, s3d_stat,
};
