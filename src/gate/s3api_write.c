/*
 * s3api_write.c - the S3 endpoint's writes: PutObject, CopyObject,
 * DeleteObject(s) and multipart uploads. The body is checked as it
 * arrives (payload hash, chunk signatures, trailing checksum, Content-MD5)
 * into a store writer that stays invisible; the object appears (or a
 * delete happens) only in s3api_write_commit, after the audit record is
 * durable. A refused body leaves nothing behind. The multipart
 * operations' own work is in s3api_mpu.c; this file takes their bodies
 * and commits them like every other write.
 */
#include "s3api_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"



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
		    "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
		    "x-amz-checksum-sha256", "x-amz-checksum-sha1" };
		size_t i, n = 0;

		/* one checksum, as S3: a second one would go unchecked */
		gk_buf_init(&v, 256);
		for (i = 0; i < GK_ARRAY_LEN(sums); i++)
			n += s->req->header(s->req->header_ctx, sums[i],
			    &v) != GK_ERR_NOT_FOUND;
		gk_buf_release(&v);
		if (n > 1) {
			s3api_fail(s, 400, "InvalidRequest", "Expecting a single "
			    "x-amz-checksum- header. Multiple checksum Types are "
			    "not allowed.");
			return -1;
		}
		r = 0;
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
			    "header must name a CRC32, CRC32C, CRC64NVME, SHA1 or "
			    "SHA256 checksum.");
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
	if (s3api_md5_hex(s->md5, hex, md5raw) != 0)
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
		return s3api_open_writer(s, key);
	case OP_MPU_PART:
		if (gk_parse_u64(s3api_qv(s, "partNumber"), S3API_MAX_PARTS,
		    &part) != 0 || part == 0) {
			s3api_fail(s, 400, "InvalidArgument", "Part number must "
			    "be an integer between 1 and 10000, inclusive");
			return -1;
		}
		s->part = (unsigned)part;
		if ((r = s3api_mpu_open(s, s3api_qv(s, "uploadId"))) != 0) {
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
		r = s3api_mpu_name(&name, s->upload_id, NULL, s->part);
		if (r == 0)
			r = s3api_open_writer(s, gk_slice_of(name.data, name.len));
		gk_buf_release(&name);
		return r != 0 ? -1 : 0;
	case OP_DELETE_OBJECTS:
	case OP_MPU_COMPLETE:
		return body_begin(s, BODY_XML);
	case OP_MPU_ABORT:
		if (s3api_mpu_open(s, s3api_qv(s, "uploadId")) != 0) {
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
	if ((q = memchr(p.p, '?', p.len)) != NULL) {
		/* no versions are kept: only ?versionId=null is the object */
		if (!gk_slice_eq_str(gk_slice_of(q, p.len - (size_t)(q -
		    p.p)), "?versionId=null")) {
			s3api_error(s, rep, 400, "InvalidArgument", "Invalid "
			    "version id specified");
			goto out;
		}
		p.len = (size_t)(q - p.p);
	}
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
	    s3api_open_writer(s, gk_slice_of(s->key.data, s->key.len)) != 0 ||
	    (r = s3api_copy_stream(s, rd, size, NULL)) != 0 ||
	    (r = store_writer_finish(s->w)) != 0 ||
	    s3api_md5_hex(s->md5, hex, raw) != 0) {
		s3api_store_error(s, rep, s->err_status ? GK_ERR_UNAVAILABLE :
		    r != 0 ? r : GK_ERR_INTERNAL);
		goto out;
	}
	s3api_time(gk_now_s(), t, sizeof(t));
	if (gk_buf_printf(&rep->body, S3API_XMLHEAD "<CopyObjectResult " S3API_XMLNS
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
		    (r = s3_xml_escape(dc->out, key)) != 0 ||
		    (r = gk_buf_append_str(dc->out, "</Key></Deleted>")) != 0)
			return r;
		return 0;
	}
	if ((r = gk_buf_append_str(dc->out, "<Error><Key>")) != 0 ||
	    (r = s3_xml_escape(dc->out, key)) != 0 ||
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

/* Audit text of one DeleteObjects; the audit cuts it at 8 KiB. */
#define DELETE_AUDIT_MAX (10u * 1024)	/* past 8 KiB by more than a key */

/*
 * The audit record of a DeleteObjects names what it removes: its path is
 * the keys' longest common prefix (the key itself when there is one), its
 * message their number and the keys, so `audit search --path-prefix`
 * finds the request that deleted an object, as it does a DeleteObject.
 */
static void
delete_audit(gate_s3 *s, gk_reply *rep)
{
	const char *first = (const char *)s->deletes.data, *p, *end;
	size_t n = 0, common = 0, i;
	gk_buf m;

	end = first != NULL ? first + s->deletes.len : NULL;
	for (p = first; p != NULL && p < end; p += strlen(p) + 1) {
		if (n++ == 0) {
			common = strlen(p);
			continue;
		}
		for (i = 0; i < common && p[i] == first[i]; i++)
			;
		common = i;
	}
	if (n > 0) {
		free(rep->path);
		rep->path = gate_text_copy(gk_slice_of(first, common), 2048);
	}
	gk_buf_init(&m, DELETE_AUDIT_MAX);
	if (gk_buf_printf(&m, "Success: %zu %s deleted", n,
	    n == 1 ? "key" : "keys") != 0)
		goto out;
	for (p = first; p != NULL && p < end; p += strlen(p) + 1) {
		/* past the cap the audit's own cut ends the text */
		if (gk_buf_append_str(&m, p == first ? ": " : ", ") != 0 ||
		    gk_buf_append_str(&m, p) != 0)
			break;
	}
	free(rep->message);
	rep->message = gate_text_copy(gk_slice_of(m.data, m.len), m.len);
out:
	gk_buf_release(&m);
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
		s3api_malformed_xml(s, rep);
		goto out;
	}
	if (r == GK_ERR_DENIED) {
		s3api_error(s, rep, 400, "InvalidArgument", "Invalid version "
		    "id specified");
		goto out;
	}
	rep->body.cap = 8 * 1024 * 1024;
	if (r != 0 || gk_buf_append_str(&rep->body, S3API_XMLHEAD "<DeleteResult "
	    S3API_XMLNS ">") != 0 ||
	    gk_buf_append(&rep->body, items.data, items.len) != 0 ||
	    gk_buf_append_str(&rep->body, "</DeleteResult>") != 0) {
		s3api_store_error(s, rep, r != 0 ? r : GK_ERR_NOMEM);
		goto out;
	}
	s->commit_delete = 1;
	rep->status = 200;
	rep->grant = 1;
	rep->content_type = "application/xml";
	delete_audit(s, rep);
out:
	gk_buf_release(&items);
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
		s3api_mpu_complete(s, rep);
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
		s3api_mpu_create(s, rep);
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
			s3api_mpu_complete_failed(s, rep, r);
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
		    (r = s3api_mpu_part_marker(s)) != 0) {
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
		s3api_mpu_remove(s);
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
