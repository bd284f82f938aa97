/*
 * pg_read.c - the PostgreSQL backend's reads: where a chain ends, search
 * (own connection, rows streamed) and the verify scan (one snapshot).
 */
#include "audit/pg_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char select_sql[] =
    AUDIT_SELECT_COLS
    " FROM audit WHERE true";

/*
 * Searches keep their connections for the next one (the console's and
 * the API's searches, one after another): a PostgreSQL connection is a
 * server process started, tens of milliseconds, more than the search.
 * At most SEARCH_IDLE_MAX are kept, each for the target it was opened
 * to; only one left idle (no transaction, nothing unread) is kept, and
 * a kept one that fails before a row is read is replaced by a new one
 * (the server may have restarted meanwhile). They are closed at exit.
 */
#define SEARCH_IDLE_MAX 2

static struct {
	PGconn *db;
	char *target;
} search_idle[SEARCH_IDLE_MAX];
static pthread_mutex_t search_mu = PTHREAD_MUTEX_INITIALIZER;
static int search_atexit;

static void
search_idle_close(void)
{
	int i;

	/* at exit: a thread still searching keeps the lock; the process's
	 * end then closes the sockets */
	if (pthread_mutex_trylock(&search_mu) != 0)
		return;
	for (i = 0; i < SEARCH_IDLE_MAX; i++) {
		PQfinish(search_idle[i].db);
		free(search_idle[i].target);
		search_idle[i].db = NULL;
		search_idle[i].target = NULL;
	}
	pthread_mutex_unlock(&search_mu);
}

/* A kept connection to target, or NULL. */
static PGconn *
search_take(const char *target)
{
	PGconn *db = NULL;
	int i;

	pthread_mutex_lock(&search_mu);
	for (i = 0; i < SEARCH_IDLE_MAX && db == NULL; i++) {
		if (search_idle[i].db == NULL ||
		    strcmp(search_idle[i].target, target) != 0)
			continue;
		db = search_idle[i].db;
		free(search_idle[i].target);
		search_idle[i].db = NULL;
		search_idle[i].target = NULL;
	}
	pthread_mutex_unlock(&search_mu);
	return db;
}

/* Keeps db for the next search when it is idle and there is room;
 * closes it else. */
static void
search_give(PGconn *db, const char *target)
{
	char *t = NULL;
	int i;

	if (db == NULL)
		return;
	if (PQstatus(db) != CONNECTION_OK ||
	    PQtransactionStatus(db) != PQTRANS_IDLE ||
	    (t = strdup(target)) == NULL) {
		PQfinish(db);
		return;
	}
	pthread_mutex_lock(&search_mu);
	if (!search_atexit)
		search_atexit = atexit(search_idle_close) == 0 ? 1 : -1;
	for (i = 0; i < SEARCH_IDLE_MAX && search_atexit == 1; i++) {
		if (search_idle[i].db == NULL) {
			search_idle[i].db = db;
			search_idle[i].target = t;
			db = NULL;
			t = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&search_mu);
	PQfinish(db);
	free(t);
}

int
audit_pg_tail(audit_conn *base, const char *instance, audit_tail *out, char *err,
    size_t errlen)
{
	static const char *const q[3] = {
		AUDIT_TAIL_LAST_SQL, AUDIT_TAIL_ANCHOR_SQL, AUDIT_TAIL_CP_SQL,
	};
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	const char *v[1] = { instance };
	int i, r = GK_ERR_UNAVAILABLE, have = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < 3; i++) {
		if (i == 1 && have)
			continue;
		if (audit_pg_run(c->db, q[i], 0, 1, v, NULL, NULL, &res, err,
		    errlen) != 0)
			goto out;
		if (PQntuples(res) > 0) {
			if (i < 2) {
				out->seq = audit_pg_get_int(res, 0, 0);
				if (audit_pg_get_bytes(res, 0, 1, out->hash,
				    AUDIT_HASH_LEN) != 0) {
					audit_set_err(err, errlen, "the stored chain "
					    "of %s ends in a bad hash",
					    instance);
					r = GK_ERR_INTEGRITY;
					goto out;
				}
				have = 1;
			} else {
				out->cp_seq = audit_pg_get_int(res, 0, 0);
				out->cp_time_us = audit_pg_get_int(res, 0, 1);
			}
		}
		PQclear(res);
		res = NULL;
	}
	r = 0;
out:
	PQclear(res);
	return r;
}

/* ---- reading --------------------------------------------------------- */

struct pg_row {
	const PGresult *res;
	int row;
};

static const char *
pg_text(void *ctx, int col, size_t *len)
{
	struct pg_row *r = ctx;
	const char *s;

	*len = 0;
	if (PQgetisnull(r->res, r->row, col))
		return NULL;
	s = PQgetvalue(r->res, r->row, col);
	*len = strlen(s);
	return s;
}

static int64_t
pg_num(void *ctx, int col)
{
	struct pg_row *r = ctx;

	return audit_pg_get_int(r->res, r->row, col);
}

static int
pg_bytes(void *ctx, int col, uint8_t *out, size_t n)
{
	struct pg_row *r = ctx;

	return audit_pg_get_bytes(r->res, r->row, col, out, n);
}

static void
read_row(const PGresult *res, int i, gk_audit_row *row)
{
	struct pg_row r = { res, i };
	audit_cols c = { pg_text, pg_num, pg_bytes, &r };

	audit_row_read(&c, row);
}

/*
 * Streams the rows of a query one at a time (constant memory) to fn.
 * Returns 0, fn's non-zero value, or GK_ERR_IO; *rows (when not NULL)
 * counts the rows handed to fn.
 */
static int
stream(PGconn *db, const char *sql, int n, const char *const *v,
    const int *len, const int *fmt, gk_audit_row_fn fn, void *arg,
    uint64_t *rows, char *err, size_t errlen)
{
	PGresult *res;
	gk_audit_row row;
	int r = 0, failed = 0;

	if (!PQsendQueryParams(db, sql, n, NULL, v, len, fmt, 0) ||
	    !PQsetSingleRowMode(db)) {
		audit_pg_err(db, err, errlen);
		return GK_ERR_IO;
	}
	while ((res = PQgetResult(db)) != NULL) {
		ExecStatusType s = PQresultStatus(res);

		if (s == PGRES_SINGLE_TUPLE && r == 0) {
			read_row(res, 0, &row);
			if (rows != NULL)
				(*rows)++;
			r = fn(arg, &row);
		} else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK &&
		    !failed) {
			audit_pg_err(db, err, errlen);
			failed = 1;
		}
		PQclear(res);
		/* after fn stopped, drain: libpq needs the rest read */
	}
	if (failed && r == 0)
		return GK_ERR_IO;
	return r;
}

/* The exclusive upper bound of strings starting with prefix (see
 * sqlite.c); NULL when there is none. */
int
audit_pg_search(const char *target, const gk_audit_query *q, gk_audit_row_fn fn,
    void *arg, char *err, size_t errlen)
{
	PGconn *db = NULL;
	audit_query b;
	uint64_t rows = 0;
	const char *v[AUDIT_QUERY_MAX];
	int len[AUDIT_QUERY_MAX], fmt[AUDIT_QUERY_MAX], i;
	char num[AUDIT_QUERY_MAX][24];
	int r;

	audit_set_err(err, errlen, "%s", "");
	if ((r = audit_query_build(q, select_sql, select_sql, 1, &b, err,
	    errlen)) != 0)
		goto out;
	for (i = 0; i < b.n; i++) {
		len[i] = 0;
		fmt[i] = 0;
		if (b.v[i].type == AUDIT_Q_INT) {
			snprintf(num[i], sizeof(num[i]), "%" PRId64, b.v[i].i);
			v[i] = num[i];
		} else {
			v[i] = b.v[i].s;	/* text: NUL-terminated */
			if (b.v[i].type == AUDIT_Q_BLOB) {
				len[i] = (int)b.v[i].len;
				fmt[i] = 1;
			}
		}
	}
	if ((db = search_take(target)) != NULL) {
		r = stream(db, (const char *)b.sql.data, b.n, v, len, fmt, fn,
		    arg, &rows, err, errlen);
		if (r != GK_ERR_IO || rows > 0)
			goto out;
		/* a kept connection that failed at once: a new one */
		PQfinish(db);
		db = NULL;
		audit_set_err(err, errlen, "%s", "");
	}
	r = GK_ERR_IO;
	if (audit_pg_connect(target, &db, err, errlen) != 0)
		goto out;
	r = stream(db, (const char *)b.sql.data, b.n, v, len, fmt, fn, arg,
	    NULL, err, errlen);
out:
	search_give(db, target);
	audit_query_release(&b);
	return r;
}

static int
read_cps(PGconn *db, const char *sql, int with_sig,
    int (*fn)(void *, const audit_checkpoint *), void *arg, char *err,
    size_t errlen)
{
	PGresult *res = NULL;
	audit_checkpoint cp;
	int i, r = GK_ERR_IO;

	if (audit_pg_run(db, sql, 0, 0, NULL, NULL, NULL, &res, err, errlen) != 0)
		return GK_ERR_IO;
	for (i = 0; i < PQntuples(res); i++) {
		memset(&cp, 0, sizeof(cp));
		if (strlen(PQgetvalue(res, i, 0)) > AUDIT_INSTANCE_MAX ||
		    PQgetvalue(res, i, 0)[0] == '\0')
			continue;
		snprintf(cp.instance, sizeof(cp.instance), "%s",
		    PQgetvalue(res, i, 0));
		cp.seq = audit_pg_get_int(res, i, 1);
		(void)audit_pg_get_bytes(res, i, 2, cp.hash, AUDIT_HASH_LEN);
		cp.time_us = audit_pg_get_int(res, i, 3);
		if (with_sig)
			(void)audit_pg_get_bytes(res, i, 4, cp.sig, AUDIT_SIG_LEN);
		if ((r = fn(arg, &cp)) != 0)
			goto out;
	}
	r = 0;
out:
	PQclear(res);
	return r;
}

int
audit_pg_scan(const char *target, const audit_scan_cb *cb, void *arg, char *err,
    size_t errlen)
{
	PGconn *db = NULL;
	gk_buf sql;
	int64_t v = -1;
	int r = GK_ERR_IO;

	gk_buf_init(&sql, 4096);
	if (audit_pg_connect(target, &db, err, errlen) != 0)
		goto out;
	if (audit_pg_query_int(db, "SELECT version FROM audit_schema", &v) != 0 ||
	    v != AUDIT_PG_SCHEMA_VERSION) {
		audit_set_err(err, errlen, "not an audit database of schema version "
		    "%d", AUDIT_PG_SCHEMA_VERSION);
		goto out;
	}
	/* one snapshot while writers run */
	if (audit_pg_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	    err, errlen) != 0)
		goto out;
	if ((r = read_cps(db, "SELECT instance_id, seq, hash, time_us FROM"
	    " audit_anchor ORDER BY instance_id COLLATE \"C\"", 0, cb->anchor,
	    arg, err, errlen)) != 0 ||
	    (r = read_cps(db, "SELECT instance_id, seq, hash, time_us, sig"
	    " FROM audit_checkpoint ORDER BY instance_id COLLATE \"C\", seq",
	    1, cb->checkpoint, arg, err, errlen)) != 0)
		goto out;
	r = GK_ERR_IO;
	if (gk_buf_append_str(&sql, select_sql) != 0 ||
	    gk_buf_append_str(&sql, " ORDER BY instance_id COLLATE \"C\","
	    " seq, id") != 0)
		goto out;
	r = stream(db, (const char *)sql.data, 0, NULL, NULL, NULL,
	    cb->record, arg, NULL, err, errlen);
out:
	PQfinish(db);
	gk_buf_release(&sql);
	return r;
}
