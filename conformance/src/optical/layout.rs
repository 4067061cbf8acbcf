//! The pressed disc as the commands that describe and read it see it
//! (MMC-6): READ CAPACITY; READ(10)/(12) of the recognizable sectors and
//! past the end; READ TOC/PMA/ATIP format 0 (the TOC, by LBA and by MSF,
//! from track 1 or from the lead-out), format 1 (session information,
//! which the kernel's multisession ioctl reads) and format 2 (the full
//! TOC, always MSF); READ DISC INFORMATION of a complete disc; READ TRACK
//! INFORMATION of its one track; READ DVD STRUCTURE's physical format
//! information, structure list and a structure a DVD-ROM lacks. One
//! session with one data track from LBA 0 to the end: every view of the
//! disc must give the same size.

use super::drive::{
    Drive, TrackInfo, code, msf, op, read_disc_information, read_toc, read_track_information, transfer,
};
use crate::common::{Lun, Runner};
use crate::expect::{be, ensure};
use crate::sense;

/// The one track and the lead-out's track number.
const TRACK: u8 = 1;
const LEAD_OUT: u8 = 0xAA;
/// A TOC descriptor's ADR (high nibble): Q sub-channel mode 1, the
/// position; CONTROL (low nibble) bit 2: a data track.
const ADR_POSITION: u8 = 1;
const CONTROL_DATA: u8 = 0x04;
/// Full TOC points: first track, last track, lead-out start.
const POINT_FIRST_TRACK: u8 = 0xA0;
const POINT_LAST_TRACK: u8 = 0xA1;
const POINT_LEAD_OUT: u8 = 0xA2;
/// Byte 2 of disc information: last session complete (11b) and disc
/// complete (10b); the Erasable bit.
pub(crate) const COMPLETE_DISC: u8 = 0b11 << 2 | 0b10;
pub(crate) const ERASABLE: u8 = 0x10;
/// First physical sector number of a DVD's data area (ECMA-267).
pub(crate) const DVD_DATA_START_PSN: u32 = 0x0003_0000;
/// Book types of READ DVD STRUCTURE 00h (byte 0, bits 7-4).
pub(crate) const BOOK_DVD_ROM: u8 = 0x0;
pub(crate) const BOOK_DVD_PLUS_R: u8 = 0xA;
/// Layer type bits (byte 2, bits 3-0): embossed, recordable.
pub(crate) const LAYER_EMBOSSED: u8 = 0x01;
pub(crate) const LAYER_RECORDABLE: u8 = 0x02;
/// READ DVD STRUCTURE formats: physical format information, DVD-R
/// pre-recorded lead-in information, DVD+R ADIP, the structure list.
pub(crate) const PHYSICAL_FORMAT: u8 = 0x00;
const DVD_R_PRERECORDED: u8 = 0x0E;
pub(crate) const DVD_PLUS_R_ADIP: u8 = 0x11;
pub(crate) const STRUCTURE_LIST: u8 = 0xFF;
/// The RDS bit of a structure list entry: readable with READ DVD STRUCTURE.
const RDS: u8 = 0x40;

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("read-capacity", |drive| {
        let sectors = drive.pressed_sectors();
        let (last, block) = drive.capacity()?;
        ensure!(
            (last, block) == (sectors - 1, 2048),
            "READ CAPACITY: last LBA {last}, {block}-byte blocks; expected {} and 2048",
            sectors - 1
        );
        Ok(())
    });
    run_reads(suite);
    run_toc(suite);
    suite.check("read-disc-information.complete-disc", check_disc_information);
    suite.check("invalid.read-disc-information-type", |drive| {
        // Data type 111b is reserved.
        drive.execute_expecting(&read_disc_information(0x07, 0xFF), &[], 0xFF, sense::INVALID_FIELD_IN_CDB).map(drop)
    });
    suite.check("read-track-information.closed-track", check_track_information);
    suite.check("read-dvd-structure.physical-format", |drive| {
        let sectors = drive.pressed_sectors();
        check_physical_format(drive, BOOK_DVD_ROM, LAYER_EMBOSSED, sectors)
    });
    suite.check("read-dvd-structure.list", |drive| check_structure_list(drive, &[PHYSICAL_FORMAT]));
    suite.check("read-dvd-structure.incompatible-format", |drive| {
        let cdb = super::drive::read_dvd_structure(DVD_R_PRERECORDED, 0x100);
        drive.execute_expecting(&cdb, &[], 0x100, code::INCOMPATIBLE_FORMAT).map(drop)
    });
}

fn run_reads(suite: &mut Runner<Drive<'_>>) {
    suite.check("read10.first-sectors", |drive| drive.expect_pressed(op::READ_10, 0, 16));
    suite.check("read10.last-sector", |drive| {
        let last = drive.pressed_sectors() - 1;
        drive.expect_pressed(op::READ_10, last, 1)
    });
    suite.check("read10.zero-length", |drive| {
        let data = drive.execute_good(&transfer(op::READ_10, 0, 0), &[], 0)?;
        ensure!(data.is_empty(), "READ(10) of no sectors returned {} bytes", data.len());
        Ok(())
    });
    suite.check("read10.out-of-range", |drive| {
        let sectors = drive.pressed_sectors();
        drive.execute_expecting(&transfer(op::READ_10, sectors, 1), &[], 2048, sense::LBA_OUT_OF_RANGE)?;
        drive.execute_expecting(&transfer(op::READ_10, sectors - 1, 2), &[], 4096, sense::LBA_OUT_OF_RANGE)?;
        Ok(())
    });
    suite.check("read12.middle-sectors", |drive| {
        let middle = drive.pressed_sectors() / 2;
        drive.expect_pressed(op::READ_12, middle, 8)
    });
    suite.check("read12.last-sectors", |drive| {
        let sectors = drive.pressed_sectors();
        drive.expect_pressed(op::READ_12, sectors - 4, 4)
    });
    suite.check("read12.out-of-range", |drive| {
        let sectors = drive.pressed_sectors();
        drive.execute_expecting(&transfer(op::READ_12, sectors, 1), &[], 2048, sense::LBA_OUT_OF_RANGE)?;
        // An LBA and length whose sum overflows 32 bits is still out of range.
        drive.execute_expecting(&transfer(op::READ_12, u32::MAX, 1), &[], 2048, sense::LBA_OUT_OF_RANGE)?;
        Ok(())
    });
}

fn run_toc(suite: &mut Runner<Drive<'_>>) {
    suite.check("read-toc.format0-lba", |drive| {
        let sectors = drive.pressed_sectors();
        let descriptors = toc(drive, false, 0, 0)?;
        expect_toc(&descriptors, &[(TRACK, 0u32.to_be_bytes()), (LEAD_OUT, sectors.to_be_bytes())])?;
        let (last, _) = drive.capacity()?;
        ensure!(last + 1 == sectors, "the lead-out starts at {sectors}, READ CAPACITY says the last LBA is {last}");
        Ok(())
    });
    let sectors = suite.dev.pressed_sectors();
    let lead_out = msf(sectors).ok_or_else(|| format!("the lead-out at LBA {sectors} is past 255 minutes"));
    suite.check_if("read-toc.format0-msf", lead_out, |drive, [m, s, f]| {
        let descriptors = toc(drive, true, 0, 0)?;
        // Track 1 at LBA 0 is 00:02:00, after the two-second pregap.
        expect_toc(&descriptors, &[(TRACK, [0, 0, 2, 0]), (LEAD_OUT, [0, m, s, f])])
    });
    suite.check("read-toc.format0-from-the-lead-out", |drive| {
        let sectors = drive.pressed_sectors();
        let descriptors = toc(drive, false, 0, LEAD_OUT)?;
        expect_toc(&descriptors, &[(LEAD_OUT, sectors.to_be_bytes())])
    });
    suite.check("read-toc.format0-past-the-last-track", |drive| {
        drive
            .execute_expecting(&read_toc(false, 0, TRACK + 1, 0x300), &[], 0x300, sense::INVALID_FIELD_IN_CDB)
            .map(drop)
    });
    suite.check("read-toc.format1-session-information", |drive| {
        let descriptors = toc(drive, false, 1, 0)?;
        expect_toc(&descriptors, &[(TRACK, 0u32.to_be_bytes())])?;
        let descriptors = toc(drive, true, 1, 0)?;
        expect_toc(&descriptors, &[(TRACK, [0, 0, 2, 0])])
    });
    let lead_out = msf(sectors).ok_or_else(|| format!("the lead-out at LBA {sectors} is past 255 minutes"));
    suite.check_if("read-toc.format2-full-toc", lead_out, check_full_toc);
    suite.check("invalid.read-toc-format", |drive| {
        // Format 1111b is reserved.
        drive.execute_expecting(&read_toc(false, 0x0F, 0, 0x300), &[], 0x300, sense::INVALID_FIELD_IN_CDB).map(drop)
    });
}

/// READ TOC format 0 or 1: the header (one track, or one complete
/// session: first and last 1) and the 8-byte descriptors, which must tile
/// the data TOC DATA LENGTH describes. Returns (track, address) pairs;
/// every descriptor must be a data track with the position ADR.
pub(crate) fn toc(drive: &mut Drive<'_>, as_msf: bool, format: u8, track: u8) -> Result<Vec<(u8, [u8; 4])>, String> {
    let data = drive.execute_good(&read_toc(as_msf, format, track, 0x300), &[], 0x300)?;
    let declared = 2 + be(&data, 0..2)? as usize;
    ensure!(data.len() == declared, "TOC DATA LENGTH accounts for {declared} bytes, {} returned", data.len());
    ensure!(
        declared >= 4 && (declared - 4).is_multiple_of(8),
        "format {format} TOC of {declared} bytes: not a header and whole 8-byte descriptors"
    );
    ensure!(
        (data[2], data[3]) == (1, 1),
        "format {format} header: first {} last {}, expected 1 and 1 (one track, one session)",
        data[2],
        data[3]
    );
    let mut descriptors = Vec::new();
    for d in data[4..].chunks(8) {
        ensure!(d[1] >> 4 == ADR_POSITION, "track {:02X}h ADR {}, expected 1 (position)", d[2], d[1] >> 4);
        ensure!(d[1] & CONTROL_DATA != 0, "track {:02X}h CONTROL 0x{:X}: not a data track", d[2], d[1] & 0x0F);
        descriptors.push((d[2], [d[4], d[5], d[6], d[7]]));
    }
    Ok(descriptors)
}

fn expect_toc(got: &[(u8, [u8; 4])], want: &[(u8, [u8; 4])]) -> Result<(), String> {
    ensure!(got == want, "TOC descriptors (track, address) {:02X?}, expected {:02X?}", got, want);
    Ok(())
}

/// The full TOC of one session holding one data track: A0h names track 1
/// as the first, A1h as the last, A2h gives the lead-out's MSF, and track
/// 1 starts at 00:02:00. 11-byte descriptors, all of session 1.
fn check_full_toc(drive: &mut Drive<'_>, lead_out: [u8; 3]) -> Result<(), String> {
    let data = drive.execute_good(&read_toc(true, 2, 1, 0x300), &[], 0x300)?;
    let declared = 2 + be(&data, 0..2)? as usize;
    ensure!(data.len() == declared, "full TOC DATA LENGTH accounts for {declared} bytes, {} returned", data.len());
    ensure!(
        declared >= 4 && (declared - 4).is_multiple_of(11),
        "a full TOC of {declared} bytes: not whole 11-byte descriptors"
    );
    ensure!((data[2], data[3]) == (1, 1), "full TOC sessions {}..{}, expected 1..1", data[2], data[3]);
    let points: Vec<(u8, [u8; 3])> =
        data[4..].chunks(11).filter(|d| d[0] == 1).map(|d| (d[3], [d[8], d[9], d[10]])).collect();
    ensure!(
        data[4..].chunks(11).all(|d| d[0] == 1),
        "full TOC descriptors of sessions other than 1 on a one-session disc"
    );
    let point = |p: u8| points.iter().find(|(q, _)| *q == p).map(|(_, msf)| *msf);
    let first = point(POINT_FIRST_TRACK).ok_or("no A0h (first track) point")?;
    ensure!(first[0] == TRACK, "A0h: first track {}, expected 1", first[0]);
    let last = point(POINT_LAST_TRACK).ok_or("no A1h (last track) point")?;
    ensure!(last[0] == TRACK, "A1h: last track {}, expected 1", last[0]);
    let got = point(POINT_LEAD_OUT).ok_or("no A2h (lead-out) point")?;
    ensure!(got == lead_out, "A2h: lead-out at {got:02?}, expected {lead_out:02?} (MSF)");
    let track = point(TRACK).ok_or("no point for track 1")?;
    ensure!(track == [0, 2, 0], "track 1 starts at {track:02?}, expected 00:02:00");
    Ok(())
}

/// A pressed disc: one complete session, a complete disc, not erasable,
/// track 1 first and last, and no next session or lead-out to come.
fn check_disc_information(drive: &mut Drive<'_>) -> Result<(), String> {
    let data = drive.disc_information()?;
    ensure!(
        data[2] & (ERASABLE | 0x0F) == COMPLETE_DISC,
        "disc information byte 2 0x{:02X}, expected 0x0E (complete session, complete disc, not erasable)",
        data[2]
    );
    let field = |lsb: usize, msb: usize| u16::from_be_bytes([data[msb], data[lsb]]);
    ensure!(data[3] == TRACK, "first track on the disc {}, expected 1", data[3]);
    ensure!(field(4, 9) == 1, "{} sessions, expected 1", field(4, 9));
    ensure!(
        (field(5, 10), field(6, 11)) == (1, 1),
        "first and last track in the last session {} and {}, expected 1 and 1",
        field(5, 10),
        field(6, 11)
    );
    ensure!(
        data[16..24].iter().all(|&b| b == 0xFF),
        "a complete disc's last session lead-in and last possible lead-out are {:02X?}, expected FFh",
        &data[16..24]
    );
    Ok(())
}

/// Track 1 by number and by LBA (first and last sector): session 1, a
/// data track from LBA 0 of the whole disc, closed (no next writable
/// address), not blank. Track 2 does not exist, nor does LBA `sectors`.
fn check_track_information(drive: &mut Drive<'_>) -> Result<(), String> {
    let sectors = drive.pressed_sectors();
    let track = drive.track(1)?;
    let expect = |info: &TrackInfo, how: &str| -> Result<(), String> {
        ensure!(
            (info.track, info.session, info.start, info.size) == (1, 1, 0, sectors),
            "track information by {how}: track {} session {} from {} of {} sectors; expected track 1 session 1 from \
             0 of {sectors}",
            info.track,
            info.session,
            info.start,
            info.size
        );
        ensure!(info.track_mode & CONTROL_DATA != 0, "track mode 0x{:X}: not a data track", info.track_mode & 0x0F);
        ensure!(!info.blank, "a pressed track reported Blank");
        ensure!(info.next_writable.is_none(), "a pressed track reported a next writable address");
        Ok(())
    };
    expect(&track, "track number")?;
    for lba in [0, sectors - 1] {
        let data = drive.execute_good(&read_track_information(0b00, lba, 0xFF), &[], 0xFF)?;
        expect(&TrackInfo::decode(&data)?, &format!("LBA {lba}"))?;
    }
    drive.execute_expecting(&read_track_information(0b01, 2, 0xFF), &[], 0xFF, sense::INVALID_FIELD_IN_CDB)?;
    let response = drive.execute(&read_track_information(0b00, sectors, 0xFF), &[], 0xFF)?;
    let past_end = response.decoded_sense().map(|s| s.code);
    ensure!(
        matches!(past_end, Ok(c) if c == sense::LBA_OUT_OF_RANGE || c == sense::INVALID_FIELD_IN_CDB),
        "track information of LBA {sectors}, past the disc: {response}, expected {} or {}",
        sense::LBA_OUT_OF_RANGE,
        sense::INVALID_FIELD_IN_CDB
    );
    Ok(())
}

/// Physical format information (READ DVD STRUCTURE 00h): 2048 bytes, the
/// book type and layer type of the disc, one layer, the data area from
/// PSN 30000h over `sectors` sectors.
pub(crate) fn check_physical_format(
    drive: &mut Drive<'_>,
    book: u8,
    layer_type: u8,
    sectors: u32,
) -> Result<(), String> {
    let p = drive.dvd_structure(PHYSICAL_FORMAT)?;
    ensure!(p.len() == 2048, "physical format information of {} bytes, expected 2048", p.len());
    ensure!(p[0] >> 4 == book, "book type {:X}h, expected {book:X}h", p[0] >> 4);
    ensure!((p[2] >> 5) & 0x03 == 0, "{} layers, expected one", ((p[2] >> 5) & 0x03) + 1);
    ensure!(p[2] & 0x0F == layer_type, "layer type 0x{:X}, expected 0x{layer_type:X}", p[2] & 0x0F);
    let start = be(&p, 4..8)? as u32;
    let end = be(&p, 8..12)? as u32;
    ensure!(start == DVD_DATA_START_PSN, "data area starts at PSN {start:X}h, expected 30000h");
    ensure!(
        end.checked_sub(start).map(|d| d + 1) == Some(sectors),
        "data area PSN {start:X}h..={end:X}h holds {} sectors, expected {sectors}",
        i64::from(end) - i64::from(start) + 1
    );
    Ok(())
}

/// The structure list (FFh): 4-byte entries listing `required` and FFh,
/// each readable (RDS) and each but FFh answering READ DVD STRUCTURE.
pub(crate) fn check_structure_list(drive: &mut Drive<'_>, required: &[u8]) -> Result<(), String> {
    let list = drive.dvd_structure(STRUCTURE_LIST)?;
    ensure!(list.len().is_multiple_of(4), "a structure list of {} bytes: not whole 4-byte entries", list.len());
    let entries: Vec<(u8, u8)> = list.chunks(4).map(|e| (e[0], e[1])).collect();
    let formats: Vec<u8> = entries.iter().map(|(f, _)| *f).collect();
    for format in required.iter().chain(&[STRUCTURE_LIST]) {
        ensure!(formats.contains(format), "structure list {formats:02X?} lacks {format:02X}h");
    }
    for (format, flags) in entries {
        ensure!(flags & RDS != 0, "structure {format:02X}h is listed without RDS");
        if format != STRUCTURE_LIST {
            drive.dvd_structure(format).map_err(|e| format!("listed structure {format:02X}h: {e}"))?;
        }
    }
    Ok(())
}
