/*
 * fuzz_http.c - the whole request path on raw bytes, in-process: the
 * server (libmicrohttpd with our URI, head and connection callbacks), the
 * router and every route behind it, with an fs store and a SQLite audit in
 * a temporary directory. Each input is sent as it is on a new loopback
 * connection, the write side is shut, and the answer is read to the end.
 * Invariants: whatever comes back is a sequence of HTTP/1.1 answers with
 * a status line, never a 500 (an internal exception), and the server
 * keeps answering.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "gate/gate.h"
#include "http/http.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned port;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_http: %s\n", what);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* tmpfs when there is one: the audit's fsyncs cost nothing there */
	char dir[64], ini[512], err[512];
	gk_config *cfg = NULL;
	gk_app *app = NULL;
	gk_http *http = NULL;
	http_settings hs;
	FILE *f;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/gk-fuzz-http-XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(ini, sizeof(ini), "%s/gatekeeper.ini", dir);
	if ((f = fopen(ini, "w")) == NULL)
		die("config file");
	fprintf(f, "[server]\nlisten = 127.0.0.1\nport = 0\nthreads = 2\n"
	    "log_level = error\nhead_timeout = 2\nbody_timeout = 2\n"
	    "conn_timeout = 3\nper_ip_conn_limit = 0\n"
	    "[gate]\ndata_dir = %s/data\nmax_upload_bytes = 65536\n"
	    "[acl]\nip_allow = 127.0.0.0/8\n"
	    "origins = https://app.example.com\n", dir);
	fclose(f);
	gk_log_set_level(GK_LOG_ERROR);
	if (cfg_load(ini, 0, &cfg, err, sizeof(err)) != 0 ||
	    cfg_keygen(cfg, NULL) != 0)
		die(err);
	cfg_free(cfg);
	cfg = NULL;
	if (cfg_load(ini, 1, &cfg, err, sizeof(err)) != 0)
		die(err);
	/* the gate takes cfg over; the http settings borrow from it */
	if (cfg_gate_open(cfg, &app, err, sizeof(err)) != 0)
		die(err);
	cfg_http_settings(cfg, &hs);
	if (http_server_start(app, &hs, &http, err, sizeof(err)) != 0)
		die("cannot start the server");
	port = http_server_port(http);
	/* app and http live until the process ends */
	return 0;
}

/*
 * Reads until the server closes, or until 50 ms pass without a byte once
 * an answer has begun (a kept-alive connection: libmicrohttpd notices the
 * half-close only later), or 300 ms without any (an incomplete request
 * the server still waits on: its deadlines end it later; *silent is set
 * and the caller checks the server still answers).
 */
static size_t
read_all(int fd, uint8_t *buf, size_t cap, int *silent)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t rest[4096];
	size_t got = 0;
	ssize_t n;
	int waited = 0;

	for (;;) {
		int r = poll(&p, 1, got > 0 ? 50 : 100);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			if (got > 0)
				return got;
			if (++waited >= 3) {
				*silent = 1;
				return 0;
			}
			continue;
		}
		/* only the start is checked: past cap, read and drop */
		if (got < cap)
			n = recv(fd, buf + got, cap - got, 0);
		else
			n = recv(fd, rest, sizeof(rest), 0);
		if (n <= 0)
			return got;
		if (got < cap)
			got += (size_t)n;
	}
}

static int
connect_server(void)
{
	struct sockaddr_in sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int e = errno;
		socklen_t len = sizeof(e);

		/* a signal (libFuzzer's timer) cut the wait short: the
		 * handshake goes on; wait for it, 10 s at the most */
		if (e == EINTR && poll(&p, 1, 10000) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 &&
		    e == 0)
			return fd;
		fprintf(stderr, "fuzz_http: connect: %s\n", strerror(e));
		abort();
	}
	return fd;
}

/* The server must still answer a plain request within 5 s. */
static void
probe(void)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";
	struct pollfd p;
	char buf[16];
	ssize_t n;
	int fd = connect_server();

	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)(sizeof(req) - 1))
		die("probe: send");
	p.fd = fd;
	p.events = POLLIN;
	n = 0;
	while ((size_t)n < 9 && poll(&p, 1, 10000) == 1) {
		ssize_t k = recv(fd, buf + n, sizeof(buf) - (size_t)n, 0);

		if (k <= 0)
			break;
		n += k;
	}
	if (n < 9 || memcmp(buf, "HTTP/1.1 ", 9) != 0) {
		fprintf(stderr, "fuzz_http: probe got %zd bytes (%s)\n", n,
		    n < 0 ? strerror(errno) : "no status line in 10 s");
		die("the server stopped answering");
	}
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[256 * 1024];
	static int64_t last_probe;
	size_t got, off = 0;
	ssize_t n;
	int fd, silent = 0;

	fd = connect_server();
	while (off < size) {
		n = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;	/* the server closed early: fine */
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	got = read_all(fd, buf, sizeof(buf) - 1, &silent);
	close(fd);
	if (silent && gk_mono_us() - last_probe > 1000000) {
		probe();
		last_probe = gk_mono_us();
	}
	if (got > 0) {
		if (got < 12 || (memcmp(buf, "HTTP/1.1 ", 9) != 0 &&
		    memcmp(buf, "HTTP/1.0 ", 9) != 0))
			die("an answer without a status line");
		if (memcmp(buf + 9, "500", 3) == 0)
			die("500: an internal exception");
	}
	return 0;
}
