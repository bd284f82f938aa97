#!/usr/bin/env bash
# tests/rgw/start-rgw.sh - a throw-away Ceph RADOS Gateway for S3 Gatekeeper's
# tests and benchmarks: a real, signature-checking S3 server on 127.0.0.1.
#
# One node: one ceph-mon, one ceph-osd on memstore (objects live in the OSD's
# memory), no mgr, cephx off, then radosgw with one S3 user. About 3 s.
#
#   line=$(tests/rgw/start-rgw.sh) && eval "export $line"
#   ... use $S3_ENDPOINT $S3_ACCESS_KEY $S3_SECRET_KEY $S3_REGION (path-style) ...
#   tests/rgw/stop-rgw.sh --purge
#
# stdout is exactly one line:
#   S3_ENDPOINT=http://127.0.0.1:PORT S3_ACCESS_KEY=... S3_SECRET_KEY=... S3_REGION=...
# Progress and errors go to stderr. Exit 1 with a one-line reason on failure;
# a failed start leaves nothing running (the logs stay in $GK_RGW_DIR/log).
# If the gateway recorded in GK_RGW_DIR is up it only prints the line again.
#
# It installs nothing: the Debian packages (ceph-mon ceph-osd radosgw
# ceph-common ceph-base curl) come from scripts/install-deps.sh (make deps).
#
# Environment (all optional):
#   GK_RGW_DIR         all its files: config, mon store, logs, PIDs   [/tmp/gk-rgw-$UID]
#   GK_RGW_PORT        gateway port on 127.0.0.1            [first free from 17480]
#   GK_RGW_MON_PORT    ceph-mon port on 127.0.0.1           [first free from 13300]
#   GK_RGW_ACCESS_KEY, GK_RGW_SECRET_KEY  the S3 user's keys  [random, per cluster]
#   GK_RGW_REGION      region (the zonegroup's api_name)    [us-east-1]
#   GK_RGW_MEM_BYTES   memstore capacity                    [1 GiB]
#   GK_RGW_TIMEOUT     seconds to wait for each stage       [120]
set -euo pipefail
set +m  # no job control: setsid then execs in place, so $! is the daemon itself

D=${GK_RGW_DIR:-/tmp/gk-rgw-$(id -u)}
# Random keys by default: the readiness check (a signed request answered
# 200) can then only pass against this cluster's gateway, never against
# another one that happens to hold the port.
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }  # 2N hex digits
AK=${GK_RGW_ACCESS_KEY:-}
SK=${GK_RGW_SECRET_KEY:-}
REGION=${GK_RGW_REGION:-us-east-1}
MEM_BYTES=${GK_RGW_MEM_BYTES:-1073741824}
TMO=${GK_RGW_TIMEOUT:-120}
USER_ID=gk-test
RGW_NAME=client.rgw.gk

say() { printf 'start-rgw: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; [ -d "$D/log" ] && say "logs: $D/log"; exit 1; }
case "$D" in /?*) ;; *) die "GK_RGW_DIR must be an absolute path other than /: '$D'" ;; esac

# --- programs: missing ones are named with the package and the command ---------------------------
missing=()
for c in ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw radosgw-admin:radosgw ceph:ceph-common \
	 monmaptool:ceph-base curl:curl flock:util-linux setsid:util-linux; do
	command -v "${c%%:*}" >/dev/null 2>&1 || missing+=("${c#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	pk=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
	die "missing Debian packages: ${pk% } (install them with: make deps, or apt-get install ${pk% })"
fi

mkdir -p "$D"
exec 9<"$D"
flock -w "$TMO" 9 || die "another start/stop holds $D for over ${TMO}s"

# shellcheck source=daemons.sh
. "$(dirname "$0")/daemons.sh"
C() { timeout 30 ceph -c "$CONF" --connect-timeout 10 "$@"; }
kill_ours() {  # kill_ours SIGNAL
	local n; for n in $DAEMONS; do
		ours "${n%%:*}" "${n#*:}" && kill "-$1" "$(cat "$D/run/${n%%:*}.pid")" 2>/dev/null || true
	done
}
env_line() {
	printf 'S3_ENDPOINT=http://127.0.0.1:%s S3_ACCESS_KEY=%s S3_SECRET_KEY=%s S3_REGION=%s\n' \
		"$1" "$AK" "$SK" "$REGION"
}
signed_ok() {  # a header-signed ListBuckets as our user is answered 200
	[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' --aws-sigv4 "aws:amz:$REGION:s3" --user "$AK:$SK" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$1/" 2>/dev/null)" = 200 ]
}

# --- already running with the same settings: print the line again ---------------------------------
if [ -f "$D/.gk-rgw" ] && [ -s "$D/env" ] && ours mon ceph-mon && ours osd ceph-osd && ours rgw radosgw; then
	# shellcheck disable=SC1091
	. "$D/env"
	AK=${AK:-$RGW_AK} SK=${SK:-$RGW_SK}
	if [ "$RGW_AK" = "$AK" ] && [ "$RGW_SK" = "$SK" ] && [ "$RGW_REGION" = "$REGION" ] &&
	   [ "${GK_RGW_PORT:-$RGW_PORT}" = "$RGW_PORT" ] && signed_ok "$RGW_PORT"; then
		say "already running in $D"
		env_line "$RGW_PORT"
		exit 0
	fi
fi

# --- anything stale there: stop it (by recorded PID only) and start afresh --------------------------
if [ -n "$(ls -A "$D")" ]; then
	[ -f "$D/.gk-rgw" ] || die "$D is not empty and was not made by start-rgw.sh; set GK_RGW_DIR elsewhere"
	say "replacing stale state in $D"
	kill_ours TERM
	for _ in $(seq 100); do any_ours || break; sleep 0.1; done
	kill_ours KILL
	find "$D" -mindepth 1 -delete
fi
touch "$D/.gk-rgw"
[ -n "$AK" ] || AK=GKRGW$(hex 8 | tr a-f A-F)
[ -n "$SK" ] || SK=$(hex 20)
mkdir -p "$D/run" "$D/log" "$D/mon.a" "$D/osd.0" "$D/rgw"

# --- ports -----------------------------------------------------------------------------------------
# A free port is only free until someone binds it: starts on this machine (any GK_RGW_DIR) take
# one lock from choosing their ports until their gateway listens, and a gateway that still
# loses its port (to another program) is started again on the next one.
PORT_LOCK=${TMPDIR:-/tmp}/gk-rgw-ports.lock
exec 8>>"$PORT_LOCK"
flock -w "$TMO" 8 || die "another start holds $PORT_LOCK for over ${TMO}s"
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
	local p=$1
	while in_use "$p"; do p=$((p + 1)); [ "$p" -lt $(($1 + 200)) ] || die "no free port in $1-$(($1 + 199))"; done
	echo "$p"
}
MON_PORT=${GK_RGW_MON_PORT:-$(free_port 13300)}
PORT=${GK_RGW_PORT:-$(free_port 17480)}
[ "$PORT" != "$MON_PORT" ] || die "GK_RGW_PORT and GK_RGW_MON_PORT are both $PORT"
! in_use "$MON_PORT" || die "port $MON_PORT (ceph-mon) is in use"
! in_use "$PORT" || die "port $PORT (radosgw) is in use"

# --- config ----------------------------------------------------------------------------------------
FSID=$(cat /proc/sys/kernel/random/uuid)
cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
public network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# radosgw asks for a "secure" mon connection by default, impossible without cephx
ms mon client mode = crc
keyring = /dev/null
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.daemon.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# pools are created one paxos round each; the default 1 s makes start-up ~13 s
paxos propose interval = 0.1
[mon]
mon data = $D/mon.\$id
[osd]
osd data = $D/osd.\$id
osd objectstore = memstore
memstore device bytes = $MEM_BYTES
[$RGW_NAME]
rgw data = $D/rgw
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw dns name = localhost
rgw thread pool size = 64
EOF

on_exit() {  # a failed start leaves nothing of ours running
	local st=$?
	[ "$st" = 0 ] && return 0
	kill_ours KILL
	for _ in $(seq 50); do any_ours || break; sleep 0.1; done
}
trap on_exit EXIT
launch() {  # launch NAME COMMAND...: detached, no inherited fds; PID in run/NAME.pid
	local name=$1; shift
	setsid "$@" </dev/null >>"$D/log/$name.out" 2>&1 8>&- 9<&- &
	echo $! >"$D/run/$name.pid"
	disown $!
}
wait_for() {  # wait_for WHAT NAME COMM COMMAND...: until COMMAND succeeds; early exit if the daemon died
	local what=$1 name=$2 comm=$3 t0=$SECONDS; shift 3
	until "$@" >/dev/null 2>&1; do
		ours "$name" "$comm" || { tail -n 20 "$D/log/$name.out" >&2 || true; die "$comm exited while waiting for $what"; }
		[ $((SECONDS - t0)) -lt "$TMO" ] || die "timed out after ${TMO}s waiting for $what"
		sleep 0.2
	done
}
SETUP=$D/log/setup.log
T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - T0) / 1000000 )); }

# --- mon -------------------------------------------------------------------------------------------
for try in 1 2 3 4 5; do
	monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" --enable-all-features \
		--set-min-mon-release pacific "$D/monmap" --clobber >>"$SETUP" 2>&1 || die "monmaptool failed"
	ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" >>"$SETUP" 2>&1 || die "ceph-mon --mkfs failed"
	launch mon ceph-mon -c "$CONF" -i a -f
	t0=$SECONDS
	until C mon stat >/dev/null 2>&1; do
		ours mon ceph-mon || break
		[ $((SECONDS - t0)) -lt "$TMO" ] || die "timed out after ${TMO}s waiting for ceph-mon"
		sleep 0.2
	done
	C mon stat >/dev/null 2>&1 && break
	# the monitor lost its port to a program that bound it after we chose it
	if [ -n "${GK_RGW_MON_PORT:-}" ] || [ "$try" = 5 ] ||
	   ! grep -qi "address already in use" "$D/log/mon.out" "$D/log/mon.a.log" 2>/dev/null; then
		tail -n 20 "$D/log/mon.out" >&2 || true
		die "ceph-mon exited while waiting for ceph-mon"
	fi
	say "port $MON_PORT was taken; trying the next free one"
	: >"$D/log/mon.out"; : >"$D/log/mon.a.log"
	rm -rf "$D/mon.a" && mkdir -p "$D/mon.a"
	MON_PORT=$(free_port $((MON_PORT + 1)))
	[ "$MON_PORT" != "$PORT" ] || MON_PORT=$(free_port $((MON_PORT + 1)))
	sed -i "s|^mon host = .*|mon host = [v2:127.0.0.1:$MON_PORT]|" "$CONF"
done
echo "mon up: $(ms) ms" >>"$SETUP"

# --- osd on memstore -------------------------------------------------------------------------------
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(C osd new "$OSD_UUID" 2>>"$SETUP") || die "ceph osd new failed"
[ "$OSD_ID" = 0 ] || die "unexpected osd id $OSD_ID"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$SETUP" 2>&1 || die "ceph-osd --mkfs failed"
launch osd ceph-osd -c "$CONF" -i 0 -f
osd_up() { C osd stat 2>/dev/null | grep -q ' 1 up'; }
wait_for "osd.0 up" osd ceph-osd osd_up
echo "osd up: $(ms) ms" >>"$SETUP"

# --- the S3 user; the zonegroup's api_name is the LocationConstraint RGW accepts ---------------------
RA() { timeout 60 radosgw-admin -c "$CONF" -n "$RGW_NAME" "$@"; }
RA user create --uid="$USER_ID" --display-name="$USER_ID" --access-key="$AK" --secret-key="$SK" \
	>>"$SETUP" 2>&1 || die "radosgw-admin user create failed"
if [ "$REGION" != default ]; then
	RA zonegroup modify --rgw-zonegroup=default --api-name="$REGION" >>"$SETUP" 2>&1 ||
		die "radosgw-admin zonegroup modify failed"
fi
echo "user: $(ms) ms" >>"$SETUP"

# --- the gateway -----------------------------------------------------------------------------------
bound_elsewhere() {  # radosgw exited because its port was taken
	grep -qi "address already in use" "$D/log/rgw.out" "$D/log/$RGW_NAME.log" 2>/dev/null
}
for try in 1 2 3 4 5; do
	launch rgw radosgw -c "$CONF" -n "$RGW_NAME" -f
	t0=$SECONDS
	until signed_ok "$PORT"; do
		ours rgw radosgw || break
		[ $((SECONDS - t0)) -lt "$TMO" ] || die "timed out after ${TMO}s waiting for radosgw on 127.0.0.1:$PORT"
		sleep 0.2
	done
	signed_ok "$PORT" && break
	if [ -n "${GK_RGW_PORT:-}" ] || ! bound_elsewhere || [ "$try" = 5 ]; then
		tail -n 20 "$D/log/rgw.out" >&2 || true
		die "radosgw exited while waiting for radosgw on 127.0.0.1:$PORT"
	fi
	say "port $PORT was taken; trying the next free one"
	: >"$D/log/rgw.out"; : >"$D/log/$RGW_NAME.log"
	PORT=$(free_port $((PORT + 1)))
	sed -i "s|^rgw frontends = .*|rgw frontends = beast endpoint=127.0.0.1:$PORT|" "$CONF"
done
flock -u 8
exec 8>&-

printf 'RGW_PORT=%s\nRGW_AK=%s\nRGW_SK=%s\nRGW_REGION=%s\n' "$PORT" "$AK" "$SK" "$REGION" >"$D/env"
say "ready in $(ms) ms: http://127.0.0.1:$PORT (path-style), region $REGION; dir $D"
env_line "$PORT"
