#!/usr/bin/env bash
# tests/rgw/stop-rgw.sh [--purge] - stops what tests/rgw/start-rgw.sh started
# under GK_RGW_DIR [/tmp/gk-rgw-$UID]: only the PIDs it recorded, each checked
# to be the expected program running that directory's ceph.conf; TERM, then
# KILL after 10 s. Keeps the logs unless --purge, which removes the directory.
# Exit 0 when nothing of ours is left running.
set -euo pipefail
D=${GK_RGW_DIR:-/tmp/gk-rgw-$(id -u)}
PURGE=0
case "${1:-}" in --purge) PURGE=1 ;; "") ;; *) echo "usage: stop-rgw.sh [--purge]" >&2; exit 2 ;; esac
say() { printf 'stop-rgw: %s\n' "$*" >&2; }
case "$D" in /?*) ;; *) say "GK_RGW_DIR must be an absolute path other than /: '$D'"; exit 2 ;; esac
[ -d "$D" ] || { say "nothing at $D"; exit 0; }
[ -f "$D/.gk-rgw" ] || { say "$D was not made by start-rgw.sh; leaving it alone"; exit 2; }
exec 9<"$D"
flock -w 120 9 || { say "could not lock $D"; exit 1; }

# shellcheck source=daemons.sh
. "$(dirname "$0")/daemons.sh"
for n in $DAEMONS; do
	name=${n%%:*} comm=${n#*:}
	ours "$name" "$comm" || continue
	p=$(cat "$D/run/$name.pid")
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 100); do ours "$name" "$comm" || break; sleep 0.1; done
	if ours "$name" "$comm"; then say "$comm $p ignored TERM for 10 s: KILL"; kill -KILL "$p" 2>/dev/null || true; fi
done
for _ in $(seq 50); do any_ours || break; sleep 0.1; done
if any_ours; then say "still running: see $D/run/*.pid"; exit 1; fi
rm -f "$D"/run/*.pid "$D/env"
if [ "$PURGE" = 1 ]; then
	find "$D" -mindepth 1 -delete
	exec 9<&-
	rmdir "$D" 2>/dev/null || true
	say "stopped; removed $D"
else
	say "stopped; logs kept in $D/log"
fi
