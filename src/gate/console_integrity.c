/*
 * console_integrity.c - the console's Integrity tab.
 *
 *   GET  /admin/api/integrity  the chain (instance, audit store), the last
 *                              signed checkpoint, the last verification
 *                              and whether one is running
 *   POST /admin/api/verify     starts what 'gatekeeper audit verify' runs,
 *                              on a thread of its own: answers 202 with
 *                              the job's number at once (a request thread
 *                              never waits for a whole chain), or the
 *                              running job's number when one runs; the
 *                              page polls /admin/api/integrity until
 *                              last_verify carries that number.
 *
 * The start is audited (operation "verify") like the console's other
 * actions, and the outcome is a record of its own (operation
 * "verify_result": records, problems, OK or NOT OK).
 */
#include "console_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBLEMS_MAX 50

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

void
console_integrity(gk_app *app, gk_reply *rep)
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
		    app->cfg->audit_target)));
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"last_checkpoint\":");
	if (r == 0)
		r = last_checkpoint(app, &rep->body);
	pthread_mutex_lock(&c->lock);
	if (r == 0)
		r = gk_buf_printf(&rep->body, ",\"verify_running\":%s,"
		    "\"verify_job\":%" PRIu64 ",\"last_verify\":",
		    c->verify_running ? "true" : "false", c->verify_job);
	if (r == 0)
		r = gk_buf_append_str(&rep->body, c->last_verify ?
		    c->last_verify : "null");
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		r = gk_buf_append_str(&rep->body, ",\"error\":false}");
	if (r != 0)
		return console_oom(rep);
	console_ok_json(rep, 0);
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

struct verify_job {
	gk_app *app;
	uint64_t job;
	char at[40];
};

/* The outcome's own audit record. */
static void
audit_outcome(gk_app *app, const gk_audit_verify_stats *st, int failed)
{
	gk_audit_record rec;
	char msg[200];

	if (failed)
		snprintf(msg, sizeof(msg), "audit verify from the console: "
		    "the audit log could not be read");
	else
		snprintf(msg, sizeof(msg), "audit verify from the console: %"
		    PRIu64 " records, %" PRIu64 " problems, %s", st->records,
		    st->problems, st->problems == 0 ? "OK" : "NOT OK");
	memset(&rec, 0, sizeof(rec));
	rec.time_us = gk_now_us();
	rec.protocol = "admin";
	rec.operation = "verify_result";
	rec.path = "/admin/api/verify";
	rec.status = failed ? 503 : 200;
	rec.decision = failed ? "error" : "allow";
	rec.message = msg;
	if (audit_submit(app->audit, &rec, NULL, NULL) != 0)
		gk_error("console verify: the outcome's audit record was not "
		    "written");
}

static void *
verify_main(void *arg)
{
	struct verify_job *j = arg;
	gk_app *app = j->app;
	gate_console *c = app->console;
	gk_audit_verify_stats st;
	struct problems pr;
	uint8_t pub[32];
	char err[512];
	gk_buf res;
	int64_t t0 = gk_mono_us();
	int r, failed = 0;

	gk_buf_init(&res, GK_CAP_JSON_REPLY / 2);
	memset(&st, 0, sizeof(st));
	r = gk_buf_printf(&res, "{\"job\":%" PRIu64 ",\"at\":\"%s\","
	    "\"problems\":[", j->job, j->at);
	pr.b = &res;
	pr.n = 0;
	err[0] = '\0';
	if (r == 0 && audit_read_pubkey(app->cfg->audit_pub_file, pub) != 0) {
		snprintf(err, sizeof(err), "cannot read the audit public key");
		r = GK_ERR_CONFIG;
	} else if (r == 0) {
		r = audit_verify(app->cfg->audit_target, pub, 1,
		    app->cfg->audit_checkpoint_file, 0, on_problem, &pr, &st,
		    err, sizeof(err));
	}
	if (r != 0) {
		gk_error("console verify: %s", err);
		failed = 1;
		gk_buf_reset(&res);
		r = gk_buf_printf(&res, "{\"job\":%" PRIu64 ",\"at\":\"%s\","
		    "\"problems\":[\"the audit log could not be read\"],"
		    "\"ok\":false,\"failed\":true,\"records\":0,"
		    "\"checkpoints\":0,\"instances\":0,\"problem_count\":1,"
		    "\"took_ms\":%lld}", j->job, j->at,
		    (long long)((gk_mono_us() - t0) / 1000));
	} else {
		r = gk_buf_printf(&res, "],\"ok\":%s,\"records\":%" PRIu64
		    ",\"checkpoints\":%" PRIu64 ",\"instances\":%" PRIu64
		    ",\"problem_count\":%" PRIu64 ",\"took_ms\":%lld}",
		    st.problems == 0 ? "true" : "false", st.records,
		    st.checkpoints, st.instances, st.problems,
		    (long long)((gk_mono_us() - t0) / 1000));
	}
	gk_info("console verify (job %" PRIu64 "): %" PRIu64 " records, %s",
	    j->job, st.records, failed ? "audit log unavailable" :
	    st.problems == 0 ? "OK" : "NOT OK");
	audit_outcome(app, &st, failed);
	pthread_mutex_lock(&c->lock);
	if (r == 0) {
		free(c->last_verify);
		c->last_verify = gk_buf_detach(&res, NULL);
	}
	c->verify_running = 0;
	pthread_mutex_unlock(&c->lock);
	gk_buf_release(&res);
	free(j);
	return NULL;
}

void
console_verify(gk_app *app, gk_reply *rep)
{
	gate_console *c = app->console;
	struct verify_job *j;
	uint64_t job;
	int started = 0, r;

	pthread_mutex_lock(&c->lock);
	if (!c->verify_running) {
		if (c->verify_started) {	/* the last one has ended */
			pthread_join(c->verify_thread, NULL);
			c->verify_started = 0;
		}
		if ((j = calloc(1, sizeof(*j))) == NULL) {
			pthread_mutex_unlock(&c->lock);
			return console_oom(rep);
		}
		j->app = app;
		j->job = c->verify_job + 1;
		gk_time_iso_us(gk_now_us(), j->at, sizeof(j->at));
		if (pthread_create(&c->verify_thread, NULL, verify_main, j) !=
		    0) {
			pthread_mutex_unlock(&c->lock);
			free(j);
			gate_reply_error(rep, 503, "error",
			    "Service Unavailable: cannot start the check");
			return;
		}
		c->verify_started = 1;
		c->verify_running = 1;
		c->verify_job = j->job;
		memcpy(c->verify_since, j->at, sizeof(j->at));
		started = 1;
	}
	job = c->verify_job;
	r = gk_buf_printf(&rep->body, "{\"verify\":{\"job\":%" PRIu64
	    ",\"running\":true,\"since\":\"%s\"},\"error\":false}", job,
	    c->verify_since);
	pthread_mutex_unlock(&c->lock);
	if (r != 0)
		return console_oom(rep);
	gate_reply_message(rep, started ? "audit verify started" :
	    "audit verify already running");
	console_ok_json(rep, 1);
	rep->status = 202;
}

void
console_verify_join(gate_console *c)
{
	int started;

	pthread_mutex_lock(&c->lock);
	started = c->verify_started;
	c->verify_started = 0;
	pthread_mutex_unlock(&c->lock);
	if (started)
		pthread_join(c->verify_thread, NULL);
}
