# Guest side of the test bed's own self-test (tests/guest/selftest.sh), against devices
# that QEMU emulates itself, so it needs no server:
#   edu (1234:11e8) with a small option ROM   BAR0 1 MiB, ident 0x010000ed, liveness
#                                             register (reads back ~written), ROM 55 aa
#   ivshmem-plain (1af4:1110), 4 MiB memdev   BAR2 64-bit prefetchable RAM
#   e1000e (8086:10d3) behind a root port     a PCIe capability in a real chain
# tp.mode=fail|noresult|hang (kernel command line) makes it misbehave on purpose,
# to show that the runner notices.
set -u

mode=$(cmdline_arg mode pass)
echo "=== selftest (mode $mode)"

step "edu"
edu=$(pci_find 1234:11e8) || result_fail "no edu device (1234:11e8)"
echo "edu $(pci_bdf "$edu") id $(pci_id "$edu") class $(pci_class "$edu") driver $(pci_driver "$edu")"
echo "edu $(bar_describe "$edu" 0)"
check_eq "edu BAR0 size" "$(bar_size "$edu" 0)" 0x100000
check "edu BAR0 is memory" bar_is_mem "$edu" 0
check "edu BAR0 is 32-bit" eval '! bar_is_64 "$edu" 0'
check "edu BAR0 is not prefetchable" eval '! bar_is_prefetch "$edu" 0'
echo "edu capabilities: $(cfg_caps "$edu")"
check "edu has an MSI capability" cfg_find_cap "$edu" $PCI_CAP_ID_MSI
check "edu has no PCIe capability" eval '! cfg_find_cap "$edu" $PCI_CAP_ID_EXP'
check_eq "edu config vendor id" "$(cfg_read16 "$edu" 0)" 0x1234
check_eq "edu config dword 0" "$(cfg_read32 "$edu" 0)" 0x11e81234
check "edu enable (memory decoding on)" pci_enable "$edu"
b0=$(bar_start "$edu" 0)
check_eq "edu BAR0+0x0 ident" "$(mmio_read32 $((b0 + 0)))" 0x010000ed
mmio_write32 $((b0 + 4)) 0x12345678
check_eq "edu BAR0+0x4 liveness after writing 0x12345678" "$(mmio_read32 $((b0 + 4)))" 0xedcba987
check_str "edu ROM first bytes" "$(rom_head "$edu" 2)" "55 aa"

step "ivshmem"
shm=$(pci_find 1af4:1110) || result_fail "no ivshmem-plain device (1af4:1110)"
echo "ivshmem $(pci_bdf "$shm") $(bar_describe "$shm" 2)"
check_eq "ivshmem BAR2 size" "$(bar_size "$shm" 2)" 0x400000
check "ivshmem BAR2 is 64-bit" bar_is_64 "$shm" 2
check "ivshmem BAR2 is prefetchable" bar_is_prefetch "$shm" 2
check "ivshmem enable" pci_enable "$shm"
b2=$(bar_start "$shm" 2)
for off in 0x0 0x4 0x100 0x10000 0x3ffffc; do
	mmio_write32 $((b2 + off)) $((0x5a5aa5a5 ^ off))
done
for off in 0x0 0x4 0x100 0x10000 0x3ffffc; do
	check_eq "ivshmem BAR2+$off" "$(mmio_read32 $((b2 + off)))" $((0x5a5aa5a5 ^ off))
done
mmio_write_str $((b2 + 0x1000)) "TPGUEST-BAR1-OK!"
check_str "ivshmem BAR2+0x1000 marker" "$(mmio_read_str $((b2 + 0x1000)) 16)" "TPGUEST-BAR1-OK!"

step "pcie"
nic=$(pci_find 8086:10d3) || result_fail "no e1000e device (8086:10d3)"
echo "e1000e $(pci_bdf "$nic") capabilities: $(cfg_caps "$nic")"
c=$(cfg_find_cap "$nic" $PCI_CAP_ID_EXP) || result_fail "e1000e: no PCIe capability"
echo "e1000e PCIe capability at $(hex "$c"), link status $(hex "$(cfg_read16 "$nic" $((c + 0x12)))")"
check_eq "e1000e PCIe capability offset" "$c" 0xe0
check_eq "e1000e link width (QEMU's e1000e is x1)" "$(pcie_link_width "$nic")" 1
rp=$(pci_parent "$nic") || result_fail "e1000e: no parent bridge"
echo "e1000e is below $(pci_bdf "$rp") ($(pci_id "$rp")), link width x$(pcie_link_width "$rp")"
check_str "root port id" "$(pci_id "$rp")" 1b36:000c
check_eq "root port link width (the endpoint's)" "$(pcie_link_width "$rp")" 1

case $mode in
fail) fail "failing on purpose (tp.mode=fail)" ;;
noresult) exit 0 ;;
hang) step "hanging on purpose"; while :; do sleep 1; done ;;
esac
result_pass
