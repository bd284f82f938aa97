/*
 * pg_prune.c - the PostgreSQL backend's retention: where to prune to,
 * and one span of a chain deleted with its anchor moved, per transaction.
 */
#include "audit/pg_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
audit_pg_prune_target(audit_conn *base, int64_t before_us, audit_checkpoint *out,
    int *found, char *err, size_t errlen)
{
	static const char sql[] = AUDIT_PRUNE_TARGET_SQL;
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	char before[24];
	const char *v[1] = { before };
	int r = GK_ERR_UNAVAILABLE;

	*found = 0;
	memset(out, 0, sizeof(*out));
	snprintf(before, sizeof(before), "%" PRId64, before_us);
	if (audit_pg_run(c->db, sql, 0, 1, v, NULL, NULL, &res, err, errlen) != 0)
		goto out;
	if (PQntuples(res) > 0) {
		if (strlen(PQgetvalue(res, 0, 0)) > AUDIT_INSTANCE_MAX ||
		    audit_pg_get_bytes(res, 0, 2, out->hash, AUDIT_HASH_LEN) != 0) {
			audit_set_err(err, errlen, "a stored checkpoint is "
			    "malformed");
			goto out;
		}
		snprintf(out->instance, sizeof(out->instance), "%s",
		    PQgetvalue(res, 0, 0));
		out->seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		out->time_us = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		*found = 1;
	}
	r = 0;
out:
	PQclear(res);
	return r;
}

int
audit_pg_prune_span(audit_conn *base, const char *instance, int64_t upto,
    uint64_t *deleted, int *more, char *err, size_t errlen)
{
	static const char find_sql[] = AUDIT_PRUNE_FIND_SQL;
	static const char del_sql[] = AUDIT_PRUNE_DELETE_SQL;
	static const char anchor_sql[] = AUDIT_ANCHOR_SET_SQL;
	struct pg_conn *c = PG(base);
	PGresult *res = NULL;
	char up[24], seq[24], t[24], inst[AUDIT_INSTANCE_MAX + 1];
	uint8_t hash[AUDIT_HASH_LEN];
	const char *v[4];
	int len[4] = { 0, 0, AUDIT_HASH_LEN, 0 }, fmt[4] = { 0, 0, 1, 0 };
	int r = GK_ERR_UNAVAILABLE;

	*deleted = 0;
	*more = 0;
	audit_set_err(err, errlen, "%s", "");
	snprintf(up, sizeof(up), "%" PRId64, upto);
	v[0] = instance;
	v[1] = up;
	if (audit_pg_exec(c->db, "BEGIN", err, errlen) != 0 ||
	    audit_pg_run(c->db, find_sql, 0, 2, v, NULL, NULL, &res, err, errlen) != 0)
		goto out;
	if (PQntuples(res) == 0) {
		r = 0;
		goto out;
	}
	if (strlen(PQgetvalue(res, 0, 0)) > AUDIT_INSTANCE_MAX ||
	    audit_pg_get_bytes(res, 0, 2, hash, AUDIT_HASH_LEN) != 0) {
		audit_set_err(err, errlen, "a stored checkpoint is malformed");
		goto out;
	}
	snprintf(inst, sizeof(inst), "%s", PQgetvalue(res, 0, 0));
	snprintf(seq, sizeof(seq), "%s", PQgetvalue(res, 0, 1));
	snprintf(t, sizeof(t), "%s", PQgetvalue(res, 0, 3));
	PQclear(res);
	res = NULL;
	v[0] = inst;
	v[1] = seq;
	if (audit_pg_run(c->db, del_sql, 0, 2, v, NULL, NULL, &res, err, errlen) != 0)
		goto out;
	*deleted = strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	res = NULL;
	v[2] = (const char *)hash;
	v[3] = t;
	if (audit_pg_run(c->db, anchor_sql, 0, 4, v, len, fmt, NULL, err, errlen) != 0 ||
	    audit_pg_exec(c->db, "COMMIT", err, errlen) != 0) {
		*deleted = 0;
		goto out;
	}
	*more = 1;
	r = 0;
out:
	PQclear(res);
	audit_pg_rollback(c->db);
	return r;
}
