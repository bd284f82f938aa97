/*
 * verify.c - SigV4 verification for the S3-compatible endpoint: a
 * request's credentials (parsed by auth.c) checked for scope and time, the
 * signature recomputed with the signer of sigv4.c and compared in constant
 * time. The body's own checks are chunked.c's and checksum.c's.
 */
#include "s3_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKEW_S 900

/* The raw query without the X-Amz-Signature parameter. */
static int
query_without_sig(gk_slice q, gk_buf *out)
{
	size_t start = 0, end;
	int first = 1, r;

	while (start < q.len) {
		const uint8_t *amp = memchr(q.p + start, '&', q.len - start);

		end = amp ? (size_t)(amp - q.p) : q.len;
		if (!(end - start >= 16 && memcmp(q.p + start,
		    "X-Amz-Signature=", 16) == 0) &&
		    !(end - start == 15 && memcmp(q.p + start,
		    "X-Amz-Signature", 15) == 0)) {
			if ((!first && (r = gk_buf_append(out, "&", 1)) != 0) ||
			    (r = gk_buf_append(out, q.p + start,
			    end - start)) != 0)
				return r;
			first = 0;
		}
		start = end + 1;
	}
	return gk_buf_append(out, "", 0);
}

int
s3_auth_verify(const s3_auth *a, s3_signer *sg, const char *secret,
    const char *method, gk_slice raw_path, gk_slice raw_query,
    s3_header_fn hdr, void *arg, int64_t now, const char **why)
{
	s3_header hs[64];
	gk_buf vals[64], path, dec, q, creq, sts;
	char sig[S3_SIG_HEX_LEN + 1], scope_want[160];
	const char *p, *e;
	size_t n = 0, i;
	int r = GK_ERR_INVALID, has_host = 0;
	s3_creds c;

	*why = "";
	gk_buf_init(&path, 16384);
	gk_buf_init(&dec, 16384);
	gk_buf_init(&q, 16384);
	gk_buf_init(&creq, 64 * 1024);
	gk_buf_init(&sts, 4096);
	snprintf(scope_want, sizeof(scope_want), "%.8s/%s/s3/aws4_request",
	    a->amz_date, s3_signer_region(sg));
	if (strcmp(a->scope, scope_want) != 0) {
		*why = strcmp(a->region, s3_signer_region(sg)) != 0 ?
		    "region" : strcmp(a->service, "s3") != 0 ? "service" :
		    "date";
		goto out;
	}
	if (a->presigned) {
		if (a->time - now > SKEW_S) {
			r = GK_ERR_EXPIRED;
			*why = "not yet valid";
			goto out;
		}
		if (now > a->time + a->expires) {
			r = GK_ERR_EXPIRED;
			*why = "expired";
			goto out;
		}
	} else if (a->time - now > SKEW_S || now - a->time > SKEW_S) {
		r = GK_ERR_EXPIRED;
		*why = "skew";
		goto out;
	}
	/* the signed headers, in the order given (must be sorted) */
	for (p = a->signed_headers; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, ';');
		if (e == NULL)
			e = p + strlen(p);
		if (e == p || n == GK_ARRAY_LEN(hs) || e - p > 128) {
			*why = "signed headers";
			goto out_vals;
		}
		{
			char name[129];

			memcpy(name, p, (size_t)(e - p));
			name[e - p] = '\0';
			for (i = 0; name[i] != '\0'; i++) {
				if (name[i] >= 'A' && name[i] <= 'Z') {
					*why = "signed headers";
					goto out_vals;
				}
			}
			if (strcmp(name, "host") == 0)
				has_host = 1;
			gk_buf_init(&vals[n], 16384);
			hs[n].name = gk_slice_of(p, (size_t)(e - p));
			if (hdr(arg, name, &vals[n]) != 0) {
				n++;
				*why = "a signed header is missing";
				goto out_vals;
			}
			hs[n].value = gk_slice_of(vals[n].data, vals[n].len);
			n++;
		}
	}
	if (!has_host) {
		*why = "host must be signed";
		goto out_vals;
	}
	if ((r = gk_pct_decode(raw_path, &dec)) != 0 ||
	    (r = gk_pct_encode(gk_slice_of(dec.data, dec.len), 1,
	    &path)) != 0 ||
	    (r = query_without_sig(raw_query, &q)) != 0) {
		r = GK_ERR_INVALID;
		*why = "malformed path or query";
		goto out_vals;
	}
	{
		s3_canon_in in;

		memset(&in, 0, sizeof(in));
		in.method = method;
		in.path = gk_slice_of(path.data, path.len);
		in.query = gk_slice_of(q.data, q.len);
		in.headers = hs;
		in.n_headers = n;
		in.payload_hash = a->presigned ? S3_UNSIGNED_PAYLOAD :
		    a->payload == S3_PAYLOAD_HASH ? a->payload_hash :
		    a->payload == S3_PAYLOAD_UNSIGNED ? S3_UNSIGNED_PAYLOAD :
		    a->payload == S3_PAYLOAD_STREAM_SIGNED ?
		    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" :
		    "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
		if ((r = s3_canonical_request(&in, &creq, NULL)) != 0) {
			r = GK_ERR_INVALID;
			*why = "malformed request";
			goto out_vals;
		}
	}
	memset(&c, 0, sizeof(c));
	c.access_key_id = (char *)a->access_key;
	c.secret_key = (char *)secret;
	if ((r = s3_string_to_sign(a->amz_date, a->scope,
	    gk_slice_of(creq.data, creq.len), &sts)) != 0 ||
	    (r = s3_signer_sign(sg, &c, a->amz_date,
	    gk_slice_of(sts.data, sts.len), sig)) != 0)
		goto out_vals;
	r = CRYPTO_memcmp(sig, a->signature, S3_SIG_HEX_LEN) == 0 ? 0 :
	    GK_ERR_AUTH;
	gk_wipe(sig, sizeof(sig));
out_vals:
	for (i = 0; i < n; i++)
		gk_buf_release(&vals[i]);
out:
	gk_buf_release(&path);
	gk_buf_release(&dec);
	gk_buf_release(&q);
	gk_buf_release(&creq);
	gk_buf_release(&sts);
	return r;
}
