//! Sense data: the common sense key / ASC / ASCQ triples, and builders for
//! fixed-format (SPC-4 4.5.3) and descriptor-format (SPC-4 4.5.2) sense
//! with an INFORMATION field and a sense-key-specific field pointer.
//!
//! Handlers usually pass errors around as [`Sense`] (a triple plus the
//! optional extras) and turn them into a [`Completion`] at the end, in the
//! format the initiator asked for (the D_SENSE bit of the control mode page):
//!
//! ```
//! use tcmu_guest_sdk::sense::{FieldPointer, Sense, SenseFormat, INVALID_FIELD_IN_CDB};
//!
//! // Byte 1, bit 4 of the CDB was the culprit.
//! let sense = Sense::from(INVALID_FIELD_IN_CDB).with_field_pointer(FieldPointer::cdb(1, Some(4)));
//! let done = sense.completion(SenseFormat::Fixed);
//! assert_eq!(done.sense[15], 0x80 | 0x40 | 0x08 | 4); // SKSV, C/D, BPV, bit 4
//! ```

use crate::{Completion, IoError, STATUS_CHECK_CONDITION};

/// Sense keys (SPC-4 table 48).
pub mod key {
    /// No specific sense key information to report.
    pub const NO_SENSE: u8 = 0x0;
    /// The command completed after recovery action.
    pub const RECOVERED_ERROR: u8 = 0x1;
    /// The logical unit cannot be accessed.
    pub const NOT_READY: u8 = 0x2;
    /// A flaw in the medium or recorded data.
    pub const MEDIUM_ERROR: u8 = 0x3;
    /// A non-recoverable hardware (or host I/O) failure.
    pub const HARDWARE_ERROR: u8 = 0x4;
    /// Something in the CDB or parameter list is wrong.
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    /// The logical unit's state changed (reset, capacity, mode pages, ...).
    pub const UNIT_ATTENTION: u8 = 0x6;
    /// The medium is protected against the attempted access.
    pub const DATA_PROTECT: u8 = 0x7;
    /// Blank or end-of-data medium encountered (tape, optical).
    pub const BLANK_CHECK: u8 = 0x8;
    /// The command was aborted.
    pub const ABORTED_COMMAND: u8 = 0xB;
    /// A buffered device reached the end of the partition (tape).
    pub const VOLUME_OVERFLOW: u8 = 0xD;
    /// Source data did not match the medium.
    pub const MISCOMPARE: u8 = 0xE;
}

/// A sense key with its additional sense code and qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenseCode {
    /// Sense key (low nibble).
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl SenseCode {
    /// Build a triple.
    pub const fn new(key: u8, asc: u8, ascq: u8) -> Self {
        Self { key, asc, ascq }
    }

    /// 18-byte fixed-format sense (response code 0x70, current error).
    pub fn fixed(&self) -> Vec<u8> {
        Sense::from(*self).fixed()
    }

    /// 8-byte descriptor-format sense (response code 0x72, current error).
    pub fn descriptor(&self) -> Vec<u8> {
        Sense::from(*self).descriptor()
    }
}

/// NO SENSE: NO ADDITIONAL SENSE INFORMATION (00/00/00), what REQUEST SENSE
/// returns when nothing is pending.
pub const NO_ADDITIONAL_SENSE: SenseCode = SenseCode::new(key::NO_SENSE, 0x00, 0x00);
/// NOT READY: LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE (02/04/00).
pub const LUN_NOT_READY: SenseCode = SenseCode::new(key::NOT_READY, 0x04, 0x00);
/// NOT READY: LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED
/// (02/04/02): the unit is stopped and needs START STOP UNIT.
pub const LUN_NOT_READY_INITIALIZING_COMMAND_REQUIRED: SenseCode = SenseCode::new(key::NOT_READY, 0x04, 0x02);
/// NOT READY: LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED (02/04/03).
pub const LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED: SenseCode = SenseCode::new(key::NOT_READY, 0x04, 0x03);
/// NOT READY: MEDIUM NOT PRESENT (02/3A/00).
pub const MEDIUM_NOT_PRESENT: SenseCode = SenseCode::new(key::NOT_READY, 0x3A, 0x00);
/// MEDIUM ERROR: WRITE ERROR (03/0C/00).
pub const WRITE_ERROR: SenseCode = SenseCode::new(key::MEDIUM_ERROR, 0x0C, 0x00);
/// MEDIUM ERROR: UNRECOVERED READ ERROR (03/11/00).
pub const UNRECOVERED_READ_ERROR: SenseCode = SenseCode::new(key::MEDIUM_ERROR, 0x11, 0x00);
/// HARDWARE ERROR: INTERNAL TARGET FAILURE (04/44/00).
pub const INTERNAL_TARGET_FAILURE: SenseCode = SenseCode::new(key::HARDWARE_ERROR, 0x44, 0x00);
/// ILLEGAL REQUEST: PARAMETER LIST LENGTH ERROR (05/1A/00).
pub const PARAMETER_LIST_LENGTH_ERROR: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x1A, 0x00);
/// ILLEGAL REQUEST: INVALID COMMAND OPERATION CODE (05/20/00).
pub const INVALID_COMMAND_OPERATION_CODE: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x20, 0x00);
/// ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE (05/21/00).
pub const LBA_OUT_OF_RANGE: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x21, 0x00);
/// ILLEGAL REQUEST: INVALID FIELD IN CDB (05/24/00).
pub const INVALID_FIELD_IN_CDB: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x24, 0x00);
/// ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED (05/25/00).
pub const LUN_NOT_SUPPORTED: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x25, 0x00);
/// ILLEGAL REQUEST: INVALID FIELD IN PARAMETER LIST (05/26/00).
pub const INVALID_FIELD_IN_PARAMETER_LIST: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x26, 0x00);
/// ILLEGAL REQUEST: SAVING PARAMETERS NOT SUPPORTED (05/39/00).
pub const SAVING_PARAMETERS_NOT_SUPPORTED: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x39, 0x00);
/// ILLEGAL REQUEST: MEDIUM REMOVAL PREVENTED (05/53/02).
pub const MEDIUM_REMOVAL_PREVENTED: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x53, 0x02);
/// UNIT ATTENTION: POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (06/29/00).
pub const POWER_ON_RESET: SenseCode = SenseCode::new(key::UNIT_ATTENTION, 0x29, 0x00);
/// UNIT ATTENTION: MODE PARAMETERS CHANGED (06/2A/01).
pub const MODE_PARAMETERS_CHANGED: SenseCode = SenseCode::new(key::UNIT_ATTENTION, 0x2A, 0x01);
/// UNIT ATTENTION: CAPACITY DATA HAS CHANGED (06/2A/09).
pub const CAPACITY_DATA_HAS_CHANGED: SenseCode = SenseCode::new(key::UNIT_ATTENTION, 0x2A, 0x09);
/// UNIT ATTENTION: NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (06/28/00).
pub const MEDIUM_MAY_HAVE_CHANGED: SenseCode = SenseCode::new(key::UNIT_ATTENTION, 0x28, 0x00);
/// UNIT ATTENTION: INQUIRY DATA HAS CHANGED (06/3F/03).
pub const INQUIRY_DATA_HAS_CHANGED: SenseCode = SenseCode::new(key::UNIT_ATTENTION, 0x3F, 0x03);
/// DATA PROTECT: WRITE PROTECTED (07/27/00).
pub const WRITE_PROTECTED: SenseCode = SenseCode::new(key::DATA_PROTECT, 0x27, 0x00);
/// MISCOMPARE: MISCOMPARE DURING VERIFY OPERATION (0E/1D/00).
pub const MISCOMPARE_DURING_VERIFY: SenseCode = SenseCode::new(key::MISCOMPARE, 0x1D, 0x00);

/// Fixed-format response code for current errors.
const FIXED_CURRENT: u8 = 0x70;
/// Descriptor-format response code for current errors.
const DESCRIPTOR_CURRENT: u8 = 0x72;
/// VALID bit of fixed-format byte 0 and of the information descriptor.
const VALID: u8 = 0x80;
/// Descriptor types (SPC-4 table 29).
const INFORMATION_DESCRIPTOR: u8 = 0x00;
const SENSE_KEY_SPECIFIC_DESCRIPTOR: u8 = 0x02;
const STREAM_COMMANDS_DESCRIPTOR: u8 = 0x04;

/// The stream-command bits of sense data (fixed byte 2, or the stream
/// commands descriptor): what a tape read or write ran into.
pub mod stream {
    /// A filemark was read or spaced over (or setmark).
    pub const FILEMARK: u8 = 0x80;
    /// End of medium: early warning, or end of partition.
    pub const EOM: u8 = 0x40;
    /// Incorrect length indicator: the block was not the requested size.
    pub const ILI: u8 = 0x20;
}

/// Bits above 32 that mark a sign-extended negative 32-bit INFORMATION.
const SIGN_EXTENDED: u64 = 0xffff_ffff_0000_0000;

/// The 4-byte fixed-format INFORMATION for `info`, if it fits: unsigned
/// 32-bit values, and negative values that fit 32 bits signed.
fn fixed_information(info: u64) -> Option<u32> {
    match u32::try_from(info) {
        Ok(v) => Some(v),
        Err(_) if info & SIGN_EXTENDED == SIGN_EXTENDED && (info as u32) & 0x8000_0000 != 0 => Some(info as u32),
        Err(_) => None,
    }
}

/// Which sense data format to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SenseFormat {
    /// Fixed format, 18 bytes (response code 0x70). Its INFORMATION field
    /// holds 32 bits only.
    #[default]
    Fixed,
    /// Descriptor format (response code 0x72), chosen by the initiator with
    /// the D_SENSE bit of the control mode page or REQUEST SENSE's DESC bit.
    Descriptor,
}

/// Where in the CDB or parameter list an invalid field is: the
/// sense-key-specific "field pointer" of ILLEGAL REQUEST sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPointer {
    /// True for a field in the CDB (C/D bit), false for the parameter list.
    pub in_cdb: bool,
    /// Byte offset of the field (for a multi-byte field, its most
    /// significant byte).
    pub byte: u16,
    /// Bit (0..=7) of the field's most significant bit, when known.
    pub bit: Option<u8>,
}

impl FieldPointer {
    /// A field in the CDB.
    pub const fn cdb(byte: u16, bit: Option<u8>) -> Self {
        Self { in_cdb: true, byte, bit }
    }

    /// A field in the parameter list (data-out).
    pub const fn parameter(byte: u16, bit: Option<u8>) -> Self {
        Self { in_cdb: false, byte, bit }
    }

    /// The three sense-key-specific bytes: SKSV, C/D, BPV, bit pointer,
    /// field pointer.
    fn encode(&self) -> [u8; 3] {
        let mut b0 = 0x80; // SKSV
        if self.in_cdb {
            b0 |= 0x40;
        }
        if let Some(bit) = self.bit {
            b0 |= 0x08 | (bit & 0x07);
        }
        let [hi, lo] = self.byte.to_be_bytes();
        [b0, hi, lo]
    }
}

/// Sense data to report: a [`SenseCode`] plus the optional INFORMATION
/// field and field pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key, ASC and ASCQ.
    pub code: SenseCode,
    /// The INFORMATION field, e.g. the offset of the first miscompared byte
    /// or the LBA of an unrecovered block. Reported with the VALID bit set.
    pub information: Option<u64>,
    /// Which field of the CDB or parameter list is invalid.
    pub field_pointer: Option<FieldPointer>,
    /// FILEMARK, EOM and ILI ([`stream`]); zero for non-stream commands.
    pub stream: u8,
}

impl From<SenseCode> for Sense {
    fn from(code: SenseCode) -> Self {
        Self { code, information: None, field_pointer: None, stream: 0 }
    }
}

impl Sense {
    /// INVALID FIELD IN CDB pointing at `byte` (and `bit`, if known).
    pub fn invalid_cdb_field(byte: u16, bit: Option<u8>) -> Self {
        Sense::from(INVALID_FIELD_IN_CDB).with_field_pointer(FieldPointer::cdb(byte, bit))
    }

    /// INVALID FIELD IN PARAMETER LIST pointing at `byte` (and `bit`).
    pub fn invalid_parameter_field(byte: u16, bit: Option<u8>) -> Self {
        Sense::from(INVALID_FIELD_IN_PARAMETER_LIST).with_field_pointer(FieldPointer::parameter(byte, bit))
    }

    /// Set the INFORMATION field.
    pub fn with_information(mut self, information: u64) -> Self {
        self.information = Some(information);
        self
    }

    /// Set INFORMATION to a signed value (two's complement), as SSC uses
    /// for residuals: requested minus actual, negative when the block was
    /// longer than the request. In fixed format it must fit 32 bits.
    pub fn with_signed_information(mut self, information: i64) -> Self {
        // Two's complement in 64 bits; fixed format keeps the low 32 bits of
        // a negative value that fits them (see `fixed_information`).
        self.information = Some(information as u64);
        self
    }

    /// INFORMATION as a signed value (see [`Sense::with_signed_information`]).
    pub fn signed_information(&self) -> Option<i64> {
        self.information.map(|i| i as i64)
    }

    /// Set the FILEMARK bit.
    pub fn with_filemark(mut self) -> Self {
        self.stream |= stream::FILEMARK;
        self
    }

    /// Set the EOM bit.
    pub fn with_eom(mut self) -> Self {
        self.stream |= stream::EOM;
        self
    }

    /// Set the ILI bit.
    pub fn with_ili(mut self) -> Self {
        self.stream |= stream::ILI;
        self
    }

    /// Set the sense-key-specific field pointer.
    pub fn with_field_pointer(mut self, pointer: FieldPointer) -> Self {
        self.field_pointer = Some(pointer);
        self
    }

    /// Encode in `format`.
    pub fn to_bytes(&self, format: SenseFormat) -> Vec<u8> {
        match format {
            SenseFormat::Fixed => self.fixed(),
            SenseFormat::Descriptor => self.descriptor(),
        }
    }

    /// 18-byte fixed-format sense. An INFORMATION value wider than 32 bits
    /// does not fit; it is then left out (VALID clear), as SPC-4 requires,
    /// so callers with 64-bit LBAs should prefer descriptor format.
    pub fn fixed(&self) -> Vec<u8> {
        let mut s = vec![0u8; 18];
        s[0] = FIXED_CURRENT;
        s[2] = (self.code.key & 0x0f) | (self.stream & 0xe0);
        if let Some(info) = self.information.and_then(fixed_information) {
            s[0] |= VALID;
            s[3..7].copy_from_slice(&info.to_be_bytes());
        }
        s[7] = 10; // additional sense length: bytes 8..18
        s[12] = self.code.asc;
        s[13] = self.code.ascq;
        if let Some(pointer) = self.field_pointer {
            s[15..18].copy_from_slice(&pointer.encode());
        }
        s
    }

    /// Descriptor-format sense: the 8-byte header plus an information
    /// descriptor and a sense-key-specific descriptor when those are set.
    pub fn descriptor(&self) -> Vec<u8> {
        let mut s = vec![DESCRIPTOR_CURRENT, self.code.key & 0x0f, self.code.asc, self.code.ascq];
        s.extend_from_slice(&[0, 0, 0, 0]); // reserved x3, additional sense length
        if let Some(info) = self.information {
            s.extend_from_slice(&[INFORMATION_DESCRIPTOR, 0x0a, VALID, 0]);
            s.extend_from_slice(&info.to_be_bytes());
        }
        if let Some(pointer) = self.field_pointer {
            s.extend_from_slice(&[SENSE_KEY_SPECIFIC_DESCRIPTOR, 0x06, 0, 0]);
            s.extend_from_slice(&pointer.encode());
            s.push(0);
        }
        if self.stream != 0 {
            s.extend_from_slice(&[STREAM_COMMANDS_DESCRIPTOR, 0x02, 0, self.stream & 0xe0]);
        }
        s[7] = (s.len() - 8) as u8; // at most 24 bytes of descriptors
        s
    }

    /// CHECK CONDITION carrying this sense in `format`.
    pub fn completion(&self, format: SenseFormat) -> Completion {
        Completion::check_condition_with_sense(self.to_bytes(format))
    }
}

impl From<Sense> for Completion {
    /// CHECK CONDITION with fixed-format sense.
    fn from(sense: Sense) -> Self {
        Completion { status: STATUS_CHECK_CONDITION, sense: sense.fixed(), data_in_len: 0 }
    }
}

impl From<SenseCode> for Completion {
    /// CHECK CONDITION with fixed-format sense.
    fn from(code: SenseCode) -> Self {
        Completion::check_condition(&code)
    }
}

impl IoError {
    /// The sense to report when reading the medium failed with this error.
    /// `OutOfRange` can only mean the store shrank under the command, so it
    /// maps to LBA OUT OF RANGE; host I/O failures are medium errors.
    pub fn read_sense(&self) -> SenseCode {
        match self {
            IoError::OutOfRange => LBA_OUT_OF_RANGE,
            IoError::ReadOnly | IoError::TooLarge => INTERNAL_TARGET_FAILURE,
            IoError::Io(_) => UNRECOVERED_READ_ERROR,
        }
    }

    /// The sense to report when writing (or flushing, discarding, zeroing)
    /// the medium failed with this error.
    pub fn write_sense(&self) -> SenseCode {
        match self {
            IoError::OutOfRange => LBA_OUT_OF_RANGE,
            IoError::ReadOnly => WRITE_PROTECTED,
            IoError::TooLarge => INTERNAL_TARGET_FAILURE,
            IoError::Io(_) => WRITE_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bits_and_signed_information_in_both_formats() {
        // A 64 KiB block read with a 16 KiB buffer: ILI, INFORMATION = -49152.
        let sense = Sense::from(NO_ADDITIONAL_SENSE).with_ili().with_signed_information(16384 - 65536);
        let f = sense.fixed();
        assert_eq!(f[0], 0xf0, "VALID + current fixed");
        assert_eq!(f[2], stream::ILI);
        assert_eq!(i32::from_be_bytes(f[3..7].try_into().unwrap()), -49152);
        assert_eq!(sense.signed_information(), Some(-49152));
        let d = sense.descriptor();
        assert_eq!(&d[8..12], &[INFORMATION_DESCRIPTOR, 0x0a, VALID, 0]);
        assert_eq!(i64::from_be_bytes(d[12..20].try_into().unwrap()), -49152);
        assert_eq!(&d[20..24], &[STREAM_COMMANDS_DESCRIPTOR, 2, 0, stream::ILI]);
        assert_eq!(usize::from(d[7]), d.len() - 8);

        // A filemark with a positive residual, and EOD on BLANK CHECK.
        let fm = Sense::from(SenseCode::new(key::NO_SENSE, 0, 1)).with_filemark().with_signed_information(3).fixed();
        assert_eq!((fm[0], fm[2], &fm[3..7], fm[12], fm[13]), (0xf0, 0x80, &[0, 0, 0, 3][..], 0, 1));
        let eom = Sense::from(SenseCode::new(key::NO_SENSE, 0, 2)).with_eom().fixed();
        assert_eq!((eom[0], eom[2]), (0x70, 0x40), "EOM without INFORMATION leaves VALID clear");

        // Negative values beyond 32 bits do not fit fixed format.
        let wide = Sense::from(NO_ADDITIONAL_SENSE).with_signed_information(-(1 << 40)).fixed();
        assert_eq!(wide[0], 0x70);
    }

    #[test]
    fn fixed_format_layout() {
        let s = LBA_OUT_OF_RANGE.fixed();
        assert_eq!(s.len(), 18);
        assert_eq!(s[0], 0x70);
        assert_eq!(s[2], 0x05);
        assert_eq!(s[7], 10);
        assert_eq!((s[12], s[13]), (0x21, 0x00));
        assert!(s[3..7].iter().chain(&s[15..18]).all(|&b| b == 0));
    }

    #[test]
    fn fixed_format_information_sets_valid() {
        let s = Sense::from(MISCOMPARE_DURING_VERIFY).with_information(0x0102_0304).fixed();
        assert_eq!(s[0], 0xf0);
        assert_eq!(s[2], 0x0e);
        assert_eq!(&s[3..7], &[1, 2, 3, 4]);
    }

    #[test]
    fn fixed_format_drops_information_wider_than_32_bits() {
        let s = Sense::from(UNRECOVERED_READ_ERROR).with_information(1 << 32).fixed();
        assert_eq!(s[0], 0x70);
        assert_eq!(&s[3..7], &[0; 4]);
    }

    #[test]
    fn field_pointer_encoding() {
        let s = Sense::invalid_cdb_field(0x0102, Some(5)).fixed();
        assert_eq!(&s[15..18], &[0x80 | 0x40 | 0x08 | 5, 0x01, 0x02]);
        let s = Sense::invalid_parameter_field(9, None).fixed();
        assert_eq!((s[12], s[13]), (0x26, 0x00));
        assert_eq!(&s[15..18], &[0x80, 0, 9]);
    }

    #[test]
    fn descriptor_format_bare() {
        assert_eq!(WRITE_PROTECTED.descriptor(), vec![0x72, 0x07, 0x27, 0x00, 0, 0, 0, 0]);
    }

    #[test]
    fn descriptor_format_with_information_and_pointer() {
        let s = Sense::invalid_cdb_field(2, None).with_information(0x1122_3344_5566_7788).descriptor();
        assert_eq!(s.len(), 8 + 12 + 8);
        assert_eq!(s[7], 20);
        assert_eq!(&s[8..12], &[0x00, 0x0a, 0x80, 0x00]);
        assert_eq!(&s[12..20], &0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(&s[20..28], &[0x02, 0x06, 0, 0, 0xc0, 0, 2, 0]);
    }

    #[test]
    fn completion_uses_requested_format() {
        let sense = Sense::from(LUN_NOT_READY);
        let fixed = sense.completion(SenseFormat::Fixed);
        assert_eq!(fixed.status, STATUS_CHECK_CONDITION);
        assert_eq!(fixed.sense[0], 0x70);
        assert_eq!(sense.completion(SenseFormat::Descriptor).sense[0], 0x72);
        assert_eq!(Completion::from(sense), fixed);
    }

    #[test]
    fn io_errors_map_to_medium_errors() {
        let io = IoError::Io("EIO".into());
        assert_eq!(io.read_sense(), UNRECOVERED_READ_ERROR);
        assert_eq!(io.write_sense(), WRITE_ERROR);
        assert_eq!(IoError::ReadOnly.write_sense(), WRITE_PROTECTED);
        assert_eq!(IoError::OutOfRange.read_sense(), LBA_OUT_OF_RANGE);
    }
}
