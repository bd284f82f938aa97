#!/bin/sh
# setup-system BINDIR SYSCONFDIR STATEDIR: the gatekeeper system user and
# group, the config directory readable by the group only, the state
# directory owned by the user (0700), and the keys (gatekeeper keygen, as
# the user; existing keys are kept). Idempotent; run as root by
# `make install` and the .deb's postinst.
set -eu
BINDIR=$1
CONF=$2/gatekeeper
STATE=$3

if ! getent group gatekeeper >/dev/null; then
	groupadd --system gatekeeper
fi
if ! getent passwd gatekeeper >/dev/null; then
	useradd --system --gid gatekeeper --home-dir "$STATE" --no-create-home \
		--shell /usr/sbin/nologin --comment "S3 Gatekeeper" gatekeeper
fi
install -d -m 0750 -o root -g gatekeeper "$CONF"
chown root:gatekeeper "$CONF/gatekeeper.ini"
chmod 0640 "$CONF/gatekeeper.ini"
install -d -m 0700 -o gatekeeper -g gatekeeper "$STATE"
# keys as the service user, so it owns them (mode 0600)
setpriv --reuid=gatekeeper --regid=gatekeeper --init-groups \
	"$BINDIR/gatekeeper" keygen --config "$CONF/gatekeeper.ini" >/dev/null
