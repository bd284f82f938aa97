/*
 * seen.c - the receiver's memory of the manifests it has applied, so that
 * an older manifest of the same share, replayed by whoever can write the
 * destination, is refused rather than applied.
 *
 * A manifest's revision is its signed "created" time (unix seconds, in
 * every manifest since the first). Per share id the receiver keeps one
 * file, <state>/<id>: "v1 <created> <SHA-256 of the manifest body, hex>
 * <sender key fingerprint>\n". A manifest is refused when it is older
 * than the one recorded, when it differs from it but has the same time,
 * or when another sender key signed it.
 */
#include "share/share.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "share/share_int.h"

#define SEEN_LINE_MAX 256

/* The state directory: made 0700 if missing; must be ours and closed to
 * others, or whoever can write it could forget a record for us. */
static int
state_dir_ok(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (gk_mkdirs(dir, 0700) != 0 || lstat(dir, &st) != 0) {
		snprintf(err, errlen, "receiver state directory %s: %s", dir,
		    strerror(errno));
		return GK_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) != 0) {
		snprintf(err, errlen, "receiver state directory %s must be a "
		    "directory of this user that group and others cannot "
		    "write", dir);
		return GK_ERR_DENIED;
	}
	return 0;
}

/* "SHA256:" and the unpadded base64 of a SHA-256 (share_fingerprint) */
#define SEEN_FP_LEN (7 + 43)
_Static_assert(SEEN_FP_LEN < SHARE_FP_STR, "a fingerprint fits its buffer");

static int
b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Only the bytes share_seen_format writes are read: any other spelling
 * (upper-case hex, "+5", "007", a longer fingerprint) is not ours, and a
 * record we did not write is corrupt, not a record to compare with.
 */
int
share_seen_parse(gk_slice in, int64_t *created, uint8_t sha[32],
    char fp[SHARE_FP_STR])
{
	const uint8_t *p = in.p, *sp;
	size_t n = in.len, i, nl;
	uint64_t v;
	int neg;

	/* "v1 " and, at the end, "\n" */
	if (n < 4 || memcmp(p, "v1 ", 3) != 0 || p[n - 1] != '\n')
		return GK_ERR_INVALID;
	p += 3;
	n -= 4;
	/* created: decimal, '-' if negative, no leading zero */
	if ((sp = memchr(p, ' ', n)) == NULL)
		return GK_ERR_INVALID;
	neg = p[0] == '-';
	nl = (size_t)(sp - p) - (size_t)neg;
	if (nl == 0 || (p[neg] == '0' && (nl > 1 || neg)) ||
	    gk_parse_u64(gk_slice_of(p + neg, nl), neg ?
	    (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v) != 0)
		return GK_ERR_INVALID;
	/* -(2^63) without overflowing */
	*created = neg ? -(int64_t)(v - 1) - 1 : (int64_t)v;
	n -= (size_t)(sp - p) + 1;
	p = sp + 1;
	/* the manifest's SHA-256, 64 lower-case hex digits */
	if (n < 65 || p[64] != ' ')
		return GK_ERR_INVALID;
	for (i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		    (p[i] >= 'a' && p[i] <= 'f')))
			return GK_ERR_INVALID;
	if (gk_hex_decode(gk_slice_of(p, 64), sha, 32) != 0)
		return GK_ERR_INVALID;
	p += 65;
	n -= 65;
	/* the sender key's fingerprint, the rest of the line */
	if (n != SEEN_FP_LEN || memcmp(p, "SHA256:", 7) != 0)
		return GK_ERR_INVALID;
	for (i = 7; i < n; i++)
		if (!b64_char(p[i]))
			return GK_ERR_INVALID;
	memcpy(fp, p, n);
	fp[n] = '\0';
	return 0;
}

int
share_seen_format(int64_t created, const uint8_t sha[32], const char *fp,
    char *out, size_t outlen)
{
	char hex[65];
	int n;

	gk_hex_encode(sha, 32, hex);
	n = snprintf(out, outlen, "v1 %" PRId64 " %s %s\n", created, hex, fp);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}

/* 0 and *have 1 with the record's fields; *have 0 if there is none. */
static int
read_record(const char *path, int *have, int64_t *created,
    uint8_t sha[32], char fp[SHARE_FP_STR])
{
	gk_buf b;
	int r;

	*have = 0;
	if ((r = gk_file_read(path, SEEN_LINE_MAX, &b)) != 0)
		return r == GK_ERR_NOT_FOUND ? 0 : r;
	r = share_seen_parse(gk_slice_of(b.data, b.len), created, sha, fp);
	gk_buf_release(&b);
	if (r == 0)
		*have = 1;
	return r;
}

int
share_seen_check(const char *state_dir, const char *id, int64_t created,
    gk_slice body, const char *fp, int record, char *err, size_t errlen)
{
	char path[PATH_MAX], lock[PATH_MAX], rfp[SHARE_FP_STR];
	char line[SEEN_LINE_MAX + 1], t0[64], t1[64];
	uint8_t sha[32], rsha[32];
	int64_t rcreated = 0;
	int lfd = -1, have, r, n;

	if (!share_id_ok(id) || strlen(fp) >= SHARE_FP_STR)
		return GK_ERR_INVALID;
	if ((r = state_dir_ok(state_dir, err, errlen)) != 0)
		return r;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, id) >=
	    sizeof(path) || (size_t)snprintf(lock, sizeof(lock), "%s/.lock",
	    state_dir) >= sizeof(lock)) {
		snprintf(err, errlen, "receiver state directory path too long");
		return GK_ERR_INVALID;
	}
	SHA256(body.p, body.len, sha);
	/* one receiver at a time between reading the record and writing it */
	if ((lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) < 0 || flock(lfd, LOCK_EX) != 0) {
		snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		r = GK_ERR_IO;
		goto out;
	}
	if ((r = read_record(path, &have, &rcreated, rsha, rfp)) != 0) {
		snprintf(err, errlen, "receiver state %s is unreadable or "
		    "corrupt (remove it to accept share %s again)", path, id);
		goto out;
	}
	if (have) {
		gk_time_iso(rcreated, t0, sizeof(t0));
		gk_time_iso(created, t1, sizeof(t1));
		r = GK_ERR_INTEGRITY;
		if (strcmp(rfp, fp) != 0) {
			snprintf(err, errlen, "share %s was received signed by "
			    "sender key %s; this manifest is signed by %s: "
			    "refused", id, rfp, fp);
			goto out;
		}
		if (created < rcreated) {
			snprintf(err, errlen, "manifest of share %s (created %s) "
			    "is older than the one already received (created "
			    "%s): a replayed manifest, refused", id, t1, t0);
			goto out;
		}
		if (created == rcreated &&
		    CRYPTO_memcmp(sha, rsha, 32) != 0) {
			snprintf(err, errlen, "manifest of share %s differs from "
			    "the one already received with the same time "
			    "(created %s): refused", id, t0);
			goto out;
		}
		if (created > rcreated)
			fprintf(stderr, "receive: share %s was received before "
			    "(created %s); this manifest is newer (created "
			    "%s)\n", id, t0, t1);
	}
	r = 0;
	if (!record || (have && created == rcreated))
		goto out;
	n = share_seen_format(created, sha, fp, line, sizeof(line));
	if (n < 0 || (r = gk_file_write_atomic(path, line, (size_t)n,
	    0600)) != 0) {
		snprintf(err, errlen, "cannot record share %s in %s: %s", id,
		    state_dir, strerror(errno));
		r = GK_ERR_IO;
		goto out;
	}
out:
	if (lfd >= 0)
		close(lfd);	/* releases the lock */
	return r;
}
