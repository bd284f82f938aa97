/*
 * cpship.c - with the s3 store and [audit] checkpoint_prefix set, every
 * signed audit checkpoint is also put to the customer's bucket as
 * <prefix>/<instance>/<seq, 20 digits>.json (the checkpoint file's line),
 * so a copy lives outside this machine. The audit writer hands each line
 * over (it must not wait on the network); one thread puts them in order.
 * A failed put is logged: the checkpoint stays in the database and the
 * checkpoint file either way.
 */
#include "gate_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "store/store.h"

#define SHIP_QUEUE_MAX 1024
#define SHIP_LINE_MAX (16u * 1024)

struct ship_item {
	struct ship_item *next;
	char *key;
	char *line;
};

struct gate_cpship {
	gk_store *store;
	const char *prefix;	/* the config's, outlives us */
	unsigned retention_days; /* Object Lock COMPLIANCE, 0: none */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct ship_item *head, *tail;
	size_t n;
	int stopping;
	uint64_t shipped, failed;
};

static void
item_free(struct ship_item *it)
{
	if (it == NULL)
		return;
	free(it->key);
	free(it->line);
	free(it);
}

static int
put_one(gk_store *store, const struct ship_item *it)
{
	gk_store_writer *w = NULL;
	size_t n = strlen(it->line);
	int r;

	if ((r = store_put_begin(store, gk_slice_str(it->key), SHIP_LINE_MAX,
	    &w)) == 0 &&
	    (r = store_writer_write(w, (const uint8_t *)it->line, n)) == 0 &&
	    (r = store_writer_write(w, (const uint8_t *)"\n", 1)) == 0 &&
	    (r = store_writer_finish(w)) == 0)
		r = store_writer_commit(w);
	store_writer_free(w);
	return r;
}

static void *
ship_main(void *arg)
{
	struct gate_cpship *s = arg;
	struct ship_item *it;
	const char *why;
	int r;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->head == NULL && !s->stopping)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->head == NULL)
			break;	/* stopping and drained */
		it = s->head;
		s->head = it->next;
		if (s->head == NULL)
			s->tail = NULL;
		s->n--;
		pthread_mutex_unlock(&s->lock);
		r = put_one(s->store, it);
		if (r == 0 && s->retention_days > 0 &&
		    (r = store_retain(s->store, gk_slice_str(it->key),
		    gk_now_s() + (int64_t)s->retention_days * 86400)) != 0) {
			why = NULL;
			(void)store_error(&why);
			gk_error("audit: checkpoint %s put to the bucket but its "
			    "Object Lock retention was refused (%s): run "
			    "'gatekeeper provision' or set "
			    "checkpoint_retention_days = 0", it->key,
			    why ? why : gk_err_str(r));
		} else if (r != 0) {
			why = NULL;
			(void)store_error(&why);
			gk_error("audit: cannot put checkpoint %s to the bucket "
			    "(%s); it is in the database and the checkpoint "
			    "file", it->key, why ? why : gk_err_str(r));
		}
		item_free(it);
		pthread_mutex_lock(&s->lock);
		if (r == 0)
			s->shipped++;
		else
			s->failed++;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The audit writer's hook: queue a copy, never wait. */
static void
ship_hook(void *arg, const char *instance, int64_t seq, const char *line)
{
	struct gate_cpship *s = arg;
	struct ship_item *it;
	gk_buf key;

	if ((it = calloc(1, sizeof(*it))) == NULL)
		goto fail;
	gk_buf_init(&key, 2048);
	if (gk_buf_printf(&key, "%s/%s/%020lld.json", s->prefix, instance,
	    (long long)seq) != 0) {
		gk_buf_release(&key);
		goto fail;
	}
	it->key = gk_buf_detach(&key, NULL);
	if ((it->line = strdup(line)) == NULL)
		goto fail;
	pthread_mutex_lock(&s->lock);
	if (s->n >= SHIP_QUEUE_MAX || s->stopping) {
		pthread_mutex_unlock(&s->lock);
		gk_error("audit: checkpoint %lld not put to the bucket (queue "
		    "full); it is in the database and the checkpoint file",
		    (long long)seq);
		item_free(it);
		return;
	}
	if (s->tail != NULL)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	s->n++;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return;
fail:
	item_free(it);
	gk_error("audit: out of memory queueing checkpoint %lld for the bucket",
	    (long long)seq);
}

int
gate_cpship_start(gk_app *app, gate_cpship **out)
{
	struct gate_cpship *s;

	*out = NULL;
	if (app->cfg->checkpoint_prefix[0] == '\0')
		return 0;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return GK_ERR_NOMEM;
	s->store = app->store;
	s->prefix = app->cfg->checkpoint_prefix;
	s->retention_days = app->cfg->checkpoint_retention_days;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	if (pthread_create(&s->thread, NULL, ship_main, s) != 0) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->wake);
		free(s);
		return GK_ERR_INTERNAL;
	}
	audit_on_checkpoint(app->audit, ship_hook, s);
	*out = s;
	return 0;
}

void
gate_cpship_stop(gate_cpship *s)
{
	struct ship_item *it;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	while ((it = s->head) != NULL) {
		s->head = it->next;
		item_free(it);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}
