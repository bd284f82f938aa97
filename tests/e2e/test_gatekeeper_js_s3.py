"""gatekeeper.js on the s3 store in redirect mode, against Ceph RGW, in
Chromium: a PUT with a body is refused (405), so upload() falls back to
the POST form and the file goes from the browser to the bucket (CORS set
as 'gatekeeper provision' sets it); the listing and the view go through presigned
URLs. The object in the bucket is the file, byte for byte."""
import json

from browserutil import VendorKey, ensure_playwright, run_node
from conftest import free_port
from webfiles import png

GK_ID = "gk-js-s3"


def test_upload_falls_back_to_the_bucket_form(rgw, gk_factory, tmp_path):
    ensure_playwright()
    vk = VendorKey()
    page_port = free_port()
    origin = "http://127.0.0.1:%d" % page_port
    bucket = rgw.new_bucket()
    settings = rgw.gk_settings(bucket, gk_factory().dir)
    settings.update(vk.settings())
    # the CORS rule 'gatekeeper provision' writes (its TLS-only bucket
    # policy would refuse this plain-HTTP test endpoint)
    rgw.client().put_bucket_cors(Bucket=bucket, CORSConfiguration={
        "CORSRules": [{"AllowedOrigins": [origin],
                       "AllowedMethods": ["GET", "HEAD", "POST"],
                       "AllowedHeaders": ["*"], "MaxAgeSeconds": 600}]})
    g = gk_factory(gate__id=GK_ID, acl__origins=origin, **settings).start()
    data = png(900, 700, noise=True)    # ~1.9 MB
    f = tmp_path / "scan.png"
    f.write_bytes(data)
    cfg = {"gk": g.base, "pagePort": page_port, "aud": GK_ID,
           "kid": vk.kid, "privatePem": vk.pem, "file": str(f),
           "bucketOrigin": rgw.endpoint.rstrip("/")}
    cfgf = tmp_path / "cfg.json"
    cfgf.write_text(json.dumps(cfg))
    seen = run_node("client_s3.mjs", str(cfgf), timeout=240)

    assert seen["put"]["key"] == "scans/scan.png"
    assert seen["put"]["size"] == len(data)
    # progress in the file's bytes, though the form wraps them
    assert seen["events"] >= 1 and seen["last"] == len(data)
    assert seen["list"] == [["scans/scan.png", len(data)]]
    assert seen["view"] == {"tag": "IMG", "size": len(data), "w": 900}
    reqs = [r for r in seen["requests"] if r[0] != "OPTIONS"]
    # asked what the store takes, then the form, then the bucket: no PUT
    # of the file to the gatekeeper
    i = reqs.index(["GET", "gk", "/gatekeeper.json", 200])
    assert reqs[i + 1] == ["POST", "gk", "/v2/uploads/scans/scan.png", 200]
    assert reqs[i + 2][:2] == ["POST", "bucket"]
    assert reqs[i + 2][3] in (200, 201, 204)
    assert not [r for r in reqs if r[0] == "PUT"]
    # the object bytes went to the bucket, not through the gatekeeper
    got = rgw.client().get_object(Bucket=bucket, Key="scans/scan.png")
    assert got["Body"].read() == data
