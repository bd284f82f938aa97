#!/usr/bin/env python3
"""A tiny vendor web app for S3 Gatekeeper: a helpdesk where a user attaches
a screenshot or a PDF to a ticket and a technician views it.

It shows the point of the design: this server logs its users in and signs
protocol v2 tokens (Ed25519, offline: it never connects to the gatekeeper);
the browser takes each token straight to the customer's gatekeeper with
gatekeeper.js. Not one byte of any attachment passes through here, and the
customer may put this server's address on its deny list.

    python3 vendor.py keygen vendor.key        # prints the [vendor_key] stanza
    python3 vendor.py serve --key vendor.key --gatekeeper URL --aud ID \\
        [--listen 127.0.0.1] [--port 8000] [--kid vendor] [--log traffic.log]

Users (demo): alice / alice-pw (reports tickets), tom / tom-pw (technician).
Every request and answer is written to --log as one JSON line (method,
path, request body, status, response body), so anyone can check what the
vendor saw. Python standard library plus python3-cryptography.
"""
import argparse
import base64
import hmac
import html
import http.server
import json
import os
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

USERS = {"alice": ("alice-pw", "user"), "tom": ("tom-pw", "technician")}
TICKETS = {"42": ("alice", "Printer on fire"),
           "43": ("alice", "VPN drops every hour")}
TOKEN_TTL = 120


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Signer:
    """Makes v2 tokens: compact JWS, EdDSA, with the vendor's kid."""

    def __init__(self, key_file, kid, aud):
        try:
            with open(key_file, "rb") as f:
                self.key = serialization.load_pem_private_key(f.read(), None)
        except (OSError, ValueError) as e:  # one line, never a traceback
            raise SystemExit("vendor.py: %s: %s" % (
                key_file, getattr(e, "strerror", None) or
                "not a PEM private key"))
        if not isinstance(self.key, ed25519.Ed25519PrivateKey):
            raise SystemExit("vendor.py: %s is not an Ed25519 key" % key_file)
        self.kid, self.aud = kid, aud

    def token(self, sub, op, key=None, prefix=None):
        now = int(time.time())
        claims = {"aud": self.aud, "sub": sub, "op": op, "iat": now,
                  "exp": now + TOKEN_TTL, "jti": secrets.token_urlsafe(12)}
        if key is not None:
            claims["key"] = key
        else:
            claims["prefix"] = prefix
        si = (b64u(json.dumps({"alg": "EdDSA", "kid": self.kid},
                              separators=(",", ":")).encode()) + "." +
              b64u(json.dumps(claims, separators=(",", ":")).encode()))
        return si + "." + b64u(self.key.sign(si.encode()))


def allowed(user, role, req):
    """May user ask for this token? Returns (op, key, prefix) or None."""
    op = req.get("op")
    key, prefix = req.get("key"), req.get("prefix")
    target = key if key is not None else prefix
    if op not in ("put", "get", "list") or not isinstance(target, str):
        return None
    if (op == "list") != (prefix is not None) or (key and prefix):
        return None
    parts = target.split("/")
    if len(parts) < 3 or parts[0] != "tickets" or parts[1] not in TICKETS:
        return None
    if ".." in parts or "" in parts[2:-1] or (key is not None and
                                              parts[-1] == ""):
        return None
    owner = TICKETS[parts[1]][0]
    if role == "technician":
        return (op, key, prefix) if op != "put" else None
    return (op, key, prefix) if owner == user else None


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Helpdesk: %(title)s</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 15px/1.5 system-ui, sans-serif; max-width: 56rem; margin: 1.5rem auto; padding: 0 1rem; color: #1d2330; }
 header { display: flex; justify-content: space-between; align-items: center; border-bottom: 1px solid #d9dee7; }
 section { border: 1px solid #d9dee7; border-radius: 8px; padding: .8rem 1.1rem; margin: 1rem 0; }
 h2 { font-size: 1.05rem; margin: 0 0 .5rem; } .note { color: #5a6372; font-size: .9rem; }
 #viewer img, #viewer iframe { max-width: 100%%; border: 1px solid #d9dee7; }
 #viewer iframe { width: 100%%; height: 28rem; } #viewer pre { background: #f5f6f9; padding: .6rem; }
 .ok { color: #146c2e; } .err { color: #a4161a; } progress { width: 14rem; }
</style></head><body>%(body)s</body></html>"""

LOGIN = """<header><h1>Helpdesk</h1></header>
<section><h2>Sign in</h2>%(err)s
<form method="post" action="/login">
<label>User <input name="user" id="user" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button id="login">Sign in</button></form>
<p class="note">Demo users: alice / alice-pw (reports), tom / tom-pw (technician).</p>
</section>"""

REPORT = """<header><h1>Helpdesk</h1><span>Signed in as <b id="who">%(user)s</b>
(%(role)s) <form method="post" action="/logout" style="display:inline">
<input type="hidden" name="csrf" value="%(csrf)s"><button id="logout">Sign out</button></form></span></header>
<section><h2>Ticket <span id="ticket">%(ticket)s</span>: %(subject)s</h2>
<p class="note">Attachments go straight from your browser to the customer's
gatekeeper at <code>%(gk)s</code>; this helpdesk only signs short-lived tokens.</p>
%(attach)s
<h2>Attachments</h2><ul id="files"></ul>
<div id="status" role="status"></div>
</section>
<section><h2>Viewer</h2><div id="viewer"></div></section>
<script type="module">
import { Gatekeeper } from "%(gk)s/gatekeeper.js";
const csrf = %(csrf_js)s, ticket = %(ticket_js)s;
const $ = (id) => document.getElementById(id);
const prefix = "tickets/" + ticket + "/";
const gk = new Gatekeeper({ url: %(gk_js)s, token: async (req) => {
	const r = await fetch("/api/token", { method: "POST",
	    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
	    body: JSON.stringify(req) });
	if (!r.ok) throw new Error("the helpdesk refused a token: " + r.status);
	return (await r.json()).token;
} });
const say = (t, ok) => { $("status").textContent = t; $("status").className = ok ? "ok" : "err"; };
async function refresh() {
	$("files").textContent = "";
	for await (const it of gk.list(prefix, { limit: 50 })) {
		const li = document.createElement("li");
		const b = document.createElement("button");
		b.textContent = "View"; b.dataset.key = it.key;
		b.onclick = () => gk.view(it.key, $("viewer")).then(
		    (n) => say("Viewing " + it.key, true), (e) => say(e.message, false));
		li.append(it.key.slice(prefix.length) + " (" + it.size + " bytes) ", b);
		$("files").append(li);
	}
}
const f = $("file");
if (f) $("attach").onclick = async () => {
	if (!f.files[0]) return say("Choose a file first.", false);
	try {
		const file = f.files[0];
		const r = await gk.upload(file, { key: prefix + file.name,
		    onProgress: (p) => $("bar").value = p.fraction });
		say("Attached " + r.key + " (" + r.size + " bytes)", true);
		await refresh();
	} catch (e) { say("Upload failed: " + e.status + " " + e.message, false); }
};
refresh().then(() => document.body.dataset.ready = "1",
    (e) => { say("List failed: " + e.message, false); document.body.dataset.ready = "1"; });
</script>"""

ATTACH = """<p><input type="file" id="file" accept="image/*,application/pdf,text/plain">
<button id="attach">Attach</button> <progress id="bar" max="1" value="0"></progress></p>"""


class App:
    def __init__(self, signer, gk_url, log_path):
        self.signer, self.gk = signer, gk_url.rstrip("/")
        self.sessions = {}
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1) if log_path else None

    def record(self, entry):
        if self.log is not None:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "helpdesk"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    @property
    def app(self):
        return self.server.app

    def session(self):
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "sid":
                with self.app.lock:
                    return self.app.sessions.get(value)
        return None

    def answer(self, status, body, ctype="text/html; charset=utf-8",
               headers=(), req_body=b""):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; script-src 'unsafe-inline' %s; "
                         "connect-src 'self' %s; img-src blob:; "
                         "frame-src blob:; object-src blob:; style-src 'unsafe-inline'" %
                         (self.app.gk, self.app.gk))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.app.record({"t": time.time(), "client": self.client_address[0],
                         "method": self.command, "path": self.path,
                         "request_bytes": len(req_body),
                         "request_body": req_body.decode("utf-8", "replace"),
                         "status": status, "response_type": ctype,
                         "response_bytes": len(data),
                         "response_body": data.decode("utf-8", "replace")
                         if not ctype.startswith("text/html") else
                         "<html page>"})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 4096:        # tokens and logins only: no file ever comes here
            return None
        return self.rfile.read(n)

    def do_GET(self):
        s = self.session()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/":
            if s is None:
                return self.answer(200, PAGE % {"title": "sign in", "body":
                                                LOGIN % {"err": ""}})
            return self.answer(303, "", headers=[("Location",
                                                  "/ticket/42")])
        if path.startswith("/ticket/") and path[8:] in TICKETS:
            if s is None:
                return self.answer(303, "", headers=[("Location", "/")])
            tid = path[8:]
            user, role, csrf = s
            if role != "technician" and TICKETS[tid][0] != user:
                return self.answer(403, "not your ticket", "text/plain")
            body = REPORT % {
                "user": html.escape(user), "role": role, "csrf": csrf,
                "csrf_js": json.dumps(csrf), "ticket": tid,
                "ticket_js": json.dumps(tid),
                "subject": html.escape(TICKETS[tid][1]),
                "gk": html.escape(self.app.gk), "gk_js": json.dumps(self.app.gk),
                "attach": ATTACH if role == "user" else ""}
            return self.answer(200, PAGE % {"title": "ticket " + tid,
                                            "body": body})
        return self.answer(404, "not found", "text/plain")

    def do_POST(self):
        body = self.read_body()
        if body is None:
            return self.answer(413, "too large", "text/plain")
        path = urllib.parse.urlsplit(self.path).path
        s = self.session()
        if path == "/login":
            f = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            user = (f.get("user") or [""])[0]
            pw = (f.get("password") or [""])[0]
            known = USERS.get(user)
            logged = {"user": user, "password": "***"}
            if known is None or not hmac.compare_digest(known[0], pw):
                return self.answer(401, PAGE % {"title": "sign in", "body":
                                   LOGIN % {"err": '<p class="err">Wrong '
                                            'user or password.</p>'}},
                                   req_body=json.dumps(logged).encode())
            sid, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            with self.app.lock:
                self.app.sessions[sid] = (user, known[1], csrf)
            return self.answer(303, "", headers=[
                ("Location", "/ticket/42"),
                ("Set-Cookie", "sid=%s; Path=/; HttpOnly; SameSite=Strict"
                 % sid)], req_body=json.dumps(logged).encode())
        if path == "/logout":
            f = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            if s is not None and hmac.compare_digest(
                    (f.get("csrf") or [""])[0], s[2]):
                with self.app.lock:
                    for k, v in list(self.app.sessions.items()):
                        if v == s:
                            del self.app.sessions[k]
            return self.answer(303, "", headers=[
                ("Location", "/"), ("Set-Cookie", "sid=; Path=/; Max-Age=0")],
                req_body=body)
        if path == "/api/token":
            if s is None or not hmac.compare_digest(
                    self.headers.get("X-CSRF-Token", ""), s[2]):
                return self.answer(403, '{"error":"not signed in"}',
                                   "application/json", req_body=body)
            try:
                req = json.loads(body)
            except ValueError:
                req = None
            scope = allowed(s[0], s[1], req) if isinstance(req, dict) \
                else None
            if scope is None:
                return self.answer(403, '{"error":"not allowed"}',
                                   "application/json", req_body=body)
            op, key, prefix = scope
            tok = self.app.signer.token(s[0], op, key=key, prefix=prefix)
            return self.answer(200, json.dumps({"token": tok}),
                               "application/json", req_body=body)
        return self.answer(404, "not found", "text/plain", req_body=body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv):
    ap = argparse.ArgumentParser(prog="vendor.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="make an Ed25519 key, print its stanza")
    k.add_argument("key_file")
    k.add_argument("--kid", default="vendor")
    s = sub.add_parser("serve", help="run the helpdesk")
    s.add_argument("--key", required=True, help="Ed25519 private key (PEM)")
    s.add_argument("--kid", default="vendor")
    s.add_argument("--aud", default="gatekeeper",
                   help="the gatekeeper's [gate] id")
    s.add_argument("--gatekeeper", required=True,
                   help="the gatekeeper's public URL")
    s.add_argument("--listen", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--log", help="traffic log (JSON lines)")
    a = ap.parse_args(argv)
    if a.cmd == "keygen":
        key = ed25519.Ed25519PrivateKey.generate()
        try:
            fd = os.open(a.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600)
        except OSError as e:  # one line, never a traceback
            print("vendor.py keygen: %s: %s" % (a.key_file, e.strerror),
                  file=sys.stderr)
            return 1
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        print("[vendor_key %s]\ntype = ed25519\npublic_key = %s" %
              (a.kid, base64.b64encode(raw).decode()))
        return 0
    signer = Signer(a.key, a.kid, a.aud)
    try:
        srv = Server((a.listen, a.port), Handler)
    except OSError as e:
        raise SystemExit("vendor.py: cannot listen on %s port %d: %s" % (
            a.listen, a.port, e.strerror))
    srv.app = App(signer, a.gatekeeper, a.log)
    print("helpdesk on http://%s:%d" % srv.server_address[:2], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
