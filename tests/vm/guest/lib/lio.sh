# shellcheck shell=bash
# LIO configfs helpers: user (TCMU) backstores, tcm_loop and iSCSI exports,
# and finding the SCSI disk that a backstore became.
#
# Teardown rule: a LUN's link to its backstore is removed with unlink (rm on
# a configfs symlink is fine too, but never rm -r anything under configfs).

CFS=/sys/kernel/config/target

# A WWN-ish suffix that differs per call: 0x5001405 + 9 hex digits.
lio_naa() { printf 'naa.5001405%09x\n' $(( (RANDOM << 15 | RANDOM) ^ $1 )); }

# lio_user_create HBA_INDEX NAME CFGSTRING SIZE_BYTES [EXTRA_CONTROL]
# Creates and enables core/user_HBA/NAME; prints its configfs path.  Sets a
# unit serial (as targetcli does): without one LIO reports an empty VPD 0x80
# and a zero NAA designator.
lio_user_create() {
    local hba=$1 name=$2 cfg=$3 size=$4 extra=${5:-} d
    d=$CFS/core/user_$hba/$name
    mkdir -p "$d" || return 1
    echo "dev_config=$cfg,dev_size=$size${extra:+,$extra}" >"$d/control" || return 1
    echo 1 >"$d/enable" || return 1
    cat /proc/sys/kernel/random/uuid >"$d/wwn/vpd_unit_serial" || return 1
    echo "$d"
}

# lio_user_delete BACKSTORE_DIR: rmdir the backstore, and its HBA if empty.
# (Nothing in it is specific to user backstores: it deletes any kind.)
lio_user_delete() {
    local d=$1
    [ -d "$d" ] || return 0
    rmdir "$d" || return 1
    rmdir "$(dirname "$d")" 2>/dev/null || true
}

# lio_iblock_create HBA_INDEX NAME BLOCK_DEVICE
# LIO's in-kernel block backstore: creates and enables core/iblock_HBA/NAME
# on BLOCK_DEVICE (which it opens exclusively), with a unit serial; prints
# its configfs path.  Delete it with lio_iblock_delete.
lio_iblock_create() {
    local hba=$1 name=$2 bdev=$3 d
    d=$CFS/core/iblock_$hba/$name
    mkdir -p "$d" || return 1
    echo "udev_path=$bdev" >"$d/control" || return 1
    # Informational (what targetcli shows); the control string is what counts.
    echo "$bdev" >"$d/udev_path" 2>/dev/null
    echo 1 >"$d/enable" || return 1
    cat /proc/sys/kernel/random/uuid >"$d/wwn/vpd_unit_serial" || return 1
    echo "$d"
}
lio_iblock_delete() { lio_user_delete "$@"; }

# lio_loop_export BACKSTORE_DIR [LUN]: tcm_loop target, nexus, LUN -> prints
# the target WWN.
lio_loop_export() {
    local bs=$1 lun=${2:-0} wwn t
    wwn=$(lio_naa 1)
    t=$CFS/loopback/$wwn/tpgt_1
    mkdir -p "$t/lun/lun_$lun" || return 1
    lio_naa 2 >"$t/nexus" || return 1
    ln -s "$bs" "$t/lun/lun_$lun/$(basename "$bs")" || return 1
    echo "$wwn"
}

lio_loop_unexport() {
    local wwn=$1 t l link rc=0
    t=$CFS/loopback/$wwn/tpgt_1
    [ -d "$t" ] || return 0
    for l in "$t"/lun/lun_*; do
        [ -d "$l" ] || continue
        for link in "$l"/*; do
            [ -L "$link" ] && { unlink "$link" || rc=1; }
        done
        rmdir "$l" || rc=1
    done
    echo NULL >"$t/nexus" 2>/dev/null
    rmdir "$t" || rc=1
    rmdir "$CFS/loopback/$wwn" || rc=1
    return "$rc"
}

# lio_iscsi_export BACKSTORE_DIR IQN [PORTAL]: demo-mode iSCSI target.
lio_iscsi_export() {
    local bs=$1 iqn=$2 portal=${3:-127.0.0.1:3260} t
    t=$CFS/iscsi/$iqn/tpgt_1
    mkdir -p "$t/lun/lun_0" "$t/np/$portal" || return 1
    ln -s "$bs" "$t/lun/lun_0/$(basename "$bs")" || return 1
    echo 1 >"$t/attrib/generate_node_acls"
    echo 1 >"$t/attrib/cache_dynamic_acls"
    echo 0 >"$t/attrib/demo_mode_write_protect"
    echo 0 >"$t/attrib/authentication"
    echo 1 >"$t/enable" || return 1
}

lio_iscsi_unexport() {
    local iqn=$1 t link rc=0 np
    t=$CFS/iscsi/$iqn/tpgt_1
    [ -d "$t" ] || return 0
    echo 0 >"$t/enable" 2>/dev/null
    for np in "$t"/np/*; do [ -d "$np" ] && { rmdir "$np" || rc=1; }; done
    for link in "$t"/lun/lun_0/*; do [ -L "$link" ] && { unlink "$link" || rc=1; }; done
    rmdir "$t/lun/lun_0" 2>/dev/null || rc=1
    rmdir "$t" || rc=1
    rmdir "$CFS/iscsi/$iqn" || rc=1
    return "$rc"
}

# lio_user_backstores: configfs paths of all user (TCMU) backstores.
lio_user_backstores() {
    local d
    for d in "$CFS"/core/user_*/*; do
        [ -f "$d/control" ] && echo "$d"
    done
}

# lio_find_backstore NAME: configfs path of the user backstore called NAME.
lio_find_backstore() {
    local d
    for d in "$CFS"/core/user_*/"$1"; do
        [ -f "$d/control" ] && { echo "$d"; return 0; }
    done
    return 1
}

# lio_loop_disk_of BACKSTORE_NAME: /dev/sdX of the tcm_loop LUN that links to
# the backstore called BACKSTORE_NAME (prints nothing if none yet).
lio_loop_disk_of() {
    local want=$1 link tpg lun addr host tgt blk
    for link in "$CFS"/loopback/naa.*/tpgt_*/lun/lun_*/*; do
        [ -L "$link" ] || continue
        [ "$(basename "$(readlink -f "$link")")" = "$want" ] || continue
        tpg=${link%/lun/lun_*}
        lun=${link#*/lun/lun_}; lun=${lun%%/*}
        # tcm_loop's TPG "address" attribute: "<host>:<channel>:<target>".
        addr=$(cat "$tpg/address" 2>/dev/null) || continue
        host=${addr%%:*}; tgt=${addr##*:}
        for blk in /sys/bus/scsi/devices/"$host":*:"$tgt":"$lun"/block/*; do
            [ -e "$blk" ] && { echo "/dev/$(basename "$blk")"; return 0; }
        done
    done
    return 1
}

# wait_disk BACKSTORE_NAME SECS: wait for the loopback disk, print /dev/sdX.
wait_disk() {
    local name=$1 secs=${2:-30} end dev
    end=$(( $(date +%s) + secs ))
    while :; do
        dev=$(lio_loop_disk_of "$name") && [ -b "$dev" ] && { echo "$dev"; return 0; }
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# The SCSI address (H:C:T:L) of the tcm_loop LUN linked to backstore NAME.
lio_hctl_of() {
    local want=$1 link tpg lun addr host tgt d
    for link in "$CFS"/loopback/naa.*/tpgt_*/lun/lun_*/*; do
        [ -L "$link" ] || continue
        [ "$(basename "$(readlink -f "$link")")" = "$want" ] || continue
        tpg=${link%/lun/lun_*}
        lun=${link#*/lun/lun_}; lun=${lun%%/*}
        addr=$(cat "$tpg/address" 2>/dev/null) || continue
        host=${addr%%:*}; tgt=${addr##*:}
        for d in /sys/bus/scsi/devices/"$host":*:"$tgt":"$lun"; do
            [ -e "$d" ] && { basename "$d"; return 0; }
        done
    done
    return 1
}
