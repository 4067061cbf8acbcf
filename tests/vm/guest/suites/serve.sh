# shellcheck shell=bash
# Suite "serve": what scripts/serve.sh runs on a machine without LIO. The
# daemon serves the config's devices; one iSCSI target exports them all, one
# LUN each, on the VM's network address, which run.sh forwards to
# 127.0.0.1:<port> on the host (user-mode networking, loopback only). Runs
# until the host asks it to stop (VM_SERVE dir: stop), or, with
# VM_SERVE_SHELL=1, until the interactive shell on the console exits; then
# takes the target down and stops the daemon, which removes its devices.
#
# Inputs (job.env):
#   TCMU_WASM_BIN     daemon [default: the build tree's target/release/tcmu-wasm]
#   TCMU_WASM_CONFIG  config [default: examples/disk0.toml]
#   VM_SERVE_PORT     the host port the target is reachable on (for the URLs)
#   VM_SERVE_SHELL=1  an interactive shell on the console instead of waiting
# The host's serve directory is the 9p share "serve", mounted at /vmserve:
#   state/    mounted over /var/lib/tcmu-wasm, so backing files there persist
#   ready     written once the devices are exported: one URL line per device
#   stop      the host creates it to end the session
#   stopped   written after a clean teardown

SERVE_IQN=iqn.2026-12.org.tcmu-wasm:vm
SERVE_ADDR=10.0.2.15
SERVE_DIR=/vmserve

# shellcheck source-path=SCRIPTDIR source=tcmu-wasm.sh
. "$GUEST_DIR/suites/tcmu-wasm.sh"

serve_mounts() {
    mkdir -p "$SERVE_DIR"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none serve "$SERVE_DIR" \
        || fail "no 9p share \"serve\" (run.sh --serve-dir)"
    mkdir -p "$SERVE_DIR/state" /var/lib/tcmu-wasm
    mount --bind "$SERVE_DIR/state" /var/lib/tcmu-wasm || fail "cannot bind the state directory"
    rm -f "$SERVE_DIR/ready" "$SERVE_DIR/stopped"
}

serve_network() {
    local ifc
    modprobe virtio_net || fail "modprobe virtio_net"
    ifc=$(for d in /sys/class/net/*; do [ "${d##*/}" = lo ] || echo "${d##*/}"; done | head -1)
    [ -n "$ifc" ] || fail "no network interface (run.sh --serve-port adds one)"
    ip link set "$ifc" up && ip addr add "$SERVE_ADDR/24" dev "$ifc" || fail "cannot configure $ifc"
    echo "$ifc: $SERVE_ADDR/24"
}

# serve_export NAME...: one demo-mode target, LUN i for the i-th device.
serve_export() {
    local t=$CFS/iscsi/$SERVE_IQN/tpgt_1 lun=0 name bs
    mkdir -p "$t/np/$SERVE_ADDR:3260" || fail "cannot create the portal $SERVE_ADDR:3260"
    for name in "$@"; do
        wait_for "${TCMU_WASM_WAIT:-120}" lio_find_backstore "$name" || fail "device $name did not appear: $(tw_log_reason)"
        bs=$(lio_find_backstore "$name")
        mkdir -p "$t/lun/lun_$lun" && ln -s "$bs" "$t/lun/lun_$lun/$name" || fail "cannot map $name to LUN $lun"
        lun=$((lun + 1))
    done
    echo 1 >"$t/attrib/generate_node_acls"
    echo 1 >"$t/attrib/cache_dynamic_acls"
    echo 0 >"$t/attrib/demo_mode_write_protect"
    echo 0 >"$t/attrib/authentication"
    echo 1 >"$t/enable" || fail "cannot enable the target"
}

serve_unexport() {
    local t=$CFS/iscsi/$SERVE_IQN/tpgt_1 l link np
    [ -d "$t" ] || return 0
    echo 0 >"$t/enable"
    for np in "$t"/np/*; do [ -d "$np" ] && rmdir "$np"; done
    for l in "$t"/lun/lun_*; do
        [ -d "$l" ] || continue
        for link in "$l"/*; do [ -L "$link" ] && unlink "$link"; done
        rmdir "$l"
    done
    rmdir "$t" && rmdir "$CFS/iscsi/$SERVE_IQN"
}

serve_urls() {
    local lun=0 name size backing export_ local_dev
    while IFS=$'\t' read -r name size backing export_; do
        local_dev=
        [ "$export_" = loopback ] && local_dev=$(lio_loop_disk_of "$name")
        printf 'iscsi://127.0.0.1:%s/%s/%s\t%s\t%s\t%s\n' "${VM_SERVE_PORT:-3260}" "$SERVE_IQN" "$lun" \
            "$name" "${size:-?}" "${local_dev:-}"
        lun=$((lun + 1))
    done < <(tw_devices "$1")
}

serve_shell() {
    vm_say "serve: interactive shell on the console; 'exit' ends the session"
    {
        echo
        echo "tcmu-wasm VM: the devices are attached (lsscsi; mt -f /dev/nst0; mtx -f /dev/sgN; sr as /dev/sr0)."
        echo "The daemon: $TW_BIN ctl status. exit ends the session and powers the VM off."
    } >/dev/ttyS0
    TERM=${SERVE_TERM:-linux} PS1='tcmu-wasm-vm# ' setsid -c bash --norc -i </dev/ttyS0 >/dev/ttyS0 2>&1
}

serve_wait() {
    vm_say "serve: serving until the host asks to stop"
    while [ ! -e "$SERVE_DIR/stop" ]; do
        pid_alive "$TW_PID" || { check_fail serve.daemon "the daemon exited: $(tw_log_reason)"; return 1; }
        sleep 1
    done
    vm_say "serve: stop requested"
}

suite_main() {
    local bin=${TCMU_WASM_BIN:-$VM_REPO/target/release/tcmu-wasm}
    local cfg=${TCMU_WASM_CONFIG:-$VM_REPO/examples/disk0.toml} names=() name size backing export_
    TW_BIN=$bin
    run_check serve.mounts serve_mounts || return
    run_check serve.network serve_network || return
    run_check serve.start tw_start "$bin" "$cfg" || return
    while IFS=$'\t' read -r name size backing export_; do names+=("$name"); done < <(tw_devices "$cfg")
    if run_check serve.export serve_export "${names[@]}"; then
        serve_urls "$cfg" >"$SERVE_DIR/ready.tmp" && mv "$SERVE_DIR/ready.tmp" "$SERVE_DIR/ready"
        while IFS=$'\t' read -r url name size local_dev; do
            vm_say "serve: $name ($size) $url${local_dev:+ (in the VM: $local_dev)}"
        done <"$SERVE_DIR/ready"
        if [ "${VM_SERVE_SHELL:-0}" = 1 ]; then serve_shell; else serve_wait; fi
    fi
    run_check serve.unexport serve_unexport
    run_check serve.stop tw_stop
    run_check serve.cleaned_up tw_cleaned_up
    : >"$SERVE_DIR/stopped"
}
