//! What the drive says it is: standard INQUIRY (peripheral device type
//! 05h, removable medium) and VPD pages 00h, 80h and 83h (SPC-4 6.6, 7.8),
//! which answer with or without a disc; REQUEST SENSE of the ready drive;
//! the short allocation lengths of SPC-4 4.2.5.6 for the SPC commands and
//! for the MMC replies that start with their own length; an unknown
//! operation code.

use super::drive::{
    CONFIGURATION_ALLOC, DVD_STRUCTURE_ALLOC, Drive, MEDIA_CLASS, gesn, get_configuration, mechanism_status,
    read_disc_information, read_dvd_structure, read_toc, read_track_information,
};
use crate::common::{self, Lun, Runner, Truncation};
use crate::expect::{be, ensure};
use crate::sense;

/// Peripheral device type of a CD/DVD device.
pub(super) const OPTICAL: u8 = 0x05;
/// Removable medium bit of standard INQUIRY byte 1.
const RMB: u8 = 0x80;

/// The checks that need no disc: they run on the empty drive.
pub(super) fn run_empty(suite: &mut Runner<Drive<'_>>) {
    suite.check_as_is("inquiry.standard", |drive| {
        let data = common::check_standard_inquiry(drive, OPTICAL)?;
        ensure!(data[1] & RMB != 0, "RMB clear: an optical drive's disc is removable");
        Ok(())
    });
    suite.check_as_is("inquiry.vpd-00-supported-pages", |drive| {
        common::check_supported_pages(drive, OPTICAL, &[]).map(drop)
    });
    suite.check_as_is("inquiry.vpd-80-unit-serial-number", |drive| {
        common::check_serial_number(drive, OPTICAL).map(drop)
    });
    suite.check_as_is("inquiry.vpd-83-device-identification", |drive| {
        common::check_device_identification(drive, OPTICAL)
    });
    suite.check_as_is("inquiry.invalid-requests", |drive| common::check_vpd_errors(drive, OPTICAL));
}

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("request-sense.ready", common::check_request_sense);
    for truncation in truncations() {
        let name = format!("allocation.{}", truncation.what.to_lowercase().replace([' ', '(', ')'], "-"));
        let name = name.trim_end_matches('-').to_owned();
        suite.check(&name, |drive| truncation.check(drive));
    }
    suite.check("invalid.unknown-opcode", |drive| {
        // WRITE SAME(16): a direct-access command MMC does not define.
        let mut cdb = vec![0u8; 16];
        cdb[0] = 0x93;
        drive.execute_expecting(&cdb, &[], 0, sense::INVALID_COMMAND_OPERATION_CODE).map(drop)
    });
}

/// The SPC truncations and those of the MMC replies with a length header
/// (each of which the sr driver, cdrom_id or libburn first fetches short
/// to learn the length): GET CONFIGURATION, GESN, READ TOC, READ DISC
/// INFORMATION, READ TRACK INFORMATION, READ DVD STRUCTURE and MECHANISM
/// STATUS.
fn truncations() -> Vec<Truncation> {
    let mut all = common::spc_truncations(true);
    all.extend([
        Truncation {
            what: "GET CONFIGURATION",
            cdb_for: Box::new(|alloc| get_configuration(0, 0, alloc as u16)),
            full: CONFIGURATION_ALLOC.into(),
            short: 8,
            declared_len: |data| Ok(4 + be(data, 0..4)?),
        },
        Truncation {
            // The settled drive has no media event pending: both replies
            // say "no change".
            what: "GET EVENT STATUS NOTIFICATION",
            cdb_for: Box::new(|alloc| gesn(1 << MEDIA_CLASS, alloc as u16)),
            full: 8,
            short: 4,
            declared_len: |data| Ok(2 + be(data, 0..2)?),
        },
        Truncation {
            what: "READ TOC",
            cdb_for: Box::new(|alloc| read_toc(false, 0, 0, alloc as u16)),
            full: 0x300,
            short: 6,
            declared_len: |data| Ok(2 + be(data, 0..2)?),
        },
        Truncation {
            what: "READ DISC INFORMATION",
            cdb_for: Box::new(|alloc| read_disc_information(0, alloc as u16)),
            full: 0xFF,
            short: 8,
            declared_len: |data| Ok(2 + be(data, 0..2)?),
        },
        Truncation {
            what: "READ TRACK INFORMATION",
            cdb_for: Box::new(|alloc| read_track_information(0b01, 1, alloc as u16)),
            full: 0xFF,
            short: 12,
            declared_len: |data| Ok(2 + be(data, 0..2)?),
        },
        Truncation {
            what: "READ DVD STRUCTURE",
            cdb_for: Box::new(|alloc| read_dvd_structure(0x00, alloc as u16)),
            full: DVD_STRUCTURE_ALLOC.into(),
            short: 8,
            declared_len: |data| Ok(2 + be(data, 0..2)?),
        },
        Truncation {
            what: "MECHANISM STATUS",
            cdb_for: Box::new(|alloc| mechanism_status(alloc as u16)),
            full: 0xFF,
            short: 4,
            declared_len: |data| Ok(8 + be(data, 6..8)?),
        },
    ]);
    all
}
