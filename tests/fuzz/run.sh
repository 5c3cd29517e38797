#!/bin/bash
# Runs one libFuzzer harness (tests/fuzz/fuzz_*.c).
#
#   run.sh smoke NAME BINARY   replay tests/fuzz/corpus/NAME, then fuzz for
#                              $FUZZ_SMOKE_SECONDS (default 30) from a copy of it
#                              (the committed corpus is left alone); meson test
#                              suite 'fuzz', called by `make fuzz-smoke`
#   run.sh fuzz NAME BINARY    fuzz for $FUZZ_SECONDS (default 600) in a work
#                              corpus kept next to the binary (it keeps growing
#                              from run to run), then minimize it into
#                              tests/fuzz/corpus/NAME by edges (-merge=1
#                              -use_counters=0: small enough to commit); `make fuzz`
#
# A crash, leak, timeout or broken invariant fails the run; its input is kept as
# BINARY-artifacts/crash-* (add it to the corpus once fixed: it is then replayed
# by every smoke run). Prints "fuzz NAME: N executions" at the end.
# FUZZ_ARGS: more libFuzzer options. FUZZ_VERBOSE=1: the server's log lines too.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mode=${1:?mode}
name=${2:?name}
bin=${3:?binary}
corpus=$here/corpus/$name
art=$bin-artifacts
mkdir -p "$corpus" "$art"

case $name in
fuzz_msg | fuzz_frame) max_len=65536 ;;
fuzz_config) max_len=8192 ;;
*) max_len=4096 ;;
esac
# -close_fd_mask=2: the server's warnings about hostile messages stay out of the
# log (libFuzzer and the sanitizers keep their own copy of stderr for reports).
quiet=-close_fd_mask=2
[ -n "${FUZZ_VERBOSE:-}" ] && quiet=
common=(-max_len=$max_len -timeout=20 -rss_limit_mb=4096 -artifact_prefix="$art/"
	-print_final_stats=1 $quiet ${FUZZ_ARGS:-})
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

log=$(mktemp)
trap 'rm -rf "$log" ${tmp:-}' EXIT

execs() { sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -n 1; }

run() { # label, libFuzzer arguments...: output to the log, echoed on failure
	local label=$1
	shift
	if ! "$bin" "$@" > "$log" 2>&1; then
		tail -n 60 "$log"
		echo "fuzz $name: $label FAILED (inputs in $art)"
		exit 1
	fi
	grep -h '^FUZZ INVARIANT' "$log" || true
}

case $mode in
smoke)
	secs=${FUZZ_SMOKE_SECONDS:-30}
	n=$(find "$corpus" -type f | wc -l)
	run "corpus replay" "${common[@]}" -runs=0 "$corpus"
	echo "fuzz $name: corpus of $n inputs replayed"
	tmp=$(mktemp -d)
	cp -r "$corpus"/. "$tmp"/ 2>/dev/null || true
	run "smoke run" "${common[@]}" -max_total_time="$secs" "$tmp"
	echo "fuzz $name: $(execs "$log") executions in ${secs} s, no crash"
	;;
fuzz)
	secs=${FUZZ_SECONDS:-600}
	work=$bin-work
	mkdir -p "$work"
	run "fuzzing" "${common[@]}" -max_total_time="$secs" "$work" "$corpus"
	n=$(execs "$log")
	tmp=$(mktemp -d)
	run "merge" "${common[@]}" -merge=1 -use_counters=0 "$tmp" "$corpus" "$work"
	# Regression inputs (regress-*: crashes once found, now fixed) stay
	# whatever their coverage; the rest is the minimized merge.
	find "$corpus" -type f ! -name 'regress-*' -delete
	cp "$tmp"/* "$corpus"/ 2>/dev/null || true
	echo "fuzz $name: $n executions in ${secs} s, no crash; corpus $(find "$corpus" -type f | wc -l) inputs, $(($(cat "$corpus"/* | wc -c) / 1024)) KiB"
	;;
*)
	echo "run.sh: mode is smoke or fuzz" >&2
	exit 2
	;;
esac
