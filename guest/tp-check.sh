#!/bin/sh
# tp-check.sh [VID:DID]: inside the guest, what it sees of the passed-through
# device: is it visible (default any NVIDIA function, 10de:*), which driver is
# bound, are its BARs assigned (the sysfs resource file), and its interrupt
# counts (/proc/interrupts). busybox sh is enough; nothing else is needed.
#
# Exit status: 0 the device is visible and every BAR it has is assigned;
# 1 no such device; 2 visible, but a BAR is unassigned.
# Copy it into a guest and run it: sh tp-check.sh, or sh tp-check.sh 10de:2b85.
want=${1:-10de:*}
case $want in *:*) ;; *) echo "usage: tp-check.sh [VID:DID]  (e.g. 10de:2b85, 10de:*)" >&2; exit 1 ;; esac
want=$(echo "$want" | tr 'A-F' 'a-f')

# IORESOURCE_* (include/linux/ioport.h): I/O, 64-bit, prefetchable, not
# given an address by the kernel.
IO=0x100 PREFETCH=0x2000 MEM_64=0x100000 UNSET=0x20000000

# irq_count IRQ: the interrupts counted for IRQ over all CPUs, and its type
irq_count() {
	awk -v irq="$1:" '
		NR == 1 { ncpu = NF; next }
		$1 == irq {
			n = 0
			for (i = 2; i <= ncpu + 1; i++) n += $i
			t = ""
			for (i = ncpu + 2; i <= NF; i++) t = t " " $i
			print n " (" substr(t, 2) ")"
		}' /proc/interrupts
}

size_str() {
	awk -v s="$1" 'BEGIN {
		if (s >= 1073741824 && s % 1073741824 == 0) printf "%d GiB", s / 1073741824
		else if (s >= 1048576 && s % 1048576 == 0) printf "%d MiB", s / 1048576
		else if (s >= 1024 && s % 1024 == 0) printf "%d KiB", s / 1024
		else printf "%d B", s }'
}

found=0 worst=0
for d in /sys/bus/pci/devices/*; do
	[ -e "$d/vendor" ] || continue
	v=$(cat "$d/vendor") p=$(cat "$d/device")
	id="${v#0x}:${p#0x}"
	# shellcheck disable=SC2254 # the pattern is the point
	case $id in $want) ;; *) continue ;; esac
	found=$((found + 1))
	drv=none
	[ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
	echo "tp-check: device ${d##*/} $id class $(cat "$d/class") driver $drv enable $(cat "$d/enable" 2>/dev/null || echo ?)"

	# BARs: line N of resource is BAR N (line 7 the ROM): start end flags.
	n=0 bars=0 unassigned=''
	while read -r start end flags; do
		[ $n -le 6 ] || break # then bridge windows and SR-IOV BARs
		name=BAR$n
		[ $n -eq 6 ] && name=ROM
		n=$((n + 1))
		[ $((flags)) -eq 0 ] && [ $((end)) -eq 0 ] && continue
		size=$((end - start + 1))
		kind=mem
		[ $((flags & IO)) -ne 0 ] && kind=io
		[ $((flags & MEM_64)) -ne 0 ] && kind="$kind 64-bit"
		[ $((flags & PREFETCH)) -ne 0 ] && kind="$kind prefetchable"
		if [ $((flags & UNSET)) -ne 0 ] || [ $((start)) -eq 0 ]; then
			echo "tp-check:   $name $(size_str $size) $kind: UNASSIGNED (no address: MMIO would read all-ones)"
			unassigned="$unassigned $name"
		else
			printf 'tp-check:   %s %s %s at 0x%x\n' "$name" "$(size_str $size)" "$kind" $((start))
			bars=$((bars + 1))
		fi
	done < "$d/resource"

	# Interrupts: the MSI/MSI-X vectors (msi_irqs/), else the INTx line.
	irqs=0 nirq=0
	if [ -d "$d/msi_irqs" ] && [ -n "$(ls "$d/msi_irqs" 2>/dev/null)" ]; then
		for f in "$d"/msi_irqs/*; do
			i=${f##*/}
			c=$(irq_count "$i")
			echo "tp-check:   irq $i $(cat "$d/msi_irqs/$i"): ${c:-0 (not requested)}"
			c=${c%% *}
			irqs=$((irqs + ${c:-0}))
			nirq=$((nirq + 1))
		done
	elif [ "$(cat "$d/irq" 2>/dev/null || echo 0)" -ne 0 ] && c=$(irq_count "$(cat "$d/irq")") &&
		[ -n "$c" ]; then
		echo "tp-check:   irq $(cat "$d/irq") INTx: $c"
		irqs=$((irqs + ${c%% *}))
		nirq=1
	fi
	[ $nirq -gt 0 ] || echo "tp-check:   no interrupt in use (no driver has asked for one)"

	if [ -n "$unassigned" ]; then
		echo "tp-check: PROBLEM ${d##*/}: unassigned:$unassigned; the guest (or its firmware) gave them no address space"
		worst=2
	else
		echo "tp-check: OK ${d##*/}: visible, driver $drv, $bars BARs assigned, $irqs interrupts on $nirq vectors"
	fi
done
if [ $found -eq 0 ]; then
	echo "tp-check: PROBLEM: no $want device on the guest's PCI bus (is QEMU given -device vfio-user-pci? thunderpass doctor checks the host side)"
	exit 1
fi
exit $worst
