//! Fetching VPD pages (SPC-4 7.8) and decoding the SBC-3 ones the suite
//! relies on elsewhere.

use super::device::Device;
use crate::cdb;
use crate::expect::{be, ensure};

pub(crate) const SUPPORTED_PAGES: u8 = 0x00;
pub(crate) const UNIT_SERIAL_NUMBER: u8 = 0x80;
pub(crate) const DEVICE_IDENTIFICATION: u8 = 0x83;
pub(crate) const BLOCK_LIMITS: u8 = 0xB0;
pub(crate) const BLOCK_DEVICE_CHARACTERISTICS: u8 = 0xB1;
pub(crate) const LOGICAL_BLOCK_PROVISIONING: u8 = 0xB2;

/// Allocation length used to fetch a whole page.
const PAGE_ALLOC: u16 = 4096;

/// SBC-3 page length of the Block Limits and Block Device Characteristics pages.
pub(crate) const SBC3_PAGE_LENGTH: u64 = 0x3C;

/// Fetch VPD page `code` and check its header: peripheral byte 00h
/// (connected direct-access device), the page code, and a PAGE LENGTH that
/// accounts for exactly the bytes returned.
pub(crate) fn fetch(dev: &mut Device<'_>, code: u8) -> Result<Vec<u8>, String> {
    let page = dev
        .execute_good(&cdb::inquiry(true, code, PAGE_ALLOC), &[], PAGE_ALLOC.into())
        .map_err(|e| format!("VPD page {code:02X}h: {e}"))?;
    ensure!(page.len() >= 4, "VPD page {code:02X}h: {} bytes, less than its header", page.len());
    ensure!(
        page[0] == 0x00,
        "VPD page {code:02X}h: peripheral byte 0x{:02X}, expected 0x00 (connected direct-access)",
        page[0]
    );
    ensure!(page[1] == code, "VPD page {code:02X}h: page code byte says {:02X}h", page[1]);
    let declared = 4 + be(&page, 2..4)? as usize;
    ensure!(
        declared == page.len(),
        "VPD page {code:02X}h: PAGE LENGTH accounts for {declared} bytes, {} returned",
        page.len()
    );
    Ok(page)
}

/// The Block Limits page (B0h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockLimits {
    /// WSNZ: WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 is rejected.
    pub(crate) write_same_non_zero: bool,
    pub(crate) max_compare_and_write: u8,
    pub(crate) optimal_transfer_granularity: u16,
    /// 0: no limit reported.
    pub(crate) max_transfer: u32,
    pub(crate) optimal_transfer: u32,
    pub(crate) max_unmap_lbas: u32,
    pub(crate) max_unmap_descriptors: u32,
    pub(crate) optimal_unmap_granularity: u32,
    /// UNMAP GRANULARITY ALIGNMENT, when UGAVALID is set.
    pub(crate) unmap_granularity_alignment: Option<u32>,
    /// 0: no limit reported.
    pub(crate) max_write_same: u64,
}

impl BlockLimits {
    pub(crate) fn parse(page: &[u8]) -> Result<Self, String> {
        let page_length = be(page, 2..4)?;
        ensure!(
            page_length >= SBC3_PAGE_LENGTH && page.len() >= 4 + SBC3_PAGE_LENGTH as usize,
            "VPD page B0h: PAGE LENGTH 0x{page_length:X} with {} bytes returned, SBC-3 requires 0x3C",
            page.len()
        );
        let alignment = be(page, 32..36)? as u32;
        Ok(Self {
            write_same_non_zero: page[4] & 0x01 != 0,
            max_compare_and_write: page[5],
            optimal_transfer_granularity: be(page, 6..8)? as u16,
            max_transfer: be(page, 8..12)? as u32,
            optimal_transfer: be(page, 12..16)? as u32,
            max_unmap_lbas: be(page, 20..24)? as u32,
            max_unmap_descriptors: be(page, 24..28)? as u32,
            optimal_unmap_granularity: be(page, 28..32)? as u32,
            unmap_granularity_alignment: (alignment & 0x8000_0000 != 0).then_some(alignment & 0x7FFF_FFFF),
            max_write_same: be(page, 36..44)?,
        })
    }
}

/// The Logical Block Provisioning page (B2h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Provisioning {
    /// LBPU: UNMAP is supported.
    pub(crate) unmap: bool,
    /// LBPWS: WRITE SAME(16) with UNMAP is supported.
    pub(crate) write_same16_unmap: bool,
    /// LBPWS10: WRITE SAME(10) with UNMAP is supported.
    pub(crate) write_same10_unmap: bool,
    /// The LBPRZ field (SBC-4 widened SBC-3's bit to three bits; 001b: zeroes).
    pub(crate) read_zeroes_field: u8,
    /// ANC_SUP: the ANCHOR bit of UNMAP is supported.
    pub(crate) anchor: bool,
    /// PROVISIONING TYPE: 0 full, 1 resource, 2 thin.
    pub(crate) provisioning_type: u8,
}

impl Provisioning {
    pub(crate) fn parse(page: &[u8]) -> Result<Self, String> {
        ensure!(page.len() >= 8, "VPD page B2h: {} bytes, SBC-3 requires at least 8", page.len());
        Ok(Self {
            unmap: page[5] & 0x80 != 0,
            write_same16_unmap: page[5] & 0x40 != 0,
            write_same10_unmap: page[5] & 0x20 != 0,
            read_zeroes_field: (page[5] >> 2) & 0x07,
            anchor: page[5] & 0x02 != 0,
            provisioning_type: page[6] & 0x07,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_limits_fields() {
        let mut page = vec![0u8; 64];
        page[1] = BLOCK_LIMITS;
        page[3] = 0x3C;
        page[4] = 0x01;
        page[5] = 1;
        page[8..12].copy_from_slice(&2048u32.to_be_bytes());
        page[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
        page[32..36].copy_from_slice(&0x8000_0003u32.to_be_bytes());
        page[36..44].copy_from_slice(&0x1_0000u64.to_be_bytes());
        let limits = BlockLimits::parse(&page).unwrap();
        assert!(limits.write_same_non_zero);
        assert_eq!(limits.max_compare_and_write, 1);
        assert_eq!(limits.max_transfer, 2048);
        assert_eq!(limits.max_unmap_lbas, u32::MAX);
        assert_eq!(limits.unmap_granularity_alignment, Some(3));
        assert_eq!(limits.max_write_same, 0x1_0000);
        page[3] = 0x10;
        assert!(BlockLimits::parse(&page[..20]).is_err());
    }

    #[test]
    fn provisioning_bits() {
        let page = [0, LOGICAL_BLOCK_PROVISIONING, 0, 4, 0, 0x80 | 0x20 | 0x04 | 0x02, 0x02, 0];
        let provisioning = Provisioning::parse(&page).unwrap();
        assert!(provisioning.unmap && provisioning.write_same10_unmap && provisioning.anchor);
        assert!(!provisioning.write_same16_unmap);
        assert_eq!(provisioning.read_zeroes_field, 1);
        assert_eq!(provisioning.provisioning_type, 2);
    }
}
