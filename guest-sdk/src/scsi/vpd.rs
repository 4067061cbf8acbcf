//! Vital product data pages (INQUIRY with EVPD): supported pages, unit
//! serial number, device identification, and SBC's block limits, block
//! device characteristics and logical block provisioning pages.
//!
//! Every builder returns the whole page, header included, for a device of
//! the given peripheral type (see [`crate::scsi::inquiry::peripheral_type`]).

use std::fmt;
use std::str::FromStr;

use crate::scsi::bytes::{put_be16, put_be32, put_be64};
use crate::scsi::inquiry::put_ascii;

/// VPD page codes.
pub mod page {
    /// Supported VPD pages.
    pub const SUPPORTED_PAGES: u8 = 0x00;
    /// Unit serial number.
    pub const UNIT_SERIAL_NUMBER: u8 = 0x80;
    /// Device identification.
    pub const DEVICE_IDENTIFICATION: u8 = 0x83;
    /// Extended INQUIRY data.
    pub const EXTENDED_INQUIRY_DATA: u8 = 0x86;
    /// Block limits (SBC).
    pub const BLOCK_LIMITS: u8 = 0xB0;
    /// Block device characteristics (SBC).
    pub const BLOCK_DEVICE_CHARACTERISTICS: u8 = 0xB1;
    /// Logical block provisioning (SBC).
    pub const LOGICAL_BLOCK_PROVISIONING: u8 = 0xB2;
}

/// A VPD page: the 4-byte header, then `payload`.
fn vpd_page(peripheral_type: u8, code: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(4 + payload.len());
    p.extend_from_slice(&[peripheral_type & 0x1f, code]);
    let len = u16::try_from(payload.len()).expect("a VPD page holds at most 65535 bytes");
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Supported VPD pages (0x00). `pages` must be in ascending order and
/// include 0x00 itself.
pub fn supported_pages(peripheral_type: u8, pages: &[u8]) -> Vec<u8> {
    debug_assert!(pages.is_sorted(), "SPC-4 wants the page list in ascending order");
    vpd_page(peripheral_type, page::SUPPORTED_PAGES, pages)
}

/// Unit serial number (0x80).
pub fn unit_serial_number(peripheral_type: u8, serial: &str) -> Vec<u8> {
    vpd_page(peripheral_type, page::UNIT_SERIAL_NUMBER, serial.as_bytes())
}

/// A Network Address Authority logical unit name: NAA 5 (IEEE registered,
/// 8 bytes) or NAA 6 (IEEE registered extended, 16 bytes). Written
/// `naa.` followed by the hex digits, the form LIO and `lsscsi` use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NaaId {
    /// NAA 5: 4-bit NAA, 24-bit IEEE company ID, 36-bit vendor specific.
    Registered([u8; 8]),
    /// NAA 6: NAA 5 plus a 64-bit vendor specific extension.
    RegisteredExtended([u8; 16]),
}

/// The IEEE company ID (00-14-05, OpenFabrics) under which Linux's own SCSI
/// target (LIO) derives NAA identifiers for its devices; derived names use
/// it too, so they look like every other Linux target's.
pub const LINUX_TARGET_OUI: u32 = 0x00_14_05;

impl NaaId {
    /// The designator bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            NaaId::Registered(b) => b,
            NaaId::RegisteredExtended(b) => b,
        }
    }

    /// A stable NAA 6 name derived from a unit serial number under
    /// [`LINUX_TARGET_OUI`]: the same serial always yields the same name,
    /// so multipath and udev see one device across restarts. The 100
    /// vendor-specific bits come from FNV-1a hashes of the serial; this
    /// mapping must never change, or every device's identity would.
    pub fn from_serial(serial: &str) -> Self {
        let first = fnv1a64(FNV_OFFSET_BASIS, serial.as_bytes());
        let second = fnv1a64(first, serial.as_bytes());
        let vendor_specific = u128::from(first >> 28); // 36 bits
        let name = 6u128 << 124 | u128::from(LINUX_TARGET_OUI) << 100 | vendor_specific << 64 | u128::from(second);
        NaaId::RegisteredExtended(name.to_be_bytes())
    }
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`, starting from `state`.
fn fnv1a64(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

impl FromStr for NaaId {
    type Err = String;

    /// Parse `naa.6<31 hex digits>` or `naa.5<15 hex digits>`; the `naa.`
    /// prefix is optional.
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("naa.").or_else(|| s.strip_prefix("NAA.")).unwrap_or(s);
        let wrong = || format!("{s:?} is not an NAA name: expected naa.5 and 15 or naa.6 and 31 hex digits");
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(wrong());
        }
        match (digits.as_bytes().first(), digits.len()) {
            (Some(b'5'), 16) => {
                let v = u64::from_str_radix(digits, 16).map_err(|_| wrong())?;
                Ok(NaaId::Registered(v.to_be_bytes()))
            }
            (Some(b'6'), 32) => {
                let v = u128::from_str_radix(digits, 16).map_err(|_| wrong())?;
                Ok(NaaId::RegisteredExtended(v.to_be_bytes()))
            }
            _ => Err(wrong()),
        }
    }
}

impl fmt::Display for NaaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("naa.")?;
        self.as_bytes().iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// One logical-unit designator of the device identification page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Designator<'a> {
    /// An NAA name (binary, designator type 3).
    Naa(&'a NaaId),
    /// A T10 vendor ID based designator (ASCII, type 1): the 8-byte vendor
    /// identification followed by a vendor-specific string that makes it
    /// unique, usually the serial number.
    T10VendorId {
        /// T10 vendor identification (space padded to 8 bytes).
        vendor: &'a str,
        /// Vendor-specific identifier.
        identifier: &'a str,
    },
}

/// Code sets of a designation descriptor.
const CODE_SET_BINARY: u8 = 0x1;
const CODE_SET_ASCII: u8 = 0x2;
/// Designator types; association bits (5-4) are 00b, the logical unit.
const DESIGNATOR_T10_VENDOR_ID: u8 = 0x1;
const DESIGNATOR_NAA: u8 = 0x3;

/// Device identification (0x83) listing `designators`, all associated
/// with the logical unit.
pub fn device_identification(peripheral_type: u8, designators: &[Designator<'_>]) -> Vec<u8> {
    let mut payload = Vec::new();
    for designator in designators {
        match designator {
            Designator::Naa(naa) => {
                let id = naa.as_bytes();
                payload.extend_from_slice(&[CODE_SET_BINARY, DESIGNATOR_NAA, 0, id.len() as u8]);
                payload.extend_from_slice(id);
            }
            Designator::T10VendorId { vendor, identifier } => {
                let mut id = vec![0u8; 8];
                put_ascii(&mut id, vendor);
                id.extend_from_slice(identifier.as_bytes());
                // The length field is one byte; SPC-4 also wants a multiple of 4 bytes.
                id.truncate(252);
                id.resize(id.len().next_multiple_of(4), b' ');
                payload.extend_from_slice(&[CODE_SET_ASCII, DESIGNATOR_T10_VENDOR_ID, 0, id.len() as u8]);
                payload.extend_from_slice(&id);
            }
        }
    }
    vpd_page(peripheral_type, page::DEVICE_IDENTIFICATION, &payload)
}

/// Block limits (0xB0, SBC-3 6.5.3). Zero means "not reported" for every
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockLimits {
    /// WSNZ: WRITE SAME with 0 blocks ("to the end") is refused.
    pub write_same_non_zero: bool,
    /// Largest COMPARE AND WRITE, in blocks (0: not supported).
    pub max_compare_and_write_blocks: u8,
    /// Transfers should be multiples of this many blocks.
    pub optimal_transfer_granularity: u16,
    /// Largest READ/WRITE transfer, in blocks.
    pub max_transfer_blocks: u32,
    /// Preferred transfer size, in blocks.
    pub optimal_transfer_blocks: u32,
    /// Most blocks one UNMAP may cover.
    pub max_unmap_blocks: u32,
    /// Most descriptors one UNMAP parameter list may hold.
    pub max_unmap_descriptors: u32,
    /// Unmap works best in multiples of this many blocks.
    pub optimal_unmap_granularity: u32,
    /// First block aligned to the unmap granularity (UGAVALID when set).
    pub unmap_granularity_alignment: Option<u32>,
    /// Most blocks one WRITE SAME may cover.
    pub max_write_same_blocks: u64,
}

impl BlockLimits {
    /// The page.
    pub fn to_page(&self, peripheral_type: u8) -> Vec<u8> {
        let mut p = [0u8; 0x3C];
        // Offsets below are page bytes minus the 4-byte header.
        p[0] = u8::from(self.write_same_non_zero);
        p[1] = self.max_compare_and_write_blocks;
        put_be16(&mut p[2..], self.optimal_transfer_granularity);
        put_be32(&mut p[4..], self.max_transfer_blocks);
        put_be32(&mut p[8..], self.optimal_transfer_blocks);
        put_be32(&mut p[16..], self.max_unmap_blocks);
        put_be32(&mut p[20..], self.max_unmap_descriptors);
        put_be32(&mut p[24..], self.optimal_unmap_granularity);
        if let Some(alignment) = self.unmap_granularity_alignment {
            put_be32(&mut p[28..], 0x8000_0000 | (alignment & 0x7fff_ffff));
        }
        put_be64(&mut p[32..], self.max_write_same_blocks);
        vpd_page(peripheral_type, page::BLOCK_LIMITS, &p)
    }
}

/// MEDIUM ROTATION RATE value for solid-state (non-rotating) media.
pub const NON_ROTATING_MEDIUM: u16 = 0x0001;

/// Block device characteristics (0xB1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockDeviceCharacteristics {
    /// 0: not reported, 1: [`NON_ROTATING_MEDIUM`], else revolutions per minute.
    pub medium_rotation_rate: u16,
    /// NOMINAL FORM FACTOR (0: not reported, 2: 3.5", 3: 2.5", ...).
    pub nominal_form_factor: u8,
}

impl BlockDeviceCharacteristics {
    /// The page.
    pub fn to_page(&self, peripheral_type: u8) -> Vec<u8> {
        let mut p = [0u8; 0x3C];
        put_be16(&mut p[0..], self.medium_rotation_rate);
        p[3] = self.nominal_form_factor & 0x0f;
        vpd_page(peripheral_type, page::BLOCK_DEVICE_CHARACTERISTICS, &p)
    }
}

/// PROVISIONING TYPE of the logical block provisioning page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProvisioningType {
    /// Fully provisioned: every block has storage behind it.
    #[default]
    Full,
    /// Resource provisioned.
    Resource,
    /// Thin provisioned: storage is allocated on write, freed on unmap.
    Thin,
}

/// Logical block provisioning (0xB2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogicalBlockProvisioning {
    /// LBPU: UNMAP is supported.
    pub unmap: bool,
    /// LBPWS: WRITE SAME(16) with the UNMAP bit is supported.
    pub write_same_16_unmap: bool,
    /// LBPWS10: WRITE SAME(10) with the UNMAP bit is supported.
    pub write_same_10_unmap: bool,
    /// LBPRZ: unmapped blocks read back as zeroes.
    pub unmapped_reads_zero: bool,
    /// ANC_SUP: anchoring is supported.
    pub anchor_supported: bool,
    /// The provisioning type.
    pub provisioning_type: ProvisioningType,
}

impl LogicalBlockProvisioning {
    /// The page (without provisioning group descriptor).
    pub fn to_page(&self, peripheral_type: u8) -> Vec<u8> {
        let flags = u8::from(self.unmap) << 7
            | u8::from(self.write_same_16_unmap) << 6
            | u8::from(self.write_same_10_unmap) << 5
            | u8::from(self.unmapped_reads_zero) << 2 // LBPRZ: 001b in SBC-4's 3-bit field
            | u8::from(self.anchor_supported) << 1;
        let provisioning_type = match self.provisioning_type {
            ProvisioningType::Full => 0,
            ProvisioningType::Resource => 1,
            ProvisioningType::Thin => 2,
        };
        vpd_page(peripheral_type, page::LOGICAL_BLOCK_PROVISIONING, &[0, flags, provisioning_type, 0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_and_serial_pages() {
        assert_eq!(supported_pages(0, &[0x00, 0x80]), vec![0, 0x00, 0, 2, 0x00, 0x80]);
        assert_eq!(unit_serial_number(1, "AB1"), vec![1, 0x80, 0, 3, b'A', b'B', b'1']);
    }

    #[test]
    fn naa_parse_and_display_round_trip() {
        let six: NaaId = "naa.6001405ABCDEF0123456789abcdef012".parse().unwrap();
        assert_eq!(six.as_bytes().len(), 16);
        assert_eq!(six.as_bytes()[0], 0x60);
        assert_eq!(six.to_string(), "naa.6001405abcdef0123456789abcdef012");
        let five: NaaId = "5000c50012345678".parse().unwrap();
        assert_eq!(five, NaaId::Registered([0x50, 0x00, 0xc5, 0x00, 0x12, 0x34, 0x56, 0x78]));
    }

    #[test]
    fn naa_parse_rejects_malformed_names() {
        for bad in [
            "",
            "naa.",
            "naa.6001405",
            "naa.5001405abcdef0123456789abcdef01",
            "naa.600140g",
            "naa.7000c50012345678",
            "naa.+000c50012345678",
        ] {
            assert!(bad.parse::<NaaId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn naa_from_serial_is_stable_and_distinct() {
        let a = NaaId::from_serial("disk-a");
        assert_eq!(a, NaaId::from_serial("disk-a"));
        assert_ne!(a, NaaId::from_serial("disk-b"));
        let b = a.as_bytes();
        // NAA 6, then the OUI 00-14-05 spread over the next 24 bits.
        assert_eq!(&b[..4], &[0x60, 0x01, 0x40, 0x50 | (b[3] & 0x0f)]);
        // Pinned: a change here changes the identity of deployed devices.
        assert_eq!(a.to_string(), "naa.600140559ebf2506eb01d7a50a922929");
    }

    #[test]
    fn device_identification_descriptors() {
        let naa = NaaId::Registered([0x50, 1, 2, 3, 4, 5, 6, 7]);
        let p = device_identification(
            0,
            &[Designator::Naa(&naa), Designator::T10VendorId { vendor: "ACME", identifier: "SN1" }],
        );
        assert_eq!(&p[..4], &[0, 0x83, 0, (4 + 8 + 4 + 12) as u8]);
        assert_eq!(&p[4..8], &[0x01, 0x03, 0, 8]);
        assert_eq!(&p[8..16], naa.as_bytes());
        assert_eq!(&p[16..20], &[0x02, 0x01, 0, 12]);
        assert_eq!(&p[20..32], b"ACME    SN1 ");
    }

    #[test]
    fn block_limits_layout() {
        let p = BlockLimits {
            write_same_non_zero: true,
            max_compare_and_write_blocks: 1,
            optimal_transfer_granularity: 8,
            max_transfer_blocks: 0x1000,
            optimal_transfer_blocks: 0x100,
            max_unmap_blocks: 0x20000,
            max_unmap_descriptors: 16,
            optimal_unmap_granularity: 8,
            unmap_granularity_alignment: Some(0),
            max_write_same_blocks: 0x1_0000_0000,
        }
        .to_page(0);
        assert_eq!(p.len(), 64);
        assert_eq!(&p[..6], &[0, 0xB0, 0, 0x3C, 1, 1]);
        assert_eq!(&p[6..8], &[0, 8]);
        assert_eq!(&p[8..12], &0x1000u32.to_be_bytes());
        assert_eq!(&p[12..16], &0x100u32.to_be_bytes());
        assert_eq!(&p[20..24], &0x20000u32.to_be_bytes());
        assert_eq!(&p[24..28], &16u32.to_be_bytes());
        assert_eq!(&p[28..32], &8u32.to_be_bytes());
        assert_eq!(&p[32..36], &[0x80, 0, 0, 0]);
        assert_eq!(&p[36..44], &0x1_0000_0000u64.to_be_bytes());
    }

    #[test]
    fn characteristics_and_provisioning_layout() {
        let p =
            BlockDeviceCharacteristics { medium_rotation_rate: NON_ROTATING_MEDIUM, nominal_form_factor: 0 }.to_page(0);
        assert_eq!(p.len(), 64);
        assert_eq!(&p[..6], &[0, 0xB1, 0, 0x3C, 0, 1]);

        let p = LogicalBlockProvisioning {
            unmap: true,
            write_same_16_unmap: true,
            write_same_10_unmap: true,
            unmapped_reads_zero: true,
            anchor_supported: false,
            provisioning_type: ProvisioningType::Thin,
        }
        .to_page(0);
        assert_eq!(p, vec![0, 0xB2, 0, 4, 0, 0xE4, 2, 0]);
    }
}
