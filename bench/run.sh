#!/bin/bash
# make bench: every benchmark, each printing ratios measured in one run (the
# machines are shared and noisy; nothing here passes or fails on a clock).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
echo "== copy engine bandwidth (server-measured) vs memcpy"
"$top/build/bench/tp-ce-bench"
echo "== trapped BAR0 read from the guest vs a bare UNIX-socket round trip on the host"
for arch in x86_64 aarch64; do
	"$here/run-bar-read.sh" --arch "$arch" --reps 3 --quiet
done
echo "== the same read of a device QEMU emulates itself (edu), for scale"
"$here/run-bar-read.sh" --arch x86_64 --reps 3 --quiet \
	--qemu-device "-device edu,bus=rp0" --dev 1234:11e8
echo "== interrupt latency in the guest: the model's copy engine vs QEMU's emulated edu"
"$here/irq-latency.sh"
echo "== pvdma: ring throughput and DART work per request (in process)"
"$top/build/bench/tp-pvdma-bench"
echo "== pvdma: the guest self-test with dart+pvdma against identity"
"$here/pvdma-vs-identity.sh"
echo "== proxy: nvme in the guest through thunderpass against straight to the reference server"
"$here/run-proxy-bench.sh"
