#!/bin/bash
# Fetch the guest test bed into $TP_TESTBED (default: <repo>/.cache/testbed):
#   - QEMU 11 from Debian sid (the first Debian QEMU with the vfio-user client),
#     unpacked, not installed, and run through sid's own ld-linux by two wrappers
#     (qemu-system-x86_64, qemu-system-aarch64) in $TP_TESTBED/bin;
#   - Debian bookworm guest kernels (amd64 + arm64) and static busybox for both;
#   - those kernels' headers and kbuild, unpacked into $TP_TESTBED/kh, for building
#     out-of-tree guest modules (guest/build.sh);
#   - with --host-packages, the Debian packages the build and tests need.
# Every step leaves a stamp: a second run downloads nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
D=${TP_TESTBED:-$top/.cache/testbed}
mkdir -p "$D"
cd "$D"

log() { echo "testbed: $*" >&2; }
stamp() { [ -e "$D/.stamp-$1" ]; }
done_() { touch "$D/.stamp-$1"; }

# The mirror and its security suite come from this machine's own apt configuration.
mirror() {
	local f=/etc/apt/sources.list.d/debian.sources
	if [ -f $f ]; then
		awk '/^URIs:/{print $2; exit}' $f
	else
		awk '/^deb /{print $2; exit}' /etc/apt/sources.list
	fi
}
security_mirror() {
	local f=/etc/apt/sources.list.d/debian.sources
	if [ -f $f ]; then
		awk '/^URIs:/{u=$2} /^Suites:.*security/{print u; exit}' $f
	else
		echo http://deb.debian.org/debian-security
	fi
}
M=$(mirror)
MS=$(security_mirror)

HOST_PACKAGES="build-essential meson ninja-build pkg-config libcmocka-dev libjson-c-dev
 clang llvm libclang-rt-14-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross
 busybox-static bc curl xz-utils cpio python3 ca-certificates
 libelf1 libseccomp-dev
 flex bison libelf-dev libssl-dev"

if [ "${1:-}" = --host-packages ]; then
	# shellcheck disable=SC2086
	missing=$(dpkg-query -W -f='${Package} ${Status}\n' $HOST_PACKAGES 2>/dev/null |
		awk '$NF != "installed" {print $1}'; for p in $HOST_PACKAGES; do
			dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)
	if [ -n "$missing" ]; then
		if [ "$(id -u)" != 0 ]; then
			echo "testbed: missing Debian packages:" $missing >&2
			echo "testbed: install them as root: apt-get install" $missing >&2
			exit 1
		fi
		log "installing host packages:" $missing
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
fi

APT_SID="-o Dir::Etc::SourceList=$D/apt/sid.list -o Dir::Etc::SourceParts=/dev/null
 -o Dir::State::Lists=$D/apt/lists -o Dir::State::status=$D/apt/status
 -o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false
 -o Dir::Cache::archives=$D/debs -o Debug::NoLocking=1"
APT_ARM="-o Dir::Etc::SourceList=$D/apt/arm64.list -o Dir::Etc::SourceParts=/dev/null
 -o Dir::State::Lists=$D/apt/arm64-lists -o Dir::State::status=$D/apt/status
 -o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Debug::NoLocking=1"
APT_AMD="-o Dir::Etc::SourceList=$D/apt/amd64.list -o Dir::Etc::SourceParts=/dev/null
 -o Dir::State::Lists=$D/apt/amd64-lists -o Dir::State::status=$D/apt/status
 -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Debug::NoLocking=1"

if ! stamp apt; then
	log "private apt lists (sid for QEMU 11, bookworm amd64/arm64 for guests)"
	mkdir -p apt/lists/partial apt/arm64-lists/partial apt/amd64-lists/partial debs/partial
	printf 'deb %s sid main\n' "$M" > apt/sid.list
	for a in arm64 amd64; do
		printf 'deb [arch=%s] %s bookworm main\ndeb [arch=%s] %s bookworm-updates main\ndeb [arch=%s] %s bookworm-security main\n' \
			$a "$M" $a "$M" $a "$MS" > apt/$a.list
	done
	: > apt/status
	# shellcheck disable=SC2086
	apt-get $APT_SID update -qq
	# shellcheck disable=SC2086
	apt-get $APT_ARM update -qq
	# shellcheck disable=SC2086
	apt-get $APT_AMD update -qq
	done_ apt
fi

if ! stamp qemu; then
	log "QEMU 11 (sid) package closure"
	# shellcheck disable=SC2086
	apt-get $APT_SID install -y -qq --download-only qemu-system-x86 qemu-system-arm >/dev/null
	rm -rf qemu; mkdir -p qemu
	for f in debs/*.deb; do dpkg -x "$f" qemu; done
	done_ qemu
fi

L=$D/qemu/usr/lib/x86_64-linux-gnu
mkdir -p bin
for a in x86_64 aarch64; do
	cat > bin/qemu-system-$a <<W
#!/bin/sh
# QEMU from Debian sid, run through sid's own dynamic loader (not installed).
export QEMU_MODULE_DIR=$L/qemu
exec $L/ld-linux-x86-64.so.2 --library-path $L $D/qemu/usr/bin/qemu-system-$a -L $D/qemu/usr/share/qemu -L $D/qemu/usr/share/seabios "\$@"
W
	chmod +x bin/qemu-system-$a
done

if ! stamp kernels; then
	log "guest kernels and busybox (bookworm)"
	mkdir -p kdebs k/amd64 k/arm64
	# shellcheck disable=SC2086
	ka=$(apt-cache $APT_AMD depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
	# shellcheck disable=SC2086
	kb=$(apt-cache $APT_ARM depends linux-image-arm64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
	(cd kdebs && apt-get $APT_AMD download -qq "$ka" busybox-static && apt-get $APT_ARM download -qq "$kb" busybox-static)
	dpkg -x kdebs/"${ka}"_*_amd64.deb k/amd64
	dpkg -x kdebs/busybox-static_*_amd64.deb k/amd64
	dpkg -x kdebs/"${kb}"_*_arm64.deb k/arm64
	dpkg -x kdebs/busybox-static_*_arm64.deb k/arm64
	echo "${ka#linux-image-}" > k/amd64/KVER
	echo "${kb#linux-image-}" > k/arm64/KVER
	done_ kernels
fi

# Kernel headers for out-of-tree guest modules (guest/build.sh): the guest kernels'
# linux-headers-<abi>-{amd64,arm64}, their -common tree and linux-kbuild (the amd64
# host tools: fixdep, modpost, objtool; arm64 modules are cross-built with them and
# gcc-aarch64-linux-gnu), all at the guest kernels' exact version, unpacked into
# $D/kh (not installed). The packages assume /usr/src: the arch trees' Makefiles
# include the -common Makefile by an absolute path, and lib/modules/<abi>/{build,source}
# are absolute links; both are rewritten to relative ones so the cache can move.
# The stamp names the kernel ABI: new guest kernels bring their headers.
ka=$(cat k/amd64/KVER) kb=$(cat k/arm64/KVER)
if ! stamp "headers-$ka-$kb"; then
	log "guest kernel headers and kbuild (bookworm)"
	mkdir -p kdebs
	kv=$(dpkg-deb -f kdebs/linux-image-"${ka}"_*_amd64.deb Version)
	kvb=$(dpkg-deb -f kdebs/linux-image-"${kb}"_*_arm64.deb Version)
	[ "$kv" = "$kvb" ] || { log "amd64 ($kv) and arm64 ($kvb) kernels differ in version"; exit 1; }
	# shellcheck disable=SC2086
	extra=$(apt-cache $APT_AMD depends "linux-headers-$ka" |
		awk '/Depends: linux-(headers-.*-common|kbuild-)/{print $2}' | sort -u)
	[ -n "$extra" ] || { log "no -common/kbuild dependencies for linux-headers-$ka"; exit 1; }
	pins=()
	for p in "linux-headers-$ka" $extra; do pins+=("$p=$kv"); done
	# shellcheck disable=SC2086
	(cd kdebs && apt-get $APT_AMD download -qq "${pins[@]}" && apt-get $APT_ARM download -qq "linux-headers-$kb=$kv")
	rm -rf kh.tmp
	mkdir kh.tmp
	for p in "linux-headers-$ka" "linux-headers-$kb" $extra; do
		dpkg -x kdebs/"${p}_${kv//:/%3a}"_*.deb kh.tmp
	done
	for abi in "$ka" "$kb"; do
		mk=kh.tmp/usr/src/linux-headers-$abi/Makefile
		common=$(sed -n 's|^include /usr/src/\(linux-headers-[^/]*-common\)/Makefile$|\1|p' "$mk")
		[ -n "$common" ] || { log "unexpected $mk"; exit 1; }
		# shellcheck disable=SC2016 # make syntax, not shell
		printf 'include $(dir $(lastword $(MAKEFILE_LIST)))../%s/Makefile\n' "$common" > "$mk.new"
		sed 1d "$mk" >> "$mk.new"
		mv "$mk.new" "$mk"
		ln -sfn "../../../usr/src/linux-headers-$abi" "kh.tmp/lib/modules/$abi/build"
		ln -sfn "../../../usr/src/$common" "kh.tmp/lib/modules/$abi/source"
	done
	abs=$(find kh.tmp -type l -lname '/*' -print)
	[ -z "$abs" ] || { log "absolute links left in the headers: $abs"; exit 1; }
	rm -rf kh
	mv kh.tmp kh
	done_ "headers-$ka-$kb"
fi

# ---- reference vfio-user servers for the proxy backend (issue 5; docs/proxy.md):
# QEMU's nvme behind x-vfio-user-server and libvfio-user's gpio-pci-idio-16, built from
# Debian's QEMU source by tests/guest/refservers.sh (cached: about 2 minutes the first
# time, nothing after). TP_NO_REFSERVERS=1 skips them.
if [ -z "${TP_NO_REFSERVERS:-}" ]; then
	TP_TESTBED=$D "$here/refservers.sh" ${1:+"$1"}
fi
# ---- (end reference servers)

bin/qemu-system-x86_64 --version | head -1 >&2
log "ready in $D (amd64 kernel $(cat k/amd64/KVER), arm64 kernel $(cat k/arm64/KVER))"
