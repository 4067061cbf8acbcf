//! SSC (tape) CDBs. Shared opcodes mean different commands on different
//! device types (08h is READ(6) on a disk and on a tape, but its fields
//! differ), so these decoders do not check the opcode against a list: the
//! handler dispatches, the decoder reads the fields.

use super::{bit, fixed_len};
use crate::scsi::bytes::{get_be16, get_be24, get_be32, get_be64};
use crate::sense::Sense;

/// Sign-extend a 24-bit two's complement count.
fn signed24(v: u32) -> i32 {
    ((v << 8) as i32) >> 8
}

/// READ(6), WRITE(6) and VERIFY(6) on a tape: a transfer of `length` bytes
/// (variable mode) or `length` blocks (fixed mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTransfer6 {
    /// FIXED: `length` counts blocks of the current block size.
    pub fixed: bool,
    /// SILI (READ only): suppress the incorrect-length indication.
    pub sili: bool,
    /// VERIFY only: compare with data-out (BYTCMP).
    pub byte_compare: bool,
    /// VERIFY only: immediate.
    pub immediate: bool,
    /// Bytes or blocks (24 bits).
    pub length: u32,
}

impl StreamTransfer6 {
    /// Decode READ(6): FIXED together with SILI is INVALID FIELD IN CDB
    /// (SSC-3 7.2: a fixed-mode read has no incorrect length to suppress).
    pub fn parse_read(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<6>(cdb)?;
        let t = Self::fields(c);
        if t.fixed && t.sili {
            return Err(Sense::invalid_cdb_field(1, Some(1)));
        }
        Ok(Self { byte_compare: false, immediate: false, ..t })
    }

    /// Decode WRITE(6).
    pub fn parse_write(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<6>(cdb)?;
        Ok(Self { sili: false, byte_compare: false, immediate: false, ..Self::fields(c) })
    }

    /// Decode VERIFY(6) (byte 1: IMMED bit 2, BYTCMP bit 1, FIXED bit 0).
    pub fn parse_verify(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<6>(cdb)?;
        Ok(Self {
            fixed: bit(c[1], 0),
            sili: false,
            byte_compare: bit(c[1], 1),
            immediate: bit(c[1], 2),
            length: get_be24(&c[2..]),
        })
    }

    fn fields(c: &[u8; 6]) -> Self {
        Self {
            fixed: bit(c[1], 0),
            sili: bit(c[1], 1),
            byte_compare: false,
            immediate: false,
            length: get_be24(&c[2..]),
        }
    }
}

/// WRITE FILEMARKS(6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFilemarks {
    /// Return before the marks are on the medium.
    pub immediate: bool,
    /// Write setmarks instead (not supported by LTO; handlers refuse it).
    pub setmarks: bool,
    /// Marks to write; 0 only flushes buffered data.
    pub count: u32,
}

impl WriteFilemarks {
    /// Decode WRITE FILEMARKS(6).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<6>(cdb)?;
        Ok(Self { immediate: bit(c[1], 0), setmarks: bit(c[1], 1), count: get_be24(&c[2..]) })
    }
}

/// What SPACE moves over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceCode {
    /// Logical blocks (code 0).
    Blocks,
    /// Filemarks (code 1).
    Filemarks,
    /// Sequential filemarks (code 2).
    SequentialFilemarks,
    /// To end of data (code 3); the count is ignored.
    EndOfData,
}

/// SPACE(6) and SPACE(16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// What to space over.
    pub code: SpaceCode,
    /// How many; negative spaces towards the beginning of the partition.
    pub count: i64,
}

impl Space {
    fn code(byte1: u8) -> Result<SpaceCode, Sense> {
        match byte1 & 0x0f {
            0 => Ok(SpaceCode::Blocks),
            1 => Ok(SpaceCode::Filemarks),
            2 => Ok(SpaceCode::SequentialFilemarks),
            3 => Ok(SpaceCode::EndOfData),
            _ => Err(Sense::invalid_cdb_field(1, Some(3))), // setmarks and reserved codes
        }
    }

    /// Decode SPACE(6) (11h): a signed 24-bit count.
    pub fn parse6(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<6>(cdb)?;
        Ok(Self { code: Self::code(c[1])?, count: signed24(get_be24(&c[2..])).into() })
    }

    /// Decode SPACE(16) (91h): a signed 64-bit count; a parameter list is
    /// not supported.
    pub fn parse16(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<16>(cdb)?;
        if get_be16(&c[12..]) != 0 {
            return Err(Sense::invalid_cdb_field(12, None));
        }
        Ok(Self { code: Self::code(c[1])?, count: get_be64(&c[4..]) as i64 })
    }
}

/// REWIND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewind {
    /// Return before the rewind finishes.
    pub immediate: bool,
}

impl Rewind {
    /// Decode REWIND (01h).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        Ok(Self { immediate: bit(fixed_len::<6>(cdb)?[1], 0) })
    }
}

/// The forms of READ POSITION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionForm {
    /// 20 bytes, block identifiers (service action 00h; 01h asks for
    /// vendor-specific identifiers, answered the same way).
    Short,
    /// 32 bytes, 64-bit logical object identifier and file number (06h).
    Long,
    /// 32 bytes, short form plus buffer status (08h).
    Extended,
}

/// READ POSITION (34h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPosition {
    /// Which form.
    pub form: PositionForm,
    /// Allocation length (the short form ignores it and returns 20 bytes).
    pub allocation_length: u16,
}

impl ReadPosition {
    /// Decode READ POSITION.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<10>(cdb)?;
        let form = match c[1] & 0x1f {
            0x00 | 0x01 => PositionForm::Short,
            0x06 => PositionForm::Long,
            0x08 => PositionForm::Extended,
            _ => return Err(Sense::invalid_cdb_field(1, Some(4))),
        };
        Ok(Self { form, allocation_length: get_be16(&c[7..]) })
    }
}

/// LOCATE(10) and LOCATE(16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locate {
    /// Return before positioning finishes.
    pub immediate: bool,
    /// Change partition to `partition` first.
    pub change_partition: bool,
    /// The partition (with `change_partition`).
    pub partition: u8,
    /// The logical object identifier to position before.
    pub object: u64,
    /// LOCATE(16) destination type: 0 object, 1 file, 3 end of data.
    pub destination: u8,
}

impl Locate {
    /// Decode LOCATE(10) (2Bh on a tape). BT (vendor block addresses) is
    /// accepted and treated as logical object identifiers, as st's
    /// `scsi2logical` mode expects.
    pub fn parse10(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<10>(cdb)?;
        Ok(Self {
            immediate: bit(c[1], 0),
            change_partition: bit(c[1], 1),
            partition: c[8],
            object: get_be32(&c[3..]).into(),
            destination: 0,
        })
    }

    /// Decode LOCATE(16) (92h). Destination types other than logical
    /// object (0), logical file (1) and end of data (3) are invalid.
    pub fn parse16(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<16>(cdb)?;
        let destination = (c[1] >> 3) & 0x07;
        if !matches!(destination, 0 | 1 | 3) {
            return Err(Sense::invalid_cdb_field(1, Some(5)));
        }
        Ok(Self {
            immediate: bit(c[1], 0),
            change_partition: bit(c[1], 1),
            partition: c[3],
            object: get_be64(&c[4..]),
            destination,
        })
    }
}

/// ERASE(6) (19h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erase {
    /// Erase from here to the end of the partition (else: just write EOD).
    pub long: bool,
    /// Return before erasing finishes.
    pub immediate: bool,
}

impl Erase {
    /// Decode ERASE(6).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<6>(cdb)?;
        Ok(Self { long: bit(c[1], 0), immediate: bit(c[1], 1) })
    }
}

/// LOAD UNLOAD (1Bh on a tape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadUnload {
    /// Return before the motion finishes.
    pub immediate: bool,
    /// Load (else unload).
    pub load: bool,
    /// Retension (wind to the end and back).
    pub retension: bool,
    /// Unload at end of tape (EOT bit; not with LOAD).
    pub end_of_tape: bool,
    /// HOLD: keep the medium in the drive.
    pub hold: bool,
}

impl LoadUnload {
    /// Decode LOAD UNLOAD; EOT with LOAD is invalid (SSC-3 7.3).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<6>(cdb)?;
        let l = Self {
            immediate: bit(c[1], 0),
            load: bit(c[4], 0),
            retension: bit(c[4], 1),
            end_of_tape: bit(c[4], 2),
            hold: bit(c[4], 3),
        };
        if l.load && l.end_of_tape {
            return Err(Sense::invalid_cdb_field(4, Some(2)));
        }
        Ok(l)
    }
}

/// REPORT DENSITY SUPPORT (44h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportDensitySupport {
    /// Only densities of the loaded medium (MEDIA).
    pub media: bool,
    /// Report medium types instead of densities.
    pub medium_type: bool,
    /// Allocation length.
    pub allocation_length: u16,
}

impl ReportDensitySupport {
    /// Decode REPORT DENSITY SUPPORT.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<10>(cdb)?;
        Ok(Self { media: bit(c[1], 0), medium_type: bit(c[1], 1), allocation_length: get_be16(&c[7..]) })
    }
}

/// LOG SENSE (4Dh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSense {
    /// Page control: 0 threshold, 1 cumulative, 2 default threshold, 3 default cumulative.
    pub page_control: u8,
    /// Page code.
    pub page_code: u8,
    /// Subpage code.
    pub subpage_code: u8,
    /// First parameter code wanted.
    pub parameter_pointer: u16,
    /// Allocation length.
    pub allocation_length: u16,
}

impl LogSense {
    /// Decode LOG SENSE. SP (save parameters) is not supported.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<10>(cdb)?;
        if bit(c[1], 0) {
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        Ok(Self {
            page_control: c[2] >> 6,
            page_code: c[2] & 0x3f,
            subpage_code: c[3],
            parameter_pointer: get_be16(&c[5..]),
            allocation_length: get_be16(&c[7..]),
        })
    }
}

/// READ ATTRIBUTE (8Ch) service actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeAction {
    /// Attribute values (00h).
    Values,
    /// Attribute list: identifiers only (01h).
    List,
    /// Logical volume list (02h).
    VolumeList,
    /// Partition list (03h).
    PartitionList,
    /// Supported attributes (05h).
    Supported,
}

/// READ ATTRIBUTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAttribute {
    /// What to return.
    pub action: AttributeAction,
    /// Logical volume number.
    pub volume: u8,
    /// Partition number.
    pub partition: u8,
    /// The first attribute identifier to return.
    pub first_attribute: u16,
    /// Allocation length.
    pub allocation_length: u32,
}

impl ReadAttribute {
    /// Decode READ ATTRIBUTE.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<16>(cdb)?;
        let action = match c[1] & 0x1f {
            0x00 => AttributeAction::Values,
            0x01 => AttributeAction::List,
            0x02 => AttributeAction::VolumeList,
            0x03 => AttributeAction::PartitionList,
            0x05 => AttributeAction::Supported,
            _ => return Err(Sense::invalid_cdb_field(1, Some(4))),
        };
        Ok(Self {
            action,
            volume: c[5],
            partition: c[7],
            first_attribute: get_be16(&c[8..]),
            allocation_length: get_be32(&c[10..]),
        })
    }
}

/// WRITE ATTRIBUTE (8Dh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteAttribute {
    /// Write-through cache (WTC).
    pub write_through: bool,
    /// Logical volume number.
    pub volume: u8,
    /// Partition number.
    pub partition: u8,
    /// Parameter list length.
    pub parameter_list_length: u32,
}

impl WriteAttribute {
    /// Decode WRITE ATTRIBUTE.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<16>(cdb)?;
        Ok(Self {
            write_through: bit(c[1], 0),
            volume: c[5],
            partition: c[7],
            parameter_list_length: get_be32(&c[10..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_verifies() {
        let r = StreamTransfer6::parse_read(&[0x08, 0x02, 0x01, 0x00, 0x00, 0]).unwrap();
        assert_eq!((r.fixed, r.sili, r.length), (false, true, 0x10000));
        let e = StreamTransfer6::parse_read(&[0x08, 0x03, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(e.field_pointer.map(|p| (p.byte, p.bit)), Some((1, Some(1))), "FIXED+SILI");
        let w = StreamTransfer6::parse_write(&[0x0a, 0x01, 0, 0, 8, 0]).unwrap();
        assert_eq!((w.fixed, w.length), (true, 8));
        let v = StreamTransfer6::parse_verify(&[0x13, 0x07, 0, 0, 2, 0]).unwrap();
        assert_eq!((v.fixed, v.byte_compare, v.immediate, v.length), (true, true, true, 2));
        assert!(StreamTransfer6::parse_read(&[0x08, 0, 0]).is_err(), "short CDB");
    }

    #[test]
    fn space_counts_are_signed() {
        let s = Space::parse6(&[0x11, 0x01, 0xff, 0xff, 0xff, 0]).unwrap();
        assert_eq!((s.code, s.count), (SpaceCode::Filemarks, -1));
        let s = Space::parse6(&[0x11, 0x00, 0x7f, 0xff, 0xff, 0]).unwrap();
        assert_eq!(s.count, 0x7f_ffff, "st's 'space to EOD' count");
        let mut c16 = [0u8; 16];
        c16[0] = 0x91;
        c16[1] = 0x03;
        c16[4..12].copy_from_slice(&(-5i64).to_be_bytes());
        let s = Space::parse16(&c16).unwrap();
        assert_eq!((s.code, s.count), (SpaceCode::EndOfData, -5));
        assert!(Space::parse6(&[0x11, 0x04, 0, 0, 1, 0]).is_err(), "setmarks");
    }

    #[test]
    fn positioning_commands() {
        let p = ReadPosition::parse(&[0x34, 0x06, 0, 0, 0, 0, 0, 0, 32, 0]).unwrap();
        assert_eq!((p.form, p.allocation_length), (PositionForm::Long, 32));
        assert!(ReadPosition::parse(&[0x34, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let l = Locate::parse10(&[0x2b, 0x02, 0, 0, 0, 1, 0, 0, 1, 0]).unwrap();
        assert_eq!((l.change_partition, l.partition, l.object), (true, 1, 256));
        let mut c16 = [0u8; 16];
        c16[0] = 0x92;
        c16[1] = 0x08; // destination type 1: file
        c16[11] = 7;
        let l = Locate::parse16(&c16).unwrap();
        assert_eq!((l.destination, l.object), (1, 7));
        c16[1] = 0x10;
        assert!(Locate::parse16(&c16).is_err());
        let lu = LoadUnload::parse(&[0x1b, 1, 0, 0, 0x01, 0]).unwrap();
        assert!(lu.load && lu.immediate && !lu.end_of_tape);
        assert!(LoadUnload::parse(&[0x1b, 0, 0, 0, 0x05, 0]).is_err(), "EOT with LOAD");
        let e = Erase::parse(&[0x19, 0x01, 0, 0, 0, 0]).unwrap();
        assert!(e.long && !e.immediate);
        let wf = WriteFilemarks::parse(&[0x10, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(wf.count, 0);
    }

    #[test]
    fn log_sense_and_attributes() {
        let l = LogSense::parse(&[0x4d, 0, 0x40 | 0x2e, 0, 0, 0, 0, 0x10, 0, 0]).unwrap();
        assert_eq!((l.page_control, l.page_code, l.allocation_length), (1, 0x2e, 0x1000));
        assert!(LogSense::parse(&[0x4d, 1, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(), "SP");
        let mut c = [0u8; 16];
        c[0] = 0x8c;
        c[1] = 0x05;
        c[8..10].copy_from_slice(&0x0400u16.to_be_bytes());
        c[10..14].copy_from_slice(&8192u32.to_be_bytes());
        let r = ReadAttribute::parse(&c).unwrap();
        assert_eq!((r.action, r.first_attribute, r.allocation_length), (AttributeAction::Supported, 0x400, 8192));
        c[1] = 0x04;
        assert!(ReadAttribute::parse(&c).is_err());
    }
}
