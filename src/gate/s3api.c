/*
 * s3api.c - the S3-compatible endpoint: which request it is (path-style
 * or virtual-host addressing, the operation), who sends it (SigV4 with a
 * grant's secret), whether the grant and the customer's policy allow it,
 * and the reads (HeadObject, GetObject, HeadBucket). Listings are in
 * s3api_list.c, writes in s3api_write.c, multipart uploads in
 * s3api_mpu.c, what they all share (replies, errors, scope) in
 * s3api_util.c. Every answer is audited (protocol
 * "s3api", kid = grant id, sub = access key id); writes become visible in
 * gate_s3api_commit, after their record is durable.
 */
#include "s3api_int.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

#define GRANT_RATE_SLOTS 1024

/* An RFC 7231 date to unix microseconds. */
static int
http_date(const char *s, int64_t *out_us)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char m[4], iso[64];
	int d, y, hh, mm, ss, i;

	if (sscanf(s, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT", &d, m, &y, &hh,
	    &mm, &ss) != 6)
		return GK_ERR_INVALID;
	for (i = 0; i < 12 && strcmp(m, mon[i]) != 0; i++)
		;
	if (i == 12 || d < 1 || d > 31 || y < 1970 || y > 9999 || hh > 23 ||
	    mm > 59 || ss > 60)
		return GK_ERR_INVALID;
	snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02dZ", y, i + 1,
	    d, hh, mm, ss);
	return gk_time_parse(iso, out_us);
}

/* ---- addressing --------------------------------------------------------- */

/* Host without its port, lower case compare helpers. */
static gk_slice
host_name(gk_slice h)
{
	size_t i;

	if (h.len > 0 && h.p[0] == '[')
		return h;
	for (i = h.len; i > 0; i--) {
		if (h.p[i - 1] == ':')
			return gk_slice_of(h.p, i - 1);
		if (h.p[i - 1] < '0' || h.p[i - 1] > '9')
			break;
	}
	return h;
}

static int
slice_ieq(gk_slice a, const char *b)
{
	size_t n = strlen(b);

	return a.len == n && strncasecmp((const char *)a.p, b, n) == 0;
}

/* 1 when host is "<bucket>.<base>" */
static int
is_vhost(gk_slice host, const char *bucket)
{
	size_t n = strlen(bucket);

	return host.len > n + 1 && strncasecmp((const char *)host.p, bucket,
	    n) == 0 && host.p[n] == '.';
}

int
gate_s3api_match(const gk_app *app, const gk_req *req)
{
	const gate_settings *cfg = app->cfg;
	gk_slice h;
	size_t n;

	if (!cfg->s3api_enabled)
		return 0;
	if (req->on_s3api_port)
		return 1;
	if (cfg->s3api_host[0] == '\0')
		return 0;
	h = host_name(req->host);
	if (slice_ieq(h, cfg->s3api_host))
		return 1;
	n = strlen(cfg->s3api_host);
	return h.len > n + 1 && h.p[h.len - n - 1] == '.' &&
	    strncasecmp((const char *)h.p + h.len - n, cfg->s3api_host, n) == 0;
}

/* Splits the request into bucket (may be empty) and the raw key. */
static void
split_path(const gate_s3 *s, gk_slice *bucket, gk_slice *rawkey)
{
	const gate_settings *cfg = s->app->cfg;
	gk_slice p = s->req->path, h = host_name(s->req->host);
	const uint8_t *slash;

	if (p.len > 0 && p.p[0] == '/')
		p = gk_slice_of(p.p + 1, p.len - 1);
	if (is_vhost(h, cfg->s3api_bucket) &&
	    !(cfg->s3api_host[0] != '\0' && slice_ieq(h, cfg->s3api_host))) {
		*bucket = gk_slice_of(h.p, strlen(cfg->s3api_bucket));
		*rawkey = p;
		return;
	}
	slash = memchr(p.p, '/', p.len);
	if (slash == NULL) {
		*bucket = p;
		*rawkey = GK_SLICE_NULL;
		return;
	}
	*bucket = gk_slice_of(p.p, (size_t)(slash - p.p));
	*rawkey = gk_slice_of(slash + 1, p.len - (size_t)(slash + 1 - p.p));
}

static int
has(const gate_s3 *s, const char *name)
{
	return s3api_q(s, name) != NULL;
}

/* Subresources we do not implement (bucket or object level). */
static int
other_subresource(const gate_s3 *s)
{
	static const char *const names[] = { "acl", "policy", "cors",
	    "lifecycle", "versioning", "tagging", "website", "logging",
	    "notification", "replication", "encryption", "object-lock",
	    "retention", "legal-hold", "torrent", "versions", "accelerate",
	    "requestPayment", "inventory", "analytics", "metrics",
	    "ownershipControls", "publicAccessBlock", "intelligent-tiering",
	    "restore", "select", "attributes", "policyStatus" };
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(names); i++) {
		if (has(s, names[i]))
			return 1;
	}
	return 0;
}

static int
has_header(const gate_s3 *s, const char *lname)
{
	gk_buf v;
	int r;

	gk_buf_init(&v, 8192);
	r = s->req->header(s->req->header_ctx, lname, &v);
	gk_buf_release(&v);
	return r != GK_ERR_NOT_FOUND;
}

/*
 * Request semantics we do not implement on an operation we do serve:
 * refused (NotImplemented) rather than silently dropped, which would do
 * something else than asked: a conditional write that overwrites, an
 * Object Lock that is not kept, an SSE-C object readable without its key.
 */
static int
unsupported_headers(const gate_s3 *s)
{
	static const char *const any[] = {
	    "x-amz-server-side-encryption-customer-algorithm",
	    "x-amz-copy-source-server-side-encryption-customer-algorithm" };
	static const char *const writes[] = { "if-match", "if-none-match",
	    "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
	    "x-amz-object-lock-legal-hold", "x-amz-copy-source-if-match",
	    "x-amz-copy-source-if-none-match",
	    "x-amz-copy-source-if-modified-since",
	    "x-amz-copy-source-if-unmodified-since" };
	size_t i;

	for (i = 0; i < GK_ARRAY_LEN(any); i++)
		if (has_header(s, any[i]))
			return 1;
	if (s->op != OP_PUT_OBJECT && s->op != OP_COPY_OBJECT &&
	    s->op != OP_MPU_CREATE && s->op != OP_MPU_COMPLETE &&
	    s->op != OP_DELETE_OBJECT)
		return 0;	/* GET and HEAD take If-Match and If-None-Match */
	for (i = 0; i < GK_ARRAY_LEN(writes); i++)
		if (has_header(s, writes[i]))
			return 1;
	return 0;
}

static int
method(const gate_s3 *s, const char *m)
{
	return strcmp(s->req->method, m) == 0;
}

static void
classify(gate_s3 *s, int have_bucket, int have_key)
{
	int copy = 0;
	gk_buf v;

	gk_buf_init(&v, 4096);
	copy = s->req->header(s->req->header_ctx, "x-amz-copy-source",
	    &v) == 0;
	gk_buf_release(&v);
	s->op = OP_NOT_IMPLEMENTED;
	if (!have_bucket) {
		if (method(s, "GET"))
			s->op = OP_LIST_BUCKETS;
	} else if (!have_key) {
		if (other_subresource(s))
			;
		else if (method(s, "HEAD"))
			s->op = OP_HEAD_BUCKET;
		else if (method(s, "GET") && has(s, "location"))
			s->op = OP_GET_LOCATION;
		else if (method(s, "GET") && has(s, "uploads"))
			s->op = OP_MPU_LIST_UPLOADS;
		else if (method(s, "GET") && has(s, "list-type")) {
			const gk_buf *lt = s3api_q(s, "list-type");

			if (gk_slice_eq_str(gk_slice_of(lt->data, lt->len),
			    "2"))
				s->op = OP_LIST_V2;
		} else if (method(s, "GET"))
			s->op = OP_LIST_V1;
		else if (method(s, "POST") && has(s, "delete"))
			s->op = OP_DELETE_OBJECTS;
		else if (method(s, "PUT"))
			s->op = OP_CREATE_BUCKET;
	} else {
		if (other_subresource(s))
			;
		else if (method(s, "GET") && has(s, "uploadId"))
			s->op = OP_MPU_LIST_PARTS;
		else if (method(s, "GET"))
			s->op = OP_GET_OBJECT;
		else if (method(s, "HEAD"))
			s->op = OP_HEAD_OBJECT;
		else if (method(s, "PUT") && has(s, "uploadId") &&
		    has(s, "partNumber"))
			s->op = copy ? OP_NOT_IMPLEMENTED : OP_MPU_PART;
		else if (method(s, "PUT") && copy)
			s->op = OP_COPY_OBJECT;
		else if (method(s, "PUT"))
			s->op = OP_PUT_OBJECT;
		else if (method(s, "POST") && has(s, "uploads"))
			s->op = OP_MPU_CREATE;
		else if (method(s, "POST") && has(s, "uploadId"))
			s->op = OP_MPU_COMPLETE;
		else if (method(s, "DELETE") && has(s, "uploadId"))
			s->op = OP_MPU_ABORT;
		else if (method(s, "DELETE"))
			s->op = OP_DELETE_OBJECT;
	}
}

static const char *const op_names[] = {
	[OP_NONE] = "S3",
	[OP_LIST_BUCKETS] = "ListBuckets",
	[OP_HEAD_BUCKET] = "HeadBucket",
	[OP_GET_LOCATION] = "GetBucketLocation",
	[OP_LIST_V2] = "ListObjectsV2",
	[OP_LIST_V1] = "ListObjects",
	[OP_HEAD_OBJECT] = "HeadObject",
	[OP_GET_OBJECT] = "GetObject",
	[OP_PUT_OBJECT] = "PutObject",
	[OP_COPY_OBJECT] = "CopyObject",
	[OP_DELETE_OBJECT] = "DeleteObject",
	[OP_DELETE_OBJECTS] = "DeleteObjects",
	[OP_MPU_CREATE] = "CreateMultipartUpload",
	[OP_MPU_PART] = "UploadPart",
	[OP_MPU_COMPLETE] = "CompleteMultipartUpload",
	[OP_MPU_ABORT] = "AbortMultipartUpload",
	[OP_MPU_LIST_PARTS] = "ListParts",
	[OP_MPU_LIST_UPLOADS] = "ListMultipartUploads",
	[OP_CREATE_BUCKET] = "CreateBucket",
	[OP_NOT_IMPLEMENTED] = "NotImplemented",
};

/* The grant operations an S3 operation needs (any of them). */
static unsigned
needs(enum s3op op)
{
	switch (op) {
	case OP_HEAD_OBJECT:
	case OP_GET_OBJECT:
		return GRANT_OP_GET;
	case OP_LIST_V2:
	case OP_LIST_V1:
		return GRANT_OP_LIST;
	case OP_MPU_LIST_PARTS:
	case OP_MPU_LIST_UPLOADS:
		return GRANT_OP_LIST | GRANT_OP_PUT;
	case OP_PUT_OBJECT:
	case OP_COPY_OBJECT:
	case OP_MPU_CREATE:
	case OP_MPU_PART:
	case OP_MPU_COMPLETE:
		return GRANT_OP_PUT;
	case OP_MPU_ABORT:
		return GRANT_OP_PUT | GRANT_OP_DELETE;
	case OP_DELETE_OBJECT:
	case OP_DELETE_OBJECTS:
		return GRANT_OP_DELETE;
	default:
		return GRANT_OP_ALL;	/* bucket-level reads: any grant */
	}
}

/* ---- the grant's own rate ------------------------------------------------ */

static struct {
	char id[GRANT_ID_LEN + 1];
	double tokens;
	int64_t last_us;
} rate_slots[GRANT_RATE_SLOTS];
static pthread_mutex_t rate_mu = PTHREAD_MUTEX_INITIALIZER;

/* 0 when the grant may make a request now. */
static int
grant_rate_ok(const gk_grant *g)
{
	uint32_t h = 2166136261u;
	size_t i;
	int64_t now = gk_mono_us();
	double burst = g->rate * 2.0;
	int ok;

	if (g->rate == 0)
		return 1;
	for (i = 0; g->id[i] != '\0'; i++)
		h = (h ^ (uint8_t)g->id[i]) * 16777619u;
	i = h % GRANT_RATE_SLOTS;
	pthread_mutex_lock(&rate_mu);
	if (strcmp(rate_slots[i].id, g->id) != 0) {
		memcpy(rate_slots[i].id, g->id, sizeof(rate_slots[i].id));
		rate_slots[i].tokens = burst;
		rate_slots[i].last_us = now;
	}
	rate_slots[i].tokens += (double)(now - rate_slots[i].last_us) *
	    g->rate / 1e6;
	if (rate_slots[i].tokens > burst)
		rate_slots[i].tokens = burst;
	rate_slots[i].last_us = now;
	ok = rate_slots[i].tokens >= 1.0;
	if (ok)
		rate_slots[i].tokens -= 1.0;
	pthread_mutex_unlock(&rate_mu);
	return ok;
}

/* ---- authentication and scope ------------------------------------------- */

static int
req_header(void *arg, const char *lname, gk_buf *out)
{
	const gk_req *req = arg;

	return req->header(req->header_ctx, lname, out);
}

static int
grant_ip_ok(const gate_s3 *s)
{
	gk_addr net;
	unsigned bits, i, b;
	size_t k;

	if (s->grant.n_ips == 0)
		return 1;
	for (k = 0; k < s->grant.n_ips; k++) {
		if (policy_cidr_parse(gk_slice_str(s->grant.ips[k]), &net,
		    &bits) != 0)
			continue;
		for (i = 0; i < bits; i++) {
			b = 7 - (i & 7);
			if (((s->req->client.b[i / 8] >> b) & 1) !=
			    ((net.b[i / 8] >> b) & 1))
				break;
		}
		if (i == bits)
			return 1;
	}
	return 0;
}

/*
 * Who sends the request and whether the grant and the policy allow it.
 * 0 to go on; otherwise s3api_fail was called.
 */
static int
authorize(gate_s3 *s, gk_reply *rep)
{
	gk_app *app = s->app;
	const gk_req *req = s->req;
	const char *why = "";
	int r;

	r = s3_auth_parse(req->query, req_header, (void *)req, &s->auth,
	    &why);
	if (r == GK_ERR_NOT_FOUND) {
		s3api_fail(s, 403, "AccessDenied", "Access Denied");
		return -1;
	}
	if (r == GK_ERR_DENIED) {
		s3api_fail(s, 400, "InvalidRequest", why);
		return -1;
	}
	if (r != 0) {
		s3api_fail(s, 400, s->auth.presigned ?
		    "AuthorizationQueryParametersError" :
		    "AuthorizationHeaderMalformed", why);
		return -1;
	}
	rep->sub = strdup(s->auth.access_key);
	r = grant_by_key(app->grants, s->auth.access_key, &s->grant);
	if (r == GK_ERR_NOT_FOUND) {
		s3api_fail(s, 403, "InvalidAccessKeyId", "The AWS Access Key "
		    "Id you provided does not exist in our records.");
		return -1;
	}
	if (r == GK_ERR_AUTH) {
		/*
		 * The grant key changed and this grant was not rotated since:
		 * its signature cannot be checked, and the access key id will
		 * never work again (a rotation makes a new one). The client
		 * is told what a revoked key is told; the log and the audit
		 * record name the grant and the remedy.
		 */
		gk_warn("s3api: grant %s is refused: its secret does not "
		    "decrypt with the current grant key (gatekeeper grant "
		    "rotate %s)", s->grant.id, s->grant.id);
		rep->kid = strdup(s->grant.id);
		snprintf(s->err_note, sizeof(s->err_note), "the grant's secret "
		    "does not decrypt with the current grant key: rotate it");
		s3api_fail(s, 403, "InvalidAccessKeyId", "The AWS Access Key "
		    "Id you provided does not exist in our records.");
		return -1;
	}
	if (r != 0) {
		gk_error("s3api: grant lookup failed: %s (%s)", gk_err_str(r),
		    grant_error());
		s3api_fail(s, 503, "ServiceUnavailable", "The grants cannot "
		    "be read at the moment; please try again.");
		return -1;
	}
	s->have_grant = 1;
	rep->kid = strdup(s->grant.id);
	r = s3_auth_verify(&s->auth, app->s3api_signer, s->grant.secret,
	    req->method, req->path, req->query, req_header, (void *)req,
	    gk_now_s(), &why);
	/* the secret stays (signed chunks) until gate_s3api_free wipes it */
	if (r == GK_ERR_EXPIRED && strcmp(why, "skew") == 0) {
		s3api_fail(s, 403, "RequestTimeTooSkewed", "The difference "
		    "between the request time and the current time is too "
		    "large.");
		return -1;
	}
	if (r == GK_ERR_EXPIRED) {
		s3api_fail(s, 403, "AccessDenied", strcmp(why, "expired") == 0 ?
		    "Request has expired" : "Request is not valid yet");
		return -1;
	}
	if (r == GK_ERR_INVALID && strcmp(why, "region") == 0) {
		char m[160];

		snprintf(m, sizeof(m), "The authorization header is "
		    "malformed; the region '%.32s' is wrong; expecting "
		    "'%.32s'", s->auth.region, app->cfg->s3api_region);
		s3api_fail(s, 400, s->auth.presigned ?
		    "AuthorizationQueryParametersError" :
		    "AuthorizationHeaderMalformed", m);
		return -1;
	}
	if (r == GK_ERR_INVALID) {
		s3api_fail(s, 400, s->auth.presigned ?
		    "AuthorizationQueryParametersError" :
		    "AuthorizationHeaderMalformed", "The authorization is "
		    "malformed");
		return -1;
	}
	if (r != 0) {
		s3api_fail(s, 403, "SignatureDoesNotMatch", "The request "
		    "signature we calculated does not match the signature you "
		    "provided. Check your key and signing method.");
		return -1;
	}
	/* the signature holds: now the grant's state */
	if (s->grant.revoked_s != 0) {
		s3api_fail(s, 403, "InvalidAccessKeyId", "The AWS Access Key "
		    "Id you provided does not exist in our records.");
		return -1;
	}
	if (s->grant.expires_s != 0 && s->grant.expires_s <= gk_now_s()) {
		s3api_fail(s, 403, "AccessDenied", "Access Denied (the grant "
		    "has expired)");
		return -1;
	}
	if (!grant_ip_ok(s)) {
		s3api_fail(s, 403, "AccessDenied", "Access Denied (the grant "
		    "does not allow this address)");
		return -1;
	}
	if (gate_acl_ok(req, needs(s->op) & GRANT_OP_PUT ? GK_OP_PUT :
	    needs(s->op) & (GRANT_OP_LIST) ? GK_OP_LIST : GK_OP_GET, 0) != 0) {
		s3api_fail(s, 403, "AccessDenied", "Access Denied (ACL)");
		return -1;
	}
	if (!grant_rate_ok(&s->grant)) {
		s3api_fail(s, 503, "SlowDown", "Please reduce your request "
		    "rate.");
		return -1;
	}
	return 0;
}

/* The operation's key scope, after authorize. */
static int
scope(gate_s3 *s)
{
	gk_slice key = gk_slice_of(s->key.data, s->key.len);

	if (s->op == OP_NOT_IMPLEMENTED || s->op == OP_LIST_BUCKETS ||
	    s->op == OP_HEAD_BUCKET || s->op == OP_GET_LOCATION ||
	    s->op == OP_CREATE_BUCKET)
		return 0;
	if ((s->grant.ops & needs(s->op)) == 0) {
		s3api_fail(s, 403, "AccessDenied", "Access Denied (the grant "
		    "does not hold this operation)");
		return -1;
	}
	if (s->has_key && !s3api_in_scope(s, key, needs(s->op))) {
		s3api_fail(s, 403, "AccessDenied", "Access Denied (the key is "
		    "outside the grant's prefix)");
		return -1;
	}
	return 0;
}

/*
 * GetObject and HeadObject with partNumber. Part boundaries are not kept
 * once a multipart upload completes, so every object is one part, as an
 * object S3 got in one piece: part 1 is the whole object, any other part
 * is refused (read_object), never answered with the whole object, which
 * a client fetching parts 1..N would assemble N times.
 */
static int
part_number(gate_s3 *s)
{
	uint64_t n;

	if (!has(s, "partNumber"))
		return 0;
	if (gk_parse_u64(s3api_qv(s, "partNumber"), S3API_MAX_PARTS,
	    &n) != 0 || n == 0) {
		s3api_fail(s, 400, "InvalidArgument", "Part number must be an "
		    "integer between 1 and 10000, inclusive");
		return -1;
	}
	if (s->req->range.p != NULL) {
		s3api_fail(s, 400, "InvalidRequest", "Cannot specify both "
		    "Range header and partNumber query parameter");
		return -1;
	}
	s->part = (unsigned)n;
	return 0;
}

/* ---- the lifecycle ----------------------------------------------------------- */

void
gate_s3api_begin(gk_app *app, const gk_req *req, gate_s3 **out,
    gk_reply *rep)
{
	const gate_settings *cfg = app->cfg;
	const gk_buf *v;
	gate_s3 *s;
	gk_slice bucket, rawkey, dup;

	*out = NULL;
	rep->protocol = "s3api";
	rep->no_default_headers = 1;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		gate_reply_error(rep, 500, "error", "Internal Exception");
		return;
	}
	s->app = app;
	s->req = req;
	gk_buf_init(&s->key, 4096);
	gk_buf_init(&s->xml, S3_BODY_XML_MAX);
	gk_buf_init(&s->deletes, 2 * 1024 * 1024);
	gk_buf_init(&s->store_upload, 2048);
	gk_buf_init(&s->complete_xml, 4u * 1024 * 1024);
	*out = s;
	if (gate_rate_limit(app, req, rep)) {
		s3api_fail(s, 503, "SlowDown", "Please reduce your request "
		    "rate.");
		return;
	}
	if (gate_params_parse(req->query, &s->qs, &dup) != 0) {
		s3api_fail(s, 400, "InvalidArgument", "The query string is "
		    "malformed.");
		return;
	}
	s->have_qs = 1;
	split_path(s, &bucket, &rawkey);
	if (rawkey.len > 0) {
		if (gk_pct_decode(rawkey, &s->key) != 0 ||
		    !gate_key_valid(gk_slice_of(s->key.data, s->key.len), 1)) {
			s->has_key = 0;
			s3api_fail(s, 400, "InvalidArgument", "The key is not "
			    "valid.");
			return;
		}
		s->has_key = 1;
		rep->path = gate_text_copy(gk_slice_of(s->key.data, s->key.len),
		    2048);
	}
	classify(s, bucket.len > 0, rawkey.len > 0);
	s->op_name = op_names[s->op];
	rep->operation = strdup(s->op_name);
	if (authorize(s, rep) != 0)
		return;
	if (bucket.len > 0 && !gk_slice_eq_str(bucket, cfg->s3api_bucket)) {
		s3api_fail(s, 404, "NoSuchBucket", "The specified bucket does "
		    "not exist");
		return;
	}
	if (s->op == OP_NOT_IMPLEMENTED || unsupported_headers(s)) {
		s3api_fail(s, 501, "NotImplemented", "A header or query you "
		    "provided implies functionality that is not implemented.");
		return;
	}
	/* no versions are kept: only the "null" version exists; another
	 * one must not be answered (or deleted) with the current object */
	if ((v = s3api_q(s, "versionId")) != NULL &&
	    !gk_slice_eq_str(gk_slice_of(v->data, v->len), "null")) {
		s3api_fail(s, 400, "InvalidArgument", "Invalid version id "
		    "specified");
		return;
	}
	if ((s->op == OP_GET_OBJECT || s->op == OP_HEAD_OBJECT) &&
	    part_number(s) != 0)
		return;
	if ((s->op == OP_GET_OBJECT || s->op == OP_HEAD_OBJECT) &&
	    req->range_fields > 1) {
		s3api_fail(s, 400, "InvalidArgument", "Several Range header "
		    "fields: send one.");
		return;
	}
	if (scope(s) != 0)
		return;
	gk_debug("s3api: request %s: %s, payload mode %d", req->request_id,
	    s->op_name, s->auth.payload);
	if (s3api_write_begin(s) != 0)
		return;
}

int
gate_s3api_refused(const gate_s3 *s)
{
	return s->err_status != 0;
}

void
gate_s3api_abandon(gate_s3 *s)
{
	s3api_fail(s, 400, "IncompleteBody", "You did not provide the number "
	    "of bytes specified by the Content-Length HTTP header.");
}

void
gate_s3api_feed(gate_s3 *s, const uint8_t *p, size_t len)
{
	if (s->err_status != 0 || s->body == BODY_NONE)
		return;	/* discarded */
	s3api_write_feed(s, p, len);
}

gk_store_writer *
gate_s3api_writer(const gate_s3 *s)
{
	return s->err_status != 0 ? NULL : s->w;
}

/* HeadObject, GetObject. */
static void
read_object(gate_s3 *s, gk_reply *rep)
{
	gk_app *app = s->app;
	gk_slice key = gk_slice_of(s->key.data, s->key.len);
	gk_buf v;
	uint64_t size = 0, off = 0, len = 0;
	int64_t mtime = 0, t_us;
	char etag[64], date[40], cr[96], lenbuf[32];
	int r, not_modified = 0, failed_pre = 0;

	gk_buf_init(&v, 4096);
	r = store_get_open(app->store, key, &rep->reader, &size, &mtime);
	if (r != 0) {
		s3api_store_error(s, rep, r);
		if (r == GK_ERR_NOT_FOUND && strcmp(s->req->method, "HEAD") == 0)
			rep->body.len = 0;
		goto out;
	}
	s3api_etag(key, size, mtime, etag, sizeof(etag));
	/* conditions (RFC 7232 order, as S3) */
	if (s->req->header(s->req->header_ctx, "if-match", &v) == 0) {
		if (!gk_slice_eq_str(gk_slice_of(v.data, v.len), etag) &&
		    !gk_slice_eq_str(gk_slice_of(v.data, v.len), "*"))
			failed_pre = 1;
	} else {
		gk_buf_reset(&v);
		if (s->req->header(s->req->header_ctx, "if-unmodified-since",
		    &v) == 0 && gk_buf_append(&v, "", 1) == 0 &&
		    http_date((const char *)v.data, &t_us) == 0 &&
		    mtime > t_us / 1000000)
			failed_pre = 1;
	}
	gk_buf_reset(&v);
	if (s->req->header(s->req->header_ctx, "if-none-match", &v) == 0) {
		if (gk_slice_eq_str(gk_slice_of(v.data, v.len), etag) ||
		    gk_slice_eq_str(gk_slice_of(v.data, v.len), "*"))
			not_modified = 1;
	} else {
		gk_buf_reset(&v);
		if (s->req->header(s->req->header_ctx, "if-modified-since",
		    &v) == 0 && gk_buf_append(&v, "", 1) == 0 &&
		    http_date((const char *)v.data, &t_us) == 0 &&
		    mtime <= t_us / 1000000)
			not_modified = 1;
	}
	if (failed_pre) {
		s3api_error(s, rep, 412, "PreconditionFailed", "At least one "
		    "of the pre-conditions you specified did not hold");
		goto out;
	}
	gk_time_http(mtime, date, sizeof(date));
	if (not_modified) {
		store_reader_free(rep->reader);
		rep->reader = NULL;
		rep->status = 304;
		rep->content_type = NULL;
		gk_buf_reset(&rep->body);
		if (s3api_header(rep, "ETag", etag) != 0 ||
		    s3api_header(rep, "Last-Modified", date) != 0)
			s3api_store_error(s, rep, GK_ERR_NOMEM);
		rep->decision = "allow";
		goto out;
	}
	if (s->part > 1) {
		s3api_error(s, rep, 416, "InvalidPartNumber", "The requested "
		    "partnumber is not satisfiable");
		goto out;
	}
	if (s->part == 1)	/* the one part: the whole object */
		r = size > 0 ? gate_range_parse(gk_slice_str("bytes=0-"), size,
		    &off, &len) : GK_ERR_NOT_FOUND;
	else
		r = gate_range_parse(s->req->range, size, &off, &len);
	if (r == GK_ERR_RANGE) {
		s3api_error(s, rep, 416, "InvalidRange", "The requested range "
		    "is not satisfiable");
		snprintf(cr, sizeof(cr), "bytes */%llu",
		    (unsigned long long)size);
		rep->content_range = strdup(cr);
		goto out;
	}
	if (r == 0) {
		rep->status = 206;
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
		    (unsigned long long)off, (unsigned long long)(off + len - 1),
		    (unsigned long long)size);
		rep->content_range = strdup(cr);
	} else {
		rep->status = 200;
		off = 0;
		len = size;
	}
	if ((r = store_reader_verify(rep->reader, off, len)) != 0) {
		s3api_store_error(s, rep, r);
		goto out;
	}
	snprintf(lenbuf, sizeof(lenbuf), "%llu", (unsigned long long)len);
	if (s3api_header(rep, "ETag", etag) != 0 ||
	    s3api_header(rep, "Last-Modified", date) != 0 ||
	    s3api_header(rep, "Accept-Ranges", "bytes") != 0 ||
	    (s->part == 1 &&
	    s3api_header(rep, "x-amz-mp-parts-count", "1") != 0)) {
		s3api_store_error(s, rep, GK_ERR_NOMEM);
		goto out;
	}
	rep->off = off;
	rep->len = len;
	rep->total = size;
	rep->mtime = mtime;
	rep->bytes = strcmp(s->req->method, "HEAD") == 0 ? 0 : len;
	rep->content_type = "application/octet-stream";
	rep->grant = 1;
	rep->decision = "allow";
out:
	gk_buf_release(&v);
}

void
gate_s3api_end(gate_s3 *s, gk_reply *rep)
{
	const gate_settings *cfg = s->app->cfg;

	if (s->err_status == 0 && s->body != BODY_NONE)
		s3api_write_end(s, rep);
	if (s->err_status != 0) {
		s3api_error(s, rep, s->err_status, s->err_code, s->err_msg);
		if (s->err_status == 503 && strcmp(s->err_code, "SlowDown") == 0)
			rep->retry_after = 1;
		goto done;
	}
	if (rep->status != 0)
		goto done;	/* a write decided */
	switch (s->op) {
	case OP_HEAD_BUCKET:
		rep->status = 200;
		rep->grant = 1;
		rep->content_type = NULL;
		if (s3api_header(rep, "x-amz-bucket-region",
		    cfg->s3api_region) != 0)
			s3api_store_error(s, rep, GK_ERR_NOMEM);
		break;
	case OP_CREATE_BUCKET:
		s3api_error(s, rep, 409, "BucketAlreadyOwnedByYou", "Your "
		    "previous request to create the named bucket succeeded "
		    "and you already own it.");
		break;
	case OP_HEAD_OBJECT:
	case OP_GET_OBJECT:
		read_object(s, rep);
		break;
	case OP_COPY_OBJECT:
	case OP_DELETE_OBJECT:
	case OP_MPU_CREATE:
	case OP_MPU_ABORT:
		s3api_write_decide(s, rep);
		break;
	default:
		s3api_list(s, rep);
		break;
	}
done:
	if (s3api_header(rep, "x-amz-request-id", s->req->request_id) != 0 ||
	    s3api_header(rep, "x-amz-id-2", s->req->request_id) != 0)
		gk_warn("s3api: cannot add the request id header");
	if (rep->status == 0)
		s3api_error(s, rep, 500, "InternalError", "We encountered an "
		    "internal error. Please try again.");
	if (rep->grant && rep->message == NULL)
		rep->message = strdup("Success");
	gate_reply_finish(s->app, s->req, rep);
}

void
gate_s3api_commit(gate_s3 *s, gk_reply *rep)
{
	if (s == NULL || !rep->grant)
		return;
	s3api_write_commit(s, rep);
}

void
gate_s3api_free(gate_s3 *s)
{
	if (s == NULL)
		return;
	if (s->have_qs)
		gate_params_release(&s->qs);
	gk_wipe(&s->grant, sizeof(s->grant));
	gk_buf_release(&s->key);
	gk_buf_release(&s->xml);
	gk_buf_release(&s->deletes);
	s3_chunked_free(s->ck);
	EVP_MD_CTX_free(s->md5);
	EVP_MD_CTX_free(s->sha);
	s3_sum_free(s->hsum);
	gk_buf_release(&s->hsum_val);
	store_writer_free(s->w);
	s3api_write_free(s);
	free(s->cleanup_prefix);
	free(s);
}
