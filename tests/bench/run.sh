#!/usr/bin/env bash
# tests/bench/run.sh GK_BIN - the gatekeeper against nginx, on loopback.
#
# Starts the gatekeeper (its own config and data dir) and a private nginx
# (Debian's, secure_link + return 302, access log on), drives each with wrk
# over pre-signed GET URLs with the same threads, connections and duration,
# and writes req/s, p50, p99 and the gatekeeper/nginx ratios to
# BENCHMARKS.md. No thresholds: it never fails on a number, only when the
# measurement would be meaningless (a non-3xx answer, socket errors, a
# server that does not start).
#
# Environment knobs, all optional:
#   BENCH_THREADS   wrk threads                       (2)
#   BENCH_CONNS     wrk connections                   (64)
#   BENCH_DURATION  wrk duration of each measured run (10s)
#   BENCH_WARMUP    wrk warm-up before each run       (2s; 0 skips it)
#   BENCH_WORKERS   gatekeeper threads = nginx worker processes (nproc)
#   BENCH_URLS      distinct pre-signed URLs per server (1000)
#   BENCH_OUT       the report                        (BENCHMARKS.md at top)
#   BENCH_SCENARIOS scenario ids to run, comma-separated (all), e.g.
#                   v1-get,v2-eddsa for a quick before/after
# Raw wrk output and the servers' logs of the last run are kept in
# tests/bench/out/ (ignored by git).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)

THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
WORKERS=${BENCH_WORKERS:-$(nproc)}
NURLS=${BENCH_URLS:-1000}
OUT=${BENCH_OUT:-$TOP/BENCHMARKS.md}
RAW=$HERE/out

ORIGIN=https://bench.example
ROOT=bench                              # v1 root and nginx location
EXPIRES=$(($(date +%s) + 3600))         # outlives any run

# The scenarios, one a line: id|title|gatekeeper kind|nginx kind|extra
# gatekeeper settings. A kind is a tests/bench/urls.py KIND, the request
# pre-signed for that server ("-" leaves the server out of the scenario).
# The extra settings ("section.key=value ...", may be empty) override the
# base gatekeeper config below. Each scenario gets a fresh gatekeeper (own
# data dir and audit database); the nginx is shared. To add a scenario: a
# KIND in urls.py if the request is new, and a line here.
# Deny-list files for the list-size scenarios (issue 5), written by
# make_lists: random IPv4/IPv6 CIDRs, none covering loopback.
LISTS=${TMPDIR:-/tmp}/gk-bench-lists.$$
# @V2_PUB@ in the extra settings is replaced by the bench vendor key's
# public key (made once per run by 'gatekeeper keygen --vendor').
SCENARIOS=(
	"v1-get|v1 GET_Object, 302|v1-get|secure-link|"
	"v1-deny10|v1 GET_Object, 302, 10-entry deny list|v1-get|-|acl.ip_deny_files=$LISTS/deny-10.txt"
	"v1-deny100k|v1 GET_Object, 302, 100,000-entry deny list|v1-get|-|acl.ip_deny_files=$LISTS/deny-100000.txt"
	"v2-eddsa|v2 GET object, EdDSA token, 302, tokens used again (v2_verify_cache)|v2-eddsa|-|gate.v2_max_lifetime=7200 vendor_key:bench.type=ed25519 vendor_key:bench.public_key=@V2_PUB@"
	"v2-eddsa-pk|v2 GET object, EdDSA token, 302, every use checked by the public key (v2_verify_cache = 0)|v2-eddsa|-|gate.v2_max_lifetime=7200 gate.v2_verify_cache=0 vendor_key:bench.type=ed25519 vendor_key:bench.public_key=@V2_PUB@"
	"v1-tls|v1 GET_Object, 302, HTTPS keep-alive|v1-get|secure-link|@TLS@"
	"v1-tls-new|v1 GET_Object, 302, HTTPS new connection per request|v1-get|secure-link|@TLS@ @CLOSE@"
)
# @TLS@: both servers speak HTTPS with the same certificate (ECDSA P-256,
# made by make_tls), TLS 1.2/1.3 with the gatekeeper's suites; @CLOSE@: wrk
# sends "Connection: close", so every request pays a full handshake.

TMP=
GK_PID=
NGX_PID=
NGINX=
LOAD_BEFORE=
RESULTS=()      # "title|server|req/s|p50 ms|p99 ms" per measured run
NOTES=()        # extra lines for the report
V2_KEY=         # the bench vendor key (private PEM) and its public key
V2_PUB=

die() {
	echo "bench: $*" >&2
	exit 1
}

# Prints the tail of a log file to stderr, for failure messages.
show_log() {
	[ -s "$1" ] || return 0
	echo "--- $1 (last lines)" >&2
	tail -n 20 "$1" >&2
}

check_tools() {
	[ -x "$GK_BIN" ] || die "no gatekeeper binary at '$GK_BIN' (run make)"
	NGINX=$(command -v nginx || true)
	[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
	[ -n "$NGINX" ] || die "nginx not found: install nginx-core" \
	    "(bash scripts/install-deps.sh)"
	command -v wrk >/dev/null || die "wrk not found: install wrk" \
	    "(bash scripts/install-deps.sh)"
	command -v python3 >/dev/null || die "python3 not found"
	command -v curl >/dev/null || die "curl not found"
	"$NGINX" -V 2>&1 | grep -q -- --with-http_secure_link_module ||
	    die "$NGINX lacks the secure_link module"
}

free_port() {
	python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sends SIGTERM to PID and waits for it (SIGKILL after 20 s).
stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	stop_pid "$GK_PID"
	stop_pid "$NGX_PID"
	GK_PID=''
	NGX_PID=''
	[ -z "$TMP" ] || rm -rf "$TMP"
	rm -rf "$LISTS"
}

# make_lists - the deny-list files of the list-size scenarios.
make_lists() {
	mkdir -p "$LISTS"
	python3 - "$LISTS" <<'PY'
import ipaddress, random, sys
rnd = random.Random(5)
for n in (10, 100000):
    with open("%s/deny-%d.txt" % (sys.argv[1], n), "w") as f:
        f.write("# %d random CIDRs\n" % n)
        for _ in range(n):
            if rnd.random() < 0.75:
                bits = rnd.randint(8, 32)
                a = rnd.randrange(1 << 32)
                if a >> 24 == 127:
                    a ^= 1 << 31
                net = ipaddress.ip_network((a >> (32 - bits) << (32 - bits),
                                            bits))
            else:
                bits = rnd.randint(16, 128)
                a = (1 << 125) | rnd.randrange(1 << 125)
                net = ipaddress.ip_network((a >> (128 - bits) << (128 - bits),
                                            bits))
            f.write("%s\n" % net)
PY
}

# Waits until FILE has a line matching PATTERN while PID lives (10 s).
wait_line() {
	local file=$1 pattern=$2 pid=$3
	for _ in $(seq 100); do
		grep -q "$pattern" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Waits until something accepts connections on PORT while PID lives (10 s).
wait_port() {
	local port=$1 pid=$2
	for _ in $(seq 100); do
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" &&
		    return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# write_gk_config FILE SETTING... - an INI file from "section.key=value"
# settings, grouped by section; a later setting of the same key wins.
write_gk_config() {
	local file=$1
	shift
	printf '%s\n' "$@" | awk '
	{
		dot = index($0, "."); eq = index($0, "=")
		sec = substr($0, 1, dot - 1)
		key = substr($0, dot + 1, eq - dot - 1)
		if (!(sec in nkeys)) { order[++nsec] = sec; nkeys[sec] = 0 }
		if (!((sec, key) in val)) keys[sec, ++nkeys[sec]] = key
		val[sec, key] = substr($0, eq + 1)
	}
	END {
		for (i = 1; i <= nsec; i++) {
			s = order[i]
			printf "[%s]\n", s
			for (j = 1; j <= nkeys[s]; j++)
				printf "%s = %s\n", keys[s, j], val[s, keys[s, j]]
		}
	}' >"$file"
}

# start_gatekeeper ID [SETTING...] - a fresh gatekeeper in TMP/gk-ID; sets
# GK_PID, GK_PORT and GK_DIR.
start_gatekeeper() {
	local id=$1
	shift
	GK_DIR=$TMP/gk-$id
	GK_PORT=$(free_port)
	mkdir -p "$GK_DIR"
	# per_ip_conn_limit=0: every wrk connection comes from 127.0.0.1, and
	# the default per-address cap (64) would refuse some of them.
	# max_token_lifetime=0: the pre-signed URLs must last the whole run.
	write_gk_config "$GK_DIR/gatekeeper.ini" \
	    server.listen=127.0.0.1 "server.port=$GK_PORT" \
	    "server.threads=$WORKERS" server.log_level=warn \
	    server.per_ip_conn_limit=0 \
	    "gate.data_dir=$GK_DIR/data" gate.max_token_lifetime=0 \
	    acl.ip_allow=127.0.0.0/8 "acl.origins=$ORIGIN" \
	    "$@"
	"$GK_BIN" keygen --config "$GK_DIR/gatekeeper.ini" \
	    >"$GK_DIR/keygen.log" 2>&1 ||
	    { show_log "$GK_DIR/keygen.log"; die "gatekeeper keygen failed"; }
	"$GK_BIN" serve --config "$GK_DIR/gatekeeper.ini" \
	    >"$GK_DIR/stdout.log" 2>"$GK_DIR/stderr.log" &
	GK_PID=$!
	wait_line "$GK_DIR/stdout.log" "listening on" "$GK_PID" || {
		show_log "$GK_DIR/stdout.log"
		show_log "$GK_DIR/stderr.log"
		die "the gatekeeper did not start (no 'listening on' line)"
	}
}

stop_gatekeeper() {
	stop_pid "$GK_PID"
	GK_PID=
	mkdir -p "$RAW"
	cp "$GK_DIR/stderr.log" "$RAW/gatekeeper-$1.log" 2>/dev/null || true
}

# start_nginx - a private nginx in TMP/nginx; sets NGX_PID, NGX_PORT and
# NGX_SECRET.
start_nginx() {
	local dir=$TMP/nginx
	NGX_PORT=$(free_port)
	NGX_TLS_PORT=$(free_port)
	NGX_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
	mkdir -p "$dir/tmp"
	# The v1 check, nginx-style: secure_link verifies an MD5 over the
	# expiry, the location and the path parameter with a secret (401 if
	# wrong, 410 if expired), the origin and the client address are
	# checked (403), every request gets an access-log line (combined
	# format, unbuffered: nginx's default), and the answer is a 302 to a
	# data URL of the same shape as the gatekeeper's. keepalive_requests
	# is raised because the gatekeeper does not cap requests per
	# connection; both then keep wrk's connections open for the whole run.
	cat >"$dir/nginx.conf" <<EOF
worker_processes $WORKERS;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events {
	worker_connections 4096;
}
http {
	access_log $dir/access.log combined;
	keepalive_requests 10000000;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	default_type application/octet-stream;

	map \$http_origin \$bench_origin_ok {
		default 0;
		"$ORIGIN" 1;
	}
	server {
		listen 127.0.0.1:$NGX_PORT;
		include $dir/locations.conf;
	}
	# HTTPS with the gatekeeper's certificate, protocols and suites
	server {
		listen 127.0.0.1:$NGX_TLS_PORT ssl;
		ssl_certificate $TMP/tls/chain.pem;
		ssl_certificate_key $TMP/tls/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
		ssl_prefer_server_ciphers on;
		ssl_session_cache off;
		ssl_session_tickets off;
		include $dir/locations.conf;
	}
}
EOF
	cat >"$dir/locations.conf" <<EOF
		location = /$ROOT {
			allow 127.0.0.0/8;
			deny all;
			secure_link \$arg_md5,\$arg_expires;
			secure_link_md5 "\$secure_link_expires\$uri\$arg_path $NGX_SECRET";
			if (\$secure_link = "") {
				return 401;
			}
			if (\$secure_link = "0") {
				return 410;
			}
			if (\$bench_origin_ok = 0) {
				return 403;
			}
			add_header Access-Control-Allow-Origin \$http_origin always;
			add_header Cache-Control "no-store, must-revalidate" always;
			return 302 "http://127.0.0.1:$NGX_PORT/_data/$ROOT\$arg_path?exp=\$secure_link_expires&sig=\$arg_md5";
		}
		location / {
			return 404;
		}
EOF
	"$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" ||
	    { show_log "$dir/error.log"; die "nginx rejects its config"; }
	"$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
	    -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
	NGX_PID=$!
	wait_port "$NGX_PORT" "$NGX_PID" || {
		show_log "$dir/error.log"
		show_log "$dir/stdout.log"
		die "nginx did not start"
	}
}

# make_urls SERVER KIND PREFIX - pre-signs the URLs for SERVER (gatekeeper
# or nginx) into PREFIX.lua (the wrk script) and PREFIX.txt.
make_urls() {
	local server=$1 kind=$2 prefix=$3
	local -a sign=(--secret "$NGX_SECRET")
	[ "$server" = nginx ] || sign=(--key-file "$GK_DIR/data/keys/v1.key")
	[ "$kind" != v2-eddsa ] || sign=(--key-file "$V2_KEY")
	python3 "$HERE/urls.py" "$kind" "$prefix" --count "$NURLS" \
	    --expires "$EXPIRES" --origin "$ORIGIN" --root "$ROOT" "${sign[@]}"
}

# preflight NAME BASE PREFIX - one request by curl: it must be a 302 with a
# Location, or the bench would measure error answers.
preflight() {
	local name=$1 base=$2 prefix=$3 url code
	url=$base$(head -n 1 "$prefix.txt")
	code=$(curl -s -o "$prefix.body" -D "$prefix.head" -w '%{http_code}' \
	    --cacert "$TMP/tls/ca.pem" \
	    -H "Origin: $ORIGIN" "$url") || die "$name: cannot reach $url"
	if [ "$code" != 302 ] || ! grep -qi '^location: ' "$prefix.head"; then
		cat "$prefix.head" "$prefix.body" >&2
		die "$name answered $code, not a 302 with a Location, to $url"
	fi
}

# to_ms VALUE - wrk's "812.00us" / "1.25ms" / "1.02s" in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000
		else if (u == "m") n *= 60000
		printf "%.2f", n
	}'
}

# check_wrk NAME FILE - refuses a run with socket errors, non-3xx answers
# or no requests at all.
check_wrk() {
	local name=$1 file=$2 bad
	bad=$(grep -E 'Non-2xx or 3xx responses|Socket errors' "$file" || true)
	if [ -n "$bad" ] || ! grep -q '^Requests/sec:' "$file"; then
		cat "$file" >&2
		die "$name: the run had errors or non-3xx answers; not a" \
		    "meaningful benchmark"
	fi
}

# make_tls - a test CA and a certificate for 127.0.0.1 in TMP/tls.
make_tls() {
	local d=$TMP/tls
	mkdir -p "$d"
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/ext"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj /CN=bench-ca \
	    2>/dev/null &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/key.pem" -out "$d/csr.pem" -subj /CN=localhost \
	    2>/dev/null &&
	openssl x509 -req -in "$d/csr.pem" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
	    -CAcreateserial -days 1 -extfile "$d/ext" -out "$d/leaf.pem" \
	    2>/dev/null || die "openssl could not make the test certificate"
	cat "$d/leaf.pem" "$d/ca.pem" >"$d/chain.pem"
}

# bench_one TITLE SERVER BASE PREFIX [CLOSE] - warm-up, then the measured
# run; appends a RESULTS line. CLOSE=1: a new connection per request.
bench_one() {
	local title=$1 server=$2 base=$3 prefix=$4 close=${5:-0} file rps p50 p99
	local -a args=(-t"$THREADS" -c"$CONNS" -s "$prefix.lua")
	[ "$close" = 0 ] || args+=(-H "Connection: close")
	file=$prefix.wrk
	# what the run before left dirty (nginx's access log, a line per
	# request; a gatekeeper's audit database) is written back now, not
	# during this run, where it made the journal's fdatasync wait (p99
	# 24-109 ms against 7 in the run after nginx's)
	sync
	if [ "$WARMUP" != 0 ]; then
		wrk "${args[@]}" -d"$WARMUP" "$base/" >"$prefix.warmup" 2>&1 ||
		    { cat "$prefix.warmup" >&2; die "$server: wrk failed"; }
		check_wrk "$server (warm-up)" "$prefix.warmup"
	fi
	wrk "${args[@]}" -d"$DURATION" --latency "$base/" >"$file" 2>&1 ||
	    { cat "$file" >&2; die "$server: wrk failed"; }
	check_wrk "$server" "$file"
	mkdir -p "$RAW"
	cp "$file" "$RAW/$(basename "$file")"
	rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 + 0.5 }' "$file")
	p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$file")")
	p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$file")")
	echo "bench: $title, $server: $rps req/s, p50 $p50 ms, p99 $p99 ms" >&2
	RESULTS+=("$title|$server|$rps|$p50|$p99")
}

# audit_note ID - how many audit records the scenario's gatekeeper wrote,
# read from its SQLite database after it stopped.
audit_note() {
	local db=$GK_DIR/data/audit.db n mb
	command -v sqlite3 >/dev/null && [ -f "$db" ] || return 0
	n=$(sqlite3 "file:$db?mode=ro" 'SELECT count(*) FROM audit' \
	    2>/dev/null) || return 0
	mb=$(du -cm "$db"* | awk 'END { print $1 }')
	NOTES+=("Scenario \`$1\`: the gatekeeper's audit database (fresh at the
  start) held $n records, $mb MB, after the run (warm-up, measured run
  and one pre-flight request).")
}

# run_scenario LINE - one SCENARIOS line.
run_scenario() {
	local id title gk_kind ngx_kind extra scheme=http close=0 ngx_port
	IFS='|' read -r id title gk_kind ngx_kind extra <<<"$1"
	extra=${extra//@V2_PUB@/$V2_PUB}
	ngx_port=$NGX_PORT
	if [[ $extra == *@TLS@* ]]; then
		scheme=https
		ngx_port=$NGX_TLS_PORT
		extra="${extra//@TLS@/} server.tls_cert=$TMP/tls/chain.pem"
		extra="$extra server.tls_key=$TMP/tls/key.pem"
	fi
	if [[ $extra == *@CLOSE@* ]]; then
		close=1
		extra=${extra//@CLOSE@/}
	fi
	if [ "$gk_kind" != - ]; then
		# shellcheck disable=SC2086 # extra is a list of settings
		start_gatekeeper "$id" $extra
		make_urls gatekeeper "$gk_kind" "$TMP/$id-gatekeeper"
		preflight gatekeeper "$scheme://127.0.0.1:$GK_PORT" \
		    "$TMP/$id-gatekeeper"
		bench_one "$title" gatekeeper "$scheme://127.0.0.1:$GK_PORT" \
		    "$TMP/$id-gatekeeper" "$close"
		stop_gatekeeper "$id"
		audit_note "$id"
	fi
	if [ "$ngx_kind" != - ]; then
		make_urls nginx "$ngx_kind" "$TMP/$id-nginx"
		preflight nginx "$scheme://127.0.0.1:$ngx_port" "$TMP/$id-nginx"
		bench_one "$title" nginx "$scheme://127.0.0.1:$ngx_port" \
		    "$TMP/$id-nginx" "$close"
	fi
}

# ratio A B - A/B with two decimals, or "n/a".
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (b + 0 > 0) printf "%.2f", a / b; else printf "n/a"
	}'
}

# The results table, then one ratio line per scenario with both servers.
results_table() {
	local line title server rps p50 p99 t s r
	echo "| scenario | server | req/s | p50 (ms) | p99 (ms) |"
	echo "|---|---|---:|---:|---:|"
	for line in "${RESULTS[@]}"; do
		IFS='|' read -r title server rps p50 p99 <<<"$line"
		echo "| $title | $server | $rps | $p50 | $p99 |"
	done
	echo
	echo "| scenario | req/s gatekeeper / nginx | p99 gatekeeper / nginx |"
	echo "|---|---:|---:|"
	# a scenario without an nginx counterpart (v2) is put beside nginx's
	# v1 302 figures (the first scenario's), the same shape of answer
	local base_rps='' base_p99='' base_title
	IFS='|' read -r _ base_title _ _ _ <<<"${SCENARIOS[0]}"
	for r in "${RESULTS[@]}"; do
		IFS='|' read -r t s rps _ p99 <<<"$r"
		[ "$t" = "$base_title" ] && [ "$s" = nginx ] &&
		    base_rps=$rps base_p99=$p99
	done
	for line in "${SCENARIOS[@]}"; do
		IFS='|' read -r _ title _ ngx_kind _ <<<"$line"
		local g_rps='' g_p99='' n_rps='' n_p99='' label=$title
		for r in "${RESULTS[@]}"; do
			IFS='|' read -r t s rps _ p99 <<<"$r"
			[ "$t" = "$title" ] || continue
			case $s in
			gatekeeper) g_rps=$rps g_p99=$p99 ;;
			nginx) n_rps=$rps n_p99=$p99 ;;
			esac
		done
		if [ "$ngx_kind" = - ] && [ -n "$base_rps" ]; then
			n_rps=$base_rps n_p99=$base_p99
			label="$title (nginx: its v1 302)"
		fi
		if [ -z "$g_rps" ] || [ -z "$n_rps" ]; then
			continue
		fi
		echo "| $label | $(ratio "$g_rps" "$n_rps") |" \
		    "$(ratio "$g_p99" "$n_p99") |"
	done
}

write_report() {
	local cpu kernel nginx_v wrk_v tmp n
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	kernel=$(uname -sr)
	nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: nginx\///')
	wrk_v=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')
	tmp=$OUT.tmp.$$
	{
		cat <<EOF
# Benchmarks

Written by \`make bench\` (tests/bench/run.sh); run it again to update
this file, do not edit the figures by hand.

**What is measured.** Throughput and latency of the gatekeeper's cheapest
grant, a pre-signed download request answered with a 302 to a data URL,
next to nginx doing the same shape of work: verify a signature, check the
origin and client address, log, redirect. Both run on loopback, on the
same machine as the load generator, each with $WORKERS workers (gatekeeper
threads, nginx worker processes). \`wrk\` drives each in turn with the
same settings: $THREADS threads, $CONNS keep-alive connections, $DURATION
per measured run after a $WARMUP warm-up, cycling through $NURLS distinct
pre-signed URLs with an \`Origin: $ORIGIN\` header. Every answer counted
is a 302; a run with any other answer or a socket error is refused.
Before each warm-up a \`sync\` writes back what the run before left
dirty (nginx's access log, a gatekeeper's audit database), so that no
run waits for another's disk writes.

- gatekeeper: protocol v1 \`GET_Object\` (HMAC-SHA256 check, origin and IP
  ACL, audit record, signed data URL), default SQLite audit, fs store.
- gatekeeper, v2: \`GET /v2/objects/{key}\` with an EdDSA (Ed25519)
  token in \`?token=\` (JWS parse, signature verification, claims,
  scope, origin and IP ACL, audit record with the signature, signed data
  URL); no nginx counterpart (the ratio is taken against nginx's v1
  302). Two rows: with the default \`v2_verify_cache\`, where a token
  used again (wrk cycles through the $NURLS tokens) skips the Ed25519 check
  but every claim is still checked; and with the cache off, where every
  request pays an Ed25519 verification (libsodium: about 50 µs of one core here).
- HTTPS: the same v1 request over TLS, both servers with the same ECDSA
  P-256 certificate (a test CA made for the run), TLS 1.2/1.3 and the
  gatekeeper's AEAD/ECDHE suites (GnuTLS in the gatekeeper through
  libmicrohttpd, OpenSSL in nginx; no session resumption on either).
  "keep-alive": wrk's connections stay open, one handshake each;
  "new connection per request": wrk sends \`Connection: close\`, so every
  request pays a TCP connect and a full handshake.
- nginx: \`secure_link\` / \`secure_link_md5\` over the expiry, location
  and path with a secret, an origin \`map\`, \`allow\`/\`deny\`,
  \`return 302\` to a data URL of the same shape, access log on (combined
  format, unbuffered, the default).

**Machine.** $(nproc) CPUs, $cpu; $kernel; nginx $nginx_v, wrk $wrk_v.
Measured $(date -u '+%Y-%m-%d %H:%M UTC'); load average before the run
(1, 5, 15 min) $LOAD_BEFORE; other work on the machine shows up in the
figures.

## Results

EOF
		results_table
		cat <<EOF

p50 and p99 are wrk's latency percentiles (\`--latency\`); a ratio above 1
means the gatekeeper has more of it (more req/s, or a longer p99).

## Notes

- Every gatekeeper 302 includes a durable audit record: the answer is
  held until its record is on the disk in the audit journal (one
  \`write\` and one \`fdatasync\` for all the records waiting, up to
  \`[audit] batch\`, 4096 by default) and in SQLite's open transaction
  (WAL, committed without waiting for the disk, several batches per commit
  under load). nginx writes an access-log line per request with
  \`write()\` and does not wait for the disk.
- The machine may be shared with other work (see the load average above):
  compare the ratios within one run; absolute figures move with the load.
- Client and servers share the same $(nproc) CPUs, so wrk's own CPU use
  is part of every figure, the same way for both servers.
- Raw wrk output of the last run is in \`tests/bench/out/\` (not
  committed).
EOF
		for n in "${NOTES[@]}"; do
			echo "- $n"
		done
	} >"$tmp"
	mv "$tmp" "$OUT"
	echo "bench: wrote $OUT" >&2
}

main() {
	[ $# -eq 1 ] || die "usage: $0 GK_BIN"
	GK_BIN=$1
	case $GK_BIN in /*) ;; *) GK_BIN=$PWD/$GK_BIN ;; esac
	check_tools
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/gk-bench.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	rm -rf "$RAW"
	make_lists
	make_tls
	start_nginx
	V2_KEY=$TMP/vendor/bench.key
	V2_PUB=$("$GK_BIN" keygen --vendor ed25519 --kid bench \
	    --out "$TMP/vendor" | awk '/^public_key = / { print $3 }')
	[ -n "$V2_PUB" ] && [ -f "$V2_KEY" ] ||
	    die "gatekeeper keygen --vendor did not make the bench key"
	local s
	for s in "${SCENARIOS[@]}"; do
		if [ -n "${BENCH_SCENARIOS:-}" ] &&
		    [[ ",$BENCH_SCENARIOS," != *",${s%%|*},"* ]]; then
			continue
		fi
		run_scenario "$s"
	done
	stop_pid "$NGX_PID"
	NGX_PID=
	cp "$TMP/nginx/error.log" "$RAW/nginx-error.log" 2>/dev/null || true
	write_report
}

main "$@"
