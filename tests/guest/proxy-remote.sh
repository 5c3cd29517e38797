#!/bin/bash
# Host-side test of the proxy backend against a scripted remote (no guest):
# tests/guest/proxy_remote_test.c plays both the remote server and QEMU's part.
# dma=msg (DMA_READ/DMA_WRITE through the core, requests interleaved with replies,
# faults, hostile requests), dma=fd, the remote's death and the reconnect, and
# dma=mirror (--iommu dart with the pvdma companion: tests/guest/proxy_remote_mirror.c).
#
#   proxy-remote.sh [THUNDERPASS_BINARY]     (default build/thunderpass)
#
# Built here against build/libthunderpass.a (lib/client.c is what it drives).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${1:-$top/build/thunderpass}
lib=$top/build/libthunderpass.a
[ -x "$bin" ] && [ -f "$lib" ] || { echo "proxy-remote.sh: build first (ninja -C build)" >&2; exit 2; }
t=$(mktemp -d "${TMPDIR:-/tmp}/tp-proxy-remote.XXXXXX")
trap 'rm -rf "$t"' EXIT
libs="-ljson-c -pthread"
pkg-config --exists libseccomp 2> /dev/null && libs="$libs $(pkg-config --libs libseccomp)"
# shellcheck disable=SC2086
${CC:-cc} -O1 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter -I "$top/include" -I "$top/lib" \
	$(pkg-config --cflags json-c) -o "$t/proxy_remote_test" "$here/proxy_remote_test.c" \
	"$here/proxy_remote_mirror.c" "$lib" $libs
s=$(date +%s%N)
rc=0
timeout 120 "$t/proxy_remote_test" "$bin" "$t" > "$t/out" 2>&1 || rc=$?
grep -v '^ok: ' "$t/out" | grep -v '^== ' || true
if [ $rc -ne 0 ]; then
	cat "$t/out"
	echo "proxy-remote.sh: thunderpass log (last 30 lines):"
	tail -n 30 "$t/tp.log" | sed 's/^/  tp| /'
	echo "TEST proxy remote (scripted): FAIL"
	exit 1
fi
echo "TEST proxy remote (scripted): PASS ($(grep -c '^ok: ' "$t/out") checks, $((($(date +%s%N) - s) / 1000000)) ms)"
