/*
 * dest.c - where shares live: parsing a destination URL and the backend
 * table (dest_fs.c: a directory; dest_s3.c: any S3 endpoint).
 */
#include "share/share.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share/dest_int.h"

static _Thread_local char last_err[256];

void
dest_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_err, sizeof(last_err), fmt, ap);
	va_end(ap);
}

const char *
share_dest_error(void)
{
	return last_err[0] ? last_err : "unknown error";
}

static const struct dest_ops *const backends[] = {
	&dest_fs_ops,
	&dest_s3_ops,
};

int
share_dest_open(const char *url, share_dest **out, char *err, size_t errlen)
{
	size_t i, sl;

	for (i = 0; i < GK_ARRAY_LEN(backends); i++) {
		sl = strlen(backends[i]->scheme);
		if (strncmp(url, backends[i]->scheme, sl) == 0)
			return backends[i]->open(url + sl, out, err, errlen);
	}
	snprintf(err, errlen, "destination must be file:///DIR or "
	    "s3://BUCKET[/PREFIX][?endpoint=URL&region=R]");
	return GK_ERR_INVALID;
}

void
share_dest_free(share_dest *d)
{
	if (d != NULL)
		d->ops->free(d);
}

const char *
share_dest_name(const share_dest *d)
{
	return d->name;
}

int
share_dest_put(share_dest *d, const char *key, share_wr **out)
{
	return d->ops->put(d, key, out);
}

int
share_wr_write(share_wr *w, const uint8_t *p, size_t len)
{
	return w->d->ops->wr_write(w, p, len);
}

int
share_wr_commit(share_wr *w)
{
	return w->d->ops->wr_commit(w);
}

void
share_wr_free(share_wr *w)
{
	if (w != NULL)
		w->d->ops->wr_free(w);
}

int
share_dest_get(share_dest *d, const char *key, share_rd **out)
{
	return d->ops->get(d, key, out);
}

int
share_rd_read(void *rd, uint8_t *buf, size_t max, size_t *got)
{
	share_rd *r = rd;

	return r->d->ops->rd_read(r, buf, max, got);
}

void
share_rd_free(share_rd *r)
{
	if (r != NULL)
		r->d->ops->rd_free(r);
}

int
share_dest_stat(share_dest *d, const char *key, uint64_t *size)
{
	return d->ops->stat(d, key, size);
}
