"""Data URLs, the upload endpoint, the encrypted fs store, and the audit of
each. Data-URL and policy signatures are recomputed here from the key file,
independently of the C code."""
import base64
import glob
import hashlib
import hmac as hmaclib
import json
import os
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import ORIGIN
from hostile import exchange, responses


def msg(r):
    body = r.json()
    assert body["error"] is True
    return body["msg"]


def internal_key(gk):
    with open(os.path.join(gk.data, "keys", "internal.key")) as f:
        return bytes.fromhex(f.read().strip())


def data_url(gk, key, exp):
    sig = hmaclib.new(internal_key(gk),
                      b"gk-data-v1\0" + str(exp).encode() + b"\0" + key.encode(),
                      hashlib.sha256).hexdigest()
    return "%s/_data/%s?exp=%d&sig=%s" % (
        gk.base, urllib.parse.quote(key, safe="/"), exp, sig)


def signed_policy(gk, key, expiration, max_bytes, bucket="gatekeeper"):
    doc = {"expiration": expiration, "conditions": [
        {"bucket": bucket}, ["eq", "$key", key],
        ["content-length-range", 0, max_bytes],
        {"x-amz-server-side-encryption": "AES256"}]}
    pol = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    sig = hmaclib.new(internal_key(gk), b"gk-upload-v1\0" + pol.encode(),
                      hashlib.sha256).hexdigest()
    return pol, sig


def put(gk, fields, content, filename="f.bin"):
    return requests.post(gk.base + "/_upload", data=fields,
                         files={"file": (filename, content)}, timeout=120)


def read_back(gk, key_path, headers=None, root="uploads"):
    r = gk.get(root, key_path, "GET_Object")
    assert r.status_code == 302, r.text
    return requests.get(r.headers["Location"], headers=headers or {},
                        timeout=120)


def test_round_trip_small(gk):
    data = os.urandom(100_000)
    resp, ret = gk.upload("/docs/report.bin", data)
    assert resp.status_code == 201
    body = resp.json()
    assert body == {"msg": "Success", "key": "uploads/docs/report.bin",
                    "size": 100_000, "error": False}
    got = read_back(gk, "/docs/report.bin")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Content-Length"] == "100000"
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Cache-Control"] == "no-store, must-revalidate"


def test_overwrite_and_types(gk):
    gk.upload("/d/x.pdf", b"%PDF-1 first")
    gk.upload("/d/x.pdf", b"%PDF-1 second")
    got = read_back(gk, "/d/x.pdf")
    assert got.content == b"%PDF-1 second"
    assert got.headers["Content-Type"] == "application/pdf"
    gk.upload("/d/x.html", b"<script>alert(1)</script>")
    got = read_back(gk, "/d/x.html")
    # never served as HTML from our origin
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["X-Content-Type-Options"] == "nosniff"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_50mib_round_trip_bounded_memory(gk):
    size = 50 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    data = block * 50
    peak = [rss_kib(gk.proc.pid)]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(gk.proc.pid))
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        resp, _ = gk.upload("/big/blob.bin", data)
        assert resp.status_code == 201, resp.text
        assert resp.json()["size"] == size
        r = gk.get("uploads", "/big/blob.bin", "GET_Object")
        got = requests.get(r.headers["Location"], stream=True, timeout=120)
        h = hashlib.sha256()
        n = 0
        for chunk in got.iter_content(1 << 20):
            h.update(chunk)
            n += len(chunk)
    finally:
        done.set()
        t.join()
    assert n == size
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    # the object is 50 MiB; the server never holds it in memory
    assert peak[0] < 40 * 1024, "peak RSS %d KiB" % peak[0]


def test_range(gk):
    data = bytes(range(256)) * 1000   # 256000 bytes, crosses chunks
    gk.upload("/r/range.bin", data)
    cases = {"bytes=0-9": data[0:10], "bytes=65530-65545": data[65530:65546],
             "bytes=250000-": data[250000:], "bytes=-5": data[-5:],
             "bytes=255990-999999": data[255990:]}
    for h, want in cases.items():
        got = read_back(gk, "/r/range.bin", {"Range": h})
        assert got.status_code == 206, h
        assert got.content == want, h
        start = len(data) - len(want) if h.startswith("bytes=-") else \
            int(h[6:].split("-")[0])
        assert got.headers["Content-Range"] == "bytes %d-%d/%d" % (
            start, start + len(want) - 1, len(data)), h
    got = read_back(gk, "/r/range.bin", {"Range": "bytes=256000-"})
    assert got.status_code == 416
    assert got.headers["Content-Range"] == "bytes */256000"
    # several ranges or other units: the whole object
    for h in ("bytes=0-1,5-6", "items=0-1", "bytes=abc"):
        got = read_back(gk, "/r/range.bin", {"Range": h})
        assert got.status_code == 200 and got.content == data, h


def test_several_range_fields_refused(gk):
    """RFC 9110 makes Range one field: two fields are refused (400, a JSON
    message), not served by whichever comes first."""
    data = bytes(range(256)) * 100
    gk.upload("/r2/f.bin", data)
    r = gk.get("uploads", "/r2/f.bin", "GET_Object")
    assert r.status_code == 302, r.text
    u = urllib.parse.urlsplit(r.headers["Location"])
    target = u.path + ("?" + u.query if u.query else "")

    def raw(*ranges):
        req = "GET %s HTTP/1.1\r\nHost: %s\r\n" % (target, u.netloc)
        req += "".join("Range: %s\r\n" % v for v in ranges)
        req += "Connection: close\r\n\r\n"
        out, _, _ = exchange(u.port, req.encode())
        (resp,) = responses(out)
        return resp

    st, h, body = raw("bytes=0-9", "bytes=20-29")
    assert st == 400 and h["content-type"] == "application/json"
    msg = json.loads(body)
    assert msg["error"] is True and "Range" in msg["msg"]
    assert data[0:10] not in body and data[20:30] not in body
    (row,) = gk.audit_rows("request_id = ?", (h["x-request-id"],))
    assert row["status"] == 400 and row["decision"] == "deny"
    assert "Range" in row["message"]
    # one field with a list of ranges: the whole object, as before
    st, _, body = raw("bytes=0-9,20-29")
    assert st == 200 and body == data
    st, h, body = raw("bytes=20-29")
    assert st == 206 and body == data[20:30]


def test_range_if_range(gk):
    """If-Range: the range only for the object the client holds part of;
    otherwise the whole current object (a resumed download is never
    spliced from two objects)."""
    first = b"first version of the object"
    gk.upload("/ir/f.txt", first)
    time.sleep(1.1)     # the date is a strong validator a second later
    got = read_back(gk, "/ir/f.txt", {"Range": "bytes=0-4"})
    assert (got.status_code, got.content) == (206, first[:5])
    date = got.headers["Last-Modified"]
    rng = {"Range": "bytes=6-"}
    got = read_back(gk, "/ir/f.txt", dict(rng, **{"If-Range": date}))
    assert (got.status_code, got.content) == (206, first[6:])
    for other in ('"an-etag"', 'W/"weak"', "Thu, 01 Jan 1970 00:00:00 GMT",
                  "garbage", date + " "):
        got = read_back(gk, "/ir/f.txt", dict(rng, **{"If-Range": other}))
        assert (got.status_code, got.content) == (200, first), other
        assert "Content-Range" not in got.headers
        row, = gk.audit_for(got)
        assert (row["status"], row["decision"]) == (200, "allow")
    # replaced since: the old date no longer matches, the whole new object
    second = b"SECOND version, longer than the first one was"
    gk.upload("/ir/f.txt", second)
    got = read_back(gk, "/ir/f.txt", dict(rng, **{"If-Range": date}))
    assert (got.status_code, got.content) == (200, second)
    assert got.headers["Last-Modified"] != date


def test_data_url_tampering(gk):
    gk.upload("/t/a.txt", b"secret a")
    gk.upload("/t/b.txt", b"secret b")
    r = gk.get("uploads", "/t/a.txt", "GET_Object")
    url = r.headers["Location"]
    assert requests.get(url, timeout=10).content == b"secret a"
    u = urllib.parse.urlsplit(url)
    qs = dict(urllib.parse.parse_qsl(u.query))
    # another key with the same signature
    other = url.replace("/t/a.txt", "/t/b.txt")
    r = requests.get(other, timeout=10)
    assert (r.status_code, msg(r)) == (403, "Forbidden: invalid signature")
    # a later expiry with the same signature
    r = requests.get(url.replace("exp=" + qs["exp"],
                                 "exp=" + str(int(qs["exp"]) + 1000)), timeout=10)
    assert (r.status_code, msg(r)) == (403, "Forbidden: invalid signature")
    # one signature character changed
    sig = qs["sig"]
    bad = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    r = requests.get(url.replace(sig, bad), timeout=10)
    assert r.status_code == 403
    # missing pieces
    r = requests.get(url.split("&sig=")[0], timeout=10)
    assert (r.status_code, msg(r)) == (400, "Bad Request: missing 'exp' or 'sig' param")
    # expired, properly signed
    r = requests.get(data_url(gk, "uploads/t/a.txt", int(time.time()) - 5),
                     timeout=10)
    assert (r.status_code, msg(r)) == (410, "Expired")
    # properly signed, in time: our independent signature agrees
    r = requests.get(data_url(gk, "uploads/t/a.txt", int(time.time()) + 30),
                     timeout=10)
    assert r.status_code == 200 and r.content == b"secret a"
    r = requests.get(data_url(gk, "uploads/t/missing.txt", int(time.time()) + 30),
                     timeout=10)
    assert (r.status_code, msg(r)) == (404, "Not Found")
    url = data_url(gk, "uploads/t/../a.txt", int(time.time()) + 30)
    target = url[len(gk.base):].replace("/../", "/%2E%2E/")
    status, body, _ = gk.raw_get(target)
    assert (status, json.loads(body)["msg"]) == (400, "Bad Request: invalid key")


def test_data_url_acl(gk_factory):
    g = gk_factory().start()
    g.upload("/t/a.txt", b"x")
    url = data_url(g, "uploads/t/a.txt", int(time.time()) + 30)
    assert requests.get(url, timeout=10).status_code == 200
    g.stop()
    text = open(g.config).read().replace("ip_allow = 127.0.0.0/8, ::1/128",
                                         "ip_allow = 10.0.0.0/8")
    open(g.config, "w").write(text)
    g.start()
    r = requests.get(url, timeout=10)
    assert (r.status_code, msg(r)) == (403, "Forbidden: ACL")


def test_upload_policy_tampering(gk):
    r = gk.get("app", "/p/file.txt", "PUT_Object")
    fields = r.json()["clientReturn"]["fields"]
    assert put(gk, fields, b"ok").status_code == 201
    # policy changed by one character
    pol = fields["policy"]
    i = len(pol) // 2
    bad = dict(fields, policy=pol[:i] + ("A" if pol[i] != "A" else "B") + pol[i + 1:])
    r = put(gk, bad, b"x")
    assert (r.status_code, msg(r)) == (403, "Forbidden: invalid policy signature")
    # signature changed
    s = fields["x-gk-signature"]
    bad = dict(fields, **{"x-gk-signature": s[:-1] + ("0" if s[-1] != "0" else "1")})
    assert put(gk, bad, b"x").status_code == 403
    # another key than the policy's
    bad = dict(fields, key="uploads/p/other.txt")
    r = put(gk, bad, b"x")
    assert (r.status_code, msg(r)) == (403, "Forbidden: key does not match the policy")
    # missing fields
    r = put(gk, {"key": fields["key"]}, b"x")
    assert r.status_code == 400
    # expired (properly signed)
    pol, sig = signed_policy(gk, "uploads/p/file.txt", "2020-01-01T00:00:00Z", 100)
    r = put(gk, dict(fields, policy=pol, **{"x-gk-signature": sig}), b"x")
    assert (r.status_code, msg(r)) == (410, "Expired")
    # in time and properly signed by us: accepted
    pol, sig = signed_policy(gk, "uploads/p/mine.txt", "2099-01-01T00:00:00Z", 100)
    ok = {"key": "uploads/p/mine.txt", "policy": pol, "x-gk-signature": sig}
    assert put(gk, ok, b"y" * 100).status_code == 201
    r = put(gk, ok, b"y" * 101)
    assert r.status_code == 413
    # the rejected upload left the previous object as it was
    assert read_back(gk, "/p/mine.txt").content == b"y" * 100


def test_upload_bad_bodies(gk):
    r = requests.post(gk.base + "/_upload", data=b"plain", timeout=10,
                      headers={"Content-Type": "text/plain"})
    assert (r.status_code, msg(r)) == (400, "Bad Request: expected multipart/form-data with a boundary")
    r = requests.post(gk.base + "/_upload", timeout=10,
                      data=b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv",
                      headers={"Content-Type": "multipart/form-data; boundary=XX"})
    assert (r.status_code, msg(r)) == (400, "Bad Request: malformed multipart body")
    r = requests.get(gk.base + "/_upload", timeout=10)
    assert r.status_code == 405
    # every one of these is audited
    rows = gk.audit_rows("protocol = 'upload'")
    assert [row["status"] for row in rows] == [400, 400, 405]


def test_max_upload_size(gk_factory):
    g = gk_factory(gate__max_upload_bytes="1000").start()
    resp, _ = g.upload("/s/ok.bin", b"a" * 1000)
    assert resp.status_code == 201
    resp, _ = g.upload("/s/big.bin", b"a" * 1001)
    assert resp.status_code == 413
    r = g.get("uploads", "/s/", "GET_Bucket")
    assert r.json()["contents"] == ["/s/ok.bin"]


def stored_files(gk):
    return [p for p in glob.glob(os.path.join(gk.data, "objects", "**", "*.obj"),
                                 recursive=True)]


def test_at_rest_encryption_and_tamper(gk):
    data = b"PATIENT RECORD " * 10000
    gk.upload("/enc/rec.txt", data)
    (path,) = stored_files(gk)
    raw = open(path, "rb").read()
    assert b"PATIENT RECORD" not in raw
    assert read_back(gk, "/enc/rec.txt").content == data
    # flip one byte in the middle of the stored object
    b = bytearray(raw)
    b[len(b) // 2] ^= 0x01
    open(path, "wb").write(bytes(b))
    got = read_back(gk, "/enc/rec.txt")
    assert got.status_code == 500
    assert msg(got).startswith("Internal Exception")
    assert b"PATIENT" not in got.content
    rid = got.headers["X-Request-Id"]
    (row,) = gk.audit_rows("request_id = ?", (rid,))
    assert row["status"] == 500 and row["decision"] == "error"
    assert row["protocol"] == "data"
    # truncation is caught as well
    open(path, "wb").write(raw[:-1])
    assert read_back(gk, "/enc/rec.txt").status_code == 500
    open(path, "wb").write(raw)
    assert read_back(gk, "/enc/rec.txt").content == data


def test_tamper_past_the_first_window_cuts_the_body(gk):
    """The first 4 MiB are authenticated before the status line (a 500
    above); past them each chunk is authenticated as it is sent, and a
    tampered one ends the connection before its bytes: the client gets
    fewer bytes than Content-Length, none of them from that chunk."""
    data = os.urandom(6 << 20)
    gk.upload("/enc/big.bin", data)
    (path,) = stored_files(gk)
    raw = open(path, "rb").read()
    assert read_back(gk, "/enc/big.bin").content == data
    b = bytearray(raw)
    b[len(b) - (1 << 20)] ^= 0x01      # in the last MiB
    open(path, "wb").write(bytes(b))
    r = gk.get("uploads", "/enc/big.bin", "GET_Object")
    got = bytearray()
    with requests.get(r.headers["Location"], stream=True, timeout=120) as d:
        assert d.status_code == 200
        assert int(d.headers["Content-Length"]) == len(data)
        try:
            for part in d.raw.stream(1 << 16, decode_content=False):
                got += part
        except Exception:   # the cut connection, as the client sees it
            pass
    # cut at the tampered chunk: after the first window, before its bytes
    assert (4 << 20) <= len(got) <= len(data) - (1 << 20)
    assert bytes(got) == data[:len(got)]
    open(path, "wb").write(raw)
    assert read_back(gk, "/enc/big.bin").content == data


def test_every_request_one_audit_row(gk):
    before = len(gk.audit_rows())
    ids = []
    resp, ret = gk.upload("/a/one.txt", b"1")       # 2 requests
    ids.append(resp.headers["X-Request-Id"])
    r = gk.get("uploads", "/a/one.txt", "GET_Object")
    ids.append(r.headers["X-Request-Id"])
    d = requests.get(r.headers["Location"], timeout=10)
    ids.append(d.headers["X-Request-Id"])
    r = gk.get("uploads", "/a/", "GET_Bucket")
    ids.append(r.headers["X-Request-Id"])
    rows = gk.audit_rows()
    assert len(rows) - before == 5
    for rid in ids:
        assert len(gk.audit_rows("request_id = ?", (rid,))) == 1
    (up,) = gk.audit_rows("request_id = ?", (ids[0],))
    assert up["protocol"] == "upload" and up["status"] == 201
    assert up["path"] == "uploads/a/one.txt" and up["bytes"] == 1
    (dl,) = gk.audit_rows("request_id = ?", (ids[2],))
    assert dl["protocol"] == "data" and dl["bytes"] == 1
    assert dl["path"] == "uploads/a/one.txt" and dl["decision"] == "allow"
