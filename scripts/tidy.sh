#!/bin/sh
# clang-tidy over the project's C sources with the checks in .clang-tidy,
# using the compile database of build dir $1.
set -eu
build=${1:-build}
files=$(git ls-files 'src/*.c' 2>/dev/null || find src -name '*.c')
# shellcheck disable=SC2086
echo $files | xargs -n 4 -P "$(nproc)" clang-tidy -p "$build" --quiet 2>&1 |
	grep -v '^[0-9]* warnings\? generated' | tee /tmp/sipd-tidy.$$ || true
if grep -q 'error:\|warning:' /tmp/sipd-tidy.$$; then rm -f /tmp/sipd-tidy.$$; exit 1; fi
rm -f /tmp/sipd-tidy.$$
