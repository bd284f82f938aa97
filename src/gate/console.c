/*
 * console.c - the customer's console at /admin/: the page, its script and
 * style (built in, web/console/), and the JSON it reads:
 *
 *   POST /admin/api/login      Authorization: Bearer <admin token> ->
 *                              a session cookie (Secure, HttpOnly,
 *                              SameSite=Strict, Path=/admin/) and
 *                              {"csrf": ...}
 *   POST /admin/api/logout     ends the session
 *   GET  /admin/api/session    {"csrf", "id", "instance"} or 401
 *   GET  /admin/api/tail       the audit search (GET /admin/audit's
 *                              parameters), not itself audited
 *   GET  /admin/api/stats      from, to, buckets: requests over time by
 *                              decision, top addresses and countries,
 *                              denials by reason
 *   GET  /admin/api/integrity  the chain, the last signed checkpoint,
 *                              the last verification
 *   POST /admin/api/verify     runs what 'gatekeeper audit verify' runs
 *   GET  /admin/api/policy     the effective settings, the last reload's
 *                              changes
 *   GET  /admin/api/policy/test  ip, origin, op -> the decision and the
 *                              rule that decided
 *
 * Every path under /admin/ is for the admin CIDRs only (else 403). The
 * API needs the admin token or a session; a session's requests other
 * than GET carry its CSRF token in X-CSRF-Token and no foreign Origin.
 * Pages are served with a strict Content-Security-Policy (everything
 * from the gatekeeper itself, no inline script or style).
 */
#include "gate_int.h"
#include "asset.h"

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

GATE_ASSET(console_html, "web/console/index.html");
GATE_ASSET(console_js, "web/console/console.js");
GATE_ASSET(console_css, "web/console/console.css");

#define CONSOLE_CSP "default-src 'none'; script-src 'self'; " \
	"style-src 'self'; img-src 'self'; connect-src 'self'; " \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
#define COOKIE_NAME "gk_console"
#define SESSIONS_MAX 64
#define SESSION_IDLE_US (30LL * 60 * 1000000)
#define SESSION_MAX_US (12LL * 3600 * 1000000)
#define ID_HEX 64
#define STATS_ROWS_MAX 200000u
#define STATS_BUCKETS_MAX 200u
#define TOP_N 10
#define TALLY_MAX 4096
#define REASON_LEN 96
#define PROBLEMS_MAX 50
#define SNAP_MAX 32

struct session {
	char id[ID_HEX + 1];
	char csrf[ID_HEX + 1];
	int64_t created_us, last_us;
};

struct setting {
	char *name;
	char *value;
};

struct gate_console {
	gk_app *app;
	pthread_mutex_t lock;
	struct session s[SESSIONS_MAX];
	/* effective settings, the previous ones, and when */
	struct setting cur[SNAP_MAX], prev[SNAP_MAX];
	size_t ncur, nprev;
	char summary[1200], prev_summary[1200];
	int64_t loaded_us;
	unsigned reloads;
	/* the last verification, as JSON */
	char *last_verify;
};

/* ---- the settings a policy is built from ----------------------------- */

enum { S_STR, S_BOOL, S_UINT };

static const struct {
	const char *name;
	size_t off;
	int type;
} policy_keys[] = {
	{ "acl.ip_allow", offsetof(gk_config, ip_allow), S_STR },
	{ "acl.ip_allow_files", offsetof(gk_config, ip_allow_files), S_STR },
	{ "acl.ip_deny", offsetof(gk_config, ip_deny), S_STR },
	{ "acl.ip_deny_files", offsetof(gk_config, ip_deny_files), S_STR },
	{ "acl.uploads_exempt_ip", offsetof(gk_config, uploads_exempt_ip),
	    S_BOOL },
	{ "acl.origins", offsetof(gk_config, origins), S_STR },
	{ "acl.allow_missing_origin",
	    offsetof(gk_config, allow_missing_origin), S_BOOL },
	{ "acl.trusted_proxies", offsetof(gk_config, trusted_proxies), S_STR },
	{ "acl.forwarded_header", offsetof(gk_config, forwarded_header),
	    S_STR },
	{ "geo.database", offsetof(gk_config, geo_database), S_STR },
	{ "geo.countries", offsetof(gk_config, geo_countries), S_STR },
	{ "geo.countries_get", offsetof(gk_config, geo_countries_get), S_STR },
	{ "geo.countries_list", offsetof(gk_config, geo_countries_list),
	    S_STR },
	{ "geo.countries_put", offsetof(gk_config, geo_countries_put), S_STR },
	{ "geo.unknown", offsetof(gk_config, geo_unknown), S_STR },
	{ "rate.requests_per_second", offsetof(gk_config, rate_rps), S_UINT },
	{ "rate.burst", offsetof(gk_config, rate_burst), S_UINT },
	{ "rate.denied_per_minute", offsetof(gk_config, rate_denied_per_min),
	    S_UINT },
	{ "rate.denied_burst", offsetof(gk_config, rate_denied_burst),
	    S_UINT },
	{ "rate.exempt", offsetof(gk_config, rate_exempt), S_STR },
	{ "admin.cidrs", offsetof(gk_config, admin_cidrs), S_STR },
};

static void
settings_clear(struct setting *s, size_t *n)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		free(s[i].name);
		free(s[i].value);
	}
	*n = 0;
}

static void
snapshot(const gk_config *cfg, struct setting *out, size_t *n)
{
	const char *base = (const char *)cfg;
	char num[24];
	const char *v;
	size_t i;

	*n = 0;
	for (i = 0; i < GK_ARRAY_LEN(policy_keys) && i < SNAP_MAX; i++) {
		switch (policy_keys[i].type) {
		case S_STR:
			v = *(char *const *)(base + policy_keys[i].off);
			if (v == NULL)
				v = "";
			break;
		case S_BOOL:
			v = *(const int *)(base + policy_keys[i].off) ?
			    "true" : "false";
			break;
		default:
			snprintf(num, sizeof(num), "%u",
			    *(const unsigned *)(base + policy_keys[i].off));
			v = num;
		}
		out[*n].name = strdup(policy_keys[i].name);
		out[*n].value = strdup(v);
		if (out[*n].name == NULL || out[*n].value == NULL) {
			free(out[*n].name);
			free(out[*n].value);
			break;
		}
		(*n)++;
	}
}

void
gate_console_policy_loaded(gate_console *c, const gk_config *cfg,
    const gk_policy *p)
{
	size_t i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	settings_clear(c->prev, &c->nprev);
	for (i = 0; i < c->ncur; i++)
		c->prev[i] = c->cur[i];
	c->nprev = c->ncur;
	c->ncur = 0;
	memcpy(c->prev_summary, c->summary, sizeof(c->summary));
	snapshot(cfg, c->cur, &c->ncur);
	policy_summary(p, c->summary, sizeof(c->summary));
	c->loaded_us = gk_now_us();
	c->reloads++;
	pthread_mutex_unlock(&c->lock);
}

/* ---- sessions --------------------------------------------------------- */

static int
random_hex(char out[ID_HEX + 1])
{
	uint8_t b[ID_HEX / 2];

	if (gk_random(b, sizeof(b)) != 0)
		return GK_ERR_INTERNAL;
	gk_hex_encode(b, sizeof(b), out);
	gk_wipe(b, sizeof(b));
	return 0;
}

gk_slice
gate_cookie_value(gk_slice h, const char *name)
{
	size_t nl = strlen(name), i = 0, start, end;

	while (i < h.len) {
		while (i < h.len && (h.p[i] == ' ' || h.p[i] == ';'))
			i++;
		start = i;
		while (i < h.len && h.p[i] != ';')
			i++;
		end = i;
		if (end - start > nl + 1 && h.p[start + nl] == '=' &&
		    memcmp(h.p + start, name, nl) == 0)
			return gk_slice_of(h.p + start + nl + 1,
			    end - start - nl - 1);
	}
	return GK_SLICE_NULL;
}

/* The session the request's cookie names (lock held), or NULL. */
static struct session *
find_session(gate_console *c, const gk_req *req, int64_t now)
{
	gk_slice v = gate_cookie_value(req->cookie, COOKIE_NAME);
	struct session *found = NULL;
	size_t i;

	if (v.len != ID_HEX)
		return NULL;
	for (i = 0; i < SESSIONS_MAX; i++) {
		struct session *s = &c->s[i];

		if (s->id[0] == '\0')
			continue;
		if (now - s->last_us > SESSION_IDLE_US ||
		    now - s->created_us > SESSION_MAX_US) {
			memset(s, 0, sizeof(*s));
			continue;
		}
		if (gk_ct_eq(s->id, v.p, ID_HEX))
			found = s;
	}
	return found;
}

/*
 * 1 when the request has no Origin, our own (public_url's origin), or
 * the browser marks it same-origin (the console reached under another
 * name than public_url, e.g. an internal address).
 */
static int
origin_is_ours(const gk_app *app, const gk_req *req)
{
	const char *u = app->cfg->public_url, *p;
	size_t n;

	if (!req->has_origin)
		return 1;
	if (req->has_sec_fetch_site &&
	    gk_slice_eq_str(req->sec_fetch_site, "same-origin"))
		return 1;
	p = strstr(u, "://");
	p = p != NULL ? strchr(p + 3, '/') : NULL;
	n = p != NULL ? (size_t)(p - u) : strlen(u);
	return req->origin.len == n && memcmp(req->origin.p, u, n) == 0;
}

static int
is_read(const gk_req *req)
{
	return strcmp(req->method, "GET") == 0 ||
	    strcmp(req->method, "HEAD") == 0;
}

int
gate_console_session_ok(gate_console *c, const gk_req *req)
{
	struct session *s;
	int64_t now = gk_now_us();
	int ok = 0;

	if (c == NULL || req->cookie.len == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	s = find_session(c, req, now);
	if (s != NULL && (is_read(req) || (origin_is_ours(c->app, req) &&
	    req->csrf.len == ID_HEX && gk_ct_eq(req->csrf.p, s->csrf,
	    ID_HEX)))) {
		s->last_us = now;
		ok = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* ---- replies ---------------------------------------------------------- */

static void
set_op(gk_reply *rep, const char *op, gk_slice path)
{
	rep->protocol = "admin";
	free(rep->operation);
	rep->operation = strdup(op);
	free(rep->path);
	rep->path = gate_text_copy(path, 256);
}

static int
page(gk_reply *rep, const char *start, const char *end, const char *type)
{
	rep->status = 200;
	rep->content_type = type;
	rep->audited = 0;
	rep->csp = CONSOLE_CSP;
	if (gk_buf_append(&rep->body, start, (size_t)(end - start)) != 0)
		gate_reply_error(rep, 500, "error", "Internal Exception");
	rep->audited = 0;
	return 1;
}

static void
ok_json(gk_reply *rep, int audited)
{
	rep->status = 200;
	rep->decision = "allow";
	rep->audited = audited;
}

static void
oom(gk_reply *rep)
{
	gate_reply_error(rep, 500, "error", "Internal Exception");
}

/* ---- login, logout, session ------------------------------------------ */

static void
login(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gate_console *c = app->console;
	struct session *s, *slot = NULL;
	int64_t now = gk_now_us();
	char id[ID_HEX + 1], csrf[ID_HEX + 1], cookie[160];
	gk_req bare;
	size_t i;

	set_op(rep, "login", req->path);
	if (!origin_is_ours(app, req)) {
		gate_reply_error(rep, 403, "deny", "Forbidden: bad origin");
		return;
	}
	if (req->authorization.len == 0) {
		gate_reply_error(rep, 401, "deny",
		    "Unauthorized: admin token required");
		return;
	}
	/* the token alone decides: a session cookie never renews itself */
	bare = *req;
	bare.cookie = GK_SLICE_NULL;
	if (!gate_admin_allowed(app, &bare, rep))
		return;
	if (random_hex(id) != 0 || random_hex(csrf) != 0)
		return oom(rep);
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < SESSIONS_MAX; i++) {
		s = &c->s[i];
		if (s->id[0] == '\0' || now - s->last_us > SESSION_IDLE_US) {
			slot = s;
			break;
		}
		if (slot == NULL || s->last_us < slot->last_us)
			slot = s;	/* the least recently used goes */
	}
	memcpy(slot->id, id, sizeof(id));
	memcpy(slot->csrf, csrf, sizeof(csrf));
	slot->created_us = slot->last_us = now;
	pthread_mutex_unlock(&c->lock);
	snprintf(cookie, sizeof(cookie), COOKIE_NAME "=%s; Path=/admin/; "
	    "Max-Age=%lld; Secure; HttpOnly; SameSite=Strict", id,
	    (long long)(SESSION_MAX_US / 1000000));
	gk_wipe(id, sizeof(id));
	free(rep->set_cookie);
	rep->set_cookie = NULL;
	if (gk_buf_printf(&rep->body, "{\"msg\":\"Success\",\"csrf\":\"%s\","
	    "\"error\":false}", csrf) != 0 ||
	    (rep->set_cookie = strdup(cookie)) == NULL) {
		gk_wipe(cookie, sizeof(cookie));
		gk_wipe(csrf, sizeof(csrf));
		return oom(rep);
	}
	gk_wipe(cookie, sizeof(cookie));
	gk_wipe(csrf, sizeof(csrf));
	ok_json(rep, 1);
	rep->grant = 1;	/* the session exists once its record is durable */
}

static void
logout(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gate_console *c = app->console;
	struct session *s;

	set_op(rep, "logout", req->path);
	if (!gate_admin_allowed(app, req, rep))
		return;
	pthread_mutex_lock(&c->lock);
	if ((s = find_session(c, req, gk_now_us())) != NULL)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&c->lock);
	free(rep->set_cookie);
	rep->set_cookie = strdup(COOKIE_NAME "=; Path=/admin/; Max-Age=0; "
	    "Secure; HttpOnly; SameSite=Strict");
	if (gk_buf_append_str(&rep->body, "{\"msg\":\"Success\","
	    "\"error\":false}") != 0)
		return oom(rep);
	ok_json(rep, 1);
}

static void
session_info(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gate_console *c = app->console;
	struct session *s;
	char csrf[ID_HEX + 1] = "";
	int r;

	if (!gate_admin_allowed(app, req, rep))
		return;
	pthread_mutex_lock(&c->lock);
	if ((s = find_session(c, req, gk_now_us())) != NULL)
		memcpy(csrf, s->csrf, sizeof(csrf));
	pthread_mutex_unlock(&c->lock);
	r = gk_buf_printf(&rep->body, "{\"csrf\":\"%s\",\"id\":", csrf);
	if (r == 0)
		r = gk_json_str(&rep->body, gk_slice_str(app->cfg->id));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"instance\":");
	if (r == 0)
		r = gk_json_str(&rep->body,
		    gk_slice_str(audit_instance(app->audit)));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"error\":false}");
	gk_wipe(csrf, sizeof(csrf));
	if (r != 0)
		return oom(rep);
	ok_json(rep, 0);
}

/* ---- stats ------------------------------------------------------------ */

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

static void
stats(gk_app *app, const gate_params *ps, gk_reply *rep)
{
	struct stats st;
	gk_audit_query q;
	const char *v;
	char err[256], iso[40];
	int64_t now = gk_now_us(), to = now, from = now - 86400LL * 1000000;
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
	st.from = from;
	st.nb = (unsigned)nb;
	st.width = (to - from + (int64_t)nb - 1) / (int64_t)nb;
	st.b = calloc(nb, sizeof(*st.b));
	if (st.b == NULL || tally_init(&st.ips, TALLY_MAX) != 0 ||
	    tally_init(&st.countries, 512) != 0 ||
	    tally_init(&st.reasons, 512) != 0) {
		oom(rep);
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.from_us = from;
	q.to_us = to;
	q.limit = STATS_ROWS_MAX;
	r = audit_search(audit_target(app->cfg), &q, stats_row, &st, err,
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
		oom(rep);
		goto out;
	}
	ok_json(rep, 1);
out:
	free(st.b);
	tally_release(&st.ips);
	tally_release(&st.countries);
	tally_release(&st.reasons);
}

/* ---- integrity ---------------------------------------------------------- */

/* The checkpoint file's last line (a JSON object), appended to b, or
 * null. */
static int
last_checkpoint(const gk_app *app, gk_buf *b)
{
	FILE *fp = fopen(app->cfg->audit_checkpoint_file, "re");
	char line[4096], last[4096] = "";
	size_t n;

	if (fp != NULL) {
		while (fgets(line, sizeof(line), fp) != NULL) {
			n = strlen(line);
			while (n > 0 && (line[n - 1] == '\n' ||
			    line[n - 1] == '\r'))
				line[--n] = '\0';
			if (n > 1 && line[0] == '{' && line[n - 1] == '}')
				memcpy(last, line, n + 1);
		}
		fclose(fp);
	}
	return gk_buf_append_str(b, last[0] ? last : "null");
}

static void
integrity(gk_app *app, gk_reply *rep)
{
	gate_console *c = app->console;
	int r;

	r = gk_buf_append_str(&rep->body, "{\"instance\":");
	if (r == 0)
		r = gk_json_str(&rep->body,
		    gk_slice_str(audit_instance(app->audit)));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"backend\":");
	if (r == 0)
		r = gk_json_str(&rep->body, gk_slice_str(audit_label(
		    audit_target(app->cfg))));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"last_checkpoint\":");
	if (r == 0)
		r = last_checkpoint(app, &rep->body);
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"last_verify\":");
	pthread_mutex_lock(&c->lock);
	if (r == 0)
		r = gk_buf_append_str(&rep->body, c->last_verify ?
		    c->last_verify : "null");
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"error\":false}");
	if (r != 0)
		return oom(rep);
	ok_json(rep, 0);
}

struct problems {
	gk_buf *b;
	unsigned n;
};

static void
on_problem(void *arg, const char *msg)
{
	struct problems *p = arg;

	if (p->n >= PROBLEMS_MAX)
		return;
	if ((p->n > 0 && gk_buf_append_str(p->b, ",") != 0) ||
	    gk_json_str(p->b, gk_slice_str(msg)) != 0)
		return;
	p->n++;
}

static void
verify_now(gk_app *app, gk_reply *rep)
{
	gate_console *c = app->console;
	gk_audit_verify_stats st;
	struct problems pr;
	uint8_t pub[32];
	char err[512], iso[40], msg[160];
	gk_buf res;
	int64_t t0 = gk_mono_us(), now = gk_now_us();
	int r;

	gk_buf_init(&res, GK_CAP_JSON_REPLY / 2);
	if (audit_read_pubkey(app->cfg->audit_pub_file, pub) != 0) {
		gate_reply_error(rep, 500, "error",
		    "cannot read the audit public key");
		goto out;
	}
	memset(&st, 0, sizeof(st));
	gk_time_iso_us(now, iso, sizeof(iso));
	r = gk_buf_printf(&res, "{\"at\":\"%s\",\"problems\":[", iso);
	pr.b = &res;
	pr.n = 0;
	err[0] = '\0';
	if (r == 0 && (r = audit_verify(audit_target(app->cfg), pub, 1,
	    app->cfg->audit_checkpoint_file, 0, on_problem, &pr, &st, err,
	    sizeof(err))) != 0) {
		gk_error("console verify: %s", err);
		gate_reply_error(rep, 503, "error",
		    "Service Unavailable: audit log unavailable");
		goto out;
	}
	if (r == 0)
		r = gk_buf_printf(&res, "],\"ok\":%s,\"records\":%" PRIu64
		    ",\"checkpoints\":%" PRIu64 ",\"instances\":%" PRIu64
		    ",\"problem_count\":%" PRIu64 ",\"took_ms\":%lld}",
		    st.problems == 0 ? "true" : "false", st.records,
		    st.checkpoints, st.instances, st.problems,
		    (long long)((gk_mono_us() - t0) / 1000));
	if (r != 0 || gk_buf_printf(&rep->body, "{\"verify\":%s,"
	    "\"error\":false}", (const char *)res.data) != 0) {
		oom(rep);
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	free(c->last_verify);
	c->last_verify = gk_buf_detach(&res, NULL);
	pthread_mutex_unlock(&c->lock);
	snprintf(msg, sizeof(msg), "audit verify: %" PRIu64 " records, %s",
	    st.records, st.problems == 0 ? "OK" : "NOT OK");
	free(rep->message);
	rep->message = strdup(msg);
	ok_json(rep, 1);
out:
	gk_buf_release(&res);
}

/* ---- policy ------------------------------------------------------------ */

static int
settings_json(gk_buf *b, const struct setting *s, size_t n)
{
	size_t i;
	int r = gk_buf_append_str(b, "[");

	for (i = 0; i < n && r == 0; i++) {
		r = gk_buf_append_str(b, i ? ",{\"name\":" : "{\"name\":");
		if (r == 0)
			r = gk_json_str(b, gk_slice_str(s[i].name));
		if (r == 0)
			r = gk_buf_append_str(b, ",\"value\":");
		if (r == 0)
			r = gk_json_str(b, gk_slice_str(s[i].value));
		if (r == 0)
			r = gk_buf_append_str(b, "}");
	}
	return r == 0 ? gk_buf_append_str(b, "]") : r;
}

static const char *
lookup(const struct setting *s, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s[i].name, name) == 0)
			return s[i].value;
	return NULL;
}

static int
change_json(gk_buf *b, int *first, const char *name, const char *old,
    const char *new)
{
	int r = gk_buf_append_str(b, *first ? "{\"name\":" : ",{\"name\":");

	*first = 0;
	if (r == 0)
		r = gk_json_str(b, gk_slice_str(name));
	if (r == 0)
		r = gk_buf_append_str(b, ",\"old\":");
	if (r == 0)
		r = gk_json_str(b, gk_slice_str(old));
	if (r == 0)
		r = gk_buf_append_str(b, ",\"new\":");
	if (r == 0)
		r = gk_json_str(b, gk_slice_str(new));
	return r == 0 ? gk_buf_append_str(b, "}") : r;
}

static void
policy_view(gk_app *app, gk_reply *rep)
{
	gate_console *c = app->console;
	gk_buf *b = &rep->body;
	const char *old;
	char iso[40];
	size_t i;
	int r, first = 1;

	pthread_mutex_lock(&c->lock);
	gk_time_iso_us(c->loaded_us, iso, sizeof(iso));
	r = gk_buf_append_str(b, "{\"settings\":");
	if (r == 0)
		r = settings_json(b, c->cur, c->ncur);
	if (r == 0)
		r = gk_buf_append_str(b, ",\"summary\":");
	if (r == 0)
		r = gk_json_str(b, gk_slice_str(c->summary));
	if (r == 0)
		r = gk_buf_printf(b, ",\"loaded\":\"%s\",\"reloads\":%u,"
		    "\"last_reload\":", iso, c->reloads);
	if (r == 0 && c->reloads == 0)
		r = gk_buf_append_str(b, "null");
	else if (r == 0) {
		r = gk_buf_append_str(b, "{\"changes\":[");
		for (i = 0; i < c->ncur && r == 0; i++) {
			old = lookup(c->prev, c->nprev, c->cur[i].name);
			if (old == NULL || strcmp(old, c->cur[i].value) != 0)
				r = change_json(b, &first, c->cur[i].name,
				    old ? old : "", c->cur[i].value);
		}
		if (r == 0 && strcmp(c->summary, c->prev_summary) != 0)
			r = change_json(b, &first, "summary", c->prev_summary,
			    c->summary);
		if (r == 0)
			r = gk_buf_append_str(b, "]}");
	}
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		r = gk_buf_append_str(b, ",\"error\":false}");
	if (r != 0)
		return oom(rep);
	ok_json(rep, 0);
}

struct step {
	const char *check;
	int ok;
	char detail[160];
};

/* "would this request be allowed?": the checks of a request in the
 * gatekeeper's order (origin, IP lists, country) with the policy in
 * force, without the signature (the tester has none). */
static void
policy_test(gk_app *app, const gk_req *req, const gate_params *ps,
    gk_reply *rep)
{
	const char *ip = gate_params_str(ps, "ip");
	const char *origin = gate_params_str(ps, "origin");
	const char *op = gate_params_str(ps, "op");
	const char *rule = "", *decided = NULL;
	struct step steps[3];
	size_t n = 0, i;
	gk_addr a;
	char country[3] = "";
	int gop, upload = 0, r;
	gk_policy *p = req->policy;

	if (ip == NULL || policy_addr_parse(gk_slice_str(ip), &a) != 0) {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: invalid 'ip' param");
		return;
	}
	if (op == NULL || op[0] == '\0' || strcmp(op, "GET_Object") == 0)
		gop = GK_OP_GET;
	else if (strcmp(op, "GET_Bucket") == 0)
		gop = GK_OP_LIST;
	else if (strcmp(op, "PUT_Object") == 0)
		gop = GK_OP_PUT;
	else if (strcmp(op, "upload") == 0) {
		gop = GK_OP_PUT;
		upload = 1;
	} else {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: invalid 'op' param");
		return;
	}
	/* origin */
	steps[n].check = "origin";
	steps[n].ok = policy_check_origin(p, gk_slice_str(origin ? origin :
	    ""), origin != NULL && origin[0] != '\0') == 0;
	snprintf(steps[n].detail, sizeof(steps[n].detail), "%s",
	    origin == NULL || origin[0] == '\0' ? (steps[n].ok ?
	    "no Origin: allow_missing_origin" : "no Origin (not allowed)") :
	    steps[n].ok ? "in acl.origins" : "not in acl.origins");
	if (!steps[n].ok)
		decided = "Forbidden: bad origin";
	n++;
	/* IP lists */
	steps[n].check = "ip";
	steps[n].ok = policy_check_ip_rule(p, &a, upload, &rule) == 0;
	snprintf(steps[n].detail, sizeof(steps[n].detail), "%s", rule);
	if (!steps[n].ok && decided == NULL)
		decided = "Forbidden: ACL (IP lists)";
	n++;
	/* country */
	steps[n].check = "country";
	if (!policy_geo_enabled(p)) {
		steps[n].ok = 1;
		snprintf(steps[n].detail, sizeof(steps[n].detail),
		    "country checks off (no [geo] database)");
	} else {
		policy_country(p, &a, country);
		steps[n].ok = policy_check_country(p, &a, country, gop) == 0;
		snprintf(steps[n].detail, sizeof(steps[n].detail),
		    "%s %s for %s", country[0] ? country : "unknown country",
		    steps[n].ok ? "allowed" : "not allowed",
		    gop == GK_OP_GET ? "geo.countries_get" : gop == GK_OP_LIST ?
		    "geo.countries_list" : "geo.countries_put");
		if (!steps[n].ok && decided == NULL)
			decided = "Forbidden: ACL (country)";
	}
	n++;
	r = gk_buf_printf(&rep->body, "{\"decision\":\"%s\",\"status\":%d,"
	    "\"msg\":", decided ? "deny" : "allow", decided ? 403 : 200);
	if (r == 0)
		r = gk_json_str(&rep->body, gk_slice_str(decided ? decided :
		    "allowed (given a valid signature)"));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"rule\":");
	for (i = 0; i < n && r == 0; i++)
		if (!steps[i].ok)
			break;
	if (r == 0)
		r = gk_json_str(&rep->body, gk_slice_str(i < n ?
		    steps[i].detail : "every check passed"));
	if (r == 0)
		r = gk_buf_printf(&rep->body, ",\"country\":\"%s\","
		    "\"steps\":[", country);
	for (i = 0; i < n && r == 0; i++) {
		r = gk_buf_printf(&rep->body, "%s{\"check\":\"%s\","
		    "\"ok\":%s,\"detail\":", i ? "," : "", steps[i].check,
		    steps[i].ok ? "true" : "false");
		if (r == 0)
			r = gk_json_str(&rep->body,
			    gk_slice_str(steps[i].detail));
		if (r == 0)
			r = gk_buf_append_str(&rep->body, "}");
	}
	if (r == 0)
		r = gk_buf_append_str(&rep->body, "],\"error\":false}");
	if (r != 0)
		return oom(rep);
	ok_json(rep, 0);
}

/* ---- routing ------------------------------------------------------------ */

struct api_route {
	const char *method;
	const char *path;
	int params;	/* parses the query */
	int need_auth;
};

enum { R_LOGIN, R_LOGOUT, R_SESSION, R_TAIL, R_STATS, R_INTEGRITY,
	R_VERIFY, R_POLICY, R_POLICY_TEST };

static const struct api_route routes[] = {
	[R_LOGIN] = { "POST", "/admin/api/login", 0, 0 },
	[R_LOGOUT] = { "POST", "/admin/api/logout", 0, 0 },
	[R_SESSION] = { "GET", "/admin/api/session", 0, 0 },
	[R_TAIL] = { "GET", "/admin/api/tail", 1, 1 },
	[R_STATS] = { "GET", "/admin/api/stats", 1, 1 },
	[R_INTEGRITY] = { "GET", "/admin/api/integrity", 0, 1 },
	[R_VERIFY] = { "POST", "/admin/api/verify", 0, 1 },
	[R_POLICY] = { "GET", "/admin/api/policy", 0, 1 },
	[R_POLICY_TEST] = { "GET", "/admin/api/policy/test", 1, 1 },
};

static void
api(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gate_params ps;
	gk_slice dup;
	size_t i;
	int r, read = is_read(req);

	for (i = 0; i < GK_ARRAY_LEN(routes); i++)
		if (gk_slice_eq_str(req->path, routes[i].path))
			break;
	set_op(rep, "console", req->path);
	if (i == GK_ARRAY_LEN(routes)) {
		gate_reply_error(rep, 404, "deny", "Not Found");
		return;
	}
	if (strcmp(routes[i].method, "GET") == 0 ? !read :
	    strcmp(req->method, routes[i].method) != 0) {
		gate_reply_error(rep, 405, "deny", "Method Not Allowed");
		rep->allow = strcmp(routes[i].method, "GET") == 0 ?
		    "GET, HEAD" : "POST";
		return;
	}
	if (routes[i].need_auth && !gate_admin_allowed(app, req, rep))
		return;
	memset(&ps, 0, sizeof(ps));
	if (routes[i].params &&
	    (r = gate_params_parse(req->query, &ps, &dup)) != 0) {
		gate_reply_error(rep, 400, "deny", r == GK_ERR_EXISTS ?
		    "Bad Request: repeated param" :
		    "Bad Request: malformed query string");
		return;
	}
	switch (i) {
	case R_LOGIN: login(app, req, rep); break;
	case R_LOGOUT: logout(app, req, rep); break;
	case R_SESSION: session_info(app, req, rep); break;
	case R_TAIL:
		set_op(rep, "GET_Audit", req->path);
		gate_admin_search(app, &ps, rep);
		rep->audited = 0;	/* a poll: its reads are not news */
		break;
	case R_STATS:
		set_op(rep, "GET_Stats", req->path);
		stats(app, &ps, rep);
		break;
	case R_INTEGRITY: integrity(app, rep); break;
	case R_VERIFY:
		set_op(rep, "verify", req->path);
		verify_now(app, rep);
		break;
	case R_POLICY: policy_view(app, rep); break;
	case R_POLICY_TEST: policy_test(app, req, &ps, rep); break;
	}
	gate_params_release(&ps);
}

int
gate_console_handle(gk_app *app, const gk_req *req, gk_reply *rep)
{
	gk_slice path = req->path;
	int read = is_read(req);

	if (!gk_slice_eq_str(path, "/admin") &&
	    !gk_slice_has_prefix(path, gk_slice_str("/admin/")))
		return 0;
	if (gk_slice_eq_str(path, "/admin/audit") ||
	    gk_slice_eq_str(path, "/admin/reload"))
		return 0;	/* admin.c, acl.c: the same gate */
	rep->csp = CONSOLE_CSP;
	if (policy_check_admin(req->policy, &req->client) != 0) {
		set_op(rep, "console", path);
		gate_reply_error(rep, 403, "deny", "Forbidden");
		rep->audited = !read || gk_slice_has_prefix(path,
		    gk_slice_str("/admin/api/"));
		return 1;
	}
	if (gk_slice_has_prefix(path, gk_slice_str("/admin/api/"))) {
		api(app, req, rep);
		return 1;
	}
	if (!read) {
		set_op(rep, "console", path);
		gate_reply_error(rep, 405, "deny", "Method Not Allowed");
		rep->allow = "GET, HEAD";
		return 1;
	}
	if (gk_slice_eq_str(path, "/admin") ||
	    gk_slice_eq_str(path, "/admin/"))
		return page(rep, gk_asset_console_html,
		    gk_asset_console_html_end, "text/html; charset=utf-8");
	if (gk_slice_eq_str(path, "/admin/console.js"))
		return page(rep, gk_asset_console_js, gk_asset_console_js_end,
		    "text/javascript; charset=utf-8");
	if (gk_slice_eq_str(path, "/admin/console.css"))
		return page(rep, gk_asset_console_css,
		    gk_asset_console_css_end, "text/css; charset=utf-8");
	set_op(rep, "console", path);
	gate_reply_error(rep, 404, "deny", "Not Found");
	rep->audited = 0;
	return 1;
}

/* ---- lifetime ------------------------------------------------------------ */

int
gate_console_new(gk_app *app, gate_console **out)
{
	gate_console *c;
	gk_policy *p;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return GK_ERR_NOMEM;
	c->app = app;
	pthread_mutex_init(&c->lock, NULL);
	snapshot(app->cfg, c->cur, &c->ncur);
	p = policy_live_get(app->policy_live);
	policy_summary(p, c->summary, sizeof(c->summary));
	policy_free(p);
	c->loaded_us = gk_now_us();
	*out = c;
	return 0;
}

void
gate_console_free(gate_console *c)
{
	if (c == NULL)
		return;
	settings_clear(c->cur, &c->ncur);
	settings_clear(c->prev, &c->nprev);
	free(c->last_verify);
	gk_wipe(c->s, sizeof(c->s));
	pthread_mutex_destroy(&c->lock);
	free(c);
}
