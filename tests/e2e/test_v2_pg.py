"""Two gatekeeper instances sharing one PostgreSQL audit database: a v2
token's jti used on one is refused on the other, and both chains verify."""
import os
import tempfile

from test_v2 import Keys, req, token


def test_jti_single_use_across_instances(gk_factory, pg_server):
    keys = Keys(tempfile.mkdtemp(prefix="gk-v2keys-"))
    a = gk_factory(backend=pg_server, **keys.settings()).start()
    dsn = "postgresql:///%s?host=%s&user=gk" % (a.pgdb, pg_server.dir)
    b = gk_factory(audit__backend="postgres", audit__dsn=dsn,
                   **keys.settings()).start()
    t = token(keys, "ed1", op="get", key="docs/a.txt", jti="once-42")
    r = req(a, "GET", "/v2/objects/docs/a.txt", t)
    assert r.status_code == 302, r.text
    r = req(b, "GET", "/v2/objects/docs/a.txt", t)
    assert r.status_code == 403
    assert r.json()["msg"] == "Forbidden: token already used ('jti')"
    # a fresh jti works on the second instance
    t2 = token(keys, "ed1", op="get", key="docs/a.txt", jti="once-43")
    assert req(b, "GET", "/v2/objects/docs/a.txt", t2).status_code == 302
    a.stop()
    b.stop()
    # one database, two chains (each signed by its own instance's audit
    # key), both hold
    pubs = [os.path.join(g.data, "keys", "audit_ed25519.pub") for g in (a, b)]
    p = a.run("audit", "verify", "--db", dsn, "--no-checkpoints-file",
              "--pubkey", pubs[0], "--pubkey", pubs[1], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 instances" in p.stdout
