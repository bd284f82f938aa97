"""Shared S3 test helpers: the awkward keys, the botocore oracle, and the
Ceph RADOS Gateway started once per test session."""
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
ORACLE = os.path.join(SHARED, "tools", "s3-oracle.py")
RGW_START = os.path.join(SHARED, "tools", "rgw", "start-rgw.sh")
RGW_STOP = os.path.join(SHARED, "tools", "rgw", "stop-rgw.sh")

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
