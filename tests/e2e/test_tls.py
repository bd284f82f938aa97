"""HTTPS: a test CA made here with the openssl CLI, real clients with
verification on (curl, Python requests), protocol and cipher refusals
checked with openssl s_client, the redirect listener, OCSP stapling, the
certificate swap on SIGHUP under load, and check-config's report."""
import os
import signal
import subprocess
import threading
import time
import http.client
import json
import ssl

import pytest
import requests

from conftest import BIN, ORIGIN, free_port
from hostile import exchange, responses


def sh(*args, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=60, **kw)
    assert p.returncode == 0, "%s: %s" % (args, p.stderr)
    return p.stdout


class Ca:
    """A CA and leaf certificates for localhost / 127.0.0.1."""

    def __init__(self, d):
        self.d = d
        self.ca = os.path.join(d, "ca.pem")
        self.ca_key = os.path.join(d, "ca.key")
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.ca_key,
           "-out", self.ca, "-days", "30", "-subj", "/CN=Gatekeeper Test CA")
        self.ext = os.path.join(d, "ext")
        with open(self.ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "basicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n")
        self.n = 0

    def leaf(self, days=1, kind="ec"):
        """Makes a new key and certificate; returns (chain, key, serial)."""
        self.n += 1
        base = os.path.join(self.d, "leaf%d" % self.n)
        newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
                  if kind == "ec" else ["-newkey", "rsa:2048"])
        sh("openssl", "req", *newkey, "-nodes", "-keyout", base + ".key",
           "-out", base + ".csr", "-subj", "/CN=localhost")
        sh("openssl", "x509", "-req", "-in", base + ".csr", "-CA", self.ca,
           "-CAkey", self.ca_key, "-set_serial", str(1000 + self.n),
           "-out", base + ".pem", "-days", str(days), "-extfile", self.ext)
        with open(base + ".chain", "w") as f:
            f.write(open(base + ".pem").read() + open(self.ca).read())
        return base + ".chain", base + ".key", 1000 + self.n

    def ocsp(self, leaf_pem, serial):
        """A DER OCSP response saying the leaf is good, signed by the CA."""
        idx = os.path.join(self.d, "index.txt")
        end = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 86400))
        with open(idx, "w") as f:
            f.write("V\t%s\t\t%X\tunknown\t/CN=localhost\n" % (end, serial))
        req = os.path.join(self.d, "ocsp.req")
        resp = os.path.join(self.d, "ocsp.der")
        sh("openssl", "ocsp", "-issuer", self.ca, "-cert", leaf_pem,
           "-reqout", req, "-no_nonce")
        sh("openssl", "ocsp", "-index", idx, "-rsigner", self.ca, "-rkey",
           self.ca_key, "-CA", self.ca, "-reqin", req, "-respout", resp,
           "-ndays", "1")
        return resp


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return Ca(str(tmp_path_factory.mktemp("ca")))


def tls_gk(gk_factory, ca, kind="ec", **kw):
    chain, key, serial = ca.leaf(kind=kind)
    live_chain = os.path.join(os.path.dirname(chain), "live.chain.%d" % serial)
    live_key = os.path.join(os.path.dirname(chain), "live.key.%d" % serial)
    os.link(chain, live_chain)
    os.link(key, live_key)
    g = gk_factory(server__tls_cert=live_chain, server__tls_key=live_key,
                   **kw)
    g.live_chain, g.live_key, g.serial = live_chain, live_key, serial
    g.base = "https://127.0.0.1:%d" % g.port
    return g


def served_serial(port, ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    with ssl.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            der = t.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                          "-serial"], input=der, capture_output=True,
                         timeout=10)
    return int(out.stdout.decode().strip().split("=")[1], 16)


def s_client(port, *args):
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-servername", "localhost"] +
                       list(args), input="", capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_https_v1_with_curl_and_requests(gk_factory, ca):
    g = tls_gk(gk_factory, ca).start()
    # upload over HTTPS, then read it back through the 302, all verified
    r = requests.get(g.url("app", g.sign("app", "/docs/a.txt", "PUT_Object")),
                     headers={"Origin": ORIGIN}, verify=ca.ca, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
    ret = r.json()["clientReturn"]
    assert ret["url"].startswith("https://127.0.0.1:%d/" % g.port)
    up = requests.post(ret["url"], data=ret["fields"],
                       files={"file": ("a.txt", b"over tls", "text/plain")},
                       verify=ca.ca, timeout=30)
    assert up.status_code == 201, up.text
    url = g.url("uploads", g.sign("uploads", "/docs/a.txt", "GET_Object"))
    out = subprocess.run(["curl", "-sS", "--cacert", ca.ca, "-H",
                          "Origin: " + ORIGIN, "-D", "-", "-o", "/dev/null",
                          url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    head = out.stdout.lower()
    assert head.startswith("http/1.1 302"), out.stdout
    assert "strict-transport-security: max-age=31536000" in head
    loc = [l.split(": ", 1)[1].strip() for l in out.stdout.splitlines()
           if l.lower().startswith("location:")][0]
    assert loc.startswith("https://127.0.0.1:%d/_data/" % g.port)
    body = subprocess.run(["curl", "-sS", "--fail", "--cacert", ca.ca, loc],
                          capture_output=True, timeout=30)
    assert body.returncode == 0 and body.stdout == b"over tls", body.stderr
    # verification is really on: without the CA both clients refuse
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(g.base + "/healthz", timeout=10)
    bad = subprocess.run(["curl", "-sS", g.base + "/healthz"],
                         capture_output=True, timeout=30)
    assert bad.returncode == 60     # peer certificate cannot be authenticated
    # plain HTTP on the HTTPS port gets no answer
    c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
    with pytest.raises((http.client.HTTPException, OSError)):
        c.request("GET", "/healthz")
        c.getresponse().read()
    c.close()
    rows = g.audit_rows("operation = 'GET_Object'")
    assert [r["status"] for r in rows if r["protocol"] == "v1"] == [302]


def test_old_protocols_and_weak_ciphers_refused(gk_factory, ca):
    # an RSA certificate, so RSA key transport and ECDHE-RSA CBC suites
    # would be possible if the server allowed them
    g = tls_gk(gk_factory, ca, kind="rsa").start()
    # the client is told to allow everything (SECLEVEL=0), so a failed
    # handshake is the server's refusal
    for proto in ("-tls1", "-tls1_1"):
        rc, out = s_client(g.port, proto, "-cipher", "ALL@SECLEVEL=0")
        assert rc != 0 and "Cipher is (NONE)" in out, (proto, out)
    for weak in ("AES128-SHA", "AES256-GCM-SHA384", "AES128-SHA256",
                 "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384",
                 "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-SHA"):
        rc, out = s_client(g.port, "-tls1_2", "-cipher",
                           weak + "@SECLEVEL=0")
        assert rc != 0 and "Cipher is (NONE)" in out, (weak, out)
    rc, out = s_client(g.port, "-tls1_2")
    assert rc == 0 and "Cipher is ECDHE-RSA-AES128-GCM-SHA256" in out, out
    rc, out = s_client(g.port, "-tls1_2", "-cipher",
                       "ECDHE-RSA-CHACHA20-POLY1305")
    assert rc == 0 and "CHACHA20-POLY1305" in out, out
    rc, out = s_client(g.port, "-tls1_3")
    assert rc == 0 and "TLSv1.3" in out, out
    rc, out = s_client(g.port, "-tls1_3", "-CAfile", ca.ca, "-verify_return_error")
    assert rc == 0 and "Verify return code: 0 (ok)" in out, out


def test_redirect_listener(gk_factory, ca):
    rport = free_port()
    g = tls_gk(gk_factory, ca, server__redirect_port=str(rport),
               server__head_timeout="2")
    g.start()
    # a head dripped a line a second is cut off by head_timeout, as on
    # the main listener, not held while the client keeps sending
    out, closed, took = exchange(rport, None, timeout=20, chunks=[
        b"GET / HTTP/1.1\r\n"] + [b"X-A: b\r\n"] * 15, gap=1.0)
    assert closed and out == b"" and took < 2 + 4, (closed, out, took)
    c = http.client.HTTPConnection("127.0.0.1", rport, timeout=10)
    c.request("GET", "/app?path=/x/y.txt&operation=GET_Object",
              headers={"Host": "evil.example"})
    r = c.getresponse()
    r.read()
    assert r.status == 301
    assert r.getheader("Location") == (
        "https://127.0.0.1:%d/app?path=/x/y.txt&operation=GET_Object" % g.port)
    c.close()
    c = http.client.HTTPConnection("127.0.0.1", rport, timeout=10)
    c.request("POST", "/_upload", body=b"x" * 100)
    r = c.getresponse()
    r.read()
    assert r.status == 308 and r.getheader("Location").endswith("/_upload")
    c.close()
    # a target the main listener refuses is refused here too, with a JSON
    # reason, never copied into Location
    for target, status in ((b"/a\x01b", 400), ("/caf\u00e9".encode(), 400),
                           (b"/a\x7f", 400), (b"*", 400),
                           (b"/" + b"a" * 17000, 414)):
        out, _, _ = exchange(rport, b"OPTIONS " + target + b" HTTP/1.1\r\n"
                             b"Host: x\r\n\r\n", timeout=10)
        (st, h, body), = responses(out)
        assert (st, "location" in h) == (status, False), target
        assert h["content-type"] == "application/json", target
        assert json.loads(body)["error"] is True, target
    # the redirect is not a decision: nothing audited, nothing served
    assert g.audit_rows() == []
    # followed by curl, with verification, to the real answer
    out = subprocess.run(["curl", "-sS", "-L", "--cacert", ca.ca,
                          "http://127.0.0.1:%d/healthz" % rport],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and '"ok"' in out.stdout, out


def check_config_of(tmp_path, text):
    cfg = tmp_path / "bad.ini"
    cfg.write_text(text)
    return subprocess.run([BIN, "check-config", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=30)


def test_tls_settings_validated(ca, tmp_path):
    p = check_config_of(tmp_path, "[server]\nredirect_port = 8081\n")
    assert p.returncode == 1
    assert "redirect_port needs tls_cert and tls_key" in p.stderr
    chain, key, _ = ca.leaf()
    p = check_config_of(tmp_path, "[server]\ntls_cert = %s\n" % chain)
    assert p.returncode == 1 and "tls_cert and tls_key go together" in p.stderr
    p = check_config_of(tmp_path, "[server]\ntls_cert = %s\ntls_key = %s\n"
                        "port = 8443\nredirect_port = 8443\n" % (chain, key))
    assert p.returncode == 1 and "redirect_port must differ" in p.stderr


def test_ocsp_stapled(gk_factory, ca):
    chain, key, serial = ca.leaf()
    resp = ca.ocsp(chain.replace(".chain", ".pem"), serial)
    g = gk_factory(server__tls_cert=chain, server__tls_key=key,
                   server__tls_ocsp=resp).start()
    rc, out = s_client(g.port, "-status", "-CAfile", ca.ca)
    assert rc == 0, out
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out, out
    # a response for another certificate is refused at start
    other_chain, other_key, _ = ca.leaf()
    g2 = gk_factory(server__tls_cert=other_chain, server__tls_key=other_key,
                    server__tls_ocsp=resp)
    p = g2.run("check-config", check=False)
    assert p.returncode == 1
    assert "the response is not for tls_cert's certificate" in p.stdout + p.stderr


def test_check_config_reports_certificate(gk_factory, ca):
    g = tls_gk(gk_factory, ca)
    p = g.run("check-config")
    assert "tls certificate: subject CN=localhost" in p.stdout
    assert "tls certificate: names localhost 127.0.0.1" in p.stdout
    assert "2 in chain, expires " in p.stdout
    # a one-day certificate
    assert "expires in less than 14 days" in p.stdout
    q = g.run("check-config", "--quiet")
    assert "expires in less than 14 days" in q.stderr
    # a key that does not belong to the certificate
    _, other_key, _ = ca.leaf()
    g2 = gk_factory(server__tls_cert=g.live_chain, server__tls_key=other_key)
    p = g2.run("check-config", check=False)
    assert p.returncode == 1
    assert "does not belong to the first certificate" in p.stdout + p.stderr
    s = subprocess.run([BIN, "serve", "--config", g2.config],
                       capture_output=True, text=True, timeout=30)
    assert s.returncode == 1
    # http public_url on a non-loopback listen address
    g3 = gk_factory(server__listen="0.0.0.0",
                    server__public_url="http://files.example")
    p = g3.run("check-config")
    assert "warning: public_url http://files.example is not https://" in p.stdout
    g4 = gk_factory(server__public_url="http://files.example")
    assert "is not https://" not in g4.run("check-config").stdout
    # a thirty-day certificate: no expiry warning
    chain, key, _ = ca.leaf(days=30)
    g5 = gk_factory(server__tls_cert=chain, server__tls_key=key)
    assert "less than 14 days" not in g5.run("check-config").stdout


def test_reload_on_sighup_under_load(gk_factory, ca):
    g = tls_gk(gk_factory, ca, server__threads="2", server__log_level="info",
               rate__requests_per_second="0").start()
    assert served_serial(g.port, ca.ca) == g.serial
    stop = threading.Event()
    counts = {"ok": 0}
    failures = []
    lock = threading.Lock()

    def keepalive():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.get(g.base + "/healthz", verify=ca.ca, timeout=10)
                assert r.status_code == 200, r.status_code
                with lock:
                    counts["ok"] += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(repr(e))

    def fresh():
        while not stop.is_set():
            try:
                r = requests.get(g.base + "/healthz", verify=ca.ca,
                                 timeout=10, headers={"Connection": "close"})
                assert r.status_code == 200, r.status_code
                with lock:
                    counts["ok"] += 1
            except Exception as e:  # noqa: BLE001
                failures.append(repr(e))

    threads = [threading.Thread(target=f) for f in
               (keepalive, keepalive, fresh, fresh)]
    for t in threads:
        t.start()
    serials = []
    try:
        for i in range(4):
            time.sleep(0.5)
            chain, key, serial = ca.leaf(kind="rsa" if i % 2 else "ec")
            # replace the files the config names, as certbot would
            os.replace(chain, g.live_chain)
            os.replace(key, g.live_key)
            g.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while served_serial(g.port, ca.ca) != serial:
                assert time.time() < deadline, "new certificate not served"
                time.sleep(0.05)
            serials.append(serial)
        # a broken file keeps the old certificate, and serving goes on
        with open(g.live_chain, "w") as f:
            f.write("not a certificate\n")
        g.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert served_serial(g.port, ca.ca) == serials[-1]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [], failures[:5]
    assert counts["ok"] > 50, counts
    assert g.stop() == 0
    log = open(g.log).read()
    assert log.count("TLS certificate reloaded") >= 4
    assert "TLS reload failed, keeping the old certificate" in log


def short_leaf(ca, seconds):
    """A leaf for localhost signed by the test CA that expires in the
    given seconds (openssl x509 counts in days; python3-cryptography)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
    import ipaddress
    ca_key = serialization.load_pem_private_key(
        open(ca.ca_key, "rb").read(), None)
    ca_cert = x509.load_pem_x509_certificate(open(ca.ca, "rb").read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    ca.n += 1
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        "localhost")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(1000 + ca.n)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(seconds=seconds))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(ca_key, hashes.SHA256()))
    base = os.path.join(ca.d, "short%d" % ca.n)
    with open(base + ".chain", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM) +
                open(ca.ca, "rb").read())
    with open(base + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return base + ".chain", base + ".key", int(cert.not_valid_after
                                                .replace(tzinfo=datetime
                                                         .timezone.utc)
                                                .timestamp())


def test_certificate_expiring_while_serving(gk_factory, ca):
    """A certificate is checked at start and reload, but it also expires
    while the server runs: a warning at start when it is close, an error
    once it has expired, and its expiry in /metrics for alerting."""
    chain, key, not_after = short_leaf(ca, 4)
    g = gk_factory(server__tls_cert=chain, server__tls_key=key,
                   admin__cidrs="127.0.0.0/8")
    g.base = "https://127.0.0.1:%d" % g.port
    g.start()
    tok = open(os.path.join(g.data, "keys", "admin.token")).read().strip()
    r = requests.get(g.base + "/metrics", verify=ca.ca, timeout=10,
                     headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 200
    assert "gatekeeper_tls_cert_not_after_seconds %d\n" % not_after in r.text
    time.sleep(max(0, not_after - time.time()) + 2.5)
    g.stop()
    log = open(g.log).read()
    assert "the TLS certificate expires at" in log, log
    assert "renew it, then reload" in log
    assert "the TLS certificate expired at" in log, log
    # once, not once a second
    assert log.count("the TLS certificate expired at") == 1
    # plain HTTP has no such metric
    h = gk_factory(admin__cidrs="127.0.0.0/8").start()
    tok = open(os.path.join(h.data, "keys", "admin.token")).read().strip()
    r = requests.get(h.base + "/metrics", timeout=10,
                     headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 200 and "tls_cert" not in r.text


def test_serve_tls_file_problems_one_line(gk_factory, ca):
    """What an operator meets at start: each TLS problem stops serve with
    exit 1 and one line naming the file and why (README: HTTPS)."""
    chain, key, _ = ca.leaf()
    _, other_key, _ = ca.leaf()
    old_chain, old_key, _ = short_leaf(ca, -60)
    d = os.path.dirname(chain)
    empty = os.path.join(d, "empty.pem")
    open(empty, "w").close()
    cases = [
        (chain, os.path.join(d, "missing.key"),
         "tls_key %s: cannot read: No such file or directory" %
         os.path.join(d, "missing.key")),
        (os.path.join(d, "missing.pem"), key,
         "tls_cert %s: cannot read: No such file or directory" %
         os.path.join(d, "missing.pem")),
        (chain, other_key, "tls_key %s does not belong to the first "
         "certificate of tls_cert %s" % (other_key, chain)),
        (chain, empty, "tls_key %s: not an unencrypted PEM private key" %
         empty),
        (old_chain, old_key, "tls_cert %s: the certificate has expired" %
         old_chain),
    ]
    if os.geteuid() != 0:       # root reads any file
        unreadable = os.path.join(d, "unreadable.key")
        with open(unreadable, "w") as f:
            f.write(open(key).read())
        os.chmod(unreadable, 0)
        cases.append((chain, unreadable, "tls_key %s: cannot read: "
                      "Permission denied" % unreadable))
    for cert, k, msg in cases:
        g = gk_factory(server__tls_cert=cert, server__tls_key=k)
        p = subprocess.run([BIN, "serve", "--config", g.config],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and p.stdout == "", (msg, p)
        lines = [ln for ln in p.stderr.splitlines()
                 if " gatekeeper info: " not in ln]
        assert lines == ["gatekeeper serve: " + msg], (msg, p.stderr)
