"""A write whose store commit fails after its grant is recorded: the
object store's index is locked by another process for longer than the
store waits (10 s), so the upload is authorised and audited, then cannot
be committed. The client gets the error, and the audit holds a second
record of the same request saying the write did not complete, instead of
only the grant (which claimed a 201 the client never got)."""
import os
import sqlite3
import threading

import requests

from browserutil import VendorKey
from conftest import ORIGIN

NOTE = ("(the store failed after the grant was recorded: the write did not "
        "complete)")


def test_commit_failure_after_the_grant_is_audited(gk_factory):
    vk = VendorKey()
    g = gk_factory(gate__id="gk-cf", **vk.settings()).start()

    def v2put(key, data):
        tok = vk.token("gk-cf", "put", key)
        return requests.put(g.base + "/v2/objects/" + key, data=data,
                            timeout=120, headers={
                                "Origin": ORIGIN,
                                "Authorization": "Bearer " + tok})

    def v2get(key):
        tok = vk.token("gk-cf", "get", key)
        r = requests.get(g.base + "/v2/objects/" + key, headers={
            "Origin": ORIGIN, "Authorization": "Bearer " + tok},
            allow_redirects=False, timeout=10)
        assert r.status_code == 302
        return requests.get(r.headers["Location"], timeout=10)

    assert v2put("c/keep.bin", b"old").status_code == 201
    db = sqlite3.connect(os.path.join(g.data, "objects", "index.db"),
                         isolation_level=None, timeout=5)
    db.execute("BEGIN EXCLUSIVE")
    got = {}

    def form():
        got["form"] = g.upload("/c/locked.bin", b"locked")[0]

    def put():
        got["put"] = v2put("c/v2locked.bin", b"v2")

    def over():
        got["over"] = v2put("c/keep.bin", b"new bytes")

    try:
        threads = [threading.Thread(target=f) for f in (form, put, over)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        db.execute("ROLLBACK")
        db.close()
    for name in ("form", "put", "over"):
        r = got[name]
        assert r.status_code == 500, (name, r.text)
        assert r.json() == {"msg": "Internal Exception", "error": True}
        rows = g.audit_rows("request_id = ?", (r.headers["X-Request-Id"],))
        assert [(x["status"], x["decision"], x["message"]) for x in rows] == [
            (201, "allow", "Success"),
            (500, "error", "Internal Exception " + NOTE)], name
    assert rows[1]["path"] == "c/keep.bin" and rows[1]["bytes"] == 9
    # nothing was stored: neither readable nor listed
    for key in ("uploads/c/locked.bin", "c/v2locked.bin"):
        assert v2get(key).status_code == 404, key
    # and the object a failed write would have replaced is still whole
    r = v2get("c/keep.bin")
    assert (r.status_code, r.content) == (200, b"old")
    for prefix, keys in (("uploads/c/", []), ("c/", [("c/keep.bin", 3)])):
        tok = vk.token("gk-cf", "list", prefix=prefix)
        r = requests.get(g.base + "/v2/list/" + prefix, headers={
            "Origin": ORIGIN, "Authorization": "Bearer " + tok}, timeout=10)
        assert [(i["key"], i["size"]) for i in r.json()["items"]] == keys
    # once the index is free, the same upload succeeds
    r, _ = g.upload("/c/locked.bin", b"locked")
    assert r.status_code == 201, r.text
    # the chain of both records verifies
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
