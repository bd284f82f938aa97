/*
 * fuzz_sigv4.c - the SigV4 request parser and verifier of the S3 endpoint
 * on untrusted bytes: the input is split at NUL bytes into a query string
 * and header lines ("name: value"); the parse must never crash, and a
 * verify of what parsed must answer (it cannot succeed with a made-up
 * secret, except by forging HMAC-SHA256).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct hdrs {
	gk_slice name[16], value[16];
	size_t n;
};

static int
lookup(void *arg, const char *lname, gk_buf *out)
{
	struct hdrs *h = arg;
	size_t i;
	int found = 0;

	for (i = 0; i < h->n; i++) {
		if (h->name[i].len == strlen(lname) &&
		    strncasecmp((const char *)h->name[i].p, lname,
		    h->name[i].len) == 0) {
			if ((found && gk_buf_append(out, ",", 1) != 0) ||
			    gk_buf_append(out, h->value[i].p,
			    h->value[i].len) != 0)
				return GK_ERR_TOO_LARGE;
			found = 1;
		}
	}
	return found ? 0 : GK_ERR_NOT_FOUND;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static s3_signer *sg;
	struct hdrs h;
	gk_slice query = GK_SLICE_NULL, part;
	const uint8_t *p = data, *end = data + size, *z, *colon;
	const char *why;
	s3_auth a;
	int first = 1;

	if (sg == NULL && s3_signer_new("us-east-1", "s3", &sg) != 0)
		abort();
	memset(&h, 0, sizeof(h));
	while (p <= end) {
		z = memchr(p, 0, (size_t)(end - p));
		part = gk_slice_of(p, z ? (size_t)(z - p) : (size_t)(end - p));
		if (first) {
			query = part;
			first = 0;
		} else if (h.n < 16 && (colon = memchr(part.p, ':',
		    part.len)) != NULL) {
			h.name[h.n] = gk_slice_of(part.p,
			    (size_t)(colon - part.p));
			h.value[h.n] = gk_slice_of(colon + 1, part.len -
			    h.name[h.n].len - 1);
			h.n++;
		}
		if (z == NULL)
			break;
		p = z + 1;
	}
	if (s3_auth_parse(query, lookup, &h, &a, &why) == 0) {
		if (s3_auth_verify(&a, sg, "fuzz-secret", "GET",
		    gk_slice_str("/bucket/key"), query, lookup, &h, a.time,
		    &why) == 0)
			__builtin_trap();	/* a forged signature */
	}
	return 0;
}
