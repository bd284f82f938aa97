#!/usr/bin/env bash
# Runs every fuzz target in DIR for SECONDS each, seeded from
# tests/fuzz/corpus/<target>/ (copied to a scratch dir so the repo stays
# clean). Fails on the first crash, leak or sanitizer report.
set -eu
dir=$1; secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
n=0
for t in "$dir"/fuzz_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	work=$(mktemp -d)
	[ -d "$here/corpus/$name" ] && cp -r "$here/corpus/$name/." "$work/"
	if ! "$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=0 "$work" \
	    >"$work.log" 2>&1; then
		tail -n 60 "$work.log" >&2
		echo "fuzz: $name FAILED" >&2
		rm -rf "$work" "$work.log"
		exit 1
	fi
	runs=$(grep -Eo 'Done [0-9]+ runs' "$work.log" | tail -n1)
	echo "fuzz: $name clean (${runs:-?} in ${secs}s)"
	rm -rf "$work" "$work.log"
	n=$((n + 1))
done
echo "fuzz: $n targets clean"
