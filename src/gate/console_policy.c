/*
 * console_policy.c - the console's Policy tab: GET /admin/api/policy (the
 * effective lists, countries and rates, and what the last reload
 * changed) and GET /admin/api/policy/test (ip, origin, op -> the decision
 * and the rule that decided, the checks in the gatekeeper's order).
 */
#include "console_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the settings a policy is built from ----------------------------- */

enum { S_STR, S_BOOL, S_UINT };

static const struct {
	const char *name;
	size_t off;
	int type;
} policy_keys[] = {
	{ "acl.ip_allow", offsetof(policy_settings, ip_allow), S_STR },
	{ "acl.ip_allow_files", offsetof(policy_settings, ip_allow_files), S_STR },
	{ "acl.ip_deny", offsetof(policy_settings, ip_deny), S_STR },
	{ "acl.ip_deny_files", offsetof(policy_settings, ip_deny_files), S_STR },
	{ "acl.uploads_exempt_ip", offsetof(policy_settings, uploads_exempt_ip),
	    S_BOOL },
	{ "acl.origins", offsetof(policy_settings, origins), S_STR },
	{ "acl.allow_missing_origin",
	    offsetof(policy_settings, allow_missing_origin), S_BOOL },
	{ "acl.trusted_proxies", offsetof(policy_settings, trusted_proxies), S_STR },
	{ "acl.forwarded_header", offsetof(policy_settings, forwarded_header),
	    S_STR },
	{ "geo.database", offsetof(policy_settings, geo_database), S_STR },
	{ "geo.countries", offsetof(policy_settings, geo_countries), S_STR },
	{ "geo.countries_get", offsetof(policy_settings, geo_countries_get), S_STR },
	{ "geo.countries_list", offsetof(policy_settings, geo_countries_list),
	    S_STR },
	{ "geo.countries_put", offsetof(policy_settings, geo_countries_put), S_STR },
	{ "geo.unknown", offsetof(policy_settings, geo_unknown), S_STR },
	{ "rate.requests_per_second", offsetof(policy_settings, rate_rps), S_UINT },
	{ "rate.burst", offsetof(policy_settings, rate_burst), S_UINT },
	{ "rate.denied_per_minute", offsetof(policy_settings, rate_denied_per_min),
	    S_UINT },
	{ "rate.denied_burst", offsetof(policy_settings, rate_denied_burst),
	    S_UINT },
	{ "rate.exempt", offsetof(policy_settings, rate_exempt), S_STR },
	{ "admin.cidrs", offsetof(policy_settings, admin_cidrs), S_STR },
};

void
console_settings_clear(struct console_setting *s, size_t *n)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		free(s[i].name);
		free(s[i].value);
	}
	*n = 0;
}

static void
snapshot(const policy_settings *cfg, struct console_setting *out, size_t *n)
{
	const char *base = (const char *)cfg;
	char num[24];
	const char *v;
	size_t i;

	*n = 0;
	for (i = 0; i < GK_ARRAY_LEN(policy_keys) && i < CONSOLE_SNAP_MAX; i++) {
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
gate_console_policy_loaded(gate_console *c, const policy_settings *cfg,
    const gk_policy *p)
{
	size_t i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	if (p == NULL) {	/* the settings at start: no change to show */
		console_settings_clear(c->cur, &c->ncur);
		snapshot(cfg, c->cur, &c->ncur);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	console_settings_clear(c->prev, &c->nprev);
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

/* ---- the view and the tester ------------------------------------------- */

static int
settings_json(gk_buf *b, const struct console_setting *s, size_t n)
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
lookup(const struct console_setting *s, size_t n, const char *name)
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

void
console_policy_view(gk_app *app, gk_reply *rep)
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
		return console_oom(rep);
	console_ok_json(rep, 0);
}

struct step {
	const char *check;
	int ok;
	char detail[160];
};

/* "would this request be allowed?": the checks of a request in the
 * gatekeeper's order (origin, IP lists, country) with the policy in
 * force, without the signature (the tester has none). */
void
console_policy_test(gk_app *app, const gk_req *req, const gate_params *ps,
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
		return console_oom(rep);
	console_ok_json(rep, 0);
}
