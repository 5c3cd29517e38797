# Guest side of the stats test (tests/guest/during-stats.py runs on the host while
# this runs, through run.sh --during): the guest does known work between marks on
# the console, and after each mark waits so that the host can take a `thunderpass
# stats` snapshot; the host checks that the counters moved by exactly what the guest
# did. Marks: "=== STATS-MARK N key=value ...".
#   1  nothing done yet (the device enabled; QEMU has mapped guest RAM for DMA)
#   2  after tp.reads (default 100) reads of BAR0 PMC_BOOT_0 through devmem
#   3  after tpselftest.ko (when /bin has it) ran tp.jobs (default 50) copy-engine
#      jobs with MSI-X: irqs= is its handler's count
# Kernel command line: tp.reads=N, tp.jobs=N, tp.settle=SECONDS (default 2: how long
# the guest waits after each mark for the host's snapshot).
set -u

reads=$(cmdline_arg reads 100)
jobs=$(cmdline_arg jobs 50)
settle=$(cmdline_arg settle 2)
mark() { # N words...: the mark, then time for the host's snapshot
	echo "=== STATS-MARK $*"
	sleep "$settle"
}

step "find 10de:2b85"
gpu=$(pci_find 10de:2b85) || result_fail "no 10de:2b85 on the guest's PCI bus"
check "enable (memory decoding on)" pci_enable "$gpu"
bar0=$(bar_start "$gpu" 0)
echo "device $(pci_bdf "$gpu"), BAR0 at $bar0"
mark 1

step "BAR0 reads"
i=0
while [ $i -lt "$reads" ]; do
	v=$(devmem "$(hex $((bar0)))" 32)
	[ $((v)) -eq $((0x1b2000a1)) ] || fail "read $i of PMC_BOOT_0 gave $v"
	i=$((i + 1))
done
echo "read BAR0+0x0 $reads times"
mark 2 "reads=$reads"

step "copy engine with MSI-X"
if [ -f /bin/tpselftest.ko ]; then
	insmod /bin/tpselftest.ko irq=msix jobs="$jobs" max_size=256K lat_jobs=0 fault_test=0 ||
		result_fail "insmod tpselftest.ko failed"
	res=$(cat "$gpu/result" 2>/dev/null) || result_fail "no $gpu/result: the probe failed"
	echo "tpselftest result: $res"
	irqs=$(echo "$res" | tr ' ' '\n' | sed -n 's/^irqs=//p')
	r=$(echo "$res" | tr ' ' '\n' | sed -n 's/^result=//p')
	check_str "tpselftest result" "$r" pass
	mark 3 "irqs=$irqs jobs=$jobs"
fi

# What guest/tp-check.sh sees (with the module still bound: its interrupts).
step "tp-check.sh"
if [ -f /bin/tp-check.sh ]; then
	sh /bin/tp-check.sh 10de:2b85 || fail "tp-check.sh: exit status $?"
fi
if [ -f /bin/tpselftest.ko ]; then
	rmmod tpselftest || fail "rmmod tpselftest failed"
else
	echo "no /bin/tpselftest.ko: the interrupt step was left out"
fi
result_pass
