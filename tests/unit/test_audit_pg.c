/*
 * test_audit_pg.c - the PostgreSQL audit backend against a real, throw-away
 * server (tests/pg/pgctl.sh: initdb in a temp directory, Unix socket only,
 * stopped by PID at the end): chain and checkpoints, verify, search
 * filters, anchored pruning, two instances sharing one database, the jti
 * replay cache, and fail-closed while the database is down.
 *
 * Without PostgreSQL installed it reports one failure (CI installs it).
 */
#include "t.h"
#include "audit/audit.h"
#include "audit/audit_int.h"
#include "config/config.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

static char pgdir[256];
static char dsn[512];
static uint8_t pub[32];


/* The writer as the gate opens it: settings filled from cfg. */
static int
open_audit(const gk_config *cfg, gk_audit **out)
{
	audit_settings as;

	char err[512];

	cfg_audit_settings(cfg, &as);
	return audit_open(&as, out, err, sizeof(err));
}

static int
pgctl(const char *verb)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "tests/pg/pgctl.sh %s %s >/dev/null",
	    verb, pgdir);
	return system(cmd);
}

static int
pg_start(void)
{
	FILE *p = popen("tests/pg/pgctl.sh start", "r");
	char line[1024];
	int ok;

	if (p == NULL)
		return -1;
	ok = fgets(line, sizeof(line), p) != NULL &&
	    sscanf(line, "%255s %511s", pgdir, dsn) == 2;
	return pclose(p) == 0 && ok ? 0 : -1;
}

static void
sql(const char *q)
{
	PGconn *db = PQconnectdb(dsn);
	PGresult *res = PQexec(db, q);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "sql %s: %s", q, PQerrorMessage(db));
	PQclear(res);
	PQfinish(db);
}

static int64_t
sql_int(const char *q)
{
	PGconn *db = PQconnectdb(dsn);
	PGresult *res = PQexec(db, q);
	int64_t v = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	PQfinish(db);
	return v;
}

static gk_config *
mk_cfg(const char *instance, unsigned cp_records)
{
	gk_config *cfg = calloc(1, sizeof(*cfg));
	unsigned i;

	if (cfg == NULL || (cfg->audit_key.p = malloc(32)) == NULL)
		abort();
	cfg->audit_backend = strdup("postgres");
	cfg->audit_dsn = strdup(dsn);
	cfg->audit_instance_id = strdup(instance);
	for (i = 0; i < 32; i++)
		cfg->audit_key.p[i] = (uint8_t)(3 * i + 5);
	cfg->audit_key.len = 32;
	cfg->checkpoint_records = cp_records;
	cfg->checkpoint_seconds = 86400;
	if (audit_key_public(cfg->audit_key.p, pub) != 0)
		abort();
	return cfg;
}

static void
free_cfg(gk_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->audit_backend);
	free(cfg->audit_dsn);
	free(cfg->audit_instance_id);
	free(cfg->audit_key.p);
	free(cfg);
}

static void
mk_rec(gk_audit_record *r, int64_t t, const char *reqid, const char *ip,
    const char *path, int status)
{
	memset(r, 0, sizeof(*r));
	r->time_us = t;
	snprintf(r->request_id, sizeof(r->request_id), "%s", reqid);
	snprintf(r->client_ip, sizeof(r->client_ip), "%s", ip);
	r->protocol = "v1";
	r->operation = "GET_Object";
	r->root = "app";
	r->path = path;
	r->status = status;
	r->decision = status < 400 ? "allow" : "deny";
	r->message = "m";
	r->country = "DE";
	r->kid = "k1";
	r->sub = "user-7";
}

struct problems {
	unsigned n;
	char first[512];
};

static void
on_problem(void *arg, const char *msg)
{
	struct problems *p = arg;

	if (p->n++ == 0)
		snprintf(p->first, sizeof(p->first), "%s", msg);
}

static long
verify(struct problems *p, gk_audit_verify_stats *st)
{
	char err[256];

	memset(p, 0, sizeof(*p));
	if (audit_verify(dsn, pub, 1, NULL, 0, on_problem, p, st, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "verify: %s\n", err);
		return -1;
	}
	return (long)st->problems;
}

struct got {
	char ids[1024];
	int64_t last_time, last_id;
};

static int
on_row(void *arg, const gk_audit_row *row)
{
	struct got *g = arg;
	size_t n = strlen(g->ids);

	snprintf(g->ids + n, sizeof(g->ids) - n, "%s%s", n ? "," : "",
	    row->rec.request_id);
	g->last_time = row->rec.time_us;
	g->last_id = row->id;
	return 0;
}

static const char *
found(const gk_audit_query *q, struct got *g)
{
	char err[256];

	memset(g, 0, sizeof(*g));
	if (audit_search(dsn, q, on_row, g, err, sizeof(err)) != 0)
		snprintf(g->ids, sizeof(g->ids), "error: %s", err);
	return g->ids;
}

static void
test_chain_search_prune(void)
{
	gk_config *cfg = mk_cfg("gk-a", 4);
	gk_audit *a = NULL;
	gk_audit_record rec;
	gk_audit_query q;
	gk_audit_verify_stats st;
	struct problems pr;
	struct got g;
	char id[16];
	int i;

	T_EQ_INT(open_audit(cfg, &a), 0);
	if (a == NULL)
		goto out;
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		mk_rec(&rec, 1000 + i, id, i < 5 ? "10.0.0.1" : "2001:db8::1",
		    i % 2 ? "/a/\xff" : "/b/x", i == 3 ? 403 : 302);
		T_EQ_INT(audit_write(a, &rec), 0);
	}
	audit_close(a);
	a = NULL;
	T_EQ_INT(sql_int("SELECT count(*) FROM audit"), 10);
	T_EQ_INT(sql_int("SELECT (string_agg(seq::text, ',' ORDER BY seq) ="
	    " '4,8,10')::int FROM audit_checkpoint"), 1);
	T_EQ_INT(verify(&pr, &st), 0);
	T_EQ_INT(st.records, 10);
	T_EQ_INT(st.checkpoints, 3);

	memset(&q, 0, sizeof(q));
	q.ip = "10.0.0.0/8";
	T_EQ_STR(found(&q, &g), "r4,r3,r2,r1,r0");
	q.ip = "2001:db8::/32";
	q.path_prefix = "/a/\xef\xbf\xbd";
	T_EQ_STR(found(&q, &g), "r9,r7,r5");
	memset(&q, 0, sizeof(q));
	q.status = 403;
	q.country = "DE";
	q.kid = "k1";
	q.sub = "user-7";
	T_EQ_STR(found(&q, &g), "r3");
	memset(&q, 0, sizeof(q));
	q.request_id = "r6";
	T_EQ_STR(found(&q, &g), "r6");
	/* cursor pagination */
	memset(&q, 0, sizeof(q));
	q.limit = 4;
	T_EQ_STR(found(&q, &g), "r9,r8,r7,r6");
	q.before_time_us = g.last_time;
	q.before_id = g.last_id;
	T_EQ_STR(found(&q, &g), "r5,r4,r3,r2");
	memset(&q, 0, sizeof(q));
	q.ip = "nope";
	T_EQ_INT(audit_search(dsn, &q, on_row, &g, NULL, 0), GK_ERR_INVALID);

	/* a modified record is found and named */
	sql("UPDATE audit SET status = status + 1 WHERE seq = 6");
	T_EQ_INT(verify(&pr, &st), 1);
	T_CHECK(strstr(pr.first, "record seq 6 ") != NULL &&
	    strstr(pr.first, "modified") != NULL);
	sql("UPDATE audit SET status = status - 1 WHERE seq = 6");
	T_EQ_INT(verify(&pr, &st), 0);
	/* a deleted one */
	sql("CREATE TABLE keep AS SELECT * FROM audit WHERE seq = 2");
	sql("DELETE FROM audit WHERE seq = 2");
	T_EQ_INT(verify(&pr, &st), 1);
	T_CHECK(strstr(pr.first, "record seq 2 of instance gk-a is missing")
	    != NULL);
	sql("INSERT INTO audit SELECT * FROM keep; DROP TABLE keep");
	/* a forged checkpoint */
	sql("UPDATE audit_checkpoint SET time_us = time_us + 1 WHERE seq = 8");
	T_EQ_INT(verify(&pr, &st), 1);
	T_CHECK(strstr(pr.first, "checkpoint seq 8 of instance gk-a") != NULL &&
	    strstr(pr.first, "bad signature") != NULL);
	sql("UPDATE audit_checkpoint SET time_us = time_us - 1 WHERE seq = 8");
	T_EQ_INT(verify(&pr, &st), 0);

	/* reopening continues the chain; pruning keeps it verifiable */
	T_EQ_INT(open_audit(cfg, &a), 0);
	if (a == NULL)
		goto out;
	mk_rec(&rec, 5000, "late", "10.0.0.2", "/c", 302);
	T_EQ_INT(audit_write(a, &rec), 0);
	audit_close(a);
	a = NULL;
	{
		uint64_t deleted = 0;

		T_EQ_INT(audit_prune(dsn, gk_now_us() + 1000000, NULL, "t",
		    &deleted), GK_ERR_CONFIG);
		T_EQ_INT(audit_prune(dsn, gk_now_us() + 1000000,
		    cfg->audit_key.p, "cli:test", &deleted), 0);
		T_EQ_INT(deleted, 11);
	}
	T_EQ_INT(sql_int("SELECT seq FROM audit_anchor WHERE instance_id ="
	    " 'gk-a'"), 11);
	/* the prune record (with a checkpoint over it) is in the chain */
	T_EQ_INT(sql_int("SELECT seq FROM audit WHERE instance_id = 'gk-a'"
	    " AND operation = 'prune' AND sub = 'cli:test'"), 12);
	T_EQ_INT(verify(&pr, &st), 0);
	/* issue 17, finding 3: records deleted by hand and the anchor moved
	 * to a signed checkpoint is no prune */
	sql("DELETE FROM audit WHERE instance_id = 'gk-a' AND seq <= 12;"
	    "UPDATE audit_anchor SET seq = c.seq, hash = c.hash FROM"
	    " audit_checkpoint c WHERE c.instance_id = 'gk-a' AND c.seq = 12"
	    " AND audit_anchor.instance_id = 'gk-a'");
	T_EQ_INT(verify(&pr, &st), 1);
	T_CHECK(strstr(pr.first, "not allowed by a prune record") != NULL);
out:
	audit_close(a);
	free_cfg(cfg);
}

/* Two instances, one database: two chains, both verify. */
static void
test_two_instances(void)
{
	gk_config *c1 = mk_cfg("gk-one", 3), *c2 = mk_cfg("gk-two", 3);
	gk_audit *a = NULL, *b = NULL;
	gk_audit_record rec;
	gk_audit_verify_stats st;
	struct problems pr;
	char id[16];
	int i;

	sql("TRUNCATE audit, audit_checkpoint, audit_anchor");
	T_EQ_INT(open_audit(c1, &a), 0);
	T_EQ_INT(open_audit(c2, &b), 0);
	if (a == NULL || b == NULL)
		goto out;
	for (i = 0; i < 8; i++) {
		snprintf(id, sizeof(id), "x%d", i);
		mk_rec(&rec, 100 + i, id, "10.1.1.1", "/p", 302);
		T_EQ_INT(audit_write(i % 2 ? a : b, &rec), 0);
	}
out:
	audit_close(a);
	audit_close(b);
	T_EQ_INT(sql_int("SELECT count(DISTINCT instance_id) FROM audit"), 2);
	T_EQ_INT(sql_int("SELECT max(seq) FROM audit WHERE instance_id ="
	    " 'gk-two'"), 4);
	T_EQ_INT(verify(&pr, &st), 0);
	T_EQ_INT(st.instances, 2);
	T_EQ_INT(st.records, 8);
	free_cfg(c1);
	free_cfg(c2);
}

/* The v2 replay cache: a jti is single-use across connections (and so
 * across instances). */
static void
test_jti(void)
{
	audit_conn *c1 = NULL, *c2 = NULL;
	char err[256];
	int64_t now = gk_now_s();

	T_EQ_INT(audit_conn_open(dsn, 1, &c1, err, sizeof(err)), 0);
	T_EQ_INT(audit_conn_open(dsn, 1, &c2, err, sizeof(err)), 0);
	if (c1 == NULL || c2 == NULL)
		goto out;
	T_CHECK(c1->ops->jti_use != NULL);
	T_EQ_INT(c1->ops->jti_use(c1, "tok-1", now + 60), 0);
	T_EQ_INT(c1->ops->jti_use(c1, "tok-1", now + 60), GK_ERR_EXISTS);
	T_EQ_INT(c2->ops->jti_use(c2, "tok-1", now + 60), GK_ERR_EXISTS);
	T_EQ_INT(c2->ops->jti_use(c2, "tok-2", now + 60), 0);
	/* an entry whose token has expired no longer blocks */
	T_EQ_INT(c1->ops->jti_use(c1, "tok-old", now - 10), 0);
	T_EQ_INT(c2->ops->jti_use(c2, "tok-old", now + 60), 0);
	T_EQ_INT(c1->ops->jti_use(c1, "tok-old", now + 60), GK_ERR_EXISTS);
	T_EQ_INT(sql_int("SELECT count(*) FROM jti"), 3);
	/* database down: unavailable, never "first use" */
	T_EQ_INT(pgctl("halt"), 0);
	T_EQ_INT(c1->ops->jti_use(c1, "tok-3", now + 60), GK_ERR_UNAVAILABLE);
	T_EQ_INT(pgctl("resume"), 0);
out:
	audit_conn_close(c1);
	audit_conn_close(c2);
}

/* Database down: writes fail (503 for grants); back: they resume, and
 * the chain has no hole. */
static void
test_fail_closed(void)
{
	gk_config *cfg = mk_cfg("gk-fail", 1000);
	gk_audit *a = NULL;
	gk_audit_record rec;
	gk_audit_verify_stats st;
	struct problems pr;
	int lvl = gk_log_get_level();

	sql("TRUNCATE audit, audit_checkpoint, audit_anchor");
	T_EQ_INT(open_audit(cfg, &a), 0);
	if (a == NULL)
		goto out;
	mk_rec(&rec, 1, "before", "10.0.0.1", "/p", 302);
	T_EQ_INT(audit_write(a, &rec), 0);
	T_EQ_INT(pgctl("halt"), 0);
	gk_log_set_level(-1);
	mk_rec(&rec, 2, "during", "10.0.0.1", "/p", 302);
	T_EQ_INT(audit_write(a, &rec), GK_ERR_UNAVAILABLE);
	T_EQ_INT(audit_write(a, &rec), GK_ERR_UNAVAILABLE);
	T_EQ_INT(pgctl("resume"), 0);
	mk_rec(&rec, 3, "after", "10.0.0.1", "/p", 302);
	T_EQ_INT(audit_write(a, &rec), 0);
	gk_log_set_level(lvl);
	audit_close(a);
	a = NULL;
	T_EQ_INT(sql_int("SELECT count(*) FROM audit WHERE request_id ="
	    " 'during'"), 0);
	T_EQ_INT(sql_int("SELECT max(seq) FROM audit"), 2);
	T_EQ_INT(verify(&pr, &st), 0);
out:
	audit_close(a);
	free_cfg(cfg);
}

int
main(void)
{
	if (pg_start() != 0) {
		T_CHECK(!"tests/pg/pgctl.sh start failed (is postgresql "
		    "installed? make deps)");
		return T_DONE();
	}
	test_chain_search_prune();
	test_two_instances();
	test_jti();
	test_fail_closed();
	T_EQ_INT(pgctl("stop"), 0);
	return T_DONE();
}
