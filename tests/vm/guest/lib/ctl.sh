# shellcheck shell=bash
# Checks of the daemon's control plane against the real kernel: the control
# socket and `tcmu-wasm ctl`, device identities, runtime add/remove, hot
# reload under fio with verification, SIGHUP, the Prometheus listener and
# `serve --check-config`. Sourced by suites/tcmu-wasm.sh; every function is
# a check body for run_check (fail ends it).
#
# Inputs: TW_BIN (the daemon binary), TW_DIR (its log directory), TW_PID.

TW_FIXTURES=${TW_FIXTURES:-$VM_REPO/target/wasm-handlers/fixtures}

tw_ctl() { NO_COLOR=1 RUST_LOG=warn "$TW_BIN" ctl "$@"; }

# tw_status_py EXPR: a Python expression over `ctl --json status` (as r).
tw_status_py() {
    tw_ctl --json status | python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"
}

# The unit serial (VPD 80h) and the NAA designator (VPD 83h) of DEV.
tw_vpd_serial() { sg_inq -p 0x80 "$1" | sed -n 's/^ *Unit serial number: *//p'; }
tw_vpd_naa() { sg_inq -p 0x83 "$1" | grep -o -m1 '\[0x[0-9a-f]*\]' | tr -d '[]'; }

# tw_identity NAME=DEV...: every device reports its own serial and NAA, and
# the serial is the one the daemon says it assigned.
tw_identity() {
    local pair name dev serial naa serials=() naas=() want
    for pair in "$@"; do
        name=${pair%%=*}; dev=${pair#*=}
        serial=$(tw_vpd_serial "$dev"); naa=$(tw_vpd_naa "$dev")
        [ -n "$serial" ] || fail "$dev ($name) has no unit serial"
        [ -n "$naa" ] || fail "$dev ($name) has no NAA designator: $(sg_inq -p 0x83 "$dev")"
        want=$(tw_status_py "[d['serial'] for d in r['devices'] if d['name'] == '$name'][0]") \
            || fail "ctl status does not list $name"
        [ "$serial" = "$want" ] || fail "$name reports serial $serial, the daemon assigned $want"
        echo "$name $dev serial=$serial naa=$naa"
        serials+=("$serial"); naas+=("$naa")
    done
    [ "$(printf '%s\n' "${serials[@]}" | sort -u | wc -l)" = "${#serials[@]}" ] || fail "two devices share a unit serial: ${serials[*]}"
    [ "$(printf '%s\n' "${naas[@]}" | sort -u | wc -l)" = "${#naas[@]}" ] || fail "two devices share an NAA name: ${naas[*]}"
}

# tw_ctl_status NAME...: the table and the JSON list every device as serving.
tw_ctl_status() {
    local out name
    out=$(tw_ctl status) || fail "ctl status failed"
    echo "$out"
    for name in "$@"; do
        grep -qE "^$name +file +[0-9a-f]{12} +serving" <<<"$out" || fail "$name is not listed as serving"
    done
    tw_ctl status "$1" | tee /dev/stderr | grep -q 'commands  read' || fail "ctl status $1 shows no detail"
    [ "$(tw_status_py "sum(1 for d in r['devices'] if d['state'] == 'serving')")" -ge "$#" ] || fail "JSON status disagrees"
    [ "$(tw_status_py "[d for d in r['devices'] if d['name'] == '$1'][0]['metrics']['commands']")" -gt 0 ] \
        || fail "$1 counted no commands"
}

# tw_ctl_refused: a caller who is neither root nor in the control group gets nothing.
tw_ctl_refused() {
    local out
    if out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$TW_BIN" ctl status 2>&1); then
        fail "an unprivileged caller was served: $out"
    fi
    echo "refused as expected: $out"
    grep -qiE 'permission denied|refused' <<<"$out" || fail "unexpected error: $out"
}

# tw_metrics_http: the Prometheus listener serves every device's counters.
tw_metrics_http() {
    local body
    body=$(python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9725/metrics", timeout=10).read().decode())') \
        || fail "GET /metrics failed"
    grep -m5 'tcmu_wasm_commands_total' <<<"$body"
    grep -qE '^tcmu_wasm_commands_total\{device="disk0",handler="file",class="read"\} [1-9]' <<<"$body" \
        || fail "no read commands counted for disk0"
    grep -q '^# TYPE tcmu_wasm_command_seconds histogram' <<<"$body" || fail "no latency histogram"
}

# tw_ctl_add_remove: a device added at runtime appears as a disk, serves,
# and disappears again with its backstore when removed.
tw_ctl_add_remove() {
    local toml=/tmp/disk3.toml dev
    cat >"$toml" <<'EOF'
[[device]]
name = "disk3"
handler = "file"
size = "16M"
backing = "/tmp/disk3.img"
export = "loopback"
EOF
    tw_ctl add --file "$toml" || fail "ctl add failed"
    dev=$(wait_disk disk3 60) || fail "no disk for the added device"
    echo "disk3 -> $dev"
    c_dd_verify "$dev" 4096 16 9
    tw_ctl remove disk3 || fail "ctl remove failed"
    ! lio_find_backstore disk3 >/dev/null || fail "the backstore of disk3 is still there"
    wait_for 10 test ! -b "$dev" || fail "$dev is still there after the removal"
    ! tw_ctl status disk3 >/dev/null 2>&1 || fail "ctl status still knows disk3"
}

# tw_revision DEV: INQUIRY product revision.
tw_revision() { sg_inq "$1" | sed -n 's/^ *Product revision level: *//p' | tr -d ' '; }

# tw_reload_under_fio NAME DEV: fio writes and verifies (crc32c, backlog
# verification, so reads interleave) while the handler is hot-reloaded back
# and forth between two builds; no I/O may fail and every block must verify.
tw_reload_under_fio() {
    local name=$1 dev=$2 build_b=$TW_FIXTURES/file-build-b.wasm build_a fio_pid n=0 rc out
    build_a=$(tw_status_py "[d['wasm'] for d in r['devices'] if d['name'] == '$name'][0]")
    [ -f "$build_b" ] || fail "no second build at $build_b"
    dmesg -c >/dev/null
    fio --name=reload --filename="$dev" --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite --bs=4k \
        --size=16M --loops=4 --verify=crc32c --verify_backlog=128 --verify_fatal=1 \
        --output="$TW_DIR/fio-reload.txt" &
    fio_pid=$!
    sleep 2
    while kill -0 "$fio_pid" 2>/dev/null && [ "$n" -lt 12 ]; do
        if [ $((n % 2)) = 0 ]; then
            tw_ctl reload --device "$name" --wasm "$build_b" || fail "reload $n to build B failed"
        else
            tw_ctl reload --device "$name" --wasm "$build_a" || fail "reload $n to build A failed"
        fi
        n=$((n + 1))
        sleep 0.5
    done
    wait "$fio_pid"; rc=$?
    out=$(cat "$TW_DIR/fio-reload.txt")
    echo "$out" | tail -n 25
    [ "$rc" = 0 ] || fail "fio failed (rc $rc) across $n reloads"
    [ "$n" -ge 4 ] || fail "only $n reloads happened while fio ran"
    grep -q 'err= 0' <<<"$out" || fail "fio reports errors"
    ! dmesg | grep -iE 'I/O error|critical medium|blk_update_request' || fail "the kernel logged I/O errors"
    result tcmu_wasm.reloads_under_fio "$n" reloads
    # An odd count ends on build B; go back to A for the checks that follow.
    if [ $((n % 2)) = 1 ]; then
        [ "$(tw_revision "$dev")" = 0.1b ] || fail "INQUIRY revision is not build B's after $n reloads"
        tw_ctl reload --device "$name" --wasm "$build_a" || fail "reload back to A failed"
    fi
    [ "$(tw_revision "$dev")" = 0.1 ] || fail "INQUIRY revision is not build A's"
    echo "$n reloads under fio, no I/O error, every block verified"
}

# tw_revision_is DEV REV: the device's INQUIRY revision is REV (asked anew
# each time, so wait_for can poll it).
tw_revision_is() { [ "$(tw_revision "$1")" = "$2" ]; }

# tw_sighup DEV: replace the handler file, SIGHUP reloads it; put it back.
tw_sighup() {
    local dev=$1 path saved=/tmp/file.wasm.orig
    path=$(tw_status_py "r['devices'][0]['wasm']")
    cp "$path" "$saved" || fail "cannot save $path"
    cp "$TW_FIXTURES/file-build-b.wasm" "$path" || fail "cannot replace $path (guest overlay)"
    kill -HUP "$TW_PID"
    wait_for 30 tw_revision_is "$dev" 0.1b || fail "SIGHUP did not reload the changed handler"
    cp "$saved" "$path"
    kill -HUP "$TW_PID"
    wait_for 30 tw_revision_is "$dev" 0.1 || fail "the second SIGHUP did not reload the original"
    cat "$TW_DIR"/daemon*.log | grep -q 'SIGHUP reload' || fail "no SIGHUP reload in the daemon log"
}

# tw_check_config: a handler config the handler refuses fails --check-config.
tw_check_config() {
    local bad=/tmp/bad.toml out
    cat >"$bad" <<'EOF'
[[device]]
name = "bad0"
handler = "file"
config = "block_size=513"
size = "4M"
backing = "/tmp/bad0.img"
export = "loopback"
EOF
    if out=$(NO_COLOR=1 "$TW_BIN" serve --config "$bad" --check-config 2>&1); then
        fail "--check-config accepted block_size=513: $out"
    fi
    echo "$out"
    grep -q 'block_size' <<<"$out" || fail "the error does not name block_size"
    [ ! -e /tmp/bad0.img ] || fail "--check-config created the backing file"
    out=$(NO_COLOR=1 "$TW_BIN" serve --config "$TW_DIR/config.toml" --check-config 2>&1) || fail "the suite's own config fails: $out"
    grep -q 'configuration OK' <<<"$out" || fail "no OK: $out"
}

# tw_kernel_devices BIN CFG: devices created through raw configfs writes (as
# targetcli and `targetctl restore` make them) with dev_config
# wasm/<handler>/<backing>[;option]...: a valid one is served and reports
# the handler config's serial; ones with a backing outside
# kernel_devices.allow_backing or an unknown handler fail their `enable`
# write at once with nothing opened; `ctl remove` refuses one; a daemon
# killed with SIGKILL and started again adopts it with its data; removing
# the backstore through configfs makes the daemon forget it.
# (CFG must list /tmp/kernel-devices in kernel_devices.allow_backing.)
tw_kernel_devices() {
    local bin=$1 cfg=$2 dir=/tmp/kernel-devices hba=7 bs wwn dev out log=$TW_DIR/daemon.kd-restarted.log
    mkdir -p "$dir"
    bs=$(lio_user_create $hba kd0 "wasm/file/$dir/kd0.img;config=serial=KD0SERIAL" 33554432) \
        || fail "enabling a valid configfs-created device failed: $(tail -n 3 "$TW_DIR/daemon.log")"
    wwn=$(lio_loop_export "$bs") || fail "exporting kd0 through tcm_loop failed"
    dev=$(wait_disk kd0 60) || fail "no disk for kd0"
    echo "kd0 -> $dev ($bs)"
    [ "$(tw_vpd_serial "$dev")" = KD0SERIAL ] || fail "kd0 reports serial '$(tw_vpd_serial "$dev")', not its config's"
    [ "$(stat -c %s "$dir/kd0.img")" = 33554432 ] || fail "kd0's backing is not 32 MiB"
    c_dd_verify "$dev" 4096 64 21
    head -c 262144 /dev/urandom >/tmp/kd0.pattern
    dd if=/tmp/kd0.pattern of="$dev" bs=4096 seek=300 oflag=direct conv=fsync status=none || fail "writing kd0 failed"
    [ "$(tw_status_py "[d['origin'] for d in r['devices'] if d['name'] == 'kd0'][0]")" = kernel ] \
        || fail "ctl status does not show kd0 as created through configfs"
    if out=$(tw_ctl remove kd0 2>&1); then fail "ctl remove took a configfs-created device: $out"; fi
    grep -q configfs <<<"$out" || fail "ctl remove refused kd0 without saying why: $out"

    # Refused: the enable write fails, quickly, and nothing is created.
    local bad cfgs=("wasm/file//etc/kd1.img" "wasm/file/$dir/../kd1.img" "wasm/no-such-handler/$dir/kd1.img" "wasm/file/$dir/kd1.img;colour=red")
    for bad in "${cfgs[@]}"; do
        mkdir -p "$CFS/core/user_$hba/kd1"
        echo "dev_config=$bad,dev_size=16777216" >"$CFS/core/user_$hba/kd1/control" || fail "writing control for $bad"
        if timeout 60 sh -c "echo 1 >'$CFS/core/user_$hba/kd1/enable'" 2>/dev/null; then
            fail "the kernel enabled a device with dev_config $bad"
        fi
        rmdir "$CFS/core/user_$hba/kd1" || fail "cannot remove the refused backstore ($bad)"
        echo "refused: $bad"
    done
    [ ! -e /etc/kd1.img ] && [ ! -e "$dir/kd1.img" ] && [ ! -e /tmp/kd1.img ] || fail "a refused device's backing was created"
    cat "$TW_DIR"/daemon*.log | grep -q 'outside kernel_devices.allow_backing' || fail "the log does not say why /etc was refused"
    cat "$TW_DIR"/daemon*.log | grep -q 'no handler named "no-such-handler"' || fail "the log does not name the unknown handler"

    # A restarted daemon adopts it; the data is still there.
    kill -KILL "$TW_PID"
    wait_for 10 pid_gone "$TW_PID" || fail "daemon survived SIGKILL"
    NO_COLOR=1 "$bin" serve --config "$cfg" ${TCMU_WASM_ARGS:-} >"$log" 2>&1 &
    vm_set TW_PID $!
    wait_for 60 grep -q 'serving; SIGINT' "$log" || { tail -n 20 "$log"; fail "restarted daemon did not come up"; }
    grep -q 'adopted a device created through configfs' "$log" || { tail -n 20 "$log"; fail "the restarted daemon did not adopt kd0"; }
    dd if="$dev" of=/tmp/kd0.readback bs=4096 skip=300 count=64 iflag=direct status=none || fail "reading kd0 after the restart failed"
    cmp /tmp/kd0.pattern /tmp/kd0.readback || fail "kd0 lost its data across the restart"
    cmp -n 262144 /tmp/kd0.pattern <(dd if="$dir/kd0.img" bs=4096 skip=300 count=64 status=none) \
        || fail "kd0's backing file does not hold what was written"
    cat "$log" >>"$TW_DIR/daemon.log"

    # Its creator removes it; the daemon lets go.
    lio_loop_unexport "$wwn" || fail "unexporting kd0 failed"
    lio_user_delete "$bs" || fail "removing kd0's backstore failed (the daemon did not answer REMOVED?)"
    wait_for 10 sh -c "! NO_COLOR=1 RUST_LOG=warn '$TW_BIN' ctl status kd0 >/dev/null 2>&1" \
        || fail "the daemon still lists kd0 after its backstore went"
    [ -f "$dir/kd0.img" ] || fail "removing the device deleted its backing file"
}

# After a failed tw_kernel_devices: take down what it created.
tw_kernel_devices_cleanup() {
    local link bs
    for link in "$CFS"/loopback/naa.*/tpgt_*/lun/lun_*/kd0; do
        [ -L "$link" ] && lio_loop_unexport "$(echo "$link" | sed -n 's|.*/loopback/\([^/]*\)/.*|\1|p')"
    done
    for bs in "$CFS"/core/user_7/kd0 "$CFS"/core/user_7/kd1; do
        [ -d "$bs" ] && lio_user_delete "$bs"
    done
    return 0
}

# tw_system_bus: a system D-Bus in the guest with the shipped policy, so
# that the daemon (started after it) owns org.kernel.TCMUService1.
tw_system_bus() {
    command -v dbus-daemon >/dev/null || { echo "no dbus-daemon"; return 1; }
    mkdir -p /run/dbus /etc/dbus-1/system.d
    cp "$VM_REPO/packaging/dbus/org.kernel.TCMUService1.conf" /etc/dbus-1/system.d/ || return 1
    [ -s /etc/machine-id ] || dbus-uuidgen >/etc/machine-id
    dbus-daemon --system --fork || return 1
    wait_for 10 test -S /run/dbus/system_bus_socket || { echo "the system bus did not come up"; return 1; }
    echo "system bus up"
}

# tw_restart_daemon BIN CFG LOG: SIGTERM the daemon, start BIN with CFG.
tw_restart_daemon() {
    local bin=$1 cfg=$2 log=$3
    kill -TERM "$TW_PID"
    wait_for 60 pid_gone "$TW_PID" || fail "daemon still running 60s after SIGTERM"
    NO_COLOR=1 "$bin" serve --config "$cfg" >"$log" 2>&1 &
    vm_set TW_PID $!
    wait_for 60 grep -q 'serving; SIGINT' "$log" || { tail -n 20 "$log"; fail "the daemon did not come up with $cfg"; }
}

# tw_targetcli BIN CFG: targetcli manages tcmu-wasm devices through the
# daemon's org.kernel.TCMUService1: `ls` shows /backstores/user:wasm,
# `help create` its ConfigDesc, `create` refuses a cfgstring outside the
# allow-list and makes a disk and an empty optical drive, `changemedium`
# puts a disc in the drive that the initiator then reads, and `targetctl
# save`, a daemon restart, `targetctl clear` and `targetctl restore` bring
# the disk back with its data. Ends with the daemon on CFG again.
tw_targetcli() {
    local bin=$1 cfg=$2 dir=/tmp/kernel-devices out wwn dev sr save=/tmp/saveconfig.json
    local mini=/tmp/kernel-only.toml log=$TW_DIR/daemon.targetcli.log
    cat "$TW_DIR"/daemon*.log | grep -q 'D-Bus service up' \
        || fail "the daemon did not own org.kernel.TCMUService1: $(cat "$TW_DIR"/daemon*.log | grep -m1 -i 'd-bus')"
    mkdir -p "$dir"
    out=$(targetcli ls /backstores 2>&1); echo "$out"
    grep -q 'user:wasm' <<<"$out" || fail "targetcli lists no /backstores/user:wasm"
    targetcli /backstores/user:wasm help create | grep -q 'handler: one of' || fail "help create does not show the ConfigDesc"
    # The handlers' own keys (WIT 0.2.3 config-help), once the daemon has loaded them all.
    wait_for 90 sh -c "targetcli /backstores/user:wasm help create | grep -q 'block_size=512|1024|2048|4096'" \
        || fail "help create does not show the file handler's config keys: $(targetcli /backstores/user:wasm help create | tail -n 5)"
    if out=$(targetcli /backstores/user:wasm create name=tcbad size=16M cfgstring=file//etc/tcbad.img 2>&1); then
        fail "targetcli created a device whose backing is outside the allow-list: $out"
    fi
    grep -q 'allow_backing' <<<"$out" || fail "the refusal does not say why: $out"
    targetcli /backstores/user:wasm create name=tc0 size=32M "cfgstring=file/$dir/tc0.img;config=serial=TC0" \
        || fail "targetcli create of a disk failed"
    targetcli /backstores/user:wasm create name=tcdvd size=1M cfgstring=optical/ || fail "targetcli create of a drive failed"
    out=$(targetcli ls /backstores/user:wasm); echo "$out"
    grep -q 'tc0' <<<"$out" && grep -q 'tcdvd' <<<"$out" || fail "targetcli ls does not show the new devices"
    out=$(targetcli /loopback create) || fail "targetcli /loopback create failed"
    wwn=$(grep -o 'naa\.[0-9a-f]*' <<<"$out" | head -n 1)
    [ -n "$wwn" ] || fail "no WWN in: $out"
    targetcli "/loopback/$wwn/luns" create /backstores/user:wasm/tc0 || fail "LUN for tc0"
    targetcli "/loopback/$wwn/luns" create /backstores/user:wasm/tcdvd || fail "LUN for tcdvd"
    dev=$(wait_disk tc0 60) || fail "no disk for tc0"
    sr=$(wait_disk tcdvd 60) || fail "no device for tcdvd"
    echo "tc0 -> $dev, tcdvd -> $sr"
    [ "$(tw_vpd_serial "$dev")" = TC0 ] || fail "tc0 reports serial '$(tw_vpd_serial "$dev")'"
    head -c 1048576 /dev/urandom >/tmp/tc0.pattern
    dd if=/tmp/tc0.pattern of="$dev" bs=65536 seek=16 oflag=direct conv=fsync status=none || fail "writing tc0 failed"

    # changemedium: a disc in the drive, read by the initiator.
    mkdir -p /tmp/tcdisc && echo "disc for tcdvd $RANDOM" >/tmp/tcdisc/hello.txt
    xorriso -as mkisofs -quiet -V TCDISC -o "$dir/disc.iso" /tmp/tcdisc || fail "cannot make an ISO"
    out=$(targetcli /backstores/user:wasm changemedium tcdvd 1M "optical/$dir/disc.iso" 2>&1); echo "$out"
    grep -qi 'medium changed' <<<"$out" || fail "changemedium failed: $out"
    cmp <(dd if="$dir/disc.iso" bs=2048 skip=16 count=1 status=none) \
        <(wait_for 30 sh -c "dd if='$sr' bs=2048 skip=16 count=1 status=none 2>/dev/null | grep -q TCDISC" \
          && dd if="$sr" bs=2048 skip=16 count=1 status=none) || fail "the initiator does not read the new disc"
    if out=$(targetcli /backstores/user:wasm changemedium tcdvd 1M optical//etc/passwd 2>&1); then
        fail "changemedium loaded a file outside the allow-list: $out"
    fi

    # targetctl save; the daemon stops (keeping them) and comes back with no
    # devices of its own; clear; restore: the disk is back with its data.
    targetctl save "$save" || fail "targetctl save failed"
    grep -q "wasm/file/$dir/tc0.img" "$save" || fail "the saved config has no tc0: $(grep -c config "$save")"
    printf '[kernel_devices]\nallow_backing = ["%s"]\n' "$dir" >"$mini"
    tw_restart_daemon "$bin" "$mini" "$log"
    targetctl clear || fail "targetctl clear failed"
    ! lio_find_backstore tc0 >/dev/null || fail "tc0 survived targetctl clear"
    targetctl restore "$save" || fail "targetctl restore failed: $(tail -n 5 "$log")"
    grep -q 'serving a device created through configfs device=tc0' "$log" || fail "the daemon did not serve the restored tc0"
    dev=$(wait_disk tc0 60) || fail "no disk for the restored tc0"
    cmp /tmp/tc0.pattern <(dd if="$dev" bs=65536 skip=16 count=16 iflag=direct status=none) \
        || fail "the restored tc0 lost its data"
    echo "restored tc0 -> $dev with its data"

    # Their creator removes them; the daemon lets go; the suite's daemon returns.
    targetctl clear || fail "the final targetctl clear failed"
    wait_for 10 sh -c "! NO_COLOR=1 RUST_LOG=warn '$TW_BIN' ctl status tc0 >/dev/null 2>&1" || fail "the daemon still lists tc0"
    tw_restart_daemon "$bin" "$cfg" "$TW_DIR/daemon.after-targetcli.log"
    cat "$log" "$TW_DIR/daemon.after-targetcli.log" >>"$TW_DIR/daemon.log"
}
