/*
 * sqlite_ckpt.c - WAL checkpoints off the writer's thread. With the
 * journal (audit_sqlite_journaled), the writer's connection does not
 * checkpoint when it commits: SQLite's autocheckpoint would copy the WAL
 * into the database and wait for two fsyncs in the middle of a batch.
 * Instead a thread of its own, on its own connection, runs a PASSIVE
 * checkpoint whenever a commit leaves CKPT_FRAMES or more frames in the
 * WAL. A passive checkpoint never blocks the writer (nor waits for it);
 * the writer restarts the WAL from its beginning at its next transaction
 * once a checkpoint has copied all of it. Emptying the journal while
 * serving (once per few MiB) syncs the writer's WAL (audit_sqlite_wal_sync,
 * which reads the frame count kept here); past WAL_SYNC_FRAMES_MAX, or
 * when idle, it asks the writer's own connection to checkpoint
 * (audit_sqlite_durable), after waiting for a checkpoint being run here:
 * it then finds little left to copy, and the WAL starts over.
 */
#include "audit/sqlite_int.h"

#include <pthread.h>
#include <stdlib.h>

/* SQLite's own autocheckpoint threshold (pages of WAL). */
#define CKPT_FRAMES 1000

struct sq_ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int want;		/* a checkpoint is due */
	int running;		/* one is being run */
	int stop;
	int frames;		/* WAL frames after the last commit (the
				 * writer's thread only) */
	sqlite3 *db;		/* the checkpointer's connection */
};

static void *
ckpt_main(void *arg)
{
	struct sq_ckpt *k = arg;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->want && !k->stop)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->stop)
			break;
		k->want = 0;
		k->running = 1;
		pthread_mutex_unlock(&k->mu);
		/* SQLITE_BUSY (another checkpoint runs) is fine: the next
		 * commit asks again */
		(void)sqlite3_wal_checkpoint_v2(k->db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&k->mu);
		k->running = 0;
		pthread_cond_broadcast(&k->cv);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* After each commit of the writer's connection (SQLite's WAL hook). */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_ckpt *k = arg;

	(void)db;
	(void)name;
	k->frames = frames;
	if (frames >= CKPT_FRAMES) {
		pthread_mutex_lock(&k->mu);
		k->want = 1;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
	}
	return SQLITE_OK;
}

int
audit_sq_ckpt_start(struct sq_conn *c)
{
	struct sq_ckpt *k;
	int r = GK_ERR_NOMEM, inited = 0;

	if (c->ckpt != NULL)
		return 0;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return GK_ERR_NOMEM;
	if (sqlite3_open_v2(c->path, &k->db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK || audit_sq_exec(k->db, "PRAGMA synchronous=NORMAL",
	    NULL, 0) != 0) {
		r = GK_ERR_UNAVAILABLE;
		goto fail;
	}
	sqlite3_busy_timeout(k->db, AUDIT_BUSY_MS);
	if (pthread_mutex_init(&k->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&k->cv, NULL) != 0) {
		pthread_mutex_destroy(&k->mu);
		goto fail;
	}
	inited = 1;
	if (pthread_create(&k->thread, NULL, ckpt_main, k) != 0)
		goto fail;
	c->ckpt = k;
	/* replaces the connection's autocheckpoint */
	sqlite3_wal_hook(c->db, wal_hook, k);
	return 0;
fail:
	if (inited) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
	}
	sqlite3_close(k->db);
	free(k);
	return r;
}

void
audit_sq_ckpt_idle(struct sq_conn *c)
{
	struct sq_ckpt *k = c->ckpt;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	while (k->running)
		pthread_cond_wait(&k->cv, &k->mu);
	pthread_mutex_unlock(&k->mu);
}

int
audit_sq_ckpt_frames(const struct sq_conn *c)
{
	return c->ckpt != NULL ? c->ckpt->frames : 0;
}

void
audit_sq_ckpt_stop(struct sq_conn *c)
{
	struct sq_ckpt *k = c->ckpt;

	if (k == NULL)
		return;
	sqlite3_wal_hook(c->db, NULL, NULL);
	pthread_mutex_lock(&k->mu);
	k->stop = 1;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	sqlite3_close(k->db);
	free(k);
	c->ckpt = NULL;
}
