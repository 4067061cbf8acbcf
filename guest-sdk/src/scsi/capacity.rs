//! READ CAPACITY parameter data (SBC-3 5.15 and 5.16).

use crate::scsi::bytes::{put_be16, put_be32, put_be64};

/// READ CAPACITY(10) data: the last LBA (FFFFFFFFh when it does not fit,
/// telling the initiator to use READ CAPACITY(16)) and the block length.
pub fn read_capacity_10_data(last_lba: u64, block_length: u32) -> [u8; 8] {
    let mut d = [0u8; 8];
    put_be32(&mut d, u32::try_from(last_lba).unwrap_or(u32::MAX));
    put_be32(&mut d[4..], block_length);
    d
}

/// READ CAPACITY(16) data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadCapacity16Data {
    /// Address of the last logical block.
    pub last_lba: u64,
    /// Logical block length in bytes.
    pub block_length: u32,
    /// Logical blocks per physical block, as a power of two.
    pub logical_per_physical_exponent: u8,
    /// First LBA aligned to a physical block.
    pub lowest_aligned_lba: u16,
    /// LBPME: logical block provisioning (UNMAP) is enabled.
    pub provisioning: bool,
    /// LBPRZ: unmapped blocks read back as zeroes.
    pub unmapped_reads_zero: bool,
}

impl ReadCapacity16Data {
    /// Encode the 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut d = [0u8; 32];
        put_be64(&mut d, self.last_lba);
        put_be32(&mut d[8..], self.block_length);
        d[13] = self.logical_per_physical_exponent & 0x0f;
        put_be16(&mut d[14..], self.lowest_aligned_lba & 0x3fff);
        d[14] |= u8::from(self.provisioning) << 7 | u8::from(self.unmapped_reads_zero) << 6;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capacity_10_saturates() {
        assert_eq!(read_capacity_10_data(99, 512), [0, 0, 0, 99, 0, 0, 2, 0]);
        assert_eq!(read_capacity_10_data(1 << 32, 4096), [0xff, 0xff, 0xff, 0xff, 0, 0, 0x10, 0]);
    }

    #[test]
    fn read_capacity_16_layout() {
        let d = ReadCapacity16Data {
            last_lba: 0x1_0000_0000,
            block_length: 512,
            logical_per_physical_exponent: 3,
            lowest_aligned_lba: 0x0102,
            provisioning: true,
            unmapped_reads_zero: true,
        }
        .to_bytes();
        assert_eq!(&d[..8], &0x1_0000_0000u64.to_be_bytes());
        assert_eq!(&d[8..12], &512u32.to_be_bytes());
        assert_eq!(&d[12..16], &[0, 3, 0xc1, 0x02]);
        assert!(d[16..].iter().all(|&b| b == 0));
    }
}
