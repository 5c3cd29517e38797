#!/bin/bash
# The test bed's own x86_64 guest kernel, for the vfio backend's iommufd path.
#
#   kernel.sh        build it if it is not cached; print its directory
#
# No Debian kernel enables CONFIG_IOMMUFD (docs/vfio.md), so the device cdev path
# (/dev/iommu, /dev/vfio/devices/vfioN) can only be tested on a kernel built here:
# Debian's linux-source from bookworm-backports (Linux 6.12; the cdev needs >= 6.6),
# tinyconfig plus tests/guest/kernel-iommufd.config, everything built in. About 4
# minutes on 2 cores the first time; nothing after. The directory printed holds:
#   vmlinux    the kernel (ELF with a PVH entry: QEMU loads it as it is)
#   include/   its uapi headers (make headers), for the ABI check in vfio.sh
#   KVER       the Debian package version it was built from
#   config     the full .config
# It is named by the package version and a hash of the config fragment: a new
# linux-source in backports or a changed fragment builds a new one. One build at a
# time (a lock in the test bed): a second kernel.sh waits for the first and uses its
# kernel (make check starts one in the background, niced, while other tests run).
# Needs the host packages of testbed.sh --host-packages (flex, bison, libelf-dev, bc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
D=${TP_TESTBED:-$top/.cache/testbed}
frag=$here/kernel-iommufd.config

log() { echo "kernel.sh: $*" >&2; }
die() { log "$*"; exit 1; }
[ -s "$D/apt/amd64.list" ] || die "no testbed in $D: run tests/guest/testbed.sh first"
for t in flex bison bc gcc make; do
	command -v $t > /dev/null || die "no '$t': run tests/guest/testbed.sh --host-packages"
done
[ -f /usr/include/gelf.h ] || die "no libelf-dev (objtool): run tests/guest/testbed.sh --host-packages"

# The mirror testbed.sh chose (its amd64 list: "deb [arch=amd64] URL bookworm main").
mirror() { awk '$4 == "bookworm" {print $3; exit}' "$D/apt/amd64.list"; }
APT_BPO="-o Dir::Etc::SourceList=$D/apt/bpo.list -o Dir::Etc::SourceParts=/dev/null
 -o Dir::State::Lists=$D/apt/bpo-lists -o Dir::State::status=$D/apt/status
 -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Debug::NoLocking=1"
bpo_update() {
	mkdir -p "$D/apt/bpo-lists/partial"
	[ -n "$(mirror)" ] || die "no bookworm mirror in $D/apt/amd64.list"
	printf 'deb [arch=amd64] %s bookworm-backports main\n' "$(mirror)" > "$D/apt/bpo.list"
	# shellcheck disable=SC2086
	apt-get $APT_BPO update -qq
	touch "$D/.stamp-bpo"
}
[ -e "$D/.stamp-bpo" ] || bpo_update

# linux-source (bookworm-backports) depends on linux-source-X.Y, which holds the tarball.
# shellcheck disable=SC2086
pkg=$(apt-cache $APT_BPO depends linux-source | awk '/Depends: linux-source-[0-9]/{print $2; exit}')
[ -n "$pkg" ] || die "no linux-source-X.Y in bookworm-backports"
# shellcheck disable=SC2086
ver=$(apt-cache $APT_BPO show "$pkg" | awk '/^Version:/{print $2; exit}')
hash=$(sha256sum "$frag" | cut -c1-12)
out=$D/kiommufd/${pkg#linux-source-}-${ver//[^A-Za-z0-9.+-]/_}-$hash
if [ -e "$out/.done" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$D/kiommufd"
exec 9> "$D/kiommufd/.lock"
if ! flock -n 9; then
	log "another kernel.sh is building; waiting for it"
	flock 9
fi
if [ -e "$out/.done" ]; then
	echo "$out"
	exit 0
fi

log "building $pkg $ver (tinyconfig + ${frag#"$top"/}): about 4 minutes on 2 cores"
mkdir -p "$D/kdebs"
deb=$(ls "$D/kdebs/${pkg}_${ver//:/%3a}_all.deb" 2> /dev/null || true)
if [ -z "$deb" ]; then
	# shellcheck disable=SC2086
	if ! (cd "$D/kdebs" && apt-get $APT_BPO download -qq "$pkg=$ver"); then
		# The lists may name a version the mirror has since dropped.
		[ -z "${TP_KERNEL_RETRY:-}" ] || die "cannot download $pkg $ver"
		log "download failed: refreshing the backports lists once"
		bpo_update
		TP_KERNEL_RETRY=1 exec "$0" "$@"
	fi
	deb=$(ls "$D/kdebs/${pkg}_${ver//:/%3a}_all.deb")
fi
b=$D/kiommufd/build
rm -rf "$b" "$out"
mkdir -p "$b/x" "$b/src" "$b/obj"
dpkg -x "$deb" "$b/x"
tarball=$(ls "$b"/x/usr/src/linux-source-*.tar.xz)
tar -xJf "$tarball" -C "$b/src"
src=$(ls -d "$b"/src/linux-source-*)
jobs=$(($(nproc) + 1))
# Quiet build; the log is kept on failure.
if ! {
	make -C "$src" O="$b/obj" ARCH=x86_64 tinyconfig &&
		"$src/scripts/kconfig/merge_config.sh" -m -O "$b/obj" "$b/obj/.config" "$frag" &&
		make -C "$src" O="$b/obj" ARCH=x86_64 olddefconfig &&
		make -C "$src" O="$b/obj" ARCH=x86_64 -j"$jobs" vmlinux headers
} > "$b/build.log" 2>&1; then
	tail -n 30 "$b/build.log" >&2
	die "kernel build failed (whole log: $b/build.log)"
fi
# Every option of the fragment must have survived olddefconfig (a dependency missing
# would drop it silently).
missing=$(grep -E '^CONFIG_[A-Z0-9_]+=y' "$frag" | while read -r l; do
	grep -qx "$l" "$b/obj/.config" || echo "${l%=y}"; done)
[ -z "$missing" ] || die "options dropped by olddefconfig: $missing"
mkdir -p "$out.tmp"
cp "$b/obj/vmlinux" "$out.tmp/vmlinux"
cp "$b/obj/.config" "$out.tmp/config"
cp -r "$b/obj/usr/include" "$out.tmp/include"
echo "$ver" > "$out.tmp/KVER"
touch "$out.tmp/.done"
mv "$out.tmp" "$out"
rm -rf "$b"
log "built: $out"
echo "$out"
