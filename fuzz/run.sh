#!/bin/bash
# Runs every libFuzzer target of a build for a while, seeded from the corpus.
#
# usage: fuzz/run.sh BUILD_DIR SECONDS
#
# Seeds go to BUILD_DIR/fuzz-seeds/<target> (rebuilt each run), new inputs to
# BUILD_DIR/fuzz-work/<target>, findings to BUILD_DIR/fuzz-artifacts/<target>
# and the logs to BUILD_DIR/fuzz-logs/<target>.log. fuzz_msg and fuzz_sdp
# (and any other target) start from every tests/data/corpus/**/*.dat plus
# the PROTOS c07-sip cases (../shared/corpus/protos, when present); fuzz_uri
# from the URIs found in those messages. Any crash, leak or timeout fails.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
protos=$root/../shared/corpus/protos/testcases.tar.gz

dats=$(find "$root/tests/data/corpus" -name '*.dat' -type f | sort)
if [ -f "$protos" ]; then
	protos_arg="--protos $protos"
else
	protos_arg=""
	echo "note: $protos not found, fuzzing without the PROTOS seeds"
fi

targets=$(find "$build" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
if [ -z "$targets" ]; then
	echo "$0: no fuzz_* binaries in $build (configure with -DSIPD_FUZZ=ON)" >&2
	exit 1
fi

# One target: seeds, a bounded run, and a one-line result in $build/fuzz-logs.
run_one() {
	bin=$1
	name=$(basename "$bin")
	seeds=$build/fuzz-seeds/$name
	work=$build/fuzz-work/$name
	artifacts=$build/fuzz-artifacts/$name
	log=$build/fuzz-logs/$name.log
	rm -rf "$seeds"
	mkdir -p "$seeds" "$work" "$artifacts" "$build/fuzz-logs"
	case $name in
	fuzz_uri) mode=uris ;;
	*) mode=messages ;;
	esac
	# shellcheck disable=SC2086
	python3 "$root/fuzz/make_seeds.py" "$mode" "$seeds" $protos_arg $dats \
		>/dev/null

	echo "== $name: ${seconds}s, $(find "$seeds" -type f | wc -l) seeds"
	rc=0
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts/" \
		"$work" "$seeds" >"$log" 2>&1 || rc=$?

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
		tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	corp=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	if [ "$rc" -eq 0 ]; then
		status=ok
	else
		status="FAILED (exit $rc)"
		{
			echo "---- $name: last lines of $log"
			tail -n 40 "$log"
			find "$artifacts" -type f | sed 's|^|  artifact: |'
		} >"$build/fuzz-logs/$name.failure"
	fi
	printf '%-11s %s: %s execs, cov %s, ft %s, corpus %s\n' \
		"$name" "$status" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" >"$build/fuzz-logs/$name.result"
}

# Run FUZZ_JOBS targets at a time (default: one per core).
jobs=${FUZZ_JOBS:-$(nproc)}
rm -f "$build"/fuzz-logs/*.result "$build"/fuzz-logs/*.failure
running=0
for bin in $targets; do
	run_one "$bin" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n 2>/dev/null || wait
		running=$((running - 1))
	fi
done
wait

failed=0
summary=""
for bin in $targets; do
	name=$(basename "$bin")
	res=$build/fuzz-logs/$name.result
	if [ ! -f "$res" ]; then
		echo "$name: no result" >&2
		failed=$((failed + 1))
		continue
	fi
	if [ -f "$build/fuzz-logs/$name.failure" ]; then
		cat "$build/fuzz-logs/$name.failure"
		failed=$((failed + 1))
	fi
	summary="$summary$(cat "$res")
"
done

echo "== fuzz summary"
printf '%s' "$summary"
if [ "$failed" -ne 0 ]; then
	echo "fuzz: $failed target(s) failed" >&2
	exit 1
fi
