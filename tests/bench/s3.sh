#!/usr/bin/env bash
# tests/bench/s3.sh GK_BIN [TEST_S3_BIN] - the s3 store's redirect mode.
#
# 1. The presign cost in-process (tests/unit/test_s3 bench N): ns per
#    presigned GET URL and per POST form, signing key cached.
# 2. End to end: a gatekeeper on [store] type = s3 (redirect mode) against a
#    throw-away Ceph RGW (tests/rgw/start-rgw.sh), wrk over pre-signed v1
#    GET_Object URLs, with [s3] check_exists off (the presign alone) and on
#    (a HEAD to the bucket per request), and the fs store's data URLs for
#    comparison.
# Writes the "S3 redirect mode" section of BENCHMARKS.md (replacing an
# earlier one). No thresholds; fails only when a run would be meaningless.
# Knobs: BENCH_THREADS (2) BENCH_CONNS (64) BENCH_DURATION (10s)
#        BENCH_URLS (1000) BENCH_PRESIGNS (200000) BENCH_OUT
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
GK_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
TOOL=${2:-$(dirname "$GK_BIN")/tests/test_s3}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
DURATION=${BENCH_DURATION:-10s}
NURLS=${BENCH_URLS:-1000}
NPRESIGN=${BENCH_PRESIGNS:-200000}
OUT=${BENCH_OUT:-$TOP/BENCHMARKS.md}
ORIGIN=https://bench.example
EXPIRES=$(($(date +%s) + 3600))

die() { echo "bench-s3: $*" >&2; exit 1; }
[ -x "$TOOL" ] || die "$TOOL missing (make unit)"
command -v wrk >/dev/null || die "wrk missing (make deps)"

TMP=$(mktemp -d)
GK_PID=
export GK_RGW_DIR=$TMP/rgw
cleanup() {
	[ -n "$GK_PID" ] && kill "$GK_PID" 2>/dev/null && wait "$GK_PID" 2>/dev/null
	bash "$TOP/tests/rgw/stop-rgw.sh" --purge >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# 1. in-process
PRE=$("$TOOL" bench "$NPRESIGN") || die "test_s3 bench failed"
GET_NS=$(printf '%s\n' "$PRE" | awk '$1 == "presign_get_ns" { print $2 }')
POST_NS=$(printf '%s\n' "$PRE" | awk '$1 == "presign_post_ns" { print $2 }')
echo "bench-s3: presign GET $GET_NS ns, POST form $POST_NS ns" >&2

# 2. end to end
LINE=$(bash "$TOP/tests/rgw/start-rgw.sh" 2>"$TMP/rgw.log") ||
    { cat "$TMP/rgw.log" >&2; die "start-rgw.sh failed"; }
eval "export $LINE"
/usr/bin/python3 - "$S3_ENDPOINT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
s3.create_bucket(Bucket="bench")
for i in range(1000):
    s3.put_object(Bucket="bench", Key="bench/d%d/obj-%d.bin" % (i, i), Body=b"x")
EOF
printf '%s\n' "$S3_SECRET_KEY" >"$TMP/s3.secret"
chmod 600 "$TMP/s3.secret"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RESULTS=()
run() {	# run TITLE [store lines...]
	local title=$1 dir=$TMP/gk-${#RESULTS[@]} port
	shift
	port=$(free_port)
	mkdir -p "$dir"
	{
		printf '[server]\nlisten = 127.0.0.1\nport = %s\nlog_level = warn\n' "$port"
		printf 'per_ip_conn_limit = 0\n'
		printf '[gate]\ndata_dir = %s/data\nmax_token_lifetime = 0\n' "$dir"
		printf '[acl]\nip_allow = 127.0.0.0/8\norigins = %s\n' "$ORIGIN"
		printf '%s\n' "$@"
	} >"$dir/gk.ini"
	"$GK_BIN" keygen --config "$dir/gk.ini" >/dev/null
	"$GK_BIN" serve --config "$dir/gk.ini" >"$dir/out" 2>"$dir/err" &
	GK_PID=$!
	for _ in $(seq 1 100); do grep -q listening "$dir/out" && break; sleep 0.1; done
	grep -q listening "$dir/out" || { cat "$dir/err" >&2; die "gatekeeper did not start"; }
	python3 "$HERE/urls.py" v1-get "$dir/urls" --count "$NURLS" \
	    --expires "$EXPIRES" --origin "$ORIGIN" --root bench \
	    --key-file "$dir/data/keys/v1.key"
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: $ORIGIN" \
	    "http://127.0.0.1:$port$(head -n1 "$dir/urls.txt")")
	[ "$code" = 302 ] || { cat "$dir/err" >&2; die "$title: answered $code, not 302"; }
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$dir/urls.lua" \
	    "http://127.0.0.1:$port/" >"$dir/wrk" 2>&1 || die "wrk failed"
	if grep -qE 'Non-2xx or 3xx responses|Socket errors' "$dir/wrk"; then
		cat "$dir/wrk" >&2
		die "$title: errors during the run"
	fi
	rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 + 0.5 }' "$dir/wrk")
	p50=$(awk '$1 == "50%" { print $2 }' "$dir/wrk")
	p99=$(awk '$1 == "99%" { print $2 }' "$dir/wrk")
	echo "bench-s3: $title: $rps req/s, p50 $p50, p99 $p99" >&2
	RESULTS+=("| $title | $rps | $p50 | $p99 |")
	kill "$GK_PID"
	wait "$GK_PID" 2>/dev/null || true
	GK_PID=
}

S3CONF=("[store]" "type = s3" "[s3]" "bucket = bench"
	"endpoint = $S3_ENDPOINT" "path_style = true"
	"access_key_id = $S3_ACCESS_KEY" "secret_key_file = $TMP/s3.secret"
	"imds = false" "container_credentials = false")
run "fs store, data URL (reference)"
run "s3 redirect, presign only (check_exists = false)" "${S3CONF[@]}" \
    "check_exists = false"
run "s3 redirect, HEAD + presign (check_exists = true)" "${S3CONF[@]}" \
    "check_exists = true"

SECTION=$(cat <<EOF
<!-- s3-bench begin (tests/bench/s3.sh) -->
## S3 redirect mode

Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores; wrk -t$THREADS -c$CONNS -d$DURATION, v1 GET_Object, every request audited.
Presign cost in-process (signing key cached): **$GET_NS ns** per presigned GET URL, **$POST_NS ns** per POST form.

| scenario | req/s | p50 | p99 |
| --- | --- | --- | --- |
$(printf '%s\n' "${RESULTS[@]}")

The bucket is a local Ceph RGW; with check_exists each request waits for a HEAD to it. With an s3 store every v1 decision is made on one of the gate's 8 worker threads, the request suspended meanwhile (so a slow bucket holds no HTTP thread, and up to 8 HEADs are in flight); the presign-only row pays that hand-off too.
<!-- s3-bench end -->
EOF
)
touch "$OUT"
python3 - "$OUT" "$SECTION" <<'EOF'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pat = re.compile(r"<!-- s3-bench begin.*?<!-- s3-bench end -->\n?", re.S)
text = pat.sub("", text).rstrip("\n")
open(path, "w").write(text + "\n\n" + section + "\n")
EOF
echo "bench-s3: results in $OUT" >&2
