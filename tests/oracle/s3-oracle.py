#!/usr/bin/python3 -I
# tests/oracle/s3-oracle.py - the reference signer for S3 Gatekeeper's SigV4 tests
# (tests/e2e/test_s3_oracle.py): botocore's own S3 signers (Debian's python3-botocore),
# clock frozen at --now, never any network.
# Every signing command: --region R --access-key A --secret-key S [--session-token T] --now 20261123T000000Z (UTC)
#   presign-get  --endpoint URL --bucket B --key K --expires N [--path-style]          -> the presigned GET URL
#   presign-post --endpoint URL --bucket B --key K --expires N [--path-style]
#                --conditions JSON-array --fields JSON-object [--show-policy]           -> JSON {url, fields}
#   sign-headers --method GET --url WIRE-URL --headers JSON (--payload-sha256 HEX|UNSIGNED-PAYLOAD | --payload-file F)
#                -> JSON: authorization, x-amz-date, the headers botocore sends, canonical_request, string_to_sign
#   selftest: AWS's documented S3 vectors (tests/data/s3-sigv4-examples.json)   version: what is in use
# Without --path-style URLs are virtual-hosted (botocore keeps IP endpoints path-style). --debug: botocore's log.
# Exit 0 ok; 1 a self-check failed (the output would not be botocore's at --now); 2 bad usage or no botocore.
"""Reference signer for the gatekeeper's SigV4 tests: botocore's own S3 signers, clock frozen at --now."""

import argparse
import base64
import calendar
import datetime as _dt
import email.utils
import json
import os
import socket
import sys
import types
import urllib.parse

SIGV4_FMT = "%Y%m%dT%H%M%SZ"
DEBIAN_PREFIX = "/usr/lib/python3/dist-packages/"


class OracleError(Exception):
    """A self-check failed: the output would not be what botocore does at --now."""


def _no_network(*_args, **_kwargs):
    raise OracleError("s3-oracle attempted a network call; it must never make one")


# No network, ever: fail loudly rather than talk to anything.
socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network
socket.create_connection = _no_network
socket.getaddrinfo = _no_network

# Nothing from the caller's environment or ~/.aws may change what botocore produces.
for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                  AWS_EC2_METADATA_DISABLED="true")

try:
    import botocore  # noqa: E402
except ImportError:
    print("s3-oracle: Python's botocore is missing: install Debian's python3-botocore "
          "(make deps, or apt-get install python3-botocore)", file=sys.stderr)
    sys.exit(2)
import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.client  # noqa: E402  (imported before the clock is frozen, so it is frozen too)
import botocore.exceptions  # noqa: E402
import botocore.config  # noqa: E402
import botocore.credentials  # noqa: E402
import botocore.session  # noqa: E402
import botocore.signers  # noqa: E402

if not botocore.__file__.startswith(DEBIAN_PREFIX) and os.environ.get("S3_ORACLE_ANY_BOTOCORE") != "1":
    print("s3-oracle: botocore comes from %s, not Debian's python3-botocore (%s); run this file directly "
          "(#!/usr/bin/python3), or set S3_ORACLE_ANY_BOTOCORE=1" % (botocore.__file__, DEBIAN_PREFIX), file=sys.stderr)
    sys.exit(2)


def freeze_clock(now):
    """Make every clock read inside botocore return `now` (naive UTC, as botocore expects)."""

    class FrozenDatetime(_dt.datetime):
        @classmethod
        def utcnow(cls):
            return cls(now.year, now.month, now.day, now.hour, now.minute, now.second)

        @classmethod
        def now(cls, tz=None):
            aware = cls(now.year, now.month, now.day, now.hour, now.minute, now.second,
                        tzinfo=_dt.timezone.utc)
            return aware.astimezone(tz) if tz is not None else aware.replace(tzinfo=None)

    shim = types.ModuleType("datetime")
    shim.__dict__.update(_dt.__dict__)
    shim.datetime = FrozenDatetime
    for name, module in list(sys.modules.items()):
        if name == "botocore" or name.startswith("botocore."):
            if getattr(module, "datetime", None) is _dt:
                module.datetime = shim
            elif getattr(module, "datetime", None) is _dt.datetime:
                module.datetime = FrozenDatetime
            if callable(getattr(module, "get_current_datetime", None)):  # newer botocore reads the clock here
                module.get_current_datetime = lambda *a, **k: FrozenDatetime.utcnow()


def parse_now(text):
    try:
        return _dt.datetime.strptime(text, SIGV4_FMT)
    except ValueError:
        raise argparse.ArgumentTypeError("--now must look like 20261123T000000Z (UTC), not %r" % text)


def parse_json(*kinds):
    def parse(text):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError("bad JSON: %s" % e)
        if not isinstance(value, kinds):
            raise argparse.ArgumentTypeError("expected a JSON %s" % " or ".join(
                {"dict": "object", "list": "array"}[k.__name__] for k in kinds))
        return value
    return parse


def parse_headers(text):
    value = parse_json(dict, list)(text)
    pairs = list(value.items()) if isinstance(value, dict) else value
    if not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs):
        raise argparse.ArgumentTypeError("expected a JSON object of strings or an array of [name, value] pairs")
    return pairs


def credentials(args):
    return botocore.credentials.Credentials(args.access_key, args.secret_key, args.session_token)


def s3_client(args):
    # botocore's own default with an endpoint_url is path-style; without --path-style ask for virtual-hosted
    # (botocore still keeps IP-address endpoints path-style).
    style = "path" if args.path_style else "virtual"
    config = botocore.config.Config(signature_version="s3v4", s3={"addressing_style": style})
    session = botocore.session.Session()
    return session.create_client(
        "s3", region_name=args.region, endpoint_url=args.endpoint, config=config,
        aws_access_key_id=args.access_key, aws_secret_access_key=args.secret_key,
        aws_session_token=args.session_token)


def expect(condition, message):
    if not condition:
        raise OracleError(message)


def cmd_presign_get(args):
    url = s3_client(args).generate_presigned_url(
        "get_object", Params={"Bucket": args.bucket, "Key": args.key}, ExpiresIn=args.expires)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))
    expect(query.get("X-Amz-Date") == args.now_text, "X-Amz-Date is not --now: %s" % url)
    expect(query.get("X-Amz-Expires") == str(args.expires), "X-Amz-Expires is not --expires: %s" % url)
    print(url)


def cmd_presign_post(args):
    post = s3_client(args).generate_presigned_post(
        Bucket=args.bucket, Key=args.key, Fields=args.fields, Conditions=args.conditions,
        ExpiresIn=args.expires)
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    expiry = (args.now + _dt.timedelta(seconds=args.expires)).strftime(botocore.auth.ISO8601)
    expect(post["fields"].get("x-amz-date") == args.now_text, "x-amz-date is not --now: %r" % post)
    expect(policy.get("expiration") == expiry, "policy expiration is not --now + --expires: %r" % policy)
    if args.show_policy:
        post["policy_document"] = policy
    print(json.dumps(post, indent=2))


class RecordingS3SigV4Auth(botocore.auth.S3SigV4Auth):
    """botocore's S3 header signer; only the payload hash can be fixed from outside."""

    def __init__(self, creds, region, payload_hash):
        super().__init__(creds, "s3", region)
        self._payload_hash = payload_hash
        self.seen = {}

    def payload(self, request):
        if self._payload_hash is None:
            return super().payload(request)
        return self._payload_hash

    def canonical_request(self, request):
        self.seen["canonical_request"] = super().canonical_request(request)
        return self.seen["canonical_request"]

    def string_to_sign(self, request, canonical_request):
        self.seen["string_to_sign"] = super().string_to_sign(request, canonical_request)
        return self.seen["string_to_sign"]


def cmd_sign_headers(args):
    body = b""
    if args.payload_file is not None:
        with open(args.payload_file, "rb") as f:
            body = f.read()
    request = botocore.awsrequest.AWSRequest(method=args.method, url=args.url, data=body)
    for name, value in args.headers:
        request.headers[name] = value  # appends: a repeated name is sent, and signed, as a list
    signer = RecordingS3SigV4Auth(credentials(args), args.region, args.payload_sha256)
    signer.add_auth(request)
    sent = request.headers
    # botocore signs with X-Amz-Date, or with Date (and no X-Amz-Date) when the caller gave a Date header.
    expect(sent.get("X-Amz-Date", args.now_text) == args.now_text, "X-Amz-Date is not --now")
    expect("X-Amz-Date" in sent or sent.get("Date") == email.utils.formatdate(
        calendar.timegm(args.now.timetuple())), "botocore's Date header is not --now")
    authorization = sent["Authorization"]
    print(json.dumps({
        "authorization": authorization,
        "x-amz-date": sent.get("X-Amz-Date"),
        "x-amz-content-sha256": sent.get("X-Amz-Content-SHA256"),
        "host": botocore.auth._host_from_url(request.url),
        "signed_headers": authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0],
        "headers": [[k, v] for k, v in sent.items()],
        "canonical_request": signer.seen["canonical_request"],
        "string_to_sign": signer.seen["string_to_sign"],
    }, indent=2))


def cmd_selftest(args):
    """botocore's S3 canonicalization and signing against AWS's documented S3 vectors."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "s3-sigv4-examples.json")
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    failed = 0
    for case in cases:
        creds = botocore.credentials.Credentials(case["credentials"]["access_key_id"],
                                                 case["credentials"]["secret_access_key"])
        expected = case["expected"]
        if case["kind"] == "header-auth":
            url = "https://%s%s%s" % (case["host"], case["path"], "?" + case["query"] if case["query"] else "")
            request = botocore.awsrequest.AWSRequest(method=case["method"], url=url)
            for name, value in case["headers"]:
                request.headers[name] = value
            request.context["timestamp"] = case["amz_date"]
            signer = RecordingS3SigV4Auth(creds, case["region"], case["payload_sha256"])
            sts = signer.string_to_sign(request, signer.canonical_request(request))
            got = (signer.seen["canonical_request"], sts, signer.signature(sts, request))
            want = (expected["canonical_request"], expected["string_to_sign"], expected["signature"])
        elif case["kind"] == "presigned-url":
            ns = argparse.Namespace(region=case["region"], path_style=False, access_key=creds.access_key,
                                    secret_key=creds.secret_key, session_token=None,
                                    endpoint="https://s3.amazonaws.com")
            freeze_clock(_dt.datetime.strptime(case["amz_date"], SIGV4_FMT))
            got = s3_client(ns).generate_presigned_url(
                "get_object", Params={"Bucket": case["bucket"], "Key": case["key"]}, ExpiresIn=case["expires"])
            want = expected["presigned_url"]
            # botocore orders the query differently from AWS's page; same parameters, same signature
            split = lambda u: (u.split("?", 1)[0], sorted(urllib.parse.parse_qsl(u.split("?", 1)[1])))  # noqa: E731
            got, want = split(got), split(want)
        else:  # post-policy: botocore's POST signer over AWS's own base64 policy
            request = botocore.awsrequest.AWSRequest(method="POST", url=case["url"])
            request.context["timestamp"] = case["amz_date"]
            signer = botocore.auth.S3SigV4PostAuth(creds, "s3", case["region"])
            got = signer.signature(case["policy_base64"], request)
            want = expected["signature"]
        ok = got == want
        failed += not ok
        print("%s %s" % ("ok  " if ok else "FAIL", case["name"]))
        if not ok:
            print("  got:  %r\n  want: %r" % (got, want))
    print("%d of %d documented S3 cases reproduced by botocore %s" % (len(cases) - failed, len(cases),
                                                                      botocore.__version__))
    return 1 if failed else 0


def cmd_version(_args):
    import boto3
    print(json.dumps({"python": sys.version.split()[0], "botocore": botocore.__version__,
                      "botocore_path": os.path.dirname(botocore.__file__), "boto3": boto3.__version__,
                      "crt": bool(getattr(botocore.compat, "HAS_CRT", False))}))


def build_parser():
    parser = argparse.ArgumentParser(prog="s3-oracle.py", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="log botocore's canonical request to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def signing_args(p):
        p.add_argument("--region", required=True)
        p.add_argument("--access-key", required=True)
        p.add_argument("--secret-key", required=True)
        p.add_argument("--session-token")
        p.add_argument("--now", required=True, type=parse_now, help="UTC, e.g. 20261123T000000Z")

    def object_args(p):
        p.add_argument("--endpoint", required=True, help="e.g. https://s3.us-east-1.amazonaws.com")
        p.add_argument("--bucket", required=True)
        p.add_argument("--key", required=True)
        p.add_argument("--expires", required=True, type=int)
        p.add_argument("--path-style", action="store_true",
                       help="path-style URL (default: virtual-hosted, except for IP-address endpoints)")
        signing_args(p)

    p = sub.add_parser("presign-get", help="presigned GET URL (generate_presigned_url)")
    object_args(p)
    p.set_defaults(func=cmd_presign_get)

    p = sub.add_parser("presign-post", help="POST policy form (generate_presigned_post)")
    object_args(p)
    p.add_argument("--conditions", type=parse_json(list), default=[], help="JSON array")
    p.add_argument("--fields", type=parse_json(dict), default={}, help="JSON object")
    p.add_argument("--show-policy", action="store_true", help="add the decoded policy document")
    p.set_defaults(func=cmd_presign_post)

    p = sub.add_parser("sign-headers", help="Authorization header for an S3 request (S3SigV4Auth)")
    p.add_argument("--method", required=True)
    p.add_argument("--url", required=True, help="the wire URL, key already percent-encoded")
    p.add_argument("--headers", type=parse_headers, default=[],
                   help='JSON object, or list of [name, value] pairs; Host comes from --url')
    payload = p.add_mutually_exclusive_group(required=True)
    payload.add_argument("--payload-sha256", help="hex SHA-256 of the body, or UNSIGNED-PAYLOAD")
    payload.add_argument("--payload-file", help="the body; botocore hashes it")
    signing_args(p)
    p.set_defaults(func=cmd_sign_headers)

    sub.add_parser("selftest", help="check botocore against AWS's documented S3 vectors").set_defaults(
        func=cmd_selftest)
    sub.add_parser("version", help="versions in use").set_defaults(func=cmd_version)
    return parser


def main(argv):
    args = build_parser().parse_args(argv)
    if args.debug:
        import logging
        logging.basicConfig(stream=sys.stderr, format="%(name)s: %(message)s")
        logging.getLogger("botocore.auth").setLevel(logging.DEBUG)
    if getattr(args, "now", None) is not None:
        args.now_text = args.now.strftime(SIGV4_FMT)
        freeze_clock(args.now)
    try:
        return args.func(args) or 0
    except OracleError as e:
        print("s3-oracle: %s" % e, file=sys.stderr)
        return 1
    except botocore.exceptions.BotoCoreError as e:
        print("s3-oracle: botocore: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
