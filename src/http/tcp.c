/*
 * tcp.c - what the kernel says of a client's TCP connection: the bytes
 * received so far and when data last came (TCP_INFO), its state, and the
 * bytes received but not yet read (SIOCINQ). The watchdog (guard.c) and
 * the idle-connection holder (park.c) read these.
 */
#include "http_int.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int
http_tcp_state_of(int fd, http_tcp_state *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(out, 0, sizeof(*out));
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) +
	    sizeof(ti.tcpi_bytes_received))
		return -1;
	out->received = ti.tcpi_bytes_received;
	out->last_recv_ms = gk_mono_us() / 1000 -
	    (int64_t)ti.tcpi_last_data_recv;
	out->state = ti.tcpi_state;
	return 0;
}

int
http_tcp_unread(int fd)
{
	int n = -1;

	return ioctl(fd, SIOCINQ, &n) == 0 ? n : -1;
}
