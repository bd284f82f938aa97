#!/bin/sh
# mkdeb.sh BIN VERSION OUTDIR: builds OUTDIR/gatekeeper_VERSION_ARCH.deb
# from the built binary with dpkg-deb (no debhelper needed): the files of
# packaging/install.sh under /usr and /etc, Depends from dpkg-shlibdeps,
# and the maintainer scripts in packaging/debian.
set -eu
BIN=$1
VERSION=$2
OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
ARCH=$(dpkg --print-architecture)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root

BIN=$BIN DESTDIR=$ROOT PREFIX=/usr UNITDIR=/lib/systemd/system \
	sh "$HERE/install.sh"
# shared-library dependencies, the Debian way
mkdir -p "$WORK/debian"
printf 'Source: gatekeeper\n\nPackage: gatekeeper\nArchitecture: any\n' \
	>"$WORK/debian/control"
DEPENDS=$(cd "$WORK" && dpkg-shlibdeps -O root/usr/bin/gatekeeper 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || { echo "mkdeb: dpkg-shlibdeps found nothing" >&2; exit 1; }
SIZE=$(du -sk "$ROOT" | cut -f1)
mkdir -p "$ROOT/DEBIAN"
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" \
	-e "s|@DEPENDS@|$DEPENDS|" -e "s|@SIZE@|$SIZE|" \
	"$HERE/debian/control.in" >"$ROOT/DEBIAN/control"
echo /etc/gatekeeper/gatekeeper.ini >"$ROOT/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "$HERE/debian/$s" "$ROOT/DEBIAN/$s"
done
mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" \
	"$OUT/gatekeeper_${VERSION}_${ARCH}.deb" >/dev/null
echo "$OUT/gatekeeper_${VERSION}_${ARCH}.deb"
