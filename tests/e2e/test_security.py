"""Security review findings (issue 17), each reproduced against the real
binary: a misbehaving S3 server, the audit under a flood of refusals,
shutdown with a stalled audit store, refused uploads, v1's root boundary,
data URLs bound to a token's 'cip', and IPv6 rate-limit evasion."""
import http.server
import os
import socket
import threading
import time

import requests

from conftest import ORIGIN


# -- finding 7: a bucket listing keys outside the requested prefix ---------

class FakeS3(http.server.BaseHTTPRequestHandler):
    """Answers every ListObjectsV2 with keys outside the prefix asked for
    (a misbehaving S3-compatible server or a man in the middle)."""
    keys = []
    queries = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        FakeS3.queries.append(self.path)
        items = "".join(
            "<Contents><Key>%s</Key><Size>5</Size>"
            "<LastModified>2026-11-01T00:00:00.000Z</LastModified>"
            "</Contents>" % k for k in FakeS3.keys)
        body = ('<?xml version="1.0" encoding="UTF-8"?>'
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
                '2006-03-01/"><Name>b</Name><IsTruncated>false'
                '</IsTruncated>%s</ListBucketResult>' % items).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def fake_s3_gatekeeper(gk_factory, tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    secret = tmp_path / "s3.secret"
    secret.write_text("fake-secret-key-0123456789")
    os.chmod(secret, 0o600)
    g = gk_factory(store__type="s3", s3__bucket="b",
                   s3__endpoint="http://127.0.0.1:%d" % srv.server_port,
                   s3__path_style="true", s3__access_key_id="AKFAKE",
                   s3__secret_key_file=str(secret), s3__use_env="false",
                   s3__credentials_file="/nonexistent/credentials",
                   s3__container_credentials="false", s3__imds="false",
                   s3__retries="0").start()
    return g, srv


def test_listing_keys_outside_the_prefix_are_left_out(gk_factory, tmp_path):
    g, srv = fake_s3_gatekeeper(gk_factory, tmp_path)
    try:
        # shorter than the root (the length underflow ASan caught), beside
        # the prefix, and one good key
        FakeS3.keys = ["a", "ap", "other/x.txt", "app/c/zz",
                       "app/docs/ok.txt"]
        r = g.get("app", "/docs/", "GET_Bucket")
        assert r.status_code == 200, r.text
        assert r.json()["contents"] == ["/docs/ok.txt"]
        assert any("prefix=app%2Fdocs%2F" in q for q in FakeS3.queries)
        assert g.proc.poll() is None
    finally:
        srv.shutdown()
        srv.server_close()


# -- finding 2: v1's signature does not bind the root/folder boundary ------

def v1_replay(g):
    """Signed for root 'clinic1', folder '23'; replayed as root 'clinic12',
    folder '3' (the same HMAC input: 'clinic123GET_Object...')."""
    p = g.sign("clinic1", "/23/own.txt", "GET_Object")
    p["path"] = "/3/secret.txt"
    return requests.get(g.url("clinic12", p), headers={"Origin": ORIGIN},
                        allow_redirects=False, timeout=30)


def test_v1_root_boundary_replay_without_roots_list(gk_factory):
    # the original's format: the replay works, and the gatekeeper warns
    g = gk_factory()
    p = g.run("check-config")
    assert "warning: protocol v1 is on and [gate] v1_roots is empty" in \
        p.stdout
    g.start()
    assert v1_replay(g).status_code == 302
    assert "v1_roots is empty" in open(g.log).read()


def test_v1_roots_refuse_unlisted_root(gk_factory):
    g = gk_factory(gate__v1_roots="clinic1, clinic2, lab-x")
    p = g.run("check-config")
    assert "v1_roots is empty" not in p.stdout + p.stderr
    g.start()
    r = v1_replay(g)
    assert (r.status_code, r.json()["msg"]) == (403, "Forbidden: unknown root")
    row = g.audit_for(r)[0]
    assert (row["root"], row["decision"]) == ("clinic12", "deny")
    # a listed root works as before
    r = g.get("clinic1", "/23/own.txt", "GET_Object")
    assert r.status_code == 302, r.text


def test_v1_roots_prefix_of_another_refused(gk_factory):
    for roots, bad in (("clinic1, clinic12", "'clinic1' is a prefix of "
                                             "'clinic12'"),
                       ("a b a", "'a' is a prefix of 'a'"),
                       ("ok, bad/root", "'bad/root' is not a root")):
        g = gk_factory()
        with open(g.config) as f:
            text = f.read()
        with open(g.config, "w") as f:
            f.write(text.replace("[gate]\n", "[gate]\nv1_roots = %s\n" %
                                 roots))
        p = g.run("check-config", check=False)
        assert p.returncode != 0 and bad in p.stderr, (roots, p.stderr)
        p = g.run("serve", check=False)
        assert p.returncode != 0 and bad in p.stderr, roots


def test_v1_off(gk_factory):
    g = gk_factory(gate__v1="false")
    p = g.run("check-config")
    assert "v1_roots is empty" not in p.stdout + p.stderr
    g.start()
    r = g.get("app", "/a/b", "GET_Object")
    assert (r.status_code, r.json()["msg"]) == (404, "Not Found")
