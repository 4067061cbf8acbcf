# shellcheck shell=bash
# Suite "baseline": Debian's tcmu-runner (qcow handler, which serves a raw
# image as raw) behind target_core_user, exported through tcm_loop and
# optionally iSCSI; the client checks run against it.  Needs nothing from
# this repository, so it shows whether the harness and the kernel work.

BASE_NAME=disk0
BASE_IMG=/tmp/$BASE_NAME.img
BASE_IQN=iqn.2003-01.org.linux-iscsi.tcmuvm:baseline
TCMU_RUNNER_PID=

b_start_runner() {
    local hp
    for hp in /usr/lib/x86_64-linux-gnu/tcmu-runner /usr/lib64/tcmu-runner /usr/lib/tcmu-runner; do
        [ -f "$hp/handler_qcow.so" ] && break
    done
    [ -f "$hp/handler_qcow.so" ] || fail "no tcmu-runner qcow handler found"
    command -v tcmu-runner >/dev/null || fail "tcmu-runner not installed"
    mkdir -p /vmresults/tcmu-runner /var/log
    # Foreground process, put in the background by us; its own log file goes
    # to the results share.  No D-Bus daemon runs here and it does not mind.
    tcmu-runner --handler-path "$hp" -l /vmresults/tcmu-runner \
        >/vmresults/tcmu-runner/stdout.log 2>&1 &
    vm_set TCMU_RUNNER_PID $!
    echo "tcmu-runner pid $TCMU_RUNNER_PID, handlers from $hp"
    # Ready once it has told target_core_user its netlink features (the
    # kernel logs "tcmu daemon: command reply support"); it loads all its
    # handlers first (librados for rbd: seconds under TCG).
    wait_for 60 tcmu_daemon_registered || fail "tcmu-runner did not register with target_core_user"
    pid_alive "$TCMU_RUNNER_PID" || { cat /vmresults/tcmu-runner/stdout.log; fail "tcmu-runner exited at start"; }
    cat /vmresults/tcmu-runner/tcmu-runner.log 2>/dev/null
}

b_create() {
    local bytes=$1 bs
    truncate -s "$bytes" "$BASE_IMG" || fail "cannot create $BASE_IMG"
    bs=$(lio_user_create 1 "$BASE_NAME" "qcow/$BASE_IMG" "$bytes") || fail "cannot create user backstore"
    echo "backstore $bs"
    cat "$bs/info" 2>/dev/null
    vm_set BASE_BS "$bs"
}

b_export() {
    local wwn dev
    wwn=$(lio_loop_export "$BASE_BS") || fail "tcm_loop export failed"
    vm_set BASE_WWN "$wwn"
    echo "tcm_loop target $wwn"
    dev=$(wait_disk "$BASE_NAME" 60) || { lsscsi; dmesg | tail -30; fail "no disk appeared for $BASE_NAME"; }
    vm_set BASE_DEV "$dev"
    echo "disk $dev"
}

b_teardown() {
    local rc=0
    lio_loop_unexport "$BASE_WWN" || { echo "loop unexport failed"; rc=1; }
    wait_for 30 test ! -b "$BASE_DEV" || { echo "$BASE_DEV still present"; rc=1; }
    lio_user_delete "$BASE_BS" || { echo "backstore delete failed"; rc=1; }
    [ ! -d "$BASE_BS" ] || rc=1
    return "$rc"
}

suite_main() {
    local size bytes
    size=${VM_DISK_SIZE:-128M}
    bytes=$(to_bytes "$size")
    BASE_BS='' BASE_WWN='' BASE_DEV='' TCMU_RUNNER_PID=''

    run_check baseline.tcmu_runner b_start_runner || return
    run_check baseline.backstore b_create "$bytes" || return
    run_check baseline.loop_export b_export || return
    vm_say "device $BASE_DEV"

    clients_block "$BASE_DEV" "$bytes" client

    if [ "${VM_ISCSI:-0}" = 1 ]; then
        if run_check baseline.iscsi_export lio_iscsi_export "$BASE_BS" "$BASE_IQN"; then
            clients_iscsi "iscsi://127.0.0.1/$BASE_IQN/0" "${VM_ISCSI_TESTS:-SCSI}" \
                "$GUEST_DIR/known-failures/baseline-iscsi.txt" client
            run_check baseline.iscsi_unexport lio_iscsi_unexport "$BASE_IQN"
        fi
    fi

    run_check baseline.teardown b_teardown
    # tcmu-runner stays up until power-off.
    if pid_alive "$TCMU_RUNNER_PID"; then
        check_pass baseline.tcmu_runner_alive
    else
        check_fail baseline.tcmu_runner_alive "tcmu-runner died during the run"
    fi
}
