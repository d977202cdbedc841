#!/bin/sh
# Runs `sipctl parse` over the RFC 4475 and RFC 5118 torture messages.
#
# usage: sipctl_parse_corpus.sh SIPCTL CORPUS_DIR
#
# For every .dat file (archive/ excluded): the exit status is 0 or 1, never
# a crash; exit 0 prints valid JSON; exit 1 prints a FILE:LINE:COL: error:
# line. Files MANIFEST.tsv marks parse_ok must parse and pass the checks.
# A few parsed values are compared with what the RFCs say.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 SIPCTL CORPUS_DIR" >&2
	exit 2
fi
sipctl=$1
corpus=$2
manifest=$corpus/MANIFEST.tsv
[ -x "$sipctl" ] || { echo "$0: $sipctl: not executable" >&2; exit 2; }
[ -f "$manifest" ] || { echo "$0: $manifest: missing" >&2; exit 2; }

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

fail=0
count=0
bad() {
	echo "FAIL: $*" >&2
	fail=$((fail + 1))
}

# Expected outcome of a corpus-relative path, from column 6 of the manifest.
expected() {
	awk -F'\t' -v f="$1" '$1 == f { print $6; exit }' "$manifest"
}

for f in "$corpus"/rfc4475/*.dat "$corpus"/rfc5118/*.dat; do
	[ -f "$f" ] || continue
	rel=${f#"$corpus"/}
	count=$((count + 1))
	"$sipctl" parse "$f" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	case $rc in
	0)
		if ! python3 -m json.tool "$tmp/out" >/dev/null 2>&1; then
			bad "$rel: exit 0 but output is not valid JSON"
			continue
		fi
		;;
	1)
		if ! grep -q '^.*:[0-9][0-9]*:[0-9][0-9]*: error: ' "$tmp/err"
		then
			bad "$rel: exit 1 without a FILE:LINE:COL: error: line"
			sed 's/^/  /' "$tmp/err" >&2
		fi
		;;
	*)
		bad "$rel: exit status $rc (crash or usage error)"
		sed 's/^/  /' "$tmp/err" >&2
		continue
		;;
	esac
	exp=$(expected "$rel")
	if [ "$exp" = parse_ok ]; then
		if [ $rc -ne 0 ]; then
			bad "$rel: expected parse_ok, got: $(cat "$tmp/err")"
		elif ! python3 -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["check"]["ok"] is True else 1)
' "$tmp/out"; then
			bad "$rel: expected parse_ok, check says" \
				"$(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["check"])' "$tmp/out")"
		fi
	fi
done

if [ "$count" -eq 0 ]; then
	bad "no .dat files under $corpus"
fi

# Concrete values: "FILE|python expression over d (the JSON)".
value_checks='
rfc4475/wsinv.dat|d["method"] == "INVITE" and d["request_uri"]["host"] == "chair-dnrc.example.com"
rfc4475/wsinv.dat|sum(len(h["values"]) for h in d["headers"] if h["canonical"] == "Via") == 3
rfc4475/wsinv.dat|[h["parsed"]["number"] for h in d["headers"] if h["canonical"] == "Max-Forwards"] == [68]
rfc4475/wsinv.dat|[h["parsed"]["number"] for h in d["headers"] if h["canonical"] == "CSeq"] == [9]
rfc4475/longreq.dat|sum(len(h["values"]) for h in d["headers"] if h["canonical"] == "Via") == 34
rfc4475/mpart01.dat|d["body"]["length"] == 553
rfc4475/mpart01.dat|len(d["body"]["parts"]) == 2
rfc4475/mpart01.dat|d["body"]["parts"][0]["text"] == "Hello"
rfc4475/esc02.dat|d["method"] == "RE%47IST%45R" and not d["method_known"]
rfc4475/esc02.dat|sum(len(h["values"]) for h in d["headers"] if h["canonical"] == "Contact") == 2
rfc4475/dblreq.dat|d["method"] == "REGISTER" and d["body"]["length"] == 0 and d["ignored_trailing_bytes"] > 0
rfc4475/semiuri.dat|d["request_uri"]["user"] == "user;par=u%40example.net"
rfc4475/unreason.dat|d["type"] == "response" and d["status"] == 200
rfc4475/noreason.dat|d["status"] == 100 and d["reason"] == ""
rfc4475/badvers.dat|d["check"] == {"ok": False, "status": 505, "reason": d["check"]["reason"]}
rfc4475/insuf.dat|d["check"]["ok"] is False and d["check"]["status"] == 400
rfc5118/ipv6-good.dat|d["request_uri"]["host"] == "[2001:db8::10]" and d["request_uri"]["host_kind"] == "ipv6"
rfc5118/port-unambiguous.dat|d["request_uri"]["port"] == 5070
'
if [ -d "$corpus/rfc4475" ]; then
	echo "$value_checks" | while IFS='|' read -r file expr; do
		[ -n "$file" ] || continue
		if ! "$sipctl" parse "$corpus/$file" >"$tmp/v" 2>"$tmp/verr"; then
			echo "FAIL: $file: does not parse: $(cat "$tmp/verr")"
			continue
		fi
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
try:
    ok = eval(sys.argv[2])
except Exception as e:
    ok = False
    print("  %s: %r" % (type(e).__name__, e))
sys.exit(0 if ok else 1)
' "$tmp/v" "$expr" || echo "FAIL: $file: $expr"
	done >"$tmp/values" 2>&1
	if grep -q FAIL "$tmp/values"; then
		cat "$tmp/values" >&2
		fail=$((fail + $(grep -c FAIL "$tmp/values")))
	fi
fi

# Arbitrary bytes must still give valid JSON.
printf 'SIP/2.0 200 \377\303(\300\257 \355\240\200 \001ok\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nX: \364\220\200\200\177\r\n\r\n' >"$tmp/bytes"
if "$sipctl" parse - <"$tmp/bytes" >"$tmp/out" 2>"$tmp/err"; then
	python3 -m json.tool "$tmp/out" >/dev/null 2>&1 ||
		bad "invalid UTF-8 input: output is not valid JSON"
else
	bad "invalid UTF-8 input: $(cat "$tmp/err")"
fi

if [ "$fail" -ne 0 ]; then
	echo "sipctl_parse_corpus: $fail failure(s) over $count files" >&2
	exit 1
fi
echo "sipctl_parse_corpus: $count files ok"
