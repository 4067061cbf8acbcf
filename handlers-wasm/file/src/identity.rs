//! INQUIRY: who the device is (standard data, serial number, device
//! identification) and what it can do (the SBC VPD pages).

use tcmu_guest_sdk::scsi::inquiry::{StandardInquiry, peripheral_type, version_descriptor};
use tcmu_guest_sdk::scsi::vpd::{
    BlockDeviceCharacteristics, BlockLimits, LogicalBlockProvisioning, NON_ROTATING_MEDIUM, ProvisioningType, page,
};
use tcmu_guest_sdk::{Command, Transfer};

use crate::compare::MAX_COMPARE_AND_WRITE_BLOCKS;
use crate::provisioning::MAX_UNMAP_DESCRIPTORS;
use crate::{FileDisk, Outcome};

const DISK: u8 = peripheral_type::DISK;
/// The product revision level: the handler's major.minor version.
#[cfg(not(feature = "build-b"))]
const REVISION: &str = concat!(env!("CARGO_PKG_VERSION_MAJOR"), ".", env!("CARGO_PKG_VERSION_MINOR"));
/// The `build-b` variant says so in its revision, so a test can tell which
/// of two builds is serving.
#[cfg(feature = "build-b")]
const REVISION: &str = concat!(env!("CARGO_PKG_VERSION_MAJOR"), ".", env!("CARGO_PKG_VERSION_MINOR"), "b");
impl FileDisk {
    /// INQUIRY: standard data, the common VPD pages (00h, 80h, 83h, from
    /// the shared SPC layer) or the SBC ones.
    pub(crate) fn inquiry(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let mut standard = StandardInquiry::new(DISK, &self.config.vendor, &self.config.product, REVISION);
        standard.version_descriptors =
            &[version_descriptor::SAM_5, version_descriptor::SPC_4, version_descriptor::SBC_3];
        let limits = || self.block_limits_page();
        let characteristics = || self.characteristics_page();
        let provisioning = || self.provisioning_page();
        let sbc_pages: [(u8, &dyn Fn() -> Vec<u8>); 3] = [
            (page::BLOCK_LIMITS, &limits),
            (page::BLOCK_DEVICE_CHARACTERISTICS, &characteristics),
            (page::LOGICAL_BLOCK_PROVISIONING, &provisioning),
        ];
        self.spc.inquiry(cmd, xfer, &standard, &sbc_pages)
    }

    fn block_limits_page(&self) -> Vec<u8> {
        let max_provisioning_blocks = self.max_blocks_per_provisioning_command();
        BlockLimits {
            write_same_non_zero: true,
            max_compare_and_write_blocks: MAX_COMPARE_AND_WRITE_BLOCKS,
            // Transfers are bounded by the contract's 32-bit byte counts.
            max_transfer_blocks: u32::MAX / self.block_size(),
            max_unmap_blocks: max_provisioning_blocks,
            max_unmap_descriptors: MAX_UNMAP_DESCRIPTORS,
            optimal_unmap_granularity: 1,
            max_write_same_blocks: max_provisioning_blocks.into(),
            ..Default::default()
        }
        .to_page(DISK)
    }

    /// No seek penalty a rotation rate would warn about: the store sits
    /// behind the host's page cache.
    fn characteristics_page(&self) -> Vec<u8> {
        BlockDeviceCharacteristics { medium_rotation_rate: NON_ROTATING_MEDIUM, nominal_form_factor: 0 }.to_page(DISK)
    }

    fn provisioning_page(&self) -> Vec<u8> {
        LogicalBlockProvisioning {
            unmap: true,
            write_same_16_unmap: true,
            write_same_10_unmap: true,
            unmapped_reads_zero: true,
            anchor_supported: false,
            provisioning_type: ProvisioningType::Thin,
        }
        .to_page(DISK)
    }
}
