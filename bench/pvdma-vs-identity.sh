#!/bin/bash
# The copy-engine self-test (guest/tpselftest, unchanged) with its DMA through
# dart + pvdma against the identity IOMMU model, two guest runs back to back in
# one invocation (same machine, same load), and the ring's requests per second as
# the guest sees them (pvdma's debugfs bench: rounds of one batch of N MAPs and one
# of N UNMAPs, N = 1, 16, 256). Prints; asserts nothing (TCG numbers on a shared
# machine). docs/guest-pvdma.md has figures.
#
#   bench/pvdma-vs-identity.sh [--arch x86_64|aarch64] [--jobs N] [--smp N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
arch=x86_64 jobs=1000 smp=1
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=$2; shift ;;
	--jobs) jobs=$2; shift ;;
	--smp) smp=$2; shift ;;
	*) echo "usage: $0 [--arch x86_64|aarch64] [--jobs N] [--smp N]" >&2; exit 2 ;;
	esac
	shift
done
work=$(mktemp -d /tmp/tp-pvdma-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$("$top/guest/build.sh" "$arch" | tail -n 1)" "$work/tpselftest.ko"
cp "$("$top/guest/build.sh" "$arch" "$top/guest/pvdma" | tail -n 1)" "$work/pvdma.ko"
logs=$top/build/guest-logs
run=("$top/tests/guest/run.sh" --arch "$arch" --smp "$smp" --quiet --timeout 300)

echo "== identity: the self-test with guest-physical device addresses ($arch, $jobs jobs)"
"${run[@]}" --test "$top/tests/guest/t-ce-dma.sh" --file "$work/tpselftest.ko" \
	--append "tp.irq=msix tp.jobs=$jobs" --log "$logs/bench-identity-$arch.log" |
	grep -v '^tpselftest' || true
echo "== dart + pvdma: the same self-test, device addresses from the server"
"${run[@]}" --test "$top/tests/guest/t-pvdma.sh" --file "$work/tpselftest.ko" \
	--file "$work/pvdma.ko" --pvdma --server-arg --iommu --server-arg dart \
	--append "tp.phase=main tp.bench=1 tp.jobs=$jobs" --log "$logs/bench-pvdma-$arch.log" || true

id=$(grep -a -o 'tpselftest result: .*' "$logs/bench-identity-$arch.log" | tail -n 1)
pv=$(grep -a -o 'TP-PVDMA-SELFTEST .*' "$logs/bench-pvdma-$arch.log" | tail -n 1)
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
echo
printf '%-34s %14s %14s\n' "self-test ($arch, $jobs jobs)" identity "dart+pvdma"
for k in result time_ms bw_h2v_mibs bw_v2h_mibs bw_h2h_mibs ce_bw_h2v_mibs ce_bw_v2h_mibs \
	ce_bw_h2h_mibs latency_us_median latency_us_p90 buf runs; do
	printf '%-34s %14s %14s\n' "$k" "$(kv "$id" $k)" "$(kv "$pv" $k)"
done
echo
echo "pvdma ring, seen from the guest (map batch + unmap batch per round):"
printf '%-8s %10s %10s %12s %16s\n' batch requests doorbells req_per_s us_per_doorbell
grep -a -o 'TP-PVDMA-BENCH .*' "$logs/bench-pvdma-$arch.log" | while read -r _ l; do
	printf '%-8s %10s %10s %12s %16s\n' "$(kv "$l" batch)" "$(kv "$l" requests)" \
		"$(kv "$l" doorbells)" "$(kv "$l" req_per_s)" "$(kv "$l" us_per_doorbell)"
done
