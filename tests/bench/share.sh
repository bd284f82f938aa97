#!/usr/bin/env bash
# tests/bench/share.sh GK_BIN - gatekeeper share send/receive throughput
# against a throw-away Ceph RGW (tests/rgw/start-rgw.sh), beside the same work
# done by 'tar | zstd | age' + 'aws s3 cp' (and back) in the same run.
#
# Two data sets: one 1 GiB CSV-like text file (an export: numbers and
# names, zstd -3 makes it about a third) and 10,000 small text files
# (about 4 KiB each). (The test RGW keeps its objects in a 1 GiB memstore,
# so an incompressible 1 GiB object does not fit; each run's objects are
# deleted before the next.) Each
# figure is MB/s of plaintext (10^6 bytes) over wall time, send (local
# files -> encrypted objects in the bucket) and receive (bucket -> files).
# Writes the "Encrypted sharing" section of BENCHMARKS.md (replacing an
# earlier one). Knobs: BENCH_SHARE_BIG_MB (1024) BENCH_SHARE_SMALL (10000)
# BENCH_OUT.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
GK_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
BIG_MB=${BENCH_SHARE_BIG_MB:-1024}
SMALL=${BENCH_SHARE_SMALL:-10000}
OUT=${BENCH_OUT:-$TOP/BENCHMARKS.md}

die() { echo "bench-share: $*" >&2; exit 1; }
for t in age zstd aws tar; do
	command -v $t >/dev/null || die "$t missing (make deps)"
done

TMP=$(mktemp -d)
export GK_RGW_DIR=$TMP/rgw
cleanup() {
	bash "$TOP/tests/rgw/stop-rgw.sh" --purge >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

LINE=$(bash "$TOP/tests/rgw/start-rgw.sh" 2>"$TMP/rgw.log") ||
    { cat "$TMP/rgw.log" >&2; die "start-rgw.sh failed"; }
eval "export $LINE"
ceph --admin-daemon "$GK_RGW_DIR/run/client.rgw.gk.asok" config set \
    rgw_crypt_require_ssl false >/dev/null
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_DEFAULT_REGION=$S3_REGION AWS_EC2_METADATA_DISABLED=true
aws --endpoint-url "$S3_ENDPOINT" s3 mb s3://bench >/dev/null
DEST="s3://bench/gk?endpoint=$S3_ENDPOINT&region=$S3_REGION&path_style=1"

"$GK_BIN" share keygen -o "$TMP/recv.key" >"$TMP/recv.pub" 2>/dev/null
"$GK_BIN" share keygen -o "$TMP/send.key" >/dev/null 2>&1
R=$(cat "$TMP/recv.pub")
FP=$("$GK_BIN" share fingerprint -i "$TMP/send.key")

mkdir -p "$TMP/big" "$TMP/small"
python3 - "$TMP/big/export.csv" "$BIG_MB" <<'EOF'
import os, random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(14)
names = ["Meier", "Dupont", "Rossi", "Smith", "Nowak", "Garcia", "Jensen"]
rows = ["%d,2026-%02d-%02d,%s,%d.%02d,%s\n" % (i, rnd.randint(1, 12),
        rnd.randint(1, 28), rnd.choice(names), rnd.randint(0, 99999),
        rnd.randint(0, 99), os.urandom(6).hex()) for i in range(20000)]
with open(path, "wb") as f:
    left = mb << 20
    while left > 0:
        rnd.shuffle(rows)
        b = "".join(rows).encode()[:left]
        f.write(b)
        left -= len(b)
EOF
python3 - "$TMP/small" "$SMALL" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "w") as f:
        f.write(("line %d of a small text file\n" % i) * 128)
EOF
sync

now() { date +%s.%N; }
mbs() { python3 -c "import sys; print('%.1f' % ($1 / 1e6 / ($3 - $2)))"; }

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS=()
for set in big small; do
	src=$TMP/$set
	bytes=$(du -sb --apparent-size "$src" | cut -f1)
	nfiles=$(find "$src" -type f | wc -l)
	# gatekeeper share
	t0=$(now)
	url=$("$GK_BIN" share send "$src" --to "$R" -i "$TMP/send.key" \
	    --dest "$DEST" --no-progress --state-dir "$TMP/st" 2>/dev/null) ||
	    die "share send failed"
	t1=$(now)
	"$GK_BIN" share receive "$url" -i "$TMP/recv.key" -o "$TMP/out-$set" \
	    --sender "$FP" --no-progress 2>/dev/null || die "share receive failed"
	t2=$(now)
	diff -r "$src" "$TMP/out-$set" >/dev/null || die "receive differs"
	aws --endpoint-url "$S3_ENDPOINT" s3 rm --quiet --recursive s3://bench/
	gk_send=$(mbs "$bytes" "$t0" "$t1")
	gk_recv=$(mbs "$bytes" "$t1" "$t2")
	# tar | zstd | age, aws s3 cp (same compression level, all cores)
	t0=$(now)
	tar -C "$src" -cf - . | zstd -q -3 -T0 | age -r "$R" >"$TMP/$set.tzst.age"
	aws --endpoint-url "$S3_ENDPOINT" s3 cp --quiet "$TMP/$set.tzst.age" \
	    "s3://bench/base/$set.tzst.age"
	t1=$(now)
	mkdir -p "$TMP/base-$set"
	aws --endpoint-url "$S3_ENDPOINT" s3 cp --quiet \
	    "s3://bench/base/$set.tzst.age" - | age -d -i "$TMP/recv.key" |
	    zstd -q -d | tar -C "$TMP/base-$set" -xf -
	t2=$(now)
	diff -r "$src" "$TMP/base-$set" >/dev/null || die "baseline differs"
	rm -f "$TMP/$set.tzst.age"
	aws --endpoint-url "$S3_ENDPOINT" s3 rm --quiet --recursive s3://bench/
	b_send=$(mbs "$bytes" "$t0" "$t1")
	b_recv=$(mbs "$bytes" "$t1" "$t2")
	rm -rf "$TMP/out-$set" "$TMP/base-$set"
	label="1 file, $((bytes / 1048576)) MiB CSV"
	[ "$set" = small ] && label="$nfiles files, $((bytes / 1048576)) MiB text"
	RESULTS+=("| $label | $gk_send | $gk_recv | $b_send | $b_recv |")
	echo "bench-share: $label: share $gk_send/$gk_recv MB/s," \
	    "tar|zstd|age+aws $b_send/$b_recv MB/s (send/receive)" >&2
done

SECTION=$(cat <<EOF
<!-- share-bench begin -->
## Encrypted sharing

\`make bench\` (tests/bench/share.sh), $(date -u +%Y-%m-%d), $(nproc) cores
(load average $LOAD at the start), against a local Ceph RGW; MB/s of
plaintext over wall time (10^6 bytes/s).
\`gatekeeper share send\`/\`receive\` (per-file zstd -3, age, one object per
file, default workers) beside \`tar | zstd -3 -T0 | age -r\` + \`aws s3 cp\`
and \`aws s3 cp - | age -d | zstd -d | tar -x\` on the same data.

| data | share send | share receive | tar+zstd+age+aws send | aws+age+zstd+tar receive |
| --- | --- | --- | --- | --- |
$(printf '%s\n' "${RESULTS[@]}")

The share keeps one encrypted object per file (resumable, files fetched
and verified one by one, names hidden), so many small files cost one
request each (2 workers on 2 cores here); the baseline makes one archive.
The machine was shared with other jobs: compare within a row.
<!-- share-bench end -->
EOF
)
touch "$OUT"
python3 - "$OUT" "$SECTION" <<'EOF'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pat = re.compile(r"<!-- share-bench begin.*?<!-- share-bench end -->\n?", re.S)
text = pat.sub("", text).rstrip("\n")
open(path, "w").write(text + "\n\n" + section + "\n")
EOF
echo "bench-share: results in $OUT" >&2
