/*
 * pg_int.h - shared by the PostgreSQL backend's files (postgres.c, pg_*.c)
 * only.
 */
#ifndef GK_AUDIT_PG_INT_H
#define GK_AUDIT_PG_INT_H

#include "audit/audit_int.h"

#include <libpq-fe.h>

struct pg_conn {
	audit_conn base;
	PGconn *db;
};

#define PG(c) ((struct pg_conn *)(c))

/* The schema version this build writes. */
#define AUDIT_PG_SCHEMA_VERSION 2

/* pg_util.c */
/* libpq's last message on one line. */
void audit_pg_err(PGconn *db, char *err, size_t errlen);
/* Runs sql without parameters: 0 or GK_ERR_UNAVAILABLE. */
int audit_pg_exec(PGconn *db, const char *sql, char *err, size_t errlen)
    GK_WUR;
/* Ends a failed transaction (nothing when none is open). */
void audit_pg_rollback(PGconn *db);
int audit_pg_query_int(PGconn *db, const char *sql, int64_t *out) GK_WUR;
/* Connects to target (timeouts, UTF8, notices silenced). */
int audit_pg_connect(const char *target, PGconn **out, char *err,
    size_t errlen) GK_WUR;
/* Runs a command (a prepared statement's name when prepared) with n
 * parameters; *keep gets the result when not NULL. 0 on success. */
int audit_pg_run(PGconn *db, const char *name_or_sql, int prepared, int n,
    const char *const *v, const int *len, const int *fmt, PGresult **keep,
    char *err, size_t errlen) GK_WUR;
/* A bytea column in text (hex) form into out[n]; GK_ERR_INTEGRITY. */
int audit_pg_get_bytes(const PGresult *res, int row, int col, uint8_t *out,
    size_t n);
int64_t audit_pg_get_int(const PGresult *res, int row, int col);

/* postgres.c: the connection */
int audit_pg_open(const char *target, int create, audit_conn **out,
    char *err, size_t errlen);
void audit_pg_close(audit_conn *base);
int audit_pg_same_target(const audit_conn *c, const char *target);
int audit_pg_flush(audit_conn *c);

/* pg_insert.c */
int audit_pg_insert(audit_conn *base, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen);

/* pg_read.c */
int audit_pg_tail(audit_conn *base, const char *instance, audit_tail *out,
    char *err, size_t errlen);
int audit_pg_search(const char *target, const gk_audit_query *q,
    gk_audit_row_fn fn, void *arg, char *err, size_t errlen);
int audit_pg_scan(const char *target, const audit_scan_cb *cb, void *arg,
    char *err, size_t errlen);

/* pg_prune.c */
int audit_pg_prune_target(audit_conn *base, int64_t before_us,
    audit_checkpoint *out, int *found, char *err, size_t errlen);
int audit_pg_prune_span(audit_conn *base, const char *instance,
    int64_t upto, uint64_t *deleted, int *more, char *err, size_t errlen);

/* pg_kv.c */
int audit_pg_jti_use(audit_conn *base, const char *jti, int64_t exp_s);
int audit_pg_grant_put(audit_conn *base, const char *id,
    const char *access_key, const char *doc, char *err, size_t errlen);
int audit_pg_grant_swap(audit_conn *base, const char *id,
    const char *access_key, const char *old_doc, const char *new_doc,
    char *err, size_t errlen);
int audit_pg_grant_get(audit_conn *base, int by_key, const char *v,
    gk_buf *doc, char *err, size_t errlen);
int audit_pg_grant_list(audit_conn *base, gk_audit_doc_fn fn, void *arg,
    char *err, size_t errlen);

#endif
