/*
 * s3api_util.c - what every file of the S3 endpoint shares: the reply
 * (extra headers, XML text, dates, ETags), S3's XML errors, the grant's
 * scope check, query values, and writing into the store (a writer for a
 * key, a reader streamed into a writer). It calls nothing of the
 * endpoint's other files.
 */
#include "s3api_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define COPY_BLOCK (256u * 1024)

int
s3api_header(gk_reply *rep, const char *name, const char *value)
{
	if (rep->headers.cap == 0)
		gk_buf_init(&rep->headers, 16384);
	return gk_buf_printf(&rep->headers, "%s: %s\n", name, value);
}

void
s3api_time(int64_t unix_s, char *out, size_t outlen)
{
	char iso[40];

	gk_time_iso(unix_s, iso, sizeof(iso));
	/* "2026-11-30T17:00:00Z" -> "2026-11-30T17:00:00.000Z" */
	snprintf(out, outlen, "%.19s.000Z", iso);
}

void
s3api_etag(gk_slice key, uint64_t size, int64_t mtime, char *out,
    size_t outlen)
{
	uint8_t d[16];
	char hex[33];
	unsigned n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char extra[48];

	snprintf(extra, sizeof(extra), "|%llu|%lld", (unsigned long long)size,
	    (long long)mtime);
	memset(d, 0, sizeof(d));
	if (c == NULL || EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1 ||
	    EVP_DigestUpdate(c, key.p, key.len) != 1 ||
	    EVP_DigestUpdate(c, extra, strlen(extra)) != 1 ||
	    EVP_DigestFinal_ex(c, d, &n) != 1)
		memset(d, 0, sizeof(d));
	EVP_MD_CTX_free(c);
	gk_hex_encode(d, sizeof(d), hex);
	/* not the MD5 of the content (the fs store does not keep one), so
	 * in the multipart form, which clients do not take for an MD5 */
	snprintf(out, outlen, "\"%s-1\"", hex);
}

const gk_buf *
s3api_q(const gate_s3 *s, const char *name)
{
	return s->have_qs ? gate_params_get(&s->qs, name) : NULL;
}

void
s3api_error(gate_s3 *s, gk_reply *rep, int status, const char *code,
    const char *msg)
{
	const gk_req *req = s->req;
	char audit_msg[320];
	gk_buf *b;

	snprintf(audit_msg, sizeof(audit_msg), "%s: %s%s%s%s", code, msg,
	    s->err_note[0] ? " (" : "", s->err_note,
	    s->err_note[0] ? ")" : "");
	gate_reply_error(rep, status, status >= 500 ? "error" : "deny",
	    audit_msg);
	b = &rep->body;
	gk_buf_reset(b);
	if (strcmp(req->method, "HEAD") != 0 &&
	    (gk_buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<Error><Code>%s</Code><Message>", code) != 0 ||
	    s3_xml_escape(b, gk_slice_str(msg)) != 0 ||
	    (s->has_key && (gk_buf_append_str(b, "</Message><Key>") != 0 ||
	    s3_xml_escape(b, gk_slice_of(s->key.data, s->key.len)) != 0 ||
	    gk_buf_append_str(b, "</Key>") != 0)) ||
	    (!s->has_key && gk_buf_append_str(b, "</Message>") != 0) ||
	    gk_buf_printf(b, "<RequestId>%s</RequestId></Error>",
	    req->request_id) != 0))
		gk_buf_reset(b);
	rep->content_type = "application/xml";
}

void
s3api_fail(gate_s3 *s, int status, const char *code, const char *msg)
{
	if (s->err_status != 0)
		return;
	s->err_status = status;
	s->err_code = code;
	snprintf(s->err_msg, sizeof(s->err_msg), "%s", msg);
}

void
s3api_store_error(gate_s3 *s, gk_reply *rep, int r)
{
	const char *why = NULL;

	if (r == GK_ERR_NOT_FOUND) {
		s3api_error(s, rep, 404, "NoSuchKey",
		    "The specified key does not exist.");
		return;
	}
	if (r == GK_ERR_TOO_LARGE) {
		s3api_error(s, rep, 400, "EntityTooLarge", "Your proposed "
		    "upload exceeds the maximum allowed object size.");
		return;
	}
	if (r == GK_ERR_UNAVAILABLE || r == GK_ERR_DENIED) {
		(void)store_error(&why);
		gk_warn("s3api: store: %s", why != NULL ? why : "?");
		s3api_error(s, rep, 503, "ServiceUnavailable",
		    "The store behind the gatekeeper failed.");
		return;
	}
	if (r == GK_ERR_INTEGRITY)
		gk_error("s3api: a stored object failed its integrity check "
		    "(request %s)", s->req->request_id);
	else
		gk_error("s3api: %s (request %s)", gk_err_str(r),
		    s->req->request_id);
	s3api_error(s, rep, 500, "InternalError",
	    "We encountered an internal error. Please try again.");
}

int
s3api_in_scope(const gate_s3 *s, gk_slice key, unsigned ops)
{
	if ((s->grant.ops & ops) == 0)
		return 0;
	if (gk_slice_has_prefix(key, gk_slice_str(S3API_MPU_PREFIX)))
		return 0;
	return grant_covers(&s->grant, key);
}

gk_slice
s3api_qv(const gate_s3 *s, const char *name)
{
	const gk_buf *v = s3api_q(s, name);

	return v != NULL ? gk_slice_of(v->data, v->len) : GK_SLICE_NULL;
}

int
s3api_md5_hex(EVP_MD_CTX *c, char out[33], uint8_t raw[16])
{
	unsigned n = 0;

	if (EVP_DigestFinal_ex(c, raw, &n) != 1 || n != 16)
		return GK_ERR_INTERNAL;
	gk_hex_encode(raw, 16, out);
	return 0;
}

void
s3api_malformed_xml(gate_s3 *s, gk_reply *rep)
{
	s3api_error(s, rep, 400, "MalformedXML", "The XML you provided was "
	    "not well-formed or did not validate against our published "
	    "schema");
}

/* ---- begin: per operation --------------------------------------------- */

int
s3api_open_writer(gate_s3 *s, gk_slice key)
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

/* Streams a reader into the writer (and md5). */
int
s3api_copy_stream(gate_s3 *s, gk_store_reader *rd, uint64_t size, EVP_MD_CTX *md)
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
