/*
 * pg_kv.c - the tables beside the log in the PostgreSQL backend: the v2
 * replay cache (a token id single-use across instances) and the grants.
 */
#include "audit/pg_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
audit_pg_jti_use(audit_conn *base, const char *jti, int64_t exp_s)
{
	static const char sql[] =
	    "INSERT INTO jti(jti, exp_us) VALUES ($1, $2)"
	    " ON CONFLICT (jti) DO UPDATE SET exp_us = EXCLUDED.exp_us"
	    " WHERE jti.exp_us < $3";
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	char exp[24], now[24];
	const char *v[3] = { jti, exp, now };
	int64_t exp_us;
	int r;

	if (c == NULL || jti == NULL)
		return GK_ERR_UNAVAILABLE;
	if (__builtin_mul_overflow(exp_s, 1000000, &exp_us))
		exp_us = INT64_MAX;
	snprintf(exp, sizeof(exp), "%" PRId64, exp_us);
	snprintf(now, sizeof(now), "%" PRId64, gk_now_us());
	if (audit_pg_run(c->db, sql, 0, 3, v, NULL, NULL, &res, NULL, 0) != 0)
		return GK_ERR_UNAVAILABLE;
	/* 1: inserted, or an expired entry renewed; 0: still in use */
	r = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : GK_ERR_EXISTS;
	PQclear(res);
	return r;
}

/* ---- grants ------------------------------------------------------------ */

int
audit_pg_grant_put(audit_conn *base, const char *id, const char *access_key,
    const char *doc, char *err, size_t errlen)
{
	static const char sql[] = "INSERT INTO grants(id, access_key, doc)"
	    " VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET"
	    " access_key = EXCLUDED.access_key, doc = EXCLUDED.doc";
	const char *v[3] = { id, access_key, doc };
	PGresult *res;
	const char *state;
	int r;

	res = PQexecParams(PG(base)->db, sql, 3, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		r = 0;
	} else {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		r = state != NULL && strcmp(state, "23505") == 0 ?
		    GK_ERR_EXISTS : GK_ERR_UNAVAILABLE;
		audit_pg_err(PG(base)->db, err, errlen);
	}
	PQclear(res);
	return r;
}

/* One statement: the row lock makes a second swap wait for the first and
 * then find the document changed (READ COMMITTED re-checks WHERE). */
int
audit_pg_grant_swap(audit_conn *base, const char *id,
    const char *access_key, const char *old_doc, const char *new_doc,
    char *err, size_t errlen)
{
	PGresult *res = NULL;
	const char *v[4] = { id, old_doc, new_doc, access_key };
	int r;

	/* (audit_pg_run maps unique_violation, the access key, to
	 * GK_ERR_EXISTS) */
	if ((r = audit_pg_run(PG(base)->db, "UPDATE grants SET doc = $3,"
	    " access_key = $4 WHERE id = $1 AND doc = $2", 0, 4, v, NULL,
	    NULL, &res, err, errlen)) != 0)
		return r;
	r = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : GK_ERR_DENIED;
	PQclear(res);
	return r;
}

int
audit_pg_grant_get(audit_conn *base, int by_key, const char *v, gk_buf *doc,
    char *err, size_t errlen)
{
	PGresult *res = NULL;
	const char *vals[1] = { v };
	int r;

	if (audit_pg_run(PG(base)->db, by_key ?
	    "SELECT doc FROM grants WHERE access_key = $1" :
	    "SELECT doc FROM grants WHERE id = $1", 0, 1, vals, NULL, NULL,
	    &res, err, errlen) != 0)
		return GK_ERR_UNAVAILABLE;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return GK_ERR_NOT_FOUND;
	}
	gk_buf_reset(doc);
	r = gk_buf_append_str(doc, PQgetvalue(res, 0, 0));
	if (r == 0)
		r = gk_buf_append(doc, "", 1);
	if (r == 0)
		doc->len--;
	PQclear(res);
	return r;
}

int
audit_pg_grant_list(audit_conn *base, gk_audit_doc_fn fn, void *arg, char *err,
    size_t errlen)
{
	PGresult *res = NULL;
	int i, r = 0;

	if (audit_pg_run(PG(base)->db, "SELECT id, access_key, doc FROM grants"
	    " ORDER BY id", 0, 0, NULL, NULL, NULL, &res, err, errlen) != 0)
		return GK_ERR_UNAVAILABLE;
	for (i = 0; i < PQntuples(res) && r == 0; i++)
		r = fn(arg, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2));
	PQclear(res);
	return r;
}
