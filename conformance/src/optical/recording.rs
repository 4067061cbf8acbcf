//! Recording a DVD+R as growisofs and libburn do (MMC-6's DVD+R profile,
//! sequential recording): a blank disc says so (disc status blank, an
//! empty invisible track whose next writable address is 0 and whose free
//! blocks are the whole disc, book type DVD+R, ADIP); WRITE is accepted
//! only at the next writable address (INVALID ADDRESS FOR WRITE anywhere
//! else); RESERVE TRACK rounds up to whole 16-sector ECC blocks; writes
//! advance the next writable and last recorded addresses and read back;
//! CLOSE TRACK with Immed may keep the drive busy (OPERATION IN PROGRESS)
//! until it is done; CLOSE SESSION completes the disc, after which it takes
//! no more writes; closing a blank disc is out of sequence; a complete or
//! half-written disc taken out and put back in is as it was left. Each
//! check burns a fresh blank disc, and a drive that does not write DVD+R
//! (no DVD+R profile, or feature 002Bh without Write) skips them.

use super::configuration::{check_current, check_profile_list, writes_dvd_plus_r};
use super::drive::{Drive, close, code, codes, op, profile, reserve_track, synchronize_cache, transfer, tur};
use super::layout::{
    BOOK_DVD_PLUS_R, COMPLETE_DISC, DVD_PLUS_R_ADIP, ERASABLE, LAYER_RECORDABLE, PHYSICAL_FORMAT,
    check_physical_format, check_structure_list, toc,
};
use super::{DiscKind, OPTICAL_SECTOR_SIZE};
use crate::common::{Lun, Runner, describe};
use crate::expect::{self, ensure};
use crate::pattern;
use crate::sense::{self, SenseCode};
use crate::target::STATUS_GOOD;

/// Byte 2 of disc information, bits 3-0: an empty session on a blank
/// disc; an incomplete session on an incomplete disc.
const BLANK_DISC: u8 = 0b0000;
const INCOMPLETE_DISC: u8 = 0b01 << 2 | 0b01;
/// Disc status alone (bits 1-0): incomplete.
const DISC_STATUS_INCOMPLETE: u8 = 0b01;
/// CLOSE TRACK/SESSION functions: the track, the session; 111b is reserved.
const CLOSE_TRACK: u8 = 0b001;
const CLOSE_SESSION: u8 = 0b010;
const RESERVED_CLOSE_FUNCTION: u8 = 0b111;
/// A DVD's ECC block, the unit RESERVE TRACK rounds up to.
const ECC_BLOCK: u32 = 16;
/// TEST UNIT READYs an immediate close gets to finish.
const MAX_BUSY: usize = 32;

/// One recording check.
type Check = fn(&mut Drive<'_>) -> Result<(), String>;

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("recording.pressed-disc-refuses-writes", check_pressed_refuses_writes);
    let writer = suite
        .dev
        .configuration(0, 0)
        .map_err(|e| format!("GET CONFIGURATION: {e}"))
        .and_then(|configuration| writes_dvd_plus_r(&configuration));
    let checks: [(&str, Check); 10] = [
        ("recording.blank-disc", check_blank_disc),
        ("recording.write-only-at-the-next-writable-address", check_write_at_nwa),
        ("recording.reserve-track-rounds-up-to-ecc-blocks", check_reserve_track),
        ("recording.sequential-writes", check_sequential_writes),
        ("recording.close-track-immediate", check_close_track_immediate),
        ("recording.close-session-completes-the-disc", check_close_session),
        ("recording.close-on-a-blank-disc-refused", |drive| {
            fresh_blank(drive)?;
            drive.execute_expecting(&close(CLOSE_SESSION, false), &[], 0, code::COMMAND_SEQUENCE_ERROR)?;
            expect_disc_status(drive, 0x0F, BLANK_DISC, "after the refused close")
        }),
        ("recording.complete-disc-survives-reinsertion", check_complete_reinserted),
        ("recording.incomplete-disc-survives-reinsertion", check_incomplete_reinserted),
        ("invalid.close-track-session-function", |drive| {
            fresh_blank(drive)?;
            write(drive, op::WRITE_10, 0, 16, 0x91)?;
            drive.execute_expecting(&close(RESERVED_CLOSE_FUNCTION, false), &[], 0, sense::INVALID_FIELD_IN_CDB)?;
            expect_track(drive, Some(16), Some(15))
        }),
    ];
    for (name, check) in checks {
        suite.check_if(name, writer.clone(), |drive, ()| check(drive));
    }
}

/// Empty the drive and put a fresh blank disc in, which must arrive as
/// any disc does; its media events are read.
fn fresh_blank(drive: &mut Drive<'_>) -> Result<(), String> {
    drive.eject(true).map_err(|e| format!("the forced eject failed: {e}"))?;
    drive.drain_media_events()?;
    drive.insert_blank()?;
    drive.expect_disc_arrival()?;
    drive.drain_media_events().map(drop)
}

/// The sectors a check writes at `lba`, tagged so each write's data is
/// its own.
fn sectors(lba: u32, count: u32, tag: u8) -> Vec<u8> {
    pattern::blocks(lba.into(), count, OPTICAL_SECTOR_SIZE, tag)
}

/// WRITE(10)/(12) of `count` tagged sectors at `lba`, which must be GOOD;
/// returns the data.
fn write(drive: &mut Drive<'_>, opcode: u8, lba: u32, count: u32, tag: u8) -> Result<Vec<u8>, String> {
    let data = sectors(lba, count, tag);
    drive.execute_good(&transfer(opcode, lba, count), &data, 0)?;
    Ok(data)
}

/// A WRITE(10) of one sector at `lba` that must be refused with `code`.
fn write_refused(drive: &mut Drive<'_>, lba: u32, code: SenseCode) -> Result<(), String> {
    let data = sectors(lba, 1, 0xEE);
    drive.execute_expecting(&transfer(op::WRITE_10, lba, 1), &data, 0, code).map(drop)
}

/// Disc information byte 2 masked with `mask` must be `want`.
fn expect_disc_status(drive: &mut Drive<'_>, mask: u8, want: u8, when: &str) -> Result<(), String> {
    let data = drive.disc_information()?;
    ensure!(
        data[2] & mask == want,
        "disc information byte 2 0x{:02X} {when}, expected 0x{want:02X} in bits 0x{mask:02X} (session state \
         bits 3-2, disc status bits 1-0)",
        data[2]
    );
    Ok(())
}

/// Track 1's next writable address (`None`: NWA_V clear) and last
/// recorded address (`None`: LRA_V clear).
fn expect_track(drive: &mut Drive<'_>, next_writable: Option<u32>, last_recorded: Option<u32>) -> Result<(), String> {
    let track = drive.track(1)?;
    ensure!(
        (track.next_writable, track.last_recorded) == (next_writable, last_recorded),
        "track 1: next writable address {:?}, last recorded address {:?}; expected {next_writable:?} and \
         {last_recorded:?} (None: the valid bit clear)",
        track.next_writable,
        track.last_recorded
    );
    Ok(())
}

/// The drive's own view of a blank DVD+R: the current profile, the
/// features, a blank disc and its empty track, the physical format and
/// ADIP of a DVD+R of the whole capacity.
fn check_blank_disc(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    let capacity = drive.params.recordable_sectors;
    let configuration = drive.configuration(0, 0)?;
    check_current(&configuration, profile::DVD_PLUS_R)?;
    expect_disc_status(drive, ERASABLE | 0x0F, BLANK_DISC, "of a blank DVD+R")?;
    let track = drive.track(1)?;
    ensure!(track.blank, "the empty track of a blank disc is not Blank");
    ensure!(
        (track.start, track.next_writable, track.free, track.size) == (0, Some(0), capacity, capacity),
        "the blank track: start {} next writable {:?} free {} size {}; expected 0, Some(0), {capacity}, {capacity}",
        track.start,
        track.next_writable,
        track.free,
        track.size
    );
    ensure!(track.last_recorded.is_none(), "a blank track reported a last recorded address");
    check_physical_format(drive, BOOK_DVD_PLUS_R, LAYER_RECORDABLE, capacity)?;
    let adip = drive.dvd_structure(DVD_PLUS_R_ADIP)?;
    ensure!(adip.len() >= 4, "ADIP information of {} bytes", adip.len());
    ensure!(adip[0] >> 4 == BOOK_DVD_PLUS_R, "ADIP book type {:X}h, expected Ah (DVD+R)", adip[0] >> 4);
    check_structure_list(drive, &[PHYSICAL_FORMAT, DVD_PLUS_R_ADIP])
}

/// Sequential recording: nowhere but the next writable address, and no
/// rewriting what is recorded.
fn check_write_at_nwa(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    write_refused(drive, 5, code::INVALID_ADDRESS_FOR_WRITE)?;
    expect_track(drive, Some(0), None)?;
    write(drive, op::WRITE_10, 0, 16, 0xA1)?;
    write_refused(drive, 0, code::INVALID_ADDRESS_FOR_WRITE)?;
    write_refused(drive, 17, code::INVALID_ADDRESS_FOR_WRITE)?;
    expect_track(drive, Some(16), Some(15))
}

/// RESERVE TRACK of 100 sectors reserves 112, seven ECC blocks: a
/// reserved, still blank track; writing into it fills it from 0.
fn check_reserve_track(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    let asked: u32 = 100;
    let rounded = asked.div_ceil(ECC_BLOCK) * ECC_BLOCK;
    drive.execute_good(&reserve_track(asked), &[], 0)?;
    let track = drive.track(1)?;
    ensure!(track.reserved, "track 1 after RESERVE TRACK: RT clear");
    ensure!(track.blank, "the reserved track is not Blank before any write");
    ensure!(
        (track.size, track.free, track.next_writable) == (rounded, rounded, Some(0)),
        "the reserved track: size {} free {} next writable {:?}; a reservation of {asked} sectors rounds up to \
         {rounded}, free from 0",
        track.size,
        track.free,
        track.next_writable
    );
    write(drive, op::WRITE_10, 0, 16, 0xB1)?;
    let track = drive.track(1)?;
    ensure!(
        (track.size, track.free, track.next_writable) == (rounded, rounded - 16, Some(16)),
        "the reserved track after 16 sectors: size {} free {} next writable {:?}; expected {rounded}, {}, Some(16)",
        track.size,
        track.free,
        track.next_writable,
        rounded - 16
    );
    Ok(())
}

/// WRITE(10) then WRITE(12), each at the next writable address: the
/// track's addresses and free blocks follow, the disc is incomplete, and
/// both writes read back with READ(10) and READ(12).
fn check_sequential_writes(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    let capacity = drive.params.recordable_sectors;
    let mut recorded = write(drive, op::WRITE_10, 0, 16, 0xC1)?;
    expect_track(drive, Some(16), Some(15))?;
    let second = write(drive, op::WRITE_12, 16, 16, 0xC2)?;
    recorded.extend_from_slice(&second);
    drive.execute_good(&synchronize_cache(), &[], 0)?;
    let track = drive.track(1)?;
    ensure!(!track.blank, "track 1 is still Blank after 32 sectors were written");
    ensure!(
        (track.next_writable, track.last_recorded, track.free) == (Some(32), Some(31), capacity - 32),
        "track 1 after 32 sectors: next writable {:?} last recorded {:?} free {}; expected Some(32), Some(31), {}",
        track.next_writable,
        track.last_recorded,
        track.free,
        capacity - 32
    );
    expect_disc_status(drive, ERASABLE | 0x0F, INCOMPLETE_DISC, "with a session open")?;
    drive.expect_sectors(op::READ_10, 0, &recorded)?;
    drive.expect_sectors(op::READ_12, 16, &second)
}

/// CLOSE TRACK with Immed returns at once; until the drive is done it
/// may report OPERATION IN PROGRESS, nothing else; then the track is
/// closed (no next writable address) and the session still open.
fn check_close_track_immediate(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    let recorded = write(drive, op::WRITE_10, 0, 16, 0xD1)?;
    drive.execute_good(&close(CLOSE_TRACK, true), &[], 0)?;
    wait_for_close(drive)?;
    let track = drive.track(1)?;
    ensure!(
        (track.next_writable, track.last_recorded, track.size) == (None, Some(15), 16),
        "the closed track: next writable {:?} last recorded {:?} size {}; expected None, Some(15), 16",
        track.next_writable,
        track.last_recorded,
        track.size
    );
    expect_disc_status(drive, 0x03, DISC_STATUS_INCOMPLETE, "with the track closed and the session open")?;
    drive.expect_sectors(op::READ_10, 0, &recorded)
}

/// TEST UNIT READY after an immediate close: OPERATION IN PROGRESS any
/// number of times, then GOOD.
fn wait_for_close(drive: &mut Drive<'_>) -> Result<(), String> {
    let mut seen = Vec::new();
    for _ in 0..MAX_BUSY {
        let response = drive.execute(&tur(), &[], 0)?;
        if response.status == STATUS_GOOD {
            return Ok(());
        }
        let sense = response.decoded_sense().map_err(|e| format!("TEST UNIT READY: {response} ({e})"))?;
        seen.push(sense.code);
        ensure!(
            sense.code == code::OPERATION_IN_PROGRESS,
            "TEST UNIT READY during an immediate close reported {}; expected {} until done",
            codes(&seen),
            code::OPERATION_IN_PROGRESS
        );
    }
    Err(format!("the close was still in progress after {MAX_BUSY} TEST UNIT READYs"))
}

/// CLOSE SESSION of an incomplete disc completes it: disc and session
/// complete, the track closed, the recorded sectors all there is (READ
/// CAPACITY, the TOC's lead-out), still a DVD+R, and no more writes.
fn check_close_session(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    let recorded = write(drive, op::WRITE_10, 0, 16, 0xE1)?;
    drive.execute_good(&close(CLOSE_SESSION, false), &[], 0)?;
    drive.wait_ready()?;
    expect_complete(drive, &recorded)
}

/// What a complete disc holding `recorded` from LBA 0 reports.
fn expect_complete(drive: &mut Drive<'_>, recorded: &[u8]) -> Result<(), String> {
    let count = recorded.len() as u32 / OPTICAL_SECTOR_SIZE;
    expect_disc_status(drive, ERASABLE | 0x0F, COMPLETE_DISC, "of a closed DVD+R")?;
    expect_track(drive, None, Some(count - 1))?;
    let (last, block) = drive.capacity()?;
    ensure!(
        (last, block) == (count - 1, 2048),
        "READ CAPACITY of the complete disc: last LBA {last}, {block}-byte blocks; expected {} and 2048",
        count - 1
    );
    let descriptors = toc(drive, false, 0, 0)?;
    ensure!(
        descriptors == [(1, 0u32.to_be_bytes()), (0xAA, count.to_be_bytes())],
        "the complete disc's TOC {descriptors:02X?}: expected track 1 at 0 and the lead-out at {count}"
    );
    let configuration = drive.configuration(0, 0)?;
    check_profile_list(&configuration, profile::DVD_PLUS_R).map_err(|e| format!("the complete disc: {e}"))?;
    drive.expect_sectors(op::READ_10, 0, recorded)?;
    write_refused(drive, count, code::INVALID_ADDRESS_FOR_WRITE)
}

/// A burned and closed disc, taken out by the operator and put back in.
fn check_complete_reinserted(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    let recorded = write(drive, op::WRITE_10, 0, 32, 0xF1)?;
    drive.execute_good(&close(CLOSE_SESSION, false), &[], 0)?;
    drive.wait_ready()?;
    reinsert(drive)?;
    expect_complete(drive, &recorded)
}

/// A disc with an open session, taken out and put back in: the next
/// writable address where it was, the recorded sectors readable, and the
/// recording continues there.
fn check_incomplete_reinserted(drive: &mut Drive<'_>) -> Result<(), String> {
    fresh_blank(drive)?;
    let mut recorded = write(drive, op::WRITE_10, 0, 16, 0xF5)?;
    reinsert(drive)?;
    expect_disc_status(drive, ERASABLE | 0x0F, INCOMPLETE_DISC, "after the half-burned disc came back")?;
    expect_track(drive, Some(16), Some(15))?;
    drive.expect_sectors(op::READ_10, 0, &recorded)?;
    recorded.extend(write(drive, op::WRITE_10, 16, 16, 0xF6)?);
    expect_track(drive, Some(32), Some(31))?;
    drive.expect_sectors(op::READ_10, 0, &recorded)
}

/// The operator takes the recordable disc out (unforced: nothing
/// prevents it) and puts the same disc back in, which must arrive as any
/// disc does.
fn reinsert(drive: &mut Drive<'_>) -> Result<(), String> {
    drive.eject(false).map_err(|e| format!("the operator's eject of the recordable disc failed: {e}"))?;
    drive.drain_media_events()?;
    drive.insert(DiscKind::SameRecordable)?;
    drive.expect_disc_arrival()?;
    drive.drain_media_events().map(drop)
}

/// A pressed disc takes no write: the drive refuses it (CANNOT WRITE
/// MEDIUM, or WRITE PROTECTED, or INVALID ADDRESS FOR WRITE on a disc it
/// sees as complete), and the sector reads as pressed.
fn check_pressed_refuses_writes(drive: &mut Drive<'_>) -> Result<(), String> {
    let cdb = transfer(op::WRITE_10, 0, 1);
    let response = drive.execute(&cdb, &sectors(0, 1, 0xEE), 0)?;
    let refused = response.decoded_sense().map(|s| s.code).is_ok_and(|c| {
        (c.key, c.asc) == (0x05, 0x30) || c == sense::WRITE_PROTECTED || c == code::INVALID_ADDRESS_FOR_WRITE
    });
    ensure!(
        refused,
        "{} on a pressed disc: {response}, expected 05/30/xx (cannot write medium), {} or {}",
        describe(&cdb),
        sense::WRITE_PROTECTED,
        code::INVALID_ADDRESS_FOR_WRITE
    );
    drive.expect_pressed(op::READ_10, 0, 1)?;
    expect::good(&drive.execute(&tur(), &[], 0)?)
}
