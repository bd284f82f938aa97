/*
 * manifest.c - the signed envelope and the share manifest (JSON).
 */
#include "share/share.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "share/share_int.h"

/* ---- envelope ---------------------------------------------------------- */

static int
signed_message(const char *kind, gk_slice body, gk_buf *m)
{
	int r;

	gk_buf_init(m, SHARE_ENVELOPE_MAX + 256);
	if ((r = gk_buf_printf(m, "gatekeeper-share-%s v1", kind)) != 0 ||
	    (r = gk_buf_append(m, "", 1)) != 0 ||
	    (r = gk_buf_append(m, body.p, body.len)) != 0)
		gk_buf_release(m);
	return r;
}

int
share_envelope_sign(const char *kind, const age_identity *id, gk_slice body,
    gk_buf *out)
{
	uint8_t pub[32], sig[64];
	char pb[64], sb[96];
	gk_buf m;
	int r;

	if (body.len > SHARE_ENVELOPE_MAX)
		return GK_ERR_TOO_LARGE;
	if ((r = share_sign_pub(id, pub)) != 0 ||
	    (r = signed_message(kind, body, &m)) != 0)
		return r;
	r = share_sign(id, gk_slice_of(m.data, m.len), sig);
	gk_buf_release(&m);
	if (r != 0)
		return r;
	age_b64_raw(pub, sizeof(pub), pb, sizeof(pb));
	age_b64_raw(sig, sizeof(sig), sb, sizeof(sb));
	if ((r = gk_buf_printf(out, "gatekeeper-share-%s v1\nkey: %s\nsig: "
	    "%s\n\n", kind, pb, sb)) != 0)
		return r;
	return gk_buf_append(out, body.p, body.len);
}

/* Expects "<prefix><b64>\n" at *pos; decodes exactly n bytes. */
static int
field(gk_slice in, size_t *pos, const char *prefix, uint8_t *out, size_t n)
{
	size_t pl = strlen(prefix), got;
	const uint8_t *nl;

	if (in.len - *pos < pl || memcmp(in.p + *pos, prefix, pl) != 0)
		return GK_ERR_INVALID;
	nl = memchr(in.p + *pos, '\n', in.len - *pos);
	if (nl == NULL)
		return GK_ERR_INVALID;
	if (age_b64_decode(gk_slice_of(in.p + *pos + pl,
	    (size_t)(nl - in.p) - *pos - pl), 0, out, n, &got) != 0 ||
	    got != n)
		return GK_ERR_INVALID;
	*pos = (size_t)(nl - in.p) + 1;
	return 0;
}

int
share_envelope_open(const char *kind, gk_slice in, uint8_t pub[32],
    gk_slice *body)
{
	char first[80];
	uint8_t sig[64];
	size_t pos, fl;
	gk_buf m;
	int r;

	if (in.len > SHARE_ENVELOPE_MAX + 4096)
		return GK_ERR_TOO_LARGE;
	fl = (size_t)snprintf(first, sizeof(first), "gatekeeper-share-%s v1\n",
	    kind);
	if (fl >= sizeof(first) || in.len < fl ||
	    memcmp(in.p, first, fl) != 0)
		return GK_ERR_INVALID;
	pos = fl;
	if (field(in, &pos, "key: ", pub, 32) != 0 ||
	    field(in, &pos, "sig: ", sig, 64) != 0)
		return GK_ERR_INVALID;
	if (pos >= in.len || in.p[pos] != '\n')
		return GK_ERR_INVALID;
	pos++;
	*body = gk_slice_of(in.p + pos, in.len - pos);
	if ((r = signed_message(kind, *body, &m)) != 0)
		return r;
	r = share_verify(pub, gk_slice_of(m.data, m.len), sig);
	gk_buf_release(&m);
	return r == 0 ? 0 : GK_ERR_AUTH;
}

/* ---- paths and ids ------------------------------------------------------ */

int
share_path_ok(gk_slice p)
{
	size_t i, s = 0, k;

	if (p.len == 0 || p.len > 4096 || p.p[0] == '/')
		return 0;
	for (i = 0; i <= p.len; i += k) {
		k = 1;
		if (i < p.len) {
			/*
			 * Not UTF-8; a control a terminal acts on when the
			 * name is printed (C0, DEL, C1); a bidi override or
			 * isolate, which makes the name read otherwise
			 */
			if ((k = gk_utf8_seq(p.p + i, p.len - i)) == 0 ||
			    gk_utf8_control(p.p + i, k) ||
			    gk_utf8_bidi(p.p + i, k) || p.p[i] == '\\')
				return 0;
			if (p.p[i] != '/')
				continue;
		}
		/* component [s, i) */
		if (i == s || (i - s == 1 && p.p[s] == '.') ||
		    (i - s == 2 && p.p[s] == '.' && p.p[s + 1] == '.') ||
		    i - s > 255)
			return 0;
		s = i + 1;
	}
	return 1;
}

int
share_id_ok(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    c == '-'))
			return 0;
	}
	return 1;
}

/* object names: "files/<32 hex>.age" */
static int
object_ok(const char *s)
{
	size_t i;

	if (strlen(s) != 6 + 32 + 4 || strncmp(s, "files/", 6) != 0 ||
	    strcmp(s + 38, ".age") != 0)
		return 0;
	for (i = 6; i < 38; i++)
		if (gk_hex_val((uint8_t)s[i]) < 0 ||
		    (s[i] >= 'A' && s[i] <= 'F'))
			return 0;
	return 1;
}

/* ---- manifest JSON ------------------------------------------------------ */

int
share_manifest_json(const share_manifest *m, gk_buf *out)
{
	json_t *root, *files, *f;
	char hex[65], *s = NULL;
	size_t i;
	int r = GK_ERR_NOMEM;

	root = json_pack("{s:i, s:s, s:s, s:s, s:I}", "version", 1, "share",
	    m->id, "sender", m->sender ? m->sender : "", "organisation",
	    m->organisation ? m->organisation : "", "created",
	    (json_int_t)m->created);
	files = json_array();
	if (root == NULL || files == NULL)
		goto out;
	for (i = 0; i < m->n; i++) {
		const share_file *sf = &m->files[i];

		gk_hex_encode(sf->sha256, 32, hex);
		f = json_pack("{s:s, s:I, s:i, s:I, s:I, s:s, s:s, s:s}",
		    "path", sf->path, "size", (json_int_t)sf->size, "mode",
		    (int)sf->mode, "mtime", (json_int_t)sf->mtime, "mtime_ns",
		    (json_int_t)sf->mtime_ns, "sha256", hex, "object",
		    sf->object, "encoding", sf->zstd ? "zstd" : "none");
		if (f == NULL || json_array_append_new(files, f) != 0)
			goto out;
	}
	if (json_object_set(root, "files", files) != 0)
		goto out;
	if ((s = json_dumps(root, JSON_COMPACT)) == NULL)
		goto out;
	r = gk_buf_append_str(out, s);
out:
	free(s);
	json_decref(files);
	json_decref(root);
	return r;
}

void
share_manifest_release(share_manifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++) {
		free(m->files[i].path);
		free(m->files[i].object);
	}
	free(m->files);
	free(m->id);
	free(m->sender);
	free(m->organisation);
	memset(m, 0, sizeof(*m));
}

static int GK_PRINTF(3, 4)
bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return GK_ERR_INVALID;
}

#define MAX_FILES 10000000u

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The first directory of path (sorted holds n paths, sorted) that is
 * itself one of the paths, as a file: "a" for "a/b" when "a" is listed.
 * NULL when none is. Returns a pointer into sorted.
 */
static const char *
dir_is_file(char *const *sorted, size_t n, const char *path)
{
	char buf[4097], *key = buf;
	const char *slash;
	char **hit;
	size_t len;

	for (slash = strchr(path, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		len = (size_t)(slash - path);
		if (len >= sizeof(buf))
			return NULL;	/* share_path_ok bounds paths */
		memcpy(buf, path, len);
		buf[len] = '\0';
		hit = bsearch(&key, sorted, n, sizeof(*sorted), cmp_str);
		if (hit != NULL)
			return *hit;
	}
	return NULL;
}

int
share_manifest_parse(gk_slice js, share_manifest *m, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *files, *f;
	const char *id, *sender, *org, *path, *hex, *object, *enc;
	json_int_t ver, created, size, mode, mtime, mtime_ns;
	size_t i, n = 0, j;
	char **sorted = NULL;
	int r = GK_ERR_INVALID;

	memset(m, 0, sizeof(*m));
	root = json_loadb((const char *)js.p, js.len, JSON_REJECT_DUPLICATES,
	    &je);
	if (root == NULL)
		return bad(err, errlen, "manifest is not JSON: %s", je.text);
	if (json_unpack_ex(root, &je, JSON_STRICT, "{s:I, s:s, s:s, s:s, "
	    "s:I, s:o}", "version", &ver, "share", &id, "sender", &sender,
	    "organisation", &org, "created", &created, "files", &files) != 0) {
		r = bad(err, errlen, "manifest fields: %s", je.text);
		goto out;
	}
	if (ver != 1) {
		r = bad(err, errlen, "%s", "manifest version is not 1");
		goto out;
	}
	if (!share_id_ok(id)) {
		r = bad(err, errlen, "%s", "manifest share id is invalid");
		goto out;
	}
	if (!json_is_array(files) || (n = json_array_size(files)) > MAX_FILES) {
		r = bad(err, errlen, "%s", "manifest files is not a list");
		goto out;
	}
	r = GK_ERR_NOMEM;
	if ((m->id = strdup(id)) == NULL || (m->sender = strdup(sender)) ==
	    NULL || (m->organisation = strdup(org)) == NULL)
		goto out;
	m->created = created;
	if (n > 0 && (m->files = calloc(n, sizeof(*m->files))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		share_file *sf = &m->files[i];

		f = json_array_get(files, i);
		r = GK_ERR_INVALID;
		if (json_unpack_ex(f, &je, JSON_STRICT, "{s:s, s:I, s:I, s:I, "
		    "s:I, s:s, s:s, s:s}", "path", &path, "size", &size, "mode",
		    &mode, "mtime", &mtime, "mtime_ns", &mtime_ns, "sha256",
		    &hex, "object", &object, "encoding", &enc) != 0) {
			r = bad(err, errlen, "manifest file entry: %s",
			    je.text);
			goto out;
		}
		if (!share_path_ok(gk_slice_str(path)) ||
		    strlen(path) != json_string_length(json_object_get(f,
		    "path"))) {
			r = bad(err, errlen, "%s", "manifest holds an unsafe "
			    "path");
			goto out;
		}
		if (size < 0 || mode < 0 || mode > 07777 || mtime_ns < 0 ||
		    mtime_ns > 999999999 || strlen(hex) != 64 ||
		    gk_hex_decode(gk_slice_str(hex), sf->sha256, 32) != 0 ||
		    !object_ok(object) || (strcmp(enc, "zstd") != 0 &&
		    strcmp(enc, "none") != 0)) {
			r = bad(err, errlen, "manifest entry for a file is "
			    "invalid (%s)", "size, mode, time, hash, object or "
			    "encoding");
			goto out;
		}
		r = GK_ERR_NOMEM;
		m->n = i + 1;
		if ((sf->path = strdup(path)) == NULL ||
		    (sf->object = strdup(object)) == NULL)
			goto out;
		sf->size = (uint64_t)size;
		sf->mode = (unsigned)mode & 0777;
		sf->mtime = mtime;
		sf->mtime_ns = mtime_ns;
		sf->zstd = strcmp(enc, "zstd") == 0;
	}
	if (n > 1) {
		r = GK_ERR_NOMEM;
		if ((sorted = malloc(n * sizeof(*sorted))) == NULL)
			goto out;
		for (j = 0; j < n; j++)
			sorted[j] = m->files[j].path;
		qsort(sorted, n, sizeof(*sorted), cmp_str);
		for (j = 1; j < n; j++) {
			if (strcmp(sorted[j - 1], sorted[j]) == 0) {
				r = bad(err, errlen, "%s", "manifest names a "
				    "path twice");
				goto out;
			}
		}
		/* a file cannot also be a directory of another file */
		for (j = 0; j < n; j++) {
			if ((path = dir_is_file(sorted, n, sorted[j])) != NULL) {
				r = bad(err, errlen, "manifest names %.200s both "
				    "as a file and as a directory", path);
				goto out;
			}
		}
	}
	r = 0;
out:
	free(sorted);
	json_decref(root);
	if (r != 0)
		share_manifest_release(m);
	return r;
}
