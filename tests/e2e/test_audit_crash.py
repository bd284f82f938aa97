"""Crash test: under wrk load the gatekeeper is killed with SIGKILL again
and again; every 2xx/3xx answer a client received has its audit record
after restart (request ids compared), and the chain still verifies.

Rounds: GK_CRASH_ROUNDS (default 5 here; `make soak` runs 20 per backend).
"""
import os
import shutil
import signal
import subprocess
import time

from conftest import ORIGIN

ROUNDS = int(os.environ.get("GK_CRASH_ROUNDS", "5"))

LUA = r"""
local out = nil
function setup(thread) end
function init(args) out = io.open(os.getenv("GK_IDS_FILE"), "a") end
function response(status, headers, body)
  if status >= 200 and status < 400 then
    local id = headers["X-Request-Id"] or headers["x-request-id"]
    if id then out:write(id .. "\n") ; out:flush() end
  end
end
"""


def test_kill9_under_load_loses_no_answered_record(gk_factory, backend,
                                                   tmp_path):
    assert shutil.which("wrk") is not None, \
        "wrk is missing: install Debian's wrk (make deps)"
    g = gk_factory(backend=backend, server__threads="2")
    script = tmp_path / "ids.lua"
    script.write_text(LUA)
    ids_file = tmp_path / "ids.txt"
    env = dict(os.environ, GK_IDS_FILE=str(ids_file))
    for rnd in range(ROUNDS):
        g.start()
        url = g.url("app", g.sign("app", "/c/x", "GET_Object", ttl=600))
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c8", "-d1s", "-s", str(script),
             "-H", "Origin: " + ORIGIN, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        # kill at a different moment of each round
        time.sleep(0.2 + 0.1 * (rnd % 5))
        g.proc.send_signal(signal.SIGKILL)
        g.proc.wait()
        g.proc = None
        wrk.wait(timeout=30)
    answered = set(ids_file.read_text().split())
    assert len(answered) > ROUNDS * 10  # the load was real
    # restart once more: the store opens cleanly after the last kill
    g.start()
    g.stop()
    stored = {r["request_id"] for r in g.audit_rows("status < 400")}
    missing = answered - stored
    assert not missing, "%d answered grants have no record" % len(missing)
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout
