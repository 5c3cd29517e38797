#!/bin/bash
# nvme throughput in a guest through thunderpass's proxy backend against the same
# guest connected straight to the reference server (QEMU's nvme behind QEMU's
# x-vfio-user-server), in one run, as a ratio. Prints; asserts nothing.
#
#   bench/run-proxy-bench.sh [--arch x86_64|aarch64] [--mib N] [--ops N]
#
# Sequential: busybox dd, 1 MiB blocks, O_DIRECT, N MiB (default 64) written then
# read. Random: bench/guest_nvme_rand.c (static, per guest arch), 4 KiB O_DIRECT
# reads then writes at queue depth 1, OPS each (default 4000). Each figure is the
# better of two passes in the guest (tests/guest/t-proxy-nvme.sh, tp.mode=bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
arch=x86_64 mib=64 ops=4000
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=$2; shift ;;
	--mib) mib=$2; shift ;;
	--ops) ops=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	*) echo "run-proxy-bench.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
	shift
done
case $arch in
x86_64) cc=${CC_X86_64:-gcc} ;;
aarch64) cc=${CC_AARCH64:-aarch64-linux-gnu-gcc} ;;
*) echo "run-proxy-bench.sh: unknown arch '$arch'" >&2; exit 2 ;;
esac
bd=$top/build/bench-guest/$arch
mkdir -p "$bd"
"$cc" -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$bd/tp_nvme_rand" "$here/guest_nvme_rand.c"
"$top/tests/guest/refservers.sh" > /dev/null

declare -A res
for how in direct proxy; do
	log=$bd/proxy-bench-$how.log
	args=(--remote nvme --mode bench --arch "$arch" --file "$bd/tp_nvme_rand" --timeout 600
		--log "$log" --label "bench-$how" --append "tp.mib=$mib tp.ops=$ops")
	[ $how = direct ] && args+=(--direct)
	if ! out=$("$top/tests/guest/run-proxy.sh" "${args[@]}" 2>&1); then
		echo "$out" | tail -20 >&2
		echo "run-proxy-bench.sh: the $how run failed" >&2
		exit 1
	fi
	echo "$out" | grep 'guest run'
	for k in seq_write_MBps seq_read_MBps rand_read_iops rand_write_iops; do
		res[$how.$k]=$(grep -a "^BENCH $k " "$log" | awk '$3 > m {m = $3} END {print m + 0}')
	done
done
printf '%-18s %12s %12s %8s   (guest %s, QEMU 11 TCG, nvme behind x-vfio-user-server)\n' \
	figure direct proxy ratio "$arch"
for k in seq_write_MBps seq_read_MBps rand_read_iops rand_write_iops; do
	awk -v k="$k" -v d="${res[direct.$k]}" -v p="${res[proxy.$k]}" \
		'BEGIN { printf "%-18s %12.1f %12.1f %8.2f\n", k, d, p, d > 0 ? p / d : 0 }'
done
