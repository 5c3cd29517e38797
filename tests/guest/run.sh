#!/bin/bash
# Run one guest test: thunderpass serves the model GPU on a UNIX socket, a Linux guest
# under the testbed's QEMU (TCG) sees it through -device vfio-user-pci and runs a
# guest-side test script (tests/guest/t-*.sh on top of tests/guest/lib.sh).
#
#   run.sh --test tests/guest/t-NAME.sh [options]
#
#   --arch x86_64|aarch64   guest architecture (default x86_64)
#   --test FILE             guest-side test script (required)
#   --timeout SECONDS       wall-clock bound for the guest (default 120): a guest that
#                           has not printed "=== POWEROFF" by then fails and is killed
#   --server-arg ARG        one more argument for `thunderpass serve` (repeatable)
#   --server PATH           server binary (default $TP_SERVER or build/thunderpass)
#   --device-prop JSON      extra members for the vfio-user-pci object, e.g.
#                           '"x-msg-timeout":1000' (repeatable)
#   --no-server             no server and no vfio-user device
#   --no-device             start (and stop) the server, but give QEMU no vfio-user
#                           device (tests of the runner and of server start-up)
#   --qemu-device ARGS      no server; ARGS (split on blanks) are added to QEMU instead,
#                           e.g. "-device edu,bus=rp0" (repeatable)
#   --qemu-arg ARG          one more QEMU argument, in every mode (repeatable)
#   --append ARGS           more kernel command line (e.g. tp.iters=1000 for a test)
#   --kernel FILE           the guest kernel (default the testbed's Debian kernel for
#                           --arch); e.g. the test bed's own iommufd kernel
#                           (tests/guest/kernel.sh), which has no modules
#   --modules "a b"         kernel modules for /init to load (with their dependencies)
#   --modules-late "a b"    kernel modules copied (with their dependencies) but not
#                           loaded: the test loads them (modprobe), e.g. after pvdma
#   --file FILE             extra file for the guest's /bin (repeatable)
#   --smp N                 guest CPUs (default 1)
#   --cpu MODEL             QEMU -cpu (default max; aarch64 max,pauth=off)
#   --host-check CMD        run CMD (sh -c) after the guest and the server have ended,
#                           with TP_SERVER_LOG, TP_GUEST_LOG, TP_TMP, TP_ARCH and
#                           TP_SOCKET exported (TP_SERVER_LOG is /dev/null without a server);
#                           its failure fails the test (repeatable)
#   --pvdma                 also serve the pvdma companion (serve --pvdma-socket; QEMU
#                           gets it as function 1 of the device's slot, from
#                           `thunderpass qemu-args --pvdma-socket`); pass its options and
#                           --iommu dart with --server-arg. TP_PVDMA_SOCKET is exported
#                           to host checks
#   --during CMD            run CMD (sh -c) while the guest runs, from QEMU's start, with
#                           TP_CONSOLE_LOG (the live console), TP_SOCKET, TP_SERVER (the
#                           binary), TP_SERVER_PID, TP_TMP and TP_ARCH exported; it is
#                           waited for (at most 15 s) when the guest has ended, its output
#                           is shown, and its failure fails the test (repeatable)
#   --log FILE              where the guest console log goes
#                           (default build/guest-logs/NAME-ARCH.log)
#   --keep DIR              copy the run's files (logs, initramfs) into DIR
#   --quiet                 do not echo the guest's test output
#
# Exit 0 only if the guest printed exactly one RESULT line, "RESULT: PASS", powered
# off in time, and the server (if any) exited 0 on SIGTERM and removed its socket.
# Environment: TP_TESTBED (default .cache/testbed), TP_SOCKET_WAIT (seconds, 10),
# TP_SERVER_STOP_WAIT (seconds, 10).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
TB=${TP_TESTBED:-$top/.cache/testbed}

die() { echo "run.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

arch=x86_64 test='' timeout=120 keep='' log='' quiet='' smp=1 append='' modules='' cpu='' no_device=''
modules_late='' kernel_arg=''
server=${TP_SERVER:-$top/build/thunderpass}
mode=server
pvdma=''
server_args=() qemu_extra=() qemu_dev=() device_props=() files=() host_checks=()
durings=() during_pids=() # --during (issue 9: stats while the guest runs)
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=$2; shift ;;
	--test) test=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--server-arg) server_args+=("$2"); shift ;;
	--server) server=$2; shift ;;
	--device-prop) device_props+=("$2"); shift ;;
	--no-server) mode=none ;;
	--no-device) no_device=1 ;;
	--qemu-device) mode=none; read -r -a w <<< "$2"; qemu_dev+=("${w[@]}"); shift ;;
	--qemu-arg) qemu_extra+=("$2"); shift ;;
	--append) append="$append $2"; shift ;;
	--kernel) kernel_arg=$2; shift ;;
	--modules) modules="$modules $2"; shift ;;
	--modules-late) modules_late="$modules_late $2"; shift ;;
	--file) files+=("$2"); shift ;;
	--smp) smp=$2; shift ;;
	--cpu) cpu=$2; shift ;;
	--host-check) host_checks+=("$2"); shift ;;
	--during) durings+=("$2"); shift ;;
	--log) log=$2; shift ;;
	--pvdma) pvdma=1 ;; # (pvdma companion: see "---- pvdma" below)
	--keep) keep=$2; shift ;;
	--quiet) quiet=1 ;;
	-h | --help) usage ;;
	*) die "unknown option '$1' (--help)" ;;
	esac
	shift
done
[ -n "$test" ] || die "--test is required (--help)"
[ -f "$test" ] || die "no test script '$test'"
case $timeout in '' | *[!0-9]*) die "--timeout wants whole seconds" ;; esac
name=$(basename "$test" .sh)
name=${name#t-}

# No default NIC or VGA: the default NIC's iPXE ROM alone costs SeaBIOS seconds under
# TCG. aarch64: pointer authentication is slow to emulate, and no test needs it.
case $arch in
x86_64 | amd64)
	arch=x86_64 karch=amd64 console=ttyS0
	machine=(-M q35 -cpu "${cpu:-max}" -vga none)
	;;
aarch64 | arm64)
	arch=aarch64 karch=arm64 console=ttyAMA0
	machine=(-M virt -cpu "${cpu:-max,pauth=off}")
	;;
*) die "unknown arch '$arch' (x86_64 or aarch64)" ;;
esac
qemu=$TB/bin/qemu-system-$arch
[ -x "$qemu" ] && [ -f "$TB/k/$karch/KVER" ] || die "no testbed in $TB: run tests/guest/testbed.sh"
kver=$(cat "$TB/k/$karch/KVER")
kernel=$TB/k/$karch/boot/vmlinuz-$kver
# x86_64: boot the uncompressed vmlinux through its PVH entry point (QEMU loads the
# ELF directly): decompressing Debian's xz bzImage under TCG takes about 7 s. The
# vmlinux is cut out of the bzImage once and kept next to it in the testbed.
if [ $arch = x86_64 ]; then
	vmlinux=$TB/k/amd64/boot/vmlinux-$kver
	if [ ! -s "$vmlinux" ] && command -v xz > /dev/null; then
		xzoff=$(LC_ALL=C grep -a -b -o -P '\xfd7zXZ\x00' "$kernel" | head -1 | cut -d: -f1) || true
		if [ -n "$xzoff" ]; then
			{ tail -c +$((xzoff + 1)) "$kernel" || true; } | xz -dc --single-stream > "$vmlinux.$$" 2> /dev/null &&
				mv "$vmlinux.$$" "$vmlinux" || rm -f "$vmlinux.$$"
		fi
	fi
	[ -s "$vmlinux" ] && kernel=$vmlinux
fi
if [ -n "$kernel_arg" ]; then
	[ -s "$kernel_arg" ] || die "no kernel '$kernel_arg'"
	kernel=$kernel_arg
fi
if [ $mode = server ]; then
	[ -x "$server" ] || die "no server binary '$server' (meson setup build && meson compile -C build)"
fi
[ -n "$log" ] || log=$top/build/guest-logs/$name-$arch.log

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tp-guest.XXXXXX")
sock=$tmp/tp.sock
# ---- pvdma: the companion's socket, its server option (qemu-args below)
pvdma_sock=$tmp/pvdma.sock
pvdma_server=() pvdma_qemu=()
if [ -n "$pvdma" ]; then
	[ $mode = server ] && [ -z "$no_device" ] || die "--pvdma needs the server and its device"
	[ ${#device_props[@]} -eq 0 ] || die "--pvdma and --device-prop do not go together"
	pvdma_server=(--pvdma-socket "$pvdma_sock")
	pvdma_qemu=(--pvdma-socket "$pvdma_sock")
fi
# ---- (end pvdma)
qpid='' spid=''

# Never leave anything running: kill what is still alive, keep files if asked, clean.
stop_pid() { # pid seconds: TERM, wait up to seconds, then KILL
	local pid=$1 n=$(($2 * 10))
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	[ -n "$qpid" ] && stop_pid "$qpid" 2
	for p in ${during_pids[@]+"${during_pids[@]}"}; do stop_pid "$p" 1; done
	[ -n "$spid" ] && stop_pid "$spid" 2
	if [ -n "$keep" ]; then
		mkdir -p "$keep"
		cp -r "$tmp"/. "$keep"/ 2>/dev/null || true
		rm -f "$keep/tp.sock"
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
t_start=$(now_ms)

MODULES=$modules MODULES_LATE=$modules_late "$here/mkinitrd.sh" "$arch" "$tmp/initrd.cpio.gz" "$test" ${files[@]+"${files[@]}"}

# ---- the server
dev_args=()
# Guest RAM shared with the server (qemu-args prints its own when it is used).
mem_args=(-m 512 -object memory-backend-memfd,id=mem,size=512M,share=on -machine memory-backend=mem)
port_args=(-device pcie-root-port,id=rp0,chassis=1,slot=1)
if [ $mode = server ]; then
	"$server" serve --backend model --socket "$sock" --log-level info \
		${server_args[@]+"${server_args[@]}"} ${pvdma_server[@]+"${pvdma_server[@]}"} \
		> "$tmp/server.log" 2>&1 < /dev/null &
	spid=$!
	n=$((${TP_SOCKET_WAIT:-10} * 10))
	while [ ! -S "$sock" ] || { [ -n "$pvdma" ] && [ ! -S "$pvdma_sock" ]; }; do
		if ! kill -0 "$spid" 2>/dev/null; then
			src=0; wait "$spid" || src=$?; spid=
			sed 's/^/server| /' "$tmp/server.log" >&2
			die "server exited (status $src) before creating $sock"
		fi
		[ $n -gt 0 ] || { sed 's/^/server| /' "$tmp/server.log" >&2; die "no socket $sock after ${TP_SOCKET_WAIT:-10} s"; }
		sleep 0.1
		n=$((n - 1))
	done
	props=
	for p in ${device_props[@]+"${device_props[@]}"}; do props="$props,$p"; done
	if [ -n "$no_device" ]; then
		:
	elif [ -z "$props" ]; then
		# What users are told to use, verbatim: `thunderpass qemu-args`.
		mapfile -t dev_args < <("$server" qemu-args --socket "$sock" --arch "$arch" \
			--mem 512M --format lines ${pvdma_qemu[@]+"${pvdma_qemu[@]}"})
		[ ${#dev_args[@]} -gt 0 ] || die "thunderpass qemu-args printed nothing"
		mem_args=() port_args=()
	else
		dev_args=(-device "{\"driver\":\"vfio-user-pci\",\"id\":\"tp0\",\"bus\":\"rp0\",\"socket\":{\"type\":\"unix\",\"path\":\"$sock\"}$props}")
	fi
fi

# ---- the guest
t_qemu=$(now_ms)
"$qemu" -accel tcg "${machine[@]}" -smp "$smp" ${mem_args[@]+"${mem_args[@]}"} \
	-nographic -no-reboot -nic none \
	-kernel "$kernel" -initrd "$tmp/initrd.cpio.gz" \
	-append "console=$console panic=-1 quiet$append" \
	${port_args[@]+"${port_args[@]}"} \
	${dev_args[@]+"${dev_args[@]}"} ${qemu_dev[@]+"${qemu_dev[@]}"} ${qemu_extra[@]+"${qemu_extra[@]}"} \
	> "$tmp/console.log" 2>&1 < /dev/null &
qpid=$!
# ---- --during: commands that watch the running guest (e.g. tests/guest/during-stats.py)
i=0
for c in ${durings[@]+"${durings[@]}"}; do
	TP_CONSOLE_LOG=$tmp/console.log TP_SOCKET=$sock TP_SERVER=$server TP_SERVER_PID=$spid \
		TP_TMP=$tmp TP_ARCH=$arch sh -c "$c" > "$tmp/during-$i.log" 2>&1 < /dev/null &
	during_pids+=($!)
	i=$((i + 1))
done
# ---- (end --during)
deadline=$((t_qemu + timeout * 1000))
timed_out=
while kill -0 "$qpid" 2>/dev/null; do
	if [ "$(now_ms)" -ge $deadline ]; then
		timed_out=1
		stop_pid "$qpid" 2
		break
	fi
	sleep 0.1
done
qrc=0
wait "$qpid" 2>/dev/null || qrc=$?
qpid=
t_end=$(now_ms)
# ---- --during: they end with the guest (before its console log goes)
during_problems=()
i=0
for p in ${during_pids[@]+"${during_pids[@]}"}; do
	n=150
	while kill -0 "$p" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	kill -0 "$p" 2>/dev/null && during_problems+=("--during command still running 15 s after the guest (killed): ${durings[$i]}")
	stop_pid "$p" 1
	drc=0
	wait "$p" 2>/dev/null || drc=$?
	[ $drc -eq 0 ] || during_problems+=("--during command failed (status $drc): ${durings[$i]}")
	{ [ -z "$quiet" ] || [ $drc -ne 0 ]; } && sed 's/^/  during| /' "$tmp/during-$i.log"
	i=$((i + 1))
done
during_pids=()
# ---- (end --during)
tr -d '\r' < "$tmp/console.log" > "$tmp/guest.log"
rm -f "$tmp/console.log"
# (the log folder may have gone meanwhile: build/ can be wiped by a fresh meson setup)
{ mkdir -p "$(dirname "$log")" && cp "$tmp/guest.log" "$log"; } || echo "run.sh: could not write $log" >&2

# ---- the server's shutdown
problems=(${during_problems[@]+"${during_problems[@]}"})
if [ -n "$spid" ]; then
	if kill -0 "$spid" 2>/dev/null; then
		kill -TERM "$spid"
		n=$((${TP_SERVER_STOP_WAIT:-10} * 10))
		while kill -0 "$spid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
		if kill -0 "$spid" 2>/dev/null; then
			problems+=("server still running ${TP_SERVER_STOP_WAIT:-10} s after SIGTERM (killed)")
			kill -KILL "$spid" 2>/dev/null || true
		fi
	else
		problems+=("server exited before SIGTERM")
	fi
	src=0
	wait "$spid" 2>/dev/null || src=$?
	spid=
	[ $src -eq 0 ] || problems+=("server exit status $src")
	[ ! -e "$sock" ] || problems+=("server left its socket behind")
	[ -z "$pvdma" ] || [ ! -e "$pvdma_sock" ] || problems+=("server left the pvdma socket behind")
fi

# ---- the verdict
g=$tmp/guest.log
[ -n "$quiet" ] || sed -n '/=== PCI devices/,$p' "$g" | sed 's/^/  | /'
[ -n "$timed_out" ] && problems+=("guest did not power off within $timeout s (killed)")
grep -q '=== POWEROFF' "$g" || [ -n "$timed_out" ] || problems+=("guest ended without powering off (QEMU status $qrc)")
grep -a -o 'RESULT: .*' "$g" > "$tmp/result" || true
nres=$(wc -l < "$tmp/result")
result=$(head -1 "$tmp/result")
if [ "$nres" -eq 0 ]; then
	problems+=("guest printed no RESULT line")
elif [ "$nres" -gt 1 ]; then
	problems+=("guest printed $nres RESULT lines")
elif [ "$result" != "RESULT: PASS" ]; then
	problems+=("guest: $result")
fi
[ -n "$timed_out" ] || [ $qrc -eq 0 ] || problems+=("QEMU exit status $qrc")
export TP_SERVER_LOG=$tmp/server.log TP_GUEST_LOG=$tmp/guest.log TP_TMP=$tmp TP_ARCH=$arch TP_SOCKET=$sock
[ -z "$pvdma" ] || export TP_PVDMA_SOCKET=$pvdma_sock
[ $mode = server ] || TP_SERVER_LOG=/dev/null
for c in ${host_checks[@]+"${host_checks[@]}"}; do
	hrc=0
	sh -c "$c" || hrc=$?
	[ $hrc -eq 0 ] || problems+=("host check failed (status $hrc): $c")
done

boot=$(sed -n 's/.*=== INIT at \([0-9.]*\)s.*/\1/p' "$g" | head -1)
off=$(sed -n 's/.*=== POWEROFF at \([0-9.]*\)s.*/\1/p' "$g" | head -1)
[ -z "$quiet" ] || cat "$tmp/result"
echo "TEST $name $arch: guest /init at ${boot:-?} s, poweroff at ${off:-?} s (guest clock); QEMU ran $(secs $((t_end - t_qemu))) s, all $(secs $((t_end - t_start))) s; log $log"
if [ ${#problems[@]} -gt 0 ]; then
	for p in "${problems[@]}"; do echo "TEST $name $arch: $p"; done
	if [ $mode = server ] && [ -s "$tmp/server.log" ]; then
		echo "TEST $name $arch: server log (last 20 lines):"
		tail -n 20 "$tmp/server.log" | sed 's/^/  server| /'
	fi
	if ! grep -q '=== PCI devices' "$g"; then
		echo "TEST $name $arch: guest console (last 20 lines):"
		tail -n 20 "$g" | sed 's/^/  guest| /'
	fi
	echo "TEST $name $arch: FAIL ${problems[0]}"
	exit 1
fi
echo "TEST $name $arch: PASS"
