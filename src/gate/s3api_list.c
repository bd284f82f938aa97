/*
 * s3api_list.c - the S3 endpoint's listings: ListObjectsV2 (prefix,
 * delimiter, continuation, start-after, max-keys, encoding-type=url),
 * ListObjects (v1, marker), ListBuckets, GetBucketLocation, ListParts
 * and ListMultipartUploads. A listing never reaches outside the grant's
 * prefix: the store is asked only for keys under it.
 */
#include "s3api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#include <openssl/evp.h>

#define LIST_CAP (16u * 1024 * 1024)

struct lctx {
	gate_s3 *s;
	gk_buf *b;
	gk_slice prefix;	/* as requested */
	gk_slice delim;
	gk_slice skip;		/* resume after this common prefix */
	unsigned max, n;
	int truncated;
	int url;
	gk_buf last_cp;
	gk_buf next;		/* the last item listed, 'K' or 'P' + text */
	int r;
};

/* Text as S3 shows it: URL-encoded with encoding-type=url. */
static int
put_text(gk_buf *b, gk_slice t, int url)
{
	gk_buf e;
	int r;

	if (!url)
		return s3_xml_escape(b, t);
	gk_buf_init(&e, 16384);
	r = gk_pct_encode(t, 1, &e);
	if (r == 0)
		r = s3_xml_escape(b, gk_slice_of(e.data, e.len));
	gk_buf_release(&e);
	return r;
}

static int
list_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct lctx *lc = arg;
	gk_buf *b = lc->b;
	gk_slice cp = GK_SLICE_NULL;
	const uint8_t *d;
	char t[40], etag[64];
	int r;

	if (gk_slice_has_prefix(key, gk_slice_str(S3API_MPU_PREFIX)) ||
	    !gk_slice_has_prefix(key, lc->prefix) ||
	    (lc->skip.len > 0 && gk_slice_has_prefix(key, lc->skip)))
		return 0;
	if (lc->delim.len > 0 && key.len > lc->prefix.len) {
		d = memmem(key.p + lc->prefix.len, key.len - lc->prefix.len,
		    lc->delim.p, lc->delim.len);
		if (d != NULL) {
			cp = gk_slice_of(key.p, (size_t)(d - key.p) +
			    lc->delim.len);
			if (gk_slice_eq(cp, gk_slice_of(lc->last_cp.data,
			    lc->last_cp.len)))
				return 0;
		}
	}
	if (lc->n >= lc->max) {
		lc->truncated = 1;
		return 1;
	}
	lc->n++;
	gk_buf_reset(&lc->next);
	if (cp.len > 0) {
		gk_buf_reset(&lc->last_cp);
		if ((r = gk_buf_append(&lc->last_cp, cp.p, cp.len)) != 0 ||
		    (r = gk_buf_append(&lc->next, "P", 1)) != 0 ||
		    (r = gk_buf_append(&lc->next, cp.p, cp.len)) != 0 ||
		    (r = gk_buf_append_str(b, "<CommonPrefixes><Prefix>")) != 0 ||
		    (r = put_text(b, cp, lc->url)) != 0 ||
		    (r = gk_buf_append_str(b, "</Prefix></CommonPrefixes>")) != 0)
			goto fail;
		return 0;
	}
	s3api_time(mtime, t, sizeof(t));
	s3api_etag(key, size, mtime, etag, sizeof(etag));
	if ((r = gk_buf_append(&lc->next, "K", 1)) != 0 ||
	    (r = gk_buf_append(&lc->next, key.p, key.len)) != 0 ||
	    (r = gk_buf_append_str(b, "<Contents><Key>")) != 0 ||
	    (r = put_text(b, key, lc->url)) != 0 ||
	    (r = gk_buf_printf(b, "</Key><LastModified>%s</LastModified>"
	    "<ETag>&quot;%.*s&quot;</ETag><Size>%llu</Size>"
	    "<StorageClass>STANDARD</StorageClass></Contents>", t,
	    (int)(strlen(etag) - 2), etag + 1,
	    (unsigned long long)size)) != 0)
		goto fail;
	return 0;
fail:
	lc->r = r;
	return r;
}

/* The reply's tail: the items, the closing tag, 200 application/xml. */
int
s3api_list_reply(gk_reply *rep, const gk_buf *items, const char *close)
{
	int r;

	if ((r = gk_buf_append(&rep->body, items->data, items->len)) != 0 ||
	    (r = gk_buf_append_str(&rep->body, close)) != 0)
		return r;
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
	return 0;
}

static gk_slice
qv(const gate_s3 *s, const char *name)
{
	const gk_buf *v = s3api_q(s, name);

	return v != NULL ? gk_slice_of(v->data, v->len) : GK_SLICE_NULL;
}

static void
objects(gate_s3 *s, gk_reply *rep, int v2)
{
	const gate_settings *cfg = s->app->cfg;
	gk_slice gp = gk_slice_str(s->grant.prefix), sp, start, mk;
	gk_buf *b = &rep->body, tok, items;
	struct lctx lc;
	uint64_t max = 1000;
	int r;

	memset(&lc, 0, sizeof(lc));
	gk_buf_init(&tok, 8192);
	gk_buf_init(&items, LIST_CAP);
	gk_buf_init(&lc.last_cp, 4096);
	gk_buf_init(&lc.next, 4096);
	lc.s = s;
	lc.b = &items;
	lc.prefix = qv(s, "prefix");
	lc.delim = qv(s, "delimiter");
	lc.url = gk_slice_eq_str(qv(s, "encoding-type"), "url");
	if (s3api_q(s, "encoding-type") != NULL && !lc.url) {
		s3api_error(s, rep, 400, "InvalidArgument", "Invalid Encoding "
		    "Method specified in Request");
		goto out;
	}
	if (s3api_q(s, "max-keys") != NULL &&
	    gk_parse_u64(qv(s, "max-keys"), INT32_MAX, &max) != 0) {
		s3api_error(s, rep, 400, "InvalidArgument", "Provided max-keys "
		    "not an integer or within integer range");
		goto out;
	}
	lc.max = max > 1000 ? 1000 : (unsigned)max;
	/* the store is asked for keys under both prefixes only */
	if (gk_slice_has_prefix(gp, lc.prefix))
		sp = gp;
	else if (gk_slice_has_prefix(lc.prefix, gp))
		sp = lc.prefix;
	else {
		s3api_error(s, rep, 403, "AccessDenied", "Access Denied (the "
		    "prefix is outside the grant's prefix)");
		goto out;
	}
	start = GK_SLICE_NULL;
	mk = v2 ? qv(s, "start-after") : qv(s, "marker");
	if (v2 && s3api_q(s, "continuation-token") != NULL) {
		if (gk_b64url_decode(qv(s, "continuation-token"), &tok) != 0 ||
		    tok.len < 1 || (tok.data[0] != 'K' && tok.data[0] != 'P')) {
			s3api_error(s, rep, 400, "InvalidArgument", "The "
			    "continuation token provided is incorrect");
			goto out;
		}
		start = gk_slice_of(tok.data + 1, tok.len - 1);
		if (tok.data[0] == 'P')
			lc.skip = start;
	} else if (mk.len > 0) {
		start = mk;
	}
	if (lc.max > 0) {
		r = store_list_flags(s->app->store, sp, start, 0,
		    STORE_LIST_EMPTY, list_cb, &lc);
		if (r == 0 && lc.r != 0)
			r = lc.r;
		if (r != 0) {
			s3api_store_error(s, rep, r);
			goto out;
		}
	}
	rep->body.cap = LIST_CAP + 64 * 1024;
	if ((r = gk_buf_append_str(b, S3API_XMLHEAD "<ListBucketResult " S3API_XMLNS
	    "><Name>")) != 0 ||
	    (r = s3_xml_escape(b, gk_slice_str(cfg->s3api_bucket))) != 0 ||
	    (r = gk_buf_append_str(b, "</Name><Prefix>")) != 0 ||
	    (r = put_text(b, lc.prefix, lc.url)) != 0 ||
	    (r = gk_buf_append_str(b, "</Prefix>")) != 0)
		goto fail;
	if (v2) {
		if ((r = gk_buf_printf(b, "<KeyCount>%u</KeyCount>",
		    lc.n)) != 0)
			goto fail;
		if (s3api_q(s, "continuation-token") != NULL &&
		    ((r = gk_buf_append_str(b, "<ContinuationToken>")) != 0 ||
		    (r = s3_xml_escape(b, qv(s, "continuation-token"))) != 0 ||
		    (r = gk_buf_append_str(b, "</ContinuationToken>")) != 0))
			goto fail;
		if (mk.len > 0 && ((r = gk_buf_append_str(b,
		    "<StartAfter>")) != 0 || (r = put_text(b, mk,
		    lc.url)) != 0 || (r = gk_buf_append_str(b,
		    "</StartAfter>")) != 0))
			goto fail;
	} else if ((r = gk_buf_append_str(b, "<Marker>")) != 0 ||
	    (r = put_text(b, mk, lc.url)) != 0 ||
	    (r = gk_buf_append_str(b, "</Marker>")) != 0) {
		goto fail;
	}
	if ((r = gk_buf_printf(b, "<MaxKeys>%u</MaxKeys>", lc.max)) != 0 ||
	    (lc.delim.len > 0 && ((r = gk_buf_append_str(b,
	    "<Delimiter>")) != 0 || (r = put_text(b, lc.delim, lc.url)) != 0 ||
	    (r = gk_buf_append_str(b, "</Delimiter>")) != 0)) ||
	    (lc.url && (r = gk_buf_append_str(b,
	    "<EncodingType>url</EncodingType>")) != 0) ||
	    (r = gk_buf_printf(b, "<IsTruncated>%s</IsTruncated>",
	    lc.truncated ? "true" : "false")) != 0)
		goto fail;
	if (lc.truncated && lc.next.len > 1) {
		if (v2) {
			if ((r = gk_buf_append_str(b,
			    "<NextContinuationToken>")) != 0 ||
			    (r = gk_b64url_encode(lc.next.data, lc.next.len,
			    b)) != 0 ||
			    (r = gk_buf_append_str(b,
			    "</NextContinuationToken>")) != 0)
				goto fail;
		} else if ((r = gk_buf_append_str(b, "<NextMarker>")) != 0 ||
		    (r = put_text(b, gk_slice_of(lc.next.data + 1,
		    lc.next.len - 1), lc.url)) != 0 ||
		    (r = gk_buf_append_str(b, "</NextMarker>")) != 0) {
			goto fail;
		}
	}
	if ((r = s3api_list_reply(rep, &items, "</ListBucketResult>")) != 0)
		goto fail;
	free(rep->path);
	rep->path = gate_text_copy(sp, 2048);
	goto out;
fail:
	s3api_store_error(s, rep, r);
out:
	gk_buf_release(&tok);
	gk_buf_release(&items);
	gk_buf_release(&lc.last_cp);
	gk_buf_release(&lc.next);
}

static void
buckets(gate_s3 *s, gk_reply *rep)
{
	const gate_settings *cfg = s->app->cfg;
	gk_buf *b = &rep->body;
	char t[40];

	s3api_time(s->grant.created_s, t, sizeof(t));
	if (gk_buf_append_str(b, S3API_XMLHEAD "<ListAllMyBucketsResult " S3API_XMLNS
	    "><Owner><ID>") != 0 ||
	    gk_buf_append_str(b, s->grant.id) != 0 ||
	    gk_buf_append_str(b, "</ID><DisplayName>") != 0 ||
	    s3_xml_escape(b, gk_slice_str(s->grant.name)) != 0 ||
	    gk_buf_append_str(b, "</DisplayName></Owner><Buckets><Bucket>"
	    "<Name>") != 0 ||
	    s3_xml_escape(b, gk_slice_str(cfg->s3api_bucket)) != 0 ||
	    gk_buf_printf(b, "</Name><CreationDate>%s</CreationDate>"
	    "</Bucket></Buckets></ListAllMyBucketsResult>", t) != 0) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		return;
	}
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
}

static void
location(gate_s3 *s, gk_reply *rep)
{
	const char *region = s->app->cfg->s3api_region;
	gk_buf *b = &rep->body;

	if (gk_buf_append_str(b, S3API_XMLHEAD "<LocationConstraint " S3API_XMLNS ">") ||
	    (strcmp(region, "us-east-1") != 0 &&
	    s3_xml_escape(b, gk_slice_str(region)) != 0) ||
	    gk_buf_append_str(b, "</LocationConstraint>") != 0) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		return;
	}
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
}

/* ---- multipart listings ---------------------------------------------------- */

struct pctx {
	gk_store *st;
	gk_buf *b;
	size_t base;		/* length of ".gatekeeper-mpu/<id>/" */
	unsigned marker, max, n, last;
	int truncated;
	int r;
};

/* The MD5 of a stored part (its ETag), read back. */
static int
part_md5(gk_store *st, gk_slice key, char hex[33])
{
	gk_store_reader *rd = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t buf[64 * 1024], d[16];
	uint64_t size = 0, off = 0;
	unsigned n = 0;
	size_t got;
	int r;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1) {
		r = GK_ERR_NOMEM;
		goto out;
	}
	if ((r = store_get_open(st, key, &rd, &size, NULL)) != 0)
		goto out;
	while (off < size) {
		if ((r = store_reader_read(rd, off, buf, sizeof(buf),
		    &got)) != 0)
			goto out;
		if (got == 0) {
			r = GK_ERR_INTEGRITY;
			goto out;
		}
		if (EVP_DigestUpdate(md, buf, got) != 1) {
			r = GK_ERR_INTERNAL;
			goto out;
		}
		off += got;
	}
	if (EVP_DigestFinal_ex(md, d, &n) != 1 || n != 16) {
		r = GK_ERR_INTERNAL;
		goto out;
	}
	gk_hex_encode(d, 16, hex);
	r = 0;
out:
	EVP_MD_CTX_free(md);
	store_reader_free(rd);
	return r;
}

static int
parts_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct pctx *pc = arg;
	char t[40], hex[33], etag[S3_ETAG_MAX];
	uint64_t msize;
	unsigned num;

	if (key.len <= pc->base || s3api_part_name_parse(gk_slice_of(
	    key.p + pc->base, key.len - pc->base), &num, &msize, etag) != 0 ||
	    num <= pc->marker || num == pc->last)
		return 0;
	if (pc->n >= pc->max) {
		pc->truncated = 1;
		return 1;
	}
	if (etag[0] == '\0') {	/* the part's bytes: their MD5 */
		if ((pc->r = part_md5(pc->st, key, hex)) != 0)
			return pc->r == GK_ERR_NOT_FOUND ? (pc->r = 0) : pc->r;
		snprintf(etag, sizeof(etag), "\"%s\"", hex);
	} else {
		size = msize;
	}
	s3api_time(mtime, t, sizeof(t));
	pc->n++;
	pc->last = num;
	if ((pc->r = gk_buf_printf(pc->b, "<Part><PartNumber>%u</PartNumber>"
	    "<LastModified>%s</LastModified><ETag>", num, t)) != 0 ||
	    (pc->r = s3_xml_escape(pc->b, gk_slice_str(etag))) != 0 ||
	    (pc->r = gk_buf_printf(pc->b, "</ETag><Size>%llu</Size></Part>",
	    (unsigned long long)size)) != 0)
		return pc->r;
	return 0;
}

/* An optional integer query parameter in 0..max (absent: dflt). */
static int
q_uint(const gate_s3 *s, const char *name, uint64_t max, uint64_t dflt,
    uint64_t *out)
{
	*out = dflt;
	if (s3api_q(s, name) == NULL)
		return 0;
	return gk_parse_u64(qv(s, name), max, out);
}

static void
list_parts(gate_s3 *s, gk_reply *rep)
{
	gk_buf *b = &rep->body, prefix, items, start;
	struct pctx pc;
	uint64_t max, marker;
	int r;

	gk_buf_init(&prefix, 256);
	gk_buf_init(&start, 256);
	gk_buf_init(&items, LIST_CAP);
	memset(&pc, 0, sizeof(pc));
	if (q_uint(s, "max-parts", INT32_MAX, 1000, &max) != 0 ||
	    q_uint(s, "part-number-marker", INT32_MAX, 0, &marker) != 0) {
		s3api_error(s, rep, 400, "InvalidArgument", "max-parts and "
		    "part-number-marker must be integers from 0 to "
		    "2147483647.");
		goto out;
	}
	if ((r = s3api_mpu_open(s, qv(s, "uploadId"))) != 0) {
		if (r == GK_ERR_NOT_FOUND)
			s3api_error(s, rep, 404, "NoSuchUpload", "The "
			    "specified upload does not exist.");
		else
			s3api_store_error(s, rep, r);
		goto out;
	}
	pc.max = max > 1000 ? 1000 : (unsigned)max;
	pc.marker = marker > S3API_MAX_PARTS ? S3API_MAX_PARTS :
	    (unsigned)marker;
	if ((r = gk_buf_printf(&prefix, S3API_MPU_PREFIX "%s/p",
	    s->upload_id)) != 0 ||
	    (r = gk_buf_printf(&start, S3API_MPU_PREFIX "%s/p%05u",
	    s->upload_id, pc.marker)) != 0)
		goto fail;
	pc.b = &items;
	pc.st = s->app->store;
	pc.base = prefix.len - 1;
	r = store_list_flags(s->app->store, gk_slice_of(prefix.data,
	    prefix.len), pc.marker > 0 ? gk_slice_of(start.data, start.len) :
	    GK_SLICE_NULL, 0, STORE_LIST_EMPTY, parts_cb, &pc);
	if (r == 0)
		r = pc.r;
	if (r != 0)
		goto fail;
	rep->body.cap = LIST_CAP + 64 * 1024;
	if ((r = gk_buf_append_str(b, S3API_XMLHEAD "<ListPartsResult " S3API_XMLNS
	    "><Bucket>")) != 0 ||
	    (r = s3_xml_escape(b, gk_slice_str(s->app->cfg->s3api_bucket))) ||
	    (r = gk_buf_append_str(b, "</Bucket><Key>")) != 0 ||
	    (r = s3_xml_escape(b, gk_slice_of(s->key.data, s->key.len))) ||
	    (r = gk_buf_printf(b, "</Key><UploadId>%s</UploadId>"
	    "<StorageClass>STANDARD</StorageClass><PartNumberMarker>%u"
	    "</PartNumberMarker>", s->upload_id, pc.marker)) != 0 ||
	    (pc.n > 0 && (r = gk_buf_printf(b, "<NextPartNumberMarker>%u"
	    "</NextPartNumberMarker>", pc.last)) != 0) ||
	    (r = gk_buf_printf(b, "<MaxParts>%u</MaxParts><IsTruncated>%s"
	    "</IsTruncated>", pc.max, pc.truncated ? "true" : "false")) != 0)
		goto fail;
	r = s3api_list_reply(rep, &items, "</ListPartsResult>");
	if (r != 0)
		goto fail;
	goto out;
fail:
	s3api_store_error(s, rep, r);
out:
	gk_buf_release(&prefix);
	gk_buf_release(&start);
	gk_buf_release(&items);
}

struct upload_row {
	char *key;
	size_t key_len;
	char id[33];
	int64_t mtime;
};

struct uctx {
	gate_s3 *s;
	gk_slice prefix;
	struct upload_row *rows;
	size_t n, cap;
	int r;
};

static int
uploads_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct uctx *uc = arg;
	gate_s3 *s = uc->s;
	struct upload_row *row;
	gk_slice id;

	(void)size;
	/* ".gatekeeper-mpu/<32 hex>/meta" */
	if (key.len != strlen(S3API_MPU_PREFIX) + 32 + 5 ||
	    memcmp(key.p + key.len - 5, "/meta", 5) != 0)
		return 0;
	id = gk_slice_of(key.p + strlen(S3API_MPU_PREFIX), 32);
	if (s3api_mpu_open(s, id) != 0)
		return 0;	/* gone, or another grant's key */
	if (!gk_slice_has_prefix(gk_slice_of(s->key.data, s->key.len),
	    uc->prefix))
		return 0;
	if (uc->n == uc->cap) {
		size_t cap = uc->cap ? uc->cap * 2 : 64;
		struct upload_row *nr;

		if (cap > 1000000 || (nr = realloc(uc->rows, cap *
		    sizeof(*nr))) == NULL)
			return uc->r = GK_ERR_NOMEM;
		uc->rows = nr;
		uc->cap = cap;
	}
	row = &uc->rows[uc->n];
	if ((row->key = malloc(s->key.len + 1)) == NULL)
		return uc->r = GK_ERR_NOMEM;
	memcpy(row->key, s->key.data, s->key.len);
	row->key[s->key.len] = '\0';
	row->key_len = s->key.len;
	memcpy(row->id, s->upload_id, sizeof(row->id));
	row->mtime = mtime;
	uc->n++;
	return 0;
}

static int
row_cmp(const void *a, const void *b)
{
	const struct upload_row *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* 1 if row comes after the key and upload id markers. */
static int
after_markers(const struct upload_row *row, gk_slice km, gk_slice im)
{
	struct upload_row m;
	char id[33];

	if (km.len == 0)
		return 1;
	m.key = (char *)km.p;
	m.key_len = km.len;
	snprintf(id, sizeof(id), "%.*s", (int)(im.len > 32 ? 32 : im.len),
	    (const char *)im.p);
	memcpy(m.id, id, sizeof(m.id));
	if (im.len == 0) {	/* key-marker alone: keys after it */
		size_t n = row->key_len < km.len ? row->key_len : km.len;
		int c = memcmp(row->key, km.p, n);

		return c > 0 || (c == 0 && row->key_len > km.len);
	}
	return row_cmp(row, &m) > 0;
}

static void
list_uploads(gate_s3 *s, gk_reply *rep)
{
	gk_buf *b = &rep->body, items;
	struct uctx uc;
	gk_slice km = qv(s, "key-marker"), im = qv(s, "upload-id-marker");
	uint64_t max;
	unsigned n = 0;
	size_t i, last = 0;
	char t[40];
	int r, truncated = 0;

	gk_buf_init(&items, LIST_CAP);
	memset(&uc, 0, sizeof(uc));
	s->has_key = 0;
	if (q_uint(s, "max-uploads", INT32_MAX, 1000, &max) != 0) {
		s3api_error(s, rep, 400, "InvalidArgument", "max-uploads must "
		    "be an integer from 0 to 2147483647.");
		goto out;
	}
	if (max > 1000)
		max = 1000;
	uc.s = s;
	uc.prefix = qv(s, "prefix");
	r = store_list(s->app->store, gk_slice_str(S3API_MPU_PREFIX),
	    GK_SLICE_NULL, 0, uploads_cb, &uc);
	if (r == 0)
		r = uc.r;
	s->has_key = 0;
	if (r != 0)
		goto fail;
	if (uc.n > 1)
		qsort(uc.rows, uc.n, sizeof(*uc.rows), row_cmp);
	for (i = 0; i < uc.n; i++) {
		struct upload_row *row = &uc.rows[i];

		if (!after_markers(row, km, im))
			continue;
		if (n >= max) {
			truncated = 1;
			break;
		}
		s3api_time(row->mtime, t, sizeof(t));
		if ((r = gk_buf_append_str(&items, "<Upload><Key>")) != 0 ||
		    (r = s3_xml_escape(&items, gk_slice_of(row->key,
		    row->key_len))) != 0 ||
		    (r = gk_buf_printf(&items, "</Key><UploadId>%s</UploadId>"
		    "<Initiated>%s</Initiated><StorageClass>STANDARD"
		    "</StorageClass></Upload>", row->id, t)) != 0)
			goto fail;
		n++;
		last = i;
	}
	rep->body.cap = LIST_CAP + 64 * 1024;
	if ((r = gk_buf_append_str(b, S3API_XMLHEAD "<ListMultipartUploadsResult "
	    S3API_XMLNS "><Bucket>")) != 0 ||
	    (r = s3_xml_escape(b, gk_slice_str(s->app->cfg->s3api_bucket))) ||
	    (r = gk_buf_append_str(b, "</Bucket><KeyMarker>")) != 0 ||
	    (r = s3_xml_escape(b, km)) != 0 ||
	    (r = gk_buf_append_str(b, "</KeyMarker><UploadIdMarker>")) != 0 ||
	    (r = s3_xml_escape(b, im)) != 0 ||
	    (r = gk_buf_append_str(b, "</UploadIdMarker>")) != 0)
		goto fail;
	if (truncated && ((r = gk_buf_append_str(b, "<NextKeyMarker>")) != 0 ||
	    (r = s3_xml_escape(b, gk_slice_of(uc.rows[last].key,
	    uc.rows[last].key_len))) != 0 ||
	    (r = gk_buf_printf(b, "</NextKeyMarker><NextUploadIdMarker>%s"
	    "</NextUploadIdMarker>", uc.rows[last].id)) != 0))
		goto fail;
	if ((r = gk_buf_append_str(b, "<Prefix>")) != 0 ||
	    (r = s3_xml_escape(b, uc.prefix)) != 0 ||
	    (r = gk_buf_printf(b, "</Prefix><MaxUploads>%u</MaxUploads>"
	    "<IsTruncated>%s</IsTruncated>", (unsigned)max,
	    truncated ? "true" : "false")) != 0)
		goto fail;
	if ((r = s3api_list_reply(rep, &items,
	    "</ListMultipartUploadsResult>")) != 0)
		goto fail;
	goto out;
fail:
	s3api_store_error(s, rep, r);
out:
	for (i = 0; i < uc.n; i++)
		free(uc.rows[i].key);
	free(uc.rows);
	gk_buf_release(&items);
}

void
s3api_list(gate_s3 *s, gk_reply *rep)
{
	switch (s->op) {
	case OP_LIST_BUCKETS:
		buckets(s, rep);
		break;
	case OP_GET_LOCATION:
		location(s, rep);
		break;
	case OP_LIST_V2:
		objects(s, rep, 1);
		break;
	case OP_LIST_V1:
		objects(s, rep, 0);
		break;
	case OP_MPU_LIST_PARTS:
		list_parts(s, rep);
		break;
	case OP_MPU_LIST_UPLOADS:
		list_uploads(s, rep);
		break;
	default:
		s3api_error(s, rep, 501, "NotImplemented", "A header or query "
		    "you provided implies functionality that is not "
		    "implemented.");
	}
}
