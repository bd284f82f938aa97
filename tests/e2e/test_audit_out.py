"""Audit out: every audit record streamed to a SIEM, at least once and in
order, resuming after outages and restarts without a gap; the request
path never waits for it. Receivers: Debian's rsyslogd (RFC 5424 over TCP,
octet-counted), run here with its own config by PID; and an HTTP webhook
taking JSON lines."""
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import ORIGIN, free_port

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
LINE = re.compile(r'^<(\d+)>1 (\S+) (\S+) gatekeeper (\d+) audit '
                  r'\[gk@32473 instance="([^"]+)" seq="(\d+)" '
                  r'decision="(\w+)" status="(\d+)"\] (\{.*\})$')


class Rsyslog:
    """rsyslogd -n with a config of its own: imtcp on port, every
    message's raw form into out."""

    def __init__(self, d, port, tls=None):
        self.dir, self.port = d, port
        self.out = os.path.join(d, "received.log")
        self.conf = os.path.join(d, "rsyslog.conf")
        with open(self.conf, "w") as f:
            if tls is None:
                f.write('global(workDirectory="%s")\n'
                        'module(load="imtcp")\n' % d)
            else:
                f.write('global(workDirectory="%s" '
                        'defaultNetstreamDriver="ossl" '
                        'defaultNetstreamDriverCAFile="%s" '
                        'defaultNetstreamDriverCertFile="%s" '
                        'defaultNetstreamDriverKeyFile="%s")\n'
                        'module(load="imtcp" streamDriver.name="ossl" '
                        'streamDriver.mode="1" '
                        'streamDriver.authMode="anon")\n' % ((d,) + tls))
            f.write('input(type="imtcp" port="%d" address="127.0.0.1")\n'
                    'template(name="raw" type="string" '
                    'string="%%rawmsg%%\\n")\n'
                    '*.* action(type="omfile" file="%s" template="raw")\n'
                    % (port, self.out))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", self.conf, "-i",
             os.path.join(self.dir, "rsyslogd.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                import socket
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return self
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read()
                time.sleep(0.1)
        raise AssertionError("rsyslogd did not listen")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def messages(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out, encoding="utf-8") as f:
            return [LINE.match(line.rstrip("\n")) for line in f if line.strip()]


@pytest.fixture
def rsyslog(tmp_path):
    if not os.path.exists(RSYSLOGD):
        pytest.fail("rsyslogd is missing: run scripts/install-deps.sh")
    d = tmp_path / "rsyslog"
    d.mkdir()
    r = Rsyslog(str(d), free_port())
    yield r
    r.stop()


def traffic(g, n, tag):
    """n requests: allowed listings and denied reads (bad hmac)."""
    for i in range(n):
        if i % 3 == 2:
            params = g.sign("app", "/%s/x%d.txt" % (tag, i), "GET_Object")
            params["hmac"] = "0" * 64
            r = requests.get(g.url("app", params), headers={"Origin": ORIGIN},
                             allow_redirects=False, timeout=10)
            assert r.status_code == 401
        else:
            r = g.get("app", "/%s/" % tag, "GET_Bucket")
            assert r.status_code == 200


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def chain(g):
    return [r for r in g.audit_rows() if r["seq"] is not None]


def test_syslog_rfc5424_outage_restart_nothing_lost(gk_factory, rsyslog):
    rsyslog.start()
    g = gk_factory(audit_out__syslog="tcp://127.0.0.1:%d" % rsyslog.port,
                   audit_out__retry_seconds="1").start()
    traffic(g, 12, "a")

    def all_there():
        rows = chain(g)
        got = {int(m.group(6)) for m in rsyslog.messages() if m}
        return rows and got >= {r["seq"] for r in rows} and rows
    rows = wait_for(all_there, what="the first records in rsyslog")

    # the message: RFC 5424 header, structured data, the record as JSON
    msgs = [m for m in rsyslog.messages()]
    assert all(msgs), [m for m in msgs if not m]
    by_seq = {int(m.group(6)): m for m in msgs}
    for r in rows:
        m = by_seq[r["seq"]]
        pri = int(m.group(1))
        assert pri // 8 == 13     # log audit
        assert pri % 8 == {"allow": 6, "deny": 4, "error": 3}[r["decision"]]
        assert m.group(5) == r["instance_id"]
        assert (m.group(7), int(m.group(8))) == (r["decision"], r["status"])
        body = json.loads(m.group(9))
        assert body["request_id"] == r["request_id"]
        assert body["seq"] == r["seq"] and body["path"] == r["path"]
        assert m.group(2).endswith("Z")

    # the receiver goes away: requests are not slowed down
    time.sleep(1.5)          # the acknowledged position settles
    rsyslog.stop()
    t0 = time.time()
    traffic(g, 30, "b")
    during = time.time() - t0
    assert during < 15, during
    n_before = len(chain(g))
    # ... and comes back: what happened meanwhile arrives, in order
    time.sleep(2)
    rsyslog.start()
    wait_for(lambda: {int(m.group(6)) for m in rsyslog.messages() if m}
             >= {r["seq"] for r in chain(g)}, what="records after outage")

    # the gatekeeper restarts: it resumes from its acknowledged seq
    time.sleep(1.5)
    assert g.stop() == 0
    state = os.path.join(g.data, "audit-out-syslog.seq")
    acked = int(open(state).read())
    assert 0 < acked <= n_before + 30
    g.start()
    traffic(g, 9, "c")
    wait_for(lambda: {int(m.group(6)) for m in rsyslog.messages() if m}
             >= {r["seq"] for r in chain(g)}, what="records after restart")

    seqs = [int(m.group(6)) for m in rsyslog.messages()]
    want = sorted(r["seq"] for r in chain(g))
    assert want == list(range(1, len(want) + 1))
    assert set(seqs) == set(want)              # nothing lost
    # in order: each record first arrives after the one before it
    first = []
    for s in seqs:
        if s not in first:
            first.append(s)
    assert first == want
    # at least once: a resend restarts at or before the gap, never after
    for a, b in zip(seqs, seqs[1:]):
        assert b <= a + 1, (a, b)


class Hook(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        srv.calls.append((self.headers.get("Authorization"),
                          self.headers.get("Content-Type")))
        if srv.failing:
            self.send_response(503)
            self.end_headers()
            return
        srv.lines += [json.loads(x) for x in body.decode().splitlines()]
        self.send_response(204)
        self.end_headers()


def test_webhook_json_lines_retries(gk_factory, backend, tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    srv.calls, srv.lines, srv.failing = [], [], True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tok = tmp_path / "hook.token"
    tok.write_text("s3cr3t-hook-token\n")
    os.chmod(tok, 0o600)
    try:
        g = gk_factory(
            backend=backend,
            audit_out__webhook="http://127.0.0.1:%d/siem" %
            srv.server_address[1],
            audit_out__webhook_token_file=str(tok),
            audit_out__retry_seconds="1", audit_out__batch="5").start()
        traffic(g, 12, "w")
        wait_for(lambda: len(srv.calls) >= 2, what="failed deliveries")
        assert srv.lines == []
        srv.failing = False
        wait_for(lambda: {x["seq"] for x in srv.lines} >=
                 {r["seq"] for r in chain(g)}, what="webhook records")
        seqs = [x["seq"] for x in srv.lines]
        assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))
        assert srv.calls[-1] == ("Bearer s3cr3t-hook-token",
                                 "application/x-ndjson")
        rows = {r["seq"]: r for r in chain(g)}
        assert all(x["request_id"] == rows[x["seq"]]["request_id"]
                   for x in srv.lines)
        g.stop()
        assert "s3cr3t" not in open(g.log).read()
    finally:
        srv.shutdown()


def test_audit_out_bad_settings(gk_factory):
    for k, v, msg in (("syslog", "udp://127.0.0.1:514",
                       "[audit_out] syslog must be tcp://host:port"),
                      ("webhook", "ftp://x", "[audit_out] webhook must be")):
        g = gk_factory()
        with open(g.config, "a") as f:
            f.write("[audit_out]\n%s = %s\n" % (k, v))
        p = g.run("check-config", check=False)
        assert p.returncode != 0 and msg in p.stderr, p.stderr


def make_ca(d):
    """A CA and a certificate for localhost it signed (openssl CLI)."""
    def run(*a):
        subprocess.run(["openssl"] + list(a), check=True,
                       capture_output=True, cwd=d, timeout=60)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=test syslog CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj",
        "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2",
        "-extfile", "ext.cnf")
    return tuple(os.path.join(d, x) for x in ("ca.pem", "srv.pem",
                                               "srv.key"))


def test_syslog_over_tls(gk_factory, tmp_path):
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so"):
        pytest.fail("rsyslog-openssl is missing: run scripts/install-deps.sh")
    d = tmp_path / "tls"
    d.mkdir()
    ca, crt, key = make_ca(str(d))
    rs = Rsyslog(str(d), free_port(), tls=(ca, crt, key))
    other = tmp_path / "other"
    other.mkdir()
    other_ca = make_ca(str(other))[0]
    try:
        rs.start()
        # a receiver whose certificate the configured CA did not sign
        # gets nothing
        bad = gk_factory(audit_out__syslog="tls://localhost:%d" % rs.port,
                         audit_out__syslog_ca_file=other_ca,
                         audit_out__retry_seconds="1").start()
        traffic(bad, 3, "x")
        time.sleep(2)
        assert rsyslog_seqs(rs) == set()
        bad.stop()
        assert "TLS with localhost" in open(bad.log).read()
        g = gk_factory(audit_out__syslog="tls://localhost:%d" % rs.port,
                       audit_out__syslog_ca_file=ca,
                       audit_out__retry_seconds="1").start()
        traffic(g, 6, "t")
        wait_for(lambda: rsyslog_seqs(rs) >= {r["seq"] for r in chain(g)},
                 what="records over TLS")
        assert all(rs.messages())
    finally:
        rs.stop()


def rsyslog_seqs(rs):
    return {int(m.group(6)) for m in rs.messages() if m}
