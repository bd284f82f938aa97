"""Recovering as an operator would meet it: the audit volume full (a file
size limit on the server, RLIMIT_FSIZE, as no tmpfs or loop device is
used here) and the audit database deleted while the gatekeeper serves."""
import os
import resource
import signal
import subprocess
import time

import requests

from conftest import BIN, ORIGIN

LIMIT = 700 * 1024      # bytes the server may write to one file


def listing(g, n, ua="x" * 200):
    """n GET_Bucket requests (grants, each with a record); their
    statuses and request ids."""
    out = []
    for _ in range(n):
        r = g.get("app", "/a/", "GET_Bucket", headers={"User-Agent": ua})
        out.append((r.status_code, r.headers.get("X-Request-Id")))
    return out


def start_limited(g):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE,
                           (LIMIT, resource.RLIM_INFINITY))
    g.logf = open(g.log, "a")
    g.proc = subprocess.Popen([BIN, "serve", "--config", g.config],
                              stdout=subprocess.PIPE, stderr=g.logf,
                              text=True, preexec_fn=limit)
    assert "listening on" in g.proc.stdout.readline(), open(g.log).read()


def test_audit_volume_full(gk_factory):
    g = gk_factory(server__log_level="info")
    start_limited(g)
    seen = []
    for _ in range(40):
        seen += listing(g, 100)
        if seen[-1][0] == 503:
            break
        assert g.proc.poll() is None, open(g.log).read()
    codes = [c for c, _ in seen]
    # the server lives on, grants fail closed once nothing can be written
    assert g.proc.poll() is None, open(g.log).read()
    assert set(codes) <= {200, 503} and 503 in codes, codes
    r = g.get("app", "/a/", "GET_Bucket")
    assert r.status_code == 503
    assert r.json()["msg"] == "Service Unavailable: audit log unavailable"
    # the storage failure is not a line per batch
    log = open(g.log).read().splitlines()
    store_lines = [ln for ln in log if "audit:" in ln]
    assert 1 <= len(store_lines) <= 4, store_lines
    # room again (the limit lifted): grants resume without a restart
    resource.prlimit(g.proc.pid, resource.RLIMIT_FSIZE,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    deadline = time.time() + 20
    while True:
        after = listing(g, 5, ua="ok")
        if after[-1][0] == 200 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert [c for c, _ in after][-1] == 200, after
    assert "is writable again" in open(g.log).read()
    assert g.stop() == 0
    # every answered grant has its record, and the chain verifies
    rows = {r["request_id"] for r in g.audit_rows()}
    granted = [rid for c, rid in seen + after if c == 200]
    assert granted and all(rid in rows for rid in granted)
    p = g.run("audit", "verify")
    assert p.returncode == 0, p.stdout + p.stderr


def test_audit_db_deleted_while_serving(gk_factory):
    g = gk_factory(audit__checkpoint_records="2").start()
    first = listing(g, 5, ua="before")
    assert all(c == 200 for c, _ in first)
    g.audit_settled()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(g.audit_db + suffix):
            os.remove(g.audit_db + suffix)
    later = listing(g, 3, ua="after")
    assert all(c == 200 for c, _ in later)
    assert g.stop() == 0
    # the records answered since are in the new file, and the chain went
    # on: verify names the ones the deleted file took with it
    rows = g.audit_rows()
    assert {rid for _, rid in later} <= {r["request_id"] for r in rows}
    assert min(r["seq"] for r in rows) == 6
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 1
    assert "records seq 1..5 of instance" in p.stdout
    assert "are missing: deleted" in p.stdout
    log = open(g.log).read()
    assert "was deleted or replaced while serving: records up to seq 5" \
        in log, log
