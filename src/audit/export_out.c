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
#include "audit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define OUT_POLL_US 300000		/* look for new records, */
#define OUT_IDLE_US 2000000		/* backing off to this when idle */
#define ACK_GRACE_US 1000000		/* syslog: connection up this long */
#define ACK_WAIT_US 10000000		/* syslog: bytes acked within */
#define IO_TIMEOUT_S 10
#define OUT_LINE_CAP (256u * 1024)	/* one record's line */
#define OUT_BATCH_CAP (64u * 1024 * 1024)
#define SD_ID "gk@32473"		/* RFC 5612 documentation PEN */

enum { OUT_SYSLOG, OUT_WEBHOOK };

/* A failure is a warning once; while the receiver stays away, debug. */
#define OUT_WARN(s, ...) do {						\
		if ((s)->down)						\
			gk_debug(__VA_ARGS__);				\
		else							\
			gk_warn(__VA_ARGS__);				\
	} while (0)

struct out_sink {
	int kind;
	const char *name;		/* "syslog", "webhook" */
	audit_out_settings settings;	/* a copy; strings borrowed */
	const audit_out_settings *cfg;	/* &settings */
	char instance[160];
	char *state_path;
	char host[256], port[16];	/* syslog */
	int tls;
	char hostname[256];
	/* connection (syslog) */
	int fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	/* positions */
	int64_t acked;			/* persisted */
	int64_t sent;			/* written on this connection */
	int64_t pending;		/* syslog: acked by TCP, in grace */
	int64_t pending_at;
	/* the batch being sent */
	gk_buf batch;
	int64_t batch_last;
	unsigned batch_n;
	char *token;			/* webhook bearer token, or NULL */
	pthread_t thread;
	int started;
	uint64_t delivered, failures;
	int down;			/* failing since the last success */
};

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

/* An SD-PARAM value: '"', '\' and ']' escaped (RFC 5424 6.3.3). */
static int
sd_value(gk_buf *b, const char *v)
{
	int r = 0;

	for (; *v != '\0' && r == 0; v++) {
		if (*v == '"' || *v == '\\' || *v == ']')
			r = gk_buf_append(b, "\\", 1);
		if (r == 0)
			r = gk_buf_append(b, v, 1);
	}
	return r;
}

static int
severity(const char *decision)
{
	if (decision != NULL && strcmp(decision, "allow") == 0)
		return 6;	/* informational */
	if (decision != NULL && strcmp(decision, "deny") == 0)
		return 4;	/* warning */
	return 3;		/* error */
}

/*
 * Appends one record: syslog "LEN <PRI>1 TIME HOST gatekeeper PID audit
 * [SD] JSON" (octet counted), webhook "JSON\n".
 */
static int
format_row(struct out_sink *s, const gk_audit_row *row)
{
	gk_buf msg;
	char ts[40], num[24];
	int r;

	if (s->kind == OUT_WEBHOOK) {
		if ((r = audit_row_json(&s->batch, row)) != 0)
			return r;
		return gk_buf_append(&s->batch, "\n", 1);
	}
	gk_buf_init(&msg, OUT_LINE_CAP);
	gk_time_iso_us(row->rec.time_us, ts, sizeof(ts));
	snprintf(num, sizeof(num), "%" PRId64, row->seq);
	r = gk_buf_printf(&msg, "<%d>1 %s %s gatekeeper %ld audit [" SD_ID
	    " instance=\"", 13 * 8 + severity(row->rec.decision), ts,
	    s->hostname, (long)getpid());
	if (r == 0)
		r = sd_value(&msg, row->instance_id);
	if (r == 0)
		r = gk_buf_printf(&msg, "\" seq=\"%s\" decision=\"", num);
	if (r == 0)
		r = sd_value(&msg, row->rec.decision ? row->rec.decision : "");
	if (r == 0)
		r = gk_buf_printf(&msg, "\" status=\"%d\"] ", row->rec.status);
	if (r == 0)
		r = audit_row_json(&msg, row);
	if (r == 0)
		r = gk_buf_printf(&s->batch, "%zu ", msg.len);
	if (r == 0)
		r = gk_buf_append(&s->batch, msg.data, msg.len);
	gk_buf_release(&msg);
	return r;
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

/* ---- syslog over TCP / TLS ------------------------------------------- */

static void
conn_close(struct out_sink *s)
{
	if (s->ssl != NULL) {
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->pending = 0;
}

static int
conn_open(struct out_sink *s)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(s->host, s->port, &hints, &res)) != 0) {
		OUT_WARN(s, "audit out syslog: cannot resolve %s: %s",
		    s->host, gai_strerror(rc));
		return GK_ERR_UNAVAILABLE;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		OUT_WARN(s, "audit out syslog: cannot connect to %s:%s: %s",
		    s->host, s->port, strerror(errno));
		return GK_ERR_UNAVAILABLE;
	}
	s->fd = fd;
	if (!s->tls)
		return 0;
	if ((s->ssl = SSL_new(s->ssl_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, fd) != 1 ||
	    SSL_set_tlsext_host_name(s->ssl, s->host) != 1 ||
	    SSL_set1_host(s->ssl, s->host) != 1 ||
	    SSL_connect(s->ssl) != 1) {
		unsigned long e = ERR_get_error();

		OUT_WARN(s, "audit out syslog: TLS with %s:%s failed: %s",
		    s->host, s->port, e ? ERR_reason_error_string(e) :
		    "handshake");
		ERR_clear_error();
		conn_close(s);
		return GK_ERR_UNAVAILABLE;
	}
	return 0;
}

/* 1 while the peer has not closed or reset the connection. */
static int
conn_alive(const struct out_sink *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLIN | POLLRDHUP };
	char c;
	ssize_t n;

	if (s->fd < 0)
		return 0;
	if (poll(&p, 1, 0) < 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
		return 0;
	if ((p.revents & POLLIN) && !s->tls) {
		n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN &&
		    errno != EWOULDBLOCK))
			return 0;
	}
	return 1;
}

static int
conn_write(struct out_sink *s, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if (s->ssl != NULL) {
			int w = SSL_write(s->ssl, p, len > INT32_MAX ?
			    INT32_MAX : (int)len);

			if (w <= 0) {
				ERR_clear_error();
				return GK_ERR_UNAVAILABLE;
			}
			n = w;
		} else {
			n = send(s->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return GK_ERR_UNAVAILABLE;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Waits until the peer's TCP stack acknowledged every byte written. */
static int
conn_drained(struct out_sink *s)
{
	int64_t until = gk_mono_us() + ACK_WAIT_US;
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int outq;

	for (;;) {
		if (ioctl(s->fd, SIOCOUTQ, &outq) != 0)
			return GK_ERR_UNAVAILABLE;
		if (outq == 0)
			return conn_alive(s) ? 0 : GK_ERR_UNAVAILABLE;
		if (!conn_alive(s) || gk_mono_us() > until)
			return GK_ERR_UNAVAILABLE;
		nanosleep(&ts, NULL);
	}
}

static int
syslog_send(struct out_sink *s)
{
	int r;

	if (s->fd < 0 && (r = conn_open(s)) != 0)
		return r;
	if ((r = conn_write(s, s->batch.data, s->batch.len)) != 0 ||
	    (r = conn_drained(s)) != 0) {
		OUT_WARN(s, "audit out syslog: %s:%s dropped the connection; "
		    "resending from seq %" PRId64, s->host, s->port,
		    s->acked + 1);
		return r;
	}
	/* one batch in its grace at a time; later ones wait their turn (the
	 * acknowledged position lags, never leads) */
	if (s->pending <= s->acked) {
		s->pending = s->batch_last;
		s->pending_at = gk_mono_us();
	}
	return 0;
}

/* ---- webhook ---------------------------------------------------------- */

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int
webhook_send(struct out_sink *s)
{
	struct curl_slist *h = NULL;
	char auth[600];
	long code = 0;
	CURLcode rc;
	CURL *c;
	int r = GK_ERR_UNAVAILABLE;

	if ((c = curl_easy_init()) == NULL)
		return GK_ERR_NOMEM;
	h = curl_slist_append(h, "Content-Type: application/x-ndjson");
	if (s->token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
		    s->token);
		h = curl_slist_append(h, auth);
		gk_wipe(auth, sizeof(auth));
	}
	curl_easy_setopt(c, CURLOPT_URL, s->cfg->out_webhook);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->batch.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)s->batch.len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)IO_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 6L * IO_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->cfg->out_webhook_ca_file[0] != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO,
		    s->cfg->out_webhook_ca_file);
	if (s->cfg->out_webhook_cert_file[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_SSLCERT,
		    s->cfg->out_webhook_cert_file);
		curl_easy_setopt(c, CURLOPT_SSLKEY,
		    s->cfg->out_webhook_key_file);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK && code >= 200 && code < 300)
		r = 0;
	else if (rc != CURLE_OK)
		OUT_WARN(s, "audit out webhook: %s", curl_easy_strerror(rc));
	else
		OUT_WARN(s, "audit out webhook: answered %ld", code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
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

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(us / 1000000);
	ts.tv_nsec += (long)(us % 1000000) * 1000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
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
		if (conn_alive(s))
			save_pos(s, s->pending);
		else {
			conn_close(s);
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
			    s->pending <= s->acked && !conn_alive(s))
				conn_close(s);
			/* the grace of a pending batch ends on time */
			nap(o, s->pending > s->acked ? OUT_POLL_US : idle);
			idle = idle * 2 < OUT_IDLE_US ? idle * 2 : OUT_IDLE_US;
			continue;
		}
		idle = OUT_POLL_US;
		r = s->kind == OUT_SYSLOG ? syslog_send(s) : webhook_send(s);
		if (r != 0) {
			s->failures++;
			s->down = 1;
			conn_close(s);
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
	conn_close(s);
	return NULL;
}

/* ---- setup ------------------------------------------------------------- */

static void
sink_free(struct out_sink *s)
{
	if (s == NULL)
		return;
	conn_close(s);
	SSL_CTX_free(s->ssl_ctx);
	free(s->state_path);
	if (s->token != NULL) {
		gk_wipe(s->token, strlen(s->token));
		free(s->token);
	}
	gk_buf_release(&s->batch);
	free(s);
}

/* "tcp://host:port", "tls://[v6]:port" into host and port. */
static int
parse_hostport(const char *url, struct out_sink *s)
{
	const char *h = url + 6, *colon, *end;
	size_t hl;

	if (*h == '[') {
		end = strchr(h, ']');
		if (end == NULL || end[1] != ':')
			return GK_ERR_CONFIG;
		h++;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL)
			return GK_ERR_CONFIG;
		hl = (size_t)(colon - h);
	}
	if (hl == 0 || hl >= sizeof(s->host) || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= sizeof(s->port) ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return GK_ERR_CONFIG;
	memcpy(s->host, h, hl);
	s->host[hl] = '\0';
	snprintf(s->port, sizeof(s->port), "%s", colon + 1);
	return 0;
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
		if (parse_hostport(cfg->out_syslog, s) != 0) {
			gk_error("audit out: bad [audit_out] syslog '%s' "
			    "(tcp://host:port or tls://host:port)",
			    cfg->out_syslog);
			goto out;
		}
		s->tls = strncmp(cfg->out_syslog, "tls://", 6) == 0;
		if (s->tls) {
			if ((s->ssl_ctx = SSL_CTX_new(TLS_client_method())) ==
			    NULL)
				goto out;
			SSL_CTX_set_min_proto_version(s->ssl_ctx,
			    TLS1_2_VERSION);
			SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER, NULL);
			if ((cfg->out_syslog_ca_file[0] ?
			    SSL_CTX_load_verify_locations(s->ssl_ctx,
			    cfg->out_syslog_ca_file, NULL) :
			    SSL_CTX_set_default_verify_paths(s->ssl_ctx)) !=
			    1) {
				gk_error("audit out syslog: cannot load CA "
				    "certificates %s", cfg->out_syslog_ca_file);
				goto out;
			}
			if (cfg->out_syslog_cert_file[0] != '\0' &&
			    (SSL_CTX_use_certificate_chain_file(s->ssl_ctx,
			    cfg->out_syslog_cert_file) != 1 ||
			    SSL_CTX_use_PrivateKey_file(s->ssl_ctx,
			    cfg->out_syslog_key_file, SSL_FILETYPE_PEM) != 1 ||
			    SSL_CTX_check_private_key(s->ssl_ctx) != 1)) {
				gk_error("audit out syslog: cannot use the client "
				    "certificate %s with the key %s",
				    cfg->out_syslog_cert_file,
				    cfg->out_syslog_key_file);
				ERR_clear_error();
				goto out;
			}
		}
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
