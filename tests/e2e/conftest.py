"""End-to-end fixtures: run the real gatekeeper binary on a free loopback
port with its own data directory, and talk HTTP to it.

The v1 signatures are computed here in Python (hmac module), independently
of the C code, so the tests check the protocol, not the code against itself.
"""
import hashlib
import hmac as hmaclib
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid
import json

import pytest
import requests

BIN = os.environ.get("GK_BIN", os.path.join(os.path.dirname(__file__),
                                            "..", "..", "build", "gatekeeper"))
ORIGIN = "https://app.example.com"
PGCTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg",
                     "pgctl.sh")


class PgServer:
    """A throw-away PostgreSQL (tests/pg/pgctl.sh): one per session, a fresh
    database per gatekeeper."""

    def __init__(self):
        out = subprocess.run([PGCTL, "start"], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        self.dir, self.dsn = out.stdout.split()

    def new_db(self):
        name = "gk_" + uuid.uuid4().hex[:12]
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return "postgresql:///%s?host=%s&user=gk" % (name, self.dir), name

    def psql(self, db, sql):
        p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", self.dir, "-U", "gk", "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def halt(self):
        subprocess.run([PGCTL, "halt", self.dir], check=True, timeout=120)

    def resume(self):
        subprocess.run([PGCTL, "resume", self.dir], check=True, timeout=120)

    def stop(self):
        subprocess.run([PGCTL, "stop", self.dir], timeout=120)


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Gatekeeper:
    """One gatekeeper process with its own config and data directory."""

    def __init__(self, tmp, pg=None, **overrides):
        self.dir = tmp
        self.pg = pg
        self.pgdb = None
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.data = os.path.join(tmp, "data")
        self.config = os.path.join(tmp, "gatekeeper.ini")
        settings = {
            "server": {"listen": "127.0.0.1", "port": str(self.port),
                       "threads": "2", "log_level": "warn"},
            "gate": {"data_dir": self.data},
            "acl": {"ip_allow": "127.0.0.0/8, ::1/128",
                    "origins": ORIGIN + ", .partner.example"},
            "audit": {},
            # countries off unless a test asks (the default finds the
            # machine's database; pass geo__database=None for it)
            "geo": {"database": "off"},
        }
        if pg is not None:
            dsn, self.pgdb = pg.new_db()
            settings["audit"].update({"backend": "postgres", "dsn": dsn})
        for key, value in overrides.items():
            section, name = key.split("__", 1)
            if value is None:
                settings.setdefault(section, {}).pop(name, None)
                continue
            settings.setdefault(section, {})[name] = value.replace(
                "{port}", str(self.port))
        self.audit_db = settings["audit"].get(
            "db", os.path.join(self.data, "audit.db"))
        with open(self.config, "w") as f:
            for section, items in settings.items():
                f.write("[%s]\n" % section)
                for k, v in items.items():
                    f.write("%s = %s\n" % (k, v))
        self.run("keygen")
        with open(os.path.join(self.data, "keys", "v1.key")) as f:
            self.v1_key = f.read().strip().encode()
        self.proc = None
        self.log = os.path.join(tmp, "gatekeeper.log")

    def run(self, *args, check=True):
        p = subprocess.run([BIN] + list(args) + ["--config", self.config],
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("gatekeeper %s failed: %s" %
                                 (args[0], p.stderr))
        return p

    def start(self):
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", self.config],
            stdout=subprocess.PIPE, stderr=self.logf, text=True)
        line = self.proc.stdout.readline()
        assert "listening on" in line, "no listening line: %r (log: %s)" % (
            line, open(self.log).read())
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    # -- v1 signing, independent of the C code --------------------------
    def sign(self, root, path, op, expires=None, ttl=300, key=None):
        if expires is None:
            expires = int(time.time()) + ttl
        parts = path.split("/")
        sub = parts[1] if len(parts) > 1 else "undefined"
        msg = (root + sub + op + str(expires)).encode()
        mac = hmaclib.new(key or self.v1_key, msg, hashlib.sha256).hexdigest()
        return {"path": path, "operation": op, "expires": str(expires),
                "hmac": mac}

    def raw_get(self, target, headers=None):
        """GET with the request target sent byte for byte (requests would
        re-quote it)."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", target, headers=headers or {})
            resp = c.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            c.close()

    def url(self, root, params):
        return "%s/%s?%s" % (self.base, root,
                             urllib.parse.urlencode(params,
                                                    quote_via=urllib.parse.quote))

    def get(self, root, path, op, origin=ORIGIN, headers=None, **kw):
        h = {"Origin": origin} if origin else {}
        h.update(headers or {})
        return requests.get(self.url(root, self.sign(root, path, op, **kw)),
                            headers=h, allow_redirects=False, timeout=30)

    def upload(self, path, content, root="app", origin=ORIGIN,
               filename="f.bin"):
        r = self.get(root, path, "PUT_Object", origin=origin)
        assert r.status_code == 200, r.text
        ret = r.json()["clientReturn"]
        files = {"file": (filename, content, "application/octet-stream")}
        return requests.post(ret["url"], data=ret["fields"], files=files,
                             timeout=120), ret

    # -- the audit, read back with Python's sqlite3 or psql --------------
    def pg_query(self, sql, args=()):
        for a in args:
            sql = sql.replace("?", sql_literal(a), 1)
        out = self.pg.psql(self.pgdb,
                           "SELECT row_to_json(t) FROM (%s) t" % sql)
        return [json.loads(line) for line in out.splitlines() if line]

    def audit_sql(self, sql):
        """Runs SQL on the audit store (for tampering)."""
        if self.pg is not None:
            self.pg.psql(self.pgdb, sql)
            return
        db = sqlite3.connect(self.audit_db)
        db.executescript(sql)
        db.commit()
        db.close()

    def audit_settled(self):
        """Waits until every answered record is committed to SQLite: an
        answer waits for the journal and for its row in the writer's open
        transaction, which holds the write lock until its commit (at most
        20 ms later under load), so taking the lock once is enough."""
        if self.pg is not None or not os.path.exists(self.audit_db):
            return
        db = sqlite3.connect(self.audit_db, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        finally:
            db.close()

    def audit_rows(self, where="1=1", args=()):
        if self.pg is not None:
            return self.pg_query("SELECT * FROM audit WHERE %s ORDER BY id" %
                                 where, args)
        self.audit_settled()
        db = sqlite3.connect("file:%s?mode=ro" % self.audit_db, uri=True)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(
                "SELECT * FROM audit WHERE %s ORDER BY id" % where, args)]
        finally:
            db.close()

    def audit_checkpoints(self):
        if self.pg is not None:
            return self.pg_query("SELECT * FROM audit_checkpoint ORDER BY"
                                 " instance_id, seq")
        self.audit_settled()
        db = sqlite3.connect("file:%s?mode=ro" % self.audit_db, uri=True)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(
                "SELECT * FROM audit_checkpoint ORDER BY instance_id, seq")]
        finally:
            db.close()

    def audit_for(self, response):
        rid = response.headers["X-Request-Id"]
        return self.audit_rows("request_id = ?", (rid,))


@pytest.fixture(scope="session")
def pg_server():
    server = PgServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Parametrizes a test over both audit backends: pass it to
    gk_factory(backend=...)."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_server")
    return None


@pytest.fixture
def gk_factory():
    made = []

    def make(backend=None, **overrides):
        tmp = tempfile.mkdtemp(prefix="gk-e2e-")
        g = Gatekeeper(tmp, pg=backend, **overrides)
        made.append(g)
        return g

    yield make
    for g in made:
        g.stop()
        subprocess.run(["rm", "-rf", g.dir])


@pytest.fixture
def gk(gk_factory):
    return gk_factory().start()


# The session-wide S3 test server (Ceph RGW) for the s3 store tests.
from s3util import rgw  # noqa: E402,F401
