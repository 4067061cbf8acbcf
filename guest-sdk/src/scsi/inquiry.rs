//! Standard INQUIRY data (SPC-4 6.6.2).

use crate::scsi::bytes::put_be16;

/// Peripheral device types (byte 0, bits 4-0, of INQUIRY and VPD data).
pub mod peripheral_type {
    /// Direct-access block device (SBC).
    pub const DISK: u8 = 0x00;
    /// Sequential-access device (SSC).
    pub const TAPE: u8 = 0x01;
    /// Processor device.
    pub const PROCESSOR: u8 = 0x03;
    /// CD/DVD device (MMC).
    pub const OPTICAL: u8 = 0x05;
    /// Medium changer (SMC).
    pub const CHANGER: u8 = 0x08;
    /// Storage array controller (SCC).
    pub const STORAGE_ARRAY: u8 = 0x0C;
    /// Enclosure services device (SES).
    pub const ENCLOSURE: u8 = 0x0D;
}

/// Version descriptors naming the standards a device claims (SPC-4 table 145).
pub mod version_descriptor {
    /// SAM-5, no version claimed.
    pub const SAM_5: u16 = 0x00A0;
    /// SPC-3, no version claimed.
    pub const SPC_3: u16 = 0x0300;
    /// SPC-4, no version claimed.
    pub const SPC_4: u16 = 0x0460;
    /// SBC-2, no version claimed.
    pub const SBC_2: u16 = 0x0320;
    /// SBC-3, no version claimed.
    pub const SBC_3: u16 = 0x04C0;
    /// SSC, no version claimed.
    pub const SSC: u16 = 0x0200;
    /// iSCSI, no version claimed.
    pub const ISCSI: u16 = 0x0960;
}

/// The VERSION field value for SPC-4.
pub const VERSION_SPC_4: u8 = 0x06;
/// The VERSION field value for SPC-3.
pub const VERSION_SPC_3: u8 = 0x05;

/// Offset of the first version descriptor.
const VERSION_DESCRIPTORS_AT: usize = 58;
/// At most eight version descriptors fit the standard layout.
const MAX_VERSION_DESCRIPTORS: usize = 8;
/// Length of the data when no version descriptors are reported: the
/// classic 36 bytes.
const SHORT_LEN: usize = 36;

/// Standard INQUIRY data. Fill in the fields and call [`to_bytes`](Self::to_bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardInquiry<'a> {
    /// Peripheral device type, see [`peripheral_type`].
    pub peripheral_type: u8,
    /// The medium is removable (RMB).
    pub removable: bool,
    /// The SPC version claimed (default [`VERSION_SPC_4`]).
    pub version: u8,
    /// Target port group support (TPGS, 0..=3): 0 when ALUA is not offered.
    pub tpgs: u8,
    /// Third-party copy (EXTENDED COPY) is supported (3PC).
    pub third_party_copy: bool,
    /// Protection information is supported (PROTECT).
    pub protect: bool,
    /// Command queuing is supported (CMDQUE); true by default since the
    /// kernel queues commands to the handler.
    pub cmdque: bool,
    /// T10 vendor identification, at most 8 ASCII bytes (space padded).
    pub vendor: &'a str,
    /// Product identification, at most 16 ASCII bytes (space padded).
    pub product: &'a str,
    /// Product revision level, at most 4 ASCII bytes (space padded).
    pub revision: &'a str,
    /// Up to eight version descriptors, see [`version_descriptor`].
    pub version_descriptors: &'a [u16],
}

impl<'a> StandardInquiry<'a> {
    /// INQUIRY data for an SPC-4 device with command queuing and nothing else
    /// optional.
    pub fn new(peripheral_type: u8, vendor: &'a str, product: &'a str, revision: &'a str) -> Self {
        Self {
            peripheral_type,
            removable: false,
            version: VERSION_SPC_4,
            tpgs: 0,
            third_party_copy: false,
            protect: false,
            cmdque: true,
            vendor,
            product,
            revision,
            version_descriptors: &[],
        }
    }

    /// Encode: 36 bytes, or 58 plus two per version descriptor when there
    /// are any. Identification strings longer than their field are cut.
    pub fn to_bytes(&self) -> Vec<u8> {
        let descriptors = &self.version_descriptors[..self.version_descriptors.len().min(MAX_VERSION_DESCRIPTORS)];
        let len = if descriptors.is_empty() { SHORT_LEN } else { VERSION_DESCRIPTORS_AT + 2 * descriptors.len() };
        let mut d = vec![0u8; len];
        d[0] = self.peripheral_type & 0x1f; // qualifier 000b: the unit is connected
        d[1] = if self.removable { 0x80 } else { 0 };
        d[2] = self.version;
        d[3] = 0x02; // response data format 2
        d[4] = (len - 5) as u8;
        d[5] = (self.tpgs & 0b11) << 4 | u8::from(self.third_party_copy) << 3 | u8::from(self.protect);
        d[7] = u8::from(self.cmdque) << 1;
        put_ascii(&mut d[8..16], self.vendor);
        put_ascii(&mut d[16..32], self.product);
        put_ascii(&mut d[32..36], self.revision);
        for (i, &descriptor) in descriptors.iter().enumerate() {
            put_be16(&mut d[VERSION_DESCRIPTORS_AT + 2 * i..], descriptor);
        }
        d
    }
}

/// Copy `text` into a fixed-width ASCII field, padding with spaces (SPC's
/// rule for identification strings) and cutting what does not fit.
pub fn put_ascii(field: &mut [u8], text: &str) {
    field.fill(b' ');
    let text = text.as_bytes();
    let n = text.len().min(field.len());
    field[..n].copy_from_slice(&text[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_36_bytes() {
        let d = StandardInquiry::new(peripheral_type::DISK, "ACME", "DISK", "1").to_bytes();
        assert_eq!(d.len(), 36);
        assert_eq!(&d[..8], &[0x00, 0x00, 0x06, 0x02, 31, 0x00, 0x00, 0x02]);
        assert_eq!(&d[8..16], b"ACME    ");
        assert_eq!(&d[16..32], b"DISK            ");
        assert_eq!(&d[32..36], b"1   ");
    }

    #[test]
    fn flags_and_version_descriptors() {
        let mut inq = StandardInquiry::new(peripheral_type::TAPE, "V", "P", "R");
        inq.removable = true;
        inq.tpgs = 1;
        inq.third_party_copy = true;
        inq.protect = true;
        inq.cmdque = false;
        inq.version_descriptors = &[version_descriptor::SAM_5, version_descriptor::SPC_4];
        let d = inq.to_bytes();
        assert_eq!(d.len(), 62);
        assert_eq!(d[0], 0x01);
        assert_eq!(d[1], 0x80);
        assert_eq!(d[4], 57);
        assert_eq!(d[5], 0x10 | 0x08 | 0x01);
        assert_eq!(d[7], 0);
        assert_eq!(&d[58..62], &[0x00, 0xA0, 0x04, 0x60]);
    }

    #[test]
    fn long_identification_is_cut() {
        let d = StandardInquiry::new(0, "VENDORTOOLONG", "P", "REVISION").to_bytes();
        assert_eq!(&d[8..16], b"VENDORTO");
        assert_eq!(&d[32..36], b"REVI");
    }
}
