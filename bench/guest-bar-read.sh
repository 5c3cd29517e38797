# Guest side of bench/run-bar-read.sh (after tests/guest/lib.sh): times 32-bit reads
# of one BAR register with /bin/guest_bar_read. Parameters from the kernel command
# line: tp.dev=VENDOR:DEVICE (10de:2b85), tp.bar=N (0), tp.off=OFFSET (0),
# tp.iters=N (20000), tp.reps=N (1).
set -u
id=$(cmdline_arg dev 10de:2b85)
bar=$(cmdline_arg bar 0)
off=$(cmdline_arg off 0)
iters=$(cmdline_arg iters 20000)
reps=$(cmdline_arg reps 1)

step "find $id"
dev=$(pci_find "$id") || result_fail "no $id on the guest's PCI bus"
[ "$(bar_size "$dev" "$bar")" -gt 0 ] || result_fail "$id has no BAR$bar"
echo "bench: $(pci_bdf "$dev") ($id) $(bar_describe "$dev" "$bar")"
step "enable"
pci_enable "$dev" || result_fail "cannot enable $(pci_bdf "$dev")"
step "guest_bar_read"
echo "bench: $iters reads of resource$bar+$off, $reps run(s)"
r=0
while [ "$r" -lt "$reps" ]; do
	out=$(guest_bar_read "$dev/resource$bar" "$off" "$iters" 2>&1) || result_fail "guest_bar_read: $out"
	case $out in
	"bar_read_ns_per_op "*) echo "$out" ;;
	*) result_fail "guest_bar_read said: $out" ;;
	esac
	r=$((r + 1))
done
result_pass
