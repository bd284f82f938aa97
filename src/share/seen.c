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

/* 0 and *have 1 with the record's fields; *have 0 if there is none. */
static int
read_record(const char *path, int *have, int64_t *created,
    uint8_t sha[32], char fp[SHARE_FP_STR])
{
	char line[SEEN_LINE_MAX + 1], hex[65], f[SHARE_FP_STR + 1];
	long long c;
	gk_buf b;
	size_t len;
	int r, used;

	*have = 0;
	if ((r = gk_file_read(path, SEEN_LINE_MAX, &b)) != 0)
		return r == GK_ERR_NOT_FOUND ? 0 : r;
	len = b.len;
	memcpy(line, b.data, len);
	line[len] = '\0';
	gk_buf_release(&b);
	if (len == 0 || line[len - 1] != '\n' || strlen(line) != len ||
	    sscanf(line, "v1 %lld %64s %56s%n", &c, hex, f, &used) != 3 ||
	    (size_t)used != len - 1 || strlen(hex) != 64 ||
	    gk_hex_decode(gk_slice_str(hex), sha, 32) != 0 ||
	    strncmp(f, "SHA256:", 7) != 0)
		return GK_ERR_INVALID;
	*created = c;
	memcpy(fp, f, strlen(f) + 1);
	*have = 1;
	return 0;
}

int
share_seen_check(const char *state_dir, const char *id, int64_t created,
    gk_slice body, const char *fp, int record, char *err, size_t errlen)
{
	char path[PATH_MAX], lock[PATH_MAX], rfp[SHARE_FP_STR], hex[65];
	char line[SEEN_LINE_MAX], t0[64], t1[64];
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
	gk_hex_encode(sha, 32, hex);
	n = snprintf(line, sizeof(line), "v1 %" PRId64 " %s %s\n", created,
	    hex, fp);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    (r = gk_file_write_atomic(path, line, (size_t)n, 0600)) != 0) {
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
