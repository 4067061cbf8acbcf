#!/usr/bin/env bash
# The project's test command (README; .ci/run calls it):
#   0. hygiene: rustfmt, shellcheck on the scripts, clippy -D warnings on every
#      target, and the daemon built without its dev tools (--no-default-features);
#   1. one release build of the whole workspace, then every Rust test in it
#      (ring + simulator properties, sandbox containment, hot reload, control
#      socket, file handler conformance through wasm, SDK, handler);
#   2. `tcmu-wasm check --handler file|tape|changer|optical`, the conformance suites as
#      a user runs them, and the same for c-disk, the handler written in C
#      (handlers-wasm/c-disk/build.sh: Debian's clang-16 and wasi-libc);
#   3. the real-kernel VM suites (tests/vm/run.sh): Debian's kernel under qemu,
#      our daemon serving disks through LIO to real SCSI clients (sg3_utils,
#      dd, mkfs/e2fsck, resize, kill -9 + restart, the control socket, hot
#      reload under fio, libiscsi's iscsi-test-cu over LIO iSCSI), the tape
#      library of examples/vtl.toml with mtx, mt-st, tar, dd, sg3_utils and
#      Bacula's btape, an optical drive with mount, eject, sg3_utils,
#      dvd+rw-mediainfo, xorriso, cdrskin, wodim, cd-info and DVD+R burns by
#      growisofs and xorriso; then, in a second boot, the side-by-side
#      throughput run against tcmu-runner and the latency suite (a dm-delay
#      device behind iblock, tcmu-wasm with direct = true, and tcmu-runner;
#      fio with verified data; the figures are reported, not judged); then the
#      main job's serving mode (tests/vm/serve-check.sh: scripts/serve.sh's VM
#      serving examples/disk0.toml over iSCSI on 127.0.0.1, used from the host
#      with libiscsi's clients, stopped as Ctrl-C stops it).
# Set TCMU_WASM_SKIP_VM=1 to skip step 3 (e.g. on a laptop without qemu),
# TCMU_WASM_SKIP_LINT=1 to skip step 0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${TCMU_WASM_SKIP_LINT:-0}" != 1 ]; then
    cargo fmt --all --check
    if ! command -v shellcheck >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
        fi
    fi
    if command -v shellcheck >/dev/null; then
        # Every script .ci/run reaches (the guest libraries are sourced, hence -x).
        shellcheck -x -S warning .ci/run tests/run.sh scripts/*.sh tests/vm/*.sh tests/vm/initramfs/init \
            tests/vm/guest/*.sh tests/vm/guest/lib/*.sh tests/vm/guest/suites/*.sh tests/vm/guest/tools/*.sh \
            handlers-wasm/c-disk/build.sh
    else
        echo "tests/run.sh: shellcheck not installed (and not root to apt-get it); skipped" >&2
    fi
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    cargo check -p tcmu-wasm --no-default-features --quiet
fi

# The D-Bus service's tests run a private dbus-daemon (Debian: dbus).
if ! command -v dbus-daemon >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dbus >/dev/null
fi

# One build: the tests and the binary the later steps run share it (a later
# `cargo run -p tcmu-wasm` would resolve other features and rebuild wasmtime).
cargo build --workspace --release --all-targets
cargo test --workspace --release
target/release/tcmu-wasm check --handler file --config serial=ci0
target/release/tcmu-wasm check --handler tape
target/release/tcmu-wasm check --handler changer
target/release/tcmu-wasm check --handler optical
# The handler in C (docs/handlers.md), checked like the others.
handlers-wasm/c-disk/build.sh >/dev/null
target/release/tcmu-wasm check --handler target/c-disk/c-disk.wasm
target/release/tcmu-wasm check --handler target/c-disk/c-disk.wasm --config ro

if [ "${TCMU_WASM_SKIP_VM:-0}" = 1 ]; then
    echo "tests/run.sh: VM suite skipped (TCMU_WASM_SKIP_VM=1)"
    exit 0
fi
# The first boot's daemon is the Debian package, installed with dpkg -i.
TCMU_WASM_DEB=$(scripts/package-deb.sh --no-build --out target/deb | tail -n 1)
export TCMU_WASM_DEB
# The disks, the tape library and the optical drive in one boot (the
# library's suite takes about 15 minutes under emulation, amtapetype 6 of
# them; the optical suite about one).
tests/vm/run.sh --suite tcmu-wasm+vtl+optical --iscsi --timeout 2400
# Shorter fio runs than the defaults (3 s, not 5): the figures stay
# comparable within a run and the boot fits the CI budget.
VM_LAT_SECS=3 VM_RAND_SECS=3 tests/vm/run.sh --suite compare+latency --timeout 1800
tests/vm/serve-check.sh --timeout 900
