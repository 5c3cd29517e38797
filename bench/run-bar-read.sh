#!/bin/bash
# What one trapped BAR read costs, next to the bare socket round trip under it.
#
#   bench/run-bar-read.sh [--arch x86_64|aarch64] [--dev VENDOR:DEVICE] [--bar N]
#                         [--offset OFF] [--iterations N] [--reps N]
#                         [--pingpong-iterations N] [--build-dir DIR] [run.sh options]
#
# Builds bench/guest_bar_read.c static for the guest arch and bench/pingpong.c for
# the host (into DIR, default build/bench-guest/ARCH), boots a guest with
# tests/guest/run.sh (by default against `thunderpass serve --backend model`; any
# other option goes to run.sh, e.g. --qemu-device "-device edu,bus=rp0" --dev 1234:11e8
# to time a device QEMU emulates itself), reads BAR N at OFF (default BAR0+0x0,
# PMC_BOOT_0: a trapped read) ITERATIONS times (default 20000), runs the ping-pong on
# the host, and prints both and their ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

arch=x86_64 dev=10de:2b85 bar=0 off=0 iters=20000 reps=1 ppiters=100000 bd=
run_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=$2; shift ;;
	--dev) dev=$2; shift ;;
	--bar) bar=$2; shift ;;
	--offset) off=$2; shift ;;
	--iterations) iters=$2; shift ;;
	--reps) reps=$2; shift ;;
	--pingpong-iterations) ppiters=$2; shift ;;
	--build-dir) bd=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	--quiet | --no-server | --no-device) run_args+=("$1") ;;
	*)
		[ $# -ge 2 ] || { echo "run-bar-read.sh: $1 needs a value" >&2; exit 2; }
		run_args+=("$1" "$2")
		shift
		;;
	esac
	shift
done
case $arch in
x86_64 | amd64) arch=x86_64 cc=${CC_X86_64:-gcc} ;;
aarch64 | arm64) arch=aarch64 cc=${CC_AARCH64:-aarch64-linux-gnu-gcc} ;;
*) echo "run-bar-read.sh: unknown arch '$arch'" >&2; exit 2 ;;
esac
[ -n "$bd" ] || bd=$top/build/bench-guest/$arch
mkdir -p "$bd"
command -v "$cc" > /dev/null || { echo "run-bar-read.sh: no $cc (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 2; }

"$cc" -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$bd/guest_bar_read" "$here/guest_bar_read.c"
${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -Werror -o "$bd/tp-pingpong" "$here/pingpong.c"

t=$(mktemp -d "${TMPDIR:-/tmp}/tp-bench.XXXXXX")
trap 'rm -rf "$t"' EXIT
rc=0
"$top/tests/guest/run.sh" --arch "$arch" --test "$here/guest-bar-read.sh" --quiet \
	--file "$bd/guest_bar_read" --log "$bd/guest.log" \
	--append "tp.dev=$dev tp.bar=$bar tp.off=$off tp.iters=$iters tp.reps=$reps" \
	${run_args[@]+"${run_args[@]}"} > "$t/run.out" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
	cat "$t/run.out" >&2
	echo "run-bar-read.sh: the guest run failed" >&2
	exit 1
fi
grep '^TEST ' "$t/run.out" | head -1
grep -a '^bench: ' "$bd/guest.log" || true
guest=$(grep -a '^bar_read_ns_per_op ' "$bd/guest.log" | tr -d '\r')
echo "$guest" | sed "s/\$/   (guest $arch, $dev BAR$bar+$off, $iters reads)/"
ns=$(echo "$guest" | awk '{print $2}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}')
host=$("$bd/tp-pingpong" "$ppiters")
echo "$host   (host, $ppiters round trips of 16 + 20 bytes)"
rt=$(echo "$host" | awk '{print $2}')
awk -v a="$ns" -v b="$rt" 'BEGIN { printf "ratio bar_read/pingpong %.2f\n", a / b }'
