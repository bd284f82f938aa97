/* test_grant.c - grants: parsing, the stored document, the secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "config/config.h"
#include "grant/grant.h"
#include "t.h"

static char dir[64] = "/tmp/gk-grant-XXXXXX";
static char db[128];

static gk_config *
mk_cfg(uint8_t fill)
{
	gk_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL || (cfg->grant_key.p = malloc(32)) == NULL)
		abort();
	memset(cfg->grant_key.p, fill, 32);
	cfg->grant_key.len = 32;
	cfg->audit_db = db;
	cfg->grant_key_file = "grant.key";
	return cfg;
}

static void
free_cfg(gk_config *cfg)
{
	free(cfg->grant_key.p);
	free(cfg);
}

static int
count_cb(void *arg, const gk_grant *g)
{
	(*(int *)arg)++;
	T_CHECK(g->secret[0] == '\0');
	return 0;
}

static void
test_parsers(void)
{
	unsigned ops;
	int64_t s;
	char buf[32];

	T_EQ_INT(grant_ops_parse("get,list", &ops), 0);
	T_EQ_INT(ops, GRANT_OP_GET | GRANT_OP_LIST);
	T_EQ_INT(grant_ops_parse("delete,put,get,list", &ops), 0);
	T_EQ_INT(ops, GRANT_OP_ALL);
	grant_ops_str(ops, buf, sizeof(buf));
	T_EQ_STR(buf, "get,list,put,delete");
	T_EQ_INT(grant_ops_parse("get,get", &ops), GK_ERR_INVALID);
	T_EQ_INT(grant_ops_parse("get,", &ops), GK_ERR_INVALID);
	T_EQ_INT(grant_ops_parse("", &ops), GK_ERR_INVALID);
	T_EQ_INT(grant_ops_parse("GET", &ops), GK_ERR_INVALID);
	T_EQ_INT(grant_duration_parse("90d", &s), 0);
	T_EQ_INT(s, 90 * 86400);
	T_EQ_INT(grant_duration_parse("12h", &s), 0);
	T_EQ_INT(s, 12 * 3600);
	T_EQ_INT(grant_duration_parse("45", &s), 0);
	T_EQ_INT(s, 45);
	T_EQ_INT(grant_duration_parse("0d", &s), GK_ERR_INVALID);
	T_EQ_INT(grant_duration_parse("d", &s), GK_ERR_INVALID);
	T_EQ_INT(grant_duration_parse("-5s", &s), GK_ERR_INVALID);
	T_EQ_INT(grant_duration_parse("99999999999d", &s), GK_ERR_INVALID);
}

/* The grants as the server opens them: settings filled from cfg. */
static int
open_grants(const gk_config *cfg, gk_grants **out, char *err, size_t errlen)
{
	grant_settings gs;

	cfg_grant_settings(cfg, &gs);
	return grant_open(&gs, out, err, errlen);
}

static void
test_store(void)
{
	gk_config *cfg = mk_cfg(7), *other = mk_cfg(8);
	gk_grants *gs = NULL, *gs2 = NULL;
	gk_grant g, k, r, old;
	sqlite3 *h;
	char err[256];
	int n = 0;

	T_EQ_INT(open_grants(cfg, &gs, err, sizeof(err)), 0);
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "backup");
	snprintf(g.prefix, sizeof(g.prefix), "reports/");
	g.ops = GRANT_OP_GET | GRANT_OP_LIST;
	snprintf(g.ips[0], sizeof(g.ips[0]), "10.0.0.0/8");
	g.n_ips = 1;
	g.rate = 5;
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), 0);
	T_EQ_INT(strlen(g.id), GRANT_ID_LEN);
	T_EQ_INT(strlen(g.access_key), GRANT_AKID_LEN);
	T_EQ_INT(strlen(g.secret), GRANT_SECRET_LEN);
	T_EQ_INT(grant_by_key(gs, g.access_key, &k), 0);
	T_EQ_STR(k.secret, g.secret);
	T_EQ_STR(k.id, g.id);
	T_EQ_STR(k.prefix, "reports/");
	T_EQ_STR(k.ips[0], "10.0.0.0/8");
	T_EQ_INT(k.rate, 5);
	T_CHECK(grant_covers(&k, gk_slice_str("reports/a.pdf")));
	T_CHECK(!grant_covers(&k, gk_slice_str("reportsX/a.pdf")));
	T_EQ_INT(grant_get(gs, g.id, &k), 0);
	T_EQ_INT(k.secret[0], 0);
	T_EQ_INT(grant_by_key(gs, "GKNOPE", &k), GK_ERR_NOT_FOUND);

	/* the secret is not in the database in the clear */
	T_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
	{
		sqlite3_stmt *st;
		const char *doc;

		T_EQ_INT(sqlite3_prepare_v2(h, "SELECT doc FROM grants", -1,
		    &st, NULL), SQLITE_OK);
		T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
		doc = (const char *)sqlite3_column_text(st, 0);
		T_CHECK(doc != NULL && strstr(doc, g.secret) == NULL);
		sqlite3_finalize(st);
	}
	/* another grant key cannot decrypt it */
	T_EQ_INT(open_grants(other, &gs2, err, sizeof(err)), 0);
	T_EQ_INT(grant_by_key(gs2, g.access_key, &k), GK_ERR_AUTH);
	T_EQ_STR(k.id, g.id);
	T_EQ_INT(k.secret[0], 0);
	/* which grants the other key cannot open: this one, not for gs */
	n = 0;
	T_EQ_INT(grant_unusable(gs2, count_cb, &n), 0);
	T_EQ_INT(n, 1);
	n = 0;
	T_EQ_INT(grant_unusable(gs, count_cb, &n), 0);
	T_EQ_INT(n, 0);
	grant_close(gs2);
	/* nor does a secret moved to another access key */
	T_EQ_INT(sqlite3_exec(h, "UPDATE grants SET doc = replace(doc, "
	    "access_key, 'GKAAAAAAAAAAAAAAAAAA'), "
	    "access_key = 'GKAAAAAAAAAAAAAAAAAA'", NULL, NULL, NULL),
	    SQLITE_OK);
	T_EQ_INT(grant_by_key(gs, "GKAAAAAAAAAAAAAAAAAA", &k),
	    GK_ERR_AUTH);
	sqlite3_close(h);

	/* rotate: a new pair, the old one is gone */
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "partner");
	g.ops = GRANT_OP_PUT;
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), 0);
	old = g;
	T_EQ_INT(grant_rotate(gs, g.id, &r), 0);
	T_CHECK(strcmp(r.access_key, old.access_key) != 0);
	T_CHECK(strcmp(r.secret, old.secret) != 0);
	T_EQ_INT(grant_by_key(gs, old.access_key, &k), GK_ERR_NOT_FOUND);
	T_EQ_INT(grant_by_key(gs, r.access_key, &k), 0);
	T_EQ_STR(k.secret, r.secret);
	/* revoke */
	T_EQ_INT(grant_revoke(gs, g.id, &k), 0);
	T_CHECK(k.revoked_s > 0);
	T_EQ_INT(grant_by_key(gs, r.access_key, &k), 0);
	T_CHECK(k.revoked_s > 0);
	T_EQ_INT(grant_rotate(gs, g.id, &k), GK_ERR_DENIED);
	/* a second revocation is refused and keeps the first time */
	{
		int64_t when = k.revoked_s;

		T_EQ_INT(grant_revoke(gs, g.id, &k), GK_ERR_DENIED);
		T_EQ_INT(grant_get(gs, g.id, &k), 0);
		T_EQ_INT(k.revoked_s, when);
	}
	T_EQ_INT(grant_revoke(gs, "g-000000000000", &k), GK_ERR_NOT_FOUND);
	/* a grant the current key cannot open can be revoked, and is
	 * then no longer listed as unusable */
	T_EQ_INT(open_grants(other, &gs2, err, sizeof(err)), 0);
	/* the first grant (its row altered above): no key opens it; the
	 * second is revoked, so not listed */
	n = 0;
	T_EQ_INT(grant_unusable(gs, count_cb, &n), 0);
	T_EQ_INT(n, 1);
	memset(&g, 0, sizeof(g));
	snprintf(g.name, sizeof(g.name), "later");
	g.ops = GRANT_OP_GET;
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), 0);
	n = 0;
	T_EQ_INT(grant_unusable(gs2, count_cb, &n), 0);
	T_EQ_INT(n, 2);
	T_EQ_INT(grant_revoke(gs2, g.id, &k), 0);
	T_CHECK(k.revoked_s > 0);
	n = 0;
	T_EQ_INT(grant_unusable(gs2, count_cb, &n), 0);
	T_EQ_INT(n, 1);
	/* and its stored secret was kept: the right key still opens it */
	T_EQ_INT(grant_by_key(gs, g.access_key, &k), 0);
	T_EQ_STR(k.secret, g.secret);
	grant_close(gs2);

	/* validation */
	memset(&g, 0, sizeof(g));
	g.ops = GRANT_OP_GET;
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), GK_ERR_INVALID);
	snprintf(g.name, sizeof(g.name), "x");
	snprintf(g.prefix, sizeof(g.prefix), "../etc/");
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), GK_ERR_INVALID);
	snprintf(g.prefix, sizeof(g.prefix), "%s", GRANT_RESERVED_PREFIX);
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), GK_ERR_INVALID);
	T_CHECK(strstr(err, GRANT_RESERVED_PREFIX) != NULL);
	snprintf(g.prefix, sizeof(g.prefix), "%sabc/", GRANT_RESERVED_PREFIX);
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), GK_ERR_INVALID);
	snprintf(g.prefix, sizeof(g.prefix), "ok/");
	snprintf(g.ips[0], sizeof(g.ips[0]), "10.0.0.1/8");
	g.n_ips = 1;
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), GK_ERR_INVALID);
	g.n_ips = 0;
	g.ops = 0;
	T_EQ_INT(grant_create(gs, &g, &grant_cli_fields, err,
	    sizeof(err)), GK_ERR_INVALID);

	n = 0;
	T_EQ_INT(grant_list(gs, count_cb, &n), 0);
	T_EQ_INT(n, 3);
	grant_close(gs);
	free_cfg(cfg);
	free_cfg(other);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(db, sizeof(db), "%s/audit.db", dir);
	test_parsers();
	test_store();
	unlink(db);
	{
		char p[160];

		snprintf(p, sizeof(p), "%s-wal", db);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", db);
		unlink(p);
	}
	rmdir(dir);
	return T_DONE();
}
