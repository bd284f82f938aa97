"""The S3-compatible endpoint: grants made with the CLI, real
clients unchanged but for the endpoint (boto3, awscli, rclone, s3cmd, the
AWS SDK for JavaScript v3), scope and signature refusals, each audited."""
import base64
import datetime
import json
import os
import shutil
import sqlite3
import time

import botocore.exceptions
import pytest
from hostile import exchange, responses

from s3api_util import (BUCKET, ROOT, client, code, exists, grant, run_tool,
                        s3gk, send, signed, status, streaming_put)

CE = botocore.exceptions.ClientError
ALL = ("--ops", "get,list,put,delete")


def crc64nvme(data):
    """CRC-64/NVME, bit by bit (the server's is table-driven): reflected
    polynomial 0xad93d23594c93659, init and final xor all ones."""
    poly = int("{:064b}".format(0xad93d23594c93659)[::-1], 2)
    crc = (1 << 64) - 1
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ ((1 << 64) - 1)


def audit_grant(g, gid):
    p = g.run("audit", "search", "--grant", gid, "--format", "json",
              "--limit", "1000")
    return [json.loads(line) for line in p.stdout.splitlines() if line]


# ---- grants ---------------------------------------------------------------

def test_grant_cli_lifecycle(gk_factory):
    g = s3gk(gk_factory)
    gr = grant(g, "--name", "backup svc", "--prefix", "reports/", *ALL,
               "--expires", "90d", "--ip", "127.0.0.0/8", "--rate", "50")
    gid = gr["id"]
    assert gid.startswith("g-") and len(gr["access_key_id"]) == 20
    assert len(gr["secret_access_key"]) == 40
    listing = g.run("grant", "list").stdout
    assert gid in listing and "active" in listing
    assert gr["secret_access_key"] not in listing
    show = g.run("grant", "show", gid).stdout
    assert "reports/" in show and "127.0.0.0/8" in show
    assert gr["secret_access_key"] not in show
    # the secret is stored only encrypted
    db = sqlite3.connect(g.audit_db)
    (doc,) = db.execute("SELECT doc FROM grants WHERE id = ?",
                        (gid,)).fetchone()
    db.close()
    assert gr["secret_access_key"] not in doc
    # rotate: a new pair
    p = g.run("grant", "rotate", gid)
    new = dict(line.split(": ", 1) for line in p.stdout.splitlines()
               if ": " in line)
    assert new["access_key_id"].strip() != gr["access_key_id"]
    p = g.run("grant", "revoke", gid)
    assert "revoked" in p.stdout
    assert "revoked" in g.run("grant", "list").stdout
    p = g.run("grant", "rotate", gid, check=False)
    assert p.returncode == 1 and "revoked" in p.stderr
    # every change is an audit record in a chain that verifies
    ops = [r["operation"] for r in audit_grant(g, gid)]
    assert sorted(ops) == ["grant_create", "grant_revoke", "grant_rotate"]
    assert g.run("audit", "verify").returncode == 0
    # bad input: one line, non-zero
    for args in (["--name", "x", "--prefix", "a/", "--ops", "get,nope"],
                 ["--name", "x", "--prefix", "a/", "--ops", "get",
                  "--expires", "soon"],
                 ["--name", "x", "--prefix", "a/", "--ops", "get",
                  "--ip", "10.0.0.1/8"],
                 ["--name", "x", "--prefix", "../a/", "--ops", "get"],
                 ["--prefix", "a/", "--ops", "get"]):
        p = grant(g, *args, check=False)
        assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    # the S3 endpoint's multipart staging prefix is reserved
    for pre in (".gatekeeper-mpu/", ".gatekeeper-mpu/up/"):
        p = grant(g, "--name", "x", "--prefix", pre, "--ops", "get,put",
                  check=False)
        assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
        assert "--prefix .gatekeeper-mpu/ is reserved" in p.stderr, p.stderr
    assert g.run("grant", "list").stdout.count("active") == 0
    p = g.run("grant", "show", "g-000000000000", check=False)
    assert p.returncode == 1 and "no grant" in p.stderr


# ---- operations with boto3 on the fs store ---------------------------------

def check_empty_objects(c, P):
    """A 0-byte object lists, HEADs and GETs as S3 shows it."""
    c.put_object(Bucket=BUCKET, Key=P + "empty", Body=b"")
    h = c.head_object(Bucket=BUCKET, Key=P + "empty")
    assert h["ContentLength"] == 0
    o = c.get_object(Bucket=BUCKET, Key=P + "empty")
    assert o["Body"].read() == b"" and o["ContentLength"] == 0
    r = c.list_objects_v2(Bucket=BUCKET, Prefix=P + "empty")
    assert [(x["Key"], x["Size"]) for x in r["Contents"]] == [
        (P + "empty", 0)]
    r = c.list_objects(Bucket=BUCKET, Prefix=P + "empty")
    assert [x["Key"] for x in r["Contents"]] == [P + "empty"]
    c.delete_object(Bucket=BUCKET, Key=P + "empty")
    assert not exists(c, P + "empty")


def check_multipart(c, P):
    """Multipart uploads as S3: part-size rules, the multipart ETag,
    ListParts and ListMultipartUploads in pages, Complete, Abort."""
    import hashlib
    up = c.create_multipart_upload(Bucket=BUCKET, Key=P + "mp.bin")
    uid = up["UploadId"]
    p1 = os.urandom(5 * 1024 * 1024)
    p2 = os.urandom(1000)
    e1 = c.upload_part(Bucket=BUCKET, Key=P + "mp.bin", UploadId=uid,
                       PartNumber=1, Body=p1)["ETag"]
    e2 = c.upload_part(Bucket=BUCKET, Key=P + "mp.bin", UploadId=uid,
                       PartNumber=2, Body=p2)["ETag"]
    parts = c.list_parts(Bucket=BUCKET, Key=P + "mp.bin", UploadId=uid)
    assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2]
    ups = c.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [u["UploadId"] for u in ups] == [uid]
    assert not any(x["Key"].startswith(".gatekeeper") for x in
                   c.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    r = c.complete_multipart_upload(
        Bucket=BUCKET, Key=P + "mp.bin", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                   {"PartNumber": 2, "ETag": e2}]})
    md5s = hashlib.md5(bytes.fromhex(e1.strip('"')) +
                       bytes.fromhex(e2.strip('"'))).hexdigest()
    assert r["ETag"] == '"%s-2"' % md5s
    assert c.get_object(Bucket=BUCKET,
                        Key=P + "mp.bin")["Body"].read() == p1 + p2
    assert c.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    # a part under 5 MiB that is not the last
    up = c.create_multipart_upload(Bucket=BUCKET, Key=P + "small.bin")
    uid = up["UploadId"]
    es = [c.upload_part(Bucket=BUCKET, Key=P + "small.bin", UploadId=uid,
                        PartNumber=i, Body=b"y" * 100)["ETag"]
          for i in (1, 2)]
    with pytest.raises(CE) as e:
        c.complete_multipart_upload(
            Bucket=BUCKET, Key=P + "small.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": x}
                                       for i, x in enumerate(es)]})
    assert code(e) == "EntityTooSmall"
    with pytest.raises(CE) as e:
        c.complete_multipart_upload(
            Bucket=BUCKET, Key=P + "small.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"' +
                                        "0" * 32 + '"'}]})
    assert code(e) == "InvalidPart"
    c.abort_multipart_upload(Bucket=BUCKET, Key=P + "small.bin",
                             UploadId=uid)
    with pytest.raises(CE) as e:
        c.list_parts(Bucket=BUCKET, Key=P + "small.bin", UploadId=uid)
    assert code(e) == "NoSuchUpload"
    assert not exists(c, P + "small.bin")

    # paging: ListParts by max-parts, ListMultipartUploads by max-uploads
    up = c.create_multipart_upload(Bucket=BUCKET, Key=P + "pages.bin")
    uid = up["UploadId"]
    etags = {}
    for i in range(1, 6):
        etags[i] = c.upload_part(Bucket=BUCKET, Key=P + "pages.bin",
                                 UploadId=uid, PartNumber=i,
                                 Body=bytes([i]) * 10)["ETag"]
    # part 3 again, other bytes: the last one counts, listed once
    etags[3] = c.upload_part(Bucket=BUCKET, Key=P + "pages.bin",
                             UploadId=uid, PartNumber=3,
                             Body=b"z" * 20)["ETag"]
    r = c.list_parts(Bucket=BUCKET, Key=P + "pages.bin", UploadId=uid,
                     MaxParts=2)
    assert [p["PartNumber"] for p in r["Parts"]] == [1, 2]
    assert r["IsTruncated"] and r["NextPartNumberMarker"] == 2
    pages = list(c.get_paginator("list_parts").paginate(
        Bucket=BUCKET, Key=P + "pages.bin", UploadId=uid,
        PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    got = [(p["PartNumber"], p["ETag"], p["Size"]) for pg in pages
           for p in pg["Parts"]]
    assert got == [(i, etags[i], 20 if i == 3 else 10) for i in range(1, 6)]
    more = [c.create_multipart_upload(Bucket=BUCKET, Key=P + "u/%d" % i)[
        "UploadId"] for i in range(3)]
    pages = list(c.get_paginator("list_multipart_uploads").paginate(
        Bucket=BUCKET, Prefix=P, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 2 and pages[0]["IsTruncated"]
    listed = [(u["Key"], u["UploadId"]) for pg in pages
              for u in pg.get("Uploads", [])]
    assert listed == [(P + "pages.bin", uid)] + [
        (P + "u/%d" % i, more[i]) for i in range(3)]
    for i in range(3):
        c.abort_multipart_upload(Bucket=BUCKET, Key=P + "u/%d" % i,
                                 UploadId=more[i])
    c.abort_multipart_upload(Bucket=BUCKET, Key=P + "pages.bin",
                             UploadId=uid)
    assert c.list_multipart_uploads(Bucket=BUCKET, Prefix=P).get(
        "Uploads", []) == []


def test_boto3_operations_fs(gk_factory):
    g = s3gk(gk_factory).start()
    gr = grant(g, "--name", "app", "--prefix", "reports/", *ALL)
    c = client(g, gr)
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == [BUCKET]
    c.head_bucket(Bucket=BUCKET)
    with pytest.raises(CE) as e:
        c.head_bucket(Bucket="other")
    assert status(e) == 404
    assert c.get_bucket_location(Bucket=BUCKET).get(
        "LocationConstraint") in (None, "")

    data = os.urandom(100_000)
    r = c.put_object(Bucket=BUCKET, Key="reports/a.bin", Body=data)
    import hashlib
    assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    o = c.get_object(Bucket=BUCKET, Key="reports/a.bin")
    assert o["Body"].read() == data and o["ContentLength"] == len(data)
    etag = o["ETag"]
    o = c.get_object(Bucket=BUCKET, Key="reports/a.bin", Range="bytes=10-19")
    assert o["Body"].read() == data[10:20]
    assert o["ContentRange"] == "bytes 10-19/%d" % len(data)
    with pytest.raises(CE) as e:
        c.get_object(Bucket=BUCKET, Key="reports/a.bin",
                     Range="bytes=200000-")
    assert code(e) == "InvalidRange" and status(e) == 416
    with pytest.raises(CE) as e:
        c.get_object(Bucket=BUCKET, Key="reports/a.bin", IfNoneMatch=etag)
    assert status(e) == 304
    with pytest.raises(CE) as e:
        c.get_object(Bucket=BUCKET, Key="reports/a.bin", IfMatch='"x"')
    assert code(e) == "PreconditionFailed" and status(e) == 412
    future = datetime.datetime.utcnow() + datetime.timedelta(days=1)
    with pytest.raises(CE) as e:
        c.get_object(Bucket=BUCKET, Key="reports/a.bin",
                     IfModifiedSince=future)
    assert status(e) == 304
    h = c.head_object(Bucket=BUCKET, Key="reports/a.bin")
    assert h["ContentLength"] == len(data) and h["ETag"] == etag
    with pytest.raises(CE) as e:
        c.get_object(Bucket=BUCKET, Key="reports/none")
    assert code(e) == "NoSuchKey" and status(e) == 404

    # listings: v2 with delimiter, pages, start-after; v1 with marker
    for k in ("reports/b/1", "reports/b/2", "reports/c.txt", "reports/d"):
        c.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    r = c.list_objects_v2(Bucket=BUCKET, Prefix="reports/", Delimiter="/")
    assert [x["Key"] for x in r["Contents"]] == [
        "reports/a.bin", "reports/c.txt", "reports/d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["reports/b/"]
    keys, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = c.list_objects_v2(Bucket=BUCKET, Prefix="reports/", MaxKeys=2,
                              **kw)
        keys += [x["Key"] for x in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert keys == ["reports/a.bin", "reports/b/1", "reports/b/2",
                    "reports/c.txt", "reports/d"]
    r = c.list_objects_v2(Bucket=BUCKET, StartAfter="reports/b/2")
    assert [x["Key"] for x in r["Contents"]] == ["reports/c.txt",
                                                 "reports/d"]
    pages = c.get_paginator("list_objects").paginate(
        Bucket=BUCKET, Prefix="reports/", PaginationConfig={"PageSize": 2})
    assert [x["Key"] for p in pages for x in p.get("Contents", [])] == keys
    # a listing of the whole bucket shows only the grant's prefix
    c2 = client(g, grant(g, "--name", "o", "--prefix", "other/", *ALL))
    c2.put_object(Bucket=BUCKET, Key="other/secret", Body=b"s")
    r = c.list_objects_v2(Bucket=BUCKET)
    assert all(x["Key"].startswith("reports/") for x in r["Contents"])

    # copy within the grant, deletes
    c.copy_object(Bucket=BUCKET, Key="reports/copy.bin",
                  CopySource={"Bucket": BUCKET, "Key": "reports/a.bin"})
    assert c.get_object(Bucket=BUCKET,
                        Key="reports/copy.bin")["Body"].read() == data
    with pytest.raises(CE) as e:
        c.copy_object(Bucket=BUCKET, Key="reports/stolen",
                      CopySource={"Bucket": BUCKET, "Key": "other/secret"})
    assert code(e) == "AccessDenied"
    r = c.delete_objects(Bucket=BUCKET, Delete={"Objects": [
        {"Key": "reports/b/1"}, {"Key": "reports/b/2"},
        {"Key": "other/secret"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["reports/b/1",
                                                      "reports/b/2"]
    assert r["Errors"][0]["Key"] == "other/secret"
    assert r["Errors"][0]["Code"] == "AccessDenied"
    assert exists(c2, "other/secret")
    # what is not kept is refused, never done otherwise than asked: a
    # version (only "null" exists), a conditional write, an Object Lock,
    # an SSE-C key; the object stays as it was
    c.put_object(Bucket=BUCKET, Key="reports/b/v", Body=b"current")

    def s3call(method, path, body=b"", **headers):
        return send(signed(g, gr, method, "/%s/%s" % (BUCKET, path),
                           body=body, headers=headers))
    for method, path, body, headers, want in (
            ("GET", "reports/b/v?versionId=v1", b"", {}, 400),
            ("HEAD", "reports/b/v?versionId=v1", b"", {}, 400),
            ("DELETE", "reports/b/v?versionId=v1", b"", {}, 400),
            ("PUT", "reports/b/v", b"new", {"If-None-Match": "*"}, 501),
            ("PUT", "reports/b/v", b"new", {"If-Match": '"x"'}, 501),
            ("PUT", "reports/b/v", b"new",
             {"x-amz-object-lock-mode": "COMPLIANCE"}, 501),
            ("PUT", "reports/b/v", b"new", {
                "x-amz-server-side-encryption-customer-algorithm":
                "AES256"}, 501),
            ("GET", "reports/b/v", b"", {
                "x-amz-server-side-encryption-customer-algorithm":
                "AES256"}, 501),
            ("PUT", "reports/b/v", b"", {
                "x-amz-copy-source": BUCKET + "/reports/a.bin",
                "x-amz-copy-source-if-match": '"x"'}, 501),
            ("PUT", "reports/b/v", b"", {
                "x-amz-copy-source": BUCKET + "/reports/a.bin?versionId=v1"},
             400)):
        r = s3call(method, path, body, **headers)
        assert r.status_code == want, (method, path, headers, r.content)
        assert method == "HEAD" or (b"<Code>%s</Code>" % (
            b"InvalidArgument" if want == 400 else b"NotImplemented")
            in r.content), r.content
    # every checksum sent is checked, or the request refused: a second
    # one (S3 refuses it) would have gone unchecked
    crc_ok, sha1_bad = "NSRBwg==", "A" * 27 + "="     # of b"abc"
    r = s3call("PUT", "reports/b/v", b"abc", **{
        "x-amz-checksum-crc32": crc_ok, "x-amz-checksum-sha1": sha1_bad})
    assert r.status_code == 400, r.content
    assert b"<Code>InvalidRequest</Code>" in r.content
    # CRC64NVME (the full-object checksum of newer AWS SDKs) is checked:
    # a wrong one stores nothing, the right one stores the bytes
    crc64 = base64.b64encode(crc64nvme(b"abc").to_bytes(8, "big")).decode()
    for key, value, want in (("reports/b/x", "AAAAAAAAAAA=", 400),
                             ("reports/b/x", crc_ok, 400),
                             ("reports/b/w", crc64, 200)):
        r = s3call("PUT", key, b"abc", **{"x-amz-checksum-crc64nvme": value})
        assert r.status_code == want, (value, r.content)
        assert want == 200 or b"<Code>BadDigest</Code>" in r.content
    assert not exists(c, "reports/b/x")
    r = s3call("PUT", "reports/b/w", b"abc", **{"x-amz-checksum-crc32":
                                                crc_ok})
    assert r.status_code == 200, r.content
    assert c.get_object(Bucket=BUCKET, Key="reports/b/w")["Body"].read() == \
        b"abc"
    c.delete_object(Bucket=BUCKET, Key="reports/b/w")
    r = send(signed(g, gr, "POST", "/%s?delete" % BUCKET, body=(
        b"<Delete><Object><Key>reports/b/v</Key><VersionId>v1</VersionId>"
        b"</Object></Delete>")))
    assert r.status_code == 400 and b"InvalidArgument" in r.content
    assert c.get_object(Bucket=BUCKET, Key="reports/b/v")["Body"].read() == \
        b"current"
    r = s3call("GET", "reports/b/v?versionId=null")
    assert (r.status_code, r.content) == (200, b"current")
    c.delete_object(Bucket=BUCKET, Key="reports/b/v")
    # S3 takes at most 1000 keys in one DeleteObjects: 1001 is
    # MalformedXML and deletes nothing
    c.put_object(Bucket=BUCKET, Key="reports/b/keep", Body=b"k")
    xml = ("<Delete>%s</Delete>" % "".join(
        "<Object><Key>reports/b/keep</Key></Object>" for _ in range(1001))
    ).encode()
    r = send(signed(g, gr, "POST", "/%s?delete" % BUCKET, body=xml))
    assert r.status_code == 400 and b"<Code>MalformedXML</Code>" in r.content
    assert exists(c, "reports/b/keep")
    c.delete_object(Bucket=BUCKET, Key="reports/b/keep")
    c.delete_object(Bucket=BUCKET, Key="reports/copy.bin")
    assert not exists(c, "reports/copy.bin")

    check_empty_objects(c, "reports/")
    check_multipart(c, "reports/")

    # unsupported operations: NotImplemented in S3's XML
    with pytest.raises(CE) as e:
        c.get_bucket_acl(Bucket=BUCKET)
    assert code(e) == "NotImplemented" and status(e) == 501
    # presigned GET (SigV4 query)
    url = c.generate_presigned_url("get_object", Params={
        "Bucket": BUCKET, "Key": "reports/a.bin"}, ExpiresIn=60)
    import requests
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == data
    r = requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"),
                     timeout=30)
    assert r.status_code in (400, 403)
    # virtual-host addressing on the s3api port
    r = requests.get(g.s3url + "/", timeout=30)
    assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content

    # one audit record per request, with the grant id; request id = record
    rows = audit_grant(g, gr["id"])
    ops = {row["operation"] for row in rows}
    assert {"PutObject", "GetObject", "ListObjectsV2", "CopyObject",
            "DeleteObjects", "CompleteMultipartUpload",
            "UploadPart"} <= ops
    assert all(row["protocol"] == "s3api" for row in rows
               if row["operation"] != "grant_create")
    # a DeleteObjects names what it deleted (path: the keys' common
    # prefix; message: the keys), so a search for an object finds it
    row, = [x for x in rows if x["operation"] == "DeleteObjects" and
            x["decision"] == "allow"]
    assert (row["path"], row["message"]) == (
        "reports/b/", "Success: 2 keys deleted: reports/b/1, reports/b/2")
    p = g.run("audit", "search", "--path-prefix", "reports/b/",
              "--op", "DeleteObjects", "--decision", "allow", "--format",
              "json")
    assert json.loads(p.stdout)["request_id"] == row["request_id"]
    assert g.run("audit", "verify").returncode == 0


def test_boto3_multipart_rgw(rgw, gk_factory):
    """The s3 store maps multipart uploads onto the bucket's own: the same
    answers as on fs, and no part left in the customer's bucket."""
    bucket = rgw.new_bucket()
    settings = rgw.gk_settings(bucket, gk_factory().dir, s3__mode="proxy")
    g = s3gk(gk_factory, **settings).start()
    c = client(g, grant(g, "--name", "mp", "--prefix", "m/", *ALL))
    check_empty_objects(c, "m/")
    check_multipart(c, "m/")
    keys = [o["Key"] for o in rgw.client().list_objects_v2(
        Bucket=bucket).get("Contents", [])]
    assert sorted(keys) == ["m/mp.bin"]
    assert rgw.client().list_multipart_uploads(Bucket=bucket).get(
        "Uploads", []) == []


def test_part_number_one_part(gk_factory):
    """Part boundaries are not kept: every object is one part. Part 1 is
    the whole object (206, x-amz-mp-parts-count 1); part 2 and later are
    InvalidPartNumber, never the whole object again (a client fetching
    parts 1..N would assemble N copies)."""
    g = s3gk(gk_factory).start()
    gr = grant(g, "--name", "parts", "--prefix", "p/", *ALL)
    c = client(g, gr)
    data = os.urandom(70_000)
    c.put_object(Bucket=BUCKET, Key="p/a.bin", Body=data)
    o = c.get_object(Bucket=BUCKET, Key="p/a.bin", PartNumber=1)
    assert o["Body"].read() == data
    assert o["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert o["PartsCount"] == 1 and o["ContentLength"] == len(data)
    assert o["ContentRange"] == "bytes 0-%d/%d" % (len(data) - 1, len(data))
    h = c.head_object(Bucket=BUCKET, Key="p/a.bin", PartNumber=1)
    assert h["PartsCount"] == 1 and h["ContentLength"] == len(data)
    for n in (2, 3, 10000):
        with pytest.raises(CE) as e:
            c.get_object(Bucket=BUCKET, Key="p/a.bin", PartNumber=n)
        assert code(e) == "InvalidPartNumber" and status(e) == 416
    with pytest.raises(CE) as e:
        c.head_object(Bucket=BUCKET, Key="p/a.bin", PartNumber=2)
    assert status(e) == 416
    # an empty object is one empty part (200: no byte range to name)
    c.put_object(Bucket=BUCKET, Key="p/empty", Body=b"")
    o = c.get_object(Bucket=BUCKET, Key="p/empty", PartNumber=1)
    assert o["Body"].read() == b"" and o["PartsCount"] == 1
    # not a part number; with a Range
    for bad in ("0", "-1", "abc", "10001", "", "1.0"):
        r = send(signed(g, gr, "GET", "/%s/p/a.bin?partNumber=%s"
                        % (BUCKET, bad)))
        assert r.status_code == 400, bad
        assert "<Code>InvalidArgument</Code>" in r.text, bad
        assert data not in r.content
    with pytest.raises(CE) as e:
        c.get_object(Bucket=BUCKET, Key="p/a.bin", PartNumber=1,
                     Range="bytes=0-9")
    assert code(e) == "InvalidRequest" and status(e) == 400
    # a missing object is still NoSuchKey
    with pytest.raises(CE) as e:
        c.get_object(Bucket=BUCKET, Key="p/none", PartNumber=2)
    assert code(e) == "NoSuchKey"
    rows = [r for r in audit_grant(g, gr["id"])
            if r["operation"] == "GetObject"]
    ok = [r for r in rows if r["decision"] == "allow"]
    # the empty one: 200, as a byte range of nothing cannot be written
    assert sorted((r["status"], r["bytes"]) for r in ok) == [
        (200, 0), (206, len(data))]
    denied = [r for r in rows if r["decision"] == "deny"]
    assert sum("InvalidPartNumber" in r["message"] for r in denied) == 3
    assert sum("InvalidArgument" in r["message"] for r in denied) == 6
    assert sum("InvalidRequest" in r["message"] for r in denied) == 1


def test_several_range_fields_refused(gk_factory):
    """Range is one field (RFC 9110): two are InvalidArgument, not the
    first one's bytes."""
    g = s3gk(gk_factory).start()
    gr = grant(g, "--name", "rng", "--prefix", "r/", *ALL)
    data = os.urandom(5000)
    client(g, gr).put_object(Bucket=BUCKET, Key="r/a.bin", Body=data)

    def raw(method, *ranges):
        p = signed(g, gr, method, "/%s/r/a.bin" % BUCKET).prepare()
        req = "%s /%s/r/a.bin HTTP/1.1\r\n" % (method, BUCKET)
        if "host" not in {k.lower() for k in p.headers}:
            req += "Host: 127.0.0.1:%d\r\n" % g.s3port
        req += "".join("%s: %s\r\n" % kv for kv in p.headers.items())
        req += "".join("Range: %s\r\n" % v for v in ranges)
        req += "Connection: close\r\n\r\n"
        out, _, _ = exchange(g.s3port, req.encode())
        (resp,) = responses(out, head_only=method == "HEAD")
        return resp

    st, h, body = raw("GET", "bytes=0-9", "bytes=20-29")
    assert st == 400 and b"<Code>InvalidArgument</Code>" in body
    assert data[0:10] not in body and data[20:30] not in body
    st, h, body = raw("HEAD", "bytes=0-9", "bytes=20-29")
    assert st == 400
    st, h, body = raw("GET", "bytes=20-29")
    assert st == 206 and body == data[20:30]
    denied = [r for r in audit_grant(g, gr["id"])
              if r["operation"] in ("GetObject", "HeadObject")
              and r["decision"] == "deny"]
    assert len(denied) == 2
    assert all(r["status"] == 400 and "Range" in r["message"]
               for r in denied)


def test_vhost_addressing_by_host_name(gk_factory):
    """[s3api] host: BUCKET.host is the bucket (virtual-host style), host
    alone is path style; other hosts reach the ordinary routes."""
    import requests
    g = gk_factory(s3api__enabled="true", s3api__host="s3.local",
                   s3api__bucket=BUCKET).start()
    gr = grant(g, "--name", "v", "--prefix", "", *ALL)

    def call(method, host, path, body=b""):
        g.s3url = "http://%s:%d" % (host, g.port)
        req = signed(g, gr, method, path, body=body)
        p = req.prepare()
        return requests.request(
            method, "http://127.0.0.1:%d%s" % (g.port, path), data=body,
            headers=dict(p.headers, Host="%s:%d" % (host, g.port)),
            timeout=30)

    r = call("PUT", "vault.s3.local", "/v/k.txt", b"vhost")
    assert r.status_code == 200, r.text
    r = call("GET", "vault.s3.local", "/v/k.txt")
    assert r.status_code == 200 and r.content == b"vhost"
    r = call("GET", "s3.local", "/vault/v/k.txt")
    assert r.status_code == 200 and r.content == b"vhost"
    r = call("GET", "other.s3.local", "/v/k.txt")
    assert r.status_code == 404 and b"NoSuchBucket" in r.content
    # the ordinary routes still answer on the main port for other hosts
    assert requests.get(g.base + "/healthz", timeout=10).status_code == 200


# ---- scope ------------------------------------------------------------------

def test_scope_refusals_audited(gk_factory):
    g = s3gk(gk_factory).start()
    full = client(g, grant(g, "--name", "admin", "--prefix", "", *ALL))
    full.put_object(Bucket=BUCKET, Key="in/a", Body=b"a")
    full.put_object(Bucket=BUCKET, Key="inside", Body=b"b")
    gr = grant(g, "--name", "ro", "--prefix", "in/", "--ops", "get,list")
    c = client(g, gr)
    assert c.get_object(Bucket=BUCKET, Key="in/a")["Body"].read() == b"a"
    # just outside the prefix ("inside" shares the bytes "in")
    for call in (lambda: c.get_object(Bucket=BUCKET, Key="inside"),
                 lambda: c.head_object(Bucket=BUCKET, Key="inside"),
                 lambda: c.list_objects_v2(Bucket=BUCKET, Prefix="ins"),
                 lambda: c.copy_object(
                     Bucket=BUCKET, Key="in/c",
                     CopySource={"Bucket": BUCKET, "Key": "inside"})):
        with pytest.raises(CE) as e:
            call()
        assert status(e) == 403
    # operations the grant does not hold
    for call in (lambda: c.put_object(Bucket=BUCKET, Key="in/new",
                                      Body=b"x"),
                 lambda: c.delete_object(Bucket=BUCKET, Key="in/a"),
                 lambda: c.create_multipart_upload(Bucket=BUCKET,
                                                   Key="in/m")):
        with pytest.raises(CE) as e:
            call()
        assert code(e) == "AccessDenied"
    assert exists(full, "in/a") and not exists(full, "in/new")
    denied = [r for r in audit_grant(g, gr["id"])
              if r["decision"] == "deny"]
    assert len(denied) >= 7
    assert all(r["status"] == 403 and "AccessDenied" in r["message"]
               for r in denied)

    # expiry
    ex = grant(g, "--name", "short", "--prefix", "in/", "--ops", "get",
               "--expires", "1s")
    time.sleep(2.1)
    with pytest.raises(CE) as e:
        client(g, ex).get_object(Bucket=BUCKET, Key="in/a")
    assert code(e) == "AccessDenied"
    (row,) = [r for r in audit_grant(g, ex["id"])
              if r["operation"] == "GetObject"]
    assert row["decision"] == "deny" and "expired" in row["message"]
    # revocation
    rv = grant(g, "--name", "gone", "--prefix", "in/", "--ops", "get")
    client(g, rv).get_object(Bucket=BUCKET, Key="in/a")
    g.run("grant", "revoke", rv["id"])
    with pytest.raises(CE) as e:
        client(g, rv).get_object(Bucket=BUCKET, Key="in/a")
    assert code(e) == "InvalidAccessKeyId"
    # an unknown key
    with pytest.raises(CE) as e:
        client(g, {"access_key_id": "GKAAAAAAAAAAAAAAAAAA",
                   "secret_access_key": "x" * 40}).list_buckets()
    assert code(e) == "InvalidAccessKeyId"
    # the grant's own addresses
    ip = grant(g, "--name", "far", "--prefix", "in/", "--ops", "get",
               "--ip", "10.0.0.0/8")
    with pytest.raises(CE) as e:
        client(g, ip).get_object(Bucket=BUCKET, Key="in/a")
    assert code(e) == "AccessDenied"
    (row,) = [r for r in audit_grant(g, ip["id"])
              if r["operation"] == "GetObject"]
    assert "address" in row["message"]
    # the grant's own rate
    rt = grant(g, "--name", "slow", "--prefix", "in/", "--ops", "get",
               "--rate", "1")
    rc = client(g, rt)
    codes = []
    for _ in range(6):
        try:
            rc.get_object(Bucket=BUCKET, Key="in/a")
            codes.append("ok")
        except CE as err:
            codes.append(err.response["Error"]["Code"])
    assert "SlowDown" in codes and codes[0] == "ok"


def test_customer_ip_lists_apply(gk_factory):
    g = s3gk(gk_factory, acl__ip_allow="10.0.0.0/8").start()
    gr = grant(g, "--name", "x", "--prefix", "", *ALL)
    with pytest.raises(CE) as e:
        client(g, gr).list_objects_v2(Bucket=BUCKET)
    assert code(e) == "AccessDenied"
    (row,) = [r for r in audit_grant(g, gr["id"])
              if r["operation"] == "ListObjectsV2"]
    assert row["decision"] == "deny" and "ACL" in row["message"]


def test_revoke_on_a_second_instance_postgres(gk_factory, pg_server):
    a = s3gk(gk_factory, backend=pg_server).start()
    dsn = None
    with open(a.config) as f:
        for line in f:
            if line.startswith("dsn"):
                dsn = line.split("=", 1)[1].strip()
    b = s3gk(gk_factory, audit__backend="postgres", audit__dsn=dsn)
    # the same grant key on both instances
    shutil.copy(os.path.join(a.data, "keys", "grant.key"),
                os.path.join(b.data, "keys", "grant.key"))
    b.pg, b.pgdb = a.pg, a.pgdb
    b.start()
    gr = grant(a, "--name", "shared", "--prefix", "s/", *ALL)
    ca, cb = client(a, gr), client(b, gr)
    ca.put_object(Bucket=BUCKET, Key="s/x", Body=b"1")
    cb.put_object(Bucket=BUCKET, Key="s/y", Body=b"2")
    a.run("grant", "revoke", gr["id"])
    t0 = time.monotonic()
    while True:
        try:
            cb.head_bucket(Bucket=BUCKET)
        except CE:
            break
        assert time.monotonic() - t0 < 1.0, "still allowed after 1 s"
        time.sleep(0.05)
    with pytest.raises(CE) as e:
        cb.put_object(Bucket=BUCKET, Key="s/z", Body=b"3")
    assert code(e) == "InvalidAccessKeyId"
    rows = a.pg_query("SELECT operation, decision FROM audit WHERE kid = ?"
                      " AND operation = 'PutObject' ORDER BY id",
                      (gr["id"],))
    assert [r["decision"] for r in rows] == ["allow", "allow", "deny"]


# ---- signatures -----------------------------------------------------------------

def test_signature_refusals_store_nothing(gk_factory):
    g = s3gk(gk_factory).start()
    gr = grant(g, "--name", "sig", "--prefix", "", *ALL)
    c = client(g, gr)
    # wrong secret
    with pytest.raises(CE) as e:
        client(g, gr, secret="y" * 40).put_object(Bucket=BUCKET, Key="w1",
                                                  Body=b"x")
    assert code(e) == "SignatureDoesNotMatch" and status(e) == 403
    # a signed header changed after signing
    req = signed(g, gr, "PUT", "/%s/w2" % BUCKET, body=b"data",
                 headers={"x-amz-meta-owner": "alice"})
    r = send(req, headers={"x-amz-meta-owner": "mallory"})
    assert r.status_code == 403 and b"SignatureDoesNotMatch" in r.content
    # the same request unchanged is accepted (the test can fail)
    req = signed(g, gr, "PUT", "/%s/w2ok" % BUCKET, body=b"data",
                 headers={"x-amz-meta-owner": "alice"})
    assert send(req).status_code == 200
    # a body changed after signing its hash
    req = signed(g, gr, "PUT", "/%s/w3" % BUCKET, body=b"original")
    r = send(req, body=b"tampered")
    assert r.status_code == 400 and b"XAmzContentSHA256Mismatch" in r.content
    # a skewed clock
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=16)
    req = signed(g, gr, "PUT", "/%s/w4" % BUCKET, body=b"x", when=old)
    r = send(req)
    assert r.status_code == 403 and b"RequestTimeTooSkewed" in r.content
    ok = datetime.datetime.utcnow() - datetime.timedelta(minutes=14)
    req = signed(g, gr, "PUT", "/%s/w4ok" % BUCKET, body=b"x", when=ok)
    assert send(req).status_code == 200
    # streaming: every chunk signed; one modified chunk
    chunks = [os.urandom(70_000), os.urandom(65_536), os.urandom(10)]
    r = streaming_put(g, gr, "w5ok", chunks)
    assert r.status_code == 200, r.text
    assert c.get_object(Bucket=BUCKET, Key="w5ok")["Body"].read() == \
        b"".join(chunks)
    r = streaming_put(g, gr, "w5", chunks, tamper=lambda i, d: (
        d[:-1] + bytes([d[-1] ^ 1]) if i == 1 else d))
    assert r.status_code == 403 and b"SignatureDoesNotMatch" in r.content
    # a checksum header (x-amz-checksum-crc32) that does not match
    import zlib
    good = base64.b64encode(zlib.crc32(b"sum me").to_bytes(4, "big"))
    req = signed(g, gr, "PUT", "/%s/w6ok" % BUCKET, body=b"sum me",
                 headers={"x-amz-checksum-crc32": good.decode()})
    assert send(req).status_code == 200
    req = signed(g, gr, "PUT", "/%s/w6" % BUCKET, body=b"sum me",
                 headers={"x-amz-checksum-crc32": "AAAAAA=="})
    r = send(req)
    assert r.status_code == 400 and b"BadDigest" in r.content
    for k in ("w1", "w2", "w3", "w4", "w5", "w6"):
        assert not exists(c, k), k
    assert exists(c, "w2ok") and exists(c, "w4ok") and exists(c, "w6ok")
    rows = audit_grant(g, gr["id"])
    refused = [r for r in rows if r["decision"] == "deny"]
    assert {"SignatureDoesNotMatch", "XAmzContentSHA256Mismatch",
            "RequestTimeTooSkewed"} <= {r["message"].split(":")[0]
                                        for r in refused}
    # no secret in the log
    with open(g.log) as f:
        assert gr["secret_access_key"] not in f.read()


def test_refused_request_body_not_read(gk_factory, tmp_path):
    """A request refused at its head is answered at once with S3's error
    and its body is not read (the connection closes after the answer)."""
    import socket
    g = s3gk(gk_factory).start()
    gr = grant(g, "--name", "early", "--prefix", "e/", *ALL)
    # a 1 GiB PUT whose head is refused: the answer comes before any body
    head = ("PUT /%s/e/big HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Length: %d\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD"
            "\r\nx-amz-date: 20260101T000000Z\r\nAuthorization: "
            "AWS4-HMAC-SHA256 Credential=GKNOSUCHKEY0000000000/20260101/"
            "us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, "
            "Signature=%s\r\n\r\n" % (BUCKET, g.s3port, 1 << 30, "0" * 64))
    with socket.create_connection(("127.0.0.1", g.s3port), timeout=10) as so:
        so.sendall(head.encode())
        got = b""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            d = so.recv(65536)
            if not d:
                break	# closed after the answer
            got += d
    assert got.startswith(b"HTTP/1.1 403"), got[:200]
    assert b"<Code>InvalidAccessKeyId</Code>" in got
    assert time.monotonic() - t0 < 10, "the connection stayed open"
    # the clients see S3's error: boto3 and awscli with a wrong secret
    body = os.urandom(20 * 1024 * 1024)
    with pytest.raises(CE) as e:
        client(g, gr, secret="y" * 40).put_object(Bucket=BUCKET,
                                                  Key="e/w", Body=body)
    assert code(e) == "SignatureDoesNotMatch" and status(e) == 403
    f = tmp_path / "big.bin"
    f.write_bytes(body)
    env = dict(tool_env(g, gr), AWS_SECRET_ACCESS_KEY="y" * 40)
    p = run_tool(["aws", "--endpoint-url", g.s3url, "s3api", "put-object",
                  "--bucket", BUCKET, "--key", "e/w", "--body", str(f)],
                 env=env)
    assert p.returncode != 0 and "SignatureDoesNotMatch" in p.stderr, \
        p.stderr
    # a key outside the grant: AccessDenied, nothing stored
    with pytest.raises(CE) as e:
        client(g, gr).put_object(Bucket=BUCKET, Key="x/w", Body=body)
    assert code(e) == "AccessDenied"
    assert not exists(client(g, gr), "e/w")
    ops = [r["message"].split(":")[0] for r in audit_grant(g, gr["id"])
           if r["decision"] == "deny"]
    assert ops.count("SignatureDoesNotMatch") >= 2 and "AccessDenied" in ops


# ---- real clients ---------------------------------------------------------------

def tool_env(g, gr):
    return {"AWS_ACCESS_KEY_ID": gr["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": gr["secret_access_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def run_clients(g, gr, tmp_path, prefix):
    env = tool_env(g, gr)
    src = tmp_path / "src"
    src.mkdir()
    big = os.urandom(12 * 1024 * 1024 + 3)
    (src / "big.bin").write_bytes(big)
    (src / "small.txt").write_bytes(b"hello")
    (src / "sub").mkdir()
    (src / "sub" / "n.txt").write_bytes(b"nested")
    aws = ["/usr/bin/aws", "--endpoint-url", g.s3url]
    # awscli: multipart upload, download, ls, rm
    p = run_tool(aws + ["s3", "cp", "--only-show-errors",
                        str(src / "big.bin"),
                        "s3://%s/%sbig.bin" % (BUCKET, prefix)], env)
    assert p.returncode == 0, p.stderr
    p = run_tool(aws + ["s3", "cp", "--only-show-errors",
                        "s3://%s/%sbig.bin" % (BUCKET, prefix),
                        str(tmp_path / "big.out")], env)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "big.out").read_bytes() == big
    p = run_tool(aws + ["s3", "ls", "s3://%s/%s" % (BUCKET, prefix)], env)
    assert p.returncode == 0 and "big.bin" in p.stdout, p.stderr
    # rclone: copy (multipart), check, sync
    conf = tmp_path / "rclone.conf"
    conf.write_text("[gk]\ntype = s3\nprovider = Other\n"
                    "access_key_id = %s\nsecret_access_key = %s\n"
                    "endpoint = %s\nregion = us-east-1\n"
                    "force_path_style = true\nno_check_bucket = true\n"
                    "upload_cutoff = 5M\nchunk_size = 5M\n" % (
                        gr["access_key_id"], gr["secret_access_key"],
                        g.s3url))
    rc = ["rclone", "--config", str(conf), "--retries", "1",
          "--low-level-retries", "1"]
    dst = "gk:%s/%src" % (BUCKET, prefix)
    p = run_tool(rc + ["copy", str(src), dst])
    assert p.returncode == 0, p.stderr
    p = run_tool(rc + ["check", str(src), dst])
    assert p.returncode == 0, p.stderr
    (src / "small.txt").unlink()
    p = run_tool(rc + ["sync", str(src), dst])
    assert p.returncode == 0, p.stderr
    p = run_tool(rc + ["lsf", "-R", dst])
    assert sorted(p.stdout.split()) == ["big.bin", "sub/", "sub/n.txt"]
    # s3cmd: put, get, ls, del, sync
    cfg = tmp_path / "s3cfg"
    host = g.s3url.split("//")[1]
    cfg.write_text("[default]\naccess_key = %s\nsecret_key = %s\n"
                   "host_base = %s\nhost_bucket = %s\nuse_https = False\n"
                   "signature_v2 = False\nbucket_location = us-east-1\n"
                   "check_ssl_certificate = False\n" % (
                       gr["access_key_id"], gr["secret_access_key"], host,
                       host))
    s3c = ["s3cmd", "-c", str(cfg), "--no-progress"]
    base = "s3://%s/%ss3cmd/" % (BUCKET, prefix)
    p = run_tool(s3c + ["put", str(src / "sub" / "n.txt"), base + "n.txt"])
    assert p.returncode == 0, p.stderr
    p = run_tool(s3c + ["get", "--force", base + "n.txt",
                        str(tmp_path / "n.out")])
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "n.out").read_bytes() == b"nested"
    p = run_tool(s3c + ["ls", base])
    assert p.returncode == 0 and "n.txt" in p.stdout, p.stderr
    p = run_tool(s3c + ["sync", str(src / "sub") + "/", base + "sync/"])
    assert p.returncode == 0, p.stderr
    p = run_tool(s3c + ["del", base + "n.txt"])
    assert p.returncode == 0, p.stderr
    p = run_tool(s3c + ["ls", base])
    assert "n.txt" not in p.stdout.replace("sync/", "")
    # the AWS SDK for JavaScript v3: aws-chunked body, CRC32 trailer
    js = os.path.join(JS, "sdk_s3.mjs")
    p = run_tool(["node", js, g.s3url, BUCKET, prefix + "js.bin",
                  gr["access_key_id"], gr["secret_access_key"]], cwd=JS)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out.get("same") is True, p.stdout + p.stderr
    p = run_tool(["node", js, g.s3url, BUCKET, prefix + "js-bad.bin",
                  gr["access_key_id"], gr["secret_access_key"], "bad"],
                 cwd=JS)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out.get("error") == "BadDigest" and out.get("status") == 400
    return env


JS = os.path.join(ROOT, "tests", "e2e", "js")


@pytest.fixture(scope="module")
def js_sdk():
    # make e2e installs it (make js-deps); a direct pytest run may not have
    if not os.path.isdir(os.path.join(JS, "node_modules", "@aws-sdk",
                                      "client-s3")):
        p = run_tool(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS,
                     timeout=600)
        assert p.returncode == 0, "npm ci failed: " + p.stderr[-2000:]


def test_real_clients_fs(gk_factory, tmp_path, js_sdk):
    g = s3gk(gk_factory).start()
    gr = grant(g, "--name", "tools", "--prefix", "t/", *ALL)
    run_clients(g, gr, tmp_path, "t/")
    c = client(g, gr)
    assert not exists(c, "t/js-bad.bin")
    ops = {r["operation"] for r in audit_grant(g, gr["id"])}
    assert {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
            "PutObject", "GetObject", "DeleteObject"} <= ops


def test_real_clients_rgw(rgw, gk_factory, tmp_path, js_sdk):
    bucket = rgw.new_bucket()
    settings = rgw.gk_settings(bucket, gk_factory().dir, s3__mode="proxy")
    g = s3gk(gk_factory, **settings).start()
    gr = grant(g, "--name", "tools", "--prefix", "t/", *ALL)
    run_clients(g, gr, tmp_path, "t/")
    # the objects are in the customer's bucket, under their keys
    keys = [o["Key"] for o in rgw.client().list_objects_v2(
        Bucket=bucket).get("Contents", [])]
    assert "t/big.bin" in keys and "t/js.bin" in keys
    assert not any(k.startswith(".gatekeeper-mpu/") for k in keys)
