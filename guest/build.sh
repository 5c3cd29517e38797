#!/bin/bash
# Build an out-of-tree kernel module for a test-bed guest kernel.
#
#   guest/build.sh ARCH [MODULE_DIR]
#
#   ARCH        x86_64 (native) or aarch64 (cross, gcc-aarch64-linux-gnu)
#   MODULE_DIR  module source folder with a Kbuild file (default guest/tpselftest)
#
# The headers are the guest kernels' own (tests/guest/testbed.sh unpacks them into
# $TP_TESTBED/kh). Kbuild of Linux 6.1 writes its objects next to the sources, so the
# sources are copied (timestamps kept, so an unchanged module is not rebuilt) into
# build/guest-modules/ARCH/NAME/ and built there; the source folder stays clean.
# Prints the path of each .ko built. Environment: TP_TESTBED, V=1 for make's commands.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
TB=${TP_TESTBED:-$top/.cache/testbed}

die() { echo "guest/build.sh: $*" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: guest/build.sh x86_64|aarch64 [MODULE_DIR]"
arch=$1
src=${2:-$here/tpselftest}
case $arch in
x86_64 | amd64) arch=x86_64 karch=amd64 kbarch=x86 cross= ;;
aarch64 | arm64) arch=aarch64 karch=arm64 kbarch=arm64 cross=aarch64-linux-gnu- ;;
*) die "unknown arch '$arch' (x86_64 or aarch64)" ;;
esac
[ -d "$src" ] || die "no module folder '$src'"
src=$(cd "$src" && pwd)
[ -f "$src/Kbuild" ] || die "no Kbuild file in $src"
[ -f "$TB/k/$karch/KVER" ] || die "no testbed in $TB: run tests/guest/testbed.sh"
kver=$(cat "$TB/k/$karch/KVER")
kdir=$TB/kh/usr/src/linux-headers-$kver
[ -f "$kdir/Makefile" ] || die "no headers for $kver in $kdir: run tests/guest/testbed.sh"
# The guest kernels were built with gcc-12 (the headers' .kernelvariables name it).
command -v "${cross}gcc-12" > /dev/null ||
	die "no ${cross}gcc-12 (Debian: apt-get install gcc-12${cross:+ gcc-aarch64-linux-gnu})"

name=$(basename "$src")
out=$top/build/guest-modules/$arch/$name
mkdir -p "$out"
# Copy the sources (not the objects a build in place may have left there).
(cd "$src" && find . -type f \( -name '*.[ch]' -o -name Kbuild -o -name Makefile \) -print0) |
	while IFS= read -r -d '' f; do
		mkdir -p "$out/$(dirname "$f")"
		cmp -s "$src/$f" "$out/$f" || cp -p "$src/$f" "$out/$f"
	done

jobs=$(nproc 2> /dev/null || echo 2)
# (no BTF: the headers carry no vmlinux to base it on)
make -s -C "$kdir" M="$out" ARCH="$kbarch" CROSS_COMPILE="$cross" \
	CONFIG_DEBUG_INFO_BTF_MODULES= ${V:+V=1} -j"$jobs" modules >&2
ls "$out"/*.ko > /dev/null 2>&1 || die "no .ko in $out"
for k in "$out"/*.ko; do echo "$k"; done
