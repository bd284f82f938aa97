"""Shared S3 test helpers: the awkward keys, the botocore oracle, and the
Ceph RADOS Gateway started once per test session."""
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORACLE = os.path.join(ROOT, "tests", "oracle", "s3-oracle.py")
RGW_START = os.path.join(ROOT, "tests", "rgw", "start-rgw.sh")
RGW_STOP = os.path.join(ROOT, "tests", "rgw", "stop-rgw.sh")

# The keys that break other gateways (issue 3, item 1).
AWKWARD = [
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal.txt",
    "equals=and&amp.txt",
    "question?mark.txt",
    "hash#tag.txt",
    "bang!star*quote'(paren).txt",
    "tilde~file.txt",
    "caf\u00e9.txt",
    "\u65e5\u672c/\u6587\u66f8.txt",
    "emoji \U0001F600.txt",
    "dir/sub dir/x+y=z.txt",
]


def long_key(prefix, total=1024):
    """A key of exactly total UTF-8 bytes starting with prefix."""
    base = prefix.encode()
    return (base + b"k" * (total - len(base))).decode()


def oracle(*args):
    p = subprocess.run(["/usr/bin/python3", ORACLE] + list(args),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def tool_bin():
    gk = os.environ.get("GK_BIN", os.path.join(ROOT, "build", "gatekeeper"))
    return os.path.join(os.path.dirname(os.path.abspath(gk)), "tests",
                        "test_s3")


# -- the test S3 server: Ceph RGW, one per test session --------------------
import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402


class Rgw:
    def __init__(self, env, d):
        self.endpoint = env["S3_ENDPOINT"]
        self.access_key = env["S3_ACCESS_KEY"]
        self.secret_key = env["S3_SECRET_KEY"]
        self.region = env["S3_REGION"]
        self.dir = d
        self.n = 0

    def client(self, **kw):
        import boto3
        import botocore.config
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=kw.get("access_key", self.access_key),
            aws_secret_access_key=kw.get("secret_key", self.secret_key),
            config=botocore.config.Config(
                signature_version="s3v4", s3={"addressing_style": "path"}))

    def new_bucket(self, prefix="gk"):
        self.n += 1
        name = "%s-%d-%d" % (prefix, os.getpid(), self.n)
        self.client().create_bucket(Bucket=name)
        return name

    def gk_settings(self, bucket, tmpdir, **extra):
        """gk_factory keyword settings for a gatekeeper on this bucket."""
        sk = os.path.join(tmpdir, "s3.secret")
        with open(sk, "w") as f:
            f.write(extra.pop("secret", self.secret_key) + "\n")
        os.chmod(sk, 0o600)
        s = {"store__type": "s3", "s3__bucket": bucket,
             "s3__endpoint": self.endpoint, "s3__path_style": "true",
             "s3__region": self.region,
             "s3__access_key_id": extra.pop("access_key", self.access_key),
             "s3__secret_key_file": sk, "s3__imds": "false",
             "s3__container_credentials": "false"}
        s.update(extra)
        return s


@pytest.fixture(scope="session")
def rgw():
    """Starts Ceph's RADOS Gateway once (tests/rgw/start-rgw.sh) in its own
    directory and stops it, with everything it started, at the end."""
    d = tempfile.mkdtemp(prefix="gk-rgw-e2e-")
    env = dict(os.environ, GK_RGW_DIR=d)
    p = subprocess.run(["bash", RGW_START], env=env, capture_output=True,
                       text=True, timeout=900)
    try:
        assert p.returncode == 0, "start-rgw.sh failed: %s" % p.stderr[-2000:]
        line = p.stdout.strip().splitlines()[-1]
        vals = dict(kv.split("=", 1) for kv in line.split())
        # RGW refuses x-amz-server-side-encryption over plain HTTP; a real
        # endpoint is HTTPS. Lift that on this loopback test server only.
        c = subprocess.run(["ceph", "--admin-daemon",
                            os.path.join(d, "run", "client.rgw.gk.asok"),
                            "config", "set", "rgw_crypt_require_ssl",
                            "false"],
                           capture_output=True, text=True, timeout=30)
        assert c.returncode == 0, \
            "radosgw's admin socket refused a config set: %s (logs: %s)" % (
                (c.stderr or c.stdout)[-1000:], os.path.join(d, "log"))
        yield Rgw(vals, d)
    finally:
        subprocess.run(["bash", RGW_STOP, "--purge"], env=env,
                       capture_output=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)
