"""Idle keep-alive connections held outside libmicrohttpd (src/http/park.c).

A plain-HTTP connection idle after an answer that keeps it open is taken
back from libmicrohttpd (at once after its first answer and when its
client idles between requests, else after head_timeout): the server
keeps a dup() of its socket (so the descriptor number holding the
connection changes, which is what these tests look at in /proc) and
hands it back when its next bytes come. Real sockets throughout; what a
client sees is asserted byte for byte.
"""
import os
import socket
import time
import urllib.parse

from conftest import ORIGIN
from hostile import exchange

# the take-back after a later answer comes after head_timeout, 2 s in
# these tests (started()); waiting this long leaves room for a loaded
# machine
HEAD_TIMEOUT = 2
PARK_WAIT = HEAD_TIMEOUT + 1.0


def target(g, root, path, op):
    return "/%s?%s" % (root, urllib.parse.urlencode(
        g.sign(root, path, op, ttl=600), quote_via=urllib.parse.quote))


def request(g, tgt, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: %s\r\n%s\r\n"
            % (tgt, g.port, ORIGIN, extra)).encode()


class Conn:
    """A raw client connection that reads whole HTTP/1.1 answers."""

    def __init__(self, g, src="127.0.0.1"):
        self.s = socket.socket()
        self.s.bind((src, 0))
        self.s.settimeout(10)
        self.s.connect(("127.0.0.1", g.port))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def answer(self):
        """(status, headers dict lower-case, body, raw bytes)."""
        while b"\r\n\r\n" not in self.buf:
            got = self.s.recv(65536)
            assert got, "connection closed before an answer: %r" % self.buf
            self.buf += got
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(rest) < n:
            got = self.s.recv(65536)
            assert got, "connection closed inside a body"
            rest += got
        body, self.buf = rest[:n], rest[n:]
        self.answered_at = time.monotonic()
        return status, hdrs, body, head + b"\r\n\r\n" + body

    def closed_by_server(self, timeout):
        """True if the server closes within timeout s (no bytes first)."""
        self.s.settimeout(timeout)
        try:
            got = self.s.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        assert got == b"", "unexpected bytes %r" % got
        return True

    def close(self):
        self.s.close()


def _hexaddr(ip, port):
    a = socket.inet_aton(ip)
    return "%08X:%04X" % (int.from_bytes(a, "little"), port)


def server_inode(g, conn):
    """The socket inode of conn's server side (None if there is none)."""
    ip, port = conn.s.getsockname()
    local = _hexaddr("127.0.0.1", g.port)
    remote = _hexaddr(ip, port)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[1] == local and p[2] == remote and p[9] != "0":
                return p[9]
    return None


def fd_of_inode(g, inode):
    d = "/proc/%d/fd" % g.proc.pid
    for fd in os.listdir(d):
        try:
            if os.readlink(os.path.join(d, fd)) == "socket:[%s]" % inode:
                return int(fd)
        except OSError:
            continue
    return None


def server_fd(g, conn):
    """The gatekeeper's descriptor number holding conn's server side, or
    None when it holds none."""
    inode = server_inode(g, conn)
    return fd_of_inode(g, inode) if inode is not None else None


def settled_fd(g, conn):
    """The descriptor holding conn in the server once it has one (taken
    before a request: the take-back comes 1 s after its answer, and a
    loaded machine may need that long to check the audit row)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fd = server_fd(g, conn)
        if fd is not None:
            return fd
        time.sleep(0.05)
    raise AssertionError("the server never accepted the connection")


def wait_parked(g, conn, before):
    """Waits until the connection's descriptor is no longer `before` (the
    dup() kept when it is taken back); returns the new one."""
    deadline = time.monotonic() + PARK_WAIT + 3
    gone = 0
    while time.monotonic() < deadline:
        fd = server_fd(g, conn)
        if fd is None:
            # a look at /proc/PID/fd between the listing and the
            # dup()-then-close of a take-back misses both descriptors:
            # closed only if it stays so
            gone += 1
            assert gone < 3, "the server closed the connection"
            time.sleep(0.02)
            continue
        gone = 0
        if fd != before:
            return fd
        time.sleep(0.1)
    raise AssertionError("connection not taken back (still fd %d)" % before)


def grant(g, conn, path="/c/obj.txt"):
    conn.send(request(g, target(g, "uploads", path, "GET_Object")))
    st, h, body, raw = conn.answer()
    assert st == 302, raw
    rows = g.audit_rows("request_id = ?", (h["x-request-id"],))
    assert len(rows) == 1 and rows[0]["decision"] == "allow", rows
    # the client's own address, also after a park and a wake
    assert rows[0]["client_ip"] == conn.s.getsockname()[0], rows[0]
    return h


def started(gk_factory, content=b"x", **settings):
    """A gatekeeper (conn_timeout 15 s, head_timeout 2 s unless given)
    with one object."""
    settings.setdefault("server__conn_timeout", "15")
    settings.setdefault("server__head_timeout", str(HEAD_TIMEOUT))
    g = gk_factory(**settings).start()
    r, _ = g.upload("/c/obj.txt", content)
    assert r.status_code == 201
    return g


def test_parked_connection_serves_its_next_requests(gk_factory):
    content = os.urandom(70000)
    g = started(gk_factory, content=content)
    c = Conn(g)
    fd0 = settled_fd(g, c)
    h = grant(g, c)
    fd1 = wait_parked(g, c, fd0)
    # woken by its next request: the object's bytes through the data URL
    loc = urllib.parse.urlsplit(h["location"])
    c.send(request(g, loc.path + "?" + loc.query))
    st, h2, body, raw = c.answer()
    assert st == 200, raw
    assert body == content
    assert h2["content-length"] == str(len(content))
    # parked again, then a grant with its audit row
    wait_parked(g, c, fd1)
    grant(g, c)
    # nothing more on the wire than the answers
    c.s.settimeout(0.3)
    try:
        extra = c.s.recv(1)
    except socket.timeout:
        extra = b"-"
    assert extra == b"-" and c.buf == b""
    c.close()


def test_pipelined_requests_across_a_park(gk_factory):
    g = started(gk_factory, content=b"pipelined")
    c = Conn(g)
    # two pipelined at once: both answered, in order, then parked
    a = request(g, target(g, "uploads", "/c/obj.txt", "GET_Object"))
    b = request(g, target(g, "uploads", "/c/missing.txt", "GET_Object"))
    fd0 = settled_fd(g, c)
    c.send(a + b)
    st1, h1, _, raw1 = c.answer()
    st2, h2, _, raw2 = c.answer()
    assert st1 == 302, raw1
    assert h1["x-request-id"] != h2["x-request-id"]
    fd1 = wait_parked(g, c, fd0)
    # after the park: three in one write, the third cut in two writes
    reqs = [request(g, target(g, "uploads", "/c/obj.txt", "GET_Object"))
            for _ in range(3)]
    blob = b"".join(reqs)
    c.send(blob[:-20])
    time.sleep(0.3)
    c.send(blob[-20:])
    ids = []
    for _ in range(3):
        st, h, _, raw = c.answer()
        assert st == 302, raw
        ids.append(h["x-request-id"])
    assert len(set(ids)) == 3
    for rid in ids:
        assert len(g.audit_rows("request_id = ?", (rid,))) == 1
    # a request head split across the park: its start before, the rest
    # after the take-back would be due (libmicrohttpd holds the start,
    # so the connection stays with it and the request is answered)
    wait_parked(g, c, fd1)
    one = request(g, target(g, "uploads", "/c/obj.txt", "GET_Object"))
    c.send(one[:30])
    time.sleep(0.6)
    c.send(one[30:])
    st, h, _, raw = c.answer()
    assert st == 302, raw
    c.close()


def test_parked_connection_closed_by_the_client_is_freed(gk_factory):
    g = started(gk_factory)
    c = Conn(g)
    fd0 = settled_fd(g, c)
    grant(g, c)
    wait_parked(g, c, fd0)
    inode = server_inode(g, c)
    c.close()
    # the server's descriptor for it goes away (not held until a timeout)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if fd_of_inode(g, inode) is None:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the parked connection was not freed")


def test_limits_count_parked_connections(gk_factory):
    g = started(gk_factory, server__per_ip_conn_limit="2",
                server__conn_limit="4")
    held = []
    for _ in range(2):
        c = Conn(g, "127.0.0.9")
        fd = settled_fd(g, c)
        grant(g, c)
        held.append((c, fd))
    for c, fd in held:
        wait_parked(g, c, fd)
    # a third from the same address: closed at once, no answer
    c3 = Conn(g, "127.0.0.9")
    try:
        c3.send(request(g, target(g, "uploads", "/c/obj.txt", "GET_Object")))
    except OSError:
        pass
    assert c3.closed_by_server(5)
    c3.close()
    # another address is served; two parked + two more = conn_limit
    others = []
    for src in ("127.0.0.10", "127.0.0.11"):
        c = Conn(g, src)
        grant(g, c)
        others.append(c)
    c5 = Conn(g, "127.0.0.12")
    assert c5.closed_by_server(5)
    c5.close()
    # one parked connection closes: its place is free again
    held[0][0].close()
    time.sleep(0.5)
    c6 = Conn(g, "127.0.0.9")
    grant(g, c6)
    # the parked one left is woken and served
    grant(g, held[1][0])
    for c in others + [c6, held[1][0]]:
        c.close()


def test_parked_connection_closes_after_the_idle_timeout(gk_factory):
    g = started(gk_factory, server__conn_timeout="4")
    c = Conn(g)
    fd0 = settled_fd(g, c)
    grant(g, c)
    t0 = c.answered_at
    wait_parked(g, c, fd0)
    assert c.closed_by_server(10)
    took = time.monotonic() - t0
    # 4 s from its answer; the expiry is looked at 4 times a second
    assert 3.5 <= took <= 4 + 2.5, took
    c.close()


def test_shutdown_with_parked_connections(gk_factory):
    g = started(gk_factory)
    conns = [Conn(g, "127.0.0.%d" % (20 + i)) for i in range(5)]
    fds = []
    for c in conns:
        fds.append(settled_fd(g, c))
        grant(g, c)
    for c, fd in zip(conns, fds):
        wait_parked(g, c, fd)
    t0 = time.monotonic()
    assert g.stop() == 0
    assert time.monotonic() - t0 < 10
    for c in conns:
        assert c.closed_by_server(2)
        c.close()


def later_answer(g, c, fd):
    """Two grants in a row on c (parked at fd): the second answer is a
    later one in a quick series, after which the take-back waits for
    head_timeout (libmicrohttpd's timeout) instead of coming at once.
    The series is quick only when the second request follows the first
    answer within the server's 1 s pause (HTTP_PARK_PAUSE_MS), which a
    loaded machine checking the audit row may miss: then the second is
    not sent and the pair is tried again (the first answer of each try
    is taken back at once either way)."""
    for _ in range(5):
        grant(g, c)
        fd = wait_parked(g, c, fd)
        if time.monotonic() - c.answered_at < 0.8:
            grant(g, c)
            return fd
    raise AssertionError("no two requests within 0.8 s in 5 tries")


def test_part_of_a_request_line_then_a_stall_is_never_misread(gk_factory):
    """The start of a request line, then a stall longer than the old 1 s
    take-back, then the rest: answered once, with its audit row, both
    after a take-back at once (the start waits in the socket) and after
    a later answer (libmicrohttpd holds the start: the connection keeps
    head_timeout, here 4 s, as on a daemon that takes nothing back)."""
    g = started(gk_factory, server__head_timeout="4")
    c = Conn(g)
    fd0 = settled_fd(g, c)
    grant(g, c)
    wait_parked(g, c, fd0)
    # (its answer is parked at once: the client idled 1.5 s before it)
    for stall in (1.5, 2.5):
        if stall > 2:
            grant(g, c)  # right after the last: a quick series
            fd = server_fd(g, c)
        one = request(g, target(g, "uploads", "/c/obj.txt", "GET_Object"))
        c.send(one[:12])
        time.sleep(stall)
        if stall > 2:
            # held by libmicrohttpd all along (not taken back at once)
            assert server_fd(g, c) == fd
        c.send(one[12:])
        st, h, _, raw = c.answer()
        assert st == 302, raw
        assert len(g.audit_rows("request_id = ?", (h["x-request-id"],))) == 1
    assert c.buf == b""
    c.s.settimeout(0.3)
    try:
        extra = c.s.recv(1)
    except socket.timeout:
        extra = b"-"
    assert extra == b"-", "more than one answer"
    c.close()


def test_a_head_that_never_completes_is_closed_by_head_timeout(gk_factory):
    """After a later answer, the start of a request line and nothing more:
    closed head_timeout (3 s) after it, not at the take-back's old 1 s;
    the rest sent after that gets no answer."""
    g = started(gk_factory, server__head_timeout="3")
    c = Conn(g)
    later_answer(g, c, settled_fd(g, c))
    time.sleep(0.3)
    one = request(g, target(g, "uploads", "/c/obj.txt", "GET_Object"))
    c.send(one[:12])
    t0 = time.monotonic()
    assert not c.closed_by_server(2.5), "closed before head_timeout"
    assert c.closed_by_server(3)
    took = time.monotonic() - t0
    assert 2.9 <= took <= 3 + 2, took
    try:
        c.send(one[12:])
        c.s.settimeout(2)
        got = c.s.recv(4096)
    except OSError:
        got = b""
    assert got == b"", "answered the rest of a cut request: %r" % got[:60]
    c.close()


def test_later_answer_taken_back_after_head_timeout(gk_factory):
    """After a later answer in a quick series the connection stays with
    libmicrohttpd for head_timeout, then is taken back; its next request
    is served."""
    g = started(gk_factory)
    c = Conn(g)
    fd1 = later_answer(g, c, settled_fd(g, c))
    t0 = c.answered_at
    time.sleep(HEAD_TIMEOUT - 0.7)
    assert server_fd(g, c) == fd1, "taken back before head_timeout"
    wait_parked(g, c, fd1)
    took = time.monotonic() - t0
    assert HEAD_TIMEOUT - 0.2 <= took <= PARK_WAIT + 3, took
    grant(g, c)
    c.close()


def test_client_idling_between_requests_is_taken_back_at_once(gk_factory):
    """A client that idled more than 1 s before a request is taken back at
    once after its answer, every time (not after head_timeout)."""
    g = started(gk_factory, server__head_timeout="10")
    c = Conn(g)
    fd = settled_fd(g, c)
    for _ in range(3):
        grant(g, c)
        t0 = time.monotonic()
        fd = wait_parked(g, c, fd)
        assert time.monotonic() - t0 < 1.5
        time.sleep(1.3)
    c.close()


def test_parked_connection_closes_on_time(gk_factory):
    """A parked connection closes conn_timeout after its answer, to well
    under 100 ms (the client's own clock; slack for a loaded machine),
    both when taken back at once and after head_timeout."""
    g = started(gk_factory, server__conn_timeout="3",
                server__head_timeout="1")
    late = []
    for i in range(3):
        c = Conn(g, "127.0.0.%d" % (40 + i))
        fd = settled_fd(g, c)
        if i == 2:
            fd = later_answer(g, c, fd)
        else:
            grant(g, c)
        t0 = c.answered_at
        wait_parked(g, c, fd)
        assert c.closed_by_server(6)
        late.append(time.monotonic() - t0 - 3)
        c.close()
    assert all(-0.05 <= x <= 0.15 for x in late), late


def metrics(g):
    """The parked-connection figures of /metrics (Connection: close: the
    request itself is never parked)."""
    raw, closed, _ = exchange(g.port, b"GET /metrics HTTP/1.1\r\nHost: x"
                              b"\r\nConnection: close\r\n\r\n", timeout=10)
    assert closed and raw.startswith(b"HTTP/1.1 200"), raw[:100]
    out = {}
    for line in raw.split(b"\r\n\r\n", 1)[1].decode().splitlines():
        if line.startswith("gatekeeper_parked"):
            k, v = line.rsplit(" ", 1)
            out[k] = int(v)
    return out


def wait_metrics(g, want, base, timeout=8):
    """Waits until every figure in want is base's plus the given delta."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(g)
        if all(m[k] - base.get(k, 0) == d for k, d in want.items()):
            return m
        if time.monotonic() > deadline:
            raise AssertionError((want, base, m))
        time.sleep(0.1)


NOW = "gatekeeper_parked_connections"
PARKED = "gatekeeper_parked_connections_total"
WOKEN = "gatekeeper_parked_woken_total"
IDLE = 'gatekeeper_parked_closed_total{reason="idle_timeout"}'
PEER = 'gatekeeper_parked_closed_total{reason="peer_closed"}'


def test_metrics_count_parked_connections(gk_factory):
    g = started(gk_factory, server__conn_timeout="4")
    # the fixture's own connections (closed by their client) settle first
    base = wait_metrics(g, {NOW: 0}, {})
    assert set(base) == {NOW, PARKED, WOKEN, IDLE, PEER}, base
    c1 = Conn(g, "127.0.0.51")
    fd = settled_fd(g, c1)
    grant(g, c1)
    wait_parked(g, c1, fd)
    wait_metrics(g, {NOW: 1, PARKED: 1, WOKEN: 0}, base)
    # woken by its next request (held now: 0), and taken back again
    # head_timeout after that (a later answer; held now: 1 again)
    grant(g, c1)
    wait_metrics(g, {NOW: 1, PARKED: 2, WOKEN: 1}, base, timeout=PARK_WAIT + 3)
    # one closed by its client while parked
    c2 = Conn(g, "127.0.0.52")
    fd = settled_fd(g, c2)
    grant(g, c2)
    wait_parked(g, c2, fd)
    wait_metrics(g, {NOW: 2, PARKED: 3}, base)
    c2.close()
    wait_metrics(g, {NOW: 1, PEER: 1, IDLE: 0}, base)
    # c1 closed by the idle timeout while parked
    assert c1.closed_by_server(6)
    c1.close()
    wait_metrics(g, {NOW: 0, PARKED: 3, WOKEN: 1, PEER: 1, IDLE: 1}, base)
