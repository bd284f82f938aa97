"""Installed as a service: the systemd unit (systemd-analyze verify and
security), `make install` into a DESTDIR, the Type=notify protocol spoken
to a real notify socket, graceful shutdown with a download in flight, and
the .deb installed, served from, upgraded, removed and purged on this
machine with apt and dpkg."""
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import http.client
import urllib.parse

import pytest
import requests

from conftest import BIN, ORIGIN, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKG = os.path.join(ROOT, "packaging")


def run(*args, env=None, timeout=300):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert p.returncode == 0, "%s: %s%s" % (args, p.stdout, p.stderr)
    return p.stdout


def unit_for(bindir, tmp):
    """The unit as install.sh writes it, with ExecStart on bindir."""
    with open(os.path.join(PKG, "gatekeeper.service.in")) as f:
        text = f.read()
    text = (text.replace("@BINDIR@", bindir).replace("@SYSCONFDIR@", "/etc")
            .replace("@DOCDIR@", "/usr/share/doc/gatekeeper"))
    path = os.path.join(tmp, "gatekeeper.service")
    with open(path, "w") as f:
        f.write(text)
    return path


def exposure(unit):
    out = run("systemd-analyze", "security", "--offline=true", unit)
    m = re.search(r"Overall exposure level for gatekeeper\.service: "
                  r"([0-9.]+) (\w+)", out)
    assert m, out
    return float(m.group(1)), m.group(2), out


def test_unit_verifies_and_is_sandboxed(tmp_path):
    unit = unit_for(os.path.dirname(os.path.abspath(BIN)), str(tmp_path))
    p = subprocess.run(["systemd-analyze", "verify", unit],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr
    level, word, out = exposure(unit)
    assert level <= 2.0 and word == "OK", out
    text = open(unit).read()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ProtectSystem=strict", "ReadWritePaths=/var/lib/gatekeeper",
                 "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "SystemCallFilter=@system-service", "PrivateTmp=yes",
                 "MemoryDenyWriteExecute=yes", "User=gatekeeper",
                 # the mode setup-system gives /etc/gatekeeper: another
                 # one and systemd warns at every start
                 "ConfigurationDirectoryMode=0750"):
        assert line in text, line
    # the security check really looks at the sandbox: without it the
    # same unit is exposed
    bare = tmp_path / "bare"
    bare.mkdir()
    lines = [l for l in text.splitlines() if not re.match(
        r"(Protect|Private|Restrict|NoNew|Capab|SystemCall|Memory|Lock|"
        r"Ambient|Remove|Keyring|Device|ProcSubset|UMask)", l)]
    (bare / "gatekeeper.service").write_text("\n".join(lines) + "\n")
    assert exposure(str(bare / "gatekeeper.service"))[0] > 5.0


def test_make_install_destdir(tmp_path):
    dest = str(tmp_path / "dest")
    env = dict(os.environ, BIN=os.path.abspath(BIN), DESTDIR=dest,
               PREFIX="/opt/gk")
    run("sh", os.path.join(PKG, "install.sh"), env=env)
    f = lambda p: os.path.join(dest, p.lstrip("/"))  # noqa: E731
    assert os.access(f("/opt/gk/bin/gatekeeper"), os.X_OK)
    unit = open(f("/opt/gk/lib/systemd/system/gatekeeper.service")).read()
    assert ("ExecStart=/opt/gk/bin/gatekeeper serve --config "
            "/etc/gatekeeper/gatekeeper.ini") in unit
    ini = f("/etc/gatekeeper/gatekeeper.ini")
    assert stat.S_IMODE(os.stat(ini).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(f("/etc/gatekeeper")).st_mode) == 0o750
    assert os.path.exists(f("/opt/gk/share/doc/gatekeeper/README.md"))
    # the shipped config is valid as it stands (keys aside)
    cfg = open(ini).read()
    assert "data_dir = /var/lib/gatekeeper" in cfg
    # a second install keeps the administrator's config
    with open(ini, "a") as fh:
        fh.write("; changed by the admin\n")
    run("sh", os.path.join(PKG, "install.sh"), env=env)
    assert open(ini).read().endswith("; changed by the admin\n")
    # no user or /var/lib is touched with DESTDIR
    assert not os.path.exists(f("/var/lib/gatekeeper"))


class Notify:
    """A NOTIFY_SOCKET, as systemd makes for Type=notify."""

    def __init__(self, d):
        self.path = os.path.join(d, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(20)

    def next(self):
        return self.sock.recv(4096).decode()


def test_type_notify_and_graceful_shutdown(gk_factory, tmp_path):
    g = gk_factory(rate__requests_per_second="0")
    n = Notify(str(tmp_path))
    env = dict(os.environ, NOTIFY_SOCKET=n.path)
    logf = open(g.log, "a")
    proc = subprocess.Popen([BIN, "serve", "--config", g.config],
                            stdout=subprocess.PIPE, stderr=logf, text=True,
                            env=env)
    g.proc = proc
    try:
        msg = n.next()
        assert msg.startswith("READY=1\nSTATUS=listening on port %d" % g.port)
        # READY comes after the socket listens
        assert requests.get(g.base + "/healthz", timeout=10).status_code == 200
        proc.send_signal(signal.SIGHUP)
        assert n.next() == "RELOADING=1"
        assert n.next() == "READY=1"

        # a 24 MiB object, read slowly while SIGTERM arrives
        data = os.urandom(24 * 1024 * 1024)
        up, _ = g.upload("/big/blob.bin", data)
        assert up.status_code == 201, up.text
        r = g.get("uploads", "/big/blob.bin", "GET_Object")
        loc = urllib.parse.urlsplit(r.headers["Location"])
        c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=30)
        c.request("GET", loc.path + "?" + loc.query)
        resp = c.getresponse()
        assert resp.status == 200
        got = bytearray(resp.read(1024 * 1024))
        proc.send_signal(signal.SIGTERM)
        assert n.next() == "STOPPING=1"
        # no new connection is accepted once stopping
        time.sleep(0.3)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(g.base + "/healthz", timeout=5)
        while True:
            chunk = resp.read(256 * 1024)
            if not chunk:
                break
            got += chunk
            time.sleep(0.01)
        c.close()
        assert len(got) == len(data) and bytes(got) == data
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the final checkpoint covers the last record
    rows = g.audit_rows()
    cps = g.audit_checkpoints()
    assert cps and cps[-1]["seq"] == max(r["seq"] for r in rows)
    assert g.run("audit", "verify").returncode == 0


# ---- the Debian package ------------------------------------------------

def apt(*args):
    return run("apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600",
               *args, timeout=900)


def installed_version():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}",
                        "gatekeeper"], capture_output=True, text=True)
    if p.returncode != 0 or not p.stdout.startswith("install ok installed"):
        return None
    return p.stdout.split()[-1]


def serve_installed(port):
    """The installed binary with the installed config, as the service
    user, on a free port; answers one signed request."""
    proc = subprocess.Popen(
        ["setpriv", "--reuid=gatekeeper", "--regid=gatekeeper",
         "--init-groups", "/usr/bin/gatekeeper", "serve", "--config",
         "/etc/gatekeeper/gatekeeper.ini", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd="/")
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:%d" % port in line, (
            line, proc.stderr.read() if proc.poll() is not None else "")
        key = open("/var/lib/gatekeeper/keys/v1.key").read().strip()
        import hashlib
        import hmac
        exp = int(time.time()) + 120
        mac = hmac.new(key.encode(), ("app" + "docs" + "GET_Bucket" +
                                      str(exp)).encode(),
                       hashlib.sha256).hexdigest()
        r = requests.get("http://127.0.0.1:%d/app" % port, params={
            "path": "/docs/", "operation": "GET_Bucket", "expires": str(exp),
            "hmac": mac}, headers={"Origin": "http://127.0.0.1:8080"},
            timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"msg": "Success", "contents": [], "error": False}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def debs(tmp_path):
    assert os.geteuid() == 0, \
        "installing a .deb needs root: run make test as root (README, Quick start)"
    if installed_version() is not None:
        # a leftover of an earlier run of this very test
        apt("purge", "gatekeeper")
    out = str(tmp_path)
    made = []
    for v in ("0.0.1~test", "0.0.2~test"):
        made.append(run("sh", os.path.join(PKG, "mkdeb.sh"),
                        os.path.abspath(BIN), v, out).strip())
    yield made
    if installed_version() is not None:
        apt("purge", "gatekeeper")


def test_deb_install_serve_upgrade_remove_purge(debs):
    old, new = debs
    # Depends comes from dpkg-shlibdeps, sorted by name (the make asan
    # binary adds libasan8 before libc6), so look at its entries
    deps = [d.split()[0] for d in
            run("dpkg-deb", "-f", old, "Depends").split(",")]
    assert "libc6" in deps and "libmicrohttpd12" in deps, deps
    # ExecReload's /bin/kill: a minimal Debian has no procps, and there
    # `systemctl reload gatekeeper` failed with 203/EXEC
    assert "procps" in deps, deps
    apt("install", old)
    assert installed_version() == "0.0.1~test"
    # user, directories, keys, unit
    pw = pwd.getpwnam("gatekeeper")
    assert pw.pw_dir == "/var/lib/gatekeeper"
    assert pw.pw_shell == "/usr/sbin/nologin"
    st = os.stat("/var/lib/gatekeeper")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, 0o700)
    st = os.stat("/etc/gatekeeper")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o750)
    st = os.stat("/etc/gatekeeper/gatekeeper.ini")
    assert st.st_gid == grp.getgrnam("gatekeeper").gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o640
    k = os.stat("/var/lib/gatekeeper/keys/v1.key")
    assert (k.st_uid, stat.S_IMODE(k.st_mode)) == (pw.pw_uid, 0o600)
    unit = "/lib/systemd/system/gatekeeper.service"
    assert subprocess.run(["systemd-analyze", "verify", unit],
                          capture_output=True, timeout=120).returncode == 0
    assert exposure(unit)[0] <= 2.0
    assert os.path.islink(
        "/etc/systemd/system/multi-user.target.wants/gatekeeper.service")
    run("/usr/bin/gatekeeper", "check-config", "--quiet", "--config",
        "/etc/gatekeeper/gatekeeper.ini")
    serve_installed(free_port())
    assert os.path.exists("/var/lib/gatekeeper/audit.db")
    key_before = open("/var/lib/gatekeeper/keys/v1.key").read()

    # upgrade: the admin's config and the keys stay
    with open("/etc/gatekeeper/gatekeeper.ini", "a") as f:
        f.write("; changed by the admin\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600",
                        "-o", "Dpkg::Options::=--force-confold", "install",
                        new], capture_output=True, text=True, timeout=900,
                       env=env)
    assert p.returncode == 0, p.stderr
    assert installed_version() == "0.0.2~test"
    assert open("/etc/gatekeeper/gatekeeper.ini").read().endswith(
        "; changed by the admin\n")
    assert open("/var/lib/gatekeeper/keys/v1.key").read() == key_before
    serve_installed(free_port())

    # remove: program gone, config and data kept
    apt("remove", "gatekeeper")
    assert not os.path.exists("/usr/bin/gatekeeper")
    assert not os.path.exists(unit)
    assert os.path.exists("/etc/gatekeeper/gatekeeper.ini")
    assert os.path.exists("/var/lib/gatekeeper/audit.db")
    # purge: config and state gone, the package forgotten
    apt("purge", "gatekeeper")
    assert not os.path.exists("/etc/gatekeeper")
    assert not os.path.exists("/var/lib/gatekeeper")
    assert not os.path.exists(
        "/etc/systemd/system/multi-user.target.wants/gatekeeper.service")
    p = subprocess.run(["dpkg-query", "-W", "gatekeeper"],
                       capture_output=True, text=True)
    assert p.returncode != 0 or p.stdout.strip() == "gatekeeper\t"
