//! MOVE MEDIUM, EXCHANGE MEDIUM, POSITION TO ELEMENT, INITIALIZE ELEMENT
//! STATUS and PREVENT ALLOW MEDIUM REMOVAL.

use tcmu_guest_sdk::sense::{INVALID_FIELD_IN_CDB, MEDIUM_REMOVAL_PREVENTED};

use super::*;
use crate::{DRIVE_FAILED, INVALID_ELEMENT_ADDRESS, MEDIUM_DESTINATION_FULL, MEDIUM_SOURCE_EMPTY};

fn move_cdb(transport: u16, source: u16, destination: u16) -> [u8; 12] {
    let [t1, t0] = transport.to_be_bytes();
    let [s1, s0] = source.to_be_bytes();
    let [d1, d0] = destination.to_be_bytes();
    [0xa5, 0, t1, t0, s1, s0, d1, d0, 0, 0, 0, 0]
}

fn exchange_cdb(source: u16, first: u16, second: u16) -> [u8; 12] {
    let [s1, s0] = source.to_be_bytes();
    let [f1, f0] = first.to_be_bytes();
    let [n1, n0] = second.to_be_bytes();
    [0xa6, 0, 0, 0, s1, s0, f1, f0, n1, n0, 0, 0]
}

#[test]
fn moves_between_every_kind_of_element() {
    let mut rig = Rig::new();
    let lib = rig.library.clone();
    // slot -> drive (default picker), drive -> drive, drive -> slot (no unload first).
    rig.ok(&move_cdb(0, SLOT, DRIVE), &[], 0);
    assert_eq!((lib.barcode(DRIVE).as_deref(), lib.barcode(SLOT)), (Some("A00001"), None));
    rig.ok(&move_cdb(PICKER, DRIVE, DRIVE + 1), &[], 0);
    assert_eq!(lib.element(DRIVE + 1).source, Some(SLOT), "drive to drive keeps the home slot");
    rig.ok(&move_cdb(0, DRIVE + 1, SLOT + 4), &[], 0);
    assert_eq!(lib.barcode(SLOT + 4).as_deref(), Some("A00001"));
    // slot -> slot, slot -> mail slot, mail slot -> slot, mail slot -> drive.
    rig.ok(&move_cdb(0, SLOT + 1, SLOT + 5), &[], 0);
    rig.ok(&move_cdb(0, SLOT + 5, MAIL), &[], 0);
    assert_eq!(lib.barcode(MAIL).as_deref(), Some("A00002"));
    rig.ok(&move_cdb(0, MAIL, SLOT + 1), &[], 0);
    rig.ok(&move_cdb(0, SLOT + 1, MAIL + 1), &[], 0);
    rig.ok(&move_cdb(0, MAIL + 1, DRIVE), &[], 0);
    assert_eq!(lib.barcode(DRIVE).as_deref(), Some("A00002"));
    // Onto itself: nothing happens, and that is fine.
    rig.ok(&move_cdb(0, SLOT + 2, SLOT + 2), &[], 0);
    assert_eq!(rig.tur().status(), STATUS_GOOD, "the changer's own moves raise no unit attention");
}

#[test]
fn move_errors_and_their_sense() {
    let mut rig = Rig::new();
    rig.fails(&move_cdb(0, SLOT + 5, DRIVE), &[], MEDIUM_SOURCE_EMPTY);
    rig.fails(&move_cdb(0, SLOT, SLOT + 1), &[], MEDIUM_DESTINATION_FULL);
    let sense = rig.fails(&move_cdb(0, 0x0999, DRIVE), &[], INVALID_ELEMENT_ADDRESS);
    assert_eq!(field_pointer(&sense), cdb_field(4));
    let sense = rig.fails(&move_cdb(0, SLOT, 0x0999), &[], INVALID_ELEMENT_ADDRESS);
    assert_eq!(field_pointer(&sense), cdb_field(6));
    let sense = rig.fails(&move_cdb(0, SLOT, PICKER), &[], INVALID_ELEMENT_ADDRESS);
    assert_eq!(field_pointer(&sense), cdb_field(6), "the picker holds no cartridge");
    // A transport address that is no picker.
    let sense = rig.fails(&move_cdb(SLOT, SLOT, DRIVE), &[], INVALID_ELEMENT_ADDRESS);
    assert_eq!(field_pointer(&sense), cdb_field(2));
    // INVERT.
    let mut invert = move_cdb(0, SLOT, DRIVE);
    invert[10] = 0x01;
    let sense = rig.fails(&invert, &[], INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), [0xc8, 0, 10]);
    // mtx's eepos bits in the control byte are not an error.
    let mut eepos = move_cdb(0, SLOT, DRIVE);
    eepos[11] = 0x40;
    rig.ok(&eepos, &[], 0);
    // A drive that fails: HARDWARE ERROR, and the cartridge stays put.
    rig.library.0.borrow_mut().broken_drives = Some("the drive is jammed".into());
    rig.fails(&move_cdb(0, SLOT + 1, DRIVE + 1), &[], DRIVE_FAILED);
    assert_eq!(rig.library.barcode(SLOT + 1).as_deref(), Some("A00002"));
    // Errors in descriptor format once D_SENSE asks for it.
    rig.changer.set_descriptor_sense(true);
    let outcome = rig.run(&move_cdb(0, SLOT + 5, SLOT + 4), &[], 0);
    assert_eq!((outcome.completion.sense[0], outcome.sense_code()), (0x72, (5, 0x3b, 0x0e)));
}

#[test]
fn exchanges_swap_and_rotate() {
    let mut rig = Rig::new();
    let lib = rig.library.clone();
    // A swap: source and second destination are the same slot.
    rig.ok(&exchange_cdb(SLOT, SLOT + 1, SLOT), &[], 0);
    assert_eq!((lib.barcode(SLOT).as_deref(), lib.barcode(SLOT + 1).as_deref()), (Some("A00002"), Some("A00001")));
    // Three elements: SLOT -> SLOT+2, whose cartridge goes to the mail slot.
    rig.ok(&exchange_cdb(SLOT, SLOT + 2, MAIL), &[], 0);
    assert_eq!(lib.barcode(SLOT), None);
    assert_eq!(lib.barcode(SLOT + 2).as_deref(), Some("A00002"));
    assert_eq!(lib.barcode(MAIL).as_deref(), Some("A00003"));
    // From a drive.
    rig.ok(&move_cdb(0, SLOT + 1, DRIVE), &[], 0);
    rig.ok(&exchange_cdb(DRIVE, SLOT + 2, SLOT + 3), &[], 0);
    assert_eq!(lib.barcode(SLOT + 2).as_deref(), Some("A00001"));
    assert_eq!(lib.barcode(SLOT + 3).as_deref(), Some("A00002"));
    assert_eq!(rig.tur().status(), STATUS_GOOD);
}

#[test]
fn exchange_errors() {
    let mut rig = Rig::new();
    rig.fails(&exchange_cdb(SLOT, SLOT + 4, SLOT), &[], MEDIUM_SOURCE_EMPTY);
    rig.fails(&exchange_cdb(SLOT, SLOT + 1, SLOT + 2), &[], MEDIUM_DESTINATION_FULL);
    for (cdb, byte) in [
        (exchange_cdb(0x0999, SLOT, SLOT + 4), 4),
        (exchange_cdb(SLOT, 0x0999, SLOT + 4), 6),
        (exchange_cdb(SLOT, SLOT + 1, 0x0999), 8),
    ] {
        let sense = rig.fails(&cdb, &[], INVALID_ELEMENT_ADDRESS);
        assert_eq!(field_pointer(&sense), cdb_field(byte));
    }
    // Page 1Fh offers no exchange with a drive or the picker.
    let sense = rig.fails(&exchange_cdb(SLOT, DRIVE, SLOT), &[], INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), cdb_field(6));
    let sense = rig.fails(&exchange_cdb(SLOT, SLOT + 1, PICKER), &[], INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), cdb_field(8));
    for (inv, pointer) in [(0x01, [0xc8, 0, 10]), (0x02, [0xc9, 0, 10]), (0x03, [0xc9, 0, 10])] {
        let mut cdb = exchange_cdb(SLOT, SLOT + 1, SLOT);
        cdb[10] = inv;
        let sense = rig.fails(&cdb, &[], INVALID_FIELD_IN_CDB);
        assert_eq!(field_pointer(&sense), pointer);
    }
    assert_eq!(rig.library.barcode(SLOT).as_deref(), Some("A00001"), "nothing moved");
}

#[test]
fn prevent_locks_the_mail_slots_and_allow_unlocks_them() {
    let mut rig = Rig::new();
    rig.ok(&[0x1e, 0, 0, 0, 1, 0], &[], 0);
    assert!(rig.library.0.borrow().prevent);
    rig.fails(&move_cdb(0, SLOT, MAIL), &[], MEDIUM_REMOVAL_PREVENTED);
    rig.ok(&move_cdb(0, SLOT, SLOT + 4), &[], 0);
    rig.ok(&[0x1e, 0, 0, 0, 0, 0], &[], 0);
    rig.ok(&move_cdb(0, SLOT + 4, MAIL), &[], 0);
    assert_eq!(rig.library.0.borrow().prevent_calls, [true, false]);
    let sense = rig.fails(&[0x1e, 0, 0, 0, 2, 0], &[], INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), [0xc9, 0, 4]);
}

#[test]
fn position_and_initialize_validate_and_succeed() {
    let mut rig = Rig::new();
    rig.ok(&[0x2b, 0, 0, 0, 0x04, 0x03, 0, 0, 0, 0], &[], 0);
    rig.ok(&[0x2b, 0, 0x02, 0xf0, 0, 0x01, 0, 0, 0, 0], &[], 0);
    let sense = rig.fails(&[0x2b, 0, 0, 0, 0x09, 0x99, 0, 0, 0, 0], &[], INVALID_ELEMENT_ADDRESS);
    assert_eq!(field_pointer(&sense), cdb_field(4));
    let sense = rig.fails(&[0x2b, 0, 0x04, 0, 0x04, 0, 0, 0, 0, 0], &[], INVALID_ELEMENT_ADDRESS);
    assert_eq!(field_pointer(&sense), cdb_field(2));
    rig.fails(&[0x2b, 0, 0, 0, 0x04, 0, 0, 0, 1, 0], &[], INVALID_FIELD_IN_CDB);

    rig.ok(&[0x07, 0, 0, 0, 0, 0], &[], 0);
    for opcode in [0x37, 0xe7] {
        rig.ok(&[opcode, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0);
        rig.ok(&[opcode, 1, 0x04, 0x00, 0, 0, 0, 6, 0, 0], &[], 0);
        let sense = rig.fails(&[opcode, 1, 0x09, 0x99, 0, 0, 0, 1, 0, 0], &[], INVALID_ELEMENT_ADDRESS);
        assert_eq!(field_pointer(&sense), cdb_field(2));
        // Without RANGE the addresses are ignored.
        rig.ok(&[opcode, 0, 0x09, 0x99, 0, 0, 0, 1, 0, 0], &[], 0);
    }
}
