/*
 * xml_body.c - the XML request bodies of the S3-compatible endpoint
 * (DeleteObjects, CompleteMultipartUpload), parsed with expat. Untrusted:
 * the depth, text and item counts are bounded, DOCTYPEs (and so entity
 * declarations) are refused.
 */
#include "s3.h"

#include <expat.h>
#include <string.h>

#define TEXT_CAP (4u * 1024)
#define DEPTH_MAX 8

enum { B_DELETE = 1, B_COMPLETE = 2 };

struct bctx {
	XML_Parser p;
	int kind;
	int depth;
	int in_item;
	gk_buf text;
	gk_buf key;		/* Key / ETag */
	uint64_t part;
	int have_key, have_part;
	size_t n;
	int *quiet;
	s3_delete_fn dfn;
	s3_part_fn pfn;
	void *arg;
	int r;
};

static const char *
local(const char *name)
{
	const char *sp = strrchr(name, ' ');

	return sp ? sp + 1 : name;
}

static void
fail(struct bctx *x, int r)
{
	if (x->r == 0)
		x->r = r;
	XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct bctx *x = ud;
	const char *n = local(name);

	(void)attrs;
	if (++x->depth > DEPTH_MAX) {
		fail(x, GK_ERR_INVALID);
		return;
	}
	gk_buf_reset(&x->text);
	if (x->depth == 1) {
		if (strcmp(n, x->kind == B_DELETE ? "Delete" :
		    "CompleteMultipartUpload") != 0)
			fail(x, GK_ERR_INVALID);
		return;
	}
	if (x->depth == 2 && strcmp(n, x->kind == B_DELETE ? "Object" :
	    "Part") == 0) {
		if (x->n == S3_BODY_ITEMS_MAX) {
			fail(x, GK_ERR_TOO_LARGE);
			return;
		}
		x->in_item = 1;
		x->have_key = x->have_part = 0;
		gk_buf_reset(&x->key);
	}
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
	struct bctx *x = ud;
	const char *n = local(name);
	gk_slice t = gk_slice_of(x->text.data, x->text.len);
	int r;

	if (x->depth == 2 && x->kind == B_DELETE &&
	    strcmp(n, "Quiet") == 0) {
		*x->quiet = gk_slice_eq_str(t, "true");
	} else if (x->depth == 2 && x->in_item) {
		x->in_item = 0;
		x->n++;
		if (x->kind == B_DELETE) {
			if (!x->have_key)
				fail(x, GK_ERR_INVALID);
			else if ((r = x->dfn(x->arg, gk_slice_of(x->key.data,
			    x->key.len))) != 0)
				fail(x, r);
		} else {
			if (!x->have_key || !x->have_part)
				fail(x, GK_ERR_INVALID);
			else if ((r = x->pfn(x->arg, (unsigned)x->part,
			    gk_slice_of(x->key.data, x->key.len))) != 0)
				fail(x, r);
		}
	} else if (x->depth == 3 && x->in_item) {
		if (strcmp(n, x->kind == B_DELETE ? "Key" : "ETag") == 0) {
			if (x->have_key) {
				fail(x, GK_ERR_INVALID);
			} else {
				gk_buf_reset(&x->key);
				if ((r = gk_buf_append(&x->key, t.p,
				    t.len)) != 0)
					fail(x, r);
				x->have_key = 1;
			}
		} else if (x->kind == B_COMPLETE &&
		    strcmp(n, "PartNumber") == 0) {
			if (x->have_part || gk_parse_u64(t, 10000,
			    &x->part) != 0 || x->part == 0)
				fail(x, GK_ERR_INVALID);
			x->have_part = 1;
		}
	}
	gk_buf_reset(&x->text);
	x->depth--;
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
	struct bctx *x = ud;

	if (len > 0 && gk_buf_append(&x->text, s, (size_t)len) != 0)
		fail(x, GK_ERR_TOO_LARGE);
}

static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	fail(ud, GK_ERR_INVALID);
}

static int
run(struct bctx *x, gk_slice xml)
{
	int r;

	if (xml.len > S3_BODY_XML_MAX)
		return GK_ERR_TOO_LARGE;
	if ((x->p = XML_ParserCreateNS("UTF-8", ' ')) == NULL)
		return GK_ERR_NOMEM;
	gk_buf_init(&x->text, TEXT_CAP);
	gk_buf_init(&x->key, TEXT_CAP);
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	if (XML_Parse(x->p, xml.p != NULL ? (const char *)xml.p : "",
	    (int)xml.len, XML_TRUE) == XML_STATUS_ERROR && x->r == 0)
		x->r = GK_ERR_INVALID;
	r = x->r;
	if (r == 0 && x->n == 0)
		r = GK_ERR_INVALID;
	XML_ParserFree(x->p);
	gk_buf_release(&x->text);
	gk_buf_release(&x->key);
	return r;
}

int
s3_delete_parse(gk_slice xml, s3_delete_fn fn, void *arg, int *quiet)
{
	struct bctx x;

	memset(&x, 0, sizeof(x));
	x.kind = B_DELETE;
	x.dfn = fn;
	x.arg = arg;
	x.quiet = quiet;
	*quiet = 0;
	return run(&x, xml);
}

int
s3_complete_parse(gk_slice xml, s3_part_fn fn, void *arg)
{
	struct bctx x;
	int q;

	memset(&x, 0, sizeof(x));
	x.kind = B_COMPLETE;
	x.pfn = fn;
	x.arg = arg;
	x.quiet = &q;
	return run(&x, xml);
}
