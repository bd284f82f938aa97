/*
 * park.c - idle keep-alive connections held outside libmicrohttpd.
 *
 * libmicrohttpd gives every connection a memory pool (server.c's
 * CONN_POOL) and zeroes all of it after each request, so a kept-alive
 * connection that idles inside it costs the whole pool. On the plain
 * HTTP daemons an idle connection is taken back from libmicrohttpd: we
 * hold only its socket and a small record in an epoll set of our own
 * until its next bytes arrive, and then hand it over again
 * (MHD_add_connection). libmicrohttpd accepts new connections itself.
 *
 * Taking a connection back at once (http_park_now, in libmicrohttpd's
 * completed notification) is described there. After an idle timeout
 * (http_park_closing, from libmicrohttpd's connection-closed
 * notification, in its thread, before it closes the socket): server.c
 * arms one after a request whose answer keeps the connection open; when
 * it expires libmicrohttpd closes the connection. The daemon runs with
 * MHD_USE_TURBO, so that close does not shut the socket down; we keep a
 * dup() of it when, and only when, libmicrohttpd holds no byte of a next
 * request: every byte it read from the socket (TCP_INFO's bytes received
 * minus the bytes still queued, SIOCINQ) belongs to requests it
 * completed (their heads and bodies, as counted by server.c). Otherwise,
 * and for every other close, the socket is shut down for writing as
 * libmicrohttpd would have, and closed.
 *
 * Limits count every connection from its start to its last close, parked
 * or not: conn_limit in all, per_ip_conn_limit per client address; one
 * over is refused as it starts (its socket shut down, no request of it
 * served; libmicrohttpd's own limits, which would not see the parked
 * ones, are set wider by server.c). A parked connection still
 * closes after the idle timeout, counted from its last answer, and is
 * freed when the client closes it.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <search.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define EVENTS 256
/* The parked lists are looked at this often at least, and when their
 * first deadline is due (epoll_wait's timeout, to the millisecond). A
 * connection is parked at least 1 s before its deadline (the idle
 * timeout is whole seconds, and so is the time from the answer to a
 * take-back, which is shorter), so one parked while the thread waits is
 * never due before the thread looks again. */
#define EXPIRE_TICK_MS 250
/* After this many take-backs (and at most once a TRIM_EVERY_MS), the
 * heap's free pages go back to the system: the connections' buffers
 * freed by libmicrohttpd lie between records that stay. */
#define TRIM_AFTER 256
#define TRIM_EVERY_MS 250
/* A take-back closer to the answer than this is not an idle timeout
 * (see http_park_closing). */
#define TAKE_BACK_MIN_MS 500
/* Upper bound on the descriptor table (one pointer per descriptor). */
#define FD_TABLE_MAX (1u << 22)

/* Clients per address, when per_ip_conn_limit is set. */
struct ip_count {
	uint8_t key[17];	/* family, then the address */
	unsigned n;
};

struct http_client {
	http_client *prev, *next;	/* the parked list, oldest first */
	int fd;
	uint8_t listener;
	uint8_t parked;
	uint8_t unaccounted;	/* a request's bytes are unknown: no park */
	uint8_t lst;		/* the parked list it is on (see http_park) */
	uint64_t consumed;	/* bytes of the requests completed */
	int64_t answered_ms;	/* its last answer (0: none yet) */
	int64_t deadline_ms;	/* parked: closed then */
	struct ip_count *ip;
	struct sockaddr *sa;	/* the client's address, salen bytes */
	socklen_t salen;
};

struct http_park {
	pthread_t thread;
	int running;
	int ep, ev;		/* epoll set; eventfd: stop */
	struct MHD_Daemon *d[HTTP_PARK_LISTENERS];
	unsigned conn_limit, per_ip;
	int64_t idle_ms;	/* conn_timeout */
	_Atomic unsigned total;
	_Atomic int closing;	/* no more parking */
	uint64_t trimmed_at_n;	/* n_parked at the last malloc_trim */
	int64_t trimmed_ms;
	pthread_mutex_t mu;	/* the parked lists, the address counts */
	/* parked, each list in the order of its deadlines (a fixed time
	 * after the last answer): [0] taken back after the idle timeout,
	 * [1] at once after the first answer */
	http_client *head[2], *tail[2];
	void *ips;		/* tsearch tree of struct ip_count */
	_Atomic(http_client *) *byfd;	/* handed to libmicrohttpd */
	size_t nfd;
};

/* For /metrics (http_park_counters) and trim(): one server in a
 * process. */
static _Atomic uint64_t n_now, n_parked, n_woken, n_idle_closed,
    n_peer_closed;

static int64_t
now_ms(void)
{
	return gk_mono_us() / 1000;
}

static int
ip_cmp(const void *a, const void *b)
{
	return memcmp(((const struct ip_count *)a)->key,
	    ((const struct ip_count *)b)->key, sizeof(((struct ip_count *)0)->key));
}

/* The address as a key; 0 if the family has none (then not counted). */
static int
ip_key(const struct sockaddr *sa, uint8_t key[17])
{
	memset(key, 0, 17);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		key[0] = 6;
		memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    16);
		return 1;
	}
	return 0;
}

/* Counts a new client against the limits (mutex held): 0, or 1 if over. */
static int
count_add(http_park *p, http_client *c)
{
	struct ip_count probe, *ic, **node;

	if (atomic_load(&p->total) >= p->conn_limit)
		return 1;
	if (p->per_ip > 0 && ip_key(c->sa, probe.key)) {
		node = tfind(&probe, &p->ips, ip_cmp);
		if (node != NULL) {
			ic = *node;
			if (ic->n >= p->per_ip)
				return 1;
		} else {
			if ((ic = calloc(1, sizeof(*ic))) == NULL)
				return 1;
			memcpy(ic->key, probe.key, sizeof(ic->key));
			if (tsearch(ic, &p->ips, ip_cmp) == NULL) {
				free(ic);
				return 1;
			}
		}
		ic->n++;
		c->ip = ic;
	}
	atomic_fetch_add(&p->total, 1);
	return 0;
}

/* The client is gone: its counts and its record. */
static void
client_release(http_park *p, http_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	if (c->ip != NULL && --c->ip->n == 0) {
		(void)tdelete(c->ip, &p->ips, ip_cmp);
		free(c->ip);
	}
	pthread_mutex_unlock(&p->mu);
	atomic_fetch_sub(&p->total, 1);
	free(c->sa);
	free(c);
}

/* Hands c's socket to its daemon (park thread). */
static void
hand_over(http_park *p, http_client *c)
{
	http_client *stale;
	int fd = c->fd;

	if ((size_t)fd >= p->nfd) {
		(void)shutdown(fd, SHUT_WR);
		close(fd);
		client_release(p, c);
		return;
	}
	/* a record still in the slot was handed over with a descriptor of
	 * this number that libmicrohttpd closed without ever serving it
	 * (its worker could not start the connection): released now */
	stale = atomic_exchange(&p->byfd[fd], c);
	if (stale != NULL)
		client_release(p, stale);
	if (MHD_add_connection(p->d[c->listener], fd, c->sa, c->salen) !=
	    MHD_YES) {
		/* libmicrohttpd closed the socket: the record back */
		http_client *mine = c;

		(void)atomic_compare_exchange_strong(&p->byfd[fd], &mine,
		    NULL);
		if (mine == c)
			client_release(p, c);
	}
}

/* Parked lists (mutex held). */
static void
list_remove(http_park *p, http_client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->head[c->lst] = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		p->tail[c->lst] = c->prev;
	c->prev = c->next = NULL;
	c->parked = 0;
}

static void
list_append(http_park *p, http_client *c)
{
	c->parked = 1;
	c->next = NULL;
	c->prev = p->tail[c->lst];
	if (p->tail[c->lst] != NULL)
		p->tail[c->lst]->next = c;
	else
		p->head[c->lst] = c;
	p->tail[c->lst] = c;
}

/* A parked socket became readable or was closed by the client. */
static void
parked_event(http_park *p, http_client *c, uint32_t ev)
{
	pthread_mutex_lock(&p->mu);
	if (!c->parked) {	/* (one event per parking: EPOLLONESHOT) */
		pthread_mutex_unlock(&p->mu);
		return;
	}
	list_remove(p, c);
	pthread_mutex_unlock(&p->mu);
	(void)epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
	atomic_fetch_sub(&n_now, 1);
	if ((ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) &&
	    http_tcp_unread(c->fd) <= 0) {
		/* the client closed it (nothing of a request came) */
		atomic_fetch_add(&n_peer_closed, 1);
		close(c->fd);
		client_release(p, c);
		return;
	}
	atomic_fetch_add(&n_woken, 1);
	hand_over(p, c);
}

/* Parked connections past the idle timeout are closed; the time until
 * the next one is due (ms, -1: none). */
static int
expire(http_park *p)
{
	int64_t now = now_ms(), wait = -1;
	http_client *c;
	int l = 0;

	while (l < 2) {
		pthread_mutex_lock(&p->mu);
		c = p->head[l];
		if (c == NULL || c->deadline_ms > now) {
			if (c != NULL && (wait < 0 || c->deadline_ms - now < wait))
				wait = c->deadline_ms - now;
			pthread_mutex_unlock(&p->mu);
			l++;
			continue;
		}
		list_remove(p, c);
		pthread_mutex_unlock(&p->mu);
		atomic_fetch_sub(&n_now, 1);
		atomic_fetch_add(&n_idle_closed, 1);
		(void)epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
		(void)shutdown(c->fd, SHUT_WR);
		close(c->fd);
		client_release(p, c);
	}
	return wait < 0 || wait > EXPIRE_TICK_MS ? EXPIRE_TICK_MS : (int)wait;
}

static void
trim(http_park *p)
{
	uint64_t n = atomic_load(&n_parked);
	int64_t now;

	if (n - p->trimmed_at_n < TRIM_AFTER)
		return;
	now = now_ms();
	if (now - p->trimmed_ms < TRIM_EVERY_MS)
		return;
	p->trimmed_at_n = n;
	p->trimmed_ms = now;
	(void)malloc_trim(0);
}

static void *
park_main(void *arg)
{
	http_park *p = arg;
	struct epoll_event evs[EVENTS];
	int i, n;

	for (;;) {
		n = epoll_wait(p->ep, evs, EVENTS, expire(p));
		trim(p);
		if (n < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				return NULL;	/* stop */
			parked_event(p, evs[i].data.ptr, evs[i].events);
		}
	}
	return NULL;
}

int
http_park_new(unsigned conn_limit, unsigned per_ip_conn_limit,
    unsigned idle_timeout_s, http_park **out)
{
	struct rlimit rl;
	http_park *p;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return GK_ERR_NOMEM;
	p->ep = p->ev = -1;
	p->conn_limit = conn_limit;
	p->per_ip = per_ip_conn_limit;
	p->idle_ms = (int64_t)idle_timeout_s * 1000;
	pthread_mutex_init(&p->mu, NULL);
	p->nfd = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
		p->nfd = rl.rlim_max;
	if (p->nfd > FD_TABLE_MAX)
		p->nfd = FD_TABLE_MAX;
	if ((p->byfd = calloc(p->nfd, sizeof(*p->byfd))) == NULL ||
	    (p->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (p->ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		http_park_free(p);
		return GK_ERR_NOMEM;
	}
	*out = p;
	return 0;
}

int
http_park_run(http_park *p, struct MHD_Daemon *const *d)
{
	struct epoll_event e;
	int i;

	for (i = 0; i < HTTP_PARK_LISTENERS; i++)
		p->d[i] = d[i];
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;
	e.data.ptr = NULL;
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->ev, &e) != 0)
		return GK_ERR_IO;
	if (pthread_create(&p->thread, NULL, park_main, p) != 0)
		return GK_ERR_INTERNAL;
	p->running = 1;
	return 0;
}

void
http_park_quiesce(http_park *p)
{
	http_client *c;
	uint64_t one = 1;

	if (p == NULL)
		return;
	atomic_store(&p->closing, 1);
	if (p->running) {
		if (write(p->ev, &one, sizeof(one)) != sizeof(one))
			gk_warn("cannot signal the idle-connection thread");
		pthread_join(p->thread, NULL);
		p->running = 0;
	}
	/* idle connections are not waited for */
	for (;;) {
		pthread_mutex_lock(&p->mu);
		if ((c = p->head[0]) != NULL || (c = p->head[1]) != NULL)
			list_remove(p, c);
		pthread_mutex_unlock(&p->mu);
		if (c == NULL)
			break;
		atomic_fetch_sub(&n_now, 1);
		(void)epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
		(void)shutdown(c->fd, SHUT_WR);
		close(c->fd);
		client_release(p, c);
	}
}

void
http_park_free(http_park *p)
{
	size_t i;
	http_client *c;

	if (p == NULL)
		return;
	http_park_quiesce(p);
	/* handed over and never adopted (libmicrohttpd failed to start
	 * serving them, or is stopped): their records */
	for (i = 0; p->byfd != NULL && i < p->nfd; i++) {
		if ((c = atomic_load(&p->byfd[i])) != NULL)
			client_release(p, c);
	}
	if (p->ep >= 0)
		close(p->ep);
	if (p->ev >= 0)
		close(p->ev);
	tdestroy(p->ips, free);
	free(p->byfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

http_client *
http_park_adopt(http_park *p, int fd, const struct sockaddr *sa,
    unsigned listener, int *refused)
{
	http_client *c;
	socklen_t len;
	int over;

	*refused = 0;
	if (p == NULL || fd < 0 || sa == NULL ||
	    listener >= HTTP_PARK_LISTENERS)
		return NULL;
	len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : 0;
	if ((size_t)fd < p->nfd &&
	    (c = atomic_exchange(&p->byfd[fd], NULL)) != NULL) {
		if (c->salen == len && memcmp(c->sa, sa, len) == 0)
			return c;	/* handed over again: counted */
		/* a record left by a descriptor of this number that
		 * libmicrohttpd closed without serving it */
		client_release(p, c);
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || len == 0 || (c->sa = malloc(len)) == NULL) {
		free(c);
		*refused = len != 0;	/* no memory: refused */
		return NULL;
	}
	memcpy(c->sa, sa, len);
	c->salen = len;
	c->fd = fd;
	c->listener = (uint8_t)listener;
	pthread_mutex_lock(&p->mu);
	over = count_add(p, c);
	pthread_mutex_unlock(&p->mu);
	if (over) {
		free(c->sa);
		free(c);
		*refused = 1;
		return NULL;
	}
	return c;
}

int
http_park_request_done(http_client *c, uint64_t bytes, int known,
    int64_t now_ms)
{
	int at_once;

	if (c == NULL)
		return 0;
	at_once = c->answered_ms == 0 ||
	    now_ms - c->answered_ms > HTTP_PARK_PAUSE_MS;
	c->answered_ms = now_ms;
	if (!known || c->consumed + bytes < c->consumed)
		c->unaccounted = 1;
	else
		c->consumed += bytes;
	return at_once;
}

/* Bytes libmicrohttpd read from fd so far; -1 if unknown. The queue is
 * read first: a byte arriving in between makes the count larger, which
 * can only refuse a take-back. *established: the connection is open
 * both ways. */
static int64_t
bytes_read(int fd, int *established)
{
	http_tcp_state t;
	int inq;

	*established = 0;
	if ((inq = http_tcp_unread(fd)) < 0 || http_tcp_state_of(fd, &t) != 0)
		return -1;
	*established = t.state == HTTP_TCP_ESTABLISHED;
	if (t.received < (uint64_t)inq || t.received > INT64_MAX)
		return -1;
	return (int64_t)(t.received - (uint64_t)inq);
}

/* Parks c on its socket nfd (any thread): 0, or -1 if the epoll set
 * refused it (c then not parked, nfd still the caller's). */
static int
park_insert(http_park *p, http_client *c, int nfd, int lst,
    int64_t deadline_ms)
{
	struct epoll_event e;

	c->fd = nfd;
	c->lst = (uint8_t)lst;
	c->deadline_ms = deadline_ms;
	pthread_mutex_lock(&p->mu);
	list_append(p, c);
	pthread_mutex_unlock(&p->mu);
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	e.data.ptr = c;
	/* counted first: its wake may come before epoll_ctl returns */
	atomic_fetch_add(&n_now, 1);
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, nfd, &e) == 0) {
		atomic_fetch_add(&n_parked, 1);
		return 0;
	}
	atomic_fetch_sub(&n_now, 1);
	pthread_mutex_lock(&p->mu);
	list_remove(p, c);
	pthread_mutex_unlock(&p->mu);
	return -1;
}

/* libmicrohttpd holds no byte of a next request on fd and the
 * connection is open both ways. */
static int
nothing_held(const http_client *c, int fd)
{
	int64_t got;
	int est = 0;

	return !c->unaccounted && (got = bytes_read(fd, &est)) >= 0 && est &&
	    (uint64_t)got == c->consumed;
}

int
http_park_now(http_park *p, http_client *c, struct MHD_Connection *conn,
    int fd)
{
	int sv[2], nfd;

	/*
	 * libmicrohttpd's thread, in the completed notification of a
	 * request: suspended, the connection leaves its
	 * epoll set (EPOLL_CTL_DEL on the socket); its descriptor number is
	 * then made to name a socket whose peer is closed (dup3, atomic: no
	 * moment at which the number is free for another), so once resumed
	 * libmicrohttpd reads the end of a stream there and frees the
	 * connection, pool and all, sending nothing (MHD_USE_TURBO: no
	 * shutdown; and the socket it shuts or closes is that one). We keep
	 * a dup of the client's socket.
	 */
	if (c == NULL || atomic_load(&p->closing) || fd < 0 ||
	    !nothing_held(c, fd))
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
	    sv) != 0)
		return 0;
	if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	MHD_suspend_connection(conn);
	if (dup3(sv[0], fd, O_CLOEXEC) < 0) {
		MHD_resume_connection(conn);	/* as it was */
		close(nfd);
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	close(sv[0]);
	close(sv[1]);
	MHD_resume_connection(conn);
	if (park_insert(p, c, nfd, 1, now_ms() + p->idle_ms) != 0) {
		(void)shutdown(nfd, SHUT_WR);
		close(nfd);
		client_release(p, c);
	}
	return 1;
}

int
http_park_closing(http_park *p, http_client *c, int fd, int64_t idle_since_ms)
{
	int nfd;

	if (c == NULL)
		return 0;
	/*
	 * Taken back only after an idle timeout server.c armed (not after
	 * an answer libmicrohttpd closes the connection for, which comes at
	 * once: TAKE_BACK_MIN_MS guards against a wrong guess there), on an
	 * open connection, when every byte read from it belongs to the
	 * requests already answered (none of a next one is lost).
	 */
	if (idle_since_ms > 0 && !atomic_load(&p->closing) &&
	    now_ms() - idle_since_ms >= TAKE_BACK_MIN_MS &&
	    nothing_held(c, fd) &&
	    (nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
		/* the idle timeout, from the last answer */
		if (park_insert(p, c, nfd, 0, idle_since_ms + p->idle_ms) == 0)
			return 1;
		close(nfd);
	}
	/* the close libmicrohttpd would have made without MHD_USE_TURBO */
	(void)shutdown(fd, SHUT_WR);
	client_release(p, c);
	return 0;
}

void
http_park_counters(http_park_figures *out)
{
	out->now = atomic_load(&n_now);
	out->parked = atomic_load(&n_parked);
	out->woken = atomic_load(&n_woken);
	out->idle_closed = atomic_load(&n_idle_closed);
	out->peer_closed = atomic_load(&n_peer_closed);
}
