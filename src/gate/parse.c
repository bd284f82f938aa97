/* parse.c - query strings, object keys, roots and Range headers. */
#include "gate.h"

#include <stdio.h>
#include <string.h>

#define QUERY_MAX 16384
#define VALUE_MAX 8192

void
gate_params_release(gate_params *ps)
{
	gk_buf_release(&ps->arena);
	memset(ps->p, 0, sizeof(ps->p));
	ps->n = 0;
}

int
gate_params_parse(gk_slice query, gate_params *out, gk_slice *dup)
{
	size_t i = 0, j, k, start, eq, off[GATE_MAX_PARAMS];
	gk_slice name, value;
	int r = GK_ERR_INTERNAL;

	memset(out, 0, sizeof(*out));
	*dup = GK_SLICE_NULL;
	if (query.len > QUERY_MAX)
		return GK_ERR_TOO_LARGE;
	/* the values decode into one buffer, never longer than the query
	 * plus their NULs: one allocation */
	gk_buf_init(&out->arena, QUERY_MAX + GATE_MAX_PARAMS);
	if ((r = gk_buf_reserve(&out->arena, query.len +
	    GATE_MAX_PARAMS)) != 0)
		return r;
	while (i < query.len) {
		start = i;
		while (i < query.len && query.p[i] != '&')
			i++;
		if (i > start) {
			eq = start;
			while (eq < i && query.p[eq] != '=')
				eq++;
			name = gk_slice_of(query.p + start, eq - start);
			value = eq < i ? gk_slice_of(query.p + eq + 1,
			    i - eq - 1) : GK_SLICE_NULL;
			/* names are plain tokens: no escapes expected */
			for (j = 0; j < name.len; j++) {
				if (name.p[j] == '%' || name.p[j] < 0x21 ||
				    name.p[j] >= 0x7f) {
					r = GK_ERR_INVALID;
					goto fail;
				}
			}
			for (j = 0; j < out->n; j++) {
				if (gk_slice_eq(out->p[j].name, name)) {
					*dup = name;
					r = GK_ERR_EXISTS;
					goto fail;
				}
			}
			if (out->n == GATE_MAX_PARAMS) {
				r = GK_ERR_TOO_LARGE;
				goto fail;
			}
			out->p[out->n].name = name;
			off[out->n] = out->arena.len;
			if ((r = gk_form_decode(value, &out->arena)) != 0)
				goto fail;
			/* its length, then past its NUL for the next one */
			out->p[out->n].value.len = out->arena.len - off[out->n];
			out->arena.len++;
			out->n++;
		}
		i++; /* skip '&' */
	}
	/* the arena no longer moves: point the values into it (cap 0, so
	 * that nothing can append to one) */
	for (k = 0; k < out->n; k++)
		out->p[k].value.data = out->arena.data + off[k];
	return 0;
fail:
	gate_params_release(out);
	return r;
}

const gk_buf *
gate_params_get(const gate_params *ps, const char *name)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		if (gk_slice_eq_str(ps->p[i].name, name))
			return &ps->p[i].value;
	}
	return NULL;
}

const char *
gate_params_str(const gate_params *ps, const char *name)
{
	const gk_buf *b = gate_params_get(ps, name);

	if (b == NULL)
		return NULL;
	return b->data != NULL ? (const char *)b->data : "";
}

int
gate_key_valid(gk_slice key, int allow_trailing_slash)
{
	size_t i, seg = 0;

	if (key.len == 0 || key.len > 1024 || !gk_utf8_valid(key))
		return 0;
	for (i = 0; i <= key.len; i++) {
		if (i == key.len || key.p[i] == '/') {
			size_t n = i - seg;
			const uint8_t *s = key.p + seg;

			if (n == 0 && !(allow_trailing_slash && i == key.len &&
			    i > 0))
				return 0;
			if ((n == 1 && s[0] == '.') ||
			    (n == 2 && s[0] == '.' && s[1] == '.'))
				return 0;
			seg = i + 1;
			continue;
		}
		if (key.p[i] < 0x20 || key.p[i] == 0x7f || key.p[i] == '\\')
			return 0;
	}
	return 1;
}

int
gate_root_valid(gk_slice root)
{
	size_t i;

	if (root.len == 0 || root.len > 63)
		return 0;
	if (gk_slice_eq_str(root, ".") || gk_slice_eq_str(root, ".."))
		return 0;
	for (i = 0; i < root.len; i++) {
		uint8_t c = root.p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

struct roots_check {
	gk_slice item;		/* the root compared with all others */
	gk_slice clash;		/* the one it is a prefix of, if any */
};

static int
roots_cmp_one(void *arg, gk_slice other)
{
	struct roots_check *rc = arg;

	if (other.p != rc->item.p && other.len >= rc->item.len &&
	    memcmp(other.p, rc->item.p, rc->item.len) == 0) {
		rc->clash = other;
		return 1;
	}
	return 0;
}

struct roots_walk {
	const char *list;
	gk_slice bad, clash;
};

static int
roots_each(void *arg, gk_slice item)
{
	struct roots_walk *w = arg;
	struct roots_check rc;

	if (!gate_root_valid(item)) {
		w->bad = item;
		return 1;
	}
	memset(&rc, 0, sizeof(rc));
	rc.item = item;
	if (gk_list_each(w->list, roots_cmp_one, &rc) != 0) {
		w->bad = item;
		w->clash = rc.clash;
		return 1;
	}
	return 0;
}

static int
root_eq(void *arg, gk_slice item)
{
	return gk_slice_eq(*(const gk_slice *)arg, item);
}

int
gate_v1_root_listed(const char *v1_roots, gk_slice root)
{
	return v1_roots == NULL || v1_roots[0] == '\0' ||
	    gk_list_each(v1_roots, root_eq, &root) == 1;
}

int
gate_v1_roots_check(const char *list, char *err, size_t errlen)
{
	struct roots_walk w;

	memset(&w, 0, sizeof(w));
	w.list = list;
	if (gk_list_each(list, roots_each, &w) == 0)
		return 0;
	if (w.clash.p == NULL)
		snprintf(err, errlen, "[gate] v1_roots: '%.*s' is not a root "
		    "([A-Za-z0-9._-], 1 to 63)",
		    (int)(w.bad.len > 63 ? 63 : w.bad.len),
		    (const char *)w.bad.p);
	else
		snprintf(err, errlen, "[gate] v1_roots: '%.*s' is a prefix of "
		    "'%.*s' (or listed twice): a v1 signature for one could "
		    "be replayed on the other; rename one",
		    (int)w.bad.len, (const char *)w.bad.p,
		    (int)(w.clash.len > 63 ? 63 : w.clash.len),
		    (const char *)w.clash.p);
	return GK_ERR_CONFIG;
}

const char *
gate_v1_path_shape(gk_slice op, gk_slice path)
{
	if (gk_slice_eq_str(op, "GET_Bucket") && (path.len < 3 ||
	    path.p[0] != '/' || path.p[path.len - 1] != '/'))
		return "Bad Request: 'path' param must begin and end with '/' "
		    "and be at least 3 characters";
	return NULL;
}

const char *
gate_v1_key(const char *uploads_prefix, int validate_keys, gk_slice root,
    gk_slice path, gk_slice op, gk_buf *key)
{
	static const char bad_path[] = "Bad Request: invalid 'path' param";
	int r;

	if (gk_slice_eq_str(op, "PUT_Object")) {
		gk_slice rest = path;

		/* uploads + path; with no prefix the key is path minus '/' */
		if (uploads_prefix[0] == '\0' && rest.len > 0 &&
		    rest.p[0] == '/')
			rest = gk_slice_of(rest.p + 1, rest.len - 1);
		r = gk_buf_append_str(key, uploads_prefix);
		if (r == 0)
			r = gk_buf_append(key, rest.p, rest.len);
	} else {
		r = gk_buf_append(key, root.p, root.len);
		if (r == 0)
			r = gk_buf_append(key, path.p, path.len);
	}
	if (r != 0)
		return bad_path;
	if (validate_keys) {
		if (!gate_root_valid(root))
			return "Bad Request: invalid root";
		if (path.len == 0 || path.p[0] != '/' ||
		    !gate_key_valid(gk_slice_of(key->data, key->len),
		    gk_slice_eq_str(op, "GET_Bucket")))
			return bad_path;
	} else if (key->len > 1024 || memchr(key->data, '\0',
	    key->len) != NULL) {
		return bad_path;
	}
	return NULL;
}

gk_slice
gate_v1_sub(gk_slice path)
{
	const uint8_t *slash = memchr(path.p, '/', path.len);
	const uint8_t *start, *end;

	if (slash == NULL)
		return gk_slice_str("undefined");
	start = slash + 1;
	end = memchr(start, '/', path.len - (size_t)(start - path.p));
	if (end == NULL)
		end = path.p + path.len;
	return gk_slice_of(start, (size_t)(end - start));
}

/* Parses digits at *i up to a non-digit; fails on none or overflow. */
static int
range_num(gk_slice h, size_t *i, uint64_t *out)
{
	size_t start = *i;

	while (*i < h.len && h.p[*i] >= '0' && h.p[*i] <= '9')
		(*i)++;
	if (*i == start)
		return GK_ERR_INVALID;
	return gk_parse_u64(gk_slice_of(h.p + start, *i - start), UINT64_MAX,
	    out);
}

int
gate_range_parse(gk_slice h, uint64_t total, uint64_t *off, uint64_t *len)
{
	static const char unit[] = "bytes=";
	uint64_t a = 0, b = 0;
	size_t i = sizeof(unit) - 1;
	int have_a = 0, have_b = 0;

	if (h.len == 0 || h.len > 200 ||
	    !gk_slice_has_prefix(h, gk_slice_str(unit)))
		return GK_ERR_NOT_FOUND;
	if (i < h.len && h.p[i] != '-') {
		if (range_num(h, &i, &a) != 0)
			return GK_ERR_NOT_FOUND;
		have_a = 1;
	}
	if (i >= h.len || h.p[i] != '-')
		return GK_ERR_NOT_FOUND;
	i++;
	if (i < h.len) {
		if (range_num(h, &i, &b) != 0)
			return GK_ERR_NOT_FOUND;
		have_b = 1;
	}
	if (i != h.len) /* a list of ranges or trailing junk: ignore */
		return GK_ERR_NOT_FOUND;
	if (!have_a && !have_b)
		return GK_ERR_NOT_FOUND;
	if (!have_a) {
		/* suffix: the last b bytes */
		if (b == 0)
			return GK_ERR_RANGE;
		if (total == 0)
			return GK_ERR_RANGE;
		if (b > total)
			b = total;
		*off = total - b;
		*len = b;
		return 0;
	}
	if (have_b && b < a)
		return GK_ERR_NOT_FOUND;
	if (a >= total)
		return GK_ERR_RANGE;
	if (!have_b || b >= total)
		b = total - 1;
	*off = a;
	*len = b - a + 1;
	return 0;
}
