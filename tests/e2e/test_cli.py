"""The command line: help, check-config, keygen, sign, audit search/prune."""
import csv
import io
import json
import os
import sqlite3
import stat
import subprocess
import time

import pytest
import requests

from conftest import BIN, ORIGIN


def run(*args, cwd=None, env=None):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env)


def test_help():
    p = run("--help")
    assert p.returncode == 0 and "serve" in p.stdout and "audit" in p.stdout
    for cmd in ("serve", "keygen", "check-config", "audit", "sign"):
        p = run(cmd, "--help")
        assert p.returncode == 0, cmd
        assert "usage: gatekeeper " + cmd in p.stdout, cmd
    p = run("frobnicate")
    assert p.returncode == 2 and "unknown command" in p.stderr
    p = run()
    assert p.returncode == 2


def test_keygen_files_and_modes(gk_factory):
    g = gk_factory()
    keys = os.path.join(g.data, "keys")
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    names = sorted(os.listdir(keys))
    assert names == ["admin.token", "audit_ed25519.key", "audit_ed25519.pub",
                     "grant.key", "internal.key", "master.key", "v1.key"]
    before = {n: open(os.path.join(keys, n)).read() for n in names}
    for n in names:
        mode = 0o644 if n.endswith(".pub") else 0o600
        assert stat.S_IMODE(os.stat(os.path.join(keys, n)).st_mode) == mode
        assert len(before[n].strip()) == 64
    # the public key file belongs to the signing key
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives import serialization
    priv = ed25519.Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex(before["audit_ed25519.key"].strip()))
    assert priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex() == \
        before["audit_ed25519.pub"].strip()
    # a second run keeps every key
    p = g.run("keygen")
    assert p.stdout == ""
    assert before == {n: open(os.path.join(keys, n)).read() for n in names}


def test_check_config_prints_masked(gk_factory):
    g = gk_factory()
    p = g.run("check-config")
    assert "[server]" in p.stdout and "max_token_lifetime = 900" in p.stdout
    for name in ("v1.key", "internal.key", "master.key", "admin.token"):
        secret = open(os.path.join(g.data, "keys", name)).read().strip()
        assert secret not in p.stdout
        assert secret not in p.stderr
    # a webhook URL's password (libcurl sends user:password as Basic
    # auth) is a secret too: masked like the dsn's
    g = gk_factory(audit_out__webhook="https://hook:hunter2pw@127.0.0.1:9/in")
    p = g.run("check-config")
    assert "webhook = https://hook:****@127.0.0.1:9/in" in p.stdout
    assert "hunter2pw" not in p.stdout + p.stderr


@pytest.mark.parametrize("body,line,needle", [
    ("[server]\nport = 99999\n", 2, "port must be a whole number"),
    ("[server]\nbogus = 1\n", 2, "unknown setting [server] bogus"),
    ("[server]\nport = 1\nport = 2\n", 3, "set twice"),
    ("[gate]\nvalidate_keys = maybe\n", 2, "must be true or false"),
    ("[server]\nthis is not ini\n", 2, "syntax error"),
    # what serve cannot bind or use is refused by check-config too
    ("[server]\nlisten = 999.1.1.1\n", 2, "listen '999.1.1.1' is not an"),
    ("[server]\nlisten = localhost\n", 2, "is not an IPv4 or IPv6 address"),
    ("[server]\npublic_url = ftp://files.example\n", 2,
     "public_url must be an http:// or https:// URL"),
    # the first bad line is named with its own problem (inih goes on, and
    # a later line's message used to stand beside the first one's number)
    ("[server]\nbogus = 1\nport = 99999\n", 2,
     "unknown setting [server] bogus"),
    ("[server]\nthis is not ini\nport = 99999\n", 2, "syntax error"),
    ("[server]\nport = 99999\nthis is not ini\n", 2, "port must be"),
    # '#' after a value was kept as part of it
    ("[server]\n\nport = 8080   # the usual\n", 3,
     "[server] port: a comment after a value starts with ';'"),
])
def test_check_config_errors(tmp_path, body, line, needle):
    path = tmp_path / "bad.ini"
    path.write_text(body)
    p = run("check-config", "--config", str(path))
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("gatekeeper check-config: %s:%d: " % (path, line))
    assert needle in lines[0]


def test_check_config_bad_acl_and_keys(tmp_path):
    path = tmp_path / "g.ini"
    path.write_text("[gate]\ndata_dir = %s\n[acl]\nip_allow = 10.0.0.1/8\n" %
                    (tmp_path / "data"))
    p = run("check-config", "--config", str(path))
    assert p.returncode == 1 and "run 'gatekeeper keygen'" in p.stderr
    assert run("keygen", "--config", str(path)).returncode == 0
    p = run("check-config", "--config", str(path))
    assert p.returncode == 1
    assert "ip_allow" in p.stderr and "10.0.0.1/8" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    # a key file others can read is refused
    path.write_text("[gate]\ndata_dir = %s\n" % (tmp_path / "data"))
    key = tmp_path / "data" / "keys" / "master.key"
    os.chmod(key, 0o644)
    p = run("check-config", "--config", str(path))
    assert p.returncode == 1 and "chmod 600" in p.stderr
    os.chmod(key, 0o600)
    assert run("check-config", "--config", str(path), "--quiet").returncode == 0


def test_sign_v1_url_works(gk):
    p = gk.run("sign", "v1", "--root", "app", "--path", "/x/y z+.txt",
               "--op", "GET_Object", "--ttl", "60")
    url = p.stdout.strip()
    assert url.startswith(gk.base + "/app?path=%2F") or \
        url.startswith(gk.base + "/app?path=/")
    r = requests.get(url, headers={"Origin": ORIGIN}, allow_redirects=False,
                     timeout=10)
    assert r.status_code == 302, r.text
    assert "/_data/app/x/y%20z%2B.txt?" in r.headers["Location"]
    p = gk.run("sign", "v1", "--root", "app", "--path", "/x/",
               "--op", "NOPE", check=False)
    assert p.returncode == 2 and p.stderr.startswith("gatekeeper sign: ")


def test_serve_bad_config_one_line(tmp_path):
    path = tmp_path / "g.ini"
    path.write_text("[store]\ntype = tape\n")
    p = run("serve", "--config", str(path))
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1
    assert "type 'tape' is not supported" in p.stderr


def test_serve_port_in_use(gk_factory):
    g = gk_factory().start()
    g2 = gk_factory(server__port=str(g.port))
    p = g2.run("serve", check=False)
    assert p.returncode == 1 and "cannot listen" in p.stderr


# -- audit search ------------------------------------------------------------

def make_traffic(g):
    ok = g.get("app", "/a/b.txt", "GET_Object")
    bad = g.get("app", "/a/b.txt", "GET_Object", key=b"wrong-key-wrong-key")
    lst = g.get("app", "/a/", "GET_Bucket")
    return ok, bad, lst


def search(g, *args):
    p = g.run("audit", "search", *args)
    return p.stdout


def test_audit_search_filters_and_formats(gk):
    ok, bad, lst = make_traffic(gk)
    rows = [json.loads(l) for l in search(gk, "--format", "json").splitlines()]
    assert len(rows) == 3
    # newest first
    assert [r["request_id"] for r in rows] == [
        lst.headers["X-Request-Id"], bad.headers["X-Request-Id"],
        ok.headers["X-Request-Id"]]
    deny = [json.loads(l) for l in
            search(gk, "--format", "json", "--decision", "deny").splitlines()]
    assert [r["request_id"] for r in deny] == [bad.headers["X-Request-Id"]]
    assert deny[0]["status"] == 401
    st = search(gk, "--format", "json", "--status", "302").splitlines()
    assert len(st) == 1 and json.loads(st[0])["request_id"] == ok.headers["X-Request-Id"]
    op = search(gk, "--format", "json", "--op", "GET_Bucket").splitlines()
    assert len(op) == 1
    assert len(search(gk, "--format", "json", "--ip", "127.0.0.0/8").splitlines()) == 3
    assert search(gk, "--format", "json", "--ip", "10.0.0.0/8").strip() == ""
    assert len(search(gk, "--format", "json", "--path-prefix", "/a/b").splitlines()) == 2
    assert len(search(gk, "--format", "json", "--limit", "1").splitlines()) == 1
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert search(gk, "--format", "json", "--from", future).strip() == ""
    assert len(search(gk, "--format", "json", "--to", future).splitlines()) == 3
    # csv: a header and one line per row
    c = list(csv.DictReader(io.StringIO(search(gk, "--format", "csv"))))
    assert len(c) == 3 and c[0]["request_id"] == lst.headers["X-Request-Id"]
    # table: human readable, one line per row plus a header
    t = search(gk, "--format", "table").splitlines()
    assert t[0].split() == ["TIME", "CLIENT", "DECISION", "STATUS", "OP",
                            "BYTES", "ROOT", "PATH", "MESSAGE"]
    assert len(t) == 4
    want = [("allow", str(lst.status_code), "GET_Bucket"),
            ("deny", "401", "GET_Object"), ("allow", "302", "GET_Object")]
    for line, (decision, status, op) in zip(t[1:], want):
        cols = line.split()
        assert cols[1:5] == ["127.0.0.1", decision, status, op], line
    # bad filters: a clear one-line error
    p = gk.run("audit", "search", "--ip", "not-an-ip", check=False)
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1
    p = gk.run("audit", "search", "--format", "xml", check=False)
    assert p.returncode != 0


def test_audit_prune(gk_factory):
    g = gk_factory(audit__checkpoint_records="2").start()
    make_traffic(g)  # 3 records: a checkpoint after the batch past seq 2
    # nothing was signed 180 days ago: nothing goes
    p = g.run("audit", "prune", "--days", "180")
    assert p.stdout.startswith("pruned 0 records")
    assert len(g.audit_rows()) == 3
    # whole spans up to the last checkpoint signed before now go
    cps = g.audit_checkpoints()
    assert cps and cps[-1]["seq"] in (2, 3)
    p = g.run("audit", "prune", "--before", str(int(time.time()) + 1))
    # (issue 17) the prune itself is a record in the chain, signed over
    left = [r for r in g.audit_rows() if r["operation"] != "prune"]
    prunes = [r for r in g.audit_rows() if r["operation"] == "prune"]
    assert p.stdout.startswith("pruned %d record" % (3 - len(left)))
    assert [r["seq"] for r in left] == list(range(cps[-1]["seq"] + 1, 4))
    assert len(prunes) == 1 and prunes[0]["sub"].startswith("cli:")
    assert prunes[0]["path"].startswith("prune:%d:" % cps[-1]["seq"])
    assert g.audit_checkpoints()[-1]["seq"] == prunes[0]["seq"]
    # the pruned log still verifies from its anchor
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout
    p = g.run("audit", "prune", "--days", "1", "--before", "2026-01-01",
              check=False)
    assert p.returncode == 2 and "not both" in p.stderr


# -- wrong input on the command line: one line, non-zero, nothing done --------

def one_line_error(p, rc, prefix):
    """The failure a user sees: exit rc and exactly one stderr line."""
    lines = p.stderr.strip().splitlines()
    assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.mark.parametrize("cmd", ["check-config", "serve", "keygen"])
def test_config_that_is_a_directory_is_refused(tmp_path, cmd):
    # a directory opened as a file reads as empty: it used to mean the
    # embedded defaults, so 'serve' served ./data and keygen made keys there
    conf = tmp_path / "conf.d"
    conf.mkdir()
    p = run(cmd, "--config", str(conf), cwd=str(tmp_path))
    line = one_line_error(p, 1, "gatekeeper %s: " % cmd)
    assert "%s: cannot open: Is a directory" % conf in line
    assert not (tmp_path / "data").exists()


def test_a_day_the_month_lacks_is_refused(gk_factory, tmp_path):
    # 2026-02-30 used to be read as 2026-03-02: a typo widened a search
    # and moved a vendor key's end by days
    g = gk_factory()
    for args in (["audit", "search", "--from", "2026-02-30"],
                 ["audit", "export", "--to", "2026-04-31T12:00:00Z"],
                 ["audit", "prune", "--before", "2026-02-29"]):
        p = g.run(*args, check=False)
        one_line_error(p, 2, "gatekeeper audit: bad --")
    conf = tmp_path / "vk.ini"
    conf.write_text(
        "[gate]\ndata_dir = %s\n[vendor_key old]\ntype = ed25519\n"
        "public_key = MCowBQYDK2VwAyEA/Rh4Z8vcxAg7ykZBYqhKEHBwQOnew2bhcfHUjowVZbU=\n"
        "not_after = 2027-02-30\n" % g.data)
    p = run("check-config", "--config", str(conf))
    assert "%s:6: " % conf in one_line_error(p, 1, "gatekeeper check-config: ")
    conf.write_text(conf.read_text().replace("2027-02-30", "2027-02-28"))
    p = run("check-config", "--config", str(conf))
    assert p.returncode == 0, p.stderr
    assert "not_after = 2027-02-28T00:00:00Z" in p.stdout


def test_verify_reads_the_checkpoint_file_it_is_given(gk_factory, tmp_path):
    # a --checkpoints path that is not there, or a directory, was skipped
    # in silence and the log reported verified, the file never checked
    g = gk_factory().start()
    make_traffic(g)
    g.stop()
    missing = tmp_path / "no-such-checkpoints.log"
    p = g.run("audit", "verify", "--checkpoints", str(missing), check=False)
    line = one_line_error(p, 1, "gatekeeper audit: ")
    assert "%s: No such file or directory" % missing in line
    assert p.stdout == ""
    p = g.run("audit", "verify", "--checkpoints", str(tmp_path), check=False)
    line = one_line_error(p, 1, "gatekeeper audit: ")
    assert "%s: Is a directory" % tmp_path in line
    # the config's own file, and no file at all on request, still verify
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0 and "OK, the chain verifies" in p.stdout
    p = g.run("audit", "verify", "--no-checkpoints-file", check=False)
    assert p.returncode == 0, p.stdout


# every subcommand (and verb) that takes options; each printed getopt's
# line and then its whole usage text (up to 30 lines) on a typo
OPTION_COMMANDS = [
    ["serve"], ["keygen"], ["check-config"], ["provision"], ["sign", "v1"],
    ["sign", "v2"], ["grant", "create"], ["grant", "list"],
    ["grant", "show"], ["audit", "search"], ["audit", "export"],
    ["audit", "verify"], ["audit", "prune"], ["share", "keygen"],
    ["share", "fingerprint"], ["share", "send"], ["share", "receive"],
    ["share", "encrypt"], ["share", "decrypt"], ["share", "config", "init"],
    ["share", "config", "export"], ["share", "config", "import"],
]


@pytest.mark.parametrize("cmd", OPTION_COMMANDS, ids=" ".join)
def test_unknown_option_is_one_line(tmp_path, cmd):
    prefix = "gatekeeper %s" % cmd[0]
    # a working ./gatekeeper.ini, so no command stops at its config first
    (tmp_path / "gatekeeper.ini").write_text(
        "[gate]\ndata_dir = %s\n" % (tmp_path / "data"))
    assert run("keygen", cwd=str(tmp_path)).returncode == 0
    p = run(*cmd, "--no-such-option", cwd=str(tmp_path))
    line = one_line_error(p, 2, prefix)
    assert "unknown option --no-such-option (see --help)" in line
    p = run(*cmd, "-Z", cwd=str(tmp_path))
    assert "unknown option -Z" in one_line_error(p, 2, prefix)
    # --help still prints the whole text, on stdout
    p = run(*cmd, "--help", cwd=str(tmp_path))
    assert p.returncode == 0 and p.stdout.startswith("usage: gatekeeper ")


@pytest.mark.parametrize("cmd,needle", [
    (["serve", "--config"], "option --config needs a value"),
    (["keygen", "--config"], "option --config needs a value"),
    (["check-config", "--config"], "option --config needs a value"),
    (["grant", "list", "--config"], "option --config needs a value"),
    (["sign", "v1", "--root", "app", "--path", "/a", "--op", "GET_Object",
      "stray"], "unexpected argument 'stray'"),
    (["sign", "v2", "--kid", "k", "--key-file", "k.pem", "--op", "get",
      "--key", "a", "stray"], "unexpected argument 'stray'"),
    (["grant", "list", "stray"], "unexpected argument 'stray'"),
    (["grant", "frobnicate", "g-1"], "unknown subcommand 'frobnicate'"),
    (["share", "keygen", "stray"], "unexpected argument 'stray'"),
    (["share", "encrypt"], "give a recipient"),
    (["share", "decrypt"], "give an identity"),
    (["share", "send"], "give the DIR to send"),
    (["share", "send", "a", "b"], "one DIR at a time"),
    (["share", "receive"], "needs one SHARE, -i IDENTITY and -o DIR"),
])
def test_wrong_arguments_are_one_line(tmp_path, cmd, needle):
    p = run(*cmd, cwd=str(tmp_path))
    assert needle in one_line_error(p, 2, "gatekeeper %s" % cmd[0])


def test_unreadable_files_say_why(tmp_path):
    # every failed read said "I/O error": a key that the service's user
    # cannot read (keygen run as root) read like a broken disk
    import shutil
    import tempfile
    conf = tmp_path / "g.ini"
    conf.write_text("[gate]\ndata_dir = %s\n[acl]\nip_allow_files = %s\n" %
                    (tmp_path / "data", tmp_path))
    assert run("keygen", "--config", str(conf)).returncode == 0
    p = run("check-config", "--config", str(conf))
    line = one_line_error(p, 1, "gatekeeper check-config: ")
    assert "%s: cannot read list file: Is a directory" % tmp_path in line
    p = run("sign", "v2", "--kid", "k", "--key-file", str(tmp_path),
            "--op", "get", "--key", "a")
    assert "cannot read: Is a directory" in one_line_error(
        p, 1, "gatekeeper sign: ")
    # a key made by root for a gatekeeper that runs as another user
    top = tempfile.mkdtemp(dir="/tmp", prefix="gk-cli-")
    try:
        os.chmod(top, 0o755)
        conf = os.path.join(top, "g.ini")
        data = os.path.join(top, "data")
        with open(conf, "w") as f:
            f.write("[gate]\ndata_dir = %s\n[geo]\ndatabase = off\n" % data)
        os.chmod(conf, 0o644)
        assert run("keygen", "--config", conf).returncode == 0
        os.chmod(data, 0o755)
        os.chmod(os.path.join(data, "keys"), 0o755)
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", BIN, "check-config",
                            "--config", conf], capture_output=True,
                           text=True, timeout=60)
        line = one_line_error(p, 1, "gatekeeper check-config: ")
        assert "cannot read key file: Permission denied (the user " \
            "running the gatekeeper must own it" in line, line
    finally:
        shutil.rmtree(top)


def readme_block(marker):
    """The sh block after an HTML comment marker in README.md, unindented."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..",
                               "README.md")).read()
    rest = readme[readme.index(marker):]
    start = rest.index("```sh\n") + len("```sh\n")
    lines = rest[start:rest.index("```", start)].splitlines()
    return "\n".join(line[2:] if line.startswith("  ") else line
                     for line in lines) + "\n"


def test_readme_audit_db_recovery(gk_factory, tmp_path):
    # README's procedure for a damaged audit.db, run as written (its
    # .recover used to fail on Debian's sqlite3 and leave an empty file)
    g = gk_factory().start()
    s = requests.Session()
    url = g.url("app", g.sign("app", "/a/b.txt", "GET_Object"))
    ids = [s.get(url, headers={"Origin": ORIGIN}, allow_redirects=False,
                 timeout=30).headers["X-Request-Id"] for _ in range(400)]
    g.stop()
    # break the header of the table page holding the 200th record
    raw = open(g.audit_db, "rb").read()
    page = raw.index(ids[200].encode()) // 4096
    with open(g.audit_db, "r+b") as f:
        f.seek(page * 4096)
        f.write(b"\x07" * 12)
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 1 and "malformed" in p.stderr
    # the service's paths and user become the test's
    script = readme_block("<!-- audit.db recovery:")
    script = script.replace("/var/lib/gatekeeper", g.data).replace(
        "/etc/gatekeeper/gatekeeper.ini", g.config)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(BIN, str(bindir / "gatekeeper"))
    prelude = ("systemctl() { echo \"systemctl $*\"; }\n"
               "runuser() { shift 3; \"$@\"; }\n")
    p = subprocess.run(["bash", "-c", prelude + script], capture_output=True,
                       text=True, timeout=120,
                       env=dict(os.environ, PATH="%s:%s" % (
                           bindir, os.environ["PATH"])))
    assert "systemctl stop gatekeeper" in p.stdout, p.stdout + p.stderr
    assert "systemctl start gatekeeper" in p.stdout
    # verify names what was lost, and only that
    problems = [l for l in p.stdout.splitlines() if l.startswith("PROBLEM")]
    assert len(problems) == 1, p.stdout + p.stderr
    assert "are missing: deleted" in problems[0]
    assert "1 problem found" in p.stdout
    assert os.path.exists(os.path.join(g.data, "audit.db.damaged"))
    kept = sqlite3.connect(g.audit_db).execute(
        "SELECT count(*) FROM audit").fetchone()[0]
    assert 300 < kept < 400
    # and the gatekeeper serves and records again on the recovered file
    g.start()
    r = g.get("app", "/a/b.txt", "GET_Object")
    assert r.status_code == 302 and r.headers["X-Request-Id"]
    g.stop()
    rows = sqlite3.connect(g.audit_db).execute(
        "SELECT request_id FROM audit ORDER BY id DESC LIMIT 1").fetchall()
    assert rows[0][0] == r.headers["X-Request-Id"]


def test_readme_backup_and_restore(gk_factory, tmp_path):
    # README, "Recovering": .backup while serving, restore, verify says
    # the records after the backup were cut
    g = gk_factory(audit__checkpoint_records="10").start()
    s = requests.Session()

    def hit(n):
        url = g.url("app", g.sign("app", "/a/b.txt", "GET_Object"))
        for _ in range(n):
            assert s.get(url, headers={"Origin": ORIGIN},
                         allow_redirects=False,
                         timeout=30).status_code == 302
    hit(50)
    backup = str(tmp_path / "audit-backup.db")
    p = subprocess.run(["sqlite3", g.audit_db, ".backup %s" % backup],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    hit(50)
    g.stop()
    os.rename(g.audit_db, g.audit_db + ".evidence")
    for x in ("-wal", "-shm"):
        if os.path.exists(g.audit_db + x):
            os.unlink(g.audit_db + x)
    with open(backup, "rb") as f, open(g.audit_db, "wb") as out:
        out.write(f.read())
    g.start()
    hit(1)
    g.stop()
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 1
    # 50 records in the copy (each answered only once committed), one more
    import re
    m = re.search(r"ends at seq (\d+) but a signed checkpoint covers seq "
                  r"100: records (\d+)\.\.100 were deleted \(tail cut\)",
                  p.stdout)
    assert m and m.group(1) == "51" and m.group(2) == "52", p.stdout


def test_audit_export_help_names_every_search_filter():
    # export takes every filter of search; its help left --grant out
    import re
    search = run("audit", "search", "--help").stdout
    export = run("audit", "export", "--help").stdout
    flags = set(re.findall(r"--[a-z][a-z-]+", search))
    assert "--grant" in flags and "--request-id" in flags
    for flag in sorted(flags):
        assert flag in export, flag


def test_second_serve_on_the_same_audit_database_is_refused(gk_factory):
    # a second 'serve' with the same config (another --port, or the same
    # one, taken) opened the running server's audit log: it signed a
    # checkpoint into that chain (the first then failed to store its
    # own: "cannot store checkpoint N (constraint failed)") and emptied
    # its journal at its stop
    g = gk_factory(audit__checkpoint_seconds="1").start()
    make_traffic(g)
    cps = len(g.audit_checkpoints())
    for port in ("0", str(g.port)):
        p = subprocess.Popen([BIN, "serve", "--config", g.config, "--port",
                              port], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.terminate()
            out, err = p.communicate()
            raise AssertionError("a second server ran: %s" % out)
        assert p.returncode == 1, (out, err)
        assert "held by another gatekeeper serving this audit database" \
            in err, err
        assert err.strip().splitlines()[-1].startswith(
            "gatekeeper serve: cannot open the audit log"), err
    assert len(g.audit_checkpoints()) == cps
    assert g.get("app", "/a/b.txt", "GET_Object").status_code == 302
    time.sleep(2.5)  # the first server's own timed checkpoint
    g.stop()
    log = open(g.log).read()
    assert "cannot store checkpoint" not in log, log
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout


def test_readme_ini_snippets_mean_what_they_say(tmp_path):
    # every ```ini block of README.md parses: known settings, and no
    # inline '#' comment (the [audit_out] one had two, kept in the values)
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..",
                               "README.md")).read()
    blocks = readme.split("```ini\n")[1:]
    assert len(blocks) >= 7
    for i, block in enumerate(blocks):
        body = block[:block.index("```")]
        conf = tmp_path / ("b%d.ini" % i)
        conf.write_text("[gate]\ndata_dir = %s\n%s" % (tmp_path / "d", body)
                        if "[gate]" not in body else body)
        p = run("check-config", "--config", str(conf))
        out = p.stdout + p.stderr
        assert "a comment after a value" not in out, (body, out)
        assert "unknown setting" not in out and "syntax error" not in out, \
            (body, out)


def test_check_config_reads_the_s3_secret_file_as_serve_does(tmp_path):
    # a group-readable [s3] secret_key_file passed check-config (the
    # unit's ExecStartPre) and then stopped serve
    secret = tmp_path / "s3.secret"
    secret.write_text("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
    os.chmod(secret, 0o644)
    conf = tmp_path / "g.ini"
    conf.write_text("[gate]\ndata_dir = %s\n[geo]\ndatabase = off\n"
                    "[store]\ntype = s3\n[s3]\nbucket = acme-docs\n"
                    "endpoint = http://127.0.0.1:9\naccess_key_id = AKIAX\n"
                    "secret_key_file = %s\n" % (tmp_path / "d", secret))
    assert run("keygen", "--config", str(conf)).returncode == 0
    p = run("check-config", "--config", str(conf))
    line = one_line_error(p, 1, "gatekeeper check-config: ")
    assert "%s: key file is readable by group or others" % secret in line
    assert "wJalr" not in p.stdout + p.stderr
    os.chmod(secret, 0o600)
    p = run("check-config", "--config", str(conf), "--quiet")
    assert p.returncode == 0, p.stderr
    assert "wJalr" not in p.stdout + p.stderr


def test_provision_dry_run_names_the_endpoint(tmp_path):
    # without [s3] endpoint it said "at  (dry run...)"
    conf = tmp_path / "g.ini"
    conf.write_text("[gate]\ndata_dir = %s\n[store]\ntype = s3\n"
                    "[s3]\nbucket = acme-docs\nregion = eu-west-1\n" %
                    (tmp_path / "d"))
    p = run("provision", "--config", str(conf), "--dry-run")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == (
        "provisioning bucket acme-docs in eu-west-1 at "
        "https://s3.eu-west-1.amazonaws.com (dry run: nothing is sent)")


@pytest.mark.parametrize("args,answer", [
    (["--op", "get", "--key", "a/../b.txt"], "403 \"Forbidden: the token's "
     "'key' or 'prefix' is not a valid key\""),
    (["--op", "list", "--prefix", "a//"], "403 \"Forbidden: the token's"),
    (["--op", "get", "--key", "a.txt", "--cip", "10.0.0.0/99"],
     "401 \"Unauthorized: invalid 'cip' claim\" (--cip 10.0.0.0/99)"),
])
def test_sign_v2_refuses_what_the_server_refuses(tmp_path, args, answer):
    # it printed tokens the gatekeeper could only refuse
    p = run("keygen", "--vendor", "ed25519", "--kid", "v1",
            "--out", str(tmp_path), cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    p = run("sign", "v2", "--kid", "v1", "--key-file",
            str(tmp_path / "v1.key"), *args, cwd=str(tmp_path))
    line = one_line_error(p, 2, "gatekeeper sign: ")
    assert "the gatekeeper would answer " + answer in line
    assert p.stdout == ""
    p = run("sign", "v2", "--kid", "v1", "--key-file",
            str(tmp_path / "v1.key"), "--op", "get", "--key", "a.txt",
            "--cip", "10.0.0.0/8", cwd=str(tmp_path))
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2


def test_empty_gatekeeper_config_variable_is_unset(tmp_path):
    # GATEKEEPER_CONFIG= (set, empty) failed with ": cannot open"; it is
    # as unset: ./gatekeeper.ini, else the defaults
    (tmp_path / "gatekeeper.ini").write_text(
        "[gate]\ndata_dir = %s\n[geo]\ndatabase = off\n" % (tmp_path / "d"))
    env = dict(os.environ, GATEKEEPER_CONFIG="")
    assert run("keygen", cwd=str(tmp_path), env=env).returncode == 0
    p = run("check-config", cwd=str(tmp_path), env=env)
    assert p.returncode == 0, p.stderr
    assert "data_dir = %s" % (tmp_path / "d") in p.stdout


def test_keygen_says_why_it_cannot_write(tmp_path):
    # "cannot create key files under DIR: I/O error" for a data_dir that
    # is a file
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    conf = tmp_path / "g.ini"
    conf.write_text("[gate]\ndata_dir = %s\n" % blocker)
    p = run("keygen", "--config", str(conf))
    line = one_line_error(p, 1, "gatekeeper keygen: ")
    assert line.endswith("cannot create key files under %s/keys: "
                         "Not a directory" % blocker), line


def test_verify_names_a_file_sqlite_cannot_read(tmp_path, gk_factory):
    # a damaged header read as "not an audit database of schema version 5",
    # pointing away from README's "audit.db is damaged"
    g = gk_factory().start()
    make_traffic(g)
    g.stop()
    with open(g.audit_db, "r+b") as f:
        f.write(b"\0" * 100)
    p = g.run("audit", "verify", check=False)
    assert "%s: file is not a database" % g.audit_db in one_line_error(
        p, 1, "gatekeeper audit: cannot verify: ")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    p = g.run("audit", "verify", "--db", str(empty), check=False)
    assert "not an audit database of schema version" in one_line_error(
        p, 1, "gatekeeper audit: cannot verify: ")
