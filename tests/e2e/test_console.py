"""The customer's console at /admin/ in Debian's Chromium, and its API from
outside the browser: sign-in and the session cookie, CSRF, the admin
CIDRs, audit filters, paging, live tail, export, charts (the drawn
elements' numbers against the audit database), verify now on a clean and a
tampered log, the policy view, tester and reload, and no CSP violation."""
import csv
import io
import json
import os
import time

import requests

from browserutil import VendorKey, ensure_playwright, run_node
from conftest import ORIGIN

GK_ID = "gk-console"


def traffic(g, vk):
    """Allowed listings, bad signatures, bad origins, v2 listings."""
    rid = None
    for i in range(20):
        r = g.get("app", "/%s/" % ("alpha" if i % 2 else "beta"),
                  "GET_Bucket")
        assert r.status_code == 200
        rid = rid or r.headers["X-Request-Id"]
    for i in range(8):
        params = g.sign("app", "/alpha/r%d.txt" % i, "GET_Object")
        params["hmac"] = "f" * 64
        r = requests.get(g.url("app", params), headers={"Origin": ORIGIN},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 401
    for origin in ("https://evil.example", "=HYPERLINK(1)", "null",
                   "https://x.example"):
        r = g.get("app", "/alpha/", "GET_Bucket", origin=origin)
        assert r.status_code == 403
    # a path with terminal escapes: refused, audited as sent
    r = g.get("app", "/alpha/t\x1b]0;owned\x07.txt", "GET_Object")
    assert r.status_code == 400
    # the v2 listings in a second of their own, for the time filter
    time.sleep(1.1 - time.time() % 1)
    t_from = int(time.time())
    for _ in range(3):
        tok = vk.token(GK_ID, "list", prefix="docs/", sub="user-7")
        r = requests.get(g.base + "/v2/list/docs/", headers={
            "Authorization": "Bearer " + tok, "Origin": ORIGIN}, timeout=10)
        assert r.status_code == 200
    t_to = int(time.time()) + 1
    time.sleep(t_to - time.time() + 0.05)
    return rid, t_from, t_to


def db_rows(g, where="1=1", args=()):
    return g.audit_rows(where, args)


def test_console_in_chromium(gk_factory, tmp_path):
    ensure_playwright()
    vk = VendorKey()
    g = gk_factory(gate__id=GK_ID, acl__ip_deny="192.0.2.1",
                   audit__checkpoint_records="10", **vk.settings()).start()
    outside = gk_factory(admin__cidrs="127.0.0.9/32").start()
    rid, t_from, t_to = traffic(g, vk)

    def utc(t):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    token = open(os.path.join(g.data, "keys", "admin.token")).read().strip()
    cfg = {"base": g.base, "origin": ORIGIN, "adminToken": token,
           "v1Key": g.v1_key.decode(), "auditDb": g.audit_db,
           "config": g.config, "requestId": rid, "kid": vk.kid,
           "rangeFrom": utc(t_from), "rangeTo": utc(t_to),
           "newDeny": "192.0.2.1, 127.0.0.66", "newDenyIp": "127.0.0.66",
           "outside": outside.base,
           "shots": os.environ.get("GK_SCREENSHOTS", str(tmp_path)),
           "tests": [
               {"ip": "127.0.0.5", "origin": ORIGIN, "op": "GET_Object"},
               {"ip": "10.9.9.9", "origin": ORIGIN, "op": "GET_Object"},
               {"ip": "192.0.2.1", "origin": ORIGIN, "op": "GET_Bucket"},
               {"ip": "127.0.0.5", "origin": "https://evil.example",
                "op": "GET_Object"},
               {"ip": "10.9.9.9", "origin": ORIGIN, "op": "upload"},
               {"ip": "192.0.2.1", "origin": ORIGIN, "op": "upload"}]}
    cfgf = tmp_path / "console.json"
    cfgf.write_text(json.dumps(cfg))
    seen = run_node("console.mjs", str(cfgf), timeout=300)

    assert seen["csp"] == [] and seen["errors"] == [], seen
    # sign-in
    assert seen["login_visible"] and seen["app_hidden"]
    assert seen["api_without"] == 401
    assert seen["wrong_token"] == "Unauthorized: admin token required"
    assert seen["cookies"] == [{"name": "gk_console", "secure": True,
                                "httpOnly": True, "sameSite": "Strict",
                                "path": "/admin/"}]
    assert seen["doc_cookie"] == ""

    # filters: exactly the matching rows (the newest page of 500 holds all)
    def same_as_db(shown, where, args=()):
        assert shown, where
        top = max(r["id"] for r in shown)
        want = [r["id"] for r in db_rows(g, where + " AND id <= ?",
                                         tuple(args) + (top,))]
        assert sorted(r["id"] for r in shown) == want, where
    same_as_db(seen["f_deny"], "decision = 'deny'")
    assert all(r["decision"] == "deny" for r in seen["f_deny"])
    same_as_db(seen["f_status"], "status = 401")
    same_as_db(seen["f_prefix"], "path >= '/beta/' AND path < '/beta0'")
    assert all(r["key"].startswith("/beta/") for r in seen["f_prefix"])
    same_as_db(seen["f_sub"], "sub = 'user-7'")
    assert len(seen["f_sub"]) == 3
    same_as_db(seen["f_ip"], "operation = 'GET_Bucket' AND decision = "
               "'allow'")
    assert [r["id"] for r in seen["f_reqid"]] == \
        [r["id"] for r in db_rows(g, "request_id = ?", (rid,))]
    assert seen["f_bad_ip_status"] == "Bad Request: invalid 'ip' param"
    # the time range holds exactly the v2 listings (a second of their own)
    same_as_db(seen["f_range"], "time_us >= ? AND time_us < ?",
               (t_from * 1000000, t_to * 1000000))
    assert [r["op"] for r in seen["f_range"]] == ["GET_Bucket"] * 3
    same_as_db(seen["f_kid"], "kid = ?", (vk.kid,))
    assert len(seen["f_kid"]) == 3
    # loopback has no country: a country filter finds nothing
    assert seen["f_country"] == [] and not db_rows(g, "country = 'US'")
    assert seen["f_country_status"].startswith("0 record(s)")

    # paging
    p1, p2 = seen["page1"], seen["page2"]
    assert len(p1) == 25 and seen["older_enabled"]
    assert p2 and max(r["id"] for r in p2) < min(r["id"] for r in p1)
    assert "page 2" in seen["page2_status"]
    assert len(seen["back_to_1"]) == 25
    assert min(seen["back_to_1"]) >= min(r["id"] for r in p1)

    # live tail
    assert seen["tail_request_status"] == 200
    assert [(r["op"], r["status"], r["fresh"]) for r in seen["tail_rows"]] \
        == [("GET_Bucket", 200, True)]

    # export: the whole filter, CSV (formulas defused) and JSON lines
    c = seen["export_csv"]
    assert c["name"].endswith(".csv")
    got = list(csv.DictReader(io.StringIO(c["text"])))
    assert got and all(r["decision"] == "deny" for r in got)
    top = max(int(r["id"]) for r in got)
    want = db_rows(g, "decision = 'deny' AND id <= ?", (top,))
    assert sorted(int(r["id"]) for r in got) == [r["id"] for r in want]
    assert "'=HYPERLINK(1)" in [r["origin"] for r in got]
    # control characters as U+FFFD, as the CLI's CSV
    assert "\x1b" not in c["text"] and "\x07" not in c["text"]
    assert "/alpha/t\ufffd]0;owned\ufffd.txt" in [r["path"] for r in got]
    j = seen["export_json"]
    assert j["name"].endswith(".jsonl")
    lines = [json.loads(x) for x in j["text"].splitlines()]
    assert sorted(x["id"] for x in lines) == [r["id"] for r in want]
    assert "=HYPERLINK(1)" in [x["origin"] for x in lines]

    # charts: the drawn numbers are the database's
    before = db_rows(g, "time_us < ?", (seen["charts_from_us"],))
    drawn = {}
    for r in seen["chart_time"]:
        drawn[r["d"]] = drawn.get(r["d"], 0) + r["n"]
        assert (r["h"] > 0) == (r["n"] > 0)
    for d in ("allow", "deny", "error"):
        assert drawn.get(d, 0) == sum(1 for r in before if
                                      r["decision"] == d), d
    ips = {}
    for r in before:
        ips[r["client_ip"] or "(unknown)"] = ips.get(r["client_ip"] or
                                                     "(unknown)", 0) + 1
    assert seen["chart_ips"][0] == {"key": "127.0.0.1",
                                    "n": ips["127.0.0.1"],
                                    "w": seen["chart_ips"][0]["w"]}
    assert seen["chart_countries"][0]["key"] == "--"
    assert seen["chart_countries"][0]["n"] == len(before)
    reasons = {}
    for r in before:
        if r["decision"] == "deny":
            reasons[r["message"]] = reasons.get(r["message"], 0) + 1
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(x["key"], x["n"]) for x in seen["chart_denials"]] == top
    widths = [x["w"] for x in seen["chart_denials"]]
    assert widths == sorted(widths, reverse=True)

    # integrity
    assert seen["instance"] == db_rows(g)[0]["instance_id"]
    cps = [c for c in g.audit_checkpoints()
           if c["time_us"] < seen["charts_to_us"] + 60 * 1000000]
    assert cps and seen["checkpoint"] in ["seq %d" % c["seq"] for c in cps]
    assert seen["checkpoint_time"].endswith("Z")
    assert seen["verify_clean"] == "OK, the chain verifies"
    assert seen["verify_tampered"] == "NOT OK"
    assert any("row 3" in p or "seq 3" in p for p in seen["problems"]), \
        seen["problems"]
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 1 and "NOT OK" in p.stdout

    # policy
    assert seen["settings"]["acl.ip_deny"] == "192.0.2.1"
    assert seen["settings"]["acl.ip_allow"] == "127.0.0.0/8, ::1/128"
    t = seen["tests"]
    assert (t[0]["decision"], t[0]["rule"]) == \
        ("allow", "decided by: every check passed")
    assert (t[1]["decision"], t[1]["rule"]) == \
        ("deny", "decided by: not in ip_allow")
    assert (t[2]["decision"], t[2]["rule"]) == ("deny", "decided by: ip_deny")
    assert (t[3]["decision"], t[3]["rule"]) == \
        ("deny", "decided by: not in acl.origins")
    assert t[3]["verdict"].endswith("Forbidden: bad origin")
    assert (t[4]["decision"], t[4]["rule"]) == \
        ("allow", "decided by: every check passed")
    # uploads skip only the allow list: the deny list still wins
    assert (t[5]["decision"], t[5]["rule"]) == ("deny", "decided by: ip_deny")
    assert seen["reload_msg"].startswith("policy reloaded")
    assert ["acl.ip_deny", "192.0.2.1", "192.0.2.1, 127.0.0.66"] in \
        seen["changes"]
    assert seen["after_reload"] == "decided by: ip_deny"
    assert seen["after_logout"] == 401
    # refused outside the admin CIDRs
    assert seen["outside_status"] == 403
    assert json.loads(seen["outside_body"])["msg"] == "Forbidden"

    # what the console did is in the audit, under protocol admin
    ops = [(r["operation"], r["status"]) for r in db_rows(
        g, "protocol = 'admin'")]
    for want_op in (("login", 401), ("login", 200), ("reload", 200),
                    ("verify", 202), ("verify_result", 200), ("logout", 200),
                    ("GET_Stats", 200)):
        assert want_op in ops, (want_op, ops)
    # each check's outcome is a record of its own: clean, then tampered
    outcomes = [r["message"] for r in db_rows(
        g, "operation = 'verify_result'")]
    assert len(outcomes) == 2, outcomes
    assert outcomes[0].endswith(", 0 problems, OK")
    assert outcomes[1].endswith("NOT OK")


def wait_verify(g, headers, job, timeout=60):
    """The verification job's result, polled as the page does."""
    t0 = time.time()
    while True:
        r = requests.get(g.base + "/admin/api/integrity", headers=headers,
                         timeout=10).json()
        if r["last_verify"] and r["last_verify"]["job"] >= job:
            assert r["last_verify"]["job"] == job
            return r["last_verify"]
        assert r["verify_running"] and r["verify_job"] == job, r
        assert time.time() - t0 < timeout
        time.sleep(0.1)


def test_console_session_csrf_and_cidrs(gk_factory):
    g = gk_factory().start()
    outside = gk_factory(admin__cidrs="127.0.0.9/32").start()
    token = open(os.path.join(g.data, "keys", "admin.token")).read().strip()
    r = requests.get(g.base + "/admin/", timeout=10)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert requests.get(g.base + "/admin/api/session",
                        timeout=10).status_code == 401
    # a login from a foreign page is refused
    r = requests.post(g.base + "/admin/api/login", headers={
        "Authorization": "Bearer " + token,
        "Origin": "https://evil.example"}, timeout=10)
    assert (r.status_code, r.json()["msg"]) == (403, "Forbidden: bad origin")
    r = requests.post(g.base + "/admin/api/login", headers={
        "Authorization": "Bearer " + token, "Origin": g.base}, timeout=10)
    assert r.status_code == 200
    sc = r.headers["Set-Cookie"]
    for attr in ("Path=/admin/", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attr in sc
    cookie = sc.split(";")[0]
    csrf = r.json()["csrf"]
    assert token not in r.text and token not in sc
    h = {"Cookie": cookie}
    assert requests.get(g.base + "/admin/api/session", headers=h,
                        timeout=10).json()["csrf"] == csrf
    assert requests.get(g.base + "/admin/audit", headers=h,
                        timeout=10).status_code == 200
    # state changes need the CSRF token and no foreign origin
    assert requests.post(g.base + "/admin/reload", headers=h,
                         timeout=10).status_code == 401
    assert requests.post(g.base + "/admin/reload", headers=dict(
        h, **{"X-CSRF-Token": "0" * 64}), timeout=10).status_code == 401
    assert requests.post(g.base + "/admin/reload", headers=dict(
        h, **{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}),
        timeout=10).status_code == 401
    assert requests.post(g.base + "/admin/reload", headers=dict(
        h, **{"X-CSRF-Token": csrf, "Origin": g.base}),
        timeout=10).status_code == 200
    # reached under another name than public_url: the browser's
    # Sec-Fetch-Site says whether the page was ours
    other = g.base.replace("127.0.0.1", "localhost")
    assert requests.post(g.base + "/admin/reload", headers=dict(
        h, **{"X-CSRF-Token": csrf, "Origin": other,
              "Sec-Fetch-Site": "same-origin"}),
        timeout=10).status_code == 200
    assert requests.post(g.base + "/admin/reload", headers=dict(
        h, **{"X-CSRF-Token": csrf, "Origin": other,
              "Sec-Fetch-Site": "cross-site"}),
        timeout=10).status_code == 401
    # verify now: started at once (202) on its own thread, the result
    # polled from integrity; a second start while it runs gets its job
    r = requests.post(g.base + "/admin/api/verify", headers=dict(
        h, **{"X-CSRF-Token": csrf}), timeout=10)
    assert r.status_code == 202 and r.json()["verify"]["running"], r.text
    job = r.json()["verify"]["job"]
    assert job == 1
    v = wait_verify(g, h, job)
    assert v["ok"] and v["records"] > 0 and v["problems"] == []
    assert requests.post(g.base + "/admin/api/verify", headers=h,
                         timeout=10).status_code == 401   # no CSRF token
    # a made-up cookie is nothing
    assert requests.get(g.base + "/admin/audit", headers={
        "Cookie": "gk_console=" + "a" * 64}, timeout=10).status_code == 401
    # the token still works for programs; logging out ends the cookie
    assert requests.post(g.base + "/admin/api/logout", headers=dict(
        h, **{"X-CSRF-Token": csrf}), timeout=10).status_code == 200
    assert requests.get(g.base + "/admin/audit", headers=h,
                        timeout=10).status_code == 401
    assert requests.get(g.base + "/admin/audit", headers={
        "Authorization": "Bearer " + token}, timeout=10).status_code == 200
    # outside the admin CIDRs: 403 for the page, the assets and the API
    for path in ("/admin/", "/admin/console.js", "/admin/api/session",
                 "/admin/api/stats"):
        r = requests.get(outside.base + path, headers={
            "Authorization": "Bearer " + token}, timeout=10)
        assert (r.status_code, r.json()["msg"]) == (403, "Forbidden"), path
    # bad parameters are refused, not widened
    auth = {"Authorization": "Bearer " + token}
    for path, msg in (("/admin/api/stats?buckets=0",
                       "Bad Request: invalid 'buckets' param"),
                      ("/admin/api/stats?from=yesterday",
                       "Bad Request: invalid 'from' param"),
                      ("/admin/api/stats?from=2026-02-30",
                       "Bad Request: invalid 'from' param"),
                      # year 0 to the last second a unix time in µs
                      # holds: the span does not fit, refused, not wrapped
                      ("/admin/api/stats?from=0000-01-01&to=9223372036854",
                       "Bad Request: 'from' to 'to' is too long a range"),
                      ("/admin/api/policy/test?ip=300.1.1.1",
                       "Bad Request: invalid 'ip' param"),
                      ("/admin/api/policy/test?ip=1.2.3.4&op=DELETE",
                       "Bad Request: invalid 'op' param"),
                      ("/admin/api/tail?colour=red",
                       "Bad Request: unknown param")):
        r = requests.get(g.base + path, headers=auth, timeout=10)
        assert (r.status_code, r.json()["msg"]) == (400, msg), path
    # a range ending at the epoch counts nothing (0 is not "no bound")
    r = requests.get(g.base + "/admin/api/stats?from=1969-12-31&to=0",
                     headers=auth, timeout=10)
    assert (r.status_code, r.json()["rows"]) == (200, 0), r.text
    assert requests.get(g.base + "/admin/api/nope", headers=auth,
                        timeout=10).status_code == 404
    assert requests.post(g.base + "/admin/api/policy", headers=auth,
                         timeout=10).status_code == 405


def test_console_over_https(gk_factory, tmp_path):
    """Served by the gatekeeper's own TLS: the Secure cookie holds and a
    session's POST works."""
    from test_tls import Ca, tls_gk
    ensure_playwright()
    g = tls_gk(gk_factory, Ca(str(tmp_path))).start()
    token = open(os.path.join(g.data, "keys", "admin.token")).read().strip()
    seen = run_node("console_login.mjs", g.base, token)
    assert seen["csp"] == []
    assert seen["rows"] >= 1
    assert seen["cookies"] == [{"name": "gk_console", "secure": True,
                                "httpOnly": True, "sameSite": "Strict"}]
    assert seen["verify"] == [202, True]
