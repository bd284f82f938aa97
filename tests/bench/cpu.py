#!/usr/bin/env python3
"""tests/bench/cpu.py [options] GK_BIN [GK_BIN2] - server CPU per request of
the v1 GET_Object 302 scenario (every grant durably audited), next to nginx
doing the same shape of work, on loopback.

Throughput on a shared machine moves with everybody else's load; the CPU a
server spends per answered request moves far less. For each run this
prints wrk's req/s and p99 and the server's CPU per request: utime + stime
of every thread of the server (/proc/PID/task/*/stat, all nginx worker
processes for nginx) over the measured wrk run, divided by the requests wrk
completed, split by thread name (the gatekeeper's HTTP threads are
MHD-worker; its audit writer, SQLite checkpoints and the rest are gatekeeper),
and the context switches per request.

With two binaries the runs alternate A B B A ... (--rounds), so that a
change in the machine's load hits both alike: a before/after comparison.

--callgrind counts instructions instead (user space only, the same on a
loaded machine as on a quiet one): the gatekeeper runs under valgrind's
callgrind, wrk (1 thread, 16 connections) warms it up for 3 s, the
counters are zeroed, wrk runs for --duration, and the instructions of the
whole process are divided by the requests; callgrind_annotate on the file
named shows where they went. (libmicrohttpd's memset of its connection
memory is counted per byte there, rep stos: some 60k per request.)

    python3 tests/bench/cpu.py build/gatekeeper
    python3 tests/bench/cpu.py --rounds 4 --no-nginx /tmp/old build/gatekeeper
    python3 tests/bench/cpu.py --callgrind --duration 8s build/gatekeeper

Options: --duration (5s), --warmup (1s), --rounds (1; with two binaries
each round runs both), --threads (gatekeeper threads = nginx workers, 2),
--no-nginx, --set section.key=value (extra gatekeeper settings, repeatable).
wrk runs with 2 threads and 64 keep-alive connections over 1000 pre-signed
URLs (tests/bench/urls.py), as tests/bench/run.sh does.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data_bench import free_port  # noqa: E402
ORIGIN = "https://bench.example"
ROOT = "bench"
TICK = os.sysconf("SC_CLK_TCK")


def die(msg):
    sys.stderr.write("cpu.py: %s\n" % msg)
    sys.exit(1)


def threads_of(pid):
    """{tid: (name, cpu ticks, context switches)} of a process."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            stat = open("/proc/%d/task/%s/stat" % (pid, tid)).read()
            status = open("/proc/%d/task/%s/status" % (pid, tid)).read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat[stat.rindex(")") + 2:].split()
        csw = sum(int(m) for m in re.findall(
            r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", status, re.M))
        out[(pid, tid)] = (name, int(f[11]) + int(f[12]), csw)
    return out


def snapshot(pids):
    snap = {}
    for pid in pids:
        snap.update(threads_of(pid))
    return snap


def wrk(lua, port, duration, latency=True):
    args = ["wrk", "-t2", "-c64", "-s", lua, "-d" + duration]
    if latency:
        args.append("--latency")
    r = subprocess.run(args + ["http://127.0.0.1:%d/" % port],
                       capture_output=True, text=True)
    o = r.stdout
    if r.returncode != 0 or "Non-2xx" in o or "Socket errors" in o or \
            "requests in" not in o:
        die("wrk: a failed run or answers other than 3xx:\n" + o + r.stderr)
    n = int(re.search(r"(\d+) requests in", o).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1))
    p99 = re.search(r"^\s+99%\s+(\S+)", o, re.M)
    return n, rps, p99.group(1) if p99 else "-"


def measure(label, pids, lua, port, args):
    if args.warmup != "0":
        wrk(lua, port, args.warmup, latency=False)
    before = snapshot(pids)
    n, rps, p99 = wrk(lua, port, args.duration)
    after = snapshot(pids)
    by_name, total, csw = {}, 0, 0
    for key, (name, ticks, sw) in after.items():
        _, t0, s0 = before.get(key, (name, 0, 0))
        by_name[name] = by_name.get(name, 0) + ticks - t0
        total += ticks - t0
        csw += sw - s0
    us = lambda ticks: ticks * 1e6 / TICK / max(n, 1)
    print("%-28s %8.0f req/s  p99 %-8s  CPU %5.1f us/req  (%s)  "
          "%.2f switches/req  load %s" % (
              label, rps, p99, us(total), ", ".join(
                  "%s %.1f" % (k, us(v)) for k, v in sorted(by_name.items())),
              csw / max(n, 1), open("/proc/loadavg").read().split()[0]),
          flush=True)


def callgrind(gk_bin, tmp, args):
    """Instructions per request under callgrind."""
    if shutil.which("valgrind") is None or \
            shutil.which("callgrind_control") is None:
        die("valgrind not found: install valgrind")
    cg = tempfile.mkdtemp(dir=tmp)
    out = os.path.join(cg, "callgrind.out")
    proc, port, d = start_gatekeeper(gk_bin, tmp, args, [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out])
    try:
        lua = os.path.join(d, "u.lua")
        run = lambda dur: subprocess.run(
            ["wrk", "-t1", "-c16", "-s", lua, "-d" + dur,
             "http://127.0.0.1:%d/" % port], capture_output=True, text=True)
        run("3s")
        subprocess.run(["callgrind_control", "-z", str(proc.pid)],
                       capture_output=True, check=True)
        r = run(args.duration)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)],
                       capture_output=True, check=True)
        if "Non-2xx" in r.stdout or "requests in" not in r.stdout:
            die("wrk under callgrind:\n" + r.stdout + r.stderr)
        n = int(re.search(r"(\d+) requests in", r.stdout).group(1))
    finally:
        proc.terminate()
        proc.wait()
    # the dump asked for (callgrind.out.1), not the one at exit
    dumps = [f for f in os.listdir(cg) if f.startswith("callgrind.out.")]
    if not dumps:
        die("callgrind wrote no dump")
    keep = os.path.join(tempfile.gettempdir(), "gk-callgrind.out")
    shutil.copy(os.path.join(cg, sorted(dumps)[0]), keep)
    m = re.search(r"^(?:summary|totals): (\d+)", open(keep).read(), re.M)
    print("gatekeeper %s  %d requests  %.0f instructions/request  (%s)" % (
        gk_bin, n, int(m.group(1)) / max(n, 1), keep), flush=True)


def start_gatekeeper(gk_bin, tmp, args, wrap=()):
    d = tempfile.mkdtemp(dir=tmp)
    port = free_port()
    ini = os.path.join(d, "gatekeeper.ini")
    settings = {
        "server": {"listen": "127.0.0.1", "port": str(port),
                   "threads": str(args.threads), "log_level": "warn",
                   "per_ip_conn_limit": "0"},
        "gate": {"data_dir": os.path.join(d, "data"),
                 "max_token_lifetime": "0"},
        "acl": {"ip_allow": "127.0.0.0/8", "origins": ORIGIN},
    }
    for s in args.set:
        key, _, value = s.partition("=")
        sec, _, name = key.partition(".")
        if not sec or not name:
            die("--set wants section.key=value, not %r" % s)
        settings.setdefault(sec, {})[name] = value
    with open(ini, "w") as f:
        for sec, kv in settings.items():
            f.write("[%s]\n" % sec)
            for k, v in kv.items():
                f.write("%s = %s\n" % (k, v))
    r = subprocess.run([gk_bin, "keygen", "--config", ini],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die("gatekeeper keygen failed: " + r.stderr)
    out = os.path.join(d, "stdout.log")
    proc = subprocess.Popen(list(wrap) + [gk_bin, "serve", "--config", ini],
                            stdout=open(out, "w"),
                            stderr=open(os.path.join(d, "stderr.log"), "w"))
    for _ in range(600 if wrap else 100):
        if "listening on" in open(out).read():
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        die("the gatekeeper did not start")
    if proc.poll() is not None:
        die("the gatekeeper exited: " +
            open(os.path.join(d, "stderr.log")).read())
    urls(d, "v1-get", ["--key-file", os.path.join(d, "data", "keys",
                                                   "v1.key")])
    return proc, port, d


def urls(d, kind, sign):
    r = subprocess.run([sys.executable, os.path.join(HERE, "urls.py"), kind,
                        os.path.join(d, "u"), "--count", "1000",
                        "--expires", str(int(time.time()) + 3600),
                        "--origin", ORIGIN, "--root", ROOT] + sign,
                       capture_output=True, text=True)
    if r.returncode != 0:
        die("urls.py failed: " + r.stderr)


def start_nginx(tmp, args):
    """nginx as tests/bench/run.sh runs it (secure_link, return 302, access
    log on)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    d = tempfile.mkdtemp(dir=tmp)
    port = free_port()
    secret = os.urandom(16).hex()
    os.makedirs(os.path.join(d, "tmp"))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("""worker_processes %(w)d;
error_log %(d)s/error.log warn;
pid %(d)s/nginx.pid;
events { worker_connections 4096; }
http {
	access_log %(d)s/access.log combined;
	keepalive_requests 10000000;
	client_body_temp_path %(d)s/tmp/body;
	proxy_temp_path %(d)s/tmp/proxy;
	fastcgi_temp_path %(d)s/tmp/fastcgi;
	uwsgi_temp_path %(d)s/tmp/uwsgi;
	scgi_temp_path %(d)s/tmp/scgi;
	map $http_origin $bench_origin_ok { default 0; "%(o)s" 1; }
	server {
		listen 127.0.0.1:%(p)d;
		location = /%(r)s {
			allow 127.0.0.0/8;
			deny all;
			secure_link $arg_md5,$arg_expires;
			secure_link_md5 "$secure_link_expires$uri$arg_path %(s)s";
			if ($secure_link = "") { return 401; }
			if ($secure_link = "0") { return 410; }
			if ($bench_origin_ok = 0) { return 403; }
			add_header Access-Control-Allow-Origin $http_origin always;
			add_header Cache-Control "no-store, must-revalidate" always;
			return 302 "http://127.0.0.1:%(p)d/_data/%(r)s$arg_path?exp=$secure_link_expires&sig=$arg_md5";
		}
		location / { return 404; }
	}
}
""" % {"w": args.threads, "d": d, "p": port, "o": ORIGIN, "s": secret,
       "r": ROOT})
    proc = subprocess.Popen([nginx, "-p", d, "-e", d + "/error.log", "-c",
                             d + "/nginx.conf", "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            if proc.poll() is not None:
                die("nginx did not start")
            time.sleep(0.1)
    urls(d, "secure-link", ["--secret", secret])
    return proc, port, d


def workers_of(pid):
    r = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                       text=True)
    return [int(x) for x in r.stdout.split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bins", nargs="+", metavar="GK_BIN")
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--warmup", default="1s")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    if len(args.bins) > 2:
        die("one or two gatekeeper binaries")
    for b in args.bins:
        if not os.access(b, os.X_OK):
            die("no gatekeeper binary at %s" % b)
    if shutil.which("wrk") is None:
        die("wrk not found: install wrk (bash scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="gk-cpu-bench-")
    ngx = None
    if args.callgrind:
        try:
            for b in args.bins:
                callgrind(b, tmp, args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        if not args.no_nginx:
            ngx = start_nginx(tmp, args)
        order = []
        for r in range(args.rounds):
            order += args.bins if r % 2 == 0 else args.bins[::-1]
        for b in order:
            proc, port, d = start_gatekeeper(b, tmp, args)
            try:
                measure("gatekeeper %s" % b, [proc.pid],
                        os.path.join(d, "u.lua"), port, args)
            finally:
                proc.terminate()
                proc.wait()
            if ngx is not None:
                measure("nginx", workers_of(ngx[0].pid),
                        os.path.join(ngx[2], "u.lua"), ngx[1], args)
    finally:
        if ngx is not None:
            ngx[0].terminate()
            ngx[0].wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
