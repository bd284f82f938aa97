/*
 * record.c - a submitted record's queue node: one allocation holding the
 * record and copies of its strings, each cut to its cap on a UTF-8
 * boundary and with invalid UTF-8 replaced by U+FFFD.
 */
#include "audit/audit_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- records --------------------------------------------------------- */

/* Length of s cut to max on a UTF-8 character boundary; *cut says
 * whether it was. */
static size_t
field_len(const char *s, size_t max, int *cut)
{
	size_t n;

	*cut = 0;
	if (s == NULL)
		return 0;
	n = strnlen(s, max);
	if (n == max && s[n] != '\0') {
		*cut = 1;
		while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

/* The length of n bytes of s once invalid bytes become U+FFFD. */
static size_t
fixed_len(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, k, out = 0;

	while (i < n) {
		k = gk_utf8_seq(p + i, n - i);
		out += k == 0 ? 3 : k;
		i += k == 0 ? 1 : k;
	}
	return out;
}

/*
 * Copies n bytes of s to the cursor with invalid UTF-8 replaced by U+FFFD
 * (so every backend stores the same valid text, and the hash covers it);
 * the destination has room for fixed_len(s, n) + 1 bytes.
 */
static const char *
put_field(char **cursor, const char *s, size_t n, int cut)
{
	const uint8_t *p = (const uint8_t *)s;
	char *dst = *cursor, *o = dst;
	size_t i = 0, k;

	if (s == NULL)
		return NULL;
	while (i < n) {
		if ((k = gk_utf8_seq(p + i, n - i)) == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(o, p + i, k);
		o += k;
		i += k;
	}
	if (cut) {
		memcpy(o, AUDIT_CUT_MARK, sizeof(AUDIT_CUT_MARK) - 1);
		o += sizeof(AUDIT_CUT_MARK) - 1;
	}
	*o = '\0';
	*cursor = o + 1;
	return dst;
}

/* One allocation holding the record and copies of all its strings;
 * *ncut gets how many fields were cut. */
int
audit_node_new(const gk_audit_record *rec, gk_audit_done_fn done, void *arg,
    struct audit_node **out, unsigned *ncut)
{
	/* the first two are the client's own text: the smaller cap */
	const char *src[12] = { rec->user_agent, rec->origin, rec->protocol,
	    rec->operation, rec->root, rec->path, rec->message, rec->country,
	    rec->kid, rec->sub, rec->jti, rec->token_sig };
	size_t len[12], size = sizeof(struct audit_node), i;
	int cut[12];
	struct audit_node *n;
	char *cursor;
	uint8_t lo[16], hi[16];
	static const uint8_t zero[16];

	*ncut = 0;
	for (i = 0; i < GK_ARRAY_LEN(src); i++) {
		len[i] = field_len(src[i], i < 2 ? AUDIT_CLIENT_FIELD_MAX :
		    AUDIT_FIELD_MAX, &cut[i]);
		*ncut += (unsigned)cut[i];
		if (src[i] != NULL && (gk_add_size(size,
		    fixed_len(src[i], len[i]), &size) != 0 ||
		    gk_add_size(size, 1 + (cut[i] ?
		    sizeof(AUDIT_CUT_MARK) - 1 : 0), &size) != 0))
			return GK_ERR_TOO_LARGE;
	}
	if ((n = malloc(size)) == NULL)
		return GK_ERR_NOMEM;
	n->next = NULL;
	n->done = done;
	n->arg = arg;
	n->rec = *rec;
	n->rec.request_id[sizeof(n->rec.request_id) - 1] = '\0';
	n->rec.client_ip[sizeof(n->rec.client_ip) - 1] = '\0';
	/* callers that set only the text address still get CIDR search */
	if (memcmp(n->rec.client_addr, zero, sizeof(zero)) == 0 &&
	    n->rec.client_ip[0] != '\0' &&
	    strchr(n->rec.client_ip, '/') == NULL &&
	    audit_ip_range(n->rec.client_ip, lo, hi) == 0)
		memcpy(n->rec.client_addr, lo, sizeof(lo));
	cursor = n->text;
	n->rec.user_agent = put_field(&cursor, src[0], len[0], cut[0]);
	n->rec.origin = put_field(&cursor, src[1], len[1], cut[1]);
	n->rec.protocol = put_field(&cursor, src[2], len[2], cut[2]);
	n->rec.operation = put_field(&cursor, src[3], len[3], cut[3]);
	n->rec.root = put_field(&cursor, src[4], len[4], cut[4]);
	n->rec.path = put_field(&cursor, src[5], len[5], cut[5]);
	n->rec.message = put_field(&cursor, src[6], len[6], cut[6]);
	n->rec.country = put_field(&cursor, src[7], len[7], cut[7]);
	n->rec.kid = put_field(&cursor, src[8], len[8], cut[8]);
	n->rec.sub = put_field(&cursor, src[9], len[9], cut[9]);
	n->rec.jti = put_field(&cursor, src[10], len[10], cut[10]);
	n->rec.token_sig = put_field(&cursor, src[11], len[11], cut[11]);
	*out = n;
	return 0;
}
