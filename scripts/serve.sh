#!/usr/bin/env bash
# The main job: build tcmu-wasm and serve the devices of a config.
#
#   scripts/serve.sh [CONFIG] [--port PORT] [--shell] [--check] [--state DIR]
#
# CONFIG defaults to examples/disk0.toml (one 64 MiB disk).
#
# On a host with LIO (target_core_user, tcm_loop) it runs the daemon for
# real until Ctrl-C; a loopback disk appears as /dev/sdX.
#
# On a host without those modules (like our build machines) it boots
# Debian's kernel under qemu and serves there until Ctrl-C: every device of
# the config is a LUN of one iSCSI target the VM exports on
# 127.0.0.1:PORT (default 3260; loopback only, nothing else reaches the VM).
# It prints the iscsi:// URLs for your initiator (iscsi-inq, qemu's iscsi://
# driver, a kernel initiator). Backing files under /var/lib/tcmu-wasm are
# kept in DIR (default tests/vm/work/serve/state) across sessions.
#   --shell   an interactive shell in the VM, with the devices attached
#             (tape and optical clients: mt, mtx, xorriso...); exit ends it
#   --check   the scripted check instead: boot, run the client suite, power off
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIG=examples/disk0.toml
PORT=3260
SHELL_MODE=0
CHECK=0
STATE=tests/vm/work/serve
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT=$2; shift 2 ;;
        --shell) SHELL_MODE=1; shift ;;
        --check) CHECK=1; shift ;;
        --state) STATE=$2; shift 2 ;;
        -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "serve.sh: unknown option $1" >&2; exit 2 ;;
        *) CONFIG=$1; shift ;;
    esac
done
[ -f "$CONFIG" ] || { echo "serve.sh: no config $CONFIG" >&2; exit 2; }

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

export TCMU_WASM_CONFIG
TCMU_WASM_CONFIG=$(realpath "$CONFIG")
if [ "$CHECK" = 1 ]; then
    echo "no LIO kernel modules here: checking $CONFIG inside a qemu VM with real clients"
    exec tests/vm/run.sh --suite tcmu-wasm
fi
if ! python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
    echo "serve.sh: 127.0.0.1:$PORT is in use (an iSCSI target on this host?); pick another with --port" >&2
    exit 2
fi
echo "no LIO kernel modules here: serving $CONFIG inside a qemu VM on 127.0.0.1:$PORT (booting takes a minute or two)"
args=(--suite serve --serve-dir "$STATE" --serve-port "$PORT" --timeout 0)
[ "$SHELL_MODE" = 1 ] && args+=(--shell)
exec tests/vm/run.sh "${args[@]}"
