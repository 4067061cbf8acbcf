#!/usr/bin/env bash
# Boot Debian's kernel under qemu (TCG) and run a guest test suite against
# real LIO / target_core_user.  See tests/vm/README.md.
#
#   tests/vm/run.sh [--suite NAME]... [--iscsi] [--iscsi-tests SPEC]
#                   [--timeout SECS] [--no-install] [--verbose] [--exec CMD]
#                   [--serve-dir DIR --serve-port PORT [--shell]]
#
# Exit status: 0 when every CHECK passed, 1 when any failed (or the guest did
# not finish), 2 on a usage or setup error.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${VM_WORK:-$HERE/work}

SUITES=()
ISCSI=${VM_ISCSI:-0}
ISCSI_TESTS=${VM_ISCSI_TESTS:-SCSI}
TIMEOUT=${VM_TIMEOUT:-}
INSTALL=${VM_INSTALL:-1}
VERBOSE=${VM_VERBOSE:-0}
MEM=${VM_MEM:-4096}
SMP=${VM_SMP:-2}
SERVE_DIR=${VM_SERVE_DIR:-}
SERVE_PORT=${VM_SERVE_PORT:-}
SHELL_MODE=0

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Suites (one VM boot each, in order): baseline (Debian's tcmu-runner, qcow
  handler on a raw image), tcmu-wasm (tcmu-wasm serve --config FILE),
  vtl (the tape library of examples/vtl.toml with mtx, mt-st, tar, btape,
  amtapetype), optical (a DVD drive with mount, eject, sg3_utils,
  dvd+rw-mediainfo, xorriso, cdrskin, wodim, cd-info, growisofs), compare (benchmark),
  latency (iblock vs tcmu-runner vs tcmu-wasm on a dm-delay RAM disk; give it
  --timeout 1800), exec (--exec CMD: the prelude, then CMD), serve (the
  config's devices over iSCSI until DIR/stop appears; with --shell until the
  console's shell exits: what scripts/serve.sh runs). "a+b" runs suites a
  and b in one boot.
--serve-dir DIR shares DIR with the guest (the serve suite's state/, ready,
  stop); --serve-port PORT adds a user-mode NIC whose guest port 3260 is
  forwarded to 127.0.0.1:PORT on the host (nothing else reaches the guest);
  --shell attaches the console to this terminal (Ctrl-A X kills the VM).
Environment: VM_SUITES (comma list), VM_ISCSI=1, VM_ISCSI_TESTS (default
  SCSI), VM_TIMEOUT, VM_INSTALL=0, VM_VERBOSE=1, VM_MEM, VM_SMP, VM_WORK,
  KERNEL_PKG, TCMU_WASM_BIN, TCMU_WASM_DEB, TCMU_WASM_CONFIG, TCMU_WASM_ARGS, TCMU_WASM_WAIT,
  TCMU_WASM_PRECREATE, TCMU_WASM_SIGTERM, VM_DISK_SIZE, VM_SEQ_MB,
  VM_RAND_SECS, VM_QUICK=1 (skip the throughput measurement and amtapetype),
  VM_COMPARE_ROUNDS, VM_LAT_SIZE, VM_LAT_DELAY_MS, VM_LAT_SECS, VM_LAT_VERIFY_MB,
  VM_LAT_RUNNER=0, VM_LAT_ENFORCE=1, RUST_LOG.
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --suite) SUITES+=("$2"); shift 2 ;;
        --suite=*) SUITES+=("${1#*=}"); shift ;;
        --iscsi) ISCSI=1; shift ;;
        --no-iscsi) ISCSI=0; shift ;;
        --iscsi-tests) ISCSI=1; ISCSI_TESTS=$2; shift 2 ;;
        --iscsi-tests=*) ISCSI=1; ISCSI_TESTS=${1#*=}; shift ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --no-install) INSTALL=0; shift ;;
        --exec) SUITES+=(exec); VM_EXEC=$2; export VM_EXEC; shift 2 ;;
        --serve-dir) SERVE_DIR=$2; shift 2 ;;
        --serve-port) SERVE_PORT=$2; shift 2 ;;
        --shell) SHELL_MODE=1; shift ;;
        --verbose|-v) VERBOSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [ ${#SUITES[@]} -eq 0 ]; then
    IFS=',' read -r -a SUITES <<<"${VM_SUITES:-baseline}"
fi
for s in "${SUITES[@]}"; do
    # "a+b": suites a and b in one boot, in order.
    for part in ${s//+/ }; do
        [ -f "$HERE/guest/suites/$part.sh" ] || { echo "run.sh: no suite '$part' (tests/vm/guest/suites/$part.sh)" >&2; exit 2; }
    done
done
# The guest sees the host's tree at the same absolute paths.
for v in TCMU_WASM_BIN TCMU_WASM_DEB TCMU_WASM_CONFIG; do
    if [ -n "${!v:-}" ] && [ "${!v#/}" = "${!v}" ]; then
        printf -v "$v" '%s' "$(realpath -m "${!v}")"
        export "${v?}"
    fi
done
if [ -n "$SERVE_DIR" ]; then
    mkdir -p "$SERVE_DIR"
    SERVE_DIR=$(realpath "$SERVE_DIR")
    rm -f "$SERVE_DIR/stop" "$SERVE_DIR/ready" "$SERVE_DIR/stopped"
fi
if [ -n "$SERVE_PORT" ] && ! [[ "$SERVE_PORT" =~ ^[0-9]+$ && "$SERVE_PORT" -ge 1 && "$SERVE_PORT" -le 65535 ]]; then
    echo "run.sh: --serve-port must be a TCP port, got '$SERVE_PORT'" >&2; exit 2
fi
if [ -z "$TIMEOUT" ]; then
    # Per boot.  The iSCSI conformance run alone takes 2-4 min under TCG.
    if [ "$ISCSI" = 1 ]; then TIMEOUT=1200; else TIMEOUT=600; fi
    # The latency suite: some 25 fio runs on four sides, tcmu-wasm's start.
    case " ${SUITES[*]//+/ } " in
        *" latency "*) [ "$TIMEOUT" -ge 1800 ] || TIMEOUT=1800 ;;
    esac
fi

log() { printf '[vm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, dpkg, qemu's 9p export of /)"

# ---------------------------------------------------------------- 1. tools --
PKGS=(qemu-system-x86 busybox-static cpio kmod sg3-utils lsscsi libiscsi-bin
      e2fsprogs tcmu-runner fio mt-st mtx bacula-sd amanda-server libencode-locale-perl
      xorriso growisofs dvd+rw-tools wodim cdrskin libcdio-utils genisoimage eject
      dmsetup dbus targetcli-fb python3-rtslib-fb python3-gi)
install_tools() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$INSTALL" = 1 ] || die "missing packages (and --no-install): ${missing[*]}"
    log "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_tools

# --------------------------------------------------------------- 2. kernel --
# Debian's current kernel: whatever linux-image-amd64 depends on.
mkdir -p "$WORK"
kernel_pkg() {
    if [ -n "${KERNEL_PKG:-}" ]; then echo "$KERNEL_PKG"; return; fi
    local dep
    dep=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$dep" ] && [ "$INSTALL" = 1 ]; then
        apt-get update -qq
        dep=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    if [ -z "$dep" ]; then
        # Offline: reuse the newest kernel already in the cache.
        dep=$(ls -1d "$WORK"/kernel/linux-image-* 2>/dev/null | sed 's#.*/##' | sort -V | tail -1)
    fi
    [ -n "$dep" ] || die "cannot resolve linux-image-amd64's kernel package"
    echo "$dep"
}
KPKG=$(kernel_pkg)
KVER=${KPKG#linux-image-}
KDIR=$WORK/kernel/$KPKG
KROOT=$KDIR/root
if [ ! -f "$KDIR/.extracted" ]; then
    log "fetching $KPKG"
    rm -rf "$KDIR"; mkdir -p "$KDIR/deb" "$KROOT"
    (cd "$KDIR/deb" && apt-get download "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    deb=$(ls "$KDIR"/deb/*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || die "apt-get download $KPKG produced no .deb"
    dpkg-deb -x "$deb" "$KROOT"
    depmod -b "$KROOT" "$KVER"
    rm -f "$deb"
    touch "$KDIR/.extracted"
fi
VMLINUZ=$KROOT/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "no $VMLINUZ"

# ------------------------------------------------------------ 3. initramfs --
# Modules the guest needs, with their dependency closure.  (LIO's own
# backstores are there because target_core_mod asks for them when configfs
# is first used, and fileio makes a kernel-only reference point.  brd,
# dm_mod, dm_delay (and loop, its fallback) make the latency suite's slow
# device; all four are modules in Debian's kernel.)  The boot subset
# (virtio transport, 9p, overlay) is loaded by /init with insmod in
# dependency order; the whole closure is copied into the guest's
# /lib/modules so that modprobe works after switch_root.
ALL_MODS=(configfs uio target_core_mod target_core_user tcm_loop iscsi_target_mod
          scsi_mod sd_mod sg st sr_mod ch isofs virtio_pci 9pnet_virtio 9p overlay
          crc32c_generic crc32c_intel ext4
          target_core_file target_core_iblock target_core_pscsi
          brd dm_mod dm_delay loop virtio_net)
BOOT_MODS=(virtio_pci 9pnet_virtio 9p overlay)

# Print the .ko paths (relative to lib/modules/KVER) that MOD needs, in load
# order; nothing for built-ins.
mod_closure() {
    local out line
    out=$(modprobe -d "$KROOT" -S "$KVER" --show-depends "$1") || die "modprobe --show-depends $1 failed"
    while IFS= read -r line; do
        case "$line" in
            builtin*) ;;
            insmod*)
                line=${line#insmod }; line=${line%% *}
                echo "${line#"$KROOT"/lib/modules/"$KVER"/}" ;;
        esac
    done <<<"$out"
}

INITRD=$WORK/initrd-$KVER.cpio.gz
# Rebuild when missing or older than anything it is made from.
need_initrd=0
[ -f "$INITRD" ] || need_initrd=1
for f in "$HERE/initramfs/init" "$HERE/run.sh" /bin/busybox "$KDIR/.extracted"; do
    [ "$need_initrd" = 1 ] || [ "$f" -nt "$INITRD" ] && need_initrd=1
done
if [ "$need_initrd" = 1 ]; then
    log "building initramfs for $KVER"
    stage=$(mktemp -d "$WORK/initrd.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage"/{bin,dev,proc,sys,mnt,newroot,etc}
    cp /bin/busybox "$stage/bin/busybox"
    cp "$HERE/initramfs/init" "$stage/init"; chmod 755 "$stage/init"
    mdir=$stage/lib/modules/$KVER
    mkdir -p "$mdir"
    for m in "${ALL_MODS[@]}"; do
        while IFS= read -r rel; do
            [ -n "$rel" ] || continue
            mkdir -p "$mdir/$(dirname "$rel")"
            cp "$KROOT/lib/modules/$KVER/$rel" "$mdir/$rel"
        done < <(mod_closure "$m")
    done
    for f in modules.builtin modules.builtin.modinfo modules.order; do
        [ -f "$KROOT/lib/modules/$KVER/$f" ] && cp "$KROOT/lib/modules/$KVER/$f" "$mdir/"
    done
    depmod -b "$stage" "$KVER"
    : >"$stage/etc/boot-modules"
    for m in "${BOOT_MODS[@]}"; do
        mod_closure "$m" >>"$stage/etc/boot-modules"
    done
    awk '!seen[$0]++' "$stage/etc/boot-modules" >"$stage/etc/boot-modules.tmp"
    mv "$stage/etc/boot-modules.tmp" "$stage/etc/boot-modules"
    echo "$KVER" >"$stage/etc/kver"
    (cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$stage"; trap - EXIT
fi

# ----------------------------------------------------------------- 4. boot --
RUNS=$WORK/runs
mkdir -p "$RUNS"
# Keep the 20 newest runs. (No runs yet is fine: a fresh clone has none.)
find "$RUNS" -mindepth 1 -maxdepth 1 -type d -name '2*-*' -printf '%T@ %p\n' \
    | sort -rn | tail -n +21 | cut -d' ' -f2- | xargs -r rm -rf
TOTAL_PASS=0
TOTAL_FAIL=0
SUMMARY=()

# serve_banner: once the guest has exported its devices, say how to use them.
serve_banner() {
    local qpid=$1 url name size local_dev iqn
    while [ ! -e "$SERVE_DIR/ready" ]; do
        kill -0 "$qpid" 2>/dev/null || return 0
        sleep 1
    done
    {
        echo
        echo "== serving (Ctrl-C stops: the devices are removed and the VM powers off)"
        while IFS=$'\t' read -r url name size local_dev; do
            printf '   %-10s %-8s %s%s\n' "$name" "$size" "$url" "${local_dev:+   (in the VM: $local_dev)}"
        done <"$SERVE_DIR/ready"
        url=$(head -n 1 "$SERVE_DIR/ready" | cut -f1)
        echo "   try: iscsi-inq $url"
        echo "        iscsi-readcapacity16 $url"
        echo "        qemu-img info $url      (qemu-block-extra)"
        iqn=$(echo "$url" | cut -d/ -f4)
        echo "        iscsiadm -m node -o new -T $iqn -p 127.0.0.1:$SERVE_PORT"
        echo "        iscsiadm -m node -T $iqn -p 127.0.0.1:$SERVE_PORT --login   (a kernel initiator)"
        echo
    } >&2
}

serve_stop() {
    local qpid=$1
    : >"$SERVE_DIR/stop"
    log "stopping: the guest removes the devices and powers off"
    (sleep 120; kill "$qpid" 2>/dev/null) &
}

run_suite() {
    local suite=$1 ts rdir logf rc t0 t1
    ts=$(date +%Y%m%d-%H%M%S)
    rdir=$RUNS/$ts-$suite
    mkdir -p "$rdir"
    ln -sfn "$(basename "$rdir")" "$RUNS/latest-$suite"
    logf=$rdir/console.log

    # Everything the guest needs to know beyond the kernel command line.
    {
        printf 'VM_SUITE=%q\n' "$suite"
        printf 'VM_REPO=%q\n' "$REPO"
        printf 'VM_KVER=%q\n' "$KVER"
        printf 'VM_ISCSI=%q\n' "$ISCSI"
        printf 'VM_ISCSI_TESTS=%q\n' "$ISCSI_TESTS"
        # 0: no deadline (serving until told to stop).
        if [ "$TIMEOUT" = 0 ]; then echo VM_GUEST_TIMEOUT=0; else printf 'VM_GUEST_TIMEOUT=%q\n' "$((TIMEOUT - 45))"; fi
        [ -n "$SERVE_PORT" ] && printf 'VM_SERVE_PORT=%q\n' "$SERVE_PORT"
        [ "$SHELL_MODE" = 1 ] && echo VM_SERVE_SHELL=1
        local v
        for v in TCMU_WASM_BIN TCMU_WASM_DEB TCMU_WASM_CONFIG TCMU_WASM_ARGS TCMU_WASM_WAIT \
                 TCMU_WASM_PRECREATE TCMU_WASM_SIGTERM VM_EXEC VTL_CONFIG VTL_ONLY \
                 VM_DISK_SIZE VM_SEQ_MB VM_RAND_SECS VM_QUICK VM_COMPARE_ROUNDS \
                 VM_LAT_SIZE VM_LAT_DELAY_MS VM_LAT_SECS VM_LAT_VERIFY_MB VM_LAT_RUNNER \
                 VM_LAT_ENFORCE RUST_LOG RUST_BACKTRACE; do
            [ -n "${!v:-}" ] && printf '%s=%q\n' "$v" "${!v}"
        done
    } >"$rdir/job.env"

    local append="console=ttyS0 panic=-1 quiet loglevel=4 tcmuvm.entry=$HERE/guest/boot.sh tcmuvm.repo=$REPO"
    # Commas inside qemu options are qemu's, not array separators.
    # shellcheck disable=SC2054
    local qemu=(qemu-system-x86_64
        -accel tcg,thread=multi -cpu max -m "$MEM" -smp "$SMP"
        -nographic -no-reboot
        -kernel "$VMLINUZ" -initrd "$INITRD" -append "$append"
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
        -virtfs "local,path=$rdir,mount_tag=results,security_model=none,multidevs=remap")
    if [ -n "$SERVE_PORT" ]; then
        # restrict=on: the guest reaches nothing; only the forward reaches it.
        qemu+=(-nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$SERVE_PORT-10.0.2.15:3260")
    else
        qemu+=(-nic none)
    fi
    [ -n "$SERVE_DIR" ] && qemu+=(-virtfs "local,path=$SERVE_DIR,mount_tag=serve,security_model=none,multidevs=remap")

    log "suite $suite: booting $KVER (TCG, ${SMP} vCPU, ${MEM} MiB, timeout ${TIMEOUT}s) -> $rdir"
    t0=$(date +%s.%N)
    set +e
    if [ "$SHELL_MODE" = 1 ]; then
        # The console is this terminal: no timeout (it would take the
        # terminal from qemu) and no log.
        "${qemu[@]}"
        rc=$?
    elif [ "$VERBOSE" = 1 ]; then
        timeout --kill-after=15 "$TIMEOUT" "${qemu[@]}" </dev/null 2>&1 | tee "$logf"
        rc=${PIPESTATUS[0]}
    else
        timeout --kill-after=15 "$TIMEOUT" "${qemu[@]}" </dev/null >"$logf" 2>&1 &
        local qpid=$!
        # Show progress: the guest's check/result lines as they happen.
        # (setsid: Ctrl-C at the terminal is for run.sh's trap, not them;
        # timeout already keeps qemu out of the terminal's process group.)
        setsid tail --pid="$qpid" -n +1 -F "$logf" 2>/dev/null | grep --line-buffered -E '^(CHECK|RESULT|VM:)' &
        local tpid=$!
        if [ -n "$SERVE_DIR" ]; then
            serve_banner "$qpid" &
            # Ctrl-C / SIGTERM: ask the guest to take its devices down and
            # power off; kill qemu if it has not within two minutes.
            trap 'serve_stop "$qpid"' INT TERM
        fi
        wait "$qpid"; rc=$?
        # A trapped signal interrupts wait; qemu is still shutting down.
        while [ "$rc" -gt 128 ] && kill -0 "$qpid" 2>/dev/null; do wait "$qpid"; rc=$?; done
        trap - INT TERM
        wait "$tpid" 2>/dev/null
    fi
    set -e
    t1=$(date +%s.%N)
    local wall
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
    log "suite $suite: qemu exited rc=$rc after ${wall}s"
    echo "RESULT name=vm.wall value=$wall unit=s" >>"$rdir/results.txt"

    # ---------------------------------------------------------- 6. verdict --
    local res=$rdir/results.txt pass fail
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "CHECK FAIL vm.timeout: qemu killed after ${TIMEOUT}s" >>"$res"
    fi
    if ! grep -q '^VM: suite-done' "$res" 2>/dev/null; then
        echo "CHECK FAIL vm.completed: guest did not finish the suite (see $logf)" >>"$res"
    fi
    pass=$(grep -c '^CHECK PASS ' "$res" || true)
    fail=$(grep -c '^CHECK FAIL ' "$res" || true)
    echo
    echo "== suite $suite ($rdir)"
    grep -E '^CHECK ' "$res" | sed 's/^/   /'
    echo "-- results"
    grep -E '^RESULT ' "$res" | sed 's/^/   /'
    if [ "$fail" -gt 0 ]; then
        echo "-- console tail"
        tail -n 25 "$logf" | sed 's/^/   | /'
    fi
    echo "== suite $suite: $pass passed, $fail failed"
    TOTAL_PASS=$((TOTAL_PASS + pass))
    TOTAL_FAIL=$((TOTAL_FAIL + fail))
    SUMMARY+=("$suite: $pass passed, $fail failed")
}

for s in "${SUITES[@]}"; do
    run_suite "$s"
done

echo
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_FAIL" -eq 0 ] && [ "$TOTAL_PASS" -gt 0 ]
