/*
 * export_out.c - audit out: every committed audit record of this
 * instance, in chain order (seq), streamed to the customer's SIEM:
 *
 *   syslog   RFC 5424 messages over TCP (tcp://) or TLS (tls://), framed
 *            by octet counting (RFC 6587 3.4.1)
 *   webhook  POST of JSON lines (application/x-ndjson), one per record
 *
 * Over TLS (tls://, https://) the receiver's certificate and name are
 * always verified (the configured CA file or the system's), and the
 * gatekeeper shows a client certificate when one is configured, for
 * receivers that accept only known senders (rsyslog's x509 auth modes).
 *
 * Each output has its own thread, which reads committed records from the
 * audit store (never the request path's queue, so a slow or dead receiver
 * never delays a request) and its own position: the last acknowledged
 * seq, kept in <state_dir>/audit-out-<output>.seq (written atomically).
 * After a restart or an outage it resumes there, so delivery is at least
 * once and in order; a receiver may see a record twice, never a gap.
 *
 * Acknowledged means: webhook, a 2xx answer; syslog (which has no
 * answers), the receiver's TCP stack acknowledged every byte (SIOCOUTQ
 * drained) and the connection was still up ACK_GRACE_US later, so a
 * receiver that dies with unread data in its socket gets it again.
 */
#include "out_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct audit_out {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	struct out_sink *sinks[2];
	size_t n;
};

/* ---- state file ------------------------------------------------------- */

static int64_t
load_pos(const struct out_sink *s)
{
	gk_buf b;
	uint64_t v = 0;
	size_t n;

	gk_buf_init(&b, 64);
	if (gk_file_read(s->state_path, 64, &b) == 0) {
		n = b.len;
		while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == ' '))
			n--;
		if (gk_parse_u64(gk_slice_of(b.data, n), INT64_MAX, &v) != 0) {
			gk_warn("audit out %s: %s holds no sequence number; "
			    "starting at the first record", s->name,
			    s->state_path);
			v = 0;
		}
	}
	gk_buf_release(&b);
	return (int64_t)v;
}

static void
save_pos(struct out_sink *s, int64_t seq)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%" PRId64 "\n", seq);

	if (gk_file_write_atomic(s->state_path, line, (size_t)n, 0600) != 0) {
		gk_error("audit out %s: cannot write %s: %s", s->name,
		    s->state_path, strerror(errno));
		return;
	}
	s->acked = seq;
}

/* ---- formatting ------------------------------------------------------- */

/* Appends one record: syslog as out_syslog_format, webhook "JSON\n". */
static int
format_row(struct out_sink *s, const gk_audit_row *row)
{
	int r;

	if (s->kind == OUT_WEBHOOK) {
		if ((r = audit_row_json(&s->batch, row)) != 0)
			return r;
		return gk_buf_append(&s->batch, "\n", 1);
	}
	return out_syslog_format(s, row);
}

static int
on_row(void *arg, const gk_audit_row *row)
{
	struct out_sink *s = arg;
	size_t mark = s->batch.len;

	if (!row->chained || row->seq <= s->batch_last)
		return 0;
	if (format_row(s, row) != 0) {
		/* a record too big for one message is announced, not skipped
		 * silently: the receiver sees its seq and the gap's reason */
		s->batch.len = mark;
		if ((s->kind == OUT_WEBHOOK ? gk_buf_printf(&s->batch,
		    "{\"seq\":%" PRId64 ",\"error\":\"record too large\"}\n",
		    row->seq) : gk_buf_printf(&s->batch, "%d <%d>1 - - "
		    "gatekeeper - audit - record %020" PRId64 " too large",
		    47, 13 * 8 + 3, row->seq)) != 0)
			return GK_ERR_TOO_LARGE;
	}
	s->batch_last = row->seq;
	s->batch_n++;
	return 0;
}

/* The next records after seq into s->batch. 0 or an error (logged). */
static int
fetch(struct out_sink *s, int64_t after)
{
	gk_audit_query q;
	char err[256];
	int r;

	memset(&q, 0, sizeof(q));
	q.instance_id = s->instance;
	q.after_seq = after;
	q.limit = s->cfg->out_batch;
	gk_buf_reset(&s->batch);
	s->batch_last = after;
	s->batch_n = 0;
	r = audit_search(s->cfg->target, &q, on_row, s, err,
	    sizeof(err));
	if (r != 0)
		gk_warn("audit out %s: cannot read the audit log: %s",
		    s->name, err[0] ? err : gk_err_str(r));
	return r;
}

/* ---- the thread -------------------------------------------------------- */

struct out_arg {
	audit_out *o;
	struct out_sink *s;
};

/* Sleeps up to us unless stopping; returns 1 when stopping. */
static int
nap(audit_out *o, int64_t us)
{
	struct timespec ts;
	int stop;

	gk_deadline_ts(CLOCK_REALTIME, us, &ts);
	pthread_mutex_lock(&o->lock);
	if (!o->stopping)
		pthread_cond_timedwait(&o->wake, &o->lock, &ts);
	stop = o->stopping;
	pthread_mutex_unlock(&o->lock);
	return stop;
}

static int
stopping(audit_out *o)
{
	int stop;

	pthread_mutex_lock(&o->lock);
	stop = o->stopping;
	pthread_mutex_unlock(&o->lock);
	return stop;
}

static void
settle(struct out_sink *s)
{
	if (s->pending > s->acked &&
	    gk_mono_us() - s->pending_at >= ACK_GRACE_US) {
		if (out_syslog_alive(s))
			save_pos(s, s->pending);
		else {
			out_syslog_close(s);
			s->sent = s->acked;
		}
	}
}

static void *
out_main(void *arg)
{
	audit_out *o = ((struct out_arg *)arg)->o;
	struct out_sink *s = ((struct out_arg *)arg)->s;
	int64_t idle = OUT_POLL_US;
	int r;

	free(arg);
	s->acked = s->sent = load_pos(s);
	gk_info("audit out %s: resuming after seq %" PRId64, s->name,
	    s->acked);
	while (!stopping(o)) {
		if (s->kind == OUT_SYSLOG)
			settle(s);
		if (fetch(s, s->sent) != 0) {
			nap(o, (int64_t)s->cfg->out_retry_seconds * 1000000);
			continue;
		}
		if (s->batch_n == 0) {
			if (s->kind == OUT_SYSLOG && s->fd >= 0 &&
			    s->pending <= s->acked && !out_syslog_alive(s))
				out_syslog_close(s);
			/* the grace of a pending batch ends on time */
			nap(o, s->pending > s->acked ? OUT_POLL_US : idle);
			idle = idle * 2 < OUT_IDLE_US ? idle * 2 : OUT_IDLE_US;
			continue;
		}
		idle = OUT_POLL_US;
		r = s->kind == OUT_SYSLOG ? out_syslog_send(s) : out_webhook_send(s);
		if (r != 0) {
			s->failures++;
			s->down = 1;
			out_syslog_close(s);
			s->sent = s->acked;
			nap(o, (int64_t)s->cfg->out_retry_seconds * 1000000);
			continue;
		}
		if (s->down)
			gk_info("audit out %s: delivering again (up to seq %"
			    PRId64 ")", s->name, s->batch_last);
		s->down = 0;
		s->delivered += s->batch_n;
		s->sent = s->batch_last;
		if (s->kind == OUT_WEBHOOK)
			save_pos(s, s->batch_last);
	}
	if (s->kind == OUT_SYSLOG)
		settle(s);
	out_syslog_close(s);
	return NULL;
}

/* ---- setup ------------------------------------------------------------- */

static void
sink_free(struct out_sink *s)
{
	if (s == NULL)
		return;
	out_syslog_close(s);
	SSL_CTX_free(s->ssl_ctx);
	free(s->state_path);
	if (s->token != NULL) {
		gk_wipe(s->token, strlen(s->token));
		free(s->token);
	}
	gk_buf_release(&s->batch);
	free(s);
}

static int
read_token(const char *path, char **out)
{
	struct stat st;
	gk_buf b;
	size_t n;

	if (stat(path, &st) != 0 || (st.st_mode & 077) != 0) {
		gk_error("audit out webhook: %s must exist with mode 0600",
		    path);
		return GK_ERR_CONFIG;
	}
	gk_buf_init(&b, 512);
	if (gk_file_read(path, 512, &b) != 0 || b.len == 0) {
		gk_buf_release(&b);
		gk_error("audit out webhook: cannot read %s", path);
		return GK_ERR_CONFIG;
	}
	n = b.len;
	while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' ||
	    b.data[n - 1] == ' '))
		n--;
	if (n == 0 || memchr(b.data, '\n', n) != NULL ||
	    memchr(b.data, '\r', n) != NULL) {
		gk_wipe(b.data, b.len);
		gk_buf_release(&b);
		gk_error("audit out webhook: %s: one line of token expected",
		    path);
		return GK_ERR_CONFIG;
	}
	b.data[n] = '\0';
	*out = gk_buf_detach(&b, NULL);
	return 0;
}

static int
sink_new(const audit_out_settings *cfg, const char *instance, int kind,
    struct out_sink **out)
{
	struct out_sink *s;
	const char *dir = cfg->out_state_dir[0] ? cfg->out_state_dir :
	    cfg->data_dir;
	gk_buf path;
	int r = GK_ERR_NOMEM;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return GK_ERR_NOMEM;
	s->kind = kind;
	s->name = kind == OUT_SYSLOG ? "syslog" : "webhook";
	s->settings = *cfg;
	s->cfg = &s->settings;
	s->fd = -1;
	snprintf(s->instance, sizeof(s->instance), "%s", instance);
	gk_buf_init(&s->batch, OUT_BATCH_CAP);
	gk_buf_init(&path, 8192);
	if (gk_buf_printf(&path, "%s/audit-out-%s.seq", dir, s->name) != 0)
		goto out;
	s->state_path = gk_buf_detach(&path, NULL);
	if (gethostname(s->hostname, sizeof(s->hostname) - 1) != 0 ||
	    s->hostname[0] == '\0')
		snprintf(s->hostname, sizeof(s->hostname), "-");
	s->hostname[strcspn(s->hostname, " \t\r\n")] = '\0';
	r = GK_ERR_CONFIG;
	if (kind == OUT_SYSLOG) {
		if (out_syslog_setup(s, cfg) != 0)
			goto out;
	} else {
		if (cfg->out_webhook_token_file[0] != '\0' &&
		    read_token(cfg->out_webhook_token_file, &s->token) != 0)
			goto out;
		if (cfg->out_webhook_cert_file[0] != '\0' &&
		    (access(cfg->out_webhook_cert_file, R_OK) != 0 ||
		    access(cfg->out_webhook_key_file, R_OK) != 0)) {
			gk_error("audit out webhook: cannot read the client "
			    "certificate %s or its key %s",
			    cfg->out_webhook_cert_file,
			    cfg->out_webhook_key_file);
			goto out;
		}
	}
	*out = s;
	s = NULL; /* transferred */
	r = 0;
out:
	gk_buf_release(&path);
	sink_free(s);
	return r;
}

int
audit_out_start(const audit_out_settings *cfg, const char *instance, audit_out **out)
{
	audit_out *o;
	struct out_arg *a;
	size_t i;
	int r = GK_ERR_NOMEM;

	*out = NULL;
	if (cfg->out_syslog[0] == '\0' && cfg->out_webhook[0] == '\0')
		return 0;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return GK_ERR_NOMEM;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->wake, NULL);
	if (cfg->out_syslog[0] != '\0' &&
	    (r = sink_new(cfg, instance, OUT_SYSLOG, &o->sinks[o->n++])) != 0)
		goto fail;
	if (cfg->out_webhook[0] != '\0') {
		curl_global_init(CURL_GLOBAL_DEFAULT);	/* before threads */
		if ((r = sink_new(cfg, instance, OUT_WEBHOOK,
		    &o->sinks[o->n++])) != 0)
			goto fail;
	}
	for (i = 0; i < o->n; i++) {
		if ((a = malloc(sizeof(*a))) == NULL) {
			r = GK_ERR_NOMEM;
			goto fail;
		}
		a->o = o;
		a->s = o->sinks[i];
		if (pthread_create(&o->sinks[i]->thread, NULL, out_main, a)) {
			free(a);
			r = GK_ERR_INTERNAL;
			goto fail;
		}
		o->sinks[i]->started = 1;
	}
	*out = o;
	return 0;
fail:
	audit_out_stop(o);
	return r;
}

void
audit_out_stop(audit_out *o)
{
	size_t i;

	if (o == NULL)
		return;
	pthread_mutex_lock(&o->lock);
	o->stopping = 1;
	pthread_cond_broadcast(&o->wake);
	pthread_mutex_unlock(&o->lock);
	for (i = 0; i < o->n; i++) {
		if (o->sinks[i] == NULL)
			continue;
		if (o->sinks[i]->started)
			pthread_join(o->sinks[i]->thread, NULL);
		sink_free(o->sinks[i]);
	}
	pthread_cond_destroy(&o->wake);
	pthread_mutex_destroy(&o->lock);
	free(o);
}
