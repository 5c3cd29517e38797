#!/bin/bash
# Every guest test (make guest; part of make check): the model GPU seen by
# x86_64 q35 and aarch64 virt guests under QEMU 11 TCG, and once more against
# the ASan+UBSan build of the server when it exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
work=$(mktemp -d /tmp/tp-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=()

model_test() { # arch server-binary label
	local vram=$work/vram-$1-$3
	TP_SERVER=$2 "$here/run.sh" --arch "$1" --test "$here/t-model.sh" --quiet \
		--server-arg -o --server-arg "vram-file=$vram" \
		--host-check "$here/host-model.sh $vram" || failed+=("model $1 ($3)")
}

model_test x86_64 "$top/build/thunderpass" release
model_test aarch64 "$top/build/thunderpass" release
if [ -x "$top/build-san/thunderpass" ]; then
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
		model_test x86_64 "$top/build-san/thunderpass" asan
fi

# Copy-engine DMA (t-ce-dma.sh): guest/tpselftest, built for each guest kernel,
# runs 1000 jobs per interrupt mode; the server must have raised that mode only.
# x86_64 q35: MSI-X, MSI, INTx; aarch64 virt (GICv2m, GIC SPI for INTx): the same.
ce_test() { # arch irq-mode server-binary label
	local ko=$work/ko-$1/tpselftest.ko
	if [ ! -f "$ko" ]; then
		mkdir -p "$work/ko-$1"
		if ! k=$("$top/guest/build.sh" "$1" | tail -n 1) || ! cp "$k" "$ko"; then
			failed+=("ce-dma $1 (guest/build.sh)")
			return
		fi
	fi
	TP_SERVER=$3 "$here/run.sh" --arch "$1" --test "$here/t-ce-dma.sh" --quiet --file "$ko" \
		--append "tp.irq=$2" --timeout 120 --log "$top/build/guest-logs/ce-dma-$2-$1-$4.log" \
		--host-check "$here/host-ce-dma.sh $2" || failed+=("ce-dma $1 $2 ($4)")
}

for mode in msix msi intx; do
	ce_test x86_64 $mode "$top/build/thunderpass" release
done
for mode in msix msi intx; do
	ce_test aarch64 $mode "$top/build/thunderpass" release
done
if [ -x "$top/build-san/thunderpass" ]; then
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
		ce_test x86_64 msix "$top/build-san/thunderpass" asan
fi

if [ ${#failed[@]} -gt 0 ]; then
	echo "guest tests FAILED: ${failed[*]}"
	exit 1
fi
echo "guest tests: all passed"
