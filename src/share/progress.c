/*
 * progress.c - the progress display of send and receive: files, bytes,
 * rate and ETA on stderr; one live line on a terminal, a plain line every
 * few seconds otherwise.
 */
#include "share/share.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct share_progress {
	const char *what;
	uint64_t files, bytes;
	_Atomic uint64_t done_files, done_bytes;
	int tty;
	int64_t t0;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
};

static void
human(double v, char *out, size_t n)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void
show(share_progress *p, int final)
{
	char done[32], total[32], rate[32], eta[32] = "";
	uint64_t f = atomic_load(&p->done_files), b = atomic_load(&p->done_bytes);
	double secs = (double)(gk_mono_us() - p->t0) / 1e6, bps;

	if (secs < 0.001)
		secs = 0.001;
	bps = (double)b / secs;
	human((double)b, done, sizeof(done));
	human((double)p->bytes, total, sizeof(total));
	human(bps, rate, sizeof(rate));
	/* no ETA past about 31 years: the double would not fit uint64_t
	 * for a slow start against a huge declared size */
	if (!final && bps > 0 && p->bytes > b &&
	    (double)(p->bytes - b) / bps < 1e9) {
		uint64_t s = (uint64_t)((double)(p->bytes - b) / bps);
		snprintf(eta, sizeof(eta), ", ETA %u:%02u:%02u",
		    (unsigned)(s / 3600), (unsigned)(s / 60 % 60),
		    (unsigned)(s % 60));
	} else if (final)
		snprintf(eta, sizeof(eta), " in %.1f s", secs);
	fprintf(stderr, "%s%s: %llu/%llu files, %s/%s, %s/s%s%s",
	    p->tty ? "\r\033[K" : "", p->what, (unsigned long long)f,
	    (unsigned long long)p->files, done, total, rate, eta,
	    p->tty && !final ? "" : "\n");
	fflush(stderr);
}

static void *
run(void *arg)
{
	share_progress *p = arg;
	struct timespec ts;
	long step_ms = p->tty ? 250 : 5000;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		gk_deadline_ts(CLOCK_REALTIME, step_ms * 1000LL, &ts);
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		if (!p->stop)
			show(p, 0);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
share_progress_start(const char *what, uint64_t files, uint64_t bytes,
    int mode, share_progress **out)
{
	share_progress *p;

	*out = NULL;
	if (mode == 0)
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return GK_ERR_NOMEM;
	p->what = what;
	p->files = files;
	p->bytes = bytes;
	p->tty = isatty(2);
	p->t0 = gk_mono_us();
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->th, NULL, run, p) != 0) {
		free(p);
		return GK_ERR_INTERNAL;
	}
	*out = p;
	return 0;
}

void
share_progress_add(share_progress *p, uint64_t files, uint64_t bytes)
{
	if (p == NULL)
		return;
	atomic_fetch_add(&p->done_files, files);
	atomic_fetch_add(&p->done_bytes, bytes);
}

void
share_progress_end(share_progress *p, int ok)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	if (ok)
		show(p, 1);
	else if (p->tty)
		fputc('\n', stderr);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
