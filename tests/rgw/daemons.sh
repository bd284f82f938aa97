# tests/rgw/daemons.sh - sourced by start-rgw.sh and stop-rgw.sh (needs $D):
# which daemons a test cluster has, and whether a recorded PID is still ours.
CONF=$D/ceph.conf
DAEMONS="rgw:radosgw osd:ceph-osd mon:ceph-mon"  # stop order: gateway first, monitor last
# ours NAME COMM: the PID recorded in run/NAME.pid is alive, runs COMM, and runs our config
ours() {
	local f=$D/run/$1.pid p
	[ -s "$f" ] || return 1
	p=$(cat "$f")
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] &&
		tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF "$CONF"
}
any_ours() { local n; for n in $DAEMONS; do ours "${n%%:*}" "${n#*:}" && return 0; done; return 1; }
