/*
 * backend.c - the backend table: which backend a target names (SQLite
 * file or PostgreSQL URI), opening a connection, how to name a target in
 * messages, and the read-side entry points (search, prune) that open
 * their own connection.
 */
#include "audit/audit_int.h"

#include <stdio.h>
#include <string.h>

/* Tests: a backend every target opens with (NULL: the real ones). */
static const audit_backend *debug_backend;

void
audit_debug_backend(const audit_backend *be)
{
	debug_backend = be;
}

static const audit_backend *
named_backend(const char *target)
{
	if (target != NULL && (strncmp(target, "postgres://", 11) == 0 ||
	    strncmp(target, "postgresql://", 13) == 0))
		return &audit_pg_backend;
	return &audit_sqlite_backend;
}

const audit_backend *
audit_backend_for(const char *target)
{
	return debug_backend != NULL ? debug_backend : named_backend(target);
}

int
audit_conn_open(const char *target, int create, audit_conn **out,
    char *err, size_t errlen)
{
	return audit_backend_for(target)->open(target, create, out, err,
	    errlen);
}

void
audit_conn_close(audit_conn *c)
{
	if (c != NULL)
		c->ops->close(c);
}

int
audit_backend_is_file(const char *db_path)
{
	return named_backend(db_path)->local;
}

const char *
audit_label(const char *db_path)
{
	static char buf[300];
	const char *host, *at, *end;

	if (audit_backend_is_file(db_path))
		return db_path;
	/* postgresql://[user[:password]@]host[:port][/db][?...] */
	host = strstr(db_path, "://") + 3;
	end = host + strcspn(host, "?");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		host = at + 1;
	snprintf(buf, sizeof(buf), "PostgreSQL %.*s", (int)(end - host) > 200 ?
	    200 : (int)(end - host), host);
	return buf;
}

int
audit_search(const char *db_path, const gk_audit_query *q,
    gk_audit_row_fn fn, void *arg, char *err, size_t errlen)
{
	return audit_backend_for(db_path)->search(db_path, q, fn, arg, err,
	    errlen);
}

int
audit_prune(const char *db_path, int64_t before_us, uint64_t *deleted)
{
	audit_conn *c = NULL;
	uint64_t total = 0, n = 0;
	int r = GK_ERR_INTERNAL, more = 1;

	if (deleted != NULL)
		*deleted = 0;
	if (audit_conn_open(db_path, 0, &c, NULL, 0) != 0) {
		r = GK_ERR_IO;
		goto out;
	}
	while (more) {
		if (c->ops->prune_span(c, before_us, &n, &more, NULL, 0) != 0) {
			r = GK_ERR_IO;
			goto out;
		}
		total += n;
	}
	r = 0;
out:
	if (deleted != NULL)
		*deleted = total;
	audit_conn_close(c);
	return r;
}

