#!/bin/bash
# `thunderpass list` against a made-up sysfs tree (--root): every reason a function
# cannot be passed, and the ones that can, in the table and in --json.
#   test_list.sh THUNDERPASS-BINARY
set -euo pipefail
tp=${1:?usage: test_list.sh THUNDERPASS-BINARY}
r=$(mktemp -d "${TMPDIR:-/tmp}/tp-list.XXXXXX")
trap 'rm -rf "$r"' EXIT
fails=0

mkdir -p "$r/sys/bus/pci/devices" "$r/sys/bus/pci/drivers" "$r/sys/kernel/iommu_groups" "$r/dev/vfio"
# fn BDF VENDOR DEVICE CLASS GROUP|- DRIVER|-
fn() {
	local d=$r/sys/bus/pci/devices/$1
	mkdir -p "$d"
	echo "0x$2" > "$d/vendor"
	echo "0x$3" > "$d/device"
	echo "0x$4" > "$d/class"
	if [ "$5" != - ]; then
		mkdir -p "$r/sys/kernel/iommu_groups/$5/devices"
		ln -s "../../../kernel/iommu_groups/$5" "$d/iommu_group"
		ln -s "../../../../bus/pci/devices/$1" "$r/sys/kernel/iommu_groups/$5/devices/$1"
	fi
	if [ "$6" != - ]; then
		mkdir -p "$r/sys/bus/pci/drivers/$6"
		ln -s "../../../bus/pci/drivers/$6" "$d/driver"
	fi
}
fn 0000:00:00.0 8086 29c0 060000 0 pcieport
fn 0000:01:00.0 10de 2b85 030000 1 vfio-pci
fn 0000:01:00.1 10de 22e8 040300 1 vfio-pci
fn 0000:02:00.0 1234 11e8 00ff00 2 -
fn 0000:03:00.0 144d a808 010802 3 nvme
fn 0000:04:00.0 10de 2684 030000 4 vfio-pci
fn 0000:04:00.1 10de 22ba 040300 4 snd_hda_intel
fn 0000:05:00.0 1002 744c 030000 5 vfio-pci
fn 0000:05:00.1 1022 1470 060400 5 pcieport
fn 0000:06:00.0 8086 7a70 0c0330 - xhci_hcd
# A kernel with iommufd and the vfio cdev, and no group node (CONFIG_VFIO_GROUP=n).
fn 0000:07:00.0 1234 11e8 00ff00 7 vfio-pci
mkdir -p "$r/sys/bus/pci/devices/0000:07:00.0/vfio-dev/vfio0" "$r/dev/vfio/devices"
touch "$r/dev/vfio/1" "$r/dev/vfio/4" "$r/dev/vfio/devices/vfio0"
# Linux 6.1 names a vfio device in sysfs with no cdev behind it: not a way in.
mkdir -p "$r/sys/bus/pci/devices/0000:01:00.0/vfio-dev/vfio1"

# Without /dev/iommu the cdev is not usable: 07:00.0 has no way in.
out=$("$tp" list --root "$r")
echo "$out" | grep -q "^0000:07:00.0 .* no  *no /dev/vfio/7" ||
	{ echo "FAIL: a cdev without /dev/iommu counted as a way in"; fails=$((fails + 1)); }
touch "$r/dev/iommu"
out=$("$tp" list --root "$r")
echo "$out"
want() { # BDF PASS NOTE-SUBSTRING
	local line
	line=$(echo "$out" | grep "^$1 " || true)
	if [ -z "$line" ]; then
		echo "FAIL: no line for $1"; fails=$((fails + 1)); return
	fi
	case $line in
	*" $2 "*"$3"*) echo "ok $1: $2, $3" ;;
	*) echo "FAIL: $1: want '$2' and '$3' in: $line"; fails=$((fails + 1)) ;;
	esac
}
want 0000:01:00.0 yes "ready: --backend vfio -o device=0000:01:00.0"
want 0000:01:00.1 yes "ready"
want 0000:02:00.0 no "no driver: bind it to vfio-pci"
want 0000:03:00.0 no "bound to nvme, not vfio-pci"
want 0000:04:00.0 no "group 4 not viable: 0000:04:00.1 is bound to snd_hda_intel"
want 0000:05:00.0 no "no /dev/vfio/5"
want 0000:06:00.0 no "no IOMMU group"
want 0000:07:00.0 yes "ready: --backend vfio -o device=0000:07:00.0 (iommufd, /dev/vfio/devices/vfio0)"
want 0000:00:00.0 no "a bridge: not passed"
echo "$out" | grep -q "^0000:01:00.0 *10de:2b85 *030000 display *1 *vfio-pci" ||
	{ echo "FAIL: columns of 0000:01:00.0"; fails=$((fails + 1)); }
echo "$out" | grep -q "^11 function(s), 3 can be passed$" ||
	{ echo "FAIL: summary line"; fails=$((fails + 1)); }

json=$("$tp" list --root "$r" --json)
n=$(echo "$json" | grep -c '"passable":true' || true)
[ "$n" -eq 3 ] || { echo "FAIL: --json: $n passable, want 3"; fails=$((fails + 1)); }
echo "$json" | grep -q '"iommu_group":null' ||
	{ echo "FAIL: --json: a function with no group"; fails=$((fails + 1)); }
python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d)==11 and d[1]["bdf"]=="0000:01:00.0" and d[1]["vendor"]==0x10de and d[1]["iommu_group"]==1 and d[1]["vfio_cdev"] is None and d[10]["vfio_cdev"]=="vfio0"' <<< "$json" ||
	{ echo "FAIL: --json does not parse as expected"; fails=$((fails + 1)); }

rc=0
"$tp" list --root "$r/nowhere" > /dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || { echo "FAIL: missing sysfs: exit $rc, want 1"; fails=$((fails + 1)); }
rc=0
"$tp" list --bogus > /dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || { echo "FAIL: bad option: exit $rc, want 2"; fails=$((fails + 1)); }

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all list checks passed"
