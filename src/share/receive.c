/*
 * receive.c - share receive: the manifest fetched, decrypted and its
 * signature checked against a pinned sender key; then every file
 * downloaded, decrypted, decompressed and hashed by parallel workers into
 * a temporary name under its directory, renamed into place only when its
 * SHA-256 matches. Paths never leave the output directory: "..",
 * absolute names and symlinked directories are refused.
 */
#include "share/share.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "share/share_int.h"

struct rjob {
	const share_receive_opts *o;
	share_dest *d;
	share_manifest *m;
	uint8_t *have;		/* 1: present, to verify; 2: verified, skip */
	int root;
	_Atomic size_t next;
	_Atomic int stop;
	pthread_mutex_t mu;
	char err[512];
	share_progress *prog;
};

/*
 * path as a message names it: a path may be 4 KB, and the reason after it
 * must fit the one line too. Cut to its first 200 bytes, then "...".
 */
#define SHOWN_MAX 200
static int
shown_len(const char *path)
{
	size_t n = strlen(path);

	return (int)(n > SHOWN_MAX ? SHOWN_MAX : n);
}
#define SHOWN(path) shown_len(path), (path), \
	(strlen(path) > SHOWN_MAX ? "..." : "")

static void
rfail(struct rjob *j, const char *path, const char *why)
{
	pthread_mutex_lock(&j->mu);
	if (j->err[0] == '\0')
		snprintf(j->err, sizeof(j->err), "%.*s%s: %s", SHOWN(path),
		    why);
	pthread_mutex_unlock(&j->mu);
	atomic_store(&j->stop, 1);
}

/*
 * Opens the directory that holds path under root (creating missing
 * directories when create), never following a symlink. The last
 * component goes to *name. -1 with errno: ELOOP/ENOTDIR for a symlink or
 * a file in the way, ENOENT for a missing directory when !create.
 */
static int
open_parent(int root, const char *path, int create, const char **name)
{
	char comp[256];
	const char *p = path, *slash;
	int fd = dup(root), nfd;
	size_t n;

	if (fd < 0)
		return -1;
	while ((slash = strchr(p, '/')) != NULL) {
		n = (size_t)(slash - p);
		if (n == 0 || n >= sizeof(comp)) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
				close(fd);
				return -1;
			}
			nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		}
		close(fd);
		if (nfd < 0)
			return -1;
		fd = nfd;
		p = slash + 1;
	}
	*name = p;
	return fd;
}

/*
 * 1 if the regular file name under dirfd holds exactly f's plaintext
 * (size and SHA-256), 0 if not or if it cannot be read.
 */
static int
same_content(int dirfd, const char *name, const share_file *f, uint8_t *buf,
    size_t cap)
{
	EVP_MD_CTX *md = NULL;
	struct stat st;
	uint8_t d[32];
	uint64_t total = 0;
	ssize_t n;
	int fd, same = 0;

	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != f->size ||
	    (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		n = read(fd, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > f->size || EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
	}
	if (total == f->size && EVP_DigestFinal_ex(md, d, NULL) == 1 &&
	    CRYPTO_memcmp(d, f->sha256, 32) == 0)
		same = 1;
out:
	EVP_MD_CTX_free(md);
	close(fd);
	return same;
}

/* Hashes the files preflight found present, on the workers. */
static void *
verify_worker(void *arg)
{
	struct rjob *j = arg;
	const char *name;
	uint8_t *buf = malloc(1u << 20);
	size_t i;
	int fd;

	if (buf == NULL) {
		rfail(j, "receive", "out of memory");
		return NULL;
	}
	while (!atomic_load(&j->stop)) {
		i = atomic_fetch_add(&j->next, 1);
		if (i >= j->m->n)
			break;
		if (j->have[i] != 1)
			continue;
		if ((fd = open_parent(j->root, j->m->files[i].path, 0,
		    &name)) >= 0 && same_content(fd, name, &j->m->files[i], buf,
		    1u << 20))
			j->have[i] = 2;
		else
			rfail(j, j->m->files[i].path, "exists and differs from "
			    "the share (use --force to overwrite)");
		if (fd >= 0)
			close(fd);
	}
	free(buf);
	return NULL;
}

/*
 * Refuses, before anything is written, what receive must not do. A file
 * already there (a receive that failed part-way, run again) is kept when
 * its size and SHA-256 are the manifest's, and is a conflict otherwise
 * unless --force.
 */
static int
preflight(struct rjob *j, char *err, size_t errlen)
{
	const char *name;
	struct stat st;
	size_t i, npresent = 0;
	int fd;

	for (i = 0; i < j->m->n; i++) {
		const char *path = j->m->files[i].path;

		fd = open_parent(j->root, path, 0, &name);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;	/* created later */
			snprintf(err, errlen, "%.*s%s: refused: %s",
			    SHOWN(path), errno == ELOOP || errno == ENOTDIR ?
			    "a parent is a symlink or not a directory" :
			    strerror(errno));
			return GK_ERR_DENIED;
		}
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode)) {
				snprintf(err, errlen, "%.*s%s: refused: a "
				    "directory is in the way", SHOWN(path));
				close(fd);
				return GK_ERR_EXISTS;
			}
			if (!j->o->force && (!S_ISREG(st.st_mode) ||
			    (uint64_t)st.st_size != j->m->files[i].size)) {
				snprintf(err, errlen, "%.*s%s: exists (use "
				    "--force to overwrite)", SHOWN(path));
				close(fd);
				return GK_ERR_EXISTS;
			}
			if (!j->o->force) {
				j->have[i] = 1;
				npresent++;
			}
		}
		close(fd);
	}
	if (npresent == 0)
		return 0;
	atomic_store(&j->next, 0);
	if (share_run_workers(j->o->workers, verify_worker, j) != 0)
		rfail(j, "receive", "cannot start a worker");
	atomic_store(&j->next, 0);
	if (j->err[0] != '\0') {
		snprintf(err, errlen, "%s", j->err);
		return GK_ERR_EXISTS;
	}
	return 0;
}

struct out {
	int fd;
	EVP_MD_CTX *md;
	ZSTD_DCtx *zd;
	uint8_t *zbuf;
	size_t zcap, zlast;
	uint64_t size, max;
	struct rjob *j;
	const char *why;
};

static int
out_bytes(struct out *o, const uint8_t *p, size_t len)
{
	ssize_t n;

	if (len > o->max - o->size) {
		o->why = "larger than the manifest says";
		return GK_ERR_INTEGRITY;
	}
	if (EVP_DigestUpdate(o->md, p, len) != 1)
		return GK_ERR_INTERNAL;
	o->size += len;
	share_progress_add(o->j->prog, 0, len);
	while (len > 0) {
		n = write(o->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			o->why = strerror(errno);
			return GK_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
out_sink(void *arg, const uint8_t *p, size_t len)
{
	struct out *o = arg;
	ZSTD_inBuffer zi = { p, len, 0 };
	int r;

	if (atomic_load(&o->j->stop)) {
		o->why = "stopped";
		return GK_ERR_INTERNAL;
	}
	if (o->zd == NULL)
		return out_bytes(o, p, len);
	while (zi.pos < zi.size) {
		ZSTD_outBuffer zo = { o->zbuf, o->zcap, 0 };

		o->zlast = ZSTD_decompressStream(o->zd, &zo, &zi);
		if (ZSTD_isError(o->zlast)) {
			o->why = "decompression failed";
			return GK_ERR_INTEGRITY;
		}
		if ((r = out_bytes(o, o->zbuf, zo.pos)) != 0)
			return r;
	}
	return 0;
}

static int
recv_one(struct rjob *j, const share_file *f, ZSTD_DCtx *zd, uint8_t *zbuf,
    size_t zcap, age_error *ae, const char **why)
{
	age_keyring kr;
	struct out o;
	share_rd *rd = NULL;
	const char *name;
	char key[192], tmp[64];
	uint8_t d[32], rnd[8];
	struct timespec ts[2];
	int pfd = -1, r;

	memset(&o, 0, sizeof(o));
	o.fd = -1;
	tmp[0] = '\0';
	*why = "internal error";
	snprintf(key, sizeof(key), "shares/%s/%s", j->m->id, f->object);
	if ((r = share_dest_get(j->d, key, &rd)) != 0) {
		*why = r == GK_ERR_NOT_FOUND ? "object missing at the "
		    "destination" : share_dest_error();
		goto out;
	}
	if ((pfd = open_parent(j->root, f->path, 1, &name)) < 0) {
		*why = errno == ELOOP || errno == ENOTDIR ? "refused: a parent "
		    "is a symlink or not a directory" : strerror(errno);
		r = GK_ERR_DENIED;
		goto out;
	}
	if ((r = gk_random(rnd, sizeof(rnd))) != 0)
		goto out;
	memcpy(tmp, ".gk-part-", 9);
	gk_hex_encode(rnd, sizeof(rnd), tmp + 9);
	if ((o.fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		*why = strerror(errno);
		tmp[0] = '\0';
		r = GK_ERR_IO;
		goto out;
	}
	o.md = EVP_MD_CTX_new();
	if (o.md == NULL || EVP_DigestInit_ex(o.md, EVP_sha256(), NULL) != 1)
		goto out;
	o.j = j;
	o.max = f->size;
	if (f->zstd) {
		ZSTD_DCtx_reset(zd, ZSTD_reset_session_only);
		o.zd = zd;
		o.zbuf = zbuf;
		o.zcap = zcap;
		o.zlast = 1;
	}
	memset(&kr, 0, sizeof(kr));
	kr.ids = j->o->ids;
	kr.n_ids = j->o->n_ids;
	kr.armor = 2;
	if ((r = age_decrypt(&kr, share_rd_read, rd, out_sink, &o,
	    ae)) != 0) {
		/* ae is the caller's: *why outlives this frame */
		*why = o.why ? o.why : ae->cls == AGE_E_IO ? share_dest_error() :
		    ae->msg;
		goto out;
	}
	r = GK_ERR_INTEGRITY;
	if (f->zstd && o.zlast != 0) {
		*why = "compressed data truncated";
		goto out;
	}
	if (EVP_DigestFinal_ex(o.md, d, NULL) != 1)
		goto out;
	if (o.size != f->size || CRYPTO_memcmp(d, f->sha256, 32) != 0) {
		*why = "SHA-256 mismatch (not the file the sender signed)";
		goto out;
	}
	ts[0].tv_sec = f->mtime;
	ts[0].tv_nsec = f->mtime_ns;
	ts[1] = ts[0];
	if (fchmod(o.fd, f->mode & 0777) != 0 || futimens(o.fd, ts) != 0 ||
	    close(o.fd) != 0) {
		o.fd = -1;
		*why = strerror(errno);
		r = GK_ERR_IO;
		goto out;
	}
	o.fd = -1;
	if ((j->o->force ? renameat(pfd, tmp, pfd, name) :
	    renameat2(pfd, tmp, pfd, name, RENAME_NOREPLACE)) != 0) {
		*why = errno == EEXIST ? "exists (use --force to overwrite)" :
		    strerror(errno);
		r = GK_ERR_IO;
		goto out;
	}
	tmp[0] = '\0';
	r = 0;
out:
	if (o.fd >= 0)
		close(o.fd);
	if (tmp[0] != '\0' && pfd >= 0)
		unlinkat(pfd, tmp, 0);
	if (pfd >= 0)
		close(pfd);
	EVP_MD_CTX_free(o.md);
	share_rd_free(rd);
	return r;
}

static void *
rworker(void *arg)
{
	struct rjob *j = arg;
	ZSTD_DCtx *zd = ZSTD_createDCtx();
	size_t zcap = ZSTD_DStreamOutSize(), i;
	uint8_t *zbuf = malloc(zcap);
	const char *why;
	age_error ae;

	if (zd == NULL || zbuf == NULL) {
		rfail(j, "receive", "out of memory");
		goto out;
	}
	/* refuse zstd frames that want more than 128 MiB of window */
	ZSTD_DCtx_setParameter(zd, ZSTD_d_windowLogMax, 27);
	while (!atomic_load(&j->stop)) {
		i = atomic_fetch_add(&j->next, 1);
		if (i >= j->m->n)
			break;
		if (j->have[i] == 2)
			continue;	/* already there, verified */
		if (recv_one(j, &j->m->files[i], zd, zbuf, zcap, &ae,
		    &why) != 0) {
			if (!atomic_load(&j->stop))
				rfail(j, j->m->files[i].path, why);
			break;
		}
		share_progress_add(j->prog, 1, 0);
	}
out:
	ZSTD_freeDCtx(zd);
	free(zbuf);
	return NULL;
}

struct msink {
	gk_buf *b;
	int too_large;
};

static int
buf_sink(void *arg, const uint8_t *p, size_t len)
{
	struct msink *ms = arg;
	int r = gk_buf_append(ms->b, p, len);

	if (r == GK_ERR_TOO_LARGE)
		ms->too_large = 1;
	return r;
}

static void
list(const share_manifest *m, const char *fp)
{
	char t[64];
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < m->n; i++)
		total += m->files[i].size;
	gk_time_iso(m->created, t, sizeof(t));
	/* free text from the sender, printed on the receiver's terminal */
	share_text_safe(m->sender);
	share_text_safe(m->organisation);
	printf("share:        %s\nsender:       %s (%s)\norganisation: %s\n"
	    "created:      %s\nfiles:        %zu, %llu bytes\n", m->id,
	    m->sender, fp, m->organisation, t, m->n,
	    (unsigned long long)total);
	for (i = 0; i < m->n; i++) {
		gk_time_iso(m->files[i].mtime, t, sizeof(t));
		printf("%04o %12llu  %s  %s\n", m->files[i].mode,
		    (unsigned long long)m->files[i].size, t, m->files[i].path);
	}
}

int
share_receive(const share_receive_opts *o, char *err, size_t errlen)
{
	struct rjob j;
	share_manifest m;
	char dest[1024], id[72], key[192], fp[SHARE_FP_STR], hexfp[8];
	gk_buf env;
	share_rd *rd = NULL;
	age_keyring kr;
	age_error ae;
	struct msink ms;
	uint8_t pub[32];
	gk_slice body;
	uint64_t total = 0;
	size_t i, nskip;
	int r, pinned = 0;

	memset(&j, 0, sizeof(j));
	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&j.mu, NULL);
	j.root = -1;
	j.o = o;
	j.m = &m;
	(void)hexfp;
	gk_buf_init(&env, SHARE_ENVELOPE_MAX + 4096);
	if (share_url_split(o->share, dest, sizeof(dest), id, sizeof(id)) != 0) {
		snprintf(err, errlen, "SHARE must be DEST/shares/SHARE-ID "
		    "(as share send prints it)");
		r = GK_ERR_INVALID;
		goto out;
	}
	if ((r = share_dest_open(dest, &j.d, err, errlen)) != 0)
		goto out;
	snprintf(key, sizeof(key), "shares/%s/manifest.age", id);
	if ((r = share_dest_get(j.d, key, &rd)) != 0) {
		if (r == GK_ERR_NOT_FOUND)
			snprintf(err, errlen, "share %s not found at %s (no "
			    "manifest)", id, share_dest_name(j.d));
		else
			snprintf(err, errlen, "destination %s %s: %s",
			    share_dest_name(j.d), r == GK_ERR_DENIED ?
			    "refused access" : "unreachable", share_dest_error());
		goto out;
	}
	memset(&kr, 0, sizeof(kr));
	kr.ids = o->ids;
	kr.n_ids = o->n_ids;
	kr.armor = 2;
	ms.b = &env;
	ms.too_large = 0;
	if ((r = age_decrypt(&kr, share_rd_read, rd, buf_sink, &ms,
	    &ae)) != 0) {
		if (ms.too_large)
			snprintf(err, errlen, "manifest: larger than %u MiB, "
			    "the most a share's manifest may be",
			    SHARE_ENVELOPE_MAX >> 20);
		else
			snprintf(err, errlen, "manifest: %s", ae.cls ==
			    AGE_E_IO ? share_dest_error() : ae.msg);
		goto out;
	}
	if ((r = share_envelope_open_inplace("manifest", env.data, env.len,
	    pub, &body)) != 0) {
		snprintf(err, errlen, "manifest signature mismatch (tampered "
		    "or not a manifest)");
		r = GK_ERR_AUTH;
		goto out;
	}
	share_fingerprint(pub, fp);
	for (i = 0; i < o->n_pins; i++)
		if (strcmp(o->pins[i], fp) == 0)
			pinned = 1;
	if (!pinned && !o->trust) {
		snprintf(err, errlen, "sender key %s is not pinned; check it "
		    "with the sender, then pass --sender %s", fp, fp);
		r = GK_ERR_DENIED;
		goto out;
	}
	if ((r = share_manifest_parse(body, &m, err, errlen)) != 0)
		goto out;
	if (strcmp(m.id, id) != 0) {
		snprintf(err, errlen, "manifest is for share %s, not %s", m.id,
		    id);
		r = GK_ERR_INTEGRITY;
		goto out;
	}
	if (!pinned)
		fprintf(stderr, "receive: trusting sender key %s\n", fp);
	/* an older manifest of this share replayed at the destination;
	 * --list checks, a receive also records this one */
	if (o->state_dir == NULL) {
		snprintf(err, errlen, "no receiver state directory");
		r = GK_ERR_INVALID;
		goto out;
	}
	if ((r = share_seen_check(o->state_dir, m.id, m.created, body, fp,
	    !o->list_only, err, errlen)) != 0)
		goto out;
	/* the manifest is parsed: its text is not needed any more */
	gk_buf_release(&env);
	body = GK_SLICE_NULL;
	if (o->list_only) {
		list(&m, fp);
		r = 0;
		goto out;
	}
	if (gk_mkdirs(o->out_dir, 0755) != 0 ||
	    (j.root = open(o->out_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", o->out_dir, strerror(errno));
		r = GK_ERR_IO;
		goto out;
	}
	if ((j.have = calloc(m.n + 1, 1)) == NULL) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	if ((r = preflight(&j, err, errlen)) != 0)
		goto out;
	for (i = 0, nskip = 0; i < m.n; i++) {
		if (j.have[i] == 2)
			nskip++;
		else
			total += m.files[i].size;
	}
	if (nskip > 0)
		fprintf(stderr, "receive: %zu files already present and "
		    "verified (size and SHA-256), not fetched again\n", nskip);
	if ((r = share_progress_start("receive", m.n - nskip, total,
	    o->progress, &j.prog)) != 0)
		goto out;
	if (share_run_workers(o->workers, rworker, &j) != 0)
		rfail(&j, "receive", "cannot start a worker");
	share_progress_end(j.prog, j.err[0] == '\0');
	j.prog = NULL;
	if (j.err[0] != '\0') {
		snprintf(err, errlen, "%s", j.err);
		r = GK_ERR_INTEGRITY;
		goto out;
	}
	r = 0;
out:
	share_progress_end(j.prog, 0);
	share_rd_free(rd);
	if (j.root >= 0)
		close(j.root);
	free(j.have);
	share_manifest_release(&m);
	share_dest_free(j.d);
	gk_buf_release(&env);
	pthread_mutex_destroy(&j.mu);
	return r;
}
