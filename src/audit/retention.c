/*
 * retention.c - the writer's retention: one span of a chain per step,
 * after a signed prune record.
 */
#include "audit/audit_int.h"

#include <string.h>

/* One retention chunk; returns 1 while more rows may remain. The first
 * chunk for an instance writes its prune record (prune_note). */
static int
prune_step_run(gk_audit *a, uint64_t *deleted)
{
	int64_t before = gk_sub_sat(gk_now_us(), a->retention_us);
	audit_checkpoint cp;
	char err[256];
	int more = 0, found = 0;

	*deleted = 0;
	writer_commit_open(a);
	if (a->conn == NULL) {
		if (writer_open_conn(a, err, sizeof(err)) != 0)
			return 0; /* the next batch reports it; retry */
	}
	if (!a->prune_have) {
		if (!a->have_key)
			return 0;	/* a prune must be signed */
		if (a->conn->ops->prune_target(a->conn, before, &a->prune_to,
		    &found, err, sizeof(err)) != 0)
			goto failed;
		if (!found)
			return 0;
		if (audit_prune_note(a->conn, a->seed, "retention", &a->prune_to,
		    before, &a->scratch, &cp, err, sizeof(err)) != 0)
			goto failed;
		if (strcmp(cp.instance, a->instance) == 0) {
			/* our own chain grew by the prune record */
			writer_cp_committed(a, &cp);
			a->chain_loaded = 0;
		}
		a->prune_have = 1;
		return 1;
	}
	if (a->conn->ops->prune_span(a->conn, a->prune_to.instance,
	    a->prune_to.seq, deleted, &more, err, sizeof(err)) != 0)
		goto failed;
	if (!more)
		a->prune_have = 0;	/* next: another instance, or done */
	return 1;
failed:
	gk_warn("audit: retention on %s failed (%s); retrying in an hour",
	    a->label, err);
	a->prune_have = 0;
	return 0;
}

/*
 * With the journal, SQLite's commits do not wait for the disk; a prune
 * record and the deletions are not in the journal, so they commit with
 * a full sync (which also makes every earlier commit durable).
 */
int
writer_prune_step(gk_audit *a, uint64_t *deleted)
{
	char err[256];
	int more;

	*deleted = 0;
	writer_commit_open(a);
	if (a->conn == NULL && writer_open_conn(a, err, sizeof(err)) != 0)
		return 0; /* the next batch reports it; retry */
	if (a->journal != NULL && audit_sqlite_set_full_sync(a->conn, 1) != 0)
		return 0;
	more = prune_step_run(a, deleted);
	if (a->journal != NULL && a->conn != NULL &&
	    audit_sqlite_set_full_sync(a->conn, 0) != 0)
		writer_drop_conn(a);	/* reopened with the journal's setting */
	return more;
}
