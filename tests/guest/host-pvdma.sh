#!/bin/sh
# Host-side checks after t-pvdma.sh (run.sh --pvdma --host-check): the server's log
# agrees with what the guest saw.
#   - every time the guest enabled the companion's ring it disabled it again (rmmod,
#     unbind), and each teardown found nothing but lazy windows (as many as the
#     guest's last look at STAT_LAZY said) and no waiting MAP;
#   - the GPU's session stats (written when the session ends): iommu=dart,
#     iommu_live=0; dma_faults = the engine faults the guest's self-test runs counted
#     (ce_faults: the fault tests, and the run without pvdma); irqs_msix = their
#     handler calls; nothing dropped; iommu_maps at most the guest's MAPs (a window
#     serves many);
#   - each "final:" line of the guest's pvdma (at rmmod) has its own counters equal
#     to the server's registers (requests, maps, unmaps, errors, delayed) and no
#     record live;
#   - no doorbell was ignored.
#   host-pvdma.sh              (TP_SERVER_LOG, TP_GUEST_LOG)
set -eu
fail() { echo "host-pvdma: FAIL $*" >&2; exit 1; }
S=$TP_SERVER_LOG G=$TP_GUEST_LOG

# num LINE KEY: KEY=N from LINE
num() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=\([0-9]*\)$/\1/p" | head -n 1; }

enabled=$(grep -c 'pvdma0: ring enabled' "$S" || true)
disabled=$(grep 'pvdma0: ring disabled: ' "$S" | sed 's/.*ring disabled: //') || true
ndisabled=$(echo "$disabled" | grep -c 'mappings' || true)
echo "host-pvdma: ring enabled $enabled times, disabled $ndisabled times"
[ "$enabled" -gt 0 ] || fail "the guest never enabled the ring"
[ "$enabled" -eq "$ndisabled" ] || fail "ring enabled $enabled times but disabled $ndisabled times"
! grep -q 'doorbell .* ignored' "$S" || fail "$(grep 'doorbell .* ignored' "$S" | head -n 1)"

# The guest's pvdma "final:" lines (its kernel log at rmmod or unbind, printed by the
# test), in order, one per ring teardown: the guest held nothing then, and what the
# server tore down can only be lazy windows (kept a few ms after their last unmap).
finals=$(grep -a 'dmesg: .*pvdma .*: final: ' "$G" | sed 's/.*: final: //') || true
nfinal=$(echo "$finals" | grep -c 'requests=' || true)
[ "$nfinal" -eq "$enabled" ] || fail "$nfinal pvdma final lines in the guest log, $enabled ring enables in the server log"
i=0
echo "$finals" | while read -r l; do
	i=$((i + 1))
	for k in requests maps unmaps errors delayed; do
		g=$(num "$l" $k) s=$(num "$l" server_$k)
		[ -n "$g" ] && [ "$g" = "$s" ] || fail "guest $k=$g, server $k=$s: $l"
	done
	[ "$(num "$l" live_maps)" = 0 ] || fail "guest records live at teardown: $l"
	w=$(num "$l" server_windows) lazy=$(num "$l" server_lazy)
	[ "$w" = "$lazy" ] || fail "server mappings at teardown that are not lazy windows: $l"
	# (a lazy window may expire between the guest's look and the teardown)
	d=$(echo "$disabled" | sed -n "${i}p")
	n=$(echo "$d" | sed -n 's/^\([0-9]*\) mappings (.*) and 0 waiting MAPs torn down$/\1/p')
	[ -n "$n" ] && [ "$n" -le "$w" ] ||
		fail "teardown $i: the server tore down '$d', the guest saw $w lazy windows"
	echo "host-pvdma: teardown $i: guest = server: requests=$(num "$l" requests) maps=$(num "$l" maps) unmaps=$(num "$l" unmaps) errors=$(num "$l" errors) delayed=$(num "$l" delayed); $n of $w lazy windows torn down (doorbells=$(num "$l" doorbells) bytes_mapped=$(num "$l" bytes_mapped) abandoned=$(num "$l" abandoned) reaped=$(num "$l" reaped))"
done
gmaps=0
for l in $(echo "$finals" | tr ' ' '\n' | sed -n 's/^maps=//p'); do gmaps=$((gmaps + l)); done

stats=$(grep 'model0: session stats dma_maps=' "$S" | tail -n 1) ||
	fail "no 'model0: session stats dma_maps=' line in the server log"
echo "host-pvdma: server: ${stats#*session stats }"
[ "$(echo "$stats" | tr ' ' '\n' | sed -n 's/^iommu=//p')" = dart ] || fail "the GPU was not behind dart"
[ "$(num "$stats" iommu_live)" = 0 ] || fail "the server still held IOMMU mappings at the end"
[ "$(num "$stats" irqs_dropped)" = 0 ] || fail "the server dropped interrupts"
imaps=$(num "$stats" iommu_maps)
[ "$imaps" -gt 0 ] && [ "$imaps" -le "$gmaps" ] ||
	fail "iommu_maps=$imaps: want 1..$gmaps (the guest's MAPs)"

# The self-test runs: engine faults and interrupts, from their result lines.
runs=$(grep -a -E 'tpselftest (result \(|without pvdma: )' "$G" | sed 's/.*dev=/dev=/') || true
faults=0 irqs=0
for v in $(echo "$runs" | tr ' ' '\n' | sed -n 's/^ce_faults=//p'); do faults=$((faults + v)); done
for v in $(echo "$runs" | tr ' ' '\n' | sed -n 's/^irqs=//p'); do irqs=$((irqs + v)); done
nruns=$(echo "$runs" | grep -c 'dev=' || true)
echo "host-pvdma: $nruns self-test runs: ce_faults $faults, handler calls $irqs; server dma_faults=$(num "$stats" dma_faults) irqs_msix=$(num "$stats" irqs_msix); guest MAPs $gmaps, server IOMMU maps $imaps"
[ "$(num "$stats" dma_faults)" = "$faults" ] ||
	fail "server dma_faults=$(num "$stats" dma_faults), the guest's self-test runs counted $faults"
if grep -a -q 'irq=msix' "$G"; then
	[ "$(num "$stats" irqs_msix)" = "$irqs" ] ||
		fail "server irqs_msix=$(num "$stats" irqs_msix), the self-test's handler ran $irqs times"
fi
echo "host-pvdma: server and guest agree"
