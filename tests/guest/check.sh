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

if [ ${#failed[@]} -gt 0 ]; then
	echo "guest tests FAILED: ${failed[*]}"
	exit 1
fi
echo "guest tests: all passed"
