#!/bin/bash
# Reference vfio-user servers for the proxy backend's tests (docs/proxy.md), built
# into $TP_TESTBED/ref (default <repo>/.cache/testbed/ref) from Debian's QEMU source
# tarball; nothing of theirs is in the repository:
#   - ref/bin/vfu-server: QEMU 10.2 (x86_64-softmmu, qtest accelerator only) with
#     x-vfio-user-server and only the devices served: nvme, edu, pci-testdev;
#   - ref/bin/gpio-pci-idio-16: libvfio-user's sample server (subprojects/libvfio-user
#     of the same tarball).
# Every step leaves a stamp: a second run downloads and builds nothing.
#
#   refservers.sh [--host-packages]     (testbed.sh calls it; so can anyone)
#
# Environment: TP_TESTBED; TP_QEMU_SRC_VERSION (default 10.2.2+ds) and
# TP_QEMU_SRC_SHA256 (the tarball's checksum; checked when set, and by default for
# the default version). Needs: the packages below, about 2 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
D=${TP_TESTBED:-$top/.cache/testbed}
R=$D/ref
mkdir -p "$R/bin"
cd "$R"

log() { echo "refservers: $*" >&2; }
stamp() { [ -e "$R/.stamp-$1" ]; }
done_() { touch "$R/.stamp-$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(now_ms)

V=${TP_QEMU_SRC_VERSION:-10.2.2+ds}
SUM=${TP_QEMU_SRC_SHA256:-}
[ -n "$SUM" ] || [ "$V" != 10.2.2+ds ] || SUM=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb

PACKAGES="gcc ninja-build pkg-config python3-venv libglib2.0-dev libfdt-dev
 libpixman-1-dev device-tree-compiler flex bison libjson-c-dev libcmocka-dev curl xz-utils"
# shellcheck disable=SC2086
missing=$(for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
done)
if [ -n "$missing" ]; then
	if [ "${1:-}" = --host-packages ] && [ "$(id -u)" = 0 ]; then
		log "installing host packages:" $missing
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing > /dev/null
	else
		log "missing Debian packages:" $missing
		log "install them as root: apt-get install" $missing
		exit 1
	fi
fi

mirror() {
	local f=/etc/apt/sources.list.d/debian.sources
	if [ -f $f ]; then awk '/^URIs:/{print $2; exit}' $f; else awk '/^deb /{print $2; exit}' /etc/apt/sources.list; fi
}
M=$(mirror)

# meson >= 1.5 (QEMU 10.2's floor; bookworm has 1.0) and pycotap, unpacked, not installed.
APT_REF="-o Dir::Etc::SourceList=$R/apt/ref.list -o Dir::Etc::SourceParts=/dev/null
 -o Dir::State::Lists=$R/apt/lists -o Dir::State::status=$R/apt/status
 -o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -o Debug::NoLocking=1"
if ! stamp pydeps; then
	log "meson (bookworm-backports) and pycotap (trixie), unpacked"
	mkdir -p apt/lists/partial debs
	printf 'deb %s bookworm-backports main\ndeb %s trixie main\n' "$M" "$M" > apt/ref.list
	: > apt/status
	# shellcheck disable=SC2086
	apt-get $APT_REF update -qq
	# shellcheck disable=SC2086
	(cd debs && apt-get $APT_REF download -qq meson/bookworm-backports python3-pycotap/trixie)
	rm -rf pydeps
	for f in debs/meson_*.deb debs/python3-pycotap_*.deb; do dpkg-deb -x "$f" pydeps; done
	done_ pydeps
fi
export PYTHONPATH=$R/pydeps/usr/lib/python3/dist-packages
MESON="python3 $R/pydeps/usr/bin/meson"

src=qemu-${V%+ds}
if ! stamp "src-$V"; then
	log "Debian's QEMU source $V"
	f=qemu_$V.orig.tar.xz
	curl -fsS -o "$f.part" "$M/pool/main/q/qemu/$f"
	if [ -n "$SUM" ]; then
		echo "$SUM  $f.part" | sha256sum -c --quiet - || { log "checksum mismatch for $f"; exit 1; }
	fi
	mv "$f.part" "$f"
	rm -rf "$src"
	tar xJf "$f"
	rm -f "$f"
	[ -d "$src/subprojects/libvfio-user" ] || { log "$f carries no subprojects/libvfio-user"; exit 1; }
	done_ "src-$V"
fi

if ! stamp "vfu-server-$V"; then
	log "QEMU with x-vfio-user-server, nvme, edu, pci-testdev (about 2 minutes)"
	(
		cd "$src"
		# The +ds tarball has no firmware blobs to unpack.
		sed -i 's/    unpack_edk2_blobs = bzip2.found()/    unpack_edk2_blobs = false/' meson.build
		printf '%s\n' CONFIG_PCI_EXPRESS=y CONFIG_MULTIPROCESS=y CONFIG_VFIO_USER_SERVER=y \
			CONFIG_NVME_PCI=y CONFIG_SPDM_SOCKET=y CONFIG_EDU=y CONFIG_PCI_TESTDEV=y \
			> configs/devices/x86_64-softmmu/tpref.mak
		rm -rf build && mkdir build && cd build
		../configure -q --python=/usr/bin/python3 \
			--target-list=x86_64-softmmu --without-default-features --without-default-devices \
			--with-devices-x86_64=tpref --disable-tcg --enable-kvm --enable-multiprocess \
			--enable-vfio-user-server --disable-docs --disable-werror --disable-install-blobs > /dev/null
		ninja -j"$(nproc)" qemu-system-x86_64 > /dev/null
	)
	# The binary finds libvfio-user.so.0 in its build folder (rpath): run it in place.
	ln -sfn "../$src/build/qemu-system-x86_64" bin/vfu-server
	done_ "vfu-server-$V"
fi

if ! stamp "gpio-$V"; then
	log "libvfio-user's samples/gpio-pci-idio-16"
	rm -rf lvu-build
	$MESON setup -Dbuildtype=debugoptimized lvu-build "$src/subprojects/libvfio-user" > /dev/null
	ninja -C lvu-build samples/gpio-pci-idio-16 > /dev/null
	ln -sfn ../lvu-build/samples/gpio-pci-idio-16 bin/gpio-pci-idio-16
	done_ "gpio-$V"
fi

bin/vfu-server --version | head -1 >&2
[ -x bin/gpio-pci-idio-16 ] || { log "no gpio-pci-idio-16"; exit 1; }
log "ready in $R/bin ($(($(now_ms) - t0)) ms)"
