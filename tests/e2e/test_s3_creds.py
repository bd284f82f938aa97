"""Where the gatekeeper's S3 keys come from: the AWS_* environment, the
shared credentials file and profile, the ECS container endpoint and EC2's
IMDSv2 (both with refresh before expiry), each proved by a real signed
listing against RGW."""
import http.server
import json
import os
import threading
import time

import pytest


def listing_works(g, rgw):
    rgw.client().put_object(Bucket=g.bucket, Key="app/c/x.txt", Body=b"x")
    r = g.get("app", "/c/", "GET_Bucket")
    assert r.status_code == 200, r.text
    assert r.json()["contents"] == ["/c/x.txt"]


def make(rgw, gk_factory, **settings):
    bucket = rgw.new_bucket("cr")
    base = {"store__type": "s3", "s3__bucket": bucket,
            "s3__endpoint": rgw.endpoint, "s3__path_style": "true",
            "s3__region": rgw.region, "s3__use_env": "false",
            "s3__credentials_file": "/nonexistent/credentials",
            "s3__container_credentials": "false", "s3__imds": "false"}
    base.update(settings)
    g = gk_factory(**base)
    g.bucket = bucket
    return g


def test_environment(rgw, gk_factory, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", rgw.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", rgw.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    g = make(rgw, gk_factory, s3__use_env="true").start()
    listing_works(g, rgw)


def test_shared_file_profile(rgw, gk_factory, tmp_path):
    f = tmp_path / "credentials"
    f.write_text("[default]\naws_access_key_id = WRONG\n"
                 "aws_secret_access_key = wrong\n\n[gk]\n"
                 "aws_access_key_id = %s\naws_secret_access_key = %s\n" %
                 (rgw.access_key, rgw.secret_key))
    g = make(rgw, gk_factory, s3__credentials_file=str(f),
             s3__profile="gk").start()
    listing_works(g, rgw)


def test_no_credentials_is_a_startup_error(rgw, gk_factory):
    g = make(rgw, gk_factory)
    p = g.run("check-config")   # config itself is valid
    assert p.returncode == 0
    with pytest.raises(AssertionError) as e:
        g.start()
    assert "no S3 credentials found" in open(g.log).read(), str(e.value)


class Meta(http.server.BaseHTTPRequestHandler):
    """A fake ECS container endpoint and EC2 IMDSv2 in one."""
    hits = []
    creds = {}

    def log_message(self, *a):
        pass

    def reply(self, code, body):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get(
                "X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, "IMDS-TOKEN-1")
        self.reply(403, "")

    def do_GET(self):
        Meta.hits.append(self.path)
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime(time.time() + 200))
        doc = json.dumps(dict(Meta.creds, Expiration=expiry))
        if self.path == "/ecs/creds":
            if self.headers.get("Authorization") != "ecs-auth":
                return self.reply(401, "")
            return self.reply(200, doc)
        if self.headers.get("X-aws-ec2-metadata-token") != "IMDS-TOKEN-1":
            return self.reply(401, "")
        if self.path == "/latest/meta-data/iam/security-credentials/":
            return self.reply(200, "gk-role\n")
        if self.path == "/latest/meta-data/iam/security-credentials/gk-role":
            return self.reply(200, doc)
        self.reply(404, "")


@pytest.fixture
def meta(rgw):
    Meta.hits = []
    Meta.creds = {"AccessKeyId": rgw.access_key,
                  "SecretAccessKey": rgw.secret_key, "Token": ""}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Meta)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()


def test_container_endpoint_with_refresh(rgw, gk_factory, meta, monkeypatch):
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
                       meta + "/ecs/creds")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth")
    g = make(rgw, gk_factory, s3__container_credentials="true").start()
    before = Meta.hits.count("/ecs/creds")
    assert before >= 1
    listing_works(g, rgw)
    # the keys expire in 200 s, inside the 5-minute refresh window: each
    # use fetches fresh ones
    assert Meta.hits.count("/ecs/creds") > before


def test_imdsv2_with_refresh(rgw, gk_factory, meta):
    g = make(rgw, gk_factory, s3__imds="true",
             s3__imds_endpoint=meta).start()
    role = "/latest/meta-data/iam/security-credentials/gk-role"
    before = Meta.hits.count(role)
    assert before >= 1
    listing_works(g, rgw)
    assert Meta.hits.count(role) > before
