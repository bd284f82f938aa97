/*
 * walk.c - listing the regular files of a directory tree for a send
 * (symlinks, special files and unsafe names reported and skipped), and
 * the helpers send and receive share: object names, SHARE URLs.
 */
#include "share/share.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "share/share_int.h"

static int
add(struct walk *w, const char *rel, const struct stat *st)
{
	struct walk_ent *nv;

	if (w->n == w->alloc) {
		size_t na = w->alloc ? w->alloc * 2 : 256;
		if ((nv = realloc(w->ents, na * sizeof(*nv))) == NULL)
			return GK_ERR_NOMEM;
		w->ents = nv;
		w->alloc = na;
	}
	nv = &w->ents[w->n];
	memset(nv, 0, sizeof(*nv));
	if ((nv->path = strdup(rel)) == NULL)
		return GK_ERR_NOMEM;
	nv->size = (uint64_t)st->st_size;
	nv->mode = st->st_mode & 0777;
	nv->mtime = st->st_mtim.tv_sec;
	nv->mtime_ns = st->st_mtim.tv_nsec;
	w->n++;
	w->bytes += nv->size;
	return 0;
}

void
share_text_safe(char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s), i = 0, o = 0, k;

	while (i < n) {
		k = gk_utf8_seq(p + i, n - i);
		if (k == 0 || gk_utf8_unsafe(p + i, k)) {
			s[o++] = '?';
			i += k == 0 ? 1 : k;
		} else {
			memmove(s + o, p + i, k);
			o += k;
			i += k;
		}
	}
	s[o] = '\0';
}

/* Writes name to report as share_text_safe shows it. */
static void
report_name(FILE *report, const char *name)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", name);
	share_text_safe(buf);
	fputs(buf, report);
}

static int
walk_dir(struct walk *w, int dfd, char *rel, size_t rl, FILE *report,
    char *err, size_t errlen)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	int r = 0, fd;

	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		snprintf(err, errlen, "cannot read %s: %s", rl ? rel : ".",
		    strerror(errno));
		return GK_ERR_IO;
	}
	while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (rl + nl + 2 >= PATH_MAX) {
			fputs("skipped (path too long): ", report);
			report_name(report, rel);
			fputc('/', report);
			report_name(report, de->d_name);
			fputc('\n', report);
			continue;
		}
		if (rl > 0)
			rel[rl] = '/';
		memcpy(rel + rl + (rl > 0), de->d_name, nl + 1);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)
		    != 0) {
			snprintf(err, errlen, "cannot stat %s: %s", rel,
			    strerror(errno));
			r = GK_ERR_IO;
		} else if (!share_path_ok(gk_slice_str(rel))) {
			fputs("skipped (unsafe or non-UTF-8 name): ", report);
			report_name(report, rel);
			fputc('\n', report);
		} else if (S_ISDIR(st.st_mode)) {
			fd = openat(dirfd(d), de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				snprintf(err, errlen, "cannot open %s: %s",
				    rel, strerror(errno));
				r = GK_ERR_IO;
			} else
				r = walk_dir(w, fd, rel, strlen(rel), report,
				    err, errlen);
		} else if (S_ISREG(st.st_mode)) {
			r = add(w, rel, &st);
		} else {
			fprintf(report, "skipped (%s): %s\n",
			    S_ISLNK(st.st_mode) ? "symlink" : "special file",
			    rel);
			w->skipped++;
		}
		rel[rl] = '\0';
	}
	if (r == 0 && errno != 0) {
		snprintf(err, errlen, "cannot read %s: %s", rl ? rel : ".",
		    strerror(errno));
		r = GK_ERR_IO;
	}
	closedir(d);
	return r;
}

static int
cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct walk_ent *)a)->path,
	    ((const struct walk_ent *)b)->path);
}

int
walk_tree(const char *dir, FILE *report, struct walk *w, char *err,
    size_t errlen)
{
	char rel[PATH_MAX] = "";
	int fd, r;

	memset(w, 0, sizeof(*w));
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return GK_ERR_NOT_FOUND;
	}
	if ((r = walk_dir(w, fd, rel, 0, report, err, errlen)) != 0) {
		walk_release(w);
		return r;
	}
	if (w->n > 1)
		qsort(w->ents, w->n, sizeof(*w->ents), cmp_ent);
	return 0;
}

void
walk_release(struct walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		free(w->ents[i].path);
	free(w->ents);
	memset(w, 0, sizeof(*w));
}

void
share_object_name(const char *id, const char *path, char out[64])
{
	uint8_t d[32];
	unsigned int n = 0;
	char hex[65];
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	memset(d, 0, sizeof(d));
	if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
		(void)EVP_DigestUpdate(md, id, strlen(id) + 1);
		(void)EVP_DigestUpdate(md, path, strlen(path));
		(void)EVP_DigestFinal_ex(md, d, &n);
	}
	EVP_MD_CTX_free(md);
	gk_hex_encode(d, 16, hex);
	snprintf(out, 64, "files/%.32s.age", hex);
}

int
share_url_split(const char *share, char *dest, size_t destlen, char *id,
    size_t idlen)
{
	const char *q = strchr(share, '?'), *end, *s;
	size_t pl, il;

	end = q ? q : share + strlen(share);
	while (end > share && end[-1] == '/')
		end--;
	s = end;
	while (s > share && s[-1] != '/')
		s--;
	il = (size_t)(end - s);
	if (il == 0 || il >= idlen)
		return GK_ERR_INVALID;
	memcpy(id, s, il);
	id[il] = '\0';
	if (!share_id_ok(id) || (size_t)(s - share) < 8 ||
	    strncmp(s - 8, "/shares/", 8) != 0)
		return GK_ERR_INVALID;
	pl = (size_t)(s - 8 - share);
	if (pl + (q ? strlen(q) : 0) + 1 > destlen)
		return GK_ERR_TOO_LARGE;
	memcpy(dest, share, pl);
	/* "file://" + "/shares/x" leaves "file://": the root itself */
	if (pl > 0 && dest[pl - 1] == '/' && strncmp(share, "file://", 7) == 0
	    && pl == 7)
		dest[pl++] = '/';
	dest[pl] = '\0';
	if (q != NULL)
		memcpy(dest + pl, q, strlen(q) + 1);
	return 0;
}

int
share_url_join(const char *dest, const char *id, char *out, size_t outlen)
{
	const char *q = strchr(dest, '?');
	size_t bl = q ? (size_t)(q - dest) : strlen(dest);

	if (bl == 0)
		return GK_ERR_INVALID;
	while (bl > 0 && dest[bl - 1] == '/' && !(bl == 8 &&
	    strncmp(dest, "file:///", 8) == 0))
		bl--;
	if ((size_t)snprintf(out, outlen, "%.*s%sshares/%s%s", (int)bl, dest,
	    dest[bl - 1] == '/' ? "" : "/", id, q ? q : "") >= outlen)
		return GK_ERR_TOO_LARGE;
	return 0;
}

int
share_run_workers(unsigned n, void *(*fn)(void *), void *arg)
{
	pthread_t th[SHARE_MAX_WORKERS];
	unsigned t, started = 0;

	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (unsigned)c : 1;
	}
	if (n > SHARE_MAX_WORKERS)
		n = SHARE_MAX_WORKERS;
	for (t = 0; t < n; t++) {
		if (pthread_create(&th[t], NULL, fn, arg) != 0)
			break;
		started++;
	}
	for (t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	return started > 0 ? 0 : GK_ERR_INTERNAL;
}
