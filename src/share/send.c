/*
 * send.c - share send: every regular file of a tree compressed (zstd,
 * unless already compressed), encrypted to the recipients (age) and
 * uploaded by parallel workers, then the signed, encrypted manifest.
 * A journal of finished files lets an interrupted send resume.
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
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "share/share_int.h"

#define READ_BUF (1024u * 1024)
#define ZSTD_LEVEL 3
#define BIG_FILE (16u * 1024 * 1024)
#define ZSTD_MT_WORKERS 2

int
share_is_precompressed(const char *path)
{
	static const char *const ext[] = { "gz", "tgz", "zst", "xz", "txz",
	    "bz2", "lz4", "lz", "lzma", "br", "zip", "7z", "rar", "jar",
	    "apk", "jpg", "jpeg", "png", "gif", "webp", "heic", "avif",
	    "mp3", "mp4", "m4a", "m4v", "mkv", "mov", "webm", "ogg", "opus",
	    "flac", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub",
	    "age", "gpg", "pgp" };
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	size_t i;

	if (dot == NULL || (slash != NULL && dot < slash))
		return 0;
	for (i = 0; i < GK_ARRAY_LEN(ext); i++)
		if (strcasecmp(dot + 1, ext[i]) == 0)
			return 1;
	return 0;
}

struct job {
	share_send_opts *o;
	share_dest *d;
	struct walk *w;
	uint8_t (*sha)[32];
	char (*obj)[64];
	int *zstd;
	uint8_t *done;		/* skipped by the resume */
	_Atomic size_t next;
	_Atomic int stop;
	pthread_mutex_t mu;	/* journal and first error */
	FILE *journal;
	char err[512];
	share_progress *prog;
	int dirfd;
};

static void
job_fail(struct job *j, const char *fmt, const char *a, const char *b)
{
	pthread_mutex_lock(&j->mu);
	if (j->err[0] == '\0')
		snprintf(j->err, sizeof(j->err), "%s: %s", a, b);
	pthread_mutex_unlock(&j->mu);
	atomic_store(&j->stop, 1);
	(void)fmt;
}

static int
wr_sink(void *arg, const uint8_t *p, size_t len)
{
	return share_wr_write(arg, p, len);
}

/* One file: read, hash, compress, encrypt, upload. */
static int
send_one(struct job *j, size_t i, uint8_t *in, uint8_t *zout, size_t zcap,
    ZSTD_CCtx *zc, const char **why)
{
	struct walk_ent *e = &j->w->ents[i];
	share_wr *wr = NULL;
	age_enc *enc = NULL;
	EVP_MD_CTX *md = NULL;
	struct stat st;
	char key[192];
	uint64_t total = 0;
	ssize_t n;
	int fd, r = GK_ERR_INTERNAL, zs = j->zstd[i];
	size_t rem;

	*why = "internal error";
	if ((fd = openat(j->dirfd, e->path, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*why = "cannot open the file (changed during the send?)";
		r = GK_ERR_IO;
		goto out;
	}
	/* what the manifest records is what is read now */
	e->size = (uint64_t)st.st_size;
	e->mode = st.st_mode & 0777;
	e->mtime = st.st_mtim.tv_sec;
	e->mtime_ns = st.st_mtim.tv_nsec;
	snprintf(key, sizeof(key), "shares/%s/%s", j->o->share_id, j->obj[i]);
	if ((r = share_dest_put(j->d, key, &wr)) != 0) {
		*why = share_dest_error();
		goto out;
	}
	if ((r = age_enc_new(j->o->pks, j->o->n_pks, NULL, wr_sink, wr,
	    &enc)) != 0) {
		*why = share_dest_error();
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	if (zs) {
		ZSTD_CCtx_reset(zc, ZSTD_reset_session_only);
		/* a big file compresses on zstd's own threads meanwhile this
		 * one hashes, encrypts and uploads (if libzstd has them) */
		(void)ZSTD_CCtx_setParameter(zc, ZSTD_c_nbWorkers,
		    e->size >= BIG_FILE ? ZSTD_MT_WORKERS : 0);
		/* small jobs keep zstd's buffers to a few MiB */
		(void)ZSTD_CCtx_setParameter(zc, ZSTD_c_jobSize, 2u << 20);
	}
	for (;;) {
		n = read(fd, in, READ_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = strerror(errno);
			r = GK_ERR_IO;
			goto out;
		}
		if (EVP_DigestUpdate(md, in, (size_t)n) != 1)
			goto out;
		total += (uint64_t)n;
		if (!zs) {
			if (n > 0 && (r = age_enc_write(enc, in, (size_t)n)) != 0) {
				*why = share_dest_error();
				goto out;
			}
		} else {
			ZSTD_inBuffer zi = { in, (size_t)n, 0 };
			ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end :
			    ZSTD_e_continue;

			do {
				ZSTD_outBuffer zo = { zout, zcap, 0 };
				rem = ZSTD_compressStream2(zc, &zo, &zi, mode);
				if (ZSTD_isError(rem)) {
					*why = "compression failed";
					r = GK_ERR_INTERNAL;
					goto out;
				}
				if (zo.pos > 0 && (r = age_enc_write(enc, zout,
				    zo.pos)) != 0) {
					*why = share_dest_error();
					goto out;
				}
			} while (mode == ZSTD_e_end ? rem != 0 :
			    zi.pos < zi.size);
		}
		share_progress_add(j->prog, 0, (uint64_t)n);
		if (n == 0)
			break;
		if (atomic_load(&j->stop)) {
			r = GK_ERR_INTERNAL;
			*why = "stopped";
			goto out;
		}
	}
	e->size = total;
	if (EVP_DigestFinal_ex(md, j->sha[i], NULL) != 1)
		goto out;
	if ((r = age_enc_finish(enc)) != 0 || (r = share_wr_commit(wr)) != 0) {
		*why = share_dest_error();
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(md);
	age_enc_free(enc);
	share_wr_free(wr);
	return r;
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	uint8_t *in = malloc(READ_BUF);
	size_t zcap = ZSTD_CStreamOutSize(), i;
	uint8_t *zout = malloc(zcap);
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	const char *why;
	char hex[65];

	if (in == NULL || zout == NULL || zc == NULL) {
		job_fail(j, "", "send", "out of memory");
		goto out;
	}
	ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, ZSTD_LEVEL);
	while (!atomic_load(&j->stop)) {
		i = atomic_fetch_add(&j->next, 1);
		if (i >= j->w->n)
			break;
		if (j->done[i])
			continue;
		if (send_one(j, i, in, zout, zcap, zc, &why) != 0) {
			if (!atomic_load(&j->stop))
				job_fail(j, "", j->w->ents[i].path, why);
			break;
		}
		gk_hex_encode(j->sha[i], 32, hex);
		pthread_mutex_lock(&j->mu);
		if (j->journal != NULL) {
			fprintf(j->journal, "%s %llu %lld %lld %d %s\n", hex,
			    (unsigned long long)j->w->ents[i].size,
			    (long long)j->w->ents[i].mtime,
			    (long long)j->w->ents[i].mtime_ns, j->zstd[i],
			    j->w->ents[i].path);
			fflush(j->journal);
		}
		pthread_mutex_unlock(&j->mu);
		share_progress_add(j->prog, 1, 0);
	}
out:
	ZSTD_freeCCtx(zc);
	free(zout);
	free(in);
	return NULL;
}

static int
new_id(char *out, size_t outlen)
{
	uint8_t rnd[6];
	char hex[13];
	struct tm tm;
	time_t now = time(NULL);
	int r;

	if ((r = gk_random(rnd, sizeof(rnd))) != 0)
		return r;
	gk_hex_encode(rnd, sizeof(rnd), hex);
	gmtime_r(&now, &tm);
	snprintf(out, outlen, "%04d%02d%02d-%02d%02d%02d-%s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, hex);
	return 0;
}

/* Marks files the journal says were uploaded whole and are unchanged. */
static void
load_journal(struct job *j, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[PATH_MAX + 256], hex[65], rel[PATH_MAX];
	unsigned long long size;
	long long mt, mtn;
	int zs;
	size_t lo, hi, mid;
	uint64_t osize;
	char key[192];

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t l = strlen(line);
		int c;

		if (l == 0 || line[l - 1] != '\n')
			break;	/* a torn last line */
		line[l - 1] = '\0';
		if (sscanf(line, "%64s %llu %lld %lld %d %n", hex, &size, &mt,
		    &mtn, &zs, &c) != 5)
			continue;
		snprintf(rel, sizeof(rel), "%s", line + c);
		lo = 0;
		hi = j->w->n;
		while (lo < hi) {
			mid = (lo + hi) / 2;
			if (strcmp(j->w->ents[mid].path, rel) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo >= j->w->n || strcmp(j->w->ents[lo].path, rel) != 0)
			continue;
		if (j->w->ents[lo].size != size || j->w->ents[lo].mtime != mt ||
		    j->w->ents[lo].mtime_ns != mtn ||
		    gk_hex_decode(gk_slice_str(hex), j->sha[lo], 32) != 0)
			continue;
		snprintf(key, sizeof(key), "shares/%s/%s", j->o->share_id,
		    j->obj[lo]);
		if (share_dest_stat(j->d, key, &osize) != 0)
			continue;
		j->done[lo] = 1;
		j->zstd[lo] = zs != 0;
	}
	fclose(f);
}

/*
 * An upper bound of the manifest's size (share_manifest_json): per file
 * the fixed text, the longest numbers and the path with its quotes
 * escaped (no other byte of a safe path is); the free text escaped at
 * worst ("\\u00XX"). Checked before anything is uploaded.
 */
static uint64_t
manifest_bound(const struct walk *w, const share_send_opts *o)
{
	uint64_t total = 256;
	const char *p;
	size_t i;

	total += 6 * (uint64_t)(strlen(o->sender ? o->sender : "") +
	    strlen(o->organisation ? o->organisation : ""));
	for (i = 0; i < w->n; i++) {
		/* keys and punctuation 91, sha256 64, object 42, size and
		 * mtime 20 digits each, mode 4, mtime_ns 9 */
		total += 91 + 64 + 42 + 20 + 20 + 4 + 9;
		for (p = w->ents[i].path; *p != '\0'; p++)
			total += *p == '"' ? 2 : 1;
	}
	return total;
}

static int
put_manifest(struct job *j, char *err, size_t errlen)
{
	share_send_opts *o = j->o;
	share_manifest m;
	gk_buf js, env;
	share_wr *wr = NULL;
	age_enc *enc = NULL;
	char key[192];
	size_t i;
	int r;

	memset(&m, 0, sizeof(m));
	gk_buf_init(&js, SHARE_ENVELOPE_MAX);
	gk_buf_init(&env, SHARE_ENVELOPE_MAX + 4096);
	m.id = o->share_id;
	m.sender = (char *)(o->sender ? o->sender : "");
	m.organisation = (char *)(o->organisation ? o->organisation : "");
	m.created = gk_now_s();
	m.n = j->w->n;
	if (m.n > 0 && (m.files = calloc(m.n, sizeof(*m.files))) == NULL) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < m.n; i++) {
		m.files[i].path = j->w->ents[i].path;
		m.files[i].size = j->w->ents[i].size;
		m.files[i].mode = j->w->ents[i].mode;
		m.files[i].mtime = j->w->ents[i].mtime;
		m.files[i].mtime_ns = j->w->ents[i].mtime_ns;
		memcpy(m.files[i].sha256, j->sha[i], 32);
		memcpy(m.files[i].object, j->obj[i], sizeof(m.files[i].object));
		m.files[i].zstd = j->zstd[i];
	}
	if ((r = share_manifest_json(&m, &js)) != 0 ||
	    (r = share_envelope_sign("manifest", o->signer,
	    gk_slice_of(js.data, js.len), &env)) != 0) {
		snprintf(err, errlen, "cannot build the manifest (%s)",
		    gk_err_str(r));
		goto out;
	}
	snprintf(key, sizeof(key), "shares/%s/manifest.age", o->share_id);
	if ((r = share_dest_put(j->d, key, &wr)) != 0 ||
	    (r = age_enc_new(o->pks, o->n_pks, NULL, wr_sink, wr, &enc)) != 0 ||
	    (r = age_enc_write(enc, env.data, env.len)) != 0 ||
	    (r = age_enc_finish(enc)) != 0 || (r = share_wr_commit(wr)) != 0) {
		snprintf(err, errlen, "manifest: %s: %s", share_dest_name(j->d),
		    share_dest_error());
		goto out;
	}
out:
	age_enc_free(enc);
	share_wr_free(wr);
	free(m.files);
	gk_buf_release(&js);
	gk_buf_release(&env);
	return r;
}

int
share_send(share_send_opts *o, char *err, size_t errlen)
{
	struct job j;
	struct walk w;
	char jpath[PATH_MAX] = "", key[192];
	uint64_t osize;
	size_t i;
	int r;

	memset(&j, 0, sizeof(j));
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&j.mu, NULL);
	j.dirfd = -1;
	j.o = o;
	j.w = &w;
	if (o->n_pks == 0 || o->signer == NULL) {
		snprintf(err, errlen, "no recipient or no signing identity");
		r = GK_ERR_INVALID;
		goto out;
	}
	if ((r = share_dest_open(o->dest, &j.d, err, errlen)) != 0)
		goto out;
	if (o->resume_id != NULL) {
		if (!share_id_ok(o->resume_id)) {
			snprintf(err, errlen, "--resume: not a share id");
			r = GK_ERR_INVALID;
			goto out;
		}
		snprintf(o->share_id, sizeof(o->share_id), "%s", o->resume_id);
	} else if ((r = new_id(o->share_id, sizeof(o->share_id))) != 0)
		goto out;
	/* the destination answers before any work is done */
	snprintf(key, sizeof(key), "shares/%s/manifest.age", o->share_id);
	r = share_dest_stat(j.d, key, &osize);
	if (r == 0) {
		snprintf(err, errlen, "share %s is already complete at %s",
		    o->share_id, share_dest_name(j.d));
		r = GK_ERR_EXISTS;
		goto out;
	}
	if (r != GK_ERR_NOT_FOUND) {
		snprintf(err, errlen, "destination %s %s: %s",
		    share_dest_name(j.d), r == GK_ERR_DENIED ? "refused access" :
		    "unreachable", share_dest_error());
		goto out;
	}
	/*
	 * A resume continues a send this state directory has a journal of;
	 * any other id (a typo, another machine's send) would silently
	 * start a new share under an id the user did not mean.
	 */
	if (o->resume_id != NULL) {
		struct stat st;

		if (o->state_dir == NULL ||
		    (size_t)snprintf(jpath, sizeof(jpath), "%s/%s.journal",
		    o->state_dir, o->share_id) >= sizeof(jpath) ||
		    stat(jpath, &st) != 0 || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "--resume %s: no send of this "
			    "share in progress (no journal in %s)", o->share_id,
			    o->state_dir ? o->state_dir : "a state directory");
			r = GK_ERR_NOT_FOUND;
			goto out;
		}
		jpath[0] = '\0';
	}
	if ((j.dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", o->dir, strerror(errno));
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = walk_tree(o->dir, stderr, &w, err, errlen)) != 0)
		goto out;
	if (manifest_bound(&w, o) > SHARE_ENVELOPE_MAX) {
		snprintf(err, errlen, "%s: %zu files need a manifest larger "
		    "than the %u MiB one share may have (some 250,000 files); "
		    "send the directory in parts", o->dir, w.n,
		    SHARE_ENVELOPE_MAX >> 20);
		r = GK_ERR_TOO_LARGE;
		goto out;
	}
	r = GK_ERR_NOMEM;
	if ((j.sha = calloc(w.n + 1, sizeof(*j.sha))) == NULL ||
	    (j.obj = calloc(w.n + 1, sizeof(*j.obj))) == NULL ||
	    (j.zstd = calloc(w.n + 1, sizeof(*j.zstd))) == NULL ||
	    (j.done = calloc(w.n + 1, 1)) == NULL)
		goto out;
	for (i = 0; i < w.n; i++) {
		share_object_name(o->share_id, w.ents[i].path, j.obj[i]);
		j.zstd[i] = !share_is_precompressed(w.ents[i].path);
	}
	if (o->state_dir != NULL) {
		if (gk_mkdirs(o->state_dir, 0700) != 0 ||
		    (size_t)snprintf(jpath, sizeof(jpath), "%s/%s.journal",
		    o->state_dir, o->share_id) >= sizeof(jpath)) {
			snprintf(err, errlen, "cannot create the state "
			    "directory %s", o->state_dir);
			r = GK_ERR_IO;
			goto out;
		}
		if (o->resume_id != NULL)
			load_journal(&j, jpath);
		if ((j.journal = fopen(jpath, "a")) == NULL) {
			snprintf(err, errlen, "cannot write %s: %s", jpath,
			    strerror(errno));
			r = GK_ERR_IO;
			goto out;
		}
	}
	{
		uint64_t nf = 0, nb = 0;
		for (i = 0; i < w.n; i++)
			if (!j.done[i]) {
				nf++;
				nb += w.ents[i].size;
			}
		if (o->resume_id != NULL)
			fprintf(stderr, "resume %s: %zu files already sent, "
			    "%llu to send\n", o->share_id, w.n - (size_t)nf,
			    (unsigned long long)nf);
		if ((r = share_progress_start("send", nf, nb, o->progress,
		    &j.prog)) != 0)
			goto out;
	}
	if (share_run_workers(o->workers, worker, &j) != 0)
		job_fail(&j, "", "send", "cannot start a worker");
	share_progress_end(j.prog, j.err[0] == '\0');
	j.prog = NULL;
	if (j.err[0] != '\0') {
		snprintf(err, errlen, "%s (destination %s; continue with "
		    "--resume %s)", j.err, share_dest_name(j.d), o->share_id);
		r = GK_ERR_IO;
		goto out;
	}
	if ((r = put_manifest(&j, err, errlen)) != 0)
		goto out;
	if ((r = share_url_join(o->dest, o->share_id, o->share_url,
	    sizeof(o->share_url))) != 0) {
		snprintf(err, errlen, "share URL too long");
		goto out;
	}
	if (w.skipped > 0)
		fprintf(stderr, "send: %zu symlinks or special files skipped\n",
		    w.skipped);
	if (jpath[0] != '\0') {
		fclose(j.journal);
		j.journal = NULL;
		unlink(jpath);
	}
	r = 0;
out:
	share_progress_end(j.prog, 0);
	if (j.journal != NULL)
		fclose(j.journal);
	if (j.dirfd >= 0)
		close(j.dirfd);
	free(j.sha);
	free(j.obj);
	free(j.zstd);
	free(j.done);
	walk_release(&w);
	share_dest_free(j.d);
	pthread_mutex_destroy(&j.mu);
	return r;
}
