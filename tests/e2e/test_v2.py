"""Protocol v2 end to end: tokens signed here in Python (the cryptography
module, independent of the C code) and by npm's jose, every refusal with
its status and message, single use across a restart, key rotation, the
audit fields, the CLI and the libgatekeeper example from the README."""
import base64
import hashlib
import hmac as hmaclib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)

from conftest import BIN, ORIGIN
from jsdeps import js_dir

GK_ID = "gk-test"
TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def compact(obj):
    if isinstance(obj, bytes):
        return obj
    return json.dumps(obj, separators=(",", ":")).encode()


class Keys:
    """The vendor's keys, made here."""

    def __init__(self, d):
        self.dir = d
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.ed_other = ed25519.Ed25519PrivateKey.generate()
        self.old = ed25519.Ed25519PrivateKey.generate()
        self.p256 = ec.generate_private_key(ec.SECP256R1())
        self.secret = os.urandom(24).hex().encode()  # 48 bytes of text
        self.ed_raw = self.ed.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.p256_pub = os.path.join(d, "p256.pub")
        with open(self.p256_pub, "wb") as f:
            f.write(self.p256.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo))
        self.secret_file = os.path.join(d, "hs.secret")
        with open(self.secret_file, "wb") as f:
            f.write(self.secret + b"\n")
        os.chmod(self.secret_file, 0o600)
        self.pem = {}
        for name, k in (("ed1", self.ed), ("p1", self.p256)):
            path = os.path.join(d, name + ".pem")
            with open(path, "wb") as f:
                f.write(k.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
            os.chmod(path, 0o600)
            self.pem[name] = path

    def settings(self):
        old_raw = self.old.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "gate__id": GK_ID,
            "vendor_key ed1__type": "ed25519",
            "vendor_key ed1__public_key": base64.b64encode(
                self.ed_raw).decode(),
            "vendor_key p1__type": "p256",
            "vendor_key p1__public_key_file": self.p256_pub,
            "vendor_key h1__type": "hs256",
            "vendor_key h1__secret_file": self.secret_file,
            # rotation: an expired key and one not valid yet
            "vendor_key old__type": "ed25519",
            "vendor_key old__public_key": b64u(old_raw),
            "vendor_key old__not_after": "2020-01-01",
            "vendor_key future__type": "ed25519",
            "vendor_key future__public_key": base64.b64encode(
                self.ed_raw).decode(),
            "vendor_key future__not_before": "2999-01-01",
        }

    def sign(self, kid, signing_input):
        if kid in ("ed1", "future"):
            return self.ed.sign(signing_input)
        if kid == "old":
            return self.old.sign(signing_input)
        if kid == "p1":
            return es256_raw(self.p256, signing_input)
        if kid == "h1":
            return hmaclib.new(self.secret, signing_input,
                               hashlib.sha256).digest()
        raise ValueError(kid)


def es256_raw(key, data):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


ALG = {"ed1": "EdDSA", "p1": "ES256", "h1": "HS256", "old": "EdDSA",
       "future": "EdDSA"}


def claims(op="get", key="docs/a.txt", prefix=None, ttl=300, **extra):
    now = int(time.time())
    c = {"aud": GK_ID, "op": op, "iat": now, "exp": now + ttl,
         "sub": "user-42"}
    if prefix is not None:
        c["prefix"] = prefix
    else:
        c["key"] = key
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def token(keys, kid="ed1", header=None, body=None, signer=None, **kw):
    h = header if header is not None else {"alg": ALG.get(kid, "EdDSA"),
                                           "kid": kid}
    si = (b64u(compact(h)) + "." +
          b64u(compact(body if body is not None else claims(**kw)))).encode()
    sig = signer(si) if signer else keys.sign(kid, si)
    return si.decode() + "." + b64u(sig)


@pytest.fixture
def v2(gk_factory):
    d = tempfile.mkdtemp(prefix="gk-v2keys-")
    keys = Keys(d)
    g = gk_factory(**keys.settings()).start()
    g.keys = keys
    yield g
    shutil.rmtree(d, ignore_errors=True)


def req(g, method, route, tok=None, via="header", origin=ORIGIN,
        headers=None, params=None):
    h = {"Origin": origin} if origin else {}
    params = dict(params or {})
    if tok is not None and via == "header":
        h["Authorization"] = "Bearer " + tok
    elif tok is not None:
        params["token"] = tok
    h.update(headers or {})
    return requests.request(method, g.base + route, headers=h, params=params,
                            allow_redirects=False, timeout=30)


def msg(r):
    body = r.json()
    assert body["error"] is True, body
    return body["msg"]


def upload(g, key, content, kid="ed1"):
    t = token(g.keys, kid, op="put", key=key)
    r = req(g, "POST", "/v2/uploads/" + urllib.parse.quote(key), t)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fields"]["key"] == key
    up = requests.post(body["url"], data=body["fields"],
                       files={"file": ("f.bin", content)}, timeout=60)
    assert up.status_code == 201, up.text
    return r


# -- success, every algorithm ------------------------------------------------

@pytest.mark.parametrize("kid", ["ed1", "p1", "h1"])
def test_get_upload_list_each_alg(v2, kid):
    data = os.urandom(3000)
    upload(v2, "docs/%s.bin" % kid, data, kid=kid)
    # GET: 302 to a data URL that streams the bytes
    r = req(v2, "GET", "/v2/objects/docs/%s.bin" % kid,
            token(v2.keys, kid, key="docs/%s.bin" % kid))
    assert r.status_code == 302, r.text
    assert r.json()["url"] == r.headers["Location"]
    assert "/_data/docs/%s.bin?" % kid in r.headers["Location"]
    got = requests.get(r.headers["Location"], timeout=30)
    assert got.status_code == 200 and got.content == data
    # token in the query works too
    r = req(v2, "GET", "/v2/objects/docs/%s.bin" % kid,
            token(v2.keys, kid, key="docs/%s.bin" % kid), via="query")
    assert r.status_code == 302
    # list
    r = req(v2, "GET", "/v2/list/docs/", token(v2.keys, kid, op="list",
                                                prefix="docs/"))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["key"] for i in items] == ["docs/%s.bin" % kid]
    assert items[0]["size"] == 3000
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                    items[0]["last_modified"])
    assert r.json()["next"] is None


def test_accept_json_and_head(v2):
    upload(v2, "docs/a.txt", b"hello")
    r = req(v2, "GET", "/v2/objects/docs/a.txt", token(v2.keys),
            headers={"Accept": "application/json"})
    assert r.status_code == 200
    assert "Location" not in r.headers
    assert requests.get(r.json()["url"], timeout=30).content == b"hello"
    r = req(v2, "HEAD", "/v2/objects/docs/a.txt", token(v2.keys))
    assert r.status_code == 302


def test_list_pagination(v2):
    for i in range(5):
        upload(v2, "docs/p/%d.txt" % i, b"x" * (i + 1))
    seen, after = [], None
    for _ in range(4):
        params = {"limit": "2"}
        if after:
            params["start_after"] = after
        r = req(v2, "GET", "/v2/list/docs/p/",
                token(v2.keys, op="list", prefix="docs/"), params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [i["key"] for i in body["items"]]
        after = body["next"]
        if after is None:
            break
    assert seen == ["docs/p/%d.txt" % i for i in range(5)]
    r = req(v2, "GET", "/v2/list/docs/p/",
            token(v2.keys, op="list", prefix="docs/"), params={"limit": "0"})
    assert (r.status_code, msg(r)) == (400, "Bad Request: 'limit' must be 1 "
                                            "to 1000")


def test_list_token_with_key_refused(v2):
    # issue 17, finding 5: a 'key' claim on a list token would list every
    # key that merely starts with it ("ab" -> "ab-private/...")
    upload(v2, "ab-private/secret.txt", b"s")
    upload(v2, "ab/c/own.txt", b"t")
    r = req(v2, "GET", "/v2/list/ab", token(v2.keys, op="list", key="ab"))
    assert (r.status_code, msg(r)) == (
        403, "Forbidden: a list token must carry 'prefix', not 'key'")
    assert "secret" not in r.text
    assert v2.audit_for(r)[0]["decision"] == "deny"
    r = req(v2, "GET", "/v2/list/ab/",
            token(v2.keys, op="list", prefix="ab/"))
    assert [i["key"] for i in r.json()["items"]] == ["ab/c/own.txt"]


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def test_es256_twin_signatures_recorded_as_one(v2):
    # issue 17: (r, s) and (r, n - s) both verify; the audit records the
    # low-s one whichever was sent, so token_sig is unique per token
    upload(v2, "docs/a.txt", b"hello")
    t = token(v2.keys, "p1")
    head, sig = t.rsplit(".", 1)
    raw = b64u_dec(sig)
    r_, s_ = raw[:32], int.from_bytes(raw[32:], "big")
    low = min(s_, P256_N - s_)
    twins = [head + "." + b64u(r_ + v.to_bytes(32, "big"))
             for v in (low, P256_N - low)]
    sigs = []
    for tw in twins:
        r = req(v2, "GET", "/v2/objects/docs/a.txt", tw)
        assert r.status_code == 302, r.text
        sigs.append(v2.audit_for(r)[0]["token_sig"])
    assert sigs == [twins[0].rsplit(".", 1)[1]] * 2


def test_put_over_the_limit_not_read_to_the_end(v2):
    # issue 17, finding 9: a PUT over max_upload_bytes is answered 413 at
    # once when its Content-Length says so, and otherwise closed after a
    # small bound, never read to its end
    import socket
    t = token(v2.keys, op="put", key="docs/big.bin")
    for chunked in (False, True):
        s = socket.create_connection(("127.0.0.1", v2.port))
        head = ("PUT /v2/objects/docs/big.bin HTTP/1.1\r\nHost: x\r\n"
                "Origin: %s\r\nAuthorization: Bearer %s\r\n" % (ORIGIN, t))
        head += ("Transfer-Encoding: chunked\r\n\r\n" if chunked else
                 "Content-Length: %d\r\n\r\n" % (300 << 20))
        s.sendall(head.encode())
        block = b"x" * (1 << 20)
        if chunked:
            block = b"100000\r\n" + block + b"\r\n"
        sent, resp = 0, b""
        s.settimeout(10)
        try:
            while sent < 300 << 20:
                s.sendall(block)
                sent += 1 << 20
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                got = s.recv(65536)
                if not got:
                    break
                resp += got
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        # max_upload_bytes is 100 MiB: far less than that was taken
        assert sent < 130 << 20, (chunked, sent)
        if not chunked:
            assert resp.startswith(b"HTTP/1.1 413 "), resp[:80]
    time.sleep(0.5)
    rows = [r for r in v2.audit_rows() if r["operation"] == "PUT_Object"]
    assert [r["status"] for r in rows] == [413, 413]
    assert all(r["decision"] == "deny" for r in rows)


def test_audit_records_kid_sub_jti_and_signature(v2):
    upload(v2, "docs/a.txt", b"hello")
    t = token(v2.keys, jti="id-1", sub="dr-who")
    r = req(v2, "GET", "/v2/objects/docs/a.txt", t)
    assert r.status_code == 302
    row = v2.audit_for(r)[0]
    assert row["protocol"] == "v2"
    assert row["operation"] == "GET_Object"
    assert row["path"] == "docs/a.txt"
    assert row["decision"] == "allow" and row["status"] == 302
    assert (row["kid"], row["sub"], row["jti"]) == ("ed1", "dr-who", "id-1")
    assert row["token_sig"] == t.split(".")[2]
    # the stored signature proves the vendor signed this token
    si = t.rsplit(".", 1)[0].encode()
    v2.keys.ed.public_key().verify(b64u_dec(row["token_sig"]), si)


# -- refusals, each with its status and message ------------------------------

def forge_hs256_with_ed_pub(keys):
    def signer(si):
        return hmaclib.new(keys.ed_raw, si, hashlib.sha256).digest()
    return signer


def test_refusals(v2):
    k = v2.keys
    now = int(time.time())
    good = token(k)
    h, c, s = good.split(".")
    sig = b64u_dec(s)
    cases = [
        ("wrong key", token(k, signer=lambda si: k.ed_other.sign(si)),
         401, "Unauthorized: invalid signature"),
        ("wrong kid", token(k, header={"alg": "EdDSA", "kid": "nope"}),
         401, "Unauthorized: unknown 'kid'"),
        ("hs256 with the ed25519 public key as secret",
         token(k, header={"alg": "HS256", "kid": "ed1"},
               signer=forge_hs256_with_ed_pub(k)),
         401, "Unauthorized: 'alg' does not match the key's type"),
        ("es256 for an ed25519 kid",
         token(k, header={"alg": "ES256", "kid": "ed1"},
               signer=lambda si: es256_raw(k.p256, si)),
         401, "Unauthorized: 'alg' does not match the key's type"),
        ("alg none", b64u(compact({"alg": "none", "kid": "ed1"})) + "." +
         c + ".", 401, "Unauthorized: alg 'none' is not accepted"),
        ("expired", token(k, body=claims(iat=now - 100, exp=now - 10)),
         401, "Unauthorized: token expired"),
        ("not yet valid", token(k, body=claims(nbf=now + 300)),
         401, "Unauthorized: token not yet valid ('nbf')"),
        ("iat in the future", token(k, body=claims(iat=now + 300,
                                                   exp=now + 600)),
         401, "Unauthorized: 'iat' is in the future"),
        ("lifetime too long", token(k, body=claims(iat=now, exp=now + 901)),
         401, "Unauthorized: token lifetime (exp - iat) exceeds the maximum"),
        ("wrong aud", token(k, body=claims(aud="other-gatekeeper")),
         401, "Unauthorized: wrong audience ('aud')"),
        ("missing exp", token(k, body=claims(exp=None)),
         401, "Unauthorized: missing 'exp' claim"),
        ("non-integer exp", token(k, body=claims(exp=now + 10.5)),
         401, "Unauthorized: 'exp' must be an integer number of seconds"),
        ("string iat", token(k, body=claims(iat=str(now))),
         401, "Unauthorized: 'iat' must be an integer number of seconds"),
        ("truncated signature", h + "." + c + "." + b64u(sig[:-1]),
         401, "Unauthorized: invalid signature"),
        ("bit-flipped signature",
         h + "." + c + "." + b64u(sig[:10] + bytes([sig[10] ^ 1]) +
                                  sig[11:]),
         401, "Unauthorized: invalid signature"),
        ("bit-flipped claims", h + "." + b64u(b64u_dec(c).replace(
            b"docs/a.txt", b"docs/b.txt")) + "." + s,
         401, "Unauthorized: invalid signature"),
        ("padded base64", good + "==",
         401, "Unauthorized: base64url padding is not allowed in the token"),
        ("padded header", h + "=." + c + "." + s,
         401, "Unauthorized: base64url padding is not allowed in the token"),
        ("standard alphabet", h + "." + c + "." + s.replace("-", "+").replace(
            "_", "/") + "+/",
         401, "Unauthorized: token is not base64url"),
        ("duplicate claims", token(k, body=b'{"aud":"gk-test","op":"get",'
                                   b'"key":"docs/a.txt","key":"docs/a.txt",'
                                   b'"iat":%d,"exp":%d}' % (now, now + 60)),
         401, "Unauthorized: duplicate claim"),
        ("exp beyond a double", token(k, body=b'{"aud":"gk-test","op":"get",'
                                      b'"key":"docs/a.txt","iat":%d,'
                                      b'"exp": 1e400}' % now),
         401, "Unauthorized: claim 'exp' is out of range"),
        ("iat beyond int64", token(k, body=b'{"aud":"gk-test","op":"get",'
                                   b'"key":"docs/a.txt","exp":%d,"iat" :\n'
                                   b' -99999999999999999999}' % (now + 60)),
         401, "Unauthorized: claim 'iat' is out of range"),
        ("nbf beyond int64", token(k, body=b'{"nbf":9223372036854775808,'
                                   b'"aud":"gk-test","op":"get",'
                                   b'"key":"docs/a.txt","iat":%d,"exp":%d}'
                                   % (now, now + 60)),
         401, "Unauthorized: claim 'nbf' is out of range"),
        ("unknown claim beyond a double",
         token(k, body=b'{"aud":"gk-test","op":"get","key":"docs/a.txt",'
                       b'"iat":%d,"exp":%d,"x":[1e999]}' % (now, now + 60)),
         401, "Unauthorized: a number in the token claims is out of range"),
        ("duplicate header", token(k, header=b'{"alg":"EdDSA","kid":"ed1",'
                                   b'"kid":"ed1"}'),
         401, "Unauthorized: duplicate member in the token header"),
        ("crit header", token(k, header={"alg": "EdDSA", "kid": "ed1",
                                         "crit": ["exp"]}),
         401, "Unauthorized: 'crit' header is not supported"),
        ("unknown header member", token(k, header={"alg": "EdDSA",
                                                   "kid": "ed1",
                                                   "jku": "http://x"}),
         401, "Unauthorized: unsupported token header member"),
        ("two parts", h + "." + c,
         401, "Unauthorized: malformed token (expected header.claims.signature)"),
        ("9 KiB token", token(k, sub="x" * 9216),
         401, "Unauthorized: token too large"),
        ("prefix without slash", token(k, body=claims(prefix="docs")),
         401, "Unauthorized: 'prefix' must end with '/'"),
        ("key and prefix", token(k, body=dict(claims(prefix="docs/"),
                                              key="docs/a.txt")),
         401, "Unauthorized: exactly one of 'key' or 'prefix' is required"),
        ("bad op", token(k, op="delete"),
         401, "Unauthorized: 'op' must be get, list or put"),
        ("expired key (rotation)", token(k, kid="old"),
         401, "Unauthorized: the vendor key is not valid at this time"),
        ("key not valid yet", token(k, kid="future"),
         401, "Unauthorized: the vendor key is not valid at this time"),
        ("key outside the token's key", token(k, key="docs/b.txt"),
         403, "Forbidden: key outside the token's scope"),
        ("key outside the prefix", token(k, prefix="doc/"),
         403, "Forbidden: key outside the token's scope"),
        ("list token for an object", token(k, op="list", prefix="docs/"),
         403, "Forbidden: the token's 'op' does not allow this request"),
        ("cip mismatch", token(k, cip="10.0.0.0/8"),
         403, "Forbidden: client address outside the token's 'cip'"),
        ("malformed cip", token(k, cip="10.0.0.1/8"),
         401, "Unauthorized: invalid 'cip' claim"),
    ]
    for name, t, status, text in cases:
        r = req(v2, "GET", "/v2/objects/docs/a.txt", t)
        assert (r.status_code, msg(r)) == (status, text), name
        row = v2.audit_for(r)[0]
        assert (row["status"], row["message"], row["decision"]) == (
            status, text, "deny"), name
        assert row["protocol"] == "v2"
        # nothing of the token reaches the body
        assert t.split(".")[-1][:16] not in r.text or not t.split(".")[-1]


def test_scope_prefix_is_a_byte_prefix_of_valid_keys(v2):
    t = token(v2.keys, prefix="docs/")
    r = req(v2, "GET", "/v2/objects/docsx/a.txt", t)
    assert (r.status_code, msg(r)) == (403, "Forbidden: key outside the "
                                            "token's scope")
    r = req(v2, "GET", "/v2/objects/docs/%2E%2E/secret.txt", t)
    assert (r.status_code, msg(r)) == (400, "Bad Request: invalid key")
    r = req(v2, "GET", "/v2/objects/docs/a.txt", token(v2.keys, cip="127.0.0.1"))
    assert r.status_code == 302


def _from(src):
    """A requests session whose connections come from loopback address
    src."""
    from requests.adapters import HTTPAdapter

    class Src(HTTPAdapter):
        def init_poolmanager(self, *a, **kw):
            kw["source_address"] = (src, 0)
            super().init_poolmanager(*a, **kw)

    s = requests.Session()
    s.mount("http://", Src())
    return s


def test_cip_binds_the_data_url_and_the_upload_form(v2):
    # issue 17: a token bound to 'cip' gives a data URL and an upload form
    # bound to it too; before, anyone holding the URL could use it
    upload(v2, "docs/c.txt", b"bound")
    r = req(v2, "GET", "/v2/objects/docs/c.txt",
            token(v2.keys, key="docs/c.txt", cip="127.0.0.1/32"))
    assert r.status_code == 302
    url = r.headers["Location"]
    assert "&cip=127.0.0.1%2F32&" in url
    assert _from("127.0.0.1").get(url, timeout=30).content == b"bound"
    r = _from("127.0.0.2").get(url, timeout=30)
    assert (r.status_code, msg(r)) == (
        403, "Forbidden: client address outside the token's 'cip'")
    # the signature covers cip: dropping or widening it breaks it
    for bad in (url.replace("&cip=127.0.0.1%2F32", ""),
                url.replace("127.0.0.1%2F32", "127.0.0.0%2F8")):
        r = _from("127.0.0.2").get(bad, timeout=30)
        assert (r.status_code, msg(r)) == (403, "Forbidden: invalid "
                                                "signature"), bad
    # the upload form
    t = token(v2.keys, op="put", key="docs/up.txt", cip="127.0.0.1")
    r = req(v2, "POST", "/v2/uploads/docs/up.txt", t)
    assert r.status_code == 200, r.text
    body = r.json()
    up = _from("127.0.0.2").post(body["url"], data=body["fields"],
                                 files={"file": ("f", b"x")}, timeout=30)
    assert (up.status_code, msg(up)) == (
        403, "Forbidden: client address outside the token's 'cip'")
    up = _from("127.0.0.1").post(body["url"], data=body["fields"],
                                 files={"file": ("f", b"x")}, timeout=30)
    assert up.status_code == 201, up.text
    # a token without cip: the URL works from anywhere, as before
    r = req(v2, "GET", "/v2/objects/docs/c.txt",
            token(v2.keys, key="docs/c.txt"))
    assert "cip=" not in r.headers["Location"]
    assert _from("127.0.0.2").get(r.headers["Location"],
                                  timeout=30).status_code == 200


def test_token_transport(v2):
    t = token(v2.keys)
    r = req(v2, "GET", "/v2/objects/docs/a.txt")
    assert (r.status_code, msg(r)) == (401, "Unauthorized: missing token")
    r = requests.get(v2.base + "/v2/objects/docs/a.txt", params={"token": t},
                     headers={"Origin": ORIGIN, "Authorization": "Bearer " + t},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 400
    r = req(v2, "GET", "/v2/objects/docs/a.txt",
            headers={"Authorization": "Basic " + t})
    assert (r.status_code, msg(r)) == (401, "Unauthorized: Authorization must "
                                            "be 'Bearer TOKEN'")
    # origin and ACL as for v1
    r = req(v2, "GET", "/v2/objects/docs/a.txt", t, origin="https://evil.example")
    assert (r.status_code, msg(r)) == (403, "Forbidden: bad origin")
    # a PUT with a body needs a 'put' token
    r = req(v2, "PUT", "/v2/objects/docs/a.txt", t)
    assert (r.status_code, msg(r)) == (
        403, "Forbidden: the token's 'op' does not allow this request")
    r = req(v2, "GET", "/v2/nothing/here", t)
    assert r.status_code == 404


def test_acl_applies(gk_factory):
    d = tempfile.mkdtemp(prefix="gk-v2keys-")
    keys = Keys(d)
    g = gk_factory(acl__ip_allow="10.0.0.0/8", **keys.settings()).start()
    g.keys = keys
    r = req(g, "GET", "/v2/objects/docs/a.txt", token(keys))
    assert (r.status_code, msg(r)) == (403, "Forbidden: ACL")
    # uploads are exempt from the IP lists by default, as in v1
    r = req(g, "POST", "/v2/uploads/docs/a.txt", token(keys, op="put"))
    assert r.status_code == 200
    shutil.rmtree(d, ignore_errors=True)


def test_jti_single_use_across_restart(v2):
    t = token(v2.keys, jti="once-" + os.urandom(4).hex())
    r = req(v2, "GET", "/v2/objects/docs/a.txt", t)
    assert r.status_code == 302
    r = req(v2, "GET", "/v2/objects/docs/a.txt", t)
    assert (r.status_code, msg(r)) == (403, "Forbidden: token already used "
                                            "('jti')")
    v2.stop()
    v2.start()
    r = req(v2, "GET", "/v2/objects/docs/a.txt", t)
    assert (r.status_code, msg(r)) == (403, "Forbidden: token already used "
                                            "('jti')")
    # a refused request does not use up the jti
    t2 = token(v2.keys, jti="twice", cip="10.0.0.0/8")
    assert req(v2, "GET", "/v2/objects/docs/a.txt", t2).status_code == 403
    t2 = token(v2.keys, jti="twice")
    assert req(v2, "GET", "/v2/objects/docs/a.txt", t2).status_code == 302


# -- single use reaches the upload form -------------------------------------

ONCE_USED = "Forbidden: this upload form was used already (single use)"


def upload_form(g, key, **kw):
    r = req(g, "POST", "/v2/uploads/" + urllib.parse.quote(key),
            token(g.keys, op="put", key=key, **kw))
    assert r.status_code == 200, r.text
    return r.json()


def post_form(form, content):
    return requests.post(form["url"], data=form["fields"],
                         files={"file": ("f.bin", content)}, timeout=60)


def upload_rows(g, key, n):
    deadline = time.monotonic() + 15
    while True:
        rows = g.audit_rows("protocol = 'upload' AND path = ?", (key,))
        if len(rows) >= n or time.monotonic() > deadline:
            return [(r["status"], r["decision"], r["message"]) for r in rows]
        time.sleep(0.1)


def stored(g, key):
    r = req(g, "GET", "/v2/objects/" + key, token(g.keys, key=key))
    assert r.status_code == 302, r.text
    return requests.get(r.headers["Location"], timeout=30).content


def test_single_use_token_uploads_once(v2):
    # a token with 'jti' buys one form, and the form one upload: a second
    # POST of it is refused (JSON, audited as a deny) and stores nothing
    key = "docs/once.txt"
    form = upload_form(v2, key, jti="up-" + os.urandom(4).hex())
    assert post_form(form, b"first").status_code == 201
    again = post_form(form, b"second")
    assert again.status_code == 403, again.text
    assert again.headers["Content-Type"].startswith("application/json")
    assert again.json() == {"msg": ONCE_USED, "error": True}
    assert stored(v2, key) == b"first"
    assert upload_rows(v2, key, 2) == [(201, "allow", "Success"),
                                       (403, "deny", ONCE_USED)]
    # after a restart as well (the replay cache is in the audit database)
    v2.stop()
    v2.start()
    assert post_form(form, b"third").status_code == 403
    assert stored(v2, key) == b"first"
    # a token without 'jti' is reusable until it expires, and so its form
    key = "docs/many.txt"
    form = upload_form(v2, key)
    assert [post_form(form, b"x%d" % i).status_code
            for i in range(3)] == [201] * 3


def test_single_use_form_survives_a_failed_attempt(v2):
    # an attempt that fails before its end (the connection cut in the
    # middle of the file) does not use the form up: the user can retry,
    # and after the first complete upload it is used
    import socket
    key = "docs/retry.bin"
    form = upload_form(v2, key, jti="up-" + os.urandom(4).hex())
    boundary = b"Cut0Here"
    body = b""
    for k, v in form["fields"].items():
        body += (b"--" + boundary + b"\r\nContent-Disposition: form-data; "
                 b"name=\"" + k.encode() + b"\"\r\n\r\n" + v.encode() +
                 b"\r\n")
    body += (b"--" + boundary + b"\r\nContent-Disposition: form-data; "
             b"name=\"file\"; filename=\"f.bin\"\r\n\r\n" +
             b"c" * 100000 + b"\r\n--" + boundary + b"--\r\n")
    head = (b"POST /_upload HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"multipart/form-data; boundary=" + boundary +
            b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    s = socket.create_connection(("127.0.0.1", v2.port))
    s.sendall(head + body[:len(body) // 2])
    time.sleep(0.3)
    s.close()
    rows = upload_rows(v2, key, 1)
    assert [r[:2] for r in rows] == [(400, "deny")], rows
    # the same form again, whole: stored
    assert post_form(form, b"whole").status_code == 201
    assert stored(v2, key) == b"whole"
    # and now used
    again = post_form(form, b"more")
    assert (again.status_code, again.json()["msg"]) == (403, ONCE_USED)
    assert stored(v2, key) == b"whole"
    # a form refused for its size does not use it up either
    key = "docs/retry2.bin"
    form = upload_form(v2, key, jti="up-" + os.urandom(4).hex())
    big = post_form(form, b"z" * ((100 << 20) + 1))
    assert big.status_code == 413, big.text
    assert post_form(form, b"small").status_code == 201


def test_single_use_form_two_at_once(v2):
    # two uploads with the same single-use form at the same time: one is
    # stored, the other refused
    import threading
    key = "docs/race.bin"
    form = upload_form(v2, key, jti="up-" + os.urandom(4).hex())
    got = []

    def one(c):
        r = post_form(form, c * 300000)
        got.append((r.status_code, r.json()["msg"], c))

    ts = [threading.Thread(target=one, args=(c,)) for c in (b"a", b"b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(g[:2] for g in got) == [(201, "Success"), (403, ONCE_USED)]
    won = [g[2] for g in got if g[0] == 201][0]
    assert stored(v2, key) == won * 300000


def test_replay_cache_unavailable_is_503(v2):
    t = token(v2.keys, jti="j-503")
    db = os.path.join(v2.data, "audit.db")
    import sqlite3
    c = sqlite3.connect(db, timeout=30)
    c.execute("BEGIN EXCLUSIVE")  # hold the write lock: nothing can commit
    try:
        r = req(v2, "GET", "/v2/objects/docs/a.txt", t)
    finally:
        c.rollback()
        c.close()
    assert r.status_code == 503
    assert msg(r).startswith("Service Unavailable")


def v2_signature_counts(g):
    r = requests.get(g.base + "/metrics", timeout=30)
    assert r.status_code == 200
    got = dict(re.findall(
        r'^gatekeeper_v2_signatures_total\{check="(\w+)"\} (\d+)$',
        r.text, re.M))
    return int(got["public_key"]), int(got["cache"])


def test_verified_token_reused_from_cache_until_key_changes(gk_factory):
    """A token used again is accepted without a second public-key check
    (one HTTP thread here, so the second request meets the first one's
    cache), each use is its own audited grant with the token's claims
    checked, and another key behind the kid refuses the token."""
    d = tempfile.mkdtemp(prefix="gk-v2keys-")
    keys = Keys(d)
    g = gk_factory(server__threads="1", **keys.settings()).start()
    g.keys = keys
    t = token(keys)
    for _ in range(3):
        r = req(g, "GET", "/v2/objects/docs/a.txt", t)
        assert r.status_code == 302, r.text
    assert v2_signature_counts(g) == (1, 2)
    rows = g.audit_rows("protocol = 'v2' AND decision = 'allow'")
    assert len(rows) == 3
    assert {row["token_sig"] for row in rows} == {t.rsplit(".", 1)[1]}
    # the same bytes with another claim set are another token
    t_other = token(keys, key="docs/b.txt")
    assert req(g, "GET", "/v2/objects/docs/a.txt", t_other).status_code == 403
    # claims are checked on every use: this token is for docs/a.txt only
    r = req(g, "GET", "/v2/objects/docs/b.txt", t)
    assert r.status_code == 403, r.text
    # a new key behind kid ed1 (keys change with a restart): refused
    new = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    g.stop()
    with open(g.config) as f:
        text = f.read()
    old = base64.b64encode(keys.ed_raw).decode()
    assert old in text
    with open(g.config, "w") as f:
        f.write(text.replace(old, base64.b64encode(new).decode()))
    g.start()
    r = req(g, "GET", "/v2/objects/docs/a.txt", t)
    assert (r.status_code, msg(r)) == (401, "Unauthorized: invalid signature")
    shutil.rmtree(d, ignore_errors=True)


def test_verify_cache_off(gk_factory):
    d = tempfile.mkdtemp(prefix="gk-v2keys-")
    keys = Keys(d)
    g = gk_factory(server__threads="1", gate__v2_verify_cache="0",
                   **keys.settings()).start()
    t = token(keys)
    for _ in range(3):
        assert req(g, "GET", "/v2/objects/docs/a.txt", t).status_code == 302
    assert v2_signature_counts(g) == (3, 0)
    shutil.rmtree(d, ignore_errors=True)


# -- config and CLI ----------------------------------------------------------

def test_bad_vendor_keys_refused(gk_factory, tmp_path):
    g = gk_factory()
    base = open(g.config).read()
    short = tmp_path / "short.secret"
    short.write_text("x" * 20)
    short.chmod(0o600)
    for stanza, err in (
            ("type = ed25519\npublic_key = AAAA\n",
             "vendor key 'a': not a valid Ed25519 public key"),
            ("type = rsa\n", "type must be ed25519, p256 or hs256"),
            ("type = hs256\nsecret_file = %s\n" % short, "at least 32 bytes"),
            ("type = ed25519\n", "exactly one of public_key or "
             "public_key_file"),
            ("type = ed25519\ntype = p256\n", "type is set twice"),
            ("type = ed25519\ncolor = red\n", "unknown setting "
             "[vendor_key a] color")):
        with open(g.config, "w") as f:
            f.write(base + "[vendor_key a]\n" + stanza)
        p = g.run("check-config", check=False)
        assert p.returncode == 1, stanza
        assert err in p.stderr, (stanza, p.stderr)
        assert "gatekeeper check-config: " in p.stderr


def test_colon_section_form_and_printing(gk_factory, tmp_path):
    keys = Keys(str(tmp_path))
    g = gk_factory(gate__id=GK_ID, **{
        "vendor_key:ed1__type": "ed25519",
        "vendor_key:ed1__public_key": base64.b64encode(keys.ed_raw).decode(),
        "vendor_key:ed1__not_after": "2999-12-31T00:00:00Z"})
    out = g.run("check-config").stdout
    assert "[vendor_key ed1]\ntype = ed25519\npublic_key = %s\n" \
        "not_after = 2999-12-31T00:00:00Z" % base64.b64encode(
            keys.ed_raw).decode() in out
    g.start()
    g.keys = keys
    r = req(g, "GET", "/v2/objects/docs/a.txt", token(keys))
    assert r.status_code == 302, r.text


def test_help_texts():
    for args, words in ((["sign", "v2", "--help"], ["--key-file", "--jti"]),
                        (["sign", "--help"], ["sign v2"]),
                        (["keygen", "--help"], ["--vendor", "vendor_key"])):
        p = subprocess.run([BIN] + args, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0
        for w in words:
            assert w in p.stdout, (args, w)


def test_keygen_vendor_and_sign_v2(gk_factory, tmp_path):
    g = gk_factory(gate__id=GK_ID)
    out = g.run("keygen", "--vendor", "ed25519", "--kid", "v-2026",
                "--out", str(tmp_path)).stdout
    priv = tmp_path / "v-2026.key"
    assert oct(priv.stat().st_mode & 0o777) == "0o600"
    stanza = out[out.index("[vendor_key v-2026]"):]
    with open(g.config, "a") as f:
        f.write(stanza)
    g.start()
    upload_key = "docs/cli.txt"
    p = g.run("sign", "v2", "--kid", "v-2026", "--key-file", str(priv),
              "--op", "put", "--key", upload_key)
    tok, url = p.stdout.split()
    r = requests.post(url, headers={"Origin": ORIGIN}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert requests.post(body["url"], data=body["fields"],
                         files={"file": ("f", b"from the cli")},
                         timeout=30).status_code == 201
    p = g.run("sign", "v2", "--kid", "v-2026", "--key-file", str(priv),
              "--op", "get", "--key", upload_key, "--jti", "auto",
              "--sub", "u-9", "--ttl", "60")
    tok, url = p.stdout.split()
    assert url == "%s/v2/objects/%s?token=%s" % (g.base, upload_key, tok)
    claims_ = json.loads(b64u_dec(tok.split(".")[1]))
    assert claims_["exp"] - claims_["iat"] == 60
    assert claims_["aud"] == GK_ID and claims_["sub"] == "u-9"
    assert len(claims_["jti"]) == 32
    r = requests.get(url, headers={"Origin": ORIGIN}, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 302
    assert requests.get(r.headers["Location"],
                        timeout=30).content == b"from the cli"
    # usage errors
    p = g.run("sign", "v2", "--kid", "v-2026", "--key-file", str(priv),
              "--op", "list", "--prefix", "docs", check=False)
    assert p.returncode == 2 and "must end with '/'" in p.stderr


# -- interop with npm's jose -------------------------------------------------

# tests/browser/jose-interop.mjs with the pinned jose (make js-deps)

@pytest.fixture(scope="module")
def jose_dir():
    return js_dir("jose")


def jose(d, *args):
    p = subprocess.run(["node", os.path.join(d, "jose-interop.mjs")] +
                       list(args), cwd=d, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_jose_tokens_accepted(v2, jose_dir):
    upload(v2, "docs/jose.txt", b"interop")
    for alg, kid, path in (("EdDSA", "ed1", v2.keys.pem["ed1"]),
                           ("ES256", "p1", v2.keys.pem["p1"]),
                           ("HS256", "h1", v2.keys.secret_file)):
        t = jose(jose_dir, "sign", alg, kid, path, GK_ID, "docs/jose.txt")
        r = req(v2, "GET", "/v2/objects/docs/jose.txt", t)
        assert r.status_code == 302, (alg, r.text)
        assert requests.get(r.headers["Location"],
                            timeout=30).content == b"interop"
        row = v2.audit_for(r)[0]
        assert (row["kid"], row["sub"]) == (kid, "jose-user")
        assert row["jti"].startswith("jose-" + alg)
        # and jose's token for another key is refused
        r = req(v2, "GET", "/v2/objects/docs/other.txt", t)
        assert r.status_code == 403


def test_cli_tokens_verify_in_jose(gk_factory, tmp_path, jose_dir):
    g = gk_factory(gate__id=GK_ID)
    for typ, alg in (("ed25519", "EdDSA"), ("p256", "ES256")):
        g.run("keygen", "--vendor", typ, "--kid", "k-" + typ, "--out",
              str(tmp_path))
        p = g.run("sign", "v2", "--kid", "k-" + typ, "--key-file",
                  str(tmp_path / ("k-%s.key" % typ)), "--op", "list",
                  "--prefix", "docs/", "--sub", "s-1", "--jti", "auto")
        tok = p.stdout.split()[0]
        out = json.loads(jose(jose_dir, "verify", alg, "k-" + typ,
                              str(tmp_path / ("k-%s.pub" % typ)),
                              GK_ID, "", tok))
        assert out["protectedHeader"]["alg"] == alg
        assert out["protectedHeader"]["kid"] == "k-" + typ
        assert out["payload"]["op"] == "list"
        assert out["payload"]["prefix"] == "docs/"
        assert out["payload"]["sub"] == "s-1"


# -- libgatekeeper: the README example, compiled and used ---------------------

def readme_example():
    text = open(os.path.join(TOP, "README.md")).read()
    m = re.search(r"<!-- libgatekeeper example[^>]*-->\s*```c\n(.*?)```",
                  text, re.S)
    assert m, "README lost its libgatekeeper example"
    return m.group(1)


@pytest.mark.parametrize("kind", ["static", "shared"])
def test_libgatekeeper_readme_example(v2, tmp_path, kind):
    build = os.path.dirname(os.path.abspath(BIN))
    lib = os.path.join(build, "libgatekeeper.a" if kind == "static"
                       else "libgatekeeper.so")
    assert os.path.exists(lib), "build the library first (make lib)"
    src = tmp_path / "vendor.c"
    src.write_text(readme_example())
    exe = tmp_path / "vendor"
    cmd = ["cc", "-std=c11", "-Wall", "-Werror", "-o", str(exe), str(src),
           "-I", os.path.join(TOP, "include")]
    cmd += [lib, "-lcrypto"] if kind == "static" else [
        "-L", build, "-lgatekeeper", "-lcrypto", "-Wl,-rpath," + build]
    with open(lib, "rb") as f:
        if b"__asan" in f.read():  # make asan: the library is instrumented
            cmd.append("-fsanitize=address,undefined")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    upload(v2, "docs/lib.txt", b"signed in C")
    p = subprocess.run([str(exe), v2.keys.pem["ed1"], "ed1", GK_ID, v2.base,
                        "docs/lib.txt"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    url = p.stdout.strip()
    r = requests.get(url, headers={"Origin": ORIGIN}, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 302, r.text
    assert requests.get(r.headers["Location"],
                        timeout=30).content == b"signed in C"
    row = v2.audit_for(r)[0]
    assert row["sub"] == "user-42" and len(row["jti"]) == 32
    # the same URL a second time: single use
    r = requests.get(url, headers={"Origin": ORIGIN}, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 403


def test_put_object_body(v2):
    """PUT /v2/objects/{key} with the object as the body (the fs store
    takes bodies; s3 only in proxy mode)."""
    data = os.urandom(200_000)
    key = "docs/put \u00e9.bin"
    path = "/v2/objects/" + urllib.parse.quote(key)
    t = token(v2.keys, op="put", key=key, jti="put-1")
    r = requests.put(v2.base + path, data=data, timeout=60,
                     headers={"Origin": ORIGIN, "Authorization": "Bearer " + t})
    assert r.status_code == 201, r.text
    assert r.json() == {"msg": "Success", "key": key, "size": len(data),
                        "error": False}
    (row,) = v2.audit_for(r)
    assert (row["protocol"], row["operation"], row["status"]) == (
        "v2", "PUT_Object", 201)
    assert row["kid"] == "ed1" and row["jti"] == "put-1"
    assert row["bytes"] == len(data) and row["path"] == key
    got = req(v2, "GET", path, token(v2.keys, op="get", key=key))
    assert got.status_code == 302
    assert requests.get(got.headers["Location"], timeout=60).content == data
    # the same token again: single use
    r = requests.put(v2.base + path, data=b"x", timeout=60,
                     headers={"Origin": ORIGIN, "Authorization": "Bearer " + t})
    assert (r.status_code, msg(r)) == (403, "Forbidden: token already used ('jti')")
    # outside the token's key: refused, and nothing is stored
    t = token(v2.keys, op="put", key="docs/other.bin")
    r = requests.put(v2.base + "/v2/objects/docs/third.bin", data=b"x",
                     timeout=60, headers={"Origin": ORIGIN,
                                          "Authorization": "Bearer " + t})
    assert (r.status_code, msg(r)) == (403, "Forbidden: key outside the token's scope")
    got = req(v2, "GET", "/v2/objects/docs/third.bin",
              token(v2.keys, op="get", key="docs/third.bin"))
    assert requests.get(got.headers["Location"], timeout=60).status_code == 404


def test_put_object_body_too_large(gk_factory, tmp_path):
    keys = Keys(str(tmp_path))
    g = gk_factory(gate__max_upload_bytes="1000", **keys.settings()).start()
    t = token(keys, op="put", key="docs/big.bin")
    r = requests.put(g.base + "/v2/objects/docs/big.bin", data=b"a" * 1001,
                     timeout=60, headers={"Origin": ORIGIN,
                                          "Authorization": "Bearer " + t})
    assert r.status_code == 413
    (row,) = g.audit_for(r)
    assert row["status"] == 413 and row["decision"] == "deny"
