//! Operation codes. Command sets reuse codes for different commands (0x1B
//! is START STOP UNIT on a disk and LOAD UNLOAD on a tape), so several
//! constants share a value; match on the ones of the device type you emulate.

// --- SPC: all device types -------------------------------------------------

/// TEST UNIT READY (SPC).
pub const TEST_UNIT_READY: u8 = 0x00;
/// REQUEST SENSE (SPC).
pub const REQUEST_SENSE: u8 = 0x03;
/// INQUIRY (SPC).
pub const INQUIRY: u8 = 0x12;
/// MODE SELECT(6) (SPC).
pub const MODE_SELECT_6: u8 = 0x15;
/// RESERVE(6) (SPC-2, obsolete).
pub const RESERVE_6: u8 = 0x16;
/// RELEASE(6) (SPC-2, obsolete).
pub const RELEASE_6: u8 = 0x17;
/// MODE SENSE(6) (SPC).
pub const MODE_SENSE_6: u8 = 0x1A;
/// RECEIVE DIAGNOSTIC RESULTS (SPC).
pub const RECEIVE_DIAGNOSTIC_RESULTS: u8 = 0x1C;
/// SEND DIAGNOSTIC (SPC).
pub const SEND_DIAGNOSTIC: u8 = 0x1D;
/// PREVENT ALLOW MEDIUM REMOVAL (SPC).
pub const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
/// WRITE BUFFER (SPC).
pub const WRITE_BUFFER: u8 = 0x3B;
/// READ BUFFER(10) (SPC).
pub const READ_BUFFER_10: u8 = 0x3C;
/// LOG SELECT (SPC).
pub const LOG_SELECT: u8 = 0x4C;
/// LOG SENSE (SPC).
pub const LOG_SENSE: u8 = 0x4D;
/// MODE SELECT(10) (SPC).
pub const MODE_SELECT_10: u8 = 0x55;
/// RESERVE(10) (SPC-2, obsolete).
pub const RESERVE_10: u8 = 0x56;
/// RELEASE(10) (SPC-2, obsolete).
pub const RELEASE_10: u8 = 0x57;
/// MODE SENSE(10) (SPC).
pub const MODE_SENSE_10: u8 = 0x5A;
/// PERSISTENT RESERVE IN (SPC; service actions in byte 1).
pub const PERSISTENT_RESERVE_IN: u8 = 0x5E;
/// PERSISTENT RESERVE OUT (SPC; service actions in byte 1).
pub const PERSISTENT_RESERVE_OUT: u8 = 0x5F;
/// Variable-length CDB (service action in bytes 8 and 9).
pub const VARIABLE_LENGTH_CDB: u8 = 0x7F;
/// EXTENDED COPY (SPC).
pub const EXTENDED_COPY: u8 = 0x83;
/// RECEIVE COPY RESULTS (SPC).
pub const RECEIVE_COPY_RESULTS: u8 = 0x84;
/// ATA PASS-THROUGH(16) (SAT).
pub const ATA_PASS_THROUGH_16: u8 = 0x85;
/// SERVICE ACTION IN(16): READ CAPACITY(16), GET LBA STATUS, ...
pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
/// SERVICE ACTION OUT(16).
pub const SERVICE_ACTION_OUT_16: u8 = 0x9F;
/// REPORT LUNS (SPC; the kernel answers it for TCMU devices).
pub const REPORT_LUNS: u8 = 0xA0;
/// SECURITY PROTOCOL IN (SPC).
pub const SECURITY_PROTOCOL_IN: u8 = 0xA2;
/// MAINTENANCE IN: REPORT SUPPORTED OPERATION CODES, REPORT TARGET PORT
/// GROUPS, ... (SPC; MMC's SEND KEY shares the code).
pub const MAINTENANCE_IN: u8 = 0xA3;
/// MAINTENANCE OUT (SPC; MMC's REPORT KEY shares the code).
pub const MAINTENANCE_OUT: u8 = 0xA4;
/// SERVICE ACTION IN(12).
pub const SERVICE_ACTION_IN_12: u8 = 0xAB;
/// SECURITY PROTOCOL OUT (SPC).
pub const SECURITY_PROTOCOL_OUT: u8 = 0xB5;

// --- SBC: direct-access block devices --------------------------------------

/// FORMAT UNIT (SBC).
pub const FORMAT_UNIT: u8 = 0x04;
/// REASSIGN BLOCKS (SBC).
pub const REASSIGN_BLOCKS: u8 = 0x07;
/// READ(6) (SBC; SSC's READ(6) shares the code).
pub const READ_6: u8 = 0x08;
/// WRITE(6) (SBC; SSC's WRITE(6) shares the code).
pub const WRITE_6: u8 = 0x0A;
/// START STOP UNIT (SBC, MMC).
pub const START_STOP_UNIT: u8 = 0x1B;
/// READ CAPACITY(10) (SBC, MMC).
pub const READ_CAPACITY_10: u8 = 0x25;
/// READ(10) (SBC, MMC).
pub const READ_10: u8 = 0x28;
/// WRITE(10) (SBC, MMC).
pub const WRITE_10: u8 = 0x2A;
/// WRITE AND VERIFY(10) (SBC).
pub const WRITE_AND_VERIFY_10: u8 = 0x2E;
/// VERIFY(10) (SBC).
pub const VERIFY_10: u8 = 0x2F;
/// PRE-FETCH(10) (SBC).
pub const PRE_FETCH_10: u8 = 0x34;
/// SYNCHRONIZE CACHE(10) (SBC, MMC).
pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
/// READ DEFECT DATA(10) (SBC).
pub const READ_DEFECT_DATA_10: u8 = 0x37;
/// WRITE LONG(10) (SBC).
pub const WRITE_LONG_10: u8 = 0x3F;
/// WRITE SAME(10) (SBC).
pub const WRITE_SAME_10: u8 = 0x41;
/// UNMAP (SBC).
pub const UNMAP: u8 = 0x42;
/// SANITIZE (SBC).
pub const SANITIZE: u8 = 0x48;
/// READ(16) (SBC).
pub const READ_16: u8 = 0x88;
/// COMPARE AND WRITE (SBC).
pub const COMPARE_AND_WRITE: u8 = 0x89;
/// WRITE(16) (SBC).
pub const WRITE_16: u8 = 0x8A;
/// ORWRITE(16) (SBC).
pub const ORWRITE_16: u8 = 0x8B;
/// WRITE AND VERIFY(16) (SBC).
pub const WRITE_AND_VERIFY_16: u8 = 0x8E;
/// VERIFY(16) (SBC).
pub const VERIFY_16: u8 = 0x8F;
/// PRE-FETCH(16) (SBC).
pub const PRE_FETCH_16: u8 = 0x90;
/// SYNCHRONIZE CACHE(16) (SBC).
pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
/// WRITE SAME(16) (SBC).
pub const WRITE_SAME_16: u8 = 0x93;
/// WRITE ATOMIC(16) (SBC-4).
pub const WRITE_ATOMIC_16: u8 = 0x9C;
/// READ(12) (SBC, MMC).
pub const READ_12: u8 = 0xA8;
/// WRITE(12) (SBC, MMC).
pub const WRITE_12: u8 = 0xAA;
/// WRITE AND VERIFY(12) (SBC).
pub const WRITE_AND_VERIFY_12: u8 = 0xAE;
/// VERIFY(12) (SBC).
pub const VERIFY_12: u8 = 0xAF;
/// READ DEFECT DATA(12) (SBC).
pub const READ_DEFECT_DATA_12: u8 = 0xB7;

// --- SSC: sequential-access (tape) devices ---------------------------------

/// REWIND (SSC).
pub const REWIND: u8 = 0x01;
/// READ BLOCK LIMITS (SSC).
pub const READ_BLOCK_LIMITS: u8 = 0x05;
/// WRITE FILEMARKS(6) (SSC).
pub const WRITE_FILEMARKS_6: u8 = 0x10;
/// SPACE(6) (SSC).
pub const SPACE_6: u8 = 0x11;
/// VERIFY(6) (SSC).
pub const VERIFY_6: u8 = 0x13;
/// ERASE(6) (SSC).
pub const ERASE_6: u8 = 0x19;
/// LOAD UNLOAD (SSC; shares the code of START STOP UNIT).
pub const LOAD_UNLOAD: u8 = 0x1B;
/// LOCATE(10) (SSC).
pub const LOCATE_10: u8 = 0x2B;
/// READ POSITION (SSC).
pub const READ_POSITION: u8 = 0x34;
/// REPORT DENSITY SUPPORT (SSC).
pub const REPORT_DENSITY_SUPPORT: u8 = 0x44;
/// WRITE FILEMARKS(16) (SSC).
pub const WRITE_FILEMARKS_16: u8 = 0x80;
/// SPACE(16) (SSC).
pub const SPACE_16: u8 = 0x91;
/// LOCATE(16) (SSC).
pub const LOCATE_16: u8 = 0x92;
/// ERASE(16) (SSC).
pub const ERASE_16: u8 = 0x93;

// --- SMC: medium changers --------------------------------------------------

/// INITIALIZE ELEMENT STATUS (SMC).
pub const INITIALIZE_ELEMENT_STATUS: u8 = 0x07;
/// POSITION TO ELEMENT (SMC).
pub const POSITION_TO_ELEMENT: u8 = 0x2B;
/// INITIALIZE ELEMENT STATUS WITH RANGE (SMC).
pub const INITIALIZE_ELEMENT_STATUS_WITH_RANGE: u8 = 0x37;
/// MOVE MEDIUM (SMC).
pub const MOVE_MEDIUM: u8 = 0xA5;
/// EXCHANGE MEDIUM (SMC).
pub const EXCHANGE_MEDIUM: u8 = 0xA6;
/// READ ELEMENT STATUS (SMC).
pub const READ_ELEMENT_STATUS: u8 = 0xB8;

// --- MMC: optical drives ---------------------------------------------------

/// READ FORMAT CAPACITIES (MMC).
pub const READ_FORMAT_CAPACITIES: u8 = 0x23;
/// READ TOC/PMA/ATIP (MMC).
pub const READ_TOC_PMA_ATIP: u8 = 0x43;
/// GET CONFIGURATION (MMC).
pub const GET_CONFIGURATION: u8 = 0x46;
/// GET EVENT STATUS NOTIFICATION (MMC).
pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4A;
/// READ DISC INFORMATION (MMC).
pub const READ_DISC_INFORMATION: u8 = 0x51;
/// READ TRACK INFORMATION (MMC).
pub const READ_TRACK_INFORMATION: u8 = 0x52;
/// CLOSE TRACK/SESSION (MMC).
pub const CLOSE_TRACK_SESSION: u8 = 0x5B;
/// READ BUFFER CAPACITY (MMC).
pub const READ_BUFFER_CAPACITY: u8 = 0x5C;
/// BLANK (MMC).
pub const BLANK: u8 = 0xA1;
/// GET PERFORMANCE (MMC).
pub const GET_PERFORMANCE: u8 = 0xAC;
/// READ DISC STRUCTURE (MMC; READ DVD STRUCTURE in older revisions).
pub const READ_DISC_STRUCTURE: u8 = 0xAD;
/// SET CD SPEED (MMC).
pub const SET_CD_SPEED: u8 = 0xBB;
/// MECHANISM STATUS (MMC).
pub const MECHANISM_STATUS: u8 = 0xBD;
/// READ CD (MMC).
pub const READ_CD: u8 = 0xBE;

/// Service actions, by the operation code that carries them.
pub mod service_action {
    /// READ CAPACITY(16), under [`SERVICE_ACTION_IN_16`](super::SERVICE_ACTION_IN_16).
    pub const READ_CAPACITY_16: u16 = 0x10;
    /// GET LBA STATUS, under [`SERVICE_ACTION_IN_16`](super::SERVICE_ACTION_IN_16).
    pub const GET_LBA_STATUS: u16 = 0x12;
    /// REPORT TARGET PORT GROUPS, under [`MAINTENANCE_IN`](super::MAINTENANCE_IN).
    pub const REPORT_TARGET_PORT_GROUPS: u16 = 0x0A;
    /// REPORT SUPPORTED OPERATION CODES, under [`MAINTENANCE_IN`](super::MAINTENANCE_IN).
    pub const REPORT_SUPPORTED_OPERATION_CODES: u16 = 0x0C;
    /// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, under [`MAINTENANCE_IN`](super::MAINTENANCE_IN).
    pub const REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS: u16 = 0x0D;
    /// SET TARGET PORT GROUPS, under [`MAINTENANCE_OUT`](super::MAINTENANCE_OUT).
    pub const SET_TARGET_PORT_GROUPS: u16 = 0x0A;
}

/// Whether commands with operation code `opcode` carry a service action,
/// and so are told apart by [`service_action()`] as well as by opcode.
pub fn has_service_action(opcode: u8) -> bool {
    matches!(
        opcode,
        PERSISTENT_RESERVE_IN
            | PERSISTENT_RESERVE_OUT
            | VARIABLE_LENGTH_CDB
            | EXTENDED_COPY
            | RECEIVE_COPY_RESULTS
            | SERVICE_ACTION_IN_16
            | SERVICE_ACTION_OUT_16
            | MAINTENANCE_IN
            | MAINTENANCE_OUT
            | SERVICE_ACTION_IN_12
    )
}

/// The service action of `cdb`, for the operation codes that have one:
/// bytes 8 and 9 of a variable-length CDB, the low five bits of byte 1
/// otherwise. `None` for opcodes without service actions and for CDBs too
/// short to hold one.
pub fn service_action(cdb: &[u8]) -> Option<u16> {
    let opcode = *cdb.first()?;
    if !has_service_action(opcode) {
        return None;
    }
    if opcode == VARIABLE_LENGTH_CDB {
        cdb.get(8..10).map(crate::scsi::bytes::get_be16)
    } else {
        cdb.get(1).map(|b| u16::from(b & 0x1f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_actions() {
        assert_eq!(service_action(&[SERVICE_ACTION_IN_16, 0xf0 | 0x10]), Some(0x10));
        assert_eq!(service_action(&[MAINTENANCE_IN, 0x0c, 0, 0]), Some(0x0c));
        let mut variable = [0u8; 32];
        variable[0] = VARIABLE_LENGTH_CDB;
        variable[8..10].copy_from_slice(&0x000du16.to_be_bytes());
        assert_eq!(service_action(&variable), Some(0x000d));
        assert_eq!(service_action(&[READ_10, 0x1f]), None);
        assert_eq!(service_action(&[SERVICE_ACTION_IN_16]), None);
        assert_eq!(service_action(&[]), None);
    }
}
