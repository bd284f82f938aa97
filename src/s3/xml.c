/*
 * xml.c - the expat frame every S3 document the gatekeeper reads goes
 * through (s3_xml_run), and the documents from the bucket: ListObjectsV2
 * pages and error documents. The endpoint's request bodies are in
 * xml_body.c.
 */
#include "s3_int.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_CAP (4u * 1024)	/* a key is at most 1024 bytes */

/* ---- the shared frame ---------------------------------------------------- */

/* "Contents" from "http://s3.amazonaws.com/doc/2006-03-01/ Contents" or
 * a plain name */
static const char *
local(const char *name)
{
	const char *sp = strrchr(name, ' ');

	return sp ? sp + 1 : name;
}

void
s3_xml_fail(s3_xml *x, int r)
{
	if (x->r == 0)
		x->r = r;
	XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	s3_xml *x = ud;

	(void)attrs;
	if (++x->depth > x->depth_max && x->depth_max > 0) {
		s3_xml_fail(x, GK_ERR_INVALID);
		return;
	}
	gk_buf_reset(&x->text);
	x->start(x, local(name));
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
	s3_xml *x = ud;

	x->end(x, local(name), gk_slice_of(x->text.data, x->text.len));
	gk_buf_reset(&x->text);
	x->depth--;
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
	s3_xml *x = ud;

	if (len > 0 && gk_buf_append(&x->text, s, (size_t)len) != 0)
		s3_xml_fail(x, GK_ERR_TOO_LARGE);
}

static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	s3_xml_fail(ud, GK_ERR_INVALID);
}

int
s3_xml_run(s3_xml *x, gk_slice xml)
{
	if (xml.len > INT32_MAX)
		return GK_ERR_TOO_LARGE;
	if ((x->p = XML_ParserCreateNS("UTF-8", ' ')) == NULL)
		return GK_ERR_NOMEM;
	gk_buf_init(&x->text, x->text_cap);
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	if (x->no_doctype)
		XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	if (XML_Parse(x->p, xml.p != NULL ? (const char *)xml.p : "",
	    (int)xml.len, XML_TRUE) == XML_STATUS_ERROR && x->r == 0)
		x->r = GK_ERR_INVALID;
	XML_ParserFree(x->p);
	x->p = NULL;
	gk_buf_release(&x->text);
	return x->r;
}

/* ---- ListObjectsV2 pages and error documents ------------------------------ */

enum { X_LIST = 1, X_ERROR = 2 };

struct xctx {
	s3_xml x;		/* first */
	int kind;		/* what we parse */
	int root_ok;
	int in_contents;
	gk_buf key;
	uint64_t size;
	int64_t mtime;
	int have_key;
	s3_list_fn fn;
	void *arg;
	int *truncated;
	gk_buf *next, *code, *message;
};

static void
doc_start(s3_xml *sx, const char *n)
{
	struct xctx *x = (struct xctx *)sx;

	if (sx->depth == 1) {
		x->root_ok = x->kind == X_LIST ?
		    strcmp(n, "ListBucketResult") == 0 :
		    strcmp(n, "Error") == 0;
		if (!x->root_ok)
			s3_xml_fail(sx, GK_ERR_INVALID);
		return;
	}
	if (x->kind == X_LIST && sx->depth == 2 &&
	    strcmp(n, "Contents") == 0) {
		x->in_contents = 1;
		x->have_key = 0;
		x->size = 0;
		x->mtime = 0;
		gk_buf_reset(&x->key);
	}
}

static int64_t
parse_time(gk_slice t)
{
	char s[40];
	int64_t us = 0;

	/* 2026-11-23T10:00:00.000Z: drop the milliseconds */
	if (t.len < 20 || t.len >= sizeof(s))
		return 0;
	memcpy(s, t.p, 19);
	s[19] = 'Z';
	s[20] = '\0';
	if (gk_time_parse(s, &us) != 0)
		return 0;
	return us / 1000000;
}

static void
doc_end(s3_xml *sx, const char *n, gk_slice t)
{
	struct xctx *x = (struct xctx *)sx;
	int r;

	if (x->kind == X_ERROR && sx->depth == 2) {
		if (strcmp(n, "Code") == 0 && x->code != NULL &&
		    (r = gk_buf_append(x->code, t.p, t.len)) != 0)
			s3_xml_fail(sx, r);
		else if (strcmp(n, "Message") == 0 && x->message != NULL &&
		    (r = gk_buf_append(x->message, t.p, t.len)) != 0)
			s3_xml_fail(sx, r);
	} else if (x->kind == X_LIST && sx->depth == 2) {
		if (strcmp(n, "IsTruncated") == 0) {
			*x->truncated = gk_slice_eq_str(t, "true");
		} else if (strcmp(n, "NextContinuationToken") == 0) {
			if ((r = gk_buf_append(x->next, t.p, t.len)) != 0)
				s3_xml_fail(sx, r);
		} else if (strcmp(n, "Contents") == 0) {
			x->in_contents = 0;
			if (!x->have_key) {
				s3_xml_fail(sx, GK_ERR_INVALID);
			} else if ((r = x->fn(x->arg, gk_slice_of(x->key.data,
			    x->key.len), x->size, x->mtime)) != 0) {
				s3_xml_fail(sx, r < 0 ? r : 1);
			}
		}
	} else if (x->kind == X_LIST && sx->depth == 3 && x->in_contents) {
		if (strcmp(n, "Key") == 0) {
			gk_buf_reset(&x->key);
			if ((r = gk_buf_append(&x->key, t.p, t.len)) != 0)
				s3_xml_fail(sx, r);
			x->have_key = 1;
		} else if (strcmp(n, "Size") == 0) {
			if (gk_parse_u64(t, UINT64_MAX, &x->size) != 0)
				s3_xml_fail(sx, GK_ERR_INVALID);
		} else if (strcmp(n, "LastModified") == 0) {
			x->mtime = parse_time(t);
		}
	}
}

static int
run(struct xctx *x, gk_slice xml)
{
	int r;

	x->x.start = doc_start;
	x->x.end = doc_end;
	x->x.text_cap = TEXT_CAP;
	gk_buf_init(&x->key, TEXT_CAP);
	r = s3_xml_run(&x->x, xml);
	if (r == 0 && !x->root_ok)
		r = GK_ERR_INVALID;
	if (r == 1) {	/* the callback asked to stop: no more pages */
		r = 0;
		if (x->truncated != NULL)
			*x->truncated = 0;
	}
	gk_buf_release(&x->key);
	return r;
}

int
s3_list_parse(gk_slice xml, s3_list_fn fn, void *arg, int *truncated,
    gk_buf *next)
{
	struct xctx x;

	memset(&x, 0, sizeof(x));
	x.kind = X_LIST;
	x.fn = fn;
	x.arg = arg;
	x.truncated = truncated;
	x.next = next;
	*truncated = 0;
	gk_buf_reset(next);
	return run(&x, xml);
}

int
s3_error_parse(gk_slice xml, gk_buf *code, gk_buf *message)
{
	struct xctx x;

	memset(&x, 0, sizeof(x));
	x.kind = X_ERROR;
	x.code = code;
	x.message = message;
	return run(&x, xml);
}

char *
s3_xml_leaf(gk_slice xml, const char *tag)
{
	char open[64], close[64], *out, *q;
	const char *s, *e, *end = (const char *)xml.p + xml.len;
	size_t i, n, ol, cl;

	if (xml.p == NULL || strlen(tag) > 32)
		return NULL;
	ol = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
	cl = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
	if ((s = memmem(xml.p, xml.len, open, ol)) == NULL)
		return NULL;
	s += ol;
	if ((e = memmem(s, (size_t)(end - s), close, cl)) == NULL || e == s ||
	    e - s > 1024 || memchr(s, '<', (size_t)(e - s)) != NULL)
		return NULL;
	n = (size_t)(e - s);
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0, q = out; i < n; i++) {
		if (s[i] == '&') {
			if (n - i < 6 || memcmp(s + i, "&quot;", 6) != 0) {
				free(out);
				return NULL;
			}
			*q++ = '"';
			i += 5;
		} else if ((unsigned char)s[i] < 0x20) {
			free(out);
			return NULL;
		} else {
			*q++ = s[i];
		}
	}
	*q = '\0';
	return out;
}

int
s3_xml_escape(gk_buf *b, gk_slice s)
{
	size_t i;
	int r = 0;

	for (i = 0; i < s.len && r == 0; i++) {
		switch (s.p[i]) {
		case '<': r = gk_buf_append_str(b, "&lt;"); break;
		case '>': r = gk_buf_append_str(b, "&gt;"); break;
		case '&': r = gk_buf_append_str(b, "&amp;"); break;
		case '"': r = gk_buf_append_str(b, "&quot;"); break;
		case '\'': r = gk_buf_append_str(b, "&apos;"); break;
		case '\r': r = gk_buf_append_str(b, "&#13;"); break;
		default: r = gk_buf_append(b, s.p + i, 1);
		}
	}
	return r;
}
