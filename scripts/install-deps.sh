#!/usr/bin/env bash
# Installs the Debian packages S3 Gatekeeper needs to build, run and test,
# only those missing. Idempotent and quiet; needs root (or sudo) when
# something is missing. On a fresh machine the package manager is often busy
# (unattended-upgrades at boot): it then waits for the lock, saying who holds
# it, for up to INSTALL_DEPS_LOCK_WAIT seconds (default 1800).
set -eu

PKGS=(
	build-essential pkg-config clang libclang-rt-14-dev
	libmicrohttpd-dev libssl-dev libsqlite3-dev libinih-dev libjansson-dev
	libsodium-dev
	libcurl4-openssl-dev libexpat1-dev libmaxminddb-dev libpq-dev
	libmaxmind-db-writer-perl perl libgnutls28-dev libsystemd-dev
	libgeoip-dev geoip-database haproxy
	python3 python3-pytest python3-requests python3-cryptography sqlite3 curl
	postgresql
	nginx wrk chromium linux-perf
	awscli python3-boto3 python3-botocore rclone s3cmd zlib1g-dev
	# the test S3 server, tests/rgw/start-rgw.sh (Ceph RGW on one node)
	ceph-mon ceph-osd radosgw ceph-common ceph-base
	util-linux coreutils
	# share: age interop tests, zstd, GNU time for RSS checks
	age libzstd-dev zlib1g-dev zstd time
	# audit out is tested against rsyslogd (TCP and TLS)
	rsyslog rsyslog-openssl
)
# the browser tests drive Chromium with playwright-core from npm (make
# js-deps); Debian's npm is only needed where no Node.js is installed already
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: missing packages: ${missing[*]} (run as root)" >&2
		exit 1
	fi
fi

# The locks apt and dpkg take (POSIX fcntl locks, listed in /proc/locks).
LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock
	/var/lib/apt/lists/lock /var/cache/apt/archives/lock)
WAIT=${INSTALL_DEPS_LOCK_WAIT:-1800}

# lock_holder: "PID (name) holds FILE" for the first lock held, else nothing
lock_holder() {
	local f ino pid
	for f in "${LOCKS[@]}"; do
		[ -e "$f" ] || continue
		ino=$(stat -c %i "$f") || continue
		pid=$(awk -v ino="$ino" '{ n = split($6, a, ":");
			if (a[n] == ino) { print $5; exit } }' /proc/locks)
		if [ -n "$pid" ]; then
			echo "$pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo '?')) holds $f"
			return 0
		fi
	done
}

# wait_for_lock: returns when no package-manager lock is held; says why it waits
wait_for_lock() {
	local t0=$SECONDS last=-60 who
	while who=$(lock_holder) && [ -n "$who" ]; do
		if [ $((SECONDS - t0)) -ge "$WAIT" ]; then
			echo "install-deps: gave up after ${WAIT}s: process $who" >&2
			echo "install-deps: let it finish (often unattended-upgrades after boot), then run make deps again" >&2
			exit 1
		fi
		if [ $((SECONDS - last)) -ge 30 ]; then
			echo "install-deps: the package manager is busy (process $who; often unattended-upgrades after boot); waiting for it ($((SECONDS - t0))s of at most ${WAIT}s) ..." >&2
			last=$SECONDS
		fi
		sleep 2
	done
}

# apt_run ARGS...: apt-get ARGS, waiting for the lock first and again if
# someone took it between the check and apt-get (apt exits 100 then)
apt_run() {
	local log rc tries=0
	log=$(mktemp)
	while :; do
		wait_for_lock
		rc=0
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 \
			-q -y "$@" >"$log" 2>&1 || rc=$?
		[ $rc -eq 0 ] && { rm -f "$log"; return 0; }
		tries=$((tries + 1))
		if grep -q 'Could not get lock\|Unable to acquire\|Unable to lock' "$log" && [ $tries -lt 20 ]; then
			continue
		fi
		echo "install-deps: apt-get $* failed (exit $rc):" >&2
		tail -n 20 "$log" >&2
		rm -f "$log"
		return $rc
	done
}

echo "install-deps: installing ${missing[*]}" >&2
apt_run update
apt_run install --no-install-recommends "${missing[@]}"
