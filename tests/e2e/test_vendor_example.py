"""examples/vendor: the helpdesk signs v2 tokens offline; the browser
uploads, lists and views attachments directly against the gatekeeper.
The vendor's own traffic log shows logins, pages and tokens and not one
byte of any attachment, and the vendor's address (127.0.0.2) is on the
customer's deny list while the browser (127.0.0.1) works."""
import json
import os
import socket
import subprocess
import sys
import http.client

from browserutil import ensure_playwright, run_node
from webfiles import pdf, png

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "..", "..", "examples", "vendor", "vendor.py")
GK_ID = "gk-clinic"
VENDOR_IP = "127.0.0.2"


def free_port_on(ip):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_vendor_never_sees_the_data(gk_factory, tmp_path):
    ensure_playwright()
    key = str(tmp_path / "vendor.key")
    p = subprocess.run([sys.executable, VENDOR, "keygen", key, "--kid",
                        "helpdesk"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    stanza = dict(line.split(" = ", 1) for line in p.stdout.splitlines()[1:])
    assert p.stdout.startswith("[vendor_key helpdesk]\n")
    vport = free_port_on(VENDOR_IP)
    vendor_origin = "http://%s:%d" % (VENDOR_IP, vport)
    g = gk_factory(gate__id=GK_ID, acl__origins=vendor_origin,
                   acl__ip_deny=VENDOR_IP + "/32",
                   **{"vendor_key helpdesk__type": stanza["type"],
                      "vendor_key helpdesk__public_key":
                      stanza["public_key"]}).start()
    log = tmp_path / "traffic.log"
    vendor = subprocess.Popen(
        [sys.executable, VENDOR, "serve", "--key", key, "--kid", "helpdesk",
         "--aud", GK_ID, "--gatekeeper", g.base, "--listen", VENDOR_IP,
         "--port", str(vport), "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "helpdesk on" in vendor.stdout.readline()
        marker = os.urandom(8).hex()
        shot = tmp_path / ("screenshot-%s.png" % marker[:6])
        shot.write_bytes(png(64, 48))
        doc = tmp_path / "invoice.pdf"
        doc.write_bytes(pdf("Invoice %s" % marker))
        shots = os.environ.get("GK_SCREENSHOTS", str(tmp_path))
        seen = run_node("vendor.mjs", vendor_origin, shots, str(shot),
                        str(doc), timeout=240)
    finally:
        vendor.terminate()
        vendor.wait(timeout=10)

    keys = ["tickets/42/" + shot.name, "tickets/42/invoice.pdf"]
    assert sorted(seen["alice_files"]) == sorted(keys)
    assert seen["alice_status"].startswith("Attached tickets/42/invoice.pdf")
    assert seen["progress"] == 1
    assert sorted(seen["tom_files"]) == sorted(keys)
    assert seen["tom_has_attach"] is False
    assert seen["tom_img"] == {"w": 64, "h": 48, "src": "blob:",
                               "size": shot.stat().st_size}
    assert seen["tom_pdf"] == {"src": "blob:", "size": doc.stat().st_size,
                               "type": "application/pdf"}
    assert seen["csp"] == [] and seen["failed"] == [], seen

    # the vendor's traffic: logins, pages and tokens; no attachment byte
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries, "empty traffic log"
    raw = log.read_bytes()
    for f in (shot, doc):
        data = f.read_bytes()
        for i in range(0, len(data) - 16, 16):
            assert data[i:i + 16] not in raw
    assert marker.encode() not in raw
    paths = {e["path"] for e in entries}
    assert paths <= {"/", "/login", "/logout", "/ticket/42", "/api/token"}
    assert max(e["request_bytes"] for e in entries) < 300
    tokens = [e for e in entries if e["path"] == "/api/token"]
    assert len(tokens) >= 6 and all(e["status"] == 200 for e in tokens)
    for e in tokens:
        assert list(json.loads(e["response_body"])) == ["token"]
        assert set(json.loads(e["request_body"])) in ({"op", "key"},
                                                      {"op", "prefix"})
    assert all(e["client"] == "127.0.0.1" for e in entries)

    # the gatekeeper saw the browser (127.0.0.1) and the vendor's users
    rows = g.audit_rows()
    allowed = [r for r in rows if r["decision"] == "allow"]
    assert {r["client_ip"] for r in allowed} == {"127.0.0.1"}
    assert {r["sub"] for r in allowed if r["protocol"] == "v2"} == \
        {"alice", "tom"}
    assert {(r["operation"], r["status"]) for r in allowed
            if r["protocol"] == "v2"} >= {("PUT_Object", 201),
                                          ("GET_Bucket", 200),
                                          ("GET_Object", 200)}
    # and the vendor's own address is refused, even with a valid token
    sys.path.insert(0, os.path.dirname(VENDOR))
    import vendor as vendor_app
    tok = vendor_app.Signer(key, "helpdesk", GK_ID).token(
        "alice", "get", key="tickets/42/invoice.pdf")
    c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=30,
                                   source_address=(VENDOR_IP, 0))
    c.request("GET", "/v2/objects/tickets/42/invoice.pdf",
              headers={"Authorization": "Bearer " + tok,
                       "Origin": vendor_origin,
                       "Accept": "application/json"})
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    assert (r.status, body["msg"]) == (403, "Forbidden: ACL")
    row = g.audit_rows("request_id = ?", (r.getheader("X-Request-Id"),))[0]
    assert (row["client_ip"], row["decision"], row["sub"]) == \
        (VENDOR_IP, "deny", "alice")


def test_vendor_cli_errors_are_one_line(tmp_path):
    # README's keygen line run twice, a missing key, a port taken: each
    # was a Python traceback
    key = str(tmp_path / "vendor.key")

    def vendor(*args):
        return subprocess.run([sys.executable, VENDOR] + list(args),
                              capture_output=True, text=True, timeout=60)

    assert vendor("keygen", key, "--kid", "helpdesk").returncode == 0
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    try:
        for args, needle in (
                (["keygen", key, "--kid", "helpdesk"],
                 "vendor.py keygen: %s: File exists" % key),
                (["serve", "--key", str(tmp_path / "none.key"),
                  "--gatekeeper", "http://127.0.0.1:9"],
                 "none.key: No such file or directory"),
                (["serve", "--key", key, "--gatekeeper", "http://127.0.0.1:9",
                  "--port", str(held.getsockname()[1])],
                 "cannot listen on 127.0.0.1 port %d: Address already in use"
                 % held.getsockname()[1])):
            p = vendor(*args)
            assert p.returncode == 1, (args, p.stderr)
            assert p.stderr.strip().splitlines() == [p.stderr.strip()], \
                p.stderr
            assert needle in p.stderr, p.stderr
    finally:
        held.close()
