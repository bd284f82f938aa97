"""Audit out: every audit record streamed to a SIEM, at least once and in
order, resuming after outages and restarts without a gap; the request
path never waits for it. Receivers: Debian's rsyslogd (RFC 5424 over TCP,
octet-counted), run here with its own config by PID, over TCP and TLS
(with and without a required client certificate); and a webhook taking
JSON lines over HTTP and over HTTPS (a Python ssl server with a test CA:
a receiver the configured CA did not sign gets nothing and loses nothing,
a receiver that requires a client certificate gets one)."""
import http.server
import ssl
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

    def __init__(self, d, port, tls=None, auth="anon"):
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
                        'streamDriver.authMode="%s")\n' % ((d,) + tls +
                                                            (auth,)))
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


def first_arrivals(seqs):
    """The sequences in the order each first arrived."""
    first = []
    for x in seqs:
        if x not in first:
            first.append(x)
    return first


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
    assert first_arrivals(seqs) == want
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
    """A CA, a certificate for localhost it signed, and a client
    certificate (CN=gatekeeper, clientAuth) it signed (openssl CLI)."""
    def run(*a):
        subprocess.run(["openssl"] + list(a), check=True,
                       capture_output=True, cwd=d, timeout=60)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=test syslog CA")
    for name, cn, ext in (("srv", "localhost", "subjectAltName=DNS:localhost"
                           "\nextendedKeyUsage=serverAuth\n"),
                          ("cli", "gatekeeper", "extendedKeyUsage=clientAuth"
                           "\n")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + cn)
        with open(os.path.join(d, name + ".cnf"), "w") as f:
            f.write(ext)
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-out", name + ".pem", "-days", "2",
            "-extfile", name + ".cnf")
    return tuple(os.path.join(d, x) for x in ("ca.pem", "srv.pem",
                                               "srv.key"))


def two_cas(tmp_path):
    """make_ca's files in tmp_path/tls, and another CA's certificate."""
    made = []
    for name in ("tls", "other"):
        d = tmp_path / name
        d.mkdir()
        made.append(make_ca(str(d)))
    return made[0], made[1][0]


def client_cert(ca_pem):
    d = os.path.dirname(ca_pem)
    return os.path.join(d, "cli.pem"), os.path.join(d, "cli.key")


def set_ini(g, section, **items):
    """Rewrites settings of one section of g's config file."""
    out, cur = [], None
    with open(g.config) as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.startswith("["):
            if cur == section:
                out += ["%s = %s" % kv for kv in items.items()]
                items = {}
            cur = line.strip("[]")
        elif cur == section and line.split(" = ")[0] in items:
            continue
        out.append(line)
    if items:
        if cur != section:
            out.append("[%s]" % section)
        out += ["%s = %s" % kv for kv in items.items()]
    with open(g.config, "w") as f:
        f.write("\n".join(out) + "\n")


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


def test_syslog_tls_client_certificate(gk_factory, tmp_path):
    """rsyslog requiring a client certificate its CA signed (x509/
    certvalid): without one, or with one of another CA, nothing arrives
    and nothing is lost; with the right one everything arrives, in
    order, from the first record."""
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so"):
        pytest.fail("rsyslog-openssl is missing: run scripts/install-deps.sh")
    (ca, crt, key), other_ca = two_cas(tmp_path)
    rs = Rsyslog(os.path.dirname(ca), free_port(), tls=(ca, crt, key),
                 auth="x509/certvalid")
    try:
        rs.start()
        g = gk_factory(audit_out__syslog="tls://localhost:%d" % rs.port,
                       audit_out__syslog_ca_file=ca,
                       audit_out__retry_seconds="1").start()
        traffic(g, 4, "a")
        time.sleep(2.5)
        assert rsyslog_seqs(rs) == set()
        g.stop()
        assert "TLS with localhost" in open(g.log).read() or \
            "syslog" in open(g.log).read()
        # a certificate the receiver's CA did not sign
        ocrt, okey = client_cert(other_ca)
        set_ini(g, "audit_out", syslog_cert_file=ocrt, syslog_key_file=okey)
        g.start()
        traffic(g, 2, "b")
        time.sleep(2.5)
        assert rsyslog_seqs(rs) == set()
        g.stop()
        # the right one: everything, from seq 1, in order
        ccrt, ckey = client_cert(ca)
        set_ini(g, "audit_out", syslog_cert_file=ccrt, syslog_key_file=ckey)
        g.start()
        traffic(g, 3, "c")
        want = [r["seq"] for r in chain(g)]
        wait_for(lambda: rsyslog_seqs(rs) >= set(want),
                 what="records over mutual TLS")
        seqs = [int(m.group(6)) for m in rs.messages()]
        assert first_arrivals(seqs)[:len(want)] == want
        assert want[0] == 1
    finally:
        rs.stop()


def test_syslog_client_certificate_settings(gk_factory, tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    ca = make_ca(str(d))[0]
    ccrt, ckey = client_cert(ca)
    for items, msg in (
            ({"syslog": "tls://localhost:1", "syslog_cert_file": ccrt},
             "syslog_cert_file and syslog_key_file go together"),
            ({"syslog": "tcp://localhost:1", "syslog_cert_file": ccrt,
              "syslog_key_file": ckey}, "syslog_cert_file needs a tls://"),
            ({"webhook": "https://localhost:1/", "webhook_key_file": ckey},
             "webhook_cert_file and webhook_key_file go together"),
            ({"webhook": "http://localhost:1/", "webhook_cert_file": ccrt,
              "webhook_key_file": ckey}, "webhook_cert_file needs an https")):
        g = gk_factory()
        set_ini(g, "audit_out", **items)
        p = g.run("check-config", check=False)
        assert p.returncode != 0 and msg in p.stderr, (items, p.stderr)
    # a key that is not the certificate's: the gatekeeper does not start
    other = tmp_path / "o"
    other.mkdir()
    okey = client_cert(make_ca(str(other))[0])[1]
    g = gk_factory(audit_out__syslog="tls://localhost:1",
                   audit_out__syslog_ca_file=ca,
                   audit_out__syslog_cert_file=ccrt,
                   audit_out__syslog_key_file=okey)
    with pytest.raises(AssertionError):
        g.start()
    assert "cannot use the client certificate" in open(g.log).read()


class TlsHook(http.server.ThreadingHTTPServer):
    """The webhook receiver over HTTPS, with the test CA's certificate for
    localhost; require_client: only clients with a certificate the CA
    signed get through the handshake."""

    def __init__(self, crt, key, ca, require_client=False):
        super().__init__(("127.0.0.1", 0), Hook)
        self.calls, self.lines, self.failing, self.peers = [], [], False, []
        self.handshake_failures = 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        if require_client:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(ca)
        self.ctx = ctx

    def get_request(self):
        sock, addr = self.socket.accept()
        try:
            tls = self.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1
            sock.close()
            raise
        cert = tls.getpeercert()
        self.peers.append(dict(x[0] for x in cert["subject"]) if cert
                          else None)
        return tls, addr


def test_webhook_https_verifies_the_receiver(gk_factory, tmp_path):
    (ca, crt, key), other_ca = two_cas(tmp_path)
    srv = TlsHook(crt, key, ca)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "https://localhost:%d/siem" % srv.server_address[1]
    try:
        # the configured CA did not sign the receiver: nothing is sent
        g = gk_factory(audit_out__webhook=url,
                       audit_out__webhook_ca_file=other_ca,
                       audit_out__retry_seconds="1",
                       audit_out__batch="4").start()
        traffic(g, 6, "h")
        wait_for(lambda: srv.handshake_failures >= 2,
                 what="refused handshakes")
        assert srv.calls == [] and srv.lines == []
        g.stop()
        log = open(g.log).read()
        assert "audit out webhook" in log and "certificate" in log, log
        # fixed: everything arrives, from seq 1, in order
        set_ini(g, "audit_out", webhook_ca_file=ca)
        g.start()
        traffic(g, 3, "i")
        want = [r["seq"] for r in chain(g)]
        wait_for(lambda: {x["seq"] for x in srv.lines} >= set(want),
                 what="webhook records over https")
        seqs = [x["seq"] for x in srv.lines]
        assert seqs == sorted(seqs) and seqs[:len(want)] == want
        assert want[0] == 1 and srv.peers[-1] is None
    finally:
        srv.shutdown()


def test_webhook_https_client_certificate(gk_factory, tmp_path):
    d = tmp_path / "ca"
    d.mkdir()
    ca, crt, key = make_ca(str(d))
    srv = TlsHook(crt, key, ca, require_client=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "https://localhost:%d/siem" % srv.server_address[1]
    try:
        # no client certificate: the receiver refuses the handshake
        g = gk_factory(audit_out__webhook=url,
                       audit_out__webhook_ca_file=ca,
                       audit_out__retry_seconds="1").start()
        traffic(g, 3, "m")
        wait_for(lambda: srv.handshake_failures >= 2,
                 what="refused handshakes")
        assert srv.lines == []
        g.stop()
        ccrt, ckey = client_cert(ca)
        set_ini(g, "audit_out", webhook_cert_file=ccrt,
                webhook_key_file=ckey)
        g.start()
        want = [r["seq"] for r in chain(g)]
        wait_for(lambda: {x["seq"] for x in srv.lines} >= set(want),
                 what="webhook records with a client certificate")
        assert [x["seq"] for x in srv.lines][:len(want)] == want
        assert {"commonName": "gatekeeper"} in srv.peers
    finally:
        srv.shutdown()
