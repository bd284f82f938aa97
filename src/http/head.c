/*
 * head.c - the request head checked by the RFC before anything else looks
 * at it: the request target (length, characters, parameter count) and the
 * header fields (names, values, Host, message framing, count and size).
 * Pure functions over slices; server.c feeds them what libmicrohttpd
 * parsed, the fuzzer and the unit tests feed them bytes.
 */
#include "http_int.h"

#include <string.h>
#include <strings.h>

int
http_is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
http_uri_check(gk_slice uri, const char **why)
{
	size_t i, params = 0;
	int in_query = 0;

	*why = NULL;
	if (uri.len > HTTP_URI_MAX) {
		*why = "URI Too Long";
		return 414;
	}
	for (i = 0; i < uri.len; i++) {
		uint8_t c = uri.p[i];

		/* RFC 9112 §3.2: the target is visible ASCII only */
		if (c <= 0x20 || c >= 0x7f) {
			*why = "Bad Request: invalid character in the request "
			    "target";
			return 400;
		}
		if (c == '?' && !in_query) {
			in_query = 1;
			params = 1;
		} else if (in_query && (c == '&' || c == ';')) {
			params++;
		}
	}
	if (uri.len == 0 || (uri.p[0] != '/' && !(uri.len == 1 &&
	    uri.p[0] == '*'))) {
		*why = "Bad Request: the request target must be a path";
		return 400;
	}
	if (params > HTTP_QUERY_PARAMS_MAX) {
		*why = "URI Too Long: too many query parameters";
		return 414;
	}
	return 0;
}

void
http_head_init(http_head *h)
{
	memset(h, 0, sizeof(*h));
}

/* The value with optional whitespace trimmed (RFC 9110 §5.5). */
static gk_slice
trim_ows(gk_slice v)
{
	while (v.len > 0 && (v.p[0] == ' ' || v.p[0] == '\t')) {
		v.p++;
		v.len--;
	}
	while (v.len > 0 && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
		v.len--;
	return v;
}

static int
name_is(gk_slice name, const char *s)
{
	size_t n = strlen(s);

	return name.len == n && strncasecmp((const char *)name.p, s, n) == 0;
}

static void
bad(http_head *h, int status, const char *why)
{
	if (h->status == 0) {
		h->status = status;
		h->why = why;
	}
}

void
http_head_field(http_head *h, gk_slice name, gk_slice value, int value_cut)
{
	size_t i, line;
	gk_slice v;

	h->fields++;
	if (gk_add_size(name.len, value.len, &line) != 0 ||
	    gk_add_size(line, 4, &line) != 0)	/* ": " and CRLF */
		line = SIZE_MAX;
	if (gk_add_size(h->bytes, line, &h->bytes) != 0)
		h->bytes = SIZE_MAX;
	if (h->fields > HTTP_FIELDS_MAX)
		bad(h, 431, "Request Header Fields Too Large: too many header "
		    "fields");
	if (line > HTTP_FIELD_MAX || h->bytes > HTTP_HEAD_MAX)
		bad(h, 431, "Request Header Fields Too Large");
	/* RFC 9112 §5.1: no whitespace between name and colon */
	if (name.len == 0)
		bad(h, 400, "Bad Request: empty header field name");
	for (i = 0; i < name.len; i++) {
		if (!http_is_tchar(name.p[i])) {
			bad(h, 400, "Bad Request: invalid header field name");
			break;
		}
	}
	/* RFC 9110 §5.5: no NUL, CR, LF or other control in a value */
	if (value_cut)
		bad(h, 400, "Bad Request: NUL or line folding in a header "
		    "field value");
	for (i = 0; i < value.len; i++) {
		uint8_t c = value.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			bad(h, 400, "Bad Request: control character in a "
			    "header field value");
			break;
		}
	}
	v = trim_ows(value);
	if (name_is(name, "Host")) {
		h->hosts++;
		for (i = 0; i < v.len; i++) {
			uint8_t c = v.p[i];

			/* uri-host [ ":" port ] (RFC 3986 reg-name, IP
			 * literals) */
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' &&
			    c <= 'Z') || (c >= '0' && c <= '9') ||
			    strchr("-._~%!$&'()*+,;=:[]", c) != NULL) ||
			    c == '\0') {
				bad(h, 400, "Bad Request: invalid Host");
				break;
			}
		}
	} else if (name_is(name, "Content-Length")) {
		uint64_t n;

		h->content_lengths++;
		/* 1*DIGIT, no list, no sign (RFC 9110 §8.6) */
		if (v.len == 0 || v.len > 20 ||
		    gk_parse_u64(v, UINT64_MAX, &n) != 0) {
			bad(h, 400, "Bad Request: invalid Content-Length");
		} else {
			for (i = 0; i < v.len; i++) {
				if (v.p[i] < '0' || v.p[i] > '9') {
					bad(h, 400, "Bad Request: invalid "
					    "Content-Length");
					break;
				}
			}
		}
	} else if (name_is(name, "Transfer-Encoding")) {
		h->transfer_encodings++;
		if (!(v.len == 7 && strncasecmp((const char *)v.p,
		    "chunked", 7) == 0))
			h->te_unknown = 1;
	}
}

int
http_head_verdict(http_head *h, int http11, const char **why)
{
	if (h->status == 0) {
		/* RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one */
		if (h->hosts > 1 || (http11 && h->hosts == 0))
			bad(h, 400, "Bad Request: exactly one Host header "
			    "field is required");
		/* RFC 9112 §6.1, §6.3: ambiguous framing is an error */
		else if (h->content_lengths > 1)
			bad(h, 400, "Bad Request: more than one "
			    "Content-Length");
		else if (h->transfer_encodings > 0 && h->content_lengths > 0)
			bad(h, 400, "Bad Request: both Transfer-Encoding and "
			    "Content-Length");
		else if (h->transfer_encodings > 0 && !http11)
			bad(h, 400, "Bad Request: Transfer-Encoding in an "
			    "HTTP/1.0 request");
		else if (h->transfer_encodings > 1)
			bad(h, 400, "Bad Request: more than one "
			    "Transfer-Encoding");
		else if (h->te_unknown)
			bad(h, 501, "Not Implemented: only the chunked "
			    "transfer coding is supported");
	}
	*why = h->why;
	return h->status;
}
