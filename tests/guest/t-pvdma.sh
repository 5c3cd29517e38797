# Guest side of the pvdma test (docs/guest-pvdma.md): the model GPU behind the
# server's dart IOMMU model, with the pvdma companion as function 1 of its slot.
# guest/pvdma (pvdma.ko) installs dma_map_ops on the GPU; guest/tpselftest
# (unchanged) then runs its copy-engine jobs with device addresses the server chose.
#
# tp.phase=main: load pvdma, then the self-test (tp.jobs, default 1000, zero
# faults); rmmod pvdma is refused while the GPU has a driver; the guest's pvdma
# statistics against the server's registers and the guest's prediction of the
# server's windows and bytes; unload the self-test: zero mappings left; with
# tp.bench=1, map/unmap batches of 1, 16 and 256 entries timed; the other load
# order (the self-test bound first, pvdma takes the GPU over and binds it again);
# the companion unbound through sysfs while the GPU has a driver (pvdma unbinds it).
# tp.phase=stream (the server with a small byte cap): a streaming run through the
# DMA API (debugfs "stream": tp.stream, commas for blanks) that maps many times
# the cap and completes with backpressure; then, if tp.mixed_jobs > 0, the
# self-test while another stream (tp.mixed_stream) presses the cap.
# Both end with rmmod: the server holds nothing (the companion's STAT_WINDOWS and
# STAT_BYTES, read with devmem), memory is back, the kernel log is clean.
#
# Kernel command line: tp.phase= (main), tp.irq= (msix), tp.jobs= (1000),
# tp.bench= (0), tp.stream= (threads=8,atomic=1,size=4M,sg=4,count=40,hold_us=300),
# tp.mixed_jobs= (200), tp.mixed_stream= (threads=4,atomic=1,size=4M,sg=1,count=40,hold_us=300).
set -u

phase=$(cmdline_arg phase main)
mode=$(cmdline_arg irq msix)
jobs=$(cmdline_arg jobs 1000)
bench=$(cmdline_arg bench 0)
stream=$(cmdline_arg stream threads=8,atomic=1,size=4M,sg=4,count=40,hold_us=300 | tr , ' ')
mixed_jobs=$(cmdline_arg mixed_jobs 200)
mixed_stream=$(cmdline_arg mixed_stream threads=4,atomic=1,size=4M,sg=1,count=40,hold_us=300 | tr , ' ')
echo "=== pvdma test: phase=$phase irq=$mode jobs=$jobs bench=$bench stream='$stream' mixed_jobs=$mixed_jobs mixed_stream='$mixed_stream' cpus=$(grep -c ^processor /proc/cpuinfo)"

step "find the devices"
gpu=$(pci_find 10de:2b85) || result_fail "no 10de:2b85 on the guest's PCI bus"
comp=$(pci_find 7470:0001) || result_fail "no pvdma companion 7470:0001 on the guest's PCI bus"
gbdf=$(pci_bdf "$gpu") cbdf=$(pci_bdf "$comp")
echo "GPU $gbdf, companion $cbdf"
check_str "companion in the GPU's slot (function 1)" "$cbdf" "${gbdf%.*}.1"
[ -f /bin/pvdma.ko ] || result_fail "no /bin/pvdma.ko (run.sh --file)"
[ -f /bin/tpselftest.ko ] || result_fail "no /bin/tpselftest.ko (run.sh --file)"
mount -t debugfs none /sys/kernel/debug 2>/dev/null

meminfo() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }
# kv KEY: the value of KEY=VALUE in $res
kv() {
	local w
	for w in $res; do
		case $w in "$1="*)
			echo "${w#*=}"
			return 0
			;;
		esac
	done
	echo "?"
}
st() { cat "$comp/pvdma/$1"; }
dbg=/sys/kernel/debug/pvdma/$cbdf

# stats_line: every pvdma statistic as key=value
stats_line() {
	local f out
	out=
	for f in requests maps unmaps errors delayed doorbells bytes_mapped live_maps live_bytes \
		abandoned reaped sleeps spins ring_full unknown_unmaps refused max_batch irqs \
		model_windows model_bytes server_requests server_maps server_unmaps server_errors \
		server_delayed server_windows server_bytes server_lazy; do
		out="$out $f=$(st $f)"
	done
	echo "${out# }"
}

# settle: wait until the server has no lazy windows left (10 ms each by default)
settle() {
	local i
	i=0
	while [ "$(st server_lazy)" -ne 0 ] && [ $i -lt 50 ]; do
		sleep 0.05
		i=$((i + 1))
	done
}

# compare WHEN: guest counters = server registers; predicted windows/bytes = server's
compare() {
	settle
	echo "pvdma stats ($1): $(stats_line)"
	check_dec "$1: requests guest/server" "$(st requests)" "$(st server_requests)"
	check_dec "$1: maps guest/server" "$(st maps)" "$(st server_maps)"
	check_dec "$1: unmaps guest/server" "$(st unmaps)" "$(st server_unmaps)"
	check_dec "$1: errors guest/server" "$(st errors)" "$(st server_errors)"
	check_dec "$1: delayed guest/server" "$(st delayed)" "$(st server_delayed)"
	check_dec "$1: server lazy windows after settling" "$(st server_lazy)" 0
	check_dec "$1: windows predicted/server" "$(st model_windows)" "$(st server_windows)"
	check_dec "$1: bytes predicted/server" "$(st model_bytes)" "$(st server_bytes)"
	check_dec "$1: abandoned" "$(st abandoned)" 0
	check_dec "$1: unknown unmaps" "$(st unknown_unmaps)" 0
}

# selftest JOBS WHAT: the self-test's result line in $res, checked
selftest_check() {
	res=$(cat "$gpu/result" 2>/dev/null) || {
		dmesg | tail -n 20
		result_fail "$2: tpselftest probe failed, no $gpu/result"
	}
	echo "tpselftest result ($2): $res"
	check_dec "$2: jobs" "$(kv jobs)" "$1"
	check_dec "$2: mismatches" "$(kv mismatches)" 0
	check_dec "$2: lost_irqs" "$(kv lost_irqs)" 0
	check_dec "$2: faults" "$(kv faults)" 0
	check_dec "$2: fence_errors" "$(kv fence_errors)" 0
	check_str "$2: fault_test" "$(kv fault_test)" pass
	check_str "$2: result" "$(kv result)" pass
}

dmesg_n0=$(dmesg | wc -l)
free0=$(meminfo MemFree)

stream_phase() {
	[ -d "$dbg" ] || { fail "no $dbg (debugfs)"; return; }
	step "stream"
	cap=$(($(st max_mapped_mb) * 1048576))
	echo "$stream" > "$dbg/stream" || { fail "stream did not start"; return; }
	res=$(cat "$dbg/stream")
	echo "stream: $res"
	echo "TP-PVDMA-STREAM ${res}"
	check_str "stream result" "$(kv result)" pass
	check_dec "stream errors" "$(kv errors)" 0
	check "stream mapped more than the cap in total ($(kv bytes) > $cap bytes)" [ "$(kv bytes)" -gt "$cap" ]
	check "stream met backpressure (delayed $(kv delayed) > 0)" [ "$(kv delayed)" -gt 0 ]
	check_dec "stream abandoned" "$(kv abandoned)" 0
	compare "after the stream"
	check_dec "server windows after the stream" "$(st server_windows)" 0

	[ "$mixed_jobs" -gt 0 ] || return 0
	step "self-test while a stream presses the cap"
	echo "$mixed_stream" > "$dbg/stream" || { fail "stream did not start"; return; }
	insmod /bin/tpselftest.ko irq="$mode" jobs="$mixed_jobs" fault_test=1 ||
		{ dmesg | tail -n 20; result_fail "insmod tpselftest.ko (with the stream) failed"; }
	res=$(cat "$dbg/stream")
	echo "stream (with the self-test): $res"
	echo "TP-PVDMA-STREAM ${res}"
	check_str "stream result (with the self-test)" "$(kv result)" pass
	selftest_check "$mixed_jobs" "with the stream"
	rmmod tpselftest || fail "rmmod tpselftest failed"
	compare "mixed run over"
}

bench_phase() {
	[ -d "$dbg" ] || { fail "no $dbg (debugfs)"; return; }
	step "bench"
	for b in 1 16 256; do
		case $b in 1) r=2000 ;; 16) r=250 ;; *) r=64 ;; esac
		echo "$b $r" > "$dbg/bench" || fail "bench $b failed"
		echo "TP-PVDMA-BENCH $(cat "$dbg/bench")"
	done
	compare "after the bench"
}

main_phase() {
	step "self-test through pvdma"
	t0=$(uptime_s)
	insmod /bin/tpselftest.ko irq="$mode" jobs="$jobs" fault_test=1 ||
		{ dmesg | tail -n 20; result_fail "insmod tpselftest.ko failed"; }
	t1=$(uptime_s)
	echo "insmod tpselftest (the whole test runs in probe) took $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s"
	selftest_check "$jobs" dart
	echo "TP-PVDMA-SELFTEST ${res}"
	check "rmmod pvdma refused while the GPU has a driver" eval '! rmmod pvdma 2>/dev/null'
	check_str "pvdma still bound" "$(pci_driver "$comp")" pvdma
	compare "self-test bound"
	check "live mappings while bound" [ "$(st live_maps)" -gt 0 ]

	step "rmmod tpselftest"
	rmmod tpselftest || fail "rmmod tpselftest failed"
	compare "self-test unloaded"
	check_dec "live mappings after rmmod tpselftest" "$(st live_maps)" 0
	check_dec "server windows after rmmod tpselftest" "$(st server_windows)" 0
	check_dec "server bytes after rmmod tpselftest" "$(st server_bytes)" 0

	[ "$bench" = 1 ] && bench_phase
	step "the other load order"
	rmmod pvdma || fail "rmmod pvdma failed"
	check_str "companion driver after rmmod" "$(pci_driver "$comp")" -
	# Without pvdma the self-test's device addresses are guest-physical: under dart
	# they fault (its result is a fail, which is what it should be).
	insmod /bin/tpselftest.ko irq="$mode" jobs=5 lat_jobs=5 fault_test=1 ||
		{ dmesg | tail -n 20; result_fail "insmod tpselftest.ko (without pvdma) failed"; }
	res=$(cat "$gpu/result")
	echo "tpselftest without pvdma: $res"
	check "without pvdma the engine faults (faults $(kv faults) > 0)" [ "$(kv faults)" -gt 0 ]
	insmod /bin/pvdma.ko || { dmesg | tail -n 20; result_fail "insmod pvdma.ko (second) failed"; }
	check_str "GPU driver after pvdma took it over" "$(pci_driver "$gpu")" tpselftest
	selftest_check 5 "bound again by pvdma"
	compare "taken over"

	step "unbind the companion while the GPU has a driver"
	# rmmod is refused then, a sysfs unbind cannot be: pvdma unbinds the GPU's driver first.
	echo "$cbdf" > /sys/bus/pci/drivers/pvdma/unbind || fail "unbind $cbdf failed"
	check_str "companion driver after unbind" "$(pci_driver "$comp")" -
	check_str "GPU driver after the companion's unbind" "$(pci_driver "$gpu")" -
	echo "$cbdf" > /sys/bus/pci/drivers/pvdma/bind || fail "bind $cbdf failed"
	check_str "companion driver after bind" "$(pci_driver "$comp")" pvdma
	check_dec "live mappings after bind" "$(st live_maps)" 0
	rmmod tpselftest || fail "rmmod tpselftest failed"
	compare "bound again, GPU without driver"

}

step "insmod pvdma"
insmod /bin/pvdma.ko || { dmesg | tail -n 20; result_fail "insmod pvdma.ko failed"; }
check_str "companion driver" "$(pci_driver "$comp")" pvdma
check_str "managed device" "$(cat "$comp/managed")" "$gbdf"
check_dec "CONTROL (enabled)" "$(st control)" 1
echo "ring: $(cat "$dbg/ring" 2>/dev/null) granule=$(st granule) window=$(st window) cap=$(st max_mapped_mb) MiB max_mappings=$(st max_mappings)"
dmesg | grep 'pvdma' | sed 's/^/dmesg: /'

case $phase in
main) main_phase ;;
stream) stream_phase ;;
*) result_fail "tp.phase=$phase: main or stream" ;;
esac
final_stats=$(stats_line)

step "rmmod pvdma"
rmmod pvdma || fail "rmmod pvdma failed"
check "pvdma module gone" eval '! grep -q "^pvdma " /proc/modules'
check_str "companion driver after rmmod" "$(pci_driver "$comp")" -
# The server holds nothing: read the companion's registers ourselves.
pci_enable "$comp" || fail "cannot enable $cbdf"
b0=$(bar_start "$comp" 0)
control=$(mmio_read32 $((b0 + 0x38)))
windows=$(mmio_read32 $((b0 + 0x4c)))
bytes_lo=$(mmio_read32 $((b0 + 0x50)))
bytes_hi=$(mmio_read32 $((b0 + 0x54)))
lazy=$(mmio_read32 $((b0 + 0x60)))
echo "companion after rmmod: CONTROL=$control STAT_WINDOWS=$windows STAT_BYTES=$bytes_hi:$bytes_lo STAT_LAZY=$lazy"
check_eq "CONTROL after rmmod" "$control" 0
check_eq "STAT_WINDOWS after rmmod" "$windows" 0
check_eq "STAT_BYTES after rmmod" "$((bytes_lo | bytes_hi << 32))" 0
echo 0 > "$comp/enable"
echo "TP-PVDMA-FINAL $final_stats"

free1=$(meminfo MemFree)
echo "MemFree before $free0 kB, after $free1 kB"
check "memory returned (MemFree within 4 MiB)" [ $((free0 - free1)) -lt 4096 ]
new=$(dmesg | tail -n +$((dmesg_n0 + 1)))
echo "$new" | grep -E 'pvdma|WARNING|BUG|Call Trace|leak' | sed 's/^/dmesg: /'
check "no WARNING/BUG/Call Trace/leak in dmesg" eval '! echo "$new" | grep -q -E "WARNING|BUG:|Call Trace|leak"'

result_pass
