"""Strict audit: nothing is granted unless its record is committed."""
import os
import sqlite3
import subprocess
import threading
import time

import requests

from conftest import ORIGIN


def test_audit_unavailable_means_503(gk):
    assert gk.get("app", "/a/b", "GET_Object").status_code == 302
    # another process holds the database's write lock: commits fail
    db = sqlite3.connect(os.path.join(gk.data, "audit.db"), timeout=0,
                         isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        r = gk.get("app", "/a/b", "GET_Object")
        assert r.status_code == 503
        assert r.json() == {"msg": "Service Unavailable: audit log unavailable",
                            "error": True}
        assert "Location" not in r.headers
        # an upload form is a grant too
        r = gk.get("app", "/a/b", "PUT_Object")
        assert r.status_code == 503 and "clientReturn" not in r.text
        # a refusal is still answered
        r = gk.get("app", "/a/b", "GET_Object", key=b"wrong-key-wrong-key")
        assert r.status_code == 401
    finally:
        db.execute("ROLLBACK")
        db.close()
    # the store is back: grants resume by themselves
    r = gk.get("app", "/a/b", "GET_Object")
    assert r.status_code == 302
    assert len(gk.audit_for(r)) == 1
    # no record exists for the refused grants, and none claims a grant
    assert [row["status"] for row in gk.audit_rows()] == [302, 302]


def test_upload_not_visible_without_audit(gk):
    r = gk.get("app", "/s/f.txt", "PUT_Object")
    ret = r.json()["clientReturn"]
    db = sqlite3.connect(os.path.join(gk.data, "audit.db"), timeout=0,
                         isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        resp = requests.post(ret["url"], data=ret["fields"],
                             files={"file": ("f.txt", b"data")}, timeout=60)
        assert resp.status_code == 503
    finally:
        db.execute("ROLLBACK")
        db.close()
    lst = gk.get("uploads", "/s/", "GET_Bucket")
    assert lst.json()["contents"] == []


def test_concurrent_grants_all_audited(gk_factory, backend):
    gk = gk_factory(backend=backend).start()
    results = []

    def worker():
        s = requests.Session()
        for _ in range(25):
            r = s.get(gk.url("app", gk.sign("app", "/c/x", "GET_Object")),
                      headers={"Origin": ORIGIN}, allow_redirects=False,
                      timeout=30)
            results.append((r.status_code, r.headers["X-Request-Id"]))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    assert all(status == 302 for status, _ in results)
    ids = {row["request_id"] for row in gk.audit_rows()}
    assert ids == {rid for _, rid in results}
    p = gk.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout


def test_postgres_down_means_503_and_recovers(gk_factory, pg_server):
    gk = gk_factory(backend=pg_server).start()
    assert gk.get("app", "/a/b", "GET_Object").status_code == 302
    pg_server.halt()
    try:
        r = gk.get("app", "/a/b", "GET_Object")
        assert r.status_code == 503
        assert r.json() == {"msg": "Service Unavailable: audit log unavailable",
                            "error": True}
        assert "Location" not in r.headers
        r = gk.get("app", "/a/b", "PUT_Object")
        assert r.status_code == 503 and "clientReturn" not in r.text
        # a refusal is still answered (and never claims success)
        r = gk.get("app", "/a/b", "GET_Object", key=b"wrong-key-wrong-key")
        assert r.status_code == 401
    finally:
        pg_server.resume()
    # the database is back: grants resume by themselves
    r = gk.get("app", "/a/b", "GET_Object")
    assert r.status_code == 302
    assert len(gk.audit_for(r)) == 1
    assert [row["status"] for row in gk.audit_rows()] == [302, 302]
    gk.stop()
    p = gk.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout


def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", path], capture_output=True, text=True)
    return p.returncode == 0, p.stderr.strip()


def test_sqlite_disk_full_means_503_and_recovers(gk_factory, tmp_path):
    fs = str(tmp_path / "small")
    # a full disk needs a small file system of its own: a 4 MiB tmpfs
    assert os.geteuid() == 0, \
        "this test mounts a small tmpfs: run make test as root (README, Quick start)"
    ok, why = _mount_tmpfs(fs, "4m")
    assert ok, "mount -t tmpfs failed (%s): the test needs root allowed to " \
        "mount, e.g. not an unprivileged container" % why
    try:
        gk = gk_factory(audit__db=fs + "/audit.db",
                        audit__checkpoint_file=fs + "/cp.log").start()
        # fill the file system to the last byte
        filler = os.path.join(fs, "filler")
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        granted = []
        for _ in range(5):
            r = gk.get("app", "/a/b", "GET_Object")
            assert r.status_code == 503, r.status_code
            assert r.json()["msg"] == \
                "Service Unavailable: audit log unavailable"
            assert "Location" not in r.headers
        r = gk.get("app", "/a/b", "GET_Object", key=b"wrong-key-wrong-key")
        assert r.status_code == 401
        # space again: grants resume by themselves
        os.unlink(filler)
        for _ in range(3):
            r = gk.get("app", "/a/b", "GET_Object")
            assert r.status_code == 302
            granted.append(r.headers["X-Request-Id"])
        rows = gk.audit_rows("status = 302")
        assert sorted(x["request_id"] for x in rows) == sorted(granted)
        gk.stop()
        p = gk.run("audit", "verify", check=False)
        assert p.returncode == 0, p.stdout
    finally:
        subprocess.run(["umount", "-l", fs])


def test_postgres_stopped_under_load(gk_factory, pg_server):
    """PostgreSQL stops while clients keep asking: grants turn into 503,
    no answered grant lacks its record, and service comes back."""
    gk = gk_factory(backend=pg_server).start()
    url = gk.url("app", gk.sign("app", "/l/x", "GET_Object", ttl=600))
    results = []
    stop = threading.Event()

    def worker():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.get(url, headers={"Origin": ORIGIN},
                          allow_redirects=False, timeout=30)
                results.append((r.status_code, r.headers["X-Request-Id"]))
            except requests.RequestException:
                s = requests.Session()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 30
        while len(results) < 50 and time.time() < deadline:
            time.sleep(0.05)
        pg_server.halt()
        mark = len(results)
        deadline = time.time() + 30
        while not any(st == 503 for st, _ in results[mark:]) and \
                time.time() < deadline:
            time.sleep(0.05)
    finally:
        pg_server.resume()
    mark = len(results)
    deadline = time.time() + 30
    while not any(st == 302 for st, _ in results[mark:]) and \
            time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    statuses = {st for st, _ in results}
    assert statuses <= {302, 503}, statuses
    assert 503 in statuses and results[-1][0] == 302
    granted = {rid for st, rid in results if st == 302}
    stored = {row["request_id"] for row in gk.audit_rows("status = 302")}
    assert granted <= stored, "%d grants without a record" % len(
        granted - stored)
    gk.stop()
    p = gk.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout


def test_starts_while_postgres_is_down(gk_factory, pg_server):
    """A gatekeeper started while its database is away answers, fails
    closed, and connects when the database comes."""
    gk = gk_factory(backend=pg_server)
    pg_server.halt()
    try:
        gk.start()
        r = gk.get("app", "/a/b", "GET_Object")
        assert r.status_code == 503
        r = gk.get("app", "/a/b", "GET_Object", key=b"wrong-key-wrong-key")
        assert r.status_code == 401
    finally:
        pg_server.resume()
    r = gk.get("app", "/a/b", "GET_Object")
    assert r.status_code == 302
    assert [row["status"] for row in gk.audit_rows()] == [302]
    gk.stop()
    assert gk.run("audit", "verify", check=False).returncode == 0
