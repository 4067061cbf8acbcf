//! SBC (block command) CDBs.

use super::{bit, fixed_len};
use crate::scsi::bytes::{get_be16, get_be24, get_be32, get_be64};
use crate::scsi::opcode::{self, service_action};
use crate::sense::{
    INVALID_COMMAND_OPERATION_CODE, PARAMETER_LIST_LENGTH_ERROR, Sense,
};

/// The 3-bit RDPROTECT/WRPROTECT/VRPROTECT field of byte 1.
fn protect_field(byte1: u8) -> u8 {
    byte1 >> 5
}

/// READ or WRITE (6, 10, 12 or 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWrite {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks (READ(6)/WRITE(6)'s 0 already means 256).
    pub blocks: u32,
    /// Force unit access: the data must reach (or come from) the medium,
    /// not a volatile cache.
    pub fua: bool,
    /// Disable page out: a caching hint, safe to ignore.
    pub dpo: bool,
    /// RDPROTECT / WRPROTECT; 0 unless the initiator wants protection
    /// information checked. The 6-byte CDBs have no such field.
    pub protect: u8,
}

impl ReadWrite {
    /// Decode READ(6/10/12/16) or WRITE(6/10/12/16); any other opcode is an
    /// INVALID COMMAND OPERATION CODE.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        match cdb.first().copied() {
            Some(opcode::READ_6 | opcode::WRITE_6) => {
                let c = fixed_len::<6>(cdb)?;
                let blocks = match c[4] {
                    0 => 256,
                    n => u32::from(n),
                };
                let lba = u64::from(get_be24(&c[1..]) & 0x1f_ffff);
                Ok(Self { lba, blocks, fua: false, dpo: false, protect: 0 })
            }
            Some(opcode::READ_10 | opcode::WRITE_10) => {
                let c = fixed_len::<10>(cdb)?;
                Ok(Self::with_flags(c[1], get_be32(&c[2..]).into(), get_be16(&c[7..]).into()))
            }
            Some(opcode::READ_12 | opcode::WRITE_12) => {
                let c = fixed_len::<12>(cdb)?;
                Ok(Self::with_flags(c[1], get_be32(&c[2..]).into(), get_be32(&c[6..])))
            }
            Some(opcode::READ_16 | opcode::WRITE_16) => {
                let c = fixed_len::<16>(cdb)?;
                Ok(Self::with_flags(c[1], get_be64(&c[2..]), get_be32(&c[10..])))
            }
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }

    /// The 10/12/16-byte forms share byte 1: PROTECT(7-5) DPO(4) FUA(3).
    fn with_flags(byte1: u8, lba: u64, blocks: u32) -> Self {
        Self { lba, blocks, fua: bit(byte1, 3), dpo: bit(byte1, 4), protect: protect_field(byte1) }
    }
}

/// What VERIFY compares the medium with (the BYTCHK field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteCheck {
    /// 00b: no data-out; only check that the blocks are readable.
    None,
    /// 01b: compare the medium with a data-out buffer of the same length.
    DataOut,
    /// 11b: compare every block with the single block in data-out.
    SingleBlock,
}

/// VERIFY (10, 12 or 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verify {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks (the VERIFICATION LENGTH).
    pub blocks: u32,
    /// What to compare with.
    pub byte_check: ByteCheck,
    /// Disable page out: a caching hint.
    pub dpo: bool,
    /// VRPROTECT.
    pub protect: u8,
}

impl Verify {
    /// Decode VERIFY(10/12/16). BYTCHK 10b is reserved: INVALID FIELD IN CDB.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let (byte1, lba, blocks) = match cdb.first().copied() {
            Some(opcode::VERIFY_10) => {
                let c = fixed_len::<10>(cdb)?;
                (c[1], get_be32(&c[2..]).into(), get_be16(&c[7..]).into())
            }
            Some(opcode::VERIFY_12) => {
                let c = fixed_len::<12>(cdb)?;
                (c[1], get_be32(&c[2..]).into(), get_be32(&c[6..]))
            }
            Some(opcode::VERIFY_16) => {
                let c = fixed_len::<16>(cdb)?;
                (c[1], get_be64(&c[2..]), get_be32(&c[10..]))
            }
            _ => return Err(INVALID_COMMAND_OPERATION_CODE.into()),
        };
        let byte_check = match (byte1 >> 1) & 0b11 {
            0b00 => ByteCheck::None,
            0b01 => ByteCheck::DataOut,
            0b11 => ByteCheck::SingleBlock,
            _ => return Err(Sense::invalid_cdb_field(1, Some(2))),
        };
        Ok(Self { lba, blocks, byte_check, dpo: bit(byte1, 4), protect: protect_field(byte1) })
    }
}

/// WRITE SAME (10 or 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSame {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks; 0 means "to the end of the medium" unless
    /// the device sets WSNZ in the block limits VPD page.
    pub blocks: u32,
    /// The initiator allows unmapping the blocks instead of writing them,
    /// provided they then read back as the data it sent.
    pub unmap: bool,
    /// Anchor the blocks (only meaningful with `unmap`).
    pub anchor: bool,
    /// No data-out buffer: the block to write is all zeroes (WRITE SAME(16)
    /// only).
    pub ndob: bool,
    /// WRPROTECT.
    pub protect: u8,
}

impl WriteSame {
    /// Decode WRITE SAME(10/16). WRITE SAME(10)'s obsolete PBDATA and LBDATA
    /// bits are refused: nothing implements them any more.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let (byte1, lba, blocks, ndob) = match cdb.first().copied() {
            Some(opcode::WRITE_SAME_10) => {
                let c = fixed_len::<10>(cdb)?;
                if c[1] & 0b110 != 0 {
                    let culprit = if bit(c[1], 2) { 2 } else { 1 };
                    return Err(Sense::invalid_cdb_field(1, Some(culprit)));
                }
                (c[1], get_be32(&c[2..]).into(), get_be16(&c[7..]).into(), false)
            }
            Some(opcode::WRITE_SAME_16) => {
                let c = fixed_len::<16>(cdb)?;
                (c[1], get_be64(&c[2..]), get_be32(&c[10..]), bit(c[1], 0))
            }
            _ => return Err(INVALID_COMMAND_OPERATION_CODE.into()),
        };
        Ok(Self {
            lba,
            blocks,
            unmap: bit(byte1, 3),
            anchor: bit(byte1, 4),
            ndob,
            protect: protect_field(byte1),
        })
    }
}

/// COMPARE AND WRITE. The data-out holds `blocks` blocks to compare with
/// the medium followed by `blocks` blocks to write when they match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareAndWrite {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks compared, and then written.
    pub blocks: u8,
    /// Force unit access for the write.
    pub fua: bool,
    /// Disable page out: a caching hint.
    pub dpo: bool,
    /// WRPROTECT.
    pub protect: u8,
}

impl CompareAndWrite {
    /// Decode COMPARE AND WRITE.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::COMPARE_AND_WRITE) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<16>(cdb)?;
        Ok(Self {
            lba: get_be64(&c[2..]),
            blocks: c[13],
            fua: bit(c[1], 3),
            dpo: bit(c[1], 4),
            protect: protect_field(c[1]),
        })
    }
}

/// SYNCHRONIZE CACHE (10 or 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynchronizeCache {
    /// First logical block to make durable.
    pub lba: u64,
    /// Number of blocks; 0 means through the last block of the medium.
    pub blocks: u32,
    /// Status may be returned before the cache is flushed.
    pub immed: bool,
}

impl SynchronizeCache {
    /// Decode SYNCHRONIZE CACHE(10/16).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        match cdb.first().copied() {
            Some(opcode::SYNCHRONIZE_CACHE_10) => {
                let c = fixed_len::<10>(cdb)?;
                Ok(Self {
                    lba: get_be32(&c[2..]).into(),
                    blocks: get_be16(&c[7..]).into(),
                    immed: bit(c[1], 1),
                })
            }
            Some(opcode::SYNCHRONIZE_CACHE_16) => {
                let c = fixed_len::<16>(cdb)?;
                Ok(Self { lba: get_be64(&c[2..]), blocks: get_be32(&c[10..]), immed: bit(c[1], 1) })
            }
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }
}

/// UNMAP. Its block ranges arrive in the parameter list; see
/// [`parse_unmap_parameters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmap {
    /// Anchor the blocks instead of deallocating them.
    pub anchor: bool,
    /// Bytes of parameter list (data-out).
    pub parameter_list_length: u16,
}

impl Unmap {
    /// Decode UNMAP.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::UNMAP) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<10>(cdb)?;
        Ok(Self { anchor: bit(c[1], 0), parameter_list_length: get_be16(&c[7..]) })
    }
}

/// One range of an UNMAP parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmapDescriptor {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks; 0 is allowed and unmaps nothing.
    pub blocks: u32,
}

/// Offset of the first block descriptor in an UNMAP parameter list.
const UNMAP_HEADER_LEN: usize = 8;
/// Size of one UNMAP block descriptor.
const UNMAP_DESCRIPTOR_LEN: usize = 16;

/// Parse an UNMAP parameter list (the data-out, cut to the CDB's parameter
/// list length). An empty list is valid and unmaps nothing; a list too
/// short for the 8-byte header is a PARAMETER LIST LENGTH ERROR. Like most
/// targets this trusts the data that arrived over the header's length
/// fields: descriptors the lengths claim but the list does not hold, and a
/// trailing partial descriptor, are ignored.
pub fn parse_unmap_parameters(list: &[u8]) -> Result<Vec<UnmapDescriptor>, Sense> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    if list.len() < UNMAP_HEADER_LEN {
        return Err(PARAMETER_LIST_LENGTH_ERROR.into());
    }
    let declared = usize::from(get_be16(&list[2..]));
    let available = list.len() - UNMAP_HEADER_LEN;
    let descriptors = &list[UNMAP_HEADER_LEN..][..declared.min(available)];
    Ok(descriptors
        .chunks_exact(UNMAP_DESCRIPTOR_LEN)
        .map(|d| UnmapDescriptor { lba: get_be64(d), blocks: get_be32(&d[8..]) })
        .collect())
}

/// READ CAPACITY(10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCapacity10 {
    /// With `pmi`, the LBA after which the initiator wants the last block
    /// before a substantial delay; must be 0 without it.
    pub lba: u32,
    /// Partial medium indicator (obsolete in SBC-4).
    pub pmi: bool,
}

impl ReadCapacity10 {
    /// Decode READ CAPACITY(10); a non-zero LBA without PMI is invalid.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::READ_CAPACITY_10) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<10>(cdb)?;
        let decoded = Self { lba: get_be32(&c[2..]), pmi: bit(c[8], 0) };
        if !decoded.pmi && decoded.lba != 0 {
            return Err(Sense::invalid_cdb_field(2, None));
        }
        Ok(decoded)
    }
}

/// READ CAPACITY(16), service action 0x10 of SERVICE ACTION IN(16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCapacity16 {
    /// See [`ReadCapacity10::lba`].
    pub lba: u64,
    /// Bytes of parameter data the initiator has room for.
    pub allocation_length: u32,
    /// Partial medium indicator (obsolete in SBC-4).
    pub pmi: bool,
}

impl ReadCapacity16 {
    /// Decode READ CAPACITY(16). Another service action of SERVICE ACTION
    /// IN(16) is INVALID FIELD IN CDB, pointing at the service action.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::SERVICE_ACTION_IN_16) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<16>(cdb)?;
        if opcode::service_action(c) != Some(service_action::READ_CAPACITY_16) {
            return Err(Sense::invalid_cdb_field(1, Some(4)));
        }
        let decoded =
            Self { lba: get_be64(&c[2..]), allocation_length: get_be32(&c[10..]), pmi: bit(c[14], 0) };
        if !decoded.pmi && decoded.lba != 0 {
            return Err(Sense::invalid_cdb_field(2, None));
        }
        Ok(decoded)
    }
}

/// START STOP UNIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartStopUnit {
    /// Status may be returned before the operation completes.
    pub immed: bool,
    /// POWER CONDITION MODIFIER (byte 3, bits 3-0).
    pub power_condition_modifier: u8,
    /// POWER CONDITION (byte 4, bits 7-4); 0 means "process START and LOEJ".
    pub power_condition: u8,
    /// When stopping, do not flush the write cache first.
    pub no_flush: bool,
    /// Load (with `start`) or eject (without) the medium.
    pub load_eject: bool,
    /// Start (true) or stop (false) the logical unit.
    pub start: bool,
}

impl StartStopUnit {
    /// Decode START STOP UNIT.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::START_STOP_UNIT) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<6>(cdb)?;
        Ok(Self {
            immed: bit(c[1], 0),
            power_condition_modifier: c[3] & 0x0f,
            power_condition: c[4] >> 4,
            no_flush: bit(c[4], 2),
            load_eject: bit(c[4], 1),
            start: bit(c[4], 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sense::{FieldPointer, INVALID_FIELD_IN_CDB};

    #[test]
    fn read_6_has_21_bit_lba_and_256_for_zero() {
        let rw = ReadWrite::parse(&[opcode::READ_6, 0xff, 0x12, 0x34, 0, 0]).unwrap();
        assert_eq!(rw.lba, 0x1f_1234);
        assert_eq!(rw.blocks, 256);
        assert!(!rw.fua);
        let rw = ReadWrite::parse(&[opcode::WRITE_6, 0, 0, 7, 3, 0]).unwrap();
        assert_eq!((rw.lba, rw.blocks), (7, 3));
    }

    #[test]
    fn read_write_10_12_16_fields() {
        let rw = ReadWrite::parse(&[opcode::READ_10, 0x18, 0, 0, 1, 0, 0, 0x01, 0x02, 0]).unwrap();
        assert_eq!(rw, ReadWrite { lba: 256, blocks: 0x102, fua: true, dpo: true, protect: 0 });

        let rw = ReadWrite::parse(&[opcode::WRITE_12, 0x68, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0]).unwrap();
        assert_eq!(rw, ReadWrite { lba: 9, blocks: 0x1_0000, fua: true, dpo: false, protect: 3 });

        let mut c = [0u8; 16];
        c[0] = opcode::WRITE_16;
        c[2..10].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        c[10..14].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        let rw = ReadWrite::parse(&c).unwrap();
        assert_eq!((rw.lba, rw.blocks, rw.fua), (0x0102_0304_0506_0708, 0xdead_beef, false));
    }

    #[test]
    fn short_cdb_and_wrong_opcode_are_refused() {
        assert_eq!(ReadWrite::parse(&[opcode::READ_16, 0, 0]), Err(INVALID_FIELD_IN_CDB.into()));
        assert_eq!(ReadWrite::parse(&[opcode::INQUIRY; 6]), Err(INVALID_COMMAND_OPERATION_CODE.into()));
        assert_eq!(ReadWrite::parse(&[]), Err(INVALID_COMMAND_OPERATION_CODE.into()));
    }

    #[test]
    fn verify_byte_check_values() {
        let cdb = |byte1| [opcode::VERIFY_10, byte1, 0, 0, 0, 5, 0, 0, 2, 0];
        assert_eq!(Verify::parse(&cdb(0)).unwrap().byte_check, ByteCheck::None);
        assert_eq!(Verify::parse(&cdb(0b010)).unwrap().byte_check, ByteCheck::DataOut);
        assert_eq!(Verify::parse(&cdb(0b110)).unwrap().byte_check, ByteCheck::SingleBlock);
        let err = Verify::parse(&cdb(0b100)).unwrap_err();
        assert_eq!(err.code, INVALID_FIELD_IN_CDB);
        assert_eq!(err.field_pointer, Some(FieldPointer::cdb(1, Some(2))));
        let v = Verify::parse(&cdb(0x10)).unwrap();
        assert_eq!((v.lba, v.blocks, v.dpo), (5, 2, true));

        let mut c = [0u8; 16];
        c[0] = opcode::VERIFY_16;
        c[9] = 42;
        c[13] = 8;
        let v = Verify::parse(&c).unwrap();
        assert_eq!((v.lba, v.blocks), (42, 8));
    }

    #[test]
    fn write_same_flags() {
        let ws = WriteSame::parse(&[opcode::WRITE_SAME_10, 0x08, 0, 0, 0, 3, 0, 0, 4, 0]).unwrap();
        assert_eq!(ws, WriteSame { lba: 3, blocks: 4, unmap: true, anchor: false, ndob: false, protect: 0 });
        let err = WriteSame::parse(&[opcode::WRITE_SAME_10, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(err.field_pointer, Some(FieldPointer::cdb(1, Some(1))));

        let mut c = [0u8; 16];
        c[0] = opcode::WRITE_SAME_16;
        c[1] = 0x19; // ANCHOR, UNMAP, NDOB
        c[13] = 1;
        let ws = WriteSame::parse(&c).unwrap();
        assert!(ws.anchor && ws.unmap && ws.ndob);
        assert_eq!(ws.blocks, 1);
    }

    #[test]
    fn compare_and_write_fields() {
        let mut c = [0u8; 16];
        c[0] = opcode::COMPARE_AND_WRITE;
        c[1] = 0x08;
        c[9] = 7;
        c[13] = 2;
        let caw = CompareAndWrite::parse(&c).unwrap();
        assert_eq!((caw.lba, caw.blocks, caw.fua, caw.dpo), (7, 2, true, false));
    }

    #[test]
    fn synchronize_cache_fields() {
        let sc = SynchronizeCache::parse(&[opcode::SYNCHRONIZE_CACHE_10, 0x02, 0, 0, 0, 1, 0, 0, 9, 0])
            .unwrap();
        assert_eq!(sc, SynchronizeCache { lba: 1, blocks: 9, immed: true });
        let mut c = [0u8; 16];
        c[0] = opcode::SYNCHRONIZE_CACHE_16;
        c[2] = 1;
        let sc = SynchronizeCache::parse(&c).unwrap();
        assert_eq!((sc.lba, sc.blocks, sc.immed), (1 << 56, 0, false));
    }

    fn unmap_list(descriptors: &[(u64, u32)]) -> Vec<u8> {
        let body = descriptors.len() * 16;
        let mut list = Vec::new();
        list.extend_from_slice(&((body + 6) as u16).to_be_bytes());
        list.extend_from_slice(&(body as u16).to_be_bytes());
        list.extend_from_slice(&[0; 4]);
        for &(lba, blocks) in descriptors {
            list.extend_from_slice(&lba.to_be_bytes());
            list.extend_from_slice(&blocks.to_be_bytes());
            list.extend_from_slice(&[0; 4]);
        }
        list
    }

    #[test]
    fn unmap_cdb_and_parameters() {
        let u = Unmap::parse(&[opcode::UNMAP, 1, 0, 0, 0, 0, 0, 0, 24, 0]).unwrap();
        assert_eq!(u, Unmap { anchor: true, parameter_list_length: 24 });

        let list = unmap_list(&[(1, 2), (100, 0)]);
        assert_eq!(
            parse_unmap_parameters(&list).unwrap(),
            vec![UnmapDescriptor { lba: 1, blocks: 2 }, UnmapDescriptor { lba: 100, blocks: 0 }]
        );
        assert_eq!(parse_unmap_parameters(&[]).unwrap(), vec![]);
        assert_eq!(parse_unmap_parameters(&[0; 7]), Err(PARAMETER_LIST_LENGTH_ERROR.into()));
    }

    #[test]
    fn unmap_parameters_ignore_what_did_not_arrive() {
        let list = unmap_list(&[(1, 2), (3, 4)]);
        // Cut inside the second descriptor: only the first one is whole.
        assert_eq!(parse_unmap_parameters(&list[..8 + 20]).unwrap().len(), 1);
        // A header claiming one descriptor limits the list to one.
        let mut short_claim = list.clone();
        short_claim[2..4].copy_from_slice(&16u16.to_be_bytes());
        assert_eq!(parse_unmap_parameters(&short_claim).unwrap().len(), 1);
    }

    #[test]
    fn read_capacity_lba_requires_pmi() {
        assert_eq!(
            ReadCapacity10::parse(&[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            ReadCapacity10 { lba: 0, pmi: false }
        );
        let err = ReadCapacity10::parse(&[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(err.unwrap_err().field_pointer, Some(FieldPointer::cdb(2, None)));
        assert!(ReadCapacity10::parse(&[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 1, 0]).is_ok());
    }

    #[test]
    fn read_capacity_16_service_action() {
        let mut c = [0u8; 16];
        c[0] = opcode::SERVICE_ACTION_IN_16;
        c[1] = 0x10;
        c[13] = 32;
        assert_eq!(
            ReadCapacity16::parse(&c).unwrap(),
            ReadCapacity16 { lba: 0, allocation_length: 32, pmi: false }
        );
        c[1] = 0x12; // GET LBA STATUS
        assert_eq!(ReadCapacity16::parse(&c).unwrap_err().field_pointer, Some(FieldPointer::cdb(1, Some(4))));
    }

    #[test]
    fn start_stop_unit_fields() {
        let ssu = StartStopUnit::parse(&[opcode::START_STOP_UNIT, 1, 0, 0x0a, 0x37, 0]).unwrap();
        assert_eq!(
            ssu,
            StartStopUnit {
                immed: true,
                power_condition_modifier: 0x0a,
                power_condition: 3,
                no_flush: true,
                load_eject: true,
                start: true,
            }
        );
    }
}
