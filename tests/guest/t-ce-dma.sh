# Guest side of the copy-engine DMA test: guest/tpselftest (in /bin, from
# guest/build.sh) drives the model GPU's copy engine end to end (docs/guest-selftest.md):
# jobs host -> VRAM -> host (and host -> host), fence, completion interrupt, a fault
# test, latency. This script loads it with the interrupt mode of the kernel command
# line, checks its counters, checks that the guest really used that mode, unloads it
# and checks that nothing is left behind.
#
# Kernel command line: tp.irq=msix|msi|intx (default msix), tp.jobs=N (1000),
# tp.max_size=SIZE (8M), tp.seed=N (1), tp.buf=auto|coherent|pages (auto),
# tp.max_job=BYTES (0: engine jobs as large as the buffers allow).
set -u

mode=$(cmdline_arg irq msix)
jobs=$(cmdline_arg jobs 1000)
max_size=$(cmdline_arg max_size 8M)
seed=$(cmdline_arg seed 1)
buf=$(cmdline_arg buf auto)
max_job=$(cmdline_arg max_job 0)
echo "=== copy engine DMA self-test: irq=$mode jobs=$jobs max_size=$max_size seed=$seed buf=$buf max_job=$max_job"

step "find 10de:2b85"
gpu=$(pci_find 10de:2b85) || result_fail "no 10de:2b85 on the guest's PCI bus"
bdf=$(pci_bdf "$gpu")
echo "device $bdf driver $(pci_driver "$gpu")"
[ -f /bin/tpselftest.ko ] || result_fail "no /bin/tpselftest.ko (run.sh --file)"

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
meminfo() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }
# irq_line: the /proc/interrupts line of our handler (name "tpselftest")
irq_line() { grep -E '[[:space:]]tpselftest$' /proc/interrupts; }

dmesg_n0=$(dmesg | wc -l)
free0=$(meminfo MemFree)

step "insmod"
t0=$(uptime_s)
if ! insmod /bin/tpselftest.ko irq="$mode" jobs="$jobs" max_size="$max_size" seed="$seed" \
	buf="$buf" max_job="$max_job" fault_test=1; then
	dmesg | tail -n 20
	result_fail "insmod tpselftest.ko failed"
fi
t1=$(uptime_s)
echo "insmod (the whole test runs in probe) took $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s"
check_str "driver" "$(pci_driver "$gpu")" tpselftest
res=$(cat "$gpu/result" 2>/dev/null) || {
	dmesg | tail -n 20
	why=$(dmesg | grep "tpselftest $bdf: " | tail -n 1 | sed 's/^\[[^]]*\] //')
	result_fail "probe failed, no $gpu/result (${why:-see dmesg})"
}
echo "tpselftest result: $res"

step "counters"
check_str "irq mode asked" "$(kv irq)" "$mode"
check_dec "jobs" "$(kv jobs)" "$jobs"
check_dec "mismatches" "$(kv mismatches)" 0
check_dec "lost_irqs" "$(kv lost_irqs)" 0
check_dec "faults" "$(kv faults)" 0
check_dec "fence_errors" "$(kv fence_errors)" 0
check_str "fault_test" "$(kv fault_test)" pass
check_str "result" "$(kv result)" pass
# Reported, not asserted (a spurious call is not an error by itself).
echo "spurious handler calls: $(kv spurious) of $(kv irqs)"
echo "latency doorbell->handler: median $(kv latency_us_median) us, p90 $(kv latency_us_p90) us ($(kv latency_n) jobs)"
echo "bandwidth of the $(kv max_size)-byte copies, doorbell to interrupt (guest clock): host->vram $(kv bw_h2v_mibs) MiB/s, vram->host $(kv bw_v2h_mibs) MiB/s, host->host $(kv bw_h2h_mibs) MiB/s"
echo "  the engine's own copy time (CE_DURATION_NS, server clock): host->vram $(kv ce_bw_h2v_mibs) MiB/s, vram->host $(kv ce_bw_v2h_mibs) MiB/s, host->host $(kv ce_bw_h2h_mibs) MiB/s"

step "interrupt mode used"
irqno=$(kv irqno)
line=$(irq_line) || line=
echo "/proc/interrupts: ${line:-(no tpselftest line)}"
if [ -n "$line" ]; then
	ncpu=$(head -n 1 /proc/interrupts | wc -w)
	set -- $line
	check_str "/proc/interrupts irq" "${1%:}" "$irqno"
	shift
	count=0
	i=0
	while [ "$i" -lt "$ncpu" ]; do
		count=$((count + $1))
		shift
		i=$((i + 1))
	done
	chip=$*
	chip=${chip% tpselftest}
	echo "interrupts counted by the guest kernel: $count (handler calls $(kv irqs)), type: $chip"
	check "interrupts delivered" [ "$count" -gt 0 ]
	case $mode in
	msix | msi)
		# x86: PCI-MSI; arm64: MSI (GICv2m) or ITS-MSI (GICv3 ITS)
		case $chip in *MSI*) echo "type $chip is an MSI type ok" ;; *) fail "type '$chip' is not MSI" ;; esac
		;;
	intx)
		# x86: IO-APIC ...-fasteoi; arm64: GIC ... Level
		case $chip in *MSI*) fail "type '$chip' is MSI, want a wired line" ;;
		*IO-APIC* | *GIC* ) echo "type $chip is a wired (INTx) line ok" ;;
		*) fail "type '$chip' is neither IO-APIC nor GIC" ;;
		esac
		;;
	esac
else
	fail "no tpselftest line in /proc/interrupts"
fi
# What the PCI core enabled: msi_irqs/<irq> says msi or msix; config space agrees.
kind=intx
[ -f "$gpu/msi_irqs/$irqno" ] && kind=$(cat "$gpu/msi_irqs/$irqno")
check_str "msi_irqs/$irqno" "$kind" "$mode"
cmd=$(cfg_read16 "$gpu" 0x04)
msix_en=0 msi_en=0
if c=$(cfg_find_cap "$gpu" $PCI_CAP_ID_MSIX); then
	msix_en=$((($(cfg_read16 "$gpu" $((c + 2))) >> 15) & 1))
fi
if c=$(cfg_find_cap "$gpu" $PCI_CAP_ID_MSI); then
	msi_en=$(($(cfg_read16 "$gpu" $((c + 2))) & 1))
fi
intx_dis=$(((cmd >> 10) & 1))
echo "config space: MSI-X enable $msix_en, MSI enable $msi_en, INTx disable $intx_dis, bus master $(((cmd >> 2) & 1))"
case $mode in
msix) check "MSI-X enabled, MSI off" [ "$msix_en$msi_en" = 10 ] ;;
msi) check "MSI enabled, MSI-X off" [ "$msix_en$msi_en" = 01 ] ;;
intx) check "MSI-X and MSI off, INTx enabled" [ "$msix_en$msi_en$intx_dis" = 000 ] ;;
esac

step "rmmod"
rmmod tpselftest || fail "rmmod tpselftest failed"
check_str "driver after rmmod" "$(pci_driver "$gpu")" -
check "module gone" eval '! grep -q "^tpselftest " /proc/modules'
check "no tpselftest in /proc/interrupts" eval '! irq_line'
check_dec "enable count after rmmod" "$(cat "$gpu/enable")" 0
check "no msi_irqs left" eval '[ -z "$(ls "$gpu/msi_irqs" 2>/dev/null)" ]'
if c=$(cfg_find_cap "$gpu" $PCI_CAP_ID_MSIX); then
	check_dec "MSI-X enable after rmmod" $((($(cfg_read16 "$gpu" $((c + 2))) >> 15) & 1)) 0
fi
check_dec "bus master after rmmod" $((($(cfg_read16 "$gpu" 0x04) >> 2) & 1)) 0
free1=$(meminfo MemFree)
echo "MemFree before insmod $free0 kB, after rmmod $free1 kB"
# The buffers are 2 x max_size (8 MiB each by default): a leak of either shows.
# Allow 6 MiB of noise: slab and page-cache growth of the test itself reached
# 2.6 MiB on arm64 (CMA) in CI, with nothing leaked.
check "memory returned (MemFree within 6 MiB)" [ $((free0 - free1)) -lt 6144 ]
new=$(dmesg | tail -n +$((dmesg_n0 + 1)))
echo "$new" | grep -E 'tpselftest|WARNING|BUG|Call Trace|leak' | sed 's/^/dmesg: /'
check "no WARNING/BUG/Call Trace/leak in dmesg" eval '! echo "$new" | grep -q -E "WARNING|BUG:|Call Trace|leak"'

result_pass
