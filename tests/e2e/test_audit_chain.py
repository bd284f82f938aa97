"""The provable audit log: hash chain, signed checkpoints, `audit verify`.

`reference_verify` is the customer's own script from the README, written
from the documented encoding only: a clean log must pass it too, so the
README's description and the C code agree.
"""
import hashlib
import os
import random
import re
import shutil
import sqlite3
import struct

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import ORIGIN

# --- the README's verifier (keep in sync with README "Proving the audit log")


def _s(v):
    if v is None:
        return b"\xff\xff\xff\xff"
    if isinstance(v, str):
        v = v.encode()
    return struct.pack(">I", len(v)) + v


def _i(v):
    return struct.pack(">q", v)


FIELDS = ["request_id", "client_ip", "client_addr", "user_agent", "origin",
          "protocol", "operation", "root", "path", "status", "decision",
          "message", "bytes", "duration_us", "country", "kid", "sub", "jti",
          "token_sig"]
INTS = {"status", "bytes", "duration_us"}


def record_hash(r):
    m = (r["prev_hash"] + _s("gatekeeper-audit-v1") + _s(r["instance_id"]) +
         _i(r["seq"]) + _i(r["time_us"]))
    for f in FIELDS:
        m += _i(r[f]) if f in INTS else _s(r[f])
    return hashlib.sha256(m).digest()


def reference_verify(db_path, pubkey_hex):
    pub = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(pubkey_hex))
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    db.text_factory = bytes
    db.row_factory = sqlite3.Row
    cps = {}
    for c in db.execute("SELECT * FROM audit_checkpoint"):
        pub.verify(c["sig"], _s("gatekeeper-audit-checkpoint-v1") +
                   _s(c["instance_id"]) + _i(c["seq"]) + c["hash"] +
                   _i(c["time_us"]))  # raises InvalidSignature
        cps[(c["instance_id"], c["seq"])] = c["hash"]
    anchors = {a["instance_id"]: (a["seq"], a["hash"])
               for a in db.execute("SELECT * FROM audit_anchor")}
    last = {}
    for r in db.execute("SELECT * FROM audit ORDER BY instance_id, seq, id"):
        inst = r["instance_id"]
        seq, prev = last.get(inst, anchors.get(inst, (0, bytes(32))))
        assert r["seq"] == seq + 1, "gap or duplicate at seq %d" % r["seq"]
        assert r["prev_hash"] == prev, "chain broken at seq %d" % r["seq"]
        assert record_hash(r) == r["hash"], "seq %d modified" % r["seq"]
        assert cps.get((inst, r["seq"]), r["hash"]) == r["hash"]
        last[inst] = (r["seq"], r["hash"])
    for (inst, seq) in cps:
        assert seq <= last.get(inst, anchors.get(inst, (0,)))[0], "tail cut"
    for inst, (aseq, _) in anchors.items():  # a prune allows each anchor
        assert any(int(to) >= aseq and cps.get((inst, int(to))) ==
                   bytes.fromhex(h) and max(s for i, s in cps if i == inst)
                   >= r["seq"] for r in db.execute(
                       "SELECT seq, path FROM audit WHERE instance_id = ? AND"
                       " protocol = 'audit' AND operation = 'prune'",
                       (inst.decode(),))
                   for _, to, h, _ in [r["path"].decode().split(":")]), \
            "records of %s deleted without a prune" % inst
    db.close()
    return sum(1 for _ in last)

# --- helpers -------------------------------------------------------------


def pubkey(g):
    with open(os.path.join(g.data, "keys", "audit_ed25519.pub")) as f:
        return f.read().strip()


def verify(g, db=None, cps=None):
    args = ["audit", "verify"]
    if db:
        args += ["--db", db]
    if cps:
        args += ["--checkpoints", cps]
    return g.run(*args, check=False)


def traffic(g, n):
    s = requests.Session()
    for k in range(n):
        kind = k % 4
        if kind == 0:
            r = s.get(g.url("app", g.sign("app", "/t/f%d.txt" % k,
                                          "GET_Object")),
                      headers={"Origin": ORIGIN, "User-Agent": "agent\t%d" % k},
                      allow_redirects=False, timeout=30)
        elif kind == 1:
            r = s.get(g.url("app", g.sign("app", "/t/x", "GET_Object",
                                          key=b"wrong-key-wrong-key")),
                      headers={"Origin": ORIGIN}, timeout=30)
        elif kind == 2:
            r = s.get(g.url("app", g.sign("app", "/t/", "GET_Bucket")),
                      headers={"Origin": ORIGIN}, timeout=30)
        else:
            r = s.get(g.base + "/app?path=/t/y&operation=NOPE", timeout=30)
        assert r.status_code in (200, 302, 400, 401)


@pytest.fixture(scope="module")
def clean_log(tmp_path_factory):
    """A stopped gatekeeper's log: 60 records, a checkpoint every 7."""
    from conftest import Gatekeeper
    tmp = str(tmp_path_factory.mktemp("chain"))
    g = Gatekeeper(tmp, audit__checkpoint_records="7")
    g.start()
    traffic(g, 60)
    assert g.stop() == 0  # SIGTERM: the tail gets a checkpoint too
    yield g


def test_clean_log_verifies_both_ways(clean_log):
    g = clean_log
    p = verify(g)
    assert p.returncode == 0, p.stdout
    assert "60 records, 1 instance" in p.stdout and "OK" in p.stdout
    cps = g.audit_checkpoints()
    assert [c["seq"] for c in cps][-1] == 60
    assert all(c["seq"] % 7 == 0 or c["seq"] == 60 for c in cps)
    lines = open(os.path.join(g.data, "audit-checkpoints.log")).read()
    assert len(lines.splitlines()) == len(cps)
    # the customer's own script agrees
    assert reference_verify(os.path.join(g.data, "audit.db"), pubkey(g)) == 1
    rows = g.audit_rows()
    inst = open(os.path.join(g.data, "keys", "instance.id")).read().strip()
    assert {r["instance_id"] for r in rows} == {inst}
    assert [r["seq"] for r in rows] == list(range(1, 61))


def tamper_copy(g, tmp, n):
    d = os.path.join(tmp, "t%d" % n)
    os.makedirs(d)
    db = os.path.join(d, "audit.db")
    cp = os.path.join(d, "cp.log")
    shutil.copy(os.path.join(g.data, "audit.db"), db)
    shutil.copy(os.path.join(g.data, "audit-checkpoints.log"), cp)
    return db, cp


COLUMNS = ["time_us", "request_id", "client_ip", "client_addr", "user_agent",
           "path", "status", "decision", "message", "bytes", "operation",
           "prev_hash", "hash", "instance_id", "root"]


def test_100_tamperings_detected_and_located(clean_log, tmp_path):
    g = clean_log
    rnd = random.Random(6)
    kinds = {"modify": 0, "delete": 0, "insert": 0, "reorder": 0}
    for n in range(100):
        db, cp = tamper_copy(g, str(tmp_path), n)
        kind = ["modify", "delete", "insert", "reorder"][n % 4]
        kinds[kind] += 1
        k = rnd.randint(1, 59)
        h = sqlite3.connect(db)
        if kind == "modify":
            col = rnd.choice(COLUMNS)
            typ = h.execute("SELECT typeof(%s) FROM audit WHERE seq = ?" %
                            col, (k,)).fetchone()[0]
            if typ == "integer":
                h.execute("UPDATE audit SET %s = %s + 1 WHERE seq = ?" %
                          (col, col), (k,))
            elif typ == "blob":
                h.execute("UPDATE audit SET %s = zeroblob(length(%s))"
                          " WHERE seq = ?" % (col, col), (k,))
            elif typ == "null":
                h.execute("UPDATE audit SET %s = 'x' WHERE seq = ?" % col,
                          (k,))
            else:
                h.execute("UPDATE audit SET %s = %s || 'x' WHERE seq = ?" %
                          (col, col), (k,))
            want = [r"record seq %d \(id \d+\) of instance \S+ was modified"
                    % k]
        elif kind == "delete":
            k = rnd.randint(1, 60)
            h.execute("DELETE FROM audit WHERE seq = ?", (k,))
            want = [r"record seq %d of instance \S+ is missing: deleted" % k
                    if k < 60 else r"records 60\.\.60 were deleted \(tail cut\)"]
        elif kind == "insert":
            # a well-forged copy claiming seq k: right prev_hash, right hash
            h.row_factory = sqlite3.Row
            h.text_factory = bytes
            h.execute("DROP INDEX audit_chain")
            r = dict(h.execute("SELECT * FROM audit WHERE seq = ?",
                               (k,)).fetchone())
            r["path"] = b"/forged/" + (r["path"] or b"")
            r["hash"] = record_hash(r)
            del r["id"]
            h.execute("INSERT INTO audit(%s) VALUES (%s)" % (
                ",".join(r), ",".join("?" * len(r))), list(r.values()))
            want = [r"record id \d+ repeats seq %d of instance \S+: inserted"
                    % k]
        else:
            h.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (k,))
            h.execute("UPDATE audit SET seq = ? WHERE seq = ?", (k, k + 1))
            h.execute("UPDATE audit SET seq = ? WHERE seq = -1", (k + 1,))
            want = [r"record seq %d \(id \d+\) of instance \S+ was modified"
                    % k,
                    r"record seq %d \(id \d+\) of instance \S+ was modified"
                    % (k + 1)]
        h.commit()
        h.close()
        p = verify(g, db=db, cps=cp)
        assert p.returncode == 1, (kind, k, p.stdout)
        for w in want:
            assert re.search(w, p.stdout), (kind, k, w, p.stdout)
        assert "NOT OK" in p.stdout
    assert kinds == {"modify": 25, "delete": 25, "insert": 25, "reorder": 25}


def test_rehashed_rewrite_caught_by_checkpoint(clean_log, tmp_path):
    """An attacker who knows the algorithm rewrites record 10 and re-hashes
    everything after it: only the signatures catch that."""
    g = clean_log
    db, cp = tamper_copy(g, str(tmp_path), 0)
    h = sqlite3.connect(db)
    h.row_factory = sqlite3.Row
    h.text_factory = bytes
    prev = None
    for r in [dict(x) for x in h.execute(
            "SELECT * FROM audit ORDER BY seq")]:
        if r["seq"] == 10:
            r["status"] = 302
            r["decision"] = b"allow"
        if prev is not None and r["seq"] >= 10:
            r["prev_hash"] = prev
        if r["seq"] >= 10:
            r["hash"] = record_hash(r)
            h.execute("UPDATE audit SET status = ?, decision = ?,"
                      " prev_hash = ?, hash = ? WHERE id = ?",
                      (r["status"], r["decision"], r["prev_hash"], r["hash"],
                       r["id"]))
        prev = r["hash"]
    h.commit()
    h.close()
    p = verify(g, db=db, cps=cp)
    assert p.returncode == 1
    assert re.search(r"record seq 14 \(id \d+\) of instance \S+ does not "
                     r"match the signed checkpoint", p.stdout), p.stdout


def test_forged_checkpoints(clean_log, tmp_path):
    g = clean_log
    # 1. a checkpoint row altered in the database
    db, cp = tamper_copy(g, str(tmp_path), 1)
    h = sqlite3.connect(db)
    h.execute("UPDATE audit_checkpoint SET hash = zeroblob(32) WHERE seq = 21")
    h.commit()
    h.close()
    p = verify(g, db=db, cps=cp)
    assert p.returncode == 1
    assert re.search(r"checkpoint seq 21 of instance \S+ in the database: "
                     r"bad signature", p.stdout), p.stdout
    # 2. a checkpoint line signed with another key appended to the file
    db, cp = tamper_copy(g, str(tmp_path), 2)
    inst = g.audit_checkpoints()[0]["instance_id"]
    other = ed25519.Ed25519PrivateKey.generate()
    msg = (_s("gatekeeper-audit-checkpoint-v1") + _s(inst) + _i(99) +
           bytes(32) + _i(1))
    with open(cp, "a") as f:
        f.write('{"instance":"%s","seq":99,"hash":"%s","time_us":1,'
                '"sig":"%s"}\n' % (inst, "00" * 32, other.sign(msg).hex()))
    p = verify(g, db=db, cps=cp)
    assert p.returncode == 1
    assert re.search(r"checkpoint file line \d+ \(seq 99 of instance \S+\): "
                     r"bad signature", p.stdout), p.stdout
    # 3. tail cut with the database's checkpoints deleted: the file knows
    db, cp = tamper_copy(g, str(tmp_path), 3)
    h = sqlite3.connect(db)
    h.execute("DELETE FROM audit WHERE seq > 50")
    h.execute("DELETE FROM audit_checkpoint WHERE seq > 50")
    h.commit()
    h.close()
    p = verify(g, db=db, cps=cp)
    assert p.returncode == 1
    assert re.search(r"ends at seq 50 but a signed checkpoint covers seq 60: "
                     r"records 51\.\.60 were deleted \(tail cut\)", p.stdout)
    assert "checkpoint seq 56 of instance" in p.stdout


def test_verify_usage_errors(clean_log, tmp_path):
    g = clean_log
    p = g.run("audit", "verify", "--pubkey", str(tmp_path / "nope"),
              check=False)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
    assert p.stderr.startswith("gatekeeper audit: cannot read the audit "
                               "public key")
    p = g.run("audit", "verify", "--db", str(tmp_path / "missing.db"),
              check=False)
    assert p.returncode == 1 and "no audit database" in p.stderr
    p = g.run("audit", "verify", "--bogus", check=False)
    assert p.returncode == 2


def test_running_server_chain_and_timed_checkpoint(gk_factory, backend):
    """A checkpoint is also signed when records wait checkpoint_seconds,
    and a restart continues the same chain."""
    g = gk_factory(backend=backend, audit__checkpoint_seconds="1").start()
    traffic(g, 3)
    import time
    deadline = time.time() + 20
    while time.time() < deadline and \
            [c["seq"] for c in g.audit_checkpoints()][-1:] != [3]:
        time.sleep(0.1)
    assert [c["seq"] for c in g.audit_checkpoints()][-1] == 3
    g.stop()
    g.start()
    traffic(g, 2)
    g.stop()
    assert [r["seq"] for r in g.audit_rows()] == [1, 2, 3, 4, 5]
    p = verify(g)
    assert p.returncode == 0, p.stdout
    if backend is None:
        assert reference_verify(os.path.join(g.data, "audit.db"),
                                pubkey(g)) == 1


def test_postgres_tamperings_detected_and_located(gk_factory, pg_server):
    """The same kinds of tampering on the PostgreSQL backend, each on a
    fresh copy of a clean log (a template database)."""
    g = gk_factory(backend=pg_server, audit__checkpoint_records="7").start()
    traffic(g, 30)
    assert g.stop() == 0
    assert verify(g).returncode == 0
    clean = g.pgdb
    rnd = random.Random(4)
    for n in range(20):
        kind = ["modify", "delete", "insert", "reorder"][n % 4]
        k = rnd.randint(1, 29)
        name = "t%d_%s" % (n, clean)
        pg_server.psql("postgres", "CREATE DATABASE %s TEMPLATE %s" %
                       (name, clean))
        col = rnd.choice(["path", "status", "time_us", "client_ip",
                          "hash", "decision"])
        if kind == "modify":
            expr = {"path": "coalesce(path, '') || 'x'",
                    "status": "status + 1", "time_us": "time_us - 1",
                    "client_ip": "'10.9.9.9'", "hash": "sha256(hash)",
                    "decision": "'allow'"}[col]
            if col == "decision":
                expr = "CASE decision WHEN 'allow' THEN 'deny' ELSE " \
                       "'allow' END"
            sql = "UPDATE audit SET %s = %s WHERE seq = %d" % (col, expr, k)
            want = [r"record seq %d \(id \d+\) of instance \S+ was "
                    r"modified" % k]
        elif kind == "delete":
            sql = "DELETE FROM audit WHERE seq = %d" % k
            want = [r"record seq %d of instance \S+ is missing: deleted" % k]
        elif kind == "insert":
            sql = ("DROP INDEX audit_chain; INSERT INTO audit(time_us,"
                   " request_id, client_ip, client_addr, path, status,"
                   " decision, instance_id, seq, prev_hash, hash) SELECT"
                   " time_us, request_id, client_ip, client_addr, '/forged',"
                   " 302, 'allow', instance_id, seq, prev_hash, hash FROM"
                   " audit WHERE seq = %d" % k)
            want = [r"record id \d+ repeats seq %d of instance \S+: "
                    r"inserted" % k]
        else:
            sql = ("UPDATE audit SET seq = -1 WHERE seq = %d;"
                   "UPDATE audit SET seq = %d WHERE seq = %d;"
                   "UPDATE audit SET seq = %d WHERE seq = -1" %
                   (k, k, k + 1, k + 1))
            want = [r"record seq %d \(id \d+\) of instance \S+ was "
                    r"modified" % s for s in (k, k + 1)]
        pg_server.psql(name, sql)
        dsn = "postgresql:///%s?host=%s&user=gk" % (name, pg_server.dir)
        p = g.run("audit", "verify", "--db", dsn, "--no-checkpoints-file",
                  check=False)
        pg_server.psql("postgres", "DROP DATABASE %s" % name)
        assert p.returncode == 1, (kind, k, sql, p.stdout)
        for w in want:
            assert re.search(w, p.stdout), (kind, k, w, p.stdout)


def test_audit_key_rotation(gk_factory):
    g = gk_factory(audit__checkpoint_records="2").start()
    traffic(g, 4)
    g.stop()
    keys = os.path.join(g.data, "keys")
    for ext in ("key", "pub"):
        os.rename(os.path.join(keys, "audit_ed25519." + ext),
                  os.path.join(keys, "audit_ed25519.%s.old" % ext))
    assert "audit_ed25519.key" in g.run("keygen").stdout
    g.start()
    traffic(g, 4)
    g.stop()
    # the new key alone refuses the old checkpoints
    p = verify(g)
    assert p.returncode == 1 and "bad signature" in p.stdout
    # both keys: everything holds
    p = g.run("audit", "verify", "--pubkey",
              os.path.join(keys, "audit_ed25519.pub"), "--pubkey",
              os.path.join(keys, "audit_ed25519.pub.old"), check=False)
    assert p.returncode == 0, p.stdout
    assert "8 records" in p.stdout
