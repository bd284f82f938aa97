/*
 * armor.c - decoding age's ASCII armor (strict PEM-like: 64-column
 * canonical base64 lines, LF or CRLF, whitespace only around the block).
 */
#include "share/share.h"

#include <stdlib.h>
#include <string.h>

#include "share/share_int.h"

#define BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define END "-----END AGE ENCRYPTED FILE-----"
#define MAX_WS 1024

struct age_armor {
	age_source_fn src;
	void *arg;
	uint8_t raw[4096];
	size_t rlen, roff;
	int eof;
	int state;		/* 0 before BEGIN, 1 body, 2 after a short
				 * line, 3 done */
	uint8_t out[48];
	size_t olen, ooff;
	const char *err;
};

int
age_armor_new(age_source_fn src, void *arg, const uint8_t *pre,
    size_t prelen, age_armor **out)
{
	age_armor *a;

	if (prelen > sizeof(a->raw))
		return GK_ERR_INVALID;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return GK_ERR_NOMEM;
	a->src = src;
	a->arg = arg;
	memcpy(a->raw, pre, prelen);
	a->rlen = prelen;
	*out = a;
	return 0;
}

void
age_armor_free(age_armor *a)
{
	free(a);
}

int
age_armor_failed(const age_armor *a)
{
	return a != NULL && a->err != NULL;
}

const char *
age_armor_error(const age_armor *a)
{
	return a != NULL && a->err != NULL ? a->err : "malformed armor";
}

static int
fail(age_armor *a, const char *why)
{
	if (a->err == NULL)
		a->err = why;
	return GK_ERR_INVALID;
}

/* Next raw byte, or -1 at the end; <-1 on a read error. */
static int
next_byte(age_armor *a, int *c)
{
	size_t got;
	int r;

	if (a->roff == a->rlen) {
		if (a->eof) {
			*c = -1;
			return 0;
		}
		if ((r = a->src(a->arg, a->raw, sizeof(a->raw), &got)) != 0)
			return r;
		a->roff = 0;
		a->rlen = got;
		if (got == 0) {
			a->eof = 1;
			*c = -1;
			return 0;
		}
	}
	*c = a->raw[a->roff++];
	return 0;
}

static int
get_line(age_armor *a, char *line, size_t max, size_t *len)
{
	size_t n = 0;
	int c, r;

	for (;;) {
		if ((r = next_byte(a, &c)) != 0)
			return r;
		if (c < 0) {
			if (n == 0)
				return fail(a, "armor ends without its END line");
			break;
		}
		if (c == '\n')
			break;
		if (n >= max)
			return fail(a, "armor line too long");
		line[n++] = (char)c;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	*len = n;
	return 0;
}

static int
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
step(age_armor *a)
{
	char line[80];
	size_t n, got, i;
	int c, r;

	if (a->state == 0) {
		for (i = 0;; i++) {
			if ((r = next_byte(a, &c)) != 0)
				return r;
			if (c < 0)
				return fail(a, "no armor BEGIN line");
			if (!is_ws(c))
				break;
			if (i >= MAX_WS)
				return fail(a, "too much whitespace before the "
				    "armor");
		}
		a->roff--;
		if ((r = get_line(a, line, sizeof(line) - 1, &n)) != 0)
			return r;
		if (strcmp(line, BEGIN) != 0)
			return fail(a, "bad armor BEGIN line");
		a->state = 1;
	}
	if ((r = get_line(a, line, sizeof(line) - 1, &n)) != 0)
		return r;
	if (strcmp(line, END) == 0) {
		for (i = 0;; i++) {
			if ((r = next_byte(a, &c)) != 0)
				return r;
			if (c < 0)
				break;
			if (!is_ws(c) || i >= MAX_WS)
				return fail(a, "data after the armor END line");
		}
		a->state = 3;
		return 0;
	}
	if (a->state == 2)
		return fail(a, "armor line after a short line");
	if (n == 0 || n > 64)
		return fail(a, "armor line of a wrong length");
	if (age_b64_decode(gk_slice_of(line, n), 1, a->out, sizeof(a->out),
	    &got) != 0)
		return fail(a, "invalid base64 in the armor");
	if (n < 64 || got < 48)
		a->state = 2;
	a->olen = got;
	a->ooff = 0;
	return 0;
}

int
age_armor_read(void *arg, uint8_t *buf, size_t max, size_t *got)
{
	age_armor *a = arg;
	size_t n = 0, k;
	int r;

	if (a->err != NULL)
		return GK_ERR_INVALID;
	while (n < max) {
		if (a->ooff == a->olen) {
			if (a->state == 3)
				break;
			if ((r = step(a)) != 0)
				return r;
			continue;
		}
		k = a->olen - a->ooff;
		if (k > max - n)
			k = max - n;
		memcpy(buf + n, a->out + a->ooff, k);
		a->ooff += k;
		n += k;
	}
	*got = n;
	return 0;
}
