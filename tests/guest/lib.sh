# shellcheck shell=dash disable=SC2046,SC2034,SC2317,SC3043
# (busybox ash: "local" exists; "set -- $(...)" splits on purpose; helpers are called by the tests)
# Guest-side helpers for test scripts (busybox sh). mkinitrd.sh writes this file and
# then the test script into /test.sh, so a test simply calls these functions.
#
# Conventions:
#   - a device is named by its sysfs path, e.g. /sys/bus/pci/devices/0000:01:00.0
#   - numbers are printed as lower-case hex (0x%x / 0x%08x); arithmetic is 64-bit
#   - the test prints exactly one line "RESULT: PASS" or "RESULT: FAIL <why>":
#       check_eq / fail record a failure and go on (the first one is reported);
#       result_fail WHY reports now and ends the test; result_pass ends the test,
#       with PASS if no failure was recorded, else FAIL with the first one.
#     A test that ends (or dies under set -e) without either reports
#     "RESULT: FAIL no result (last step: ...)".
#   - step NAME labels what the test is doing, for that message.
#   - helpers keep their temporaries in "local" variables (busybox ash has local).

TP_FIRST_FAIL=
TP_STEP=start
TP_RESULT_DONE=

step() { TP_STEP=$*; }

# fail WHY: print and record a failure (the first one becomes the RESULT)
fail() {
	echo "FAIL: $*"
	tp_record "$*"
}
tp_record() { [ -n "$TP_FIRST_FAIL" ] || TP_FIRST_FAIL=$*; }

result_fail() {
	[ -n "$TP_RESULT_DONE" ] && exit 0
	TP_RESULT_DONE=1
	echo "RESULT: FAIL $*"
	exit 0
}

result_pass() {
	[ -n "$TP_FIRST_FAIL" ] && result_fail "$TP_FIRST_FAIL"
	[ -n "$TP_RESULT_DONE" ] && exit 0
	TP_RESULT_DONE=1
	echo "RESULT: PASS"
	exit 0
}

tp_on_exit() {
	local st=$?
	if [ -z "$TP_RESULT_DONE" ]; then
		TP_RESULT_DONE=1
		if [ -n "$TP_FIRST_FAIL" ]; then
			echo "RESULT: FAIL $TP_FIRST_FAIL"
		else
			echo "RESULT: FAIL no result (last step: $TP_STEP, exit status $st)"
		fi
	fi
}
trap tp_on_exit EXIT

# hex32 N / hex N: canonical spellings for comparisons and output
hex32() { printf '0x%08x' $(($1)); }
hex() { printf '0x%x' $(($1)); }

# check_eq WHAT GOT WANT: numbers (any base the shell reads) compared by value
check_eq() {
	if [ $(($2)) -eq $(($3)) ]; then
		echo "$1 = $(hex "$2") ok"
	else
		echo "$1 = $(hex "$2") (want $(hex "$3")) FAIL"
		tp_record "$1 = $(hex "$2"), want $(hex "$3")"
	fi
}

# check_dec WHAT GOT WANT: the same, printed in decimal
check_dec() {
	if [ $(($2)) -eq $(($3)) ]; then
		echo "$1 = $(($2)) ok"
	else
		echo "$1 = $(($2)) (want $(($3))) FAIL"
		tp_record "$1 = $(($2)), want $(($3))"
	fi
}

# check_str WHAT GOT WANT: strings
check_str() {
	if [ "$2" = "$3" ]; then
		echo "$1 = $2 ok"
	else
		echo "$1 = $2 (want $3) FAIL"
		tp_record "$1 = $2, want $3"
	fi
}

# check WHAT COND...: runs the test command COND; records a failure if it is false
check() {
	local what
	what=$1
	shift
	if "$@" > /dev/null; then
		echo "$what ok"
	else
		echo "$what FAIL"
		tp_record "$what"
	fi
}

# cmdline_arg NAME [DEFAULT]: value of tp.NAME=VALUE on the kernel command line
cmdline_arg() {
	local a
	for a in $(cat /proc/cmdline); do
		case $a in
		"tp.$1="*)
			echo "${a#*=}"
			return 0
			;;
		esac
	done
	echo "${2:-}"
}

# ---- finding devices

# pci_find VENDOR:DEVICE [N]: sysfs path of the Nth (default first) function with
# those ids (hex, with or without 0x); fails if there is none
pci_find() {
	local want_v want_d n p
	want_v=$(($(echo "0x${1%%:*}" | sed 's/^0x0x/0x/')))
	want_d=$(($(echo "0x${1##*:}" | sed 's/^0x0x/0x/')))
	n=${2:-1}
	for p in /sys/bus/pci/devices/*; do
		[ -e "$p/vendor" ] || continue
		if [ $(($(cat "$p/vendor"))) -eq "$want_v" ] && [ $(($(cat "$p/device"))) -eq "$want_d" ]; then
			n=$((n - 1))
			if [ "$n" -eq 0 ]; then
				echo "$p"
				return 0
			fi
		fi
	done
	return 1
}

# pci_parent DEV: sysfs path of the bridge (root port) above DEV; fails at a root bus
pci_parent() {
	local p
	p=$(dirname "$(readlink -f "$1")")
	[ -e "$p/config" ] || return 1
	echo "/sys/bus/pci/devices/${p##*/}"
}
pci_bdf() { echo "${1##*/}"; }
pci_id() { echo "$(sed 's/^0x//' "$1/vendor"):$(sed 's/^0x//' "$1/device")"; }
pci_class() { cat "$1/class"; }
pci_driver() {
	if [ -e "$1/driver" ]; then basename "$(readlink "$1/driver")"; else echo -; fi
}

# ---- BARs, from the sysfs resource file (line N = BAR N, line 7 = ROM)
# flags are the kernel's IORESOURCE_* bits (include/linux/ioport.h)
IORESOURCE_IO=0x100
IORESOURCE_MEM=0x200
IORESOURCE_PREFETCH=0x2000
IORESOURCE_MEM_64=0x100000
IORESOURCE_ROM_SHADOW=0x2 # (for the ROM line: the x86 legacy copy at 0xc0000)

bar_line() { sed -n "$(($2 + 1))p" "$1/resource"; }
bar_start() { set -- $(bar_line "$1" "$2"); hex "$1"; }
bar_end() { set -- $(bar_line "$1" "$2"); hex "$2"; }
bar_flags() { set -- $(bar_line "$1" "$2"); hex "$3"; }
# bar_size DEV N: 0 when the BAR is absent or unassigned
bar_size() {
	set -- $(bar_line "$1" "$2")
	if [ $(($1)) -eq 0 ] && [ $(($2)) -eq 0 ]; then echo 0; else echo $(($2 - $1 + 1)); fi
}
bar_has() { [ $(($(bar_flags "$1" "$2") & $3)) -ne 0 ]; }
bar_is_mem() { bar_has "$1" "$2" $IORESOURCE_MEM; }
bar_is_io() { bar_has "$1" "$2" $IORESOURCE_IO; }
bar_is_64() { bar_has "$1" "$2" $IORESOURCE_MEM_64; }
bar_is_prefetch() { bar_has "$1" "$2" $IORESOURCE_PREFETCH; }
# bar_describe DEV N: "BARn 0xstart size 0xsize mem 64-bit prefetchable"
bar_describe() {
	local d
	d="BAR$2 $(bar_start "$1" "$2") size $(hex "$(bar_size "$1" "$2")")"
	if bar_is_io "$1" "$2"; then d="$d io"; elif bar_is_mem "$1" "$2"; then d="$d mem"; fi
	if bar_is_64 "$1" "$2"; then d="$d 64-bit"; else d="$d 32-bit"; fi
	bar_is_prefetch "$1" "$2" && d="$d prefetchable"
	echo "$d flags $(bar_flags "$1" "$2")"
}

# size_str BYTES: 16M, 256M, 4K, ...
size_str() {
	local s
	s=$(($1))
	if [ $((s % 1073741824)) -eq 0 ] && [ "$s" -ne 0 ]; then echo "$((s / 1073741824))G"
	elif [ $((s % 1048576)) -eq 0 ] && [ "$s" -ne 0 ]; then echo "$((s / 1048576))M"
	elif [ $((s % 1024)) -eq 0 ] && [ "$s" -ne 0 ]; then echo "$((s / 1024))K"
	else echo "$s"; fi
}

# ---- configuration space, from the sysfs config file (little-endian)
cfg_bytes() { od -An -tu1 -v -j "$(($2))" -N "$3" "$1/config"; }
cfg_read8() { set -- $(cfg_bytes "$1" "$2" 1); echo "$1"; }
cfg_read16() { set -- $(cfg_bytes "$1" "$2" 2); echo $(($1 | $2 << 8)); }
cfg_read32() { set -- $(cfg_bytes "$1" "$2" 4); echo $(($1 | $2 << 8 | $3 << 16 | $4 << 24)); }

# cfg_find_cap DEV ID: offset of the first standard capability with that id (walks
# the chain from 0x34; at most 48 steps); fails if there is none
cfg_find_cap() {
	local ptr i
	[ $(($(cfg_read16 "$1" 0x06) & 0x10)) -ne 0 ] || return 1
	ptr=$(($(cfg_read8 "$1" 0x34) & 0xfc))
	i=0
	while [ "$ptr" -ge 64 ] && [ "$i" -lt 48 ]; do
		if [ "$(cfg_read8 "$1" "$ptr")" -eq $(($2)) ]; then
			echo "$ptr"
			return 0
		fi
		ptr=$(($(cfg_read8 "$1" $((ptr + 1))) & 0xfc))
		i=$((i + 1))
	done
	return 1
}
PCI_CAP_ID_PM=0x01
PCI_CAP_ID_MSI=0x05
PCI_CAP_ID_VNDR=0x09
PCI_CAP_ID_EXP=0x10
PCI_CAP_ID_MSIX=0x11

# cfg_caps DEV: the capability chain as "0x60:0x01 0x68:0x05 ..."
cfg_caps() {
	local ptr i out
	[ $(($(cfg_read16 "$1" 0x06) & 0x10)) -ne 0 ] || return 0
	ptr=$(($(cfg_read8 "$1" 0x34) & 0xfc))
	i=0
	out=
	while [ "$ptr" -ge 64 ] && [ "$i" -lt 48 ]; do
		out="$out $(hex "$ptr"):$(printf '0x%02x' "$(cfg_read8 "$1" "$ptr")")"
		ptr=$(($(cfg_read8 "$1" $((ptr + 1))) & 0xfc))
		i=$((i + 1))
	done
	echo "${out# }"
}

# pcie_link_width DEV: negotiated width from Link Status (cap+0x12, bits 9:4)
pcie_link_width() {
	local c
	c=$(cfg_find_cap "$1" $PCI_CAP_ID_EXP) || return 1
	echo $((($(cfg_read16 "$1" $((c + 0x12))) >> 4) & 0x3f))
}

# ---- enabling and MMIO
# pci_enable DEV: pci_enable_device() (memory/io decoding on); fails if the command
# register does not show memory decoding afterwards
pci_enable() {
	echo 1 > "$1/enable" || return 1
	[ $(($(cfg_read16 "$1" 0x04) & 0x2)) -ne 0 ]
}

# mmio_read32 ADDR / mmio_write32 ADDR VALUE (busybox devmem on /dev/mem)
mmio_read32() { hex32 "$(devmem "$(hex "$1")" 32)"; }
mmio_write32() { devmem "$(hex "$1")" 32 "$(hex32 "$2")"; }
mmio_read8() { printf '0x%02x' $(($(devmem "$(hex "$1")" 8))); }
mmio_write8() { devmem "$(hex "$1")" 8 "$(hex "$2")"; }

# mmio_write_str ADDR STRING: the string's bytes, 32 bits at a time (length a
# multiple of 4); mmio_read_str ADDR LEN: those bytes back as a string (printable)
mmio_write_str() {
	local a w
	a=$(($1))
	for w in $(printf '%s' "$2" | od -An -tx4 -v); do
		mmio_write32 "$a" "0x$w"
		a=$((a + 4))
	done
}
mmio_read_str() {
	local a e s v b sh
	a=$(($1))
	e=$((a + $2))
	s=
	while [ "$a" -lt "$e" ]; do
		v=$(($(devmem "$(hex "$a")" 32)))
		for sh in 0 8 16 24; do
			b=$(((v >> sh) & 0xff))
			if [ "$b" -ge 32 ] && [ "$b" -lt 127 ]; then
				s="$s$(printf "\\$(printf '%03o' "$b")")"
			else
				s="$s."
			fi
		done
		a=$((a + 4))
	done
	echo "$s"
}

# rom_head DEV N: the first N bytes of the expansion ROM as "55 aa ..." (enables the
# ROM for the read, disables it again); empty if it cannot be read
rom_head() {
	local h
	[ -e "$1/rom" ] || return 1
	echo 1 > "$1/rom" || return 1
	h=$(head -c "$2" "$1/rom" 2>/dev/null | od -An -tx1 -v | tr -s ' \n' ' ')
	echo 0 > "$1/rom"
	h=${h# }
	echo "${h% }"
}

# uptime_s: seconds since boot (for timing steps)
uptime_s() { cut -d' ' -f1 /proc/uptime; }
