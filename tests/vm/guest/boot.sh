#!/bin/bash
# PID 1 in the guest after switch_root (started by tests/vm/initramfs/init).
# Runs guest/main.sh under a deadline, saves the kernel log to the results
# share and powers the VM off, whatever happened.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
R=/vmresults

power_off() {
    dmesg >"$R/dmesg.txt" 2>&1
    echo "VM: poweroff (uptime $(cut -d' ' -f1 /proc/uptime)s)"
    sync
    # Nothing else runs as init: ask the kernel directly.  Device shutdown
    # still happens (sd's SYNCHRONIZE CACHE reaches any daemon still alive).
    echo o >/proc/sysrq-trigger
    sleep 120
}
trap power_off EXIT

echo "VM: stage2 up (uptime $(cut -d' ' -f1 /proc/uptime)s)"
# shellcheck disable=SC1091
if [ -f "$R/job.env" ]; then set -a; . "$R/job.env"; set +a; fi
deadline=${VM_GUEST_TIMEOUT:-500}

# The suite runs as a child so that a hang cannot keep PID 1 from powering
# off; its output goes to the console and to the results share.
timeout -k 10 "$deadline" bash "$GUEST_DIR/main.sh" 2>&1 | tee "$R/guest.log"
rc=${PIPESTATUS[0]}
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "CHECK FAIL guest.deadline: suite killed after ${deadline}s" | tee -a "$R/results.txt"
fi
echo "VM: main.sh exited rc=$rc"
