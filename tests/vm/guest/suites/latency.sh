# shellcheck shell=bash
# Suite "latency": one latency-bound block device (a RAM disk under dm-delay,
# VM_LAT_DELAY_MS per read and per write) measured as it is ("raw", the
# floor) and exported through tcm_loop three ways, one after another (each
# opens the device exclusively): LIO's in-kernel iblock backstore (the
# ceiling), Debian's tcmu-runner, and tcmu-wasm's file handler with
# `direct = true`.  On each /dev/sdX: fio 4 KiB random read and write at QD1
# (psync) and QD16 (libaio), 1 MiB sequential read and write (libaio, QD4),
# all O_DIRECT and time-based; then a crc32c-verified fio write/read pass;
# and the data the previous side left must read back through the next one.
# Prints RESULT latency.<side>.<metric> and
# latency.ratio.wasm_vs_iblock.<metric> / latency.ratio.wasm_vs_runner.<metric>.
#
# Where a RAM disk is the backing, what separates the three is how much of
# the device's latency each hides by keeping commands in flight: at QD16 a
# daemon that serialises I/O falls to the QD1 figure.
#
# Order: raw, iblock, tcmu-wasm, then tcmu-runner on a file (see below).
#
# Knobs: VM_LAT_SIZE (256M), VM_LAT_DELAY_MS (1; dm-delay uses jiffies and
# Debian's kernel has HZ=250, so the effective delay is ~4-8 ms, measured
# by the raw side), VM_LAT_SECS (5, per fio run, after a 1 s ramp),
# VM_LAT_VERIFY_MB (16, the verified region), VM_LAT_RUNNER=0 (skip the
# tcmu-runner side), VM_LAT_ENFORCE=1 (a check that fails below the goals:
# tcmu-wasm >= 0.8x iblock and >= 2x tcmu-runner at QD16).

LAT_SIZE=${VM_LAT_SIZE:-256M}
LAT_DELAY_MS=${VM_LAT_DELAY_MS:-1}
LAT_SECS=${VM_LAT_SECS:-5}
LAT_VERIFY_MB=${VM_LAT_VERIFY_MB:-16}
LAT_DIR=/vmresults/latency
LAT_SLOW=/dev/mapper/slow
# 4 MiB of random data each side writes just past the verified region and
# the next side (and, at the end, the dm device itself) must read back.
LAT_CARRY=/tmp/latency.carry
LAT_CARRY_MB=$LAT_VERIFY_MB
LAT_METRICS=(rand_read_4k_qd1 rand_write_4k_qd1 rand_read_4k_qd16 rand_write_4k_qd16
             seq_read_1m seq_write_1m)

# -------------------------------------------------------------- device --
lat_dmsetup() { DM_DISABLE_UDEV=1 dmsetup "$@"; }

lat_make_device() {
    local bytes sectors base
    bytes=$(to_bytes "$LAT_SIZE") || fail "bad VM_LAT_SIZE $LAT_SIZE"
    [ "$bytes" -ge $(( (LAT_VERIFY_MB + 8) * 1048576 )) ] \
        || fail "VM_LAT_SIZE $LAT_SIZE too small for VM_LAT_VERIFY_MB=$LAT_VERIFY_MB"
    command -v dmsetup >/dev/null || fail "no dmsetup (the host needs Debian's dmsetup package)"
    command -v python3 >/dev/null || fail "no python3 (parses fio's JSON)"
    command -v fio >/dev/null || fail "no fio"
    modprobe dm_mod || fail "modprobe dm_mod failed"
    modprobe dm_delay || fail "modprobe dm_delay failed"
    if modprobe brd rd_nr=1 rd_size=$((bytes / 1024)) && wait_for 10 test -b /dev/ram0; then
        base=/dev/ram0
    else
        # Debian builds brd as a module; this is for kernels that do not.
        echo "no brd: a loop device on a tmpfs file instead"
        modprobe loop
        truncate -s "$bytes" /tmp/latency.ram || fail "cannot create /tmp/latency.ram"
        base=$(losetup -f --show /tmp/latency.ram) || fail "losetup failed"
    fi
    # brd allocates a page on its first write: fill it now, so that every
    # side reads allocated pages.
    dd if=/dev/zero of="$base" bs=1M count=$((bytes / 1048576)) oflag=direct status=none \
        || fail "cannot fill $base"
    sectors=$(blockdev --getsz "$base") || fail "blockdev --getsz $base failed"
    # No udev in the guest: libdevmapper makes the /dev/mapper node itself.
    lat_dmsetup create --noudevsync slow --table "0 $sectors delay $base 0 $LAT_DELAY_MS" \
        || fail "dmsetup create slow failed"
    [ -b "$LAT_SLOW" ] || lat_dmsetup mknodes slow
    [ -b "$LAT_SLOW" ] || fail "no $LAT_SLOW after dmsetup create"
    lat_dmsetup table slow
    vm_set LAT_BASE "$base"
    vm_set LAT_BYTES "$((sectors * 512))"
    echo "$LAT_SLOW: $((sectors * 512)) bytes on $base, ${LAT_DELAY_MS} ms delay"
}

lat_remove_device() {
    wait_for 10 lat_dmsetup remove --noudevsync slow || fail "dmsetup remove slow failed (still open?)"
    case "$LAT_BASE" in
        /dev/loop*) losetup -d "$LAT_BASE"; rm -f /tmp/latency.ram ;;
        /dev/ram*) rmmod brd 2>/dev/null || true ;;
    esac
    [ ! -e "$LAT_SLOW" ] || fail "$LAT_SLOW still there"
}

# Backstore attributes and the initiator queue, for the record.
lat_attribs() {
    local bs=$1 a
    for a in hw_block_size hw_max_sectors max_sectors hw_queue_depth queue_depth emulate_write_cache; do
        [ -r "$bs/attrib/$a" ] && echo "$(basename "$bs").$a=$(cat "$bs/attrib/$a")"
    done
}
lat_queue() {
    local q a
    q=/sys/block/$(basename "$1")/queue
    for a in max_sectors_kb max_hw_sectors_kb nr_requests scheduler write_cache; do
        [ -r "$q/$a" ] && echo "$1 queue/$a=$(cat "$q/$a")"
    done
    [ -r "/sys/block/$(basename "$1")/device/queue_depth" ] \
        && echo "$1 device/queue_depth=$(cat "/sys/block/$(basename "$1")/device/queue_depth")"
}

# ---------------------------------------------------------------- sides --
# Each side: lat_setup_SIDE (sets LAT_DEV, and whatever its teardown needs,
# with vm_set) and lat_teardown_SIDE.

lat_setup_raw() { vm_set LAT_DEV "$LAT_SLOW"; }

lat_setup_iblock() {
    local bs wwn dev
    vm_set LAT_BS "$CFS/core/iblock_0/islow"
    bs=$(lio_iblock_create 0 islow "$LAT_SLOW") || fail "cannot create the iblock backstore on $LAT_SLOW"
    lat_attribs "$bs"
    wwn=$(lio_loop_export "$bs") || fail "tcm_loop export failed"
    vm_set LAT_WWN "$wwn"
    dev=$(wait_disk islow 60) || { dmesg | tail -n 20; fail "no disk for the iblock backstore"; }
    vm_set LAT_DEV "$dev"
    lat_queue "$dev"
    echo "iblock serves $dev"
}

# Unexport, wait for the disk to go, delete the backstore.
lat_teardown_lio() {
    local rc=0
    if [ -n "$LAT_WWN" ]; then
        lio_loop_unexport "$LAT_WWN" || { echo "tcm_loop unexport failed"; rc=1; }
    fi
    if [ -n "$LAT_DEV" ]; then
        wait_for 30 test ! -b "$LAT_DEV" || { echo "$LAT_DEV still present"; rc=1; }
    fi
    if [ -n "$LAT_BS" ]; then
        lio_user_delete "$LAT_BS" || { echo "cannot delete $LAT_BS"; rc=1; }
    fi
    return "$rc"
}
lat_teardown_iblock() { lat_teardown_lio; }

lat_registrations() { dmesg | grep -c 'tcmu daemon: command reply support'; }
lat_registered_since() { [ "$(lat_registrations)" -gt "$1" ]; }

# Debian's tcmu-runner (1.5.4) has four handlers: rbd, file_zbc (a zoned
# device emulated in a file), file_optical, and qcow, which is what serves
# local raw images (the compare and baseline suites use it on a file).  Its
# raw driver (qcow.c, raw_probe) accepts an image only when
#     if (st.st_size != bdev->size) return -1;
# passes, i.e. when stat's size equals the LUN size, and stat reports 0 for
# a block device.  So no handler of Debian's tcmu-runner serves a block
# device; it gets what its users give it instead: a raw image file on an
# ext4 file system made on the same slow device (three quarters of it).
# It opens the image without O_DIRECT, so the file system is mounted with
# `-o sync` (writes reach the device before they are answered) and the page
# cache is dropped before every fio run; random reads can still hit pages
# read earlier in the same run, which flatters it a little.  This side runs
# last: the file system replaces what the other sides left.
LAT_RUNNER_MNT=/mnt/latency-runner
lat_setup_runner() {
    local hp d=$LAT_DIR/runner n bs wwn dev
    command -v tcmu-runner >/dev/null || fail "tcmu-runner not installed"
    for hp in /usr/lib/x86_64-linux-gnu/tcmu-runner /usr/lib64/tcmu-runner /usr/lib/tcmu-runner; do
        [ -f "$hp/handler_qcow.so" ] && break
    done
    [ -f "$hp/handler_qcow.so" ] || fail "no tcmu-runner qcow handler found"
    mkdir -p "$d"
    n=$(lat_registrations)
    tcmu-runner --handler-path "$hp" -l "$d" >"$d/stdout.log" 2>&1 &
    vm_set LAT_PID $!
    wait_for 60 lat_registered_since "$n" || fail "tcmu-runner did not register with target_core_user"
    pid_alive "$LAT_PID" || { cat "$d/stdout.log"; fail "tcmu-runner exited at start"; }
    # The image: three quarters of the device, whole MiB, on ext4 over it.
    vm_set LAT_RUNNER_BYTES "$(( LAT_BYTES * 3 / 4 / 1048576 * 1048576 ))"
    mkfs.ext4 -q -F -E nodiscard "$LAT_SLOW" || fail "mkfs.ext4 on $LAT_SLOW failed"
    mkdir -p "$LAT_RUNNER_MNT"
    # -o sync: its writes reach the device before they are answered, as
    # the other sides' O_DIRECT writes do (else it would answer from the
    # page cache).
    mount -o sync "$LAT_SLOW" "$LAT_RUNNER_MNT" || fail "cannot mount $LAT_SLOW"
    vm_set LAT_RUNNER_MOUNTED 1
    fallocate -l "$LAT_RUNNER_BYTES" "$LAT_RUNNER_MNT/runner.img" || fail "cannot allocate the runner's image"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    vm_set LAT_BS "$CFS/core/user_1/rslow"
    if ! bs=$(lio_user_create 1 rslow "qcow/$LAT_RUNNER_MNT/runner.img" "$LAT_RUNNER_BYTES" \
        "hw_max_sectors=2048,max_data_area_mb=64"); then
        grep -iE 'qcow|raw|image|rslow' "$d/tcmu-runner.log" 2>/dev/null | tail -n 8
        fail "tcmu-runner refused its raw image on $LAT_RUNNER_MNT"
    fi
    lat_attribs "$bs"
    wwn=$(lio_loop_export "$bs") || fail "tcm_loop export failed"
    vm_set LAT_WWN "$wwn"
    dev=$(wait_disk rslow 60) || { tail -n 20 "$d/tcmu-runner.log"; fail "no disk for the tcmu-runner backstore"; }
    vm_set LAT_DEV "$dev"
    lat_queue "$dev"
    echo "tcmu-runner serves $dev"
}

lat_teardown_runner() {
    local rc=0
    lat_teardown_lio || rc=1
    if [ -n "$LAT_PID" ]; then
        kill "$LAT_PID" 2>/dev/null
        wait_for 30 pid_gone "$LAT_PID" || { kill -KILL "$LAT_PID"; echo "tcmu-runner needed SIGKILL"; rc=1; }
    fi
    if [ "${LAT_RUNNER_MOUNTED:-0}" = 1 ]; then
        umount "$LAT_RUNNER_MNT" || { echo "cannot unmount $LAT_RUNNER_MNT"; rc=1; }
        vm_set LAT_RUNNER_MOUNTED 0
    fi
    return "$rc"
}

lat_setup_wasm() {
    local bin=${TCMU_WASM_BIN:-$VM_REPO/target/release/tcmu-wasm} d=$LAT_DIR/wasm cfg dev bs
    [ -x "$bin" ] || fail "no $bin (cargo build --release first)"
    mkdir -p "$d"
    cfg=$d/config.toml
    # No size: the daemon takes the block device's.
    cat >"$cfg" <<TOML
[[device]]
name = "wslow"
handler = "file"
config = "serial=wslow"
backing = "$LAT_SLOW"
direct = true
export = "loopback"
hw_max_sectors = 2048
max_data_area_mb = 64
max_in_flight = 64
TOML
    NO_COLOR=1 "$bin" serve --config "$cfg" >"$d/daemon.log" 2>&1 &
    vm_set LAT_PID $!
    dev=$(wait_disk wslow 120) || { tail -n 20 "$d/daemon.log"; fail "no disk for tcmu-wasm"; }
    vm_set LAT_DEV "$dev"
    bs=$(lio_find_backstore wslow) && lat_attribs "$bs"
    lat_queue "$dev"
    echo "tcmu-wasm serves $dev"
}

lat_teardown_wasm() {
    local left
    [ -n "$LAT_PID" ] || return 0
    kill -TERM "$LAT_PID" 2>/dev/null
    wait_for 30 pid_gone "$LAT_PID" || { kill -KILL "$LAT_PID"; fail "tcmu-wasm did not exit within 30 s of SIGTERM"; }
    if [ -n "$LAT_DEV" ]; then
        wait_for 30 test ! -b "$LAT_DEV" || fail "$LAT_DEV still present"
    fi
    left=$(lio_user_backstores)
    [ -z "$left" ] || fail "user backstores left after SIGTERM: $left"
}

# ------------------------------------------------------------------ fio --
# lat_fio_parse JSON_FILE read|write: "IOPS KiB/s MEAN_LAT_US P99_CLAT_US"
# of that direction of the (only) job; fails on a job error or no I/O.
lat_fio_parse() {
    python3 - "$1" "$2" <<'PY'
import json, sys
text = open(sys.argv[1], errors="replace").read()
# fio may put notes around the JSON document.
start, end = text.find("{"), text.rfind("}")
if start < 0 or end < start:
    sys.exit("no JSON in " + sys.argv[1])
job = json.loads(text[start:end + 1])["jobs"][0]
if job.get("error"):
    sys.exit("fio job error %s" % job["error"])
d = job[sys.argv[2]]
if not d.get("total_ios"):
    sys.exit("no %s I/O in %s" % (sys.argv[2], sys.argv[1]))
lat = d.get("lat_ns", {}).get("mean", 0) / 1000.0
p99 = (d.get("clat_ns", {}).get("percentile") or {}).get("99.000000", 0) / 1000.0
print("%.0f %.0f %.1f %.1f" % (d["iops"], d["bw"], lat, p99))
PY
}

# lat_fio PREFIX METRIC read|write FIO_ARGS...: one fio run -> RESULT lines.
lat_fio() {
    local prefix=$1 metric=$2 dir=$3 out vals iops bw lat p99 rc
    shift 3
    out=$LAT_DIR/$prefix.$metric.json
    # Nothing cached from the previous run (only tcmu-runner's side, which
    # goes through the page cache, could profit).
    sync; echo 3 >/proc/sys/vm/drop_caches
    fio --output-format=json --output="$out" "$@"
    rc=$?
    [ "$rc" = 0 ] || { cat "$out" 2>/dev/null; fail "fio $metric failed (rc=$rc)"; }
    vals=$(lat_fio_parse "$out" "$dir") || fail "cannot read fio's $metric figures ($out)"
    read -r iops bw lat p99 <<<"$vals"
    case "$metric" in
        seq_*)
            result "$prefix.$metric" "$(awk -v b="$bw" 'BEGIN { printf "%.1f", b / 1024 }')" MiB/s ;;
        *)
            result "$prefix.$metric" "$iops" IOPS
            result "$prefix.$metric.lat_us" "$lat" us
            result "$prefix.$metric.p99_us" "$p99" us ;;
    esac
}

lat_bench() {
    local dev=$1 p=latency.$2
    local c=(--filename="$dev" --direct=1 --time_based --ramp_time=1 --runtime="$LAT_SECS"
             --randrepeat=0 --norandommap --numjobs=1)
    lat_fio "$p" seq_write_1m write --name=sw --rw=write --bs=1M --ioengine=libaio --iodepth=4 "${c[@]}"
    lat_fio "$p" seq_read_1m read --name=sr --rw=read --bs=1M --ioengine=libaio --iodepth=4 "${c[@]}"
    lat_fio "$p" rand_read_4k_qd1 read --name=rr1 --rw=randread --bs=4k --ioengine=psync "${c[@]}"
    lat_fio "$p" rand_write_4k_qd1 write --name=rw1 --rw=randwrite --bs=4k --ioengine=psync "${c[@]}"
    lat_fio "$p" rand_read_4k_qd16 read --name=rr16 --rw=randread --bs=4k --ioengine=libaio --iodepth=16 "${c[@]}"
    lat_fio "$p" rand_write_4k_qd16 write --name=rw16 --rw=randwrite --bs=4k --ioengine=libaio --iodepth=16 "${c[@]}"
}

# Write VM_LAT_VERIFY_MB at random offsets in 4-128 KiB blocks at QD16 with
# crc32c headers, read it all back and verify (fresh random data each time:
# a write that never reached the device cannot pass on the previous side's
# data); then leave the carry pattern for the next side.
lat_verify() {
    local dev=$1 side=$2 out rc
    out=$LAT_DIR/latency.$side.verify.json
    fio --output-format=json --output="$out" --name=verify --filename="$dev" --direct=1 \
        --ioengine=libaio --iodepth=16 --rw=randwrite --bsrange=4k-128k --size="${LAT_VERIFY_MB}M" \
        --randrepeat=0 --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0
    rc=$?
    [ "$rc" = 0 ] || { cat "$out" 2>/dev/null; fail "fio crc32c verification failed on $dev (rc=$rc)"; }
    # The read (verify) phase must have happened and found no error.
    lat_fio_parse "$out" read >/dev/null || fail "fio verify pass read nothing back or reported an error"
    dd if="$LAT_CARRY" of="$dev" bs=1M seek="$LAT_CARRY_MB" oflag=direct conv=notrunc,fsync status=none \
        || fail "cannot write the carry pattern"
    vm_set LAT_CARRIED 1
    echo "verified ${LAT_VERIFY_MB} MiB on $dev; carry pattern at ${LAT_CARRY_MB} MiB"
}

# What the previous side wrote must be on the device.
lat_carry_check() {
    local dev=$1 back=/tmp/latency.back
    dd if="$dev" of="$back" bs=1M skip="$LAT_CARRY_MB" count=4 iflag=direct status=none \
        || fail "cannot read $dev"
    cmp "$LAT_CARRY" "$back" || fail "$dev does not hold the 4 MiB the previous side wrote at ${LAT_CARRY_MB} MiB"
    rm -f "$back"
}

lat_side() {
    local side=$1
    vm_set LAT_DEV ''; vm_set LAT_BS ''; vm_set LAT_WWN ''; vm_set LAT_PID ''
    if run_check "latency.$side.setup" "lat_setup_$side"; then
        if [ "$LAT_CARRIED" = 1 ]; then
            run_check "latency.$side.carry" lat_carry_check "$LAT_DEV"
        fi
        # The benchmark overwrites the whole device.
        vm_set LAT_CARRIED 0
        run_check "latency.$side.bench" lat_bench "$LAT_DEV" "$side"
        run_check "latency.$side.verify" lat_verify "$LAT_DEV" "$side"
    fi
    if [ "$side" != raw ]; then
        run_check "latency.$side.teardown" "lat_teardown_$side"
    fi
}

# -------------------------------------------------------------- ratios --
lat_value() {
    grep -E "^RESULT name=latency\.$1\.$2 " "$VM_RESULTS" | tail -n 1 | sed -E 's/.* value=([0-9.]+) .*/\1/'
}
lat_div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }

lat_ratios() {
    local m w i r missing=0
    for m in "${LAT_METRICS[@]}"; do
        w=$(lat_value wasm "$m"); i=$(lat_value iblock "$m"); r=$(lat_value runner "$m")
        if [ -n "$w" ] && [ -n "$i" ]; then
            result "latency.ratio.wasm_vs_iblock.$m" "$(lat_div "$w" "$i")" x
        else
            echo "no tcmu-wasm or iblock figure for $m"; missing=1
        fi
        if [ -n "$w" ] && [ -n "$r" ]; then
            result "latency.ratio.wasm_vs_runner.$m" "$(lat_div "$w" "$r")" x
        else
            echo "no tcmu-runner figure for $m: no wasm_vs_runner ratio"
        fi
    done
    [ "$missing" = 0 ] || fail "missing tcmu-wasm or iblock figures"
}

# The goals at QD16, where the device's latency must be hidden.
lat_goals() {
    local m w i r bad=()
    for m in rand_read_4k_qd16 rand_write_4k_qd16; do
        w=$(lat_value wasm "$m"); i=$(lat_value iblock "$m"); r=$(lat_value runner "$m")
        [ -n "$w" ] && [ -n "$i" ] || fail "no figures for $m"
        awk -v w="$w" -v i="$i" 'BEGIN { exit !(w >= 0.8 * i) }' || bad+=("$m: wasm $w < 0.8 x iblock $i")
        if [ -n "$r" ]; then
            awk -v w="$w" -v r="$r" 'BEGIN { exit !(w >= 2 * r) }' || bad+=("$m: wasm $w < 2 x runner $r")
        fi
    done
    [ ${#bad[@]} -eq 0 ] || fail "below the goals: ${bad[*]}"
}

suite_main() {
    local side
    mkdir -p "$LAT_DIR"
    LAT_BASE='' LAT_BYTES=''
    vm_set LAT_CARRIED 0
    run_check latency.device lat_make_device || return
    head -c 4194304 /dev/urandom >"$LAT_CARRY"
    vm_say "latency: $LAT_SLOW ($LAT_BYTES bytes, ${LAT_DELAY_MS} ms), ${LAT_SECS} s per fio run"
    for side in raw iblock wasm; do
        lat_side "$side"
    done
    # The last side's data, read from the dm device itself.
    if [ "$LAT_CARRIED" = 1 ]; then
        run_check latency.final_carry lat_carry_check "$LAT_SLOW"
    fi
    # Last: it puts a file system on the device (see lat_setup_runner).
    vm_set LAT_CARRIED 0
    if [ "${VM_LAT_RUNNER:-1}" = 0 ]; then
        check_skip latency.runner "VM_LAT_RUNNER=0"
    else
        lat_side runner
    fi
    run_check latency.ratios lat_ratios
    if [ "${VM_LAT_ENFORCE:-0}" = 1 ]; then
        run_check latency.goals lat_goals
    fi
    run_check latency.device_teardown lat_remove_device
    rm -f "$LAT_CARRY"
}
