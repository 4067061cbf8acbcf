# shellcheck shell=bash
# Suite "vtl": the virtual tape library of examples/vtl.toml served by our
# daemon on the real kernel, exported through tcm_loop, driven by the
# clients tape users run: lsscsi, mtx (status, load, unload, transfer,
# inventory, loaderinfo, tapeinfo), mt-st, tar, dd, sg3_utils, Bacula's
# btape (test, autochanger through mtx-changer, fill) and Amanda's
# amtapetype; kill -9 of the daemon mid-tar. The data checks run twice:
# with the st driver's async writes on (Debian's default) and off.
#
# Inputs: TCMU_WASM_BIN, VTL_CONFIG (default examples/vtl.toml).

VTL_DIR=/vmresults/vtl
VTL_PID=
VTL_TMP=/tmp/vtl-client

vtl_ctl() { NO_COLOR=1 RUST_LOG=warn "$VTL_BIN" ctl "$@"; }

# The SCSI address of the tcm_loop LUN of backstore NAME (lib/lio.sh).
vtl_hctl_of() { lio_hctl_of "$@"; }

# vtl_node HCTL CLASS PATTERN: the /dev node of the device's CLASS entry
# (scsi_tape, scsi_generic, scsi_changer) matching PATTERN.
vtl_node() {
    local n
    for n in /sys/bus/scsi/devices/"$1"/"$2"/*; do
        [ -e "$n" ] || continue
        n=$(basename "$n")
        [[ $n =~ $3 ]] && { echo "/dev/$n"; return 0; }
    done
    return 1
}

vtl_start() {
    local cfg=$1 log=$VTL_DIR/daemon.log
    mkdir -p "$VTL_DIR"
    NO_COLOR=1 "$VTL_BIN" serve --config "$cfg" >>"$log" 2>&1 &
    vm_set VTL_PID $!
    wait_for 90 grep -q 'serving; SIGINT' "$log" || { tail -n 30 "$log"; fail "daemon did not come up"; }
    pid_alive "$VTL_PID" || fail "daemon exited: $(grep -m1 -iE 'error|panic' "$log")"
    echo "daemon pid $VTL_PID"
}

# Find the changer's and drives' device nodes; lsscsi must list them.
vtl_devices() {
    local h out
    wait_for 60 vtl_hctl_of vtl0-changer >/dev/null || fail "no SCSI device for vtl0-changer"
    for d in vtl0-drive0 vtl0-drive1; do
        wait_for 60 vtl_hctl_of "$d" >/dev/null || fail "no SCSI device for $d"
    done
    h=$(vtl_hctl_of vtl0-changer)
    wait_for 20 vtl_node "$h" scsi_generic '^sg[0-9]+$' >/dev/null || fail "changer has no sg node"
    vm_set VTL_SGC "$(vtl_node "$h" scsi_generic '^sg[0-9]+$')"
    wait_for 20 vtl_node "$h" scsi_changer '^sch[0-9]+$' >/dev/null || fail "the ch driver did not bind the changer"
    vm_set VTL_SCH "$(vtl_node "$h" scsi_changer '^sch[0-9]+$')"
    h=$(vtl_hctl_of vtl0-drive0)
    wait_for 20 vtl_node "$h" scsi_tape '^nst[0-9]+$' >/dev/null || fail "the st driver did not bind drive 0"
    vm_set VTL_NST "$(vtl_node "$h" scsi_tape '^nst[0-9]+$')"
    vm_set VTL_ST "$(vtl_node "$h" scsi_tape '^st[0-9]+$')"
    vm_set VTL_SGT "$(vtl_node "$h" scsi_generic '^sg[0-9]+$')"
    h=$(vtl_hctl_of vtl0-drive1)
    vm_set VTL_NST1 "$(vtl_node "$h" scsi_tape '^nst[0-9]+$')"
    out=$(lsscsi -g)
    echo "$out"
    grep -q 'mediumx' <<<"$out" || fail "lsscsi shows no mediumx device"
    [ "$(grep -c 'tape ' <<<"$out")" -ge 2 ] || fail "lsscsi shows fewer than two tape drives"
    grep -q "$VTL_NST\|${VTL_ST}" <<<"$out$(ls -l /dev/st* /dev/nst*)" || true
    [ -c "$VTL_ST" ] && [ -c "$VTL_NST" ] && [ -c "$VTL_SCH" ] || fail "missing /dev nodes: $VTL_ST $VTL_NST $VTL_SCH"
    echo "changer $VTL_SGC ($VTL_SCH), drive 0 $VTL_NST ($VTL_SGT), drive 1 $VTL_NST1"
}

vtl_mtx_status() {
    local out
    out=$(mtx -f "$VTL_SGC" status) || fail "mtx status failed"
    echo "$out"
    grep -q 'Storage Changer .*:2 Drives, 9 Slots ( 1 Import/Export )' <<<"$out" || fail "wrong element counts"
    grep -q 'Data Transfer Element 0:Empty' <<<"$out" || fail "drive 0 not empty at start"
    grep -q 'Storage Element 1:Full :VolumeTag=E01001L5' <<<"$out" || fail "slot 1 does not show E01001L5"
    grep -q 'Storage Element 7:Empty' <<<"$out" || fail "slot 7 not empty"
    grep -q 'Storage Element 9 IMPORT/EXPORT:Empty' <<<"$out" || fail "no empty mail slot"
    mtx -f "$VTL_SGC" inventory || fail "mtx inventory failed"
    out=$(loaderinfo -f "$VTL_SGC") || fail "loaderinfo failed"
    echo "$out"
    grep -q 'Number of Medium Transport Elements: 1' <<<"$out" || fail "loaderinfo: transport elements"
    grep -q 'Number of Storage Elements: 8' <<<"$out" || fail "loaderinfo: storage elements"
    grep -q 'Number of Import/Export Elements: 1' <<<"$out" || fail "loaderinfo: import/export"
    grep -q 'Number of Data Transfer Elements: 2' <<<"$out" || fail "loaderinfo: drives"
    grep -q 'Bar Code Reader: Yes' <<<"$out" || fail "loaderinfo: no barcode reader"
}

# Wait until mt-st says the drive is ONLINE (what Bacula's mtx-changer does).
vtl_wait_online() {
    wait_for 30 sh -c "mt-st -f '$1' status 2>/dev/null | grep -q ONLINE" || { mt-st -f "$1" status; return 1; }
}

vtl_load() {
    local out
    mtx -f "$VTL_SGC" load 1 0 || fail "mtx load 1 0 failed"
    vtl_wait_online "$VTL_NST" || fail "drive 0 never came ONLINE after the load"
    out=$(mtx -f "$VTL_SGC" status)
    grep -q 'Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = E01001L5' <<<"$out" \
        || { echo "$out"; fail "mtx status does not show slot 1's cartridge in drive 0"; }
    grep -q 'Storage Element 1:Empty' <<<"$out" || fail "slot 1 still full"
    out=$(tapeinfo -f "$VTL_SGT") || fail "tapeinfo failed"
    echo "$out"
    grep -q 'Ready: yes' <<<"$out" || fail "tapeinfo: not ready"
    grep -q 'BlockSize: 0' <<<"$out" || fail "tapeinfo: not in variable-block mode"
    grep -q 'MinBlock: 1' <<<"$out" || fail "tapeinfo: MinBlock"
    mt-st -f "$VTL_NST" status
}

# mt_pos DEV: "FILE BLOCK" from mt-st status.
mt_pos() {
    mt-st -f "$1" status | sed -n 's/^File number=\([-0-9]*\), block number=\([-0-9]*\).*/\1 \2/p'
}
# expect_pos DEV FILE BLOCK WHAT; BLOCK "*": any (st does not know the
# block number after spacing to end of data: it says -1).
expect_pos() {
    local got
    got=$(mt_pos "$1")
    # shellcheck disable=SC2053
    [[ $got == $2\ $3 ]] || fail "after $4: at file/block '$got', expected '$2 $3'"
}

# Positioning with mt-st over three files of records written with dd.
vtl_mt() {
    local t=$VTL_NST f
    mkdir -p "$VTL_TMP"
    mt-st -f "$t" rewind || fail "rewind"
    for f in 0 1 2; do
        head -c $((4 * 4096)) /dev/urandom >"$VTL_TMP/file$f"
        # st writes a filemark when a device written to is closed.
        dd if="$VTL_TMP/file$f" of="$t" bs=4096 status=none || fail "dd write of file $f"
    done
    expect_pos "$t" 3 0 "three files"
    mt-st -f "$t" rewind; expect_pos "$t" 0 0 rewind
    mt-st -f "$t" fsf 2 || fail "fsf 2"; expect_pos "$t" 2 0 "fsf 2"
    # Back over the filemark (to the end of file 1) and over its last block.
    mt-st -f "$t" bsf 1 || fail "bsf 1"
    mt-st -f "$t" bsr 1 || fail "bsr 1 after bsf"
    dd if="$t" of="$VTL_TMP/block" bs=4096 count=1 status=none || fail "read after bsf, bsr"
    cmp "$VTL_TMP/block" <(tail -c 4096 "$VTL_TMP/file1") || fail "bsf 1, bsr 1 did not land on file 1's last block"
    mt-st -f "$t" rewind; mt-st -f "$t" fsf 1; mt-st -f "$t" fsr 3 || fail "fsr 3"
    expect_pos "$t" 1 3 "fsf 1, fsr 3"
    mt-st -f "$t" bsr 1 || fail "bsr"; expect_pos "$t" 1 2 "bsr 1"
    dd if="$t" of="$VTL_TMP/block" bs=4096 count=1 status=none || fail "read after bsr"
    cmp "$VTL_TMP/block" <(tail -c +$((2 * 4096 + 1)) "$VTL_TMP/file1" | head -c 4096) || fail "wrong block after bsr"
    mt-st -f "$t" eod || fail "eod"; expect_pos "$t" 3 "*" "eod"
    local tell
    tell=$(mt-st -f "$t" tell | sed -n 's/^At block \([0-9]*\)\./\1/p')
    [ "$tell" = 15 ] || fail "tell at EOD says block '$tell', expected 15 (12 records + 3 filemarks)"
    mt-st -f "$t" seek 5 || fail "seek 5"
    tell=$(mt-st -f "$t" tell | sed -n 's/^At block \([0-9]*\)\./\1/p')
    [ "$tell" = 5 ] || fail "tell after seek 5 says '$tell'"
    dd if="$t" of="$VTL_TMP/block" bs=4096 count=1 status=none || fail "read after seek"
    cmp "$VTL_TMP/block" <(head -c 4096 "$VTL_TMP/file1") || fail "seek 5 is not file 1's first block"
    mt-st -f "$t" lock || fail "lock"
    mt-st -f "$t" unlock || fail "unlock"
    mt-st -f "$t" compression 1 || fail "compression 1"
    mt-st -f "$t" compression 0 || fail "compression 0"
    mt-st -f "$t" rewind; mt-st -f "$t" erase || fail "erase"
    mt-st -f "$t" rewind
    dd if="$t" of=/dev/null bs=4096 count=1 status=none 2>/dev/null
    mt-st -f "$t" eod; expect_pos "$t" 0 "*" "eod after erase"
}

# tar -b 128 of a tree, list, extract, compare.
vtl_tar() {
    local t=$VTL_NST src=/usr/share/doc/bash out=$VTL_TMP/untar
    mt-st -f "$t" rewind || fail rewind
    tar -cf "$t" -b 128 "$src" /usr/share/common-licenses || fail "tar -c failed"
    mt-st -f "$t" rewind
    tar -tf "$t" -b 128 >"$VTL_TMP/list" || fail "tar -t failed"
    grep -q 'usr/share/common-licenses/GPL-3' "$VTL_TMP/list" || fail "listing lacks a file"
    mt-st -f "$t" rewind
    rm -rf "$out"; mkdir -p "$out"
    tar -xf "$t" -b 128 -C "$out" || fail "tar -x failed"
    diff -r "$src" "$out$src" || fail "extracted tree differs"
    diff -r /usr/share/common-licenses "$out/usr/share/common-licenses" || fail "extracted licenses differ"
    echo "tar: $(wc -l <"$VTL_TMP/list") entries round-tripped"
}

# Variable blocks of mixed sizes; then reads with a buffer smaller than the
# block: the st driver must fail with ENOMEM, with and without SILI.
vtl_dd_variable() {
    local t=$VTL_NST sizes=(1024 65536 512 262144 7 4096) i=0 s err
    mt-st -f "$t" rewind
    for s in "${sizes[@]}"; do
        head -c "$s" /dev/urandom >"$VTL_TMP/rec$i"
        i=$((i + 1))
    done
    # One open of the device for all blocks (closing it writes a filemark):
    # each dd writes one block of its size to the shared descriptor.
    (
        i=0
        for s in "${sizes[@]}"; do
            dd if="$VTL_TMP/rec$i" bs="$s" count=1 status=none || exit 1
            i=$((i + 1))
        done
    ) >"$t" || fail "writing the blocks"
    mt-st -f "$t" rewind
    local rc=0
    (
        i=0
        for s in "${sizes[@]}"; do
            dd of="$VTL_TMP/back$i" bs=512k count=1 status=none || exit 1
            i=$((i + 1))
        done
        [ "$(dd bs=512k count=1 status=none | wc -c)" = 0 ] || exit 2
    ) <"$t" || rc=$?
    case $rc in 1) fail "reading the blocks back" ;; 2) fail "no filemark after the blocks" ;; esac
    i=0
    for s in "${sizes[@]}"; do
        cmp "$VTL_TMP/rec$i" "$VTL_TMP/back$i" || fail "block $i ($s bytes) differs"
        i=$((i + 1))
    done
    for sili in off on; do
        [ "$sili" = on ] && mt-st -f "$t" stsetoptions sili
        mt-st -f "$t" rewind
        mt-st -f "$t" fsr 1 # the 64 KiB block
        err=$(dd if="$t" of=/dev/null bs=16k count=1 2>&1) && fail "a 16k read of a 64k block succeeded (sili $sili)"
        echo "$err"
        grep -q 'Cannot allocate memory' <<<"$err" || fail "sili $sili: expected ENOMEM, got: $err"
        # The next block reads normally.
        dd if="$t" of="$VTL_TMP/back" bs=512k count=1 status=none || fail "read after ENOMEM (sili $sili)"
        cmp "$VTL_TMP/rec2" "$VTL_TMP/back" || fail "block after the ENOMEM one differs (sili $sili)"
        # A buffer larger than the block returns the block (short read).
        mt-st -f "$t" rewind
        [ "$(dd if="$t" bs=8k count=1 status=none | wc -c)" = 1024 ] || fail "short read (sili $sili)"
    done
    mt-st -f "$t" stclearoptions sili
}

# Fixed-block mode: setblk 512, dd bs=512 and bs=8k, byte-exact.
vtl_fixed() {
    local t=$VTL_NST
    mt-st -f "$t" rewind
    mt-st -f "$t" setblk 512 || fail "setblk 512"
    mt-st -f "$t" status | grep -q 'Tape block size 512 bytes' || fail "block size not 512"
    head -c $((64 * 512)) /dev/urandom >"$VTL_TMP/fixed"
    dd if="$VTL_TMP/fixed" of="$t" bs=8k status=none || fail "fixed-mode write"
    mt-st -f "$t" weof 1
    mt-st -f "$t" rewind
    dd if="$t" of="$VTL_TMP/fixed.back" bs=512 status=none || fail "fixed-mode read bs=512"
    cmp "$VTL_TMP/fixed" "$VTL_TMP/fixed.back" || fail "fixed-mode data differs (bs=512)"
    mt-st -f "$t" rewind
    dd if="$t" of="$VTL_TMP/fixed.back" bs=32k status=none || fail "fixed-mode read bs=32k"
    cmp "$VTL_TMP/fixed" "$VTL_TMP/fixed.back" || fail "fixed-mode data differs (bs=32k)"
    mt-st -f "$t" setblk 0 || fail "setblk 0"
    mt-st -f "$t" status | grep -q 'Tape block size 0 bytes' || fail "not back in variable mode"
}

vtl_sg_tools() {
    local p
    for p in 0x00 0x02 0x03 0x0c 0x17 0x2e 0x31; do
        sg_logs -p "$p" "$VTL_SGT" || fail "sg_logs -p $p"
    done
    sg_logs -a "$VTL_SGT" >/dev/null || fail "sg_logs -a"
    sg_modes -a "$VTL_SGT" || fail "sg_modes -a"
    sg_read_attr "$VTL_SGT" || fail "sg_read_attr"
    sg_read_attr -e "$VTL_SGT" >/dev/null || fail "sg_read_attr -e"
    sg_read_block_limits "$VTL_SGT" || fail "sg_read_block_limits"
    sg_inq -p 0xb0 "$VTL_SGT" || fail "sg_inq VPD B0"
    sg_logs -p 0x31 "$VTL_SGT" | grep -qi 'main partition maximum capacity' || fail "tape capacity page not decoded"
}

# Move cartridges around with mtx: transfer, unload without offline, load
# the other drive.
vtl_mtx_moves() {
    local out
    mtx -f "$VTL_SGC" unload 1 0 || fail "mtx unload (no offline first)"
    mtx -f "$VTL_SGC" transfer 2 7 || fail "mtx transfer 2 7"
    mtx -f "$VTL_SGC" load 7 1 || fail "mtx load 7 1"
    vtl_wait_online "$VTL_NST1" || fail "drive 1 not ONLINE"
    mt-st -f "$VTL_NST1" offline || fail "mt offline"
    mtx -f "$VTL_SGC" unload 7 1 || fail "mtx unload after offline"
    mtx -f "$VTL_SGC" transfer 7 2 || fail "transfer back"
    out=$(mtx -f "$VTL_SGC" status)
    echo "$out"
    grep -q 'Storage Element 2:Full :VolumeTag=E01002L5' <<<"$out" || fail "E01002L5 not back in slot 2"
    grep -q 'Data Transfer Element 1:Empty' <<<"$out" || fail "drive 1 not empty"
    # Errors: mtx refuses a load from an empty slot itself; the changer
    # refuses the MOVE MEDIUM with 05/3B/0E, and a full destination 05/3B/0D.
    out=$(mtx -f "$VTL_SGC" load 8 0 2>&1)
    echo "$out"
    grep -qi 'is empty' <<<"$out" || fail "mtx did not see slot 8 empty"
    out=$(sg_raw "$VTL_SGC" a5 00 00 00 04 07 00 01 00 00 00 00 2>&1) && fail "MOVE MEDIUM from an empty slot succeeded"
    echo "$out"
    grep -qi 'medium source element empty' <<<"$out" || fail "empty source: not 05/3B/0E"
    out=$(sg_raw "$VTL_SGC" a5 00 00 00 04 00 04 01 00 00 00 00 2>&1) && fail "MOVE MEDIUM onto a full slot succeeded"
    echo "$out"
    grep -qi 'medium destination element full' <<<"$out" || fail "full destination: not 05/3B/0D"
    # The operator's mail slot: import a new cartridge, the robot stores it.
    vtl_ctl library create vtl0 NEW001L5 --size 360M --import || fail "ctl library create --import"
    mtx -f "$VTL_SGC" status | grep -q 'Storage Element 9 IMPORT/EXPORT:Full :VolumeTag=NEW001L5' \
        || fail "mtx does not see the imported cartridge"
    mtx -f "$VTL_SGC" transfer 9 8 || fail "transfer from the mail slot"
    mtx -f "$VTL_SGC" load 1 0 || fail "reload slot 1"
    vtl_wait_online "$VTL_NST" || fail "drive 0 not ONLINE again"
}

# vtl_discard SLOT: take the cartridge in SLOT (if any) out through the mail slot and
# delete its image (they live in the guest's RAM).
vtl_discard() {
    local out dir barcode
    out=$(mtx -f "$VTL_SGC" status)
    barcode=$(sed -n "s/^ *Storage Element $1:Full :VolumeTag=\([^ ]*\).*/\1/p" <<<"$out")
    [ -n "$barcode" ] || { echo "slot $1 is empty: nothing to discard"; return 0; }
    mtx -f "$VTL_SGC" transfer "$1" 9 || fail "slot $1 to the mail slot"
    vtl_ctl library export vtl0 || fail "export $barcode"
    dir=$(sed -n 's/^directory *= *"\(.*\)"/\1/p' "$VTL_CFG" | head -1)
    rm -f "$dir/$barcode.tape"
}

vtl_sd_conf() {
    mkdir -p /var/lib/bacula /run/bacula /etc/bacula/scripts
    sed -i 's/^offline=.*/offline=1/; s/^offline_sleep=.*/offline_sleep=0/; s/^load_sleep=.*/load_sleep=0/' \
        /etc/bacula/scripts/mtx-changer.conf 2>/dev/null
    cat >"$VTL_TMP/bacula-sd.conf" <<EOF
Storage { Name = vtl-sd; WorkingDirectory = /var/lib/bacula; Pid Directory = /run/bacula }
Device {
  Name = Drive-0; Media Type = LTO; Archive Device = $VTL_NST
  AutomaticMount = yes; AlwaysOpen = yes; RemovableMedia = yes; RandomAccess = no
  AutoChanger = ${1:-no}; Drive Index = 0; Changer Device = $VTL_SGC
  Changer Command = "/etc/bacula/scripts/mtx-changer %c %o %S %a %d"
  # btape's test writes 2 x 10000 blocks: 16 KiB blocks keep that at
  # 330 MB (the guest's cartridges live in RAM).
  Maximum Block Size = 16384
  Maximum File Size = 4M
}
Messages { Name = Standard; stdout = all }
EOF
}

vtl_btape_test() {
    local out rc
    vtl_sd_conf yes
    # A cartridge big enough for the test, in slot 7, into drive 0.
    vtl_ctl library create vtl0 BTAPE1L5 --size 512M --import || fail "create the btape cartridge"
    mtx -f "$VTL_SGC" transfer 9 7 || fail "store it in slot 7"
    mtx -f "$VTL_SGC" unload 1 0 || fail "unload drive 0"
    mtx -f "$VTL_SGC" load 7 0 || fail "load slot 7"
    vtl_wait_online "$VTL_NST" || fail "not ONLINE"
    mt-st -f "$VTL_NST" rewind
    out=$(printf 'test\ny\nquit\n' | timeout 400 btape -c "$VTL_TMP/bacula-sd.conf" "$VTL_NST" 2>&1); rc=$?
    grep -v 'Orphaned buffer' <<<"$out"
    [ "$rc" = 0 ] || fail "btape test exited $rc"
    [ "$(grep -c '=== Test Succeeded. End Write, rewind, and re-read test ===' <<<"$out")" -ge 2 ] \
        || fail "write/rewind/re-read test did not succeed twice"
    grep -q 'This is NOT correct' <<<"$out" && fail "btape: $(grep -m1 'NOT correct' <<<"$out")"
    grep -q 'Append test failed' <<<"$out" && fail "btape: append test failed"
    grep -q 'We should be in file 3. I am at file 3. This is correct!' <<<"$out" || fail "append: not in file 3"
    grep -q 'Block re-read correct. Test succeeded!' <<<"$out" || fail "re-read block test"
    grep -q 'The test autochanger worked!!' <<<"$out" || fail "autochanger test did not work"
}

# btape fill on a small cartridge (simple, one-tape mode): Bacula writes
# until the drive's early warning, gets ENOSPC on the next write, writes its
# end-of-medium mark and re-reads the last block it wrote; then it rewinds,
# reads 10000 records, repositions to the last block and compares it. The
# cartridge must hold more than that: with fewer than 10000 records (of
# 32 KiB) btape asks for a second volume halfway through its re-read, and
# with fewer than 1000 blocks it writes on after the end and cancels its own
# job ("Device at EOM"). (The two-tape mode needs a catalog to find its
# second volume.)
vtl_btape_fill() {
    local out rc bytes
    vtl_sd_conf no
    mtx -f "$VTL_SGC" unload || true
    mtx -f "$VTL_SGC" load 8 0 || fail "load the 360 MiB cartridge"
    vtl_wait_online "$VTL_NST" || fail "not ONLINE"
    mt-st -f "$VTL_NST" rewind
    out=$(printf 'fill\ns\n\nquit\n' | timeout 300 btape -c "$VTL_TMP/bacula-sd.conf" "$VTL_NST" 2>&1); rc=$?
    grep -v 'Orphaned buffer' <<<"$out" | grep -v 'Last block at\|End of tape' | tail -40
    echo "btape exited $rc"
    grep -q 'End of Volume "TestVolume1" at .* Write of 16384 bytes got -1' <<<"$out" \
        || fail "btape never got ENOSPC at the end of the cartridge"
    grep -q 'Re-read of last block succeeded.' <<<"$out" || fail "btape could not re-read the last block at EOM"
    grep -q '10000 records read now at' <<<"$out" || fail "btape's re-read from the start stopped early"
    grep -q 'The last block on the tape matches. Test succeeded.' <<<"$out" \
        || fail "btape's re-read of the last block after a reposition failed"
    [ "$rc" = 0 ] || fail "btape fill exited $rc"
    bytes=$(sed -n 's/.*End of tape [0-9]*:[0-9]*. Volume Bytes=\([0-9,]*\)\..*/\1/p' <<<"$out" | head -1 | tr -d ,)
    echo "volume bytes at the end: $bytes"
    [ -n "$bytes" ] && [ "$bytes" -gt $((357 * 1048576)) ] || fail "the end came early: $bytes bytes on a 360 MiB cartridge"
    mtx -f "$VTL_SGC" unload 8 0 || fail "back to slot 8"
    vtl_discard 8
    vtl_discard 7  # btape test's
}

# amtapetype: a full run fills the cartridge and reports whether the drive
# and kernel signal the early warning ("LEOM is supported"). Amanda's tape
# device acts on the early warning only with its LEOM property on (the
# default is off, and then amtapetype always says "not supported"), so the
# drive is a named device with LEOM set, as amtapetype's advice puts it.
# Before filling, amtapetype guesses at compression: it writes random data
# for 60 s, then the same amount of patterned data, and gives up if the
# second pass reaches the end. So the cartridge must hold well over a
# minute of writing: it is sized from a 10 s measurement of the drive.
# Minutes of writing under emulation: VM_QUICK=1 skips it.
vtl_amtapetype() {
    local out t0 t1 bytes rate size image
    mkdir -p /etc/amanda/vtl
    cat >/etc/amanda/vtl/amanda.conf <<EOF
define device vtape {
    tapedev "tape:$VTL_NST"
    device-property "LEOM" "TRUE"
}
EOF
    mtx -f "$VTL_SGC" unload >/dev/null 2>&1 || true
    mtx -f "$VTL_SGC" load 1 0 || fail "load slot 1 for the speed measurement"
    vtl_wait_online "$VTL_NST" || fail "not ONLINE"
    mt-st -f "$VTL_NST" rewind
    # 16 MiB in 32 KiB writes (well inside the 64 MiB cartridge), timed.
    bytes=$((16 << 20))
    t0=$(date +%s%N)
    dd if=/dev/zero of="$VTL_NST" bs=32k count=$((bytes >> 15)) status=none || fail "the speed measurement failed"
    t1=$(date +%s%N)
    rate=$(( bytes * 1000000000 / (t1 - t0) ))
    # Zeros cost the writer nothing, so Amanda's random data goes no faster:
    # 90 s at this rate holds its 60 s with room to spare. (The image lives
    # in the guest's RAM, hence the VM's memory.)
    size=$(( (90 * rate + (64 << 20)) >> 20 ))
    echo "32 KiB writes at $rate bytes/s: a ${size} MiB cartridge"
    mtx -f "$VTL_SGC" unload 1 0 || fail "slot 1 back"
    out=$(vtl_ctl library create vtl0 AMANDA1L5 --size "${size}M" --import) || fail "create the amtapetype cartridge"
    echo "$out"
    image=$(sed -n 's/.*created \(.*\.tape\) (.*/\1/p' <<<"$out")
    mtx -f "$VTL_SGC" load 9 0 || fail "load it from the mail slot"
    vtl_wait_online "$VTL_NST" || fail "not ONLINE"
    mt-st -f "$VTL_NST" rewind
    out=$(timeout 1200 amtapetype -f -b 32k -t vtape vtl vtape 2>&1) || { echo "$out"; fail "amtapetype failed"; }
    echo "$out" | tr '\r' '\n' | grep -v '^ *File [0-9]*, block' | grep -v '^ *$'
    grep -q 'define tapetype vtape' <<<"$out" || fail "no tapetype definition"
    grep -q 'Got LEOM indication' <<<"$out" || fail "amtapetype saw no early warning"
    grep -q 'LEOM is supported' <<<"$out" || fail "amtapetype did not report LEOM support"
    # The length it found is the cartridge's payload up to the early warning:
    # the image less its 4 KiB header and the 1 MiB early-warning zone, each
    # 32 KiB record costing a 32-byte record header (1/1025 of the rest).
    # amtapetype stops at the first early warning, give or take a file's
    # end, so allow 2 MiB under that and at most the warning zone over it.
    local kb expect
    kb=$(sed -n 's/^ *length \([0-9]*\) kbytes/\1/p' <<<"$out")
    expect=$(( (size * 1024 - 4 - 1024) * 1024 / 1025 ))
    echo "length ${kb} KiB on a ${size} MiB cartridge (payload to the early warning: ${expect} KiB)"
    [ -n "$kb" ] && [ "$kb" -gt $(( expect - 2048 )) ] && [ "$kb" -le $(( expect + 1024 )) ] \
        || fail "the length amtapetype found ($kb KiB) is not the cartridge's payload (${expect} KiB of ${size} MiB)"
    mtx -f "$VTL_SGC" unload 9 0 || fail "back to the mail slot"
    vtl_ctl library export vtl0 || fail "export the amtapetype cartridge"
    rm -f "$image"  # it filled the guest's RAM
}

# kill -9 of the daemon in the middle of a tar to tape; after a restart the
# cartridge, still in the drive, reads back every acknowledged record.
vtl_kill9() {
    local t=$VTL_NST stream=$VTL_TMP/stream.tar written got records
    mtx -f "$VTL_SGC" status
    # Drive 0 may hold a cartridge from an earlier check, or none.
    mtx -f "$VTL_SGC" unload >/dev/null 2>&1 || true
    mtx -f "$VTL_SGC" load 1 0 || fail "load slot 1"
    vtl_wait_online "$t" || fail "not online"
    tar -cf "$stream" -b 128 /usr/share/doc /usr/share/common-licenses 2>/dev/null
    head -c $((16 * 1048576)) "$stream" >"$stream.cut" && mv "$stream.cut" "$stream"
    records=$(( $(stat -c %s "$stream") / 65536 ))
    mt-st -f "$t" rewind
    # One open of the tape, 64 KiB records paced so that the kill lands
    # mid-stream; each record that write() returned for is counted.
    echo 0 >"$VTL_TMP/acked"
    (
        i=0
        while [ "$i" -lt "$records" ]; do
            dd if="$stream" bs=64k skip="$i" count=1 status=none 2>/dev/null || break
            i=$((i + 1))
            echo "$i" >"$VTL_TMP/acked"
            sleep 0.02
        done
    ) >"$t" 2>/dev/null &
    local writer=$!
    sleep 3
    kill -KILL "$VTL_PID"
    wait "$writer"
    written=$(cat "$VTL_TMP/acked")
    [ "$written" -gt 0 ] && [ "$written" -lt "$records" ] || fail "the kill did not land mid-stream ($written of $records records)"
    vtl_start "$VTL_CFG"
    vtl_wait_online "$t" || fail "drive 0 not ONLINE after the restart"
    mt-st -f "$t" rewind
    dd if="$t" of="$VTL_TMP/back.tar" bs=64k status=none
    got=$(( $(stat -c %s "$VTL_TMP/back.tar") / 65536 ))
    echo "dd reported $written records written; $got read back"
    # With async writes st acknowledges a write before the drive does: one
    # record may still have been in flight.
    [ "$got" -ge $((written - ${1:-0})) ] || fail "$got records on tape, $written acknowledged"
    cmp -n $((got * 65536)) "$stream" "$VTL_TMP/back.tar" || fail "what is on the tape is not the stream's prefix"
}

vtl_stop() {
    kill -TERM "$VTL_PID"
    wait_for 30 pid_gone "$VTL_PID" || fail "daemon still running 30s after SIGTERM"
}

suite_main() {
    VTL_BIN=${TCMU_WASM_BIN:-$VM_REPO/target/release/tcmu-wasm}
    VTL_CFG=${VTL_CONFIG:-$VM_REPO/examples/vtl.toml}
    mkdir -p "$VTL_TMP"
    run_check vtl.start vtl_start "$VTL_CFG" || return
    run_check vtl.lsscsi vtl_devices || return
    if [ -n "${VTL_ONLY:-}" ]; then
        # A quick run of some checks (they must set up what they need).
        local only
        for only in $VTL_ONLY; do run_check "vtl.$only" "vtl_$only"; done
        return
    fi
    run_check vtl.mtx_status vtl_mtx_status
    run_check vtl.mtx_load vtl_load || return
    local mode
    for mode in async sync; do
        if [ "$mode" = sync ]; then
            mt-st -f "$VTL_NST" stclearoptions async-writes buffer-writes
        fi
        run_check "vtl.$mode.mt" vtl_mt
        run_check "vtl.$mode.tar" vtl_tar
        run_check "vtl.$mode.dd_variable" vtl_dd_variable
        run_check "vtl.$mode.fixed" vtl_fixed
    done
    mt-st -f "$VTL_NST" stsetoptions async-writes buffer-writes
    run_check vtl.sg_tools vtl_sg_tools
    run_check vtl.mtx_moves vtl_mtx_moves
    run_check vtl.btape_test vtl_btape_test
    run_check vtl.btape_fill vtl_btape_fill
    if [ "${VM_QUICK:-0}" != 1 ]; then
        run_check vtl.amtapetype vtl_amtapetype
    else
        check_skip vtl.amtapetype "VM_QUICK=1 (it writes for minutes)"
    fi
    run_check vtl.kill9_async vtl_kill9 1
    mt-st -f "$VTL_NST" stclearoptions async-writes buffer-writes
    run_check vtl.kill9_sync vtl_kill9 0
    run_check vtl.stop vtl_stop
}
