/*
 * audit_writer.c - the audit writer alone: how many records per second it
 * makes durable (each done callback reports a committed record), with no
 * HTTP in front. W "clients" each keep one record in flight, as W
 * keep-alive connections would (a grant waits for its record), submitting
 * the next record from the done callback. Records look like a v1
 * GET_Object grant. Prints one line; no thresholds (make bench).
 *
 * With "jti" as the fourth argument, IN_FLIGHT threads each do what a v2
 * grant of a single-use token does: record its token id in the replay
 * cache (audit_jti_use), then write its record and wait for it.
 *
 *   audit_writer DB_OR_DSN [SECONDS] [IN_FLIGHT] [jti]
 */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static gk_audit *aud;
static atomic_uint_fast64_t done_ok, done_fail, submitted;
static atomic_int stopping;
static atomic_int inflight;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(gk_audit_record *r, uint64_t i, char *path, size_t plen);
static void on_done(void *arg, int result);

static void
submit_one(void)
{
	gk_audit_record r;
	char path[64];
	uint64_t i = atomic_fetch_add(&submitted, 1);

	fill(&r, i, path, sizeof(path));
	if (audit_submit(aud, &r, on_done, NULL) != 0) {
		atomic_fetch_add(&done_fail, 1);
		atomic_fetch_sub(&inflight, 1);
	}
}

static void
on_done(void *arg, int result)
{
	(void)arg;
	if (result == 0)
		atomic_fetch_add(&done_ok, 1);
	else
		atomic_fetch_add(&done_fail, 1);
	if (!atomic_load(&stopping))
		submit_one();
	else
		atomic_fetch_sub(&inflight, 1);
}

/* One v2 client: token id first, then its record (synchronous). */
static void *
jti_client(void *arg)
{
	gk_audit_record r;
	char path[64], jti[48];
	uint64_t i;

	(void)arg;
	while (!atomic_load(&stopping)) {
		i = atomic_fetch_add(&submitted, 1);
		fill(&r, i, path, sizeof(path));
		snprintf(jti, sizeof(jti), "jti-%016" PRIx64 "-%" PRIu64,
		    (uint64_t)(i * 0x9e3779b97f4a7c15ull), i);
		r.protocol = "v2";
		r.jti = jti;
		if (audit_jti_use(aud, jti, (int64_t)(gk_now_us() / 1000000) +
		    300) != 0 || audit_write(aud, &r) != 0)
			atomic_fetch_add(&done_fail, 1);
		else
			atomic_fetch_add(&done_ok, 1);
	}
	return NULL;
}

static void
fill(gk_audit_record *r, uint64_t i, char *path, size_t plen)
{
	memset(r, 0, sizeof(*r));
	r->time_us = gk_now_us();
	snprintf(r->request_id, sizeof(r->request_id), "%016" PRIx64
	    "%016" PRIx64, (uint64_t)(i * 0x9e3779b97f4a7c15ull), i);
	snprintf(r->client_ip, sizeof(r->client_ip), "10.%u.%u.%u",
	    (unsigned)(i >> 16) & 255, (unsigned)(i >> 8) & 255,
	    (unsigned)i & 255);
	snprintf(path, plen, "/d%" PRIu64 "/obj-%" PRIu64 ".bin", i % 1000,
	    i % 1000);
	r->user_agent = "wrk";
	r->origin = "https://bench.example";
	r->protocol = "v1";
	r->operation = "GET_Object";
	r->root = "bench";
	r->path = path;
	r->status = 302;
	r->decision = "allow";
	r->message = "redirect to data URL";
	r->duration_us = 120;
}

int
main(int argc, char **argv)
{
	audit_settings cfg;
	uint8_t seed[32];
	char err[256];
	double secs = argc > 2 ? atof(argv[2]) : 5.0, t0, t1;
	int window = argc > 3 ? atoi(argv[3]) : 64, k;
	int jti_mode = argc > 4 && strcmp(argv[4], "jti") == 0;
	pthread_t *th = NULL;
	uint64_t n0, n1;
	audit_stats st;

	if (argc < 2 || secs <= 0 || window <= 0) {
		fprintf(stderr, "usage: audit_writer DB_OR_DSN [SECONDS] "
		    "[IN_FLIGHT] [jti]\n");
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.target = argv[1];
	for (k = 0; k < 32; k++)
		seed[k] = (uint8_t)(k * 7 + 1);
	cfg.key = seed;
	cfg.key_len = sizeof(seed);
	cfg.instance_id = "bench";
	if (audit_open(&cfg, &aud, err, sizeof(err)) != 0) {
		fprintf(stderr, "audit_writer: cannot open %s: %s\n", argv[1],
		    err);
		return 1;
	}
	if (jti_mode) {
		if ((th = calloc((size_t)window, sizeof(*th))) == NULL)
			return 1;
		for (k = 0; k < window; k++)
			if (pthread_create(&th[k], NULL, jti_client, NULL) != 0)
				return 1;
	} else {
		atomic_store(&inflight, window);
		for (k = 0; k < window; k++)
			submit_one();
	}
	/* one second of warm-up, then the measured span */
	usleep(1000000);
	n0 = atomic_load(&done_ok);
	t0 = now_s();
	usleep((useconds_t)(secs * 1e6));
	n1 = atomic_load(&done_ok);
	t1 = now_s();
	audit_debug_stats(aud, &st);
	atomic_store(&stopping, 1);
	while (atomic_load(&inflight) > 0)
		usleep(1000);
	for (k = 0; jti_mode && k < window; k++)
		pthread_join(th[k], NULL);
	free(th);
	audit_close(aud);
	printf("audit writer%s: %.0f durable records/s (%" PRIu64 " in %.2f s, "
	    "%d in flight, %" PRIu64 " failed; %.0f records per batch)\n",
	    jti_mode ? " (v2 with jti)" : "", (double)(n1 - n0) / (t1 - t0), n1 - n0, t1 - t0, window,
	    (uint64_t)atomic_load(&done_fail), st.commits > 0 ?
	    (double)st.committed / (double)st.commits : 0.0);
	return atomic_load(&done_fail) != 0;
}
