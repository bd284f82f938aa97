"""Uploads whose connection ends before their body does: the client went
away (a closed tab, a cancelled fetch, a dropped network) or the body
deadline closed it. No answer can reach the client, but the attempt is
in the audit like every other decision (400, why), nothing is stored,
and no temporary file is left behind. The three ways a body becomes an
object are covered: the upload form (POST /_upload), v2's
PUT /v2/objects/{key} and the S3 endpoint's PutObject."""
import os
import socket
import time
import urllib.parse

import requests

from browserutil import VendorKey
from conftest import ORIGIN
from s3api_util import BUCKET, grant, s3gk, signed

GONE = "connection closed before the end of the body"


def wait_rows(g, where, args, n=1, timeout=15):
    """The audit rows matching where, once there are at least n."""
    deadline = time.monotonic() + timeout
    while True:
        rows = g.audit_rows(where, args)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def store_files(g):
    """Every file under the object store but its index."""
    out = []
    for d, _, files in os.walk(os.path.join(g.data, "objects")):
        out += [os.path.join(d, f) for f in files
                if not f.startswith("index.db")]
    return sorted(out)


def form_body(g, path, file_bytes, boundary=b"Cut0Here"):
    r = g.get("app", path, "PUT_Object")
    assert r.status_code == 200, r.text
    ret = r.json()["clientReturn"]
    body = b""
    for k, v in ret["fields"].items():
        body += (b"--" + boundary + b"\r\nContent-Disposition: form-data; "
                 b"name=\"" + k.encode() + b"\"\r\n\r\n" + v.encode() +
                 b"\r\n")
    body += (b"--" + boundary + b"\r\nContent-Disposition: form-data; "
             b"name=\"file\"; filename=\"f.bin\"\r\n\r\n" + file_bytes +
             b"\r\n--" + boundary + b"--\r\n")
    head = (b"POST /_upload HTTP/1.1\r\nHost: x\r\nOrigin: " +
            ORIGIN.encode() + b"\r\nContent-Type: multipart/form-data; "
            b"boundary=" + boundary + b"\r\nContent-Length: %d\r\n\r\n" %
            len(body))
    return ret["fields"]["key"], head, body


def send_cut(port, data, linger=0.3):
    """Sends data on a new connection and closes it without reading."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    time.sleep(linger)
    s.close()


def test_form_upload_cut_is_audited_and_stores_nothing(gk_factory):
    g = gk_factory(gate__max_upload_bytes="4194304").start()
    before = store_files(g)

    # cut in the middle of the file
    key, head, body = form_body(g, "/c/cut-file.bin", os.urandom(1 << 20))
    send_cut(g.port, head + body[:len(body) // 2])
    rows = wait_rows(g, "protocol = 'upload' AND path = ?", (key,))
    assert len(rows) == 1, rows
    assert (rows[0]["status"], rows[0]["decision"]) == (400, "deny")
    assert GONE in rows[0]["message"]
    assert rows[0]["operation"] == "POST_Upload"
    assert 0 < rows[0]["bytes"] < (1 << 20)   # what was received

    # cut among the fields, before the file began
    key2, head, body = form_body(g, "/c/cut-fields.bin", b"x" * 100)
    cut = body.index(b"name=\"policy\"") + 20
    send_cut(g.port, head + body[:cut])
    rows = wait_rows(g, "protocol = 'upload' AND path = ?", (key2,))
    assert len(rows) == 1, rows
    assert (rows[0]["status"], GONE in rows[0]["message"]) == (400, True)

    # a half-close (a browser's cancel sends a FIN) after part of it
    key3, head, body = form_body(g, "/c/cut-half.bin", b"y" * 50000)
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(head + body[:-1000])
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    try:
        s.recv(4096)
    except OSError:
        pass
    s.close()
    rows = wait_rows(g, "protocol = 'upload' AND path = ?", (key3,))
    assert len(rows) == 1 and rows[0]["status"] == 400, rows

    # nothing of them is stored, or left behind half-written
    assert store_files(g) == before
    for k in ("/c/cut-file.bin", "/c/cut-fields.bin", "/c/cut-half.bin"):
        r = g.get("app", k, "GET_Object")
        assert r.status_code == 302
        assert requests.get(r.headers["Location"],
                            timeout=10).status_code == 404

    # a whole upload on the same server: one record, allowed
    r, ret = g.upload("/c/whole.bin", b"whole")
    assert r.status_code == 201, r.text
    rows = wait_rows(g, "protocol = 'upload' AND path = ?", (ret["fields"]["key"],))
    assert [(x["status"], x["decision"]) for x in rows] == [(201, "allow")]


def test_refused_mid_body_then_closed_is_audited_once(gk_factory):
    """An upload refused in the middle (over its policy's size) whose
    connection the gatekeeper then closes has one record: the refusal,
    not a second one for the closed connection."""
    g = gk_factory(gate__max_upload_bytes="1000").start()
    # under the declared-length check (max + 256 KiB of form), over the
    # policy: refused at byte 1001, 64 KiB more read, then closed
    key, head, body = form_body(g, "/c/big.bin", b"z" * (200 << 10))
    s = socket.create_connection(("127.0.0.1", g.port))
    try:
        s.sendall(head + body)
    except OSError:
        pass    # closed by the gatekeeper while sending: expected
    s.close()
    rows = wait_rows(g, "protocol = 'upload' AND path = ?", (key,))
    time.sleep(1)   # a duplicate would be written right after
    rows = g.audit_rows("protocol = 'upload' AND path = ?", (key,))
    assert [(x["status"], x["message"]) for x in rows] == [
        (413, "Payload Too Large: the file exceeds the policy's "
         "content-length-range")]


def test_v2_put_cut_is_audited(gk_factory):
    vk = VendorKey()
    g = gk_factory(gate__id="gk-cut", **vk.settings()).start()
    before = store_files(g)
    tok = vk.token("gk-cut", "put", "c/v2cut.bin", sub="user-7")
    send_cut(g.port, ("PUT /v2/objects/c/v2cut.bin HTTP/1.1\r\nHost: x\r\n"
                      "Origin: %s\r\nAuthorization: Bearer %s\r\n"
                      "Content-Length: 100000\r\n\r\n" % (ORIGIN, tok)
                      ).encode() + b"a" * 30000)
    rows = wait_rows(g, "protocol = 'v2' AND path = ?", ("c/v2cut.bin",))
    assert len(rows) == 1, rows
    r = rows[0]
    assert (r["status"], r["decision"], r["operation"], r["sub"]) == (
        400, "deny", "PUT_Object", "user-7")
    assert GONE in r["message"] and r["bytes"] == 30000
    assert store_files(g) == before
    tok = vk.token("gk-cut", "get", "c/v2cut.bin")
    r = requests.get(g.base + "/v2/objects/c/v2cut.bin", headers={
        "Origin": ORIGIN, "Authorization": "Bearer " + tok},
        allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert requests.get(r.headers["Location"], timeout=10).status_code == 404


def test_v2_put_closed_by_body_deadline_is_audited(gk_factory):
    vk = VendorKey()
    # 1 s for the body, plus 1 s per KiB received: 10 bytes never make it
    g = gk_factory(gate__id="gk-slow", server__body_timeout="1",
                   server__body_min_rate="1024", **vk.settings()).start()
    tok = vk.token("gk-slow", "put", "c/slow.bin")
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(("PUT /v2/objects/c/slow.bin HTTP/1.1\r\nHost: x\r\n"
               "Origin: %s\r\nAuthorization: Bearer %s\r\n"
               "Content-Length: 1000\r\n\r\n" % (ORIGIN, tok)).encode() +
              b"a" * 10)
    rows = wait_rows(g, "protocol = 'v2' AND path = ?", ("c/slow.bin",))
    s.close()
    assert len(rows) == 1, rows
    assert rows[0]["status"] == 400 and GONE in rows[0]["message"]


def test_s3_put_cut_is_audited(gk_factory):
    g = s3gk(gk_factory).start()
    gr = grant(g, "--name", "cut", "--prefix", "in/", "--ops", "get,put")
    req = signed(g, gr, "PUT", "/%s/in/cut.bin" % BUCKET,
                 payload_hash="UNSIGNED-PAYLOAD",
                 headers={"Content-Length": "100000"})
    p = req.prepare()
    u = urllib.parse.urlsplit(p.url)
    head = "PUT %s HTTP/1.1\r\n" % (u.path + ("?" + u.query if u.query
                                              else ""))
    for k, v in p.headers.items():
        head += "%s: %s\r\n" % (k, v)
    if "Host" not in p.headers:
        head += "Host: 127.0.0.1:%d\r\n" % g.s3port
    send_cut(g.s3port, (head + "\r\n").encode() + b"b" * 20000)
    rows = wait_rows(g, "path = ?", ("in/cut.bin",))
    assert len(rows) == 1, rows
    assert (rows[0]["status"], rows[0]["decision"]) == (400, "deny")
    assert "Content-Length" in rows[0]["message"]
    r = signed(g, gr, "GET", "/%s/in/cut.bin" % BUCKET)
    p = r.prepare()
    assert requests.get(p.url, headers=dict(p.headers),
                        timeout=10).status_code == 404


def test_refused_form_records_the_key_field_as_sent(gk):
    """A refused form whose policy never opened records its key field as
    sent: a NUL in it shows as '?' instead of cutting the recorded key
    short (which would name another key than the one tried)."""
    key, head, body = form_body(gk, "/c/nul.bin", b"data")
    sent = len(body)
    body = body.replace(key.encode(), b"uploads/c/ok.bin\x00junk", 1)
    at = body.index(b"name=\"x-gk-signature\"\r\n\r\n") + 26
    body = body[:at] + (b"1" if body[at:at + 1] == b"0" else b"0") + \
        body[at + 1:]   # a signature of the right shape that fails
    head = head.replace(b"Content-Length: %d" % sent,
                        b"Content-Length: %d" % len(body))
    assert b"Content-Length: %d\r\n" % len(body) in head
    s = socket.create_connection(("127.0.0.1", gk.port))
    s.sendall(head + body)
    s.settimeout(10)
    assert s.recv(4096).startswith(b"HTTP/1.1 403 ")
    s.close()
    rows = wait_rows(gk, "protocol = 'upload'", ())
    assert [(r["status"], r["path"], r["message"]) for r in rows] == [
        (403, "uploads/c/ok.bin?junk", "Forbidden: invalid policy signature")]
