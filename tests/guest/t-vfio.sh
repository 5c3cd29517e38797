# Guest side of the vfio backend test (tests/guest/vfio.sh). This guest is the HOST
# of the test: an x86_64 q35 machine with a virtual Intel IOMMU and a QEMU device.
# Here the device is bound to vfio-pci, `thunderpass serve --backend vfio` serves it
# through the kernel's real VFIO, and a vfio-user client (tests/vfio/) maps its own
# memory for DMA and drives the device through the server (docs/vfio.md).
#
# Kernel command line tp.case=
#   edu       edu (1234:11e8) behind a root port, tp-vfio-edu; reset with
#             VFIO_DEVICE_RESET (a bus reset of its own)
#   edu-pair  two edu functions in one slot and one IOMMU group: both bound, the first
#             served; reset with a hot reset of the bus (VFIO_DEVICE_PCI_HOT_RESET)
#   nvme      QEMU's NVMe controller (1b36:0010), tp-vfio-nvme: MSI-X; reset by FLR
# Kernel command line tp.api=
#   group     (Debian's kernel: VFIO has no cdev) the backend uses the group API
#   iommufd   (the test bed's kernel, tests/guest/kernel.sh) the backend's default opens
#             the iommufd device cdev; the edu case then serves it once more with
#             iommufd=off, the group API of the same kernel
#
# /bin holds thunderpass, the client and the shared libraries they need (the host's
# bookworm glibc is the guest's), with the dynamic loader linked into /lib64.
set -u
case_=$(cmdline_arg case edu)
api=$(cmdline_arg api group)
case $case_ in
edu | edu-pair) id=1234:11e8 client=tp-vfio-edu irq=msi ;;
nvme) id=1b36:0010 client=tp-vfio-nvme irq=msix ;;
*) result_fail "unknown tp.case=$case_" ;;
esac
echo "=== vfio backend test: $case_ ($id, $client), $api API"

dmar_faults() { dmesg | grep -ci "DMAR.*fault" || true; }

step "libraries"
mkdir -p /lib64 /run
ln -sf /bin/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
export LD_LIBRARY_PATH=/bin
thunderpass --version || result_fail "thunderpass does not run in the guest (libraries?)"

step "find $id"
dev=$(pci_find "$id") || result_fail "no $id on the guest's PCI bus"
bdf=$(pci_bdf "$dev")
[ -e "$dev/iommu_group" ] || result_fail "$bdf has no IOMMU group (intel-iommu, intel_iommu=on?)"
group=$(basename "$(readlink "$dev/iommu_group")")
echo "$id at $bdf, IOMMU group $group, driver $(pci_driver "$dev")"
echo "group $group: $(ls "/sys/kernel/iommu_groups/$group/devices" | tr '\n' ' ')"

step "list before binding"
thunderpass list > /tmp/list0 || fail "thunderpass list failed"
sed 's/^/list| /' /tmp/list0
check "list: $bdf not passable yet (no driver)" grep -q "^$bdf .* no  *no driver" /tmp/list0

step "bind $id to vfio-pci"
[ -d /sys/bus/pci/drivers/vfio-pci ] || result_fail "no vfio-pci driver (modules?)"
echo "${id%%:*} ${id##*:}" > /sys/bus/pci/drivers/vfio-pci/new_id
n=50
while [ "$(pci_driver "$dev")" != vfio-pci ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
check_str "$bdf driver" "$(pci_driver "$dev")" vfio-pci
check "/dev/vfio/$group is a character device" test -c "/dev/vfio/$group"
cdev=
if [ "$api" = iommufd ]; then
	cdev=$(ls "$dev/vfio-dev" 2> /dev/null | head -n 1)
	check "sysfs names the vfio cdev of $bdf ($cdev)" test -n "$cdev"
	check "/dev/vfio/devices/$cdev is a character device" test -c "/dev/vfio/devices/$cdev"
	check "/dev/iommu is a character device" test -c /dev/iommu
else
	# (Linux 6.1 names a vfio-dev device in sysfs too, with no cdev behind it.)
	check "no vfio device cdevs on this kernel" test ! -e /dev/vfio/devices
fi

step "list after binding"
thunderpass list > /tmp/list1 || fail "thunderpass list failed"
grep "^$bdf " /tmp/list1 | sed 's/^/list| /'
check "list: $bdf can be passed" grep -q "^$bdf .* yes  *ready" /tmp/list1
if [ -n "$cdev" ]; then
	check "list: through the iommufd cdev" grep -q "^$bdf .* yes  *ready: .*(iommufd, /dev/vfio/devices/$cdev)" /tmp/list1
else
	check "list: no iommufd" sh -c "! grep -q '^$bdf .*iommufd' /tmp/list1"
fi
if [ "$case_" = edu-pair ]; then
	dev2=$(pci_find "$id" 2) || result_fail "no second edu function (edu-pair)"
	bdf2=$(pci_bdf "$dev2")
	grep "^$bdf2 " /tmp/list1 | sed 's/^/list| /'
	check_str "second edu in the same IOMMU group" "$(basename "$(readlink "$dev2/iommu_group")")" "$group"
	check "list: the second edu can be passed too" grep -q "^$bdf2 .* yes  *ready" /tmp/list1
fi

# serve_bg MEMLOCK-KB OPTION USER (each may be ""): `thunderpass serve` of $bdf in
# the background (spid) with that locked-memory limit, backend option and --user,
# its socket in sock_dir USER; ends the test if no socket appears.
serve_bg() {
	sock_dir "$3"
	([ -z "$1" ] || ulimit -l "$1"
	exec thunderpass serve --backend vfio -o "device=$bdf" ${2:+-o "$2"} ${3:+--user "$3"} \
		--socket "$sock" --log-level info) > /tmp/server.log 2>&1 &
	spid=$!
	n=100
	while [ ! -S "$sock" ] && kill -0 "$spid" 2> /dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	if [ ! -S "$sock" ]; then
		sed 's/^/server| /' /tmp/server.log
		result_fail "the server did not create $sock"
	fi
}

# serve_and_drive API [BACKEND-OPTION [USER]]: serve $bdf (as USER after opening it,
# with --user), run the client through the server, stop the server and check its log.
serve_and_drive() {
	label=$1 opt=${2:-} user=${3:-}
	step "serve ($label${user:+ as $user})"
	serve_bg "" "$opt" "$user"

	step "client ($label)"
	faults0=$(dmar_faults)
	t0=$(uptime_s)
	crc=0
	"$client" "$sock" > /tmp/client.log 2>&1 || crc=$?
	t1=$(uptime_s)
	sed 's/^/client| /' /tmp/client.log
	echo "client ran from ${t0}s to ${t1}s"
	check_dec "$client exit status" "$crc" 0
	check "$client: PASS" grep -q "^$client: PASS" /tmp/client.log

	step "stop the server ($label)"
	kill -TERM "$spid"
	src=0
	wait "$spid" || src=$?
	sed 's/^/server| /' /tmp/server.log
	check_dec "server exit status after SIGTERM" "$src" 0
	check "server removed its socket" test ! -e "$sock"
	check "server: vfio backend opened $bdf" grep -q "$bdf in IOMMU group $group" /tmp/server.log
	if grep -q "no seccomp filter in this build" /tmp/server.log; then
		echo "server: a sanitizer build, no seccomp filter"
	else
		check "server: under its seccomp filter" grep -q "seccomp filter installed" /tmp/server.log
	fi
	check "server: no sanitizer report" sh -c "! grep -q -E 'ERROR: AddressSanitizer|runtime error:' /tmp/server.log"
	check "server: BAR0 offered for mapping" grep -q "BAR0: .*, mapped \[" /tmp/server.log
	# Interrupts went from the kernel straight to the client's eventfds: the core relayed none.
	check "server: no interrupt relayed through the server" \
		grep -q "session stats .*irqs_msix=0 irqs_msi=0 irqs_intx=0 " /tmp/server.log
	check "server: the session ended with a reset" grep -q "session stats .*resets=[1-9]" /tmp/server.log
	check "server: no reset failed" sh -c "! grep -q -E '(warn|error): .*(reset|RESET)' /tmp/server.log"
	case $case_ in
	edu)
		check "server: reset by VFIO_DEVICE_RESET" grep -q "reset: function reset" /tmp/server.log
		# The DMA from unmapped memory was stopped by the (virtual) IOMMU; the guest kernel saw it.
		dmesg | grep -i "DMAR.*fault" | tail -n 2 | sed 's/^/dmesg| /'
		check "the IOMMU reported the blocked DMA (DMAR fault)" test "$(dmar_faults)" -gt "$faults0"
		;;
	edu-pair)
		check "server: reset by a hot reset of the bus" grep -q "reset: hot reset of the bus" /tmp/server.log
		;;
	nvme)
		check "server: reset by VFIO_DEVICE_RESET" grep -q "reset: function reset" /tmp/server.log
		check "server: MSI-X table and PBA trapped" grep -q "MSI-X: .* (trapped" /tmp/server.log
		;;
	esac

	if [ -n "$user" ]; then
		check "server: dropped to $user once the device was open" \
			grep -q "running as uid $(id -u "$user") " /tmp/server.log
	fi
	case $label in
	iommufd)
		check "server: opened through the iommufd cdev" \
			grep -q "iommufd: /dev/vfio/devices/$cdev bound as devid" /tmp/server.log
		check "server: DMA mapped in an IOAS" grep -q "IOMMU: identity .* in the IOAS" /tmp/server.log
		;;
	group)
		check "server: opened through the group API" grep -q "type1v2 container" /tmp/server.log
		check "server: DMA mapped in the container" \
			grep -q "IOMMU: identity .* in the container" /tmp/server.log
		;;
	esac
}

# sock_dir [USER]: $sock in a directory of USER's (the server removes its socket as
# that user), or root's.
sock_dir() {
	mkdir -p -m 700 "/run/tp${1:+-$1}"
	[ -z "$1" ] || chown "$1:$1" "/run/tp-$1"
	sock=/run/tp${1:+-$1}/dev.sock
}

# no_memlock API OPTION: the server as an unprivileged user with no locked memory
# allowed: the kernel refuses to pin the client's memory (both ways in account it
# to the user once root's CAP_IPC_LOCK is gone), the client's DMA_MAP fails, the
# log says which limit to raise, and the server goes on serving.
no_memlock() {
	step "serve ($1 as tp, ulimit -l 0)"
	serve_bg 0 "$2" tp
	crc=0
	"$client" "$sock" > /tmp/client.log 2>&1 || crc=$?
	grep -i "dma_map\|FAIL" /tmp/client.log | head -n 3 | sed 's/^/client| /'
	check "$1, no locked memory: the client's DMA_MAP fails" test "$crc" -ne 0
	check "$1, no locked memory: the server is still serving" kill -0 "$spid"
	kill -TERM "$spid"
	src=0
	wait "$spid" || src=$?
	grep "DMA map\|running as" /tmp/server.log | head -n 3 | sed 's/^/server| /'
	check_dec "$1, no locked memory: server exit status after SIGTERM" "$src" 0
	check "$1, no locked memory: the log says which limit to raise" \
		grep -q "DMA map .*Cannot allocate memory (pinning guest memory: raise the locked-memory limit" /tmp/server.log
}

if [ "$case_" = edu ]; then
	# An unprivileged user for --user (the server opens the device as root first).
	echo "tp:x:1000:1000:tp:/tmp:/bin/sh" >> /etc/passwd
	echo "tp:x:1000:" >> /etc/group
fi
if [ "$api" = iommufd ]; then
	serve_and_drive iommufd
	if [ "$case_" = edu ]; then
		# The same kernel's group API, chosen by the option; then both as a user.
		serve_and_drive group iommufd=off
		serve_and_drive iommufd iommufd=on tp
		serve_and_drive group iommufd=off tp
		no_memlock iommufd iommufd=on
		no_memlock group iommufd=off
	fi
else
	# iommufd=on where the kernel has no cdev: refused, saying what is missing.
	step "iommufd=on on a kernel without the cdev"
	rc=0
	thunderpass serve --backend vfio -o "device=$bdf" -o iommufd=on --socket /tmp/none.sock \
		> /tmp/on.log 2>&1 || rc=$?
	sed 's/^/server| /' /tmp/on.log
	check_dec "iommufd=on without a cdev: exit status" "$rc" 1
	check "iommufd=on without a cdev: says why" grep -q "iommufd=on: the kernel offers no vfio device cdev for it" /tmp/on.log
	serve_and_drive group
fi

result_pass
