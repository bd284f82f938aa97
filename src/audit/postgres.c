/* postgres.c - the PostgreSQL backend (placeholder). */
#include "audit/audit_int.h"

#include <stdio.h>

static int
pg_open(const char *target, int create, audit_conn **out, char *err,
    size_t errlen)
{
	(void)target;
	(void)create;
	*out = NULL;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "PostgreSQL is not built in");
	return GK_ERR_UNAVAILABLE;
}

static int
pg_search(const char *target, const gk_audit_query *q, gk_audit_row_fn fn,
    void *arg, char *err, size_t errlen)
{
	audit_conn *c = NULL;

	(void)q;
	(void)fn;
	(void)arg;
	return pg_open(target, 0, &c, err, errlen) != 0 ? GK_ERR_IO : 0;
}

static int
pg_scan(const char *target, const audit_scan_cb *cb, void *arg, char *err,
    size_t errlen)
{
	audit_conn *c = NULL;

	(void)cb;
	(void)arg;
	return pg_open(target, 0, &c, err, errlen) != 0 ? GK_ERR_IO : 0;
}

const audit_backend audit_pg_backend = {
	.name = "postgres",
	.open = pg_open,
	.search = pg_search,
	.scan = pg_scan,
};
