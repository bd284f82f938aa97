"""Crash recovery of the fs store and the checkpoint file (issue 10).

Uploads of various sizes and audited reads run while the gatekeeper is
killed with SIGKILL, round after round. After every restart:
- the listing equals what can be read: every key GET_Bucket lists can be
  fetched, and every key that can be fetched is listed;
- no temp file is left in the store's tmp directory;
- the checkpoint file holds every signed checkpoint the database holds;
and at the end `audit verify` passes.

Rounds: GK_RECOVERY_ROUNDS (default 4 here; `make soak` runs 20): one
round catches an ordering bug only some of the time.
"""
import os
import random
import signal
import threading
import time

import requests

from conftest import ORIGIN

ROUNDS = int(os.environ.get("GK_RECOVERY_ROUNDS", "4"))


def upload_loop(g, stop, tried, lock, seed):
    rnd = random.Random(seed)
    s = requests.Session()
    n = 0
    while not stop.is_set():
        name = "k%d-%d" % (seed, n)
        n += 1
        size = rnd.choice([10, 5000, 70000, 400000, 2000000])
        with lock:
            tried.add(name)
        try:
            r = s.get(g.url("app", g.sign("app", "/c/" + name, "PUT_Object")),
                      headers={"Origin": ORIGIN}, timeout=10)
            if r.status_code != 200:
                continue
            ret = r.json()["clientReturn"]
            s.post(ret["url"], data=ret["fields"],
                   files={"file": ("f.bin", os.urandom(size),
                                   "application/octet-stream")},
                   timeout=20)
        except (requests.RequestException, ValueError):
            time.sleep(0.05)  # killed: wait for the next start


def read_loop(g, stop):
    s = requests.Session()
    while not stop.is_set():
        try:
            s.get(g.url("app", g.sign("app", "/c/none", "GET_Object")),
                  headers={"Origin": ORIGIN}, allow_redirects=False,
                  timeout=10)
        except requests.RequestException:
            time.sleep(0.05)


def listed(g):
    r = g.get("uploads", "/c/", "GET_Bucket")
    assert r.status_code == 200, r.text
    return set(k.split("/")[-1] for k in r.json()["contents"])


def readable(g, names):
    out = set()
    s = requests.Session()
    for name in names:
        r = s.get(g.url("uploads", g.sign("uploads", "/c/" + name,
                                          "GET_Object")),
                  headers={"Origin": ORIGIN}, allow_redirects=False,
                  timeout=30)
        if r.status_code == 404:
            continue
        assert r.status_code == 302, (name, r.status_code, r.text)
        d = s.get(r.headers["Location"], timeout=60)
        if d.status_code == 200:
            out.add(name)
        else:
            assert d.status_code == 404, (name, d.status_code)
    return out


def file_checkpoints(g):
    import json
    path = os.path.join(g.data, "audit-checkpoints.log")
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        data = f.read()
    assert data == "" or data.endswith("\n"), "partial last line"
    return {(c["instance"], c["seq"]) for c in
            (json.loads(line) for line in data.splitlines())}


def check_recovered(g, tried):
    tmpdir = os.path.join(g.data, "objects", "tmp")
    left = os.listdir(tmpdir) if os.path.isdir(tmpdir) else []
    assert left == [], "temp files left after restart: %r" % left[:5]
    ls = listed(g)
    assert ls <= tried, ls - tried
    rd = readable(g, sorted(tried))
    assert ls == rd, ("listed but unreadable: %r; readable but not listed:"
                      " %r" % (sorted(ls - rd)[:5], sorted(rd - ls)[:5]))
    # one audited request: the writer has loaded the chain (and recovered
    # the checkpoint file) once it is answered
    g.get("app", "/c/none", "GET_Object")
    db = {(c["instance_id"], c["seq"]) for c in g.audit_checkpoints()}
    missing = db - file_checkpoints(g)
    assert not missing, "checkpoints only in the database: %r" % missing
    return len(rd)


def test_kill9_rounds_listing_equals_readable(gk_factory):
    g = gk_factory(server__threads="2", audit__checkpoint_records="3",
                   audit__checkpoint_seconds="1")
    tried = set()
    lock = threading.Lock()
    objects = 0
    for rnd in range(ROUNDS):
        g.start()
        if rnd > 0:
            objects = check_recovered(g, tried)
        stop = threading.Event()
        workers = [threading.Thread(target=upload_loop,
                                    args=(g, stop, tried, lock,
                                          rnd * 10 + i))
                   for i in range(3)]
        workers.append(threading.Thread(target=read_loop, args=(g, stop)))
        for w in workers:
            w.start()
        # kill at a different moment of each round
        time.sleep(0.6 + 0.23 * (rnd % 7))
        g.proc.send_signal(signal.SIGKILL)
        g.proc.wait()
        g.proc = None
        stop.set()
        for w in workers:
            w.join(timeout=60)
    g.start()
    objects = check_recovered(g, tried)
    assert objects > 0  # uploads really happened
    assert g.stop() == 0
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout
