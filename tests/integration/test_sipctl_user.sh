#!/bin/sh
# sipctl user and domain commands on a temporary database: output, exit
# status, and that no password reaches the file.
#
# usage: test_sipctl_user.sh SIPCTL
set -u
if [ $# -ne 1 ]; then
	echo "usage: $0 SIPCTL" >&2
	exit 2
fi
sipctl=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
db=$dir/sipd.db
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# expect STATUS COMMAND...: run sipctl, keep stdout/stderr in $out/$err.
expect() {
	want=$1
	shift
	"$sipctl" "$@" >"$dir/out" 2>"$dir/err"
	got=$?
	out=$(cat "$dir/out")
	err=$(cat "$dir/err")
	[ "$got" -eq "$want" ] ||
		fail "sipctl $*: exit $got, expected $want (stderr: $err)"
}

# contains TEXT PATTERN WHAT
contains() {
	printf '%s\n' "$1" | grep -q -- "$2" || fail "$3: no '$2' in: $1"
}

expect 0 --db "$db" domain add example.com
contains "$out" "domain example.com added" "domain add"
expect 1 --db "$db" domain add example.com
contains "$err" "already exists" "duplicate domain"
expect 0 --db "$db" domain list
[ "$out" = "example.com" ] || fail "domain list: $out"

expect 0 --db "$db" user add alice@example.com --password 'Sesame-0pen'
contains "$out" "user alice@example.com added" "user add"
# Password from stdin.
printf 'b0b-s3cret\n' | "$sipctl" --db "$db" user add bob@example.com \
	>"$dir/out" 2>"$dir/err" || fail "user add from stdin: $(cat "$dir/err")"
expect 1 --db "$db" user add alice@example.com --password x
contains "$err" "alice@example.com already exists" "duplicate user"
expect 1 --db "$db" user add carol@example.org --password x
contains "$err" "example.org is not served" "unserved domain"
expect 1 --db "$db" user add 'bad user@example.com' --password x
contains "$err" "invalid" "bad user name"
printf '\n' | "$sipctl" --db "$db" user add dave@example.com \
	>/dev/null 2>&1 && fail "empty password accepted"

expect 0 --db "$db" user list
[ "$(printf '%s\n' "$out" | cut -f1 | tr '\n' ' ')" = \
	"alice@example.com bob@example.com " ] || fail "user list: $out"
printf '%s\n' "$out" | cut -f2 |
	grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' &&
	fail "user list dates: $out"
expect 0 --db "$db" user list example.com
[ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ] || fail "user list DOMAIN: $out"
expect 1 --db "$db" user list example.net
contains "$err" "not served" "list of an unserved domain"

expect 0 --db "$db" user passwd alice@example.com --password 'N3w-Sesame'
contains "$out" "password changed" "passwd"
expect 1 --db "$db" user passwd nobody@example.com --password x
contains "$err" "no such user nobody@example.com" "passwd unknown user"

expect 1 --db "$db" domain del example.com
contains "$err" "still has users" "domain del with users"
expect 0 --db "$db" user del bob@example.com
contains "$out" "user bob@example.com removed" "user del"
expect 1 --db "$db" user del bob@example.com
contains "$err" "no such user" "user del twice"
expect 0 --db "$db" user list
[ "$(printf '%s\n' "$out" | cut -f1)" = "alice@example.com" ] ||
	fail "user list after del: $out"

# No password in any form in the database files.
for pw in Sesame-0pen b0b-s3cret N3w-Sesame; do
	if grep -q -a -- "$pw" "$db"* 2>/dev/null; then
		fail "password $pw found in the database"
	fi
done
[ "$(stat -c %a "$db")" = 600 ] || fail "database mode $(stat -c %a "$db")"

# The default path: $SIPD_DB, then $XDG_DATA_HOME, then ~/.local/share.
SIPD_DB=$db "$sipctl" user list >"$dir/out" 2>&1 || fail "SIPD_DB"
grep -q alice "$dir/out" || fail "SIPD_DB not used: $(cat "$dir/out")"
env -u SIPD_DB XDG_DATA_HOME="$dir/xdg" "$sipctl" domain list \
	>/dev/null 2>&1 || fail "XDG_DATA_HOME"
[ -f "$dir/xdg/sipd/sipd.db" ] || fail "no \$XDG_DATA_HOME/sipd/sipd.db"
env -u SIPD_DB -u XDG_DATA_HOME HOME="$dir/home" "$sipctl" domain list \
	>/dev/null 2>&1 || fail "HOME"
[ -f "$dir/home/.local/share/sipd/sipd.db" ] ||
	fail "no ~/.local/share/sipd/sipd.db"

# A database that cannot be created or written.
expect 1 --db "$dir/missing/dir/sipd.db" domain list
contains "$err" "cannot open database" "unopenable database"
if [ "$(id -u)" -ne 0 ]; then
	chmod 0400 "$db"
	expect 1 --db "$db" user add erin@example.com --password x
	contains "$err" "not writable" "read-only database"
	chmod 0600 "$db"
fi
printf 'not a database, but long enough to look like a file header\n' \
	>"$dir/junk.db"
expect 1 --db "$dir/junk.db" user list
contains "$err" "cannot open database" "not a database"

# Usage errors.
expect 2 --db "$db" user
expect 2 --db "$db" user frobnicate alice@example.com
expect 2 --db "$db" user add alice
expect 2 --db "$db" domain add
expect 0 --help
contains "$out" "SIPD_DB" "help mentions SIPD_DB"
contains "$out" "user add USER@DOMAIN" "help lists user add"

if [ "$failures" -ne 0 ]; then
	echo "test_sipctl_user: $failures failure(s)" >&2
	exit 1
fi
echo "test_sipctl_user: ok"
