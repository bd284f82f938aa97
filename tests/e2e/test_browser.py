"""The demo page in Debian's Chromium, driven by playwright-core: a person
uploads a report, sees it listed and opens it."""
import json
import os
import subprocess

import pytest

from jsdeps import js_dir



@pytest.fixture(scope="module")
def playwright():
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("Debian's chromium is missing: run make deps "
                    "(scripts/install-deps.sh)")
    return js_dir("playwright-core")


def test_demo_upload_list_view(gk_factory, playwright, tmp_path):
    g = gk_factory(server__demo="true",
                   acl__origins="http://127.0.0.1:{port}").start()
    shot = str(tmp_path / "demo.png")
    p = subprocess.run(["node", "demo.mjs", g.base, shot], cwd=playwright,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert seen["listed"] == ["/reports/lab-report.txt"]
    assert seen["opened"] == "Lab report: all values normal."
    assert seen["status_after_upload"].startswith("1 file(s) in /reports/")
    assert seen["status_after_view"].startswith("Opened /reports/lab-report.txt")
    assert os.path.getsize(shot) > 0
    # what the browser did is in the audit: the upload form, the upload,
    # the listing, the read and the data URL, all allowed
    rows = g.audit_rows()
    ops = [(r["protocol"], r["operation"], r["status"]) for r in rows]
    assert ("v1", "PUT_Object", 200) in ops
    assert ("upload", "POST_Upload", 201) in ops
    assert ("v1", "GET_Bucket", 200) in ops
    assert ("v1", "GET_Object", 302) in ops
    assert ("data", "GET_Object", 200) in ops
    assert [(r["path"], r["status"], r["message"]) for r in rows
            if r["decision"] != "allow"] == []
    # the page's same-origin reads were judged as our public origin
    assert any(r["origin"] is None and r["operation"] == "GET_Bucket"
               for r in rows)


def test_demo_off_by_default(gk):
    import requests
    r = requests.get(gk.base + "/demo", timeout=10)
    # without demo mode, /demo is only a v1 root like any other
    assert r.status_code == 400 and "<html" not in r.text
    assert requests.get(gk.base + "/demo/sign?root=a&path=/b&op=GET_Object",
                        timeout=10).status_code == 404
    r = requests.get(gk.base + "/gatekeeper.js", timeout=10)
    assert r.status_code == 200 and "class Gatekeeper" in r.text
