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

/*
 * Checks the envelope's form: *pos is where the body starts, *fl the
 * length of the first line ("gatekeeper-share-<kind> v1\n"), which is
 * also the length of the signed prefix ("...v1\0").
 */
static int
envelope_header(const char *kind, gk_slice in, uint8_t pub[32],
    uint8_t sig[64], size_t *pos, size_t *fl)
{
	char first[80];

	if (in.len > SHARE_ENVELOPE_MAX + 4096)
		return GK_ERR_TOO_LARGE;
	*fl = (size_t)snprintf(first, sizeof(first), "gatekeeper-share-%s v1\n",
	    kind);
	if (*fl >= sizeof(first) || in.len < *fl ||
	    memcmp(in.p, first, *fl) != 0)
		return GK_ERR_INVALID;
	*pos = *fl;
	if (field(in, pos, "key: ", pub, 32) != 0 ||
	    field(in, pos, "sig: ", sig, 64) != 0)
		return GK_ERR_INVALID;
	if (*pos >= in.len || in.p[*pos] != '\n')
		return GK_ERR_INVALID;
	(*pos)++;
	return 0;
}

int
share_envelope_open(const char *kind, gk_slice in, uint8_t pub[32],
    gk_slice *body)
{
	uint8_t sig[64];
	size_t pos, fl;
	gk_buf m;
	int r;

	if ((r = envelope_header(kind, in, pub, sig, &pos, &fl)) != 0)
		return r;
	*body = gk_slice_of(in.p + pos, in.len - pos);
	if ((r = signed_message(kind, *body, &m)) != 0)
		return r;
	r = share_verify(pub, gk_slice_of(m.data, m.len), sig);
	gk_buf_release(&m);
	return r == 0 ? 0 : GK_ERR_AUTH;
}

int
share_envelope_open_inplace(const char *kind, uint8_t *p, size_t len,
    uint8_t pub[32], gk_slice *body)
{
	uint8_t sig[64];
	size_t pos, fl;
	int r;

	if ((r = envelope_header(kind, gk_slice_of(p, len), pub, sig, &pos,
	    &fl)) != 0)
		return r;
	/*
	 * The signed message is the first line with its '\n' made '\0',
	 * then the body: it is written over the end of the header, which
	 * holds at least the key and sig lines besides the first line.
	 */
	memmove(p + pos - fl, p, fl - 1);
	p[pos - 1] = '\0';
	*body = gk_slice_of(p + pos, len - pos);
	r = share_verify(pub, gk_slice_of(p + pos - fl, fl + len - pos), sig);
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
			 * isolate, which makes the name read otherwise; a
			 * line or paragraph separator, which splits the
			 * line the name is printed on
			 */
			if ((k = gk_utf8_seq(p.p + i, p.len - i)) == 0 ||
			    gk_utf8_unsafe(p.p + i, k) || p.p[i] == '\\')
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

/*
 * Both ways one file entry at a time: a tree of the whole manifest in
 * jansson took about 1.8 KiB per entry (569 MiB RSS for a 64 MiB
 * manifest of 322,974 entries).
 * The top-level fields go through jansson whole (they are small).
 */
static int
entry_json(const share_file *sf, gk_buf *out)
{
	char hex[65], *s = NULL;
	json_t *f;
	int r = GK_ERR_NOMEM;

	gk_hex_encode(sf->sha256, 32, hex);
	f = json_pack("{s:s, s:I, s:i, s:I, s:I, s:s, s:s, s:s}", "path",
	    sf->path, "size", (json_int_t)sf->size, "mode", (int)sf->mode,
	    "mtime", (json_int_t)sf->mtime, "mtime_ns",
	    (json_int_t)sf->mtime_ns, "sha256", hex, "object", sf->object,
	    "encoding", sf->zstd ? "zstd" : "none");
	if (f != NULL && (s = json_dumps(f, JSON_COMPACT)) != NULL)
		r = gk_buf_append_str(out, s);
	free(s);
	json_decref(f);
	return r;
}

int
share_manifest_json(const share_manifest *m, gk_buf *out)
{
	json_t *root;
	char *s = NULL;
	size_t i, l;
	int r = GK_ERR_NOMEM;

	root = json_pack("{s:i, s:s, s:s, s:s, s:I}", "version", 1, "share",
	    m->id, "sender", m->sender ? m->sender : "", "organisation",
	    m->organisation ? m->organisation : "", "created",
	    (json_int_t)m->created);
	if (root == NULL || (s = json_dumps(root, JSON_COMPACT)) == NULL)
		goto out;
	/* {"version":1,...,"created":N} + ,"files":[...]} */
	l = strlen(s);
	if (l < 2 || s[l - 1] != '}') {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	if ((r = gk_buf_append(out, s, l - 1)) != 0 ||
	    (r = gk_buf_append_str(out, ",\"files\":[")) != 0)
		goto out;
	for (i = 0; i < m->n; i++)
		if ((i > 0 && (r = gk_buf_append(out, ",", 1)) != 0) ||
		    (r = entry_json(&m->files[i], out)) != 0)
			goto out;
	r = gk_buf_append_str(out, "]}");
out:
	free(s);
	json_decref(root);
	return r;
}

void
share_manifest_release(share_manifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->files[i].path);
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
/* version, share id, sender, organisation, created and "files":[] */
#define TOP_MAX (1024u * 1024)

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

static size_t
skip_ws(gk_slice js, size_t pos)
{
	while (pos < js.len && (js.p[pos] == ' ' || js.p[pos] == '\t' ||
	    js.p[pos] == '\n' || js.p[pos] == '\r'))
		pos++;
	return pos;
}

/* The end of the JSON string that starts (at its '"') at pos, or 0. */
static size_t
skip_string(gk_slice js, size_t pos)
{
	for (pos++; pos < js.len; pos++) {
		if (js.p[pos] == '\\')
			pos++;
		else if (js.p[pos] == '"')
			return pos + 1;
	}
	return 0;
}

/*
 * The end of the top-level value at pos, or 0. Only finds its extent:
 * jansson checks every value later.
 */
static size_t
skip_value(gk_slice js, size_t pos)
{
	size_t depth = 0;

	while (pos < js.len) {
		switch (js.p[pos]) {
		case '"':
			if ((pos = skip_string(js, pos)) == 0)
				return 0;
			if (depth == 0)
				return pos;
			continue;
		case '{': case '[':
			depth++;
			break;
		case '}': case ']':
			if (depth == 0)
				return pos;	/* the end of a scalar */
			if (--depth == 0)
				return pos + 1;
			break;
		case ',':
			if (depth == 0)
				return pos;
			break;
		}
		pos++;
	}
	return 0;
}

/* One entry of "files", checked, into sf (path owned). */
static int
parse_entry(json_t *f, share_file *sf, char *err, size_t errlen)
{
	json_error_t je;
	const char *path, *hex, *object, *enc;
	json_int_t size, mode, mtime, mtime_ns;

	if (json_unpack_ex(f, &je, JSON_STRICT, "{s:s, s:I, s:I, s:I, "
	    "s:I, s:s, s:s, s:s}", "path", &path, "size", &size, "mode",
	    &mode, "mtime", &mtime, "mtime_ns", &mtime_ns, "sha256",
	    &hex, "object", &object, "encoding", &enc) != 0)
		return bad(err, errlen, "manifest file entry: %s", je.text);
	if (!share_path_ok(gk_slice_str(path)) ||
	    strlen(path) != json_string_length(json_object_get(f, "path")))
		/* named as the CLI shows err: share_text_safe */
		return bad(err, errlen, "manifest holds an unsafe path: %.200s",
		    path);
	if (size < 0 || mode < 0 || mode > 07777 || mtime_ns < 0 ||
	    mtime_ns > 999999999 || strlen(hex) != 64 ||
	    gk_hex_decode(gk_slice_str(hex), sf->sha256, 32) != 0 ||
	    !object_ok(object) || (strcmp(enc, "zstd") != 0 &&
	    strcmp(enc, "none") != 0))
		return bad(err, errlen, "manifest entry for a file is invalid "
		    "(%s)", "size, mode, time, hash, object or encoding");
	if ((sf->path = strdup(path)) == NULL)
		return GK_ERR_NOMEM;
	memcpy(sf->object, object, strlen(object) + 1);	/* object_ok */
	sf->size = (uint64_t)size;
	sf->mode = (unsigned)mode & 0777;
	sf->mtime = mtime;
	sf->mtime_ns = mtime_ns;
	sf->zstd = strcmp(enc, "zstd") == 0;
	return 0;
}

/*
 * The elements of the "files" array that starts (at its '[') at pos,
 * parsed one at a time; *end is just past its ']'.
 */
static int
parse_files(gk_slice js, size_t pos, share_manifest *m, size_t *end,
    char *err, size_t errlen)
{
	json_error_t je;
	share_file *nv;
	size_t alloc = 0;
	uint64_t total = 0;
	json_t *f;
	int r;

	pos = skip_ws(js, pos + 1);
	if (pos < js.len && js.p[pos] == ']') {
		*end = pos + 1;
		return 0;
	}
	for (;;) {
		if (m->n >= MAX_FILES)
			return bad(err, errlen, "%s", "manifest lists more than "
			    "10,000,000 files");
		if (m->n == alloc) {
			alloc = alloc ? alloc * 2 : 1024;
			if ((nv = realloc(m->files, alloc * sizeof(*nv))) ==
			    NULL)
				return GK_ERR_NOMEM;
			m->files = nv;
		}
		f = json_loadb((const char *)js.p + pos, js.len - pos,
		    JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
		if (f == NULL)
			return bad(err, errlen, "manifest file entry: %s",
			    je.text);
		memset(&m->files[m->n], 0, sizeof(*m->files));
		r = parse_entry(f, &m->files[m->n], err, errlen);
		json_decref(f);
		if (r != 0)
			return r;
		m->n++;
		/* what receive adds up (its progress, its ETA) never wraps */
		if (__builtin_add_overflow(total, m->files[m->n - 1].size,
		    &total) || total > INT64_MAX)
			return bad(err, errlen, "%s", "manifest file sizes add "
			    "up to more than 2^63 bytes");
		/* with JSON_DISABLE_EOF_CHECK, the bytes read: exactly the
		 * object's, as it ends with its '}' */
		pos = skip_ws(js, pos + (size_t)je.position);
		if (pos < js.len && js.p[pos] == ']') {
			*end = pos + 1;
			return 0;
		}
		if (pos >= js.len || js.p[pos] != ',')
			return bad(err, errlen, "%s", "manifest files is not a "
			    "list of entries");
		pos++;
	}
}

/*
 * Finds the top-level "files" key (spelt so) and parses its array; the
 * rest of the object is copied with the array made "[]" into top.
 */
static int
split_files(gk_slice js, share_manifest *m, gk_buf *top, char *err,
    size_t errlen)
{
	size_t pos, k, v, end = 0;
	int found = 0, r;

	pos = skip_ws(js, 0);
	if (pos >= js.len || js.p[pos] != '{')
		return bad(err, errlen, "%s", "manifest is not a JSON object");
	for (pos = skip_ws(js, pos + 1); pos < js.len && js.p[pos] == '"';) {
		if ((k = skip_string(js, pos)) == 0)
			break;
		v = skip_ws(js, k);
		if (v >= js.len || js.p[v] != ':')
			break;
		v = skip_ws(js, v + 1);
		if (k - pos == 7 && memcmp(js.p + pos, "\"files\"", 7) == 0) {
			if (found)
				return bad(err, errlen, "%s", "manifest names "
				    "files twice");
			if (v >= js.len || js.p[v] != '[')
				return bad(err, errlen, "%s", "manifest files "
				    "is not a list");
			if ((r = parse_files(js, v, m, &end, err,
			    errlen)) != 0)
				return r;
			found = 1;
			if ((r = gk_buf_append(top, js.p, v)) != 0 ||
			    (r = gk_buf_append(top, "[]", 2)) != 0)
				return r == GK_ERR_TOO_LARGE ? bad(err, errlen,
				    "%s", "manifest fields are too large") : r;
			pos = end;
		} else if ((pos = skip_value(js, v)) == 0)
			break;
		pos = skip_ws(js, pos);
		if (pos >= js.len || js.p[pos] != ',')
			break;
		pos = skip_ws(js, pos + 1);
	}
	if (!found)
		return bad(err, errlen, "%s", "manifest fields: files missing");
	/* the rest, whatever it is: jansson judges the whole of top */
	if ((r = gk_buf_append(top, js.p + end, js.len - end)) != 0)
		return r == GK_ERR_TOO_LARGE ? bad(err, errlen, "%s",
		    "manifest fields are too large") : r;
	return 0;
}

int
share_manifest_parse(gk_slice js, share_manifest *m, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = NULL, *files;
	const char *id, *sender, *org, *path;
	json_int_t ver, created;
	size_t j, n;
	char **sorted = NULL;
	share_file *nv;
	gk_buf top;
	int r;

	memset(m, 0, sizeof(*m));
	err[0] = '\0';
	gk_buf_init(&top, TOP_MAX);
	if ((r = split_files(js, m, &top, err, errlen)) != 0)
		goto out;
	r = GK_ERR_INVALID;
	root = json_loadb((const char *)top.data, top.len,
	    JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		r = bad(err, errlen, "manifest is not JSON: %s", je.text);
		goto out;
	}
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
	/* the only files key is the one split_files emptied */
	if (!json_is_array(files) || json_array_size(files) != 0) {
		r = bad(err, errlen, "%s", "manifest files is not a list");
		goto out;
	}
	r = GK_ERR_NOMEM;
	if ((m->id = strdup(id)) == NULL || (m->sender = strdup(sender)) ==
	    NULL || (m->organisation = strdup(org)) == NULL)
		goto out;
	m->created = created;
	n = m->n;
	if (n > 0 && (nv = realloc(m->files, n * sizeof(*nv))) != NULL)
		m->files = nv;	/* give back the growth */
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
	gk_buf_release(&top);
	if (r != 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "manifest: %s", gk_err_str(r));
		share_manifest_release(m);
	}
	return r;
}
