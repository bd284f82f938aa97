"""Raw-socket helpers for the hostile-client tests (issue 10): send bytes
exactly as given, read what comes back until the server closes or a
timeout, and split it into responses."""
import os
import re
import socket
import time


def exchange(port, data, timeout=8.0, src=None, chunks=None, gap=0.0):
    """Sends data (or the list chunks with gap seconds between them) on a
    new connection and reads until the server closes it or timeout.
    Returns (bytes received, closed by the server, seconds taken)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    t0 = time.monotonic()
    s.connect(("127.0.0.1", port))
    out = b""
    closed = False
    try:
        for i, part in enumerate(chunks if chunks is not None else [data]):
            if i and gap:
                time.sleep(gap)
            s.sendall(part)
        while True:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                break
            s.settimeout(left)
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except socket.timeout:
        pass
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    finally:
        s.close()
    return out, closed, time.monotonic() - t0


STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n")


def responses(raw, head_only=False):
    """Splits raw into [(status, {header: value}, body)]; a trailing
    fragment that is not a whole response is ignored."""
    out = []
    pos = 0
    while pos < len(raw):
        m = STATUS.match(raw, pos)
        if not m:
            break
        end = raw.find(b"\r\n\r\n", m.end() - 2)
        if end < 0:
            break
        headers = {}
        for line in raw[m.end():end].split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower().decode()] = v.strip().decode(
                    "latin-1")
        n = 0 if head_only else int(headers.get("content-length", "0"))
        body = raw[end + 4:end + 4 + n]
        out.append((int(m.group(1)), headers, body))
        pos = end + 4 + n
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def is_sanitized(pid):
    """True when the running process is the ASan/UBSan build (RSS is not
    meaningful there: the quarantine holds freed memory on purpose)."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()
