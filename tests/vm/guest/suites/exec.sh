# shellcheck shell=bash
# Suite "exec": the prelude, then the shell command in VM_EXEC (run.sh
# --exec CMD); PASS when it exits 0.  Its output is in logs/exec.log.  For
# poking at the kernel by hand, e.g.
#   tests/vm/run.sh --exec 'target/release/tcmu-wasm serve --config x.toml & sleep 20; lsscsi'
# The working directory is the repository (VM_REPO).

suite_main() {
    [ -n "${VM_EXEC:-}" ] || { check_fail exec "VM_EXEC is empty"; return; }
    cd "$VM_REPO" || return
    run_check exec bash -c "$VM_EXEC"
    cat "$VM_LOGS/exec.log"
}
