/*
 * dest_fs.c - a share destination in a local (or mounted) directory:
 * file:///abs/dir. Objects are files under it; a write goes to a
 * temporary name and is renamed into place on commit.
 */
#include "share/share.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/dest_int.h"

struct fs_dest {
	share_dest base;
	char root[PATH_MAX];
};

struct fs_wr {
	share_wr base;
	int fd;
	char path[PATH_MAX], tmp[PATH_MAX];
};

struct fs_rd {
	share_rd base;
	int fd;
};

static int
fs_open(const char *rest, share_dest **out, char *err, size_t errlen)
{
	struct fs_dest *d;
	struct stat st;
	size_t n = strlen(rest);

	if (rest[0] != '/' || n >= PATH_MAX - 256 || strstr(rest, "/../") ||
	    strchr(rest, '?') != NULL) {
		snprintf(err, errlen, "file destination must be file:///ABSOLUTE"
		    "/DIR");
		return GK_ERR_INVALID;
	}
	if (stat(rest, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "destination file://%s unreachable: not "
		    "a directory", rest);
		return GK_ERR_UNAVAILABLE;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return GK_ERR_NOMEM;
	d->base.ops = &dest_fs_ops;
	memcpy(d->root, rest, n + 1);
	while (n > 1 && d->root[n - 1] == '/')
		d->root[--n] = '\0';
	snprintf(d->base.name, sizeof(d->base.name), "file://%.480s", d->root);
	*out = &d->base;
	return 0;
}

static void
fs_free(share_dest *d)
{
	free(d);
}

static int
fs_path(share_dest *d, const char *key, char *out, size_t outlen)
{
	struct fs_dest *f = (struct fs_dest *)d;

	if (!share_path_ok(gk_slice_str(key)) ||
	    (size_t)snprintf(out, outlen, "%s/%s", f->root, key) >= outlen) {
		dest_set_error("invalid object name");
		return GK_ERR_INVALID;
	}
	return 0;
}

static int
fs_put(share_dest *d, const char *key, share_wr **out)
{
	struct fs_wr *w;
	char dir[PATH_MAX], *slash;
	uint8_t rnd[8];
	char hex[17];
	int r;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return GK_ERR_NOMEM;
	w->base.d = d;
	w->fd = -1;
	if ((r = fs_path(d, key, w->path, sizeof(w->path))) != 0)
		goto fail;
	memcpy(dir, w->path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if (gk_mkdirs(dir, 0755) != 0) {
		dest_set_error("cannot create %s: %s", dir, strerror(errno));
		r = GK_ERR_IO;
		goto fail;
	}
	if ((r = gk_random(rnd, sizeof(rnd))) != 0)
		goto fail;
	gk_hex_encode(rnd, sizeof(rnd), hex);
	if ((size_t)snprintf(w->tmp, sizeof(w->tmp), "%s/.tmp-%s", dir, hex) >=
	    sizeof(w->tmp)) {
		r = GK_ERR_TOO_LARGE;
		goto fail;
	}
	if ((w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) < 0) {
		dest_set_error("cannot create a file in %s: %s", dir,
		    strerror(errno));
		r = GK_ERR_IO;
		goto fail;
	}
	*out = &w->base;
	return 0;
fail:
	free(w);
	return r;
}

static int
fs_wr_write(share_wr *base, const uint8_t *p, size_t len)
{
	struct fs_wr *w = (struct fs_wr *)base;
	ssize_t n;

	while (len > 0) {
		n = write(w->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			dest_set_error("write failed: %s", strerror(errno));
			return GK_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fs_wr_commit(share_wr *base)
{
	struct fs_wr *w = (struct fs_wr *)base;
	int r = 0;

	if (close(w->fd) != 0)
		r = GK_ERR_IO;
	w->fd = -1;
	if (r == 0 && rename(w->tmp, w->path) != 0)
		r = GK_ERR_IO;
	if (r != 0) {
		dest_set_error("cannot store %s: %s", w->path, strerror(errno));
		unlink(w->tmp);
	}
	w->tmp[0] = '\0';
	return r;
}

static void
fs_wr_free(share_wr *base)
{
	struct fs_wr *w = (struct fs_wr *)base;

	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp[0] != '\0')
		unlink(w->tmp);
	free(w);
}

static int
fs_get(share_dest *d, const char *key, share_rd **out)
{
	struct fs_rd *rd;
	char path[PATH_MAX];
	struct stat st;
	int r, fd;

	if ((r = fs_path(d, key, path, sizeof(path))) != 0)
		return r;
	/* whoever writes the destination could plant a fifo (a read that
	 * never ends) or a device: objects are regular files */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		dest_set_error("%s: %s", key, strerror(errno));
		return errno == ENOENT ? GK_ERR_NOT_FOUND : GK_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    fcntl(fd, F_SETFL, 0) != 0) {
		dest_set_error("%s: not a regular file", key);
		close(fd);
		return GK_ERR_IO;
	}
	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		close(fd);
		return GK_ERR_NOMEM;
	}
	rd->base.d = d;
	rd->fd = fd;
	*out = &rd->base;
	return 0;
}

static int
fs_rd_read(share_rd *base, uint8_t *buf, size_t max, size_t *got)
{
	struct fs_rd *rd = (struct fs_rd *)base;
	ssize_t n;

	do {
		n = read(rd->fd, buf, max);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		dest_set_error("read failed: %s", strerror(errno));
		return GK_ERR_IO;
	}
	*got = (size_t)n;
	return 0;
}

static void
fs_rd_free(share_rd *base)
{
	struct fs_rd *rd = (struct fs_rd *)base;

	close(rd->fd);
	free(rd);
}

static int
fs_stat(share_dest *d, const char *key, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	int r;

	if ((r = fs_path(d, key, path, sizeof(path))) != 0)
		return r;
	if (stat(path, &st) != 0) {
		dest_set_error("%s: %s", key, strerror(errno));
		return errno == ENOENT ? GK_ERR_NOT_FOUND : GK_ERR_IO;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

const struct dest_ops dest_fs_ops = {
	"file://", fs_open, fs_free, fs_put, fs_wr_write, fs_wr_commit,
	fs_wr_free, fs_get, fs_rd_read, fs_rd_free, fs_stat,
};
