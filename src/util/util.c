/* util.c - errors, slices, buffers, numbers, secrets, byte order, paths. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>

const char *
gk_err_str(int err)
{
	switch (err) {
	case GK_OK: return "success";
	case GK_ERR_INTERNAL: return "internal error";
	case GK_ERR_NOMEM: return "out of memory";
	case GK_ERR_INVALID: return "invalid input";
	case GK_ERR_TOO_LARGE: return "too large";
	case GK_ERR_NOT_FOUND: return "not found";
	case GK_ERR_IO: return "I/O error";
	case GK_ERR_AUTH: return "authentication failed";
	case GK_ERR_EXPIRED: return "expired";
	case GK_ERR_DENIED: return "denied";
	case GK_ERR_INTEGRITY: return "stored data failed its integrity check";
	case GK_ERR_UNAVAILABLE: return "unavailable";
	case GK_ERR_CONFIG: return "configuration error";
	case GK_ERR_EXISTS: return "already exists";
	case GK_ERR_RANGE: return "range not satisfiable";
	case GK_ERR_AGAIN: return "not ready yet";
	}
	return "unknown error";
}

/* ---- slices ---------------------------------------------------------- */

gk_slice
gk_slice_str(const char *s)
{
	return s ? gk_slice_of(s, strlen(s)) : GK_SLICE_NULL;
}

int
gk_slice_eq(gk_slice a, gk_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int
gk_slice_eq_str(gk_slice a, const char *s)
{
	return gk_slice_eq(a, gk_slice_str(s));
}

int
gk_slice_has_prefix(gk_slice a, gk_slice prefix)
{
	return a.len >= prefix.len &&
	    (prefix.len == 0 || memcmp(a.p, prefix.p, prefix.len) == 0);
}

char *
gk_slice_dup(gk_slice s)
{
	char *r;

	if (s.len > 0 && memchr(s.p, '\0', s.len) != NULL)
		return NULL;
	if (s.len == SIZE_MAX || (r = malloc(s.len + 1)) == NULL)
		return NULL;
	if (s.len > 0)
		memcpy(r, s.p, s.len);
	r[s.len] = '\0';
	return r;
}

/* ---- buffers --------------------------------------------------------- */

void
gk_buf_init(gk_buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
gk_buf_release(gk_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

void
gk_buf_reset(gk_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

static int
buf_reserve(gk_buf *b, size_t extra)
{
	size_t need, n;
	uint8_t *p;

	if (gk_add_size(b->len, extra, &need) != 0 || need > b->cap)
		return GK_ERR_TOO_LARGE;
	if (gk_add_size(need, 1, &need) != 0)
		return GK_ERR_TOO_LARGE;
	if (need <= b->alloc)
		return 0;
	n = b->alloc ? b->alloc : 64;
	while (n < need) {
		if (gk_mul_size(n, 2, &n) != 0)
			return GK_ERR_TOO_LARGE;
	}
	if (n > b->cap + 1)
		n = b->cap + 1;
	if ((p = realloc(b->data, n)) == NULL)
		return GK_ERR_NOMEM;
	b->data = p;
	b->alloc = n;
	return 0;
}

int
gk_buf_reserve(gk_buf *b, size_t extra)
{
	return buf_reserve(b, extra);
}

int
gk_buf_append(gk_buf *b, const void *p, size_t len)
{
	int r;

	if ((r = buf_reserve(b, len)) != 0)
		return r;
	if (len > 0)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
gk_buf_append_str(gk_buf *b, const char *s)
{
	return gk_buf_append(b, s, strlen(s));
}

int
gk_buf_printf(gk_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return GK_ERR_INTERNAL;
	if ((r = buf_reserve(b, (size_t)n)) != 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *
gk_buf_detach(gk_buf *b, size_t *len_out)
{
	char *r = (char *)b->data;

	if (len_out != NULL)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	return r;
}

/* ---- numbers --------------------------------------------------------- */

int
gk_parse_u64(gk_slice s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s.len == 0 || s.len > 20)
		return GK_ERR_INVALID;
	for (i = 0; i < s.len; i++) {
		uint8_t c = s.p[i];

		if (c < '0' || c > '9')
			return GK_ERR_INVALID;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(c - '0'), &v))
			return GK_ERR_TOO_LARGE;
	}
	if (v > max)
		return GK_ERR_TOO_LARGE;
	*out = v;
	return 0;
}

/* ---- secrets --------------------------------------------------------- */

int
gk_ct_eq(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void
gk_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

const EVP_MD *
gk_sha256(void)
{
	return pthread_once(&sha256_once, sha256_fetch) == 0 ? sha256_md :
	    NULL;
}

int
gk_random(void *p, size_t len)
{
	if (len > INT32_MAX)
		return GK_ERR_INVALID;
	return RAND_bytes(p, (int)len) == 1 ? 0 : GK_ERR_INTERNAL;
}

int
gk_list_each(const char *list, int (*fn)(void *arg, gk_slice item),
    void *arg)
{
	const char *p = list, *start;
	int r;

	if (list == NULL)
		return 0;
	while (*p != '\0') {
		while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t' &&
		    *p != '\n' && *p != '\r')
			p++;
		if ((r = fn(arg, gk_slice_of(start, (size_t)(p - start)))) != 0)
			return r;
	}
	return 0;
}

/* ---- big-endian integers, paths ----------------------------------------- */

void
gk_put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void
gk_put_u64be(uint8_t *p, uint64_t v)
{
	gk_put_u32be(p, (uint32_t)(v >> 32));
	gk_put_u32be(p + 4, (uint32_t)v);
}

uint32_t
gk_get_u32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t
gk_get_u64be(const uint8_t *p)
{
	return (uint64_t)gk_get_u32be(p) << 32 | gk_get_u32be(p + 4);
}

char *
gk_path_join(const char *a, const char *b)
{
	gk_buf p;

	gk_buf_init(&p, 4096);
	if (gk_buf_printf(&p, "%s/%s", a, b) != 0) {
		gk_buf_release(&p);
		return NULL;
	}
	return gk_buf_detach(&p, NULL);
}
