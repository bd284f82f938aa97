#!/usr/bin/env bash
# Installs the Debian packages S3 Gatekeeper needs to build, run and test,
# only those missing. Idempotent and quiet; needs root (or sudo) when
# something is missing.
set -eu

PKGS=(
	build-essential pkg-config clang libclang-rt-14-dev
	libmicrohttpd-dev libssl-dev libsqlite3-dev libinih-dev libjansson-dev
	libcurl4-openssl-dev libexpat1-dev libmaxminddb-dev libpq-dev
	libmaxmind-db-writer-perl libgnutls28-dev libsystemd-dev
	libgeoip-dev geoip-database haproxy
	python3 python3-pytest python3-requests python3-cryptography sqlite3 curl
	postgresql
	nginx wrk chromium
	awscli python3-boto3 rclone s3cmd zlib1g-dev
)
# the browser tests drive Chromium with playwright-core from npm; Debian's
# npm is only needed where no Node.js is installed already
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
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
