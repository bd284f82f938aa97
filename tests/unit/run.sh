#!/usr/bin/env bash
# Runs every unit-test binary given, sums their counts, prints one closing
# "unit: N passed, N failed" line and fails if any binary failed.
set -u
pass=0; fail=0; bad=0
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n1)
	p=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
	f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	[ -n "$p" ] || p=0; [ -n "$f" ] || f=1
	pass=$((pass + p)); fail=$((fail + f))
	if [ $rc -ne 0 ] || [ "$f" != 0 ]; then
		bad=1
		printf '%s\n' "$out" | grep -v ' passed, ' >&2
		echo "unit: $(basename "$t") FAILED (exit $rc)" >&2
		[ $f -eq 0 ] && fail=$((fail + 1))
	fi
done
echo "unit: $pass passed, $fail failed"
exit $bad
