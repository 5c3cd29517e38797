# Guest side of the vfio backend test (tests/guest/vfio-edu.sh). This guest is the
# HOST of the test: an x86_64 q35 machine with a virtual Intel IOMMU and QEMU's edu
# device. Here edu is bound to vfio-pci, `thunderpass serve --backend vfio` serves it
# through the kernel's real VFIO, and tp-vfio-edu (tests/vfio/edu_client.c), a
# vfio-user client, maps its own memory for DMA, drives edu's DMA engine through the
# server and checks the data and the MSI interrupts (docs/vfio.md).
#
# /bin holds thunderpass, tp-vfio-edu and the shared libraries they need (the
# host's bookworm glibc is the guest's), with the dynamic loader linked into /lib64.
#
# Kernel command line: tp.edu=single (one edu behind a root port: reset with
# VFIO_DEVICE_RESET, a bus reset of its own) or tp.edu=pair (two edu functions in one
# slot and one IOMMU group: both bound, the first served, reset with a hot reset of
# the bus, VFIO_DEVICE_PCI_HOT_RESET with the group's fd).
set -u
topo=$(cmdline_arg edu single)

dmesg_has_dmar_fault() { dmesg | grep -qi "DMAR.*fault"; }

step "libraries"
mkdir -p /lib64 /run
ln -sf /bin/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
export LD_LIBRARY_PATH=/bin
thunderpass --version || result_fail "thunderpass does not run in the guest (libraries?)"

step "find edu"
dev=$(pci_find 1234:11e8) || result_fail "no edu device (1234:11e8) on the guest's PCI bus"
bdf=$(pci_bdf "$dev")
[ -e "$dev/iommu_group" ] || result_fail "$bdf has no IOMMU group (intel-iommu, intel_iommu=on?)"
group=$(basename "$(readlink "$dev/iommu_group")")
echo "edu at $bdf, IOMMU group $group, driver $(pci_driver "$dev")"
echo "group $group: $(ls "/sys/kernel/iommu_groups/$group/devices" | tr '\n' ' ')"

step "list before binding"
thunderpass list > /tmp/list0 || fail "thunderpass list failed"
sed 's/^/list| /' /tmp/list0
check "list: edu not passable yet (no driver)" grep -q "^$bdf .* no  *no driver" /tmp/list0

step "bind edu to vfio-pci"
[ -d /sys/bus/pci/drivers/vfio-pci ] || result_fail "no vfio-pci driver (modules?)"
echo 1234 11e8 > /sys/bus/pci/drivers/vfio-pci/new_id
n=50
while [ "$(pci_driver "$dev")" != vfio-pci ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
check_str "edu driver" "$(pci_driver "$dev")" vfio-pci
check "/dev/vfio/$group is a character device" test -c "/dev/vfio/$group"

step "list after binding"
thunderpass list > /tmp/list1 || fail "thunderpass list failed"
grep "^$bdf " /tmp/list1 | sed 's/^/list| /'
check "list: edu can be passed" grep -q "^$bdf .* yes  *ready" /tmp/list1
if [ "$topo" = pair ]; then
	dev2=$(pci_find 1234:11e8 2) || result_fail "no second edu function (tp.edu=pair)"
	bdf2=$(pci_bdf "$dev2")
	grep "^$bdf2 " /tmp/list1 | sed 's/^/list| /'
	check_str "second edu in the same IOMMU group" "$(basename "$(readlink "$dev2/iommu_group")")" "$group"
	check "list: the second edu can be passed too" grep -q "^$bdf2 .* yes  *ready" /tmp/list1
fi

step "serve"
mkdir -p -m 700 /run/tp
sock=/run/tp/edu.sock
thunderpass serve --backend vfio -o "device=$bdf" --socket "$sock" --log-level info \
	> /tmp/server.log 2>&1 &
spid=$!
n=100
while [ ! -S "$sock" ] && kill -0 "$spid" 2> /dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
if [ ! -S "$sock" ]; then
	sed 's/^/server| /' /tmp/server.log
	result_fail "the server did not create $sock"
fi

step "client"
t0=$(uptime_s)
crc=0
tp-vfio-edu "$sock" > /tmp/client.log 2>&1 || crc=$?
t1=$(uptime_s)
sed 's/^/client| /' /tmp/client.log
echo "client ran from ${t0}s to ${t1}s"
check_dec "tp-vfio-edu exit status" "$crc" 0
check "tp-vfio-edu: PASS" grep -q "^tp-vfio-edu: PASS" /tmp/client.log

step "stop the server"
kill -TERM "$spid"
src=0
wait "$spid" || src=$?
sed 's/^/server| /' /tmp/server.log
check_dec "server exit status after SIGTERM" "$src" 0
check "server removed its socket" test ! -e "$sock"
check "server: vfio backend opened edu" grep -q "$bdf in IOMMU group $group" /tmp/server.log
check "server: under its seccomp filter" grep -q "seccomp filter installed" /tmp/server.log
check "server: BAR0 offered for mapping" grep -q "BAR0: 1 MiB rw, mapped" /tmp/server.log
# MSI went from the kernel straight to the client's eventfd: the core raised none.
check "server: no interrupt relayed through the server (irqs_msi=0)" \
	grep -q "session stats .*irqs_msi=0 " /tmp/server.log
check "server: the session ended with a reset" grep -q "session stats .*resets=[1-9]" /tmp/server.log
if [ "$topo" = pair ]; then
	check "server: reset is a hot reset of the bus" grep -q "reset: hot reset of the bus" /tmp/server.log
else
	check "server: reset is VFIO_DEVICE_RESET" grep -q "reset: function reset" /tmp/server.log
fi
check "server: no reset failed" sh -c "! grep -q -E '(warn|error): .*(reset|RESET)' /tmp/server.log"
# The DMA from unmapped memory was stopped by the (virtual) IOMMU: the guest kernel saw it.
dmesg | grep -i "DMAR.*fault" | head -n 3 | sed 's/^/dmesg| /'
check "the IOMMU reported the blocked DMA (DMAR fault)" dmesg_has_dmar_fault

result_pass
