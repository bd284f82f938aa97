"""Protocol v1 end to end: every check in order, every status and message,
headers on every answer, and one audit row per request."""
import time
import urllib.parse

import pytest
import requests

from conftest import ORIGIN


def msg(r):
    body = r.json()
    assert body["error"] is True
    return body["msg"]


def assert_common_headers(r):
    # ACAO only for an allowed origin (issue 17: never "null")
    if r.request.headers.get("Origin") == ORIGIN:
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    else:
        assert "Access-Control-Allow-Origin" not in r.headers
    assert r.headers["Cache-Control"] == "no-store, must-revalidate"
    assert len(r.headers["X-Request-Id"]) == 32


def raw(gk, root, query, origin=ORIGIN, method="GET"):
    return requests.request(method, "%s/%s?%s" % (gk.base, root, query),
                            headers={"Origin": origin} if origin else {},
                            allow_redirects=False, timeout=30)


def q(params):
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


# -- the checks, in order ---------------------------------------------------

def test_missing_path_first(gk):
    # nothing at all: path is checked first
    r = raw(gk, "app", "")
    assert r.status_code == 400
    assert msg(r) == "Bad Request: missing 'path' param"
    assert_common_headers(r)


def test_invalid_operation(gk):
    p = gk.sign("app", "/a/b.txt", "GET_Object")
    for bad in (None, "", "get_object", "DELETE_Object", "GET_Objects"):
        params = dict(p)
        if bad is None:
            del params["operation"]
        else:
            params["operation"] = bad
        r = raw(gk, "app", q(params))
        assert r.status_code == 400, bad
        assert msg(r) == "Bad Request: invalid 'operation' param"


def test_missing_expires_then_hmac(gk):
    p = gk.sign("app", "/a/b.txt", "GET_Object")
    del p["expires"]
    r = raw(gk, "app", q(p))
    assert (r.status_code, msg(r)) == (400, "Bad Request: missing 'expires' param")
    p = gk.sign("app", "/a/b.txt", "GET_Object")
    del p["hmac"]
    r = raw(gk, "app", q(p))
    assert (r.status_code, msg(r)) == (400, "Bad Request: missing 'hmac' param")


@pytest.mark.parametrize("path", ["a/b/", "/a/b", "//", "/", "ab"])
def test_get_bucket_path_shape(gk, path):
    r = gk.get("app", path, "GET_Bucket")
    assert r.status_code == 400
    assert msg(r) == ("Bad Request: 'path' param must begin and end with '/' "
                      "and be at least 3 characters")


def test_wrong_hmac(gk):
    p = gk.sign("app", "/a/b.txt", "GET_Object", key=b"not-the-key-at-all")
    r = raw(gk, "app", q(p))
    assert (r.status_code, msg(r)) == (401, "Unauthorized: invalid 'hmac' param")
    # the signature scopes root, sub, op and expires: change any one
    good = gk.sign("app", "/a/b.txt", "GET_Object")
    for field, value in (("path", "/other/b.txt"), ("operation", "GET_Bucket"),
                         ("expires", str(int(good["expires"]) + 1))):
        p = dict(good, **{field: value})
        if field == "operation":
            p["path"] = "/a/"
        r = raw(gk, "app", q(p))
        assert r.status_code == 401, field
    r = raw(gk, "other", q(good))
    assert r.status_code == 401


def test_same_sub_folder_shares_signature(gk):
    # v1 signs the first path segment: any key in that folder is covered
    p = gk.sign("app", "/folder/one.txt", "GET_Object")
    p["path"] = "/folder/two.txt"
    r = raw(gk, "app", q(p))
    assert r.status_code == 302


@pytest.mark.parametrize("h", ["0" * 63, "0" * 65, "g" * 64, "", "zz"])
def test_hmac_format(gk, h):
    p = gk.sign("app", "/a/b.txt", "GET_Object")
    p["hmac"] = h
    r = raw(gk, "app", q(p))
    assert (r.status_code, msg(r)) == (401, "Unauthorized: invalid 'hmac' param")


def test_hmac_uppercase_accepted(gk):
    p = gk.sign("app", "/a/b.txt", "GET_Object")
    p["hmac"] = p["hmac"].upper()
    assert raw(gk, "app", q(p)).status_code == 302


def test_expired(gk):
    now = int(time.time())
    r = gk.get("app", "/a/b.txt", "GET_Object", expires=now - 61)
    assert (r.status_code, msg(r)) == (410, "Expired")
    # the original's 60 s grace
    r = gk.get("app", "/a/b.txt", "GET_Object", expires=now - 30)
    assert r.status_code == 302


@pytest.mark.parametrize("e", ["12abc", "-5", "1.5", "+5", " 5",
                               "18446744073709551616", "9223372036854775808"])
def test_expires_must_be_integer(gk, e):
    r = gk.get("app", "/a/b.txt", "GET_Object", expires=e)
    assert (r.status_code, msg(r)) == (400, "Bad Request: invalid 'expires' param")


def test_max_token_lifetime(gk_factory):
    g = gk_factory().start()
    now = int(time.time())
    assert g.get("app", "/a/b", "GET_Object", expires=now + 890).status_code == 302
    r = g.get("app", "/a/b", "GET_Object", expires=now + 1000)
    assert r.status_code == 401
    assert "maximum token lifetime" in msg(r)
    r = g.get("app", "/a/b", "GET_Object", expires=9999999999)
    assert r.status_code == 401
    g.stop()
    g2 = gk_factory(gate__max_token_lifetime="0").start()
    assert g2.get("app", "/a/b", "GET_Object",
                  expires=9999999999).status_code == 302


def test_origin(gk):
    assert gk.get("app", "/a/b", "GET_Object").status_code == 302
    for ok in ("https://x.partner.example", "http://a.b.partner.example:8443",
               "HTTPS://APP.EXAMPLE.COM"):
        assert gk.get("app", "/a/b", "GET_Object", origin=ok).status_code == 302, ok
    for bad in ("https://evil.example", "https://partner.example",
                "https://badpartner.example", "null", "https://app.example.com.evil",
                "https://app.example.com/path"):
        r = gk.get("app", "/a/b", "GET_Object", origin=bad)
        assert (r.status_code, msg(r)) == (403, "Forbidden: bad origin"), bad
    # no Origin at all: the same 403, a message that says so
    r = gk.get("app", "/a/b", "GET_Object", origin=None)
    assert (r.status_code, msg(r)) == (
        403, "Forbidden: no Origin header (send the Origin of an allowed "
        "site)")
    # a browser opening the URL directly (address bar, a link in a mail)
    r = gk.get("app", "/a/b", "GET_Object", origin=None,
               headers={"Sec-Fetch-Site": "none"})
    assert (r.status_code, msg(r)) == (
        403, "Forbidden: no Origin header (the URL was opened directly; it "
        "must be requested by a page of an allowed origin)")
    assert gk.audit_for(r)[0]["message"] == msg(r)


def test_allowed_origin_echoed(gk):
    r = gk.get("app", "/a/b", "GET_Object")
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    # issue 17, finding 6: no ACAO at all for an origin that is not
    # allowed, and "null" (sandboxed iframes) is never allowed
    for bad in ("https://evil.example", "null"):
        r = gk.get("app", "/a/b", "GET_Object", origin=bad)
        assert "Access-Control-Allow-Origin" not in r.headers, bad
        for path in ("/healthz", "/metrics"):
            r = requests.get(gk.base + path, headers={"Origin": bad},
                             timeout=30)
            assert r.status_code == 200
            assert "Access-Control-Allow-Origin" not in r.headers, (bad, path)
        r = requests.options(gk.base + "/app", headers={"Origin": bad},
                             timeout=30)
        assert "Access-Control-Allow-Origin" not in r.headers, bad


def test_demo_sign_not_readable_from_null_origin(gk_factory):
    g = gk_factory(server__demo="true").start()
    r = requests.get(g.base + "/demo/sign", headers={"Origin": "null"},
                     timeout=30)
    assert "Access-Control-Allow-Origin" not in r.headers


def test_missing_origin_allowed_when_configured(gk_factory):
    g = gk_factory(acl__allow_missing_origin="true").start()
    assert g.get("app", "/a/b", "GET_Object", origin=None).status_code == 302
    # an Origin that is present must still be allowed
    assert g.get("app", "/a/b", "GET_Object",
                 origin="https://evil.example").status_code == 403


def test_same_origin_browser_request(gk_factory):
    # a same-origin fetch sends no Origin; it is judged as our public URL
    g2 = gk_factory(acl__origins=ORIGIN + ", http://127.0.0.1:{port}").start()
    r = g2.get("app", "/a/b", "GET_Object", origin=None,
               headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 302
    r = g2.get("app", "/a/b", "GET_Object", origin=None,
               headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_acl_denies_read_not_upload(gk_factory):
    g = gk_factory(acl__ip_allow="10.0.0.0/8").start()
    r = g.get("app", "/docs/report.pdf", "GET_Object")
    assert (r.status_code, msg(r)) == (403, "Forbidden: ACL")
    r = g.get("app", "/docs/", "GET_Bucket")
    assert (r.status_code, msg(r)) == (403, "Forbidden: ACL")
    resp, _ = g.upload("/docs/report.pdf", b"hello")
    assert resp.status_code == 201, resp.text


def test_acl_uploads_not_exempt_when_configured(gk_factory):
    g = gk_factory(acl__ip_allow="10.0.0.0/8",
                   acl__uploads_exempt_ip="false").start()
    r = g.get("app", "/docs/report.pdf", "PUT_Object")
    assert (r.status_code, msg(r)) == (403, "Forbidden: ACL")


def test_deny_wins_for_exempt_uploads(gk_factory):
    # issue 17: uploads_exempt_ip skips the allow list, never the deny list
    g = gk_factory(acl__ip_allow="10.0.0.0/8",
                   acl__ip_deny="127.0.0.1").start()
    r = g.get("app", "/docs/report.pdf", "PUT_Object")
    assert (r.status_code, msg(r)) == (403, "Forbidden: ACL")


def test_deny_wins(gk_factory):
    g = gk_factory(acl__ip_allow="0.0.0.0/0", acl__ip_deny="127.0.0.1").start()
    r = g.get("app", "/a/b", "GET_Object")
    assert (r.status_code, msg(r)) == (403, "Forbidden: ACL")


def test_origin_checked_before_acl(gk_factory):
    g = gk_factory(acl__ip_allow="10.0.0.0/8").start()
    r = g.get("app", "/a/b", "GET_Object", origin="https://evil.example")
    assert msg(r) == "Forbidden: bad origin"


# -- validation beyond the original ---------------------------------------

@pytest.mark.parametrize("root", ["bad$root", "a" * 64, "..", "%2e%2e", "a%20b"])
def test_bad_root(gk, root):
    p = gk.sign(urllib.parse.unquote(root), "/a/b", "GET_Object")
    r = raw(gk, root, q(p))
    assert r.status_code in (400, 404)
    if r.status_code == 400:
        assert msg(r) == "Bad Request: invalid root"


@pytest.mark.parametrize("path", [
    "/a/" + "x" * 1100,          # too long
    "/a/\x01b",                   # control character
    "/a/b\\c",                    # backslash
    "/a//b",                      # empty segment
    "/a/./b",                     # dot segment
    "/a/../b",                    # dot-dot segment
    "/a/b/..",
    "a/b",                        # no leading slash
])
def test_bad_keys(gk, path):
    r = gk.get("app", path, "GET_Object")
    assert (r.status_code, msg(r)) == (400, "Bad Request: invalid 'path' param")


def test_bad_utf8_and_nul(gk):
    import json
    p = gk.sign("app", "/a/b", "GET_Object")
    base = "/app?" + q(p)
    assert "path=%2Fa%2Fb&" in base
    cases = [("path=%2Fa%2F%FF&", "Bad Request: invalid 'path' param"),
             ("path=%2Fa%2Fb%00&", "Bad Request: malformed query string"),
             ("path=%2Fa%2Fb%4&", "Bad Request: malformed query string"),
             ("path=%2Fa%2Fb%zz&", "Bad Request: malformed query string")]
    for repl, want in cases:
        status, body, headers = gk.raw_get(base.replace("path=%2Fa%2Fb&", repl),
                                           {"Origin": ORIGIN})
        assert (status, json.loads(body)["msg"]) == (400, want), repl
        assert headers["Cache-Control"] == "no-store, must-revalidate"


def test_decoded_once(gk):
    # %252e%252e decodes once to the literal segment "%2e%2e", a valid name,
    # not to ".."
    r = gk.get("app", "/a/%2e%2e/b", "GET_Object")
    assert r.status_code == 302
    assert "/_data/app/a/%252e%252e/b?" in r.headers["Location"]


def test_repeated_param(gk):
    p = gk.sign("app", "/a/b", "GET_Object")
    r = raw(gk, "app", q(p) + "&path=/x/y")
    assert (r.status_code, msg(r)) == (400, "Bad Request: repeated 'path' param")
    r = raw(gk, "app", q(p) + "&hmac=" + p["hmac"])
    assert (r.status_code, msg(r)) == (400, "Bad Request: repeated 'hmac' param")


def test_unicode_and_awkward_keys_round_trip(gk):
    for name in ("/docs/é 日本 😀.txt", "/docs/a+b=c&d?e#f!*'()~.txt",
                 "/docs/100% sure.txt"):
        data = name.encode() * 3
        resp, _ = gk.upload(name, data, root="app")
        assert resp.status_code == 201, (name, resp.text)
        r = gk.get("uploads", name, "GET_Object")
        assert r.status_code == 302, (name, r.text)
        got = requests.get(r.headers["Location"], timeout=30)
        assert got.status_code == 200 and got.content == data, name


# -- methods and headers ----------------------------------------------------

def test_methods(gk):
    p = q(gk.sign("app", "/a/b", "GET_Object"))
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        r = raw(gk, "app", p, method=m)
        assert r.status_code == 405, m
        assert "GET" in r.headers["Allow"]
        assert_common_headers(r)
    r = raw(gk, "app", p, method="HEAD")
    assert r.status_code == 302 and r.content == b""
    assert "/_data/" in r.headers["Location"]


def test_preflight(gk):
    r = requests.options(gk.base + "/app?path=/a/b", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET"}, timeout=10)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Cache-Control"] == "no-store, must-revalidate"
    # preflight is not a decision: no audit row
    assert gk.audit_rows() == []


def test_not_found_routes(gk):
    for path in ("/", "/a/b/c", "/app/"):
        r = requests.get(gk.base + path, timeout=10)
        assert r.status_code == 404, path
        assert_common_headers(r)


def test_keep_alive(gk):
    s = requests.Session()
    for _ in range(5):
        r = s.get(gk.url("app", gk.sign("app", "/a/b", "GET_Object")),
                  headers={"Origin": ORIGIN}, allow_redirects=False, timeout=10)
        assert r.status_code == 302
    # all on one connection: the pool made one
    assert len(s.adapters["http://"].poolmanager.pools) == 1


# -- success shapes ----------------------------------------------------------

def test_success_bodies(gk):
    r = gk.get("app", "/a/b.txt", "GET_Object")
    assert r.status_code == 302
    body = r.json()
    assert body["msg"] == "Success" and body["error"] is False
    assert body["url"] == r.headers["Location"]
    assert body["url"].startswith(gk.base + "/_data/app/a/b.txt?exp=")
    r = gk.get("app", "/a/b.txt", "PUT_Object")
    body = r.json()
    assert r.status_code == 200 and body["msg"] == "Success"
    assert body["error"] is False and body["bucket"] == "gatekeeper"
    fields = body["clientReturn"]["fields"]
    assert body["clientReturn"]["url"] == gk.base + "/_upload"
    assert fields["key"] == "uploads/a/b.txt"
    assert fields["x-amz-server-side-encryption"] == "AES256"
    assert set(fields) >= {"key", "policy", "x-gk-signature"}


def test_list(gk):
    for name, data in (("/r/b.txt", b"bb"), ("/r/a.txt", b"a"),
                       ("/r/sub/c.txt", b"c"), ("/r/empty.txt", b""),
                       ("/q/other.txt", b"o")):
        resp, _ = gk.upload(name, data)
        assert resp.status_code == 201
    r = gk.get("uploads", "/r/", "GET_Bucket")
    assert r.status_code == 200
    body = r.json()
    assert body == {"msg": "Success", "error": False,
                    "contents": ["/r/a.txt", "/r/b.txt", "/r/sub/c.txt"]}
    r = gk.get("uploads", "/nothing/", "GET_Bucket")
    assert r.json()["contents"] == []


# -- the audit: exactly one row per request, with the right fields ----------

def test_audit_rows(gk):
    responses = [
        gk.get("app", "/a/b.txt", "GET_Object",
               headers={"User-Agent": "audit-test/1"}),
        gk.get("app", "/a/b.txt", "GET_Object", key=b"wrong-key-wrong-key"),
        gk.get("app", "/a/b.txt", "GET_Object", origin="https://evil.example"),
        raw(gk, "app", ""),
    ]
    expect = [(302, "allow", "Success"),
              (401, "deny", "Unauthorized: invalid 'hmac' param"),
              (403, "deny", "Forbidden: bad origin"),
              (400, "deny", "Bad Request: missing 'path' param")]
    rows = gk.audit_rows()
    assert len(rows) == len(responses)
    for resp, (status, decision, message) in zip(responses, expect):
        (row,) = gk.audit_for(resp)
        assert row["status"] == status == resp.status_code
        assert row["decision"] == decision
        assert row["message"] == message
        assert row["client_ip"] == "127.0.0.1"
        assert row["protocol"] == "v1"
        assert row["root"] == "app"
        assert abs(row["time_us"] / 1e6 - time.time()) < 60
        assert 0 <= row["duration_us"] < 60 * 1000 * 1000
    first = gk.audit_for(responses[0])[0]
    assert first["user_agent"] == "audit-test/1"
    assert first["origin"] == ORIGIN
    assert first["operation"] == "GET_Object"
    assert first["path"] == "/a/b.txt"
    assert gk.audit_for(responses[2])[0]["origin"] == "https://evil.example"
