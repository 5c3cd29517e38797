# Guest side of bench/irq-latency.sh: time edu's interrupts with /bin/edulat.ko.
insmod /bin/edulat.ko iters=200 || result_fail "insmod edulat"
line=$(dmesg | grep 'edulat: dev=' | tail -1)
echo "${line#*] }"
[ -n "$line" ] && result_pass || result_fail "no edulat result"
