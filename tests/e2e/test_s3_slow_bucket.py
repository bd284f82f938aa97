"""A slow bucket holds only the requests that need it.

With an s3 store, a decision may wait on the bucket (a HEAD for
check_exists, a listing, a proxy-mode download's HEAD, an upload's write
check), and so may a proxy-mode transfer (a download's next bytes, an
upload's next part). Those waits happen on the gate's worker threads, the
request suspended, so that an HTTP thread stuck behind the bucket does not
hold every other connection it serves. The bucket here is a small fake S3
server (no signature check) whose answers for keys named "slow..." (and a
download's second half for "drip...", the first part of "slowpart...")
wait until the test lets them go; the gatekeeper runs one HTTP thread, so
on the old design every other request waited with them.
"""
import http.server
import os
import socket
import threading
import time
import urllib.parse

import pytest
import requests

ORIGIN = "https://app.example"
BODY = b"hello"
LONG = bytes(range(256)) * 64


class FakeBucket(http.server.BaseHTTPRequestHandler):
    """HEAD and GET of any key: 5 bytes. Keys with "slow" in their name are
    answered once `release` is set (or after 30 s); keys with "drip" are
    LONG, of which a GET sends the first half at once and the rest once
    `release` is set."""
    protocol_version = "HTTP/1.1"
    release = threading.Event()
    held = []
    writes = []

    def log_message(self, *a):
        pass

    def hold(self):
        if "drip" in self.path:
            return
        if "slow" in self.path:
            FakeBucket.held.append(self.path)
            FakeBucket.release.wait(30)

    def head_lines(self, length):
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.send_header("Last-Modified", "Wed, 02 Dec 2026 10:00:00 GMT")
        self.send_header("ETag", '"5d41402abc4b2a76b9719d911017c592"')
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()

    def do_HEAD(self):
        self.hold()
        self.head_lines(len(LONG if "drip" in self.path else BODY))

    def small(self, code, body=b"", etag=None):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def do_POST(self):      # CreateMultipartUpload, CompleteMultipartUpload
        data = self.body()
        if "uploadId=" in self.path:
            FakeBucket.writes.append(("COMPLETE", self.path, data))
            return self.small(200, b"<CompleteMultipartUploadResult>"
                                   b"</CompleteMultipartUploadResult>")
        self.hold()
        FakeBucket.writes.append(("POST", self.path))
        self.small(200, b"<InitiateMultipartUploadResult><UploadId>up-1"
                        b"</UploadId></InitiateMultipartUploadResult>")

    def do_DELETE(self):    # AbortMultipartUpload
        FakeBucket.writes.append(("DELETE", self.path))
        self.small(204)

    def do_PUT(self):       # the object in one PUT, or a part
        data = self.body()
        if "partNumber=1&" in self.path and "slowpart" in self.path:
            FakeBucket.held.append(self.path)
            FakeBucket.release.wait(30)
        FakeBucket.writes.append(("PUT", self.path, data))
        self.small(200, etag='"e%d"' % len(FakeBucket.writes))

    def do_GET(self):
        self.hold()
        if "drip" not in self.path:
            self.head_lines(len(BODY))
            self.wfile.write(BODY)
            return
        self.head_lines(len(LONG))
        self.wfile.write(LONG[:len(LONG) // 2])
        self.wfile.flush()
        FakeBucket.held.append(self.path)
        FakeBucket.release.wait(30)
        self.wfile.write(LONG[len(LONG) // 2:])


@pytest.fixture
def slow_gk(gk_factory, tmp_path):
    """make(**settings): a started gatekeeper (1 HTTP thread) whose s3
    store is a fresh fake bucket; the bucket's held requests are let go
    and it stops at the end of the test."""
    FakeBucket.release.clear()
    FakeBucket.held.clear()
    FakeBucket.writes.clear()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeBucket)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sk = str(tmp_path / "s3.secret")
    with open(sk, "w") as f:
        f.write("fake-secret\n")
    os.chmod(sk, 0o600)

    def make(**extra):
        s = dict(server__threads="1", acl__origins=ORIGIN,
                 store__type="s3", s3__bucket="gk-bucket",
                 s3__endpoint="http://127.0.0.1:%d" % srv.server_address[1],
                 s3__path_style="true", s3__region="us-east-1",
                 s3__access_key_id="AKIAFAKE", s3__secret_key_file=sk,
                 s3__imds="false", s3__container_credentials="false",
                 s3__retries="0")
        s.update(extra)
        return gk_factory(**s).start()
    yield make
    FakeBucket.release.set()
    srv.shutdown()


def timed(fn):
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


def audit_paths(g):
    return [r["path"] for r in g.audit_rows("operation = 'GET_Object'")]


def wait_held(n, timeout=10):
    end = time.monotonic() + timeout
    while len(FakeBucket.held) < n:
        assert time.monotonic() < end, FakeBucket.held
        time.sleep(0.02)


def run_slow_case(g, slow_call, fast_call, settle=0.0):
    """slow_call waits on the bucket; meanwhile (after settle seconds)
    fast_call and a static file are answered at once; then the slow one is
    let go and answered."""
    out = {}
    t = threading.Thread(target=lambda: out.update(r=slow_call()))
    t.start()
    try:
        wait_held(1)
        time.sleep(settle)
        r, took = timed(fast_call)
        assert r.status_code in (200, 302), r.text
        assert took < 3, took
        r, took = timed(lambda: requests.get(g.base + "/robots.txt",
                                             timeout=30))
        assert r.status_code == 200 and took < 3, took
        assert t.is_alive(), "the slow request did not wait on the bucket"
    finally:
        FakeBucket.release.set()
        t.join(40)
    return out["r"]


def test_check_exists_head_holds_no_http_thread(slow_gk):
    g = slow_gk(s3__check_exists="true")
    r = run_slow_case(
        g, lambda: g.get("app", "/slow.txt", "GET_Object",
                         origin=ORIGIN),
        lambda: g.get("app", "/fast.txt", "GET_Object", origin=ORIGIN))
    assert r.status_code == 302, r.text
    assert "slow.txt" in r.headers["Location"]
    g.stop()
    paths = audit_paths(g)
    assert any("fast.txt" in p for p in paths), paths
    assert any("slow.txt" in p for p in paths), paths
    assert g.run("audit", "verify", check=False).returncode == 0


def proxy_download_case(slow_gk, slow_key):
    """A proxy-mode download of slow_key waits on the bucket while a
    download of fast.txt and a static file are answered; returns the slow
    download's answer once the bucket goes on. The grants (302 to a data
    URL) need no bucket call in proxy mode."""
    g = slow_gk(s3__mode="proxy")
    slow = g.get("app", slow_key, "GET_Object", origin=ORIGIN)
    fast = g.get("app", "/fast.txt", "GET_Object", origin=ORIGIN)
    assert slow.status_code == 302 and fast.status_code == 302
    return run_slow_case(
        g, lambda: requests.get(slow.headers["Location"],
                                headers={"Origin": ORIGIN}, timeout=40),
        lambda: requests.get(fast.headers["Location"],
                             headers={"Origin": ORIGIN}, timeout=30))


def test_proxy_download_head_holds_no_http_thread(slow_gk):
    r = proxy_download_case(slow_gk, "/slow.txt")
    assert r.status_code == 200 and r.content == BODY, r.text


def test_proxy_download_stream_holds_no_http_thread(slow_gk):
    """A download whose bytes stop coming from the bucket half-way: the
    HTTP thread does not wait for them (a worker does), other requests
    are answered, and the download completes byte for byte once the
    bucket goes on."""
    r = proxy_download_case(slow_gk, "/drip.bin")
    assert r.status_code == 200, r.text
    assert r.content == LONG


def sigterm_while_held(g, call):
    """Runs call in a thread; once the bucket holds its request, SIGTERM;
    then the bucket goes on. The gatekeeper must exit 0 with its chain
    verifying. Returns call's answer, or the exception it raised."""
    out = {}

    def run():
        try:
            out["r"] = call()
        except requests.RequestException as e:
            out["r"] = e
    t = threading.Thread(target=run)
    t.start()
    wait_held(1)
    g.proc.send_signal(15)
    time.sleep(1)
    FakeBucket.release.set()
    assert g.proc.wait(timeout=40) == 0
    t.join(40)
    assert not t.is_alive()
    g.proc = None
    assert g.run("audit", "verify", check=False).returncode == 0
    return out["r"]


def test_shutdown_ends_a_stalled_stream(slow_gk):
    """SIGTERM while a download waits for the bucket's next bytes: the
    gatekeeper still stops cleanly (nothing stays suspended)."""
    g = slow_gk(s3__mode="proxy")
    drip = g.get("app", "/drip-stop.bin", "GET_Object", origin=ORIGIN)
    assert drip.status_code == 302
    r = sigterm_while_held(g, lambda: requests.get(
        drip.headers["Location"], headers={"Origin": ORIGIN}, timeout=40))
    # the answer was under way: whole, or cut (never a hang)
    if not isinstance(r, Exception):
        assert r.content == LONG


def test_upload_write_check_holds_no_http_thread(slow_gk):
    """A proxy-mode upload checks that the bucket takes writes (a multipart
    upload created and aborted) before its record: at the end of its body,
    on a worker, not on the HTTP thread at its start."""
    g = slow_gk(s3__mode="proxy")
    content = b"upload bytes " * 100
    r = run_slow_case(
        g, lambda: g.upload("/slow-up.bin", content, origin=ORIGIN)[0],
        lambda: g.get("app", "/fast.txt", "GET_Object", origin=ORIGIN))
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "uploads/slow-up.bin"
    kinds = [w[0] for w in FakeBucket.writes]
    assert kinds == ["POST", "DELETE", "PUT"], FakeBucket.writes
    assert FakeBucket.writes[2][2] == content
    assert "slow-up.bin" in FakeBucket.writes[2][1]


def test_upload_part_to_a_slow_bucket_holds_no_http_thread(slow_gk):
    """An upload over 8 MiB goes as a multipart upload whose parts are sent
    while the next fills: when the bucket is slow to take a part, the
    request waits (suspended) once the next part is full, not the HTTP
    thread, and the object is whole once the bucket goes on."""
    g = slow_gk(s3__mode="proxy")
    content = os.urandom(17 * 1024 * 1024 + 5)
    r = run_slow_case(
        g, lambda: g.upload("/slowpart.bin", content, origin=ORIGIN)[0],
        lambda: g.get("app", "/fast.txt", "GET_Object", origin=ORIGIN),
        settle=1.0)  # the next part is full by then: the body waits
    assert r.status_code == 201, r.text
    parts = sorted((w for w in FakeBucket.writes if w[0] == "PUT"),
                   key=lambda w: int(w[1].split("partNumber=")[1]
                                     .split("&")[0]))
    assert len(parts) == 3, [w[:2] for w in FakeBucket.writes]
    assert b"".join(w[2] for w in parts) == content
    assert any(w[0] == "COMPLETE" for w in FakeBucket.writes)


def test_abandoned_upload_is_aborted_off_the_http_thread(slow_gk):
    """A client that leaves in the middle of a large proxy upload while the
    bucket holds its first part: the upload is recorded as cut, its
    multipart upload aborted once the part is in, and meanwhile the HTTP
    thread serves everyone else (the abort waits on a worker)."""
    g = slow_gk(s3__mode="proxy")
    r = g.get("app", "/slowpart-cut.bin", "PUT_Object", origin=ORIGIN)
    assert r.status_code == 200, r.text
    ret = r.json()["clientReturn"]
    b = "gkcutboundary"
    head = "".join('--%s\r\nContent-Disposition: form-data; name="%s"'
                   '\r\n\r\n%s\r\n' % (b, k, v)
                   for k, v in ret["fields"].items())
    head += ('--%s\r\nContent-Disposition: form-data; name="file"; '
             'filename="f.bin"\r\nContent-Type: application/'
             'octet-stream\r\n\r\n' % b)
    total = len(head) + 17 * 1024 * 1024 + len("\r\n--%s--\r\n" % b)
    u = urllib.parse.urlsplit(ret["url"])
    c = socket.create_connection(("127.0.0.1", g.port))
    c.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: %s\r\n"
               "Content-Type: multipart/form-data; boundary=%s\r\n"
               "Content-Length: %d\r\n\r\n" % (
                   u.path, ORIGIN, b, total)).encode() + head.encode())
    chunk = os.urandom(1024 * 1024)
    for _ in range(12):
        c.sendall(chunk)
    wait_held(1)            # the first part is at the bucket, held
    c.close()               # the client leaves mid-body
    time.sleep(0.5)
    r, took = timed(lambda: g.get("app", "/fast.txt", "GET_Object",
                                  origin=ORIGIN))
    assert r.status_code == 302 and took < 3, took
    FakeBucket.release.set()
    end = time.monotonic() + 20
    while not any(w[0] == "DELETE" and "uploadId=up-1" in w[1]
                  for w in FakeBucket.writes):
        assert time.monotonic() < end, FakeBucket.writes
        time.sleep(0.05)
    assert not any(w[0] == "COMPLETE" for w in FakeBucket.writes)
    rows = g.audit_rows("operation = 'POST_Upload'")
    assert rows and rows[-1]["status"] == 400, rows


def test_shutdown_waits_for_a_decision_on_the_bucket(slow_gk):
    """SIGTERM while a decision waits on the bucket: the gatekeeper stops
    cleanly once the bucket answers, and the client gets an answer."""
    g = slow_gk(s3__check_exists="true")
    r = sigterm_while_held(g, lambda: g.get("app", "/slow-stop.txt",
                                            "GET_Object", origin=ORIGIN))
    assert not isinstance(r, Exception), r
    assert r.status_code in (302, 503), r.text

