/*
 * refusals.c - repeated 429s of one client become one record per
 * interval: the first 429 of a client in an interval is recorded as
 * usual, the ones after it are only counted, and when the interval ends
 * one summary record says how many there were, with the first and last
 * time. A flood of rate-limited requests so costs two rows per client and
 * interval, not one each (issue 17). The table is fixed in size: a client
 * that loses its slot has its summary written first, so no count is lost.
 */
#include "gate_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define AGG_SLOTS 4096u		/* a power of two */

struct agg_slot {
	int used;
	uint8_t key[16];	/* the client, IPv6 cut to its /64 */
	uint8_t addr[16];	/* the client as recorded */
	char ip[GK_ADDR_STRLEN];
	int64_t window_end_mono; /* the interval of the full record */
	uint64_t count;		/* 429s counted since */
	int64_t first_us, last_us;
};

struct gate_refusals {
	pthread_mutex_t mu;
	int64_t interval_us;
	uint64_t k0, k1;
	struct agg_slot slot[AGG_SLOTS];
};

int
gate_refusals_new(unsigned interval_s, gate_refusals **out)
{
	gate_refusals *t;

	*out = NULL;
	if (interval_s == 0)
		return 0;	/* off: every 429 has its record */
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return GK_ERR_NOMEM;
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return GK_ERR_INTERNAL;
	}
	if (gk_random(&t->k0, sizeof(t->k0)) != 0 ||
	    gk_random(&t->k1, sizeof(t->k1)) != 0) {
		gate_refusals_free(t);
		return GK_ERR_INTERNAL;
	}
	t->interval_us = (int64_t)interval_s * 1000000;
	*out = t;
	return 0;
}

void
gate_refusals_free(gate_refusals *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void
client_key(const gk_addr *a, uint8_t key[16])
{
	memcpy(key, a->b, 16);
	if (!policy_addr_is_v4(a))
		memset(key + 8, 0, 8);	/* one IPv6 host owns its /64 */
}

static struct agg_slot *
slot_of(gate_refusals *t, const uint8_t key[16])
{
	uint64_t h = t->k0, w;
	int i;

	for (i = 0; i < 2; i++) {
		memcpy(&w, key + 8 * i, 8);
		h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
		h *= 0xbf58476d1ce4e5b9ull ^ t->k1;
		h ^= h >> 31;
	}
	return &t->slot[h & (AGG_SLOTS - 1)];
}

/* A copy of a slot's summary, written once the table lock is dropped. */
struct summary {
	uint8_t addr[16];
	char ip[GK_ADDR_STRLEN];
	uint64_t count;
	int64_t first_us, last_us;
};

static void
take_summary(struct agg_slot *s, struct summary *out)
{
	memcpy(out->addr, s->addr, 16);
	memcpy(out->ip, s->ip, sizeof(out->ip));
	out->count = s->count;
	out->first_us = s->first_us;
	out->last_us = s->last_us;
	s->count = 0;
}

static void
write_summary(gk_app *app, const struct summary *sm)
{
	gk_audit_record rec;
	char msg[200], first[40], last[40];

	if (sm->count == 0)
		return;
	gk_time_iso_us(sm->first_us, first, sizeof(first));
	gk_time_iso_us(sm->last_us, last, sizeof(last));
	snprintf(msg, sizeof(msg), "Too Many Requests: %llu more from this "
	    "client, first %s, last %s (one record for them all)",
	    (unsigned long long)sm->count, first, last);
	memset(&rec, 0, sizeof(rec));
	rec.time_us = sm->last_us;
	memcpy(rec.client_ip, sm->ip, sizeof(rec.client_ip));
	memcpy(rec.client_addr, sm->addr, sizeof(rec.client_addr));
	rec.protocol = "http";
	rec.operation = "rate_limited";
	rec.status = 429;
	rec.decision = "deny";
	rec.message = msg;
	if (audit_submit(app->audit, &rec, NULL, NULL) != 0)
		gk_warn("audit: summary of %llu refusals from %s not written",
		    (unsigned long long)sm->count, sm->ip);
}

int
gate_refusals_absorb(gk_app *app, const gk_req *req)
{
	gate_refusals *t = app->refusals;
	struct agg_slot *s;
	struct summary evicted;
	uint8_t key[16];
	int64_t now = gk_mono_us();
	int absorbed = 0;

	if (t == NULL)
		return 0;
	memset(&evicted, 0, sizeof(evicted));
	client_key(&req->client, key);
	pthread_mutex_lock(&t->mu);
	s = slot_of(t, key);
	if (s->used && memcmp(s->key, key, 16) == 0 &&
	    now < s->window_end_mono) {
		if (s->count++ == 0)
			s->first_us = req->start_us;
		s->last_us = req->start_us;
		absorbed = 1;
	} else {
		/* a new interval (or another client in the slot): this one
		 * is recorded in full, the old count summed up */
		if (s->used)
			take_summary(s, &evicted);
		s->used = 1;
		memcpy(s->key, key, 16);
		memcpy(s->addr, req->client.b, 16);
		memcpy(s->ip, req->client_ip, sizeof(s->ip));
		s->window_end_mono = now + t->interval_us;
		s->count = 0;
	}
	pthread_mutex_unlock(&t->mu);
	write_summary(app, &evicted);
	if (absorbed)
		gate_count(app, GK_STAT_AGGREGATED);
	return absorbed;
}

void
gate_refusals_flush(gk_app *app, int all)
{
	gate_refusals *t = app->refusals;
	struct summary sm;
	int64_t now = gk_mono_us();
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < AGG_SLOTS; i++) {
		memset(&sm, 0, sizeof(sm));
		pthread_mutex_lock(&t->mu);
		if (t->slot[i].used && (all ||
		    now >= t->slot[i].window_end_mono)) {
			take_summary(&t->slot[i], &sm);
			t->slot[i].used = 0;
		}
		pthread_mutex_unlock(&t->mu);
		write_summary(app, &sm);
	}
}
