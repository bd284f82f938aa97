/*
 * guard.c - the slow-client watchdog: bounds the time a connection may
 * take to deliver a complete request head, and the rate of a request
 * body, separately from libmicrohttpd's idle timeout (which every byte
 * resets, so a client dripping one byte at a time would live forever).
 *
 * Each connection has an entry in one list, kept under one mutex. A
 * thread looks at the list four times a second and shuts down
 * (shutdown(2), read and write) the socket of a connection past its
 * deadline; libmicrohttpd then sees the end of the stream and closes it
 * as it would any. An entry is removed, under the same mutex, in the
 * connection-closed notification, which libmicrohttpd calls before it
 * closes the socket, so the watchdog never touches a reused descriptor.
 * An entry's phase and clock have a mutex of their own: the HTTP threads
 * change them at every request without contending for the list's.
 *
 * Bytes received come from TCP_INFO: a body must keep arriving at the
 * minimum rate (tcpi_bytes_received), and the head clock of a kept-alive
 * connection starts when data arrives after its previous request ended
 * (tcpi_last_data_recv, looked at by the watchdog: the HTTP threads make
 * no system call for it). Its clock ticks in jiffies, so data within
 * RECV_SLACK_MS of the end counts as the old request's: a partial head
 * sent right behind a request (or pipelined with it) starts the clock
 * only with its next byte, or is closed by the idle timeout. On a socket
 * without TCP_INFO the head clock starts when the previous request ends.
 */
#include "http_int.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define TICK_MS 250
/* the kernel's time of the last data received is in jiffies (HZ 100 at
 * the least): data within this of a request's end may be its own */
#define RECV_SLACK_MS 20

enum { PH_HEAD, PH_IDLE, PH_BODY, PH_BUSY };

struct http_conn {
	struct http_conn *prev, *next;	/* under the guard's mutex */
	pthread_mutex_t mu;	/* the fields below */
	int fd;
	int phase;
	int killed;
	int64_t since_ms;	/* phase start */
	int64_t drained_ms;	/* body: the peer's side closed and all it
				 * sent read, seen first then (0: not) */
	uint64_t base;		/* bytes received at phase start */
};

struct http_guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop;
	struct http_conn *head;
	int64_t head_ms, body_ms;
	uint64_t min_rate;
	_Atomic uint64_t closed;
};

static int64_t
mono_ms(void)
{
	return gk_mono_us() / 1000;
}

/* Bytes received on fd so far; 0 with *ok = 0 if unknown. *half is set
 * when the peer has closed its side, *last_ms to when data last arrived
 * (mono_ms clock, give or take a jiffy); either may be NULL. */
static uint64_t
received_state(int fd, int *ok, int *half, int64_t *last_ms)
{
	http_tcp_state t;

	if (http_tcp_state_of(fd, &t) != 0) {
		*ok = 0;
		return 0;
	}
	*ok = 1;
	if (half != NULL)
		*half = t.state == HTTP_TCP_CLOSE_WAIT;
	if (last_ms != NULL)
		*last_ms = t.last_recv_ms;
	return t.received;
}

/* 1 if c is past its deadline (mutex held). */
static int
overdue(const http_guard *g, struct http_conn *c, int64_t now)
{
	uint64_t got, allowance;
	int64_t last = 0;
	int ok, half = 0;

	switch (c->phase) {
	case PH_HEAD:
		/* bytes waiting unread mean the server, not the client, is
		 * behind (its thread held by another request's work): the
		 * client has sent, so the clock does not count against it */
		return g->head_ms > 0 && now - c->since_ms > g->head_ms &&
		    http_tcp_unread(c->fd) == 0;
	case PH_IDLE:
		(void)received_state(c->fd, &ok, &half, &last);
		if (!ok) {
			/* no receive times: the clock runs from the end of
			 * the last request */
			c->phase = PH_HEAD;
			return 0;
		}
		if (last > c->since_ms + RECV_SLACK_MS) {
			/* data after the last request: the next one began */
			c->phase = PH_HEAD;
			c->since_ms = now;
			return 0;
		}
		/* the client closed its side after its last request and
		 * nothing of a next one came for a tick (one already
		 * received would be under way by then): no request can
		 * follow (libmicrohttpd would wait for the idle timeout) */
		return ok && half && now - c->since_ms > TICK_MS;
	case PH_BODY:
		got = received_state(c->fd, &ok, &half, NULL);
		if (!ok)
			return 0;
		/* the client closed its side mid-body (a cancelled browser
		 * upload) and everything it sent has been read for a tick:
		 * the body can never complete, and libmicrohttpd, which does
		 * not notice a half-close there, would keep the request
		 * until its idle timeout (and a shutdown would wait for it) */
		if (half && http_tcp_unread(c->fd) == 0) {
			if (c->drained_ms == 0)
				c->drained_ms = now;
			else if (now - c->drained_ms >= TICK_MS)
				return 1;
		} else {
			c->drained_ms = 0;
		}
		if (g->min_rate == 0)
			return 0;
		/* body_timeout, plus one second per min_rate bytes */
		allowance = (got > c->base ? got - c->base : 0) / g->min_rate;
		if (allowance > (uint64_t)INT64_MAX / 1000)
			return 0;
		/* unread bytes: the server is behind, as for the head */
		return now - c->since_ms > gk_add_sat(g->body_ms,
		    (int64_t)allowance * 1000) && http_tcp_unread(c->fd) == 0;
	default:
		return 0;
	}
}

static void *
watch(void *arg)
{
	http_guard *g = arg;
	struct http_conn *c;
	struct timespec ts;
	int64_t now;

	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		now = mono_ms();
		for (c = g->head; c != NULL; c = c->next) {
			pthread_mutex_lock(&c->mu);
			if (c->killed || !overdue(g, c, now)) {
				pthread_mutex_unlock(&c->mu);
				continue;
			}
			c->killed = 1;
			g->closed++;
			gk_debug("closing a connection too slow to send its "
			    "request %s", c->phase == PH_HEAD ? "head" :
			    "body");
			pthread_mutex_unlock(&c->mu);
			/* the entry (and its descriptor) lives while the
			 * list's mutex is held */
			(void)shutdown(c->fd, SHUT_RDWR);
		}
		gk_deadline_ts(CLOCK_MONOTONIC, TICK_MS * 1000LL, &ts);
		(void)pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int
http_guard_start(unsigned head_timeout_s, unsigned body_timeout_s,
    unsigned body_min_rate, http_guard **out)
{
	pthread_condattr_t ca;
	http_guard *g;

	*out = NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return GK_ERR_NOMEM;
	g->head_ms = (int64_t)head_timeout_s * 1000;
	g->body_ms = (int64_t)body_timeout_s * 1000;
	g->min_rate = body_min_rate;
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (head_timeout_s > 0 || body_min_rate > 0) {
		if (pthread_create(&g->thread, NULL, watch, g) != 0) {
			http_guard_stop(g);
			return GK_ERR_INTERNAL;
		}
		g->running = 1;
	}
	*out = g;
	return 0;
}

void
http_guard_stop(http_guard *g)
{
	struct http_conn *c, *next;

	if (g == NULL)
		return;
	if (g->running) {
		pthread_mutex_lock(&g->mu);
		g->stop = 1;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->mu);
		pthread_join(g->thread, NULL);
	}
	for (c = g->head; c != NULL; c = next) {
		next = c->next;
		pthread_mutex_destroy(&c->mu);
		free(c);
	}
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

uint64_t
http_guard_closed(const http_guard *g)
{
	return g != NULL ? g->closed : 0;
}

http_conn *
http_guard_open(http_guard *g, int fd)
{
	http_conn *c;

	if (g == NULL || (g->head_ms == 0 && g->min_rate == 0) || fd < 0 ||
	    (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	c->fd = fd;
	c->phase = PH_HEAD;	/* from accept: the first head is due */
	c->since_ms = mono_ms();
	pthread_mutex_lock(&g->mu);
	c->next = g->head;
	if (g->head != NULL)
		g->head->prev = c;
	g->head = c;
	pthread_mutex_unlock(&g->mu);
	return c;
}

void
http_guard_close(http_guard *g, http_conn *c)
{
	if (g == NULL || c == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&g->mu);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void
set_phase(http_guard *g, http_conn *c, int phase)
{
	uint64_t got;
	int64_t now;
	int ok = 0;

	if (g == NULL || c == NULL)
		return;
	/* a body's clock counts its bytes; an idle connection's is read by
	 * the watchdog */
	got = phase == PH_BODY ? received_state(c->fd, &ok, NULL, NULL) : 0;
	now = mono_ms();
	pthread_mutex_lock(&c->mu);
	c->phase = phase;
	c->drained_ms = 0;
	c->since_ms = now;
	c->base = got;
	pthread_mutex_unlock(&c->mu);
}

void
http_guard_head_done(http_guard *g, http_conn *c, int body)
{
	/* without a body the request is being answered: no clock, and no
	 * byte count to take */
	set_phase(g, c, body ? PH_BODY : PH_BUSY);
}

void
http_guard_body_done(http_guard *g, http_conn *c)
{
	set_phase(g, c, PH_BUSY);
}

void
http_guard_request_done(http_guard *g, http_conn *c)
{
	set_phase(g, c, PH_IDLE);
}
