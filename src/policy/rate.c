/*
 * rate.c - per-client token buckets in a fixed-size, set-associative
 * table: memory is fixed at creation, so a flood from many addresses only
 * evicts the entries seen least recently. The slot of an address comes
 * from a hash keyed with random bytes at start, so nobody can aim many
 * addresses at one set.
 */
#include "policy/policy_int.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RATE_WAYS 8u

struct rate_slot {
	uint64_t hi, lo;	/* the key: address, IPv6 cut to /64 */
	int64_t last_us;	/* last refill (monotonic); 0 = empty slot */
	double req, den;	/* tokens left in each bucket */
};

struct rate_set {
	pthread_mutex_t mu;
	struct rate_slot slot[RATE_WAYS];
};

struct gk_rate {
	struct rate_set *set;
	size_t nsets;		/* a power of two */
	uint64_t k0, k1;	/* hash keys */
	_Atomic size_t used;
};

static uint64_t
mix(uint64_t x)
{
	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

int
policy_rate_new(unsigned entries, gk_rate **out)
{
	gk_rate *r;
	size_t n = 1, i, bytes;

	*out = NULL;
	if (entries < RATE_WAYS)
		entries = RATE_WAYS;
	while (n * RATE_WAYS < entries)
		n *= 2;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return GK_ERR_NOMEM;
	if (gk_mul_size(n, sizeof(*r->set), &bytes) != 0 ||
	    (r->set = calloc(1, bytes)) == NULL) {
		free(r);
		return GK_ERR_NOMEM;
	}
	r->nsets = n;
	for (i = 0; i < n; i++)
		pthread_mutex_init(&r->set[i].mu, NULL);
	if (gk_random(&r->k0, sizeof(r->k0)) != 0 ||
	    gk_random(&r->k1, sizeof(r->k1)) != 0) {
		policy_rate_free(r);
		return GK_ERR_INTERNAL;
	}
	*out = r;
	return 0;
}

void
policy_rate_free(gk_rate *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nsets; i++)
		pthread_mutex_destroy(&r->set[i].mu);
	free(r->set);
	free(r);
}

size_t
policy_rate_used(const gk_rate *r)
{
	return r == NULL ? 0 : atomic_load(&((gk_rate *)r)->used);
}

/* A /48 bucket's key: its 48 bits, and in lo a tag no /64 or IPv4 key
 * has (theirs are 0 and ::ffff:a.b.c.d). */
#define KEY_48_TAG 1u

/*
 * The bucket keys of a: the address (IPv4), or the /64 (IPv6, one host
 * owns its /64); and for IPv6 with a /48 factor also the /48 (*has48),
 * so rotating through the 65536 /64s of a /48 gains only the factor.
 */
static void
key_of(const gk_addr *a, uint64_t *hi, uint64_t *lo, uint64_t *hi48,
    int *has48)
{
	uint64_t h = 0, l = 0;
	int i;

	for (i = 0; i < 8; i++) {
		h = (h << 8) | a->b[i];
		l = (l << 8) | a->b[i + 8];
	}
	*has48 = 0;
	if (!policy_addr_is_v4(a)) {
		l = 0;	/* one IPv6 host owns its /64 */
		*hi48 = h & ~(uint64_t)0xffff;
		*has48 = 1;
	}
	*hi = h;
	*lo = l;
}

/* Finds or makes the slot of a (set locked), refilled to now; a /48's
 * buckets hold factor times a client's. */
static struct rate_slot *
slot_get(gk_rate *r, struct rate_set *s, uint64_t hi, uint64_t lo,
    const gk_policy *p, int64_t now_us, double factor)
{
	struct rate_slot *sl = NULL, *old = &s->slot[0];
	double dt;
	unsigned i;

	for (i = 0; i < RATE_WAYS; i++) {
		if (s->slot[i].last_us != 0 && s->slot[i].hi == hi &&
		    s->slot[i].lo == lo) {
			sl = &s->slot[i];
			break;
		}
		if (s->slot[i].last_us < old->last_us)
			old = &s->slot[i];
	}
	if (now_us <= 0)
		now_us = 1;
	if (sl == NULL) {
		/* the least recently seen (or an empty one) goes */
		sl = old;
		if (sl->last_us == 0)
			atomic_fetch_add(&r->used, 1);
		sl->hi = hi;
		sl->lo = lo;
		sl->last_us = now_us;
		sl->req = factor * p->rate_burst;
		sl->den = factor * p->rate_denied_burst;
		return sl;
	}
	dt = now_us > sl->last_us ? (double)(now_us - sl->last_us) / 1e6 : 0;
	sl->req += dt * factor * p->rate_rps;
	if (sl->req > factor * p->rate_burst)
		sl->req = factor * p->rate_burst;
	sl->den += dt * factor * p->rate_denied_pm / 60.0;
	if (sl->den > factor * p->rate_denied_burst)
		sl->den = factor * p->rate_denied_burst;
	sl->last_us = now_us;
	return sl;
}

static struct rate_set *
set_of(gk_rate *r, uint64_t hi, uint64_t lo)
{
	uint64_t h = mix(hi ^ r->k0) ^ mix(lo ^ r->k1 ^ 0x9e3779b97f4a7c15ull);

	return &r->set[mix(h) & (r->nsets - 1)];
}

static unsigned
wait_s(double missing, double per_s)
{
	double w = ceil(missing / per_s);

	if (w < 1)
		return 1;
	if (w > 86400)
		return 86400;
	return (unsigned)w;
}

/* One bucket pair's check (see policy_rate_check). */
static int
check_one(gk_rate *r, const gk_policy *p, uint64_t hi, uint64_t lo,
    double factor, int64_t now_us, unsigned *retry_s)
{
	struct rate_set *s = set_of(r, hi, lo);
	struct rate_slot *sl;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	sl = slot_get(r, s, hi, lo, p, now_us, factor);
	if (p->rate_denied_pm > 0 && sl->den < 1) {
		*retry_s = wait_s(1 - sl->den, factor * p->rate_denied_pm /
		    60.0);
		rc = GK_ERR_TOO_LARGE;
	} else if (p->rate_rps > 0) {
		if (sl->req < 1) {
			*retry_s = wait_s(1 - sl->req, factor * p->rate_rps);
			rc = GK_ERR_TOO_LARGE;
		} else {
			sl->req -= 1;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
policy_rate_check(gk_rate *r, const gk_policy *p, const gk_addr *a,
    int64_t now_us, unsigned *retry_s)
{
	uint64_t hi, lo, hi48 = 0;
	int has48, rc;

	*retry_s = 0;
	if (r == NULL || p == NULL || a == NULL ||
	    (p->rate_rps == 0 && p->rate_denied_pm == 0) ||
	    policy_cidrs_contains(p->rate_exempt, a))
		return 0;
	key_of(a, &hi, &lo, &hi48, &has48);
	if ((rc = check_one(r, p, hi, lo, 1, now_us, retry_s)) != 0)
		return rc;
	if (has48 && p->rate_v6_48_factor > 0)
		rc = check_one(r, p, hi48, KEY_48_TAG, p->rate_v6_48_factor,
		    now_us, retry_s);
	return rc;
}

static void
denied_one(gk_rate *r, const gk_policy *p, uint64_t hi, uint64_t lo,
    double factor, int64_t now_us)
{
	struct rate_set *s = set_of(r, hi, lo);
	struct rate_slot *sl;

	pthread_mutex_lock(&s->mu);
	sl = slot_get(r, s, hi, lo, p, now_us, factor);
	sl->den -= 1;
	if (sl->den < 0)
		sl->den = 0;
	pthread_mutex_unlock(&s->mu);
}

void
policy_rate_denied(gk_rate *r, const gk_policy *p, const gk_addr *a,
    int64_t now_us)
{
	uint64_t hi, lo, hi48 = 0;
	int has48;

	if (r == NULL || p == NULL || a == NULL || p->rate_denied_pm == 0 ||
	    policy_cidrs_contains(p->rate_exempt, a))
		return;
	key_of(a, &hi, &lo, &hi48, &has48);
	denied_one(r, p, hi, lo, 1, now_us);
	if (has48 && p->rate_v6_48_factor > 0)
		denied_one(r, p, hi48, KEY_48_TAG, p->rate_v6_48_factor,
		    now_us);
}
