/*
 * console_grants.c - the console's Grants tab: the S3 endpoint's grants
 * (src/grant), as 'gatekeeper grant list/create/revoke' handles them.
 *
 *   GET  /admin/api/grants          every grant, no secret:
 *                                   {"grants":[{..., "state"}], "now"}
 *   POST /admin/api/grants?name=&prefix=&ops=&expires=&ip=&rate=
 *                                   a new grant; the answer holds its
 *                                   secret, the only time it is shown
 *   POST /admin/api/grants/revoke?id=   revokes at once (every instance
 *                                   sharing the audit database refuses
 *                                   the key at its next request); 409
 *                                   when it is revoked already
 *
 * Parameters as the CLI's options: ops a comma list of get, list, put,
 * delete; expires a duration (90d, 12h, 30m, 45s); ip a comma list of
 * CIDRs; rate requests per second. Each change is an audit record
 * (protocol "grant", operation grant_create / grant_revoke, kid the grant
 * id, the access key id in the message, never the secret) that goes
 * through the server's audit pipeline; the answer is sent only once the
 * record is durable. A grant created whose record then fails is revoked
 * again (and the answer is a 503 without the secret); a revocation stays
 * in force even when its record fails (deny on doubt).
 */
#include "console_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant/grant.h"

#define RATE_MAX 1000000u

static int
grants_off(const gk_app *app, gk_reply *rep)
{
	if (app->grants != NULL)
		return 0;
	gate_reply_error(rep, 409, "deny", "Conflict: the S3 endpoint "
	    "([s3api]) is not enabled, so there are no grants");
	return 1;
}

static const char *
state_of(const gk_grant *g, int64_t now)
{
	return g->revoked_s ? "revoked" : g->expires_s != 0 &&
	    g->expires_s <= now ? "expired" : "active";
}

/* grant_json with the grant's state added. */
static int
grant_state_json(gk_buf *b, const gk_grant *g, int64_t now)
{
	int r = grant_json(g, b);

	if (r != 0 || b->len == 0 || b->data[b->len - 1] != '}')
		return r != 0 ? r : GK_ERR_INTERNAL;
	b->len--;	/* reopen the object */
	return gk_buf_printf(b, ",\"state\":\"%s\"}", state_of(g, now));
}

struct listing {
	gk_buf *b;
	unsigned n;
	int64_t now;
};

static int
list_one(void *arg, const gk_grant *g)
{
	struct listing *l = arg;
	int r = 0;

	if (l->n++ > 0)
		r = gk_buf_append_str(l->b, ",");
	return r == 0 ? grant_state_json(l->b, g, l->now) : r;
}

static void
store_failed(gk_reply *rep, int r, const char *what)
{
	if (r == GK_ERR_NOT_FOUND) {
		gate_reply_error(rep, 404, "deny", "Not Found: no such grant");
		return;
	}
	gk_error("console %s: %s", what, grant_error());
	gate_reply_error(rep, 503, "error",
	    "Service Unavailable: the grants cannot be read or written");
}

void
console_grants_list(gk_app *app, gk_reply *rep)
{
	struct listing l;
	char now[40];
	int r;

	console_set_op(rep, "GET_Grants", gk_slice_str("/admin/api/grants"));
	if (grants_off(app, rep))
		return;
	l.b = &rep->body;
	l.n = 0;
	l.now = gk_now_s();
	gk_time_iso(l.now, now, sizeof(now));
	r = gk_buf_printf(&rep->body, "{\"now\":\"%s\",\"grants\":[", now);
	if (r == 0 && (r = grant_list(app->grants, list_one, &l)) != 0 &&
	    r != GK_ERR_NOMEM) {
		gk_buf_reset(&rep->body);
		return store_failed(rep, r, "grant list");
	}
	if (r == 0)
		r = gk_buf_append_str(&rep->body, "],\"error\":false}");
	if (r != 0)
		return console_oom(rep);
	console_ok_json(rep, 1);
}

/* ---- the audit record of a change -------------------------------------- */

static int
label_change(gk_reply *rep, const char *op, const gk_grant *g,
    const char *detail)
{
	char msg[512], ops[32];

	grant_ops_str(g->ops, ops, sizeof(ops));
	snprintf(msg, sizeof(msg), "%s from the console: name=%s ops=%s "
	    "expires=%lld rate=%u ips=%zu access_key_id=%s", detail, g->name,
	    ops, (long long)g->expires_s, g->rate, g->n_ips, g->access_key);
	rep->protocol = "grant";
	free(rep->operation);
	free(rep->path);
	free(rep->kid);
	rep->operation = strdup(op);
	rep->path = strdup(g->prefix);
	rep->kid = strdup(g->id);
	if (rep->operation == NULL || rep->path == NULL || rep->kid == NULL)
		return GK_ERR_NOMEM;
	gate_reply_allow(rep, msg);	/* answered once durable */
	return 0;
}

struct undo {
	gk_grants *gs;
	char id[GRANT_ID_LEN + 1];
};

/* A created grant whose record did not become durable is revoked. */
static void
undo_create(void *arg, int durable)
{
	struct undo *u = arg;
	gk_grant g;

	if (!durable) {
		if (grant_revoke(u->gs, u->id, &g) != 0)
			gk_error("grant %s: its audit record failed and revoking "
			    "it failed too: %s", u->id, grant_error());
		else
			gk_error("grant %s: its audit record failed; revoked "
			    "again", u->id);
		gk_wipe(&g, sizeof(g));
	}
	free(u);
}

/* ---- create ------------------------------------------------------------ */

static const char *const create_params[] = { "name", "prefix", "ops",
    "expires", "ip", "rate" };

/* The fields as the console's form labels them (web/console/index.html):
 * its errors are shown next to that form, where --prefix means nothing. */
static const grant_field_names form_fields = { "'Name'", "'Key prefix'",
    "'Operations'", "'Client CIDRs'" };

#define BAD(msg) do { *why = (msg); return GK_ERR_INVALID; } while (0)

int
console_grant_parse(const gate_params *ps, gk_grant *g, const char **why)
{
	const char *v, *p, *comma;
	int64_t dur = 0;
	uint64_t rate;
	size_t i, j, n;

	memset(g, 0, sizeof(*g));
	for (i = 0; i < ps->n; i++) {
		for (j = 0; j < GK_ARRAY_LEN(create_params); j++)
			if (gk_slice_eq_str(ps->p[i].name, create_params[j]))
				break;
		if (j == GK_ARRAY_LEN(create_params))
			BAD("Bad Request: unknown param");
	}
	if ((v = gate_params_str(ps, "name")) == NULL || v[0] == '\0')
		BAD("Bad Request: 'Name' is required");
	if (strlen(v) > GRANT_NAME_MAX)
		BAD("Bad Request: 'Name' is too long");
	snprintf(g->name, sizeof(g->name), "%s", v);
	if ((v = gate_params_str(ps, "prefix")) == NULL)
		BAD("Bad Request: 'Key prefix' is required (\"\" for the "
		    "whole bucket)");
	if (strlen(v) > GRANT_PREFIX_MAX)
		BAD("Bad Request: 'Key prefix' is too long");
	snprintf(g->prefix, sizeof(g->prefix), "%s", v);
	if ((v = gate_params_str(ps, "ops")) == NULL ||
	    grant_ops_parse(v, &g->ops) != 0)
		BAD("Bad Request: 'Operations' must be a comma list of "
		    "get, list, put, delete");
	if ((v = gate_params_str(ps, "expires")) != NULL && v[0] != '\0' &&
	    grant_duration_parse(v, &dur) != 0)
		BAD("Bad Request: 'Expires in' must be like 90d, 12h, "
		    "30m or 45s");
	if (dur != 0)
		g->expires_s = gk_now_s() + dur;
	if ((v = gate_params_str(ps, "ip")) != NULL && v[0] != '\0') {
		for (p = v; ; p = comma + 1) {
			comma = strchr(p, ',');
			n = comma != NULL ? (size_t)(comma - p) : strlen(p);
			while (n > 0 && *p == ' ') {
				p++;
				n--;
			}
			while (n > 0 && p[n - 1] == ' ')
				n--;
			if (n == 0 || n > GRANT_CIDR_MAX ||
			    g->n_ips == GRANT_IPS_MAX)
				BAD("Bad Request: 'Client CIDRs' must be a "
				    "comma list of at most 16 CIDRs");
			memcpy(g->ips[g->n_ips], p, n);
			g->ips[g->n_ips++][n] = '\0';
			if (comma == NULL)
				break;
		}
	}
	if ((v = gate_params_str(ps, "rate")) != NULL && v[0] != '\0') {
		if (gk_parse_u64(gk_slice_str(v), RATE_MAX, &rate) != 0 ||
		    rate == 0)
			BAD("Bad Request: 'Rate /s' must be 1 to "
			    "1000000 requests per second");
		g->rate = (unsigned)rate;
	}
	*why = NULL;
	return 0;
}

#undef BAD

void
console_grant_create(gk_app *app, const gk_req *req, const gate_params *ps,
    gk_reply *rep)
{
	struct undo *u = NULL;
	const char *why;
	gk_grant g;
	char err[256], msg[300];
	int r;

	console_set_op(rep, "grant_create", req->path);
	rep->protocol = "grant";
	if (grants_off(app, rep))
		return;
	if (console_grant_parse(ps, &g, &why) != 0) {
		gate_reply_error(rep, 400, "deny", why);
		return;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return console_oom(rep);
	err[0] = '\0';
	if ((r = grant_create(app->grants, &g, &form_fields,
	    err, sizeof(err))) != 0) {
		free(u);
		if (r == GK_ERR_INVALID) {
			snprintf(msg, sizeof(msg), "Bad Request: %s", err);
			gate_reply_error(rep, 400, "deny", msg);
			return;
		}
		gk_error("console grant create: %s", err);
		gate_reply_error(rep, 503, "error",
		    "Service Unavailable: the grants cannot be written");
		return;
	}
	u->gs = app->grants;
	memcpy(u->id, g.id, sizeof(u->id));
	/* from here on the grant exists: undone unless its record holds */
	rep->settled = undo_create;
	rep->settled_arg = u;
	r = gk_buf_append_str(&rep->body, "{\"grant\":");
	if (r == 0)
		r = grant_state_json(&rep->body, &g, gk_now_s());
	if (r == 0)
		r = gk_buf_printf(&rep->body, ",\"secret_access_key\":\"%s\","
		    "\"error\":false}", g.secret);
	gk_wipe(g.secret, sizeof(g.secret));
	if (r == 0)
		r = label_change(rep, "grant_create", &g, "created");
	if (r != 0) {
		gk_wipe(rep->body.data, rep->body.len);
		rep->settled = NULL;
		rep->settled_arg = NULL;
		undo_create(u, 0);
		return console_oom(rep);
	}
	rep->status = 201;
}

/* ---- revoke ------------------------------------------------------------ */

void
console_grant_revoke(gk_app *app, const gk_req *req, const gate_params *ps,
    gk_reply *rep)
{
	const char *id = gate_params_str(ps, "id");
	gk_grant g;
	int r;

	console_set_op(rep, "grant_revoke", req->path);
	rep->protocol = "grant";
	if (grants_off(app, rep))
		return;
	if (ps->n != 1 || id == NULL || strlen(id) != GRANT_ID_LEN) {
		gate_reply_error(rep, 400, "deny",
		    "Bad Request: 'id' (a grant id, g-...) is required");
		return;
	}
	if ((r = grant_revoke(app->grants, id, &g)) == GK_ERR_DENIED) {
		char m[96];

		snprintf(m, sizeof(m), "Conflict: grant %s is already revoked",
		    g.id);
		gate_reply_error(rep, 409, "deny", m);
		free(rep->kid);
		rep->kid = strdup(g.id);	/* found by --grant */
		return;
	}
	if (r != 0)
		return store_failed(rep, r, "grant revoke");
	r = gk_buf_append_str(&rep->body, "{\"grant\":");
	if (r == 0)
		r = grant_state_json(&rep->body, &g, gk_now_s());
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"error\":false}");
	if (r == 0)
		r = label_change(rep, "grant_revoke", &g, "revoked");
	if (r != 0)
		return console_oom(rep);
	rep->status = 200;
}
