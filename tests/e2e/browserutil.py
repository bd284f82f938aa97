"""Shared by the browser tests: playwright-core (pinned in
tests/browser/package-lock.json, installed by make js-deps) driving
Debian's Chromium, and a vendor key."""
import base64
import json
import os
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from jsdeps import JS_DIR, js_dir

BROWSER = JS_DIR


def ensure_playwright():
    """tests/browser with playwright-core (make js-deps) and Debian's
    Chromium."""
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("Debian's chromium is missing: run make deps "
                    "(scripts/install-deps.sh)")
    return js_dir("playwright-core")


def run_node(script, *args, timeout=180):
    """Runs a harness under tests/browser; returns its last JSON line."""
    p = subprocess.run(["node", script] + list(args), cwd=BROWSER,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-4000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class VendorKey:
    """An Ed25519 vendor key: the gatekeeper gets only its public half."""

    def __init__(self, kid="vendor-test"):
        self.kid = kid
        self.priv = ed25519.Ed25519PrivateKey.generate()
        self.raw_pub = self.priv.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.pem = self.priv.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()

    def token(self, aud, op, key=None, prefix=None, sub="py", ttl=300,
              jti=None):
        """A v2 token (EdDSA) for one key or a prefix (single use with
        jti)."""
        now = int(time.time())
        claims = {"aud": aud, "sub": sub, "op": op, "iat": now,
                  "exp": now + ttl}
        if key is not None:
            claims["key"] = key
        else:
            claims["prefix"] = prefix
        if jti is not None:
            claims["jti"] = jti
        si = (b64u(json.dumps({"alg": "EdDSA", "kid": self.kid}).encode()) +
              "." + b64u(json.dumps(claims).encode()))
        return si + "." + b64u(self.priv.sign(si.encode()))

    def settings(self):
        return {"vendor_key %s__type" % self.kid: "ed25519",
                "vendor_key %s__public_key" % self.kid:
                base64.b64encode(self.raw_pub).decode()}
