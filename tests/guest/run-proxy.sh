#!/bin/bash
# One guest run against a reference vfio-user server (tests/guest/refservers.sh),
# through `thunderpass serve --backend proxy` or straight:
#
#   guest (QEMU 11, TCG) -> vfio-user-pci -> thunderpass proxy -> remote server
#
#   run-proxy.sh --remote nvme|gpio [options]
#
#   --arch x86_64|aarch64   guest architecture (default x86_64)
#   --remote nvme|gpio      QEMU's nvme model behind QEMU's x-vfio-user-server, or
#                           libvfio-user's samples/gpio-pci-idio-16
#   --mode io|kill|bench    the guest test's mode (nvme; default io). kill: the host
#                           kills the remote (SIGKILL) when the guest says so, mid-I/O
#   --direct                no thunderpass: the guest talks to the remote itself
#   --pvdma KO              nvme io: thunderpass with --iommu dart and the pvdma companion
#                           (function 1 of the nvme's slot); the guest loads KO (pvdma.ko,
#                           guest/build.sh ARCH guest/pvdma), then nvme. The proxy mirrors
#                           the DART's mappings into the remote's DMA map (dma=auto ->
#                           mirror); pvdma windows of 128 MiB by default (--proxy-opt
#                           pvdma-window=... to change): QEMU 10.2's server takes at
#                           most 16 DMA regions (docs/proxy.md)
#   --proxy-opt KEY=VALUE   one more -o for the proxy backend (repeatable)
#   --server PATH           thunderpass binary (default $TP_SERVER or build/thunderpass)
#   --timeout SECONDS       guest wall-clock bound (default 120)
#   --append ARGS           more kernel command line
#   --file FILE             extra file for the guest's /bin (repeatable)
#   --log FILE              the guest console log (default build/guest-logs/proxy-...)
#   --label NAME            names the test in the output (default remote-mode)
#
# Host-side checks: nvme io: the disk image holds the guest's marker and the guest's
# 64 MiB with the guest's md5; thunderpass raised MSI-X only, no DMA faults. kill:
# thunderpass outlives the remote, keeps serving, has no more fds or threads than
# before the guest came, and stops cleanly on SIGTERM. --pvdma: the session went
# through the dart model (iommu=dart, iommu_maps > 0), the proxy mirrored (dma=mirror,
# maps > 0, none refused, none live after the guest's rmmod pvdma), and every DMA
# region the remote registered (its own trace) lies in the DART aperture
# [0x10000000, 0x100000000). Always: thunderpass exits 0 on SIGTERM and removes its
# socket; nothing is left running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
TB=${TP_TESTBED:-$top/.cache/testbed}
R=$TB/ref/bin

die() { echo "run-proxy.sh: $*" >&2; exit 2; }
arch=x86_64 remote='' mode=io direct='' timeout=120 append='' log='' label='' pvdma_ko=''
server=${TP_SERVER:-$top/build/thunderpass}
popts=() files=()
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=$2; shift ;;
	--remote) remote=$2; shift ;;
	--mode) mode=$2; shift ;;
	--direct) direct=1 ;;
	--pvdma) pvdma_ko=$2; shift ;;
	--proxy-opt) popts+=(-o "$2"); shift ;;
	--server) server=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--append) append="$append $2"; shift ;;
	--file) files+=(--file "$2"); shift ;;
	--log) log=$2; shift ;;
	--label) label=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	*) die "unknown option '$1' (--help)" ;;
	esac
	shift
done
case $remote in nvme | gpio) ;; *) die "--remote nvme|gpio" ;; esac
[ -x "$R/vfu-server" ] && [ -x "$R/gpio-pci-idio-16" ] || die "no reference servers in $R: run tests/guest/refservers.sh"
[ -n "$direct" ] || [ -x "$server" ] || die "no server binary '$server'"
if [ -n "$pvdma_ko" ]; then
	[ -f "$pvdma_ko" ] || die "no pvdma module '$pvdma_ko' (guest/build.sh $arch guest/pvdma)"
	[ $remote = nvme ] && [ "$mode" = io ] && [ -z "$direct" ] || die "--pvdma: nvme, io mode, through thunderpass"
fi
[ -n "$label" ] || label=$remote-$mode
[ -n "$log" ] || log=$top/build/guest-logs/proxy-$label-$arch.log
name="proxy $label $arch"

t=$(mktemp -d "${TMPDIR:-/tmp}/tp-proxy.XXXXXX")
rsock=$t/remote.sock tsock=$t/tp.sock psock=$t/pvdma.sock
rpid='' tpid='' kpid=''
stop_pid() { # pid seconds
	local pid=$1 n=$(($2 * 10))
	kill -TERM "$pid" 2> /dev/null || return 0
	while kill -0 "$pid" 2> /dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	kill -KILL "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -z "$kpid" ] || stop_pid "$kpid" 1
	[ -z "$tpid" ] || stop_pid "$tpid" 2
	[ -z "$rpid" ] || stop_pid "$rpid" 2
	[ -z "${TP_KEEP:-}" ] || cp -r "$t"/. "$TP_KEEP"/ 2> /dev/null || true
	rm -rf "$t"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
wait_sock() { # path pid what
	local n=100
	while [ ! -S "$1" ]; do
		kill -0 "$2" 2> /dev/null || { sed 's/^/  | /' "$t/$3.log" >&2; die "$3 exited before creating $1"; }
		[ $n -gt 0 ] || die "no socket $1 from $3 after 10 s"
		sleep 0.1
		n=$((n - 1))
	done
}
problems=()
t0=$(now_ms)

# ---- the remote
nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
if [ $remote = nvme ]; then
	truncate -s 128M "$t/disk.img"
	printf 'TPHOST-%s' "$nonce" | dd of="$t/disk.img" conv=notrunc 2> /dev/null
	# --pvdma: the remote's own trace of its DMA map (QEMU's log trace backend, stderr).
	trace=()
	[ -z "$pvdma_ko" ] || trace=(-trace vfu_dma_register -trace vfu_dma_unregister)
	"$R/vfu-server" -accel qtest -machine x-remote,vfio-user=on,auto-shutdown=on -nodefaults \
		${trace[@]+"${trace[@]}"} \
		-display none -monitor none -drive "id=d0,if=none,file=$t/disk.img,format=raw" \
		-device nvme,id=nvme0,serial=tp0001,drive=d0 \
		-object "x-vfio-user-server,id=vfu,type=unix,path=$rsock,device=nvme0" \
		> "$t/remote.log" 2>&1 < /dev/null &
	modules=nvme id=1b36:0010 test=$here/t-proxy-nvme.sh
else
	"$R/gpio-pci-idio-16" "$rsock" > "$t/remote.log" 2>&1 < /dev/null &
	modules=gpio-pci-idio-16 id=494f:0dc8 test=$here/t-proxy-gpio.sh
fi
rpid=$!
test=${TP_TEST:-$test} # (debugging: another guest script)
wait_sock "$rsock" "$rpid" remote

# ---- thunderpass
fds() { ls "/proc/$1/fd" 2> /dev/null | wc -l; }
threads() { ls "/proc/$1/task" 2> /dev/null | wc -l; }
sock=$rsock
# --pvdma: the dart model and the companion; 128 MiB pvdma windows keep the DART's
# mappings (each one a DMA region of the remote) under the remote's 16, and kept
# for 10 ms after their last use (the default lazy bound, 64 MiB, is below one window).
# The debug log has a line per mirrored mapping (the host checks read them).
pv=() level=${TP_LOG_LEVEL:-info}
if [ -n "$pvdma_ko" ]; then
	pv=(--iommu dart --pvdma-socket "$psock" -o pvdma-window=128M -o pvdma-lazy-max=1G)
	level=${TP_LOG_LEVEL:-debug}
fi
if [ -z "$direct" ]; then
	"$server" serve --backend proxy -o "socket=$rsock" ${pv[@]+"${pv[@]}"} ${popts[@]+"${popts[@]}"} \
		--socket "$tsock" --log-level "$level" > "$t/tp.log" 2>&1 < /dev/null &
	tpid=$!
	wait_sock "$tsock" "$tpid" tp
	[ -z "$pvdma_ko" ] || wait_sock "$psock" "$tpid" tp
	sleep 0.2
	fd0=$(fds $tpid) th0=$(threads $tpid)
	sock=$tsock
fi

# ---- kill mode: the guest writes TPKILL-<nonce> at 4 MiB; then the remote dies. The
# guest learns of it when its I/O times out: 2 s instead of 30 (admin: 60).
if [ "$mode" = kill ]; then
	append="$append nvme_core.io_timeout=2 nvme_core.admin_timeout=2"
	(
		while ! dd if="$t/disk.img" bs=4096 skip=1024 count=1 2> /dev/null | grep -a -q "TPKILL-TPHOST-$nonce"; do
			sleep 0.05
		done
		kill -KILL "$rpid"
		echo "killed the remote at $(($(date +%s%N) / 1000000))" > "$t/killed"
	) &
	kpid=$!
fi

# ---- the guest
dev="-device {\"driver\":\"vfio-user-pci\",\"id\":\"tp0\",\"bus\":\"rp0\",\"socket\":{\"type\":\"unix\",\"path\":\"$sock\"}}"
load=(--modules "$modules")
if [ -n "$pvdma_ko" ]; then
	# The nvme as function 0 (multifunction), the companion as function 1 of its slot,
	# as `thunderpass qemu-args --pvdma-socket` places them; nvme is loaded by the
	# guest test after pvdma (which then owns the device's DMA ops from the start).
	dev="-device {\"driver\":\"vfio-user-pci\",\"id\":\"tp0\",\"bus\":\"rp0\",\"addr\":\"0.0\",\"multifunction\":true,\"socket\":{\"type\":\"unix\",\"path\":\"$sock\"}}"
	dev="$dev -device {\"driver\":\"vfio-user-pci\",\"id\":\"tp1\",\"bus\":\"rp0\",\"addr\":\"0.1\",\"socket\":{\"type\":\"unix\",\"path\":\"$psock\"}}"
	load=(--modules-late "$modules")
	files+=(--file "$pvdma_ko")
	append="$append tp.pvdma=1"
fi
t_guest=$(now_ms)
grc=0
"$here/run.sh" --arch "$arch" --test "$test" --quiet --qemu-device "$dev" "${load[@]}" \
	--timeout "$timeout" --log "$log" --append "tp.marker=TPHOST-$nonce tp.mode=$mode$append" \
	${files[@]+"${files[@]}"} > "$t/run.out" 2>&1 || grc=$?
t_end=$(now_ms)
[ $grc -eq 0 ] || problems+=("guest run failed: $(grep -a 'FAIL' "$t/run.out" | tail -1)")
[ -z "$kpid" ] || { kill "$kpid" 2> /dev/null || true; wait "$kpid" 2> /dev/null || true; kpid=; }

# ---- host-side checks
# --pvdma: the guest's DMA went through device addresses the DART chose, and the
# remote's DMA map held those (and only those) while it did.
pvdma_host_checks() {
	local st rs n bad
	st=$(grep -a 'session stats dma_maps' "$t/tp.log" | grep -v ' pvdma0: ' | tail -1)
	echo "$st" | grep -q ' iommu=dart ' || problems+=("the session did not run on the dart model")
	n=$(echo "$st" | sed -n 's/.*iommu_maps=\([0-9]*\).*/\1/p')
	[ "${n:-0}" -gt 0 ] || problems+=("no DART mapping made (iommu_maps=${n:-?})")
	rs=$(grep -a 'remote stats' "$t/tp.log" | tail -1)
	echo "$name: ${rs#*: }"
	echo "$rs" | grep -q ' dma=mirror ' || problems+=("the proxy did not mirror the DART's mappings")
	n=$(echo "$rs" | sed -n 's/.* maps=\([0-9]*\) .*/\1/p')
	[ "${n:-0}" -gt 0 ] || problems+=("no mapping mirrored to the remote (maps=${n:-?})")
	echo "$rs" | grep -q ' maps_refused=0 ' || problems+=("the remote refused mirrored maps")
	echo "$rs" | grep -q ' live=0 ' || problems+=("mirrored maps left at the remote after rmmod pvdma")
	grep -a 'pvdma0: ring disabled' "$t/tp.log" | tail -1 | sed "s/^/$name: /"
	# Each mirrored mapping: "mirror: device [DVA+LEN] -> guest [GPA+LEN] ...".
	grep -a 'mirror: device' "$t/tp.log" | sed 's/.*device \[\(0x[0-9a-f]*\)+\(0x[0-9a-f]*\)\] -> guest \[\(0x[0-9a-f]*\)+.*/\1 \2 \3/' > "$t/mirror"
	n=$(wc -l < "$t/mirror")
	bad=$(while read -r a l g; do
		[ $((a)) -ge $((0x10000000)) ] && [ $((a + l)) -le $((0x100000000)) ] || echo "$a+$l"
	done < "$t/mirror" | head -3)
	moved=$(while read -r a l g; do [ $((a)) -eq $((g)) ] || echo x; done < "$t/mirror" | wc -l)
	echo "$name: $n mappings mirrored, $moved of them at a device address other than the guest address"
	[ "$n" -gt 0 ] || problems+=("no 'mirror: device' line in the log")
	[ -z "$bad" ] || problems+=("mirrored device addresses outside the DART aperture: $bad")
	[ "$moved" -gt 0 ] || problems+=("every mirrored mapping sat at its guest address")
	# The remote's own view: "vfu: registering GPA 0x..., N bytes".
	n=$(grep -a -c 'vfu: registering GPA' "$t/remote.log" || true)
	bad=$(grep -a 'vfu: registering GPA' "$t/remote.log" | sed 's/.*GPA \(0x[0-9a-f]*\), \([0-9]*\) bytes.*/\1 \2/' |
		while read -r a l; do
			[ $((a)) -ge $((0x10000000)) ] && [ $((a + l)) -le $((0x100000000)) ] || echo "$a+$l"
		done | head -3)
	echo "$name: the remote registered $n DMA regions, unregistered $(grep -a -c 'vfu: unregistering GPA' "$t/remote.log" || true), at most $(awk '/vfu: registering GPA/ {n++; if (n > m) m = n} /vfu: unregistering GPA/ {n--} END {print m + 0}' "$t/remote.log") at once (its limit: 16)"
	[ "${n:-0}" -gt 0 ] || problems+=("the remote registered no DMA region")
	[ -z "$bad" ] || problems+=("the remote registered DMA regions outside the DART aperture: $bad")
}
g=$log
if [ $remote = nvme ] && [ "$mode" = io ]; then
	want=GUEST-MARKER-TPHOST-$nonce
	m=$(dd if="$t/disk.img" bs=4096 skip=2048 count=1 2> /dev/null | head -c ${#want})
	[ "$m" = "$want" ] || problems+=("disk image at 8 MiB holds '$m', not the guest's marker")
	want=$(grep -a -o 'GUEST-MD5 [0-9a-f]*' "$g" | cut -d' ' -f2)
	have=$(dd if="$t/disk.img" bs=1M skip=16 count=64 2> /dev/null | md5sum | cut -d' ' -f1)
	[ -n "$want" ] && [ "$want" = "$have" ] || problems+=("disk image md5 $have, guest wrote ${want:-?}")
fi
if [ -n "$tpid" ]; then
	if ! kill -0 "$tpid" 2> /dev/null; then
		problems+=("thunderpass died")
	else
		sleep 0.3 # the session's end (reset, reconnect attempt) after QEMU left
		fd1=$(fds $tpid) th1=$(threads $tpid)
		echo "$name: thunderpass fds $fd0 -> $fd1, threads $th0 -> $th1"
		[ "$fd1" -le "$fd0" ] || problems+=("thunderpass has $fd1 fds, $fd0 before the guest")
		[ "$th1" -le "$th0" ] || problems+=("thunderpass has $th1 threads, $th0 before the guest")
	fi
	if [ $remote = nvme ] && [ "$mode" != kill ]; then
		st=$(grep -a 'session stats dma_maps' "$t/tp.log" | grep -v ' pvdma0: ' | tail -1)
		echo "$name: ${st#*: }"
		x=$(echo "$st" | sed -n 's/.*irqs_msix=\([0-9]*\).*/\1/p')
		[ "$mode" != io ] || [ "${x:-0}" -gt 0 ] || problems+=("no MSI-X vector raised")
		echo "$st" | grep -q ' dma_faults=0 ' || problems+=("DMA faults")
	fi
	[ -z "$pvdma_ko" ] || pvdma_host_checks
	if [ $remote = gpio ]; then
		st=$(grep -a 'session stats region=2 ' "$t/tp.log" | tail -1)
		echo "$name: ${st#*: }"
		x=$(echo "$st" | sed -n 's/.*trapped_reads=\([0-9]*\).*/\1/p')
		[ "${x:-0}" -gt 0 ] || problems+=("no BAR2 read reached the proxy")
	fi
	if [ "$mode" = kill ]; then
		[ -f "$t/killed" ] || problems+=("the remote was never killed")
		grep -q 'is gone' "$t/tp.log" || problems+=("thunderpass did not notice the remote's death")
	fi
	kill -TERM "$tpid"
	n=100
	while kill -0 "$tpid" 2> /dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	src=0
	if kill -0 "$tpid" 2> /dev/null; then
		problems+=("thunderpass still running 10 s after SIGTERM")
		kill -KILL "$tpid"
	fi
	wait "$tpid" 2> /dev/null || src=$?
	tpid=
	[ $src -eq 0 ] || problems+=("thunderpass exit status $src")
	[ ! -e "$tsock" ] || problems+=("thunderpass left its socket behind")
fi
# The nvme remote ends itself when its client leaves (auto-shutdown); gpio is stopped.
if [ -n "$rpid" ]; then
	n=50
	while [ $remote = nvme ] && kill -0 "$rpid" 2> /dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	stop_pid "$rpid" 2
	rpid=
fi

grep -a '^TEST ' "$t/run.out" | grep -v ': PASS$' | sed "s/^TEST [^:]*:/$name: guest:/" | head -3
echo "$name: guest run $(secs $((t_end - t_guest))) s, all $(secs $(($(now_ms) - t0))) s; log $log"
if [ ${#problems[@]} -gt 0 ]; then
	for p in "${problems[@]}"; do echo "$name: $p"; done
	sed -n '/=== nvme\|=== gpio/,$p' "$g" 2> /dev/null | grep -v '^$' | tail -25 | sed 's/^/  guest| /'
	[ ! -s "$t/tp.log" ] || tail -n 15 "$t/tp.log" | sed 's/^/  tp| /'
	[ ! -s "$t/remote.log" ] || tail -n 5 "$t/remote.log" | sed 's/^/  remote| /'
	echo "TEST $name: FAIL ${problems[0]}"
	exit 1
fi
echo "TEST $name: PASS"
