"""With the s3 store, signed audit checkpoints are also put to the
customer's bucket under [audit] checkpoint_prefix (against Ceph RGW)."""
import json
import os



def test_checkpoints_put_to_the_bucket(rgw, gk_factory):
    bucket = rgw.new_bucket()
    settings = rgw.gk_settings(bucket, gk_factory().dir)
    settings.update({"audit__checkpoint_prefix": "audit/checkpoints",
                     "audit__checkpoint_records": "2"})
    g = gk_factory(**settings).start()
    for i in range(5):
        r = g.get("app", "/a/%d.txt" % i, "PUT_Object")
        assert r.status_code == 200, r.text
    assert g.stop() == 0
    with open(os.path.join(g.data, "audit-checkpoints.log")) as f:
        lines = [l.strip() for l in f if l.strip()]
    # every 2 records, and the tail at shutdown
    assert len(lines) == 3
    s3 = rgw.client()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="audit/checkpoints/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    want = []
    for l in lines:
        cp = json.loads(l)
        want.append("audit/checkpoints/%s/%020d.json" % (cp["instance"],
                                                         cp["seq"]))
    assert keys == sorted(want)
    for k, l in zip(sorted(want), sorted(lines, key=lambda l: json.loads(l)["seq"])):
        body = s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode()
        assert body == l + "\n"
    # and the log verifies against the same checkpoints
    p = g.run("audit", "verify", check=False)
    assert p.returncode == 0, p.stdout


def test_checkpoint_prefix_needs_the_s3_store(tmp_path):
    import subprocess
    from conftest import BIN
    for prefix, err in (("cp", "checkpoint_prefix needs [store] type = s3"),
                        ("/cp", "checkpoint_prefix may hold only")):
        ini = tmp_path / "g.ini"
        ini.write_text("[gate]\ndata_dir = %s\n[store]\ntype = %s\n"
                       "[s3]\nbucket = b\n[audit]\ncheckpoint_prefix = %s\n" %
                       (tmp_path / "data", "fs" if prefix == "cp" else "s3",
                        prefix))
        p = subprocess.run([BIN, "check-config", "--config", str(ini)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and err in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
