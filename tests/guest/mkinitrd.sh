#!/bin/bash
# Build a busybox initramfs for a guest test.
#
#   mkinitrd.sh ARCH OUT.cpio.gz TEST.sh [FILE...]
#
#   ARCH     x86_64 or aarch64 (busybox and modules from $TP_TESTBED for that arch)
#   TEST.sh  guest-side test; tests/guest/lib.sh followed by TEST.sh becomes /test.sh
#   FILE...  extra files (static binaries) copied into /bin
#   env MODULES="a b"  kernel modules to copy, with their depends= chain; loaded
#                      in this order by /init (busybox modprobe)
#   env MODULES_LATE="a b"  copied the same way, not loaded: the test modprobes them
#
# The archive is written by this script itself (newc format, inode numbers counted
# from 1, every mtime 0, owner root, entries sorted by name), so the same inputs
# give the same bytes: busybox cpio records the build tree's real inode numbers.
# Needs bash, coreutils, gzip and the testbed (tests/guest/testbed.sh).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
TB=${TP_TESTBED:-$top/.cache/testbed}

die() { echo "mkinitrd: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: mkinitrd.sh x86_64|aarch64 OUT.cpio.gz TEST.sh [FILE...]"
arch=$1 out=$2 test=$3
shift 3
case $arch in
x86_64) karch=amd64 ;;
aarch64) karch=arm64 ;;
*) die "unknown arch '$arch' (x86_64 or aarch64)" ;;
esac
K=$TB/k/$karch
bb=$K/bin/busybox
hostbb=$TB/k/amd64/bin/busybox
[ -x "$bb" ] && [ -f "$K/KVER" ] || die "no testbed in $TB: run tests/guest/testbed.sh"
[ -f "$test" ] || die "no test script '$test'"
kver=$(cat "$K/KVER")

t=$(mktemp -d "${TMPDIR:-/tmp}/tp-initrd.XXXXXX")
trap 'rm -rf "$t"' EXIT
r=$t/root
mkdir -p "$r/bin" "$r/sbin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/root"
cp "$bb" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
cp "$here/init" "$r/init"
chmod 755 "$r/init"
{
	echo "# /test.sh: tests/guest/lib.sh + ${test##*/}"
	cat "$here/lib.sh"
	echo "# ---- ${test##*/}"
	cat "$test"
} > "$r/test.sh"
for f in "$@"; do
	[ -f "$f" ] || die "no file '$f'"
	cp "$f" "$r/bin/"
done

# Modules: copy each with its depends= chain (read from the .ko's modinfo strings),
# then let busybox depmod write modules.dep for busybox modprobe in the guest.
mods=${MODULES:-}
late=${MODULES_LATE:-}
if [ -n "$mods$late" ]; then
	mdir=$K/lib/modules/$kver
	addmod() {
		local m=$1 f d dep
		f=$(find "$mdir/kernel" \( -name "$m.ko" -o -name "${m//_/-}.ko" -o -name "${m//-/_}.ko" \) -print | sort | head -1)
		if [ -z "$f" ]; then
			if grep -q -E "/(${m//-/_}|${m//_/-})\.ko$" "$mdir/modules.builtin"; then
				return 0 # built into the kernel: nothing to copy
			fi
			die "module '$m' not found for $kver ($arch)"
		fi
		d=$r/lib/modules/$kver/${f#"$mdir"/}
		[ -e "$d" ] && return 0
		mkdir -p "$(dirname "$d")"
		cp "$f" "$d"
		for dep in $(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | tr , ' '); do
			addmod "$dep"
		done
	}
	for m in $mods $late; do addmod "$m"; done
	cp "$mdir/modules.builtin" "$mdir/modules.order" "$r/lib/modules/$kver/"
	"$hostbb" depmod -b "$r" "$kver"
	echo "$mods" | tr ' ' '\n' | sed '/^$/d' > "$r/etc/modules"
fi

# newc writer: 110-byte ASCII header, NUL-terminated name padded to 4, data padded to 4.
ino=0
pad() { [ "$1" -gt 0 ] && head -c "$1" /dev/zero; return 0; }
entry() { # name mode size rdevmajor rdevminor
	local name=$1 mode=$2 size=$3 nsz
	ino=$((ino + 1))
	nsz=$((${#name} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$ino" "$mode" 0 0 1 0 "$size" 0 0 "${4:-0}" "${5:-0}" "$nsz" 0
	printf '%s\0' "$name"
	pad $(((4 - (110 + nsz) % 4) % 4))
}
{
	entry dev 040755 0
	entry dev/console 020600 0 5 1
	(cd "$r" && find . -mindepth 1 -print | sed 's|^\./||' | sort) | while IFS= read -r p; do
		[ "$p" = dev ] && continue
		f=$r/$p
		if [ -L "$f" ]; then
			l=$(readlink "$f")
			entry "$p" 0120777 "${#l}"
			printf '%s' "$l"
			pad $(((4 - ${#l} % 4) % 4))
		elif [ -d "$f" ]; then
			entry "$p" 040755 0
		else
			s=$(stat -c %s "$f")
			if [ -x "$f" ]; then mode=0100755; else mode=0100644; fi
			entry "$p" "$mode" "$s"
			cat "$f"
			pad $(((4 - s % 4) % 4))
		fi
	done
	entry TRAILER!!! 0 0
} | gzip -n -1 > "$out.tmp"
mv "$out.tmp" "$out"
