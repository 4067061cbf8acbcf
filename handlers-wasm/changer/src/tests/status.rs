//! READ ELEMENT STATUS and the element address assignment page.

use tcmu_guest_sdk::sense::{INVALID_FIELD_IN_CDB, LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED};

use super::*;
use crate::INVALID_ELEMENT_ADDRESS;

/// A READ ELEMENT STATUS CDB.
fn res(element_type: u8, voltag: bool, start: u16, count: u16, dvcid: bool, allocation: u32) -> [u8; 12] {
    let [s1, s0] = start.to_be_bytes();
    let [c1, c0] = count.to_be_bytes();
    let [_, a2, a1, a0] = allocation.to_be_bytes();
    [0xb8, u8::from(voltag) << 4 | element_type, s1, s0, c1, c0, u8::from(dvcid), a2, a1, a0, 0, 0]
}

/// One element status page as read back.
#[derive(Debug)]
struct Page {
    element_type: u8,
    pvoltag: bool,
    descriptor_len: usize,
    descriptors: Vec<Vec<u8>>,
}

/// A whole report: (first address, elements, byte count, pages).
fn parse(data: &[u8]) -> (u16, u16, usize, Vec<Page>) {
    let (first, count, byte_count) = (be16(&data[0..]), be16(&data[2..]), be24(&data[5..]));
    assert_eq!(data.len(), 8 + byte_count, "the report is complete");
    let mut pages = Vec::new();
    let mut at = 8;
    while at < data.len() {
        let header = &data[at..at + 8];
        let descriptor_len = usize::from(be16(&header[2..]));
        let bytes = be24(&header[5..]);
        assert_eq!(bytes % descriptor_len, 0);
        let body = &data[at + 8..at + 8 + bytes];
        pages.push(Page {
            element_type: header[0],
            pvoltag: header[1] & 0x80 != 0,
            descriptor_len,
            descriptors: body.chunks(descriptor_len).map(<[u8]>::to_vec).collect(),
        });
        at += 8 + bytes;
    }
    let described: usize = pages.iter().map(|p| p.descriptors.len()).sum();
    assert_eq!(described, usize::from(count), "the header counts every descriptor");
    (first, count, byte_count, pages)
}

fn addresses(page: &Page) -> Vec<u16> {
    page.descriptors.iter().map(|d| be16(d)).collect()
}

fn volume_tag(descriptor: &[u8]) -> &[u8] {
    &descriptor[12..48]
}

#[test]
fn all_types_with_voltag_one_page_per_type_in_address_order() {
    let mut rig = Rig::new();
    let data = rig.ok(&res(0, true, 0, 0xffff, false, 0xffff), &[], 0xffff);
    let (first, count, byte_count, pages) = parse(&data);
    assert_eq!((first, count), (DRIVE, 2 + 1 + 2 + 6));
    assert_eq!(byte_count, 4 * 8 + 11 * 52);
    let types: Vec<u8> = pages.iter().map(|p| p.element_type).collect();
    assert_eq!(types, [4, 1, 3, 2], "drives 0001h, picker 02F0h, mail slots 0300h, slots 0400h");
    assert!(pages.iter().all(|p| p.pvoltag && p.descriptor_len == 12 + 36 + 4));
    assert_eq!(addresses(&pages[0]), [DRIVE, DRIVE + 1]);
    assert_eq!(addresses(&pages[1]), [PICKER]);
    assert_eq!(addresses(&pages[2]), [MAIL, MAIL + 1]);
    assert_eq!(addresses(&pages[3]), (SLOT..SLOT + 6).collect::<Vec<_>>());

    let slot = &pages[3].descriptors[0];
    assert_eq!(slot[2], 0x09, "FULL and ACCESS");
    assert_eq!(&volume_tag(slot)[..32], b"A00001                          ", "blank padded");
    assert_eq!(&volume_tag(slot)[32..], &[0; 4], "reserved and volume sequence number");
    let empty_slot = &pages[3].descriptors[5];
    assert_eq!(empty_slot[2], 0x08, "empty, ACCESS");
    assert_eq!(volume_tag(empty_slot), &[0; 36]);
    assert_eq!(pages[2].descriptors[0][2], 0x38, "mail slot: INENAB, EXENAB, ACCESS");
    assert_eq!(pages[1].descriptors[0][2], 0x00, "the picker holds nothing");
    assert_eq!(pages[0].descriptors[0][2], 0x08, "empty drive, ACCESS");
}

#[test]
fn each_type_alone_with_and_without_voltag() {
    let mut rig = Rig::new();
    let expected = [(1, vec![PICKER]), (2, (SLOT..SLOT + 6).collect()), (3, vec![MAIL, MAIL + 1]), (4, vec![1, 2])];
    for (element_type, want) in expected {
        for voltag in [false, true] {
            let data = rig.ok(&res(element_type, voltag, 0, 100, false, 4096), &[], 4096);
            let (first, count, _, pages) = parse(&data);
            assert_eq!((first, usize::from(count)), (want[0], want.len()), "type {element_type}");
            assert_eq!(pages.len(), 1);
            let page = &pages[0];
            assert_eq!((page.element_type, page.pvoltag), (element_type, voltag));
            assert_eq!(page.descriptor_len, if voltag { 52 } else { 16 });
            assert_eq!(addresses(page), want);
        }
    }
}

#[test]
fn dvcid_reports_drive_serials_and_nothing_else_changes() {
    let library = FakeLibrary::new(3, 1, 4, 0);
    library.with(DRIVE + 1, |e| e.drive_serial = Some("LONGER-SERIAL-7".into()));
    library.with(DRIVE + 2, |e| e.drive_serial = None);
    let mut rig = Rig::with_library(library);
    let data = rig.ok(&res(4, true, 0, 10, true, 4096), &[], 4096);
    let (_, _, _, pages) = parse(&data);
    let page = &pages[0];
    assert_eq!(page.descriptor_len, 12 + 36 + 4 + 15, "room for the longest serial");
    let id = |d: &[u8]| (d[48] & 0x0f, d[49] & 0x0f, d[51], d[52..].to_vec());
    let (code_set, id_type, len, bytes) = id(&page.descriptors[0]);
    assert_eq!((code_set, id_type, len), (2, 0, 8), "ASCII, vendor specific (the serial alone)");
    assert_eq!(&bytes[..8], b"DRV00001");
    assert!(bytes[8..].iter().all(|&b| b == 0), "zero after a shorter identifier");
    assert_eq!(id(&page.descriptors[1]).3, b"LONGER-SERIAL-7");
    assert_eq!(id(&page.descriptors[2]).2, 0, "a drive without a serial has none to give");

    // Without VOLTAG the identifier follows the first 12 bytes.
    let data = rig.ok(&res(4, false, 0, 1, true, 4096), &[], 4096);
    let (_, _, _, pages) = parse(&data);
    assert_eq!(&pages[0].descriptors[0][12..16], &[2, 0, 0, 8]);
    assert_eq!(&pages[0].descriptors[0][16..24], b"DRV00001");

    // Other element types have no identifier to report.
    let data = rig.ok(&res(0, false, 0, 100, true, 4096), &[], 4096);
    let (_, _, _, pages) = parse(&data);
    for page in pages.iter().filter(|p| p.element_type != 4) {
        assert_eq!(page.descriptor_len, 16);
    }
}

#[test]
fn the_byte_count_is_the_full_report_whatever_the_allocation_length() {
    let mut rig = Rig::new();
    let full = rig.ok(&res(0, true, 0, 0xffff, false, 0xffff), &[], 0xffff);
    for allocation in [8u32, 9, 16, 17, 60, 100] {
        let data = rig.ok(&res(0, true, 0, 0xffff, false, allocation), &[], 0xffff);
        assert_eq!(data.len(), allocation as usize);
        assert_eq!(data[..], full[..data.len()], "the start of the same report");
        assert_eq!(be24(&data[5..]), full.len() - 8, "allocation {allocation}");
    }
    // A smaller buffer than the allocation length cuts it too.
    let data = rig.ok(&res(0, true, 0, 0xffff, false, 0xffff), &[], 24);
    assert_eq!((data.len(), be24(&data[5..])), (24, full.len() - 8));
    assert!(rig.ok(&res(0, true, 0, 0xffff, false, 0), &[], 0xffff).is_empty());
}

#[test]
fn one_element_requests_echo_the_address_at_byte_16_for_every_element() {
    // The kernel's ch driver: VolTag, one element, allocation 255, per element.
    let mut rig = Rig::new();
    for element in rig.library.elements() {
        let cdb = res(element.kind.code(), true, element.address, 1, false, 255);
        let data = rig.ok(&cdb, &[], 256);
        assert_eq!(be16(&data[16..]), element.address);
        assert_eq!(be16(&data[0..]), element.address);
        assert_eq!(be16(&data[2..]), 1);
    }
}

#[test]
fn the_report_starts_at_the_first_element_at_or_after_the_starting_address() {
    let mut rig = Rig::new();
    let data = rig.ok(&res(2, false, 0x0402, 2, false, 4096), &[], 4096);
    assert_eq!(addresses(&parse(&data).3[0]), [0x0402, 0x0403]);
    // Between the picker and the mail slots, all types: from the mail slots on.
    let data = rig.ok(&res(0, false, PICKER + 1, 3, false, 4096), &[], 4096);
    let (first, _, _, pages) = parse(&data);
    assert_eq!(first, MAIL);
    assert_eq!((addresses(&pages[0]), addresses(&pages[1])), (vec![MAIL, MAIL + 1], vec![SLOT]));
    // The count limits the descriptors across types.
    let data = rig.ok(&res(0, false, DRIVE + 1, 2, false, 4096), &[], 4096);
    let (_, _, _, pages) = parse(&data);
    assert_eq!((addresses(&pages[0]), addresses(&pages[1])), (vec![DRIVE + 1], vec![PICKER]));
    // A count of zero reports no descriptors, but the address is still checked.
    let data = rig.ok(&res(2, false, 0, 0, false, 4096), &[], 4096);
    assert_eq!(data, [0x04, 0x00, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn a_starting_address_past_every_element_of_the_type_is_invalid() {
    let mut rig = Rig::new();
    for (element_type, start) in [(4u8, DRIVE + 2), (1, PICKER + 1), (3, MAIL + 2), (2, SLOT + 6), (0, SLOT + 6)] {
        let sense = rig.fails(&res(element_type, true, start, 1, false, 255), &[], INVALID_ELEMENT_ADDRESS);
        assert_eq!(field_pointer(&sense), cdb_field(2), "type {element_type}");
    }
    // mtx's "altres" walk ends on 21/01.
    let mut next = 0u16;
    let mut seen = Vec::new();
    loop {
        let outcome = rig.run(&res(0, true, next, 4, false, 4096), &[], 4096);
        if outcome.status() != STATUS_GOOD {
            assert_eq!(outcome.sense_code(), (5, 0x21, 0x01));
            break;
        }
        for page in parse(&outcome.data_in).3 {
            seen.extend(addresses(&page));
        }
        next = seen.last().unwrap() + 1;
    }
    assert_eq!(seen.len(), 11);
    // A type the library does not have at all.
    let mut rig = Rig::with_library(FakeLibrary::new(1, 0, 2, 0));
    rig.fails(&res(3, true, 0, 1, false, 255), &[], INVALID_ELEMENT_ADDRESS);
    // A reserved element type is the decoder's invalid field.
    rig.fails(&res(5, true, 0, 1, false, 255), &[], INVALID_FIELD_IN_CDB);
}

#[test]
fn a_loaded_drive_has_svalid_and_its_slot_shows_empty() {
    let mut rig = Rig::new();
    rig.ok(&[0xa5, 0, 0, 0, 0x04, 0x01, 0x00, 0x02, 0, 0, 0, 0], &[], 0);
    let drives = parse(&rig.ok(&res(4, true, 0, 2, false, 4096), &[], 4096)).3.remove(0);
    let drive = &drives.descriptors[1];
    assert_eq!(drive[2] & 0x01, 0x01, "full");
    assert_eq!(drive[9] & 0x80, 0x80, "SValid");
    assert_eq!(be16(&drive[10..]), SLOT + 1);
    assert_eq!(&volume_tag(drive)[..6], b"A00002");
    assert_eq!(drives.descriptors[0][9], 0, "the empty drive has no source");
    let slots = parse(&rig.ok(&res(2, true, SLOT + 1, 1, false, 4096), &[], 4096)).3.remove(0);
    assert_eq!(slots.descriptors[0][2] & 0x01, 0, "empty");
    assert_eq!(volume_tag(&slots.descriptors[0]), &[0; 36]);
    // A full slot whose cartridge never moved has no source either.
    let slots = parse(&rig.ok(&res(2, true, SLOT, 1, false, 4096), &[], 4096)).3.remove(0);
    assert_eq!(slots.descriptors[0][9] & 0x80, 0);
    // Moved slot to slot, it has.
    rig.ok(&[0xa5, 0, 0, 0, 0x04, 0x00, 0x04, 0x05, 0, 0, 0, 0], &[], 0);
    let slots = parse(&rig.ok(&res(2, true, SLOT + 5, 1, false, 4096), &[], 4096)).3.remove(0);
    assert_eq!((slots.descriptors[0][9] & 0x80, be16(&slots.descriptors[0][10..])), (0x80, SLOT));
}

#[test]
fn mail_slots_tell_operator_imports_from_picker_exports() {
    let mut rig = Rig::new();
    rig.library.import(MAIL, "IMP001");
    rig.ok(&[0xa5, 0, 0, 0, 0x04, 0x00, 0x03, 0x01, 0, 0, 0, 0], &[], 0);
    rig.changer.elements_changed(&[MAIL]);
    assert_eq!(rig.tur().sense_code(), (6, 0x28, 0));
    let page = parse(&rig.ok(&res(3, true, MAIL, 2, false, 4096), &[], 4096)).3.remove(0);
    assert_eq!(page.descriptors[0][2], 0x3b, "imported: ImpExp set");
    assert_eq!(page.descriptors[1][2], 0x39, "exported by the picker: ImpExp clear");
    assert_eq!(&volume_tag(&page.descriptors[0])[..6], b"IMP001");
}

#[test]
fn the_element_address_assignment_page_comes_from_the_elements() {
    let mut rig = Rig::new();
    let data = rig.ok(&[0x1a, 0x08, 0x1d, 0, 136, 0], &[], 136);
    assert_eq!(&data[..4], &[23, 0, 0, 0], "no block descriptor");
    assert_eq!(&data[4..6], &[0x1d, 0x12]);
    let counts = [PICKER, 1, SLOT, 6, MAIL, 2, DRIVE, 2].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<_>>();
    assert_eq!(&data[6..22], &counts[..]);
    assert_eq!(&data[22..24], &[0, 0]);

    // Any other layout, MODE SENSE(10) this time.
    let mut elements = vec![empty(0x0010, ElementKind::Transport), empty(0x0011, ElementKind::Transport)];
    elements.extend((0..3).map(|i| empty(0x0100 + i, ElementKind::DataTransfer)));
    elements.extend((0..40).map(|i| empty(0x1000 + i, ElementKind::Storage)));
    let mut rig = Rig::with_library(FakeLibrary::from_elements(elements));
    let data = rig.ok(&[0x5a, 0x08, 0x1d, 0, 0, 0, 0, 0, 255, 0], &[], 255);
    assert_eq!(&data[8..10], &[0x1d, 0x12]);
    let counts = [0x10u16, 2, 0x1000, 40, 0, 0, 0x100, 3].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<_>>();
    assert_eq!(&data[10..26], &counts[..]);
    // Two pickers, two transport geometry descriptors.
    let data = rig.ok(&[0x1a, 0x08, 0x1e, 0, 255, 0], &[], 255);
    assert_eq!(&data[4..10], &[0x1e, 4, 0, 0, 0, 1]);
}

#[test]
fn without_a_library_element_commands_are_not_ready_and_the_rest_answers() {
    let not_ready = LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED;
    let detached = open("");
    let empty_library = {
        let mut changer = open("");
        changer.library_attached(Box::new(FakeLibrary::default()));
        changer
    };
    for changer in [detached, empty_library] {
        let mut rig = Rig { changer, library: FakeLibrary::default() };
        rig.fails(&[0; 6], &[], not_ready);
        rig.fails(&res(0, true, 0, 10, false, 4096), &[], not_ready);
        rig.fails(&[0xa5, 0, 0, 0, 0x04, 0, 0, 1, 0, 0, 0, 0], &[], not_ready);
        rig.fails(&[0xa6, 0, 0, 0, 0x04, 0, 0x04, 1, 0x04, 0, 0, 0], &[], not_ready);
        rig.fails(&[0x2b, 0, 0, 0, 0x04, 0, 0, 0, 0, 0], &[], not_ready);
        rig.fails(&[0x07, 0, 0, 0, 0, 0], &[], not_ready);
        let sense = rig.ok(&[0x03, 0, 0, 0, 18, 0], &[], 18);
        assert_eq!((sense[2], sense[12], sense[13]), (2, 4, 3), "REQUEST SENSE reports the standing condition");
        assert_eq!(rig.ok(&[0x12, 0, 0, 0, 36, 0], &[], 36)[0], 0x08);
        let page = rig.ok(&[0x1a, 0x08, 0x1d, 0, 136, 0], &[], 136);
        assert!(page[6..22].iter().all(|&b| b == 0), "an empty library has no elements");
        rig.ok(&[0x1e, 0, 0, 0, 1, 0], &[], 0);
    }
}

#[test]
fn a_big_library_reports_every_element_and_cuts_cheaply() {
    let library = FakeLibrary::new(16, 32, 4096, 4096);
    let mut rig = Rig::with_library(library);
    let data = rig.ok(&res(0, true, 0, 0xffff, true, 0xff_ffff), &[], 0x40_0000);
    let (_, count, _, pages) = parse(&data);
    assert_eq!(usize::from(count), 16 + 1 + 32 + 4096);
    assert_eq!(pages[3].descriptors.len(), 4096);
    assert_eq!(&volume_tag(&pages[3].descriptors[4095])[..6], b"A04096");
    let cut = rig.ok(&res(0, true, 0, 0xffff, true, 100), &[], 100);
    assert_eq!(be24(&cut[5..]), data.len() - 8);
}
