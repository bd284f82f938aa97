"""A newcomer's first hour: what `make run` prints works as printed (parsed
from its output and run in a shell of its own), a second `make run` says the
port is taken first, and the CLI keeps its own rules (sign v1 refuses what
the server refuses, keygen --vendor writes where the README's next command
looks, check-config names file and line, --version, help texts)."""
import os
import re
import shutil
import socket
import ssl
import sqlite3
import subprocess
import time

import pytest
import requests

from conftest import BIN, Gatekeeper, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.abspath(BIN)
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


class MakeRun:
    """scripts/run.sh (what `make run` runs after building) on its own port
    and data folder, its printed instructions parsed."""

    def __init__(self, tmp, **env):
        os.makedirs(str(tmp), exist_ok=True)
        self.dir = os.path.join(str(tmp), "data")
        self.port = free_port()
        self.env = dict(os.environ, GK_RUN_DIR=self.dir,
                        GK_RUN_PORT=str(self.port), **env)
        self.out = os.path.join(str(tmp), "run.out")
        self.proc = subprocess.Popen(
            ["bash", os.path.join(ROOT, "scripts", "run.sh"), BIN],
            cwd=ROOT, env=self.env, stdout=open(self.out, "w"),
            stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(300):
            if "Stop with Ctrl-C." in self.text() and self.listening():
                break
            assert self.proc.poll() is None, self.text()
            time.sleep(0.05)
        assert self.listening(), self.text()
        # the lines a person copies: indented, after the banner
        self.lines = [ln[2:] for ln in self.text().splitlines()
                      if ln.startswith("  curl ") or
                      ln.startswith("  echo ")]

    def text(self):
        with open(self.out) as f:
            return f.read()

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def line(self, needle):
        found = [ln for ln in self.lines if needle in ln]
        assert len(found) == 1, (needle, self.lines)
        return found[0]

    def shell(self, line, tmp):
        # "run in another shell": a fresh bash in another folder
        return subprocess.run(["bash", "-c", line], cwd=str(tmp),
                              capture_output=True, text=True, timeout=60)

    def stop(self):
        # the gatekeeper's own stop: TERM, KILL after 20 s
        return Gatekeeper.stop(self)


@pytest.fixture
def make_run(tmp_path):
    runs = []

    def start(**env):
        r = MakeRun(tmp_path / ("run%d" % len(runs)), **env)
        runs.append(r)
        return r
    yield start
    for r in runs:
        r.stop()


def url_of(line):
    return re.findall(r"'(http://[^']+)'", line)[-1]


def test_printed_lines_work_as_printed(make_run, tmp_path):
    r = make_run()
    text = r.text()
    assert "S3 Gatekeeper on http://127.0.0.1:%d" % r.port in text
    # the signed v1 request: plain curl, as printed
    v1 = r.line("GET_Bucket")
    p = r.shell(v1, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == \
        '{"msg":"Success","contents":[],"error":false}'
    # upload, then download
    assert r.shell(r.line("echo \"hello"), tmp_path).returncode == 0
    p = r.shell(r.line("PUT_Object"), tmp_path)
    assert p.returncode == 0, p.stderr
    assert '"key":"uploads/demo/hello.txt"' in p.stdout, p.stdout
    p = r.shell(r.line("GET_Object"), tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello, gatekeeper\n"
    # the audit line, from another folder
    audit = [ln for ln in text.splitlines()
             if ln.startswith("Search the audit:")][0]
    p = r.shell(audit.split(":", 1)[1].strip(), tmp_path)
    assert p.returncode == 0, p.stderr
    assert "GET_Bucket" in p.stdout and "PUT_Object" in p.stdout


def test_first_run_lists_the_demo_roots(make_run, tmp_path):
    """The config make run writes names the demo's v1 roots: no warning
    about an open root boundary on a first start, and a v1 request for
    another root is refused."""
    r = make_run()
    assert "v1_roots is empty" not in r.text()
    v1 = url_of(r.line("GET_Bucket"))
    # the same signature over root "uploadsx" would need its own HMAC;
    # any valid-looking request for an unlisted root is refused first
    other = v1.replace("/uploads?", "/other?", 1)
    p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-H",
                        "Origin: http://127.0.0.1:%d" % r.port, other],
                       capture_output=True, text=True, timeout=30)
    body, code = p.stdout.rsplit("\n", 1)
    assert code == "403", p.stdout
    assert "unknown root" in body, body


def test_v1_url_without_origin_says_so(make_run):
    r = make_run()
    url = url_of(r.line("GET_Bucket"))
    # a browser opening the URL directly sends no Origin
    b = requests.get(url, headers={"Sec-Fetch-Site": "none"}, timeout=30)
    assert b.status_code == 403
    assert b.json()["msg"] == (
        "Forbidden: no Origin header (the URL was opened directly; it must "
        "be requested by a page of an allowed origin)")
    c = subprocess.run(["curl", "-s", url], capture_output=True, text=True,
                       timeout=30)
    assert '"Forbidden: no Origin header (send the Origin of an allowed ' \
        'site)"' in c.stdout
    # an origin that is there but not allowed keeps the v1 message
    e = requests.get(url, headers={"Origin": "https://evil.example"},
                     timeout=30)
    assert (e.status_code, e.json()["msg"]) == (403, "Forbidden: bad origin")


def test_upload_line_reports_the_servers_error(make_run, tmp_path):
    # URLs signed to have expired two minutes ago
    r = make_run(GK_RUN_EXPIRES=str(int(time.time()) - 120))
    assert r.shell(r.line("echo \"hello"), tmp_path).returncode == 0
    p = r.shell(r.line("PUT_Object"), tmp_path)
    assert p.returncode != 0
    assert p.stderr.strip() == "upload refused: Expired"
    assert "Traceback" not in p.stderr + p.stdout
    # the other lines fail too, showing the gatekeeper's answer
    for op in ("GET_Bucket", "GET_Object"):
        p = r.shell(r.line(op), tmp_path)
        assert p.returncode == 22, (op, p.returncode)
        assert '"msg":"Expired"' in p.stdout
    # and with the gatekeeper gone: a clear line, no traceback
    r.stop()
    p = r.shell(r.line("PUT_Object"), tmp_path)
    assert p.returncode != 0
    assert "upload refused: no answer from http://127.0.0.1:%d" % r.port \
        in p.stderr
    assert "Traceback" not in p.stderr


def test_second_make_run_says_port_taken_first(make_run):
    r = make_run()
    p = subprocess.run(["make", "--no-print-directory", "run"], cwd=ROOT,
                       env=dict(r.env), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0
    first = (p.stdout + p.stderr).splitlines()[0]
    assert first == ("make run: 127.0.0.1:%d is already in use, so the "
                     "gatekeeper cannot start there." % r.port)
    assert p.stdout == ""          # nothing printed but the refusal
    assert r.proc.poll() is None   # the first one keeps running


def test_run_defaults_are_127_0_0_1_8080():
    text = open(os.path.join(ROOT, "scripts", "run.sh")).read()
    assert 'listen=$(ini_get listen 127.0.0.1)' in text
    assert 'port=$(ini_get port "${GK_RUN_PORT:-8080}")' in text
    assert 'dir=${GK_RUN_DIR:-data}' in text


# -- the CLI keeps its own rules ---------------------------------------------

@pytest.mark.parametrize("root,path,op,message", [
    ("app", "x.txt", "GET_Object", "Bad Request: invalid 'path' param"),
    ("app", "/docs", "GET_Bucket", "Bad Request: 'path' param must begin "
     "and end with '/' and be at least 3 characters"),
    ("a b", "/x.txt", "GET_Object", "Bad Request: invalid root"),
    ("app", "/a/../b", "GET_Object", "Bad Request: invalid 'path' param"),
])
def test_sign_v1_refuses_what_the_server_refuses(gk_factory, root, path, op,
                                                 message):
    g = gk_factory().start()
    p = g.run("sign", "v1", "--root", root, "--path", path, "--op", op,
              check=False)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == (
        "gatekeeper sign: the gatekeeper would answer 400 \"%s\" (root "
        "'%s', path '%s')" % (message, root, path))
    # the server, asked the same, answers the same
    r = requests.get("%s/%s" % (g.base, requests.utils.quote(root)),
                     params={"path": path, "operation": op,
                             "expires": str(int(time.time()) + 60),
                             "hmac": "0" * 64},
                     headers={"Origin": "https://app.example.com"},
                     timeout=30)
    assert (r.status_code, r.json()["msg"]) == (400, message)
    # and a good one is signed and accepted
    p = g.run("sign", "v1", "--root", "app", "--path", "/docs/", "--op",
              "GET_Bucket")
    assert requests.get(p.stdout.strip(), timeout=30, headers={
        "Origin": "https://app.example.com"}).status_code == 200


def test_keygen_vendor_then_readmes_sign_command(gk_factory, tmp_path):
    # README: the vendor runs keygen --vendor, then sign v2 --key-file
    m = re.search(r"`(gatekeeper sign v2 --kid (\S+) --key-file\s+(\S+)"
                  r"[^`]*)`", README)
    assert m, "README's sign v2 example is gone"
    command, kid, key_file = re.sub(r"\s+", " ", m.group(1)), m.group(2), \
        m.group(3)
    g = gk_factory(gate__id="gk-first-hour")
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    p = subprocess.run([BIN, "keygen", "--vendor", "ed25519", "--kid", kid,
                        "--config", g.config], cwd=str(vendor),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "keep it off the gatekeeper" in p.stdout
    # in the vendor's folder, named as the README's next command expects
    assert (vendor / key_file).is_file()
    assert oct((vendor / key_file).stat().st_mode & 0o777) == "0o600"
    keys = os.path.join(g.data, "keys")
    assert not [f for f in os.listdir(keys) if kid in f]
    with open(g.config, "a") as f:
        f.write(p.stdout[p.stdout.index("[vendor_key %s]" % kid):])
    g.start()
    args = command.split()[1:] + ["--config", g.config]
    s = subprocess.run([BIN] + args, cwd=str(vendor), capture_output=True,
                       text=True, timeout=30)
    assert s.returncode == 0, s.stderr
    token, url = s.stdout.split()
    assert token.count(".") == 2 and url.startswith(g.base + "/v2/")


@pytest.mark.parametrize("body,line,needle", [
    ("[server]\nport = 8080\n[store]\ntype = tape\n", 4,
     "[store] type 'tape' is not supported"),
    ("[gate]\n\nid =\n", 3, "[gate] id must be 1 to 128 characters"),
    ("[audit]\nbackend = postgres\n", 2, "backend postgres needs dsn"),
    ("[s3]\nmode = sideways\n", 2, "[s3] mode must be redirect or proxy"),
    ("[acl]\n# allow\nip_allow = 10.0.0.1/8\n", 3,
     "ip_allow: bad CIDR '10.0.0.1/8'"),
    ("[acl]\norigins = a.com\n", 2, "origins: bad origin 'a.com'"),
    ("[server]\ntls_cert = /nonexistent.pem\ntls_key = /nonexistent.key\n", 2,
     "tls_cert /nonexistent.pem: cannot read"),
    ("[server]\ntls_key = /nonexistent.key\n", 2,
     "[server] tls_cert and tls_key go together"),
    ("[vendor_key k1]\npublic_key = AAAA\n", 1,
     "[vendor_key k1] needs a type"),
    ("[vendor_key:k2]\ntype = ed25519\npublic_key = AAAA\n", 1,
     "vendor key 'k2': not a valid Ed25519 public key"),
])
def test_check_config_names_file_and_line(tmp_path, body, line, needle):
    path = tmp_path / "bad.ini"
    path.write_text("[gate]\ndata_dir = %s\n" % (tmp_path / "data"))
    subprocess.run([BIN, "keygen", "--config", str(path)],
                   capture_output=True, check=True)
    path.write_text("[gate]\ndata_dir = %s\n" % (tmp_path / "data") + body)
    offset = 2
    p = subprocess.run([BIN, "check-config", "--config", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    err = p.stderr.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("gatekeeper check-config: %s:%d: " % (
        path, line + offset)), err[0]
    assert needle in err[0]


def test_version_names_the_libraries_in_use():
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0
    got = dict(ln.split(" ", 1) for ln in p.stdout.splitlines())
    assert list(got) == ["gatekeeper", "libmicrohttpd", "OpenSSL", "SQLite",
                         "libcurl", "libpq", "expat", "libmaxminddb",
                         "jansson", "GnuTLS", "libGeoIP"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", got["gatekeeper"])
    # the same libraries other programs on this machine load
    assert got["SQLite"] == sqlite3.sqlite_version
    assert ssl.OPENSSL_VERSION.split()[1] == got["OpenSSL"]
    curl = subprocess.run(["curl", "--version"], capture_output=True,
                          text=True).stdout.split()
    assert "libcurl/" + got["libcurl"] in curl
    for name in ("libmicrohttpd", "libpq", "expat", "libmaxminddb",
                 "jansson", "GnuTLS", "libGeoIP"):
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", got[name]), (name, got)


def test_help_texts_name_readme_sections_that_exist():
    headings = set(re.findall(r"^#+ (.+)$", README, re.M))
    texts = []
    for args in (["--help"], ["serve", "--help"], ["sign", "--help"],
                 ["sign", "v2", "--help"], ["keygen", "--help"],
                 ["check-config", "--help"], ["audit", "--help"],
                 ["audit", "search", "--help"], ["audit", "prune", "--help"],
                 ["audit", "export", "--help"], ["audit", "verify", "--help"],
                 ["provision", "--help"]):
        p = subprocess.run([BIN] + args, capture_output=True, text=True,
                           timeout=30)
        texts.append(p.stdout + p.stderr)
    named = re.findall(r"README[^'\"\n]{0,12}['\"]([^'\"]+)['\"]",
                       re.sub(r"\s*\n\s*", " ", "\n".join(texts)))
    assert named, "no help text names a README section"
    for section in named:
        assert section in headings, section
    # and the README's own pointers to tests and scripts exist
    for path in re.findall(r"`((?:tests|scripts)/[\w./-]+)`", README):
        assert os.path.exists(os.path.join(ROOT, path)), path
    assert shutil.which("make")
