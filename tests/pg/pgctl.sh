#!/usr/bin/env bash
# A throw-away PostgreSQL for the tests, from Debian's packages.
#
#   pgctl.sh start        initdb into a new temp directory, start postgres
#                         on a Unix socket there (no TCP), create database
#                         gk; prints "DIR DSN" (DSN: postgresql:///gk?...)
#   pgctl.sh stop DIR     stop that server by its PID and remove DIR
#   pgctl.sh halt DIR     stop it by its PID, keep its data (database down)
#   pgctl.sh resume DIR   start it again on the same socket (database up)
#
# As root the server runs as the postgres user (postgres refuses root).
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$BIN" ] || { echo "pgctl: PostgreSQL is not installed (make deps, or apt-get install postgresql)" >&2; exit 1; }

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

run_server() {
	as_pg "$BIN/postgres" -D "$1/data" -k "$1" -c listen_addresses= \
		-c max_connections=200 -c shared_buffers=32MB \
		>>"$1/server.log" 2>&1 </dev/null &
	for _ in $(seq 1 300); do
		"$BIN/pg_isready" -q -h "$1" -U gk -d postgres && return 0
		sleep 0.1
	done
	cat "$1/server.log" >&2
	return 1
}

halt_server() {
	local pid
	if [ -f "$1/data/postmaster.pid" ]; then
		pid=$(head -n1 "$1/data/postmaster.pid")
		kill -INT "$pid" 2>/dev/null || true
		for _ in $(seq 1 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
}

ours() {
	case "$1" in
	/tmp/gk-pg-*) ;;
	*) echo "pgctl: not ours: $1" >&2; exit 1 ;;
	esac
}

case "${1:-}" in
start)
	dir=$(mktemp -d /tmp/gk-pg-XXXXXX)
	chmod 755 "$dir"
	if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
	as_pg "$BIN/initdb" -D "$dir/data" -A trust -U gk -E UTF8 --no-sync \
		>"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	run_server "$dir"
	"$BIN/createdb" -h "$dir" -U gk gk
	echo "$dir postgresql:///gk?host=$dir&user=gk"
	;;
stop)
	dir=${2:?usage: pgctl.sh stop DIR}
	ours "$dir"
	halt_server "$dir"
	rm -rf "$dir"
	;;
halt)
	dir=${2:?usage: pgctl.sh halt DIR}
	ours "$dir"
	halt_server "$dir"
	;;
resume)
	dir=${2:?usage: pgctl.sh resume DIR}
	ours "$dir"
	run_server "$dir"
	;;
*)
	echo "usage: pgctl.sh start | stop DIR | halt DIR | resume DIR" >&2
	exit 2
	;;
esac
