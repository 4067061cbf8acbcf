//! CDB builders for the commands the suite sends (SPC-4, SBC-3).

/// Operation codes.
pub(crate) mod op {
    pub(crate) const TEST_UNIT_READY: u8 = 0x00;
    pub(crate) const REQUEST_SENSE: u8 = 0x03;
    pub(crate) const READ_6: u8 = 0x08;
    pub(crate) const WRITE_6: u8 = 0x0A;
    pub(crate) const INQUIRY: u8 = 0x12;
    pub(crate) const MODE_SENSE_6: u8 = 0x1A;
    pub(crate) const START_STOP_UNIT: u8 = 0x1B;
    pub(crate) const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
    pub(crate) const READ_CAPACITY_10: u8 = 0x25;
    pub(crate) const READ_10: u8 = 0x28;
    pub(crate) const WRITE_10: u8 = 0x2A;
    pub(crate) const VERIFY_10: u8 = 0x2F;
    pub(crate) const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    pub(crate) const WRITE_SAME_10: u8 = 0x41;
    pub(crate) const UNMAP: u8 = 0x42;
    pub(crate) const MODE_SELECT_10: u8 = 0x55;
    pub(crate) const MODE_SENSE_10: u8 = 0x5A;
    pub(crate) const READ_16: u8 = 0x88;
    pub(crate) const COMPARE_AND_WRITE: u8 = 0x89;
    pub(crate) const WRITE_16: u8 = 0x8A;
    pub(crate) const VERIFY_16: u8 = 0x8F;
    pub(crate) const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    pub(crate) const WRITE_SAME_16: u8 = 0x93;
    pub(crate) const SERVICE_ACTION_IN_16: u8 = 0x9E;
    pub(crate) const MAINTENANCE_IN: u8 = 0xA3;
    pub(crate) const READ_12: u8 = 0xA8;
    pub(crate) const WRITE_12: u8 = 0xAA;
    /// Vendor specific (SPC-4 group 6): no standard disk implements it.
    pub(crate) const UNKNOWN: u8 = 0xC5;
}

/// Service actions.
pub(crate) mod service_action {
    /// SERVICE ACTION IN(16): READ CAPACITY(16).
    pub(crate) const READ_CAPACITY_16: u8 = 0x10;
    /// SERVICE ACTION IN(16): not assigned by SBC-3 or SBC-4.
    pub(crate) const UNASSIGNED: u8 = 0x1F;
    /// MAINTENANCE IN: REPORT SUPPORTED OPERATION CODES.
    pub(crate) const REPORT_SUPPORTED_OPERATION_CODES: u8 = 0x0C;
}

/// FUA bit of READ/WRITE(10/12/16) and COMPARE AND WRITE.
pub(crate) const FUA: u8 = 0x08;
/// BYTCHK = 01b of VERIFY(10/16): compare the data-out with the medium.
pub(crate) const BYTCHK: u8 = 0x02;
/// UNMAP bit of WRITE SAME(10/16).
pub(crate) const WRITE_SAME_UNMAP: u8 = 0x08;
/// ANCHOR bit of UNMAP.
pub(crate) const ANCHOR: u8 = 0x01;

/// The four sizes of block command CDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CdbSize {
    Six,
    Ten,
    Twelve,
    Sixteen,
}

impl CdbSize {
    /// All sizes, smallest first.
    pub(crate) const ALL: [CdbSize; 4] = [CdbSize::Six, CdbSize::Ten, CdbSize::Twelve, CdbSize::Sixteen];

    /// CDB length in bytes, which is also how check names tell sizes apart.
    pub(crate) fn len(self) -> usize {
        match self {
            CdbSize::Six => 6,
            CdbSize::Ten => 10,
            CdbSize::Twelve => 12,
            CdbSize::Sixteen => 16,
        }
    }

    /// Highest LBA the CDB can carry.
    pub(crate) fn max_lba(self) -> u64 {
        match self {
            CdbSize::Six => 0x1F_FFFF,
            CdbSize::Ten | CdbSize::Twelve => u64::from(u32::MAX),
            CdbSize::Sixteen => u64::MAX,
        }
    }

    /// READ opcode of this size.
    pub(crate) fn read_opcode(self) -> u8 {
        match self {
            CdbSize::Six => op::READ_6,
            CdbSize::Ten => op::READ_10,
            CdbSize::Twelve => op::READ_12,
            CdbSize::Sixteen => op::READ_16,
        }
    }

    /// WRITE opcode of this size.
    pub(crate) fn write_opcode(self) -> u8 {
        match self {
            CdbSize::Six => op::WRITE_6,
            CdbSize::Ten => op::WRITE_10,
            CdbSize::Twelve => op::WRITE_12,
            CdbSize::Sixteen => op::WRITE_16,
        }
    }
}

/// A CDB in the LBA + length layout shared by READ, WRITE, VERIFY, WRITE
/// SAME and SYNCHRONIZE CACHE. `flags` is byte 1 (none in 6-byte CDBs);
/// `blocks` is written as is, so 0 in a 6-byte CDB means 256 blocks.
pub(crate) fn block_command(opcode: u8, size: CdbSize, flags: u8, lba: u64, blocks: u32) -> Vec<u8> {
    debug_assert!(lba <= size.max_lba(), "LBA {lba} does not fit a {}-byte CDB", size.len());
    let mut cdb = vec![0u8; size.len()];
    cdb[0] = opcode;
    match size {
        CdbSize::Six => {
            debug_assert!(flags == 0 && blocks <= 0xFF);
            cdb[1..4].copy_from_slice(&(lba as u32).to_be_bytes()[1..]);
            cdb[1] &= 0x1F;
            cdb[4] = blocks as u8;
        }
        CdbSize::Ten => {
            debug_assert!(blocks <= 0xFFFF);
            cdb[1] = flags;
            cdb[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
            cdb[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
        }
        CdbSize::Twelve => {
            cdb[1] = flags;
            cdb[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
            cdb[6..10].copy_from_slice(&blocks.to_be_bytes());
        }
        CdbSize::Sixteen => {
            cdb[1] = flags;
            cdb[2..10].copy_from_slice(&lba.to_be_bytes());
            cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
        }
    }
    cdb
}

pub(crate) fn test_unit_ready() -> Vec<u8> {
    vec![op::TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// REQUEST SENSE; `descriptor` sets DESC.
pub(crate) fn request_sense(descriptor: bool, alloc: u8) -> Vec<u8> {
    vec![op::REQUEST_SENSE, u8::from(descriptor), 0, 0, alloc, 0]
}

/// INQUIRY with EVPD and PAGE CODE as given (standard data: `evpd` false, page 0).
pub(crate) fn inquiry(evpd: bool, page: u8, alloc: u16) -> Vec<u8> {
    let [alloc_hi, alloc_lo] = alloc.to_be_bytes();
    vec![op::INQUIRY, u8::from(evpd), page, alloc_hi, alloc_lo, 0]
}

/// The PC field of MODE SENSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageControl {
    Current = 0,
    Changeable = 1,
    Saved = 3,
}

/// Page code asking MODE SENSE for every page.
pub(crate) const ALL_MODE_PAGES: u8 = 0x3F;

/// MODE SENSE(6) with block descriptors allowed.
pub(crate) fn mode_sense6(pc: PageControl, page: u8, alloc: u8) -> Vec<u8> {
    vec![op::MODE_SENSE_6, 0, (pc as u8) << 6 | page, 0, alloc, 0]
}

/// MODE SENSE(10) with block descriptors allowed.
pub(crate) fn mode_sense10(pc: PageControl, page: u8, alloc: u16) -> Vec<u8> {
    let mut cdb = vec![op::MODE_SENSE_10, 0, (pc as u8) << 6 | page, 0, 0, 0, 0, 0, 0, 0];
    cdb[7..9].copy_from_slice(&alloc.to_be_bytes());
    cdb
}

/// MODE SELECT(10) with PF set and SP clear.
pub(crate) fn mode_select10(parameter_list_len: u16) -> Vec<u8> {
    let mut cdb = vec![op::MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, 0, 0];
    cdb[7..9].copy_from_slice(&parameter_list_len.to_be_bytes());
    cdb
}

pub(crate) fn read_capacity10() -> Vec<u8> {
    vec![op::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// SERVICE ACTION IN(16) with the given service action and allocation length.
pub(crate) fn service_action_in16(action: u8, alloc: u32) -> Vec<u8> {
    let mut cdb = vec![0u8; 16];
    cdb[0] = op::SERVICE_ACTION_IN_16;
    cdb[1] = action;
    cdb[10..14].copy_from_slice(&alloc.to_be_bytes());
    cdb
}

pub(crate) fn read_capacity16(alloc: u32) -> Vec<u8> {
    service_action_in16(service_action::READ_CAPACITY_16, alloc)
}

/// COMPARE AND WRITE of `blocks` blocks (data-out carries twice that).
pub(crate) fn compare_and_write(lba: u64, blocks: u8) -> Vec<u8> {
    let mut cdb = vec![0u8; 16];
    cdb[0] = op::COMPARE_AND_WRITE;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[13] = blocks;
    cdb
}

/// UNMAP; `flags` is byte 1 (ANCHOR).
pub(crate) fn unmap(flags: u8, parameter_list_len: u16) -> Vec<u8> {
    let mut cdb = vec![op::UNMAP, flags, 0, 0, 0, 0, 0, 0, 0, 0];
    cdb[7..9].copy_from_slice(&parameter_list_len.to_be_bytes());
    cdb
}

/// An UNMAP parameter list with one block descriptor per `(lba, blocks)`.
pub(crate) fn unmap_parameter_list(ranges: &[(u64, u32)]) -> Vec<u8> {
    let descriptors_len = 16 * ranges.len() as u16;
    let mut list = Vec::with_capacity(8 + usize::from(descriptors_len));
    list.extend_from_slice(&(6 + descriptors_len).to_be_bytes());
    list.extend_from_slice(&descriptors_len.to_be_bytes());
    list.extend_from_slice(&[0; 4]);
    for &(lba, blocks) in ranges {
        list.extend_from_slice(&lba.to_be_bytes());
        list.extend_from_slice(&blocks.to_be_bytes());
        list.extend_from_slice(&[0; 4]);
    }
    list
}

/// REPORTING OPTIONS of REPORT SUPPORTED OPERATION CODES.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reporting {
    /// 000b: every supported command.
    All = 0b000,
    /// 001b: one operation code that has no service actions.
    OpcodeOnly = 0b001,
    /// 010b: one operation code and service action.
    OpcodeAndServiceAction = 0b010,
    /// 111b: reserved.
    Reserved = 0b111,
}

/// REPORT SUPPORTED OPERATION CODES without command timeouts (RCTD clear).
pub(crate) fn report_supported_opcodes(reporting: Reporting, opcode: u8, action: u16, alloc: u32) -> Vec<u8> {
    let mut cdb = vec![0u8; 12];
    cdb[0] = op::MAINTENANCE_IN;
    cdb[1] = service_action::REPORT_SUPPORTED_OPERATION_CODES;
    cdb[2] = reporting as u8;
    cdb[3] = opcode;
    cdb[4..6].copy_from_slice(&action.to_be_bytes());
    cdb[6..10].copy_from_slice(&alloc.to_be_bytes());
    cdb
}

/// START STOP UNIT with POWER CONDITION 0 and LOEJ clear.
pub(crate) fn start_stop_unit(start: bool) -> Vec<u8> {
    vec![op::START_STOP_UNIT, 0, 0, 0, u8::from(start), 0]
}

/// PREVENT ALLOW MEDIUM REMOVAL (PREVENT 01b or 00b).
pub(crate) fn prevent_allow_medium_removal(prevent: bool) -> Vec<u8> {
    vec![op::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, u8::from(prevent), 0]
}

/// A 10-byte CDB with an operation code no disk implements.
pub(crate) fn unknown_opcode() -> Vec<u8> {
    vec![op::UNKNOWN, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_command_layouts() {
        assert_eq!(block_command(op::READ_6, CdbSize::Six, 0, 0x12_3456, 0), [0x08, 0x12, 0x34, 0x56, 0, 0]);
        assert_eq!(
            block_command(op::WRITE_10, CdbSize::Ten, FUA, 0x0102_0304, 0x0506),
            [0x2A, 0x08, 1, 2, 3, 4, 0, 5, 6, 0]
        );
        assert_eq!(
            block_command(op::READ_12, CdbSize::Twelve, 0, 0x0102_0304, 0x0506_0708),
            [0xA8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0]
        );
        assert_eq!(
            block_command(op::VERIFY_16, CdbSize::Sixteen, BYTCHK, 0x0102_0304_0506_0708, 0x090A_0B0C),
            [0x8F, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0]
        );
    }

    #[test]
    fn unmap_parameter_list_layout() {
        let list = unmap_parameter_list(&[(0x10, 8)]);
        assert_eq!(list.len(), 24);
        assert_eq!(&list[..8], &[0, 22, 0, 16, 0, 0, 0, 0]);
        assert_eq!(&list[8..24], &[0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0, 0, 0]);
    }

    #[test]
    fn report_supported_opcodes_layout() {
        let cdb = report_supported_opcodes(Reporting::OpcodeAndServiceAction, 0x9E, 0x10, 0x1234);
        assert_eq!(cdb, [0xA3, 0x0C, 0x02, 0x9E, 0x00, 0x10, 0, 0, 0x12, 0x34, 0, 0]);
    }
}
