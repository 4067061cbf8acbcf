# shellcheck shell=bash
# Common guest helpers: reporting, timing, the prelude (modules, configfs,
# /dev links), sizes, waiting.  Sourced by main.sh.
#
# Reporting protocol (parsed by run.sh from /vmresults/results.txt):
#   CHECK PASS <name>
#   CHECK FAIL <name>: <reason>
#   RESULT name=<name> value=<number> unit=<unit>

VM_RESULTS=${VM_RESULTS:-/vmresults/results.txt}
VM_LOGS=${VM_LOGS:-/vmresults/logs}
mkdir -p "$VM_LOGS"

vm_say() { echo "VM: $*"; }

check_pass() { echo "CHECK PASS $1" | tee -a "$VM_RESULTS"; }
check_fail() { echo "CHECK FAIL $1: ${2:-failed}" | tee -a "$VM_RESULTS"; }
check_skip() { echo "CHECK SKIP $1: ${2:-skipped}" | tee -a "$VM_RESULTS"; }
result() { echo "RESULT name=$1 value=$2 unit=$3" | tee -a "$VM_RESULTS"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# State that check functions hand back to the suite (they run in subshells).
VM_STATE=${VM_STATE:-/tmp/vmstate.sh}
: >"$VM_STATE"
# vm_set NAME VALUE: set NAME in the suite's shell once the check returns.
vm_set() { printf '%s=%q\n' "$1" "$2" >>"$VM_STATE"; printf -v "$1" '%s' "$2"; }

# run_check NAME CMD [ARGS...]
# Runs CMD (usually a shell function) in a subshell with its output in
# logs/NAME.log, records its duration as RESULT time.NAME, and reports PASS
# when it returns 0, else FAIL with the last line it printed as the reason.
# Inside, `fail MSG` ends the check; variables set with vm_set survive it.
run_check() {
    local name=$1 t0 rc reason log
    shift
    log=$VM_LOGS/$name.log
    t0=$(now)
    ( "$@" ) >"$log" 2>&1
    rc=$?
    # shellcheck disable=SC1090
    . "$VM_STATE"
    result "time.$name" "$(elapsed "$t0")" s >/dev/null
    if [ "$rc" = 0 ]; then
        check_pass "$name"
    else
        reason=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | tr -d '\r' | cut -c1-300)
        check_fail "$name" "rc=$rc ${reason:-no output} (logs/$name.log)"
    fi
    return "$rc"
}

# End the current check (a run_check subshell) with a message.
fail() { echo "FAIL: $*"; exit 1; }

# to_bytes 64M | 1G | 4096 | 2KiB
to_bytes() {
    local v=$1 n u
    n=${v%%[!0-9]*}
    u=${v#"$n"}
    case "$u" in
        ""|B) echo "$n" ;;
        K|k|KiB|KB) echo $((n * 1024)) ;;
        M|MiB|MB) echo $((n * 1024 * 1024)) ;;
        G|GiB|GB) echo $((n * 1024 * 1024 * 1024)) ;;
        T|TiB|TB) echo $((n * 1024 * 1024 * 1024 * 1024)) ;;
        *) echo "to_bytes: bad size '$v'" >&2; return 1 ;;
    esac
}

# pid_alive PID: running (a zombie, whose parent is PID 1 here, is not).
pid_alive() {
    local st
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    st=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_gone() { ! pid_alive "$1"; }

# wait_for SECS CMD [ARGS...]: poll CMD every 0.2 s until it succeeds.
wait_for() {
    local secs=$1 end
    shift
    end=$(( $(date +%s) + secs ))
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

VM_MODULES=(configfs uio target_core_mod target_core_user tcm_loop iscsi_target_mod
            scsi_mod sd_mod sg st sr_mod ch isofs crc32c_generic crc32c_intel ext4
            target_core_file target_core_iblock target_core_pscsi)

vm_prelude() {
    local m ok=0
    # No udev here: the links bash process substitution and friends expect.
    [ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
    [ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
    [ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
    [ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
    mkdir -p /dev/pts /dev/shm
    mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
    mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    hostname tcmuvm 2>/dev/null || true
    # target_core_mod looks for its db_root when it loads.
    # (pr/ and alua/ for APTPL and ALUA metadata.)
    mkdir -p /etc/target/pr /etc/target/alua
    for m in "${VM_MODULES[@]}"; do
        if ! modprobe "$m"; then
            # crc32c_intel needs SSE4.2; -cpu max under TCG has it, but do
            # not fail the run on it alone (iSCSI login would fail instead).
            echo "modprobe $m failed"
            case "$m" in crc32c_intel) ;; *) ok=1 ;; esac
        fi
    done
    mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config || ok=1
    [ -d /sys/kernel/config/target/core ] || { echo "no /sys/kernel/config/target/core"; ok=1; }
    if command -v ip >/dev/null; then ip link set lo up; else busybox ip link set lo up; fi
    lsmod
    cat /sys/kernel/config/target/version 2>/dev/null
    return "$ok"
}

# A daemon has set its TCM-USER netlink features (tcmu-runner does this at
# start; the kernel logs it, once per daemon start).
tcmu_daemon_registered() { dmesg | grep -q 'tcmu daemon: command reply support'; }

# Debug helper: dump LIO's configfs tree (names and small attribute values).
lio_dump() {
    find /sys/kernel/config/target -maxdepth 6 \( -type d -o -type l \) 2>/dev/null | sort
}
