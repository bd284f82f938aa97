/*
 * t.h - minimal unit-test macros. Each test binary prints one line per
 * failure and a closing "N passed, N failed" line; exit status is non-zero
 * when anything failed.
 */
#ifndef GK_T_H
#define GK_T_H

#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define T_CHECK(cond) do {						\
	if (cond) {							\
		t_pass++;						\
	} else {							\
		t_fail++;						\
		fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__,	\
		    #cond);						\
	}								\
} while (0)

#define T_EQ_INT(a, b) do {						\
	long long t_a = (long long)(a), t_b = (long long)(b);		\
	if (t_a == t_b) {						\
		t_pass++;						\
	} else {							\
		t_fail++;						\
		fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n",	\
		    __FILE__, __LINE__, #a, #b, t_a, t_b);		\
	}								\
} while (0)

#define T_EQ_STR(a, b) do {						\
	const char *t_a = (a), *t_b = (b);				\
	if (t_a != NULL && t_b != NULL && strcmp(t_a, t_b) == 0) {	\
		t_pass++;						\
	} else {							\
		t_fail++;						\
		fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", \
		    __FILE__, __LINE__, #a, #b, t_a ? t_a : "(null)",	\
		    t_b ? t_b : "(null)");				\
	}								\
} while (0)

#define T_DONE() (printf("%s: %d passed, %d failed\n", __FILE__, t_pass, \
    t_fail), t_fail != 0)

#endif
