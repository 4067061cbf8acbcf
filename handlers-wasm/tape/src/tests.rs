//! Unit tests: commands through the SDK's `testing` runner against an
//! in-memory cartridge.

use tcmu_guest_sdk::testing::{MemStore, Outcome, execute};
use tcmu_guest_sdk::{DeviceIdentity, Handler, MediumInfo};

use crate::TapeDrive;
use crate::format::{HEADER_LEN, Index};

const NO_SENSE: u8 = 0x0;
const GOOD: u8 = 0;
const CHECK: u8 = 2;

fn info(load_id: u64) -> MediumInfo {
    MediumInfo { barcode: "TAPE01L5".into(), write_protected: false, load_id }
}

fn drive(config: &str) -> TapeDrive {
    TapeDrive::open(config, &DeviceIdentity::from_name("tape0"), None).unwrap()
}

/// A drive with `cartridge` loaded and threaded (the load's 02/04/01 and
/// 06/28/00 consumed).
fn loaded(config: &str, cartridge: &MemStore) -> TapeDrive {
    let mut d = drive(config);
    d.medium_loaded(Box::new(cartridge.clone()), info(1)).unwrap();
    assert_eq!(tur(&mut d).sense_code(), (2, 0x04, 0x01));
    assert_eq!(tur(&mut d).sense_code(), (6, 0x28, 0x00));
    assert_eq!(tur(&mut d).status(), GOOD);
    d
}

fn tur(d: &mut TapeDrive) -> Outcome {
    execute(d, &[0; 6], &[], 0)
}

fn len24(n: u32) -> [u8; 3] {
    let b = n.to_be_bytes();
    [b[1], b[2], b[3]]
}

fn write(d: &mut TapeDrive, data: &[u8]) -> Outcome {
    let l = len24(data.len() as u32);
    execute(d, &[0x0a, 0, l[0], l[1], l[2], 0], data, 0)
}

fn write_fixed(d: &mut TapeDrive, blocks: u32, data: &[u8]) -> Outcome {
    let l = len24(blocks);
    execute(d, &[0x0a, 1, l[0], l[1], l[2], 0], data, 0)
}

fn read(d: &mut TapeDrive, len: u32, sili: bool) -> Outcome {
    let l = len24(len);
    execute(d, &[0x08, if sili { 2 } else { 0 }, l[0], l[1], l[2], 0], &[], len)
}

fn read_fixed(d: &mut TapeDrive, blocks: u32, block: u32) -> Outcome {
    let l = len24(blocks);
    execute(d, &[0x08, 1, l[0], l[1], l[2], 0], &[], blocks * block)
}

fn filemarks(d: &mut TapeDrive, n: u32) -> Outcome {
    let l = len24(n);
    execute(d, &[0x10, 0, l[0], l[1], l[2], 0], &[], 0)
}

fn space(d: &mut TapeDrive, code: u8, count: i32) -> Outcome {
    let c = count.to_be_bytes();
    execute(d, &[0x11, code, c[1], c[2], c[3], 0], &[], 0)
}

fn space16(d: &mut TapeDrive, code: u8, count: i64) -> Outcome {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x91;
    cdb[1] = code;
    cdb[4..12].copy_from_slice(&count.to_be_bytes());
    execute(d, &cdb, &[], 0)
}

fn rewind(d: &mut TapeDrive) -> Outcome {
    execute(d, &[0x01, 0, 0, 0, 0, 0], &[], 0)
}

fn locate(d: &mut TapeDrive, object: u32) -> Outcome {
    let o = object.to_be_bytes();
    execute(d, &[0x2b, 0, 0, o[0], o[1], o[2], o[3], 0, 0, 0], &[], 0)
}

/// READ POSITION (long form): (logical object, logical file).
fn position(d: &mut TapeDrive) -> (u64, u64) {
    let o = execute(d, &[0x34, 0x06, 0, 0, 0, 0, 0, 0, 32, 0], &[], 32);
    assert_eq!(o.status(), GOOD, "{o:?}");
    let be = |r: std::ops::Range<usize>| u64::from_be_bytes(o.data_in[r].try_into().unwrap());
    (be(8..16), be(16..24))
}

/// The sense INFORMATION field of fixed-format sense, signed.
fn information(o: &Outcome) -> i64 {
    let s = &o.completion.sense;
    assert!(s[0] & 0x80 != 0, "VALID is set: {s:02x?}");
    i64::from(i32::from_be_bytes(s[3..7].try_into().unwrap()))
}

/// FILEMARK, EOM, ILI of fixed-format sense.
fn stream_bits(o: &Outcome) -> u8 {
    o.completion.sense[2] & 0xe0
}

fn block(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn set_block_length(d: &mut TapeDrive, length: u32) -> Outcome {
    let l = len24(length);
    let list = [0, 0, 0x10, 8, 0x00, 0, 0, 0, 0, l[0], l[1], l[2]];
    execute(d, &[0x15, 0x10, 0, 0, list.len() as u8, 0], &list, 0)
}

#[test]
fn readiness_empty_then_becoming_ready_then_attention_then_ready() {
    let mut d = drive("");
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x00));
    let rs = execute(&mut d, &[0x03, 0, 0, 0, 18, 0], &[], 18);
    assert_eq!((rs.data_in[2], rs.data_in[12]), (2, 0x3a), "REQUEST SENSE reports no medium");
    assert_eq!(read(&mut d, 10, false).sense_code(), (2, 0x3a, 0));
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    assert_eq!(tur(&mut d).status(), GOOD);
    assert!(d.medium_loaded(Box::new(cart.clone()), info(2)).is_err(), "one cartridge at a time");
    d.medium_unloaded();
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0x00));
}

#[test]
fn inquiry_says_removable_tape_and_offers_b0() {
    let mut d = drive("serial=XYZ123");
    let o = execute(&mut d, &[0x12, 0, 0, 0, 96, 0], &[], 96);
    assert_eq!((o.data_in[0], o.data_in[1]), (0x01, 0x80));
    assert_eq!(&o.data_in[16..28], b"VIRTUAL TAPE");
    let o = execute(&mut d, &[0x12, 1, 0x00, 0, 32, 0], &[], 32);
    assert_eq!(&o.data_in[4..], &[0x00, 0x80, 0x83, 0xb0]);
    let o = execute(&mut d, &[0x12, 1, 0x80, 0, 32, 0], &[], 32);
    assert_eq!(&o.data_in[4..], b"XYZ123");
    let o = execute(&mut d, &[0x12, 1, 0xb0, 0, 32, 0], &[], 32);
    assert_eq!(&o.data_in[..4], &[0x01, 0xb0, 0, 2]);
}

#[test]
fn variable_blocks_filemarks_and_end_of_data_read_back_with_residuals() {
    let cart = MemStore::new(4 << 20);
    let mut d = loaded("", &cart);
    let blocks = [block(100, 1), block(5000, 2), block(65536, 3)];
    for b in &blocks {
        assert_eq!(write(&mut d, b).status(), GOOD);
    }
    assert_eq!(filemarks(&mut d, 1).status(), GOOD);
    assert_eq!(write(&mut d, &block(10, 4)).status(), GOOD);
    assert_eq!(position(&mut d), (5, 1));
    assert_eq!(rewind(&mut d).status(), GOOD);
    assert_eq!(position(&mut d), (0, 0));
    for b in &blocks {
        let o = read(&mut d, b.len() as u32, false);
        assert_eq!((o.status(), &o.data_in), (GOOD, b));
    }
    let fm = read(&mut d, 4096, false);
    assert_eq!((fm.status(), fm.sense_code()), (CHECK, (NO_SENSE, 0x00, 0x01)));
    assert_eq!((stream_bits(&fm), information(&fm)), (0x80, 4096), "FILEMARK, residual = request");
    assert_eq!(position(&mut d), (4, 1), "past the filemark");
    assert_eq!(read(&mut d, 10, false).data_in, block(10, 4));
    let eod = read(&mut d, 512, false);
    assert_eq!(eod.sense_code(), (0x8, 0x00, 0x05));
    assert_eq!(information(&eod), 512);
    assert_eq!(position(&mut d), (5, 1), "EOD does not move");
}

#[test]
fn short_and_long_blocks_with_and_without_sili() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    let b = block(1000, 9);
    for _ in 0..4 {
        write(&mut d, &b);
    }
    rewind(&mut d);
    // Short block: ILI, INFORMATION = requested - actual, the data that was there.
    let o = read(&mut d, 4096, false);
    assert_eq!((o.status(), o.sense_code(), stream_bits(&o)), (CHECK, (0, 0, 0), 0x20));
    assert_eq!(information(&o), 4096 - 1000);
    assert_eq!(o.data_in, b);
    assert_eq!(o.completion.data_in_len, 1000, "read_len tells the transport");
    // With SILI a short block is no error; the residual is the transport's.
    let o = read(&mut d, 4096, true);
    assert_eq!((o.status(), o.completion.data_in_len), (GOOD, 1000));
    // Long block: ILI with a negative INFORMATION, data cut to the request.
    let o = read(&mut d, 256, false);
    assert_eq!((o.status(), stream_bits(&o), information(&o)), (CHECK, 0x20, 256 - 1000));
    assert_eq!(o.data_in, &b[..256]);
    // ... with SILI too, so st reports ENOMEM whatever its options.
    let o = read(&mut d, 256, true);
    assert_eq!((o.status(), information(&o)), (CHECK, -744));
    assert_eq!(position(&mut d).0, 4, "each read passed one block");
}

#[test]
fn fixed_mode_reads_and_writes_and_reports_residuals_in_blocks() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    assert_eq!(set_block_length(&mut d, 512).status(), GOOD);
    let data = block(4 * 512, 5);
    assert_eq!(write_fixed(&mut d, 4, &data).status(), GOOD);
    assert_eq!(position(&mut d).0, 4, "four records");
    filemarks(&mut d, 1);
    rewind(&mut d);
    let o = read_fixed(&mut d, 4, 512);
    assert_eq!((o.status(), &o.data_in), (GOOD, &data));
    // Next is the filemark: nothing read, residual 3 blocks.
    let o = read_fixed(&mut d, 3, 512);
    assert_eq!((o.sense_code(), stream_bits(&o), information(&o)), ((0, 0, 1), 0x80, 3));
    // A block of another length stops a fixed read with ILI.
    assert_eq!(set_block_length(&mut d, 0).status(), GOOD);
    write(&mut d, &block(100, 1));
    set_block_length(&mut d, 512);
    space(&mut d, 0, -1);
    let o = read_fixed(&mut d, 2, 512);
    assert_eq!((stream_bits(&o), information(&o)), (0x20, 2));
    // FIXED in variable mode is an invalid field.
    set_block_length(&mut d, 0);
    let o = read_fixed(&mut d, 1, 512);
    assert_eq!(o.sense_code(), (5, 0x24, 0));
}

#[test]
fn space_over_blocks_and_filemarks_stops_with_the_residual() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    // file 0: 3 blocks, file 1: 2 blocks, file 2: 1 block
    for (file, n) in [3, 2, 1].into_iter().enumerate() {
        for _ in 0..n {
            write(&mut d, &block(64, file as u8));
        }
        if file < 2 {
            filemarks(&mut d, 1);
        }
    }
    assert_eq!(position(&mut d), (8, 2));
    rewind(&mut d);
    assert_eq!(space(&mut d, 0, 2).status(), GOOD);
    assert_eq!(position(&mut d), (2, 0));
    // Two more blocks cross the filemark: stop past it, one not spaced.
    let o = space(&mut d, 0, 2);
    assert_eq!((o.sense_code(), stream_bits(&o), information(&o)), ((0, 0, 1), 0x80, 1));
    assert_eq!(position(&mut d), (4, 1));
    // Backwards over blocks into the filemark: stop before it.
    let o = space(&mut d, 0, -1);
    assert_eq!((o.sense_code(), information(&o)), ((0, 0, 1), 1));
    assert_eq!(position(&mut d), (3, 0));
    // Backwards to BOP: NO SENSE, EOM, 00/04.
    let o = space(&mut d, 0, -10);
    assert_eq!((o.sense_code(), stream_bits(&o), information(&o)), ((0, 0, 4), 0x40, 7));
    assert_eq!(position(&mut d), (0, 0));
    // Forward over filemarks.
    assert_eq!(space(&mut d, 1, 2).status(), GOOD);
    assert_eq!(position(&mut d), (7, 2));
    // st's MTEOM: space 0x7fffff filemarks, BLANK CHECK with the rest.
    rewind(&mut d);
    let o = space(&mut d, 1, 0x7f_ffff);
    assert_eq!((o.sense_code(), information(&o)), ((8, 0, 5), 0x7f_ffff - 2));
    assert_eq!(position(&mut d), (8, 2), "at end of data");
    // Backwards over filemarks ends before the mark.
    assert_eq!(space(&mut d, 1, -1).status(), GOOD);
    assert_eq!(position(&mut d), (6, 1));
    let o = space(&mut d, 1, -5);
    assert_eq!((o.sense_code(), information(&o)), ((0, 0, 4), 4), "one mark lies behind object 6");
    // Forward over blocks into end of data.
    locate(&mut d, 7);
    let o = space(&mut d, 0, 3);
    assert_eq!((o.sense_code(), information(&o)), ((8, 0, 5), 2));
    // Space to end of data; SPACE(16) too.
    rewind(&mut d);
    assert_eq!(space(&mut d, 3, 0).status(), GOOD);
    assert_eq!(position(&mut d), (8, 2));
    assert_eq!(space16(&mut d, 1, -2).status(), GOOD);
    assert_eq!(position(&mut d), (3, 0));
    assert_eq!(space(&mut d, 2, 1).sense_code(), (5, 0x24, 0), "sequential filemarks are not offered");
}

#[test]
fn locate_and_the_three_read_position_forms() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    for i in 0..5 {
        write(&mut d, &block(10, i));
    }
    filemarks(&mut d, 1);
    write(&mut d, &block(10, 9));
    assert_eq!(locate(&mut d, 3).status(), GOOD);
    let short = execute(&mut d, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 20);
    assert_eq!(
        (short.data_in.len(), &short.data_in[4..8], &short.data_in[8..12]),
        (20, &[0, 0, 0, 3][..], &[0, 0, 0, 3][..])
    );
    assert_eq!(short.data_in[0] & 0x80, 0, "not BOP");
    let ext = execute(&mut d, &[0x34, 0x08, 0, 0, 0, 0, 0, 0, 32, 0], &[], 32);
    assert_eq!((&ext.data_in[2..4], ext.data_in[15]), (&[0, 0x1c][..], 3));
    rewind(&mut d);
    let short = execute(&mut d, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 20);
    assert_eq!(short.data_in[0] & 0x80, 0x80, "BOP");
    // LOCATE(16) to file 1 and to end of data.
    let mut l16 = [0u8; 16];
    l16[0] = 0x92;
    l16[1] = 0x08;
    l16[11] = 1;
    assert_eq!(execute(&mut d, &l16, &[], 0).status(), GOOD);
    assert_eq!(position(&mut d), (6, 1));
    l16[1] = 0x18;
    assert_eq!(execute(&mut d, &l16, &[], 0).status(), GOOD);
    assert_eq!(position(&mut d), (7, 1));
    // Beyond end of data: BLANK CHECK, at end of data.
    let o = locate(&mut d, 100);
    assert_eq!(o.sense_code(), (8, 0, 5));
    assert_eq!(position(&mut d).0, 7);
    // Another partition does not exist.
    let o = execute(&mut d, &[0x2b, 0x02, 0, 0, 0, 0, 0, 0, 1, 0], &[], 0);
    assert_eq!(o.sense_code(), (5, 0x24, 0));
}

#[test]
fn overwriting_in_the_middle_forgets_everything_after_it() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    for i in 0..5 {
        write(&mut d, &block(3000, i));
    }
    filemarks(&mut d, 1);
    locate(&mut d, 2);
    assert_eq!(write(&mut d, &block(50, 7)).status(), GOOD);
    assert_eq!(space(&mut d, 3, 0).status(), GOOD);
    assert_eq!(position(&mut d), (3, 0), "blocks 3.. and the filemark are gone");
    locate(&mut d, 2);
    assert_eq!(read(&mut d, 50, false).data_in, block(50, 7));
    assert_eq!(read(&mut d, 50, false).sense_code(), (8, 0, 5));
    // The image holds nothing after the last record.
    let end = (HEADER_LEN + 2 * (32 + 3008) + 32 + 64) as usize;
    assert!(cart.contents()[end..].iter().all(|&b| b == 0));
    // ERASE at a position does the same.
    locate(&mut d, 1);
    assert_eq!(execute(&mut d, &[0x19, 1, 0, 0, 0, 0], &[], 0).status(), GOOD);
    space(&mut d, 3, 0);
    assert_eq!(position(&mut d).0, 1);
}

#[test]
fn early_warning_then_volume_overflow_writes_nothing() {
    // 64 KiB of tape after the header, early warning 16 KiB before the end.
    let cart = MemStore::new(HEADER_LEN as usize + (64 << 10));
    let mut d = loaded("early_warning=16K", &cart);
    let b = block(8000, 3);
    let mut writes = 0;
    let first_warning = loop {
        let o = write(&mut d, &b);
        writes += 1;
        if o.status() != GOOD {
            break o;
        }
    };
    assert_eq!((first_warning.sense_code(), stream_bits(&first_warning)), ((0, 0, 2), 0x40), "{first_warning:?}");
    assert_eq!(information(&first_warning), 0, "the write completed");
    assert_eq!(position(&mut d).0, writes, "and is on tape");
    let ew_pos = execute(&mut d, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 20);
    assert_eq!(ew_pos.data_in[0] & 0x40, 0x40, "READ POSITION says EOP");
    let overflow = loop {
        let o = write(&mut d, &b);
        if o.sense_code().0 != 0 {
            break o;
        }
        assert_eq!(o.sense_code(), (0, 0, 2), "every write past early warning warns");
        writes += 1;
    };
    assert_eq!((overflow.sense_code(), stream_bits(&overflow)), ((0xd, 0, 2), 0x40));
    assert_eq!(information(&overflow), 8000);
    assert_eq!(position(&mut d).0, writes, "nothing written by the overflowing command");
    // Everything acknowledged reads back.
    rewind(&mut d);
    for _ in 0..writes {
        assert_eq!(read(&mut d, 8000, false).data_in, b);
    }
    assert_eq!(read(&mut d, 8000, false).sense_code(), (8, 0, 5));
}

#[test]
fn write_protected_cartridges_refuse_every_change_and_raise_tape_alert() {
    let cart = MemStore::new(1 << 20);
    let mut d = drive("");
    let mut protected = info(1);
    protected.write_protected = true;
    d.medium_loaded(Box::new(cart.write_protected()), protected).unwrap();
    tur(&mut d);
    tur(&mut d);
    assert_eq!(write(&mut d, b"x").sense_code(), (7, 0x27, 0));
    assert_eq!(filemarks(&mut d, 1).sense_code(), (7, 0x27, 0));
    assert_eq!(execute(&mut d, &[0x19, 0, 0, 0, 0, 0], &[], 0).sense_code(), (7, 0x27, 0));
    let ms = execute(&mut d, &[0x1a, 0, 0x3f, 0, 255, 0], &[], 255);
    assert_eq!(ms.data_in[2] & 0x80, 0x80, "WP in the mode header");
    let alerts = |d: &mut TapeDrive| execute(d, &[0x4d, 0, 0x40 | 0x2e, 0, 0, 0, 0, 0x01, 0, 0], &[], 256).data_in;
    let a = alerts(&mut d);
    assert_eq!((a[0], &a[2..4]), (0x2e, &320u16.to_be_bytes()[..]));
    assert_eq!(&a[4 + 8 * 5..4 + 9 * 5], &[0, 9, 3, 1, 1], "flag 09h: write protect");
    assert_eq!(alerts(&mut d)[4 + 8 * 5 + 4], 0, "cleared by reading");
    assert!(cart.contents().iter().all(|&b| b == 0), "nothing touched the image");
}

#[test]
fn a_killed_daemon_leaves_every_acknowledged_record_and_then_end_of_data() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    let blocks: Vec<_> = (0..6).map(|i| block(1000 + i * 100, i as u8)).collect();
    for b in &blocks {
        assert_eq!(write(&mut d, b).status(), GOOD);
    }
    // No filemark, no flush, no close: the instance just goes away.
    drop(d);
    let mut d = loaded("", &MemStore::from_bytes(cart.contents()));
    for b in &blocks {
        assert_eq!(&read(&mut d, 4000, true).data_in, b);
    }
    assert_eq!(read(&mut d, 4000, false).sense_code(), (8, 0, 5));
    // A write cut between payload and header leaves the payload without a
    // header: end of data where the record would have been.
    let mut bytes = cart.contents();
    let index =
        Index::scan(bytes.len() as u64, |at, len| Ok::<_, ()>(bytes[at as usize..][..len as usize].to_vec())).unwrap();
    let last = index.offset(5) as usize;
    bytes[last..last + 32].fill(0);
    let mut d = loaded("", &MemStore::from_bytes(bytes));
    assert_eq!(space(&mut d, 3, 0).status(), GOOD);
    assert_eq!(position(&mut d).0, 5);
}

#[test]
fn damage_fails_where_it_is_with_medium_errors_and_what_precedes_reads() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    for i in 0..4 {
        write(&mut d, &block(500, i));
    }
    let mut bytes = cart.contents();
    let third = (HEADER_LEN + 2 * (32 + 512)) as usize;
    bytes[third + 9] ^= 0x40; // a length bit: the CRC no longer matches
    let mut d = loaded("", &MemStore::from_bytes(bytes.clone()));
    assert_eq!(read(&mut d, 500, false).status(), GOOD);
    assert_eq!(read(&mut d, 500, false).status(), GOOD);
    assert_eq!(read(&mut d, 500, false).sense_code(), (3, 0x31, 0));
    assert_eq!(space(&mut d, 3, 0).sense_code(), (3, 0x31, 0));
    // A corrupt header fails every medium command, and the image is left alone.
    let mut bad_header = bytes.clone();
    bad_header[40] ^= 1;
    let image = MemStore::from_bytes(bad_header.clone());
    let mut d = loaded("", &image);
    assert_eq!(read(&mut d, 500, false).sense_code(), (3, 0x31, 0));
    assert_eq!(write(&mut d, b"data").sense_code(), (3, 0x31, 0));
    assert_eq!(image.contents(), bad_header);
    let mut foreign = bytes.clone();
    foreign[..8].copy_from_slice(b"NOTATAPE");
    let mut d = loaded("", &MemStore::from_bytes(foreign));
    assert_eq!(read(&mut d, 500, false).sense_code(), (3, 0x30, 1));
    let mut d = loaded("", &MemStore::from_bytes(vec![0xff; 1000]));
    assert_eq!(read(&mut d, 500, false).sense_code(), (3, 0x31, 0), "smaller than a header");
}

#[test]
fn a_revoked_grant_reads_as_no_medium() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    write(&mut d, &block(100, 1));
    rewind(&mut d);
    cart.revoke();
    assert_eq!(read(&mut d, 100, false).sense_code(), (2, 0x3a, 0));
    assert_eq!(write(&mut d, b"x").sense_code(), (2, 0x3a, 0));
}

#[test]
fn load_unload_and_prevent_allow() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    write(&mut d, &block(10, 1));
    assert_eq!(execute(&mut d, &[0x1e, 0, 0, 0, 1, 0], &[], 0).status(), GOOD);
    assert_eq!(execute(&mut d, &[0x1b, 0, 0, 0, 0, 0], &[], 0).sense_code(), (5, 0x53, 2));
    execute(&mut d, &[0x1e, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(execute(&mut d, &[0x1b, 0, 0, 0, 0, 0], &[], 0).status(), GOOD);
    assert_eq!(tur(&mut d).sense_code(), (2, 0x3a, 0), "unloaded");
    assert_eq!(execute(&mut d, &[0x1b, 0, 0, 0, 1, 0], &[], 0).status(), GOOD);
    assert_eq!(tur(&mut d).status(), GOOD);
    assert_eq!(position(&mut d).0, 0, "loaded at BOP");
    assert_eq!(read(&mut d, 10, false).data_in, block(10, 1));
}

#[test]
fn mode_sense_and_select_block_descriptor_and_pages() {
    let mut d = drive("density=LTO-6");
    let ms = execute(&mut d, &[0x1a, 0, 0x3f, 0, 255, 0], &[], 255);
    assert_eq!(ms.status(), GOOD);
    assert_eq!(ms.data_in[3], 8, "one block descriptor");
    assert_eq!((ms.data_in[4], &ms.data_in[9..12]), (0x5a, &[0, 0, 0][..]), "density, variable");
    assert_eq!(ms.data_in[2] & 0x70, 0x10, "buffered mode 1");
    let pages: Vec<u8> = {
        let mut at = 12;
        let mut codes = Vec::new();
        while at < ms.data_in.len() {
            codes.push(ms.data_in[at] & 0x3f);
            at += 2 + ms.data_in[at + 1] as usize;
        }
        codes
    };
    assert_eq!(pages, [0x0a, 0x0f, 0x10, 0x11, 0x1c]);
    assert_eq!(set_block_length(&mut d, 1024).status(), GOOD);
    let ms = execute(&mut d, &[0x1a, 0, 0x0f, 0, 255, 0], &[], 255);
    assert_eq!(&ms.data_in[9..12], &[0, 4, 0]);
    assert_eq!(set_block_length(&mut d, 2 << 20).sense_code(), (5, 0x26, 0), "over max_block");
    // Page 0Fh: DCE may change, nothing else.
    let mut list = vec![0, 0, 0x10, 0];
    list.extend_from_slice(&ms.data_in[4 + 8..]);
    list[4 + 2] |= 0x80;
    assert_eq!(execute(&mut d, &[0x15, 0x10, 0, 0, list.len() as u8, 0], &list, 0).status(), GOOD);
    let ms = execute(&mut d, &[0x1a, 0x08, 0x0f, 0, 255, 0], &[], 255);
    assert_eq!(ms.data_in[4 + 2] & 0x80, 0x80, "DCE on");
    list[4 + 3] = 0;
    assert_eq!(execute(&mut d, &[0x15, 0x10, 0, 0, list.len() as u8, 0], &list, 0).sense_code(), (5, 0x26, 0));
    let rbl = execute(&mut d, &[0x05, 0, 0, 0, 0, 0], &[], 6);
    assert_eq!(rbl.data_in, [0, 0x10, 0, 0, 0, 1]);
}

#[test]
fn log_pages_decode() {
    let cart = MemStore::new(8 << 20);
    let mut d = loaded("", &cart);
    write(&mut d, &block(4096, 1));
    let page = |d: &mut TapeDrive, code: u8| execute(d, &[0x4d, 0, 0x40 | code, 0, 0, 0, 0, 0x10, 0, 0], &[], 4096);
    let supported = page(&mut d, 0);
    assert_eq!(&supported.data_in[4..], &[0x00, 0x02, 0x03, 0x0c, 0x17, 0x2e, 0x31]);
    for code in [0x02, 0x03, 0x0c, 0x17, 0x2e, 0x31] {
        let o = page(&mut d, code);
        assert_eq!(o.status(), GOOD, "page {code:#x}");
        let len = u16::from_be_bytes([o.data_in[2], o.data_in[3]]) as usize;
        assert_eq!((o.data_in[0], o.data_in.len()), (code, 4 + len));
        // Every parameter's length fits the page.
        let mut at = 4;
        while at < o.data_in.len() {
            at += 4 + o.data_in[at + 3] as usize;
        }
        assert_eq!(at, o.data_in.len(), "page {code:#x} parameters tile the page");
    }
    let capacity = page(&mut d, 0x31);
    let max_mib = u32::from_be_bytes(capacity.data_in[4 + 8 * 2 + 4..][..4].try_into().unwrap());
    assert_eq!(max_mib, 7, "(8 MiB - header) in MiB");
    let written = page(&mut d, 0x0c);
    assert_eq!(&written.data_in[8..16], &4096u64.to_be_bytes());
    assert_eq!(page(&mut d, 0x33).sense_code(), (5, 0x24, 0));
}

#[test]
fn attributes_read_and_host_attributes_persist_on_the_cartridge() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    let read_attrs = |d: &mut TapeDrive, action: u8| {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x8c;
        cdb[1] = action;
        cdb[10..14].copy_from_slice(&8192u32.to_be_bytes());
        execute(d, &cdb, &[], 8192)
    };
    let find = |data: &[u8], id: u16| -> Option<Vec<u8>> {
        let mut at = 4;
        while at + 5 <= data.len() {
            let len = u16::from_be_bytes([data[at + 3], data[at + 4]]) as usize;
            if u16::from_be_bytes([data[at], data[at + 1]]) == id {
                return Some(data[at + 5..at + 5 + len].to_vec());
            }
            at += 5 + len;
        }
        None
    };
    let o = read_attrs(&mut d, 0);
    assert_eq!(o.status(), GOOD);
    let total = u32::from_be_bytes(o.data_in[..4].try_into().unwrap()) as usize;
    assert_eq!(total + 4, o.data_in.len());
    assert_eq!(&find(&o.data_in, 0x0401).unwrap()[..8], b"TAPE01L5");
    assert_eq!(find(&o.data_in, 0x0003).unwrap(), 1u64.to_be_bytes(), "load count");
    assert_eq!(find(&o.data_in, 0x0001).unwrap(), 0u64.to_be_bytes(), "under 1 MiB of capacity");
    // An application writes its name; it stays with the cartridge.
    let mut attr = vec![0x08, 0x01, 0x01, 0, 32];
    attr.extend_from_slice(&{
        let mut v = *b"Bacula                          ";
        v[31] = b' ';
        v
    });
    let mut list = (attr.len() as u32).to_be_bytes().to_vec();
    list.extend_from_slice(&attr);
    let mut cdb = [0u8; 16];
    cdb[0] = 0x8d;
    cdb[10..14].copy_from_slice(&(list.len() as u32).to_be_bytes());
    assert_eq!(execute(&mut d, &cdb, &list, 0).status(), GOOD);
    let mut d = loaded("", &MemStore::from_bytes(cart.contents()));
    let o = read_attrs(&mut d, 0);
    assert_eq!(&find(&o.data_in, 0x0801).unwrap()[..6], b"Bacula");
    assert_eq!(find(&o.data_in, 0x0003).unwrap(), 2u64.to_be_bytes(), "the attribute write formatted the image");
    // Wrong length, and a device attribute, are refused.
    list[4 + 4] = 31;
    assert_eq!(execute(&mut d, &cdb, &list, 0).sense_code(), (5, 0x26, 0));
    let device_attr = [0, 0, 0, 13, 0x00, 0x03, 0x00, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9];
    cdb[10..14].copy_from_slice(&(device_attr.len() as u32).to_be_bytes());
    assert_eq!(execute(&mut d, &cdb, &device_attr, 0).sense_code(), (5, 0x26, 0));
    // The attribute list and the supported list.
    let ids = read_attrs(&mut d, 1);
    assert!(ids.data_in[4..].chunks(2).any(|c| c == [0x08, 0x01]));
    let supported = read_attrs(&mut d, 5);
    assert!(supported.data_in[4..].chunks(2).any(|c| c == [0x08, 0x06]));
    // A short allocation still reports the full length.
    let mut cdb = [0u8; 16];
    cdb[0] = 0x8c;
    cdb[13] = 8;
    let cut = execute(&mut d, &cdb, &[], 8);
    assert_eq!(u32::from_be_bytes(cut.data_in[..4].try_into().unwrap()) as usize, total + 37);
}

#[test]
fn the_load_count_moves_on_each_load_of_a_formatted_cartridge() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    write(&mut d, b"formats the cartridge");
    drop(d);
    for _ in 0..2 {
        loaded("", &cart);
    }
    let crate::format::HeaderState::Formatted(h) = crate::format::Header::decode(&cart.contents()) else { panic!() };
    assert_eq!(h.load_count, 3);
}

#[test]
fn state_carries_position_for_the_same_load_only() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    for i in 0..3 {
        write(&mut d, &block(10, i));
    }
    set_block_length(&mut d, 0);
    locate(&mut d, 2);
    let mut state = Vec::new();
    d.save_state(&mut state);
    // Same load: a rebuilt instance is ready, at the same place.
    let mut same = drive("");
    same.medium_loaded(Box::new(cart.clone()), info(1)).unwrap();
    same.restore_state(&state).unwrap();
    assert_eq!(tur(&mut same).status(), GOOD);
    assert_eq!(position(&mut same).0, 2);
    // Another load: a new cartridge, becoming ready at BOT.
    let mut other = drive("");
    other.medium_loaded(Box::new(cart.clone()), info(2)).unwrap();
    other.restore_state(&state).unwrap();
    assert_eq!(tur(&mut other).sense_code(), (2, 4, 1));
    // Garbage is refused, not half-applied.
    assert!(drive("").restore_state(&[1, 2, 3]).is_err());
    assert!(drive("").restore_state(&[9]).is_err());
    let mut longer = state.clone();
    longer.push(0);
    assert!(drive("").restore_state(&longer).is_err());
}

#[test]
fn verify_checks_and_compares() {
    let cart = MemStore::new(1 << 20);
    let mut d = loaded("", &cart);
    let b = block(300, 4);
    write(&mut d, &b);
    write(&mut d, &b);
    rewind(&mut d);
    assert_eq!(execute(&mut d, &[0x13, 0, 0, 1, 0x2c, 0], &[], 0).status(), GOOD);
    assert_eq!(execute(&mut d, &[0x13, 0x02, 0, 1, 0x2c, 0], &b, 0).status(), GOOD);
    assert_eq!(position(&mut d).0, 2);
    rewind(&mut d);
    let mut other = b.clone();
    other[7] ^= 1;
    assert_eq!(execute(&mut d, &[0x13, 0x02, 0, 1, 0x2c, 0], &other, 0).sense_code(), (0xe, 0x1d, 0));
}

#[test]
fn report_density_support_lists_densities_and_the_medium() {
    let cart = MemStore::new(1 << 20);
    let mut d = drive("");
    let o = execute(&mut d, &[0x44, 0, 0, 0, 0, 0, 0, 0x04, 0, 0], &[], 1024);
    assert_eq!(o.data_in.len(), 4 + 5 * 52);
    assert_eq!((o.data_in[4], o.data_in[6] & 0x20), (0x58, 0x20), "LTO-5, default");
    assert_eq!(execute(&mut d, &[0x44, 1, 0, 0, 0, 0, 0, 0x04, 0, 0], &[], 1024).sense_code(), (2, 0x3a, 0));
    let mut d = loaded("", &cart);
    let o = execute(&mut d, &[0x44, 1, 0, 0, 0, 0, 0, 0x04, 0, 0], &[], 1024);
    assert_eq!(o.data_in.len(), 4 + 52);
    let o = execute(&mut d, &[0x44, 2, 0, 0, 0, 0, 0, 0x04, 0, 0], &[], 1024);
    assert_eq!(o.data_in.len(), 4 + 5 * 56);
}

#[test]
fn no_cdb_panics_the_handler() {
    let cart = MemStore::new(256 << 10);
    let mut d = loaded("", &cart);
    write(&mut d, &block(100, 1));
    let mut seed = 0x1234_5678u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for opcode in 0..=255u8 {
        for len in [0usize, 1, 5, 6, 10, 12, 16] {
            let mut cdb: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = cdb.first_mut() {
                *first = opcode;
            }
            let data: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
            let o = execute(&mut d, &cdb, &data, next() % 4096);
            assert!(matches!(o.status(), 0 | 2), "opcode {opcode:#x}");
        }
    }
}
