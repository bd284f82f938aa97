/*
 * util.h - the util folder's whole interface: errors, slices, bounded
 * buffers, hex/base64, percent-decoding, UTF-8 checks, checked arithmetic,
 * time, randomness, constant-time compare and logging.
 *
 * Every function that can fail returns 0 or a negative GK_ERR_* code.
 * Untrusted bytes travel as gk_slice (pointer + length) and are never
 * assumed to be NUL-terminated.
 */
#ifndef GK_UTIL_H
#define GK_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GK_WUR __attribute__((warn_unused_result))
#define GK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define GK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors ---------------------------------------------------------- */

enum {
	GK_OK = 0,
	GK_ERR_INTERNAL = -1,     /* unexpected failure: fail closed */
	GK_ERR_NOMEM = -2,
	GK_ERR_INVALID = -3,      /* malformed input */
	GK_ERR_TOO_LARGE = -4,    /* a cap was hit */
	GK_ERR_NOT_FOUND = -5,
	GK_ERR_IO = -6,
	GK_ERR_AUTH = -7,         /* signature / MAC mismatch */
	GK_ERR_EXPIRED = -8,
	GK_ERR_DENIED = -9,
	GK_ERR_INTEGRITY = -10,   /* stored data failed authentication */
	GK_ERR_UNAVAILABLE = -11, /* a dependency (audit, store) is down */
	GK_ERR_CONFIG = -12,
	GK_ERR_EXISTS = -13,
	GK_ERR_RANGE = -14,       /* unsatisfiable range */
	GK_ERR_AGAIN = -15,       /* not yet: a wait timed out */
};

/* Static English text for a GK_ERR_* code; never NULL. */
const char *gk_err_str(int err);

/* ---- slices ---------------------------------------------------------- */

typedef struct {
	const uint8_t *p;
	size_t len;
} gk_slice;

#define GK_SLICE_NULL ((gk_slice){ NULL, 0 })

static inline gk_slice
gk_slice_of(const void *p, size_t len)
{
	gk_slice s = { (const uint8_t *)p, len };
	return s;
}

/* Slice over a NUL-terminated string (s may be NULL: empty slice). */
gk_slice gk_slice_str(const char *s);
/* 1 if the slices hold the same bytes (not constant time). */
int gk_slice_eq(gk_slice a, gk_slice b);
/* 1 if a equals the NUL-terminated s. */
int gk_slice_eq_str(gk_slice a, const char *s);
/* 1 if a begins with prefix. */
int gk_slice_has_prefix(gk_slice a, gk_slice prefix);
/* Newly allocated NUL-terminated copy; NULL on allocation failure or if
 * the slice holds a NUL byte. Caller frees. */
char *gk_slice_dup(gk_slice s) GK_WUR;

/* ---- checked arithmetic ---------------------------------------------- */

static inline int GK_WUR
gk_add_size(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out) ? GK_ERR_TOO_LARGE : 0;
}

static inline int GK_WUR
gk_mul_size(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? GK_ERR_TOO_LARGE : 0;
}

/*
 * Time arithmetic on client-supplied numbers (unix seconds, microseconds):
 * the sum or difference clamped to [INT64_MIN, INT64_MAX] instead of
 * overflowing, so a comparison like exp + skew < now keeps its meaning
 * for any exp (an expiry near 2^63 is simply far away).
 */
static inline int64_t
gk_add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static inline int64_t
gk_sub_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* ---- bounded growable buffer ----------------------------------------- */

/* A byte buffer that never grows past cap bytes. Always NUL-terminated
 * after a successful append (the NUL is not counted in len). */
typedef struct {
	uint8_t *data;
	size_t len;
	size_t alloc;
	size_t cap;
} gk_buf;

/* Named caps. */
#define GK_CAP_JSON_REPLY (4u * 1024 * 1024)
#define GK_CAP_SMALL (64u * 1024)
#define GK_CAP_LINE 8192u

void gk_buf_init(gk_buf *b, size_t cap);
/* Frees the storage and resets to empty; b may be NULL. */
void gk_buf_release(gk_buf *b);
void gk_buf_reset(gk_buf *b);
/* Room for extra more bytes (and the NUL) without another allocation;
 * GK_ERR_TOO_LARGE past the cap. */
int gk_buf_reserve(gk_buf *b, size_t extra) GK_WUR;
int gk_buf_append(gk_buf *b, const void *p, size_t len) GK_WUR;
int gk_buf_append_str(gk_buf *b, const char *s) GK_WUR;
int gk_buf_printf(gk_buf *b, const char *fmt, ...) GK_PRINTF(2, 3) GK_WUR;
/* Hands the storage over to the caller (NUL-terminated, may be NULL when
 * empty) and resets the buffer. */
char *gk_buf_detach(gk_buf *b, size_t *len_out);

/* ---- encodings ------------------------------------------------------- */

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void gk_hex_encode(const uint8_t *in, size_t n, char *out);
/* Value of one hex digit (either case), or -1. */
int gk_hex_val(uint8_t c);
/* Decodes exactly 2*out_len hex digits (either case). GK_ERR_INVALID
 * otherwise. */
int gk_hex_decode(gk_slice in, uint8_t *out, size_t out_len) GK_WUR;

/* Base64 (standard alphabet, padded) and base64url (no padding).
 * Encoders write a NUL-terminated string into a gk_buf. */
int gk_b64_encode(const uint8_t *in, size_t n, gk_buf *out) GK_WUR;
int gk_b64url_encode(const uint8_t *in, size_t n, gk_buf *out) GK_WUR;
/* Strict decoders: reject characters outside the alphabet, bad padding
 * (b64) or any padding (b64url), and non-canonical trailing bits. */
int gk_b64_decode(gk_slice in, gk_buf *out) GK_WUR;
int gk_b64url_decode(gk_slice in, gk_buf *out) GK_WUR;

/* Percent-decodes once (a '+' stays '+'). Rejects truncated or non-hex
 * escapes. Output appended to out. */
int gk_pct_decode(gk_slice in, gk_buf *out) GK_WUR;
/* application/x-www-form-urlencoded: the same, with '+' a space; a
 * decoded NUL is GK_ERR_INVALID. */
int gk_form_decode(gk_slice in, gk_buf *out) GK_WUR;
/* Percent-encodes everything but unreserved characters (A-Z a-z 0-9 - . _ ~)
 * and, if keep_slash, '/'. Upper-case hex. */
int gk_pct_encode(gk_slice in, int keep_slash, gk_buf *out) GK_WUR;

/* 1 if s is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int gk_utf8_valid(gk_slice s);
/* Length (1-4) of the valid UTF-8 sequence at p within n > 0 bytes, or 0
 * if none starts there. */
size_t gk_utf8_seq(const uint8_t *p, size_t n);
/* 1 if the sequence of k bytes at p (as gk_utf8_seq measured it) is a
 * control character a terminal acts on: C0, DEL or C1 (U+0080-U+009F). */
int gk_utf8_control(const uint8_t *p, size_t k);
/* 1 if that sequence is a bidirectional formatting character (U+061C,
 * U+200E/F, U+202A-U+202E, U+2066-U+2069): it reorders the text shown
 * around it, so "invoice<U+202E>fdp.exe" reads as "invoiceexe.pdf". */
int gk_utf8_bidi(const uint8_t *p, size_t k);
/* 1 if that sequence is U+2028 LINE SEPARATOR or U+2029 PARAGRAPH
 * SEPARATOR: no control to a terminal, but log readers, JSON-in-JS and
 * line-splitting tools end a line there, so one line of output becomes
 * two. (U+0085 NEL is C1: gk_utf8_control.) */
int gk_utf8_linesep(const uint8_t *p, size_t k);
/* 1 if that sequence must not be shown as is in a name or a one-line
 * message: gk_utf8_control, gk_utf8_bidi or gk_utf8_linesep. */
int gk_utf8_unsafe(const uint8_t *p, size_t k);
/* Appends s to out with every byte that is not part of valid UTF-8
 * replaced by U+FFFD. */
int gk_utf8_sanitize(gk_slice s, gk_buf *out) GK_WUR;

/* Parses a decimal unsigned integer with no sign, no spaces, no leading
 * '+'; at most max. GK_ERR_INVALID / GK_ERR_TOO_LARGE. */
int gk_parse_u64(gk_slice s, uint64_t max, uint64_t *out) GK_WUR;

/* Appends s as a JSON string literal (with quotes, escaped) to out. */
int gk_json_str(gk_buf *out, gk_slice s) GK_WUR;

/* ---- secrets --------------------------------------------------------- */

/* Constant-time equality of two equal-length secrets; 0 if lengths differ. */
int gk_ct_eq(const void *a, const void *b, size_t len);
/* The length of every 256-bit key the gatekeeper keeps in a key file. */
#define GK_KEY_LEN 32

/* A secret read from a key file (heap, wiped when freed). */
typedef struct {
	uint8_t *p;
	size_t len;
} gk_secret;

/* Splits a comma/space/newline separated list; calls fn for each item.
 * Stops and returns fn's non-zero result. list may be NULL (empty). */
int gk_list_each(const char *list, int (*fn)(void *arg, gk_slice item),
    void *arg);

/* Big-endian integers in 4 and 8 bytes. */
void gk_put_u32be(uint8_t *p, uint32_t v);
void gk_put_u64be(uint8_t *p, uint64_t v);
uint32_t gk_get_u32be(const uint8_t *p);
uint64_t gk_get_u64be(const uint8_t *p);

/* "a/b" in a new heap string (NULL when out of memory). */
char *gk_path_join(const char *a, const char *b);

/* HTTP lexical classes (RFC 9110): tchar, and OWS (space, HTAB). */
int gk_http_is_tchar(uint8_t c);
int gk_http_is_ows(uint8_t c);
/* s without leading and trailing OWS. */
gk_slice gk_http_trim_ows(gk_slice s);

/*
 * IP addresses as 16 bytes, IPv4 mapped into IPv6 (::ffff:a.b.c.d).
 * gk_ip_parse: an address (dotted quad without leading zeros, or IPv6).
 * gk_cidr_parse: an address with an optional "/len" (1-3 digits, no
 * leading zero; at most 32 after a dotted quad, 128 otherwise), *bits
 * the prefix length in 128-bit space (96 + len for IPv4); host bits are
 * not checked. Both GK_ERR_INVALID when malformed.
 */
int gk_ip_parse(gk_slice s, uint8_t out[16]) GK_WUR;
int gk_cidr_parse(gk_slice s, uint8_t addr[16], unsigned *bits) GK_WUR;

/* Wipes memory that held a secret. */
void gk_wipe(void *p, size_t len);
/* Cryptographically secure random bytes. */
int gk_random(void *p, size_t len) GK_WUR;
/* OpenSSL's SHA-256, fetched once per process (EVP_sha256() looks it up
 * again at every use); NULL if the library has none. An EVP_MD. */
struct evp_md_st;
const struct evp_md_st *gk_sha256(void);

/* ---- time ------------------------------------------------------------ */

/* Wall clock. */
int64_t gk_now_us(void);
/* Tests: the wall clock stands still at unix_us (0: the real clock). */
void gk_debug_clock_fix(int64_t unix_us);
int64_t gk_now_s(void);
/* Monotonic clock, microseconds. */
int64_t gk_mono_us(void);
/* The time after_us (>= 0) from now on clock (CLOCK_REALTIME for a
 * default condition variable, CLOCK_MONOTONIC for one set to it), for
 * pthread_cond_timedwait. */
struct timespec;
void gk_deadline_ts(int clock, int64_t after_us, struct timespec *ts);
/* ISO 8601 UTC: "2026-11-23T16:11:49Z" (out >= 21 bytes) or with
 * microseconds "2026-11-23T16:11:49.123456Z" (out >= 28 bytes). */
void gk_time_iso(int64_t unix_s, char *out, size_t out_len);
void gk_time_iso_us(int64_t unix_us, char *out, size_t out_len);
/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" or a plain unix
 * seconds integer into unix microseconds. */
int gk_time_parse(const char *s, int64_t *out_us) GK_WUR;
/* HTTP-date (IMF-fixdate) for Last-Modified; out >= 30 bytes. */
void gk_time_http(int64_t unix_s, char *out, size_t out_len);

/* ---- files ----------------------------------------------------------- */

/* Reads a whole small file (at most cap bytes) into out; on GK_ERR_IO
 * and GK_ERR_NOT_FOUND errno says why, and gk_file_strerror(r) too. */
int gk_file_read(const char *path, size_t cap, gk_buf *out) GK_WUR;
/* What a gk_file_read() failure means, right after it ("Permission
 * denied", "Is a directory", ...). */
const char *gk_file_strerror(int r);
/* Writes a file atomically (temp + fsync + rename) with the given mode;
 * on GK_ERR_IO errno says why. */
int gk_file_write_atomic(const char *path, const void *p, size_t len,
    mode_t mode) GK_WUR;
/* mkdir -p with mode for each created component; on GK_ERR_IO errno
 * says why. */
int gk_mkdirs(const char *path, mode_t mode) GK_WUR;
/* fsync the directory holding path (or path itself if a directory). */
int gk_fsync_dir(const char *dir) GK_WUR;

/* ---- logging --------------------------------------------------------- */

enum { GK_LOG_ERROR = 0, GK_LOG_WARN, GK_LOG_INFO, GK_LOG_DEBUG };

void gk_log_set_level(int level);
int gk_log_get_level(void);
/* Never pass a secret, token or signature to these. */
void gk_log_at(int level, const char *func, int line, const char *fmt, ...)
    GK_PRINTF(4, 5);

#define gk_error(...) gk_log_at(GK_LOG_ERROR, __func__, __LINE__, __VA_ARGS__)
#define gk_warn(...) gk_log_at(GK_LOG_WARN, __func__, __LINE__, __VA_ARGS__)
#define gk_info(...) gk_log_at(GK_LOG_INFO, __func__, __LINE__, __VA_ARGS__)
#define gk_debug(...) gk_log_at(GK_LOG_DEBUG, __func__, __LINE__, __VA_ARGS__)

#endif /* GK_UTIL_H */
