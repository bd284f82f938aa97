#!/usr/bin/env bash
# tests/bench/s3api.sh GK_BIN - the S3 endpoint for grants.
#
# 1. Memory: a BENCH_RSS_GIB (5) GiB file up and down through the endpoint
#    with Debian's awscli (multipart, 8 MiB parts, 10 at a time) on the fs
#    store; the gatekeeper's peak RSS (VmHWM) after each, and the bytes
#    compared.
# 2. Throughput against a throw-away Ceph RGW (tests/rgw): aws s3
#    cp of a BENCH_CP_MIB (1024) MiB file up and down, straight to RGW and
#    through the gatekeeper (s3 store, proxy mode, the same RGW), and
#    small-object (4 KiB) PUT and GET ops/s with boto3 in 8 threads.
# Writes the "S3 endpoint" section of BENCHMARKS.md (replacing an earlier
# one). No thresholds.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
GK_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
RSS_GIB=${BENCH_RSS_GIB:-5}
CP_MIB=${BENCH_CP_MIB:-1024}
SMALL_N=${BENCH_SMALL:-2000}
OUT=${BENCH_OUT:-$TOP/BENCHMARKS.md}
AWS=/usr/bin/aws

die() { echo "bench-s3api: $*" >&2; exit 1; }
TMP=$(mktemp -d)
GK_PID=
export GK_RGW_DIR=$TMP/rgw
cleanup() {
	[ -n "$GK_PID" ] && kill "$GK_PID" 2>/dev/null && wait "$GK_PID" 2>/dev/null
	bash "$TOP/tests/rgw/stop-rgw.sh" --purge >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_gk DIR EXTRA_INI: a gatekeeper with [s3api] on its own port and a
# grant on everything; sets GK_PID, S3_PORT, AK, SK
start_gk() {
	local d=$1 extra=$2
	mkdir -p "$d"
	S3_PORT=$(free_port)
	cat >"$d/gk.ini" <<EOF
[server]
listen = 127.0.0.1
port = 0
threads = ${GK_THREADS:-0}
log_level = ${BENCH_LOG:-warn}
[gate]
data_dir = $d/data
[s3api]
enabled = true
port = $S3_PORT
bucket = vault
$extra
EOF
	"$GK_BIN" keygen --config "$d/gk.ini" >/dev/null
	"$GK_BIN" grant create --config "$d/gk.ini" --name bench --prefix "" \
	    --ops get,list,put,delete >"$d/grant.txt"
	AK=$(awk '/^access_key_id:/ { print $2 }' "$d/grant.txt")
	SK=$(awk '/^secret_access_key:/ { print $2 }' "$d/grant.txt")
	"$GK_BIN" serve --config "$d/gk.ini" >"$d/serve.out" 2>"$d/serve.log" &
	GK_PID=$!
	for _ in $(seq 50); do
		grep -q "s3 endpoint" "$d/serve.out" 2>/dev/null && return 0
		sleep 0.1
	done
	die "the gatekeeper did not start: $(cat "$d/serve.log")"
}

stop_gk() {
	kill "$GK_PID" && wait "$GK_PID" 2>/dev/null || true
	GK_PID=
}

hwm_mib() {
	awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$GK_PID/status"
}

# secs CMD...: wall seconds of a command (fails the bench if it fails)
secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >"$TMP/cmd.log" 2>&1 || { cat "$TMP/cmd.log" >&2;
	    [ -n "$GK_PID" ] && tail -n 40 "$TMP"/*/serve.log >&2; die "$* failed"; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_DEFAULT_REGION=us-east-1
unset AWS_CA_BUNDLE || true

# 1. memory (BENCH_RSS_GIB=0 skips it)
if [ "$RSS_GIB" -gt 0 ]; then
start_gk "$TMP/fs" ""
truncate -s "${RSS_GIB}G" "$TMP/big.bin"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
UP_S=$(secs $AWS --endpoint-url "http://127.0.0.1:$S3_PORT" s3 cp \
    --only-show-errors "$TMP/big.bin" s3://vault/big.bin)
RSS_UP=$(hwm_mib)
rm -f "$TMP/big.bin"
truncate -s "${RSS_GIB}G" "$TMP/big.bin"
DOWN_S=$(secs $AWS --endpoint-url "http://127.0.0.1:$S3_PORT" s3 cp \
    --only-show-errors s3://vault/big.bin "$TMP/big.out")
RSS_DOWN=$(hwm_mib)
cmp -s "$TMP/big.bin" "$TMP/big.out" || die "the downloaded file differs"
rm -f "$TMP/big.bin" "$TMP/big.out"
stop_gk
rm -rf "$TMP/fs"
echo "bench-s3api: ${RSS_GIB} GiB up ${UP_S}s, down ${DOWN_S}s; peak RSS" \
    "${RSS_UP} MiB after the upload, ${RSS_DOWN} MiB after the download" >&2
fi

# 2. against RGW. The test RGW keeps objects in the OSD's memory
# (memstore), and a full OSD blocks every write: RGW just stalls (why a
# 1 GiB run on the default 1 GiB memstore never finished). Removed objects
# are freed only by RGW's garbage collection, hours later, so it gets room
# for every copy the runs below write (four) plus 1 GiB.
export GK_RGW_MEM_BYTES=${GK_RGW_MEM_BYTES:-$(( (4 * CP_MIB + 1024) * 1024 * 1024 ))}
LINE=$(bash "$TOP/tests/rgw/start-rgw.sh" 2>"$TMP/rgw.log") ||
    { cat "$TMP/rgw.log" >&2; die "start-rgw.sh failed"; }
eval "export $LINE"
ceph --admin-daemon "$GK_RGW_DIR/run/client.rgw.gk.asok" config set \
    rgw_crypt_require_ssl false >/dev/null
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    $AWS --endpoint-url "$S3_ENDPOINT" s3 mb s3://direct >/dev/null
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    $AWS --endpoint-url "$S3_ENDPOINT" s3 mb s3://behind >/dev/null
printf '%s\n' "$S3_SECRET_KEY" >"$TMP/rgw.secret"
chmod 600 "$TMP/rgw.secret"
# the s3 store waits on the bucket for every request: more threads than
# cores ([server] threads), so parallel clients are served in parallel
GK_THREADS=${BENCH_GK_THREADS:-16}
start_gk "$TMP/rgw-gk" "[store]
type = s3
[s3]
bucket = behind
endpoint = $S3_ENDPOINT
path_style = true
region = $S3_REGION
mode = proxy
access_key_id = $S3_ACCESS_KEY
secret_key_file = $TMP/rgw.secret
imds = false
container_credentials = false
timeout = 60"
head -c "$((CP_MIB * 1024 * 1024))" /dev/urandom >"$TMP/cp.bin"

cp_pair() { # ENDPOINT BUCKET AK SK -> "up down" seconds
	local up down
	up=$(AWS_ACCESS_KEY_ID=$3 AWS_SECRET_ACCESS_KEY=$4 secs $AWS \
	    --endpoint-url "$1" s3 cp --only-show-errors "$TMP/cp.bin" \
	    "s3://$2/cp.bin")
	down=$(AWS_ACCESS_KEY_ID=$3 AWS_SECRET_ACCESS_KEY=$4 secs $AWS \
	    --endpoint-url "$1" s3 cp --only-show-errors "s3://$2/cp.bin" \
	    "$TMP/cp.out")
	cmp -s "$TMP/cp.bin" "$TMP/cp.out" || die "cp through $1 differs"
	rm -f "$TMP/cp.out"
	AWS_ACCESS_KEY_ID=$3 AWS_SECRET_ACCESS_KEY=$4 $AWS --endpoint-url "$1" \
	    s3 rm --only-show-errors "s3://$2/cp.bin" >/dev/null
	echo "$up $down"
}
# ABBA: straight, through, through, straight; the means of each pair
read -r D_UP1 D_DOWN1 <<<"$(cp_pair "$S3_ENDPOINT" direct "$S3_ACCESS_KEY" \
    "$S3_SECRET_KEY")"
read -r G_UP1 G_DOWN1 <<<"$(cp_pair "http://127.0.0.1:$S3_PORT" vault "$AK" \
    "$SK")"
read -r G_UP2 G_DOWN2 <<<"$(cp_pair "http://127.0.0.1:$S3_PORT" vault "$AK" \
    "$SK")"
read -r D_UP2 D_DOWN2 <<<"$(cp_pair "$S3_ENDPOINT" direct "$S3_ACCESS_KEY" \
    "$S3_SECRET_KEY")"
mean() { echo "($1 + $2) / 2" | bc -l; }
D_UP=$(mean "$D_UP1" "$D_UP2") D_DOWN=$(mean "$D_DOWN1" "$D_DOWN2")
G_UP=$(mean "$G_UP1" "$G_UP2") G_DOWN=$(mean "$G_DOWN1" "$G_DOWN2")
echo "bench-s3api: cp up straight ${D_UP1}/${D_UP2} s, through" \
    "${G_UP1}/${G_UP2} s; down straight ${D_DOWN1}/${D_DOWN2} s, through" \
    "${G_DOWN1}/${G_DOWN2} s" >&2
rm -f "$TMP/cp.bin"

small() { # ENDPOINT BUCKET AK SK -> "put_ops get_ops"
	/usr/bin/python3 - "$@" "$SMALL_N" <<'EOF'
import sys, time, os, boto3, botocore.config
from concurrent.futures import ThreadPoolExecutor
ep, bucket, ak, sk, n = sys.argv[1:6]
n = int(n)
cfg = botocore.config.Config(signature_version="s3v4",
                             max_pool_connections=16,
                             s3={"addressing_style": "path"})
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id=ak, aws_secret_access_key=sk, config=cfg)
body = os.urandom(4096)
def put(i): s3.put_object(Bucket=bucket, Key="small/%06d" % i, Body=body)
def get(i): s3.get_object(Bucket=bucket, Key="small/%06d" % i)["Body"].read()
out = []
for fn in (put, get):
    with ThreadPoolExecutor(8) as ex:
        t0 = time.monotonic()
        list(ex.map(fn, range(n)))
        out.append(n / (time.monotonic() - t0))
print("%.0f %.0f" % tuple(out))
EOF
}
read -r D_PUT D_GET <<<"$(small "$S3_ENDPOINT" direct "$S3_ACCESS_KEY" \
    "$S3_SECRET_KEY")"
read -r G_PUT G_GET <<<"$(small "http://127.0.0.1:$S3_PORT" vault "$AK" \
    "$SK")"
stop_gk

ratio() { echo "scale=2; $1 / $2" | bc -l; }
mibs() { echo "scale=0; $CP_MIB / $1" | bc -l; }
if [ "$RSS_GIB" -gt 0 ]; then
	MEMLINE="Memory, fs store, \`aws s3 cp\` of a ${RSS_GIB} GiB file (multipart, 8 MiB
parts, 10 at a time): up in ${UP_S%.*} s, down in ${DOWN_S%.*} s; the
gatekeeper's peak RSS (VmHWM) was ${RSS_UP} MiB after the upload and
${RSS_DOWN} MiB after the download (goal: under 128 MiB)."
else
	MEMLINE="(memory not measured: BENCH_RSS_GIB=0)"
fi
SECTION=$(cat <<EOF
## S3 endpoint

\`make bench\` (tests/bench/s3api.sh) on $(date -u +%Y-%m-%d), $(nproc) cores
shared with other work; awscli $($AWS --version 2>&1 | awk '{print $1}' |
cut -d/ -f2) from Debian, boto3 for the small objects (8 threads).

$MEMLINE

Against Ceph RGW on the same machine (the gatekeeper on the s3 store in
proxy mode, in front of the same RGW, [server] threads = $GK_THREADS):

| | straight to RGW | through the gatekeeper | ratio |
|---|---|---|---|
| aws s3 cp ${CP_MIB} MiB up (ABBA, mean) | $(mibs "$D_UP") MiB/s | $(mibs "$G_UP") MiB/s | $(ratio "$D_UP" "$G_UP") |
| aws s3 cp ${CP_MIB} MiB down (ABBA, mean) | $(mibs "$D_DOWN") MiB/s | $(mibs "$G_DOWN") MiB/s | $(ratio "$D_DOWN" "$G_DOWN") |
| 4 KiB PUT | $D_PUT ops/s | $G_PUT ops/s | $(ratio "$G_PUT" "$D_PUT") |
| 4 KiB GET | $D_GET ops/s | $G_GET ops/s | $(ratio "$G_GET" "$D_GET") |

(ratio: the gatekeeper's throughput over RGW's; goal for cp >= 0.7. Every
request through the gatekeeper is SigV4-verified, policy-checked and
audited with a durable SQLite commit before it is answered.)
EOF
)
/usr/bin/python3 - "$OUT" "$SECTION" <<'EOF'
import re, sys
path, section = sys.argv[1], sys.argv[2]
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n"
text = re.sub(r"\n## S3 endpoint\n.*?(?=\n## |\Z)", "", text, flags=re.S)
open(path, "w").write(text.rstrip("\n") + "\n\n" + section + "\n")
EOF
echo "bench-s3api: wrote the S3 endpoint section of $OUT" >&2
