"""A single-use v2 token (jti) fired many times at once: exactly one
request is granted, every other is refused as a replay, and the audit
holds one record of each, on both audit backends (the replay cache lives
with the audit)."""
import collections
import threading

import requests

from browserutil import VendorKey
from conftest import ORIGIN

N = 50


def test_jti_race_grants_once(gk_factory, backend):
    vk = VendorKey()
    g = gk_factory(backend=backend, gate__id="gk-race", server__threads="4",
                   **vk.settings()).start()
    put = vk.token("gk-race", "put", "r/o.txt")
    assert requests.put(g.base + "/v2/objects/r/o.txt", data=b"once",
                        headers={"Origin": ORIGIN,
                                 "Authorization": "Bearer " + put},
                        timeout=30).status_code == 201
    tok = vk.token("gk-race", "get", "r/o.txt", jti="race-1")
    start = threading.Barrier(N)
    got = []

    def one():
        s = requests.Session()
        start.wait()
        r = s.get(g.base + "/v2/objects/r/o.txt",
                  headers={"Origin": ORIGIN, "Authorization": "Bearer " + tok},
                  allow_redirects=False, timeout=60)
        got.append((r.status_code, r.json()["msg"]))

    threads = [threading.Thread(target=one) for _ in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    count = collections.Counter(got)
    assert count == {(302, "Success"): 1,
                     (403, "Forbidden: token already used ('jti')"): N - 1}
    rows = g.audit_rows("jti = ?", ("race-1",))
    assert collections.Counter((r["status"], r["decision"]) for r in rows) \
        == {(302, "allow"): 1, (403, "deny"): N - 1}
