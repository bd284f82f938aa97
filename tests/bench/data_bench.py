#!/usr/bin/env python3
"""tests/bench/data_bench.py GK_BIN AUDIT_WRITER - the rest of issue 12's
table for `make bench`, each next to nginx where it has a counterpart:

  1. the audit writer alone (build/audit_writer): durable records per
     second with 64 and with 1024 records in flight (SQLite);
  2. fs store download of a BENCH_DATA_MB (1024) MiB object through its
     data URL (AES-256-GCM decrypt), curl client, against nginx serving the
     same bytes as a plain file;
  3. fs store upload of the same object through the upload endpoint
     (curl -F), with the gatekeeper's peak RSS (VmHWM) before and after;
  4. BENCH_IDLE_CONNS (10000) idle keep-alive connections from many
     loopback addresses (127.0.x.y), each after one answered grant: the
     gatekeeper's RSS, and then 200 fresh requests on a new connection
     each (p50, p99).

No thresholds: it fails only when a measurement would be meaningless (an
answer that is not the expected one). Writes a section between markers
into BENCHMARKS.md (before the audit section, which audit_bench.py
rewrites to the end of the file).

Knobs: BENCH_DATA_MB, BENCH_IDLE_CONNS, BENCH_OUT, BENCH_DATA_ROWS (which
parts to run, comma-separated: writer,data,idle; all by default; the
section written then lacks the rows left out).
"""
import hashlib
import hmac
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.environ.get("BENCH_OUT", os.path.join(TOP, "BENCHMARKS.md"))
DATA_MB = int(os.environ.get("BENCH_DATA_MB", "1024"))
IDLE = int(os.environ.get("BENCH_IDLE_CONNS", "10000"))
ORIGIN = "https://bench.example"
BEGIN = "<!-- data bench begin (tests/bench/data_bench.py) -->"
END = "<!-- data bench end -->"
AUDIT_MARK = "<!-- audit bench (tests/bench/audit_bench.py) -->"


def die(msg):
    print("data bench: " + msg, file=sys.stderr)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu_s(pid):
    """utime + stime of all of pid's threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Gatekeeper:
    def __init__(self, gk_bin, tmp):
        self.bin = gk_bin
        self.data = os.path.join(tmp, "data")
        self.port = free_port()
        self.config = os.path.join(tmp, "gk.ini")
        os.makedirs(tmp, exist_ok=True)
        with open(self.config, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1\nport = %d\n"
                    "log_level = error\nper_ip_conn_limit = 0\n"
                    "conn_limit = %d\n"
                    "[gate]\ndata_dir = %s\nmax_token_lifetime = 0\n"
                    "max_upload_bytes = 4294967296\n"
                    "[acl]\nip_allow = 127.0.0.0/8\norigins = %s\n" %
                    (self.port, IDLE + 1000, self.data, ORIGIN))
        p = subprocess.run([self.bin, "keygen", "--config", self.config],
                           capture_output=True, text=True)
        if p.returncode != 0:
            die("keygen: " + p.stderr.strip())
        with open(os.path.join(self.data, "keys", "v1.key"), "rb") as f:
            self.v1 = f.read().strip()
        self.proc = subprocess.Popen([self.bin, "serve", "--config",
                                      self.config], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if "listening on" not in self.proc.stdout.readline():
            die("the gatekeeper did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=120)
            self.proc = None

    def target(self, path, op, root="bench"):
        expires = str(int(time.time()) + 3600)
        sub = path.split("/")[1]
        mac = hmac.new(self.v1, (root + sub + op + expires).encode(),
                       hashlib.sha256).hexdigest()
        return "/" + root + "?" + urllib.parse.urlencode(
            {"path": path, "operation": op, "expires": expires,
             "hmac": mac}, quote_via=urllib.parse.quote)

    def url(self, path, op, root="bench"):
        return "http://127.0.0.1:%d%s" % (self.port,
                                          self.target(path, op, root))


def curl(args):
    p = subprocess.run(["curl", "-sS"] + args, capture_output=True,
                       text=True)
    if p.returncode != 0:
        die("curl %s: %s" % (" ".join(args[:3]), p.stderr.strip()))
    return p.stdout


def timed_get(url, headers=()):
    """Wall time of curl downloading url to /dev/null; checks 200."""
    args = ["-o", "/dev/null", "-w", "%{http_code} %{size_download}"]
    for h in headers:
        args += ["-H", h]
    t = time.monotonic()
    out = curl(args + [url]).split()
    dt = time.monotonic() - t
    if out[0] != "200" or int(out[1]) != DATA_MB << 20:
        die("download of %s answered %s with %s bytes" % (url, out[0],
                                                          out[1]))
    return dt


# What a profile of the writer alone showed (perf record -g on
# build/audit_writer, 64 in flight), and what was changed for it.
WRITER_NOTE = (
    "**The writer alone.** With 64 records in flight every batch is all 64 "
    "(each client waits for its record), so a batch's time is the rate: "
    "chaining and encoding (SHA-256), the SQLite insert (the hot table and "
    "its 3 indexes, about half of the writer thread's CPU), the journal's "
    "pwrite + fdatasync (on the writer's thread after the insert: a "
    "thread of its own overlapping the two cost more in its wake-ups than "
    "it saved) and answering. A profile showed a SQLite commit per batch (the queue "
    "is empty when a closed loop's batch ends) with WAL checkpoints and "
    "their fsyncs in the middle of it, about a quarter of the writer's "
    "time. Now a batch of several records is answered before its commit, "
    "committed right after when nothing waits (a lone record still "
    "before: an idle log is searchable once answered); checkpoints run on "
    "a thread of their own; the journal is written ahead with zeros and "
    "reused, so a batch's fdatasync commits no file metadata; SHA-256 is "
    "fetched once; one prepared INSERT carries 16 rows. What is left is "
    "the SQLite insert itself and, after it in a closed loop of 64, the "
    "disk's fdatasync latency (starting the journal's device write before "
    "the insert with sync_file_range gained 1-2 %: not kept). Then a "
    "batch of several records, while the transaction is open, is answered "
    "once its journal frame is durable, before its insert. A profile of "
    "the block requests (perf record -e block:block_rq_issue) showed "
    "every fdatasync also writing the journal's inode: the check after "
    "each flush asked fstat and stat, which ask for the times, and a kernel "
    "with on-demand fine-grained timestamps then stamps the next write "
    "anew; it now asks statx for link count, size and inode only (disk "
    "writes per batch 4.33 -> 3.33, the writer alone 100k -> 113k records/s "
    "at 64 in flight, ABAB runs of build/audit_writer, 2026-12-01 23:35 "
    "UTC). At 64 in flight the rate cannot pass 64 records per fdatasync "
    "latency (0.3-0.5 ms on this virtual disk, a write and a cache flush): "
    "about 130k-210k records/s with no CPU spent at all; with more in "
    "flight the batches grow and the rate follows (the 1024 row).")


def settle():
    """Writes back what earlier scenarios left dirty in the page cache
    (make bench's v1 runs leave gigabytes of audit databases behind), so
    that its writeback does not land in the next row's fdatasyncs or
    reads."""
    os.sync()
    time.sleep(1)


def writer_rows(writer, tmp):
    rows = []
    for inflight in (64, 1024):
        settle()
        db = os.path.join(tmp, "writer-%d.db" % inflight)
        p = subprocess.run([writer, db, "5", str(inflight)],
                           capture_output=True, text=True)
        m = re.search(r"([\d.]+) durable records/s.*?([\d.]+) records per "
                      r"batch", p.stdout)
        if p.returncode != 0 or m is None:
            die("audit_writer: " + p.stdout + p.stderr)
        rows.append((inflight, float(m.group(1)), float(m.group(2))))
    return rows


def start_nginx(tmp, docroot):
    ngx = shutil.which("nginx") or "/usr/sbin/nginx"
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("""worker_processes 2;
error_log %(d)s/error.log warn;
pid %(d)s/nginx.pid;
events { worker_connections 4096; }
http {
	access_log %(d)s/access.log combined;
	client_body_temp_path %(d)s/tmp/body;
	proxy_temp_path %(d)s/tmp/proxy;
	fastcgi_temp_path %(d)s/tmp/fastcgi;
	uwsgi_temp_path %(d)s/tmp/uwsgi;
	scgi_temp_path %(d)s/tmp/scgi;
	sendfile on;
	server {
		listen 127.0.0.1:%(port)d;
		root %(root)s;
	}
}
""" % {"d": d, "port": port, "root": docroot})
    proc = subprocess.Popen([ngx, "-p", d, "-e", d + "/error.log", "-c",
                             d + "/nginx.conf", "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    die("nginx did not start")


def data_rows(gk, tmp):
    docroot = os.path.join(tmp, "www")
    os.makedirs(docroot)
    # nginx's workers drop to an unprivileged user: let them read it
    os.chmod(tmp, 0o755)
    os.chmod(docroot, 0o755)
    big = os.path.join(docroot, "big.bin")
    block = os.urandom(1 << 20)
    with open(big, "wb") as f:
        for _ in range(DATA_MB):
            f.write(block)
    os.chmod(big, 0o644)
    ngx, nport = start_nginx(tmp, docroot)
    try:
        # upload through the form the gatekeeper hands out
        r = curl(["-H", "Origin: " + ORIGIN,
                  gk.url("/d/big.bin", "PUT_Object")])
        import json
        ret = json.loads(r)["clientReturn"]
        args = ["-o", "/dev/null", "-w", "%{http_code}"]
        for k, v in ret["fields"].items():
            args += ["-F", "%s=%s" % (k, v)]
        args += ["-F", "file=@%s;type=application/octet-stream" % big]
        hwm0 = proc_kib(gk.proc.pid, "VmHWM")
        t = time.monotonic()
        code = curl(args + [ret["url"]])
        up = time.monotonic() - t
        hwm1 = proc_kib(gk.proc.pid, "VmHWM")
        if code not in ("200", "201", "204", "303"):
            die("upload answered %s" % code)
        # download (uploads land under the "uploads" root): the 302's
        # data URL, then the bytes
        loc = curl(["-o", "/dev/null", "-w", "%{redirect_url}", "-H",
                    "Origin: " + ORIGIN, gk.url("/d/big.bin", "GET_Object",
                                                "uploads")])
        if not loc:
            die("GET_Object gave no data URL")
        # gatekeeper and nginx in turn (ABBAAB), the gatekeeper's CPU
        # (all its threads) per download
        settle()
        gk_s, ngx_s, gk_cpu = [], [], []
        for who in ("gk", "ngx", "ngx", "gk", "gk", "ngx"):
            if who == "ngx":
                ngx_s.append(timed_get("http://127.0.0.1:%d/big.bin" %
                                       nport))
                continue
            c = proc_cpu_s(gk.proc.pid)
            gk_s.append(timed_get(loc))
            gk_cpu.append(proc_cpu_s(gk.proc.pid) - c)
    finally:
        ngx.send_signal(signal.SIGQUIT)
        ngx.wait(timeout=30)
        os.unlink(big)
    gb = DATA_MB * (1 << 20) / 1e9
    return {"up": gb / up, "hwm0": hwm0, "hwm1": hwm1,
            "down": gb / min(gk_s), "ngx": gb / min(ngx_s),
            "cpu": min(gk_cpu) / (DATA_MB / 1024)}


def idle_rows(gk):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < IDLE + 200:
        die("RLIMIT_NOFILE %d is below %d connections" % (hard, IDLE))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # one answered grant on each, then the connection stays open
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: %s\r\n\r\n" %
           (gk.target("/d/idle.bin", "GET_Object"), ORIGIN)).encode()
    rss0 = proc_kib(gk.proc.pid, "VmRSS")
    socks = []
    try:
        for i in range(IDLE):
            s = socket.socket()
            # many source addresses, as many clients would be
            s.bind(("127.0.%d.%d" % (1 + i // 250, 1 + i % 250), 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", gk.port))
            s.sendall(req)
            socks.append(s)
        for s in socks:
            head = s.recv(4096)
            if not head.startswith(b"HTTP/1.1 302"):
                die("an idle connection's request got %r" % head[:40])
        time.sleep(1)
        rss1 = proc_kib(gk.proc.pid, "VmRSS")
        lat = []
        target = gk.target("/d/x.bin", "GET_Object")
        fresh = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: %s\r\n"
                 "Connection: close\r\n\r\n" % (target, ORIGIN)).encode()
        for _ in range(200):
            t = time.monotonic()
            c = socket.create_connection(("127.0.0.1", gk.port), 10)
            c.sendall(fresh)
            head = c.recv(4096)
            lat.append((time.monotonic() - t) * 1000)
            c.close()
            if not head.startswith(b"HTTP/1.1 302"):
                die("a fresh request got %r" % head[:40])
    finally:
        for s in socks:
            s.close()
    lat.sort()
    return {"conns": IDLE, "rss0": rss0, "rss1": rss1,
            "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99) - 1]}


def main():
    if len(sys.argv) != 3:
        die("usage: data_bench.py GK_BIN AUDIT_WRITER")
    gk_bin, writer = sys.argv[1:]
    parts = os.environ.get("BENCH_DATA_ROWS", "writer,data,idle").split(",")
    tmp = tempfile.mkdtemp(prefix="gk-data-bench-")
    gk = None
    wr, dr, ir = [], None, None
    try:
        if "writer" in parts:
            wr = writer_rows(writer, tmp)
        gk = Gatekeeper(gk_bin, os.path.join(tmp, "gk"))
        if "data" in parts:
            dr = data_rows(gk, tmp)
        if "idle" in parts:
            ir = idle_rows(gk)
    finally:
        if gk:
            gk.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    load = " ".join("%.2f" % x for x in os.getloadavg())
    lines = [BEGIN, "## Audit writer, data path, idle connections", "",
             "Measured %s on %d cores, load average after the run %s "
             "(the machine is shared: figures are noisy, compare within "
             "one run)." % (time.strftime("%Y-%m-%d %H:%M UTC",
                                         time.gmtime()),
                            os.cpu_count() or 0, load), "",
             "| scenario | gatekeeper | nginx | ratio |",
             "|---|---:|---:|---:|"]
    for inflight, rate, batch in wr:
        lines.append("| audit writer alone (SQLite + journal), %d records "
                     "in flight (%.0f per batch) | %.0f records/s | - | - |"
                     % (inflight, batch, rate))
    if dr is not None:
        lines.append("| fs download of %d MiB via data URL (AES-256-GCM), "
                     "curl | %.2f GB/s, %.2f CPU s/GiB | %.2f GB/s (plain "
                     "file) | %.2f |" %
                     (DATA_MB, dr["down"], dr["cpu"], dr["ngx"],
                      dr["down"] / dr["ngx"]))
        lines.append("| fs upload of %d MiB (curl -F) | %.2f GB/s, peak "
                     "RSS %.0f → %.0f MiB | - | - |" %
                     (DATA_MB, dr["up"], dr["hwm0"] / 1024,
                      dr["hwm1"] / 1024))
    if ir is not None:
        lines.append("| %d idle keep-alive connections (127.0.x.y) | RSS "
                     "%.0f → %.0f MiB (%.1f KiB each); fresh request p50 "
                     "%.2f ms, p99 %.2f ms | - | - |" %
                     (ir["conns"], ir["rss0"] / 1024, ir["rss1"] / 1024,
                      (ir["rss1"] - ir["rss0"]) / ir["conns"], ir["p50"],
                      ir["p99"]))
    if wr:
        lines += ["", WRITER_NOTE]
    if dr is not None:
        lines += ["", "Download: the best of three runs each, gatekeeper "
                  "and nginx in turn (ABBAAB), after a `sync` that writes "
                  "back what the earlier scenarios left dirty (the writer "
                  "rows too); CPU s/GiB is the "
                  "gatekeeper's CPU time (all its threads: the HTTP "
                  "thread, and the decrypt helper taking part of each "
                  "MiB's chunks) per GiB sent, from /proc/PID/stat, the "
                  "lowest of the three."]
    lines += ["", "Written by `make bench` (tests/bench/data_bench.py).", END]
    old = open(OUT).read() if os.path.exists(OUT) else ""
    sec = "\n".join(lines) + "\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + sec.rstrip("\n") + \
            old[old.index(END) + len(END):]
    elif AUDIT_MARK in old:
        i = old.index(AUDIT_MARK)
        new = old[:i] + sec + "\n" + old[i:]
    else:
        new = old.rstrip("\n") + "\n\n" + sec
    with open(OUT, "w") as f:
        f.write(new)
    print("\n".join(lines[6:-3]))


if __name__ == "__main__":
    main()
