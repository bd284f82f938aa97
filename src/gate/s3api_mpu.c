/*
 * s3api_mpu.c - the S3 endpoint's multipart uploads: Create, the parts'
 * names and markers, Complete and the removal after Abort or Complete.
 *
 * ".gatekeeper-mpu/<id>/meta" holds the object key. On a store that does
 * multipart uploads itself (the s3 store in proxy mode) the meta also
 * holds the store's upload id: each part goes straight into the store's
 * upload (an empty marker object per part records its size and ETag) and
 * Complete is one store call at commit, so the bytes never come back
 * through the gatekeeper. Elsewhere (fs) each part is an object
 * ".gatekeeper-mpu/<id>/pNNNNN" and Complete streams the parts into the
 * object (checking each part's MD5 against the ETag the client lists).
 * Either way the parts and the meta are removed after the commit.
 */
#include "s3api_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define META_MAX 2048

/* ---- multipart bookkeeping -------------------------------------------- */

int
s3api_mpu_name(gk_buf *b, const char *id, const char *what, unsigned part)
{
	gk_buf_reset(b);
	if (part != 0 || what == NULL)
		return gk_buf_printf(b, S3API_MPU_PREFIX "%s/p%05u", id, part);
	return gk_buf_printf(b, S3API_MPU_PREFIX "%s/%s", id, what);
}

int
s3api_part_name_parse(gk_slice name, unsigned *part, uint64_t *size,
    char etag[S3_ETAG_MAX])
{
	const uint8_t *dot;
	gk_slice rest;
	uint64_t num;
	size_t i;

	etag[0] = '\0';
	*size = 0;
	if (name.len < 6 || name.p[0] != 'p' || gk_parse_u64(gk_slice_of(
	    name.p + 1, 5), S3API_MAX_PARTS, &num) != 0 || num == 0)
		return GK_ERR_INVALID;
	*part = (unsigned)num;
	if (name.len == 6)
		return 0;
	if (name.p[6] != '.')
		return GK_ERR_INVALID;
	rest = gk_slice_of(name.p + 7, name.len - 7);
	if ((dot = memchr(rest.p, '.', rest.len)) == NULL ||
	    gk_parse_u64(gk_slice_of(rest.p, (size_t)(dot - rest.p)),
	    UINT64_MAX, size) != 0)
		return GK_ERR_INVALID;
	rest = gk_slice_of(dot + 1, rest.len - (size_t)(dot + 1 - rest.p));
	if (rest.len == 0 || rest.len % 2 != 0 ||
	    rest.len / 2 >= S3_ETAG_MAX)
		return GK_ERR_INVALID;
	for (i = 0; i < rest.len / 2; i++) {
		int hi = gk_hex_val(rest.p[2 * i]), lo = gk_hex_val(
		    rest.p[2 * i + 1]);

		if (hi < 0 || lo < 0 || (hi << 4 | lo) < 0x20 ||
		    (hi << 4 | lo) > 0x7e)
			return GK_ERR_INVALID;
		etag[i] = (char)(hi << 4 | lo);
	}
	etag[i] = '\0';
	return 0;
}

int
s3api_mpu_open(gate_s3 *s, gk_slice id)
{
	gk_store_reader *rd = NULL;
	gk_buf name, key;
	uint64_t size = 0;
	size_t got = 0;
	uint8_t buf[META_MAX];
	size_t i;
	int r;

	if (id.len != 32)
		return GK_ERR_NOT_FOUND;
	for (i = 0; i < 32; i++) {
		if (gk_hex_val(id.p[i]) < 0 || (id.p[i] >= 'A' &&
		    id.p[i] <= 'F'))
			return GK_ERR_NOT_FOUND;
	}
	memcpy(s->upload_id, id.p, 32);
	s->upload_id[32] = '\0';
	gk_buf_init(&name, 256);
	gk_buf_init(&key, META_MAX + 8);
	if ((r = s3api_mpu_name(&name, s->upload_id, "meta", 0)) != 0)
		goto out;
	r = store_get_open(s->app->store, gk_slice_of(name.data, name.len),
	    &rd, &size, NULL);
	if (r != 0)
		goto out;
	if (size == 0 || size > META_MAX) {
		r = GK_ERR_NOT_FOUND;
		goto out;
	}
	while (key.len < size) {
		if ((r = store_reader_read(rd, key.len, buf, sizeof(buf),
		    &got)) != 0)
			goto out;
		if (got == 0 || (r = gk_buf_append(&key, buf, got)) != 0) {
			r = r != 0 ? r : GK_ERR_INTEGRITY;
			goto out;
		}
	}
	/* "<key>" or "<key>\0<the store's upload id>" */
	gk_buf_reset(&s->store_upload);
	s->native = 0;
	{
		const uint8_t *nul = memchr(key.data, '\0', key.len);

		if (nul != NULL) {
			size_t kl = (size_t)(nul - key.data);

			if (kl == 0 || key.len - kl - 1 == 0 ||
			    (r = gk_buf_append(&s->store_upload, nul + 1,
			    key.len - kl - 1)) != 0) {
				r = r != 0 ? r : GK_ERR_NOT_FOUND;
				goto out;
			}
			s->native = 1;
			key.len = kl;
		}
	}
	if (s->has_key) {
		if (!gk_slice_eq(gk_slice_of(key.data, key.len),
		    gk_slice_of(s->key.data, s->key.len))) {
			r = GK_ERR_NOT_FOUND;
			goto out;
		}
	} else {
		gk_buf_reset(&s->key);
		if ((r = gk_buf_append(&s->key, key.data, key.len)) != 0)
			goto out;
	}
	r = s3api_in_scope(s, gk_slice_of(key.data, key.len), GRANT_OP_PUT |
	    GRANT_OP_LIST | GRANT_OP_DELETE) ? 0 : GK_ERR_NOT_FOUND;
out:
	store_reader_free(rd);
	gk_buf_release(&name);
	gk_buf_release(&key);
	return r;
}

/* Removes every part and the meta object (best effort). */
static int
collect_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	(void)size;
	(void)mtime;
	if (gk_buf_append(arg, key.p, key.len) != 0 ||
	    gk_buf_append(arg, "", 1) != 0)
		return 1;
	return 0;
}

void
s3api_mpu_remove(gate_s3 *s)
{
	gk_buf name, keys;
	const char *p;

	gk_buf_init(&name, 256);
	gk_buf_init(&keys, 4 * 1024 * 1024);
	if (gk_buf_printf(&name, S3API_MPU_PREFIX "%s/", s->upload_id) == 0 &&
	    store_list_flags(s->app->store, gk_slice_of(name.data, name.len),
	    GK_SLICE_NULL, 0, STORE_LIST_EMPTY, collect_cb, &keys) == 0) {
		for (p = (const char *)keys.data; p != NULL &&
		    p < (const char *)keys.data + keys.len; p += strlen(p) + 1) {
			if (store_delete(s->app->store, gk_slice_str(p)) != 0)
				gk_debug("s3api: part already gone");
		}
	}
	/* the meta object last, so a failure above leaves it listed */
	if (s3api_mpu_name(&name, s->upload_id, "meta", 0) == 0 &&
	    store_delete(s->app->store, gk_slice_of(name.data, name.len)) != 0)
		gk_debug("s3api: upload meta already gone");
	gk_buf_release(&name);
	gk_buf_release(&keys);
}

void
s3api_mpu_create(gate_s3 *s, gk_reply *rep)
{
	uint8_t id[16];
	gk_buf name;
	gk_slice key = gk_slice_of(s->key.data, s->key.len);
	int r;

	gk_buf_init(&name, 256);
	if (gk_random(id, sizeof(id)) != 0) {
		s3api_store_error(s, rep, GK_ERR_INTERNAL);
		goto out;
	}
	gk_hex_encode(id, sizeof(id), s->upload_id);
	s->upload_id[32] = '\0';
	if (store_mpu_native(s->app->store)) {
		/* aborted by gate_s3api_free unless the meta commits */
		if ((r = store_mpu_create(s->app->store, key,
		    &s->store_upload)) != 0) {
			s3api_store_error(s, rep, r);
			goto out;
		}
		s->native = 1;
	}
	if ((r = s3api_mpu_name(&name, s->upload_id, "meta", 0)) != 0 ||
	    s3api_open_writer(s, gk_slice_of(name.data, name.len)) != 0 ||
	    (r = store_writer_write(s->w, key.p, key.len)) != 0 ||
	    (s->native && ((r = store_writer_write(s->w,
	    (const uint8_t *)"", 1)) != 0 || (r = store_writer_write(s->w,
	    s->store_upload.data, s->store_upload.len)) != 0)) ||
	    (r = store_writer_finish(s->w)) != 0) {
		s3api_store_error(s, rep, s->err_status ? GK_ERR_UNAVAILABLE :
		    r);
		s->err_status = 0;
		goto out;
	}
	if (gk_buf_append_str(&rep->body, S3API_XMLHEAD
	    "<InitiateMultipartUploadResult " S3API_XMLNS "><Bucket>") != 0 ||
	    s3_xml_escape(&rep->body,
	    gk_slice_str(s->app->cfg->s3api_bucket)) != 0 ||
	    gk_buf_append_str(&rep->body, "</Bucket><Key>") != 0 ||
	    s3_xml_escape(&rep->body, key) != 0 ||
	    gk_buf_printf(&rep->body, "</Key><UploadId>%s</UploadId>"
	    "</InitiateMultipartUploadResult>", s->upload_id) != 0) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		goto out;
	}
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
out:
	gk_buf_release(&name);
}

struct cctx {
	gate_s3 *s;
	gk_reply *rep;
	unsigned last;
	unsigned n;
	uint64_t last_size;
	EVP_MD_CTX *all;	/* MD5 of the parts' MD5s */
	int done;		/* rep holds a refusal */
};

static int
complete_cb(void *arg, unsigned part, gk_slice etag)
{
	struct cctx *cc = arg;
	gate_s3 *s = cc->s;
	gk_store_reader *rd = NULL;
	EVP_MD_CTX *md = NULL;
	gk_buf name;
	uint64_t size = 0;
	uint8_t raw[16];
	char hex[33];
	int r;

	/* every part but the last at least 5 MiB */
	if (cc->n > 0 && cc->last_size < S3API_MIN_PART) {
		s3api_error(s, cc->rep, 400, "EntityTooSmall", "Your proposed "
		    "upload is smaller than the minimum allowed object size.");
		cc->done = 1;
		return 1;
	}
	if (part <= cc->last) {
		s3api_error(s, cc->rep, 400, "InvalidPartOrder", "The list of "
		    "parts was not in ascending order. The parts list must be "
		    "specified in order of the part number.");
		cc->done = 1;
		return 1;
	}
	if (etag.len >= 2 && etag.p[0] == '"' && etag.p[etag.len - 1] == '"')
		etag = gk_slice_of(etag.p + 1, etag.len - 2);
	gk_buf_init(&name, 256);
	r = s3api_mpu_name(&name, s->upload_id, NULL, part);
	if (r == 0)
		r = store_get_open(s->app->store, gk_slice_of(name.data,
		    name.len), &rd, &size, NULL);
	gk_buf_release(&name);
	if (r == GK_ERR_NOT_FOUND) {
		s3api_error(s, cc->rep, 400, "InvalidPart", "One or more of the "
		    "specified parts could not be found.");
		cc->done = 1;
		return 1;
	}
	if (r != 0)
		goto fail;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1) {
		r = GK_ERR_NOMEM;
		goto fail;
	}
	if ((r = s3api_copy_stream(s, rd, size, md)) != 0 ||
	    (r = s3api_md5_hex(md, hex, raw)) != 0)
		goto fail;
	if (!gk_slice_eq_str(etag, hex)) {
		s3api_error(s, cc->rep, 400, "InvalidPart", "One or more of the "
		    "specified parts could not be found or the specified "
		    "entity tag might not have matched the part's entity "
		    "tag.");
		cc->done = 1;
		r = 1;
		goto out;
	}
	if (EVP_DigestUpdate(cc->all, raw, 16) != 1) {
		r = GK_ERR_INTERNAL;
		goto fail;
	}
	cc->last = part;
	cc->last_size = size;
	cc->n++;
	cc->s->received += size;
	r = 0;
	goto out;
fail:
	s3api_store_error(s, cc->rep, r);
	cc->done = 1;
	r = 1;
out:
	EVP_MD_CTX_free(md);
	store_reader_free(rd);
	return r;
}

/* The CompleteMultipartUploadResult for ETag "<hex>-<n>". */
static void
complete_reply(gate_s3 *s, gk_reply *rep, const char *hex, unsigned n)
{
	gk_slice key = gk_slice_of(s->key.data, s->key.len);

	snprintf(s->etag, sizeof(s->etag), "\"%s-%u\"", hex, n);
	if (gk_buf_append_str(&rep->body, S3API_XMLHEAD
	    "<CompleteMultipartUploadResult " S3API_XMLNS "><Location>") != 0 ||
	    s3_xml_escape(&rep->body, key) != 0 ||
	    gk_buf_append_str(&rep->body, "</Location><Bucket>") != 0 ||
	    s3_xml_escape(&rep->body,
	    gk_slice_str(s->app->cfg->s3api_bucket)) != 0 ||
	    gk_buf_append_str(&rep->body, "</Bucket><Key>") != 0 ||
	    s3_xml_escape(&rep->body, key) != 0 ||
	    gk_buf_printf(&rep->body, "</Key><ETag>&quot;%s-%u&quot;</ETag>"
	    "</CompleteMultipartUploadResult>", hex, n) != 0) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		return;
	}
	s->cleanup_prefix = strdup(s->upload_id);
	rep->status = 200;
	rep->grant = 1;
	rep->bytes = s->received;
	rep->content_type = "application/xml";
}

/* ---- Complete on a store with its own multipart uploads ----------------- */

struct part_info {
	uint64_t size;
	char etag[S3_ETAG_MAX];
	int have;
};

struct nctx {
	gate_s3 *s;
	gk_reply *rep;
	struct part_info *parts;	/* [1..S3API_MAX_PARTS] */
	size_t base;			/* ".gatekeeper-mpu/<id>/" */
	unsigned last, n;
	uint64_t last_size;
	EVP_MD_CTX *all;
	int done;
};

static int
markers_cb(void *arg, gk_slice key, uint64_t size, int64_t mtime)
{
	struct nctx *nc = arg;
	struct part_info pi;
	unsigned num;

	(void)size;
	(void)mtime;
	if (key.len <= nc->base || s3api_part_name_parse(gk_slice_of(
	    key.p + nc->base, key.len - nc->base), &num, &pi.size,
	    pi.etag) != 0 || pi.etag[0] == '\0')
		return 0;
	pi.have = 1;
	nc->parts[num] = pi;
	return 0;
}

static gk_slice
unquote(gk_slice e)
{
	if (e.len >= 2 && e.p[0] == '"' && e.p[e.len - 1] == '"')
		return gk_slice_of(e.p + 1, e.len - 2);
	return e;
}

static int
native_part_cb(void *arg, unsigned part, gk_slice etag)
{
	struct nctx *nc = arg;
	gate_s3 *s = nc->s;
	struct part_info *pi;
	gk_slice want;
	uint8_t raw[16];

	if (nc->n > 0 && nc->last_size < S3API_MIN_PART) {
		s3api_error(s, nc->rep, 400, "EntityTooSmall", "Your proposed "
		    "upload is smaller than the minimum allowed object size.");
		goto refused;
	}
	if (part <= nc->last) {
		s3api_error(s, nc->rep, 400, "InvalidPartOrder", "The list of "
		    "parts was not in ascending order. The parts list must be "
		    "specified in order of the part number.");
		goto refused;
	}
	pi = &nc->parts[part];
	want = unquote(gk_slice_str(pi->etag));
	if (!pi->have || !gk_slice_eq(unquote(etag), want)) {
		s3api_error(s, nc->rep, 400, "InvalidPart", "One or more of the "
		    "specified parts could not be found or the specified "
		    "entity tag might not have matched the part's entity "
		    "tag.");
		goto refused;
	}
	if (gk_buf_printf(&s->complete_xml, "<Part><PartNumber>%u</PartNumber>"
	    "<ETag>", part) != 0 ||
	    s3_xml_escape(&s->complete_xml, gk_slice_str(pi->etag)) != 0 ||
	    gk_buf_append_str(&s->complete_xml, "</ETag></Part>") != 0) {
		s3api_store_error(s, nc->rep, GK_ERR_NOMEM);
		goto refused;
	}
	/* the multipart ETag: MD5 of the parts' MD5s (as S3) */
	if (want.len == 32 && gk_hex_decode(want, raw, sizeof(raw)) == 0) {
		if (EVP_DigestUpdate(nc->all, raw, 16) != 1)
			goto internal;
	} else {
		if (EVP_DigestUpdate(nc->all, want.p, want.len) != 1)
			goto internal;
	}
	nc->last = part;
	nc->last_size = pi->size;
	nc->n++;
	s->received += pi->size;
	return 0;
internal:
	s3api_store_error(s, nc->rep, GK_ERR_INTERNAL);
refused:
	nc->done = 1;
	return 1;
}

/*
 * Checks the client's list against the part markers (one listing) before
 * the audit record; the store's Complete runs at commit.
 */
static void
native_complete(gate_s3 *s, gk_reply *rep)
{
	struct nctx nc;
	gk_buf prefix;
	uint8_t raw[16];
	char hex[33];
	int r;

	memset(&nc, 0, sizeof(nc));
	nc.s = s;
	nc.rep = rep;
	gk_buf_init(&prefix, 256);
	if ((nc.parts = calloc(S3API_MAX_PARTS + 1, sizeof(*nc.parts))) ==
	    NULL || (nc.all = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(nc.all, EVP_md5(), NULL) != 1 ||
	    gk_buf_printf(&prefix, S3API_MPU_PREFIX "%s/p",
	    s->upload_id) != 0) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		goto out;
	}
	nc.base = prefix.len - 1;
	r = store_list_flags(s->app->store, gk_slice_of(prefix.data,
	    prefix.len), GK_SLICE_NULL, 0, STORE_LIST_EMPTY, markers_cb, &nc);
	if (r != 0) {
		s3api_store_error(s, rep, r);
		goto out;
	}
	r = s3_complete_parse(gk_slice_of(s->xml.data, s->xml.len),
	    native_part_cb, &nc);
	if (nc.done)
		goto out;
	if (r != 0) {
		s3api_malformed_xml(s, rep);
		goto out;
	}
	if (s3api_md5_hex(nc.all, hex, raw) != 0) {
		s3api_store_error(s, rep, GK_ERR_INTERNAL);
		goto out;
	}
	complete_reply(s, rep, hex, nc.n);
out:
	free(nc.parts);
	EVP_MD_CTX_free(nc.all);
	gk_buf_release(&prefix);
}

void
s3api_mpu_complete(gate_s3 *s, gk_reply *rep)
{
	struct cctx cc;
	uint8_t raw[16];
	char hex[33];
	gk_slice key = gk_slice_of(s->key.data, s->key.len);
	int r;

	memset(&cc, 0, sizeof(cc));
	cc.s = s;
	cc.rep = rep;
	if (s3api_mpu_open(s, s3api_qv(s, "uploadId")) != 0) {
		s3api_error(s, rep, 404, "NoSuchUpload", "The specified upload "
		    "does not exist.");
		return;
	}
	EVP_MD_CTX_free(s->md5);
	s->md5 = NULL;	/* the whole object's MD5 is not the ETag here */
	s->received = 0;
	if (s->native) {
		native_complete(s, rep);
		return;
	}
	if ((cc.all = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(cc.all, EVP_md5(), NULL) != 1 ||
	    s3api_open_writer(s, key) != 0) {
		s->err_status = 0;
		s3api_store_error(s, rep, GK_ERR_UNAVAILABLE);
		goto out;
	}
	r = s3_complete_parse(gk_slice_of(s->xml.data, s->xml.len),
	    complete_cb, &cc);
	if (cc.done)
		goto out;
	if (r != 0) {
		s3api_malformed_xml(s, rep);
		goto out;
	}
	if ((r = store_writer_finish(s->w)) != 0 ||
	    (r = s3api_md5_hex(cc.all, hex, raw)) != 0) {
		s3api_store_error(s, rep, r);
		goto out;
	}
	complete_reply(s, rep, hex, cc.n);
out:
	EVP_MD_CTX_free(cc.all);
}

/*
 * The empty marker of a part the store holds; older markers of the same
 * part number (a part uploaded again) are removed.
 */
int
s3api_mpu_part_marker(gate_s3 *s)
{
	gk_buf name, keys;
	gk_store_writer *w = NULL;
	const char *e = store_writer_etag(s->w), *p;
	size_t i;
	int r;

	gk_buf_init(&name, 1024);
	gk_buf_init(&keys, 64 * 1024);
	r = gk_buf_printf(&name, S3API_MPU_PREFIX "%s/p%05u.", s->upload_id,
	    s->part);
	if (r == 0)
		r = store_list_flags(s->app->store, gk_slice_of(name.data,
		    name.len), GK_SLICE_NULL, 0, STORE_LIST_EMPTY, collect_cb,
		    &keys);
	if (r == 0)
		r = gk_buf_printf(&name, "%llu.",
		    (unsigned long long)s->received);
	for (i = 0; r == 0 && e[i] != '\0'; i++)
		r = gk_buf_printf(&name, "%02x", (unsigned)(uint8_t)e[i]);
	if (r == 0)
		r = store_put_begin(s->app->store, gk_slice_of(name.data,
		    name.len), 0, &w);
	if (r == 0)
		r = store_writer_commit(w);
	store_writer_free(w);
	for (p = (const char *)keys.data; r == 0 && p != NULL &&
	    p < (const char *)keys.data + keys.len; p += strlen(p) + 1) {
		if (strlen(p) != name.len || memcmp(p, name.data,
		    name.len) != 0)
			(void)!store_delete(s->app->store, gk_slice_str(p));
	}
	gk_buf_release(&name);
	gk_buf_release(&keys);
	return r;
}

/* The store refused to complete: S3's own refusals pass through. */
void
s3api_mpu_complete_failed(gate_s3 *s, gk_reply *rep, int r)
{
	static const char *const codes[] = { "InvalidPart", "InvalidPartOrder",
	    "EntityTooSmall" };
	const char *code = s3_last_code();
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(codes); i++) {
		if (strcmp(code, codes[i]) == 0) {
			s3api_error(s, rep, 400, codes[i], "The store refused "
			    "the parts list.");
			return;
		}
	}
	if (strcmp(code, "NoSuchUpload") == 0) {
		s3api_error(s, rep, 404, "NoSuchUpload", "The specified upload "
		    "does not exist.");
		return;
	}
	s3api_store_error(s, rep, r);
}
