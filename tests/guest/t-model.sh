# Guest side of the model test: thunderpass serves its software RTX 5090 (GB202,
# 10de:2b85) and the guest checks what a driver would see first. No driver is bound:
# config space through sysfs, BARs through /dev/mem (busybox devmem).
# Each value seen is printed (this is what `make demo` shows).
set -u

echo "=== thunderpass model GPU, seen from the guest"
step "find 10de:2b85"
gpu=$(pci_find 10de:2b85) || result_fail "no 10de:2b85 on the guest's PCI bus"
echo "device $(pci_bdf "$gpu") id $(pci_id "$gpu") class $(pci_class "$gpu") driver $(pci_driver "$gpu")"
check_str "vendor:device" "$(pci_id "$gpu")" 10de:2b85
check_str "class" "$(pci_class "$gpu")" 0x030000

# guest/tp-check.sh, when run.sh --file put it in /bin: what a user runs first in a
# guest (device visible, driver, BARs assigned, interrupts); the demo prints it.
step "tp-check.sh"
if [ -f /bin/tp-check.sh ]; then
	sh /bin/tp-check.sh 10de:2b85 || fail "guest/tp-check.sh: exit status $?"
fi

step "BARs"
for n in 0 1 2 3 4 5 6; do
	[ "$(bar_size "$gpu" $n)" -eq 0 ] && continue
	what="BAR$n"
	[ $n -eq 6 ] && what=ROM
	echo "$what: $(bar_describe "$gpu" $n | cut -d' ' -f2-) ($(size_str "$(bar_size "$gpu" $n)"))"
done
check_eq "BAR0 size" "$(bar_size "$gpu" 0)" 0x1000000
check "BAR0 is memory" bar_is_mem "$gpu" 0
check "BAR0 is 32-bit" eval '! bar_is_64 "$gpu" 0'
check_eq "BAR1 size" "$(bar_size "$gpu" 1)" 0x10000000
check "BAR1 is 64-bit" bar_is_64 "$gpu" 1
check "BAR1 is prefetchable" bar_is_prefetch "$gpu" 1
check_eq "BAR3 size" "$(bar_size "$gpu" 3)" 0x2000000

step "PCIe capability"
echo "capabilities: $(cfg_caps "$gpu")"
if c=$(cfg_find_cap "$gpu" $PCI_CAP_ID_EXP); then
	echo "PCIe capability at $(hex "$c"): link capabilities $(hex "$(cfg_read32 "$gpu" $((c + 0x0c)))"), link status $(hex "$(cfg_read16 "$gpu" $((c + 0x12)))")"
	check_dec "PCIe link width" "$(pcie_link_width "$gpu")" 4
	if rp=$(pci_parent "$gpu"); then
		echo "upstream port $(pci_bdf "$rp") ($(pci_id "$rp")) link width x$(pcie_link_width "$rp" || echo ?)"
	fi
else
	fail "no PCIe capability in the chain"
fi

step "enable"
check "enable (memory decoding on)" pci_enable "$gpu"
bar0=$(bar_start "$gpu" 0)
bar1=$(bar_start "$gpu" 1)

step "BAR0 registers"
boot0=$(mmio_read32 $((bar0 + 0x0)))
boot42=$(mmio_read32 $((bar0 + 0xa00)))
echo "PMC_BOOT_0 chipset $(hex $(((boot0 & 0x1ff00000) >> 20))) rev $(printf '0x%02x' $((boot0 & 0xff)))"
check_eq "PMC_BOOT_0 (BAR0+0x0)" "$boot0" 0x1b2000a1
check_eq "PMC_BOOT_42 (BAR0+0xa00)" "$boot42" 0x1b2a1000

step "PTIMER"
ptimer() { # hi lo hi, so that a carry between the halves is not misread
	local hi lo hi2
	hi=$(mmio_read32 $((bar0 + 0x9410)))
	lo=$(mmio_read32 $((bar0 + 0x9400)))
	hi2=$(mmio_read32 $((bar0 + 0x9410)))
	[ $((hi)) -eq $((hi2)) ] || lo=$(mmio_read32 $((bar0 + 0x9400)))
	echo $(((hi2 << 32) | lo))
}
t1=$(ptimer)
t2=$(ptimer)
echo "PTIMER $t1 ns, then $t2 ns (+$((t2 - t1)) ns)"
check "PTIMER advances" [ "$t2" -gt "$t1" ]

step "BAR1 writes"
offs="0x0 0x4 0x100 0x2000 0x10000 0x100000 0xfffffc"
for off in $offs; do
	mmio_write32 $((bar1 + off)) $((0x5a5aa5a5 ^ off))
done
for off in $offs; do
	check_eq "BAR1+$off" "$(mmio_read32 $((bar1 + off)))" $((0x5a5aa5a5 ^ off))
done
mmio_write_str $((bar1 + 0x1000)) "TPGUEST-BAR1-OK!"
check_str "BAR1+0x1000 marker" "$(mmio_read_str $((bar1 + 0x1000)) 16)" "TPGUEST-BAR1-OK!"

step "ROM"
# On x86 the boot VGA device's ROM is read from the copy SeaBIOS left at 0xc0000
# (the kernel marks it IORESOURCE_ROM_SHADOW); elsewhere from the ROM BAR itself.
if [ $(($(bar_flags "$gpu" 6) & IORESOURCE_ROM_SHADOW)) -ne 0 ]; then
	echo "ROM: read from the shadow copy at 0xc0000 (boot VGA device)"
fi
check_str "ROM first bytes" "$(rom_head "$gpu" 2)" "55 aa"
# The image is ours, not some other device's: its PCI data structure ("PCIR",
# found through the pointer at 0x18) names 10de:2b85.
rom=$(rom_head "$gpu" 512)
set -- $rom
pcir=$((0x$(eval echo \${$((0x18 + 2))})$(eval echo \${$((0x18 + 1))})))
shift $pcir
check_str "ROM PCIR at $pcir" "$1 $2 $3 $4 $5 $6 $7 $8" "50 43 49 52 de 10 85 2b"

result_pass
