/*
 * s3api_write.c - the S3 endpoint's writes: PutObject, CopyObject,
 * DeleteObject(s) and multipart uploads. The body is checked as it
 * arrives (payload hash, chunk signatures, trailing checksum, Content-MD5)
 * into a store writer that stays invisible; the object appears (or a
 * delete happens) only in s3api_write_commit, after the audit record is
 * durable. A refused body leaves nothing behind.
 *
 * Multipart uploads: ".gatekeeper-mpu/<id>/meta" holds the object key.
 * On a store that does multipart uploads itself (the s3 store in proxy
 * mode) the meta also holds the store's upload id: each part goes straight
 * into the store's upload (an empty marker object per part records its
 * size and ETag) and Complete is one store call at commit, so the bytes
 * never come back through the gatekeeper. Elsewhere (fs) each part is an
 * object ".gatekeeper-mpu/<id>/pNNNNN" and Complete streams the parts into
 * the object (checking each part's MD5 against the ETag the client lists).
 * Either way the parts and the meta are removed after the commit.
 */
#include "s3api_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define XMLNS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define XMLHEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define COPY_BLOCK (256u * 1024)
#define META_MAX 2048

static gk_slice
qv(const gate_s3 *s, const char *name)
{
	const gk_buf *v = s3api_q(s, name);

	return v != NULL ? gk_slice_of(v->data, v->len) : GK_SLICE_NULL;
}

static int
hex_md5(EVP_MD_CTX *c, char out[33], uint8_t raw[16])
{
	unsigned n = 0;

	if (EVP_DigestFinal_ex(c, raw, &n) != 1 || n != 16)
		return GK_ERR_INTERNAL;
	gk_hex_encode(raw, 16, out);
	return 0;
}

static void
malformed_xml(gate_s3 *s, gk_reply *rep)
{
	s3api_error(s, rep, 400, "MalformedXML", "The XML you provided was "
	    "not well-formed or did not validate against our published "
	    "schema");
}

/* ---- multipart bookkeeping -------------------------------------------- */

static int
mpu_name(gk_buf *b, const char *id, const char *what, unsigned part)
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
	if ((r = mpu_name(&name, s->upload_id, "meta", 0)) != 0)
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

static void
mpu_remove(gate_s3 *s)
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
	if (mpu_name(&name, s->upload_id, "meta", 0) == 0 &&
	    store_delete(s->app->store, gk_slice_of(name.data, name.len)) != 0)
		gk_debug("s3api: upload meta already gone");
	gk_buf_release(&name);
	gk_buf_release(&keys);
}

/* ---- the body ------------------------------------------------------------ */

static int
to_object(void *arg, const uint8_t *p, size_t len)
{
	gate_s3 *s = arg;
	int r;

	if (EVP_DigestUpdate(s->md5, p, len) != 1 ||
	    (s->hsum != NULL && s3_sum_update(s->hsum, p, len) != 0))
		return GK_ERR_INTERNAL;
	if (s->body == BODY_XML) {
		if (gk_buf_append(&s->xml, p, len) != 0) {
			s3api_fail(s, 400, "MalformedXML", "The XML you "
			    "provided was too large.");
			return GK_ERR_TOO_LARGE;
		}
		return 0;
	}
	r = store_writer_write(s->w, p, len);
	if (r == GK_ERR_TOO_LARGE)
		s3api_fail(s, 400, "EntityTooLarge", "Your proposed upload "
		    "exceeds the maximum allowed object size.");
	else if (r != 0)
		s3api_fail(s, 500, "InternalError", "The object could not be "
		    "stored.");
	return r;
}

/* Sets up the body's checks for a body that becomes an object or XML. */
static int
body_begin(gate_s3 *s, int kind)
{
	gk_buf v;
	int r = 0;

	s->body = kind;
	if ((s->md5 = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->md5, EVP_md5(), NULL) != 1)
		goto nomem;
	if (s->auth.payload == S3_PAYLOAD_HASH &&
	    ((s->sha = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1))
		goto nomem;
	if (s->auth.payload != S3_PAYLOAD_STREAM_TRAILER) {
		static const char *const sums[] = { "x-amz-checksum-crc32",
		    "x-amz-checksum-crc32c", "x-amz-checksum-sha256",
		    "x-amz-checksum-sha1" };
		size_t i;

		gk_buf_init(&s->hsum_val, 256);
		for (i = 0; i < GK_ARRAY_LEN(sums) && s->hsum == NULL; i++) {
			gk_buf_reset(&s->hsum_val);
			if (s->req->header(s->req->header_ctx, sums[i],
			    &s->hsum_val) == 0 &&
			    s3_sum_new(gk_slice_str(sums[i]), &s->hsum) != 0)
				goto nomem;
		}
	}
	if (s->auth.payload == S3_PAYLOAD_STREAM_SIGNED ||
	    s->auth.payload == S3_PAYLOAD_STREAM_TRAILER) {
		gk_buf_init(&v, 256);
		if (s->auth.payload == S3_PAYLOAD_STREAM_TRAILER &&
		    (s->req->header(s->req->header_ctx, "x-amz-trailer",
		    &v) != 0 || gk_buf_append(&v, "", 1) != 0 ||
		    !s3_checksum_supported(gk_slice_str((const char *)
		    v.data)))) {
			gk_buf_release(&v);
			s3api_fail(s, 400, "InvalidRequest", "The x-amz-trailer "
			    "header must name a CRC32, CRC32C, SHA1 or SHA256 "
			    "checksum.");
			return -1;
		}
		r = s3_chunked_new(s->auth.payload, &s->auth,
		    s->app->s3api_signer, s->grant.secret,
		    (const char *)v.data, to_object, s, &s->ck);
		gk_buf_release(&v);
		if (r != 0)
			goto nomem;
	}
	return 0;
nomem:
	s3api_fail(s, 500, "InternalError", "We encountered an internal "
	    "error. Please try again.");
	return -1;
}

void
s3api_write_feed(gate_s3 *s, const uint8_t *p, size_t len)
{
	int r;

	if (s->sha != NULL && EVP_DigestUpdate(s->sha, p, len) != 1) {
		s3api_fail(s, 500, "InternalError", "digest");
		return;
	}
	if (s->ck != NULL) {
		r = s3_chunked_feed(s->ck, p, len);
		if (r == GK_ERR_AUTH)
			s3api_fail(s, 403, "SignatureDoesNotMatch", "The "
			    "request signature we calculated does not match "
			    "the signature you provided (chunk).");
		else if (r == GK_ERR_INVALID)
			s3api_fail(s, 400, "IncompleteBody", "The aws-chunked "
			    "body is malformed.");
		else if (r != 0)
			s3api_fail(s, 500, "InternalError", "The object could "
			    "not be stored.");
		return;
	}
	s->received += len;
	(void)to_object(s, p, len);	/* failures are kept in s */
}

/* After the last body byte: every check of the body. */
static int
body_end(gate_s3 *s)
{
	uint8_t d[32], md5raw[16];
	char hex[65];
	unsigned n = 0;
	gk_buf v, want;
	uint64_t declared;
	int r;

	if (s->err_status != 0)
		return -1;
	if (s->sha != NULL) {
		if (EVP_DigestFinal_ex(s->sha, d, &n) != 1)
			return -1;
		gk_hex_encode(d, 32, hex);
		if (strcmp(hex, s->auth.payload_hash) != 0) {
			s3api_fail(s, 400, "XAmzContentSHA256Mismatch", "The "
			    "provided 'x-amz-content-sha256' header does not "
			    "match what was computed.");
			return -1;
		}
	}
	if (s->ck != NULL) {
		r = s3_chunked_finish(s->ck);
		if (r == GK_ERR_AUTH && s->auth.payload ==
		    S3_PAYLOAD_STREAM_TRAILER) {
			s3api_fail(s, 400, "BadDigest", "The checksum you "
			    "specified did not match the calculated "
			    "checksum.");
			return -1;
		}
		if (r == GK_ERR_AUTH) {
			s3api_fail(s, 403, "SignatureDoesNotMatch", "The "
			    "request signature we calculated does not match "
			    "the signature you provided (chunk).");
			return -1;
		}
		if (r != 0) {
			s3api_fail(s, 400, "IncompleteBody", "You did not "
			    "provide the number of bytes specified by the "
			    "Content-Length HTTP header.");
			return -1;
		}
		s->received = s3_chunked_decoded(s->ck);
		gk_buf_init(&v, 64);
		if (s->req->header(s->req->header_ctx,
		    "x-amz-decoded-content-length", &v) == 0 &&
		    (gk_parse_u64(gk_slice_of(v.data, v.len), UINT64_MAX,
		    &declared) != 0 || declared != s->received)) {
			gk_buf_release(&v);
			s3api_fail(s, 400, "IncompleteBody", "You did not "
			    "provide the number of bytes specified by "
			    "x-amz-decoded-content-length.");
			return -1;
		}
		gk_buf_release(&v);
	}
	if (s->hsum != NULL && s3_sum_check(s->hsum, gk_slice_of(
	    s->hsum_val.data, s->hsum_val.len)) != 0) {
		s3api_fail(s, 400, "BadDigest", "The checksum you specified "
		    "did not match the calculated checksum.");
		return -1;
	}
	if (hex_md5(s->md5, hex, md5raw) != 0)
		return -1;
	snprintf(s->etag, sizeof(s->etag), "\"%s\"", hex);
	gk_buf_init(&v, 128);
	gk_buf_init(&want, 128);
	if (s->req->header(s->req->header_ctx, "content-md5", &v) == 0) {
		if (gk_b64_encode(md5raw, 16, &want) != 0 ||
		    want.len != v.len || memcmp(want.data, v.data,
		    v.len) != 0) {
			gk_buf_release(&v);
			gk_buf_release(&want);
			s3api_fail(s, 400, "BadDigest", "The Content-MD5 you "
			    "specified did not match what we received.");
			return -1;
		}
	}
	gk_buf_release(&v);
	gk_buf_release(&want);
	return 0;
}

/* ---- begin: per operation --------------------------------------------- */

static int
open_writer(gate_s3 *s, gk_slice key)
{
	int r = store_put_begin(s->app->store, key,
	    s->app->cfg->s3api_max_object_bytes, &s->w);

	if (r != 0) {
		s3api_fail(s, 503, "ServiceUnavailable", "The store behind the "
		    "gatekeeper failed.");
		return -1;
	}
	return 0;
}

int
s3api_write_begin(gate_s3 *s)
{
	gk_slice key = gk_slice_of(s->key.data, s->key.len);
	gk_buf name;
	uint64_t part;
	int r;

	switch (s->op) {
	case OP_PUT_OBJECT:
		if (s->req->has_content_length && s->auth.payload !=
		    S3_PAYLOAD_STREAM_SIGNED && s->auth.payload !=
		    S3_PAYLOAD_STREAM_TRAILER && gk_parse_u64(
		    s->req->content_length, UINT64_MAX, &part) == 0 &&
		    part > s->app->cfg->s3api_max_object_bytes) {
			s3api_fail(s, 400, "EntityTooLarge", "Your proposed "
			    "upload exceeds the maximum allowed object size.");
			return -1;
		}
		if (body_begin(s, BODY_OBJECT) != 0)
			return -1;
		return open_writer(s, key);
	case OP_MPU_PART:
		if (gk_parse_u64(qv(s, "partNumber"), S3API_MAX_PARTS,
		    &part) != 0 || part == 0) {
			s3api_fail(s, 400, "InvalidArgument", "Part number must "
			    "be an integer between 1 and 10000, inclusive");
			return -1;
		}
		s->part = (unsigned)part;
		if ((r = s3api_mpu_open(s, qv(s, "uploadId"))) != 0) {
			s3api_fail(s, 404, "NoSuchUpload", "The specified upload "
			    "does not exist.");
			return -1;
		}
		if (body_begin(s, BODY_OBJECT) != 0)
			return -1;
		if (s->native) {
			if (s->req->has_content_length && s->auth.payload !=
			    S3_PAYLOAD_STREAM_SIGNED && s->auth.payload !=
			    S3_PAYLOAD_STREAM_TRAILER && gk_parse_u64(
			    s->req->content_length, UINT64_MAX, &part) == 0 &&
			    part > STORE_MPU_PART_MAX) {
				s3api_fail(s, 400, "EntityTooLarge", "Parts "
				    "larger than 64 MiB are not taken by this "
				    "store; use smaller parts.");
				return -1;
			}
			r = store_mpu_part_begin(s->app->store, key,
			    gk_slice_of(s->store_upload.data,
			    s->store_upload.len), s->part,
			    s->app->cfg->s3api_max_object_bytes, &s->w);
			if (r != 0) {
				s3api_fail(s, 503, "ServiceUnavailable", "The "
				    "store behind the gatekeeper failed.");
				return -1;
			}
			return 0;
		}
		gk_buf_init(&name, 256);
		r = mpu_name(&name, s->upload_id, NULL, s->part);
		if (r == 0)
			r = open_writer(s, gk_slice_of(name.data, name.len));
		gk_buf_release(&name);
		return r != 0 ? -1 : 0;
	case OP_DELETE_OBJECTS:
	case OP_MPU_COMPLETE:
		return body_begin(s, BODY_XML);
	case OP_MPU_ABORT:
		if (s3api_mpu_open(s, qv(s, "uploadId")) != 0) {
			s3api_fail(s, 404, "NoSuchUpload", "The specified upload "
			    "does not exist.");
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* ---- end: per operation ------------------------------------------------- */

static void
put_done(gate_s3 *s, gk_reply *rep)
{
	int r;

	if ((r = store_writer_finish(s->w)) != 0) {
		s3api_store_error(s, rep, r);
		return;
	}
	if (s->op == OP_MPU_PART && s->native)	/* the store's own ETag */
		snprintf(s->etag, sizeof(s->etag), "%s",
		    store_writer_etag(s->w));
	if (s3api_header(rep, "ETag", s->etag) != 0) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		return;
	}
	rep->status = 200;
	rep->grant = 1;
	rep->bytes = s->received;
	rep->content_type = NULL;
}

/* Streams a reader into the writer (and md5). */
static int
copy_stream(gate_s3 *s, gk_store_reader *rd, uint64_t size, EVP_MD_CTX *md)
{
	uint8_t *buf = malloc(COPY_BLOCK);
	uint64_t off = 0;
	size_t got;
	int r = 0;

	if (buf == NULL)
		return GK_ERR_NOMEM;
	while (off < size) {
		if ((r = store_reader_read(rd, off, buf, COPY_BLOCK,
		    &got)) != 0)
			break;
		if (got == 0) {
			r = GK_ERR_INTEGRITY;
			break;
		}
		if ((md != NULL && EVP_DigestUpdate(md, buf, got) != 1) ||
		    (s->md5 != NULL && EVP_DigestUpdate(s->md5, buf,
		    got) != 1)) {
			r = GK_ERR_INTERNAL;
			break;
		}
		if ((r = store_writer_write(s->w, buf, got)) != 0)
			break;
		off += got;
	}
	free(buf);
	return r;
}

static void
copy_object(gate_s3 *s, gk_reply *rep)
{
	const gate_settings *cfg = s->app->cfg;
	gk_store_reader *rd = NULL;
	gk_buf v, src;
	gk_slice p, b;
	const uint8_t *slash, *q;
	uint64_t size = 0;
	int64_t mtime;
	uint8_t raw[16];
	char hex[33], t[40];
	int r;

	gk_buf_init(&v, 4096);
	gk_buf_init(&src, 4096);
	if (s->req->header(s->req->header_ctx, "x-amz-copy-source", &v) != 0)
		goto bad;
	p = gk_slice_of(v.data, v.len);
	if ((q = memchr(p.p, '?', p.len)) != NULL)	/* ?versionId= */
		p.len = (size_t)(q - p.p);
	if (p.len > 0 && p.p[0] == '/')
		p = gk_slice_of(p.p + 1, p.len - 1);
	slash = memchr(p.p, '/', p.len);
	if (slash == NULL)
		goto bad;
	b = gk_slice_of(p.p, (size_t)(slash - p.p));
	if (gk_pct_decode(gk_slice_of(slash + 1, p.len - b.len - 1),
	    &src) != 0 || !gate_key_valid(gk_slice_of(src.data, src.len), 1))
		goto bad;
	if (!gk_slice_eq_str(b, cfg->s3api_bucket)) {
		s3api_error(s, rep, 404, "NoSuchBucket", "The specified bucket "
		    "does not exist");
		goto out;
	}
	if (!s3api_in_scope(s, gk_slice_of(src.data, src.len),
	    GRANT_OP_GET)) {
		s3api_error(s, rep, 403, "AccessDenied", "Access Denied (the "
		    "copy source is outside the grant)");
		goto out;
	}
	r = store_get_open(s->app->store, gk_slice_of(src.data, src.len), &rd,
	    &size, &mtime);
	if (r != 0) {
		s3api_store_error(s, rep, r);
		goto out;
	}
	if ((s->md5 = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->md5, EVP_md5(), NULL) != 1 ||
	    open_writer(s, gk_slice_of(s->key.data, s->key.len)) != 0 ||
	    (r = copy_stream(s, rd, size, NULL)) != 0 ||
	    (r = store_writer_finish(s->w)) != 0 ||
	    hex_md5(s->md5, hex, raw) != 0) {
		s3api_store_error(s, rep, s->err_status ? GK_ERR_UNAVAILABLE :
		    r != 0 ? r : GK_ERR_INTERNAL);
		goto out;
	}
	s3api_time(gk_now_s(), t, sizeof(t));
	if (gk_buf_printf(&rep->body, XMLHEAD "<CopyObjectResult " XMLNS
	    "><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
	    "</CopyObjectResult>", t, hex) != 0) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		goto out;
	}
	rep->status = 200;
	rep->grant = 1;
	rep->bytes = size;
	rep->content_type = "application/xml";
	goto out;
bad:
	s3api_error(s, rep, 400, "InvalidArgument", "Copy Source must mention "
	    "the source bucket and key: sourcebucket/sourcekey");
out:
	store_reader_free(rd);
	gk_buf_release(&v);
	gk_buf_release(&src);
}

struct dctx {
	gate_s3 *s;
	gk_buf *out;
	int r;
};

static int
delete_cb(void *arg, gk_slice key)
{
	struct dctx *dc = arg;
	gate_s3 *s = dc->s;
	int r;

	if (gate_key_valid(key, 1) && s3api_in_scope(s, key,
	    GRANT_OP_DELETE)) {
		if ((r = gk_buf_append(&s->deletes, key.p, key.len)) != 0 ||
		    (r = gk_buf_append(&s->deletes, "", 1)) != 0)
			return r;
		if (s->delete_quiet)
			return 0;
		if ((r = gk_buf_append_str(dc->out, "<Deleted><Key>")) != 0 ||
		    (r = s3api_xml_text(dc->out, key)) != 0 ||
		    (r = gk_buf_append_str(dc->out, "</Key></Deleted>")) != 0)
			return r;
		return 0;
	}
	if ((r = gk_buf_append_str(dc->out, "<Error><Key>")) != 0 ||
	    (r = s3api_xml_text(dc->out, key)) != 0 ||
	    (r = gk_buf_append_str(dc->out, "</Key><Code>AccessDenied</Code>"
	    "<Message>Access Denied</Message></Error>")) != 0)
		return r;
	return 0;
}

static int
quiet_cb(void *arg, gk_slice key)
{
	(void)arg;
	(void)key;
	return 0;
}

static void
delete_objects(gate_s3 *s, gk_reply *rep)
{
	struct dctx dc;
	gk_buf items;
	int r, quiet = 0;

	gk_buf_init(&items, 4 * 1024 * 1024);
	/* <Quiet> may come after the objects: read it first */
	r = s3_delete_parse(gk_slice_of(s->xml.data, s->xml.len), quiet_cb,
	    NULL, &quiet);
	s->delete_quiet = quiet;
	dc.s = s;
	dc.out = &items;
	dc.r = 0;
	if (r == 0)
		r = s3_delete_parse(gk_slice_of(s->xml.data, s->xml.len),
		    delete_cb, &dc, &quiet);
	if (r == GK_ERR_INVALID || r == GK_ERR_TOO_LARGE) {
		malformed_xml(s, rep);
		goto out;
	}
	rep->body.cap = 8 * 1024 * 1024;
	if (r != 0 || gk_buf_append_str(&rep->body, XMLHEAD "<DeleteResult "
	    XMLNS ">") != 0 ||
	    gk_buf_append(&rep->body, items.data, items.len) != 0 ||
	    gk_buf_append_str(&rep->body, "</DeleteResult>") != 0) {
		s3api_store_error(s, rep, r != 0 ? r : GK_ERR_NOMEM);
		goto out;
	}
	s->commit_delete = 1;
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
out:
	gk_buf_release(&items);
}

static void
mpu_create(gate_s3 *s, gk_reply *rep)
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
	if ((r = mpu_name(&name, s->upload_id, "meta", 0)) != 0 ||
	    open_writer(s, gk_slice_of(name.data, name.len)) != 0 ||
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
	if (gk_buf_append_str(&rep->body, XMLHEAD
	    "<InitiateMultipartUploadResult " XMLNS "><Bucket>") != 0 ||
	    s3api_xml_text(&rep->body,
	    gk_slice_str(s->app->cfg->s3api_bucket)) != 0 ||
	    gk_buf_append_str(&rep->body, "</Bucket><Key>") != 0 ||
	    s3api_xml_text(&rep->body, key) != 0 ||
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
	r = mpu_name(&name, s->upload_id, NULL, part);
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
	if ((r = copy_stream(s, rd, size, md)) != 0 ||
	    (r = hex_md5(md, hex, raw)) != 0)
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
	if (gk_buf_append_str(&rep->body, XMLHEAD
	    "<CompleteMultipartUploadResult " XMLNS "><Location>") != 0 ||
	    s3api_xml_text(&rep->body, key) != 0 ||
	    gk_buf_append_str(&rep->body, "</Location><Bucket>") != 0 ||
	    s3api_xml_text(&rep->body,
	    gk_slice_str(s->app->cfg->s3api_bucket)) != 0 ||
	    gk_buf_append_str(&rep->body, "</Bucket><Key>") != 0 ||
	    s3api_xml_text(&rep->body, key) != 0 ||
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
	    s3api_xml_text(&s->complete_xml, gk_slice_str(pi->etag)) != 0 ||
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
		malformed_xml(s, rep);
		goto out;
	}
	if (hex_md5(nc.all, hex, raw) != 0) {
		s3api_store_error(s, rep, GK_ERR_INTERNAL);
		goto out;
	}
	complete_reply(s, rep, hex, nc.n);
out:
	free(nc.parts);
	EVP_MD_CTX_free(nc.all);
	gk_buf_release(&prefix);
}

static void
mpu_complete(gate_s3 *s, gk_reply *rep)
{
	struct cctx cc;
	uint8_t raw[16];
	char hex[33];
	gk_slice key = gk_slice_of(s->key.data, s->key.len);
	int r;

	memset(&cc, 0, sizeof(cc));
	cc.s = s;
	cc.rep = rep;
	if (s3api_mpu_open(s, qv(s, "uploadId")) != 0) {
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
	    open_writer(s, key) != 0) {
		s->err_status = 0;
		s3api_store_error(s, rep, GK_ERR_UNAVAILABLE);
		goto out;
	}
	r = s3_complete_parse(gk_slice_of(s->xml.data, s->xml.len),
	    complete_cb, &cc);
	if (cc.done)
		goto out;
	if (r != 0) {
		malformed_xml(s, rep);
		goto out;
	}
	if ((r = store_writer_finish(s->w)) != 0 ||
	    (r = hex_md5(cc.all, hex, raw)) != 0) {
		s3api_store_error(s, rep, r);
		goto out;
	}
	complete_reply(s, rep, hex, cc.n);
out:
	EVP_MD_CTX_free(cc.all);
}

void
s3api_write_end(gate_s3 *s, gk_reply *rep)
{
	if (body_end(s) != 0)
		return;	/* s->err_status answers */
	switch (s->op) {
	case OP_PUT_OBJECT:
		put_done(s, rep);
		break;
	case OP_MPU_PART:
		put_done(s, rep);
		break;
	case OP_DELETE_OBJECTS:
		delete_objects(s, rep);
		break;
	case OP_MPU_COMPLETE:
		mpu_complete(s, rep);
		break;
	default:
		break;
	}
}

/* Operations without a body, decided at the end of the request. */
static void
nobody_end(gate_s3 *s, gk_reply *rep)
{
	switch (s->op) {
	case OP_COPY_OBJECT:
		copy_object(s, rep);
		break;
	case OP_DELETE_OBJECT:
		s->commit_delete = 1;
		rep->status = 204;
		rep->grant = 1;
		rep->content_type = NULL;
		break;
	case OP_MPU_CREATE:
		mpu_create(s, rep);
		break;
	case OP_MPU_ABORT:
		s->commit_delete = 1;
		s->cleanup_prefix = strdup(s->upload_id);
		rep->status = 204;
		rep->grant = 1;
		rep->content_type = NULL;
		break;
	default:
		break;
	}
}

/*
 * The empty marker of a part the store holds; older markers of the same
 * part number (a part uploaded again) are removed.
 */
static int
part_marker(gate_s3 *s)
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
static void
complete_failed(gate_s3 *s, gk_reply *rep, int r)
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

void
s3api_write_commit(gate_s3 *s, gk_reply *rep)
{
	gk_slice key = gk_slice_of(s->key.data, s->key.len);
	gk_slice up = gk_slice_of(s->store_upload.data, s->store_upload.len);
	const char *p;
	int r;

	if (s->op == OP_MPU_COMPLETE && s->native) {
		if ((r = store_mpu_complete(s->app->store, key, up,
		    gk_slice_of(s->complete_xml.data,
		    s->complete_xml.len))) != 0) {
			complete_failed(s, rep, r);
			return;
		}
	} else if (s->op == OP_MPU_ABORT && s->native) {
		r = store_mpu_abort(s->app->store, key, up);
		if (r != 0 && r != GK_ERR_NOT_FOUND) {
			s3api_store_error(s, rep, r);
			return;
		}
	} else if (s->w != NULL) {
		if ((r = store_writer_commit(s->w)) != 0) {
			s3api_store_error(s, rep, r);
			return;
		}
		if (s->op == OP_MPU_PART && s->native &&
		    (r = part_marker(s)) != 0) {
			s3api_store_error(s, rep, r);
			return;
		}
	} else if (s->op == OP_DELETE_OBJECT) {
		r = store_delete(s->app->store, gk_slice_of(s->key.data,
		    s->key.len));
		if (r != 0 && r != GK_ERR_NOT_FOUND) {
			s3api_store_error(s, rep, r);
			return;
		}
	} else if (s->op == OP_DELETE_OBJECTS) {
		for (p = (const char *)s->deletes.data; p != NULL &&
		    p < (const char *)s->deletes.data + s->deletes.len;
		    p += strlen(p) + 1) {
			r = store_delete(s->app->store, gk_slice_str(p));
			if (r != 0 && r != GK_ERR_NOT_FOUND)
				gk_warn("s3api: DeleteObjects: %s",
				    gk_err_str(r));
		}
	}
	s->committed = 1;
	if (s->cleanup_prefix != NULL)
		mpu_remove(s);
}

void
s3api_write_free(gate_s3 *s)
{
	/* a store upload whose meta never committed is not reachable */
	if (s->op == OP_MPU_CREATE && s->native && !s->committed &&
	    s->store_upload.len > 0 && store_mpu_abort(s->app->store,
	    gk_slice_of(s->key.data, s->key.len), gk_slice_of(
	    s->store_upload.data, s->store_upload.len)) != 0)
		gk_warn("s3api: could not abort the store's upload");
	gk_buf_release(&s->store_upload);
	gk_buf_release(&s->complete_xml);
}

/* Called by gate_s3api_end for the operations above (s3api.c). */
void
s3api_write_decide(gate_s3 *s, gk_reply *rep)
{
	nobody_end(s, rep);
}
