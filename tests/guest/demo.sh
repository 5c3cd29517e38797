#!/bin/bash
# make demo: thunderpass serves the model RTX 5090 (GB202); an arm64 Linux guest
# under stock QEMU 11 (TCG) sees it through -device vfio-user-pci, and we print
# what thunderpass doctor says of the host side, what the guest saw (guest/tp-check.sh
# and the test's reads), BOOT_0 decoded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
arch=${TP_DEMO_ARCH:-aarch64}
log=$top/build/guest-logs/demo-$arch.log

echo "== thunderpass demo: model GB202 (RTX 5090) -> $arch guest under QEMU 11"
echo "== QEMU options (thunderpass qemu-args --socket SOCK --arch $arch):"
"$top/build/thunderpass" qemu-args --socket "/run/user/$(id -u)/thunderpass.sock" --arch "$arch" | sed 's/^/   /'
# The host side first, as a user would check it (docs/doctor.md): what each stage saw
# (the advice lines are left out: every stage is ok here).
echo "== thunderpass doctor --qemu qemu-system-$arch (the test bed's):"
"$top/build/thunderpass" doctor --qemu "${TP_TESTBED:-$top/.cache/testbed}/bin/qemu-system-$arch" |
	awk '/^[a-z-]+ +(OK|WARN|FAIL|SKIP) /{p=1} /^ +(advice|not checked):/{p=0} /^summary:/{p=1} p' |
	sed 's/^/   /' || true
echo "== booting the guest ..."
"$here/run.sh" --arch "$arch" --test "$here/t-model.sh" --log "$log" --file "$top/guest/tp-check.sh"
echo "== inside the guest, guest/tp-check.sh said:"
grep -a '^tp-check:' "$log" | sed 's/^tp-check: */   /'
boot0=$(sed -n 's/.*PMC_BOOT_0 (BAR0+0x0) = \(0x[0-9a-f]*\).*/\1/p' "$log" | head -1)
boot42=$(sed -n 's/.*PMC_BOOT_42 (BAR0+0xa00) = \(0x[0-9a-f]*\).*/\1/p' "$log" | head -1)
echo "== BOOT_0 $boot0 and BOOT_42 $boot42, read by the guest through the trap path, decoded:"
"$top/build/thunderpass" identify --device 2b85 "$boot0" "$boot42" | sed 's/^/   /'
