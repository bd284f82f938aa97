"""Protocol v2 on the s3 store in redirect mode, against Ceph RGW: the
vendor's token buys a presigned bucket URL or POST form, exactly as v1."""
import os
import urllib.parse

import requests

from conftest import ORIGIN
from test_v2 import Keys, req, token


def test_v2_on_the_s3_store(rgw, gk_factory, tmp_path):
    keys = Keys(str(tmp_path))
    bucket = rgw.new_bucket()
    settings = rgw.gk_settings(bucket, gk_factory().dir)
    settings.update(keys.settings())
    g = gk_factory(**settings).start()
    key = "docs/v2 \u00e9 report.pdf"
    data = os.urandom(70_000)

    # the upload form is a presigned POST straight to the bucket
    r = req(g, "POST", "/v2/uploads/" + urllib.parse.quote(key),
            token(keys, "ed1", op="put", key=key))
    assert r.status_code == 200, r.text
    form = r.json()
    assert form["url"].startswith(rgw.endpoint)
    assert form["fields"]["key"] == key
    assert "x-amz-signature" in form["fields"]
    up = requests.post(form["url"], data=form["fields"],
                       files={"file": ("r.pdf", data)}, timeout=60)
    assert up.status_code in (200, 201, 204), up.text

    # the read is a 302 to a presigned GET the bucket honours
    r = req(g, "GET", "/v2/objects/" + urllib.parse.quote(key),
            token(keys, "ed1", op="get", key=key))
    assert r.status_code == 302, r.text
    assert r.headers["Location"].startswith(rgw.endpoint)
    got = requests.get(r.headers["Location"], timeout=60)
    assert got.status_code == 200 and got.content == data

    # listing pages through ListObjectsV2
    r = req(g, "GET", "/v2/list/docs/",
            token(keys, "ed1", op="list", prefix="docs/"))
    assert r.status_code == 200, r.text
    assert [i["key"] for i in r.json()["items"]] == [key]

    # a missing object is this gatekeeper's 404, audited with the token
    r = req(g, "GET", "/v2/objects/docs/none.pdf",
            token(keys, "ed1", op="get", key="docs/none.pdf"))
    assert r.status_code == 404
    (row,) = g.audit_for(r)
    assert row["status"] == 404 and row["kid"] == "ed1"
    assert row["sub"] == "user-42" and row["protocol"] == "v2"


def test_v2_put_body_on_s3(rgw, gk_factory, tmp_path):
    """Redirect mode: the browser posts to the bucket, so a PUT with a body
    is 405; proxy mode streams the body to the bucket."""
    keys = Keys(str(tmp_path))
    t = token(keys, "ed1", op="put", key="docs/p.bin")
    settings = rgw.gk_settings(rgw.new_bucket(), gk_factory().dir)
    settings.update(keys.settings())
    g = gk_factory(**settings).start()
    r = requests.put(g.base + "/v2/objects/docs/p.bin", data=b"x", timeout=60,
                     headers={"Origin": ORIGIN, "Authorization": "Bearer " + t})
    assert r.status_code == 405 and "PUT" not in r.headers["Allow"]

    settings = rgw.gk_settings(rgw.new_bucket(), gk_factory().dir,
                               s3__mode="proxy")
    settings.update(keys.settings())
    g = gk_factory(**settings).start()
    data = os.urandom(300_000)
    r = requests.put(g.base + "/v2/objects/docs/p.bin", data=data, timeout=60,
                     headers={"Origin": ORIGIN, "Authorization": "Bearer " + t})
    assert r.status_code == 201, r.text
    r = req(g, "GET", "/v2/objects/docs/p.bin",
            token(keys, "ed1", op="get", key="docs/p.bin"))
    assert r.status_code == 302 and r.headers["Location"].startswith(g.base)
    assert requests.get(r.headers["Location"], timeout=60).content == data
