/*
 * live.c - the policy in force, swapped atomically by a reload. A reader
 * takes a reference under a short lock (so the policy cannot be freed
 * between reading the pointer and counting the reference); a swap
 * replaces the pointer under the same lock and drops the live reference,
 * so the old policy is freed when its last request ends.
 */
#include "policy/policy_int.h"

#include <pthread.h>
#include <stdlib.h>

struct gk_policy_live {
	pthread_mutex_t mu;
	gk_policy *cur;
	uint64_t swaps;
};

int
policy_live_new(gk_policy *p, gk_policy_live **out)
{
	gk_policy_live *l;

	*out = NULL;
	if (p == NULL)
		return GK_ERR_INVALID;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return GK_ERR_NOMEM;
	pthread_mutex_init(&l->mu, NULL);
	l->cur = p;
	*out = l;
	return 0;
}

void
policy_live_free(gk_policy_live *l)
{
	if (l == NULL)
		return;
	policy_free(l->cur);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

gk_policy *
policy_live_get(gk_policy_live *l)
{
	gk_policy *p;

	if (l == NULL)
		return NULL;
	pthread_mutex_lock(&l->mu);
	p = policy_ref(l->cur);
	pthread_mutex_unlock(&l->mu);
	return p;
}

uint64_t
policy_live_swap(gk_policy_live *l, gk_policy *p)
{
	gk_policy *old;
	uint64_t n;

	pthread_mutex_lock(&l->mu);
	old = l->cur;
	l->cur = p;
	n = ++l->swaps;
	pthread_mutex_unlock(&l->mu);
	policy_free(old);
	return n;
}
