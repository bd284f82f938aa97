/*
 * s3.h - the s3 folder's whole interface: AWS Signature Version 4 for S3
 * (canonical requests, a signing-key cache, presigned GET URLs, POST
 * policies, header-signed requests), the ListObjectsV2 XML parser (expat)
 * and a small S3 client on libcurl (connection reuse, timeouts, bounded
 * retries for idempotent calls), with the credential sources.
 *
 * No AWS SDK: the canonicalization follows the S3 rules (object keys
 * UriEncoded once, '/' kept, no path normalisation), checked against AWS's
 * SigV4 suite, AWS's S3 examples and botocore byte for byte.
 *
 * Times are unix seconds passed in by the caller, so tests can freeze the
 * clock. Secrets never reach a log line or an error message.
 */
#ifndef GK_S3_H
#define GK_S3_H

#include <stdint.h>

#include "util/util.h"

/* ---- credentials ------------------------------------------------------ */

typedef struct {
	char *access_key_id;
	char *secret_key;
	char *session_token;	/* NULL: long-term keys */
	int64_t expires;	/* unix s; 0: never */
	uint64_t gen;		/* changes whenever the keys change; 0: never
				 * cache a signing key for these keys */
} s3_creds;

/* Deep copy; wipes and frees with s3_creds_release. */
int s3_creds_copy(const s3_creds *in, s3_creds *out) GK_WUR;
void s3_creds_release(s3_creds *c);

/* ---- the SigV4 core ---------------------------------------------------- */

#define S3_SIG_HEX_LEN 64
#define S3_AMZ_DATE_LEN 16	/* "20261123T000000Z" */
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* "YYYYMMDDTHHMMSSZ" for unix seconds t (out >= 17 bytes). */
void s3_amz_date(int64_t t, char out[S3_AMZ_DATE_LEN + 1]);

typedef struct {
	gk_slice name;		/* any case; canonicalized to lower case */
	gk_slice value;		/* trimmed, inner whitespace runs -> one space */
} s3_header;

typedef struct {
	const char *method;
	gk_slice path;		/* canonical URI exactly as given (S3: the
				 * key already UriEncoded once, '/' kept) */
	gk_slice query;		/* wire query without '?': each name and value
				 * is decoded once and UriEncoded again, then
				 * sorted (a name without '=' gets "=") */
	const s3_header *headers; /* every header to sign (host included);
				 * a repeated name is joined with ',' */
	size_t n_headers;
	const char *payload_hash; /* hex SHA-256 or UNSIGNED-PAYLOAD */
} s3_canon_in;

/*
 * Builds the canonical request into creq and the signed header list
 * ("host;x-amz-date") into signed_headers (either may be NULL).
 * GK_ERR_INVALID for a malformed query escape or a header name or value
 * holding CR, LF or NUL after unfolding, GK_ERR_TOO_LARGE past the caps.
 */
int s3_canonical_request(const s3_canon_in *in, gk_buf *creq,
    gk_buf *signed_headers) GK_WUR;

/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(creq)>". */
int s3_string_to_sign(const char *amz_date, const char *scope, gk_slice creq,
    gk_buf *out) GK_WUR;

/*
 * A signer for one (region, service): derives the signing key
 * HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
 * "aws4_request") and caches it per (date, creds->gen), so a presign costs
 * two HMACs and a SHA-256. Thread safe.
 */
typedef struct s3_signer s3_signer;

int s3_signer_new(const char *region, const char *service,
    s3_signer **out) GK_WUR;
void s3_signer_free(s3_signer *sg);
const char *s3_signer_region(const s3_signer *sg);
/* "<date8>/<region>/<service>/aws4_request" for amz_date's day. */
int s3_signer_scope(const s3_signer *sg, const char *amz_date, gk_buf *out)
    GK_WUR;
/* Lowercase hex HMAC-SHA256 of msg with the day's signing key. */
int s3_signer_sign(s3_signer *sg, const s3_creds *c, const char *amz_date,
    gk_slice msg, char sig[S3_SIG_HEX_LEN + 1]) GK_WUR;

/* ---- S3 addressing and signing --------------------------------------- */

/*
 * Where the bucket is: endpoint "https://s3.eu-west-1.amazonaws.com" or
 * any S3-compatible URL (scheme, host, optional port, no path). Path
 * style: ENDPOINT/BUCKET/KEY; virtual-hosted: SCHEME://BUCKET.HOST/KEY
 * (IP-address endpoints always path style, as botocore does).
 */
typedef struct s3_target s3_target;

int s3_target_new(const char *endpoint, const char *bucket,
    const char *region, int path_style, s3_target **out) GK_WUR;
void s3_target_free(s3_target *t);
const char *s3_target_bucket(const s3_target *t);
s3_signer *s3_target_signer(s3_target *t);

/*
 * The object's URL (key UriEncoded once, '/' kept) into url; its Host
 * header value into host and canonical path into path (both may be NULL).
 * An empty key gives the bucket's URL ("/bucket" path style, "/" virtual).
 */
int s3_object_url(const s3_target *t, gk_slice key, gk_buf *url,
    gk_buf *host, gk_buf *path) GK_WUR;

/*
 * Presigned GET URL valid for ttl seconds from now (1..604800), as
 * botocore's generate_presigned_url: X-Amz-Algorithm, -Credential, -Date,
 * -SignedHeaders=host, -Expires, -Security-Token, then -Signature.
 * disposition (may be empty) adds response-content-disposition, signed.
 */
int s3_presign_get(s3_target *t, const s3_creds *c, gk_slice key,
    int64_t now, unsigned ttl, gk_slice disposition, gk_buf *url) GK_WUR;

/*
 * A browser POST upload for exactly key, as botocore's
 * generate_presigned_post with Fields {x-amz-server-side-encryption:
 * AES256} and Conditions [{x-amz-server-side-encryption: AES256},
 * ["content-length-range", 0, max_bytes]]: appends the JSON object
 * {"url": ..., "fields": {...}} to out, the fields in botocore's order
 * and the policy (base64 of Python's json.dumps, ASCII-escaped) byte for
 * byte the same.
 */
int s3_presign_post(s3_target *t, const s3_creds *c, gk_slice key,
    uint64_t max_bytes, int64_t now, unsigned ttl, gk_buf *out) GK_WUR;
/*
 * Uploads through t ask for SSE-KMS with this key (a copy is kept):
 * POST policies then carry x-amz-server-side-encryption "aws:kms" and
 * x-amz-server-side-encryption-aws-kms-key-id, as field and condition
 * (in place of AES256), and so do multipart uploads (s3_put_begin).
 * NULL or "" goes back to AES256. The key id is 1..2048 printable ASCII
 * without quotes or backslashes, else GK_ERR_INVALID.
 */
int s3_target_set_kms(s3_target *t, const char *key_id) GK_WUR;
/* The KMS key set, or NULL (AES256). */
const char *s3_target_kms(const s3_target *t);

/*
 * Signs a request in headers: method, the wire path and query (already
 * encoded), extra headers (lower-case names; host, x-amz-date,
 * x-amz-content-sha256 and x-amz-security-token are added). Appends the
 * header lines to send ("Name: value", one per entry) to lines.
 */
int s3_sign_headers(s3_target *t, const s3_creds *c, const char *method,
    gk_slice path, gk_slice query, const s3_header *extra, size_t n_extra,
    const char *payload_hash, int64_t now, gk_buf *lines) GK_WUR;

/* ---- SigV4 verification (the S3-compatible endpoint, verify.c) ------- */

/* How the request body is authenticated (x-amz-content-sha256). */
enum {
	S3_PAYLOAD_HASH = 1,		/* hex SHA-256 of the body */
	S3_PAYLOAD_UNSIGNED,		/* UNSIGNED-PAYLOAD */
	S3_PAYLOAD_STREAM_SIGNED,	/* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
	S3_PAYLOAD_STREAM_TRAILER	/* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
};

/*
 * Looks up a request header by lower-case name: 0 with every value
 * (joined by ',') appended to value, or GK_ERR_NOT_FOUND.
 */
typedef int (*s3_header_fn)(void *arg, const char *lname, gk_buf *value);

#define S3_AKID_MAX 128

typedef struct {
	int presigned;
	char access_key[S3_AKID_MAX + 1];
	char amz_date[S3_AMZ_DATE_LEN + 1];
	int64_t time;			/* amz_date as unix seconds */
	int64_t expires;		/* presigned: X-Amz-Expires */
	char scope[160];		/* date8/region/service/aws4_request */
	char region[64];
	char service[16];
	char signature[S3_SIG_HEX_LEN + 1];
	char signed_headers[1024];	/* "host;x-amz-date" */
	int payload;			/* S3_PAYLOAD_* */
	char payload_hash[S3_SIG_HEX_LEN + 1]; /* S3_PAYLOAD_HASH */
} s3_auth;

/*
 * Reads the SigV4 credentials of a request: the presigned query
 * (X-Amz-Algorithm, -Credential, -Date, -Expires 1..604800,
 * -SignedHeaders, -Signature) or the Authorization header
 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
 * with x-amz-date (or Date) and x-amz-content-sha256. Returns 0,
 * GK_ERR_NOT_FOUND when the request carries no credentials at all,
 * GK_ERR_INVALID when they are malformed (what in *why, static), or
 * GK_ERR_DENIED for another scheme (SigV2) or payload mode not supported.
 */
int s3_auth_parse(gk_slice query, s3_header_fn hdr, void *arg, s3_auth *out,
    const char **why) GK_WUR;

/*
 * Verifies a parsed request against the secret, exactly as AWS: scope
 * (its date the amz date's, region the signer's, service "s3"), time
 * (header auth: within 15 minutes of now; presigned: not before date -
 * 15 min, not after date + expires), the signed headers (host always),
 * then the signature recomputed from method, the raw path (decoded once
 * and UriEncoded again, '/' kept), the raw query (without
 * X-Amz-Signature), the signed headers' values and the payload hash,
 * compared in constant time. Returns 0, GK_ERR_AUTH (mismatch),
 * GK_ERR_EXPIRED (skew: *why "skew"; presigned expiry: "expired"),
 * GK_ERR_INVALID (scope or header list wrong; *why says).
 */
int s3_auth_verify(const s3_auth *a, s3_signer *sg, const char *secret,
    const char *method, gk_slice raw_path, gk_slice raw_query,
    s3_header_fn hdr, void *arg, int64_t now, const char **why) GK_WUR;

/*
 * The aws-chunked body decoder (streaming). Signed mode checks every
 * chunk's signature (chained from the request's) with the secret; trailer
 * mode checks the trailing checksum header named trailer
 * (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha256 or -sha1) against
 * the decoded bytes. Decoded bytes go to out as they arrive (the caller keeps them
 * invisible until finish says 0). Limits: chunk header line 512 bytes,
 * chunk size < 2^40, trailer 4 KiB.
 */
typedef struct s3_chunked s3_chunked;
typedef int (*s3_chunk_out_fn)(void *arg, const uint8_t *p, size_t len);

int s3_chunked_new(int payload, const s3_auth *a, s3_signer *sg,
    const char *secret, const char *trailer, s3_chunk_out_fn out, void *arg,
    s3_chunked **outp) GK_WUR;
/* GK_ERR_INVALID malformed, GK_ERR_AUTH a chunk signature is wrong, or
 * out's error; sticky. */
int s3_chunked_feed(s3_chunked *c, const uint8_t *p, size_t len) GK_WUR;
/* End of body: 0 when the final chunk (and trailer) arrived and every
 * check held; GK_ERR_AUTH for a wrong trailer checksum. */
int s3_chunked_finish(s3_chunked *c) GK_WUR;
uint64_t s3_chunked_decoded(const s3_chunked *c);
void s3_chunked_free(s3_chunked *c);
/* 1 if trailer names a checksum the decoder checks. */
int s3_checksum_supported(gk_slice trailer);

/*
 * A flexible checksum (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha256,
 * -sha1 by header name): new (GK_ERR_INVALID for another name), update with the
 * body, then check against the base64 value given (0, GK_ERR_AUTH).
 */
typedef struct s3_sum s3_sum;
int s3_sum_new(gk_slice name, s3_sum **out) GK_WUR;
int s3_sum_update(s3_sum *c, const uint8_t *p, size_t len) GK_WUR;
int s3_sum_check(s3_sum *c, gk_slice b64) GK_WUR;
void s3_sum_free(s3_sum *c);

/* ---- request bodies of the endpoint (xml_body.c, expat) ----------------- */

#define S3_BODY_XML_MAX (2u * 1024 * 1024)
#define S3_BODY_ITEMS_MAX 10000	/* S3: 10000 parts */
#define S3_DELETE_KEYS_MAX 1000	/* S3: 1000 keys (more: MalformedXML) */

typedef int (*s3_delete_fn)(void *arg, gk_slice key);
typedef int (*s3_part_fn)(void *arg, unsigned part, gk_slice etag);

/*
 * <Delete><Quiet/>?<Object><Key>..</Key>(<VersionId/>)</Object>...</Delete>:
 * fn per object in order (a non-zero return stops and is returned);
 * *quiet from <Quiet>. GK_ERR_INVALID for malformed XML, a DOCTYPE, an
 * object without a key or no object; GK_ERR_TOO_LARGE past the caps;
 * GK_ERR_DENIED for a <VersionId> other than "null" (no versions kept).
 */
int s3_delete_parse(gk_slice xml, s3_delete_fn fn, void *arg, int *quiet)
    GK_WUR;
/* <CompleteMultipartUpload><Part><PartNumber>1..10000</PartNumber>
 * <ETag>..</ETag></Part>...: fn per part in order; errors as above. */
int s3_complete_parse(gk_slice xml, s3_part_fn fn, void *arg) GK_WUR;

/* ---- ListObjectsV2 ---------------------------------------------------- */

typedef int (*s3_list_fn)(void *arg, gk_slice key, uint64_t size,
    int64_t mtime);

/*
 * Parses one ListObjectsV2 result page (expat; entities and UTF-8 right).
 * Calls fn per <Contents> with the decoded key, size and LastModified
 * (fn returns non-zero to stop: negative is returned, positive stops
 * with 0 and *truncated 0); sets *truncated and copies NextContinuationToken into next (reset
 * first). GK_ERR_INVALID for XML that is malformed or not a listing.
 */
int s3_list_parse(gk_slice xml, s3_list_fn fn, void *arg, int *truncated,
    gk_buf *next) GK_WUR;

/* Appends s as XML text (& < > " ' and CR escaped). */
int s3_xml_escape(gk_buf *b, gk_slice s) GK_WUR;

/* The <Code> and <Message> of an S3 error document (empty if none). */
int s3_error_parse(gk_slice xml, gk_buf *code, gk_buf *message) GK_WUR;

/* ---- the client -------------------------------------------------------- */

typedef struct s3_client s3_client;

typedef struct s3_client_opts {
	const char *endpoint, *bucket, *region;
	int path_style;
	unsigned connect_timeout;	/* seconds */
	unsigned timeout;		/* seconds, whole small call */
	unsigned retries;		/* extra tries for idempotent calls */
	/* credential sources, tried in this order: */
	const char *access_key_id;	/* static keys (config) */
	const char *secret_key;
	const char *session_token;
	int use_env;			/* AWS_ACCESS_KEY_ID, ... */
	const char *shared_file;	/* ~/.aws/credentials style */
	const char *profile;
	int use_container;		/* ECS: AWS_CONTAINER_CREDENTIALS_* */
	int use_imds;			/* EC2 IMDSv2 */
	const char *imds_endpoint;	/* default http://169.254.169.254 */
	/* SSE-KMS key (id or ARN) that uploads ask for; NULL or "": AES256 */
	const char *kms_key_id;
} s3_client_opts;

int s3_client_new(const s3_client_opts *o, s3_client **out, char *err,
    size_t errlen) GK_WUR;
void s3_client_free(s3_client *c);
s3_target *s3_client_target(s3_client *c);
/* Current credentials (refreshed when within 5 minutes of expiry);
 * GK_ERR_UNAVAILABLE if no source has any. Caller releases. */
int s3_client_creds(s3_client *c, s3_creds *out) GK_WUR;
/* Where the current credentials came from ("config", "env", ...). */
const char *s3_client_creds_source(s3_client *c);

/* Why the last failed client call on this thread failed: the HTTP status
 * the gatekeeper should answer (404, 502, 504) and a one-line cause with
 * S3's error code, never S3's raw body or a secret. */
int s3_last_status(void);
const char *s3_last_error(void);

/* A response body sink; return non-zero to abort the transfer. */
typedef int (*s3_body_fn)(void *arg, const uint8_t *p, size_t len);

typedef struct {
	const char *method;
	gk_slice key;			/* object key; empty: the bucket */
	const char *query;		/* encoded, e.g. "list-type=2&prefix=a" */
	const s3_header *headers;	/* extra signed headers */
	size_t n_headers;
	gk_slice body;			/* request body (small, in memory) */
	int idempotent;			/* retries allowed */
	gk_buf *resp;			/* response body (capped), or NULL */
	char *etag;			/* out: ETag, if asked (>= 128 bytes) */
	uint64_t *length;		/* out: Content-Length, if asked */
	int64_t *mtime;			/* out: Last-Modified, if asked */
} s3_call;

/*
 * One signed request, retried with backoff on 5xx and network errors when
 * idempotent. Returns 0 for 2xx; otherwise GK_ERR_NOT_FOUND (404),
 * GK_ERR_DENIED (403), GK_ERR_UNAVAILABLE (other failures) with
 * s3_last_status/error set. *status gets the last HTTP status (0: none).
 */
int s3_client_call(s3_client *c, const s3_call *call, long *status) GK_WUR;

/* HEAD an object: size and Last-Modified. */
int s3_client_head(s3_client *c, gk_slice key, uint64_t *size,
    int64_t *mtime) GK_WUR;

/* Lists every object under prefix after start_after, all pages. */
int s3_client_list(s3_client *c, gk_slice prefix, gk_slice start_after,
    s3_list_fn fn, void *arg) GK_WUR;

/*
 * Streaming GET of [off, off+len) (len UINT64_MAX: to the end) with at
 * most S3_STREAM_BUF bytes held: s3_get_read pulls the next bytes (the
 * transfer is paused while the buffer is full). Freeing the stream
 * aborts the transfer.
 */
#define S3_STREAM_BUF (256u * 1024)
typedef struct s3_get s3_get;
int s3_get_open(s3_client *c, gk_slice key, uint64_t off, uint64_t len,
    s3_get **out) GK_WUR;
/* *got 0 at the end. */
int s3_get_read(s3_get *g, uint8_t *buf, size_t max, size_t *got) GK_WUR;
/* 1 when s3_get_read would return at once (bytes held, the transfer
 * ended or failed); moves the transfer on without waiting. */
int s3_get_ready(s3_get *g);
/* Waits up to ms for that: 0, GK_ERR_AGAIN, or the transfer's failure. */
int s3_get_wait(s3_get *g, unsigned ms) GK_WUR;
void s3_get_free(s3_get *g);

/*
 * Streaming upload: an object of at most S3_PART_SIZE is one PUT at
 * s3_put_complete; a larger one a multipart upload whose parts of
 * S3_PART_SIZE are sent as they fill (memory: two parts). Either way the
 * object appears only at s3_put_complete; s3_put_free aborts an upload not
 * completed.
 */
#define S3_PART_SIZE (8u * 1024 * 1024)
typedef struct s3_put s3_put;
int s3_put_begin(s3_client *c, gk_slice key, s3_put **out) GK_WUR;
int s3_put_write(s3_put *p, const uint8_t *data, size_t len) GK_WUR;
/* Sends the last part of a multipart upload; the object is still
 * invisible (a single PUT waits for s3_put_complete). */
int s3_put_finish(s3_put *p) GK_WUR;
/* Sends what s3_put_finish did not, then completes the upload. */
int s3_put_complete(s3_put *p) GK_WUR;
/* 1 once the upload became a multipart upload (the bucket took a write:
 * its creation). */
int s3_put_multipart(const s3_put *p);
/* Parts are sent by a thread of the upload's own while the next fills
 * (memory: two parts). s3_put_ready: 1 when a write of a body's piece
 * will not wait for a part being sent; s3_put_wait waits up to ms for
 * that (0 or GK_ERR_AGAIN; a failure is reported by the next call). */
int s3_put_ready(s3_put *p);
int s3_put_wait(s3_put *p, unsigned ms) GK_WUR;
void s3_put_free(s3_put *p);

/*
 * The bucket's own multipart uploads, one call each: create (the upload
 * id, malloc'd, into *upload_id; SSE as for every upload), one part
 * (1..10000; the bucket's ETag, quoted as S3 sends it, into etag), complete
 * with parts_xml the "<Part><PartNumber>N</PartNumber><ETag>..</ETag>
 * </Part>" list (S3's error code, e.g. InvalidPart, in s3_last_error),
 * abort.
 */
#define S3_ETAG_MAX 128
int s3_mpu_create(s3_client *c, gk_slice key, char **upload_id) GK_WUR;
int s3_mpu_part(s3_client *c, gk_slice key, gk_slice upload_id,
    unsigned part, gk_slice body, char etag[S3_ETAG_MAX]) GK_WUR;
int s3_mpu_complete(s3_client *c, gk_slice key, gk_slice upload_id,
    gk_slice parts_xml) GK_WUR;
int s3_mpu_abort(s3_client *c, gk_slice key, gk_slice upload_id) GK_WUR;
/* S3's error code of the last failed call on this thread ("" if none). */
const char *s3_last_code(void);
/* The calling thread's last failure (status, message, code), to carry a
 * failure of work done on another thread back to the thread that
 * reports it. */
typedef struct {
	int status;
	char err[256];
	char code[64];
} s3_err_state;
void s3_err_save(s3_err_state *e);
void s3_err_load(const s3_err_state *e);

#endif
