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
#define XMLNS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define XMLHEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

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
		return s3api_xml_text(b, t);
	gk_buf_init(&e, 16384);
	r = gk_pct_encode(t, 1, &e);
	if (r == 0)
		r = s3api_xml_text(b, gk_slice_of(e.data, e.len));
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
		r = store_list(s->app->store, sp, start, 0, list_cb, &lc);
		if (r == 0 && lc.r != 0)
			r = lc.r;
		if (r != 0) {
			s3api_store_error(s, rep, r);
			goto out;
		}
	}
	rep->body.cap = LIST_CAP + 64 * 1024;
	if ((r = gk_buf_append_str(b, XMLHEAD "<ListBucketResult " XMLNS
	    "><Name>")) != 0 ||
	    (r = s3api_xml_text(b, gk_slice_str(cfg->s3api_bucket))) != 0 ||
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
		    (r = s3api_xml_text(b, qv(s, "continuation-token"))) != 0 ||
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
	if ((r = gk_buf_append(b, items.data, items.len)) != 0 ||
	    (r = gk_buf_append_str(b, "</ListBucketResult>")) != 0)
		goto fail;
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
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
	if (gk_buf_append_str(b, XMLHEAD "<ListAllMyBucketsResult " XMLNS
	    "><Owner><ID>") != 0 ||
	    gk_buf_append_str(b, s->grant.id) != 0 ||
	    gk_buf_append_str(b, "</ID><DisplayName>") != 0 ||
	    s3api_xml_text(b, gk_slice_str(s->grant.name)) != 0 ||
	    gk_buf_append_str(b, "</DisplayName></Owner><Buckets><Bucket>"
	    "<Name>") != 0 ||
	    s3api_xml_text(b, gk_slice_str(cfg->s3api_bucket)) != 0 ||
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

	if (gk_buf_append_str(b, XMLHEAD "<LocationConstraint " XMLNS ">") ||
	    (strcmp(region, "us-east-1") != 0 &&
	    s3api_xml_text(b, gk_slice_str(region)) != 0) ||
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
	unsigned n;
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
	gk_slice name = gk_slice_of(key.p + pc->base, key.len - pc->base);
	uint64_t num;
	char t[40], hex[33];

	/* "p00001" */
	if (name.len != 1 + 5 || name.p[0] != 'p' ||
	    gk_parse_u64(gk_slice_of(name.p + 1, 5), 10000, &num) != 0)
		return 0;
	if ((pc->r = part_md5(pc->st, key, hex)) != 0)
		return pc->r == GK_ERR_NOT_FOUND ? (pc->r = 0) : pc->r;
	s3api_time(mtime, t, sizeof(t));
	pc->n++;
	if ((pc->r = gk_buf_printf(pc->b, "<Part><PartNumber>%u</PartNumber>"
	    "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
	    "<Size>%llu</Size></Part>", (unsigned)num, t, hex,
	    (unsigned long long)size)) != 0)
		return pc->r;
	return 0;
}

static void
list_parts(gate_s3 *s, gk_reply *rep)
{
	gk_buf *b = &rep->body, prefix, items;
	struct pctx pc;
	int r;

	gk_buf_init(&prefix, 256);
	gk_buf_init(&items, LIST_CAP);
	memset(&pc, 0, sizeof(pc));
	if ((r = s3api_mpu_open(s, qv(s, "uploadId"))) != 0) {
		if (r == GK_ERR_NOT_FOUND)
			s3api_error(s, rep, 404, "NoSuchUpload", "The "
			    "specified upload does not exist.");
		else
			s3api_store_error(s, rep, r);
		goto out;
	}
	if ((r = gk_buf_printf(&prefix, S3API_MPU_PREFIX "%s/p",
	    s->upload_id)) != 0)
		goto fail;
	pc.b = &items;
	pc.st = s->app->store;
	pc.base = prefix.len - 1;
	r = store_list(s->app->store, gk_slice_of(prefix.data, prefix.len),
	    GK_SLICE_NULL, 0, parts_cb, &pc);
	if (r == 0)
		r = pc.r;
	if (r != 0)
		goto fail;
	rep->body.cap = LIST_CAP + 64 * 1024;
	if ((r = gk_buf_append_str(b, XMLHEAD "<ListPartsResult " XMLNS
	    "><Bucket>")) != 0 ||
	    (r = s3api_xml_text(b, gk_slice_str(s->app->cfg->s3api_bucket))) ||
	    (r = gk_buf_append_str(b, "</Bucket><Key>")) != 0 ||
	    (r = s3api_xml_text(b, gk_slice_of(s->key.data, s->key.len))) ||
	    (r = gk_buf_printf(b, "</Key><UploadId>%s</UploadId>"
	    "<StorageClass>STANDARD</StorageClass><MaxParts>%u</MaxParts>"
	    "<IsTruncated>false</IsTruncated>", s->upload_id,
	    S3API_MAX_PARTS)) != 0 ||
	    (r = gk_buf_append(b, items.data, items.len)) != 0 ||
	    (r = gk_buf_append_str(b, "</ListPartsResult>")) != 0)
		goto fail;
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
	goto out;
fail:
	s3api_store_error(s, rep, r);
out:
	gk_buf_release(&prefix);
	gk_buf_release(&items);
}

struct uctx {
	gate_s3 *s;
	gk_buf *b;
	gk_slice prefix;
	unsigned n;
	int r;
};

static int
uploads_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct uctx *uc = arg;
	gate_s3 *s = uc->s;
	gk_slice id;
	char t[40];
	int r;

	(void)size;
	/* ".gatekeeper-mpu/<32 hex>/meta" */
	if (key.len != strlen(S3API_MPU_PREFIX) + 32 + 5 ||
	    memcmp(key.p + key.len - 5, "/meta", 5) != 0 || uc->n >= 1000)
		return 0;
	id = gk_slice_of(key.p + strlen(S3API_MPU_PREFIX), 32);
	if (s3api_mpu_open(s, id) != 0)
		return 0;	/* gone, or another grant's key */
	if (!gk_slice_has_prefix(gk_slice_of(s->key.data, s->key.len),
	    uc->prefix))
		return 0;
	s3api_time(mtime, t, sizeof(t));
	uc->n++;
	if ((r = gk_buf_append_str(uc->b, "<Upload><Key>")) != 0 ||
	    (r = s3api_xml_text(uc->b, gk_slice_of(s->key.data,
	    s->key.len))) != 0 ||
	    (r = gk_buf_printf(uc->b, "</Key><UploadId>%s</UploadId>"
	    "<Initiated>%s</Initiated><StorageClass>STANDARD</StorageClass>"
	    "</Upload>", s->upload_id, t)) != 0) {
		uc->r = r;
		return r;
	}
	return 0;
}

static void
list_uploads(gate_s3 *s, gk_reply *rep)
{
	gk_buf *b = &rep->body, items;
	struct uctx uc;
	int r;

	gk_buf_init(&items, LIST_CAP);
	memset(&uc, 0, sizeof(uc));
	uc.s = s;
	uc.b = &items;
	uc.prefix = qv(s, "prefix");
	r = store_list(s->app->store, gk_slice_str(S3API_MPU_PREFIX),
	    GK_SLICE_NULL, 0, uploads_cb, &uc);
	if (r == 0)
		r = uc.r;
	s->has_key = 0;
	if (r != 0)
		goto fail;
	rep->body.cap = LIST_CAP + 64 * 1024;
	if ((r = gk_buf_append_str(b, XMLHEAD "<ListMultipartUploadsResult "
	    XMLNS "><Bucket>")) != 0 ||
	    (r = s3api_xml_text(b, gk_slice_str(s->app->cfg->s3api_bucket))) ||
	    (r = gk_buf_append_str(b, "</Bucket><KeyMarker></KeyMarker>"
	    "<UploadIdMarker></UploadIdMarker><Prefix>")) != 0 ||
	    (r = s3api_xml_text(b, uc.prefix)) != 0 ||
	    (r = gk_buf_append_str(b, "</Prefix><MaxUploads>1000</MaxUploads>"
	    "<IsTruncated>false</IsTruncated>")) != 0 ||
	    (r = gk_buf_append(b, items.data, items.len)) != 0 ||
	    (r = gk_buf_append_str(b, "</ListMultipartUploadsResult>")) != 0)
		goto fail;
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
	goto out;
fail:
	s3api_store_error(s, rep, r);
out:
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
