"""Operating grants: a second revoke is refused without a second record
(CLI and console), a grant key that changed names the grants it cannot
open at start and their requests get a clear refusal, and a serve that
cannot open its audit store says so in one line."""
import json
import os
import subprocess

import botocore.exceptions
import pytest
import requests

from conftest import BIN
from s3api_util import BUCKET, client, code, grant, s3gk, status

CE = botocore.exceptions.ClientError


def admin_token(g):
    with open(os.path.join(g.data, "keys", "admin.token")) as f:
        return f.read().strip()


def grant_records(g, gid):
    p = g.run("audit", "search", "--grant", gid, "--format", "json",
              "--limit", "1000")
    return [json.loads(line) for line in p.stdout.splitlines() if line]


def test_revoke_twice_cli(gk_factory):
    g = s3gk(gk_factory)
    gid = grant(g, "--name", "n", "--prefix", "a/", "--ops", "get")["id"]
    p = g.run("grant", "revoke", gid)
    assert p.stdout == "revoked %s\n" % gid
    shown = g.run("grant", "show", gid).stdout
    p = g.run("grant", "revoke", gid, check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == "gatekeeper grant: grant %s is already revoked\n" % \
        gid
    # the first revocation time stands, and one record says it
    assert g.run("grant", "show", gid).stdout == shown
    ops = [r["operation"] for r in grant_records(g, gid)]
    assert sorted(ops) == ["grant_create", "grant_revoke"]
    # an unknown id stays an error
    p = g.run("grant", "revoke", "g-000000000000", check=False)
    assert p.returncode == 1
    assert p.stderr == "gatekeeper grant: no grant 'g-000000000000'\n"
    assert g.run("audit", "verify").returncode == 0


def test_revoke_twice_console(gk_factory):
    g = s3gk(gk_factory).start()
    tok = {"Authorization": "Bearer " + admin_token(g)}
    gid = grant(g, "--name", "n", "--prefix", "a/", "--ops", "get")["id"]
    rv = g.base + "/admin/api/grants/revoke"
    r = requests.post(rv, params={"id": gid}, headers=tok, timeout=10)
    assert r.status_code == 200 and r.json()["grant"]["state"] == "revoked"
    r = requests.post(rv, params={"id": gid}, headers=tok, timeout=10)
    assert r.status_code == 409, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"msg": "Conflict: grant %s is already revoked" % gid,
                        "error": True}
    # the CLI refuses it as well
    p = g.run("grant", "revoke", gid, check=False)
    assert p.returncode == 1 and "already revoked" in p.stderr
    g.stop()
    recs = [(r["operation"], r["status"], r["decision"])
            for r in grant_records(g, gid)]
    assert recs.count(("grant_revoke", 200, "allow")) == 1, recs
    assert ("grant_revoke", 409, "deny") in recs, recs
    assert g.run("audit", "verify").returncode == 0


def test_grant_key_changed(gk_factory):
    g = s3gk(gk_factory)
    a = grant(g, "--name", "a", "--prefix", "a/", "--ops", "get,put")
    b = grant(g, "--name", "b", "--prefix", "b/", "--ops", "get,put")
    gone = grant(g, "--name", "c", "--prefix", "c/", "--ops", "get")
    g.run("grant", "revoke", gone["id"])
    keys = os.path.join(g.data, "keys")
    os.rename(os.path.join(keys, "grant.key"),
              os.path.join(keys, "grant.key.old"))
    assert "grant.key" in g.run("keygen").stdout
    g.start()
    g.stop()
    log = open(g.log).read()
    warn = [ln for ln in log.splitlines() if "cannot be used" in ln]
    assert len(warn) == 1, log
    assert "2 active grants" in warn[0] and "grant.key" in warn[0]
    assert a["id"] in warn[0] and b["id"] in warn[0]
    assert gone["id"] not in warn[0]
    assert "gatekeeper grant rotate" in warn[0]
    g.start()
    c = client(g, a)
    with pytest.raises(CE) as e:
        c.put_object(Bucket=BUCKET, Key="a/x", Body=b"x")
    # what a revoked key is told: permanent, not a 503 to retry
    assert status(e) == 403 and code(e) == "InvalidAccessKeyId"
    r = requests.get(g.s3url + "/" + BUCKET + "/a/x", timeout=10,
                     headers={"Authorization":
                              "AWS4-HMAC-SHA256 Credential=%s/20260101/"
                              "us-east-1/s3/aws4_request, SignedHeaders="
                              "host, Signature=%s" %
                              (a["access_key_id"], "0" * 64),
                              "x-amz-date": "20260101T000000Z",
                              "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert r.status_code == 403 and b"InvalidAccessKeyId" in r.content
    for word in (b"decrypt", b"grant key", b"rotate", a["id"].encode()):
        assert word not in r.content
    # the log and the audit record name the grant and the remedy
    rows = g.audit_rows("kid = ? AND protocol = 's3api'", (a["id"],))
    assert len(rows) == 2 and all(x["status"] == 403 for x in rows)
    assert all("does not decrypt with the current grant key" in x["message"]
               for x in rows), rows
    assert "grant %s is refused" % a["id"] in open(g.log).read()
    # such a grant can still be revoked, and a rotated one works again
    g.run("grant", "revoke", a["id"])
    p = g.run("grant", "rotate", b["id"])
    nb = dict(ln.split(": ", 1) for ln in p.stdout.splitlines()
              if ": " in ln)
    nb = {k.strip(): v.strip() for k, v in nb.items()}
    client(g, nb).put_object(Bucket=BUCKET, Key="b/x", Body=b"x")
    g.stop()
    # nothing left to warn about
    before = os.path.getsize(g.log)
    g.start()
    g.stop()
    with open(g.log) as f:
        f.seek(before)
        assert "cannot be used" not in f.read()


def test_serve_audit_store_unopenable(gk_factory):
    g = gk_factory()
    os.makedirs(g.audit_db)     # a directory where the database goes
    p = subprocess.run([BIN, "serve", "--config", g.config],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.count("\n") == 1, p.stderr
    assert p.stderr.startswith("gatekeeper serve: cannot open the audit "
                               "log %s: " % g.audit_db), p.stderr
    assert p.stderr.count(g.audit_db) == 1, p.stderr


def revoke_race(g, gid, n_cli, n_console):
    """n_cli 'gatekeeper grant revoke' processes and n_console console
    revokes of the same grant, all at once: what each was answered."""
    import threading
    procs = [subprocess.Popen([BIN, "grant", "revoke", gid, "--config",
                               g.config], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(n_cli)]
    answers = []
    if n_console:
        tok = {"Authorization": "Bearer " + admin_token(g)}
        rv = g.base + "/admin/api/grants/revoke"

        def one():
            r = requests.post(rv, params={"id": gid}, headers=tok,
                              timeout=30)
            answers.append((r.status_code, r.headers["Content-Type"],
                            r.json()))

        threads = [threading.Thread(target=one) for _ in range(n_console)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    cli = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        cli.append((p.returncode, out, err))
    return cli, answers


def test_revoke_race_cli(gk_factory, backend):
    # 20 revokes of one grant in parallel: one wins, 19 are refused in
    # one line, and one record says it was revoked (SQLite and PostgreSQL)
    g = s3gk(gk_factory, backend)
    gid = grant(g, "--name", "n", "--prefix", "a/", "--ops", "get")["id"]
    cli, _ = revoke_race(g, gid, 20, 0)
    won = [c for c in cli if c[0] == 0]
    lost = [c for c in cli if c[0] != 0]
    assert won == [(0, "revoked %s\n" % gid, "")], cli
    assert lost == [(1, "", "gatekeeper grant: grant %s is already "
                     "revoked\n" % gid)] * 19, cli
    ops = [r["operation"] for r in grant_records(g, gid)]
    assert sorted(ops) == ["grant_create", "grant_revoke"]
    assert g.run("audit", "verify").returncode == 0


def test_revoke_race_cli_and_console(gk_factory, backend):
    # the CLI and the console revoking the same grant at once: exactly
    # one success among both, the others refused (exit 1 / 409 JSON)
    g = s3gk(gk_factory, backend).start()
    gid = grant(g, "--name", "n", "--prefix", "a/", "--ops", "get")["id"]
    cli, web = revoke_race(g, gid, 10, 10)
    g.stop()
    conflict = {"msg": "Conflict: grant %s is already revoked" % gid,
                "error": True}
    wins = [c for c in cli if c[0] == 0] + [w for w in web if w[0] == 200]
    assert len(wins) == 1, (cli, web)
    for c in cli:
        assert c == (0, "revoked %s\n" % gid, "") or c == (
            1, "", "gatekeeper grant: grant %s is already revoked\n" % gid), c
    for w in web:
        assert w[1].startswith("application/json")
        assert (w[0] == 200 and w[2]["grant"]["state"] == "revoked") or \
            (w[0], w[2]) == (409, conflict), w
    recs = [(r["operation"], r["status"], r["decision"])
            for r in grant_records(g, gid)]
    ok = [r for r in recs if r[0] == "grant_revoke" and r[2] == "allow"]
    assert len(ok) == 1, recs
    assert g.run("audit", "verify").returncode == 0
