//! READ ELEMENT STATUS (SMC-3) as mtx, the ch driver and backup
//! software read it: every type at once and each alone, with and without
//! volume tags, DVCID, one element at a time, from a starting address in
//! the middle or past the end, and cut short by the allocation length.

use super::robot::{REPORT_ALLOC, Robot};
use super::status::{Report, VOLTAG_LEN, flag, kind, read_element_status};
use crate::common::{Lun, Runner, printable};
use crate::expect::{self, be, ensure};
use crate::sense::{self, SenseCode};

/// ILLEGAL REQUEST, INVALID ELEMENT ADDRESS (05/21/01).
pub(super) const INVALID_ELEMENT_ADDRESS: SenseCode = SenseCode::new(0x05, 0x21, 0x01);
/// DVCID code set ASCII.
const CODE_SET_ASCII: u8 = 2;

pub(super) fn run(suite: &mut Runner<Robot<'_>>) {
    suite.check("read-element-status.all-types", check_all_types);
    suite.check("read-element-status.each-type", check_each_type);
    suite.check("read-element-status.dvcid", check_dvcid);
    suite.check("read-element-status.one-element-each", |robot| {
        // The ch driver: one element, VOLTAG, 255 bytes, the address echoed
        // at bytes 16-17 (the first descriptor) or it fails the probe.
        let full = robot.status(false)?;
        for d in full.descriptors() {
            let cdb = read_element_status(d.element_type, true, d.address(), 1, false, 255);
            let data = robot.execute_good(&cdb, &[], 255)?;
            let report = Report::parse(&data).map_err(|e| format!("element {:04X}h alone: {e}", d.address()))?;
            ensure!(report.count == 1, "element {:04X}h alone: {} elements reported", d.address(), report.count);
            ensure!(
                be(&data, 16..18)? == u64::from(d.address()),
                "element {:04X}h alone: bytes 16-17 are {:04X}h",
                d.address(),
                be(&data, 16..18)?
            );
            ensure!(
                report.pages[0].element_type == d.element_type,
                "element {:04X}h alone came back as type {}",
                d.address(),
                report.pages[0].element_type
            );
            expect::same_bytes(
                &format!("element {:04X}h alone", d.address()),
                &report.pages[0].descriptors[0].bytes,
                &d.bytes,
            )?;
        }
        Ok(())
    });
    suite.check("read-element-status.from-the-middle", |robot| {
        let storage = robot.layout.storage;
        let cdb = read_element_status(kind::STORAGE, false, storage.at(1), 2, false, 4096);
        let report = Report::parse(&robot.execute_good(&cdb, &[], 4096)?)?;
        let addresses: Vec<u16> = report.descriptors().map(|d| d.address()).collect();
        let want = [storage.at(1), storage.at(2)];
        ensure!(addresses == want, "slots from {:04X}h, two of them: got {addresses:04X?}", storage.at(1));
        // All types from just past the lowest-addressed type's last element.
        let mut ranges: Vec<_> = robot.layout.by_type().into_iter().filter(|(_, r)| r.count > 0).collect();
        ranges.sort_by_key(|(_, r)| r.first);
        let (first_type, first) = ranges[0];
        let next = ranges.get(1).map(|(_, r)| r.first).ok_or("only one element type")?;
        let start = u16::try_from(first.end()).map_err(|_| "addresses run to FFFFh")?;
        let cdb = read_element_status(kind::ALL, false, start, 1, false, 4096);
        let report = Report::parse(&robot.execute_good(&cdb, &[], 4096)?)?;
        ensure!(
            report.first == next,
            "all types from {start:04X}h (past the {} elements): first reported {:04X}h, expected {next:04X}h",
            kind::name(first_type),
            report.first
        );
        Ok(())
    });
    suite.check("read-element-status.start-past-the-end", |robot| {
        let layout = robot.layout;
        for (element_type, range) in layout.by_type() {
            let Ok(start) = u16::try_from(range.end()) else { continue };
            if range.count == 0 {
                continue;
            }
            let cdb = read_element_status(element_type, true, start, 1, false, 255);
            robot
                .execute_expecting(&cdb, &[], 255, INVALID_ELEMENT_ADDRESS)
                .map_err(|e| format!("{} elements from {start:04X}h: {e}", kind::name(element_type)))?;
        }
        let start = layout.unused_address();
        if layout.by_type().iter().all(|(_, r)| r.end() <= u32::from(start)) {
            let cdb = read_element_status(kind::ALL, true, start, 1, false, 255);
            robot
                .execute_expecting(&cdb, &[], 255, INVALID_ELEMENT_ADDRESS)
                .map_err(|e| format!("all types from {start:04X}h, past every element: {e}"))?;
        }
        Ok(())
    });
    suite.check("read-element-status.reserved-type", |robot| {
        let cdb = read_element_status(5, true, 0, 1, false, 255);
        robot.execute_expecting(&cdb, &[], 255, sense::INVALID_FIELD_IN_CDB).map(drop)
    });
    suite.check("read-element-status.short-allocation", |robot| {
        let cdb = |alloc| read_element_status(kind::ALL, true, 0, 0xFFFF, false, alloc);
        let full = robot.execute_good(&cdb(REPORT_ALLOC), &[], REPORT_ALLOC)?;
        Report::parse(&full)?;
        for alloc in [8u32, 16, 17, 60] {
            ensure!(full.len() > alloc as usize, "the whole report is only {} bytes", full.len());
            let response = robot.execute(&cdb(alloc), &[], REPORT_ALLOC)?;
            expect::good(&response).map_err(|e| format!("allocation length {alloc}: {e}"))?;
            // mtx asks again with room for BYTE COUNT OF REPORT AVAILABLE + 8.
            expect::same_bytes(&format!("allocation length {alloc}"), &response.data_in, &full[..alloc as usize])?;
        }
        Ok(())
    });
}

/// Every type at once with volume tags: one page per type, every element
/// page 1Dh names and no other, the configured cartridges where they are
/// with their barcodes blank-padded, nothing else full, no exceptions.
fn check_all_types(robot: &mut Robot<'_>) -> Result<(), String> {
    let report = robot.status(false)?;
    let layout = robot.layout;
    ensure!(
        usize::from(report.count) == layout.total(),
        "{} elements reported, page 1Dh counts {}",
        report.count,
        layout.total()
    );
    let lowest = layout.by_type().iter().filter(|(_, r)| r.count > 0).map(|(_, r)| r.first).min().unwrap_or(0);
    ensure!(
        report.first == lowest,
        "FIRST ELEMENT ADDRESS REPORTED {:04X}h, the lowest is {lowest:04X}h",
        report.first
    );
    let mut types: Vec<u8> = report.pages.iter().map(|p| p.element_type).collect();
    types.sort_unstable();
    let before = types.len();
    types.dedup();
    ensure!(types.len() == before, "more than one page of the same element type");
    for page in &report.pages {
        ensure!(page.pvoltag, "{} page without PVOLTAG, VOLTAG was set", kind::name(page.element_type));
        let range = layout.of(page.element_type);
        let addresses: Vec<u16> = page.descriptors.iter().map(|d| d.address()).collect();
        let want: Vec<u16> = range.addresses().collect();
        ensure!(
            addresses == want,
            "{} page reports {addresses:04X?}, page 1Dh says {want:04X?}",
            kind::name(page.element_type)
        );
    }
    for d in report.descriptors() {
        ensure!(
            d.flags() & flag::EXCEPT == 0,
            "element {:04X}h reports an exception {:02X?}",
            d.address(),
            d.exception()
        );
        ensure!(
            d.exception() == (0, 0),
            "element {:04X}h: ASC/ASCQ {:02X?} without EXCEPT",
            d.address(),
            d.exception()
        );
        if d.element_type != kind::TRANSPORT {
            ensure!(
                d.flags() & flag::ACCESS != 0,
                "element {:04X}h: ACCESS clear, the picker cannot reach it",
                d.address()
            );
        }
        if let Some(tag) = d.volume_tag()
            && d.full()
        {
            printable(&format!("element {:04X}h volume identifier", d.address()), &tag[..32])?;
        }
    }
    robot.expect_initial(&report)?;
    for index in 0..robot.params.cartridges.len() {
        let (address, barcode) = robot.cartridge(index);
        let tag = report.element(address)?.volume_tag().ok_or("no volume tag")?;
        let mut want = barcode.clone().into_bytes();
        want.resize(32, b' ');
        expect::same_bytes(&format!("volume tag of {barcode} at {address:04X}h"), &tag[..32], &want)?;
    }
    for d in report.descriptors().filter(|d| d.element_type == kind::IMPORT_EXPORT) {
        ensure!(!d.full(), "mail slot {:04X}h is full at the start", d.address());
    }
    Ok(())
}

/// Each type alone, with and without volume tags: one page of that type,
/// every element of it, the same FULL bits as the all-types report.
fn check_each_type(robot: &mut Robot<'_>) -> Result<(), String> {
    let all = robot.status(false)?;
    for (element_type, range) in robot.layout.by_type() {
        if range.count == 0 {
            continue;
        }
        for voltag in [false, true] {
            let cdb = read_element_status(element_type, voltag, 0, 0xFFFF, false, REPORT_ALLOC);
            let report = Report::parse(&robot.execute_good(&cdb, &[], REPORT_ALLOC)?)
                .map_err(|e| format!("{} elements, VOLTAG {}: {e}", kind::name(element_type), u8::from(voltag)))?;
            let what = format!("{} elements, VOLTAG {}", kind::name(element_type), u8::from(voltag));
            ensure!(report.pages.len() == 1, "{what}: {} pages", report.pages.len());
            let page = &report.pages[0];
            ensure!(page.element_type == element_type, "{what}: a page of type {}", page.element_type);
            ensure!(page.pvoltag == voltag, "{what}: PVOLTAG {}", u8::from(page.pvoltag));
            ensure!(
                page.descriptor_len >= if voltag { 12 + VOLTAG_LEN } else { 12 },
                "{what}: descriptors of {}",
                page.descriptor_len
            );
            let addresses: Vec<u16> = page.descriptors.iter().map(|d| d.address()).collect();
            ensure!(addresses == range.addresses().collect::<Vec<_>>(), "{what}: addresses {addresses:04X?}");
            for d in &page.descriptors {
                let same = all.element(d.address())?;
                ensure!(
                    d.full() == same.full(),
                    "{what}: element {:04X}h FULL differs from the all-types report",
                    d.address()
                );
                ensure!(
                    d.bytes[..12] == same.bytes[..12],
                    "{what}: element {:04X}h differs from the all-types report",
                    d.address()
                );
            }
        }
    }
    Ok(())
}

/// DVCID: each drive identifies itself, an ASCII identifier that carries
/// its serial number; without DVCID no identifier.
fn check_dvcid(robot: &mut Robot<'_>) -> Result<(), String> {
    let drives = robot.layout.drives;
    for dvcid in [true, false] {
        let cdb = read_element_status(kind::DATA_TRANSFER, true, drives.first, drives.count, dvcid, REPORT_ALLOC);
        let report = Report::parse(&robot.execute_good(&cdb, &[], REPORT_ALLOC)?)?;
        for (index, d) in report.descriptors().enumerate() {
            let identifier = d.identifier()?;
            if !dvcid {
                ensure!(
                    identifier.is_none_or(|i| i.id.is_empty()),
                    "drive {:04X}h reports an identifier without DVCID",
                    d.address()
                );
                continue;
            }
            let super::status::Identifier { code_set, id } = identifier
                .ok_or_else(|| format!("drive {:04X}h: no room for an identifier with DVCID", d.address()))?;
            ensure!(!id.is_empty(), "drive {:04X}h: no identifier with DVCID", d.address());
            if code_set == CODE_SET_ASCII {
                printable(&format!("drive {:04X}h identifier", d.address()), id)?;
            }
            if let Some(serial) = robot.params.drive_serials.get(index) {
                let found = id.windows(serial.len()).any(|w| w == serial.as_bytes());
                ensure!(
                    found,
                    "drive {:04X}h identifier {:?} lacks its serial number {serial:?}",
                    d.address(),
                    id.escape_ascii().to_string()
                );
            }
        }
    }
    Ok(())
}
