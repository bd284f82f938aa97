#!/usr/bin/env bash
# make run: the first start creates the data folder (keys, config), then
# serves the gatekeeper with the demo page, printing what to try.
#
#   scripts/run.sh --check-port   only checks that the address is free
#                                 (make run does this before anything else)
#   scripts/run.sh BIN            serve with BIN (build/gatekeeper)
#
# The address is 127.0.0.1:8080 and the folder ./data. GK_RUN_DIR and
# GK_RUN_PORT choose others (the tests run a second copy that way); they
# apply when the folder's gatekeeper.ini is created, after which the file's
# [server] listen and port are what counts. GK_RUN_EXPIRES (tests) signs
# the printed URLs to expire at that unix time instead of in 5 minutes.
set -eu
cd "$(dirname "$0")/.."
top=$PWD
dir=${GK_RUN_DIR:-data}
conf=$dir/gatekeeper.ini

# [server] SETTING from the config file, else the default given
ini_get() {
	[ -f "$conf" ] || { echo "$2"; return; }
	awk -v want="$1" -v def="$2" '
		/^[ \t]*\[/ { sec = $0; gsub(/[][ \t]/, "", sec); next }
		sec == "server" && $0 ~ "^[ \t]*" want "[ \t]*=" {
			v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
			found = v
		}
		END { print (found != "" ? found : def) }' "$conf"
}
listen=$(ini_get listen 127.0.0.1)
port=$(ini_get port "${GK_RUN_PORT:-8080}")
base=http://$listen:$port

# a second 'make run' (or anything else on the port) is named first
if (exec 3<>"/dev/tcp/$listen/$port") 2>/dev/null; then
	echo "make run: $listen:$port is already in use, so the gatekeeper cannot start there." >&2
	echo "make run: is another 'make run' running? Stop it with Ctrl-C in its shell (or choose another [server] port in $conf)." >&2
	exit 1
fi
[ "${1:-}" = --check-port ] && exit 0

bin=$(realpath "$1")
if [ ! -f "$conf" ]; then
	mkdir -p "$dir" && chmod 700 "$dir"
	cat > "$conf" <<INI
# Created by 'make run' on first start. Every setting and its default:
# README.md, "Configuration", or: build/gatekeeper check-config --config $conf
[server]
listen = $listen
port = $port
demo = true

[gate]
data_dir = $dir
# the demo's roots: uploads go in through "app" and are read from
# "uploads"; v1 refuses any other root (README, "v1's root boundary")
v1_roots = app, uploads

[acl]
ip_allow = 127.0.0.0/8, ::1/128
origins = $base, http://localhost:$port
INI
	"$bin" keygen --config "$conf"
fi
"$bin" check-config --config "$conf" --quiet
exp=()
[ -n "${GK_RUN_EXPIRES:-}" ] && exp=(--expires "$GK_RUN_EXPIRES")
put=$("$bin" sign v1 --config "$conf" "${exp[@]}" --root app --path /demo/hello.txt --op PUT_Object)
list=$("$bin" sign v1 --config "$conf" "${exp[@]}" --root uploads --path /demo/ --op GET_Bucket)
get=$("$bin" sign v1 --config "$conf" "${exp[@]}" --root uploads --path /demo/hello.txt --op GET_Object)

# The upload answer is a POST form (URL and fields); this turns it into the
# curl that sends the file, or, when the gatekeeper refused (e.g. Expired),
# into a line that prints its message and fails. No single quotes inside.
py='import json,shlex,sys; t=sys.stdin.read(); r=json.loads(t) if t.startswith("{") else {}; c=r.get("clientReturn"); print("curl -s --fail-with-body -w \"\\n\" -H %s %s -F file=@/tmp/hello.txt %s" % (shlex.quote("Origin: @BASE@"), " ".join("-F " + shlex.quote("%s=%s" % kv) for kv in c["fields"].items()), shlex.quote(c["url"])) if c else "echo %s >&2; exit 1" % shlex.quote("upload refused: " + str(r.get("msg") or t.strip() or "no answer from @BASE@")))'
py=${py//@BASE@/$base}
o="-H 'Origin: $base'"

cat <<MSG

S3 Gatekeeper on $base   (demo page: $base/demo)
  config: $conf   keys: $dir/keys/   audit: $dir/audit.db

A signed v1 request, valid 5 minutes (it lists /demo/). curl sends the Origin
header a browser sends for the demo page; without one the gatekeeper answers
403 (README, "Origins and browsers"):
  curl -s --fail-with-body -w '\n' $o '$list'

Upload and download a file with curl (run in another shell):
  echo "hello, gatekeeper" > /tmp/hello.txt
  curl -s $o '$put' | python3 -c '$py' | sh
  curl -sL --fail-with-body $o '$get'

Search the audit:  cd $top && $bin audit search --config $conf --limit 10
Stop with Ctrl-C.
MSG
exec "$bin" serve --config "$conf"
