# shellcheck shell=bash
# Suite "compare": the same workload against the same kind of device, served
# by Debian's tcmu-runner (qcow handler on a raw image) and by tcmu-wasm's
# file handler, in one boot, alternating VM_COMPARE_ROUNDS times (default 3);
# the best figure of each side counts. Prints RESULT lines per side and
# RESULT compare.ratio.<metric> = tcmu-wasm / tcmu-runner.
#
# Fairness: both devices are 256 MiB raw files on the guest's tmpfs, both
# backstores allow 1 MiB commands (hw_max_sectors=2048) and a 64 MiB data
# area, and only one daemon runs at a time (two daemons would both answer
# the kernel's netlink events).

CMP_SIZE=${VM_DISK_SIZE:-256M}
# Long enough sequential passes (~2 s each under TCG) that the timer's
# resolution does not quantise the MB/s figures.
export VM_SEQ_MB=${VM_SEQ_MB:-192}
CMP_DIR=/vmresults/compare

cmp_runner_round() {
    local round=$1 bytes hp bs wwn dev pid
    bytes=$(to_bytes "$CMP_SIZE")
    for hp in /usr/lib/x86_64-linux-gnu/tcmu-runner /usr/lib64/tcmu-runner /usr/lib/tcmu-runner; do
        [ -f "$hp/handler_qcow.so" ] && break
    done
    mkdir -p "$CMP_DIR/runner.$round"
    dmesg -C
    tcmu-runner --handler-path "$hp" -l "$CMP_DIR/runner.$round" >"$CMP_DIR/runner.$round/stdout.log" 2>&1 &
    pid=$!
    wait_for 60 tcmu_daemon_registered || fail "tcmu-runner did not register"
    truncate -s "$bytes" /tmp/runner.img
    bs=$(lio_user_create 1 rdisk "qcow//tmp/runner.img" "$bytes" "hw_max_sectors=2048,max_data_area_mb=64") \
        || fail "cannot create the tcmu-runner backstore"
    wwn=$(lio_loop_export "$bs") || fail "tcm_loop export failed"
    dev=$(wait_disk rdisk 60) || fail "no disk for the tcmu-runner backstore"
    echo "tcmu-runner serves $dev"
    c_throughput "$dev" "runner.$round"
    lio_loop_unexport "$wwn" || fail "unexport failed"
    wait_for 30 test ! -b "$dev" || fail "$dev still present"
    lio_user_delete "$bs" || fail "backstore delete failed"
    kill "$pid"; wait_for 30 pid_gone "$pid" || kill -KILL "$pid"
    rm -f /tmp/runner.img
}

cmp_wasm_round() {
    local round=$1 bin=${TCMU_WASM_BIN:-$VM_REPO/target/release/tcmu-wasm} cfg dev pid
    mkdir -p "$CMP_DIR/wasm.$round"
    cfg=$CMP_DIR/wasm.$round/config.toml
    cat >"$cfg" <<TOML
[[device]]
name = "wdisk"
handler = "file"
config = "serial=wdisk"
size = "$CMP_SIZE"
backing = "/tmp/wasm.img"
export = "loopback"
hw_max_sectors = 2048
max_data_area_mb = 64
TOML
    NO_COLOR=1 "$bin" serve --config "$cfg" >"$CMP_DIR/wasm.$round/daemon.log" 2>&1 &
    pid=$!
    dev=$(wait_disk wdisk 120) || { tail "$CMP_DIR/wasm.$round/daemon.log"; fail "no disk for tcmu-wasm"; }
    echo "tcmu-wasm serves $dev"
    c_throughput "$dev" "wasm.$round"
    kill -TERM "$pid"
    wait_for 30 pid_gone "$pid" || fail "tcmu-wasm did not stop"
    wait_for 30 test ! -b "$dev" || fail "$dev still present"
    rm -f /tmp/wasm.img
}

# Best value of METRIC over the rounds of SIDE (all metrics: higher is better).
cmp_best() {
    local side=$1 metric=$2
    grep -E "^RESULT name=$side\.[0-9]+\.$metric " "$VM_RESULTS" \
        | sed -E 's/.* value=([0-9.]+) .*/\1/' | sort -g | tail -n 1
}

cmp_ratios() {
    local m r w
    for m in seq_write_1m seq_read_1m rand_read_4k_qd1 rand_write_4k_qd1 rand_read_4k_qd16; do
        r=$(cmp_best runner "$m"); w=$(cmp_best wasm "$m")
        [ -n "$r" ] && [ -n "$w" ] || fail "no figures for $m"
        result "compare.runner.$m" "$r" best
        result "compare.wasm.$m" "$w" best
        result "compare.ratio.$m" "$(awk -v w="$w" -v r="$r" 'BEGIN { printf "%.2f", w / r }')" x
    done
}

suite_main() {
    local rounds=${VM_COMPARE_ROUNDS:-3} i
    mkdir -p "$CMP_DIR"
    for i in $(seq 1 "$rounds"); do
        run_check "compare.runner.$i" cmp_runner_round "$i" || return
        run_check "compare.wasm.$i" cmp_wasm_round "$i" || return
    done
    run_check compare.ratios cmp_ratios
}
