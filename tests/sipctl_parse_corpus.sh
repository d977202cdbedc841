#!/bin/sh
# Runs `sipctl parse` over the RFC 4475 and RFC 5118 torture messages.
#
# usage: sipctl_parse_corpus.sh SIPCTL CORPUS_DIR
#
# For every .dat file (archive/ excluded): the exit status is 0 or 1, never
# a crash; exit 0 prints valid JSON; exit 1 prints a FILE:LINE:COL: error:
# line. Files MANIFEST.tsv marks parse_ok must parse and pass the checks.
# A few parsed values are compared with what the RFCs say, and input that
# is not UTF-8 must still give valid JSON.
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

# Run sipctl on every file; record "rel<TAB>rc" and keep its output.
n=0
: >"$tmp/results"
for f in "$corpus"/rfc4475/*.dat "$corpus"/rfc5118/*.dat; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	"$sipctl" parse "$f" >"$tmp/$n.out" 2>"$tmp/$n.err"
	printf '%s\t%s\t%s\n' "${f#"$corpus"/}" "$?" "$n" >>"$tmp/results"
done

printf 'SIP/2.0 200 \377\303(\300\257 \355\240\200 \001ok\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nX: \364\220\200\200\177\r\n\r\n' >"$tmp/bytes"
"$sipctl" parse - <"$tmp/bytes" >"$tmp/bytes.out" 2>"$tmp/bytes.err"
printf '%s\n' "$?" >"$tmp/bytes.rc"

exec python3 - "$tmp" "$manifest" <<'PY'
import json
import os
import re
import sys

tmp, manifest = sys.argv[1], sys.argv[2]
expected = {}
with open(manifest, encoding="utf-8") as f:
    for line in f.read().splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 6:
            expected[cols[0]] = cols[5]

failures = []
parsed = {}
results = []
with open(os.path.join(tmp, "results")) as f:
    for line in f:
        rel, rc, n = line.rstrip("\n").split("\t")
        results.append((rel, int(rc), n))


def read(name):
    with open(os.path.join(tmp, name), "rb") as f:
        return f.read()


for rel, rc, n in results:
    out, err = read(n + ".out"), read(n + ".err").decode("utf-8", "replace")
    if rc == 0:
        try:
            parsed[rel] = json.loads(out.decode("utf-8"))
        except ValueError as e:
            failures.append("%s: exit 0 but output is not valid JSON: %s"
                            % (rel, e))
            continue
    elif rc == 1:
        if not re.search(r"^.+:\d+:\d+: error: .+", err, re.M):
            failures.append("%s: exit 1 without a FILE:LINE:COL: error: "
                            "line: %r" % (rel, err))
        continue
    else:
        failures.append("%s: exit status %d (crash or usage error): %s"
                        % (rel, rc, err.strip()))
        continue
    if expected.get(rel) == "parse_ok" and parsed[rel].get("check") != {
            "ok": True}:
        failures.append("%s: expected parse_ok, check says %r"
                        % (rel, parsed[rel].get("check")))
for rel, rc, n in results:
    if expected.get(rel) == "parse_ok" and rc != 0:
        failures.append("%s: expected parse_ok, got: %s"
                        % (rel, read(n + ".err").decode("utf-8",
                                                         "replace").strip()))
if not results:
    failures.append("no .dat files found")


def via_values(d):
    return sum(len(h["values"]) for h in d["headers"]
               if h["canonical"] == "Via")


def hdr(d, name):
    return [h for h in d["headers"] if h["canonical"] == name]


checks = [
    ("rfc4475/wsinv.dat", lambda d: d["method"] == "INVITE"
     and d["request_uri"]["host"] == "chair-dnrc.example.com"),
    ("rfc4475/wsinv.dat", lambda d: via_values(d) == 3),
    ("rfc4475/wsinv.dat",
     lambda d: [h["parsed"]["number"] for h in hdr(d, "Max-Forwards")]
     == [68]),
    ("rfc4475/wsinv.dat",
     lambda d: [h["parsed"]["number"] for h in hdr(d, "CSeq")] == [9]),
    ("rfc4475/longreq.dat", lambda d: via_values(d) == 34),
    ("rfc4475/mpart01.dat", lambda d: d["body"]["length"] == 553),
    ("rfc4475/mpart01.dat", lambda d: len(d["body"]["parts"]) == 2),
    ("rfc4475/mpart01.dat",
     lambda d: d["body"]["parts"][0]["text"] == "Hello"),
    ("rfc4475/esc02.dat", lambda d: d["method"] == "RE%47IST%45R"
     and not d["method_known"]),
    ("rfc4475/esc02.dat",
     lambda d: sum(len(h["values"]) for h in hdr(d, "Contact")) == 2),
    ("rfc4475/dblreq.dat", lambda d: d["method"] == "REGISTER"
     and d["body"]["length"] == 0 and d["ignored_trailing_bytes"] > 0),
    ("rfc4475/semiuri.dat",
     lambda d: d["request_uri"]["user"] == "user;par=u%40example.net"),
    ("rfc4475/unreason.dat",
     lambda d: d["type"] == "response" and d["status"] == 200),
    ("rfc4475/noreason.dat",
     lambda d: d["status"] == 100 and d["reason"] == ""),
    ("rfc4475/badvers.dat", lambda d: d["check"]["ok"] is False
     and d["check"]["status"] == 505),
    ("rfc4475/insuf.dat", lambda d: d["check"]["ok"] is False
     and d["check"]["status"] == 400),
    ("rfc4475/sdp01.dat",
     lambda d: [m["media"] for m in d["body"]["sdp"]["media"]]
     == ["audio", "video"]),
    ("rfc5118/ipv6-good.dat",
     lambda d: d["request_uri"]["host"] == "[2001:db8::10]"
     and d["request_uri"]["host_kind"] == "ipv6"),
    ("rfc5118/port-unambiguous.dat",
     lambda d: d["request_uri"]["port"] == 5070),
]
for i, (rel, check) in enumerate(checks):
    if rel not in parsed:
        failures.append("value check %d: %s did not parse" % (i, rel))
        continue
    try:
        ok = check(parsed[rel])
    except (KeyError, IndexError, TypeError) as e:
        ok = False
        failures.append("value check %d on %s raised %r" % (i, rel, e))
        continue
    if not ok:
        failures.append("value check %d on %s failed" % (i, rel))

if read("bytes.rc").strip() != b"0":
    failures.append("non-UTF-8 input did not parse: %r" % read("bytes.err"))
else:
    try:
        d = json.loads(read("bytes.out").decode("utf-8"))
        if d["reason"] != "\u00ff\u00c3(\u00c0\u00af \u00ed\u00a0\u0080 \u0001ok":
            failures.append("non-UTF-8 reason came out as %r" % d["reason"])
    except ValueError as e:
        failures.append("non-UTF-8 input: output is not valid JSON: %s" % e)

for f in failures:
    print("FAIL: " + f, file=sys.stderr)
if failures:
    print("sipctl_parse_corpus: %d failure(s) over %d files"
          % (len(failures), len(results)), file=sys.stderr)
    sys.exit(1)
print("sipctl_parse_corpus: %d files ok, %d value checks ok"
      % (len(results), len(checks)))
PY
