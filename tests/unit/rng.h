/*
 * rng.h - the tests' one pseudo-random generator: xorshift64*, seeded
 * with a constant so every run sees the same sequence (a failure
 * reproduces). Not for anything secret.
 */
#ifndef GK_TEST_RNG_H
#define GK_TEST_RNG_H

#include <stdint.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline void
rng_seed(uint64_t seed)
{
	rng_state = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
}

static inline uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

#endif
