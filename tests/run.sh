#!/usr/bin/env bash
# The project's test command (README; .ci/run calls it):
#   1. every Rust test in the workspace (ring + simulator properties, sandbox
#      containment, file handler conformance through wasm, SDK, handler);
#   2. `tcmu-wasm check --handler file`, the conformance suite as a user runs it;
#   3. the real-kernel VM suites (tests/vm/run.sh): Debian's kernel under qemu,
#      our daemon serving a disk through LIO to real SCSI clients (sg3_utils,
#      dd, mkfs/e2fsck, resize, kill -9 + restart, libiscsi's iscsi-test-cu over
#      LIO iSCSI), then the side-by-side throughput run against tcmu-runner.
# Set TCMU_WASM_SKIP_VM=1 to skip step 3 (e.g. on a laptop without qemu).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo test --workspace --release
cargo run --release --quiet -p tcmu-wasm -- check --handler file --config serial=ci0

if [ "${TCMU_WASM_SKIP_VM:-0}" = 1 ]; then
    echo "tests/run.sh: VM suite skipped (TCMU_WASM_SKIP_VM=1)"
    exit 0
fi
tests/vm/run.sh --suite tcmu-wasm --iscsi
tests/vm/run.sh --suite compare
