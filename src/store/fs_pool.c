/*
 * fs_pool.c - the fs store's decrypt helpers: a few threads, shared by all
 * the store's readers, that take part of a large read (whole chunks read
 * and authenticated) while the reading thread does the rest, so a single
 * download decrypts on more than one core.
 *
 * A job a helper has not started yet is taken back and run by the thread
 * that waits for it: a read never waits behind other readers' work, and
 * with every helper busy (many downloads at once) each reader simply does
 * all of its own work, as it would without helpers. The threads start with
 * the first job, so a process that never reads much never has them.
 */
#include "fs_int.h"

#include <stdlib.h>
#include <unistd.h>

enum { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct fs_pool {
	pthread_mutex_t mu;
	pthread_cond_t work;	/* a job was queued, or quit */
	pthread_cond_t done;	/* a job finished */
	fs_job *head, *tail;
	pthread_t th[FS_POOL_MAX];
	int want;		/* helpers to start: cores - 1, capped */
	int started;		/* helpers running */
	int tried;		/* the start was attempted */
	int quit;
};

int
fs_pool_new(fs_pool **out)
{
	fs_pool *p;
	long n;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return GK_ERR_NOMEM;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		return GK_ERR_INTERNAL;
	}
	if (pthread_cond_init(&p->work, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		free(p);
		return GK_ERR_INTERNAL;
	}
	if (pthread_cond_init(&p->done, NULL) != 0) {
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return GK_ERR_INTERNAL;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	p->want = n < 0 ? 0 : n > FS_POOL_MAX ? FS_POOL_MAX : (int)n;
	*out = p;
	return 0;
}

void
fs_pool_free(fs_pool *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->started; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static void *
helper_main(void *arg)
{
	fs_pool *p = arg;
	fs_job *j;
	int r;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->head == NULL)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->quit)
			break;
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		j->next = NULL;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&p->mu);
		r = j->fn(j);
		pthread_mutex_lock(&p->mu);
		/* the waiter may free j as soon as it sees JOB_DONE */
		j->r = r;
		j->state = JOB_DONE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Caller holds p->mu. */
static void
start_helpers(fs_pool *p)
{
	int i;

	p->tried = 1;
	for (i = 0; i < p->want; i++) {
		if (pthread_create(&p->th[i], NULL, helper_main, p) != 0) {
			gk_warn("store: decrypt helper %d not started; reads "
			    "use fewer cores", i);
			break;
		}
		pthread_setname_np(p->th[i], "gk-decrypt");
		p->started = i + 1;
	}
}

int
fs_pool_helpers(fs_pool *p)
{
	int n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->mu);
	if (!p->tried && !p->quit)
		start_helpers(p);
	n = p->started;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
fs_pool_submit(fs_pool *p, fs_job *j)
{
	j->next = NULL;
	j->r = GK_ERR_INTERNAL;
	pthread_mutex_lock(&p->mu);
	j->state = JOB_QUEUED;
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

int
fs_pool_wait(fs_pool *p, fs_job *j)
{
	fs_job **pp, *prev = NULL;
	int r;

	pthread_mutex_lock(&p->mu);
	if (j->state == JOB_QUEUED) {
		/* not started: take it back and run it here */
		for (pp = &p->head; *pp != NULL && *pp != j; pp = &(*pp)->next)
			prev = *pp;
		if (*pp == j) {
			*pp = j->next;
			if (p->tail == j)
				p->tail = prev;
		}
		j->next = NULL;
		j->state = JOB_IDLE;
		pthread_mutex_unlock(&p->mu);
		return j->fn(j);
	}
	while (j->state != JOB_DONE)
		pthread_cond_wait(&p->done, &p->mu);
	j->state = JOB_IDLE;
	r = j->r;
	pthread_mutex_unlock(&p->mu);
	return r;
}
