# shellcheck shell=bash
# Suite "tcmu-wasm": our daemon, `tcmu-wasm serve --config FILE`, creates its
# devices (user backstores + exports) itself; the same client checks as the
# baseline run against each device exported through tcm_loop.
#
# Inputs (environment, passed through run.sh's job.env):
#   TCMU_WASM_BIN       daemon binary (default: the package TCMU_WASM_DEB
#                       installed with dpkg -i, else scripts/install.sh into
#                       the guest's /usr; then /usr/bin/tcmu-wasm)
#   TCMU_WASM_CONFIG    config TOML (default guest/configs/loopback-file.toml)
#   TCMU_WASM_ARGS      extra arguments after `serve --config FILE`
#   TCMU_WASM_WAIT      seconds to wait for the disks (default 120)
#   TCMU_WASM_PRECREATE 1 (default): create missing backing files of the
#                       config's `size` before starting the daemon
#   TCMU_WASM_SIGTERM   1 (default): SIGTERM the daemon at the end and check
#                       that it exits and removes its devices; 0: leave it
#                       running until power-off
#   VM_ISCSI=1          run libiscsi's conformance suite against every device
#                       the daemon exports over iSCSI (export = "iscsi", default
#                       IQN iqn.2026-11.org.tcmu-wasm:<name> on 127.0.0.1:3260);
#                       without it those devices only get an iSCSI login check
#   RUST_LOG, RUST_BACKTRACE pass through.

TW_PID=
TW_DIR=/vmresults/tcmu-wasm

# shellcheck source-path=SCRIPTDIR source=../lib/ctl.sh
. "$GUEST_DIR/lib/ctl.sh"

# tw_devices CONFIG: "name<TAB>size<TAB>backing<TAB>export" per [[device]]
# (a line-oriented reading of the TOML, enough for our configs).
tw_devices() {
    awk '
        function flush() { if (indev && name != "") printf "%s\t%s\t%s\t%s\n", name, size, backing, export_; }
        function val(s) { sub(/^[^=]*=[ \t]*/, "", s); sub(/[ \t]*(#.*)?$/, "", s); gsub(/^"|"$/, "", s); return s }
        /^[ \t]*\[\[device\]\][ \t]*$/ { flush(); indev = 1; name = size = backing = export_ = ""; next }
        /^[ \t]*\[/ { flush(); indev = 0; name = ""; next }
        indev && /^[ \t]*name[ \t]*=/ { name = val($0) }
        indev && /^[ \t]*size[ \t]*=/ { size = val($0) }
        indev && /^[ \t]*backing[ \t]*=/ { backing = val($0) }
        indev && /^[ \t]*export[ \t]*=/ { export_ = val($0) }
        END { flush() }
    ' "$1"
}

# The daemon log's first error line (else its last line), for a FAIL reason.
tw_log_reason() {
    grep -m1 -iE 'error|panic' "$TW_DIR/daemon.log" 2>/dev/null || tail -n 1 "$TW_DIR/daemon.log" 2>/dev/null
}

tw_start() {
    local bin=$1 cfg=$2 name size backing export_
    [ -x "$bin" ] || fail "no daemon binary $bin (cargo build --release -p ...?)"
    [ -f "$cfg" ] || fail "no config $cfg"
    mkdir -p "$TW_DIR"
    cp "$cfg" "$TW_DIR/config.toml"
    if [ "${TCMU_WASM_PRECREATE:-1}" = 1 ]; then
        while IFS=$'\t' read -r name size backing export_; do
            [ -n "$backing" ] && [ -n "$size" ] && [ ! -e "$backing" ] || continue
            mkdir -p "$(dirname "$backing")"
            truncate -s "$(to_bytes "$size")" "$backing" || fail "cannot create $backing"
            echo "created $backing ($size)"
        done < <(tw_devices "$cfg")
    fi
    # shellcheck disable=SC2086
    NO_COLOR=1 "$bin" serve --config "$cfg" ${TCMU_WASM_ARGS:-} >"$TW_DIR/daemon.log" 2>&1 &
    vm_set TW_PID $!
    echo "started $bin serve --config $cfg (pid $TW_PID)"
    sleep 0.5
    pid_alive "$TW_PID" || { tail -n 20 "$TW_DIR/daemon.log"; fail "daemon exited at start: $(tw_log_reason)"; }
}

# tw_wait_disk NAME: the loopback disk of backstore NAME, while the daemon lives.
tw_wait_disk() {
    local name=$1 secs=${TCMU_WASM_WAIT:-120} end dev
    end=$(( $(date +%s) + secs ))
    while :; do
        dev=$(lio_loop_disk_of "$name") && [ -b "$dev" ] && break
        if ! pid_alive "$TW_PID"; then
            tail -n 20 "$TW_DIR/daemon.log"
            fail "daemon exited before $name appeared: $(tw_log_reason)"
        fi
        # tcm_loop scans a LUN as soon as it is linked; without an I_T nexus
        # by then the scan fails and no disk ever appears (no rescan).
        if dmesg | grep -q 'TCM_Loop I_T Nexus does not exist'; then
            dmesg | grep -E 'TCM_Loop|scsi' | tail -n 5
            fail "tcm_loop LUN was scanned before its nexus existed (write tpgt_N/nexus before linking the LUN)"
        fi
        if [ "$(date +%s)" -ge "$end" ]; then
            lio_dump; lsscsi; tail -n 20 "$TW_DIR/daemon.log"
            fail "no loopback disk for backstore $name after ${secs}s"
        fi
        sleep 0.2
    done
    vm_set "TW_DEV_$2" "$dev"
    echo "$name -> $dev (backstore $(lio_find_backstore "$name"))"
}

# tw_resize NAME DEV: grow the backstore through configfs (a RECONFIG
# netlink event the daemon must answer), then the initiator must see
# UNIT ATTENTION / CAPACITY DATA HAS CHANGED once and the new capacity.
tw_resize() {
    local name=$1 dev=$2 bs old new out rc sysblk
    sysblk=/sys/block/$(basename "$dev")
    bs=$(lio_find_backstore "$name") || fail "no backstore for $name"
    old=$(( $(cat "$sysblk/size") * 512 ))
    new=$(( old + 16 * 1048576 ))
    echo "$new" >"$bs/attrib/dev_size" || fail "writing attrib/dev_size failed (the daemon refused the RECONFIG?)"
    grep -q "resized.*size=$new" "$TW_DIR/daemon.log" || fail "daemon log shows no resize to $new"
    out=$(sg_turs -vv "$dev" 2>&1); rc=$?
    echo "$out"
    [ "$rc" -eq 6 ] || fail "first command after the resize: expected UNIT ATTENTION (sg_turs exit 6), got exit $rc"
    grep -qi 'capacity data has changed' <<<"$out" || fail "the unit attention is not CAPACITY DATA HAS CHANGED"
    sg_turs "$dev" || fail "the unit attention was reported more than once"
    out=$(sg_readcap -l "$dev") || fail "READ CAPACITY(16) failed"
    echo "$out"
    grep -q "Number of logical blocks=$(( new / 512 ))" <<<"$out" || fail "READ CAPACITY does not show $new bytes"
    echo 1 >"$sysblk/device/rescan"
    wait_for 10 sh -c '[ "$(cat "$1")" -eq "$2" ]' _ "$sysblk/size" $(( new / 512 )) || fail "sd did not pick up the new size"
    echo "resized $old -> $new bytes; $dev now $(( $(cat "$sysblk/size") * 512 )) bytes"
}

# The WCE bit of DEV's caching mode page (MODE SENSE(6), raw).
tw_wce() {
    local bytes p
    read -r -a bytes < <(sg_modes -6 -r -p 0x08 "$1" | od -An -tx1 -v | tr '\n' ' ')
    [ "${#bytes[@]}" -ge 4 ] || return 1
    p=$(( 4 + 0x${bytes[3]} ))
    [ "$(( 0x${bytes[p]} & 0x3f ))" = 8 ] || return 1
    echo $(( (0x${bytes[p + 2]} >> 2) & 1 ))
}

# tw_write_cache NAME DEV: switch attrib/emulate_write_cache (a RECONFIG
# event); the handler's caching page must follow.
tw_write_cache() {
    local name=$1 dev=$2 bs wce
    bs=$(lio_find_backstore "$name") || fail "no backstore for $name"
    for want in 0 1; do
        echo "$want" >"$bs/attrib/emulate_write_cache" || fail "writing emulate_write_cache=$want failed"
        wce=$(tw_wce "$dev") || fail "cannot read the caching page of $dev"
        [ "$wce" = "$want" ] || fail "WCE is $wce after emulate_write_cache=$want"
        echo "emulate_write_cache=$want -> WCE=$wce"
    done
    grep -q 'write cache switched' "$TW_DIR/daemon.log" || fail "daemon log shows no write cache switch"
}

# tw_kill_restart BIN CFG NAME DEV: kill -9 the daemon, start it again; it
# must adopt the existing device (block, reset ring, serve, unblock) and the
# disk must keep working without the initiator losing it.
tw_kill_restart() {
    local bin=$1 cfg=$2 name=$3 dev=$4 log=$TW_DIR/daemon.restarted.log
    kill -KILL "$TW_PID"
    wait_for 10 pid_gone "$TW_PID" || fail "daemon survived SIGKILL"
    [ -b "$dev" ] || fail "$dev vanished when the daemon died"
    NO_COLOR=1 "$bin" serve --config "$cfg" ${TCMU_WASM_ARGS:-} >"$log" 2>&1 &
    vm_set TW_PID $!
    wait_for 60 grep -q 'serving; SIGINT' "$log" || { tail -n 20 "$log"; fail "restarted daemon did not come up"; }
    grep -q 'adopting existing device' "$log" || fail "restarted daemon did not adopt $name"
    [ -b "$dev" ] || fail "$dev vanished across the restart"
    c_dd_verify "$dev" 4096 32 777
    c_dd_verify "$dev" 1048576 2 5
    # Later checks read the current daemon's log.
    cat "$log" >>"$TW_DIR/daemon.log"
    echo "restarted daemon (pid $TW_PID) serves $dev"
}

tw_stop() {
    local t0
    pid_alive "$TW_PID" || fail "daemon was not running at the end"
    t0=$(now)
    kill -TERM "$TW_PID"
    # Not our child in this subshell: poll instead of wait.
    wait_for 30 pid_gone "$TW_PID" || fail "daemon still running 30s after SIGTERM"
    echo "exited $(elapsed "$t0")s after SIGTERM"
    tail -n 20 "$TW_DIR/daemon.log"
}

tw_cleaned_up() {
    local left
    left=$(lio_user_backstores)
    [ -z "$left" ] || fail "user backstores left behind: $left"
    ! ls -d "$CFS"/loopback/naa.* >/dev/null 2>&1 || fail "tcm_loop targets left behind: $(ls "$CFS/loopback")"
    ! ls -d "$CFS"/iscsi/iqn.* >/dev/null 2>&1 || fail "iSCSI targets left behind: $(ls "$CFS/iscsi")"
}

# After a daemon that did not clean up: remove what is left so that power-off
# does not wait on commands nobody will complete.
tw_force_cleanup() {
    local t link bs
    for link in "$CFS"/loopback/naa.*/tpgt_*/lun/lun_*/* "$CFS"/iscsi/iqn.*/tpgt_*/lun/lun_*/*; do
        [ -L "$link" ] && unlink "$link"
    done
    for t in "$CFS"/loopback/naa.*; do
        [ -d "$t" ] && lio_loop_unexport "$(basename "$t")"
    done
    for t in "$CFS"/iscsi/iqn.*; do
        [ -d "$t" ] && lio_iscsi_unexport "$(basename "$t")"
    done
    while read -r bs; do
        [ -n "$bs" ] && lio_user_delete "$bs"
    done < <(lio_user_backstores)
}

# tw_install: scripts/install.sh into the guest's /usr and /etc (the
# overlay), so the suite runs the installed daemon from its FHS paths.
tw_install() {
    if [ -n "${TCMU_WASM_DEB:-}" ]; then
        # The Debian package, as an admin installs it (the guest's / is a
        # throw-away overlay over the host's). man-db's trigger would
        # re-index every manual page of the host's /usr over 9p (minutes
        # under emulation), so it is switched off as Debian documents.
        rm -f /var/lib/man-db/auto-update
        dpkg -i "$TCMU_WASM_DEB" || fail "dpkg -i $TCMU_WASM_DEB failed"
        dpkg-query -W -f='${Status}' tcmu-wasm | grep -q '^install ok installed' || fail "dpkg does not list tcmu-wasm as installed"
        [ -f /etc/tcmu-wasm/devices.toml ] || fail "the package installed no /etc/tcmu-wasm/devices.toml"
        dpkg-query -W -f='${Conffiles}' tcmu-wasm | grep -q /etc/tcmu-wasm/devices.toml || fail "devices.toml is not a conffile"
    else
        "$VM_REPO/scripts/install.sh" --no-build --prefix /usr --sysconfdir /etc || fail "install.sh failed"
    fi
    [ -x /usr/bin/tcmu-wasm ] && [ -f /usr/lib/tcmu-wasm/handlers/file.wasm ] || fail "install.sh installed no daemon or handlers"
    /usr/bin/tcmu-wasm handlers | grep -q '^file .*(/usr/lib/tcmu-wasm/handlers/file.wasm)' \
        || fail "the installed daemon does not find the installed handlers: $(/usr/bin/tcmu-wasm handlers)"
    man -w tcmu-wasm-serve >/dev/null 2>&1 || [ -f /usr/share/man/man1/tcmu-wasm-serve.1.gz ] || fail "no man page"
}

suite_main() {
    local bin=${TCMU_WASM_BIN:-}
    if [ -z "$bin" ]; then
        # The installed daemon, not target/ (TCMU_WASM_BIN overrides).
        bin=/usr/bin/tcmu-wasm
        run_check tcmu_wasm.install tw_install || bin=$VM_REPO/target/release/tcmu-wasm
    fi
    local cfg=${TCMU_WASM_CONFIG:-$GUEST_DIR/configs/loopback-file.toml}
    local name size backing export_ i=0 devs=() prefix dev var pairs=()
    TW_PID=
    TW_BIN=$bin

    # A system bus first, so the daemon owns org.kernel.TCMUService1 (targetcli).
    local bus=0
    if grep -q '^\[kernel_devices\]' "$cfg" && run_check tcmu_wasm.system_bus tw_system_bus; then bus=1; fi
    run_check tcmu_wasm.start tw_start "$bin" "$cfg" || return

    while IFS=$'\t' read -r name size backing export_; do
        [ "$export_" = loopback ] || continue
        devs+=("$name")
    done < <(tw_devices "$cfg")
    [ "${#devs[@]}" -gt 0 ] || check_fail tcmu_wasm.config "no [[device]] with export = \"loopback\" in $cfg"

    for name in "${devs[@]}"; do
        i=$((i + 1))
        prefix=client
        [ "${#devs[@]}" -eq 1 ] || prefix=client.$name
        run_check "tcmu_wasm.disk.$name" tw_wait_disk "$name" "$i" || continue
        var=TW_DEV_$i; dev=${!var}
        pairs+=("$name=$dev")
        size=$(tw_devices "$cfg" | awk -F'\t' -v n="$name" '$1 == n { print $2 }')
        vm_say "device $name -> $dev"
        if [ "$i" = 1 ]; then
            # The whole client battery on the first disk; the others get a
            # data check (each battery costs a minute under emulation).
            clients_block "$dev" "${size:+$(to_bytes "$size")}" "$prefix"
            run_check tcmu_wasm.resize tw_resize "$name" "$dev"
            run_check tcmu_wasm.write_cache tw_write_cache "$name" "$dev"
            run_check tcmu_wasm.kill9_restart tw_kill_restart "$bin" "$cfg" "$name" "$dev"
        else
            run_check "$prefix.dd_4k_direct" c_dd_4k "$dev"
        fi
    done

    # The control plane, against the kernel (lib/ctl.sh).
    if [ "${#pairs[@]}" -ge 2 ]; then
        run_check tcmu_wasm.identity tw_identity "${pairs[@]}"
    fi
    run_check tcmu_wasm.ctl_status tw_ctl_status "${devs[@]}"
    run_check tcmu_wasm.ctl_refused tw_ctl_refused
    if grep -q '^listen = "127.0.0.1:9725"' "$cfg"; then
        run_check tcmu_wasm.metrics_http tw_metrics_http
    fi
    run_check tcmu_wasm.ctl_add_remove tw_ctl_add_remove
    if grep -q '^\[kernel_devices\]' "$cfg"; then
        run_check tcmu_wasm.kernel_devices tw_kernel_devices "$bin" "$cfg" \
            || tw_kernel_devices_cleanup >>"$VM_LOGS/force-cleanup.log" 2>&1
    fi
    dev=${TW_DEV_1:-}
    if [ -n "$dev" ]; then
        run_check tcmu_wasm.reload_under_fio tw_reload_under_fio "${devs[0]}" "$dev"
        run_check tcmu_wasm.sighup tw_sighup "$dev"
    fi
    run_check tcmu_wasm.check_config tw_check_config

    # Devices the daemon exports over iSCSI itself (default IQN, 127.0.0.1:3260).
    local iscsi_devs=()
    while IFS=$'\t' read -r name size backing export_; do
        [ "$export_" = iscsi ] && iscsi_devs+=("$name")
    done < <(tw_devices "$cfg")
    for name in "${iscsi_devs[@]}"; do
        local url="iscsi://127.0.0.1/iqn.2026-11.org.tcmu-wasm:$name/0"
        if [ "${VM_ISCSI:-0}" = 1 ]; then
            clients_iscsi "$url" "${VM_ISCSI_TESTS:-SCSI}" \
                "$GUEST_DIR/known-failures/tcmu-wasm-iscsi.txt" "client.$name"
        else
            run_check "client.$name.iscsi_login" c_iscsi_login "$url"
        fi
    done

    if [ "$bus" = 1 ]; then
        run_check tcmu_wasm.targetcli tw_targetcli "$bin" "$cfg"
    fi

    if pid_alive "$TW_PID"; then
        check_pass tcmu_wasm.alive
    else
        check_fail tcmu_wasm.alive "daemon died during the run (see tcmu-wasm/daemon.log)"
    fi
    if [ "${TCMU_WASM_SIGTERM:-1}" = 1 ]; then
        run_check tcmu_wasm.sigterm tw_stop
        run_check tcmu_wasm.cleanup tw_cleaned_up || tw_force_cleanup >>"$VM_LOGS/force-cleanup.log" 2>&1
    fi
}
