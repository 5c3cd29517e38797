#!/bin/sh
# Host-side checks after t-ce-dma.sh (run.sh --host-check): the server raised the
# copy engine's interrupts through the mode the guest asked for, and through no
# other (its "session stats ... irqs_msix= irqs_msi= irqs_intx=" line, written by
# tp_device_log_stats when the session ends); no interrupt was dropped; and the
# guest's handler saw what the server raised.
#   host-ce-dma.sh MODE        MODE: msix, msi or intx (TP_SERVER_LOG, TP_GUEST_LOG)
set -eu
mode=$1
fail() { echo "host-ce-dma: FAIL $*" >&2; exit 1; }

stats=$(grep 'session stats dma_maps=' "$TP_SERVER_LOG" | tail -n 1) ||
	fail "no 'session stats dma_maps=' line in the server log"
# num KEY: KEY=N from the stats line
num() { echo "$stats" | tr ' ' '\n' | sed -n "s/^$1=\([0-9]*\)$/\1/p"; }
msix=$(num irqs_msix) msi=$(num irqs_msi) intx=$(num irqs_intx) dropped=$(num irqs_dropped)
maps=$(num dma_maps)
[ -n "$msix" ] && [ -n "$msi" ] && [ -n "$intx" ] && [ -n "$dropped" ] ||
	fail "cannot read the irq counters from: $stats"
res=$(sed -n 's/.*tpselftest result: //p' "$TP_GUEST_LOG" | tail -n 1)
[ -z "$res" ] || echo "host-ce-dma: guest: $res"
guest=$(echo "$res" | tr ' ' '\n' | sed -n 's/^irqs=\([0-9]*\)$/\1/p')
echo "host-ce-dma: server irqs_msix=$msix irqs_msi=$msi irqs_intx=$intx irqs_dropped=$dropped dma_maps=$maps; guest handler calls ${guest:-?} (mode $mode)"
case $mode in
msix) used=$msix others=$((msi + intx)) ;;
msi) used=$msi others=$((msix + intx)) ;;
intx) used=$intx others=$((msix + msi)) ;;
*) fail "unknown mode '$mode'" ;;
esac
[ "$used" -gt 0 ] || fail "the server raised no $mode interrupt"
[ "$others" -eq 0 ] || fail "the server raised interrupts of another mode than $mode"
[ "$dropped" -eq 0 ] || fail "the server dropped $dropped interrupts"
# An edge (MSI-X/MSI) is one handler call each; an INTx assertion may be seen twice
# (shared line) or coalesced, so only the edge modes are compared exactly.
if [ -n "$guest" ] && [ "$mode" != intx ] && [ "$guest" -ne "$used" ]; then
	fail "the server raised $used $mode interrupts, the guest's handler ran $guest times"
fi
echo "host-ce-dma: $mode only, as asked"
