//! Moving cartridges (SMC-3: EXCHANGE MEDIUM, MOVE MEDIUM, POSITION
//! TO ELEMENT, INITIALIZE ELEMENT STATUS [WITH RANGE], PREVENT ALLOW
//! MEDIUM REMOVAL) and what READ ELEMENT STATUS says
//! afterwards: the cartridge at its destination with SVALID and the slot
//! it came from, its source empty; errors that move nothing.

use super::elements::INVALID_ELEMENT_ADDRESS;
use super::identity::{DEVICE_CAPABILITIES, to};
use super::robot::{Robot, exchange_medium, move_medium, position_to_element, prevent_allow};
use super::status::{Report, flag};
use crate::common::{self, Lun, Runner};
use crate::expect::ensure;
use crate::sense::SenseCode;

/// ILLEGAL REQUEST, MEDIUM DESTINATION ELEMENT FULL (05/3B/0D).
const DESTINATION_FULL: SenseCode = SenseCode::new(0x05, 0x3B, 0x0D);
/// ILLEGAL REQUEST, MEDIUM SOURCE ELEMENT EMPTY (05/3B/0E).
const SOURCE_EMPTY: SenseCode = SenseCode::new(0x05, 0x3B, 0x0E);
/// ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED (05/53/02).
const REMOVAL_PREVENTED: SenseCode = SenseCode::new(0x05, 0x53, 0x02);

pub(super) fn run(suite: &mut Runner<Robot<'_>>) {
    suite.check("move-medium.slot-to-slot", |robot| {
        let (home, barcode) = robot.cartridge(0);
        let empty = robot.empty_slots()[0];
        robot.move_medium(home, empty)?;
        let report = robot.status(false)?;
        expect_empty(&report, home)?;
        expect_full(&report, empty, &barcode, Some(home))?;
        robot.move_medium(empty, home)?;
        let report = robot.status(false)?;
        expect_full(&report, home, &barcode, None)?;
        robot.expect_initial(&report)
    });
    suite.check("move-medium.slot-to-drive-and-back", |robot| {
        let (home, barcode) = robot.cartridge(1);
        let drive = robot.layout.drives.first;
        robot.move_medium(home, drive)?;
        let report = robot.status(false)?;
        expect_empty(&report, home)?;
        expect_full(&report, drive, &barcode, Some(home))?;
        robot.move_medium(drive, home)?;
        let report = robot.status(false)?;
        expect_empty(&report, drive)?;
        robot.expect_initial(&report)
    });
    suite.check("move-medium.drive-to-another-slot", |robot| {
        // The source stays the slot the cartridge was stored in: a drive
        // is no storage element (mtx maps drives back to slots by it).
        let (home, barcode) = robot.cartridge(0);
        let drive = robot.layout.drives.first;
        let empty = robot.empty_slots()[0];
        robot.move_medium(home, drive)?;
        robot.move_medium(drive, empty)?;
        let report = robot.status(false)?;
        expect_empty(&report, drive)?;
        expect_empty(&report, home)?;
        expect_full(&report, empty, &barcode, Some(home))
    });
    let two_drives = if suite.dev.layout.drives.count >= 2 { Ok(()) } else { Err("the library has one drive".into()) };
    suite.check_if("move-medium.drive-to-drive", two_drives, |robot, ()| {
        let (home, barcode) = robot.cartridge(0);
        let drives = robot.layout.drives;
        robot.move_medium(home, drives.at(0))?;
        robot.move_medium(drives.at(0), drives.at(1))?;
        let report = robot.status(false)?;
        expect_empty(&report, drives.at(0))?;
        expect_full(&report, drives.at(1), &barcode, Some(home))
    });
    suite.check("move-medium.to-and-from-mail-slot", |robot| {
        let (home, barcode) = robot.cartridge(0);
        let mail = robot.layout.mail.first;
        robot.move_medium(home, mail)?;
        let report = robot.status(false)?;
        expect_full(&report, mail, &barcode, Some(home))?;
        let flags = report.element(mail)?.flags();
        ensure!(flags & flag::IMPEXP == 0, "mail slot {mail:04X}h: IMPEXP set, but the picker put {barcode} there");
        robot.move_medium(mail, home)?;
        let report = robot.status(false)?;
        expect_empty(&report, mail)?;
        robot.expect_initial(&report)
    });
    suite.check("move-medium.prevent-locks-mail-slots", |robot| {
        let (home, barcode) = robot.cartridge(0);
        let mail = robot.layout.mail.first;
        let empty = robot.empty_slots()[0];
        robot.execute_good(&prevent_allow(true), &[], 0)?;
        robot
            .execute_expecting(&move_medium(0, home, mail), &[], 0, REMOVAL_PREVENTED)
            .map_err(|e| format!("into a mail slot while removal is prevented: {e}"))?;
        robot.expect_unmoved()?;
        // Only removal is prevented: moves inside the library go on.
        robot.move_medium(home, empty)?;
        robot.move_medium(empty, home)?;
        robot.execute_good(&prevent_allow(false), &[], 0)?;
        robot.move_medium(home, mail)?;
        expect_full(&robot.status(false)?, mail, &barcode, Some(home))
    });
    suite.check("move-medium.source-empty", |robot| {
        let empty = robot.empty_slots();
        robot.execute_expecting(&move_medium(0, empty[0], empty[1]), &[], 0, SOURCE_EMPTY)?;
        let drive = robot.layout.drives.first;
        robot.execute_expecting(&move_medium(0, drive, empty[0]), &[], 0, SOURCE_EMPTY)?;
        robot.expect_unmoved()
    });
    suite.check("move-medium.destination-full", |robot| {
        let ((first, _), (second, _)) = (robot.cartridge(0), robot.cartridge(1));
        robot.execute_expecting(&move_medium(0, first, second), &[], 0, DESTINATION_FULL)?;
        let drive = robot.layout.drives.first;
        robot.move_medium(first, drive)?;
        robot.execute_expecting(&move_medium(0, second, drive), &[], 0, DESTINATION_FULL)?;
        let report = robot.status(false)?;
        expect_full(&report, second, &robot.cartridge(1).1, None)
    });
    suite.check("move-medium.invalid-address", |robot| {
        let (home, _) = robot.cartridge(0);
        let empty = robot.empty_slots()[0];
        let nowhere = robot.layout.unused_address();
        ensure!(robot.layout.type_of(nowhere).is_none(), "the library leaves no address unused");
        robot
            .execute_expecting(&move_medium(0, nowhere, empty), &[], 0, INVALID_ELEMENT_ADDRESS)
            .map_err(|e| format!("source {nowhere:04X}h: {e}"))?;
        robot
            .execute_expecting(&move_medium(0, home, nowhere), &[], 0, INVALID_ELEMENT_ADDRESS)
            .map_err(|e| format!("destination {nowhere:04X}h: {e}"))?;
        robot
            .execute_expecting(&move_medium(empty, home, empty), &[], 0, INVALID_ELEMENT_ADDRESS)
            .map_err(|e| format!("storage element {empty:04X}h as the medium transport address: {e}"))?;
        robot.expect_unmoved()
    });
    let exchanges = exchanges_between_slots(suite);
    suite.check_if("exchange-medium.swap", exchanges.clone(), |robot, ()| {
        let ((a, a_barcode), (b, b_barcode)) = (robot.cartridge(0), robot.cartridge(1));
        robot.execute_good(&exchange_medium(a, b, a), &[], 0)?;
        let report = robot.status(false)?;
        expect_full(&report, a, &b_barcode, None)?;
        expect_full(&report, b, &a_barcode, Some(a))?;
        robot.execute_good(&exchange_medium(a, b, a), &[], 0)?;
        robot.expect_unmoved()
    });
    suite.check_if("exchange-medium.three-elements", exchanges.clone(), |robot, ()| {
        let ((a, a_barcode), (b, b_barcode)) = (robot.cartridge(0), robot.cartridge(1));
        let empty = robot.empty_slots()[0];
        robot.execute_good(&exchange_medium(a, b, empty), &[], 0)?;
        let report = robot.status(false)?;
        expect_empty(&report, a)?;
        expect_full(&report, b, &a_barcode, Some(a))?;
        expect_full(&report, empty, &b_barcode, None)
    });
    suite.check_if("exchange-medium.errors", exchanges, |robot, ()| {
        let ((a, _), (b, _)) = (robot.cartridge(0), robot.cartridge(1));
        let empty = robot.empty_slots();
        robot
            .execute_expecting(&exchange_medium(empty[0], a, empty[1]), &[], 0, SOURCE_EMPTY)
            .map_err(|e| format!("an empty source: {e}"))?;
        robot
            .execute_expecting(&exchange_medium(a, empty[0], empty[1]), &[], 0, SOURCE_EMPTY)
            .map_err(|e| format!("an empty first destination: {e}"))?;
        robot
            .execute_expecting(&exchange_medium(a, b, robot.cartridge(2).0), &[], 0, DESTINATION_FULL)
            .map_err(|e| format!("a full second destination: {e}"))?;
        robot.expect_unmoved()
    });
    suite.check("position-to-element", |robot| {
        let targets = [robot.layout.storage.first, robot.layout.drives.first, robot.layout.mail.first];
        for target in targets {
            robot.execute_good(&position_to_element(target), &[], 0)?;
        }
        let nowhere = robot.layout.unused_address();
        robot.execute_expecting(&position_to_element(nowhere), &[], 0, INVALID_ELEMENT_ADDRESS)?;
        robot.expect_unmoved()
    });
    suite.check("initialize-element-status", |robot| {
        robot.execute_good(&[0x07, 0, 0, 0, 0, 0], &[], 0)?;
        robot.expect_unmoved()
    });
    suite.check("initialize-element-status-with-range", |robot| {
        let storage = robot.layout.storage;
        let range = |first: u16, count: u16| {
            let [f1, f0] = first.to_be_bytes();
            let [c1, c0] = count.to_be_bytes();
            vec![0x37, 0x01, f1, f0, 0, 0, c1, c0, 0, 0]
        };
        robot.execute_good(&range(storage.first, storage.count), &[], 0)?;
        robot.execute_good(&[0x37, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0)?;
        let past = robot.layout.unused_address();
        if robot.layout.by_type().iter().all(|(_, r)| r.end() <= u32::from(past)) {
            robot
                .execute_expecting(&range(past, 1), &[], 0, INVALID_ELEMENT_ADDRESS)
                .map_err(|e| format!("a range from {past:04X}h, past every element: {e}"))?;
        }
        robot.expect_unmoved()
    });
}

/// Whether page 1Fh offers EXCHANGE MEDIUM from a slot to a slot (else
/// its checks are skipped).
fn exchanges_between_slots(suite: &mut Runner<Robot<'_>>) -> Result<(), String> {
    let data = suite
        .dev
        .execute_good(&common::mode_sense6(0x08, DEVICE_CAPABILITIES, 0xFF), &[], 0xFF)
        .map_err(|e| format!("MODE SENSE page 1Fh: {e}"))?;
    let pages = common::mode_pages(&data, false)?;
    let page = pages.iter().find(|(code, _)| *code == DEVICE_CAPABILITIES).ok_or("no page 1Fh")?;
    // Byte 13: exchanges with a storage element as the source.
    match page.1.get(13) {
        Some(b) if b & to::STORAGE != 0 => Ok(()),
        _ => Err("page 1Fh offers no exchange between storage elements".into()),
    }
}

/// The element holds `barcode`, and (if `source` is given) reports SVALID
/// with that source.
fn expect_full(report: &Report, address: u16, barcode: &str, source: Option<u16>) -> Result<(), String> {
    let d = report.element(address)?;
    ensure!(d.full(), "element {address:04X}h is empty, expected {barcode}");
    let got = d.barcode();
    ensure!(got.as_deref() == Some(barcode), "element {address:04X}h holds {got:?}, expected {barcode}");
    if let Some(source) = source {
        ensure!(
            d.source() == Some(source),
            "element {address:04X}h: source {:?}, expected SVALID and {source:04X}h",
            d.source().map(|s| format!("{s:04X}h"))
        );
    }
    Ok(())
}

/// The element holds nothing.
fn expect_empty(report: &Report, address: u16) -> Result<(), String> {
    let d = report.element(address)?;
    ensure!(!d.full(), "element {address:04X}h is full ({:?}), expected empty", d.barcode());
    ensure!(d.barcode().is_none(), "empty element {address:04X}h reports volume tag {:?}", d.barcode());
    Ok(())
}
