#!/bin/bash
# The vfio backend against the kernel's real VFIO (part of make guest / make check).
#
#   vfio.sh [--case edu|edu-pair|nvme] [--api group|iommufd] [--server PATH]
#           [run.sh options...]
#
# An x86_64 q35 guest under QEMU 11 TCG with a virtual Intel IOMMU (interrupt
# remapping on) is the host: inside it a QEMU device behind a PCIe root port is bound
# to vfio-pci, thunderpass serves it with the vfio backend, and a vfio-user client
# built on lib/client.c drives it through the server (tests/guest/t-vfio.sh,
# docs/vfio.md). Nothing here needs a real device.
#   --case edu       (default) edu: DMA from and to client memory, MSI and INTx
#                    through the kernel, isolation after DMA_UNMAP, VFIO_DEVICE_RESET
#                    (tests/vfio/edu_client.c)
#   --case edu-pair  two edu functions in one slot, so one IOMMU group of two and no
#                    bus reset for one function alone: the same client, and the reset
#                    is a hot reset of the bus (VFIO_DEVICE_PCI_HOT_RESET)
#   --case nvme      QEMU's NVMe controller: the MSI-X table and PBA kept out of the
#                    mapped BAR, MSI-X vectors added one at a time, admin and I/O
#                    queues over DMA, an FLR (tests/vfio/nvme_client.c)
#   --api group      (default) on Debian's bookworm kernel, whose VFIO has only the
#                    group/container API: the backend's default (iommufd=auto) finds
#                    no cdev and uses the group API
#   --api iommufd    on the test bed's own kernel (tests/guest/kernel.sh: Linux 6.12
#                    with IOMMUFD and VFIO_DEVICE_CDEV, built and cached on first use):
#                    the backend's default opens the device cdev, binds it to
#                    /dev/iommu and maps DMA in an IOAS; the edu case also runs the
#                    client once more against iommufd=off (the group API on the same
#                    kernel). First checks the iommufd ABI numbers the backend was
#                    built with against that kernel's uapi headers (tp-uapi-dump)
#   --server PATH    thunderpass binary (default $TP_SERVER or build/thunderpass)
# Other options go to tests/guest/run.sh (e.g. --keep DIR, --timeout S).
#
# The binaries run in the guest as they are built here, dynamically linked: the
# host's glibc (bookworm) is the guest's, so they travel with the shared libraries
# ldd names (into the guest's /bin; the test links the loader into /lib64).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

die() { echo "vfio.sh: $*" >&2; exit 2; }
server=${TP_SERVER:-$top/build/thunderpass}
case_=edu api=group
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--case) case_=$2; shift ;;
	--api) api=$2; shift ;;
	--server) server=$2; shift ;;
	*) args+=("$1") ;;
	esac
	shift
done
case $case_ in
edu)
	client=tp-vfio-edu
	dev=(--qemu-device "-device edu,bus=rp0")
	;;
edu-pair)
	client=tp-vfio-edu
	dev=(--qemu-device "-device edu,bus=rp0,addr=0.0,multifunction=on"
		--qemu-device "-device edu,bus=rp0,addr=0.1")
	;;
nvme)
	client=tp-vfio-nvme
	dev=(--qemu-device "-blockdev driver=null-co,node-name=nul,size=67108864,read-zeroes=on"
		--qemu-device "-device nvme,drive=nul,serial=tp-vfio,bus=rp0")
	;;
*) die "--case is edu, edu-pair or nvme" ;;
esac
# The guest kernel: Debian's (group API only; VFIO as modules), or the test bed's own.
kargs=(--modules "vfio vfio_iommu_type1 vfio-pci")
suffix=
case $api in
group) ;;
iommufd)
	kdir=$("$here/kernel.sh") || die "the test bed's iommufd kernel (tests/guest/kernel.sh) failed"
	# The ABI the backend was built with (backends/vfio/vfio_uapi.h, printed by
	# tp-uapi-dump) against the same program built on that kernel's uapi headers.
	dump=$top/build/tests/vfio/tp-uapi-dump
	[ -x "$dump" ] || die "no '$dump' (ninja -C build)"
	kdump=$(mktemp "${TMPDIR:-/tmp}/tp-kdump.XXXXXX")
	cc -DTP_UAPI_KERNEL -isystem "$kdir/include" -o "$kdump" "$top/tests/vfio/uapi_dump.c" ||
		{ rm -f "$kdump"; die "tests/vfio/uapi_dump.c does not build on $kdir/include"; }
	if ! diff -u <("$kdump") <("$dump") >&2; then
		rm -f "$kdump"
		die "backends/vfio/vfio_uapi.h differs from the uapi headers of Linux $(cat "$kdir/KVER")"
	fi
	echo "vfio.sh: the backend's iommufd ABI matches Linux $(cat "$kdir/KVER")'s uapi headers ($("$kdump" | wc -l) values)"
	rm -f "$kdump"
	kargs=(--kernel "$kdir/vmlinux")
	suffix=-iommufd
	;;
*) die "--api is group or iommufd" ;;
esac
client_bin=$top/build/tests/vfio/$client
[ -x "$server" ] || die "no server binary '$server' (ninja -C build)"
[ -x "$client_bin" ] || die "no client binary '$client_bin' (ninja -C build)"
[ "$(uname -m)" = x86_64 ] || die "the guest is x86_64 and runs this host's binaries: needs an x86_64 host"

work=$(mktemp -d "${TMPDIR:-/tmp}/tp-vfio.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$server" "$work/thunderpass"
cp "$client_bin" "$work/$client"
# Every library ldd names, and the dynamic loader, under their own names.
libs=$(ldd "$server" "$client_bin" |
	awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u)
files=(--file "$work/thunderpass" --file "$work/$client")
for l in $libs; do
	cp -L "$l" "$work/$(basename "$l")"
	files+=(--file "$work/$(basename "$l")")
done
[ -f "$work/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 among: $libs"

# intel-iommu comes before the devices behind it (their DMA address space is set
# when they are created). no_timer_check: under TCG on a loaded machine the kernel's
# check of the timer through the interrupt-remapped IO-APIC can fail and panic
# ("timer doesn't work through Interrupt-remapped IO-APIC"), seen once here.
exec "$here/run.sh" --arch x86_64 --test "$here/t-vfio.sh" --quiet \
	--log "$top/build/guest-logs/vfio-$case_$suffix-x86_64.log" \
	--qemu-device "-machine kernel-irqchip=split" \
	--qemu-device "-device intel-iommu,intremap=on,caching-mode=on" "${dev[@]}" \
	--append "intel_iommu=on no_timer_check tp.case=$case_ tp.api=$api" "${kargs[@]}" \
	"${files[@]}" ${args[@]+"${args[@]}"}
