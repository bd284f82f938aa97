/*
 * policy.c - the policy assembled from its settings (IP and admin CIDR
 * sets, list files, origins, trusted proxies, countries, rate limits),
 * reference counted, and the ACL decisions on it.
 */
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Builds one CIDR set from a setting; err gets "NAME: problem". */
static int
policy_load_cidrs(const char *name, const char *list, gk_cidrs **out,
    char *err, size_t errlen)
{
	char e[160];
	gk_cidrs *c = NULL;
	int r = GK_ERR_INTERNAL;

	e[0] = '\0';
	if ((r = policy_cidrs_new(&c)) != 0) {
		policy_set_err(e, sizeof(e), gk_err_str(r));
		goto out;
	}
	if ((r = policy_cidrs_add_list(c, list, e, sizeof(e))) != 0)
		goto out;
	*out = c;
	c = NULL; /* transferred */
	r = 0;
out:
	if (r != 0 && err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", name, e);
	policy_cidrs_free(c);
	return r;
}

struct file_arg {
	gk_cidrs *c;
	size_t *n;
	char *err;
	size_t errlen;
};

static int
file_item(void *arg, gk_slice item)
{
	struct file_arg *a = arg;
	char path[4097];

	if (item.len >= sizeof(path) || memchr(item.p, '\0', item.len)) {
		policy_item_err(a->err, a->errlen, "file name", item);
		return GK_ERR_INVALID;
	}
	memcpy(path, item.p, item.len);
	path[item.len] = '\0';
	(*a->n)++;
	return policy_cidrs_add_file(a->c, path, a->err, a->errlen);
}

/* Adds the list files to the allow and deny sets. */
static int
policy_load_files(gk_policy *p, const policy_settings *cfg, char *err,
    size_t errlen)
{
	struct file_arg a;
	char e[512];
	int r;

	e[0] = '\0';
	a.err = e;
	a.errlen = sizeof(e);
	a.c = p->allow;
	a.n = &p->allow_files;
	if ((r = gk_list_each(cfg->ip_allow_files, file_item, &a)) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "ip_allow_files: %s", e);
		return r == GK_ERR_INVALID ? GK_ERR_CONFIG : r;
	}
	a.c = p->deny;
	a.n = &p->deny_files;
	if ((r = gk_list_each(cfg->ip_deny_files, file_item, &a)) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "ip_deny_files: %s", e);
		return r == GK_ERR_INVALID ? GK_ERR_CONFIG : r;
	}
	return 0;
}

int
policy_new(const policy_settings *cfg, gk_policy **out, char *err,
    size_t errlen)
{
	gk_policy *p = NULL;
	char e[160];
	int r = GK_ERR_INTERNAL;

	if (out == NULL)
		return GK_ERR_INVALID;
	*out = NULL;
	if (cfg == NULL) {
		r = GK_ERR_INVALID;
		policy_set_err(err, errlen, "no configuration");
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		r = GK_ERR_NOMEM;
		policy_set_err(err, errlen, gk_err_str(r));
		goto out;
	}
	atomic_init(&p->refs, 1);
	p->uploads_exempt_ip = cfg->uploads_exempt_ip != 0;
	p->allow_missing_origin = cfg->allow_missing_origin != 0;
	if ((r = policy_load_cidrs("ip_allow", cfg->ip_allow, &p->allow, err,
	    errlen)) != 0 ||
	    (r = policy_load_cidrs("ip_deny", cfg->ip_deny, &p->deny, err,
	    errlen)) != 0 ||
	    (r = policy_load_cidrs("admin_cidrs", cfg->admin_cidrs, &p->admin,
	    err, errlen)) != 0)
		goto out;
	e[0] = '\0';
	if ((r = policy_origins_new(cfg->origins, &p->origins, e,
	    sizeof(e))) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "origins: %s", e);
		goto out;
	}
	if ((r = policy_load_files(p, cfg, err, errlen)) != 0 ||
	    (r = policy_load_cidrs("trusted_proxies", cfg->trusted_proxies,
	    &p->trusted, err, errlen)) != 0 ||
	    (r = policy_load_cidrs("[rate] exempt", cfg->rate_exempt,
	    &p->rate_exempt, err, errlen)) != 0 ||
	    (r = policy_geo_load(p, cfg, err, errlen)) != 0)
		goto out;
	if ((r = policy_cidrs_optimize(p->allow)) != 0 ||
	    (r = policy_cidrs_optimize(p->deny)) != 0) {
		policy_set_err(err, errlen, gk_err_str(r));
		goto out;
	}
	if (cfg->forwarded_header == NULL ||
	    strcasecmp(cfg->forwarded_header, "x-forwarded-for") == 0) {
		p->use_forwarded = 0;
	} else if (strcasecmp(cfg->forwarded_header, "forwarded") == 0) {
		p->use_forwarded = 1;
	} else {
		r = GK_ERR_CONFIG;
		policy_set_err(err, errlen, "forwarded_header must be x-forwarded-for "
		    "or forwarded");
		goto out;
	}
	p->rate_rps = cfg->rate_rps;
	p->rate_burst = cfg->rate_burst;
	p->rate_denied_pm = cfg->rate_denied_per_min;
	p->rate_denied_burst = cfg->rate_denied_burst;
	p->rate_v6_48_factor = cfg->rate_v6_48_factor;
	*out = p;
	p = NULL; /* transferred */
	r = 0;
out:
	policy_free(p);
	if (r == GK_ERR_INVALID && cfg != NULL)
		r = GK_ERR_CONFIG;
	return r;
}

void
policy_free(gk_policy *p)
{
	if (p == NULL)
		return;
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	policy_geo_release(p);
	policy_cidrs_free(p->trusted);
	policy_cidrs_free(p->rate_exempt);
	policy_cidrs_free(p->allow);
	policy_cidrs_free(p->deny);
	policy_cidrs_free(p->admin);
	policy_origins_free(p->origins);
	free(p);
}

gk_policy *
policy_ref(gk_policy *p)
{
	if (p != NULL)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

int
policy_check_ip(const gk_policy *p, const gk_addr *a, int is_upload)
{
	const char *rule;

	return policy_check_ip_rule(p, a, is_upload, &rule);
}

int
policy_check_ip_rule(const gk_policy *p, const gk_addr *a, int is_upload,
    const char **rule)
{
	*rule = "no policy";
	if (p == NULL || a == NULL)
		return GK_ERR_DENIED;
	/* deny wins, also for uploads: they skip only the allow list */
	if (policy_cidrs_contains(p->deny, a)) {
		*rule = "ip_deny";
		return GK_ERR_DENIED;
	}
	if (is_upload && p->uploads_exempt_ip) {
		*rule = "uploads exempt from ip_allow";
		return 0;
	}
	if (!policy_cidrs_contains(p->allow, a)) {
		*rule = "not in ip_allow";
		return GK_ERR_DENIED;
	}
	*rule = "ip_allow";
	return 0;
}

int
policy_check_origin(const gk_policy *p, gk_slice origin, int present)
{
	if (p == NULL)
		return GK_ERR_DENIED;
	if (!present)
		return p->allow_missing_origin ? 0 : GK_ERR_DENIED;
	return policy_origins_allowed(p->origins, origin) ? 0 : GK_ERR_DENIED;
}

int
policy_check_admin(const gk_policy *p, const gk_addr *a)
{
	if (p == NULL || a == NULL)
		return GK_ERR_DENIED;
	return policy_cidrs_contains(p->admin, a) ? 0 : GK_ERR_DENIED;
}
