/* s3_int.h - private to the s3 folder. */
#ifndef GK_S3_INT_H
#define GK_S3_INT_H

#include <curl/curl.h>
#include <pthread.h>

#include "s3.h"

#define S3_POOL_MAX 32

/* target.c: a bucket's address (s3_target_new). */
struct s3_target {
	char *scheme;		/* "http" / "https" */
	char *host;		/* host[:port] of the endpoint, default port
				 * left out */
	char *bucket;
	int path_style;		/* effective */
	s3_signer *signer;
	char *kms_key_id;	/* SSE-KMS for uploads, or NULL: AES256 */
};

/*
 * xml.c: one expat parse, shared by the S3 documents the gatekeeper reads
 * (listings and errors from the bucket, the endpoint's request bodies).
 * The frame counts the depth, collects each element's text (at most
 * text_cap bytes, else GK_ERR_TOO_LARGE) and calls start and end with the
 * element's local name (the namespace dropped); a callback stops the parse
 * with s3_xml_fail. Each document's context embeds an s3_xml first.
 */
typedef struct s3_xml s3_xml;
struct s3_xml {
	void (*start)(s3_xml *x, const char *name);
	void (*end)(s3_xml *x, const char *name, gk_slice text);
	int depth;		/* of the element being started or ended */
	int depth_max;		/* 0: no limit */
	int no_doctype;		/* refuse a DOCTYPE (and so entities) */
	size_t text_cap;
	int r;			/* the first failure */
	struct XML_ParserStruct *p;
	gk_buf text;
};
void s3_xml_fail(s3_xml *x, int r);
/* Parses xml: x->r, or GK_ERR_INVALID for XML expat refuses. */
int s3_xml_run(s3_xml *x, gk_slice xml) GK_WUR;

/*
 * xml.c: the text of the first <tag>..</tag> in a small answer of the
 * bucket (an upload id), malloc'd: 1..1024 bytes, &quot; the only entity
 * taken; NULL when absent or odd.
 */
char *s3_xml_leaf(gk_slice xml, const char *tag);

/* sigv4.c: lower-case hex SHA-256 of in (payload hashes). */
void s3_sha256_hex(gk_slice in, char out[65]);

struct s3_client {
	s3_target *t;
	unsigned connect_timeout, timeout, retries;
	pthread_mutex_t pool_mu;
	CURL *pool[S3_POOL_MAX];
	int pool_n;
	/* credentials: the current set and where to get the next */
	pthread_mutex_t cred_mu;
	s3_creds cur;
	int have;
	const char *source;
	uint64_t gen;
	char *static_ak, *static_sk, *static_tok;
	int use_env, use_container, use_imds;
	char *shared_file, *profile, *imds_endpoint;
};

/* creds.c */
int s3_creds_init(s3_client *c, const s3_client_opts *o, char *err,
    size_t errlen) GK_WUR;
void s3_creds_fini(s3_client *c);

/* client.c */
CURL *s3_easy_get(s3_client *c);
void s3_easy_put(s3_client *c, CURL *e, int reusable);
void s3_easy_setup(s3_client *c, CURL *e, long total_timeout);
struct curl_slist *s3_lines_to_slist(const gk_buf *lines,
    struct curl_slist *l);
int s3_map_error(s3_client *c, long status, CURLcode cr, gk_slice body,
    const char *what);

#endif
