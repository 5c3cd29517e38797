# Guest side of the proxy gpio test (tests/guest/run-proxy.sh): libvfio-user's
# samples/gpio-pci-idio-16 behind `thunderpass serve --backend proxy`. The stock
# gpio-pci-idio-16 driver must bind and the 16 input lines (gpio 16-31) must read
# what the sample serves: its input registers (BAR2 +1, +5) read 0. Its register at
# BAR2 +0 counts reads (pin++ / 3): read through /dev/mem with the driver unbound,
# six reads must step by 1 or 2 - the values come from the sample, live.
set -u

echo "=== gpio-pci-idio-16 behind the vfio-user device"
step "find 494f:0dc8"
dev=$(pci_find 494f:0dc8) || result_fail "no 494f:0dc8 on the guest's PCI bus"
drv=$(pci_driver "$dev")
echo "device $(pci_bdf "$dev") driver $drv; $(bar_describe "$dev" 2)"
case $drv in gpio_pci_idio_16 | pci-idio-16) echo "driver $drv ok" ;; *) fail "driver $drv, want pci-idio-16" ;; esac
check_eq "BAR2 size" "$(bar_size "$dev" 2)" 0x100

step "gpio chip"
chip=
for c in /sys/class/gpio/gpiochip*; do
	[ -e "$c/device" ] || continue
	case $(readlink -f "$c/device") in *"$(pci_bdf "$dev")"*) chip=$c ;; esac
done
[ -n "$chip" ] || result_fail "no gpiochip for $(pci_bdf "$dev")"
base=$(cat "$chip/base") ngpio=$(cat "$chip/ngpio")
echo "$chip label $(cat "$chip/label") base $base ngpio $ngpio"
check_dec "ngpio" "$ngpio" 32

step "input lines 16-31"
vals=
# sysfs names an exported line by its name when the chip gives one (6.1: IIN0..IIN15).
for i in $(seq 16 31); do
	n=$((base + i))
	echo "$n" > /sys/class/gpio/export 2> /dev/null || true
	g=/sys/class/gpio/gpio$n
	[ -d "$g" ] || g=$(ls -d /sys/class/gpio/*IN$((i - 16)) 2> /dev/null | head -1)
	v=$(cat "$g/value" 2> /dev/null) || v=E
	vals="$vals$v"
	echo "$n" > /sys/class/gpio/unexport 2> /dev/null || true
done
echo "inputs 16-31: $vals"
check_str "input lines" "$vals" 0000000000000000

step "the sample's read counter at BAR2 +0 (an I/O BAR: /dev/port)"
echo "$(pci_bdf "$dev")" > "/sys/bus/pci/drivers/$drv/unbind" || fail "unbind failed"
echo 1 > "$dev/enable" || true
a=$(($(bar_start "$dev" 2)))
[ -c /dev/port ] || result_fail "no /dev/port in this kernel"
r=
for k in 1 2 3 4 5 6; do
	r="$r $(dd if=/dev/port bs=1 skip="$a" count=1 2> /dev/null | od -An -tu1 | tr -d ' ')"
done
echo "BAR2+0 reads:$r"
set -- $r
d=$(($6 - $1))
check "six reads step by 1 or 2 ($1 -> $6)" eval '[ "$d" -ge 1 ] && [ "$d" -le 2 ]'
echo "$(pci_bdf "$dev")" > "/sys/bus/pci/drivers/$drv/bind" || fail "bind again failed"
check_str "driver again" "$(pci_driver "$dev")" "$drv"
result_pass
