/*
 * out_int.h - the audit out folder's inside: one output (syslog or
 * webhook) as the delivery thread in export_out.c sees it, and the two
 * transports that send its batches (out_syslog.c, out_webhook.c).
 * Nothing outside src/audit includes this; audit.h is the interface.
 */
#ifndef GK_AUDIT_OUT_INT_H
#define GK_AUDIT_OUT_INT_H

#include "audit.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>

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

/* syslog (out_syslog.c) */

/* Host, port and, for tls://, the TLS context with the CA and the client
 * certificate of cfg. 0 or GK_ERR_CONFIG (logged). */
int out_syslog_setup(struct out_sink *s, const audit_out_settings *cfg);
/* Appends one record to s->batch as an octet-counted RFC 5424 message. */
int out_syslog_format(struct out_sink *s, const gk_audit_row *row);
/* Writes s->batch and waits until the receiver's TCP stack took it all. */
int out_syslog_send(struct out_sink *s);
/* 1 while the receiver has not closed or reset the connection. */
int out_syslog_alive(const struct out_sink *s);
void out_syslog_close(struct out_sink *s);

/* webhook (out_webhook.c): POSTs s->batch; 0 on a 2xx answer. */
int out_webhook_send(struct out_sink *s);

#endif
