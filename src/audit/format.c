/* format.c - one audit row: read from a backend's columns, written as a
 * JSON object (CLI json output, admin API); and the address range an "ip"
 * search filter covers. */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FIELD_CAP (4u * AUDIT_FIELD_MAX + 16)

static int
field(gk_buf *b, const char *key, const char *v, int first)
{
	gk_buf tmp;
	int r;

	if ((r = gk_buf_printf(b, "%s\"%s\":", first ? "" : ",", key)) != 0)
		return r;
	if (v == NULL || (v[0] == '\0' && (strcmp(key, "request_id") == 0 ||
	    strcmp(key, "client_ip") == 0)))
		return gk_buf_append_str(b, "null");
	gk_buf_init(&tmp, FIELD_CAP);
	if ((r = gk_utf8_sanitize(gk_slice_str(v), &tmp)) == 0)
		r = gk_json_str(b, gk_slice_of(tmp.data, tmp.len));
	gk_buf_release(&tmp);
	return r;
}

int
audit_row_json(gk_buf *b, const gk_audit_row *row)
{
	const gk_audit_record *rec = &row->rec;
	char ts[40], hash[2 * AUDIT_HASH_LEN + 1];
	int r;

	gk_time_iso_us(rec->time_us, ts, sizeof(ts));
	if ((r = gk_buf_printf(b, "{\"id\":%" PRId64 ",", row->id)) != 0 ||
	    (r = field(b, "time", ts, 1)) != 0 ||
	    (r = gk_buf_printf(b, ",\"time_us\":%" PRId64, rec->time_us)) !=
	    0 ||
	    (r = field(b, "request_id", rec->request_id, 0)) != 0 ||
	    (r = field(b, "client_ip", rec->client_ip, 0)) != 0 ||
	    (r = field(b, "user_agent", rec->user_agent, 0)) != 0 ||
	    (r = field(b, "origin", rec->origin, 0)) != 0 ||
	    (r = field(b, "protocol", rec->protocol, 0)) != 0 ||
	    (r = field(b, "operation", rec->operation, 0)) != 0 ||
	    (r = field(b, "root", rec->root, 0)) != 0 ||
	    (r = field(b, "path", rec->path, 0)) != 0 ||
	    (r = gk_buf_printf(b, ",\"status\":%d", rec->status)) != 0 ||
	    (r = field(b, "decision", rec->decision, 0)) != 0 ||
	    (r = field(b, "message", rec->message, 0)) != 0 ||
	    (r = gk_buf_printf(b, ",\"bytes\":%" PRIu64 ",\"duration_us\":%"
	    PRId64, rec->bytes, rec->duration_us)) != 0 ||
	    (r = field(b, "country", rec->country, 0)) != 0 ||
	    (r = field(b, "kid", rec->kid, 0)) != 0 ||
	    (r = field(b, "sub", rec->sub, 0)) != 0 ||
	    (r = field(b, "jti", rec->jti, 0)) != 0 ||
	    (r = field(b, "token_sig", rec->token_sig, 0)) != 0)
		return r;
	if (!row->chained)
		return gk_buf_append_str(b, ",\"instance_id\":null,"
		    "\"seq\":null,\"hash\":null}");
	gk_hex_encode(row->hash, AUDIT_HASH_LEN, hash);
	if ((r = field(b, "instance_id", row->instance_id, 0)) != 0 ||
	    (r = gk_buf_printf(b, ",\"seq\":%" PRId64 ",\"hash\":\"%s\"}",
	    row->seq, hash)) != 0)
		return r;
	return 0;
}

int
audit_ip_range(const char *s, uint8_t lo[16], uint8_t hi[16])
{
	uint8_t addr[16];
	unsigned bits, i;

	if (s == NULL || gk_cidr_parse(gk_slice_str(s), addr, &bits) != 0)
		return GK_ERR_INVALID;
	for (i = 0; i < 16; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 :
		    (bits > 8 * i ? bits - 8 * i : 0);
		uint8_t mask = (uint8_t)(0xff00u >> keep);

		lo[i] = addr[i] & mask;
		hi[i] = (uint8_t)(addr[i] | (uint8_t)~mask);
	}
	return 0;
}

/* Copies a text column into a fixed array, cut to fit; 1 if it was cut
 * or held a NUL (the row is then not as written). */
static int
col_fixed(const audit_cols *c, int col, char *dst, size_t dstlen)
{
	size_t n;
	const char *t = c->text(c->ctx, col, &n);
	int cut = 0;

	dst[0] = '\0';
	if (t == NULL)
		return 0;
	if (n >= dstlen) {
		n = dstlen - 1;
		cut = 1;
	}
	memcpy(dst, t, n);
	dst[n] = '\0';
	return cut || memchr(t, '\0', n) != NULL;
}

static const char *
col_str(const audit_cols *c, int col)
{
	size_t n;

	return c->text(c->ctx, col, &n);
}

void
audit_row_read(const audit_cols *c, gk_audit_row *row)
{
	gk_audit_record *rec = &row->rec;
	size_t n;
	int64_t bytes;

	memset(row, 0, sizeof(*row));
	row->id = c->num(c->ctx, 0);
	rec->time_us = c->num(c->ctx, 1);
	row->altered |= col_fixed(c, 2, rec->request_id,
	    sizeof(rec->request_id));
	row->altered |= col_fixed(c, 3, rec->client_ip,
	    sizeof(rec->client_ip));
	if (c->bytes(c->ctx, 4, rec->client_addr,
	    sizeof(rec->client_addr)) != 0)
		row->altered = 1;
	rec->user_agent = col_str(c, 5);
	rec->origin = col_str(c, 6);
	rec->protocol = col_str(c, 7);
	rec->operation = col_str(c, 8);
	rec->root = col_str(c, 9);
	rec->path = col_str(c, 10);
	rec->status = (int)c->num(c->ctx, 11);
	rec->decision = col_str(c, 12);
	rec->message = col_str(c, 13);
	bytes = c->num(c->ctx, 14);
	rec->bytes = bytes > 0 ? (uint64_t)bytes : 0;
	rec->duration_us = c->num(c->ctx, 15);
	rec->country = col_str(c, 16);
	rec->kid = col_str(c, 17);
	rec->sub = col_str(c, 18);
	rec->jti = col_str(c, 19);
	rec->token_sig = col_str(c, 20);
	row->altered |= col_fixed(c, 21, row->instance_id,
	    sizeof(row->instance_id));
	row->seq = c->num(c->ctx, 22);
	row->chained = c->text(c->ctx, 21, &n) != NULL &&
	    c->text(c->ctx, 22, &n) != NULL &&
	    c->bytes(c->ctx, 23, row->prev_hash, AUDIT_HASH_LEN) == 0 &&
	    c->bytes(c->ctx, 24, row->hash, AUDIT_HASH_LEN) == 0;
}

void
audit_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
