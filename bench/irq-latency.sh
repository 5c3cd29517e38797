#!/bin/bash
# Interrupt latency seen by the guest (guest clock, doorbell/raise write -> handler),
# the passed-through model's copy engine (MSI and MSI-X, tpselftest's 0-byte jobs)
# next to a device QEMU emulates itself (edu, MSI), in one run, x86_64.
# Prints; asserts nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
run=$top/tests/guest/run.sh
tps=$("$top/guest/build.sh" x86_64 | tail -1)
edu=$("$top/guest/build.sh" x86_64 "$top/guest/edulat" | tail -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lat() { sed -n 's/.*latency_us_median=\([0-9.]*\) latency_us_p90=\([0-9.]*\).*/\1 \2/p' "$1" | tail -1; }

"$run" --arch x86_64 --test "$here/guest-edulat.sh" --quiet --file "$edu" \
	--qemu-device "-device edu,bus=rp0" --log "$out/edu.log" > /dev/null
for mode in msi msix; do
	"$run" --arch x86_64 --test "$top/tests/guest/t-ce-dma.sh" --quiet --file "$tps" \
		--append "tp.irq=$mode tp.jobs=50" --log "$out/model-$mode.log" > /dev/null
done
read -r e50 e90 <<< "$(lat "$out/edu.log")"
echo "interrupt latency, guest clock, median / p90 (us):"
printf '  edu (emulated in QEMU, MSI):           %8s / %s\n' "$e50" "$e90"
for mode in msi msix; do
	read -r m50 m90 <<< "$(lat "$out/model-$mode.log")"
	printf '  thunderpass model (%-4s, vfio-user): %8s / %s   ratio to edu %.1f\n' \
		"$mode" "$m50" "$m90" "$(echo "$m50 / $e50" | bc -l)"
done
