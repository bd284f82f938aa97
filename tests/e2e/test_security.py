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
