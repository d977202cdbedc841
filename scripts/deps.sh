#!/bin/sh
# Installs the Debian packages sipd needs to build, test and run. As root it
# runs apt-get; otherwise it prints the exact command and fails.
set -eu
PKGS="build-essential cmake pkg-config clang clang-format clang-tidy cppcheck
libclang-rt-14-dev llvm libuv1-dev libssl-dev libsqlite3-dev libc-ares-dev
libcmocka-dev python3 nodejs node-ws openssl sip-tester baresip kamailio
kamailio-sqlite-modules gnuplot-nox"
missing=""
for p in $PKGS; do
	# Node.js from another source than Debian: the command is what
	# matters (node-ws is Debian's ws module, found through NODE_PATH).
	case $p in
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	esac
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "sipd needs these Debian packages:$missing" >&2
	echo "run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
$cmd
