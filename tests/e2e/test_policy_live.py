"""The customer's policy end to end: countries from a real .mmdb (built
here with Debian's libmaxmind-db-writer-perl), list files, trusted proxies
and spoofing, rate limits, and live reload (HTTP, SIGHUP, under wrk load).

Clients come from several loopback addresses (127.0.0.2, 127.0.0.3, ...):
the client socket is bound to them, so the gatekeeper sees real peers.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse

import requests
from requests.adapters import HTTPAdapter

from conftest import ORIGIN

HERE = os.path.dirname(os.path.abspath(__file__))


def make_mmdb(path, ranges):
    subprocess.run(["perl", os.path.join(HERE, "make_mmdb.pl"), path] +
                   ["%s=%s" % kv for kv in ranges.items()], check=True)
    return path


def send(gk, target, src="127.0.0.1", method="GET", headers=(), body=None):
    """One request from source address src; headers is a list of pairs
    (a name may repeat)."""
    c = http.client.HTTPConnection("127.0.0.1", gk.port, timeout=30,
                                   source_address=(src, 0))
    try:
        c.putrequest(method, target, skip_accept_encoding=True)
        for k, v in headers:
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        return r.status, data, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def v1_target(gk, op="GET_Object", root="app", path="/docs/a.txt"):
    return "/%s?%s" % (root, urllib.parse.urlencode(
        gk.sign(root, path, op), quote_via=urllib.parse.quote))


def v1(gk, src, op="GET_Object", headers=(), **kw):
    path = kw.pop("path", "/docs/" if op == "GET_Bucket" else "/docs/a.txt")
    return send(gk, v1_target(gk, op, path=path, **kw), src,
                headers=[("Origin", ORIGIN)] + list(headers))


class SourceAdapter(HTTPAdapter):
    """requests from a chosen loopback source address."""

    def __init__(self, src, **kw):
        self.src = src
        super().__init__(**kw)

    def init_poolmanager(self, *a, **kw):
        kw["source_address"] = (self.src, 0)
        super().init_poolmanager(*a, **kw)


def session_from(src):
    s = requests.Session()
    s.mount("http://", SourceAdapter(src))
    return s


def row(gk, hdrs):
    rows = gk.audit_rows("request_id = ?", (hdrs["x-request-id"],))
    assert len(rows) == 1
    return rows[0]


def admin_token(gk):
    with open(os.path.join(gk.data, "keys", "admin.token")) as f:
        return f.read().strip()


def reload_http(gk, src="127.0.0.1", token=None):
    tok = admin_token(gk) if token is None else token
    return send(gk, "/admin/reload", src, "POST",
                [("Authorization", "Bearer " + tok)] if tok else [])


# ---- countries ----------------------------------------------------------

def test_countries_allow_deny_override_and_audit(gk_factory, tmp_path):
    db = make_mmdb(str(tmp_path / "c.mmdb"), {
        "127.0.0.2/32": "US", "127.0.0.3/32": "FR", "127.0.0.6/32": "CA"})
    gk = gk_factory(geo__database=db, geo__countries="US CA",
                    geo__countries_put="*", geo__countries_list="US",
                    acl__ip_allow="127.0.0.0/8").start()
    st, body, h = v1(gk, "127.0.0.2")
    assert st == 302
    r = row(gk, h)
    assert (r["country"], r["decision"], r["client_ip"]) == \
        ("US", "allow", "127.0.0.2")

    st, body, h = v1(gk, "127.0.0.3")
    assert st == 403
    assert json.loads(body) == {"msg": "Forbidden: ACL", "error": True}
    r = row(gk, h)
    assert (r["country"], r["decision"], r["status"]) == ("FR", "deny", 403)
    assert r["message"] == "Forbidden: ACL (country FR)"

    # per-operation override: uploads from anywhere
    st, body, h = v1(gk, "127.0.0.3", "PUT_Object")
    assert st == 200, body
    assert row(gk, h)["country"] == "FR"
    # listing is US only: Canada may read objects but not list
    st, _, h = v1(gk, "127.0.0.6", "GET_Bucket")
    assert st == 403
    assert row(gk, h)["country"] == "CA"
    assert v1(gk, "127.0.0.6")[0] == 302

    # not in the database, but loopback: the IP lists decide
    st, _, h = v1(gk, "127.0.0.4")
    assert st == 302
    assert row(gk, h)["country"] is None


def test_upload_endpoint_checks_the_country(gk_factory, tmp_path):
    db = make_mmdb(str(tmp_path / "c.mmdb"), {
        "127.0.0.2/32": "US", "127.0.0.3/32": "FR"})
    gk = gk_factory(geo__database=db, geo__countries="US").start()
    st, body, _ = v1(gk, "127.0.0.2", "PUT_Object", path="/in/r.txt")
    assert st == 200, body
    ret = json.loads(body)["clientReturn"]
    files = {"file": ("r.txt", b"hello", "text/plain")}
    # the form travels to a client in France: refused there
    r = session_from("127.0.0.3").post(ret["url"], data=ret["fields"],
                                       files=files, timeout=30)
    assert r.status_code == 403
    assert r.json() == {"msg": "Forbidden: ACL", "error": True}
    a = gk.audit_for(r)[0]
    assert (a["protocol"], a["country"]) == ("upload", "FR")
    r = session_from("127.0.0.2").post(ret["url"], data=ret["fields"],
                                       files=files, timeout=30)
    assert r.status_code == 201, r.text
    assert gk.audit_for(r)[0]["country"] == "US"


def test_unknown_country_behind_proxy(gk_factory, tmp_path):
    db = make_mmdb(str(tmp_path / "c.mmdb"), {"198.51.100.0/24": "CA"})
    allow = "127.0.0.0/8, 198.51.100.0/24, 203.0.113.0/24"
    gk = gk_factory(geo__database=db, acl__ip_allow=allow,
                    acl__trusted_proxies="127.0.0.1/32").start()
    st, _, h = v1(gk, "127.0.0.1", headers=[
        ("X-Forwarded-For", "198.51.100.7")])
    assert st == 302
    r = row(gk, h)
    assert (r["client_ip"], r["country"]) == ("198.51.100.7", "CA")
    # a public address the database does not know: denied by default
    st, _, h = v1(gk, "127.0.0.1", headers=[
        ("X-Forwarded-For", "203.0.113.9")])
    assert st == 403
    r = row(gk, h)
    assert (r["client_ip"], r["country"]) == ("203.0.113.9", None)
    assert r["message"] == "Forbidden: ACL (country unknown)"

    gk2 = gk_factory(geo__database=db, acl__ip_allow=allow,
                     geo__unknown="allow",
                     acl__trusted_proxies="127.0.0.1/32").start()
    assert v1(gk2, "127.0.0.1", headers=[
        ("X-Forwarded-For", "203.0.113.9")])[0] == 302


def test_missing_or_bad_database_is_a_startup_error(gk_factory, tmp_path):
    gk = gk_factory(geo__database=str(tmp_path / "missing.mmdb"))
    p = gk.run("serve", check=False)
    assert p.returncode != 0
    assert "[geo] database %s: cannot open" % (tmp_path / "missing.mmdb") \
        in p.stderr
    p = gk.run("check-config", check=False)
    assert p.returncode == 1 and "cannot open" in p.stderr

    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a maxmind database\n" * 10)
    gk2 = gk_factory(geo__database=str(junk))
    p = gk2.run("serve", check=False)
    assert p.returncode != 0 and "junk.mmdb: cannot open" in p.stderr


def test_check_config_reports_policy(gk_factory, tmp_path):
    db = make_mmdb(str(tmp_path / "c.mmdb"), {"198.51.100.0/24": "CA"})
    gk = gk_factory(geo__database=db, geo__countries="*",
                    acl__ip_allow="0.0.0.0/0")
    p = gk.run("check-config")
    assert "# policy: countries from %s" % db in p.stdout
    assert "# policy: countries get: *" in p.stdout
    assert ("warning: ip_allow covers every IPv4 address and there is no "
            "country limit") in p.stdout
    gk2 = gk_factory()
    p = gk2.run("check-config", "--quiet")
    assert p.stdout == ""
    assert "warning: no [geo] database: country checks are off" in p.stderr
    p = gk2.run("check-config")
    assert "# policy: countries: off" in p.stdout
    assert "# policy: ip_allow 2 CIDRs (0 list files)" in p.stdout


# ---- list files ---------------------------------------------------------

def test_list_files(gk_factory, tmp_path):
    allow = tmp_path / "allow.txt"
    deny = tmp_path / "deny.txt"
    allow.write_text("# our offices\n127.0.0.0/29\n127.0.0.8/30 # lab\n")
    deny.write_text("127.0.0.3\n\n127.0.0.0/29 # overlaps the allow list\n"
                    "127.0.0.3\n".replace("127.0.0.0/29", "127.0.0.5/32"))
    gk = gk_factory(acl__ip_allow="", acl__ip_allow_files=str(allow),
                    acl__ip_deny_files=str(deny))
    p = gk.run("check-config")
    assert "# policy: ip_allow 2 CIDRs (1 list files), ip_deny 3 CIDRs " \
        "(1 list files)" in p.stdout
    gk.start()
    assert v1(gk, "127.0.0.2")[0] == 302
    assert v1(gk, "127.0.0.9")[0] == 302
    assert v1(gk, "127.0.0.3")[0] == 403
    assert v1(gk, "127.0.0.5")[0] == 403
    assert v1(gk, "127.0.0.12")[0] == 403
    gk.stop()

    deny.write_text("127.0.0.3\n# fine\n127.0.0.300\n")
    p = gk.run("check-config", check=False)
    assert p.returncode == 1
    assert "ip_deny_files: %s:3: bad CIDR '127.0.0.300'" % deny in p.stderr
    p = gk.run("serve", check=False)
    assert p.returncode != 0 and "%s:3: bad CIDR" % deny in p.stderr


# ---- trusted proxies and spoofing -----------------------------------------

def test_forwarded_headers_from_untrusted_peer_are_ignored(gk_factory):
    gk = gk_factory(acl__ip_deny="127.0.0.3").start()
    # a denied client claims to be someone else
    for name, value in (("X-Forwarded-For", "127.0.0.2"),
                        ("Forwarded", "for=127.0.0.2")):
        st, _, h = v1(gk, "127.0.0.3", headers=[(name, value)])
        assert st == 403
        r = row(gk, h)
        assert r["client_ip"] == "127.0.0.3"
        assert "forwarded header from an untrusted peer ignored" in \
            r["message"]
    # an allowed client cannot blame a denied one either
    st, _, h = v1(gk, "127.0.0.2", headers=[
        ("X-Forwarded-For", "127.0.0.3")])
    assert st == 302
    assert row(gk, h)["client_ip"] == "127.0.0.2"


def test_trusted_proxy_rightmost_untrusted(gk_factory):
    gk = gk_factory(acl__trusted_proxies="127.0.0.1/32, 10.0.0.0/8",
                    acl__ip_allow="127.0.0.0/8, 198.51.100.0/24",
                    acl__ip_deny="198.51.100.66").start()

    def client(headers, src="127.0.0.1"):
        st, _, h = v1(gk, src, headers=headers)
        return st, row(gk, h)["client_ip"]

    # the client forged the leftmost entry; the load balancer appended
    # the real one; an inner proxy (10/8) appended its own
    assert client([("X-Forwarded-For",
                    "198.51.100.66, 198.51.100.7, 10.0.0.2")]) == \
        (302, "198.51.100.7")
    assert client([("X-Forwarded-For", "198.51.100.7, 198.51.100.66")]) == \
        (403, "198.51.100.66")
    # several header lines are one list
    assert client([("X-Forwarded-For", "198.51.100.66"),
                   ("X-Forwarded-For", "198.51.100.7")]) == \
        (302, "198.51.100.7")
    # garbage where the client should be: nobody, denied
    assert client([("X-Forwarded-For", "198.51.100.7, not-an-ip")]) == \
        (403, "::")
    # Forwarded is not the configured header: not read
    assert client([("Forwarded", "for=198.51.100.66")]) == \
        (302, "127.0.0.1")
    # the same headers from an untrusted peer are ignored
    assert client([("X-Forwarded-For", "198.51.100.66")],
                  src="127.0.0.2") == (302, "127.0.0.2")


def test_trusted_proxy_rfc7239_forwarded(gk_factory):
    gk = gk_factory(acl__trusted_proxies="127.0.0.1/32",
                    acl__forwarded_header="forwarded",
                    acl__ip_allow="127.0.0.0/8, 2001:db8::/32",
                    acl__ip_deny="2001:db8::66").start()
    st, _, h = v1(gk, "127.0.0.1", headers=[
        ("Forwarded", 'for="[2001:db8::66]", for="[2001:db8::5]:4711";'
                      'proto=https;by=127.0.0.1'),
        ("X-Forwarded-For", "2001:db8::66")])
    assert st == 302
    assert row(gk, h)["client_ip"] == "2001:db8::5"
    st, _, h = v1(gk, "127.0.0.1", headers=[
        ("Forwarded", 'for=unknown')])
    assert st == 403 and row(gk, h)["client_ip"] == "::"


# ---- rate limits -----------------------------------------------------------

def test_rate_limit_429(gk_factory):
    gk = gk_factory(rate__requests_per_second="1", rate__burst="3",
                    rate__exempt="").start()
    got = [v1(gk, "127.0.0.2") for _ in range(10)]
    statuses = [g[0] for g in got]
    assert statuses[:3] == [302, 302, 302]
    assert 429 in statuses
    st, body, h = next(g for g in got if g[0] == 429)
    assert json.loads(body) == {"msg": "Too Many Requests", "error": True}
    assert int(h["retry-after"]) >= 1
    r = row(gk, h)
    assert (r["status"], r["decision"], r["client_ip"]) == \
        (429, "deny", "127.0.0.2")
    # another address has its own bucket
    assert v1(gk, "127.0.0.3")[0] == 302


def test_rate_limit_denied_requests(gk_factory):
    gk = gk_factory(rate__requests_per_second="0",
                    rate__denied_per_minute="1", rate__denied_burst="2",
                    rate__exempt="").start()
    bad = v1_target(gk).replace("hmac=", "hmac=00")
    for _ in range(2):
        assert send(gk, bad, "127.0.0.2",
                    headers=[("Origin", ORIGIN)])[0] == 401
    # guessing is slowed down: even a good request waits now
    st, _, h = v1(gk, "127.0.0.2")
    assert st == 429 and int(h["retry-after"]) >= 1
    assert v1(gk, "127.0.0.3")[0] == 302


def test_loopback_exempt_by_default(gk_factory):
    gk = gk_factory(rate__requests_per_second="1", rate__burst="1").start()
    assert [v1(gk, "127.0.0.2")[0] for _ in range(5)] == [302] * 5


# ---- live reload ------------------------------------------------------------

def test_reload_with_missing_database_keeps_policy(gk_factory, tmp_path):
    db = tmp_path / "c.mmdb"
    make_mmdb(str(db), {"127.0.0.2/32": "US", "127.0.0.3/32": "FR"})
    gk = gk_factory(geo__database=str(db), geo__countries="US").start()
    assert v1(gk, "127.0.0.3")[0] == 403
    os.rename(str(db), str(db) + ".gone")
    st, body, _ = reload_http(gk)
    assert st == 422
    assert "[geo] database %s: cannot open" % db in json.loads(body)["msg"]
    # still judged by the old policy (and its open database)
    assert v1(gk, "127.0.0.3")[0] == 403
    assert v1(gk, "127.0.0.2")[0] == 302
    # a new database: France is now US, say
    make_mmdb(str(db), {"127.0.0.3/32": "US"})
    assert reload_http(gk)[0] == 200
    st, _, h = v1(gk, "127.0.0.3")
    assert st == 302 and row(gk, h)["country"] == "US"


def test_reload_http_and_sighup(gk_factory, tmp_path):
    deny = tmp_path / "deny.txt"
    deny.write_text("# nothing yet\n")
    gk = gk_factory(acl__ip_deny_files=str(deny)).start()
    assert v1(gk, "127.0.0.2")[0] == 302

    deny.write_text("127.0.0.2\n")
    assert v1(gk, "127.0.0.2")[0] == 302          # not before a reload
    # refused: no token, a wrong token, a non-admin address, GET
    assert reload_http(gk, token="")[0] == 401
    assert reload_http(gk, token="x" * 32)[0] == 401
    assert reload_http(gk, src="127.0.0.2")[0] == 403
    assert send(gk, "/admin/reload")[0] == 405
    assert v1(gk, "127.0.0.2")[0] == 302
    st, body, h = reload_http(gk)
    assert st == 200, body
    msg = json.loads(body)["msg"]
    assert msg.startswith("policy reloaded (#1): allow 2, deny 1")
    assert v1(gk, "127.0.0.2")[0] == 403
    assert v1(gk, "127.0.0.3")[0] == 302

    # a bad file: the old policy stays, one clear line
    deny.write_text("127.0.0.2\n127.0.0.3/33\n")
    st, body, h = reload_http(gk)
    assert st == 422
    msg = json.loads(body)["msg"]
    assert msg.startswith("reload failed, the old policy stays in force: ")
    assert "%s:2: bad CIDR '127.0.0.3/33'" % deny in msg
    assert v1(gk, "127.0.0.2")[0] == 403
    assert v1(gk, "127.0.0.3")[0] == 302
    with open(gk.log) as f:
        assert sum("reload failed" in line for line in f) == 1

    # SIGHUP, with a bad file (waited for: its audit row) and then a good one
    def sighup_rows():
        return [r for r in gk.audit_rows("operation = 'reload'")
                if (r["message"] or "").startswith("SIGHUP: ")]
    gk.proc.send_signal(signal.SIGHUP)
    for _ in range(200):
        if sighup_rows():
            break
        time.sleep(0.05)
    assert len(sighup_rows()) == 1
    assert v1(gk, "127.0.0.2")[0] == 403          # the old policy stays
    deny.write_text("127.0.0.3\n")
    gk.proc.send_signal(signal.SIGHUP)
    for _ in range(200):
        if v1(gk, "127.0.0.3")[0] == 403:
            break
        time.sleep(0.05)
    assert v1(gk, "127.0.0.3")[0] == 403
    assert v1(gk, "127.0.0.2")[0] == 302

    rows = gk.audit_rows("operation = 'reload'")
    kinds = [(r["protocol"], r["status"], r["decision"]) for r in rows]
    assert ("admin", 200, "allow") in kinds
    assert ("admin", 422, "error") in kinds
    assert ("admin", 401, "deny") in kinds
    assert ("admin", 403, "deny") in kinds
    sig = [r for r in rows if (r["message"] or "").startswith("SIGHUP: ")]
    assert [r["decision"] for r in sig] == ["error", "allow"]
    assert "reload failed" in sig[0]["message"]
    assert "127.0.0.3/33" in sig[0]["message"]
    assert "reload failed" not in sig[1]["message"]


def test_reload_under_load(gk_factory, tmp_path):
    """wrk hammers an allowed URL while the policy is swapped 50 times;
    after each swap a probe from 127.0.0.3 sees the new rule. No request
    of the load fails or is judged by anything but an allowing policy."""
    deny = tmp_path / "deny.txt"
    deny.write_text("")
    gk = gk_factory(acl__ip_deny_files=str(deny)).start()
    url = gk.base + v1_target(gk)
    wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d120s", "-H",
                            "Origin: " + ORIGIN, url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        # wait until the load is really running
        for _ in range(200):
            if len(gk.audit_rows("id IN (SELECT id FROM audit WHERE "
                                 "client_ip = '127.0.0.1' LIMIT 50)")) >= 50:
                break
            time.sleep(0.05)
        for i in range(50):
            denied = i % 2 == 0
            deny.write_text("# swap %d\n%s\n" % (i, "127.0.0.3" if denied
                                                 else ""))
            if i % 5 == 4:
                before = len(gk.audit_rows("operation = 'reload'"))
                gk.proc.send_signal(signal.SIGHUP)
                for _ in range(400):
                    if len(gk.audit_rows("operation = 'reload'")) > before:
                        break
                    time.sleep(0.01)
            else:
                st, body, _ = reload_http(gk)
                assert st == 200, body
            assert v1(gk, "127.0.0.3")[0] == (403 if denied else 302), i
    finally:
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=60)
    assert wrk.returncode == 0, out
    m = re.search(r"(\d+) requests in", out)
    assert m and int(m.group(1)) > 100, out
    assert "Non-2xx or 3xx" not in out, out
    assert "Socket errors" not in out, out
    rows = gk.audit_rows("client_ip = '127.0.0.1' AND protocol = 'v1'")
    assert len(rows) >= int(m.group(1))
    assert {(r["status"], r["decision"]) for r in rows} == {(302, "allow")}
    reloads = gk.audit_rows("operation = 'reload' AND decision = 'allow'")
    assert len(reloads) == 50


def metric(gk, name):
    """A counter from /metrics (admin addresses only)."""
    st, body, _ = send(gk, "/metrics", "127.0.0.1", "GET", [])
    assert st == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[-1])
    raise AssertionError("no %s in /metrics" % name)


def test_metrics_count_rate_limits_and_reloads(gk_factory):
    gk = gk_factory(rate__requests_per_second="1", rate__burst="2",
                    rate__exempt="127.0.0.1/32").start()
    # /metrics and /healthz answer admin addresses only
    assert send(gk, "/metrics", "127.0.0.2", "GET", [])[0] == 403
    assert send(gk, "/healthz", "127.0.0.1", "GET", [])[0] == 200
    assert metric(gk, "gatekeeper_rate_limited_total") == 0
    got = [v1(gk, "127.0.0.2")[0] for _ in range(6)]
    assert metric(gk, "gatekeeper_rate_limited_total") == got.count(429) > 0
    assert metric(gk, 'gatekeeper_decisions_total{decision="allow"}') == \
        got.count(302)
    assert reload_http(gk)[0] == 200
    assert metric(gk, 'gatekeeper_reloads_total{result="ok"}') == 1
    with open(gk.config, "a") as f:
        f.write("[geo]\ndatabase = /nonexistent.mmdb\n")
    assert reload_http(gk)[0] == 422
    assert metric(gk, 'gatekeeper_reloads_total{result="failed"}') == 1
