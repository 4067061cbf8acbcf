//! READ CAPACITY(10) and READ CAPACITY(16) (SBC-3 5.15, 5.16).

use super::device::Device;
use super::suite::Suite;
use crate::cdb;
use crate::expect::{be, ensure};

/// READ CAPACITY(10) parameter data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capacity10 {
    /// RETURNED LOGICAL BLOCK ADDRESS (FFFF_FFFFh: use READ CAPACITY(16)).
    pub(crate) last_lba: u32,
    pub(crate) block_length: u32,
}

/// READ CAPACITY(16) parameter data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capacity16 {
    pub(crate) last_lba: u64,
    pub(crate) block_length: u32,
    /// LBPME: logical block provisioning management (UNMAP and friends).
    pub(crate) provisioning_management: bool,
    /// LBPRZ: unmapped blocks read back as zeroes.
    pub(crate) unmapped_reads_zero: bool,
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT.
    pub(crate) physical_exponent: u8,
    pub(crate) lowest_aligned_lba: u16,
}

/// The parameter data length of READ CAPACITY(16).
const CAPACITY16_LEN: u32 = 32;

pub(crate) fn read_capacity10(dev: &mut Device<'_>) -> Result<Capacity10, String> {
    let data = dev.execute_good(&cdb::read_capacity10(), &[], 8)?;
    ensure!(data.len() == 8, "READ CAPACITY(10): expected 8 bytes got {}", data.len());
    Ok(Capacity10 { last_lba: be(&data, 0..4)? as u32, block_length: be(&data, 4..8)? as u32 })
}

pub(crate) fn read_capacity16(dev: &mut Device<'_>) -> Result<Capacity16, String> {
    let data = dev.execute_good(&cdb::read_capacity16(CAPACITY16_LEN), &[], CAPACITY16_LEN)?;
    ensure!(data.len() == 32, "READ CAPACITY(16): expected 32 bytes got {}", data.len());
    Ok(Capacity16 {
        last_lba: be(&data, 0..8)?,
        block_length: be(&data, 8..12)? as u32,
        provisioning_management: data[14] & 0x80 != 0,
        unmapped_reads_zero: data[14] & 0x40 != 0,
        physical_exponent: data[13] & 0x0F,
        lowest_aligned_lba: be(&data, 14..16)? as u16 & 0x3FFF,
    })
}

/// READ CAPACITY(10) must report `blocks` blocks (capped at FFFF_FFFFh as
/// the last LBA) of `block_size` bytes.
pub(crate) fn expect_capacity10(dev: &mut Device<'_>, blocks: u64, block_size: u32) -> Result<(), String> {
    let capacity = read_capacity10(dev)?;
    let expected = (blocks - 1).min(u64::from(u32::MAX)) as u32;
    ensure!(capacity.last_lba == expected, "READ CAPACITY(10): last LBA {} expected {expected}", capacity.last_lba);
    ensure!(
        capacity.block_length == block_size,
        "READ CAPACITY(10): block length {} expected {block_size}",
        capacity.block_length
    );
    Ok(())
}

/// READ CAPACITY(16) must report `blocks` blocks of `block_size` bytes.
pub(crate) fn expect_capacity16(dev: &mut Device<'_>, blocks: u64, block_size: u32) -> Result<Capacity16, String> {
    let capacity = read_capacity16(dev)?;
    ensure!(
        capacity.last_lba == blocks - 1,
        "READ CAPACITY(16): last LBA {} expected {}",
        capacity.last_lba,
        blocks - 1
    );
    ensure!(
        capacity.block_length == block_size,
        "READ CAPACITY(16): block length {} expected {block_size}",
        capacity.block_length
    );
    Ok(capacity)
}

pub(super) fn run(suite: &mut Suite<'_>) {
    suite.check("read-capacity10", |dev| expect_capacity10(dev, dev.blocks, dev.block_size));
    suite.check("read-capacity16", |dev| {
        let capacity = expect_capacity16(dev, dev.blocks, dev.block_size)?;
        let blocks_per_physical = 1u32 << capacity.physical_exponent;
        ensure!(
            u32::from(capacity.lowest_aligned_lba) < blocks_per_physical,
            "LOWEST ALIGNED LOGICAL BLOCK ADDRESS {} with {blocks_per_physical} logical blocks per physical block",
            capacity.lowest_aligned_lba
        );
        Ok(())
    });
    suite.check("read-capacity16.provisioning-matches-vpd-b2", |dev| {
        let capacity = read_capacity16(dev)?;
        let provisioning = dev.caps.provisioning.clone().map_err(|e| format!("nothing to compare LBPME with: {e}"))?;
        let thin_or_resource = provisioning.provisioning_type != 0;
        ensure!(
            capacity.provisioning_management == thin_or_resource,
            "LBPME={} but VPD B2h PROVISIONING TYPE is {} (LBPME=0 means fully provisioned, type 0)",
            u8::from(capacity.provisioning_management),
            provisioning.provisioning_type
        );
        let unmap_commands = provisioning.unmap || provisioning.write_same16_unmap || provisioning.write_same10_unmap;
        ensure!(
            !unmap_commands || capacity.provisioning_management,
            "VPD B2h offers unmapping (LBPU/LBPWS/LBPWS10) but LBPME=0"
        );
        ensure!(
            capacity.unmapped_reads_zero == (provisioning.read_zeroes_field == 1),
            "LBPRZ={} but VPD B2h LBPRZ field is {:03b}",
            u8::from(capacity.unmapped_reads_zero),
            provisioning.read_zeroes_field
        );
        Ok(())
    });
}
