#!/usr/bin/env bash
# make run: first start creates ./data (keys, config), then serves the
# gatekeeper on 127.0.0.1:8080 with the demo page, printing what to try.
set -eu
bin=$(realpath "$1")
cd "$(dirname "$0")/.."
conf=data/gatekeeper.ini
if [ ! -f "$conf" ]; then
	mkdir -p data && chmod 700 data
	cat > "$conf" <<'INI'
# Created by 'make run' on first start. Every setting and its default:
# README.md, "Configuration", or: build/gatekeeper check-config --config data/gatekeeper.ini
[server]
listen = 127.0.0.1
port = 8080
demo = true

[gate]
data_dir = ./data

[acl]
ip_allow = 127.0.0.0/8, ::1/128
origins = http://127.0.0.1:8080, http://localhost:8080
INI
	"$bin" keygen --config "$conf"
fi
"$bin" check-config --config "$conf" --quiet
base=http://127.0.0.1:8080
put=$("$bin" sign v1 --config "$conf" --root app --path /demo/hello.txt --op PUT_Object)
list=$("$bin" sign v1 --config "$conf" --root uploads --path /demo/ --op GET_Bucket)
get=$("$bin" sign v1 --config "$conf" --root uploads --path /demo/hello.txt --op GET_Object)
cat <<MSG

S3 Gatekeeper on $base   (demo page: $base/demo)
  config: $conf   keys: data/keys/   audit: data/audit.db

A signed v1 request (valid 5 minutes):
  $get

Upload, list and download a file with curl (run in another shell):
  echo "hello, gatekeeper" > /tmp/hello.txt
  curl -s -H 'Origin: $base' '$put' | python3 -c 'import json,sys; r=json.load(sys.stdin)["clientReturn"]; print(" ".join(["curl -s -H \"Origin: $base\""]+["-F %s=%s" % (k, v) for k, v in r["fields"].items()]+["-F file=@/tmp/hello.txt", r["url"]]))' | sh; echo
  curl -s -H 'Origin: $base' '$list'; echo
  curl -sL -H 'Origin: $base' '$get'

Search the audit:  $bin audit search --config $conf --limit 10
Stop with Ctrl-C.
MSG
exec "$bin" serve --config "$conf"
