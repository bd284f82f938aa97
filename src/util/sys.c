/* sys.c - time, files and logging. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- time ------------------------------------------------------------ */

/* A fixed wall clock for tests (0: the real one). */
static _Atomic int64_t fixed_now_us;

void
gk_debug_clock_fix(int64_t unix_us)
{
	atomic_store(&fixed_now_us, unix_us);
}

int64_t
gk_now_us(void)
{
	struct timespec ts;
	int64_t fixed = atomic_load_explicit(&fixed_now_us,
	    memory_order_relaxed);

	if (fixed != 0)
		return fixed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
gk_now_s(void)
{
	return gk_now_us() / 1000000;
}

int64_t
gk_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
gk_deadline_ts(int clock, int64_t after_us, struct timespec *ts)
{
	clock_gettime((clockid_t)clock, ts);
	ts->tv_sec += (time_t)(after_us / 1000000);
	ts->tv_nsec += (long)(after_us % 1000000) * 1000;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void
gk_time_iso(int64_t unix_s, char *out, size_t out_len)
{
	struct tm tm;
	time_t t = (time_t)unix_s;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, out_len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (out_len > 0)
			out[0] = '\0';
	}
}

void
gk_time_iso_us(int64_t unix_us, char *out, size_t out_len)
{
	struct tm tm;
	time_t t = (time_t)(unix_us / 1000000);
	long frac = (long)(unix_us % 1000000);
	char base[32];

	if (frac < 0) {
		frac += 1000000;
		t -= 1;
	}
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		if (out_len > 0)
			out[0] = '\0';
		return;
	}
	snprintf(out, out_len, "%s.%06ldZ", base, frac);
}

void
gk_time_http(int64_t unix_s, char *out, size_t out_len)
{
	struct tm tm;
	time_t t = (time_t)unix_s;
	static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
		"Sat" };
	static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

	if (gmtime_r(&t, &tm) == NULL) {
		if (out_len > 0)
			out[0] = '\0';
		return;
	}
	snprintf(out, out_len, "%s, %02d %s %04d %02d:%02d:%02d GMT",
	    days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int
digits(const char *s, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days in month mo (1-12) of year y, Gregorian. */
static int
month_days(int y, int mo)
{
	static const int n[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };

	if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return n[mo - 1];
}

int
gk_time_parse(const char *s, int64_t *out_us)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, se = 0, us = 0, k;
	size_t len = strlen(s);
	uint64_t v;
	time_t t;

	if (len > 0 && s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL) {
		if (gk_parse_u64(gk_slice_str(s), INT64_MAX / 1000000, &v) != 0)
			return GK_ERR_INVALID;
		*out_us = (int64_t)v * 1000000;
		return 0;
	}
	if (len < 10 || digits(s, 4, &y) || s[4] != '-' ||
	    digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d))
		return GK_ERR_INVALID;
	if (len > 10) {
		if (len < 20 || (s[10] != 'T' && s[10] != ' ') ||
		    digits(s + 11, 2, &h) || s[13] != ':' ||
		    digits(s + 14, 2, &mi) || s[16] != ':' ||
		    digits(s + 17, 2, &se))
			return GK_ERR_INVALID;
		k = 19;
		if (s[k] == '.') {
			int n = 0;

			k++;
			while (s[k] >= '0' && s[k] <= '9' && n < 6) {
				us = us * 10 + (s[k] - '0');
				k++;
				n++;
			}
			if (n == 0)
				return GK_ERR_INVALID;
			for (; n < 6; n++)
				us *= 10;
		}
		if (strcmp(s + k, "Z") != 0)
			return GK_ERR_INVALID;
	}
	/* a day the month lacks (2026-02-30) is refused, not moved on into
	 * the next month by timegm */
	if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
	    mi > 59 || se > 60)
		return GK_ERR_INVALID;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return GK_ERR_INVALID;
	*out_us = (int64_t)t * 1000000 + us;
	return 0;
}

/* ---- files ----------------------------------------------------------- */

int
gk_file_read(const char *path, size_t cap, gk_buf *out)
{
	char tmp[8192];
	ssize_t n;
	int fd, r = 0, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? GK_ERR_NOT_FOUND : GK_ERR_IO;
	gk_buf_init(out, cap);
	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = GK_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		if ((r = gk_buf_append(out, tmp, (size_t)n)) != 0)
			break;
	}
	if (r == 0 && out->data == NULL)
		r = gk_buf_append(out, "", 0);
	e = errno;
	gk_wipe(tmp, sizeof(tmp));
	close(fd);
	if (r != 0)
		gk_buf_release(out);
	errno = e;
	return r;
}

const char *
gk_file_strerror(int r)
{
	return r == GK_ERR_IO || r == GK_ERR_NOT_FOUND ? strerror(errno) :
	    gk_err_str(r);
}

int
gk_fsync_dir(const char *path)
{
	char *copy, *dir;
	struct stat st;
	int fd, r = GK_ERR_IO;

	if ((copy = strdup(path)) == NULL)
		return GK_ERR_NOMEM;
	dir = (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ? copy :
	    dirname(copy);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (fsync(fd) == 0)
			r = 0;
		close(fd);
	}
	free(copy);
	return r;
}

int
gk_file_write_atomic(const char *path, const void *p, size_t len, mode_t mode)
{
	gk_buf tmp;
	const uint8_t *q = p;
	size_t off = 0;
	ssize_t n;
	int fd = -1, r = GK_ERR_IO, e;
	uint8_t rnd[8];
	char hex[17];

	gk_buf_init(&tmp, 4096);
	if (gk_random(rnd, sizeof(rnd)) != 0)
		goto out;
	gk_hex_encode(rnd, sizeof(rnd), hex);
	if ((r = gk_buf_printf(&tmp, "%s.tmp.%s", path, hex)) != 0)
		goto out;
	r = GK_ERR_IO;
	fd = open((char *)tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    mode);
	if (fd < 0)
		goto out;
	if (fchmod(fd, mode) != 0)
		goto out;
	while (off < len) {
		n = write(fd, q + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename((char *)tmp.data, path) != 0)
		goto out;
	r = gk_fsync_dir(path);
out:
	e = errno;
	if (fd >= 0)
		close(fd);
	if (r != 0 && tmp.data != NULL)
		unlink((char *)tmp.data);
	gk_buf_release(&tmp);
	errno = e;
	return r;
}

int
gk_mkdirs(const char *path, mode_t mode)
{
	char *copy, *p;
	int r = 0;

	if ((copy = strdup(path)) == NULL)
		return GK_ERR_NOMEM;
	for (p = copy + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;

			*p = '\0';
			if (mkdir(copy, mode) != 0 && errno != EEXIST) {
				r = GK_ERR_IO;
				break;
			}
			*p = save;
			if (save == '\0')
				break;
		}
	}
	free(copy);
	return r;
}

/* ---- logging --------------------------------------------------------- */

static int log_level = GK_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
gk_log_set_level(int level)
{
	log_level = level;
}

int
gk_log_get_level(void)
{
	return log_level;
}

void
gk_log_at(int level, const char *func, int line, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char ts[40], msg[1024];
	va_list ap;
	size_t i;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one line per message: no CR/LF injection from data */
	for (i = 0; msg[i] != '\0'; i++) {
		if ((unsigned char)msg[i] < 0x20)
			msg[i] = ' ';
	}
	gk_time_iso_us(gk_now_us(), ts, sizeof(ts));
	pthread_mutex_lock(&log_lock);
	if (log_level >= GK_LOG_DEBUG)
		fprintf(stderr, "%s gatekeeper %s: %s:%d: %s\n", ts,
		    names[level], func, line, msg);
	else
		fprintf(stderr, "%s gatekeeper %s: %s\n", ts, names[level],
		    msg);
	pthread_mutex_unlock(&log_lock);
}
