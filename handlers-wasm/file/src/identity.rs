//! INQUIRY: who the device is (standard data, serial number, device
//! identification) and what it can do (the SBC VPD pages).

use tcmu_guest_sdk::scsi::cdb::Inquiry;
use tcmu_guest_sdk::scsi::inquiry::{StandardInquiry, peripheral_type, version_descriptor};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::scsi::vpd::{
    self, BlockDeviceCharacteristics, BlockLimits, Designator, LogicalBlockProvisioning, NON_ROTATING_MEDIUM, NaaId,
    ProvisioningType, page,
};
use tcmu_guest_sdk::sense::Sense;
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
/// The VPD pages served, in the ascending order page 0x00 lists them.
const VPD_PAGES: [u8; 6] = [
    page::SUPPORTED_PAGES,
    page::UNIT_SERIAL_NUMBER,
    page::DEVICE_IDENTIFICATION,
    page::BLOCK_LIMITS,
    page::BLOCK_DEVICE_CHARACTERISTICS,
    page::LOGICAL_BLOCK_PROVISIONING,
];

impl FileDisk {
    /// INQUIRY: standard data, or one of [`VPD_PAGES`].
    pub(crate) fn inquiry(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let inquiry = Inquiry::parse(cmd.cdb)?;
        let data = if inquiry.evpd { self.vpd_page(inquiry.page_code)? } else { self.standard_inquiry() };
        Ok(respond(xfer, cmd, &data, inquiry.allocation_length.into()))
    }

    fn standard_inquiry(&self) -> Vec<u8> {
        let mut inquiry = StandardInquiry::new(DISK, &self.config.vendor, &self.config.product, REVISION);
        inquiry.version_descriptors =
            &[version_descriptor::SAM_5, version_descriptor::SPC_4, version_descriptor::SBC_3];
        inquiry.to_bytes()
    }

    /// The configured serial, else the one the host assigned.
    fn serial(&self) -> &str {
        self.config.serial.as_deref().unwrap_or(&self.identity.serial)
    }

    /// The configured WWN; else one derived from a configured serial (so
    /// `serial=` alone still fixes the whole identity); else the host's.
    fn naa(&self) -> NaaId {
        if let Some(wwn) = &self.config.wwn {
            return wwn.clone();
        }
        match &self.config.serial {
            Some(serial) => NaaId::from_serial(serial),
            None => self.identity.naa_id().unwrap_or_else(|| NaaId::from_serial(&self.identity.serial)),
        }
    }

    fn vpd_page(&self, code: u8) -> Result<Vec<u8>, Sense> {
        Ok(match code {
            page::SUPPORTED_PAGES => vpd::supported_pages(DISK, &VPD_PAGES),
            page::UNIT_SERIAL_NUMBER => vpd::unit_serial_number(DISK, self.serial()),
            page::DEVICE_IDENTIFICATION => {
                let naa = self.naa();
                let designators = [
                    Designator::Naa(&naa),
                    Designator::T10VendorId { vendor: &self.config.vendor, identifier: self.serial() },
                ];
                vpd::device_identification(DISK, &designators)
            }
            page::BLOCK_LIMITS => {
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
            // No seek penalty a rotation rate would warn about: the store
            // sits behind the host's page cache.
            page::BLOCK_DEVICE_CHARACTERISTICS => {
                BlockDeviceCharacteristics { medium_rotation_rate: NON_ROTATING_MEDIUM, nominal_form_factor: 0 }
                    .to_page(DISK)
            }
            page::LOGICAL_BLOCK_PROVISIONING => LogicalBlockProvisioning {
                unmap: true,
                write_same_16_unmap: true,
                write_same_10_unmap: true,
                unmapped_reads_zero: true,
                anchor_supported: false,
                provisioning_type: ProvisioningType::Thin,
            }
            .to_page(DISK),
            _ => return Err(Sense::invalid_cdb_field(2, None)),
        })
    }
}
