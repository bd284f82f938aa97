/*
 * admin_gate.c - the admin gate that /admin/audit, /admin/reload and the
 * console share: the admin CIDRs, the admin token, and the console's
 * sessions (a cookie naming a random session id, and a CSRF token that
 * every session request other than GET/HEAD must carry). admin.c and the
 * console files call down into this file; it calls neither.
 */
#include "gate_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SESSIONS_MAX 64
#define SESSION_IDLE_US (30LL * 60 * 1000000)
#define SESSION_MAX_US (12LL * 3600 * 1000000)

struct session {
	char id[GATE_SESSION_HEX + 1];
	char csrf[GATE_SESSION_HEX + 1];
	int64_t created_us, last_us;
};

struct gate_sessions {
	pthread_mutex_t lock;
	struct session s[SESSIONS_MAX];
};

int
gate_sessions_new(gate_sessions **out)
{
	gate_sessions *ss = calloc(1, sizeof(*ss));

	if (ss == NULL)
		return GK_ERR_NOMEM;
	pthread_mutex_init(&ss->lock, NULL);
	*out = ss;
	return 0;
}

void
gate_sessions_free(gate_sessions *ss)
{
	if (ss == NULL)
		return;
	gk_wipe(ss->s, sizeof(ss->s));
	pthread_mutex_destroy(&ss->lock);
	free(ss);
}

static int
random_hex(char out[GATE_SESSION_HEX + 1])
{
	uint8_t b[GATE_SESSION_HEX / 2];

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

/* The session the request's cookie names (lock held), or NULL. Drops
 * the sessions that ran out on the way. */
static struct session *
find_session(gate_sessions *ss, const gk_req *req, int64_t now)
{
	gk_slice v = gate_cookie_value(req->cookie, GATE_SESSION_COOKIE);
	struct session *found = NULL;
	size_t i;

	if (v.len != GATE_SESSION_HEX)
		return NULL;
	for (i = 0; i < SESSIONS_MAX; i++) {
		struct session *s = &ss->s[i];

		if (s->id[0] == '\0')
			continue;
		if (now - s->last_us > SESSION_IDLE_US ||
		    now - s->created_us > SESSION_MAX_US) {
			memset(s, 0, sizeof(*s));
			continue;
		}
		if (gk_ct_eq(s->id, v.p, GATE_SESSION_HEX))
			found = s;
	}
	return found;
}

int
gate_origin_is_ours(const gk_app *app, const gk_req *req)
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

int
gate_is_read(const gk_req *req)
{
	return strcmp(req->method, "GET") == 0 ||
	    strcmp(req->method, "HEAD") == 0;
}

int
gate_sessions_open(gate_sessions *ss, char id[GATE_SESSION_HEX + 1],
    char csrf[GATE_SESSION_HEX + 1])
{
	struct session *s, *slot = NULL;
	int64_t now = gk_now_us();
	size_t i;

	if (random_hex(id) != 0 || random_hex(csrf) != 0)
		return GK_ERR_INTERNAL;
	pthread_mutex_lock(&ss->lock);
	for (i = 0; i < SESSIONS_MAX; i++) {
		s = &ss->s[i];
		if (s->id[0] == '\0' || now - s->last_us > SESSION_IDLE_US) {
			slot = s;
			break;
		}
		if (slot == NULL || s->last_us < slot->last_us)
			slot = s;	/* the least recently used goes */
	}
	memcpy(slot->id, id, GATE_SESSION_HEX + 1);
	memcpy(slot->csrf, csrf, GATE_SESSION_HEX + 1);
	slot->created_us = slot->last_us = now;
	pthread_mutex_unlock(&ss->lock);
	return 0;
}

void
gate_sessions_close(gate_sessions *ss, const gk_req *req)
{
	struct session *s;

	pthread_mutex_lock(&ss->lock);
	if ((s = find_session(ss, req, gk_now_us())) != NULL)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&ss->lock);
}

int
gate_sessions_csrf(gate_sessions *ss, const gk_req *req,
    char csrf[GATE_SESSION_HEX + 1])
{
	struct session *s;
	int found = 0;

	csrf[0] = '\0';
	if (req->cookie.len == 0)
		return 0;
	pthread_mutex_lock(&ss->lock);
	if ((s = find_session(ss, req, gk_now_us())) != NULL) {
		memcpy(csrf, s->csrf, GATE_SESSION_HEX + 1);
		found = 1;
	}
	pthread_mutex_unlock(&ss->lock);
	return found;
}

/* 1 if the request carries a live session cookie (and, for a method
 * other than GET/HEAD, its CSRF token and no foreign Origin). */
static int
session_ok(const gk_app *app, const gk_req *req)
{
	gate_sessions *ss = app->sessions;
	struct session *s;
	int64_t now = gk_now_us();
	int ok = 0;

	if (ss == NULL || req->cookie.len == 0)
		return 0;
	pthread_mutex_lock(&ss->lock);
	s = find_session(ss, req, now);
	if (s != NULL && (gate_is_read(req) || (gate_origin_is_ours(app, req) &&
	    req->csrf.len == GATE_SESSION_HEX && gk_ct_eq(req->csrf.p, s->csrf,
	    GATE_SESSION_HEX)))) {
		s->last_us = now;
		ok = 1;
	}
	pthread_mutex_unlock(&ss->lock);
	return ok;
}

/* The Authorization header holds "Bearer <admin token>". */
static int
admin_token_ok(const gk_app *app, const gk_req *req)
{
	const gk_secret *t = &app->cfg->admin_token;
	gk_slice a = req->authorization;

	if (t->p == NULL || t->len == 0 || a.len < 7 ||
	    strncasecmp((const char *)a.p, "Bearer ", 7) != 0)
		return 0;
	a.p += 7;
	a.len -= 7;
	while (a.len > 0 && a.p[0] == ' ') {
		a.p++;
		a.len--;
	}
	return a.len == t->len && gk_ct_eq(a.p, t->p, t->len);
}

int
gate_admin_allowed(gk_app *app, const gk_req *req, gk_reply *rep)
{
	if (policy_check_admin(req->policy, &req->client) != 0) {
		gate_reply_error(rep, 403, "deny", "Forbidden");
		return 0;
	}
	if (!admin_token_ok(app, req) && !session_ok(app, req)) {
		gate_reply_error(rep, 401, "deny",
		    "Unauthorized: admin token required");
		return 0;
	}
	return 1;
}
