#!/bin/bash
# The vfio backend's options, refused before anything is opened: exit 2 and a message
# that says what is accepted (docs/vfio.md). Needs no device.
#   test_opts.sh THUNDERPASS-BINARY
set -euo pipefail
tp=${1:?usage: test_opts.sh THUNDERPASS-BINARY}
d=$(mktemp -d "${TMPDIR:-/tmp}/tp-vopts.XXXXXX")
chmod 700 "$d"
trap 'rm -rf "$d"' EXIT
fails=0
# want RC MESSAGE-SUBSTRING OPTION...
want() {
	local rc=0 out want_rc=$1 msg=$2
	shift 2
	out=$("$tp" serve --backend vfio "$@" --socket "$d/s" 2>&1) || rc=$?
	if [ "$rc" -eq "$want_rc" ] && [[ $out == *"$msg"* ]]; then
		echo "ok: $* -> $rc, $msg"
	else
		echo "FAIL: $*: exit $rc (want $want_rc), output: $out"
		fails=$((fails + 1))
	fi
	[ ! -e "$d/s" ] || { echo "FAIL: $*: a socket was left"; fails=$((fails + 1)); rm -f "$d/s"; }
}
want 2 "iommufd=maybe: auto (the cdev where the kernel has it), on or off" \
	-o device=0000:01:00.0 -o iommufd=maybe
want 2 "iommufd=off: auto" -o device=0000:01:00.0 -o iommufd=on -o iommufd=off
want 2 "iommufd=: auto" -o device=0000:01:00.0 -o iommufd=
want 2 "unknown option 'bogus' (options: device, iommufd, name)" -o device=01:00.0 -o bogus=1
want 2 "device=BDF is required" -o iommufd=on
want 2 "device=01:20.0: expected one PCI address" -o device=01:20.0
# Good options, then no such device: the open fails (exit 1), whichever way in.
for api in auto on off; do
	want 1 "no PCI device 0000:7f:1f.7 on this host" -o device=7f:1f.7 -o iommufd=$api
done
[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all vfio option checks passed"
