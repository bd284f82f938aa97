/*
 * xml_body.c - the XML request bodies of the S3-compatible endpoint
 * (DeleteObjects, CompleteMultipartUpload), parsed with xml.c's expat
 * frame. Untrusted:
 * the depth, text and item counts are bounded, DOCTYPEs (and so entity
 * declarations) are refused.
 */
#include "s3_int.h"

#include <string.h>

#define TEXT_CAP (4u * 1024)
#define DEPTH_MAX 8

enum { B_DELETE = 1, B_COMPLETE = 2 };

struct bctx {
	s3_xml x;		/* first */
	int kind;
	int in_item;
	gk_buf key;		/* Key / ETag */
	uint64_t part;
	int have_key, have_part;
	size_t n;
	int *quiet;
	s3_delete_fn dfn;
	s3_part_fn pfn;
	void *arg;
};

static void
body_start(s3_xml *sx, const char *n)
{
	struct bctx *x = (struct bctx *)sx;

	if (sx->depth == 1) {
		if (strcmp(n, x->kind == B_DELETE ? "Delete" :
		    "CompleteMultipartUpload") != 0)
			s3_xml_fail(sx, GK_ERR_INVALID);
		return;
	}
	if (sx->depth == 2 && strcmp(n, x->kind == B_DELETE ? "Object" :
	    "Part") == 0) {
		if (x->n == (x->kind == B_DELETE ? S3_DELETE_KEYS_MAX :
		    S3_BODY_ITEMS_MAX)) {
			s3_xml_fail(sx, GK_ERR_TOO_LARGE);
			return;
		}
		x->in_item = 1;
		x->have_key = x->have_part = 0;
		gk_buf_reset(&x->key);
	}
}

static void
body_end(s3_xml *sx, const char *n, gk_slice t)
{
	struct bctx *x = (struct bctx *)sx;
	int r;

	if (sx->depth == 2 && x->kind == B_DELETE &&
	    strcmp(n, "Quiet") == 0) {
		*x->quiet = gk_slice_eq_str(t, "true");
	} else if (sx->depth == 2 && x->in_item) {
		x->in_item = 0;
		x->n++;
		if (x->kind == B_DELETE) {
			if (!x->have_key)
				s3_xml_fail(sx, GK_ERR_INVALID);
			else if ((r = x->dfn(x->arg, gk_slice_of(x->key.data,
			    x->key.len))) != 0)
				s3_xml_fail(sx, r);
		} else {
			if (!x->have_key || !x->have_part)
				s3_xml_fail(sx, GK_ERR_INVALID);
			else if ((r = x->pfn(x->arg, (unsigned)x->part,
			    gk_slice_of(x->key.data, x->key.len))) != 0)
				s3_xml_fail(sx, r);
		}
	} else if (sx->depth == 3 && x->in_item) {
		if (strcmp(n, x->kind == B_DELETE ? "Key" : "ETag") == 0) {
			if (x->have_key) {
				s3_xml_fail(sx, GK_ERR_INVALID);
			} else {
				gk_buf_reset(&x->key);
				if ((r = gk_buf_append(&x->key, t.p,
				    t.len)) != 0)
					s3_xml_fail(sx, r);
				x->have_key = 1;
			}
		} else if (x->kind == B_DELETE &&
		    strcmp(n, "VersionId") == 0) {
			/* no versions are kept: another version must not
			 * delete the current object */
			if (!gk_slice_eq_str(t, "null"))
				s3_xml_fail(sx, GK_ERR_DENIED);
		} else if (x->kind == B_COMPLETE &&
		    strcmp(n, "PartNumber") == 0) {
			if (x->have_part || gk_parse_u64(t, 10000,
			    &x->part) != 0 || x->part == 0)
				s3_xml_fail(sx, GK_ERR_INVALID);
			x->have_part = 1;
		}
	}
}

static int
run(struct bctx *x, gk_slice xml)
{
	int r;

	if (xml.len > S3_BODY_XML_MAX)
		return GK_ERR_TOO_LARGE;
	x->x.start = body_start;
	x->x.end = body_end;
	x->x.depth_max = DEPTH_MAX;
	x->x.no_doctype = 1;
	x->x.text_cap = TEXT_CAP;
	gk_buf_init(&x->key, TEXT_CAP);
	r = s3_xml_run(&x->x, xml);
	if (r == 0 && x->n == 0)
		r = GK_ERR_INVALID;
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
