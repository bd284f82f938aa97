/*
 * mac.c - HMAC-SHA256 keys with a per-thread cache of keyed EVP_MAC_CTX.
 *
 * Keying an HMAC context costs two compression-function calls plus
 * allocations; re-initialising an already keyed one only copies the saved
 * inner/outer states. So each thread keeps, per gk_mac, one context keyed
 * once and re-initialised (EVP_MAC_init with a NULL key) per message.
 *
 * Every gk_mac gets an id from a monotonic 64-bit counter; a thread's
 * cache maps ids to contexts. Ids are never reused, so a context keyed for
 * a freed gk_mac can never be picked up for a later one. A freed key's
 * contexts are dropped at once in the freeing thread and, in every other
 * thread, at that thread's next MAC (verify_mac_free bumps a global epoch
 * that makes each cache flush itself) or at its exit.
 */
#include "verify/verify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define MAC_CACHE_SLOTS 8
#define MAC_MAX_KEY 1024

struct gk_mac {
	uint64_t id;
	uint8_t *key;
	size_t key_len;
};

struct mac_slot {
	uint64_t id;		/* 0: empty */
	uint64_t used;		/* LRU tick */
	EVP_MAC_CTX *ctx;
};

struct mac_cache {
	uint64_t tick;
	uint64_t epoch;
	struct mac_slot slot[MAC_CACHE_SLOTS];
};

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_hmac;	/* fetched once, never freed */
static pthread_key_t mac_tls_key;
static int mac_init_ok;
static _Atomic uint64_t mac_next_id = 1;
static _Atomic uint64_t mac_free_epoch;

static void
mac_cache_flush(struct mac_cache *c)
{
	size_t i;

	for (i = 0; i < MAC_CACHE_SLOTS; i++) {
		EVP_MAC_CTX_free(c->slot[i].ctx);
		c->slot[i].ctx = NULL;
		c->slot[i].id = 0;
		c->slot[i].used = 0;
	}
}

/* pthread key destructor: runs at the exit of each thread that computed
 * a MAC. */
static void
mac_cache_destroy(void *arg)
{
	struct mac_cache *c = arg;

	if (c == NULL)
		return;
	mac_cache_flush(c);
	free(c);
}

static void
mac_global_init(void)
{
	if (pthread_key_create(&mac_tls_key, mac_cache_destroy) != 0)
		return;
	if ((mac_hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)) == NULL)
		return;
	mac_init_ok = 1;
}

static int
mac_global(void)
{
	if (pthread_once(&mac_once, mac_global_init) != 0 || !mac_init_ok)
		return GK_ERR_INTERNAL;
	return 0;
}

/* The calling thread's cache, created on first use; NULL on failure. */
static struct mac_cache *
mac_cache_get(void)
{
	struct mac_cache *c;
	uint64_t epoch;

	epoch = atomic_load_explicit(&mac_free_epoch, memory_order_acquire);
	if ((c = pthread_getspecific(mac_tls_key)) != NULL) {
		if (c->epoch != epoch) {
			/* some gk_mac was freed since: drop every context
			 * so no freed key lingers in this thread */
			mac_cache_flush(c);
			c->epoch = epoch;
		}
		return c;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->epoch = epoch;
	if (pthread_setspecific(mac_tls_key, c) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

/* Drops the calling thread's context for id, if any. */
static void
mac_cache_drop(uint64_t id)
{
	struct mac_cache *c;
	size_t i;

	if (!mac_init_ok || (c = pthread_getspecific(mac_tls_key)) == NULL)
		return;
	for (i = 0; i < MAC_CACHE_SLOTS; i++) {
		if (c->slot[i].id == id) {
			EVP_MAC_CTX_free(c->slot[i].ctx);
			memset(&c->slot[i], 0, sizeof(c->slot[i]));
		}
	}
}

/* A fresh context keyed with m's key, ready for updates. */
static EVP_MAC_CTX *
mac_ctx_new(const gk_mac *m)
{
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[2];

	if ((ctx = EVP_MAC_CTX_new(mac_hmac)) == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, m->key, m->key_len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
verify_mac_new(const uint8_t *key, size_t key_len, gk_mac **out)
{
	gk_mac *m = NULL;
	uint64_t id;
	int r = GK_ERR_INTERNAL;

	if (out == NULL)
		return GK_ERR_INTERNAL;
	*out = NULL;
	if (key == NULL || key_len == 0 || key_len > MAC_MAX_KEY)
		return GK_ERR_INVALID;
	if ((r = mac_global()) != 0)
		goto out;
	/* monotonic and never wrapping: an id is never handed out twice */
	id = atomic_load(&mac_next_id);
	do {
		if (id == UINT64_MAX) {
			r = GK_ERR_INTERNAL;
			goto out;
		}
	} while (!atomic_compare_exchange_weak(&mac_next_id, &id, id + 1));
	r = GK_ERR_NOMEM;
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->key = malloc(key_len)) == NULL)
		goto out;
	memcpy(m->key, key, key_len);
	m->key_len = key_len;
	m->id = id;
	*out = m;
	m = NULL; /* transferred */
	r = 0;
 out:
	verify_mac_free(m);
	return r;
}

void
verify_mac_free(gk_mac *m)
{
	if (m == NULL)
		return;
	if (m->id != 0) {
		mac_cache_drop(m->id);
		atomic_fetch_add_explicit(&mac_free_epoch, 1,
		    memory_order_release);
	}
	if (m->key != NULL) {
		gk_wipe(m->key, m->key_len);
		free(m->key);
	}
	gk_wipe(m, sizeof(*m));
	free(m);
}

int
verify_mac_compute(const gk_mac *m, const gk_slice *parts, size_t nparts,
    uint8_t out[GK_MAC_LEN])
{
	struct mac_cache *c;
	struct mac_slot *s = NULL, *victim;
	size_t i, outl = 0;
	int r = GK_ERR_INTERNAL;

	if (m == NULL || out == NULL || (parts == NULL && nparts > 0))
		return GK_ERR_INTERNAL;
	for (i = 0; i < nparts; i++) {
		if (parts[i].p == NULL && parts[i].len > 0)
			return GK_ERR_INTERNAL;
	}
	if (mac_global() != 0 || (c = mac_cache_get()) == NULL)
		return GK_ERR_INTERNAL;
	c->tick++;
	victim = &c->slot[0];
	for (i = 0; i < MAC_CACHE_SLOTS; i++) {
		if (c->slot[i].id == m->id && c->slot[i].ctx != NULL) {
			s = &c->slot[i];
			break;
		}
		if (c->slot[i].used < victim->used)
			victim = &c->slot[i];
	}
	if (s != NULL) {
		if (EVP_MAC_init(s->ctx, NULL, 0, NULL) != 1)
			goto out;
	} else {
		/* least recently used (or empty: used == 0) slot */
		s = victim;
		EVP_MAC_CTX_free(s->ctx);
		memset(s, 0, sizeof(*s));
		if ((s->ctx = mac_ctx_new(m)) == NULL)
			goto out;
		s->id = m->id;
	}
	s->used = c->tick;
	for (i = 0; i < nparts; i++) {
		if (parts[i].len > 0 &&
		    EVP_MAC_update(s->ctx, parts[i].p, parts[i].len) != 1)
			goto out;
	}
	if (EVP_MAC_final(s->ctx, out, &outl, GK_MAC_LEN) != 1 ||
	    outl != GK_MAC_LEN)
		goto out;
	r = 0;
 out:
	if (r != 0) {
		if (s != NULL) {
			/* state unknown: do not reuse this context */
			EVP_MAC_CTX_free(s->ctx);
			memset(s, 0, sizeof(*s));
		}
		gk_wipe(out, GK_MAC_LEN);
	}
	return r;
}
