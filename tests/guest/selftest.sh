#!/bin/bash
# Self-test of the guest test bed (run.sh, mkinitrd.sh, init, lib.sh) with no
# thunderpass at all: devices that QEMU emulates itself, and a stand-in server.
#
#   selftest.sh [--arch x86_64|aarch64]... [--quick]
#
#   1. t-selftest.sh against edu (with a small option ROM), ivshmem-plain and e1000e,
#      on each arch: BAR parsing, config reads and the capability walk, devmem reads
#      and writes, the ROM, a host check; must PASS.
#   2. (not with --quick; x86_64) the runner must report FAIL, and leave nothing
#      running, for: a guest test that fails, one that ends without a result, one that
#      hangs (timeout), a failing host check, the initramfs being reproducible, and a
#      stand-in server (python3) that exits non-zero, keeps its socket, ignores
#      SIGTERM, or never creates its socket; and PASS with a well-behaved one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=$here/run.sh

arches=() quick=
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arches+=("$2"); shift ;;
	--quick) quick=1 ;;
	*) echo "usage: selftest.sh [--arch x86_64|aarch64]... [--quick]" >&2; exit 2 ;;
	esac
	shift
done
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 aarch64)

t=$(mktemp -d "${TMPDIR:-/tmp}/tp-selftest.XXXXXX")
trap 'rm -rf "$t"' EXIT
tag=tp-selftest-$$
fails=0
ok() { echo "selftest: ok: $*"; }
bad() { echo "selftest: FAILED: $*"; fails=$((fails + 1)); }

# A 2 KiB option ROM the kernel accepts (55 aa, a "PCIR" structure, last image) for
# edu (1234:11e8). Code type 3 (EFI) so that SeaBIOS does not try to run it.
{
	printf '\x55\xaa\x04'
	head -c 21 /dev/zero
	printf '\x20\x00'
	head -c 6 /dev/zero
	printf 'PCIR\x34\x12\xe8\x11\x00\x00\x18\x00\x00\x00\x00\xff\x04\x00\x00\x00\x03\x80\x00\x00'
	head -c $((2048 - 56)) /dev/zero
} > "$t/edu-rom.bin"

devices=(
	--qemu-device "-device edu,bus=rp0,romfile=$t/edu-rom.bin"
	--qemu-device "-device pcie-root-port,id=rp1,chassis=2,slot=2"
	--qemu-device "-object memory-backend-memfd,id=shm,size=4M,share=on -device ivshmem-plain,memdev=shm,bus=rp1"
	--qemu-device "-device pcie-root-port,id=rp2,chassis=3,slot=3 -device e1000e,bus=rp2,romfile="
)

# expect PASS|FAIL PATTERN DESCRIPTION -- run.sh args: runs it, checks the verdict,
# that PATTERN (grep -E) is in its output, and that no QEMU of ours is left
expect() {
	local want=$1 pat=$2 what=$3 rc=0 got
	shift 4
	"$run" --quiet --qemu-arg -name --qemu-arg "$tag" "$@" > "$t/out" 2>&1 || rc=$?
	got=PASS
	[ $rc -eq 0 ] || got=FAIL
	if pgrep -f -- "$tag" > /dev/null; then
		bad "$what: a QEMU process was left running"
	elif [ $got != "$want" ]; then
		bad "$what: runner said $got (status $rc), want $want"
		sed 's/^/    /' "$t/out"
	elif ! grep -q -E -- "$pat" "$t/out"; then
		bad "$what: no /$pat/ in the runner's output"
		sed 's/^/    /' "$t/out"
	else
		ok "$what: $(grep -E -- "$pat" "$t/out" | tail -1)"
		grep -E '^TEST .* at ' "$t/out" | sed 's/^/    /' || true
	fi
}

for a in "${arches[@]}"; do
	expect PASS 'TEST selftest .*: PASS' "emulated devices ($a)" -- \
		--arch "$a" --test "$here/t-selftest.sh" "${devices[@]}" \
		--host-check 'grep -q "edu BAR0+0x0 ident = 0x10000ed ok" "$TP_GUEST_LOG"' \
		--host-check '[ "$TP_SERVER_LOG" = /dev/null ] && [ -d "$TP_TMP" ]'
done
if [ -n "$quick" ]; then
	[ $fails -eq 0 ] || { echo "selftest: $fails FAILED"; exit 1; }
	echo "selftest: all passed"
	exit 0
fi

a=x86_64
expect FAIL 'FAIL guest: RESULT: FAIL failing on purpose' "guest test fails" -- \
	--arch $a --test "$here/t-selftest.sh" "${devices[@]}" --append tp.mode=fail
expect FAIL 'RESULT: FAIL no result \(last step: pcie' "guest test ends without a result" -- \
	--arch $a --test "$here/t-selftest.sh" "${devices[@]}" --append tp.mode=noresult
expect FAIL 'did not power off within 12 s' "guest hangs" -- \
	--arch $a --test "$here/t-selftest.sh" "${devices[@]}" --append tp.mode=hang --timeout 12
expect FAIL 'host check failed \(status 3\)' "host check fails" -- \
	--arch $a --test "$here/t-selftest.sh" "${devices[@]}" --host-check 'exit 3'

# Reproducible initramfs: same inputs, same bytes (and under a second).
s0=$(date +%s%N)
MODULES="nvme e1000e" "$here/mkinitrd.sh" aarch64 "$t/i1.cpio.gz" "$here/t-selftest.sh" "$here/lib.sh"
s1=$(date +%s%N)
sleep 1
MODULES="nvme e1000e" "$here/mkinitrd.sh" aarch64 "$t/i2.cpio.gz" "$here/t-selftest.sh" "$here/lib.sh"
if cmp -s "$t/i1.cpio.gz" "$t/i2.cpio.gz"; then
	ok "initramfs reproducible ($(stat -c %s "$t/i1.cpio.gz") bytes with nvme, e1000e and deps, $(((s1 - s0) / 1000000)) ms)"
else
	bad "initramfs differs between two builds"
fi
TB=${TP_TESTBED:-$here/../../.cache/testbed}
gzip -dc "$t/i1.cpio.gz" | (cd "$t" && mkdir x && cd x && "$TB/k/amd64/bin/busybox" cpio -id 2> /dev/null) || true
if [ -f "$t/x/lib/modules/$(cat "$TB/k/arm64/KVER")/modules.dep" ] &&
	[ -n "$(find "$t/x/lib/modules" -name 'nvme-core.ko')" ] && [ -f "$t/x/bin/lib.sh" ] &&
	[ "$(tr '\n' ' ' < "$t/x/etc/modules")" = "nvme e1000e " ]; then
	ok "initramfs has modules.dep, nvme's dependency nvme-core, /bin/lib.sh, /etc/modules"
else
	bad "initramfs content"
fi

# A stand-in for `thunderpass serve`: listens on --socket; TP_FAKE_MODE picks how it
# misbehaves on SIGTERM.
cat > "$t/fake-server" << 'PY'
#!/usr/bin/env python3
import os, signal, socket, sys, time
a = sys.argv[1:]
assert a[:3] == ["serve", "--backend", "model"], a
path = a[a.index("--socket") + 1]
mode = os.environ.get("TP_FAKE_MODE", "good")
print("fake server: mode", mode, "args", a, file=sys.stderr, flush=True)
if mode == "nosocket":
    time.sleep(30)
    sys.exit(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
def term(*_):
    if mode == "ignoreterm":
        return
    if mode != "keepsocket":
        os.unlink(path)
    print("fake server: stopped", file=sys.stderr, flush=True)
    sys.exit(5 if mode == "badexit" else 0)
signal.signal(signal.SIGTERM, term)
while True:
    time.sleep(1)
PY
chmod +x "$t/fake-server"
printf 'step nothing\necho "guest: nothing to test"\nresult_pass\n' > "$t/t-nothing.sh"
srv=(--arch "$a" --test "$t/t-nothing.sh" --server "$t/fake-server" --no-device --server-arg --extra)
TP_FAKE_MODE=good expect PASS 'TEST nothing x86_64: PASS' "stand-in server behaves" -- "${srv[@]}" \
	--host-check 'grep -q "args .*--extra" "$TP_SERVER_LOG" && grep -q "fake server: stopped" "$TP_SERVER_LOG"'
TP_FAKE_MODE=badexit expect FAIL 'server exit status 5' "server exits 5" -- "${srv[@]}"
TP_FAKE_MODE=keepsocket expect FAIL 'server left its socket behind' "server keeps its socket" -- "${srv[@]}"
TP_FAKE_MODE=ignoreterm TP_SERVER_STOP_WAIT=2 expect FAIL 'server still running 2 s after SIGTERM' \
	"server ignores SIGTERM" -- "${srv[@]}"
TP_FAKE_MODE=nosocket TP_SOCKET_WAIT=2 expect FAIL 'no socket .* after 2 s' "server never listens" -- "${srv[@]}"
if pgrep -f -- "$t/fake-server" > /dev/null; then bad "a stand-in server was left running"; fi

[ $fails -eq 0 ] || { echo "selftest: $fails FAILED"; exit 1; }
echo "selftest: all passed"
