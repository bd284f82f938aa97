"""Helpers for the S3 endpoint tests: a gatekeeper with [s3api] on its own
port, grants made with the real CLI, and clients (boto3, raw SigV4)."""
import datetime
import hashlib
import hmac
import os
import subprocess

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import requests

from conftest import free_port

BUCKET = "vault"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def s3gk(gk_factory, backend=None, **kw):
    port = free_port()
    settings = {"s3api__enabled": "true", "s3api__port": str(port),
                "s3api__bucket": BUCKET}
    settings.update(kw)
    g = gk_factory(backend=backend, **settings)
    g.s3port = port
    g.s3url = "http://127.0.0.1:%d" % port
    return g


def grant(g, *args, check=True):
    """gatekeeper grant create ARGS; returns the printed fields."""
    p = g.run("grant", "create", *args, check=check)
    if not check and p.returncode != 0:
        return p
    out = {}
    for line in p.stdout.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k.strip()] = v.strip()
    return out


def client(g, gr, **kw):
    return boto3.client(
        "s3", endpoint_url=kw.pop("endpoint", g.s3url),
        region_name=kw.pop("region", "us-east-1"),
        aws_access_key_id=gr["access_key_id"],
        aws_secret_access_key=kw.pop("secret", gr["secret_access_key"]),
        config=botocore.config.Config(
            signature_version="s3v4", retries={"max_attempts": 1},
            s3={"addressing_style": kw.pop("style", "path")}))


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def status(exc_info):
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def signed(g, gr, method, path, body=b"", headers=None, when=None,
           payload_hash=None, secret=None):
    """A SigV4-signed request made by botocore's signer (not ours)."""
    url = g.s3url + path
    h = dict(headers or {})
    h["X-Amz-Content-SHA256"] = payload_hash or hashlib.sha256(
        body).hexdigest()
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body,
                                         headers=h)
    creds = botocore.credentials.Credentials(
        gr["access_key_id"], secret or gr["secret_access_key"])
    auth = botocore.auth.SigV4Auth(creds, "s3", "us-east-1")
    if when is not None:
        # botocore takes the time from datetime.utcnow via its module
        orig = botocore.auth.datetime.datetime

        class Fixed(orig):
            @classmethod
            def utcnow(cls):
                return when

        botocore.auth.datetime.datetime = Fixed
        try:
            auth.add_auth(req)
        finally:
            botocore.auth.datetime.datetime = orig
    else:
        auth.add_auth(req)
    return req


def send(req, **overrides):
    p = req.prepare()
    headers = dict(p.headers)
    headers.update(overrides.pop("headers", {}))
    return requests.request(p.method, p.url, data=overrides.pop(
        "body", p.body), headers=headers, timeout=60)


def _hmac(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg,
                    hashlib.sha256).digest()


def streaming_put(g, gr, key, chunks, tamper=None):
    """PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk signed,
    chained from the request's signature. tamper(i, data) may alter a
    chunk after it was signed."""
    total = sum(len(c) for c in chunks)
    now = datetime.datetime.utcnow()
    req = signed(g, gr, "PUT", "/%s/%s" % (BUCKET, key), body=b"",
                 headers={"Content-Encoding": "aws-chunked",
                          "X-Amz-Decoded-Content-Length": str(total)},
                 payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", when=now)
    auth = req.headers["Authorization"]
    prev = auth.split("Signature=")[1].strip()
    amz_date = req.headers["X-Amz-Date"]
    scope = "%s/us-east-1/s3/aws4_request" % amz_date[:8]
    k = _hmac(("AWS4" + gr["secret_access_key"]).encode(), amz_date[:8])
    k = _hmac(_hmac(_hmac(k, "us-east-1"), "s3"), "aws4_request")
    body = b""
    for i, c in enumerate(list(chunks) + [b""]):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev,
                         hashlib.sha256(b"").hexdigest(),
                         hashlib.sha256(c).hexdigest()])
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        data = tamper(i, c) if tamper else c
        body += b"%x;chunk-signature=%s\r\n" % (len(c), sig.encode())
        body += data + b"\r\n"
        prev = sig
    p = req.prepare()
    headers = dict(p.headers)
    headers["Content-Length"] = str(len(body))
    return requests.put(p.url, data=body, headers=headers, timeout=60)


def run_tool(args, env=None, timeout=300, cwd=None):
    e = dict(os.environ)
    # a CA bundle for HTTPS endpoints makes rclone refuse plain HTTP
    e.pop("AWS_CA_BUNDLE", None)
    e.update(env or {})
    return subprocess.run(args, capture_output=True, text=True, env=e,
                          timeout=timeout, cwd=cwd)


def exists(c, key):
    try:
        c.head_object(Bucket=BUCKET, Key=key)
        return True
    except botocore.exceptions.ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
