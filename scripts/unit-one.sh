#!/usr/bin/env bash
# Builds and runs one unit test against only the source folders named, so a
# module can be tested while others are mid-change.
#   scripts/unit-one.sh test_store src/store src/util
# Set SAN=address,undefined for a sanitizer build.
set -eu
t=$1; shift
srcs=()
for d in "$@"; do srcs+=("$d"/*.c); done
out=build/one; mkdir -p "$out"
san=()
[ -n "${SAN:-}" ] && san=(-fsanitize="$SAN" -fno-sanitize-recover=all -fno-omit-frame-pointer)
cc -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
	"${san[@]}" -Isrc -Iinclude -Itests/unit \
	$(pkg-config --cflags libmicrohttpd openssl sqlite3 inih jansson) \
	-o "$out/$t" "tests/unit/$t.c" "${srcs[@]}" \
	$(pkg-config --libs libmicrohttpd openssl sqlite3 inih jansson) -lpthread -lm
"$out/$t"
