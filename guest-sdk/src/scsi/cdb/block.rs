//! SBC data transfer CDBs: READ, WRITE, VERIFY, COMPARE AND WRITE and
//! SYNCHRONIZE CACHE.

use super::{bit, fixed_len, protect_field};
use crate::scsi::bytes::{get_be16, get_be24, get_be32, get_be64};
use crate::scsi::opcode;
use crate::sense::{INVALID_COMMAND_OPERATION_CODE, Sense};

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
                Ok(Self { lba: get_be32(&c[2..]).into(), blocks: get_be16(&c[7..]).into(), immed: bit(c[1], 1) })
            }
            Some(opcode::SYNCHRONIZE_CACHE_16) => {
                let c = fixed_len::<16>(cdb)?;
                Ok(Self { lba: get_be64(&c[2..]), blocks: get_be32(&c[10..]), immed: bit(c[1], 1) })
            }
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
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
        let sc = SynchronizeCache::parse(&[opcode::SYNCHRONIZE_CACHE_10, 0x02, 0, 0, 0, 1, 0, 0, 9, 0]).unwrap();
        assert_eq!(sc, SynchronizeCache { lba: 1, blocks: 9, immed: true });
        let mut c = [0u8; 16];
        c[0] = opcode::SYNCHRONIZE_CACHE_16;
        c[2] = 1;
        let sc = SynchronizeCache::parse(&c).unwrap();
        assert_eq!((sc.lba, sc.blocks, sc.immed), (1 << 56, 0, false));
    }
}
