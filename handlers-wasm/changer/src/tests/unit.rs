//! INQUIRY, mode pages, unit attentions, state and the config string.

use tcmu_guest_sdk::sense::{
    INVALID_COMMAND_OPERATION_CODE, INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_PARAMETER_LIST,
    SAVING_PARAMETERS_NOT_SUPPORTED,
};
use tcmu_guest_sdk::{DeviceType, Store};

use super::*;

#[test]
fn standard_inquiry_is_a_changer_with_a_barcode_reader() {
    let mut rig = Rig::new();
    let data = rig.ok(&[0x12, 0, 0, 0, 255, 0], &[], 255);
    assert_eq!(data[0], 0x08, "medium changer");
    assert_eq!(data[6] & 0x08, 0, "not an attached changer (MCHNGR)");
    assert_eq!(&data[8..16], b"TCMUWASM");
    assert_eq!(&data[16..32], b"VIRTUAL CHANGER ");
    assert_eq!(
        &data[32..36],
        concat!(env!("CARGO_PKG_VERSION_MAJOR"), ".", env!("CARGO_PKG_VERSION_MINOR"), " ").as_bytes()
    );
    assert!(data[4] > 50, "long enough for mtx to look at byte 55");
    assert_eq!(data[55] & 0x01, 0x01, "bar code reader");
    assert_eq!(&data[58..64], &[0x00, 0xa0, 0x04, 0x60, 0x04, 0x80], "SAM-5, SPC-4, SMC-3");
    assert_eq!(usize::from(data[4]), data.len() - 5);
    assert_eq!(rig.ok(&[0x12, 0, 0, 0, 36, 0], &[], 36), data[..36]);
}

#[test]
fn vpd_pages_and_configured_identity() {
    let mut rig = Rig::new();
    let pages = rig.ok(&[0x12, 1, 0, 0, 255, 0], &[], 255);
    assert_eq!(&pages[..4], &[0x08, 0x00, 0, 3]);
    assert_eq!(&pages[4..], &[0x00, 0x80, 0x83]);
    assert_eq!(&rig.ok(&[0x12, 1, 0x80, 0, 255, 0], &[], 255)[4..], b"changer0", "the host's serial");
    assert_eq!(rig.ok(&[0x12, 1, 0x83, 0, 255, 0], &[], 255)[1], 0x83);
    rig.fails(&[0x12, 1, 0xb0, 0, 255, 0], &[], INVALID_FIELD_IN_CDB);
    rig.fails(&[0x12, 0, 0x80, 0, 255, 0], &[], INVALID_FIELD_IN_CDB);

    let mut rig =
        Rig { changer: open("serial=LIB-7, vendor=ACME, product=Tape Robot"), library: FakeLibrary::default() };
    let data = rig.ok(&[0x12, 0, 0, 0, 36, 0], &[], 36);
    assert_eq!(&data[8..32], b"ACME    Tape Robot      ");
    assert_eq!(&rig.ok(&[0x12, 1, 0x80, 0, 255, 0], &[], 255)[4..], b"LIB-7");
}

#[test]
fn open_checks_the_config_and_takes_no_store() {
    let identity = DeviceIdentity::from_name("c");
    let Err(why) = Changer::open("slots=4", &identity, None) else { panic!("an unknown key opened") };
    assert!(why.contains("unknown option"));
    let store: Box<dyn Store> = Box::new(tcmu_guest_sdk::testing::MemStore::new(512));
    assert!(Changer::open("", &identity, Some(store)).is_ok(), "a granted store goes unused");
    assert_eq!(Changer::describe().device_type, DeviceType::Changer);
}

/// (page code, parameters) of MODE SENSE(6) data.
fn pages(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut at = 4 + usize::from(data[3]);
    let mut pages = Vec::new();
    while at < data.len() {
        let len = usize::from(data[at + 1]);
        pages.push((data[at] & 0x3f, data[at + 2..at + 2 + len].to_vec()));
        at += 2 + len;
    }
    pages
}

#[test]
fn mode_pages_control_and_smc() {
    let mut rig = Rig::new();
    let all = rig.ok(&[0x1a, 0, 0x3f, 0, 255, 0], &[], 255);
    assert_eq!(usize::from(all[0]), all.len() - 1);
    let codes: Vec<u8> = pages(&all).iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, [0x0a, 0x1d, 0x1e, 0x1f]);

    let capabilities = rig.ok(&[0x1a, 0x08, 0x1f, 0, 255, 0], &[], 255);
    assert_eq!(&capabilities[4..6], &[0x1f, 0x12]);
    assert_eq!(&capabilities[6..12], &[0x0e, 0x03, 0x00, 0x0e, 0x0e, 0x0e], "no moves from or to the picker");
    assert_eq!(&capabilities[16..20], &[0x00, 0x06, 0x06, 0x06], "exchanges through slots and mail slots");
    let geometry = rig.ok(&[0x1a, 0x08, 0x1e, 0, 255, 0], &[], 255);
    assert_eq!(&geometry[4..], &[0x1e, 2, 0, 0], "one picker that cannot rotate");

    // Only D_SENSE is changeable.
    let changeable = rig.ok(&[0x1a, 0, 0x7f, 0, 255, 0], &[], 255);
    for (code, parameters) in pages(&changeable) {
        let expected_first = if code == 0x0a { 0x04 } else { 0 };
        assert_eq!(parameters[0], expected_first, "page {code:02x}");
        assert!(parameters[1..].iter().all(|&b| b == 0), "page {code:02x}");
    }
    rig.fails(&[0x1a, 0, 0xdd, 0, 255, 0], &[], SAVING_PARAMETERS_NOT_SUPPORTED);
    rig.fails(&[0x1a, 0, 0x08, 0, 255, 0], &[], INVALID_FIELD_IN_CDB);
}

#[test]
fn mode_select_sets_d_sense_and_refuses_everything_else() {
    let mut rig = Rig::new();
    let select = |list: &[u8]| [0x15, 0x10, 0, 0, list.len() as u8, 0];
    let mut control = vec![0, 0, 0, 0, 0x0a, 0x0a, 0x04];
    control.extend([0; 9]);
    rig.ok(&select(&control), &control, 0);
    let outcome = rig.run(&[0xee, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!((outcome.completion.sense[0], outcome.sense_code()), (0x72, (5, 0x20, 0)), "descriptor sense");
    let page = rig.ok(&[0x1a, 0, 0x0a, 0, 255, 0], &[], 255);
    assert_eq!(page[6], 0x04);

    // The SMC pages may come back unchanged, not changed.
    let current = rig.ok(&[0x1a, 0x08, 0x1d, 0, 255, 0], &[], 255);
    let mut echo = vec![0, 0, 0, 0];
    echo.extend_from_slice(&current[4..]);
    rig.ok(&select(&echo), &echo, 0);
    echo[9] ^= 1; // the slot count
    rig.fails(&select(&echo), &echo, INVALID_FIELD_IN_PARAMETER_LIST);

    // Pages the changer lacks, block descriptors, SP.
    let caching = [0, 0, 0, 0, 0x08, 0x02, 0, 0];
    let sense = rig.fails(&select(&caching), &caching, INVALID_FIELD_IN_PARAMETER_LIST);
    assert_eq!(sense[0], 0x72, "descriptor format now");
    rig.changer.set_descriptor_sense(false);
    let sense = rig.fails(&select(&caching), &caching, INVALID_FIELD_IN_PARAMETER_LIST);
    assert_eq!(field_pointer(&sense), [0x8d, 0, 4]);
    let descriptor = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    let sense = rig.fails(&select(&descriptor), &descriptor, INVALID_FIELD_IN_PARAMETER_LIST);
    assert_eq!(field_pointer(&sense), [0x80, 0, 3]);
    rig.fails(&[0x15, 0x11, 0, 0, 0, 0], &[], INVALID_FIELD_IN_CDB);
    // MODE SELECT(10) clears D_SENSE again.
    let mut control10 = vec![0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0x0a];
    control10.extend([0; 10]);
    rig.changer.set_descriptor_sense(true);
    rig.ok(&[0x55, 0x10, 0, 0, 0, 0, 0, 0, control10.len() as u8, 0], &control10, 0);
    assert!(!rig.changer.descriptor_sense());
}

#[test]
fn an_operator_change_raises_one_unit_attention() {
    let mut rig = Rig::new();
    rig.library.import(MAIL, "NEW001");
    rig.changer.elements_changed(&[MAIL]);
    // INQUIRY and REQUEST SENSE's peers pass; TEST UNIT READY reports it once.
    assert_eq!(rig.run(&[0x12, 0, 0, 0, 36, 0], &[], 36).status(), STATUS_GOOD);
    assert_eq!(rig.tur().sense_code(), (6, 0x28, 0x00));
    assert_eq!(rig.tur().status(), STATUS_GOOD);
    assert_eq!(rig.tur().status(), STATUS_GOOD);

    // A report of several elements raises one.
    rig.library.export(MAIL);
    rig.changer.elements_changed(&[MAIL, MAIL + 1, SLOT]);
    assert_eq!(rig.tur().sense_code(), (6, 0x28, 0x00));
    assert_eq!(rig.tur().status(), STATUS_GOOD);
    rig.changer.elements_changed(&[]);
    assert_eq!(rig.tur().status(), STATUS_GOOD);
}

#[test]
fn the_changers_own_moves_raise_nothing_but_a_later_operator_change_does() {
    let mut rig = Rig::new();
    rig.ok(&[0xa5, 0, 0, 0, 0x04, 0x00, 0x03, 0x00, 0, 0, 0, 0], &[], 0);
    rig.changer.elements_changed(&[SLOT, MAIL]);
    assert_eq!(rig.tur().status(), STATUS_GOOD, "a report of the changer's own export");
    // The operator takes the exported cartridge: that is news.
    rig.library.export(MAIL);
    rig.changer.elements_changed(&[MAIL]);
    assert_eq!(rig.tur().sense_code(), (6, 0x28, 0x00));
    // Export again; the operator empties the mail slot before the host
    // reports the export.
    rig.ok(&[0xa5, 0, 0, 0, 0x04, 0x01, 0x03, 0x00, 0, 0, 0, 0], &[], 0);
    rig.library.export(MAIL);
    rig.changer.elements_changed(&[MAIL]);
    assert_eq!(rig.tur().sense_code(), (6, 0x28, 0x00));
    assert_eq!(rig.tur().status(), STATUS_GOOD);
}

#[test]
fn state_survives_a_new_instance() {
    let mut rig = Rig::new();
    rig.ok(&[0x1e, 0, 0, 0, 1, 0], &[], 0);
    rig.changer.set_descriptor_sense(true);
    rig.changer.elements_changed(&[MAIL]);
    let mut state = Vec::new();
    rig.changer.save_state(&mut state);
    assert_eq!(state, [1, 1, 1, 1, 6, 0x28, 0]);

    // A rebuilt instance: open, library_attached, restore (wasm.rs's order).
    let calls_before = rig.library.0.borrow().prevent_calls.len();
    let mut again = open("");
    again.library_attached(Box::new(rig.library.clone()));
    again.restore_state(&state).unwrap();
    assert_eq!(rig.library.0.borrow().prevent_calls.len(), calls_before, "the host keeps the lock");
    assert!(again.prevent && again.descriptor_sense());
    let mut rig = Rig { changer: again, library: rig.library.clone() };
    let outcome = rig.tur();
    assert_eq!((outcome.completion.sense[0], outcome.sense_code()), (0x72, (6, 0x28, 0)));
    let mut after = Vec::new();
    rig.changer.save_state(&mut after);
    assert_eq!(after, [1, 1, 1, 0]);

    let mut fresh = open("");
    fresh.restore_state(&[]).unwrap();
    assert!(!fresh.prevent);
    assert!(fresh.restore_state(&[2, 0, 0, 0]).unwrap_err().contains("version 2"));
    assert!(fresh.restore_state(&[1, 2, 0, 0]).unwrap_err().contains("flag byte"));
    assert!(fresh.restore_state(&[1, 0, 0, 1, 6]).is_err());
    assert!(fresh.restore_state(&[1, 0, 0, 0, 9]).is_err(), "trailing bytes");
    assert!(fresh.restore_state(&[1, 0]).is_err());
}

#[test]
fn unknown_opcodes_and_report_luns_are_invalid() {
    let mut rig = Rig::new();
    for cdb in [&[0xa0u8, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0][..], &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0xa7; 12], &[]] {
        rig.fails(cdb, &[], INVALID_COMMAND_OPERATION_CODE);
    }
}
