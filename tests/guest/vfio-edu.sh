#!/bin/bash
# The vfio backend against the kernel's real VFIO (part of make guest / make check).
#
#   vfio-edu.sh [--server PATH] [--client PATH] [run.sh options...]
#
# An x86_64 q35 guest under QEMU 11 TCG, with a virtual Intel IOMMU (interrupt
# remapping on) and QEMU's edu device behind a PCIe root port, is the host: inside
# it edu is bound to vfio-pci, thunderpass serves it with the vfio backend, and
# tp-vfio-edu drives edu's DMA engine and MSI through the server
# (tests/guest/t-vfio-edu.sh, docs/vfio.md). Nothing here needs a real device.
#
# The binaries run in the guest as they are built here, dynamically linked: the
# host's glibc (bookworm) is the guest's, so they travel with the shared libraries
# ldd names (into the guest's /bin; the test links the loader into /lib64).
#   --server PATH   thunderpass binary (default $TP_SERVER or build/thunderpass)
#   --client PATH   tp-vfio-edu (default build/tests/vfio/tp-vfio-edu)
#   --pair          two edu functions in one slot (one IOMMU group, no bus reset for
#                   one function alone): the group with two devices, and the hot reset
#                   of the bus (VFIO_DEVICE_PCI_HOT_RESET) instead of VFIO_DEVICE_RESET
# Other options go to tests/guest/run.sh (e.g. --keep DIR, --timeout S).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

die() { echo "vfio-edu.sh: $*" >&2; exit 2; }
server=${TP_SERVER:-$top/build/thunderpass}
client=$top/build/tests/vfio/tp-vfio-edu
args=() pair=''
while [ $# -gt 0 ]; do
	case $1 in
	--server) server=$2; shift ;;
	--client) client=$2; shift ;;
	--pair) pair=1 ;;
	*) args+=("$1") ;;
	esac
	shift
done
[ -x "$server" ] || die "no server binary '$server' (ninja -C build)"
[ -x "$client" ] || die "no client binary '$client' (ninja -C build)"
[ "$(uname -m)" = x86_64 ] || die "the guest is x86_64 and runs this host's binaries: needs an x86_64 host"

work=$(mktemp -d "${TMPDIR:-/tmp}/tp-vfio-edu.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$server" "$work/thunderpass"
cp "$client" "$work/tp-vfio-edu"
# Every library ldd names, and the dynamic loader, under their own names.
libs=$(ldd "$server" "$client" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u)
[ -n "$libs" ] || die "ldd named no libraries for $server"
files=(--file "$work/thunderpass" --file "$work/tp-vfio-edu")
for l in $libs; do
	cp -L "$l" "$work/$(basename "$l")"
	files+=(--file "$work/$(basename "$l")")
done
[ -f "$work/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 among: $libs"

if [ -n "$pair" ]; then
	edu=(--qemu-device "-device edu,bus=rp0,addr=0.0,multifunction=on"
		--qemu-device "-device edu,bus=rp0,addr=0.1" --append "tp.edu=pair"
		--log "$top/build/guest-logs/vfio-edu-pair-x86_64.log")
else
	edu=(--qemu-device "-device edu,bus=rp0" --append "tp.edu=single")
fi
# intel-iommu before the devices behind it (their DMA address space is set when
# they are created).
exec "$here/run.sh" --arch x86_64 --test "$here/t-vfio-edu.sh" --quiet \
	--qemu-device "-machine kernel-irqchip=split" \
	--qemu-device "-device intel-iommu,intremap=on,caching-mode=on" \
	"${edu[@]}" --append "intel_iommu=on" --modules "vfio vfio_iommu_type1 vfio-pci" \
	"${files[@]}" ${args[@]+"${args[@]}"}
