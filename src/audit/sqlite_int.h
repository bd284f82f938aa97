/*
 * sqlite_int.h - shared by the SQLite backend's files (sqlite*.c) only.
 */
#ifndef GK_AUDIT_SQLITE_INT_H
#define GK_AUDIT_SQLITE_INT_H

#include "audit/audit_int.h"

#include <sys/types.h>

#include <sqlite3.h>

struct sq_conn {
	audit_conn base;
	sqlite3 *db;
	sqlite3_stmt *ins;
	sqlite3_stmt *ins_rows;	/* AUDIT_SQ_INSERT_ROWS rows at once */
	sqlite3_stmt *cp_ins;
	dev_t dev;	/* identity of the file opened, to notice a swap */
	ino_t ino;
	char *path;
	struct sq_ckpt *ckpt;	/* NULL: SQLite's autocheckpoint */
};

/* Rows one prepared INSERT of a batch carries (fewer statements run per
 * record: a fifth less of the writer's CPU), and the parameters of one
 * row (insert_sql's ?1..?24). */
#define AUDIT_SQ_INSERT_ROWS 16
#define AUDIT_SQ_INSERT_COLS 24

#define SQ(c) ((struct sq_conn *)(c))

/* sqlite_util.c */
int audit_sq_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
    GK_WUR;
/* Runs a statement that returns one integer (PRAGMA user_version). */
int audit_sq_query_int(sqlite3 *db, const char *sql, int64_t *out) GK_WUR;
/* Copies column i when it holds exactly a hash; GK_ERR_INTEGRITY else. */
int audit_sq_blob_hash(sqlite3_stmt *st, int i, uint8_t out[AUDIT_HASH_LEN])
    GK_WUR;
int audit_sq_cp_row(sqlite3_stmt *st, audit_checkpoint *cp, int with_sig,
    int strict) GK_WUR;
int audit_sq_open_read(const char *path, sqlite3 **out, char *err,
    size_t errlen) GK_WUR;
/* The schema version this build writes. */
#define AUDIT_SQ_SCHEMA_VERSION 5
int audit_sq_current(sqlite3 *db);

/* sqlite.c: the connection */
int audit_sq_open(const char *path, int create, audit_conn **out, char *err,
    size_t errlen);
void audit_sq_close(audit_conn *base);
int audit_sq_same_target(const audit_conn *base, const char *path);
int audit_sq_flush(audit_conn *base);

/* sqlite_ckpt.c: WAL checkpoints by a thread of their own (instead of
 * the commits of c's connection); stop before closing c->db. */
int audit_sq_ckpt_start(struct sq_conn *c) GK_WUR;
/* Waits until no checkpoint is being run by that thread. */
void audit_sq_ckpt_idle(struct sq_conn *c);
/* Frames in the WAL after the writer's last commit (0 without the
 * thread). */
int audit_sq_ckpt_frames(const struct sq_conn *c);
void audit_sq_ckpt_stop(struct sq_conn *c);

/* sqlite_insert.c */
int audit_sq_insert(audit_conn *base, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen);

/* sqlite_read.c */
int audit_sq_tail(audit_conn *base, const char *instance, audit_tail *out,
    char *err, size_t errlen);
int audit_sq_search(const char *db_path, const gk_audit_query *q,
    gk_audit_row_fn fn, void *arg, char *err, size_t errlen);
int audit_sq_scan(const char *db_path, const audit_scan_cb *cb, void *arg,
    char *err, size_t errlen);

/* sqlite_prune.c */
int audit_sq_prune_target(audit_conn *base, int64_t before_us,
    audit_checkpoint *out, int *found, char *err, size_t errlen);
int audit_sq_prune_span(audit_conn *base, const char *instance,
    int64_t upto, uint64_t *deleted, int *more, char *err, size_t errlen);

/* sqlite_kv.c */
int audit_sq_jti_use(audit_conn *base, const char *jti, int64_t exp_s);
int audit_sq_grant_put(audit_conn *base, const char *id,
    const char *access_key, const char *doc, char *err, size_t errlen);
int audit_sq_grant_swap(audit_conn *base, const char *id,
    const char *access_key, const char *old_doc, const char *new_doc,
    char *err, size_t errlen);
int audit_sq_grant_get(audit_conn *base, int by_key, const char *v,
    gk_buf *doc, char *err, size_t errlen);
int audit_sq_grant_list(audit_conn *base, gk_audit_doc_fn fn, void *arg,
    char *err, size_t errlen);

#endif
