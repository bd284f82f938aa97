#!/usr/bin/env python3
"""tests/bench/audit_bench.py GK_BIN - audit figures for `make bench`.

For each backend (SQLite; PostgreSQL from a throw-away server started with
tests/pg/pgctl.sh):
  1. sustained audited grants per second: wrk drives pre-signed v1
     GET_Object URLs (302, each answered only after its record, hash chain
     included, is committed) against a fresh gatekeeper;
  2. search latency for an IP + time-range query on a log of
     BENCH_AUDIT_ROWS records (default 10 million) that this script
     generates inside the database (SQL, one transaction; the indexes are
     dropped for the load and rebuilt after), measured as the wall time of
     `gatekeeper audit search --ip A --from T1 --to T2` (process start
     included), median and p95 of 20 queries for different addresses.

No thresholds: it fails only when a measurement would be meaningless.
Writes an "Audit" section into BENCHMARKS.md (replacing an earlier one).

Knobs: BENCH_AUDIT_ROWS (10000000), BENCH_AUDIT_BACKENDS ("sqlite postgres"),
BENCH_THREADS (2), BENCH_CONNS (64), BENCH_DURATION (10s), BENCH_OUT.
"""
import hashlib
import hmac
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
# one Gatekeeper helper for the e2e suite and this bench: it runs GK_BIN
if len(sys.argv) > 1:
    os.environ["GK_BIN"] = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
from conftest import Gatekeeper  # noqa: E402
PGCTL = os.path.join(TOP, "tests", "pg", "pgctl.sh")
ROWS = int(os.environ.get("BENCH_AUDIT_ROWS", "10000000"))
BACKENDS = os.environ.get("BENCH_AUDIT_BACKENDS", "sqlite postgres").split()
THREADS = os.environ.get("BENCH_THREADS", "2")
CONNS = os.environ.get("BENCH_CONNS", "64")
DURATION = os.environ.get("BENCH_DURATION", "10s")
OUT = os.environ.get("BENCH_OUT", os.path.join(TOP, "BENCHMARKS.md"))
ORIGIN = "https://bench.example"
MARK = "<!-- audit bench (tests/bench/audit_bench.py) -->"
BASE_US = 1_700_000_000_000_000   # 2023-11-14, 1 ms between records
IPS = 65536                      # 10.0.x.y


def die(msg):
    print("audit bench: " + msg, file=sys.stderr)
    sys.exit(1)


def bench_gatekeeper(tmp, dsn=None):
    """The e2e suite's Gatekeeper, tuned for load: no connection caps, no
    token lifetime limit, quiet, one thread per core."""
    over = {"server__log_level": "error", "server__threads": "0",
            "server__per_ip_conn_limit": "0", "server__conn_limit": "100000",
            "gate__max_token_lifetime": "0", "acl__origins": ORIGIN}
    if dsn:
        over.update(audit__backend="postgres", audit__dsn=dsn)
    return Gatekeeper(tmp, **over)


def bench_url(gk):
    expires = str(int(time.time()) + 3600)
    mac = hmac.new(gk.v1_key, ("benchs" + "GET_Object" + expires).encode(),
                   hashlib.sha256).hexdigest()
    return ("http://127.0.0.1:%d/bench?path=/s/obj&operation=GET_Object"
            "&expires=%s&hmac=%s" % (gk.port, expires, mac))


def wrk(url):
    p = subprocess.run(["wrk", "-t", THREADS, "-c", CONNS, "-d", DURATION,
                        "--latency", "-H", "Origin: " + ORIGIN, url],
                       capture_output=True, text=True)
    out = p.stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        die("wrk saw errors:\n" + out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(r"%s\s+([\d.]+)(us|ms|s)" % label, out)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else \
            v * 1000 if m.group(2) == "s" else v
    return rps, ms("50%"), ms("99%")


def sqlite_generate(db_path, n):
    db = sqlite3.connect(db_path, isolation_level=None)
    idx = [r[0] for r in db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND"
        " tbl_name = 'audit' AND sql IS NOT NULL")]
    names = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND"
        " tbl_name = 'audit' AND sql IS NOT NULL")]
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    for name in names:
        db.execute("DROP INDEX %s" % name)
    db.execute("CREATE TEMP TABLE hx(i INTEGER PRIMARY KEY, b BLOB)")
    db.execute("INSERT INTO hx VALUES " + ",".join(
        "(%d, x'%02x')" % (i, i) for i in range(256)))
    db.execute(
        "INSERT INTO audit(time_us, request_id, client_ip, client_addr,"
        " user_agent, protocol, operation, root, path, status, decision,"
        " message, bytes, duration_us, instance_id, seq, prev_hash, hash)"
        " WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c"
        " WHERE n < ?)"
        " SELECT ? + n * 1000, printf('%032x', n),"
        " '10.0.' || ((n / 256) % 256) || '.' || (n % 256),"
        " CAST(x'00000000000000000000ffff0a00' ||"
        " (SELECT b FROM hx WHERE i = (n / 256) % 256) ||"
        " (SELECT b FROM hx WHERE i = n % 256) AS BLOB),"
        " 'bench', 'v1', 'GET_Object', 'bench', '/s/' || (n % 1000),"
        " 302, 'allow', 'Success', 0, 150, 'bench-gen', n, zeroblob(32),"
        " zeroblob(32) FROM c", (n, BASE_US))
    for sql in idx:
        db.execute(sql)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()


def pg_generate(pg_dir, db, n):
    def psql(sql):
        p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", pg_dir, "-U", "gk", "-d", db, "-c", sql],
                           capture_output=True, text=True)
        if p.returncode != 0:
            die("psql: " + p.stderr)
        return p.stdout
    idx = psql("SELECT indexname || '|' || indexdef FROM pg_indexes WHERE"
               " tablename = 'audit' AND indexname <> 'audit_pkey'")
    idx = [line.split("|", 1) for line in idx.splitlines() if line]
    psql("BEGIN;" + "".join("DROP INDEX %s;" % name for name, _ in idx) +
         "INSERT INTO audit(time_us, request_id, client_ip, client_addr,"
         " user_agent, protocol, operation, root, path, status, decision,"
         " message, bytes, duration_us, instance_id, seq, prev_hash, hash)"
         " SELECT %d + n * 1000, lpad(to_hex(n), 32, '0'),"
         " '10.0.' || ((n / 256) %% 256) || '.' || (n %% 256),"
         " decode('00000000000000000000ffff0a00' ||"
         " lpad(to_hex(n %% 65536), 4, '0'), 'hex'),"
         " 'bench', 'v1', 'GET_Object', 'bench', '/s/' || (n %% 1000),"
         " 302, 'allow', 'Success', 0, 150, 'bench-gen', n,"
         " decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex')"
         " FROM generate_series(1::bigint, %d) n;" % (BASE_US, n) +
         "".join("%s;" % d for _, d in idx) + "COMMIT; ANALYZE audit;")


def search_latency(gk, target):
    times = []
    span_us = ROWS * 1000
    for k in range(20):
        ip = "10.0.%d.%d" % ((k * 37) % 256, (k * 91) % 256)
        start = BASE_US + (k * span_us) // 25
        t1 = str(start // 1_000_000)
        t2 = str((start + 3600 * 1_000_000) // 1_000_000)
        t0 = time.perf_counter()
        p = subprocess.run([os.environ["GK_BIN"], "audit", "search",
                            "--db", target,
                            "--ip", ip, "--from", t1, "--to", t2,
                            "--format", "json", "--limit", "1000"],
                           capture_output=True, text=True)
        times.append((time.perf_counter() - t0) * 1000)
        if p.returncode != 0:
            die("search failed: " + p.stderr)
        if k == 0:
            hits = len(p.stdout.splitlines())
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], hits


def api_search_latency(gk):
    """The same 20 queries through the running server's GET /admin/audit
    (admin token, one keep-alive connection): the search itself, without
    a process start or a new database connection."""
    import requests
    with open(os.path.join(gk.data, "keys", "admin.token")) as f:
        tok = f.read().strip()
    times = []
    span_us = ROWS * 1000
    with requests.Session() as sess:
        sess.headers["Authorization"] = "Bearer " + tok
        for k in range(21):
            ip = "10.0.%d.%d" % ((k * 37) % 256, (k * 91) % 256)
            start = BASE_US + ((k % 20) * span_us) // 25
            params = {"ip": ip, "from": str(start // 1_000_000),
                      "to": str((start + 3600 * 1_000_000) // 1_000_000),
                      "limit": "1000"}
            t0 = time.perf_counter()
            r = sess.get(gk.base + "/admin/audit", params=params, timeout=60)
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                die("GET /admin/audit: %d %s" % (r.status_code, r.text[:300]))
            if k == 0:
                hits = len(r.json()["records"])
                continue        # the first opens the connection
            times.append(dt)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], hits


def run_backend(gk_bin, backend, lines):
    tmp = tempfile.mkdtemp(prefix="gk-abench-")
    pg_dir = None
    try:
        dsn = None
        if backend == "postgres":
            out = subprocess.run([PGCTL, "start"], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                die("cannot start PostgreSQL: " + out.stderr)
            pg_dir, dsn = out.stdout.split()
        gk = bench_gatekeeper(tmp, dsn)
        gk.start()
        wrk(bench_url(gk))   # warm-up
        rps, p50, p99 = wrk(bench_url(gk))
        gk.stop()
        target = dsn if dsn else os.path.join(gk.data, "audit.db")
        p = subprocess.run([gk_bin, "audit", "verify", "--config",
                            gk.config], capture_output=True, text=True)
        if p.returncode != 0:
            die("the benchmarked log does not verify: " + p.stdout)
        t0 = time.time()
        if backend == "postgres":
            pg_generate(pg_dir, "gk", ROWS)
        else:
            sqlite_generate(target, ROWS)
        gen_s = time.time() - t0
        med, p95, hits = search_latency(gk, target)
        gk.start()
        try:
            amed, ap95, ahits = api_search_latency(gk)
        finally:
            gk.stop()
        if ahits != hits:
            die("GET /admin/audit found %d records, audit search %d" %
                (ahits, hits))
        lines.append("| %s | %.0f | %.2f | %.2f | %d | %.0f s | %.1f | %.1f "
                     "| %.1f | %.1f | %d |" % (backend, rps, p50, p99, ROWS,
                                               gen_s, med, p95, amed, ap95,
                                               hits))
        print("audit bench %s: %.0f audited grants/s (p99 %.2f ms); search "
              "on %d rows: median %.1f ms, p95 %.1f ms (CLI); %.1f ms, "
              "%.1f ms (GET /admin/audit)" %
              (backend, rps, p99, ROWS, med, p95, amed, ap95))
    finally:
        if pg_dir:
            subprocess.run([PGCTL, "stop", pg_dir])
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        die("usage: audit_bench.py GK_BIN")
    gk_bin = os.path.abspath(sys.argv[1])
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            die("%s not found (bash scripts/install-deps.sh)" % tool)
    lines = [MARK, "", "## Audit", "",
             "Sustained audited grants (v1 GET_Object 302, each answered "
             "after its chained record is committed; wrk -t%s -c%s -d%s, "
             "loopback, %d cores) and `gatekeeper audit search --ip A "
             "--from T --to T+1h` on a generated log (wall time including "
             "process start; 20 queries); then the same 20 queries through "
             "the running server's `GET /admin/audit` (admin token, one "
             "keep-alive connection: the search without the command's "
             "process start and its new database connection, which on this "
             "machine are most of the command's time)." %
             (THREADS, CONNS, DURATION, os.cpu_count() or 0), "",
             "| backend | grants/s | p50 ms | p99 ms | log rows | generated "
             "in | search median ms (CLI) | search p95 ms (CLI) | search "
             "median ms (API) | search p95 ms (API) | hits |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for b in BACKENDS:
        run_backend(gk_bin, b, lines)
    lines += ["", "Generated by `make bench` (tests/bench/audit_bench.py) on "
              + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + "."]
    old = ""
    if os.path.exists(OUT):
        with open(OUT) as f:
            old = f.read()
        if MARK in old:
            old = old[:old.index(MARK)]
    with open(OUT, "w") as f:
        f.write(old.rstrip("\n") + ("\n\n" if old else "") +
                "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
