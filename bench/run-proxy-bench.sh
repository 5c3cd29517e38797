#!/bin/bash
# nvme throughput in a guest through thunderpass's proxy backend against the same
# guest connected straight to the reference server (QEMU's nvme behind QEMU's
# x-vfio-user-server), in one run, as a ratio. Prints; asserts nothing.
#
#   bench/run-proxy-bench.sh [--arch x86_64|aarch64] [--mib N] [--ops N] [--with-intx]
#
# The guest program is bench/guest_nvme_io.c (static, per guest arch): queue depth 1,
# O_DIRECT, no flush; sequential: 1 MiB blocks, N MiB (default 32) written then
# read; random: 4 KiB, OPS (default 2000) reads then writes. Each figure is the best
# of three passes (tests/guest/t-proxy-nvme.sh, tp.mode=bench).
#
# Straight to the reference server MSI-X never fires (QEMU's client never unmasks
# the model's own MSI-X table: docs/proxy.md), so "direct" runs as the recipe did:
# pci=nomsi (INTx) with 2 s nvme timeouts. INTx there loses interrupts, each one a
# 2 s stall until the timeout polls the completion (io_timeouts in the table): the
# best of three passes keeps most of them out of the figures, not all; a run has
# hung for good once. "proxy" is the same guest through the proxy with MSI-X, as the
# proxy is meant to run. --with-intx adds the proxy with the direct run's settings
# (INTx from per-vector edges: interrupt storms under QEMU's TCG client, slow).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
arch=x86_64 mib=32 ops=2000 runs="direct proxy"
while [ $# -gt 0 ]; do
	case $1 in
	--with-intx) runs="direct proxy proxy-intx" ;;
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
"$cc" -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$bd/tp_nvme_io" "$here/guest_nvme_io.c"
"$top/tests/guest/refservers.sh" > /dev/null

nomsi="pci=nomsi nvme_core.io_timeout=2 nvme_core.admin_timeout=2"
declare -A res
keys="seq_write_MBps seq_read_MBps rand_read_iops rand_write_iops io_timeouts irqs"
for how in $runs; do
	log=$bd/proxy-bench-$how.log
	args=(--remote nvme --mode bench --arch "$arch" --file "$bd/tp_nvme_io" --timeout 900
		--log "$log" --label "bench-$how" --append "tp.mib=$mib tp.ops=$ops")
	case $how in
	direct) args+=(--direct --append "$nomsi") ;;
	proxy-intx) args+=(--append "$nomsi") ;;
	esac
	s=$(date +%s)
	if ! out=$("$top/tests/guest/run-proxy.sh" "${args[@]}" 2>&1); then
		echo "$out" | tail -20 >&2
		echo "run-proxy-bench.sh: the $how run failed" >&2
		continue
	fi
	echo "$how: guest run $(($(date +%s) - s)) s"
	for k in $keys; do
		res[$how.$k]=$(grep -a "^BENCH $k " "$log" | awk '$3 > m {m = $3} END {print m + 0}')
	done
done
line() { echo "$@" | awk '{printf "%-16s", $1; for (i = 2; i <= NF; i++) printf " %12s", $i; printf "\n"}'; }
hdr="figure"
for how in $runs; do hdr="$hdr $how"; done
line "$hdr proxy/direct"
for k in $keys; do
	l=$k
	for how in $runs; do l="$l ${res[$how.$k]:--}"; done
	for how in proxy; do
		l="$l $(awk -v d="${res[direct.$k]:-0}" -v p="${res[$how.$k]:-0}" -v k="$k" \
			'BEGIN { if (k ~ /MBps|iops/ && d > 0) printf "%.2f", p / d; else printf "-" }')"
	done
	line "$l"
done
echo "(guest $arch, QEMU 11 TCG; queue depth 1, O_DIRECT; direct: INTx, proxy: MSI-X)"
