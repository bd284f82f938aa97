"""gatekeeper.js (web/gatekeeper.js) in Debian's Chromium from a page of
another origin: v2 and v1 uploads with progress events and a cancel, the
streamed PUT and the POST form, listing with paging, views of a PDF, an
image and text inside the page, typed errors, the classic build. Bytes
and audit rows are checked here, outside the browser."""
import json
import os

import requests

from browserutil import VendorKey, ensure_playwright, run_node
from conftest import free_port
from webfiles import pdf, png

GK_ID = "gk-js-test"


def test_gatekeeper_js_v1_v2(gk_factory, tmp_path):
    ensure_playwright()
    vk = VendorKey()
    page_port = free_port()
    page_origin = "http://127.0.0.1:%d" % page_port
    # the cancelled upload is 384 MiB (see client.mjs): allowed in size,
    # so what ends it is the cancel
    g = gk_factory(gate__id=GK_ID, acl__origins=page_origin,
                   gate__max_upload_bytes=str(1 << 30),
                   **vk.settings()).start()
    small = tmp_path / "note.txt"
    small.write_bytes(b"Printer on fire, see attachment.\n")
    big = tmp_path / "big.bin"
    big_data = os.urandom(1 << 20) * 48     # 48 MiB
    big.write_bytes(big_data)
    docs = {"v/doc.pdf": pdf(), "v/pic.png": png(),
            "v/readme.txt": "Zeile 1: ünïcödé <b>not bold</b>\n".encode()}
    for key, body in docs.items():
        tok = vk.token(GK_ID, "put", key)
        r = requests.put(g.base + "/v2/objects/" + key, data=body,
                         headers={"Authorization": "Bearer " + tok,
                                  "Origin": page_origin}, timeout=30)
        assert r.status_code == 201, r.text
    cfg = {"gk": g.base, "pagePort": page_port, "aud": GK_ID,
           "kid": vk.kid, "privatePem": vk.pem,
           "v1Key": g.v1_key.decode(),
           "files": {"small": str(small), "big": str(big)},
           "screenshot": os.environ.get("GK_SHOT_CLIENT", str(tmp_path / "client.png"))}
    cfgf = tmp_path / "cfg.json"
    cfgf.write_text(json.dumps(cfg))
    seen = run_node("client.mjs", str(cfgf), timeout=240)

    assert seen["classic"] == {"protocol": 2, "err": "function"}
    v2 = seen["v2"]
    size = small.stat().st_size
    assert v2["put"]["key"] == "t/note.txt" and v2["put"]["size"] == size
    assert v2["putEvents"] >= 1 and v2["putLast"]["loaded"] == size
    assert v2["big"]["size"] == 4 * len(big_data)
    assert v2["bigEvents"] >= 2, v2
    assert v2["bigLast"]["loaded"] == 4 * len(big_data)
    assert v2["bigFirst"]["loaded"] < 4 * len(big_data)
    assert v2["form"]["key"] == "t/form.txt" and v2["formEvents"] >= 1
    c = v2["cancel"]
    assert c["name"] == "AbortError" and c["kind"] == "aborted", c
    assert c["isGkError"] and c["loaded"] < c["total"]
    # the listing came in pages of two; the cancelled upload left nothing
    assert [k for k, _ in v2["list"]] == ["t/big.bin", "t/form.txt",
                                          "t/note.txt"]
    assert dict(v2["list"])["t/big.bin"] == 4 * len(big_data)
    assert len(seen["requests"]) == 2, seen["requests"]
    assert "start_after=t%2Fform.txt" in seen["requests"][1]
    nf = v2["notFound"]
    assert nf["status"] == 404 and nf["isGkError"]
    assert nf["name"] == "GatekeeperError" and nf["requestId"]
    assert nf["message"].startswith("Not Found"), nf

    # what went up is byte for byte what the page sent
    r = requests.get(g.base + "/v2/objects/t/big.bin",
                     headers={"Authorization": "Bearer " +
                              vk.token(GK_ID, "get", "t/big.bin"),
                              "Origin": page_origin}, timeout=60)
    assert r.status_code == 200 and r.content == big_data * 4

    assert seen["v-pdf"] == {"tag": "IFRAME", "type": "application/pdf",
                             "size": len(docs["v/doc.pdf"]),
                             "head": "%PDF-", "src": "blob:",
                             "blobSize": len(docs["v/doc.pdf"])}
    assert seen["v-img"] == {"tag": "IMG", "type": "image/png",
                             "size": len(docs["v/pic.png"]), "w": 40, "h": 30}
    assert seen["v-txt"]["tag"] == "PRE"
    assert seen["v-txt"]["text"] == docs["v/readme.txt"].decode()

    assert seen["opened"] == {"path": "/_data/v/readme.txt",
                              "text": docs["v/readme.txt"].decode()}

    v1 = seen["v1"]
    assert v1["put"]["key"] == "uploads/legacy/note.txt"
    assert v1["putEvents"] >= 1
    assert v1["list"] == ["/legacy/note.txt"]
    assert v1["view"] == small.read_text()

    rows = g.audit_rows()
    ops = {(r["protocol"], r["operation"], r["status"]) for r in rows}
    for want in (("v2", "PUT_Object", 201), ("v2", "PUT_Object", 200),
                 ("upload", "POST_Upload", 201), ("v2", "GET_Bucket", 200),
                 ("v2", "GET_Object", 200), ("data", "GET_Object", 200),
                 ("v1", "PUT_Object", 200), ("v1", "GET_Bucket", 200),
                 ("v1", "GET_Object", 302)):
        assert want in ops, (want, sorted(ops))
    assert not [r for r in rows if r["path"] == "t/cancelled.bin" and
                r["decision"] == "allow" and r["status"] == 201]

