#!/bin/bash
# Stand-in for `tcmu-wasm serve --config FILE`, to test the VM harness's
# tcmu-wasm suite without the real daemon:
#   TCMU_WASM_BIN=$PWD/tests/vm/guest/tools/fake-tcmu-wasm.sh tests/vm/run.sh --suite tcmu-wasm
# It serves every [[device]] with export = "loopback" through Debian's
# tcmu-runner (qcow handler, raw backing file), and on SIGTERM removes what
# it created and exits 0, as the real daemon is expected to.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export VM_LOGS=/tmp/fake-logs VM_RESULTS=/tmp/fake-results.txt VM_STATE=/tmp/fake-state.sh
. "$HERE/lib/common.sh"
. "$HERE/lib/lio.sh"
. "$HERE/suites/tcmu-wasm.sh"

[ "${1:-}" = serve ] && [ "${2:-}" = --config ] && [ -n "${3:-}" ] \
    || { echo "usage: $0 serve --config FILE" >&2; exit 2; }
cfg=$3

tcmu-runner -l /tmp/fake-tcmu-runner >/tmp/fake-tcmu-runner.out 2>&1 &
runner=$!
wait_for 60 tcmu_daemon_registered || { echo "tcmu-runner did not start" >&2; exit 1; }

wwns=() stores=() hba=10
cleanup() {
    local w b
    for w in "${wwns[@]}"; do lio_loop_unexport "$w"; done
    sleep 1
    for b in "${stores[@]}"; do lio_user_delete "$b"; done
    kill "$runner" 2>/dev/null
    echo "fake: stopped"
    exit 0
}
trap cleanup TERM INT

while IFS=$'\t' read -r name size backing export_; do
    [ "$export_" = loopback ] || continue
    bytes=$(to_bytes "$size")
    [ -e "$backing" ] || truncate -s "$bytes" "$backing"
    bs=$(lio_user_create "$hba" "$name" "qcow/$backing" "$bytes") || { echo "fake: backstore $name failed" >&2; cleanup; }
    stores+=("$bs")
    w=$(lio_loop_export "$bs") || { echo "fake: export $name failed" >&2; cleanup; }
    wwns+=("$w")
    echo "fake: $name served ($bs, $w)"
done < <(tw_devices "$cfg")

while :; do sleep 1 & wait $!; done
