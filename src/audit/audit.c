/*
 * audit.c - the facade: open/close, submit and wait, the replay cache,
 * counters and the debug hooks; the writer thread is writer.c.
 *
 * audit_submit() deep-copies a record into one allocation and appends it
 * to a bounded FIFO. One writer thread takes up to batch_max records at a
 * time, inserts them in ONE transaction (one fsync for all), then calls
 * each record's done callback with 0, or with GK_ERR_UNAVAILABLE for
 * every record of a batch whose transaction failed. After a failure the
 * connection is dropped and reopened for the next batch, so the log
 * recovers by itself when the disk comes back. Between batches the writer
 * deletes expired rows in small chunks (retention), at start and hourly.
 *
 * Locking: a->lock guards the queue and the state flags; done callbacks
 * run with no lock held. audit_write() waits on its own condition
 * variable under a->wait_lock.
 */
#include "audit/audit_int.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#define INIT_LOCK 1u
#define INIT_WAIT_LOCK 2u
#define INIT_WAKE 4u
#define INIT_IDLE 8u
#define INIT_JTI_LOCK 16u

void
audit_on_checkpoint(gk_audit *a, gk_audit_cp_fn fn, void *arg)
{
	pthread_mutex_lock(&a->lock);
	a->cp_fn = fn;
	a->cp_arg = arg;
	pthread_mutex_unlock(&a->lock);
}

/* ---- open / close ---------------------------------------------------- */

static void
audit_free(gk_audit *a)
{
	struct audit_node *n, *next;

	if (a == NULL)
		return;
	for (n = a->head; n != NULL; n = next) {
		next = n->next;
		free(n);
	}
	audit_conn_close(a->conn);
	audit_journal_close(a->journal);
	audit_conn_close(a->jti_conn);
	if (a->inited & INIT_JTI_LOCK)
		pthread_mutex_destroy(&a->jti_lock);
	if (a->inited & INIT_WAKE)
		pthread_cond_destroy(&a->wake);
	if (a->inited & INIT_IDLE)
		pthread_cond_destroy(&a->idle);
	if (a->inited & INIT_LOCK)
		pthread_mutex_destroy(&a->lock);
	if (a->inited & INIT_WAIT_LOCK)
		pthread_mutex_destroy(&a->wait_lock);
	free(a->recs);
	free(a->links);
	free(a->path);
	free(a->suffix);
	free(a->label);
	free(a->cp_path);
	free(a->space_dir);
	gk_buf_release(&a->scratch);
	gk_wipe(a->seed, sizeof(a->seed));
	free(a);
}

#define FAIL_QUIET_US (30 * 1000000LL)

void
audit_fail_line(gk_audit *a, int level, const char *fmt, ...)
{
	char line[512];
	int64_t now;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (a->open_err != NULL) {
		/* at open: an error is the caller's to print; anything else
		 * (records put back) is logged and does not quiet later
		 * failures */
		if (level == GK_LOG_ERROR)
			snprintf(a->open_err, a->open_errlen, "%s", line);
		else
			gk_log_at(level, __func__, __LINE__, "audit: %s", line);
		return;
	}
	now = gk_mono_us();
	if (now < a->fail_quiet_until) {
		a->fail_suppressed++;
		return;
	}
	a->fail_quiet_until = now + FAIL_QUIET_US;
	if (a->fail_suppressed > 0)
		gk_log_at(level, __func__, __LINE__, "audit: %s (and %llu "
		    "more such lines left out)", line, a->fail_suppressed);
	else
		gk_log_at(level, __func__, __LINE__, "audit: %s", line);
	a->fail_suppressed = 0;
}

int
audit_open(const audit_settings *cfg, gk_audit **out, char *err,
    size_t errlen)
{
	return audit_open_as(cfg, NULL, out, err, errlen);
}

int
audit_open_as(const audit_settings *cfg, const char *suffix,
    gk_audit **out, char *errout, size_t errlen)
{
	gk_audit *a = NULL;
	pthread_condattr_t attr;
	char err[256];
	int64_t keep;
	size_t slots;
	int r = GK_ERR_INTERNAL, attr_ok = 0;
	const char *target = cfg != NULL ? cfg->target : NULL;

	*out = NULL;
	snprintf(errout, errlen, "%s", "");
	if (target == NULL || target[0] == '\0') {
		snprintf(errout, errlen, "no audit database configured");
		return GK_ERR_CONFIG;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return GK_ERR_NOMEM;
	a->open_err = errout;
	a->open_errlen = errlen;
	gk_buf_init(&a->scratch, AUDIT_ENC_CAP);
	if (pthread_condattr_init(&attr) != 0)
		goto out;
	attr_ok = 1;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0)
		goto out;
	if (pthread_mutex_init(&a->lock, NULL) != 0)
		goto out;
	a->inited |= INIT_LOCK;
	if (pthread_mutex_init(&a->wait_lock, NULL) != 0)
		goto out;
	a->inited |= INIT_WAIT_LOCK;
	if (pthread_cond_init(&a->wake, &attr) != 0)
		goto out;
	a->inited |= INIT_WAKE;
	if (pthread_cond_init(&a->idle, NULL) != 0)
		goto out;
	a->inited |= INIT_IDLE;
	if (pthread_mutex_init(&a->jti_lock, NULL) != 0)
		goto out;
	a->inited |= INIT_JTI_LOCK;

	a->queue_max = AUDIT_QUEUE_MAX;
	a->batch_max = cfg->batch == 0 ? AUDIT_BATCH_DEFAULT : cfg->batch;
	if (a->batch_max > AUDIT_BATCH_MAX)
		a->batch_max = AUDIT_BATCH_MAX;
	if (__builtin_mul_overflow((int64_t)cfg->retention_days, DAY_US,
	    &keep))
		keep = 0; /* beyond any clock: the same as keeping forever */
	a->retention_us = keep;
	/* SQLite: token ids ride the writer's transaction (writer.c) */
	a->jti_in_writer = audit_backend_for(target) == &audit_sqlite_backend;
	a->prune_pending = keep > 0;
	if ((a->path = strdup(target)) == NULL ||
	    (a->label = strdup(audit_label(target))) == NULL ||
	    gk_mul_size(a->batch_max, sizeof(*a->recs), &slots) != 0 ||
	    (a->recs = malloc(slots)) == NULL ||
	    gk_mul_size(a->batch_max, sizeof(*a->links), &slots) != 0 ||
	    (a->links = malloc(slots)) == NULL ||
	    (cfg->checkpoint_file != NULL &&
	    cfg->checkpoint_file[0] != '\0' &&
	    (a->cp_path = strdup(cfg->checkpoint_file)) == NULL)) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	if (cfg->min_free_mb > 0 && audit_backend_is_file(a->path)) {
		char *copy = strdup(a->path);

		if (copy == NULL || (a->space_dir = strdup(dirname(copy))) ==
		    NULL) {
			free(copy);
			r = GK_ERR_NOMEM;
			goto out;
		}
		free(copy);
		a->min_free = (uint64_t)cfg->min_free_mb << 20;
	}
	a->cp_records = cfg->checkpoint_records != 0 ?
	    cfg->checkpoint_records : 1000;
	a->cp_interval_us = (int64_t)(cfg->checkpoint_seconds != 0 ?
	    cfg->checkpoint_seconds : 60) * 1000000;
	if (cfg->key != NULL && cfg->key_len == AUDIT_KEY_LEN) {
		memcpy(a->seed, cfg->key, AUDIT_KEY_LEN);
		a->have_key = 1;
	}
	if ((r = audit_instance_resolve(cfg->instance_id,
	    cfg->keys_dir, a->instance)) != 0) {
		snprintf(errout, errlen, "cannot set up the instance id "
		    "under %s: %s", cfg->keys_dir != NULL ? cfg->keys_dir :
		    "?", gk_err_str(r));
		goto out;
	}
	if (suffix != NULL) {
		size_t n = strlen(a->instance);

		if (n + 1 + strlen(suffix) > AUDIT_INSTANCE_MAX) {
			r = GK_ERR_CONFIG;
			goto out;
		}
		snprintf(a->instance + n, sizeof(a->instance) - n, ".%s",
		    suffix);
		if (!audit_instance_valid(a->instance)) {
			r = GK_ERR_CONFIG;
			goto out;
		}
		if ((a->suffix = strdup(suffix)) == NULL) {
			r = GK_ERR_NOMEM;
			goto out;
		}
	}
	if (writer_open_conn(a, err, sizeof(err)) != 0) {
		if (audit_backend_is_file(a->path)) {
			/* a local file that cannot be opened is a setup error */
			size_t pl = strlen(a->path);

			/* the caller names the file: not twice */
			snprintf(errout, errlen, "%s", strncmp(err, a->path,
			    pl) == 0 && strncmp(err + pl, ": ", 2) == 0 ?
			    err + pl + 2 : err);
			r = GK_ERR_UNAVAILABLE;
			goto out;
		}
		/*
		 * A database server may come up after us: start, answer
		 * grants 503, and connect on each batch until it works.
		 */
		gk_error("audit: cannot connect to %s (%s); answering 503 "
		    "until it can be written", a->label, err);
		a->db_down = 1;
	} else if (a->journal != NULL && writer_load_chain(a) != 0) {
		/* the journal's records could not be put back */
		r = GK_ERR_UNAVAILABLE;
		goto out;
	}
	a->open_err = NULL;	/* from now on the writer logs */
	if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	a->started = 1;
	*out = a;
	a = NULL; /* transferred */
	r = 0;
out:
	if (r != 0 && errout[0] == '\0')
		snprintf(errout, errlen, "%s", gk_err_str(r));
	audit_free(a);
	if (attr_ok)
		pthread_condattr_destroy(&attr);
	return r;
}

void
audit_close(gk_audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->closing = 1;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	audit_free(a);
}

void
audit_abandon(gk_audit *a)
{
	struct audit_node *n, *next;
	struct audit_jti_req *jq;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	jq = a->jq_head;
	a->jq_head = a->jq_tail = NULL;
	n = a->head;
	a->head = a->tail = NULL;
	a->count = 0;
	pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
	writer_jti_answer(a, jq, GK_ERR_UNAVAILABLE);
	for (; n != NULL; n = next) {
		next = n->next;
		if (n->done != NULL)
			n->done(n->arg, GK_ERR_UNAVAILABLE);
		free(n);
	}
}

/* ---- submit / write -------------------------------------------------- */

/*
 * 1 while the audit's file system has less than min_free bytes free,
 * looked at no more than once a second (by whoever submits).
 */
static int
low_space(gk_audit *a)
{
	struct statvfs sv;
	int64_t now = gk_mono_us(), last;
	int low;

	if (a->space_dir == NULL)
		return 0;
	last = atomic_load(&a->space_checked_mono);
	if (now - last < 1000000 ||
	    !atomic_compare_exchange_strong(&a->space_checked_mono, &last,
	    now))
		return atomic_load(&a->low_space);
	low = statvfs(a->space_dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < a->min_free;
	if (low != atomic_exchange(&a->low_space, low))
		gk_warn("audit: %s has %s %llu MiB free: refusal records %s",
		    a->space_dir, low ? "less than" : "again",
		    (unsigned long long)(a->min_free >> 20), low ?
		    "are dropped (counted), grants still recorded" :
		    "are written again");
	return low;
}

static int
is_refusal(const gk_audit_record *rec)
{
	return rec->decision == NULL || strcmp(rec->decision, "allow") != 0;
}

void
audit_counters(gk_audit *a, gk_audit_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (a == NULL)
		return;
	out->fields_cut = atomic_load(&a->fields_cut);
	out->refusals_dropped = atomic_load(&a->refusals_dropped);
	out->low_space = atomic_load(&a->low_space);
}

int
audit_submit(gk_audit *a, const gk_audit_record *rec,
    gk_audit_done_fn done, void *arg)
{
	struct audit_node *n = NULL;
	unsigned ncut = 0;
	int r = GK_ERR_INTERNAL, refusal;

	if (a == NULL || rec == NULL)
		return GK_ERR_UNAVAILABLE;
	refusal = is_refusal(rec);
	if (refusal && low_space(a)) {
		atomic_fetch_add(&a->refusals_dropped, 1);
		return GK_ERR_TOO_LARGE;
	}
	if ((r = audit_node_new(rec, done, arg, &n, &ncut)) != 0)
		return r;
	if (ncut > 0)
		atomic_fetch_add(&a->fields_cut, ncut);
	pthread_mutex_lock(&a->lock);
	if (refusal && !a->closing && a->count >= a->queue_max / 2) {
		/* the other half of the queue is kept for grants */
		pthread_mutex_unlock(&a->lock);
		free(n);
		atomic_fetch_add(&a->refusals_dropped, 1);
		return GK_ERR_TOO_LARGE;
	}
	if (a->closing || a->count >= a->queue_max) {
		pthread_mutex_unlock(&a->lock);
		free(n);
		return GK_ERR_UNAVAILABLE;
	}
	if (a->tail != NULL)
		a->tail->next = n;
	else
		a->head = n;
	a->tail = n;
	a->count++;
	pthread_cond_signal(&a->wake);
	pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* Queues the token id for the writer and waits for its answer. */
static int
jti_via_writer(gk_audit *a, const char *jti, int64_t exp_s)
{
	struct audit_jti_req q;

	memset(&q, 0, sizeof(q));
	q.jti = jti;
	q.exp_s = exp_s;
	q.result = GK_ERR_UNAVAILABLE;
	if (pthread_cond_init(&q.cond, NULL) != 0)
		return GK_ERR_UNAVAILABLE;
	pthread_mutex_lock(&a->lock);
	if (a->closing) {
		pthread_mutex_unlock(&a->lock);
		pthread_cond_destroy(&q.cond);
		return GK_ERR_UNAVAILABLE;
	}
	if (a->jq_tail != NULL)
		a->jq_tail->next = &q;
	else
		a->jq_head = &q;
	a->jq_tail = &q;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_lock(&a->wait_lock);
	while (!q.finished)
		pthread_cond_wait(&q.cond, &a->wait_lock);
	pthread_mutex_unlock(&a->wait_lock);
	pthread_cond_destroy(&q.cond);
	return q.result;
}

int
audit_jti_use(gk_audit *a, const char *jti, int64_t exp_s)
{
	char err[256];
	int r;

	if (a == NULL || jti == NULL || jti[0] == '\0' || strlen(jti) > 256)
		return GK_ERR_INVALID;
	if (a->jti_in_writer)
		return jti_via_writer(a, jti, exp_s);
	pthread_mutex_lock(&a->jti_lock);
	/* PostgreSQL (and a test backend): each id in its own commit on a
	 * connection of its own; the server's group commit shares the
	 * flushes of concurrent ones */
	if (a->jti_conn == NULL &&
	    audit_conn_open(a->path, 1, &a->jti_conn, err, sizeof(err)) != 0) {
		pthread_mutex_unlock(&a->jti_lock);
		gk_error("audit: replay cache unavailable (%s)", err);
		return GK_ERR_UNAVAILABLE;
	}
	r = a->jti_conn->ops->jti_use != NULL ?
	    a->jti_conn->ops->jti_use(a->jti_conn, jti, exp_s) :
	    GK_ERR_UNAVAILABLE;
	if (r == GK_ERR_UNAVAILABLE) {
		/* a fresh connection next time, as the writer does */
		audit_conn_close(a->jti_conn);
		a->jti_conn = NULL;
	}
	pthread_mutex_unlock(&a->jti_lock);
	return r;
}

struct waiter {
	gk_audit *a;
	pthread_cond_t cond;
	int finished;
	int result;
};

static void
write_done(void *arg, int result)
{
	struct waiter *w = arg;
	gk_audit *a = w->a;

	pthread_mutex_lock(&a->wait_lock);
	w->result = result;
	w->finished = 1;
	pthread_cond_signal(&w->cond);
	/* w may be gone as soon as the lock is released */
	pthread_mutex_unlock(&a->wait_lock);
}

int
audit_write(gk_audit *a, const gk_audit_record *rec)
{
	struct waiter w;
	int r = GK_ERR_INTERNAL;

	if (a == NULL)
		return GK_ERR_UNAVAILABLE;
	memset(&w, 0, sizeof(w));
	w.a = a;
	if (pthread_cond_init(&w.cond, NULL) != 0)
		return GK_ERR_INTERNAL;
	if ((r = audit_submit(a, rec, write_done, &w)) != 0)
		goto out;
	pthread_mutex_lock(&a->wait_lock);
	while (!w.finished)
		pthread_cond_wait(&w.cond, &a->wait_lock);
	r = w.result;
	pthread_mutex_unlock(&a->wait_lock);
out:
	pthread_cond_destroy(&w.cond);
	return r;
}

/* ---- debug hooks ----------------------------------------------------- */

void
audit_debug_stats(gk_audit *a, audit_stats *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->stats;
	out->queued = a->count;
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_pause(gk_audit *a, int paused)
{
	pthread_mutex_lock(&a->lock);
	a->paused = paused;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_wait_queued(gk_audit *a, size_t n)
{
	pthread_mutex_lock(&a->lock);
	while (a->count < n)
		pthread_cond_wait(&a->idle, &a->lock);
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_wait_idle(gk_audit *a)
{
	pthread_mutex_lock(&a->lock);
	while (a->count > 0 || a->busy || a->prune_pending)
		pthread_cond_wait(&a->idle, &a->lock);
	pthread_mutex_unlock(&a->lock);
}

void
audit_debug_set_queue_max(gk_audit *a, size_t max)
{
	pthread_mutex_lock(&a->lock);
	a->queue_max = max != 0 ? max : AUDIT_QUEUE_MAX;
	pthread_mutex_unlock(&a->lock);
}

const char *
audit_instance(const gk_audit *a)
{
	return a->instance;
}
