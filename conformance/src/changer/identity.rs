//! What the changer says it is and how its library is laid out: TEST UNIT
//! READY, REQUEST SENSE, standard INQUIRY and VPD pages (SPC-4 6.6, 7.8),
//! MODE SENSE of the element address assignment (1Dh), transport geometry
//! (1Eh) and device capabilities (1Fh) pages (SMC-3), short
//! allocation lengths, an unknown operation code.

use super::robot::{ELEMENT_ADDRESS_ASSIGNMENT, Layout, MTX_ASSIGNMENT_ALLOC, Robot};
use crate::common::{self, Lun, Runner};
use crate::expect::ensure;
use crate::sense;

/// Peripheral device type of a medium changer.
const CHANGER: u8 = 0x08;
const TRANSPORT_GEOMETRY: u8 = 0x1E;
pub(super) const DEVICE_CAPABILITIES: u8 = 0x1F;

/// Element type bits of page 1Fh (STORxx, and the move and exchange bytes).
pub(super) mod to {
    pub(crate) const TRANSPORT: u8 = 0x01;
    pub(crate) const STORAGE: u8 = 0x02;
    pub(crate) const IMPORT_EXPORT: u8 = 0x04;
    pub(crate) const DATA_TRANSFER: u8 = 0x08;
}

pub(super) fn run(suite: &mut Runner<Robot<'_>>) {
    suite.check("test-unit-ready", |robot| robot.execute_good(&[0; 6], &[], 0).map(drop));
    suite.check("request-sense.ready", common::check_request_sense);
    suite.check("inquiry.standard", |robot| common::check_standard_inquiry(robot, CHANGER).map(drop));
    suite.check("inquiry.vpd-00-supported-pages", |robot| common::check_supported_pages(robot, CHANGER, &[]).map(drop));
    suite.check("inquiry.vpd-80-unit-serial-number", |robot| common::check_serial_number(robot, CHANGER).map(drop));
    suite.check("inquiry.vpd-83-device-identification", |robot| common::check_device_identification(robot, CHANGER));
    suite.check("inquiry.invalid-requests", |robot| common::check_vpd_errors(robot, CHANGER));
    suite.check("mode-sense.element-address-assignment", check_assignment);
    suite.check("mode-sense.transport-geometry", |robot| {
        let page = mode_page(robot, TRANSPORT_GEOMETRY)?;
        let descriptors = usize::from(page[1]) / 2;
        ensure!(page[1] % 2 == 0 && descriptors >= 1, "page 1Eh PAGE LENGTH {}: not whole 2-byte descriptors", page[1]);
        let pickers = usize::from(robot.layout.transport.count);
        ensure!(
            descriptors == pickers,
            "page 1Eh has {descriptors} transport geometry descriptors, page 1Dh {pickers} medium transport elements"
        );
        Ok(())
    });
    suite.check("mode-sense.device-capabilities", check_capabilities);
    suite.check("mode-sense.all-pages", |robot| {
        let data = robot.execute_good(&common::mode_sense6(0x08, 0x3F, 0xFF), &[], 0xFF)?;
        let codes: Vec<u8> = common::mode_pages(&data, false)?.into_iter().map(|(code, _)| code).collect();
        for page in [ELEMENT_ADDRESS_ASSIGNMENT, TRANSPORT_GEOMETRY, DEVICE_CAPABILITIES] {
            ensure!(codes.contains(&page), "MODE SENSE of all pages lacks page {page:02X}h: {codes:02X?}");
        }
        let ten = robot.execute_good(&common::mode_sense10(0x08, 0x3F, 4096), &[], 4096)?;
        let ten: Vec<u8> = common::mode_pages(&ten, true)?.into_iter().map(|(code, _)| code).collect();
        ensure!(ten == codes, "MODE SENSE(10) lists pages {ten:02X?}, MODE SENSE(6) {codes:02X?}");
        Ok(())
    });
    suite.check("mode-sense.unsupported-page", |robot| {
        let data = robot.execute_good(&common::mode_sense6(0x08, 0x3F, 0xFF), &[], 0xFF)?;
        let codes: Vec<u8> = common::mode_pages(&data, false)?.into_iter().map(|(code, _)| code).collect();
        let page = [0x3E, 0x2F, 0x05].into_iter().find(|c| !codes.contains(c)).ok_or("every candidate page exists")?;
        robot
            .execute_expecting(&common::mode_sense6(0x08, page, 0xFF), &[], 0xFF, sense::INVALID_FIELD_IN_CDB)
            .map_err(|e| format!("page {page:02X}h: {e}"))?;
        Ok(())
    });
    for truncation in common::spc_truncations(true) {
        let name = format!("allocation.{}", truncation.what.to_lowercase().replace([' ', '(', ')'], "-"));
        let name = name.trim_end_matches('-').to_owned();
        suite.check(&name, |robot| truncation.check(robot));
    }
    suite.check("invalid.unknown-opcode", |robot| {
        // READ(10): a direct-access command SMC does not define.
        let cdb = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        robot.execute_expecting(&cdb, &[], 512, sense::INVALID_COMMAND_OPERATION_CODE).map(drop)
    });
}

/// One page of MODE SENSE(6) with DBD.
fn mode_page(robot: &mut Robot<'_>, code: u8) -> Result<Vec<u8>, String> {
    let data = robot.execute_good(&common::mode_sense6(0x08, code, 0xFF), &[], 0xFF)?;
    let pages = common::mode_pages(&data, false)?;
    ensure!(
        pages.len() == 1,
        "MODE SENSE of page {code:02X}h returned pages {:02X?}",
        pages.iter().map(|p| p.0).collect::<Vec<_>>()
    );
    let (got, page) = pages.into_iter().next().expect("one page");
    ensure!(got == code, "MODE SENSE of page {code:02X}h returned page {got:02X}h");
    Ok(page)
}

/// Page 1Dh as mtx reads it, with the configured counts and ranges that do
/// not overlap; MODE SENSE(10) and MODE SENSE(6) without DBD (as the ch
/// driver asks first) say the same.
fn check_assignment(robot: &mut Robot<'_>) -> Result<(), String> {
    robot.learn_layout()?;
    let six = robot.assignment_page()?;
    let ten = robot.execute_good(&common::mode_sense10(0x08, ELEMENT_ADDRESS_ASSIGNMENT, 255), &[], 255)?;
    let ten = common::mode_pages(&ten, true)?;
    ensure!(ten.len() == 1 && ten[0].1 == six, "MODE SENSE(10) page 1Dh differs from MODE SENSE(6)'s");
    let without_dbd =
        robot.execute_good(&common::mode_sense6(0, ELEMENT_ADDRESS_ASSIGNMENT, MTX_ASSIGNMENT_ALLOC), &[], 136)?;
    let without_dbd = common::mode_pages(&without_dbd, false)?;
    ensure!(
        without_dbd.iter().any(|(code, page)| *code == ELEMENT_ADDRESS_ASSIGNMENT && *page == six),
        "MODE SENSE(6) without DBD: page 1Dh differs"
    );
    ensure!(Layout::parse(&six)? == robot.layout, "page 1Dh changed between two reads");
    Ok(())
}

/// Page 1Fh: slots, mail slots and drives store cartridges, and the moves
/// the suite makes (slot to slot, to and from drives and mail slots) are
/// offered.
fn check_capabilities(robot: &mut Robot<'_>) -> Result<(), String> {
    let page = mode_page(robot, DEVICE_CAPABILITIES)?;
    ensure!(page.len() >= 20 && page[1] == 0x12, "page 1Fh PAGE LENGTH {}, expected 12h", page[1]);
    let stores = page[2];
    ensure!(stores & to::STORAGE != 0, "page 1Fh: STORST clear, storage elements do not store media");
    ensure!(stores & to::IMPORT_EXPORT != 0, "page 1Fh: STORI/E clear with {} mail slots", robot.layout.mail.count);
    ensure!(stores & to::DATA_TRANSFER != 0, "page 1Fh: STORDT clear with {} drives", robot.layout.drives.count);
    // Bytes 4-7: moves from MT, ST, I/E, DT to the types set.
    let (from_storage, from_mail, from_drive) = (page[5], page[6], page[7]);
    for (what, byte, bit) in [
        ("storage to storage", from_storage, to::STORAGE),
        ("storage to data transfer", from_storage, to::DATA_TRANSFER),
        ("storage to import/export", from_storage, to::IMPORT_EXPORT),
        ("import/export to storage", from_mail, to::STORAGE),
        ("data transfer to storage", from_drive, to::STORAGE),
    ] {
        ensure!(byte & bit != 0, "page 1Fh does not offer moves from {what}");
    }
    if stores & to::TRANSPORT == 0 {
        // A picker that stores nothing is neither source nor destination.
        ensure!(page[4] == 0, "page 1Fh: STORMT clear, yet moves from the medium transport element: 0x{:02X}", page[4]);
        let into_picker = (page[5] | page[6] | page[7]) & to::TRANSPORT != 0;
        ensure!(!into_picker, "page 1Fh: STORMT clear, yet moves into the medium transport element");
    }
    Ok(())
}
