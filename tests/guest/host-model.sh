#!/bin/sh
# Host-side checks after t-model.sh (run.sh --host-check): BAR1 was mapped
# directly into the guest (the server counted no trapped BAR1 access) and what
# the guest wrote there is in the server's own backing memory (the VRAM file).
#   host-model.sh VRAM_FILE      (TP_SERVER_LOG from run.sh)
set -eu
vram=$1
fail() { echo "host-model: $*" >&2; exit 1; }

stats=$(grep 'session stats region=1 ' "$TP_SERVER_LOG") || fail "no BAR1 stats in the server log"
echo "host-model: $stats"
echo "$stats" | grep -q 'trapped_reads=0 trapped_writes=0 ' || fail "BAR1 accesses were trapped"
echo "$stats" | grep -q 'mapped_areas=1' || fail "BAR1 was not offered for mapping"
bar0=$(grep 'session stats region=0 ' "$TP_SERVER_LOG") || fail "no BAR0 stats"
echo "$bar0" | grep -q 'trapped_reads=0 ' && fail "BAR0 reads never reached the server"
marker=$(dd if="$vram" bs=1 skip=4096 count=16 2>/dev/null)
[ "$marker" = "TPGUEST-BAR1-OK!" ] || fail "VRAM file at 0x1000 holds '$marker', not the guest's marker"
word=$(od -An -tx4 -j 0 -N 4 "$vram" | tr -d ' ')
[ "$word" = 5a5aa5a5 ] || fail "VRAM file at 0x0 holds 0x$word, not the guest's pattern"
echo "host-model: the guest's BAR1 writes are in the server's VRAM backing file"
