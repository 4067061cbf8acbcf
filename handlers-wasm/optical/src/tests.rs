//! Unit tests: commands through the SDK's `testing` runner against an
//! in-memory disc image.

use tcmu_guest_sdk::testing::{MemStore, Outcome, execute};
use tcmu_guest_sdk::{DeviceIdentity, Handler, MediumInfo};

use crate::OpticalDrive;

const GOOD: u8 = 0;
/// A small "disc": 40 sectors, each filled with its own number.
const BLOCKS: u32 = 40;

fn image() -> MemStore {
    let mut bytes = Vec::with_capacity(BLOCKS as usize * 2048);
    for lba in 0..BLOCKS {
        bytes.extend(std::iter::repeat_n(lba as u8, 2048));
    }
    MemStore::from_bytes(bytes)
}

fn info(load_id: u64) -> MediumInfo {
    MediumInfo { barcode: String::new(), write_protected: true, load_id }
}

fn drive() -> OpticalDrive {
    OpticalDrive::open("", &DeviceIdentity::from_name("dvd0"), None).unwrap()
}

/// A drive with a disc in, spun up (the 02/04/01 and 06/28/00 consumed)
/// and its new-media event read.
fn loaded(disc: &MemStore) -> OpticalDrive {
    let mut d = drive();
    d.medium_loaded(Box::new(disc.clone()), info(1)).unwrap();
    assert_eq!(tur(&mut d).sense_code(), (6, 0x28, 0x00));
    assert_eq!(tur(&mut d).sense_code(), (2, 0x04, 0x01));
    assert_eq!(tur(&mut d).status(), GOOD);
    assert_eq!(media_event(&mut d), (2, 0x02));
    d
}

fn tur(d: &mut OpticalDrive) -> Outcome {
    execute(d, &[0; 6], &[], 0)
}

/// GESN, polled, media class: (event code, media status).
fn media_event(d: &mut OpticalDrive) -> (u8, u8) {
    let o = execute(d, &[0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0], &[], 8);
    assert_eq!(o.status(), GOOD, "{:?}", o.sense_code());
    assert_eq!(o.data_in[2], 4, "media class");
    assert_eq!(o.data_in[3], 0x12, "supported: operational change and media");
    (o.data_in[4] & 0x0f, o.data_in[5])
}

fn start_stop(d: &mut OpticalDrive, load: bool) -> Outcome {
    execute(d, &[0x1b, 0, 0, 0, 0x02 | u8::from(load), 0], &[], 0)
}

fn prevent(d: &mut OpticalDrive, on: bool) -> Outcome {
    execute(d, &[0x1e, 0, 0, 0, u8::from(on), 0], &[], 0)
}

fn read10(d: &mut OpticalDrive, lba: u32, blocks: u16, room: u32) -> Outcome {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    execute(d, &[0x28, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0], &[], room)
}

fn get_configuration(d: &mut OpticalDrive, rt: u8, start: u16, allocation: u16) -> Outcome {
    let s = start.to_be_bytes();
    let a = allocation.to_be_bytes();
    execute(d, &[0x46, rt, s[0], s[1], 0, 0, 0, a[0], a[1], 0], &[], u32::from(allocation))
}

/// The (code, current) pairs of a GET CONFIGURATION reply.
fn features(data: &[u8]) -> Vec<(u16, bool)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 4 <= data.len() {
        out.push((u16::from_be_bytes([data[at], data[at + 1]]), data[at + 2] & 1 != 0));
        at += 4 + data[at + 3] as usize;
    }
    out
}

fn read_toc(d: &mut OpticalDrive, msf: bool, format: u8, track: u8) -> Outcome {
    execute(d, &[0x43, if msf { 2 } else { 0 }, format, 0, 0, 0, track, 0x03, 0x00, 0], &[], 0x300)
}

#[test]
fn empty_drive_reports_tray_closed_no_disc() {
    let mut d = drive();
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x01));
    let o = execute(&mut d, &[0x03, 0, 0, 0, 18, 0], &[], 18);
    assert_eq!((o.status(), o.data_in[2] & 0xf, o.data_in[12], o.data_in[13]), (GOOD, 2, 0x3a, 0x01));
    assert_eq!(media_event(&mut d), (0, 0x00));
    let o = get_configuration(&mut d, 0, 0, 8);
    assert_eq!(&o.data_in[6..8], &[0, 0], "no current profile");
    assert_eq!(read10(&mut d, 0, 1, 2048).sense_code(), (2, 0x3a, 0x01));
}

#[test]
fn inquiry_says_removable_cd_dvd_device() {
    let mut d = drive();
    let o = execute(&mut d, &[0x12, 0, 0, 0, 96, 0], &[], 96);
    assert_eq!(o.data_in[0], 0x05);
    assert_eq!(o.data_in[1], 0x80, "RMB");
    assert_eq!(&o.data_in[16..31], b"VIRTUAL DVD-ROM");
}

#[test]
fn a_new_disc_spins_up_then_reads() {
    let disc = image();
    let mut d = loaded(&disc);
    let o = execute(&mut d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8);
    assert_eq!(&o.data_in[..], &[0, 0, 0, BLOCKS as u8 - 1, 0, 0, 8, 0]);
    let o = read10(&mut d, 3, 2, 4096);
    assert_eq!(o.status(), GOOD);
    assert_eq!(o.data_in.len(), 4096);
    assert!(o.data_in[..2048].iter().all(|&b| b == 3) && o.data_in[2048..].iter().all(|&b| b == 4));
    let o = execute(&mut d, &[0xa8, 0, 0, 0, 0, 39, 0, 0, 0, 1, 0, 0], &[], 2048);
    assert!(o.status() == GOOD && o.data_in.iter().all(|&b| b == 39), "READ(12) of the last sector");
    assert_eq!(read10(&mut d, 39, 2, 4096).sense_code(), (5, 0x21, 0x00), "past the end");
    assert_eq!(read10(&mut d, 0, 2, 2048).sense_code(), (5, 0x24, 0x00), "buffer smaller than the transfer");
    assert_eq!(read10(&mut d, 0, 0, 0).status(), GOOD);
}

#[test]
fn empty_or_tiny_images_are_refused_and_the_drive_stays_empty() {
    let mut d = drive();
    assert!(d.medium_loaded(Box::new(MemStore::new(0)), info(1)).is_err());
    assert!(d.medium_loaded(Box::new(MemStore::new(2047)), info(2)).is_err());
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x01));
    assert_eq!(media_event(&mut d), (0, 0));
}

#[test]
fn a_revoked_grant_reads_as_no_medium_not_as_the_old_image() {
    let disc = image();
    let mut d = loaded(&disc);
    disc.revoke();
    assert_eq!(read10(&mut d, 0, 1, 2048).sense_code(), (2, 0x3a, 0x00));
}

#[test]
fn configuration_profiles_and_current_features_follow_the_disc() {
    let disc = image();
    let mut d = loaded(&disc);
    let o = get_configuration(&mut d, 0, 0, 0x400);
    assert_eq!(&o.data_in[6..8], &[0x00, 0x10], "current profile DVD-ROM");
    let total = u32::from_be_bytes(o.data_in[0..4].try_into().unwrap()) as usize;
    assert_eq!(total + 4, o.data_in.len());
    // Profile list: DVD+R, DVD-ROM (current), CD-ROM.
    assert_eq!(&o.data_in[8..12], &[0, 0, 0x03, 12]);
    assert_eq!(&o.data_in[12..24], &[0x00, 0x1b, 0x00, 0, 0x00, 0x10, 0x01, 0, 0x00, 0x08, 0x00, 0]);
    let f = features(&o.data_in);
    let codes: Vec<u16> = f.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, [0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001d, 0x001e, 0x001f, 0x002b, 0x0100, 0x0105, 0x0107]);
    assert!(!f.iter().find(|(c, _)| *c == 0x002b).unwrap().1, "DVD+R is not current with a pressed disc");
    let current = |code| f.iter().find(|(c, _)| *c == code).unwrap().1;
    assert!(current(0x0010) && current(0x001f), "random readable and DVD read with a DVD in");
    assert!(!current(0x001e) && !current(0x001d), "CD read is not current");
    // RT 1 leaves out what is not current; RT 2 gives one feature.
    let o = get_configuration(&mut d, 1, 0, 0x400);
    assert!(features(&o.data_in).iter().all(|(_, current)| *current));
    let o = get_configuration(&mut d, 2, 0x001f, 0x400);
    assert_eq!(features(&o.data_in), [(0x001f, true)]);
    // A short allocation length cuts the data, not the length field.
    let o = get_configuration(&mut d, 0, 0, 8);
    assert_eq!(o.data_in.len(), 8);
    assert_eq!(u32::from_be_bytes(o.data_in[0..4].try_into().unwrap()) as usize, total);
    assert_eq!(get_configuration(&mut d, 3, 0, 8).sense_code(), (5, 0x24, 0x00));
    // With the tray open there is no current profile and nothing medium-bound is current.
    assert_eq!(start_stop(&mut d, false).status(), GOOD);
    let o = get_configuration(&mut d, 0, 0, 0x400);
    assert_eq!(&o.data_in[6..8], &[0, 0]);
    assert!(!features(&o.data_in).iter().any(|(c, cur)| (0x0010..0x0020).contains(c) && *cur));
}

#[test]
fn page_2a_offers_dvd_read_a_tray_eject_and_lock() {
    let mut d = drive();
    let o = execute(&mut d, &[0x5a, 0x08, 0x2a, 0, 0, 0, 0, 0, 64, 0], &[], 64);
    assert_eq!(o.status(), GOOD);
    let p = &o.data_in[8..];
    assert_eq!((p[0], p[1]), (0x2a, 0x1e));
    assert_eq!(p[2] & 0x08, 0x08, "DVD-ROM read");
    assert_eq!(p[3], 0, "writes nothing");
    assert_eq!(p[6] >> 5, 1, "tray");
    assert_eq!(p[6] & 0x09, 0x09, "eject and lock");
    assert_eq!(p[6] & 0x02, 0, "not locked");
    prevent(&mut d, true);
    let o = execute(&mut d, &[0x5a, 0x08, 0x2a, 0, 0, 0, 0, 0, 64, 0], &[], 64);
    assert_eq!(o.data_in[8 + 6] & 0x02, 0x02, "lock state");
    let all = execute(&mut d, &[0x5a, 0x08, 0x3f, 0, 0, 0, 0, 0x01, 0, 0], &[], 0x100);
    let codes: Vec<u8> = {
        let mut at = 8;
        let mut v = vec![];
        while at + 2 <= all.data_in.len() {
            v.push(all.data_in[at] & 0x3f);
            at += 2 + all.data_in[at + 1] as usize;
        }
        v
    };
    assert_eq!(codes, [0x01, 0x05, 0x0a, 0x1a, 0x1d, 0x2a]);
    assert_eq!(execute(&mut d, &[0x1a, 0x08, 0x2a, 0, 64, 0], &[], 64).status(), GOOD, "MODE SENSE(6) too");
}

#[test]
fn eject_opens_the_tray_and_load_brings_the_disc_back() {
    let disc = image();
    let mut d = loaded(&disc);
    assert_eq!(start_stop(&mut d, false).status(), GOOD);
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x02));
    assert_eq!(media_event(&mut d), (3, 0x01), "media removal, tray open");
    let o = execute(&mut d, &[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], &[], 8);
    assert_eq!(o.data_in[1] & 0x10, 0x10, "MECHANISM STATUS: door open");
    assert_eq!(start_stop(&mut d, true).status(), GOOD);
    assert_eq!(media_event(&mut d), (2, 0x02), "new media, present");
    assert_eq!(tur(&mut d).sense_code(), (6, 0x28, 0x00));
    assert_eq!(tur(&mut d).sense_code(), (2, 0x04, 0x01));
    assert_eq!(tur(&mut d).status(), GOOD);
    assert_eq!(media_event(&mut d), (0, 0x02), "no change");
    let o = execute(&mut d, &[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], &[], 8);
    assert_eq!(o.data_in[1] & 0x10, 0);
    // Closing an already closed tray changes nothing.
    assert_eq!(start_stop(&mut d, true).status(), GOOD);
    assert_eq!(tur(&mut d).status(), GOOD);
}

#[test]
fn prevent_keeps_the_tray_shut() {
    let disc = image();
    let mut d = loaded(&disc);
    assert_eq!(prevent(&mut d, true).status(), GOOD);
    assert_eq!(start_stop(&mut d, false).sense_code(), (5, 0x53, 0x02));
    assert_eq!(tur(&mut d).status(), GOOD, "still in");
    let o = execute(&mut d, &[0x4a, 0x01, 0, 0, 0x02, 0, 0, 0, 8, 0], &[], 8);
    assert_eq!((o.data_in[2], o.data_in[5] & 0x80), (1, 0x80), "operational class: persistent prevent");
    assert_eq!(prevent(&mut d, false).status(), GOOD);
    assert_eq!(start_stop(&mut d, false).status(), GOOD);
}

#[test]
fn the_host_taking_the_disc_reports_eject_request_then_removal() {
    let disc = image();
    let mut d = loaded(&disc);
    disc.revoke();
    d.medium_unloaded();
    assert_eq!(media_event(&mut d), (1, 0x01), "eject request");
    assert_eq!(media_event(&mut d), (3, 0x01), "media removal");
    assert_eq!(media_event(&mut d), (0, 0x01), "then no change, tray open");
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x02));
    assert_eq!(start_stop(&mut d, true).status(), GOOD);
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x01), "closed on nothing");
    // A different disc goes in.
    let other = image();
    d.medium_loaded(Box::new(other), info(2)).unwrap();
    assert_eq!(media_event(&mut d), (2, 0x02));
    assert_eq!(tur(&mut d).sense_code(), (6, 0x28, 0x00));
    assert_eq!(tur(&mut d).sense_code(), (2, 0x04, 0x01));
    assert_eq!(tur(&mut d).status(), GOOD);
    assert!(d.medium_loaded(Box::new(image()), info(3)).is_err(), "one disc at a time");
}

#[test]
fn gesn_and_get_configuration_leave_a_pending_unit_attention_pending() {
    let disc = image();
    let mut d = drive();
    d.medium_loaded(Box::new(disc.clone()), info(1)).unwrap();
    assert_eq!(media_event(&mut d), (2, 0x02), "GESN runs under the unit attention");
    let o = get_configuration(&mut d, 0, 0, 8);
    assert_eq!((o.status(), &o.data_in[6..8]), (GOOD, &[0x00, 0x10][..]), "GET CONFIGURATION too");
    assert_eq!(tur(&mut d).sense_code(), (6, 0x28, 0x00), "and the unit attention is still there");
    assert_eq!(tur(&mut d).sense_code(), (2, 0x04, 0x01), "then the disc spins up");
    assert_eq!(tur(&mut d).status(), GOOD);
}

#[test]
fn gesn_is_polled_only_and_ignores_unsupported_classes() {
    let mut d = drive();
    assert_eq!(execute(&mut d, &[0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8, 0], &[], 8).sense_code(), (5, 0x24, 0x00));
    let o = execute(&mut d, &[0x4a, 0x01, 0, 0, 0x40, 0, 0, 0, 8, 0], &[], 8);
    assert_eq!(&o.data_in[..], &[0, 2, 0x80, 0x12], "device busy class: NEA");
}

#[test]
fn toc_formats_in_lba_and_msf() {
    let disc = image();
    let mut d = loaded(&disc);
    let o = read_toc(&mut d, false, 0, 0);
    assert_eq!(&o.data_in[..4], &[0, 18, 1, 1]);
    assert_eq!(&o.data_in[4..12], &[0, 0x14, 1, 0, 0, 0, 0, 0]);
    assert_eq!(&o.data_in[12..20], &[0, 0x14, 0xaa, 0, 0, 0, 0, BLOCKS as u8]);
    let o = read_toc(&mut d, true, 0, 0);
    assert_eq!(&o.data_in[8..12], &[0, 0, 2, 0], "track 1 at 00:02:00");
    assert_eq!(&o.data_in[16..20], &[0, 0, 2, BLOCKS as u8], "lead-out at 00:02:40");
    let o = read_toc(&mut d, false, 0, 0xaa);
    assert_eq!(&o.data_in[..4], &[0, 10, 1, 1], "lead-out only");
    assert_eq!(read_toc(&mut d, false, 0, 2).sense_code(), (5, 0x24, 0x00));
    let o = read_toc(&mut d, false, 1, 0);
    assert_eq!(&o.data_in[..], &[0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0], "session info");
    let o = read_toc(&mut d, false, 2, 0);
    assert_eq!(&o.data_in[..4], &[0, 46, 1, 1], "full TOC: A0, A1, A2 and track 1");
    assert_eq!(o.data_in[4 + 3], 0xa0);
    assert_eq!(&o.data_in[4 + 22 + 8..4 + 22 + 11], &[0, 2, BLOCKS as u8], "A2: lead-out MSF");
    assert_eq!(read_toc(&mut d, false, 4, 0).sense_code(), (5, 0x24, 0x00), "no ATIP on a pressed disc");
    // SFF-8020 form: format in the control byte.
    let o = execute(&mut d, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40], &[], 12);
    assert_eq!(&o.data_in[..4], &[0, 10, 1, 1]);
    // A short allocation keeps the full length.
    let o = execute(&mut d, &[0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0], &[], 4);
    assert_eq!(&o.data_in[..], &[0, 18, 1, 1]);
}

#[test]
fn disc_and_track_information_describe_a_closed_disc() {
    let disc = image();
    let mut d = loaded(&disc);
    let o = execute(&mut d, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], &[], 34);
    assert_eq!(&o.data_in[..9], &[0, 32, 0x0e, 1, 1, 1, 1, 0x20, 0x00]);
    let o = execute(&mut d, &[0x52, 0x01, 0, 0, 0, 1, 0, 0, 48, 0], &[], 48);
    assert_eq!(o.status(), GOOD);
    assert_eq!((o.data_in[2], o.data_in[3], o.data_in[5], o.data_in[6] & 0x0f), (1, 1, 4, 1));
    assert_eq!(o.data_in[7] & 0x01, 0, "no next writable address");
    assert_eq!(u32::from_be_bytes(o.data_in[24..28].try_into().unwrap()), BLOCKS);
    assert_eq!(execute(&mut d, &[0x52, 0x01, 0, 0, 0, 2, 0, 0, 48, 0], &[], 48).sense_code(), (5, 0x24, 0x00));
    assert_eq!(execute(&mut d, &[0x52, 0x00, 0, 0, 0, 39, 0, 0, 48, 0], &[], 48).status(), GOOD);
    assert_eq!(execute(&mut d, &[0x52, 0x00, 0, 0, 0, 40, 0, 0, 48, 0], &[], 48).sense_code(), (5, 0x21, 0x00));
}

#[test]
fn dvd_structures() {
    let disc = image();
    let mut d = loaded(&disc);
    let dvd = |d: &mut OpticalDrive, format: u8, len: u16| {
        let l = len.to_be_bytes();
        execute(d, &[0xad, 0, 0, 0, 0, 0, 0, format, l[0], l[1], 0, 0], &[], u32::from(len))
    };
    let o = dvd(&mut d, 0x00, 2052);
    assert_eq!(&o.data_in[..4], &[0x08, 0x02, 0, 0]);
    assert_eq!(o.data_in[4] >> 4, 0, "book type DVD-ROM");
    assert_eq!(&o.data_in[8..16], &[0, 3, 0, 0, 0, 3, 0, BLOCKS as u8 - 1]);
    let o = dvd(&mut d, 0x01, 8);
    assert_eq!(&o.data_in[..], &[0, 6, 0, 0, 0, 0, 0, 0]);
    let o = dvd(&mut d, 0xff, 0x100);
    let listed: Vec<u8> = o.data_in[4..].chunks(4).map(|c| c[0]).collect();
    assert_eq!(listed, [0x00, 0x01, 0x04, 0xff]);
    assert_eq!(dvd(&mut d, 0x11, 0x100).sense_code(), (5, 0x30, 0x02), "no ADIP on a pressed disc");
    assert_eq!(dvd(&mut d, 0x0e, 0x100).sense_code(), (5, 0x30, 0x02));
    assert_eq!(dvd(&mut d, 0x30, 0x100).sense_code(), (5, 0x24, 0x00));
}

#[test]
fn speed_performance_and_buffer_commands_answer() {
    let disc = image();
    let mut d = loaded(&disc);
    assert_eq!(execute(&mut d, &[0xbb, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0], &[], 0).status(), GOOD);
    let o = execute(&mut d, &[0xac, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0], &[], 24);
    assert_eq!(o.status(), GOOD);
    assert_eq!(u32::from_be_bytes(o.data_in[0..4].try_into().unwrap()), 20);
    assert_eq!(u32::from_be_bytes(o.data_in[16..20].try_into().unwrap()), BLOCKS - 1, "end LBA");
    let o = execute(&mut d, &[0xac, 0x00, 0, 0, 0, 0, 0, 0, 0, 4, 0x03, 0], &[], 24);
    assert_eq!(&o.data_in[..4], &[0, 0, 0, 4], "no write speeds");
    let o = execute(&mut d, &[0x5c, 0, 0, 0, 0, 0, 0, 0, 12, 0], &[], 12);
    assert_eq!(&o.data_in[..2], &[0, 10]);
    assert_eq!(execute(&mut d, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).status(), GOOD);
    let o = execute(&mut d, &[0x23, 0, 0, 0, 0, 0, 0, 0, 12, 0], &[], 12);
    assert_eq!(&o.data_in[..], &[0, 0, 0, 8, 0, 0, 0, BLOCKS as u8, 2, 0, 8, 0]);
    // SET STREAMING: 2770 kB over 1000 ms.
    let mut desc = [0u8; 28];
    desc[12..16].copy_from_slice(&2770u32.to_be_bytes());
    desc[16..20].copy_from_slice(&1000u32.to_be_bytes());
    assert_eq!(execute(&mut d, &[0xb6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 28, 0], &desc, 0).status(), GOOD);
    let o = execute(&mut d, &[0x5a, 0x08, 0x2a, 0, 0, 0, 0, 0, 64, 0], &[], 64);
    assert_eq!(u16::from_be_bytes([o.data_in[8 + 14], o.data_in[8 + 15]]), 2770);
    // A pressed disc cannot be written.
    assert_eq!(execute(&mut d, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0; 2048], 0).sense_code(), (5, 0x30, 0x05));
}

#[test]
fn state_carries_the_tray_and_events_for_the_same_disc_load() {
    let disc = image();
    let mut d = loaded(&disc);
    prevent(&mut d, true);
    prevent(&mut d, false);
    start_stop(&mut d, false);
    let mut saved = Vec::new();
    d.save_state(&mut saved);

    let mut same = drive();
    same.medium_loaded(Box::new(disc.clone()), info(1)).unwrap();
    same.restore_state(&saved).unwrap();
    assert_eq!(tur(&mut same).sense_code(), (2, 0x3a, 0x02), "tray still open");
    assert_eq!(media_event(&mut same), (3, 0x01), "the removal event is still pending");

    let mut other = drive();
    other.medium_loaded(Box::new(image()), info(9)).unwrap();
    other.restore_state(&saved).unwrap();
    assert_eq!(tur(&mut other).sense_code(), (6, 0x28, 0x00), "a different load is news");
    assert_eq!(tur(&mut other).sense_code(), (2, 0x04, 0x01), "and spins up afresh");

    for cut in 0..saved.len() {
        assert!(drive().restore_state(&saved[..cut]).is_err() || cut == 0, "cut at {cut} accepted");
    }
    let mut bad = saved.clone();
    bad[0] = 99;
    assert!(drive().restore_state(&bad).is_err());
}

// ---- recordable discs (DVD+R) ----

/// Data area of the recordable test disc, in sectors.
const CAPACITY: u32 = 256;

/// A blank recordable image: the data area and a zero trailer.
fn blank_disc() -> MemStore {
    MemStore::new(CAPACITY as usize * 2048 + 4096)
}

fn writable(load_id: u64) -> MediumInfo {
    MediumInfo { barcode: String::new(), write_protected: false, load_id }
}

fn load_with(disc: &MemStore, info: MediumInfo) -> OpticalDrive {
    let mut d = drive();
    d.medium_loaded(Box::new(disc.clone()), info).unwrap();
    assert_eq!(tur(&mut d).sense_code(), (6, 0x28, 0x00));
    assert_eq!(tur(&mut d).sense_code(), (2, 0x04, 0x01));
    assert_eq!(tur(&mut d).status(), GOOD);
    d
}

fn write10(d: &mut OpticalDrive, lba: u32, blocks: u16, fill: u8) -> Outcome {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    let data = vec![fill; usize::from(blocks) * 2048];
    execute(d, &[0x2a, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0], &data, 0)
}

/// READ TRACK INFORMATION of track 1: (flags byte 6, valid byte 7, NWA,
/// free blocks, track size, last recorded address).
fn track(d: &mut OpticalDrive) -> (u8, u8, u32, u32, u32, u32) {
    let o = execute(d, &[0x52, 0x01, 0, 0, 0, 1, 0, 0, 48, 0], &[], 48);
    assert_eq!(o.status(), GOOD, "{:?}", o.sense_code());
    let be = |at: usize| u32::from_be_bytes(o.data_in[at..at + 4].try_into().unwrap());
    (o.data_in[6], o.data_in[7], be(12), be(16), be(24), be(28))
}

/// READ DISC INFORMATION byte 2: last session state and disc status.
fn disc_status(d: &mut OpticalDrive) -> u8 {
    let o = execute(d, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], &[], 34);
    assert_eq!(o.status(), GOOD);
    o.data_in[2]
}

fn close(d: &mut OpticalDrive, function: u8, immediate: bool) -> Outcome {
    execute(d, &[0x5b, u8::from(immediate), function, 0, 0, 1, 0, 0, 0, 0], &[], 0)
}

fn capacity(d: &mut OpticalDrive) -> u32 {
    let o = execute(d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8);
    assert_eq!(o.status(), GOOD);
    u32::from_be_bytes(o.data_in[..4].try_into().unwrap())
}

#[test]
fn a_blank_dvd_plus_r_reports_itself_blank_with_all_its_space_writable() {
    let disc = blank_disc();
    let mut d = load_with(&disc, writable(1));
    let o = get_configuration(&mut d, 1, 0, 0x400);
    assert_eq!(&o.data_in[6..8], &[0x00, 0x1b], "current profile DVD+R");
    let f = features(&o.data_in);
    assert!(f.iter().any(|(c, current)| *c == 0x002b && *current), "DVD+R feature current");
    assert!(!f.iter().any(|(c, _)| *c == 0x0010), "nothing to read randomly yet");
    assert_eq!(disc_status(&mut d) & 0x0f, 0x00, "empty session, blank disc");
    // Blank track: Blank bit, NWA valid at 0, the whole disc free.
    assert_eq!(track(&mut d), (0x41, 0x01, 0, CAPACITY, CAPACITY, 0));
    assert_eq!(capacity(&mut d), 0);
    assert_eq!(execute(&mut d, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0], &[], 12).sense_code(), (5, 0x24, 0x00), "no TOC");
    // DVD structures: book type DVD+R, ADIP with the media id; 0Eh is DVD-R's.
    let o = execute(&mut d, &[0xad, 0, 0, 0, 0, 0, 0, 0x00, 0x08, 0x04, 0, 0], &[], 0x804);
    assert_eq!(o.data_in[4], 0xa1);
    let o = execute(&mut d, &[0xad, 0, 0, 0, 0, 0, 0, 0x11, 0x01, 0x04, 0, 0], &[], 0x104);
    assert_eq!((o.status(), &o.data_in[4 + 19..4 + 27]), (GOOD, &b"TCMUWASM"[..]));
    let o = execute(&mut d, &[0xad, 0, 0, 0, 0, 0, 0, 0x0e, 0x01, 0x04, 0, 0], &[], 0x104);
    assert_eq!(o.sense_code(), (5, 0x30, 0x02));
    // Write speeds in GET PERFORMANCE type 03h and page 2Ah.
    let o = execute(&mut d, &[0xac, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0x03, 0], &[], 8 + 4 * 16);
    assert_eq!(u32::from_be_bytes(o.data_in[..4].try_into().unwrap()), 4 + 16, "one write speed descriptor");
    let o = execute(&mut d, &[0x5a, 0x08, 0x2a, 0, 0, 0, 0, 0, 64, 0], &[], 64);
    assert_ne!(u16::from_be_bytes([o.data_in[8 + 28], o.data_in[8 + 29]]), 0, "current write speed");
    assert_eq!(execute(&mut d, &[0x54, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).status(), GOOD, "SEND OPC");
    // Closing a blank disc is out of sequence.
    assert_eq!(close(&mut d, 2, false).sense_code(), (5, 0x2c, 0x00));
}

#[test]
fn burning_writes_at_the_next_writable_address_and_closing_completes_the_disc() {
    let disc = blank_disc();
    let mut d = load_with(&disc, writable(1));
    assert_eq!(write10(&mut d, 5, 1, 0xee).sense_code(), (5, 0x21, 0x02), "only at the NWA");
    // RESERVE TRACK of 100 sectors rounds up to 112 (ECC blocks of 16).
    assert_eq!(execute(&mut d, &[0x53, 0, 0, 0, 0, 0, 0, 0, 100, 0], &[], 0).status(), GOOD);
    assert_eq!(track(&mut d), (0xc1, 0x01, 0, 112, 112, 0), "reserved, blank");
    assert_eq!(execute(&mut d, &[0x53, 0, 0, 0, 0, 0, 0, 0, 16, 0], &[], 0).sense_code(), (5, 0x2c, 0x00));
    assert_eq!(write10(&mut d, 0, 16, 0xa0).status(), GOOD);
    assert_eq!(write10(&mut d, 16, 16, 0xa1).status(), GOOD);
    assert_eq!(write10(&mut d, 16, 1, 0xa1).sense_code(), (5, 0x21, 0x02), "no rewriting");
    assert_eq!(write10(&mut d, 32, 96, 0xa2).sense_code(), (5, 0x21, 0x00), "beyond the reservation");
    assert_eq!(track(&mut d), (0x81, 0x03, 32, 80, 112, 31), "NWA 32, 80 free, LRA 31");
    assert_eq!(disc_status(&mut d) & 0x0f, 0b0101, "incomplete session and disc");
    assert_eq!(capacity(&mut d), 31, "what is recorded reads");
    let o = read10(&mut d, 16, 1, 2048);
    assert_eq!((o.status(), o.data_in[0], o.data_in[2047]), (GOOD, 0xa1, 0xa1));
    assert_eq!(read10(&mut d, 32, 1, 2048).sense_code(), (5, 0x21, 0x00), "nothing past the NWA");
    assert_eq!(execute(&mut d, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).status(), GOOD);

    // CLOSE TRACK with Immed: in progress for a while, then ready.
    assert_eq!(close(&mut d, 1, true).status(), GOOD);
    assert_eq!(tur(&mut d).sense_code(), (2, 0x04, 0x07));
    assert_eq!(close(&mut d, 2, true).sense_code(), (2, 0x04, 0x07), "growisofs retries the close");
    assert_eq!(tur(&mut d).status(), GOOD);
    assert_eq!(track(&mut d).1 & 0x01, 0, "a closed track has no NWA");
    assert_eq!(write10(&mut d, 32, 1, 0xa3).sense_code(), (5, 0x21, 0x02));
    assert_eq!(close(&mut d, 2, false).status(), GOOD);
    assert_eq!(disc_status(&mut d) & 0x0f, 0b1110, "complete session and disc");
    assert_eq!(close(&mut d, 7, false).sense_code(), (5, 0x24, 0x00), "function 7 does not exist");
    // The TOC of the complete disc: track 1 at 0, lead-out at 32.
    let o = execute(&mut d, &[0x43, 0, 0, 0, 0, 0, 0, 0, 20, 0], &[], 20);
    assert_eq!(&o.data_in[16..20], &32u32.to_be_bytes());

    // The image holds the data from LBA 0 (a plain ISO once burned) and
    // the recording; a new instance (eject and re-insert, restart) reads
    // the disc as it was left.
    let image = disc.contents();
    assert_eq!((image[0], image[16 * 2048], image[32 * 2048]), (0xa0, 0xa1, 0));
    assert_eq!(&image[CAPACITY as usize * 2048..][..8], b"TCMUDVDR");
    let mut again = load_with(&disc, writable(2));
    assert_eq!(disc_status(&mut again) & 0x0f, 0b1110);
    assert_eq!(capacity(&mut again), 31);
    assert_eq!(read10(&mut again, 31, 1, 2048).data_in[0], 0xa1);
    let o = get_configuration(&mut again, 0, 0, 8);
    assert_eq!(&o.data_in[6..8], &[0x00, 0x1b], "still a DVD+R");
}

#[test]
fn finalizing_closes_an_open_track_and_every_close_function_completes() {
    for function in [2u8, 5, 6] {
        let disc = blank_disc();
        let mut d = load_with(&disc, writable(1));
        assert_eq!(write10(&mut d, 0, 16, 0x11).status(), GOOD);
        assert_eq!(close(&mut d, function, false).status(), GOOD, "function {function}");
        assert_eq!(disc_status(&mut d) & 0x0f, 0b1110, "function {function}");
        assert_eq!(track(&mut d), (0x81, 0x02, 0, 0, 16, 15), "closed: partial/complete");
    }
}

#[test]
fn recordable_images_that_must_not_be_burned_are_not() {
    // A blank image granted read-only: nothing to write on.
    let disc = blank_disc();
    let mut d = load_with(&disc, info(1));
    assert_eq!(write10(&mut d, 0, 1, 1).sense_code(), (5, 0x30, 0x05));
    // An ISO granted writable (no trailer, data at the start) stays a
    // pressed disc, and its bytes are never touched.
    let iso = image();
    let mut padded = iso.contents();
    padded.resize(CAPACITY as usize * 2048 + 4096, 0);
    let iso = MemStore::from_bytes(padded.clone());
    let mut d = load_with(&iso, writable(1));
    let o = get_configuration(&mut d, 0, 0, 8);
    assert_eq!(&o.data_in[6..8], &[0x00, 0x10], "DVD-ROM");
    assert_eq!(write10(&mut d, 0, 1, 1).sense_code(), (5, 0x30, 0x05));
    assert_eq!(iso.contents(), padded);
    // A burned disc granted read-only: readable, writes refused.
    let disc = blank_disc();
    let mut d = load_with(&disc, writable(1));
    assert_eq!(write10(&mut d, 0, 16, 0x22).status(), GOOD);
    let mut d = load_with(&disc, info(2));
    assert_eq!(read10(&mut d, 3, 1, 2048).data_in[0], 0x22);
    assert_eq!(write10(&mut d, 16, 1, 1).sense_code(), (7, 0x27, 0x00));
    // A damaged trailer: the drive refuses the disc and stays empty.
    let mut bytes = disc.contents();
    bytes[CAPACITY as usize * 2048 + 24] ^= 0x40;
    let damaged = MemStore::from_bytes(bytes);
    let mut d = drive();
    let err = d.medium_loaded(Box::new(damaged), writable(3)).err().unwrap();
    assert!(err.contains("CRC"), "{err}");
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x01));
}

#[test]
fn the_write_parameters_page_takes_what_growisofs_sends_back() {
    let disc = blank_disc();
    let mut d = load_with(&disc, writable(1));
    let o = execute(&mut d, &[0x5a, 0x08, 0x05, 0, 0, 0, 0, 0, 60, 0], &[], 60);
    assert_eq!(o.status(), GOOD);
    let mut page = o.data_in[..8 + 52].to_vec();
    assert_eq!((page[8] & 0x3f, page[9]), (0x05, 50));
    page[..8].fill(0);
    page[8 + 2] |= 0x40; // BUFE
    page[8 + 3] = page[8 + 3] & 0x3f | 0xc0; // multi-session bits
    let sent = execute(&mut d, &[0x55, 0x10, 0, 0, 0, 0, 0, 0, 60, 0], &page, 0);
    assert_eq!(sent.status(), GOOD, "{:?}", sent.sense_code());
    let o = execute(&mut d, &[0x5a, 0x08, 0x05, 0, 0, 0, 0, 0, 60, 0], &[], 60);
    assert_eq!((o.data_in[8 + 2] & 0x40, o.data_in[8 + 3] & 0xc0), (0x40, 0xc0), "kept");
}
