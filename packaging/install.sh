#!/bin/sh
# Installs S3 Gatekeeper: `make install` and the .deb (packaging/mkdeb.sh)
# both run this. Environment: BIN (the built binary), DESTDIR (staging
# root, empty for the live system), PREFIX (/usr/local), SYSCONFDIR (/etc),
# LOCALSTATEDIR (/var). Without DESTDIR, as root, it also creates the
# gatekeeper system user, the state directory and the keys (setup-system).
set -eu
: "${BIN:?BIN=path of the gatekeeper binary}"
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
LOCALSTATEDIR=${LOCALSTATEDIR:-/var}
HERE=$(cd "$(dirname "$0")" && pwd)
BINDIR=$PREFIX/bin
LIBDIR=$PREFIX/lib/gatekeeper
DOCDIR=$PREFIX/share/doc/gatekeeper
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}

install -d "$DESTDIR$BINDIR" "$DESTDIR$LIBDIR" "$DESTDIR$DOCDIR" \
	"$DESTDIR$UNITDIR"
install -m 0755 "$BIN" "$DESTDIR$BINDIR/gatekeeper"
install -m 0755 "$HERE/setup-system.sh" "$DESTDIR$LIBDIR/setup-system"
install -m 0644 "$HERE/../README.md" "$DESTDIR$DOCDIR/README.md"
sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" \
	-e "s|@DOCDIR@|$DOCDIR|g" "$HERE/gatekeeper.service.in" \
	>"$DESTDIR$UNITDIR/gatekeeper.service"
chmod 0644 "$DESTDIR$UNITDIR/gatekeeper.service"
install -d -m 0750 "$DESTDIR$SYSCONFDIR/gatekeeper"
# an existing config is never overwritten
if [ ! -e "$DESTDIR$SYSCONFDIR/gatekeeper/gatekeeper.ini" ]; then
	install -m 0640 "$HERE/gatekeeper.ini" \
		"$DESTDIR$SYSCONFDIR/gatekeeper/gatekeeper.ini"
fi
if [ -z "$DESTDIR" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		"$LIBDIR/setup-system" "$BINDIR" "$SYSCONFDIR" \
			"$LOCALSTATEDIR/lib/gatekeeper"
	else
		echo "install: not root: create the gatekeeper user and" \
		    "$LOCALSTATEDIR/lib/gatekeeper yourself" \
		    "($LIBDIR/setup-system)" >&2
	fi
fi
