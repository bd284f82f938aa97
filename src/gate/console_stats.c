/*
 * console_stats.c - GET /admin/api/stats: the charts a security team
 * looks at first, from the audit log over [from, to) (default the last 24
 * hours): requests per time bucket split by decision (allow, deny,
 * error), the top client addresses and countries, denials by reason. At
 * most STATS_ROWS_MAX records are read ("truncated" says when more were
 * there).
 */
#include "console_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATS_ROWS_MAX 200000u
#define STATS_BUCKETS_MAX 200u
#define TOP_N 10
#define TALLY_MAX 4096
#define REASON_LEN 96

/* Counts per key (an address, a country, a reason), at most max keys
 * (later ones are counted as other), found through a hash of the key as
 * cut to KEY_LEN - 1 bytes on a UTF-8 boundary. */
struct tally_item {
	char key[REASON_LEN];
	uint64_t n;
};

struct tally {
	struct tally_item *it;
	size_t n, max;
	uint32_t *slot;		/* index + 1; 0: empty */
	size_t nslot;		/* a power of two, at least 2 * max */
	uint64_t other;
};

static int
tally_init(struct tally *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
	for (t->nslot = 16; t->nslot < 2 * max; t->nslot *= 2)
		;
	t->it = calloc(max, sizeof(*t->it));
	t->slot = calloc(t->nslot, sizeof(*t->slot));
	return t->it != NULL && t->slot != NULL ? 0 : GK_ERR_NOMEM;
}

static void
tally_release(struct tally *t)
{
	free(t->it);
	free(t->slot);
}

static void
tally_add(struct tally *t, const char *key)
{
	char k[REASON_LEN];
	size_t len = strlen(key), i;
	uint32_t h = 2166136261u;

	if (len > sizeof(k) - 1) {
		len = sizeof(k) - 1;
		while (len > 0 && ((unsigned char)key[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(k, key, len);
	k[len] = '\0';
	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	for (i = h & (t->nslot - 1); t->slot[i] != 0;
	    i = (i + 1) & (t->nslot - 1)) {
		if (strcmp(t->it[t->slot[i] - 1].key, k) == 0) {
			t->it[t->slot[i] - 1].n++;
			return;
		}
	}
	if (t->n == t->max) {
		t->other++;
		return;
	}
	memcpy(t->it[t->n].key, k, len + 1);
	t->it[t->n].n = 1;
	t->slot[i] = (uint32_t)++t->n;
}

struct stats {
	int64_t from, width;
	unsigned nb;
	uint64_t (*b)[3];	/* allow, deny, error per bucket */
	struct tally ips, countries, reasons;
	uint64_t rows;
};

static int
stats_row(void *arg, const gk_audit_row *row)
{
	struct stats *st = arg;
	const gk_audit_record *r = &row->rec;
	int64_t i;
	int d;

	st->rows++;
	i = (r->time_us - st->from) / st->width;
	d = r->decision && strcmp(r->decision, "allow") == 0 ? 0 :
	    r->decision && strcmp(r->decision, "deny") == 0 ? 1 : 2;
	if (i >= 0 && i < (int64_t)st->nb)
		st->b[i][d]++;
	tally_add(&st->ips, r->client_ip[0] ? r->client_ip : "(unknown)");
	tally_add(&st->countries, r->country && r->country[0] ? r->country :
	    "--");
	if (d == 1)
		tally_add(&st->reasons, r->message ? r->message : "(none)");
	return 0;
}

static int
tally_cmp(const void *a, const void *b)
{
	const struct tally_item *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return strcmp(x->key, y->key);
}

/* The top keys, most first, as ,"name":[{"key","n"}...] and
 * ,"name_other":N (what did not fit the table). Sorts t->it (the hash
 * slots are stale afterwards). */
static int
tally_json(gk_buf *b, const char *name, struct tally *t)
{
	size_t i;
	int r;

	qsort(t->it, t->n, sizeof(*t->it), tally_cmp);
	r = gk_buf_printf(b, ",\"%s\":[", name);
	for (i = 0; i < t->n && i < TOP_N && r == 0; i++) {
		r = gk_buf_append_str(b, i ? ",{\"key\":" : "{\"key\":");
		if (r == 0)
			r = gk_json_str(b, gk_slice_str(t->it[i].key));
		if (r == 0)
			r = gk_buf_printf(b, ",\"n\":%" PRIu64 "}",
			    t->it[i].n);
	}
	if (r == 0)
		r = gk_buf_printf(b, "],\"%s_other\":%" PRIu64, name,
		    t->other);
	return r;
}

void
console_stats(gk_app *app, const gate_params *ps, gk_reply *rep)
{
	struct stats st;
	gk_audit_query q;
	const char *v;
	char err[256], iso[40];
	int64_t now = gk_now_us(), to = now, from = now - 86400LL * 1000000;
	int64_t span;
	uint64_t nb = 24;
	unsigned i;
	int r;

	memset(&st, 0, sizeof(st));
	if ((v = gate_params_str(ps, "from")) != NULL &&
	    gk_time_parse(v, &from) != 0) {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: invalid 'from' param");
		return;
	}
	if ((v = gate_params_str(ps, "to")) != NULL &&
	    gk_time_parse(v, &to) != 0) {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: invalid 'to' param");
		return;
	}
	if ((v = gate_params_str(ps, "buckets")) != NULL &&
	    (gk_parse_u64(gk_slice_str(v), STATS_BUCKETS_MAX, &nb) != 0 ||
	    nb == 0)) {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: invalid 'buckets' param");
		return;
	}
	if (to <= from) {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: 'to' must be after 'from'");
		return;
	}
	/* year 0 to year 294247 does not fit: refuse, not wrap */
	if (__builtin_sub_overflow(to, from, &span) ||
	    span > INT64_MAX - (int64_t)nb) {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: 'from' to 'to' is too long a range");
		return;
	}
	st.from = from;
	st.nb = (unsigned)nb;
	st.width = (span + (int64_t)nb - 1) / (int64_t)nb;
	st.b = calloc(nb, sizeof(*st.b));
	if (st.b == NULL || tally_init(&st.ips, TALLY_MAX) != 0 ||
	    tally_init(&st.countries, 512) != 0 ||
	    tally_init(&st.reasons, 512) != 0) {
		console_oom(rep);
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.from_us = from;
	q.to_us = to != 0 ? to : -1;	/* 0 would be "no bound" */
	q.limit = STATS_ROWS_MAX;
	r = audit_search(app->cfg->audit_target, &q, stats_row, &st, err,
	    sizeof(err));
	if (r != 0) {
		gk_error("console stats: %s", err);
		gate_reply_error(rep, 503, "error",
		    "Service Unavailable: audit log unavailable");
		goto out;
	}
	gk_time_iso_us(from, iso, sizeof(iso));
	r = gk_buf_printf(&rep->body, "{\"from\":\"%s\",", iso);
	gk_time_iso_us(to, iso, sizeof(iso));
	if (r == 0)
		r = gk_buf_printf(&rep->body, "\"to\":\"%s\",\"bucket_s\":%"
		    PRId64 ",\"rows\":%" PRIu64 ",\"truncated\":%s,"
		    "\"buckets\":[", iso, st.width / 1000000, st.rows,
		    st.rows >= STATS_ROWS_MAX ? "true" : "false");
	for (i = 0; i < st.nb && r == 0; i++) {
		gk_time_iso_us(from + (int64_t)i * st.width, iso, sizeof(iso));
		r = gk_buf_printf(&rep->body, "%s{\"t\":\"%s\",\"allow\":%"
		    PRIu64 ",\"deny\":%" PRIu64 ",\"error\":%" PRIu64 "}",
		    i ? "," : "", iso, st.b[i][0], st.b[i][1], st.b[i][2]);
	}
	if (r == 0)
		r = gk_buf_append_str(&rep->body, "]");
	if (r == 0)
		r = tally_json(&rep->body, "top_ips", &st.ips);
	if (r == 0)
		r = tally_json(&rep->body, "top_countries", &st.countries);
	if (r == 0)
		r = tally_json(&rep->body, "denials", &st.reasons);
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"error\":false}");
	if (r != 0) {
		console_oom(rep);
		goto out;
	}
	console_ok_json(rep, 1);
out:
	free(st.b);
	tally_release(&st.ips);
	tally_release(&st.countries);
	tally_release(&st.reasons);
}
