#!/usr/bin/env bash
# The main job: build tcmu-wasm and serve disks.
#   scripts/serve.sh [CONFIG]      (default examples/disk0.toml)
# On a host with LIO (target_core_user, tcm_loop) it runs the daemon for real
# until Ctrl-C; the disk appears as /dev/sdX. On a host without those modules
# (like our build machines) it boots Debian's kernel under qemu, serves the
# disk there with the same daemon and drives it with real SCSI clients.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIG=${1:-examples/disk0.toml}

# The same build as tests/run.sh (one wasmtime build serves both).
cargo build --release --workspace --all-targets
BIN=target/release/tcmu-wasm

if modprobe -q target_core_user 2>/dev/null && modprobe -q tcm_loop 2>/dev/null \
    && [ -d /sys/kernel/config/target/core ]; then
    # Backing files live where the config says; make their directories.
    grep -E '^\s*backing\s*=' "$CONFIG" | sed -E 's/.*=\s*"(.*)".*/\1/' | while read -r f; do
        mkdir -p "$(dirname "$f")"
    done
    echo "serving $CONFIG (Ctrl-C stops and removes the devices)"
    exec "$BIN" serve --config "$CONFIG"
fi

echo "no LIO kernel modules here: serving the disk inside a qemu VM with real clients"
if [ $# -gt 0 ]; then
    export TCMU_WASM_CONFIG
    TCMU_WASM_CONFIG=$(realpath "$CONFIG")
fi
exec tests/vm/run.sh --suite tcmu-wasm
