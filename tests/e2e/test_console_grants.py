"""The console's Grants tab in Debian's Chromium against a gatekeeper with
the S3 endpoint: a grant created from the page works with boto3 within its
prefix only, a grant revoked from the page is refused at once
(InvalidAccessKeyId), both changes are audit records, and the secret is
shown once and found nowhere else: not in the audit database, the
gatekeeper's log (at debug level), nor any later page or API answer.
The API's refusals (CSRF, token, bad fields, S3 endpoint off) outside the
browser."""
import json
import os
import subprocess
import time

import botocore.exceptions
import pytest
import requests

from browserutil import BROWSER, ensure_playwright
from conftest import ORIGIN
from s3api_util import BUCKET, client, code, s3gk


def admin_token(g):
    with open(os.path.join(g.data, "keys", "admin.token")) as f:
        return f.read().strip()


def files_holding(paths, needle):
    hits = []
    for p in paths:
        if os.path.exists(p):
            with open(p, "rb") as f:
                if needle.encode() in f.read():
                    hits.append(p)
    return hits


def test_grants_tab_in_chromium(gk_factory, tmp_path):
    ensure_playwright()
    g = s3gk(gk_factory, server__log_level="debug").start()
    created_file = tmp_path / "created.json"
    flag = tmp_path / "revoke.now"
    cfg = {"base": g.base, "adminToken": admin_token(g),
           "name": "partner upload <b>x</b>", "prefix": "reports/2026/",
           "createdFile": str(created_file), "revokeFlag": str(flag),
           "shots": os.environ.get("GK_SCREENSHOTS", str(tmp_path))}
    cfgf = tmp_path / "grants.json"
    cfgf.write_text(json.dumps(cfg))
    node = subprocess.Popen(["node", "console_grants.mjs", str(cfgf)],
                            cwd=BROWSER, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while not created_file.exists():
            assert node.poll() is None, node.communicate()
            assert time.time() - t0 < 180, "the page made no grant"
            time.sleep(0.2)
        time.sleep(0.2)
        shown = json.loads(created_file.read_text())
        created_file.unlink()
        secret = shown["secret"]
        assert len(secret) == 40 and shown["akid"].startswith("GK")
        gr = {"access_key_id": shown["akid"], "secret_access_key": secret}
        c = client(g, gr)
        # within its prefix: put, get, list
        c.put_object(Bucket=BUCKET, Key="reports/2026/q1.csv", Body=b"a,b\n")
        got = c.get_object(Bucket=BUCKET, Key="reports/2026/q1.csv")
        assert got["Body"].read() == b"a,b\n"
        keys = [o["Key"] for o in c.list_objects_v2(
            Bucket=BUCKET, Prefix="reports/2026/").get("Contents", [])]
        assert keys == ["reports/2026/q1.csv"]
        # outside it: refused
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.put_object(Bucket=BUCKET, Key="reports/2025/q1.csv", Body=b"x")
        assert code(e) == "AccessDenied"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.delete_object(Bucket=BUCKET, Key="reports/2026/q1.csv")
        assert code(e) == "AccessDenied"   # delete was not ticked
        flag.write_text("go")
        out, err = node.communicate(timeout=180)
        assert node.returncode == 0, (out[-2000:], err[-4000:])
        seen = json.loads(out.strip().splitlines()[-1])
    finally:
        if node.poll() is None:
            node.kill()
            node.communicate()

    assert seen["csp"] == [] and seen["errors"] == [], seen
    assert seen["before"] == []
    assert seen["bad_expires"] == \
        "Bad Request: 'Expires in' must be like 90d, 12h, 30m or 45s"
    assert seen["bad_ip"] == ("Bad Request: 'Client CIDRs' 10.0.0.1/8 is "
                              "not an address or CIDR")
    assert seen["bad_prefix"] == (
        "Bad Request: 'Key prefix' .gatekeeper-mpu/ is reserved (the S3 "
        "endpoint's multipart staging area)")
    assert seen["create_status"] == 201
    gid = shown["id"]
    row = [r for r in seen["after_create"] if r["id"] == gid]
    assert len(row) == 1 and row[0]["state"] == "active"
    cells = row[0]["cells"]
    assert cells[:4] == [cfg["name"], shown["akid"], "reports/2026/",
                         "get,list,put"]
    assert cells[5] == "127.0.0.0/8, ::1/128" and cells[6] == "50/s"
    assert cells[7] == "active" and cells[9] == ""
    assert seen["secret_gone"] == ""
    assert seen["revoke_status"] == 200
    row = [r for r in seen["after_revoke"] if r["id"] == gid][0]
    assert row["state"] == "revoked" and row["cells"][9].endswith("Z")

    # revoked from the page: the same key is refused at once
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_object(Bucket=BUCKET, Key="reports/2026/q1.csv")
    assert code(e) == "InvalidAccessKeyId"

    # both changes are records of the chain, found by the grant's id
    rows = g.audit_rows("kid = ? AND protocol = 'grant'", (gid,))
    assert [(r["operation"], r["status"], r["decision"]) for r in rows] == \
        [("grant_create", 201, "allow"), ("grant_revoke", 200, "allow")]
    assert all("from the console" in r["message"] and shown["akid"] in
               r["message"] for r in rows)
    # the page's audit filter by the grant's id: its changes and its use
    assert {"grant_create", "grant_revoke", "PutObject", "GetObject"} <= \
        set(seen["audit_ops"]), seen["audit_ops"]
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout
    p = g.run("audit", "search", "--grant", gid)
    assert "grant_create" in p.stdout and "grant_revoke" in p.stdout

    # the secret: nowhere but in that one answer
    g.stop()
    data = [os.path.join(root, f) for root, _, fs in os.walk(g.dir)
            for f in fs]
    assert files_holding(data, secret) == []
    assert os.path.getsize(g.log) > 0
    assert not any(secret in b for b in seen["later_bodies"])
    assert any(gid in b for b in seen["later_bodies"])


def test_grants_api_refusals(gk_factory):
    g = s3gk(gk_factory).start()
    tok = {"Authorization": "Bearer " + admin_token(g)}
    url = g.base + "/admin/api/grants"
    good = {"name": "n", "prefix": "a/", "ops": "get"}
    # no token, wrong token: 401, and nothing made
    assert requests.post(url, params=good, timeout=10).status_code == 401
    r = requests.post(url, params=good, timeout=10,
                      headers={"Authorization": "Bearer " + "x" * 43})
    assert r.status_code == 401
    # a session without its CSRF token: 401
    r = requests.post(g.base + "/admin/api/login", headers=tok, timeout=10)
    assert r.status_code == 200
    cookie = {"Cookie": "gk_console=" + r.cookies["gk_console"]}
    assert requests.post(url, params=good, headers=cookie,
                         timeout=10).status_code == 401
    # with it, from a foreign origin: 401
    h = dict(cookie, **{"X-CSRF-Token": r.json()["csrf"],
                        "Origin": "https://evil.example"})
    assert requests.post(url, params=good, headers=h,
                         timeout=10).status_code == 401
    assert requests.get(url, headers=tok, timeout=10).json()["grants"] == []
    # bad fields: 400 with the field named as the form labels it (the
    # CLI's option names mean nothing on the page)
    for params, msg in [
            ({"prefix": "a/", "ops": "get"}, "'Name' is required"),
            ({"name": "n" * 129, "prefix": "a/", "ops": "get"},
             "'Name' is too long"),
            ({"name": "n\x01", "prefix": "a/", "ops": "get"},
             "'Name' must be 1-128 printable characters"),
            ({"name": "n", "ops": "get"}, "'Key prefix' is required"),
            ({"name": "n", "prefix": "a/", "ops": "get,fly"},
             "'Operations' must be"),
            (dict(good, rate="0"), "'Rate /s' must be"),
            (dict(good, expires="soon"), "'Expires in' must be"),
            (dict(good, ip="10.0.0.0/99"),
             "'Client CIDRs' 10.0.0.0/99 is not an address or CIDR"),
            (dict(good, ip=",".join(["10.0.0.1"] * 17)),
             "'Client CIDRs' must be"),
            (dict(good, secret="s"), "unknown param"),
            ({"name": "n", "prefix": "../x", "ops": "get"},
             "'Key prefix' is not a valid key prefix"),
            ({"name": "n", "prefix": "a\x01/", "ops": "get"},
             "'Key prefix' holds a control character"),
            ({"name": "n", "prefix": ".gatekeeper-mpu/", "ops": "get"},
             "'Key prefix' .gatekeeper-mpu/ is reserved"),
            ({"name": "n", "prefix": ".gatekeeper-mpu/u/", "ops": "put"},
             "'Key prefix' .gatekeeper-mpu/ is reserved")]:
        r = requests.post(url, params=params, headers=tok, timeout=10)
        assert r.status_code == 400, (params, r.text)
        assert msg in r.json()["msg"], (params, r.text)
        assert "--" not in r.json()["msg"], (params, r.text)
    assert requests.get(url, headers=tok, timeout=10).json()["grants"] == []
    # the token works from a program, too; the secret only in the answer
    r = requests.post(url, params=good, headers=tok, timeout=10)
    assert r.status_code == 201, r.text
    made = r.json()
    assert len(made["secret_access_key"]) == 40
    listed = requests.get(url, headers=tok, timeout=10)
    assert made["secret_access_key"] not in listed.text
    assert [x["state"] for x in listed.json()["grants"]] == ["active"]
    # revoke: unknown id 404, missing id 400, GET 405
    rv = url + "/revoke"
    assert requests.post(rv, params={"id": "g-000000000000"}, headers=tok,
                         timeout=10).status_code == 404
    assert requests.post(rv, headers=tok, timeout=10).status_code == 400
    assert requests.get(rv, headers=tok, timeout=10).status_code == 405
    r = requests.post(rv, params={"id": made["grant"]["id"]}, headers=tok,
                      timeout=10)
    assert r.status_code == 200 and r.json()["grant"]["state"] == "revoked"
    # the grants of the CLI and of the console are the same grants
    assert made["grant"]["id"] in g.run("grant", "list").stdout


def test_grants_off_without_s3api(gk_factory):
    g = gk_factory().start()
    tok = {"Authorization": "Bearer " + admin_token(g)}
    r = requests.get(g.base + "/admin/api/grants", headers=tok, timeout=10)
    assert r.status_code == 409 and "[s3api]" in r.json()["msg"]
    r = requests.post(g.base + "/admin/api/grants", headers=tok, timeout=10,
                      params={"name": "n", "prefix": "", "ops": "get"})
    assert r.status_code == 409
