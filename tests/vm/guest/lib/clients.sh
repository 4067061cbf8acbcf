# shellcheck shell=bash
# Client checks against a SCSI disk, whoever serves it (tcmu-runner,
# tcmu-wasm): the initiator's view through sd/sg and through iSCSI.
#
#   clients_block DEV [SIZE_BYTES] [PREFIX]   # all block-device checks
#   clients_iscsi URL [TESTS] [KNOWN_FAILURES_FILE] [PREFIX]
#       TESTS: iscsi-test-cu -t spec, default SCSI (the device semantics;
#       "iSCSI" tests LIO's iSCSI target itself, ALL is both)
#
# Every check reports CHECK PASS/FAIL PREFIX.<name> (PREFIX defaults to
# "client") and its duration as RESULT time.PREFIX.<name>; measurements are
# RESULT lines.  Tunables: VM_SEQ_MB (64), VM_RAND_SECS (5), VM_QUICK=1
# (skip throughput).

CLIENT_TMP=${CLIENT_TMP:-/tmp/vmclient}

# ------------------------------------------------------------- identity --
c_lsscsi() {
    local dev=$1 out
    out=$(lsscsi -g) || fail "lsscsi failed"
    echo "$out"
    grep -q "[[:space:]]${dev}[[:space:]]" <<<"$out" || fail "$dev not listed by lsscsi"
    lsscsi -t -s || true
}

c_inquiry() {
    local dev=$1 out
    out=$(sg_inq "$dev") || fail "sg_inq failed"
    echo "$out"
    grep -q 'Vendor identification:' <<<"$out" || fail "no vendor identification in INQUIRY"
    grep -q 'Peripheral device type: disk' <<<"$out" || fail "not a disk (peripheral device type)"
    # Supported VPD pages, for the log.
    sg_inq -p 0x00 "$dev" || true
}

c_vpd80() {
    local dev=$1 out
    out=$(sg_inq -p 0x80 "$dev") || fail "sg_inq -p 0x80 failed"
    echo "$out"
    grep -qi 'Unit serial number: *[^ ]' <<<"$out" || fail "empty unit serial number"
}

c_vpd83() {
    local dev=$1 out
    out=$(sg_inq -p 0x83 "$dev") || fail "sg_inq -p 0x83 failed"
    echo "$out"
    grep -qi 'designator' <<<"$out" || fail "no designators in VPD 0x83"
    grep -qiE 'NAA|T10 vendor' <<<"$out" || fail "no NAA or T10 vendor id designator"
}

c_readcap() {
    local dev=$1 want=${2:-} out blocks len bytes out16
    out=$(sg_readcap "$dev") || fail "READ CAPACITY(10) failed"
    echo "$out"
    blocks=$(sed -n 's/.*Number of logical blocks=\([0-9]*\).*/\1/p' <<<"$out")
    len=$(sed -n 's/.*Logical block length=\([0-9]*\).*/\1/p' <<<"$out")
    [ -n "$blocks" ] && [ -n "$len" ] || fail "cannot parse sg_readcap output"
    bytes=$((blocks * len))
    out16=$(sg_readcap -l "$dev") || fail "READ CAPACITY(16) failed"
    echo "$out16"
    grep -q "Number of logical blocks=$blocks" <<<"$out16" || fail "READ CAPACITY(16) disagrees with (10)"
    [ "$(cat "/sys/block/$(basename "$dev")/size")" -eq $((bytes / 512)) ] \
        || fail "sysfs size disagrees with READ CAPACITY"
    if [ -n "$want" ] && [ "$bytes" != "$want" ]; then
        fail "capacity $bytes bytes ($blocks x $len), expected $want"
    fi
    echo "capacity $bytes bytes, block $len"
}

# ------------------------------------------------------------ data path --
# c_dd_verify DEV BS COUNT SEEK: write COUNT random blocks of BS at block
# offset SEEK with O_DIRECT, read them back with O_DIRECT, compare.
c_dd_verify() {
    local dev=$1 bs=$2 count=$3 seek=$4 pat back
    mkdir -p "$CLIENT_TMP"
    pat=$CLIENT_TMP/pattern.$bs
    back=$CLIENT_TMP/readback.$bs
    head -c $((bs * count)) /dev/urandom >"$pat"
    dd if="$pat" of="$dev" bs="$bs" count="$count" seek="$seek" oflag=direct conv=notrunc,fsync status=none \
        || fail "dd write (bs=$bs) failed"
    dd if="$dev" of="$back" bs="$bs" count="$count" skip="$seek" iflag=direct status=none \
        || fail "dd read (bs=$bs) failed"
    cmp "$pat" "$back" || fail "read-back differs from what was written (bs=$bs)"
    # And the same bytes through a different I/O size.
    local other=$(( bs == 4096 ? 512 : 4096 ))
    dd if="$dev" of="$back" bs="$other" count=$((bs * count / other)) skip=$((seek * bs / other)) iflag=direct status=none \
        || fail "dd re-read (bs=$other) failed"
    cmp "$pat" "$back" || fail "re-read with bs=$other differs"
    echo "ok: $count x $bs at block $seek"
}
c_dd_1m() { c_dd_verify "$1" 1048576 8 1; }
c_dd_4k() { c_dd_verify "$1" 4096 64 2561; }

c_ext4() {
    local dev=$1 mnt=$CLIENT_TMP/mnt i
    mkdir -p "$mnt" "$CLIENT_TMP"
    mkfs.ext4 -F -q "$dev" || fail "mkfs.ext4 failed"
    mount -t ext4 "$dev" "$mnt" || fail "mount failed"
    head -c 4194304 /dev/urandom >"$mnt/big.bin"
    mkdir "$mnt/small"
    for i in $(seq 1 200); do echo "file $i $RANDOM" >"$mnt/small/f$i"; done
    (cd "$mnt" && find . -type f | sort | xargs sha256sum) >"$CLIENT_TMP/sums"
    umount "$mnt" || fail "umount failed"
    # Remount: the data now comes from the device, not the page cache.
    echo 3 >/proc/sys/vm/drop_caches
    mount -t ext4 -o ro "$dev" "$mnt" || fail "re-mount failed"
    (cd "$mnt" && sha256sum -c --quiet "$CLIENT_TMP/sums") || { umount "$mnt"; fail "file contents differ after remount"; }
    umount "$mnt" || fail "second umount failed"
    e2fsck -fn "$dev" || fail "e2fsck -fn reports problems (rc=$?)"
}

# ----------------------------------------------------------- throughput --
# Prints RESULT lines itself (the check passes if the I/O succeeded).
_mbps() { awk -v mb="$1" -v s="$2" 'BEGIN { printf "%.1f", mb / s }'; }

_fio_iops() {
    # fio terse v3: field 8 = read IOPS, field 49 = write IOPS.
    local field=$1; shift
    local out
    out=$(fio --output-format=terse --terse-version=3 "$@") || return 1
    echo "$out" >&2
    echo "$out" | awk -F';' -v f="$field" 'NR==1 { printf "%.0f", $f }'
}

c_throughput() {
    local dev=$1 prefix=$2 mb=${VM_SEQ_MB:-64} secs=${VM_RAND_SECS:-5} t0 s iops span
    t0=$(now)
    dd if=/dev/zero of="$dev" bs=1M count="$mb" oflag=direct conv=fsync status=none || fail "seq write failed"
    s=$(elapsed "$t0")
    result "$prefix.seq_write_1m" "$(_mbps "$mb" "$s")" MB/s
    t0=$(now)
    dd if="$dev" of=/dev/null bs=1M count="$mb" iflag=direct status=none || fail "seq read failed"
    s=$(elapsed "$t0")
    result "$prefix.seq_read_1m" "$(_mbps "$mb" "$s")" MB/s
    span=$((mb * 1048576))
    if command -v fio >/dev/null; then
        local common=(--filename="$dev" --direct=1 --bs=4k --size="$span" --time_based
                      --runtime="$secs" --randrepeat=0 --norandommap)
        iops=$(_fio_iops 8 --name=rr --rw=randread --ioengine=psync "${common[@]}") || fail "fio randread failed"
        result "$prefix.rand_read_4k_qd1" "$iops" IOPS
        iops=$(_fio_iops 49 --name=rw --rw=randwrite --ioengine=psync "${common[@]}") || fail "fio randwrite failed"
        result "$prefix.rand_write_4k_qd1" "$iops" IOPS
        iops=$(_fio_iops 8 --name=rr16 --rw=randread --ioengine=libaio --iodepth=16 "${common[@]}") \
            || fail "fio randread qd16 failed"
        result "$prefix.rand_read_4k_qd16" "$iops" IOPS
    else
        local n=2000
        t0=$(now)
        dd if="$dev" of=/dev/null bs=4k count=$n iflag=direct status=none || fail "4k read failed"
        s=$(elapsed "$t0")
        result "$prefix.seq_read_4k_qd1" "$(awk -v n=$n -v s="$s" 'BEGIN{printf "%.0f", n/s}')" IOPS
        t0=$(now)
        dd if=/dev/zero of="$dev" bs=4k count=$n oflag=direct status=none || fail "4k write failed"
        s=$(elapsed "$t0")
        result "$prefix.seq_write_4k_qd1" "$(awk -v n=$n -v s="$s" 'BEGIN{printf "%.0f", n/s}')" IOPS
    fi
}

# clients_block DEV [SIZE_BYTES] [PREFIX]
clients_block() {
    local dev=$1 size=${2:-} p=${3:-client}
    run_check "$p.lsscsi" c_lsscsi "$dev"
    run_check "$p.inquiry" c_inquiry "$dev"
    run_check "$p.vpd80" c_vpd80 "$dev"
    run_check "$p.vpd83" c_vpd83 "$dev"
    run_check "$p.readcap" c_readcap "$dev" "$size"
    run_check "$p.dd_1m_direct" c_dd_1m "$dev"
    run_check "$p.dd_4k_direct" c_dd_4k "$dev"
    if [ "${VM_QUICK:-0}" != 1 ]; then
        run_check "$p.throughput" c_throughput "$dev" "$p"
    fi
    # Last: it leaves a file system on the disk.
    run_check "$p.ext4" c_ext4 "$dev"
}

# ---------------------------------------------------------------- iSCSI --
c_iscsi_login() {
    local url=$1
    iscsi-inq "$url" || fail "iscsi-inq $url failed (login?)"
    iscsi-readcapacity16 "$url" || fail "iscsi-readcapacity16 failed"
}

# c_iscsi_testsuite URL TESTS KNOWN PREFIX: run libiscsi's conformance suite
# (TESTS: a family such as SCSI, iSCSI, ALL, or FAMILY.Suite[.Test]); pass
# when every failed test is listed in KNOWN (one "Suite.Test" a line, #
# comments).  Prints RESULT lines with the counts; the failed tests' names
# go to logs/iscsi-failed.txt (copy it to refresh a known-failures file).
c_iscsi_testsuite() {
    local url=$1 tests=${2:-SCSI} known=${3:-} prefix=$4 log=$VM_LOGS/iscsi-test-cu.out rc
    local args=(--dataloss -t "$tests")
    iscsi-test-cu "${args[@]}" "$url" >"$log" 2>&1
    rc=$?
    sed -n '/Run Summary/,$p' "$log"
    local line run passed failed
    line=$(grep -E '^[[:space:]]+tests[[:space:]]' "$log" | tail -n 1)
    [ -n "$line" ] || fail "no CUnit run summary (rc=$rc); see logs/iscsi-test-cu.out"
    # "tests  <total>  <ran>  <passed>  <failed>  <inactive>"
    read -r _ _ run passed failed _ <<<"$line"
    result "$prefix.iscsi_tests_run" "$run" count
    result "$prefix.iscsi_tests_passed" "$passed" count
    result "$prefix.iscsi_tests_failed" "$failed" count
    # Names ("Suite.Test") of the failed tests: CUnit's verbose mode prints
    # "Suite: S", then "  Test: T ..." and the outcome, either at the end of
    # that line or alone on a later line ("passed" / "FAILED").
    tr -d '\r' <"$log" | awk '
        /^Suite: / { suite = $2; next }
        /^  Test: / { test = $2; if ($0 ~ /\.\.\.FAILED$/) print suite "." test; next }
        /^FAILED$/ { print suite "." test }
    ' | sort -u >"$VM_LOGS/iscsi-failed.txt"
    local unexpected=()
    local t
    while read -r t; do
        [ -n "$t" ] || continue
        if [ -z "$known" ] || [ ! -f "$known" ] || ! sed 's/[[:space:]]*#.*//' "$known" | grep -qxF "$t"; then
            unexpected+=("$t")
        fi
    done <"$VM_LOGS/iscsi-failed.txt"
    echo "failed tests: $(tr '\n' ' ' <"$VM_LOGS/iscsi-failed.txt")"
    [ "${#unexpected[@]}" -eq 0 ] || fail "${#unexpected[@]} unexpected failures: ${unexpected[*]}"
    [ "$failed" -eq 0 ] || echo "all $failed failures are known (${known:-none listed})"
}

# clients_iscsi URL [TESTS] [KNOWN_FAILURES_FILE] [PREFIX]
clients_iscsi() {
    local url=$1 tests=${2:-SCSI} known=${3:-} p=${4:-client}
    run_check "$p.iscsi_login" c_iscsi_login "$url" || return 1
    run_check "$p.iscsi_test_cu" c_iscsi_testsuite "$url" "$tests" "$known" "$p"
}
