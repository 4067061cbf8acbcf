# shellcheck shell=bash
# Suite "optical": one DVD drive (handlers-wasm/optical) served by our
# daemon on the real kernel, exported through tcm_loop, driven by the
# clients optical users run: the sr driver and cdrom layer, blkid, mount
# (iso9660) with a full tree compare, eject / eject -t, `ctl media` swaps
# (also refused while mounted: the kernel locks the tray), sg3_utils
# (PREVENT + eject refused, GET CONFIGURATION, GESN, MECHANISM STATUS, page
# 2Ah), dvd+rw-mediainfo, xorriso, cdrskin, wodim, cd-info, and DVD+R
# burning with growisofs (-Z and -dvd-compat) and xorriso -as cdrecord,
# each re-read and compared, again after an eject and re-insert.
#
# Inputs: TCMU_WASM_BIN.

OPT_DIR=/vmresults/optical
OPT_TMP=/tmp/optical
OPT_PID=

opt_ctl() { NO_COLOR=1 RUST_LOG=warn "$OPT_BIN" ctl --socket "$OPT_TMP/control.sock" "$@"; }

# opt_tree DIR SEED: a small file tree to put on a disc.
opt_tree() {
    local dir=$1 seed=$2 i
    mkdir -p "$dir/docs/deep/er"
    for i in 1 2 3 4 5; do
        head -c $((i * 37000 + seed)) /dev/urandom >"$dir/file$i.bin"
    done
    echo "disc $seed" >"$dir/docs/README"
    head -c 300000 /dev/urandom >"$dir/docs/deep/er/blob"
}

# opt_iso NAME SEED: an ISO 9660 (Rock Ridge, Joliet) image of a new tree.
opt_iso() {
    opt_tree "$OPT_TMP/tree-$1" "$2"
    xorriso -as mkisofs -quiet -R -J -V "OPT_$1" -o "$OPT_TMP/$1.iso" "$OPT_TMP/tree-$1" 2>&1 ||
        fail "xorriso -as mkisofs $1"
}

opt_start() {
    mkdir -p "$OPT_DIR" "$OPT_TMP/state"
    opt_iso a 1
    opt_iso b 2
    opt_iso c 3
    genisoimage -quiet -R -V OPT_G -o "$OPT_TMP/g.iso" "$OPT_TMP/tree-b" || fail "genisoimage"
    cat >"$OPT_TMP/optical.toml" <<EOF
[daemon]
state_dir = "$OPT_TMP/state"
[control]
socket = "$OPT_TMP/control.sock"
[[device]]
name = "dvd0"
handler = "optical"
config = "serial=OPTDVD0"
export = "loopback"
medium = "$OPT_TMP/a.iso"
EOF
    NO_COLOR=1 "$OPT_BIN" serve --config "$OPT_TMP/optical.toml" >>"$OPT_DIR/daemon.log" 2>&1 &
    vm_set OPT_PID $!
    wait_for 90 grep -q 'serving; SIGINT' "$OPT_DIR/daemon.log" || { tail -n 30 "$OPT_DIR/daemon.log"; fail "daemon did not come up"; }
    pid_alive "$OPT_PID" || fail "daemon exited: $(grep -m1 -iE 'error|panic' "$OPT_DIR/daemon.log")"
}

# The sr and sg nodes; the sr driver's view of the drive.
opt_sr() {
    local hctl n
    wait_for 60 lio_hctl_of dvd0 >/dev/null || fail "no SCSI device for dvd0"
    hctl=$(lio_hctl_of dvd0)
    for n in /sys/bus/scsi/devices/"$hctl"/block/* /sys/bus/scsi/devices/"$hctl"/scsi_generic/*; do
        [ -e "$n" ] || continue
        case $(basename "$n") in
            sr*) vm_set OPT_SR "/dev/$(basename "$n")" ;;
            sg*) vm_set OPT_SG "/dev/$(basename "$n")" ;;
        esac
    done
    [ -n "${OPT_SR:-}" ] && [ -b "$OPT_SR" ] || fail "no sr node for $hctl"
    [ -n "${OPT_SG:-}" ] && [ -c "$OPT_SG" ] || fail "no sg node for $hctl"
    echo "dvd0 is $hctl, $OPT_SR, $OPT_SG"
    dmesg | grep -E "\[$(basename "$OPT_SR")\]" || true
    dmesg | grep -q "\[$(basename "$OPT_SR")\] scsi3-mmc drive" || fail "sr did not call it a scsi3-mmc drive"
    grep -E '^(drive name|Can read DVD|Can open tray|Can lock tray|Can change speed)' /proc/sys/dev/cdrom/info
    awk -F'\t+' '/^Can read DVD:/ { exit ($2 == 1 ? 0 : 1) }' /proc/sys/dev/cdrom/info || fail "the cdrom layer masks DVD"
    lsscsi | grep -E 'cd/dvd' || fail "lsscsi does not list a cd/dvd"
}

# opt_mount_compare IMAGE: mount the disc in the drive and compare it with
# the tree IMAGE was made of.
opt_mount_compare() {
    local tree=$OPT_TMP/tree-$1
    mkdir -p /mnt/optical
    blkid "$OPT_SR" | tee /dev/stderr | grep -q 'TYPE="iso9660"' || fail "blkid does not see iso9660"
    mount -t iso9660 -o ro "$OPT_SR" /mnt/optical || fail "mount -t iso9660"
    diff -r "$tree" /mnt/optical || { umount /mnt/optical; fail "the mounted tree differs from $tree"; }
    umount /mnt/optical
}

opt_first_disc() { opt_mount_compare a; }

# eject opens the tray (TUR: tray open); eject -t closes it on the disc.
opt_eject() {
    eject "$OPT_SR" || fail "eject"
    sg_turs -v "$OPT_SG" 2>&1 | tee /dev/stderr | grep -qi 'tray open' || fail "after eject, TUR does not say tray open"
    eject -t "$OPT_SR" || fail "eject -t"
    opt_mount_compare a
}

# The operator's swap: refused while mounted (the kernel locks the tray),
# then a different disc; GESN shows the events and then no change.
opt_swap() {
    local out code
    mkdir -p /mnt/optical
    mount -t iso9660 -o ro "$OPT_SR" /mnt/optical || fail "mount"
    if out=$(opt_ctl media insert dvd0 "$OPT_TMP/b.iso" 2>&1); then
        umount /mnt/optical
        fail "ctl media insert succeeded while the disc was mounted: $out"
    fi
    echo "refused while mounted: $out"
    echo "$out" | grep -q 'prevents medium removal' || { umount /mnt/optical; fail "unexpected refusal: $out"; }
    umount /mnt/optical
    opt_ctl media insert dvd0 "$OPT_TMP/b.iso" || fail "ctl media insert b.iso"
    # Through sg (no sr open, so the kernel has not read the events yet).
    local seen=""
    for _ in 1 2 3 4 5 6; do
        code=$(opt_gesn_code) || fail "GESN failed"
        seen="$seen $code"
        [ "$code" = 2 ] && break
    done
    echo "media events:$seen"
    [ "$code" = 2 ] || fail "no new-media event (saw:$seen)"
    [ "$(opt_gesn_code)" = 0 ] || fail "GESN did not say no change after new media"
    opt_mount_compare b
    opt_ctl status dvd0 | tee /dev/stderr | grep -q "b.iso (read-only)" || fail "ctl status does not show b.iso"
}

# GET EVENT STATUS NOTIFICATION, polled, media class: the event code.
opt_gesn_code() {
    local out
    out=$(sg_raw -r 8 "$OPT_SG" 4a 01 00 00 10 00 00 00 08 00 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out" >&2
    # "00     00 06 04 12 02 02 00 00": the fifth byte's low nibble.
    local byte
    byte=$(echo "$out" | awk '/^ *00 / { print $6; exit }')
    [ -n "$byte" ] || return 1
    echo $((16#$byte & 15))
}

opt_sg_tools() {
    local out
    sg_prevent --prevent=1 "$OPT_SG" || fail "sg_prevent --prevent=1"
    if out=$(sg_start -v --eject "$OPT_SG" 2>&1); then
        sg_prevent --allow "$OPT_SG"
        fail "sg_start --eject succeeded while prevented"
    fi
    echo "$out"
    echo "$out" | grep -qi 'removal prevented' || { sg_prevent --allow "$OPT_SG"; fail "not refused with 53/02: $out"; }
    sg_prevent --allow "$OPT_SG" || fail "sg_prevent --allow"
    sg_get_config -c "$OPT_SG" | tee /dev/stderr | grep -q 'Current profile: DVD-ROM' || fail "sg_get_config: current profile"
    sg_get_config "$OPT_SG" | grep -q 'DVD+R' || fail "sg_get_config: no DVD+R profile listed"
    sg_raw -r 8 "$OPT_SG" bd 00 00 00 00 00 00 00 00 08 00 00 || fail "MECHANISM STATUS"
    sg_modes -10 -p 0x2a "$OPT_SG" || fail "sg_modes -10 -p 0x2a"
    sg_inq -p 0x80 "$OPT_SG" | grep -q OPTDVD0 || fail "VPD 80h serial"
}

opt_clients() {
    local out
    out=$(dvd+rw-mediainfo "$OPT_SR" 2>&1) || { echo "$out"; fail "dvd+rw-mediainfo"; }
    echo "$out"
    echo "$out" | grep -Eq 'Mounted Media: *10h, DVD-ROM' || fail "dvd+rw-mediainfo: not a DVD-ROM"
    out=$(xorriso -outdev "$OPT_SR" -toc 2>&1) || { echo "$out"; fail "xorriso -toc"; }
    echo "$out"
    echo "$out" | grep -q 'Media current: DVD-ROM' || fail "xorriso: media current"
    xorriso -indev "$OPT_SR" -check_media -- 2>&1 || fail "xorriso -check_media"
    cdrskin dev="$OPT_SR" -minfo 2>&1 || fail "cdrskin -minfo"
    out=$(wodim dev="$OPT_SR" -prcap 2>&1) || { echo "$out"; fail "wodim -prcap"; }
    echo "$out"
    echo "$out" | grep -qi 'read DVD-ROM' || fail "wodim: no DVD-ROM read capability"
    cd-info --no-cddb "$OPT_SR" 2>&1 || fail "cd-info"
}

# opt_insert_blank NAME: a blank DVD+R image in the drive.
opt_insert_blank() {
    "$OPT_BIN" media blank "$OPT_TMP/$1.dvd" --size 64M || fail "media blank"
    opt_ctl media insert dvd0 "$OPT_TMP/$1.dvd" --recordable || fail "ctl media insert --recordable"
    local out
    out=$(dvd+rw-mediainfo "$OPT_SR" 2>&1) || { echo "$out"; fail "dvd+rw-mediainfo (blank)"; }
    echo "$out"
    echo "$out" | grep -Eq 'Mounted Media: *1Bh, DVD\+R' || fail "not a DVD+R"
    echo "$out" | grep -Eq 'Disc status: *blank' || fail "not blank"
}

# opt_verify_burn IMAGE DISC: the disc reads back as IMAGE, is complete,
# and still does after an eject and re-insert.
opt_verify_burn() {
    local iso=$OPT_TMP/$1.iso disc=$OPT_TMP/$2.dvd size out
    size=$(stat -c %s "$iso")
    out=$(dvd+rw-mediainfo "$OPT_SR" 2>&1)
    echo "$out"
    echo "$out" | grep -Eq 'Disc status: *complete' || fail "not complete after burning"
    cmp -n "$size" "$iso" "$OPT_SR" || fail "the burned disc differs from $1.iso"
    opt_ctl media eject dvd0 || fail "ctl media eject"
    opt_ctl media insert dvd0 "$disc" --recordable || fail "ctl media insert (burned)"
    cmp -n "$size" "$iso" "$OPT_SR" || fail "after re-insert the disc differs from $1.iso"
    cmp -n "$size" "$iso" "$disc" || fail "the image file does not start with $1.iso"
}

opt_growisofs() {
    opt_insert_blank burn1
    growisofs -Z "$OPT_SR=$OPT_TMP/c.iso" 2>&1 || fail "growisofs -Z"
    opt_verify_burn c burn1
    opt_mount_compare c
}

opt_growisofs_compat() {
    opt_insert_blank burn2
    growisofs -dvd-compat -Z "$OPT_SR=$OPT_TMP/b.iso" 2>&1 || fail "growisofs -dvd-compat -Z"
    opt_verify_burn b burn2
}

opt_xorriso_burn() {
    opt_insert_blank burn3
    xorriso -as cdrecord -v dev="$OPT_SR" "$OPT_TMP/g.iso" 2>&1 || fail "xorriso -as cdrecord"
    opt_verify_burn g burn3
}

opt_stop() {
    kill -TERM "$OPT_PID"
    wait_for 30 pid_gone "$OPT_PID" || fail "daemon still running 30s after SIGTERM"
}

suite_main() {
    OPT_BIN=${TCMU_WASM_BIN:-$VM_REPO/target/release/tcmu-wasm}
    rm -rf "$OPT_TMP"
    mkdir -p "$OPT_TMP"
    modprobe isofs 2>/dev/null || true
    run_check optical.start opt_start || return
    run_check optical.sr opt_sr || return
    run_check optical.mount opt_first_disc
    run_check optical.eject opt_eject
    run_check optical.swap opt_swap
    run_check optical.sg_tools opt_sg_tools
    run_check optical.clients opt_clients
    run_check optical.growisofs opt_growisofs
    run_check optical.growisofs_dvd_compat opt_growisofs_compat
    run_check optical.xorriso_cdrecord opt_xorriso_burn
    run_check optical.stop opt_stop
}
