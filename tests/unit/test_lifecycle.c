/*
 * test_lifecycle.c - a request's life through the gate, without HTTP: the
 * real gate, verify, policy, fs store and audit writer thread, with a test
 * audit backend (below; not in the production build) whose commits the
 * test holds, fails or lets through, and a fixed clock. Proves that no
 * grant, no streamed byte and no upload becomes visible before the audit
 * record's durable-commit callback, that a failed commit turns a grant
 * into a 503, and that refusals are answered while the audit is down.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "config/config.h"
#include "gate/exchange.h"
#include "gate/gate.h"
#include "store/store.h"
#include "verify/verify.h"
#include "t.h"

#define FIXED_NOW_S 1900000000LL	/* 2030-03-17 */

/* ---- the test audit backend ------------------------------------------- */

enum { COMMIT_OK, COMMIT_FAIL, COMMIT_HOLD };

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int mode;
	int held;		/* a batch is waiting in insert */
	int released;
	uint64_t inserted;	/* records committed */
	int last_status;
	char last_ua[128];
	char last_origin[128];
	int64_t last_time_us;
} be = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, COMMIT_OK,
	0, 0, 0, 0, "", "", 0 };

static const audit_backend test_backend;
static audit_conn the_conn;

static int
tb_open(const char *target, int create, audit_conn **out, char *err,
    size_t errlen)
{
	the_conn.ops = &test_backend;
	*out = &the_conn;
	return 0;
}

static void
tb_close(audit_conn *c)
{
}

static int
tb_same(const audit_conn *c, const char *target)
{
	return 1;
}

static int
tb_flush(audit_conn *c)
{
	return 0;
}

static int
tb_tail(audit_conn *c, const char *instance, audit_tail *out, char *err,
    size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return 0;
}

static int
tb_insert(audit_conn *c, const char *instance,
    const gk_audit_record *const *recs, const audit_link *links, size_t n,
    const audit_checkpoint *cp, char *err, size_t errlen)
{
	int r = 0;

	pthread_mutex_lock(&be.lock);
	if (be.mode == COMMIT_HOLD) {
		be.held = 1;
		pthread_cond_broadcast(&be.cond);
		while (!be.released && be.mode == COMMIT_HOLD)
			pthread_cond_wait(&be.cond, &be.lock);
		be.held = 0;
		be.released = 0;
		pthread_cond_broadcast(&be.cond);
	}
	if (be.mode == COMMIT_FAIL) {
		snprintf(err, errlen, "test backend: commit fails");
		r = GK_ERR_UNAVAILABLE;
	} else if (n > 0) {
		const gk_audit_record *last = recs[n - 1];

		be.inserted += n;
		be.last_status = last->status;
		snprintf(be.last_ua, sizeof(be.last_ua), "%s",
		    last->user_agent ? last->user_agent : "");
		snprintf(be.last_origin, sizeof(be.last_origin), "%s",
		    last->origin ? last->origin : "");
		be.last_time_us = last->time_us;
	}
	pthread_mutex_unlock(&be.lock);
	return r;
}

static int
tb_prune_target(audit_conn *c, int64_t before_us, audit_checkpoint *out,
    int *found, char *err, size_t errlen)
{
	*found = 0;
	return 0;
}

static int
tb_prune(audit_conn *c, const char *instance, int64_t upto,
    uint64_t *deleted, int *more, char *err, size_t errlen)
{
	*deleted = 0;
	*more = 0;
	return 0;
}

static int
tb_search(const char *target, const gk_audit_query *q, gk_audit_row_fn fn,
    void *arg, char *err, size_t errlen)
{
	return 0;
}

static int
tb_scan(const char *target, const audit_scan_cb *cb, void *arg, char *err,
    size_t errlen)
{
	return 0;
}

static const audit_backend test_backend = {
	.name = "test",
	.local = 0,
	.open = tb_open,
	.close = tb_close,
	.same_target = tb_same,
	.flush = tb_flush,
	.tail = tb_tail,
	.insert = tb_insert,
	.prune_target = tb_prune_target,
	.prune_span = tb_prune,
	.search = tb_search,
	.scan = tb_scan,
	.jti_use = NULL,
};

static void
be_mode(int mode)
{
	pthread_mutex_lock(&be.lock);
	/* a batch still held from before is not affected: it waits for
	 * be_release (or a mode that does not hold) */
	be.mode = mode;
	pthread_cond_broadcast(&be.cond);
	pthread_mutex_unlock(&be.lock);
}

/* Waits until a batch is held in insert (the record reached the
 * backend and is not committed). */
static void
be_wait_held(void)
{
	pthread_mutex_lock(&be.lock);
	while (!be.held)
		pthread_cond_wait(&be.cond, &be.lock);
	pthread_mutex_unlock(&be.lock);
}

static void
be_release(void)
{
	pthread_mutex_lock(&be.lock);
	be.released = 1;
	pthread_cond_broadcast(&be.cond);
	while (be.held)		/* until the held batch goes on */
		pthread_cond_wait(&be.cond, &be.lock);
	pthread_mutex_unlock(&be.lock);
}

/* ---- a request as an adapter would hand it over ------------------------ */

struct hdrs {
	const char *kv[16][2];
	size_t n;
};

static const char *
h_get(void *ctx, const char *name)
{
	struct hdrs *h = ctx;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (strcasecmp(h->kv[i][0], name) == 0)
			return h->kv[i][1];
	return NULL;
}

static void
h_each(void *ctx, gk_header_fn fn, void *arg)
{
	struct hdrs *h = ctx;
	size_t i;

	for (i = 0; i < h->n; i++)
		fn(arg, h->kv[i][0], h->kv[i][1]);
}

static struct sockaddr_in peer4;

static gate_exchange *
begin(gk_app *app, const char *method, const char *target, struct hdrs *h)
{
	gk_req_in in;

	memset(&in, 0, sizeof(in));
	in.method = method;
	in.target = target;
	in.peer = (const struct sockaddr *)&peer4;
	in.headers.get = h_get;
	in.headers.each = h_each;
	in.headers.ctx = h;
	return gate_begin(app, &in);
}

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
} woken = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void
wake(void *arg)
{
	pthread_mutex_lock(&woken.lock);
	woken.n++;
	pthread_cond_broadcast(&woken.cond);
	pthread_mutex_unlock(&woken.lock);
}

static int
woken_count(void)
{
	int n;

	pthread_mutex_lock(&woken.lock);
	n = woken.n;
	pthread_mutex_unlock(&woken.lock);
	return n;
}

static void
wait_woken(int n)
{
	pthread_mutex_lock(&woken.lock);
	while (woken.n < n)
		pthread_cond_wait(&woken.cond, &woken.lock);
	pthread_mutex_unlock(&woken.lock);
}

/* ---- fixtures ------------------------------------------------------------ */

static char dir[] = "/tmp/gk-lifecycle-XXXXXX";

static gk_app *
app_open(void)
{
	char ini[256], err[512];
	gk_config *cfg = NULL;
	gk_app *app = NULL;
	FILE *f;

	snprintf(ini, sizeof(ini), "%s/gatekeeper.ini", dir);
	if ((f = fopen(ini, "w")) == NULL)
		return NULL;
	fprintf(f, "[server]\npublic_url = http://gk.test\n[gate]\ndata_dir = %s\n"
	    "[audit]\ndb = %s/audit.db\n", dir, dir);
	fclose(f);
	if (cfg_load(ini, 0, &cfg, err, sizeof(err)) != 0 ||
	    cfg_keygen(cfg, NULL) != 0) {
		fprintf(stderr, "config: %s\n", err);
		cfg_free(cfg);
		return NULL;
	}
	cfg_free(cfg);
	if (cfg_load(ini, 1, &cfg, err, sizeof(err)) != 0 ||
	    cfg_gate_open(cfg, &app, err, sizeof(err)) != 0) {
		fprintf(stderr, "app: %s\n", err);
		return NULL;
	}
	return app;
}

static int
put_object(gk_app *app, const char *key, const char *data)
{
	gk_store_writer *w = NULL;
	int r;

	if ((r = store_put_begin(app->store, gk_slice_str(key), 1 << 20,
	    &w)) == 0 &&
	    (r = store_writer_write(w, (const uint8_t *)data,
	    strlen(data))) == 0 &&
	    (r = store_writer_finish(w)) == 0)
		r = store_writer_commit(w);
	store_writer_free(w);
	return r;
}

static int
object_exists(gk_app *app, const char *key)
{
	gk_store_reader *rd = NULL;
	uint64_t size;
	int64_t mtime;
	int r = store_get_open(app->store, gk_slice_str(key), &rd, &size,
	    &mtime);

	store_reader_free(rd);
	return r == 0;
}

/* A signed data URL target for key. */
static void
data_target(gk_app *app, const char *key, char *out, size_t outlen)
{
	char sig[GK_MAC_HEX_LEN + 1];
	int64_t exp = FIXED_NOW_S + 300;

	T_EQ_INT(verify_data_sign(app->internal_mac, gk_slice_str(key), exp,
	    sig), 0);
	snprintf(out, outlen, "/_data/%s?exp=%lld&sig=%s", key,
	    (long long)exp, sig);
}

static struct hdrs ua_hdrs = { { { "User-Agent", "lifecycle-test/1" },
	{ "Origin", "http://gk.test" } }, 2 };

/* ---- tests ----------------------------------------------------------------- */

/* A grant waits for its record; not a byte streams before the callback. */
static void
test_grant_after_commit(gk_app *app)
{
	char target[512];
	uint8_t buf[64];
	uint64_t len = 0, before;
	size_t got = 0;
	gate_exchange *x;
	int w0 = woken_count();

	T_EQ_INT(put_object(app, "docs/a.txt", "hello, world"), 0);
	data_target(app, "docs/a.txt", target, sizeof(target));
	be_mode(COMMIT_HOLD);
	before = be.inserted;
	x = begin(app, "GET", target, &ua_hdrs);
	T_CHECK(x != NULL);
	if (x == NULL)
		return;
	T_EQ_INT(gate_body(x, NULL, 0), 0);
	T_EQ_INT(gate_decide(x), GATE_WAIT);
	/* decided but not committed: nothing may leave */
	T_EQ_INT(gate_read(x, 0, buf, sizeof(buf), &got), GK_ERR_DENIED);
	T_EQ_INT(got, 0);
	gate_commit(x, wake, NULL);
	be_wait_held();
	T_EQ_INT(woken_count(), w0);	/* no wake-up before the commit */
	T_EQ_INT(gate_read(x, 0, buf, sizeof(buf), &got), GK_ERR_DENIED);
	be_release();
	wait_woken(w0 + 1);
	T_EQ_INT(be.inserted, before + 1);
	gate_settle(x);
	T_EQ_INT(gate_reply_status(x), 200);
	T_CHECK(gate_reply_streams(x, &len));
	T_EQ_INT(len, 12);
	T_EQ_INT(gate_read(x, 0, buf, sizeof(buf), &got), 0);
	T_CHECK(got == 12 && memcmp(buf, "hello, world", 12) == 0);
	/* the whole record: user agent and origin included, fixed clock */
	T_EQ_STR(be.last_ua, "lifecycle-test/1");
	T_EQ_STR(be.last_origin, "http://gk.test");
	T_EQ_INT(be.last_time_us, FIXED_NOW_S * 1000000);
	T_EQ_INT(be.last_status, 200);
	gate_exchange_free(x, 1);
}

/* A commit that fails: 503, no grant, no body. */
static void
test_failed_commit_503(gk_app *app)
{
	char target[512];
	uint8_t buf[64];
	uint64_t len = 0;
	size_t got = 0;
	gate_exchange *x;
	int w0 = woken_count();

	data_target(app, "docs/a.txt", target, sizeof(target));
	be_mode(COMMIT_FAIL);
	x = begin(app, "GET", target, &ua_hdrs);
	if (x == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_decide(x), GATE_WAIT);
	gate_commit(x, wake, NULL);
	wait_woken(w0 + 1);
	gate_settle(x);
	T_EQ_INT(gate_reply_status(x), 503);
	T_CHECK(!gate_reply_streams(x, &len));
	T_EQ_INT(gate_read(x, 0, buf, sizeof(buf), &got), GK_ERR_DENIED);
	gate_exchange_free(x, 1);
}

/* A refusal is answered as such while the audit cannot commit. */
static void
test_refusal_while_audit_down(gk_app *app)
{
	char target[512];
	gate_exchange *x;
	int w0 = woken_count();

	snprintf(target, sizeof(target), "/_data/docs/a.txt?exp=%lld&sig=%064d",
	    FIXED_NOW_S + 300, 0);
	be_mode(COMMIT_FAIL);
	x = begin(app, "GET", target, &ua_hdrs);
	if (x == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_decide(x), GATE_WAIT);	/* refusals are audited too */
	gate_commit(x, wake, NULL);
	wait_woken(w0 + 1);
	gate_settle(x);
	T_EQ_INT(gate_reply_status(x), 403);
	gate_exchange_free(x, 1);
}

/* A multipart upload form for key. */
static void
upload_body(gk_app *app, const char *key, const char *content, gk_buf *body)
{
	char sig[GK_MAC_HEX_LEN + 1];
	gk_buf pol;

	gk_buf_init(&pol, 16384);
	T_EQ_INT(verify_policy_make(app->internal_mac, app->cfg->id,
	    gk_slice_str(key), FIXED_NOW_S + 300, 1 << 20, &pol, sig), 0);
	T_EQ_INT(gk_buf_printf(body,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n%s\r\n"
	    "--XyZ\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\n"
	    "%.*s\r\n"
	    "--XyZ\r\nContent-Disposition: form-data; "
	    "name=\"x-gk-signature\"\r\n\r\n%s\r\n"
	    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
	    "filename=\"f\"\r\nContent-Type: text/plain\r\n\r\n%s\r\n"
	    "--XyZ--\r\n", key, (int)pol.len, pol.data, sig, content), 0);
	gk_buf_release(&pol);
}

static struct hdrs form_hdrs = { { { "Content-Type",
	"multipart/form-data; boundary=XyZ" },
	{ "User-Agent", "lifecycle-test/1" } }, 2 };

static void
run_upload(gk_app *app, const char *key, int mode, int want_status)
{
	gk_buf body;
	gate_exchange *x;
	size_t i;
	int w0 = woken_count();

	gk_buf_init(&body, 1 << 20);
	upload_body(app, key, "uploaded bytes", &body);
	be_mode(mode);
	x = begin(app, "POST", "/_upload", &form_hdrs);
	if (x == NULL) {
		T_CHECK(0);
		gk_buf_release(&body);
		return;
	}
	for (i = 0; i < body.len; i += 7)	/* any chunking */
		T_EQ_INT(gate_body(x, (const uint8_t *)body.data + i,
		    body.len - i < 7 ? body.len - i : 7), 0);
	T_EQ_INT(gate_decide(x), GATE_WAIT);
	T_CHECK(!object_exists(app, key));	/* decided, not committed */
	gate_commit(x, wake, NULL);
	if (mode == COMMIT_HOLD) {
		be_wait_held();
		T_CHECK(!object_exists(app, key));
		T_EQ_INT(woken_count(), w0);
		be_release();
	}
	wait_woken(w0 + 1);
	/* a durable grant's upload is committed (by a gate worker
	 * thread) before the wake; a failed record commits nothing */
	T_EQ_INT(object_exists(app, key), want_status == 201);
	gate_settle(x);
	T_EQ_INT(gate_reply_status(x), want_status);
	T_EQ_INT(object_exists(app, key), want_status == 201);
	gate_exchange_free(x, 1);
	gk_buf_release(&body);
}

static void
test_upload_after_record(gk_app *app)
{
	run_upload(app, "up/held.txt", COMMIT_HOLD, 201);
	run_upload(app, "up/failed.txt", COMMIT_FAIL, 503);
}

/* Answers that grant nothing and are not audited need no commit. */
static void
test_unaudited_ready(gk_app *app)
{
	gate_exchange *x;
	struct hdrs none = { { { NULL, NULL } }, 0 };

	be_mode(COMMIT_FAIL);
	x = begin(app, "OPTIONS", "/_data/x", &none);
	if (x == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_decide(x), GATE_READY);
	T_EQ_INT(gate_reply_status(x), 204);
	gate_exchange_free(x, 1);
	/* an over-long target: a protocol error, answered 414 at once
	 * (before any body), not audited */
	x = begin(app, "GET", NULL, &none);
	if (x != NULL) {
		T_CHECK(gate_answer_now(x));
		T_EQ_INT(gate_decide(x), GATE_READY);
		T_EQ_INT(gate_reply_status(x), 414);
	}
	gate_exchange_free(x, 1);
	/* a head the adapter refused: its status and reason, at once */
	{
		gk_req_in in;
		size_t blen = 0;
		char *body;

		memset(&in, 0, sizeof(in));
		in.method = "POST";
		in.refuse = 431;
		in.refuse_why = "Request Header Fields Too Large";
		in.peer = (const struct sockaddr *)&peer4;
		in.headers.get = h_get;
		in.headers.each = h_each;
		in.headers.ctx = &none;
		x = gate_begin(app, &in);
		if (x != NULL) {
			T_CHECK(gate_answer_now(x));
			T_EQ_INT(gate_decide(x), GATE_READY);
			T_EQ_INT(gate_reply_status(x), 431);
			body = gate_reply_body(x, &blen);
			T_CHECK(body != NULL && memmem(body, blen,
			    "Too Large", 9) != NULL);
			free(body);
		}
		gate_exchange_free(x, 1);
	}
}

/* The fs store explains its own failures (not S3's last status). */
static void
test_store_error_is_the_backends(gk_app *app)
{
	const char *msg = NULL;

	T_CHECK(!object_exists(app, "no/such/key"));
	T_EQ_INT(store_error(&msg), 404);
	T_EQ_STR(msg, gk_err_str(GK_ERR_NOT_FOUND));
}

/*
 * Shutdown: a request still waiting is answered 503 and its record's
 * late commit finds it gone (no use after free); after the start of the
 * shutdown a grant is answered 503 at once, recorded as such.
 */
static void
test_shutdown(gk_app *app)
{
	char target[512];
	gate_exchange *x;
	uint64_t before;
	int w0 = woken_count();

	data_target(app, "docs/a.txt", target, sizeof(target));
	be_mode(COMMIT_HOLD);
	x = begin(app, "GET", target, &ua_hdrs);
	if (x == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_decide(x), GATE_WAIT);
	gate_commit(x, wake, NULL);
	be_wait_held();
	gate_shutdown_fail_waiting(app);
	wait_woken(w0 + 1);
	gate_settle(x);
	T_EQ_INT(gate_reply_status(x), 503);
	gate_exchange_free(x, 1);
	be_release();		/* the commit lands after the exchange */
	/* from now on nothing waits for a commit */
	be_mode(COMMIT_OK);
	before = be.inserted;
	gate_shutdown_begin(app);
	x = begin(app, "GET", target, &ua_hdrs);
	if (x == NULL) {
		T_CHECK(0);
		return;
	}
	T_EQ_INT(gate_decide(x), GATE_WAIT);
	gate_commit(x, wake, NULL);
	T_EQ_INT(woken_count(), w0 + 2);	/* at once */
	gate_settle(x);
	T_EQ_INT(gate_reply_status(x), 503);
	T_CHECK(!gate_reply_streams(x, &(uint64_t){ 0 }));
	gate_exchange_free(x, 1);
	audit_debug_wait_idle(app->audit);
	T_CHECK(be.inserted > before);
	T_EQ_INT(be.last_status, 503);	/* recorded as the 503 it was */
}

int
main(void)
{
	char cmd[128];
	gk_app *app;

	gk_log_set_level(-1);
	gk_debug_clock_fix(FIXED_NOW_S * 1000000);
	audit_debug_backend(&test_backend);
	peer4.sin_family = AF_INET;
	peer4.sin_addr.s_addr = htonl(0x7f000001);
	if (mkdtemp(dir) == NULL)
		return 1;
	if ((app = app_open()) == NULL) {
		T_CHECK(0);
	} else {
		test_grant_after_commit(app);
		test_failed_commit_503(app);
		test_refusal_while_audit_down(app);
		test_upload_after_record(app);
		test_unaudited_ready(app);
		test_store_error_is_the_backends(app);
		test_shutdown(app);		/* last: the gate stops waiting */
		be_mode(COMMIT_OK);
		gate_app_close(app);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		T_CHECK(0);
	return T_DONE();
}
