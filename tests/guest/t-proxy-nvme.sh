# Guest side of the proxy nvme tests (tests/guest/run-proxy.sh): QEMU's nvme model,
# served by QEMU's x-vfio-user-server, behind `thunderpass serve --backend proxy`
# (or straight, for the benchmark). The stock nvme driver, MSI-X (no pci=nomsi).
#   tp.mode=io     sector 0 as the host wrote it (tp.marker); 64 MiB of random data
#                  written with O_DIRECT at 16 MiB and read back (md5 printed as
#                  GUEST-MD5 for the host to compare with the disk image); a marker
#                  sector written for the host (GUEST-MARKER at 8 MiB); no I/O
#                  timeouts; interrupts seen as MSI-X
#   tp.mode=kill   a marker at 4 MiB tells the host to kill the remote server, while
#                  the guest reads in a loop: the reads must fail (I/O error), in time
#   tp.mode=bench  sequential (1 MiB) and 4 KiB random read and write throughput at
#                  queue depth 1 (/bin/tp_nvme_io, O_DIRECT; tp.passes, default 3), I/O
#                  timeouts and interrupts taken: printed, nothing checked but that
#                  the I/O works
#   tp.pvdma=1     (io) thunderpass runs the dart IOMMU model with the pvdma companion
#                  as function 1 of the slot: /bin/pvdma.ko is loaded first, then the
#                  stock nvme driver (run.sh --modules-late), whose DMA mappings then
#                  become device addresses the server chose; after the checks, the
#                  guest's and the server's pvdma counters agree, and rmmod nvme and
#                  rmmod pvdma leave nothing mapped
set -u
mode=$(cmdline_arg mode io)
marker=$(cmdline_arg marker none)
pvdma=$(cmdline_arg pvdma 0)

echo "=== nvme behind the vfio-user device, mode $mode, pvdma $pvdma"
step "find 1b36:0010"
dev=$(pci_find 1b36:0010) || result_fail "no 1b36:0010 (QEMU nvme) on the guest's PCI bus"
if [ "$pvdma" = 1 ]; then
	step "pvdma, then nvme"
	comp=$(pci_find 7470:0001) || result_fail "no pvdma companion 7470:0001 on the guest's PCI bus"
	check_str "companion in the nvme's slot (function 1)" "$(pci_bdf "$comp")" "$(pci_bdf "$dev" | sed 's/\.0$/.1/')"
	insmod /bin/pvdma.ko || { dmesg | tail -n 20; result_fail "insmod pvdma.ko failed"; }
	check_str "companion driver" "$(pci_driver "$comp")" pvdma
	check_str "managed device" "$(cat "$comp/managed")" "$(pci_bdf "$dev")"
	echo "pvdma: granule $(cat "$comp/pvdma/granule") window $(cat "$comp/pvdma/window")"
	modprobe nvme || { dmesg | tail -n 20; result_fail "modprobe nvme failed"; }
fi
echo "device $(pci_bdf "$dev") driver $(pci_driver "$dev")"
check_str "driver" "$(pci_driver "$dev")" nvme

step "wait for /dev/nvme0n1"
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/nvme0n1 ] || { dmesg | grep -i nvme | tail -20; result_fail "no /dev/nvme0n1 after 20 s"; }
echo "nvme0n1: $(cat /sys/block/nvme0n1/size) sectors; model $(cat /sys/class/nvme/nvme0/model 2>/dev/null)"

# MSI-X: enabled in the guest's view of the capability, and the driver's vectors.
msix_check() {
	local c ctl
	c=$(cfg_find_cap "$dev" $PCI_CAP_ID_MSIX) || { fail "no MSI-X capability"; return; }
	ctl=$(cfg_read16 "$dev" $((c + 2)))
	check "MSI-X enabled (control $(hex "$ctl"))" [ $((ctl & 0x8000)) -ne 0 ]
	n=$(ls "$dev/msi_irqs" 2> /dev/null | wc -l)
	echo "msi_irqs: $n; /proc/interrupts:"
	grep nvme /proc/interrupts | head -4
	check "nvme vectors allocated" [ "$n" -gt 0 ]
}

timeouts() { dmesg | grep -c -i -E 'nvme.*(timeout|aborting|reset controller)'; }

# pvdma: the mappings the nvme driver made went through the ring, the guest's and
# the server's counters agree; unloading nvme, then pvdma, leaves nothing mapped.
pvst() { cat "$comp/pvdma/$1"; }
pvdma_stats() {
	local f out=
	for f in requests maps unmaps errors delayed live_maps live_bytes abandoned unknown_unmaps \
		server_requests server_maps server_unmaps server_errors server_windows server_bytes server_lazy; do
		out="$out $f=$(pvst $f)"
	done
	echo "${out# }"
}
pvdma_end() {
	step "pvdma counters"
	echo "pvdma stats: $(pvdma_stats)"
	echo "TP-PVDMA-NVME $(pvdma_stats)"
	check "nvme's DMA mapped through pvdma (maps $(pvst maps) > 0)" [ "$(pvst maps)" -gt 0 ]
	check_dec "pvdma errors" "$(pvst errors)" 0
	check_dec "pvdma abandoned" "$(pvst abandoned)" 0
	check_dec "pvdma unknown unmaps" "$(pvst unknown_unmaps)" 0
	check_dec "maps guest/server" "$(pvst maps)" "$(pvst server_maps)"
	check_dec "unmaps guest/server" "$(pvst unmaps)" "$(pvst server_unmaps)"
	step "rmmod nvme, rmmod pvdma"
	rmmod nvme || fail "rmmod nvme failed"
	check_dec "live mappings after rmmod nvme" "$(pvst live_maps)" 0
	i=0
	while [ "$(pvst server_lazy)" -ne 0 ] && [ $i -lt 50 ]; do sleep 0.05; i=$((i + 1)); done
	check_dec "server windows after rmmod nvme" "$(pvst server_windows)" 0
	rmmod pvdma || fail "rmmod pvdma failed"
	check_str "companion driver after rmmod" "$(pci_driver "$comp")" -
	dmesg | grep -E 'pvdma.*final' | sed 's/^/dmesg: /'
	check "no WARNING/BUG/Call Trace in dmesg" eval '! dmesg | grep -q -E "WARNING|BUG:|Call Trace"'
}

case $mode in
io)
	step "sector 0 from the host"
	s0=$(dd if=/dev/nvme0n1 bs=4096 count=1 iflag=direct 2> /dev/null | head -c ${#marker})
	check_str "sector 0" "$s0" "$marker"

	step "64 MiB random, O_DIRECT"
	dd if=/dev/urandom of=/tmp/pat bs=1M count=64 2> /dev/null
	t0=$(uptime_s)
	dd if=/tmp/pat of=/dev/nvme0n1 bs=1M seek=16 oflag=direct conv=fsync 2> /dev/null || fail "write failed"
	t1=$(uptime_s)
	dd if=/dev/nvme0n1 of=/tmp/rb bs=1M skip=16 count=64 iflag=direct 2> /dev/null || fail "read back failed"
	t2=$(uptime_s)
	a=$(md5sum < /tmp/pat | cut -d' ' -f1)
	b=$(md5sum < /tmp/rb | cut -d' ' -f1)
	rm -f /tmp/rb
	echo "write $t0-$t1 s, read $t1-$t2 s (guest clock)"
	check_str "md5 read back" "$b" "$a"
	echo "GUEST-MD5 $a"

	step "a marker sector for the host"
	printf 'GUEST-MARKER-%s' "$marker" | dd of=/dev/nvme0n1 bs=4096 seek=2048 conv=sync,fsync oflag=direct 2> /dev/null ||
		fail "marker write failed"

	step "MSI-X"
	msix_check
	check_dec "I/O timeouts in the guest log" "$(timeouts)" 0
	[ "$pvdma" = 1 ] && pvdma_end
	;;
kill)
	step "read in a loop while the host kills the remote"
	(
		while dd if=/dev/nvme0n1 of=/dev/null bs=1M count=16 iflag=direct 2> /dev/null; do :; done
		echo "READER-FAILED at $(uptime_s)"
	) > /tmp/reader.log 2>&1 &
	reader=$!
	sleep 0.5
	# The host kills the remote as soon as the marker is in the disk image, which can
	# be before this write (or its flush) completes: then it fails, as it should. If
	# the marker never got there, the reader below never fails either.
	printf 'TPKILL-%s' "$marker" | dd of=/dev/nvme0n1 bs=4096 seek=1024 conv=sync,fsync oflag=direct 2> /dev/null ||
		echo "kill marker write failed (the remote went while it completed)"
	echo "kill marker written at $(uptime_s)"
	i=0
	while kill -0 $reader 2> /dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	cat /tmp/reader.log
	check "the reader ended (no hang)" eval '! kill -0 $reader 2> /dev/null'
	check "the reader saw an error" grep -q READER-FAILED /tmp/reader.log
	step "one more read must fail, and in time"
	t0=$(uptime_s)
	if dd if=/dev/nvme0n1 of=/dev/null bs=4096 count=1 iflag=direct 2> /tmp/dd.err; then
		fail "a read succeeded after the remote died"
	else
		echo "read after the kill: $(head -1 /tmp/dd.err)"
	fi
	echo "took $t0 -> $(uptime_s) s"
	dmesg | grep -i nvme | tail -8
	;;
bench)
	# bench/guest_nvme_io.c: queue depth 1, O_DIRECT.
	mib=$(cmdline_arg mib 32) ops=$(cmdline_arg ops 2000)
	for rep in $(seq 1 "$(cmdline_arg passes 3)"); do
		step "sequential, pass $rep"
		tp_nvme_io /dev/nvme0n1 write seq 1048576 "$mib" || fail "sequential write failed"
		tp_nvme_io /dev/nvme0n1 read seq 1048576 "$mib" || fail "sequential read failed"
		step "4 KiB random, pass $rep"
		tp_nvme_io /dev/nvme0n1 read rand 4096 "$ops" || fail "random read failed"
		tp_nvme_io /dev/nvme0n1 write rand 4096 "$ops" || fail "random write failed"
	done
	# Printed, not checked: straight to the reference server only INTx works
	# (pci=nomsi), and it loses interrupts that the timeout then polls for.
	echo "BENCH io_timeouts $(timeouts)"
	echo "BENCH irqs $(grep nvme /proc/interrupts | awk '{s += $2} END {print s + 0}')"
	;;
*) result_fail "unknown tp.mode=$mode" ;;
esac
result_pass
