//! Decoding SCSI sense data (SPC-4 4.5) in either format, and the sense
//! codes the suite expects.

use std::fmt;

/// A sense key with its additional sense code and qualifier, shown as
/// `KK/AA/QQ` in hex (`05/24/00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenseCode {
    /// Sense key (4 bits).
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl SenseCode {
    /// Build a triple.
    #[must_use]
    pub const fn new(key: u8, asc: u8, ascq: u8) -> Self {
        Self { key, asc, ascq }
    }
}

impl fmt::Display for SenseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}/{:02X}/{:02X}", self.key, self.asc, self.ascq)
    }
}

/// Sense key UNIT ATTENTION.
pub const KEY_UNIT_ATTENTION: u8 = 0x06;

/// NO SENSE: NO ADDITIONAL SENSE INFORMATION (00/00/00).
pub const NO_SENSE: SenseCode = SenseCode::new(0x00, 0x00, 0x00);
/// ILLEGAL REQUEST: PARAMETER LIST LENGTH ERROR (05/1A/00).
pub const PARAMETER_LIST_LENGTH_ERROR: SenseCode = SenseCode::new(0x05, 0x1A, 0x00);
/// ILLEGAL REQUEST: INVALID COMMAND OPERATION CODE (05/20/00).
pub const INVALID_COMMAND_OPERATION_CODE: SenseCode = SenseCode::new(0x05, 0x20, 0x00);
/// ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE (05/21/00).
pub const LBA_OUT_OF_RANGE: SenseCode = SenseCode::new(0x05, 0x21, 0x00);
/// ILLEGAL REQUEST: INVALID FIELD IN CDB (05/24/00).
pub const INVALID_FIELD_IN_CDB: SenseCode = SenseCode::new(0x05, 0x24, 0x00);
/// ILLEGAL REQUEST: INVALID FIELD IN PARAMETER LIST (05/26/00).
pub const INVALID_FIELD_IN_PARAMETER_LIST: SenseCode = SenseCode::new(0x05, 0x26, 0x00);
/// ILLEGAL REQUEST: SAVING PARAMETERS NOT SUPPORTED (05/39/00).
pub const SAVING_PARAMETERS_NOT_SUPPORTED: SenseCode = SenseCode::new(0x05, 0x39, 0x00);
/// UNIT ATTENTION: CAPACITY DATA HAS CHANGED (06/2A/09).
pub const CAPACITY_DATA_HAS_CHANGED: SenseCode = SenseCode::new(0x06, 0x2A, 0x09);
/// DATA PROTECT: WRITE PROTECTED (07/27/00).
pub const WRITE_PROTECTED: SenseCode = SenseCode::new(0x07, 0x27, 0x00);
/// MISCOMPARE: MISCOMPARE DURING VERIFY OPERATION (0E/1D/00).
pub const MISCOMPARE_DURING_VERIFY: SenseCode = SenseCode::new(0x0E, 0x1D, 0x00);

/// The two sense data layouts of SPC-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenseFormat {
    /// Response codes 70h (current) and 71h (deferred).
    Fixed,
    /// Response codes 72h (current) and 73h (deferred).
    Descriptor,
}

/// Decoded sense data: the parts a conformance check or a log line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sense {
    /// Which layout the device used.
    pub format: SenseFormat,
    /// Whether the sense reports a deferred error (71h/73h).
    pub deferred: bool,
    /// Sense key, ASC and ASCQ.
    pub code: SenseCode,
    /// The INFORMATION field, when the device marked it valid (fixed format
    /// VALID bit, or a descriptor-format information descriptor with VALID).
    pub information: Option<u64>,
}

/// Why sense bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// No sense bytes at all.
    Empty,
    /// The response code is not 70h-73h.
    UnknownResponseCode(u8),
    /// Too few bytes to hold the sense key, ASC and ASCQ.
    Truncated {
        /// Bytes of sense data that were usable.
        len: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("no sense data"),
            DecodeError::UnknownResponseCode(code) => {
                write!(f, "unknown sense response code 0x{code:02X}")
            }
            DecodeError::Truncated { len } => write!(f, "sense data truncated to {len} bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Bytes through ASCQ in fixed format.
const FIXED_MIN_LEN: usize = 14;
/// Descriptor-format header length.
const DESCRIPTOR_HEADER_LEN: usize = 8;
/// Descriptor type of the information descriptor.
const INFORMATION_DESCRIPTOR: u8 = 0x00;

impl Sense {
    /// Decode fixed or descriptor format sense data.
    ///
    /// The ADDITIONAL SENSE LENGTH field bounds what is read, so trailing
    /// padding in a fixed-size sense buffer is ignored.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the bytes are empty, carry an unknown response
    /// code, or stop before the sense key, ASC and ASCQ.
    pub fn decode(bytes: &[u8]) -> Result<Sense, DecodeError> {
        let response_code = bytes.first().ok_or(DecodeError::Empty)? & 0x7F;
        match response_code {
            0x70 | 0x71 => Self::decode_fixed(bytes, response_code == 0x71),
            0x72 | 0x73 => Self::decode_descriptor(bytes, response_code == 0x73),
            other => Err(DecodeError::UnknownResponseCode(other)),
        }
    }

    fn decode_fixed(bytes: &[u8], deferred: bool) -> Result<Sense, DecodeError> {
        let len = declared_len(bytes, 7);
        if len < FIXED_MIN_LEN {
            return Err(DecodeError::Truncated { len });
        }
        let valid = bytes[0] & 0x80 != 0;
        let information = u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]);
        Ok(Sense {
            format: SenseFormat::Fixed,
            deferred,
            code: SenseCode::new(bytes[2] & 0x0F, bytes[12], bytes[13]),
            information: valid.then_some(u64::from(information)),
        })
    }

    fn decode_descriptor(bytes: &[u8], deferred: bool) -> Result<Sense, DecodeError> {
        if bytes.len() < 4 {
            return Err(DecodeError::Truncated { len: bytes.len() });
        }
        let code = SenseCode::new(bytes[1] & 0x0F, bytes[2], bytes[3]);
        let len = declared_len(bytes, 7);
        let mut information = None;
        let mut descriptors = bytes.get(DESCRIPTOR_HEADER_LEN..len).unwrap_or_default();
        while let [kind, additional_len, ..] = *descriptors {
            let Some(descriptor) = descriptors.get(..2 + usize::from(additional_len)) else {
                break;
            };
            if kind == INFORMATION_DESCRIPTOR && descriptor.len() >= 12 && descriptor[2] & 0x80 != 0 {
                let field: [u8; 8] = descriptor[4..12].try_into().expect("slice of eight bytes");
                information = Some(u64::from_be_bytes(field));
            }
            descriptors = &descriptors[descriptor.len()..];
        }
        Ok(Sense { format: SenseFormat::Descriptor, deferred, code, information })
    }
}

/// Shows the sense code, and the INFORMATION field when valid.
impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(information) = self.information {
            write!(f, " information {information}")?;
        }
        Ok(())
    }
}

/// The length the header at `length_at` declares (header included),
/// bounded by the bytes actually present.
fn declared_len(bytes: &[u8], length_at: usize) -> usize {
    match bytes.get(length_at) {
        Some(&additional) => bytes.len().min(length_at + 1 + usize::from(additional)),
        None => bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
        let mut bytes = vec![0u8; 18];
        bytes[0] = 0x70;
        bytes[2] = key;
        bytes[7] = 10;
        bytes[12] = asc;
        bytes[13] = ascq;
        bytes
    }

    #[test]
    fn fixed_format_without_information() {
        let sense = Sense::decode(&fixed(0x05, 0x24, 0x00)).unwrap();
        assert_eq!(sense.format, SenseFormat::Fixed);
        assert!(!sense.deferred);
        assert_eq!(sense.code, INVALID_FIELD_IN_CDB);
        assert_eq!(sense.information, None);
        assert_eq!(sense.to_string(), "05/24/00");
    }

    #[test]
    fn fixed_format_information_needs_valid_bit() {
        let mut bytes = fixed(0x0E, 0x1D, 0x00);
        bytes[3..7].copy_from_slice(&517u32.to_be_bytes());
        assert_eq!(Sense::decode(&bytes).unwrap().information, None);
        bytes[0] |= 0x80;
        let sense = Sense::decode(&bytes).unwrap();
        assert_eq!(sense.code, MISCOMPARE_DURING_VERIFY);
        assert_eq!(sense.information, Some(517));
    }

    #[test]
    fn fixed_format_ignores_flag_bits_next_to_the_key() {
        let mut bytes = fixed(0x05, 0x21, 0x00);
        bytes[2] |= 0xE0; // FILEMARK, EOM, ILI
        assert_eq!(Sense::decode(&bytes).unwrap().code, LBA_OUT_OF_RANGE);
    }

    #[test]
    fn fixed_format_deferred() {
        let mut bytes = fixed(0x03, 0x0C, 0x00);
        bytes[0] = 0x71;
        assert!(Sense::decode(&bytes).unwrap().deferred);
    }

    #[test]
    fn fixed_format_too_short_for_asc() {
        let mut bytes = fixed(0x05, 0x24, 0x00);
        bytes[7] = 2; // declares only ten bytes
        assert_eq!(Sense::decode(&bytes), Err(DecodeError::Truncated { len: 10 }));
        assert_eq!(Sense::decode(&fixed(0x05, 0x24, 0x00)[..12]), Err(DecodeError::Truncated { len: 12 }));
    }

    #[test]
    fn descriptor_format_with_information_descriptor() {
        let mut bytes = vec![0x72, 0x0E, 0x1D, 0x00, 0, 0, 0, 12];
        bytes.extend_from_slice(&[0x00, 0x0A, 0x80, 0x00]);
        bytes.extend_from_slice(&0x1_0000_0005u64.to_be_bytes());
        let sense = Sense::decode(&bytes).unwrap();
        assert_eq!(sense.format, SenseFormat::Descriptor);
        assert_eq!(sense.code, MISCOMPARE_DURING_VERIFY);
        assert_eq!(sense.information, Some(0x1_0000_0005));
        assert_eq!(sense.to_string(), "0E/1D/00 information 4294967301");
    }

    #[test]
    fn descriptor_format_skips_other_descriptors_and_invalid_information() {
        let mut bytes = vec![0x73, 0x05, 0x24, 0x00, 0, 0, 0, 20];
        // Sense key specific descriptor, then an information descriptor without VALID.
        bytes.extend_from_slice(&[0x02, 0x06, 0, 0, 0xC0, 0x00, 0x01, 0]);
        bytes.extend_from_slice(&[0x00, 0x0A, 0x00, 0x00]);
        bytes.extend_from_slice(&7u64.to_be_bytes());
        let sense = Sense::decode(&bytes).unwrap();
        assert!(sense.deferred);
        assert_eq!(sense.code, INVALID_FIELD_IN_CDB);
        assert_eq!(sense.information, None);
    }

    #[test]
    fn descriptor_format_tolerates_a_truncated_descriptor() {
        let mut bytes = vec![0x72, 0x06, 0x2A, 0x09, 0, 0, 0, 12];
        bytes.extend_from_slice(&[0x00, 0x0A, 0x80, 0x00, 0x00]);
        let sense = Sense::decode(&bytes).unwrap();
        assert_eq!(sense.code, CAPACITY_DATA_HAS_CHANGED);
        assert_eq!(sense.information, None);
    }

    #[test]
    fn rejects_empty_and_unknown_formats() {
        assert_eq!(Sense::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Sense::decode(&[0x7F, 0, 0]), Err(DecodeError::UnknownResponseCode(0x7F)));
        assert_eq!(Sense::decode(&[0x72, 0x05]), Err(DecodeError::Truncated { len: 2 }));
    }
}
