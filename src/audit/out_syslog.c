/*
 * out_syslog.c - audit out to syslog: RFC 5424 messages over TCP
 * (tcp://) or TLS (tls://), framed by octet counting (RFC 6587 3.4.1).
 * Over TLS the receiver's certificate and name are always verified and
 * the client certificate, when configured, is shown.
 *
 * Syslog has no answers: a batch counts as sent when the receiver's TCP
 * stack acknowledged every byte (SIOCOUTQ drained); the delivery thread
 * then waits ACK_GRACE_US with the connection up before it moves its
 * position (export_out.c).
 */
#include "out_int.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
 * Appends one record: "LEN <PRI>1 TIME HOST gatekeeper PID audit [SD] JSON"
 * (octet counted, RFC 6587 3.4.1).
 */
int
out_syslog_format(struct out_sink *s, const gk_audit_row *row)
{
	gk_buf msg;
	char ts[40], num[24];
	int r;

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

void
out_syslog_close(struct out_sink *s)
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
		out_syslog_close(s);
		return GK_ERR_UNAVAILABLE;
	}
	return 0;
}

int
out_syslog_alive(const struct out_sink *s)
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
			return out_syslog_alive(s) ? 0 : GK_ERR_UNAVAILABLE;
		if (!out_syslog_alive(s) || gk_mono_us() > until)
			return GK_ERR_UNAVAILABLE;
		nanosleep(&ts, NULL);
	}
}

int
out_syslog_send(struct out_sink *s)
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

int
out_syslog_setup(struct out_sink *s, const audit_out_settings *cfg)
{
	if (parse_hostport(cfg->out_syslog, s) != 0) {
		gk_error("audit out: bad [audit_out] syslog '%s' "
		    "(tcp://host:port or tls://host:port)", cfg->out_syslog);
		return GK_ERR_CONFIG;
	}
	s->tls = strncmp(cfg->out_syslog, "tls://", 6) == 0;
	if (s->tls) {
		if ((s->ssl_ctx = SSL_CTX_new(TLS_client_method())) ==
		    NULL)
			return GK_ERR_CONFIG;
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
			return GK_ERR_CONFIG;
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
			return GK_ERR_CONFIG;
		}
	}
	return 0;
}
