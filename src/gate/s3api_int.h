/*
 * s3api_int.h - private to the S3-compatible endpoint (s3api*.c): one
 * request's state, shared by the request lifecycle (s3api.c), the
 * listings (s3api_list.c) and the writes (s3api_write.c).
 */
#ifndef GK_S3API_INT_H
#define GK_S3API_INT_H

#include <openssl/evp.h>

#include "gate_int.h"
#include "grant/grant.h"
#include "store/store.h"
#include "s3/s3.h"

/* Keys under this prefix hold multipart uploads in progress: never
 * listed, never reachable by a client key, never a grant's prefix. */
#define S3API_MPU_PREFIX GRANT_RESERVED_PREFIX
#define S3API_MIN_PART (5u * 1024 * 1024)
#define S3API_MAX_PARTS 10000u

enum s3op {
	OP_NONE,
	OP_LIST_BUCKETS, OP_HEAD_BUCKET, OP_GET_LOCATION, OP_LIST_V2,
	OP_LIST_V1, OP_HEAD_OBJECT, OP_GET_OBJECT, OP_PUT_OBJECT,
	OP_COPY_OBJECT, OP_DELETE_OBJECT, OP_DELETE_OBJECTS, OP_MPU_CREATE,
	OP_MPU_PART, OP_MPU_COMPLETE, OP_MPU_ABORT, OP_MPU_LIST_PARTS,
	OP_MPU_LIST_UPLOADS, OP_CREATE_BUCKET, OP_NOT_IMPLEMENTED
};

/* What the body is for. */
enum { BODY_NONE, BODY_OBJECT, BODY_XML };

struct gate_s3 {
	gk_app *app;
	const gk_req *req;
	enum s3op op;
	const char *op_name;
	gate_params qs;
	int have_qs;
	gk_grant grant;
	int have_grant;
	s3_auth auth;
	gk_buf key;		/* decoded object key ("" for bucket ops) */
	int has_key;
	/* a refusal decided while the body still arrives (first wins) */
	int err_status;
	const char *err_code;
	char err_msg[256];
	char err_note[160];	/* for the audit record only, not the body */
	/* the body */
	int body;
	s3_chunked *ck;
	EVP_MD_CTX *md5;	/* ETag of what is stored */
	EVP_MD_CTX *sha;	/* S3_PAYLOAD_HASH check */
	s3_sum *hsum;		/* an x-amz-checksum-* header's check */
	gk_buf hsum_val;
	uint64_t received;	/* decoded bytes */
	gk_buf xml;
	gk_store_writer *w;	/* the object (or part) being written */
	char etag[80];		/* quoted, for the reply */
	/* multipart */
	char upload_id[33];
	unsigned part;
	/* the store's own upload behind ours (store_mpu_native): its id
	 * (kept after the key in the meta object) and, for Complete, the
	 * parts list to hand it at commit */
	int native;
	gk_buf store_upload;
	gk_buf complete_xml;
	int committed;		/* s3api_write_commit succeeded */
	/* a write done on commit */
	int commit_delete;	/* DeleteObject, AbortMultipartUpload */
	gk_buf deletes;		/* DeleteObjects: keys, NUL separated */
	int delete_quiet;
	char *cleanup_prefix;	/* parts to remove after a commit */
};

/* S3's XML namespace and declaration, for every XML answer. */
#define S3API_XMLNS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define S3API_XMLHEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

/* s3api_util.c: what the endpoint's files share (it calls none of them). */

/* An S3 XML error into rep (HEAD: no body), with our request id. */
void s3api_error(gate_s3 *s, gk_reply *rep, int status, const char *code,
    const char *msg);
/* Refuses later (the body is still arriving); the first refusal wins. */
void s3api_fail(gate_s3 *s, int status, const char *code, const char *msg);
/* Appends one response header line. */
int s3api_header(gk_reply *rep, const char *name, const char *value) GK_WUR;
/* ISO 8601 with milliseconds, as S3 prints (out >= 32). */
void s3api_time(int64_t unix_s, char *out, size_t outlen);
/* The ETag we show for a stored object (quoted, out >= 48). */
void s3api_etag(gk_slice key, uint64_t size, int64_t mtime, char *out,
    size_t outlen);
/* The value of query parameter name or NULL. */
const gk_buf *s3api_q(const gate_s3 *s, const char *name);
/* A store failure as an S3 error. */
void s3api_store_error(gate_s3 *s, gk_reply *rep, int r);
/* 1 if the grant reaches key with op bits (and key is a client key). */
int s3api_in_scope(const gate_s3 *s, gk_slice key, unsigned ops);
/* The value of query parameter name, or an empty slice. */
gk_slice s3api_qv(const gate_s3 *s, const char *name);
/* MD5 c finished: its hex (33 with the NUL) and raw bytes. */
int s3api_md5_hex(EVP_MD_CTX *c, char out[33], uint8_t raw[16]) GK_WUR;
/* S3's MalformedXML refusal into rep. */
void s3api_malformed_xml(gate_s3 *s, gk_reply *rep);
/* s->w: an invisible writer for key; -1 with the refusal set (s3api_fail). */
int s3api_open_writer(gate_s3 *s, gk_slice key);
/* size bytes of rd into s->w, each block also into md. 0 or an error. */
int s3api_copy_stream(gate_s3 *s, gk_store_reader *rd, uint64_t size,
    EVP_MD_CTX *md) GK_WUR;

/* s3api_list.c: ListObjectsV2, ListObjects, ListBuckets, ListParts,
 * ListMultipartUploads, GetBucketLocation. */
void s3api_list(gate_s3 *s, gk_reply *rep);
/* Appends items and the closing tag to rep's body: a 200 XML listing. */
int s3api_list_reply(gk_reply *rep, const gk_buf *items, const char *close)
    GK_WUR;

/* s3api_write.c: the body, then the decision; commit after the audit. */
int s3api_write_begin(gate_s3 *s) GK_WUR;
void s3api_write_feed(gate_s3 *s, const uint8_t *p, size_t len);
void s3api_write_end(gate_s3 *s, gk_reply *rep);
void s3api_write_commit(gate_s3 *s, gk_reply *rep);
/* Releases what the writes hold (aborts a store upload left behind). */
void s3api_write_free(gate_s3 *s);
/* Writes without a body (CopyObject, DeleteObject, Create and Abort of
 * multipart uploads): the decision at the end of the request. */
void s3api_write_decide(gate_s3 *s, gk_reply *rep);

/* s3api_mpu.c: multipart uploads (called by s3api_write.c, s3api.c and
 * s3api_list.c; calls only s3api_util.c). */

/* The store name of upload id's "meta" (what) or of part (what NULL). */
int s3api_mpu_name(gk_buf *b, const char *id, const char *what,
    unsigned part) GK_WUR;
/* CreateMultipartUpload's decision (the meta is written at commit). */
void s3api_mpu_create(gate_s3 *s, gk_reply *rep);
/* CompleteMultipartUpload's decision, the client's part list in s->xml. */
void s3api_mpu_complete(gate_s3 *s, gk_reply *rep);
/* At commit: a part the store holds gets its marker. 0 or an error. */
int s3api_mpu_part_marker(gate_s3 *s) GK_WUR;
/* At commit: the store refused Complete; S3's own refusals pass through. */
void s3api_mpu_complete_failed(gate_s3 *s, gk_reply *rep, int r);
/* After a commit: every part and the meta removed (best effort). */
void s3api_mpu_remove(gate_s3 *s);
/*
 * A part's name under ".gatekeeper-mpu/<id>/": "pNNNNN" holds the part's
 * bytes (fs store); with a native store upload, the empty marker
 * "pNNNNN.<size>.<hex of the store's ETag>" says the store holds it.
 * Parses name (the part after the upload's prefix): 0 with *part, *size
 * (0 for a bytes part) and etag (the store's, NUL-terminated; "" for a
 * bytes part), GK_ERR_INVALID for anything else.
 */
int s3api_part_name_parse(gk_slice name, unsigned *part, uint64_t *size,
    char etag[S3_ETAG_MAX]) GK_WUR;
/*
 * Opens multipart upload id (32 lowercase hex): s->upload_id set; with
 * s->has_key its key must be s->key, else s->key becomes its key; the
 * grant must reach it. GK_ERR_NOT_FOUND otherwise (or a store error).
 */
int s3api_mpu_open(gate_s3 *s, gk_slice id) GK_WUR;

#endif
